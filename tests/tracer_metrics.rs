//! The tracer feeds the registry's scrape: span counters and the per-operation duration
//! histogram appear in `encode_text()` with exact values.

mod support;

use agentcore_telemetry::{
    DistributedTracer, Registry, Sampler, SpanKind, SpanStatus, TracerConfig,
};
use support::exposition::{parse, value};

#[test]
fn span_counters_and_durations_appear_in_the_scrape() {
    let registry = Registry::new();
    let tracer = DistributedTracer::new(TracerConfig {
        span_log_capacity: 4,
        span_log_shards: 1,
        ..TracerConfig::default()
    });
    tracer.register_metrics(&registry).unwrap();
    tracer.register_metrics(&registry).unwrap(); // idempotent

    for i in 0..10 {
        let span = tracer.start_span("execute_tool", SpanKind::Client, []);
        let status = if i % 5 == 0 {
            SpanStatus::Error
        } else {
            SpanStatus::Ok
        };
        tracer.finish_span(span, status, None);
    }
    drop(tracer.start_span("create_agent", SpanKind::Internal, [])); // finished by drop: Unset

    let text = registry.encode_text();
    let f = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(
        value(&f, "agentcore_tracer_spans_started_total", &[]),
        Some(11.0)
    );
    assert_eq!(
        value(&f, "agentcore_tracer_spans_finished_total", &[]),
        Some(11.0)
    );
    assert_eq!(
        value(&f, "agentcore_tracer_spans_errored_total", &[]),
        Some(2.0)
    );
    // 11 spans into a 4-slot log: 7 overwritten.
    assert_eq!(
        value(
            &f,
            "agentcore_tracer_spans_dropped_total",
            &[("reason", "overwritten")]
        ),
        Some(7.0)
    );
    assert_eq!(
        value(
            &f,
            "agentcore_tracer_spans_dropped_total",
            &[("reason", "busy")]
        ),
        Some(0.0)
    );
    let count = |op: &str, status: &str| {
        value(
            &f,
            "agentcore_tracer_span_duration_seconds_count",
            &[("operation", op), ("status", status)],
        )
    };
    assert_eq!(count("execute_tool", "ok"), Some(8.0));
    assert_eq!(count("execute_tool", "error"), Some(2.0));
    assert_eq!(count("create_agent", "unset"), Some(1.0));
    let stats = tracer.stats();
    assert_eq!((stats.spans_started, stats.spans_overwritten), (11, 7));
}

#[test]
fn unsampled_spans_are_counted_but_not_timed() {
    let registry = Registry::new();
    let tracer = DistributedTracer::new(TracerConfig {
        sampler: Some(Sampler::ratio(0.0)),
        ..TracerConfig::default()
    });
    tracer.register_metrics(&registry).unwrap();
    for _ in 0..5 {
        tracer.start_span("noisy", SpanKind::Internal, []).end();
    }
    let f = parse(&registry.encode_text()).unwrap();
    assert_eq!(
        value(&f, "agentcore_tracer_spans_unsampled_total", &[]),
        Some(5.0)
    );
    assert_eq!(
        value(&f, "agentcore_tracer_spans_started_total", &[]),
        Some(0.0)
    );
    assert!(!registry
        .encode_text()
        .contains("agentcore_tracer_span_duration_seconds"));
}

#[test]
fn operation_cardinality_is_capped() {
    let registry = Registry::new();
    let tracer = DistributedTracer::new(TracerConfig {
        max_operations: 3,
        ..TracerConfig::default()
    });
    tracer.register_metrics(&registry).unwrap();
    for i in 0..10 {
        let span = tracer.start_span(format!("get_account/{i}"), SpanKind::Server, []);
        tracer.finish_span(span, SpanStatus::Ok, None);
    }
    let f = parse(&registry.encode_text()).unwrap();
    assert_eq!(
        value(
            &f,
            "agentcore_tracer_span_duration_seconds_count",
            &[("operation", "__overflow__"), ("status", "__overflow__")]
        ),
        Some(7.0)
    );
    assert_eq!(
        value(
            &f,
            "agentcore_telemetry_series_overflow_total",
            &[("family", "agentcore_tracer_span_duration_seconds")]
        ),
        Some(7.0)
    );
}

/// `max_operations: 0` is taken as 1, as every family's cap of 0 is (the documented rule):
/// one operation keeps its series, the rest fold into the overflow series.
#[test]
fn an_operation_cap_of_zero_is_taken_as_one() {
    let registry = Registry::new();
    let tracer = DistributedTracer::new(TracerConfig {
        max_operations: 0,
        ..TracerConfig::default()
    });
    tracer.register_metrics(&registry).unwrap();
    for name in ["a", "b", "c"] {
        let span = tracer.start_span(name, SpanKind::Internal, []);
        tracer.finish_span(span, SpanStatus::Ok, None);
    }
    let f = parse(&registry.encode_text()).unwrap();
    let count =
        |labels: &[(&str, &str)]| value(&f, "agentcore_tracer_span_duration_seconds_count", labels);
    assert_eq!(count(&[("operation", "a"), ("status", "ok")]), Some(1.0));
    assert_eq!(count(&[("operation", "b"), ("status", "ok")]), None);
    assert_eq!(
        count(&[("operation", "__overflow__"), ("status", "__overflow__")]),
        Some(2.0)
    );
}

/// A second tracer registered in a registry that holds another tracer's span counters: its
/// counters cannot be exposed beside the first's (the series have no label to tell them apart),
/// so it is refused, and the scrape stays one tracer's, consistent. It was accepted: its span
/// counters were left out while its durations went into the first's histogram, and the scrape
/// read 1 span started beside 3 timed.
#[test]
fn a_second_tracer_in_a_registry_is_refused_not_half_exposed() {
    let registry = Registry::new();
    let tracer = || {
        DistributedTracer::new(TracerConfig {
            span_log_capacity: 64,
            span_log_shards: 1,
            from_env: false,
            ..TracerConfig::default()
        })
    };
    let (a, b) = (tracer(), tracer());
    a.register_metrics(&registry).unwrap();
    let refused = b.register_metrics(&registry);
    a.start_span("op", SpanKind::Internal, []).end();
    for _ in 0..2 {
        b.start_span("op", SpanKind::Internal, []).end();
    }
    let text = registry.encode_text();
    assert!(
        matches!(
            &refused,
            Err(agentcore_telemetry::Error::DuplicateMetric { name })
                if name == "agentcore_tracer_spans_started_total"
        ),
        "{refused:?}\n{text}"
    );
    let f = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(
        value(&f, "agentcore_tracer_spans_started_total", &[]),
        Some(1.0)
    );
    assert_eq!(
        value(
            &f,
            "agentcore_tracer_span_duration_seconds_count",
            &[("operation", "op"), ("status", "unset")]
        ),
        Some(1.0),
        "{text}"
    );
    // The first tracer again: still a no-op.
    a.register_metrics(&registry).unwrap();
}
