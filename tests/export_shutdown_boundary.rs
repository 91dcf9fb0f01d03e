//! Which spans belong to an exporter: those that finish while it runs. Two boundaries:
//!
//! * **Start.** A span open when export starts and finished after it is the exporter's. It
//!   used to be marked for export behind the cursor's starting point, never visited, and
//!   later counted as overwritten (or left marked).
//! * **Shutdown.** A span finishing while the exporter shuts down is either exported (it
//!   finished before the exporter stopped taking spans) or not the exporter's at all; it
//!   used to be possible for it to be neither exported nor counted (the window between the
//!   exporter's last drain and its detach). The interleavings are the loom model
//!   `loom::export_cursor` and the stress test in `sync::ring`; here the tracer's whole
//!   pipeline is held to the bounds a user can check.
#![cfg(feature = "otlp")]

use agentcore_telemetry::export::{BatchConfig, InMemorySpanExporter};
use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Room for every span a test finishes (one shard, so no thread's share is smaller): the
/// span log never wraps, so no span is overwritten before export.
const CAPACITY: usize = 1 << 17;
/// Spans each producing thread finishes at most.
const QUOTA: usize = 20_000;

fn tracer() -> DistributedTracer {
    DistributedTracer::new(TracerConfig {
        span_log_capacity: CAPACITY,
        span_log_shards: 1,
        from_env: false,
        ..TracerConfig::default()
    })
}

fn batch() -> BatchConfig {
    BatchConfig {
        max_queue_size: 1 << 16,
        max_export_batch_size: 512,
        schedule_delay: Duration::from_millis(5),
        ..BatchConfig::default()
    }
}

#[test]
fn a_span_open_when_export_starts_is_exported_when_it_ends() {
    let tracer = tracer();
    let open = tracer.start_detached_span("agent_lifecycle", SpanKind::Internal, []);
    let id = open.span_id();
    let exporter = InMemorySpanExporter::new();
    tracer.start_export_with(exporter.clone(), batch()).unwrap();
    // Enough spans after it that its slot's position is far behind any walk.
    for _ in 0..100 {
        tracer.start_span("tool_call", SpanKind::Client, []).end();
    }
    open.end();
    tracer.force_flush(Duration::from_secs(5)).unwrap();
    let stats = tracer.export_stats().unwrap();
    assert_eq!((stats.exported, stats.dropped()), (101, 0), "{stats:?}");
    assert!(exporter.spans().iter().any(|s| s.span_id == id));
    tracer.shutdown(Duration::from_secs(5)).unwrap();
}

#[test]
fn spans_finishing_during_a_shutdown_are_exported_or_not_the_exporters_never_lost() {
    for round in 0..20 {
        let tracer = Arc::new(tracer());
        let exporter = InMemorySpanExporter::new();
        let stop = Arc::new(AtomicBool::new(false));
        let shutting_down = Arc::new(AtomicBool::new(false));
        // Per span: (id, finished before the shutdown was asked for).
        let finished = Arc::new(Mutex::new(Vec::new()));
        tracer.start_export_with(exporter.clone(), batch()).unwrap();
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (tracer, stop) = (tracer.clone(), stop.clone());
                let (shutting_down, finished) = (shutting_down.clone(), finished.clone());
                std::thread::spawn(move || {
                    let mut mine = Vec::new();
                    while !stop.load(Ordering::Relaxed) && mine.len() < QUOTA {
                        let span = tracer.start_span("tool_call", SpanKind::Client, []);
                        let id = span.span_id();
                        span.end();
                        mine.push((id, !shutting_down.load(Ordering::SeqCst)));
                    }
                    finished.lock().unwrap().extend(mine);
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(2 + round % 5));
        shutting_down.store(true, Ordering::SeqCst);
        tracer.shutdown(Duration::from_secs(10)).unwrap();
        std::thread::sleep(Duration::from_millis(1));
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().unwrap();
        }
        let finished = finished.lock().unwrap();
        let stats = tracer.export_stats().unwrap();
        let exported: Vec<_> = exporter.spans().iter().map(|s| s.span_id).collect();
        let unique: HashSet<_> = exported.iter().collect();
        assert_eq!(unique.len(), exported.len(), "a span exported twice");
        let all: HashSet<_> = finished.iter().map(|(id, _)| id).collect();
        assert!(unique.iter().all(|id| all.contains(id)), "a span invented");
        // Nothing dropped: the span log and the queue hold everything (2 x QUOTA spans at
        // most) and the deadline is generous.
        assert!(finished.len() <= CAPACITY);
        assert_eq!(
            stats.dropped() + stats.failed + stats.rejected,
            0,
            "{stats:?}"
        );
        // Every span that finished before the shutdown was asked for is exported.
        let before: Vec<_> = finished.iter().filter(|(_, b)| *b).collect();
        let missing = before.iter().filter(|(id, _)| !unique.contains(id)).count();
        assert_eq!(
            missing,
            0,
            "round {round}: {missing} of {} lost",
            before.len()
        );
        assert_eq!(stats.exported, exported.len() as u64);
    }
}
