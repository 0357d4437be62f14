//! Upgrades in place (feature `upgrade`), with no load balancer and no systemd: SIGUSR2 starts
//! the binary again with the listeners, and the old process drains once the new one is ready.
//! Under a load that runs throughout (a new connection per request, keep-alive connections,
//! HTTP/2 connections, and a slow request spanning each upgrade): no connection refused, no
//! request failed, each generation answers in turn, each old process exits 0. The contrast (stop,
//! then start again) refuses connections; a new build that cannot start leaves the old process
//! serving. The same under a real systemd is `systemd_reloads_upgrade_under_load` (ignored here:
//! scripts/systemd/run-tests runs it in its container).
//!
//! `UPGRADES=100` runs the long form of the first test (RELIABILITY.md); the default is 10.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

/// How long any one wait may take: only reached when something is broken.
const PATIENCE: Duration = Duration::from_secs(30);

/// How many upgrades in a row.
fn upgrade_count() -> usize {
    std::env::var("UPGRADES")
        .ok()
        .and_then(|count| count.parse().ok())
        .unwrap_or(10)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A folder of the test's own under the target directory (never /tmp: a systemd run empties
/// it), emptied.
fn case_directory(name: &str) -> PathBuf {
    let directory = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("upgrade")
        .join(name);
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory).unwrap();
    directory
}

/// Puts `contents` at `path` by a rename, as a deploy replaces a binary: a process running the
/// old file keeps it. Written by `sh`, not here: a writable descriptor of this process, inherited
/// for a moment by a process another test forks, would make executing the file fail with
/// ETXTBSY ("text file busy").
fn replace_file(path: &Path, contents: &[u8], executable: bool) {
    use std::io::Write;
    let partial = path.with_extension("partial");
    let mode = if executable { "755" } else { "644" };
    let mut writer = Command::new("/bin/sh")
        .args([
            "-c",
            r#"cat > "$1" && chmod "$2" "$1" && mv "$1" "$3""#,
            "sh",
        ])
        .arg(&partial)
        .arg(mode)
        .arg(path)
        .stdin(Stdio::piped())
        .spawn()
        .expect("start sh");
    writer.stdin.take().unwrap().write_all(contents).unwrap();
    let status = writer.wait().unwrap();
    assert!(status.success(), "writing {}: {status}", path.display());
}

/// Points the symlink `link` at `target`, atomically.
fn switch_symlink(link: &Path, target: &str) {
    let partial = link.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    std::os::unix::fs::symlink(target, &partial).unwrap();
    std::fs::rename(&partial, link).unwrap();
}

/// Makes this test process the reaper of its descendants' orphans: the generation an upgrade
/// leaves behind is the previous generation's child, and once that one has exited it is ours
/// to wait for, so that its exit status is seen, not guessed.
fn become_subreaper() {
    nix::sys::prctl::set_child_subreaper(true).expect("PR_SET_CHILD_SUBREAPER");
}

/// Waits for the exit of `pid` (a child of this process, or an orphan it reaps); its code, or
/// `128 + N` for a signal.
fn wait_exit(pid: u32) -> i32 {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let status = waitpid(Pid::from_raw(pid as i32), None);
        let _ = sender.send(status);
    });
    match receiver.recv_timeout(PATIENCE) {
        Ok(Ok(WaitStatus::Exited(_, code))) => code,
        Ok(Ok(WaitStatus::Signaled(_, signal, _))) => 128 + signal as i32,
        Ok(other) => panic!("process {pid}: {other:?}"),
        Err(_) => panic!("process {pid} did not exit within {PATIENCE:?}"),
    }
}

fn signal(pid: u32, signal: Signal) {
    kill(Pid::from_raw(pid as i32), signal)
        .unwrap_or_else(|error| panic!("{signal} to {pid}: {error}"));
}

/// What every generation of one service prints: they share the first one's stdout and stderr.
#[derive(Default)]
struct Output {
    lines: Mutex<Vec<String>>,
    grew: Condvar,
}

impl Output {
    fn read(self: &Arc<Self>, stream: impl Read + Send + 'static, prefix: &'static str) {
        let output = Arc::clone(self);
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                output.lines.lock().unwrap().push(format!("{prefix}{line}"));
                output.grew.notify_all();
            }
        });
    }

    /// Waits for the `nth` line (from 1) containing `needle`; returns it.
    fn wait_for_nth(&self, needle: &str, nth: usize) -> String {
        self.wait_for_nth_where(needle, nth, |line| line.contains(needle))
    }

    /// Waits for the `nth` line (from 1) that `matches`; `what` names it in the panic.
    fn wait_for_nth_where(&self, what: &str, nth: usize, matches: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        let mut lines = self.lines.lock().unwrap();
        loop {
            if let Some(line) = lines.iter().filter(|line| matches(line)).nth(nth - 1) {
                return line.clone();
            }
            let left = deadline
                .checked_duration_since(Instant::now())
                .unwrap_or_else(|| {
                    panic!(
                        "no line {nth} with {what:?} within {PATIENCE:?}; the last lines:\n{}",
                        last_lines(&lines)
                    )
                });
            lines = self.grew.wait_timeout(lines, left).unwrap().0;
        }
    }

    fn wait_for(&self, needle: &str) -> String {
        self.wait_for_nth(needle, 1)
    }

    fn count(&self, needle: &str) -> usize {
        let lines = self.lines.lock().unwrap();
        lines.iter().filter(|line| line.contains(needle)).count()
    }

    fn matching(&self, needle: &str) -> Vec<String> {
        let lines = self.lines.lock().unwrap();
        lines
            .iter()
            .filter(|line| line.contains(needle))
            .cloned()
            .collect()
    }

    fn all(&self) -> String {
        last_lines(&self.lines.lock().unwrap())
    }
}

fn last_lines(lines: &[String]) -> String {
    let start = lines.len().saturating_sub(60);
    lines[start..].join("\n")
}

/// The first generation of a service, started by `sh -c 'cd DIR && exec PROGRAM'`, as a shell
/// in DIR starts a relative path: argv[0] is PROGRAM as written, and DIR the start-up directory.
struct Service {
    output: Arc<Output>,
    first: u32,
}

impl Service {
    fn start(directory: &Path, program: &str, env: &[(&str, String)]) -> Service {
        let mut command = Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(format!("cd '{}' && exec {program}", directory.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env_remove("RUST_LOG");
        for (key, _) in std::env::vars() {
            if key.starts_with("GRACEFUL_") || key.starts_with("LISTEN_") {
                command.env_remove(key);
            }
        }
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("start the service");
        let output = Arc::new(Output::default());
        output.read(child.stdout.take().unwrap(), "");
        output.read(child.stderr.take().unwrap(), "stderr: ");
        // Waited for by pid (`wait_exit`), like the generations after it.
        let first = child.id();
        std::mem::forget(child);
        Service { output, first }
    }

    /// The pid of the `nth` generation (from 1) to print `ready N`.
    fn ready(&self, nth: usize) -> u32 {
        let line = self
            .output
            .wait_for_nth_where("ready N", nth, |line| line.starts_with("ready "));
        pid_after(&line, "ready ")
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        // A test that failed half-way must not leave a generation running.
        if std::thread::panicking() {
            for line in self.output.matching(" listening on ") {
                if let Some(pid) = line
                    .strip_prefix("pid ")
                    .and_then(|rest| rest.split(' ').next())
                {
                    if let Ok(pid) = pid.parse::<i32>() {
                        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                    }
                }
            }
        }
    }
}

/// The number after `word` in `line`.
fn pid_after(line: &str, word: &str) -> u32 {
    let rest = &line[line.find(word).unwrap() + word.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no pid in {line:?}"))
}

/// What the clients saw.
#[derive(Default, Debug)]
struct Counts {
    /// Requests written to a connection.
    sent: usize,
    /// Answered 200, with a pid.
    ok: usize,
    /// Connections refused: nothing listened.
    refused: usize,
    /// Requests sent that got no complete 200.
    failed: usize,
    /// Requests that never reached the server's application: a stream above the last one a
    /// GOAWAY accepted, or a request hyper had not yet written when the connection closed. RFC
    /// 9113 section 8.7 lets a client send them again, and HTTP/2 clients do: sent again on a
    /// new connection, not counted as failed.
    retried: usize,
    /// Answers by the pid that gave them.
    by_pid: BTreeMap<u32, usize>,
    failures: Vec<String>,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.sent += other.sent;
        self.ok += other.ok;
        self.refused += other.refused;
        self.failed += other.failed;
        self.retried += other.retried;
        for (pid, count) in other.by_pid {
            *self.by_pid.entry(pid).or_default() += count;
        }
        self.failures.extend(other.failures);
    }

    fn failures_summary(&self) -> String {
        let first: Vec<&String> = self.failures.iter().take(5).collect();
        format!(
            "sent {}, ok {}, refused {}, failed {}; the first failures: {first:?}",
            self.sent, self.ok, self.refused, self.failed
        )
    }
}

/// How a load client reaches the service.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Client {
    /// HTTP/1.1, a new connection for each request (`Connection: close`).
    NewConnection,
    /// HTTP/1.1 keep-alive, reconnecting when the server says `Connection: close`.
    KeepAlive,
    /// HTTP/2 with prior knowledge, reconnecting once the server's GOAWAY closes the connection.
    Http2,
}

enum Sender {
    Http1(hyper::client::conn::http1::SendRequest<Empty<Bytes>>),
    Http2(hyper::client::conn::http2::SendRequest<Empty<Bytes>>),
}

impl Sender {
    /// A connection; `None` when refused.
    async fn open(client: Client, address: SocketAddr) -> Result<Option<Sender>, String> {
        let stream = match tokio::net::TcpStream::connect(address).await {
            Ok(stream) => stream,
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionRefused => return Ok(None),
            Err(error) => return Err(format!("connect: {error}")),
        };
        let io = TokioIo::new(stream);
        if client == Client::Http2 {
            let (sender, connection) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                    .await
                    .map_err(|error| format!("h2 handshake: {error}"))?;
            tokio::spawn(connection);
            Ok(Some(Sender::Http2(sender)))
        } else {
            let (sender, connection) = hyper::client::conn::http1::handshake(io)
                .await
                .map_err(|error| format!("handshake: {error}"))?;
            tokio::spawn(connection);
            Ok(Some(Sender::Http1(sender)))
        }
    }

    /// Whether the connection can take a request; false once the server closed it (after
    /// `Connection: close`, or GOAWAY): nothing was sent on it, so nothing failed.
    async fn ready(&mut self) -> bool {
        match self {
            Sender::Http1(sender) => sender.ready().await.is_ok(),
            Sender::Http2(sender) => sender.ready().await.is_ok(),
        }
    }

    /// Sends `GET path`; the status, whether the server closes the connection, and the body.
    /// An error starting with [`NOT_PROCESSED`] is a request the server refused unprocessed.
    async fn get(&mut self, path: &str, close: bool) -> Result<(u16, bool, String), String> {
        let mut request = Request::get(path);
        if let Sender::Http1(_) = self {
            request = request.header("host", "localhost");
            if close {
                request = request.header("connection", "close");
            }
        } else {
            request = request.uri(format!("http://localhost{path}"));
        }
        let request = request.body(Empty::<Bytes>::new()).unwrap();
        let response = match self {
            Sender::Http1(sender) => sender.send_request(request).await,
            Sender::Http2(sender) => sender.send_request(request).await,
        }
        .map_err(|error| {
            // Canceled: the connection closed before hyper wrote the request out. Or h2's error
            // for a stream that a graceful GOAWAY left out. Neither reached the server's
            // application, and every HTTP/2 client sends them again (hyper-util's pool does).
            let canceled = error.is_canceled();
            let error = format!("{error:?}");
            let refused = error.contains("GoAway(")
                && (error.contains("NO_ERROR") || error.contains("REFUSED_STREAM"));
            if canceled || refused {
                format!("{NOT_PROCESSED}{error}")
            } else {
                error
            }
        })?;
        let status = response.status().as_u16();
        let closes = response
            .headers()
            .get("connection")
            .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"close"));
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|error| format!("body: {error:?}"))?
            .to_bytes();
        Ok((status, closes, String::from_utf8_lossy(&body).into_owned()))
    }
}

/// Starts the error of a request the server refused unprocessed.
const NOT_PROCESSED: &str = "not processed: ";

/// Load clients of each kind, until [`Load::finish`]; each paces itself, so that the load stays
/// bounded on a shared machine.
struct Load {
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicUsize>,
    workers: Vec<tokio::task::JoinHandle<Counts>>,
}

impl Load {
    fn start(address: SocketAddr, clients: &[(Client, usize)]) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicUsize::new(0));
        let mut workers = Vec::new();
        for &(client, count) in clients {
            for _ in 0..count {
                let (stop, answered) = (Arc::clone(&stop), Arc::clone(&answered));
                workers.push(tokio::spawn(worker(client, address, stop, answered)));
            }
        }
        Load {
            stop,
            answered,
            workers,
        }
    }

    /// Waits until `more` requests have been answered from now on.
    async fn wait_for_answers(&self, more: usize) {
        let target = self.answered.load(Ordering::Relaxed) + more;
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while self.answered.load(Ordering::Relaxed) < target {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the load makes no progress"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn finish(self) -> Counts {
        self.stop.store(true, Ordering::Relaxed);
        let mut counts = Counts::default();
        for worker in self.workers {
            let part = tokio::time::timeout(PATIENCE, worker)
                .await
                .expect("a load worker hung")
                .unwrap();
            counts.add(part);
        }
        counts
    }
}

/// A pause between one client's requests: about 300 requests a second each.
const PACE: Duration = Duration::from_millis(3);

async fn worker(
    client: Client,
    address: SocketAddr,
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicUsize>,
) -> Counts {
    let mut counts = Counts::default();
    let mut sender: Option<Sender> = None;
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(PACE).await;
        if sender.as_mut().is_some() && !sender.as_mut().unwrap().ready().await {
            sender = None;
        }
        if sender.is_none() {
            match Sender::open(client, address).await {
                Ok(Some(opened)) => sender = Some(opened),
                Ok(None) => {
                    counts.refused += 1;
                    continue;
                }
                Err(error) => {
                    counts.failed += 1;
                    counts.failures.push(format!("{client:?}: {error}"));
                    continue;
                }
            }
        }
        counts.sent += 1;
        let close = client == Client::NewConnection;
        match sender.as_mut().unwrap().get("/", close).await {
            Ok((200, closes, body)) if body.starts_with("pid ") => {
                counts.ok += 1;
                *counts.by_pid.entry(pid_after(&body, "pid ")).or_default() += 1;
                answered.fetch_add(1, Ordering::Relaxed);
                if closes || close {
                    sender = None;
                }
            }
            Ok((status, _, body)) => {
                counts.failed += 1;
                counts
                    .failures
                    .push(format!("{client:?}: {status} {body:?}"));
                sender = None;
            }
            Err(error) if error.starts_with(NOT_PROCESSED) => {
                counts.sent -= 1;
                counts.retried += 1;
                sender = None;
            }
            Err(error) => {
                counts.failed += 1;
                counts.failures.push(format!("{client:?}: {error}"));
                sender = None;
            }
        }
    }
    counts
}

/// `GET /slow` on a connection of its own: answered by the process it reached, once that
/// process's shutdown has begun.
async fn slow_request(address: SocketAddr) -> Result<String, String> {
    let mut sender = Sender::open(Client::KeepAlive, address)
        .await?
        .ok_or("the slow request's connection was refused")?;
    match sender.get("/slow", true).await? {
        (200, _, body) => Ok(body),
        (status, _, body) => Err(format!("{status} {body:?}")),
    }
}

/// `GET /readyz` on the health port: its status.
async fn readiness(address: SocketAddr) -> Result<u16, String> {
    let mut sender = Sender::open(Client::NewConnection, address)
        .await?
        .ok_or("the health port refused the connection")?;
    Ok(sender.get("/readyz", true).await?.0)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

const ALL_CLIENTS: &[(Client, usize)] = &[
    (Client::NewConnection, 3),
    (Client::KeepAlive, 3),
    (Client::Http2, 2),
];

fn print_counts(what: &str, counts: &Counts, generations: usize) {
    println!(
        "{what}: sent {}, ok {}, refused {}, failed {}, generations {generations} (requests never processed, after a GOAWAY or a close, and sent again: {})",
        counts.sent, counts.ok, counts.refused, counts.failed, counts.retried
    );
}

#[test]
fn upgrades_under_load_refuse_nothing_fail_nothing_and_each_generation_answers_in_turn() {
    let upgrades = upgrade_count();
    become_subreaper();
    // Two releases behind a `current` symlink, switched before each upgrade, as a deploy does:
    // the new process must run the release the link names now, not the file this one runs.
    let directory = case_directory("under_load");
    let binary = std::fs::read(env!("CARGO_BIN_EXE_upgrade_service")).unwrap();
    for release in ["r1", "r2"] {
        std::fs::create_dir_all(directory.join(release)).unwrap();
        replace_file(
            &directory.join(release).join("upgrade_service"),
            &binary,
            true,
        );
    }
    let current = directory.join("current");
    switch_symlink(&current, "r1");
    let address = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let health = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let service = Service::start(
        &directory,
        "./current/upgrade_service",
        &[
            ("LISTEN_ADDR", address.to_string()),
            ("GRACEFUL_HEALTH_ADDR", health.to_string()),
            ("GRACEFUL_REPORT", "json".to_owned()),
        ],
    );
    let first = service.ready(1);
    assert_eq!(
        first, service.first,
        "the first generation is the process started"
    );
    let output = Arc::clone(&service.output);

    let mut generations = vec![first];
    let mut upgrade_times = Vec::new();
    let counts = runtime().block_on(async {
        let load = Load::start(address, ALL_CLIENTS);
        load.wait_for_answers(50).await;
        for index in 0..upgrades {
            let old = *generations.last().unwrap();
            let release = if index % 2 == 0 { "r2" } else { "r1" };
            switch_symlink(&current, release);
            // Only the old process listens now (the one before it has exited): the slow request
            // reaches it, and is in flight when the upgrade begins.
            let slow = tokio::spawn(slow_request(address));
            output.wait_for(&format!("slow begun {old}"));
            let asked = Instant::now();
            signal(old, Signal::SIGUSR2);
            let new = service.ready(index + 2);
            upgrade_times.push(asked.elapsed());
            assert_ne!(new, old);
            let exe = output.wait_for_nth("exe ", index + 2);
            assert!(
                exe.ends_with(&format!("/{release}/upgrade_service")),
                "generation {} runs {exe:?}, not the release `current` names ({release})",
                index + 2
            );
            assert_eq!(
                readiness(health).await,
                Ok(200),
                "the new process answers /readyz"
            );
            let exit = tokio::task::spawn_blocking(move || wait_exit(old))
                .await
                .unwrap();
            assert_eq!(exit, 0, "generation {old} exited {exit}:\n{}", output.all());
            let slow = slow.await.unwrap();
            assert_eq!(
                slow,
                Ok(format!("pid {old} slow\n")),
                "the slow request across the upgrade to {new}"
            );
            output.wait_for(&format!("hook {old} saw cause upgrade to {new}"));
            generations.push(new);
            // The new generation serves the load before it is upgraded in turn.
            load.wait_for_answers(20).await;
        }
        load.finish().await
    });
    let last = *generations.last().unwrap();
    signal(last, Signal::SIGTERM);
    assert_eq!(wait_exit(last), 0, "the last generation:\n{}", output.all());

    print_counts(&format!("UPGRADES x{upgrades}"), &counts, generations.len());
    let mut times: Vec<Duration> = upgrade_times.clone();
    times.sort();
    println!(
        "  SIGUSR2 to the new process's `ready` line: median {:?}, max {:?}",
        times[times.len() / 2],
        times[times.len() - 1]
    );
    let silent: Vec<&u32> = generations
        .iter()
        .filter(|pid| !counts.by_pid.contains_key(pid))
        .collect();
    // The lines come from reader threads: waited for, then counted.
    output.wait_for_nth(r#""kind":"upgrade""#, upgrades);
    output.wait_for_nth(r#""exit_code":0"#, upgrades + 1);
    let reports = output.count(r#""kind":"upgrade""#);
    assert_eq!(counts.refused, 0, "{}", counts.failures_summary());
    assert_eq!(counts.failed, 0, "{}", counts.failures_summary());
    assert!(
        silent.is_empty(),
        "generations that answered nothing: {silent:?}; answers by pid {:?}",
        counts.by_pid
    );
    assert_eq!(
        reports,
        upgrades,
        "one JSON report with cause upgrade per old process:\n{}",
        output.all()
    );
    assert_eq!(
        output.count(r#""graceful_report""#),
        upgrades + 1,
        "one report per generation:\n{}",
        output.all()
    );
}

#[test]
fn the_contrast_stopping_and_starting_again_refuses_connections() {
    become_subreaper();
    let directory = case_directory("contrast");
    let address = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let program = env!("CARGO_BIN_EXE_upgrade_service");
    let env = [("LISTEN_ADDR", address.to_string())];
    let first = Service::start(&directory, program, &env);
    let old = first.ready(1);
    let (counts, new) = runtime().block_on(async {
        let load = Load::start(address, ALL_CLIENTS);
        load.wait_for_answers(50).await;
        signal(old, Signal::SIGTERM);
        let exit = tokio::task::spawn_blocking(move || wait_exit(old))
            .await
            .unwrap();
        assert_eq!(exit, 0);
        let second = Service::start(&directory, program, &env);
        let new = second.ready(1);
        load.wait_for_answers(50).await;
        (load.finish().await, new)
    });
    signal(new, Signal::SIGTERM);
    assert_eq!(wait_exit(new), 0);
    print_counts("STOP AND START AGAIN (the contrast)", &counts, 2);
    assert!(
        counts.refused > 0,
        "no connection was refused while no process listened: {}",
        counts.failures_summary()
    );
}

#[test]
fn a_new_build_that_cannot_start_leaves_the_old_process_serving() {
    become_subreaper();
    let directory = case_directory("cannot_start");
    let binary_path = directory.join("upgrade_service");
    let binary = std::fs::read(env!("CARGO_BIN_EXE_upgrade_service")).unwrap();
    replace_file(&binary_path, &binary, true);
    let not_ready = directory.join("not-ready");
    let address = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let health = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let service = Service::start(
        &directory,
        "./upgrade_service",
        &[
            ("LISTEN_ADDR", address.to_string()),
            ("GRACEFUL_HEALTH_ADDR", health.to_string()),
            ("GRACEFUL_UPGRADE_TIMEOUT", "2s".to_owned()),
            // A process told to stop (the one that never got ready) tells its keep-alive
            // clients to go before it closes their connections.
            ("GRACEFUL_PRE_STOP", "1s".to_owned()),
            ("UPGRADE_SERVICE_NOT_READY", not_ready.display().to_string()),
        ],
    );
    let old = service.ready(1);
    let output = Arc::clone(&service.output);
    let failed = |nth: usize| output.wait_for_nth("upgrade failed: ", nth);
    let (counts, new) = runtime().block_on(async {
        let load = Load::start(address, ALL_CLIENTS);
        load.wait_for_answers(50).await;

        // 1. A build that exits at once.
        replace_file(
            &binary_path,
            b"#!/bin/sh\necho 'broken build' >&2\nexit 1\n",
            true,
        );
        signal(old, Signal::SIGUSR2);
        let line = failed(1);
        assert!(
            line.contains("exited with exit code 1 before it was ready"),
            "{line}"
        );
        assert_eq!(readiness(health).await, Ok(200), "readiness unchanged");
        load.wait_for_answers(20).await;

        // 2. A build that never gets ready (and ignores the protocol): stopped after the
        // timeout. A second request meanwhile is ignored.
        replace_file(&binary_path, b"#!/bin/sh\nexec sleep 60\n", true);
        signal(old, Signal::SIGUSR2);
        output.wait_for_nth("upgrade: started ", 2);
        signal(old, Signal::SIGUSR2);
        output.wait_for("upgrade ignored: another upgrade is under way");
        let line = failed(2);
        assert!(
            line.contains("was not ready within upgrade_timeout 2s"),
            "{line}"
        );
        assert_eq!(readiness(health).await, Ok(200), "readiness unchanged");
        load.wait_for_answers(20).await;

        // 3. A graceful service that serves on the passed sockets but never calls ready():
        // stopped, it drains what it took.
        replace_file(&binary_path, &binary, true);
        std::fs::write(&not_ready, "").unwrap();
        signal(old, Signal::SIGUSR2);
        let hanging = pid_after(&output.wait_for("never ready "), "never ready ");
        let line = failed(3);
        assert!(
            line.contains(&format!("the new process {hanging} was not ready")),
            "{line}"
        );
        load.wait_for_answers(20).await;

        // 4. Fixed: a later upgrade succeeds.
        std::fs::remove_file(&not_ready).unwrap();
        signal(old, Signal::SIGUSR2);
        let new = service.ready(2);
        let exit = tokio::task::spawn_blocking(move || wait_exit(old))
            .await
            .unwrap();
        assert_eq!(exit, 0, "{}", output.all());
        load.wait_for_answers(20).await;
        (load.finish().await, new)
    });
    signal(new, Signal::SIGTERM);
    assert_eq!(wait_exit(new), 0);
    print_counts(
        "NEW BUILDS THAT CANNOT START (exit 1, hangs, never ready), then one that can",
        &counts,
        2,
    );
    for line in output.matching("upgrade failed") {
        println!("  {line}");
    }
    assert_eq!(counts.refused, 0, "{}", counts.failures_summary());
    assert_eq!(counts.failed, 0, "{}", counts.failures_summary());
    assert!(counts.by_pid.contains_key(&old) && counts.by_pid.contains_key(&new));
}

/// The container scripts/systemd/run-tests boots: its PID 1 (on the host) and the state folder
/// it shares at the same path.
struct Container {
    leader: u32,
    state: PathBuf,
}

impl Container {
    /// The container, or `None` after a loud skip (a failure under `CI=true`).
    fn require() -> Option<Container> {
        let leader = std::env::var("GRACEFUL_SYSTEMD_LEADER")
            .ok()
            .and_then(|pid| pid.parse::<u32>().ok());
        let state = std::env::var_os("GRACEFUL_SYSTEMD_STATE").map(PathBuf::from);
        match (leader, state) {
            (Some(leader), Some(state)) if state.is_dir() => Some(Container { leader, state }),
            _ => {
                let need = "a systemd container (GRACEFUL_SYSTEMD_LEADER, GRACEFUL_SYSTEMD_STATE): run scripts/systemd/run-tests, which boots one";
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "this test needs {need}, and CI=true"
                );
                eprintln!("!!! WARNING: this test needs {need}: test SKIPPED !!!");
                None
            }
        }
    }

    /// `program args` in the container, bounded; its stdout, whatever its status.
    fn run(&self, program: &str, args: &[&str]) -> std::process::Output {
        Command::new("timeout")
            .args([
                "-k",
                "5",
                "60",
                "nsenter",
                "-t",
                &self.leader.to_string(),
                "-a",
                program,
            ])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|error| panic!("nsenter {program} {args:?}: {error}"))
    }

    fn systemctl(&self, args: &[&str]) -> String {
        let output = self.run("systemctl", args);
        assert!(
            output.status.success(),
            "systemctl {args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    fn show(&self, unit: &str, property: &str) -> String {
        self.systemctl(&["show", "-P", property, unit])
    }

    /// The unit's journal, message text only.
    fn journal(&self, unit: &str) -> Vec<String> {
        let output = self.run("journalctl", &["-q", "--no-pager", "-o", "cat", "-u", unit]);
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Polls the journal until it has `count` lines containing `needle`.
    fn wait_for_journal(&self, unit: &str, needle: &str, count: usize) -> Vec<String> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let journal = self.journal(unit);
            let found: Vec<String> = journal
                .iter()
                .filter(|line| line.contains(needle))
                .cloned()
                .collect();
            if found.len() >= count {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "{unit}: {} of {count} journal lines with {needle:?} after {PATIENCE:?}:\n{}",
                found.len(),
                journal.join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether process `pid` (of the container's pid namespace) is still there.
    fn alive(&self, pid: u32) -> bool {
        self.run("kill", &["-0", &pid.to_string()]).status.success()
    }
}

/// deploy/`name` as the project ships it.
fn deploy_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

#[test]
#[ignore = "needs a systemd container: run scripts/systemd/run-tests"]
fn systemd_reloads_upgrade_under_load() {
    let Some(container) = Container::require() else {
        return;
    };
    let upgrades = upgrade_count();
    let directory = container.state.join("cases").join("upgrade");
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory).unwrap();
    let binary = directory.join("upgrade_service");
    replace_file(
        &binary,
        &std::fs::read(env!("CARGO_BIN_EXE_upgrade_service")).unwrap(),
        true,
    );
    let address = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let health = SocketAddr::from(([127, 0, 0, 1], free_port()));
    // deploy/graceful-service.service as it ships, deploy/graceful-service-upgrade.conf as it
    // ships, and the test's own paths and ports.
    let unit = "gs-upgrade.service";
    let units = PathBuf::from(format!(
        "/proc/{}/root/run/systemd/system",
        container.leader
    ));
    std::fs::write(units.join(unit), deploy_file("graceful-service.service")).unwrap();
    let drop_ins = units.join(format!("{unit}.d"));
    std::fs::create_dir_all(&drop_ins).unwrap();
    std::fs::write(
        drop_ins.join("40-upgrade.conf"),
        deploy_file("graceful-service-upgrade.conf"),
    )
    .unwrap();
    let dir = directory.display();
    std::fs::write(
        drop_ins.join("50-test.conf"),
        format!(
            "[Service]\n\
             ExecStart=\n\
             ExecStart={binary}\n\
             Environment=LISTEN_ADDR={address}\n\
             Environment=GRACEFUL_HEALTH_ADDR={health}\n\
             Environment=GRACEFUL_REPORT=json\n\
             ExecStopPost=/bin/sh -c 'echo $SERVICE_RESULT/$EXIT_CODE/$EXIT_STATUS > {dir}/result'\n",
            binary = binary.display(),
        ),
    )
    .unwrap();
    container.systemctl(&["daemon-reload"]);
    container.systemctl(&["start", unit]);
    let first: u32 = container.show(unit, "MainPID").parse().unwrap();

    let mut generations = vec![first];
    let mut reload_times = Vec::new();
    let counts = runtime().block_on(async {
        let load = Load::start(address, ALL_CLIENTS);
        load.wait_for_answers(50).await;
        for index in 0..upgrades {
            let old = *generations.last().unwrap();
            let asked = Instant::now();
            let reload = tokio::task::spawn_blocking({
                let container = Container {
                    leader: container.leader,
                    state: container.state.clone(),
                };
                move || container.systemctl(&["reload", unit])
            });
            reload.await.unwrap();
            // ExecReload= only sends the signal: MainPID changes once the new process is ready
            // (MAINPID= and READY=1 from the old one), and the unit is active again.
            let deadline = Instant::now() + PATIENCE;
            let new = loop {
                let main: u32 = container.show(unit, "MainPID").parse().unwrap();
                if main != old && container.show(unit, "ActiveState") == "active" {
                    break main;
                }
                assert!(
                    Instant::now() < deadline,
                    "MainPID still {main} after reload {}:\n{}",
                    index + 1,
                    container.journal(unit).join("\n")
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            reload_times.push(asked.elapsed());
            container.wait_for_journal(unit, &format!("ready {new}"), 1);
            assert_eq!(readiness(health).await, Ok(200));
            // The old generation reports, with cause upgrade to the new one, and exits 0.
            let report =
                container.wait_for_journal(unit, &format!(r#""kind":"upgrade","pid":{new}"#), 1);
            assert!(report[0].contains(r#""exit_code":0"#), "{}", report[0]);
            let deadline = Instant::now() + PATIENCE;
            while container.alive(old) {
                assert!(Instant::now() < deadline, "generation {old} still runs");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            generations.push(new);
            load.wait_for_answers(20).await;
        }
        load.finish().await
    });
    let last = *generations.last().unwrap();
    container.systemctl(&["stop", unit]);
    let result = std::fs::read_to_string(directory.join("result")).unwrap_or_default();
    let journal = container.journal(unit);
    let rejected = journal
        .iter()
        .filter(|line| line.contains("reception only permitted for main PID"))
        .count();
    print_counts(
        &format!("SYSTEMD: {upgrades} x systemctl reload"),
        &counts,
        generations.len(),
    );
    let mut times = reload_times.clone();
    times.sort();
    println!(
        "  systemctl reload to MainPID naming the new process: median {:?}, max {:?}; MainPID {first} -> {last} through {} processes; \
         systemctl stop: ExecStopPost {}; notifications systemd dropped from a process not yet the main one: {rejected}",
        times[times.len() / 2],
        times[times.len() - 1],
        generations.len(),
        result.trim()
    );
    assert_eq!(result.trim(), "success/exited/0", "{}", journal.join("\n"));
    let last_report = journal
        .iter()
        .rev()
        .find(|line| line.contains("graceful_report"))
        .unwrap();
    assert!(
        last_report.contains(r#""kind":"signal","signal":"SIGTERM""#)
            && last_report.contains(r#""exit_code":0"#),
        "{last_report}"
    );
    assert!(
        journal
            .iter()
            .all(|line| !line.contains("with signal SIGKILL")),
        "systemd killed a process:\n{}",
        journal.join("\n")
    );
    assert_eq!(counts.refused, 0, "{}", counts.failures_summary());
    assert_eq!(counts.failed, 0, "{}", counts.failures_summary());
    let silent: Vec<&u32> = generations
        .iter()
        .filter(|pid| !counts.by_pid.contains_key(pid))
        .collect();
    assert!(
        silent.is_empty(),
        "generations that answered nothing: {silent:?}"
    );
    assert!(
        journal.iter().all(|line| !line.contains("upgrade failed")),
        "{}",
        journal.join("\n")
    );
}
