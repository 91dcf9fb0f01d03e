//! The expansion: what `#[trace_operation]` writes around a sync function's body, or a
//! future-returning one's, and what every form shares (the crate's paths, the verdict, the
//! expansion's own identifiers). An `async fn` is `async_fn`'s.

use proc_macro2::{Ident, Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::visit_mut::VisitMut;
use syn::{ItemFn, ReturnType};

use crate::args::Args;
use crate::async_fn::expand_async_fn;
use crate::body::{attribute_value, closure_rebindings, run_body};
use crate::fragments::ParenthesizeGroups;
use crate::types::{future_output, is_impl_trait, is_never, let_annotation, EraseImplTrait};

/// The paths the expansion uses, under `krate` (`::agentcore_telemetry`, or `crate = ".."`).
pub(crate) fn private(krate: &TokenStream2) -> TokenStream2 {
    quote!(#krate::distributed::__private)
}

/// `{ use the Verdict* traits; (&&&&&Outcome(#value)).__agentcore_verdict(#recording) }` (see
/// the main crate's `distributed/operation.rs`): `recording` says whether the span records, so
/// that an `Err` is formatted only for one that does.
pub(crate) fn verdict_of(
    krate: &TokenStream2,
    value: TokenStream2,
    recording: TokenStream2,
) -> TokenStream2 {
    let p = private(krate);
    quote! {
        {
            #[allow(unused_imports)]
            use #p::{VerdictAnyErr as _, VerdictDebug as _, VerdictDisplay as _,
                     VerdictDisplayDebug as _, VerdictOk as _};
            (&&&&&#p::Outcome(#value)).__agentcore_verdict(#recording)
        }
    }
}

/// An identifier of the expansion's own (`__agentcore_span`, ...), invisible to the user's code
/// (`mixed_site` hygiene: a parameter or local of the user's spelled the same is another
/// variable; review helper-98 found `fn f(__agentcore_span: i32)` reading the macro's span).
pub(crate) fn local(name: &str) -> Ident {
    Ident::new(name, Span::mixed_site())
}

pub(crate) fn expand(mut args: Args, mut func: ItemFn) -> TokenStream2 {
    // An inner attribute of the body (`{ #![allow(clippy::cast_possible_truncation)] .. }`) is
    // the function's: syn hands it over with the outer ones, and the expansion writes them all
    // before the function, where an inner one is an error ("an inner attribute is not
    // permitted in this context"; review helper-159). Written as an outer one, it is the same
    // attribute of the same function.
    for attr in &mut func.attrs {
        attr.style = syn::AttrStyle::Outer;
    }
    ParenthesizeGroups.visit_signature_mut(&mut func.sig);
    ParenthesizeGroups.visit_block_mut(&mut func.block);
    for (_, value) in &mut args.attributes {
        ParenthesizeGroups.visit_expr_mut(value);
    }
    if let Some(constness) = &func.sig.constness {
        // A `const fn` may run at compile time, where there is no tracer: refused here with one
        // error, not by the compiler with one per non-const call of the expansion. The function
        // stays as written, so its callers see no second error.
        let error = syn::Error::new_spanned(
            constness,
            "cannot trace a `const fn` (it may run at compile time, where there is no tracer); \
             remove `const` or `#[trace_operation]`",
        )
        .into_compile_error();
        return quote!(#error #func);
    }
    let name = args
        .name
        .as_ref()
        .map(|n| n.value())
        // `r#match` is named `match`: the prefix only escapes a keyword.
        .unwrap_or_else(|| func.sig.ident.unraw().to_string());
    let krate = match &args.krate {
        Some(path) => quote!(#path),
        None => quote!(::agentcore_telemetry),
    };
    let kind = match &args.kind {
        Some(path) => match path.segments.last() {
            Some(seg) => {
                let ident = &seg.ident;
                quote_spanned!(path.span()=> #krate::SpanKind::#ident)
            }
            None => quote!(#krate::SpanKind::Internal),
        },
        None => quote!(#krate::SpanKind::Internal),
    };
    let attributes = args.attributes.iter().map(|(k, v)| {
        let v = attribute_value(v);
        quote!(#krate::KeyValue::new(#k, #v))
    });
    let attributes = quote!([#(#attributes),*]);
    let mut mentioned = Mentioned(Vec::new());
    for (_, v) in &args.attributes {
        mentioned.visit_expr(v);
    }
    let start = Start {
        krate,
        name,
        kind,
        attributes,
        in_attributes: mentioned.0,
    };
    if func.sig.asyncness.is_some() {
        if let Some(span) = args.boxed_future {
            // It was silently ignored (review helper-98).
            let error = syn::Error::new(
                span,
                "`boxed_future` is for a function that returns a future (`-> impl Future`, \
                 boxed as `Pin<Box<dyn Future>>`); remove it from an `async fn`",
            )
            .into_compile_error();
            return quote!(#error #func);
        }
        return expand_async_fn(&start, func);
    }
    if args.boxed_future.is_some() {
        return expand_future_fn(&start, func, true);
    }
    if let ReturnType::Type(_, ty) = &func.sig.output {
        if let Some((_, boxed)) = future_output(ty) {
            return expand_future_fn(&start, func, boxed);
        }
    }
    expand_sync_fn(&start, func)
}

pub(crate) struct Start {
    pub(crate) krate: TokenStream2,
    pub(crate) name: String,
    pub(crate) kind: TokenStream2,
    pub(crate) attributes: TokenStream2,
    /// The names the attribute values mention: arguments the body's rebindings leave alone,
    /// as a value may move one (`attributes(user = { user })`, documented above).
    pub(crate) in_attributes: Vec<Ident>,
}

/// The single-segment paths (`user`, not `self.user`'s `self` only) an attribute value
/// mentions, tokens inside macros included, where an argument may be named.
pub(crate) struct Mentioned(Vec<Ident>);

impl<'a> Visit<'a> for Mentioned {
    fn visit_expr_path(&mut self, p: &'a syn::ExprPath) {
        if let Some(ident) = p.path.get_ident() {
            self.0.push(ident.clone());
        }
        syn::visit::visit_expr_path(self, p);
    }
    fn visit_macro(&mut self, m: &'a syn::Macro) {
        fn idents(tokens: TokenStream2, out: &mut Vec<Ident>) {
            for t in tokens {
                match t {
                    proc_macro2::TokenTree::Ident(i) => out.push(i),
                    proc_macro2::TokenTree::Group(g) => idents(g.stream(), out),
                    _ => {}
                }
            }
        }
        idents(m.tokens.clone(), &mut self.0);
    }
}

/// A sync function: a current span around the body, which runs in a closure so that
/// `return` and `?` come back to the verdict.
pub(crate) fn expand_sync_fn(start: &Start, func: ItemFn) -> TokenStream2 {
    let v_span = local("__agentcore_span");
    let v_ret = local("__agentcore_ret");
    let ItemFn {
        attrs,
        vis,
        mut sig,
        block,
    } = func;
    let Start {
        krate,
        name,
        kind,
        attributes,
        in_attributes,
    } = start;
    if matches!(&sig.output, ReturnType::Type(_, ty) if is_impl_trait(ty)) {
        // `-> impl Trait` (not a future: see `expand_future_fn`): the body stays the function's
        // own, where what it returns infers from the declared type (a closure returned as
        // `impl Fn(&str) -> &str` takes its signature from it; in the expansion's closure,
        // whose output is `_`, `|s| s.trim()` read "type annotations needed": review
        // helper-159). An opaque type is no `Result`: `OkOnReturn` gives `Ok` status on
        // return. The arguments are moved in after the span starts, dropped before it ends.
        let p = private(krate);
        let rebind = closure_rebindings(&mut sig, in_attributes);
        let stmts = &block.stmts;
        return quote! {
            #(#attrs)*
            #vis #sig {
                #[allow(unused_braces)] // an attribute value `{ arg }` moves `arg` (documented)
                let #v_span = #p::OkOnReturn::new(#krate::get_distributed_tracer()
                    .start_span(#name, #kind, #attributes));
                #(#rebind)*
                #(#stmts)*
            }
        };
    }
    let annotation = match &sig.output {
        ReturnType::Type(_, ty) => let_annotation(ty),
        ReturnType::Default => quote!(: ()),
    };
    let body = run_body(krate, &attrs, &mut sig, *block, in_attributes);
    if matches!(&sig.output, ReturnType::Type(_, ty) if is_never(ty)) {
        // `-> !`: it can only unwind (recorded by the span's drop) or never finish.
        return quote! {
            #(#attrs)*
            #vis #sig {
                #[allow(unused_braces)] // an attribute value `{ arg }` moves `arg` (documented)
                let #v_span = #krate::get_distributed_tracer()
                    .start_span(#name, #kind, #attributes);
                #body
            }
        };
    }
    let verdict = verdict_of(krate, quote!(&#v_ret), quote!(#v_span.is_recording()));
    quote! {
        #(#attrs)*
        #vis #sig {
            #[allow(unused_braces)] // an attribute value `{ arg }` moves `arg` (documented)
            let mut #v_span = #krate::get_distributed_tracer()
                .start_span(#name, #kind, #attributes);
            // A panic unwinds through `__agentcore_span`, whose drop records it. (An inline
            // body's own diverging tail is not a diverging sub-expression of this `let`.)
            #[allow(clippy::diverging_sub_expression)]
            let #v_ret #annotation = #body;
            // An inline (`#[track_caller]`) body that always diverges makes the rest
            // unreachable.
            #[allow(unreachable_code)]
            let #v_ret = {
                #verdict.apply(&mut #v_span);
                #v_span.end();
                #v_ret
            };
            #v_ret
        }
    }
}

/// A function returning a future (`impl Future` or `Pin<Box<dyn Future>>`): the body runs
/// now; the future it returns runs in the operation's span.
pub(crate) fn expand_future_fn(start: &Start, func: ItemFn, boxed: bool) -> TokenStream2 {
    let v_caller = local("__agentcore_caller");
    let v_future = local("__agentcore_future");
    let v_attributes = local("__agentcore_attributes");
    let v_out = local("__agentcore_out");
    let v_recording = local("__agentcore_recording");
    let ItemFn {
        attrs,
        vis,
        mut sig,
        block,
    } = func;
    let Start {
        krate,
        name,
        kind,
        attributes,
        in_attributes,
    } = start;
    let p = private(krate);
    let body = run_body(krate, &attrs, &mut sig, *block, in_attributes);
    let annotation = match &sig.output {
        ReturnType::Type(_, ty) => let_annotation(ty),
        ReturnType::Default => quote!(),
    };
    let verdict = verdict_of(krate, quote!(#v_out), quote!(#v_recording));
    // The output as declared (`impl Trait` in it erased). The body's future is `_` to the
    // expansion, and its output was still open where the verdict was looked up when the body
    // left it to the declared type (`async move { let n = v.parse()?; Ok(n) }` in a `-> impl
    // Future<Output = Result<u32, E>>`): the lookup took `Result<_, _>` for one whose error is
    // `Display`, and with an `E` that is only `Debug` the function did not compile (review
    // helper-159).
    let out_type = match &sig.output {
        ReturnType::Type(_, ty) => future_output(ty).map(|(mut t, _)| {
            EraseImplTrait.visit_type_mut(&mut t);
            quote!(: &#t)
        }),
        ReturnType::Default => None,
    };
    // `Traced`, not an `async` block: `Unpin` when the body's future is (review helper-98).
    let future = quote! {
        #p::traced(#v_caller, #name, #kind, #v_attributes, #v_future, |#v_out #out_type, #v_recording| #verdict)
    };
    let future = if boxed {
        quote!(::std::boxed::Box::pin(#future))
    } else {
        future
    };
    quote! {
        #(#attrs)*
        #vis #sig {
            let #v_caller =
                #p::Caller::capture(#krate::get_distributed_tracer());
            #[allow(unused_braces)] // an attribute value `{ arg }` moves `arg` (documented)
            let #v_attributes = #attributes;
            #[allow(clippy::diverging_sub_expression)]
            let #v_future #annotation = #body;
            #[allow(unreachable_code)]
            let #v_future = #future;
            #v_future
        }
    }
}
