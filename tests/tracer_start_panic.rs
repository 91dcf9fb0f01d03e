//! A panic while a span starts (in the caller's attribute iterator, or in its name's
//! `Into<Cow<str>>`) leaves nothing behind: no frame on the thread's context stack (a tokio
//! worker survives a task's panic, and every later span on it would get a parent that does not
//! exist), no half-filled record in the span log, and counters that still add up
//! (`started == finished`, and every finished span is in the log, overwritten or dropped).
//! Issue 10, finding 5.

use agentcore_telemetry::{
    DistributedTracer, KeyValue, SpanKind, SpanStatus, TraceId, TracerConfig,
};
use std::borrow::Cow;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// A span name whose conversion panics.
struct PanickingName;

impl From<PanickingName> for Cow<'static, str> {
    fn from(_: PanickingName) -> Self {
        panic!("name conversion panicked");
    }
}

/// Attributes whose iterator panics after yielding `good` of them.
fn panicking_attributes(good: i64) -> impl Iterator<Item = KeyValue> {
    (0..).map(move |i| {
        if i == good {
            panic!("attribute iterator panicked");
        }
        KeyValue::new("i", i)
    })
}

/// The checks after a start that panicked: nothing current (or `expected` current), the
/// counters add up, every record in the log is a finished span.
fn assert_nothing_left(tracer: &DistributedTracer, expected_current: Option<TraceId>) {
    assert_eq!(
        tracer.current_context().map(|c| c.trace_id()),
        expected_current,
        "a frame was left on the context stack"
    );
    let s = tracer.stats();
    assert_eq!(
        s.spans_started, s.spans_finished,
        "started and finished disagree: {s:?}"
    );
    let m = tracer.get_metrics();
    assert_eq!(
        m.total_spans as u64 + s.spans_overwritten + s.spans_dropped,
        s.spans_finished,
        "records in the log + overwritten + dropped must equal finished: {m:?} {s:?}"
    );
    let ops = tracer.operation_counts();
    assert!(
        !ops.contains_key("boom"),
        "a half-filled record of the panicking span was published: {ops:?}"
    );
}

/// Starts spans that panic in every way, with a fresh log and with a full one (the claimed
/// slot then held an older record), with and without an enclosing trace.
#[test]
fn a_panic_while_a_span_starts_leaves_no_frame_no_record_and_consistent_counters() {
    // Silence the panics this test causes on purpose; report any other.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info.payload().downcast_ref::<&str>().copied().unwrap_or("");
        if !msg.ends_with("panicked") {
            default_hook(info);
        }
    }));
    for fill in [0usize, 64] {
        for in_trace in [false, true] {
            let tracer = DistributedTracer::new(TracerConfig {
                span_log_capacity: 8,
                span_log_shards: 1,
                ..TracerConfig::default()
            });
            for _ in 0..fill {
                tracer.start_span("filler", SpanKind::Internal, []).end();
            }
            let trace = in_trace.then(|| tracer.start_trace(Some("request-123"), [("k", "v")]));
            let expected = trace.as_ref().map(|t| t.trace_id());

            for good in [0, 1, 3, 7] {
                let r = catch_unwind(AssertUnwindSafe(|| {
                    let _span =
                        tracer.start_span("boom", SpanKind::Internal, panicking_attributes(good));
                }));
                assert!(r.is_err());
                assert_nothing_left(&tracer, expected);
                let r = catch_unwind(AssertUnwindSafe(|| {
                    let _span = tracer.start_detached_span(
                        "boom",
                        SpanKind::Internal,
                        panicking_attributes(good),
                    );
                }));
                assert!(r.is_err());
                assert_nothing_left(&tracer, expected);
            }
            let r = catch_unwind(AssertUnwindSafe(|| {
                let _span = tracer.start_span(PanickingName, SpanKind::Internal, []);
            }));
            assert!(r.is_err());
            assert_nothing_left(&tracer, expected);

            // The thread goes on tracing normally: the next span's parent is what was current
            // before the panics.
            let next = tracer.start_span("next", SpanKind::Internal, [KeyValue::new("a", 1)]);
            assert_eq!(
                next.parent_span_id(),
                trace.as_ref().and_then(|t| t.span_id())
            );
            assert_eq!(Some(next.trace_id()).filter(|_| in_trace), expected);
            let id = next.span_id();
            next.finish(SpanStatus::Ok);
            let record = tracer.get_span_by_id(id).unwrap();
            assert!(record.start_time_unix_nano > 0);
            assert!(record.end_time_unix_nano >= record.start_time_unix_nano);
            drop(trace);
            assert_nothing_left(&tracer, None);
        }
    }
}

/// A value whose `Drop` panics (unless the thread is unwinding already).
struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("dropped");
        }
    }
}

/// A name that converts fine but panics when dropped.
struct NameThatPanicsOnDrop(PanicsOnDrop);

impl From<NameThatPanicsOnDrop> for Cow<'static, str> {
    fn from(_: NameThatPanicsOnDrop) -> Self {
        Cow::Borrowed("bad")
    }
}

/// No attributes, and a panic when dropped.
struct AttributesThatPanicOnDrop(PanicsOnDrop);

impl Iterator for AttributesThatPanicOnDrop {
    type Item = KeyValue;
    fn next(&mut self) -> Option<KeyValue> {
        None
    }
}

/// Starts a span with `name` and `attributes` (attached, or `detached`) and drops it; checks
/// that this unwound and left no frame on the thread.
fn start_unwinds_leaving_no_frame(
    tracer: &DistributedTracer,
    detached: bool,
    name: impl Into<Cow<'static, str>>,
    attributes: impl IntoIterator<Item = KeyValue>,
) {
    let r = catch_unwind(AssertUnwindSafe(|| {
        if detached {
            drop(tracer.start_detached_span(name, SpanKind::Internal, attributes));
        } else {
            drop(tracer.start_span(name, SpanKind::Internal, attributes));
        }
    }));
    assert!(r.is_err(), "detached: {detached}: nothing unwound");
    assert_eq!(tracer.current_context(), None, "detached: {detached}");
}

/// An unsampled span never uses its name or attributes; they are dropped before its frame is
/// pushed. Before (found by review): dropped as `start_span` returned, after the frame was
/// pushed, a panicking `Drop` leaked the built span, and its frame stayed on the thread for
/// good: every later span there became an unsampled child of it ("frame leaked: current
/// context = Some(TraceContext { .. sampled: false .. })", and 0 of 100 later root spans
/// sampled under a 50 % parent-based sampler).
#[test]
fn an_unsampled_start_whose_name_or_attributes_panic_on_drop_leaves_no_frame() {
    use agentcore_telemetry::Sampler;
    let tracer = DistributedTracer::new(TracerConfig {
        sampler: Some(Sampler::always_off()),
        from_env: false,
        ..TracerConfig::default()
    });
    for detached in [false, true] {
        start_unwinds_leaving_no_frame(&tracer, detached, NameThatPanicsOnDrop(PanicsOnDrop), []);
        start_unwinds_leaving_no_frame(
            &tracer,
            detached,
            "x",
            AttributesThatPanicOnDrop(PanicsOnDrop),
        );
    }
    // None of the four counts as started (the panic came before the count).
    assert_eq!(tracer.stats().spans_unsampled, 0, "{:?}", tracer.stats());
}

/// A sampled start that finds no free slot (every slot held by an open span) never iterates
/// its attributes: they are dropped unused, and a `Drop` that panics there must count nothing
/// and leave no frame. Found by review of 7f395fa, which moved the start's count into
/// `TracerCore::open`, where it ran before the unused attributes were dropped at its return:
/// `spans_started` 18 against `spans_finished` 16.
#[test]
fn a_start_with_no_free_slot_whose_attributes_panic_on_drop_counts_nothing() {
    let tracer = DistributedTracer::new(TracerConfig {
        span_log_capacity: 16,
        span_log_shards: 1,
        from_env: false,
        ..TracerConfig::default()
    });
    let open: Vec<_> = (0..tracer.span_log_capacity())
        .map(|_| tracer.start_detached_span("open", SpanKind::Internal, []))
        .collect();
    for detached in [false, true] {
        start_unwinds_leaving_no_frame(
            &tracer,
            detached,
            "x",
            AttributesThatPanicOnDrop(PanicsOnDrop),
        );
    }
    // The log really was full: one more start is lost (counted as dropped when it ends).
    tracer.start_span("lost", SpanKind::Internal, []).end();
    assert_eq!(tracer.stats().spans_dropped, 1, "{:?}", tracer.stats());
    open.into_iter().for_each(|s| s.end());
    let s = tracer.stats();
    assert_eq!(s.spans_started, s.spans_finished, "{s:?}");
}
