//! The sequence, phase by phase: run the body until shutdown begins, pre-stop, drain, teardown,
//! report. Each phase is one function; `drive` reads as the list of them.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use super::clock::PhaseClock;
use super::exit::{exit_status, ProcessExit};
use super::main_body::{MainBody, MainOutput};
use super::started::Trigger;
use super::Controller;
use crate::budget::{PAUSE_TOLERANCE, WATCHDOG_MARGIN};
use crate::config::Config;
use crate::hooks::{self, Hook, HookReport, StaticHook};
use crate::log::{event, human};
use crate::observe::Event;
use crate::phase::Phase;
use crate::report::{Cause, Deadline, DrainOutcome, InFlightCounts, ShutdownReport};
use crate::sync::lock;

/// What the sequence ends with.
pub(crate) struct Outcome {
    // Read by the tests; the process emits it as an event rather than returning it.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) report: ShutdownReport,
    pub(crate) exit: ProcessExit,
    /// When the watchdog would have forced the exit: the last moment `main` may return.
    pub(crate) exit_deadline: std::time::Instant,
}

/// The deadlines of one shutdown, fixed when it begins.
struct Deadlines {
    grace: Instant,
}

impl Deadlines {
    /// `drain_timeout` from now, unless the grace period ends first; `hand_back` (the abandon
    /// timeout, where work hands itself back) is left before grace.
    fn drain(&self, drain_timeout: Duration, hand_back: Duration) -> (Instant, Deadline) {
        let own = Instant::now() + drain_timeout;
        let last = self.grace.checked_sub(hand_back).unwrap_or(self.grace);
        if own < last {
            (own, Deadline::DrainTimeout)
        } else {
            (last, Deadline::Grace)
        }
    }
}

impl Controller {
    /// Runs `body` and, once shutdown begins, the whole sequence: pre-stop, stop-accepting,
    /// drain, teardown, report. Returns the report and the exit status.
    pub(crate) async fn drive<F>(
        &self,
        config: &Config,
        static_hooks: &[StaticHook],
        body: F,
    ) -> Outcome
    where
        F: Future<Output: MainOutput>,
    {
        let mut main = MainBody::new(body);
        let began = self.run_until_shutdown(&mut main).await;
        let deadlines = Deadlines {
            grace: began + config.grace,
        };
        let mut clock = PhaseClock::new(began);

        self.pre_stop(&mut main, config, &deadlines, &mut clock)
            .await;
        let (in_flight_at_stop, drain) =
            self.drain(&mut main, config, &deadlines, &mut clock).await;
        let hooks = self
            .teardown(static_hooks, config, &deadlines, &mut clock)
            .await;
        self.enter_phase(Phase::Exit);

        let (report, exit) = self.report(main, clock, in_flight_at_stop, drain, hooks);
        report.write(config.report);
        self.observers.publish(Event::Report(&report));
        Outcome {
            report,
            exit,
            // Never already past: a process stopped (SIGSTOP) beyond its grace period still
            // gets the margin to flush its logs once it runs again.
            exit_deadline: (deadlines.grace + WATCHDOG_MARGIN)
                .max(Instant::now() + WATCHDOG_MARGIN)
                .into_std(),
        }
    }

    /// Runs the body until shutdown begins (the body returning begins it). Returns when.
    async fn run_until_shutdown<F: Future<Output: MainOutput>>(
        &self,
        main: &mut MainBody<F>,
    ) -> Instant {
        tokio::select! {
            biased;
            started = self.start.wait() => return started.at,
            _ = main.run() => {}
        }
        self.begin_shutdown(Trigger::MainReturned);
        self.start.wait().await.at
    }

    /// Pre-stop: readiness fails while the service still serves, so that load balancers stop
    /// sending traffic before the listeners close. Skipped when the body has already returned:
    /// there is no listener left to protect. After an upgrade's handover it lasts
    /// `HANDOVER_PRE_STOP` instead: no load balancer to wait for, but open connections are told
    /// to move (`Connection: close`, GOAWAY) before the idle ones close.
    async fn pre_stop<F: Future<Output: MainOutput>>(
        &self,
        main: &mut MainBody<F>,
        config: &Config,
        deadlines: &Deadlines,
        clock: &mut PhaseClock,
    ) {
        let started = *self.start.wait().await;
        let handover = matches!(started.trigger, Trigger::Upgrade(_));
        let pre_stop = if handover {
            crate::upgrade::HANDOVER_PRE_STOP
        } else {
            config.pre_stop
        };
        if main.is_done() || pre_stop.is_zero() {
            return;
        }
        if handover {
            event!(
                Info,
                "pre-stop: the new process serves; open connections here get `Connection: close` and HTTP/2 GOAWAY for {} before idle ones close",
                human(pre_stop)
            );
        } else {
            event!(
                Info,
                "pre-stop: still serving for {} so load balancers stop sending traffic",
                human(pre_stop)
            );
        }
        let until = (started.at + pre_stop).min(deadlines.grace);
        tokio::select! {
            _ = tokio::time::sleep_until(until) => {}
            _ = main.run() => {}
        }
        self.end_phase(clock, Phase::PreStop);
    }

    /// Stop-accepting, then the drain: waits for in-flight work until `drain_timeout` (or
    /// grace), names what is still running, aborts tracked tasks. Returns the count at
    /// stop-accepting and how the drain ended.
    async fn drain<F: Future<Output: MainOutput>>(
        &self,
        main: &mut MainBody<F>,
        config: &Config,
        deadlines: &Deadlines,
        clock: &mut PhaseClock,
    ) -> (InFlightCounts, DrainOutcome) {
        self.enter_phase(Phase::Drain);
        self.inflight.begin_drain();
        // Counted before the token is cancelled: work that ends the moment it sees the token
        // (a stream saying goodbye) was still in flight at stop-accepting.
        let in_flight_at_stop = self.inflight.counts();
        let hand_back = if self.deadline_in_use.load(Ordering::Relaxed) {
            config.abandon_timeout
        } else {
            Duration::ZERO
        };
        let (until, deadline) = deadlines.drain(config.drain_timeout, hand_back);
        let budget = match deadline {
            Deadline::DrainTimeout => format!("drain_timeout {}", human(config.drain_timeout)),
            Deadline::Grace => format!(
                "the {} left of grace",
                human(until.saturating_duration_since(Instant::now()))
            ),
        };
        // Said before the token is cancelled, so that the line comes before anything a client
        // sees because of it (a WebSocket's Close, a stream's last event).
        event!(
            Info,
            "stop accepting: {in_flight_at_stop} in flight, draining for up to {budget}"
        );
        self.stop_accepting.cancel();
        let outcome = self
            .wait_for_in_flight(main, until, deadline, config.abandon_timeout, deadlines)
            .await;
        self.end_phase(clock, Phase::Drain);
        (in_flight_at_stop, outcome)
    }

    /// Waits until nothing is in flight or `until`; then, where the deadline token is in use,
    /// cancels it and waits `abandon_timeout` more for work to hand itself back; then aborts
    /// what is left.
    async fn wait_for_in_flight<F: Future<Output: MainOutput>>(
        &self,
        main: &mut MainBody<F>,
        until: Instant,
        deadline: Deadline,
        abandon_timeout: Duration,
        deadlines: &Deadlines,
    ) -> DrainOutcome {
        if self.until_idle(main, until).await {
            return DrainOutcome::Drained;
        }
        let late = Instant::now().saturating_duration_since(until);
        if late > PAUSE_TOLERANCE {
            event!(
                Warn,
                "{deadline}, noticed {} late: the process was stopped or starved meanwhile",
                human(late)
            );
        }
        let mut handed_back = Vec::new();
        if self.deadline_in_use.load(Ordering::Relaxed) {
            let at_deadline = self.inflight.busy_sites();
            event!(
                Info,
                "{deadline}: {} in flight [{}]; deadline token cancelled, {} to hand work back",
                self.inflight.counts(),
                crate::report::sites(&at_deadline),
                human(abandon_timeout)
            );
            self.deadline.cancel();
            let hand_back_until = (Instant::now() + abandon_timeout).min(deadlines.grace);
            let all_back = self.until_idle(main, hand_back_until).await;
            handed_back = crate::report::subtract(&at_deadline, &self.inflight.busy_sites());
            if all_back {
                return DrainOutcome::HandedBack {
                    deadline,
                    handed_back,
                };
            }
        }
        let abandoned = self.inflight.busy_sites();
        main.abandon(deadline);
        DrainOutcome::TimedOut {
            deadline,
            abandoned,
            aborted_tasks: self.inflight.abort_tasks(),
            handed_back,
        }
    }

    /// Runs the body and waits until it has returned and nothing is in flight (true), or until
    /// `until` (false), saying every second what is still running.
    async fn until_idle<F: Future<Output: MainOutput>>(
        &self,
        main: &mut MainBody<F>,
        until: Instant,
    ) -> bool {
        let second = Duration::from_secs(1);
        let mut progress = tokio::time::interval_at(Instant::now() + second, second);
        loop {
            tokio::select! {
                biased;
                _ = main.run() => {}
                _ = self.inflight.wait_idle(), if main.is_done() => return true,
                _ = tokio::time::sleep_until(until) => return false,
                _ = progress.tick() => {
                    let busy = crate::report::sites(&self.inflight.busy_sites());
                    let main_state = if main.is_done() { "" } else { "; main body still running" };
                    event!(Info, "draining: {} in flight [{busy}]{main_state}", self.inflight.counts());
                }
            }
        }
    }

    /// Teardown: closes hook registration and runs every hook in order, each under its own
    /// timeout, all under grace.
    async fn teardown(
        &self,
        static_hooks: &[StaticHook],
        config: &Config,
        deadlines: &Deadlines,
        clock: &mut PhaseClock,
    ) -> Vec<HookReport> {
        self.enter_phase(Phase::Teardown);
        self.inflight.begin_teardown();
        let hooks = self.close_registration(static_hooks);
        event!(Info, "teardown: running {} hook(s)", hooks.len());
        let mut reports = hooks::run_all(hooks, config.hook_timeout, deadlines.grace).await;
        // Taken after the run: hooks themselves may register (too late) during teardown.
        reports.append(&mut lock(&self.registered).late);
        self.end_phase(clock, Phase::Teardown);
        reports
    }

    /// Closes run-time registration and returns every hook to run.
    fn close_registration(&self, static_hooks: &[StaticHook]) -> Vec<Hook> {
        let mut registered = lock(&self.registered);
        registered.closed = true;
        let mut hooks: Vec<Hook> = static_hooks.iter().map(Hook::from_static).collect();
        hooks.append(&mut registered.hooks);
        hooks
    }

    /// The report, and the exit status it implies; from here `main` owns the exit.
    fn report<F: Future<Output: MainOutput>>(
        &self,
        main: MainBody<F>,
        clock: PhaseClock,
        in_flight_at_stop: InFlightCounts,
        drain: DrainOutcome,
        hooks: Vec<HookReport>,
    ) -> (ShutdownReport, ProcessExit) {
        let main = main.into_outcome();
        let cause = self.cause();
        let fatal = self.fatal.get();
        let mut report = ShutdownReport {
            // Shown apart only when it did not begin the shutdown itself (then the cause says it).
            fatal: fatal
                .filter(|_| !matches!(cause, Cause::Fatal { .. }))
                .cloned(),
            cause,
            phases: clock.into_phases(),
            in_flight_at_stop,
            drain,
            hooks,
            late_calls: self.inflight.late_sites(),
            main: main.status,
            essential_failures: lock(&self.essential_failures).clone(),
            exit_code: None,
        };
        let essential_cause = match &report.cause {
            Cause::EssentialTask(failure) => Some(failure),
            _ => None,
        };
        let exit = exit_status(
            fatal,
            &report.main,
            main.code,
            essential_cause,
            report.has_failures(),
        );
        report.exit_code = exit.number();
        let _ = self.finished.set(exit);
        (report, exit)
    }

    fn end_phase(&self, clock: &mut PhaseClock, phase: Phase) {
        let duration = clock.end(phase);
        self.observers.publish(Event::PhaseEnded(phase, duration));
    }
}
