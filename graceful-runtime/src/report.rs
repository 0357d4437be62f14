//! The shutdown report, and where graceful's events go: to tracing when a subscriber is
//! installed, else to stderr, so a new user always sees what happened.

use std::fmt;
use std::time::Duration;

use crate::hooks::HookReport;
use crate::inflight::SiteCount;
use crate::phase::Phase;

/// Severity of one of graceful's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    Info,
    Warn,
    Error,
}

/// Emits one event: a tracing event with target `graceful` when a global subscriber is set,
/// otherwise a line on stderr.
pub(crate) fn emit(level: Level, message: fmt::Arguments<'_>) {
    if tracing::dispatcher::has_been_set() {
        match level {
            Level::Info => tracing::info!(target: "graceful", "{message}"),
            Level::Warn => tracing::warn!(target: "graceful", "{message}"),
            Level::Error => tracing::error!(target: "graceful", "{message}"),
        }
    } else {
        use std::io::Write;
        // One write of the whole event, so lines from other threads do not interleave inside it.
        let line = format!("graceful: {message}\n");
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

macro_rules! event {
    ($level:ident, $($message:tt)+) => {
        $crate::report::emit($crate::report::Level::$level, format_args!($($message)+))
    };
}
pub(crate) use event;

/// What started the shutdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// An OS signal (or, on Windows, a console event), by name.
    Signal(&'static str),
    /// [`crate::shutdown`] was called.
    Requested,
    /// The main body returned on its own.
    MainReturned,
    /// [`crate::shutdown_with`] was called.
    Fatal {
        /// The exit code asked for.
        code: u8,
        /// Why.
        reason: String,
    },
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Signal(name) => f.write_str(name),
            Cause::Requested => f.write_str("graceful::shutdown()"),
            Cause::MainReturned => f.write_str("main returned"),
            Cause::Fatal { code, reason } => write!(f, "shutdown_with({code}): {reason}"),
        }
    }
}

/// How the main body ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MainStatus {
    /// Returned `()`, `Ok(())` or `ExitCode::SUCCESS`.
    Returned,
    /// Returned an `Err`, shown with `Debug`.
    Error(String),
    /// Returned an `ExitCode` other than success, shown with `Debug`.
    ExitCode(String),
    /// Panicked; the panic message.
    Panicked(String),
    /// Still running at the drain timeout, and dropped.
    Dropped,
}

impl fmt::Display for MainStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MainStatus::Returned => f.write_str("returned"),
            MainStatus::Error(error) => write!(f, "returned an error: {error}"),
            MainStatus::ExitCode(code) => write!(f, "returned {code}"),
            MainStatus::Panicked(message) => write!(f, "panicked: {message}"),
            MainStatus::Dropped => f.write_str("still running at the drain timeout: dropped"),
        }
    }
}

/// How the drain ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DrainOutcome {
    /// Everything in flight finished.
    Drained,
    /// `drain_timeout` passed first; these sites were still in flight.
    TimedOut {
        /// Sites still in flight, busiest first.
        abandoned: Vec<SiteCount>,
        /// Tracked tasks aborted.
        aborted_tasks: usize,
    },
    /// The grace period ran out first; these sites were still in flight.
    GraceSpent {
        /// Sites still in flight, busiest first.
        abandoned: Vec<SiteCount>,
        /// Tracked tasks aborted.
        aborted_tasks: usize,
    },
}

/// Everything that happened during one shutdown, emitted after the last hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownReport {
    /// What started it.
    pub cause: Cause,
    /// Each phase that ran, with its duration, in order.
    pub phases: Vec<(Phase, Duration)>,
    /// Calls in flight at the stop-accepting moment.
    pub in_flight_at_stop: usize,
    /// How the drain ended.
    pub drain: DrainOutcome,
    /// Every hook, in the order it ran.
    pub hooks: Vec<HookReport>,
    /// Calls that started after teardown had begun, by site.
    pub late_calls: Vec<SiteCount>,
    /// How the main body ended.
    pub main: MainStatus,
    /// A `shutdown_with(code, reason)` made after something else began the shutdown.
    pub fatal: Option<(u8, String)>,
    /// The exit code, when it is known as a number (a user's `ExitCode` is opaque).
    pub exit_code: Option<u8>,
}

impl ShutdownReport {
    /// Whether anything went wrong: a drain timeout, a failed hook, the grace period spent.
    pub fn has_failures(&self) -> bool {
        !matches!(self.drain, DrainOutcome::Drained)
            || self.hooks.iter().any(|hook| hook.outcome.is_failure())
    }

    /// The whole sequence's duration.
    pub fn total(&self) -> Duration {
        self.phases.iter().map(|(_, duration)| *duration).sum()
    }
}

pub(crate) fn ms(duration: Duration) -> humantime::FormattedDuration {
    // Millisecond precision: nanoseconds are noise in a report read by people.
    humantime::format_duration(Duration::from_millis(duration.as_millis() as u64))
}

fn sites(list: &[SiteCount]) -> String {
    list.iter()
        .map(SiteCount::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for ShutdownReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "shutdown report")?;
        writeln!(f, "  cause: {}", self.cause)?;
        let phases: Vec<String> = self
            .phases
            .iter()
            .map(|(phase, duration)| format!("{phase} {}", ms(*duration)))
            .collect();
        writeln!(
            f,
            "  phases: {} (total {})",
            phases.join(", "),
            ms(self.total())
        )?;
        match &self.drain {
            DrainOutcome::Drained => writeln!(
                f,
                "  drain: {} in flight at stop-accepting, all finished",
                self.in_flight_at_stop
            )?,
            DrainOutcome::TimedOut {
                abandoned,
                aborted_tasks,
            }
            | DrainOutcome::GraceSpent {
                abandoned,
                aborted_tasks,
            } => {
                let why = if matches!(self.drain, DrainOutcome::TimedOut { .. }) {
                    "drain timed out"
                } else {
                    "grace period spent during the drain"
                };
                writeln!(
                    f,
                    "  drain: {} in flight at stop-accepting; {why}; abandoned: {}; {aborted_tasks} tracked task(s) aborted",
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
                ms(hook.elapsed)
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
        if let Some((code, reason)) = &self.fatal {
            writeln!(f, "  shutdown_with({code}): {reason}")?;
        }
        match self.exit_code {
            Some(code) => write!(f, "  exit code: {code}"),
            None => write!(f, "  exit code: main's own ExitCode"),
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

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn sites_json(list: &[SiteCount]) -> serde_json::Value {
    list.iter()
        .map(|site| serde_json::json!({ "site": site.name, "count": site.count }))
        .collect()
}

impl ShutdownReport {
    /// The report as one line of JSON (schema version 1, documented in the README).
    pub fn to_json(&self) -> String {
        use crate::hooks::HookOutcome;
        use serde_json::json;

        let cause = match &self.cause {
            Cause::Signal(name) => json!({ "kind": "signal", "signal": name }),
            Cause::Requested => json!({ "kind": "shutdown" }),
            Cause::MainReturned => json!({ "kind": "main_returned" }),
            Cause::Fatal { code, reason } => {
                json!({ "kind": "shutdown_with", "code": code, "reason": reason })
            }
        };
        let phases: Vec<_> = self
            .phases
            .iter()
            .map(|(phase, duration)| json!({ "phase": phase.as_str(), "ms": millis(*duration) }))
            .collect();
        let drain = match &self.drain {
            DrainOutcome::Drained => {
                json!({ "outcome": "drained", "abandoned": [], "aborted_tasks": 0 })
            }
            DrainOutcome::TimedOut {
                abandoned,
                aborted_tasks,
            } => {
                json!({ "outcome": "timed_out", "abandoned": sites_json(abandoned), "aborted_tasks": aborted_tasks })
            }
            DrainOutcome::GraceSpent {
                abandoned,
                aborted_tasks,
            } => {
                json!({ "outcome": "grace_spent", "abandoned": sites_json(abandoned), "aborted_tasks": aborted_tasks })
            }
        };
        let hooks: Vec<_> = self
            .hooks
            .iter()
            .map(|hook| {
                let (outcome, detail) = match &hook.outcome {
                    HookOutcome::Completed => ("ok", None),
                    HookOutcome::Failed(error) => ("failed", Some(error.clone())),
                    HookOutcome::Panicked(message) => ("panicked", Some(message.clone())),
                    HookOutcome::TimedOut(limit) => ("timed_out", Some(humantime::format_duration(*limit).to_string())),
                    HookOutcome::Skipped => ("skipped", None),
                    HookOutcome::Late => ("late", None),
                };
                json!({ "order": hook.order, "name": hook.name, "outcome": outcome, "detail": detail, "ms": millis(hook.elapsed) })
            })
            .collect();
        let main = match &self.main {
            MainStatus::Returned => json!({ "status": "returned" }),
            MainStatus::Error(error) => json!({ "status": "error", "detail": error }),
            MainStatus::ExitCode(code) => json!({ "status": "exit_code", "detail": code }),
            MainStatus::Panicked(message) => json!({ "status": "panicked", "detail": message }),
            MainStatus::Dropped => json!({ "status": "dropped" }),
        };
        json!({
            "graceful_report": 1,
            "cause": cause,
            "phases": phases,
            "total_ms": millis(self.total()),
            "in_flight_at_stop": self.in_flight_at_stop,
            "drain": drain,
            "hooks": hooks,
            "late_calls": sites_json(&self.late_calls),
            "main": main,
            "shutdown_with": self.fatal.as_ref().map(|(code, reason)| json!({ "code": code, "reason": reason })),
            "failed": self.has_failures(),
            "exit_code": self.exit_code,
        })
        .to_string()
    }
}

/// Writes the final report in `format`.
pub(crate) fn emit_report(report: &ShutdownReport, format: ReportFormat) {
    match format {
        ReportFormat::Text if report.exit_code == Some(0) => event!(Info, "{report}"),
        ReportFormat::Text => event!(Warn, "{report}"),
        ReportFormat::Json => {
            use std::io::Write;
            let line = format!("{}\n", report.to_json());
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hooks::HookOutcome;

    fn report() -> ShutdownReport {
        ShutdownReport {
            cause: Cause::Signal("SIGTERM"),
            phases: vec![
                (Phase::PreStop, Duration::from_millis(5000)),
                (Phase::Drain, Duration::from_millis(1200)),
            ],
            in_flight_at_stop: 3,
            drain: DrainOutcome::TimedOut {
                abandoned: vec![SiteCount {
                    name: "app::upload".into(),
                    count: 2,
                }],
                aborted_tasks: 1,
            },
            hooks: vec![HookReport {
                order: 10,
                name: "app::close_pool".into(),
                outcome: HookOutcome::Failed("pool \"main\" busy".into()),
                elapsed: Duration::from_millis(12),
            }],
            late_calls: vec![],
            main: MainStatus::Dropped,
            fatal: None,
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
