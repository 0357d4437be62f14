//! For tests/reload.rs: `reload_signal = "none"`, so graceful installs no SIGHUP handler and
//! SIGHUP keeps its default action; `graceful::reload()` still reloads. Prints the report of a
//! reload asked for from code, then `READY`.

#[graceful::on_reload(name = "from-code")]
async fn from_code() {}

#[graceful::main(reload_signal = "none")]
async fn main() {
    match graceful::reload().await {
        Ok(report) => println!("reloaded from code: {report}"),
        Err(refused) => println!("refused: {refused}"),
    }
    println!("READY");
    graceful::shutdown_signal().await;
}
