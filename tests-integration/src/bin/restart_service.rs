//! The server of tests/rolling_restart_mixed.rs: every kind of traffic on one `graceful::serve`
//! port, so that one rolling restart meets them all at once. POST /items and GET /items (the
//! handlers of examples/service), a `/ws` echo that sends Close 1001 at stop-accepting, an
//! `/events` stream of numbered server-sent events whose last event says how many it sent,
//! `/big?bytes=N` (N bytes of a known pattern, for slow readers to check whole), `/readyz`,
//! and gRPC (`greeter.Greeter` of examples/grpc and `graceful::grpc_health()`).
//! Configure with `LISTEN_ADDR` (default 127.0.0.1:3000), `DATABASE_URL` (default an SQLite
//! file in the working directory) and `GRACEFUL_*`. Prints `listening on ADDR`.

#[path = "../../../examples/service/handlers.rs"]
#[allow(dead_code)] // its `/stuck` is not served here
mod handlers;

/// The messages and the server generated from examples/grpc/greeter.proto (checked in there).
mod proto {
    include!("../../../examples/grpc/generated/greeter.rs");
}

use std::convert::Infallible;
use std::pin::Pin;
use std::time::Duration;

use axum::extract::Query;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::{get, post};
use axum::Router;
use futures_util::stream::{self, Stream};
use proto::greeter_server::{Greeter, GreeterServer};
use proto::{CountReply, CountRequest, HelloReply, HelloRequest};
use tonic::service::Routes;
use tonic::Status;

/// How often `/events` sends its next numbered event.
const EVENT_INTERVAL: Duration = Duration::from_millis(100);

/// `GET /ws`: the WebSocket echo of examples/websocket.rs, as it is there: Close 1001 at
/// stop-accepting, then up to a second for the client's Close.
#[path = "../../../examples/websocket.rs"]
#[allow(dead_code)] // its own `main` and `/readyz` are the example's
mod websocket;

/// `GET /events`: `id: N` / `data: tick N` every [`EVENT_INTERVAL`]; at stop-accepting a last
/// `event: shutdown` with `data: sent N`, the number of ticks this stream sent, then the end.
/// `?pad=N` adds N bytes to each tick, so that a slow reader falls behind the stream.
async fn events(
    Query(shape): Query<EventShape>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let pad = " ".to_owned() + &"x".repeat(shape.pad.min(1 << 20));
    let pad = if shape.pad == 0 { String::new() } else { pad };
    let stop = graceful::token();
    let mut ticks = tokio::time::interval(EVENT_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let ticks = stream::unfold((0u64, false, ticks), move |(sent, finished, mut ticks)| {
        let stop = stop.clone();
        let pad = pad.clone();
        async move {
            if finished {
                return None;
            }
            tokio::select! {
                biased;
                _ = stop.cancelled() => {
                    let last = Event::default().event("shutdown").data(format!("sent {sent}"));
                    Some((Ok(last), (sent, true, ticks)))
                }
                _ = ticks.tick() => {
                    let tick = Event::default().id(sent.to_string()).data(format!("tick {sent}{pad}"));
                    Some((Ok(tick), (sent + 1, false, ticks)))
                }
            }
        }
    });
    Sse::new(ticks).keep_alive(KeepAlive::default())
}

#[derive(serde::Deserialize)]
struct EventShape {
    #[serde(default)]
    pad: usize,
}

#[derive(serde::Deserialize)]
struct BigShape {
    bytes: u64,
}

/// `GET /big?bytes=N`: N bytes, byte i being `i % 251` (what `slow_readers::pattern_byte`
/// checks), with their length, streamed in 64 KB pieces so that a slow reader holds the
/// response open on the server for as long as it takes.
async fn big(Query(shape): Query<BigShape>) -> axum::response::Response {
    const PIECE: u64 = 64 * 1024;
    let length = shape.bytes;
    let pieces = stream::unfold(0u64, move |offset| async move {
        (offset < length).then(|| {
            let end = (offset + PIECE).min(length);
            let piece: Vec<u8> = (offset..end).map(|i| (i % 251) as u8).collect();
            (Ok::<_, Infallible>(axum::body::Bytes::from(piece)), end)
        })
    });
    axum::response::Response::builder()
        .header(axum::http::header::CONTENT_LENGTH, length)
        .header(axum::http::header::CONTENT_TYPE, "application/octet-stream")
        .body(axum::body::Body::from_stream(pieces))
        .unwrap()
}

struct MyGreeter;

type CountStream = Pin<Box<dyn Stream<Item = Result<CountReply, Status>> + Send>>;

#[tonic::async_trait]
impl Greeter for MyGreeter {
    async fn say_hello(
        &self,
        request: tonic::Request<HelloRequest>,
    ) -> Result<tonic::Response<HelloReply>, Status> {
        let name = request.into_inner().name;
        let message = format!("hello {name} from {}", std::process::id());
        Ok(tonic::Response::new(HelloReply { message }))
    }

    type CountStream = CountStream;

    /// Not exercised here: one number, then the end.
    async fn count(
        &self,
        request: tonic::Request<CountRequest>,
    ) -> Result<tonic::Response<CountStream>, Status> {
        let number = request.into_inner().start;
        Ok(tonic::Response::new(Box::pin(stream::iter([Ok(
            CountReply { number },
        )]))))
    }
}

type StartupError = Box<dyn std::error::Error + Send + Sync>;

#[graceful::main(pre_stop = "1s", drain_timeout = "15s")]
async fn main() -> Result<(), StartupError> {
    let listen_addr = env_or("LISTEN_ADDR", "127.0.0.1:3000");
    let database_url = env_or("DATABASE_URL", "sqlite://graceful-restart-service.db");
    let pool = handlers::connect(&database_url)
        .await
        .map_err(|error| format!("DATABASE_URL={database_url:?}: {error}"))?;
    let closing = pool.clone();
    graceful::register_hook(10, "close-database-pool", move || async move {
        closing.close().await;
    });

    let http = Router::new()
        .route("/items", post(handlers::create).get(handlers::list))
        .route("/items/{id}", get(handlers::read))
        .with_state(pool)
        .route("/ws", get(websocket::upgrade))
        .route("/events", get(events))
        .route("/big", get(big))
        .route("/readyz", get(graceful::readyz));
    let health = graceful::grpc_health().serving::<GreeterServer<MyGreeter>>();
    // tonic's router keeps its fallback (UNIMPLEMENTED); the HTTP routes join it.
    let app = Routes::new(GreeterServer::new(MyGreeter))
        .add_service(health)
        .into_axum_router()
        .merge(http);

    let listener = tokio::net::TcpListener::bind(&listen_addr)
        .await
        .map_err(|error| format!("cannot listen on LISTEN_ADDR={listen_addr:?}: {error}"))?;
    println!("listening on {}", listener.local_addr()?);
    // The gRPC answers carry it too: a client knows the new process has answered.
    println!("pid {}", std::process::id());
    graceful::ready();
    let mut serve = graceful::serve(listener, app);
    // `SERVE_HTTP2_KEEP_ALIVE=2s`: pings every 2 s, and a client silent 2 s more is closed.
    if let Ok(keep_alive) = std::env::var("SERVE_HTTP2_KEEP_ALIVE") {
        let keep_alive = humantime::parse_duration(&keep_alive)
            .map_err(|error| format!("SERVE_HTTP2_KEEP_ALIVE={keep_alive:?}: {error}"))?;
        serve = serve
            .http2_keep_alive_interval(Some(keep_alive))
            .http2_keep_alive_timeout(keep_alive);
    }
    serve.await?;
    Ok(())
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}
