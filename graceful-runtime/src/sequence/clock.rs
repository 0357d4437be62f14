//! Times the phases of one shutdown, for the report and for observers (the metrics histogram).

use std::time::Duration;

use tokio::time::Instant;

use crate::phase::Phase;

/// How long each phase took, in order.
pub(super) struct PhaseClock {
    last: Instant,
    phases: Vec<(Phase, Duration)>,
}

impl PhaseClock {
    pub(super) fn new(started: Instant) -> PhaseClock {
        PhaseClock {
            last: started,
            phases: Vec::new(),
        }
    }

    /// Ends `phase` now; returns how long it ran.
    pub(super) fn end(&mut self, phase: Phase) -> Duration {
        let now = Instant::now();
        let duration = now - self.last;
        self.phases.push((phase, duration));
        self.last = now;
        duration
    }

    pub(super) fn into_phases(self) -> Vec<(Phase, Duration)> {
        self.phases
    }
}
