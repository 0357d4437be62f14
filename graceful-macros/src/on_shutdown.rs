//! `#[graceful::on_shutdown]`: a free fn run once after the drain, in ascending `order`, through
//! an entry of the link-time teardown table (`HOOKS`). The parsing, checks and expansion are
//! `hook.rs`'s, shared with `#[graceful::on_reload]`, where a row of `TABLES` says what differs.

use proc_macro2::TokenStream;

use crate::hook::{self, SHUTDOWN};

pub(crate) fn on_shutdown(args: TokenStream, item: TokenStream) -> TokenStream {
    hook::attribute::<SHUTDOWN>(args, item)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::squash;
    use quote::quote;

    fn expand_str(args: TokenStream, item: TokenStream) -> String {
        on_shutdown(args, item).to_string()
    }

    #[test]
    fn an_async_hook_becomes_a_table_entry_beside_the_fn() {
        let expansion = expand_str(
            quote!(order = 10, timeout = "2s"),
            quote!(
                async fn close_pool() -> Result<(), Error> {
                    Ok(())
                }
            ),
        );
        // A string, not quote!: rustfmt reformats the inside of macros.
        let expected = r#"
            async fn close_pool() -> Result<(), Error> { Ok(()) }

            #[::graceful::__private::linkme::distributed_slice(::graceful::__private::HOOKS)]
            #[linkme(crate = ::graceful::__private::linkme)]
            #[allow(non_upper_case_globals)]
            #[doc(hidden)]
            static __GRACEFUL_HOOK_close_pool: ::graceful::__private::StaticHook =
                ::graceful::__private::StaticHook {
                    order: 10i32,
                    name: ::core::concat!(::core::module_path!(), "::", "close_pool"),
                    timeout: ::core::option::Option::Some(
                        ::graceful::__private::Duration::from_nanos(2000000000u64)
                    ),
                    run: ::graceful::__private::HookFn::Async(|| {
                        ::graceful::__private::assert_hook_output::<Result<(), Error> >();
                        ::graceful::__private::box_hook(close_pool())
                    }),
                };
        "#;
        assert_eq!(squash(&expansion), squash(expected));
    }

    #[test]
    fn a_sync_hook_is_called_through_into_hook_result() {
        let expansion = expand_str(
            quote!(order = -3, name = "flush"),
            quote!(
                fn flush() {}
            ),
        );
        for part in [
            "order : - 3i32",
            "name : \"flush\"",
            "timeout : :: core :: option :: Option :: None",
            ":: graceful :: __private :: HookFn :: Sync (|| { :: graceful :: __private :: assert_hook_output :: < () > () ; :: graceful :: __private :: IntoHookResult :: into_hook_result (flush ()) })",
        ] {
            assert!(expansion.contains(part), "{part}\nnot in\n{expansion}");
        }
    }

    #[test]
    fn a_missing_order_says_what_to_add() {
        let expansion = expand_str(
            quote!(),
            quote!(
                async fn close_pool() {}
            ),
        );
        assert!(
            expansion.contains("missing `order`: add `order = N`; lower runs first"),
            "{expansion}"
        );
        assert!(
            expansion.ends_with("async fn close_pool () { }"),
            "{expansion}"
        );
    }
}
