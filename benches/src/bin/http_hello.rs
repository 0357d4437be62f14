//! HTTP overhead subject: an axum hello world on `axum::serve`. `TRACKED=1`: with
//! `graceful::TrackLayer` on the router (`Router::layer`, as the README shows); `TRACKED=4`: with
//! `TrackLayer` around the whole router instead (`ServiceExt::into_make_service`).
//! Diagnostics: `TRACKED=2`, a `from_fn` middleware holding a `graceful::track` guard only until
//! the response head (no body wrapper); `TRACKED=3`, an empty `from_fn` middleware.
//! Prints `LISTENING <address>`; `benches/http.sh` drives it with wrk (`VARIANT=` picks one).

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use axum::{Router, ServiceExt};
use tower_layer::Layer;

#[graceful::main]
async fn main() -> std::io::Result<()> {
    let mut app = Router::new().route("/", get(|| async { "hello" }));
    let tracked = std::env::var("TRACKED").unwrap_or_default();
    match tracked.as_str() {
        "1" => app = app.layer(graceful::TrackLayer::new()),
        "2" => app = app.layer(axum::middleware::from_fn(guard_until_head)),
        "3" => app = app.layer(axum::middleware::from_fn(pass_through)),
        _ => {}
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("LISTENING {}", listener.local_addr()?);
    graceful::ready();
    if tracked == "4" {
        let app = graceful::TrackLayer::new().layer(app);
        return axum::serve(listener, ServiceExt::<Request>::into_make_service(app))
            .with_graceful_shutdown(graceful::shutdown_signal())
            .await;
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(graceful::shutdown_signal())
        .await
}

async fn guard_until_head(request: Request, next: Next) -> Response {
    let _guard = graceful::track("http");
    next.run(request).await
}

async fn pass_through(request: Request, next: Next) -> Response {
    next.run(request).await
}
