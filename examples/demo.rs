//! `cargo run --example demo`: a small service with work in flight receives SIGTERM (it sends
//! the signal to itself), fails readiness, keeps serving through pre-stop, drains, runs its
//! hooks in order and exits 0. graceful's own lines start with `graceful:`.

use std::time::Duration;

/// A request handler: the drain waits for every call that has started.
#[graceful::tracked]
async fn checkout(order: u32) {
    println!("demo: checkout #{order} started");
    tokio::time::sleep(Duration::from_millis(400 + 300 * u64::from(order))).await;
    println!("demo: checkout #{order} committed");
}

/// Runs first after the drain: nothing uses the pool any more.
#[graceful::on_shutdown(order = 10)]
async fn close_database_pool() {
    tokio::time::sleep(Duration::from_millis(50)).await;
    println!("demo: hook (order 10) closed the database pool");
}

/// Runs after the pool is closed, so its final figures include everything.
#[graceful::on_shutdown(order = 20)]
fn flush_metrics() {
    println!("demo: hook (order 20) flushed metrics");
}

#[graceful::main(pre_stop = "500ms", drain_timeout = "5s")]
async fn main() {
    let ticker = graceful::spawn(async {
        let stop = graceful::token();
        let mut ticks = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = ticks.tick() => {}
            }
        }
        println!("demo: background loop saw the token and stopped");
    });

    graceful::ready();
    println!(
        "demo: ready, readiness answers {}",
        graceful::health().status_code()
    );

    for order in 1..=3 {
        tokio::spawn(checkout(order));
    }
    // Let the three requests begin (a real service would be serving them off its listener).
    tokio::time::sleep(Duration::from_millis(50)).await;
    println!(
        "demo: {} in flight (3 checkouts, 1 background loop); sending SIGTERM to myself, as Kubernetes would",
        graceful::in_flight()
    );
    nix::sys::signal::kill(nix::unistd::getpid(), nix::sys::signal::Signal::SIGTERM)
        .expect("send SIGTERM");

    // During pre-stop the listener would still serve, while readiness already fails.
    tokio::time::sleep(Duration::from_millis(100)).await;
    println!(
        "demo: pre-stop: readiness now answers {}, still serving",
        graceful::health().status_code()
    );
    graceful::shutdown_signal().await;
    println!("demo: stop accepting: the listener would close now");
    let _ = ticker.await;
}
