//! The teardown table: hooks declared with `#[graceful::on_shutdown]` (a link-time slice) and
//! hooks registered at run time, run in ascending order, each under its own timeout.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

/// What a hook returns once its output is normalised: `Err` holds the error's `Display`.
pub type HookResult = Result<(), String>;

/// An async hook's future, boxed so that the static table can hold fn pointers.
pub type BoxHookFuture = Pin<Box<dyn Future<Output = HookResult> + Send + 'static>>;

/// One `#[graceful::on_shutdown]` fn, as the macro records it in the `HOOKS` slice.
#[derive(Debug)]
pub struct StaticHook {
    /// Lower runs first; equal orders run concurrently.
    pub order: i32,
    /// `module::fn`, or the `name` given to the attribute.
    pub name: &'static str,
    /// The attribute's `timeout`; `None` means the run's `hook_timeout`.
    pub timeout: Option<Duration>,
    /// How to call it.
    pub run: HookFn,
}

/// How a static hook is called.
#[derive(Debug, Clone, Copy)]
pub enum HookFn {
    /// A plain fn: run on the blocking pool, so that it cannot stall the runtime.
    Sync(fn() -> HookResult),
    /// An `async fn`: spawned as a task.
    Async(fn() -> BoxHookFuture),
}

/// Every `#[graceful::on_shutdown]` hook linked into the binary.
#[linkme::distributed_slice]
pub static HOOKS: [StaticHook];

/// What a hook fn may return: `()` or `Result<(), E: Display>`.
#[diagnostic::on_unimplemented(
    message = "a shutdown hook must return `()` or `Result<(), E>` where `E: Display`, not `{Self}`",
    label = "this return type is not allowed for a shutdown hook"
)]
pub trait IntoHookResult {
    /// Normalises the output; an error keeps its `Display` text.
    fn into_hook_result(self) -> HookResult;
}

impl IntoHookResult for () {
    fn into_hook_result(self) -> HookResult {
        Ok(())
    }
}

impl<E: fmt::Display> IntoHookResult for Result<(), E> {
    fn into_hook_result(self) -> HookResult {
        self.map_err(|error| error.to_string())
    }
}

/// Boxes an async hook's future, normalising its output.
pub fn box_hook<F>(future: F) -> BoxHookFuture
where
    F: Future + Send + 'static,
    F::Output: IntoHookResult,
{
    Box::pin(async move { future.await.into_hook_result() })
}

/// Lets generated code point a type error at the hook's return type.
pub fn assert_hook_output<T: IntoHookResult>() {}

type RegisteredFn = Box<dyn FnOnce() -> BoxHookFuture + Send>;

/// A hook ready to run: static or registered.
pub(crate) struct Hook {
    order: i32,
    name: Cow<'static, str>,
    timeout: Option<Duration>,
    body: HookBody,
}

enum HookBody {
    Static(HookFn),
    Registered(RegisteredFn),
}

impl Hook {
    pub(crate) fn from_static(hook: &StaticHook) -> Hook {
        Hook {
            order: hook.order,
            name: Cow::Borrowed(hook.name),
            timeout: hook.timeout,
            body: HookBody::Static(hook.run),
        }
    }

    pub(crate) fn registered<F, Fut>(order: i32, name: Cow<'static, str>, hook: F) -> Hook
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: IntoHookResult,
    {
        Hook {
            order,
            name,
            timeout: None,
            body: HookBody::Registered(Box::new(move || box_hook(hook()))),
        }
    }

    /// Starts the hook. A sync hook runs on the blocking pool. An async hook gets a task of its
    /// own on a multi-thread runtime, so that one blocking its thread cannot hold teardown; on a
    /// current-thread runtime a task would share the one thread anyway, so teardown polls it in
    /// place and the hook starts without a spawn's round trip through the scheduler.
    fn start(self) -> Started {
        let in_place = tokio::runtime::Handle::current().runtime_flavor()
            == tokio::runtime::RuntimeFlavor::CurrentThread;
        match self.body {
            HookBody::Static(HookFn::Sync(hook)) => {
                Started::Task(tokio::task::spawn_blocking(hook))
            }
            HookBody::Static(HookFn::Async(hook)) if in_place => Started::in_place(hook),
            HookBody::Static(HookFn::Async(hook)) => {
                Started::Task(tokio::spawn(async move { hook().await }))
            }
            HookBody::Registered(hook) if in_place => Started::in_place(hook),
            // Called inside the task, so that a panic while building the future is caught too.
            HookBody::Registered(hook) => Started::Task(tokio::spawn(async move { hook().await })),
        }
    }
}

/// A hook that has started; resolves to how it ended. Dropping it cancels an async hook.
enum Started {
    Task(JoinHandle<HookResult>),
    /// Panics are caught at each poll, as a task's would be.
    InPlace(BoxHookFuture),
    /// Building its future panicked.
    Ended(Option<HookOutcome>),
}

impl Started {
    fn in_place(build: impl FnOnce() -> BoxHookFuture) -> Started {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(build)) {
            Ok(future) => Started::InPlace(future),
            Err(payload) => Started::Ended(Some(HookOutcome::Panicked(
                crate::panics::panic_message(payload.as_ref()),
            ))),
        }
    }

    /// Cancels an async hook; a sync one keeps its blocking thread, which the process abandons:
    /// exit never waits for the blocking pool.
    fn cancel(self) {
        if let Started::Task(handle) = self {
            handle.abort();
        }
    }
}

impl Future for Started {
    type Output = HookOutcome;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<HookOutcome> {
        let result = match self.get_mut() {
            Started::Task(handle) => match std::task::ready!(Pin::new(handle).poll(cx)) {
                Ok(result) => result,
                Err(join_error) if join_error.is_panic() => {
                    let payload = join_error.into_panic();
                    return Poll::Ready(HookOutcome::Panicked(crate::panics::panic_message(
                        payload.as_ref(),
                    )));
                }
                Err(_cancelled) => Err("cancelled".into()),
            },
            Started::InPlace(future) => match crate::panics::poll_isolated(future.as_mut(), cx) {
                Ok(Poll::Pending) => return Poll::Pending,
                Ok(Poll::Ready(result)) => result,
                Err(message) => return Poll::Ready(HookOutcome::Panicked(message)),
            },
            Started::Ended(outcome) => {
                return Poll::Ready(outcome.take().expect("polled after it ended"))
            }
        };
        Poll::Ready(match result {
            Ok(()) => HookOutcome::Completed,
            Err(error) => HookOutcome::Failed(error),
        })
    }
}

/// How one hook ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookOutcome {
    /// Returned `()` or `Ok(())`.
    Completed,
    /// Returned an error, shown with `Display`.
    Failed(String),
    /// Panicked; the panic message.
    Panicked(String),
    /// Did not finish within its timeout. An async hook is cancelled; a sync one is abandoned
    /// on its thread.
    TimedOut(Duration),
    /// Not started, or cut short, because the grace period was spent.
    Skipped,
    /// Registered after teardown had begun: not run.
    Late,
}

impl HookOutcome {
    /// Whether this outcome makes the shutdown a failure.
    pub fn is_failure(&self) -> bool {
        !matches!(self, HookOutcome::Completed)
    }
}

impl fmt::Display for HookOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HookOutcome::Completed => f.write_str("ok"),
            HookOutcome::Failed(error) => write!(f, "failed: {error}"),
            HookOutcome::Panicked(message) => write!(f, "panicked: {message}"),
            HookOutcome::TimedOut(limit) => {
                write!(f, "timed out after {}", humantime::format_duration(*limit))
            }
            HookOutcome::Skipped => f.write_str("skipped: grace period spent"),
            HookOutcome::Late => f.write_str("not run: registered after teardown began"),
        }
    }
}

/// One hook's line in the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookReport {
    /// The `order` it was declared or registered with: lower orders ran first, equal orders
    /// together.
    pub order: i32,
    /// `module::fn` of an `#[graceful::on_shutdown]` fn, the attribute's `name`, or the name
    /// given to `register_hook`: what to search the code for.
    pub name: String,
    /// How it ended; [`HookOutcome::is_failure`] says whether it turns the exit code to 1.
    pub outcome: HookOutcome,
    /// Wall time from its start to its end (or to its timeout), for spotting slow teardown.
    pub elapsed: Duration,
}

/// Runs `hooks` in ascending order, equal orders concurrently, each under its own timeout
/// (`default_timeout` unless the hook has one) and all under `grace_deadline`. A failure does
/// not stop the hooks after it.
pub(crate) async fn run_all(
    mut hooks: Vec<Hook>,
    default_timeout: Duration,
    grace_deadline: Instant,
) -> Vec<HookReport> {
    // Stable: hooks of one order keep their table order in the report.
    hooks.sort_by_key(|hook| hook.order);
    let mut reports = Vec::with_capacity(hooks.len());
    let mut remaining = hooks.into_iter().peekable();
    while let Some(first) = remaining.next() {
        let order = first.order;
        let mut group = vec![first];
        while let Some(next) = remaining.next_if(|hook| hook.order == order) {
            group.push(next);
        }
        if Instant::now() >= grace_deadline {
            reports.extend(group.into_iter().map(|hook| skipped(hook, Duration::ZERO)));
            continue;
        }
        let running: Vec<_> = group
            .into_iter()
            .map(|hook| run_one(hook, default_timeout, grace_deadline))
            .collect();
        reports.extend(join_all(running).await);
    }
    reports
}

fn skipped(hook: Hook, elapsed: Duration) -> HookReport {
    HookReport {
        order: hook.order,
        name: hook.name.into_owned(),
        outcome: HookOutcome::Skipped,
        elapsed,
    }
}

async fn run_one(hook: Hook, default_timeout: Duration, grace_deadline: Instant) -> HookReport {
    let limit = hook.timeout.unwrap_or(default_timeout);
    let started = Instant::now();
    let own_deadline = started + limit;
    let deadline = own_deadline.min(grace_deadline);
    let order = hook.order;
    let name = hook.name.to_string();
    let mut running = hook.start();
    let outcome = match tokio::time::timeout_at(deadline, &mut running).await {
        Ok(outcome) => outcome,
        Err(_elapsed) => {
            running.cancel();
            if own_deadline <= grace_deadline {
                HookOutcome::TimedOut(limit)
            } else {
                HookOutcome::Skipped
            }
        }
    };
    HookReport {
        order,
        name,
        outcome,
        elapsed: started.elapsed(),
    }
}

/// Awaits every future, concurrently, keeping their order.
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

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
}
