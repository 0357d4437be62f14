//! A service out of file descriptors: serve_app under `ulimit -n 64`, more idle clients on its
//! main port and its health port than fit. It must neither spin nor flood its log while the
//! table is full, must keep answering the probes it has, and must serve both ports again once
//! the clients leave.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use support::{Signal, PATIENCE};

const FILE_LIMIT: u32 = 64;
const MAIN_CLIENTS: usize = 80;
const HEALTH_CLIENTS: usize = 5;
/// How long the table stays full while the process's CPU time is measured.
const FULL_FOR: Duration = Duration::from_secs(2);
/// A busy spin uses a whole core; a pausing loop next to nothing.
const MAX_CPU_SHARE: f64 = 0.2;

/// What the process printed: accept failures are counted (a spinning loop writes hundreds of
/// thousands), every other line is kept.
#[derive(Default)]
struct Log {
    accept_failures: usize,
    first_failures: Vec<String>,
    lines: Vec<String>,
    streams_closed: usize,
}

#[derive(Default)]
struct Output {
    log: Mutex<Log>,
    grew: Condvar,
}

impl Output {
    /// Waits until `found` finds something in the log, and returns it.
    fn wait_for<T>(&self, what: &str, mut found: impl FnMut(&Log) -> Option<T>) -> T {
        let deadline = Instant::now() + PATIENCE;
        let mut log = self.log.lock().unwrap();
        loop {
            if let Some(value) = found(&log) {
                return value;
            }
            let left = deadline
                .checked_duration_since(Instant::now())
                .unwrap_or_else(|| panic!("no {what} within {PATIENCE:?}: {:?}", log.lines));
            log = self.grew.wait_timeout(log, left).unwrap().0;
        }
    }

    /// Waits for a line that starts with `prefix`.
    fn line_with(&self, prefix: &str) -> String {
        self.wait_for(prefix, |log| {
            let in_failures = log.first_failures.iter();
            in_failures
                .chain(&log.lines)
                .find(|line| line.starts_with(prefix))
                .cloned()
        })
    }
}

fn read_lines(stream: impl Read + Send + 'static, output: Arc<Output>) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        while reader
            .read_until(b'\n', &mut line)
            .is_ok_and(|read| read > 0)
        {
            let text = String::from_utf8_lossy(&line).trim_end().to_owned();
            line.clear();
            let mut log = output.log.lock().unwrap();
            if text.contains("accept failed") {
                log.accept_failures += 1;
                if log.first_failures.len() < 5 {
                    log.first_failures.push(text);
                }
            } else {
                log.lines.push(text);
            }
            output.grew.notify_all();
        }
        output.log.lock().unwrap().streams_closed += 1;
        output.grew.notify_all();
    });
}

/// serve_app under `ulimit -n`, run by `sh`, which `exec`s it: same pid.
struct Limited {
    pid: nix::unistd::Pid,
    exited: mpsc::Receiver<Option<i32>>,
    reaped: bool,
    output: Arc<Output>,
}

impl Limited {
    fn start(file_limit: u32) -> Limited {
        let mut child = Command::new("sh")
            .args([
                "-c",
                &format!("ulimit -n {file_limit} && exec \"$0\""),
                support::fixture_path("serve_app"),
            ])
            .env_remove("RUST_LOG")
            .env_remove("GRACEFUL_DRAIN_TIMEOUT")
            .env_remove("GRACEFUL_HOOK_TIMEOUT")
            .env_remove("GRACEFUL_GRACE")
            .env("SERVER", "serve")
            .env("GRACEFUL_PRE_STOP", "0s")
            .env("GRACEFUL_HEALTH_ADDR", "127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sh");
        let output = Arc::new(Output::default());
        read_lines(child.stdout.take().unwrap(), Arc::clone(&output));
        read_lines(child.stderr.take().unwrap(), Arc::clone(&output));
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let (exit_tx, exited) = mpsc::channel();
        // Waited for on a thread, so that the wait for the exit can be bounded.
        std::thread::spawn(move || {
            let status = child.wait().expect("wait for serve_app");
            let _ = exit_tx.send(status.code());
        });
        Limited {
            pid,
            exited,
            reaped: false,
            output,
        }
    }

    /// User and system time so far, all threads.
    fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid))
            .expect("read /proc/PID/stat");
        // The fields after `(comm)`: state is field 3, utime 14, stime 15.
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        Duration::from_secs_f64(ticks as f64 / clock_ticks_per_second())
    }

    fn accept_failures(&self) -> usize {
        self.output.log.lock().unwrap().accept_failures
    }

    fn sigterm_and_wait(mut self) -> (Option<i32>, Log) {
        nix::sys::signal::kill(self.pid, Signal::SIGTERM).expect("send SIGTERM");
        let code = self
            .exited
            .recv_timeout(PATIENCE)
            .expect("serve_app exits after SIGTERM");
        self.reaped = true;
        self.output.wait_for("end of output", |log| {
            (log.streams_closed == 2).then_some(())
        });
        let log = std::mem::take(&mut *self.output.log.lock().unwrap());
        (code, log)
    }
}

impl Drop for Limited {
    fn drop(&mut self) {
        // A test that failed half-way must not leave serve_app running.
        if !self.reaped && self.exited.try_recv().is_err() {
            let _ = nix::sys::signal::kill(self.pid, Signal::SIGKILL);
        }
    }
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}

/// One HTTP/1.1 GET on `stream`, kept alive; returns the status and body.
fn get(stream: &TcpStream, path: &str) -> (u16, String) {
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut writer = stream;
    write!(writer, "GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").expect("send a request");
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).expect("read the status line");
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {line:?}"));
    let mut length = 0;
    loop {
        line.clear();
        reader.read_line(&mut line).expect("read a header");
        let header = line.trim_end().to_ascii_lowercase();
        if header.is_empty() {
            break;
        }
        if let Some(value) = header.strip_prefix("content-length:") {
            length = value.trim().parse().expect("a content length");
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).expect("read the body");
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn connect(address: SocketAddr) -> TcpStream {
    TcpStream::connect(address).expect("connect (the kernel queues it)")
}

#[test]
fn a_full_file_table_neither_spins_nor_floods_the_log() {
    let app = Limited::start(FILE_LIMIT);
    let main: SocketAddr = {
        let line = app.output.line_with("listening on ");
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let health: SocketAddr = {
        let line = app
            .output
            .line_with("graceful: health endpoint listening on http://");
        let rest = &line[line.find("http://").unwrap() + "http://".len()..];
        rest.split(' ').next().unwrap().parse().unwrap()
    };

    // Probes that got in before the table filled, kept alive.
    let probes: Vec<TcpStream> = (0..2).map(|_| connect(health)).collect();
    for probe in &probes {
        assert_eq!(get(probe, "/livez").0, 200);
    }

    // Fill the table from the main port, then queue clients on the health port that cannot fit.
    let started_filling = Instant::now();
    let mut idle: Vec<TcpStream> = (0..MAIN_CLIENTS).map(|_| connect(main)).collect();
    app.output.line_with("graceful: serve: accept failed");
    idle.extend((0..HEALTH_CLIENTS).map(|_| connect(health)));
    app.output
        .line_with("graceful: health endpoint: accept failed");

    let cpu_before = app.cpu_time();
    let failures_before = app.accept_failures();
    let measuring = Instant::now();
    // A measurement window, not a wait for an event: the table stays full throughout.
    std::thread::sleep(FULL_FOR);
    let measured = measuring.elapsed();
    let cpu_share = (app.cpu_time() - cpu_before).as_secs_f64() / measured.as_secs_f64();
    let failures_in_window = app.accept_failures() - failures_before;

    // The probes that fit are still answered while the table is full.
    let probe_answers: Vec<u16> = probes.iter().map(|probe| get(probe, "/livez").0).collect();
    let full_for = started_filling.elapsed();
    let failures_while_full = app.accept_failures();

    // The clients leave; new ones on both ports are served again.
    drop(idle);
    let (status, body) = get(&connect(main), "/");
    assert_eq!((status, body.as_str()), (200, "hello\n"), "main port");
    assert_eq!(get(&connect(health), "/livez").0, 200, "health port");

    let (code, log) = app.sigterm_and_wait();
    println!(
        "ulimit -n {FILE_LIMIT}, {MAIN_CLIENTS} idle clients on the main port, {HEALTH_CLIENTS} \
         on the health port: {:.1}% of a core over {measured:.2?} of full table; \
         {failures_in_window} accept-failure lines in that window, {} in all ({} while full, \
         {full_for:.2?}); first: {:?}",
        cpu_share * 100.0,
        log.accept_failures,
        failures_while_full,
        log.first_failures.first()
    );
    assert_eq!(probe_answers, [200, 200], "probes kept alive from before");
    assert!(
        cpu_share < MAX_CPU_SHARE,
        "{:.1}% of a core with the file table full: a busy loop",
        cpu_share * 100.0
    );
    // Two accept loops, each logging its first failure and at most one more line per 5 s.
    let allowed = 2 * (2 + full_for.as_secs() as usize / 5);
    assert!(
        log.accept_failures <= allowed,
        "{} accept-failure lines (at most {allowed} expected), the first {:#?}",
        log.accept_failures,
        log.first_failures
    );
    // Each run of failures ends with one line saying how many there were.
    for name in ["serve", "health endpoint"] {
        let needle = format!("graceful: {name}: accepting again after ");
        assert!(
            log.lines.iter().any(|line| line.starts_with(&needle)),
            "no {needle:?} in {:#?}",
            log.lines
        );
    }
    assert_eq!(code, Some(0), "exit code; log {:#?}", log.lines);
}
