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

pub use graceful_macros::{main, on_reload, on_shutdown, tracked};
// Everything public in the runtime, as the features compiled it: no list of `cfg`s here that
// must match the runtime's. `tests/facade.rs` checks that every name the README uses is here.
pub use graceful_runtime::*;

/// Compiles the README's examples as doctests (they use the HTTP features).
#[cfg(all(doctest, feature = "serve", feature = "health"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
