//! Process-figure baseline: a plain `#[tokio::main]` binary that reports READY and exits when
//! `tokio::signal::unix::signal(SignalKind::terminate())` fires.

use tokio::signal::unix::{signal, SignalKind};

#[tokio::main]
async fn main() {
    let mut terminate = signal(SignalKind::terminate()).expect("install the SIGTERM handler");
    println!("READY");
    terminate.recv().await;
}
