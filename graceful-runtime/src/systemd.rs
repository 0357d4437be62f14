//! systemd's notify protocol, through the `sd-notify` crate: READY=1 at `ready()`, STOPPING=1
//! when shutdown begins, EXTEND_TIMEOUT_USEC through the sequence, WATCHDOG=1 pings. Without
//! the `systemd` feature (or off Unix) every call is a no-op, and with it they do nothing
//! unless systemd set `NOTIFY_SOCKET`.

use std::time::Duration;

#[cfg(all(unix, feature = "systemd"))]
mod notify {
    use sd_notify::NotifyState;
    use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
    use std::sync::OnceLock;
    use std::time::Duration;

    /// What to tell systemd, sent to the notifier thread.
    enum Message {
        Ready,
        Stopping,
        ExtendTimeout(u32),
        Watchdog,
    }

    /// A few seconds of pings and renewals: more only piles up behind a stuck socket.
    const QUEUE: usize = 64;

    /// Sends notifications from a thread of their own: `sd_notify::notify` blocks while the
    /// socket's queue is full, and neither the runtime nor the signal thread may block.
    fn notifier() -> Option<&'static SyncSender<Message>> {
        static NOTIFIER: OnceLock<Option<SyncSender<Message>>> = OnceLock::new();
        NOTIFIER
            .get_or_init(|| {
                std::env::var_os("NOTIFY_SOCKET")?;
                let (sender, receiver) = sync_channel::<Message>(QUEUE);
                let spawned = std::thread::Builder::new()
                    .name("graceful-systemd".into())
                    .spawn(move || {
                        for message in receiver {
                            let state = match message {
                                Message::Ready => NotifyState::Ready,
                                Message::Stopping => NotifyState::Stopping,
                                Message::ExtendTimeout(micros) => {
                                    NotifyState::ExtendTimeoutUsec(micros)
                                }
                                Message::Watchdog => NotifyState::Watchdog,
                            };
                            if let Err(error) = sd_notify::notify(&[state]) {
                                crate::report::event!(Warn, "systemd notification failed: {error}");
                            }
                        }
                    });
                spawned.ok().map(|_| sender)
            })
            .as_ref()
    }

    fn send(message: Message) {
        let Some(notifier) = notifier() else { return };
        if let Err(TrySendError::Full(_)) = notifier.try_send(message) {
            crate::report::event!(
                Warn,
                "systemd is not reading NOTIFY_SOCKET: a notification was dropped"
            );
        }
    }

    pub(crate) fn ready() {
        send(Message::Ready);
    }

    pub(crate) fn stopping() {
        send(Message::Stopping);
    }

    pub(crate) fn extend_timeout(by: Duration) {
        send(Message::ExtendTimeout(
            u32::try_from(by.as_micros()).unwrap_or(u32::MAX),
        ));
    }

    pub(crate) fn watchdog_interval() -> Option<Duration> {
        sd_notify::watchdog_enabled()
    }

    pub(crate) fn watchdog_ping() {
        send(Message::Watchdog);
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
