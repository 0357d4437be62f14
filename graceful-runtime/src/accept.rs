//! What an accept loop does when `accept` fails, one policy for `serve` and the health port: an
//! error about one connection is skipped; any other (a full file table, no memory) pauses the
//! loop, and is logged once, then at most once per interval with a count of the rest.
//!
//! Without the pause a loop spins: the queued connection that could not be accepted keeps the
//! listener readable, so `accept` fails again at once. Without the rate limit, anyone who can
//! open connections can flood the log.

use std::io;
use std::time::Duration;

use tokio::time::Instant;

use crate::log::{event, human};

/// How long a loop waits after an error that is not about one connection before it accepts
/// again: short enough that a freed descriptor is used soon, long enough to cost nothing.
pub(crate) const PAUSE: Duration = Duration::from_millis(100);

/// While `accept` keeps failing, at most one line per loop per this interval.
pub(crate) const LOG_INTERVAL: Duration = Duration::from_secs(5);

/// Errors about one connection (the client gave up before `accept`): nothing to wait for.
pub(crate) fn is_about_one_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

/// The accept errors of one loop, for its pauses and its log lines.
#[derive(Debug)]
pub(crate) struct AcceptErrors {
    /// The loop's name at the head of its log lines (`serve`, `health endpoint`).
    name: &'static str,
    /// Set while `accept` fails: since when, and how many failures.
    failing: Option<Failing>,
}

#[derive(Debug)]
struct Failing {
    since: Instant,
    failures: u64,
    last_logged: Instant,
    /// Failures since the last line.
    not_logged: u64,
}

/// What to write for one failure, if anything.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    First,
    StillFailing { not_logged: u64 },
    Nothing,
}

impl AcceptErrors {
    pub(crate) fn new(name: &'static str) -> AcceptErrors {
        AcceptErrors {
            name,
            failing: None,
        }
    }

    /// After `accept` failed: returns at once for an error about one connection, else logs as
    /// the policy allows and pauses for [`PAUSE`]. Cancel-safe: the failure is counted before
    /// the pause.
    pub(crate) async fn pause_after(&mut self, error: &io::Error) {
        if is_about_one_connection(error) {
            return;
        }
        match self.count(Instant::now()) {
            Line::First => event!(
                Warn,
                "{}: accept failed ({error}); pausing {} before each retry, and logging this at \
                 most every {}",
                self.name,
                human(PAUSE),
                human(LOG_INTERVAL)
            ),
            Line::StillFailing { not_logged } => event!(
                Warn,
                "{}: accept failed ({error}), and {not_logged} more times since the last line",
                self.name
            ),
            Line::Nothing => {}
        }
        tokio::time::sleep(PAUSE).await;
    }

    /// After `accept` succeeded: closes a run of failures with one line. A branch on the hot
    /// path, nothing more.
    pub(crate) fn accepted(&mut self) {
        if let Some(failing) = self.failing.take() {
            event!(
                Info,
                "{}: accepting again after {} failed accepts in {}",
                self.name,
                failing.failures,
                human(failing.since.elapsed())
            );
        }
    }

    fn count(&mut self, now: Instant) -> Line {
        let Some(failing) = &mut self.failing else {
            self.failing = Some(Failing {
                since: now,
                failures: 1,
                last_logged: now,
                not_logged: 0,
            });
            return Line::First;
        };
        failing.failures += 1;
        if now.duration_since(failing.last_logged) < LOG_INTERVAL {
            failing.not_logged += 1;
            return Line::Nothing;
        }
        failing.last_logged = now;
        Line::StillFailing {
            not_logged: std::mem::take(&mut failing.not_logged),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn too_many_open_files() -> io::Error {
        // EMFILE as Linux numbers it; any error that is not about one connection does.
        io::Error::from_raw_os_error(24)
    }

    #[tokio::test(start_paused = true)]
    async fn an_error_about_the_machine_pauses_the_loop() {
        let mut errors = AcceptErrors::new("test");
        let started = Instant::now();
        errors.pause_after(&too_many_open_files()).await;
        assert_eq!(started.elapsed(), PAUSE);
        errors.pause_after(&io::Error::other("unknown")).await;
        assert_eq!(started.elapsed(), 2 * PAUSE);
    }

    #[tokio::test(start_paused = true)]
    async fn an_error_about_one_connection_does_not() {
        let mut errors = AcceptErrors::new("test");
        let started = Instant::now();
        for kind in [
            io::ErrorKind::ConnectionAborted,
            io::ErrorKind::ConnectionReset,
            io::ErrorKind::ConnectionRefused,
            io::ErrorKind::Interrupted,
        ] {
            errors.pause_after(&io::Error::from(kind)).await;
        }
        assert_eq!(started.elapsed(), Duration::ZERO);
        assert!(errors.failing.is_none(), "{errors:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_can_be_cut_short() {
        // `serve` selects the pause against stop-accepting: dropping it must leave the count.
        let mut errors = AcceptErrors::new("test");
        let error = too_many_open_files();
        let started = Instant::now();
        tokio::select! {
            _ = errors.pause_after(&error) => panic!("the pause ended first"),
            _ = tokio::time::sleep(PAUSE / 4) => {}
        }
        assert_eq!(started.elapsed(), PAUSE / 4);
        assert_eq!(errors.failing.as_ref().map(|f| f.failures), Some(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_of_failures_is_logged_once_per_interval() {
        let mut errors = AcceptErrors::new("test");
        let mut lines = Vec::new();
        let started = Instant::now();
        // Twelve seconds of a full file table: one failure per pause.
        while started.elapsed() < Duration::from_secs(12) {
            let line = errors.count(Instant::now());
            if line != Line::Nothing {
                lines.push((started.elapsed(), line));
            }
            tokio::time::sleep(PAUSE).await;
        }
        let per_interval = u64::try_from(LOG_INTERVAL.as_millis() / PAUSE.as_millis()).unwrap();
        assert_eq!(
            lines,
            [
                (Duration::ZERO, Line::First),
                (
                    LOG_INTERVAL,
                    Line::StillFailing {
                        not_logged: per_interval - 1
                    }
                ),
                (
                    2 * LOG_INTERVAL,
                    Line::StillFailing {
                        not_logged: per_interval - 1
                    }
                ),
            ]
        );
        assert_eq!(errors.failing.as_ref().map(|f| f.failures), Some(120));

        // Once `accept` succeeds, the next failure starts a new run, logged at once.
        errors.accepted();
        assert!(errors.failing.is_none());
        assert_eq!(errors.count(Instant::now()), Line::First);
    }
}
