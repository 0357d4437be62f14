//! Drain wake-up latency, in-process: one tracked guard is dropped while the drain waits on it;
//! a hook at order `i32::MIN` records how long after the drop teardown began. That covers the
//! wake-up, the drain's return and the start of the first hook: an upper bound.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

static DROPPED: OnceLock<Instant> = OnceLock::new();

#[graceful::main(flavor = "current_thread")]
async fn main() {
    let guard = graceful::track("probe");
    graceful::register_hook(i32::MIN, "measure", || async {
        let waited = DROPPED.get().expect("dropped first").elapsed();
        println!("WAKEUP_NS {}", waited.as_nanos());
    });
    graceful::shutdown();
    graceful::shutdown_signal().await;
    std::thread::spawn(move || {
        // Long enough for the drain to be parked on its wait, so the wake-up is what is timed.
        std::thread::sleep(Duration::from_millis(20));
        DROPPED.set(Instant::now()).unwrap();
        drop(guard);
    });
}
