//! A full file-descriptor table (issue 22): serve_app under `ulimit -n 256`, 400 clients
//! connecting at once to its main port and its health port, more than fit. With
//! `.max_connections` set past the limit (as the old default of 10,000 was) the table fills:
//! neither accept loop may spin or flood its log, the clients already in are served, both ports
//! recover when the clients leave, and a SIGTERM while it is full still drains and exits 0. With
//! the default, which stays below the limit, the table never fills and the health port answers
//! a new probe: the run past the limit is its contrast, where that probe goes unanswered.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use graceful_tests_integration::systemd::wait_until;
use graceful_tests_integration::{first_few, fixture_path, Process, Signal, PATIENCE};

const FILE_LIMIT: usize = 256;
const CLIENTS: usize = 400;
/// One client in this many connects to the health port (20 of 400), between the others: a load
/// balancer's kept-alive checks among the users.
const HEALTH_EVERY: usize = 20;
/// Main-port clients served before the rush, which send requests while the table is full.
const EARLY: usize = 4;
const REQUESTS_EACH: usize = 25;
/// Health probes served before the rush, kept alive.
const PROBES: usize = 2;
/// How long the table stays full while the process's CPU time is measured.
const FULL_FOR: Duration = Duration::from_secs(2);
/// A busy spin uses a whole core; a loop that waits next to nothing.
const MAX_CPU_SHARE: f64 = 0.2;
/// A new probe's timeout: a kubelet's `timeoutSeconds` (1 s by default), doubled.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// `.max_connections` past the file limit: the default before it followed the limit.
const PAST_THE_LIMIT: &str = "10000";
const FAILED: &str = "accept failed";

/// serve_app under `ulimit -n`, run by `sh`, which `exec`s it: same pid.
fn start(max_connections: Option<&str>) -> (Process, SocketAddr, SocketAddr) {
    let program = fixture_path("serve_app");
    let mut env = vec![
        ("SERVER", "serve"),
        ("GRACEFUL_PRE_STOP", "0s"),
        ("GRACEFUL_HEALTH_ADDR", "127.0.0.1:0"),
    ];
    if let Some(max) = max_connections {
        env.push(("SERVE_MAX_CONNECTIONS", max));
    }
    let app = Process::start(
        "serve_app",
        "sh",
        &[
            "-c",
            &format!("ulimit -n {FILE_LIMIT} && exec \"$0\""),
            program.to_str().unwrap(),
        ],
        &env,
    );
    let main = app.listening_address();
    let health = {
        let line = app
            .wait_for_stderr("graceful: health endpoint listening on http://")
            .text;
        let rest = &line[line.find("http://").unwrap() + "http://".len()..];
        rest.split(' ').next().unwrap().parse().unwrap()
    };
    (app, main, health)
}

/// One HTTP/1.1 GET on `stream`, kept alive; the status and body, or why there is none within
/// `timeout`.
fn get(stream: &TcpStream, path: &str, timeout: Duration) -> Result<(u16, String), String> {
    stream.set_read_timeout(Some(timeout)).unwrap();
    send_get(stream, path).map_err(|error| format!("send: {error}"))?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    match reader.read_line(&mut line) {
        Ok(0) => return Err("closed".to_owned()),
        Ok(_) => {}
        Err(error) => return Err(format!("{:?}", error.kind())),
    }
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no status in {line:?}"))?;
    let mut length = 0;
    loop {
        line.clear();
        reader
            .read_line(&mut line)
            .map_err(|error| format!("a header: {error}"))?;
        let header = line.trim_end().to_ascii_lowercase();
        if header.is_empty() {
            break;
        }
        if let Some(value) = header.strip_prefix("content-length:") {
            length = value.trim().parse().expect("a content length");
        }
    }
    let mut body = vec![0; length];
    reader
        .read_exact(&mut body)
        .map_err(|error| format!("the body: {error}"))?;
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// The request in one write: written in pieces, Nagle's algorithm would hold the last piece
/// until the server's delayed ACK, 40 ms later.
fn send_get(mut stream: &TcpStream, path: &str) -> std::io::Result<()> {
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes())
}

fn connect(address: SocketAddr) -> TcpStream {
    TcpStream::connect(address).expect("connect (the kernel queues it)")
}

/// Connects to each of `addresses` at once, each client from a thread of its own, and hands
/// each stream over as it connects. A client the kernel cannot queue yet (the listen backlog, 128
/// here, is full) waits in `connect`, retrying its SYN as a real client would, and is handed
/// over if it ever gets in; a client whose stream is no longer wanted closes it.
fn connect_at_once(addresses: &[SocketAddr]) -> mpsc::Receiver<(SocketAddr, TcpStream)> {
    let (connected, streams) = mpsc::channel();
    for &address in addresses {
        let connected = connected.clone();
        std::thread::spawn(move || {
            if let Ok(stream) = TcpStream::connect(address) {
                let _ = connected.send((address, stream));
            }
        });
    }
    streams
}

/// The service once the rush has saturated it, and what was measured while it stayed so.
struct Rush {
    app: Process,
    main: SocketAddr,
    health: SocketAddr,
    /// What `serve` admits at once: as set, or as its start-up line says.
    max_connections: usize,
    /// Main-port clients served before the rush.
    early: Vec<TcpStream>,
    /// Health probes served before the rush, held open: closing one would free a file.
    _kept_probes: Vec<TcpStream>,
    /// The rush's clients on each port that had connected once the service was saturated.
    main_clients: Vec<TcpStream>,
    health_clients: Vec<TcpStream>,
    /// The others, handed over if they ever connect.
    still_connecting: mpsc::Receiver<(SocketAddr, TcpStream)>,
    open_files: usize,
    cpu_share: f64,
    measured: Duration,
    /// Accept-failure lines from the start of the rush to the end of the measurements.
    failure_lines: usize,
    /// A probe that connects to the health port while the main port is saturated.
    new_probe: Result<u16, String>,
    /// The kept-alive probes' answers while saturated.
    probe_answers: Vec<u16>,
    /// Requests from the clients that got in before the rush, sorted.
    latencies: Vec<Duration>,
}

impl Rush {
    fn start(max_connections: Option<&str>) -> Rush {
        let (app, main, health) = start(max_connections);
        let early: Vec<TcpStream> = (0..EARLY).map(|_| connect(main)).collect();
        for client in &early {
            assert_eq!(get(client, "/", PATIENCE).unwrap().0, 200);
        }
        let probes: Vec<TcpStream> = (0..PROBES).map(|_| connect(health)).collect();
        for probe in &probes {
            assert_eq!(get(probe, "/livez", PATIENCE).unwrap().0, 200);
        }
        let max_connections: usize = match max_connections {
            Some(max) => max.parse().unwrap(),
            None => {
                let line = app.wait_for_stderr("graceful: serve: at most ").text;
                let count = line.split("at most ").nth(1).unwrap();
                count.split(' ').next().unwrap().parse().unwrap()
            }
        };
        let before_the_rush = app.open_files();

        let failures_before = app.count_stderr(FAILED);
        let addresses: Vec<SocketAddr> = (0..CLIENTS)
            .map(|client| {
                if client % HEALTH_EVERY == 0 {
                    health
                } else {
                    main
                }
            })
            .collect();
        let health_count = addresses.iter().filter(|&&a| a == health).count();
        let still_connecting = connect_at_once(&addresses);
        // Saturated: every descriptor taken, or every connection slot and every health client in.
        let saturated =
            FILE_LIMIT.min(before_the_rush + max_connections.saturating_sub(EARLY) + health_count);
        assert!(
            wait_until(PATIENCE, || app.open_files() >= saturated),
            "{} files open, {saturated} expected once saturated",
            app.open_files()
        );
        if saturated == FILE_LIMIT {
            app.wait_for_stderr("graceful: serve: accept failed");
        }
        let (mut main_clients, mut health_clients) = (Vec::new(), Vec::new());
        for (address, stream) in still_connecting.try_iter() {
            if address == health {
                health_clients.push(stream);
            } else {
                main_clients.push(stream);
            }
        }

        let cpu_before = app.cpu_time();
        let measuring = Instant::now();
        // A measurement window, not a wait for an event: the table stays as the rush left it.
        std::thread::sleep(FULL_FOR);
        let measured = measuring.elapsed();
        let cpu_share = (app.cpu_time() - cpu_before).as_secs_f64() / measured.as_secs_f64();

        let mut latencies: Vec<Duration> = (0..REQUESTS_EACH)
            .flat_map(|_| &early)
            .map(|client| {
                let sent = Instant::now();
                let (status, body) = get(client, "/", PATIENCE).expect("a client that got in");
                assert_eq!((status, body.as_str()), (200, "hello\n"));
                sent.elapsed()
            })
            .collect();
        latencies.sort();
        let new_probe = get(&connect(health), "/livez", PROBE_TIMEOUT).map(|(status, _)| status);
        let probe_answers = probes
            .iter()
            .map(|probe| get(probe, "/livez", PATIENCE).unwrap().0)
            .collect();
        Rush {
            failure_lines: app.count_stderr(FAILED) - failures_before,
            open_files: app.open_files(),
            app,
            main,
            health,
            max_connections,
            early,
            _kept_probes: probes,
            main_clients,
            health_clients,
            still_connecting,
            cpu_share,
            measured,
            new_probe,
            probe_answers,
            latencies,
        }
    }

    /// One summary line, for the test's output and scripts/adverse/full-fd-table.
    fn summary(&self, case: &str) -> String {
        format!(
            "full-fd-table {case}: ulimit -n {FILE_LIMIT}, {CLIENTS} clients at once, connected \
             {} main, {} health (the rest still in connect), max_connections {}: {} of \
             {FILE_LIMIT} files open; {:.1}% of a core over \
             {:.2?}; {} accept-failure lines; new health probe: {:?}; {} requests from clients \
             in: p50 {:.2?}, max {:.2?}",
            self.main_clients.len(),
            self.health_clients.len(),
            self.max_connections,
            self.open_files,
            self.cpu_share * 100.0,
            self.measured,
            self.failure_lines,
            self.new_probe,
            self.latencies.len(),
            self.latencies[self.latencies.len() / 2],
            self.latencies.last().unwrap(),
        )
    }

    /// What holds whether or not the table filled: nothing spins, what got in is served.
    fn assert_served_without_spinning(&self) {
        assert_eq!(
            self.probe_answers, [200; PROBES],
            "probes kept alive from before"
        );
        assert_eq!(self.latencies.len(), EARLY * REQUESTS_EACH);
        assert!(
            self.cpu_share < MAX_CPU_SHARE,
            "{:.1}% of a core while saturated: a busy loop",
            self.cpu_share * 100.0
        );
    }
}

#[test]
fn past_the_file_limit_a_full_table_neither_spins_nor_floods_the_log_and_both_ports_recover() {
    let rush = Rush::start(Some(PAST_THE_LIMIT));
    println!("{}", rush.summary("past the limit"));
    let Rush { app, .. } = &rush;
    app.wait_for_stderr("graceful: health endpoint: accept failed");
    assert_eq!(rush.open_files, FILE_LIMIT, "the table is full");
    rush.assert_served_without_spinning();
    // The contrast of the default's test: with the table full, a new probe gets no answer.
    assert!(
        rush.new_probe.is_err(),
        "a new probe answered with the table full: {:?}",
        rush.new_probe
    );
    let full_for = app.started_at.elapsed();

    // The clients leave; new ones on both ports are served again.
    let Rush {
        mut app,
        main,
        health,
        main_clients,
        health_clients,
        still_connecting,
        ..
    } = rush;
    drop((main_clients, health_clients, still_connecting));
    let (status, body) = get(&connect(main), "/", PATIENCE).unwrap();
    assert_eq!((status, body.as_str()), (200, "hello\n"), "main port");
    assert_eq!(
        get(&connect(health), "/livez", PATIENCE).unwrap().0,
        200,
        "health port"
    );

    app.signal(Signal::SIGTERM);
    let finished = app.wait_exit();
    let failures: Vec<&str> = finished
        .stderr
        .lines()
        .filter(|line| line.contains(FAILED))
        .collect();
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
    assert!(
        !finished.stderr.contains("graceful: serve: at most "),
        "an explicit max_connections is not the limit's: {}",
        finished.stderr
    );
    finished.assert_code(0);
}

#[test]
fn by_default_connections_leave_room_for_the_health_port() {
    let rush = Rush::start(None);
    println!("{}", rush.summary("default"));
    // The soft limit less its reserve of 64 (a tenth of 256 is less).
    assert_eq!(rush.max_connections, FILE_LIMIT - 64);
    assert!(
        rush.open_files < FILE_LIMIT,
        "{} files open",
        rush.open_files
    );
    assert_eq!(
        rush.failure_lines, 0,
        "no accept failed: the table never filled"
    );
    rush.assert_served_without_spinning();
    assert_eq!(
        rush.new_probe,
        Ok(200),
        "a new probe while serve is saturated"
    );

    // The clients leave; new ones are served on both ports.
    let Rush {
        mut app,
        main,
        health,
        main_clients,
        health_clients,
        still_connecting,
        ..
    } = rush;
    drop((main_clients, health_clients, still_connecting));
    assert_eq!(get(&connect(main), "/", PATIENCE).unwrap().0, 200);
    assert_eq!(get(&connect(health), "/livez", PATIENCE).unwrap().0, 200);

    app.signal(Signal::SIGTERM);
    let finished = app.wait_exit();
    assert_eq!(
        finished.stderr.matches("graceful: serve: at most ").count(),
        1,
        "the default is logged once: {}",
        finished.stderr
    );
    assert!(!finished.stderr.contains(FAILED), "{}", finished.stderr);
    finished.assert_code(0);
}

#[test]
fn a_sigterm_while_the_table_is_full_still_drains_and_exits_0() {
    let rush = Rush::start(Some(PAST_THE_LIMIT));
    println!("{}", rush.summary("SIGTERM while full"));
    assert_eq!(rush.open_files, FILE_LIMIT, "the table is full");
    let Rush {
        mut app,
        early,
        mut main_clients,
        health_clients,
        still_connecting,
        ..
    } = rush;

    // A request in flight from a client that got in, and one from a client still queued.
    send_get(&early[0], "/slow?ms=1000").unwrap();
    app.wait_for_stdout("slow request started");
    let queued = main_clients.pop().unwrap();
    send_get(&queued, "/").unwrap();
    assert_eq!(app.open_files(), FILE_LIMIT, "still full at the signal");
    app.signal(Signal::SIGTERM);

    let mut in_flight = BufReader::new(&early[0]);
    early[0].set_read_timeout(Some(PATIENCE)).unwrap();
    let mut answer = String::new();
    in_flight
        .read_line(&mut answer)
        .expect("the answer to the request in flight");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    // The clients holding connections leave.
    drop((main_clients, health_clients, still_connecting));
    let finished = app.wait_exit();
    // Never accepted: with no descriptor free at stop-accepting it could not be taken.
    queued.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut queued_answer = String::new();
    let queued_outcome = match BufReader::new(&queued).read_line(&mut queued_answer) {
        Ok(0) => "closed".to_owned(),
        Ok(_) => queued_answer.trim_end().to_owned(),
        Err(error) => format!("{:?}", error.kind()),
    };
    let drain = finished
        .stderr
        .lines()
        .find(|line| line.contains("drain: "));
    println!(
        "full-fd-table SIGTERM while full: request in flight answered {:?}; a queued client's \
         request: {queued_outcome}; {:?}; exit {:?} {:.2?} after SIGTERM",
        answer.trim_end(),
        drain,
        finished.code,
        finished.after_signal.unwrap()
    );
    assert!(
        drain.is_some_and(|line| line.ends_with("all finished")),
        "{}",
        finished.stderr
    );
    finished.assert_code(0);
}
