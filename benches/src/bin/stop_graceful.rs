//! Process-figure subject: a `#[graceful::main]` binary that reports READY and stops on SIGTERM.

#[graceful::main]
async fn main() {
    graceful::ready();
    println!("READY");
    graceful::shutdown_signal().await;
}
