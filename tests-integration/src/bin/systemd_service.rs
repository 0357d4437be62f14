//! The small service that tests/systemd_real.rs runs under a real systemd, beside the example:
//! `graceful::bind` + `graceful::serve` on ONE current_thread runtime, so that a request can
//! wedge it. `LISTEN_ADDR` is where it listens; with `READY_GATE` set to a path it calls
//! `graceful::ready()` (READY=1) only once that file exists. Routes:
//! - `GET /`: `up`;
//! - `GET /stuck`: never answers (the drain times out);
//! - `POST /exit/{code}`: `graceful::shutdown_with(code, ..)`, a shutdown systemd did not ask for;
//! - `POST /wedge`: answers 202, then blocks the runtime's only thread for good, so that the
//!   WATCHDOG=1 pings (a task on this runtime) stop.
//!
//! Prints `waiting for the ready gate`, `ready` and `wedging the runtime` on stdout (the journal).

use std::path::Path;
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;

type StartupError = Box<dyn std::error::Error + Send + Sync>;

async fn stuck() -> StatusCode {
    println!("stuck request entered");
    std::future::pending::<()>().await;
    StatusCode::OK
}

async fn exit(axum::extract::Path(code): axum::extract::Path<u8>) -> StatusCode {
    println!("asked to exit {code}");
    graceful::shutdown_with(code, format!("POST /exit/{code}"));
    StatusCode::ACCEPTED
}

async fn wedge() -> StatusCode {
    // Spawned, and a little later, so that the 202 goes out first.
    tokio::spawn(async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        println!("wedging the runtime");
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    });
    StatusCode::ACCEPTED
}

#[graceful::main(flavor = "current_thread")]
async fn main() -> Result<(), StartupError> {
    let listen_addr =
        std::env::var("LISTEN_ADDR").map_err(|_| "set LISTEN_ADDR, e.g. 127.0.0.1:3000")?;
    let listener = graceful::bind(listen_addr.as_str())
        .await
        .map_err(|error| format!("cannot listen on {listen_addr}: {error}"))?;
    if let Some(gate) = std::env::var_os("READY_GATE") {
        println!("waiting for the ready gate {}", Path::new(&gate).display());
        while !Path::new(&gate).exists() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let app = Router::new()
        .route("/", get(|| async { "up\n" }))
        .route("/stuck", get(stuck))
        .route("/exit/{code}", post(exit))
        .route("/wedge", post(wedge));
    graceful::ready();
    println!("ready");
    graceful::serve(listener, app).await?;
    Ok(())
}
