//! The synchronisation primitives every concurrent structure uses: `std`'s (and `arc_swap`'s)
//! normally, `loom`'s when the crate is built with `--cfg loom`, so the models in `loom-tests/`
//! explore the real code.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize};
#[cfg(loom)]
pub(crate) use loom::sync::Mutex;
#[cfg(loom)]
pub(crate) use loom_arc_swap::{ArcSwap, Guard};

#[cfg(not(loom))]
pub(crate) use arc_swap::{ArcSwap, Guard};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize};
#[cfg(not(loom))]
pub(crate) use std::sync::Mutex;

/// Under loom, a stand-in for `arc_swap::ArcSwap` with the part of its interface the crate's
/// copy-on-write maps use (`default`, `load`, `load_full`, `store`), built on a loom `AtomicPtr`
/// so that loom sees, and explores, every interleaving of loads against stores.
///
/// It keeps arc-swap's guarantees: a load is an `Acquire` load of the current version (a reader
/// that sees a version sees it fully built), a store an `AcqRel` swap (stores are totally
/// ordered), and a loaded version stays valid for as long as the reader holds it. The one
/// simplification: a replaced version is not freed until the `ArcSwap` itself is dropped (it is
/// kept in `retired`), where arc-swap reclaims it as soon as its last reader lets go. So a load
/// can never race a free here, and the models do not check arc-swap's own reclamation, which
/// is arc-swap's business and tested by it.
#[cfg(loom)]
mod loom_arc_swap {
    use std::sync::atomic::Ordering::{AcqRel, Acquire};
    use std::sync::Arc;

    /// What `load` returns: the version itself (arc-swap returns a guard dereferencing to it).
    pub(crate) type Guard<A> = A;

    pub(crate) struct ArcSwap<T> {
        current: loom::sync::atomic::AtomicPtr<T>,
        /// Replaced versions, freed with the `ArcSwap`. A `std` mutex: it is only held for a
        /// `push`, with no loom operation inside, so it can never block a loom thread.
        retired: std::sync::Mutex<Vec<Arc<T>>>,
    }

    impl<T> ArcSwap<T> {
        fn new(value: Arc<T>) -> ArcSwap<T> {
            ArcSwap {
                current: loom::sync::atomic::AtomicPtr::new(Arc::into_raw(value) as *mut T),
                retired: std::sync::Mutex::new(Vec::new()),
            }
        }

        pub(crate) fn load(&self) -> Arc<T> {
            let ptr = self.current.load(Acquire);
            // SAFETY: `ptr` came from `Arc::into_raw` and the strong count it stands for is held
            // by `self` (as `current`, or in `retired` once replaced) until `self` is dropped, so
            // the allocation is live; we add one count for the `Arc` we return.
            unsafe {
                Arc::increment_strong_count(ptr);
                Arc::from_raw(ptr)
            }
        }

        pub(crate) fn load_full(&self) -> Arc<T> {
            self.load()
        }

        pub(crate) fn store(&self, value: Arc<T>) {
            let old = self.current.swap(Arc::into_raw(value) as *mut T, AcqRel);
            // SAFETY: `old` came from `Arc::into_raw`; we take over the count `current` held.
            let old = unsafe { Arc::from_raw(old) };
            self.retired
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(old);
        }
    }

    impl<T: Default> Default for ArcSwap<T> {
        fn default() -> Self {
            ArcSwap::new(Arc::new(T::default()))
        }
    }

    impl<T> Drop for ArcSwap<T> {
        fn drop(&mut self) {
            let ptr = self.current.load(Acquire);
            // SAFETY: as in `load`; this releases the count `current` held.
            drop(unsafe { Arc::from_raw(ptr) });
        }
    }
}
