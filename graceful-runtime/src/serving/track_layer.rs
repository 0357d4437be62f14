//! `TrackLayer`: counts each request in flight from the handler's start until its response body
//! has ended, and once draining asks HTTP/1 clients to reconnect elsewhere (`Connection: close`).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{HeaderValue, Request, Response, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use tower_layer::Layer;
use tower_service::Service;

use crate::inflight::{InFlightGuard, Site, SiteKind};
use crate::sequence::Controller;

/// A tower layer that counts every request in flight under one site (`http` by default) until
/// its response body has ended, so the drain waits for streamed responses too; and, once
/// shutdown has begun, adds `Connection: close` to HTTP/1 responses so keep-alive clients
/// reconnect to another instance instead of pinning this one.
///
/// Works with axum, tonic and any tower stack; put it outermost so the count covers the whole
/// stack. hyper-util's own connection-level graceful shutdown (what axum's
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

impl<S, RequestBody, ResponseBody> Service<Request<RequestBody>> for TrackService<S>
where
    S: Service<Request<RequestBody>, Response = Response<ResponseBody>>,
{
    type Response = Response<TrackedBody<ResponseBody>>;
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
        TrackedFuture::new(self.inner.call(request), self.controller, guard, http1)
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`TrackService`]: holds the guard until the response exists, then
    /// hands it to the body.
    pub struct TrackedFuture<F> {
        #[pin]
        inner: F,
        controller: &'static Controller,
        guard: Option<RequestGuard>,
        http1: bool,
    }
}

/// What a request holds until its response body ends: its count at the site and, under
/// `serve`, its place among the requests of its connection.
pub(crate) struct RequestGuard {
    pub(crate) _in_flight: InFlightGuard,
    #[cfg(feature = "serve")]
    pub(crate) _on_connection: Option<crate::serve::RequestOnConnection>,
}

impl<F> TrackedFuture<F> {
    /// Tracks the response of `inner` with `guard`; `http1` says whether `Connection: close`
    /// may be added while shutting down.
    pub(crate) fn new(
        inner: F,
        controller: &'static Controller,
        guard: RequestGuard,
        http1: bool,
    ) -> TrackedFuture<F> {
        TrackedFuture {
            inner,
            controller,
            guard: Some(guard),
            http1,
        }
    }
}

impl<F, ResponseBody, Error> Future for TrackedFuture<F>
where
    F: Future<Output = Result<Response<ResponseBody>, Error>>,
{
    type Output = Result<Response<TrackedBody<ResponseBody>>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = match this.inner.poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(result) => result?,
        };
        let (mut parts, body) = response.into_parts();
        // An upgrade's 101 must keep its `Connection: upgrade`: replacing it would fail the
        // WebSocket handshake of a client that connects during pre-stop.
        if *this.http1
            && parts.status != StatusCode::SWITCHING_PROTOCOLS
            && this.controller.is_shutting_down()
        {
            parts
                .headers
                .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        }
        // The guard moves into the body: the server drops the body once it has been written
        // (or the client went away), and an empty body is dropped at once.
        let guard = this.guard.take();
        Poll::Ready(Ok(Response::from_parts(
            parts,
            TrackedBody { inner: body, guard },
        )))
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
