//! A second driver for `valgrind --tool=callgrind`, beside `profile_driver`: the span hot path
//! in a program with more than one span workload (as real programs are: the compiler then
//! inlines less than in `profile_driver`'s single call site), and a span carried into a future.
//!
//! ```text
//! cargo build --release --manifest-path benches/compare/Cargo.toml --bin profile_future
//! valgrind --tool=callgrind benches/compare/target/release/profile_future none 1000000
//! valgrind --tool=callgrind benches/compare/target/release/profile_future span_in_future 1000000
//! ```
//! Instructions per operation = (Ir of the workload - Ir of `none`) / N. Workloads:
//! `span_basic` (start + 2 attributes + event + finish), `span_in_future` (a detached span
//! carried by `in_span` into a future polled once to completion: the per-poll context scope),
//! `span_unsampled` (start with 2 attributes + finish on a tracer sampling nothing),
//! `span_nested` (a parent and 3 children, per operation), `macro_call` (a sync
//! `#[trace_operation]` function on the global tracer), `none` (set-up only).

use agentcore_telemetry::{DistributedTracer, FutureExt, Sampler, SpanKind, SpanStatus};
use std::future::Future;
use std::hint::black_box;
use std::task::{Context, Poll, Waker};

#[inline(never)]
fn span_basic(t: &DistributedTracer, n: u64) {
    for _ in 0..n {
        let t = black_box(t);
        let mut span = t.start_span("tool_execution", SpanKind::Internal, []);
        span.set_attribute("tool_id", "calculator");
        span.set_attribute("attempt", 1i64);
        span.add_event("checkpoint", []);
        t.finish_span(span, SpanStatus::Ok, None);
    }
}

#[inline(never)]
fn span_in_future(t: &DistributedTracer, n: u64) {
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..n {
        let t = black_box(t);
        let span = t.start_detached_span("poll", SpanKind::Internal, []);
        let fut = std::pin::pin!(async { black_box(1) }.in_span(span));
        assert_eq!(fut.poll(&mut cx), Poll::Ready(1));
    }
}

#[inline(never)]
fn span_unsampled(t: &DistributedTracer, n: u64) {
    use agentcore_telemetry::KeyValue;
    for _ in 0..n {
        let t = black_box(t);
        let span = t.start_span(
            "skipped",
            SpanKind::Internal,
            [KeyValue::new("a", 1), KeyValue::new("b", "x")],
        );
        t.finish_span(span, SpanStatus::Ok, None);
    }
}

#[inline(never)]
fn span_nested(t: &DistributedTracer, n: u64) {
    for _ in 0..n {
        let t = black_box(t);
        let p = t.start_span("agent_lifecycle", SpanKind::Internal, []);
        for _ in 0..3 {
            let c = t.start_span("step", SpanKind::Internal, []);
            t.finish_span(c, SpanStatus::Ok, None);
        }
        t.finish_span(p, SpanStatus::Ok, None);
    }
}

#[agentcore_telemetry::trace_operation]
fn traced(x: u64) -> u64 {
    black_box(x) + 1
}

#[inline(never)]
fn macro_call(n: u64) {
    let mut x = 0;
    for _ in 0..n {
        x = traced(x);
    }
    black_box(x);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let what = args.next().unwrap_or_else(|| "none".into());
    let n: u64 = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let tracer = DistributedTracer::new(Default::default());
    let unsampled = DistributedTracer::new(agentcore_telemetry::TracerConfig {
        sampler: Some(Sampler::ratio(0.0)),
        span_log_capacity: 16,
        ..Default::default()
    });
    // Fill the span log once, in every run (the baseline subtracts it): the workloads then
    // measure the steady state, the ring wrapping.
    span_basic(&tracer, tracer.span_log_capacity() as u64);
    for _ in 0..agentcore_telemetry::get_distributed_tracer().span_log_capacity() {
        traced(0);
    }
    match what.as_str() {
        "span_basic" => span_basic(&tracer, n),
        "span_in_future" => span_in_future(&tracer, n),
        "span_unsampled" => span_unsampled(&unsampled, n),
        "span_nested" => span_nested(&tracer, n),
        "macro_call" => macro_call(n),
        _ => {}
    }
}
