//! The service's handlers: each one tracked, each write in one transaction.

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

pub async fn migrate(pool: &SqlitePool) -> Result<(), sqlx::Error> {
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
    let mut transaction = pool.begin().await.map_err(internal)?;
    sqlx::query("INSERT INTO items (id, body) VALUES (?, ?)")
        .bind(&item.id)
        .bind(&item.body)
        .execute(&mut *transaction)
        .await
        .map_err(internal)?;
    if work.work_ms > 0 {
        tokio::time::sleep(Duration::from_millis(work.work_ms)).await;
    }
    transaction.commit().await.map_err(internal)?;
    Ok(StatusCode::CREATED)
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

#[graceful::tracked]
pub async fn list(State(pool): State<SqlitePool>) -> Result<Json<Vec<Item>>, (StatusCode, String)> {
    let items = sqlx::query_as::<_, Item>("SELECT id, body FROM items ORDER BY id")
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
