//! The lock-free protocol between in-flight counters and the drain waiter, kept apart from
//! statics and tokio so that loom can model-check it (`tests/loom.rs` includes this file).
//!
//! Each site owns a [`Counter`]: one word holding its in-flight count and the shutdown phase,
//! as tokio-util's `TaskTracker` packs its count and closed bit. Because the phase travels in
//! the same word, one RMW per enter or exit both counts and tells whether the drain must be
//! woken: no second load, no SeqCst.

use super::atomic::{AtomicUsize, Ordering};

/// Phase bit: the drain has begun; a site reaching zero wakes the waiter.
pub(crate) const DRAINING: usize = 0b01;
/// Phase bit: teardown has begun; calls that start now are late.
pub(crate) const TEARDOWN: usize = 0b10;
const PHASE_MASK: usize = DRAINING | TEARDOWN;
/// One call, in the count above the phase bits.
const ONE: usize = 0b100;

/// How many calls of one site are in flight (and the phase), and how many started late.
///
/// Aligned to a cache line of its own: the sites' statics sit side by side in memory, and a
/// counter sharing a line with another site's counter, or with its own site's read-mostly
/// fields, would make threads calling different fns contend after all (false sharing).
#[repr(align(64))]
pub(crate) struct Counter {
    pub(super) word: AtomicUsize,
    pub(super) late: AtomicUsize,
}

/// What the counters share: the phase new counters join with, and how many calls entered
/// since draining began.
pub(crate) struct Gate {
    pub(super) phase: AtomicUsize,
    pub(super) entered_while_draining: AtomicUsize,
}

impl Counter {
    /// Counts a call in. Returns `true` when the call started after teardown had begun (late).
    #[inline]
    pub(crate) fn enter(&self, gate: &Gate) -> bool {
        // Relaxed: an RMW always reads the latest value, so it sees any phase bit already set;
        // what must be published is the enter itself, and the exit's Release does that.
        let before = self.word.fetch_add(ONE, Ordering::Relaxed);
        if before & PHASE_MASK != 0 {
            return self.enter_while_stopping(gate, before);
        }
        false
    }

    #[cold]
    #[inline(never)]
    fn enter_while_stopping(&self, gate: &Gate, before: usize) -> bool {
        // A scan that read this counter before the increment, and the counter of the call that
        // started this one after that call exited, would read zero everywhere: the bumped
        // generation makes the scan look again. Release, so that a scan which reads the new
        // generation also sees this increment.
        gate.entered_while_draining.fetch_add(1, Ordering::AcqRel);
        if before & TEARDOWN != 0 {
            self.late.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        false
    }

    /// Counts a call out. Returns `true` when the waiter must be woken: this site just reached
    /// zero while draining, so the total may have reached zero too.
    #[inline]
    pub(crate) fn exit(&self) -> bool {
        // Release: a scan that reads the decremented word sees everything this call did,
        // including the enters of calls it started.
        let before = self.word.fetch_sub(ONE, Ordering::Release);
        before & !PHASE_MASK == ONE && before & PHASE_MASK != 0
    }

    /// Gives a counter that joins the registry now the phase the others have. Call under the
    /// registry's lock, the same lock [`Gate::advance`] runs under.
    pub(crate) fn join(&self, gate: &Gate) {
        let phase = gate.phase.load(Ordering::Acquire);
        if phase != 0 {
            self.word.fetch_or(phase, Ordering::AcqRel);
        }
    }

    /// Calls of this site in flight now.
    pub(crate) fn in_flight(&self) -> usize {
        self.word.load(Ordering::Acquire) / ONE
    }

    /// Calls of this site that started after teardown had begun.
    pub(crate) fn late(&self) -> usize {
        self.late.load(Ordering::Relaxed)
    }
}

impl Gate {
    /// Sets phase bit `bit` ([`DRAINING`] or [`TEARDOWN`]) on the gate and on every counter.
    /// Call under the registry's lock, so that no counter joins half-way.
    pub(crate) fn advance<'a>(&self, bit: usize, counters: impl IntoIterator<Item = &'a Counter>) {
        self.phase.fetch_or(bit, Ordering::AcqRel);
        for counter in counters {
            counter.word.fetch_or(bit, Ordering::AcqRel);
        }
    }

    /// Whether no call is in flight at any of `counters`. Only meaningful once draining has
    /// begun: a call that starts during the scan bumps the generation, which makes the scan
    /// report "not idle" rather than a false zero.
    pub(crate) fn is_idle<'a>(&self, counters: impl IntoIterator<Item = &'a Counter>) -> bool {
        let generation = self.entered_while_draining.load(Ordering::Acquire);
        let all_zero = counters.into_iter().all(|counter| counter.in_flight() == 0);
        all_zero && self.entered_while_draining.load(Ordering::Acquire) == generation
    }
}
