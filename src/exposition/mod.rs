//! Exposition formats: the hand-written Prometheus text format 0.0.4 encoder behind
//! [`Registry::encode_text`](crate::Registry::encode_text), and the OpenMetrics 1.0 text encoder
//! behind [`Registry::encode_openmetrics`](crate::Registry::encode_openmetrics) (module
//! [`openmetrics`], which lists its rules). Both share the float formatting and the label
//! values each series renders once.
//!
//! The rules it follows (and the bugs of other clients it avoids) are in the module docs of
//! `prometheus_text` and `float` (crate-private): one contiguous group per family with `# HELP` then `# TYPE`, families
//! sorted by name and series by label values, label values escaped (`\\`, `\"`, `\n`), HELP escaped
//! (`\\`, `\n`), floats as Go writes them, `le`/`quantile` formatted once per bucket layout so a
//! series' identity never changes, histograms with a mandatory `+Inf` bucket equal to `_count`,
//! no timestamps, and a final newline.
//!
//! This is the lowest layer of the metrics side: the formats know a family only as a
//! [`Descriptor`] (name, help, label names, [`MetricKind`]) and its series as values, and
//! [`name`] holds the name rules every layer checks. The metric types (`primitives`) use its
//! float formatting and name rules; the registry calls its encoders. It depends on neither.
//!
//! ```
//! use agentcore_telemetry::exposition::{CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE};
//! use agentcore_telemetry::Registry;
//!
//! let registry = Registry::new();
//! registry.counter("jobs_total", "Jobs done.").unwrap().inc_by(3);
//! // The same series in both formats, each served under its own `Content-Type`.
//! assert_eq!(registry.encode_text(), "# HELP jobs_total Jobs done.\n# TYPE jobs_total counter\njobs_total 3\n");
//! assert_eq!(registry.encode_openmetrics(), "# TYPE jobs counter\n# HELP jobs Jobs done.\njobs_total 3\n# EOF\n");
//! assert!(CONTENT_TYPE.starts_with("text/plain; version=0.0.4"));
//! assert!(OPENMETRICS_CONTENT_TYPE.starts_with("application/openmetrics-text; version=1.0.0"));
//! ```

mod descriptor;
pub(crate) mod float;
pub mod name;
pub mod openmetrics;
pub(crate) mod prometheus_text;

pub use descriptor::{Descriptor, MetricKind};
pub use openmetrics::{OpenMetricsEncoder, OPENMETRICS_CONTENT_TYPE};

/// The `Content-Type` of the text exposition format 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
