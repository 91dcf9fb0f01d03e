//! The tracing machinery: spans with W3C-sized ids, a current context per thread and per
//! future, sampling, and a fixed-capacity, sharded span log. The specification's facade over
//! it, [`DistributedTracer`](crate::DistributedTracer) (with the trace queries, the global
//! instance and span export), is [`crate::distributed`].
//!
//! # In async code
//!
//! A future's context must be current while *that future* runs, on whatever thread, and never
//! while another one runs there. So in `async` code, start traces and spans *detached*
//! ([`DistributedTracer::start_detached_trace`](crate::DistributedTracer::start_detached_trace),
//! [`DistributedTracer::start_detached_span`](crate::DistributedTracer::start_detached_span):
//! `Send`, current nowhere) and run futures in them with [`FutureExt`]: `in_span(span)` (the
//! future runs in the span, which finishes with it), `in_context(trace)` or `in_context(&span)`
//! (runs in a context it does not own), `in_current_context()` (carries the context of where it
//! was created, for `tokio::spawn` and each branch of a `join!`). `#[trace_operation]` on an
//! `async fn` does this itself, and continues its caller's trace even when spawned.
//!
//! ```
//! use agentcore_telemetry::{get_distributed_tracer, trace_operation, FutureExt, SpanKind, SpanStatus};
//!
//! #[trace_operation(name = "execute_tool", kind = SpanKind::Client)]
//! async fn execute_tool(tool_id: &str) -> std::io::Result<f64> {
//!     tokio::task::yield_now().await;
//!     Ok(if tool_id == "calculator" { 0.25 } else { 1.0 })
//! }
//!
//! async fn create_and_run_agent(agent: u32) -> std::io::Result<()> {
//!     let tracer = get_distributed_tracer();
//!     let trace = tracer.start_detached_trace(Some(&format!("agent-{agent}")), [("tenant", "acme")]);
//!     async {
//!         let exec = tracer.start_detached_span("execute_agent", SpanKind::Internal, []);
//!         execute_tool("calculator").in_context(&exec).await?; // a child of execute_agent
//!         tracer.finish_span(exec, SpanStatus::Ok, None);
//!         Ok(())
//!     }
//!     .in_context(trace)
//!     .await
//! }
//!
//! # let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
//! # rt.block_on(async {
//! let (a, b) = tokio::join!(create_and_run_agent(1), tokio::spawn(create_and_run_agent(2)));
//! a.unwrap();
//! b.unwrap().unwrap();
//! # });
//! let spans = get_distributed_tracer().get_trace_spans(agentcore_telemetry::TraceId::from_external("agent-1"));
//! assert_eq!(spans.len(), 2);
//! assert_eq!(spans[1].parent_span_id, Some(spans[0].span_id));
//! ```
//!
//! The specification's synchronous style (`start_trace`, `start_span`, both current on the
//! thread until they drop) is right in synchronous code, and inside a context scope (any of
//! the wrappers above) also across `.await`. Held across `.await` in a spawned task it does not
//! compile (`!Send`); held across `.await` outside a scope, under `join!` or on a
//! current-thread runtime, it stays current while the other futures run there. That is
//! detected when it ends if a span or guard of another trace, left by another future the same
//! way, is current above it then (futures that each hold their trace across `.await`, as the
//! specification's lifecycle does): counted in [`TracerStats`] and
//! `agentcore_tracer_context_misuse_total`, and reported once on standard error. It is not
//! detected when the other future only starts and ends spans between two of its polls,
//! without a trace of its own: those silently become children of the held span (a limit of a
//! thread-local context, which cannot see a poll end; `tests/tracer_misuse.rs`). Run each
//! concurrent future in a scope. A `Span`
//! returned from a scoped future stays current for the caller, as one returned from a function
//! does; one moved out of a scoped future and ended elsewhere is not a parent there again
//! (`current.rs`, "Frames that leave their scope", has the rules and their limits).
//!
//! # Design
//!
//! * **Spans** ([`Span`], current on its thread and `!Send`; [`DetachedSpan`], movable) are
//!   small handles pointing at their tracer's core; a sampled span's record is built in place
//!   in the span-log slot it claims when it starts (locked until it finishes, so readers skip
//!   it), never copied. A static name and up to [`INLINE_ATTRIBUTES`] attributes,
//!   [`INLINE_EVENTS`] events and [`INLINE_LINKS`] links cost no allocation. Per-span
//!   [`SpanLimits`] (OpenTelemetry's 128 defaults) cap them, counting what is dropped.
//!   Dropping an unfinished span finishes it (status Unset; `Error` during a panic). A panic
//!   while a span starts leaves nothing behind.
//! * **Context**: a thread-local stack of frames tagged with the tracer's id (so independent
//!   tracers never mix); finishing a span removes its frame wherever it is, so its parent
//!   becomes current again even out of order. Future wrappers ([`Instrumented`],
//!   [`WithContext`]) are *context scopes*: they put their frames on the stack for each poll
//!   and take back what is still open when the poll returns, so a span held across `.await`
//!   comes back with its future (`current.rs` has the invariants).
//! * **Sampling**: [`Sampler`] (OpenTelemetry's built-in samplers, `OTEL_TRACES_SAMPLER`).
//!   An unsampled span has no record but still a frame, so its whole subtree is unsampled and
//!   shares its trace id. Its start takes a branch of its own (`Span::start`): ids, the
//!   decision, one counter increment and the frame; no name conversion, attributes, record or
//!   clock read. With 2 attributes and an event it is about 190 instructions (callgrind,
//!   `profile_driver`'s `span_unsampled`, default release profile, 2026-12-02, tree 884b60a),
//!   of which the driver's loop is about 30: the ids (three 64-bit draws, ~34), the context
//!   lookup (~11), the frame's push and pop (~73, with the exemplar cache's updates), the
//!   span built, moved and finished (~25).
//! * **Span log**: a sharded ring (`sync::ring`), fixed capacity ([`DEFAULT_SPAN_LOG_CAPACITY`](crate::distributed::DEFAULT_SPAN_LOG_CAPACITY)), sharded
//!   by thread, per-slot try-locks: recording never blocks or allocates; overwrites and
//!   busy-slot drops are counted (a span that finds `CLAIM_ATTEMPTS` (4) busy slots in a row
//!   records nothing and counts as dropped). Queries copy matching records out slot by
//!   slot. Open spans hold slots: a span left open for long keeps one slot locked.
//! * **Clock**: TSC ticks (invariant TSC on x86_64 Linux) or `Instant`, converted to Unix
//!   nanoseconds with a wall-clock anchor per tracer, taken again every 100 ms with the TSC's
//!   rate measured again over the process's life (lock-free `(offset, rate)` pair).
//! * **Counters** ([`TracerStats`]): per-thread single-writer blocks, no locked
//!   instructions on the hot path.
//!
//! Cost (`benches/README.md` has the runs): a span started with a static name, 2 attributes
//! and 1 event, then finished, is about 570 instructions (callgrind, `profile_driver`'s
//! `span_basic`, default release profile, 2026-12-06, tree 189f719; 676 on 2026-12-02) and
//! allocates nothing (`tests/tracer_alloc.rs`);
//! on the 2-vCPU AMD EPYC of the 2026-11-30 comparison (32 KiB L1d, 512 KiB L2 per core)
//! the build of that day took 277 ns of CPU, against 149 ns for `tracing` with a bare `Registry` (which keeps
//! neither the attribute values nor the event) and 1.48 µs for fastrace. Where the
//! instructions go: the record's inline arrays written in place, the slot claim's locked
//! `cmpxchg`, context push and removal, ids, three clock reads, counters.
//!
//! In synchronous code:
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
pub(crate) mod exception;
pub(crate) mod id;
mod limits;
mod record;
// The machinery: clock, sampling, counters, the core the handles point at.
pub(crate) mod clock;
pub(crate) mod core;
mod sampler;
mod stats;
mod thread_index;
// Context: the value, the thread-local current one, W3C headers.
pub(crate) mod context;
pub(crate) mod current;
mod w3c;
// The handles.
pub(crate) mod guard;
pub(crate) mod instrument;
pub(crate) mod span;
// (The specification's facade, `DistributedTracer`, drives these from `crate::distributed`;
// the modules it reaches into are `pub(crate)` above.)
// Misuse the type system refuses (compile_fail doc tests).
#[cfg(doctest)]
mod compile_fail;

pub use attribute::{KeyValue, Value};
pub use context::{
    Baggage, ContextMapError, IntoBaggage, TraceContext, BAGGAGE_PREFIX, BAGGAGE_PROPERTIES_PREFIX,
    EXTERNAL_ID_KEY, KEY_RANDOM_TRACE_ID, KEY_SAMPLED, KEY_SPAN_ID, KEY_TRACE_ID, KEY_TRACE_STATE,
};
pub use guard::{ContextGuard, DetachedContext};
pub use id::{SpanId, ToSpanId, ToTraceId, TraceId, EXTERNAL_SPAN_ID_KEY};
pub use instrument::{ContextSource, FutureExt, Instrumented, WithContext};
pub use limits::{SpanLimits, SpanLimitsFromEnv, SPAN_LIMIT_VARIABLES};
pub use record::{
    Event, Link, SpanKind, SpanRecord, SpanStatus, INLINE_ATTRIBUTES, INLINE_EVENTS,
    INLINE_EVENT_ATTRIBUTES, INLINE_LINKS, INLINE_LINK_ATTRIBUTES,
};
pub use sampler::{Sampler, SamplerFromEnv, SAMPLER_VARIABLES};
pub use span::{DetachedSpan, FinishSpan, Span};
pub use stats::TracerStats;
pub use w3c::TRACESTATE_EMIT_MAX_BYTES;

/// Support for `#[trace_operation]`; not part of the stable API.
#[doc(hidden)]
///
/// ```
/// use agentcore_telemetry::tracer::__private::NoHook;
/// let _ = NoHook;
/// ```
pub mod __private {
    pub use super::instrument::{NoHook, OnReady};
}
