//! A response counted until it is over, shared by `TrackLayer` and `serve`: the future holds its
//! request's guard until the response exists and then hands it to the body, which holds it until
//! it ends; while shutting down, an HTTP/1 response asks its client to close (`Connection:
//! close`). Generic over the guard, so that each server decides what a request holds.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{HeaderValue, Response, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};

use crate::sequence::Controller;

pin_project_lite::pin_project! {
    /// A response future holding its request's guard until the response exists.
    pub(crate) struct CountedFuture<F, G> {
        #[pin]
        inner: F,
        controller: &'static Controller,
        guard: Option<G>,
        http1: bool,
    }
}

impl<F, G> CountedFuture<F, G> {
    /// Counts the response of `inner` with `guard`; a request of `version` HTTP/1 may be told to
    /// close its connection while shutting down (`Connection` is an HTTP/1 header, forbidden in
    /// HTTP/2 responses, which have GOAWAY instead).
    pub(crate) fn new(
        inner: F,
        controller: &'static Controller,
        guard: G,
        version: Version,
    ) -> CountedFuture<F, G> {
        CountedFuture {
            inner,
            controller,
            guard: Some(guard),
            http1: matches!(version, Version::HTTP_10 | Version::HTTP_11),
        }
    }
}

/// A response and the guard still counting its request.
pub(crate) type Counted<B, G> = (Response<B>, Option<G>);

impl<F, G, ResponseBody, Error> CountedFuture<F, G>
where
    F: Future<Output = Result<Response<ResponseBody>, Error>>,
{
    /// The response, told to close an HTTP/1 connection while shutting down, and the guard that
    /// still counts its request.
    pub(crate) fn poll_response(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Counted<ResponseBody, G>, Error>> {
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

impl<F, G, ResponseBody, Error> Future for CountedFuture<F, G>
where
    F: Future<Output = Result<Response<ResponseBody>, Error>>,
{
    type Output = Result<Response<CountedBody<ResponseBody, G>>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let (response, guard) = std::task::ready!(self.poll_response(cx))?;
        // The guard moves into the body: the server drops the body once it has been written
        // (or the client went away), and an empty body is dropped at once.
        Poll::Ready(Ok(response.map(|inner| CountedBody::new(inner, guard))))
    }
}

pin_project_lite::pin_project! {
    /// A response body that holds its request's guard until the body ends or is dropped.
    pub(crate) struct CountedBody<B, G> {
        #[pin]
        inner: B,
        guard: Option<G>,
    }
}

impl<B, G> CountedBody<B, G> {
    pub(crate) fn new(inner: B, guard: Option<G>) -> CountedBody<B, G> {
        CountedBody { inner, guard }
    }
}

impl<B: Body, G> Body for CountedBody<B, G> {
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
