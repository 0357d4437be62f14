//! Graceful shutdown for tokio services, by annotation.
//!
//! ```no_run
//! #[graceful::tracked]
//! async fn handle_upload() { /* the drain waits for this */ }
//!
//! #[graceful::on_shutdown(order = 10)]
//! async fn close_pool() { /* runs after the drain */ }
//!
//! #[graceful::main(drain_timeout = "20s", pre_stop = "5s")]
//! async fn main() {
//!     // bind listeners, then:
//!     graceful::ready();
//!     graceful::shutdown_signal().await;
//! }
//! ```
//!
//! See the README for the whole sequence, every key and environment variable, and exit codes.

pub use graceful_macros::{main, on_shutdown, tracked};
pub use graceful_runtime::{
    bind, bind_named, health, in_flight, is_shutting_down, keep_until_exit, on_report, ready,
    register_hook, report, shutdown, shutdown_signal, shutdown_started, shutdown_with, spawn,
    token, track, unready, Builder, CancellationToken, ConfigError, Flavor, Health, InFlightGuard,
    IntoHookResult, MainOutput, Phase, ReportFormat, ShutdownReport, Signal, EXIT_CONFIG,
};

#[cfg(feature = "grpc")]
pub use graceful_runtime::{grpc_health, GrpcHealth};
#[cfg(any(feature = "tower", feature = "health"))]
pub use graceful_runtime::{livez, readyz};
#[cfg(feature = "serve")]
pub use graceful_runtime::{serve, HyperService, IntoHttpService, Listener, Serve, TowerService};
#[cfg(feature = "tower")]
pub use graceful_runtime::{TrackLayer, TrackService, TrackedFuture};

#[doc(hidden)]
pub use graceful_runtime::__private;

/// Compiles the README's examples as doctests (they use the HTTP features).
#[cfg(all(doctest, feature = "serve", feature = "health"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
