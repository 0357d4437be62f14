//! Model-checks the in-flight counter / drain wake-up protocol with loom: in every interleaving,
//! the drain waiter never reports "idle" while a call is in flight, and never sleeps through the
//! last call ending.
//!
//! Run with: `RUSTFLAGS="--cfg graceful_loom" cargo test -p graceful-runtime --test loom --release`

#![cfg(graceful_loom)]

/// The atomics the protocol file sees here: loom's instead of std's.
mod atomic {
    pub(crate) use loom::sync::atomic::{AtomicUsize, Ordering};
}

/// The library's protocol file itself, not a copy.
#[path = "../src/inflight/protocol.rs"]
#[allow(dead_code)]
mod protocol;

use atomic::{AtomicUsize, Ordering};
use loom::sync::{Arc, Notify};
use protocol::{Counter, Gate, DRAINING, TEARDOWN};

fn counter() -> Counter {
    Counter {
        word: AtomicUsize::new(0),
        late: AtomicUsize::new(0),
    }
}

fn gate() -> Gate {
    Gate {
        phase: AtomicUsize::new(0),
        entered_while_draining: AtomicUsize::new(0),
    }
}

struct World {
    gate: Gate,
    sites: [Counter; 2],
    /// What is really running, kept apart from the protocol's own counts.
    truly_running: AtomicUsize,
    /// The drain's wake-up. Like tokio's `Notify` after `enable()` (which the runtime calls
    /// before every scan), a wake that comes after registration is not lost.
    woken: Notify,
}

impl World {
    fn new() -> Arc<World> {
        Arc::new(World {
            gate: gate(),
            sites: [counter(), counter()],
            truly_running: AtomicUsize::new(0),
            woken: Notify::new(),
        })
    }

    fn enter(&self, site: usize) {
        self.truly_running.fetch_add(1, Ordering::SeqCst);
        self.sites[site].enter(&self.gate);
    }

    fn exit(&self, site: usize) {
        self.truly_running.fetch_sub(1, Ordering::SeqCst);
        if self.sites[site].exit() {
            self.woken.notify();
        }
    }

    /// The drain waiter: begin draining, then scan until idle, sleeping between scans until a
    /// guard wakes it.
    fn drain(&self) {
        self.gate.advance(DRAINING, self.sites.iter());
        loop {
            if self.gate.is_idle(self.sites.iter()) {
                assert_eq!(
                    self.truly_running.load(Ordering::SeqCst),
                    0,
                    "the drain reported idle while a call was in flight"
                );
                return;
            }
            // A waiter that is never woken blocks here for good: loom reports the deadlock.
            self.woken.wait();
        }
    }
}

#[test]
fn last_guard_wakes_the_drain() {
    loom::model(|| {
        let world = World::new();
        world.enter(0);
        let worker = {
            let world = world.clone();
            loom::thread::spawn(move || world.exit(0))
        };
        world.drain();
        worker.join().unwrap();
    });
}

#[test]
fn a_call_handed_from_site_to_site_is_never_missed() {
    // A tracked call at site 1 starts one at site 0 (a spawned task, say) and returns first.
    // The scan reads site 0 before site 1: reading site 0 before the hand-over and site 1 after
    // it must not add up to zero.
    loom::model(|| {
        let world = World::new();
        world.enter(1);
        let worker = {
            let world = world.clone();
            loom::thread::spawn(move || {
                world.enter(0);
                world.exit(1);
                world.exit(0);
            })
        };
        world.drain();
        worker.join().unwrap();
    });
}

#[test]
fn concurrent_exits_at_two_sites_wake_the_drain() {
    loom::model(|| {
        let world = World::new();
        world.enter(0);
        world.enter(1);
        let workers: Vec<_> = [0, 1]
            .into_iter()
            .map(|site| {
                let world = world.clone();
                loom::thread::spawn(move || world.exit(site))
            })
            .collect();
        world.drain();
        for worker in workers {
            worker.join().unwrap();
        }
    });
}

#[test]
fn calls_entered_after_teardown_are_late_and_counted() {
    loom::model(|| {
        let world = World::new();
        let worker = {
            let world = world.clone();
            loom::thread::spawn(move || world.sites[0].enter(&world.gate))
        };
        world.gate.advance(DRAINING, world.sites.iter());
        world.gate.advance(TEARDOWN, world.sites.iter());
        let late = worker.join().unwrap();
        assert_eq!(world.sites[0].in_flight(), 1, "every enter is counted");
        assert_eq!(world.sites[0].late(), usize::from(late));
    });
}
