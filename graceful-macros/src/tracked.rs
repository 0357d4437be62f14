//! `#[graceful::tracked]`: parse the keys, validate the fn, then insert one guard statement at
//! the start of its body (inside `#[async_trait]`'s boxed future), leaving the signature as it is.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::{Block, Expr, ItemFn, Stmt};

use crate::args::{self, Args, Errors};

const KEYS: &[&str] = &["name", "crate"];
const EXAMPLE: &str = "#[graceful::tracked(name = \"upload\")]";

/// The validated attribute.
struct TrackedConfig {
    krate: syn::Path,
    /// The site's name: given, or `module_path!()::fn`.
    name: TokenStream,
}

pub(crate) fn tracked(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut function = match args::parse_fn(
        item,
        "#[graceful::tracked] goes on a fn with a body: `async fn handler(..) { .. }` or `fn work(..) { .. }`",
    ) {
        Ok(function) => function,
        Err(error) => return error,
    };
    match Args::parse(args, EXAMPLE).and_then(|args| validate(&args, &function)) {
        Ok(config) => {
            let guard = guard_statement(&config);
            insert_guard(&mut function.block, guard);
            quote!(#function)
        }
        Err(error) => args::error_beside(error, &function),
    }
}

fn validate(args: &Args, function: &ItemFn) -> syn::Result<TrackedConfig> {
    let mut errors = Errors::default();
    if let Some(constness) = &function.sig.constness {
        errors.push(syn::Error::new_spanned(
            constness,
            "#[graceful::tracked] cannot count a `const fn` (its guard is not const); remove `const` or the attribute",
        ));
    }
    args.check_keys(KEYS, &mut errors);
    let krate = args::krate(args, &mut errors);
    let fn_name = function.sig.ident.to_string();
    let mut name = quote!(::core::concat!(::core::module_path!(), "::", #fn_name));
    if let Some(arg) = args.get("name") {
        if let Some(text) = errors.take(args::lit_str(arg, EXAMPLE)) {
            if text.value().trim().is_empty() {
                errors.push(syn::Error::new_spanned(
                    &text,
                    "the site's `name` cannot be empty, e.g. name = \"upload\"",
                ));
            }
            name = quote!(#text);
        }
    }
    errors.finish()?;
    Ok(TrackedConfig { krate, name })
}

fn guard_statement(config: &TrackedConfig) -> Stmt {
    let TrackedConfig { krate, name } = config;
    // Mixed-site hygiene: the guard's and the site's names cannot clash with the user's.
    let guard = syn::Ident::new("__graceful_guard", Span::mixed_site());
    let site = syn::Ident::new("__GRACEFUL_SITE", Span::mixed_site());
    syn::parse_quote! {
        let #guard = {
            static #site: #krate::__private::Site = #krate::__private::Site::new(#name);
            #site.enter()
        };
    }
}

/// Puts the guard first in the body, or first in the `async move` block that `#[async_trait]`
/// made the body into, so that the whole call is counted, not only the boxing.
fn insert_guard(block: &mut Block, guard: Stmt) {
    if let Some(async_block) = async_trait_body(block) {
        async_block.block.stmts.insert(0, guard);
    } else {
        block.stmts.insert(0, guard);
    }
}

/// The `async move { .. }` of a body ending in `Box::pin(async move { .. })`, the shape
/// `#[async_trait]` gives every method.
fn async_trait_body(block: &mut Block) -> Option<&mut syn::ExprAsync> {
    let Some(Stmt::Expr(Expr::Call(call), None)) = block.stmts.last_mut() else {
        return None;
    };
    let Expr::Path(function) = &*call.func else {
        return None;
    };
    let segments: Vec<String> = function
        .path
        .segments
        .iter()
        .map(|segment| segment.ident.to_string())
        .collect();
    if !segments.ends_with(&["Box".to_owned(), "pin".to_owned()]) || call.args.len() != 1 {
        return None;
    }
    match call.args.first_mut() {
        Some(Expr::Async(async_block)) => Some(async_block),
        _ => None,
    }
}
