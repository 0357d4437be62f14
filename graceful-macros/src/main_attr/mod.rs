//! `#[graceful::main]`: parse the keys and the fn (here), validate them into a typed config
//! (`validate.rs`), and expand to a sync `fn` that hands the body to `graceful::Builder`
//! (`expand.rs`), the way `#[tokio::main]` hands it to tokio.

mod expand;
mod validate;

use proc_macro2::TokenStream;

use crate::args::{Args, Errors};
use crate::{item, signature};

pub(crate) const ATTRIBUTE: &str = "#[graceful::main]";
/// Every key the attribute accepts, in the order the unknown-key error lists them. The one
/// list: the docs of `graceful::main`, the README's key table and this are kept in step by
/// the tests in `documentation.rs`.
pub(crate) const MAIN_KEYS: &[&str] = &[
    "drain_timeout",
    "hook_timeout",
    "pre_stop",
    "grace",
    "abandon_timeout",
    "signals",
    "reload_signal",
    "flavor",
    "worker_threads",
    // Accepted without the `health` feature too, to say that the feature is needed.
    "health",
    "report",
    "crate",
];
const USAGE: &str = "write `#[graceful::main] async fn main() { .. }`";
const EXAMPLE: &str = "#[graceful::main(drain_timeout = \"20s\")]";

pub(crate) fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    let function = match item::parse_fn(item, ATTRIBUTE, USAGE) {
        Ok(function) => function,
        Err(error_and_item) => return error_and_item,
    };
    let mut errors = Errors::default();
    let args = Args::parse(args, EXAMPLE, &mut errors);
    let config = validate::config(&args, &mut errors);
    signature::check(&function.sig, &validate::SIGNATURE, &mut errors);
    match errors.finish() {
        Ok(()) => expand::main(&config, function),
        Err(error) => expand::with_error(error, function),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::squash;
    use quote::quote;

    fn expand(args: TokenStream, item: TokenStream) -> String {
        main(args, item).to_string()
    }

    #[test]
    fn each_key_becomes_one_builder_call() {
        let expansion = expand(
            quote!(
                drain_timeout = "5s",
                hook_timeout = "1s",
                pre_stop = "250ms",
                grace = "1m",
                signals = ["SIGTERM", "SIGUSR2"],
                flavor = "current_thread"
            ),
            quote!(
                async fn main() {}
            ),
        );
        for call in [
            ". drain_timeout (:: graceful :: __private :: Duration :: from_nanos (5000000000u64))",
            ". hook_timeout (:: graceful :: __private :: Duration :: from_nanos (1000000000u64))",
            ". pre_stop (:: graceful :: __private :: Duration :: from_nanos (250000000u64))",
            ". grace (:: graceful :: __private :: Duration :: from_nanos (60000000000u64))",
            ". signals ([:: graceful :: __private :: Signal :: Sigterm , :: graceful :: __private :: Signal :: Sigusr2])",
            ". flavor (:: graceful :: __private :: Flavor :: CurrentThread)",
        ] {
            assert!(expansion.contains(call), "{call}\nnot in\n{expansion}");
        }
        assert!(!expansion.contains("compile_error"), "{expansion}");
    }

    #[test]
    fn reload_signal_becomes_an_option() {
        for (key, call) in [
            (
                quote!(reload_signal = "SIGUSR1"),
                ". reload_signal (:: core :: option :: Option :: Some (:: graceful :: __private :: Signal :: Sigusr1))",
            ),
            (
                quote!(reload_signal = "none"),
                ". reload_signal (:: core :: option :: Option :: None)",
            ),
        ] {
            let expansion = main(key, quote!(async fn main() {})).to_string();
            assert!(expansion.contains(call), "{call}\nnot in\n{expansion}");
        }
    }

    #[test]
    fn the_body_moves_into_an_inner_async_fn_and_the_output_is_checked() {
        let expansion = expand(
            quote!(),
            quote!(
                /// Docs stay.
                pub async fn serve() -> Result<(), String> {
                    Ok(())
                }
            ),
        );
        // A string, not quote!: rustfmt reformats the inside of macros.
        let expected = r#"
            #[doc = r" Docs stay."]
            pub fn serve() -> ::std::process::ExitCode {
                async fn __graceful_main() -> Result<(), String> { Ok(()) }
                ::graceful::__private::assert_main_output::<Result<(), String> >();
                ::graceful::__private::Builder::new().run(__graceful_main())
            }
        "#;
        assert_eq!(squash(&expansion), squash(expected));
    }

    #[test]
    fn a_fn_without_output_is_checked_as_unit() {
        let expansion = expand(
            quote!(),
            quote!(
                async fn main() {}
            ),
        );
        assert!(
            expansion.contains("assert_main_output :: < () > ()"),
            "{expansion}"
        );
    }

    #[test]
    fn worker_threads_are_passed_on() {
        let expansion = expand(
            quote!(worker_threads = 4, flavor = "multi_thread"),
            quote!(
                async fn main() {}
            ),
        );
        assert!(
            expansion.contains(". worker_threads (4usize)"),
            "{expansion}"
        );
        assert!(expansion.contains("Flavor :: MultiThread"), "{expansion}");
    }

    #[test]
    fn the_crate_key_moves_every_path() {
        let expansion = expand(
            quote!(crate = "platform::graceful", grace = "1s"),
            quote!(
                async fn main() {}
            ),
        );
        assert_eq!(
            expansion
                .matches("platform :: graceful :: __private")
                .count(),
            expansion.matches("graceful :: __private").count(),
            "{expansion}"
        );
        assert!(
            expansion.contains("platform :: graceful :: __private :: Builder :: new ()"),
            "{expansion}"
        );
    }

    #[test]
    fn every_mistake_is_reported_in_one_build() {
        let expansion = expand(
            quote!(drain_timout = "5s", grace = "soon", signals = []),
            quote!(
                fn main(port: u16) {}
            ),
        );
        for message in [
            "unknown key `drain_timout`",
            "invalid duration \\\"soon\\\"",
            "`signals` needs at least one signal",
            "needs an `async fn`",
            "takes no parameters",
        ] {
            assert!(
                expansion.contains(message),
                "{message}\nnot in\n{expansion}"
            );
        }
    }

    #[test]
    fn on_error_the_body_is_kept_but_never_run() {
        let expansion = expand(
            quote!(flavor = "single_thread"),
            quote!(
                async fn main() {
                    let answer = 42;
                }
            ),
        );
        assert!(expansion.contains("compile_error"), "{expansion}");
        assert!(expansion.contains("let answer = 42"), "{expansion}");
        assert!(!expansion.contains("Builder"), "{expansion}");
    }

    #[test]
    fn health_without_its_feature_names_the_feature() {
        let expansion = expand(
            quote!(health = "127.0.0.1:8081"),
            quote!(
                async fn main() {}
            ),
        );
        if cfg!(feature = "health") {
            assert!(
                expansion.contains(". health (\"127.0.0.1:8081\")"),
                "{expansion}"
            );
        } else {
            assert!(
                expansion.contains("needs graceful's `health` feature"),
                "{expansion}"
            );
        }
    }

    #[test]
    fn a_health_value_that_is_no_socket_address_is_an_error_either_way() {
        let expansion = expand(
            quote!(health = "localhost"),
            quote!(
                async fn main() {}
            ),
        );
        assert!(
            expansion.contains("\\\"localhost\\\" is not a socket address"),
            "{expansion}"
        );
    }
}
