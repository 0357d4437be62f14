//! The shutdown controller: the state a shutdown needs (cause, health, phase, tokens, hooks,
//! values kept until exit) and the sequence that drives it, from first signal to exit code.
//!
//! A controller is an ordinary value: tests make as many as they like. The process-wide one in
//! `global.rs` is a thin layer over it.

use std::any::Any;
use std::borrow::Cow;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::hooks::{self, Hook, HookOutcome, HookReport, IntoHookResult, StaticHook};
use crate::inflight::{lock, InFlight, InFlightGuard, Site};
use crate::phase::{Health, HealthState, Phase, PhaseState};
use crate::report::{event, Cause, DrainOutcome, MainStatus, ShutdownReport};
use crate::signals::Received;
use crate::systemd;

/// How long the watchdog lets the sequence overrun `grace` before it forces the exit. The
/// sequence enforces `grace` itself; this only catches a runtime that is blocked.
pub(crate) const WATCHDOG_MARGIN: Duration = Duration::from_millis(500);

/// The state of one process's shutdown.
pub(crate) struct Controller {
    inflight: &'static InFlight,
    health: HealthState,
    phase: PhaseState,
    begun: CancellationToken,
    stop_accepting: CancellationToken,
    started: OnceLock<(Instant, Cause)>,
    fatal: OnceLock<(u8, String)>,
    os_signals: AtomicUsize,
    registered: Mutex<RegisteredHooks>,
    kept: Mutex<Vec<Box<dyn Any + Send>>>,
    /// The exit code once the report is out, for the watchdog; -1 until then.
    final_code: AtomicI32,
}

#[derive(Default)]
struct RegisteredHooks {
    hooks: Vec<Hook>,
    closed: bool,
    late: Vec<HookReport>,
}

/// What to do about an OS signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignalAction {
    /// The first signal: shutdown begins (or, when it had already begun another way, the
    /// signal joins the running sequence).
    Shutdown,
    /// A second signal: exit at once with this code.
    ForceExit(i32),
}

/// What the sequence ends with.
pub(crate) struct Outcome {
    // Read by the tests; the process emits it as an event rather than returning it.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) report: ShutdownReport,
    pub(crate) exit_code: ExitCode,
}

/// What the main body may return: `()`, `Result<(), E: Debug>` or `ExitCode`.
#[diagnostic::on_unimplemented(
    message = "`#[graceful::main]` fns must return `()`, `Result<(), E>` where `E: Debug`, or `std::process::ExitCode`, not `{Self}`",
    label = "this return type is not allowed for a graceful main"
)]
pub trait MainOutput {
    /// How the body ended, for the report and the exit code.
    fn into_main_status(self) -> MainOutcome;
}

/// A main body's result, as the sequence uses it.
#[derive(Debug)]
pub struct MainOutcome {
    status: MainStatus,
    code: Option<ExitCode>,
}

impl MainOutput for () {
    fn into_main_status(self) -> MainOutcome {
        MainOutcome {
            status: MainStatus::Returned,
            code: None,
        }
    }
}

impl<E: std::fmt::Debug> MainOutput for Result<(), E> {
    fn into_main_status(self) -> MainOutcome {
        match self {
            Ok(()) => ().into_main_status(),
            Err(error) => MainOutcome {
                status: MainStatus::Error(format!("{error:?}")),
                code: None,
            },
        }
    }
}

impl MainOutput for ExitCode {
    fn into_main_status(self) -> MainOutcome {
        if self == ExitCode::SUCCESS {
            ().into_main_status()
        } else {
            MainOutcome {
                status: MainStatus::ExitCode(format!("{self:?}")),
                code: Some(self),
            }
        }
    }
}

/// Lets generated code point a type error at main's return type.
pub fn assert_main_output<T: MainOutput>() {}

impl Controller {
    pub(crate) fn new(inflight: &'static InFlight) -> Controller {
        Controller {
            inflight,
            health: HealthState::new(),
            phase: PhaseState::new(),
            begun: CancellationToken::new(),
            stop_accepting: CancellationToken::new(),
            started: OnceLock::new(),
            fatal: OnceLock::new(),
            os_signals: AtomicUsize::new(0),
            registered: Mutex::new(RegisteredHooks::default()),
            kept: Mutex::new(Vec::new()),
            final_code: AtomicI32::new(-1),
        }
    }

    pub(crate) fn inflight(&self) -> &'static InFlight {
        self.inflight
    }

    /// Begins shutdown, once: the first cause wins and later calls change nothing.
    pub(crate) fn begin_shutdown(&self, cause: Cause) -> bool {
        let mut first = false;
        self.started.get_or_init(|| {
            first = true;
            (Instant::now(), cause)
        });
        if first {
            self.health.drain();
            systemd::stopping();
            self.enter_phase(Phase::PreStop);
            let (_, cause) = self.started.get().expect("just set");
            event!(Info, "shutdown begun by {cause}: readiness now fails");
            self.begun.cancel();
        }
        first
    }

    pub(crate) fn shutdown_with(&self, code: u8, reason: String) {
        let _ = self.fatal.set((code, reason.clone()));
        if !self.begin_shutdown(Cause::Fatal {
            code,
            reason: reason.clone(),
        }) {
            event!(
                Error,
                "shutdown_with({code}): {reason}; the process will exit with {code}"
            );
        }
    }

    /// Decides what an OS signal does: the first begins shutdown, the second forces the exit.
    pub(crate) fn on_os_signal(&self, received: Received) -> SignalAction {
        let count = self.os_signals.fetch_add(1, Ordering::AcqRel) + 1;
        if count == 1 {
            if !self.begin_shutdown(Cause::Signal(received.name)) {
                event!(Info, "{} received: joins the shutdown already under way (a second signal forces exit)", received.name);
            }
            SignalAction::Shutdown
        } else {
            SignalAction::ForceExit(received.forced_exit_code)
        }
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        // One atomic load; `CancellationToken::is_cancelled` takes a mutex, too dear for a
        // per-request check.
        self.started.get().is_some()
    }

    pub(crate) fn health(&self) -> Health {
        self.health.get()
    }

    pub(crate) fn ready(&self) -> bool {
        let changed = self.health.ready();
        if changed {
            systemd::ready();
        }
        changed
    }

    pub(crate) fn unready(&self) -> bool {
        self.health.unready()
    }

    pub(crate) fn phase(&self) -> Phase {
        self.phase.get()
    }

    /// Moves to `phase`, sampling the in-flight gauge at the change.
    fn enter_phase(&self, phase: Phase) {
        self.phase.enter(phase);
        crate::metrics::sample(self.inflight);
    }

    /// Cancelled at the stop-accepting moment (after `pre_stop`).
    pub(crate) fn stop_accepting(&self) -> &CancellationToken {
        &self.stop_accepting
    }

    pub(crate) fn track(&self, name: &'static str) -> InFlightGuard {
        self.inflight.site_named(name).enter()
    }

    pub(crate) fn spawn<F>(
        &self,
        site: &'static Site,
        future: F,
    ) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.inflight.spawn(site, future)
    }

    pub(crate) fn register_hook<F, Fut>(&self, order: i32, name: Cow<'static, str>, hook: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: IntoHookResult,
    {
        let mut registered = lock(&self.registered);
        if registered.closed {
            event!(
                Warn,
                "hook {name:?} (order {order}) registered after teardown began: it will not run"
            );
            registered.late.push(HookReport {
                order,
                name: name.into_owned(),
                outcome: HookOutcome::Late,
                elapsed: Duration::ZERO,
            });
        } else {
            registered.hooks.push(Hook::registered(order, name, hook));
        }
    }

    pub(crate) fn keep_until_exit(&self, value: Box<dyn Any + Send>) {
        lock(&self.kept).push(value);
    }

    /// Drops what `keep_until_exit` holds, newest first (the order a stack of guards unwinds).
    pub(crate) fn release_kept(&self) {
        let kept = std::mem::take(&mut *lock(&self.kept));
        kept.into_iter().rev().for_each(drop);
    }

    /// Releases kept values without waiting on a lock held elsewhere, for a forced exit.
    fn try_release_kept(&self) {
        if let Ok(mut kept) = self.kept.try_lock() {
            std::mem::take(&mut *kept).into_iter().rev().for_each(drop);
        }
    }

    /// What a forced exit prints: the phase it cut short and the work it abandoned.
    pub(crate) fn abandonment(&self) -> String {
        let busy = self.inflight.busy_sites();
        let in_flight = if busy.is_empty() {
            "nothing in flight".to_owned()
        } else {
            let sites: Vec<String> = busy.iter().map(ToString::to_string).collect();
            format!("abandoned in flight: {}", sites.join(", "))
        };
        format!("in phase {}; {in_flight}", self.phase())
    }

    /// Exits the process now: reports why, releases kept values (flushing log writers), exits.
    pub(crate) fn force_exit(&self, code: i32, why: &str) -> ! {
        event!(Error, "{why}: forcing exit {code} {}", self.abandonment());
        self.try_release_kept();
        flush_std();
        std::process::exit(code)
    }

    /// The watchdog: once shutdown has begun, forces the exit if the sequence is still running
    /// `grace` (plus a small margin) later. Runs on the signal thread.
    pub(crate) async fn enforce_grace(&self, grace: Duration) {
        self.begun.cancelled().await;
        let (started, _) = self.started.get().expect("begun implies started");
        let deadline = *started + grace + WATCHDOG_MARGIN;
        // systemd's stop timeout follows the sequence: renewed until our own deadline, and no
        // further, so a stuck process is still killed.
        let mut renew = tokio::time::interval(systemd::EXTEND_EVERY);
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => break,
                _ = renew.tick() => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    systemd::extend_timeout(left + 2 * systemd::EXTEND_EVERY);
                }
            }
        }
        let final_code = self.final_code.load(Ordering::Acquire);
        if final_code >= 0 {
            // The report is out; only releasing kept values or the runtime's exit is stuck.
            self.try_release_kept();
            flush_std();
            std::process::exit(final_code);
        }
        let code = self.fatal.get().map_or(1, |(code, _)| i32::from(*code));
        self.force_exit(
            code,
            &format!("grace period ({}) spent", humantime::format_duration(grace)),
        );
    }

    /// Runs `body` and, once shutdown begins, the whole sequence: pre-stop, stop-accepting,
    /// drain, teardown, report. Returns the report and the exit code.
    pub(crate) async fn drive<F, T>(
        &self,
        config: &Config,
        static_hooks: &[StaticHook],
        body: F,
    ) -> Outcome
    where
        F: Future<Output = T>,
        T: MainOutput,
    {
        systemd::spawn_watchdog_pings();
        crate::metrics::spawn_sampler(self.inflight);
        let mut main = MainBody::new(body);

        tokio::select! {
            biased;
            _ = self.begun.cancelled() => {}
            _ = main.run() => { self.begin_shutdown(Cause::MainReturned); }
        }
        let (started, cause) = self.started.get().cloned().expect("begun implies started");
        let grace_deadline = started + config.grace;
        let mut phases = PhaseClock::new(started);

        if !main.is_done() && !config.pre_stop.is_zero() {
            event!(
                Info,
                "pre-stop: still serving for {} so load balancers stop sending traffic",
                humantime::format_duration(config.pre_stop)
            );
            let until = (started + config.pre_stop).min(grace_deadline);
            tokio::select! {
                _ = tokio::time::sleep_until(until) => {}
                _ = main.run() => {}
            }
            phases.mark(Phase::PreStop);
        }

        self.enter_phase(Phase::Drain);
        self.inflight.begin_drain();
        // Counted before the token is cancelled: work that ends the moment it sees the token
        // (a stream saying goodbye) was still in flight at stop-accepting.
        let in_flight_at_stop = self.inflight.total();
        self.stop_accepting.cancel();
        let drain_deadline = (Instant::now() + config.drain_timeout).min(grace_deadline);
        event!(
            Info,
            "stop accepting: {in_flight_at_stop} in flight, draining for up to {}",
            crate::report::ms(drain_deadline.saturating_duration_since(Instant::now()))
        );
        let drain = self.drain(&mut main, drain_deadline, grace_deadline).await;
        phases.mark(Phase::Drain);

        self.enter_phase(Phase::Teardown);
        self.inflight.begin_teardown();
        let hooks = self.close_registration(static_hooks);
        event!(Info, "teardown: running {} hook(s)", hooks.len());
        let mut hook_reports = hooks::run_all(hooks, config.hook_timeout, grace_deadline).await;
        // Taken after the run: hooks themselves may register (too late) during teardown.
        hook_reports.append(&mut lock(&self.registered).late);
        phases.mark(Phase::Teardown);
        self.enter_phase(Phase::Exit);

        let main_status = main.into_status();
        let cause_kind = cause.clone();
        let mut report = ShutdownReport {
            cause,
            phases: phases.into_phases(),
            in_flight_at_stop,
            drain,
            hooks: hook_reports,
            late_calls: self.inflight.late_sites(),
            main: main_status.status.clone(),
            // Shown when it did not start the shutdown itself (then the cause says it).
            fatal: self
                .fatal
                .get()
                .filter(|_| !matches!(cause_kind, Cause::Fatal { .. }))
                .cloned(),
            exit_code: None,
        };
        let (exit_code, number) = self.exit_code(&report, main_status.code);
        report.exit_code = number;
        self.final_code
            .store(number.map_or(1, i32::from), Ordering::Release);
        crate::report::emit_report(&report, config.report);
        Outcome { report, exit_code }
    }

    async fn drain<F: Future<Output = T>, T: MainOutput>(
        &self,
        main: &mut MainBody<F, T>,
        deadline: Instant,
        grace_deadline: Instant,
    ) -> DrainOutcome {
        let second = Duration::from_secs(1);
        let mut progress = tokio::time::interval_at(Instant::now() + second, second);
        loop {
            tokio::select! {
                biased;
                _ = main.run() => {}
                _ = self.inflight.wait_idle(), if main.is_done() => return DrainOutcome::Drained,
                _ = tokio::time::sleep_until(deadline) => break,
                _ = progress.tick() => {
                    let busy: Vec<String> = self.inflight.busy_sites().iter().map(ToString::to_string).collect();
                    let main_state = if main.is_done() { "" } else { "; main body still running" };
                    event!(Info, "draining: {} in flight [{}]{main_state}", self.inflight.total(), busy.join(", "));
                }
            }
        }
        let abandoned = self.inflight.busy_sites();
        main.abandon();
        let aborted_tasks = self.inflight.abort_tasks();
        if deadline >= grace_deadline {
            DrainOutcome::GraceSpent {
                abandoned,
                aborted_tasks,
            }
        } else {
            DrainOutcome::TimedOut {
                abandoned,
                aborted_tasks,
            }
        }
    }

    /// Closes run-time registration and returns every hook to run.
    fn close_registration(&self, static_hooks: &[StaticHook]) -> Vec<Hook> {
        let mut registered = lock(&self.registered);
        registered.closed = true;
        let mut hooks: Vec<Hook> = static_hooks.iter().map(Hook::from_static).collect();
        hooks.append(&mut registered.hooks);
        hooks
    }

    /// The exit code, by the documented precedence: `shutdown_with`'s code; 101 for a panic;
    /// 1 for an error; the user's non-success `ExitCode`; 1 for a failed drain or hook; 0.
    fn exit_code(
        &self,
        report: &ShutdownReport,
        user_code: Option<ExitCode>,
    ) -> (ExitCode, Option<u8>) {
        let number = if let Some((code, _)) = self.fatal.get() {
            *code
        } else {
            match (&report.main, user_code) {
                (MainStatus::Panicked(_), _) => 101,
                (MainStatus::Error(_), _) => 1,
                (_, Some(user_code)) => return (user_code, None),
                _ if report.has_failures() => 1,
                _ => 0,
            }
        };
        (ExitCode::from(number), Some(number))
    }
}

/// Flushes stdout and stderr, ignoring errors: there is nobody left to tell.
pub(crate) fn flush_std() {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
}

/// Records how long each phase took.
struct PhaseClock {
    last: Instant,
    phases: Vec<(Phase, Duration)>,
}

impl PhaseClock {
    fn new(started: Instant) -> PhaseClock {
        PhaseClock {
            last: started,
            phases: Vec::new(),
        }
    }

    fn mark(&mut self, phase: Phase) {
        let now = Instant::now();
        let duration = now - self.last;
        crate::metrics::record_phase(phase, duration);
        self.phases.push((phase, duration));
        self.last = now;
    }

    fn into_phases(self) -> Vec<(Phase, Duration)> {
        self.phases
    }
}

/// The user's main body: polled by the sequence until it returns, panics or is dropped.
struct MainBody<F, T> {
    running: Option<Pin<Box<F>>>,
    finished: Option<MainOutcome>,
    _output: std::marker::PhantomData<fn() -> T>,
}

impl<F: Future<Output = T>, T: MainOutput> MainBody<F, T> {
    fn new(body: F) -> Self {
        MainBody {
            running: Some(Box::pin(body)),
            finished: None,
            _output: std::marker::PhantomData,
        }
    }

    fn is_done(&self) -> bool {
        self.running.is_none()
    }

    /// Polls the body to completion; pending forever once it is done, so that `select!` arms
    /// built on it never fire twice.
    async fn run(&mut self) {
        std::future::poll_fn(|cx| self.poll_body(cx)).await
    }

    fn poll_body(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(body) = self.running.as_mut() else {
            return Poll::Pending;
        };
        // The panic is reported and the sequence still runs: exit 101 after teardown.
        let polled = std::panic::catch_unwind(AssertUnwindSafe(|| body.as_mut().poll(cx)));
        let outcome = match polled {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(output)) => output.into_main_status(),
            Err(payload) => {
                let message = hooks::panic_message(payload.as_ref());
                event!(Error, "main body panicked: {message}");
                MainOutcome {
                    status: MainStatus::Panicked(message),
                    code: None,
                }
            }
        };
        self.running = None;
        self.finished = Some(outcome);
        Poll::Ready(())
    }

    fn abandon(&mut self) {
        self.running = None;
    }

    fn into_status(self) -> MainOutcome {
        self.finished.unwrap_or(MainOutcome {
            status: MainStatus::Dropped,
            code: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

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
            controller.begin_shutdown(Cause::Requested);
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
        controller.begin_shutdown(Cause::Requested);
        let outcome = controller.drive(&config(0, 5_000, 10_000), &[], body).await;
        assert_eq!(outcome.report.drain, DrainOutcome::Drained);
        assert_eq!(outcome.report.in_flight_at_stop, 1);
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
        controller.begin_shutdown(Cause::Requested);
        let outcome = controller
            .drive(&config(0, 300, 10_000), &[], async {})
            .await;
        match &outcome.report.drain {
            DrainOutcome::TimedOut {
                abandoned,
                aborted_tasks,
            } => {
                assert!(abandoned.contains(&crate::SiteCount {
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
        assert_eq!(user_code.exit_code, ExitCode::from(7));

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
            DrainOutcome::GraceSpent { .. }
        ));
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
        controller.begin_shutdown(Cause::Requested);
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
                .map(|_| scope.spawn(|| usize::from(controller.begin_shutdown(Cause::Requested))))
                .collect();
            handles
                .into_iter()
                .map(|handle| handle.join().unwrap())
                .sum()
        });
        assert_eq!(winners, 1);
    }
}
