//! The server of tests/serve.rs: one axum app behind `graceful::serve` (`SERVER=serve`, the
//! default; `SERVE_MAX_CONNECTIONS` sets `.max_connections(n)`) or behind the contrast,
//! `axum::serve` with `TrackLayer` and `with_graceful_shutdown` (`SERVER=axum`). Timings come
//! from `GRACEFUL_PRE_STOP` and `GRACEFUL_DRAIN_TIMEOUT`. Prints `listening on ADDR`, and a line
//! on stdout when a slow, stuck or `/bytes` request starts, so that a test signals while it is
//! in flight.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Query;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use http_body::Frame;
use http_body_util::StreamBody;

/// `GET /slow?ms=N`: answers after N ms.
async fn slow(Query(query): Query<HashMap<String, String>>) -> &'static str {
    let ms = query.get("ms").and_then(|ms| ms.parse().ok()).unwrap_or(0);
    println!("slow request started");
    tokio::time::sleep(Duration::from_millis(ms)).await;
    "slow done\n"
}

/// `GET /trailers`: one data frame, then trailers (`x-checksum: 42`).
async fn trailers() -> Response {
    let mut trailers = HeaderMap::new();
    trailers.insert("x-checksum", HeaderValue::from_static("42"));
    let frames = futures_util::stream::iter([
        Ok::<_, Infallible>(Frame::data(Bytes::from_static(b"body before trailers\n"))),
        Ok(Frame::trailers(trailers)),
    ]);
    Response::new(Body::new(StreamBody::new(frames)))
}

/// `GET /bytes?n=N`: N bytes of `x`, streamed in chunks of 64 KiB (chunked encoding, no
/// length), for clients that count what arrives.
async fn bytes(Query(query): Query<HashMap<String, String>>) -> Response {
    static CHUNK: [u8; 64 * 1024] = [b'x'; 64 * 1024];
    let total: usize = query.get("n").and_then(|n| n.parse().ok()).unwrap_or(0);
    println!("bytes request started n={total}");
    let chunks = (0..total).step_by(CHUNK.len()).map(move |start| {
        let len = CHUNK.len().min(total - start);
        Ok::<_, Infallible>(Frame::data(Bytes::from_static(&CHUNK[..len])))
    });
    Response::new(Body::new(StreamBody::new(futures_util::stream::iter(
        chunks,
    ))))
}

/// `GET /stuck`: never answers; the drain timeout names it.
#[graceful::tracked]
async fn stuck() -> &'static str {
    println!("stuck request started");
    std::future::pending().await
}

/// The WebSocket echo of examples/websocket.rs, served here as it is there: Close 1001 at
/// stop-accepting, then up to a second for the client's Close.
#[path = "../../../examples/websocket.rs"]
#[allow(dead_code)] // its own `main` and `/readyz` are the example's
mod websocket;

#[graceful::main]
async fn main() -> std::io::Result<()> {
    let app = Router::new()
        .route("/", get(|| async { "hello\n" }))
        .route("/slow", get(slow))
        .route("/trailers", get(trailers))
        .route("/bytes", get(bytes))
        .route("/ws", get(websocket::upgrade))
        .route("/stuck", get(stuck));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening on {}", listener.local_addr()?);
    graceful::ready();
    let server = std::env::var("SERVER").unwrap_or_else(|_| "serve".to_owned());
    match server.as_str() {
        "serve" => {
            let mut serve = graceful::serve(listener, app);
            if let Ok(max) = std::env::var("SERVE_MAX_CONNECTIONS") {
                let max = max.parse().map_err(|error| {
                    std::io::Error::other(format!(
                        "SERVE_MAX_CONNECTIONS={max:?} is not a count ({error}); write e.g. 1"
                    ))
                })?;
                serve = serve.max_connections(max);
            }
            if let Ok(timeout) = std::env::var("SERVE_HEADER_READ_TIMEOUT") {
                let timeout = humantime::parse_duration(&timeout).map_err(|error| {
                    std::io::Error::other(format!(
                        "SERVE_HEADER_READ_TIMEOUT={timeout:?} is not a duration ({error}); write e.g. 500ms"
                    ))
                })?;
                serve = serve.http1_header_read_timeout(Some(timeout));
            }
            serve.await
        }
        "axum" => {
            axum::serve(listener, app.layer(graceful::TrackLayer::new()))
                .with_graceful_shutdown(graceful::shutdown_signal())
                .await
        }
        other => Err(std::io::Error::other(format!(
            "SERVER={other:?} is not a server here; write SERVER=serve or SERVER=axum"
        ))),
    }
}
