//! One upgrade at a time: a request is refused while another runs, after shutdown began, and in
//! PID 1; otherwise it starts the new process, waits for it, and either hands over (this
//! process's shutdown begins, cause `upgrade`) or stops it and goes on serving.

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::launch::{self, Origin};
use super::watch::{Ended, NewProcess};
use super::{UpgradeError, Upgraded};
use crate::log::{event, human};
use crate::observe::Event;
use crate::sequence::Controller;

type Outcome = Result<Upgraded, UpgradeError>;

/// The upgrades of one controller.
pub(crate) struct Upgrades {
    controller: &'static Controller,
    /// Set at start-up.
    started: OnceLock<Settings>,
    running: AtomicBool,
}

/// What an upgrade needs from start-up.
struct Settings {
    runtime: tokio::runtime::Handle,
    /// `upgrade_timeout`.
    timeout: Duration,
    /// How long the new process has to exit after SIGTERM before SIGKILL.
    grace: Duration,
    /// Where and how the process was started, or why that is unknown.
    origin: Result<Origin, String>,
}

impl Upgrades {
    pub(crate) fn new(controller: &'static Controller) -> Upgrades {
        Upgrades {
            controller,
            started: OnceLock::new(),
            running: AtomicBool::new(false),
        }
    }

    /// Lets upgrades run on `runtime`. Called at start-up: the working directory the relative
    /// argv[0] is resolved against is recorded now, before the application can change it.
    pub(crate) fn start(
        &self,
        runtime: tokio::runtime::Handle,
        timeout: Duration,
        grace: Duration,
    ) {
        let origin = std::env::current_dir()
            .map(|directory| Origin { directory })
            .map_err(|error| format!("the start-up working directory is unknown: {error}"));
        let _ = self.started.set(Settings {
            runtime,
            timeout,
            grace,
            origin,
        });
    }

    /// Asks for an upgrade; resolves to its outcome. Refusals are logged here, at once.
    pub(crate) fn request(&'static self, asked_by: &str) -> impl Future<Output = Outcome> {
        let answer = self.begin(asked_by);
        async move {
            match answer {
                Ok(receiver) => receiver.await.unwrap_or(Err(UpgradeError::ShuttingDown)),
                Err(refused) => Err(refused),
            }
        }
    }

    fn begin(&'static self, asked_by: &str) -> Result<oneshot::Receiver<Outcome>, UpgradeError> {
        let refused = |error: UpgradeError| {
            event!(Warn, "upgrade asked for by {asked_by}: {error}");
            error
        };
        if self.controller.is_shutting_down() {
            return Err(refused(UpgradeError::ShuttingDown));
        }
        let Some(settings) = self.started.get() else {
            return Err(UpgradeError::NotRunning);
        };
        if std::process::id() == 1 {
            return Err(refused(UpgradeError::Pid1));
        }
        if self.running.swap(true, Ordering::AcqRel) {
            return Err(refused(UpgradeError::InProgress));
        }
        event!(Info, "upgrade asked for by {asked_by}");
        let (sender, receiver) = oneshot::channel();
        settings.runtime.spawn(async move {
            let outcome = self.run(settings).await;
            self.running.store(false, Ordering::Release);
            let _ = sender.send(outcome);
        });
        Ok(receiver)
    }

    async fn run(&self, settings: &Settings) -> Outcome {
        let began = Instant::now();
        self.controller.publish(Event::UpgradeBegun);
        let outcome = self.attempt(settings, began).await;
        match &outcome {
            Ok(upgraded) => event!(Info, "{upgraded}"),
            // The service is stopping anyway: nothing failed that the operator must act on.
            Err(interrupted @ UpgradeError::Interrupted { .. }) => event!(Warn, "{interrupted}"),
            Err(failed) => {
                event!(Error, "{failed}");
                self.controller.publish(Event::UpgradeFailed);
            }
        }
        outcome
    }

    async fn attempt(&self, settings: &Settings, began: Instant) -> Outcome {
        let origin = settings
            .origin
            .as_ref()
            .map_err(|reason| UpgradeError::CannotStart(reason.clone()))?;
        let sockets = crate::bind::handout::duplicates().map_err(UpgradeError::CannotStart)?;
        let names = describe(&sockets);
        let launched = launch::launch(origin, sockets).map_err(UpgradeError::CannotStart)?;
        let program: PathBuf = launched.program.clone();
        let mut new = NewProcess::watch(launched).map_err(|error| {
            UpgradeError::CannotStart(format!("cannot watch the new process: {error}"))
        })?;
        let pid = new.pid();
        event!(
            Info,
            "upgrade: started {} as process {pid} with {names}; it has {} to call graceful::ready()",
            program.display(),
            human(settings.timeout)
        );
        let shutdown = self.controller.shutdown_started();
        let ended = tokio::select! {
            biased;
            ended = new.ready_or_exit() => ended,
            _ = tokio::time::sleep(settings.timeout) => {
                new.stop(settings.grace).await;
                return Err(UpgradeError::TimedOut { pid, after: settings.timeout });
            }
            _ = shutdown => {
                new.stop(settings.grace).await;
                return Err(UpgradeError::Interrupted { pid });
            }
        };
        match ended {
            Ended::Exited(status) => Err(UpgradeError::Exited { pid, status }),
            Ended::Ready => {
                if self.controller.hand_over(pid) {
                    Ok(Upgraded {
                        pid,
                        elapsed: began.elapsed(),
                    })
                } else {
                    // Shutdown began another way as the new process got ready: the service is
                    // being stopped, the new process with it.
                    new.stop(settings.grace).await;
                    Err(UpgradeError::Interrupted { pid })
                }
            }
        }
    }
}

/// `2 listener(s) (web on 127.0.0.1:8080, graceful-health on 127.0.0.1:8081)`, for the log.
fn describe(sockets: &[(String, std::net::SocketAddr, std::os::fd::OwnedFd)]) -> String {
    if sockets.is_empty() {
        return "no listener to pass (none was handed out by graceful::bind or the health port)"
            .to_owned();
    }
    let each: Vec<String> = sockets
        .iter()
        .map(|(name, local, _)| format!("{name} on {local}"))
        .collect();
    format!("{} listener(s) ({})", sockets.len(), each.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inflight::InFlight;

    fn upgrades() -> &'static Upgrades {
        let controller = Box::leak(Box::new(Controller::new(InFlight::leak())));
        Box::leak(Box::new(Upgrades::new(controller)))
    }

    #[tokio::test]
    async fn an_upgrade_asked_for_once_shutdown_began_is_refused() {
        let upgrades = upgrades();
        upgrades.start(
            tokio::runtime::Handle::current(),
            Duration::from_secs(30),
            Duration::from_secs(28),
        );
        upgrades.controller.request_shutdown();
        assert_eq!(
            upgrades.request("a test").await,
            Err(UpgradeError::ShuttingDown)
        );
    }

    #[tokio::test]
    async fn without_a_start_nothing_upgrades() {
        assert_eq!(
            upgrades().request("a test").await,
            Err(UpgradeError::NotRunning)
        );
    }
}
