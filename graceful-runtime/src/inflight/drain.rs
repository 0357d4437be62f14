//! The drain: the phases the registry moves through at shutdown, and the wait for the last call
//! to end, woken by the guard that ends it rather than by polling.

use super::protocol;
use super::registry::InFlight;
use crate::sync::lock;

impl InFlight {
    /// From now on, a site reaching zero wakes [`InFlight::wait_idle`].
    pub(crate) fn begin_drain(&self) {
        self.advance(protocol::DRAINING);
    }

    /// From now on, calls that start are counted as late.
    pub(crate) fn begin_teardown(&self) {
        self.advance(protocol::TEARDOWN);
    }

    fn advance(&self, bit: usize) {
        let sites = lock(&self.sites);
        self.gate
            .advance(bit, sites.iter().flat_map(|site| &site.stripes));
    }

    /// Resolves once no call is in flight. Event-driven: the guard that brings a site to zero
    /// wakes it; there is no polling. Call after [`InFlight::begin_drain`].
    pub(crate) async fn wait_idle(&self) {
        loop {
            let woken = self.drained.notified();
            let mut woken = std::pin::pin!(woken);
            // Register before scanning, so that a guard dropping between the scan and the await
            // still wakes us (`notify_waiters` stores no permit).
            woken.as_mut().enable();
            if self.is_idle() {
                return;
            }
            woken.await;
        }
    }

    fn is_idle(&self) -> bool {
        let sites = lock(&self.sites);
        self.gate
            .is_idle(sites.iter().flat_map(|site| &site.stripes))
    }

    #[cold]
    #[inline(never)]
    pub(super) fn wake_drain(&self) {
        self.drained.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::inflight::{InFlight, SiteCount};

    #[test]
    fn calls_entered_during_teardown_are_late() {
        let registry = InFlight::leak();
        let hook_side = registry.leak_site("app::late");
        let before = hook_side.enter();
        registry.begin_drain();
        registry.begin_teardown();
        let late = hook_side.enter();
        assert_eq!(
            registry.late_sites(),
            vec![SiteCount {
                name: "app::late".into(),
                count: 1
            }]
        );
        drop((before, late));
    }

    #[tokio::test(start_paused = true)]
    async fn wait_idle_returns_when_the_last_guard_drops() {
        let registry = InFlight::leak();
        let guard = registry.leak_site("app::slow").enter();
        registry.begin_drain();
        let waiter = tokio::spawn(registry.wait_idle());
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "drained while a call was in flight");
        drop(guard);
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("the last guard did not wake the drain")
            .unwrap();
    }
}
