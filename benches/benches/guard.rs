//! What a tracked call costs: `#[graceful::tracked]` against a bare atomic increment/decrement
//! pair and the peers' nearest per-call equivalents, on one thread, under contention, and for an
//! awaited async fn. `cargo bench -p graceful-benches --bench guard`; BENCHMARKS.md has results.

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{criterion_main, Criterion};

static BARE: AtomicUsize = AtomicUsize::new(0);

#[inline(never)]
fn untracked(value: u64) -> u64 {
    black_box(value)
}

/// The floor any in-flight counter must pay: one increment and one decrement.
#[inline(never)]
fn bare_atomic_pair(value: u64) -> u64 {
    BARE.fetch_add(1, Ordering::Relaxed);
    let result = black_box(value);
    BARE.fetch_sub(1, Ordering::Release);
    result
}

#[graceful::tracked]
#[inline(never)]
fn tracked(value: u64) -> u64 {
    black_box(value)
}

#[inline(never)]
fn tracked_by_name(value: u64) -> u64 {
    let _guard = graceful::track("bench::by_name");
    black_box(value)
}

#[graceful::tracked]
async fn tracked_async(value: u64) -> u64 {
    black_box(value)
}

async fn untracked_async(value: u64) -> u64 {
    black_box(value)
}

/// One distinct tracked fn per thread, for the many-sites case.
macro_rules! distinct_sites {
    ($($name:ident),*) => {
        $(
            #[graceful::tracked]
            #[inline(never)]
            fn $name(value: u64) -> u64 {
                black_box(value)
            }
        )*
        const DISTINCT: &[fn(u64) -> u64] = &[$($name),*];
    };
}
distinct_sites!(site0, site1, site2, site3, site4, site5, site6, site7);

fn single_thread(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let _context = runtime.enter();
    let tracker = tokio_util::task::TaskTracker::new();
    let tokio_graceful = tokio_graceful::Shutdown::no_signal();

    let mut group = c.benchmark_group("single_thread");
    group.bench_function("untracked", |b| b.iter(|| untracked(black_box(1))));
    group.bench_function("bare_atomic_pair", |b| {
        b.iter(|| bare_atomic_pair(black_box(1)))
    });
    group.bench_function("graceful_tracked", |b| b.iter(|| tracked(black_box(1))));
    group.bench_function("graceful_track_by_name", |b| {
        b.iter(|| tracked_by_name(black_box(1)))
    });
    group.bench_function("tokio_util_task_tracker_token", |b| {
        b.iter(|| {
            let token = tracker.token();
            let result = untracked(black_box(1));
            drop(token);
            result
        })
    });
    group.bench_function("tokio_graceful_guard", |b| {
        b.iter(|| {
            let guard = tokio_graceful.guard();
            let result = untracked(black_box(1));
            drop(guard);
            result
        })
    });
    group.finish();
}

/// Runs `call` `iterations` times on each of `threads` threads at once; returns the wall time,
/// which criterion divides by `iterations` (per-thread cost under contention).
fn contended(threads: usize, iterations: u64, call: impl Fn(usize) + Sync) -> Duration {
    let start = Barrier::new(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                let (start, call) = (&start, &call);
                scope.spawn(move || {
                    start.wait();
                    let began = Instant::now();
                    for _ in 0..iterations {
                        call(thread);
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
    let threads = std::thread::available_parallelism()
        .map_or(2, |count| count.get())
        .min(DISTINCT.len());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    let _context = runtime.enter();
    let tracker = tokio_util::task::TaskTracker::new();
    let tokio_graceful = tokio_graceful::Shutdown::no_signal();

    let mut group = c.benchmark_group(format!("contended_{threads}_threads"));
    group.bench_function("bare_atomic_pair_one_counter", |b| {
        b.iter_custom(|iterations| {
            contended(threads, iterations, |_| {
                black_box(bare_atomic_pair(1));
            })
        })
    });
    group.bench_function("graceful_tracked_one_hot_site", |b| {
        b.iter_custom(|iterations| {
            contended(threads, iterations, |_| {
                black_box(tracked(1));
            })
        })
    });
    group.bench_function("graceful_tracked_distinct_sites", |b| {
        b.iter_custom(|iterations| {
            contended(threads, iterations, |thread| {
                black_box(DISTINCT[thread](1));
            })
        })
    });
    group.bench_function("tokio_util_task_tracker_token", |b| {
        b.iter_custom(|iterations| contended(threads, iterations, |_| drop(tracker.token())))
    });
    group.bench_function("tokio_graceful_guard", |b| {
        b.iter_custom(|iterations| contended(threads, iterations, |_| drop(tokio_graceful.guard())))
    });
    group.finish();
}

/// Awaits `call` `iterations` times in one `block_on`; returns the time the loop took.
fn time_awaits<F, Fut>(runtime: &tokio::runtime::Runtime, iterations: u64, call: F) -> Duration
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = u64>,
{
    runtime.block_on(async {
        let began = Instant::now();
        for value in 0..iterations {
            black_box(call(value).await);
        }
        began.elapsed()
    })
}

fn awaited(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("async_call");
    group.bench_function("untracked_async_fn", |b| {
        b.iter_custom(|iterations| time_awaits(&runtime, iterations, untracked_async))
    });
    group.bench_function("graceful_tracked_async_fn", |b| {
        b.iter_custom(|iterations| time_awaits(&runtime, iterations, tracked_async))
    });
    group.finish();
}

/// In a module of its own: `criterion_group!` writes an undocumented `pub fn`, which the
/// workspace's `missing_docs` lint reports at the crate root.
mod group {
    use super::{awaited, single_thread, under_contention, Criterion, Duration};

    criterion::criterion_group! {
        name = benches;
        config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
        targets = single_thread, under_contention, awaited
    }
}
criterion_main!(group::benches);
