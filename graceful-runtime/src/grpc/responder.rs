//! The state every clone of a `GrpcHealth` shares, and the `grpc.health.v1.Health` methods
//! answered from it.

use tokio::sync::watch;
use tonic::{Request, Response, Status};
use tonic_health::pb::health_server::Health as HealthService;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

use super::feed::HealthFeed;
use super::status::ServiceTable;
use super::watch::{WatchStream, Watcher};
use crate::phase::Health;

/// Graceful's health, and the services known with their overrides.
pub(crate) struct Responder {
    feed: HealthFeed,
    // A channel rather than a mutex, so that Watch streams wake when a service is added or
    // marked; it is only written to by `GrpcHealth`'s methods.
    table: watch::Sender<ServiceTable>,
}

impl Responder {
    pub(super) fn new(feed: HealthFeed) -> Responder {
        Responder {
            feed,
            table: watch::Sender::new(ServiceTable::new()),
        }
    }

    pub(super) fn add(&self, service: &str) {
        self.table.send_if_modified(|table| table.add(service));
    }

    /// Ignored once draining, as grpc-go's `Shutdown` ignores later updates: a service neither
    /// comes back nor becomes known while the process is on its way out.
    pub(super) fn mark(&self, service: &str, not_serving: bool) {
        if self.feed.current() == Health::Draining {
            return;
        }
        self.table
            .send_if_modified(|table| table.mark(service, not_serving));
    }

    pub(super) fn table(&self) -> watch::Ref<'_, ServiceTable> {
        self.table.borrow()
    }
}

#[tonic::async_trait]
impl HealthService for Responder {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let service = &request.get_ref().service;
        let table = self.table.borrow();
        match table.status(service, self.feed.current()) {
            Some(status) => Ok(Response::new(HealthCheckResponse {
                status: status.into(),
            })),
            None => {
                let known: Vec<&str> = table.names().collect();
                Err(Status::not_found(format!(
                    "grpc.health.v1: unknown service {service:?}; this server knows {known:?} \
                     (the server adds names with `grpc_health().serving_name(..)`)"
                )))
            }
        }
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        let watcher = Watcher::new(
            request.into_inner().service,
            self.feed.changes(),
            self.table.subscribe(),
            self.feed.stop_accepting(),
        );
        Ok(Response::new(WatchStream::new(watcher)))
    }
}
