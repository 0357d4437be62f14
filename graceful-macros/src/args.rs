//! Parsing of an attribute's `key = value, ...` list into entries that the validate stages read
//! one key at a time, with unknown and repeated keys reported on their own tokens.

use proc_macro2::TokenStream;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, Meta, Token};

/// One `key = value` of an attribute.
pub(crate) struct Arg {
    pub(crate) key: String,
    pub(crate) path: syn::Path,
    pub(crate) value: Expr,
}

/// The attribute's entries, consumed key by key.
pub(crate) struct Args {
    entries: Vec<Arg>,
}

impl Args {
    /// Parses `key = value, ...`; `example` shows the right form in the error message.
    pub(crate) fn parse(tokens: TokenStream, example: &str) -> syn::Result<Args> {
        let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(tokens)?;
        let mut errors = Errors::default();
        let mut entries = Vec::new();
        for meta in metas {
            match meta {
                Meta::NameValue(pair) => {
                    let key = path_name(&pair.path);
                    entries.push(Arg {
                        key,
                        path: pair.path,
                        value: pair.value,
                    });
                }
                other => errors.push(syn::Error::new_spanned(
                    &other,
                    format!("expected `key = value`, e.g. {example}"),
                )),
            }
        }
        errors.finish()?;
        Ok(Args { entries })
    }

    /// Rejects keys not in `known` and keys given twice, each on its own token.
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

    /// The value of `key`, if given (the first, when repeated: that is reported elsewhere).
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

/// Errors gathered over a whole attribute, so the user sees them all at once.
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

/// A string literal value, or an error that shows `example`.
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

/// A humantime duration in a string literal, checked now rather than at run time.
pub(crate) fn duration(arg: &Arg) -> syn::Result<std::time::Duration> {
    let example = format!("{} = \"5s\"", arg.key);
    let text = lit_str(arg, &example)?;
    let duration = humantime::parse_duration(&text.value()).map_err(|error| {
        syn::Error::new_spanned(
            &text,
            format!(
                "invalid duration {:?} for `{}`: {error}; write a humantime duration such as \"5s\", \"250ms\" or \"1m 30s\"",
                text.value(),
                arg.key
            ),
        )
    })?;
    if u64::try_from(duration.as_nanos()).is_err() {
        return Err(syn::Error::new_spanned(
            &text,
            "this duration is too long; keep it under 500 years",
        ));
    }
    Ok(duration)
}

/// Emits `Duration::from_nanos(n)` through the runtime's re-export.
pub(crate) fn duration_tokens(krate: &syn::Path, duration: std::time::Duration) -> TokenStream {
    let nanos = duration.as_nanos() as u64;
    quote::quote!(#krate::__private::Duration::from_nanos(#nanos))
}

/// The path generated code reaches graceful through: `::graceful`, or the `crate` key's.
pub(crate) fn krate(args: &Args, errors: &mut Errors) -> syn::Path {
    let default: syn::Path = syn::parse_quote!(::graceful);
    let Some(arg) = args.get("crate") else {
        return default;
    };
    let Some(text) = errors.take(lit_str(arg, "crate = \"my_crate::graceful\"")) else {
        return default;
    };
    errors
        .take(text.parse::<syn::Path>().map_err(|_| {
            syn::Error::new_spanned(
                &text,
                format!(
                    "{:?} is not a path; write e.g. crate = \"my_crate::graceful\"",
                    text.value()
                ),
            )
        }))
        .unwrap_or(default)
}

/// The fn an attribute is on; when it is on anything else, the error to emit instead: `message`
/// on the item, followed by the item unchanged so the rest of the crate still resolves.
pub(crate) fn parse_fn(item: TokenStream, message: &str) -> Result<syn::ItemFn, TokenStream> {
    syn::parse2::<syn::ItemFn>(item.clone()).map_err(|_| {
        let error = syn::Error::new_spanned(&item, message).to_compile_error();
        quote::quote!(#error #item)
    })
}

/// The error, followed by the fn unchanged: one mistake in the attribute, one error.
pub(crate) fn error_beside(error: syn::Error, function: &syn::ItemFn) -> TokenStream {
    let error = error.to_compile_error();
    quote::quote!(#error #function)
}

/// The span of a fn's return type, or of its signature when it has none.
pub(crate) fn output_span(signature: &syn::Signature) -> proc_macro2::Span {
    match &signature.output {
        syn::ReturnType::Type(_, ty) => ty.span(),
        syn::ReturnType::Default => signature.ident.span(),
    }
}
