//! The `name` key of `#[graceful::tracked]` and `#[graceful::on_shutdown]`: what a site or a
//! hook is called in reports, as written, or by default the fn's module path and name.

use proc_macro2::TokenStream;
use quote::{quote, ToTokens};
use syn::ext::IdentExt;

use crate::args::{self, Arg, Args, Errors};

/// A site's or a hook's name in reports, as the tokens of a `&'static str` expression.
pub(crate) enum Name {
    Given(syn::LitStr),
    /// The fn's name, raw prefix removed, after `module_path!()`: a macro on a method cannot
    /// see the impl's type, so this is as precise as a default can be.
    Default(String),
}

impl Name {
    /// The `name` key's value (`example` shows a good one), or the default for the fn `ident`.
    /// A bad value is reported and the default used, so the other keys are still checked.
    pub(crate) fn of(args: &Args, ident: &syn::Ident, example: &str, errors: &mut Errors) -> Name {
        args.get("name")
            .and_then(|arg| errors.take(given(arg, example)))
            .map_or_else(|| Name::Default(ident.unraw().to_string()), Name::Given)
    }
}

impl ToTokens for Name {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        match self {
            Name::Given(text) => text.to_tokens(tokens),
            Name::Default(fn_name) => {
                quote!(::core::concat!(::core::module_path!(), "::", #fn_name)).to_tokens(tokens);
            }
        }
    }
}

/// The value of `arg` as a string literal that is not blank: a blank name reads as no name in
/// a report.
fn given(arg: &Arg, example: &str) -> syn::Result<syn::LitStr> {
    let text = args::lit_str(arg, example)?;
    if text.value().trim().is_empty() {
        return Err(syn::Error::new_spanned(
            &text,
            format!("`{}` cannot be empty, e.g. {example}", arg.key),
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name_of(tokens: TokenStream, ident: syn::Ident) -> (String, bool) {
        let mut errors = Errors::default();
        let args = Args::parse(tokens, "", &mut errors);
        let name = Name::of(&args, &ident, "name = \"x\"", &mut errors);
        (name.to_token_stream().to_string(), errors.finish().is_ok())
    }

    #[test]
    fn the_default_is_the_module_path_and_the_unraw_fn_name() {
        assert_eq!(
            name_of(quote!(), syn::parse_quote!(r#type)),
            (
                ":: core :: concat ! (:: core :: module_path ! () , \"::\" , \"type\")".to_owned(),
                true
            )
        );
    }

    #[test]
    fn a_given_name_is_used_as_written() {
        assert_eq!(
            name_of(quote!(name = "upload"), syn::parse_quote!(f)),
            ("\"upload\"".to_owned(), true)
        );
    }

    #[test]
    fn a_name_must_be_a_non_blank_string() {
        for value in [quote!(""), quote!("  "), quote!(upload)] {
            let (name, valid) = name_of(quote!(name = #value), syn::parse_quote!(f));
            assert!(!valid, "{value}");
            assert!(
                name.contains("module_path"),
                "falls back to the default: {name}"
            );
        }
    }
}
