//! The Watch stream: the current status at once, then each change, until stop-accepting ends
//! it with OK so that no watcher holds the drain.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_core::Stream;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::Status;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::HealthCheckResponse;

use super::status::ServiceTable;
use crate::phase::Health;

/// What one Watch call follows, and what it last sent.
pub(super) struct Watcher {
    service: String,
    health: watch::Receiver<Health>,
    table: watch::Receiver<ServiceTable>,
    stop_accepting: CancellationToken,
    last_sent: Option<ServingStatus>,
}

impl Watcher {
    pub(super) fn new(
        service: String,
        health: watch::Receiver<Health>,
        table: watch::Receiver<ServiceTable>,
        stop_accepting: CancellationToken,
    ) -> Watcher {
        Watcher {
            service,
            health,
            table,
            stop_accepting,
            last_sent: None,
        }
    }

    /// Waits for a status different from the last one sent; `None` once the stream is over.
    /// The status at stop-accepting is still sent before the end, if it is new.
    async fn next_status(mut self) -> Option<(ServingStatus, Watcher)> {
        loop {
            // Read before the status, so that a stop landing in between is seen next turn.
            let stopped = self.stop_accepting.is_cancelled();
            let status = self.current();
            if self.last_sent != Some(status) {
                self.last_sent = Some(status);
                return Some((status, self));
            }
            if stopped {
                return None;
            }
            let open = tokio::select! {
                () = self.stop_accepting.cancelled() => true,
                changed = self.health.changed() => changed.is_ok(),
                changed = self.table.changed() => changed.is_ok(),
            };
            // A closed channel never changes again: end rather than spin on it.
            if !open {
                return None;
            }
        }
    }

    /// Marks both channels seen, so `changed()` waits for the next change after this read.
    fn current(&mut self) -> ServingStatus {
        let health = *self.health.borrow_and_update();
        self.table
            .borrow_and_update()
            .status(&self.service, health)
            .unwrap_or(ServingStatus::ServiceUnknown)
    }
}

type NextStatus = Pin<Box<dyn Future<Output = Option<(ServingStatus, Watcher)>> + Send>>;

/// The response stream of Watch: one boxed wait per message, for a status that changes a
/// handful of times in a process's life.
pub(crate) struct WatchStream {
    next: Option<NextStatus>,
}

impl WatchStream {
    pub(super) fn new(watcher: Watcher) -> WatchStream {
        WatchStream {
            next: Some(Box::pin(watcher.next_status())),
        }
    }
}

impl Stream for WatchStream {
    type Item = Result<HealthCheckResponse, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(next) = self.next.as_mut() else {
            return Poll::Ready(None);
        };
        match ready!(next.as_mut().poll(cx)) {
            Some((status, watcher)) => {
                self.next = Some(Box::pin(watcher.next_status()));
                Poll::Ready(Some(Ok(HealthCheckResponse {
                    status: status.into(),
                })))
            }
            None => {
                self.next = None;
                Poll::Ready(None)
            }
        }
    }
}

impl std::fmt::Debug for WatchStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchStream")
            .field("ended", &self.next.is_none())
            .finish()
    }
}
