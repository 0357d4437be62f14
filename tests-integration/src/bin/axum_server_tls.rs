//! A contrast of tests/tls.rs: the axum hello world behind axum-server with rustls (on ring), stopped
//! as axum's `tls-graceful-shutdown` example stops it: SIGTERM calls
//! `Handle::graceful_shutdown(Some(10 s))`. `AXUM_SERVER=0.8` runs axum-server 0.8.0, the last
//! release whose shutdown waited for connections still in their handshake (axum#2611);
//! `AXUM_SERVER=0.9` runs the current one. The certificate comes from `TLS_CERT` and `TLS_KEY`.
//! Prints `listening on ADDR`, then `graceful shutdown` at the signal.

use std::net::SocketAddr;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use tokio::signal::unix::{signal, SignalKind};

/// The grace period of axum's example.
const GRACE: Duration = Duration::from_secs(10);

/// The same code for both releases, whose API for this is the same.
macro_rules! serve {
    ($axum_server:ident, $cert:expr, $key:expr, $app:expr) => {{
        let config = $axum_server::tls_rustls::RustlsConfig::from_pem_file($cert, $key).await?;
        let handle = $axum_server::Handle::<SocketAddr>::new();
        let server = $axum_server::bind_rustls(SocketAddr::from(([127, 0, 0, 1], 0)), config)
            .handle(handle.clone())
            .serve($app.into_make_service());
        let server = tokio::spawn(server);
        let address = handle.listening().await.ok_or("axum-server did not bind")?;
        println!("listening on {address}");
        signal(SignalKind::terminate())?.recv().await;
        println!("graceful shutdown");
        handle.graceful_shutdown(Some(GRACE));
        server.await??;
    }};
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // axum-server builds its config with `ServerConfig::builder()`, which takes the process's
    // provider: ring, as graceful's.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cert = std::env::var("TLS_CERT").map_err(|_| "TLS_CERT is not set")?;
    let key = std::env::var("TLS_KEY").map_err(|_| "TLS_KEY is not set")?;
    let app = Router::new().route("/", get(|| async { "hello\n" }));
    match std::env::var("AXUM_SERVER").as_deref() {
        Ok("0.8") => serve!(axum_server_08, cert, key, app),
        Ok("0.9") => serve!(axum_server, cert, key, app),
        _ => return Err("set AXUM_SERVER=0.8 or AXUM_SERVER=0.9".into()),
    }
    Ok(())
}
