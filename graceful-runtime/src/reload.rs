//! Reloading without a restart: SIGHUP (or `graceful::reload()`) runs the reload hooks in order,
//! each under `hook_timeout`, after what reloads itself first (a TLS certificate read from
//! files). A reload never drains and never changes readiness; it never runs during a shutdown,
//! and one asked for while another runs is run once more after it.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::hooks::{self, box_hook, BoxHookFuture, Hook, HookOutcome, HookReport, IntoHookResult};
use crate::log::{event, human};
use crate::observe::Event;
use crate::sequence::Controller;
use crate::sync::lock;

/// What one reload did: each hook (and each self-reloading part, such as a certificate) with its
/// outcome, and how long it all took.
///
/// ```
/// # use graceful_runtime as graceful;
/// # async fn example() {
/// match graceful::reload().await {
///     Ok(report) if report.has_failures() => eprintln!("reload went wrong: {report}"),
///     Ok(report) => println!("{report}"),
///     Err(refused) => eprintln!("{refused}"),
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReloadReport {
    /// Each part that reloaded, in the order it ran.
    pub hooks: Vec<HookReport>,
    /// From the reload's start to its end.
    pub elapsed: Duration,
}

impl ReloadReport {
    /// Whether a part failed, timed out or was cut short by a shutdown: the state it guards
    /// stayed as it was.
    pub fn has_failures(&self) -> bool {
        self.hooks.iter().any(|hook| hook.outcome.is_failure())
    }
}

impl fmt::Display for ReloadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "reload in {}: ", human(self.elapsed))?;
        if self.hooks.is_empty() {
            return f.write_str("no reload hooks");
        }
        for (index, hook) in self.hooks.iter().enumerate() {
            let separator = if index == 0 { "" } else { "; " };
            write!(
                f,
                "{separator}{} {} ({})",
                hook.name,
                hook.outcome,
                human(hook.elapsed)
            )?;
        }
        Ok(())
    }
}

/// Why a reload did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReloadError {
    /// Shutdown had begun: reloads are ignored from then on.
    ShuttingDown,
    /// Nothing runs reloads in this process: it was not started by `#[graceful::main]` or
    /// `Builder::run`.
    NotRunning,
}

impl fmt::Display for ReloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReloadError::ShuttingDown => f.write_str("reload ignored: shutdown has begun"),
            ReloadError::NotRunning => f.write_str(
                "reload ignored: the process was not started by #[graceful::main] or Builder::run",
            ),
        }
    }
}

impl std::error::Error for ReloadError {}

type Outcome = Result<ReloadReport, ReloadError>;
type ReloadHookFn = Arc<dyn Fn() -> BoxHookFuture + Send + Sync>;
type SelfReload = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// The reloads of one controller.
pub(crate) struct Reloads {
    controller: &'static Controller,
    /// Set at start-up: where reloads run, and each hook's timeout.
    started: OnceLock<(tokio::runtime::Handle, Duration)>,
    static_hooks: &'static [hooks::StaticHook],
    /// `graceful::on_reload(f)`, in registration order.
    registered: Mutex<Vec<(String, ReloadHookFn)>>,
    /// Parts that reload themselves before the hooks, such as a certificate from files.
    parts: Mutex<Vec<(String, SelfReload)>>,
    queue: Mutex<Queue>,
}

/// Who waits for which reload.
#[derive(Default)]
struct Queue {
    running: bool,
    /// Waiting for the reload that runs after the one running now.
    next: Option<Vec<oneshot::Sender<Outcome>>>,
}

impl Reloads {
    pub(crate) fn new(
        controller: &'static Controller,
        static_hooks: &'static [hooks::StaticHook],
    ) -> Reloads {
        Reloads {
            controller,
            started: OnceLock::new(),
            static_hooks,
            registered: Mutex::new(Vec::new()),
            parts: Mutex::new(Vec::new()),
            queue: Mutex::new(Queue::default()),
        }
    }

    /// Lets reloads run on `runtime`, each hook under `hook_timeout`.
    pub(crate) fn start(&self, runtime: tokio::runtime::Handle, hook_timeout: Duration) {
        let _ = self.started.set((runtime, hook_timeout));
    }

    /// Adds a reload hook, run at every reload from now on after the static ones.
    pub(crate) fn on_reload<F, Fut>(&self, name: String, hook: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: IntoHookResult,
    {
        let hook: ReloadHookFn = Arc::new(move || box_hook(hook()));
        lock(&self.registered).push((name, hook));
    }

    /// Adds a part that reloads itself, synchronously, before the hooks of every reload.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))] // only certificates reload themselves
    pub(crate) fn reload_first(
        &self,
        name: String,
        reload: impl Fn() -> Result<(), String> + Send + Sync + 'static,
    ) {
        lock(&self.parts).push((name, Arc::new(reload)));
    }

    /// Asks for a reload; resolves to the outcome of the reload that includes this request.
    pub(crate) fn request(&'static self, asked_by: &str) -> impl Future<Output = Outcome> {
        let answer = self.enqueue(asked_by);
        async move {
            match answer {
                Ok(receiver) => receiver.await.unwrap_or(Err(ReloadError::ShuttingDown)),
                Err(refused) => Err(refused),
            }
        }
    }

    fn enqueue(&'static self, asked_by: &str) -> Result<oneshot::Receiver<Outcome>, ReloadError> {
        if self.controller.is_shutting_down() {
            event!(
                Info,
                "reload asked for by {asked_by} during shutdown: ignored"
            );
            return Err(ReloadError::ShuttingDown);
        }
        let Some((runtime, hook_timeout)) = self.started.get().cloned() else {
            return Err(ReloadError::NotRunning);
        };
        let (sender, receiver) = oneshot::channel();
        let mut queue = lock(&self.queue);
        if queue.running {
            event!(
                Info,
                "reload asked for by {asked_by} during a reload: it runs again after this one"
            );
            queue.next.get_or_insert_with(Vec::new).push(sender);
            return Ok(receiver);
        }
        queue.running = true;
        drop(queue);
        event!(Info, "reload asked for by {asked_by}");
        runtime.spawn(self.run_queue(vec![sender], hook_timeout));
        Ok(receiver)
    }

    /// Runs reloads until nobody waits for another.
    async fn run_queue(
        &'static self,
        mut waiting: Vec<oneshot::Sender<Outcome>>,
        hook_timeout: Duration,
    ) {
        loop {
            let outcome = if self.controller.is_shutting_down() {
                Err(ReloadError::ShuttingDown)
            } else {
                Ok(self.run_once(hook_timeout).await)
            };
            for waiter in waiting.drain(..) {
                let _ = waiter.send(outcome.clone());
            }
            let mut queue = lock(&self.queue);
            match queue.next.take() {
                Some(next) => waiting = next,
                None => {
                    queue.running = false;
                    return;
                }
            }
        }
    }

    async fn run_once(&self, hook_timeout: Duration) -> ReloadReport {
        let began = Instant::now();
        self.controller.publish(Event::ReloadBegun);
        let parts = lock(&self.parts).clone();
        let mut reports: Vec<HookReport> = parts
            .iter()
            .map(|(name, reload)| {
                let started = Instant::now();
                let outcome = match reload() {
                    Ok(()) => HookOutcome::Completed,
                    Err(error) => HookOutcome::Failed(error),
                };
                HookReport::new(0, name.clone(), outcome, started.elapsed())
            })
            .collect();
        let mut hooks: Vec<Hook> = self.static_hooks.iter().map(Hook::from_static).collect();
        hooks.extend(lock(&self.registered).iter().map(|(name, hook)| {
            let hook = Arc::clone(hook);
            Hook::registered(0, name.clone().into(), move || hook())
        }));
        // One at a time, in order (a stable sort keeps registration order within one order),
        // so that a hook may rely on the ones before it; no grace: each has its own timeout.
        hooks.sort_by_key(Hook::order);
        let far = Instant::now() + Duration::from_secs(365 * 24 * 3600);
        for hook in hooks {
            if self.controller.is_shutting_down() {
                reports.push(hooks::not_run(hook, HookOutcome::Interrupted));
                continue;
            }
            reports.extend(hooks::run_all(vec![hook], hook_timeout, far).await);
        }
        let report = ReloadReport {
            hooks: reports,
            elapsed: began.elapsed(),
        };
        if report.has_failures() {
            event!(Warn, "{report}");
        } else {
            event!(Info, "{report}");
        }
        self.controller.publish(Event::ReloadEnded);
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inflight::InFlight;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn reloads() -> &'static Reloads {
        let controller = Box::leak(Box::new(Controller::new(InFlight::leak())));
        let reloads = Box::leak(Box::new(Reloads::new(controller, &[])));
        reloads.start(
            tokio::runtime::Handle::current(),
            Duration::from_millis(500),
        );
        reloads
    }

    fn names_and_outcomes(report: &ReloadReport) -> Vec<(String, HookOutcome)> {
        let hooks = report.hooks.iter();
        hooks
            .map(|hook| (hook.name.clone(), hook.outcome.clone()))
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn parts_then_hooks_run_in_order_and_a_failure_does_not_stop_the_next() {
        let reloads = reloads();
        reloads.reload_first("certificate".into(), || Err("no key in key.pem".into()));
        reloads.on_reload("settings".into(), || async { Err::<(), _>("bad line 3") });
        reloads.on_reload("hangs".into(), std::future::pending::<()>);
        reloads.on_reload("cache".into(), || async {});
        let report = reloads.request("a test").await.unwrap();
        assert_eq!(
            names_and_outcomes(&report),
            [
                (
                    "certificate".into(),
                    HookOutcome::Failed("no key in key.pem".into())
                ),
                ("settings".into(), HookOutcome::Failed("bad line 3".into())),
                (
                    "hangs".into(),
                    HookOutcome::TimedOut(Duration::from_millis(500))
                ),
                ("cache".into(), HookOutcome::Completed),
            ]
        );
        assert!(report.has_failures());
        assert!(
            report.to_string().contains("settings failed: bad line 3"),
            "{report}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn every_reload_runs_the_hooks_again() {
        let reloads = reloads();
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&runs);
        reloads.on_reload("count".into(), move || {
            counted.fetch_add(1, Ordering::Relaxed);
            async {}
        });
        reloads.request("first").await.unwrap();
        reloads.request("second").await.unwrap();
        assert_eq!(runs.load(Ordering::Relaxed), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn reloads_asked_for_during_one_run_once_more_after_it() {
        let reloads = reloads();
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&runs);
        reloads.on_reload("slow".into(), move || {
            counted.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(100))
        });
        let first = reloads.request("first");
        let second = reloads.request("second");
        let third = reloads.request("third");
        let (first, second, third) = tokio::join!(first, second, third);
        assert!(first.is_ok() && second.is_ok() && third.is_ok());
        assert_eq!(
            runs.load(Ordering::Relaxed),
            2,
            "the two asked for during one ran once"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_reload_asked_for_during_shutdown_is_refused() {
        let reloads = reloads();
        reloads.controller.request_shutdown();
        assert_eq!(
            reloads.request("late").await,
            Err(ReloadError::ShuttingDown)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_during_a_reload_lets_the_running_hook_finish_and_stops() {
        let reloads = reloads();
        let controller = reloads.controller;
        let finished = Arc::new(AtomicUsize::new(0));
        let done = Arc::clone(&finished);
        reloads.on_reload("running".into(), move || {
            let done = Arc::clone(&done);
            async move {
                controller.request_shutdown();
                tokio::time::sleep(Duration::from_millis(50)).await;
                done.fetch_add(1, Ordering::Relaxed);
            }
        });
        reloads.on_reload("next".into(), || async {});
        let report = reloads.request("a test").await.unwrap();
        assert_eq!(finished.load(Ordering::Relaxed), 1);
        assert_eq!(report.hooks[0].outcome, HookOutcome::Completed);
        assert_eq!(report.hooks[1].outcome, HookOutcome::Interrupted);
    }

    #[tokio::test]
    async fn without_a_start_nothing_reloads() {
        let controller = Box::leak(Box::new(Controller::new(InFlight::leak())));
        let reloads = Box::leak(Box::new(Reloads::new(controller, &[])));
        assert_eq!(
            reloads.request("a test").await,
            Err(ReloadError::NotRunning)
        );
    }
}
