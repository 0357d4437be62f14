//! Humantime durations in attribute values, parsed at compile time so that a typo is a build
//! error on the literal, never a surprise at shutdown.

use std::time::Duration;

use proc_macro2::TokenStream;
use quote::quote_spanned;

use crate::args::{self, Arg};

/// The duration written in `arg`'s string literal.
pub(crate) fn parse(arg: &Arg) -> syn::Result<Duration> {
    let example = format!("{} = \"5s\"", arg.key);
    let text = args::lit_str(arg, &example)?;
    parse_text(&text.value()).map_err(|message| syn::Error::new_spanned(&text, message))
}

/// Parses humantime text; the error names the value, the reason and what to write instead.
fn parse_text(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text).map_err(|error| {
        format!(
            "invalid duration {text:?}: {}; write a humantime duration such as \"5s\" or \"250ms\"",
            reason(&error)
        )
    })?;
    // Emitted as `Duration::from_nanos(u64)`: anything longer would not fit.
    if u64::try_from(duration.as_nanos()).is_err() {
        return Err(format!(
            "duration {text:?} is too long; keep it under 584 years"
        ));
    }
    Ok(duration)
}

/// humantime's reason, without the list of every unit it appends to an unknown unit: the
/// message already shows the two common ones.
fn reason(error: &humantime::DurationError) -> String {
    match error {
        humantime::DurationError::UnknownUnit { unit, .. } if !unit.is_empty() => {
            format!("unknown time unit {unit:?}")
        }
        other => other.to_string(),
    }
}

/// `Duration::from_nanos(n)` through the runtime's re-export, spanned on the value it came
/// from.
pub(crate) fn tokens(
    krate: &syn::Path,
    duration: Duration,
    span: proc_macro2::Span,
) -> TokenStream {
    // Cannot truncate: `parse_text` rejected durations over u64::MAX nanoseconds.
    let nanos = duration.as_nanos() as u64;
    quote_spanned!(span=> #krate::__private::Duration::from_nanos(#nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_forms_parse() {
        assert_eq!(parse_text("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_text("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_text("1m 30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_text("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn an_unknown_unit_is_named_with_what_to_write() {
        assert_eq!(
            parse_text("5 parsecs").unwrap_err(),
            "invalid duration \"5 parsecs\": unknown time unit \"parsecs\"; write a humantime duration such as \"5s\" or \"250ms\""
        );
    }

    #[test]
    fn a_number_without_a_unit_asks_for_one() {
        let message = parse_text("30").unwrap_err();
        assert!(message.contains("time unit needed"), "{message}");
    }

    #[test]
    fn words_are_rejected() {
        let message = parse_text("soon").unwrap_err();
        assert!(
            message.starts_with("invalid duration \"soon\": "),
            "{message}"
        );
    }

    #[test]
    fn a_duration_beyond_u64_nanoseconds_is_rejected() {
        assert!(parse_text("600years").unwrap_err().contains("too long"));
        assert!(parse_text("500years").is_ok());
    }

    #[test]
    fn tokens_carry_the_nanoseconds() {
        let krate: syn::Path = syn::parse_quote!(::graceful);
        let emitted = tokens(
            &krate,
            Duration::from_millis(1500),
            proc_macro2::Span::call_site(),
        );
        assert_eq!(
            emitted.to_string(),
            ":: graceful :: __private :: Duration :: from_nanos (1500000000u64)"
        );
    }
}
