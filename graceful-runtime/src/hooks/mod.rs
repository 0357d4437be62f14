//! The teardown table: hooks declared with `#[graceful::on_shutdown]` (a link-time slice) and
//! hooks registered at run time, run in ascending order, each under its own timeout.

mod abi;
mod outcome;
mod run;
mod scheduler;
#[cfg(test)]
mod tests;

pub use abi::{
    assert_hook_output, box_hook, BoxHookFuture, HookFn, HookResult, IntoHookResult, StaticHook,
    HOOKS, RELOAD_HOOKS,
};
pub use outcome::{HookOutcome, HookReport};
pub(crate) use run::Hook;
pub(crate) use scheduler::{not_run, run_all};
