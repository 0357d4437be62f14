//! How the process exits: the one exit-status type, the rules that pick it, and the deadlines
//! that force it (the watchdog, a second signal, kept values that hang while dropping).
//!
//! The user's own `ExitCode` is opaque (std hides its number), so it can only leave the process
//! by being returned from `main`. Every path that could end the process while such a code is
//! pending therefore lets `main` return it, within a deadline, instead of calling
//! `process::exit`.

use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use super::Controller;
use crate::budget::{PAUSE_TOLERANCE, WATCHDOG_MARGIN};
use crate::log::{event, flush_std, human};
use crate::report::{EssentialEnd, EssentialFailure, Fatal, MainStatus};
use crate::sync::lock;

/// How the process exits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum ProcessExit {
    /// A code graceful chose, by the documented rules.
    Code(u8),
    /// The main body's own non-success `ExitCode`, returned from `main` as it is.
    Main(ExitCode),
}

impl ProcessExit {
    /// The code as a number, when graceful chose it.
    pub(crate) fn number(self) -> Option<u8> {
        match self {
            ProcessExit::Code(code) => Some(code),
            ProcessExit::Main(_) => None,
        }
    }

    pub(crate) fn into_exit_code(self) -> ExitCode {
        match self {
            ProcessExit::Code(code) => ExitCode::from(code),
            ProcessExit::Main(code) => code,
        }
    }
}

/// The exit status, by the documented precedence: `shutdown_with`'s code; 101 for a panic of
/// main; 1 for its error; the user's non-success `ExitCode`; 101 for an essential task's panic
/// that began the shutdown, 1 for its error or early end; 1 for aborted work, a failed hook or an
/// essential task that failed during the shutdown; 0.
pub(crate) fn exit_status(
    fatal: Option<&Fatal>,
    main: &MainStatus,
    user_code: Option<ExitCode>,
    essential_cause: Option<&EssentialFailure>,
    failures: bool,
) -> ProcessExit {
    if let Some(fatal) = fatal {
        return ProcessExit::Code(fatal.code);
    }
    match (main, user_code, essential_cause) {
        (MainStatus::Panicked(_), _, _) => ProcessExit::Code(101),
        (MainStatus::Error(_), _, _) => ProcessExit::Code(1),
        (_, Some(user_code), _) => ProcessExit::Main(user_code),
        (_, _, Some(failure)) if matches!(failure.end, EssentialEnd::Panicked(_)) => {
            ProcessExit::Code(101)
        }
        (_, _, Some(_)) => ProcessExit::Code(1),
        _ if failures => ProcessExit::Code(1),
        _ => ProcessExit::Code(0),
    }
}

impl Controller {
    /// Exits the process now: reports why, gives kept values (log writers) a moment to flush,
    /// exits. For a second signal and a watchdog that found the sequence stuck.
    pub(crate) fn force_exit(&self, code: u8, why: &str) -> ! {
        event!(Error, "{why}: forcing exit {code} {}", self.abandonment());
        self.release_kept_within(std::time::Instant::now() + WATCHDOG_MARGIN, None);
        flush_std();
        std::process::exit(i32::from(code))
    }

    /// What a forced exit prints: the phase it cut short and the work it abandoned.
    fn abandonment(&self) -> String {
        let busy = crate::report::sites(&self.inflight.busy_sites());
        format!("in phase {}; abandoned in flight: {busy}", self.phase())
    }

    /// The watchdog, on a thread of its own from the start of shutdown (`began`): forces the
    /// exit if the sequence has not written its report `grace` (plus a small margin) later, so
    /// that a blocked runtime cannot keep the process past its deadline.
    pub(crate) fn watch_grace(&self, began: std::time::Instant, grace: Duration) {
        let grace_ends = began + grace;
        std::thread::sleep(grace_ends.saturating_duration_since(std::time::Instant::now()));
        let stopped = running_time(WATCHDOG_MARGIN);
        // Once the report is out, `Builder::run` owns the exit, under a deadline of its own
        // that ends at the same moment; a user's `ExitCode` can only leave through `main`.
        if self.finished.get().is_some() {
            return;
        }
        let code = self.fatal.get().map_or(1, |fatal| fatal.code);
        let mut why = format!("grace period ({}) spent", human(grace));
        if !stopped.is_zero() {
            why += &format!(
                " (the process was stopped for {} of its margin)",
                human(stopped)
            );
        }
        self.force_exit(code, &why);
    }

    /// Drops what `keep_until_exit` holds, newest first (the order a stack of guards unwinds),
    /// on a thread of its own, and waits for it until `deadline`. A value that hangs while
    /// dropping is abandoned there: the exit never waits on it past the deadline. Returns
    /// whether every value was dropped in time.
    pub(crate) fn release_kept_within(
        &self,
        deadline: std::time::Instant,
        runtime: Option<tokio::runtime::Handle>,
    ) -> bool {
        // `try_lock` would be wrong here: `keep_until_exit` holds the lock only to push.
        let kept = std::mem::take(&mut *lock(&self.kept));
        if kept.is_empty() {
            return true;
        }
        let count = kept.len();
        let (done, finished) = mpsc::channel::<()>();
        let release = move || {
            // Kept values (an exporter handle, say) may need the runtime while they drop.
            let _context = runtime.as_ref().map(tokio::runtime::Handle::enter);
            kept.into_iter().rev().for_each(drop);
            let _ = done.send(());
        };
        if let Err(error) = std::thread::Builder::new()
            .name("graceful-release".into())
            .spawn(release)
        {
            event!(
                Warn,
                "cannot start a thread to drop kept values ({error}): not dropping them"
            );
            return false;
        }
        let wait = deadline.saturating_duration_since(std::time::Instant::now());
        if finished.recv_timeout(wait).is_ok() {
            return true;
        }
        event!(
            Warn,
            "keep_until_exit: {count} value(s) still dropping at the exit deadline; exiting without them"
        );
        false
    }
}

/// Lets `margin` of running time pass: time the whole process spends stopped (SIGSTOP, a frozen
/// cgroup, a debugger, a paused VM) does not count, since the runtime, stopped with it, could
/// not use it. The monotonic clock runs on while a process is stopped, so each short sleep that
/// overran by more than `PAUSE_TOLERANCE` counts only as asked. Returns the time seen stopped.
fn running_time(margin: Duration) -> Duration {
    const STEP: Duration = Duration::from_millis(50);
    let mut left = margin;
    let mut stopped = Duration::ZERO;
    while !left.is_zero() {
        let step = left.min(STEP);
        let slept = std::time::Instant::now();
        std::thread::sleep(step);
        let took = slept.elapsed();
        if took > step + PAUSE_TOLERANCE {
            stopped += took - step;
        }
        left -= step;
    }
    stopped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shutdown_with_wins_then_panic_then_error_then_the_users_code_then_failures() {
        let fatal = Fatal::new(3, "gone".into());
        let panicked = MainStatus::Panicked("boom".into());
        let seven = Some(ExitCode::from(7));
        assert_eq!(
            exit_status(Some(&fatal), &panicked, seven, None, true),
            ProcessExit::Code(3)
        );
        assert_eq!(
            exit_status(None, &panicked, seven, None, true),
            ProcessExit::Code(101)
        );
        assert_eq!(
            exit_status(None, &MainStatus::Error("bad".into()), seven, None, false),
            ProcessExit::Code(1)
        );
        assert_eq!(
            exit_status(None, &MainStatus::ExitCode("7".into()), seven, None, true),
            ProcessExit::Main(ExitCode::from(7))
        );
        assert_eq!(
            exit_status(None, &MainStatus::Returned, None, None, true),
            ProcessExit::Code(1)
        );
        assert_eq!(
            exit_status(None, &MainStatus::Returned, None, None, false),
            ProcessExit::Code(0)
        );
    }

    #[test]
    fn an_essential_task_that_began_the_shutdown_exits_101_for_a_panic_and_1_otherwise() {
        let panicked = EssentialFailure::new("consumer", EssentialEnd::Panicked("boom".into()));
        let failed = EssentialFailure::new("consumer", EssentialEnd::Failed("reset".into()));
        let ended = EssentialFailure::new("consumer", EssentialEnd::EndedEarly);
        let returned = MainStatus::Returned;
        assert_eq!(
            exit_status(None, &returned, None, Some(&panicked), false),
            ProcessExit::Code(101)
        );
        assert_eq!(
            exit_status(None, &returned, None, Some(&failed), false),
            ProcessExit::Code(1)
        );
        assert_eq!(
            exit_status(None, &returned, None, Some(&ended), false),
            ProcessExit::Code(1)
        );
        let fatal = Fatal::new(3, "gone".into());
        assert_eq!(
            exit_status(Some(&fatal), &returned, None, Some(&panicked), true),
            ProcessExit::Code(3),
            "shutdown_with still wins"
        );
        let seven = Some(ExitCode::from(7));
        assert_eq!(
            exit_status(
                None,
                &MainStatus::ExitCode("7".into()),
                seven,
                Some(&failed),
                true
            ),
            ProcessExit::Main(ExitCode::from(7)),
            "main's own ExitCode is kept"
        );
    }
}
