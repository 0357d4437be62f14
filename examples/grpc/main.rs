//! `cargo run --example grpc --features grpc`: a tonic gRPC service that stops without failing a
//! call. `greeter.Greeter` has a unary RPC (`SayHello`) and a server-streaming one (`Count`);
//! `grpc.health.v1.Health` comes from `graceful::grpc_health()`, so clients with client-side
//! health checking (grpc's `healthCheckConfig`) stop picking this instance at the first signal;
//! `graceful::serve` sends them HTTP/2 GOAWAY, and counts each call until its response stream
//! ends. Configure with `LISTEN_ADDR` (default 127.0.0.1:50051) and `GRACEFUL_*` (see the README).
//!
//! Try it with grpcurl, from this folder (the server has no reflection service):
//! `grpcurl -plaintext -proto greeter.proto -d '{"name":"you"}' localhost:50051 greeter.Greeter/SayHello`,
//! `grpcurl -plaintext -proto greeter.proto localhost:50051 greeter.Greeter/Count`, then ctrl-c
//! the server: the stream ends with UNAVAILABLE after pre-stop.
//!
//! The Rust code for greeter.proto is checked in (`generated/greeter.rs`, made by
//! `scripts/regenerate-grpc`), so that building this needs no `protoc`.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::stream::{self, Stream};
use tonic::service::Routes;
use tonic::{Request, Response, Status};

/// The messages and the server generated from greeter.proto.
mod proto {
    include!("generated/greeter.rs");
}

use proto::greeter_server::{Greeter, GreeterServer};
use proto::{CountReply, CountRequest, HelloReply, HelloRequest};

/// How often `Count` sends its next number.
const COUNT_INTERVAL: Duration = Duration::from_millis(100);

/// Greetings answered, flushed (printed) by the shutdown hook once the drain is over.
static GREETINGS: AtomicU64 = AtomicU64::new(0);

/// The `greeter.Greeter` service.
struct MyGreeter;

/// The `Count` response stream: numbers until stop-accepting, then UNAVAILABLE.
type CountStream = Pin<Box<dyn Stream<Item = Result<CountReply, Status>> + Send>>;

// No `#[graceful::tracked]` on these handlers: `graceful::serve` counts every call under its
// method path (`/greeter.Greeter/Count x1` in the drain's progress lines, and in the report if
// the drain times out) until its response stream has ended, which a guard in the handler could
// not see. `tracked` is for work that outlives a call, such as a task the handler spawns.
#[tonic::async_trait]
impl Greeter for MyGreeter {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        let name = request.into_inner().name;
        // Relaxed: a statistic, read once after the drain, when no handler runs any more.
        GREETINGS.fetch_add(1, Ordering::Relaxed);
        // The process id tells a client which instance answered.
        let message = format!("hello {name} from {}", std::process::id());
        Ok(Response::new(HelloReply { message }))
    }

    type CountStream = CountStream;

    // Returns at once; the drain waits for the stream's last message (the UNAVAILABLE).
    async fn count(&self, request: Request<CountRequest>) -> Result<Response<CountStream>, Status> {
        let start = request.into_inner().start;
        Ok(Response::new(Box::pin(count_until_stop_accepting(start))))
    }
}

/// Sends `start`, `start + 1`, … every [`COUNT_INTERVAL`] until `graceful::token()` is
/// cancelled (stop-accepting), then ends the stream with UNAVAILABLE: the status gRPC clients
/// retry, so they resubscribe to another instance at once instead of waiting for a dead one.
fn count_until_stop_accepting(start: u64) -> impl Stream<Item = Result<CountReply, Status>> {
    let mut ticks = tokio::time::interval(COUNT_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // `None` once the UNAVAILABLE has gone out: the stream then ends.
    let state = (Some(start), ticks, graceful::token());
    stream::unfold(state, |(next, mut ticks, stop)| async move {
        let number = next?;
        tokio::select! {
            biased;
            _ = stop.cancelled() => {
                Some((Err(Status::unavailable("server shutting down")), (None, ticks, stop)))
            }
            _ = ticks.tick() => Some((Ok(CountReply { number }), (Some(number + 1), ticks, stop))),
        }
    })
}

/// Runs after the drain: every `SayHello` has answered, so the count is final.
#[graceful::on_shutdown(order = 10)]
fn flush_greeting_count() {
    // Relaxed: the drain is over; no handler increments it any more.
    let greetings = GREETINGS.load(Ordering::Relaxed);
    println!("greeted {greetings} times");
}

/// The error main returns: start-up problems, reported with `Debug` and exit code 1.
type StartupError = Box<dyn std::error::Error + Send + Sync>;

#[graceful::main(pre_stop = "2s", drain_timeout = "20s")]
async fn main() -> Result<(), StartupError> {
    let address = std::env::var("LISTEN_ADDR").unwrap_or_else(|_| "127.0.0.1:50051".to_owned());
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .map_err(|error| format!("cannot listen on LISTEN_ADDR={address:?}: {error}"))?;

    // SERVING for "" and greeter.Greeter while ready; NOT_SERVING from the first signal.
    let health = graceful::grpc_health().serving::<GreeterServer<MyGreeter>>();
    let routes = Routes::new(GreeterServer::new(MyGreeter))
        .add_service(health)
        .prepare();

    println!("listening on {}", listener.local_addr()?);
    graceful::ready();
    // HTTP/2 (gRPC) and HTTP/1.1 on one port; GOAWAY from the first signal; returns once every
    // call has ended.
    graceful::serve(listener, routes).await?;
    Ok(())
}
