//! `Builder`: what `#[graceful::main]` expands to, and the way to use graceful without the
//! macro: the settings, one method per attribute key. `run` hands them to `startup.rs`.

use std::fmt;
use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, ConfigError};
use crate::report::{ReportFormat, ShutdownReport};
use crate::sequence::MainOutput;
use crate::signals::Signal;
use crate::startup::ReportSinkFn;
pub use crate::startup::{Flavor, EXIT_CONFIG};

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
    report_sinks: Vec<ReportSink>,
}

/// A function given to [`Builder::on_report`].
#[derive(Clone)]
struct ReportSink(ReportSinkFn);

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
    /// The defaults: drain_timeout 20 s, hook_timeout 5 s, pre_stop 0 s, grace 28 s,
    /// abandon_timeout 1 s, SIGTERM and SIGINT, a multi-thread runtime.
    ///
    /// ```
    /// # use graceful_runtime as graceful;
    /// let builder = graceful::Builder::new();
    /// # drop(builder);
    /// ```
    pub fn new() -> Builder {
        Builder {
            config: Config::default(),
            flavor: Flavor::MultiThread,
            worker_threads: None,
            report_sinks: Vec::new(),
        }
    }

    /// How long the drain waits for in-flight work after stop-accepting.
    /// `GRACEFUL_DRAIN_TIMEOUT` overrides it.
    ///
    /// ```
    /// # use graceful_runtime as graceful;
    /// use std::time::Duration;
    /// let builder = graceful::Builder::new().drain_timeout(Duration::from_secs(10));
    /// # drop(builder);
    /// ```
    pub fn drain_timeout(mut self, drain_timeout: Duration) -> Builder {
        self.config.drain_timeout = drain_timeout;
        self
    }

    /// The timeout of each hook that does not set its own. `GRACEFUL_HOOK_TIMEOUT` overrides it.
    ///
    /// ```
    /// # use graceful_runtime as graceful;
    /// use std::time::Duration;
    /// let builder = graceful::Builder::new().hook_timeout(Duration::from_secs(2));
    /// # drop(builder);
    /// ```
    pub fn hook_timeout(mut self, hook_timeout: Duration) -> Builder {
        self.config.hook_timeout = hook_timeout;
        self
    }

    /// How long the service keeps serving, with readiness failing, before stop-accepting.
    /// `GRACEFUL_PRE_STOP` overrides it.
    ///
    /// ```
    /// # use graceful_runtime as graceful;
    /// use std::time::Duration;
    /// // Kubernetes: long enough for the endpoint removal to reach every load balancer.
    /// let builder = graceful::Builder::new().pre_stop(Duration::from_secs(5));
    /// # drop(builder);
    /// ```
    pub fn pre_stop(mut self, pre_stop: Duration) -> Builder {
        self.config.pre_stop = pre_stop;
        self
    }

    /// The cap on the whole sequence, from the first signal to exit. `GRACEFUL_GRACE`
    /// overrides it.
    ///
    /// ```
    /// # use graceful_runtime as graceful;
    /// use std::time::Duration;
    /// // Inside Kubernetes' default terminationGracePeriodSeconds of 30 s.
    /// let builder = graceful::Builder::new().grace(Duration::from_secs(28));
    /// # drop(builder);
    /// ```
    pub fn grace(mut self, grace: Duration) -> Builder {
        self.config.grace = grace;
        self
    }

    /// How long tracked work has, once the drain's deadline has fired and
    /// [`deadline_token`](crate::deadline_token) is cancelled, to put its unfinished work back
    /// (release a lease, nack a message, write a checkpoint) and return, before it is aborted
    /// (default 1 s). Only a process that called `deadline_token()` waits for it.
    /// `GRACEFUL_ABANDON_TIMEOUT` overrides it.
    ///
    /// ```
    /// # use graceful_runtime as graceful;
    /// use std::time::Duration;
    /// let builder = graceful::Builder::new().abandon_timeout(Duration::from_secs(3));
    /// # drop(builder);
    /// ```
    pub fn abandon_timeout(mut self, abandon_timeout: Duration) -> Builder {
        self.config.abandon_timeout = abandon_timeout;
        self
    }

    /// The signals that start a shutdown (a second one forces the exit).
    ///
    /// ```
    /// # use graceful_runtime as graceful;
    /// use graceful::Signal;
    /// let builder = graceful::Builder::new().signals([Signal::Sigterm, Signal::Sigint, Signal::Sigquit]);
    /// # drop(builder);
    /// ```
    pub fn signals(mut self, signals: impl IntoIterator<Item = Signal>) -> Builder {
        self.config.signals = signals.into_iter().collect();
        self
    }

    /// The signal that reloads (default SIGHUP, unless [`signals`](Builder::signals) names
    /// SIGHUP: then SIGHUP keeps shutting down). `None` turns reloading by signal off;
    /// [`graceful::reload()`](crate::reload) still works. A signal named here and in `signals`
    /// stops the process at start-up with exit 78. On Windows only `graceful::reload()` reloads.
    ///
    /// ```
    /// # use graceful_runtime as graceful;
    /// let builder = graceful::Builder::new().reload_signal(Some(graceful::Signal::Sigusr1));
    /// # drop(builder);
    /// ```
    pub fn reload_signal(mut self, signal: Option<Signal>) -> Builder {
        self.config.reload_signal = Some(signal);
        self
    }

    /// Serves `/livez` and `/readyz` on `address` (such as `"0.0.0.0:8081"`) from before the
    /// body runs until exit. `GRACEFUL_HEALTH_ADDR` overrides it, and turns the port on where
    /// this is not called. A bad address or a port that cannot be bound stops the process with
    /// exit code 78 before user code runs.
    ///
    /// ```
    /// # use graceful_runtime as graceful;
    /// let builder = graceful::Builder::new().health("0.0.0.0:8081");
    /// # drop(builder);
    /// ```
    #[cfg(feature = "health")]
    pub fn health(mut self, address: &'static str) -> Builder {
        self.config.health_key = Some(address);
        self
    }

    /// How the final report is written: text for people (default) or one line of JSON on
    /// stderr. `GRACEFUL_REPORT=json` overrides it.
    ///
    /// ```
    /// # use graceful_runtime as graceful;
    /// let builder = graceful::Builder::new().report(graceful::ReportFormat::Json);
    /// # drop(builder);
    /// ```
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
    ///
    /// ```
    /// # use graceful_runtime as graceful;
    /// let builder = graceful::Builder::new().flavor(graceful::Flavor::CurrentThread);
    /// # drop(builder);
    /// ```
    pub fn flavor(mut self, flavor: Flavor) -> Builder {
        self.flavor = flavor;
        self
    }

    /// The number of worker threads of a multi-thread runtime.
    ///
    /// ```
    /// # use graceful_runtime as graceful;
    /// let builder = graceful::Builder::new().worker_threads(2);
    /// # drop(builder);
    /// ```
    pub fn worker_threads(mut self, worker_threads: usize) -> Builder {
        self.worker_threads = Some(worker_threads);
        self
    }

    /// Runs `body` and the shutdown sequence on the process-wide controller; returns the exit
    /// code for `main` to return. A bad `GRACEFUL_*` value, a health port that cannot be bound,
    /// or a runtime that cannot be built stops here with [`EXIT_CONFIG`], before `body` runs.
    ///
    /// ```no_run
    /// # use graceful_runtime as graceful;
    /// fn main() -> std::process::ExitCode {
    ///     graceful::Builder::new().run(async {
    ///         graceful::ready();
    ///         graceful::shutdown_signal().await;
    ///     })
    /// }
    /// ```
    pub fn run<F, T>(self, body: F) -> ExitCode
    where
        F: Future<Output = T>,
        T: MainOutput,
    {
        let sinks = self.report_sinks.into_iter().map(|sink| sink.0).collect();
        crate::startup::run(self.config, self.flavor, self.worker_threads, sinks, body)
    }
}
