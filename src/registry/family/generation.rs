//! What the `metrics` bridge reads of a family beyond the public API: [`Family::generation`]
//! (family invariant 5), which it checks on every cached lookup to notice that a series it
//! holds was removed (`bridge::metrics_recorder`, invariant 1), and
//! [`Family::overflow_metric`], to tell a fold from a removal. Only built with the
//! `metrics-bridge` feature. And what the span exporter's self-metrics ask
//! (`export::metrics`): whether two handles are one family (`Family::is_same_family`). And how
//! the generation moves (family invariant 5): to values unique in the process.

use std::sync::atomic::Ordering::Release;

impl<M: super::Metric> super::FamilyInner<M> {
    /// A new family's generation: never 0 (an empty lookup-cache entry's).
    pub(super) fn first_generation() -> u64 {
        #[cfg(not(agentcore_loom))]
        return super::lookup_cache::next_family_id();
        #[cfg(agentcore_loom)]
        1
    }

    /// Moves the generation on (family invariant 5) to a value it never had, nor any other
    /// family (outside loom). Under the writer mutex, except the overflow series' creation,
    /// which may race another thread's: either write leaves a value no reader saw before,
    /// which is all a reader compares.
    ///
    /// A read-modify-write (`swap`), not a `store`, for the ordering: a reader that reads a
    /// generation synchronizes with the write that made it *and* with every release write
    /// before it in the generation's modification order, because a read-modify-write continues
    /// the release sequence of the write it follows, where a plain store from another thread
    /// would end it. So a scrape, a cache fill or the bridge's check that reads the overflow
    /// series' new generation still sees every removal published before it (invariant 5), even
    /// when that creation raced a writer outside the mutex (found by review: with a `store`,
    /// the C++ model allowed a removed series to be listed again; x86 and ARMv8 never show
    /// it, so no test can). Under loom `fetch_add(1)`, also a read-modify-write: the models
    /// check the same orderings.
    #[inline]
    pub(super) fn next_generation(&self) {
        #[cfg(not(agentcore_loom))]
        self.generation
            .swap(super::lookup_cache::next_family_id(), Release);
        #[cfg(agentcore_loom)]
        self.generation.fetch_add(1, Release);
    }
}

#[cfg(feature = "otlp")]
impl<M: super::Metric> super::Family<M> {
    /// Whether `other` is a handle of this very family (the same registration), not merely
    /// one of the same name in another registry.
    pub(crate) fn is_same_family(&self, other: &super::Family<M>) -> bool {
        std::sync::Arc::ptr_eq(&self.inner, &other.inner)
    }
}

#[cfg(feature = "metrics-bridge")]
use super::{Family, Metric};
#[cfg(feature = "metrics-bridge")]
use std::sync::atomic::Ordering::Acquire;

#[cfg(feature = "metrics-bridge")]
impl<M: Metric> Family<M> {
    /// The family's generation (family invariant 5): it changes at every insert and removal of
    /// a series, so a reader that saw a series live at one generation and reads the same
    /// generation again knows that series has not been removed since. `Acquire`, pairing with
    /// the writer's `Release` increment: a reader that reads a generation after a removal's
    /// then sees that removal in the table.
    #[inline(always)]
    pub(crate) fn generation(&self) -> u64 {
        self.inner.generation.load(Acquire)
    }

    /// The overflow series' metric, once the family has one: a handle the slow path got is a
    /// fold only if it is this one (not one of the family's series removed meanwhile).
    #[inline]
    pub(crate) fn overflow_metric(&self) -> Option<&M> {
        self.inner.overflow.get().map(|s| &s.metric)
    }
}
