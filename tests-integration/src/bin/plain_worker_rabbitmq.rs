//! The contrast of tests/worker_rabbitmq.rs: examples/worker_rabbitmq's consumer under a plain
//! `#[tokio::main]`, with the same jobs (its `job.rs`, the same commit-then-ack) and the same
//! prefetch and slots, but no shutdown handling: SIGTERM kills it where it stands.

#[path = "../../../examples/worker_rabbitmq/job.rs"]
mod job;

use std::sync::Arc;

use futures_util::StreamExt;
use tokio::sync::Semaphore;

#[tokio::main]
async fn main() {
    let config = job::Config::from_env().unwrap_or_else(|error| panic!("{error}"));
    let pool = job::connect_database(&config).await.expect("DATABASE_URL");
    let (_connection, _channel, mut consumer) =
        job::connect_broker(&config).await.expect("AMQP_URL");
    let slots = Arc::new(Semaphore::new(config.concurrency));
    println!(
        "{}: consuming {} (prefetch {}, concurrency {})",
        config.worker, config.queue, config.prefetch, config.concurrency
    );
    while let Some(delivery) = consumer.next().await {
        let delivery = delivery.expect("the broker connection failed");
        let slot = slots.clone().acquire_owned().await.expect("never closed");
        let (pool, name) = (pool.clone(), config.worker.clone());
        tokio::spawn(async move {
            if let job::Outcome::Failed(error) | job::Outcome::AckFailed(error) =
                job::run(&pool, &name, delivery, std::future::pending()).await
            {
                eprintln!("{name}: {error}");
                std::process::exit(1);
            }
            drop(slot);
        });
    }
}
