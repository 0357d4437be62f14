//! What `graceful::deadline_token()` costs per call, against what it is made of (tokio-util's
//! `child_token()` on a token of one's own) and against holding one token (a clone, a check, a
//! job's `cancelled()` in its `select!`), on one thread and on two at once.
//! `cargo bench -p graceful-benches --bench deadline_token`; BENCHMARKS.md has results.

use std::future::Future;
use std::hint::black_box;
use std::sync::Barrier;
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use criterion::{criterion_main, Criterion};
use graceful::CancellationToken;

fn single_thread(c: &mut Criterion) {
    let own = CancellationToken::new();
    let held = graceful::deadline_token();
    let mut group = c.benchmark_group("deadline_token");
    group.bench_function("graceful_deadline_token", |b| {
        b.iter(|| black_box(graceful::deadline_token()))
    });
    group.bench_function("tokio_util_child_token", |b| {
        b.iter(|| black_box(own.child_token()))
    });
    group.bench_function("clone_of_a_held_token", |b| {
        b.iter(|| black_box(held.clone()))
    });
    group.bench_function("is_cancelled_on_a_held_token", |b| {
        b.iter(|| black_box(held.is_cancelled()))
    });
    // What each job of examples/worker_postgres pays to watch the deadline: its `cancelled()`
    // polled once (the waiter registered) and dropped.
    group.bench_function("cancelled_polled_once_and_dropped", |b| {
        let mut context = Context::from_waker(Waker::noop());
        b.iter(|| {
            let mut cancelled = std::pin::pin!(held.cancelled());
            black_box(cancelled.as_mut().poll(&mut context).is_pending())
        })
    });
    group.finish();
}

/// Runs `call` `iterations` times on each of `threads` threads at once; returns the wall time.
fn contended(threads: usize, iterations: u64, call: impl Fn() + Sync) -> Duration {
    let start = Barrier::new(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (start, call) = (&start, &call);
                scope.spawn(move || {
                    start.wait();
                    let began = Instant::now();
                    for _ in 0..iterations {
                        call();
                    }
                    began.elapsed()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap())
            .max()
            .unwrap()
    })
}

fn under_contention(c: &mut Criterion) {
    let threads = std::thread::available_parallelism().map_or(2, |count| count.get().min(8));
    let own = CancellationToken::new();
    let mut group = c.benchmark_group(format!("deadline_token_contended_{threads}_threads"));
    group.bench_function("graceful_deadline_token", |b| {
        b.iter_custom(|iterations| {
            contended(threads, iterations, || {
                drop(black_box(graceful::deadline_token()))
            })
        })
    });
    group.bench_function("tokio_util_child_token", |b| {
        b.iter_custom(|iterations| {
            contended(threads, iterations, || drop(black_box(own.child_token())))
        })
    });
    group.finish();
}

/// In a module of its own: `criterion_group!` writes an undocumented `pub fn`, which the
/// workspace's `missing_docs` lint reports at the crate root.
mod group {
    use super::{single_thread, under_contention, Criterion, Duration};

    criterion::criterion_group! {
        name = benches;
        config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
        targets = single_thread, under_contention
    }
}
criterion_main!(group::benches);
