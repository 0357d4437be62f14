//! The sequence as a whole, on paused tokio time: phases, drain, hooks, exit codes, signals.

use std::future::Future;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::drive::Outcome;
use super::started::Trigger;
use super::*;
use crate::config::Config;
use crate::hooks::{HookOutcome, IntoHookResult};
use crate::inflight::{InFlight, Site};
use crate::report::{Cause, Deadline, DrainOutcome, MainStatus};

fn controller() -> &'static Controller {
    Box::leak(Box::new(Controller::new(InFlight::leak())))
}

fn config(pre_stop: u64, drain_timeout: u64, grace: u64) -> Config {
    Config {
        pre_stop: Duration::from_millis(pre_stop),
        drain_timeout: Duration::from_millis(drain_timeout),
        hook_timeout: Duration::from_millis(500),
        grace: Duration::from_millis(grace),
        ..Config::default()
    }
}

fn sigterm() -> Received {
    Received {
        name: "SIGTERM",
        role: crate::signals::Role::Shutdown,
        forced_exit_code: 143,
    }
}

#[tokio::test(start_paused = true)]
async fn main_returning_shuts_down_without_pre_stop() {
    let controller = controller();
    let outcome = controller
        .drive(&config(5_000, 1_000, 10_000), &[], async {})
        .await;
    assert_eq!(outcome.report.cause, Cause::MainReturned);
    assert_eq!(outcome.report.exit_code, Some(0));
    assert!(
        !outcome
            .report
            .phases
            .iter()
            .any(|(phase, _)| *phase == Phase::PreStop),
        "pre-stop ran with no listener left to protect"
    );
    assert_eq!(controller.health(), Health::Draining);
}

#[tokio::test(start_paused = true)]
async fn pre_stop_serves_with_readiness_failing_then_stops_accepting() {
    let controller = controller();
    controller.ready();
    let token = controller.stop_accepting().clone();
    let body = async move {
        controller.begin_shutdown(Trigger::Requested);
        assert_eq!(controller.health(), Health::Draining);
        let began = Instant::now();
        token.cancelled().await;
        began.elapsed()
    };
    let waited = Arc::new(Mutex::new(None));
    let record = waited.clone();
    let outcome = controller
        .drive(&config(2_000, 1_000, 10_000), &[], async move {
            *record.lock().unwrap() = Some(body.await);
        })
        .await;
    assert_eq!(waited.lock().unwrap().unwrap(), Duration::from_secs(2));
    assert_eq!(outcome.report.exit_code, Some(0));
}

#[tokio::test(start_paused = true)]
async fn drain_waits_for_tracked_work_then_runs_hooks() {
    let controller = controller();
    let site: &'static Site = controller.inflight().site_named("app::upload");
    let guard = site.enter();
    let order = Arc::new(Mutex::new(Vec::new()));
    let log = order.clone();
    controller.register_hook(10, "close-pool".into(), move || async move {
        log.lock().unwrap().push("hook");
    });
    let log = order.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        log.lock().unwrap().push("upload finished");
        drop(guard);
    });
    let outcome = controller
        .drive(&config(0, 5_000, 10_000), &[], async {})
        .await;
    assert_eq!(outcome.report.drain, DrainOutcome::Drained);
    assert_eq!(*order.lock().unwrap(), ["upload finished", "hook"]);
}

#[tokio::test(start_paused = true)]
async fn drain_ends_when_the_last_guard_drops() {
    let controller = controller();
    let guard = controller.track("app::upload");
    let body = async move {
        controller.stop_accepting().cancelled().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        drop(guard);
    };
    controller.begin_shutdown(Trigger::Requested);
    let outcome = controller.drive(&config(0, 5_000, 10_000), &[], body).await;
    assert_eq!(outcome.report.drain, DrainOutcome::Drained);
    assert_eq!(outcome.report.in_flight_at_stop.total(), 1);
    let drain = outcome
        .report
        .phases
        .iter()
        .find(|(phase, _)| *phase == Phase::Drain)
        .unwrap()
        .1;
    assert_eq!(
        drain,
        Duration::from_millis(200),
        "the drain did not end when the guard dropped"
    );
}

#[tokio::test(start_paused = true)]
async fn drain_timeout_names_the_stuck_site_and_aborts_tasks() {
    let controller = controller();
    let _stuck = controller.track("app::upload");
    let _stuck_too = controller.track("app::upload");
    let site = controller.inflight().site_named("spawned");
    let task = controller.spawn(site, std::future::pending::<()>());
    controller.begin_shutdown(Trigger::Requested);
    let outcome = controller
        .drive(&config(0, 300, 10_000), &[], async {})
        .await;
    match &outcome.report.drain {
        DrainOutcome::TimedOut {
            deadline: Deadline::DrainTimeout,
            abandoned,
            aborted_tasks,
            ..
        } => {
            assert!(abandoned.contains(&crate::report::SiteCount {
                name: "app::upload".into(),
                count: 2
            }));
            assert_eq!(*aborted_tasks, 1);
        }
        other => panic!("expected a drain timeout, got {other:?}"),
    }
    assert!(task.await.unwrap_err().is_cancelled());
    assert_eq!(outcome.report.exit_code, Some(1));
    assert!(
        outcome.report.to_string().contains("app::upload x2"),
        "{}",
        outcome.report
    );
}

#[tokio::test(start_paused = true)]
async fn a_panicking_main_exits_101_after_the_hooks() {
    let controller = controller();
    let ran = Arc::new(Mutex::new(false));
    let flag = ran.clone();
    controller.register_hook(1, "after-panic".into(), move || async move {
        *flag.lock().unwrap() = true;
    });
    let outcome = controller
        .drive(&config(0, 1_000, 10_000), &[], async {
            if true {
                panic!("kaboom")
            }
        })
        .await;
    assert_eq!(outcome.report.main, MainStatus::Panicked("kaboom".into()));
    assert_eq!(outcome.report.exit_code, Some(101));
    assert!(*ran.lock().unwrap());
}

#[tokio::test(start_paused = true)]
async fn exit_codes_follow_main_and_shutdown_with() {
    let errored = controller()
        .drive(&config(0, 100, 1_000), &[], async { Err::<(), _>("bad") })
        .await;
    assert_eq!(errored.report.exit_code, Some(1));

    let user_code = controller()
        .drive(&config(0, 100, 1_000), &[], async { ExitCode::from(7) })
        .await;
    assert_eq!(user_code.report.exit_code, None);
    assert_eq!(user_code.exit, ProcessExit::Main(ExitCode::from(7)));

    let fatal = controller();
    let outcome = fatal
        .drive(&config(0, 100, 1_000), &[], async move {
            fatal.shutdown_with(3, "lost the database".into());
            std::future::pending::<()>().await
        })
        .await;
    assert_eq!(outcome.report.exit_code, Some(3));
    assert!(outcome.report.to_string().contains("lost the database"));

    // After a signal began the shutdown, shutdown_with still sets the code and is reported.
    let late_fatal = controller();
    late_fatal.on_os_signal(sigterm());
    let outcome = late_fatal
        .drive(&config(0, 100, 1_000), &[], async move {
            late_fatal.shutdown_with(4, "disk gone".into());
        })
        .await;
    assert_eq!(outcome.report.exit_code, Some(4));
    let text = outcome.report.to_string();
    assert!(
        text.contains("cause: SIGTERM") && text.contains("shutdown_with(4): disk gone"),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_hook_turns_success_into_1() {
    let controller = controller();
    controller.register_hook(1, "flush".into(), || async { Err::<(), _>("disk full") });
    let outcome = controller
        .drive(&config(0, 100, 1_000), &[], async { ExitCode::SUCCESS })
        .await;
    assert_eq!(outcome.report.exit_code, Some(1));
}

#[tokio::test(start_paused = true)]
async fn hooks_registered_after_teardown_began_are_late() {
    let controller = controller();
    controller.register_hook(1, "registers-another".into(), move || async move {
        controller.register_hook(2, "too-late".into(), || async {});
    });
    let outcome = controller
        .drive(&config(0, 100, 1_000), &[], async {})
        .await;
    let late = outcome
        .report
        .hooks
        .iter()
        .find(|hook| hook.name == "too-late")
        .unwrap();
    assert_eq!(late.outcome, HookOutcome::Late);
}

#[tokio::test(start_paused = true)]
async fn grace_caps_the_drain_and_skips_hooks() {
    let controller = controller();
    let _stuck = controller.track("app::stuck");
    controller.register_hook(1, "never".into(), || async {});
    let outcome = controller
        .drive(&config(0, 5_000, 1_000), &[], async {})
        .await;
    assert!(matches!(
        outcome.report.drain,
        DrainOutcome::TimedOut {
            deadline: Deadline::Grace,
            ..
        }
    ));
    assert_eq!(outcome.report.main, MainStatus::Returned);
    assert_eq!(outcome.report.hooks[0].outcome, HookOutcome::Skipped);
    assert_eq!(outcome.report.total(), Duration::from_secs(1));
    assert_eq!(outcome.report.exit_code, Some(1));
}

#[test]
fn the_second_os_signal_forces_exit() {
    let controller = controller();
    assert_eq!(controller.on_os_signal(sigterm()), SignalAction::Shutdown);
    assert_eq!(
        controller.on_os_signal(sigterm()),
        SignalAction::ForceExit(143)
    );
}

#[test]
fn a_signal_after_shutdown_joins_the_sequence() {
    let controller = controller();
    controller.begin_shutdown(Trigger::Requested);
    assert_eq!(controller.on_os_signal(sigterm()), SignalAction::Shutdown);
    assert_eq!(
        controller.on_os_signal(sigterm()),
        SignalAction::ForceExit(143)
    );
}

#[test]
fn shutdown_begins_once_whatever_races() {
    let controller = controller();
    let winners: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..16)
            .map(|_| scope.spawn(|| usize::from(controller.begin_shutdown(Trigger::Requested))))
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap())
            .sum()
    });
    assert_eq!(winners, 1);
}

#[tokio::test(start_paused = true)]
async fn observers_hear_health_and_phases_in_order_then_the_report() {
    let controller = controller();
    let heard = Arc::new(Mutex::new(Vec::new()));
    let log = heard.clone();
    controller.subscribe(move |event| {
        let line = match event {
            Event::Health(health) => format!("health {health}"),
            Event::ShutdownBegun { .. } => "begun".to_owned(),
            Event::PhaseEntered(phase) => format!("enter {phase}"),
            Event::PhaseEnded(phase, _) => format!("end {phase}"),
            Event::Report(report) => format!("report exit {:?}", report.exit_code),
            Event::ReloadBegun => "reload".to_owned(),
            Event::ReloadEnded => "reloaded".to_owned(),
        };
        log.lock().unwrap().push(line);
    });
    controller.ready();
    controller.unready();
    controller.ready();
    let reports = Arc::new(Mutex::new(0));
    let count = reports.clone();
    controller.on_report(move |_| *count.lock().unwrap() += 1);
    let body = async move {
        controller.on_os_signal(sigterm());
        std::future::pending::<()>().await
    };
    let _ = controller
        .drive(&config(100, 1_000, 10_000), &[], body)
        .await;
    assert_eq!(
        *heard.lock().unwrap(),
        [
            "health ready",
            "health starting",
            "health ready",
            "health draining",
            "begun",
            "enter pre-stop",
            "end pre-stop",
            "enter drain",
            "end drain",
            "enter teardown",
            "end teardown",
            "enter exit",
            "report exit Some(1)",
        ]
    );
    assert_eq!(*reports.lock().unwrap(), 1);
}

#[tokio::test(start_paused = true)]
async fn shutdown_started_resolves_at_the_start_and_shutdown_signal_after_pre_stop() {
    let controller = controller();
    let started = controller.shutdown_started();
    let stop = controller.stop_accepting().clone();
    let body = async move {
        let began = Instant::now();
        controller.request_shutdown();
        started.await;
        let at_start = began.elapsed();
        stop.cancelled().await;
        (at_start, began.elapsed())
    };
    let times = Arc::new(Mutex::new(None));
    let record = times.clone();
    controller
        .drive(&config(2_000, 1_000, 10_000), &[], async move {
            *record.lock().unwrap() = Some(body.await);
        })
        .await;
    let (at_start, at_stop) = times.lock().unwrap().unwrap();
    assert_eq!(at_start, Duration::ZERO);
    assert_eq!(at_stop, Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn the_drain_line_names_grace_when_grace_comes_first() {
    let controller = controller();
    let _stuck = controller.track("app::stuck");
    controller.request_shutdown();
    let outcome = controller
        .drive(&config(0, 5_000, 1_000), &[], std::future::pending::<()>())
        .await;
    assert_eq!(outcome.report.main, MainStatus::Dropped(Deadline::Grace));
    assert!(
        outcome
            .report
            .to_string()
            .contains("the grace period ran out"),
        "{}",
        outcome.report
    );
}

/// Drives `controller` with a body that waits for shutdown (as a service's does), after
/// spawning `task` as the essential task "consumer".
async fn drive_with_essential<F>(controller: &'static Controller, task: F) -> Outcome
where
    F: Future + Send + 'static,
    F::Output: IntoHookResult,
{
    controller
        .drive(&config(0, 1_000, 10_000), &[], async move {
            crate::essential::spawn(controller, "consumer", task);
            controller.shutdown_started().await;
        })
        .await
}

#[tokio::test(start_paused = true)]
async fn an_essential_task_that_errs_stops_the_service_with_exit_1() {
    let controller = controller();
    let outcome =
        drive_with_essential(controller, async { Err::<(), _>("connection reset") }).await;
    assert_eq!(outcome.report.exit_code, Some(1));
    assert_eq!(
        outcome.report.cause.to_string(),
        "essential task \"consumer\" failed: connection reset"
    );
    let json: serde_json::Value = serde_json::from_str(&outcome.report.to_json()).unwrap();
    assert_eq!(json["cause"]["kind"], "essential_task");
    assert_eq!(json["cause"]["task"], "consumer");
    assert_eq!(json["cause"]["error"], "connection reset");
}

#[tokio::test(start_paused = true)]
async fn an_essential_task_that_panics_stops_the_service_with_exit_101() {
    let controller = controller();
    let outcome = drive_with_essential(controller, async {
        if true {
            panic!("poisoned")
        }
    })
    .await;
    assert_eq!(outcome.report.exit_code, Some(101));
    assert_eq!(
        outcome.report.cause.to_string(),
        "essential task \"consumer\" panicked: poisoned"
    );
}

#[tokio::test(start_paused = true)]
async fn an_essential_task_that_ends_while_the_service_runs_stops_it_with_exit_1() {
    let controller = controller();
    let outcome = drive_with_essential(controller, async {}).await;
    assert_eq!(outcome.report.exit_code, Some(1));
    assert_eq!(
        outcome.report.cause.to_string(),
        "essential task \"consumer\" ended while the service was running"
    );
}

#[tokio::test(start_paused = true)]
async fn an_essential_task_that_ends_after_shutdown_began_is_its_normal_end() {
    let controller = controller();
    controller.on_os_signal(sigterm());
    let outcome = drive_with_essential(controller, async move {
        controller.shutdown_started().await;
    })
    .await;
    assert_eq!(outcome.report.exit_code, Some(0), "{}", outcome.report);
    assert!(outcome.report.essential_failures.is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_essential_task_that_fails_during_the_drain_turns_exit_0_into_1() {
    let controller = controller();
    controller.on_os_signal(sigterm());
    let outcome = drive_with_essential(controller, async move {
        controller.stop_accepting().cancelled().await;
        Err::<(), _>("lost the broker while draining")
    })
    .await;
    assert_eq!(outcome.report.exit_code, Some(1));
    assert_eq!(outcome.report.cause, Cause::Signal("SIGTERM"));
    assert_eq!(
        outcome.report.essential_failures[0].to_string(),
        "essential task \"consumer\" failed: lost the broker while draining"
    );
    let json: serde_json::Value = serde_json::from_str(&outcome.report.to_json()).unwrap();
    assert_eq!(json["essential_failures"][0]["task"], "consumer");
}

#[tokio::test(start_paused = true)]
async fn an_essential_task_aborted_at_the_drain_deadline_is_aborted_work_not_a_failure() {
    let controller = controller();
    controller.on_os_signal(sigterm());
    let outcome = drive_with_essential(controller, std::future::pending::<()>()).await;
    assert!(outcome.report.essential_failures.is_empty());
    assert!(matches!(
        &outcome.report.drain,
        DrainOutcome::TimedOut {
            aborted_tasks: 1,
            ..
        }
    ));
    assert_eq!(outcome.report.exit_code, Some(1));
}

/// A job that hands itself back `hand_back_after` once the deadline token is cancelled.
fn job(controller: &'static Controller, hand_back_after: Duration) {
    let deadline = controller.deadline_token();
    let site = controller.inflight().site_named("job");
    controller.spawn(site, async move {
        deadline.cancelled().await;
        tokio::time::sleep(hand_back_after).await;
    });
}

#[tokio::test(start_paused = true)]
async fn jobs_that_hand_themselves_back_in_time_end_the_drain_as_handed_back_with_exit_0() {
    let controller = controller();
    job(controller, Duration::from_millis(100));
    job(controller, Duration::from_millis(200));
    controller.on_os_signal(sigterm());
    let began = Instant::now();
    let outcome = controller
        .drive(&config(0, 1_000, 10_000), &[], async {})
        .await;
    assert_eq!(
        outcome.report.drain,
        DrainOutcome::HandedBack {
            deadline: Deadline::DrainTimeout,
            handed_back: vec![crate::report::SiteCount {
                name: "job".into(),
                count: 2
            }],
        }
    );
    assert_eq!(outcome.report.exit_code, Some(0));
    assert_eq!(began.elapsed(), Duration::from_millis(1_200));
    let json: serde_json::Value = serde_json::from_str(&outcome.report.to_json()).unwrap();
    assert_eq!(json["drain"]["outcome"], "handed_back");
    assert_eq!(json["drain"]["handed_back"][0]["count"], 2);
}

#[tokio::test(start_paused = true)]
async fn a_job_that_ignores_the_deadline_token_is_aborted_after_abandon_timeout() {
    let controller = controller();
    job(controller, Duration::from_millis(100));
    job(controller, Duration::from_secs(60));
    controller.on_os_signal(sigterm());
    let began = Instant::now();
    let outcome = controller
        .drive(&config(0, 1_000, 10_000), &[], async {})
        .await;
    let one_job = vec![crate::report::SiteCount {
        name: "job".into(),
        count: 1,
    }];
    match &outcome.report.drain {
        DrainOutcome::TimedOut {
            abandoned,
            handed_back,
            aborted_tasks,
            ..
        } => {
            assert_eq!(*abandoned, one_job);
            assert_eq!(*handed_back, one_job);
            assert_eq!(*aborted_tasks, 1);
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    // drain_timeout 1 s, then abandon_timeout 1 s (the default).
    assert_eq!(began.elapsed(), Duration::from_secs(2));
    assert_eq!(outcome.report.exit_code, Some(1));
    assert!(
        outcome
            .report
            .to_string()
            .contains("handed back: job x1; abandoned: job x1"),
        "{}",
        outcome.report
    );
}

#[tokio::test(start_paused = true)]
async fn without_the_deadline_token_the_drain_aborts_at_its_deadline() {
    let controller = controller();
    let site = controller.inflight().site_named("job");
    controller.spawn(site, std::future::pending::<()>());
    controller.on_os_signal(sigterm());
    let began = Instant::now();
    let outcome = controller
        .drive(&config(0, 1_000, 10_000), &[], async {})
        .await;
    assert_eq!(began.elapsed(), Duration::from_secs(1));
    assert!(matches!(
        outcome.report.drain,
        DrainOutcome::TimedOut { .. }
    ));
}

#[tokio::test(start_paused = true)]
async fn the_drain_leaves_abandon_timeout_before_grace() {
    let controller = controller();
    job(controller, Duration::from_secs(60));
    controller.on_os_signal(sigterm());
    let began = Instant::now();
    let outcome = controller
        .drive(&config(0, 5_000, 3_000), &[], async {})
        .await;
    match &outcome.report.drain {
        DrainOutcome::TimedOut { deadline, .. } => assert_eq!(*deadline, Deadline::Grace),
        other => panic!("expected grace to cut the drain, got {other:?}"),
    }
    // grace 3 s: the deadline token at 2 s, the abort at 3 s.
    assert_eq!(began.elapsed(), Duration::from_secs(3));
}
