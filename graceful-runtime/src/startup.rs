//! Process start-up, step by step, then the sequence to an exit code: what `Builder::run` does.
//! Every step that can fail stops the process with exit 78 before the user's body runs.

use std::future::Future;
use std::process::ExitCode;
use std::time::Instant;

use crate::budget::Budget;
use crate::config::Config;
use crate::hooks::HOOKS;
use crate::log::{event, flush_std};
use crate::observe::Event;
use crate::sequence::{Controller, MainOutput, SignalAction};
use crate::signals::{Role, SignalHandlers, SignalRoles};

/// The exit code of a configuration error found at start-up (`EX_CONFIG` in sysexits.h).
pub const EXIT_CONFIG: u8 = 78;

/// Which tokio runtime runs the main body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Flavor {
    /// One worker thread per core (or `worker_threads`): tokio's default.
    #[default]
    MultiThread,
    /// Everything on the main thread.
    CurrentThread,
}

/// A function given to `Builder::on_report`.
pub(crate) type ReportSinkFn = std::sync::Arc<dyn Fn(&crate::report::ShutdownReport) + Send + Sync>;

/// Starts the process with `config` on a runtime of `flavor`, runs `body` through the shutdown
/// sequence, and returns the exit code for `main` to return.
pub(crate) fn run<F, T>(
    config: Config,
    flavor: Flavor,
    worker_threads: Option<usize>,
    report_sinks: Vec<ReportSinkFn>,
    body: F,
) -> ExitCode
where
    F: Future<Output = T>,
    T: MainOutput,
{
    let controller = crate::global::controller();
    for sink in report_sinks {
        controller.on_report(move |report| sink(report));
    }
    let Started { config, runtime } = match start(controller, config, flavor, worker_threads) {
        Ok(started) => started,
        Err(message) => return startup_error(&message),
    };
    let outcome = runtime.block_on(controller.drive(&config, &HOOKS, body));
    flush_std();
    controller.release_kept_within(outcome.exit_deadline, Some(runtime.handle().clone()));
    // Not `drop(runtime)`: that waits for the blocking pool, where an abandoned sync hook may be
    // stuck for good.
    runtime.shutdown_background();
    flush_std();
    outcome.exit.into_exit_code()
}

/// What start-up leaves for the sequence.
struct Started {
    config: Config,
    runtime: tokio::runtime::Runtime,
}

fn start(
    controller: &'static Controller,
    mut config: Config,
    flavor: Flavor,
    worker_threads: Option<usize>,
) -> Result<Started, String> {
    // First, while this is the only thread: listenfd edits the environment.
    crate::bind::read_environment().map_err(|error| error.to_string())?;
    config
        .apply_env(|name| std::env::var_os(name))
        .map_err(|error| format!("configuration error: {error}"))?;
    let roles = SignalRoles::resolve(&config.signals, config.reload_signal)
        .map_err(|error| format!("configuration error: {error}"))?;
    let budget = Budget::new(&config, &HOOKS);
    #[cfg(feature = "health")]
    let health_port = config
        .health_address
        .map(crate::health_endpoints::port::bind)
        .transpose()?;
    let runtime = build_runtime(flavor, worker_threads)
        .map_err(|error| format!("cannot build the tokio runtime: {error}"))?;
    {
        // The health port, the systemd watchdog pings and the metrics sampler run on the
        // application's runtime, so that a wedged runtime stops them.
        let _context = runtime.enter();
        #[cfg(feature = "health")]
        if let Some(listener) = health_port {
            crate::health_endpoints::port::spawn(listener)
                .map_err(|error| format!("cannot serve the health port: {error}"))?;
        }
        crate::systemd::install(controller, config.grace);
        crate::metrics::install(controller);
    }
    controller.watch_budget(budget.clone());
    let reloads = crate::global::reloads();
    reloads.start(runtime.handle().clone(), config.hook_timeout);
    arm_grace_watchdog(controller, config.grace);
    let signals = SignalHandlers::install(&roles)
        .map_err(|error| format!("cannot install signal handlers: {error}"))?;
    // Written from the signal thread: formatting and the first write to stderr cost about
    // 0.1 ms, which the body's start need not wait for.
    let say_budget = move || {
        event!(Info, "{}", budget.summary());
        if let Some(warning) = budget.warning() {
            event!(Warn, "{warning}");
        }
    };
    let start_signals = move || {
        signals.spawn(say_budget, move |received| match received.role {
            Role::Shutdown => {
                if let SignalAction::ForceExit(code) = controller.on_os_signal(received) {
                    controller.force_exit(code, &format!("second signal ({})", received.name));
                }
            }
            // Its outcome is logged by the reload itself; nobody waits for it here.
            Role::Reload => drop(reloads.request(received.name)),
        })
    };
    start_off_the_main_thread(flavor, &runtime, start_signals)
        .map_err(|error| format!("cannot start the signal thread: {error}"))?;
    Ok(Started { config, runtime })
}

fn build_runtime(
    flavor: Flavor,
    worker_threads: Option<usize>,
) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = match flavor {
        Flavor::MultiThread => tokio::runtime::Builder::new_multi_thread(),
        Flavor::CurrentThread => tokio::runtime::Builder::new_current_thread(),
    };
    if let Some(worker_threads) = worker_threads {
        builder.worker_threads(worker_threads);
    }
    builder.enable_all().build()
}

/// Starts the watchdog that enforces `grace` when shutdown begins, on whichever thread begins
/// it (a signal, `shutdown()`, main returning): a thread of its own, so that a blocked runtime
/// cannot keep the process past its deadline. Nothing runs until then.
fn arm_grace_watchdog(controller: &'static Controller, grace: std::time::Duration) {
    controller.subscribe(move |event| {
        if let Event::ShutdownBegun { began } = *event {
            start_grace_watchdog(controller, began, grace);
        }
    });
}

fn start_grace_watchdog(
    controller: &'static Controller,
    began: Instant,
    grace: std::time::Duration,
) {
    let watchdog = std::thread::Builder::new()
        .name("graceful-watchdog".into())
        .spawn(move || controller.watch_grace(began, grace));
    if let Err(error) = watchdog {
        event!(Warn, "cannot start the grace watchdog: {error}; a blocked runtime would not be forced to exit");
    }
}

/// Runs `start` (a thread's creation, about 40 µs) on a worker of a multi-thread runtime, so
/// that the body starts without waiting for it; the task is queued before the body runs, so no
/// task of the body's can hold it up. On a current-thread runtime, runs it here.
fn start_off_the_main_thread(
    flavor: Flavor,
    runtime: &tokio::runtime::Runtime,
    start: impl FnOnce() -> std::io::Result<()> + Send + 'static,
) -> std::io::Result<()> {
    match flavor {
        Flavor::CurrentThread => start(),
        Flavor::MultiThread => {
            runtime.spawn(async move {
                if let Err(error) = start() {
                    startup_error(&format!("cannot start the signal thread: {error}"));
                    std::process::exit(i32::from(EXIT_CONFIG));
                }
            });
            Ok(())
        }
    }
}

fn startup_error(message: &str) -> ExitCode {
    event!(Error, "{message}");
    flush_std();
    ExitCode::from(EXIT_CONFIG)
}
