// Temporary profiling driver (not committed).
use agentcore_telemetry::{DistributedTracer, Sampler, SpanKind, SpanStatus, TracerConfig};
use std::hint::black_box;

#[inline(never)]
fn our_span(t: &DistributedTracer) {
    let mut span = t.start_span("tool_execution", SpanKind::Internal, []);
    span.set_attribute("tool_id", "calculator");
    span.set_attribute("attempt", 1i64);
    span.add_event("checkpoint", []);
    t.finish_span(span, SpanStatus::Ok, None);
}

fn main() {
    let ratio: f64 = std::env::args().nth(1).map_or(1.0, |s| s.parse().unwrap());
    let n: usize = std::env::args().nth(2).map_or(100_000, |s| s.parse().unwrap());
    let t: &'static DistributedTracer = Box::leak(Box::new(DistributedTracer::new(TracerConfig {
        sampler: Some(Sampler::ratio(ratio)),
        from_env: false,
        ..TracerConfig::default()
    })));
    for _ in 0..t.span_log_capacity() { our_span(t); }
    for _ in 0..n { our_span(black_box(t)); }
}
