//! The run policy and the scheduler, tested together through `run_all`: ordering,
//! concurrency, failures, panics, timeouts and where each kind of hook runs.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::{run_all, Hook, HookFn, HookOutcome, HookResult, StaticHook};

type Log = Arc<Mutex<Vec<String>>>;

fn logging(log: &Log, order: i32, name: &'static str) -> Hook {
    let log = log.clone();
    Hook::registered(order, name.into(), move || async move {
        log.lock().unwrap().push(name.to_owned());
    })
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(3600)
}

#[tokio::test(start_paused = true)]
async fn hooks_run_in_ascending_order() {
    let log = Log::default();
    let hooks = vec![
        logging(&log, 20, "cache"),
        logging(&log, -5, "stop-consumers"),
        logging(&log, 10, "pool"),
    ];
    let reports = run_all(hooks, Duration::from_secs(1), far_future()).await;
    assert_eq!(*log.lock().unwrap(), ["stop-consumers", "pool", "cache"]);
    assert!(reports
        .iter()
        .all(|report| report.outcome == HookOutcome::Completed));
}

#[tokio::test(start_paused = true)]
async fn hooks_of_equal_order_run_concurrently() {
    // Each waits for the other: only concurrent execution lets both finish.
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let hooks = ["a", "b"]
        .into_iter()
        .map(|name| {
            let barrier = barrier.clone();
            Hook::registered(1, name.into(), move || async move {
                barrier.wait().await;
            })
        })
        .collect();
    let reports = run_all(hooks, Duration::from_secs(1), far_future()).await;
    assert_eq!(reports.len(), 2);
    assert!(reports
        .iter()
        .all(|report| report.outcome == HookOutcome::Completed));
}

#[tokio::test(start_paused = true)]
async fn failing_panicking_and_hanging_hooks_do_not_stop_the_next() {
    failing_panicking_and_hanging_then_one_more().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_panicking_and_hanging_tasks_do_not_stop_the_next() {
    failing_panicking_and_hanging_then_one_more().await;
}

async fn failing_panicking_and_hanging_then_one_more() {
    let log = Log::default();
    let hooks = vec![
        Hook::registered(1, "errs".into(), || async { Err::<(), _>("disk full") }),
        Hook::registered(2, "panics".into(), || async {
            if true {
                panic!("boom")
            }
        }),
        Hook::registered(3, "hangs".into(), std::future::pending::<()>),
        logging(&log, 4, "after"),
    ];
    let reports = run_all(hooks, Duration::from_millis(300), far_future()).await;
    let outcomes: Vec<_> = reports
        .iter()
        .map(|report| report.outcome.clone())
        .collect();
    assert_eq!(
        outcomes,
        [
            HookOutcome::Failed("disk full".into()),
            HookOutcome::Panicked("boom".into()),
            HookOutcome::TimedOut(Duration::from_millis(300)),
            HookOutcome::Completed,
        ]
    );
    assert_eq!(*log.lock().unwrap(), ["after"]);
}

/// The task an async hook ran in, seen from inside it.
async fn task_of_hook() -> Option<tokio::task::Id> {
    let seen = Arc::new(Mutex::new(None));
    let hook = {
        let seen = seen.clone();
        Hook::registered(0, "where".into(), move || async move {
            *seen.lock().unwrap() = tokio::task::try_id();
        })
    };
    run_all(vec![hook], Duration::from_secs(1), far_future()).await;
    let seen = *seen.lock().unwrap();
    seen
}

#[tokio::test]
async fn on_a_current_thread_runtime_async_hooks_run_in_place() {
    let teardown = tokio::spawn(async { (tokio::task::id(), task_of_hook().await) });
    let (teardown_task, hook_task) = teardown.await.unwrap();
    assert_eq!(hook_task, Some(teardown_task));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_multi_thread_runtime_async_hooks_get_a_task_of_their_own() {
    let teardown = tokio::spawn(async { (tokio::task::id(), task_of_hook().await) });
    let (teardown_task, hook_task) = teardown.await.unwrap();
    assert!(hook_task.is_some_and(|hook_task| hook_task != teardown_task));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_multi_thread_runtime_an_async_hook_blocking_its_thread_times_out() {
    let gate = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
    let blocked = gate.clone();
    let hooks = vec![Hook::registered(0, "blocks".into(), move || async move {
        let (open, opened) = &*blocked;
        drop(opened.wait_while(open.lock().unwrap(), |open| !*open));
    })];
    let reports = run_all(hooks, Duration::from_millis(100), far_future()).await;
    assert_eq!(
        reports[0].outcome,
        HookOutcome::TimedOut(Duration::from_millis(100))
    );
    *gate.0.lock().unwrap() = true;
    gate.1.notify_all();
}

#[tokio::test]
async fn a_panic_while_building_a_hooks_future_is_reported() {
    let hooks = vec![Hook::registered(
        0,
        "builds".into(),
        || -> std::future::Ready<()> { panic!("no pool") },
    )];
    let reports = run_all(hooks, Duration::from_secs(1), far_future()).await;
    assert_eq!(reports[0].outcome, HookOutcome::Panicked("no pool".into()));
}

#[tokio::test(start_paused = true)]
async fn hooks_after_the_grace_deadline_are_skipped() {
    let log = Log::default();
    let grace = Instant::now() + Duration::from_millis(500);
    let hooks = vec![
        Hook::registered(1, "slow".into(), std::future::pending::<()>),
        logging(&log, 2, "never"),
    ];
    let reports = run_all(hooks, Duration::from_secs(5), grace).await;
    assert_eq!(
        reports[0].outcome,
        HookOutcome::Skipped,
        "cut short by grace"
    );
    assert_eq!(reports[1].outcome, HookOutcome::Skipped);
    assert!(log.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_stuck_sync_hook_is_abandoned_on_time() {
    // The hook blocks its thread until the test opens the gate, after the assertions.
    static GATE: (std::sync::Mutex<bool>, std::sync::Condvar) =
        (std::sync::Mutex::new(false), std::sync::Condvar::new());
    fn stuck() -> HookResult {
        let (open, opened) = &GATE;
        drop(opened.wait_while(open.lock().unwrap(), |open| !*open));
        Ok(())
    }
    let hooks = vec![Hook::from_static(&StaticHook {
        order: 0,
        name: "stuck",
        timeout: Some(Duration::from_millis(100)),
        run: HookFn::Sync(stuck),
    })];
    let started = std::time::Instant::now();
    let reports = run_all(hooks, Duration::from_secs(5), far_future()).await;
    assert_eq!(
        reports[0].outcome,
        HookOutcome::TimedOut(Duration::from_millis(100))
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "waited for a blocked thread"
    );
    *GATE.0.lock().unwrap() = true;
    GATE.1.notify_all();
}
