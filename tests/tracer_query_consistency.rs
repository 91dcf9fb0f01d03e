//! What the span-log queries return while other threads record: never an impossible result.

use agentcore_telemetry::{DistributedTracer, SpanKind, SpanStatus, TracerConfig};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Fresh tracers: the race is only visible while fewer spans have finished than the log holds.
const ROUNDS: usize = 20_000;

fn small_tracer() -> DistributedTracer {
    DistributedTracer::new(TracerConfig {
        span_log_capacity: 4,
        span_log_shards: 1,
        from_env: false,
        ..TracerConfig::default()
    })
}

/// A span in the span log has finished: `get_metrics` never reports more spans in the log than
/// the counters say have finished (nor more errors). The finish published the record before
/// it counted it, so a query that read the record in between counted a span the counter did
/// not have yet (`spans_finished - total_spans` underflowed in a caller computing the spans
/// that left the log).
#[test]
fn metrics_never_count_more_logged_spans_than_finished_ones() {
    let mut seen = 0;
    for _ in 0..ROUNDS {
        let tracer = Arc::new(small_tracer());
        let go = Arc::new(AtomicBool::new(false));
        let finisher = {
            let (tracer, go) = (Arc::clone(&tracer), Arc::clone(&go));
            std::thread::spawn(move || {
                let span = tracer.start_span("op", SpanKind::Internal, []);
                go.store(true, Ordering::Release);
                span.finish(SpanStatus::Error);
            })
        };
        while !go.load(Ordering::Acquire) {
            std::hint::spin_loop();
        }
        loop {
            let m = tracer.get_metrics();
            assert!(
                m.total_spans as u64 <= m.spans_finished,
                "{} spans in the log, {} finished",
                m.total_spans,
                m.spans_finished
            );
            assert!(m.error_spans <= m.total_spans);
            if m.total_spans == 1 {
                seen += 1;
                break;
            }
        }
        finisher.join().unwrap();
    }
    assert_eq!(seen, ROUNDS);
}
