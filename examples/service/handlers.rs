//! The service's database, handlers and settings: each handler tracked, each write in one
//! transaction, the settings re-read at each reload.

use std::str::FromStr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use sqlx::SqlitePool;

#[derive(Debug, Deserialize)]
pub struct NewItem {
    pub id: String,
    pub body: String,
}

#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct Item {
    pub id: String,
    pub body: String,
}

#[derive(Debug, Deserialize)]
pub struct Work {
    /// Milliseconds of work inside the transaction, to hold requests in flight.
    #[serde(default)]
    pub work_ms: u64,
}

/// Opens the pool. Two instances (a rolling restart) may share one SQLite file: WAL mode, and a
/// busy timeout under which writers wait for each other.
pub async fn connect(database_url: &str) -> Result<SqlitePool, sqlx::Error> {
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
    let options = SqliteConnectOptions::from_str(database_url)?
        .create_if_missing(true)
        .busy_timeout(Duration::from_secs(5));
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await?;
    // WAL is a property of the file, set once. Not through the connect options: those would set
    // it on every new connection, which needs an exclusive lock that the busy timeout does not
    // wait for, and fails while the other instance is writing.
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&pool)
        .await?;
    if !mode.eq_ignore_ascii_case("wal") {
        sqlx::query("PRAGMA journal_mode = WAL")
            .execute(&pool)
            .await?;
    }
    migrate(&pool).await?;
    Ok(pool)
}

async fn migrate(pool: &SqlitePool) -> Result<(), sqlx::Error> {
    sqlx::query("CREATE TABLE IF NOT EXISTS items (id TEXT PRIMARY KEY, body TEXT NOT NULL)")
        .execute(pool)
        .await?;
    Ok(())
}

/// Writes one row in a transaction; 201 only once it is committed.
#[graceful::tracked]
pub async fn create(
    State(pool): State<SqlitePool>,
    Query(work): Query<Work>,
    Json(item): Json<NewItem>,
) -> Result<StatusCode, (StatusCode, String)> {
    // SQLite can answer SQLITE_BUSY without waiting when another process on the same file is
    // mid-checkpoint; the transaction did not commit, so trying it again is safe.
    const ATTEMPTS: u32 = 3;
    for attempt in 1..=ATTEMPTS {
        match insert(&pool, &item, work.work_ms).await {
            Err(error) if is_busy(&error) && attempt < ATTEMPTS => {
                tracing::warn!(%error, attempt, "database busy, trying the transaction again");
            }
            result => return result.map(|()| StatusCode::CREATED).map_err(internal),
        }
    }
    unreachable!("the last attempt returns")
}

async fn insert(pool: &SqlitePool, item: &NewItem, work_ms: u64) -> Result<(), sqlx::Error> {
    // IMMEDIATE takes the write lock up front, waiting under the busy timeout; a deferred
    // transaction upgrading from read to write would fail at once if another instance on the
    // same file committed in between (SQLITE_BUSY_SNAPSHOT).
    let mut transaction = pool.begin_with("BEGIN IMMEDIATE").await?;
    sqlx::query("INSERT INTO items (id, body) VALUES (?, ?)")
        .bind(&item.id)
        .bind(&item.body)
        .execute(&mut *transaction)
        .await?;
    if work_ms > 0 {
        tokio::time::sleep(Duration::from_millis(work_ms)).await;
    }
    transaction.commit().await
}

/// SQLITE_BUSY (5), in any of its extended forms.
fn is_busy(error: &sqlx::Error) -> bool {
    let code = error.as_database_error().and_then(|error| error.code());
    code.and_then(|code| code.parse::<i32>().ok())
        .is_some_and(|code| code & 0xff == 5)
}

#[graceful::tracked]
pub async fn read(
    State(pool): State<SqlitePool>,
    Path(id): Path<String>,
) -> Result<Json<Item>, (StatusCode, String)> {
    sqlx::query_as::<_, Item>("SELECT id, body FROM items WHERE id = ?")
        .bind(id)
        .fetch_optional(&pool)
        .await
        .map_err(internal)?
        .map(Json)
        .ok_or((StatusCode::NOT_FOUND, "no such item".to_owned()))
}

/// How many items `GET /items` lists at most: `list_limit` in the settings file; -1, SQLite's
/// "no limit", until a file says otherwise.
static LIST_LIMIT: AtomicI64 = AtomicI64::new(-1);

/// Reads the file `SETTINGS_FILE` names, if any: one line, `list_limit = N`. Runs at start-up
/// and at every reload (SIGHUP, `systemctl reload`); on a file it cannot use, it fails and the
/// limit in force stays.
#[graceful::on_reload(name = "settings")]
pub async fn reload_settings() -> Result<(), String> {
    let Some(path) = std::env::var_os("SETTINGS_FILE") else {
        return Ok(());
    };
    let path = std::path::Path::new(&path);
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|error| format!("{}: {error}", path.display()))?;
    let limit = text
        .trim()
        .strip_prefix("list_limit")
        .and_then(|rest| rest.trim_start().strip_prefix('='))
        .and_then(|value| value.trim().parse::<u32>().ok())
        .ok_or_else(|| format!("{}: write `list_limit = N`", path.display()))?;
    LIST_LIMIT.store(i64::from(limit), Ordering::Relaxed);
    tracing::info!(limit, "settings: GET /items lists at most {limit} items");
    Ok(())
}

#[graceful::tracked]
pub async fn list(State(pool): State<SqlitePool>) -> Result<Json<Vec<Item>>, (StatusCode, String)> {
    let items = sqlx::query_as::<_, Item>("SELECT id, body FROM items ORDER BY id LIMIT ?")
        .bind(LIST_LIMIT.load(Ordering::Relaxed))
        .fetch_all(&pool)
        .await
        .map_err(internal)?;
    Ok(Json(items))
}

/// Never answers: shows what the report says about a request stuck at the drain timeout.
#[graceful::tracked]
pub async fn stuck() -> StatusCode {
    tracing::info!("stuck request entered");
    std::future::pending::<()>().await;
    StatusCode::OK
}

fn internal(error: sqlx::Error) -> (StatusCode, String) {
    tracing::error!(%error, "database error");
    (StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
}
