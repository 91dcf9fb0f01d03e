//! Procedural macros for `agentcore-telemetry`. Use them through the main crate's re-export.

mod fragments;

use proc_macro::TokenStream;
use proc_macro2::{Ident, Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::visit_mut::VisitMut;
use syn::{
    parse_quote, Expr, FnArg, GenericArgument, GenericParam, ItemFn, Lifetime, LifetimeParam,
    LitStr, Pat, PatIdent, PatType, Path, PathArguments, ReturnType, Token, Type, TypeParamBound,
};

/// Traces a function with the global tracer (`get_distributed_tracer()`).
///
/// Arguments, all optional, each at most once (and each attribute key):
/// * `name = "op"` (alias `operation_name`): the span name, not empty; defaults to the
///   function name.
/// * `kind = SpanKind::Client`: the span kind (the last path segment is used); default
///   `Internal`.
/// * `attributes(key = value, ...)`: attributes set at start; a key is an identifier or a
///   string (`"http.request.method" = "GET"`: OpenTelemetry's keys are dotted); values are
///   any expressions convertible into `agentcore_telemetry::Value` (they may use the
///   arguments). A value that is a plain path or field access (`user`, `self.name`,
///   `LIMIT`) is cloned (`Clone::clone(&user)`, so its type must be `Clone`, as all of
///   `Value`'s own conversions are), so naming an argument does not move it out of the body;
///   any other expression (`user.len() as i64`, `image.to_string()`, `{ user }` to move it)
///   is evaluated as written.
/// * `boxed_future`: the return type is a boxed future (`Pin<Box<dyn Future<Output = ..>>>`)
///   spelled through an alias the macro does not recognise (see below); trace it as one.
/// * `crate = "path"`: where the expansion finds this library, `::agentcore_telemetry` by
///   default; for a renamed dependency (`telemetry = { package = "agentcore-telemetry", .. }`:
///   `crate = "telemetry"`) or a re-export (`crate = "my_runtime::telemetry"`).
///
/// Behaviour:
/// * **Sync functions**: the span starts when the function is called, is current while its
///   body runs, and finishes when it returns. One that returns `impl Trait` (not a future:
///   `impl Iterator`, `impl Fn(&str) -> &str`) keeps its body as its own, where what it returns
///   infers from the declared type; its pattern arguments and those an attribute value names
///   are dropped after the span ends, as the function's own.
/// * **`async fn`**: the function becomes a plain `fn` returning `impl Future` (same
///   arguments, same output, `Send` when the body is). Calling it captures the context current
///   there; the span starts when the future is first polled, as a child of the context it
///   is run in there (`op().in_context(&span)`, `in_span`, an enclosing scoped future), else
///   of the captured context, else of the context current at that poll: a span or guard
///   merely open on the polling thread does not win over the captured context, so a
///   `#[trace_operation]` future created in a traced scope and handed to `tokio::spawn`
///   continues its caller's trace, on any runtime (a current-thread runtime polls it under
///   what its `block_on` caller has current, another trace). The span is
///   current during every poll only (a context scope: spans and guards the body keeps open
///   across an `.await` stay with it), so parents are right under `join!`, `select!` and on
///   any executor thread. A future dropped before its first poll (a task aborted before it
///   ran) drops its arguments by the same rule: in the context a scope runs it in there,
///   else in the captured context.
/// * **Functions returning a future** (the "async form", and what `#[async_trait]`
///   generates): the returned future is traced as an `async fn`'s is; the synchronous part of
///   the body runs before the span starts. Futures are recognised by *spelling*, before alias
///   resolution (a macro sees no types): `impl Future<Output = ..>` (`+ ..`; the traced
///   future is `Unpin` when the body's is),
///   `Pin<Box<dyn Future<Output = ..> + ..>>` (any path to `Pin`, `Box` and `Future`: the last
///   segment counts), and `BoxFuture<'a, T>` / `LocalBoxFuture<'a, T>` (by the last segment,
///   as `futures::future::BoxFuture`). Any other alias hides the future: the function would be
///   traced as a sync one (the span ends when the future is created, and its output is never
///   seen); write `#[trace_operation(boxed_future)]` for a boxed one.
/// * **Errors are recognised by type**: any return type that is a `Result` after alias
///   resolution (`Result<T, E>`, `type AgentResult<T> = Result<T, AgentError>`,
///   `anyhow::Result<T>`, `io::Result<T>`, an async output) that returns `Err(e)` records an
///   `exception` event (`exception.type`: the error's type name, or for a `dyn Error` its
///   `Debug` form; `exception.message`: its `Display`, or `Debug` if it has no `Display`,
///   or its type name if it has neither) and finishes the span with `Error` status and that
///   message. Any other return (including `Ok(..)`, and any non-`Result` type) finishes it
///   with `Ok` status. A return type that is a generic type parameter counts as non-`Result`.
/// * A panic records an `exception` event and `Error` status and keeps unwinding.
/// * A `const fn` is refused (a compile error): it may run at compile time, with no tracer.
///
/// Limits of the `async fn` rewrite: a parameter type with a lifetime hidden behind a path
/// (`Foo` for `Foo<'a>`) must write it (`Foo<'_>`); an elided output lifetime follows Rust's
/// elision rules, where the receiver rule looks for a reference to `Self` written as `Self`
/// (`&self`, `self: &Self`, `self: Pin<&mut Self>`, `self: &Arc<Self>`; not `self: &Agent`); put
/// `#[trace_operation]` below `#[tokio::main]` / `#[async_trait]`, which must see the
/// `async fn` first. Parameters may carry `#[cfg]` / `#[cfg_attr]` and lint attributes
/// (`#[allow(unused_variables)]`, `#[expect(..)]`); an `#[expect(..)]` on the function becomes
/// an `#[allow(..)]` (the function is no longer `async`, so a lint about that may not fire).
///
/// What the expansion keeps as the function was: the return value (an `async fn`'s `return`s
/// are coerced to its declared output), the order in which arguments bound to a plain name
/// are dropped (after the body's locals, in reverse order, `self` last; an `async fn`'s pattern arguments
/// too, matched in the body's future as `async fn` does, so that what the pattern leaves (`_`)
/// is dropped in the operation's scope, also when it is cancelled; a sync function's pattern
/// arguments, and arguments an attribute value names, are dropped as the body's closure or
/// future captured them), `Send`,
/// a future-returning function's `Unpin`,
/// and the names the body sees (the expansion's own locals are hygienic). What it does not keep, known (review helper-98):
/// * `#[must_use]` on an `async fn` no longer warns about an unused awaited output (rustc
///   applies it to the `.await` only for a real `async fn`).
/// * A string-slice argument named in `attributes(..)` must be `&'static str`: an attribute
///   `Value` owns or borrows for `'static`; for a borrowed one write `key = key.to_owned()`.
/// * An `async fn` whose output is `impl Trait`, and a sync function whose return type holds
///   one without being one (`Option<impl Fn(&str) -> &str>`), give what the body returns no
///   declared type to infer from (review helper-159): a closure returned there needs its
///   parameters' types written (`|s: &str| s.trim()`), "type annotations needed" otherwise.
/// * A traced function that returns a guard of another trace it started (`start_trace`)
///   ends its own span below that guard's frame, which the tracer counts as misuse
///   (`spans_ended_out_of_context`) and reports once.
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
///
/// `#[track_caller]` keeps working on a sync (or future-returning) function: its body then
/// runs inline (a closure cannot be `#[track_caller]` on stable Rust) in a labeled block,
/// where `return e` becomes a `break` with `e` and `?` (on `Result`, with `From`, or on
/// `Option`) a `match` that breaks with the early value, so both still reach the verdict
/// (closures, async blocks and items inside keep their own). A macro in such a body that
/// could hide a `return` or `?` is refused; only the standard library's formatting, assertion
/// and panic macros (`format!`, `println!`, `write!`, `assert!`, `panic!`, `vec!`, ...)
/// without a `return`, a `?` or another macro call in their arguments are accepted (they
/// are recognised by name, so a macro of your own named `vec` or `write` is trusted too):
///
/// ```compile_fail
/// # use agentcore_telemetry::trace_operation;
/// macro_rules! bail {
///     ($e:expr) => {
///         return Err($e)
///     };
/// }
///
/// #[trace_operation]
/// #[track_caller]
/// fn checked(v: Option<u8>) -> Result<u8, String> {
///     if v.is_none() {
///         bail!("none".to_string()); // error: cannot see a `return` or `?` inside `bail!`
///     }
///     Ok(v.unwrap())
/// }
/// ```
///
/// A macro nested in an accepted one's arguments is looked at too:
///
/// ```compile_fail
/// # use agentcore_telemetry::trace_operation;
/// macro_rules! my_try {
///     ($e:expr) => {
///         match $e {
///             Ok(v) => v,
///             Err(e) => return Err(e),
///         }
///     };
/// }
///
/// #[trace_operation]
/// #[track_caller]
/// fn parsed(v: &str) -> Result<Vec<u32>, std::num::ParseIntError> {
///     Ok(vec![my_try!(v.parse::<u32>())]) // error: `my_try!` inside `vec!`
/// }
/// ```
#[proc_macro_attribute]
pub fn trace_operation(attr: TokenStream, item: TokenStream) -> TokenStream {
    trace_operation2(attr.into(), item.into()).into()
}

/// [`trace_operation`] on `proc_macro2` tokens (which the unit tests can make).
fn trace_operation2(attr: TokenStream2, item: TokenStream2) -> TokenStream2 {
    use syn::parse::Parser;
    // `#[trace_operation("op")]` read "unexpected literal in nested attribute, expected ident"
    // (review helper-98): say how the name is written.
    if let Some(proc_macro2::TokenTree::Literal(lit)) = attr.clone().into_iter().next() {
        return syn::Error::new(
            lit.span(),
            format!("the span's name is written `name = {lit}`"),
        )
        .into_compile_error();
    }
    let mut args = Args::default();
    if let Err(e) = syn::meta::parser(|meta| args.parse(meta)).parse2(attr) {
        return e.into_compile_error();
    }
    let item = fragments::parenthesize_cast_types(item);
    match syn::parse2::<ItemFn>(item.clone()) {
        Ok(func) => expand(args, func),
        // A `macro_rules!` fragment in statement position that syn refuses and rustc does not
        // (review helper-162): tried only once the ordinary parse has failed.
        Err(e) => match fragments::parse_item_fn(&item) {
            Some(func) => expand(args, func),
            None => refused(e, item),
        },
    }
}

/// The error for an item [`trace_operation`] cannot parse as a function with a body.
fn refused(e: syn::Error, item: TokenStream2) -> TokenStream2 {
    match syn::parse2::<syn::TraitItemFn>(item) {
        // A trait method's declaration (`fn run(&self);`): "expected curly braces" at its
        // `;` would not say why. It stays, so that its implementations are not refused too.
        Ok(decl) if decl.default.is_none() => {
            let error = syn::Error::new_spanned(
                &decl.sig,
                "`#[trace_operation]` traces a function body, and a trait method's \
                 declaration has none: put it on the implementations (or on a default body)",
            )
            .into_compile_error();
            quote!(#error #decl)
        }
        _ => e.into_compile_error(),
    }
}

#[derive(Default)]
struct Args {
    name: Option<LitStr>,
    kind: Option<Path>,
    attributes: Vec<(String, Expr)>,
    /// Where `boxed_future` was written, if it was.
    boxed_future: Option<Span>,
    krate: Option<Path>,
}

impl Args {
    fn parse(&mut self, meta: syn::meta::ParseNestedMeta<'_>) -> syn::Result<()> {
        // A repeated argument is an error, not "the last one wins": one of the two was meant,
        // and the macro cannot tell which.
        let twice = |meta: &syn::meta::ParseNestedMeta<'_>| {
            let name = meta.path.get_ident().map(|i| i.to_string());
            meta.error(format!("`{}` given twice", name.unwrap_or_default()))
        };
        if meta.path.is_ident("name") || meta.path.is_ident("operation_name") {
            if self.name.is_some() {
                return Err(meta.error("`name` / `operation_name` given twice"));
            }
            let name: LitStr = meta.value()?.parse()?;
            if name.value().is_empty() {
                return Err(syn::Error::new_spanned(
                    &name,
                    "empty span name; leave `name` out to use the function's",
                ));
            }
            self.name = Some(name);
            Ok(())
        } else if meta.path.is_ident("kind") {
            if self.kind.is_some() {
                return Err(twice(&meta));
            }
            let value = meta.value()?;
            if let Ok(lit) = value.fork().parse::<LitStr>() {
                // `kind = "client"` read "expected identifier" (review helper-120).
                return Err(syn::Error::new(
                    lit.span(),
                    "`kind` is a `SpanKind` variant, not a string: `kind = SpanKind::Client`",
                ));
            }
            self.kind = Some(value.parse()?);
            Ok(())
        } else if meta.path.is_ident("attributes") {
            // `key = value, ..`, where a key is an identifier or a string literal: OpenTelemetry's
            // keys are dotted (`"http.request.method" = ..`), which no identifier is.
            let content;
            syn::parenthesized!(content in meta.input);
            while !content.is_empty() {
                let (key, span) = if content.peek(LitStr) {
                    let key: LitStr = content.parse()?;
                    if key.value().is_empty() {
                        return Err(syn::Error::new(key.span(), "empty attribute key"));
                    }
                    (key.value(), key.span())
                } else {
                    let key = Ident::parse_any(&content)
                        .map_err(|e| syn::Error::new(e.span(), "expected `key = value`"))?;
                    if content.peek(Token![.]) {
                        let mut dotted = key.unraw().to_string();
                        while content.parse::<Option<Token![.]>>()?.is_some() {
                            dotted.push('.');
                            dotted.push_str(&Ident::parse_any(&content)?.unraw().to_string());
                        }
                        return Err(syn::Error::new(
                            key.span(),
                            format!("a dotted key is written as a string: `\"{dotted}\" = ..`"),
                        ));
                    }
                    (key.unraw().to_string(), key.span())
                };
                if self.attributes.iter().any(|(k, _)| *k == key) {
                    return Err(syn::Error::new(
                        span,
                        format!("attribute `{key}` given twice"),
                    ));
                }
                content.parse::<Token![=]>()?;
                let value: Expr = content.parse()?;
                self.attributes.push((key, value));
                if !content.is_empty() {
                    content.parse::<Token![,]>()?;
                }
            }
            Ok(())
        } else if meta.path.is_ident("boxed_future") {
            if self.boxed_future.is_some() {
                return Err(twice(&meta));
            }
            if !meta.input.is_empty() && !meta.input.peek(Token![,]) {
                // `boxed_future = true` read "expected `,`" (review helper-98).
                return Err(meta.error("`boxed_future` takes no value: write `boxed_future`"));
            }
            self.boxed_future = Some(meta.path.span());
            Ok(())
        } else if meta.path.is_ident("crate") {
            if self.krate.is_some() {
                return Err(twice(&meta));
            }
            let path: LitStr = meta.value()?.parse()?;
            self.krate = Some(path.parse_with(Path::parse_mod_style)?);
            Ok(())
        } else {
            Err(meta.error(
                "expected `name`, `kind`, `attributes(..)`, `boxed_future` or `crate = \"..\"`",
            ))
        }
    }
}

/// The paths the expansion uses, under `krate` (`::agentcore_telemetry`, or `crate = ".."`).
fn private(krate: &TokenStream2) -> TokenStream2 {
    quote!(#krate::distributed::__private)
}

/// `{ use the Verdict* traits; (&&&&&Outcome(#value)).__agentcore_verdict(#recording) }` (see
/// the main crate's `distributed/operation.rs`): `recording` says whether the span records, so
/// that an `Err` is formatted only for one that does.
fn verdict_of(krate: &TokenStream2, value: TokenStream2, recording: TokenStream2) -> TokenStream2 {
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

/// The output of a future returned as `impl Future<Output = X>` or
/// `Pin<Box<dyn Future<Output = X> + ..>>`, and whether the traced one must be boxed (it is
/// returned as a box).
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
        // Not boxed, also with `+ Unpin`: the traced future (`__private::Traced`) is `Unpin`
        // when the body's is, which such a return type makes it.
        Type::ImplTrait(it) => output_of_bounds(&it.bounds).map(|t| (t, false)),
        Type::Paren(p) => future_output(&p.elem),
        Type::Group(g) => future_output(&g.elem),
        _ => {
            if let Some(out) = box_future_alias_output(ty) {
                return Some((out, true));
            }
            let boxed = single_arg(single_arg(ty, "Pin")?, "Box")?;
            let Type::TraitObject(obj) = boxed else {
                return None;
            };
            output_of_bounds(&obj.bounds).map(|t| (t, true))
        }
    }
}

/// `T` in `BoxFuture<'a, T>` / `LocalBoxFuture<'a, T>` (by the last path segment: `futures`'
/// aliases of `Pin<Box<dyn Future<Output = T> (+ Send) + 'a>>`, and look-alikes).
fn box_future_alias_output(ty: &Type) -> Option<Type> {
    let Type::Path(p) = ty else { return None };
    if p.qself.is_some() {
        return None;
    }
    let seg = p.path.segments.last()?;
    if seg.ident != "BoxFuture" && seg.ident != "LocalBoxFuture" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &seg.arguments else {
        return None;
    };
    args.args.iter().find_map(|a| match a {
        GenericArgument::Type(t) => Some(t.clone()),
        _ => None,
    })
}

/// `::<R, _>` for `call_once`, naming the declared return type `R` so that every `return` in
/// the body is coerced to it; nothing when it cannot be named (`!`).
fn call_once_turbofish(output: &ReturnType) -> TokenStream2 {
    match output {
        ReturnType::Type(_, ty) if is_never(ty) => quote!(),
        ReturnType::Type(_, ty) => {
            let mut ty = (**ty).clone();
            EraseImplTrait.visit_type_mut(&mut ty);
            quote!(::<#ty, _>)
        }
        ReturnType::Default => quote!(::<(), _>),
    }
}

/// Macros that cannot `return` from the function they are written in (the standard library's
/// formatting, assertion and panic macros), when their arguments hold no `return` and no `?`.
const NON_RETURNING_MACROS: &[&str] = &[
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

fn macro_cannot_return(m: &syn::Macro) -> bool {
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
struct InlineBody {
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
fn run_body(
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
fn attribute_value(v: &Expr) -> TokenStream2 {
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

/// Whether `ty` is `Self` (the receiver rule of lifetime elision looks for `&Self`).
fn is_self_type(ty: &Type) -> bool {
    match ty {
        Type::Path(p) => p.qself.is_none() && p.path.is_ident("Self"),
        Type::Paren(p) => is_self_type(&p.elem),
        Type::Group(g) => is_self_type(&g.elem),
        _ => false,
    }
}

/// Whether `ty` mentions `Self` (`Self`, `Arc<Self>`).
struct MentionsSelf(bool);

impl<'ast> Visit<'ast> for MentionsSelf {
    fn visit_type(&mut self, ty: &'ast Type) {
        self.0 |= is_self_type(ty);
        syn::visit::visit_type(self, ty);
    }
}

/// The lifetimes of the references to `Self`, or to a type that holds it, in a receiver's type
/// (`&'a Self`, `Pin<&'a mut Self>`, `Box<&'a Self>`, `&'a Arc<Self>`), for the receiver rule
/// of lifetime elision (which looks for a `&` whose referent contains `Self`).
struct SelfReferences(Vec<Lifetime>);

impl<'ast> Visit<'ast> for SelfReferences {
    fn visit_type_reference(&mut self, r: &'ast syn::TypeReference) {
        let mut mentions = MentionsSelf(false);
        mentions.visit_type(&r.elem);
        if mentions.0 {
            if let Some(l) = &r.lifetime {
                if !self.0.contains(l) {
                    self.0.push(l.clone());
                }
            }
        }
        syn::visit::visit_type_reference(self, r);
    }
    fn visit_type_bare_fn(&mut self, _: &'ast syn::TypeBareFn) {}
    fn visit_parenthesized_generic_arguments(
        &mut self,
        _: &'ast syn::ParenthesizedGenericArguments,
    ) {
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

/// An identifier of the expansion's own (`__agentcore_span`, ...), invisible to the user's code
/// (`mixed_site` hygiene: a parameter or local of the user's spelled the same is another
/// variable; review helper-98 found `fn f(__agentcore_span: i32)` reading the macro's span).
fn local(name: &str) -> Ident {
    Ident::new(name, Span::mixed_site())
}

/// `ty` without the invisible groups a `macro_rules!` `$t:ty` fragment wraps it in, or the
/// parentheses around it: what [`is_never`] and [`is_impl_trait`] look at.
fn unwrapped(ty: &Type) -> &Type {
    match ty {
        Type::Group(g) => unwrapped(&g.elem),
        Type::Paren(p) => unwrapped(&p.elem),
        _ => ty,
    }
}

/// Whether `ty` is `!`, also as a `macro_rules!` `$ret:ty` fragment passes it (in an invisible
/// group) or in parentheses (review helper-98: `-> $ret` with `!` was not recognised, and the
/// expansion named `!` as a type, which is unstable).
fn is_never(ty: &Type) -> bool {
    matches!(unwrapped(ty), Type::Never(_))
}

/// Whether `ty` is `impl Trait` (also in parentheses or a `macro_rules!` fragment's group).
fn is_impl_trait(ty: &Type) -> bool {
    matches!(unwrapped(ty), Type::ImplTrait(_))
}

/// `: T` for `let __agentcore_ret`, or nothing when the type cannot annotate a `let` (`!`).
fn let_annotation(ty: &Type) -> TokenStream2 {
    if is_never(ty) {
        return quote!();
    }
    let mut ty = ty.clone();
    EraseImplTrait.visit_type_mut(&mut ty);
    quote!(: #ty)
}

/// Writes the invisible groups around expressions (an `$e:expr` fragment of a `macro_rules!`
/// that generated the function) as parentheses. The compiler keeps a fragment one operand
/// (`$a * 2` with `$a = 1 + 1` is 4), but an invisible group a proc macro gives back is read
/// as no group, so the reprinted body read `1 + 1 * 2`, 3 (review helper-159: a wrong value
/// in silence, or "expected function" for `$f(x)` with `$f = |x| x + 1`). The parentheses
/// carry the group's span, one of the `macro_rules!` expansion, where `unused_parens` is
/// silent. A `$t:ty` fragment likewise where it matters, and `unused_parens` lets it be: a
/// trait object or `impl Trait` with more than one bound behind `&` or `*` (`&$t` with `$t =
/// dyn Display + Send` read "ambiguous `+` in a type"). Attributes are left as written
/// (`#[doc = $doc]`).
struct ParenthesizeGroups;

impl VisitMut for ParenthesizeGroups {
    fn visit_attribute_mut(&mut self, _: &mut syn::Attribute) {}
    fn visit_block_mut(&mut self, block: &mut syn::Block) {
        let last = block.stmts.len().saturating_sub(1);
        for (i, stmt) in block.stmts.iter_mut().enumerate() {
            match stmt {
                // A block-like fragment that is a statement without `;` before another (see
                // `fragments`): in parentheses it would be an operand (`(if ..) - x`), and the
                // group as it is reads as the statement it is.
                syn::Stmt::Expr(Expr::Group(g), None) if i < last => {
                    self.visit_expr_mut(&mut g.expr)
                }
                _ => self.visit_stmt_mut(stmt),
            }
        }
    }
    fn visit_type_mut(&mut self, t: &mut Type) {
        syn::visit_mut::visit_type_mut(self, t);
        let elem = match t {
            Type::Reference(r) => &mut r.elem,
            Type::Ptr(p) => &mut p.elem,
            _ => return,
        };
        if let Type::Group(g) = &mut **elem {
            let several_bounds = match &*g.elem {
                Type::TraitObject(o) => o.bounds.len() > 1,
                Type::ImplTrait(i) => i.bounds.len() > 1,
                _ => false,
            };
            if several_bounds {
                let paren = syn::TypeParen {
                    paren_token: syn::token::Paren(g.group_token.span),
                    elem: std::mem::replace(
                        &mut g.elem,
                        Box::new(Type::Verbatim(TokenStream2::new())),
                    ),
                };
                **elem = Type::Paren(paren);
            }
        }
    }
    fn visit_expr_mut(&mut self, e: &mut Expr) {
        syn::visit_mut::visit_expr_mut(self, e);
        if let Expr::Group(g) = e {
            if let Expr::Let(_) = *g.expr {
                // A `$s:stmt` fragment `let x = ..`, which no parentheses may hold.
                return;
            }
            let paren = syn::ExprParen {
                attrs: std::mem::take(&mut g.attrs),
                paren_token: syn::token::Paren(g.group_token.span),
                expr: std::mem::replace(&mut g.expr, Box::new(Expr::Verbatim(TokenStream2::new()))),
            };
            *e = Expr::Paren(paren);
        }
    }
}

fn expand(mut args: Args, mut func: ItemFn) -> TokenStream2 {
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

struct Start {
    krate: TokenStream2,
    name: String,
    kind: TokenStream2,
    attributes: TokenStream2,
    /// The names the attribute values mention: arguments the body's rebindings leave alone,
    /// as a value may move one (`attributes(user = { user })`, documented above).
    in_attributes: Vec<Ident>,
}

/// The single-segment paths (`user`, not `self.user`'s `self` only) an attribute value
/// mentions, tokens inside macros included, where an argument may be named.
struct Mentioned(Vec<Ident>);

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
fn expand_sync_fn(start: &Start, func: ItemFn) -> TokenStream2 {
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
fn expand_future_fn(start: &Start, func: ItemFn, boxed: bool) -> TokenStream2 {
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

/// Collects the names a pattern binds.
struct Binds(Vec<Ident>);

impl<'ast> Visit<'ast> for Binds {
    fn visit_pat_ident(&mut self, p: &'ast PatIdent) {
        self.0.push(p.ident.clone());
        syn::visit::visit_pat_ident(self, p);
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
/// Rewrites the `return value`s of an `async fn`'s body (not those of its closures, async
/// blocks or items) as `return ::core::convert::identity::<R>(value)`, `R` its declared output:
/// the body runs in an `async` block whose output type the first `return` decides, so without
/// the declared type a `return Box::new(1u8)` in a `-> Box<dyn Debug>` function was not
/// coerced and did not compile (review helper-98; the sync path's closure has it from
/// `call_once::<R, _>`).
struct CoerceReturns<'a>(&'a Type);

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

/// A parameter's attributes for its rebinding (see [`expand_async_fn`] and [`run_body`]): its
/// `#[cfg]` / `#[cfg_attr]` (a configured-out parameter has nothing to rebind), and its lint
/// attributes, as the body uses the rebinding (an `#[allow(unused_variables)]` is about it),
/// while the parameter is always used (moved into the future or the closure). An `#[expect]`
/// is met on the rebinding, so on the parameter it becomes an `#[allow]` (an unmet
/// expectation is a warning of its own). Its other attributes stay on the parameter only.
fn rebinding_attrs(attrs: &mut [syn::Attribute]) -> (Vec<syn::Attribute>, Vec<syn::Attribute>) {
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
fn closure_rebindings(sig: &mut syn::Signature, in_attributes: &[Ident]) -> Vec<TokenStream2> {
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

fn expand_async_fn(start: &Start, func: ItemFn) -> TokenStream2 {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Expands `#[trace_operation(attr)] item` as the compiler would, to a string.
    fn expand_str(attr: TokenStream2, item: TokenStream2) -> String {
        trace_operation2(attr, item).to_string()
    }

    /// The one error, with its message, and nothing else.
    fn assert_only_error(out: &str, message: &str) {
        assert!(
            out.starts_with(":: core :: compile_error !") && out.contains(message),
            "expected only `compile_error!(\"..{message}..\")`, got: {out}"
        );
        assert_eq!(out.matches("compile_error").count(), 1, "{out}");
    }

    #[test]
    fn a_const_fn_is_refused_with_one_error() {
        let out = expand_str(
            quote!(),
            quote!(
                const fn f(x: u8) -> u8 {
                    x
                }
            ),
        );
        assert_only_error(&out, "cannot trace a `const fn`");
    }

    /// Review helper-98: a positional name, a value for `boxed_future`, and `boxed_future` on
    /// an `async fn` (silently ignored before) each get an error that says what to write.
    #[test]
    fn misplaced_arguments_say_what_to_write() {
        let f = quote!(
            fn f() {}
        );
        assert_only_error(
            &expand_str(quote!("op"), f.clone()),
            "the span's name is written `name = \\\"op\\\"`",
        );
        assert_only_error(
            &expand_str(quote!(boxed_future = true), f),
            "`boxed_future` takes no value",
        );
        let out = expand_str(
            quote!(boxed_future),
            quote!(
                async fn f() {}
            ),
        );
        assert!(
            out.starts_with(":: core :: compile_error !")
                && out.contains("remove it from an `async fn`"),
            "{out}"
        );
    }

    #[test]
    fn a_repeated_argument_is_refused() {
        let f = quote!(
            fn f() {}
        );
        for (attr, message) in [
            (
                quote!(name = "a", name = "b"),
                "`name` / `operation_name` given twice",
            ),
            (
                quote!(name = "a", operation_name = "b"),
                "`name` / `operation_name` given twice",
            ),
            (quote!(kind = Client, kind = Server), "`kind` given twice"),
            (
                quote!(boxed_future, boxed_future),
                "`boxed_future` given twice",
            ),
            (
                quote!(attributes(k = 1, k = 2)),
                "attribute `k` given twice",
            ),
            (
                quote!(attributes(k = 1), attributes(k = 2)),
                "attribute `k` given twice",
            ),
        ] {
            assert_only_error(&expand_str(attr, f.clone()), message);
        }
        // Two `attributes(..)` with different keys are one list.
        let out = expand_str(quote!(attributes(a = 1), attributes(b = 2)), f.clone());
        assert!(out.contains("KeyValue :: new (\"a\"") && out.contains("KeyValue :: new (\"b\""));
    }

    /// A renamed dependency (`telemetry = { package = "agentcore-telemetry", .. }`) has no
    /// `::agentcore_telemetry`: with `crate = ".."`, every path of the expansion goes through
    /// the one given.
    #[test]
    fn crate_names_the_path_to_the_library() {
        for item in [
            quote!(
                fn f(v: Option<u8>) -> Option<u8> {
                    v
                }
            ),
            quote!(
                #[track_caller]
                fn f(v: Option<u8>) -> Option<u8> {
                    Some(v? + 1)
                }
            ),
            quote!(
                async fn f(v: u8) -> u8 {
                    v
                }
            ),
            quote!(
                async fn f() -> ! {
                    loop {}
                }
            ),
            quote!(
                fn f() -> impl Future<Output = u8> {
                    async { 1 }
                }
            ),
        ] {
            let out = expand_str(
                quote!(crate = "telemetry", kind = Client, attributes(a = 1)),
                item,
            );
            assert!(!out.contains("compile_error"), "{out}");
            assert!(
                out.contains("telemetry :: distributed :: __private"),
                "{out}"
            );
            assert!(!out.contains("agentcore_telemetry"), "{out}");
        }
        assert_only_error(
            &expand_str(
                quote!(crate = "a", crate = "b"),
                quote!(
                    fn f() {}
                ),
            ),
            "`crate` given twice",
        );
    }

    /// A trait method's declaration has no body to trace: the error says where the attribute
    /// goes, and the declaration stays (the impls would be refused without it).
    #[test]
    fn a_method_declaration_is_refused_with_its_reason() {
        let out = expand_str(
            quote!(),
            quote!(
                async fn run(&self, v: u8) -> u8;
            ),
        );
        assert_only_error(&out, "on the implementations");
        assert!(
            out.ends_with("async fn run (& self , v : u8) -> u8 ;"),
            "{out}"
        );
    }

    /// OpenTelemetry's attribute keys are dotted (`http.request.method`), which is no
    /// identifier: a key may be a string literal.
    #[test]
    fn an_attribute_key_may_be_a_string() {
        let f = quote!(
            fn f(db: &str) {}
        );
        let out = expand_str(
            quote!(attributes(
                "http.request.method" = "GET",
                "db.system" = db,
                r#type = 1
            )),
            f.clone(),
        );
        assert!(!out.contains("compile_error"), "{out}");
        for key in ["http.request.method", "db.system", "type"] {
            assert!(
                out.contains(&format!("KeyValue :: new (\"{key}\"")),
                "{key}: {out}"
            );
        }
        assert_only_error(
            &expand_str(quote!(attributes("k" = 1, k = 2)), f.clone()),
            "attribute `k` given twice",
        );
        assert_only_error(
            &expand_str(quote!(attributes("" = 1)), f.clone()),
            "empty attribute key",
        );
        assert_only_error(
            &expand_str(quote!(attributes(http.request.method = "GET")), f),
            "a dotted key is written as a string: `\\\"http.request.method\\\" = ..`",
        );
    }

    /// The specification writes `kind=SpanKind.CLIENT`; a kind given as a string read
    /// "expected identifier" (review helper-120): say how it is written.
    #[test]
    fn a_kind_given_as_a_string_says_how_it_is_written() {
        let f = quote!(
            fn f() {}
        );
        assert_only_error(
            &expand_str(quote!(kind = "client"), f),
            "`kind` is a `SpanKind` variant, not a string: `kind = SpanKind::Client`",
        );
    }

    /// Review helper-159: a `macro_rules!` `$e:expr` fragment reaches the macro as an invisible
    /// group, which the compiler no longer respects once the macro gives it back: it comes out
    /// in parentheses, so it stays one operand, and a path in one is still a place that an
    /// attribute value clones.
    #[test]
    fn an_expression_fragment_stays_one_operand() {
        use proc_macro2::{Delimiter, Group};
        let fragment = |tokens: TokenStream2| Group::new(Delimiter::None, tokens);
        let a = fragment(quote!(1 + 1));
        let user = fragment(quote!(user));
        let stmt = fragment(quote!(let x = 4));
        let item = quote!(
            fn f(user: String) -> u32 {
                #stmt;
                #a * x
            }
        );
        let out = expand_str(quote!(attributes(user = #user)), item);
        assert!(out.contains("(1 + 1) * x"), "{out}");
        assert!(out.contains("clone :: Clone :: clone (& (user))"), "{out}");
        assert!(!out.contains("(let"), "{out}");
        // A type fragment with two bounds behind `&`, and no other.
        let t = fragment(quote!(dyn Display + Send));
        let out = expand_str(
            quote!(),
            quote!(
                fn g(x: &#t, y: Box<#t>) {}
            ),
        );
        assert!(out.contains("x : & (dyn Display + Send)"), "{out}");
        assert!(!out.contains("Box < (dyn"), "{out}");
    }

    #[test]
    fn an_empty_name_is_refused() {
        let f = quote!(
            fn f() {}
        );
        assert_only_error(&expand_str(quote!(name = ""), f), "empty span name");
    }

    /// A plain sync function's expansion, pinned: its hot path is measured in instructions, so
    /// a change here (a review's parse fallback, say) must be one meant for it.
    #[test]
    fn a_plain_sync_fn_expands_as_pinned() {
        let out = expand_str(
            quote!(),
            quote!(
                fn f(x: u32) -> u32 {
                    x + 1
                }
            ),
        );
        let pinned = concat!(
            "fn f (x : u32) -> u32 { # [allow (unused_braces)] let mut __agentcore_span = :: agentcore_telemetry :: get_distributed_tracer () . start_span (\"f\" , :: agentcore_telemetry :: SpanKind :: Internal , []) ; ",
            "# [allow (clippy :: diverging_sub_expression)] let __agentcore_ret : u32 = :: agentcore_telemetry :: distributed :: __private :: call_once :: < u32 , _ > (move || { # [allow (clippy :: used_underscore_binding , clippy :: no_effect_underscore_binding)] let x = x ; ",
            "x + 1 }) ; ",
            "# [allow (unreachable_code)] let __agentcore_ret = { { # [allow (unused_imports)] use :: agentcore_telemetry :: distributed :: __private :: { VerdictAnyErr as _ , VerdictDebug as _ , VerdictDisplay as _ , VerdictDisplayDebug as _ , VerdictOk as _ } ; ",
            "(&& && & :: agentcore_telemetry :: distributed :: __private :: Outcome (& __agentcore_ret)) . __agentcore_verdict (__agentcore_span . is_recording ()) } . apply (& mut __agentcore_span) ; ",
            "__agentcore_span . end () ; ",
            "__agentcore_ret } ; ",
            "__agentcore_ret }",
        );
        assert_eq!(out, pinned);
    }

    /// Review helper-162: a block-like fragment before more of the body is a statement, as
    /// rustc reads it; any other still wants its `;`.
    #[test]
    fn a_block_like_fragment_is_a_statement_without_semicolon() {
        let group =
            |tokens: TokenStream2| proc_macro2::Group::new(proc_macro2::Delimiter::None, tokens);
        let e = group(quote!(if true {
        } else {
        }));
        let out = expand_str(quote!(), quote!(fn f(x: u32) -> u32 { #e x }));
        assert!(
            !out.contains("compile_error") && !out.contains("(if"),
            "{out}"
        );
        let e = group(quote!(1 + 1));
        let out = expand_str(quote!(), quote!(fn f(x: u32) -> u32 { #e x }));
        assert_only_error(&out, "expected `;`");
        // In a macro's arguments the tokens are the macro's.
        let e = group(quote!({}));
        let out = expand_str(
            quote!(),
            quote!(
                fn f(x: u32) -> u32 {
                    m! { #e x }
                    x
                }
            ),
        );
        assert!(out.contains("m ! {"), "{out}");
        assert!(
            !out.contains("__agentcore_telemetry_statement_ends_here"),
            "{out}"
        );
    }

    /// Review helper-162: a type fragment cast to and then compared is parenthesized there, in
    /// the body and in a macro's arguments, and nowhere else.
    #[test]
    fn a_type_fragment_cast_to_then_compared_is_parenthesized() {
        let t = proc_macro2::Group::new(proc_macro2::Delimiter::None, quote!(u32));
        let out = expand_str(
            quote!(),
            quote!(fn f(x: u64, y: u32) -> bool { let _b = x as #t; assert!(x as #t < y); x as #t < y }),
        );
        assert_eq!(out.matches("as (u32) <").count(), 2, "{out}");
        assert!(!out.contains("_b = x as (u32)"), "{out}");
    }
}
