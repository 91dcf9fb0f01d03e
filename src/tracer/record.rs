//! The span data model: what a span records ([`SpanRecord`] with its [`Event`]s and
//! [`Link`]s), its [`SpanKind`] and [`SpanStatus`], and how many items are stored inline.
//!
//! These are plain values, shaped after OTLP's `Span`: the span log stores one `SpanRecord`
//! per finished span, queries return owned copies, and exporters read them field by field.

use super::attribute::{KeyValue, Value};
use super::context::Carried;
use super::id::{SpanId, TraceId};
use crate::propagation::TraceState;
use smallvec::SmallVec;
use std::borrow::Cow;
use std::sync::Arc;

/// Attributes a span stores inline, without allocating (more spill to the heap, up to
/// [`SpanLimits::max_attributes`](super::SpanLimits::max_attributes)).
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
    // `core.rs::reset_events` finishes events in place, dropping `name` and emptying
    // `attributes` only: a new field that owns memory must be added there too.
    /// The event name.
    pub name: Cow<'static, str>,
    /// When it happened, Unix nanoseconds.
    pub time_unix_nano: u64,
    /// Its attributes.
    pub attributes: SmallVec<[KeyValue; INLINE_EVENT_ATTRIBUTES]>,
    /// Attributes dropped by [`SpanLimits::max_attributes_per_event`](super::SpanLimits::max_attributes_per_event).
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
    /// Attributes dropped by [`SpanLimits::max_attributes_per_link`](super::SpanLimits::max_attributes_per_link).
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
    /// Start, Unix nanoseconds (monotonic clock, anchored to the wall clock every 100 ms).
    pub start_time_unix_nano: u64,
    /// End, Unix nanoseconds.
    pub end_time_unix_nano: u64,
    /// Attributes (keys unique; setting a key again replaces its value).
    pub attributes: SmallVec<[KeyValue; INLINE_ATTRIBUTES]>,
    /// Events, in the order added.
    pub events: SmallVec<[Event; INLINE_EVENTS]>,
    /// Links, in the order added.
    pub links: SmallVec<[Link; INLINE_LINKS]>,
    /// Attributes dropped by [`SpanLimits::max_attributes`](super::SpanLimits::max_attributes).
    pub dropped_attributes_count: u32,
    /// Events dropped by [`SpanLimits::max_events`](super::SpanLimits::max_events).
    pub dropped_events_count: u32,
    /// Links dropped by [`SpanLimits::max_links`](super::SpanLimits::max_links).
    pub dropped_links_count: u32,
    /// Whether the parent context came from another process (extracted from a
    /// `traceparent` header, or marked with [`TraceContext::with_remote`](super::TraceContext::with_remote));
    /// false for a local parent and for a root span. Exported as OTLP's `IS_REMOTE` flag.
    pub parent_is_remote: bool,
    /// What the span's context carries (baggage, `tracestate`, the random-trace-id flag),
    /// shared with its trace's other spans, not copied; `None` for a trace this tracer
    /// started with a random id and nothing carried (see `tracer::context::Carried`).
    pub(crate) carried: Option<Arc<Carried>>,
    /// Whether the record may hold heap memory that its slot's reset must free (see
    /// [`HeapMark`]); not part of the record's value.
    pub(crate) heap: HeapMark,
}

/// Whether a span-log record may hold heap memory below its three vectors' own buffers: an
/// owned name or status message, an owned key or string value in an attribute (the span's,
/// an event's or a link's), an owned event name, an event's or a link's spilled attribute
/// vector.
///
/// Why: a span's start empties its slot's old record for the new one, and dropping its items
/// one by one (a check of every key, value and name) was about 50 of a sampled span's 607
/// instructions under callgrind (607 -> 555 without; issue 16), though a span's strings are nearly always
/// `'static`. When the old record's mark is clear, the start forgets its items instead of
/// dropping them (`core::TracerCore::open`).
///
/// The invariant: a record in a span-log slot whose mark is clear holds none of the memory
/// above. The start clears the mark and notes its name and attributes; a change through
/// `Rec::get_mut` sets the mark, whatever it adds; only the hot paths that note exactly what
/// they add (`set_attribute`, `add_event`, `set_status`) reach the record without setting
/// it (`Rec::get_mut_noting`, or the slot itself). A new slot's first record has the mark
/// set; outside the log (the queries' copies) the mark means nothing. A missed note would
/// leak the memory it missed, never free it twice or early: forgetting an item is safe
/// (`tests/tracer_record_memory.rs` fills a small log with every kind of owned content and
/// checks that the live heap does not grow; each note left out fails it).
#[derive(Clone, Copy, Debug)]
pub(crate) struct HeapMark(bool);

impl HeapMark {
    /// The record may hold heap memory: its reset drops every item.
    pub(crate) const SET: HeapMark = HeapMark(true);
    /// The record holds none (an emptied record, before anything is added).
    pub(crate) const CLEAR: HeapMark = HeapMark(false);

    /// Whether the record may hold heap memory.
    #[inline(always)]
    pub(crate) fn is_set(self) -> bool {
        self.0
    }

    /// Sets the mark.
    #[inline(always)]
    pub(crate) fn set(&mut self) {
        self.0 = true;
    }

    /// Notes a string about to be stored (folded away for a `'static` literal). It takes the
    /// `Cow`, not a `&str`: whether it is owned is the question.
    #[inline(always)]
    #[allow(clippy::ptr_arg)]
    pub(crate) fn note_str(&mut self, s: &Cow<'static, str>) {
        self.0 |= matches!(s, Cow::Owned(_));
    }

    /// Notes an attribute about to be stored (folded away for a literal key and a literal
    /// or non-string value).
    #[inline(always)]
    pub(crate) fn note_attribute(&mut self, kv: &KeyValue) {
        self.note_str(&kv.key);
        if let Value::Str(s) = &kv.value {
            self.note_str(s);
        }
    }
}

/// Not part of a record's value: two records that differ only in whether their strings are
/// owned are equal, as their `Cow`s are.
impl PartialEq for HeapMark {
    fn eq(&self, _: &HeapMark) -> bool {
        true
    }
}

impl SpanRecord {
    /// The W3C `tracestate` of the span's context, inherited from its trace's remote parent
    /// (empty when there is none); exported with the span.
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, SpanKind, TraceContext, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// let remote = TraceContext::extract(|name| match name {
    ///     "traceparent" => Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    ///     "tracestate" => Some("congo=t61rcWkgMzE"),
    ///     _ => None,
    /// })
    /// .unwrap()
    /// .unwrap();
    /// let span = tracer.start_span_with_parent("handle", SpanKind::Server, [], Some(&remote));
    /// let id = span.span_id();
    /// span.end();
    /// let record = tracer.get_span_by_id(id).unwrap();
    /// assert_eq!(record.trace_state().to_string(), "congo=t61rcWkgMzE");
    /// assert!(record.parent_is_remote);
    /// assert_eq!(record.trace_flags(), 0x01);
    /// ```
    pub fn trace_state(&self) -> &TraceState {
        static EMPTY: TraceState = TraceState::new();
        self.carried.as_deref().map_or(&EMPTY, |c| &c.trace_state)
    }

    /// The W3C trace flags of the span's context: sampled (only sampled spans have records)
    /// and, Level 2, the random-trace-id flag (`0x02`) when its trace id is known to be
    /// random.
    pub fn trace_flags(&self) -> u8 {
        let random = self.carried.as_deref().is_none_or(|c| c.random);
        0x01 | (u8::from(random) << 1)
    }

    /// An empty record (the first one built in a span-log slot; later ones reuse it).
    #[cold]
    pub(crate) fn empty() -> Self {
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
            parent_is_remote: false,
            carried: None,
            heap: HeapMark::SET,
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
