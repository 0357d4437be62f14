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

fn ms(duration: Duration) -> humantime::FormattedDuration {
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
        match self.exit_code {
            Some(code) => write!(f, "  exit code: {code}"),
            None => write!(f, "  exit code: main's own ExitCode"),
        }
    }
}
