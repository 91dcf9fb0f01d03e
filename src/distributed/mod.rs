//! [`DistributedTracer`], the specification's tracer facade: configuration, sampling,
//! starting and finishing spans and traces, the span-log queries (`query.rs`), span export
//! (`exporting.rs`), the global instance (`global.rs`) and the runtime side of
//! `#[trace_operation]` (`operation.rs`).
//!
//! The facade sits above both halves it joins: the tracing machinery in [`crate::tracer`]
//! (spans, context, the span log; the handles point at the tracer's core, not at this facade)
//! and the push side in [`crate::export`], which reads finished spans from the tracer. The
//! specification's tracer starts export from its environment (`enable_export`), so the type
//! that does so depends on both, and neither of them on it.
//!
//! ```
//! use agentcore_telemetry::{DistributedTracer, SpanKind, SpanStatus, TracerConfig};
//! let tracer = DistributedTracer::new(TracerConfig { from_env: false, ..Default::default() });
//! let span = tracer.start_span("plan", SpanKind::Internal, []);
//! tracer.finish_span(span, SpanStatus::Ok, None);
//! assert_eq!(tracer.get_metrics().total_spans, 1);
//! ```

#[cfg(feature = "otlp")]
mod exporting;
mod global;
mod operation;
mod query;

pub use global::{get_distributed_tracer, init_distributed_tracer};
pub use query::{TraceSummary, TracingMetrics};

/// Support for `#[trace_operation]`; not part of the stable API.
#[doc(hidden)]
///
/// ```
/// use agentcore_telemetry::distributed::__private::NoHook;
/// let _ = NoHook;
/// ```
pub mod __private {
    pub use super::operation::{
        call_once, instrument, traced, Branch, Caller, Captures, FnOutput, FromResidual, Never,
        OkOnReturn, Outcome, Pending, Traced, Unstarted, Verdict, VerdictAnyErr, VerdictDebug,
        VerdictDisplay, VerdictDisplayDebug, VerdictOk,
    };
    pub use crate::tracer::__private::{NoHook, OnReady};
}

#[cfg(feature = "otlp")]
use self::exporting::ExportSlot;
use crate::tracer::context::{Carried, IntoBaggage, TraceContext, EXTERNAL_ID_KEY};
use crate::tracer::core::TracerCore;
use crate::tracer::current::{self, Parent};
use crate::tracer::guard::{ContextGuard, DetachedContext};
use crate::tracer::id::{random_root_ids, SpanId, TraceId};
use crate::tracer::span::{DetachedSpan, FinishSpan, Span, SpanIds, SpanStart};
use crate::tracer::{KeyValue, Sampler, SpanKind, SpanLimits, SpanStatus, TracerStats};
use std::borrow::Cow;
use std::fmt;

/// The span log's default capacity, in finished spans.
///
/// ```
/// use agentcore_telemetry::{distributed::DEFAULT_SPAN_LOG_CAPACITY, TracerConfig};
/// assert_eq!(TracerConfig::default().span_log_capacity, DEFAULT_SPAN_LOG_CAPACITY);
/// ```
pub const DEFAULT_SPAN_LOG_CAPACITY: usize = 65_536;

/// Tracer configuration.
///
/// ```
/// use agentcore_telemetry::{DistributedTracer, Sampler, TracerConfig};
/// let tracer = DistributedTracer::new(TracerConfig {
///     service_name: "agent-runtime".into(),
///     sampler: Some(Sampler::ratio(0.25)),
///     span_log_capacity: 1024,
///     ..TracerConfig::default()
/// });
/// assert_eq!(tracer.sampler().root_ratio(), 0.25);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct TracerConfig {
    /// The service name (`service.name`), default `"agentcore"`.
    pub service_name: Cow<'static, str>,
    /// The head sampler. `None` (default): the one `OTEL_TRACES_SAMPLER` asks for when
    /// [`from_env`](Self::from_env) is on, else [`Sampler::default`]
    /// (`parentbased_always_on`). `Some`: this one, whatever `OTEL_TRACES_SAMPLER` says (code
    /// beats the environment, as in the OpenTelemetry SDKs), except that
    /// `OTEL_SDK_DISABLED=true` makes the tracer a no-op when `from_env` is on
    /// ([`DistributedTracer::is_sdk_disabled`]; its sampler is then
    /// [`Sampler::always_off`]).
    /// [`DistributedTracer::sampler`] tells which one runs. (Was `sample_ratio: f64`;
    /// `Sampler::ratio(r)` is the same sampler.)
    pub sampler: Option<Sampler>,
    /// Finished spans kept in the span log, default [`DEFAULT_SPAN_LOG_CAPACITY`]; rounded
    /// up to a power of two per shard. Memory is allocated once, at construction: about
    /// 570 bytes per slot on x86_64 (a record with its inline attributes, events and links),
    /// so about 37 MiB at the default capacity; strings beyond `'static` ones and items
    /// beyond the inline counts live on the heap while their record is in the log. A
    /// capacity that cannot be allocated makes [`DistributedTracer::new`] panic, as a `Vec`
    /// of that size would (it built a tracer with an empty span log in a release build when
    /// above 2⁶³ with one shard, and every sampled span panicked as it started).
    pub span_log_capacity: usize,
    /// Span log shards; `0` (default) picks twice the available parallelism. Rounded down to
    /// a power of two, and to at most one shard per 16 slots of capacity (so that spans
    /// nested in open ones find a free slot). The capacity is split evenly among them, and a
    /// thread writes to one shard only: the log keeps each shard's most recent spans, so one
    /// thread keeps at most `capacity / shards` spans of its own, and a busy thread's spans
    /// never displace another shard's. The first half are *owned*: each thread that records
    /// a sampled span (on any tracer) takes the lowest process-wide index no live thread
    /// holds, and gives it back when it exits; the threads holding the first indices own a
    /// shard each and write to it without a locked instruction; every other thread writes to
    /// one of the second half, shared. An owned shard whose thread records little keeps its
    /// records but takes no new ones until that thread exits and the next one takes its
    /// index: with few busy threads, most of the capacity can serve none of them. (Indices
    /// used to be handed out once and never given back: the first threads' shards stayed
    /// theirs after they exited, and every later thread shared the second half.) For one
    /// busy thread to keep the whole capacity, use one shard (`span_log_shards: 1`), shared
    /// by all threads (each span then costs a locked instruction).
    pub span_log_shards: usize,
    /// Per-span limits. `None` (the default): the `OTEL_*` span-limit variables when
    /// [`from_env`](Self::from_env) is true ([`SpanLimits::from_env_lookup`]:
    /// `OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT`, `OTEL_SPAN_EVENT_COUNT_LIMIT`, ...; each unset one
    /// keeps its OpenTelemetry default), else the defaults. `Some`: exactly these, whatever
    /// the environment says (as an explicit [`sampler`](Self::sampler) is). The limits in
    /// force: [`DistributedTracer::span_limits`]. (Was a plain `SpanLimits`, and the
    /// variables were not read.)
    pub limits: Option<SpanLimits>,
    /// Whether [`DistributedTracer::new`] reads the `OTEL_*` environment (default true):
    /// the sampler ([`Sampler::from_env_lookup`]: `OTEL_TRACES_SAMPLER`,
    /// `OTEL_TRACES_SAMPLER_ARG`, `OTEL_SDK_DISABLED`; see [`sampler`](Self::sampler)), the
    /// span limits (`OTEL_SPAN_*_LIMIT` and the others of [`SpanLimits::from_env_lookup`];
    /// see [`limits`](Self::limits)), `OTEL_PROPAGATORS` (only to warn when it asks for
    /// anything but the W3C trace context and baggage this crate propagates) and,
    /// with the `otlp` feature, span export, which it starts when `OTEL_EXPORTER_OTLP_ENDPOINT` or
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set, or `OTEL_TRACES_EXPORTER` names `otlp`
    /// (alone, to the specification's default `http://localhost:4318`), `console` or
    /// `otlp/stdout`, unless
    /// `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` (read by
    /// [`ExportConfig::from_env`](crate::export::ExportConfig::from_env)). False: only
    /// [`DistributedTracer::start_export`] and
    /// [`start_export_with`](DistributedTracer::start_export_with) start it. (Was
    /// `export_from_env`, and before it `export_enabled`, a flag that was only reported
    /// back.) Ignored values are reported on standard error, once, at construction.
    pub from_env: bool,
    /// The cardinality cap of `agentcore_tracer_span_duration_seconds{operation, status}`
    /// (default 1,024): span names should be low-cardinality (`get_account`, not
    /// `get_account/42`); beyond the cap, durations fold into the overflow series. A cap of 0
    /// is taken as 1, as every family's is (see
    /// [`FamilyOptions`](crate::registry::FamilyOptions)).
    pub max_operations: usize,
}

impl Default for TracerConfig {
    fn default() -> Self {
        TracerConfig {
            service_name: Cow::Borrowed("agentcore"),
            sampler: None,
            span_log_capacity: DEFAULT_SPAN_LOG_CAPACITY,
            span_log_shards: 0,
            limits: None,
            from_env: true,
            max_operations: 1_024,
        }
    }
}

/// The distributed tracer: starts spans, keeps the current context per thread, records
/// finished sampled spans into a fixed-capacity span log and answers queries over it.
///
/// Use the global one ([`get_distributed_tracer`]) or independent instances; each
/// instance's spans and current context are its own.
///
/// ```
/// use agentcore_telemetry::{DistributedTracer, KeyValue, SpanKind, SpanStatus, TracerConfig};
///
/// let tracer = DistributedTracer::new(TracerConfig::default());
/// let trace = tracer.start_trace(Some("request-123"), [("user_id", "12345"), ("tenant", "acme")]);
/// let mut span = tracer.start_span(
///     "create_agent",
///     SpanKind::Internal,
///     [KeyValue::new("philosophy", "react"), KeyValue::new("priority", "high")],
/// );
/// span.add_event("agent_initialized", [KeyValue::new("container_id", "cont-456")]);
/// span.set_attribute("agent_id", "agent-789");
/// tracer.finish_span(span, SpanStatus::Ok, None);
///
/// let spans = tracer.get_trace_spans(trace.trace_id());
/// assert_eq!(spans.len(), 1);
/// assert_eq!(spans[0].attributes.len(), 3);
/// ```
pub struct DistributedTracer {
    core: TracerCore,
    config: TracerConfig,
    sampler: Sampler,
    /// `OTEL_SDK_DISABLED=true` (read when `from_env`): spans are no-ops (`span/noop.rs`).
    sdk_disabled: bool,
    /// The span exporter, once started (`exporting.rs`).
    #[cfg(feature = "otlp")]
    export: ExportSlot,
}

impl DistributedTracer {
    /// A tracer with its own span log (allocated here, once) and counters.
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig { span_log_capacity: 8, ..Default::default() });
    /// assert!(tracer.span_log_capacity() >= 8);
    /// ```
    pub fn new(config: TracerConfig) -> Self {
        let shards = if config.span_log_shards == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get()) * 2
        } else {
            config.span_log_shards
        };
        let (sampler, sdk_disabled) = sampler_for(&config);
        let tracer = DistributedTracer {
            core: TracerCore::new(
                config.service_name.clone(),
                config.span_log_capacity,
                shards,
                limits_for(&config),
            ),
            sampler,
            sdk_disabled,
            config,
            #[cfg(feature = "otlp")]
            export: ExportSlot::default(),
        };
        if tracer.config.from_env {
            warn_about_propagators(&tracer.config);
            #[cfg(feature = "otlp")]
            tracer.start_export_from_env();
        }
        tracer
    }

    /// The head sampler in use ([`TracerConfig::sampler`], the environment's, or the
    /// default).
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, Sampler, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig {
    ///     sampler: Some(Sampler::always_off()),
    ///     ..Default::default()
    /// });
    /// assert_eq!(tracer.sampler(), Sampler::always_off());
    /// ```
    pub fn sampler(&self) -> Sampler {
        self.sampler
    }

    /// Whether the SDK is disabled (`OTEL_SDK_DISABLED=true`, read when
    /// [`TracerConfig::from_env`] is on): the tracer is then OpenTelemetry's no-op
    /// implementation. A span draws no ids, records, exports and counts nothing
    /// ([`stats`](Self::stats) and the span metrics stay at zero, the queries find nothing),
    /// and its context is its parent's, whole (trace and span id, sampled and remote flags,
    /// `tracestate`, baggage), so [`TraceContext::inject`] passes the caller's `traceparent`
    /// on unchanged; with no parent it is [invalid](TraceContext::is_valid) (all-zero ids),
    /// and nothing but baggage is injected. A span started with an explicit parent (or as a
    /// root, `None`) makes that context (or an invalid one) current for its children.
    /// Baggage works as with the SDK (`start_trace`, `set_baggage`, `extract`, `attach`,
    /// `inject`); `start_trace(None, ..)` draws no trace id either (its context is invalid,
    /// with the baggage). The `tracing` bridge keeps nothing for its spans. [`sampler`](Self::sampler)
    /// reports [`Sampler::always_off`]: no span is sampled by this tracer.
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, SpanKind, TraceContext, TracerConfig};
    /// std::env::set_var("OTEL_SDK_DISABLED", "true");
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// std::env::remove_var("OTEL_SDK_DISABLED");
    /// assert!(tracer.is_sdk_disabled());
    /// let caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    /// let cx = TraceContext::extract(|h| (h == "traceparent").then_some(caller)).unwrap().unwrap();
    /// let _cx = tracer.attach(cx);
    /// let span = tracer.start_span("handle", SpanKind::Server, []);
    /// let mut headers = Vec::new();
    /// span.context().inject(|name, value| headers.push((name, value)));
    /// assert_eq!(headers, [("traceparent", caller.to_string())]);
    /// assert_eq!(tracer.stats().spans_started + tracer.stats().spans_unsampled, 0);
    /// assert!(!DistributedTracer::new(TracerConfig { from_env: false, ..Default::default() }).is_sdk_disabled());
    /// ```
    pub fn is_sdk_disabled(&self) -> bool {
        self.sdk_disabled
    }

    /// The per-span limits in force ([`TracerConfig::limits`], the environment's, or the
    /// OpenTelemetry defaults).
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, SpanLimits, TracerConfig};
    /// let limits = SpanLimits { max_events: 16, ..SpanLimits::default() };
    /// let tracer = DistributedTracer::new(TracerConfig {
    ///     limits: Some(limits),
    ///     ..Default::default()
    /// });
    /// assert_eq!(tracer.span_limits(), limits);
    /// ```
    pub fn span_limits(&self) -> SpanLimits {
        *self.core.limits()
    }

    /// The span exporter's slot (`exporting.rs`).
    #[cfg(feature = "otlp")]
    pub(crate) fn export_slot(&self) -> &ExportSlot {
        &self.export
    }

    /// The machinery this facade drives (for the queries in `query.rs`).
    #[inline(always)]
    pub(crate) fn core(&self) -> &TracerCore {
        &self.core
    }

    /// The configuration.
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, TracerConfig};
    /// assert_eq!(DistributedTracer::new(TracerConfig::default()).config().service_name, "agentcore");
    /// ```
    pub fn config(&self) -> &TracerConfig {
        &self.config
    }

    /// The span log's actual capacity (the configured one rounded up, see [`TracerConfig`]).
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, TracerConfig};
    /// let t = DistributedTracer::new(TracerConfig { span_log_capacity: 4, span_log_shards: 1, ..Default::default() });
    /// assert_eq!(t.span_log_capacity(), 4);
    /// ```
    pub fn span_log_capacity(&self) -> usize {
        self.core.span_log_capacity()
    }

    /// Starts a trace and makes its root context current on this thread until the returned
    /// guard drops (for synchronous code; in `async` code use
    /// [`start_detached_trace`](Self::start_detached_trace)). `trace_id`: `None` for a random
    /// id; a 32-digit lowercase hex W3C id is used as is; any other string is mapped to a
    /// deterministic id with [`TraceId::from_external`] and kept as baggage
    /// `trace.external_id`. An empty string, or W3C's invalid all-zero id (32 `0`s), names no
    /// trace: it gets a random id, as `None` does. `baggage`: pairs (`[("user_id", "12345")]`, or `[]`), a `Vec`
    /// or a map (see [`IntoBaggage`]). The sampling decision is taken here (root decision) and
    /// inherited by the trace's spans.
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, TraceId, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// let cx = tracer.start_trace(Some("request-123"), [("user_id", "12345")]);
    /// assert_eq!(cx.trace_id(), TraceId::from_external("request-123"));
    /// assert_eq!(cx.get_baggage("user_id"), Some("12345"));
    /// drop(cx);
    /// let random = tracer.start_trace(None, []).trace_id();
    /// assert_ne!(tracer.start_trace(Some(""), []).trace_id(), random); // no id: random too
    /// ```
    pub fn start_trace(
        &self,
        trace_id: Option<&str>,
        baggage: impl IntoBaggage,
    ) -> ContextGuard<'_> {
        ContextGuard::attach(&self.core, self.new_trace(trace_id, baggage))
    }

    /// Starts a trace, like [`start_trace`](Self::start_trace), but current nowhere yet: the
    /// way to start one in `async` code. Run a future in it with
    /// [`FutureExt::in_context`](super::FutureExt::in_context) (current during each poll,
    /// on any thread), or [`attach`](DetachedContext::attach) it.
    ///
    /// ```
    /// use agentcore_telemetry::{get_distributed_tracer, FutureExt, SpanKind, SpanStatus};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let tracer = get_distributed_tracer();
    /// let trace = tracer.start_detached_trace(Some("request-123"), [("user_id", "12345")]);
    /// let trace_id = trace.trace_id();
    /// async {
    ///     let span = tracer.start_detached_span("create_agent", SpanKind::Internal, []);
    ///     tokio::task::yield_now().await;
    ///     tracer.finish_span(span, SpanStatus::Ok, None);
    /// }
    /// .in_context(trace)
    /// .await;
    /// assert_eq!(tracer.get_trace_spans(trace_id).len(), 1);
    /// # });
    /// ```
    pub fn start_detached_trace(
        &self,
        trace_id: Option<&str>,
        baggage: impl IntoBaggage,
    ) -> DetachedContext<'_> {
        DetachedContext::new(&self.core, self.new_trace(trace_id, baggage))
    }

    /// A new trace's root context, with the sampling decision.
    fn new_trace(&self, trace_id: Option<&str>, baggage: impl IntoBaggage) -> TraceContext {
        // No id to follow: an empty string (a request without one, `header.unwrap_or("")`)
        // or W3C's invalid all-zero id. Hashed, each was one fixed trace id that every such
        // request joined (found by review); `from_map` refuses both.
        let all_zero = |s: &str| s.len() == 32 && s.bytes().all(|b| b == b'0');
        let trace_id = trace_id.filter(|s| !s.is_empty() && !all_zero(s));
        // Only an id generated here is known to be random (W3C Level 2 random-trace-id flag).
        let (id, external) = match trace_id {
            // A no-op tracer draws no id (see `is_sdk_disabled`).
            None if self.sdk_disabled => (TraceId::INVALID, None),
            None => (TraceId::random(), None),
            Some(s) => match TraceId::from_hex(s) {
                Some(id) => (id, None),
                None => (TraceId::from_external(s), Some(s)),
            },
        };
        let sampled = self.sampler.should_sample(None, id);
        let mut bag = baggage.into_baggage();
        if let Some(ext) = external {
            bag.insert(EXTERNAL_ID_KEY.to_owned(), ext.to_owned());
        }
        let carried = Carried::of_new_trace(bag, trace_id.is_none());
        TraceContext::from_parts(id, None, sampled, carried)
    }

    /// Makes `context` (for example one received from another service) current on this
    /// thread until the guard drops; spans started meanwhile are its children.
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, SpanId, SpanKind, TraceContext, TraceId, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// let remote = TraceContext::new(TraceId::random(), SpanId::from_u64(42), true);
    /// let _cx = tracer.attach(remote.clone());
    /// let span = tracer.start_span("handle", SpanKind::Server, []);
    /// assert_eq!(span.trace_id(), remote.trace_id());
    /// assert_eq!(span.parent_span_id(), SpanId::from_u64(42));
    /// ```
    pub fn attach(&self, context: TraceContext) -> ContextGuard<'_> {
        ContextGuard::attach(&self.core, self.adopt(context))
    }

    /// `context` as this tracer makes it current: an [invalid](TraceContext::is_valid) one
    /// (a no-op span's) becomes a new trace's root context with its baggage, as
    /// `start_trace(None, baggage)` gives, unless this tracer is a no-op too.
    fn adopt(&self, context: TraceContext) -> TraceContext {
        if context.is_valid() || self.sdk_disabled {
            return context;
        }
        let id = TraceId::random();
        let carried = context.carried().and_then(|c| c.for_new_trace());
        TraceContext::from_parts(id, None, self.sampler.should_sample(None, id), carried)
    }

    /// `context` (for example one received from another service) tied to this tracer but
    /// current nowhere: run a future in it with
    /// [`FutureExt::in_context`](super::FutureExt::in_context).
    ///
    /// ```
    /// use agentcore_telemetry::{get_distributed_tracer, FutureExt, SpanId, SpanKind, TraceContext, TraceId};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let tracer = get_distributed_tracer();
    /// let remote = TraceContext::new(TraceId::random(), SpanId::from_u64(42), true);
    /// let parent = async { tracer.start_detached_span("handle", SpanKind::Server, []).parent_span_id() }
    ///     .in_context(tracer.detached_context(remote))
    ///     .await;
    /// assert_eq!(parent, SpanId::from_u64(42));
    /// # });
    /// ```
    pub fn detached_context(&self, context: TraceContext) -> DetachedContext<'_> {
        DetachedContext::new(&self.core, self.adopt(context))
    }

    /// The current context of this tracer on this thread (the innermost open span or
    /// attached context), if any.
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// assert!(tracer.current_context().is_none());
    /// let span = tracer.start_span("op", SpanKind::Internal, []);
    /// assert_eq!(tracer.current_context().unwrap().span_id(), Some(span.span_id()));
    /// ```
    pub fn current_context(&self) -> Option<TraceContext> {
        current::current(self.core.id()).map(|p| {
            // A no-op span's frame may name no span (an invalid id: see `span/noop.rs`).
            let span_id = p.span_id.filter(|s| *s != SpanId::INVALID);
            TraceContext::from_parts(p.trace_id, span_id, p.sampled, p.baggage)
                .with_remote(p.remote)
        })
    }

    /// Starts a span, current on this thread until it finishes. Its parent is the current
    /// context (see [`current_context`](Self::current_context)); without one it starts a new
    /// trace. A static `name` and up to [`INLINE_ATTRIBUTES`](crate::tracer::INLINE_ATTRIBUTES)
    /// attributes cost no allocation. An unsampled span records nothing but still carries
    /// its context, so its children are unsampled too.
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, KeyValue, SpanKind, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// let span = tracer.start_span("create_agent", SpanKind::Client, [KeyValue::new("retries", 3)]);
    /// assert!(span.is_recording());
    /// ```
    #[inline(always)]
    pub fn start_span(
        &self,
        name: impl Into<Cow<'static, str>>,
        kind: SpanKind,
        attributes: impl IntoIterator<Item = KeyValue>,
    ) -> Span<'_> {
        if self.sdk_disabled {
            drop(attributes);
            drop(name);
            // The start out of line, the span built here: see `NoopStart`.
            return Span::from_noop(&self.core, Span::noop_start(&self.core));
        }
        let start = self.decide(current::current(self.core.id()));
        // `attributes` goes straight to `Span::start`: passed on through one more inlined
        // layer, the compiler copied the caller's attribute array on entry, with 16-byte
        // loads of data just written with 8-byte stores (store-forwarding stalls: ~12% of a
        // span with 2 attributes in the perf profile).
        Span::start(&self.core, start, name, kind, attributes)
    }

    /// Starts a span like [`start_span`](Self::start_span) (same parent rules) but returns
    /// it detached: not current on this thread, and `Send`, for handing to a future
    /// ([`FutureExt::in_span`](super::FutureExt::in_span)) or another thread. In `async`
    /// code prefer this: a [`Span`] binding is `!Send` and keeps the future `!Send` until
    /// the end of its scope, even after it is moved.
    ///
    /// ```
    /// use agentcore_telemetry::{get_distributed_tracer, FutureExt, SpanKind};
    /// # let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    /// # rt.block_on(async {
    /// let tracer = get_distributed_tracer();
    /// let span = tracer.start_detached_span("job", SpanKind::Internal, []);
    /// tokio::spawn(async {}.in_span(span)).await.unwrap();
    /// # });
    /// ```
    #[inline]
    pub fn start_detached_span(
        &self,
        name: impl Into<Cow<'static, str>>,
        kind: SpanKind,
        attributes: impl IntoIterator<Item = KeyValue>,
    ) -> DetachedSpan<'_> {
        if self.sdk_disabled {
            drop(attributes);
            drop(name);
            return self.noop_detached_span(current::current(self.core.id()));
        }
        let start = self.decide(current::current(self.core.id()));
        DetachedSpan::start(&self.core, start, name, kind, attributes)
    }

    /// A detached no-op span whose parent is `parent`. Whole, through the return slot: in
    /// `start_span`'s shape (parts returned, the handle built inline, see `NoopStart`) a
    /// disabled detached span cost 5 instructions more and an enabled one none fewer
    /// (`benches/HISTORY.md`, "`OTEL_SDK_DISABLED` at the cost of its compare").
    #[cold]
    #[inline(never)]
    fn noop_detached_span(&self, parent: Option<Parent>) -> DetachedSpan<'_> {
        DetachedSpan::noop(&self.core, parent)
    }

    /// Starts a detached span whose parent is the context a scope carries here (the future is
    /// run in it: `fut.in_context(&span)`, `in_span`, an enclosing traced future), else
    /// `captured`, else the current context (`#[trace_operation]` on an `async fn`: `captured`
    /// is the context where its future was created, which wins over a span or guard merely
    /// open on the thread where it is first polled: on a current-thread runtime a spawned task
    /// is polled under whatever the `block_on` caller has current, another trace; the README's
    /// `execute_tool(..).in_context(&exec)` is a child of `exec`).
    #[inline]
    pub(crate) fn start_detached_span_or(
        &self,
        captured: Option<Parent>,
        name: impl Into<Cow<'static, str>>,
        kind: SpanKind,
        attributes: impl IntoIterator<Item = KeyValue>,
    ) -> DetachedSpan<'_> {
        let parent = match current::current_carried(self.core.id()) {
            Some((carried, true)) => Some(carried),
            open => captured.or(open.map(|(p, _)| p)),
        };
        if self.sdk_disabled {
            drop(attributes);
            drop(name);
            return self.noop_detached_span(parent);
        }
        DetachedSpan::start(&self.core, self.decide(parent), name, kind, attributes)
    }

    /// Starts a span with an explicit parent context (`None`: a new root span, whatever is
    /// current), current on this thread until it finishes.
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// let a = tracer.start_span("a", SpanKind::Internal, []);
    /// let cx = a.context();
    /// let root = tracer.start_span_with_parent("root", SpanKind::Internal, [], None);
    /// assert_eq!(root.parent_span_id(), None);
    /// let child = tracer.start_span_with_parent("child", SpanKind::Internal, [], Some(&cx));
    /// assert_eq!(child.parent_span_id(), Some(a.span_id()));
    /// ```
    pub fn start_span_with_parent(
        &self,
        name: impl Into<Cow<'static, str>>,
        kind: SpanKind,
        attributes: impl IntoIterator<Item = KeyValue>,
        parent: Option<&TraceContext>,
    ) -> Span<'_> {
        if self.sdk_disabled {
            drop(attributes);
            drop(name);
            return Span::noop_with_parent(&self.core, parent.map(Parent::of_context));
        }
        let start = self.decide_explicit(parent);
        Span::start(&self.core, start, name, kind, attributes)
    }

    /// The ids and sampling decision of a new span whose parent is the current context, as
    /// [`start_detached_span`](Self::start_detached_span) decides them, for the `tracing`
    /// bridge: it visits a span's fields only when the span is sampled, then starts it with
    /// [`start_decided`](Self::start_decided).
    #[cfg(feature = "tracing-bridge")]
    #[inline]
    pub(crate) fn decide_current(&self) -> SpanStart {
        self.decide(current::current(self.core.id()))
    }

    /// The ids and sampling decision of a new span whose parent is `parent` (`None`: a new
    /// root span, whatever is current), for the `tracing` bridge (a span with an explicit
    /// `parent:`, a root, or a parent it found itself); see
    /// [`decide_current`](Self::decide_current).
    #[cfg(feature = "tracing-bridge")]
    #[inline]
    pub(crate) fn decide_with_parent(&self, parent: Option<&TraceContext>) -> SpanStart {
        self.decide_explicit(parent)
    }

    /// Starts the detached span `start` describes ([`decide_current`](Self::decide_current),
    /// [`decide_with_parent`](Self::decide_with_parent)).
    #[cfg(feature = "tracing-bridge")]
    #[inline]
    pub(crate) fn start_decided(
        &self,
        start: SpanStart,
        name: impl Into<Cow<'static, str>>,
        kind: SpanKind,
        attributes: impl IntoIterator<Item = KeyValue>,
    ) -> DetachedSpan<'_> {
        DetachedSpan::start(&self.core, start, name, kind, attributes)
    }

    /// [`decide`](Self::decide) for an explicit parent: an [invalid](TraceContext::is_valid)
    /// one (a no-op span's) starts a new trace that keeps its baggage, as `None` starts one.
    #[inline]
    fn decide_explicit(&self, parent: Option<&TraceContext>) -> SpanStart {
        match parent {
            Some(cx) if !cx.is_valid() => {
                let mut start = self.decide(None);
                start.baggage = cx.carried().and_then(|c| c.for_new_trace());
                start
            }
            parent => self.decide(parent.map(Parent::of_context)),
        }
    }

    /// A new span's ids, parent, baggage and sampling decision (counted when the span has
    /// started, see `DetachedSpan::start`).
    #[inline(always)]
    fn decide(&self, parent: Option<Parent>) -> SpanStart {
        let (trace_id, span_id, parent_span_id, parent_sampled, baggage, remote) = match parent {
            Some(p) => (
                p.trace_id,
                SpanId::random(),
                p.span_id,
                Some(p.sampled),
                p.baggage,
                p.remote,
            ),
            None => {
                let (trace_id, span_id) = random_root_ids();
                (trace_id, span_id, None, None, None, false)
            }
        };
        let sampled = self.sampler.should_sample(parent_sampled, trace_id);
        SpanStart {
            ids: SpanIds {
                trace_id,
                span_id,
                parent_span_id,
                sampled,
                parent_is_remote: remote && parent_span_id.is_some(),
            },
            baggage,
        }
    }

    /// Records `error` on `span` as an `exception` event; see
    /// [`DetachedSpan::record_exception`].
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, SpanKind, SpanStatus, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// let mut span = tracer.start_span("op", SpanKind::Internal, []);
    /// let err = "boom".parse::<i32>().unwrap_err();
    /// tracer.record_exception(&mut span, &err);
    /// let id = span.span_id();
    /// tracer.finish_span(span, SpanStatus::Error, Some(&err.to_string()));
    /// assert_eq!(tracer.get_span_by_id(id).unwrap().events[0].name, "exception");
    /// ```
    pub fn record_exception<E: fmt::Display + fmt::Debug + ?Sized>(
        &self,
        span: &mut DetachedSpan<'_>,
        error: &E,
    ) {
        span.record_exception(error);
    }

    /// Finishes `span` with `status` and an optional message (kept for `Error` only).
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, SpanKind, SpanStatus, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// let span = tracer.start_span("op", SpanKind::Internal, []);
    /// let id = span.span_id();
    /// tracer.finish_span(span, SpanStatus::Error, Some("boom"));
    /// let r = tracer.get_span_by_id(id).unwrap();
    /// assert_eq!((r.status, &*r.status_message), (SpanStatus::Error, "boom"));
    /// ```
    #[inline(always)]
    pub fn finish_span(&self, span: impl FinishSpan, status: SpanStatus, message: Option<&str>) {
        span.finish_consumed(status, message);
    }

    /// Exposes the tracer's metrics in `registry`: `agentcore_tracer_spans_started_total`,
    /// `_finished_total`, `_errored_total`, `_unsampled_total`,
    /// `agentcore_tracer_spans_dropped_total{reason="overwritten"|"busy"}` (the same per-thread
    /// counters [`DistributedTracer::stats`] reads, merged lazily at scrape time),
    /// `agentcore_tracer_context_misuse_total{kind}`, with the `tracing-bridge` feature
    /// `agentcore_tracer_stray_entries_missed_total` (process-wide, see
    /// [`TracerStats::stray_entries_missed`]) and the
    /// histogram `agentcore_tracer_span_duration_seconds{operation, status}`, capped at
    /// [`TracerConfig::max_operations`] operation/status pairs (more fold into the overflow
    /// series). Register a tracer in one registry; registering it again in the same registry
    /// is a no-op. A registry exposes one tracer's span metrics: where another tracer's (or
    /// the caller's own counters under these names) are registered already, this fails with
    /// [`Error::DuplicateMetric`](crate::Error::DuplicateMetric) (it was accepted, and the
    /// scrape then counted the first tracer's spans only while timing both). The exporter's
    /// self-metrics, one set of series per processor, are registered first, whatever happens
    /// to the span metrics.
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, Registry, SpanKind, SpanStatus, TracerConfig};
    ///
    /// let registry = Registry::new();
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// tracer.register_metrics(&registry).unwrap();
    /// let span = tracer.start_span("create_agent", SpanKind::Internal, []);
    /// tracer.finish_span(span, SpanStatus::Ok, None);
    /// let text = registry.encode_text();
    /// assert!(text.contains("agentcore_tracer_spans_finished_total 1\n"));
    /// assert!(text.contains(
    ///     "agentcore_tracer_span_duration_seconds_count{operation=\"create_agent\",status=\"ok\"} 1\n"
    /// ));
    /// ```
    pub fn register_metrics(&self, registry: &crate::Registry) -> Result<(), crate::Error> {
        // The exporter's series first: labelled per processor, they share a registry with
        // another tracer's, where the span metrics cannot.
        #[cfg(feature = "otlp")]
        let export = self.export.register(registry);
        self.core
            .counters()
            .register(registry, self.config.max_operations)?;
        #[cfg(feature = "otlp")]
        export?;
        Ok(())
    }

    /// The counters (summed over threads; a snapshot taken while spans run may miss the
    /// latest increments).
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, Sampler, SpanKind, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig {
    ///     sampler: Some(Sampler::always_off()),
    ///     ..Default::default()
    /// });
    /// tracer.start_span("op", SpanKind::Internal, []).end();
    /// assert_eq!(tracer.stats().spans_unsampled, 1);
    /// assert_eq!(tracer.stats().spans_started, 0);
    /// ```
    pub fn stats(&self) -> TracerStats {
        self.core.counters().snapshot()
    }
}

/// The sampler `config` asks for, reading the environment when it says so (see
/// [`TracerConfig::sampler`]), and whether the SDK is disabled (`OTEL_SDK_DISABLED=true`);
/// ignored values are reported on standard error.
fn sampler_for(config: &TracerConfig) -> (Sampler, bool) {
    if !config.from_env {
        return (config.sampler.unwrap_or_default(), false);
    }
    let os = crate::env::EnvReader::process();
    let mut env = Sampler::from_env_lookup(|name| os.get(name));
    env.warnings.splice(0..0, os.warnings());
    for w in &env.warnings {
        eprintln!(
            "WARN agentcore_telemetry::tracer: service {:?}: {w}",
            config.service_name
        );
    }
    if env.sdk_disabled {
        return (Sampler::always_off(), true);
    }
    (config.sampler.or(env.sampler).unwrap_or_default(), false)
}

/// Says on standard error when `OTEL_PROPAGATORS` asks for anything but what this crate's
/// explicit propagation does (see `propagation::otel_env`).
fn warn_about_propagators(config: &TracerConfig) {
    use crate::propagation::otel_env;
    let os = crate::env::EnvReader::process();
    let value = os.get(otel_env::VARIABLE);
    let warnings = os
        .warnings()
        .into_iter()
        .chain(value.as_deref().and_then(otel_env::warning));
    for w in warnings {
        eprintln!(
            "WARN agentcore_telemetry::tracer: service {:?}: {w}",
            config.service_name
        );
    }
}

/// The span limits `config` asks for, reading the environment when it says so (see
/// [`TracerConfig::limits`]); ignored values are reported on standard error.
fn limits_for(config: &TracerConfig) -> SpanLimits {
    match config.limits {
        Some(limits) => limits,
        None if config.from_env => {
            let os = crate::env::EnvReader::process();
            let mut env = SpanLimits::from_env_lookup(|name| os.get(name));
            env.warnings.splice(0..0, os.warnings());
            for w in &env.warnings {
                eprintln!(
                    "WARN agentcore_telemetry::tracer: service {:?}: {w}",
                    config.service_name
                );
            }
            env.limits
        }
        None => SpanLimits::default(),
    }
}

impl fmt::Debug for DistributedTracer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DistributedTracer")
            .field("config", &self.config)
            .field("core", &self.core)
            .finish()
    }
}
