//! `examples/service` through a shutdown, as its clients see it: real processes, real sockets,
//! a real SQLite database, real SIGTERM. Loads are bounded and stay on loopback.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use graceful_tests_integration::http::{get, wait_for_readiness, Answer, Connection};
use graceful_tests_integration::load::{assert_rows_match, database_rows, Load, Tally};
use graceful_tests_integration::{Process, Signal, PATIENCE};
use http_body_util::BodyExt;

/// A running `examples/service`, with its addresses read from its own log lines.
struct Service {
    process: Process,
    address: SocketAddr,
    health: SocketAddr,
    database: PathBuf,
    _directory: TempDirectory,
}

/// A directory removed when the test ends.
struct TempDirectory(PathBuf);

impl Drop for TempDirectory {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Service {
    fn start(name: &str, env: &[(&str, &str)]) -> Service {
        let directory =
            std::env::temp_dir().join(format!("graceful-service-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&directory);
        std::fs::create_dir_all(&directory).unwrap();
        let database = directory.join("items.db");
        let database_url = format!("sqlite://{}", database.display());
        let mut all_env = vec![
            ("LISTEN_ADDR", "127.0.0.1:0"),
            ("GRACEFUL_HEALTH_ADDR", "127.0.0.1:0"),
            ("DATABASE_URL", database_url.as_str()),
        ];
        all_env.extend_from_slice(env);
        let process = Process::fixture("service", &all_env);
        let address = process.address_after("listening address=");
        let health = process
            .wait_for_stderr("health endpoint listening on http://")
            .text
            .split("http://")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        Service {
            process,
            address,
            health,
            database,
            _directory: TempDirectory(directory),
        }
    }
}

async fn get_once(address: SocketAddr, path: &str) -> Answer {
    Connection::open(address)
        .await
        .unwrap()
        .send(get(path))
        .await
        .unwrap()
}

/// One trial: a bounded concurrent load of POSTs, SIGTERM mid-load, then the checks.
async fn zero_loss_trial(trial: usize) -> (Tally, usize) {
    let mut service = Service::start(&format!("trial{trial}"), &[("GRACEFUL_PRE_STOP", "500ms")]);
    wait_for_readiness(service.health, 200).await;
    let tag = format!("t{trial}");
    // Each worker ends at its first refused connection: the listener is gone, stop-accepting
    // has come.
    let load = Load::to(service.address, &tag)
        .workers(16)
        .work_ms(20)
        .at_most(400)
        .start();
    // SIGTERM mid-load: once a good share of the requests has completed.
    tokio::task::block_in_place(|| load.wait_for_completed(120));
    service.process.signal(Signal::SIGTERM);
    let tally = tokio::task::block_in_place(|| load.join());

    let database = service.database.clone();
    let finished = tokio::task::spawn_blocking(move || service.process.wait_exit())
        .await
        .unwrap();
    finished.assert_code(0);
    let pool_closed = finished.stdout_index("database pool closed");
    let report = finished.stdout_index("shutdown report");
    assert!(
        pool_closed < report,
        "the hook's log line came after the report"
    );
    finished.line("close-database-pool: ok");

    let rows = database_rows(&database, &tag).await;
    assert_rows_match(&format!("trial {trial}"), &tally.ok_ids, &rows);
    (tally, rows.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_load_loses_nothing_over_three_trials() {
    for trial in 0..3 {
        let (tally, rows) = zero_loss_trial(trial).await;
        // The figures of each trial, for the record (cargo test -- --nocapture).
        println!("trial {trial}: rows {rows}; {tally}");
        assert_eq!(tally.non_2xx, 0, "trial {trial}: {tally}");
        assert!(
            tally.ok_ids.len() >= 120,
            "trial {trial}: the load was too small to mean anything"
        );
    }
}

#[tokio::test]
async fn readiness_fails_during_pre_stop_while_the_service_still_answers() {
    let mut service = Service::start("readiness", &[("GRACEFUL_PRE_STOP", "3s")]);
    wait_for_readiness(service.health, 200).await;
    assert_eq!(get_once(service.health, "/livez").await.status, 200);
    service.process.signal(Signal::SIGTERM);
    wait_for_readiness(service.health, 503).await;
    let answer = get_once(service.address, "/items").await;
    assert_eq!(
        answer.status, 200,
        "the main port stopped serving during pre-stop"
    );
    assert_eq!(
        get_once(service.health, "/readyz").await.body.trim(),
        "draining"
    );
    let finished = tokio::task::spawn_blocking(move || service.process.wait_exit())
        .await
        .unwrap();
    finished.assert_code(0);
}

#[tokio::test]
async fn a_keep_alive_client_is_told_to_close_and_the_server_exits_without_waiting_for_the_drain() {
    let mut service = Service::start(
        "keepalive",
        &[
            ("GRACEFUL_PRE_STOP", "1s"),
            ("GRACEFUL_DRAIN_TIMEOUT", "60s"),
            ("GRACEFUL_GRACE", "90s"),
        ],
    );
    wait_for_readiness(service.health, 200).await;
    let mut held = Connection::open(service.address).await.unwrap();
    let before = held.send(get("/items")).await.unwrap();
    assert_eq!(before.status, 200);
    assert!(!before.closes, "Connection: close before any shutdown");

    service.process.signal(Signal::SIGTERM);
    wait_for_readiness(service.health, 503).await;
    let during = held.send(get("/items")).await.unwrap();
    assert_eq!(during.status, 200);
    assert!(
        during.closes,
        "no Connection: close on a keep-alive connection during pre-stop"
    );

    let finished = tokio::task::spawn_blocking(move || service.process.wait_exit())
        .await
        .unwrap();
    finished.assert_code(0);
    finished.assert_exited_within(
        Duration::from_secs(20),
        "with a 60s drain timeout, a drained server",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_request_is_named_at_the_drain_timeout_and_the_process_exits_1() {
    let mut service = Service::start(
        "stuck",
        &[
            ("GRACEFUL_PRE_STOP", "0s"),
            ("GRACEFUL_DRAIN_TIMEOUT", "1s"),
            ("GRACEFUL_GRACE", "5s"),
        ],
    );
    wait_for_readiness(service.health, 200).await;
    let address = service.address;
    let stuck = tokio::spawn(async move {
        let mut connection = Connection::open(address).await.unwrap();
        connection.send(get("/stuck")).await
    });
    service.process.wait_for_stdout("stuck request entered");
    service.process.signal(Signal::SIGTERM);
    let finished = tokio::task::spawn_blocking(move || service.process.wait_exit())
        .await
        .unwrap();
    finished.assert_code(1);
    finished.assert_exited_within(Duration::from_secs(5), "with a 5s grace, the process");
    let report = finished.text();
    assert!(report.contains("drain timed out"), "{report}");
    assert!(report.contains("service::handlers::stuck x1"), "{report}");
    assert!(report.contains("http x1"), "{report}");
    assert!(
        stuck.await.unwrap().is_err(),
        "the stuck request got an answer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_event_stream_ends_at_stop_accepting_instead_of_holding_the_exit() {
    let mut server = Process::fixture("streaming", &[("LISTEN_ADDR", "127.0.0.1:0")]);
    let address = server.listening_address();
    let mut connection = Connection::open(address).await.unwrap();
    let response = connection.send_streaming(get("/events")).await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    // The first tick proves the stream is live before the signal.
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("tick 0"));
    server.signal(Signal::SIGTERM);
    let mut rest = String::new();
    while let Some(frame) = tokio::time::timeout(PATIENCE, body.frame())
        .await
        .expect("the stream never ended")
    {
        if let Ok(data) = frame.unwrap().into_data() {
            rest.push_str(&String::from_utf8_lossy(&data));
        }
    }
    assert!(
        rest.contains("event: shutdown"),
        "no goodbye event: {rest:?}"
    );
    let finished = tokio::task::spawn_blocking(move || server.wait_exit())
        .await
        .unwrap();
    finished.assert_code(0);
    // Drain timeout is 10 s: the stream ended by itself well before.
    finished.assert_exited_within(Duration::from_secs(5), "a server with an open event stream");
    assert!(
        finished
            .stderr
            .contains("stop accepting: 1 request, 1 connection in flight"),
        "{}",
        finished.stderr
    );
}
