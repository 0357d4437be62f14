//! What `serve` serves: any tower service (an axum `Router`, tonic's `Routes`) or hyper
//! service (`service_fn`), wrapped so that each request counts in flight under `http` until
//! its response body ends, and tells its connection when it starts and ends.

use std::error::Error as StdError;
use std::sync::Arc;

use http::{Request, Response, Version};
use http_body::Body;
use hyper::body::Incoming;
use hyper_util::service::TowerToHyperService;

use super::connection::{ConnectionState, RequestOnConnection};
use super::rpc_sites::RpcSites;
use crate::counted_response::{CountedBody, CountedFuture};
use crate::inflight::{InFlightGuard, Site};
use crate::sequence::Controller;

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

impl<S: sealed::Sealed<Marker>, Marker> IntoHttpService<Marker> for S {}

/// A hyper service that hyper's server can run on a tokio executor: the bounds, said once.
pub(crate) trait ConnectionService:
    hyper::service::Service<
        Request<Incoming>,
        Response = Response<Self::ResponseBody>,
        Error = Self::ServiceError,
        Future: Send + 'static,
    > + Clone
    + Send
    + Sync
    + 'static
{
    type ResponseBody: Body<Data: Send, Error: Into<BoxError>> + Send + 'static;
    type ServiceError: Into<BoxError>;
}

impl<S, B, E> ConnectionService for S
where
    S: hyper::service::Service<
            Request<Incoming>,
            Response = Response<B>,
            Error = E,
            Future: Send + 'static,
        > + Clone
        + Send
        + Sync
        + 'static,
    B: Body<Data: Send, Error: Into<BoxError>> + Send + 'static,
    E: Into<BoxError>,
{
    type ResponseBody = B;
    type ServiceError = E;
}

pub(crate) mod sealed {
    use super::*;

    /// Turns a user's service into the hyper service a connection runs.
    pub trait Sealed<Marker>: Clone + Send + Sync + 'static {
        #[allow(private_bounds)] // sealed: users never name it
        type Service: ConnectionService;

        fn into_hyper(self) -> Self::Service;
    }
}

impl<S> sealed::Sealed<TowerService> for S
where
    S: Clone + Send + Sync + 'static,
    TowerToHyperService<S>: ConnectionService,
{
    type Service = TowerToHyperService<S>;

    fn into_hyper(self) -> Self::Service {
        TowerToHyperService::new(self)
    }
}

impl<S: ConnectionService> sealed::Sealed<HyperService> for S {
    type Service = S;

    fn into_hyper(self) -> Self::Service {
        self
    }
}

/// The service one connection runs: the user's, with each request counted.
#[derive(Clone)]
pub(crate) struct CountingService<S> {
    pub(crate) inner: S,
    pub(crate) controller: &'static Controller,
    /// Where a request counts when it is not a gRPC call with a site of its own.
    pub(crate) site: &'static Site,
    pub(crate) rpc_sites: Arc<RpcSites>,
    pub(crate) connection: Arc<ConnectionState>,
}

/// What a request holds until its response body ends: its count at its site, and its place
/// among the requests of its connection.
type RequestGuard = (InFlightGuard, RequestOnConnection);

impl<S, B> hyper::service::Service<Request<Incoming>> for CountingService<S>
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>>,
{
    type Response = Response<CountedBody<B, RequestGuard>>;
    type Error = S::Error;
    type Future = CountedFuture<S::Future, RequestGuard>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let version = request.version();
        let site = self
            .rpc_sites
            .site_for(&request, self.controller.inflight(), self.site);
        let guard = (
            site.enter(),
            self.connection.request_started(
                version == Version::HTTP_2,
                self.controller.is_shutting_down(),
            ),
        );
        CountedFuture::new(self.inner.call(request), self.controller, guard, version)
    }
}
