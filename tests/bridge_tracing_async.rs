//! The `tracing` bridge under async code, from an adversarial review: entries of one `tracing`
//! span in several futures on one thread, whose frames a scope (`in_current_context`,
//! `in_span`, `#[trace_operation]`) carries between polls.
//!
//! The bridge pushed every entry's frame under the span's id. The "ended" notes of
//! `tracer/current.rs` name a frame by its key: an entry that exits while its frame is saved
//! in a pending future notes `(tracer, key)`, and the next scope entered on the thread drops a
//! saved frame of that key. With one key for every entry of a span, the note left by one entry
//! dropped the frame of *another* entry of the same span that another pending future holds:
//! after its `.await` that future lost the span as its context (its children started a new
//! trace), while `tracing` itself (and so tracing-opentelemetry, which parents a span under
//! `tracing`'s current span) still has the span current there. The same bug
//! `DetachedSpan::attach` had, fixed there by a fresh key per attachment.
//!
//! Each test polls by hand, so nothing else runs between two polls.

use agentcore_telemetry::bridge::tracing_layer::AgentcoreLayer;
use agentcore_telemetry::{DistributedTracer, FutureExt, Registry, SpanId, SpanKind, TracerConfig};
use std::cell::RefCell;
use std::sync::mpsc;
use tracing_subscriber::layer::SubscriberExt;

mod support;

use support::poll::{poll_once, poll_to_end, PendingOnce};

/// One tracer for every test (a static, not a leaked box, so LeakSanitizer stays quiet): the
/// tests read only the parents of their own spans, and the context stack is per thread.
fn tracer() -> &'static DistributedTracer {
    static TRACER: std::sync::OnceLock<DistributedTracer> = std::sync::OnceLock::new();
    TRACER.get_or_init(|| {
        DistributedTracer::new(TracerConfig {
            from_env: false,
            ..TracerConfig::default()
        })
    })
}

/// Held by every test here: the list of stranded entries (`tracer::stray`) and its counter are
/// process-wide, and the test that fills the list counts exactly what one thread missed.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn subscriber(t: &'static DistributedTracer) -> impl tracing::Subscriber + Send + Sync {
    tracing_subscriber::registry().with(AgentcoreLayer::new(t))
}

/// Our span id of the `tracing` span `s` (entered for the look-up).
fn our_id(t: &DistributedTracer, s: &tracing::Span) -> SpanId {
    s.in_scope(|| t.current_context().and_then(|cx| cx.span_id()))
        .expect("the span is recorded")
}

/// Inside a scoped future, an entry of `s` held across `.await`; after it, what our tracer and
/// `tracing` each see as the parent of a new span.
async fn held_across_await(t: &DistributedTracer, s: &tracing::Span) -> (Option<SpanId>, bool) {
    let _entered = s.enter();
    PendingOnce::default().await;
    let ours = t
        .start_span("child", SpanKind::Internal, [])
        .parent_span_id();
    (ours, tracing::Span::current().id() == s.id())
}

/// An entry of a `tracing` span leaves a pending future F1 (its guard stored outside) and
/// exits there: the note it leaves must not drop the frame of another entry of the same span,
/// held across `.await` by a scoped future F2. Failed before the fix: F2's child started a new
/// trace (parent `None`) while `tracing` still had the span current in F2.
#[test]
fn an_exit_noted_for_one_entry_spares_another_entry_of_the_same_span() {
    let _serial = serial();
    let t = tracer();
    let _default = tracing::subscriber::set_default(subscriber(t));
    let s = tracing::info_span!("shared");
    let s_id = our_id(t, &s);
    let cell: RefCell<Option<tracing::span::EnteredSpan>> = RefCell::new(None);
    // F1 stays pending.
    let mut f1 = Box::pin(
        async {
            *cell.borrow_mut() = Some(s.clone().entered());
            PendingOnce::default().await;
        }
        .in_current_context(),
    );
    assert!(poll_once(f1.as_mut()).is_pending());
    // The entry left F1 and exits while its frame is saved in F1: noted.
    drop(cell.borrow_mut().take());
    let (ours, in_tracing) = poll_to_end(held_across_await(t, &s).in_current_context());
    drop(f1);
    assert!(in_tracing, "tracing has the span current after the .await");
    assert_eq!(
        ours,
        Some(s_id),
        "the entry F2 holds across .await lost its frame to another entry's note"
    );
}

/// The same with the note stranded on a thread: a `Send` future saved an entry's frame on this
/// thread, then completed on another (whose scope drops the frame: the "moved" rule), and the
/// entry, kept on this thread, exits here. A later scoped future on this thread that enters the
/// same span and holds the entry across `.await` must keep its frame. Failed before the fix.
#[test]
fn a_note_stranded_by_a_future_that_moved_threads_spares_a_later_entry() {
    let _serial = serial();
    thread_local! {
        static HELD: RefCell<Option<tracing::span::EnteredSpan>> = const { RefCell::new(None) };
    }
    let t = tracer();
    let _default = tracing::subscriber::set_default(subscriber(t));
    let s = tracing::info_span!("shared");
    let s_id = our_id(t, &s);
    let s2 = s.clone();
    let mut fut = Box::pin(
        async move {
            HELD.with(|h| *h.borrow_mut() = Some(s2.entered()));
            PendingOnce::default().await;
        }
        .in_current_context(),
    );
    assert!(poll_once(fut.as_mut()).is_pending());
    std::thread::spawn(move || poll_to_end(fut)).join().unwrap();
    // The entry exits on this thread, its frame gone with the future: noted here.
    HELD.with(|h| drop(h.borrow_mut().take()));
    let (ours, in_tracing) = poll_to_end(held_across_await(t, &s).in_current_context());
    assert!(in_tracing, "tracing has the span current after the .await");
    assert_eq!(
        ours,
        Some(s_id),
        "the later entry held across .await lost its frame to a stale note"
    );
}

/// An entry of a span held across `.await` in a scoped future, which resumes inside another
/// entry of the same span (`in_scope` around the poll), and exits there: the exit takes the
/// future's own frame (the top-most), not the outer entry's below the scope's marker. Else the
/// span stayed current in the future after its guard dropped (the scope hides the outer
/// entry). Guards the fix above: its first version took the newest-listed entry, the outer one.
#[test]
fn an_exit_inside_a_scope_takes_the_entry_above_the_marker() {
    let _serial = serial();
    let t = tracer();
    let _default = tracing::subscriber::set_default(subscriber(t));
    let s = tracing::info_span!("shared");
    let mut f = Box::pin(
        async {
            let entered = s.enter();
            PendingOnce::default().await;
            drop(entered);
            t.start_span("after", SpanKind::Internal, [])
                .parent_span_id()
        }
        .in_current_context(),
    );
    assert!(poll_once(f.as_mut()).is_pending());
    let after = s.in_scope(|| poll_to_end(f.as_mut()));
    assert_eq!(
        after, None,
        "the span stayed current after its guard dropped"
    );
    assert!(
        t.current_context().is_none(),
        "a frame was left on the thread"
    );
}

/// A `ContextGuard` attaching the context of an entered `tracing` span (the same span id) is
/// not an entry of that span: the span's exit, before the guard goes, removes its own frame,
/// not the guard's. Else the entry's frame stayed on the thread for good once the guard went,
/// and every later span there took the `tracing` span as its parent. Guards the fix above:
/// its second version removed the top-most frame of the span id that had a key.
#[test]
fn an_exit_leaves_a_guard_attached_to_the_same_context() {
    let _serial = serial();
    let t = tracer();
    let _default = tracing::subscriber::set_default(subscriber(t));
    let s = tracing::info_span!("entered");
    let entered = s.enter();
    let guard = t.attach(t.current_context().expect("the span is current"));
    drop(entered);
    drop(guard);
    assert!(
        t.current_context().is_none(),
        "a frame was left on the thread"
    );
}

/// One request's work: our spans, a re-entry of its own span inside a poll, a shared span
/// instrumenting a sub-future that `select!` cancels half the time, and an entry of the shared
/// span held across `.await` in a scoped future; counts every wrong parent in `bad`.
async fn request_work(
    t: &'static DistributedTracer,
    id: u64,
    shared: tracing::Span,
    bad: &'static std::sync::atomic::AtomicUsize,
) {
    use std::sync::atomic::Ordering::Relaxed;
    use std::time::Duration;
    use tracing::Instrument;
    let me = tracing::Span::current();
    let my = t.current_context().and_then(|c| c.span_id());
    for i in 0..4u64 {
        tokio::task::yield_now().await;
        if t.start_span("ours", SpanKind::Internal, [])
            .parent_span_id()
            != my
        {
            bad.fetch_add(1, Relaxed);
        }
        me.in_scope(|| {
            if t.start_span("reentered", SpanKind::Internal, [])
                .parent_span_id()
                != my
            {
                bad.fetch_add(1, Relaxed);
            }
        });
        let sub =
            tokio::time::sleep(Duration::from_micros((id * 7 + i) % 50)).instrument(shared.clone());
        tokio::select! {
            _ = sub => {}
            _ = tokio::time::sleep(Duration::from_micros((id * 13 + i) % 50)) => {}
        }
        let s = shared.clone();
        async move {
            let _entered = s.enter();
            tokio::task::yield_now().await;
        }
        .in_current_context()
        .await;
        if t.start_span("after", SpanKind::Internal, [])
            .parent_span_id()
            != my
        {
            bad.fetch_add(1, Relaxed);
        }
    }
}

/// 200 `.instrument()`ed tasks on a two-worker runtime, one in five aborted mid-flight, each
/// doing `request_work`: every span gets its request as parent, and once all are gone no frame
/// is left on any worker. (Passes on the span-id keys too; a version of the per-entry keys that
/// removed only the keys listed on the exiting thread left a `shared` frame on a worker here:
/// an `Entered` guard is `Send`, so its exit may run on another thread than its entry.)
#[test]
fn interleaved_instrumented_tasks_leave_no_frame_on_the_workers() {
    let _serial = serial();
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    use tracing::Instrument;
    static BAD: AtomicUsize = AtomicUsize::new(0);
    let t = tracer();
    let dispatch = tracing::Dispatch::new(subscriber(t));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let left = tracing::dispatcher::with_default(&dispatch, || {
        rt.block_on(async {
            let shared = tracing::info_span!("shared");
            let mut tasks = Vec::new();
            for id in 0..200u64 {
                let fut = request_work(t, id, shared.clone(), &BAD)
                    .instrument(tracing::info_span!("request", id));
                let task =
                    tokio::spawn(tracing::instrument::WithSubscriber::with_current_subscriber(fut));
                if id % 5 == 0 {
                    tokio::task::yield_now().await;
                    task.abort();
                }
                tasks.push(task);
            }
            for task in tasks {
                let _ = task.await;
            }
            let mut left = 0;
            for _ in 0..64 {
                let probe = tokio::spawn(async move {
                    tokio::task::yield_now().await;
                    t.current_context().is_some()
                });
                left += usize::from(probe.await.unwrap());
            }
            left
        })
    });
    assert_eq!(BAD.load(Relaxed), 0, "spans with a wrong parent");
    assert_eq!(left, 0, "probes that found a frame left on a worker");
}

/// A task that holds an entry of `s` (`s.enter()`) across `.await`, polled without our scopes
/// (a plain `tokio::spawn` on a multi-thread runtime), here by hand: pending on this thread,
/// then moved to another one and polled to the end there, where the entry exits (and `s`
/// closes, unless the caller kept a handle).
fn hold_entry_and_move_to_another_thread(s: tracing::Span) {
    let mut task = Box::pin(async move {
        let _entered = s.enter();
        PendingOnce::default().await;
    });
    assert!(poll_once(task.as_mut()).is_pending());
    std::thread::spawn(move || poll_to_end(task))
        .join()
        .unwrap();
}

/// The documented limit, fixed: an entry held across `.await` in a future that moves threads
/// outside our scopes exits on the second thread, where its frame is not; the frame stayed on
/// the first thread's stack for good, and every later span there (ours or bridged) was a
/// child of the ended span, in its trace. Once the span closes, the first thread drops the
/// frame at its next span start, and the spans there get the parent they should: the span of
/// ours still open below it, then none.
#[test]
fn an_entry_that_exits_on_another_thread_leaves_no_frame_on_the_first() {
    let _serial = serial();
    let t = tracer();
    let _default = tracing::subscriber::set_default(subscriber(t));
    let outer = t.start_span("outer", SpanKind::Internal, []);
    let held = tracing::info_span!("held");
    let held_id = our_id(t, &held);
    hold_entry_and_move_to_another_thread(held);
    let ours = t
        .start_span("after", SpanKind::Internal, [])
        .parent_span_id();
    assert_ne!(ours, Some(held_id), "a child of the ended span");
    assert_eq!(ours, Some(outer.span_id()), "the span open below it");
    let bridged = tracing::info_span!("bridged_after");
    let bridged_id = our_id(t, &bridged);
    drop(bridged);
    let spans = t.get_trace_spans(outer.trace_id());
    let bridged = spans
        .iter()
        .find(|s| s.span_id == bridged_id)
        .expect("the bridged span is in outer's trace");
    assert_eq!(bridged.parent_span_id, Some(outer.span_id()));
    drop(outer);
    assert!(
        t.current_context().is_none(),
        "a frame was left on the thread"
    );
}

/// While the span stays open after such an exit (a handle kept elsewhere), its entry stays
/// current on the first thread, as in `tracing`'s own registry: the exit names the span, not
/// the entry, so the second thread cannot tell which entry ended, nor on which thread. Once
/// the span closes, no entry of it can be open anywhere, and the first thread drops the frame.
#[test]
fn an_entry_that_exits_on_another_thread_stays_current_on_the_first_until_its_span_closes() {
    let _serial = serial();
    let t = tracer();
    let _default = tracing::subscriber::set_default(subscriber(t));
    let held = tracing::info_span!("held_open");
    let held_id = our_id(t, &held);
    hold_entry_and_move_to_another_thread(held.clone());
    assert_eq!(tracing::Span::current().id(), held.id(), "tracing agrees");
    let ours = t
        .start_span("while_open", SpanKind::Internal, [])
        .parent_span_id();
    assert_eq!(ours, Some(held_id));
    drop(held);
    assert!(tracing::Span::current().is_none(), "tracing recovers");
    let ours = t
        .start_span("after_close", SpanKind::Internal, [])
        .parent_span_id();
    assert_eq!(ours, None, "a child of the ended span");
    assert!(
        t.current_context().is_none(),
        "a frame was left on the thread"
    );
}

/// The stranded-entry list's capacity (`tracer::stray::CAP`), and how many records past it
/// [`lag_behind_a_flood`] publishes.
const CAP: usize = 64;
const OVER: usize = 3;

/// Runs `lagging` on a thread of its own (the layer its default there too): it takes its
/// entries or spans, then calls the function it is given, which returns once this thread has
/// published `CAP + OVER` stranded records, and looks up after that. `flooded` runs here after
/// the flood, before that thread goes on, with `stray_entries_missed` as it was before the
/// flood. Returns what `lagging` returned and how much `stray_entries_missed` grew.
fn lag_behind_a_flood<R: Send + 'static>(
    t: &'static DistributedTracer,
    flooded: impl FnOnce(u64),
    lagging: impl FnOnce(&dyn Fn()) -> R + Send + 'static,
) -> (R, u64) {
    let dispatch = tracing::Dispatch::new(subscriber(t));
    let _default = tracing::dispatcher::set_default(&dispatch);
    let (ready_tx, ready_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        let _default = tracing::dispatcher::set_default(&dispatch);
        lagging(&|| {
            ready_tx.send(()).unwrap();
            go_rx.recv().unwrap();
        })
    });
    ready_rx.recv().unwrap();
    let before = t.stats().stray_entries_missed;
    for _ in 0..CAP + OVER {
        hold_entry_and_move_to_another_thread(tracing::info_span!("stranded"));
    }
    flooded(before);
    go_tx.send(()).unwrap();
    let lagged = thread.join().unwrap();
    (lagged, t.stats().stray_entries_missed - before)
}

/// The list of stranded entries keeps the newest 64 records (`tracer::stray::CAP`); a thread
/// that looks after more were published, with an entry on its stack, counts the ones it can no
/// longer read in `TracerStats::stray_entries_missed` and
/// `agentcore_tracer_stray_entries_missed_total`. Fills the list past its cap while a thread
/// holding an entry waits: that thread counts exactly the overflow, and its own entry (of a
/// live span: never recorded) stays its current context.
#[test]
fn the_stranded_entry_list_keeps_its_cap_and_counts_what_a_thread_missed() {
    let _serial = serial();
    let t = tracer();
    let ((live_id, parent), missed_by_it) = lag_behind_a_flood(
        t,
        // This thread checked each record as it came (each new span looks up its parent).
        |before| assert_eq!(t.stats().stray_entries_missed, before),
        move |wait_for_the_flood| {
            let live = tracing::info_span!("live");
            let _entered = live.enter();
            let live_id = t.current_context().and_then(|cx| cx.span_id());
            wait_for_the_flood();
            let parent = t
                .start_span("after_the_flood", SpanKind::Internal, [])
                .parent_span_id();
            (live_id, parent)
        },
    );
    assert!(live_id.is_some());
    assert_eq!(parent, live_id, "the live entry was dropped");
    assert_eq!(missed_by_it, OVER as u64, "records missed");
    let missed = t.stats().stray_entries_missed;
    let registry = Registry::new();
    t.register_metrics(&registry).unwrap();
    assert!(
        registry.encode_text().contains(&format!(
            "agentcore_tracer_stray_entries_missed_total {missed}\n"
        )),
        "the self-metric"
    );
    // The last stranded frame here goes at this thread's next look-up.
    assert!(
        t.current_context().is_none(),
        "a frame was left on the thread"
    );
}

/// A thread with no entry of a `tracing` span on its stack counts no record it missed, however
/// far it lags (`stray` invariant 4): here it holds only spans of ours attached again after a
/// `detach` (`DetachedSpan::attach`). Their frame keys were fully random, so odd half the
/// time, and an odd key that is not the span id is what the count takes for an entry's: the
/// thread counted the overflow. (Found by review helper-107.)
#[test]
fn a_lagging_thread_holding_only_reattached_spans_counts_no_missed_record() {
    let _serial = serial();
    const ATTACHED: usize = 32;
    let t = tracer();
    let ((), missed) = lag_behind_a_flood(
        t,
        |_| {},
        move |wait_for_the_flood| {
            // One key in two was odd: all 32 even by chance once in 2^32 runs.
            let attached: Vec<_> = (0..ATTACHED)
                .map(|_| {
                    t.start_span("reattached", SpanKind::Internal, [])
                        .detach()
                        .attach()
                })
                .collect();
            let top = attached.last().map(|s| s.span_id());
            wait_for_the_flood();
            let parent = t
                .start_span("after_the_flood", SpanKind::Internal, [])
                .parent_span_id();
            assert_eq!(parent, top, "the attached span is the parent");
            drop(attached);
        },
    );
    assert_eq!(
        missed, 0,
        "records counted as missed by a thread with no entry"
    );
}

/// An entry held across `.await` whose future is dropped on another thread while that
/// thread's thread-locals are being destroyed (a future kept in a thread-local, destroyed
/// after the bridge's own list of entries): the exit there finds no frame and cannot read
/// the list. It did not mark the span, so its close published nothing and the frame stayed on
/// the first thread for good. A record of a closed span is always safe (no entry of it is open
/// anywhere), so such an exit marks it too. (Found by review helper-107.)
#[test]
fn an_entry_that_exits_in_a_thread_local_destructor_on_another_thread_leaves_no_frame() {
    use std::future::Future;
    use std::pin::Pin;
    type Task = Pin<Box<dyn Future<Output = ()> + Send>>;
    thread_local! {
        static HELD: RefCell<Option<Task>> = const { RefCell::new(None) };
    }
    let _serial = serial();
    let t = tracer();
    let dispatch = tracing::Dispatch::new(subscriber(t));
    let _default = tracing::dispatcher::set_default(&dispatch);
    let held = tracing::info_span!("held_into_a_thread_local");
    let held_id = our_id(t, &held);
    let mut task: Task = Box::pin(async move {
        let _entered = held.enter();
        PendingOnce::default().await;
    });
    assert!(poll_once(task.as_mut()).is_pending());
    std::thread::spawn(move || {
        // Registered first, destroyed last: after the bridge's list of entries, which the
        // entry and exit below register.
        HELD.with(|h| *h.borrow_mut() = Some(task));
        tracing::dispatcher::with_default(&dispatch, || {
            tracing::info_span!("registers_the_list").in_scope(|| ());
        });
    })
    .join()
    .unwrap();
    let ours = t
        .start_span("after", SpanKind::Internal, [])
        .parent_span_id();
    assert_ne!(ours, Some(held_id), "a child of the ended span");
    assert!(
        t.current_context().is_none(),
        "a frame was left on the thread"
    );
}
