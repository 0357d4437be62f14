//! `cargo run --example worker_rabbitmq`: a RabbitMQ queue worker (lapin) whose jobs write to
//! PostgreSQL (sqlx), made to stop without losing or repeating a message. Each message's effect
//! is a row keyed by its message id, committed before the message is acked. At the first signal
//! the worker cancels its consumer and returns the deliveries it had not started; at the drain's
//! deadline it rolls back the jobs still running and nacks them with requeue; after the drain a
//! hook closes the channel, the connection and the pool. Its consumer loop is an essential task:
//! when the broker connection fails, the service stops with exit 1.
//!
//! Settings: `AMQP_URL`, `DATABASE_URL` (exit 78 when either is not a URL), `WORKER` (a name),
//! `QUEUE` (default `jobs`), `PREFETCH` (default 8), `CONCURRENCY` (default 4), and
//! `GRACEFUL_*`. A message's body is its job's duration in milliseconds; its `message_id` is its
//! key. Brokers for a try, each private under /var/lib:
//!
//! ```sh
//! export AMQP_URL=$(scripts/rabbitmq start graceful-mq 5672 | tail -n 1)
//! export DATABASE_URL=$(scripts/postgres start graceful-pg 5432 | tail -n 1)
//! cargo run --example worker_rabbitmq
//! ```

mod job;

use std::sync::Arc;

use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicCancelOptions, BasicRejectOptions};
use lapin::{Channel, Consumer};
use sqlx::PgPool;
use tokio::sync::{mpsc, Semaphore};

#[graceful::main(drain_timeout = "10s", abandon_timeout = "1s")]
async fn main() -> Result<(), String> {
    let config = match job::Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            // A setting no restart can fix: EX_CONFIG, so a supervisor does not loop on it.
            graceful::shutdown_with(78, error);
            return Ok(());
        }
    };
    let pool = job::connect_database(&config)
        .await
        .map_err(|error| format!("DATABASE_URL: cannot connect or set up: {error}"))?;
    let closing = pool.clone();
    graceful::register_hook(20, "close-database-pool", move || async move {
        closing.close().await;
    });
    let (connection, channel, consumer) = job::connect_broker(&config)
        .await
        .map_err(|error| format!("AMQP_URL: cannot connect or consume: {error}"))?;
    // Runs after the drain, once every job has acked or nacked: closing the channel earlier
    // would requeue work in progress. Whatever a job aborted at the deadline left unacked, the
    // broker requeues at this close, not at a heartbeat timeout.
    let closing = channel.clone();
    graceful::register_hook(10, "close-amqp", move || async move {
        let channel_closed = closing.close(200, "worker stopping".into()).await;
        let connection_closed = connection.close(200, "worker stopping".into()).await;
        channel_closed.and(connection_closed)
    });

    let worker = Worker {
        name: config.worker.clone(),
        pool,
        channel,
        slots: Arc::new(Semaphore::new(config.concurrency)),
    };
    println!(
        "{}: consuming {} (prefetch {}, concurrency {})",
        config.worker, config.queue, config.prefetch, config.concurrency
    );
    graceful::spawn_essential("consumer", consume(worker, consumer));
    graceful::ready();
    graceful::shutdown_started().await;
    Ok(())
}

struct Worker {
    name: String,
    pool: PgPool,
    channel: Channel,
    slots: Arc<Semaphore>,
}

/// Takes deliveries until the first signal, each into a job once a slot is free. Returns `Err`
/// when the broker connection fails, or a job finds the database gone: the service cannot run
/// without either.
async fn consume(worker: Worker, mut consumer: Consumer) -> Result<(), String> {
    let quiet = graceful::shutdown_started();
    tokio::pin!(quiet);
    let deadline = graceful::deadline_token();
    let (failures, mut failed) = mpsc::unbounded_channel::<String>();
    let mut unstarted = Vec::new();
    loop {
        let delivery = tokio::select! {
            biased;
            _ = &mut quiet => break,
            Some(error) = failed.recv() => return Err(error),
            next = consumer.next() => match next {
                Some(Ok(delivery)) => delivery,
                Some(Err(error)) => return Err(format!("the broker connection failed: {error}")),
                None => return Err("the broker cancelled the consumer".to_owned()),
            },
        };
        let slot = tokio::select! {
            biased;
            _ = &mut quiet => {
                unstarted.push(delivery);
                break;
            }
            Some(error) = failed.recv() => return Err(error),
            slot = worker.slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
        };
        // Counted from here, so the drain waits for the job and the report can name it.
        let in_flight = graceful::track("job");
        let (pool, name, deadline, failures) = (
            worker.pool.clone(),
            worker.name.clone(),
            deadline.clone(),
            failures.clone(),
        );
        tokio::spawn(async move {
            let outcome = job::run(&pool, &name, delivery, deadline.cancelled_owned()).await;
            if let job::Outcome::Failed(error) | job::Outcome::AckFailed(error) = outcome {
                let _ = failures.send(error);
            }
            drop((slot, in_flight));
        });
    }

    // Quiet: take no more. What the broker already sent and no job has started goes back to
    // the queue now, where the other worker takes it, rather than when the channel closes.
    let tag = consumer.tag();
    worker
        .channel
        .basic_cancel(tag, BasicCancelOptions::default())
        .await
        .map_err(|error| format!("basic.cancel: {error}"))?;
    // After cancel-ok the stream ends, once it has yielded what arrived before it.
    while let Some(next) = consumer.next().await {
        match next {
            Ok(delivery) => unstarted.push(delivery),
            Err(error) => return Err(format!("the broker connection failed: {error}")),
        }
    }
    let returned = unstarted.len();
    for delivery in unstarted {
        give_back(&worker.name, delivery).await;
    }
    println!(
        "{}: consumer cancelled, {returned} unstarted deliveries returned",
        worker.name
    );
    Ok(())
}

/// Puts a delivery that never started back in the queue, at the front.
async fn give_back(worker: &str, delivery: Delivery) {
    let id = delivery
        .properties
        .message_id()
        .as_ref()
        .map_or_else(|| delivery.delivery_tag.to_string(), |id| id.to_string());
    match delivery.reject(BasicRejectOptions { requeue: true }).await {
        Ok(_) => println!("{worker}: returned {id} unstarted"),
        // The channel is gone: the broker requeues it anyway.
        Err(error) => println!("{worker}: could not return {id}: {error}"),
    }
}
