//! `graceful::grpc_health()`: the standard `grpc.health.v1.Health` service for a tonic server,
//! answering from graceful's own health so gRPC load balancers stop sending at shutdown.
//!
//! Files: `feed.rs` follows the controller's health; `status.rs` holds the known services and
//! their overrides; `responder.rs` answers Check and Watch; `watch.rs` is the Watch stream.

mod feed;
mod responder;
mod status;
mod watch;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::server::NamedService;
use tonic_health::pb::health_server::{HealthServer, SERVICE_NAME};

pub(crate) use feed::HealthFeed;
use responder::Responder;

/// The `grpc.health.v1.Health` service, following graceful's health.
///
/// Made by [`grpc_health`](crate::grpc_health). It answers for the overall server (`""`) and for each service
/// added with [`serving`](GrpcHealth::serving) or [`serving_name`](GrpcHealth::serving_name):
///
/// | graceful's health | Check | Watch |
/// |---|---|---|
/// | `Starting` (before [`ready`](crate::ready), after [`unready`](crate::unready)) | NOT_SERVING | NOT_SERVING |
/// | `Ready` | SERVING, or NOT_SERVING for a service [marked](GrpcHealth::set_not_serving) so | the same |
/// | `Draining` (from the start of shutdown, for good) | NOT_SERVING for every service | NOT_SERVING, then the stream ends with OK at stop-accepting |
/// | any, for a name it does not know | status `NOT_FOUND` | SERVICE_UNKNOWN, then the status once the name is added |
///
/// Watch sends the current status at once, then each change. Its streams end by themselves at
/// stop-accepting, so they never hold the drain; clients reconnect elsewhere, as health.proto
/// asks of them.
///
/// It is a tonic service of its own: pass it to `add_service` beside your other services, and
/// keep a clone to mark services later. Clones share their state.
///
/// ```
/// # use graceful_runtime as graceful;
/// # struct GreeterServer;
/// # impl tonic::server::NamedService for GreeterServer {
/// #     const NAME: &'static str = "helloworld.Greeter";
/// # }
/// let health = graceful::grpc_health()
///     .serving::<GreeterServer>()
///     .serving_name("helloworld.Admin");
/// // tonic::transport::Server::builder()
/// //     .add_service(health.clone())
/// //     .add_service(GreeterServer::new(MyGreeter))
/// //     .serve_with_shutdown(address, graceful::shutdown_signal())
/// health.set_not_serving("helloworld.Admin"); // its database is down
/// ```
#[derive(Clone)]
pub struct GrpcHealth {
    responder: Arc<Responder>,
    server: HealthServer<Responder>,
}

impl GrpcHealth {
    pub(crate) fn following(feed: HealthFeed) -> GrpcHealth {
        let responder = Arc::new(Responder::new(feed));
        GrpcHealth {
            server: HealthServer::from_arc(Arc::clone(&responder)),
            responder,
        }
    }

    /// Answers for the tonic service `S` under its gRPC name: `GreeterServer<MyGreeter>` is
    /// `helloworld.Greeter`.
    ///
    /// ```
    /// # use graceful_runtime as graceful;
    /// # struct GreeterServer;
    /// # impl tonic::server::NamedService for GreeterServer {
    /// #     const NAME: &'static str = "helloworld.Greeter";
    /// # }
    /// let health = graceful::grpc_health().serving::<GreeterServer>();
    /// # drop(health);
    /// ```
    #[must_use]
    pub fn serving<S: NamedService>(self) -> GrpcHealth {
        self.serving_name(S::NAME)
    }

    /// Answers for the service named `service`, as clients ask for it (`package.Service`).
    ///
    /// ```
    /// # use graceful_runtime as graceful;
    /// let health = graceful::grpc_health().serving_name("helloworld.Greeter");
    /// # drop(health);
    /// ```
    #[must_use]
    pub fn serving_name(self, service: &str) -> GrpcHealth {
        self.responder.add(service);
        self
    }

    /// Marks `service` NOT_SERVING while the others keep serving, until
    /// [`set_serving`](GrpcHealth::set_serving). `""` marks the overall server alone.
    ///
    /// A name not yet known becomes known, marked. Once shutdown has begun this does nothing:
    /// every service is NOT_SERVING for good.
    ///
    /// ```
    /// # use graceful_runtime as graceful;
    /// let health = graceful::grpc_health().serving_name("helloworld.Greeter");
    /// let handle = health.clone(); // the same service: give it to the code that knows
    /// handle.set_not_serving("helloworld.Greeter");
    /// ```
    pub fn set_not_serving(&self, service: &str) {
        self.responder.mark(service, true);
    }

    /// Lifts [`set_not_serving`](GrpcHealth::set_not_serving): `service` follows graceful's
    /// health again, SERVING while ready.
    ///
    /// A name not yet known becomes known, as [`serving_name`](GrpcHealth::serving_name) would
    /// make it. Once shutdown has begun this does nothing: every service is NOT_SERVING for
    /// good.
    ///
    /// ```
    /// # use graceful_runtime as graceful;
    /// let health = graceful::grpc_health().serving_name("helloworld.Greeter");
    /// health.set_not_serving("helloworld.Greeter");
    /// health.set_serving("helloworld.Greeter"); // the database is back
    /// ```
    pub fn set_serving(&self, service: &str) {
        self.responder.mark(service, false);
    }
}

impl NamedService for GrpcHealth {
    const NAME: &'static str = SERVICE_NAME;
}

/// The response future of [`GrpcHealth`]'s `Service` implementation, as tonic boxes it.
type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<http::Response<tonic::body::Body>, Infallible>> + Send>>;

// The bounds are those of the generated `HealthServer`, which answers every call.
impl<B> tower_service::Service<http::Request<B>> for GrpcHealth
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        tower_service::Service::<http::Request<B>>::poll_ready(&mut self.server, cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        self.server.call(request)
    }
}

impl std::fmt::Debug for GrpcHealth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcHealth")
            .field("services", &*self.responder.table())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
