//! The current context: a thread-local stack of frames, and [`ContextGuard`], which makes a
//! [`TraceContext`] current on this thread.
//!
//! Each thread keeps a stack of frames; a frame is a started [`Span`](super::Span) (pushed
//! by `start_span`, removed when it finishes, even out of order) or an attached context
//! ([`ContextGuard`], from `start_trace` or [`DistributedTracer::attach`]). The current
//! context of a tracer is its top-most frame, so finishing a span makes its parent current
//! again. Frames are tagged with their tracer's id, so independent tracers on one thread do
//! not see each other's spans. Futures carry their span in
//! [`Instrumented`](super::Instrumented), which pushes it for the duration of each poll.
//!
//! [`DistributedTracer::attach`]: super::DistributedTracer::attach

use super::context::{Baggage, TraceContext};
use super::core::{TracerCore, TracerId};
use super::id::{SpanId, TraceId};
use std::cell::RefCell;
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;

/// One entry of the thread-local context stack.
pub(crate) struct Frame {
    pub(crate) tracer: TracerId,
    /// Identifies the frame for removal: the span id, or a random key for attached contexts.
    pub(crate) key: u64,
    pub(crate) trace_id: TraceId,
    pub(crate) span_id: Option<SpanId>,
    pub(crate) sampled: bool,
    pub(crate) baggage: Option<Arc<Baggage>>,
}

/// What a new span inherits from the current frame.
pub(crate) struct Parent {
    pub(crate) trace_id: TraceId,
    pub(crate) span_id: Option<SpanId>,
    pub(crate) sampled: bool,
    pub(crate) baggage: Option<Arc<Baggage>>,
}

/// A thread's frames: `frames[..depth]` are live. Slots above `depth` are kept (with their
/// baggage released) and reused: a push then assigns a slot's fields one by one instead of
/// copying a whole `Frame` in, which the profile showed as a store-forwarding stall (the
/// frame built with 8-byte stores, then copied with 16-byte loads: about 8 ns a push).
struct Stack {
    frames: Vec<Frame>,
    depth: usize,
}

impl Stack {
    #[inline]
    fn live(&self) -> &[Frame] {
        self.frames.get(..self.depth).unwrap_or_default()
    }

    #[inline]
    fn position(&self, tracer: TracerId, key: u64) -> Option<usize> {
        self.live()
            .iter()
            .rposition(|f| f.tracer == tracer && f.key == key)
    }

    /// Drops frames `from..depth` (releasing their baggage) and makes `from` the depth.
    fn truncate(&mut self, from: usize) {
        let depth = self.depth;
        if let Some(dead) = self.frames.get_mut(from..depth) {
            dead.iter_mut().for_each(|f| f.baggage = None);
            self.depth = from;
        }
    }
}

thread_local! {
    static STACK: RefCell<Stack> = const {
        RefCell::new(Stack {
            frames: Vec::new(),
            depth: 0,
        })
    };
}

/// Runs `f` on this thread's context stack; `None` once its thread-local is gone (thread
/// exit) or while it is borrowed (re-entry from a destructor running inside `f`).
///
/// Hot path: doing the work inside `LocalKey::try_with`'s closure left it out of line, and
/// handing frames to it through memory caused store-forwarding stalls (both seen in the
/// profile). Taking only the address in that closure lets `f` inline into the caller.
#[inline(always)]
fn with_stack<R>(f: impl FnOnce(&mut Stack) -> R) -> Option<R> {
    let ptr = STACK.try_with(|s| s as *const RefCell<Stack>).ok()?;
    // SAFETY: `ptr` points to this thread's `STACK`, which `try_with` just found alive. A
    // thread-local is destroyed only when its thread exits, after the thread's code has
    // returned, or by its own destructor, which runs after (never during) any other code on
    // the thread; so it stays alive for this call. The reference does not escape: `f` gets a
    // borrow bounded by this call (a higher-ranked lifetime), and this function is private.
    let cell = unsafe { &*ptr };
    let mut stack = cell.try_borrow_mut().ok()?;
    Some(f(&mut stack))
}

/// The current frame of `tracer` on this thread, if any.
#[inline]
pub(crate) fn current(tracer: TracerId) -> Option<Parent> {
    with_stack(|s| {
        let f = s.live().iter().rev().find(|f| f.tracer == tracer)?;
        Some(Parent {
            trace_id: f.trace_id,
            span_id: f.span_id,
            sampled: f.sampled,
            baggage: f.baggage.clone(),
        })
    })
    .flatten()
}

/// Pushes a frame; returns `false` if the thread-local stack is unavailable (thread exit).
/// Always inlined: out of line, the frame was passed through memory (~20 instructions of
/// call overhead and spills per span in the profile).
#[inline(always)]
pub(crate) fn push(frame: Frame) -> bool {
    let Frame {
        tracer,
        key,
        trace_id,
        span_id,
        sampled,
        baggage,
    } = frame;
    with_stack(|s| {
        let depth = s.depth;
        if let Some(f) = s.frames.get_mut(depth) {
            // Reuse the slot field by field (see `Stack`).
            f.tracer = tracer;
            f.key = key;
            f.trace_id = trace_id;
            f.span_id = span_id;
            f.sampled = sampled;
            f.baggage = baggage;
        } else {
            s.frames.push(Frame {
                tracer,
                key,
                trace_id,
                span_id,
                sampled,
                baggage,
            });
        }
        s.depth = depth + 1;
    })
    .is_some()
}

/// Removes the frame `(tracer, key)` (the top one in the common, in-order case).
#[inline(always)]
pub(crate) fn remove(tracer: TracerId, key: u64) {
    with_stack(|s| {
        if let Some(i) = s.position(tracer, key) {
            let depth = s.depth;
            if i + 1 < depth {
                // Out of order: move the frame to the top, keeping the others' order.
                if let Some(live) = s.frames.get_mut(i..depth) {
                    live.rotate_left(1);
                }
            }
            // Pop the top frame, releasing its baggage.
            if let Some(top) = s.frames.get_mut(depth - 1) {
                top.baggage = None;
            }
            s.depth = depth - 1;
        }
    });
}

/// Removes the frame `(tracer, key)` and every frame above it (frames left by spans that
/// were still open when a poll returned; see `Instrumented`).
pub(crate) fn truncate_at(tracer: TracerId, key: u64) {
    with_stack(|s| {
        if let Some(i) = s.position(tracer, key) {
            s.truncate(i);
        }
    });
}

/// Replaces the baggage of frame `(tracer, key)`.
fn set_frame_baggage(tracer: TracerId, key: u64, baggage: Option<Arc<Baggage>>) {
    with_stack(|s| {
        if let Some(i) = s.position(tracer, key) {
            if let Some(f) = s.frames.get_mut(i) {
                f.baggage = baggage;
            }
        }
    });
}

/// A [`TraceContext`] made current on this thread until the guard drops; from
/// [`DistributedTracer::start_trace`](super::DistributedTracer::start_trace) or
/// [`DistributedTracer::attach`](super::DistributedTracer::attach). Spans started
/// meanwhile (without an explicit parent) join its trace, inherit its sampled flag and
/// baggage, and have its span id (if any) as parent.
///
/// The guard is `!Send`: a context is current on one thread. For futures, attach it inside
/// the future or use [`FutureExt::in_span`](super::FutureExt::in_span).
///
/// ```
/// use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};
///
/// let tracer = DistributedTracer::new(TracerConfig::default());
/// let mut trace = tracer.start_trace(Some("request-123"), [("tenant", "acme")]);
/// trace.set_baggage("user_id", "12345");
/// let span = tracer.start_span("create_agent", SpanKind::Internal, []);
/// assert_eq!(span.trace_id(), trace.trace_id());
/// assert_eq!(span.context().get_baggage("user_id"), Some("12345"));
/// assert_eq!(span.context().get_baggage("trace.external_id"), Some("request-123"));
/// ```
#[must_use = "the context is current only until the guard drops: bind it (`let _trace = ...`), or the next span starts a new trace"]
pub struct ContextGuard<'t> {
    tracer: &'t TracerCore,
    key: u64,
    cx: TraceContext,
    _not_send: PhantomData<*const ()>,
}

impl<'t> ContextGuard<'t> {
    pub(crate) fn attach(tracer: &'t TracerCore, cx: TraceContext) -> Self {
        let key = SpanId::random().to_u64();
        push(Frame {
            tracer: tracer.id(),
            key,
            trace_id: cx.trace_id(),
            span_id: cx.span_id(),
            sampled: cx.is_sampled(),
            baggage: cx.baggage_arc().cloned(),
        });
        ContextGuard {
            tracer,
            key,
            cx,
            _not_send: PhantomData,
        }
    }

    /// Sets a baggage entry on the attached context; spans started afterwards inherit it.
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// let mut trace = tracer.start_trace(None, [("a", "1")]);
    /// trace.set_baggage("request_id", "req-789");
    /// assert_eq!(trace.get_baggage("request_id"), Some("req-789"));
    /// ```
    pub fn set_baggage(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.cx.set_baggage(key, value);
        set_frame_baggage(self.tracer.id(), self.key, self.cx.baggage_arc().cloned());
    }

    /// The attached context (also reachable through `Deref`).
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// let trace = tracer.start_trace(None, Vec::<(String, String)>::new());
    /// let cx = trace.context().clone();
    /// assert_eq!(cx.span_id(), None);
    /// ```
    pub fn context(&self) -> &TraceContext {
        &self.cx
    }
}

impl Deref for ContextGuard<'_> {
    type Target = TraceContext;
    fn deref(&self) -> &TraceContext {
        &self.cx
    }
}

impl Drop for ContextGuard<'_> {
    fn drop(&mut self) {
        remove(self.tracer.id(), self.key);
    }
}

impl std::fmt::Debug for ContextGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContextGuard")
            .field("context", &self.cx)
            .finish()
    }
}
