//! The path through which generated code reaches graceful: `::graceful`, or the path of the
//! `crate = "..."` key for crates that re-export graceful under another name.

use crate::args::{self, Args, Errors};

const EXAMPLE: &str = "crate = \"my_platform::graceful\"";

/// The `crate` key's path, or `::graceful`. A bad value is reported and `::graceful` used,
/// so the rest of the attribute is still checked.
pub(crate) fn krate(args: &Args, errors: &mut Errors) -> syn::Path {
    let default: syn::Path = syn::parse_quote!(::graceful);
    let Some(arg) = args.get("crate") else {
        return default;
    };
    let Some(text) = errors.take(args::lit_str(arg, EXAMPLE)) else {
        return default;
    };
    // The parsed path's tokens carry the literal's span: a path that does not resolve is
    // reported on the literal.
    match text.parse_with(syn::Path::parse_mod_style) {
        Ok(path) => path,
        Err(_) => {
            errors.push(syn::Error::new_spanned(
                &text,
                format!(
                    "{:?} is not a path to the graceful crate; write e.g. {EXAMPLE}",
                    text.value()
                ),
            ));
            default
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::{quote, ToTokens};

    fn krate_of(tokens: proc_macro2::TokenStream) -> (String, bool) {
        let mut errors = Errors::default();
        let args = Args::parse(tokens, "", &mut errors);
        let path = krate(&args, &mut errors);
        (path.to_token_stream().to_string(), errors.finish().is_ok())
    }

    #[test]
    fn the_default_is_the_absolute_graceful_path() {
        assert_eq!(krate_of(quote!()), (":: graceful".to_owned(), true));
    }

    #[test]
    fn a_re_export_path_is_used_as_written() {
        assert_eq!(
            krate_of(quote!(crate = "platform::graceful")),
            ("platform :: graceful".to_owned(), true)
        );
        assert_eq!(krate_of(quote!(crate = "::g")), (":: g".to_owned(), true));
    }

    #[test]
    fn a_value_that_is_not_a_path_is_an_error() {
        assert!(!krate_of(quote!(crate = "graceful!")).1);
        assert!(!krate_of(quote!(crate = "Vec<u8>")).1);
        assert!(!krate_of(quote!(crate = graceful)).1);
    }
}
