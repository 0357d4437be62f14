//! A tracked call allocates nothing on the heap, sync or async, asserted with a counting global
//! allocator (the one place this project writes `unsafe`: a `GlobalAlloc` cannot be written
//! without it).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts every allocation and reallocation made through it, from any thread.
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

#[allow(unsafe_code)]
// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so `System`'s
// guarantees hold; the counter is a side effect only.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        unsafe { System.dealloc(pointer, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(pointer, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

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
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    for value in 0..CALLS {
        black_box(tracked_sync(value));
    }
    let sync_allocations = ALLOCATIONS.load(Ordering::SeqCst) - before;

    // One `block_on` for everything async: entering the runtime allocates once per call.
    let async_allocations = runtime.block_on(async {
        // Warm the site, and tokio's list of yielded tasks, which grows once, tracked or not.
        tracked_async(0).await;
        for value in 0..CALLS {
            black_box(untracked_async(value).await);
        }
        let before = ALLOCATIONS.load(Ordering::SeqCst);
        for value in 0..CALLS {
            black_box(tracked_async(value).await);
        }
        ALLOCATIONS.load(Ordering::SeqCst) - before
    });

    // The counter itself works: a Vec allocates.
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    black_box(vec![1u8; 16]);
    assert!(
        ALLOCATIONS.load(Ordering::SeqCst) > before,
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
