//! What tests/worker_rabbitmq.rs stands on: a private RabbitMQ and PostgreSQL for the test binary
//! (scripts/rabbitmq and scripts/postgres, destroyed by a guard, also on failure), worker
//! processes whose output lines are events to wait on, and a producer with publisher confirms.
//! Its worker driver is async and keeps the lines of every run in one log, because the waits here
//! are conditions over all runs at once (every message done, by whichever worker), which the
//! library's per-process `Process` does not express.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use graceful_tests_integration::free_port;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{watch, Notify};

/// The longest any one wait may take: reached only when something is broken.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Every data directory of this test is `/var/lib/graceful-mq-test-<pid>-<what>`.
const PREFIX: &str = "graceful-mq-test-";

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../scripts")
        .join(name)
}

/// Runs `scripts/<name> <args>`; its last stdout line (the URL of `start`) on success.
fn run_script(name: &str, args: &[&str]) -> Result<String, String> {
    let output = std::process::Command::new(script(name))
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|error| format!("scripts/{name}: {error}"))?;
    if !output.status.success() {
        return Err(format!("scripts/{name} {args:?}: {}", output.status));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    Ok(stdout.lines().last().unwrap_or_default().trim().to_owned())
}

/// A RabbitMQ and a PostgreSQL of this test binary's own. Dropping it destroys both, data
/// directories included, also when a test panics.
pub struct Brokers {
    pub amqp_url: String,
    pub database_url: String,
    rabbitmq: String,
    postgres: String,
}

impl Brokers {
    pub fn start() -> Brokers {
        remove_leftovers();
        let pid = std::process::id();
        let mut brokers = Brokers {
            amqp_url: String::new(),
            database_url: String::new(),
            rabbitmq: format!("{PREFIX}{pid}-rabbitmq"),
            postgres: format!("{PREFIX}{pid}-postgres"),
        };
        // From here on, a failure still destroys whatever had started.
        let started = Instant::now();
        brokers.database_url = run_script(
            "postgres",
            &["start", &brokers.postgres, &free_port().to_string()],
        )
        .unwrap_or_else(|error| panic!("{error}"));
        brokers.amqp_url = run_script(
            "rabbitmq",
            &["start", &brokers.rabbitmq, &free_amqp_port().to_string()],
        )
        .unwrap_or_else(|error| panic!("{error}"));
        println!(
            "brokers up in {:.1} s: {} and {}",
            started.elapsed().as_secs_f64(),
            brokers.amqp_url,
            brokers.database_url
        );
        brokers
    }

    /// Stops the broker (`rabbitmqctl stop`), as an outage would: its clients' connections close.
    pub fn stop_rabbitmq(&self) {
        run_script("rabbitmq", &["stop", &self.rabbitmq]).unwrap_or_else(|error| panic!("{error}"));
    }
}

impl Drop for Brokers {
    fn drop(&mut self) {
        for (script, name) in [("rabbitmq", &self.rabbitmq), ("postgres", &self.postgres)] {
            if let Err(error) = run_script(script, &["destroy", name]) {
                eprintln!("cleanup: {error}");
            }
        }
    }
}

/// Destroys the brokers of earlier runs of this test that were killed before their guard ran:
/// directories whose pid no longer lives.
fn remove_leftovers() {
    let Ok(entries) = std::fs::read_dir("/var/lib") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let Some((pid, what)) = rest.split_once('-') else {
            continue;
        };
        if pid.parse::<u32>().is_err() || PathBuf::from(format!("/proc/{pid}")).exists() {
            continue;
        }
        let script = if what == "rabbitmq" {
            "rabbitmq"
        } else {
            "postgres"
        };
        println!("removing {name}, left by a run that died");
        if let Err(error) = run_script(script, &["destroy", &name]) {
            eprintln!("cleanup: {error}");
        }
    }
}

/// A port P such that P, P+1000 (Erlang distribution) and P+2000 (epmd) are all free.
fn free_amqp_port() -> u16 {
    let seed = std::process::id() as u16;
    for attempt in 0..2000u16 {
        let port = 20000 + (seed.wrapping_mul(7).wrapping_add(attempt.wrapping_mul(13))) % 20000;
        let free = [port, port + 1000, port + 2000]
            .iter()
            .all(|&p| TcpListener::bind((Ipv4Addr::LOCALHOST, p)).is_ok());
        if free {
            return port;
        }
    }
    panic!("no free AMQP port with its +1000 and +2000 free too");
}

/// The line that stands for the end of a run's output.
pub const END: &str = "<end of output>";

/// One line a worker printed, and which run printed it.
pub struct Line {
    pub run: usize,
    pub text: String,
}

/// Every stdout line of every worker run of a test, in the order they came, and a wake-up for
/// whoever waits on them.
#[derive(Default)]
pub struct Events {
    lines: Mutex<Vec<Line>>,
    grew: Notify,
}

impl Events {
    /// Waits until `done` holds over the lines so far, woken by each new line; fails after
    /// `limit` with `what`.
    pub async fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        mut done: impl FnMut(&[Line]) -> bool,
    ) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let grew = self.grew.notified();
            tokio::pin!(grew);
            grew.as_mut().enable();
            if done(&self.lines.lock().unwrap()) {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, grew).await.is_err() {
                return Err(format!("not within {limit:?}: {what}"));
            }
        }
    }

    /// Reads over the lines so far.
    pub fn with<T>(&self, read: impl FnOnce(&[Line]) -> T) -> T {
        read(&self.lines.lock().unwrap())
    }

    fn push(&self, run: usize, text: String) {
        self.lines.lock().unwrap().push(Line { run, text });
        self.grew.notify_waiters();
    }
}

/// A worker process: the example, or its plain-tokio contrast.
pub struct Worker {
    pub run: usize,
    pub name: String,
    child: Child,
    stdout: tokio::task::JoinHandle<()>,
    stderr: tokio::task::JoinHandle<String>,
}

/// How a worker run ended.
pub struct Exit {
    pub name: String,
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stderr: String,
}

impl Exit {
    /// graceful's final report, when it wrote one as JSON (`GRACEFUL_REPORT=json`).
    pub fn report(&self) -> Option<serde_json::Value> {
        self.stderr
            .lines()
            .find(|line| line.starts_with('{') && line.contains("\"graceful_report\""))
            .and_then(|line| serde_json::from_str(line).ok())
    }
}

impl Worker {
    /// Starts `binary` as run number `run`, named `name` (its `WORKER`), with `env` and none of
    /// the test's own `GRACEFUL_*` or `RUST_LOG`.
    pub fn start(
        events: &Arc<Events>,
        binary: &str,
        run: usize,
        name: &str,
        env: &[(&str, &str)],
    ) -> Worker {
        let mut command = Command::new(binary);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .env_remove("RUST_LOG")
            .env("WORKER", name);
        for (key, _) in std::env::vars() {
            if key.starts_with("GRACEFUL_") {
                command.env_remove(key);
            }
        }
        command.envs(env.iter().copied());
        let mut child = command
            .spawn()
            .unwrap_or_else(|error| panic!("start {binary}: {error}"));
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let sink = events.clone();
        let stdout = tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                sink.push(run, line);
            }
            sink.push(run, END.to_owned());
        });
        let mut errors = child.stderr.take().unwrap();
        let stderr = tokio::spawn(async move {
            let mut text = String::new();
            let _ = errors.read_to_string(&mut text).await;
            text
        });
        Worker {
            run,
            name: name.to_owned(),
            child,
            stdout,
            stderr,
        }
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = self.child.id().expect("still running") as i32;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal).expect("send a signal");
    }

    /// Waits for the exit (at most `limit`), then for the end of its output.
    pub async fn wait_exit(mut self, limit: Duration) -> Exit {
        let status = match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(status) => status.expect("wait for the worker"),
            Err(_) => {
                let _ = self.child.kill().await;
                panic!("{} did not exit within {limit:?}", self.name);
            }
        };
        let _ = self.stdout.await;
        let stderr = self.stderr.await.unwrap_or_default();
        use std::os::unix::process::ExitStatusExt;
        Exit {
            name: self.name,
            code: status.code(),
            signal: status.signal(),
            stderr,
        }
    }
}

/// What the worker lines say, per message id.
#[derive(Default, Debug)]
pub struct Tally {
    /// Deliveries that started a job, and of them those the broker flagged as redelivered.
    pub started: usize,
    pub started_redelivered: usize,
    pub done: BTreeSet<String>,
    pub done_lines: usize,
    pub handed_back: usize,
    pub returned_unstarted: usize,
    pub failed: Vec<String>,
    /// Jobs started by a run that never said how they ended, by run.
    pub cut: BTreeMap<usize, BTreeSet<String>>,
}

impl Tally {
    pub fn of(lines: &[Line]) -> Tally {
        let mut tally = Tally::default();
        let mut open: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
        for line in lines {
            let Some((_, event)) = line.text.split_once(": ") else {
                continue;
            };
            let words: Vec<&str> = event.split(' ').collect();
            let running = open.entry(line.run).or_default();
            match words.as_slice() {
                ["start", id, ..] => {
                    tally.started += 1;
                    if words.last() == Some(&"redelivered") {
                        tally.started_redelivered += 1;
                    }
                    running.insert(id.to_string());
                }
                ["done", id] => {
                    tally.done_lines += 1;
                    tally.done.insert(id.to_string());
                    running.remove(*id);
                }
                ["handed", "back", id] => {
                    tally.handed_back += 1;
                    running.remove(*id);
                }
                ["returned", _, "unstarted"] => tally.returned_unstarted += 1,
                ["failed", id, ..] => {
                    running.remove(*id);
                    tally.failed.push(line.text.clone());
                }
                ["ack" | "could" | "malformed", ..] => tally.failed.push(line.text.clone()),
                _ => {}
            }
        }
        open.retain(|_, ids| !ids.is_empty());
        tally.cut = open;
        tally
    }

    /// The message a `done` line is about.
    pub fn done_id(line: &Line) -> Option<&str> {
        let (_, event) = line.text.split_once(": ")?;
        event.strip_prefix("done ")
    }

    /// The message a `handed back` line is about.
    pub fn handed_back_id(line: &Line) -> Option<&str> {
        let (_, event) = line.text.split_once(": ")?;
        event.strip_prefix("handed back ")
    }

    /// Jobs started in `run` and still running, with their durations in milliseconds.
    pub fn running_in(lines: &[Line], run: usize) -> BTreeMap<String, u64> {
        let mut open = BTreeMap::new();
        for line in lines.iter().filter(|line| line.run == run) {
            let Some((_, event)) = line.text.split_once(": ") else {
                continue;
            };
            let words: Vec<&str> = event.split(' ').collect();
            match words.as_slice() {
                ["start", id, ms, ..] => {
                    let ms = ms.trim_end_matches("ms").parse().unwrap_or(0);
                    open.insert(id.to_string(), ms);
                }
                ["done", id] | ["handed", "back", id] | ["failed", id, ..] => {
                    open.remove(*id);
                }
                _ => {}
            }
        }
        open
    }

    /// Jobs started in `run`.
    pub fn started_in(lines: &[Line], run: usize) -> usize {
        lines
            .iter()
            .filter(|line| line.run == run && line.text.contains(": start "))
            .count()
    }
}

/// A job's duration in milliseconds from its sequence number: a fixed, mixed sequence, the
/// same on every run. `mix` gives (percent, from, to) bands that add up to 100.
pub fn duration_ms(n: u64, mix: &[(u64, u64, u64)]) -> u64 {
    // splitmix64: spreads consecutive numbers evenly.
    let mut x = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    let mut pick = x % 100;
    for &(percent, from, to) in mix {
        if pick < percent {
            return from + (x >> 8) % (to - from + 1);
        }
        pick -= percent;
    }
    unreachable!("the bands of a mix add up to 100")
}

/// A publisher on its own connection, with publisher confirms: a message counts as published
/// once the broker has confirmed it (persistent, so on disk).
pub struct Producer {
    connection: Connection,
    channel: Channel,
    queue: String,
}

impl Producer {
    pub async fn connect(amqp_url: &str, queue: &str) -> Producer {
        let connection = Connection::connect(amqp_url, ConnectionProperties::default())
            .await
            .expect("the producer connects");
        let channel = connection.create_channel().await.expect("a channel");
        channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions::durable(),
                FieldTable::default(),
            )
            .await
            .expect("declare the queue");
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .expect("confirm.select");
        Producer {
            connection,
            channel,
            queue: queue.to_owned(),
        }
    }

    /// Publishes one message and waits for the broker's confirm.
    pub async fn publish(&self, id: &str, work_ms: u64) {
        let properties = BasicProperties::default()
            .with_message_id(id.into())
            .with_delivery_mode(2);
        let confirm = self
            .channel
            .basic_publish(
                "".into(),
                self.queue.as_str().into(),
                BasicPublishOptions::default(),
                work_ms.to_string().as_bytes(),
                properties,
            )
            .await
            .expect("publish")
            .await
            .expect("the publisher confirm");
        assert!(confirm.is_ack(), "the broker nacked {id}");
    }

    /// Publishes `count` messages `prefix-000001`.. at once, confirms awaited together.
    pub async fn publish_backlog(
        &self,
        prefix: &str,
        count: u64,
        mix: &[(u64, u64, u64)],
    ) -> Vec<String> {
        let mut confirms = Vec::new();
        let mut ids = Vec::new();
        for n in 1..=count {
            let id = format!("{prefix}-{n:06}");
            let properties = BasicProperties::default()
                .with_message_id(id.as_str().into())
                .with_delivery_mode(2);
            let confirm = self
                .channel
                .basic_publish(
                    "".into(),
                    self.queue.as_str().into(),
                    BasicPublishOptions::default(),
                    duration_ms(n, mix).to_string().as_bytes(),
                    properties,
                )
                .await
                .expect("publish");
            confirms.push(confirm);
            ids.push(id);
        }
        for (confirm, id) in confirms.into_iter().zip(&ids) {
            assert!(
                confirm.await.expect("the publisher confirm").is_ack(),
                "the broker nacked {id}"
            );
        }
        ids
    }

    /// Publishes `prefix-000001`.. at `per_second` until `stop` turns true; returns the ids the
    /// broker confirmed, in order.
    pub fn steady(
        self,
        prefix: &str,
        per_second: u32,
        mix: &'static [(u64, u64, u64)],
        stop: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<Vec<String>> {
        let prefix = prefix.to_owned();
        tokio::spawn(async move {
            let mut stop = stop;
            let mut tick = tokio::time::interval(Duration::from_secs(1) / per_second);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut published = Vec::new();
            for n in 1.. {
                tokio::select! {
                    biased;
                    _ = stop.wait_for(|stop| *stop) => break,
                    _ = tick.tick() => {}
                }
                let id = format!("{prefix}-{n:06}");
                self.publish(&id, duration_ms(n, mix)).await;
                published.push(id);
            }
            self.close().await;
            published
        })
    }

    pub async fn close(self) {
        let _ = self.channel.close(200, "done".into()).await;
        let _ = self.connection.close(200, "done".into()).await;
    }
}

/// Ready messages in `queue` and its consumers, as the broker counts them (a passive declare).
pub async fn queue_depth(amqp_url: &str, queue: &str) -> (u32, u32) {
    let connection = Connection::connect(amqp_url, ConnectionProperties::default())
        .await
        .expect("connect to count the queue");
    let channel = connection.create_channel().await.expect("a channel");
    let declared = channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("passive declare");
    let _ = connection.close(200, "counted".into()).await;
    (declared.message_count(), declared.consumer_count())
}
