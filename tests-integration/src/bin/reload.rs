//! The service that tests/reload.rs reloads: SIGHUP (the default reload signal) or `GET /reload`
//! (`graceful::reload()`, answering with the report) runs its reload hooks, while it serves.
//! - order 0, `gate` (added with `graceful::on_reload`): with `RELOAD_GATE=1`, prints
//!   `gate waiting N` and waits until `POST /release` lets it go;
//! - order 10, `settings`: reads the file `RELOAD_SETTINGS`; a file saying `bad` fails the hook
//!   and the settings stay as they were;
//! - order 20, `cache` (a sync fn): prints `cache cleared N`.
//!
//! `GET /` answers the settings in force. With `HOLD_DRAIN=1` a task counted in flight holds the
//! drain until SIGUSR2, so that a test can act while shutdown is under way. Prints
//! `listening on ADDR`, then `READY`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::Semaphore;

/// The settings in force: replaced only by a reload that read good ones.
static SETTINGS: Mutex<String> = Mutex::new(String::new());

#[graceful::on_reload(order = 10, name = "settings")]
async fn reload_settings() -> Result<(), String> {
    let path = std::env::var("RELOAD_SETTINGS").map_err(|_| "RELOAD_SETTINGS is not set")?;
    let text = tokio::fs::read_to_string(&path)
        .await
        .map_err(|error| format!("{path}: {error}"))?;
    let fresh = text.trim();
    if fresh == "bad" {
        return Err(format!("{path}: line 1: `bad` is not a setting"));
    }
    *SETTINGS.lock().unwrap() = fresh.to_owned();
    println!("settings now {fresh}");
    Ok(())
}

static CACHE_CLEARS: AtomicUsize = AtomicUsize::new(0);

#[graceful::on_reload(order = 20, name = "cache")]
fn clear_cache() {
    let clears = CACHE_CLEARS.fetch_add(1, Ordering::Relaxed) + 1;
    println!("cache cleared {clears}");
}

async fn reload() -> (StatusCode, String) {
    match graceful::reload().await {
        Ok(report) => (StatusCode::OK, report.to_string()),
        Err(refused) => (StatusCode::CONFLICT, refused.to_string()),
    }
}

type StartupError = Box<dyn std::error::Error + Send + Sync>;

#[graceful::main]
async fn main() -> Result<(), StartupError> {
    *SETTINGS.lock().unwrap() = "initial".to_owned();
    // Permits handed out by POST /release, one per run of the gated hook.
    let gate = Arc::new(Semaphore::new(0));
    if std::env::var_os("RELOAD_GATE").is_some() {
        let gate = Arc::clone(&gate);
        let runs = Arc::new(AtomicUsize::new(0));
        graceful::on_reload(move || {
            let (gate, runs) = (Arc::clone(&gate), Arc::clone(&runs));
            async move {
                let run = runs.fetch_add(1, Ordering::Relaxed) + 1;
                println!("gate waiting {run}");
                gate.acquire().await.expect("never closed").forget();
            }
        });
    }
    if std::env::var_os("HOLD_DRAIN").is_some() {
        let mut usr2 =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined2())?;
        graceful::spawn(async move {
            usr2.recv().await;
            println!("hold released");
        });
    }
    let app = Router::new()
        .route("/", get(|| async { SETTINGS.lock().unwrap().clone() }))
        .route("/reload", get(reload))
        .route(
            "/release",
            post(move || async move {
                gate.add_permits(1);
                StatusCode::OK
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening on {}", listener.local_addr()?);
    graceful::ready();
    println!("READY");
    graceful::serve(listener, app).await?;
    Ok(())
}
