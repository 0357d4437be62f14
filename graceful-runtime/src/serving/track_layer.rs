//! `TrackLayer`: counts each request in flight from the handler's start until its response has
//! been handed over (a small body of known size) or its body has ended (anything else), and once
//! draining asks HTTP/1 clients to reconnect elsewhere (`Connection: close`). The counted future
//! and body are shared with `serve`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum_core::body::Body as AxumBody;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use tower_layer::Layer;
use tower_service::Service;

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
        let controller = Controller::global();
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
        // HTTP/2 multiplexes and has GOAWAY; `Connection` is an HTTP/1 header (and forbidden in
        // HTTP/2 responses).
        let http1 = matches!(request.version(), Version::HTTP_10 | Version::HTTP_11);
        let guard = RequestGuard {
            _in_flight: self.site.enter(),
            #[cfg(feature = "serve")]
            _on_connection: None,
        };
        TrackedFuture {
            counted: CountedFuture::new(self.inner.call(request), self.controller, guard, http1),
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

pin_project_lite::pin_project! {
    /// The response future of [`TrackService`]: counts the request until the response exists,
    /// then hands the count to the body when it streams.
    pub struct TrackedFuture<F> {
        #[pin]
        counted: CountedFuture<F>,
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
            response.map(|inner| AxumBody::new(TrackedBody { inner, guard }))
        }))
    }
}

/// What a request holds until its response body ends: its count at the site and, under
/// `serve`, its place among the requests of its connection.
pub(crate) struct RequestGuard {
    pub(crate) _in_flight: InFlightGuard,
    #[cfg(feature = "serve")]
    pub(crate) _on_connection: Option<crate::serve::RequestOnConnection>,
}

pin_project_lite::pin_project! {
    /// A response future holding its request's guard until the response exists, then handing it
    /// to the body, whatever the body: `serve`'s, since hyper takes any body without boxing it.
    pub(crate) struct CountedFuture<F> {
        #[pin]
        inner: F,
        controller: &'static Controller,
        guard: Option<RequestGuard>,
        http1: bool,
    }
}

impl<F> CountedFuture<F> {
    /// Tracks the response of `inner` with `guard`; `http1` says whether `Connection: close`
    /// may be added while shutting down.
    pub(crate) fn new(
        inner: F,
        controller: &'static Controller,
        guard: RequestGuard,
        http1: bool,
    ) -> CountedFuture<F> {
        CountedFuture {
            inner,
            controller,
            guard: Some(guard),
            http1,
        }
    }
}

/// A response and the guard still counting its request.
type Counted<B> = (Response<B>, Option<RequestGuard>);

impl<F, ResponseBody, Error> CountedFuture<F>
where
    F: Future<Output = Result<Response<ResponseBody>, Error>>,
{
    /// The response, told to close an HTTP/1 connection while shutting down, and the guard that
    /// still counts its request.
    fn poll_response(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Counted<ResponseBody>, Error>> {
        let this = self.project();
        let mut response = std::task::ready!(this.inner.poll(cx))?;
        // An upgrade's 101 must keep its `Connection: upgrade`: replacing it would fail the
        // WebSocket handshake of a client that connects during pre-stop.
        if *this.http1
            && response.status() != StatusCode::SWITCHING_PROTOCOLS
            && this.controller.is_shutting_down()
        {
            response
                .headers_mut()
                .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        }
        Poll::Ready(Ok((response, this.guard.take())))
    }
}

impl<F, ResponseBody, Error> Future for CountedFuture<F>
where
    F: Future<Output = Result<Response<ResponseBody>, Error>>,
{
    type Output = Result<Response<TrackedBody<ResponseBody>>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let (response, guard) = std::task::ready!(self.poll_response(cx))?;
        // The guard moves into the body: the server drops the body once it has been written
        // (or the client went away), and an empty body is dropped at once.
        Poll::Ready(Ok(response.map(|inner| TrackedBody { inner, guard })))
    }
}

pin_project_lite::pin_project! {
    /// A response body that counts its request in flight until the body ends or is dropped.
    pub struct TrackedBody<B> {
        #[pin]
        inner: B,
        guard: Option<RequestGuard>,
    }
}

impl<B: Body> Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.project();
        let frame = this.inner.poll_frame(cx);
        if let Poll::Ready(None) | Poll::Ready(Some(Err(_))) = frame {
            this.guard.take();
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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

    fn in_flight_at(site: &str) -> usize {
        Controller::global()
            .inflight()
            .all_sites()
            .into_iter()
            .find_map(|(name, count)| (name == site).then_some(count))
            .unwrap_or(0)
    }

    /// Sends one request through `TrackLayer` counting at `site`; returns the response body and
    /// the count once the response exists.
    async fn respond<M, B>(site: &'static str, make: M) -> (AxumBody, usize)
    where
        M: Fn() -> B,
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let mut service = TrackLayer::named(site).layer(Answer(make));
        let response = service.call(Request::new(())).await.unwrap();
        (response.into_body(), in_flight_at(site))
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
        let (body, counted) = respond("track-small", || AxumBody::from("hello")).await;
        assert_eq!(counted, 0);
        assert_eq!(body.size_hint().exact(), Some(5));
    }

    #[tokio::test]
    async fn a_streaming_body_counts_until_it_has_ended() {
        let (body, counted) = respond("track-stream", || {
            Chunks(VecDeque::from([Bytes::from("a"), Bytes::from("b")]))
        })
        .await;
        assert_eq!(counted, 1);
        assert_eq!(read_to_end(body).await, 2);
        assert_eq!(in_flight_at("track-stream"), 0);
    }

    #[tokio::test]
    async fn a_large_body_of_known_size_counts_until_it_has_ended() {
        let large = SMALL_BODY as usize + 1;
        let (body, counted) =
            respond("track-large", move || AxumBody::from(vec![0u8; large])).await;
        assert_eq!(counted, 1);
        assert_eq!(read_to_end(body).await, large);
        assert_eq!(in_flight_at("track-large"), 0);
    }

    #[tokio::test]
    async fn a_streaming_body_dropped_unread_stops_counting() {
        let (body, counted) = respond("track-dropped", || {
            Chunks(VecDeque::from([Bytes::from("a")]))
        })
        .await;
        assert_eq!(counted, 1);
        drop(body);
        assert_eq!(in_flight_at("track-dropped"), 0);
    }
}
