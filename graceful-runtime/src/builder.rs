//! `Builder`: what `#[graceful::main]` expands to, and the way to use graceful without the
//! macro. It reads the environment overrides, builds the runtime, installs the signal thread,
//! and drives the sequence to an exit code.

use std::fmt;
use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::budget::Budget;
use crate::config::{Config, ConfigError};
use crate::log::{event, flush_std};
use crate::observe::Event;
use crate::report::{ReportFormat, ShutdownReport};
use crate::sequence::{Controller, MainOutput, SignalAction};
use crate::signals::{Listener, Signal};

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

/// Configures and runs a service's main body through the whole shutdown sequence.
///
/// `#[graceful::main(drain_timeout = "5s")]` expands to this; every attribute key is a method of
/// the same name.
///
/// ```no_run
/// # use graceful_runtime as graceful;
/// use std::time::Duration;
///
/// fn main() -> std::process::ExitCode {
///     graceful::Builder::new()
///         .drain_timeout(Duration::from_secs(5))
///         .pre_stop(Duration::from_secs(2))
///         .run(async {
///             graceful::ready();
///             graceful::shutdown_signal().await;
///         })
/// }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a Builder does nothing until `.run(..)`"]
pub struct Builder {
    config: Config,
    flavor: Flavor,
    worker_threads: Option<usize>,
    #[cfg(feature = "health")]
    health: Option<&'static str>,
    report_sinks: Vec<ReportSink>,
}

/// A function given to [`Builder::on_report`].
#[derive(Clone)]
struct ReportSink(Arc<dyn Fn(&ShutdownReport) + Send + Sync>);

impl fmt::Debug for ReportSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReportSink(..)")
    }
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// The defaults: drain_timeout 20 s, hook_timeout 5 s, pre_stop 0 s, grace 28 s, SIGTERM
    /// and SIGINT, a multi-thread runtime.
    pub fn new() -> Builder {
        Builder {
            config: Config::default(),
            flavor: Flavor::MultiThread,
            worker_threads: None,
            #[cfg(feature = "health")]
            health: None,
            report_sinks: Vec::new(),
        }
    }

    /// How long the drain waits for in-flight work after stop-accepting.
    /// `GRACEFUL_DRAIN_TIMEOUT` overrides it.
    pub fn drain_timeout(mut self, drain_timeout: Duration) -> Builder {
        self.config.drain_timeout = drain_timeout;
        self
    }

    /// The timeout of each hook that does not set its own. `GRACEFUL_HOOK_TIMEOUT` overrides it.
    pub fn hook_timeout(mut self, hook_timeout: Duration) -> Builder {
        self.config.hook_timeout = hook_timeout;
        self
    }

    /// How long the service keeps serving, with readiness failing, before stop-accepting.
    /// `GRACEFUL_PRE_STOP` overrides it.
    pub fn pre_stop(mut self, pre_stop: Duration) -> Builder {
        self.config.pre_stop = pre_stop;
        self
    }

    /// The cap on the whole sequence, from the first signal to exit. `GRACEFUL_GRACE`
    /// overrides it.
    pub fn grace(mut self, grace: Duration) -> Builder {
        self.config.grace = grace;
        self
    }

    /// The signals that start a shutdown (a second one forces the exit).
    pub fn signals(mut self, signals: impl IntoIterator<Item = Signal>) -> Builder {
        self.config.signals = signals.into_iter().collect();
        self
    }

    /// Serves `/livez` and `/readyz` on `address` (such as `"0.0.0.0:8081"`) from before the
    /// body runs until exit. `GRACEFUL_HEALTH_ADDR` overrides it, and turns the port on where
    /// this is not called. A bad address or a port that cannot be bound stops the process with
    /// exit code 78 before user code runs.
    #[cfg(feature = "health")]
    pub fn health(mut self, address: &'static str) -> Builder {
        self.health = Some(address);
        self
    }

    /// How the final report is written: text for people (default) or one line of JSON on
    /// stderr. `GRACEFUL_REPORT=json` overrides it.
    pub fn report(mut self, format: ReportFormat) -> Builder {
        self.config.report = format;
        self
    }

    /// Calls `sink` with the final report once it has been written, as
    /// [`graceful::on_report`](crate::on_report) does.
    ///
    /// ```no_run
    /// # use graceful_runtime as graceful;
    /// fn main() -> std::process::ExitCode {
    ///     graceful::Builder::new()
    ///         .on_report(|report| {
    ///             if report.has_failures() {
    ///                 eprintln!("page the on-call: {}", report.to_json());
    ///             }
    ///         })
    ///         .run(async { graceful::shutdown_signal().await })
    /// }
    /// ```
    pub fn on_report(mut self, sink: impl Fn(&ShutdownReport) + Send + Sync + 'static) -> Builder {
        self.report_sinks.push(ReportSink(Arc::new(sink)));
        self
    }

    /// Applies the `GRACEFUL_*` environment overrides now and returns the error instead of
    /// exiting with 78, for a service that wants to report a bad value its own way. `run`
    /// applies them again, which changes nothing once they have been applied.
    ///
    /// ```
    /// # use graceful_runtime as graceful;
    /// match graceful::Builder::new().apply_env() {
    ///     Ok(_builder) => { /* builder.run(..) */ }
    ///     Err(error) => eprintln!("fix the environment: {error}"),
    /// }
    /// ```
    pub fn apply_env(mut self) -> Result<Builder, ConfigError> {
        self.config.apply_env(|name| std::env::var_os(name))?;
        Ok(self)
    }

    /// The runtime flavor.
    pub fn flavor(mut self, flavor: Flavor) -> Builder {
        self.flavor = flavor;
        self
    }

    /// The number of worker threads of a multi-thread runtime.
    pub fn worker_threads(mut self, worker_threads: usize) -> Builder {
        self.worker_threads = Some(worker_threads);
        self
    }

    /// Runs `body` and the shutdown sequence on the process-wide controller; returns the exit
    /// code for `main` to return.
    pub fn run<F, T>(self, body: F) -> ExitCode
    where
        F: Future<Output = T>,
        T: MainOutput,
    {
        let mut config = self.config.clone();
        // First, while this is the only thread: listenfd edits the environment.
        if let Err(error) = crate::bind::read_environment() {
            return startup_error(format_args!("{error}"));
        }
        if let Err(error) = config.apply_env(|name| std::env::var_os(name)) {
            return startup_error(format_args!("configuration error: {error}"));
        }
        let budget = Budget::new(&config, &crate::hooks::HOOKS);
        #[cfg(feature = "health")]
        let health_listener = match crate::health_endpoints::port::address(self.health, |name| {
            std::env::var_os(name)
        })
        .and_then(|address| address.map(crate::health_endpoints::port::bind).transpose())
        {
            Ok(listener) => listener,
            Err(error) => return startup_error(format_args!("{error}")),
        };
        let runtime = match self.build_runtime() {
            Ok(runtime) => runtime,
            Err(error) => {
                return startup_error(format_args!("cannot build the tokio runtime: {error}"))
            }
        };
        let controller = crate::global::controller();
        {
            let _context = runtime.enter();
            #[cfg(feature = "health")]
            if let Some(listener) = health_listener {
                if let Err(error) = crate::health_endpoints::port::spawn(listener) {
                    return startup_error(format_args!("cannot serve the health port: {error}"));
                }
            }
            install_integrations(controller, &config);
        }
        controller.watch_budget(budget.clone());
        for sink in self.report_sinks {
            controller.on_report(move |report| (sink.0)(report));
        }
        // Written from the signal thread: formatting and the first write to stderr cost about
        // 0.1 ms, which the body's start need not wait for.
        let say_budget = move || {
            event!(Info, "{}", budget.summary());
            if let Some(warning) = budget.warning() {
                event!(Warn, "{warning}");
            }
        };
        let start_listening = match install_signals(controller, &config, say_budget) {
            Ok(start_listening) => start_listening,
            Err(error) => {
                return startup_error(format_args!("cannot install signal handlers: {error}"))
            }
        };
        if let Err(error) = start_off_the_main_thread(self.flavor, &runtime, start_listening) {
            return startup_error(format_args!("cannot start the signal thread: {error}"));
        }
        let outcome = runtime.block_on(controller.drive(&config, &crate::hooks::HOOKS, body));
        flush_std();
        controller.release_kept_within(outcome.exit_deadline, Some(runtime.handle().clone()));
        // Not `drop(runtime)`: that waits for the blocking pool, where an abandoned sync hook
        // may be stuck for good.
        runtime.shutdown_background();
        flush_std();
        outcome.exit.into_exit_code()
    }

    fn build_runtime(&self) -> std::io::Result<tokio::runtime::Runtime> {
        let mut builder = match self.flavor {
            Flavor::MultiThread => tokio::runtime::Builder::new_multi_thread(),
            Flavor::CurrentThread => tokio::runtime::Builder::new_current_thread(),
        };
        if let Some(worker_threads) = self.worker_threads {
            builder.worker_threads(worker_threads);
        }
        builder.enable_all().build()
    }
}

/// Runs `start` (a thread's creation, about 40 µs) on a worker of a multi-thread runtime, so
/// that the body starts without waiting for it; the task is queued before the body runs,
/// so no task of the body's can hold it up. On a current-thread runtime, runs it here.
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
                    let _ = startup_error(format_args!("cannot start the signal thread: {error}"));
                    std::process::exit(i32::from(EXIT_CONFIG));
                }
            });
            Ok(())
        }
    }
}

fn startup_error(message: std::fmt::Arguments<'_>) -> ExitCode {
    event!(Error, "{message}");
    flush_std();
    ExitCode::from(EXIT_CONFIG)
}

/// Subscribes the integrations that follow the sequence, inside the application's runtime (the
/// systemd watchdog pings and the metrics sampler run there, so a wedged runtime stops them).
fn install_integrations(controller: &'static Controller, config: &Config) {
    crate::systemd::install(controller, config.grace);
    crate::metrics::install(controller);
}

/// Installs the signal handlers now (a signal that arrives before the listener thread starts
/// is kept), and returns what starts that thread, which turns OS signals into the sequence. The
/// watchdog that enforces `grace` from the start of shutdown starts then, not at start-up.
fn install_signals(
    controller: &'static Controller,
    config: &Config,
    first: impl FnOnce() + Send + 'static,
) -> std::io::Result<impl FnOnce() -> std::io::Result<()> + Send + 'static> {
    let listener = Listener::install(&config.signals)?;
    let grace = config.grace;
    controller.subscribe(move |event| {
        if let Event::ShutdownBegun { began } = *event {
            let watchdog = std::thread::Builder::new()
                .name("graceful-watchdog".into())
                .spawn(move || controller.watch_grace(began, grace));
            if let Err(error) = watchdog {
                event!(Warn, "cannot start the grace watchdog: {error}; a blocked runtime would not be forced to exit");
            }
        }
    });
    Ok(move || {
        listener.spawn(first, move |received| {
            if let SignalAction::ForceExit(code) = controller.on_os_signal(received) {
                controller.force_exit(code, &format!("second signal ({})", received.name));
            }
        })
    })
}
