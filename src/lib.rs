//! # agentcore-telemetry
//!
//! Metrics and distributed traces for an agent runtime, through a lock-free, allocation-free
//! hot path.
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod propagation;
