//! Essential tasks that went wrong, as the report names them: the cause of a shutdown, or a
//! failure during one.

use std::fmt;

/// An essential task that failed, panicked, or ended while the service was running.
///
/// ```
/// # use graceful_runtime as graceful;
/// graceful::on_report(|report| {
///     for failure in &report.essential_failures {
///         eprintln!("{failure}"); // essential task "consumer" failed: connection reset
///     }
/// });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EssentialFailure {
    /// The name given to `spawn_essential`.
    pub task: String,
    /// How it ended.
    pub end: EssentialEnd,
}

/// How an essential task ended badly.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EssentialEnd {
    /// Returned an error, shown with `Display`.
    Failed(String),
    /// Panicked; the panic message.
    Panicked(String),
    /// Returned before shutdown began: the service cannot run without it.
    EndedEarly,
}

impl EssentialFailure {
    pub(crate) fn new(task: &str, end: EssentialEnd) -> EssentialFailure {
        EssentialFailure {
            task: task.to_owned(),
            end,
        }
    }

    /// What went wrong, without the task's name: the error, the panic, or that it ended.
    pub fn error(&self) -> String {
        match &self.end {
            EssentialEnd::Failed(error) => error.clone(),
            EssentialEnd::Panicked(message) => format!("panicked: {message}"),
            EssentialEnd::EndedEarly => "ended while the service was running".to_owned(),
        }
    }
}

impl fmt::Display for EssentialFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.end {
            EssentialEnd::Failed(error) => {
                write!(f, "essential task {:?} failed: {error}", self.task)
            }
            EssentialEnd::Panicked(message) => {
                write!(f, "essential task {:?} panicked: {message}", self.task)
            }
            EssentialEnd::EndedEarly => write!(
                f,
                "essential task {:?} ended while the service was running",
                self.task
            ),
        }
    }
}
