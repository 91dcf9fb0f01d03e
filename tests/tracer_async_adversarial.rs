//! Adversarial reviews of trace context through threads and async tasks (helper-100, and
//! helper-102's review of those fixes): each test is a defect found, failing before its fix,
//! except `in_current_context_is_a_copy_taken_when_it_is_called`, which pins documented
//! behaviour.
//!
//! * A `#[trace_operation]` future dropped before its first poll dropped its arguments (or,
//!   for a function returning a future, that future) wherever it was dropped: on a runtime's
//!   worker, where nothing is current, a span their `Drop` started began a new trace, where
//!   the rule for the operation's own span (a child of the captured context) and an `in_span`
//!   future dropped before its first poll (`tests/tracer_async_drop.rs`) give the caller's
//!   trace.
//! * A `#[trace_operation]` future spawned on a current-thread runtime joined the trace of
//!   the span its `block_on` caller had current, not its creator's: the context current at the
//!   first poll won over the captured one.
//! * Then the captured context won over an explicit `in_context`/`in_span` too (the README's
//!   `execute_tool(..).in_context(&exec)` became `exec`'s sibling), and an unstarted future
//!   dropped inside such a context dropped its arguments in the captured one.

use agentcore_telemetry::{get_distributed_tracer, trace_operation, FutureExt, SpanKind, TraceId};
use std::future::Future;
use std::sync::{Arc, Mutex};

mod support;

use support::poll::poll_to_end;

/// Starts a `cleanup` span when dropped and notes its trace (a connection returned to its
/// pool, a rollback).
struct CleanUpArg(Arc<Mutex<Option<TraceId>>>);
impl Drop for CleanUpArg {
    fn drop(&mut self) {
        let s = get_distributed_tracer().start_span("cleanup", SpanKind::Internal, []);
        *self.0.lock().unwrap() = Some(s.trace_id());
    }
}

#[trace_operation(name = "with_cleanup")]
async fn with_cleanup(guard: CleanUpArg) {
    let _guard = guard;
    std::future::pending::<()>().await;
}

/// A `#[trace_operation]` future cancelled before its first poll where nothing is current (a
/// spawned task aborted before it ran, dropped on a runtime's worker or at its shutdown)
/// drops its arguments there: their `Drop` started a new trace, where the macro's rule ("a
/// child of the context current at that poll or, when nothing is current there, of the
/// captured one") and an `in_span` future dropped before its first poll
/// (`tests/tracer_async_drop.rs`) give the caller's trace.
#[test]
#[allow(clippy::async_yields_async)] // the future is created in a context, not awaited
fn a_traced_future_dropped_unpolled_drops_its_arguments_in_its_callers_context() {
    let t = get_distributed_tracer();
    let seen = Arc::new(Mutex::new(None));
    let request = t.start_detached_trace(None, []);
    let request_trace = request.trace_id();
    let fut =
        poll_to_end(async { with_cleanup(CleanUpArg(Arc::clone(&seen))) }.in_context(request));
    std::thread::spawn(move || drop(fut)).join().unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        Some(request_trace),
        "the clean-up started a new trace"
    );
}

#[trace_operation(name = "with_cleanup_async_form")]
fn with_cleanup_async_form(guard: CleanUpArg) -> impl Future<Output = ()> {
    async move {
        let _guard = guard;
        std::future::pending::<()>().await;
    }
}

/// [`a_traced_future_dropped_unpolled_drops_its_arguments_in_its_callers_context`]
/// for a traced function returning a future (the async form, `Traced`).
#[test]
#[allow(clippy::async_yields_async)] // the future is created in a context, not awaited
fn a_traced_future_of_the_async_form_dropped_unpolled_drops_it_in_its_callers_context() {
    let t = get_distributed_tracer();
    let seen = Arc::new(Mutex::new(None));
    let request = t.start_detached_trace(None, []);
    let request_trace = request.trace_id();
    let fut = poll_to_end(
        async { with_cleanup_async_form(CleanUpArg(Arc::clone(&seen))) }.in_context(request),
    );
    std::thread::spawn(move || drop(fut)).join().unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        Some(request_trace),
        "the clean-up started a new trace"
    );
}

#[trace_operation(name = "background_job")]
async fn background_job() -> Option<agentcore_telemetry::SpanId> {
    tokio::task::yield_now().await;
    get_distributed_tracer()
        .current_context()
        .and_then(|c| c.span_id())
}

/// A traced future created in a request's context and spawned on a current-thread runtime
/// continues the request's trace. The runtime polls its tasks on the thread that called
/// `block_on`, where that caller's span (`serve`, current around `block_on`) is current: when
/// the context current at the first poll won over the captured one, the job became a child of
/// `serve`, another trace (`#[tokio::test]`, `flavor = "current_thread"` and `LocalSet` all
/// poll there).
#[test]
fn a_traced_future_spawned_on_a_current_thread_runtime_continues_its_creators_trace() {
    let t = get_distributed_tracer();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let serve = t.start_span("serve", SpanKind::Server, []);
    let request = t.start_detached_trace(None, []);
    let request_trace = request.trace_id();
    // Spawned inside the request's scope; the runtime polls the task outside it, under
    // `serve`.
    let job_span = rt
        .block_on(async { tokio::spawn(background_job()).await.unwrap() }.in_context(request))
        .unwrap();
    drop(serve);
    assert_eq!(
        t.get_span_by_id(job_span).unwrap().trace_id,
        request_trace,
        "the job joined the trace of `serve`"
    );
}

/// `in_current_context` takes a copy of the context: baggage set afterwards on the guard
/// current where it was taken is not seen inside the future (documented on
/// `FutureExt::in_current_context`); the baggage set before is.
#[test]
fn in_current_context_is_a_copy_taken_when_it_is_called() {
    let t = get_distributed_tracer();
    let mut guard = t.start_trace(None, []);
    assert!(guard.set_baggage("before", "1"));
    let fut = async {
        let cx = get_distributed_tracer().current_context().unwrap();
        (
            cx.get_baggage("before").map(str::to_owned),
            cx.get_baggage("after").map(str::to_owned),
        )
    }
    .in_current_context();
    assert!(guard.set_baggage("after", "2"));
    drop(guard);
    assert_eq!(poll_to_end(fut), (Some("1".to_owned()), None));
}

#[trace_operation(name = "execute_tool_rev")]
async fn execute_tool_rev() {
    tokio::task::yield_now().await;
}

/// The README's first example: `execute_tool("calculator").in_context(&exec).await`, "a child
/// of execute_agent". The traced future is created inside the trace's scope (`in_context(trace)`)
/// and run in `exec`'s: once the captured context won over the one current at the first poll,
/// the explicit `in_context(&exec)` was ignored and the tool became a child of the trace's
/// root context, `exec`'s sibling.
#[test]
fn a_traced_future_run_in_an_explicit_context_is_a_child_of_that_context() {
    use agentcore_telemetry::SpanStatus;
    let t = get_distributed_tracer();
    let trace = t.start_detached_trace(None, []);
    let trace_id = trace.trace_id();
    let exec_id = poll_to_end(
        async {
            let exec = t.start_detached_span("execute_agent_rev", SpanKind::Internal, []);
            let id = exec.span_id();
            execute_tool_rev().in_context(&exec).await;
            t.finish_span(exec, SpanStatus::Ok, None);
            id
        }
        .in_context(trace),
    );
    let spans = t.get_trace_spans(trace_id);
    let tool = spans
        .iter()
        .find(|s| s.name == "execute_tool_rev")
        .expect("the tool's span is in the trace");
    assert_eq!(
        tool.parent_span_id,
        Some(exec_id),
        "the tool is not a child of the span it was run in"
    );
}

/// Starts a `cleanup` span when dropped and notes its parent.
struct CleanUpParent(Arc<Mutex<Option<Option<agentcore_telemetry::SpanId>>>>);
impl Drop for CleanUpParent {
    fn drop(&mut self) {
        let s = get_distributed_tracer().start_span("cleanup", SpanKind::Internal, []);
        *self.0.lock().unwrap() = Some(s.parent_span_id());
    }
}

#[trace_operation(name = "with_cleanup_parent")]
async fn with_cleanup_parent(guard: CleanUpParent) {
    let _guard = guard;
    std::future::pending::<()>().await;
}

/// A traced future dropped before its first poll drops its arguments where its span would
/// have started: run in `exec` (`in_context(&exec)`, a `select!` branch that lost before it
/// ran), a span their `Drop` starts is a child of `exec`, as the operation's own span would
/// have been ([`a_traced_future_run_in_an_explicit_context_is_a_child_of_that_context`]).
#[test]
fn a_traced_future_dropped_unpolled_in_an_explicit_context_drops_its_arguments_there() {
    let t = get_distributed_tracer();
    let seen = Arc::new(Mutex::new(None));
    let trace = t.start_detached_trace(None, []);
    let exec_id = poll_to_end(
        async {
            let exec = t.start_detached_span("execute_agent_rev2", SpanKind::Internal, []);
            let id = exec.span_id();
            let fut = with_cleanup_parent(CleanUpParent(Arc::clone(&seen)));
            async move { drop(fut) }.in_context(&exec).await;
            t.finish_span(exec, agentcore_telemetry::SpanStatus::Ok, None);
            id
        }
        .in_context(trace),
    );
    assert_eq!(
        *seen.lock().unwrap(),
        Some(Some(exec_id)),
        "the clean-up is not a child of the context the future was dropped in"
    );
}
