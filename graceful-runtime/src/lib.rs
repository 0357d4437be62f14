//! The runtime behind the `graceful` crate: shutdown controller, signal handling, in-flight
//! accounting, teardown hooks, report and exit codes. Use it through `graceful`.
//!
//! Everything here is re-exported by `graceful`; the examples use that path.

#[cfg(any(feature = "serve", feature = "health"))]
mod accept;
mod bind;
mod budget;
mod builder;
mod config;
#[cfg(feature = "tower")]
mod counted_response;
mod essential;
mod global;
#[cfg(feature = "grpc")]
mod grpc;
#[cfg(any(feature = "tower", feature = "health"))]
mod health_endpoints;
mod hooks;
mod inflight;
mod log;
mod metrics;
mod observe;
mod panics;
mod phase;
mod reload;
pub mod report;
mod sequence;
#[cfg(feature = "serve")]
mod serve;
mod signals;
mod startup;
mod sync;
mod systemd;
#[cfg(feature = "tls")]
mod tls;
#[cfg(feature = "tower")]
mod track_layer;

#[doc(hidden)]
pub mod __private;

use std::borrow::Cow;
use std::fmt::Display;
use std::future::Future;

pub use builder::{Builder, Flavor, EXIT_CONFIG};
pub use config::ConfigError;
pub use hooks::IntoHookResult;
pub use inflight::InFlightGuard;
pub use phase::{Health, Phase};
pub use reload::{ReloadError, ReloadReport};
pub use report::{ReportFormat, ShutdownReport};
pub use sequence::MainOutput;
pub use signals::Signal;
pub use tokio_util::sync::CancellationToken;

#[cfg(feature = "grpc")]
pub use grpc::GrpcHealth;
#[cfg(any(feature = "tower", feature = "health"))]
pub use health_endpoints::{livez, readyz};
#[cfg(feature = "serve")]
pub use serve::{serve, HyperService, IntoHttpService, Listener, Serve, TowerService};
#[cfg(feature = "tls")]
pub use tls::TlsConfig;
#[cfg(feature = "tower")]
pub use track_layer::{TrackLayer, TrackService, TrackedFuture};

use global::controller;

/// Listens on `addr`, like `tokio::net::TcpListener::bind`, or adopts the listening socket
/// systemd passed for it (socket activation: `LISTEN_FDS`), so that connections queue in the
/// kernel while the service restarts.
///
/// With sockets from systemd, one rule picks among those not taken yet:
/// - the TCP listener on `addr` (any address `addr` resolves to; `0.0.0.0:P` and `[::]:P`
///   count as equal, and so do an IPv4 address and its IPv4-mapped IPv6 form);
/// - else, when exactly one TCP listener is left, that one, logging both addresses;
/// - else an error listing every socket systemd passed, never a socket on another address
///   picked silently.
///
/// Once every passed socket is taken, or when none was passed, it binds `addr`. The log says
/// which it did. A passed socket of another kind (UDP, Unix, a connection from `Accept=yes`)
/// is never handed out; it shows in the error. Off Unix it binds.
///
/// ```
/// # use graceful_runtime as graceful;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let listener = graceful::bind("127.0.0.1:0").await?;
/// let _client = tokio::net::TcpStream::connect(listener.local_addr()?).await?;
/// let (_connection, _peer) = listener.accept().await?;
/// # Ok(())
/// # }
/// ```
pub async fn bind(
    addr: impl tokio::net::ToSocketAddrs,
) -> std::io::Result<tokio::net::TcpListener> {
    bind::bind(addr).await
}

/// Like [`bind()`], but picks among the sockets systemd passed under `name`
/// (`FileDescriptorName=` in the `.socket` unit, which defaults to the unit's name), by the same
/// rule. When systemd passed sockets but none of that name, or every one of that name is taken,
/// it is an error naming it, never a bind of a port systemd may hold; when systemd passed none,
/// it binds `addr`.
///
/// ```
/// # use graceful_runtime as graceful;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let admin = graceful::bind_named("admin", "127.0.0.1:0").await?;
/// println!("admin port on {}", admin.local_addr()?);
/// # Ok(())
/// # }
/// ```
pub async fn bind_named(
    name: &str,
    addr: impl tokio::net::ToSocketAddrs,
) -> std::io::Result<tokio::net::TcpListener> {
    bind::bind_named(name, addr).await
}

/// Begins shutdown as if SIGTERM had arrived. Idempotent; callable from any thread.
///
/// ```
/// # use graceful_runtime as graceful;
/// graceful::shutdown();
/// assert!(graceful::is_shutting_down());
/// ```
pub fn shutdown() {
    controller().request_shutdown();
}

/// Begins shutdown because something is fatally wrong: the same sequence runs, the report gives
/// `reason`, and the process exits with `code`.
///
/// ```
/// # use graceful_runtime as graceful;
/// graceful::shutdown_with(3, "lost the database for good");
/// assert!(graceful::is_shutting_down());
/// ```
pub fn shutdown_with(code: u8, reason: impl Display) {
    controller().shutdown_with(code, reason.to_string());
}

/// Keeps `value` alive until after the final report, and drops it just before exit.
///
/// This is where a tracing-appender `WorkerGuard` or a metrics exporter handle belongs: nothing
/// the hooks or the report log is lost.
///
/// ```
/// # use graceful_runtime as graceful;
/// struct FlushOnDrop;
/// impl Drop for FlushOnDrop {
///     fn drop(&mut self) { /* flush the log writer */ }
/// }
/// graceful::keep_until_exit(FlushOnDrop);
/// ```
pub fn keep_until_exit(value: impl Send + 'static) {
    controller().keep_until_exit(Box::new(value));
}

/// Whether shutdown has begun, whatever began it.
///
/// ```
/// # use graceful_runtime as graceful;
/// if !graceful::is_shutting_down() {
///     // take on new work
/// }
/// ```
pub fn is_shutting_down() -> bool {
    controller().is_shutting_down()
}

/// Resolves when shutdown begins: at the first signal (or `shutdown()`, or main returning),
/// the moment readiness starts to fail and pre-stop begins. For a worker this is the quiet
/// moment: stop fetching new work, finish what it holds (see [`deadline_token()`]).
///
/// Two moments, two futures:
///
/// | future | resolves | use it to |
/// |---|---|---|
/// | `shutdown_started()` | when shutdown begins | tell clients to go elsewhere while still serving: `Connection: close`, HTTP/2 GOAWAY, a gRPC health status |
/// | [`shutdown_signal()`] | at stop-accepting, `pre_stop` later | stop accepting, end streams and sockets, leave background loops |
///
/// ```
/// # use graceful_runtime as graceful;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// tokio::spawn(async {
///     graceful::shutdown_started().await;
///     // readiness fails from now on: say goodbye to long-lived clients
/// });
/// graceful::shutdown();
/// graceful::shutdown_started().await; // resolved: shutdown has begun
/// # }
/// ```
pub fn shutdown_started() -> impl Future<Output = ()> + Send + 'static {
    controller().shutdown_started()
}

/// Resolves when listeners must stop accepting: after `pre_stop`, once shutdown has begun.
/// [`shutdown_started()`] resolves earlier, when shutdown begins.
///
/// Made for `axum::serve(listener, app).with_graceful_shutdown(graceful::shutdown_signal())`.
///
/// ```
/// # use graceful_runtime as graceful;
/// # async fn serve() {
/// let stop = graceful::shutdown_signal();
/// tokio::select! {
///     _ = stop => { /* stop accepting */ }
///     _ = tokio::time::sleep(std::time::Duration::from_millis(1)) => {}
/// }
/// # }
/// ```
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    controller().stop_accepting().clone().cancelled_owned()
}

/// A token cancelled at the stop-accepting moment, for background loops.
///
/// The token is a child: cancelling it yourself does not start a shutdown.
///
/// ```
/// # use graceful_runtime as graceful;
/// # async fn background() {
/// let token = graceful::token();
/// while !token.is_cancelled() {
///     // one unit of background work
/// #   break;
/// }
/// # }
/// ```
pub fn token() -> CancellationToken {
    controller().stop_accepting().child_token()
}

/// Marks the service ready for traffic: call it once its listeners are bound. Idempotent; has
/// no effect once shutdown has begun.
///
/// ```
/// # use graceful_runtime as graceful;
/// graceful::ready();
/// # graceful::unready();
/// ```
pub fn ready() {
    controller().ready();
}

/// Takes readiness back (health returns to `Starting`), for example while a dependency is down;
/// [`ready`] restores it. No effect once draining.
///
/// ```
/// # use graceful_runtime as graceful;
/// graceful::unready();
/// assert_ne!(graceful::health(), graceful::Health::Ready);
/// ```
pub fn unready() {
    controller().unready();
}

/// The service's health, for a readiness endpoint: `Starting`, `Ready` or `Draining`.
///
/// ```
/// # use graceful_runtime as graceful;
/// let status = graceful::health().status_code();
/// assert!(status == 200 || status == 503);
/// ```
pub fn health() -> Health {
    controller().health()
}

/// Tracked calls, guards and tracked tasks now running (the main body is not counted).
///
/// ```
/// # use graceful_runtime as graceful;
/// let _guard = graceful::track("job");
/// assert!(graceful::in_flight() >= 1);
/// ```
pub fn in_flight() -> usize {
    controller().inflight().total()
}

/// Counts work in flight under `name` until the guard drops, as `#[graceful::tracked]` does.
/// A name used twice is one site in reports.
///
/// ```
/// # use graceful_runtime as graceful;
/// fn export() {
///     let _in_flight = graceful::track("nightly-export");
///     // the drain waits for this to finish
/// }
/// export();
/// ```
pub fn track(name: &'static str) -> InFlightGuard {
    controller().track(name)
}

/// Spawns a task counted in flight until it finishes, named in reports by the caller's
/// `file:line`. A drain timeout aborts it. Like `tokio::spawn`, call it inside a runtime.
///
/// ```
/// # use graceful_runtime as graceful;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let handle = graceful::spawn(async { 40 + 2 });
/// assert_eq!(handle.await.unwrap(), 42);
/// # }
/// ```
#[track_caller]
pub fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let controller = controller();
    let site = controller
        .inflight()
        .site_at(std::panic::Location::caller());
    controller.spawn(site, future)
}

/// The `grpc.health.v1.Health` service for a tonic server, answering from graceful's health:
/// SERVING once [`ready`], NOT_SERVING from the start of shutdown on.
///
/// Each call makes a health service with services of its own; clone it to share them. See
/// [`GrpcHealth`] for what it answers.
///
/// ```
/// # use graceful_runtime as graceful;
/// let health = graceful::grpc_health().serving_name("helloworld.Greeter");
/// // tonic::transport::Server::builder().add_service(health)
/// # drop(health);
/// ```
#[cfg(feature = "grpc")]
pub fn grpc_health() -> GrpcHealth {
    GrpcHealth::following(global::grpc_health_feed())
}

/// Spawns a task the service cannot run without: a queue consumer, a cache refresher, a
/// replication stream. Like a tracked task, it counts in flight under `name` until it returns,
/// so the drain waits for it, and it is aborted at the drain deadline. It should return once it
/// sees [`shutdown_started()`] (stop taking work) or [`token()`] (stop-accepting). Call it
/// inside a runtime.
///
/// It returns `()` or `Result<(), E>` with `E: Display`, as a hook does. When it goes wrong,
/// the service stops rather than run on without it:
///
/// | the task | before shutdown began | once it had begun |
/// |---|---|---|
/// | returns an error | shutdown begins; exit 1 | named in the report; exit 0 becomes 1 |
/// | panics | shutdown begins; exit 101 | named in the report; exit 0 becomes 1 |
/// | returns `Ok` | shutdown begins; exit 1 ("ended while the service was running") | its normal end |
///
/// The report names it: `essential task "consumer" failed: connection reset`.
/// [`shutdown_with`]'s code still wins, and so does a non-success `ExitCode` from main. A task
/// aborted at the drain deadline is aborted work, as any tracked task, not a failure of its own.
/// Nothing restarts it: restarting the process is the supervisor's job (systemd's
/// `Restart=on-failure`, Kubernetes' restart policy). It costs nothing on any hot path.
///
/// ```
/// # use graceful_runtime as graceful;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// graceful::spawn_essential("consumer", async {
///     let stop = graceful::shutdown_started();
///     tokio::pin!(stop);
///     loop {
///         tokio::select! {
///             _ = &mut stop => return Ok(()),
///             // a message arrives: handle it, or return Err(error) to stop the service
///             _ = tokio::time::sleep(std::time::Duration::from_millis(10)) => {}
///         }
///         # return Err::<(), _>("the broker went away");
///     }
/// });
/// # }
/// ```
pub fn spawn_essential<F>(name: &'static str, task: F)
where
    F: Future + Send + 'static,
    F::Output: IntoHookResult,
{
    essential::spawn(controller(), name, task);
}

/// A token cancelled when the drain's deadline fires (`drain_timeout`, or grace), before
/// anything is aborted. Tracked work that sees it has `abandon_timeout` (default 1 s) to put
/// its unfinished work back, release a lease, nack a message with requeue, write a checkpoint,
/// and return; what still runs after that is aborted.
///
/// Nothing waits for `abandon_timeout` unless this was called: a process that never calls it
/// aborts at the deadline at once, and its budget does not count it. A drain whose work all
/// came back in time is not a failure (exit 0); the report says `all handed back: job x2`.
///
/// For workers, three moments, three tools:
///
/// | moment | tool | what a worker does |
/// |---|---|---|
/// | shutdown begins | [`shutdown_started()`] | stop fetching; finish what it holds |
/// | stop-accepting, `pre_stop` later | [`token()`] | leave loops that serve clients |
/// | the drain's deadline | `deadline_token()` | hand unfinished work back, then return |
///
/// ```
/// # use graceful_runtime as graceful;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let deadline = graceful::deadline_token();
/// let job = graceful::spawn(async move {
///     tokio::select! {
///         _ = tokio::time::sleep(std::time::Duration::from_millis(10)) => "done",
///         _ = deadline.cancelled() => "released its lease",
///     }
/// });
/// # assert_eq!(job.await.unwrap(), "done");
/// # }
/// ```
pub fn deadline_token() -> CancellationToken {
    controller().deadline_token()
}

/// Runs a reload now, as the reload signal (SIGHUP by default) does, and resolves to what it
/// did: the parts that reload themselves (a TLS certificate from files), then every reload
/// hook in order, each under `hook_timeout`. A reload never drains and never changes
/// readiness. One asked for while another runs is run once more after it (both callers get
/// that second outcome); one asked for after shutdown has begun is refused.
///
/// ```
/// # use graceful_runtime as graceful;
/// # async fn example() {
/// match graceful::reload().await {
///     Ok(report) => println!("{report}"),
///     Err(refused) => eprintln!("{refused}"), // shutting down, or not under graceful::main
/// }
/// # }
/// ```
pub async fn reload() -> Result<ReloadReport, ReloadError> {
    global::reloads().request("graceful::reload()").await
}

/// Adds a reload hook at run time: `hook` runs at every reload from now on, after the
/// `#[graceful::on_reload]` fns of its order (0), under `hook_timeout`, and is named in the log
/// by the caller's `file:line`. A failing hook is reported; the state it guards should stay as
/// it was (build the new value, then swap it in).
///
/// ```
/// # use graceful_runtime as graceful;
/// use std::sync::{Arc, RwLock};
///
/// let settings = Arc::new(RwLock::new(String::from("v1")));
/// let reloaded = Arc::clone(&settings);
/// graceful::on_reload(move || {
///     let settings = Arc::clone(&reloaded);
///     async move {
///         let fresh = std::fs::read_to_string("/etc/my-service/settings")?; // the old value stays on error
///         *settings.write().unwrap() = fresh;
///         Ok::<(), std::io::Error>(())
///     }
/// });
/// ```
#[track_caller]
pub fn on_reload<F, Fut>(hook: F)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: IntoHookResult,
{
    let caller = std::panic::Location::caller();
    let name = format!("{}:{}", caller.file(), caller.line());
    global::reloads().on_reload(name, hook);
}

/// Adds a teardown hook at run time, for resources created in main (a pool, a client). It
/// joins the `#[graceful::on_shutdown]` hooks in the same ordered table and runs under
/// `hook_timeout`. One registered after teardown has begun does not run and is reported as late.
///
/// ```
/// # use graceful_runtime as graceful;
/// graceful::register_hook(10, "close-pool", || async {
///     // pool.close().await
/// });
/// graceful::register_hook(20, "flush-cache", || async { Ok::<(), std::io::Error>(()) });
/// ```
pub fn register_hook<F, Fut>(order: i32, name: impl Into<Cow<'static, str>>, hook: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: IntoHookResult,
{
    controller().register_hook(order, name.into(), hook);
}

/// Calls `sink` with the final [`ShutdownReport`] once it has been written, for tests and for
/// sinks of your own (an alert, a metrics push). Callable any time before the report; sinks
/// run in the order they were added, on the thread that finished the sequence, and must not
/// block for long: the exit waits for them.
///
/// With the builder, [`Builder::on_report`] does the same.
///
/// ```
/// # use graceful_runtime as graceful;
/// graceful::on_report(|report| {
///     if report.has_failures() {
///         eprintln!("shutdown went wrong: {report}");
///     }
/// });
/// ```
pub fn on_report(sink: impl Fn(&ShutdownReport) + Send + Sync + 'static) {
    controller().on_report(sink);
}
