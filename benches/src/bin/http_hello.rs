//! HTTP overhead subject: an axum hello world, with `graceful::TrackLayer` when `TRACKED=1`.
//! Prints `LISTENING <address>`; `benches/http.sh` drives it with wrk.

use axum::routing::get;
use axum::Router;

#[graceful::main]
async fn main() -> std::io::Result<()> {
    let mut app = Router::new().route("/", get(|| async { "hello" }));
    if std::env::var_os("TRACKED").is_some() {
        app = app.layer(graceful::TrackLayer::new());
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("LISTENING {}", listener.local_addr()?);
    graceful::ready();
    axum::serve(listener, app).with_graceful_shutdown(graceful::shutdown_signal()).await
}
