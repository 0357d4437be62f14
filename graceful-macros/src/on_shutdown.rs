//! `#[graceful::on_shutdown]`: parse the keys, validate the fn, then keep it and add one entry to
//! the link-time teardown table (a linkme distributed slice), with no code run at start-up.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::{FnArg, ItemFn};

use crate::args::{self, Args, Errors};

const KEYS: &[&str] = &["order", "timeout", "name", "crate"];
const EXAMPLE: &str = "#[graceful::on_shutdown(order = 10)]";

/// The validated attribute.
struct HookConfig {
    krate: syn::Path,
    order: i32,
    timeout: Option<std::time::Duration>,
    name: TokenStream,
}

pub(crate) fn on_shutdown(args: TokenStream, item: TokenStream) -> TokenStream {
    let function = match args::parse_fn(
        item,
        "#[graceful::on_shutdown] goes on a free fn with no parameters: `async fn close_pool() { .. }`",
    ) {
        Ok(function) => function,
        Err(error) => return error,
    };
    match Args::parse(args, EXAMPLE).and_then(|args| validate(&args, &function)) {
        Ok(config) => expand(config, function),
        Err(error) => args::error_beside(error, &function),
    }
}

fn validate(args: &Args, function: &ItemFn) -> syn::Result<HookConfig> {
    let mut errors = Errors::default();
    let signature = &function.sig;
    for input in &signature.inputs {
        match input {
            FnArg::Receiver(receiver) => errors.push(syn::Error::new_spanned(
                receiver,
                "#[graceful::on_shutdown] goes on a free fn, not a method; call the method from a free fn, or use graceful::register_hook for a value made at run time",
            )),
            FnArg::Typed(parameter) => errors.push(syn::Error::new_spanned(
                parameter,
                "a shutdown hook takes no parameters; reach what it closes through a static, or use graceful::register_hook(order, name, move || ..) to capture it",
            )),
        }
    }
    if !signature.generics.params.is_empty() || signature.generics.where_clause.is_some() {
        errors.push(syn::Error::new_spanned(
            &signature.generics,
            "a shutdown hook cannot be generic: the teardown table calls it with no type to choose",
        ));
    }
    if let Some(constness) = &signature.constness {
        errors.push(syn::Error::new_spanned(
            constness,
            "a shutdown hook cannot be a `const fn`; remove `const`",
        ));
    }
    args.check_keys(KEYS, &mut errors);
    let krate = args::krate(args, &mut errors);
    let order = match args.get("order") {
        Some(arg) => errors.take(order(arg)),
        None => {
            errors.push(syn::Error::new(
                proc_macro2::Span::call_site(),
                "missing `order`: add `order = N` (an i32; lower runs first), e.g. #[graceful::on_shutdown(order = 10)]",
            ));
            None
        }
    };
    let timeout = args
        .get("timeout")
        .and_then(|arg| errors.take(args::duration(arg)));
    let fn_name = signature.ident.to_string();
    let mut name = quote!(::core::concat!(::core::module_path!(), "::", #fn_name));
    if let Some(arg) = args.get("name") {
        if let Some(text) = errors.take(args::lit_str(arg, "name = \"close-pool\"")) {
            name = quote!(#text);
        }
    }
    errors.finish()?;
    Ok(HookConfig {
        krate,
        order: order.unwrap_or_default(),
        timeout,
        name,
    })
}

fn order(arg: &args::Arg) -> syn::Result<i32> {
    let error = |what: &str| {
        syn::Error::new_spanned(
            &arg.value,
            format!("`order` must be an integer literal that fits an i32{what}, e.g. #[graceful::on_shutdown(order = 10)]"),
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
    let magnitude: i64 = literal.base10_parse().map_err(|_| error(""))?;
    let value = if negative { -magnitude } else { magnitude };
    i32::try_from(value).map_err(|_| error(&format!(" ({value} does not)")))
}

fn expand(config: HookConfig, function: ItemFn) -> TokenStream {
    let HookConfig {
        krate,
        order,
        timeout,
        name,
    } = config;
    let ident = &function.sig.ident;
    let table_entry = format_ident!("__GRACEFUL_HOOK_{}", ident);
    let timeout = match timeout {
        Some(duration) => {
            let duration = args::duration_tokens(&krate, duration);
            quote!(::core::option::Option::Some(#duration))
        }
        None => quote!(::core::option::Option::None),
    };
    // Spanned on the return type: when it is not () or Result<(), E: Display>, the error
    // points there.
    let run = if function.sig.asyncness.is_some() {
        quote_spanned!(args::output_span(&function.sig)=>
            #krate::__private::HookFn::Async(|| #krate::__private::box_hook(#ident())))
    } else {
        quote_spanned!(args::output_span(&function.sig)=>
            #krate::__private::HookFn::Sync(|| #krate::__private::IntoHookResult::into_hook_result(#ident())))
    };
    let linkme = quote!(#krate::__private::linkme);
    quote! {
        #function

        #[#linkme::distributed_slice(#krate::__private::HOOKS)]
        #[linkme(crate = #linkme)]
        #[allow(non_upper_case_globals)]
        #[doc(hidden)]
        static #table_entry: #krate::__private::StaticHook = #krate::__private::StaticHook {
            order: #order,
            name: #name,
            timeout: #timeout,
            run: #run,
        };
    }
}
