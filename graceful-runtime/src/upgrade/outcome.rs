//! What an upgrade comes to, for `graceful::upgrade()`'s caller and for the log: the new process
//! took over, or why it did not.

use std::fmt;
use std::time::Duration;

use crate::log::human;

/// An upgrade that completed: the new process called `graceful::ready()`, and this one has
/// begun its shutdown (cause `upgrade`).
///
/// ```
/// # use graceful_runtime as graceful;
/// # async fn example() {
/// match graceful::upgrade().await {
///     Ok(upgraded) => println!("{upgraded}"), // upgraded: process 4242 ready in 85ms
///     Err(failed) => eprintln!("{failed}"),   // this process goes on serving
/// }
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Upgraded {
    /// The new process's id.
    pub pid: u32,
    /// From the request to the new process's `graceful::ready()`.
    pub elapsed: Duration,
}

impl fmt::Display for Upgraded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "upgraded: process {} ready in {}",
            self.pid,
            human(self.elapsed)
        )
    }
}

/// Why an upgrade did not happen. In every case this process goes on serving, its readiness
/// unchanged, and a later upgrade may be tried.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpgradeError {
    /// Not on Unix, or graceful was built without its `upgrade` feature.
    Unsupported,
    /// Nothing runs upgrades in this process: it was not started by `#[graceful::main]` or
    /// `Builder::run`.
    NotRunning,
    /// Shutdown had begun: upgrades are ignored from then on.
    ShuttingDown,
    /// Another upgrade is under way; this request was ignored.
    InProgress,
    /// This process is PID 1, as a container's service is: its exit would end the container
    /// and the new process with it.
    Pid1,
    /// The new process could not be started (the binary is missing, a socket could not be
    /// duplicated, ...).
    CannotStart(String),
    /// The new process exited before it called `graceful::ready()`.
    Exited {
        /// Its process id.
        pid: u32,
        /// How it ended: `exit code 1`, `killed by SIGSEGV`.
        status: String,
    },
    /// The new process did not call `graceful::ready()` within `upgrade_timeout`; it was sent
    /// SIGTERM (SIGKILL after `grace`) and reaped.
    TimedOut {
        /// Its process id.
        pid: u32,
        /// `upgrade_timeout`.
        after: Duration,
    },
    /// Shutdown began while the new process was starting: it was stopped, as the rest of the
    /// service is.
    Interrupted {
        /// Its process id.
        pid: u32,
    },
}

impl fmt::Display for UpgradeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpgradeError::Unsupported => f.write_str(
                "upgrade unavailable: upgrades need Unix and graceful's `upgrade` feature",
            ),
            UpgradeError::NotRunning => f.write_str(
                "upgrade ignored: the process was not started by #[graceful::main] or Builder::run",
            ),
            UpgradeError::ShuttingDown => f.write_str("upgrade ignored: shutdown has begun"),
            UpgradeError::InProgress => {
                f.write_str("upgrade ignored: another upgrade is under way")
            }
            UpgradeError::Pid1 => f.write_str(
                "upgrade refused: this process is PID 1, as in a container, where its exit ends the container and the new process with it; use rolling restarts there",
            ),
            UpgradeError::CannotStart(reason) => write!(f, "upgrade failed: {reason}"),
            UpgradeError::Exited { pid, status } => write!(
                f,
                "upgrade failed: the new process {pid} exited with {status} before it was ready; this process goes on serving"
            ),
            UpgradeError::TimedOut { pid, after } => write!(
                f,
                "upgrade failed: the new process {pid} was not ready within upgrade_timeout {}; it was stopped, and this process goes on serving",
                human(*after)
            ),
            UpgradeError::Interrupted { pid } => write!(
                f,
                "upgrade abandoned: shutdown began while the new process {pid} was starting; it was stopped"
            ),
        }
    }
}

impl std::error::Error for UpgradeError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_say_what_happened_to_the_new_process() {
        let exited = UpgradeError::Exited {
            pid: 7,
            status: "exit code 1".into(),
        };
        assert_eq!(
            exited.to_string(),
            "upgrade failed: the new process 7 exited with exit code 1 before it was ready; this process goes on serving"
        );
        let timed_out = UpgradeError::TimedOut {
            pid: 7,
            after: Duration::from_secs(30),
        };
        assert!(
            timed_out.to_string().starts_with(
                "upgrade failed: the new process 7 was not ready within upgrade_timeout 30s"
            ),
            "{timed_out}"
        );
        assert!(UpgradeError::Pid1.to_string().contains("rolling restarts"));
    }

    #[test]
    fn success_names_the_new_process() {
        let upgraded = Upgraded {
            pid: 42,
            elapsed: Duration::from_millis(85),
        };
        assert_eq!(upgraded.to_string(), "upgraded: process 42 ready in 85ms");
    }
}
