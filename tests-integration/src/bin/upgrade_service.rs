//! The server of tests/upgrade.rs: `graceful::serve` on `graceful::bind(LISTEN_ADDR)` (default
//! 127.0.0.1:3000), upgraded in place by SIGUSR2 (or `systemctl reload`). Every answer carries
//! this process's pid, so that a client knows which generation served it. Prints `pid N
//! listening on ADDR`, `exe PATH` (the binary this process runs, symlinks resolved), `ready N`
//! once `graceful::ready()` is called, `slow begun N` when a slow request arrives, and, from
//! its teardown hook, `hook N saw cause ...`.
//!
//! `UPGRADE_SERVICE_NOT_READY=FILE`: when FILE exists at start-up, the process binds and serves
//! but never calls `ready()`, as a new build that hangs in its start-up would.

use std::time::Duration;

use axum::routing::get;
use axum::Router;

/// `GET /`: `pid N`.
async fn whoami() -> String {
    format!("pid {}\n", std::process::id())
}

/// `GET /slow`: in flight from before an upgrade until after it: answers once this process's
/// shutdown has begun (the handover), 300 ms later, so that it spans the handover by
/// construction, whatever the timings. Bounded: 30 s without a shutdown answers anyway.
async fn slow() -> String {
    let pid = std::process::id();
    println!("slow begun {pid}");
    let _ = tokio::time::timeout(Duration::from_secs(30), graceful::shutdown_started()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    format!("pid {pid} slow\n")
}

/// Says what began the shutdown, as a hook that must not deregister an upgraded service would
/// check it.
#[graceful::on_shutdown(order = 10)]
async fn say_cause() {
    let cause = match graceful::shutdown_cause() {
        Some(graceful::report::Cause::Upgrade { pid }) => format!("upgrade to {pid}"),
        Some(other) => format!("{other}"),
        None => "nothing".to_owned(),
    };
    println!("hook {} saw cause {cause}", std::process::id());
}

#[graceful::main]
async fn main() -> std::io::Result<()> {
    let pid = std::process::id();
    let address = std::env::var("LISTEN_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let hang = std::env::var_os("UPGRADE_SERVICE_NOT_READY")
        .is_some_and(|file| std::path::Path::new(&file).exists());
    let listener = graceful::bind(&address).await?;
    println!("pid {pid} listening on {}", listener.local_addr()?);
    println!("exe {}", std::env::current_exe()?.display());
    let app = Router::new()
        .route("/", get(whoami))
        .route("/slow", get(slow));
    if hang {
        println!("never ready {pid}");
    } else {
        graceful::ready();
        println!("ready {pid}");
    }
    graceful::serve(listener, app).await
}
