//! Where graceful's own events go: to tracing when a subscriber is installed, else to stderr, so
//! a new user always sees what happened; and how durations are written for people.

use std::fmt;
use std::time::Duration;

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
        // One write of the whole event, so lines from other threads do not interleave inside it.
        write_stderr(&format!("graceful: {message}\n"));
    }
}

/// Writes `text` to stderr in one call, ignoring errors: there is nobody left to tell.
pub(crate) fn write_stderr(text: &str) {
    use std::io::Write;
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

macro_rules! event {
    ($level:ident, $($message:tt)+) => {
        $crate::log::emit($crate::log::Level::$level, format_args!($($message)+))
    };
}
pub(crate) use event;

/// Flushes stdout and stderr, ignoring errors: there is nobody left to tell.
pub(crate) fn flush_std() {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
}

/// A duration as people read it: whole milliseconds below ten seconds, tenths of a second above,
/// so that a deadline computed a few microseconds late still reads as the configured figure.
pub(crate) fn human(duration: Duration) -> humantime::FormattedDuration {
    let millis = duration.as_millis();
    let rounded = if millis >= 10_000 {
        (millis + 50) / 100 * 100
    } else {
        millis
    };
    humantime::format_duration(Duration::from_millis(
        u64::try_from(rounded).unwrap_or(u64::MAX),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_durations_round_to_tenths_short_ones_keep_milliseconds() {
        assert_eq!(human(Duration::from_micros(14_999_990)).to_string(), "15s");
        assert_eq!(human(Duration::from_millis(2_345)).to_string(), "2s 345ms");
        assert_eq!(human(Duration::from_micros(999_600)).to_string(), "999ms");
    }
}
