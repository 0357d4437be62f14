//! Essential tasks in real processes (src/bin/essential_task.rs): one that errs, panics or ends
//! stops a service that got no signal, with the documented exit code and the task named in the
//! report; one that fails during the drain turns a SIGTERM's exit 0 into 1.

use graceful_tests_integration::{Finished, Process, Signal};

/// Runs the fixture with `ESSENTIAL=behaviour` and waits for it to stop by itself.
fn run_until_it_stops(behaviour: &str) -> Finished {
    Process::fixture("essential_task", &[("ESSENTIAL", behaviour)]).wait_exit()
}

/// The JSON report's line, parsed.
fn report(finished: &Finished) -> serde_json::Value {
    let line = finished
        .stderr
        .lines()
        .find(|line| line.starts_with('{') && line.contains("\"graceful_report\""))
        .unwrap_or_else(|| panic!("no JSON report in:\n{}", finished.stderr));
    serde_json::from_str(line).unwrap()
}

#[test]
fn an_essential_task_that_errs_stops_the_service_with_exit_1() {
    let finished = run_until_it_stops("err");
    finished.assert_code(1);
    finished.stdout_index("hook ran");
    let report = report(&finished);
    assert_eq!(report["cause"]["kind"], "essential_task");
    assert_eq!(report["cause"]["task"], "consumer");
    assert_eq!(report["cause"]["error"], "connection reset");
    assert_eq!(report["failed"], true);
    finished.assert_stderr_has("essential task \"consumer\" failed: connection reset");
}

#[test]
fn an_essential_task_that_panics_stops_the_service_with_exit_101() {
    let finished = run_until_it_stops("panic");
    finished.assert_code(101);
    finished.stdout_index("hook ran");
    assert_eq!(
        report(&finished)["cause"]["error"],
        "panicked: poisoned state"
    );
}

#[test]
fn an_essential_task_that_ends_while_the_service_runs_stops_it_with_exit_1() {
    let finished = run_until_it_stops("end");
    finished.assert_code(1);
    assert_eq!(
        report(&finished)["cause"]["error"],
        "ended while the service was running"
    );
}

#[test]
fn an_essential_task_that_fails_during_the_drain_turns_exit_0_into_1() {
    let mut fixture = Process::fixture("essential_task", &[("ESSENTIAL", "fail-in-drain")]);
    fixture.wait_for_stdout("READY");
    fixture.signal(Signal::SIGTERM);
    let finished = fixture.wait_exit();
    finished.assert_code(1);
    let report = report(&finished);
    assert_eq!(report["cause"]["kind"], "signal");
    assert_eq!(report["essential_failures"][0]["task"], "consumer");
    assert_eq!(
        report["essential_failures"][0]["error"],
        "lost the broker while draining"
    );
}
