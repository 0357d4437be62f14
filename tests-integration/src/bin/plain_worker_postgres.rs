//! examples/worker_postgres.rs on plain `#[tokio::main]`, without graceful: the same schema, the
//! same statements and the same leasing loop, for the contrast (SIGTERM kills it with its jobs
//! leased) and for the cost bench (benches/worker_postgres.sh). Keep the SQL and the loop in step
//! with the example; only the graceful calls differ. Environment as the example's, without
//! `IGNORE_DEADLINE`.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS jobs (
        id           bigserial PRIMARY KEY,
        duration_ms  integer NOT NULL,
        state        text NOT NULL DEFAULT 'queued', -- queued, then done
        lease_token  text,
        leased_by    text,
        leased_until timestamptz,
        handed_back  integer NOT NULL DEFAULT 0,
        done_by      text,
        done_at      timestamptz
    );
    CREATE INDEX IF NOT EXISTS jobs_queued ON jobs (id) WHERE state = 'queued';
    CREATE TABLE IF NOT EXISTS effects (
        job_id bigint NOT NULL,
        worker text NOT NULL,
        at     timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE IF NOT EXISTS leases (
        job_id      bigint NOT NULL,
        worker      text NOT NULL,
        lease_token text NOT NULL,
        at          timestamptz NOT NULL DEFAULT now()
    );
";

const LEASE: &str = "
    WITH leased AS (
        UPDATE jobs
           SET lease_token = gen_random_uuid()::text,
               leased_by = $1,
               leased_until = now() + make_interval(secs => $2)
         WHERE id IN (SELECT id FROM jobs
                       WHERE state = 'queued' AND (lease_token IS NULL OR leased_until < now())
                       ORDER BY id
                       FOR UPDATE SKIP LOCKED
                       LIMIT $3)
        RETURNING id, duration_ms, lease_token
    ), logged AS (
        INSERT INTO leases (job_id, worker, lease_token) SELECT id, $1, lease_token FROM leased
    )
    SELECT id, duration_ms, lease_token FROM leased ORDER BY id";

const COMPLETE: &str = "
    UPDATE jobs
       SET state = 'done', done_by = $3, done_at = now(), lease_token = NULL, leased_until = NULL
     WHERE id = $1 AND lease_token = $2";

const EFFECT: &str = "INSERT INTO effects (job_id, worker) VALUES ($1, $2)";

const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(sqlx::FromRow)]
struct Job {
    id: i64,
    duration_ms: i32,
    lease_token: String,
}

struct Queue {
    pool: PgPool,
    worker: String,
}

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let url = std::env::var("DATABASE_URL").map_err(|_| "DATABASE_URL is not set")?;
    let database = PgConnectOptions::from_str(&url)?;
    let worker =
        std::env::var("WORKER").unwrap_or_else(|_| format!("plain-{}", std::process::id()));
    let concurrency: usize = setting("CONCURRENCY", 8)?;
    let lease_seconds: f64 = setting("LEASE_SECONDS", 60.0)?;
    let poll = Duration::from_millis(setting("POLL_MS", 100)?);
    let pool = PgPoolOptions::new()
        .max_connections(u32::try_from(concurrency + 1)?)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(database)
        .await?;
    create_schema(&pool).await?;
    let queue = Arc::new(Queue { pool, worker });
    eprintln!(
        "worker {} ready: concurrency {concurrency}, lease {lease_seconds}s",
        queue.worker
    );

    // A task of its own, as the example's consumer is: the main thread only waits.
    tokio::spawn(consume(queue, concurrency, lease_seconds, poll)).await?
}

async fn consume(
    queue: Arc<Queue>,
    concurrency: usize,
    lease_seconds: f64,
    poll: Duration,
) -> Result<(), Error> {
    let slots = Arc::new(Semaphore::new(concurrency));
    loop {
        let first = slots.clone().acquire_owned().await?;
        let mut permits = vec![first];
        while let Ok(permit) = slots.clone().try_acquire_owned() {
            permits.push(permit);
        }
        announce_lease();
        let jobs: Vec<Job> = sqlx::query_as(LEASE)
            .bind(&queue.worker)
            .bind(lease_seconds)
            .bind(i64::try_from(permits.len())?)
            .fetch_all(&queue.pool)
            .await?;
        let drained = jobs.len() < permits.len();
        for (job, slot) in jobs.into_iter().zip(permits) {
            tokio::spawn(run(queue.clone(), job, slot));
        }
        if drained {
            tokio::time::sleep(poll).await;
        }
    }
}

/// As the example's: one write under stderr's lock.
fn announce_lease() {
    use std::io::Write;
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "leasing");
}

async fn run(queue: Arc<Queue>, job: Job, _slot: OwnedSemaphorePermit) {
    if let Err(error) = queue.work_then_complete(&job).await {
        eprintln!("job {}: {error}", job.id);
    }
}

impl Queue {
    async fn work_then_complete(&self, job: &Job) -> Result<(), sqlx::Error> {
        tokio::time::sleep(Duration::from_millis(job.duration_ms.max(0) as u64)).await;
        self.complete(job).await
    }

    async fn complete(&self, job: &Job) -> Result<(), sqlx::Error> {
        let mut transaction = self.pool.begin().await?;
        let completed = sqlx::query(COMPLETE)
            .bind(job.id)
            .bind(&job.lease_token)
            .bind(&self.worker)
            .execute(&mut *transaction)
            .await?;
        if completed.rows_affected() == 0 {
            transaction.rollback().await?;
            eprintln!("job {}: lease lost to another worker, not applied", job.id);
            return Ok(());
        }
        sqlx::query(EFFECT)
            .bind(job.id)
            .bind(&self.worker)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await
    }
}

async fn create_schema(pool: &PgPool) -> Result<(), sqlx::Error> {
    let mut transaction = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(7262019)")
        .execute(&mut *transaction)
        .await?;
    sqlx::raw_sql(SCHEMA).execute(&mut *transaction).await?;
    transaction.commit().await
}

fn setting<T: FromStr>(name: &str, default: T) -> Result<T, String> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(value) => value
            .parse()
            .map_err(|_| format!("{name}={value:?} is not a valid value")),
    }
}
