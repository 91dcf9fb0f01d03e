//! `OTEL_SDK_DISABLED=true` makes the tracer OpenTelemetry's no-op implementation (trace API,
//! "Behavior of the API in the absence of an installed SDK"): a span's context is its parent's,
//! whole (same span id, sampled and remote flags, `tracestate`), or invalid without a parent;
//! no id drawn, nothing recorded, counted or allocated. Before, the tracer sampled nothing:
//! every span drew a new span id and was injected with flags `00`, breaking a sampled caller's
//! trace downstream. Baggage keeps working, and a tracer whose SDK is enabled makes sense of
//! the invalid contexts.
//!
//! The tracer reads `OTEL_SDK_DISABLED` from the process environment (`from_env: true`); this
//! binary sets it once, before any tracer is built (`disabled()`), and no test unsets it. Every
//! test calls `disabled()` before it reads the environment in any way (a tracer, the oracle's
//! path, a child process): the `Once` orders the one write before every read, so no read races
//! it (`setenv` beside a concurrent `getenv` is a data race in glibc).

use agentcore_telemetry::{
    DistributedTracer, FutureExt, KeyValue, Registry, Sampler, SpanKind, SpanStatus, TraceContext,
    TracerConfig,
};
use std::sync::Once;

mod support;

#[global_allocator]
static GLOBAL: support::alloc::Counting = support::alloc::Counting;

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const UNSAMPLED: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
const TRACESTATE: &str = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";
const BAGGAGE: &str = "tenant=acme;ttl=30,user_id=12345";

/// A tracer built with `from_env: true` under `OTEL_SDK_DISABLED=true`.
fn disabled() -> DistributedTracer {
    static ENV: Once = Once::new();
    // Set once, before any tracer of this binary reads the environment (every test comes here
    // first), and never changed again: no read races the write.
    ENV.call_once(|| std::env::set_var("OTEL_SDK_DISABLED", "true"));
    DistributedTracer::new(TracerConfig {
        from_env: true,
        span_log_capacity: 64,
        ..TracerConfig::default()
    })
}

fn enabled() -> DistributedTracer {
    DistributedTracer::new(TracerConfig {
        from_env: false,
        span_log_capacity: 64,
        ..TracerConfig::default()
    })
}

fn headers(traceparent: &'static str) -> impl Fn(&str) -> Option<&'static str> {
    move |name| match name {
        "traceparent" => Some(traceparent),
        "tracestate" => Some(TRACESTATE),
        "baggage" => Some(BAGGAGE),
        _ => None,
    }
}

fn extract(traceparent: &'static str) -> TraceContext {
    TraceContext::extract(headers(traceparent))
        .unwrap()
        .unwrap()
}

fn inject(cx: &TraceContext) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    cx.inject(|name, value| out.push((name, value)));
    out
}

fn caller_headers(traceparent: &str) -> Vec<(&'static str, String)> {
    vec![
        ("traceparent", traceparent.to_string()),
        ("tracestate", TRACESTATE.to_string()),
        ("baggage", BAGGAGE.to_string()),
    ]
}

/// Nothing recorded, counted or kept.
fn assert_nothing_recorded(t: &DistributedTracer) {
    let stats = t.stats();
    assert_eq!(
        (
            stats.spans_started,
            stats.spans_finished,
            stats.spans_unsampled
        ),
        (0, 0, 0),
        "{stats:?}"
    );
    assert_eq!(stats.spans_errored + stats.spans_dropped, 0, "{stats:?}");
    assert_eq!(t.get_metrics().total_spans, 0);
    let remote = extract(TRACEPARENT).trace_id();
    assert!(t.get_trace_spans(remote).is_empty());
}

#[test]
fn the_tracer_says_it_is_a_no_op() {
    let t = disabled();
    assert!(t.is_sdk_disabled());
    assert_eq!(t.sampler(), Sampler::always_off());
    assert!(!enabled().is_sdk_disabled());
}

#[test]
fn a_sampled_remote_parent_goes_downstream_unchanged() {
    let t = disabled();
    let parent = extract(TRACEPARENT);
    let _cx = t.attach(parent.clone());
    let mut span = t.start_span("handle", SpanKind::Server, [KeyValue::new("k", "v")]);
    span.set_attribute("a", 1);
    span.add_event("e", []);
    assert!(!span.is_recording());
    assert_eq!(span.trace_id(), parent.trace_id());
    assert_eq!(Some(span.span_id()), parent.span_id());
    assert_eq!(span.parent_span_id(), None);
    assert_eq!(span.context(), parent);
    assert!(span.context().is_remote() && span.context().is_sampled());
    assert_eq!(inject(&span.context()), caller_headers(TRACEPARENT));
    assert_eq!(
        inject(&t.current_context().unwrap()),
        caller_headers(TRACEPARENT)
    );
    let id = span.span_id();
    t.finish_span(span, SpanStatus::Error, Some("boom"));
    assert!(t.get_span_by_id(id).is_none());
    assert_nothing_recorded(&t);
}

#[test]
fn an_unsampled_parent_goes_downstream_with_flags_00() {
    let t = disabled();
    let _cx = t.attach(extract(UNSAMPLED));
    let span = t.start_span("handle", SpanKind::Server, []);
    assert_eq!(inject(&span.context()), caller_headers(UNSAMPLED));
    let child = t.start_detached_span("child", SpanKind::Client, []);
    assert_eq!(inject(&child.context()), caller_headers(UNSAMPLED));
    drop((child, span));
    assert_nothing_recorded(&t);
}

#[test]
fn without_a_parent_the_context_is_invalid_and_nothing_is_injected() {
    let t = disabled();
    let mut span = t.start_span("root", SpanKind::Internal, []);
    span.set_attribute("k", "v");
    span.add_link("trace-1", "span-1", []);
    span.record_exception(&std::io::Error::other("x"));
    span.set_status(SpanStatus::Error, "m");
    let cx = span.context();
    assert!(!cx.is_valid());
    assert_eq!(
        (cx.span_id(), cx.is_sampled(), cx.is_remote()),
        (None, false, false)
    );
    assert_eq!(span.trace_id().to_u128(), 0);
    assert_eq!(span.span_id().to_u64(), 0);
    assert!(inject(&cx).is_empty());
    assert!(TraceContext::from_map(&cx.to_map()).is_err());
    // The root is current: children see its (invalid) context, and nothing is injected.
    let child = t.start_span("child", SpanKind::Internal, []);
    assert!(!child.context().is_valid());
    let current = t.current_context();
    assert!(
        current.as_ref().is_none_or(|c| !c.is_valid()),
        "{current:?}"
    );
    let _ = format!("{child:?} {span:?}");
    drop(child);
    span.finish(SpanStatus::Ok);
    assert!(t.current_context().is_none());
    assert_nothing_recorded(&t);
}

#[test]
fn nested_no_op_spans_share_their_parent_context() {
    let t = disabled();
    let parent = extract(TRACEPARENT);
    let _cx = t.attach(parent.clone());
    let a = t.start_span("a", SpanKind::Internal, []);
    let b = t.start_span("b", SpanKind::Internal, []);
    let c = t.start_span("c", SpanKind::Client, []);
    for span in [&a, &b, &c] {
        assert_eq!(span.context(), parent);
    }
    // Finished out of order: the context stays the caller's.
    drop(b);
    let d = t.start_detached_span("d", SpanKind::Internal, []).attach();
    assert_eq!(inject(&d.context()), caller_headers(TRACEPARENT));
    drop((a, c, d));
    assert_eq!(t.current_context(), Some(parent));
    assert_nothing_recorded(&t);
}

#[test]
fn an_explicit_parent_is_current_for_the_children() {
    let t = disabled();
    let outer = extract(UNSAMPLED);
    let _outer = t.attach(outer.clone());
    let explicit = extract(TRACEPARENT);
    let span = t.start_span_with_parent("x", SpanKind::Server, [], Some(&explicit));
    assert_eq!(span.context(), explicit);
    let child = t.start_span("child", SpanKind::Internal, []);
    assert_eq!(child.context(), explicit);
    assert_eq!(t.current_context(), Some(explicit.clone()));
    drop(child);
    drop(span);
    assert_eq!(t.current_context(), Some(outer));
    // An invalid explicit parent: a root, invalid.
    let invalid = t
        .start_span_with_parent("none", SpanKind::Internal, [], None)
        .context();
    assert!(!invalid.is_valid());
    let root = t.start_span_with_parent("r", SpanKind::Internal, [], Some(&invalid));
    assert!(!root.context().is_valid());
    drop(root);
    assert_nothing_recorded(&t);
}

#[test]
fn a_root_hides_the_current_context() {
    let t = disabled();
    let outer = extract(TRACEPARENT);
    let _outer = t.attach(outer.clone());
    let root = t.start_span_with_parent("root", SpanKind::Internal, [], None);
    assert!(!root.context().is_valid());
    let child = t.start_span("child", SpanKind::Internal, []);
    assert!(!child.context().is_valid());
    assert!(inject(&child.context()).is_empty());
    assert!(!t.current_context().unwrap().is_valid());
    drop(child);
    drop(root);
    assert_eq!(t.current_context(), Some(outer));
    assert_nothing_recorded(&t);
}

#[test]
fn detach_attach_and_in_span_across_await() {
    let t: &'static DistributedTracer = Box::leak(Box::new(disabled()));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let parent = extract(TRACEPARENT);
    let got = rt.block_on(async {
        let span = {
            let _cx = t.attach(parent.clone());
            t.start_detached_span("job", SpanKind::Internal, [])
        };
        assert!(t.current_context().is_none());
        async {
            tokio::task::yield_now().await;
            let inner = t.start_detached_span("inner", SpanKind::Client, []);
            tokio::task::yield_now().await;
            let attached = inner.attach();
            let headers = inject(&t.current_context().unwrap());
            let detached = attached.detach();
            tokio::task::yield_now().await;
            (headers, inject(&detached.context()))
        }
        .in_span(span)
        .await
    });
    assert_eq!(got.0, caller_headers(TRACEPARENT));
    assert_eq!(got.1, caller_headers(TRACEPARENT));
    // A detached context, run in.
    let got = rt.block_on(
        async {
            tokio::task::yield_now().await;
            inject(&t.start_span("s", SpanKind::Internal, []).context())
        }
        .in_context(t.detached_context(parent.clone())),
    );
    assert_eq!(got, caller_headers(TRACEPARENT));
    assert_nothing_recorded(t);
}

#[test]
fn baggage_works_without_an_sdk() {
    let t = disabled();
    // A trace started here: no id drawn (invalid), baggage kept.
    let mut trace = t.start_trace(None, [("tenant", "acme")]);
    assert!(!trace.context().is_valid());
    assert!(trace.set_baggage("user", "alice"));
    let span = t.start_span("op", SpanKind::Internal, []);
    assert_eq!(span.context().get_baggage("tenant"), Some("acme"));
    assert_eq!(span.context().get_baggage("user"), Some("alice"));
    assert_eq!(
        inject(&span.context()),
        [("baggage", "tenant=acme,user=alice".to_string())]
    );
    drop((span, trace));
    // Baggage alone from a request: passed through.
    let get = |name: &str| (name == "baggage").then_some(BAGGAGE);
    let bag = TraceContext::extract_baggage(get);
    let _cx = t.start_trace(None, bag);
    let span = t.start_span("op", SpanKind::Server, []);
    assert_eq!(
        inject(&span.context()),
        [("baggage", "tenant=acme,user_id=12345".to_string())]
    );
    assert_nothing_recorded(&t);
}

#[test]
fn an_enabled_tracer_starts_a_new_trace_under_an_invalid_context() {
    let off = disabled();
    let mut invalid = off.start_span("root", SpanKind::Internal, []).context();
    invalid.set_baggage("tenant", "acme");
    let on = enabled();
    let explicit = on.start_span_with_parent("a", SpanKind::Internal, [], Some(&invalid));
    assert!(explicit.context().is_valid() && explicit.is_recording());
    assert_eq!(explicit.parent_span_id(), None);
    assert_eq!(explicit.context().get_baggage("tenant"), Some("acme"));
    drop(explicit);
    let guard = on.attach(invalid.clone());
    assert!(guard.context().is_valid());
    let span = on.start_span("b", SpanKind::Internal, []);
    assert_eq!(span.trace_id(), guard.context().trace_id());
    assert_eq!(span.context().get_baggage("tenant"), Some("acme"));
    drop((span, guard));
    assert!(on.detached_context(invalid).context().is_valid());
    assert_eq!(on.stats().spans_finished, 2);
}

#[test]
fn registered_metrics_stay_at_zero() {
    let t = disabled();
    let registry = Registry::new();
    t.register_metrics(&registry).unwrap();
    let _cx = t.attach(extract(TRACEPARENT));
    t.start_span("op", SpanKind::Internal, []).end();
    let text = registry.encode_text();
    assert!(
        text.contains("agentcore_tracer_spans_started_total 0\n"),
        "{text}"
    );
    assert!(
        text.contains("agentcore_tracer_spans_unsampled_total 0\n"),
        "{text}"
    );
    assert!(!text.contains("operation=\"op\""), "{text}");
}

#[test]
fn starting_and_finishing_allocates_nothing() {
    use support::alloc::thread_allocations;
    let t = disabled();
    let parent = extract(TRACEPARENT);
    let run = |n: u32| {
        for _ in 0..n {
            let _cx = t.attach(parent.clone());
            let mut a = t.start_span("a", SpanKind::Server, [KeyValue::new("k", 1)]);
            a.set_attribute("x", "y");
            let b = t.start_span_with_parent("b", SpanKind::Internal, [], None);
            let c = t.start_detached_span("c", SpanKind::Client, []);
            t.finish_span(c, SpanStatus::Ok, None);
            drop(b);
            a.end();
            t.start_span("root", SpanKind::Internal, []).end();
        }
    };
    run(100); // warm up: the thread's context stack
    let before = thread_allocations();
    run(1_000);
    assert_eq!(thread_allocations() - before, 0);
}

/// A `tracing` field value that counts how often the layer formats it.
#[cfg(feature = "tracing-bridge")]
struct Counted(&'static std::sync::atomic::AtomicUsize);

#[cfg(feature = "tracing-bridge")]
impl std::fmt::Debug for Counted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        f.write_str("counted")
    }
}

#[cfg(feature = "tracing-bridge")]
#[test]
fn the_tracing_bridge_keeps_nothing() {
    use agentcore_telemetry::bridge::tracing_layer::AgentcoreLayer;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tracing_subscriber::layer::SubscriberExt;
    static FORMATTED: AtomicUsize = AtomicUsize::new(0);
    let t: &'static DistributedTracer = Box::leak(Box::new(disabled()));
    let subscriber = tracing_subscriber::registry().with(AgentcoreLayer::new(t));
    let parent = extract(TRACEPARENT);
    let got = tracing::subscriber::with_default(subscriber, || {
        let _cx = t.attach(parent.clone());
        let span = tracing::info_span!("outer", field = ?Counted(&FORMATTED));
        let _e = span.enter();
        tracing::info!(value = ?Counted(&FORMATTED), "event");
        let root = tracing::info_span!(parent: None, "root", field = ?Counted(&FORMATTED));
        let _r = root.enter();
        inject(&t.start_span("ours", SpanKind::Client, []).context())
    });
    assert_eq!(got, caller_headers(TRACEPARENT));
    assert_eq!(FORMATTED.load(Ordering::Relaxed), 0);
    assert_nothing_recorded(t);
}

/// The same headers through the real Python SDK (opentelemetry-sdk, the CI venv of
/// `.ci/install-otlp-oracles`) with `OTEL_SDK_DISABLED=true`: its `TracerProvider` hands out a
/// `NoOpTracer`, whose span is `NonRecordingSpan(parent span context)`. Extracted and attached,
/// a span and its child started as current, injected: our headers must be Python's.
/// Skipped (with a banner) without the venv outside CI, as the OTLP differential tests are.
#[cfg(feature = "otlp")]
#[test]
fn the_python_sdk_injects_the_same_headers() {
    use std::collections::BTreeMap;
    use std::process::Command;
    // First: the environment is written (once) before this test reads it.
    let t = disabled();
    if !support::otlp::require_otlp_oracles("the_python_sdk_injects_the_same_headers") {
        return;
    }
    let python = support::otlp::python().expect("checked above");
    const SCRIPT: &str = r#"
import sys
from opentelemetry import context, propagate
from opentelemetry.sdk.trace import TracerProvider
args = sys.argv[1:]
carrier = dict(zip(args[::2], args[1::2]))
tracer = TracerProvider().get_tracer("agentcore.differential")
context.attach(propagate.extract(carrier))
with tracer.start_as_current_span("op"):
    with tracer.start_as_current_span("child"):
        out = {}
        propagate.inject(out)
for k in sorted(out):
    print(k + "\t" + out[k])
"#;
    let cases: [&[(&str, &str)]; 5] = [
        &[
            ("traceparent", TRACEPARENT),
            ("tracestate", TRACESTATE),
            ("baggage", "tenant=acme,user_id=12345"),
        ],
        &[("traceparent", UNSAMPLED), ("tracestate", TRACESTATE)],
        &[("traceparent", TRACEPARENT)],
        &[("baggage", "tenant=acme")],
        &[
            (
                "traceparent",
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            ),
            ("baggage", "tenant=acme"),
        ],
    ];
    for case in cases {
        let out = Command::new(&python)
            .arg("-c")
            .arg(SCRIPT)
            .args(case.iter().flat_map(|(k, v)| [*k, *v]))
            .env("OTEL_SDK_DISABLED", "true")
            .output()
            .expect("python runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let theirs: BTreeMap<String, String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let get = |name: &str| case.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        let _cx = match TraceContext::extract(get) {
            Ok(Some(cx)) => t.attach(cx),
            _ => t.start_trace(None, TraceContext::extract_baggage(get)),
        };
        let span = t.start_span("op", SpanKind::Server, []);
        let child = t.start_span("child", SpanKind::Internal, []);
        let ours: BTreeMap<String, String> = inject(&child.context())
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        assert_eq!(ours, theirs, "{case:?}");
        // Python injects its current context: ours, the child's, must be the same.
        let current: BTreeMap<String, String> = t
            .current_context()
            .map(|cx| inject(&cx))
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        assert_eq!(current, theirs, "current context, {case:?}");
        drop((child, span));
    }
    assert_nothing_recorded(&t);
}

// Review rev-140: defects found after 87c669f.

/// A sampled context without a span (a trace root context: `from_map` of one, whose `sampled`
/// defaults to true, or another tracer's `start_trace`) made current, then a no-op span made
/// current in it (`attach`, `in_span`, `#[trace_operation]` on an `async fn`): its frame named
/// span id zero, sampled, and the exemplar cache was handed `(trace, 0)`, which its
/// `debug_assert` refuses ("no span is published as (0, 0)"): a panic in every debug build.
#[test]
fn a_no_op_span_in_a_sampled_context_without_a_span_publishes_no_span_for_exemplars() {
    let t: &'static DistributedTracer = Box::leak(Box::new(disabled()));
    let root = TraceContext::from_map([("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736")])
        .unwrap()
        .with_remote(false);
    assert!(root.is_sampled() && root.span_id().is_none());
    let _cx = t.attach(root.clone());
    let span = t.start_detached_span("op", SpanKind::Internal, []).attach();
    assert_eq!(t.current_context(), Some(root.clone()));
    let detached = span.detach();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let seen = rt.block_on(
        async {
            tokio::task::yield_now().await;
            t.current_context()
        }
        .in_span(detached),
    );
    assert_eq!(seen, Some(root));
    assert_nothing_recorded(t);
}

/// A no-op span started under the current context pushed no frame, so it stopped being its
/// children's parent as soon as that context ended, though it was still open: a function
/// that attaches the caller's context and returns the server span (the guard dropped at its
/// return, below the span) left the span's children, and `current_context()`, with nothing:
/// nothing injected downstream, the caller's trace broken, where the SDK (and a no-op span
/// with an explicit parent) keeps the span current until it ends.
#[test]
fn a_no_op_span_stays_current_after_the_context_it_started_in_ends() {
    fn handle<'t>(t: &'t DistributedTracer) -> agentcore_telemetry::Span<'t> {
        let _cx = t.attach(extract(TRACEPARENT));
        t.start_span("handle", SpanKind::Server, [])
    }
    // The SDK: the span stays current until it ends.
    let on = enabled();
    let span = handle(&on);
    assert_eq!(
        on.start_span("child", SpanKind::Client, [])
            .parent_span_id(),
        Some(span.span_id())
    );
    drop(span);
    // The no-op SDK: the span's context (the caller's) stays current likewise.
    let t = disabled();
    let span = handle(&t);
    assert_eq!(t.current_context(), Some(span.context()));
    let child = t.start_span("child", SpanKind::Client, []);
    assert_eq!(inject(&child.context()), caller_headers(TRACEPARENT));
    drop(child);
    // Out of order: an explicit parent's span ends before its child.
    let outer = t.start_span_with_parent("outer", SpanKind::Server, [], Some(&extract(UNSAMPLED)));
    let inner = t.start_span("inner", SpanKind::Internal, []);
    drop(outer);
    assert_eq!(
        inject(&t.start_span("c", SpanKind::Client, []).context()),
        caller_headers(UNSAMPLED)
    );
    drop(inner);
    drop(span);
    assert_eq!(t.current_context(), None);
    assert_nothing_recorded(&t);
}

mod traced_operations {
    //! `#[trace_operation]` (sync and `async`) on the global tracer, disabled here: the caller's
    //! context passes through, across `.await` on a multi-thread runtime, with errors and panics.
    use super::*;
    use agentcore_telemetry::{get_distributed_tracer, trace_operation};

    fn global() -> &'static DistributedTracer {
        let _ = disabled(); // the environment first
        let t = get_distributed_tracer();
        assert!(t.is_sdk_disabled());
        t
    }

    #[trace_operation]
    fn sync_op(fail: bool) -> Result<Vec<(&'static str, String)>, std::io::Error> {
        let cx = get_distributed_tracer().current_context().unwrap();
        if fail {
            return Err(std::io::Error::other("boom"));
        }
        Ok(inject(&cx))
    }

    #[trace_operation(name = "async_op")]
    async fn async_op(fail: bool) -> Result<Vec<(&'static str, String)>, String> {
        tokio::task::yield_now().await;
        let inner = sync_op(false).map_err(|e| e.to_string())?;
        tokio::task::yield_now().await;
        let cx = get_distributed_tracer().current_context().unwrap();
        assert_eq!(inject(&cx), inner);
        if fail {
            return Err("boom".into());
        }
        Ok(inject(&cx))
    }

    #[test]
    fn sync_and_async_pass_the_caller_on() {
        let t = global();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let _cx = t.attach(extract(TRACEPARENT));
        assert_eq!(sync_op(false).unwrap(), caller_headers(TRACEPARENT));
        assert!(sync_op(true).is_err());
        let fut = async_op(false);
        let fail = async_op(true);
        let got = rt.block_on(async move {
            let a = tokio::spawn(fut).await.unwrap();
            let b = tokio::spawn(fail).await.unwrap();
            (a, b)
        });
        assert_eq!(got.0.unwrap(), caller_headers(TRACEPARENT));
        assert!(got.1.is_err());
        // A panic through a traced function and a no-op span leaves no frame behind.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _s = t.start_span("p", SpanKind::Internal, []);
            #[trace_operation]
            fn panics() {
                panic!("boom");
            }
            panics();
        }));
        assert!(r.is_err());
        drop(_cx);
        assert_eq!(t.current_context(), None);
        // Without a caller: invalid, nothing injected.
        assert!(sync_op(false).unwrap().is_empty());
        assert!(rt.block_on(async_op(false)).unwrap().is_empty());
        assert_eq!(t.current_context(), None);
        assert_nothing_recorded(t);
    }
}

/// `Span::record` on a `tracing` span, on a disabled tracer: the layer visited (formatted) the
/// values before it looked for a span of ours, which it never has there, though the layer's
/// docs say a disabled tracer's `tracing` fields are never visited.
#[cfg(feature = "tracing-bridge")]
#[test]
fn the_tracing_bridge_formats_no_recorded_value() {
    use agentcore_telemetry::bridge::tracing_layer::AgentcoreLayer;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tracing_subscriber::layer::SubscriberExt;
    static FORMATTED: AtomicUsize = AtomicUsize::new(0);
    let t: &'static DistributedTracer = Box::leak(Box::new(disabled()));
    let subscriber = tracing_subscriber::registry().with(AgentcoreLayer::new(t));
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("outer", field = tracing::field::Empty);
        span.record("field", tracing::field::debug(Counted(&FORMATTED)));
        let _e = span.enter();
        tracing::Span::current().record("field", tracing::field::debug(Counted(&FORMATTED)));
    });
    assert_eq!(FORMATTED.load(Ordering::Relaxed), 0);
    assert_nothing_recorded(t);
}

/// A no-op span's all-zero span id (public since 87c669f: `span_id()` of a no-op span whose
/// parent context has no span) made into a context by hand: `inject` wrote W3C's invalid
/// all-zero parent id, which our own `extract` refuses, and an enabled tracer took it as the
/// parent span id of its spans.
#[test]
fn a_context_built_from_a_no_op_spans_ids_names_no_span_id_zero() {
    let t = disabled();
    let _trace = t.start_trace(Some("4bf92f3577b34da6a3ce929d0e0e4736"), []);
    let span = t.start_span("op", SpanKind::Internal, []);
    assert_eq!(span.span_id().to_u64(), 0);
    let cx = TraceContext::new(span.trace_id(), Some(span.span_id()), true);
    let headers = inject(&cx);
    assert!(
        headers.iter().all(|(k, _)| *k != "traceparent"),
        "{headers:?}"
    );
    assert_eq!(cx.span_id(), None);
    let on = enabled();
    let _cx = on.attach(cx);
    assert_eq!(
        on.start_span("x", SpanKind::Internal, []).parent_span_id(),
        None
    );
}
