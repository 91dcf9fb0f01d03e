//! Trace context ([`TraceContext`]: trace id, span id, trace flags, baggage and `tracestate`)
//! as a plain value, and its map form for cross-service calls ([`TraceContext::to_map`],
//! [`TraceContext::from_map`]). Which context is *current* is `current.rs`'s job.
//!
//! What a context carries besides its ids and sampled flag ([`Carried`]: baggage, `tracestate`,
//! the W3C Level 2 random-trace-id flag) sits behind one `Arc` that every span of the trace in
//! this process shares, so starting a span copies a pointer. A trace this tracer started with
//! a random id and that carries nothing else has no `Arc` at all (`None`).

use super::id::{SpanId, TraceId};
use crate::propagation::baggage;
use crate::propagation::{BaggageProperty, PropagationError, TraceState};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// Baggage: key-value pairs propagated with a trace and inherited by child spans.
///
/// ```
/// use agentcore_telemetry::tracer::Baggage;
/// let mut b = Baggage::new();
/// b.insert("tenant".into(), "acme".into());
/// ```
pub type Baggage = BTreeMap<String, String>;

/// The context of a trace at one point: trace id, the active span id (if any), the trace
/// flags (sampled, and the W3C Level 2 random-trace-id flag), the baggage and the vendors'
/// `tracestate`.
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
/// // Read back on the receiver side: the same context, marked remote.
/// assert_eq!(TraceContext::from_map(&map), Ok(cx.with_remote(true)));
/// ```
#[derive(Debug, Clone)]
pub struct TraceContext {
    trace_id: TraceId,
    span_id: Option<SpanId>,
    sampled: bool,
    /// `None`: a random trace id this tracer generated, nothing carried (see [`Carried`]).
    carried: Option<Arc<Carried>>,
    /// Came from another process (see [`is_remote`](Self::is_remote)).
    remote: bool,
}

/// Contexts are equal when they say the same: same ids, flags, baggage and `tracestate`,
/// however their `Carried` part is shared.
impl PartialEq for TraceContext {
    fn eq(&self, other: &Self) -> bool {
        self.trace_id == other.trace_id
            && self.span_id == other.span_id
            && self.sampled == other.sampled
            && self.remote == other.remote
            && self.carried_or_root() == other.carried_or_root()
    }
}

impl Eq for TraceContext {}

/// What a context carries besides its ids and sampled flag, shared by every span of its trace
/// in this process (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Carried {
    pub(crate) baggage: Baggage,
    /// The W3C properties (`;ttl=30;private`) of the baggage entries that arrived with some,
    /// by key: kept from `extract` to `inject` (OpenTelemetry's baggage "metadata"). Only keys
    /// of `baggage`; setting an entry's value drops its properties.
    pub(crate) baggage_properties: BTreeMap<String, Vec<BaggageProperty>>,
    pub(crate) trace_state: TraceState,
    /// The W3C Level 2 random-trace-id flag (trace-flags bit 1).
    pub(crate) random: bool,
}

impl Carried {
    /// What a missing `Carried` (`None`) stands for: a trace whose id this tracer generated at
    /// random ([`TraceId::random`]), with no baggage and no `tracestate`.
    pub(crate) const RANDOM_ROOT: Carried = Carried {
        baggage: Baggage::new(),
        baggage_properties: BTreeMap::new(),
        trace_state: TraceState::new(),
        random: true,
    };

    /// The `Carried` of a new trace: `None` when it stands for [`Carried::RANDOM_ROOT`].
    pub(crate) fn of_new_trace(mut baggage: Baggage, random: bool) -> Option<Arc<Carried>> {
        // No empty key (see `TraceContext::set_baggage`).
        baggage.remove("");
        (!baggage.is_empty() || !random).then(|| {
            Arc::new(Carried {
                baggage,
                random,
                ..Carried::RANDOM_ROOT
            })
        })
    }

    /// What a new trace started under an invalid context (a no-op span's) keeps of it: the
    /// baggage and its properties, not the `tracestate` (another trace's vendors' state);
    /// the trace id is random.
    pub(crate) fn for_new_trace(&self) -> Option<Arc<Carried>> {
        (!self.baggage.is_empty()).then(|| {
            Arc::new(Carried {
                baggage: self.baggage.clone(),
                baggage_properties: self.baggage_properties.clone(),
                ..Carried::RANDOM_ROOT
            })
        })
    }
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
/// The key of the W3C Level 2 random-trace-id flag in [`TraceContext::to_map`] (`"true"`;
/// written only when set, so the map of a context without it has the specification's keys).
///
/// ```
/// use agentcore_telemetry::{tracer::KEY_RANDOM_TRACE_ID, DistributedTracer, TracerConfig};
/// let tracer = DistributedTracer::new(TracerConfig::default());
/// assert_eq!(tracer.start_trace(None, []).to_map()[KEY_RANDOM_TRACE_ID], "true");
/// ```
pub const KEY_RANDOM_TRACE_ID: &str = "random_trace_id";
/// The key of the W3C `tracestate` in [`TraceContext::to_map`] (the header value; written only
/// when the context has one).
///
/// ```
/// use agentcore_telemetry::{tracer::KEY_TRACE_STATE, TraceContext, TraceId};
/// let mut cx = TraceContext::new(TraceId::random(), None, true);
/// cx.trace_state_mut().insert("congo", "t61rcWkgMzE")?;
/// assert_eq!(cx.to_map()[KEY_TRACE_STATE], "congo=t61rcWkgMzE");
/// # Ok::<(), agentcore_telemetry::propagation::PropagationError>(())
/// ```
pub const KEY_TRACE_STATE: &str = "tracestate";
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
/// The prefix of baggage properties in [`TraceContext::to_map`]:
/// `baggage_properties.<key>`, the W3C properties of the entry `baggage.<key>` as the
/// `baggage` header carries them after the value (`ttl=30;private`; written only for an entry
/// that has some, see [`TraceContext::baggage_properties`]).
///
/// ```
/// use agentcore_telemetry::{tracer::BAGGAGE_PROPERTIES_PREFIX, TraceContext};
/// let cx = TraceContext::extract(|name| match name {
///     "traceparent" => Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
///     "baggage" => Some("userId=alice; ttl = 30 ;private"),
///     _ => None,
/// })
/// .unwrap()
/// .unwrap();
/// let map = cx.to_map();
/// assert_eq!(map[&format!("{BAGGAGE_PROPERTIES_PREFIX}userId")], "ttl=30;private");
/// assert_eq!(TraceContext::from_map(&map), Ok(cx));
/// ```
pub const BAGGAGE_PROPERTIES_PREFIX: &str = "baggage_properties.";
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
    /// A context without baggage or `tracestate`, and without the random-trace-id flag: the
    /// trace id is the caller's, and this crate cannot know how it was made (set the flag with
    /// [`set_random_trace_id`](Self::set_random_trace_id) when it is random). An all-zero span
    /// id (what a no-op span reports without a parent span) is taken as none.
    ///
    /// ```
    /// use agentcore_telemetry::{SpanId, TraceContext, TraceId};
    /// let cx = TraceContext::new(TraceId::random(), SpanId::from_u64(1), false);
    /// assert!(!cx.is_sampled());
    /// assert!(!cx.is_random_trace_id());
    /// assert_eq!(cx.span_id(), SpanId::from_u64(1));
    /// ```
    pub fn new(trace_id: TraceId, span_id: Option<SpanId>, sampled: bool) -> Self {
        TraceContext {
            trace_id,
            // The all-zero span id (a no-op span's without a parent span, see
            // `DistributedTracer::is_sdk_disabled`) names no span: W3C's invalid parent id.
            span_id: span_id.filter(|s| *s != SpanId::INVALID),
            sampled,
            carried: Some(Arc::new(Carried {
                random: false,
                ..Carried::RANDOM_ROOT
            })),
            remote: false,
        }
    }

    /// A context from its parts, sharing `carried` (no allocation).
    pub(crate) fn from_parts(
        trace_id: TraceId,
        span_id: Option<SpanId>,
        sampled: bool,
        carried: Option<Arc<Carried>>,
    ) -> Self {
        TraceContext {
            trace_id,
            span_id,
            sampled,
            carried,
            remote: false,
        }
    }

    fn carried_or_root(&self) -> &Carried {
        static RANDOM_ROOT: Carried = Carried::RANDOM_ROOT;
        self.carried.as_deref().unwrap_or(&RANDOM_ROOT)
    }

    /// The carried part, for writing (copy-on-write if shared).
    fn carried_mut(&mut self) -> &mut Carried {
        Arc::make_mut(
            self.carried
                .get_or_insert_with(|| Arc::new(Carried::RANDOM_ROOT)),
        )
    }

    /// Whether the context came from another process: true for one read by
    /// [`extract`](Self::extract) (a `traceparent` header) or by [`from_map`](Self::from_map)
    /// (the map form of a cross-service call), false for [`new`](Self::new) and for a span's
    /// own context. A span whose parent is remote is exported with OTLP's
    /// `IS_REMOTE` flag ([`SpanRecord::parent_is_remote`](super::SpanRecord::parent_is_remote)).
    ///
    /// ```
    /// use agentcore_telemetry::{SpanId, TraceContext, TraceId};
    /// let cx = TraceContext::new(TraceId::random(), SpanId::from_u64(7), true);
    /// assert!(!cx.is_remote());
    /// assert!(cx.with_remote(true).is_remote());
    /// ```
    pub fn is_remote(&self) -> bool {
        self.remote
    }

    /// The context marked as coming from another process (or not), for a context received
    /// by other means than [`extract`](Self::extract) and [`from_map`](Self::from_map) (which
    /// mark it remote), or to treat a map written in this process as local.
    ///
    /// ```
    /// use agentcore_telemetry::TraceContext;
    /// let cx = TraceContext::from_map([("trace_id", "request-123"), ("span_id", "7")]).unwrap();
    /// assert!(cx.is_remote());
    /// assert!(!cx.with_remote(false).is_remote());
    /// ```
    pub fn with_remote(mut self, remote: bool) -> Self {
        self.remote = remote;
        self
    }

    /// Whether the context names a trace: its trace id is not the all-zero invalid id. Every
    /// context a tracer whose SDK is enabled gives out is valid. The invalid ones are those of
    /// a tracer whose SDK is disabled (`OTEL_SDK_DISABLED=true`, see
    /// [`DistributedTracer::is_sdk_disabled`](crate::DistributedTracer::is_sdk_disabled)): a
    /// no-op span's with no parent context (OpenTelemetry's invalid `SpanContext`: both ids
    /// all-zero, [`span_id`](Self::span_id) `None`, not sampled) and a trace started without
    /// an id ([`start_trace(None, ..)`](crate::DistributedTracer::start_trace)), which still
    /// carry baggage. For an invalid context [`inject`](Self::inject) writes no `traceparent`
    /// and no `tracestate`, only `baggage`; [`to_map`](Self::to_map) writes its all-zero trace
    /// id, which [`from_map`](Self::from_map) refuses as it refuses W3C's invalid id. A span
    /// started under one by a tracer whose SDK is enabled (attached, or as the explicit
    /// parent) starts a new trace that keeps its baggage.
    ///
    /// (OpenTelemetry's `IsValid` also asks for a non-zero span id; here a valid context may
    /// have no span: a trace root context from `start_trace`, whose `inject` writes no
    /// `traceparent` either.)
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, SpanKind, TraceContext, TraceId, TracerConfig};
    /// assert!(TraceContext::new(TraceId::random(), None, true).is_valid());
    /// // A tracer whose SDK is disabled: a no-op span with no parent has an invalid context.
    /// std::env::set_var("OTEL_SDK_DISABLED", "true");
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// std::env::remove_var("OTEL_SDK_DISABLED");
    /// let mut cx = tracer.start_span("op", SpanKind::Internal, []).context();
    /// assert!(!cx.is_valid());
    /// assert_eq!((cx.span_id(), cx.is_sampled()), (None, false));
    /// cx.set_baggage("tenant", "acme");
    /// let mut headers = Vec::new();
    /// cx.inject(|name, value| headers.push((name, value)));
    /// assert_eq!(headers, [("baggage", "tenant=acme".to_string())]);
    /// ```
    pub fn is_valid(&self) -> bool {
        self.trace_id != TraceId::INVALID
    }

    /// The trace id (all-zero for an [invalid](Self::is_valid) context).
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

    /// The W3C Trace Context Level 2 random-trace-id flag (trace-flags bit 1): at least the
    /// right-most 7 bytes of the trace id are random. Set on traces this tracer starts with
    /// [`TraceId::random`], taken from `traceparent` by [`extract`](Self::extract), written by
    /// [`inject`](Self::inject), and inherited by every span of the trace.
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// assert!(tracer.start_trace(None, []).context().is_random_trace_id());
    /// // An id the caller chose is not known to be random.
    /// assert!(!tracer.start_trace(Some("request-123"), []).context().is_random_trace_id());
    /// ```
    pub fn is_random_trace_id(&self) -> bool {
        self.carried_or_root().random
    }

    /// Sets or clears the random-trace-id flag. The specification: "If that flag is set, at
    /// least the right-most 7 bytes of the trace-id MUST be selected randomly (or
    /// pseudo-randomly) with uniform distribution over the interval [0..2^56-1]."
    ///
    /// ```
    /// use agentcore_telemetry::{TraceContext, TraceId};
    /// let mut cx = TraceContext::new(TraceId::random(), None, true);
    /// cx.set_random_trace_id(true);
    /// assert_eq!(cx.trace_flags(), 0x03);
    /// ```
    pub fn set_random_trace_id(&mut self, random: bool) {
        if self.is_random_trace_id() != random {
            self.carried_mut().random = random;
        }
    }

    /// The W3C trace-flags byte: bit 0 sampled, bit 1 random-trace-id; the other bits are
    /// reserved and zero.
    ///
    /// ```
    /// use agentcore_telemetry::{TraceContext, TraceId};
    /// assert_eq!(TraceContext::new(TraceId::random(), None, true).trace_flags(), 0x01);
    /// ```
    pub fn trace_flags(&self) -> u8 {
        u8::from(self.sampled) | (u8::from(self.is_random_trace_id()) << 1)
    }

    /// The vendors' W3C `tracestate` this context carries (empty when none). It travels with
    /// the trace: every span started in this context inherits it, and
    /// [`inject`](Self::inject) forwards it.
    ///
    /// ```
    /// use agentcore_telemetry::TraceContext;
    /// let cx = TraceContext::extract(|name| match name {
    ///     "traceparent" => Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    ///     "tracestate" => Some("congo=t61rcWkgMzE"),
    ///     _ => None,
    /// })
    /// .unwrap()
    /// .unwrap();
    /// assert_eq!(cx.trace_state().get("congo"), Some("t61rcWkgMzE"));
    /// ```
    pub fn trace_state(&self) -> &TraceState {
        &self.carried_or_root().trace_state
    }

    /// The `tracestate`, for adding this participant's entry (copy-on-write if shared).
    /// [`TraceState::insert`] puts a new or modified key first and never duplicates a key, as
    /// the specification requires ("Modified keys MUST be moved to the beginning (left) of the
    /// list"; "Adding a key/value pair MUST NOT result in the same key being present multiple
    /// times").
    ///
    /// Change it on a context whose `traceparent` this participant also changes, the context
    /// of one of its spans ([`context`](crate::DetachedSpan::context)), never on an extracted
    /// context forwarded as it came: "If the value of the traceparent field wasn't changed
    /// before propagation, tracestate MUST NOT be modified as well" (W3C Trace Context,
    /// "Mutating the tracestate Field"). Nothing here can tell the two apart.
    ///
    /// ```
    /// use agentcore_telemetry::{TraceContext, TraceId};
    /// let mut cx = TraceContext::new(TraceId::random(), None, true);
    /// cx.trace_state_mut().insert("rojo", "00f067aa0ba902b7")?;
    /// assert_eq!(cx.trace_state().to_string(), "rojo=00f067aa0ba902b7");
    /// # Ok::<(), agentcore_telemetry::propagation::PropagationError>(())
    /// ```
    pub fn trace_state_mut(&mut self) -> &mut TraceState {
        &mut self.carried_mut().trace_state
    }

    /// Sets a baggage entry (copy-on-write if the baggage is shared). Returns false, and
    /// stores nothing, for an empty key: no baggage format has one (a W3C key is a token
    /// of at least one character, and [`to_map`](Self::to_map)'s bare `baggage.` would not
    /// read back). Other keys are kept as given; [`inject`](Self::inject) drops, and
    /// counts, those that are not W3C tokens.
    ///
    /// ```
    /// use agentcore_telemetry::{TraceContext, TraceId};
    /// let mut cx = TraceContext::new(TraceId::random(), None, true);
    /// assert!(cx.set_baggage("tenant", "acme"));
    /// assert_eq!(cx.get_baggage("tenant"), Some("acme"));
    /// assert!(!cx.set_baggage("", "lost"));
    /// assert_eq!(cx.baggage().count(), 1);
    /// ```
    pub fn set_baggage(&mut self, key: impl Into<String>, value: impl Into<String>) -> bool {
        let key = key.into();
        if key.is_empty() {
            return false;
        }
        let carried = self.carried_mut();
        // A new value is a new entry: the properties that came with the old one go.
        carried.baggage_properties.remove(&key);
        carried.baggage.insert(key, value.into());
        true
    }

    /// Sets the W3C Baggage properties of the baggage entry `key` (OpenTelemetry's baggage
    /// "metadata"), replacing those it had; none removes them. False, and nothing stored, when
    /// the context has no entry `key`: set its value first ([`set_baggage`](Self::set_baggage),
    /// which drops an entry's properties).
    ///
    /// ```
    /// use agentcore_telemetry::propagation::BaggageProperty;
    /// use agentcore_telemetry::{SpanId, TraceContext, TraceId};
    /// let mut cx = TraceContext::new(TraceId::random(), SpanId::from_u64(7), true);
    /// assert!(!cx.set_baggage_properties("tenant", [BaggageProperty::new("private", None)?]));
    /// cx.set_baggage("tenant", "acme");
    /// assert!(cx.set_baggage_properties("tenant", [BaggageProperty::new("private", None)?]));
    /// let mut headers = Vec::new();
    /// cx.inject(|name, value| headers.push((name, value)));
    /// assert_eq!(headers[1], ("baggage", "tenant=acme;private".to_string()));
    /// # Ok::<(), agentcore_telemetry::propagation::PropagationError>(())
    /// ```
    pub fn set_baggage_properties(
        &mut self,
        key: &str,
        properties: impl IntoIterator<Item = BaggageProperty>,
    ) -> bool {
        if self.get_baggage(key).is_none() {
            return false;
        }
        let properties: Vec<BaggageProperty> = properties.into_iter().collect();
        if properties.is_empty() && self.baggage_properties(key).is_empty() {
            return true;
        }
        let carried = self.carried_mut();
        if properties.is_empty() {
            carried.baggage_properties.remove(key);
        } else {
            carried
                .baggage_properties
                .insert(key.to_owned(), properties);
        }
        true
    }

    /// The W3C Baggage properties of a baggage entry (`;ttl=30;private`), as
    /// [`extract`](Self::extract) received them or
    /// [`set_baggage_properties`](Self::set_baggage_properties) set them; empty when it has
    /// none, or when its value was set afterwards ([`set_baggage`](Self::set_baggage)). They travel with the entry:
    /// every span started in this context inherits them and [`inject`](Self::inject) appends
    /// them to it, as OpenTelemetry's baggage metadata ("On `inject`, the propagator should
    /// append the metadata per the W3C specification format").
    ///
    /// ```
    /// use agentcore_telemetry::TraceContext;
    /// let cx = TraceContext::extract(|name| match name {
    ///     "traceparent" => Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    ///     "baggage" => Some("userId=alice;ttl=30;private"),
    ///     _ => None,
    /// })
    /// .unwrap()
    /// .unwrap();
    /// let props = cx.baggage_properties("userId");
    /// assert_eq!((props[0].key(), props[0].value()), ("ttl", Some("30")));
    /// assert_eq!((props[1].key(), props[1].value()), ("private", None));
    /// assert!(cx.baggage_properties("other").is_empty());
    /// ```
    pub fn baggage_properties(&self, key: &str) -> &[BaggageProperty] {
        self.carried_or_root()
            .baggage_properties
            .get(key)
            .map_or(&[], Vec::as_slice)
    }

    /// A baggage entry.
    ///
    /// ```
    /// use agentcore_telemetry::{TraceContext, TraceId};
    /// assert_eq!(TraceContext::new(TraceId::random(), None, true).get_baggage("x"), None);
    /// ```
    pub fn get_baggage(&self, key: &str) -> Option<&str> {
        self.carried_or_root().baggage.get(key).map(String::as_str)
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
        self.carried_or_root()
            .baggage
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The shared carried part, for spans and frames to inherit.
    pub(crate) fn carried(&self) -> Option<&Arc<Carried>> {
        self.carried.as_ref()
    }

    /// Serializes the context (the spec's `to_dict`): [`KEY_TRACE_ID`], [`KEY_SPAN_ID`] (if
    /// any), [`KEY_SAMPLED`] and one `baggage.<key>` entry per baggage item; beyond the
    /// specification's keys, [`KEY_RANDOM_TRACE_ID`] when the flag is set,
    /// [`KEY_TRACE_STATE`] when there is a `tracestate` and one
    /// [`BAGGAGE_PROPERTIES_PREFIX`]`<key>` entry per baggage item with W3C properties, so that
    /// the map carries everything [`inject`](Self::inject) would.
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
        if self.is_random_trace_id() {
            map.insert(KEY_RANDOM_TRACE_ID.to_owned(), "true".to_owned());
        }
        if !self.trace_state().is_empty() {
            map.insert(KEY_TRACE_STATE.to_owned(), self.trace_state().to_string());
        }
        for (k, v) in self.baggage() {
            map.insert(format!("{BAGGAGE_PREFIX}{k}"), v.to_owned());
        }
        for (k, properties) in &self.carried_or_root().baggage_properties {
            let mut value = String::new();
            baggage::write_properties(properties, &mut value);
            map.insert(format!("{BAGGAGE_PROPERTIES_PREFIX}{k}"), value);
        }
        map
    }

    /// Deserializes a context written by [`to_map`](Self::to_map) (the spec's `from_dict`),
    /// from any map of strings (`&BTreeMap`, `&HashMap`, pairs).
    ///
    /// * `trace_id` (required): a W3C id (32 lowercase hex digits) is used as is; any other
    ///   non-empty string is mapped with [`TraceId::from_external`] and kept as the baggage
    ///   entry [`EXTERNAL_ID_KEY`] (unless the map has one), as `start_trace` does, so the
    ///   receiving side's spans can still be found by the caller's id.
    /// * `span_id` (optional): a W3C id (16 lowercase hex digits) is used as is; any other
    ///   non-empty string is mapped with [`SpanId::from_external`].
    /// * `sampled` (optional, default `true`): `true`, `1`, `false` or `0`.
    /// * `random_trace_id` (optional, default `false`): `true`, `1`, `false` or `0`.
    /// * `tracestate` (optional): a `tracestate` header value, parsed with
    ///   [`TraceState::parse`].
    /// * `baggage.<key>`: a baggage entry.
    /// * `baggage_properties.<key>` (optional): the W3C properties of the entry `baggage.<key>`
    ///   (`ttl=30;private`, see [`BAGGAGE_PROPERTIES_PREFIX`]).
    ///
    /// Other keys are not the context's and are ignored.
    ///
    /// The context is [remote](Self::is_remote), as one read by [`extract`](Self::extract)
    /// is: a span started in it records that its parent lives in another process
    /// ([`SpanRecord::parent_is_remote`](super::SpanRecord::parent_is_remote), OTLP's
    /// `IS_REMOTE` flag). For a map written and read in one process, take
    /// [`with_remote(false)`](Self::with_remote).
    ///
    /// Anything else is refused with the [`ContextMapError`] naming it, rather than dropped:
    /// no `trace_id`, an empty or all-zero id, another `sampled` or `random_trace_id` value, an
    /// invalid `tracestate`, an empty baggage key, baggage properties that are not W3C
    /// properties or whose entry is missing, or a key given twice.
    ///
    /// ```
    /// use agentcore_telemetry::tracer::ContextMapError;
    /// use agentcore_telemetry::{SpanId, TraceContext};
    /// use std::collections::HashMap;
    ///
    /// let map: HashMap<String, String> = [
    ///     ("trace_id".to_string(), "4bf92f3577b34da6a3ce929d0e0e4736".to_string()),
    ///     ("span_id".to_string(), "span-888".to_string()),
    ///     ("baggage.tenant".to_string(), "acme".to_string()),
    /// ]
    /// .into();
    /// let cx = TraceContext::from_map(&map).unwrap();
    /// assert!(cx.is_sampled());
    /// assert!(cx.is_remote());
    /// assert_eq!(cx.span_id(), Some(SpanId::from_external("span-888")));
    /// assert_eq!(cx.get_baggage("tenant"), Some("acme"));
    /// let external = TraceContext::from_map([("trace_id", "trace-123")]).unwrap();
    /// assert_eq!(external.get_baggage("trace.external_id"), Some("trace-123"));
    /// assert_eq!(
    ///     TraceContext::from_map(&HashMap::<String, String>::new()),
    ///     Err(ContextMapError::MissingTraceId)
    /// );
    /// assert_eq!(
    ///     TraceContext::from_map([("trace_id", "request-123"), ("sampled", "yes")]),
    ///     Err(ContextMapError::InvalidSampled("yes".into()))
    /// );
    /// ```
    pub fn from_map<I, K, V>(map: I) -> Result<Self, ContextMapError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut trace_id = None;
        // The caller's id when it is not a W3C id (kept in baggage below).
        let mut external = None;
        let mut span_id = None;
        let mut sampled = None;
        let mut random = None;
        let mut trace_state = None;
        let mut baggage = Baggage::new();
        let mut baggage_properties = BTreeMap::new();
        for (k, v) in map {
            let (k, v) = (k.as_ref(), v.as_ref());
            let duplicate = match k {
                KEY_TRACE_ID => {
                    let id = parse_trace_id(v)?;
                    if TraceId::from_hex(v).is_none() {
                        external = Some(v.to_owned());
                    }
                    trace_id.replace(id).is_some()
                }
                KEY_SPAN_ID => span_id.replace(parse_span_id(v)?).is_some(),
                KEY_SAMPLED => sampled
                    .replace(
                        parse_bool(v)
                            .ok_or_else(|| ContextMapError::InvalidSampled(v.to_owned()))?,
                    )
                    .is_some(),
                KEY_RANDOM_TRACE_ID => random
                    .replace(
                        parse_bool(v)
                            .ok_or_else(|| ContextMapError::InvalidRandom(v.to_owned()))?,
                    )
                    .is_some(),
                KEY_TRACE_STATE => trace_state
                    .replace(
                        TraceState::parse(v)
                            .map_err(|e| ContextMapError::InvalidTraceState(v.to_owned(), e))?,
                    )
                    .is_some(),
                _ => match (
                    k.strip_prefix(BAGGAGE_PREFIX),
                    k.strip_prefix(BAGGAGE_PROPERTIES_PREFIX),
                ) {
                    (Some(""), _) => return Err(ContextMapError::EmptyBaggageKey),
                    (Some(key), _) => baggage.insert(key.to_owned(), v.to_owned()).is_some(),
                    (None, Some(key)) => {
                        let properties = baggage::parse_properties(v).map_err(|e| {
                            ContextMapError::InvalidBaggageProperties(v.to_owned(), e)
                        })?;
                        baggage_properties
                            .insert(key.to_owned(), properties)
                            .is_some()
                    }
                    (None, None) => false,
                },
            };
            if duplicate {
                return Err(ContextMapError::DuplicateKey(k.to_owned()));
            }
        }
        let trace_id = trace_id.ok_or(ContextMapError::MissingTraceId)?;
        if let Some(key) = baggage_properties
            .keys()
            .find(|k| !baggage.contains_key(*k))
        {
            return Err(ContextMapError::BaggagePropertiesWithoutEntry(key.clone()));
        }
        baggage_properties
            .retain(|_, properties: &mut Vec<BaggageProperty>| !properties.is_empty());
        if let Some(ext) = external {
            if !baggage.contains_key(EXTERNAL_ID_KEY) {
                baggage.insert(EXTERNAL_ID_KEY.to_owned(), ext);
            }
        }
        let carried = Carried {
            baggage,
            baggage_properties,
            trace_state: trace_state.unwrap_or_default(),
            random: random.unwrap_or(false),
        };
        let sampled = sampled.unwrap_or(true);
        // The receiver side of a cross-service call (the specification's `from_dict`), so
        // remote, as a context read by `extract` is: the receiver's first span records (and
        // exports, as OTLP's `IS_REMOTE` flag) that its parent lives in another process.
        Ok(
            TraceContext::from_parts(trace_id, span_id, sampled, Some(Arc::new(carried)))
                .with_remote(true),
        )
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

/// A W3C trace id, or another non-empty string mapped with `TraceId::from_external`.
fn parse_trace_id(v: &str) -> Result<TraceId, ContextMapError> {
    let zero = v.len() == 32 && v.bytes().all(|b| b == b'0');
    if v.is_empty() || zero {
        return Err(ContextMapError::InvalidTraceId(v.to_owned()));
    }
    Ok(TraceId::from_external(v))
}

/// A W3C span id, or another non-empty string mapped with `SpanId::from_external`.
fn parse_span_id(v: &str) -> Result<SpanId, ContextMapError> {
    let zero = v.len() == 16 && v.bytes().all(|b| b == b'0');
    if v.is_empty() || zero {
        return Err(ContextMapError::InvalidSpanId(v.to_owned()));
    }
    Ok(SpanId::from_external(v))
}

/// Why [`TraceContext::from_map`] refused a map.
///
/// ```
/// use agentcore_telemetry::tracer::ContextMapError;
/// use agentcore_telemetry::TraceContext;
/// let err = TraceContext::from_map([("trace_id", "")]).unwrap_err();
/// assert_eq!(err, ContextMapError::InvalidTraceId(String::new()));
/// assert_eq!(err.to_string(), "invalid trace_id \"\": empty or all zeros");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContextMapError {
    /// No `trace_id` key.
    MissingTraceId,
    /// A `trace_id` that is empty or the all-zero W3C id.
    InvalidTraceId(String),
    /// A `span_id` that is empty or the all-zero W3C id.
    InvalidSpanId(String),
    /// A `sampled` value other than `true`, `1`, `false`, `0`.
    InvalidSampled(String),
    /// A `random_trace_id` value other than `true`, `1`, `false`, `0`.
    InvalidRandom(String),
    /// A `tracestate` value that is not a valid `tracestate` header, and why.
    InvalidTraceState(String, PropagationError),
    /// A `baggage.` key with nothing after the prefix.
    EmptyBaggageKey,
    /// A `baggage_properties.` value that is not a W3C Baggage property list, and why.
    InvalidBaggageProperties(String, PropagationError),
    /// A `baggage_properties.<key>` entry without the `baggage.<key>` entry it belongs to.
    BaggagePropertiesWithoutEntry(String),
    /// A key given twice (in a list of pairs).
    DuplicateKey(String),
}

impl fmt::Display for ContextMapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContextMapError::MissingTraceId => write!(f, "no {KEY_TRACE_ID} key"),
            ContextMapError::InvalidTraceId(v) => {
                write!(f, "invalid {KEY_TRACE_ID} {v:?}: empty or all zeros")
            }
            ContextMapError::InvalidSpanId(v) => {
                write!(f, "invalid {KEY_SPAN_ID} {v:?}: empty or all zeros")
            }
            ContextMapError::InvalidSampled(v) => write!(
                f,
                "invalid {KEY_SAMPLED} {v:?}: expected true, 1, false or 0"
            ),
            ContextMapError::InvalidRandom(v) => write!(
                f,
                "invalid {KEY_RANDOM_TRACE_ID} {v:?}: expected true, 1, false or 0"
            ),
            ContextMapError::InvalidTraceState(v, e) => {
                write!(f, "invalid {KEY_TRACE_STATE} {v:?}: {e}")
            }
            ContextMapError::EmptyBaggageKey => write!(f, "empty baggage key ({BAGGAGE_PREFIX})"),
            ContextMapError::InvalidBaggageProperties(v, e) => {
                write!(f, "invalid baggage properties {v:?}: {e}")
            }
            ContextMapError::BaggagePropertiesWithoutEntry(k) => write!(
                f,
                "{BAGGAGE_PROPERTIES_PREFIX}{k} without a {BAGGAGE_PREFIX}{k} entry"
            ),
            ContextMapError::DuplicateKey(k) => write!(f, "key {k:?} given twice"),
        }
    }
}

impl std::error::Error for ContextMapError {}

/// Baggage as `start_trace` and `start_detached_trace` take it: an array or slice of string
/// pairs (`[("user_id", "12345")]`, also `[]` for none), a `Vec` of pairs, or a map.
///
/// ```
/// use agentcore_telemetry::tracer::IntoBaggage;
/// use std::collections::HashMap;
/// assert!([].into_baggage().is_empty());
/// assert_eq!([("tenant", "acme")].into_baggage()["tenant"], "acme");
/// assert_eq!(vec![("k".to_string(), "v".to_string())].into_baggage()["k"], "v");
/// assert_eq!(HashMap::from([("k", "v")]).into_baggage()["k"], "v");
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not baggage",
    label = "expected string pairs: `[(\"key\", \"value\")]`, `[]`, a `Vec` of pairs or a map",
    note = "an array of pairs must be `[(&str, &str); N]`; for owned or mixed strings use `vec![(key, value)]`"
)]
pub trait IntoBaggage {
    /// The baggage entries.
    ///
    /// ```
    /// use agentcore_telemetry::tracer::IntoBaggage;
    /// assert_eq!([("user_id", "12345")].into_baggage()["user_id"], "12345");
    /// ```
    fn into_baggage(self) -> Baggage;
}

impl<const N: usize> IntoBaggage for [(&str, &str); N] {
    fn into_baggage(self) -> Baggage {
        self.into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }
}

impl IntoBaggage for &[(&str, &str)] {
    fn into_baggage(self) -> Baggage {
        self.iter()
            .map(|&(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }
}

impl<K: Into<String>, V: Into<String>> IntoBaggage for Vec<(K, V)> {
    fn into_baggage(self) -> Baggage {
        self.into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect()
    }
}

impl<K: Into<String>, V: Into<String>> IntoBaggage for BTreeMap<K, V> {
    fn into_baggage(self) -> Baggage {
        self.into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect()
    }
}

impl<K: Into<String>, V: Into<String>, S> IntoBaggage for std::collections::HashMap<K, V, S> {
    fn into_baggage(self) -> Baggage {
        self.into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect()
    }
}

impl IntoBaggage for () {
    fn into_baggage(self) -> Baggage {
        Baggage::new()
    }
}
