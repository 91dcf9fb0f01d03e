//! # agentcore-telemetry
//!
//! Metrics and distributed traces for an agent runtime, through a lock-free, allocation-free
//! hot path.
//!
//! The layout follows the architecture, bottom to top:
//!
//! * [`primitives`]: the metric types ([`Counter`], [`Gauge`], [`Histogram`], [`Summary`],
//!   [`Info`]) and the per-thread slot arena they record into;
//! * [`registry`]: label families, series maps, cardinality caps and the [`Registry`];
//! * [`encoder`]: the hand-written Prometheus text encoder behind [`Registry::encode_text`].
//!
//! ```
//! use agentcore_telemetry::Registry;
//!
//! let registry = Registry::new();
//! let calls = registry
//!     .counter_family("tool_calls_total", "Tool calls.", &["tool_id", "status"])
//!     .unwrap();
//! calls.with_label_values(&["calculator", "success"]).unwrap().inc();
//! let text = registry.encode_text();
//! assert!(text.contains("tool_calls_total{tool_id=\"calculator\",status=\"success\"} 1\n"));
//! ```
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

mod sync;

pub mod collector;
pub mod encoder;
pub mod error;
#[cfg(feature = "exporter")]
pub mod exporter;
pub mod primitives;
pub mod propagation;
pub mod registry;
pub mod tracer;

pub use agentcore_telemetry_macros::trace_operation;
pub use collector::{
    get_metrics_collector, AgentPhilosophy, CollectorConfig, CustomMetric, MetricType,
    MetricsCollector, MetricsSnapshot, SystemMonitor,
};
pub use encoder::CONTENT_TYPE;
pub use error::Error;
#[cfg(feature = "exporter")]
pub use exporter::{ExporterConfig, ExpositionSource, MetricsExporter};
pub use primitives::{Buckets, Counter, Gauge, Histogram, Info, Summary, SummaryConfig};
pub use registry::{Family, MetricKind, Registry, SeriesRef};
pub use tracer::{
    get_distributed_tracer, init_distributed_tracer, ContextGuard, DetachedSpan, DistributedTracer,
    FutureExt, Instrumented, KeyValue, Sampler, Span, SpanId, SpanKind, SpanLimits, SpanRecord,
    SpanStatus, TraceContext, TraceId, TraceSummary, TracerConfig, TracerStats, TracingMetrics,
    Value,
};

/// The README's examples, compiled and run as doc tests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
