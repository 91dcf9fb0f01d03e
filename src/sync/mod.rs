//! The crate-private concurrency layer: the lock-free building blocks every metric and the tracer
//! stand on, and the synchronisation primitives they use (`std`'s normally, `loom`'s when the
//! crate is built with `--cfg agentcore_loom`, so the models in `src/loom/` explore the real code).
//!
//! * [`slots`]: the slot arena counters, histograms and summaries record into (per-thread blocks,
//!   bounded by the core count);
//! * [`era`]: era-based reclamation (hazard eras), how a family frees what lock-free readers may
//!   still hold;
//! * [`ring`]: the sharded ring buffer behind the tracer's span log;
//! * [`asymmetric_fence`]: the light/heavy fence pair both `era` and `ring` use (a compiler fence
//!   on the frequent side, `membarrier` on the rare one);
//! * [`thread_exit`]: work at a thread's exit that runs after every thread-local destructor,
//!   how the per-thread leases above (and the tracer's) end even for a thread that first took
//!   one in a `pthread_key` destructor.
//!
//! Nothing here is public: each structure keeps invariants that only the crate's own types
//! (metric handles, families, the tracer) uphold. The namespaced cfg (not a bare `cfg(loom)`)
//! keeps dependencies that react to `cfg(loom)` themselves (tokio) out of the model build.

pub(crate) mod asymmetric_fence;
pub(crate) mod era;
pub(crate) mod ring;
pub(crate) mod slots;
pub(crate) mod thread_exit;

#[cfg(agentcore_loom)]
pub(crate) use loom::sync::atomic::{
    fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize,
};
#[cfg(agentcore_loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};

#[cfg(not(agentcore_loom))]
pub(crate) use std::sync::atomic::{
    fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize,
};
#[cfg(not(agentcore_loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};
