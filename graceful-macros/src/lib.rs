//! Attribute macros of the `graceful` crate. Thin by design: each parses its keys, validates
//! them with errors on the offending tokens, and expands to calls into `::graceful::__private`
//! (docs/PRIVATE-API.md); all behaviour lives in `graceful-runtime`.
//!
//! Use them through `graceful`: `#[graceful::main]`, `#[graceful::tracked]`,
//! `#[graceful::on_shutdown(order = N)]`, `#[graceful::on_reload]`.

mod args;
mod duration;
mod hook;
mod item;
mod krate;
mod main_attr;
mod name;
mod on_reload;
mod on_shutdown;
mod signature;
mod tracked;

#[cfg(test)]
mod documentation;
#[cfg(test)]
mod test_support;

use proc_macro::TokenStream;

/// Runs an `async fn` with no parameters as the program's entry point, through the whole
/// graceful shutdown sequence; the fn becomes a sync `fn` returning `std::process::ExitCode`.
///
/// It returns `()`, `Result<(), E: Debug>` or `std::process::ExitCode`. Keys, all optional:
///
/// - `drain_timeout = "20s"`, `hook_timeout = "5s"`, `pre_stop = "0s"`, `grace = "28s"`,
///   `abandon_timeout = "1s"`: humantime durations, checked at compile time;
/// - `signals = ["SIGTERM", "SIGINT"]`: any of SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1,
///   SIGUSR2;
/// - `reload_signal = "SIGHUP"`: the signal that reloads (the default, unless `signals` names
///   SIGHUP), any of the same, or `"none"`: no handler is installed for it, and
///   `graceful::reload()` still reloads. A signal that also shuts down is an error;
/// - `flavor = "multi_thread"` or `"current_thread"`, and `worker_threads = N` (multi_thread);
/// - `report = "text"` or `"json"`: the final report for people, or as one line of JSON on
///   stderr;
/// - `health = "0.0.0.0:8081"`: `/livez` and `/readyz` on that address (feature `health`);
/// - `crate = "path"`: where graceful is, for crates that re-export it.
///
/// ```no_run
/// #[graceful::main(drain_timeout = "10s", pre_stop = "5s")]
/// async fn main() {
///     // bind listeners, then:
///     graceful::ready();
///     graceful::shutdown_signal().await;
/// }
/// ```
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    main_attr::main(args.into(), item.into()).into()
}

/// Counts every call of a fn as in flight, from the start of its body until it returns,
/// unwinds or its future is dropped; the drain waits for it. The signature does not change.
///
/// Goes on any fn with a body: async or sync, free fn or method, generic, in a trait impl,
/// under `#[async_trait]` (the whole boxed future is counted). A hand-written
/// `fn -> impl Future` counts only its synchronous part: make it an `async fn` to count the
/// future. `#[graceful::tracked(name = "upload")]` names the site in reports; the default is
/// the module path and the fn's name. `crate = "path"` as for `main`.
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

/// Adds a free fn to the teardown table, run once after the drain in ascending `order`
/// (an `i32`; hooks of equal order run concurrently).
///
/// The fn is sync or async, takes no parameters and returns `()` or `Result<(), E: Display>`.
/// Keys: `order = N` (required), `timeout = "2s"` (default: the run's `hook_timeout`),
/// `name = "close-pool"` (default: module path and fn name), `crate = "path"`.
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

/// Adds a free fn to the reload table, run at every reload (the reload signal, SIGHUP by
/// default, or `graceful::reload()`), one at a time in ascending `order` (an `i32`, default 0),
/// each under its timeout. A failing hook is reported and the next still runs; it should leave
/// the state it guards as it was (build the new value, then swap it in).
///
/// The fn is sync or async, takes no parameters and returns `()` or `Result<(), E: Display>`.
/// Keys, all optional: `order = N` (default 0), `timeout = "2s"` (default: the run's
/// `hook_timeout`), `name = "settings"` (default: module path and fn name), `crate = "path"`.
///
/// ```
/// #[graceful::on_reload(timeout = "2s")]
/// async fn reload_settings() -> Result<(), std::io::Error> {
///     let _fresh = tokio::fs::read_to_string("/etc/my-service/settings.toml").await?;
///     // parse, then swap it in: on error the old settings stay
///     Ok(())
/// }
/// ```
#[proc_macro_attribute]
pub fn on_reload(args: TokenStream, item: TokenStream) -> TokenStream {
    on_reload::on_reload(args.into(), item.into()).into()
}
