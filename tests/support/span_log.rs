//! Spans recorded from threads alive together, for the tests of the span log's shards.

use agentcore_telemetry::{DistributedTracer, SpanKind};
use std::sync::Barrier;
use std::thread;

/// Starts `threads` threads, alive together (none exits before all have recorded, so their
/// span-log thread indices differ), each recording `spans_each` spans named `name`; returns
/// once they have all exited their closures.
pub fn record_from_live_threads(
    tracer: &DistributedTracer,
    threads: usize,
    spans_each: usize,
    name: &'static str,
) {
    let all_recorded = Barrier::new(threads);
    thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for _ in 0..spans_each {
                    tracer.start_span(name, SpanKind::Internal, []).end();
                }
                all_recorded.wait();
            });
        }
    });
}
