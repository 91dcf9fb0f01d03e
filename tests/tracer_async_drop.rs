//! The context a scoped future is dropped in (found by an adversarial review of the tracer).
//!
//! A future dropped before it completes (a `select!` loser, a timeout, an aborted task, a
//! runtime shutting down) drops its locals then: drop guards, and the values of an `async fn`
//! that is cancelled. Their `Drop` runs the future's own code, so a span started there (a
//! clean-up, a rollback) belongs to the future's trace, as one started by a local dropped when
//! a synchronous function unwinds belongs to that function's span. Until this review the
//! wrappers (`in_span`, `in_context`, `in_current_context`, `#[trace_operation]`) put their
//! context on the thread only while polling, not while dropping, so such a span took whatever
//! context was current where the future happened to be dropped: the `select!`'s own span, a
//! sibling's trace, or none at all (a new trace) on a runtime's worker. Now a wrapper dropped
//! before it completes drops its inner future inside its scope.
//!
//! Each test but the last polls by hand, so nothing else runs between two polls.

mod support;

use agentcore_telemetry::{
    trace_operation, DistributedTracer, FutureExt, SpanId, SpanKind, TraceId, TracerConfig,
};
use std::cell::Cell;
use std::pin::pin;
use support::poll::{poll_once, PendingOnce};

fn tracer() -> DistributedTracer {
    DistributedTracer::new(TracerConfig {
        from_env: false,
        ..TracerConfig::default()
    })
}

/// Where a span started by a drop guard went: its trace and parent.
type Seen = Cell<Option<(TraceId, Option<SpanId>)>>;

/// Starts (and ends) a `cleanup` span when dropped, noting its trace and parent.
struct CleanUp<'a>(&'a DistributedTracer, &'a Seen);

impl Drop for CleanUp<'_> {
    fn drop(&mut self) {
        let span = self.0.start_span("cleanup", SpanKind::Internal, []);
        self.1.set(Some((span.trace_id(), span.parent_span_id())));
    }
}

#[test]
fn a_span_started_while_an_in_span_future_is_cancelled_is_a_child_of_its_span() {
    let t = tracer();
    let seen = Seen::default();
    let op = t.start_detached_span("op", SpanKind::Internal, []);
    let (op_trace, op_id) = (op.trace_id(), op.span_id());
    {
        let mut fut = Box::pin(
            async {
                let _guard = CleanUp(&t, &seen);
                PendingOnce::default().await;
            }
            .in_span(op),
        );
        assert!(poll_once(fut.as_mut()).is_pending());
        // Cancelled where another trace is current (the code that gave up on it).
        let _other = t.start_span("other", SpanKind::Internal, []);
        drop(fut);
    }
    assert_eq!(
        seen.get(),
        Some((op_trace, Some(op_id))),
        "the clean-up span of a cancelled future took the context of where it was dropped"
    );
    assert!(
        t.current_context().is_none(),
        "the scope left a frame behind"
    );
}

#[test]
fn a_span_started_while_an_in_context_future_is_cancelled_joins_its_trace() {
    let t = tracer();
    let seen = Seen::default();
    let trace = t.start_detached_trace(Some("cancelled-job"), []);
    let trace_id = trace.trace_id();
    let other = t.start_span("other", SpanKind::Internal, []);
    {
        let mut fut = Box::pin(
            async {
                let _guard = CleanUp(&t, &seen);
                PendingOnce::default().await;
            }
            .in_context(trace),
        );
        assert!(poll_once(fut.as_mut()).is_pending());
    }
    assert_eq!(seen.get(), Some((trace_id, None)));
    // The thread's own context is untouched.
    let after = t.start_span("after", SpanKind::Internal, []);
    assert_eq!(after.parent_span_id(), Some(other.span_id()));
}

#[test]
fn a_span_held_by_a_cancelled_future_ends_inside_its_scope() {
    // Locals drop in reverse order: the guard, declared after the span, drops while the span
    // is still open and current, as in synchronous code.
    let t = tracer();
    let seen = Seen::default();
    let outer = t.start_span("outer", SpanKind::Internal, []);
    let held_id = Cell::new(None);
    {
        let mut fut = pin!(async {
            let held = t.start_span("held", SpanKind::Internal, []);
            held_id.set(Some(held.span_id()));
            let _guard = CleanUp(&t, &seen);
            PendingOnce::default().await;
            drop(held);
        }
        .in_current_context());
        assert!(poll_once(fut.as_mut()).is_pending());
    }
    assert_eq!(seen.get(), Some((outer.trace_id(), held_id.get())));
    let after = t.start_span("after", SpanKind::Internal, []);
    assert_eq!(
        after.parent_span_id(),
        Some(outer.span_id()),
        "a span of the cancelled future stayed current"
    );
}

#[test]
fn a_future_dropped_before_its_first_poll_is_dropped_in_its_context() {
    let t = tracer();
    let seen = Seen::default();
    let op = t.start_detached_span("op", SpanKind::Internal, []);
    let (op_trace, op_id) = (op.trace_id(), op.span_id());
    let guard = CleanUp(&t, &seen);
    let fut = async move {
        let _guard = guard;
        PendingOnce::default().await;
    }
    .in_span(op);
    drop(fut);
    assert_eq!(seen.get(), Some((op_trace, Some(op_id))));
}

#[test]
fn a_completed_future_dropped_later_leaves_the_context_alone() {
    let t = tracer();
    let outer = t.start_span("outer", SpanKind::Internal, []);
    let op = t.start_detached_span("op", SpanKind::Internal, []);
    let mut fut = Box::pin(async {}.in_span(op));
    assert!(poll_once(fut.as_mut()).is_ready());
    drop(fut);
    let after = t.start_span("after", SpanKind::Internal, []);
    assert_eq!(after.parent_span_id(), Some(outer.span_id()));
}

thread_local! {
    static SEEN: Seen = const { Cell::new(None) };
}

/// [`CleanUp`] for `'static` futures: notes in [`SEEN`].
struct CleanUpHere;

impl Drop for CleanUpHere {
    fn drop(&mut self) {
        let t = agentcore_telemetry::get_distributed_tracer();
        let span = t.start_span("cleanup", SpanKind::Internal, []);
        SEEN.with(|s| s.set(Some((span.trace_id(), span.parent_span_id()))));
    }
}

#[trace_operation(name = "cancellable")]
async fn cancellable() {
    let _guard = CleanUpHere;
    std::future::pending::<()>().await;
}

#[trace_operation(name = "finishes")]
async fn finishes() {
    tokio::task::yield_now().await;
}

#[test]
fn a_select_loser_cleans_up_in_its_own_operation() {
    let t = agentcore_telemetry::get_distributed_tracer();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let select = t.start_detached_span("select", SpanKind::Internal, []);
    let select_id = select.span_id();
    let (loser_trace, parent) = rt.block_on(
        async {
            tokio::select! {
                biased;
                () = finishes() => {}
                () = cancellable() => unreachable!(),
            }
            SEEN.with(Cell::take).expect("the loser was dropped")
        }
        .in_span(select),
    );
    let loser = t
        .get_trace_spans(loser_trace)
        .into_iter()
        .find(|s| s.name == "cancellable")
        .expect("the loser's span");
    assert_ne!(
        parent,
        Some(select_id),
        "the clean-up took the select's span as parent"
    );
    assert_eq!(parent, Some(loser.span_id));
}

#[test]
fn an_aborted_task_cleans_up_in_its_own_operation() {
    let t = agentcore_telemetry::get_distributed_tracer();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let (started_tx, started) = std::sync::mpsc::channel();
    let task = rt.spawn(
        async move {
            struct Report(std::sync::mpsc::Sender<(TraceId, Option<SpanId>)>);
            impl Drop for Report {
                fn drop(&mut self) {
                    let t = agentcore_telemetry::get_distributed_tracer();
                    let span = t.start_span("cleanup", SpanKind::Internal, []);
                    let _ = self.0.send((span.trace_id(), span.parent_span_id()));
                }
            }
            let _report = Report(tx);
            started_tx.send(()).unwrap();
            std::future::pending::<()>().await;
        }
        .in_span(t.start_detached_span("task", SpanKind::Internal, [])),
    );
    // Aborted once it waits, holding its drop guard.
    started.recv().unwrap();
    task.abort();
    assert!(rt.block_on(task).unwrap_err().is_cancelled());
    let (trace, parent) = rx.recv().unwrap();
    let task_span = t
        .get_trace_spans(trace)
        .into_iter()
        .find(|s| s.name == "task")
        .expect("the cleanup is not in the aborted task's trace");
    assert_eq!(parent, Some(task_span.span_id));
}

/// Notes the context current in its body (the operation's span) in [`OP`].
fn note_op() {
    let cx = agentcore_telemetry::get_distributed_tracer()
        .current_context()
        .expect("the operation's span is current");
    OP.with(|o| o.set(Some((cx.trace_id(), cx.span_id()))));
}

thread_local! {
    static OP: Seen = const { Cell::new(None) };
}

#[trace_operation(name = "wild_arg")]
async fn wild_arg(_: CleanUpHere) {
    note_op();
    std::future::pending::<()>().await;
}

#[trace_operation(name = "tuple_arg")]
async fn tuple_arg((_guard, n): (CleanUpHere, u32)) -> u32 {
    note_op();
    std::future::pending::<()>().await;
    n
}

/// Polls `fut` once, then drops it where another trace is current; returns the operation's
/// context and the clean-up span's trace and parent.
fn cancelled_under_another_trace<F: std::future::Future>(
    fut: F,
) -> ((TraceId, Option<SpanId>), (TraceId, Option<SpanId>)) {
    let t = agentcore_telemetry::get_distributed_tracer();
    let mut fut = Box::pin(fut);
    assert!(poll_once(fut.as_mut()).is_pending());
    let op = OP.with(Cell::take).expect("the body ran");
    let other = t.start_span("other", SpanKind::Internal, []);
    drop(fut);
    drop(other);
    (op, SEEN.with(Cell::take).expect("the argument was dropped"))
}

/// Review helper-129: the argument of a `#[trace_operation] async fn` bound by a pattern
/// (`_`, a tuple) was matched in the expansion's outer future, outside the operation's scope;
/// what the body did not use (the `_`, a drop guard it never names) stayed there, and a future
/// cancelled after its first poll dropped it in the canceller's context (here another trace),
/// not in its own, as it drops an argument bound to a plain name.
#[test]
fn a_pattern_argument_of_a_cancelled_operation_is_dropped_in_its_span() {
    let (op, cleanup) = cancelled_under_another_trace(wild_arg(CleanUpHere));
    assert_eq!(cleanup, op, "`_: CleanUp` dropped outside its operation");
    let (op, cleanup) = cancelled_under_another_trace(tuple_arg((CleanUpHere, 1)));
    assert_eq!(cleanup, op, "`(_guard, n)` dropped outside its operation");
}

/// A connection that starts a `cleanup` span when dropped (noted in [`SEEN`]).
struct Conn(u32);

impl Drop for Conn {
    fn drop(&mut self) {
        drop(CleanUpHere);
    }
}

impl Conn {
    #[trace_operation(name = "close")]
    async fn close(self) {
        note_op();
        std::future::pending::<()>().await;
    }

    #[trace_operation(name = "port")]
    async fn port(self) -> u32 {
        note_op();
        std::future::pending::<()>().await;
        self.0
    }

    #[trace_operation(name = "finish")]
    async fn finish(self) {
        note_op();
        PendingOnce::default().await;
    }
}

/// Review helper-129: `self` taken by value by a `#[trace_operation] async fn` stayed in the
/// expansion's outer future when the body did not use it whole (not at all, or only a `Copy`
/// field: an `async` block captures the places it uses), so it was dropped outside the
/// operation's scope: in the canceller's context when the future was cancelled, and after the
/// span ended, in the caller's, when it completed; an `async fn` drops it at the end of its
/// body, as every other argument.
#[test]
fn self_by_value_is_dropped_in_the_operations_span() {
    let (op, cleanup) = cancelled_under_another_trace(Conn(1).close());
    assert_eq!(
        cleanup, op,
        "`self` of a cancelled `close` dropped outside it"
    );
    let (op, cleanup) = cancelled_under_another_trace(Conn(1).port());
    assert_eq!(
        cleanup, op,
        "`self` of a cancelled `port` dropped outside it"
    );
    let t = agentcore_telemetry::get_distributed_tracer();
    let caller = t.start_span("caller", SpanKind::Internal, []);
    support::poll::poll_to_end(Conn(1).finish());
    drop(caller);
    let op = OP.with(Cell::take).expect("the body ran");
    let cleanup = SEEN.with(Cell::take).expect("`self` was dropped");
    assert_eq!(
        cleanup, op,
        "`self` of a completed `finish` dropped outside it"
    );
}
