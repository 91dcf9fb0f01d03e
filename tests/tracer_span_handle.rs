//! A `Span`'s frame on its thread's context stack belongs to the `Span` handle, not to the
//! `DetachedSpan` it dereferences to. `DerefMut` lets safe code swap or replace that inner span
//! (`mem::swap(&mut *span, &mut other)`), and the inner span is `Send`. When the "has a frame"
//! flag travelled with it, the frame stayed on the first thread's stack for good (every later
//! span there took a finished span as its parent), and the span swapped in could not be made
//! current anywhere (`attach` believed it already was). Found by an adversarial review.

use agentcore_telemetry::{DetachedSpan, DistributedTracer, SpanKind, TracerConfig};

fn tracer() -> &'static DistributedTracer {
    Box::leak(Box::new(DistributedTracer::new(TracerConfig {
        from_env: false,
        ..TracerConfig::default()
    })))
}

#[test]
fn a_span_swapped_out_and_ended_elsewhere_leaves_no_frame_behind() {
    let tracer = tracer();
    let mut a = tracer.start_span("a", SpanKind::Internal, []);
    let a_id = a.span_id();
    let mut b = tracer.start_detached_span("b", SpanKind::Internal, []);
    let b_id = b.span_id();
    std::mem::swap(&mut *a, &mut b); // `b` now holds span "a"; the handle `a` holds "b".
    assert_eq!(b.span_id(), a_id);
    std::thread::scope(|s| {
        s.spawn(move || b.end());
    });
    assert!(tracer.get_span_by_id(a_id).is_some(), "span a ended");
    // The handle still owns the frame it pushed: span "a" is current here until it drops.
    assert_eq!(
        tracer.current_context().map(|c| c.span_id()),
        Some(Some(a_id))
    );
    drop(a);
    assert!(
        tracer.get_span_by_id(b_id).is_some(),
        "span b ended with the handle"
    );
    let c = tracer.start_span("c", SpanKind::Internal, []);
    assert_eq!(c.parent_span_id(), None, "a finished span stayed current");
    drop(c);
    assert_eq!(tracer.stats().spans_ended_out_of_context, 0);
}

#[test]
fn a_span_swapped_out_can_be_made_current_on_another_thread() {
    let tracer = tracer();
    let mut a = tracer.start_span("a", SpanKind::Internal, []);
    let mut b = tracer.start_detached_span("b", SpanKind::Internal, []);
    std::mem::swap(&mut *a, &mut b);
    std::thread::scope(|s| {
        s.spawn(move || {
            let id = b.span_id();
            let attached = b.attach();
            let child = tracer.start_span("child", SpanKind::Internal, []);
            assert_eq!(
                child.parent_span_id(),
                Some(id),
                "attach did not make it current"
            );
            drop(child);
            drop(attached);
            assert!(tracer.current_context().is_none());
        });
    });
    drop(a);
    assert!(tracer.current_context().is_none());
}

#[test]
fn a_span_replaced_and_detached_keeps_its_thread_consistent() {
    let tracer = tracer();
    let mut a = tracer.start_span("a", SpanKind::Internal, []);
    let a_id = a.span_id();
    let fresh: DetachedSpan<'_> = tracer.start_detached_span("fresh", SpanKind::Internal, []);
    let taken = std::mem::replace(&mut *a, fresh);
    // Detaching the handle removes the frame it pushed (span "a"'s), whatever it holds now.
    let fresh = a.detach();
    assert!(tracer.current_context().is_none());
    let reattached = taken.attach();
    assert_eq!(
        tracer.current_context().map(|c| c.span_id()),
        Some(Some(a_id))
    );
    drop(reattached);
    fresh.end();
    assert!(tracer.current_context().is_none());
    assert_eq!(tracer.stats().spans_ended_out_of_context, 0);
}

/// A sampled span that found every span-log slot held by an open span is `Lost`: it records
/// nothing but reports its ids, parent, context and status like any other, and its finish
/// counts it as dropped.
#[test]
fn a_span_that_finds_no_free_slot_still_reports_its_context() {
    use agentcore_telemetry::SpanStatus;
    let tracer: &'static DistributedTracer =
        Box::leak(Box::new(DistributedTracer::new(TracerConfig {
            span_log_capacity: 1,
            span_log_shards: 1,
            from_env: false,
            ..TracerConfig::default()
        })));
    let parent = tracer.start_span("parent", SpanKind::Internal, []);
    assert!(parent.is_recording());
    let mut lost = tracer.start_span("lost", SpanKind::Internal, []);
    assert!(!lost.is_recording());
    assert_eq!(lost.trace_id(), parent.trace_id());
    assert_eq!(lost.parent_span_id(), Some(parent.span_id()));
    let cx = lost.context();
    assert!(cx.is_sampled());
    assert_eq!(cx.span_id(), Some(lost.span_id()));
    assert_eq!(
        tracer.current_context().and_then(|c| c.span_id()),
        Some(lost.span_id())
    );
    lost.set_status(SpanStatus::Error, "boom");
    assert_eq!(lost.status(), SpanStatus::Error);
    let moved = lost.detach();
    assert_eq!(moved.parent_span_id(), Some(parent.span_id()));
    moved.end();
    parent.end();
    let stats = tracer.stats();
    assert_eq!(stats.spans_dropped, 1);
    assert_eq!(stats.spans_errored, 1);
    assert_eq!(stats.spans_finished, 2);
}
