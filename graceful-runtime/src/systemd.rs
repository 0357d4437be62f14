//! systemd's notify protocol, through the `sd-notify` crate, as an observer of the sequence:
//! READY=1 when health becomes ready, RELOADING=1 then READY=1 around a reload, STOPPING=1 when
//! shutdown begins, STATUS= with each phase
//! (what `systemctl status` shows), EXTEND_TIMEOUT_USEC through the sequence up to graceful's
//! own deadline, and WATCHDOG=1 pings from the
//! application's runtime. Without the `systemd` feature (or off Unix) nothing is installed,
//! and with it nothing happens unless systemd set `NOTIFY_SOCKET`.

use std::time::Duration;

use crate::sequence::Controller;

/// How often EXTEND_TIMEOUT_USEC is renewed while shutting down.
#[cfg_attr(not(all(unix, feature = "systemd")), allow(dead_code))]
const EXTEND_EVERY: Duration = Duration::from_secs(1);

/// How far past graceful's own forced exit systemd's stop timeout reaches: enough that
/// graceful always exits first (with its report and its exit code), so that only a process
/// frozen beyond graceful's watchdog is left for systemd to kill.
#[cfg_attr(not(all(unix, feature = "systemd")), allow(dead_code))]
pub(crate) const EXTEND_SLACK: Duration = Duration::from_secs(1);

#[cfg(all(unix, feature = "systemd"))]
mod notify {
    use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
    use std::time::{Duration, Instant};

    use sd_notify::NotifyState;

    use super::{EXTEND_EVERY, EXTEND_SLACK};
    use crate::budget::WATCHDOG_MARGIN;
    use crate::log::event;
    use crate::observe::Event;
    use crate::phase::{Health, Phase};
    use crate::sequence::Controller;

    /// What to tell systemd, sent to the notifier thread.
    enum Message {
        Ready,
        /// A reload began (RELOADING=1 with MONOTONIC_USEC); it ends with `Ready`.
        Reloading,
        /// What `systemctl status` shows: the phase the sequence is in.
        Status(Phase),
        /// Shutdown began; graceful forces the exit at this instant at the latest.
        Stopping(Instant),
        Watchdog,
    }

    /// A few seconds of pings: more only piles up behind a stuck socket.
    const QUEUE: usize = 64;

    pub(super) fn install(controller: &'static Controller, grace: Duration) {
        if std::env::var_os("NOTIFY_SOCKET").is_none() {
            return;
        }
        let (sender, receiver) = sync_channel::<Message>(QUEUE);
        // sd_notify blocks while the socket's queue is full; neither the runtime nor the signal
        // thread (where observers run) may block, so a thread of its own does the sending.
        let spawned = std::thread::Builder::new()
            .name("graceful-systemd".into())
            .spawn(move || notifier(receiver));
        if let Err(error) = spawned {
            event!(Warn, "cannot start the systemd notifier thread: {error}");
            return;
        }
        let events = sender.clone();
        controller.subscribe(move |event| match event {
            Event::Health(Health::Ready) => send(&events, Message::Ready),
            Event::ShutdownBegun { began } => {
                send(&events, Message::Stopping(*began + grace + WATCHDOG_MARGIN))
            }
            Event::PhaseEntered(phase) => send(&events, Message::Status(*phase)),
            Event::ReloadBegun => send(&events, Message::Reloading),
            Event::ReloadEnded if controller.health() == Health::Ready => {
                send(&events, Message::Ready)
            }
            _ => {}
        });
        if controller.health() == Health::Ready {
            send(&sender, Message::Ready);
        }
        spawn_watchdog_pings(sender);
    }

    fn send(sender: &SyncSender<Message>, message: Message) {
        if let Err(TrySendError::Full(_)) = sender.try_send(message) {
            event!(
                Warn,
                "systemd is not reading NOTIFY_SOCKET: a notification was dropped"
            );
        }
    }

    /// Sends what it receives; once stopping, renews the stop timeout every [`EXTEND_EVERY`]
    /// so that systemd's deadline is graceful's own plus [`EXTEND_SLACK`], and no further.
    fn notifier(receiver: Receiver<Message>) {
        let mut deadline: Option<Instant> = None;
        loop {
            let message = match deadline {
                None => receiver.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(_) => receiver.recv_timeout(EXTEND_EVERY),
            };
            let state = match message {
                Ok(Message::Ready) => {
                    // `systemctl status` shows the phase from here on, `running` first.
                    notify(&[NotifyState::Status(Phase::Running.as_str())]);
                    NotifyState::Ready
                }
                Ok(Message::Reloading) => {
                    // systemd 253 and later want the monotonic time beside RELOADING=1 (it
                    // tells one reload from another); 252 ignores it.
                    match NotifyState::monotonic_usec_now() {
                        Ok(now) => notify(&[NotifyState::Reloading, now]),
                        Err(_) => notify(&[NotifyState::Reloading]),
                    }
                    continue;
                }
                Ok(Message::Status(phase)) => NotifyState::Status(phase.as_str()),
                Ok(Message::Watchdog) => NotifyState::Watchdog,
                Ok(Message::Stopping(at)) => {
                    deadline = Some(at);
                    notify(&[NotifyState::Stopping]);
                    extension(at)
                }
                Err(RecvTimeoutError::Timeout) => match deadline {
                    Some(at) if Instant::now() < at => extension(at),
                    _ => continue,
                },
                Err(RecvTimeoutError::Disconnected) => return,
            };
            notify(&[state]);
        }
    }

    fn extension(deadline: Instant) -> NotifyState<'static> {
        let left = deadline.saturating_duration_since(Instant::now()) + EXTEND_SLACK;
        NotifyState::ExtendTimeoutUsec(u32::try_from(left.as_micros()).unwrap_or(u32::MAX))
    }

    fn notify(states: &[NotifyState<'_>]) {
        if let Err(error) = sd_notify::notify(states) {
            event!(Warn, "systemd notification failed: {error}");
        }
    }

    /// Pings WATCHDOG=1 at half the interval systemd asked for, from start-up until the
    /// process exits. Pings come from a task on the application's runtime, so a wedged runtime
    /// stops them and systemd's watchdog does its job.
    fn spawn_watchdog_pings(sender: SyncSender<Message>) {
        let Some(interval) = sd_notify::watchdog_enabled() else {
            return;
        };
        let every = (interval / 2).max(Duration::from_millis(1));
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            loop {
                ticks.tick().await;
                send(&sender, Message::Watchdog);
            }
        });
    }
}

/// Subscribes the notifier to `controller`. Call inside the application's runtime: the
/// watchdog pings are a task there.
#[cfg(all(unix, feature = "systemd"))]
pub(crate) fn install(controller: &'static Controller, grace: Duration) {
    notify::install(controller, grace);
}

/// Without the `systemd` feature there is nothing to tell.
#[cfg(not(all(unix, feature = "systemd")))]
pub(crate) fn install(_controller: &'static Controller, _grace: Duration) {}
