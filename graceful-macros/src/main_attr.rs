//! `#[graceful::main]`: parse the keys, validate them and the fn, then expand to a sync `fn`
//! that hands the body to `graceful::Builder`, the way `#[tokio::main]` hands it to tokio.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::ItemFn;

use crate::args::{self, Args, Errors};

const KEYS: &[&str] = &[
    "drain_timeout",
    "hook_timeout",
    "pre_stop",
    "grace",
    "signals",
    "flavor",
    "worker_threads",
    "health",
    "report",
    "crate",
];
const EXAMPLE: &str = "#[graceful::main(drain_timeout = \"20s\")]";
const SIGNALS: &[(&str, &str)] = &[
    ("SIGTERM", "Sigterm"),
    ("SIGINT", "Sigint"),
    ("SIGQUIT", "Sigquit"),
    ("SIGHUP", "Sighup"),
    ("SIGUSR1", "Sigusr1"),
    ("SIGUSR2", "Sigusr2"),
];

/// The validated attribute: where graceful is, and the builder calls to make.
struct MainConfig {
    krate: syn::Path,
    builder_calls: Vec<TokenStream>,
}

pub(crate) fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    let function = match args::parse_fn(
        item,
        "#[graceful::main] goes on the entry point: `async fn main() { .. }`",
    ) {
        Ok(function) => function,
        Err(error) => return error,
    };
    match Args::parse(args, EXAMPLE).and_then(|args| validate(&args, &function)) {
        Ok(config) => expand(config, function),
        Err(error) => with_stub(error, &function),
    }
}

fn validate(args: &Args, function: &ItemFn) -> syn::Result<MainConfig> {
    let mut errors = Errors::default();
    let signature = &function.sig;
    if signature.asyncness.is_none() {
        errors.push(syn::Error::new_spanned(
            signature.fn_token,
            "#[graceful::main] needs an `async fn`: write `async fn main()`",
        ));
    }
    if !signature.inputs.is_empty() {
        errors.push(syn::Error::new_spanned(
            &signature.inputs,
            "#[graceful::main] takes a fn with no parameters: read configuration inside the body",
        ));
    }
    if !signature.generics.params.is_empty() || signature.generics.where_clause.is_some() {
        errors.push(syn::Error::new_spanned(
            &signature.generics,
            "#[graceful::main] cannot be generic",
        ));
    }
    args.check_keys(KEYS, &mut errors);
    let krate = args::krate(args, &mut errors);
    let mut builder_calls = Vec::new();

    for key in ["drain_timeout", "hook_timeout", "pre_stop", "grace"] {
        if let Some(arg) = args.get(key) {
            if let Some(duration) = errors.take(args::duration(arg)) {
                let method = syn::Ident::new(key, arg.path.span());
                let value = args::duration_tokens(&krate, duration);
                builder_calls.push(quote!(.#method(#value)));
            }
        }
    }
    if let Some(arg) = args.get("signals") {
        if let Some(signals) = errors.take(signals(arg, &krate)) {
            builder_calls.push(quote!(.signals([#(#signals),*])));
        }
    }
    let mut current_thread = false;
    if let Some(arg) = args.get("flavor") {
        let example = "flavor = \"current_thread\"";
        if let Some(text) = errors.take(args::lit_str(arg, example)) {
            let variant = match text.value().as_str() {
                "multi_thread" => Some(quote!(MultiThread)),
                "current_thread" => {
                    current_thread = true;
                    Some(quote!(CurrentThread))
                }
                other => {
                    errors.push(syn::Error::new_spanned(
                        &text,
                        format!("unknown flavor {other:?}; write \"multi_thread\" or \"current_thread\""),
                    ));
                    None
                }
            };
            if let Some(variant) = variant {
                builder_calls.push(quote!(.flavor(#krate::__private::Flavor::#variant)));
            }
        }
    }
    if let Some(arg) = args.get("worker_threads") {
        if let Some(count) = errors.take(worker_threads(arg)) {
            if current_thread {
                errors.push(syn::Error::new_spanned(
                    &arg.path,
                    "`worker_threads` applies to the multi_thread flavor only; remove it or write flavor = \"multi_thread\"",
                ));
            } else {
                builder_calls.push(quote!(.worker_threads(#count)));
            }
        }
    }
    if let Some(arg) = args.get("health") {
        if let Some(call) = errors.take(health(arg)) {
            builder_calls.push(call);
        }
    }
    if let Some(arg) = args.get("report") {
        if let Some(text) = errors.take(args::lit_str(arg, "report = \"json\"")) {
            match text.value().as_str() {
                "text" => {
                    builder_calls.push(quote!(.report(#krate::__private::ReportFormat::Text)))
                }
                "json" => {
                    builder_calls.push(quote!(.report(#krate::__private::ReportFormat::Json)))
                }
                other => errors.push(syn::Error::new_spanned(
                    &text,
                    format!("unknown report format {other:?}; write \"text\" or \"json\""),
                )),
            }
        }
    }
    errors.finish()?;
    Ok(MainConfig {
        krate,
        builder_calls,
    })
}

fn signals(arg: &args::Arg, krate: &syn::Path) -> syn::Result<Vec<TokenStream>> {
    let syn::Expr::Array(list) = &arg.value else {
        return Err(syn::Error::new_spanned(
            &arg.value,
            "`signals` takes a list of names, e.g. signals = [\"SIGTERM\", \"SIGINT\"]",
        ));
    };
    if list.elems.is_empty() {
        return Err(syn::Error::new_spanned(
            list,
            "`signals` needs at least one signal, e.g. signals = [\"SIGTERM\"]",
        ));
    }
    let mut errors = Errors::default();
    let mut seen: Vec<String> = Vec::new();
    let mut variants = Vec::new();
    let known: Vec<&str> = SIGNALS.iter().map(|(name, _)| *name).collect();
    for element in &list.elems {
        let syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(name),
            ..
        }) = element
        else {
            errors.push(syn::Error::new_spanned(
                element,
                "write each signal as a string, e.g. \"SIGTERM\"",
            ));
            continue;
        };
        let value = name.value();
        match SIGNALS.iter().find(|(signal, _)| *signal == value) {
            Some(_) if seen.contains(&value) => errors.push(syn::Error::new_spanned(
                name,
                format!("{value} is listed twice; keep one"),
            )),
            Some((_, variant)) => {
                seen.push(value);
                let variant = syn::Ident::new(variant, name.span());
                variants.push(quote!(#krate::__private::Signal::#variant));
            }
            None => errors.push(syn::Error::new_spanned(
                name,
                format!(
                    "unknown signal {value:?}; expected one of: {}",
                    known.join(", ")
                ),
            )),
        }
    }
    errors.finish()?;
    Ok(variants)
}

fn worker_threads(arg: &args::Arg) -> syn::Result<usize> {
    let error = || {
        syn::Error::new_spanned(
            &arg.value,
            "`worker_threads` takes a positive integer, e.g. worker_threads = 4",
        )
    };
    match &arg.value {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(count),
            ..
        }) => match count.base10_parse::<usize>() {
            Ok(count) if count > 0 => Ok(count),
            _ => Err(error()),
        },
        _ => Err(error()),
    }
}

#[cfg(feature = "health")]
fn health(arg: &args::Arg) -> syn::Result<TokenStream> {
    let text = args::lit_str(arg, "health = \"0.0.0.0:8081\"")?;
    if text.value().parse::<std::net::SocketAddr>().is_err() {
        return Err(syn::Error::new_spanned(
            &text,
            format!(
                "{:?} is not a socket address; write e.g. health = \"0.0.0.0:8081\"",
                text.value()
            ),
        ));
    }
    Ok(quote!(.health(#text)))
}

#[cfg(not(feature = "health"))]
fn health(arg: &args::Arg) -> syn::Result<TokenStream> {
    Err(syn::Error::new_spanned(
        &arg.path,
        "the `health` key needs graceful's `health` feature: graceful = { version = \"0.1\", features = [\"health\"] }",
    ))
}

fn expand(config: MainConfig, function: ItemFn) -> TokenStream {
    let MainConfig {
        krate,
        builder_calls,
    } = config;
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = function;
    let name = &sig.ident;
    let output = &sig.output;
    let body_name = syn::Ident::new("__graceful_main", Span::mixed_site());
    // Spanned on the return type: when it is not (), Result<(), E: Debug> or ExitCode, the
    // error points there.
    let run = quote_spanned!(args::output_span(&sig)=> .run(#body_name()));
    quote! {
        #(#attrs)*
        #vis fn #name() -> ::std::process::ExitCode {
            async fn #body_name() #output #block
            #krate::__private::Builder::new()
                #(#builder_calls)*
                #run
        }
    }
}

/// On a bad attribute: the error, plus a plain fn of the same name so the rest of the crate
/// still resolves and the user sees one error, not one per use.
fn with_stub(error: syn::Error, function: &ItemFn) -> TokenStream {
    let error = error.to_compile_error();
    let ItemFn {
        attrs, vis, sig, ..
    } = function;
    let name = &sig.ident;
    quote! {
        #error
        #(#attrs)*
        #vis fn #name() {}
    }
}
