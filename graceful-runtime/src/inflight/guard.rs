//! The guard a counted call holds: its drop counts the call out and, if that was the last one
//! while draining, wakes the drain.

use super::protocol::Counter;
use super::registry::InFlight;

/// Counts one call as in flight until it is dropped.
///
/// Made by [`crate::track`] and by `#[graceful::tracked]`. Dropping it (on return, on unwind,
/// or when the future holding it is dropped) counts the call out.
///
/// ```
/// # extern crate graceful_runtime as graceful;
/// let guard = graceful::track("nightly-export");
/// assert!(graceful::in_flight() >= 1);
/// drop(guard);
/// ```
#[must_use = "the call counts as in flight only while the guard is alive"]
pub struct InFlightGuard {
    pub(super) counter: &'static Counter,
    pub(super) registry: &'static InFlight,
}

impl std::fmt::Debug for InFlightGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InFlightGuard").finish_non_exhaustive()
    }
}

impl Drop for InFlightGuard {
    #[inline]
    fn drop(&mut self) {
        if self.counter.exit() {
            self.registry.wake_drain();
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::inflight::InFlight;

    #[test]
    fn guard_counts_in_and_out() {
        let registry = InFlight::leak();
        let upload = registry.leak_site("app::upload");
        let first = upload.enter();
        let second = upload.enter();
        assert_eq!(registry.total(), 2);
        drop(first);
        assert_eq!(registry.total(), 1);
        drop(second);
        assert_eq!(registry.total(), 0);
    }
}
