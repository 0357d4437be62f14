//! How integrations follow the sequence without the sequence knowing them. systemd, metrics,
//! the servers and the gRPC health service subscribe to the controller's events; the sequence
//! only publishes.
//!
//! Observers are called synchronously, on the thread that made the change: the signal thread
//! for a signal, the caller's thread for `ready()`. No tokio task sits in the path, so an
//! observer hears of a shutdown even while the application's runtime is wedged. An observer
//! must therefore never block: hand slow work (a socket write that may stall) to a thread or a
//! task of its own.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::phase::{Health, Phase};
use crate::report::ShutdownReport;
use crate::sync::lock;

/// Something that changed in the controller.
#[derive(Debug, Clone, Copy)]
// Fields are read by the observers of optional features (systemd, metrics, the servers); a
// build without them still publishes every event.
#[allow(dead_code)]
pub(crate) enum Event<'a> {
    /// Health moved: `Ready` at `ready()`, `Starting` at `unready()`, `Draining` when shutdown
    /// begins (for good).
    Health(Health),
    /// Shutdown began at this instant; the sequence ends by `began + grace`.
    ShutdownBegun { began: std::time::Instant },
    /// The sequence entered a phase.
    PhaseEntered(Phase),
    /// A phase ended after running this long.
    PhaseEnded(Phase, Duration),
    /// The final report, once written.
    Report(&'a ShutdownReport),
    /// A reload (SIGHUP, `graceful::reload()`) began running its hooks.
    ReloadBegun,
    /// That reload ended.
    ReloadEnded,
}

type Observer = Arc<dyn Fn(&Event<'_>) + Send + Sync>;

/// The subscribers of one controller.
#[derive(Default)]
pub(crate) struct Observers {
    // Copy-on-write: publishing clones one `Arc` and calls outside the lock, so an observer may
    // itself subscribe, and a slow subscribe never delays a publish for long.
    list: Mutex<Arc<Vec<Observer>>>,
}

impl Observers {
    /// Adds `observer`; it hears every event published from now on.
    pub(crate) fn subscribe(&self, observer: impl Fn(&Event<'_>) + Send + Sync + 'static) {
        let mut list = lock(&self.list);
        let mut updated = Vec::clone(&list);
        updated.push(Arc::new(observer));
        *list = Arc::new(updated);
    }

    /// Calls every observer with `event`, in subscription order.
    pub(crate) fn publish(&self, event: Event<'_>) {
        let observers = Arc::clone(&lock(&self.list));
        for observer in observers.iter() {
            observer(&event);
        }
    }
}

impl std::fmt::Debug for Observers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observers")
            .field("count", &lock(&self.list).len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observers_hear_events_in_subscription_order_and_may_subscribe_while_called() {
        let observers: &'static Observers = Box::leak(Box::default());
        let heard = Arc::new(Mutex::new(Vec::new()));
        let log = heard.clone();
        observers.subscribe(move |event| {
            if let Event::Health(health) = event {
                log.lock().unwrap().push(format!("first {health}"));
                let log = log.clone();
                observers.subscribe(move |_| log.lock().unwrap().push("late".to_owned()));
            }
        });
        let log = heard.clone();
        observers.subscribe(move |event| {
            if let Event::Health(health) = event {
                log.lock().unwrap().push(format!("second {health}"));
            }
        });
        observers.publish(Event::Health(Health::Ready));
        assert_eq!(*heard.lock().unwrap(), ["first ready", "second ready"]);
    }
}
