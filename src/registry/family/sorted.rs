//! The scrape's sorted series cache of a family (`Family::for_each_series`):
//! the family's live series in label order, rebuilt only when the set of series changed (family
//! invariant 5), so that a steady-state scrape neither sorts nor allocates.

use super::Series;
use crate::sync::{Mutex, MutexGuard};
use std::sync::TryLockError;

/// A series pointer in the scrape cache. Valid while the cache is current and a guard lives that
/// was taken before the generation check and was still at its first era after it (family
/// invariant 5; see `Family::for_each_series`).
pub(super) struct SeriesPtr<M>(pub(super) *const Series<M>);

// SAFETY: the pointer is only dereferenced under the conditions above, by whichever thread holds
// the cache's mutex; `Series<M>` is `Send + Sync` for the metric types (`Metric: Send + Sync`).
unsafe impl<M: Send + Sync> Send for SeriesPtr<M> {}

pub(super) struct SortedCache<M> {
    /// The family's generation the list was built at; `u64::MAX` (never a generation) while
    /// it is stale.
    pub(super) generation: u64,
    pub(super) series: Vec<SeriesPtr<M>>,
}

impl<M> SortedCache<M> {
    pub(super) const fn stale() -> SortedCache<M> {
        SortedCache {
            generation: u64::MAX,
            series: Vec::new(),
        }
    }
}

/// The family's shared cache, unless another scrape of the family is using it (then the caller
/// builds a list of its own). A poisoned mutex (a callback panicked while the cache was in use)
/// is taken all the same: the cache is only read while callbacks run, and a rebuild marks it
/// stale first, so it is whole or stale; refusing it would make every later scrape copy, sort
/// and allocate.
pub(super) fn try_lock<M>(cache: &Mutex<SortedCache<M>>) -> Option<MutexGuard<'_, SortedCache<M>>> {
    match cache.try_lock() {
        Ok(cache) => Some(cache),
        Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}
