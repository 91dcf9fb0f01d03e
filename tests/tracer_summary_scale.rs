//! `get_trace_summary` over a trace as large as the span log stays linear in its spans, even
//! when every span has its own operation name (span names built from ids are a common
//! mistake, and the summary must not turn it into a multi-second query).

use std::time::{Duration, Instant};

use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};

#[test]
fn a_summary_of_a_full_span_log_with_distinct_names_is_fast() {
    const SPANS: usize = 1 << 16;
    let tracer = DistributedTracer::new(TracerConfig {
        from_env: false,
        span_log_capacity: SPANS,
        span_log_shards: 1,
        ..TracerConfig::default()
    });
    let root = tracer.start_span("root", SpanKind::Server, []);
    let trace_id = root.trace_id();
    for i in 0..SPANS - 1 {
        tracer
            .start_span(format!("op-{i:06}"), SpanKind::Internal, [])
            .end();
    }
    root.end();
    let started = Instant::now();
    let summary = tracer.get_trace_summary(trace_id).unwrap();
    let took = started.elapsed();
    assert_eq!(summary.span_count, SPANS);
    assert_eq!(summary.operations.len(), SPANS);
    assert_eq!(summary.operations[0], "root");
    assert_eq!(summary.operations[1], "op-000000");
    assert_eq!(
        summary.operations[SPANS - 1],
        format!("op-{:06}", SPANS - 2)
    );
    assert!(
        took < Duration::from_secs(2),
        "get_trace_summary of {SPANS} spans took {took:?}"
    );
}
