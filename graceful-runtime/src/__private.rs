//! The one door through which macro-generated code reaches the runtime. Not public API: names
//! here change without notice. See docs/PRIVATE-API.md.

pub use linkme;
pub use std::time::Duration;

pub use crate::builder::{Builder, Flavor};
pub use crate::hooks::{
    assert_hook_output, box_hook, BoxHookFuture, HookFn, HookResult, IntoHookResult, StaticHook,
    HOOKS, RELOAD_HOOKS,
};
pub use crate::inflight::Site;
pub use crate::report::ReportFormat;
pub use crate::sequence::{assert_main_output, MainOutput};
pub use crate::signals::Signal;
