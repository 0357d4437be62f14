//! A service out of file descriptors: serve_app under `ulimit -n 64`, more idle clients on its
//! main port and its health port than fit. It must neither spin nor flood its log while the
//! table is full, must keep answering the probes it has, and must serve both ports again once
//! the clients leave.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use graceful_tests_integration::{first_few, fixture_path, Process, Signal, PATIENCE};

const FILE_LIMIT: u32 = 64;
const MAIN_CLIENTS: usize = 80;
const HEALTH_CLIENTS: usize = 5;
/// How long the table stays full while the process's CPU time is measured.
const FULL_FOR: Duration = Duration::from_secs(2);
/// A busy spin uses a whole core; a pausing loop next to nothing.
const MAX_CPU_SHARE: f64 = 0.2;

/// serve_app under `ulimit -n`, run by `sh`, which `exec`s it: same pid.
fn start_limited(file_limit: u32) -> Process {
    let program = fixture_path("serve_app");
    Process::start(
        "serve_app",
        "sh",
        &[
            "-c",
            &format!("ulimit -n {file_limit} && exec \"$0\""),
            program.to_str().unwrap(),
        ],
        &[
            ("SERVER", "serve"),
            ("GRACEFUL_PRE_STOP", "0s"),
            ("GRACEFUL_HEALTH_ADDR", "127.0.0.1:0"),
        ],
    )
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
    const FAILED: &str = "accept failed";
    let mut app = start_limited(FILE_LIMIT);
    let main = app.listening_address();
    let health: SocketAddr = {
        let line = app
            .wait_for_stderr("graceful: health endpoint listening on http://")
            .text;
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
    app.wait_for_stderr("graceful: serve: accept failed");
    idle.extend((0..HEALTH_CLIENTS).map(|_| connect(health)));
    app.wait_for_stderr("graceful: health endpoint: accept failed");

    let cpu_before = app.cpu_time();
    let failures_before = app.count_stderr(FAILED);
    let measuring = Instant::now();
    // A measurement window, not a wait for an event: the table stays full throughout.
    std::thread::sleep(FULL_FOR);
    let measured = measuring.elapsed();
    let cpu_share = (app.cpu_time() - cpu_before).as_secs_f64() / measured.as_secs_f64();
    let failures_in_window = app.count_stderr(FAILED) - failures_before;

    // The probes that fit are still answered while the table is full.
    let probe_answers: Vec<u16> = probes.iter().map(|probe| get(probe, "/livez").0).collect();
    let full_for = started_filling.elapsed();
    let failures_while_full = app.count_stderr(FAILED);

    // The clients leave; new ones on both ports are served again.
    drop(idle);
    let (status, body) = get(&connect(main), "/");
    assert_eq!((status, body.as_str()), (200, "hello\n"), "main port");
    assert_eq!(get(&connect(health), "/livez").0, 200, "health port");

    app.signal(Signal::SIGTERM);
    let finished = app.wait_exit();
    let failures: Vec<&str> = finished
        .stderr
        .lines()
        .filter(|line| line.contains(FAILED))
        .collect();
    println!(
        "ulimit -n {FILE_LIMIT}, {MAIN_CLIENTS} idle clients on the main port, {HEALTH_CLIENTS} \
         on the health port: {:.1}% of a core over {measured:.2?} of full table; \
         {failures_in_window} accept-failure lines in that window, {} in all ({} while full, \
         {full_for:.2?}); first: {:?}",
        cpu_share * 100.0,
        failures.len(),
        failures_while_full,
        failures.first()
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
        failures.len() <= allowed,
        "{} accept-failure lines (at most {allowed} expected): {}",
        failures.len(),
        first_few(&failures)
    );
    // Each run of failures ends with one line saying how many there were.
    for name in ["serve", "health endpoint"] {
        finished.assert_stderr_has(&format!("graceful: {name}: accepting again after "));
    }
    finished.assert_code(0);
}
