//! The contrast for tests/grpc.rs: the Greeter of examples/grpc with no graceful at all, as
//! tonic's documentation builds it: tonic-health's `health_reporter()` (SERVING from the start,
//! never changed) and `tonic::transport::Server` stopped by `serve_with_incoming_shutdown` on
//! SIGTERM or ctrl-c (it stops accepting, sends GOAWAY and waits for the calls in progress).

use std::pin::Pin;
use std::time::Duration;

use futures_util::stream::{self, Stream};
use tokio::signal::unix::{signal, SignalKind};
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

mod proto {
    include!("../../../examples/grpc/generated/greeter.rs");
}

use proto::greeter_server::{Greeter, GreeterServer};
use proto::{CountReply, CountRequest, HelloReply, HelloRequest};

struct MyGreeter;

type CountStream = Pin<Box<dyn Stream<Item = Result<CountReply, Status>> + Send>>;

#[tonic::async_trait]
impl Greeter for MyGreeter {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        let name = request.into_inner().name;
        let message = format!("hello {name} from {}", std::process::id());
        Ok(Response::new(HelloReply { message }))
    }

    type CountStream = CountStream;

    async fn count(&self, request: Request<CountRequest>) -> Result<Response<CountStream>, Status> {
        let ticks = tokio::time::interval(Duration::from_millis(100));
        let numbers = stream::unfold(
            (request.into_inner().start, ticks),
            |(number, mut ticks)| async move {
                ticks.tick().await;
                Some((Ok(CountReply { number }), (number + 1, ticks)))
            },
        );
        Ok(Response::new(Box::pin(numbers)))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let address = std::env::var("LISTEN_ADDR").unwrap_or_else(|_| "127.0.0.1:50051".to_owned());
    let listener = tokio::net::TcpListener::bind(&address).await?;
    let mut terminate = signal(SignalKind::terminate())?;
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_serving::<GreeterServer<MyGreeter>>().await;

    println!("listening on {}", listener.local_addr()?);
    let stop = async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    };
    tonic::transport::Server::builder()
        .add_service(health)
        .add_service(GreeterServer::new(MyGreeter))
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), stop)
        .await?;
    Ok(())
}
