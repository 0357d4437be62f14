//! A tracked call allocates nothing on the heap, sync or async, asserted with a counting global
//! allocator (stats_alloc's, which counts every allocation and reallocation from any thread; a
//! `GlobalAlloc` cannot be written without `unsafe`, which this workspace forbids).

use std::alloc::System;
use std::hint::black_box;

use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Allocations and reallocations made since `region` began, from any thread.
fn allocations(region: &Region<'_, System>) -> usize {
    let change = region.change();
    change.allocations + change.reallocations
}

#[graceful::tracked]
fn tracked_sync(value: u64) -> u64 {
    black_box(value)
}

#[graceful::tracked]
async fn tracked_async(value: u64) -> u64 {
    tokio::task::yield_now().await;
    black_box(value)
}

/// The same body untracked: what tokio itself allocates, once, for yielding.
async fn untracked_async(value: u64) -> u64 {
    tokio::task::yield_now().await;
    black_box(value)
}

const CALLS: u64 = 10_000;

/// One test, so that no other test of this binary allocates on another thread meanwhile.
#[test]
fn tracked_calls_allocate_nothing() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    // Warm: the first call of a site registers it (one push into the registry), once.
    tracked_sync(0);
    let region = Region::new(GLOBAL);
    for value in 0..CALLS {
        black_box(tracked_sync(value));
    }
    let sync_allocations = allocations(&region);

    // One `block_on` for everything async: entering the runtime allocates once per call.
    let async_allocations = runtime.block_on(async {
        // Warm the site, and tokio's list of yielded tasks, which grows once, tracked or not.
        tracked_async(0).await;
        for value in 0..CALLS {
            black_box(untracked_async(value).await);
        }
        let region = Region::new(GLOBAL);
        for value in 0..CALLS {
            black_box(tracked_async(value).await);
        }
        allocations(&region)
    });

    // The counter itself works: a Vec allocates.
    let region = Region::new(GLOBAL);
    black_box(vec![1u8; 16]);
    assert!(
        allocations(&region) > 0,
        "the counting allocator counts nothing"
    );

    assert_eq!(
        sync_allocations, 0,
        "{CALLS} sync tracked calls allocated {sync_allocations} times"
    );
    assert_eq!(
        async_allocations, 0,
        "{CALLS} async tracked calls allocated {async_allocations} times"
    );
}
