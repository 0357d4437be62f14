//! The health endpoints: `/readyz` and `/livez` handlers for a router of your own, and (feature
//! `health`) a port of their own that serves them.

#[cfg(feature = "health")]
pub(crate) mod port;

/// `GET /readyz` for a router of your own: 200 `ready` while [`crate::health`] is `Ready`,
/// 503 `starting` or `draining` otherwise.
///
/// With axum: `Router::new().route("/readyz", get(graceful::readyz))`.
///
/// ```
/// # extern crate graceful_runtime as graceful;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let response = graceful::readyz().await;
/// assert_eq!(response.status(), 503); // not ready() yet
/// # }
/// ```
pub async fn readyz() -> http::Response<String> {
    let health = crate::health();
    respond(health.status_code(), health.as_str())
}

/// `GET /livez` for a router of your own: 200 for as long as the process runs.
///
/// ```
/// # extern crate graceful_runtime as graceful;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// assert_eq!(graceful::livez().await.status(), 200);
/// # }
/// ```
pub async fn livez() -> http::Response<String> {
    respond(200, "alive")
}

pub(crate) fn respond(status: u16, body: &str) -> http::Response<String> {
    let mut response = http::Response::new(format!("{body}\n"));
    *response.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    // Probes must always see the current state, never a cached one.
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    response
}
