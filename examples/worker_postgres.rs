//! `DATABASE_URL=postgres://.. cargo run --example worker_postgres`: a job worker on a PostgreSQL
//! table that stops without losing a job, doubling one, or leaving one leased. It stops leasing
//! at the first signal, finishes the jobs it holds during the drain, and at the drain's deadline
//! hands the unfinished ones back at once rather than leave them leased until the lease expires.
//!
//! Environment: `DATABASE_URL` (required), `WORKER` (its name in the lease log, default
//! `worker-PID`), `CONCURRENCY` (jobs at once, default 8), `LEASE_SECONDS` (default 60: longer
//! than the longest job), `POLL_MS` (the wait when the queue is empty, default 100), and
//! `GRACEFUL_*` (see the README). `IGNORE_DEADLINE=1` makes jobs ignore the deadline token: it
//! exists only for the test that shows what that costs (leases held until they expire).
//!
//! Enqueue work with `INSERT INTO jobs (duration_ms) VALUES (1500)`; it runs once the worker has
//! created its schema.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use graceful::CancellationToken;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Idempotent, so that every worker may run it at start-up. `effects` has one row per
/// application of a job's effect and no unique constraint: a job applied twice shows as two rows.
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

/// One short committed statement: up to $3 available jobs (queued, and never leased or their
/// lease expired), each with a fresh token, logged in `leases`. SKIP LOCKED lets workers lease
/// side by side without waiting on each other's rows.
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

/// The job's completion, guarded by its lease: no row when another worker has taken it over.
const COMPLETE: &str = "
    UPDATE jobs
       SET state = 'done', done_by = $3, done_at = now(), lease_token = NULL, leased_until = NULL
     WHERE id = $1 AND lease_token = $2";

const EFFECT: &str = "INSERT INTO effects (job_id, worker) VALUES ($1, $2)";

/// Puts the job back: available to any worker at once, its hand-back counted.
const HAND_BACK: &str = "
    UPDATE jobs
       SET lease_token = NULL, leased_by = NULL, leased_until = NULL, handed_back = handed_back + 1
     WHERE id = $1 AND lease_token = $2";

/// How long a database call may wait for a connection: a dead server stops the worker (exit 1)
/// after this long rather than leave it hanging.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// How long start-up keeps trying to connect: a worker starting on a busy node (or beside a
/// database that is still starting) may need more than one `ACQUIRE_TIMEOUT`.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(sqlx::FromRow)]
struct Job {
    id: i64,
    duration_ms: i32,
    lease_token: String,
}

struct Config {
    database: PgConnectOptions,
    worker: String,
    concurrency: usize,
    lease_seconds: f64,
    poll: Duration,
    ignore_deadline: bool,
}

/// What every job task shares.
struct Queue {
    pool: PgPool,
    worker: String,
    deadline: CancellationToken,
    ignore_deadline: bool,
}

type StartupError = Box<dyn std::error::Error + Send + Sync>;

/// The pool, once a first connection is made, trying again until `STARTUP_TIMEOUT`.
async fn connect(config: &Config) -> Result<PgPool, StartupError> {
    let started = std::time::Instant::now();
    loop {
        let error = match PgPoolOptions::new()
            .max_connections(u32::try_from(config.concurrency + 1).unwrap_or(u32::MAX))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(config.database.clone())
            .await
        {
            Ok(pool) => return Ok(pool),
            Err(error) => error,
        };
        if started.elapsed() >= STARTUP_TIMEOUT {
            return Err(format!("DATABASE_URL: cannot connect: {error}").into());
        }
        eprintln!("cannot connect to the database yet ({error}); trying again");
    }
}

#[graceful::main(drain_timeout = "20s")]
async fn main() -> Result<(), StartupError> {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(reason) => {
            graceful::shutdown_with(78, reason); // EX_CONFIG, as graceful's own settings
            return Ok(());
        }
    };
    let pool = connect(&config).await?;
    create_schema(&pool).await?;

    // The pool is made here, so its hook is registered here: it closes after the drain.
    let closing = pool.clone();
    graceful::register_hook(10, "close-database-pool", move || async move {
        closing.close().await;
    });

    let queue = Arc::new(Queue {
        pool,
        worker: config.worker.clone(),
        deadline: graceful::deadline_token(),
        ignore_deadline: config.ignore_deadline,
    });
    eprintln!(
        "worker {} ready: concurrency {}, lease {}s",
        config.worker, config.concurrency, config.lease_seconds
    );
    graceful::ready();
    // Its error, or its panic, stops the service: exit 1, the report naming it.
    graceful::spawn_essential("consumer", consume(queue, config));
    graceful::shutdown_started().await;
    Ok(())
}

/// Leases jobs while there are free slots, until the first signal; then returns, and the drain
/// waits for the jobs it started.
async fn consume(queue: Arc<Queue>, config: Config) -> Result<(), String> {
    let slots = Arc::new(Semaphore::new(config.concurrency));
    let mut stop = std::pin::pin!(graceful::shutdown_started());
    loop {
        let first = tokio::select! {
            _ = &mut stop => return Ok(()),
            permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
        };
        // Every free slot at once, in one lease.
        let mut permits = vec![first];
        while let Ok(permit) = slots.clone().try_acquire_owned() {
            permits.push(permit);
        }
        if !announce_lease() {
            return Ok(());
        }
        // Not raced against the signal: dropped half-way, a committed lease would have no one
        // to run it. Jobs leased as the signal comes are run in the drain.
        let jobs: Vec<Job> = sqlx::query_as(LEASE)
            .bind(&queue.worker)
            .bind(config.lease_seconds)
            .bind(i64::try_from(permits.len()).unwrap_or(i64::MAX))
            .fetch_all(&queue.pool)
            .await
            .map_err(|error| format!("leasing jobs: {error}"))?;
        let drained = jobs.len() < permits.len();
        for (job, slot) in jobs.into_iter().zip(permits) {
            graceful::spawn(run(queue.clone(), job, slot));
        }
        if drained {
            tokio::select! {
                _ = &mut stop => return Ok(()),
                _ = tokio::time::sleep(config.poll) => {}
            }
        }
    }
}

/// Writes "leasing" on stderr unless shutdown has begun, and says whether it did. stderr's lock
/// is held across the check and the write: graceful marks shutdown as begun before it writes
/// "shutdown begun" on stderr, so a lease never follows that line in the log.
fn announce_lease() -> bool {
    use std::io::Write;
    let mut stderr = std::io::stderr().lock();
    if graceful::is_shutting_down() {
        return false;
    }
    let _ = writeln!(stderr, "leasing");
    true
}

/// One job, in a task counted in flight; its slot is freed when it returns.
async fn run(queue: Arc<Queue>, job: Job, _slot: OwnedSemaphorePermit) {
    let outcome = queue.work_then_complete(&job).await;
    if let Err(error) = outcome {
        eprintln!("job {}: {error}", job.id);
    }
}

impl Queue {
    async fn work_then_complete(&self, job: &Job) -> Result<(), sqlx::Error> {
        // The job's work: a sleep of its length stands in for it.
        let work = tokio::time::sleep(Duration::from_millis(job.duration_ms.max(0) as u64));
        if self.ignore_deadline {
            work.await;
        } else {
            tokio::select! {
                _ = work => {}
                _ = self.deadline.cancelled() => return self.hand_back(job).await,
            }
        }
        self.complete(job).await
    }

    /// The effect and the completion in one transaction, guarded by the lease: a job whose lease
    /// was taken over is rolled back, never applied twice.
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

    /// At the deadline: the job is available to another worker at once.
    async fn hand_back(&self, job: &Job) -> Result<(), sqlx::Error> {
        sqlx::query(HAND_BACK)
            .bind(job.id)
            .bind(&job.lease_token)
            .execute(&self.pool)
            .await?;
        eprintln!("job {}: handed back", job.id);
        Ok(())
    }
}

async fn create_schema(pool: &PgPool) -> Result<(), sqlx::Error> {
    let mut transaction = pool.begin().await?;
    // CREATE TABLE IF NOT EXISTS is not safe against itself: two workers starting together
    // could both try. A transaction-scoped advisory lock makes them take turns.
    sqlx::query("SELECT pg_advisory_xact_lock(7262019)")
        .execute(&mut *transaction)
        .await?;
    sqlx::raw_sql(SCHEMA).execute(&mut *transaction).await?;
    transaction.commit().await
}

impl Config {
    /// Reads the environment; a bad value is named in the error, for exit code 78.
    fn from_env() -> Result<Config, String> {
        let url = std::env::var("DATABASE_URL")
            .map_err(|_| "DATABASE_URL is not set: give a postgres:// URL".to_owned())?;
        // sqlx takes any scheme: one that is not PostgreSQL's is a mistake worth naming.
        let database = Some(&url)
            .filter(|url| url.starts_with("postgres://") || url.starts_with("postgresql://"))
            .ok_or_else(|| "not postgres:// or postgresql://".to_owned())
            .and_then(|url| PgConnectOptions::from_str(url).map_err(|error| error.to_string()))
            .map_err(|error| format!("DATABASE_URL={url:?} is not a PostgreSQL URL: {error}"))?;
        let concurrency = setting("CONCURRENCY", 8_usize)?;
        let lease_seconds = setting("LEASE_SECONDS", 60.0_f64)?;
        if concurrency == 0 || !lease_seconds.is_finite() || lease_seconds <= 0.0 {
            return Err("CONCURRENCY and LEASE_SECONDS must be above 0".to_owned());
        }
        Ok(Config {
            database,
            worker: std::env::var("WORKER")
                .unwrap_or_else(|_| format!("worker-{}", std::process::id())),
            concurrency,
            lease_seconds,
            poll: Duration::from_millis(setting("POLL_MS", 100_u64)?),
            ignore_deadline: setting("IGNORE_DEADLINE", 0_u8)? == 1,
        })
    }
}

fn setting<T: FromStr>(name: &str, default: T) -> Result<T, String> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(value) => value
            .parse()
            .map_err(|_| format!("{name}={value:?} is not a valid value")),
    }
}
