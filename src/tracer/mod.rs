//! Distributed tracing: spans with W3C-sized ids, a thread-local (and per-poll, for
//! futures) current context, parent-based ratio sampling, and a fixed-capacity, sharded
//! span log with trace queries.
//!
//! Hot path: starting a span with a static name and up to [`INLINE_ATTRIBUTES`] attributes,
//! adding up to [`INLINE_EVENTS`] events and finishing it allocate nothing; the finished
//! record is moved into a preallocated span log slot. An unsampled span records nothing.
//!
//! ```
//! use agentcore_telemetry::{get_distributed_tracer, KeyValue, SpanKind, SpanStatus};
//!
//! let tracer = get_distributed_tracer();
//! let trace = tracer.start_trace(Some("request-123"), [("user_id", "12345")]);
//! let parent = tracer.start_span("agent_lifecycle", SpanKind::Internal, []);
//! let mut child = tracer.start_span("initialize_container", SpanKind::Internal, [KeyValue::new("image", "python")]);
//! child.add_event("pulled", []);
//! tracer.finish_span(child, SpanStatus::Ok, None);
//! tracer.finish_span(parent, SpanStatus::Ok, None);
//! let summary = tracer.get_trace_summary(trace.trace_id()).unwrap();
//! assert_eq!(summary.span_count, 2);
//! ```

mod attribute;
mod clock;
mod context;
mod counters;
mod id;
mod instrument;
mod sampler;
mod span;
mod span_log;
#[allow(clippy::module_inception)]
mod tracer;

pub use attribute::{KeyValue, Value};
pub use context::{
    Baggage, ContextGuard, TraceContext, BAGGAGE_PREFIX, EXTERNAL_ID_KEY, KEY_SAMPLED, KEY_SPAN_ID,
    KEY_TRACE_ID,
};
pub use id::{SpanId, TraceId};
pub use instrument::{FutureExt, Instrumented};
pub use sampler::Sampler;
pub use span::{
    DetachedSpan, Event, FinishSpan, Link, Span, SpanKind, SpanLimits, SpanRecord, SpanStatus,
    INLINE_ATTRIBUTES, INLINE_EVENTS, INLINE_EVENT_ATTRIBUTES, INLINE_LINKS,
    INLINE_LINK_ATTRIBUTES,
};
#[doc(hidden)]
pub use span_log::{Push, ShardedRing};
pub use tracer::{
    get_distributed_tracer, init_distributed_tracer, DistributedTracer, TraceSummary, TracerConfig,
    TracerStats, TracingMetrics, DEFAULT_SPAN_LOG_CAPACITY,
};

/// Support for `#[trace_operation]`; not part of the stable API.
#[doc(hidden)]
///
/// ```
/// use agentcore_telemetry::tracer::__private::NoHook;
/// let _ = NoHook;
/// ```
pub mod __private {
    pub use super::instrument::{record_err, MarkOk, NoHook, OnReady, RecordErr};
}
