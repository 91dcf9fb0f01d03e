//! A tracer whose export is stopped and started again (a new endpoint, a restart after a
//! shutdown) keeps its registry's size: the self-metrics of a processor that is gone are not
//! kept for good.
#![cfg(feature = "otlp")]

use std::time::Duration;

use agentcore_telemetry::export::InMemorySpanExporter;
use agentcore_telemetry::{DistributedTracer, Registry, SpanKind, TracerConfig};

/// Restarts export `n` times; the exposition's sample lines after it.
fn samples_after_restarts(tracer: &DistributedTracer, registry: &Registry, n: usize) -> usize {
    for _ in 0..n {
        tracer
            .start_export_with(InMemorySpanExporter::new(), Default::default())
            .unwrap();
        tracer.start_span("op", SpanKind::Internal, []).end();
        tracer.shutdown(Duration::from_secs(5)).unwrap();
    }
    registry
        .encode_text()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .count()
}

/// Every start of export makes a processor with new `otel_component_name`s
/// (`batching_span_processor/N`, `in_memory_span_exporter/N`) and registers its series in
/// the tracer's registry. A processor replaced by the next start was never taken out: its
/// queue gauges and counters stayed exposed, frozen, and the registry and every scrape grew
/// by some 20 samples (about 7 KiB) per restart, up to each family's cardinality cap.
#[test]
fn restarting_export_does_not_grow_the_registry() {
    let tracer = DistributedTracer::new(TracerConfig {
        span_log_capacity: 64,
        from_env: false,
        ..TracerConfig::default()
    });
    let registry = Registry::new();
    tracer.register_metrics(&registry).unwrap();
    let after_two = samples_after_restarts(&tracer, &registry, 2);
    let after_fifty = samples_after_restarts(&tracer, &registry, 48);
    assert_eq!(
        after_fifty, after_two,
        "50 restarts of export left {after_fifty} samples in the exposition, 2 left {after_two}"
    );
}
