//! The shutdown report: what began the shutdown, how long each phase took, what the drain
//! left behind, how each hook ended, and the exit code. Text for people here; JSON in `json.rs`.

mod essential;
mod json;

use std::fmt;

use crate::log::{event, human, write_stderr};
use std::time::Duration;

pub use crate::hooks::{HookOutcome, HookReport};
pub use crate::inflight::{InFlightCounts, SiteCount};
pub use crate::phase::Phase;
pub use essential::{EssentialEnd, EssentialFailure};

/// What started the shutdown.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cause {
    /// An OS signal (or, on Windows, a console event), by name.
    Signal(&'static str),
    /// [`crate::shutdown`] was called.
    Requested,
    /// The main body returned on its own.
    MainReturned,
    /// An essential task ([`crate::spawn_essential`]) failed, panicked, or ended while the
    /// service was running.
    EssentialTask(EssentialFailure),
    /// [`crate::shutdown_with`] was called.
    Fatal {
        /// The exit code it asked for: the process exits with it.
        code: u8,
        /// The reason it gave, for people reading the report.
        reason: String,
    },
    /// An upgrade ([`crate::upgrade`], or the upgrade signal) started a new process, which is
    /// ready and serves now: this one hands over.
    Upgrade {
        /// The new process's id.
        pid: u32,
    },
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Signal(name) => f.write_str(name),
            Cause::Requested => f.write_str("graceful::shutdown()"),
            Cause::MainReturned => f.write_str("main returned"),
            Cause::EssentialTask(failure) => failure.fmt(f),
            Cause::Fatal { code, reason } => write!(f, "shutdown_with({code}): {reason}"),
            Cause::Upgrade { pid } => write!(f, "upgrade (process {pid} took over)"),
        }
    }
}

/// A [`crate::shutdown_with`] call: the exit code it asked for and its reason.
///
/// ```
/// # use graceful_runtime as graceful;
/// graceful::on_report(|report| {
///     if let Some(fatal) = &report.fatal {
///         eprintln!("exit {} asked for: {}", fatal.code, fatal.reason);
///     }
/// });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Fatal {
    /// The exit code it asked for: the process exits with it.
    pub code: u8,
    /// The reason it gave, for people reading the report.
    pub reason: String,
}

impl Fatal {
    pub(crate) fn new(code: u8, reason: String) -> Fatal {
        Fatal { code, reason }
    }
}

impl fmt::Display for Fatal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shutdown_with({}): {}", self.code, self.reason)
    }
}

/// How the main body ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MainStatus {
    /// Returned `()`, `Ok(())` or `ExitCode::SUCCESS`.
    Returned,
    /// Returned an `Err`, shown with `Debug`.
    Error(String),
    /// Returned an `ExitCode` other than success, shown with `Debug`.
    ExitCode(String),
    /// Panicked; the panic message.
    Panicked(String),
    /// Still running when this deadline fired, and dropped.
    Dropped(Deadline),
}

impl fmt::Display for MainStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MainStatus::Returned => f.write_str("returned"),
            MainStatus::Error(error) => write!(f, "returned an error: {error}"),
            MainStatus::ExitCode(code) => write!(f, "returned {code}"),
            MainStatus::Panicked(message) => write!(f, "panicked: {message}"),
            MainStatus::Dropped(deadline) => write!(f, "still running when {deadline}: dropped"),
        }
    }
}

/// A deadline of the sequence, named when it cuts something short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Deadline {
    /// `drain_timeout` after stop-accepting.
    DrainTimeout,
    /// `grace` after the shutdown began (less `abandon_timeout` where work hands itself back):
    /// the cap on the whole sequence.
    Grace,
}

impl fmt::Display for Deadline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Deadline::DrainTimeout => f.write_str("the drain timed out"),
            Deadline::Grace => f.write_str("the grace period ran out"),
        }
    }
}

/// How the drain ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DrainOutcome {
    /// Everything in flight finished.
    Drained,
    /// A deadline fired first, [`deadline_token`](crate::deadline_token) was cancelled, and
    /// everything still in flight handed its work back and returned within `abandon_timeout`.
    /// Not a failure.
    HandedBack {
        /// Which deadline fired: `drain_timeout`, or `grace` when it came first.
        deadline: Deadline,
        /// What was in flight at the deadline and returned in time, busiest first.
        handed_back: Vec<SiteCount>,
    },
    /// A deadline fired first (and `abandon_timeout` after it, where the deadline token was
    /// used); these sites were still in flight.
    TimedOut {
        /// Which deadline fired: `drain_timeout`, or `grace` when it came first.
        deadline: Deadline,
        /// Sites still in flight, busiest first.
        abandoned: Vec<SiteCount>,
        /// Tasks started with `graceful::spawn` (or `spawn_essential`) that were aborted.
        aborted_tasks: usize,
        /// What returned within `abandon_timeout` after the deadline token was cancelled.
        handed_back: Vec<SiteCount>,
    },
}

/// Everything that happened during one shutdown, emitted after the last hook.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// What started it.
    pub cause: Cause,
    /// Each phase that ran, with its duration, in order.
    pub phases: Vec<(Phase, Duration)>,
    /// What was in flight at the stop-accepting moment.
    pub in_flight_at_stop: InFlightCounts,
    /// How the drain ended.
    pub drain: DrainOutcome,
    /// Every hook, in the order it ran.
    pub hooks: Vec<HookReport>,
    /// Calls that started after teardown had begun, by site.
    pub late_calls: Vec<SiteCount>,
    /// How the main body ended.
    pub main: MainStatus,
    /// A `shutdown_with(code, reason)` made after something else began the shutdown.
    pub fatal: Option<Fatal>,
    /// Essential tasks that failed after something else began the shutdown: each turns exit 0
    /// into 1.
    pub essential_failures: Vec<EssentialFailure>,
    /// The exit code, when it is known as a number (a user's `ExitCode` is opaque).
    pub exit_code: Option<u8>,
}

impl ShutdownReport {
    /// Whether anything went wrong: an essential task that began the shutdown or failed
    /// during it, work aborted at a drain deadline, a failed hook.
    pub fn has_failures(&self) -> bool {
        matches!(self.cause, Cause::EssentialTask(_))
            || matches!(self.drain, DrainOutcome::TimedOut { .. })
            || self.hooks.iter().any(|hook| hook.outcome.is_failure())
            || !self.essential_failures.is_empty()
    }

    /// The whole sequence's duration.
    pub fn total(&self) -> Duration {
        self.phases.iter().map(|(_, duration)| *duration).sum()
    }
}

/// `app::upload x2, http x1`, or `nothing tracked` for an empty list: how every line of
/// graceful's names the sites of a list.
pub(crate) fn sites(list: &[SiteCount]) -> String {
    if list.is_empty() {
        return "nothing tracked".to_owned();
    }
    list.iter()
        .map(SiteCount::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What of `before` is no longer in `after`, site by site: the work that returned between two
/// counts.
pub(crate) fn subtract(before: &[SiteCount], after: &[SiteCount]) -> Vec<SiteCount> {
    before
        .iter()
        .filter_map(|site| {
            let still = after
                .iter()
                .find(|later| later.name == site.name)
                .map_or(0, |later| later.count);
            let returned = site.count.saturating_sub(still);
            (returned > 0).then(|| SiteCount {
                name: site.name.clone(),
                count: returned,
            })
        })
        .collect()
}

impl fmt::Display for ShutdownReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "shutdown report")?;
        writeln!(f, "  cause: {}", self.cause)?;
        let phases: Vec<String> = self
            .phases
            .iter()
            .map(|(phase, duration)| format!("{phase} {}", human(*duration)))
            .collect();
        writeln!(
            f,
            "  phases: {} (total {})",
            phases.join(", "),
            human(self.total())
        )?;
        match &self.drain {
            DrainOutcome::Drained => writeln!(
                f,
                "  drain: {} in flight at stop-accepting, all finished",
                self.in_flight_at_stop
            )?,
            DrainOutcome::HandedBack {
                deadline,
                handed_back,
            } => writeln!(
                f,
                "  drain: {} in flight at stop-accepting; {deadline}; all handed back: {}",
                self.in_flight_at_stop,
                sites(handed_back)
            )?,
            DrainOutcome::TimedOut {
                deadline,
                abandoned,
                aborted_tasks,
                handed_back,
            } => {
                let handed_back = if handed_back.is_empty() {
                    String::new()
                } else {
                    format!("handed back: {}; ", sites(handed_back))
                };
                writeln!(
                    f,
                    "  drain: {} in flight at stop-accepting; {deadline}; {handed_back}abandoned: {}; {aborted_tasks} tracked task(s) aborted",
                    self.in_flight_at_stop,
                    sites(abandoned)
                )?
            }
        }
        if self.hooks.is_empty() {
            writeln!(f, "  hooks: none")?;
        }
        for hook in &self.hooks {
            writeln!(
                f,
                "  hook [order {}] {}: {} ({})",
                hook.order,
                hook.name,
                hook.outcome,
                human(hook.elapsed)
            )?;
        }
        if !self.late_calls.is_empty() {
            writeln!(
                f,
                "  late calls (started after teardown began, not waited for): {}",
                sites(&self.late_calls)
            )?;
        }
        writeln!(f, "  main: {}", self.main)?;
        if let Some(fatal) = &self.fatal {
            writeln!(f, "  {fatal}")?;
        }
        for failure in &self.essential_failures {
            writeln!(f, "  {failure}")?;
        }
        match self.exit_code {
            Some(code) => write!(f, "  exit code: {code}"),
            None => write!(f, "  exit code: main's own ExitCode"),
        }
    }
}

impl ShutdownReport {
    /// Writes the report in `format`: a block of text as one event (a warning when the exit
    /// code is not 0), or one line of JSON on stderr.
    pub(crate) fn write(&self, format: ReportFormat) {
        match format {
            ReportFormat::Text if self.exit_code == Some(0) => event!(Info, "{self}"),
            ReportFormat::Text => event!(Warn, "{self}"),
            ReportFormat::Json => write_stderr(&format!("{}\n", self.to_json())),
        }
    }
}

/// How the final report is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReportFormat {
    /// A block of lines for people: a tracing event, or stderr without a subscriber.
    #[default]
    Text,
    /// One JSON object on one line of stderr, for log pipelines (schema in the README).
    Json,
}

impl ReportFormat {
    /// `"text"` or `"json"`, as `GRACEFUL_REPORT` and the `report` key spell them.
    pub fn from_name(name: &str) -> Option<ReportFormat> {
        match name {
            "text" => Some(ReportFormat::Text),
            "json" => Some(ReportFormat::Json),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> ShutdownReport {
        ShutdownReport {
            cause: Cause::Signal("SIGTERM"),
            phases: vec![
                (Phase::PreStop, Duration::from_millis(5000)),
                (Phase::Drain, Duration::from_millis(1200)),
            ],
            in_flight_at_stop: InFlightCounts {
                calls: 3,
                ..InFlightCounts::default()
            },
            drain: DrainOutcome::TimedOut {
                deadline: Deadline::DrainTimeout,
                abandoned: vec![SiteCount {
                    name: "app::upload".into(),
                    count: 2,
                }],
                aborted_tasks: 1,
                handed_back: vec![],
            },
            hooks: vec![HookReport {
                order: 10,
                name: "app::close_pool".into(),
                outcome: HookOutcome::Failed("pool \"main\" busy".into()),
                elapsed: Duration::from_millis(12),
            }],
            late_calls: vec![],
            main: MainStatus::Dropped(Deadline::DrainTimeout),
            fatal: None,
            essential_failures: vec![],
            exit_code: Some(1),
        }
    }

    #[test]
    fn text_names_abandoned_sites_and_hook_outcomes() {
        let text = report().to_string();
        assert!(text.contains("abandoned: app::upload x2"), "{text}");
        assert!(
            text.contains("hook [order 10] app::close_pool: failed: pool \"main\" busy (12ms)"),
            "{text}"
        );
        assert!(text.contains("exit code: 1"), "{text}");
    }

    #[test]
    fn each_line_names_the_deadline_that_fired() {
        let mut report = report();
        let text = report.to_string();
        assert!(text.contains("; the drain timed out; abandoned"), "{text}");
        assert!(
            text.contains("main: still running when the drain timed out"),
            "{text}"
        );

        report.drain = DrainOutcome::TimedOut {
            deadline: Deadline::Grace,
            abandoned: vec![],
            aborted_tasks: 0,
            handed_back: vec![],
        };
        report.main = MainStatus::Dropped(Deadline::Grace);
        let text = report.to_string();
        assert!(
            text.contains("; the grace period ran out; abandoned: nothing tracked;"),
            "{text}"
        );
        assert!(
            text.contains("main: still running when the grace period ran out"),
            "{text}"
        );
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&report.to_json()).unwrap()["drain"]
                ["outcome"],
            "grace_spent"
        );
    }

    #[test]
    fn json_is_one_line_with_the_documented_fields() {
        let line = report().to_json();
        assert!(!line.contains('\n'));
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["graceful_report"], 1);
        assert_eq!(value["cause"]["signal"], "SIGTERM");
        assert_eq!(value["phases"][0]["phase"], "pre-stop");
        assert_eq!(value["phases"][0]["ms"], 5000);
        assert_eq!(value["total_ms"], 6200);
        assert_eq!(value["drain"]["outcome"], "timed_out");
        assert_eq!(value["drain"]["abandoned"][0]["site"], "app::upload");
        assert_eq!(value["drain"]["abandoned"][0]["count"], 2);
        assert_eq!(value["hooks"][0]["outcome"], "failed");
        assert_eq!(value["hooks"][0]["detail"], "pool \"main\" busy");
        assert_eq!(value["main"]["status"], "dropped");
        assert_eq!(value["failed"], true);
        assert_eq!(value["exit_code"], 1);
    }
}
