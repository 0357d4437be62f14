//! In-flight accounting: cheap counters per call site (striped across threads), the drain wait
//! that the last guard wakes, and the tracked tasks that a drain timeout aborts.

mod counts;
mod drain;
mod guard;
mod protocol;
mod queries;
mod registry;
mod site;
mod tasks;

/// The atomics the protocol runs on; `tests/loom.rs` swaps in loom's.
mod atomic {
    pub(super) use std::sync::atomic::{AtomicUsize, Ordering};
}

pub use counts::{InFlightCounts, SiteCount};
pub use guard::InFlightGuard;
pub(crate) use registry::InFlight;
pub use site::Site;
#[cfg(feature = "tower")] // only the servers and `TrackLayer` count other than calls
pub(crate) use site::SiteKind;
