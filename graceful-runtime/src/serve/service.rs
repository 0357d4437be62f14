//! What `serve` serves: any tower service (an axum `Router`, tonic's `Routes`) or hyper
//! service (`service_fn`), wrapped so that each request counts in flight under `http` until
//! its response body ends, and tells its connection when it starts and ends.

use std::error::Error as StdError;
use std::sync::Arc;

use http::{Request, Response, Version};
use http_body::Body;
use hyper::body::Incoming;
use hyper_util::service::TowerToHyperService;

use super::connection::ConnectionState;
use crate::inflight::Site;
use crate::sequence::Controller;
use crate::serving::{RequestGuard, TrackedBody, TrackedFuture};

pub(crate) type BoxError = Box<dyn StdError + Send + Sync>;

/// Marks a tower service for [`IntoHttpService`].
#[derive(Debug)]
pub enum TowerService {}

/// Marks a hyper service for [`IntoHttpService`].
#[derive(Debug)]
pub enum HyperService {}

/// A service [`serve`](fn@crate::serve) can run: a tower `Service` (axum's `Router`, tonic's
/// `Routes`, anything built with tower) or a hyper `Service` (`hyper::service::service_fn`).
/// `Marker` tells the two apart; it is inferred.
///
/// ```
/// # use graceful_runtime as graceful;
/// use std::convert::Infallible;
///
/// fn check<S: graceful::IntoHttpService<M>, M>(_: S) {}
/// check(hyper::service::service_fn(|_request| async {
///     Ok::<_, Infallible>(http::Response::new(String::from("hello")))
/// }));
/// ```
pub trait IntoHttpService<Marker>: sealed::Sealed<Marker> {}

pub(crate) mod sealed {
    use super::*;

    /// The hyper service a user's service becomes, with the bounds hyper's server needs.
    pub trait Sealed<Marker>: Clone + Send + Sync + 'static {
        type Service: hyper::service::Service<
                Request<Incoming>,
                Response = Response<Self::Body>,
                Error = Self::Error,
                Future: Send + 'static,
            > + Clone
            + Send
            + Sync
            + 'static;
        type Body: Body<Data: Send, Error: Into<BoxError>> + Send + 'static;
        type Error: Into<BoxError>;

        fn into_hyper(self) -> Self::Service;
    }
}

impl<S, B> IntoHttpService<TowerService> for S
where
    S: tower_service::Service<Request<Incoming>, Response = Response<B>>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data: Send, Error: Into<BoxError>> + Send + 'static,
{
}

impl<S, B> sealed::Sealed<TowerService> for S
where
    S: tower_service::Service<Request<Incoming>, Response = Response<B>>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data: Send, Error: Into<BoxError>> + Send + 'static,
{
    type Service = TowerToHyperService<S>;
    type Body = B;
    type Error = S::Error;

    fn into_hyper(self) -> Self::Service {
        TowerToHyperService::new(self)
    }
}

impl<S, B> IntoHttpService<HyperService> for S
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data: Send, Error: Into<BoxError>> + Send + 'static,
{
}

impl<S, B> sealed::Sealed<HyperService> for S
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data: Send, Error: Into<BoxError>> + Send + 'static,
{
    type Service = S;
    type Body = B;
    type Error = S::Error;

    fn into_hyper(self) -> Self::Service {
        self
    }
}

/// The service one connection runs: the user's, with each request counted.
#[derive(Clone)]
pub(crate) struct CountingService<S> {
    pub(crate) inner: S,
    pub(crate) controller: &'static Controller,
    pub(crate) site: &'static Site,
    pub(crate) connection: Arc<ConnectionState>,
}

impl<S, B> hyper::service::Service<Request<Incoming>> for CountingService<S>
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>>,
{
    type Response = Response<TrackedBody<B>>;
    type Error = S::Error;
    type Future = TrackedFuture<S::Future>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let version = request.version();
        let guard = RequestGuard {
            _in_flight: self.site.enter(),
            _on_connection: Some(self.connection.request_started(version == Version::HTTP_2)),
        };
        let http1 = matches!(version, Version::HTTP_10 | Version::HTTP_11);
        TrackedFuture::new(self.inner.call(request), self.controller, guard, http1)
    }
}
