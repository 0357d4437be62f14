//! Graceful's health as a `tokio::sync::watch` channel, so that Watch streams wake on a change
//! instead of polling. One observer per controller feeds it; every `GrpcHealth` shares it.

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::observe::Event;
use crate::phase::Health;
use crate::sequence::Controller;

/// A controller's health, followed as it changes.
#[derive(Clone)]
pub(crate) struct HealthFeed {
    controller: &'static Controller,
    health: watch::Receiver<Health>,
}

impl HealthFeed {
    /// Subscribes to `controller`. Each call adds an observer for good: call it once per
    /// controller and clone the result.
    pub(crate) fn follow(controller: &'static Controller) -> HealthFeed {
        let (sender, health) = watch::channel(controller.health());
        let observer = sender.clone();
        controller.subscribe(move |event| {
            if let Event::Health(_) = event {
                refresh(&observer, controller);
            }
        });
        // A change made between `watch::channel` and `subscribe` was published to nobody.
        refresh(&sender, controller);
        // The observer's clone keeps the channel open for as long as the controller lives (a
        // controller is `'static`), so `changed()` never reports a closed channel.
        HealthFeed { controller, health }
    }

    /// The health now, read from the controller itself.
    pub(super) fn current(&self) -> Health {
        self.controller.health()
    }

    /// A receiver that wakes at each change of health.
    pub(super) fn changes(&self) -> watch::Receiver<Health> {
        self.health.clone()
    }

    /// Cancelled at the stop-accepting moment.
    pub(super) fn stop_accepting(&self) -> CancellationToken {
        self.controller.stop_accepting().clone()
    }
}

/// Copies the controller's health into the channel. It reads the controller rather than the
/// event's value, inside the channel's lock: when `ready()` and `unready()` race on two
/// threads, their events may arrive in either order, but the last write reads last, so the
/// channel always ends on the controller's true state. Never blocks for long: the lock is only
/// ever held to copy one value.
fn refresh(sender: &watch::Sender<Health>, controller: &Controller) {
    sender.send_if_modified(|published| {
        let now = controller.health();
        let changed = *published != now;
        *published = now;
        changed
    });
}
