//! Every check of `#[graceful::main]` that can be made on tokens: each key once, into a typed
//! config, and the shape of the fn. Its output type is checked later, by the compiler, through
//! `assert_main_output` (a macro sees tokens, not types).

use std::time::Duration;

use proc_macro2::Span;
use syn::spanned::Spanned;

use super::{ATTRIBUTE, MAIN_KEYS};
use crate::args::{self, Arg, Args, Errors};
use crate::signature::{Parameters, Rules};
use crate::{duration, krate};

/// The duration keys, which are also the names of the builder methods they become.
pub(super) const DURATION_KEYS: &[&str] = &[
    "drain_timeout",
    "hook_timeout",
    "pre_stop",
    "grace",
    "abandon_timeout",
];

/// The signals `signals = [..]` accepts, as written there.
const SIGNALS: &[(&str, SignalName)] = &[
    ("SIGTERM", SignalName::Sigterm),
    ("SIGINT", SignalName::Sigint),
    ("SIGQUIT", SignalName::Sigquit),
    ("SIGHUP", SignalName::Sighup),
    ("SIGUSR1", SignalName::Sigusr1),
    ("SIGUSR2", SignalName::Sigusr2),
];

/// The signals that shut down when the `signals` key is left out (the runtime's default).
const DEFAULT_SIGNALS: &[SignalName] = &[SignalName::Sigterm, SignalName::Sigint];

/// The fn must be one the builder can run: async, without parameters, not generic, safe, with
/// an output type the compiler can check.
pub(super) const SIGNATURE: Rules = Rules {
    sync: Some(|signature| {
        format!(
            "{ATTRIBUTE} needs an `async fn`; write `async fn {}()`",
            signature.ident
        )
    }),
    unsafety: Some(|_| {
        format!("{ATTRIBUTE} cannot run an `unsafe fn`; remove `unsafe` and put an `unsafe {{ .. }}` block inside")
    }),
    parameters: Parameters::Rejected(|_| {
        format!("{ATTRIBUTE} takes no parameters; read configuration (environment, arguments) inside the body")
    }),
    generics: Some(|_| {
        format!(
            "{ATTRIBUTE} cannot be generic: nothing would choose the types; remove the generics"
        )
    }),
    impl_trait_output: Some(|_| {
        format!("{ATTRIBUTE} needs a named return type; write `()`, `Result<(), E>` or `std::process::ExitCode`")
    }),
    ..Rules::ANY
};

/// A validated value and the span of the key it came from, where the builder call it becomes
/// is spanned.
pub(super) struct Setting<T> {
    pub(super) value: T,
    pub(super) span: Span,
}

/// `graceful::Signal`'s variant names.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(super) enum SignalName {
    Sigterm,
    Sigint,
    Sigquit,
    Sighup,
    Sigusr1,
    Sigusr2,
}

#[derive(Clone, Copy)]
pub(super) enum Flavor {
    MultiThread,
    CurrentThread,
}

/// `report = "text" | "json"`: `graceful::ReportFormat`'s variant names.
#[derive(Clone, Copy)]
pub(super) enum Report {
    Text,
    Json,
}

/// The attribute, checked. Keys left out are `None`: the builder's defaults (and the
/// operator's environment overrides) apply.
pub(super) struct MainConfig {
    pub(super) krate: syn::Path,
    /// `(builder method, value)`, in the order of `DURATION_KEYS`.
    pub(super) durations: Vec<(&'static str, Setting<Duration>)>,
    /// Each signal spanned on its string.
    pub(super) signals: Option<Setting<Vec<Setting<SignalName>>>>,
    /// `Some(None)` for "none".
    pub(super) reload_signal: Option<Setting<Option<SignalName>>>,
    pub(super) flavor: Option<Setting<Flavor>>,
    pub(super) worker_threads: Option<Setting<usize>>,
    /// The address literal, kept as written: the builder takes a `&'static str`.
    pub(super) health: Option<Setting<syn::LitStr>>,
    pub(super) report: Option<Setting<Report>>,
}

/// Checks every key, recording each mistake in `errors`; what is valid is kept, so that
/// one mistake does not hide another.
pub(super) fn config(args: &Args, errors: &mut Errors) -> MainConfig {
    args.check_keys(MAIN_KEYS, errors);
    let krate = krate::krate(args, errors);
    let durations = DURATION_KEYS
        .iter()
        .filter_map(|&key| {
            let arg = args.get(key)?;
            let value = errors.take(duration::parse(arg))?;
            Some((key, setting(arg, value)))
        })
        .collect();
    let signals = args
        .get("signals")
        .and_then(|arg| Some(setting(arg, errors.take(signals(arg))?)));
    let reload_signal = args.get("reload_signal").and_then(|arg| {
        let signal = errors.take(reload_signal(arg))?;
        let shutdown_signals = match (&signals, args.get("signals")) {
            (Some(signals), _) => Some(signals.value.iter().map(|signal| signal.value).collect()),
            (None, None) => Some(DEFAULT_SIGNALS.to_vec()),
            // Already reported: what it would have named is unknown.
            (None, Some(_)) => None,
        };
        if let (Some(signal), Some(shutdown_signals)) = (signal, shutdown_signals) {
            if shutdown_signals.contains(&signal) {
                errors.push(signal_in_both(arg, signal, args.get("signals").is_some()));
                return None;
            }
        }
        Some(setting(arg, signal))
    });
    let flavor = args
        .get("flavor")
        .and_then(|arg| Some(setting(arg, errors.take(flavor(arg))?)));
    let worker_threads = args.get("worker_threads").and_then(|arg| {
        let count = errors.take(worker_threads(arg))?;
        if let Some(Setting {
            value: Flavor::CurrentThread,
            ..
        }) = flavor
        {
            errors.push(syn::Error::new_spanned(
                &arg.path,
                "`worker_threads` applies to the multi_thread flavor only; remove it, or write flavor = \"multi_thread\"",
            ));
            return None;
        }
        Some(setting(arg, count))
    });
    let health = args
        .get("health")
        .and_then(|arg| Some(setting(arg, errors.take(health(arg))?)));
    let report = args
        .get("report")
        .and_then(|arg| Some(setting(arg, errors.take(report(arg))?)));
    MainConfig {
        krate,
        durations,
        signals,
        reload_signal,
        flavor,
        worker_threads,
        health,
        report,
    }
}

fn setting<T>(arg: &Arg, value: T) -> Setting<T> {
    Setting {
        value,
        span: arg.path.span(),
    }
}

fn signals(arg: &Arg) -> syn::Result<Vec<Setting<SignalName>>> {
    let syn::Expr::Array(list) = &arg.value else {
        return Err(syn::Error::new_spanned(
            &arg.value,
            "`signals` takes a list of signal names, e.g. signals = [\"SIGTERM\", \"SIGINT\"]",
        ));
    };
    if list.elems.is_empty() {
        return Err(syn::Error::new_spanned(
            list,
            "`signals` needs at least one signal, or shutdown could only begin from inside; e.g. signals = [\"SIGTERM\"]",
        ));
    }
    let mut errors = Errors::default();
    let mut signals: Vec<Setting<SignalName>> = Vec::new();
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
        match SIGNALS.iter().find(|(written, _)| *written == value) {
            Some((written, signal)) if signals.iter().any(|seen| seen.value == *signal) => errors
                .push(syn::Error::new_spanned(
                    name,
                    format!("{written} is listed twice; keep one"),
                )),
            Some((_, signal)) => signals.push(Setting {
                value: *signal,
                span: name.span(),
            }),
            None => {
                let known: Vec<&str> = SIGNALS.iter().map(|(signal, _)| *signal).collect();
                errors.push(syn::Error::new_spanned(
                    name,
                    format!(
                        "unknown signal {value:?}; expected one of: {}",
                        known.join(", ")
                    ),
                ));
            }
        }
    }
    errors.finish()?;
    Ok(signals)
}

/// A signal name, or "none".
fn reload_signal(arg: &Arg) -> syn::Result<Option<SignalName>> {
    let mut choices: Vec<(&str, Option<SignalName>)> = SIGNALS
        .iter()
        .map(|&(name, signal)| (name, Some(signal)))
        .collect();
    choices.push(("none", None));
    one_of(arg, "reload signal", &choices)
}

/// On the `reload_signal` key: the runtime would refuse to start (exit 78), so the build does.
fn signal_in_both(arg: &Arg, signal: SignalName, signals_written: bool) -> syn::Error {
    let name = SIGNALS
        .iter()
        .find(|(_, known)| *known == signal)
        .map_or("it", |(name, _)| *name);
    let message = if signals_written {
        format!("{name} is named both in `signals` (shut down) and as `reload_signal`: a signal does one thing; remove it from `signals`, or reload on another signal, e.g. reload_signal = \"SIGUSR1\"")
    } else {
        let other = if signal == SignalName::Sigterm {
            "SIGINT"
        } else {
            "SIGTERM"
        };
        format!("{name} already shuts down (the default `signals` are SIGTERM and SIGINT): a signal does one thing; reload on another signal, e.g. reload_signal = \"SIGUSR1\", or leave {name} out of the shutdown signals, e.g. signals = [\"{other}\"]")
    };
    syn::Error::new_spanned(&arg.path, message)
}

fn flavor(arg: &Arg) -> syn::Result<Flavor> {
    one_of(
        arg,
        "flavor",
        &[
            ("multi_thread", Flavor::MultiThread),
            ("current_thread", Flavor::CurrentThread),
        ],
    )
}

fn report(arg: &Arg) -> syn::Result<Report> {
    one_of(
        arg,
        "report format",
        &[("text", Report::Text), ("json", Report::Json)],
    )
}

/// A string key with a fixed set of values: the value chosen, or an error that lists them.
fn one_of<T: Copy>(arg: &Arg, what: &str, choices: &[(&str, T)]) -> syn::Result<T> {
    let names: Vec<String> = choices
        .iter()
        .map(|(name, _)| format!("{name:?}"))
        .collect();
    let example = format!(
        "{} = {}",
        arg.key,
        names.last().map_or("\"..\"", String::as_str)
    );
    let text = args::lit_str(arg, &example)?;
    let value = text.value();
    choices
        .iter()
        .find(|(name, _)| *name == value)
        .map(|(_, choice)| *choice)
        .ok_or_else(|| {
            syn::Error::new_spanned(
                &text,
                format!("unknown {what} {value:?}; write {}", names.join(" or ")),
            )
        })
}

fn worker_threads(arg: &Arg) -> syn::Result<usize> {
    let error = || {
        syn::Error::new_spanned(
            &arg.value,
            "`worker_threads` takes a positive integer, e.g. worker_threads = 4",
        )
    };
    let syn::Expr::Lit(syn::ExprLit {
        lit: syn::Lit::Int(count),
        ..
    }) = &arg.value
    else {
        return Err(error());
    };
    match count.base10_parse::<usize>() {
        Ok(count) if count > 0 => Ok(count),
        _ => Err(error()),
    }
}

/// The address is checked whether or not the feature is on, so that turning the feature on
/// never reveals a second mistake.
fn health(arg: &Arg) -> syn::Result<syn::LitStr> {
    let text = args::lit_str(arg, "health = \"0.0.0.0:8081\"")?;
    let mut errors = Errors::default();
    if text.value().parse::<std::net::SocketAddr>().is_err() {
        errors.push(syn::Error::new_spanned(
            &text,
            format!(
                "{:?} is not a socket address; write an IP address and a port, e.g. health = \"0.0.0.0:8081\"",
                text.value()
            ),
        ));
    }
    if !cfg!(feature = "health") {
        errors.push(syn::Error::new_spanned(
            &arg.path,
            "the `health` key needs graceful's `health` feature: add \"health\" to the `features` of the `graceful` dependency in Cargo.toml",
        ));
    }
    errors.finish()?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn checked(tokens: proc_macro2::TokenStream) -> (MainConfig, Vec<String>) {
        let mut errors = Errors::default();
        let args = Args::parse(tokens, "", &mut errors);
        let config = config(&args, &mut errors);
        let messages = match errors.finish() {
            Ok(()) => Vec::new(),
            Err(error) => error.into_iter().map(|error| error.to_string()).collect(),
        };
        (config, messages)
    }

    #[test]
    fn no_keys_leave_every_default() {
        let (config, messages) = checked(quote!());
        assert!(messages.is_empty());
        assert!(config.durations.is_empty());
        assert!(config.signals.is_none() && config.flavor.is_none());
        assert!(config.worker_threads.is_none() && config.health.is_none());
    }

    #[test]
    fn the_unknown_key_message_lists_every_key() {
        let (_, messages) = checked(quote!(drain_timout = "5s"));
        assert_eq!(
            messages,
            ["unknown key `drain_timout`; expected one of: drain_timeout, hook_timeout, pre_stop, grace, abandon_timeout, signals, reload_signal, flavor, worker_threads, health, report, crate"]
        );
    }

    #[test]
    fn signals_map_to_their_variants_in_order() {
        let (config, messages) = checked(quote!(signals = ["SIGHUP", "SIGTERM"]));
        assert!(messages.is_empty());
        let signals: Vec<SignalName> = config
            .signals
            .unwrap()
            .value
            .iter()
            .map(|signal| signal.value)
            .collect();
        assert_eq!(signals, [SignalName::Sighup, SignalName::Sigterm]);
    }

    #[test]
    fn bad_signal_lists_report_each_mistake() {
        let (config, messages) = checked(quote!(signals = ["SIGTERM", "SIGKILL", "SIGTERM", 15]));
        assert!(config.signals.is_none());
        assert_eq!(
            messages,
            [
                "unknown signal \"SIGKILL\"; expected one of: SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2",
                "SIGTERM is listed twice; keep one",
                "write each signal as a string, e.g. \"SIGTERM\"",
            ]
        );
    }

    #[test]
    fn reload_signal_is_a_signal_name_or_none() {
        let (config, messages) = checked(quote!(reload_signal = "SIGUSR1"));
        assert!(messages.is_empty(), "{messages:?}");
        assert_eq!(
            config.reload_signal.unwrap().value,
            Some(SignalName::Sigusr1)
        );
        let (config, messages) = checked(quote!(reload_signal = "none"));
        assert!(messages.is_empty(), "{messages:?}");
        assert_eq!(config.reload_signal.unwrap().value, None);
        let (_, messages) = checked(quote!(reload_signal = "SIGKILL"));
        assert_eq!(
            messages,
            ["unknown reload signal \"SIGKILL\"; write \"SIGTERM\" or \"SIGINT\" or \"SIGQUIT\" or \"SIGHUP\" or \"SIGUSR1\" or \"SIGUSR2\" or \"none\""]
        );
    }

    #[test]
    fn a_signal_that_shuts_down_cannot_also_reload() {
        let (config, messages) = checked(quote!(
            signals = ["SIGTERM", "SIGHUP"],
            reload_signal = "SIGHUP"
        ));
        assert!(config.reload_signal.is_none());
        assert_eq!(messages.len(), 1);
        assert!(
            messages[0].starts_with(
                "SIGHUP is named both in `signals` (shut down) and as `reload_signal`"
            ),
            "{messages:?}"
        );
        // The default signals shut down too, whether written or not.
        let (_, messages) = checked(quote!(reload_signal = "SIGINT"));
        assert_eq!(messages.len(), 1);
        assert!(
            messages[0].starts_with(
                "SIGINT already shuts down (the default `signals` are SIGTERM and SIGINT)"
            ) && messages[0].ends_with("signals = [\"SIGTERM\"]"),
            "{messages:?}"
        );
        // Once it no longer shuts down, it may reload; a bad `signals` list hides nothing more.
        let (config, messages) = checked(quote!(signals = ["SIGTERM"], reload_signal = "SIGINT"));
        assert!(messages.is_empty(), "{messages:?}");
        assert_eq!(
            config.reload_signal.unwrap().value,
            Some(SignalName::Sigint)
        );
        let (_, messages) = checked(quote!(signals = ["SIGKILL"], reload_signal = "SIGTERM"));
        assert_eq!(messages.len(), 1, "{messages:?}");
    }

    #[test]
    fn signals_must_be_a_list() {
        let (_, messages) = checked(quote!(signals = "SIGTERM"));
        assert_eq!(messages.len(), 1);
        assert!(messages[0].contains("takes a list"), "{messages:?}");
    }

    #[test]
    fn worker_threads_must_be_a_positive_integer() {
        for value in [quote!(0), quote!(-1), quote!("4"), quote!(2.5)] {
            let (_, messages) = checked(quote!(worker_threads = #value));
            assert_eq!(
                messages,
                ["`worker_threads` takes a positive integer, e.g. worker_threads = 4"],
                "{value}"
            );
        }
    }

    #[test]
    fn worker_threads_conflict_with_current_thread() {
        let (config, messages) = checked(quote!(flavor = "current_thread", worker_threads = 2));
        assert!(config.worker_threads.is_none());
        assert!(messages[0].starts_with("`worker_threads` applies to the multi_thread flavor only"));
    }

    #[test]
    fn every_duration_key_is_a_main_key() {
        for key in DURATION_KEYS {
            assert!(MAIN_KEYS.contains(key), "{key}");
        }
    }
}
