//! `start_trace(Some(""))` (a request without an id: `header.unwrap_or("")`) starts a trace of
//! its own with a random id, as `None` does. It used to hash the empty string to one fixed
//! trace id, so every such request of every process landed in one giant trace. The all-zero
//! W3C id, which W3C Trace Context declares invalid, is treated the same way. (`from_map`
//! refuses both as `InvalidTraceId`.)

use agentcore_telemetry::{DistributedTracer, SpanKind, TraceId, TracerConfig};

fn tracer() -> DistributedTracer {
    DistributedTracer::new(TracerConfig {
        from_env: false,
        ..TracerConfig::default()
    })
}

#[test]
fn an_empty_or_all_zero_trace_id_starts_a_random_trace() {
    let t = tracer();
    for invalid in ["", "00000000000000000000000000000000"] {
        let a = t.start_trace(Some(invalid), []);
        let a_id = a.trace_id();
        drop(a);
        let b = t.start_trace(Some(invalid), []);
        assert_ne!(
            a_id,
            b.trace_id(),
            "two requests without an id share a trace: {invalid:?}"
        );
        assert_eq!(b.get_baggage("trace.external_id"), None, "{invalid:?}");
        assert_ne!(b.trace_id(), TraceId::from_external(invalid));
        let span = t.start_span("handle", SpanKind::Server, []);
        assert_eq!(span.trace_id(), b.trace_id());
    }
    // A real external id still maps deterministically.
    let cx = t.start_trace(Some("request-123"), []);
    assert_eq!(cx.trace_id(), TraceId::from_external("request-123"));
    assert_eq!(cx.get_baggage("trace.external_id"), Some("request-123"));
}
