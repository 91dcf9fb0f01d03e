//! With a span exporter running, the recording thread still allocates nothing: finishing a
//! sampled span only marks its record for the exporter's cursor (counting allocator,
//! per thread: the exporter thread's own work is not the recording thread's).
//!
//! This binary holds a single test function, so no other test thread runs while it counts.
#![cfg(feature = "otlp")]

use agentcore_telemetry::export::{BatchConfig, InMemorySpanExporter};
use agentcore_telemetry::{DistributedTracer, KeyValue, SpanKind, SpanStatus, TracerConfig};
use std::time::Duration;
use support::alloc::{first_allocation, thread_allocations, trace_allocations};

mod support;

#[global_allocator]
static GLOBAL: support::alloc::Counting = support::alloc::Counting;

#[test]
fn recording_allocates_nothing_while_the_exporter_drains_the_span_log() {
    // Capacity 256: the loop wraps the span log many times, so the recording thread also
    // meets records the exporter has not read yet (evictions) and slots it is reading.
    let tracer = DistributedTracer::new(TracerConfig {
        span_log_capacity: 256,
        from_env: false,
        ..TracerConfig::default()
    });
    let exporter = InMemorySpanExporter::new();
    tracer
        .start_export_with(
            exporter.clone(),
            BatchConfig {
                schedule_delay: Duration::from_millis(1),
                max_poll_interval: Duration::from_millis(1),
                max_export_batch_size: 64,
                ..BatchConfig::default()
            },
        )
        .unwrap();
    // S1: span + 2 attributes + event + finish.
    let s1 = || {
        let mut span = tracer.start_span(
            "execute_tool",
            SpanKind::Client,
            [
                KeyValue::new("tool_id", "calculator"),
                KeyValue::new("attempt", 1),
            ],
        );
        span.add_event("cache_miss", []);
        span.finish(SpanStatus::Ok);
    };
    for _ in 0..1_000 {
        s1(); // warm up: thread-locals, clock calibration, context stack, records' buffers
    }
    // And the wake-up path: once the exporter sleeps, the spans crossing a multiple of 256
    // positions of this thread's shard wake it, which loads the wake-up hook through
    // arc-swap (whose per-thread node is allocated on a thread's first load, once).
    std::thread::sleep(Duration::from_millis(20));
    for _ in 0..300 {
        s1();
    }
    let before = thread_allocations();
    trace_allocations();
    for _ in 0..50_000 {
        s1();
    }
    let allocations = thread_allocations() - before;
    let first = first_allocation();
    tracer.force_flush(Duration::from_secs(10)).unwrap_or(());
    let stats = tracer.export_stats().unwrap();
    assert!(stats.exported > 0, "the exporter ran meanwhile: {stats:?}");
    assert_eq!(
        stats.accounted(),
        tracer.stats().spans_finished,
        "every span accounted for: {stats:?}"
    );
    assert_eq!(
        allocations,
        0,
        "allocations on the recording thread; the first one:\n{}",
        first.unwrap_or_default()
    );
    tracer.shutdown(Duration::from_secs(5)).unwrap();
}
