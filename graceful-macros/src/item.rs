//! The item under an attribute: a fn with a body, or an error that says what it is instead,
//! pointing at its head (`struct Pool`), not at its whole body.

use proc_macro2::{Group, Span, TokenStream, TokenTree};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Item, ItemFn};

/// The item as a fn with a body (free fns, methods and trait methods with a default all parse
/// as one). Otherwise the error (`attribute` names the attribute, `usage` says where it goes)
/// followed by the item unchanged, ready to be returned as the whole expansion.
pub(crate) fn parse_fn(
    item: TokenStream,
    attribute: &str,
    usage: &str,
) -> Result<ItemFn, TokenStream> {
    if let Ok(function) = syn::parse2::<ItemFn>(item.clone()) {
        return Ok(function);
    }
    // A fn without a body: a required trait method or a foreign fn.
    let error = if let Ok(declaration) = syn::parse2::<syn::ForeignItemFn>(item.clone()) {
        syn::Error::new_spanned(
            &declaration.sig,
            format!("{attribute} needs a fn with a body, and this one has none; on a trait's method, put it on the method in each impl, or give this one a default body"),
        )
    } else if let Ok(other) = syn::parse2::<Item>(item.clone()) {
        let (what, head) = describe(&other);
        syn::Error::new_spanned(
            head,
            format!("{attribute} goes on a fn, not {what}; {usage}"),
        )
    } else {
        syn::Error::new_spanned(&item, format!("{attribute} goes on a fn; {usage}"))
    };
    let error = error.to_compile_error();
    Err(quote!(#error #item))
}

/// What the item is, in words, and the tokens that name it.
fn describe(item: &Item) -> (&'static str, TokenStream) {
    match item {
        Item::Struct(item) => ("a struct", head(&item.struct_token, &item.ident)),
        Item::Enum(item) => ("an enum", head(&item.enum_token, &item.ident)),
        Item::Union(item) => ("a union", head(&item.union_token, &item.ident)),
        Item::Trait(item) => ("a trait", head(&item.trait_token, &item.ident)),
        Item::Impl(item) => ("an impl block", head(&item.impl_token, &item.self_ty)),
        Item::Const(item) => ("a const", head(&item.const_token, &item.ident)),
        Item::Static(item) => ("a static", head(&item.static_token, &item.ident)),
        Item::Mod(item) => ("a module", head(&item.mod_token, &item.ident)),
        Item::Type(item) => ("a type alias", head(&item.type_token, &item.ident)),
        Item::Use(item) => ("a use declaration", item.to_token_stream()),
        other => ("this item", other.to_token_stream()),
    }
}

fn head(keyword: &dyn ToTokens, name: &dyn ToTokens) -> TokenStream {
    quote!(#keyword #name)
}

/// Where an error about a fn's output type belongs: the return type, or the fn's name when it
/// has none (its output is `()`).
pub(crate) fn output_span(signature: &syn::Signature) -> Span {
    match &signature.output {
        syn::ReturnType::Type(_, ty) => ty.span(),
        syn::ReturnType::Default => signature.ident.span(),
    }
}

/// The fn's output type (the written one, or `()`) for a trait-bound check, every token
/// spanned on `output_span`. One span for all of it makes the check's error and the error of
/// the call that needs the same bound land on the same place, and rustc then shows only one
/// of them: one mistake, one error.
pub(crate) fn output_type(signature: &syn::Signature) -> TokenStream {
    let span = output_span(signature);
    match &signature.output {
        syn::ReturnType::Type(_, ty) => respan(ty.to_token_stream(), span),
        syn::ReturnType::Default => quote_spanned!(span=> ()),
    }
}

fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut token| {
            if let TokenTree::Group(group) = &mut token {
                *group = Group::new(group.delimiter(), respan(group.stream(), span));
            }
            token.set_span(span);
            token
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(item: TokenStream) -> String {
        let expansion = parse_fn(item, "#[x]", "write `fn f() {}`").unwrap_err();
        expansion.to_string()
    }

    #[test]
    fn fns_with_a_body_parse_whatever_their_shape() {
        let shapes = [
            quote!(
                fn f() {}
            ),
            quote!(
                pub async unsafe fn f<T: Send>(value: T) -> T
                where
                    T: Sync,
                {
                    value
                }
            ),
            quote!(
                fn method(&mut self) {}
            ),
            quote!(
                #[inline]
                pub(crate) extern "C" fn f() {}
            ),
        ];
        for shape in shapes {
            assert!(parse_fn(shape.clone(), "#[x]", "").is_ok(), "{shape}");
        }
    }

    #[test]
    fn a_struct_is_named_and_kept() {
        let expansion = error_of(quote!(
            struct Pool;
        ));
        assert!(
            expansion.contains("#[x] goes on a fn, not a struct; write `fn f() {}`"),
            "{expansion}"
        );
        assert!(expansion.ends_with("struct Pool ;"), "{expansion}");
    }

    #[test]
    fn a_fn_without_a_body_is_told_so() {
        let expansion = error_of(quote!(
            fn handle(&self) -> u32;
        ));
        assert!(expansion.contains("needs a fn with a body"), "{expansion}");
    }

    #[test]
    fn the_implicit_output_is_unit() {
        let function: ItemFn = syn::parse_quote!(
            fn f() {}
        );
        assert_eq!(output_type(&function.sig).to_string(), "()");
    }
}
