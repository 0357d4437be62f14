//! A real systemd manager for tests/systemd_real.rs: the container that scripts/systemd/run-tests
//! boots (systemd-nspawn; its PID 1 reached with `nsenter -t PID -a`), the deploy/ units
//! installed in it under per-test names with drop-ins that change only what a test must, the
//! journal read back with systemd's own timestamps. The load in front of the units is load.rs
//! with a new connection per request and refusals retried.
//!
//! The container shares the host's network, so clients on the host reach the services on
//! loopback. Everything a test keeps (binaries, databases, timelines) is under the state
//! folder that the script bind-mounts into the container at the same path.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::require::require;
use crate::{fixture_path, free_port, loopback};

/// The longest any one `systemctl` call may take: far above what any test asks of systemd.
const COMMAND_LIMIT: Duration = Duration::from_secs(60);

/// How to reach the container that scripts/systemd/run-tests booted.
pub struct Container {
    /// The host pid of the container's PID 1 (systemd).
    leader: u32,
    /// The folder shared with the container, at the same path on both sides.
    state: PathBuf,
    /// Held for the whole test: the tests measure timings, and take turns.
    _turn: MutexGuard<'static, ()>,
}

/// Where the test finds the container: set by scripts/systemd/run-tests.
const LEADER_VARIABLE: &str = "GRACEFUL_SYSTEMD_LEADER";
const STATE_VARIABLE: &str = "GRACEFUL_SYSTEMD_STATE";

impl Container {
    /// The container, or `None` after a loud skip (a failure under `CI=true`) when the test was
    /// not started by scripts/systemd/run-tests or the container is gone.
    pub fn require() -> Option<Container> {
        static TURNS: Mutex<()> = Mutex::new(());
        let leader = std::env::var(LEADER_VARIABLE)
            .ok()
            .and_then(|pid| pid.parse::<u32>().ok());
        let state = std::env::var_os(STATE_VARIABLE).map(PathBuf::from);
        let reachable = leader.is_some_and(|pid| {
            Path::new(&format!("/proc/{pid}/root/run/systemd/private")).exists()
        });
        let need = format!(
            "a running systemd container (${LEADER_VARIABLE}, ${STATE_VARIABLE}): run scripts/systemd/run-tests, which boots one"
        );
        if !require(
            &need,
            reachable && state.as_ref().is_some_and(|dir| dir.is_dir()),
        ) {
            return None;
        }
        let turn = TURNS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Some(Container {
            leader: leader.unwrap(),
            state: state.unwrap(),
            _turn: turn,
        })
    }

    /// `program args` inside the container, bounded by a minute: far above what any test asks
    /// of systemd.
    pub fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut command = Command::new("timeout");
        command
            .args(["-k", "5", &COMMAND_LIMIT.as_secs().to_string()])
            .args(["nsenter", "-t", &self.leader.to_string(), "-a", program])
            .args(args)
            .stdin(Stdio::null());
        command
    }

    /// Runs `program args` inside the container and returns its output, whatever its status.
    pub fn run(&self, program: &str, args: &[&str]) -> Output {
        self.command(program, args)
            .output()
            .unwrap_or_else(|error| panic!("cannot run nsenter ... {program} {args:?}: {error}"))
    }

    /// `systemctl args`, which must succeed; its stdout.
    pub fn systemctl(&self, args: &[&str]) -> String {
        let output = self.run("systemctl", args);
        assert!(
            output.status.success(),
            "systemctl {args:?}: {}\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// `systemctl args` in the background, for a test that watches it block.
    pub fn spawn_systemctl(&self, args: &[&str]) -> Child {
        self.command("systemctl", args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start systemctl")
    }

    /// One property of `unit`, as `systemctl show -P` gives it.
    pub fn show(&self, unit: &str, property: &str) -> String {
        self.systemctl(&["show", "-P", property, unit])
    }

    /// Waits until `property` of `unit` is `wanted`; panics with what it was after `limit`.
    pub fn wait_for_property(&self, unit: &str, property: &str, wanted: &str, limit: Duration) {
        let mut last = String::new();
        let found = wait_until(limit, || {
            last = self.show(unit, property);
            last == wanted
        });
        assert!(
            found,
            "{unit}: {property} still {last:?} after {limit:?}, not {wanted:?}; journal:\n{}",
            self.journal_text(unit)
        );
    }

    /// The journal of `unit`: systemd's lines about it and the unit's own output, each with its
    /// CLOCK_MONOTONIC timestamp in seconds (`journalctl -o short-monotonic`).
    pub fn journal(&self, unit: &str) -> Vec<JournalLine> {
        let output = self.run(
            "journalctl",
            &["-q", "--no-pager", "-o", "short-monotonic", "-u", unit],
        );
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(JournalLine::parse)
            .collect()
    }

    /// [`Container::journal`] as text, one `[SECONDS] LINE` a line, for a failure message.
    pub fn journal_text(&self, unit: &str) -> String {
        self.journal(unit)
            .iter()
            .map(|line| format!("[{:.3}] {}", line.at, line.text))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Waits until the journal of `unit` has a line containing `needle`; returns that line.
    pub fn wait_for_journal(&self, unit: &str, needle: &str, limit: Duration) -> JournalLine {
        self.wait_for_journal_nth(unit, needle, 1, limit)
    }

    /// Waits until the journal of `unit` has `nth` lines containing `needle` (counting from 1);
    /// returns the `nth`.
    pub fn wait_for_journal_nth(
        &self,
        unit: &str,
        needle: &str,
        nth: usize,
        limit: Duration,
    ) -> JournalLine {
        let mut found = None;
        wait_until(limit, || {
            found = self
                .journal(unit)
                .into_iter()
                .filter(|line| line.text.contains(needle))
                .nth(nth - 1);
            found.is_some()
        });
        found.unwrap_or_else(|| {
            panic!(
                "{unit}: no journal line with {needle:?} within {limit:?}:\n{}",
                self.journal_text(unit)
            )
        })
    }

    /// The path of `relative` under the container's root, as the host sees it.
    fn container_path(&self, relative: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.leader)).join(relative)
    }

    /// Puts the unit file `text` at /run/systemd/system/`name` in the container, and `drop_in`
    /// beside it as `name`.d/50-test.conf (what `systemctl edit --runtime` would write).
    pub fn install_unit(&self, name: &str, text: &str, drop_in: &str) {
        let directory = self.container_path("run/systemd/system");
        std::fs::write(directory.join(name), text).expect("write the unit");
        let drop_ins = directory.join(format!("{name}.d"));
        std::fs::create_dir_all(&drop_ins).unwrap();
        std::fs::write(drop_ins.join("50-test.conf"), drop_in).expect("write the drop-in");
    }

    /// A copy of this package's binary `name` in the state folder, which the container sees;
    /// returns its path. The container's own root has only the host's /usr.
    pub fn install_binary(&self, name: &str) -> PathBuf {
        let directory = self.state.join("bin");
        std::fs::create_dir_all(&directory).unwrap();
        let path = directory.join(name);
        let partial = directory.join(format!(".{name}.partial"));
        std::fs::copy(fixture_path(name), &partial).expect("copy the binary");
        // A rename: a unit still running the previous copy keeps its own file.
        std::fs::rename(&partial, &path).unwrap();
        path
    }

    /// A folder of its own for the test `name`, emptied.
    pub fn case_directory(&self, name: &str) -> PathBuf {
        let directory = self.state.join("cases").join(name);
        let _ = std::fs::remove_dir_all(&directory);
        std::fs::create_dir_all(&directory).unwrap();
        directory
    }
}

/// One line of the journal.
#[derive(Debug, Clone)]
pub struct JournalLine {
    /// CLOCK_MONOTONIC, in seconds.
    pub at: f64,
    /// The line, after its timestamp.
    pub text: String,
}

impl JournalLine {
    fn parse(line: &str) -> Option<JournalLine> {
        let rest = line.strip_prefix('[')?;
        let (at, text) = rest.split_once(']')?;
        Some(JournalLine {
            at: at.trim().parse().ok()?,
            text: text.trim().to_owned(),
        })
    }
}

/// The first line of `journal` containing `needle`.
pub fn find_line<'a>(journal: &'a [JournalLine], needle: &str) -> Option<&'a JournalLine> {
    journal.iter().find(|line| line.text.contains(needle))
}

/// How many lines of `journal` contain `needle`.
pub fn count_lines(journal: &[JournalLine], needle: &str) -> usize {
    journal
        .iter()
        .filter(|line| line.text.contains(needle))
        .count()
}

/// Polls `condition` every 50 ms until it holds or `limit` has passed; returns whether it held.
pub fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// deploy/`name` as the project ships it.
pub fn deploy_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// One service unit under test: deploy/graceful-service.service installed as `NAME.service`
/// with a drop-in that points it at a binary of this package, its ports and its folder, records
/// each start and each stop's result in a timeline, and adds the test's own `settings`.
pub struct TestUnit {
    /// The unit's name, `gs-<test>.service`.
    pub name: String,
    /// The test's own folder, shared with the container.
    pub directory: PathBuf,
    /// Where the service listens (and the socket unit, with one).
    pub port: u16,
    /// For the clean-up of a test that failed half-way.
    leader: u32,
}

impl Drop for TestUnit {
    fn drop(&mut self) {
        // A failed test must not leave its service (or its socket) running into the next test.
        if std::thread::panicking() {
            let socket = self.name.replace(".service", ".socket");
            let _ = Command::new("timeout")
                .args(["10", "nsenter", "-t", &self.leader.to_string(), "-a"])
                .args(["systemctl", "kill", "--signal=SIGKILL", &self.name, &socket])
                .output();
        }
    }
}

impl TestUnit {
    /// Installs `gs-<case>.service` running `binary`; `settings` are more `[Service]` lines, in
    /// which `{dir}` stands for the test's folder.
    pub fn install(container: &Container, case: &str, binary: &str, settings: &[&str]) -> TestUnit {
        let directory = container.case_directory(case);
        let binary = container.install_binary(binary);
        let port = free_port();
        let name = format!("gs-{case}.service");
        let dir = directory.display();
        let mut drop_in = format!(
            "# Only what the test must change: paths and ports, the result recorder, and its case.\n\
             [Service]\n\
             ExecStart=\n\
             ExecStart={binary}\n\
             Environment=LISTEN_ADDR=127.0.0.1:{port}\n\
             Environment=GRACEFUL_HEALTH_ADDR=127.0.0.1:{health}\n\
             Environment=DATABASE_URL=sqlite://{dir}/items.db\n\
             ExecStartPre=/bin/sh -c 'echo start >> {dir}/timeline'\n\
             ExecStopPost=/bin/sh -c 'echo stop $SERVICE_RESULT/$EXIT_CODE/$EXIT_STATUS >> {dir}/timeline'\n",
            binary = binary.display(),
            health = free_port(),
        );
        for setting in settings {
            drop_in.push_str(&setting.replace("{dir}", &dir.to_string()));
            drop_in.push('\n');
        }
        container.install_unit(&name, &deploy_file("graceful-service.service"), &drop_in);
        container.systemctl(&["daemon-reload"]);
        TestUnit {
            name,
            directory,
            port,
            leader: container.leader,
        }
    }

    /// Installs deploy/graceful-service.socket as this unit's socket (`gs-<test>.socket`, which
    /// activates `gs-<test>.service`), listening on this unit's port; returns its name.
    pub fn install_socket(&self, container: &Container) -> String {
        let name = self.name.replace(".service", ".socket");
        let drop_in = format!(
            "# Only the port changes.\n[Socket]\nListenStream=\nListenStream=127.0.0.1:{}\n",
            self.port
        );
        container.install_unit(&name, &deploy_file("graceful-service.socket"), &drop_in);
        container.systemctl(&["daemon-reload"]);
        name
    }

    /// The service's address on loopback.
    pub fn address(&self) -> SocketAddr {
        loopback(self.port)
    }

    /// The timeline: `start` at each start (restarts included), `stop RESULT/CODE/STATUS` at
    /// each stop, from ExecStartPre and ExecStopPost.
    pub fn timeline(&self) -> Vec<String> {
        std::fs::read_to_string(self.directory.join("timeline"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Waits until the timeline has `count` lines; returns it.
    pub fn wait_for_timeline(&self, count: usize, limit: Duration) -> Vec<String> {
        let mut timeline = Vec::new();
        let done = wait_until(limit, || {
            timeline = self.timeline();
            timeline.len() >= count
        });
        assert!(
            done,
            "{}: timeline {timeline:?} has not {count} lines after {limit:?}",
            self.name
        );
        timeline
    }

    /// The service's SQLite database.
    pub fn database(&self) -> PathBuf {
        self.directory.join("items.db")
    }
}

/// A duration in seconds with milliseconds, for the record.
pub fn seconds(duration: Duration) -> String {
    format!("{:.3} s", duration.as_secs_f64())
}
