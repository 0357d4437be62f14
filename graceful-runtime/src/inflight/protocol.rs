//! The lock-free protocol between in-flight counters and the drain waiter, kept apart from
//! statics and tokio so that loom can model-check it (`tests/loom.rs` includes this file).
//!
//! Each site owns a [`Counter`]; all sites share one [`Gate`]. The hot path is one RMW and one
//! load per enter or exit; everything else happens only once draining has begun.

use super::atomic::{AtomicU8, AtomicUsize, Ordering};

/// Phases of the gate. Only ever moves forward.
pub(super) const RUNNING: u8 = 0;
pub(super) const DRAINING: u8 = 1;
pub(super) const TEARDOWN: u8 = 2;

/// How many calls of one site are in flight, and how many of them started late.
pub(crate) struct Counter {
    pub(super) in_flight: AtomicUsize,
    pub(super) late: AtomicUsize,
}

/// What every counter consults: the drain phase, and how many calls entered since draining began.
pub(crate) struct Gate {
    pub(super) phase: AtomicU8,
    pub(super) entered_while_draining: AtomicUsize,
}

impl Counter {
    /// Counts a call in. Returns `true` when the call started after teardown had begun (late).
    #[inline]
    pub(crate) fn enter(&self, gate: &Gate) -> bool {
        // SeqCst on both: with the waiter's SeqCst store of `phase` and loads of the counters this
        // is Dekker's pattern, so either this enter sees DRAINING or the waiter's scan sees the
        // increment. On x86 the RMW is a locked instruction whatever the ordering, and the
        // SeqCst load is a plain load.
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let phase = gate.phase.load(Ordering::SeqCst);
        if phase != RUNNING {
            return self.enter_while_stopping(gate, phase);
        }
        false
    }

    #[cold]
    #[inline(never)]
    fn enter_while_stopping(&self, gate: &Gate, phase: u8) -> bool {
        // A scan that read this site before the increment may still read zero everywhere (the
        // call that started this one may already have exited): bumping the generation tells the
        // scan to look again.
        gate.entered_while_draining.fetch_add(1, Ordering::SeqCst);
        if phase == TEARDOWN {
            self.late.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        false
    }

    /// Counts a call out. Returns `true` when the waiter must be woken: this site just reached
    /// zero while draining, so the total may have reached zero too.
    #[inline]
    pub(crate) fn exit(&self, gate: &Gate) -> bool {
        let before = self.in_flight.fetch_sub(1, Ordering::SeqCst);
        before == 1 && gate.phase.load(Ordering::SeqCst) != RUNNING
    }

    /// Calls of this site in flight now.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Calls of this site that started after teardown had begun.
    pub(crate) fn late(&self) -> usize {
        self.late.load(Ordering::Relaxed)
    }
}

impl Gate {
    /// From now on, a site reaching zero asks for the waiter to be woken.
    pub(crate) fn begin_drain(&self) {
        self.advance(DRAINING);
    }

    /// From now on, calls that start are counted as late.
    pub(crate) fn begin_teardown(&self) {
        self.advance(TEARDOWN);
    }

    fn advance(&self, to: u8) {
        // fetch_max: never moves backwards, even if two controllers race.
        self.phase.fetch_max(to, Ordering::SeqCst);
    }

    /// Whether no call is in flight at any of `counters`. Only meaningful once draining has
    /// begun: a call that starts during the scan bumps the generation, which makes the scan
    /// report "not idle" rather than a false zero.
    pub(crate) fn is_idle<'a>(&self, counters: impl IntoIterator<Item = &'a Counter>) -> bool {
        let generation = self.entered_while_draining.load(Ordering::SeqCst);
        let all_zero = counters.into_iter().all(|counter| counter.in_flight() == 0);
        all_zero && self.entered_while_draining.load(Ordering::SeqCst) == generation
    }
}
