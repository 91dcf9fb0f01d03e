//! The `tracing` bridge with the real `tracing` and `tracing-subscriber` crates: spans, fields of
//! every type, events (capped), the `otel.*` and `error` conventions, links, and parents when
//! `tracing` spans and our own spans nest in either order, in synchronous code and across
//! `.instrument()`ed futures. Every assertion reads the tracer's span log.

use agentcore_telemetry::bridge::tracing_layer::AgentcoreLayer;
use agentcore_telemetry::{
    DistributedTracer, FutureExt, Sampler, SpanKind, SpanLimits, SpanRecord, SpanStatus, TraceId,
    TracerConfig, Value,
};
use tracing::Instrument;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Layer;

/// A tracer for the life of the test binary: `AgentcoreLayer` takes a `&'static` one. Each is
/// also kept in `KEPT`, a static, so that LeakSanitizer (`.ci/asan`) finds it reachable and
/// reports only what the library itself leaks.
fn tracer_with(config: TracerConfig) -> &'static DistributedTracer {
    static KEPT: std::sync::Mutex<Vec<&'static DistributedTracer>> =
        std::sync::Mutex::new(Vec::new());
    let t: &'static DistributedTracer = Box::leak(Box::new(DistributedTracer::new(config)));
    KEPT.lock().unwrap_or_else(|e| e.into_inner()).push(t);
    t
}

fn tracer() -> &'static DistributedTracer {
    tracer_with(TracerConfig::default())
}

fn subscriber(tracer: &'static DistributedTracer) -> impl tracing::Subscriber + Send + Sync {
    tracing_subscriber::registry().with(AgentcoreLayer::new(tracer))
}

/// The current trace id of `tracer` (inside an entered span).
fn current_trace(tracer: &DistributedTracer) -> TraceId {
    tracer
        .current_context()
        .expect("a current context")
        .trace_id()
}

fn named<'a>(spans: &'a [SpanRecord], name: &str) -> &'a SpanRecord {
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no span {name:?} in {:?}", names(spans)))
}

fn names(spans: &[SpanRecord]) -> Vec<&str> {
    spans.iter().map(|s| &*s.name).collect()
}

#[derive(Debug)]
struct DiskFull;
impl std::fmt::Display for DiskFull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("disk full")
    }
}
impl std::error::Error for DiskFull {}

#[test]
fn nested_spans_typed_fields_and_events() {
    let t = tracer();
    let trace = tracing::subscriber::with_default(subscriber(t), || {
        let outer = tracing::info_span!(
            "outer",
            int = -7_i64,
            small = 42_u64,
            huge = u64::MAX,
            ratio = 0.5_f64,
            flag = true,
            text = "hello",
            shown = %"display",
            debugged = ?vec![1, 2],
            error = &DiskFull as &(dyn std::error::Error + 'static),
        );
        let _o = outer.enter();
        let inner = tracing::debug_span!("inner", step = 1_i64);
        inner.in_scope(|| {
            tracing::info!(tokens = 12_i64, model = "gpt", "called the model");
            tracing::warn!(retry = true);
        });
        current_trace(t)
    });
    let spans = t.get_trace_spans(trace);
    assert_eq!(names(&spans).len(), 2, "{:?}", names(&spans));
    let outer = named(&spans, "outer");
    let inner = named(&spans, "inner");
    assert_eq!(outer.parent_span_id, None);
    assert_eq!(inner.parent_span_id, Some(outer.span_id));
    assert_eq!(inner.trace_id, outer.trace_id);
    assert_eq!(outer.kind, SpanKind::Internal);
    // Typed values, not strings.
    assert_eq!(outer.attribute("int"), Some(&Value::I64(-7)));
    assert_eq!(outer.attribute("small"), Some(&Value::I64(42)));
    assert_eq!(
        outer.attribute("huge"),
        Some(&Value::from(u64::MAX.to_string()))
    );
    assert_eq!(outer.attribute("ratio"), Some(&Value::F64(0.5)));
    assert_eq!(outer.attribute("flag"), Some(&Value::Bool(true)));
    assert_eq!(outer.attribute("text"), Some(&Value::from("hello")));
    assert_eq!(outer.attribute("shown"), Some(&Value::from("display")));
    assert_eq!(outer.attribute("debugged"), Some(&Value::from("[1, 2]")));
    assert_eq!(outer.attribute("error"), Some(&Value::from("disk full")));
    // An error field is an `exception` event (OpenTelemetry's exception conventions), not an
    // `exception.message` span attribute (review helper-120).
    assert_eq!(outer.attribute("exception.message"), None);
    assert_eq!(outer.events.len(), 1, "{:?}", outer.events);
    assert_eq!(outer.events[0].name, "exception");
    let exception: Vec<_> = outer.events[0]
        .attributes
        .iter()
        .map(|kv| (&*kv.key, kv.value.clone()))
        .collect();
    assert_eq!(exception, [("exception.message", Value::from("disk full"))]);
    // Events: message as name, level and target, typed fields; no message: callsite name.
    assert_eq!(inner.events.len(), 2);
    let e = &inner.events[0];
    assert_eq!(e.name, "called the model");
    let attr = |e: &agentcore_telemetry::tracer::Event, k: &str| {
        e.attributes
            .iter()
            .find(|kv| kv.key == k)
            .map(|kv| kv.value.clone())
    };
    assert_eq!(attr(e, "level"), None, "an option, off by default");
    assert_eq!(attr(e, "tokens"), Some(Value::I64(12)));
    assert_eq!(attr(e, "model"), Some(Value::from("gpt")));
    assert!(inner.events[1]
        .name
        .starts_with("event tests/bridge_tracing.rs:"));
    assert_eq!(attr(&inner.events[1], "retry"), Some(Value::Bool(true)));
    assert_eq!(inner.status, SpanStatus::Unset);
}

#[test]
fn otel_fields_error_events_and_late_records() {
    let t = tracer();
    let trace = tracing::subscriber::with_default(subscriber(t), || {
        let s = tracing::info_span!(
            "GET /users/{id}",
            otel.name = "GET /users/42",
            otel.kind = "SERVER",
            otel.status_code = tracing::field::Empty,
            late = tracing::field::Empty,
        );
        let _e = s.enter();
        s.record("late", 3_i64);
        s.record("otel.status_code", "ok");
        let trace = current_trace(t);
        let failing = tracing::info_span!("call", otel.kind = "client");
        failing.in_scope(|| {
            tracing::error!(error = ?std::io::ErrorKind::TimedOut);
        });
        let logged = tracing::info_span!("logged");
        logged.in_scope(|| tracing::error!("something broke"));
        let described = tracing::info_span!(
            "described",
            otel.status_code = "error",
            otel.status_description = "quota exhausted"
        );
        drop(described);
        trace
    });
    let spans = t.get_trace_spans(trace);
    let server = named(&spans, "GET /users/42");
    assert_eq!(server.kind, SpanKind::Server);
    assert_eq!(server.status, SpanStatus::Ok);
    assert_eq!(server.attribute("late"), Some(&Value::I64(3)));
    assert!(
        server.attribute("otel.name").is_none(),
        "reserved fields are not attributes"
    );
    let call = named(&spans, "call");
    assert_eq!(call.kind, SpanKind::Client);
    assert_eq!(call.status, SpanStatus::Error);
    assert_eq!(call.status_message, "TimedOut");
    assert_eq!(call.events[0].name, "exception");
    assert!(call.events[0]
        .attributes
        .iter()
        .any(|kv| kv.key == "exception.message" && kv.value == Value::from("TimedOut")));
    let logged = named(&spans, "logged");
    assert_eq!(logged.status, SpanStatus::Error);
    assert_eq!(logged.events[0].name, "something broke");
    let described = named(&spans, "described");
    assert_eq!(described.status, SpanStatus::Error);
    assert_eq!(described.status_message, "quota exhausted");
}

/// OpenTelemetry records an exception as an event named `exception` carrying
/// `exception.message` (and `exception.type`, `exception.stacktrace`); `exception.*` are no span
/// attributes. An event with an error value recorded as `&dyn Error` set the span attribute
/// `exception.message` (review helper-120): it is the event's attribute only, and an event
/// without a message is named `exception`.
#[test]
fn an_error_value_is_an_exception_event_never_a_span_attribute() {
    let t = tracer();
    let trace = tracing::subscriber::with_default(subscriber(t), || {
        let s = tracing::info_span!("op", error = tracing::field::Empty);
        let _e = s.enter();
        tracing::warn!(
            cause = &DiskFull as &(dyn std::error::Error + 'static),
            "retrying"
        );
        tracing::error!(error = &DiskFull as &(dyn std::error::Error + 'static));
        s.record(
            "error",
            &std::io::Error::other("late") as &(dyn std::error::Error + 'static),
        );
        current_trace(t)
    });
    let op = named(&t.get_trace_spans(trace), "op").clone();
    assert_eq!(
        op.attribute("exception.message"),
        None,
        "{:?}",
        op.attributes
    );
    assert_eq!(op.attribute("error"), Some(&Value::from("late")));
    let events: Vec<_> = op.events.iter().map(|e| &*e.name).collect();
    assert_eq!(events, ["retrying", "exception", "exception"]);
    let attr = |i: usize, k: &str| {
        op.events[i]
            .attributes
            .iter()
            .find(|kv| kv.key == k)
            .map(|kv| kv.value.clone())
    };
    assert_eq!(attr(0, "exception.message"), Some(Value::from("disk full")));
    assert_eq!(attr(0, "cause"), Some(Value::from("disk full")));
    assert_eq!(attr(1, "exception.message"), Some(Value::from("disk full")));
    assert_eq!(attr(2, "exception.message"), Some(Value::from("late")));
    // The `ERROR` event's level sets the status, as before.
    assert_eq!(op.status, SpanStatus::Error);
}

#[test]
fn follows_from_becomes_a_link() {
    let t = tracer();
    let (a_id, b_trace) = tracing::subscriber::with_default(subscriber(t), || {
        let a = tracing::info_span!("producer");
        let a_cx = a.in_scope(|| t.current_context().unwrap());
        let b = tracing::info_span!(parent: None, "consumer");
        b.follows_from(&a);
        b.follows_from(&b); // a span may follow itself: no deadlock
        let trace = b.in_scope(|| current_trace(t));
        (a_cx, trace)
    });
    let consumer = named(&t.get_trace_spans(b_trace), "consumer").clone();
    assert_ne!(consumer.trace_id, a_id.trace_id());
    assert_eq!(consumer.links.len(), 2);
    assert_eq!(consumer.links[0].trace_id, a_id.trace_id());
    assert_eq!(Some(consumer.links[0].span_id), a_id.span_id());
    assert_eq!(consumer.links[1].span_id, consumer.span_id);
}

#[test]
fn a_long_lived_span_caps_its_events_and_counts_the_rest() {
    let t = tracer();
    let trace = tracing::subscriber::with_default(subscriber(t), || {
        let s = tracing::info_span!("stream");
        let _e = s.enter();
        for i in 0..10_000_i64 {
            tracing::info!(chunk = i, "chunk {i}");
        }
        current_trace(t)
    });
    let spans = t.get_trace_spans(trace);
    let s = named(&spans, "stream");
    let max = SpanLimits::default().max_events;
    assert_eq!(s.events.len(), max as usize);
    assert_eq!(s.dropped_events_count, 10_000 - max);
    // The first ones are kept, in order.
    assert_eq!(s.events[0].name, "chunk 0");
    assert_eq!(s.events[127].name, "chunk 127");
}

#[test]
fn a_smaller_limit_is_honoured() {
    let t = tracer_with(TracerConfig {
        limits: Some(SpanLimits {
            max_events: 3,
            ..SpanLimits::default()
        }),
        ..TracerConfig::default()
    });
    let trace = tracing::subscriber::with_default(subscriber(t), || {
        let s = tracing::info_span!("short");
        let _e = s.enter();
        for _ in 0..10 {
            tracing::info!("tick");
        }
        current_trace(t)
    });
    let s = named(&t.get_trace_spans(trace), "short").clone();
    assert_eq!((s.events.len(), s.dropped_events_count), (3, 7));
}

#[test]
fn mixed_nesting_in_both_orders() {
    let t = tracer();
    let trace = tracing::subscriber::with_default(subscriber(t), || {
        // ours > tracing > ours > tracing, then siblings after each ends.
        let root = t.start_span("our_root", SpanKind::Server, []);
        let trace = root.trace_id();
        {
            let a = tracing::info_span!("tracing_a");
            let _a = a.enter();
            let ours = t.start_span("our_b", SpanKind::Internal, []);
            tracing::info_span!("tracing_c").in_scope(|| {
                let d = t.start_span("our_d", SpanKind::Client, []);
                d.end();
            });
            ours.end();
            // After our_b ended, tracing_a is current again.
            tracing::info_span!("tracing_e").in_scope(|| {});
        }
        // After tracing_a exited, our_root is current again.
        tracing::info_span!("tracing_f").in_scope(|| {});
        root.end();
        trace
    });
    let spans = t.get_trace_spans(trace);
    let id = |n: &str| named(&spans, n).span_id;
    let parent = |n: &str| named(&spans, n).parent_span_id;
    assert_eq!(spans.len(), 7, "{:?}", names(&spans));
    assert_eq!(parent("our_root"), None);
    assert_eq!(parent("tracing_a"), Some(id("our_root")));
    assert_eq!(parent("our_b"), Some(id("tracing_a")));
    assert_eq!(parent("tracing_c"), Some(id("our_b")));
    assert_eq!(parent("our_d"), Some(id("tracing_c")));
    assert_eq!(parent("tracing_e"), Some(id("tracing_a")));
    assert_eq!(parent("tracing_f"), Some(id("our_root")));
    assert!(spans.iter().all(|s| s.trace_id == trace));
}

#[test]
fn explicit_parents_and_roots() {
    let t = tracer();
    let (first, second) = tracing::subscriber::with_default(subscriber(t), || {
        let a = tracing::info_span!("a");
        let b = tracing::info_span!("b");
        let _b = b.enter();
        // Explicit parent a, although b is current.
        let c = tracing::info_span!(parent: &a, "c");
        let first = c.in_scope(|| current_trace(t));
        // An explicit root starts a new trace whatever is current.
        let r = tracing::info_span!(parent: None, "r");
        let second = r.in_scope(|| current_trace(t));
        (first, second)
    });
    let spans = t.get_trace_spans(first);
    assert_eq!(
        named(&spans, "c").parent_span_id,
        Some(named(&spans, "a").span_id)
    );
    let roots = t.get_trace_spans(second);
    assert_eq!(names(&roots), ["r"]);
    assert_eq!(roots[0].parent_span_id, None);
    assert_ne!(first, second);
}

async fn handle(t: &'static DistributedTracer, id: i64) {
    tokio::task::yield_now().await;
    let ours = t.start_detached_span("our_step", SpanKind::Internal, []);
    async {
        tokio::task::yield_now().await;
        tracing::info!(id, "inside our step");
        async { tokio::task::yield_now().await }
            .instrument(tracing::info_span!("tracing_leaf", id))
            .await;
    }
    .in_span(ours)
    .await;
}

#[test]
fn instrumented_futures_interleaved_on_one_thread() {
    let t = tracer();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let traces = tracing::subscriber::with_default(subscriber(t), || {
        rt.block_on(async {
            let a = tracing::info_span!("request", id = 1_i64);
            let b = tracing::info_span!("request", id = 2_i64);
            let ta = a.in_scope(|| current_trace(t));
            let tb = b.in_scope(|| current_trace(t));
            tokio::join!(handle(t, 1).instrument(a), handle(t, 2).instrument(b));
            [ta, tb]
        })
    });
    assert_ne!(traces[0], traces[1]);
    for trace in traces {
        let spans = t.get_trace_spans(trace);
        assert_eq!(spans.len(), 3, "{:?}", names(&spans));
        let request = named(&spans, "request");
        let step = named(&spans, "our_step");
        let leaf = named(&spans, "tracing_leaf");
        assert_eq!(request.parent_span_id, None);
        assert_eq!(step.parent_span_id, Some(request.span_id));
        assert_eq!(leaf.parent_span_id, Some(step.span_id));
        // An event belongs to its `tracing` span (the innermost one), even when one of our
        // spans is nested inside it: our spans take events through their own API.
        assert_eq!(step.events.len(), 0);
        assert_eq!(request.events.len(), 1);
        assert_eq!(
            request.attribute("id"),
            leaf.attribute("id"),
            "no mixing between the two requests"
        );
    }
}

#[test]
fn instrumented_tasks_on_a_multi_thread_runtime() {
    let t = tracer();
    let dispatch = tracing::Dispatch::new(subscriber(t));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let traces = tracing::dispatcher::with_default(&dispatch, || {
        rt.block_on(async {
            let mut tasks = Vec::new();
            let mut traces = Vec::new();
            for id in 0..8_i64 {
                let span = tracing::info_span!("request", id);
                traces.push(span.in_scope(|| current_trace(t)));
                let fut = tracing::instrument::WithSubscriber::with_current_subscriber(
                    handle(t, id).instrument(span),
                );
                tasks.push(tokio::spawn(fut));
            }
            for task in tasks {
                task.await.unwrap();
            }
            traces
        })
    });
    for trace in traces {
        let spans = t.get_trace_spans(trace);
        assert_eq!(spans.len(), 3, "{:?}", names(&spans));
        let step = named(&spans, "our_step");
        assert_eq!(step.parent_span_id, Some(named(&spans, "request").span_id));
        assert_eq!(
            named(&spans, "tracing_leaf").parent_span_id,
            Some(step.span_id)
        );
    }
}

#[test]
fn unsampled_spans_record_nothing_and_propagate_the_decision() {
    let t = tracer_with(TracerConfig {
        sampler: Some(Sampler::ratio(0.0)),
        ..TracerConfig::default()
    });
    tracing::subscriber::with_default(subscriber(t), || {
        let s = tracing::info_span!("unsampled", n = 1_i64);
        let _e = s.enter();
        tracing::info!("dropped before formatting");
        let cx = t.current_context().unwrap();
        assert!(!cx.is_sampled());
        let ours = t.start_span("our_child", SpanKind::Internal, []);
        assert_eq!(ours.trace_id(), cx.trace_id(), "one trace id, unsampled");
        assert!(!ours.is_recording());
        tracing::info_span!("tracing_child").in_scope(|| {
            assert_eq!(current_trace(t), cx.trace_id());
            assert!(!t.current_context().unwrap().is_sampled());
        });
        // Leaving the unsampled span removes its frame, or every later span of the thread
        // would be its child.
        drop(ours);
        drop(_e);
        assert!(t.current_context().is_none(), "the exit removed the frame");
        let _again = s.enter();
        assert_eq!(
            current_trace(t),
            cx.trace_id(),
            "entered again: the same ids"
        );
    });
    assert_eq!(t.stats().spans_finished, 0);
    assert_eq!(t.get_metrics().total_spans, 0);
}

/// Invariant 1 for `Span::record`: a value recorded into an unsampled span is never formatted
/// (it was visited, so formatted, then dropped), nor into a span a per-layer filter left out
/// (`tracing-subscriber` does not hand those to the layer); a sampled span's is formatted once,
/// and recorded, also when another layer's tracer does not sample it.
#[test]
fn a_value_recorded_into_an_unsampled_span_is_never_formatted() {
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    static FORMATTED: AtomicUsize = AtomicUsize::new(0);
    struct Counted;
    impl std::fmt::Debug for Counted {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            FORMATTED.fetch_add(1, Relaxed);
            f.write_str("counted")
        }
    }
    for (sampler, formatted) in [(Sampler::ratio(0.0), 0), (Sampler::always_on(), 1)] {
        FORMATTED.store(0, Relaxed);
        let t = tracer_with(TracerConfig {
            sampler: Some(sampler),
            ..TracerConfig::default()
        });
        let trace = tracing::subscriber::with_default(subscriber(t), || {
            let s = tracing::info_span!("late", value = tracing::field::Empty);
            let _e = s.enter();
            s.record("value", tracing::field::debug(Counted));
            current_trace(t)
        });
        assert_eq!(FORMATTED.load(Relaxed), formatted, "{formatted} expected");
        let spans = t.get_trace_spans(trace);
        if formatted == 1 {
            let late = named(&spans, "late");
            assert_eq!(late.attribute("value"), Some(&Value::from("counted")));
        } else {
            assert!(spans.is_empty());
        }
    }
    // A span this layer's filter left out: `tracing-subscriber` does not call the layer's
    // `on_record` for it (`Filtered::on_record` forwards only for spans its filter enabled),
    // before 88e55c9 too; kept as a guard. Another layer enables the span: with this layer
    // alone, no layer enabled it and `tracing` recorded nothing at all (the span was
    // disabled), whatever the layer does.
    struct Enables;
    impl<S: tracing::Subscriber> Layer<S> for Enables {}
    FORMATTED.store(0, Relaxed);
    let t = tracer();
    let filtered = tracing_subscriber::registry()
        .with(AgentcoreLayer::new(t).with_filter(LevelFilter::WARN))
        .with(Enables);
    tracing::subscriber::with_default(filtered, || {
        let s = tracing::info_span!("below the filter", value = tracing::field::Empty);
        assert!(!s.is_disabled(), "another layer enabled the span");
        s.record("value", tracing::field::debug(Counted));
    });
    assert_eq!(FORMATTED.load(Relaxed), 0);
    // Two layers, one whose tracer samples the span and one whose tracer does not: only the
    // first visits the value.
    FORMATTED.store(0, Relaxed);
    let (on, off) = (
        tracer(),
        tracer_with(TracerConfig {
            sampler: Some(Sampler::ratio(0.0)),
            ..TracerConfig::default()
        }),
    );
    let both = tracing_subscriber::registry()
        .with(AgentcoreLayer::new(off))
        .with(AgentcoreLayer::new(on));
    let trace = tracing::subscriber::with_default(both, || {
        let s = tracing::info_span!("late", value = tracing::field::Empty);
        let _e = s.enter();
        s.record("value", tracing::field::debug(Counted));
        current_trace(on)
    });
    assert_eq!(
        FORMATTED.load(Relaxed),
        1,
        "formatted by the sampling layer only"
    );
    let spans = on.get_trace_spans(trace);
    assert_eq!(
        named(&spans, "late").attribute("value"),
        Some(&Value::from("counted"))
    );
}

#[test]
fn a_per_layer_filter_skips_spans_and_children_attach_to_the_nearest_recorded_one() {
    let t = tracer();
    let subscriber =
        tracing_subscriber::registry().with(AgentcoreLayer::new(t).with_filter(LevelFilter::INFO));
    let trace = tracing::subscriber::with_default(subscriber, || {
        let top = tracing::info_span!("top");
        let _t = top.enter();
        let noisy = tracing::debug_span!("noisy");
        let _n = noisy.enter();
        tracing::info_span!("kept").in_scope(|| {});
        current_trace(t)
    });
    let spans = t.get_trace_spans(trace);
    assert_eq!(spans.len(), 2, "{:?}", names(&spans));
    assert_eq!(
        named(&spans, "kept").parent_span_id,
        Some(named(&spans, "top").span_id)
    );
}

#[test]
fn location_target_and_level_options() {
    let t = tracer();
    let layer = AgentcoreLayer::new(t)
        .with_location(true)
        .with_target(true)
        .with_level(true);
    let trace =
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            tracing::warn_span!("located").in_scope(|| {
                tracing::error!("failed");
                current_trace(t)
            })
        });
    let s = named(&t.get_trace_spans(trace), "located").clone();
    assert_eq!(s.attribute("level"), Some(&Value::from("WARN")));
    assert_eq!(s.attribute("target"), Some(&Value::from("bridge_tracing")));
    assert_eq!(
        s.attribute("code.file.path"),
        Some(&Value::from("tests/bridge_tracing.rs"))
    );
    let e = &s.events[0];
    let attr = |k: &str| {
        e.attributes
            .iter()
            .find(|kv| kv.key == k)
            .map(|kv| kv.value.clone())
    };
    assert_eq!(attr("level"), Some(Value::from("ERROR")));
    assert_eq!(attr("target"), Some(Value::from("bridge_tracing")));
    assert_eq!(
        attr("code.file.path"),
        Some(Value::from("tests/bridge_tracing.rs"))
    );
    assert!(matches!(s.attribute("code.line.number"), Some(Value::I64(n)) if *n > 0));
}

#[test]
fn a_span_closed_outside_its_subscribers_scope_is_finished() {
    let t = tracer();
    let dispatch = tracing::Dispatch::new(subscriber(t));
    let (span, trace) = tracing::dispatcher::with_default(&dispatch, || {
        let s = tracing::info_span!("left_open");
        let trace = s.in_scope(|| current_trace(t));
        (s, trace)
    });
    drop(span);
    drop(dispatch);
    assert_eq!(names(&t.get_trace_spans(trace)), ["left_open"]);
}

#[test]
fn two_layers_on_one_subscriber_record_independent_spans() {
    // One tracer per exporter, say: each layer keeps its own span in the `tracing` span's
    // extensions, and acts on that one only.
    let t1 = tracer();
    let t2 = tracer();
    let subscriber = tracing_subscriber::registry()
        .with(AgentcoreLayer::new(t1))
        .with(AgentcoreLayer::new(t2));
    let (trace1, trace2) = tracing::subscriber::with_default(subscriber, || {
        let work = tracing::info_span!("work", n = 1_i64);
        let entered = work.enter();
        tracing::info!("one event");
        tracing::info_span!("step").in_scope(|| {});
        let traces = (current_trace(t1), current_trace(t2));
        work.record("n", 2_i64);
        drop(entered);
        // One frame per enter and per tracer: exiting leaves nothing current.
        assert!(t1.current_context().is_none(), "{:?}", t1.current_context());
        assert!(t2.current_context().is_none(), "{:?}", t2.current_context());
        traces
    });
    for (t, trace) in [(t1, trace1), (t2, trace2)] {
        let spans = t.get_trace_spans(trace);
        assert_eq!(names(&spans).len(), 2, "{:?}", names(&spans));
        let work = named(&spans, "work");
        let step = named(&spans, "step");
        assert_eq!(work.parent_span_id, None);
        assert_eq!(step.parent_span_id, Some(work.span_id));
        assert_eq!(
            work.events.len(),
            1,
            "the event once, on each tracer's span"
        );
        assert_eq!(work.events[0].name, "one event");
        assert_eq!(work.attribute("n"), Some(&Value::I64(2)));
        assert!(
            work.end_time_unix_nano > work.start_time_unix_nano,
            "ended at its close, not when the second layer started it"
        );
        assert_eq!(t.stats().spans_started, 2);
        assert_eq!(t.stats().spans_finished, 2);
    }
    assert_ne!(trace1, trace2, "two tracers, two independent traces");
}

#[test]
fn an_explicit_parent_filtered_out_for_the_layer_starts_a_new_trace() {
    // A layer that sees every level, so DEBUG spans exist in the registry.
    struct SeeAll;
    impl<S: tracing::Subscriber> Layer<S> for SeeAll {}
    let t = tracer();
    let subscriber = tracing_subscriber::registry()
        .with(SeeAll)
        .with(AgentcoreLayer::new(t).with_filter(LevelFilter::INFO));
    let (unrelated, child) = tracing::subscriber::with_default(subscriber, || {
        // A background job's parent, filtered out for our layer.
        let job = tracing::debug_span!(parent: None, "job");
        // Meanwhile an unrelated request is current on this thread.
        let request = tracing::info_span!(parent: None, "request");
        let _r = request.enter();
        let unrelated = current_trace(t);
        let step = tracing::info_span!(parent: &job, "job_step");
        (unrelated, step.in_scope(|| current_trace(t)))
    });
    assert_ne!(child, unrelated, "not in the current span's trace");
    assert_eq!(names(&t.get_trace_spans(unrelated)), ["request"]);
    let spans = t.get_trace_spans(child);
    assert_eq!(names(&spans), ["job_step"]);
    assert_eq!(
        spans[0].parent_span_id, None,
        "a root, as tracing-opentelemetry makes it"
    );
}

#[test]
fn out_of_order_exits_keep_the_context_and_are_not_reported_as_misuse() {
    let t = tracer();
    tracing::subscriber::with_default(subscriber(t), || {
        // Two traces; their guards dropped in another order than taken, which `tracing`
        // allows (guards held in a struct, say).
        let a = tracing::info_span!("a");
        let b = tracing::info_span!("b");
        let a_entered = a.enter();
        let b_entered = b.enter();
        let b_cx = t.current_context().unwrap();
        drop(a_entered);
        assert_eq!(t.current_context().unwrap().span_id(), b_cx.span_id());
        drop(b_entered);
        assert!(t.current_context().is_none(), "{:?}", t.current_context());
    });
    assert_eq!(t.stats().spans_ended_out_of_context, 0);
    let registry = agentcore_telemetry::Registry::new();
    t.register_metrics(&registry).unwrap();
    let text = registry.encode_text();
    let misuse: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("agentcore_tracer_context_misuse_total") && !l.ends_with(" 0"))
        .collect();
    assert!(misuse.is_empty(), "{misuse:?}");
}

#[test]
fn one_layer_added_twice_keeps_two_independent_spans() {
    // A copy of one layer, added twice, is two layers: neither drops nor doubles the other's.
    let t = tracer();
    let layer = AgentcoreLayer::new(t);
    let subscriber = tracing_subscriber::registry().with(layer).with(layer);
    let trace = tracing::subscriber::with_default(subscriber, || {
        let root = t.start_span("our_root", SpanKind::Server, []);
        let work = tracing::info_span!("work");
        work.in_scope(|| tracing::info!("one event"));
        assert_eq!(current_trace(t), root.trace_id(), "both frames gone");
        root.trace_id()
    });
    let spans = t.get_trace_spans(trace);
    let work: Vec<_> = spans.iter().filter(|s| s.name == "work").collect();
    assert_eq!(work.len(), 2, "{:?}", names(&spans));
    assert_ne!(work[0].span_id, work[1].span_id);
    let root = named(&spans, "our_root").span_id;
    assert!(
        work.iter().all(|s| s.parent_span_id == Some(root)),
        "{work:?}"
    );
    assert!(work.iter().all(|s| s.events.len() == 1), "{work:?}");
    assert_eq!(t.stats().spans_started, 3);
}

/// A span's explicit parent that the layer's filter left out: its parent for the layer is the
/// nearest recorded ancestor (per-layer filtering's `SpanRef::parent`), as for a contextual one
/// (an adversarial review found the first fix made it a root).
#[test]
fn an_explicit_parent_filtered_out_for_the_layer_passes_to_its_nearest_recorded_ancestor() {
    struct SeeAll;
    impl<S: tracing::Subscriber> Layer<S> for SeeAll {}
    let t = tracer();
    let subscriber = tracing_subscriber::registry()
        .with(SeeAll)
        .with(AgentcoreLayer::new(t).with_filter(LevelFilter::INFO));
    let (top_trace, contextual, explicit) = tracing::subscriber::with_default(subscriber, || {
        let top = tracing::info_span!("top");
        let _t = top.enter();
        let top_trace = t.current_context().unwrap().trace_id();
        let noisy = tracing::debug_span!("noisy"); // filtered out for our layer
        let _n = noisy.enter();
        let contextual =
            tracing::info_span!("contextual").in_scope(|| t.current_context().unwrap().trace_id());
        let explicit = tracing::info_span!(parent: &noisy, "explicit")
            .in_scope(|| t.current_context().unwrap().trace_id());
        (top_trace, contextual, explicit)
    });
    assert_eq!(
        contextual, top_trace,
        "contextual child of noisy: in top's trace"
    );
    assert_eq!(
        explicit, top_trace,
        "explicit child of noisy (same parent, same thread) left top's trace"
    );
}

/// A contextual span whose parent the layer's filter left out, entered where its nearest
/// recorded ancestor is not (a `debug_span!` worker moved to another thread, as
/// `tokio::spawn(work().instrument(debug_span!(..)))` does; or entered after that ancestor
/// exited): its parent for the layer is still that ancestor, not whatever our context stack
/// holds on that thread (nothing: it became the root of a new trace).
#[test]
fn a_contextual_span_under_a_filtered_out_parent_elsewhere_stays_in_the_trace() {
    /// Another layer that records DEBUG spans (a `fmt` layer, say): else `tracing` does not
    /// create them at all.
    struct SeeAll;
    impl<S: tracing::Subscriber> Layer<S> for SeeAll {}
    let t = tracer();
    let dispatch = tracing::Dispatch::new(
        tracing_subscriber::registry()
            .with(SeeAll)
            .with(AgentcoreLayer::new(t).with_filter(LevelFilter::INFO)),
    );
    let (trace, steps) = tracing::dispatcher::with_default(&dispatch, || {
        let request = tracing::info_span!("request");
        let (trace, worker) =
            request.in_scope(|| (current_trace(t), tracing::debug_span!("worker")));
        let on_thread = std::thread::scope(|s| {
            s.spawn(|| {
                tracing::dispatcher::with_default(&dispatch, || {
                    worker.in_scope(|| tracing::info_span!("step").in_scope(|| current_trace(t)))
                })
            })
            .join()
            .unwrap()
        });
        // The same, on this thread, after `request` exited.
        let later = worker.in_scope(|| tracing::info_span!("step").in_scope(|| current_trace(t)));
        (trace, [on_thread, later])
    });
    assert_eq!(steps, [trace, trace], "a step started a trace of its own");
    let spans = t.get_trace_spans(trace);
    assert_eq!(names(&spans).iter().filter(|n| **n == "step").count(), 2);
    let request = named(&spans, "request").span_id;
    assert!(spans
        .iter()
        .filter(|s| s.name == "step")
        .all(|s| s.parent_span_id == Some(request)));
}

/// 128-bit integers are integers: typed `I64` when they fit, as `u64` values are, on spans
/// (at creation and `record`) and events; beyond, their decimal string (they were strings
/// always, through `tracing`'s default `Debug` visit).
#[test]
fn wide_integers_that_fit_are_typed() {
    let t = tracer();
    let trace = tracing::subscriber::with_default(subscriber(t), || {
        let s = tracing::info_span!("s", a = -5_i128, b = 5_u128, c = tracing::field::Empty);
        let _e = s.enter();
        s.record("c", 7_u128);
        tracing::info!(a = -5_i128, b = u128::MAX, "wide");
        current_trace(t)
    });
    let spans = t.get_trace_spans(trace);
    let s = named(&spans, "s");
    assert_eq!(s.attribute("a"), Some(&Value::I64(-5)));
    assert_eq!(s.attribute("b"), Some(&Value::I64(5)));
    assert_eq!(s.attribute("c"), Some(&Value::I64(7)));
    let event = &s.events[0];
    let attr = |k: &str| {
        event
            .attributes
            .iter()
            .find(|kv| kv.key == k)
            .map(|kv| kv.value.clone())
    };
    assert_eq!(attr("a"), Some(Value::I64(-5)));
    assert_eq!(attr("b"), Some(Value::from(u128::MAX.to_string())));
}

/// A value whose `Debug` and `Display` write a little and then fail (`format!` would panic).
struct FailingFmt;
impl std::fmt::Debug for FailingFmt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("half")?;
        Err(std::fmt::Error)
    }
}
impl std::fmt::Display for FailingFmt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}
impl std::error::Error for FailingFmt {}

/// Fields whose formatting fails (a span field, an event field, an `error` field, a field
/// recorded as `&dyn Error`) are recorded as what they wrote, marked, and never panic inside
/// the layer (review helper-96: `format!` there panicked in the instrumented code).
#[test]
fn fields_whose_formatting_fails_are_recorded_not_a_panic() {
    let t = tracer();
    let trace = tracing::subscriber::with_default(subscriber(t), || {
        let s = tracing::info_span!("failing", field = ?FailingFmt);
        let _e = s.enter();
        tracing::info!(detail = ?FailingFmt, "an event");
        let e = FailingFmt;
        tracing::info!(
            cause = &e as &(dyn std::error::Error + 'static),
            "an error value"
        );
        let failed = tracing::info_span!("failed");
        failed.in_scope(|| tracing::error!(error = ?FailingFmt));
        current_trace(t)
    });
    let spans = t.get_trace_spans(trace);
    let marked = Value::from("half<fmt::Error>");
    let failing = named(&spans, "failing");
    assert_eq!(failing.attribute("field"), Some(&marked));
    let event_attribute = |i: usize, key: &str| {
        failing.events[i]
            .attributes
            .iter()
            .find(|kv| kv.key == key)
            .map(|kv| kv.value.clone())
    };
    assert_eq!(event_attribute(0, "detail"), Some(marked.clone()));
    assert_eq!(event_attribute(1, "cause"), Some(marked.clone()));
    let failed = named(&spans, "failed");
    assert_eq!(failed.status, SpanStatus::Error);
    assert_eq!(failed.status_message, "half<fmt::Error>");
}

/// The `error` convention sets the span's status whatever the span's event count: an `error`
/// event on a span whose events are full is dropped (before it is formatted, but for its
/// `error` field), and its status still becomes `Error` with the error's text, as
/// tracing-opentelemetry sets it (its `error_events_to_status` updates the status apart from
/// the event). Before (review helper-133), a `warn!(error = ..)` there left the status `Unset`.
#[test]
fn an_error_event_sets_the_status_of_a_span_whose_events_are_full() {
    let t = tracer_with(TracerConfig {
        limits: Some(SpanLimits {
            max_events: 1,
            ..SpanLimits::default()
        }),
        ..TracerConfig::default()
    });
    let trace = tracing::subscriber::with_default(subscriber(t), || {
        let request = tracing::info_span!("request");
        let _r = request.enter();
        let full = tracing::info_span!("full");
        full.in_scope(|| {
            tracing::info!("fills the span");
            tracing::warn!(error = "quota exhausted");
        });
        // An `ERROR` event's `error` field gives the message, as when there is room.
        let timed_out = tracing::info_span!("timed_out");
        timed_out.in_scope(|| {
            tracing::info!("fills the span");
            tracing::error!(error = ?std::io::ErrorKind::TimedOut);
        });
        // After a message, an `error` field is a plain field (no status from it), as with room.
        let plain = tracing::info_span!("plain");
        plain.in_scope(|| {
            tracing::info!("fills the span");
            tracing::warn!(error = "not the convention", "a message first");
        });
        current_trace(t)
    });
    let spans = t.get_trace_spans(trace);
    let full = named(&spans, "full");
    assert_eq!((full.events.len(), full.dropped_events_count), (1, 1));
    assert_eq!(
        (full.status, &*full.status_message),
        (SpanStatus::Error, "\"quota exhausted\"")
    );
    let timed_out = named(&spans, "timed_out");
    assert_eq!(
        (timed_out.status, &*timed_out.status_message),
        (SpanStatus::Error, "TimedOut")
    );
    assert_eq!(named(&spans, "plain").status, SpanStatus::Unset);
}

/// An unsampled span records nothing, so its fields are never formatted (the README: "an
/// unsampled span does not format it at all"): user `Debug`/`Display` code does not run and
/// nothing is copied. Before (review helper-133), the layer visited and formatted every field
/// of a new span before the sampler decided.
#[test]
fn an_unsampled_span_does_not_format_its_fields() {
    static FORMATTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    struct Counted;
    impl std::fmt::Debug for Counted {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            FORMATTED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            f.write_str("counted")
        }
    }
    impl std::fmt::Display for Counted {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            std::fmt::Debug::fmt(self, f)
        }
    }
    impl std::error::Error for Counted {}
    let formatted = || FORMATTED.load(std::sync::atomic::Ordering::SeqCst);
    let unsampled = tracer_with(TracerConfig {
        sampler: Some(Sampler::ratio(0.0)),
        ..TracerConfig::default()
    });
    tracing::subscriber::with_default(subscriber(unsampled), || {
        let s = tracing::info_span!(
            "unsampled",
            debugged = ?Counted,
            shown = %Counted,
            error = &Counted as &(dyn std::error::Error + 'static),
            otel.name = ?Counted,
        );
        s.in_scope(|| {
            tracing::info_span!("unsampled_child", debugged = ?Counted).in_scope(|| {});
            // Nor its events' fields, the `error` convention's included.
            tracing::info!(debugged = ?Counted, "an event");
            tracing::warn!(error = ?Counted);
        });
    });
    assert_eq!(formatted(), 0, "fields of unsampled spans were formatted");
    // A sampled span formats each once (the test would pass vacuously otherwise).
    let sampled = tracer();
    let trace = tracing::subscriber::with_default(subscriber(sampled), || {
        tracing::info_span!("sampled", debugged = ?Counted).in_scope(|| current_trace(sampled))
    });
    assert_eq!(formatted(), 1);
    let spans = sampled.get_trace_spans(trace);
    assert_eq!(
        named(&spans, "sampled").attribute("debugged"),
        Some(&Value::from("counted"))
    );
}

/// Invariant 4 for `Span::record`: no lock is held while a recorded value is formatted, so a
/// `Debug` impl may record into the very span it is a value of (and one that panics leaves the
/// span usable and unlocked). The sampled check (88e55c9) reads the extensions before the visit: it must
/// have released them by then.
#[test]
fn a_value_that_records_into_its_own_span_while_formatted() {
    struct Reenters(tracing::Span);
    impl std::fmt::Debug for Reenters {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            self.0.record("inner", 5_i64);
            f.write_str("outer")
        }
    }
    struct Panics;
    impl std::fmt::Debug for Panics {
        fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            panic!("a Debug impl that panics")
        }
    }
    let t = tracer();
    let trace = tracing::subscriber::with_default(subscriber(t), || {
        let s = tracing::info_span!(
            "reentrant",
            outer = tracing::field::Empty,
            inner = tracing::field::Empty,
            after = tracing::field::Empty
        );
        let _e = s.enter();
        s.record("outer", tracing::field::debug(Reenters(s.clone())));
        // Caught by the bridge (`user_fmt`), which records a marker in its place.
        s.record("after", tracing::field::debug(Panics));
        s.record("after", 7_i64);
        current_trace(t)
    });
    let spans = t.get_trace_spans(trace);
    let span = named(&spans, "reentrant");
    assert_eq!(span.attribute("outer"), Some(&Value::from("outer")));
    assert_eq!(span.attribute("inner"), Some(&Value::from(5_i64)));
    assert_eq!(span.attribute("after"), Some(&Value::from(7_i64)));
}

/// A span sampled but without a span-log slot (`Rec::Lost`: every slot held by an open span)
/// still takes a late `otel.status_code`: its status is what its finish counts (and what the
/// metrics hook sees). 88e55c9's check passes such a span on as sampled; an unsampled span's
/// late status is not visited, and counts nothing.
#[test]
fn a_late_status_reaches_a_sampled_span_without_a_slot() {
    for (sampler, errored) in [(Sampler::always_on(), 1), (Sampler::ratio(0.0), 0)] {
        let t = tracer_with(TracerConfig {
            sampler: Some(sampler),
            span_log_capacity: 16,
            span_log_shards: 1,
            from_env: false,
            ..TracerConfig::default()
        });
        let open: Vec<_> = (0..16)
            .map(|_| t.start_detached_span("open", SpanKind::Internal, []))
            .collect();
        tracing::subscriber::with_default(subscriber(t), || {
            let s = tracing::info_span!("lost", otel.status_code = tracing::field::Empty);
            s.record("otel.status_code", "ERROR");
        });
        let stats = t.stats();
        assert_eq!(
            (stats.spans_errored, stats.spans_dropped),
            (errored, errored),
            "{stats:?}"
        );
        open.into_iter().for_each(|s| s.end());
    }
}
