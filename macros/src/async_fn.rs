//! An `async fn`: rewritten as `fn .. -> impl Future<Output = R> + Captures<..>`, its elided
//! lifetimes named, its `return`s coerced to the declared output.

use proc_macro2::{Ident, Span, TokenStream as TokenStream2};
use quote::quote;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::visit_mut::VisitMut;
use syn::{
    parse_quote, Expr, FnArg, GenericParam, ItemFn, Lifetime, LifetimeParam, Pat, PatIdent,
    PatType, Path, ReturnType, Token, Type,
};

use crate::body::rebinding_attrs;
use crate::expand::{local, private, verdict_of, Start};
use crate::types::{is_never, let_annotation, EraseImplTrait, SelfReferences};

/// Lifetimes and `Self` that an `async fn`'s future captures, for the `Captures<..>` bound.
pub(crate) struct Captured {
    /// Named lifetimes the inputs mention (declared on the function, or on its `impl`).
    pub(crate) lifetimes: Vec<Lifetime>,
    /// Whether the inputs mention `Self` (a receiver, or `Self` in a type).
    pub(crate) self_type: bool,
}

/// Names every elided lifetime in the inputs (`&T`, `&self`, `'_`) with a fresh
/// `'__agentcore_lifeN`, except inside `fn(..)` pointers and `Fn(..)` bounds, where elision is
/// higher-ranked. Collects the fresh names.
pub(crate) struct NameElided {
    fresh: Vec<Lifetime>,
}

impl NameElided {
    fn next(&mut self, span: Span) -> Lifetime {
        // At the elided reference in the user's code (for errors), of the expansion's making
        // for lints: clippy's `needless_lifetimes` took one in a `macro_rules!`-generated
        // function for the user's own and asked to elide it (review helper-159).
        let span = span.resolved_at(Span::mixed_site());
        let l = Lifetime::new(&format!("'__agentcore_life{}", self.fresh.len()), span);
        self.fresh.push(l.clone());
        l
    }
}

impl VisitMut for NameElided {
    fn visit_type_reference_mut(&mut self, r: &mut syn::TypeReference) {
        if r.lifetime.is_none() {
            r.lifetime = Some(self.next(r.and_token.span));
        }
        syn::visit_mut::visit_type_reference_mut(self, r);
    }
    fn visit_lifetime_mut(&mut self, l: &mut Lifetime) {
        if l.ident == "_" {
            *l = self.next(l.span());
        }
    }
    fn visit_receiver_mut(&mut self, r: &mut syn::Receiver) {
        if let Some((_, lifetime @ None)) = &mut r.reference {
            let fresh = self.next(r.self_token.span);
            *lifetime = Some(fresh.clone());
            // `&self`'s type is spelled out as `&Self` too; keep them in agreement.
            if let Type::Reference(t) = &mut *r.ty {
                t.lifetime = Some(fresh);
            }
        }
        syn::visit_mut::visit_receiver_mut(self, r);
    }
    fn visit_type_bare_fn_mut(&mut self, _: &mut syn::TypeBareFn) {}
    fn visit_parenthesized_generic_arguments_mut(
        &mut self,
        _: &mut syn::ParenthesizedGenericArguments,
    ) {
    }
}

/// Gives the output's elided lifetimes the one fn elision would pick, spelled out (the
/// inputs' are named now, and `mismatched_lifetime_syntaxes` flags `&'a self .. -> &T`).
pub(crate) struct ElideTo(Lifetime);

impl VisitMut for ElideTo {
    fn visit_type_reference_mut(&mut self, r: &mut syn::TypeReference) {
        if r.lifetime.is_none() {
            r.lifetime = Some(self.0.clone());
        }
        syn::visit_mut::visit_type_reference_mut(self, r);
    }
    fn visit_lifetime_mut(&mut self, l: &mut Lifetime) {
        if l.ident == "_" {
            *l = self.0.clone();
        }
    }
    fn visit_type_bare_fn_mut(&mut self, _: &mut syn::TypeBareFn) {}
    fn visit_parenthesized_generic_arguments_mut(
        &mut self,
        _: &mut syn::ParenthesizedGenericArguments,
    ) {
    }
}

/// Collects the names a pattern binds.
pub(crate) struct Binds(Vec<Ident>);

impl<'ast> Visit<'ast> for Binds {
    fn visit_pat_ident(&mut self, p: &'ast PatIdent) {
        self.0.push(p.ident.clone());
        syn::visit::visit_pat_ident(self, p);
    }
}

/// Collects named lifetimes and `Self` mentioned in the inputs.
pub(crate) struct Mentions {
    lifetimes: Vec<Lifetime>,
    self_type: bool,
}

impl<'ast> Visit<'ast> for Mentions {
    fn visit_lifetime(&mut self, l: &'ast Lifetime) {
        if l.ident != "static" && l.ident != "_" && !self.lifetimes.contains(l) {
            self.lifetimes.push(l.clone());
        }
    }
    fn visit_receiver(&mut self, r: &'ast syn::Receiver) {
        self.self_type = true;
        syn::visit::visit_receiver(self, r);
    }
    fn visit_path(&mut self, p: &'ast Path) {
        if p.segments.first().is_some_and(|s| s.ident == "Self") {
            self.self_type = true;
        }
        syn::visit::visit_path(self, p);
    }
    // Lifetimes bound inside `for<'a>` and `fn(&'a ..)` are not the function's.
    fn visit_type_bare_fn(&mut self, _: &'ast syn::TypeBareFn) {}
    fn visit_bound_lifetimes(&mut self, _: &'ast syn::BoundLifetimes) {}
}

/// Rewrites the `return value`s of an `async fn`'s body (not those of its closures, async
/// blocks or items) as `return ::core::convert::identity::<R>(value)`, `R` its declared output:
/// the body runs in an `async` block whose output type the first `return` decides, so without
/// the declared type a `return Box::new(1u8)` in a `-> Box<dyn Debug>` function was not
/// coerced and did not compile (review helper-98; the sync path's closure has it from
/// `call_once::<R, _>`).
pub(crate) struct CoerceReturns<'a>(&'a Type);

impl VisitMut for CoerceReturns<'_> {
    fn visit_expr_mut(&mut self, e: &mut Expr) {
        if let Expr::Closure(_) | Expr::Async(_) | Expr::Const(_) = e {
            return;
        }
        syn::visit_mut::visit_expr_mut(self, e);
        if let Expr::Return(r) = e {
            if let Some(value) = r.expr.take() {
                let ty = self.0;
                r.expr = Some(Box::new(
                    parse_quote!(::core::convert::identity::<#ty>(#value)),
                ));
            }
        }
    }
    fn visit_item_mut(&mut self, _: &mut syn::Item) {}
}

/// An `async fn`, rewritten as `fn .. -> impl Future<Output = R> + Captures<..>`: calling it
/// captures the caller's context; the future starts the span when first polled.
pub(crate) fn expand_async_fn(start: &Start, func: ItemFn) -> TokenStream2 {
    let v_span = local("__agentcore_span");
    let v_ret = local("__agentcore_ret");
    let v_caller = local("__agentcore_caller");
    let v_out = local("__agentcore_out");
    let v_recording = local("__agentcore_recording");
    let ItemFn {
        mut attrs,
        vis,
        mut sig,
        block,
    } = func;
    // The function is no longer `async` (it returns `impl Future`), so a lint the user expects
    // of their `async fn` (`#[expect(clippy::unused_async)]`) may not fire on it, and an unmet
    // expectation is a warning of its own: it becomes an `allow` (review helper-98), as a
    // parameter's does below.
    for a in attrs.iter_mut() {
        if let syn::Meta::List(list) = &mut a.meta {
            if list.path.is_ident("expect") {
                list.path = Ident::new("allow", list.path.span()).into();
            }
        }
    }
    let Start {
        krate,
        name,
        kind,
        attributes,
        in_attributes,
    } = start;
    let p = private(krate);

    // Inputs: name elided lifetimes; bind every argument to an identifier the outer function
    // moves into the future (`let <pattern> = <identifier>;` inside it, as `async fn` does).
    let mut naming = NameElided { fresh: Vec::new() };
    let mut rebind = Vec::new();
    let mut inner_rebind = Vec::new();
    let mut has_receiver = false;
    for (i, arg) in sig.inputs.iter_mut().enumerate() {
        naming.visit_fn_arg_mut(arg);
        match arg {
            FnArg::Receiver(_) => has_receiver = true,
            FnArg::Typed(PatType { attrs, pat, .. }) => {
                let (cfg, lints) = rebinding_attrs(attrs);
                match &mut **pat {
                    Pat::Ident(PatIdent {
                        by_ref: None,
                        mutability,
                        ident,
                        subpat: None,
                        ..
                    }) => {
                        // Moved into the future here, and again into the body's future (with the
                        // parameter's `mut` and lint attributes, as the body uses that one), so
                        // that every argument is dropped where an `async fn` drops it: after the
                        // body's locals, in reverse order (review helper-98: the body's future
                        // captured only the arguments it used, in the order it used them).
                        let m = mutability.take();
                        if in_attributes.contains(ident) {
                            // An attribute value may move it (`user = { user }`): bound once,
                            // as before, and the body's future captures it as it uses it.
                            rebind.push(quote! {
                                #(#cfg)* #(#lints)* #[allow(clippy::used_underscore_binding, clippy::no_effect_underscore_binding)]
                                let #m #ident = #ident;
                            });
                            continue;
                        }
                        rebind.push(quote! {
                            #(#cfg)* #[allow(clippy::used_underscore_binding, clippy::no_effect_underscore_binding)]
                            let #ident = #ident;
                        });
                        inner_rebind.push(quote! {
                            #(#cfg)* #(#lints)* #[allow(clippy::used_underscore_binding, clippy::no_effect_underscore_binding)]
                            let #m #ident = #ident;
                        });
                    }
                    other => {
                        // Hygienic, as the expansion's other locals: a parameter of the
                        // user's spelled `__agentcore_arg0` is another one (review
                        // helper-120: "identifier `__agentcore_arg0` is bound more than once").
                        let fresh = local(&format!("__agentcore_arg{i}"));
                        let pattern = std::mem::replace(other, parse_quote!(#fresh));
                        let mut binds = Binds(Vec::new());
                        binds.visit_pat(&pattern);
                        if binds.0.iter().any(|b| in_attributes.contains(b)) {
                            // An attribute value names a binding: the pattern is matched
                            // before the span starts, and the body's future captures the
                            // bindings as it uses them (documented).
                            rebind.push(quote! {
                                #(#cfg)*
                                #[allow(clippy::used_underscore_binding, clippy::no_effect_underscore_binding)]
                                let #fresh = #fresh;
                                #(#cfg)* #(#lints)* let #pattern = #fresh;
                            });
                            continue;
                        }
                        // Matched in the body's future, as `async fn` does (`let <pattern> =
                        // <identifier>;` there): what the pattern does not move (`_`, `(g, _)`,
                        // a binding the body never uses) stays in the body's future, dropped
                        // with its locals, in its scope. Matched in the outer future, it
                        // stayed there when the body did not use it, and a future cancelled
                        // after its first poll dropped it outside its scope, in the canceller's
                        // context (review helper-129: a drop guard `_: CleanUp` started its span
                        // in another trace).
                        rebind.push(quote! {
                            #(#cfg)*
                            #[allow(clippy::used_underscore_binding, clippy::no_effect_underscore_binding)]
                            let #fresh = #fresh;
                        });
                        inner_rebind.push(quote! {
                            #(#cfg)*
                            #[allow(clippy::used_underscore_binding, clippy::no_effect_underscore_binding)]
                            let #fresh = #fresh;
                            #(#cfg)* #(#lints)* let #pattern = #fresh;
                        });
                    }
                }
            }
        }
    }
    for l in &naming.fresh {
        sig.generics
            .params
            .push(GenericParam::Lifetime(LifetimeParam::new(l.clone())));
    }
    let mut mentions = Mentions {
        lifetimes: Vec::new(),
        self_type: false,
    };
    for arg in &sig.inputs {
        mentions.visit_fn_arg(arg);
    }
    for param in &sig.generics.params {
        if let GenericParam::Lifetime(l) = param {
            if !mentions.lifetimes.contains(&l.lifetime) {
                mentions.lifetimes.push(l.lifetime.clone());
            }
        }
    }
    let captured = Captured {
        lifetimes: mentions.lifetimes,
        self_type: mentions.self_type,
    };
    let mut captures: Punctuated<TokenStream2, Token![,]> =
        captured.lifetimes.iter().map(|l| quote!(&#l ())).collect();
    if captured.self_type {
        captures.push(quote!(Self));
    }
    if !captures.trailing_punct() && !captures.is_empty() {
        captures.push_punct(Default::default());
    }

    let never = matches!(&sig.output, ReturnType::Type(_, ty) if is_never(ty));
    let mut output: Type = match &sig.output {
        // `async fn .. -> !` is stable, `impl Future<Output = !>` is not: `!` by another name.
        ReturnType::Type(..) if never => parse_quote!(#p::Never),
        ReturnType::Type(_, ty) => (**ty).clone(),
        ReturnType::Default => parse_quote!(()),
    };
    // Elision, as for the original signature: the lifetime of the receiver's reference to
    // `Self` if it has one (`&self`, `&mut self`, `self: &Self`, `self: Pin<&mut Self>`,
    // `self: &Arc<Self>`), else the only lifetime of the inputs (the receiver's type included).
    let receiver_lifetime = sig.inputs.iter().find_map(|arg| match arg {
        FnArg::Receiver(r) => {
            let mut refs = SelfReferences(Vec::new());
            refs.visit_type(&r.ty);
            match refs.0.as_slice() {
                [one] => Some(one.clone()),
                _ => None,
            }
        }
        FnArg::Typed(_) => None,
    });
    let mut input_lifetimes = Mentions {
        lifetimes: Vec::new(),
        self_type: false,
    };
    for arg in &sig.inputs {
        match arg {
            FnArg::Receiver(r) => input_lifetimes.visit_type(&r.ty),
            FnArg::Typed(t) => input_lifetimes.visit_type(&t.ty),
        }
    }
    let only_input_lifetime = match input_lifetimes.lifetimes.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    };
    if let Some(target) = receiver_lifetime.or(only_input_lifetime) {
        ElideTo(target).visit_type_mut(&mut output);
    }
    let annotation = let_annotation(&output);
    let mut block = block;
    if !never {
        let mut declared = output.clone();
        EraseImplTrait.visit_type_mut(&mut declared);
        CoerceReturns(&declared).visit_block_mut(&mut block);
    }
    sig.asyncness = None;
    sig.output = parse_quote! {
        -> impl ::std::future::Future<Output = #output> + #p::Captures<(#captures)>
    };
    let keep_self = has_receiver.then(|| quote!(let _ = &self;));
    let verdict = verdict_of(krate, quote!(#v_out), quote!(#v_recording));
    // A body that diverges leaves its future's output to inference, which the verdict's
    // lookup would settle as a `Result`: `!` is written out.
    let out = if never {
        quote!(#v_out: &#p::Never)
    } else {
        quote!(#v_out)
    };
    let allow_refining = quote!(#[allow(refining_impl_trait)]);
    quote! {
        #(#attrs)*
        #allow_refining
        #vis #sig {
            let #v_caller =
                #p::Caller::capture(#krate::get_distributed_tracer());
            // Dropped before its first poll, the future drops the arguments in the caller's
            // context (see `Unstarted`).
            #p::Unstarted::new(#v_caller, move |#v_caller| async move {
                #keep_self
                #(#rebind)*
                #[allow(unused_braces)] // an attribute value `{ arg }` moves `arg` (documented)
                let #v_span = #v_caller.start(#name, #kind, #attributes);
                #p::instrument(
                    async move {
                        // `self` moves into the body's future whole, as the other arguments
                        // do: captured only as the body uses it (not at all, a `Copy` field),
                        // a `self` taken by value stayed in the outer future and was dropped
                        // outside the operation's scope: after its span ended, or where the
                        // future was cancelled (review helper-129).
                        #keep_self
                        #(#inner_rebind)*
                        #[allow(clippy::diverging_sub_expression)]
                        let #v_ret #annotation = #block;
                        #[allow(unreachable_code)]
                        #v_ret
                    },
                    #v_span,
                    |#out, #v_recording| #verdict,
                )
                .await
            })
        }
    }
}
