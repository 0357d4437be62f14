//! The shutdown sequence: the state of one process's shutdown, and the transitions every
//! thread may make on it (ready, unready, a signal, `shutdown()`, `shutdown_with()`).
//!
//! Files: `started.rs` records that shutdown began; `drive.rs` runs the phases, one function
//! each; `main_body.rs` polls the user's body; `exit.rs` picks the exit code and enforces the
//! deadlines; `clock.rs` times the phases. Integrations are not named here: they subscribe to
//! [`Observers`] and hear every change as it happens.
//!
//! A controller is an ordinary value: tests make as many as they like. The process-wide one
//! lives in `global.rs`.

mod clock;
mod drive;
mod exit;
mod main_body;
mod started;

use std::any::Any;
use std::borrow::Cow;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::budget::Budget;
use crate::hooks::{Hook, HookOutcome, HookReport, IntoHookResult};
use crate::inflight::{InFlight, InFlightGuard, Site};
use crate::log::event;
use crate::observe::{Event, Observers};
use crate::phase::{Health, HealthState, Phase, PhaseState};
use crate::report::{Cause, EssentialFailure, Fatal, ShutdownReport};
use crate::signals::Received;
use crate::sync::lock;

pub(crate) use exit::ProcessExit;
pub use main_body::{assert_main_output, MainOutput};
use started::{StartLatch, Trigger};

/// The state of one process's shutdown.
pub(crate) struct Controller {
    inflight: &'static InFlight,
    health: HealthState,
    phase: PhaseState,
    start: StartLatch,
    stop_accepting: CancellationToken,
    /// A `shutdown_with(code, reason)`: stored once, whether or not it began the shutdown.
    fatal: OnceLock<Fatal>,
    /// The essential task's failure that began the shutdown, if one did.
    essential_cause: OnceLock<EssentialFailure>,
    /// Essential tasks that failed once shutdown was under way.
    essential_failures: Mutex<Vec<EssentialFailure>>,
    /// Cancelled when the drain's deadline fires, before anything is aborted.
    deadline: CancellationToken,
    /// Whether anyone asked for the deadline token: only then does the drain wait
    /// `abandon_timeout` for work to hand itself back.
    deadline_in_use: AtomicBool,
    os_signals: AtomicUsize,
    registered: Mutex<RegisteredHooks>,
    kept: Mutex<Vec<Box<dyn Any + Send>>>,
    /// Set once the report is out: from then on `main` returns this.
    finished: OnceLock<ProcessExit>,
    /// The worst case of the configured timings, kept to warn when a registered hook makes it
    /// exceed grace.
    budget: Mutex<Option<Budget>>,
    observers: Observers,
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
    ForceExit(u8),
}

impl Controller {
    pub(crate) fn new(inflight: &'static InFlight) -> Controller {
        Controller {
            inflight,
            health: HealthState::new(),
            phase: PhaseState::new(),
            start: StartLatch::default(),
            stop_accepting: CancellationToken::new(),
            fatal: OnceLock::new(),
            essential_cause: OnceLock::new(),
            essential_failures: Mutex::new(Vec::new()),
            deadline: CancellationToken::new(),
            deadline_in_use: AtomicBool::new(false),
            os_signals: AtomicUsize::new(0),
            registered: Mutex::new(RegisteredHooks::default()),
            kept: Mutex::new(Vec::new()),
            finished: OnceLock::new(),
            budget: Mutex::new(None),
            observers: Observers::default(),
        }
    }

    pub(crate) fn inflight(&self) -> &'static InFlight {
        self.inflight
    }

    /// Tells every observer of something that happened beside the sequence (a reload).
    pub(crate) fn publish(&self, event: Event<'_>) {
        self.observers.publish(event);
    }

    /// Subscribes `observer` to every change from now on; see `observe.rs`.
    pub(crate) fn subscribe(&self, observer: impl Fn(&Event<'_>) + Send + Sync + 'static) {
        self.observers.subscribe(observer);
    }

    /// Begins shutdown, once: the first cause wins and later calls change nothing. Returns
    /// whether this call began it.
    fn begin_shutdown(&self, trigger: Trigger) -> bool {
        if !self.start.begin(trigger) {
            return false;
        }
        self.health.drain();
        self.observers.publish(Event::Health(Health::Draining));
        if let Some(started) = self.start.get() {
            self.observers.publish(Event::ShutdownBegun {
                began: started.at.into_std(),
            });
        }
        self.enter_phase(Phase::PreStop);
        event!(
            Info,
            "shutdown begun by {}: readiness now fails",
            self.cause()
        );
        self.start.release();
        true
    }

    /// `graceful::shutdown()`.
    pub(crate) fn request_shutdown(&self) {
        self.begin_shutdown(Trigger::Requested);
    }

    /// `graceful::shutdown_with(code, reason)`: sets the exit code whatever began the shutdown.
    pub(crate) fn shutdown_with(&self, code: u8, reason: String) {
        let recorded = self.fatal.set(Fatal::new(code, reason)).is_ok();
        if !self.begin_shutdown(Trigger::Fatal) && recorded {
            if let Some(fatal) = self.fatal.get() {
                event!(
                    Error,
                    "shutdown_with({code}): {}; the process will exit with {code}",
                    fatal.reason
                );
            }
        }
    }

    /// An essential task failed, panicked, or ended while the service ran. The first such
    /// failure before shutdown begins it; any other joins the report and makes the exit code 1.
    pub(crate) fn essential_task_failed(&self, failure: EssentialFailure) {
        event!(Error, "{failure}");
        let began_it = self.essential_cause.set(failure.clone()).is_ok()
            && self.begin_shutdown(Trigger::EssentialTask);
        if !began_it {
            lock(&self.essential_failures).push(failure);
        }
    }

    /// The token cancelled at the drain's deadline. The first call makes the drain wait
    /// `abandon_timeout` for work to hand itself back, and counts it in the budget.
    pub(crate) fn deadline_token(&self) -> CancellationToken {
        // Relaxed: the drain reads it after the deadline fires, long after any caller that
        // could still hand work back has called this.
        if !self.deadline_in_use.load(Ordering::Relaxed)
            && !self.deadline_in_use.swap(true, Ordering::Relaxed)
        {
            self.grow_budget("deadline_token() in use", Budget::count_abandon);
        }
        self.deadline.child_token()
    }

    /// Decides what an OS signal does: the first begins shutdown, the second forces the exit.
    pub(crate) fn on_os_signal(&self, received: Received) -> SignalAction {
        let count = self.os_signals.fetch_add(1, Ordering::AcqRel) + 1;
        if count > 1 {
            return SignalAction::ForceExit(received.forced_exit_code);
        }
        if !self.begin_shutdown(Trigger::Signal(received.name)) {
            event!(
                Info,
                "{} received: joins the shutdown already under way (a second signal forces exit)",
                received.name
            );
        }
        SignalAction::Shutdown
    }

    /// What began the shutdown, as the report shows it. `Requested` before it began.
    fn cause(&self) -> Cause {
        let trigger = self
            .start
            .get()
            .map_or(Trigger::Requested, |started| started.trigger);
        match (trigger, self.fatal.get()) {
            (Trigger::Signal(name), _) => Cause::Signal(name),
            (Trigger::Requested, _) => Cause::Requested,
            (Trigger::MainReturned, _) => Cause::MainReturned,
            (Trigger::Fatal, Some(fatal)) => Cause::Fatal {
                code: fatal.code,
                reason: fatal.reason.clone(),
            },
            // `shutdown_with` records its reason before it triggers.
            (Trigger::Fatal, None) => Cause::Requested,
            (Trigger::EssentialTask, _) => match self.essential_cause.get() {
                Some(failure) => Cause::EssentialTask(failure.clone()),
                // Recorded before it triggers, as `shutdown_with`'s reason is.
                None => Cause::Requested,
            },
        }
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.start.is_started()
    }

    /// Resolves when shutdown begins.
    pub(crate) fn shutdown_started(&self) -> impl Future<Output = ()> + Send + 'static {
        self.start.wait_owned()
    }

    pub(crate) fn health(&self) -> Health {
        self.health.get()
    }

    pub(crate) fn ready(&self) -> bool {
        let changed = self.health.ready();
        if changed {
            self.observers.publish(Event::Health(Health::Ready));
        }
        changed
    }

    pub(crate) fn unready(&self) -> bool {
        let changed = self.health.unready();
        if changed {
            self.observers.publish(Event::Health(Health::Starting));
        }
        changed
    }

    pub(crate) fn phase(&self) -> Phase {
        self.phase.get()
    }

    fn enter_phase(&self, phase: Phase) {
        self.phase.enter(phase);
        self.observers.publish(Event::PhaseEntered(phase));
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
            self.grow_budget(&format!("hook {name:?} (order {order})"), |budget| {
                budget.add_hook(order, None)
            });
            registered.hooks.push(Hook::registered(order, name, hook));
        }
    }

    /// Keeps `budget` to check each hook registered from now on against it.
    pub(crate) fn watch_budget(&self, budget: Budget) {
        *lock(&self.budget) = Some(budget);
    }

    /// Logs the worst case again when `grow` makes it longer (a registered hook, the deadline
    /// token), and warns, once, when it comes to exceed grace.
    fn grow_budget(&self, with: &str, grow: impl FnOnce(&mut Budget) -> bool) {
        let mut budget = lock(&self.budget);
        let Some(budget) = budget.as_mut() else {
            return;
        };
        let fitted = budget.warning().is_none();
        if !grow(budget) {
            return;
        }
        match budget.warning() {
            Some(warning) if fitted => event!(Warn, "with {with}: {warning}"),
            Some(_) => {}
            None => event!(Info, "shutdown budget, with {with}: {}", budget.breakdown()),
        }
    }

    pub(crate) fn keep_until_exit(&self, value: Box<dyn Any + Send>) {
        lock(&self.kept).push(value);
    }

    /// Calls `sink` with the final report, after it has been written.
    pub(crate) fn on_report(&self, sink: impl Fn(&ShutdownReport) + Send + Sync + 'static) {
        self.subscribe(move |event| {
            if let Event::Report(report) = event {
                sink(report);
            }
        });
    }
}

#[cfg(test)]
mod tests;
