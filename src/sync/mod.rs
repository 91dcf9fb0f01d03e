//! The crate-private concurrency layer: the lock-free building blocks every metric and the tracer
//! stand on, and the synchronisation primitives they use (`std`'s normally, `loom`'s when the
//! crate is built with `--cfg agentcore_loom`, so the models in `src/loom/` explore the real code).
//!
//! * [`slots`]: the per-thread slot arena counters, histograms and summaries record into;
//! * [`rcu`]: the read-mostly cell behind a family's series maps;
//! * [`ring`]: the sharded ring buffer behind the tracer's span log.
//!
//! Nothing here is public: each structure keeps invariants that only the crate's own types
//! (metric handles, families, the tracer) uphold. The namespaced cfg (not bare `cfg(agentcore_loom)`)
//! keeps dependencies that react to `cfg(agentcore_loom)` themselves (tokio) out of the model build.

pub(crate) mod rcu;
pub(crate) mod ring;
pub(crate) mod slots;

#[cfg(agentcore_loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU64, AtomicUsize};
#[cfg(agentcore_loom)]
pub(crate) use loom::sync::Mutex;
#[cfg(agentcore_loom)]
pub(crate) use loom_rcu::{Domain, Pin, RcuCell};

#[cfg(not(agentcore_loom))]
pub(crate) use crate::sync::rcu::{Domain, Pin, RcuCell};
#[cfg(not(agentcore_loom))]
pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU64, AtomicUsize};
#[cfg(not(agentcore_loom))]
pub(crate) use std::sync::Mutex;

/// Under loom, a stand-in for [`primitives::rcu`](crate::sync::rcu) with the interface the
/// series maps use (`Pin::current`, `Domain::global`, `RcuCell::{default, load, replace}`).
///
/// The real cell pins the calling thread in the *process-wide* domain, whose reader records are
/// the global slot arena's blocks: statics that would outlive one loom execution. This stand-in
/// keeps what the family's logic depends on and lets loom explore it: the current value is a
/// loom `AtomicPtr`, loaded with `Acquire` and replaced with an `AcqRel` swap (the real cell's
/// orderings), so every interleaving of lock-free lookups against copy-on-write replacements is
/// explored. What it leaves out is reclamation: a pin holds a reference count on every value it
/// loaded and a replaced value is kept until the cell drops, so a load can never race a free
/// here. The real cell's reclamation (epochs and fences) has its own model,
/// `loom-tests/tests/rcu_cell.rs`.
#[cfg(agentcore_loom)]
mod loom_rcu {
    use std::any::Any;
    use std::cell::RefCell;
    use std::marker::PhantomData;
    use std::sync::atomic::Ordering::{AcqRel, Acquire};
    use std::sync::Arc;

    /// The real domain's stand-in: nothing to hold, reclamation is not modelled here.
    pub(crate) struct Domain;

    impl Domain {
        pub(crate) fn global() -> &'static Domain {
            static DOMAIN: Domain = Domain;
            &DOMAIN
        }
    }

    /// A reader's pin: keeps every value loaded under it alive (`!Send`, like the real one).
    pub(crate) struct Pin<'d> {
        held: RefCell<Vec<Arc<dyn Any + Send + Sync>>>,
        _domain: PhantomData<&'d Domain>,
    }

    impl Pin<'static> {
        pub(crate) fn current() -> Pin<'static> {
            Pin {
                held: RefCell::new(Vec::new()),
                _domain: PhantomData,
            }
        }
    }

    pub(crate) struct RcuCell<T> {
        current: loom::sync::atomic::AtomicPtr<T>,
        /// Replaced values, freed with the cell. A `std` mutex held only for a `push` (no loom
        /// operation inside), so it can never block a loom thread.
        retired: std::sync::Mutex<Vec<Arc<T>>>,
    }

    impl<T: Send + Sync + 'static> RcuCell<T> {
        pub(crate) fn load<'p>(&self, pin: &'p Pin<'_>) -> &'p T {
            let ptr = self.current.load(Acquire);
            // SAFETY: `ptr` came from `Arc::into_raw`, and the count it stands for is held by the
            // cell (as `current`, or in `retired` once replaced) until the cell drops; we take
            // one more count for the pin.
            let arc = unsafe {
                Arc::increment_strong_count(ptr);
                Arc::from_raw(ptr)
            };
            pin.held.borrow_mut().push(arc);
            // SAFETY: the pin holds a count on the value for `'p`, and the value never moves.
            unsafe { &*ptr }
        }

        pub(crate) fn replace(&self, value: T, _domain: &Domain) {
            let old = self
                .current
                .swap(Arc::into_raw(Arc::new(value)) as *mut T, AcqRel);
            // SAFETY: `old` came from `Arc::into_raw`; we take over the count `current` held.
            let old = unsafe { Arc::from_raw(old) };
            self.retired
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(old);
        }
    }

    impl<T: Default> Default for RcuCell<T> {
        fn default() -> Self {
            RcuCell {
                current: loom::sync::atomic::AtomicPtr::new(
                    Arc::into_raw(Arc::new(T::default())) as *mut T
                ),
                retired: std::sync::Mutex::new(Vec::new()),
            }
        }
    }

    impl<T> Drop for RcuCell<T> {
        fn drop(&mut self) {
            let ptr = self.current.load(Acquire);
            // SAFETY: as in `load`; this releases the count `current` held.
            drop(unsafe { Arc::from_raw(ptr) });
        }
    }
}
