//! Real Docker for tests/docker.rs: the private daemon scripts/docker-tests starts
//! (`$DOCKER_HOST`), the image built from deploy/Dockerfile itself, containers run, stopped,
//! killed and inspected through the `docker` CLI as a user would, and the clients that load
//! them: keep-alive HTTP/1.1 workers, HAProxy in front, and the SQLite rows behind.
//!
//! The load and HAProxy parts take plain addresses, not processes, so that any test can use
//! them; tests/http_service.rs and tests/rolling_restart.rs still carry their own copies.

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;

use super::clients::Client;
use super::require::{program_on_path, require};
use super::PATIENCE;

/// Where every piece of state lives: the daemon's (scripts/docker-tests) and the tests' bind
/// mounts. Never under /tmp.
pub fn state_directory() -> PathBuf {
    std::env::var_os("GRACEFUL_DOCKER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/graceful-docker"))
}

/// Runs `docker ARGS` to its end and returns its stdout; panics with its stderr on failure.
pub fn docker(args: &[&str]) -> String {
    let output = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| panic!("cannot run `docker {}`: {error}", args.join(" ")));
    assert!(
        output.status.success(),
        "`docker {}` failed ({}): {}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Whether `docker info` answers at `$DOCKER_HOST`.
fn daemon_answers() -> bool {
    Command::new("docker")
        .arg("info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// The image under test: deploy/Dockerfile's `runtime` stage on `scratch`, with a static build of
/// the service that containers mount at the image's own entrypoint.
pub struct Image {
    pub tag: String,
    /// The static (musl) `examples/service` that scripts/docker-tests built.
    pub binary: PathBuf,
    /// The image's `ENTRYPOINT`, where the binary is mounted.
    pub entrypoint: String,
}

static IMAGE: OnceLock<Image> = OnceLock::new();

impl Image {
    /// The image, built once per test binary; `None` (after a loud skip) when this machine lacks
    /// what it takes. Under `CI=true` a missing need fails instead.
    pub fn get() -> Option<&'static Image> {
        if let Some(image) = IMAGE.get() {
            return Some(image);
        }
        let host = std::env::var("DOCKER_HOST").unwrap_or_default();
        if !require(
            "a private Docker daemon named by $DOCKER_HOST (scripts/docker-tests starts one)",
            !host.is_empty(),
        ) || !require(
            &format!("a Docker daemon that answers `docker info` at DOCKER_HOST={host}"),
            daemon_answers(),
        ) {
            return None;
        }
        let binary = std::env::var_os("GRACEFUL_DOCKER_SERVICE").map(PathBuf::from);
        if !require(
            "a static build of examples/service named by $GRACEFUL_DOCKER_SERVICE (scripts/docker-tests builds it)",
            binary.as_ref().is_some_and(|binary| binary.is_file()),
        ) {
            return None;
        }
        Some(IMAGE.get_or_init(|| Image::build(binary.unwrap())))
    }

    /// `docker build --target runtime --build-arg RUNTIME=scratch -f deploy/Dockerfile`: the
    /// settings users get, with no base image to pull. The context is an empty directory: the
    /// `runtime` stage copies nothing.
    fn build(binary: PathBuf) -> Image {
        let tag = "graceful-service:docker-test".to_owned();
        let dockerfile = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/Dockerfile");
        let context = state_directory().join("empty-context");
        std::fs::create_dir_all(&context).unwrap();
        let mut command = Command::new("docker");
        command.args(["build", "--quiet", "--target", "runtime"]);
        command.args(["--build-arg", "RUNTIME=scratch", "-t", &tag, "-f"]);
        command.arg(&dockerfile).arg(&context);
        // Without buildx (Debian's docker.io has none), only the legacy builder is there.
        let buildx = Command::new("docker")
            .args(["buildx", "version"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !buildx {
            command.env("DOCKER_BUILDKIT", "0");
        }
        let output = command.output().expect("run docker build");
        assert!(
            output.status.success(),
            "docker build of {} failed: {}",
            dockerfile.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        let entrypoint = docker(&["inspect", "-f", "{{index .Config.Entrypoint 0}}", &tag]);
        Image {
            tag,
            binary,
            entrypoint,
        }
    }

    /// The value of `name` in the image's `ENV`.
    pub fn env(&self, name: &str) -> String {
        let all = docker(&[
            "inspect",
            "-f",
            "{{range .Config.Env}}{{println .}}{{end}}",
            &self.tag,
        ]);
        all.lines()
            .find_map(|entry| entry.strip_prefix(&format!("{name}=")).map(str::to_owned))
            .unwrap_or_else(|| panic!("the image sets no {name}: {all}"))
    }
}

/// A directory of the tests' own under the state directory, for a container's `/data`; made
/// empty at the start, removed at the end.
pub struct DataDirectory(pub PathBuf);

impl DataDirectory {
    pub fn new(name: &str) -> DataDirectory {
        let path = state_directory()
            .join("tests")
            .join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        DataDirectory(path)
    }

    /// The service's database, as `DATABASE_URL=sqlite:///data/items.db` puts it.
    pub fn database(&self) -> PathBuf {
        self.0.join("items.db")
    }
}

impl Drop for DataDirectory {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A loopback port free at the time of asking: containers share the host's network.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The service's two ports. The image listens on 0.0.0.0:3000 and :8081; with `--network host`
/// the tests give each container free loopback ports instead, so that runs can overlap.
#[derive(Clone, Copy, Debug)]
pub struct Ports {
    pub http: u16,
    pub health: u16,
}

impl Ports {
    pub fn free() -> Ports {
        Ports {
            http: free_port(),
            health: free_port(),
        }
    }

    pub fn address(self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.http))
    }

    pub fn health_address(self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.health))
    }
}

/// A container of the image, removed (`docker rm -f`) when dropped, so that a failed test
/// leaves none behind.
pub struct Container {
    pub name: String,
    pub ports: Ports,
    /// `docker logs --follow`: the container's lines (stdout and stderr) as they come.
    follower: Client,
}

impl Container {
    /// `docker run -d --pull never --network host` of the image, with `data` bind-mounted at
    /// `/data`, the static service at the entrypoint, the ports, and `env` on top of the image's.
    pub fn run(
        image: &Image,
        name: &str,
        data: &DataDirectory,
        ports: Ports,
        env: &[(&str, &str)],
    ) -> Container {
        let _ = Command::new("docker")
            .args(["rm", "-f", name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let volume = format!("{}:/data", data.0.display());
        let binary = format!("{}:{}:ro", image.binary.display(), image.entrypoint);
        let listen = format!("LISTEN_ADDR=127.0.0.1:{}", ports.http);
        let health = format!("GRACEFUL_HEALTH_ADDR=127.0.0.1:{}", ports.health);
        let mut args = vec![
            "run",
            "-d",
            "--pull",
            "never",
            "--network",
            "host",
            "--name",
            name,
            "-v",
            &volume,
            "-v",
            &binary,
            "-e",
            &listen,
            "-e",
            &health,
        ];
        let pairs: Vec<String> = env
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect();
        for pair in &pairs {
            args.extend(["-e", pair]);
        }
        args.push(&image.tag);
        docker(&args);
        // Both streams as one: graceful writes its start-up lines to stderr before the
        // service's subscriber exists, the service logs to stdout.
        let follower = Client::start(
            &format!("docker logs --follow {name}"),
            "sh",
            &["-c", "exec docker logs --follow \"$0\" 2>&1", name],
        );
        Container {
            name: name.to_owned(),
            ports,
            follower,
        }
    }

    /// Waits until a line the container wrote, on stdout or stderr, contains `needle`, and
    /// returns that line.
    pub fn wait_for_line(&self, needle: &str) -> String {
        self.follower.wait_for_line(needle).text
    }

    /// `docker stop [-t SECONDS]`, run to its end: how long it took.
    pub fn stop(&self, timeout_seconds: Option<u32>) -> Duration {
        stop(&self.name, timeout_seconds)
    }

    /// [`Container::stop`] on a thread of its own, for a test that acts during the stop.
    pub fn stop_in_background(&self, timeout_seconds: u32) -> std::thread::JoinHandle<Duration> {
        let name = self.name.clone();
        std::thread::spawn(move || stop(&name, Some(timeout_seconds)))
    }

    /// `docker kill -s SIGNAL`.
    pub fn kill(&self, signal: &str) {
        docker(&["kill", "-s", signal, &self.name]);
    }

    /// The exit code Docker recorded (`docker inspect -f '{{.State.ExitCode}}'`), once the
    /// container has stopped.
    pub fn exit_code(&self) -> i32 {
        let running = docker(&["inspect", "-f", "{{.State.Running}}", &self.name]);
        assert_eq!(running, "false", "{} is still running", self.name);
        docker(&["inspect", "-f", "{{.State.ExitCode}}", &self.name])
            .parse()
            .unwrap()
    }

    /// Everything `docker logs` has for the container: stdout, then stderr.
    pub fn logs(&self) -> Logs {
        let output = Command::new("docker")
            .args(["logs", &self.name])
            .output()
            .expect("run docker logs");
        assert!(output.status.success(), "docker logs {}", self.name);
        Logs {
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// `docker stop [-t SECONDS] NAME`, run to its end: how long it took.
fn stop(name: &str, timeout_seconds: Option<u32>) -> Duration {
    let started = Instant::now();
    match timeout_seconds {
        Some(seconds) => docker(&["stop", "-t", &seconds.to_string(), name]),
        None => docker(&["stop", name]),
    };
    started.elapsed()
}

/// What `docker logs` printed for a container.
pub struct Logs {
    pub stdout: String,
    pub stderr: String,
}

impl Logs {
    pub fn has(&self, needle: &str) -> bool {
        self.stdout.contains(needle) || self.stderr.contains(needle)
    }

    pub fn assert_has(&self, needle: &str) {
        assert!(self.has(needle), "docker logs have no {needle:?}:\n{self}");
    }

    pub fn assert_lacks(&self, needle: &str) {
        assert!(!self.has(needle), "docker logs have {needle:?}:\n{self}");
    }

    /// The first line containing `needle`, with its position in stdout.
    pub fn stdout_index(&self, needle: &str) -> usize {
        self.stdout
            .lines()
            .position(|line| line.contains(needle))
            .unwrap_or_else(|| panic!("stdout has no {needle:?}:\n{self}"))
    }
}

impl Logs {
    /// graceful's text report: its lines of stdout, from "shutdown report" on.
    pub fn report(&self) -> Vec<&str> {
        let start = self.stdout_index("shutdown report");
        self.stdout.lines().skip(start).collect()
    }
}

impl std::fmt::Display for Logs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "--- stdout\n{}--- stderr\n{}", self.stdout, self.stderr)
    }
}

/// Once the service listens, opens a connection and sends `GET /stuck`, which the service never answers; the connection
/// stays open (and the request in flight) until the returned stream is dropped.
pub fn start_stuck_request(container: &Container) -> std::net::TcpStream {
    use std::io::Write;
    // The service's own line, once its listener is bound (graceful's health endpoint, which
    // also says "listening", comes up earlier).
    container.wait_for_line("listening address=");
    let mut stream = std::net::TcpStream::connect(container.ports.address()).unwrap();
    stream
        .write_all(b"GET /stuck HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .unwrap();
    container.wait_for_line("stuck request entered");
    stream
}

/// One HTTP/1.1 connection, kept alive until the server says `Connection: close`.
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
}

/// A complete response: its status, and whether it closes the connection.
pub struct Answer {
    pub status: StatusCode,
    pub closes: bool,
}

impl Connection {
    pub async fn open(address: SocketAddr) -> std::io::Result<Connection> {
        let stream = tokio::net::TcpStream::connect(address).await?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(connection);
        Ok(Connection { sender })
    }

    pub async fn send(&mut self, request: Request<Full<Bytes>>) -> Result<Answer, hyper::Error> {
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let status = response.status();
        let closes = response
            .headers()
            .get(hyper::header::CONNECTION)
            .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"close"));
        // The whole body, so that "complete response" means complete.
        response.into_body().collect().await?;
        Ok(Answer { status, closes })
    }
}

pub fn get(path: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header("host", "localhost")
        .body(Full::default())
        .unwrap()
}

/// `POST /items`: one row, committed after `work_ms` inside its transaction.
pub fn post_item(id: &str, work_ms: u64) -> Request<Full<Bytes>> {
    Request::post(format!("/items?work_ms={work_ms}"))
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(format!(
            r#"{{"id":"{id}","body":"payload {id}"}}"#
        ))))
        .unwrap()
}

/// Polls `/readyz` until it answers `status`; every poll a full round trip, bounded in time.
pub async fn wait_for_readiness(health: SocketAddr, status: u16) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while tokio::time::Instant::now() < deadline {
        if let Ok(mut connection) = Connection::open(health).await {
            if let Ok(answer) = connection.send(get("/readyz")).await {
                if answer.status.as_u16() == status {
                    return;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{health}/readyz never answered {status}");
}

/// What happened to each request of a load.
#[derive(Default, Debug)]
pub struct Tally {
    /// Requests written to a connection.
    pub sent: usize,
    /// The ids of the requests answered 2xx.
    pub ok_ids: BTreeSet<String>,
    pub non_2xx: usize,
    /// Requests sent that got no complete response.
    pub errors: usize,
    /// Connections refused: no request was sent. A worker stops at its first, which is how a
    /// load straight at one service ends once the service stops accepting.
    pub refused: usize,
    /// Each failed request, for the record.
    pub failures: Vec<String>,
}

impl Tally {
    /// Requests sent and lost: answered with an error status, or not answered at all.
    pub fn failed(&self) -> usize {
        self.non_2xx + self.errors
    }

    fn add(&mut self, part: Tally) {
        self.sent += part.sent;
        self.ok_ids.extend(part.ok_ids);
        self.non_2xx += part.non_2xx;
        self.errors += part.errors;
        self.refused += part.refused;
        self.failures.extend(part.failures);
    }
}

/// A steady load of `POST /items` from keep-alive workers, each request with an id of its own.
pub struct Load {
    stop: Arc<AtomicBool>,
    completed: Arc<AtomicUsize>,
    workers: Vec<tokio::task::JoinHandle<Tally>>,
}

impl Load {
    pub fn start(address: SocketAddr, workers: usize, tag: &str, work_ms: u64) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let completed = Arc::new(AtomicUsize::new(0));
        let workers = (0..workers)
            .map(|index| {
                let id_prefix = format!("{tag}-w{index}");
                let (stop, completed) = (stop.clone(), completed.clone());
                tokio::spawn(worker(address, id_prefix, work_ms, stop, completed))
            })
            .collect();
        Load {
            stop,
            completed,
            workers,
        }
    }

    /// Waits until `count` requests have completed, whatever their outcome.
    pub async fn wait_for_completed(&self, count: usize) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while self.completed.load(Ordering::Relaxed) < count {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the load never got going"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Tells the workers to stop after their current request, and adds up what they saw.
    pub async fn finish(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        let mut tally = Tally::default();
        for worker in self.workers {
            let part = tokio::time::timeout(PATIENCE, worker)
                .await
                .expect("a load worker hung")
                .unwrap();
            tally.add(part);
        }
        tally
    }
}

async fn worker(
    address: SocketAddr,
    id_prefix: String,
    work_ms: u64,
    stop: Arc<AtomicBool>,
    completed: Arc<AtomicUsize>,
) -> Tally {
    let mut tally = Tally::default();
    let mut connection: Option<Connection> = None;
    while !stop.load(Ordering::Relaxed) {
        if connection.is_none() {
            match Connection::open(address).await {
                Ok(opened) => connection = Some(opened),
                Err(_) => {
                    tally.refused += 1;
                    break;
                }
            }
        }
        let id = format!("{id_prefix}-{}", tally.sent);
        tally.sent += 1;
        let outcome = connection
            .as_mut()
            .unwrap()
            .send(post_item(&id, work_ms))
            .await;
        match outcome {
            Ok(answer) => {
                if answer.closes {
                    connection = None;
                }
                if answer.status.is_success() {
                    tally.ok_ids.insert(id);
                } else {
                    tally.non_2xx += 1;
                    tally.failures.push(format!("{id}: {}", answer.status));
                }
            }
            Err(error) => {
                connection = None;
                tally.errors += 1;
                tally.failures.push(format!("{id}: {error}"));
            }
        }
        completed.fetch_add(1, Ordering::Relaxed);
    }
    tally
}

/// The ids in the database at `path`, after `PRAGMA integrity_check` has passed.
pub async fn database_rows(path: &Path) -> BTreeSet<String> {
    use sqlx::Connection as _;
    let mut connection = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    assert_eq!(integrity, "ok");
    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM items")
        .fetch_all(&mut connection)
        .await
        .unwrap();
    ids.into_iter().collect()
}

/// HAProxy: `$HAPROXY` when set, else `haproxy` on PATH.
pub fn haproxy_program() -> Option<PathBuf> {
    match std::env::var_os("HAPROXY") {
        Some(path) => Some(PathBuf::from(path)).filter(|path| path.is_file()),
        None => program_on_path("haproxy"),
    }
}

/// HAProxy checks every 100 ms and marks a server down after 2 failures: detection within
/// 300 ms, well inside a 1 s pre-stop.
const CHECK_INTERVAL_MS: u64 = 100;

/// A real HAProxy on loopback in front of named backends: active `/readyz` checks on each
/// backend's health port, and `retries 0`, so that no failure is hidden from the clients.
pub struct Haproxy {
    child: Child,
    pub port: u16,
    stats_port: u16,
}

impl Haproxy {
    pub fn start(program: &Path, directory: &Path, backends: &[(&str, Ports)]) -> Haproxy {
        let port = free_port();
        let stats_port = free_port();
        let servers: String = backends
            .iter()
            .map(|(name, ports)| {
                format!(
                    "    server {name} 127.0.0.1:{} check port {} inter {CHECK_INTERVAL_MS}ms fall 2 rise 1\n",
                    ports.http, ports.health
                )
            })
            .collect();
        let config = format!(
            "global\n    maxconn 1000\n\
             defaults\n    mode http\n    retries 0\n    timeout connect 1s\n    timeout client 30s\n    timeout server 30s\n\
             frontend web\n    bind 127.0.0.1:{port}\n    default_backend services\n\
             backend services\n    balance roundrobin\n    option httpchk GET /readyz\n    http-check expect status 200\n{servers}\
             listen stats\n    bind 127.0.0.1:{stats_port}\n    stats enable\n    stats uri /stats\n"
        );
        let path = directory.join("haproxy.cfg");
        std::fs::write(&path, config).unwrap();
        let child = Command::new(program)
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start haproxy");
        Haproxy {
            child,
            port,
            stats_port,
        }
    }

    pub fn address(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Waits until HAProxy's own health checks see `server` with `status` (UP or DOWN).
    pub async fn wait_for(&self, server: &str, status: &str) {
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if let Ok(csv) = super::haproxy::stats_csv(self.stats_port).await {
                if super::haproxy::shows(&csv, "services", server, status) {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(CHECK_INTERVAL_MS / 2)).await;
        }
        panic!("HAProxy never saw {server} {status}");
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
