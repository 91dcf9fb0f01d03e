//! Records a sampled span on the calling thread, which arms three of the crate's thread-exit
//! keys (the span-log index, the context stack, and the slot-arena block of the tracer's
//! counters) and nothing of `std`'s or another crate's with a thread-local destructor: one of
//! those would keep the library loaded past a `dlclose` while the thread lives (glibc defers
//! the unloading), hiding what the test looks for.

use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};
use std::sync::OnceLock;

/// Called by the test on a thread of its own.
#[no_mangle]
pub extern "C" fn record() {
    static TRACER: OnceLock<DistributedTracer> = OnceLock::new();
    let tracer = TRACER.get_or_init(|| {
        DistributedTracer::new(TracerConfig {
            from_env: false,
            ..Default::default()
        })
    });
    tracer.start_span("plugin", SpanKind::Internal, []).end();
}
