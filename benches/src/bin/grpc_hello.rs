//! gRPC overhead subject: the Greeter of examples/grpc, `SayHello` answering at once, under
//! `graceful::serve` (`SERVER=graceful`, the default) or tonic's own server (`SERVER=tonic`).
//! Prints `LISTENING <address>`; `benches/grpc.sh` drives it with h2load.
//!
//! Both sides run in this one binary, on the runtime `#[graceful::main]` builds (multi-thread,
//! one worker per core), with the same service, on a `127.0.0.1:0` tokio `TcpListener`, through
//! hyper-util's `auto` builder (HTTP/1.1 and HTTP/2 sniffed per connection), hyper's HTTP/2
//! defaults otherwise (1 MiB stream and connection windows, no adaptive window, 16 KiB frames,
//! 16 KiB header list, date header):
//! - graceful: `serve`'s defaults: `TCP_NODELAY` on, HTTP/2 ping every 20 s with a 20 s
//!   timeout, 200 concurrent streams per connection, 1024 local error resets, extended
//!   CONNECT enabled (not settable: unused by gRPC), each call counted in flight under its
//!   method path. The service is tonic's `Routes`, as examples/grpc passes it.
//! - tonic: `Server::builder()` with its defaults changed to graceful's where they differ:
//!   `accept_http1(true)` (tonic's default is HTTP/2 only, without the sniffing), HTTP/2 ping
//!   every 20 s (default none; the timeout is already 20 s), 200 concurrent streams (default
//!   unlimited), 1024 local error resets (default unlimited), and `TCP_NODELAY` set on the
//!   `TcpIncoming` itself: `Server::tcp_nodelay` (default true) applies only to the listeners
//!   tonic binds, and `TcpIncoming::from(listener)` leaves `TCP_NODELAY` off. No timeout,
//!   concurrency limit or load shedding (tonic's defaults); tonic adds its own per-connection
//!   layers (error recovery, `grpc-timeout`, connect info, a boxed service), as users get them.

use std::time::Duration;

use tonic::codegen::tokio_stream;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;
use tonic::{Request, Response, Status};

mod proto {
    include!("../../../examples/grpc/generated/greeter.rs");
}

use proto::greeter_server::{Greeter, GreeterServer};
use proto::{CountReply, CountRequest, HelloReply, HelloRequest};

/// `serve`'s HTTP/2 ping interval and timeout, and hyper's stream and reset limits, given to
/// tonic so that the two differ only in their server loops.
const KEEP_ALIVE: Duration = Duration::from_secs(20);
const MAX_CONCURRENT_STREAMS: u32 = 200;
const MAX_LOCAL_ERROR_RESETS: usize = 1024;

struct MyGreeter;

#[tonic::async_trait]
impl Greeter for MyGreeter {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        let name = request.into_inner().name;
        Ok(Response::new(HelloReply {
            message: format!("hello {name}"),
        }))
    }

    // The trait requires it; the benchmark never calls it.
    type CountStream = tokio_stream::Empty<Result<CountReply, Status>>;

    async fn count(&self, _: Request<CountRequest>) -> Result<Response<Self::CountStream>, Status> {
        Err(Status::unimplemented("not benchmarked"))
    }
}

type Error = Box<dyn std::error::Error + Send + Sync>;

#[graceful::main]
async fn main() -> Result<(), Error> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("LISTENING {}", listener.local_addr()?);
    graceful::ready();
    match std::env::var("SERVER").as_deref() {
        Ok("tonic") => {
            let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
            Server::builder()
                .accept_http1(true)
                .http2_keepalive_interval(Some(KEEP_ALIVE))
                .http2_keepalive_timeout(Some(KEEP_ALIVE))
                .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
                .http2_max_local_error_reset_streams(Some(MAX_LOCAL_ERROR_RESETS))
                .add_service(GreeterServer::new(MyGreeter))
                .serve_with_incoming_shutdown(incoming, graceful::shutdown_signal())
                .await?;
        }
        Ok("graceful") | Err(_) => {
            let routes = Routes::new(GreeterServer::new(MyGreeter)).prepare();
            graceful::serve(listener, routes).await?;
        }
        Ok(other) => return Err(format!("SERVER={other:?}: want graceful or tonic").into()),
    }
    Ok(())
}
