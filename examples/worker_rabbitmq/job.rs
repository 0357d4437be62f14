//! What the worker does with one message, and how it connects: shared word for word by the
//! example and its plain-tokio contrast (tests-integration/src/bin/plain_worker_rabbitmq.rs), so
//! that both run the same code between an effect's commit and its ack.

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions, BasicRejectOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::uri::AMQPUri;
use lapin::{Channel, Connection, ConnectionProperties, Consumer};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

/// The worker's settings, from the environment.
pub struct Config {
    pub amqp: AMQPUri,
    pub database: PgConnectOptions,
    /// Names this process in its output and in each effect row.
    pub worker: String,
    pub queue: String,
    /// Deliveries the broker may hand this worker before it acks any (`basic.qos`).
    pub prefetch: u16,
    /// Jobs run at once; deliveries beyond it wait, unstarted, for a slot.
    pub concurrency: usize,
}

impl Config {
    /// Reads `AMQP_URL`, `DATABASE_URL`, `WORKER`, `QUEUE`, `PREFETCH` and `CONCURRENCY`. The
    /// error names the variable and its value.
    pub fn from_env() -> Result<Config, String> {
        let amqp_url = var("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f");
        let amqp = AMQPUri::from_str(&amqp_url)
            .map_err(|error| format!("AMQP_URL={amqp_url:?} is not an AMQP URL: {error}"))?;
        let database_url = var(
            "DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/postgres",
        );
        let database = PgConnectOptions::from_str(&database_url).map_err(|error| {
            format!("DATABASE_URL={database_url:?} is not a PostgreSQL URL: {error}")
        })?;
        let worker = var("WORKER", &format!("worker-{}", std::process::id()));
        let queue = var("QUEUE", "jobs");
        let prefetch = number("PREFETCH", 8, 1, u16::MAX as usize)? as u16;
        let concurrency = number("CONCURRENCY", 4, 1, usize::from(prefetch))?;
        Ok(Config {
            amqp,
            database,
            worker,
            queue,
            prefetch,
            concurrency,
        })
    }
}

fn var(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn number(name: &str, default: usize, min: usize, max: usize) -> Result<usize, String> {
    let Ok(text) = std::env::var(name) else {
        return Ok(default);
    };
    match text.parse::<usize>() {
        Ok(value) if (min..=max).contains(&value) => Ok(value),
        _ => Err(format!(
            "{name}={text:?} is not a whole number from {min} to {max}"
        )),
    }
}

/// The pool, and the effects table. The table has no unique constraint on `message_id` on
/// purpose: a message applied twice shows as two rows, to be counted, not hidden.
pub async fn connect_database(config: &Config) -> Result<PgPool, sqlx::Error> {
    let pool = PgPoolOptions::new()
        .max_connections(config.concurrency as u32 + 1)
        // A database that has gone away fails a job within this, instead of holding it.
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(config.database.clone())
        .await?;
    let mut tx = pool.begin().await?;
    // Two workers starting together would otherwise race on CREATE TABLE IF NOT EXISTS.
    sqlx::query("SELECT pg_advisory_xact_lock(4242)")
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS effects (
            id bigserial PRIMARY KEY,
            message_id text NOT NULL,
            worker text NOT NULL,
            redelivered boolean NOT NULL,
            committed_at timestamptz NOT NULL DEFAULT clock_timestamp()
        )",
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query("CREATE INDEX IF NOT EXISTS effects_message_id ON effects (message_id)")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(pool)
}

/// The connection, its channel with the prefetch limit, and the consumer on the (durable) queue.
pub async fn connect_broker(config: &Config) -> lapin::Result<(Connection, Channel, Consumer)> {
    let connection =
        Connection::connect_uri(config.amqp.clone(), ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    channel
        .queue_declare(
            config.queue.as_str().into(),
            QueueDeclareOptions::durable(),
            FieldTable::default(),
        )
        .await?;
    channel
        .basic_qos(config.prefetch, BasicQosOptions::default())
        .await?;
    let consumer = channel
        .basic_consume(
            config.queue.as_str().into(),
            config.worker.as_str().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok((connection, channel, consumer))
}

/// How a job ended.
pub enum Outcome {
    /// Its effect committed and the message was acked.
    Done,
    /// Cut at the deadline: rolled back and nacked with requeue.
    HandedBack,
    /// Not a job (no message id, or a body that is not a number of milliseconds): dropped.
    Malformed,
    /// Its effect committed but the ack did not go out: the broker will deliver it again.
    AckFailed(String),
    /// The database failed it; nacked with requeue.
    Failed(String),
}

/// Runs one message's job: its effect, a row keyed by the message id, written in a transaction
/// that stays open while the job works (the body gives the work's duration in milliseconds),
/// committed, and then acked. When `deadline` resolves before the commit, the transaction is
/// rolled back and the message nacked with requeue, so it is visible again at once.
pub async fn run(
    pool: &PgPool,
    worker: &str,
    delivery: Delivery,
    deadline: impl Future<Output = ()>,
) -> Outcome {
    let id = delivery
        .properties
        .message_id()
        .as_ref()
        .map(|id| id.to_string());
    let work = std::str::from_utf8(&delivery.data)
        .ok()
        .and_then(|body| body.trim().parse::<u64>().ok());
    let (Some(id), Some(work)) = (id, work) else {
        println!("{worker}: malformed delivery {}", delivery.delivery_tag);
        let _ = delivery.reject(BasicRejectOptions { requeue: false }).await;
        return Outcome::Malformed;
    };
    let again = if delivery.redelivered {
        " redelivered"
    } else {
        ""
    };
    println!("{worker}: start {id} {work}ms{again}");

    tokio::pin!(deadline);
    let mut tx = tokio::select! {
        biased;
        _ = &mut deadline => return hand_back(worker, &id, &delivery).await,
        tx = pool.begin() => match tx {
            Ok(tx) => tx,
            Err(error) => return fail(worker, &id, &delivery, error).await,
        },
    };
    let effect = async {
        sqlx::query("INSERT INTO effects (message_id, worker, redelivered) VALUES ($1, $2, $3)")
            .bind(&id)
            .bind(worker)
            .bind(delivery.redelivered)
            .execute(&mut *tx)
            .await?;
        tokio::time::sleep(Duration::from_millis(work)).await;
        Ok::<(), sqlx::Error>(())
    };
    let cut = tokio::select! {
        biased;
        _ = &mut deadline => true,
        result = effect => match result {
            Ok(()) => false,
            Err(error) => return fail(worker, &id, &delivery, error).await,
        },
    };
    if cut {
        // Explicitly, so the row is gone before the message is visible again.
        let _ = tx.rollback().await;
        return hand_back(worker, &id, &delivery).await;
    }
    if let Err(error) = tx.commit().await {
        return fail(worker, &id, &delivery, error).await;
    }
    // From the commit to this ack, a process that dies leaves an effect whose message the
    // broker will deliver again: the one window that at-least-once delivery cannot close.
    match delivery.ack(BasicAckOptions::default()).await {
        Ok(_) => {
            println!("{worker}: done {id}");
            Outcome::Done
        }
        Err(error) => {
            println!("{worker}: ack failed {id}: {error}");
            Outcome::AckFailed(format!("ack of {id} after its commit: {error}"))
        }
    }
}

async fn hand_back(worker: &str, id: &str, delivery: &Delivery) -> Outcome {
    match delivery
        .nack(BasicNackOptions {
            requeue: true,
            multiple: false,
        })
        .await
    {
        Ok(_) => println!("{worker}: handed back {id}"),
        Err(error) => println!("{worker}: could not hand back {id}: {error}"),
    }
    Outcome::HandedBack
}

async fn fail(worker: &str, id: &str, delivery: &Delivery, error: sqlx::Error) -> Outcome {
    println!("{worker}: failed {id}: {error}");
    let _ = delivery
        .nack(BasicNackOptions {
            requeue: true,
            multiple: false,
        })
        .await;
    Outcome::Failed(format!("job {id}: {error}"))
}
