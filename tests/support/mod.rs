//! Helpers shared by the integration tests: `mod support;` in a test file.
//!
//! Not every test file uses every helper.
#![allow(dead_code, unused_macros, unused_imports)]

pub mod adversary;
pub mod agent;
pub mod alloc;
pub mod arena;
pub mod child_output;
pub mod exposition;
pub mod mem;
#[cfg(target_os = "linux")]
pub mod namespaces;
pub mod openmetrics;
#[cfg(feature = "otlp")]
pub mod otlp;
pub mod poll;
pub mod prometheus;
pub mod pushgateway;
pub mod span_log;
