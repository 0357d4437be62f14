//! An essential task that goes wrong as `ESSENTIAL` says (`err`, `panic`, `end`, or
//! `fail-in-drain`), in a service that waits for its shutdown like any other: the task's end
//! alone must stop it (or, for `fail-in-drain`, turn a SIGTERM's clean exit into 1).

use std::time::Duration;

#[graceful::on_shutdown(order = 1)]
fn hook() {
    println!("hook ran");
}

#[graceful::main(drain_timeout = "5s", report = "json")]
async fn main() {
    let behaviour = std::env::var("ESSENTIAL").unwrap_or_default();
    graceful::spawn_essential("consumer", async move {
        match behaviour.as_str() {
            "err" => Err("connection reset".to_owned()),
            "panic" => panic!("poisoned state"),
            "end" => Ok(()),
            "fail-in-drain" => {
                graceful::token().cancelled().await;
                Err("lost the broker while draining".to_owned())
            }
            other => panic!("ESSENTIAL={other:?}: write err, panic, end or fail-in-drain"),
        }
    });
    graceful::ready();
    println!("READY");
    // A service body: it returns only when shutdown begins.
    graceful::shutdown_started().await;
    tokio::time::sleep(Duration::from_millis(1)).await;
}
