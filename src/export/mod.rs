//! Span export: finished spans leave the process, by OTLP/HTTP (protobuf or JSON) to an
//! OpenTelemetry Collector, Jaeger ≥ 1.35 or Grafana Tempo, or as OTLP JSON lines on
//! standard output. (*Export* is push; the pull `/metrics` endpoint is [`serve`](crate#modules)'s
//! `MetricsServer`, a different thing.)
//!
//! # The pipeline
//!
//! ```text
//!  recording threads          exporter thread ("agentcore-span-export")
//!  ─────────────────          ──────────────────────────────────────────
//!  finish span ──► span log ══► SpanSource::drain ──► SpanExporter::add (encode in place)
//!  (no lock, no allocation,     (polled; oldest first)        │
//!   no notification)                                          ▼
//!                                                 SpanExporter::export ──► POST /v1/traces
//!                                                 (retries, deadline)       (keep-alive)
//! ```
//!
//! * **The queue is the span log.** Recording threads write finished spans into it and
//!   nothing else; they never learn an exporter exists. The exporter thread drains it
//!   through [`SpanSource`] (whose documentation states the exactly-once
//!   contract), encoding each span straight from the borrowed record into a reused buffer
//!   ([`otlp::OtlpEncoder`]): no clone, no per-span allocation.
//! * **The batch span processor** ([`BatchSpanProcessor`], [`BatchConfig`]) follows the
//!   OpenTelemetry rules: export when a batch is full (`max_export_batch_size`, 512), when
//!   the schedule delay (5 s) has passed, or on flush; never two exports at once; a bounded
//!   queue (2048) whose overflow is counted. It runs on its own OS thread: no async runtime
//!   needed, none can be missing.
//! * **Exporters** implement [`SpanExporter`]: [`otlp::OtlpHttpExporter`] (the OTLP
//!   transport rules: retry only 429/502/503/504 and connection failures, exponential
//!   backoff with jitter or `Retry-After`, partial success counted as rejected and never
//!   retried, 4 MiB response cap, 20 MiB request cap with splitting, keep-alive),
//!   [`ConsoleSpanExporter`] and, for tests, [`InMemorySpanExporter`].
//! * **Deadlines.** [`BatchSpanProcessor::force_flush`] and
//!   [`BatchSpanProcessor::shutdown`] return by their deadline whatever the collector does
//!   (hung, slow, refusing); every socket operation waits at most 50 ms before looking at
//!   the deadline again.
//! * **Configuration** by the standard `OTEL_*` variables ([`ExportConfig::from_env`],
//!   [`VARIABLES`]), every setting a public field to override in code.
//! * **Self-observability** ([`ExportStats`], [`BatchSpanProcessor::register_metrics`]):
//!   the OpenTelemetry SDK self-metrics, Prometheus-spelled.
//!
//! # Self-metrics
//!
//! | Prometheus family | meaning |
//! |---|---|
//! | `otel_sdk_processor_span_queue_size` | spans waiting (gauge) |
//! | `otel_sdk_processor_span_queue_capacity` | `max_queue_size` (gauge) |
//! | `otel_sdk_processor_span_processed_total{error_type}` | handed to the exporter (`""`) or dropped (`queue_full`, `overwritten`, `shutdown`) |
//! | `otel_sdk_exporter_span_inflight` | spans in the export under way (gauge) |
//! | `otel_sdk_exporter_span_exported_total{error_type}` | exported (`""`), rejected (`rejected`) or failed (`timeout`, `connection`, `400`, ...) |
//! | `otel_sdk_exporter_operation_duration_seconds{error_type}` | one export, retries included (histogram) |
//! | `agentcore_telemetry_export_connect_thread_cap_total` | connection attempts not started: the process-wide cap on connection threads was reached (attempts, not spans; their spans count as failed `connection` if no retry delivered them) |
//!
//! All carry `otel_component_type` and `otel_component_name`. A processor's series leave the
//! registries they were registered in when the processor is dropped (a tracer drops its
//! processor when export starts again, or with the tracer): each start names a new
//! component, whose series would otherwise stay, frozen, for good.
//!
//! # Example
//!
//! ```no_run
//! use agentcore_telemetry::export::{ExportConfig, MemorySpanSource};
//! use std::time::Duration;
//!
//! // OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 OTEL_SERVICE_NAME=agent-runtime ...
//! let from_env = ExportConfig::from_env()?;
//! for warning in &from_env.warnings {
//!     eprintln!("ignored: {warning}");
//! }
//! let source = MemorySpanSource::new(4096); // the tracer's span log, once wired
//! if let Some(processor) = from_env.config.start(source.clone(), Some("agentcore"))? {
//!     // ... record spans ...
//!     processor.shutdown(Duration::from_secs(5))?;
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod batch;
mod config;
mod config_error;
mod console;
mod exporter;
mod memory;
mod metrics;
pub mod otlp;
mod percent;
mod redact;
mod resource;
mod source;

pub use batch::{BatchConfig, BatchSpanProcessor};
pub use config::{ExportConfig, FromEnv, StartError, TracesExporter, VARIABLES};
pub use config_error::ConfigError;
pub use console::ConsoleSpanExporter;
pub use exporter::{Deadline, ExportError, ExportOutcome, SpanExporter};
pub use memory::{InMemorySpanExporter, MemoryAnswer};
pub use metrics::ExportStats;
pub use resource::{Resource, SCOPE_NAME, SDK_VERSION};
pub use source::{Drained, ExportSpan, MemorySpanSource, SpanSource};
