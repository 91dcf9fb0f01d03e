//! Every way of finishing an unsampled span removes its frame and releases its baggage.
//!
//! An unsampled `Span` is finished from a `ManuallyDrop` (`Span::end_consumed`, issue 16:
//! the copy of the span into the finishing call goes), so nothing drops it: the finish must
//! remove the frame and release the baggage itself. A frame left behind would make every later
//! span of the thread its child; a baggage reference left behind would keep the context's
//! baggage allocated for good. This binary holds a single test function, so no other test
//! thread allocates while it counts live bytes.

use agentcore_telemetry::{
    DistributedTracer, Sampler, Span, SpanKind, SpanStatus, TraceContext, TracerConfig,
};
use support::alloc::live_bytes;

mod support;

#[global_allocator]
static GLOBAL: support::alloc::Counting = support::alloc::Counting;

const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";

/// An incoming unsampled request's context (flags `00`) with baggage: what a service's spans
/// under it inherit.
fn unsampled_parent() -> TraceContext {
    TraceContext::extract(|name| match name {
        "traceparent" => Some(PARENT),
        "baggage" => Some("tenant=acme,request=a-fairly-long-value-kept-on-the-heap"),
        _ => None,
    })
    .expect("valid headers")
    .expect("a traceparent")
}

#[test]
fn every_way_to_finish_an_unsampled_span_removes_its_frame_and_releases_its_baggage() {
    let tracer = DistributedTracer::new(TracerConfig {
        sampler: Some(Sampler::ratio(0.0)),
        from_env: false,
        ..TracerConfig::default()
    });
    type Finish = fn(&DistributedTracer, Span<'_>);
    let ways: [(&str, Finish); 8] = [
        ("finish_span Ok", |t, s| {
            t.finish_span(s, SpanStatus::Ok, None)
        }),
        ("finish_span Error", |t, s| {
            t.finish_span(s, SpanStatus::Error, Some("boom"))
        }),
        ("end", |_, s| s.end()),
        ("finish", |_, s| s.finish(SpanStatus::Ok)),
        ("finish_with_message", |_, s| {
            s.finish_with_message(SpanStatus::Error, String::from("an owned message"))
        }),
        ("drop", |_, s| drop(s)),
        ("detach, then end", |_, s| s.detach().end()),
        ("detach, then finish_span", |t, s| {
            t.finish_span(s.detach(), SpanStatus::Ok, None)
        }),
    ];
    for (way, finish) in ways {
        // One round: attach the parent, start and finish spans under it (each a child of the
        // parent, none of the one before), detach it.
        let round = || {
            let parent = unsampled_parent();
            let parent_id = parent.span_id();
            let guard = tracer.attach(parent);
            for _ in 0..100 {
                let span = tracer.start_span("unsampled", SpanKind::Internal, []);
                assert!(!span.is_recording(), "{way}");
                assert_eq!(span.context().get_baggage("tenant"), Some("acme"), "{way}");
                assert_eq!(
                    span.parent_span_id(),
                    None,
                    "{way}: unsampled spans keep none"
                );
                let id = span.span_id();
                assert_eq!(
                    tracer.current_context().and_then(|c| c.span_id()),
                    Some(id),
                    "{way}: the span is current"
                );
                finish(&tracer, span);
                assert_eq!(
                    tracer.current_context().and_then(|c| c.span_id()),
                    parent_id,
                    "{way}: the span's frame is gone, the parent is current again"
                );
            }
            drop(guard);
            assert!(tracer.current_context().is_none(), "{way}");
        };
        // The first round grows what stays (the thread's context stack, its lookups).
        round();
        let before = live_bytes();
        round();
        assert_eq!(
            live_bytes() - before,
            0,
            "{way}: bytes left allocated after the round (the baggage was not released)"
        );
    }
    assert_eq!(tracer.stats().spans_started, 0);
    assert_eq!(tracer.stats().spans_unsampled, 8 * 2 * 100);

    the_handles_frame_is_removed_and_misuse_counted();
}

/// The frame removed is the handle's, whatever inner span it holds: one swapped in through
/// `DerefMut` (of another tracer), or an attached span's (its key is random, not its span id);
/// and a span ended under another trace's context counts as misuse, as a sampled one does
/// (found by review: a finish keyed by the inner span's id, or one that forgot the misuse
/// count, passed every test before).
fn the_handles_frame_is_removed_and_misuse_counted() {
    let tracer = |ratio| {
        DistributedTracer::new(TracerConfig {
            sampler: Some(Sampler::ratio(ratio)),
            from_env: false,
            ..TracerConfig::default()
        })
    };
    let (sampled, unsampled) = (tracer(1.0), tracer(0.0));
    let mut a = sampled.start_span("a", SpanKind::Internal, []);
    let mut b = unsampled.start_detached_span("b", SpanKind::Internal, []);
    std::mem::swap(&mut *a, &mut b);
    a.end();
    assert!(
        sampled.current_context().is_none(),
        "the handle's frame stayed"
    );
    b.end();

    // The same swap, the handle dropped: `Span`'s own `Drop` removes the handle's frame and
    // ends the inner span it holds now (here a sampled one of the other tracer), not the one
    // it started.
    let mut a = unsampled.start_span("a", SpanKind::Internal, []);
    let mut b = sampled.start_detached_span("b", SpanKind::Internal, []);
    let b_id = b.span_id();
    std::mem::swap(&mut *a, &mut b);
    drop(a);
    assert!(
        unsampled.current_context().is_none(),
        "the dropped handle's frame stayed"
    );
    assert!(
        sampled.get_span_by_id(b_id).is_some(),
        "the swapped-in span was not finished by the handle's drop"
    );
    drop(b);

    let c = unsampled
        .start_detached_span("c", SpanKind::Internal, [])
        .attach();
    c.finish(SpanStatus::Ok);
    assert!(
        unsampled.current_context().is_none(),
        "the attached span's frame stayed"
    );

    let context = |traceparent: &'static str| {
        TraceContext::extract(|name| (name == "traceparent").then_some(traceparent))
            .expect("valid")
            .expect("present")
    };
    let first = unsampled.attach(context(PARENT));
    let x = unsampled.start_span("x", SpanKind::Internal, []);
    let second = unsampled.attach(context(
        "00-22222222222222222222222222222222-00f067aa0ba902b7-00",
    ));
    x.finish_with_message(SpanStatus::Error, "m");
    assert_eq!(unsampled.stats().spans_ended_out_of_context, 1);
    drop(second);
    drop(first);
    assert!(unsampled.current_context().is_none());
}
