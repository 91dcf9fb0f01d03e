//! Procedural macros for `agentcore-telemetry`. Use them through the main crate's re-export.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote, quote_spanned};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::visit_mut::VisitMut;
use syn::{
    parse_macro_input, parse_quote, Expr, FnArg, GenericArgument, GenericParam, ItemFn, Lifetime,
    LifetimeParam, LitStr, Pat, PatIdent, PatType, Path, PathArguments, ReturnType, Token, Type,
    TypeParamBound,
};

/// Traces a function with the global tracer (`get_distributed_tracer()`).
///
/// Arguments, all optional:
/// * `name = "op"` (alias `operation_name`): the span name; defaults to the function name.
/// * `kind = SpanKind::Client`: the span kind (the last path segment is used); default
///   `Internal`.
/// * `attributes(key = value, ...)`: attributes set at start; values are any expressions
///   convertible into `agentcore_telemetry::Value` (they may use the arguments).
///
/// Behaviour:
/// * **Sync functions**: the span starts when the function is called, is current while its
///   body runs, and finishes when it returns.
/// * **`async fn`**: the function becomes a plain `fn` returning `impl Future` (same
///   arguments, same output, `Send` when the body is). Calling it captures the context current
///   there; the span starts when the future is first polled, as a child of the context current
///   at that poll or, when nothing is current there (the future was spawned), of the captured
///   one: a `#[trace_operation]` future created in a traced scope and handed to
///   `tokio::spawn` continues its caller's trace. The span is current during every poll only
///   (a context scope: spans and guards the body keeps open across an `.await` stay with it),
///   so parents are right under `join!`, `select!` and on any executor thread.
/// * **Functions returning `impl Future<Output = ..>` or `Pin<Box<dyn Future<Output = ..>>>`**
///   (the "async form", and what `#[async_trait]` generates): the returned future is traced as
///   an `async fn`'s is; the synchronous part of the body runs before the span starts.
/// * **Errors are recognised by type**: any return type that is a `Result` after alias
///   resolution (`Result<T, E>`, `type AgentResult<T> = Result<T, AgentError>`,
///   `anyhow::Result<T>`, `io::Result<T>`, an async output) that returns `Err(e)` records an
///   `exception` event (`exception.type`: the error's type name, or for a `dyn Error` its
///   `Debug` form; `exception.message`: its `Display`, or `Debug` if it has no `Display`) and
///   finishes the span with `Error` status and that message. Any other return (including
///   `Ok(..)`, and any non-`Result` type) finishes it with `Ok` status. A return type that is
///   a generic type parameter counts as non-`Result`.
/// * A panic records an `exception` event and `Error` status and keeps unwinding.
///
/// Limits of the `async fn` rewrite: a parameter type with a lifetime hidden behind a path
/// (`Foo` for `Foo<'a>`) must write it (`Foo<'_>`); put `#[trace_operation]` below
/// `#[tokio::main]` / `#[async_trait]`, which must see the `async fn` first.
///
/// ```
/// use agentcore_telemetry::{get_distributed_tracer, trace_operation, FutureExt, SpanKind, SpanStatus};
///
/// type AgentResult<T> = Result<T, std::io::Error>;
///
/// #[trace_operation(name = "create_agent", kind = SpanKind::Client,
///                   attributes(component = "agent_lifecycle", retries = 3))]
/// async fn create_agent(id: u32) -> AgentResult<u32> {
///     tokio::task::yield_now().await;
///     if id == 0 {
///         return Err(std::io::Error::other("no id"));
///     }
///     Ok(id)
/// }
///
/// #[trace_operation]
/// fn calculate_metrics(data: &[i64]) -> i64 {
///     data.iter().sum()
/// }
///
/// let tracer = get_distributed_tracer();
/// let root = tracer.start_span("request", SpanKind::Server, []);
/// let trace_id = root.trace_id();
/// assert_eq!(calculate_metrics(&[1, 2]), 3);
/// let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
/// // Created here, in the trace; spawned: still a child of `request`.
/// let created = create_agent(0);
/// let root = root.detach();
/// assert!(rt.block_on(async { tokio::spawn(created).await.unwrap() }).is_err());
/// root.end();
///
/// let spans = tracer.get_trace_spans(trace_id);
/// let agent = spans.iter().find(|s| s.name == "create_agent").unwrap();
/// assert_eq!((agent.kind, agent.status), (SpanKind::Client, SpanStatus::Error));
/// assert_eq!(spans.iter().find(|s| s.name == "calculate_metrics").unwrap().status, SpanStatus::Ok);
/// ```
///
/// The rewrite compiles the same in edition 2024, where `impl Trait` captures every lifetime:
///
/// ```edition2024
/// use agentcore_telemetry::{trace_operation, FutureExt};
///
/// struct Agent<'a> {
///     name: &'a str,
/// }
///
/// impl<'a> Agent<'a> {
///     #[trace_operation]
///     async fn greet(&self, greeting: &str) -> String {
///         format!("{greeting}, {}", self.name)
///     }
/// }
///
/// let agent = Agent { name: "a1" };
/// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// assert_eq!(rt.block_on(agent.greet("hello").in_current_context()), "hello, a1");
/// ```
#[proc_macro_attribute]
pub fn trace_operation(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut args = Args::default();
    let parser = syn::meta::parser(|meta| args.parse(meta));
    parse_macro_input!(attr with parser);
    let func = parse_macro_input!(item as ItemFn);
    expand(args, func).into()
}

#[derive(Default)]
struct Args {
    name: Option<LitStr>,
    kind: Option<Path>,
    attributes: Vec<(String, Expr)>,
}

impl Args {
    fn parse(&mut self, meta: syn::meta::ParseNestedMeta<'_>) -> syn::Result<()> {
        if meta.path.is_ident("name") || meta.path.is_ident("operation_name") {
            self.name = Some(meta.value()?.parse()?);
            Ok(())
        } else if meta.path.is_ident("kind") {
            self.kind = Some(meta.value()?.parse()?);
            Ok(())
        } else if meta.path.is_ident("attributes") {
            meta.parse_nested_meta(|inner| {
                let key = inner
                    .path
                    .get_ident()
                    .ok_or_else(|| inner.error("expected `key = value`"))?
                    .to_string();
                let value: Expr = inner.value()?.parse()?;
                self.attributes.push((key, value));
                Ok(())
            })
        } else {
            Err(meta.error("expected `name`, `kind` or `attributes(..)`"))
        }
    }
}

/// The paths the expansion uses.
fn private() -> TokenStream2 {
    quote!(::agentcore_telemetry::distributed::__private)
}

/// `{ use the Verdict* traits; (&&&&&Outcome(#value)).__agentcore_verdict() }` (see the main
/// crate's `tracer/operation.rs`).
fn verdict_of(value: TokenStream2) -> TokenStream2 {
    let p = private();
    quote! {
        {
            #[allow(unused_imports)]
            use #p::{VerdictAnyErr as _, VerdictDebug as _, VerdictDisplay as _,
                     VerdictDisplayDebug as _, VerdictOk as _};
            (&&&&&#p::Outcome(#value)).__agentcore_verdict()
        }
    }
}

/// The output of a future returned as `impl Future<Output = X>` or
/// `Pin<Box<dyn Future<Output = X> + ..>>`, and whether it is boxed.
fn future_output(ty: &Type) -> Option<(Type, bool)> {
    fn output_of_bounds<'a>(bounds: impl IntoIterator<Item = &'a TypeParamBound>) -> Option<Type> {
        bounds.into_iter().find_map(|b| {
            let TypeParamBound::Trait(t) = b else {
                return None;
            };
            let seg = t.path.segments.last()?;
            if seg.ident != "Future" {
                return None;
            }
            let PathArguments::AngleBracketed(args) = &seg.arguments else {
                return None;
            };
            args.args.iter().find_map(|a| match a {
                GenericArgument::AssocType(assoc) if assoc.ident == "Output" => {
                    Some(assoc.ty.clone())
                }
                _ => None,
            })
        })
    }
    fn single_arg<'a>(ty: &'a Type, name: &str) -> Option<&'a Type> {
        let Type::Path(p) = ty else { return None };
        let seg = p.path.segments.last()?;
        if seg.ident != name {
            return None;
        }
        let PathArguments::AngleBracketed(args) = &seg.arguments else {
            return None;
        };
        match args.args.first()? {
            GenericArgument::Type(t) => Some(t),
            _ => None,
        }
    }
    match ty {
        Type::ImplTrait(it) => output_of_bounds(&it.bounds).map(|t| (t, false)),
        Type::Paren(p) => future_output(&p.elem),
        _ => {
            let boxed = single_arg(single_arg(ty, "Pin")?, "Box")?;
            let Type::TraitObject(obj) = boxed else {
                return None;
            };
            output_of_bounds(&obj.bounds).map(|t| (t, true))
        }
    }
}

/// Replaces `impl Trait` with `_`, so a type can annotate a `let`.
struct EraseImplTrait;

impl VisitMut for EraseImplTrait {
    fn visit_type_mut(&mut self, t: &mut Type) {
        if let Type::ImplTrait(_) = t {
            *t = parse_quote!(_);
        } else {
            syn::visit_mut::visit_type_mut(self, t);
        }
    }
}

/// `: T` for `let __agentcore_ret`, or nothing when the type cannot annotate a `let` (`!`).
fn let_annotation(ty: &Type) -> TokenStream2 {
    if let Type::Never(_) = ty {
        return quote!();
    }
    let mut ty = ty.clone();
    EraseImplTrait.visit_type_mut(&mut ty);
    quote!(: #ty)
}

fn expand(args: Args, func: ItemFn) -> TokenStream2 {
    let name = args
        .name
        .as_ref()
        .map(|n| n.value())
        .unwrap_or_else(|| func.sig.ident.to_string());
    let kind = match &args.kind {
        Some(path) => match path.segments.last() {
            Some(seg) => {
                let ident = &seg.ident;
                quote_spanned!(path.span()=> ::agentcore_telemetry::SpanKind::#ident)
            }
            None => quote!(::agentcore_telemetry::SpanKind::Internal),
        },
        None => quote!(::agentcore_telemetry::SpanKind::Internal),
    };
    let attributes = args
        .attributes
        .iter()
        .map(|(k, v)| quote!(::agentcore_telemetry::KeyValue::new(#k, #v)));
    let attributes = quote!([#(#attributes),*]);
    let start = Start {
        name,
        kind,
        attributes,
    };
    if func.sig.asyncness.is_some() {
        return expand_async_fn(&start, func);
    }
    if let ReturnType::Type(_, ty) = &func.sig.output {
        if let Some((_, boxed)) = future_output(ty) {
            return expand_future_fn(&start, func, boxed);
        }
    }
    expand_sync_fn(&start, func)
}

struct Start {
    name: String,
    kind: TokenStream2,
    attributes: TokenStream2,
}

/// A sync function: a current span around the body, which runs in a closure so that
/// `return` and `?` come back to the verdict.
fn expand_sync_fn(start: &Start, func: ItemFn) -> TokenStream2 {
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = func;
    let Start {
        name,
        kind,
        attributes,
    } = start;
    let p = private();
    let annotation = match &sig.output {
        ReturnType::Type(_, ty) => let_annotation(ty),
        ReturnType::Default => quote!(: ()),
    };
    let verdict = verdict_of(quote!(&__agentcore_ret));
    quote! {
        #(#attrs)*
        #vis #sig {
            let mut __agentcore_span = ::agentcore_telemetry::get_distributed_tracer()
                .start_span(#name, #kind, #attributes);
            // A panic unwinds through `__agentcore_span`, whose drop records it.
            let __agentcore_ret #annotation = #p::call_once(move || #block);
            #verdict.apply(&mut __agentcore_span);
            __agentcore_span.end();
            __agentcore_ret
        }
    }
}

/// A function returning a future (`impl Future` or `Pin<Box<dyn Future>>`): the body runs
/// now; the future it returns runs in the operation's span.
fn expand_future_fn(start: &Start, func: ItemFn, boxed: bool) -> TokenStream2 {
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = func;
    let Start {
        name,
        kind,
        attributes,
    } = start;
    let p = private();
    let verdict = verdict_of(quote!(__agentcore_out));
    let future = quote! {
        async move {
            let __agentcore_span = __agentcore_caller.start(#name, #kind, __agentcore_attributes);
            #p::instrument(__agentcore_future, __agentcore_span, |__agentcore_out| #verdict).await
        }
    };
    let future = if boxed {
        quote!(::std::boxed::Box::pin(#future))
    } else {
        future
    };
    quote! {
        #(#attrs)*
        #vis #sig {
            let __agentcore_caller =
                #p::Caller::capture(::agentcore_telemetry::get_distributed_tracer());
            let __agentcore_attributes = #attributes;
            let __agentcore_future = #p::call_once(move || #block);
            #future
        }
    }
}

/// Lifetimes and `Self` that an `async fn`'s future captures, for the `Captures<..>` bound.
struct Captured {
    /// Named lifetimes the inputs mention (declared on the function, or on its `impl`).
    lifetimes: Vec<Lifetime>,
    /// Whether the inputs mention `Self` (a receiver, or `Self` in a type).
    self_type: bool,
}

/// Names every elided lifetime in the inputs (`&T`, `&self`, `'_`) with a fresh
/// `'__agentcore_lifeN`, except inside `fn(..)` pointers and `Fn(..)` bounds, where elision is
/// higher-ranked. Collects the fresh names.
struct NameElided {
    fresh: Vec<Lifetime>,
}

impl NameElided {
    fn next(&mut self, span: Span) -> Lifetime {
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
struct ElideTo(Lifetime);

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

/// Collects named lifetimes and `Self` mentioned in the inputs.
struct Mentions {
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

/// An `async fn`, rewritten as `fn .. -> impl Future<Output = R> + Captures<..>`: calling it
/// captures the caller's context; the future starts the span when first polled.
fn expand_async_fn(start: &Start, func: ItemFn) -> TokenStream2 {
    let ItemFn {
        attrs,
        vis,
        mut sig,
        block,
    } = func;
    let Start {
        name,
        kind,
        attributes,
    } = start;
    let p = private();

    // Inputs: name elided lifetimes; bind every argument to an identifier the outer function
    // moves into the future (`let <pattern> = <identifier>;` inside it, as `async fn` does).
    let mut naming = NameElided { fresh: Vec::new() };
    let mut rebind = Vec::new();
    let mut has_receiver = false;
    for (i, arg) in sig.inputs.iter_mut().enumerate() {
        naming.visit_fn_arg_mut(arg);
        match arg {
            FnArg::Receiver(_) => has_receiver = true,
            FnArg::Typed(PatType { pat, .. }) => match &mut **pat {
                Pat::Ident(PatIdent {
                    by_ref: None,
                    mutability,
                    ident,
                    subpat: None,
                    ..
                }) => {
                    let m = mutability.take();
                    rebind.push(quote!(let #m #ident = #ident;));
                }
                other => {
                    let fresh = format_ident!("__agentcore_arg{}", i);
                    let pattern = std::mem::replace(other, parse_quote!(#fresh));
                    rebind.push(quote!(let #fresh = #fresh; let #pattern = #fresh;));
                }
            },
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

    let mut output: Type = match &sig.output {
        ReturnType::Type(_, ty) => (**ty).clone(),
        ReturnType::Default => parse_quote!(()),
    };
    // Elision, as for the original signature: the receiver's lifetime if it is a reference,
    // else the only lifetime of the inputs.
    let receiver_lifetime = sig.inputs.iter().find_map(|arg| match arg {
        FnArg::Receiver(r) => r.reference.as_ref().and_then(|(_, l)| l.clone()),
        FnArg::Typed(_) => None,
    });
    let mut input_lifetimes = Mentions {
        lifetimes: Vec::new(),
        self_type: false,
    };
    for arg in &sig.inputs {
        if let FnArg::Typed(t) = arg {
            input_lifetimes.visit_type(&t.ty);
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
    sig.asyncness = None;
    sig.output = parse_quote! {
        -> impl ::std::future::Future<Output = #output> + #p::Captures<(#captures)>
    };
    let keep_self = has_receiver.then(|| quote!(let _ = &self;));
    let verdict = verdict_of(quote!(__agentcore_out));
    let allow_refining = quote!(#[allow(refining_impl_trait)]);
    quote! {
        #(#attrs)*
        #allow_refining
        #vis #sig {
            let __agentcore_caller =
                #p::Caller::capture(::agentcore_telemetry::get_distributed_tracer());
            async move {
                #keep_self
                #(#rebind)*
                let __agentcore_span = __agentcore_caller.start(#name, #kind, #attributes);
                #p::instrument(
                    async move {
                        let __agentcore_ret #annotation = #block;
                        #[allow(unreachable_code)]
                        __agentcore_ret
                    },
                    __agentcore_span,
                    |__agentcore_out| #verdict,
                )
                .await
            }
        }
    }
}
