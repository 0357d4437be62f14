//! Reloads in real processes (src/bin/reload*.rs): real SIGHUP, the hooks' order and outcomes in
//! the log, serving and readiness through a reload, coalescing, reloads refused once shutdown
//! has begun, and what the `signals` and `reload_signal` keys make of SIGHUP.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::mpsc;

use graceful_tests_integration::{free_port, loopback, Finished, Process, Signal, PATIENCE};

/// The line that ends each reload, with every hook's outcome and time.
const REPORT: &str = "graceful: reload in ";

/// The reload fixture, started for `test` with a settings file of its own holding `settings`
/// (under the target folder, not /tmp, which a systemd booted on this machine may empty), a
/// health port, and `env`; its service and health addresses, and the settings file.
fn start(
    test: &str,
    settings: &str,
    env: &[(&str, &str)],
) -> (Process, SocketAddr, SocketAddr, PathBuf) {
    let directory = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("reload");
    std::fs::create_dir_all(&directory).unwrap();
    let path = directory.join(test);
    std::fs::write(&path, settings).unwrap();
    let health = loopback(free_port());
    let (path_text, health_text) = (path.display().to_string(), health.to_string());
    let mut env = env.to_vec();
    env.extend([
        ("RELOAD_SETTINGS", path_text.as_str()),
        ("GRACEFUL_HEALTH_ADDR", health_text.as_str()),
    ]);
    let fixture = Process::fixture("reload", &env);
    let address = fixture.listening_address();
    fixture.wait_for_stdout("READY");
    (fixture, address, health, path)
}

/// `method path` on a new connection, `Connection: close`; the status and the body.
fn http(address: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nhost: localhost\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("a whole response");
    let status = response
        .get(9..12)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
    let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    (status, body.to_owned())
}

/// The stderr lines that contain `needle`.
fn lines_with<'a>(finished: &'a Finished, needle: &str) -> Vec<&'a str> {
    let lines = finished.stderr.lines();
    lines.filter(|line| line.contains(needle)).collect()
}

/// Asserts that `line` holds each of `parts`, in this order.
fn assert_in_order(line: &str, parts: &[&str]) {
    let mut from = 0;
    for part in parts {
        let at = line[from..]
            .find(part)
            .unwrap_or_else(|| panic!("{part:?} not in {line:?} after byte {from}"));
        from += at + part.len();
    }
}

#[test]
fn sighup_runs_the_hooks_in_order_while_serving_and_staying_ready() {
    let (mut fixture, address, health, _) = start("in-order", "v2", &[("RELOAD_GATE", "1")]);
    assert_eq!(http(address, "GET", "/"), (200, "initial".into()));
    assert_eq!(http(health, "GET", "/readyz").0, 200);

    fixture.signal(Signal::SIGHUP);
    fixture.wait_for_stdout("gate waiting 1");
    // Mid-reload, its first hook held: serving, ready, the old settings in force.
    let during = (http(address, "GET", "/"), http(health, "GET", "/readyz").0);
    assert_eq!(during, ((200, "initial".into()), 200));
    assert_eq!(http(address, "POST", "/release").0, 200);
    let report = fixture.wait_for_stderr(REPORT).text;
    assert_eq!(http(address, "GET", "/"), (200, "v2".into()));
    assert_eq!(http(health, "GET", "/readyz").0, 200);

    fixture.signal(Signal::SIGTERM);
    let finished = fixture.wait_exit();
    finished.assert_code(0);
    // Each hook, in order (the one added at run time is named by its file:line), with its
    // outcome and its time.
    assert_in_order(
        &report,
        &["reload.rs:", " ok (", "; settings ok (", "; cache ok ("],
    );
    assert!(
        finished.stdout_index("settings now v2") < finished.stdout_index("cache cleared 1"),
        "{}",
        finished.text()
    );
    finished.assert_stderr_has("graceful: reload asked for by SIGHUP");
    // The reload signal did not begin the shutdown, nor count as its first signal.
    finished.assert_stderr_has("cause: SIGTERM");
    assert!(lines_with(&finished, "second signal").is_empty());
}

#[test]
fn a_failing_hook_is_reported_the_next_still_runs_and_the_old_settings_stay() {
    let (mut fixture, address, _, _) = start("failing", "bad", &[]);
    fixture.signal(Signal::SIGHUP);
    let report = fixture.wait_for_stderr(REPORT).text;
    assert_in_order(
        &report,
        &[
            "settings failed: ",
            "line 1: `bad` is not a setting (",
            "; cache ok (",
        ],
    );
    fixture.wait_for_stdout("cache cleared 1");
    assert_eq!(http(address, "GET", "/"), (200, "initial".into()));

    fixture.signal(Signal::SIGTERM);
    let finished = fixture.wait_exit();
    // A failed reload is not a failed shutdown.
    finished.assert_code(0);
    // Warned, not only told: a failure must stand out in the log.
    let warned = lines_with(&finished, "settings failed");
    assert_eq!(warned.len(), 1, "{}", finished.stderr);
}

#[test]
fn graceful_reload_from_code_resolves_to_the_report() {
    let (fixture, address, _, settings) = start("from-code", "bad", &[]);
    let (status, failed) = http(address, "GET", "/reload");
    assert_eq!(status, 200, "{failed}");
    assert_in_order(&failed, &["reload in ", "settings failed: ", "cache ok ("]);

    std::fs::write(&settings, "v3").unwrap();
    let (_, succeeded) = http(address, "GET", "/reload");
    assert_in_order(&succeeded, &["reload in ", "settings ok (", "; cache ok ("]);
    assert_eq!(http(address, "GET", "/"), (200, "v3".into()));
    fixture.wait_for_stderr("graceful: reload asked for by graceful::reload()");
}

#[test]
fn reloads_asked_for_during_one_run_once_more_after_it() {
    let (mut fixture, address, _, _) = start("coalesced", "v2", &[("RELOAD_GATE", "1")]);
    fixture.signal(Signal::SIGHUP);
    fixture.wait_for_stdout("gate waiting 1");
    // Two more while the first holds: one by signal, one from code, which waits for its outcome.
    fixture.signal(Signal::SIGHUP);
    fixture.wait_for_stderr(
        "reload asked for by SIGHUP during a reload: it runs again after this one",
    );
    let (answer, answered) = mpsc::channel();
    std::thread::spawn(move || answer.send(http(address, "GET", "/reload")));
    fixture.wait_for_stderr(
        "reload asked for by graceful::reload() during a reload: it runs again after this one",
    );

    assert_eq!(http(address, "POST", "/release").0, 200);
    fixture.wait_for_stdout("gate waiting 2");
    assert_eq!(http(address, "POST", "/release").0, 200);
    let (status, second) = answered
        .recv_timeout(PATIENCE)
        .expect("graceful::reload() got the outcome of the run after the one it waited behind");
    assert_eq!(status, 200, "{second}");
    assert_in_order(&second, &["reload.rs:", " ok (", "; cache ok ("]);

    // The next reload is the third run, not a fourth: the two asked for together ran once.
    assert_eq!(http(address, "POST", "/release").0, 200);
    assert_eq!(http(address, "GET", "/reload").0, 200);
    fixture.signal(Signal::SIGTERM);
    let finished = fixture.wait_exit();
    finished.assert_code(0);
    let runs: Vec<&str> = (finished.stdout.iter())
        .map(|line| line.text.as_str())
        .filter(|text| text.starts_with("gate waiting") || text.starts_with("cache cleared"))
        .collect();
    assert_eq!(
        runs,
        [
            "gate waiting 1",
            "cache cleared 1",
            "gate waiting 2",
            "cache cleared 2",
            "gate waiting 3",
            "cache cleared 3"
        ],
        "{}",
        finished.text()
    );
    assert_eq!(
        lines_with(&finished, REPORT).len(),
        3,
        "{}",
        finished.stderr
    );
}

#[test]
fn sighup_after_shutdown_began_is_logged_and_ignored_and_forces_nothing() {
    let (mut fixture, _, _, _) = start("late", "v2", &[("HOLD_DRAIN", "1")]);
    fixture.signal(Signal::SIGTERM);
    // The drain is held by the task that waits for SIGUSR2.
    fixture.wait_for_stderr("stop accepting");
    fixture.signal(Signal::SIGHUP);
    fixture.wait_for_stderr("graceful: reload asked for by SIGHUP during shutdown: ignored");
    fixture.signal(Signal::SIGUSR2);
    let finished = fixture.wait_exit();
    // A second shutdown signal would have forced exit 129 here.
    finished.assert_code(0);
    finished.stdout_index("hold released");
    finished.assert_stderr_has("cause: SIGTERM");
    assert!(lines_with(&finished, "second signal").is_empty());
    assert!(
        finished.position("cache cleared").is_none(),
        "a reload hook ran during the shutdown:\n{}",
        finished.text()
    );
}

#[test]
fn with_sighup_in_signals_sighup_shuts_down() {
    let mut fixture = Process::fixture("reload_sighup_shuts_down", &[]);
    fixture.wait_for_stdout("READY");
    fixture.signal(Signal::SIGHUP);
    let finished = fixture.wait_exit();
    finished.assert_code(0);
    finished.assert_stderr_has("cause: SIGHUP");
    assert!(
        finished.position("reload hook ran").is_none(),
        "{}",
        finished.text()
    );
}

#[test]
fn reload_signal_none_installs_no_handler_so_sighup_keeps_its_default_action() {
    let mut fixture = Process::fixture("reload_signal_none", &[]);
    fixture.wait_for_stdout("READY");
    fixture.signal(Signal::SIGHUP);
    let finished = fixture.wait_exit();
    // graceful::reload() still reloads.
    let from_code = &finished.line("reloaded from code: ").text;
    assert!(from_code.contains(": from-code ok ("), "{from_code}");
    // Ended by the signal itself (no exit code): no handler, so no sequence and no report.
    assert_eq!(finished.code, None, "{}", finished.stderr);
    assert!(lines_with(&finished, "shutdown report").is_empty());
    assert!(lines_with(&finished, "reload asked for by SIGHUP").is_empty());
}
