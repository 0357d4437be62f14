//! The one record that shutdown has begun: when, and what began it.
//!
//! Invariant: the record is written once, by the first cause, and only then is the token
//! cancelled (by the same caller, once it has announced the start). So a reader that sees the token cancelled finds the record, and `is_started` is a
//! single atomic load (the per-request check of `TrackLayer` and `serve`).

use std::sync::OnceLock;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What began the shutdown. `shutdown_with`'s code and reason are kept apart, once, in
/// [`crate::report::Fatal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trigger {
    /// An OS signal (or, on Windows, a console event), by name.
    Signal(&'static str),
    /// `graceful::shutdown()`.
    Requested,
    /// The main body returned on its own.
    MainReturned,
    /// `graceful::shutdown_with(..)`.
    Fatal,
    /// An essential task failed, panicked or ended; its failure is kept apart, once.
    EssentialTask,
    /// The new process of an upgrade, with this pid, is ready and takes over.
    Upgrade(u32),
}

/// When shutdown began, and why.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Started {
    pub(crate) at: Instant,
    pub(crate) trigger: Trigger,
}

/// Set once when shutdown begins; awaitable.
#[derive(Debug, Default)]
pub(crate) struct StartLatch {
    started: OnceLock<Started>,
    set: CancellationToken,
}

impl StartLatch {
    /// Records the start, once. Returns whether this call was the first; the first caller
    /// must then call [`StartLatch::release`].
    pub(crate) fn begin(&self, trigger: Trigger) -> bool {
        let mut first = false;
        self.started.get_or_init(|| {
            first = true;
            Started {
                at: Instant::now(),
                trigger,
            }
        });
        first
    }

    /// Wakes everything waiting for the start. Separate from `begin`, so that the first
    /// caller finishes announcing the shutdown before the sequence runs on.
    pub(crate) fn release(&self) {
        self.set.cancel();
    }

    pub(crate) fn get(&self) -> Option<&Started> {
        self.started.get()
    }

    pub(crate) fn is_started(&self) -> bool {
        // One atomic load; `CancellationToken::is_cancelled` takes a mutex, too dear for a
        // per-request check.
        self.started.get().is_some()
    }

    /// Resolves with the record once shutdown has begun.
    pub(crate) async fn wait(&self) -> &Started {
        loop {
            // Released only after the record is written: the first pass returns.
            self.set.cancelled().await;
            if let Some(started) = self.started.get() {
                return started;
            }
        }
    }

    /// A future resolving when shutdown begins, for `graceful::shutdown_started()`.
    pub(crate) fn wait_owned(&self) -> tokio_util::sync::WaitForCancellationFutureOwned {
        self.set.clone().cancelled_owned()
    }
}
