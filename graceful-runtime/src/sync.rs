//! Locks that outlive a panic elsewhere: a hook or handler that panicked while holding one of
//! graceful's mutexes must not wedge the shutdown sequence.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `mutex`, taking the data even when another thread panicked while holding it: every
/// mutex in graceful guards data that stays consistent across a panic (lists that are pushed to
/// or taken whole).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
