//! The process-wide tracer of the specification's `get_distributed_tracer()`.

use super::{DistributedTracer, TracerConfig};
use std::sync::OnceLock;

static GLOBAL: OnceLock<DistributedTracer> = OnceLock::new();

/// The process-wide tracer, created on first use with [`TracerConfig::default`] (or the
/// configuration given to [`init_distributed_tracer`] before that).
///
/// ```
/// use agentcore_telemetry::get_distributed_tracer;
/// assert!(std::ptr::eq(get_distributed_tracer(), get_distributed_tracer()));
/// ```
pub fn get_distributed_tracer() -> &'static DistributedTracer {
    GLOBAL.get_or_init(|| DistributedTracer::new(TracerConfig::default()))
}

/// Configures the global tracer; returns `false` (and changes nothing) if it already exists.
///
/// ```
/// use agentcore_telemetry::{get_distributed_tracer, init_distributed_tracer, TracerConfig};
/// let _ = init_distributed_tracer(TracerConfig { service_name: "agent-runtime".into(), ..Default::default() });
/// assert!(!init_distributed_tracer(TracerConfig::default()));
/// assert_eq!(get_distributed_tracer().config().service_name, "agent-runtime");
/// ```
pub fn init_distributed_tracer(config: TracerConfig) -> bool {
    let mut created = false;
    GLOBAL.get_or_init(|| {
        created = true;
        DistributedTracer::new(config)
    });
    created
}
