//! The live span handles: [`Span`] (current on its thread, `!Send`) and [`DetachedSpan`]
//! (movable), both pointing at their tracer's [`TracerCore`]. What a span records is
//! `record.rs`; the record lives in the span log from start to finish (see `core.rs`).

use super::attribute::{KeyValue, Value};
use super::context::EXTERNAL_ID_KEY;
use super::context::{Carried, TraceContext};
pub(crate) use super::core::SpanIds;
use super::core::{push_event, put_record_attribute, Misuse, Rec, TraceId8, TracerCore};
use super::current::{self, Frame, Removal};
use super::exception::exception_type;
use super::id::{SpanId, ToSpanId, ToTraceId, TraceId, EXTERNAL_SPAN_ID_KEY};
use super::limits::{put_attribute, try_put_new_attribute, SpanLimits};
use super::record::{Event, Link, SpanKind, SpanRecord, SpanStatus};
use crate::user_fmt::display_text;
use smallvec::SmallVec;
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

// What the `tracing` bridge needs of a span beyond the public API (a child module: it reads
// the private fields).
#[cfg(feature = "tracing-bridge")]
mod bridge;
// No-op spans, for a tracer whose SDK is disabled (`OTEL_SDK_DISABLED=true`).
mod noop;

/// What a new span is, decided before it starts: its ids and parent, whether it is sampled,
/// and the baggage it inherits.
pub(crate) struct SpanStart {
    pub(crate) ids: SpanIds,
    /// Baggage, `tracestate` and the random-trace-id flag (see `Carried`).
    pub(crate) baggage: Option<Arc<Carried>>,
}

/// A span that is not current on any thread: it can be moved to another thread or into a
/// future ([`FutureExt::in_span`](super::FutureExt::in_span)). Same recording methods as
/// [`Span`] (which dereferences to it). Dropping it unfinished finishes it with its current
/// status (Unset unless set); dropped while a panic unwinds through it, it records the panic
/// as an exception and finishes with `Error` (not when it started inside a destructor run by
/// that same unwinding: see its `Drop`).
///
/// ```
/// use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};
/// let tracer: &'static DistributedTracer =
///     Box::leak(Box::new(DistributedTracer::new(TracerConfig::default())));
/// let mut span = tracer.start_span("work", SpanKind::Internal, []).detach();
/// let id = std::thread::spawn(move || {
///     span.set_attribute("thread", "worker");
///     let id = span.span_id();
///     span.end();
///     id
/// })
/// .join()
/// .unwrap();
/// assert!(tracer.get_span_by_id(id).is_some());
/// ```
#[must_use = "a span ends when dropped: bind it (`let span = ...`) and finish it when the operation ends"]
pub struct DetachedSpan<'t> {
    tracer: &'t TracerCore,
    /// Everything else: the ids, baggage and record, where they are (see `Rec`: inline for
    /// an unsampled span, in the record's span-log slot for a sampled one). Among them,
    /// whether the starting thread was already unwinding from a panic: the span started
    /// inside a destructor run by that unwinding, so a panic in progress when it drops is not
    /// one that passed through it (see `Drop`; only ever true for a sampled span).
    record: Rec<'t>,
}

impl<'t> Span<'t> {
    /// Starts a span, current on this thread; unsampled spans get no record but a frame, so
    /// their children are unsampled too. The frame is pushed last, once nothing can panic
    /// any more (see [`DetachedSpan::start`]).
    ///
    /// Hot path: the frame is built from the arguments, never through a reference to the
    /// span, and the span is built as one literal (built as a `DetachedSpan` and then moved
    /// into the `Span`, it was copied: ~45 instructions per span under callgrind).
    #[inline(always)]
    pub(crate) fn start(
        tracer: &'t TracerCore,
        start: SpanStart,
        name: impl Into<Cow<'static, str>>,
        kind: SpanKind,
        attributes: impl IntoIterator<Item = KeyValue>,
    ) -> Span<'t> {
        let SpanStart { ids, baggage } = start;
        // Hot path (issue 16): an unsampled span has a branch of its own, where `sampled`
        // and the record are constants, and each branch builds and returns its span as one
        // literal.
        if ids.sampled {
            let record = DetachedSpan::open(tracer, ids, &baggage, name, kind, attributes);
            // Nothing below can panic. The record holds its own copy of the baggage: this
            // one moves into the frame.
            let attached = current::push(Frame {
                tracer: tracer.id(),
                key: ids.span_id.to_u64(),
                trace_id: ids.trace_id,
                span_id: Some(ids.span_id),
                sampled: true,
                baggage,
                remote: false,
            });
            return Span {
                frame: FrameHold {
                    tracer,
                    key: if attached { ids.span_id.to_u64() } else { 0 },
                },
                inner: ManuallyDrop::new(DetachedSpan { tracer, record }),
                _not_send: PhantomData,
            };
        }
        // It only marks its subtree unsampled: no name conversion, no attributes, no record,
        // no clock read; a count and a frame (whose `sampled: false` its children inherit).
        // The unused name and attributes are dropped first: a `Drop` of the caller's that
        // panics must do so before the frame is pushed. Dropped at the end of this function
        // instead, they unwound past the built `Span` (its fields are not dropped then), so
        // its frame stayed on the thread for good and every later span there became an
        // unsampled child of it (found by review). Nothing below can panic.
        drop(attributes);
        drop(name);
        tracer.count_start(false);
        let attached =
            current::push_unsampled(tracer.id(), ids.trace_id, ids.span_id, baggage.clone());
        Span {
            frame: FrameHold {
                tracer,
                key: if attached { ids.span_id.to_u64() } else { 0 },
            },
            inner: ManuallyDrop::new(DetachedSpan {
                tracer,
                record: Rec::Unsampled {
                    trace_id: TraceId8(ids.trace_id),
                    span_id: ids.span_id,
                    baggage,
                },
            }),
            _not_send: PhantomData,
        }
    }
}

impl<'t> DetachedSpan<'t> {
    /// Starts a span that is not current anywhere.
    #[inline(always)]
    pub(crate) fn start(
        tracer: &'t TracerCore,
        start: SpanStart,
        name: impl Into<Cow<'static, str>>,
        kind: SpanKind,
        attributes: impl IntoIterator<Item = KeyValue>,
    ) -> DetachedSpan<'t> {
        let SpanStart { ids, baggage } = start;
        let record = if ids.sampled {
            DetachedSpan::open(tracer, ids, &baggage, name, kind, attributes)
        } else {
            // An unsampled span keeps neither: no conversion, nothing claimed. Dropped here,
            // before the span is counted, so that a `Drop` that panics counts nothing.
            drop(attributes);
            drop(name);
            tracer.count_start(false);
            Rec::Unsampled {
                trace_id: TraceId8(ids.trace_id),
                span_id: ids.span_id,
                baggage,
            }
        };
        DetachedSpan { tracer, record }
    }

    /// The part of a sampled span's start that can panic, and its record: unwinding at any
    /// point leaves nothing behind. The name is converted first (before anything is
    /// claimed), then the record is opened (`TracerCore::open` empties its slot if the
    /// caller's attribute iterator panics, reads the start time last, and only then counts
    /// the span). The record is built in place in its span-log slot (see `Rec`), with
    /// whether the thread is unwinding from a panic.
    #[inline(always)]
    fn open(
        tracer: &'t TracerCore,
        ids: SpanIds,
        carried: &Option<Arc<Carried>>,
        name: impl Into<Cow<'static, str>>,
        kind: SpanKind,
        attributes: impl IntoIterator<Item = KeyValue>,
    ) -> Rec<'t> {
        let unwinding = std::thread::panicking();
        tracer.open(ids, carried, unwinding, name.into(), kind, attributes)
    }
}

impl<'t> DetachedSpan<'t> {
    #[inline(always)]
    pub(crate) fn frame(&self) -> Frame {
        let (trace_id, span_id, sampled, remote, baggage) = self.parts();
        Frame {
            tracer: self.tracer.id(),
            key: span_id.to_u64(),
            trace_id,
            span_id: Some(span_id),
            sampled,
            baggage: baggage.cloned(),
            remote,
        }
    }

    /// The span's trace id, span id, sampled and remote flags and baggage, wherever they are
    /// (see `Rec`; only a no-op span's context can be remote: its parent's). A finished span
    /// (only its own `Drop` sees one) and a no-op span without a parent report invalid ids.
    #[inline(always)]
    fn parts(&self) -> (TraceId, SpanId, bool, bool, Option<&Arc<Carried>>) {
        match &self.record {
            Rec::Unsampled {
                trace_id,
                span_id,
                baggage,
            } => (trace_id.0, *span_id, false, false, baggage.as_ref()),
            Rec::Claimed(slot) => match slot.get() {
                Some(r) => (r.trace_id, r.span_id, true, false, r.carried.as_ref()),
                None => (TraceId::INVALID, SpanId::INVALID, true, false, None), // never: written at start
            },
            Rec::Lost(lost) => (
                lost.trace_id,
                lost.span_id,
                true,
                false,
                lost.carried.as_ref(),
            ),
            Rec::None => (TraceId::INVALID, SpanId::INVALID, false, false, None),
            noop => noop::parts(noop),
        }
    }

    /// A copy of the span's context as a frame that nothing removes by key (a future running
    /// in this span without owning it carries it, see `FutureExt::in_context`).
    #[inline]
    pub(crate) fn context_frame(&self) -> Frame {
        noop::without_invalid_span(Frame {
            key: 0,
            ..self.frame()
        })
    }

    /// Makes the span current on this thread (until it finishes or is detached again).
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// let parent = tracer.start_span("parent", SpanKind::Internal, []).detach();
    /// let parent = parent.attach();
    /// let child = tracer.start_span("child", SpanKind::Internal, []);
    /// assert_eq!(child.parent_span_id(), Some(parent.span_id()));
    /// ```
    pub fn attach(self) -> Span<'t> {
        // A `DetachedSpan` never has a frame of its own (`FrameHold` has it). Each attachment
        // gets a fresh random key (never 0), not the span id: one span can be attached,
        // detached and attached again, and the "ended" notes of `current.rs` name a frame by
        // its key, so a note left by one attachment must not drop the frame of another.
        // Even, as a `ContextGuard`'s: odd keys are the `tracing` bridge's entries, which the
        // stranded-entry check counts (`current::stray`, invariant 4); an odd key here made a
        // lagging thread count records it missed with no entry on its stack.
        let key = (SpanId::random().to_u64() & !1).max(2);
        let attached = current::push(noop::without_invalid_span(Frame {
            key,
            ..self.frame()
        }));
        Span {
            frame: FrameHold {
                tracer: self.tracer,
                key: if attached { key } else { 0 },
            },
            inner: ManuallyDrop::new(self),
            _not_send: PhantomData,
        }
    }

    /// The trace id (a no-op span's is its parent's, all-zero without one: see
    /// [`DistributedTracer::is_sdk_disabled`](crate::DistributedTracer::is_sdk_disabled)).
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// let _trace = tracer.start_trace(Some("4bf92f3577b34da6a3ce929d0e0e4736"), [("k", "v")]);
    /// let span = tracer.start_span("op", SpanKind::Internal, []);
    /// assert_eq!(span.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
    /// ```
    pub fn trace_id(&self) -> TraceId {
        self.parts().0
    }

    /// The span id (a no-op span's is its parent's, all-zero without one).
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// let span = tracer.start_span("op", SpanKind::Internal, []);
    /// assert_eq!(span.span_id().to_string().len(), 16);
    /// ```
    pub fn span_id(&self) -> SpanId {
        self.parts().1
    }

    /// The parent span id (`None` for a root span, and for unsampled spans, which keep no
    /// record).
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// let root = tracer.start_span("root", SpanKind::Server, []);
    /// assert_eq!(root.parent_span_id(), None);
    /// ```
    pub fn parent_span_id(&self) -> Option<SpanId> {
        match &self.record {
            Rec::Claimed(slot) => slot.get().and_then(|r| r.parent_span_id),
            Rec::Lost(lost) => lost.parent_span_id,
            _ => None,
        }
    }

    /// Whether the span is sampled and still records (false once finished).
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, Sampler, SpanKind, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig {
    ///     sampler: Some(Sampler::always_off()),
    ///     ..TracerConfig::default()
    /// });
    /// assert!(!tracer.start_span("op", SpanKind::Internal, []).is_recording());
    /// ```
    pub fn is_recording(&self) -> bool {
        matches!(self.record, Rec::Claimed(_))
    }

    /// The span's context (for propagation): its trace and span id, sampled flag and the
    /// baggage it inherited. A no-op span's is its parent's, remote flag included, or an
    /// [invalid](TraceContext::is_valid) one without a parent.
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// let span = tracer.start_span("op", SpanKind::Client, []);
    /// let cx = span.context();
    /// assert_eq!(cx.span_id(), Some(span.span_id()));
    /// assert!(cx.is_sampled());
    /// ```
    pub fn context(&self) -> TraceContext {
        let (trace_id, span_id, sampled, remote, baggage) = self.parts();
        // A no-op span's parent may have no span (a trace root context), or it has none.
        let span_id = SpanId::from_u64(span_id.to_u64());
        TraceContext::from_parts(trace_id, span_id, sampled, baggage.cloned()).with_remote(remote)
    }

    /// Sets (or replaces) an attribute. Beyond [`SpanLimits::max_attributes`](super::SpanLimits::max_attributes) new keys are
    /// dropped and counted. No-op on an unsampled span.
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig, Value};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// let mut span = tracer.start_span("op", SpanKind::Internal, []);
    /// span.set_attribute("agent_id", "agent-789");
    /// span.set_attribute("agent_id", "agent-790");
    /// let id = span.span_id();
    /// span.end();
    /// assert_eq!(tracer.get_span_by_id(id).unwrap().attribute("agent_id"), Some(&Value::from("agent-790")));
    /// ```
    // The unsampled check is inlined into the caller, and so is the common recording (a new
    // key with room for it); the rest is out of line. An unsampled span's attribute costs a
    // compare (callgrind: an out-of-line call with its prologue and epilogue was about 20
    // instructions per attribute on an unsampled span; issue 16). The recording inlined
    // whole grew each call site by ~700 bytes; out of line whole, the call cost ~25 of a
    // sampled span's ~85 instructions per attribute.
    #[inline(always)]
    pub fn set_attribute(&mut self, key: impl Into<Cow<'static, str>>, value: impl Into<Value>) {
        // Notes what it adds (`set_attribute_recorded`).
        if let Some(r) = self.record.get_mut_noting() {
            Self::set_attribute_recorded(r, self.tracer, key, value);
        }
    }

    /// The common case inline (a new key with room for it: see `try_put_new_attribute`),
    /// every other out of line, in one function for every key and value type.
    #[inline(always)]
    fn set_attribute_recorded(
        r: &mut SpanRecord,
        tracer: &TracerCore,
        key: impl Into<Cow<'static, str>>,
        value: impl Into<Value>,
    ) {
        let limits = tracer.limits();
        let kv = KeyValue::new(key, value);
        // Folded away for a literal key and value (see `HeapMark`). The out-of-line rest adds
        // nothing more to note: a spill of the span's own vector, which the start tests
        // apart, and a shortened value stays borrowed or owned as it was.
        r.heap.note_attribute(&kv);
        if let Err(kv) = try_put_new_attribute(
            &mut r.attributes,
            limits.max_attributes,
            limits.max_attribute_value_len,
            kv,
        ) {
            put_record_attribute(r, limits, kv);
        }
    }

    /// Adds a timestamped event. Beyond [`SpanLimits::max_events`](super::SpanLimits::max_events) events are dropped and
    /// counted. No-op on an unsampled span.
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, KeyValue, SpanKind, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// let mut span = tracer.start_span("op", SpanKind::Internal, []);
    /// span.add_event("retry_attempt", [KeyValue::new("attempt", 2), KeyValue::new("delay_ms", 1000)]);
    /// span.add_event("agent_started", []);
    /// let id = span.span_id();
    /// span.end();
    /// assert_eq!(tracer.get_span_by_id(id).unwrap().events.len(), 2);
    /// ```
    // As `set_attribute`: the unsampled check, the event's push and the common case of each of
    // its attributes inlined, the rest out of line (out of line whole, the call and its spills
    // were ~25 of the event's ~70 instructions under callgrind; each attribute put out of line
    // cost ~100, the common case inlined ~35; issue 16).
    #[inline(always)]
    pub fn add_event(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        attributes: impl IntoIterator<Item = KeyValue>,
    ) {
        // Notes what it adds (`add_event_recorded`).
        if let Some(r) = self.record.get_mut_noting() {
            Self::add_event_recorded(r, self.tracer, name, attributes);
        }
    }

    #[inline(always)]
    fn add_event_recorded(
        r: &mut SpanRecord,
        tracer: &TracerCore,
        name: impl Into<Cow<'static, str>>,
        attributes: impl IntoIterator<Item = KeyValue>,
    ) {
        let limits = tracer.limits();
        let len = r.events.len();
        if len >= limits.max_events as usize {
            r.dropped_events_count = r.dropped_events_count.saturating_add(1);
            return;
        }
        let name = name.into();
        // What the event adds, as `set_attribute` notes it (see `HeapMark`).
        r.heap.note_str(&name);
        // Ticks until the span finishes, which converts them with its start's and end's
        // offset (see `Rec`), so the event lies within the span.
        let ticks = tracer.now_ticks();
        let event = push_event(&mut r.events, name, ticks);
        for kv in attributes {
            // As `set_attribute`: the common case inline, the rest out of line (which can
            // spill the event's vector and shorten an owned value: the mark is set).
            r.heap.note_attribute(&kv);
            if let Err(kv) = try_put_new_attribute(
                &mut event.attributes,
                limits.max_attributes_per_event,
                limits.max_attribute_value_len,
                kv,
            ) {
                r.heap.set();
                Self::put_event_attribute(event, limits, kv);
            }
        }
    }

    #[inline(never)]
    fn put_event_attribute(event: &mut Event, limits: &SpanLimits, kv: KeyValue) {
        put_attribute(
            &mut event.attributes,
            &mut event.dropped_attributes_count,
            limits.max_attributes_per_event,
            limits.max_attribute_value_len,
            kv,
        );
    }

    /// Adds a link to span `span_id` of trace `trace_id`. Beyond
    /// [`SpanLimits::max_links`](super::SpanLimits::max_links) links are dropped and counted.
    /// No-op on an unsampled span.
    ///
    /// The ids are typed ids or strings, as the specification passes them
    /// (`trace_id="trace-999", span_id="span-888"`): a W3C hex id is used as is, any other
    /// string is mapped to a deterministic id ([`TraceId::from_external`],
    /// [`SpanId::from_external`]) and kept as the link attribute
    /// [`EXTERNAL_ID_KEY`] (`trace.external_id`) or
    /// [`EXTERNAL_SPAN_ID_KEY`] (`span.external_id`).
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, KeyValue, SpanId, SpanKind, TraceId, TracerConfig, Value};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// let mut span = tracer.start_span("fan_in", SpanKind::Consumer, []);
    /// span.add_link(TraceId::random(), SpanId::random(), []);
    /// span.add_link("trace-999", "span-888", [KeyValue::new("relationship", "caused_by")]);
    /// let id = span.span_id();
    /// span.end();
    /// let links = tracer.get_span_by_id(id).unwrap().links;
    /// assert_eq!(links.len(), 2);
    /// assert_eq!(links[1].trace_id, TraceId::from_external("trace-999"));
    /// assert_eq!(links[1].span_id, SpanId::from_external("span-888"));
    /// let attr = |k: &str| links[1].attributes.iter().find(|kv| kv.key == k).map(|kv| kv.value.clone());
    /// assert_eq!(attr("span.external_id"), Some(Value::from("span-888".to_string())));
    /// assert_eq!(attr("relationship"), Some(Value::from("caused_by")));
    /// ```
    pub fn add_link(
        &mut self,
        trace_id: impl ToTraceId,
        span_id: impl ToSpanId,
        attributes: impl IntoIterator<Item = KeyValue>,
    ) {
        let Some(r) = self.record.get_mut() else {
            return;
        };
        let limits = self.tracer.limits();
        if r.links.len() >= limits.max_links as usize {
            r.dropped_links_count = r.dropped_links_count.saturating_add(1);
            return;
        }
        let (trace_id, external_trace) = trace_id.to_trace_id();
        let (span_id, external_span) = span_id.to_span_id();
        let mut link = Link {
            trace_id,
            span_id,
            attributes: SmallVec::new(),
            dropped_attributes_count: 0,
        };
        let external = [
            external_trace.map(|s| KeyValue::new(EXTERNAL_ID_KEY, s.to_owned())),
            external_span.map(|s| KeyValue::new(EXTERNAL_SPAN_ID_KEY, s.to_owned())),
        ];
        for kv in external.into_iter().flatten().chain(attributes) {
            put_attribute(
                &mut link.attributes,
                &mut link.dropped_attributes_count,
                limits.max_attributes_per_link,
                limits.max_attribute_value_len,
                kv,
            );
        }
        r.links.push(link);
    }

    /// Records an error as an `exception` event with `exception.type` and
    /// `exception.message` (its `Display`), as OpenTelemetry does. The status is not changed:
    /// finish with [`SpanStatus::Error`] for that.
    ///
    /// `exception.type` is the Rust type name of `E`; for a type-erased error (`dyn Error`,
    /// `Box<dyn Error>`), whose concrete type is not known at run time, it is the error's
    /// `Debug` form (at most 256 bytes), which names the concrete error for derived `Debug`
    /// implementations.
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, SpanKind, SpanStatus, TracerConfig, Value};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// let mut span = tracer.start_span("op", SpanKind::Internal, []);
    /// let err = std::io::Error::new(std::io::ErrorKind::Other, "disk full");
    /// span.record_exception(&err);
    /// let id = span.span_id();
    /// span.finish(SpanStatus::Error);
    /// let r = tracer.get_span_by_id(id).unwrap();
    /// assert_eq!(r.events[0].name, "exception");
    /// assert_eq!(r.events[0].attributes[0].value, Value::from("std::io::error::Error"));
    /// assert_eq!(r.events[0].attributes[1].value, Value::from("disk full".to_string()));
    /// ```
    pub fn record_exception<E: fmt::Display + fmt::Debug + ?Sized>(&mut self, error: &E) {
        if !self.is_recording() {
            return;
        }
        self.record_exception_parts(exception_type(error), display_text(error));
    }

    /// Adds an `exception` event with the given type and message.
    pub(crate) fn record_exception_parts(
        &mut self,
        exception_type: Cow<'static, str>,
        message: impl Into<Value>,
    ) {
        self.add_event(
            "exception",
            [
                KeyValue::new("exception.type", exception_type),
                KeyValue::new("exception.message", message),
            ],
        );
    }

    /// Sets the status with OpenTelemetry's rules: `Ok` is final, `Unset` is ignored, and the
    /// message is kept only with `Error`.
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, SpanKind, SpanStatus, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// let mut span = tracer.start_span("op", SpanKind::Internal, []);
    /// span.set_status(SpanStatus::Ok, "");
    /// span.set_status(SpanStatus::Error, "too late");
    /// assert_eq!(span.status(), SpanStatus::Ok);
    /// ```
    pub fn set_status(&mut self, status: SpanStatus, message: impl Into<Cow<'static, str>>) {
        let r = match &mut self.record {
            Rec::Lost(lost) => {
                if lost.status != SpanStatus::Ok && status != SpanStatus::Unset {
                    lost.status = status;
                }
                return;
            }
            Rec::Claimed(slot) => match slot.get_mut() {
                Some(r) => r,
                None => return,
            },
            _ => return, // unsampled, no-op or finished
        };
        if r.status == SpanStatus::Ok || status == SpanStatus::Unset {
            return;
        }
        r.status = status;
        if status == SpanStatus::Error {
            let message = message.into();
            // The one string this adds (see `HeapMark`).
            r.heap.note_str(&message);
            r.status_message = message;
        } else if !r.status_message.is_empty() {
            // Usually already empty (as the record was opened): not rewritten then.
            r.status_message = Cow::Borrowed("");
        }
    }

    /// The current status (`Unset` for an unsampled span).
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, SpanKind, SpanStatus, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// let span = tracer.start_span("op", SpanKind::Internal, []);
    /// assert_eq!(span.status(), SpanStatus::Unset);
    /// ```
    pub fn status(&self) -> SpanStatus {
        match &self.record {
            Rec::Lost(lost) => lost.status,
            r => r.get().map_or(SpanStatus::Unset, |r| r.status),
        }
    }

    /// Finishes the span with `status` (see [`set_status`](Self::set_status)).
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, SpanKind, SpanStatus, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// let span = tracer.start_span("op", SpanKind::Internal, []).detach();
    /// let id = span.span_id();
    /// span.finish(SpanStatus::Ok);
    /// assert_eq!(tracer.get_span_by_id(id).unwrap().status, SpanStatus::Ok);
    /// ```
    #[inline]
    pub fn finish(mut self, status: SpanStatus) {
        self.set_status(status, "");
        self.end_consumed();
    }

    /// Finishes the span with `status` and a status message (kept for `Error` only).
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, SpanKind, SpanStatus, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// let span = tracer.start_span("op", SpanKind::Internal, []);
    /// let id = span.span_id();
    /// span.finish_with_message(SpanStatus::Error, "timeout");
    /// assert_eq!(tracer.get_span_by_id(id).unwrap().status_message, "timeout");
    /// ```
    #[inline]
    pub fn finish_with_message(
        mut self,
        status: SpanStatus,
        message: impl Into<Cow<'static, str>>,
    ) {
        self.set_status(status, message);
        self.end_consumed();
    }

    /// Finishes the span with its current status.
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, SpanKind, SpanStatus, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// let span = tracer.start_span("op", SpanKind::Internal, []);
    /// let id = span.span_id();
    /// span.end();
    /// assert_eq!(tracer.get_span_by_id(id).unwrap().status, SpanStatus::Unset);
    /// ```
    #[inline]
    pub fn end(self) {
        self.end_consumed();
    }

    /// Finishes the span and disposes of it without running `Drop`, which would only check
    /// again that there is nothing left to do (an out-of-line `drop_in_place` of ~45
    /// instructions per span in the profile).
    #[inline(always)]
    fn end_consumed(mut self) {
        self.end_in_place();
        // Nothing left to drop (see `end_in_place`).
        std::mem::forget(self);
    }

    /// Finishes the span where it is (`end_now`) and releases its baggage: afterwards it
    /// owns nothing (no frame, `Rec::None`, no baggage), so forgetting it leaks nothing.
    ///
    /// Hot path: the span is finished in place and forgotten at the end, never moved into a
    /// `ManuallyDrop` first: that moved the whole span (~100 bytes) once more, ~40
    /// instructions per span under callgrind (issue 16). If `end_now` unwinds (the metrics
    /// hook), the span is dropped as usual and `Drop` finds nothing done twice (`end_now` is
    /// idempotent).
    #[inline(always)]
    fn end_in_place(&mut self) {
        self.end_now();
        if let Some(baggage) = self.record.inline_baggage() {
            drop(baggage.take());
        }
    }

    /// Records a panic in progress: an `exception` event and `Error` status. The span is
    /// then marked as if it had started unwinding, so that its `Drop` during that same
    /// unwinding does not record the panic again (review helper-120: a panicking
    /// `in_span` / `#[trace_operation]` future's poll recorded it, then its span's drop did:
    /// two `exception` events for one panic).
    #[cold]
    pub(crate) fn record_panic(&mut self) {
        if self.record.is_open_sampled() {
            self.add_event(
                "exception",
                [
                    KeyValue::new("exception.type", "panic"),
                    KeyValue::new("exception.message", "the traced operation panicked"),
                ],
            );
            self.set_status(SpanStatus::Error, "panic");
            match &mut self.record {
                // The unwinding flag until the finish stamps the end (see `Rec`).
                Rec::Claimed(slot) => {
                    if let Some(r) = slot.get_mut() {
                        r.end_time_unix_nano = 1;
                    }
                }
                Rec::Lost(lost) => lost.started_unwinding = true,
                _ => {}
            }
        }
    }

    /// Hands the span's record (if sampled) to the tracer. Idempotent. Always inlined: out
    /// of line (LTO chose so once it grew), every finish paid a call with its spills (~25
    /// instructions per span under callgrind).
    #[inline(always)]
    pub(crate) fn end_now(&mut self) {
        if self.record.is_open_sampled() {
            self.tracer.record_finished(&mut self.record);
        }
    }
}

/// A [`Span`]'s frame on its thread's context stack: which tracer's, under which key (the span
/// id it was pushed for; 0: none, as when the thread-local was gone). It belongs to the
/// `Span`, not to the `DetachedSpan` inside: `DerefMut` lets safe code swap that one out
/// (`mem::swap(&mut *span, &mut other)`) and send it to another thread, and a frame flag
/// travelling with it left the frame on this thread's stack for good (every later span here
/// took the finished one as its parent) while the swapped-in span could not be attached
/// again. The frame is removed where it was pushed, when the `Span` finishes, detaches or
/// drops, whatever its inner span became meanwhile. It has no `Drop` of its own: `Span`'s
/// removes it (see `Span::end_on_drop`).
struct FrameHold<'t> {
    tracer: &'t TracerCore,
    key: u64,
}

impl FrameHold<'_> {
    /// Removes the frame, if there is one, counting a misuse if another trace's frame was
    /// above it (see `current.rs`). Idempotent.
    #[inline(always)]
    fn release(&mut self) {
        let key = std::mem::take(&mut self.key);
        Self::remove(self.tracer, key);
    }

    /// [`release`](Self::release) of the frame `key` of `tracer`'s, held by no `FrameHold`
    /// any more.
    #[inline(always)]
    fn remove(tracer: &TracerCore, key: u64) {
        if key != 0 && current::remove(tracer.id(), key) == Removal::OtherTraceAbove {
            tracer.misuse(Misuse::SpanEnded);
        }
    }
}

impl DetachedSpan<'_> {
    /// Records a panic passing through this span as it drops unfinished (see `Drop`).
    #[inline(always)]
    fn record_panic_if_unwinding(&mut self) {
        if self.record.is_open_sampled() && std::thread::panicking() && !self.started_unwinding() {
            self.record_panic();
        }
    }

    /// Whether the starting thread was already unwinding from a panic (see `Drop`; kept in
    /// the record or beside it, see `Rec`).
    #[cold]
    fn started_unwinding(&self) -> bool {
        match &self.record {
            Rec::Claimed(slot) => slot.get().is_some_and(|r| r.end_time_unix_nano != 0),
            Rec::Lost(lost) => lost.started_unwinding,
            _ => false,
        }
    }
}

/// A span dropped unfinished while its thread unwinds records the panic, unless the thread was
/// already unwinding when the span started (it started and ends inside a destructor run by
/// that unwinding; `thread::panicking()` alone cannot tell the two apart) or the panic was
/// recorded on it already (by the poll of an `in_span` future it runs). Two cases this
/// misses, as `std` exposes no panic count: a nested panic caught within that same destructor
/// after passing through such a span, and such a span moved to another thread and dropped
/// during a panic there. Neither is recorded as a panic.
impl Drop for DetachedSpan<'_> {
    fn drop(&mut self) {
        self.record_panic_if_unwinding();
        self.end_now();
    }
}

impl fmt::Debug for DetachedSpan<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (trace_id, span_id, sampled, _, _) = self.parts();
        f.debug_struct("Span")
            .field("trace_id", &trace_id)
            .field("span_id", &span_id)
            .field("sampled", &sampled)
            .field("recording", &self.is_recording())
            .finish()
    }
}

/// A started span, current on this thread: spans started on this thread while it is open
/// become its children. Finishing or dropping it makes its parent current again (also
/// when spans finish out of order). Dropping it unfinished finishes it (status Unset).
///
/// It is `!Send` because it is current on one thread; [`detach`](Self::detach) it (or pass it
/// to [`FutureExt::in_span`](super::FutureExt::in_span)) to move it elsewhere. This also
/// stops the classic mistake of holding an entered span across an `.await`.
///
/// ```
/// use agentcore_telemetry::{DistributedTracer, SpanKind, SpanStatus, TracerConfig};
/// let tracer = DistributedTracer::new(TracerConfig::default());
/// let parent = tracer.start_span("agent_lifecycle", SpanKind::Internal, []);
/// let child = tracer.start_span("initialize_container", SpanKind::Internal, []);
/// assert_eq!(child.parent_span_id(), Some(parent.span_id()));
/// tracer.finish_span(child, SpanStatus::Ok, None);
/// let sibling = tracer.start_span("execute_task", SpanKind::Internal, []);
/// assert_eq!(sibling.parent_span_id(), Some(parent.span_id()));
/// ```
#[must_use = "a span is current until dropped: bind it (`let span = ...`), or it ends at once"]
pub struct Span<'t> {
    /// Removed before the record is finished, by every way the span ends (`Drop` included).
    frame: FrameHold<'t>,
    /// Dropped only by `Span`'s own `Drop`, and only if that unwinds (see `end_on_drop`), or
    /// taken out by `detach`.
    inner: ManuallyDrop<DetachedSpan<'t>>,
    _not_send: PhantomData<*const ()>,
}

// The sizes the docs and `benches/HISTORY.md` argue from (a 40-byte record handle, `Rec`):
// a field or a variant that grows them fails the build.
#[cfg(target_pointer_width = "64")]
const _: () = assert!(size_of::<DetachedSpan<'_>>() == 48 && size_of::<Span<'_>>() == 64);

impl<'t> Span<'t> {
    /// Stops the span being current on this thread and returns it as a movable
    /// [`DetachedSpan`]; still recording.
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// let a = tracer.start_span("a", SpanKind::Internal, []).detach();
    /// let b = tracer.start_span("b", SpanKind::Internal, []);
    /// assert_eq!(b.parent_span_id(), None);
    /// assert!(a.is_recording());
    /// ```
    pub fn detach(self) -> DetachedSpan<'t> {
        let mut span = ManuallyDrop::new(self);
        // SAFETY: `span` is never dropped (`ManuallyDrop`) and its inner span is taken out
        // once, here; only its frame is used afterwards. Taken first, so that it drops as
        // usual should the frame's removal unwind.
        let inner = unsafe { ManuallyDrop::take(&mut span.inner) };
        span.frame.release();
        inner
    }

    /// Finishes the span with `status`; see [`DetachedSpan::finish`].
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, SpanKind, SpanStatus, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// tracer.start_span("op", SpanKind::Internal, []).finish(SpanStatus::Ok);
    /// assert_eq!(tracer.stats().spans_finished, 1);
    /// ```
    #[inline]
    pub fn finish(self, status: SpanStatus) {
        self.end_consumed(|span| span.set_status(status, ""));
    }

    /// Finishes the span with `status` and message; see [`DetachedSpan::finish_with_message`].
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, SpanKind, SpanStatus, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// tracer.start_span("op", SpanKind::Internal, []).finish_with_message(SpanStatus::Error, "boom");
    /// assert_eq!(tracer.stats().spans_errored, 1);
    /// ```
    #[inline]
    pub fn finish_with_message(
        mut self,
        status: SpanStatus,
        message: impl Into<Cow<'static, str>>,
    ) {
        // Set in place before anything else: the caller's conversion (or, for a span that
        // keeps no message, drop) of `message` runs while the span is still current, and if it
        // panics the span is dropped as usual (found by review: inside `end_consumed`, after
        // the frame's removal, it ran with the parent current).
        self.inner.set_status(status, message);
        self.end_consumed(|_| ());
    }

    /// Finishes the span with its current status.
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// tracer.start_span("op", SpanKind::Internal, []).end();
    /// assert_eq!(tracer.get_metrics().total_spans, 1);
    /// ```
    #[inline]
    pub fn end(self) {
        self.end_consumed(|_| ());
    }

    /// Removes the span's frame, runs `finish` on it (its status) and ends it, consuming it
    /// without running `Drop` (see [`DetachedSpan::end_in_place`]). `finish` runs no code of
    /// the caller's (see `finish_with_message`), so that it may run after the frame's removal,
    /// and not at all for an unsampled span.
    ///
    /// Hot path (issue 16): the caller's span is moved into this call, and the compiler
    /// copies it whole (64 bytes) into the argument whenever the argument's address is taken:
    /// by the unwinding path that would drop it, and by the methods the sampled finish calls
    /// on it. An unsampled span is therefore finished from a `ManuallyDrop`, which nothing
    /// drops and nothing but field reads and one write touch, so the copy goes (the fields
    /// are read from the caller's span). A sampled span is moved back out and finished in
    /// place as before, so that a finish that unwinds still drops it. The unsampled branch
    /// removes the frame first: were that to unwind, the baggage would leak, where the other
    /// order could leave the frame on the thread for good.
    ///
    /// Under callgrind (`profile.sh --ours`), release / thin LTO: `span_unsampled` 187 -> 160
    /// / 185 -> 157, a `#[trace_operation]` call 457 -> 452 / 446 -> 442, `span_basic` 608
    /// -> 607 / 615 -> 618, attributes at the start 681 -> 678 / 692 -> 699, an event with
    /// attributes 783 -> 787 / 783 -> 804 (there the sampled span's move back out is a copy
    /// again). Taking the record out instead, or finishing the sampled span inside the
    /// `ManuallyDrop` too, read no better.
    #[inline(always)]
    fn end_consumed(self, finish: impl FnOnce(&mut DetachedSpan<'t>)) {
        let mut span = ManuallyDrop::new(self);
        let (tracer, key) = (span.frame.tracer, span.frame.key);
        if let Some(baggage) = span.inner.record.inline_baggage() {
            FrameHold::remove(tracer, key);
            drop(baggage.take());
            return;
        }
        let mut span = ManuallyDrop::into_inner(span);
        span.frame.release();
        finish(&mut span.inner);
        span.inner.end_in_place();
        // Nothing left to drop (see `end_in_place`).
        std::mem::forget(span);
    }
}

/// A span dropped unfinished is finished as [`DetachedSpan`]'s `Drop` finishes one (a panic
/// passing through it recorded), after its frame is removed.
impl Drop for Span<'_> {
    /// One call, so that the compiler's glue for a `Span` is this call and inlines into the
    /// caller (see `end_on_drop`).
    #[inline]
    fn drop(&mut self) {
        // SAFETY: called once, from `Drop`: nothing uses the span afterwards.
        unsafe { self.end_on_drop() }
    }
}

impl Span<'_> {
    /// Removes the frame and finishes the inner span in place, leaving nothing to drop.
    ///
    /// Hot path (issue 16): `let _span = tracer.start_span(..)` ends here. The compiler's glue
    /// for the fields (a `Drop` on `FrameHold` and on `DetachedSpan`, as before) was too large
    /// to inline: every drop called it, and it called the frame's removal, `DetachedSpan`'s
    /// `Drop` (the sampled finish, out of line again) and the record's glue, each with its
    /// register saves. Here the whole end is one out-of-line call with everything inlined:
    /// under callgrind (`profile.sh --ours`), release / thin LTO, `span_dropped` 637 -> 609 /
    /// 639 -> 615 (`span_basic`, through `finish_span`, is 606 / 618) and
    /// `span_unsampled_dropped` 213 -> 188 / 212 -> 188 (161 / 157). An inline unsampled branch
    /// ahead of the call (removal inline or out of line) made the glue too large to inline
    /// again: sampled 615 to 655.
    ///
    /// Nothing here runs the caller's code. The one step that could unwind is the metrics
    /// hook inside the finish (a labeled lookup and an observation, which do not panic). Were
    /// it to, `OnUnwind` drops the inner span, whose own `Drop` records the panic and finishes
    /// it again (`end_now` did not complete), as an unwinding `end` or `finish` does; the
    /// frame, removed first, is not left behind. (Before this `Drop`, a dropped `Span` whose
    /// hook unwound left its record published unfinished.)
    ///
    /// # Safety
    /// At most once per span, and the span is not used afterwards (only `Drop` calls it): the
    /// inner span may have been dropped in place, if the end unwound.
    #[inline(never)]
    unsafe fn end_on_drop(&mut self) {
        /// Drops the inner span if the end unwinds; forgotten once it returned.
        struct OnUnwind<'a, 't>(&'a mut ManuallyDrop<DetachedSpan<'t>>);
        impl Drop for OnUnwind<'_, '_> {
            fn drop(&mut self) {
                // SAFETY: the inner span is dropped once: here, while `end_on_drop` unwinds,
                // which uses it no more, and whose contract rules out any later use or drop.
                unsafe { ManuallyDrop::drop(self.0) }
            }
        }
        let inner = OnUnwind(&mut self.inner);
        self.frame.release();
        inner.0.record_panic_if_unwinding();
        inner.0.end_in_place();
        // `end_in_place` left the inner span owning nothing: nothing is leaked.
        std::mem::forget(inner);
    }
}

impl<'t> Deref for Span<'t> {
    type Target = DetachedSpan<'t>;
    fn deref(&self) -> &DetachedSpan<'t> {
        &self.inner
    }
}

/// Gives the span's methods that take `&mut` ([`set_attribute`](DetachedSpan::set_attribute),
/// [`add_event`](DetachedSpan::add_event), ...). Swapping or replacing the inner span through it
/// (`mem::swap(&mut *span, &mut other)`) changes which span records, not which is current: the
/// handle keeps the frame of the span it started or attached, which stays the parent of new
/// spans on this thread until the handle finishes or drops, even if the swapped-out span ends
/// first elsewhere. Sound either way; finish or detach the handle instead.
impl<'t> DerefMut for Span<'t> {
    fn deref_mut(&mut self) -> &mut DetachedSpan<'t> {
        &mut self.inner
    }
}

/// Spans that [`DistributedTracer::finish_span`](crate::DistributedTracer::finish_span) accepts ([`Span`] and [`DetachedSpan`]).
/// Sealed.
///
/// ```
/// use agentcore_telemetry::{DistributedTracer, SpanKind, SpanStatus, TracerConfig};
/// let tracer = DistributedTracer::new(TracerConfig::default());
/// let attached = tracer.start_span("a", SpanKind::Internal, []);
/// let detached = tracer.start_detached_span("b", SpanKind::Internal, []);
/// tracer.finish_span(attached, SpanStatus::Ok, None);
/// tracer.finish_span(detached, SpanStatus::Error, Some("boom"));
/// assert_eq!(tracer.stats().spans_errored, 1);
/// ```
pub trait FinishSpan: sealed::Sealed {
    /// Sets the status (and message) and finishes the span, consuming it.
    #[doc(hidden)]
    fn finish_consumed(self, status: SpanStatus, message: Option<&str>);
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Span<'_> {}
    impl Sealed for super::DetachedSpan<'_> {}
}

/// Consumes the span without running `Drop` (see `DetachedSpan::end_consumed`): finishing
/// in place and then dropping the span ran an out-of-line `drop_in_place` and `end_now` a
/// second time (~60 instructions per span under callgrind). Always inlined: LTO left it out
/// of line, and an unsampled span then paid the call and the sampled path's spills (~100
/// instructions).
impl FinishSpan for DetachedSpan<'_> {
    #[inline(always)]
    fn finish_consumed(mut self, status: SpanStatus, message: Option<&str>) {
        self.finish_in_place(status, message);
        // Nothing left to drop (see `end_in_place`).
        std::mem::forget(self);
    }
}

impl FinishSpan for Span<'_> {
    #[inline(always)]
    fn finish_consumed(self, status: SpanStatus, message: Option<&str>) {
        self.end_consumed(|span| span.set_finish_status(status, message));
    }
}

impl DetachedSpan<'_> {
    /// `FinishSpan::finish_consumed`'s work, in place.
    #[inline(always)]
    fn finish_in_place(&mut self, status: SpanStatus, message: Option<&str>) {
        self.set_finish_status(status, message);
        self.end_in_place();
    }

    /// `finish_span`'s status: the message is copied only where it is kept.
    #[inline(always)]
    fn set_finish_status(&mut self, status: SpanStatus, message: Option<&str>) {
        match message {
            Some(m) if status == SpanStatus::Error && self.is_recording() => {
                self.set_status(status, m.to_owned())
            }
            _ => self.set_status(status, ""),
        }
    }
}

impl<'t> From<Span<'t>> for DetachedSpan<'t> {
    fn from(span: Span<'t>) -> Self {
        span.detach()
    }
}

impl fmt::Debug for Span<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        DetachedSpan::fmt(&self.inner, f)
    }
}

#[cfg(test)]
mod tests {
    use crate::{DistributedTracer, Sampler, SpanKind, SpanStatus, TracerConfig};
    use std::panic::{catch_unwind, AssertUnwindSafe};

    // `Span` keeps its inner span in a `ManuallyDrop`, dropped by its own `Drop` only if the
    // end unwinds and taken out by `detach`. Every way a span ends, with owned names,
    // attributes and baggage (so that a double drop or a leak is a heap error or a leak Miri
    // reports), runs under Miri (`.ci/miri`):
    //
    //     MIRIFLAGS=-Zmiri-disable-isolation cargo +nightly miri test --lib \
    //         --no-default-features tracer::span::tests::

    fn tracer(ratio: f64) -> DistributedTracer {
        DistributedTracer::new(TracerConfig {
            sampler: Some(Sampler::ratio(ratio)),
            span_log_capacity: 8,
            from_env: false,
            ..TracerConfig::default()
        })
    }

    #[test]
    fn every_end_of_a_span_drops_what_it_owns_once() {
        for ratio in [1.0, 0.0] {
            let t = tracer(ratio);
            let mut trace = t.start_trace(None, []);
            trace.set_baggage("tenant", "acme-with-a-long-name");
            let start = |name: &str| {
                let mut span = t.start_span(name.to_string(), SpanKind::Internal, []);
                span.set_attribute("owned", "v".repeat(40));
                span
            };
            drop(start("dropped"));
            start("ended").end();
            start("finished").finish_with_message(SpanStatus::Error, "m".to_string());
            t.finish_span(start("finish_span"), SpanStatus::Ok, None);
            let detached = start("detached").detach();
            drop(detached);
            start("reattached").detach().attach().end();
            let mut a = start("a");
            let mut b = t.start_detached_span("b".to_string(), SpanKind::Internal, []);
            std::mem::swap(&mut *a, &mut b);
            drop(a);
            drop(b);
            let unwound = catch_unwind(AssertUnwindSafe(|| {
                let _span = start("unwound");
                panic!("boom");
            }));
            assert!(unwound.is_err());
            assert_eq!(
                t.current_context().and_then(|c| c.span_id()),
                trace.context().span_id(),
                "ratio {ratio}: only the trace is current"
            );
            drop(trace);
            assert!(t.current_context().is_none(), "ratio {ratio}");
            let finished = t.stats().spans_finished;
            assert_eq!(finished, if ratio == 1.0 { 9 } else { 0 }, "ratio {ratio}");
        }
    }

    // Cases the test above does not reach (review of c014118): `Rec::Lost` spans (a log full
    // of open spans), handles whose inner span was swapped for one of another tracer and of
    // another kind (sampled, unsampled, lost), dropped normally and by a panic, a handle from
    // `attach` or `From`, and a span started during unwinding and dropped in it.
    #[test]
    fn lost_swapped_and_unwinding_spans_drop_what_they_own_once() {
        use crate::DetachedSpan;
        let sampled = tracer(1.0);
        let unsampled = tracer(0.0);
        let full = tracer(1.0);
        // Every later span of `full` finds no free slot: `Rec::Lost`.
        let hold: Vec<DetachedSpan<'_>> = (0..8)
            .map(|_| full.start_detached_span("hold", SpanKind::Internal, []))
            .collect();
        let tracers = [&sampled, &unsampled, &full];
        let mut trace = sampled.start_trace(None, []);
        trace.set_baggage("tenant", "acme-with-a-long-name");
        let mut u_trace = unsampled.start_trace(None, []);
        u_trace.set_baggage("tenant", "acme-with-a-long-name");
        let mut f_trace = full.start_trace(None, []);
        f_trace.set_baggage("tenant", "acme-with-a-long-name");
        // Where the span has a record: whether it recorded a panic passing through it.
        fn assert_panicked(t: &DistributedTracer, id: Option<crate::SpanId>, panicked: bool) {
            if let Some(r) = t.get_span_by_id(id.expect("started")) {
                let exception = r.events.iter().any(|e| e.name == "exception");
                assert_eq!(r.status == SpanStatus::Error, panicked, "{r:?}");
                assert_eq!(exception, panicked, "{r:?}");
            }
        }
        fn start(t: &DistributedTracer) -> crate::Span<'_> {
            let mut span = t.start_span("span".to_string(), SpanKind::Internal, []);
            span.set_attribute("owned", "v".repeat(40));
            span
        }
        for t in tracers {
            // Lost (for `full`) through every end.
            drop(start(t));
            start(t).end();
            t.finish_span(start(t), SpanStatus::Error, Some("m"));
            drop(start(t).detach().attach());
            let d: DetachedSpan<'_> = start(t).into();
            drop(d);
            let mut id = None;
            let unwound = catch_unwind(AssertUnwindSafe(|| {
                let span = start(t);
                id = Some(span.span_id());
                panic!("boom");
            }));
            assert!(unwound.is_err());
            assert_panicked(t, id, true);
            for o in tracers {
                // Swapped, the handle dropped first, then last, then by a panic.
                let mut a = start(t);
                let mut b = o.start_detached_span("b".to_string(), SpanKind::Internal, []);
                std::mem::swap(&mut *a, &mut b);
                drop(a);
                drop(b);
                let mut a = start(t);
                let mut b = o.start_detached_span("b".to_string(), SpanKind::Internal, []);
                std::mem::swap(&mut *a, &mut b);
                drop(b);
                drop(a);
                let mut a = start(t);
                let mut b = o.start_detached_span("b".to_string(), SpanKind::Internal, []);
                let (a_id, b_id) = (a.span_id(), b.span_id());
                std::mem::swap(&mut *a, &mut b);
                let unwound = catch_unwind(AssertUnwindSafe(move || {
                    let _a = a;
                    panic!("boom");
                }));
                assert!(unwound.is_err());
                // The swapped-in span (`o`'s) was dropped by the panic; `t`'s, in `b`, was not.
                assert_panicked(o, Some(b_id), true);
                drop(b);
                assert_panicked(t, Some(a_id), false);
            }
            // Started and dropped while unwinding (inside a destructor).
            struct OnDrop<F: FnMut()>(F);
            impl<F: FnMut()> Drop for OnDrop<F> {
                fn drop(&mut self) {
                    (self.0)()
                }
            }
            let mut id = None;
            let unwound = catch_unwind(AssertUnwindSafe(|| {
                let _d = OnDrop(|| {
                    let span = start(t);
                    id = Some(span.span_id());
                });
                panic!("other");
            }));
            assert!(unwound.is_err());
            assert_panicked(t, id, false);
        }
        for (t, cx) in [
            (&sampled, &trace),
            (&unsampled, &u_trace),
            (&full, &f_trace),
        ] {
            assert_eq!(
                t.current_context().and_then(|c| c.span_id()),
                cx.context().span_id(),
                "only the trace is current"
            );
        }
        drop((trace, u_trace, f_trace, hold));
        assert_eq!(
            sampled.stats().spans_started,
            sampled.stats().spans_finished
        );
        assert_eq!(full.stats().spans_started, full.stats().spans_finished);
        assert!(
            full.stats().spans_dropped > 0,
            "the full log's spans were lost"
        );
    }
}
