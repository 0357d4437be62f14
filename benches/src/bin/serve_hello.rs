//! Server-loop subject: the same axum hello world served by `graceful::serve` (`SERVER=graceful`)
//! or by `axum::serve` (`SERVER=axum`), HTTP/1.1 and h2c on one port; `benches/serve.sh` drives
//! it with wrk and h2load. Prints `LISTENING <address>`, stops on SIGTERM.
//!
//! Settings, made to match where either side lets them be set:
//! - TCP_NODELAY on both. axum 0.8 has no `Serve::tcp_nodelay` (0.7 had one); it is set through
//!   `ListenerExt::tap_io`. graceful sets it by default.
//! - HTTP/2 keep-alive pings: off on both. axum never sets them; graceful's default (every 20 s,
//!   20 s timeout) is turned off here, since with it hyper takes a mutex on every received frame
//!   to note the read. `GRACEFUL_DEFAULTS=1` keeps graceful's defaults to measure that too.
//! - HTTP/2 extended CONNECT: enabled on both (both builders ask for it).
//! - Left as they are, because neither crate exposes them: graceful gives hyper a timer, so each
//!   HTTP/1 request arms hyper's 30 s header read timeout; axum gives none, so it has no such
//!   timeout. graceful caps connections at 10,000 (a semaphore permit per accept); axum has no
//!   cap. graceful's `first_request_window` (1 s) acts only during a shutdown.

use axum::routing::get;
use axum::serve::ListenerExt;
use axum::Router;

#[graceful::main]
async fn main() -> std::io::Result<()> {
    let app = Router::new().route("/", get(|| async { "hello" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("LISTENING {}", listener.local_addr()?);
    graceful::ready();
    match std::env::var("SERVER").as_deref() {
        Ok("graceful") => {
            let serve = graceful::serve(listener, app);
            if std::env::var_os("GRACEFUL_DEFAULTS").is_some() {
                serve.await
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
