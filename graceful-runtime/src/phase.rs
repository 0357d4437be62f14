//! What a load balancer is told (health) and where the shutdown sequence is (phase), each held
//! in one atomic that only moves the ways the sequence allows.

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};

/// Whether the service should receive traffic, as a readiness probe sees it.
///
/// ```
/// # extern crate graceful_runtime as graceful;
/// use graceful::Health;
/// assert_eq!(Health::Starting.status_code(), 503);
/// assert_eq!(Health::Ready.status_code(), 200);
/// assert_eq!(Health::Draining.status_code(), 503);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Health {
    /// Not ready yet: [`crate::ready`] has not been called, or [`crate::unready`] took it back.
    Starting,
    /// Ready for traffic.
    Ready,
    /// Shutting down, for good: no new traffic, please.
    Draining,
}

impl Health {
    /// The HTTP status a readiness endpoint answers with: 503, 200, 503.
    pub fn status_code(self) -> u16 {
        match self {
            Health::Ready => 200,
            Health::Starting | Health::Draining => 503,
        }
    }

    /// `"starting"`, `"ready"` or `"draining"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Starting => "starting",
            Health::Ready => "ready",
            Health::Draining => "draining",
        }
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

const STARTING: u8 = 0;
const READY: u8 = 1;
const DRAINING: u8 = 2;

/// The health state machine: Starting ⇄ Ready, and either → Draining for good.
#[derive(Debug)]
pub(crate) struct HealthState(AtomicU8);

impl HealthState {
    pub(crate) const fn new() -> HealthState {
        HealthState(AtomicU8::new(STARTING))
    }

    pub(crate) fn get(&self) -> Health {
        match self.0.load(Ordering::Acquire) {
            STARTING => Health::Starting,
            READY => Health::Ready,
            _ => Health::Draining,
        }
    }

    /// Starting → Ready. Returns whether it changed.
    pub(crate) fn ready(&self) -> bool {
        self.move_from(STARTING, READY)
    }

    /// Ready → Starting. Returns whether it changed.
    pub(crate) fn unready(&self) -> bool {
        self.move_from(READY, STARTING)
    }

    pub(crate) fn drain(&self) {
        self.0.store(DRAINING, Ordering::Release);
    }

    fn move_from(&self, from: u8, to: u8) -> bool {
        // compare_exchange, not store: a concurrent `drain` must never be undone.
        self.0
            .compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

/// A step of the shutdown sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Serving; no shutdown has begun.
    Running,
    /// Shutdown has begun: readiness fails while listeners still serve.
    PreStop,
    /// Listeners stopped accepting; waiting for in-flight work.
    Drain,
    /// Running the teardown hooks.
    Teardown,
    /// Reporting, flushing and exiting.
    Exit,
}

impl Phase {
    /// The phase's name in reports: `running`, `pre-stop`, `drain`, `teardown`, `exit`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Running => "running",
            Phase::PreStop => "pre-stop",
            Phase::Drain => "drain",
            Phase::Teardown => "teardown",
            Phase::Exit => "exit",
        }
    }

    fn from_u8(value: u8) -> Phase {
        [
            Phase::Running,
            Phase::PreStop,
            Phase::Drain,
            Phase::Teardown,
            Phase::Exit,
        ]
        .get(usize::from(value))
        .copied()
        .unwrap_or(Phase::Exit)
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The current phase, readable from any thread (the watchdog reports it on a forced exit).
#[derive(Debug)]
pub(crate) struct PhaseState(AtomicU8);

impl PhaseState {
    pub(crate) const fn new() -> PhaseState {
        PhaseState(AtomicU8::new(Phase::Running as u8))
    }

    pub(crate) fn get(&self) -> Phase {
        Phase::from_u8(self.0.load(Ordering::Acquire))
    }

    pub(crate) fn enter(&self, phase: Phase) {
        self.0.fetch_max(phase as u8, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_and_unready_toggle_until_draining() {
        let health = HealthState::new();
        assert_eq!(health.get(), Health::Starting);
        assert!(health.ready());
        assert!(!health.ready(), "ready twice must be a no-op");
        assert!(health.unready());
        assert_eq!(health.get(), Health::Starting);
        health.drain();
        assert!(!health.ready());
        assert!(!health.unready());
        assert_eq!(health.get(), Health::Draining);
    }

    #[test]
    fn phase_only_moves_forward() {
        let phase = PhaseState::new();
        phase.enter(Phase::Drain);
        phase.enter(Phase::PreStop);
        assert_eq!(phase.get(), Phase::Drain);
    }
}
