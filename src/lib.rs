//! # agentcore-telemetry
//!
//! Metrics and distributed traces for an agent runtime, through a lock-free, allocation-free
//! hot path.
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(feature = "exporter")]
pub mod exporter;
#[cfg(feature = "exporter")]
pub use exporter::{ExporterConfig, ExpositionSource, MetricsExporter};
