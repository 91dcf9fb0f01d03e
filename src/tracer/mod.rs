//! Distributed tracing: spans with W3C-sized ids, a thread-local (and per-poll, for
//! futures) current context, parent-based ratio sampling, and a fixed-capacity, sharded
//! span log with trace queries.
//!
//! # Design
//!
//! * **Spans** ([`Span`], current on its thread and `!Send`; [`DetachedSpan`], movable) are
//!   small handles; a sampled span's record is built in place in the span-log slot it
//!   claims when it starts (locked until it finishes, so readers skip it), never copied.
//!   A static name and up to [`INLINE_ATTRIBUTES`] attributes,
//!   [`INLINE_EVENTS`] events and [`INLINE_LINKS`] links cost no allocation. Per-span
//!   [`SpanLimits`] (OpenTelemetry's 128 defaults) cap them, counting what is dropped.
//!   Dropping an unfinished span finishes it (status Unset; `Error` during a panic).
//! * **Context**: a thread-local stack of frames tagged with the tracer's id (so independent
//!   tracers never mix); finishing a span removes its frame wherever it is, so its parent
//!   becomes current again even out of order. [`Instrumented`] pushes its span's frame for
//!   each poll only, which keeps parents right across `.await` on any worker thread.
//! * **Sampling**: [`Sampler`] (parent-based, trace-id ratio). An unsampled span has no
//!   record but still a frame, so its whole subtree is unsampled and shares its trace id.
//! * **Span log**: a sharded ring (`sync::ring`), fixed capacity ([`DEFAULT_SPAN_LOG_CAPACITY`]), sharded
//!   by thread, per-slot try-locks: recording never blocks or allocates; overwrites and
//!   busy-slot drops are counted (a span that finds `CLAIM_ATTEMPTS` (4) busy slots in a row
//!   records nothing and counts as dropped). Queries copy matching records out slot by
//!   slot. Open spans hold slots: a span left open for long keeps one slot locked.
//! * **Clock**: TSC ticks (invariant TSC on x86_64 Linux) or `Instant`, converted to Unix
//!   nanoseconds with one wall-clock anchor per tracer.
//! * **Counters** ([`TracerStats`]): per-thread single-writer blocks, no locked
//!   instructions on the hot path.
//!
//! Measured on the project's 2-vCPU VM (release, on-CPU time per span from
//! `/proc/thread-self/schedstat`, 7 rounds of 10 million, best / median, on a shared
//! machine): start with a static name and 2 attributes + 1 event + finish ≈ 55 / 56 ns
//! (≈ 930 instructions under callgrind); start + finish ≈ 28 ns; unsampled start + finish
//! ≈ 10 ns (≈ 18 ns with 2 attributes to build and drop); zero allocations on all of them
//! (`tests/tracer_alloc.rs`). Each `rdtsc` costs ≈ 9.5 ns here (throughput), but in the
//! full case the three reads mostly overlap other work (≈ 3 ns in total). The rest is
//! spread thin: the slot claim's locked `cmpxchg` (≈ 10% of the full case in a
//! `perf record -e cpu-clock` profile), store-forwarding stalls moving the caller's
//! attributes and the event into the record (≈ 25%), context push/remove, ids, counters.
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

// The data model and its parts.
mod attribute;
mod id;
mod limits;
mod record;
// The machinery: clock, sampling, counters, the core the handles point at.
mod clock;
mod core;
mod sampler;
mod stats;
// Context: the value, the thread-local current one, W3C headers.
mod context;
mod current;
mod w3c;
// The handles.
mod instrument;
mod span;
// The specification's facade.
mod distributed;
mod global;
mod query;
// Misuse the type system refuses (compile_fail doc tests).
#[cfg(doctest)]
mod compile_fail;

pub use attribute::{KeyValue, Value};
pub use context::{
    Baggage, TraceContext, BAGGAGE_PREFIX, EXTERNAL_ID_KEY, KEY_SAMPLED, KEY_SPAN_ID, KEY_TRACE_ID,
};
pub use current::ContextGuard;
pub use distributed::{DistributedTracer, TracerConfig, DEFAULT_SPAN_LOG_CAPACITY};
pub use global::{get_distributed_tracer, init_distributed_tracer};
pub use id::{SpanId, TraceId};
pub use instrument::{FutureExt, Instrumented};
pub use limits::SpanLimits;
pub use query::{TraceSummary, TracingMetrics};
pub use record::{
    Event, Link, SpanKind, SpanRecord, SpanStatus, INLINE_ATTRIBUTES, INLINE_EVENTS,
    INLINE_EVENT_ATTRIBUTES, INLINE_LINKS, INLINE_LINK_ATTRIBUTES,
};
pub use sampler::Sampler;
pub use span::{DetachedSpan, FinishSpan, Span};
pub use stats::TracerStats;

/// Support for `#[trace_operation]`; not part of the stable API.
#[doc(hidden)]
///
/// ```
/// use agentcore_telemetry::tracer::__private::NoHook;
/// let _ = NoHook;
/// ```
pub mod __private {
    pub use super::instrument::{record_err, MarkOk, NoHook, OkOnReturn, OnReady, RecordErr};
}
