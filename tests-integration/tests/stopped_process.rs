//! A process stopped in the middle of its drain (SIGSTOP, then SIGCONT 3 s later: a debugger, a
//! frozen cgroup, a paused VM). Its deadlines are counted on the monotonic clock, which runs on
//! while it is stopped: a deadline not yet due still holds, one that passed is acted on at once
//! after SIGCONT, and the report names it. The grace watchdog, whose thread was stopped too,
//! lets the sequence finish instead of forcing the exit, and fires at most once.

use std::path::PathBuf;
use std::time::Duration;

use graceful_tests_integration::{Finished, Process, Signal};

/// How long each process stays stopped: the condition under test, not a wait.
const STOPPED_FOR: Duration = Duration::from_secs(3);
/// "Promptly" after SIGCONT: an order of magnitude, not a tight time.
const PROMPTLY: Duration = Duration::from_secs(2);

/// SIGTERM, then SIGSTOP once the drain has begun (the `stop accepting` line, on stdout where
/// graceful logs through `tracing`), SIGCONT `STOPPED_FOR` later; returns how the process ended,
/// everything it printed, and how long after SIGCONT it exited.
fn stop_mid_drain(mut process: Process, logs_to_stdout: bool) -> (Finished, String, Duration) {
    process.signal(Signal::SIGTERM);
    if logs_to_stdout {
        process.wait_for_stdout("stop accepting");
    } else {
        process.wait_for_stderr("stop accepting");
    }
    process.signal(Signal::SIGSTOP);
    std::thread::sleep(STOPPED_FOR);
    process.signal(Signal::SIGCONT);
    let finished = process.wait_exit();
    let after_cont = finished.after_signal.expect("signalled");
    let mut printed: Vec<&str> = finished
        .stdout
        .iter()
        .map(|line| line.text.as_str())
        .collect();
    printed.push(&finished.stderr);
    let printed = printed.join("\n");
    (finished, printed, after_cont)
}

/// `examples/service` on its own database, with a request that never ends in flight.
fn service_with_a_stuck_request(name: &str, env: &[(&str, &str)]) -> (Process, PathBuf) {
    let directory =
        std::env::temp_dir().join(format!("graceful-stopped-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory).unwrap();
    let database_url = format!("sqlite://{}", directory.join("items.db").display());
    let mut all = vec![
        ("LISTEN_ADDR", "127.0.0.1:0"),
        ("DATABASE_URL", database_url.as_str()),
        ("GRACEFUL_HEALTH_ADDR", "127.0.0.1:0"),
        ("GRACEFUL_PRE_STOP", "0s"),
    ];
    all.extend_from_slice(env);
    let process = Process::fixture("service", &all);
    let address = process.address_after("listening address=");
    let stuck = std::net::TcpStream::connect(address).unwrap();
    std::io::Write::write_all(&mut &stuck, b"GET /stuck HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    // Leaked on purpose: the connection must stay open until the process ends.
    std::mem::forget(stuck);
    process.wait_for_stdout("stuck request entered");
    (process, directory)
}

#[test]
fn a_drain_deadline_not_yet_due_still_holds_across_a_3_s_stop() {
    // A 2 s request in flight, a 10 s drain timeout: stopped for 3 s, the request completes
    // after SIGCONT and the drain ends with nothing abandoned.
    let process = Process::fixture(
        "serve_app",
        &[
            ("SERVER", "serve"),
            ("GRACEFUL_PRE_STOP", "0s"),
            ("GRACEFUL_DRAIN_TIMEOUT", "10s"),
        ],
    );
    let address = process.listening_address();
    let request = std::thread::spawn(move || {
        graceful_tests_integration::clients::curl(&format!("http://{address}/slow?ms=2000"))
    });
    process.wait_for_stdout("slow request started");
    let (finished, printed, after_cont) = stop_mid_drain(process, false);
    let answer = request.join().unwrap();
    eprintln!("exit {:?} {after_cont:?} after SIGCONT", finished.code);
    assert_eq!(answer.text().trim(), "slow done");
    assert!(
        printed
            .contains("drain: 1 request, 1 connection in flight at stop-accepting, all finished"),
        "{printed}"
    );
    finished.assert_code(0);
    // The handler prints its line just before it reads the clock for its 2 s: a stop that lands
    // in between moves its end to 2 s after SIGCONT.
    let bound = Duration::from_secs(2) + PROMPTLY;
    assert!(after_cont < bound, "exit {after_cont:?} after SIGCONT");
}

#[test]
fn a_drain_deadline_passed_while_stopped_is_acted_on_at_sigcont_and_the_hooks_run() {
    let (process, directory) = service_with_a_stuck_request(
        "drain",
        &[("GRACEFUL_DRAIN_TIMEOUT", "2s"), ("GRACEFUL_GRACE", "20s")],
    );
    let (finished, printed, after_cont) = stop_mid_drain(process, true);
    let _ = std::fs::remove_dir_all(directory);
    eprintln!("exit {:?} {after_cont:?} after SIGCONT", finished.code);
    assert!(
        printed.contains("the drain timed out, noticed "),
        "{printed}"
    );
    assert!(
        printed.contains("late: the process was stopped or starved meanwhile"),
        "{printed}"
    );
    assert!(
        printed.contains("the drain timed out; abandoned: http x1"),
        "{printed}"
    );
    // Grace was not spent: the teardown ran in full.
    assert!(printed.contains("database pool closed"), "{printed}");
    assert!(!printed.contains("forcing exit"), "{printed}");
    assert!(!printed.contains("still dropping"), "{printed}");
    finished.assert_code(1);
    assert!(after_cont < PROMPTLY, "exit {after_cont:?} after SIGCONT");
}

#[test]
fn grace_spent_while_stopped_ends_in_the_report_not_a_forced_exit() {
    // Grace 2.5 s (and its watchdog at 3 s) passes while the process is stopped.
    let (process, directory) = service_with_a_stuck_request(
        "grace",
        &[
            ("GRACEFUL_DRAIN_TIMEOUT", "2s"),
            ("GRACEFUL_GRACE", "2500ms"),
        ],
    );
    let (finished, printed, after_cont) = stop_mid_drain(process, true);
    let _ = std::fs::remove_dir_all(directory);
    eprintln!("exit {:?} {after_cont:?} after SIGCONT", finished.code);
    // Said once, by the sequence, which acted on the deadline itself: the watchdog's margin
    // counts running time, and the process had none while it was stopped.
    assert_eq!(printed.matches("noticed ").count(), 1, "{printed}");
    assert!(!printed.contains("forcing exit"), "{printed}");
    assert_eq!(printed.matches("shutdown report").count(), 1, "{printed}");
    assert!(
        printed.contains("the drain timed out; abandoned: http x1"),
        "{printed}"
    );
    // Nothing of grace was left for the hooks: skipped, and said so.
    assert!(!printed.contains("database pool closed"), "{printed}");
    assert!(printed.contains("skipped"), "{printed}");
    assert!(!printed.contains("still dropping"), "{printed}");
    finished.assert_code(1);
    assert!(after_cont < PROMPTLY, "exit {after_cont:?} after SIGCONT");
}
