//! Attribute macros of the `graceful` crate. Thin by design: each parses its keys, validates
//! them with errors on the offending tokens, and expands to calls into
//! `::graceful::__private`; all behaviour lives in `graceful-runtime`.
//!
//! Use them through `graceful`: `#[graceful::main]`, `#[graceful::tracked]`,
//! `#[graceful::on_shutdown(order = N)]`.

mod args;
mod main_attr;
mod on_shutdown;
mod tracked;

use proc_macro::TokenStream;

/// Runs an `async fn main()` through the whole graceful shutdown sequence.
///
/// Keys: `drain_timeout = "20s"`, `hook_timeout = "5s"`, `pre_stop = "0s"`, `grace = "28s"`,
/// `signals = ["SIGTERM", "SIGINT"]`, `flavor = "multi_thread" | "current_thread"`,
/// `worker_threads = N`, `report = "text" | "json"`, `health = "127.0.0.1:8081"` (feature
/// `health`), `crate = "path"`. The fn returns `()`, `Result<(), E: Debug>` or `ExitCode`.
///
/// ```no_run
/// #[graceful::main(drain_timeout = "10s", pre_stop = "5s")]
/// async fn main() {
///     graceful::ready();
///     graceful::shutdown_signal().await;
/// }
/// ```
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    main_attr::main(args.into(), item.into()).into()
}

/// Counts every call of a fn as in flight, from the start of its body until it returns,
/// unwinds or its future is dropped. The signature does not change.
///
/// `#[graceful::tracked(name = "upload")]` names the site; the default is the module path and
/// the fn's name. A hand-written `fn -> impl Future` counts only its synchronous part.
///
/// ```
/// #[graceful::tracked]
/// async fn upload(bytes: Vec<u8>) -> usize {
///     bytes.len()
/// }
/// ```
#[proc_macro_attribute]
pub fn tracked(args: TokenStream, item: TokenStream) -> TokenStream {
    tracked::tracked(args.into(), item.into()).into()
}

/// Adds a free fn (sync or async, no parameters, returning `()` or `Result<(), E: Display>`) to
/// the teardown table, run after the drain in ascending `order`.
///
/// `#[graceful::on_shutdown(order = 10, timeout = "2s", name = "close-pool")]`
///
/// ```
/// #[graceful::on_shutdown(order = 10, timeout = "2s")]
/// async fn close_pool() -> Result<(), std::io::Error> {
///     Ok(())
/// }
/// ```
#[proc_macro_attribute]
pub fn on_shutdown(args: TokenStream, item: TokenStream) -> TokenStream {
    on_shutdown::on_shutdown(args.into(), item.into()).into()
}
