//! Trace context through real async patterns, checked by an adversarial review (review
//! helper-129) and found right: each test pins the parent every span must get by the rules of
//! `tracer/current.rs` (the defects that review found have their tests in
//! `tests/tracer_async_drop.rs` and `tests/tracer_scope_escape.rs`).
//!
//! Recursion through boxed `#[trace_operation]` futures joined on one thread; a traced function
//! returning a future that borrows; a future polled to completion inside another's `Drop`; a
//! waker that polls another scoped future synchronously; panics in a poll (caught outside, and
//! inside an enclosing traced future); `block_in_place` and `spawn_blocking`; a scoped future
//! dropped while pending inside another's poll; a hand-rolled `FuturesUnordered`; an `async`
//! closure resumed on a `std::thread::scope` thread; `tokio::spawn` (no context), with
//! `in_current_context` (the creator's), and `spawn_local` on a `LocalSet` driven inside a
//! scope (that scope's: its tasks are polled inside the scope's poll); `tracing::Instrument`
//! futures on a multi-thread runtime through the bridge.

use agentcore_telemetry::{
    get_distributed_tracer, trace_operation, FutureExt, SpanId, SpanKind, TraceId,
};
use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

mod support;

use support::poll::{poll_once, poll_to_end, PendingOnce};

type Seen = Arc<Mutex<Option<(TraceId, Option<SpanId>)>>>;

/// Starts a `cleanup` span when dropped and notes its trace and parent.
struct CleanUp(Seen);
impl Drop for CleanUp {
    fn drop(&mut self) {
        let s = get_distributed_tracer().start_span("cleanup", SpanKind::Internal, []);
        *self.0.lock().unwrap() = Some((s.trace_id(), s.parent_span_id()));
    }
}

thread_local! {
    static OP: Cell<Option<(TraceId, SpanId)>> = const { Cell::new(None) };
}

/// A current-thread tokio runtime (no I/O or time driver: these tests only yield).
fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

/// A multi-thread tokio runtime with two workers.
fn two_worker_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap()
}

fn note_op() {
    let cx = get_distributed_tracer().current_context().unwrap();
    OP.with(|o| o.set(Some((cx.trace_id(), cx.span_id().unwrap()))));
}

#[trace_operation(name = "ident_arg")]
async fn ident_arg(_g: CleanUp) {
    note_op();
    std::future::pending::<()>().await;
}

/// Polls `make(seen)` once inside `other` (another trace), then drops it there.
fn cancel_in_other_trace<F: Future>(
    make: impl FnOnce(Seen) -> F,
) -> ((TraceId, SpanId), (TraceId, Option<SpanId>)) {
    let t = get_distributed_tracer();
    let seen = Seen::default();
    let mut fut = Box::pin(make(Arc::clone(&seen)));
    assert!(poll_once(fut.as_mut()).is_pending());
    let op = OP.with(Cell::take).expect("the body ran");
    let other = t.start_span("other", SpanKind::Internal, []);
    drop(fut);
    drop(other);
    let cleanup = seen.lock().unwrap().take().expect("dropped");
    (op, cleanup)
}

#[test]
fn an_argument_of_a_cancelled_operation_is_dropped_in_its_span() {
    let (op, cleanup) = cancel_in_other_trace(|s| ident_arg(CleanUp(s)));
    assert_eq!(cleanup, (op.0, Some(op.1)));
}

// ---- recursion

#[trace_operation(name = "rec")]
async fn rec(n: u32) -> Vec<(SpanId, Option<SpanId>)> {
    tokio::task::yield_now().await;
    let cx = get_distributed_tracer().current_context().unwrap();
    let me = cx.span_id().unwrap();
    let mut out = vec![];
    if n > 0 {
        out = Box::pin(rec(n - 1)).await;
    }
    tokio::task::yield_now().await;
    let s = get_distributed_tracer().start_span("leaf", SpanKind::Internal, []);
    out.push((me, s.parent_span_id()));
    out
}

#[test]
fn boxed_recursive_operations_joined_on_one_thread_nest() {
    let t = get_distributed_tracer();
    let rt = current_thread_runtime();
    let root = t.start_detached_span("root", SpanKind::Internal, []);
    let trace = root.trace_id();
    let root_id = root.span_id();
    let out = rt.block_on(
        async {
            let (a, b) = tokio::join!(rec(3), rec(2));
            (a, b)
        }
        .in_span(root),
    );
    for (me, p) in out.0.iter().chain(&out.1) {
        assert_eq!(Some(*me), *p);
    }
    let spans = t.get_trace_spans(trace);
    let recs: Vec<_> = spans.iter().filter(|s| s.name == "rec").collect();
    assert_eq!(recs.len(), 7);
    let top: Vec<_> = recs
        .iter()
        .filter(|s| s.parent_span_id == Some(root_id))
        .collect();
    assert_eq!(top.len(), 2);
}

// ---- non-'static impl Future

#[trace_operation(name = "borrowing")]
fn borrowing<'a>(s: &'a str) -> impl Future<Output = (usize, Option<SpanId>)> + 'a {
    async move {
        tokio::task::yield_now().await;
        let c = get_distributed_tracer().start_span("c", SpanKind::Internal, []);
        (s.len(), c.parent_span_id())
    }
}

#[test]
fn a_traced_future_that_borrows_runs_in_its_span() {
    let t = get_distributed_tracer();
    let rt = current_thread_runtime();
    let root = t.start_detached_span("root", SpanKind::Internal, []);
    let trace = root.trace_id();
    let text = String::from("abc");
    let (n, p) = rt.block_on(async { borrowing(&text).await }.in_span(root));
    assert_eq!(n, 3);
    let spans = t.get_trace_spans(trace);
    let b = spans.iter().find(|s| s.name == "borrowing").unwrap();
    assert_eq!(p, Some(b.span_id));
}

// ---- a future polled inside another future's Drop

struct PollOnDrop(
    Option<Pin<Box<dyn Future<Output = Option<SpanId>>>>>,
    Arc<Mutex<Option<Option<SpanId>>>>,
);
impl Drop for PollOnDrop {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            *self.1.lock().unwrap() = Some(poll_to_end(f));
        }
    }
}

#[test]
fn a_future_polled_inside_another_futures_drop_runs_in_its_own_span() {
    let t = get_distributed_tracer();
    let a = t.start_detached_span("a", SpanKind::Internal, []);
    let (a_trace, a_id) = (a.trace_id(), a.span_id());
    let b = t.start_detached_span("b", SpanKind::Internal, []);
    let b_id = b.span_id();
    let got = Arc::new(Mutex::new(None));
    let inner: Pin<Box<dyn Future<Output = Option<SpanId>>>> = Box::pin(
        async {
            PendingOnce::default().await;
            get_distributed_tracer()
                .start_span("x", SpanKind::Internal, [])
                .parent_span_id()
        }
        .in_span(b),
    );
    let g2 = Arc::clone(&got);
    let mut fut = Box::pin(
        async move {
            let _p = PollOnDrop(Some(inner), g2);
            let s = get_distributed_tracer().start_span("held", SpanKind::Internal, []);
            PendingOnce::default().await;
            std::future::pending::<()>().await;
            drop(s);
        }
        .in_span(a),
    );
    assert!(poll_once(fut.as_mut()).is_pending());
    assert!(poll_once(fut.as_mut()).is_pending());
    drop(fut);
    assert_eq!(*got.lock().unwrap(), Some(Some(b_id)));
    assert!(t.current_context().is_none());
    let held = t
        .get_trace_spans(a_trace)
        .into_iter()
        .find(|s| s.name == "held")
        .expect("held ended");
    assert_eq!(held.parent_span_id, Some(a_id));
}

// ---- re-entrant: a waker that polls another scoped future synchronously

#[test]
fn a_waker_polling_another_scoped_future_synchronously_keeps_each_span() {
    use std::task::{Wake, Waker};
    let t = get_distributed_tracer();
    let b = t.start_detached_span("b", SpanKind::Internal, []);
    let b_id = b.span_id();
    type Bf = Pin<Box<dyn Future<Output = Option<SpanId>> + Send>>;
    struct W(Mutex<Option<Bf>>, Mutex<Option<Option<SpanId>>>);
    impl Wake for W {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref()
        }
        fn wake_by_ref(self: &Arc<Self>) {
            let mut f = self.0.lock().unwrap();
            if let Some(fut) = f.as_mut() {
                let w = Waker::noop();
                if let Poll::Ready(v) = fut.as_mut().poll(&mut Context::from_waker(w)) {
                    *self.1.lock().unwrap() = Some(v);
                    *f = None;
                }
            }
        }
    }
    let w = Arc::new(W(
        Mutex::new(Some(Box::pin(
            async {
                PendingOnce::default().await;
                get_distributed_tracer()
                    .start_detached_span("x", SpanKind::Internal, [])
                    .parent_span_id()
            }
            .in_span(b),
        ))),
        Mutex::new(None),
    ));
    let waker = Waker::from(Arc::clone(&w));
    let a = t.start_detached_span("a", SpanKind::Internal, []);
    let a_id = a.span_id();
    let mut fut = Box::pin(
        std::future::poll_fn(|cx| {
            let s = get_distributed_tracer().start_span("held", SpanKind::Internal, []);
            cx.waker().wake_by_ref();
            let c = get_distributed_tracer().start_detached_span("after", SpanKind::Internal, []);
            let ids = (s.parent_span_id(), c.parent_span_id() == Some(s.span_id()));
            drop(s);
            Poll::Ready(ids)
        })
        .in_span(a),
    );
    waker.wake_by_ref();
    let mut cx = Context::from_waker(&waker);
    let r = fut.as_mut().poll(&mut cx);
    assert_eq!(r, Poll::Ready((Some(a_id), true)));
    assert_eq!(*w.1.lock().unwrap(), Some(Some(b_id)));
}

// ---- panics

#[test]
fn a_panic_in_a_poll_leaves_no_frame_on_the_thread() {
    let t = get_distributed_tracer();
    let a = t.start_detached_span("a", SpanKind::Internal, []);
    let mut fut = Box::pin(
        async {
            let _s = get_distributed_tracer().start_span("held", SpanKind::Internal, []);
            PendingOnce::default().await;
            let _s2 = get_distributed_tracer().start_span("held2", SpanKind::Internal, []);
            panic!("boom");
        }
        .in_span(a),
    );
    assert!(poll_once(fut.as_mut()).is_pending());
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| poll_once(fut.as_mut())));
    assert!(r.is_err());
    assert!(t.current_context().is_none());
    drop(fut);
    assert!(t.current_context().is_none());
}

#[trace_operation(name = "plain_done")]
async fn plain_done(_g: CleanUp) {
    note_op();
    tokio::task::yield_now().await;
}

#[trace_operation(name = "wild_done")]
async fn wild_done(_: CleanUp) {
    note_op();
    tokio::task::yield_now().await;
}

#[test]
fn arguments_of_a_completed_operation_are_dropped_in_its_span() {
    let t = get_distributed_tracer();
    let _other = t.start_span("other", SpanKind::Internal, []);
    let seen = Seen::default();
    poll_to_end(plain_done(CleanUp(Arc::clone(&seen))));
    let op = OP.with(Cell::take).unwrap();
    let plain = seen.lock().unwrap().take().unwrap();
    poll_to_end(wild_done(CleanUp(Arc::clone(&seen))));
    let op2 = OP.with(Cell::take).unwrap();
    let wild = seen.lock().unwrap().take().unwrap();
    assert_eq!(plain, (op.0, Some(op.1)));
    assert_eq!(wild, (op2.0, Some(op2.1)));
}

// ---- runtime patterns

fn cur() -> Option<SpanId> {
    get_distributed_tracer()
        .current_context()
        .and_then(|c| c.span_id())
}

#[test]
fn block_in_place_keeps_the_span_and_spawn_blocking_has_none() {
    let t = get_distributed_tracer();
    let rt = two_worker_runtime();
    let root = t.start_detached_span("root", SpanKind::Internal, []);
    let root_id = root.span_id();
    let (a, b, c) = rt.block_on(async move {
        tokio::spawn(
            async move {
                tokio::task::yield_now().await;
                let a = tokio::task::block_in_place(|| {
                    let s = get_distributed_tracer().start_span("bip", SpanKind::Internal, []);
                    s.parent_span_id()
                });
                tokio::task::yield_now().await;
                let b = tokio::task::spawn_blocking(cur).await.unwrap();
                let c = cur();
                (a, b, c)
            }
            .in_span(root),
        )
        .await
        .unwrap()
    });
    assert_eq!(a, Some(root_id));
    assert_eq!(b, None);
    assert_eq!(c, Some(root_id));
}

#[test]
fn a_future_dropped_pending_inside_another_poll_cleans_up_in_its_span() {
    let t = get_distributed_tracer();
    let a = t.start_detached_span("a", SpanKind::Internal, []);
    let (a_trace, a_id) = (a.trace_id(), a.span_id());
    let b = t.start_detached_span("b", SpanKind::Internal, []);
    let b_id = b.span_id();
    let seen = Seen::default();
    let s2 = Arc::clone(&seen);
    let r = poll_to_end(
        async move {
            let _held = get_distributed_tracer().start_span("held", SpanKind::Internal, []);
            let mut inner = Box::pin(
                async move {
                    let _g = CleanUp(s2);
                    let _h =
                        get_distributed_tracer().start_span("inner_held", SpanKind::Internal, []);
                    std::future::pending::<()>().await;
                }
                .in_span(b),
            );
            assert!(poll_once(inner.as_mut()).is_pending());
            let held_id = cur();
            drop(inner);
            let after = cur();
            PendingOnce::default().await;
            (held_id, after, cur())
        }
        .in_span(a),
    );
    assert_eq!(r.0, r.1);
    assert_eq!(r.1, r.2);
    let cleanup = seen.lock().unwrap().take().unwrap();
    let spans = t.get_trace_spans(cleanup.0);
    let ih = spans.iter().find(|s| s.name == "inner_held").unwrap();
    assert_eq!(ih.parent_span_id, Some(b_id));
    assert_eq!(cleanup.1, Some(b_id));
    let held = t
        .get_trace_spans(a_trace)
        .into_iter()
        .find(|s| s.name == "held")
        .expect("held ended");
    assert_eq!((Some(held.span_id), held.parent_span_id), (r.0, Some(a_id)));
}

/// A worker's future: its span, and the parents its spans got.
type Worker = Pin<Box<dyn Future<Output = (SpanId, Vec<Option<SpanId>>)>>>;

/// A hand-rolled FuturesUnordered: many scoped futures polled inside one scoped future.
#[test]
fn scoped_futures_polled_together_inside_one_scope_keep_their_own_spans() {
    let t = get_distributed_tracer();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let root = t.start_detached_span("root", SpanKind::Internal, []);
    let root_id = root.span_id();
    let out = rt.block_on(
        async {
            let mut futs: Vec<Worker> = (0..5)
                .map(|i| {
                    let s =
                        get_distributed_tracer().start_detached_span("w", SpanKind::Internal, []);
                    let id = s.span_id();
                    Box::pin(
                        async move {
                            let mut v = vec![];
                            let _held =
                                get_distributed_tracer().start_span("held", SpanKind::Internal, []);
                            for _ in 0..i + 1 {
                                tokio::task::yield_now().await;
                                v.push(
                                    get_distributed_tracer()
                                        .start_detached_span("x", SpanKind::Internal, [])
                                        .parent_span_id(),
                                );
                            }
                            drop(_held);
                            v.push(cur());
                            (id, v)
                        }
                        .in_span(s),
                    ) as Worker
                })
                .collect();
            let mut done = vec![];
            std::future::poll_fn(|cx| {
                futs.retain_mut(|f| match f.as_mut().poll(cx) {
                    Poll::Ready(v) => {
                        done.push(v);
                        false
                    }
                    Poll::Pending => true,
                });
                assert_eq!(cur(), Some(root_id));
                if futs.is_empty() {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            })
            .await;
            done
        }
        .in_span(root),
    );
    assert_eq!(out.len(), 5);
    for (id, v) in out {
        let last = *v.last().unwrap();
        assert_eq!(last, Some(id));
        for p in &v[..v.len() - 1] {
            assert_ne!(*p, Some(id)); // held is the parent
            assert!(p.is_some());
        }
    }
}

#[test]
fn an_async_closure_resumed_on_a_scoped_thread_keeps_its_span() {
    let t = get_distributed_tracer();
    let root = t.start_detached_span("root", SpanKind::Internal, []);
    let root_id = root.span_id();
    let mut fut = Box::pin(
        async move {
            let f = async |n: u32| {
                PendingOnce::default().await;
                (n, cur())
            };
            let (_, p) = f(1).await;
            p
        }
        .in_span(root),
    );
    assert!(poll_once(fut.as_mut()).is_pending());
    // resumed on a scoped thread
    let r = std::thread::scope(|s| s.spawn(|| poll_once(fut.as_mut())).join().unwrap());
    match r {
        Poll::Ready(p) => assert_eq!(p, Some(root_id)),
        Poll::Pending => panic!(),
    }
}

#[trace_operation(name = "inner_panics")]
async fn inner_panics() {
    let _held = get_distributed_tracer().start_span("inner_held", SpanKind::Internal, []);
    tokio::task::yield_now().await;
    panic!("inner");
}

#[test]
fn a_panicking_operation_caught_by_its_caller_leaves_the_callers_span() {
    let t = get_distributed_tracer();
    let root = t.start_detached_span("root", SpanKind::Internal, []);
    let root_id = root.span_id();
    let trace = root.trace_id();
    let rt = current_thread_runtime();
    let r = rt.block_on(
        async move {
            let mut inner = Box::pin(inner_panics());
            let caught = std::future::poll_fn(|cx| {
                match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    inner.as_mut().poll(cx)
                })) {
                    Ok(Poll::Pending) => Poll::Pending,
                    Ok(Poll::Ready(())) => Poll::Ready(false),
                    Err(_) => Poll::Ready(true),
                }
            })
            .await;
            let a = cur();
            drop(inner);
            let b = cur();
            let c = get_distributed_tracer()
                .start_detached_span("after", SpanKind::Internal, [])
                .parent_span_id();
            (caught, a, b, c)
        }
        .in_span(root),
    );
    assert_eq!(r, (true, Some(root_id), Some(root_id), Some(root_id)));
    let spans = t.get_trace_spans(trace);
    let ip = spans.iter().find(|s| s.name == "inner_panics").unwrap();
    assert_eq!(ip.parent_span_id, Some(root_id));
    let ih = spans.iter().find(|s| s.name == "inner_held").unwrap();
    assert_eq!(ih.parent_span_id, Some(ip.span_id));
    assert_eq!(ip.status, agentcore_telemetry::SpanStatus::Error);
}

#[cfg(feature = "tracing-bridge")]
#[test]
fn tracing_instrumented_futures_nest_in_scopes_across_workers() {
    use agentcore_telemetry::bridge::tracing_layer::AgentcoreLayer;
    use tracing::Instrument;
    use tracing_subscriber::layer::SubscriberExt;
    let t = get_distributed_tracer();
    let sub = tracing_subscriber::registry().with(AgentcoreLayer::new(t));
    let dispatch = tracing::Dispatch::new(sub);
    let d2 = dispatch.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .on_thread_start(move || {
            std::mem::forget(tracing::dispatcher::set_default(&d2));
        })
        .build()
        .unwrap();
    let _g = tracing::dispatcher::set_default(&dispatch);
    let mut handles = vec![];
    let mut roots = vec![];
    for _ in 0..40 {
        let root = t.start_detached_span("root", SpanKind::Internal, []);
        roots.push((root.trace_id(), root.span_id()));
        handles.push(
            rt.spawn(
                async move {
                    let work = tracing::info_span!("work");
                    let inner = async {
                        tokio::task::yield_now().await;
                        let a = cur();
                        tokio::task::yield_now().await;
                        let c = get_distributed_tracer()
                            .start_detached_span("child", SpanKind::Internal, [])
                            .parent_span_id();
                        (a, c)
                    }
                    .instrument(work)
                    .await;
                    tokio::task::yield_now().await;
                    (inner, cur())
                }
                .in_span(root),
            ),
        );
    }
    for (h, (trace, root_id)) in handles.into_iter().zip(roots) {
        let ((a, c), after) = rt.block_on(h).unwrap();
        assert_eq!(after, Some(root_id));
        assert_eq!(a, c);
        let spans = t.get_trace_spans(trace);
        let work = spans
            .iter()
            .find(|s| s.name == "work")
            .expect("work recorded in the root's trace");
        assert_eq!(work.parent_span_id, Some(root_id));
        assert_eq!(c, Some(work.span_id));
    }
}

#[test]
fn spawned_tasks_get_no_context_unless_carried_and_local_tasks_get_the_drivers() {
    let t = get_distributed_tracer();
    let rt = current_thread_runtime();
    let root = t.start_detached_span("root", SpanKind::Internal, []);
    let root_id = root.span_id();
    let (plain, carried, local) = rt.block_on(
        async {
            let plain = tokio::spawn(async {
                tokio::task::yield_now().await;
                cur()
            })
            .await
            .unwrap();
            let carried = tokio::spawn(
                async {
                    tokio::task::yield_now().await;
                    cur()
                }
                .in_current_context(),
            )
            .await
            .unwrap();
            let ls = tokio::task::LocalSet::new();
            let local = ls
                .run_until(async {
                    tokio::task::spawn_local(async {
                        tokio::task::yield_now().await;
                        cur()
                    })
                    .await
                    .unwrap()
                })
                .await;
            (plain, carried, local)
        }
        .in_span(root),
    );
    assert_eq!(plain, None);
    assert_eq!(carried, Some(root_id));
    assert_eq!(local, Some(root_id));
}

/// Receivers the body's future takes whole (review helper-129's `self` fix): `mut self`
/// mutated in the body, `self: Pin<&mut Self>`, `&mut self` across an `.await`.
struct Counter(u32);

impl Counter {
    #[trace_operation]
    async fn bump_owned(mut self) -> u32 {
        tokio::task::yield_now().await;
        self.0 += 1;
        self.0
    }

    #[trace_operation]
    async fn bump_pinned(self: Pin<&mut Self>) -> u32 {
        let this = self.get_mut();
        tokio::task::yield_now().await;
        this.0 += 1;
        this.0
    }

    #[trace_operation]
    async fn bump(&mut self) -> u32 {
        tokio::task::yield_now().await;
        self.0 += 1;
        self.0
    }
}

#[test]
fn receivers_moved_into_the_body_still_work() {
    let rt = current_thread_runtime();
    rt.block_on(async {
        assert_eq!(Counter(1).bump_owned().await, 2);
        let mut c = Counter(1);
        assert_eq!(Pin::new(&mut c).bump_pinned().await, 2);
        assert_eq!(c.bump().await, 3);
        assert_eq!(c.0, 3);
    });
}
