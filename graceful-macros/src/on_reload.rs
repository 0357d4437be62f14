//! `#[graceful::on_reload]`: a free fn run at every reload (SIGHUP, `graceful::reload()`), one at a
//! time in ascending `order`, through an entry of the link-time reload table (`RELOAD_HOOKS`).
//! The parsing, checks and expansion are `hook.rs`'s, shared with `#[graceful::on_shutdown]`,
//! where a row of `TABLES` says what differs.

use proc_macro2::TokenStream;

use crate::hook::{self, RELOAD};

pub(crate) fn on_reload(args: TokenStream, item: TokenStream) -> TokenStream {
    hook::attribute::<RELOAD>(args, item)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    #[test]
    fn expansions_go_into_the_reload_table_with_every_key_of_on_shutdown() {
        let cases = [
            (
                quote!(),
                quote!(
                    async fn reload_settings() -> Result<(), std::io::Error> {
                        Ok(())
                    }
                ),
                // Without keys: order 0, the run's hook_timeout.
                vec![
                    "distributed_slice (:: graceful :: __private :: RELOAD_HOOKS)",
                    "static __GRACEFUL_RELOAD_HOOK_reload_settings : :: graceful :: __private :: StaticHook",
                    "order : 0i32",
                    "timeout : :: core :: option :: Option :: None",
                    ":: graceful :: __private :: box_hook (reload_settings ())",
                ],
            ),
            (
                quote!(order = -2, timeout = "10s", name = "settings", crate = "::platform::graceful"),
                quote!(
                    fn r#reload() {}
                ),
                vec![
                    "order : - 2i32",
                    "name : \"settings\"",
                    "Duration :: from_nanos (10000000000u64)",
                    "static __GRACEFUL_RELOAD_HOOK_reload",
                    ":: platform :: graceful :: __private :: HookFn :: Sync",
                ],
            ),
            (
                quote!(),
                quote!(
                    fn reload(&self) {}
                ),
                vec!["#[graceful::on_reload] goes on a free fn, not a method; call the method from a free fn, or register a hook for a value made at run time with graceful::on_reload"],
            ),
        ];
        for (args, item, parts) in cases {
            let expansion = on_reload(args, item).to_string();
            let missing: Vec<_> = parts
                .iter()
                .filter(|part| !expansion.contains(**part))
                .collect();
            assert!(missing.is_empty(), "{missing:#?}\nnot in\n{expansion}");
            assert!(!expansion.contains("__private :: HOOKS"), "{expansion}");
        }
    }
}
