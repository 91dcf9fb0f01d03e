//! Spans: the live handles ([`Span`], [`DetachedSpan`]) and the finished [`SpanRecord`].

use super::attribute::{KeyValue, Value};
use super::context::{self, Baggage, Frame, TraceContext};
use super::id::{SpanId, TraceId};
use super::tracer::DistributedTracer;
use crate::sync::ring::Claimed;
use smallvec::SmallVec;
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

/// Attributes a span stores inline, without allocating (more spill to the heap, up to
/// [`SpanLimits::max_attributes`]).
///
/// ```
/// assert_eq!(agentcore_telemetry::tracer::INLINE_ATTRIBUTES, 4);
/// ```
pub const INLINE_ATTRIBUTES: usize = 4;
/// Events a span stores inline, without allocating.
///
/// ```
/// assert_eq!(agentcore_telemetry::tracer::INLINE_EVENTS, 1);
/// ```
pub const INLINE_EVENTS: usize = 1;
/// Attributes an event stores inline, without allocating.
///
/// ```
/// assert_eq!(agentcore_telemetry::tracer::INLINE_EVENT_ATTRIBUTES, 2);
/// ```
pub const INLINE_EVENT_ATTRIBUTES: usize = 2;
/// Links a span stores inline, without allocating.
///
/// ```
/// assert_eq!(agentcore_telemetry::tracer::INLINE_LINKS, 1);
/// ```
pub const INLINE_LINKS: usize = 1;
/// Attributes a link stores inline, without allocating.
///
/// ```
/// assert_eq!(agentcore_telemetry::tracer::INLINE_LINK_ATTRIBUTES, 0);
/// ```
pub const INLINE_LINK_ATTRIBUTES: usize = 0;

/// The role of a span in a trace (OTLP `SpanKind`).
///
/// ```
/// use agentcore_telemetry::SpanKind;
/// assert_eq!(SpanKind::default(), SpanKind::Internal);
/// assert_eq!(SpanKind::Client.as_str(), "client");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SpanKind {
    /// An internal operation.
    #[default]
    Internal,
    /// The server side of a remote call.
    Server,
    /// The client side of a remote call.
    Client,
    /// The sender of a message.
    Producer,
    /// The receiver of a message.
    Consumer,
}

impl SpanKind {
    /// The lowercase name.
    ///
    /// ```
    /// use agentcore_telemetry::SpanKind;
    /// assert_eq!(SpanKind::Producer.as_str(), "producer");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            SpanKind::Internal => "internal",
            SpanKind::Server => "server",
            SpanKind::Client => "client",
            SpanKind::Producer => "producer",
            SpanKind::Consumer => "consumer",
        }
    }
}

/// The outcome of a span (OTLP status code). `Ok` is final; setting `Unset` is ignored.
///
/// ```
/// use agentcore_telemetry::SpanStatus;
/// assert_eq!(SpanStatus::default(), SpanStatus::Unset);
/// assert_eq!(SpanStatus::Error.as_str(), "error");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SpanStatus {
    /// Not determined (the default).
    #[default]
    Unset,
    /// Completed successfully.
    Ok,
    /// Failed.
    Error,
}

impl SpanStatus {
    /// The lowercase name.
    ///
    /// ```
    /// use agentcore_telemetry::SpanStatus;
    /// assert_eq!(SpanStatus::Ok.as_str(), "ok");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            SpanStatus::Unset => "unset",
            SpanStatus::Ok => "ok",
            SpanStatus::Error => "error",
        }
    }
}

/// Per-span limits (OpenTelemetry defaults: 128 each). Items beyond a limit are dropped and
/// counted in the record's `dropped_*_count` fields.
///
/// ```
/// use agentcore_telemetry::SpanLimits;
/// let limits = SpanLimits { max_events: 16, ..SpanLimits::default() };
/// assert_eq!(limits.max_attributes, 128);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanLimits {
    /// Attributes per span.
    pub max_attributes: u32,
    /// Events per span.
    pub max_events: u32,
    /// Links per span.
    pub max_links: u32,
    /// Attributes per event.
    pub max_attributes_per_event: u32,
    /// Attributes per link.
    pub max_attributes_per_link: u32,
    /// Maximum length in bytes of a string attribute value (span, event and link
    /// attributes); longer values are truncated at a UTF-8 character boundary, without
    /// allocating. `None` (the OpenTelemetry default) means unlimited.
    pub max_attribute_value_len: Option<usize>,
}

impl Default for SpanLimits {
    fn default() -> Self {
        SpanLimits {
            max_attributes: 128,
            max_events: 128,
            max_links: 128,
            max_attributes_per_event: 128,
            max_attributes_per_link: 128,
            max_attribute_value_len: None,
        }
    }
}

/// A timestamped annotation on a span.
///
/// ```
/// use agentcore_telemetry::{DistributedTracer, KeyValue, SpanKind, TracerConfig};
/// let tracer = DistributedTracer::new(TracerConfig::default());
/// let mut span = tracer.start_span("op", SpanKind::Internal, []);
/// span.add_event("cache_miss", [KeyValue::new("key", "tool:calculator")]);
/// let id = span.span_id();
/// span.end();
/// let event = &tracer.get_span_by_id(id).unwrap().events[0];
/// assert_eq!(event.name, "cache_miss");
/// assert!(event.time_unix_nano > 0);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The event name.
    pub name: Cow<'static, str>,
    /// When it happened, Unix nanoseconds.
    pub time_unix_nano: u64,
    /// Its attributes.
    pub attributes: SmallVec<[KeyValue; INLINE_EVENT_ATTRIBUTES]>,
    /// Attributes dropped by [`SpanLimits::max_attributes_per_event`].
    pub dropped_attributes_count: u32,
}

/// A reference from a span to another span, possibly in another trace.
///
/// ```
/// use agentcore_telemetry::{DistributedTracer, KeyValue, SpanId, SpanKind, TraceId, TracerConfig};
/// let tracer = DistributedTracer::new(TracerConfig::default());
/// let mut span = tracer.start_span("op", SpanKind::Internal, []);
/// let (t, s) = (TraceId::from_external("trace-999"), SpanId::random());
/// span.add_link(t, s, [KeyValue::new("relationship", "caused_by")]);
/// let id = span.span_id();
/// span.end();
/// assert_eq!(tracer.get_span_by_id(id).unwrap().links[0].trace_id, t);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    /// The linked span's trace.
    pub trace_id: TraceId,
    /// The linked span.
    pub span_id: SpanId,
    /// The link's attributes.
    pub attributes: SmallVec<[KeyValue; INLINE_LINK_ATTRIBUTES]>,
    /// Attributes dropped by [`SpanLimits::max_attributes_per_link`].
    pub dropped_attributes_count: u32,
}

/// A finished span, as stored in the span log and returned by the queries (an owned copy).
///
/// ```
/// use agentcore_telemetry::{DistributedTracer, SpanKind, SpanStatus, TracerConfig};
/// let tracer = DistributedTracer::new(TracerConfig::default());
/// let span = tracer.start_span("create_agent", SpanKind::Internal, []);
/// let id = span.span_id();
/// tracer.finish_span(span, SpanStatus::Ok, None);
/// let record = tracer.get_span_by_id(id).unwrap();
/// assert_eq!(record.name, "create_agent");
/// assert_eq!(record.status, SpanStatus::Ok);
/// assert!(record.duration_ms() >= 0.0);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SpanRecord {
    /// The trace.
    pub trace_id: TraceId,
    /// This span.
    pub span_id: SpanId,
    /// The parent span, `None` for a root span.
    pub parent_span_id: Option<SpanId>,
    /// The operation name.
    pub name: Cow<'static, str>,
    /// The span kind.
    pub kind: SpanKind,
    /// The final status.
    pub status: SpanStatus,
    /// The status message (only kept for `Error`; empty otherwise).
    pub status_message: Cow<'static, str>,
    /// Start, Unix nanoseconds (monotonic clock, anchored to the wall clock once per tracer).
    pub start_time_unix_nano: u64,
    /// End, Unix nanoseconds.
    pub end_time_unix_nano: u64,
    /// Attributes (keys unique; setting a key again replaces its value).
    pub attributes: SmallVec<[KeyValue; INLINE_ATTRIBUTES]>,
    /// Events, in the order added.
    pub events: SmallVec<[Event; INLINE_EVENTS]>,
    /// Links, in the order added.
    pub links: SmallVec<[Link; INLINE_LINKS]>,
    /// Attributes dropped by [`SpanLimits::max_attributes`].
    pub dropped_attributes_count: u32,
    /// Events dropped by [`SpanLimits::max_events`].
    pub dropped_events_count: u32,
    /// Links dropped by [`SpanLimits::max_links`].
    pub dropped_links_count: u32,
}

impl SpanRecord {
    /// An empty record (the first one built in a span-log slot; later ones reuse it).
    #[cold]
    fn empty() -> Self {
        SpanRecord {
            trace_id: TraceId::from_external(""),
            span_id: SpanId::random(),
            parent_span_id: None,
            name: Cow::Borrowed(""),
            kind: SpanKind::Internal,
            status: SpanStatus::Unset,
            status_message: Cow::Borrowed(""),
            start_time_unix_nano: 0,
            end_time_unix_nano: 0,
            attributes: SmallVec::new(),
            events: SmallVec::new(),
            links: SmallVec::new(),
            dropped_attributes_count: 0,
            dropped_events_count: 0,
            dropped_links_count: 0,
        }
    }

    /// The duration in milliseconds.
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// let span = tracer.start_span("sleep", SpanKind::Internal, []);
    /// let id = span.span_id();
    /// std::thread::sleep(std::time::Duration::from_millis(2));
    /// span.end();
    /// assert!(tracer.get_span_by_id(id).unwrap().duration_ms() >= 1.5);
    /// ```
    pub fn duration_ms(&self) -> f64 {
        self.duration_ns() as f64 / 1e6
    }

    /// The duration in nanoseconds.
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// let span = tracer.start_span("op", SpanKind::Internal, []);
    /// let id = span.span_id();
    /// span.end();
    /// let r = tracer.get_span_by_id(id).unwrap();
    /// assert_eq!(r.duration_ns(), r.end_time_unix_nano - r.start_time_unix_nano);
    /// ```
    pub fn duration_ns(&self) -> u64 {
        self.end_time_unix_nano
            .saturating_sub(self.start_time_unix_nano)
    }

    /// The value of attribute `key`.
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, KeyValue, SpanKind, TracerConfig, Value};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// let span = tracer.start_span("op", SpanKind::Internal, [KeyValue::new("k", 1)]);
    /// let id = span.span_id();
    /// span.end();
    /// assert_eq!(tracer.get_span_by_id(id).unwrap().attribute("k"), Some(&Value::I64(1)));
    /// ```
    pub fn attribute(&self, key: &str) -> Option<&Value> {
        self.attributes
            .iter()
            .find(|kv| kv.key == key)
            .map(|kv| &kv.value)
    }
}

/// Adds or replaces attribute `kv` within `limit`, counting drops. Always inlined: it runs
/// once per attribute on the hot path.
#[inline(always)]
fn put_attribute<const N: usize>(
    attrs: &mut SmallVec<[KeyValue; N]>,
    dropped: &mut u32,
    limit: u32,
    max_value_len: Option<usize>,
    mut kv: KeyValue,
) where
    [KeyValue; N]: smallvec::Array<Item = KeyValue>,
{
    if let Some(max) = max_value_len {
        truncate_value(&mut kv.value, max);
    }
    if let Some(e) = attrs.iter_mut().find(|e| same_key(&e.key, &kv.key)) {
        e.value = kv.value;
    } else if attrs.len() < limit as usize {
        attrs.push(kv);
    } else {
        *dropped = dropped.saturating_add(1);
    }
}

/// `a == b`, cheaply in the common cases: the same static key (same pointer), or keys
/// that differ in length or first byte, which skip the out-of-line `memcmp` (it showed as
/// ~20 instructions per span with two attributes of equal length in the profile).
#[inline(always)]
fn same_key(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && (a.as_ptr() == b.as_ptr() || (a.as_bytes().first() == b.as_bytes().first() && a == b))
}

/// Truncates a string value to at most `max` bytes, at a character boundary, in place.
fn truncate_value(value: &mut Value, max: usize) {
    if let Value::Str(s) = value {
        if s.len() > max {
            let mut end = max;
            while !s.is_char_boundary(end) {
                end -= 1; // terminates: 0 is a boundary
            }
            match s {
                Cow::Borrowed(b) => *b = b.get(..end).unwrap_or_default(),
                Cow::Owned(o) => o.truncate(end),
            }
        }
    }
}

/// A span that is not current on any thread: it can be moved to another thread or into a
/// future ([`FutureExt::in_span`](super::FutureExt::in_span)). Same recording methods as
/// [`Span`] (which dereferences to it). Dropping it unfinished finishes it with its current
/// status (Unset unless set); dropped while the thread panics, it records the panic as an
/// exception and finishes with `Error`.
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
pub struct DetachedSpan<'t> {
    tracer: &'t DistributedTracer,
    trace_id: TraceId,
    span_id: SpanId,
    parent_span_id: Option<SpanId>,
    sampled: bool,
    /// Whether this span has a frame on the current thread's context stack; only ever true
    /// while wrapped in a (`!Send`) [`Span`], so the frame is removed on the right thread.
    attached: bool,
    start_ticks: u64,
    baggage: Option<Arc<Baggage>>,
    /// The record while sampled and unfinished, in its span-log slot.
    record: Rec<'t>,
}

/// Where a running span's record is.
///
/// Hot path: the record (about 570 bytes) is built once, in place, in the span-log slot
/// claimed when the span starts, and published there when it finishes (the slot stays
/// locked meanwhile, so readers skip it). The span itself stays small (about 100 bytes):
/// moving it, returning it and passing it by value no longer copy the record. Before, the
/// record lived inline in the span and was copied on every move and swapped into the log
/// at finish: about 40% of a span's instructions in the profile, with store-forwarding
/// stalls.
pub(crate) enum Rec<'t> {
    /// Unsampled, or finished.
    None,
    /// Sampled: the record, in its claimed span-log slot.
    Claimed(Claimed<'t, SpanRecord>),
    /// Sampled, but every slot tried was busy (readers, or other open spans): nothing is
    /// recorded; the name and status are kept for the finish (metrics hook, counters,
    /// where it counts as dropped, as a busy push did).
    Lost {
        name: Cow<'static, str>,
        status: SpanStatus,
    },
}

impl Rec<'_> {
    #[inline(always)]
    pub(crate) fn get_mut(&mut self) -> Option<&mut SpanRecord> {
        match self {
            Rec::Claimed(slot) => slot.get_mut(),
            _ => None,
        }
    }

    #[inline(always)]
    fn get(&self) -> Option<&SpanRecord> {
        match self {
            Rec::Claimed(slot) => slot.get(),
            _ => None,
        }
    }

    #[inline(always)]
    fn is_none(&self) -> bool {
        matches!(self, Rec::None)
    }
}

impl<'t> Span<'t> {
    /// Starts a span, current on this thread; unsampled spans get no record but a frame, so
    /// their children are unsampled too.
    ///
    /// Hot path: the record is built in place in its span-log slot (see `Rec`); the span
    /// itself is a small handle, built as one local and returned.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(crate) fn start(
        tracer: &'t DistributedTracer,
        trace_id: TraceId,
        span_id: SpanId,
        parent_span_id: Option<SpanId>,
        baggage: Option<Arc<Baggage>>,
        sampled: bool,
        name: impl Into<Cow<'static, str>>,
        kind: SpanKind,
        attributes: impl IntoIterator<Item = KeyValue>,
    ) -> Span<'t> {
        // The frame is built from the arguments, never through a reference to the span.
        let frame_baggage = baggage.clone();
        let attached = context::push(Frame {
            tracer: tracer.uid(),
            key: span_id.to_u64(),
            trace_id,
            span_id: Some(span_id),
            sampled,
            baggage: frame_baggage,
        });
        // The record is written straight into its span-log slot (see `Rec`).
        let record = if !sampled {
            Rec::None
        } else if let Some(mut slot) = tracer.claim_slot() {
            // Reset the slot's old record field by field (or build the first one): a new
            // record built aside was copied into the slot (three `memcpy`s of ~570 bytes
            // per span in the profile).
            let r = slot.get_or_insert_with(SpanRecord::empty);
            r.trace_id = trace_id;
            r.span_id = span_id;
            r.parent_span_id = parent_span_id;
            r.name = name.into();
            r.kind = kind;
            r.status = SpanStatus::Unset;
            r.status_message = Cow::Borrowed("");
            r.start_time_unix_nano = 0;
            r.end_time_unix_nano = 0;
            // Keep no heap buffer from an older record (memory follows the records in the
            // log, as before); an inline one is just cleared.
            if r.attributes.spilled() {
                r.attributes = SmallVec::new();
            } else {
                r.attributes.clear();
            }
            r.dropped_attributes_count = 0;
            let limits = tracer.limits();
            for kv in attributes {
                put_attribute(
                    &mut r.attributes,
                    &mut r.dropped_attributes_count,
                    limits.max_attributes,
                    limits.max_attribute_value_len,
                    kv,
                );
            }
            if r.events.spilled() {
                r.events = SmallVec::new();
            } else {
                r.events.clear();
            }
            if r.links.spilled() {
                r.links = SmallVec::new();
            } else {
                r.links.clear();
            }
            r.dropped_events_count = 0;
            r.dropped_links_count = 0;
            Rec::Claimed(slot)
        } else {
            Rec::Lost {
                name: name.into(),
                status: SpanStatus::Unset,
            }
        };
        Span {
            inner: DetachedSpan {
                tracer,
                trace_id,
                span_id,
                parent_span_id,
                sampled,
                attached,
                start_ticks: if sampled {
                    tracer.anchor().now_ticks()
                } else {
                    0
                },
                baggage,
                record,
            },
            _not_send: PhantomData,
        }
    }
}

impl<'t> DetachedSpan<'t> {
    #[inline(always)]
    pub(crate) fn frame(&self) -> Frame {
        Frame {
            tracer: self.tracer.uid(),
            key: self.span_id.to_u64(),
            trace_id: self.trace_id,
            span_id: Some(self.span_id),
            sampled: self.sampled,
            baggage: self.baggage.clone(),
        }
    }

    pub(crate) fn tracer(&self) -> &'t DistributedTracer {
        self.tracer
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
    pub fn attach(mut self) -> Span<'t> {
        if !self.attached {
            self.attached = context::push(self.frame());
        }
        Span {
            inner: self,
            _not_send: PhantomData,
        }
    }

    /// The trace id.
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// let _trace = tracer.start_trace(Some("4bf92f3577b34da6a3ce929d0e0e4736"), [("k", "v")]);
    /// let span = tracer.start_span("op", SpanKind::Internal, []);
    /// assert_eq!(span.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
    /// ```
    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }

    /// The span id.
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// let span = tracer.start_span("op", SpanKind::Internal, []);
    /// assert_eq!(span.span_id().to_string().len(), 16);
    /// ```
    pub fn span_id(&self) -> SpanId {
        self.span_id
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
        if self.sampled {
            self.parent_span_id
        } else {
            None
        }
    }

    /// Whether the span is sampled and still records (false once finished).
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig { sample_ratio: 0.0, ..TracerConfig::default() });
    /// assert!(!tracer.start_span("op", SpanKind::Internal, []).is_recording());
    /// ```
    pub fn is_recording(&self) -> bool {
        matches!(self.record, Rec::Claimed(_))
    }

    /// The span's context (for propagation): its trace and span id, sampled flag and the
    /// baggage it inherited.
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
        TraceContext::new(self.trace_id, Some(self.span_id), self.sampled)
            .with_baggage(self.baggage.clone())
    }

    /// Sets (or replaces) an attribute. Beyond [`SpanLimits::max_attributes`] new keys are
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
    #[inline]
    pub fn set_attribute(&mut self, key: impl Into<Cow<'static, str>>, value: impl Into<Value>) {
        if let Some(r) = self.record.get_mut() {
            let limits = self.tracer.limits();
            put_attribute(
                &mut r.attributes,
                &mut r.dropped_attributes_count,
                limits.max_attributes,
                limits.max_attribute_value_len,
                KeyValue::new(key, value),
            );
        }
    }

    /// Adds a timestamped event. Beyond [`SpanLimits::max_events`] events are dropped and
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
    #[inline]
    pub fn add_event(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        attributes: impl IntoIterator<Item = KeyValue>,
    ) {
        let Some(r) = self.record.get_mut() else {
            return;
        };
        let limits = self.tracer.limits();
        if r.events.len() >= limits.max_events as usize {
            r.dropped_events_count = r.dropped_events_count.saturating_add(1);
            return;
        }
        let name = name.into();
        let time_unix_nano = self.tracer.now_unix_nano();
        // Write the new event's fields straight into the vector's spare slot, then fill its
        // attributes in place: `push(Event { .. })` built the event aside and copied its
        // 144 bytes with an out-of-line `memcpy` whose wide loads hit the narrow stores
        // that had just built it (a store-forwarding stall: ~10% of a span with one event
        // in a `perf record -e cpu-clock` profile).
        r.events.reserve(1);
        let len = r.events.len();
        // SAFETY: `reserve(1)` guarantees room for an element at index `len` (inline or on
        // the heap), so `p` is valid for writes and properly aligned. Every field is
        // initialised through raw pointers (no reference to the uninitialised element is
        // made) before `set_len` makes the element visible, and nothing in between can
        // panic or read it. The returned borrow is tied to the borrow of `r`.
        let event = unsafe {
            let p = r.events.as_mut_ptr().add(len);
            std::ptr::addr_of_mut!((*p).name).write(name);
            std::ptr::addr_of_mut!((*p).time_unix_nano).write(time_unix_nano);
            std::ptr::addr_of_mut!((*p).attributes).write(SmallVec::new());
            std::ptr::addr_of_mut!((*p).dropped_attributes_count).write(0);
            r.events.set_len(len + 1);
            &mut *p
        };
        for kv in attributes {
            put_attribute(
                &mut event.attributes,
                &mut event.dropped_attributes_count,
                limits.max_attributes_per_event,
                limits.max_attribute_value_len,
                kv,
            );
        }
    }

    /// Adds a link to span `span_id` of trace `trace_id`. Beyond [`SpanLimits::max_links`]
    /// links are dropped and counted. No-op on an unsampled span.
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, SpanId, SpanKind, TraceId, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// let mut span = tracer.start_span("fan_in", SpanKind::Consumer, []);
    /// span.add_link(TraceId::random(), SpanId::random(), []);
    /// let id = span.span_id();
    /// span.end();
    /// assert_eq!(tracer.get_span_by_id(id).unwrap().links.len(), 1);
    /// ```
    pub fn add_link(
        &mut self,
        trace_id: TraceId,
        span_id: SpanId,
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
        let mut link = Link {
            trace_id,
            span_id,
            attributes: SmallVec::new(),
            dropped_attributes_count: 0,
        };
        for kv in attributes {
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

    /// Records an error as an `exception` event with `exception.type` (the Rust type name
    /// of `E`) and `exception.message` (its `Display`), as OpenTelemetry does. The status is
    /// not changed: finish with [`SpanStatus::Error`] for that.
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
    pub fn record_exception<E: fmt::Display + ?Sized>(&mut self, error: &E) {
        if !self.is_recording() {
            return;
        }
        self.add_event(
            "exception",
            [
                KeyValue::new("exception.type", std::any::type_name::<E>()),
                KeyValue::new("exception.message", error.to_string()),
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
        if let Rec::Lost { status: s, .. } = &mut self.record {
            if *s != SpanStatus::Ok && status != SpanStatus::Unset {
                *s = status;
            }
            return;
        }
        let Some(r) = self.record.get_mut() else {
            return;
        };
        if r.status == SpanStatus::Ok || status == SpanStatus::Unset {
            return;
        }
        r.status = status;
        r.status_message = if status == SpanStatus::Error {
            message.into()
        } else {
            Cow::Borrowed("")
        };
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
            Rec::Lost { status, .. } => *status,
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
    fn end_consumed(self) {
        let mut this = ManuallyDrop::new(self);
        this.end_now();
        // `end_now` left no frame and no record (`Rec::None` owns nothing), so the baggage
        // is the only field with anything to drop.
        drop(this.baggage.take());
    }

    /// Records a panic in progress: an `exception` event and `Error` status.
    pub(crate) fn record_panic(&mut self) {
        if !self.record.is_none() {
            self.add_event(
                "exception",
                [
                    KeyValue::new("exception.type", "panic"),
                    KeyValue::new("exception.message", "the traced operation panicked"),
                ],
            );
            self.set_status(SpanStatus::Error, "panic");
        }
    }

    /// Removes the span's frame (if any) and hands its record (if sampled) to the tracer.
    /// Idempotent.
    #[inline]
    pub(crate) fn end_now(&mut self) {
        if self.attached {
            self.attached = false;
            context::remove(self.tracer.uid(), self.span_id.to_u64());
        }
        if !self.record.is_none() {
            self.tracer
                .record_finished(&mut self.record, self.start_ticks);
        }
    }

    fn detach_frame(&mut self) {
        if self.attached {
            self.attached = false;
            context::remove(self.tracer.uid(), self.span_id.to_u64());
        }
    }
}

impl Drop for DetachedSpan<'_> {
    fn drop(&mut self) {
        if !self.record.is_none() && std::thread::panicking() {
            self.record_panic();
        }
        self.end_now();
    }
}

impl fmt::Debug for DetachedSpan<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Span")
            .field("trace_id", &self.trace_id)
            .field("span_id", &self.span_id)
            .field("sampled", &self.sampled)
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
pub struct Span<'t> {
    inner: DetachedSpan<'t>,
    _not_send: PhantomData<*const ()>,
}

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
        let mut inner = self.inner;
        inner.detach_frame();
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
    pub fn finish(mut self, status: SpanStatus) {
        self.inner.set_status(status, "");
        self.inner.end_consumed();
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
        self.inner.set_status(status, message);
        self.inner.end_consumed();
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
        self.inner.end_consumed();
    }
}

impl<'t> Deref for Span<'t> {
    type Target = DetachedSpan<'t>;
    fn deref(&self) -> &DetachedSpan<'t> {
        &self.inner
    }
}

impl<'t> DerefMut for Span<'t> {
    fn deref_mut(&mut self) -> &mut DetachedSpan<'t> {
        &mut self.inner
    }
}

/// Spans that [`DistributedTracer::finish_span`] accepts ([`Span`] and [`DetachedSpan`]).
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
    /// Sets the status (and message) and finishes, in place.
    #[doc(hidden)]
    fn finish_in_place(&mut self, status: SpanStatus, message: Option<&str>);
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Span<'_> {}
    impl Sealed for super::DetachedSpan<'_> {}
}

impl FinishSpan for DetachedSpan<'_> {
    #[inline]
    fn finish_in_place(&mut self, status: SpanStatus, message: Option<&str>) {
        match message {
            Some(m) if status == SpanStatus::Error && self.is_recording() => {
                self.set_status(status, m.to_owned())
            }
            _ => self.set_status(status, ""),
        }
        self.end_now();
    }
}

impl FinishSpan for Span<'_> {
    #[inline]
    fn finish_in_place(&mut self, status: SpanStatus, message: Option<&str>) {
        self.inner.finish_in_place(status, message);
    }
}

impl<'t> From<Span<'t>> for DetachedSpan<'t> {
    fn from(span: Span<'t>) -> Self {
        span.detach()
    }
}

impl fmt::Debug for Span<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}
