//! Procedural macros for `agentcore-telemetry`. Use them through the main crate's re-export.
