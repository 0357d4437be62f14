//! Real Docker for tests/docker.rs: the private daemon scripts/docker-tests starts
//! (`$DOCKER_HOST`), the image built from deploy/Dockerfile itself, containers run, stopped,
//! killed and inspected through the `docker` CLI as a user would. The load in front of them is
//! load.rs; HAProxy is haproxy.rs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::http::HeldRequest;
use crate::require::require;
use crate::{free_port, loopback, Process};

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
    /// The tag it was built under.
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
    /// An empty directory for the test `name` (this process's id added).
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

/// The service's two ports. The image listens on 0.0.0.0:3000 and :8081; with `--network host`
/// the tests give each container free loopback ports instead, so that runs can overlap.
#[derive(Clone, Copy, Debug)]
pub struct Ports {
    /// `LISTEN_ADDR`'s port.
    pub http: u16,
    /// `GRACEFUL_HEALTH_ADDR`'s port.
    pub health: u16,
}

impl Ports {
    /// Two ports free at the time of asking.
    pub fn free() -> Ports {
        Ports {
            http: free_port(),
            health: free_port(),
        }
    }

    /// The service's address on loopback.
    pub fn address(self) -> SocketAddr {
        loopback(self.http)
    }

    /// The health endpoint's address on loopback.
    pub fn health_address(self) -> SocketAddr {
        loopback(self.health)
    }
}

/// A container of the image, removed (`docker rm -f`) when dropped, so that a failed test
/// leaves none behind.
pub struct Container {
    /// Its `--name`.
    pub name: String,
    /// The ports it listens on.
    pub ports: Ports,
    /// `docker logs --follow`: the container's lines (stdout and stderr) as they come.
    follower: Process,
}

impl Container {
    /// `docker run -d --pull never --network host` of the image, with `data` bind-mounted at
    /// `/data`, the static service at the entrypoint, the ports, and `env` on top of the image's;
    /// `--cpus $TEST_DOCKER_CPUS` when that is set.
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
        // scripts/adverse/starved-cpus: each container at a CPU limit, as a pod would be.
        let cpus = std::env::var("TEST_DOCKER_CPUS").ok();
        if let Some(cpus) = &cpus {
            args.extend(["--cpus", cpus]);
        }
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
        let follower = Process::start(
            &format!("docker logs --follow {name}"),
            "sh",
            &["-c", "exec docker logs --follow \"$0\" 2>&1", name],
            &[],
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
        self.follower.wait_for_stdout(needle).text
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
    /// The container's stdout.
    pub stdout: String,
    /// The container's stderr.
    pub stderr: String,
}

impl Logs {
    /// Whether stdout or stderr contains `needle`.
    pub fn has(&self, needle: &str) -> bool {
        self.stdout.contains(needle) || self.stderr.contains(needle)
    }

    /// Panics with the logs unless they contain `needle`.
    pub fn assert_has(&self, needle: &str) {
        assert!(self.has(needle), "docker logs have no {needle:?}:\n{self}");
    }

    /// Panics with the logs if they contain `needle`.
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

/// Once the service listens, sends `GET /stuck`, which the service never answers, and waits
/// until the service has entered it; the request stays in flight while the returned value lives.
pub fn start_stuck_request(container: &Container) -> HeldRequest {
    // The service's own line, once its listener is bound (graceful's health endpoint, which
    // also says "listening", comes up earlier).
    container.wait_for_line("listening address=");
    let held = HeldRequest::send(container.ports.address(), "/stuck");
    container.wait_for_line("stuck request entered");
    held
}
