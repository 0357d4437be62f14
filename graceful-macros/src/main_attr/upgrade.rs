//! The upgrade keys of `#[graceful::main]`: `upgrade_signal = "SIGUSR2" | "none"` and
//! `upgrade_timeout = "30s"`, which need graceful's `upgrade` feature. A signal that another key
//! gives a role too is a compile error, as the runtime would refuse to start (exit 78).

use std::time::Duration;

use proc_macro2::{Ident, TokenStream};
use quote::quote_spanned;

use super::validate::{SignalName, SIGNALS};
use crate::args::{self, Arg, Args, Errors};
use crate::duration;

/// The runtime's `signals` when the key is left out.
const DEFAULT_SIGNALS: &[SignalName] = &[SignalName::Sigterm, SignalName::Sigint];

/// The two keys, checked; `None` where left out.
pub(super) struct UpgradeKeys {
    /// `Some(None)` for "none".
    signal: Option<(Option<SignalName>, proc_macro2::Span)>,
    timeout: Option<(Duration, proc_macro2::Span)>,
}

/// Checks both keys. `signals` is the checked `signals` key: `None` when left out, or when it
/// was wrong (already reported).
pub(super) fn keys(
    args: &Args,
    signals: Option<Vec<SignalName>>,
    errors: &mut Errors,
) -> UpgradeKeys {
    let mut keys = UpgradeKeys {
        signal: None,
        timeout: None,
    };
    for key in ["upgrade_signal", "upgrade_timeout"] {
        if let Some(arg) = args.get(key) {
            if !cfg!(feature = "upgrade") {
                errors.push(syn::Error::new_spanned(
                    &arg.path,
                    format!("the `{key}` key needs graceful's `upgrade` feature: add \"upgrade\" to the `features` of the `graceful` dependency in Cargo.toml"),
                ));
            }
        }
    }
    if let Some(arg) = args.get("upgrade_timeout") {
        keys.timeout = errors
            .take(duration::parse(arg))
            .map(|timeout| (timeout, syn::spanned::Spanned::span(&arg.path)));
    }
    let Some(arg) = args.get("upgrade_signal") else {
        return keys;
    };
    let Some(signal) = errors.take(signal_or_none(arg)) else {
        return keys;
    };
    if let Some(signal) = signal {
        let written = args.get("signals").is_some();
        let shut_down = match signals {
            Some(signals) => Some(signals),
            None if !written => Some(DEFAULT_SIGNALS.to_vec()),
            None => None,
        };
        if shut_down.is_some_and(|signals| signals.contains(&signal)) {
            errors.push(syn::Error::new_spanned(
                &arg.path,
                in_signals(signal, written),
            ));
            return keys;
        }
        if reload_signal_names(args, signal) {
            errors.push(syn::Error::new_spanned(
                &arg.path,
                format!(
                    "{} is named both as `reload_signal` and as `upgrade_signal`: a signal does one thing; upgrade on another, e.g. upgrade_signal = \"{}\"",
                    name(signal),
                    another(signal)
                ),
            ));
            return keys;
        }
    }
    keys.signal = Some((signal, syn::spanned::Spanned::span(&arg.path)));
    keys
}

/// The builder calls the keys become.
pub(super) fn builder_calls(krate: &syn::Path, keys: &UpgradeKeys) -> Vec<TokenStream> {
    let mut calls = Vec::new();
    if let Some((signal, span)) = keys.signal {
        let value = match signal {
            Some(signal) => {
                let variant = Ident::new(variant(signal), span);
                quote_spanned!(span=> ::core::option::Option::Some(#krate::__private::Signal::#variant))
            }
            None => quote_spanned!(span=> ::core::option::Option::None),
        };
        calls.push(quote_spanned!(span=> .upgrade_signal(#value)));
    }
    if let Some((timeout, span)) = keys.timeout {
        let value = duration::tokens(krate, timeout, span);
        calls.push(quote_spanned!(span=> .upgrade_timeout(#value)));
    }
    calls
}

/// A signal name, or "none".
fn signal_or_none(arg: &Arg) -> syn::Result<Option<SignalName>> {
    let text = args::lit_str(arg, "upgrade_signal = \"SIGUSR2\"")?;
    let value = text.value();
    if value == "none" {
        return Ok(None);
    }
    match SIGNALS.iter().find(|(written, _)| *written == value) {
        Some((_, signal)) => Ok(Some(*signal)),
        None => {
            let known: Vec<&str> = SIGNALS.iter().map(|(signal, _)| *signal).collect();
            Err(syn::Error::new_spanned(
                &text,
                format!(
                    "unknown upgrade signal {value:?}; write one of {}, or \"none\"",
                    known.join(", ")
                ),
            ))
        }
    }
}

/// Whether the `reload_signal` key names `signal` too.
fn reload_signal_names(args: &Args, signal: SignalName) -> bool {
    let Some(arg) = args.get("reload_signal") else {
        return false;
    };
    let syn::Expr::Lit(syn::ExprLit {
        lit: syn::Lit::Str(text),
        ..
    }) = &arg.value
    else {
        return false;
    };
    text.value() == name(signal)
}

/// A signal to suggest instead of `signal`.
fn another(signal: SignalName) -> &'static str {
    if signal == SignalName::Sigusr2 {
        "SIGUSR1"
    } else {
        "SIGUSR2"
    }
}

fn in_signals(signal: SignalName, signals_written: bool) -> String {
    let other = another(signal);
    let name = name(signal);
    if signals_written {
        format!("{name} is named both in `signals` (shut down) and as `upgrade_signal`: a signal does one thing; remove it from `signals`, or upgrade on another signal, e.g. upgrade_signal = \"{other}\"")
    } else {
        format!("{name} already shuts down (the default `signals` are SIGTERM and SIGINT): a signal does one thing; upgrade on another signal, e.g. upgrade_signal = \"{other}\"")
    }
}

fn name(signal: SignalName) -> &'static str {
    SIGNALS
        .iter()
        .find(|(_, known)| *known == signal)
        .map_or("the signal", |(name, _)| *name)
}

/// `graceful::Signal`'s variant.
fn variant(signal: SignalName) -> &'static str {
    match signal {
        SignalName::Sigterm => "Sigterm",
        SignalName::Sigint => "Sigint",
        SignalName::Sigquit => "Sigquit",
        SignalName::Sighup => "Sighup",
        SignalName::Sigusr1 => "Sigusr1",
        SignalName::Sigusr2 => "Sigusr2",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn checked(tokens: TokenStream) -> (UpgradeKeys, Vec<String>) {
        let mut errors = Errors::default();
        let args = Args::parse(tokens, "", &mut errors);
        let signals = args.get("signals").map(|arg| {
            let signals = super::super::validate::signals(arg).unwrap();
            signals.iter().map(|signal| signal.value).collect()
        });
        let keys = keys(&args, signals, &mut errors);
        let messages = match errors.finish() {
            Ok(()) => Vec::new(),
            Err(error) => error.into_iter().map(|error| error.to_string()).collect(),
        };
        (keys, messages)
    }

    fn without_feature_message(messages: Vec<String>) -> Vec<String> {
        messages
            .into_iter()
            .filter(|message| !message.contains("needs graceful's `upgrade` feature"))
            .collect()
    }

    #[test]
    fn a_signal_or_none() {
        let (keys, messages) = checked(quote!(upgrade_signal = "SIGUSR1", upgrade_timeout = "1m"));
        assert!(without_feature_message(messages).is_empty());
        assert_eq!(
            keys.signal.map(|(signal, _)| signal),
            Some(Some(SignalName::Sigusr1))
        );
        assert_eq!(
            keys.timeout.map(|(timeout, _)| timeout),
            Some(Duration::from_secs(60))
        );
        let (keys, _) = checked(quote!(upgrade_signal = "none"));
        assert_eq!(keys.signal.map(|(signal, _)| signal), Some(None));
        let (_, messages) = checked(quote!(upgrade_signal = "SIGKILL"));
        assert!(
            without_feature_message(messages)[0].starts_with("unknown upgrade signal \"SIGKILL\""),
        );
    }

    #[test]
    fn a_signal_that_shuts_down_or_reloads_cannot_also_upgrade() {
        let (keys, messages) = checked(quote!(
            signals = ["SIGTERM", "SIGUSR2"],
            upgrade_signal = "SIGUSR2"
        ));
        assert!(keys.signal.is_none());
        let messages = without_feature_message(messages);
        assert!(
            messages[0].starts_with(
                "SIGUSR2 is named both in `signals` (shut down) and as `upgrade_signal`"
            ),
            "{messages:?}"
        );
        let (_, messages) = checked(quote!(upgrade_signal = "SIGTERM"));
        assert!(without_feature_message(messages)[0].starts_with("SIGTERM already shuts down"),);
        let (_, messages) = checked(quote!(
            reload_signal = "SIGUSR1",
            upgrade_signal = "SIGUSR1"
        ));
        assert!(without_feature_message(messages)[0]
            .starts_with("SIGUSR1 is named both as `reload_signal` and as `upgrade_signal`"),);
    }

    #[test]
    fn without_the_feature_the_keys_name_it() {
        let (_, messages) = checked(quote!(upgrade_timeout = "10s"));
        assert_eq!(
            messages
                .iter()
                .any(|message| message.contains("needs graceful's `upgrade` feature")),
            !cfg!(feature = "upgrade")
        );
    }
}
