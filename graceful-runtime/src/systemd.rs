//! systemd's notify protocol, through the `sd-notify` crate: READY=1 at `ready()`, STOPPING=1
//! when shutdown begins, EXTEND_TIMEOUT_USEC through the sequence, WATCHDOG=1 pings. Without
//! the `systemd` feature (or off Unix) every call is a no-op, and with it they do nothing
//! unless systemd set `NOTIFY_SOCKET`.

use std::time::Duration;

#[cfg(all(unix, feature = "systemd"))]
mod notify {
    use sd_notify::NotifyState;
    use std::time::Duration;

    pub(super) fn send(states: &[NotifyState<'_>]) {
        if let Err(error) = sd_notify::notify(states) {
            crate::report::event!(Warn, "systemd notification failed: {error}");
        }
    }

    pub(crate) fn ready() {
        send(&[NotifyState::Ready]);
    }

    pub(crate) fn stopping() {
        send(&[NotifyState::Stopping]);
    }

    pub(crate) fn extend_timeout(by: Duration) {
        let micros = u32::try_from(by.as_micros()).unwrap_or(u32::MAX);
        send(&[NotifyState::ExtendTimeoutUsec(micros)]);
    }

    pub(crate) fn watchdog_interval() -> Option<Duration> {
        sd_notify::watchdog_enabled()
    }

    pub(crate) fn watchdog_ping() {
        send(&[NotifyState::Watchdog]);
    }
}

#[cfg(not(all(unix, feature = "systemd")))]
mod notify {
    use std::time::Duration;

    pub(crate) fn ready() {}
    pub(crate) fn stopping() {}
    pub(crate) fn extend_timeout(_by: Duration) {}
    pub(crate) fn watchdog_interval() -> Option<Duration> {
        None
    }
    pub(crate) fn watchdog_ping() {}
}

pub(crate) use notify::{extend_timeout, ready, stopping};

/// How often EXTEND_TIMEOUT_USEC is renewed while shutting down.
pub(crate) const EXTEND_EVERY: Duration = Duration::from_secs(1);

/// Pings WATCHDOG=1 at half the interval systemd asked for, from start-up until the process
/// exits. Pings come from the application's runtime, so a wedged runtime stops them and
/// systemd's watchdog does its job.
pub(crate) fn spawn_watchdog_pings() {
    let Some(interval) = notify::watchdog_interval() else {
        return;
    };
    let every = (interval / 2).max(Duration::from_millis(1));
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        loop {
            ticks.tick().await;
            notify::watchdog_ping();
        }
    });
}
