//! Bridges: adapters from the Rust ecosystem's two instrumentation facades to this crate, so
//! code already instrumented with `tracing` spans and `metrics` macros (an HTTP stack, a
//! database driver, an LLM client) reaches our span log, export and scrape unchanged.
//!
//! | Module | Feature (off by default) | Implements | Feeds |
//! |---|---|---|---|
//! | [`tracing_layer`] | `tracing-bridge` | `tracing_subscriber::Layer` | a [`DistributedTracer`](crate::DistributedTracer) |
//! | [`metrics_recorder`] | `metrics-bridge` | `metrics::Recorder` | a [`Registry`](crate::Registry) |
//!
//! Each bridge uses the rest of the crate through its public API plus a few crate-private
//! helpers documented where they live (`tracer/span.rs`: entering a span's context without
//! attaching it; `distributed/mod.rs`: a detached span with an explicit parent;
//! `registry/family/generation.rs`: a family's generation, and the metric types' `ptr_eq`, to
//! notice a removed series; `sync::era`: the hazard-era reclamation the recorder's handle cache
//! frees replaced entries with), and is
//! named after the trait it implements. Neither touches the tracer's or the registry's hot
//! path: what they add runs in the facade's callbacks only.
//!
//! ```
//! # #[cfg(feature = "metrics-bridge")] {
//! use agentcore_telemetry::bridge::metrics_recorder::AgentcoreRecorder;
//! use agentcore_telemetry::Registry;
//!
//! let registry = Registry::new();
//! let recorder = AgentcoreRecorder::new(&registry);
//! // Code instrumented with the `metrics` facade, unchanged:
//! metrics::with_local_recorder(&recorder, || metrics::counter!("llm_calls_total", "model" => "m1").increment(2));
//! assert!(registry.encode_text().contains("llm_calls_total{model=\"m1\"} 2\n"));
//! # }
//! ```

#[cfg(feature = "metrics-bridge")]
mod key_cache;
#[cfg(feature = "metrics-bridge")]
mod metric_names;
#[cfg(feature = "metrics-bridge")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics-bridge")))]
pub mod metrics_recorder;
#[cfg(feature = "metrics-bridge")]
mod recorder_builder;
#[cfg(feature = "tracing-bridge")]
#[cfg_attr(docsrs, doc(cfg(feature = "tracing-bridge")))]
pub mod tracing_layer;
