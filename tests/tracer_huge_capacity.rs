//! A span-log capacity too large to allocate. With one shard, a capacity above 2⁶³ overflowed
//! the rounding up to a power of two: a panic in `DistributedTracer::new` where overflow is
//! checked (debug builds), but in a release build the slot count wrapped to 0, the tracer was
//! built with an empty span log (`span_log_capacity() == 0`), and then every sampled span
//! panicked as it started (an index out of bounds in the claim): a configuration value turned
//! into a panic on the span hot path, far from its cause (found by review). Now such a capacity
//! is refused where it is given, as an allocation that large is: `new` panics ("capacity
//! overflow"), in every build.

use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};

#[test]
fn a_capacity_too_large_to_allocate_is_refused_at_construction_not_at_every_span() {
    for capacity in [usize::MAX, (1 << (usize::BITS - 1)) + 1] {
        let made = std::panic::catch_unwind(|| {
            DistributedTracer::new(TracerConfig {
                span_log_capacity: capacity,
                span_log_shards: 1,
                from_env: false,
                ..TracerConfig::default()
            })
        });
        let Ok(tracer) = made else {
            continue; // refused where it was given
        };
        assert!(
            tracer.span_log_capacity() >= 1,
            "capacity {capacity}: a tracer with an empty span log"
        );
        tracer.start_span("op", SpanKind::Internal, []).end();
    }
}
