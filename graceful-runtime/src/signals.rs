//! The OS signals that start a shutdown, and the dedicated thread that receives them, so that a
//! blocked runtime can neither miss the first signal nor hold up the forced exit of the second.
//! On Unix, signal-hook's iterator receives them without a runtime of its own.

use std::fmt;

/// A Unix signal that `#[graceful::main(signals = [..])]` can listen to.
///
/// On Windows the set is ignored: ctrl-c, ctrl-break, ctrl-close and ctrl-shutdown all start the
/// same sequence.
///
/// ```
/// # extern crate graceful_runtime as graceful;
/// use graceful::Signal;
/// assert_eq!(Signal::from_name("SIGTERM"), Some(Signal::Sigterm));
/// assert_eq!(Signal::Sigint.name(), "SIGINT");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Signal {
    /// SIGTERM, what Kubernetes, Docker and systemd send to stop a process.
    Sigterm,
    /// SIGINT, ctrl-c in a terminal.
    Sigint,
    /// SIGQUIT, ctrl-\\ in a terminal; by convention "quit now, with a core dump", so listen
    /// to it only where a graceful stop is what operators expect from it.
    Sigquit,
    /// SIGHUP, sent when a terminal closes; daemons often use it for "reload" instead, so it
    /// is not in the default set.
    Sighup,
    /// SIGUSR1, free for applications: a stop signal of your own choosing (for instance a
    /// supervisor that sends SIGTERM to the whole group and SIGUSR1 to ask for a drain).
    Sigusr1,
    /// SIGUSR2, free for applications, like SIGUSR1.
    Sigusr2,
}

const ALL: [Signal; 6] = [
    Signal::Sigterm,
    Signal::Sigint,
    Signal::Sigquit,
    Signal::Sighup,
    Signal::Sigusr1,
    Signal::Sigusr2,
];

impl Signal {
    /// The signal's conventional name, such as `"SIGTERM"`.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Sigterm => "SIGTERM",
            Signal::Sigint => "SIGINT",
            Signal::Sigquit => "SIGQUIT",
            Signal::Sighup => "SIGHUP",
            Signal::Sigusr1 => "SIGUSR1",
            Signal::Sigusr2 => "SIGUSR2",
        }
    }

    /// The signal called `name` (`"SIGTERM"`), if it is one graceful listens to.
    pub fn from_name(name: &str) -> Option<Signal> {
        ALL.into_iter().find(|signal| signal.name() == name)
    }

    /// The signal's number on this platform.
    #[cfg(unix)]
    fn number(self) -> i32 {
        use signal_hook::consts::signal;
        match self {
            Signal::Sigterm => signal::SIGTERM,
            Signal::Sigint => signal::SIGINT,
            Signal::Sigquit => signal::SIGQUIT,
            Signal::Sighup => signal::SIGHUP,
            Signal::Sigusr1 => signal::SIGUSR1,
            Signal::Sigusr2 => signal::SIGUSR2,
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A signal as received: what to call it, what it does, and the exit code of a forced exit
/// (128 + N).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Received {
    pub(crate) name: &'static str,
    pub(crate) role: Role,
    pub(crate) forced_exit_code: u8,
}

/// What a signal does when it arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The first begins the shutdown, a second forces the exit.
    Shutdown,
    /// Runs a reload; never counts as a second signal.
    Reload,
}

/// Which signal does what, once the keys are resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SignalRoles {
    pub(crate) shutdown: Vec<Signal>,
    pub(crate) reload: Option<Signal>,
}

impl SignalRoles {
    /// `signals` shut down. `reload` is the `reload_signal` key: `None` when it was not given,
    /// then SIGHUP reloads unless `signals` names it (SIGHUP keeps shutting down, as it did
    /// before reloads existed); `Some(None)` turns reloading by signal off. A signal named
    /// explicitly in both is an error.
    pub(crate) fn resolve(
        signals: &[Signal],
        reload: Option<Option<Signal>>,
    ) -> Result<SignalRoles, String> {
        let reload = match reload {
            None => Some(Signal::Sighup).filter(|sighup| !signals.contains(sighup)),
            Some(Some(signal)) if signals.contains(&signal) => {
                return Err(format!(
                    "{signal} is named both in `signals` (shut down) and as `reload_signal`: a signal does one thing; remove it from one of them"
                ))
            }
            Some(chosen) => chosen,
        };
        Ok(SignalRoles {
            shutdown: signals.to_vec(),
            reload,
        })
    }

    fn each(&self) -> impl Iterator<Item = (Signal, Role)> + '_ {
        let shutdown = self.shutdown.iter().map(|&signal| (signal, Role::Shutdown));
        shutdown.chain(self.reload.map(|signal| (signal, Role::Reload)))
    }
}

/// Installed signal handlers, not yet listened to. Installing happens on the caller's thread,
/// before user code runs, so a signal that arrives during start-up is already caught.
#[cfg(unix)]
pub(crate) struct SignalHandlers {
    signals: signal_hook::iterator::Signals,
    received: Vec<(i32, Received)>,
}

#[cfg(unix)]
impl SignalHandlers {
    /// Installs handlers for `signals`. No runtime: signal-hook's handlers write to a pipe that
    /// the listener thread reads, so nothing on the start-up path builds more than the
    /// application's own runtime.
    pub(crate) fn install(roles: &SignalRoles) -> std::io::Result<SignalHandlers> {
        let mut received: Vec<(i32, Received)> = Vec::new();
        for (signal, role) in roles.each() {
            let number = signal.number();
            if received.iter().any(|(known, _)| *known == number) {
                continue;
            }
            received.push((
                number,
                Received {
                    name: signal.name(),
                    role,
                    // Signal numbers are below 32: 128 + N fits in a u8.
                    forced_exit_code: 128 + u8::try_from(number).unwrap_or(0),
                },
            ));
        }
        let numbers: Vec<i32> = received.iter().map(|(number, _)| *number).collect();
        let signals = signal_hook::iterator::Signals::new(numbers)?;
        Ok(SignalHandlers { signals, received })
    }

    /// Starts the listener thread: `first` runs there at once (start-up work that need not
    /// delay the body), then `on_signal` is called for every signal received, on that thread,
    /// so a blocked runtime can neither miss the first signal nor hold up the second.
    pub(crate) fn spawn(
        self,
        first: impl FnOnce() + Send + 'static,
        mut on_signal: impl FnMut(Received) + Send + 'static,
    ) -> std::io::Result<()> {
        let SignalHandlers {
            mut signals,
            received,
        } = self;
        std::thread::Builder::new()
            .name("graceful-signals".into())
            .spawn(move || {
                first();
                for number in signals.forever() {
                    if let Some((_, signal)) = received.iter().find(|(known, _)| *known == number) {
                        on_signal(*signal);
                    }
                }
            })?;
        Ok(())
    }
}

/// Installed console-event handlers (ctrl-c, ctrl-break, ctrl-close, ctrl-shutdown), not yet
/// listened to. tokio receives them, so the listener thread runs a small runtime of its own.
#[cfg(windows)]
pub(crate) struct SignalHandlers {
    runtime: tokio::runtime::Runtime,
    sources: Vec<(Received, windows::PollSource)>,
}

#[cfg(windows)]
impl SignalHandlers {
    /// Installs handlers for the four console events; `signals` does not apply on Windows.
    pub(crate) fn install(_roles: &SignalRoles) -> std::io::Result<SignalHandlers> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?;
        let sources = {
            let _context = runtime.enter();
            windows::install_sources()?
        };
        Ok(SignalHandlers { runtime, sources })
    }

    /// Starts the listener thread: `first` runs there at once, then `on_signal` is called for
    /// every event received.
    pub(crate) fn spawn(
        self,
        first: impl FnOnce() + Send + 'static,
        mut on_signal: impl FnMut(Received) + Send + 'static,
    ) -> std::io::Result<()> {
        let SignalHandlers {
            runtime,
            mut sources,
        } = self;
        std::thread::Builder::new()
            .name("graceful-signals".into())
            .spawn(move || {
                first();
                runtime.block_on(async move {
                    while let Some(received) = windows::next_signal(&mut sources).await {
                        on_signal(received);
                    }
                })
            })?;
        Ok(())
    }
}

#[cfg(windows)]
mod windows {
    use std::task::{Context, Poll};

    use super::Received;

    pub(super) type PollSource = Box<dyn FnMut(&mut Context<'_>) -> Poll<Option<()>> + Send>;

    /// The next event from any source; `None` once every source has closed.
    pub(super) async fn next_signal(sources: &mut [(Received, PollSource)]) -> Option<Received> {
        std::future::poll_fn(|cx| {
            let mut open = 0;
            for (received, poll) in sources.iter_mut() {
                match poll(cx) {
                    Poll::Ready(Some(())) => return Poll::Ready(Some(*received)),
                    Poll::Ready(None) => {}
                    Poll::Pending => open += 1,
                }
            }
            if open == 0 {
                Poll::Ready(None)
            } else {
                Poll::Pending
            }
        })
        .await
    }

    pub(super) fn install_sources() -> std::io::Result<Vec<(Received, PollSource)>> {
        use tokio::signal::windows;
        // 130 for ctrl-c and ctrl-break, as a shell reports an interrupted program; 143 for the
        // console closing and the system shutting down, which play SIGTERM's part.
        let mut ctrl_c = windows::ctrl_c()?;
        let mut ctrl_break = windows::ctrl_break()?;
        let mut ctrl_close = windows::ctrl_close()?;
        let mut ctrl_shutdown = windows::ctrl_shutdown()?;
        let sources: Vec<(Received, PollSource)> = vec![
            (
                Received {
                    role: super::Role::Shutdown,
                    name: "ctrl-c",
                    forced_exit_code: 130,
                },
                Box::new(move |cx| ctrl_c.poll_recv(cx)),
            ),
            (
                Received {
                    role: super::Role::Shutdown,
                    name: "ctrl-break",
                    forced_exit_code: 130,
                },
                Box::new(move |cx| ctrl_break.poll_recv(cx)),
            ),
            (
                Received {
                    role: super::Role::Shutdown,
                    name: "ctrl-close",
                    forced_exit_code: 143,
                },
                Box::new(move |cx| ctrl_close.poll_recv(cx)),
            ),
            (
                Received {
                    role: super::Role::Shutdown,
                    name: "ctrl-shutdown",
                    forced_exit_code: 143,
                },
                Box::new(move |cx| ctrl_shutdown.poll_recv(cx)),
            ),
        ];
        Ok(sources)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for signal in ALL {
            assert_eq!(Signal::from_name(signal.name()), Some(signal));
        }
        assert_eq!(Signal::from_name("SIGKILL"), None);
    }

    #[test]
    fn sighup_reloads_by_default_unless_signals_names_it() {
        let default = [Signal::Sigterm, Signal::Sigint];
        let roles = SignalRoles::resolve(&default, None).unwrap();
        assert_eq!(roles.reload, Some(Signal::Sighup));
        let with_sighup = [Signal::Sigterm, Signal::Sighup];
        let roles = SignalRoles::resolve(&with_sighup, None).unwrap();
        assert_eq!(roles.reload, None);
        assert_eq!(roles.shutdown, with_sighup);
    }

    #[test]
    fn reload_signal_changes_or_turns_off_the_reload_signal() {
        let default = [Signal::Sigterm, Signal::Sigint];
        let usr1 = SignalRoles::resolve(&default, Some(Some(Signal::Sigusr1))).unwrap();
        assert_eq!(usr1.reload, Some(Signal::Sigusr1));
        let off = SignalRoles::resolve(&default, Some(None)).unwrap();
        assert_eq!(off.reload, None);
    }

    #[test]
    fn a_signal_named_in_both_keys_is_an_error() {
        let error = SignalRoles::resolve(
            &[Signal::Sigterm, Signal::Sighup],
            Some(Some(Signal::Sighup)),
        )
        .unwrap_err();
        assert!(
            error.starts_with("SIGHUP is named both in `signals`"),
            "{error}"
        );
    }
}
