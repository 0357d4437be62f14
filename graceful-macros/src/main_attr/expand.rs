//! The code `#[graceful::main]` becomes: the user's body in an inner `async fn`, run by
//! `graceful::Builder` with one method call per key (docs/PRIVATE-API.md, "Expansions").

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::{Ident, ItemFn};

use super::validate::{Flavor, MainConfig, Report, SignalName};
use crate::{duration, item};

/// Mixed-site: the user's code cannot name, or collide with, the inner fn.
fn body_name() -> Ident {
    Ident::new("__graceful_main", Span::mixed_site())
}

pub(super) fn main(config: &MainConfig, function: ItemFn) -> TokenStream {
    let krate = &config.krate;
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = function;
    let name = &sig.ident;
    let output = &sig.output;
    let output_type = item::output_type(&sig);
    let body = body_name();
    let calls = builder_calls(config);
    // Both on the return type: when it is not (), Result<(), E: Debug> or ExitCode, the
    // compiler's error points there, once (see `item::output_type`).
    let output_span = item::output_span(&sig);
    let assertion =
        quote_spanned!(output_span=> #krate::__private::assert_main_output::<#output_type>(););
    let run = quote_spanned!(output_span=> .run(#body()));
    quote! {
        #(#attrs)*
        #vis fn #name() -> ::std::process::ExitCode {
            async fn #body() #output #block
            #assertion
            #krate::__private::Builder::new()
                #(#calls)*
                #run
        }
    }
}

fn builder_calls(config: &MainConfig) -> Vec<TokenStream> {
    let krate = &config.krate;
    let mut calls = Vec::new();
    for (key, setting) in &config.durations {
        let method = Ident::new(key, setting.span);
        let value = duration::tokens(krate, setting.value, setting.span);
        calls.push(quote_spanned!(setting.span=> .#method(#value)));
    }
    if let Some(signals) = &config.signals {
        let variants = signals
            .value
            .iter()
            .map(|signal| signal_path(krate, signal.value, signal.span));
        calls.push(quote_spanned!(signals.span=> .signals([#(#variants),*])));
    }
    if let Some(reload_signal) = &config.reload_signal {
        let span = reload_signal.span;
        let value = match reload_signal.value {
            Some(signal) => {
                let signal = signal_path(krate, signal, span);
                quote_spanned!(span=> ::core::option::Option::Some(#signal))
            }
            None => quote_spanned!(span=> ::core::option::Option::None),
        };
        calls.push(quote_spanned!(span=> .reload_signal(#value)));
    }
    if let Some(flavor) = &config.flavor {
        let variant = match flavor.value {
            Flavor::MultiThread => Ident::new("MultiThread", flavor.span),
            Flavor::CurrentThread => Ident::new("CurrentThread", flavor.span),
        };
        calls.push(quote_spanned!(flavor.span=> .flavor(#krate::__private::Flavor::#variant)));
    }
    if let Some(worker_threads) = &config.worker_threads {
        let count = worker_threads.value;
        calls.push(quote_spanned!(worker_threads.span=> .worker_threads(#count)));
    }
    if let Some(health) = &config.health {
        let address = &health.value;
        calls.push(quote_spanned!(health.span=> .health(#address)));
    }
    if let Some(report) = &config.report {
        let variant = match report.value {
            Report::Text => Ident::new("Text", report.span),
            Report::Json => Ident::new("Json", report.span),
        };
        calls
            .push(quote_spanned!(report.span=> .report(#krate::__private::ReportFormat::#variant)));
    }
    calls
}

/// `graceful::Signal`'s variant for `signal`, spanned on where it was written.
fn signal_path(krate: &syn::Path, signal: SignalName, span: Span) -> TokenStream {
    let variant = match signal {
        SignalName::Sigterm => Ident::new("Sigterm", span),
        SignalName::Sigint => Ident::new("Sigint", span),
        SignalName::Sigquit => Ident::new("Sigquit", span),
        SignalName::Sighup => Ident::new("Sighup", span),
        SignalName::Sigusr1 => Ident::new("Sigusr1", span),
        SignalName::Sigusr2 => Ident::new("Sigusr2", span),
    };
    quote_spanned!(span=> #krate::__private::Signal::#variant)
}

/// On a mistake: the errors, and the user's fn kept as an inner fn that is never called, so
/// the body is still checked (and rust-analyzer still works in it) and the user sees the
/// attribute's errors only. It is not handed to the runtime: the config it would need is
/// wrong, and a fn with parameters or without `async` could not be run anyway.
pub(super) fn with_error(error: syn::Error, function: ItemFn) -> TokenStream {
    let error = error.to_compile_error();
    let ItemFn {
        attrs,
        vis,
        mut sig,
        block,
    } = function;
    let name = sig.ident.clone();
    // A `self` parameter is not allowed in a nested fn: that would be a second error.
    let kept = if sig.receiver().is_none() {
        sig.ident = body_name();
        Some(quote!(#[allow(dead_code)] #sig #block))
    } else {
        None
    };
    quote! {
        #error
        #(#attrs)*
        #vis fn #name() -> ::std::process::ExitCode {
            #kept
            ::std::process::ExitCode::FAILURE
        }
    }
}
