//! A span records a panic only when the panic passed through it: dropped unfinished while its
//! thread unwinds *from a panic that began after the span started*, or an instrumented
//! future whose poll panicked. A span that starts and ends inside a destructor that runs during
//! some other panic (a guard that logs, a `Drop` that flushes and traces the flush, a
//! `block_on` in a destructor) did not panic: `thread::panicking()` is true there, but the
//! span's own work completed. It once took `panicking()` alone as the sign and recorded such a
//! span as failed, with an invented `exception` event.

use agentcore_telemetry::{
    DistributedTracer, FutureExt, SpanId, SpanKind, SpanRecord, SpanStatus, TracerConfig,
};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;
use support::poll::{poll_to_end, PendingOnce};

mod support;

fn tracer() -> &'static DistributedTracer {
    Box::leak(Box::new(DistributedTracer::new(TracerConfig::default())))
}

fn record(tracer: &DistributedTracer, id: &Mutex<Vec<SpanId>>, i: usize) -> SpanRecord {
    let id = id.lock().unwrap()[i];
    tracer.get_span_by_id(id).expect("the span is in the log")
}

fn assert_not_panicked(r: &SpanRecord) {
    assert_eq!(r.status, SpanStatus::Unset, "{r:?}");
    assert!(
        r.events.iter().all(|e| e.name != "exception"),
        "a span that completed during another panic got an exception event: {r:?}"
    );
}

fn assert_panicked(r: &SpanRecord) {
    assert_eq!(r.status, SpanStatus::Error, "{r:?}");
    assert!(r.events.iter().any(|e| e.name == "exception"), "{r:?}");
}

/// Runs `f` inside a destructor while the thread unwinds from a panic (caught here).
fn during_another_panic(f: impl FnOnce()) {
    struct RunOnDrop<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for RunOnDrop<F> {
        fn drop(&mut self) {
            assert!(std::thread::panicking());
            (self.0.take().unwrap())();
        }
    }
    let r = catch_unwind(AssertUnwindSafe(|| {
        let _guard = RunOnDrop(Some(f));
        panic!("the other panic");
    }));
    assert!(r.is_err());
}

#[test]
fn a_span_dropped_while_a_later_panic_unwinds_records_it() {
    let tracer = tracer();
    let ids = Mutex::new(Vec::new());
    let r = catch_unwind(AssertUnwindSafe(|| {
        let span = tracer.start_span("unwound", SpanKind::Internal, []);
        let detached = tracer.start_detached_span("unwound_detached", SpanKind::Internal, []);
        ids.lock()
            .unwrap()
            .extend([span.span_id(), detached.span_id()]);
        panic!("boom");
    }));
    assert!(r.is_err());
    assert_panicked(&record(tracer, &ids, 0));
    assert_panicked(&record(tracer, &ids, 1));
}

#[test]
fn a_span_started_and_dropped_inside_a_destructor_during_a_panic_did_not_panic() {
    let tracer = tracer();
    let ids = Mutex::new(Vec::new());
    during_another_panic(|| {
        let span = tracer.start_span("cleanup", SpanKind::Internal, []);
        let detached = tracer.start_detached_span("cleanup_detached", SpanKind::Internal, []);
        ids.lock()
            .unwrap()
            .extend([span.span_id(), detached.span_id()]);
    });
    assert_not_panicked(&record(tracer, &ids, 0));
    assert_not_panicked(&record(tracer, &ids, 1));
}

#[test]
fn a_span_detached_inside_a_destructor_keeps_knowing_when_it_started() {
    // Detaching moves the span; what it knows about the panic in progress moves with it.
    let tracer = tracer();
    let ids = Mutex::new(Vec::new());
    during_another_panic(|| {
        let span = tracer.start_span("moved", SpanKind::Internal, []).detach();
        ids.lock().unwrap().push(span.span_id());
        std::thread::scope(|s| {
            s.spawn(move || drop(span));
        });
    });
    assert_not_panicked(&record(tracer, &ids, 0));
}

#[test]
fn an_instrumented_future_polled_inside_a_destructor_during_a_panic_did_not_panic() {
    let tracer = tracer();
    let ids = Mutex::new(Vec::new());
    during_another_panic(|| {
        let span = tracer.start_detached_span("flush", SpanKind::Internal, []);
        ids.lock().unwrap().push(span.span_id());
        poll_to_end(PendingOnce::default().in_span(span));
    });
    assert_not_panicked(&record(tracer, &ids, 0));
}

#[test]
fn an_instrumented_future_whose_poll_panics_records_it() {
    let tracer = tracer();
    let span = tracer.start_detached_span("exploding", SpanKind::Internal, []);
    let ids = Mutex::new(vec![span.span_id()]);
    let fut = async {
        PendingOnce::default().await;
        panic!("poll panicked");
    };
    let r = catch_unwind(AssertUnwindSafe(|| poll_to_end(fut.in_span(span))));
    assert!(r.is_err());
    assert_panicked(&record(tracer, &ids, 0));
}
