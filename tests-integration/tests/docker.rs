//! `examples/service` in the image deploy/Dockerfile defines, under a real `docker stop`: real
//! dockerd, real signals from Docker, real load, the rows in a SQLite file on a bind mount.
//! Includes what Docker's default 10 s stop timeout does to the image's 28 s grace, the case the
//! Dockerfile's comment describes. Needs the private daemon and the static build that
//! scripts/docker-tests provides: without them the tests fail under `CI=true`, and are skipped
//! loudly elsewhere.

use std::collections::BTreeSet;
use std::time::Duration;

use graceful_tests_integration::docker::{
    start_stuck_request, Container, DataDirectory, Image, Ports,
};
use graceful_tests_integration::haproxy::{self, Haproxy, Server};
use graceful_tests_integration::http::wait_for_readiness;
use graceful_tests_integration::load::{assert_rows_match, database_rows, Load, Tally};
use graceful_tests_integration::require::require;
use graceful_tests_integration::slow_readers::{Body, SlowReaders, SlowTally};

/// What `docker stop` waits by default before SIGKILL.
const DOCKER_DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// The stop timeout the tests give when the point is not the timeout: above the 29 s that the
/// image's grace needs.
const STOP_TIMEOUT_SECONDS: u32 = 30;

fn record(what: &str, tally: &Tally, rows: usize) {
    println!("DOCKER {what}: rows {rows}; {tally}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a private Docker daemon: run scripts/docker-tests"]
async fn docker_stop_under_load_exits_0_and_every_2xx_has_its_row() {
    let Some(image) = Image::get() else { return };
    let data = DataDirectory::new("stop-under-load");
    let container = Container::run(
        image,
        "graceful-stop-under-load",
        &data,
        Ports::free(),
        &[("GRACEFUL_PRE_STOP", "1s")],
    );
    wait_for_readiness(container.ports.health_address(), 200).await;
    // Each worker ends at its first refused connect: the service has stopped accepting.
    let load = Load::to(container.ports.address(), "stop")
        .workers(16)
        .work_ms(20)
        .start();
    tokio::task::block_in_place(|| load.wait_for_completed(150));
    let took = tokio::task::block_in_place(|| container.stop(Some(STOP_TIMEOUT_SECONDS)));
    let tally = tokio::task::block_in_place(|| load.finish());
    let code = container.exit_code();
    let logs = container.logs();
    drop(container);
    let rows = database_rows(&data.database(), "stop").await;
    record(
        &format!("stop under load (docker stop took {took:?})"),
        &tally,
        rows.len(),
    );

    for line in logs.report() {
        println!("    {line}");
    }
    assert_eq!(code, 0, "{logs}");
    assert!(took < Duration::from_secs(10), "docker stop took {took:?}");
    logs.assert_has("cause: SIGTERM");
    logs.assert_has("exit code: 0");
    logs.assert_has("close-database-pool: ok");
    assert!(
        logs.stdout_index("database pool closed") < logs.stdout_index("shutdown report"),
        "the hook's log line came after the report:\n{logs}"
    );
    assert_eq!(tally.failed(), 0, "{tally}");
    assert!(
        tally.ok_ids.len() >= 150,
        "the load was too small to mean anything"
    );
    assert_rows_match("stop under load", &tally.ok_ids, &rows);
}

#[test]
#[ignore = "needs a private Docker daemon: run scripts/docker-tests"]
fn a_second_sigterm_during_the_drain_exits_143() {
    let Some(image) = Image::get() else { return };
    let data = DataDirectory::new("second-sigterm");
    let container = Container::run(
        image,
        "graceful-second-sigterm",
        &data,
        Ports::free(),
        &[("GRACEFUL_PRE_STOP", "1s")],
    );
    let _stuck = start_stuck_request(&container);
    let stopping = container.stop_in_background(STOP_TIMEOUT_SECONDS);
    // The progress line the drain logs every second: the drain is under way.
    container.wait_for_line("draining:");
    container.kill("TERM");
    let took = stopping.join().unwrap();
    println!(
        "DOCKER second SIGTERM: docker stop -t {STOP_TIMEOUT_SECONDS} returned after {took:?}"
    );
    assert!(
        took < Duration::from_secs(STOP_TIMEOUT_SECONDS.into()),
        "docker stop waited for its timeout: {took:?}"
    );
    let code = container.exit_code();
    let logs = container.logs();
    println!("DOCKER second SIGTERM: exit {code}");
    assert_eq!(code, 143, "{logs}");
    logs.assert_has("forcing exit 143");
}

/// The rolling restart's restarts, alternating between the two containers (2 unless told).
fn docker_restarts() -> usize {
    std::env::var("DOCKER_RESTARTS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(2)
}

/// What one rolling restart of the two containers saw.
struct Rolling {
    tally: Tally,
    /// Slow readers of `GET /items` through the restarts, each list checked whole.
    slow: SlowTally,
    rows: BTreeSet<String>,
    /// Each stop: exit code, how long `docker stop` took, the phases of the report.
    stops: Vec<String>,
    /// HAProxy's view of its servers at the end.
    servers: String,
}

/// Two containers (`GRACEFUL_PRE_STOP=pre_stop`) behind HAProxy under 8 workers of load,
/// restarted in turn `restarts` times as an orchestrator does: docker stop, docker run, wait for
/// HAProxy to see the new one UP.
async fn rolling_restart(
    image: &Image,
    haproxy: &std::path::Path,
    tag: &str,
    pre_stop: &str,
    restarts: usize,
) -> Rolling {
    let data = DataDirectory::new(tag);
    let env = [("GRACEFUL_PRE_STOP", pre_stop)];
    let names = ["a", "b"];
    let ports = [Ports::free(), Ports::free()];
    let run = |index: usize, generation: usize| {
        let name = format!("graceful-{tag}-{}-{generation}", names[index]);
        Container::run(image, &name, &data, ports[index], &env)
    };
    let mut containers = [run(0, 0), run(1, 0)];
    let servers = [0, 1].map(|index| Server {
        name: names[index],
        port: ports[index].http,
        health_port: Some(ports[index].health),
    });
    let proxy = Haproxy::start(haproxy, &data.0, &servers, false);
    for name in names {
        proxy.wait_until_up(name).await;
    }

    let settle = Duration::from_secs(1);
    let load = Load::to(proxy.address(), tag).workers(8).start();
    // Each list read at 16 KB/s: one in flight at a stop is cut by nothing graceful does.
    let slow = SlowReaders::to(proxy.address())
        .large(2, "/items", Body::JsonArray, 16 * 1024)
        .start();
    tokio::time::sleep(settle).await;
    let mut stops = Vec::new();
    for turn in 0..restarts {
        let index = turn % 2;
        let name = names[index];
        // As an orchestrator does: docker stop, then docker run, then wait for readiness.
        let took =
            tokio::task::block_in_place(|| containers[index].stop(Some(STOP_TIMEOUT_SECONDS)));
        let code = containers[index].exit_code();
        let logs = containers[index].logs();
        assert_eq!(code, 0, "{name}: {logs}");
        let phases = logs
            .report()
            .into_iter()
            .find(|line| line.contains("phases:"));
        stops.push(format!(
            "{name}: exit {code}, docker stop {took:?}, {}",
            phases.unwrap_or_default().trim()
        ));
        containers[index] = tokio::task::block_in_place(|| run(index, turn + 1));
        proxy.wait_until_up(name).await;
        tokio::time::sleep(settle).await;
    }
    let tally = tokio::task::block_in_place(|| load.finish());
    let servers = proxy.servers().await;
    slow.begin_nothing_new();
    for container in &containers {
        tokio::task::block_in_place(|| container.stop(Some(STOP_TIMEOUT_SECONDS)));
        assert_eq!(container.exit_code(), 0, "{}", container.logs());
    }
    let slow = tokio::task::block_in_place(|| slow.finish()).large;
    drop(containers);
    drop(proxy);
    let rows = database_rows(&data.database(), tag).await;
    Rolling {
        tally,
        slow,
        rows,
        stops,
        servers,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a private Docker daemon: run scripts/docker-tests"]
async fn rolling_restart_of_two_containers_behind_haproxy_loses_nothing() {
    let Some(image) = Image::get() else { return };
    let haproxy = haproxy::program();
    let need = "HAProxy ($HAPROXY or haproxy on PATH; scripts/docker-tests installs it)";
    if !require(need, haproxy.is_some()) {
        return;
    }
    let haproxy = haproxy.unwrap();
    let restarts = docker_restarts();
    let graceful = rolling_restart(image, &haproxy, "rolling", "1s", restarts).await;
    record(
        &format!(
            "rolling restart, {restarts} restarts ({})",
            graceful.stops.join(", ")
        ),
        &graceful.tally,
        graceful.rows.len(),
    );
    println!("  slow readers of GET /items: {}", graceful.slow);
    // The contrast, under the same condition: HAProxy still sends to a container that has
    // stopped accepting. Two restarts show it.
    let contrast = rolling_restart(image, &haproxy, "rolling-nopre", "0s", restarts.min(2)).await;
    record(
        "rolling restart, contrast pre-stop 0 s",
        &contrast.tally,
        contrast.rows.len(),
    );

    let tally = &graceful.tally;
    assert!(
        tally.ok_ids.len() > 100,
        "too little load to mean anything: {tally}\n{}",
        graceful.servers
    );
    assert_eq!(
        (tally.failed(), tally.refused),
        (0, 0),
        "requests lost: {tally}\n{}",
        graceful.servers
    );
    assert_rows_match("rolling restart", &tally.ok_ids, &graceful.rows);
    let slow = &graceful.slow;
    assert!(
        slow.complete > 0,
        "no slow reader read a list to its end: {slow}"
    );
    assert_eq!(
        slow.failed(),
        0,
        "slow readers failed: {slow}\n{}",
        graceful.servers
    );
    assert!(
        contrast.tally.failed() + contrast.tally.refused > 0,
        "the pre-stop 0 s contrast failed nothing: the harness proves nothing: {}",
        contrast.tally
    );
}

/// Runs the image with `env` on top, holds a request that never finishes, and `docker stop`s it
/// with Docker's default timeout: the exit code, how long `docker stop` took, and the logs.
fn default_docker_stop_during_a_long_drain(
    name: &str,
    env: &[(&str, &str)],
) -> (i32, Duration, graceful_tests_integration::docker::Logs) {
    let image = Image::get().expect("checked by the caller");
    let data = DataDirectory::new(name);
    let container = Container::run(
        image,
        &format!("graceful-{name}"),
        &data,
        Ports::free(),
        env,
    );
    let _stuck = start_stuck_request(&container);
    let took = container.stop(None);
    let code = container.exit_code();
    println!("DOCKER {name}: docker stop (default timeout) took {took:?}, exit {code}");
    (code, took, container.logs())
}

#[test]
#[ignore = "needs a private Docker daemon: run scripts/docker-tests"]
fn with_the_images_timings_the_default_stop_timeout_sigkills_mid_drain() {
    if Image::get().is_none() {
        return;
    }
    let (code, took, logs) = default_docker_stop_during_a_long_drain("image-timings", &[]);
    // The service said at start-up what it needed.
    logs.assert_has("docker stop -t 29");
    assert_eq!(code, 137, "SIGKILL was expected:\n{logs}");
    assert!(
        took >= DOCKER_DEFAULT_STOP_TIMEOUT - Duration::from_millis(500),
        "docker stop returned before its timeout: {took:?}"
    );
    // Killed in the middle of the drain: no report, and the pool's close hook never ran.
    logs.assert_has("draining:");
    logs.assert_lacks("shutdown report");
    logs.assert_lacks("database pool closed");
}

#[test]
#[ignore = "needs a private Docker daemon: run scripts/docker-tests"]
fn timings_lowered_together_exit_before_sigkill_and_close_the_pool() {
    if Image::get().is_none() {
        return;
    }
    let (code, took, logs) = default_docker_stop_during_a_long_drain(
        "lowered-together",
        &[
            ("GRACEFUL_PRE_STOP", "2s"),
            ("GRACEFUL_DRAIN_TIMEOUT", "4s"),
            ("GRACEFUL_HOOK_TIMEOUT", "2s"),
            ("GRACEFUL_GRACE", "9s"),
        ],
    );
    // 1: the drain timed out, because of the stuck request.
    assert_eq!(code, 1, "{logs}");
    assert!(
        took < DOCKER_DEFAULT_STOP_TIMEOUT,
        "docker stop took {took:?}"
    );
    logs.assert_has("docker stop -t 10");
    logs.assert_has("the drain timed out");
    logs.assert_has("service::handlers::stuck x1");
    logs.assert_has("close-database-pool: ok");
    logs.assert_has("database pool closed");
    logs.assert_has("exit code: 1");
}

#[test]
#[ignore = "needs a private Docker daemon: run scripts/docker-tests"]
fn lowering_grace_alone_exits_before_sigkill_but_skips_the_hooks() {
    if Image::get().is_none() {
        return;
    }
    let (code, took, logs) =
        default_docker_stop_during_a_long_drain("grace-alone", &[("GRACEFUL_GRACE", "9s")]);
    assert_eq!(code, 1, "{logs}");
    assert!(
        took < DOCKER_DEFAULT_STOP_TIMEOUT,
        "docker stop took {took:?}"
    );
    // The start-up warning said so, and the report shows it.
    logs.assert_has("more than grace (9s)");
    logs.assert_has("the grace period ran out");
    logs.assert_has("close-database-pool: skipped");
    logs.assert_lacks("database pool closed");
    logs.assert_has("exit code: 1");
}

#[test]
#[ignore = "needs a private Docker daemon: run scripts/docker-tests"]
fn the_start_up_line_names_the_stop_timeout_the_images_grace_needs() {
    let Some(image) = Image::get() else { return };
    assert_eq!(image.env("GRACEFUL_GRACE"), "28s");
    let data = DataDirectory::new("start-up-line");
    let container = Container::run(image, "graceful-start-up-line", &data, Ports::free(), &[]);
    let line = container.wait_for_line("shutdown budget:");
    println!("DOCKER start-up line: {line}");
    assert!(line.contains("within grace 28s"), "{line}");
    assert!(line.contains("docker stop -t 29 "), "{line}");
}
