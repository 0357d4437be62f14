//! For tests/reload.rs: `signals` names SIGHUP, so SIGHUP keeps shutting down, as it did before
//! reloads existed; its reload hook must never run. Prints `READY`.

#[graceful::on_reload]
fn never() {
    println!("reload hook ran");
}

#[graceful::main(signals = ["SIGTERM", "SIGHUP"])]
async fn main() {
    println!("READY");
    graceful::shutdown_signal().await;
}
