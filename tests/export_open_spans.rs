//! Open spans are not queued spans. A span claims its span-log slot when it starts, so the
//! export cursor's cheap `pending()` estimate counts spans started since the last drain
//! and still open. The batch processor used that estimate to enforce `max_queue_size`: a
//! burst of long-lived spans (an agent's lifecycle span per task) pushed the estimate over
//! the cap and the processor dropped *finished* spans as "queue full" although almost
//! nothing was queued. This test opens more spans than the cap, finishes a few, and
//! requires every finished span to be exported and nothing dropped.
#![cfg(feature = "otlp")]

use agentcore_telemetry::export::{BatchConfig, InMemorySpanExporter};
use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};
use std::time::Duration;

#[test]
fn open_spans_do_not_count_against_the_queue_cap() {
    let tracer = DistributedTracer::new(TracerConfig {
        span_log_capacity: 1024,
        span_log_shards: 1,
        from_env: false,
        ..TracerConfig::default()
    });
    let exporter = InMemorySpanExporter::new();
    tracer
        .start_export_with(
            exporter.clone(),
            BatchConfig {
                max_queue_size: 16,
                max_export_batch_size: 16,
                // Long: only the cap (or the flush below) makes the processor look.
                schedule_delay: Duration::from_secs(60),
                max_poll_interval: Duration::from_millis(2),
                ..BatchConfig::default()
            },
        )
        .unwrap();

    // 100 long-lived spans, open across the whole test (detached: no current-context
    // nesting between them).
    let open: Vec<_> = (0..100)
        .map(|_| tracer.start_detached_span("agent_lifecycle", SpanKind::Internal, []))
        .collect();
    // A few short spans finish while the long ones are open.
    for _ in 0..5 {
        tracer
            .start_detached_span("tool_call", SpanKind::Client, [])
            .end();
    }
    // Let the processor wake up a few times with the long spans open.
    std::thread::sleep(Duration::from_millis(50));
    tracer.force_flush(Duration::from_secs(5)).unwrap();

    let m = tracer.get_metrics();
    assert_eq!(
        (m.spans_exported, m.spans_export_dropped),
        (5, 0),
        "finished spans dropped as queue-full while only open spans filled the estimate"
    );
    assert_eq!(exporter.spans().len(), 5);

    // The long spans finish and are exported too (ten at a time, within the cap).
    let mut open = open.into_iter();
    loop {
        let chunk: Vec<_> = open.by_ref().take(10).collect();
        if chunk.is_empty() {
            break;
        }
        chunk.into_iter().for_each(|s| s.end());
        tracer.force_flush(Duration::from_secs(5)).unwrap();
    }
    let m = tracer.get_metrics();
    assert_eq!((m.spans_exported, m.spans_export_dropped), (105, 0));
    tracer.shutdown(Duration::from_secs(5)).unwrap();
}
