//! The private PostgreSQL of tests/worker_postgres.rs, through scripts/postgres and destroyed on
//! drop (also when a test fails), and the test's own connection to it: queries, a producer that
//! enqueues at a steady rate, and bounded waits for a condition of the tables.

use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use tokio::sync::oneshot;

use graceful_tests_integration::free_port;
use graceful_tests_integration::require::require;

/// Its data, socket and log live in /var/lib/NAME: `$GRACEFUL_PG_NAME`, else graceful-pg-test.
/// Two runs on one machine (two worktrees) must not share a name: each destroys whatever its name
/// left behind before it starts, so the second would destroy the first one's live server.
fn name() -> String {
    std::env::var("GRACEFUL_PG_NAME").unwrap_or_else(|_| "graceful-pg-test".to_owned())
}
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/postgres");

pub struct Postgres {
    pub url: String,
    port: u16,
}

impl Postgres {
    /// A fresh server on a free loopback port, installing Debian's package when it is missing.
    /// `None` when this machine cannot run one and this is not CI (a loud skip).
    pub fn start() -> Option<Postgres> {
        let root = std::fs::metadata("/proc/self").is_ok_and(|own| own.uid() == 0);
        let sudo = graceful_tests_integration::require::program_on_path("sudo").is_some();
        let need = "root or sudo, for scripts/postgres (Debian's postgresql, run as postgres)";
        if !require(need, root || sudo) {
            return None;
        }
        // Whatever a killed run left behind: a server from a fresh initdb, for each test.
        script(&["destroy", &name()]);
        let port = free_port();
        let url = script(&["start", &name(), &port.to_string()]);
        Some(Postgres { url, port })
    }

    /// `scripts/postgres stop` with `mode` (fast: connections are cut at once).
    pub fn stop(&self, mode: &str) {
        script(&["stop", &name(), mode]);
    }

    /// Starts it again on the same data and port.
    pub fn start_again(&self) {
        script(&["start", &name(), &self.port.to_string()]);
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Err(error) = Command::new("bash")
            .args([SCRIPT, "destroy", &name()])
            .output()
        {
            eprintln!("scripts/postgres destroy {}: {error}", name());
        }
    }
}

/// Runs scripts/postgres with `args` and returns the last line of its stdout.
fn script(args: &[&str]) -> String {
    let output = Command::new("bash")
        .arg(SCRIPT)
        .args(args)
        .output()
        .expect("run scripts/postgres");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "scripts/postgres {args:?}: {}\n{stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout.lines().last().unwrap_or_default().trim().to_owned()
}

/// The test's side of the database, for a test that is not async itself: its runtime also runs
/// the producer while the test waits on workers.
pub struct Db {
    runtime: tokio::runtime::Runtime,
    pool: PgPool,
}

/// The producer running on the `Db`'s runtime.
pub struct Producer {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<u64>,
}

impl Db {
    pub fn connect(url: &str) -> Db {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let pool = runtime
            .block_on(
                PgPoolOptions::new()
                    .max_connections(4)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect(url),
            )
            .unwrap_or_else(|error| panic!("connect to {url}: {error}"));
        Db { runtime, pool }
    }

    pub fn execute(&self, sql: &str) {
        self.runtime
            .block_on(sqlx::query(sql).execute(&self.pool))
            .unwrap_or_else(|error| panic!("{sql}: {error}"));
    }

    /// A query of one bigint.
    pub fn count(&self, sql: &str) -> i64 {
        self.runtime
            .block_on(sqlx::query_scalar(sql).fetch_one(&self.pool))
            .unwrap_or_else(|error| panic!("{sql}: {error}"))
    }

    /// A query of one bigint, given `value` as $1.
    pub fn count_with<T>(&self, sql: &str, value: T) -> i64
    where
        T: for<'q> sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send,
    {
        self.runtime
            .block_on(sqlx::query_scalar(sql).bind(value).fetch_one(&self.pool))
            .unwrap_or_else(|error| panic!("{sql}: {error}"))
    }

    /// A query of one float8.
    pub fn seconds(&self, sql: &str) -> f64 {
        self.runtime
            .block_on(sqlx::query_scalar(sql).fetch_one(&self.pool))
            .unwrap_or_else(|error| panic!("{sql}: {error}"))
    }

    /// A query of one bigint column.
    pub fn ids(&self, sql: &str) -> Vec<i64> {
        self.runtime
            .block_on(sqlx::query_scalar(sql).fetch_all(&self.pool))
            .unwrap_or_else(|error| panic!("{sql}: {error}"))
    }

    pub fn rows<T>(&self, sql: &str) -> Vec<T>
    where
        T: for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin,
    {
        self.runtime
            .block_on(sqlx::query_as(sql).fetch_all(&self.pool))
            .unwrap_or_else(|error| panic!("{sql}: {error}"))
    }

    /// Polls `condition` until it holds; fails the test after `ceiling`, which only a broken
    /// worker reaches.
    pub fn wait_until(&self, what: &str, ceiling: Duration, mut condition: impl FnMut() -> bool) {
        let began = Instant::now();
        while !condition() {
            assert!(began.elapsed() < ceiling, "not within {ceiling:?}: {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Enqueues one job every `every`, with the lengths `lengths` gives, until stopped.
    pub fn produce(
        &self,
        every: Duration,
        mut lengths: impl Iterator<Item = i32> + Send + 'static,
    ) -> Producer {
        let pool = self.pool.clone();
        let (stop, mut stopped) = oneshot::channel();
        let task = self.runtime.spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut produced = 0;
            loop {
                tokio::select! {
                    _ = &mut stopped => return produced,
                    _ = tick.tick() => {}
                }
                sqlx::query("INSERT INTO jobs (duration_ms) VALUES ($1)")
                    .bind(lengths.next().unwrap())
                    .execute(&pool)
                    .await
                    .expect("enqueue a job");
                produced += 1;
            }
        });
        Producer { stop, task }
    }

    /// Stops the producer and returns how many jobs it enqueued.
    pub fn stop_producing(&self, producer: Producer) -> u64 {
        let _ = producer.stop.send(());
        self.runtime
            .block_on(producer.task)
            .expect("the producer failed")
    }
}
