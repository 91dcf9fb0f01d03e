//! Registering the same things again keeps nothing more: memory that grows with how often a
//! caller repeats an idempotent call is memory nobody bounds.
//!
//! This binary holds a single test function, so no other test thread allocates while it
//! measures.
#![cfg(feature = "otlp")]

use agentcore_telemetry::export::{ExportConfig, TracesExporter};
use agentcore_telemetry::{DistributedTracer, Registry, TracerConfig};
use support::alloc::live_bytes;

mod support;

#[global_allocator]
static GLOBAL: support::alloc::Counting = support::alloc::Counting;

/// `DistributedTracer::register_metrics` says that registering a tracer again in the same
/// registry is a no-op. With an exporter running, every call kept one more set of the
/// exporter's self-metric families (`ExportMetrics::register` pushed them whatever it held),
/// so the live heap grew with the number of calls, and every later export error type was
/// inserted once per call.
#[test]
fn registering_a_tracer_again_in_the_same_registry_keeps_nothing_more() {
    let tracer = DistributedTracer::new(TracerConfig {
        from_env: false,
        ..TracerConfig::default()
    });
    let config = ExportConfig {
        exporter: TracesExporter::Console,
        ..ExportConfig::default()
    };
    assert!(tracer.start_export(&config).unwrap());
    let registry = Registry::new();
    tracer.register_metrics(&registry).unwrap();
    let text = registry.encode_text();
    let before = live_bytes();
    const CALLS: i64 = 2_000;
    for _ in 0..CALLS {
        tracer.register_metrics(&registry).unwrap();
    }
    let grown = live_bytes() - before;
    assert_eq!(registry.encode_text(), text, "the exposition is unchanged");
    // A few bytes of slack for one-off allocations; one byte per call would be 2 000.
    assert!(
        grown < 4096,
        "{CALLS} repeated registrations grew the live heap by {grown} bytes ({} per call)",
        grown / CALLS
    );
}
