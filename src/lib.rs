//! # agentcore-telemetry
//!
//! Metrics and distributed traces for an agent runtime, through a lock-free, allocation-free
//! hot path.
//!
//! The layout follows the architecture, bottom to top (each module uses only those above it in
//! this list; `.ci/module-graph` checks that no two modules import each other):
//!
//! * `sync` (crate-private): the lock-free building blocks (slot arena, hazard eras, span ring);
//! * [`exposition`]: the Prometheus text 0.0.4 and OpenMetrics 1.0 formats, the family
//!   [`MetricKind`] and [`Descriptor`](registry::Descriptor) they encode, and the name rules;
//! * [`primitives`]: the metric types ([`Counter`], [`Gauge`], [`Histogram`], [`Summary`],
//!   [`Info`]), recording into the slot arena;
//! * [`registry`]: label families, series maps, cardinality caps and the [`Registry`], which
//!   calls the encoders ([`Registry::encode_text`]);
//! * [`propagation`]: W3C `traceparent`, `tracestate` and `baggage`;
//! * [`agent`]: the specification's metrics facade, [`MetricsCollector`];
//! * [`tracer`]: the tracing machinery: spans, the current context per thread and per future,
//!   sampling, the span log;
//! * `serve` (feature `http-server`): the `/metrics` HTTP server;
//! * `export` (feature `otlp`): span export by OTLP/HTTP, its batch span processor and the
//!   `OTEL_*` configuration;
//! * [`distributed`]: the specification's tracing facade, [`DistributedTracer`], over the
//!   tracer and (with `otlp`) its export, with the span-log queries and the global instance;
//! * `pushgateway` (feature `pushgateway`): pushing a registry to a Prometheus Pushgateway;
//! * `bridge` (features `tracing-bridge`, `metrics-bridge`, off by default): a
//!   `tracing_subscriber::Layer` and a `metrics::Recorder` feeding the tracer and a registry.
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
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]
#![deny(unsafe_op_in_unsafe_fn)]
// Every `unsafe` block carries its `// SAFETY:` argument, every `unsafe fn` its `# Safety`
// contract (CI runs clippy with `-D warnings`).
#![warn(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]
#![warn(unreachable_pub, missing_debug_implementations)]

mod sync;

pub mod agent;
#[cfg(any(feature = "tracing-bridge", feature = "metrics-bridge"))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "tracing-bridge", feature = "metrics-bridge")))
)]
pub mod bridge;
pub mod distributed;
mod env;
pub mod error;
#[cfg(feature = "otlp")]
#[cfg_attr(docsrs, doc(cfg(feature = "otlp")))]
pub mod export;
pub mod exposition;
#[cfg(any(feature = "pushgateway", feature = "otlp", feature = "http-server"))]
mod net;
pub mod primitives;
pub mod propagation;
#[cfg(feature = "pushgateway")]
#[cfg_attr(docsrs, doc(cfg(feature = "pushgateway")))]
pub mod pushgateway;
pub mod registry;
#[cfg(feature = "http-server")]
#[cfg_attr(docsrs, doc(cfg(feature = "http-server")))]
pub mod serve;
pub mod tracer;
mod unwind;
mod user_fmt;

#[cfg(all(test, agentcore_loom))]
mod loom;

#[cfg(feature = "system-monitor")]
pub use agent::SystemMonitor;
pub use agent::{
    get_metrics_collector, AgentPhilosophy, CollectorConfig, CustomMetric, MetricType,
    MetricsCollector, MetricsSnapshot,
};
pub use agentcore_telemetry_macros::trace_operation;
pub use distributed::{
    get_distributed_tracer, init_distributed_tracer, DistributedTracer, TraceSummary, TracerConfig,
    TracingMetrics,
};
pub use error::Error;
pub use exposition::CONTENT_TYPE;
pub use primitives::{Buckets, Counter, Exemplars, Gauge, Histogram, Info, Summary, SummaryConfig};
pub use registry::{Family, MetricKind, Registry, SeriesRef};
#[cfg(feature = "http-server")]
pub use serve::{ExpositionSource, MetricsServer, ServerConfig};
pub use tracer::{
    ContextGuard, DetachedContext, DetachedSpan, FutureExt, Instrumented, KeyValue, Sampler, Span,
    SpanId, SpanKind, SpanLimits, SpanRecord, SpanStatus, TraceContext, TraceId, TracerStats,
    Value, WithContext,
};

/// The README's examples, compiled and run as doc tests so they stay true. The README documents
/// the default build, so they run when its features are on.
#[cfg(all(
    doctest,
    feature = "http-server",
    feature = "serde",
    feature = "system-monitor",
    feature = "otlp",
    feature = "pushgateway"
))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
