//! The checks an attribute makes on its fn's signature, each written once. Which tokens an
//! error points at is decided here; each attribute states only what it rejects, in its words.

use proc_macro2::TokenStream;
use quote::quote;
use syn::FnArg;

use crate::args::Errors;

/// The error for one rejected part, given the signature (some messages name the fn).
pub(crate) type Message = fn(&syn::Signature) -> String;

/// What an attribute rejects in its fn's signature; `None` accepts that part.
pub(crate) struct Rules {
    /// A `const fn`, on `const`.
    pub(crate) constness: Option<Message>,
    /// An `unsafe fn`, on `unsafe`.
    pub(crate) unsafety: Option<Message>,
    /// A fn without `async`, on `fn`: there is no `async` token to point at.
    pub(crate) sync: Option<Message>,
    /// Generic parameters or a where clause, on all of them.
    pub(crate) generics: Option<Message>,
    pub(crate) parameters: Parameters,
    /// `-> impl Trait`, on the type: the output check needs a type it can name.
    pub(crate) impl_trait_output: Option<Message>,
}

/// How an attribute rejects parameters.
pub(crate) enum Parameters {
    Accepted,
    /// One error on the whole list, `self` included: one mistake, one error.
    Rejected(Message),
    /// One error on each parameter, with a method's `self` told apart: its fix (call the method
    /// from a free fn) is not the fix for a parameter (reach the value another way).
    RejectedEach {
        receiver: Message,
        typed: Message,
    },
}

impl Rules {
    /// Accepts every signature: the base that attributes override with `..Rules::ANY`.
    pub(crate) const ANY: Rules = Rules {
        constness: None,
        unsafety: None,
        sync: None,
        generics: None,
        parameters: Parameters::Accepted,
        impl_trait_output: None,
    };
}

/// Records an error for each part of `signature` that `rules` rejects, in the order the parts
/// are written.
pub(crate) fn check(signature: &syn::Signature, rules: &Rules, errors: &mut Errors) {
    let error = |tokens: &dyn quote::ToTokens, message: Message| {
        syn::Error::new_spanned(tokens, message(signature))
    };
    if let (Some(constness), Some(message)) = (&signature.constness, rules.constness) {
        errors.push(error(constness, message));
    }
    if let (Some(unsafety), Some(message)) = (&signature.unsafety, rules.unsafety) {
        errors.push(error(unsafety, message));
    }
    if let (None, Some(message)) = (&signature.asyncness, rules.sync) {
        errors.push(error(&signature.fn_token, message));
    }
    if let (Some(generics), Some(message)) = (generics_tokens(&signature.generics), rules.generics)
    {
        errors.push(error(&generics, message));
    }
    match rules.parameters {
        Parameters::Accepted => {}
        Parameters::Rejected(message) => {
            if !signature.inputs.is_empty() {
                errors.push(error(&signature.inputs, message));
            }
        }
        Parameters::RejectedEach { receiver, typed } => {
            for input in &signature.inputs {
                errors.push(match input {
                    FnArg::Receiver(input) => error(input, receiver),
                    FnArg::Typed(input) => error(input, typed),
                });
            }
        }
    }
    if let (syn::ReturnType::Type(_, ty), Some(message)) =
        (&signature.output, rules.impl_trait_output)
    {
        if let syn::Type::ImplTrait(_) = **ty {
            errors.push(error(ty, message));
        }
    }
}

/// The tokens of a fn's generics, where clause included (syn prints the where clause apart).
fn generics_tokens(generics: &syn::Generics) -> Option<TokenStream> {
    if generics.params.is_empty() && generics.where_clause.is_none() {
        return None;
    }
    let where_clause = &generics.where_clause;
    Some(quote!(#generics #where_clause))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rejects everything, each message naming the part, so a test sees which checks fired.
    const NOTHING: Rules = Rules {
        constness: Some(|_| "const".to_owned()),
        unsafety: Some(|_| "unsafe".to_owned()),
        sync: Some(|signature| format!("sync {}", signature.ident)),
        generics: Some(|_| "generics".to_owned()),
        parameters: Parameters::Rejected(|_| "parameters".to_owned()),
        impl_trait_output: Some(|_| "impl output".to_owned()),
    };

    fn messages(signature: syn::Signature, rules: &Rules) -> Vec<String> {
        let mut errors = Errors::default();
        check(&signature, rules, &mut errors);
        match errors.finish() {
            Ok(()) => Vec::new(),
            Err(error) => error.into_iter().map(|error| error.to_string()).collect(),
        }
    }

    #[test]
    fn any_accepts_every_signature() {
        let signature = syn::parse_quote!(
            const unsafe fn f<T>(&self, value: T) -> impl Sized where T: Copy
        );
        assert!(messages(signature, &Rules::ANY).is_empty());
    }

    #[test]
    fn a_plain_async_fn_passes_every_check() {
        let signature = syn::parse_quote!(async fn close() -> Result<(), Error>);
        assert!(messages(signature, &NOTHING).is_empty());
    }

    #[test]
    fn each_rejected_part_is_one_error_in_the_order_written() {
        let signature = syn::parse_quote!(
            const unsafe fn serve<T>(port: u16, host: T) -> impl Sized
        );
        assert_eq!(
            messages(signature, &NOTHING),
            [
                "const",
                "unsafe",
                "sync serve",
                "generics",
                "parameters",
                "impl output"
            ]
        );
    }

    #[test]
    fn a_where_clause_alone_makes_a_fn_generic() {
        let signature = syn::parse_quote!(async fn f() where String: Sized);
        assert_eq!(messages(signature, &NOTHING), ["generics"]);
    }

    #[test]
    fn rejected_each_reports_every_parameter_and_tells_self_apart() {
        let rules = Rules {
            parameters: Parameters::RejectedEach {
                receiver: |_| "receiver".to_owned(),
                typed: |_| "typed".to_owned(),
            },
            ..Rules::ANY
        };
        let signature = syn::parse_quote!(fn close(&self, pool: Pool, retries: u32));
        assert_eq!(messages(signature, &rules), ["receiver", "typed", "typed"]);
    }
}
