//! Spans and guards that leave the scoped future they were started in (found by an adversarial
//! review of the tracer). A scope (`in_span`, `in_context`, `in_current_context`) takes the
//! frames above its marker along when its poll returns; it used to take them all, whatever
//! had become of their owners:
//!
//! * A `Span` returned from a scoped future was not current for the caller (its frame went
//!   into the completed future's saved list and was dropped with it), unlike a `Span`
//!   returned from a synchronous call. Now a completed scope leaves such frames on the stack.
//! * A `Span` moved out of a scoped future while it was pending, and ended outside, was made
//!   current again by the future's next poll: later spans there took a finished span as
//!   their parent. Now the end is noted on the thread, and the next poll drops the frame.
//!
//!
//! A review of that fix found three ways a frame could still outlive its owner, each a test
//! below that failed on the first version: futures cancelled while holding spans filled the
//! thread's notes and pushed the real one out (the ended span then stayed current on the thread
//! for good, since a completed scope leaves what is not its own); a `Send` future polled on
//! another thread carried a frame whose owner had stayed and ended there; a note left by a
//! cancelled future dropped the frame of the same span attached again later. Now a saved list
//! dropped with its future forgets its owners' notes, and a list entered on another thread than
//! the one that saved it drops the frames of `Span`s and guards, which are `!Send`.
//!
//! A second review found that the notes named frames by span id, while one `DetachedSpan` can
//! be attached, detached and attached again: a note left by one attachment dropped the frame
//! of another that a pending future still held (the last two tests). Each attachment now has a
//! key of its own.
//!
//! Each test polls by hand, so nothing else runs between two polls.

mod support;

use agentcore_telemetry::{
    DetachedSpan, DistributedTracer, FutureExt, Span, SpanKind, TracerConfig,
};
use std::cell::RefCell;
use std::pin::pin;
use support::poll::{poll_once, poll_to_end, PendingOnce};

fn tracer() -> DistributedTracer {
    DistributedTracer::new(TracerConfig {
        from_env: false,
        ..TracerConfig::default()
    })
}

#[test]
fn a_span_returned_from_an_in_current_context_future_is_current_for_the_caller() {
    let t = tracer();
    let outer = t.start_span("outer", SpanKind::Internal, []);
    let made = poll_to_end(
        async {
            PendingOnce::default().await;
            t.start_span("made", SpanKind::Internal, [])
        }
        .in_current_context(),
    );
    assert_eq!(made.parent_span_id(), Some(outer.span_id()));
    let child = t.start_span("child", SpanKind::Internal, []);
    assert_eq!(
        child.parent_span_id(),
        Some(made.span_id()),
        "as after a call"
    );
    child.end();
    made.end();
    let after = t.start_span("after", SpanKind::Internal, []);
    assert_eq!(after.parent_span_id(), Some(outer.span_id()));
}

#[test]
fn a_span_returned_from_an_in_span_future_is_current_for_the_caller() {
    let t = tracer();
    let op = t.start_detached_span("op", SpanKind::Internal, []);
    let op_id = op.span_id();
    let made = poll_to_end(
        async {
            PendingOnce::default().await;
            t.start_span("made", SpanKind::Internal, [])
        }
        .in_span(op),
    );
    assert_eq!(made.parent_span_id(), Some(op_id));
    let child = t.start_span("child", SpanKind::Internal, []);
    assert_eq!(child.parent_span_id(), Some(made.span_id()));
    child.end();
    made.end();
    // The future's own span is not left behind: nothing is current now.
    assert!(t.current_context().is_none());
}

#[test]
fn a_guard_returned_from_a_scoped_future_keeps_its_trace_current() {
    let t = tracer();
    let guard = poll_to_end(
        async {
            PendingOnce::default().await;
            t.start_trace(Some("returned"), [])
        }
        .in_current_context(),
    );
    let span = t.start_span("in_trace", SpanKind::Internal, []);
    assert_eq!(span.trace_id(), guard.trace_id());
    span.end();
    drop(guard);
    assert!(t.current_context().is_none());
}

#[test]
fn a_span_moved_out_of_a_pending_scoped_future_and_ended_is_not_its_parent_again() {
    let t = tracer();
    let outer = t.start_detached_span("outer", SpanKind::Internal, []);
    let outer_id = outer.span_id();
    let out: RefCell<Option<Span<'_>>> = RefCell::new(None);
    let mut fut = pin!(async {
        *out.borrow_mut() = Some(t.start_span("escapes", SpanKind::Internal, []));
        PendingOnce::default().await;
        t.start_span("later", SpanKind::Internal, [])
            .parent_span_id()
    }
    .in_context(&outer));
    assert!(poll_once(fut.as_mut()).is_pending());
    let escaped = out.borrow_mut().take().expect("the first poll stored it");
    assert_eq!(escaped.parent_span_id(), Some(outer_id));
    escaped.end();
    let parent = poll_to_end(fut);
    assert_eq!(
        parent,
        Some(outer_id),
        "the ended span came back as the parent"
    );
}

#[test]
fn many_spans_moved_out_and_ended_between_two_polls_are_all_dropped() {
    let t = tracer();
    let outer = t.start_detached_span("outer", SpanKind::Internal, []);
    let outer_id = outer.span_id();
    let out: RefCell<Vec<Span<'_>>> = RefCell::new(Vec::new());
    let mut fut = pin!(async {
        for _ in 0..5 {
            out.borrow_mut()
                .push(t.start_span("escapes", SpanKind::Internal, []));
        }
        PendingOnce::default().await;
        t.start_span("later", SpanKind::Internal, [])
            .parent_span_id()
    }
    .in_context(&outer));
    assert!(poll_once(fut.as_mut()).is_pending());
    // Ended in any order, from the newest.
    for span in out.borrow_mut().drain(..).rev() {
        span.end();
    }
    assert_eq!(poll_to_end(fut), Some(outer_id));
}

#[test]
fn a_span_moved_out_of_a_pending_scoped_future_and_still_open_stays_its_parent() {
    // Documented: the scope cannot tell a span that left from one it holds until the span
    // ends; while open, it is still a live span of the same trace.
    let t = tracer();
    let outer = t.start_detached_span("outer", SpanKind::Internal, []);
    let out: RefCell<Option<Span<'_>>> = RefCell::new(None);
    let mut fut = pin!(async {
        *out.borrow_mut() = Some(t.start_span("escapes", SpanKind::Internal, []));
        PendingOnce::default().await;
        t.start_span("later", SpanKind::Internal, [])
            .parent_span_id()
    }
    .in_context(&outer));
    assert!(poll_once(fut.as_mut()).is_pending());
    let escaped_id = out.borrow().as_ref().map(|s| s.span_id());
    assert_eq!(poll_to_end(fut), escaped_id);
    // Still open when the future completed: its frame stayed on this thread's stack, as a
    // returned span's does, and ending it removes it.
    out.borrow_mut().take().unwrap().end();
    assert!(t.current_context().is_none());
}

#[test]
fn futures_cancelled_while_holding_spans_do_not_push_out_the_note_of_one_that_left() {
    let t = tracer();
    let out: RefCell<Option<Span<'_>>> = RefCell::new(None);
    let mut fut = pin!(async {
        *out.borrow_mut() = Some(t.start_span("escapes", SpanKind::Internal, []));
        PendingOnce::default().await;
    }
    .in_current_context());
    assert!(poll_once(fut.as_mut()).is_pending());
    out.borrow_mut().take().expect("stored").end(); // noted
    for _ in 0..40 {
        // A `select!` loser or a timeout: dropped while pending, holding a span.
        let mut cancelled = Box::pin(
            async {
                let _held = t.start_span("cancelled", SpanKind::Internal, []);
                PendingOnce::default().await;
            }
            .in_current_context(),
        );
        assert!(poll_once(cancelled.as_mut()).is_pending());
    }
    poll_to_end(fut);
    let later = t.start_span("later", SpanKind::Internal, []);
    assert_eq!(later.parent_span_id(), None, "an ended span stayed current");
}

thread_local! {
    static HELD: RefCell<Option<Span<'static>>> = const { RefCell::new(None) };
}

#[test]
fn a_send_future_completed_on_another_thread_leaves_no_frame_of_a_span_that_stayed_behind() {
    // A static, not a leaked box: the test runs under LeakSanitizer too (`.ci/asan`).
    static TRACER: std::sync::OnceLock<DistributedTracer> = std::sync::OnceLock::new();
    let t: &'static DistributedTracer = TRACER.get_or_init(tracer);
    let fut = Box::pin(
        async move {
            // Stored, not held across the `.await`: the future stays `Send`.
            HELD.with(|h| *h.borrow_mut() = Some(t.start_span("escapes", SpanKind::Internal, [])));
            PendingOnce::default().await;
            t.current_context().and_then(|c| c.span_id())
        }
        .in_current_context(),
    );
    // Another thread polls it once, then ends the span it stored there.
    let fut = std::thread::spawn(move || {
        let mut fut = fut;
        assert!(poll_once(fut.as_mut()).is_pending());
        HELD.with(|h| h.borrow_mut().take().expect("stored").end());
        fut
    })
    .join()
    .unwrap();
    // This thread completes it.
    assert_eq!(
        poll_to_end(fut),
        None,
        "the span that stayed was current in the future"
    );
    let later = t.start_span("later", SpanKind::Internal, []);
    assert_eq!(later.parent_span_id(), None, "an ended span stayed current");
}

#[test]
fn a_note_left_by_a_cancelled_future_does_not_drop_the_same_span_attached_again() {
    let t = tracer();
    let d = t.start_detached_span("shared", SpanKind::Internal, []);
    let d_id = d.span_id();
    let slot: RefCell<Option<DetachedSpan<'_>>> = RefCell::new(Some(d));
    let cell: RefCell<Option<Span<'_>>> = RefCell::new(None);
    {
        let mut f1 = Box::pin(
            async {
                *cell.borrow_mut() = Some(slot.borrow_mut().take().unwrap().attach());
                PendingOnce::default().await;
            }
            .in_current_context(),
        );
        assert!(poll_once(f1.as_mut()).is_pending());
        // Taken back and detached while f1 is pending (noted); then f1 is cancelled.
        let d = cell.borrow_mut().take().unwrap().detach();
        *slot.borrow_mut() = Some(d);
    }
    let d = slot.borrow_mut().take().unwrap();
    let f2 = async {
        let s = d.attach();
        PendingOnce::default().await;
        let parent = t
            .start_span("child", SpanKind::Internal, [])
            .parent_span_id();
        drop(s);
        parent
    }
    .in_current_context();
    assert_eq!(
        poll_to_end(f2),
        Some(d_id),
        "the attached span is open and held"
    );
}

/// The end note made for a frame saved in one pending future (F1) is not consumed by a
/// *different* saved list (F2) that carries the same span id because the same `DetachedSpan`
/// was attached again there and held across `.await`: each attachment has a key of its own.
/// (Before, notes named frames by span id, and F2's held, open span was not current after its
/// `.await`.)
#[test]
fn a_note_for_an_attachment_saved_in_one_pending_future_spares_another_attachment() {
    let t = tracer();
    let d = t.start_detached_span("shared", SpanKind::Internal, []);
    let d_id = d.span_id();
    let slot: RefCell<Option<DetachedSpan<'_>>> = RefCell::new(Some(d));
    let cell: RefCell<Option<Span<'_>>> = RefCell::new(None);
    // F1 stays alive (pending), unlike the cancelled future of the existing test.
    let mut f1 = Box::pin(
        async {
            *cell.borrow_mut() = Some(slot.borrow_mut().take().unwrap().attach());
            PendingOnce::default().await;
        }
        .in_current_context(),
    );
    assert!(poll_once(f1.as_mut()).is_pending());
    // The span leaves F1 and is detached while F1 is pending: a note (tracer, d) is made.
    let d = cell.borrow_mut().take().unwrap().detach();
    // F2 attaches the same span and holds it across an `.await`.
    let f2 = async {
        let s = d.attach();
        PendingOnce::default().await;
        let parent = t
            .start_span("child", SpanKind::Internal, [])
            .parent_span_id();
        drop(s);
        parent
    }
    .in_current_context();
    let parent = poll_to_end(f2);
    drop(f1);
    assert_eq!(
        parent,
        Some(d_id),
        "the span F2 attached and holds across .await is not current after it resumes"
    );
}

/// The same through a `Send` future that moved threads: the note the owner's end left on the
/// first thread is never consumed by the future (its frames were dropped by the "entered on
/// another thread" rule) and stays on that thread; it must not drop the frame of the same span
/// attached again later and held across `.await` in a scope there (it did before).
#[test]
fn a_note_stranded_by_a_future_that_moved_threads_spares_a_later_attachment() {
    static TRACER: std::sync::OnceLock<DistributedTracer> = std::sync::OnceLock::new();
    let t: &'static DistributedTracer = TRACER.get_or_init(tracer);
    thread_local! {
        static HELD: RefCell<Option<Span<'static>>> = const { RefCell::new(None) };
    }
    let d = t.start_detached_span("shared", SpanKind::Internal, []);
    let d_id = d.span_id();
    // A static, not a leaked box, so LeakSanitizer stays quiet.
    static SLOT: std::sync::Mutex<Option<DetachedSpan<'static>>> = std::sync::Mutex::new(None);
    *SLOT.lock().unwrap() = Some(d);
    let slot = &SLOT;
    let fut = Box::pin(
        async move {
            let d = slot.lock().unwrap().take().unwrap();
            HELD.with(|h| *h.borrow_mut() = Some(d.attach()));
            PendingOnce::default().await;
        }
        .in_current_context(),
    );
    // This thread polls it once; the span stays here, stored; it is detached: a note here.
    let mut fut = fut;
    assert!(poll_once(fut.as_mut()).is_pending());
    let d = HELD.with(|h| h.borrow_mut().take().unwrap()).detach();
    // Another thread completes the future (it drops the frame: "moved" rule; note stays here).
    std::thread::spawn(move || poll_to_end(fut)).join().unwrap();
    // Later, on this thread, the same span is attached and held across `.await` in a scope.
    let parent = poll_to_end(
        async {
            let s = d.attach();
            PendingOnce::default().await;
            let p = t
                .start_span("child", SpanKind::Internal, [])
                .parent_span_id();
            drop(s);
            p
        }
        .in_current_context(),
    );
    assert_eq!(
        parent,
        Some(d_id),
        "the held span lost its frame to a stale note"
    );
}

/// Review helper-129: a future that is not an `async` block (a `poll_fn` closure, a
/// hand-written future, a combinator) keeps what it holds after it completes. The wrappers
/// kept the completed future until they were dropped, so a span it still held outlived the
/// poll that completed it: its frame, left on the stack as a returned span's is, stayed
/// current for the caller, whose next span became its child (in the future's trace, not the
/// caller's). Now the wrappers drop the completed future in its scope.
#[test]
fn a_span_a_completed_future_still_holds_ends_in_its_scope() {
    let t = tracer();
    let outer = t.start_span("outer", SpanKind::Internal, []);
    // `in_span` and `in_context`, each under a trace of its own.
    for in_span in [true, false] {
        let op = t
            .start_span_with_parent("op", SpanKind::Internal, [], None)
            .detach();
        let tr = &t;
        let mut held: Option<Span<'_>> = None;
        let body = std::future::poll_fn(move |_| {
            if held.is_none() {
                held = Some(tr.start_span("held", SpanKind::Internal, []));
                return std::task::Poll::Pending;
            }
            std::task::Poll::Ready(())
        });
        let mut fut: std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> = if in_span {
            Box::pin(body.in_span(op))
        } else {
            Box::pin(body.in_context(&op))
        };
        assert!(poll_once(fut.as_mut()).is_pending());
        assert!(poll_once(fut.as_mut()).is_ready());
        let after = t.start_span("after", SpanKind::Internal, []);
        assert_eq!(
            (after.trace_id(), after.parent_span_id()),
            (outer.trace_id(), Some(outer.span_id())),
            "in_span: {in_span}: the caller's span is a child of a span the completed future holds"
        );
        drop(after);
        drop(fut);
    }
}

/// A wrapper polled again after it completed (a breach of `Future`'s contract) says so with a
/// panic, as an `async` block does, rather than answering `Pending` for ever (which hangs its
/// caller without a word): its inner future is dropped in the completing poll's scope, so there
/// is nothing left to poll. The panic comes before the scope is entered: the thread's context
/// is as it was.
#[test]
fn a_wrapper_polled_after_it_completed_panics_and_leaves_the_context_alone() {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    let t = tracer();
    let outer = t.start_span("outer", SpanKind::Internal, []);
    let span = t.start_detached_span("op", SpanKind::Internal, []);
    let mut instrumented = pin!(async { 1 }.in_span(span));
    assert!(poll_once(instrumented.as_mut()).is_ready());
    let again = catch_unwind(AssertUnwindSafe(|| poll_once(instrumented.as_mut())));
    let message = again.expect_err("a second poll of a completed Instrumented");
    assert_eq!(
        message.downcast_ref::<&str>(),
        Some(&"`Instrumented` polled after it completed")
    );
    let mut with_context = pin!(async { 2 }.in_current_context());
    assert!(poll_once(with_context.as_mut()).is_ready());
    let again = catch_unwind(AssertUnwindSafe(|| poll_once(with_context.as_mut())));
    let message = again.expect_err("a second poll of a completed WithContext");
    assert_eq!(
        message.downcast_ref::<&str>(),
        Some(&"`WithContext` polled after it completed")
    );
    let after = t.start_span("after", SpanKind::Internal, []);
    assert_eq!(after.parent_span_id(), Some(outer.span_id()));
}
