//! [`SeriesRef`]: the borrowed series handle a lookup returns, and what keeps its series alive.

use std::marker::PhantomData;
use std::ops::Deref;
use std::ptr::NonNull;

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
    pub(super) metric: NonNull<M>,
    pub(super) _hold: Hold,
    pub(super) _family: PhantomData<&'a M>,
}

/// What keeps a [`SeriesRef`]'s series alive, in one word (so that a `SeriesRef` is two and a
/// lookup returns it in registers, and dropping one from the lookup cache is one comparison
/// before the count: issue 16): the family itself (its overflow series, borrowed for the
/// reference's lifetime), a count of the thread's lookup cache (`lookup_cache::Cached`, whose
/// guard protects it: `lookup_cache`, invariant 2), or a reclamation guard of its own
/// (`Guard::into_raw`: a record's pointer, its provenance kept, with the slot and the lease in
/// its low bits; never null or 1).
pub(super) struct Hold {
    #[cfg(not(agentcore_loom))]
    word: *const (),
    /// The loom models' families have guards of their own domains, which a word cannot name
    /// (and no lookup cache).
    #[cfg(agentcore_loom)]
    #[allow(dead_code)] // kept for its drop
    guard: Option<Guard<'static>>,
    _not_send: PhantomData<*const ()>,
}

#[cfg(not(agentcore_loom))]
const FAMILY: *const () = std::ptr::null();
#[cfg(not(agentcore_loom))]
const CACHED: *const () = std::ptr::without_provenance(1);

impl Hold {
    #[inline(always)]
    pub(super) fn family() -> Hold {
        Hold {
            #[cfg(not(agentcore_loom))]
            word: FAMILY,
            #[cfg(agentcore_loom)]
            guard: None,
            _not_send: PhantomData,
        }
    }

    #[cfg(not(agentcore_loom))]
    #[inline(always)]
    pub(super) fn cached(cached: lookup_cache::Cached) -> Hold {
        cached.keep();
        Hold {
            word: CACHED,
            _not_send: PhantomData,
        }
    }

    #[inline]
    pub(super) fn guard(guard: Guard<'static>) -> Hold {
        #[cfg(not(agentcore_loom))]
        return Hold {
            word: guard.into_raw(),
            _not_send: PhantomData,
        };
        #[cfg(agentcore_loom)]
        Hold {
            guard: Some(guard),
            _not_send: PhantomData,
        }
    }
}

#[cfg(not(agentcore_loom))]
impl Drop for Hold {
    #[inline(always)]
    fn drop(&mut self) {
        if self.word == CACHED {
            // SAFETY: `cached` kept it, once; `Hold` is `!Send` and dropped once.
            drop(unsafe { lookup_cache::Cached::take_back() });
        } else if self.word != FAMILY {
            drop_guard(self.word);
        }
    }
}

#[cfg(not(agentcore_loom))]
#[cold]
#[inline(never)]
fn drop_guard(raw: *const ()) {
    // SAFETY: `Hold::guard` made it with `into_raw`; dropped once (here, by `Hold::drop`).
    drop(unsafe { Guard::from_raw(raw) });
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
        unsafe { self.metric.as_ref() }
    }
}
