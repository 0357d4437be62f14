//! `TrackLayer`: counts each request in flight from the handler's start until its response has
//! been handed over (a small body of known size) or its body has ended (anything else), and once
//! draining asks HTTP/1 clients to reconnect elsewhere (`Connection: close`).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum_core::body::Body as AxumBody;
use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use tower_layer::Layer;
use tower_service::Service;

use crate::counted_response::{CountedBody, CountedFuture};
use crate::inflight::{InFlightGuard, Site, SiteKind};
use crate::sequence::Controller;

/// A tower layer that counts every request in flight under one site (`http` by default), so
/// the drain waits for it; and, once shutdown has begun, adds `Connection: close` to HTTP/1
/// responses so keep-alive clients reconnect to another instance instead of pinning this one.
///
/// What is counted: a response whose body size is known and at most 64 KiB (a
/// string, JSON, a small buffer) counts until the handler has returned it, whole, to the server;
/// its bytes are then written by the server, which `axum::serve(..).with_graceful_shutdown(..)`
/// awaits before returning. Any other body (a stream, server-sent events, a large download)
/// counts until it has ended, so the drain waits for streamed responses too.
///
/// Responses come out as axum's `Body`: on axum that is the body the router already has, so a
/// small response is passed on untouched and only streaming ones are wrapped. Works with axum,
/// tonic and any tower stack whose bodies carry `Bytes`; put it outermost so the count covers
/// the whole stack. hyper-util's own connection-level graceful shutdown (what axum's
/// `with_graceful_shutdown` uses) still closes idle connections at stop-accepting.
///
/// ```
/// # extern crate graceful_runtime as graceful;
/// use tower_layer::Layer;
///
/// let layer = graceful::TrackLayer::named("api");
/// // Wraps any tower service; with axum: `Router::new().route(..).layer(layer)`.
/// let _service = layer.layer(());
/// ```
#[derive(Clone, Copy)]
pub struct TrackLayer {
    controller: &'static Controller,
    site: &'static Site,
}

impl std::fmt::Debug for TrackLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrackLayer")
            .field("site", &self.site.name())
            .finish()
    }
}

impl TrackLayer {
    /// Counts under the site `http`.
    pub fn new() -> TrackLayer {
        TrackLayer::named("http")
    }

    /// Counts under the site `name`; a name used twice is one site in reports.
    pub fn named(name: &'static str) -> TrackLayer {
        TrackLayer::serving(crate::global::controller(), name)
    }

    /// Counts under the site `name` of `controller`, and asks for `Connection: close` once that
    /// controller's shutdown has begun.
    pub(crate) fn serving(controller: &'static Controller, name: &'static str) -> TrackLayer {
        TrackLayer {
            controller,
            site: controller.inflight().site_of_kind(name, SiteKind::Request),
        }
    }
}

impl Default for TrackLayer {
    fn default() -> Self {
        TrackLayer::new()
    }
}

impl<S> Layer<S> for TrackLayer {
    type Service = TrackService<S>;

    fn layer(&self, inner: S) -> TrackService<S> {
        TrackService {
            inner,
            controller: self.controller,
            site: self.site,
        }
    }
}

/// The service [`TrackLayer`] makes.
#[derive(Clone)]
pub struct TrackService<S> {
    inner: S,
    controller: &'static Controller,
    site: &'static Site,
}

impl<S: std::fmt::Debug> std::fmt::Debug for TrackService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrackService")
            .field("inner", &self.inner)
            .field("site", &self.site.name())
            .finish()
    }
}

/// The largest body of known size that counts only until the server has it: one write's worth
/// (hyper's default write buffer is 400 KiB; 64 KiB leaves any larger, file-like body tracked to
/// its end).
const SMALL_BODY: u64 = 64 * 1024;

impl<S, RequestBody, ResponseBody> Service<Request<RequestBody>> for TrackService<S>
where
    S: Service<Request<RequestBody>, Response = Response<ResponseBody>>,
    ResponseBody: Body<Data = Bytes> + Send + 'static,
    ResponseBody::Error: Into<BoxError>,
{
    type Response = Response<AxumBody>;
    type Error = S::Error;
    type Future = TrackedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<RequestBody>) -> Self::Future {
        let version = request.version();
        let guard = self.site.enter();
        TrackedFuture {
            counted: CountedFuture::new(self.inner.call(request), self.controller, guard, version),
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

pin_project_lite::pin_project! {
    /// The response future of [`TrackService`]: counts the request until the response exists,
    /// then hands the count to the body when it streams.
    pub struct TrackedFuture<F> {
        #[pin]
        counted: CountedFuture<F, InFlightGuard>,
    }
}

impl<F, ResponseBody, Error> Future for TrackedFuture<F>
where
    F: Future<Output = Result<Response<ResponseBody>, Error>>,
    ResponseBody: Body<Data = Bytes> + Send + 'static,
    ResponseBody::Error: Into<BoxError>,
{
    type Output = Result<Response<AxumBody>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let (response, guard) = std::task::ready!(self.project().counted.poll_response(cx))?;
        // `AxumBody::new` passes an axum body on as it is (no allocation), and boxes anything
        // else: only streaming bodies pay for the wrapper.
        let small =
            matches!(response.body().size_hint().exact(), Some(length) if length <= SMALL_BODY);
        Poll::Ready(Ok(if small {
            drop(guard);
            response.map(AxumBody::new)
        } else {
            response.map(|inner| AxumBody::new(CountedBody::new(inner, guard)))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Frame;
    use std::collections::VecDeque;
    use std::convert::Infallible;

    /// A service answering every request with the body `make` builds.
    #[derive(Clone)]
    struct Answer<M>(M);

    impl<M: Fn() -> B, B> Service<Request<()>> for Answer<M> {
        type Response = Response<B>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Response<B>, Infallible>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: Request<()>) -> Self::Future {
            std::future::ready(Ok(Response::new((self.0)())))
        }
    }

    /// A body of two chunks whose size is not known up front, as a stream's is.
    struct Chunks(VecDeque<Bytes>);

    impl Body for Chunks {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            Poll::Ready(self.0.pop_front().map(|chunk| Ok(Frame::data(chunk))))
        }
    }

    /// A controller of the test's own, so that no other test's requests are counted with its.
    fn controller() -> &'static Controller {
        Box::leak(Box::new(Controller::new(crate::inflight::InFlight::leak())))
    }

    /// Sends one request through a `TrackLayer` of `controller`; returns the response body and
    /// the count once the response exists.
    async fn respond<M, B>(controller: &'static Controller, make: M) -> (AxumBody, usize)
    where
        M: Fn() -> B,
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let mut service = TrackLayer::serving(controller, "http").layer(Answer(make));
        let response = service.call(Request::new(())).await.unwrap();
        (response.into_body(), controller.inflight().total())
    }

    async fn read_to_end(mut body: AxumBody) -> usize {
        let mut length = 0;
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
        {
            length += frame.unwrap().into_data().map_or(0, |data| data.len());
        }
        length
    }

    #[tokio::test]
    async fn a_small_body_of_known_size_counts_until_the_response_is_handed_over() {
        let (body, counted) = respond(controller(), || AxumBody::from("hello")).await;
        assert_eq!(counted, 0);
        assert_eq!(body.size_hint().exact(), Some(5));
    }

    #[tokio::test]
    async fn a_streaming_body_counts_until_it_has_ended() {
        let controller = controller();
        let (body, counted) = respond(controller, || {
            Chunks(VecDeque::from([Bytes::from("a"), Bytes::from("b")]))
        })
        .await;
        assert_eq!(counted, 1);
        assert_eq!(read_to_end(body).await, 2);
        assert_eq!(controller.inflight().total(), 0);
    }

    #[tokio::test]
    async fn a_large_body_of_known_size_counts_until_it_has_ended() {
        let controller = controller();
        let large = SMALL_BODY as usize + 1;
        let (body, counted) = respond(controller, move || AxumBody::from(vec![0u8; large])).await;
        assert_eq!(counted, 1);
        assert_eq!(read_to_end(body).await, large);
        assert_eq!(controller.inflight().total(), 0);
    }

    #[tokio::test]
    async fn a_streaming_body_dropped_unread_stops_counting() {
        let controller = controller();
        let (body, counted) =
            respond(controller, || Chunks(VecDeque::from([Bytes::from("a")]))).await;
        assert_eq!(counted, 1);
        drop(body);
        assert_eq!(controller.inflight().total(), 0);
    }

    #[tokio::test]
    async fn http1_responses_ask_to_close_once_shutdown_has_begun() {
        let controller = controller();
        let mut service =
            TrackLayer::serving(controller, "http").layer(Answer(|| AxumBody::from("x")));
        let before = service.call(Request::new(())).await.unwrap();
        assert!(before.headers().get(http::header::CONNECTION).is_none());
        controller.request_shutdown();
        let after = service.call(Request::new(())).await.unwrap();
        assert_eq!(after.headers()[http::header::CONNECTION], "close");
        let http2 = Request::builder()
            .version(http::Version::HTTP_2)
            .body(())
            .unwrap();
        let after_http2 = service.call(http2).await.unwrap();
        assert!(after_http2
            .headers()
            .get(http::header::CONNECTION)
            .is_none());
    }
}
