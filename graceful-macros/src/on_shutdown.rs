//! `#[graceful::on_shutdown]`: parse the keys and the fn, validate them, then expand to the fn
//! unchanged plus one entry of the link-time teardown table (a linkme distributed slice), so
//! that no code runs at start-up to register it.

use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::ItemFn;

use crate::args::{Arg, Args, Errors};
use crate::name::Name;
use crate::signature::{self, Parameters, Rules};
use crate::{duration, item, krate};

const ATTRIBUTE: &str = "#[graceful::on_shutdown]";
const USAGE: &str = "write `#[graceful::on_shutdown(order = 10)] async fn close_pool() { .. }`";
const KEYS: &[&str] = &["order", "timeout", "name", "crate"];
const EXAMPLE: &str = "#[graceful::on_shutdown(order = 10)]";

pub(crate) fn on_shutdown(args: TokenStream, item: TokenStream) -> TokenStream {
    let function = match item::parse_fn(item, ATTRIBUTE, USAGE) {
        Ok(function) => function,
        Err(error_and_item) => return error_and_item,
    };
    let mut errors = Errors::default();
    let args = Args::parse(args, EXAMPLE, &mut errors);
    match validate(&args, &function.sig, errors) {
        Ok(config) => expand(&config, function),
        Err(error) => {
            let error = error.to_compile_error();
            quote!(#error #function)
        }
    }
}

/// The attribute, checked.
struct HookConfig {
    krate: syn::Path,
    order: i32,
    /// `None`: the run's `hook_timeout`.
    timeout: Option<(Duration, Span)>,
    name: Name,
}

/// The teardown table calls the fn as `name()`, safely, with nothing to choose: so a free,
/// safe, non-generic fn without parameters.
const SIGNATURE: Rules = Rules {
    constness: Some(|_| {
        "a shutdown hook cannot be a `const fn`: it runs at shutdown, not at compile time; remove `const`".to_owned()
    }),
    unsafety: Some(|_| {
        "a shutdown hook cannot be an `unsafe fn`: the teardown table has no contract to uphold; remove `unsafe` and put an `unsafe { .. }` block inside".to_owned()
    }),
    generics: Some(|_| {
        "a shutdown hook cannot be generic: the teardown table calls it with no types to choose; remove the generics".to_owned()
    }),
    parameters: Parameters::RejectedEach {
        receiver: |_| {
            format!("{ATTRIBUTE} goes on a free fn, not a method; call the method from a free fn, or register a hook for a value made at run time with graceful::register_hook")
        },
        typed: |_| {
            "a shutdown hook takes no parameters; reach what it closes through a static, or capture it in graceful::register_hook(order, name, move || ..)".to_owned()
        },
    },
    impl_trait_output: Some(|_| {
        "a shutdown hook needs a named return type; write `()` or `Result<(), E>`".to_owned()
    }),
    ..Rules::ANY
};

/// The signature, then every key, adding to the mistakes `Args::parse` recorded in `errors`.
/// A hook only with none at all: one mistake must not hide another, nor quietly drop the hook.
fn validate(
    args: &Args,
    signature: &syn::Signature,
    mut errors: Errors,
) -> syn::Result<HookConfig> {
    signature::check(signature, &SIGNATURE, &mut errors);
    args.check_keys(KEYS, &mut errors);
    let krate = krate::krate(args, &mut errors);
    let order = args.get("order").and_then(|arg| errors.take(order(arg)));
    if args.is_missing("order") {
        errors.push(missing_order());
    }
    let timeout = args.get("timeout").and_then(|arg| {
        let value = errors.take(duration::parse(arg))?;
        Some((value, arg.path.span()))
    });
    let name = Name::of(args, &signature.ident, "name = \"close-pool\"", &mut errors);
    errors.finish()?;
    Ok(HookConfig {
        krate,
        // `None` comes with a mistake in `errors` (here or in `Args::parse`), so `finish` has
        // already returned it; were that to change, this is still an error, not a lost hook.
        order: order.ok_or_else(missing_order)?,
        timeout,
        name,
    })
}

/// On the attribute: there is no token of the missing key to point at.
fn missing_order() -> syn::Error {
    syn::Error::new(
        Span::call_site(),
        format!("missing `order`: add `order = N`; lower runs first, e.g. {EXAMPLE}"),
    )
}

/// An integer literal, negative ones included, that fits an i32.
fn order(arg: &Arg) -> syn::Result<i32> {
    let error = |detail: &str| {
        syn::Error::new_spanned(
            &arg.value,
            format!("`order` must be an integer literal (i32), e.g. {EXAMPLE}{detail}"),
        )
    };
    let (negative, literal) = match &arg.value {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(literal),
            ..
        }) => (false, literal),
        syn::Expr::Unary(syn::ExprUnary {
            op: syn::UnOp::Neg(_),
            expr,
            ..
        }) => match &**expr {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Int(literal),
                ..
            }) => (true, literal),
            _ => return Err(error("")),
        },
        _ => return Err(error("")),
    };
    let out_of_range = || {
        let sign = if negative { "-" } else { "" };
        error(&format!(
            "; {sign}{} is outside {}..={}",
            literal.base10_digits(),
            i32::MIN,
            i32::MAX
        ))
    };
    let magnitude: i64 = literal.base10_parse().map_err(|_| out_of_range())?;
    let value = if negative { -magnitude } else { magnitude };
    i32::try_from(value).map_err(|_| out_of_range())
}

fn expand(config: &HookConfig, function: ItemFn) -> TokenStream {
    let HookConfig {
        krate,
        order,
        timeout,
        name,
    } = config;
    let ident = &function.sig.ident;
    let entry = format_ident!("__GRACEFUL_HOOK_{}", ident.unraw());
    let timeout = match timeout {
        Some((value, span)) => {
            let value = duration::tokens(krate, *value, *span);
            quote!(::core::option::Option::Some(#value))
        }
        None => quote!(::core::option::Option::None),
    };
    // The check and the call are spanned on the return type: when it is not () or
    // Result<(), E: Display>, the compiler's error points there, once (see `output_type`).
    let output_span = item::output_span(&function.sig);
    let output_type = item::output_type(&function.sig);
    let mut callee = ident.clone();
    callee.set_span(output_span);
    let assertion =
        quote_spanned!(output_span=> #krate::__private::assert_hook_output::<#output_type>(););
    let run = if function.sig.asyncness.is_some() {
        quote_spanned!(output_span=> #krate::__private::HookFn::Async(|| {
            #assertion
            #krate::__private::box_hook(#callee())
        }))
    } else {
        quote_spanned!(output_span=> #krate::__private::HookFn::Sync(|| {
            #assertion
            #krate::__private::IntoHookResult::into_hook_result(#callee())
        }))
    };
    let linkme = quote!(#krate::__private::linkme);
    quote! {
        #function

        #[#linkme::distributed_slice(#krate::__private::HOOKS)]
        #[linkme(crate = #linkme)]
        #[allow(non_upper_case_globals)]
        #[doc(hidden)]
        static #entry: #krate::__private::StaticHook = #krate::__private::StaticHook {
            order: #order,
            name: #name,
            timeout: #timeout,
            run: #run,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::squash;

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
    fn order_accepts_the_whole_i32_range_and_nothing_else() {
        let order_of = |value: TokenStream| {
            let mut errors = Errors::default();
            let args = Args::parse(quote!(order = #value), "", &mut errors);
            order(args.get("order").unwrap()).map_err(|error| error.to_string())
        };
        assert_eq!(order_of(quote!(2147483647)), Ok(i32::MAX));
        assert_eq!(order_of(quote!(-2147483648)), Ok(i32::MIN));
        assert_eq!(order_of(quote!(0)), Ok(0));
        assert_eq!(
            order_of(quote!(2147483648)).unwrap_err(),
            "`order` must be an integer literal (i32), e.g. #[graceful::on_shutdown(order = 10)]; 2147483648 is outside -2147483648..=2147483647"
        );
        assert!(order_of(quote!(-2147483649)).is_err());
        assert!(order_of(quote!(99999999999999999999999)).is_err());
        assert_eq!(
            order_of(quote!("first")).unwrap_err(),
            "`order` must be an integer literal (i32), e.g. #[graceful::on_shutdown(order = 10)]"
        );
        assert!(order_of(quote!(1.5)).is_err());
        assert!(order_of(quote!(LAST)).is_err());
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

    #[test]
    fn every_mistake_is_reported_and_the_fn_kept() {
        let expansion = expand_str(
            quote!(order = 1, timeout = "soon", color = "red"),
            quote!(
                async fn close<T>(&self, pool: Pool) {}
            ),
        );
        for message in [
            "goes on a free fn, not a method",
            "takes no parameters",
            "cannot be generic",
            "unknown key `color`",
            "invalid duration \\\"soon\\\"",
        ] {
            assert!(
                expansion.contains(message),
                "{message}\nnot in\n{expansion}"
            );
        }
        assert!(!expansion.contains("StaticHook"), "{expansion}");
    }
}
