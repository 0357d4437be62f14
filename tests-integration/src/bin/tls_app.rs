//! The server of tests/tls.rs: an axum app behind `graceful::serve(..).tls(..)`, its certificate
//! read from `TLS_CERT` and `TLS_KEY` (made by the test). Timings come from `GRACEFUL_PRE_STOP`
//! and `GRACEFUL_DRAIN_TIMEOUT`. Prints `listening on ADDR`, and `slow request started` when a
//! `/slow` request begins, so that a test signals while it is in flight.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::Query;
use axum::routing::get;
use axum::Router;

/// `GET /slow?ms=N`: answers after N ms.
async fn slow(Query(query): Query<HashMap<String, String>>) -> &'static str {
    let ms = query.get("ms").and_then(|ms| ms.parse().ok()).unwrap_or(0);
    println!("slow request started");
    tokio::time::sleep(Duration::from_millis(ms)).await;
    "slow done\n"
}

fn variable(name: &str) -> std::io::Result<String> {
    std::env::var(name).map_err(|_| std::io::Error::other(format!("{name} is not set")))
}

#[graceful::main]
async fn main() -> std::io::Result<()> {
    let tls = graceful::TlsConfig::from_pem_files(variable("TLS_CERT")?, variable("TLS_KEY")?)?;
    let app = Router::new()
        .route("/", get(|| async { "hello\n" }))
        .route("/slow", get(slow));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening on {}", listener.local_addr()?);
    graceful::ready();
    graceful::serve(listener, app).tls(tls).await
}
