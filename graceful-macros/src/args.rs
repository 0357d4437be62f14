//! An attribute's `key = value, ...` list: parsed once into entries, then read key by key by
//! the validate stages, with unknown and repeated keys reported on their own tokens.

use proc_macro2::TokenStream;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Expr, Meta, Token};

/// One `key = value` of an attribute.
pub(crate) struct Arg {
    /// The key as written, `::`-joined when it is a path (which is never a known key).
    pub(crate) key: String,
    /// The key's tokens, where errors about the key itself point.
    pub(crate) path: syn::Path,
    /// The value's tokens, where errors about the value point.
    pub(crate) value: Expr,
}

/// The attribute's entries, in the order written.
#[derive(Default)]
pub(crate) struct Args {
    entries: Vec<Arg>,
    /// Keys written in another form than `key = value` (already reported).
    malformed: Vec<String>,
    /// False when the list did not parse at all (already reported): nothing can be said to
    /// be missing from it.
    complete: bool,
}

impl Args {
    /// Parses `key = value, ...`. Every entry that is not `key = value` is reported (with
    /// `example` showing the right form) and skipped, so the other keys are still checked.
    pub(crate) fn parse(tokens: TokenStream, example: &str, errors: &mut Errors) -> Args {
        let metas = match Punctuated::<Meta, Token![,]>::parse_terminated.parse2(tokens) {
            Ok(metas) => metas,
            Err(error) => {
                errors.push(error);
                return Args::default();
            }
        };
        let mut args = Args {
            complete: true,
            ..Args::default()
        };
        for meta in metas {
            match meta {
                Meta::NameValue(pair) => args.entries.push(Arg {
                    key: path_name(&pair.path),
                    path: pair.path,
                    value: pair.value,
                }),
                other => {
                    errors.push(syn::Error::new_spanned(
                        &other,
                        format!("expected `key = value`, e.g. {example}"),
                    ));
                    args.malformed.push(path_name(other.path()));
                }
            }
        }
        args
    }

    /// Whether a required key is missing. Not when it was written wrongly, or the list did not
    /// parse: that mistake is already reported, and one mistake gets one error.
    pub(crate) fn is_missing(&self, key: &str) -> bool {
        self.complete && self.get(key).is_none() && !self.malformed.iter().any(|name| name == key)
    }

    /// Rejects keys not in `known` and keys given twice, each error on the key's own token.
    pub(crate) fn check_keys(&self, known: &[&str], errors: &mut Errors) {
        for (index, arg) in self.entries.iter().enumerate() {
            if !known.contains(&arg.key.as_str()) {
                errors.push(syn::Error::new_spanned(
                    &arg.path,
                    format!(
                        "unknown key `{}`; expected one of: {}",
                        arg.key,
                        known.join(", ")
                    ),
                ));
            } else if self.entries[..index]
                .iter()
                .any(|earlier| earlier.key == arg.key)
            {
                errors.push(syn::Error::new_spanned(
                    &arg.path,
                    format!("`{}` is given twice; keep one", arg.key),
                ));
            }
        }
    }

    /// The entry for `key`, if given. When it is repeated, the first one: `check_keys` has
    /// already reported the second, and checking both values would only repeat errors.
    pub(crate) fn get(&self, key: &str) -> Option<&Arg> {
        self.entries.iter().find(|arg| arg.key == key)
    }
}

fn path_name(path: &syn::Path) -> String {
    path.segments
        .iter()
        .map(|segment| segment.ident.to_string())
        .collect::<Vec<_>>()
        .join("::")
}

/// The errors of one attribute, gathered so the user sees every mistake in one build.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(errors) => errors.combine(error),
            None => self.0 = Some(error),
        }
    }

    /// Records the error of `result`, if any, and returns its value.
    pub(crate) fn take<T>(&mut self, result: syn::Result<T>) -> Option<T> {
        result.map_err(|error| self.push(error)).ok()
    }

    pub(crate) fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

/// The value of `arg` as a string literal; otherwise an error that shows `example`.
pub(crate) fn lit_str(arg: &Arg, example: &str) -> syn::Result<syn::LitStr> {
    match &arg.value {
        Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(text),
            ..
        }) => Ok(text.clone()),
        other => Err(syn::Error::new_spanned(
            other,
            format!("`{}` takes a string literal, e.g. {example}", arg.key),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn parse(tokens: TokenStream) -> (Args, Errors) {
        let mut errors = Errors::default();
        let args = Args::parse(tokens, "#[x(key = 1)]", &mut errors);
        (args, errors)
    }

    fn messages(errors: Errors) -> Vec<String> {
        match errors.finish() {
            Ok(()) => Vec::new(),
            Err(error) => error.into_iter().map(|error| error.to_string()).collect(),
        }
    }

    #[test]
    fn an_empty_list_has_no_entries_and_no_errors() {
        let (args, errors) = parse(quote!());
        assert!(args.get("order").is_none());
        assert!(errors.finish().is_ok());
    }

    #[test]
    fn entries_are_found_by_key() {
        let (args, errors) = parse(quote!(order = 10, name = "close",));
        assert!(errors.finish().is_ok());
        assert!(args.get("order").is_some());
        assert!(lit_str(args.get("name").unwrap(), "").is_ok());
    }

    #[test]
    fn an_unknown_key_lists_the_known_ones() {
        let (args, mut errors) = parse(quote!(drain_timout = "5s"));
        args.check_keys(&["drain_timeout", "crate"], &mut errors);
        assert_eq!(
            messages(errors),
            ["unknown key `drain_timout`; expected one of: drain_timeout, crate"]
        );
    }

    #[test]
    fn a_repeated_key_is_reported_on_each_use_after_the_first() {
        let (args, mut errors) = parse(quote!(grace = "1s", grace = "2s", grace = "3s"));
        args.check_keys(&["grace"], &mut errors);
        assert_eq!(
            messages(errors),
            [
                "`grace` is given twice; keep one",
                "`grace` is given twice; keep one"
            ]
        );
    }

    #[test]
    fn a_bare_word_is_reported_and_the_other_keys_are_kept() {
        let (args, errors) = parse(quote!(current_thread, order = 1));
        assert!(args.get("order").is_some());
        assert_eq!(
            messages(errors),
            ["expected `key = value`, e.g. #[x(key = 1)]"]
        );
    }

    #[test]
    fn a_syntax_error_is_reported_instead_of_panicking() {
        let (args, errors) = parse(quote!(order = ));
        assert_eq!(messages(errors).len(), 1);
        assert!(!args.is_missing("order"), "the syntax error is enough");
    }

    #[test]
    fn a_key_is_missing_only_when_not_written_at_all() {
        let (args, _) = parse(quote!(order, name = "x"));
        assert!(
            !args.is_missing("order"),
            "written as a bare word, already reported"
        );
        assert!(!args.is_missing("name"));
        assert!(args.is_missing("timeout"));
    }
}
