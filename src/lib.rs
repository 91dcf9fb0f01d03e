//! # agentcore-telemetry
//!
//! Metrics and distributed traces for an agent runtime, through a lock-free, allocation-free
//! hot path.
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

#[allow(unused_imports)] // the tracer uses the atomics; the metrics core uses the rest
mod sync;

pub mod tracer;

pub use agentcore_telemetry_macros::trace_operation;
pub use tracer::{
    get_distributed_tracer, init_distributed_tracer, ContextGuard, DetachedSpan, DistributedTracer,
    FutureExt, Instrumented, KeyValue, Sampler, Span, SpanId, SpanKind, SpanLimits, SpanRecord,
    SpanStatus, TraceContext, TraceId, TraceSummary, TracerConfig, TracerStats, TracingMetrics,
    Value,
};
