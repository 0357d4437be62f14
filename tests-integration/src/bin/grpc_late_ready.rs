//! gRPC health before `graceful::ready()`: serves `graceful::grpc_health()` (for `""` and
//! `greeter.Greeter`) at once, and calls `ready()` only when SIGUSR1 arrives, so that a test can
//! ask Check before and after.

use tokio::signal::unix::{signal, SignalKind};
use tonic::service::Routes;

#[graceful::main]
async fn main() -> std::io::Result<()> {
    let address = std::env::var("LISTEN_ADDR").unwrap_or_else(|_| "127.0.0.1:0".to_owned());
    let listener = tokio::net::TcpListener::bind(&address).await?;
    // Installed before the address is printed: a SIGUSR1 sent on that line is never missed.
    let mut ready_signal = signal(SignalKind::user_defined1())?;
    tokio::spawn(async move {
        ready_signal.recv().await;
        graceful::ready();
        println!("READY");
    });
    let health = graceful::grpc_health().serving_name("greeter.Greeter");
    println!("listening on {}", listener.local_addr()?);
    graceful::serve(listener, Routes::new(health)).await
}
