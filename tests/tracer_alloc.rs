//! Proves the tracer's hot path allocates nothing, with a counting global allocator.
//!
//! This binary holds a single test function, so no other test thread allocates while it
//! counts.

use agentcore_telemetry::{
    init_distributed_tracer, trace_operation, DistributedTracer, FutureExt, KeyValue, Sampler,
    SpanKind, SpanStatus, TracerConfig,
};
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use support::alloc::process_allocations;
use support::poll::PendingOnce;

mod support;

#[global_allocator]
static GLOBAL: support::alloc::Counting = support::alloc::Counting;

fn allocations_in(iterations: usize, mut f: impl FnMut()) -> usize {
    for _ in 0..100 {
        f(); // warm up: thread-locals, clock calibration, context stack capacity
    }
    let before = process_allocations();
    for _ in 0..iterations {
        f();
    }
    (process_allocations() - before) as usize
}

/// An error with a `Display` (formatting it allocates a `String`).
#[derive(Debug)]
struct DiskFull;

impl std::fmt::Display for DiskFull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("disk full")
    }
}

#[trace_operation]
fn failing_operation() -> Result<u8, DiskFull> {
    Err(DiskFull)
}

#[trace_operation]
async fn failing_operation_async() -> Result<u8, DiskFull> {
    Err(DiskFull)
}

#[test]
fn hot_path_allocates_nothing() {
    // Capacity 256 so the loops below wrap the span log many times (overwrites included).
    let tracer = DistributedTracer::new(TracerConfig {
        span_log_capacity: 256,
        ..TracerConfig::default()
    });
    const N: usize = 10_000;

    // Span start (static name, 2 inline attributes) + 2 attributes + 1 event + finish.
    let n = allocations_in(N, || {
        let mut span = tracer.start_span(
            "create_agent",
            SpanKind::Internal,
            [
                KeyValue::new("philosophy", "react"),
                KeyValue::new("priority", 1),
            ],
        );
        span.set_attribute("agent_id", "agent-789");
        span.set_attribute("retries", 3);
        span.add_event("agent_started", [KeyValue::new("container", "c-1")]);
        tracer.finish_span(span, SpanStatus::Ok, None);
    });
    assert_eq!(n, 0, "sampled span: {n} allocations in {N} iterations");
    assert!(tracer.stats().spans_overwritten > 0);

    // Nested spans, drop-finish, out-of-order finish.
    let n = allocations_in(N, || {
        let parent = tracer.start_span("parent", SpanKind::Server, []);
        let child = tracer.start_span("child", SpanKind::Internal, []);
        parent.end();
        drop(child);
    });
    assert_eq!(n, 0, "nested spans: {n} allocations");

    // An instrumented future polled to completion.
    let waker = Waker::noop();
    let n = allocations_in(N, || {
        let span = tracer.start_span("poll", SpanKind::Internal, []);
        let fut = pin!(async { 1 }.in_span(span));
        let mut cx = Context::from_waker(waker);
        assert_eq!(fut.poll(&mut cx), Poll::Ready(1));
    });
    assert_eq!(n, 0, "instrumented future: {n} allocations");

    // Futures in a context they carry: the current one (`in_current_context`), a span they do
    // not own (`in_context(&span)`), a span held across a pending poll inside the scope.
    let n = allocations_in(N, || {
        let parent = tracer.start_span("parent", SpanKind::Server, []);
        let mut cx = Context::from_waker(waker);
        let fut = pin!(async { 1 }.in_current_context());
        assert_eq!(fut.poll(&mut cx), Poll::Ready(1));
        let fut = pin!(async { 2 }.in_context(&parent));
        assert_eq!(fut.poll(&mut cx), Poll::Ready(2));
        let mut fut = pin!(async {
            let held = tracer.start_span("held", SpanKind::Internal, []);
            PendingOnce::default().await;
            held.end();
            3
        }
        .in_context(&parent));
        assert_eq!(fut.as_mut().poll(&mut cx), Poll::Pending);
        assert_eq!(fut.poll(&mut cx), Poll::Ready(3));
        parent.end();
    });
    assert_eq!(n, 0, "futures in a context: {n} allocations");

    // Spans that leave their scope: one returned from a completed future (it stays current
    // for the caller), and one moved out of a pending future and ended outside (its end is
    // noted on the thread, and the next poll drops its saved frame).
    let n = allocations_in(N, || {
        let parent = tracer.start_span("parent", SpanKind::Server, []);
        let mut cx = Context::from_waker(waker);
        let fut = pin!(
            async { tracer.start_span("returned", SpanKind::Internal, []) }.in_current_context()
        );
        let Poll::Ready(returned) = fut.poll(&mut cx) else {
            panic!("ready at once");
        };
        returned.end();
        let out = std::cell::Cell::new(None);
        let mut fut = pin!(async {
            out.set(Some(tracer.start_span("escapes", SpanKind::Internal, [])));
            PendingOnce::default().await;
        }
        .in_context(&parent));
        assert_eq!(fut.as_mut().poll(&mut cx), Poll::Pending);
        out.take().expect("stored").end();
        assert_eq!(fut.poll(&mut cx), Poll::Ready(()));
        parent.end();
    });
    assert_eq!(n, 0, "spans leaving their scope: {n} allocations");

    // The unsampled path, root and child.
    let unsampled = DistributedTracer::new(TracerConfig {
        sampler: Some(Sampler::ratio(0.0)),
        span_log_capacity: 16,
        ..TracerConfig::default()
    });
    let n = allocations_in(N, || {
        let mut span = unsampled.start_span("skipped", SpanKind::Internal, [KeyValue::new("a", 1)]);
        span.set_attribute("b", 2);
        span.add_event("e", []);
        let child = unsampled.start_span("child", SpanKind::Internal, []);
        assert!(!child.is_recording());
        child.end();
        span.finish(SpanStatus::Ok);
    });
    assert_eq!(n, 0, "unsampled span: {n} allocations");
    assert_eq!(unsampled.stats().spans_started, 0);

    // `#[trace_operation]` functions returning an `Err`, on a tracer that samples nothing (the
    // global one, which the macro uses): the error is not formatted for a span that records
    // nothing (it was, into a `String` thrown away, before).
    assert!(init_distributed_tracer(TracerConfig {
        sampler: Some(Sampler::ratio(0.0)),
        from_env: false,
        ..TracerConfig::default()
    }));
    let n = allocations_in(N, || {
        assert!(failing_operation().is_err());
        let mut cx = Context::from_waker(waker);
        let fut = pin!(failing_operation_async());
        assert!(matches!(fut.poll(&mut cx), Poll::Ready(Err(DiskFull))));
    });
    assert_eq!(n, 0, "unsampled traced Err: {n} allocations");
}
