//! Trace context ([`TraceContext`]: trace id, span id, sampled flag, baggage) and the
//! thread-local stack of current contexts.
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

use super::id::{SpanId, TraceId};
use super::tracer::DistributedTracer;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;

/// Baggage: key-value pairs propagated with a trace and inherited by child spans.
///
/// ```
/// use agentcore_telemetry::tracer::Baggage;
/// let mut b = Baggage::new();
/// b.insert("tenant".into(), "acme".into());
/// ```
pub type Baggage = BTreeMap<String, String>;

/// The context of a trace at one point: trace id, the active span id (if any), the sampled
/// flag and the baggage.
///
/// It is a plain value: cloning shares the baggage (an `Arc`), and mutating baggage copies it
/// on write. [`to_map`](Self::to_map) / [`from_map`](Self::from_map) serialize it for a
/// cross-service call (the W3C header form is another module's job).
///
/// ```
/// use agentcore_telemetry::{TraceContext, TraceId};
///
/// let mut cx = TraceContext::new(TraceId::from_external("request-123"), None, true);
/// cx.set_baggage("user_id", "12345");
/// assert_eq!(cx.get_baggage("user_id"), Some("12345"));
/// let map = cx.to_map();
/// assert_eq!(TraceContext::from_map(&map), Some(cx));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: TraceId,
    span_id: Option<SpanId>,
    sampled: bool,
    baggage: Option<Arc<Baggage>>,
}

/// The key of the trace id in [`TraceContext::to_map`] (32 lowercase hex digits).
///
/// ```
/// use agentcore_telemetry::{tracer::KEY_TRACE_ID, TraceContext, TraceId};
/// let cx = TraceContext::new(TraceId::from_u128(1).unwrap(), None, true);
/// assert_eq!(cx.to_map()[KEY_TRACE_ID], "00000000000000000000000000000001");
/// ```
pub const KEY_TRACE_ID: &str = "trace_id";
/// The key of the span id in [`TraceContext::to_map`] (16 lowercase hex digits; absent when
/// the context has no span).
///
/// ```
/// use agentcore_telemetry::{tracer::KEY_SPAN_ID, TraceContext, TraceId};
/// assert!(!TraceContext::new(TraceId::random(), None, true).to_map().contains_key(KEY_SPAN_ID));
/// ```
pub const KEY_SPAN_ID: &str = "span_id";
/// The key of the sampled flag in [`TraceContext::to_map`] (`"true"` or `"false"`).
///
/// ```
/// use agentcore_telemetry::{tracer::KEY_SAMPLED, TraceContext, TraceId};
/// assert_eq!(TraceContext::new(TraceId::random(), None, false).to_map()[KEY_SAMPLED], "false");
/// ```
pub const KEY_SAMPLED: &str = "sampled";
/// The prefix of baggage entries in [`TraceContext::to_map`]: `baggage.<key>`.
///
/// ```
/// use agentcore_telemetry::{tracer::BAGGAGE_PREFIX, TraceContext, TraceId};
/// let mut cx = TraceContext::new(TraceId::random(), None, true);
/// cx.set_baggage("k", "v");
/// assert_eq!(cx.to_map()[&format!("{BAGGAGE_PREFIX}k")], "v");
/// ```
pub const BAGGAGE_PREFIX: &str = "baggage.";
/// The baggage key under which `start_trace` keeps a caller-supplied trace id that is not a
/// W3C id (the trace id is then derived from it, see [`TraceId::from_external`]).
///
/// ```
/// use agentcore_telemetry::{tracer::EXTERNAL_ID_KEY, DistributedTracer, TracerConfig};
/// let tracer = DistributedTracer::new(TracerConfig::default());
/// let cx = tracer.start_trace(Some("request-123"), [("k", "v")]);
/// assert_eq!(cx.get_baggage(EXTERNAL_ID_KEY), Some("request-123"));
/// ```
pub const EXTERNAL_ID_KEY: &str = "trace.external_id";

impl TraceContext {
    /// A context without baggage.
    ///
    /// ```
    /// use agentcore_telemetry::{SpanId, TraceContext, TraceId};
    /// let cx = TraceContext::new(TraceId::random(), SpanId::from_u64(1), false);
    /// assert!(!cx.is_sampled());
    /// assert_eq!(cx.span_id(), SpanId::from_u64(1));
    /// ```
    pub fn new(trace_id: TraceId, span_id: Option<SpanId>, sampled: bool) -> Self {
        TraceContext {
            trace_id,
            span_id,
            sampled,
            baggage: None,
        }
    }

    pub(crate) fn with_baggage(mut self, baggage: Option<Arc<Baggage>>) -> Self {
        self.baggage = baggage;
        self
    }

    /// The trace id.
    ///
    /// ```
    /// use agentcore_telemetry::{TraceContext, TraceId};
    /// let id = TraceId::random();
    /// assert_eq!(TraceContext::new(id, None, true).trace_id(), id);
    /// ```
    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }

    /// The active span's id; `None` for a trace root context (from `start_trace`).
    ///
    /// ```
    /// use agentcore_telemetry::{TraceContext, TraceId};
    /// assert_eq!(TraceContext::new(TraceId::random(), None, true).span_id(), None);
    /// ```
    pub fn span_id(&self) -> Option<SpanId> {
        self.span_id
    }

    /// Whether spans in this context are recorded.
    ///
    /// ```
    /// use agentcore_telemetry::{TraceContext, TraceId};
    /// assert!(TraceContext::new(TraceId::random(), None, true).is_sampled());
    /// ```
    pub fn is_sampled(&self) -> bool {
        self.sampled
    }

    /// Sets a baggage entry (copy-on-write if the baggage is shared).
    ///
    /// ```
    /// use agentcore_telemetry::{TraceContext, TraceId};
    /// let mut cx = TraceContext::new(TraceId::random(), None, true);
    /// cx.set_baggage("tenant", "acme");
    /// assert_eq!(cx.get_baggage("tenant"), Some("acme"));
    /// ```
    pub fn set_baggage(&mut self, key: impl Into<String>, value: impl Into<String>) {
        Arc::make_mut(self.baggage.get_or_insert_with(Default::default))
            .insert(key.into(), value.into());
    }

    /// A baggage entry.
    ///
    /// ```
    /// use agentcore_telemetry::{TraceContext, TraceId};
    /// assert_eq!(TraceContext::new(TraceId::random(), None, true).get_baggage("x"), None);
    /// ```
    pub fn get_baggage(&self, key: &str) -> Option<&str> {
        self.baggage.as_ref()?.get(key).map(String::as_str)
    }

    /// All baggage entries, sorted by key.
    ///
    /// ```
    /// use agentcore_telemetry::{TraceContext, TraceId};
    /// let mut cx = TraceContext::new(TraceId::random(), None, true);
    /// cx.set_baggage("b", "2");
    /// cx.set_baggage("a", "1");
    /// assert_eq!(cx.baggage().collect::<Vec<_>>(), [("a", "1"), ("b", "2")]);
    /// ```
    pub fn baggage(&self) -> impl Iterator<Item = (&str, &str)> {
        self.baggage
            .iter()
            .flat_map(|b| b.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    pub(crate) fn baggage_arc(&self) -> Option<&Arc<Baggage>> {
        self.baggage.as_ref()
    }

    /// Serializes the context (the spec's `to_dict`): [`KEY_TRACE_ID`], [`KEY_SPAN_ID`] (if
    /// any), [`KEY_SAMPLED`] and one `baggage.<key>` entry per baggage item.
    ///
    /// ```
    /// use agentcore_telemetry::{SpanId, TraceContext, TraceId};
    /// let mut cx = TraceContext::new(TraceId::from_u128(1).unwrap(), SpanId::from_u64(2), true);
    /// cx.set_baggage("user_id", "12345");
    /// let map = cx.to_map();
    /// assert_eq!(map["trace_id"], "00000000000000000000000000000001");
    /// assert_eq!(map["span_id"], "0000000000000002");
    /// assert_eq!(map["sampled"], "true");
    /// assert_eq!(map["baggage.user_id"], "12345");
    /// ```
    pub fn to_map(&self) -> BTreeMap<String, String> {
        let mut map = BTreeMap::new();
        map.insert(KEY_TRACE_ID.to_owned(), self.trace_id.to_string());
        if let Some(span_id) = self.span_id {
            map.insert(KEY_SPAN_ID.to_owned(), span_id.to_string());
        }
        map.insert(KEY_SAMPLED.to_owned(), self.sampled.to_string());
        for (k, v) in self.baggage() {
            map.insert(format!("{BAGGAGE_PREFIX}{k}"), v.to_owned());
        }
        map
    }

    /// Deserializes a context written by [`to_map`](Self::to_map) (the spec's `from_dict`),
    /// from any map of strings (`&BTreeMap`, `&HashMap`, pairs).
    ///
    /// Returns `None` without a `trace_id`. A `trace_id` that is not a W3C id is mapped with
    /// [`TraceId::from_external`]; an invalid `span_id` is ignored; `sampled` defaults to
    /// `true` and accepts `true`/`1`/`false`/`0`; other keys are ignored.
    ///
    /// ```
    /// use agentcore_telemetry::TraceContext;
    /// use std::collections::HashMap;
    ///
    /// let map: HashMap<String, String> = [
    ///     ("trace_id".to_string(), "4bf92f3577b34da6a3ce929d0e0e4736".to_string()),
    ///     ("baggage.tenant".to_string(), "acme".to_string()),
    /// ]
    /// .into();
    /// let cx = TraceContext::from_map(&map).unwrap();
    /// assert!(cx.is_sampled());
    /// assert_eq!(cx.get_baggage("tenant"), Some("acme"));
    /// assert!(TraceContext::from_map(&HashMap::<String, String>::new()).is_none());
    /// ```
    pub fn from_map<I, K, V>(map: I) -> Option<Self>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut trace_id = None;
        let mut span_id = None;
        let mut sampled = true;
        let mut baggage = Baggage::new();
        for (k, v) in map {
            let (k, v) = (k.as_ref(), v.as_ref());
            match k {
                KEY_TRACE_ID => trace_id = Some(TraceId::from_external(v)),
                KEY_SPAN_ID => span_id = SpanId::from_hex(v),
                KEY_SAMPLED => sampled = !matches!(v, "false" | "0"),
                _ => {
                    if let Some(key) = k.strip_prefix(BAGGAGE_PREFIX) {
                        baggage.insert(key.to_owned(), v.to_owned());
                    }
                }
            }
        }
        let baggage = (!baggage.is_empty()).then(|| Arc::new(baggage));
        Some(TraceContext::new(trace_id?, span_id, sampled).with_baggage(baggage))
    }
}

/// One entry of the thread-local context stack.
pub(crate) struct Frame {
    pub(crate) tracer: usize,
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
    fn position(&self, tracer: usize, key: u64) -> Option<usize> {
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

/// This thread's context stack, or `None` once its thread-local is gone (thread exit).
///
/// Hot path: doing the work inside `LocalKey::try_with`'s closure left it out of line, and
/// handing frames to it through memory caused store-forwarding stalls (both seen in the
/// profile). Taking only the address in the closure lets the work inline into the caller.
#[inline(always)]
fn stack<'a>() -> Option<&'a RefCell<Stack>> {
    let ptr = STACK.try_with(|s| s as *const RefCell<Stack>).ok()?;
    // SAFETY: the thread-local lives until this thread's TLS destructors run. Callers (all
    // in this module) use the reference only during their own call on this thread, never
    // store or send it, and run no code that could end the thread, so it outlives every use.
    Some(unsafe { &*ptr })
}

/// The current frame of `tracer` on this thread, if any.
#[inline]
pub(crate) fn current(tracer: usize) -> Option<Parent> {
    let s = stack()?.try_borrow().ok()?;
    let f = s.live().iter().rev().find(|f| f.tracer == tracer)?;
    Some(Parent {
        trace_id: f.trace_id,
        span_id: f.span_id,
        sampled: f.sampled,
        baggage: f.baggage.clone(),
    })
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
    let Some(Ok(mut s)) = stack().map(RefCell::try_borrow_mut) else {
        return false;
    };
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
    true
}

/// Removes the frame `(tracer, key)` (the top one in the common, in-order case).
#[inline(always)]
pub(crate) fn remove(tracer: usize, key: u64) {
    if let Some(Ok(mut s)) = stack().map(RefCell::try_borrow_mut) {
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
    }
}

/// Removes the frame `(tracer, key)` and every frame above it (frames left by spans that
/// were still open when a poll returned; see `Instrumented`).
pub(crate) fn truncate_at(tracer: usize, key: u64) {
    if let Some(Ok(mut s)) = stack().map(RefCell::try_borrow_mut) {
        if let Some(i) = s.position(tracer, key) {
            s.truncate(i);
        }
    }
}

/// Replaces the baggage of frame `(tracer, key)`.
fn set_frame_baggage(tracer: usize, key: u64, baggage: Option<Arc<Baggage>>) {
    if let Some(Ok(mut s)) = stack().map(RefCell::try_borrow_mut) {
        if let Some(i) = s.position(tracer, key) {
            if let Some(f) = s.frames.get_mut(i) {
                f.baggage = baggage;
            }
        }
    }
}

/// A [`TraceContext`] made current on this thread until the guard drops; from
/// [`DistributedTracer::start_trace`] or [`DistributedTracer::attach`]. Spans started
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
pub struct ContextGuard<'t> {
    tracer: &'t DistributedTracer,
    key: u64,
    cx: TraceContext,
    _not_send: PhantomData<*const ()>,
}

impl<'t> ContextGuard<'t> {
    pub(crate) fn attach(tracer: &'t DistributedTracer, cx: TraceContext) -> Self {
        let key = SpanId::random().to_u64();
        push(Frame {
            tracer: tracer.uid(),
            key,
            trace_id: cx.trace_id,
            span_id: cx.span_id,
            sampled: cx.sampled,
            baggage: cx.baggage.clone(),
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
        set_frame_baggage(self.tracer.uid(), self.key, self.cx.baggage.clone());
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
        remove(self.tracer.uid(), self.key);
    }
}

impl std::fmt::Debug for ContextGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContextGuard")
            .field("context", &self.cx)
            .finish()
    }
}
