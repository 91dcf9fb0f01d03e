//! [`DistributedTracer`]: configuration, span start/finish, the span log queries, the stats
//! counters and the global instance.

use super::attribute::KeyValue;
use super::clock::Anchor;
use super::context::{self, Baggage, ContextGuard, Parent, TraceContext, EXTERNAL_ID_KEY};
use super::counters::SpanCounters;
use super::id::{SpanId, TraceId};
use super::sampler::Sampler;
use super::span::{
    DetachedSpan, FinishSpan, Rec, Span, SpanKind, SpanLimits, SpanRecord, SpanStatus,
};
use crate::sync::ring::{Claimed, Push, ShardedRing};
use std::borrow::Cow;
use std::cell::Cell;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// The span log's default capacity, in finished spans.
///
/// ```
/// use agentcore_telemetry::{tracer::DEFAULT_SPAN_LOG_CAPACITY, TracerConfig};
/// assert_eq!(TracerConfig::default().span_log_capacity, DEFAULT_SPAN_LOG_CAPACITY);
/// ```
pub const DEFAULT_SPAN_LOG_CAPACITY: usize = 65_536;

/// Tracer configuration.
///
/// ```
/// use agentcore_telemetry::{DistributedTracer, TracerConfig};
/// let tracer = DistributedTracer::new(TracerConfig {
///     service_name: "agent-runtime".into(),
///     sample_ratio: 0.25,
///     span_log_capacity: 1024,
///     ..TracerConfig::default()
/// });
/// assert_eq!(tracer.config().sample_ratio, 0.25);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct TracerConfig {
    /// The service name (`service.name`), default `"agentcore"`.
    pub service_name: Cow<'static, str>,
    /// The fraction of root spans recorded (parent-based; see [`Sampler`]), default 1.0.
    pub sample_ratio: f64,
    /// Finished spans kept in the span log, default [`DEFAULT_SPAN_LOG_CAPACITY`]; rounded
    /// up to a power of two per shard. Memory is allocated once, at construction: about
    /// 570 bytes per slot on x86_64 (a record with its inline attributes, events and links),
    /// so about 37 MiB at the default capacity; strings beyond `'static` ones and items
    /// beyond the inline counts live on the heap while their record is in the log.
    pub span_log_capacity: usize,
    /// Span log shards; `0` (default) picks twice the available parallelism, rounded down to
    /// a power of two.
    pub span_log_shards: usize,
    /// Per-span limits.
    pub limits: SpanLimits,
    /// Reported by [`DistributedTracer::get_metrics`]; exporting is another module's job.
    pub export_enabled: bool,
    /// The cardinality cap of `agentcore_tracer_span_duration_seconds{operation, status}`
    /// (default 1,024): span names should be low-cardinality (`get_account`, not
    /// `get_account/42`); beyond the cap, durations fold into the overflow series.
    pub max_operations: usize,
}

impl Default for TracerConfig {
    fn default() -> Self {
        TracerConfig {
            service_name: Cow::Borrowed("agentcore"),
            sample_ratio: 1.0,
            span_log_capacity: DEFAULT_SPAN_LOG_CAPACITY,
            span_log_shards: 0,
            limits: SpanLimits::default(),
            export_enabled: false,
            max_operations: 1_024,
        }
    }
}

/// The tracer's counters, for the metrics scrape ([`DistributedTracer::stats`]).
///
/// ```
/// use agentcore_telemetry::{DistributedTracer, SpanKind, SpanStatus, TracerConfig};
/// let tracer = DistributedTracer::new(TracerConfig::default());
/// tracer.start_span("a", SpanKind::Internal, []).finish(SpanStatus::Error);
/// let stats = tracer.stats();
/// assert_eq!((stats.spans_started, stats.spans_finished, stats.spans_errored), (1, 1, 1));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TracerStats {
    /// Sampled spans started.
    pub spans_started: u64,
    /// Sampled spans finished.
    pub spans_finished: u64,
    /// Sampled spans finished with `Error` status.
    pub spans_errored: u64,
    /// Spans not sampled (started, nothing recorded).
    pub spans_unsampled: u64,
    /// Finished spans dropped because their span log slot was busy (a reader held it).
    pub spans_dropped: u64,
    /// Finished spans overwritten in the span log by newer ones.
    pub spans_overwritten: u64,
}

/// Summary of one trace in the span log ([`DistributedTracer::get_trace_summary`]).
///
/// ```
/// use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};
/// let tracer = DistributedTracer::new(TracerConfig::default());
/// let root = tracer.start_span("root", SpanKind::Server, []);
/// let trace_id = root.trace_id();
/// tracer.start_span("child", SpanKind::Internal, []).end();
/// root.end();
/// let summary = tracer.get_trace_summary(trace_id).unwrap();
/// assert_eq!(summary.span_count, 2);
/// assert_eq!(summary.operations, ["root", "child"]);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSummary {
    /// The trace.
    pub trace_id: TraceId,
    /// Spans of the trace in the span log.
    pub span_count: usize,
    /// From the earliest start to the latest end, milliseconds.
    pub total_duration_ms: f64,
    /// Spans with `Error` status.
    pub error_count: usize,
    /// Earliest start, Unix seconds.
    pub start_time: f64,
    /// Latest end, Unix seconds.
    pub end_time: f64,
    /// Distinct operation names, in order of first start.
    pub operations: Vec<String>,
}

/// Tracing metrics over the span log plus the counters ([`DistributedTracer::get_metrics`]).
///
/// ```
/// use agentcore_telemetry::{DistributedTracer, SpanKind, SpanStatus, TracerConfig};
/// let tracer = DistributedTracer::new(TracerConfig::default());
/// tracer.start_span("a", SpanKind::Internal, []).finish(SpanStatus::Ok);
/// tracer.start_span("b", SpanKind::Internal, []).finish(SpanStatus::Error);
/// let m = tracer.get_metrics();
/// assert_eq!((m.total_spans, m.error_spans, m.unique_traces), (2, 1, 2));
/// assert_eq!(m.error_rate_percent, 50.0);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct TracingMetrics {
    /// Spans in the span log.
    pub total_spans: usize,
    /// Spans in the span log with `Error` status.
    pub error_spans: usize,
    /// `100 * error_spans / total_spans` (0 when empty).
    pub error_rate_percent: f64,
    /// Distinct trace ids in the span log.
    pub unique_traces: usize,
    /// The configuration's `export_enabled`.
    pub export_enabled: bool,
    /// Sampled spans started (counter).
    pub spans_started: u64,
    /// Sampled spans finished (counter).
    pub spans_finished: u64,
    /// Spans not sampled (counter).
    pub spans_unsampled: u64,
    /// Finished spans dropped on a busy slot (counter).
    pub spans_dropped: u64,
    /// Finished spans overwritten in the span log (counter).
    pub spans_overwritten: u64,
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
    uid: usize,
    config: TracerConfig,
    sampler: Sampler,
    anchor: Anchor,
    log: ShardedRing<SpanRecord>,
    counters: SpanCounters,
}

static NEXT_UID: AtomicUsize = AtomicUsize::new(1);
static NEXT_THREAD_INDEX: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's shard index, handed out round-robin on first use.
    static THREAD_INDEX: Cell<usize> = const { Cell::new(usize::MAX) };
}

#[inline]
fn thread_index() -> usize {
    THREAD_INDEX
        .try_with(|c| {
            let v = c.get();
            if v != usize::MAX {
                return v;
            }
            let v = NEXT_THREAD_INDEX.fetch_add(1, Ordering::Relaxed);
            c.set(v);
            v
        })
        .unwrap_or(0)
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
        let log = ShardedRing::new(config.span_log_capacity, shards);
        DistributedTracer {
            uid: NEXT_UID.fetch_add(1, Ordering::Relaxed),
            sampler: Sampler::ratio(config.sample_ratio),
            anchor: Anchor::now(),
            counters: SpanCounters::new(),
            log,
            config,
        }
    }

    #[inline]
    pub(crate) fn uid(&self) -> usize {
        self.uid
    }

    #[inline]
    pub(crate) fn anchor(&self) -> &Anchor {
        &self.anchor
    }

    #[inline]
    pub(crate) fn limits(&self) -> &SpanLimits {
        &self.config.limits
    }

    /// Claims the span-log slot a starting sampled span builds its record in (see `Rec`).
    #[inline]
    pub(crate) fn claim_slot(&self) -> Option<Claimed<'_, SpanRecord>> {
        // Threads whose process-wide index is below the shard count each own a shard: they
        // advance its cursor without a locked instruction (see `sync::ring`).
        let index = thread_index();
        self.log.claim(index, index < self.log.shard_count())
    }

    #[inline]
    pub(crate) fn now_unix_nano(&self) -> u64 {
        self.anchor.unix_ns(self.anchor.now_ticks())
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
        self.log.capacity()
    }

    /// Starts a trace and makes its root context current on this thread until the returned
    /// guard drops. `trace_id`: `None` for a random id; a 32-digit lowercase hex W3C id is
    /// used as is; any other string is mapped to a deterministic id with
    /// [`TraceId::from_external`] and kept as baggage `trace.external_id`. The sampling
    /// decision is taken here (root decision) and inherited by the trace's spans.
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, TraceId, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// let cx = tracer.start_trace(Some("request-123"), [("user_id", "12345")]);
    /// assert_eq!(cx.trace_id(), TraceId::from_external("request-123"));
    /// assert_eq!(cx.get_baggage("user_id"), Some("12345"));
    /// ```
    pub fn start_trace<K, V>(
        &self,
        trace_id: Option<&str>,
        baggage: impl IntoIterator<Item = (K, V)>,
    ) -> ContextGuard<'_>
    where
        K: Into<String>,
        V: Into<String>,
    {
        let (id, external) = match trace_id {
            None => (TraceId::random(), None),
            Some(s) => match TraceId::from_hex(s) {
                Some(id) => (id, None),
                None => (TraceId::from_external(s), Some(s)),
            },
        };
        let sampled = self.sampler.should_sample(None, id);
        let mut bag: Baggage = baggage
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        if let Some(ext) = external {
            bag.insert(EXTERNAL_ID_KEY.to_owned(), ext.to_owned());
        }
        let bag = (!bag.is_empty()).then(|| Arc::new(bag));
        ContextGuard::attach(self, TraceContext::new(id, None, sampled).with_baggage(bag))
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
        ContextGuard::attach(self, context)
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
        context::current(self.uid)
            .map(|p| TraceContext::new(p.trace_id, p.span_id, p.sampled).with_baggage(p.baggage))
    }

    /// Starts a span, current on this thread until it finishes. Its parent is the current
    /// context (see [`current_context`](Self::current_context)); without one it starts a new
    /// trace. A static `name` and up to [`INLINE_ATTRIBUTES`](super::INLINE_ATTRIBUTES)
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
        let (trace_id, parent_span_id, baggage, sampled) = self.decide(context::current(self.uid));
        // `attributes` goes straight to `Span::start`: passed on through one more inlined
        // layer, the compiler copied the caller's attribute array on entry, with 16-byte
        // loads of data just written with 8-byte stores (store-forwarding stalls: ~12% of a
        // span with 2 attributes in the perf profile).
        Span::start(
            self,
            trace_id,
            SpanId::random(),
            parent_span_id,
            baggage,
            sampled,
            name,
            kind,
            attributes,
        )
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
        self.start_span(name, kind, attributes).detach()
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
        let parent = parent.map(|cx| Parent {
            trace_id: cx.trace_id(),
            span_id: cx.span_id(),
            sampled: cx.is_sampled(),
            baggage: cx.baggage_arc().cloned(),
        });
        let (trace_id, parent_span_id, baggage, sampled) = self.decide(parent);
        Span::start(
            self,
            trace_id,
            SpanId::random(),
            parent_span_id,
            baggage,
            sampled,
            name,
            kind,
            attributes,
        )
    }

    /// A new span's trace, parent, baggage and sampling decision (counted).
    #[inline(always)]
    fn decide(
        &self,
        parent: Option<Parent>,
    ) -> (TraceId, Option<SpanId>, Option<Arc<Baggage>>, bool) {
        let (trace_id, parent_span_id, parent_sampled, baggage) = match parent {
            Some(p) => (p.trace_id, p.span_id, Some(p.sampled), p.baggage),
            None => (TraceId::random(), None, None, None),
        };
        let sampled = self.sampler.should_sample(parent_sampled, trace_id);
        if sampled {
            self.counters.started.inc();
        } else {
            self.counters.unsampled.inc();
        }
        (trace_id, parent_span_id, baggage, sampled)
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
    pub fn record_exception<E: fmt::Display + ?Sized>(
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
    pub fn finish_span(
        &self,
        mut span: impl FinishSpan,
        status: SpanStatus,
        message: Option<&str>,
    ) {
        span.finish_in_place(status, message);
    }

    /// Called when a sampled span finishes: stamps the times into its record (in its
    /// span-log slot), calls the metrics hook, publishes the record (releases the slot) and
    /// counts. Never blocks or allocates. The displaced oldest record (an overwrite) was
    /// already dropped when the slot was claimed; a span that found no free slot (`Lost`)
    /// counts as dropped, as a busy push did.
    #[inline]
    pub(crate) fn record_finished(&self, record: &mut Rec<'_>, start_ticks: u64) {
        let end_ticks = self.anchor.now_ticks();
        let duration_ns = self
            .anchor
            .ticks_to_ns(end_ticks.saturating_sub(start_ticks));
        let (error, outcome) = match record {
            Rec::None => return,
            Rec::Claimed(slot) => {
                let outcome = if slot.overwrote() {
                    Push::Overwrote
                } else {
                    Push::Stored
                };
                match slot.get_mut() {
                    Some(r) => {
                        r.start_time_unix_nano = self.anchor.unix_ns(start_ticks);
                        r.end_time_unix_nano = self.anchor.unix_ns(end_ticks);
                        self.on_span_finished(&r.name, r.status, duration_ns);
                        (r.status == SpanStatus::Error, outcome)
                    }
                    None => (false, outcome), // never: a claimed slot is written at start
                }
            }
            Rec::Lost { name, status } => {
                self.on_span_finished(name, *status, duration_ns);
                (*status == SpanStatus::Error, Push::Busy)
            }
        };
        // Publishes the record: dropping the claim releases the slot.
        *record = Rec::None;
        let c = &self.counters;
        c.finished.inc();
        if error {
            c.errored.inc();
        }
        match outcome {
            Push::Stored => {}
            Push::Overwrote => c.overwritten.inc(),
            Push::Busy => c.dropped.inc(),
        }
    }

    /// The metrics hook: called on every sampled span finish with the operation name, the
    /// final status and the duration; observes `agentcore_tracer_span_duration_seconds` once
    /// the tracer is registered in a registry ([`DistributedTracer::register_metrics`]).
    #[inline]
    fn on_span_finished(&self, name: &str, status: SpanStatus, duration_ns: u64) {
        if let Some(family) = self.counters.duration.get() {
            if let Ok(h) = family.with_label_values(&[name, status.as_str()]) {
                h.observe(duration_ns as f64 * 1e-9);
            }
        }
    }

    /// Exposes the tracer's metrics in `registry`: `agentcore_tracer_spans_started_total`,
    /// `_finished_total`, `_errored_total`, `_unsampled_total`,
    /// `agentcore_tracer_spans_dropped_total{reason="overwritten"|"busy"}` (the same per-thread
    /// counters [`DistributedTracer::stats`] reads, merged lazily at scrape time) and the
    /// histogram `agentcore_tracer_span_duration_seconds{operation, status}`, capped at
    /// [`TracerConfig::max_operations`] operation/status pairs (more fold into the overflow
    /// series). Register a tracer in one registry; registering it again in the same registry
    /// is a no-op.
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
        self.counters.register(registry, self.config.max_operations)
    }

    /// The counters (summed over threads; a snapshot taken while spans run may miss the
    /// latest increments).
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig { sample_ratio: 0.0, ..Default::default() });
    /// tracer.start_span("op", SpanKind::Internal, []).end();
    /// assert_eq!(tracer.stats().spans_unsampled, 1);
    /// assert_eq!(tracer.stats().spans_started, 0);
    /// ```
    pub fn stats(&self) -> TracerStats {
        let c = &self.counters;
        let n = |counter: &crate::Counter| counter.parts().0;
        TracerStats {
            spans_started: n(&c.started),
            spans_finished: n(&c.finished),
            spans_errored: n(&c.errored),
            spans_unsampled: n(&c.unsampled),
            spans_dropped: n(&c.dropped),
            spans_overwritten: n(&c.overwritten),
        }
    }

    /// All spans of trace `trace_id` in the span log, sorted by start time. Reads the log
    /// slot by slot without stopping recorders.
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, SpanKind, TraceId, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// let _trace = tracer.start_trace(Some("trace-123"), [("k", "v")]);
    /// tracer.start_span("a", SpanKind::Internal, []).end();
    /// tracer.start_span("b", SpanKind::Internal, []).end();
    /// let spans = tracer.get_trace_spans(TraceId::from_external("trace-123"));
    /// assert_eq!(spans.iter().map(|s| &*s.name).collect::<Vec<_>>(), ["a", "b"]);
    /// ```
    pub fn get_trace_spans(&self, trace_id: TraceId) -> Vec<SpanRecord> {
        let mut spans = Vec::new();
        self.log.for_each(|r| {
            if r.trace_id == trace_id {
                spans.push(r.clone());
            }
        });
        spans.sort_by_key(|r| (r.start_time_unix_nano, r.end_time_unix_nano));
        spans
    }

    /// The span `span_id` from the span log, if still there.
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, SpanId, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// assert!(tracer.get_span_by_id(SpanId::random()).is_none());
    /// ```
    pub fn get_span_by_id(&self, span_id: SpanId) -> Option<SpanRecord> {
        let mut found = None;
        self.log.for_each(|r| {
            if found.is_none() && r.span_id == span_id {
                found = Some(r.clone());
            }
        });
        found
    }

    /// A summary of trace `trace_id`, or `None` if none of its spans is in the span log.
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, SpanKind, SpanStatus, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// let span = tracer.start_span("op", SpanKind::Internal, []);
    /// let trace_id = span.trace_id();
    /// span.finish(SpanStatus::Error);
    /// let s = tracer.get_trace_summary(trace_id).unwrap();
    /// assert_eq!((s.span_count, s.error_count), (1, 1));
    /// assert!(s.end_time >= s.start_time);
    /// ```
    pub fn get_trace_summary(&self, trace_id: TraceId) -> Option<TraceSummary> {
        let spans = self.get_trace_spans(trace_id);
        let start = spans.iter().map(|s| s.start_time_unix_nano).min()?;
        let end = spans.iter().map(|s| s.end_time_unix_nano).max()?;
        let mut operations: Vec<String> = Vec::new();
        for s in &spans {
            if !operations.iter().any(|o| *o == s.name) {
                operations.push(s.name.to_string());
            }
        }
        Some(TraceSummary {
            trace_id,
            span_count: spans.len(),
            total_duration_ms: end.saturating_sub(start) as f64 / 1e6,
            error_count: spans
                .iter()
                .filter(|s| s.status == SpanStatus::Error)
                .count(),
            start_time: start as f64 / 1e9,
            end_time: end as f64 / 1e9,
            operations,
        })
    }

    /// Metrics over the span log plus the counters.
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, TracerConfig};
    /// let m = DistributedTracer::new(TracerConfig { export_enabled: true, ..Default::default() }).get_metrics();
    /// assert_eq!((m.total_spans, m.error_rate_percent, m.export_enabled), (0, 0.0, true));
    /// ```
    pub fn get_metrics(&self) -> TracingMetrics {
        let (mut total, mut errors) = (0usize, 0usize);
        let mut traces = HashSet::new();
        self.log.for_each(|r| {
            total += 1;
            if r.status == SpanStatus::Error {
                errors += 1;
            }
            traces.insert(r.trace_id);
        });
        let stats = self.stats();
        TracingMetrics {
            total_spans: total,
            error_spans: errors,
            error_rate_percent: if total == 0 {
                0.0
            } else {
                errors as f64 * 100.0 / total as f64
            },
            unique_traces: traces.len(),
            export_enabled: self.config.export_enabled,
            spans_started: stats.spans_started,
            spans_finished: stats.spans_finished,
            spans_unsampled: stats.spans_unsampled,
            spans_dropped: stats.spans_dropped,
            spans_overwritten: stats.spans_overwritten,
        }
    }

    /// Spans per operation name in the span log (a small helper for dashboards and tests).
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// tracer.start_span("a", SpanKind::Internal, []).end();
    /// tracer.start_span("a", SpanKind::Internal, []).end();
    /// assert_eq!(tracer.operation_counts()["a"], 2);
    /// ```
    pub fn operation_counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        self.log.for_each(|r| {
            *counts.entry(r.name.to_string()).or_insert(0) += 1;
        });
        counts
    }
}

impl fmt::Debug for DistributedTracer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DistributedTracer")
            .field("config", &self.config)
            .field("span_log", &self.log)
            .finish()
    }
}

static GLOBAL: OnceLock<DistributedTracer> = OnceLock::new();

/// The process-wide tracer, created on first use with [`TracerConfig::default`] (or the
/// configuration given to [`init_distributed_tracer`] before that).
///
/// ```
/// use agentcore_telemetry::get_distributed_tracer;
/// assert!(std::ptr::eq(get_distributed_tracer(), get_distributed_tracer()));
/// ```
pub fn get_distributed_tracer() -> &'static DistributedTracer {
    GLOBAL.get_or_init(|| DistributedTracer::new(TracerConfig::default()))
}

/// Configures the global tracer; returns `false` (and changes nothing) if it already exists.
///
/// ```
/// use agentcore_telemetry::{get_distributed_tracer, init_distributed_tracer, TracerConfig};
/// let _ = init_distributed_tracer(TracerConfig { service_name: "agent-runtime".into(), ..Default::default() });
/// assert!(!init_distributed_tracer(TracerConfig::default()));
/// assert_eq!(get_distributed_tracer().config().service_name, "agent-runtime");
/// ```
pub fn init_distributed_tracer(config: TracerConfig) -> bool {
    let mut created = false;
    GLOBAL.get_or_init(|| {
        created = true;
        DistributedTracer::new(config)
    });
    created
}
