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

#![forbid(unsafe_code)]

pub use graceful_macros::{main, on_shutdown, tracked};
pub use graceful_runtime::{
    health, in_flight, is_shutting_down, keep_until_exit, ready, register_hook, shutdown,
    shutdown_signal, shutdown_with, spawn, token, track, unready, Builder, CancellationToken,
    ConfigError, Flavor, Health, InFlightGuard, IntoHookResult, Signal, EXIT_CONFIG,
};

/// `TrackLayer` (feature `tower`), `readyz` and `livez` (features `tower` or `health`).
#[doc(inline)]
#[allow(unused_imports)] // empty when no optional feature is on
pub use graceful_runtime::features::*;

#[doc(hidden)]
pub use graceful_runtime::__private;

/// Compiles the README's examples as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
