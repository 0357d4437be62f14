//! `cargo run --example service --features serve,health`: an axum service with a SQLite database
//! through sqlx, made to stop without losing a request. POST /items writes a row in a
//! transaction; GET /items/{id} and GET /items read. Configure with `LISTEN_ADDR` (default
//! 127.0.0.1:3000), `DATABASE_URL` (default an SQLite file beside the working directory),
//! `SETTINGS_FILE` (optional: `list_limit = N`, re-read at each reload, SIGHUP or `systemctl
//! reload`) and `GRACEFUL_*` (see the README).

mod handlers;

use std::net::SocketAddr;
use std::str::FromStr;

use axum::routing::{get, post};
use axum::Router;

/// The error main returns: start-up problems, reported with `Debug` and exit code 1.
type StartupError = Box<dyn std::error::Error + Send + Sync>;

#[graceful::main(
    health = "127.0.0.1:8081",
    pre_stop = "2s",
    drain_timeout = "15s",
    grace = "25s"
)]
async fn main() -> Result<(), StartupError> {
    // Non-blocking log writer: its guard is released after the final report, so the report and
    // the hooks' own lines are flushed last.
    let (writer, writer_guard) = tracing_appender::non_blocking(std::io::stdout());
    let colors = std::io::IsTerminal::is_terminal(&std::io::stdout());
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(colors)
        .init();
    graceful::keep_until_exit(writer_guard);

    let listen_addr = env_or("LISTEN_ADDR", "127.0.0.1:3000");
    let listen_addr = SocketAddr::from_str(&listen_addr)
        .map_err(|error| format!("LISTEN_ADDR={listen_addr:?} is not a socket address ({error}); write e.g. 127.0.0.1:3000"))?;
    let database_url = env_or("DATABASE_URL", "sqlite://graceful-service.db");

    handlers::reload_settings().await?;
    let pool = handlers::connect(&database_url)
        .await
        .map_err(|error| format!("DATABASE_URL={database_url:?}: {error}"))?;

    // The pool is made here, so its hook is registered here: it closes after the drain.
    let closing = pool.clone();
    graceful::register_hook(10, "close-database-pool", move || async move {
        closing.close().await;
        tracing::info!("database pool closed");
    });

    let app = Router::new()
        .route("/items", post(handlers::create).get(handlers::list))
        .route("/items/{id}", get(handlers::read))
        .route("/stuck", get(handlers::stuck))
        .with_state(pool);

    // Adopts the socket systemd passed (socket activation) when there is one, else binds.
    let listener = graceful::bind(listen_addr)
        .await
        .map_err(|error| format!("cannot listen on {listen_addr}: {error}"))?;
    tracing::info!(address = %listener.local_addr()?, "listening");
    graceful::ready();

    // Counts each request until its response has gone out, moves clients elsewhere from the
    // first signal, and returns once its connections are done.
    graceful::serve(listener, app).await?;
    tracing::info!("listener closed");
    Ok(())
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}
