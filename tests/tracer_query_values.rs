//! The span-log queries' values at their edges: the error rate's precision, and the trace ids a
//! caller may pass as strings (`ToTraceId`).

use agentcore_telemetry::{DistributedTracer, SpanKind, SpanStatus, TracerConfig};

fn tracer() -> DistributedTracer {
    DistributedTracer::new(TracerConfig {
        from_env: false,
        // Room for 30,000 spans of one thread (a thread writes to its own shard of the log).
        span_log_capacity: 1 << 18,
        ..TracerConfig::default()
    })
}

fn rate(errors: usize, total: usize) -> f64 {
    let t = tracer();
    for i in 0..total {
        let status = if i < errors {
            SpanStatus::Error
        } else {
            SpanStatus::Ok
        };
        t.start_span("op", SpanKind::Internal, []).finish(status);
    }
    let m = t.get_metrics();
    assert_eq!((m.total_spans, m.error_spans), (total, errors));
    m.error_rate_percent
}

/// The rate is the specification's code's `error_spans / total_spans * 100`, unrounded
/// (`distributed_tracing.py`'s `get_metrics`; the specification's `3.33` for 5 of 150 is that
/// value shown to two places). Rounded to two decimals here, a few error spans among many
/// read as none: 1 error span of 30,000 (a default span log holds 65,536 spans) gave
/// `error_rate_percent` 0.0 beside `error_spans` 1.
#[test]
fn error_rate_is_the_unrounded_ratio() {
    assert_eq!(rate(1, 30_000), 1.0 / 30_000.0 * 100.0);
    assert_eq!(rate(1, 3), 1.0 / 3.0 * 100.0);
    assert_eq!(rate(2, 3), 2.0 / 3.0 * 100.0);
    assert_eq!(rate(1, 8), 12.5);
    assert_eq!(rate(1, 32), 3.125);
    assert_eq!(rate(3, 3), 100.0);
    assert_eq!(rate(0, 3), 0.0);
}

/// A trace id string that is not a W3C id never finds a trace started with another string:
/// the all-zero id (which `start_trace` refuses and replaces by a random id), a hex id of the
/// wrong length, an uppercase spelling of a W3C id (W3C ids are lowercase: the uppercase
/// string is an external id of its own, found by the same string).
#[test]
fn hostile_trace_id_strings_find_only_their_own_trace() {
    let t = tracer();
    let zeros = "0".repeat(32);
    let w3c = "4bf92f3577b34da6a3ce929d0e0e4736";
    let upper = w3c.to_uppercase();
    for id in [zeros.as_str(), w3c, upper.as_str(), &w3c[..31]] {
        let _trace = t.start_trace(Some(id), [("k", "v")]);
        t.start_span(id.to_string(), SpanKind::Internal, []).end();
    }
    assert!(t.get_trace_spans(zeros.as_str()).is_empty());
    assert!(t.get_trace_summary(zeros.as_str()).is_none());
    for id in [w3c, upper.as_str(), &w3c[..31]] {
        let spans = t.get_trace_spans(id);
        assert_eq!(spans.len(), 1, "{id}");
        assert_eq!(spans[0].name, id);
    }
    assert!(t.get_trace_spans(&w3c[..30]).is_empty());
    assert_eq!(t.get_metrics().unique_traces, 4);
}
