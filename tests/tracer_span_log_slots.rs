//! How the span log's slots are shared out (found by review on 2026-12-01): spans nested in
//! open ones find a slot however small the log, and a finished record displaced by a span
//! that has only started is counted at once.

use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};

fn tracer(capacity: usize, shards: usize) -> DistributedTracer {
    DistributedTracer::new(TracerConfig {
        span_log_capacity: capacity,
        span_log_shards: shards,
        from_env: false,
        ..TracerConfig::default()
    })
}

/// Before: a thread writes to one shard, and with one slot per shard (capacity 16 in 16
/// shards, or twice the CPUs at the default shard count) the parent's open span held the
/// thread's only slot: every child was dropped ("child lost with capacity 16").
#[test]
fn spans_nested_in_open_spans_find_a_slot_in_a_small_log() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    for (capacity, shards) in [(16, 16), (2 * cpus, 0), (8, 0), (64, 64)] {
        let t = tracer(capacity, shards);
        let outer = t.start_span("outer", SpanKind::Internal, []);
        let middle = t.start_span("middle", SpanKind::Internal, []);
        let inner = t.start_span("inner", SpanKind::Internal, []);
        let ids = [outer.span_id(), middle.span_id(), inner.span_id()];
        assert!(inner.is_recording(), "capacity {capacity}, shards {shards}");
        inner.end();
        middle.end();
        outer.end();
        for id in ids {
            assert!(
                t.get_span_by_id(id).is_some(),
                "capacity {capacity}, shards {shards}: {:?}",
                t.stats()
            );
        }
        assert_eq!(t.stats().spans_dropped, 0);
    }
}

/// Before: the displaced record was counted when the new span finished, so a span that never
/// finished (forgotten) left the loss counted nowhere ("spans_finished: 1,
/// spans_overwritten: 0, spans_dropped: 0", and 0 records in the log).
#[test]
fn a_record_displaced_by_a_span_that_has_only_started_counts_as_overwritten() {
    let t = tracer(1, 1);
    let a = t.start_detached_span("a", SpanKind::Internal, []);
    let a_id = a.span_id();
    a.end();
    assert!(t.get_span_by_id(a_id).is_some());
    let b = t.start_detached_span("b", SpanKind::Internal, []);
    assert!(t.get_span_by_id(a_id).is_none());
    assert_eq!(t.stats().spans_overwritten, 1, "{:?}", t.stats());
    std::mem::forget(b);
    let s = t.stats();
    assert_eq!((s.spans_finished, s.spans_overwritten), (1, 1), "{s:?}");
}
