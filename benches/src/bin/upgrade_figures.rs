//! Upgrade cost (BENCHMARKS.md, benchmark 8): for `upgrade_hello`, a plain start-up (spawn to
//! its first answer) against an upgrade in place (SIGUSR2 to the new process's `READY`, to its
//! first answer, and to the old process's exit). Run `benches/upgrade.sh` (release build).
//! `UPGRADE_RUNS` sets the number of runs (default 20).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

fn sibling(name: &str) -> PathBuf {
    std::env::current_exe().unwrap().with_file_name(name)
}

fn free_address() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// One `GET /` on a new connection: the pid that answered, or `None` (nothing listens yet).
fn answer(address: SocketAddr) -> Option<u32> {
    let mut stream = TcpStream::connect(address).ok()?;
    stream
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.rsplit("\r\n\r\n").next()?.trim().parse().ok()
}

/// Asks until a process other than `not` answers; when.
fn first_answer_from_other_than(address: SocketAddr, not: Option<u32>) -> (u32, Instant) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(pid) = answer(address).filter(|pid| Some(*pid) != not) {
            return (pid, Instant::now());
        }
        assert!(Instant::now() < deadline, "no answer from a new process");
        // Leaves the processes under test the cores.
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Each `READY <pid>` line, as it arrives, with when.
fn ready_lines(stdout: impl Read + Send + 'static) -> mpsc::Receiver<(u32, Instant)> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(pid) = line.strip_prefix("READY ").and_then(|pid| pid.parse().ok()) {
                let _ = sender.send((pid, Instant::now()));
            }
        }
    });
    receiver
}

struct Run {
    /// Spawn to the first answer.
    plain_start: Duration,
    /// SIGUSR2 to the new process's `ready()`.
    to_ready: Duration,
    /// SIGUSR2 to the first answer from the new process.
    to_answer: Duration,
    /// SIGUSR2 to the old process's exit.
    to_old_exit: Duration,
}

fn one_run() -> Run {
    let address = free_address();
    let started = Instant::now();
    let mut child = Command::new(sibling("upgrade_hello"))
        .env("LISTEN_ADDR", address.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start upgrade_hello");
    let ready = ready_lines(child.stdout.take().unwrap());
    let (old, answered) = first_answer_from_other_than(address, None);
    let plain_start = answered - started;
    assert_eq!(ready.recv().unwrap().0, old);

    let signalled = Instant::now();
    kill(Pid::from_raw(old as i32), Signal::SIGUSR2).unwrap();
    let (new, answered) = first_answer_from_other_than(address, Some(old));
    let (ready_pid, ready_at) = ready.recv().unwrap();
    assert_eq!(ready_pid, new);
    let status = child.wait().unwrap();
    let old_exit = Instant::now();
    assert!(status.success(), "the old process exited with {status}");

    // The new process is an orphan now, reaped by this one (a subreaper).
    kill(Pid::from_raw(new as i32), Signal::SIGTERM).unwrap();
    match waitpid(Pid::from_raw(new as i32), None) {
        Ok(WaitStatus::Exited(_, 0)) => {}
        other => panic!("the new process: {other:?}"),
    }
    Run {
        plain_start,
        to_ready: ready_at - signalled,
        to_answer: answered - signalled,
        to_old_exit: old_exit - signalled,
    }
}

fn show(label: &str, mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    let at = |fraction: f64| samples[((samples.len() - 1) as f64 * fraction).round() as usize];
    let ms = |duration: Duration| duration.as_secs_f64() * 1e3;
    println!(
        "{label:<52} median {:>8.2} ms   p10 {:>8.2} ms   p90 {:>8.2} ms",
        ms(at(0.5)),
        ms(at(0.1)),
        ms(at(0.9))
    );
    at(0.5)
}

fn main() {
    nix::sys::prctl::set_child_subreaper(true).expect("PR_SET_CHILD_SUBREAPER");
    let runs: usize = std::env::var("UPGRADE_RUNS")
        .ok()
        .and_then(|runs| runs.parse().ok())
        .unwrap_or(20);
    let all: Vec<Run> = (0..runs).map(|_| one_run()).collect();
    println!("{runs} runs");
    let plain = show(
        "plain start-up: spawn to first answer",
        all.iter().map(|run| run.plain_start).collect(),
    );
    show(
        "upgrade: SIGUSR2 to the new process's ready()",
        all.iter().map(|run| run.to_ready).collect(),
    );
    let upgrade = show(
        "upgrade: SIGUSR2 to the new process's first answer",
        all.iter().map(|run| run.to_answer).collect(),
    );
    show(
        "upgrade: SIGUSR2 to the old process's exit",
        all.iter().map(|run| run.to_old_exit).collect(),
    );
    println!(
        "upgrade to first answer / plain start-up: {:.2} (of the medians)",
        upgrade.as_secs_f64() / plain.as_secs_f64()
    );
}
