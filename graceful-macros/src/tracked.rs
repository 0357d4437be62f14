//! `#[graceful::tracked]`: parse the keys and the fn, validate them, then expand by inserting
//! one guard statement at the start of the body (inside `#[async_trait]`'s boxed future),
//! leaving the signature exactly as written so that a handler stays a handler.

use proc_macro2::{Span, TokenStream};
use quote::{quote, ToTokens};
use syn::{Block, Expr, ItemFn, Stmt};

use crate::args::{Args, Errors};
use crate::name::Name;
use crate::signature::{self, Rules};
use crate::{item, krate};

const ATTRIBUTE: &str = "#[graceful::tracked]";
const USAGE: &str = "put it on the fns whose calls the drain must wait for, e.g. `#[graceful::tracked] async fn upload(..) { .. }`";
const KEYS: &[&str] = &["name", "crate"];
const EXAMPLE: &str = "#[graceful::tracked(name = \"upload\")]";

/// Any fn with a body can be counted, except a `const fn`.
const SIGNATURE: Rules = Rules {
    constness: Some(|_| {
        format!("{ATTRIBUTE} cannot go on a `const fn`: its site is a static, and a static cannot be entered in const context; remove `const` or the attribute")
    }),
    ..Rules::ANY
};

pub(crate) fn tracked(args: TokenStream, item: TokenStream) -> TokenStream {
    let function = match item::parse_fn(item, ATTRIBUTE, USAGE) {
        Ok(function) => function,
        Err(error_and_item) => return error_and_item,
    };
    let mut errors = Errors::default();
    let args = Args::parse(args, EXAMPLE, &mut errors);
    let config = validate(&args, &function, &mut errors);
    match errors.finish() {
        Ok(()) => expand(&config, function),
        Err(error) => {
            let error = error.to_compile_error();
            quote!(#error #function)
        }
    }
}

/// The attribute, checked.
struct TrackedConfig {
    krate: syn::Path,
    /// The site's name in reports.
    name: Name,
}

fn validate(args: &Args, function: &ItemFn, errors: &mut Errors) -> TrackedConfig {
    signature::check(&function.sig, &SIGNATURE, errors);
    args.check_keys(KEYS, errors);
    TrackedConfig {
        krate: krate::krate(args, errors),
        name: Name::of(args, &function.sig.ident, EXAMPLE, errors),
    }
}

fn expand(config: &TrackedConfig, mut function: ItemFn) -> TokenStream {
    let guard = guard_statement(config);
    let is_async = function.sig.asyncness.is_some();
    match async_trait_body(&mut function.block) {
        Some(future_body) if !is_async => future_body.stmts.insert(0, guard),
        _ => function.block.stmts.insert(0, guard),
    }
    function.into_token_stream()
}

/// The statement from docs/PRIVATE-API.md: one static site per fn, entered on each call.
fn guard_statement(config: &TrackedConfig) -> Stmt {
    let krate = &config.krate;
    let name = &config.name;
    // Mixed-site: the guard and the site cannot clash with, or be named by, the user's code.
    let guard = syn::Ident::new("__graceful_guard", Span::mixed_site());
    let site = syn::Ident::new("__GRACEFUL_SITE", Span::mixed_site());
    // Spanned on the attribute, which is what put it there.
    syn::parse_quote_spanned! {Span::call_site()=>
        let #guard = {
            static #site: #krate::__private::Site = #krate::__private::Site::new(#name);
            #site.enter()
        };
    }
}

/// The block of the future when the body ends in `Box::pin(async move { .. })`, the shape
/// `#[async_trait]` gives every method (async-trait 0.1.44 and later), as tracing-attributes'
/// `AsyncInfo` detects it. A guard put there is held for the whole call; a guard put before it
/// would be dropped as soon as the future is boxed, before any of the work. Callers check the
/// fn is not itself `async`: in an `async fn` the whole body is already the future.
fn async_trait_body(block: &mut Block) -> Option<&mut Block> {
    let Some(Stmt::Expr(Expr::Call(call), None)) = block.stmts.last_mut() else {
        return None;
    };
    let Expr::Path(callee) = &*call.func else {
        return None;
    };
    let segments = &callee.path.segments;
    let is_box_pin = segments.len() >= 2
        && segments[segments.len() - 2].ident == "Box"
        && segments[segments.len() - 1].ident == "pin";
    if !is_box_pin || call.args.len() != 1 {
        return None;
    }
    match call.args.first_mut() {
        Some(Expr::Async(future)) => Some(&mut future.block),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_to_fn(args: TokenStream, item: TokenStream) -> ItemFn {
        let expansion = tracked(args, item);
        syn::parse2(expansion.clone()).unwrap_or_else(|_| panic!("not a fn: {expansion}"))
    }

    fn is_guard(statement: &Stmt) -> bool {
        statement
            .to_token_stream()
            .to_string()
            .starts_with("let __graceful_guard")
    }

    #[test]
    fn the_guard_is_the_first_statement_and_the_signature_is_unchanged() {
        let item = quote!(
            #[inline]
            pub(crate) async unsafe fn upload<'a, T: Send>(
                &'a mut self,
                bytes: impl AsRef<[u8]>,
            ) -> &'a T
            where
                T: Sync,
            {
                work();
                self.value()
            }
        );
        let original: ItemFn = syn::parse2(item.clone()).unwrap();
        let expanded = expand_to_fn(quote!(), item);
        assert_eq!(expanded.sig, original.sig);
        assert_eq!(expanded.attrs, original.attrs);
        assert_eq!(expanded.vis, original.vis);
        assert_eq!(expanded.block.stmts.len(), 3);
        assert!(is_guard(&expanded.block.stmts[0]));
        assert_eq!(expanded.block.stmts[1..], original.block.stmts[..]);
    }

    #[test]
    fn the_default_name_is_the_module_path_and_the_fn() {
        let expansion = tracked(
            quote!(),
            quote!(
                fn r#type() {}
            ),
        )
        .to_string();
        assert!(
            expansion
                .contains(":: core :: concat ! (:: core :: module_path ! () , \"::\" , \"type\")"),
            "{expansion}"
        );
    }

    #[test]
    fn a_given_name_is_used_as_is() {
        let expansion = tracked(
            quote!(name = "upload"),
            quote!(
                fn f() {}
            ),
        )
        .to_string();
        assert!(
            expansion.contains(":: graceful :: __private :: Site :: new (\"upload\")"),
            "{expansion}"
        );
    }

    #[test]
    fn under_async_trait_the_guard_goes_inside_the_boxed_future() {
        // What #[async_trait] makes of `async fn handle(&self) -> usize { 1 }`.
        let expanded = expand_to_fn(
            quote!(),
            quote!(
                fn handle<'life0, 'async_trait>(
                    &'life0 self,
                ) -> ::core::pin::Pin<
                    Box<
                        dyn ::core::future::Future<Output = usize>
                            + ::core::marker::Send
                            + 'async_trait,
                    >,
                >
                where
                    'life0: 'async_trait,
                    Self: 'async_trait,
                {
                    Box::pin(async move {
                        let __self = self;
                        let __ret: usize = { 1 };
                        #[allow(unreachable_code)]
                        __ret
                    })
                }
            ),
        );
        assert_eq!(expanded.block.stmts.len(), 1, "the guard is not outside");
        let Stmt::Expr(Expr::Call(call), None) = &expanded.block.stmts[0] else {
            panic!("the body is no longer Box::pin(..)");
        };
        let Some(Expr::Async(future)) = call.args.first() else {
            panic!("Box::pin no longer takes the async block");
        };
        assert!(is_guard(&future.block.stmts[0]));
        assert_eq!(future.block.stmts.len(), 4);
    }

    #[test]
    fn an_async_fn_ending_in_box_pin_keeps_the_guard_outside() {
        let expanded = expand_to_fn(
            quote!(),
            quote!(
                async fn f() -> Pin<Box<dyn Future<Output = ()>>> {
                    Box::pin(async move {})
                }
            ),
        );
        assert!(is_guard(&expanded.block.stmts[0]));
    }

    #[test]
    fn a_hand_written_async_block_counts_only_the_synchronous_part() {
        let expanded = expand_to_fn(
            quote!(),
            quote!(
                fn f() -> impl Future<Output = ()> {
                    async {}
                }
            ),
        );
        assert_eq!(expanded.block.stmts.len(), 2);
        assert!(is_guard(&expanded.block.stmts[0]));
    }

    #[test]
    fn a_const_fn_is_kept_beside_the_error() {
        let expansion = tracked(
            quote!(),
            quote!(
                const fn answer() -> u32 {
                    42
                }
            ),
        )
        .to_string();
        assert!(
            expansion.contains("cannot go on a `const fn`"),
            "{expansion}"
        );
        assert!(
            expansion.ends_with("const fn answer () -> u32 { 42 }"),
            "{expansion}"
        );
        assert!(!expansion.contains("__graceful_guard"), "{expansion}");
    }

    #[test]
    fn bad_keys_are_each_reported() {
        let expansion = tracked(
            quote!(label = "x", name = ""),
            quote!(
                fn f() {}
            ),
        )
        .to_string();
        assert!(expansion.contains("unknown key `label`; expected one of: name, crate"));
        assert!(expansion.contains("`name` cannot be empty"), "{expansion}");
    }
}
