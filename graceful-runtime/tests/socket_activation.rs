//! `graceful::bind` under a real socket-activation launcher: systemd's own
//! `systemd-socket-activate` passes the sockets to the `bind_probe` example, as systemd does
//! for a `.socket` unit. Skipped with a loud message where the launcher is missing, except
//! under `CI=true`, where that fails.
#![cfg(target_os = "linux")]

use std::io::Read;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a probe may take from launch to exit.
const PROBE_DEADLINE: Duration = Duration::from_secs(30);

#[test]
fn bind_adopts_the_socket_systemd_passes() {
    let Some(launcher) = socket_activate() else {
        return;
    };
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let mut command = Command::new(launcher);
    command.args(["-l", &address]).arg(probe()).arg(&address);
    let probe = Probe::spawn(command);
    assert_eq!(answer(port), "ok\n");
    let (status, log) = probe.finish();
    assert!(status.success(), "{status}\n{log}");
    assert!(
        log.contains(&format!(
            "bind({address}): adopted the socket systemd passed as fd 3, a listening TCP socket on {address}"
        )),
        "{log}"
    );
}

#[test]
fn bind_takes_the_socket_on_its_address_among_several() {
    let Some(launcher) = socket_activate() else {
        return;
    };
    let (other, wanted) = (free_port(), free_port());
    let (other, wanted) = (format!("127.0.0.1:{other}"), format!("127.0.0.1:{wanted}"));
    let mut command = Command::new(launcher);
    command
        .args(["-l", &other, "-l", &wanted])
        .arg(probe())
        .arg(&wanted);
    let probe = Probe::spawn(command);
    // The launcher starts the probe at the first connection on any of its sockets.
    let wanted_port = wanted.rsplit(':').next().unwrap().parse().unwrap();
    assert_eq!(answer(wanted_port), "ok\n");
    let (status, log) = probe.finish();
    assert!(status.success(), "{status}\n{log}");
    assert!(
        log.contains("adopted the socket systemd passed as fd 4"),
        "{log}"
    );
}

#[test]
fn bind_takes_the_one_socket_passed_on_another_address_logging_both() {
    let Some(launcher) = socket_activate() else {
        return;
    };
    let (passed, asked) = (free_port(), free_port());
    let (passed_address, asked) = (format!("127.0.0.1:{passed}"), format!("127.0.0.1:{asked}"));
    let mut command = Command::new(launcher);
    command
        .args(["-l", &passed_address])
        .arg(probe())
        .arg(&asked);
    let probe = Probe::spawn(command);
    assert_eq!(answer(passed), "ok\n");
    let (status, log) = probe.finish();
    assert!(status.success(), "{status}\n{log}");
    assert!(
        log.contains(&format!(
            "bind({asked}): adopted the socket systemd passed as fd 3, a listening TCP socket on {passed_address}, the only one left, though none listens on {asked}"
        )),
        "{log}"
    );
}

#[test]
fn bind_refuses_an_address_none_of_several_sockets_is_on_listing_them() {
    let Some(launcher) = socket_activate() else {
        return;
    };
    let (first, second, asked) = (free_port(), free_port(), free_port());
    let [first_address, second_address, asked] =
        [first, second, asked].map(|port| format!("127.0.0.1:{port}"));
    let mut command = Command::new(launcher);
    command
        .args(["-l", &first_address, "-l", &second_address])
        .arg(probe())
        .arg(&asked);
    let probe = Probe::spawn(command);
    // The probe fails, so this connection is reset: only its start-up matters.
    let _ = connect(first);
    let (status, log) = probe.finish();
    assert_eq!(status.code(), Some(1), "{log}");
    // Before, it took fd 3, on another port, without a word.
    assert!(!log.contains("adopted"), "{log}");
    assert!(
        log.contains(&format!(
            "bind({asked}): none of the 2 untaken listening TCP sockets systemd passed is on {asked} (fd 3, a listening TCP socket on {first_address}; fd 4, a listening TCP socket on {second_address})"
        )),
        "{log}"
    );
}

#[test]
fn bind_named_adopts_the_socket_of_that_name() {
    let Some(launcher) = socket_activate() else {
        return;
    };
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let mut command = Command::new(launcher);
    command
        .args(["-l", &address, "--fdname=web"])
        .arg(probe())
        .args([&address, "web"]);
    let probe = Probe::spawn(command);
    assert_eq!(answer(port), "ok\n");
    let (status, log) = probe.finish();
    assert!(status.success(), "{status}\n{log}");
    assert!(
        log.contains("bind_named(\"web\"): adopted the socket systemd passed as fd 3 \"web\""),
        "{log}"
    );
}

#[test]
fn bind_named_refuses_a_name_systemd_did_not_pass() {
    let Some(launcher) = socket_activate() else {
        return;
    };
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let mut command = Command::new(launcher);
    command
        .args(["-l", &address, "--fdname=web"])
        .arg(probe())
        .args([&address, "admin"]);
    let probe = Probe::spawn(command);
    // The probe fails, so this connection is reset: only its start-up matters.
    let _ = connect(port);
    let (status, log) = probe.finish();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("no socket named \\\"admin\\\""), "{log}");
}

#[test]
fn bind_refuses_a_udp_socket_naming_its_fd() {
    let Some(launcher) = socket_activate() else {
        return;
    };
    let (udp_port, tcp_port) = (free_udp_port(), free_port());
    let mut command = Command::new(launcher);
    command
        .args(["--datagram", "-l", &format!("127.0.0.1:{udp_port}")])
        .arg(probe())
        .arg(format!("127.0.0.1:{tcp_port}"));
    let probe = Probe::spawn(command);
    // A datagram starts the probe: send some until it has run.
    let finished = Arc::new(AtomicBool::new(false));
    let sender = std::thread::spawn({
        let finished = Arc::clone(&finished);
        move || {
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            let started = Instant::now();
            while !finished.load(Ordering::Relaxed) && started.elapsed() < PROBE_DEADLINE {
                let _ = socket.send_to(b"start", ("127.0.0.1", udp_port));
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    });
    let (status, log) = probe.finish();
    finished.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    assert_eq!(status.code(), Some(1), "{log}");
    // listenfd's reason names what it is not: a TCP socket.
    assert!(
        log.contains("fd 3, not a socket graceful can use (fd 3 is not a valid tcp socket)"),
        "{log}"
    );
    assert!(
        log.contains("needs one: ListenStream= with a port"),
        "{log}"
    );
}

#[test]
fn malformed_listen_fds_exits_78_naming_it() {
    let mut command = Command::new(probe());
    command.env("LISTEN_FDS", "two").arg("127.0.0.1:0");
    let (status, log) = Probe::spawn(command).finish();
    assert_eq!(status.code(), Some(78), "{log}");
    assert!(log.contains("LISTEN_FDS=\"two\""), "{log}");
}

#[test]
fn listen_pid_of_another_process_is_ignored() {
    let port = free_port();
    let mut command = Command::new(probe());
    command
        .env("LISTEN_FDS", "1")
        .env("LISTEN_PID", "1")
        .arg(format!("127.0.0.1:{port}"));
    let probe = Probe::spawn(command);
    assert_eq!(answer(port), "ok\n");
    let (status, log) = probe.finish();
    assert!(status.success(), "{status}\n{log}");
    assert!(log.contains("LISTEN_PID=1 names another process"), "{log}");
    assert!(log.contains("bound here"), "{log}");
}

/// A probe running, its stderr collected by a thread.
struct Probe {
    child: Child,
    stderr: JoinHandle<String>,
}

impl Probe {
    fn spawn(mut command: Command) -> Probe {
        for variable in [
            "LISTEN_FDS",
            "LISTEN_PID",
            "LISTEN_FDNAMES",
            "LISTEN_FDS_FIRST_FD",
        ] {
            if command.get_envs().all(|(name, _)| name != variable) {
                command.env_remove(variable);
            }
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start the probe");
        let mut stderr = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut log = String::new();
            let _ = stderr.read_to_string(&mut log);
            log
        });
        Probe { child, stderr }
    }

    /// Waits for the exit (killing the probe past the deadline) and returns its log.
    fn finish(mut self) -> (ExitStatus, String) {
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > PROBE_DEADLINE {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "the probe did not exit within {PROBE_DEADLINE:?}:\n{}",
                    self.stderr.join().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        (status, self.stderr.join().unwrap())
    }
}

/// Connects to the probe once its launcher listens, and reads what it answers.
fn answer(port: u16) -> String {
    let mut stream = connect(port).expect("the probe's port never accepted a connection");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

/// Connects to `port`, retrying while nothing listens on it yet.
fn connect(port: u16) -> Option<TcpStream> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) {
            return Some(stream);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// systemd's launcher, from Debian's `systemd` package; `None` (after saying so loudly) where
/// it is missing, except under `CI=true`.
fn socket_activate() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|directory| directory.join("systemd-socket-activate"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let known = [
        "/usr/bin/systemd-socket-activate",
        "/lib/systemd/systemd-socket-activate",
        "/usr/lib/systemd/systemd-socket-activate",
    ]
    .map(PathBuf::from);
    let found = on_path.into_iter().chain(known).find(|path| path.is_file());
    if found.is_none() {
        let message = "systemd-socket-activate is missing: install Debian's `systemd` package (apt-get install systemd)";
        if std::env::var("CI").is_ok_and(|ci| ci == "true") {
            panic!("{message}");
        }
        eprintln!("\n!!! SKIPPED socket activation test: {message} !!!\n");
    }
    found
}

/// The `bind_probe` example, built once for all tests into the same target directory.
fn probe() -> PathBuf {
    static PROBE: OnceLock<PathBuf> = OnceLock::new();
    PROBE
        .get_or_init(|| {
            // This test runs from <target>/<profile>/deps/; examples live in
            // <target>/<profile>/examples/.
            let test = std::env::current_exe().unwrap();
            let profile_dir = test.parent().and_then(Path::parent).unwrap();
            let target_dir = profile_dir.parent().unwrap();
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let mut build = Command::new(cargo);
            build
                .args([
                    "build",
                    "--quiet",
                    "-p",
                    "graceful-runtime",
                    "--example",
                    "bind_probe",
                ])
                .arg("--target-dir")
                .arg(target_dir)
                .current_dir(env!("CARGO_MANIFEST_DIR"));
            if profile_dir
                .file_name()
                .is_some_and(|name| name == "release")
            {
                build.arg("--release");
            }
            let status = build.status().expect("cannot run cargo");
            assert!(status.success(), "cannot build the bind_probe example");
            profile_dir.join("examples").join("bind_probe")
        })
        .clone()
}
