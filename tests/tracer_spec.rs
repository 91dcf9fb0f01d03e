//! The spec's tracer scenarios (span creation/management 9, trace context 6, distributed
//! tracer 12, global instance 1, integration 4; the 5 decorator scenarios are in
//! `tracer_macro.rs`). Each test uses its own tracer unless it is about the global one.

use agentcore_telemetry::tracer::{ContextMapError, EXTERNAL_ID_KEY};
use agentcore_telemetry::{
    get_distributed_tracer, DistributedTracer, KeyValue, SpanId, SpanKind, SpanRecord, SpanStatus,
    TraceContext, TraceId, TracerConfig, Value,
};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

fn tracer() -> DistributedTracer {
    DistributedTracer::new(TracerConfig {
        service_name: "agent-runtime".into(),
        span_log_capacity: 1024,
        ..TracerConfig::default()
    })
}

fn finished(tracer: &DistributedTracer, id: SpanId) -> SpanRecord {
    tracer.get_span_by_id(id).expect("span in the span log")
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

// ---- Span creation / management (9) ----

#[test]
fn spec_span_creation_has_ids_name_kind_and_unset_status() {
    let t = tracer();
    let span = t.start_span("create_agent", SpanKind::Internal, []);
    assert!(is_lower_hex(&span.trace_id().to_string(), 32));
    assert!(is_lower_hex(&span.span_id().to_string(), 16));
    assert!(span.is_recording());
    assert_eq!(span.parent_span_id(), None);
    let id = span.span_id();
    span.end();
    let r = finished(&t, id);
    assert_eq!(r.name, "create_agent");
    assert_eq!(r.kind, SpanKind::Internal);
    assert_eq!(r.status, SpanStatus::Unset);
    assert_eq!(r.parent_span_id, None);
}

#[test]
fn spec_span_initial_attributes_are_recorded() {
    let t = tracer();
    let span = t.start_span(
        "create_agent",
        SpanKind::Internal,
        [
            KeyValue::new("philosophy", "react"),
            KeyValue::new("priority", "high"),
        ],
    );
    let id = span.span_id();
    span.end();
    let r = finished(&t, id);
    assert_eq!(r.attribute("philosophy"), Some(&Value::from("react")));
    assert_eq!(r.attribute("priority"), Some(&Value::from("high")));
    assert_eq!(r.attributes.len(), 2);
}

#[test]
fn spec_span_set_attribute_typed_values_and_replacement() {
    let t = tracer();
    let mut span = t.start_span("op", SpanKind::Internal, []);
    span.set_attribute("agent_id", "agent-789");
    span.set_attribute("execution_mode", "async");
    span.set_attribute("retries", 3);
    span.set_attribute("ratio", 0.5);
    span.set_attribute("cached", true);
    span.set_attribute("agent_id", String::from("agent-790"));
    let id = span.span_id();
    span.end();
    let r = finished(&t, id);
    assert_eq!(r.attributes.len(), 5);
    assert_eq!(
        r.attribute("agent_id"),
        Some(&Value::from("agent-790".to_string()))
    );
    assert_eq!(r.attribute("execution_mode"), Some(&Value::from("async")));
    assert_eq!(r.attribute("retries"), Some(&Value::I64(3)));
    assert_eq!(r.attribute("ratio"), Some(&Value::F64(0.5)));
    assert_eq!(r.attribute("cached"), Some(&Value::Bool(true)));
}

#[test]
fn spec_span_add_event_with_and_without_attributes() {
    let t = tracer();
    let mut span = t.start_span("op", SpanKind::Internal, []);
    span.add_event(
        "agent_initialized",
        [KeyValue::new("container_id", "cont-456")],
    );
    span.add_event("agent_started", []);
    let id = span.span_id();
    span.end();
    let r = finished(&t, id);
    assert_eq!(r.events.len(), 2);
    assert_eq!(r.events[0].name, "agent_initialized");
    assert_eq!(
        r.events[0].attributes[0],
        KeyValue::new("container_id", "cont-456")
    );
    assert_eq!(r.events[1].name, "agent_started");
    assert!(r.events[1].attributes.is_empty());
    assert!(r.start_time_unix_nano <= r.events[0].time_unix_nano);
    assert!(r.events[0].time_unix_nano <= r.events[1].time_unix_nano);
    assert!(r.events[1].time_unix_nano <= r.end_time_unix_nano);
}

#[test]
fn spec_span_add_link_to_other_trace() {
    let t = tracer();
    let mut span = t.start_span("op", SpanKind::Internal, []);
    let other_trace = TraceId::from_external("trace-999");
    let other_span = SpanId::from_hex("0000000000000888").unwrap();
    span.add_link(
        other_trace,
        other_span,
        [KeyValue::new("relationship", "caused_by")],
    );
    let id = span.span_id();
    span.end();
    let r = finished(&t, id);
    assert_eq!(r.links.len(), 1);
    assert_eq!(r.links[0].trace_id, other_trace);
    assert_eq!(r.links[0].span_id, other_span);
    assert_eq!(
        r.links[0].attributes[0],
        KeyValue::new("relationship", "caused_by")
    );
}

#[test]
fn spec_span_finish_with_ok_status() {
    let t = tracer();
    let span = t.start_span("op", SpanKind::Internal, []);
    let id = span.span_id();
    t.finish_span(span, SpanStatus::Ok, None);
    let r = finished(&t, id);
    assert_eq!(r.status, SpanStatus::Ok);
    assert_eq!(r.status_message, "");
    assert!(r.end_time_unix_nano >= r.start_time_unix_nano);
}

#[test]
fn spec_span_finish_with_error_status_and_message() {
    let t = tracer();
    let span = t.start_span("op", SpanKind::Internal, []);
    let id = span.span_id();
    t.finish_span(span, SpanStatus::Error, Some("container failed"));
    let r = finished(&t, id);
    assert_eq!(r.status, SpanStatus::Error);
    assert_eq!(r.status_message, "container failed");
    assert_eq!(t.stats().spans_errored, 1);
}

#[test]
fn spec_span_duration_is_measured() {
    let t = tracer();
    let span = t.start_span("sleepy", SpanKind::Internal, []);
    let id = span.span_id();
    std::thread::sleep(Duration::from_millis(10));
    span.end();
    let r = finished(&t, id);
    assert!(r.duration_ms() >= 9.0, "{} ms", r.duration_ms());
    assert!(r.duration_ms() < 5_000.0);
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    assert!(now_ns.abs_diff(r.end_time_unix_nano) < 60_000_000_000);
}

#[test]
fn spec_span_all_kinds_are_recorded() {
    let t = tracer();
    for kind in [
        SpanKind::Internal,
        SpanKind::Server,
        SpanKind::Client,
        SpanKind::Producer,
        SpanKind::Consumer,
    ] {
        let span = t.start_span(kind.as_str(), kind, []);
        let id = span.span_id();
        span.end();
        assert_eq!(finished(&t, id).kind, kind);
        assert_eq!(finished(&t, id).name, kind.as_str());
    }
}

// ---- Trace context (6) ----

#[test]
fn spec_context_start_trace_generates_random_id() {
    let t = tracer();
    let a = t.start_trace(None, Vec::<(String, String)>::new());
    let a_id = a.trace_id();
    assert_eq!(a.span_id(), None);
    assert!(a.is_sampled());
    drop(a);
    let b = t.start_trace(None, Vec::<(String, String)>::new());
    assert_ne!(a_id, b.trace_id());
    let span = t.start_span("op", SpanKind::Internal, []);
    assert_eq!(span.trace_id(), b.trace_id());
    assert_eq!(span.parent_span_id(), None);
}

#[test]
fn spec_context_start_trace_with_caller_id() {
    let t = tracer();
    // A non-hex id maps deterministically and is kept as baggage.
    let first = t.start_trace(
        Some("request-123"),
        [("user_id", "12345"), ("tenant", "acme")],
    );
    let id = first.trace_id();
    assert_eq!(first.get_baggage(EXTERNAL_ID_KEY), Some("request-123"));
    assert_eq!(first.get_baggage("tenant"), Some("acme"));
    drop(first);
    let again = t.start_trace(Some("request-123"), [("k", "v")]);
    assert_eq!(again.trace_id(), id);
    drop(again);
    // A W3C id is used as is, without external-id baggage.
    let w3c = t.start_trace(Some("4bf92f3577b34da6a3ce929d0e0e4736"), [("k", "v")]);
    assert_eq!(
        w3c.trace_id().to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(w3c.get_baggage(EXTERNAL_ID_KEY), None);
}

#[test]
fn spec_context_set_and_get_baggage() {
    let t = tracer();
    let mut cx = t.start_trace(None, Vec::<(String, String)>::new());
    cx.set_baggage("user_id", "12345");
    cx.set_baggage("request_id", "req-789");
    assert_eq!(cx.get_baggage("user_id"), Some("12345"));
    assert_eq!(cx.get_baggage("request_id"), Some("req-789"));
    assert_eq!(cx.get_baggage("missing"), None);
    cx.set_baggage("user_id", "54321");
    assert_eq!(cx.get_baggage("user_id"), Some("54321"));
}

#[test]
fn spec_context_to_map_has_documented_keys() {
    let t = tracer();
    let mut cx = t.start_trace(
        Some("4bf92f3577b34da6a3ce929d0e0e4736"),
        [("user_id", "12345")],
    );
    cx.set_baggage("request_id", "req-789");
    let span = t.start_span("op", SpanKind::Client, []);
    let map = span.context().to_map();
    assert_eq!(map["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(map["span_id"], span.span_id().to_string());
    assert_eq!(map["sampled"], "true");
    assert_eq!(map["baggage.user_id"], "12345");
    assert_eq!(map["baggage.request_id"], "req-789");
    assert_eq!(map.len(), 5);
}

#[test]
fn spec_context_from_map_round_trips() {
    let mut cx = TraceContext::new(TraceId::random(), Some(SpanId::random()), false);
    cx.set_baggage("tenant", "acme");
    let btree: BTreeMap<String, String> = cx.to_map();
    assert_eq!(
        TraceContext::from_map(&btree),
        Ok(cx.clone().with_remote(true))
    );
    let hash: HashMap<String, String> = btree.into_iter().collect();
    let back = TraceContext::from_map(&hash).unwrap();
    assert_eq!(back, cx.clone().with_remote(true));
    assert!(!back.is_sampled());
    assert_eq!(back.get_baggage("tenant"), Some("acme"));
    assert_eq!(
        TraceContext::from_map([("span_id", "00f067aa0ba902b7")]),
        Err(ContextMapError::MissingTraceId)
    );
}

/// The specification's ids are strings (`"trace-123"`). `start_trace` maps one to a trace id and
/// keeps it as the baggage entry `trace.external_id`; `from_map`, the receiving side of the same
/// call, mapped it and dropped the string, so the receiver's spans could not be found by the
/// caller's id. It keeps it now, as `start_trace` does, unless the map carries the entry.
#[test]
fn spec_context_from_map_keeps_a_string_trace_id_as_start_trace_does() {
    use agentcore_telemetry::tracer::EXTERNAL_ID_KEY;
    let t = tracer();
    let sent = t.start_trace(Some("trace-123"), []);
    let received =
        TraceContext::from_map([("trace_id", "trace-123"), ("span_id", "span-456")]).unwrap();
    assert_eq!(received.trace_id(), sent.trace_id());
    assert_eq!(received.get_baggage(EXTERNAL_ID_KEY), Some("trace-123"));
    assert_eq!(
        received.get_baggage(EXTERNAL_ID_KEY),
        sent.get_baggage(EXTERNAL_ID_KEY)
    );
    // Passed on: a span started in it carries the entry to the next service.
    let _guard = t.attach(received);
    let span = t.start_span("handle", SpanKind::Server, []);
    assert_eq!(
        span.context().to_map()["baggage.trace.external_id"],
        "trace-123"
    );
    drop(span);
    // The map's own entry wins; a W3C id is no external id.
    let given = TraceContext::from_map([
        ("trace_id", "trace-123"),
        ("baggage.trace.external_id", "as-sent"),
    ])
    .unwrap();
    assert_eq!(given.get_baggage(EXTERNAL_ID_KEY), Some("as-sent"));
    let w3c = TraceContext::from_map([("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736")]).unwrap();
    assert_eq!(w3c.get_baggage(EXTERNAL_ID_KEY), None);
}

#[test]
fn spec_context_baggage_is_inherited_by_child_spans() {
    let t = tracer();
    let mut cx = t.start_trace(None, [("user_id", "12345")]);
    cx.set_baggage("request_id", "req-789");
    let parent = t.start_span("parent", SpanKind::Internal, []);
    let child = t.start_span("child", SpanKind::Internal, []);
    let child_cx = child.context();
    assert_eq!(child_cx.get_baggage("user_id"), Some("12345"));
    assert_eq!(child_cx.get_baggage("request_id"), Some("req-789"));
    assert_eq!(parent.context().get_baggage("user_id"), Some("12345"));
    assert_eq!(child.trace_id(), cx.trace_id());
}

// ---- Distributed tracer (12) ----

#[test]
fn spec_tracer_nested_spans_link_parent_and_child() {
    let t = tracer();
    let parent = t.start_span("agent_lifecycle", SpanKind::Internal, []);
    let child = t.start_span("initialize_container", SpanKind::Internal, []);
    let grandchild = t.start_span("pull_image", SpanKind::Client, []);
    let (p, c, g) = (parent.span_id(), child.span_id(), grandchild.span_id());
    t.finish_span(grandchild, SpanStatus::Ok, None);
    t.finish_span(child, SpanStatus::Ok, None);
    t.finish_span(parent, SpanStatus::Ok, None);
    assert_eq!(finished(&t, c).parent_span_id, Some(p));
    assert_eq!(finished(&t, g).parent_span_id, Some(c));
    assert_eq!(finished(&t, p).parent_span_id, None);
    let trace = finished(&t, p).trace_id;
    assert!([c, g].iter().all(|id| finished(&t, *id).trace_id == trace));
}

#[test]
fn spec_tracer_sibling_spans_share_the_parent() {
    let t = tracer();
    let parent = t.start_span("agent_lifecycle", SpanKind::Internal, []);
    let c1 = t.start_span("initialize_container", SpanKind::Internal, []);
    let c1_id = c1.span_id();
    t.finish_span(c1, SpanStatus::Ok, None);
    let c2 = t.start_span("execute_task", SpanKind::Internal, []);
    let c2_id = c2.span_id();
    t.finish_span(c2, SpanStatus::Ok, None);
    let p = parent.span_id();
    t.finish_span(parent, SpanStatus::Ok, None);
    assert_eq!(finished(&t, c1_id).parent_span_id, Some(p));
    assert_eq!(finished(&t, c2_id).parent_span_id, Some(p));
    assert!(t.current_context().is_none());
}

#[test]
fn spec_tracer_record_exception_then_error() {
    #[derive(Debug)]
    struct AgentError(&'static str);
    impl std::fmt::Display for AgentError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "agent failed: {}", self.0)
        }
    }
    let t = tracer();
    let mut span = t.start_span("create_agent", SpanKind::Internal, []);
    let err = AgentError("no capacity");
    t.record_exception(&mut span, &err);
    let id = span.span_id();
    t.finish_span(span, SpanStatus::Error, Some(&err.to_string()));
    let r = finished(&t, id);
    assert_eq!(r.status, SpanStatus::Error);
    assert_eq!(r.status_message, "agent failed: no capacity");
    let ev = &r.events[0];
    assert_eq!(ev.name, "exception");
    let ty = ev
        .attributes
        .iter()
        .find(|kv| kv.key == "exception.type")
        .unwrap();
    assert!(ty.value.as_str().unwrap().ends_with("AgentError"));
    let msg = ev
        .attributes
        .iter()
        .find(|kv| kv.key == "exception.message")
        .unwrap();
    assert_eq!(msg.value.as_str(), Some("agent failed: no capacity"));
}

#[test]
fn spec_tracer_get_trace_spans_returns_the_trace_sorted() {
    let t = tracer();
    let cx = t.start_trace(Some("trace-123"), [("k", "v")]);
    for name in ["create_agent", "initialize_container", "execute_task"] {
        t.start_span(name, SpanKind::Internal, []).end();
    }
    drop(cx);
    t.start_span("other_trace", SpanKind::Internal, []).end();
    let spans = t.get_trace_spans(TraceId::from_external("trace-123"));
    let names: Vec<_> = spans.iter().map(|s| s.name.to_string()).collect();
    assert_eq!(
        names,
        ["create_agent", "initialize_container", "execute_task"]
    );
    assert!(spans
        .windows(2)
        .all(|w| w[0].start_time_unix_nano <= w[1].start_time_unix_nano));
}

#[test]
fn spec_tracer_get_span_by_id_finds_a_finished_span() {
    let t = tracer();
    let span = t.start_span("op", SpanKind::Server, [KeyValue::new("a", 1)]);
    let id = span.span_id();
    assert!(
        t.get_span_by_id(id).is_none(),
        "not in the log before it finishes"
    );
    t.finish_span(span, SpanStatus::Ok, None);
    let r = finished(&t, id);
    assert_eq!(r.span_id, id);
    assert_eq!(r.status, SpanStatus::Ok);
    assert!(r.duration_ms() >= 0.0);
}

#[test]
fn spec_tracer_get_span_by_id_unknown_is_none() {
    let t = tracer();
    t.start_span("op", SpanKind::Internal, []).end();
    assert!(t
        .get_span_by_id(SpanId::from_hex("0000000000000456").unwrap())
        .is_none());
}

#[test]
fn spec_tracer_trace_summary() {
    let t = tracer();
    let cx = t.start_trace(Some("trace-summary"), [("k", "v")]);
    let root = t.start_span("create_agent", SpanKind::Internal, []);
    t.start_span("initialize_container", SpanKind::Internal, [])
        .finish(SpanStatus::Ok);
    std::thread::sleep(Duration::from_millis(2));
    t.start_span("execute_task", SpanKind::Internal, [])
        .finish(SpanStatus::Error);
    t.start_span("execute_task", SpanKind::Internal, [])
        .finish(SpanStatus::Error);
    root.finish(SpanStatus::Ok);
    let s = t.get_trace_summary(cx.trace_id()).unwrap();
    assert_eq!(s.trace_id, cx.trace_id());
    assert_eq!(s.span_count, 4);
    assert_eq!(s.error_count, 2);
    assert_eq!(
        s.operations,
        ["create_agent", "initialize_container", "execute_task"]
    );
    assert!(s.total_duration_ms >= 1.5);
    assert!(s.end_time > s.start_time);
    assert!((s.end_time - s.start_time) * 1000.0 - s.total_duration_ms < 0.01);
    assert!(s.start_time > 1.6e9, "Unix seconds");
}

#[test]
fn spec_tracer_trace_summary_of_unknown_trace_is_none() {
    let t = tracer();
    assert!(t
        .get_trace_summary(TraceId::from_external("nope"))
        .is_none());
}

#[test]
fn spec_tracer_queries_take_the_specification_string_ids() {
    // The specification queries with the ids as strings: `get_trace_spans("trace-123")`,
    // `get_span_by_id("span-456")`, `get_trace_summary("trace-123")`, the same strings
    // `start_trace` and `add_link` take.
    let t = tracer();
    let cx = t.start_trace(Some("trace-123"), [("k", "v")]);
    let span = t.start_span("create_agent", SpanKind::Internal, []);
    let span_hex = span.span_id().to_string();
    span.finish(SpanStatus::Ok);
    t.start_span("execute_task", SpanKind::Internal, [])
        .finish(SpanStatus::Error);
    let trace_id = cx.trace_id();
    drop(cx);
    let spans = t.get_trace_spans("trace-123");
    assert_eq!(spans.len(), 2);
    assert!(spans.iter().all(|s| s.trace_id == trace_id));
    let summary = t.get_trace_summary("trace-123").unwrap();
    assert_eq!(
        (summary.trace_id, summary.span_count, summary.error_count),
        (trace_id, 2, 1)
    );
    assert_eq!(
        t.get_span_by_id(span_hex.as_str()).unwrap().name,
        "create_agent"
    );
    // A W3C id as a string (from a log line, `to_map`) is the id itself; owned strings too.
    let trace_hex = trace_id.to_string();
    assert_eq!(t.get_trace_spans(&trace_hex).len(), 2);
    assert_eq!(
        t.get_trace_summary(trace_hex.clone()).unwrap().span_count,
        2
    );
    assert!(t.get_span_by_id(span_hex.clone()).is_some());
    // Unknown ids: nothing.
    assert!(t.get_trace_spans("trace-999").is_empty());
    assert!(t.get_trace_summary("trace-999").is_none());
    assert!(t.get_span_by_id("span-456").is_none());
    assert!(t.get_trace_spans("").is_empty());
    // Typed ids as before.
    assert_eq!(t.get_trace_spans(trace_id).len(), 2);
}

#[test]
fn spec_tracer_get_metrics() {
    let t = tracer();
    for i in 0..6 {
        let status = if i % 3 == 0 {
            SpanStatus::Error
        } else {
            SpanStatus::Ok
        };
        t.start_span("op", SpanKind::Internal, []).finish(status);
    }
    let cx = t.start_trace(None, [("k", "v")]);
    t.start_span("a", SpanKind::Internal, []).end();
    t.start_span("b", SpanKind::Internal, []).end();
    drop(cx);
    let m = t.get_metrics();
    assert_eq!(m.total_spans, 8);
    assert_eq!(m.error_spans, 2);
    assert!((m.error_rate_percent - 25.0).abs() < 1e-9);
    assert_eq!(m.unique_traces, 7);
    assert!(!m.export_enabled);
    assert_eq!((m.spans_started, m.spans_finished), (8, 8));
    assert_eq!(
        (m.spans_dropped, m.spans_overwritten, m.spans_unsampled),
        (0, 0, 0)
    );
}

/// The specification's example: 5 error spans of 150, `"error_rate_percent": 3.33`, which its
/// code computes as `5 / 150 * 100` (3.3333333333333335), unrounded.
#[test]
fn spec_tracer_error_rate_is_the_specifications_ratio() {
    let t = tracer();
    for i in 0..150 {
        let status = if i % 30 == 0 {
            SpanStatus::Error
        } else {
            SpanStatus::Ok
        };
        t.start_span("op", SpanKind::Internal, []).finish(status);
    }
    let m = t.get_metrics();
    assert_eq!((m.total_spans, m.error_spans), (150, 5));
    assert_eq!(m.error_rate_percent, 5.0 / 150.0 * 100.0);
    assert_eq!(format!("{:.2}", m.error_rate_percent), "3.33");
}

#[test]
fn spec_tracer_get_metrics_empty() {
    let m = tracer().get_metrics();
    assert_eq!((m.total_spans, m.error_spans, m.unique_traces), (0, 0, 0));
    assert_eq!(m.error_rate_percent, 0.0);
}

#[test]
fn spec_tracer_config_service_name_and_export_flag() {
    let t = DistributedTracer::new(TracerConfig {
        service_name: "agent-runtime".into(),
        from_env: false,
        ..TracerConfig::default()
    });
    assert_eq!(t.config().service_name, "agent-runtime");
    // True only while an exporter runs.
    assert!(!t.get_metrics().export_enabled);
    // Span export is the `otlp` feature's.
    #[cfg(feature = "otlp")]
    {
        let exporter = agentcore_telemetry::export::InMemorySpanExporter::new();
        t.start_export_with(
            exporter,
            agentcore_telemetry::export::BatchConfig::default(),
        )
        .unwrap();
        assert!(t.get_metrics().export_enabled);
        t.shutdown(std::time::Duration::from_secs(5)).unwrap();
        assert!(!t.get_metrics().export_enabled);
    }
    assert!(t.span_log_capacity() >= agentcore_telemetry::distributed::DEFAULT_SPAN_LOG_CAPACITY);
}

#[test]
fn spec_tracer_trace_lifecycle_example() {
    let t = tracer();
    let cx = t.start_trace(
        Some("request-123"),
        [("user_id", "12345"), ("tenant", "acme")],
    );
    let mut span = t.start_span(
        "create_agent",
        SpanKind::Internal,
        [
            KeyValue::new("philosophy", "react"),
            KeyValue::new("priority", "high"),
        ],
    );
    span.add_event(
        "agent_initialized",
        [KeyValue::new("container_id", "cont-456")],
    );
    span.add_event("agent_started", []);
    span.set_attribute("agent_id", "agent-789");
    span.set_attribute("execution_mode", "async");
    let result: Result<(), std::io::Error> = Err(std::io::Error::other("boom"));
    let id = span.span_id();
    if let Err(e) = &result {
        t.record_exception(&mut span, e);
        t.finish_span(span, SpanStatus::Error, Some(&e.to_string()));
    } else {
        t.finish_span(span, SpanStatus::Ok, None);
    }
    let r = finished(&t, id);
    assert_eq!(r.trace_id, TraceId::from_external("request-123"));
    assert_eq!(r.attributes.len(), 4);
    assert_eq!(r.events.len(), 3);
    assert_eq!(r.status, SpanStatus::Error);
    assert_eq!(t.get_trace_summary(cx.trace_id()).unwrap().error_count, 1);
}

// ---- Global instance (1) ----

#[test]
fn spec_global_instance_is_a_singleton() {
    let a = get_distributed_tracer();
    let b = std::thread::spawn(|| get_distributed_tracer() as *const DistributedTracer as usize)
        .join()
        .unwrap();
    assert_eq!(a as *const DistributedTracer as usize, b);
    let span = a.start_span("global_op", SpanKind::Internal, []);
    let id = span.span_id();
    span.end();
    assert_eq!(
        get_distributed_tracer().get_span_by_id(id).unwrap().name,
        "global_op"
    );
}

// ---- Integration (4) ----

#[test]
fn spec_integration_cross_service_propagation() {
    let service_a = tracer();
    let service_b = tracer();
    let cx = service_a.start_trace(Some("request-123"), [("tenant", "acme")]);
    let client = service_a.start_span("call_b", SpanKind::Client, []);
    let wire = client.context().to_map();
    let client_id = client.span_id();
    // "Send" the map to service B, on another thread.
    let (server_id, server_trace, tenant) = std::thread::scope(|s| {
        s.spawn(|| {
            let remote = TraceContext::from_map(&wire).unwrap();
            let _attached = service_b.attach(remote);
            let server = service_b.start_span("handle", SpanKind::Server, []);
            let tenant = server.context().get_baggage("tenant").map(str::to_owned);
            let out = (server.span_id(), server.trace_id(), tenant);
            server.finish(SpanStatus::Ok);
            out
        })
        .join()
        .unwrap()
    });
    client.finish(SpanStatus::Ok);
    assert_eq!(server_trace, cx.trace_id());
    assert_eq!(tenant.as_deref(), Some("acme"));
    let server = service_b.get_span_by_id(server_id).unwrap();
    assert_eq!(server.parent_span_id, Some(client_id));
    assert!(server.parent_is_remote);
    assert_eq!(server.kind, SpanKind::Server);
    assert!(
        service_a.get_span_by_id(server_id).is_none(),
        "each tracer keeps its own spans"
    );
}

#[test]
fn spec_integration_independent_tracers_in_parallel_threads() {
    let tracers: Vec<DistributedTracer> = (0..4).map(|_| tracer()).collect();
    std::thread::scope(|s| {
        for t in &tracers {
            s.spawn(move || {
                for _ in 0..50 {
                    let root = t.start_span("root", SpanKind::Server, []);
                    let child = t.start_span("child", SpanKind::Internal, []);
                    assert_eq!(child.parent_span_id(), Some(root.span_id()));
                    child.end();
                    root.end();
                }
            });
        }
    });
    for t in &tracers {
        let m = t.get_metrics();
        assert_eq!((m.total_spans, m.unique_traces), (100, 50));
    }
    // Same thread, two tracers: each sees only its own current span.
    let (a, b) = (&tracers[0], &tracers[1]);
    let a_root = a.start_span("a_root", SpanKind::Internal, []);
    let b_root = b.start_span("b_root", SpanKind::Internal, []);
    let a_child = a.start_span("a_child", SpanKind::Internal, []);
    assert_eq!(a_child.parent_span_id(), Some(a_root.span_id()));
    assert_eq!(b_root.parent_span_id(), None);
    drop((a_child, b_root, a_root));
}

#[test]
fn spec_integration_fan_out_with_links() {
    let t = tracer();
    let producers: Vec<_> = (0..3)
        .map(|i| {
            let span = t.start_span("produce", SpanKind::Producer, [KeyValue::new("i", i)]);
            let cx = span.context();
            span.end();
            cx
        })
        .collect();
    let mut consumer = t.start_span("consume_batch", SpanKind::Consumer, []);
    for cx in &producers {
        consumer.add_link(
            cx.trace_id(),
            cx.span_id().unwrap(),
            [KeyValue::new("relationship", "batched")],
        );
    }
    let id = consumer.span_id();
    consumer.finish(SpanStatus::Ok);
    let r = finished(&t, id);
    assert_eq!(r.links.len(), 3);
    for (link, cx) in r.links.iter().zip(&producers) {
        assert_eq!(
            (link.trace_id, Some(link.span_id)),
            (cx.trace_id(), cx.span_id())
        );
        assert!(t.get_span_by_id(link.span_id).is_some());
    }
}

#[test]
fn spec_integration_agent_flow_across_threads_with_detached_span() {
    let t = tracer();
    let cx = t.start_trace(Some("agent-run-7"), [("agent", "react")]);
    let root = t.start_span("run_agent", SpanKind::Internal, []);
    let root_id = root.span_id();
    let worker_cx = root.context();
    let tool = t
        .start_span(
            "tool_call",
            SpanKind::Client,
            [KeyValue::new("tool", "calculator")],
        )
        .detach();
    let tool_id = tool.span_id();
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut tool = tool;
            tool.add_event("invoked", []);
            let _attached = t.attach(worker_cx);
            let step = t.start_span("reason_step", SpanKind::Internal, []);
            assert_eq!(step.parent_span_id(), Some(root_id));
            step.finish(SpanStatus::Ok);
            tool.finish(SpanStatus::Ok);
        });
    });
    root.finish(SpanStatus::Ok);
    let s = t.get_trace_summary(cx.trace_id()).unwrap();
    assert_eq!(s.span_count, 3);
    assert_eq!(s.operations, ["run_agent", "tool_call", "reason_step"]);
    assert_eq!(finished(&t, tool_id).parent_span_id, Some(root_id));
    assert_eq!(finished(&t, tool_id).events[0].name, "invoked");
}
