//! The gRPC server of tests/tls.rs: the Greeter of examples/grpc as tonic's `Routes` behind
//! `graceful::serve(..).tls(..)`, its certificate read from `TLS_CERT` and `TLS_KEY`. `SayHello`
//! with a name `sleep-MS` prints `call started` and answers after MS ms, so that a test signals
//! while a call is in flight; `Count` is not needed here. Timings come from `GRACEFUL_*`. Prints
//! `listening on ADDR`.

use std::time::Duration;

use tonic::service::Routes;
use tonic::{Request, Response, Status};

mod proto {
    include!("../../../examples/grpc/generated/greeter.rs");
}

use proto::greeter_server::{Greeter, GreeterServer};
use proto::{CountReply, CountRequest, HelloReply, HelloRequest};

struct SlowGreeter;

#[tonic::async_trait]
impl Greeter for SlowGreeter {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        let name = request.into_inner().name;
        if let Some(ms) = name.strip_prefix("sleep-").and_then(|ms| ms.parse().ok()) {
            println!("call started");
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        let message = format!("hello {name} from {}", std::process::id());
        Ok(Response::new(HelloReply { message }))
    }

    type CountStream = futures_util::stream::Empty<Result<CountReply, Status>>;

    async fn count(&self, _: Request<CountRequest>) -> Result<Response<Self::CountStream>, Status> {
        Err(Status::unimplemented("tls_grpc serves SayHello only"))
    }
}

fn variable(name: &str) -> std::io::Result<String> {
    std::env::var(name).map_err(|_| std::io::Error::other(format!("{name} is not set")))
}

#[graceful::main]
async fn main() -> std::io::Result<()> {
    let tls = graceful::TlsConfig::from_pem_files(variable("TLS_CERT")?, variable("TLS_KEY")?)?;
    let routes = Routes::new(GreeterServer::new(SlowGreeter)).prepare();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening on {}", listener.local_addr()?);
    graceful::ready();
    graceful::serve(listener, routes).tls(tls).await
}
