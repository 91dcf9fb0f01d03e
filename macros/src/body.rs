//! The traced function's body as an expression: in a closure (`call_once`) whose arguments
//! are rebound in declaration order, or inline for `#[track_caller]` (its `return` and `?`
//! rewritten to come back to the verdict), and attribute values that name arguments.

use proc_macro2::{Ident, Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{parse_quote, Expr, FnArg, Lifetime, Pat, PatIdent, PatType};

use crate::expand::private;
use crate::types::call_once_turbofish;

/// Macros that cannot `return` from the function they are written in (the standard library's
/// formatting, assertion and panic macros), when their arguments hold no `return` and no `?`.
pub(crate) const NON_RETURNING_MACROS: &[&str] = &[
    "assert",
    "assert_eq",
    "assert_ne",
    "column",
    "concat",
    "dbg",
    "debug_assert",
    "debug_assert_eq",
    "debug_assert_ne",
    "eprint",
    "eprintln",
    "file",
    "format",
    "format_args",
    "line",
    "matches",
    "module_path",
    "panic",
    "print",
    "println",
    "stringify",
    "todo",
    "unimplemented",
    "unreachable",
    "vec",
    "write",
    "writeln",
];

pub(crate) fn macro_cannot_return(m: &syn::Macro) -> bool {
    use proc_macro2::{Spacing, TokenTree};
    fn non_returning(name: &proc_macro2::Ident) -> bool {
        NON_RETURNING_MACROS.iter().any(|n| name == n)
    }
    /// No `return`, no `?`, and no call of a macro outside the list (one nested in the
    /// arguments, `vec![my_try!(x)]`, could return as well): `name ! (..)`, with `!` alone
    /// (not `!=`) and a group after it.
    fn clean(tokens: TokenStream2) -> bool {
        let tokens: Vec<TokenTree> = tokens.into_iter().collect();
        tokens.iter().enumerate().all(|(k, t)| match t {
            TokenTree::Punct(p) => p.as_char() != '?',
            TokenTree::Ident(i) => {
                let call = matches!(
                    &tokens[k + 1..],
                    [TokenTree::Punct(bang), TokenTree::Group(_), ..]
                        if bang.as_char() == '!' && bang.spacing() == Spacing::Alone
                );
                i != "return" && (!call || non_returning(i))
            }
            TokenTree::Group(g) => clean(g.stream()),
            TokenTree::Literal(_) => true,
        })
    }
    m.path
        .segments
        .last()
        .is_some_and(|s| non_returning(&s.ident))
        && clean(m.tokens.clone())
}

/// A `#[track_caller]` function's body runs inline, in a block labeled `'__agentcore_body`
/// (a closure cannot be `#[track_caller]` on stable Rust, and `Location::caller()` must see
/// the caller): its `return e` becomes `break '__agentcore_body e` and its `x?` a `match`
/// that breaks with the residual (`__private::Branch`), so that both still come back to the
/// verdict. Closures, async blocks and items in the body keep their own. A macro that could
/// hide a `return` or `?` (`anyhow::bail!`) is reported, as it would skip the verdict.
pub(crate) struct InlineBody {
    krate: TokenStream2,
    label: Lifetime,
    rewritten: bool,
    hidden: Option<syn::Macro>,
}

impl VisitMut for InlineBody {
    fn visit_expr_mut(&mut self, e: &mut Expr) {
        if let Expr::Closure(_) | Expr::Async(_) | Expr::Const(_) = e {
            return;
        }
        syn::visit_mut::visit_expr_mut(self, e);
        let label = &self.label;
        let p = private(&self.krate);
        // Built as syntax trees, not parsed: syn reads `break 'label ::path` as the
        // `break 'label: loop` error case.
        let break_with = |value: Expr| {
            Expr::Break(syn::ExprBreak {
                attrs: Vec::new(),
                break_token: Default::default(),
                label: Some(label.clone()),
                expr: Some(Box::new(value)),
            })
        };
        match e {
            Expr::Return(r) => {
                let value = r.expr.take().map_or_else(|| parse_quote!(()), |v| *v);
                *e = break_with(value);
                self.rewritten = true;
            }
            Expr::Try(t) => {
                let inner = &t.expr;
                let mut m: syn::ExprMatch = parse_quote! {
                    match #p::Branch::__agentcore_branch(#inner) {
                        ::core::ops::ControlFlow::Continue(__agentcore_value) => __agentcore_value,
                        ::core::ops::ControlFlow::Break(__agentcore_residual) => (),
                    }
                };
                *m.arms[1].body = break_with(parse_quote!(
                    #p::FromResidual::__agentcore_from_residual(__agentcore_residual)
                ));
                *e = Expr::Match(m);
                self.rewritten = true;
            }
            _ => {}
        }
    }
    fn visit_item_mut(&mut self, _: &mut syn::Item) {}
    fn visit_macro_mut(&mut self, m: &mut syn::Macro) {
        if self.hidden.is_none() && !macro_cannot_return(m) {
            self.hidden = Some(m.clone());
        }
    }
}

/// The body of a sync (or future-returning) function as an expression whose value is the
/// function's: `call_once::<R, _>(move || body)`, or for a `#[track_caller]` function the
/// body inline (see [`InlineBody`]).
pub(crate) fn run_body(
    krate: &TokenStream2,
    attrs: &[syn::Attribute],
    sig: &mut syn::Signature,
    block: syn::Block,
    in_attributes: &[Ident],
) -> TokenStream2 {
    let p = private(krate);
    if !attrs.iter().any(|a| a.path().is_ident("track_caller")) {
        let turbofish = call_once_turbofish(&sig.output);
        let rebind = closure_rebindings(sig, in_attributes);
        if rebind.is_empty() {
            return quote!(#p::call_once #turbofish (move || #block));
        }
        // The body's statements after the rebindings, in one block (a nested `{ body }` as the
        // closure's value is an `unused_braces` warning in the user's code).
        let stmts = &block.stmts;
        return quote!(#p::call_once #turbofish (move || { #(#rebind)* #(#stmts)* }));
    }
    let mut inline = InlineBody {
        krate: krate.clone(),
        // `mixed_site`: labels are hygienic there, so a label of the user's own spelled the
        // same is another label, and the rewritten `return`s can only reach this one.
        label: Lifetime::new("'__agentcore_body", Span::mixed_site()),
        rewritten: false,
        hidden: None,
    };
    let mut block = block;
    inline.visit_block_mut(&mut block);
    if let Some(m) = inline.hidden {
        let name = m.path.segments.last().map(|s| s.ident.to_string());
        return syn::Error::new_spanned(
            &m.path,
            format!(
                "`#[trace_operation]` runs a `#[track_caller]` function's body inline and cannot \
                 see a `return` or `?` inside `{}!`; write them outside the macro, or remove \
                 `#[track_caller]`",
                name.unwrap_or_default()
            ),
        )
        .into_compile_error();
    }
    if inline.rewritten {
        let label = inline.label;
        quote!(#label: #block)
    } else {
        quote!(#block)
    }
}

/// An attribute value: a place (`user`, `self.name`, `CONST`) is cloned, so that naming an
/// argument does not move it out of the body; any other expression is used as written.
pub(crate) fn attribute_value(v: &Expr) -> TokenStream2 {
    fn is_place(e: &Expr) -> bool {
        match e {
            Expr::Path(p) => p.qself.is_none(),
            Expr::Field(f) => is_place(&f.base),
            Expr::Paren(p) => is_place(&p.expr),
            _ => false,
        }
    }
    if is_place(v) {
        quote_spanned!(v.span()=> ::core::clone::Clone::clone(&#v))
    } else {
        quote!(#v)
    }
}

/// A parameter's attributes for its rebinding (see
/// [`expand_async_fn`](crate::async_fn::expand_async_fn) and [`run_body`]): its `#[cfg]` /
/// `#[cfg_attr]` (a configured-out parameter has nothing to rebind), and its lint
/// attributes, as the body uses the rebinding (an `#[allow(unused_variables)]` is about it),
/// while the parameter is always used (moved into the future or the closure). An `#[expect]`
/// is met on the rebinding, so on the parameter it becomes an `#[allow]` (an unmet
/// expectation is a warning of its own). Its other attributes stay on the parameter only.
pub(crate) fn rebinding_attrs(
    attrs: &mut [syn::Attribute],
) -> (Vec<syn::Attribute>, Vec<syn::Attribute>) {
    let is_cfg = |a: &syn::Attribute| a.path().is_ident("cfg") || a.path().is_ident("cfg_attr");
    let is_lint = |a: &syn::Attribute| {
        ["allow", "expect", "warn", "deny", "forbid"]
            .iter()
            .any(|lint| a.path().is_ident(lint))
    };
    let cfg: Vec<_> = attrs.iter().filter(|a| is_cfg(a)).cloned().collect();
    let lints: Vec<_> = attrs.iter().filter(|a| is_lint(a)).cloned().collect();
    for a in attrs.iter_mut() {
        if let syn::Meta::List(list) = &mut a.meta {
            if list.path.is_ident("expect") {
                list.path = Ident::new("allow", list.path.span()).into();
            }
        }
    }
    (cfg, lints)
}

/// The rebindings that start a sync (or future-returning) function's body closure: every
/// argument bound to a plain identifier is moved into the closure in declaration order, with
/// its `mut` (taken off the parameter) and lint attributes, so that the arguments drop as the
/// function's own do, after the body's locals, in reverse order (review helper-98: the closure
/// captured only the arguments the body used, dropped in the order it first used them, and
/// the unused ones after the span ended). Pattern arguments keep the closure's capture order,
/// and so do arguments an attribute value names (it may move one: `user = { user }`).
pub(crate) fn closure_rebindings(
    sig: &mut syn::Signature,
    in_attributes: &[Ident],
) -> Vec<TokenStream2> {
    let mut rebind = Vec::new();
    for arg in sig.inputs.iter_mut() {
        let FnArg::Typed(PatType { attrs, pat, .. }) = arg else {
            continue;
        };
        if let Pat::Ident(PatIdent {
            by_ref: None,
            mutability,
            ident,
            subpat: None,
            ..
        }) = &mut **pat
        {
            if in_attributes.contains(ident) {
                continue;
            }
            let (cfg, lints) = rebinding_attrs(attrs);
            let m = mutability.take();
            rebind.push(quote! {
                #(#cfg)* #(#lints)* #[allow(clippy::used_underscore_binding, clippy::no_effect_underscore_binding)]
                let #m #ident = #ident;
            });
        }
    }
    rebind
}
