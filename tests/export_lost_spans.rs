//! A sampled span that found no span-log slot (every slot held by an open span) is a
//! finished span the exporter never sees: it must be counted as dropped if it finishes while
//! the exporter runs, as `exported + dropped = spans finished while exporting` requires.
//! The span log counted such a span when it *started*, if an exporter was attached then: a
//! span that started before the exporter and finished while it ran was neither exported nor
//! counted, and one that started while it ran and finished after its shutdown was counted
//! though it was not the exporter's (found by review).
#![cfg(feature = "otlp")]

use agentcore_telemetry::export::{BatchConfig, InMemorySpanExporter};
use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};
use std::time::Duration;

/// A tracer with one shard of 16 slots, and 16 open spans holding all of them.
fn full_tracer() -> DistributedTracer {
    DistributedTracer::new(TracerConfig {
        span_log_capacity: 16,
        span_log_shards: 1,
        from_env: false,
        ..TracerConfig::default()
    })
}

fn export(tracer: &DistributedTracer) -> InMemorySpanExporter {
    let exporter = InMemorySpanExporter::new();
    tracer
        .start_export_with(exporter.clone(), BatchConfig::default())
        .unwrap();
    exporter
}

#[test]
fn a_span_without_a_slot_finishing_while_exporting_is_counted_as_dropped() {
    let tracer = full_tracer();
    let open: Vec<_> = (0..16)
        .map(|_| tracer.start_detached_span("open", SpanKind::Internal, []))
        .collect();
    // Started before the exporter, with every slot held: no record.
    let lost = tracer.start_detached_span("lost", SpanKind::Internal, []);
    let exporter = export(&tracer);
    lost.end();
    open.into_iter().for_each(|s| s.end());
    tracer.force_flush(Duration::from_secs(5)).unwrap();
    tracer.shutdown(Duration::from_secs(5)).unwrap();
    let stats = tracer.stats();
    assert_eq!((stats.spans_finished, stats.spans_dropped), (17, 1));
    let e = tracer.export_stats().unwrap();
    assert_eq!(exporter.spans().len(), 16);
    assert_eq!(
        (e.exported, e.dropped()),
        (16, 1),
        "17 spans finished while exporting: {e:?}"
    );
}

#[test]
fn a_span_without_a_slot_finishing_after_the_shutdown_is_not_the_exporters() {
    let tracer = full_tracer();
    let exporter = export(&tracer);
    let open: Vec<_> = (0..16)
        .map(|_| tracer.start_detached_span("open", SpanKind::Internal, []))
        .collect();
    let lost = tracer.start_detached_span("lost", SpanKind::Internal, []);
    open.into_iter().for_each(|s| s.end());
    tracer.force_flush(Duration::from_secs(5)).unwrap();
    tracer.shutdown(Duration::from_secs(5)).unwrap();
    // Finished after the exporter stopped taking spans: not its own.
    lost.end();
    let e = tracer.export_stats().unwrap();
    assert_eq!(exporter.spans().len(), 16);
    assert_eq!(
        (e.exported, e.dropped()),
        (16, 0),
        "16 spans finished while exporting: {e:?}"
    );
}
