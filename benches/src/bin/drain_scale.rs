//! Drain at scale: 100,000 tracked futures in flight finish together; prints how long after the
//! last of them finished teardown began (its first hook ran), and the process's peak RSS.
//! `DRAIN_SCALE_CALLS` changes the count.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

static EPOCH: OnceLock<Instant> = OnceLock::new();
/// Nanoseconds after EPOCH at which the last tracked call finished.
static LAST_FINISHED: AtomicU64 = AtomicU64::new(0);

fn now_nanos() -> u64 {
    EPOCH.get().unwrap().elapsed().as_nanos() as u64
}

#[graceful::tracked]
async fn wait_for_release(release: Arc<tokio::sync::Notify>) {
    release.notified().await;
    LAST_FINISHED.fetch_max(now_nanos(), Ordering::Relaxed);
}

/// The same call untracked, to compare the futures' sizes.
async fn wait_untracked(release: Arc<tokio::sync::Notify>) {
    release.notified().await;
    LAST_FINISHED.fetch_max(now_nanos(), Ordering::Relaxed);
}

#[graceful::main]
async fn main() {
    EPOCH.set(Instant::now()).unwrap();
    let calls: usize = std::env::var("DRAIN_SCALE_CALLS")
        .ok()
        .and_then(|calls| calls.parse().ok())
        .unwrap_or(100_000);
    let release = Arc::new(tokio::sync::Notify::new());
    // What one in-flight call costs in memory: the guard lives in the future's own state.
    println!(
        "FUTURE_BYTES tracked {} untracked {}",
        std::mem::size_of_val(&wait_for_release(release.clone())),
        std::mem::size_of_val(&wait_untracked(release.clone()))
    );
    for _ in 0..calls {
        tokio::spawn(wait_for_release(release.clone()));
    }
    // Every call is in flight (each has polled once and registered with the Notify).
    while graceful::in_flight() < calls {
        tokio::task::yield_now().await;
    }
    graceful::register_hook(i32::MIN, "measure", move || async move {
        let teardown = now_nanos();
        let last = LAST_FINISHED.load(Ordering::Relaxed);
        println!("CALLS {calls}");
        println!(
            "LAST_FINISHED_TO_TEARDOWN_NS {}",
            teardown.saturating_sub(last)
        );
    });
    graceful::shutdown();
    graceful::shutdown_signal().await;
    release.notify_waiters();
}
