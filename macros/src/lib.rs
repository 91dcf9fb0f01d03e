//! Procedural macros for `agentcore-telemetry`. Use them through the main crate's re-export.
//!
//! One macro, `#[trace_operation]`, in these parts:
//!
//! | module | what it holds |
//! | --- | --- |
//! | `args` | the attribute's arguments, parsed and checked |
//! | `fragments` | what a `macro_rules!` fragment in the function needs to read as rustc reads it |
//! | `types` | what the expansion reads from the signature's types (a future's output, `!`, `impl Trait`, `Self`) |
//! | `body` | the body as an expression: a closure with its arguments rebound, or inline for `#[track_caller]` |
//! | `expand` | the expansion of a sync or future-returning function, and what every form shares |
//! | `async_fn` | the expansion of an `async fn` |
//! | `tests` | unit tests on the expansion's text |

mod args;
mod async_fn;
mod body;
mod expand;
mod fragments;
#[cfg(test)]
mod tests;
mod types;

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::quote;
use syn::ItemFn;

use crate::args::Args;
use crate::expand::expand;

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
