//! What `#[graceful::on_shutdown]` and `#[graceful::on_reload]` share: parse the keys and the fn,
//! validate them, then expand to the fn unchanged plus one entry of a link-time table of
//! `StaticHook`s (a linkme distributed slice), so that no code runs at start-up to register it.
//! What differs between the two is one row of [`TABLES`] and the slice.

use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::ItemFn;

use crate::args::{Arg, Args, Errors};
use crate::name::Name;
use crate::signature::{self, Parameters, Rules};
use crate::{duration, item, krate};

/// The const parameter that picks the table: a `bool`, because the signature checks' messages
/// are plain `fn`s, which cannot capture which table they speak for.
pub(crate) const SHUTDOWN: bool = false;
pub(crate) const RELOAD: bool = true;

/// What sets one table's attribute apart.
struct Row {
    /// After `graceful::`: `on_`, then the kind of hook.
    name: &'static str,
    /// A fn name for examples.
    example_fn: &'static str,
    /// `None`: `order` must be given. Teardown order is a decision (a pool closes after what
    /// uses it); most services have a reload hook or two that do not depend on each other.
    default_order: Option<i32>,
    /// Before the fn's name in the entry's static: one of its own per table, so that one fn
    /// may carry both attributes.
    entry: &'static str,
    /// How a hook for a value made at run time is added, capturing the value.
    capture: &'static str,
}

/// Indexed by the table's `bool`.
#[rustfmt::skip]
const TABLES: [Row; 2] = [
    Row { name: "on_shutdown", example_fn: "close_pool",      default_order: None,    entry: "__GRACEFUL_HOOK_",        capture: "graceful::register_hook(order, name, move || ..)" },
    Row { name: "on_reload",   example_fn: "reload_settings", default_order: Some(0), entry: "__GRACEFUL_RELOAD_HOOK_", capture: "graceful::on_reload(move || ..)" },
];

/// The distributed slice of the table, through `krate`.
fn slice<const TABLE: bool>(krate: &syn::Path) -> TokenStream {
    if TABLE == RELOAD {
        quote!(#krate::__private::RELOAD_HOOKS)
    } else {
        quote!(#krate::__private::HOOKS)
    }
}

/// What the errors call things, made from the table's row.
struct Words {
    row: &'static Row,
    /// `#[graceful::on_shutdown]`.
    attribute: String,
    /// A well-formed use: `#[graceful::on_shutdown(order = 10)]`.
    example: String,
    /// `shutdown`.
    kind: &'static str,
    /// `a shutdown hook`.
    hook: String,
}

impl Words {
    fn of<const TABLE: bool>() -> Words {
        let row = &TABLES[usize::from(TABLE)];
        let kind = row.name.strip_prefix("on_").unwrap_or(row.name);
        Words {
            row,
            attribute: format!("#[graceful::{}]", row.name),
            example: format!("#[graceful::{}(order = 10)]", row.name),
            kind,
            hook: format!("a {kind} hook"),
        }
    }

    /// With `order` only where it must be given.
    fn usage(&self) -> String {
        let attribute = match self.row.default_order {
            Some(_) => &self.attribute,
            None => &self.example,
        };
        format!(
            "write `{attribute} async fn {}() {{ .. }}`",
            self.row.example_fn
        )
    }

    fn name_example(&self) -> String {
        format!("name = \"{}\"", self.row.example_fn.replace('_', "-"))
    }
}

/// The whole attribute: on any mistake, the errors and the fn unchanged, without an entry.
pub(crate) fn attribute<const TABLE: bool>(args: TokenStream, item: TokenStream) -> TokenStream {
    let words = Words::of::<TABLE>();
    let function = match item::parse_fn(item, &words.attribute, &words.usage()) {
        Ok(function) => function,
        Err(error_and_item) => return error_and_item,
    };
    let mut errors = Errors::default();
    let args = Args::parse(args, &words.example, &mut errors);
    match validate::<TABLE>(&args, &function.sig, errors) {
        Ok(config) => expand::<TABLE>(&config, function),
        Err(error) => {
            let error = error.to_compile_error();
            quote!(#error #function)
        }
    }
}

const KEYS: &[&str] = &["order", "timeout", "name", "crate"];

/// The attribute, checked.
struct HookConfig {
    krate: syn::Path,
    order: i32,
    /// `None`: the run's `hook_timeout`.
    timeout: Option<(Duration, Span)>,
    name: Name,
}

/// The table calls the fn as `name()`, safely, with nothing to choose: so a free, safe,
/// non-generic fn without parameters.
fn rules<const TABLE: bool>() -> Rules {
    Rules {
        constness: Some(const_fn::<TABLE>),
        unsafety: Some(unsafe_fn::<TABLE>),
        generics: Some(generic::<TABLE>),
        parameters: Parameters::RejectedEach {
            receiver: method::<TABLE>,
            typed: parameter::<TABLE>,
        },
        impl_trait_output: Some(impl_output::<TABLE>),
        ..Rules::ANY
    }
}

fn const_fn<const TABLE: bool>(_: &syn::Signature) -> String {
    let Words { hook, kind, .. } = Words::of::<TABLE>();
    format!("{hook} cannot be a `const fn`: it runs at {kind}, not at compile time; remove `const`")
}

fn unsafe_fn<const TABLE: bool>(_: &syn::Signature) -> String {
    let hook = Words::of::<TABLE>().hook;
    format!("{hook} cannot be an `unsafe fn`: graceful calls it with no contract to uphold; remove `unsafe` and put an `unsafe {{ .. }}` block inside")
}

fn generic<const TABLE: bool>(_: &syn::Signature) -> String {
    let hook = Words::of::<TABLE>().hook;
    format!(
        "{hook} cannot be generic: graceful calls it with no types to choose; remove the generics"
    )
}

fn method<const TABLE: bool>(_: &syn::Signature) -> String {
    let Words { attribute, row, .. } = Words::of::<TABLE>();
    let register = row.capture.split('(').next().unwrap_or(row.capture);
    format!("{attribute} goes on a free fn, not a method; call the method from a free fn, or register a hook for a value made at run time with {register}")
}

fn parameter<const TABLE: bool>(_: &syn::Signature) -> String {
    let Words { hook, row, .. } = Words::of::<TABLE>();
    format!(
        "{hook} takes no parameters; reach what it needs through a static, or capture it in {}",
        row.capture
    )
}

fn impl_output<const TABLE: bool>(_: &syn::Signature) -> String {
    let hook = Words::of::<TABLE>().hook;
    format!("{hook} needs a named return type; write `()` or `Result<(), E>`")
}

/// The signature, then every key, adding to the mistakes `Args::parse` recorded in `errors`.
/// A hook only with none at all: one mistake must not hide another, nor quietly drop the hook.
fn validate<const TABLE: bool>(
    args: &Args,
    signature: &syn::Signature,
    mut errors: Errors,
) -> syn::Result<HookConfig> {
    let words = Words::of::<TABLE>();
    signature::check(signature, &rules::<TABLE>(), &mut errors);
    args.check_keys(KEYS, &mut errors);
    let krate = krate::krate(args, &mut errors);
    let order = args
        .get("order")
        .and_then(|arg| errors.take(order::<TABLE>(arg)));
    if words.row.default_order.is_none() && args.is_missing("order") {
        errors.push(missing_order::<TABLE>());
    }
    let timeout = args.get("timeout").and_then(|arg| {
        let value = errors.take(duration::parse(arg))?;
        Some((value, arg.path.span()))
    });
    let name = Name::of(args, &signature.ident, &words.name_example(), &mut errors);
    errors.finish()?;
    Ok(HookConfig {
        krate,
        // `None` comes with a mistake in `errors` (here or in `Args::parse`), so `finish` has
        // already returned it; were that to change, this is still an error, not a lost hook.
        order: order
            .or(words.row.default_order)
            .ok_or_else(missing_order::<TABLE>)?,
        timeout,
        name,
    })
}

/// On the attribute: there is no token of the missing key to point at.
fn missing_order<const TABLE: bool>() -> syn::Error {
    let example = Words::of::<TABLE>().example;
    syn::Error::new(
        Span::call_site(),
        format!("missing `order`: add `order = N`; lower runs first, e.g. {example}"),
    )
}

/// An integer literal, negative ones included, that fits an i32.
fn order<const TABLE: bool>(arg: &Arg) -> syn::Result<i32> {
    let example = Words::of::<TABLE>().example;
    let error = |detail: &str| {
        syn::Error::new_spanned(
            &arg.value,
            format!("`order` must be an integer literal (i32), e.g. {example}{detail}"),
        )
    };
    let (negative, literal) = match &arg.value {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(literal),
            ..
        }) => (false, literal),
        syn::Expr::Unary(syn::ExprUnary {
            op: syn::UnOp::Neg(_),
            expr,
            ..
        }) => match &**expr {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Int(literal),
                ..
            }) => (true, literal),
            _ => return Err(error("")),
        },
        _ => return Err(error("")),
    };
    let out_of_range = || {
        let sign = if negative { "-" } else { "" };
        error(&format!(
            "; {sign}{} is outside {}..={}",
            literal.base10_digits(),
            i32::MIN,
            i32::MAX
        ))
    };
    let magnitude: i64 = literal.base10_parse().map_err(|_| out_of_range())?;
    let value = if negative { -magnitude } else { magnitude };
    i32::try_from(value).map_err(|_| out_of_range())
}

fn expand<const TABLE: bool>(config: &HookConfig, function: ItemFn) -> TokenStream {
    let HookConfig {
        krate,
        order,
        timeout,
        name,
    } = config;
    let ident = &function.sig.ident;
    let entry = format_ident!("{}{}", Words::of::<TABLE>().row.entry, ident.unraw());
    let slice = slice::<TABLE>(krate);
    let timeout = match timeout {
        Some((value, span)) => {
            let value = duration::tokens(krate, *value, *span);
            quote!(::core::option::Option::Some(#value))
        }
        None => quote!(::core::option::Option::None),
    };
    // The check and the call are spanned on the return type: when it is not () or
    // Result<(), E: Display>, the compiler's error points there, once (see `output_type`).
    let output_span = item::output_span(&function.sig);
    let output_type = item::output_type(&function.sig);
    let mut callee = ident.clone();
    callee.set_span(output_span);
    let assertion =
        quote_spanned!(output_span=> #krate::__private::assert_hook_output::<#output_type>(););
    let run = if function.sig.asyncness.is_some() {
        quote_spanned!(output_span=> #krate::__private::HookFn::Async(|| {
            #assertion
            #krate::__private::box_hook(#callee())
        }))
    } else {
        quote_spanned!(output_span=> #krate::__private::HookFn::Sync(|| {
            #assertion
            #krate::__private::IntoHookResult::into_hook_result(#callee())
        }))
    };
    let linkme = quote!(#krate::__private::linkme);
    quote! {
        #function

        #[#linkme::distributed_slice(#slice)]
        #[linkme(crate = #linkme)]
        #[allow(non_upper_case_globals)]
        #[doc(hidden)]
        static #entry: #krate::__private::StaticHook = #krate::__private::StaticHook {
            order: #order,
            name: #name,
            timeout: #timeout,
            run: #run,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order_of<const TABLE: bool>(value: TokenStream) -> Result<i32, String> {
        let mut errors = Errors::default();
        let args = Args::parse(quote!(order = #value), "", &mut errors);
        order::<TABLE>(args.get("order").unwrap()).map_err(|error| error.to_string())
    }

    #[test]
    fn order_accepts_the_whole_i32_range_and_nothing_else() {
        let order_of = order_of::<SHUTDOWN>;
        assert_eq!(order_of(quote!(2147483647)), Ok(i32::MAX));
        assert_eq!(order_of(quote!(-2147483648)), Ok(i32::MIN));
        assert_eq!(order_of(quote!(0)), Ok(0));
        assert_eq!(
            order_of(quote!(2147483648)).unwrap_err(),
            "`order` must be an integer literal (i32), e.g. #[graceful::on_shutdown(order = 10)]; 2147483648 is outside -2147483648..=2147483647"
        );
        assert!(order_of(quote!(-2147483649)).is_err());
        assert!(order_of(quote!(99999999999999999999999)).is_err());
        assert_eq!(
            order_of(quote!("first")).unwrap_err(),
            "`order` must be an integer literal (i32), e.g. #[graceful::on_shutdown(order = 10)]"
        );
        assert!(order_of(quote!(1.5)).is_err());
        assert!(order_of(quote!(LAST)).is_err());
    }

    #[test]
    fn each_table_shows_its_own_attribute_in_examples() {
        assert_eq!(
            order_of::<RELOAD>(quote!(soon)).unwrap_err(),
            "`order` must be an integer literal (i32), e.g. #[graceful::on_reload(order = 10)]"
        );
    }

    /// Every signature mistake at once, in the words of table `T`.
    fn signature_mistakes<const TABLE: bool>() -> String {
        attribute::<TABLE>(
            quote!(order = 1, timeout = "soon", color = "red"),
            quote!(
                async fn close<T>(&self, pool: Pool) {}
            ),
        )
        .to_string()
    }

    #[test]
    fn every_mistake_is_reported_and_the_fn_kept() {
        for (expansion, hook) in [
            (signature_mistakes::<SHUTDOWN>(), "a shutdown hook"),
            (signature_mistakes::<RELOAD>(), "a reload hook"),
        ] {
            for message in [
                "goes on a free fn, not a method",
                &format!("{hook} takes no parameters"),
                &format!("{hook} cannot be generic"),
                "unknown key `color`",
                "invalid duration \\\"soon\\\"",
            ] {
                assert!(
                    expansion.contains(message),
                    "{message}\nnot in\n{expansion}"
                );
            }
            assert!(!expansion.contains("StaticHook"), "{expansion}");
            assert!(
                expansion.ends_with("async fn close < T > (& self , pool : Pool) { }"),
                "{expansion}"
            );
        }
    }
}
