//! The rolling-restart proof for `TrackLayer`: the handlers and database of `examples/service`
//! on `axum::serve` with `graceful::TrackLayer` and `with_graceful_shutdown`, the setup the
//! README keeps for users who need `axum::serve` itself. Small responses count until axum has
//! them, so this shows that nothing is lost while their bytes are written after the count ends.
//! Configure with `LISTEN_ADDR`, `DATABASE_URL` and `GRACEFUL_*`. Prints `listening ADDR`.

#[path = "../../../examples/service/handlers.rs"]
mod handlers;

use axum::routing::{get, post};
use axum::Router;

#[graceful::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let pool = handlers::connect(&std::env::var("DATABASE_URL")?).await?;
    let closing = pool.clone();
    graceful::register_hook(10, "close-database-pool", move || async move {
        closing.close().await;
    });
    let app = Router::new()
        .route("/items", post(handlers::create).get(handlers::list))
        .route("/items/{id}", get(handlers::read))
        .route("/stuck", get(handlers::stuck))
        .with_state(pool)
        .layer(graceful::TrackLayer::new());
    let listener = tokio::net::TcpListener::bind(std::env::var("LISTEN_ADDR")?).await?;
    println!("listening {}", listener.local_addr()?);
    graceful::ready();
    axum::serve(listener, app)
        .with_graceful_shutdown(graceful::shutdown_signal())
        .await?;
    Ok(())
}
