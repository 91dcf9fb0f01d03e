//! [`AgentcoreLayer`]: a `tracing_subscriber::Layer` whose `tracing` spans become spans of a
//! [`DistributedTracer`], in its span log, queries and export, next to the spans started with
//! our own API.
//!
//! # What maps to what
//!
//! | `tracing` | our span |
//! |---|---|
//! | a span (`info_span!`, `#[instrument]`) | a span (kind `Internal`), named by the callsite's static name |
//! | its fields | attributes: integers, floats and booleans stored as typed values; field names are `&'static str` and never copied |
//! | `otel.name`, `otel.kind`, `otel.status_code`, `otel.status_description` | name, kind, status, status message, as tracing-opentelemetry reads them |
//! | an event inside a `tracing` span | an event of that span (the innermost `tracing` span, even when one of our spans is nested inside it: ours take events through their own API), named by its `message` (or the callsite name), with its fields as attributes (and `level`, `target` with [`with_level`](AgentcoreLayer::with_level), [`with_target`](AgentcoreLayer::with_target)), capped by [`SpanLimits::max_events`](crate::SpanLimits::max_events) with `dropped_events_count` |
//! | an event at `ERROR` level | status `Error` if still unset |
//! | an event whose first field is `error` | an `exception` event with `exception.message`, status `Error` |
//! | a span field recorded as `&dyn Error` (at creation or by `Span::record`) | attribute `<field>` (its `Display`) and an `exception` event with `exception.message` |
//! | an event field recorded as `&dyn Error` | event attributes `<field>` and `exception.message` (its `Display`); an event without a message is named `exception` |
//! | `span.follows_from(other)` | a link to `other` |
//! | entering a span (`enter`, `in_scope`, `.instrument()`) | its context is current: our spans started inside are its children |
//!
//! Exceptions follow OpenTelemetry's semantic conventions: an exception is an *event* named
//! `exception` with `exception.*` attributes, never a span attribute (tracing-opentelemetry's
//! default `error_records_to_exceptions` copies `exception.message` onto the span, which the
//! conventions do not define; this layer does not). `exception.type` is left out: `tracing`
//! hands over an error as `&dyn Error`, whose concrete type is not known, as
//! tracing-opentelemetry leaves it out. An error value alone does not change the span's status
//! (the conventions leave handled errors off it); an `ERROR` event or the `error` convention
//! does.
//!
//! # Invariants
//!
//! 1. **Sampling first.** Every `tracing` span asks our [`Sampler`](crate::Sampler) (through
//!    the parent's decision) before anything is recorded; an unsampled span keeps only its
//!    ids (no record, no slot), and its children are unsampled too. Its fields are not even
//!    visited (no `Debug`/`Display` code run, nothing copied), nor is a value `Span::record`
//!    gives it later: the span is asked under the read lock first, which is released before
//!    a sampled span's values are visited (invariant 4).
//! 2. **One context stack.** Entering a `tracing` span pushes a frame for it on our
//!    thread-local context stack (under a key of that entry's own, as each attachment of one
//!    of our spans has); exiting removes the top-most frame of an entry of that span on the
//!    thread's stack, wherever it is (never a `ContextGuard` attaching the span's context).
//!    `tracing` lets spans exit in any order, so an exit out of order is not counted as
//!    context misuse, unlike a `Span` or `ContextGuard` of ours ending under another trace;
//!    so the current context is always the innermost of *both* kinds of span,
//!    in either nesting order, and a `tracing` span with a contextual parent takes our current
//!    context as its parent (without one, if that parent was left out by this layer's
//!    filter, its nearest recorded ancestor: the filtered-out span was entered on another
//!    thread than that ancestor, say). An explicit `parent:` is honoured (its stored context; if this
//!    layer's filter left it out, that of its nearest ancestor the layer recorded, as
//!    per-layer filtering defines a span's parent); an explicit root (`parent: None`), or an
//!    explicit parent with no recorded ancestor, starts a new trace: a span that names its
//!    parent is never put under whatever happens to be current.
//! 3. **Bounded memory.** A span's events and attributes go into its record under
//!    [`SpanLimits`](crate::SpanLimits); an event that would not fit is counted in
//!    `dropped_events_count` *before* its fields are visited or formatted, so a long-lived span
//!    with unbounded events costs neither memory nor formatting. The status such an event
//!    sets still applies (its level, and the `error` convention, for which an event whose
//!    callsite has an `error` field formats that field only), as in tracing-opentelemetry.
//! 4. **No lock held across user code.** Field values are visited (which may run user
//!    `Debug`/`Display` code that itself emits `tracing` events) before the span's extension
//!    lock is taken; two spans' extensions are never locked at once.
//! 5. **Nothing lost, nothing panics.** A span missing from the subscriber's registry, or
//!    filtered out for this layer, is ignored; a span still open when the subscriber drops is
//!    finished by its drop (status `Unset`), as our own spans are.
//! 6. **One span per layer.** Every layer installed in a subscriber (several may be: one
//!    tracer per exporter, say) keeps its own span in a `tracing` span's extensions, under the
//!    layer's id, and each hook acts on that one only: one span, one frame per enter, one copy
//!    of each event, per layer. A layer gets its id when it is created and a fresh one when it
//!    is added to a subscriber (`Layer::on_layer`), so copies of one layer added twice are two
//!    layers (on one tracer they record every span twice, and share its context stack: each
//!    copy of a span takes as parent whichever copy of the enclosing span was entered last, so
//!    the two copies of a tree are interleaved, not two independent trees). A
//!    layer swapped in by a `reload` handle (which skips `on_layer`) does not see the spans
//!    its predecessor opened: keep the layer and change its options through `Handle::modify`.
//!
//! On a tracer whose SDK is disabled (`OTEL_SDK_DISABLED=true`,
//! [`DistributedTracer::is_sdk_disabled`]) the layer keeps nothing: a `tracing` span's fields
//! are never visited, nothing is recorded, and entering it pushes no frame, so our current
//! context (an extracted caller's, say) stays current through it, as through a no-op span of
//! ours. Unlike one of ours with an explicit parent, an explicit root (`parent: None`) does
//! not hide it.
//!
//! Known limit, as in tracing-opentelemetry: an *event* whose span this layer's filter left
//! out, entered on another thread than that span's recorded ancestor (or an event with an
//! explicit `parent:` that the filter left out), is dropped, not given to the ancestor (the
//! filtered `Context` offers no way to walk a filtered-out span's ancestors for an event, as
//! `SpanRef::parent` does for a new span).
//!
//! A span ends when `tracing` closes it (its last handle drops, which a live child's handle
//! delays), not at its last exit. This differs from tracing-opentelemetry, which (since 0.24)
//! ends a span that was entered at its last exit, and at its close only if it was never
//! entered; `tests/bridge_differential.rs` pins the difference.
//!
//! # Allocation
//!
//! The subscriber's registry boxes each extension: one allocation per `tracing` span, for the
//! slot holding our span handle (one layer's span fits it inline; a second layer on the same
//! subscriber adds one allocation per span). The record itself is built in its span-log slot.
//! On top of that, only values `tracing` lends without a `'static` lifetime are copied: `&str`
//! field values, `Debug`-formatted values, event messages and `otel.name` overrides. The tests
//! (`tests/bridge_alloc.rs`) measure it.
//!
//! # Async code
//!
//! A future instrumented with `tracing`'s `.instrument(span)` enters the span for each poll,
//! which makes its context current during the poll, on whatever thread; our
//! [`FutureExt`](crate::FutureExt) wrappers and `tracing`'s nest in either order. As with
//! `tracing` itself, holding an `Entered` guard across `.await` is a mistake; inside one of our
//! scopes the entry's frame travels with the future, as a `Span` of ours does. An entry that
//! leaves a pending scoped future (its guard stored elsewhere) and exits there is noted under
//! its own key, so the future's next poll drops that frame and no other entry's. `tracing`'s
//! exit names the span, not the entry: when several entries of one span on a thread are all
//! off the stack (saved in pending futures), the exit is taken as the newest one's. An
//! `Entered` guard is `Send`: held across `.await` in a scoped future that moves to another
//! thread, its frame is dropped there (the scope's "entered on another thread" rule), so the
//! span is current in the future only until it moves (`tracing` itself keeps it current on the
//! first thread instead).
//!
//! Outside our scopes (a plain `tokio::spawn` of a future holding an `Entered` guard across
//! `.await`), a future that moves to another thread exits there, where no frame of the entry
//! is. The exit cannot tell which entry of the span ended, nor on which thread its frame is,
//! and the first thread cannot tell it from a live entry of the same span; so the entry's frame
//! stays current on the first thread while the span is open, as `tracing`'s own registry keeps
//! the span current there. Once the span closes, no entry of it can be open anywhere (each
//! holds a handle of the span): the layer marks a span whose exit found no entry of it on its
//! thread, and at its close publishes it to a process-wide list (`tracer::current::stray`);
//! every thread drops the entry frames of listed spans from its stack at its next span start,
//! and the spans it starts then get the parent they would have had. (Before, the frame stayed
//! for good, and every later span on that thread was a child of the ended span, in its
//! trace.) The list keeps the newest 64 spans: a thread with entries on its stack that looks
//! only after more were published counts the ones it can no longer read in
//! [`TracerStats::stray_entries_missed`](crate::TracerStats::stray_entries_missed)
//! (`agentcore_tracer_stray_entries_missed_total`), and a frame of one of them may stay there.
//! Cost: one load and a compare per span start (3 to 4 instructions net under callgrind, see
//! `tracer::current::stray`). Better still: run such futures in a scope (`in_current_context`),
//! or, as `tracing` asks, do not hold the guard across `.await`. `tests/bridge_tracing_async.rs`
//! checks both.

use crate::distributed::{get_distributed_tracer, DistributedTracer};
use crate::tracer::{DetachedSpan, KeyValue, SpanKind, SpanStatus, TraceContext, Value};
use crate::user_fmt::{debug_text, display_text};
use smallvec::SmallVec;
use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use tracing_core::field::{Field, Visit};
use tracing_core::span::{Attributes, Id, Record};
use tracing_core::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::{Extensions, ExtensionsMut, LookupSpan, SpanRef};
use tracing_subscriber::Layer;

/// Field names tracing-opentelemetry reserves, read the same way here.
const OTEL_NAME: &str = "otel.name";
const OTEL_KIND: &str = "otel.kind";
const OTEL_STATUS_CODE: &str = "otel.status_code";
const OTEL_STATUS_DESCRIPTION: &str = "otel.status_description";

/// Attributes gathered by a visit before they go into a record: eight fit inline.
type Fields = SmallVec<[KeyValue; 8]>;

/// A `tracing_subscriber::Layer` that records `tracing` spans and events as spans of a
/// [`DistributedTracer`] (see the [module docs](self) for the mapping and invariants).
///
/// ```
/// use agentcore_telemetry::bridge::tracing_layer::AgentcoreLayer;
/// use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};
/// use tracing_subscriber::layer::SubscriberExt;
///
/// let tracer: &'static DistributedTracer = Box::leak(Box::new(DistributedTracer::new(TracerConfig::default())));
/// let subscriber = tracing_subscriber::registry().with(AgentcoreLayer::new(tracer));
/// let trace_id = tracing::subscriber::with_default(subscriber, || {
///     let request = tracing::info_span!("handle_request", user_id = 42_i64);
///     let _entered = request.enter();
///     tracing::info!(cache_hit = true, "looked up");
///     let ours = tracer.start_span("call_tool", SpanKind::Client, []); // a child of handle_request
///     let trace_id = ours.trace_id();
///     ours.end();
///     trace_id
/// });
/// let spans = tracer.get_trace_spans(trace_id);
/// let request = spans.iter().find(|s| s.name == "handle_request").unwrap();
/// let tool = spans.iter().find(|s| s.name == "call_tool").unwrap();
/// assert_eq!(tool.parent_span_id, Some(request.span_id));
/// assert_eq!(request.events[0].name, "looked up");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct AgentcoreLayer {
    tracer: &'static DistributedTracer,
    /// Names this layer's spans in a `tracing` span's extensions (invariant 6).
    id: u64,
    location: bool,
    target: bool,
    level: bool,
}

impl AgentcoreLayer {
    /// A layer recording into `tracer` (which must be the tracer your own spans use for the two
    /// kinds to nest). Spans carry their fields only; see [`with_location`](Self::with_location),
    /// [`with_target`](Self::with_target) and [`with_level`](Self::with_level) for more.
    ///
    /// ```
    /// use agentcore_telemetry::bridge::tracing_layer::AgentcoreLayer;
    /// let layer = AgentcoreLayer::new(agentcore_telemetry::get_distributed_tracer());
    /// # let _ = layer;
    /// ```
    pub fn new(tracer: &'static DistributedTracer) -> Self {
        AgentcoreLayer {
            tracer,
            id: next_layer_id(),
            location: false,
            target: false,
            level: false,
        }
    }

    /// A layer recording into the global tracer ([`get_distributed_tracer`]).
    ///
    /// ```
    /// use agentcore_telemetry::bridge::tracing_layer::AgentcoreLayer;
    /// use tracing_subscriber::layer::SubscriberExt;
    /// let subscriber = tracing_subscriber::registry().with(AgentcoreLayer::global());
    /// # let _ = subscriber;
    /// ```
    pub fn global() -> Self {
        Self::new(get_distributed_tracer())
    }

    /// Adds `code.file.path`, `code.module.name` and `code.line.number` to spans and events
    /// (static strings and an integer: no allocation). Off by default; tracing-opentelemetry
    /// adds them by default.
    ///
    /// ```
    /// use agentcore_telemetry::bridge::tracing_layer::AgentcoreLayer;
    /// let layer = AgentcoreLayer::global().with_location(true);
    /// # let _ = layer;
    /// ```
    pub fn with_location(mut self, on: bool) -> Self {
        self.location = on;
        self
    }

    /// Adds the callsite's `target` to spans and events. Off by default (tracing-opentelemetry
    /// adds it to events always, to spans by default).
    ///
    /// ```
    /// use agentcore_telemetry::bridge::tracing_layer::AgentcoreLayer;
    /// let layer = AgentcoreLayer::global().with_target(true);
    /// # let _ = layer;
    /// ```
    pub fn with_target(mut self, on: bool) -> Self {
        self.target = on;
        self
    }

    /// Adds the callsite's `level` (`"INFO"`, ...) to spans and events. Off by default
    /// (tracing-opentelemetry adds it to events always, to spans on request).
    ///
    /// Off, an event with up to two fields fits its record inline
    /// ([`INLINE_EVENT_ATTRIBUTES`](crate::tracer::INLINE_EVENT_ATTRIBUTES)); each of `level`
    /// and `target` takes one of those places.
    ///
    /// ```
    /// use agentcore_telemetry::bridge::tracing_layer::AgentcoreLayer;
    /// let layer = AgentcoreLayer::global().with_level(true);
    /// # let _ = layer;
    /// ```
    pub fn with_level(mut self, on: bool) -> Self {
        self.level = on;
        self
    }

    /// The tracer this layer records into.
    ///
    /// ```
    /// use agentcore_telemetry::bridge::tracing_layer::AgentcoreLayer;
    /// let layer = AgentcoreLayer::global();
    /// assert!(std::ptr::eq(layer.tracer(), agentcore_telemetry::get_distributed_tracer()));
    /// ```
    pub fn tracer(&self) -> &'static DistributedTracer {
        self.tracer
    }

    /// The callsite attributes the options ask for, on a span or an event (static strings and
    /// an integer: no allocation).
    fn metadata_attributes(&self, meta: &'static Metadata<'static>, out: &mut Fields) {
        if self.level {
            out.push(KeyValue::new("level", meta.level().as_str()));
        }
        if self.target {
            out.push(KeyValue::new("target", meta.target()));
        }
        if self.location {
            if let Some(file) = meta.file() {
                out.push(KeyValue::new("code.file.path", file));
            }
            if let Some(module) = meta.module_path() {
                out.push(KeyValue::new("code.module.name", module));
            }
            if let Some(line) = meta.line() {
                out.push(KeyValue::new("code.line.number", i64::from(line)));
            }
        }
    }
}

/// A fresh layer id (invariant 6); never 0.
fn next_layer_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// What the layers keep in a `tracing` span's extensions (the registry holds one value per
/// type, shared by every layer): each layer's span under its layer id, detached (it may be
/// entered on any thread, and closes wherever its last handle drops). One fits inline.
struct SpanData(SmallVec<[Ours; 1]>);

/// One layer's span in [`SpanData`].
struct Ours {
    layer: u64,
    span: DetachedSpan<'static>,
    /// An exit of the span found no entry of it on its thread: an entry may be stranded on
    /// another thread's stack until the span closes (see "Async code").
    stranded: bool,
}

impl SpanData {
    /// The span of layer `id`.
    #[inline]
    fn get(&self, id: u64) -> Option<&DetachedSpan<'static>> {
        self.0.iter().find(|o| o.layer == id).map(|o| &o.span)
    }

    /// The span of layer `id`, to change.
    #[inline]
    fn get_mut(&mut self, id: u64) -> Option<&mut DetachedSpan<'static>> {
        self.0
            .iter_mut()
            .find(|o| o.layer == id)
            .map(|o| &mut o.span)
    }

    /// Takes out the span of layer `id` (it is closing), leaving the others'. If an entry of
    /// it may be stranded on another thread, publishes it (`DetachedSpan::publish_stranded`).
    #[inline]
    fn take(&mut self, id: u64) -> Option<DetachedSpan<'static>> {
        let i = self.0.iter().position(|o| o.layer == id)?;
        let o = self.0.remove(i);
        if o.stranded {
            o.span.publish_stranded();
        }
        Some(o.span)
    }
}

/// The reserved `otel.*` fields of a span, read by [`SpanVisitor`].
#[derive(Default)]
struct Overrides {
    name: Option<Cow<'static, str>>,
    kind: Option<SpanKind>,
    status: Option<(SpanStatus, Cow<'static, str>)>,
}

impl Overrides {
    /// Applies a status and/or a late rename/kind change to a started span.
    fn apply(self, span: &mut DetachedSpan<'_>) {
        if let Some(name) = self.name {
            span.set_name(name);
        }
        if let Some(kind) = self.kind {
            span.set_kind(kind);
        }
        if let Some((status, message)) = self.status {
            span.set_status(status, message);
        }
    }
}

/// An `exception` event per message (a span's error fields; see the module docs). Out of line:
/// rare.
#[cold]
#[inline(never)]
fn add_exceptions(span: &mut DetachedSpan<'_>, messages: &mut Vec<String>) {
    for message in messages.drain(..) {
        span.add_event("exception", [KeyValue::new("exception.message", message)]);
    }
}

/// `otel.kind` as tracing-opentelemetry reads it (case-insensitive; anything else ignored).
fn parse_kind(s: &str) -> Option<SpanKind> {
    [
        ("server", SpanKind::Server),
        ("client", SpanKind::Client),
        ("producer", SpanKind::Producer),
        ("consumer", SpanKind::Consumer),
        ("internal", SpanKind::Internal),
    ]
    .into_iter()
    .find_map(|(name, kind)| s.eq_ignore_ascii_case(name).then_some(kind))
}

/// `otel.status_code` as tracing-opentelemetry reads it: `ok`, `error`, anything else Unset.
fn parse_status(s: &str) -> SpanStatus {
    if s.eq_ignore_ascii_case("ok") {
        SpanStatus::Ok
    } else if s.eq_ignore_ascii_case("error") {
        SpanStatus::Error
    } else {
        SpanStatus::Unset
    }
}

/// An unsigned integer as a typed value: `I64` when it fits, else its decimal string.
fn u64_value(v: u64) -> Value {
    i64::try_from(v).map_or_else(|_| Value::from(v.to_string()), Value::I64)
}

/// A 128-bit integer as a typed value, as [`u64_value`]: `I64` when it fits, else its decimal
/// string (which is what `tracing`'s default visit, through `Debug`, would give for all).
fn i128_value(v: i128) -> Value {
    i64::try_from(v).map_or_else(|_| Value::from(v.to_string()), Value::I64)
}

/// An unsigned 128-bit integer as a typed value (see [`i128_value`]).
fn u128_value(v: u128) -> Value {
    i128::try_from(v).map_or_else(|_| Value::from(v.to_string()), i128_value)
}

/// Visits a span's fields (at creation or `record`) into typed attributes and overrides.
struct SpanVisitor<'a> {
    fields: &'a mut Fields,
    overrides: &'a mut Overrides,
    /// The `exception.message` of each field recorded as `&dyn Error`: one `exception` event
    /// each ([`add_exceptions`]). Empty (not allocated) for nearly every span, and apart from
    /// [`Overrides`]: inside it (an inline `SmallVec`), `bridge_record` took 120 more
    /// instructions per span under callgrind (3283 to 3403).
    exceptions: &'a mut Vec<String>,
}

impl SpanVisitor<'_> {
    /// A string field: a reserved `otel.*` one, or an attribute (copied: `tracing` lends it).
    fn string(&mut self, field: &Field, value: &str) {
        match field.name() {
            OTEL_NAME => self.overrides.name = Some(Cow::Owned(value.to_owned())),
            OTEL_KIND => self.overrides.kind = parse_kind(value),
            OTEL_STATUS_CODE => self.overrides.status = Some((parse_status(value), "".into())),
            OTEL_STATUS_DESCRIPTION => {
                self.overrides.status = Some((SpanStatus::Error, Cow::Owned(value.to_owned())))
            }
            name => self.fields.push(KeyValue::new(name, value.to_owned())),
        }
    }
}

impl Visit for SpanVisitor<'_> {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.fields.push(KeyValue::new(field.name(), value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.fields
            .push(KeyValue::new(field.name(), u64_value(value)));
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.fields
            .push(KeyValue::new(field.name(), i128_value(value)));
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.fields
            .push(KeyValue::new(field.name(), u128_value(value)));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.fields.push(KeyValue::new(field.name(), value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.fields.push(KeyValue::new(field.name(), value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.string(field, value);
    }

    /// The field as an attribute, and an `exception` event (not an `exception.message`
    /// attribute: see the module docs).
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let message = display_text(value);
        self.exceptions.push(message.clone());
        self.fields.push(KeyValue::new(field.name(), message));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            OTEL_NAME | OTEL_KIND | OTEL_STATUS_CODE | OTEL_STATUS_DESCRIPTION => {
                self.string(field, &debug_text(value))
            }
            name => self.fields.push(KeyValue::new(name, debug_text(value))),
        }
    }
}

/// Visits an event's fields: its name (`message`), attributes, and the `error` convention.
#[derive(Default)]
struct EventVisitor {
    name: Option<Cow<'static, str>>,
    fields: Fields,
    /// Set by an `error` field seen before any message: the span's new status message.
    error_status: Option<String>,
    /// A field was recorded as `&dyn Error`: without a message, the event is an `exception`.
    error_record: bool,
}

impl EventVisitor {
    /// The `error` convention (tracing-opentelemetry's `error_events_to_exceptions` and
    /// `error_events_to_status`): an `error` field before any message names the event
    /// `exception`, its `Debug` form becomes `exception.message` and the span's status.
    fn error_field(&mut self, debug: String) {
        self.name = Some(Cow::Borrowed("exception"));
        self.fields
            .push(KeyValue::new("exception.message", debug.clone()));
        self.error_status = Some(debug);
    }
}

impl Visit for EventVisitor {
    fn record_i64(&mut self, field: &Field, value: i64) {
        match field.name() {
            "message" => self.name = Some(value.to_string().into()),
            name => self.fields.push(KeyValue::new(name, value)),
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "message" => self.name = Some(value.to_string().into()),
            name => self.fields.push(KeyValue::new(name, u64_value(value))),
        }
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        match field.name() {
            "message" => self.name = Some(value.to_string().into()),
            name => self.fields.push(KeyValue::new(name, i128_value(value))),
        }
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        match field.name() {
            "message" => self.name = Some(value.to_string().into()),
            name => self.fields.push(KeyValue::new(name, u128_value(value))),
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        match field.name() {
            "message" => self.name = Some(value.to_string().into()),
            name => self.fields.push(KeyValue::new(name, value)),
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        match field.name() {
            "message" => self.name = Some(value.to_string().into()),
            name => self.fields.push(KeyValue::new(name, value)),
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.name = Some(value.to_owned().into()),
            "error" if self.name.is_none() => self.error_field(debug_text(value)),
            name => self.fields.push(KeyValue::new(name, value.to_owned())),
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let message = display_text(value);
        self.fields
            .push(KeyValue::new("exception.message", message.clone()));
        self.fields.push(KeyValue::new(field.name(), message));
        self.error_record = true;
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => self.name = Some(debug_text(value).into()),
            "error" if self.name.is_none() => self.error_field(debug_text(value)),
            name => self.fields.push(KeyValue::new(name, debug_text(value))),
        }
    }
}

/// Visits a dropped event for the `error` convention only ([`EventVisitor`]'s: an `error` field
/// recorded as `str` or `Debug` before any message); formats nothing else.
#[derive(Default)]
struct ErrorConvention {
    message: bool,
    status: Option<String>,
}

impl ErrorConvention {
    fn message(&mut self, field: &Field) {
        if field.name() == "message" {
            self.message = true;
        }
    }
}

impl Visit for ErrorConvention {
    fn record_i64(&mut self, field: &Field, _: i64) {
        self.message(field);
    }

    fn record_u64(&mut self, field: &Field, _: u64) {
        self.message(field);
    }

    fn record_i128(&mut self, field: &Field, _: i128) {
        self.message(field);
    }

    fn record_u128(&mut self, field: &Field, _: u128) {
        self.message(field);
    }

    fn record_f64(&mut self, field: &Field, _: f64) {
        self.message(field);
    }

    fn record_bool(&mut self, field: &Field, _: bool) {
        self.message(field);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.record_debug(field, &value);
    }

    /// As [`EventVisitor`]'s: an error value is not the `error` convention.
    fn record_error(&mut self, _: &Field, _: &(dyn std::error::Error + 'static)) {}

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => self.message = true,
            "error" if !self.message && self.status.is_none() => {
                self.status = Some(debug_text(value));
            }
            _ => {}
        }
    }
}

impl AgentcoreLayer {
    /// The `error` convention of an event dropped for want of room (invariant 3): sets the
    /// status the event would have set (`EventVisitor::error_field`), formatting the `error`
    /// field only. Out of line: rare.
    #[cold]
    #[inline(never)]
    fn error_status_of_dropped_event<S>(&self, event: &Event<'_>, span: &SpanRef<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        // Invariant 4: visited without holding the lock.
        let mut visitor = ErrorConvention::default();
        event.record(&mut visitor);
        if let Some(message) = visitor.status {
            let mut ext = span.extensions_mut();
            if let Some(ours) = self.ours_mut(&mut ext) {
                ours.set_status(SpanStatus::Error, message);
            }
        }
    }

    /// This layer's span in a `tracing` span's extensions (invariant 6).
    #[inline]
    fn ours<'e>(&self, ext: &'e Extensions<'_>) -> Option<&'e DetachedSpan<'static>> {
        ext.get::<SpanData>()?.get(self.id)
    }

    /// This layer's span in a `tracing` span's extensions, to change.
    #[inline]
    fn ours_mut<'e>(
        &self,
        ext: &'e mut ExtensionsMut<'_>,
    ) -> Option<&'e mut DetachedSpan<'static>> {
        ext.get_mut::<SpanData>()?.get_mut(self.id)
    }

    /// Marks this layer's span in `ext` for its close: an exit of it found no entry of it on
    /// its thread (see "Async code"). Under the extensions' write lock, taken only then.
    #[cold]
    #[inline(never)]
    fn mark_stranded(&self, mut ext: ExtensionsMut<'_>) {
        if let Some(ours) = ext
            .get_mut::<SpanData>()
            .and_then(|data| data.0.iter_mut().find(|o| o.layer == self.id))
        {
            ours.stranded = true;
        }
    }

    /// The context of `id`'s span as this layer recorded it (`None` if filtered out, closed,
    /// or unknown). Locks that span's extensions only for the copy.
    fn context_of<S>(&self, id: &Id, ctx: &Context<'_, S>) -> Option<TraceContext>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let span = ctx.span(id)?;
        let ext = span.extensions();
        self.ours(&ext).map(DetachedSpan::context)
    }

    /// The parent of the new contextual span `id` when our context stack cannot give it: the
    /// `tracing` span current at its creation (its parent for `tracing`) was left out by this
    /// layer's filter and our stack holds no context on this thread, so the nearest ancestor
    /// the layer recorded (`SpanRef::parent`) is not entered here: the filtered-out span was
    /// moved here (`tokio::spawn(work().instrument(debug_span!(..)))`) or entered after the
    /// ancestor exited. Without this, the span would start a new trace. `None` (our current
    /// context) whenever our stack holds one: a span of ours nested inside the ancestor, or a
    /// context a scope carries (`in_context`), is the innermost, as for any contextual span.
    fn filtered_out_parent<S>(&self, id: &Id, ctx: &Context<'_, S>) -> Option<TraceContext>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        if self.tracer.current_context().is_some() {
            return None;
        }
        if ctx.span(ctx.current_span().id()?).is_some() {
            return None; // recorded by this layer: our stack holds it unless a scope hides it
        }
        let ancestor = ctx.span(id)?.parent()?;
        self.context_of(&ancestor.id(), ctx)
    }
}

impl<S> Layer<S> for AgentcoreLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_layer(&mut self, _subscriber: &mut S) {
        // Invariant 6: copies of one layer added twice keep apart.
        self.id = next_layer_id();
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        // A no-op tracer (`OTEL_SDK_DISABLED=true`) keeps nothing: no fields visited, no span
        // stored, so entering the span changes no context of ours (see the module docs).
        if self.tracer.is_sdk_disabled() {
            return;
        }
        let meta = attrs.metadata();
        // Invariant 2: a contextual parent is our current context (which includes entered
        // `tracing` spans); an explicit one is the stored context of the nearest span of that
        // parent's ancestry this layer recorded (the parent itself unless filtered out for it:
        // `SpanRef::parent` skips spans the layer's filter disabled), and an explicit root, or
        // an ancestry with no span of ours, none: a root.
        let start = if attrs.is_contextual() {
            match self.filtered_out_parent(id, &ctx) {
                Some(parent) => self.tracer.decide_with_parent(Some(&parent)),
                None => self.tracer.decide_current(),
            }
        } else {
            let parent = attrs
                .parent()
                .and_then(|_| ctx.span(id)?.parent())
                .and_then(|p| self.context_of(&p.id(), &ctx));
            self.tracer.decide_with_parent(parent.as_ref())
        };
        let mut fields = Fields::new();
        let mut overrides = Overrides::default();
        let mut exceptions = Vec::new();
        // Invariant 1: decided first, so that an unsampled span's fields are never visited
        // (no user `Debug`/`Display` code run, nothing copied: review helper-133).
        if start.ids.sampled {
            self.metadata_attributes(meta, &mut fields);
            // Invariant 4: user code (Debug impls) runs before any extension lock is taken.
            attrs.record(&mut SpanVisitor {
                fields: &mut fields,
                overrides: &mut overrides,
                exceptions: &mut exceptions,
            });
        }
        let name = overrides.name.take().unwrap_or(Cow::Borrowed(meta.name()));
        let kind = overrides.kind.take().unwrap_or(SpanKind::Internal);
        // The fields are drained, not moved: moved, the 392-byte vector was copied (a
        // `memcpy` call) at each of the four calls down to the record.
        let fields = fields.drain(..);
        let mut span = self.tracer.start_decided(start, name, kind, fields);
        overrides.apply(&mut span);
        if !exceptions.is_empty() {
            add_exceptions(&mut span, &mut exceptions);
        }
        let Some(registered) = ctx.span(id) else {
            return; // not in the registry: `span` finishes here (invariant 5)
        };
        let mut ext = registered.extensions_mut();
        // Invariant 6: next to the other layers' spans, if any.
        // Built in each arm: built before the `match`, it was moved once more.
        match ext.get_mut::<SpanData>() {
            Some(data) => data.0.push(Ours {
                layer: self.id,
                span,
                stranded: false,
            }),
            None => ext.insert(SpanData(SmallVec::from_buf([Ours {
                layer: self.id,
                span,
                stranded: false,
            }]))),
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        // A no-op tracer stored no span to record into: nothing to visit (see the module
        // docs). Checked first, as the values are visited before the span is looked up.
        if self.tracer.is_sdk_disabled() {
            return;
        }
        let Some(span) = ctx.span(id) else {
            return;
        };
        // Invariant 1: an unsampled span's values are not visited either. Asked under the
        // read lock, released before the visit (invariant 4).
        if !self
            .ours(&span.extensions())
            .is_some_and(DetachedSpan::is_open_sampled)
        {
            return;
        }
        let mut fields = Fields::new();
        let mut overrides = Overrides::default();
        let mut exceptions = Vec::new();
        values.record(&mut SpanVisitor {
            fields: &mut fields,
            overrides: &mut overrides,
            exceptions: &mut exceptions,
        });
        let mut ext = span.extensions_mut();
        let Some(ours) = self.ours_mut(&mut ext) else {
            return;
        };
        // Drained, not moved into the loop's iterator (a `memcpy` of the 392-byte vector).
        for kv in fields.drain(..) {
            ours.set_attribute(kv.key, kv.value);
        }
        overrides.apply(ours);
        if !exceptions.is_empty() {
            add_exceptions(ours, &mut exceptions);
        }
    }

    fn on_follows_from(&self, id: &Id, follows: &Id, ctx: Context<'_, S>) {
        // One span's extensions at a time (invariant 4): a span may follow itself.
        let Some(cx) = self.context_of(follows, &ctx) else {
            return;
        };
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut ext = span.extensions_mut();
        if let (Some(ours), Some(span_id)) = (self.ours_mut(&mut ext), cx.span_id()) {
            ours.add_link(cx.trace_id(), span_id, []);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(span) = event.parent().and_then(|id| ctx.span(id)).or_else(|| {
            event
                .is_contextual()
                .then(|| ctx.lookup_current())
                .flatten()
        }) else {
            return; // outside any span: nothing to attach it to
        };
        let meta = event.metadata();
        let is_error = *meta.level() == Level::ERROR;
        // Invariant 3: a full (or unsampled) span drops the event before it is formatted.
        {
            let mut ext = span.extensions_mut();
            let Some(ours) = self.ours_mut(&mut ext) else {
                return;
            };
            if !ours.event_room() {
                if is_error && ours.status() == SpanStatus::Unset {
                    ours.set_status(SpanStatus::Error, "");
                }
                let open_status = ours.takes_status() && ours.status() != SpanStatus::Ok;
                drop(ext);
                // The `error` convention's status is the span's, not the event's: it holds
                // however many events the span dropped (review helper-133). Only such an
                // event (its callsite names an `error` field) of a sampled span whose status
                // is not final is visited, for that field.
                if open_status && meta.fields().field("error").is_some() {
                    self.error_status_of_dropped_event(event, &span);
                }
                return;
            }
        }
        // Invariant 4: visit without holding the lock.
        let mut visitor = EventVisitor::default();
        self.metadata_attributes(meta, &mut visitor.fields);
        event.record(&mut visitor);
        // The fields stay where the visitor put them and are drained into the event (moved,
        // the 392-byte vector was copied on the way, as in `on_new_span`).
        let EventVisitor {
            name,
            fields,
            error_status,
            error_record,
        } = &mut visitor;
        let mut ext = span.extensions_mut();
        let Some(ours) = self.ours_mut(&mut ext) else {
            return;
        };
        if is_error && ours.status() == SpanStatus::Unset {
            ours.set_status(SpanStatus::Error, "");
        }
        if let Some(message) = error_status.take() {
            ours.set_status(SpanStatus::Error, message);
        }
        // An error value is the event's (see the module docs): it names an event without a
        // message `exception`, and sets no span attribute (review helper-120: it set
        // `exception.message` on the span).
        let name = name.take().unwrap_or(if *error_record {
            Cow::Borrowed("exception")
        } else {
            Cow::Borrowed(meta.name())
        });
        ours.add_event(name, fields.drain(..));
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(ours) = self.ours(&span.extensions()) {
                ours.enter_frame();
            }
        }
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        // Invariant 2: in any order, not counted as misuse.
        let stranded = self
            .ours(&span.extensions())
            .is_some_and(DetachedSpan::exit_frame);
        if stranded {
            self.mark_stranded(span.extensions_mut());
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else {
            return;
        };
        // Only this layer's span (invariant 6); the others' layers close theirs.
        let ours = span
            .extensions_mut()
            .get_mut::<SpanData>()
            .and_then(|data| data.take(self.id));
        // Finished outside the lock: into the span log and the export queue.
        if let Some(ours) = ours {
            ours.end();
        }
    }
}
