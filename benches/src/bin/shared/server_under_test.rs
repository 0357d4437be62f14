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

use axum::serve::ListenerExt;
use axum::Router;

pub async fn serve(listener: tokio::net::TcpListener, app: Router) -> std::io::Result<()> {
    match std::env::var("SERVER").as_deref() {
        Ok("graceful") => {
            let serve = graceful::serve(listener, app);
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
        Ok("axum") => {
            let listener = listener.tap_io(|stream| {
                // Loopback sockets accept the option; a failure would show as a slow axum.
                let _ = stream.set_nodelay(true);
            });
            axum::serve(listener, app)
                .with_graceful_shutdown(graceful::shutdown_signal())
                .await
        }
        _ => Err(std::io::Error::other("set SERVER=graceful or SERVER=axum")),
    }
}
