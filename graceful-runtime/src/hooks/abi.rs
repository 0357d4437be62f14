//! What `#[graceful::on_shutdown]` and `#[graceful::on_reload]` expand to: the table entry, the
//! link-time slices it is collected in, and the helpers that normalise a hook's return type.
//! Generated code reaches these through `__private`, so a change here is a change to what the
//! macros emit.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// What a hook returns once its output is normalised: `Err` holds the error's `Display`.
pub type HookResult = Result<(), String>;

/// An async hook's future, boxed so that the static table can hold fn pointers.
pub type BoxHookFuture = Pin<Box<dyn Future<Output = HookResult> + Send + 'static>>;

/// One `#[graceful::on_shutdown]` fn, as the macro records it in the `HOOKS` slice (or one
/// `#[graceful::on_reload]` fn, in `RELOAD_HOOKS`).
#[derive(Debug)]
pub struct StaticHook {
    /// Lower runs first; equal orders run concurrently at shutdown, one after another at a
    /// reload.
    pub order: i32,
    /// `module::fn`, or the `name` given to the attribute.
    pub name: &'static str,
    /// The attribute's `timeout`; `None` means the run's `hook_timeout`.
    pub timeout: Option<Duration>,
    /// How to call it.
    pub run: HookFn,
}

/// How a static hook is called.
#[derive(Debug, Clone, Copy)]
pub enum HookFn {
    /// A plain fn: run on the blocking pool, so that it cannot stall the runtime.
    Sync(fn() -> HookResult),
    /// An `async fn`: spawned as a task.
    Async(fn() -> BoxHookFuture),
}

/// Every `#[graceful::on_shutdown]` hook linked into the binary.
#[linkme::distributed_slice]
pub static HOOKS: [StaticHook];

/// Every `#[graceful::on_reload]` hook linked into the binary: the same entries, run at each
/// reload rather than at shutdown.
#[linkme::distributed_slice]
pub static RELOAD_HOOKS: [StaticHook];

/// What a hook fn, and an essential task (`spawn_essential`), may return: `()` or
/// `Result<(), E: Display>`.
#[diagnostic::on_unimplemented(
    message = "a shutdown or reload hook, or an essential task, must return `()` or `Result<(), E>` where `E: Display`, not `{Self}`",
    label = "this return type is not allowed for a hook or an essential task"
)]
pub trait IntoHookResult {
    /// Normalises the output; an error keeps its `Display` text.
    fn into_hook_result(self) -> HookResult;
}

impl IntoHookResult for () {
    fn into_hook_result(self) -> HookResult {
        Ok(())
    }
}

impl<E: fmt::Display> IntoHookResult for Result<(), E> {
    fn into_hook_result(self) -> HookResult {
        self.map_err(|error| error.to_string())
    }
}

/// Boxes an async hook's future, normalising its output.
pub fn box_hook<F>(future: F) -> BoxHookFuture
where
    F: Future + Send + 'static,
    F::Output: IntoHookResult,
{
    Box::pin(async move { future.await.into_hook_result() })
}

/// Lets generated code point a type error at the hook's return type.
pub fn assert_hook_output<T: IntoHookResult>() {}
