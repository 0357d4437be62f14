//! Drain wake-up latency, in-process, two figures from one process:
//! - `WAKER_NS`, the floor: a `tokio::sync::Notify` (what the drain waits on) notified from
//!   another thread while this runtime is parked with a timer armed, as the drain parks; that is
//!   the waker alone, the cross-thread wake of a parked runtime on this machine;
//! - `WAKEUP_NS`, the whole path: one tracked guard dropped on another thread while the drain
//!   waits on it, to a hook at order `i32::MIN` running. That adds the drain's return, the
//!   teardown's start (its log line included) and the first hook's start.
//!
//! `DROPPER=task` drops the guard from a task on the runtime instead, as a request's handler
//! does when it returns; `FLAVOR=multi_thread` runs on a multi-thread runtime, where the
//! sequence waits on the main thread and each hook gets a task of its own.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

static DROPPED: OnceLock<Instant> = OnceLock::new();

/// Long enough for the waiting side to be parked, so that the wake-up is what is timed.
const PARK: Duration = Duration::from_millis(20);

fn main() -> std::process::ExitCode {
    let flavor = match std::env::var("FLAVOR").as_deref() {
        Ok("multi_thread") => graceful::Flavor::MultiThread,
        _ => graceful::Flavor::CurrentThread,
    };
    graceful::Builder::new().flavor(flavor).run(measure())
}

async fn measure() {
    println!("WAKER_NS {}", waker_alone().await.as_nanos());
    let guard = graceful::track("probe");
    graceful::register_hook(i32::MIN, "measure", || async {
        let waited = DROPPED.get().expect("dropped first").elapsed();
        println!("WAKEUP_NS {}", waited.as_nanos());
    });
    graceful::shutdown();
    graceful::shutdown_signal().await;
    if std::env::var("DROPPER").as_deref() == Ok("task") {
        tokio::spawn(async move {
            tokio::time::sleep(PARK).await;
            DROPPED.set(Instant::now()).unwrap();
            drop(guard);
        });
    } else {
        std::thread::spawn(move || {
            std::thread::sleep(PARK);
            DROPPED.set(Instant::now()).unwrap();
            drop(guard);
        });
    }
}

async fn waker_alone() -> Duration {
    let notify = Arc::new(tokio::sync::Notify::new());
    let notified = notify.notified();
    let mut notified = std::pin::pin!(notified);
    notified.as_mut().enable();
    let notifier = std::thread::spawn({
        let notify = notify.clone();
        move || {
            std::thread::sleep(PARK);
            let at = Instant::now();
            notify.notify_waiters();
            at
        }
    });
    tokio::select! {
        _ = notified => {}
        _ = tokio::time::sleep(Duration::from_secs(60)) => panic!("never notified"),
    }
    let woke = Instant::now();
    woke - notifier.join().unwrap()
}
