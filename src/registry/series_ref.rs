//! [`SeriesRef`]: the borrowed series handle a lookup returns, and what keeps its series alive.

use std::marker::PhantomData;
use std::ops::Deref;

#[cfg(not(agentcore_loom))]
use super::lookup_cache;
use crate::sync::era::Guard;

/// A borrowed series handle returned by
/// [`Family::with_label_values`](super::Family::with_label_values): it dereferences to the
/// metric and keeps the series alive without touching any shared reference count.
///
/// It is meant to live for one recording (`family.with_label_values(..)?.inc()`); keep a
/// [`Family::get_or_create`](super::Family::get_or_create) handle for longer. Holding one anyway
/// (in a struct, a thread-local) is safe and bounded: it keeps alive the family's table and
/// series as they were when it was taken, nothing created later (see the README's limits).
/// Many held at once on one thread cost a small reclamation record each (a cache line, kept
/// for reuse by later lookups) beyond the first few.
/// `!Send`: it is dropped on the thread that looked it up.
///
/// ```
/// use agentcore_telemetry::Registry;
///
/// let registry = Registry::new();
/// let calls = registry.counter_family("calls_total", "Calls.", &["tool"]).unwrap();
/// let search = calls.with_label_values(&["search"]).unwrap();
/// search.inc();
/// search.inc_by(2);
/// assert_eq!(search.get(), 3.0);
/// ```
pub struct SeriesRef<'a, M> {
    pub(super) _hold: Hold,
    pub(super) metric: *const M,
    pub(super) _family: PhantomData<&'a M>,
}

/// What keeps a [`SeriesRef`]'s series alive.
pub(super) enum Hold {
    /// The family itself (its overflow series), borrowed for the reference's lifetime.
    Family,
    /// A reclamation guard of the reference's own.
    Guard(#[allow(dead_code)] Guard<'static>),
    /// The thread's lookup cache's guard (`lookup_cache`, invariant 2).
    #[cfg(not(agentcore_loom))]
    Cached(#[allow(dead_code)] lookup_cache::Cached),
}

impl<M: std::fmt::Debug> std::fmt::Debug for SeriesRef<'_, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SeriesRef").field(&**self).finish()
    }
}

impl<M> Deref for SeriesRef<'_, M> {
    type Target = M;

    #[inline(always)]
    fn deref(&self) -> &M {
        // SAFETY: `metric` points into a series validated under the guard `_hold` holds, or
        // under the lookup cache's guard, which `_hold` keeps at that era (`lookup_cache`,
        // invariant 2), so it is not freed while `_hold` lives; or into the family's overflow
        // series, which lives as long as the family borrowed for `'a`.
        unsafe { &*self.metric }
    }
}
