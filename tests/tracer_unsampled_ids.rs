//! The ids of an unsampled span, which keeps no record, live in its handle and its frame only:
//! its handle, its context, its children, the headers it injects and the span moved to another
//! thread must all see one and the same trace id and span id, the ids must be unique, a ratio
//! sampler that does not follow its parent must decide a child as it decided its root, and the
//! span's frame must leave when it ends. (Written for an unsampled start that drew its ids
//! only when asked, which was tried and not kept: `benches/HISTORY.md`, "Deferred ids".)

use agentcore_telemetry::{DistributedTracer, Sampler, SpanId, SpanKind, SpanStatus, TracerConfig};
use std::collections::HashSet;

fn tracer(sampler: Sampler) -> DistributedTracer {
    DistributedTracer::new(TracerConfig {
        sampler: Some(sampler),
        from_env: false,
        ..TracerConfig::default()
    })
}

/// The `traceparent` the current context injects (flags `02`: unsampled, with W3C Level 2's
/// random trace id flag).
fn traceparent(tracer: &DistributedTracer) -> String {
    let mut got = None;
    tracer
        .current_context()
        .expect("a current context")
        .inject(|name, value| {
            if name == "traceparent" {
                got = Some(value);
            }
        });
    got.expect("a traceparent")
}

#[test]
fn an_unsampled_root_its_children_context_and_headers_share_its_ids() {
    let t = tracer(Sampler::always_off());
    let root = t.start_span("root", SpanKind::Server, []);
    let (trace, span) = (root.trace_id(), root.span_id());
    assert!(!root.is_recording());
    assert_ne!(trace.to_u128(), 0);
    assert_ne!(span.to_u64(), 0);
    assert_eq!(
        (root.trace_id(), root.span_id()),
        (trace, span),
        "asked twice"
    );
    let cx = t.current_context().unwrap();
    assert_eq!((cx.trace_id(), cx.span_id()), (trace, Some(span)));
    assert!(!cx.is_sampled());
    assert_eq!(root.context().span_id(), Some(span));
    assert_eq!(traceparent(&t), format!("00-{trace}-{span}-02"));

    let child = t.start_span("child", SpanKind::Internal, []);
    assert_eq!(child.trace_id(), trace, "the child is in its root's trace");
    assert_ne!(child.span_id(), span);
    assert_eq!(
        traceparent(&t),
        format!("00-{trace}-{}-02", child.span_id())
    );
    let grandchild = t.start_detached_span("grandchild", SpanKind::Internal, []);
    assert_eq!(grandchild.trace_id(), trace);
    let ids: HashSet<SpanId> = [span, child.span_id(), grandchild.span_id()].into();
    assert_eq!(ids.len(), 3);
    grandchild.end();

    // Out of order, in one trace: no misuse (both frames carry the same trace id).
    t.finish_span(root, SpanStatus::Ok, None);
    assert_eq!(
        traceparent(&t),
        format!("00-{trace}-{}-02", child.span_id())
    );
    child.end();
    assert!(t.current_context().is_none(), "both frames left");
    assert_eq!(t.stats().spans_ended_out_of_context, 0);
    assert_eq!(t.stats().spans_unsampled, 3);
}

#[test]
fn a_span_moved_to_another_thread_keeps_its_ids_and_parents_its_children_there() {
    let t = tracer(Sampler::always_off());
    let span = t.start_detached_span("job", SpanKind::Internal, []);
    let ids = (span.trace_id(), span.span_id());
    let (there, child_trace) = std::thread::scope(|s| {
        s.spawn(|| {
            let there = (span.trace_id(), span.span_id());
            let attached = span.attach();
            let child = t.start_span("step", SpanKind::Internal, []);
            let child_trace = child.trace_id();
            child.end();
            attached.end();
            (there, child_trace)
        })
        .join()
        .unwrap()
    });
    assert_eq!(there, ids);
    assert_eq!(child_trace, ids.0);
}

#[test]
fn unsampled_ids_are_unique() {
    let t = tracer(Sampler::always_off());
    let mut traces = HashSet::new();
    let mut spans = HashSet::new();
    for _ in 0..20_000 {
        let root = t.start_span("root", SpanKind::Internal, []);
        let child = t.start_span("child", SpanKind::Internal, []);
        assert!(traces.insert(root.trace_id()), "trace id repeated");
        assert!(spans.insert(root.span_id()), "span id repeated");
        assert!(spans.insert(child.span_id()), "span id repeated");
        child.end();
        root.end();
    }
}

/// A ratio sampler that does not follow its parent decides each span from the trace id's low
/// half, the root's and then its child's copy of it: the two must agree, or sampled children
/// would hang under unsampled roots (and the other way round).
#[test]
fn a_ratio_sampler_decides_a_child_as_it_decided_its_root() {
    let t = tracer(Sampler::trace_id_ratio(0.5));
    let (mut sampled, mut unsampled) = (0, 0);
    for _ in 0..2_000 {
        let root = t.start_span("root", SpanKind::Internal, []);
        let child = t.start_span("child", SpanKind::Internal, []);
        assert_eq!(child.is_recording(), root.is_recording());
        assert_eq!(child.trace_id(), root.trace_id());
        if root.is_recording() {
            assert_eq!(child.parent_span_id(), Some(root.span_id()));
            sampled += 1;
        } else {
            unsampled += 1;
        }
        // The decision is the ratio's on the trace id the handle reports.
        let ratio = Sampler::trace_id_ratio(0.5);
        assert_eq!(
            root.is_recording(),
            ratio.should_sample(None, root.trace_id())
        );
        child.end();
        root.end();
    }
    assert!(sampled > 800 && unsampled > 800, "{sampled} / {unsampled}");
}
