//! Proof for examples/worker_rabbitmq against a real RabbitMQ and PostgreSQL (scripts/rabbitmq,
//! scripts/postgres, private to this test binary): two workers restarted in turn with SIGTERM
//! under a steady producer apply every message exactly once and leave the queue empty; the same
//! consumer on plain tokio, killed by SIGTERM, cuts its jobs and has them redelivered; the
//! consumer is essential, so an outage of the broker stops the worker with exit 1.
//! `WORKER_RESTARTS` (default 10) sets the restarts, and the signals of each contrast.

#[path = "worker_rabbitmq/harness.rs"]
mod harness;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use graceful_tests_integration::FIRST_FEW;
use harness::{queue_depth, Brokers, Events, Exit, Producer, Tally, Worker, END, PATIENCE};
use nix::sys::signal::Signal;
use sqlx::PgPool;

const GRACEFUL: &str = env!("CARGO_BIN_EXE_worker_rabbitmq");
const PLAIN: &str = env!("CARGO_BIN_EXE_plain_worker_rabbitmq");

/// The workers' drain: the longest jobs of each mix outlast it.
const DRAIN: &str = "2s";

/// Steady load: mostly short jobs, some of a second, a tenth longer than the drain.
const MIXED: &[(u64, u64, u64)] = &[(70, 20, 200), (20, 300, 1200), (10, 2500, 3500)];

/// A backlog a worker eats fast (so commits and acks come thick), with long jobs among it that
/// are in flight at any signal.
const BACKLOG: &[(u64, u64, u64)] = &[(90, 1, 10), (10, 200, 3000)];

fn restarts() -> usize {
    std::env::var("WORKER_RESTARTS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(10)
}

/// Each message's effect rows, from the database: every row, none merged.
async fn effects(pool: &PgPool, prefix: &str) -> BTreeMap<String, Vec<String>> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT message_id, worker FROM effects WHERE message_id LIKE $1 || '-%' ORDER BY id",
    )
    .bind(prefix)
    .fetch_all(pool)
    .await
    .expect("read the effects");
    let mut by_id: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (id, worker) in rows {
        by_id.entry(id).or_default().push(worker);
    }
    by_id
}

/// Messages applied twice (or more) and messages never applied, with the first few of each.
struct Count {
    messages: usize,
    applied: usize,
    twice: Vec<(String, Vec<String>)>,
    lost: Vec<String>,
    unknown: Vec<String>,
}

impl Count {
    fn of(published: &[String], effects: &BTreeMap<String, Vec<String>>) -> Count {
        let ids: BTreeSet<&String> = published.iter().collect();
        Count {
            messages: published.len(),
            applied: effects.values().map(Vec::len).sum(),
            twice: effects
                .iter()
                .filter(|(_, workers)| workers.len() > 1)
                .map(|(id, workers)| (id.clone(), workers.clone()))
                .collect(),
            lost: published
                .iter()
                .filter(|id| !effects.contains_key(*id))
                .cloned()
                .collect(),
            unknown: effects
                .keys()
                .filter(|id| !ids.contains(id))
                .cloned()
                .collect(),
        }
    }

    fn line(&self) -> String {
        format!(
            "{} messages, {} effect rows, twice {}, lost {}",
            self.messages,
            self.applied,
            self.twice.len(),
            self.lost.len()
        )
    }

    fn first_cases(&self) -> String {
        format!(
            "first twice: {:?}\nfirst lost: {:?}\nfirst unknown: {:?}",
            &self.twice[..self.twice.len().min(FIRST_FEW)],
            &self.lost[..self.lost.len().min(FIRST_FEW)],
            &self.unknown[..self.unknown.len().min(FIRST_FEW)]
        )
    }
}

/// The environment both kinds of worker get.
fn worker_env<'a>(
    brokers: &'a Brokers,
    queue: &'a str,
    prefetch: &'a str,
    concurrency: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("AMQP_URL", brokers.amqp_url.as_str()),
        ("DATABASE_URL", brokers.database_url.as_str()),
        ("QUEUE", queue),
        ("PREFETCH", prefetch),
        ("CONCURRENCY", concurrency),
        ("GRACEFUL_DRAIN_TIMEOUT", DRAIN),
        ("GRACEFUL_ABANDON_TIMEOUT", "1s"),
        ("GRACEFUL_REPORT", "json"),
    ]
}

/// Waits for the worker's `consuming` line; fails with its output if it exits first.
async fn started(events: &Events, worker: Worker) -> Worker {
    let run = worker.run;
    let mut exited = false;
    events
        .wait_for(&format!("{} consuming", worker.name), PATIENCE, |lines| {
            let mine = || lines.iter().filter(|line| line.run == run);
            exited = mine().any(|line| line.text == END);
            exited || mine().any(|line| line.text.contains(": consuming "))
        })
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    if exited {
        let exit = worker.wait_exit(PATIENCE).await;
        panic!(
            "{} exited {:?} before consuming:\n{}",
            exit.name, exit.code, exit.stderr
        );
    }
    worker
}

/// Waits until every message in `all` has a `done` line.
async fn all_done(events: &Events, what: &str, all: &BTreeSet<String>) {
    let mut left = all.clone();
    let mut read = 0;
    let waited = events
        .wait_for(what, Duration::from_secs(180), |lines| {
            for line in &lines[read..] {
                if let Some(id) = Tally::done_id(line) {
                    left.remove(id);
                }
            }
            read = lines.len();
            left.is_empty()
        })
        .await;
    if let Err(error) = waited {
        let first: Vec<_> = left.iter().take(FIRST_FEW).collect();
        panic!(
            "{error}: {} of {} left, first {first:?}",
            left.len(),
            all.len()
        );
    }
}

/// The drain outcome in a graceful report, and whether the exit was the clean 0 it must be.
fn graceful_exit(exit: &Exit, problems: &mut Vec<String>) -> String {
    let outcome = exit
        .report()
        .and_then(|report| report["drain"]["outcome"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "no report".to_owned());
    if exit.code != Some(0) || !matches!(outcome.as_str(), "drained" | "handed_back") {
        problems.push(format!(
            "{}: exit {:?}, drain {outcome}\n{}",
            exit.name, exit.code, exit.stderr
        ));
    }
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_workers_through_restarts_a_contrast_and_an_outage() {
    let brokers = tokio::task::spawn_blocking(Brokers::start)
        .await
        .expect("start the brokers");
    let pool = PgPool::connect(&brokers.database_url)
        .await
        .expect("the test connects to PostgreSQL");

    restarts_under_load(&brokers, &pool).await;
    signals_on_a_backlog(&brokers, &pool, Kind::Graceful).await;
    signals_on_a_backlog(&brokers, &pool, Kind::Plain).await;
    broker_outage(&brokers).await;

    pool.close().await;
    tokio::task::spawn_blocking(move || drop(brokers))
        .await
        .expect("destroy the brokers");
}

/// Two workers, restarted in turn with SIGTERM while a producer publishes at a steady rate.
async fn restarts_under_load(brokers: &Brokers, pool: &PgPool) {
    let began = Instant::now();
    let restarts = restarts();
    let queue = "restarts";
    let env = worker_env(brokers, queue, "6", "3");
    let events = Arc::new(Events::default());
    let producer = Producer::connect(&brokers.amqp_url, queue).await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let publishing = producer.steady("r", 5, MIXED, stopped);

    let mut runs = 0;
    let mut start = |letter: &str| {
        runs += 1;
        Worker::start(&events, GRACEFUL, runs, &format!("{letter}{runs}"), &env)
    };
    let mut workers = [None, None];
    for (slot, letter) in ["a", "b"].into_iter().enumerate() {
        workers[slot] = Some(started(&events, start(letter)).await);
    }

    let mut problems = Vec::new();
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let mut aimed = 0;
    let mut finished_elsewhere = 0;
    for restart in 0..restarts {
        let slot = restart % 2;
        let worker = workers[slot].take().expect("running");
        let run = worker.run;
        // Aim the signal at a job longer than what is left of the drain, so each restart has
        // something to hand back; any job in flight will do when none comes soon.
        let long = events
            .wait_for("a long job in flight", Duration::from_secs(10), |lines| {
                Tally::running_in(lines, run).values().any(|&ms| ms >= 2500)
            })
            .await;
        if long.is_ok() {
            aimed += 1;
        } else {
            events
                .wait_for("a job in flight", PATIENCE, |lines| {
                    !Tally::running_in(lines, run).is_empty()
                })
                .await
                .unwrap_or_else(|error| panic!("{}: {error}", worker.name));
        }
        worker.signal(Signal::SIGTERM);
        let exit = worker.wait_exit(PATIENCE).await;
        *outcomes
            .entry(graceful_exit(&exit, &mut problems))
            .or_default() += 1;
        let next = start(if slot == 0 { "a" } else { "b" });
        workers[slot] = Some(started(&events, next).await);
        // Spaced so that what this run handed back finishes in another before the next signal.
        let handed: BTreeSet<String> = events.with(|lines| {
            lines
                .iter()
                .filter(|line| line.run == run)
                .filter_map(Tally::handed_back_id)
                .map(str::to_owned)
                .collect()
        });
        all_done(&events, "handed-back jobs finished elsewhere", &handed).await;
        finished_elsewhere += handed.len();
    }

    stop.send(true).expect("the producer listens");
    let published = publishing.await.expect("the producer");
    let all: BTreeSet<String> = published.iter().cloned().collect();
    all_done(&events, "every message done", &all).await;
    for worker in workers.into_iter().flatten() {
        worker.signal(Signal::SIGTERM);
        let exit = worker.wait_exit(PATIENCE).await;
        *outcomes
            .entry(graceful_exit(&exit, &mut problems))
            .or_default() += 1;
    }

    let count = Count::of(&published, &effects(pool, "r").await);
    let tally = events.with(Tally::of);
    let depth = queue_depth(&brokers.amqp_url, queue).await;
    println!(
        "restarts: {restarts} SIGTERMs ({aimed} aimed at a long job), {}; done {}, \
         redelivered {} of {} deliveries started, returned unstarted {}, handed back {} \
         ({finished_elsewhere} then finished by another run); drain outcomes {outcomes:?}; \
         queue left {} ready, {} consumers; {:.1} s",
        count.line(),
        tally.done.len(),
        tally.started_redelivered,
        tally.started,
        tally.returned_unstarted,
        tally.handed_back,
        depth.0,
        depth.1,
        began.elapsed().as_secs_f64()
    );
    assert!(
        problems.is_empty(),
        "exits that were not clean:\n{}",
        problems.join("\n")
    );
    assert!(
        count.twice.is_empty() && count.lost.is_empty() && count.unknown.is_empty(),
        "{}\n{}",
        count.line(),
        count.first_cases()
    );
    assert_eq!(
        depth,
        (0, 0),
        "the queue must be empty, with no consumer left"
    );
    assert!(
        tally.failed.is_empty(),
        "jobs that failed: {:?}",
        &tally.failed[..tally.failed.len().min(FIRST_FEW)]
    );
    assert!(
        tally.cut.is_empty(),
        "jobs started and never ended: {:?}",
        tally.cut
    );
    assert!(
        aimed == 0 || finished_elsewhere > 0,
        "{aimed} signals landed on a long job, yet none was handed back and finished elsewhere"
    );
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Graceful,
    Plain,
}

/// One worker at a time on a backlog, each signalled with SIGTERM after a varying number of
/// jobs, then one last worker that finishes the queue. The same signals land on the graceful
/// example and on its plain-tokio contrast.
async fn signals_on_a_backlog(brokers: &Brokers, pool: &PgPool, kind: Kind) {
    let began = Instant::now();
    let signals = restarts();
    let (binary, prefix) = match kind {
        Kind::Graceful => (GRACEFUL, "g"),
        Kind::Plain => (PLAIN, "p"),
    };
    let queue = format!("backlog-{prefix}");
    let env = worker_env(brokers, &queue, "16", "8");
    let events = Arc::new(Events::default());
    let producer = Producer::connect(&brokers.amqp_url, &queue).await;
    let published = producer
        .publish_backlog(prefix, 40 * signals as u64 + 100, BACKLOG)
        .await;
    producer.close().await;

    let mut problems = Vec::new();
    let mut killed_runs = Vec::new();
    for run in 1..=signals {
        let worker = Worker::start(&events, binary, run, &format!("{prefix}{run}"), &env);
        let worker = started(&events, worker).await;
        // A different moment in each run: after 10 to 39 jobs have started.
        let after = 10 + (run * 7) % 30;
        events
            .wait_for(&format!("{after} jobs started"), PATIENCE, |lines| {
                Tally::started_in(lines, run) >= after
            })
            .await
            .unwrap_or_else(|error| panic!("{}: {error}", worker.name));
        worker.signal(Signal::SIGTERM);
        let exit = worker.wait_exit(PATIENCE).await;
        match kind {
            Kind::Graceful => {
                graceful_exit(&exit, &mut problems);
            }
            Kind::Plain => {
                if exit.signal != Some(Signal::SIGTERM as i32) {
                    problems.push(format!(
                        "{}: not killed by SIGTERM: {:?}",
                        exit.name, exit.code
                    ));
                }
                killed_runs.push(run);
            }
        }
    }

    // The last worker finishes the backlog and is stopped once idle.
    let run = signals + 1;
    let last = Worker::start(&events, binary, run, &format!("{prefix}{run}"), &env);
    let last = started(&events, last).await;
    let all: BTreeSet<String> = published.iter().cloned().collect();
    all_done(&events, &format!("{kind:?}: every message done"), &all).await;
    last.signal(Signal::SIGTERM);
    let exit = last.wait_exit(PATIENCE).await;
    if let Kind::Graceful = kind {
        graceful_exit(&exit, &mut problems);
    }

    let effects = effects(pool, prefix).await;
    let count = Count::of(&published, &effects);
    let tally = events.with(Tally::of);
    let depth = queue_depth(&brokers.amqp_url, &queue).await;
    let cut: usize = tally.cut.values().map(BTreeSet::len).sum();
    // A cut job whose effect its own run had committed: the signal landed between the commit
    // and the ack.
    let committed_unacked = tally
        .cut
        .iter()
        .flat_map(|(run, ids)| ids.iter().map(move |id| (format!("{prefix}{run}"), id)))
        .filter(|(worker, id)| effects.get(*id).is_some_and(|rows| rows.contains(worker)))
        .count();
    println!(
        "{kind:?} on a backlog: {signals} SIGTERMs, {}; done {}, redelivered {} of {} deliveries \
         started, jobs cut {cut} (of which committed, not acked: {committed_unacked}), \
         returned unstarted {}, handed back {}; queue left {} ready; {:.1} s",
        count.line(),
        tally.done.len(),
        tally.started_redelivered,
        tally.started,
        tally.returned_unstarted,
        tally.handed_back,
        depth.0,
        began.elapsed().as_secs_f64()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        count.lost.is_empty() && count.unknown.is_empty(),
        "{}\n{}",
        count.line(),
        count.first_cases()
    );
    match kind {
        Kind::Graceful => {
            assert!(
                count.twice.is_empty(),
                "{}\n{}",
                count.line(),
                count.first_cases()
            );
            assert_eq!(cut, 0, "jobs started and never ended: {:?}", tally.cut);
            assert_eq!(
                depth,
                (0, 0),
                "the queue must be empty, with no consumer left"
            );
            assert!(tally.failed.is_empty(), "{:?}", tally.failed);
        }
        Kind::Plain => {
            // What the contrast must show: SIGTERM cuts jobs in flight (their transactions die
            // with the connection, and the broker delivers them again). Twice is reported,
            // never required: it needs a kill between a commit and its ack (or an ack still in
            // the socket when the process died).
            assert!(
                cut > 0,
                "no job was in flight at any of {signals} kills: {:?}",
                killed_runs
            );
            assert!(
                tally.started_redelivered > 0,
                "no redelivery after {signals} kills"
            );
        }
    }
}

/// The consumer is essential: stopping the broker under a running worker stops the worker with
/// exit 1, the report naming the task.
async fn broker_outage(brokers: &Brokers) {
    let events = Arc::new(Events::default());
    let env = worker_env(brokers, "outage", "4", "2");
    let worker = Worker::start(&events, GRACEFUL, 1, "outage1", &env);
    let worker = started(&events, worker).await;
    let stopped = Instant::now();
    tokio::task::block_in_place(|| brokers.stop_rabbitmq());
    let exit = worker.wait_exit(PATIENCE).await;
    println!(
        "outage: the worker exited {:?} {:.1} s after the broker was told to stop",
        exit.code,
        stopped.elapsed().as_secs_f64()
    );
    assert_eq!(exit.code, Some(1), "{}", exit.stderr);
    let report = exit.report().expect("a JSON report");
    assert_eq!(report["cause"]["kind"], "essential_task", "{report}");
    assert_eq!(report["cause"]["task"], "consumer", "{report}");
}

/// A setting that is not a URL or a number stops the worker before it connects: exit 78,
/// naming the variable. No broker needed.
#[test]
fn bad_settings_exit_78_naming_them() {
    for (name, value) in [
        ("AMQP_URL", "rabbit at localhost"),
        ("DATABASE_URL", "a database somewhere"),
        ("PREFETCH", "0"),
        ("CONCURRENCY", "many"),
    ] {
        let output = std::process::Command::new(GRACEFUL)
            .env(name, value)
            .env("GRACEFUL_REPORT", "text")
            .output()
            .expect("run the worker");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(78),
            "{name}={value:?}:\n{stderr}"
        );
        assert!(stderr.contains(name), "{name} is not named:\n{stderr}");
    }
}
