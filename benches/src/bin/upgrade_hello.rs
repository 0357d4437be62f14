//! Upgrade cost subject (benches/upgrade.sh): a hello world on `graceful::serve` over
//! `graceful::bind(LISTEN_ADDR)`, answering its pid, upgraded in place by SIGUSR2. Prints
//! `READY <pid>` once `graceful::ready()` is called.

use axum::routing::get;
use axum::Router;

#[graceful::main]
async fn main() -> std::io::Result<()> {
    let address = std::env::var("LISTEN_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let listener = graceful::bind(&address).await?;
    let app = Router::new().route("/", get(|| async { std::process::id().to_string() }));
    graceful::ready();
    println!("READY {}", std::process::id());
    graceful::serve(listener, app).await
}
