//! Procedural macros for `agentcore-telemetry`. Use them through the main crate's re-export.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{parse_macro_input, Expr, ItemFn, LitStr, Path, ReturnType, Type};

/// Traces a function with the global tracer (`get_distributed_tracer()`): a span starts
/// when the function is called (for an `async fn`: when its future is first polled) and
/// finishes when it returns.
///
/// Arguments, all optional:
/// * `name = "op"` (alias `operation_name`): the span name; defaults to the function name.
/// * `kind = SpanKind::Client`: the span kind (the last path segment is used); default
///   `Internal`.
/// * `attributes(key = value, ...)`: attributes set at start; values are any expressions
///   convertible into `agentcore_telemetry::Value` (they may use the arguments).
///
/// Behaviour:
/// * `async fn`: the body runs inside `Instrumented`, so the span is current during every
///   poll and children started after an `.await` still get it as parent.
/// * A function whose return type is written `Result<..>` (any path ending in `Result`,
///   whose error type implements `Display`) that returns `Err(e)` records an `exception`
///   event (`exception.type` = `type_name` of the error, `exception.message` = `e`'s
///   `Display`) and finishes the span with `Error` status (message = `e`'s `Display`).
/// * Any other return (including `Ok(..)`) finishes the span with `Ok` status.
/// * A panic records an `exception` event and `Error` status and keeps unwinding.
///
/// ```
/// use agentcore_telemetry::{get_distributed_tracer, trace_operation, FutureExt, SpanKind, SpanStatus};
///
/// #[trace_operation(name = "create_agent", kind = SpanKind::Client,
///                   attributes(component = "agent_lifecycle", retries = 3))]
/// async fn create_agent(id: u32) -> Result<u32, std::io::Error> {
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
/// assert!(rt.block_on(create_agent(0).in_span(root.detach())).is_err());
///
/// let spans = tracer.get_trace_spans(trace_id);
/// let agent = spans.iter().find(|s| s.name == "create_agent").unwrap();
/// assert_eq!((agent.kind, agent.status), (SpanKind::Client, SpanStatus::Error));
/// assert_eq!(spans.iter().find(|s| s.name == "calculate_metrics").unwrap().status, SpanStatus::Ok);
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

fn returns_result(output: &ReturnType) -> bool {
    match output {
        ReturnType::Type(_, ty) => match &**ty {
            Type::Path(p) => p.path.segments.last().is_some_and(|s| s.ident == "Result"),
            _ => false,
        },
        ReturnType::Default => false,
    }
}

fn expand(args: Args, func: ItemFn) -> TokenStream2 {
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = func;
    let name = args
        .name
        .map(|n| n.value())
        .unwrap_or_else(|| sig.ident.to_string());
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
    let start = quote! {
        ::agentcore_telemetry::get_distributed_tracer().start_span(
            #name,
            #kind,
            [#(#attributes),*],
        )
    };
    let is_result = returns_result(&sig.output);
    let hook = if is_result {
        quote!(::agentcore_telemetry::tracer::__private::RecordErr)
    } else {
        quote!(::agentcore_telemetry::tracer::__private::MarkOk)
    };
    let body = if sig.asyncness.is_some() {
        quote! {
            ::agentcore_telemetry::Instrumented::with_hook(async move #block, #start, #hook).await
        }
    } else if is_result {
        // The body runs in a closure so that `return` and `?` inside it end up in
        // `__agentcore_ret`, which the hook inspects before the span finishes. A panic
        // unwinds through `__agentcore_span`, whose drop records it.
        quote! {
            let mut __agentcore_span = #start;
            #[allow(clippy::redundant_closure_call)]
            let __agentcore_ret = (move || #block)();
            ::agentcore_telemetry::tracer::__private::OnReady::on_ready(
                #hook,
                &__agentcore_ret,
                &mut __agentcore_span,
            );
            __agentcore_span.end();
            __agentcore_ret
        }
    } else {
        // No result to inspect: the body stays as written (no closure, so methods returning
        // borrows of `&mut self` work); the guard sets `Ok` on return and the span records a
        // panic while unwinding.
        quote! {
            let __agentcore_guard = ::agentcore_telemetry::tracer::__private::OkOnReturn(#start);
            #block
        }
    };
    quote! {
        #(#attrs)*
        #vis #sig {
            #body
        }
    }
}
