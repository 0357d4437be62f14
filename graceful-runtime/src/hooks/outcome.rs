//! What a hook's run came to: the outcome and the report line that `graceful::report` shows.

use std::fmt;
use std::time::Duration;

/// How one hook ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HookOutcome {
    /// Returned `()` or `Ok(())`.
    Completed,
    /// Returned an error, shown with `Display`.
    Failed(String),
    /// Panicked; the panic message.
    Panicked(String),
    /// Did not finish within its timeout. An async hook is cancelled; a sync one is abandoned
    /// on its thread.
    TimedOut(Duration),
    /// Not started, or cut short, because the grace period was spent.
    Skipped,
    /// Registered after teardown had begun: not run.
    Late,
    /// A reload hook not started because shutdown began during the reload.
    Interrupted,
}

impl HookOutcome {
    /// Whether this outcome makes the shutdown a failure.
    pub fn is_failure(&self) -> bool {
        !matches!(self, HookOutcome::Completed)
    }
}

impl fmt::Display for HookOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HookOutcome::Completed => f.write_str("ok"),
            HookOutcome::Failed(error) => write!(f, "failed: {error}"),
            HookOutcome::Panicked(message) => write!(f, "panicked: {message}"),
            HookOutcome::TimedOut(limit) => {
                write!(f, "timed out after {}", crate::log::human(*limit))
            }
            HookOutcome::Skipped => f.write_str("skipped: grace period spent"),
            HookOutcome::Late => f.write_str("not run: registered after teardown began"),
            HookOutcome::Interrupted => f.write_str("not run: shutdown began"),
        }
    }
}

/// One hook's line in the report.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HookReport {
    /// The `order` it was declared or registered with: lower orders ran first, equal orders
    /// together.
    pub order: i32,
    /// `module::fn` of an `#[graceful::on_shutdown]` fn, the attribute's `name`, or the name
    /// given to `register_hook`: what to search the code for.
    pub name: String,
    /// How it ended; [`HookOutcome::is_failure`] says whether it turns the exit code to 1.
    pub outcome: HookOutcome,
    /// Wall time from its start to its end (or to its timeout), for spotting slow teardown.
    pub elapsed: Duration,
}

impl HookReport {
    pub(crate) fn new(order: i32, name: String, outcome: HookOutcome, elapsed: Duration) -> Self {
        HookReport {
            order,
            name,
            outcome,
            elapsed,
        }
    }
}
