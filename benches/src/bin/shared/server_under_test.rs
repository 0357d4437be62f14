//! The server of serve_hello and serve_heap: one axum router served by `graceful::serve`
//! (`SERVER=graceful`) or by `axum::serve` (`SERVER=axum`), with the same settings where either
//! side lets them be set:
//! - `TCP_NODELAY` on both. axum 0.8 has no `Serve::tcp_nodelay` (0.7 had one); it is set
//!   through `ListenerExt::tap_io`. graceful sets it by default.
//! - HTTP/1 header read timeout: none on both. axum gives hyper no timer, so it has none;
//!   graceful's default (30 s, a timer per request head) is turned off here.
//! - HTTP/2 keep-alive pings: off on both. axum never sets them; graceful's default (every
//!   20 s, 20 s timeout) is turned off here: with it hyper takes a lock for every frame received.
//! - `GRACEFUL_DEFAULTS=1` keeps graceful's defaults instead, to measure what they cost; with
//!   `GRACEFUL_H2_PINGS=off` too, all but the HTTP/2 pings, to tell their share.
//! - Left as they are: graceful caps connections at 10,000 (a semaphore permit per accept);
//!   axum has no cap. graceful's `first_request_window` acts only during a shutdown.
//!
//! With `TLS_CERT` and `TLS_KEY` (PEM files) it serves HTTPS instead: `SERVER=graceful` through
//! `Serve::tls`, or `SERVER=axum-server` (axum-server with rustls; `axum::serve` has no TLS). Both
//! run rustls on ring with its default settings (session cache, no tickets) and offer ALPN `h2`
//! then `http/1.1`. axum-server's defaults match the settings above: no header read timeout, no
//! HTTP/2 pings; its `NoDelayAcceptor` sets `TCP_NODELAY`. Its handshake timeout is 10 s, as
//! graceful's.

use axum::serve::ListenerExt;
use axum::Router;

pub async fn serve(listener: tokio::net::TcpListener, app: Router) -> std::io::Result<()> {
    let tls = match (std::env::var("TLS_CERT"), std::env::var("TLS_KEY")) {
        (Ok(cert), Ok(key)) => Some((cert, key)),
        _ => None,
    };
    match std::env::var("SERVER").as_deref() {
        Ok("graceful") => {
            let mut serve = graceful::serve(listener, app);
            if let Some((cert, key)) = tls {
                serve = serve.tls(graceful::TlsConfig::from_pem_files(cert, key)?);
            }
            if std::env::var_os("GRACEFUL_DEFAULTS").is_some() {
                if std::env::var("GRACEFUL_H2_PINGS").as_deref() == Ok("off") {
                    serve.http2_keep_alive_interval(None).await
                } else {
                    serve.await
                }
            } else {
                serve
                    .http2_keep_alive_interval(None)
                    .http1_header_read_timeout(None)
                    .await
            }
        }
        Ok("axum") if tls.is_some() => Err(std::io::Error::other(
            "axum::serve has no TLS: set SERVER=axum-server for HTTPS",
        )),
        Ok("axum-server") => {
            let (cert, key) = tls.ok_or_else(|| {
                std::io::Error::other("SERVER=axum-server needs TLS_CERT and TLS_KEY")
            })?;
            axum_server_tls(listener, app, cert, key).await
        }
        Ok("axum") => {
            let listener = listener.tap_io(|stream| {
                // Loopback sockets accept the option; a failure would show as a slow axum.
                let _ = stream.set_nodelay(true);
            });
            axum::serve(listener, app)
                .with_graceful_shutdown(graceful::shutdown_signal())
                .await
        }
        _ => Err(std::io::Error::other(
            "set SERVER=graceful, SERVER=axum or SERVER=axum-server",
        )),
    }
}

/// axum-server with rustls, stopped by graceful's signal as `axum::serve` is above.
async fn axum_server_tls(
    listener: tokio::net::TcpListener,
    app: Router,
    cert: String,
    key: String,
) -> std::io::Result<()> {
    // axum-server builds its config with `ServerConfig::builder()`, which takes the process's
    // provider: ring, as graceful's.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key).await?;
    let handle = axum_server::Handle::new();
    let stop = handle.clone();
    tokio::spawn(async move {
        graceful::shutdown_signal().await;
        stop.graceful_shutdown(None);
    });
    axum_server::tls_rustls::from_tcp_rustls(listener.into_std()?, config)?
        .map(|tls| tls.acceptor(axum_server::accept::NoDelayAcceptor::new()))
        .handle(handle)
        .serve(app.into_make_service())
        .await
}
