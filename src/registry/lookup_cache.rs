//! The per-thread lookup cache: the series a thread looked up recently, reachable again with no
//! reclamation guard and no table probe (issue 16: the guard and the probe were about half of a
//! labelled record's instructions).
//!
//! # Structure
//! Each thread that looks up has [`SETS`] × 2 entries (two-way set-associative, the set picked by
//! the label values' hash, the older of the two replaced), allocated on its first lookup, and one
//! long-lived reclamation guard of the global domain (`sync::era`), which it keeps between
//! lookups. An entry names a family (by its process-unique id), the hash, the family's
//! `generation` when the entry was made, the guard's era it was validated under, and the series.
//! A lookup ([`hit`]) whose entry matches all four, and whose series' label values equal the
//! caller's, returns that series; otherwise the family probes its table with this guard
//! ([`fill`]) and caches what it finds.
//!
//! A reference handed out from the cache ([`Cached`], inside a `SeriesRef`) holds no guard of
//! its own: the cache's guard protects it. The cache counts them (`outstanding`).
//!
//! # Invariants
//! 1. Every entry's series was validated under the cache's guard at the entry's `era`; so while
//!    the guard holds that era, the series is not freed (hazard eras: it was alive at that era).
//! 2. The guard's era changes only in [`fill`], and only while no reference from the cache is
//!    outstanding; an entry whose `era` is not the guard's current one never matches. So every
//!    outstanding reference, and every entry that can match, is protected (1).
//! 3. A hit counts its reference as outstanding *before* it reads the series (its label values
//!    are compared through the caller's `AsRef<str>`, which can run any code, including another
//!    lookup on this thread): nothing that code does can move the era under it.
//! 4. While a fill uses the guard, the cache's era reads 0, which no entry has: a lookup that
//!    the caller's code makes from inside the fill misses the cache, finds the guard taken, and
//!    takes a guard of its own (the family's uncached path). A fill that unwinds leaves the
//!    cache as it found it, its guard back in place.
//! 5. A generation that moved means the family inserted or removed a series since the entry was
//!    made (family invariant 5): the entry does not match, so a removed series is never handed
//!    out again, and a lookup after `remove` gets the new series.
//! 6. A thread that exits with references outstanding (one kept in another thread-local whose
//!    destructor runs later) keeps its guard until the last of them drops, which drops it; their
//!    series stay protected until then. A reference leaked with `mem::forget` keeps the guard
//!    forever: it pins what was alive at one era, as a leaked guard does (`sync::era`, "The
//!    memory bound"). The count never wraps: at `usize::MAX` outstanding, lookups stop using the
//!    cache.
//! 7. The cache's thread-local has no destructor, so a lookup is one thread-pointer-relative
//!    access (a thread-local with one checks its state on every access); a second thread-local,
//!    registered on the first fill, ends the cache at thread exit: it frees the entries, drops
//!    the guard unless references are outstanding (6) and marks the cache dead, after which
//!    lookups take the uncached path. `CACHE` itself stays readable until the thread is gone,
//!    so references dropped by later destructors still count down.
//!
//! # Orderings
//! The cache is thread-local: its cells need no ordering. The family's `generation` is read with
//! `Acquire` (as the scrape cache does), before the fill's probe, so an entry never records a
//! generation newer than the table state its series was found in. Reclamation safety is the
//! guard's (`sync::era`).
//!
//! # Memory
//! A thread's entries take `2 × SETS` × 40 bytes (10 KiB), on the heap, only in threads that
//! look up. Between fills the guard keeps the era it last
//! moved to: a thread that looked up once and went idle keeps alive what was alive then and was
//! retired since (one version of each family's table and its series), as a `SeriesRef` kept in a
//! thread-local does; its next fill with nothing outstanding moves it on.

use std::cell::Cell;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicU64 as StdAtomicU64, Ordering::Acquire, Ordering::Relaxed};

use super::series::Series;
use crate::sync::era::{Domain, Guard};
use crate::sync::AtomicU64;

/// Sets of two entries per thread (a power of two).
pub(super) const SETS: usize = 128;

#[derive(Clone, Copy)]
struct Entry {
    /// The family's id (0: empty; ids start at 1).
    family: u64,
    hash: u64,
    generation: u64,
    era: u64,
    series: *const (),
}

const EMPTY: Entry = Entry {
    family: 0,
    hash: 0,
    generation: 0,
    era: 0,
    series: std::ptr::null(),
};

/// One set: two entries, and which one the next fill replaces.
struct Set {
    ways: [Cell<Entry>; 2],
    victim: Cell<u8>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// No fill yet on this thread: no entries, no guard, the exit hook not registered.
    Fresh,
    Live,
    /// A fill has the guard (invariant 4).
    Filling,
    /// The thread is exiting (invariant 7).
    Dead,
}

struct Cache {
    /// `SETS` sets on the heap while `Live` or `Filling`; null otherwise.
    sets: Cell<*const Set>,
    /// The era the guard holds while it is in place; 0 otherwise.
    era: Cell<u64>,
    /// References handed out from the cache and not yet dropped.
    outstanding: Cell<usize>,
    guard: Cell<Option<ManuallyDrop<Guard<'static>>>>,
    state: Cell<State>,
}

thread_local! {
    static CACHE: Cache = const {
        Cache {
            sets: Cell::new(std::ptr::null()),
            era: Cell::new(0),
            outstanding: Cell::new(0),
            guard: Cell::new(None),
            state: Cell::new(State::Fresh),
        }
    };
    static EXIT: Exit = const { Exit };
}

/// Ends this thread's cache when the thread exits (invariant 7).
struct Exit;

impl Drop for Exit {
    fn drop(&mut self) {
        {
            let c = cache();
            c.state.set(State::Dead);
            c.era.set(0);
            let sets = c.sets.replace(std::ptr::null());
            if !sets.is_null() {
                // SAFETY: allocated by `fill` as a boxed slice of `SETS` sets, freed once (the
                // pointer was just cleared); no entry is read after `era` became 0.
                drop(unsafe {
                    Box::from_raw(std::ptr::slice_from_raw_parts_mut(sets.cast_mut(), SETS))
                });
            }
            if c.outstanding.get() == 0 {
                if let Some(guard) = c.guard.take() {
                    drop(ManuallyDrop::into_inner(guard));
                }
            }
            // Otherwise invariant 6: the last reference drops it.
        }
    }
}

/// This thread's cache. `CACHE` has a `const` initializer and no destructor, so it lives, at one
/// address, for as long as the thread: the reference is valid for any use on this thread, and
/// getting it is one thread-pointer-relative address computation (inlined, which a closure
/// doing the whole lookup inside `LocalKey::with` was not: ~20 instructions more per lookup).
#[inline(always)]
fn cache() -> &'static Cache {
    // SAFETY: see above; `Cache` is `!Sync` (its `Cell`s), so the reference cannot leave the
    // thread, and the thread's storage outlives every frame of it.
    unsafe { &*CACHE.with(|c| c as *const Cache) }
}

/// A new family's id for its cache entries: unique in the process, never 0.
pub(super) fn next_family_id() -> u64 {
    static NEXT: StdAtomicU64 = StdAtomicU64::new(1);
    NEXT.fetch_add(1, Relaxed)
}

#[inline(always)]
fn set_of(hash: u64) -> usize {
    // The family seeds its hash at random; its high bits are as good as any.
    (hash >> 57) as usize & (SETS - 1)
}

/// A reference from the cache, counted as outstanding until it drops (invariant 2). `!Send`: the
/// count is its thread's.
pub(crate) struct Cached {
    _not_send: PhantomData<*const ()>,
}

impl Drop for Cached {
    #[inline]
    fn drop(&mut self) {
        let c = cache();
        let left = c.outstanding.get() - 1;
        c.outstanding.set(left);
        if left == 0 && c.state.get() == State::Dead {
            end_after_exit(c);
        }
    }
}

/// The last reference of a thread that exited with references outstanding drops the guard
/// (invariant 6); `Guard::drop` returns the thread's era record if it was orphaned.
#[cold]
fn end_after_exit(c: &Cache) {
    if let Some(guard) = c.guard.take() {
        drop(ManuallyDrop::into_inner(guard));
    }
}

/// The cached series of family `family` for `hash`, if its entry is current (invariants 2 and
/// 5) and its label values are `values`, counted as outstanding; `None` otherwise.
///
/// # Safety
/// Family ids are unique and a family caches only its own series (so the entry's series is a
/// `Series<M>` if `family` is the id of a `Family<M>` the caller holds), and `generation` is that
/// family's.
#[inline(always)]
pub(super) unsafe fn hit<M, S: AsRef<str>>(
    family: u64,
    generation: &AtomicU64,
    hash: u64,
    values: &[S],
) -> Option<(*const Series<M>, Cached)> {
    {
        let c = cache();
        let sets = c.sets.get();
        if sets.is_null() {
            return None;
        }
        // SAFETY: non-null, so `fill` allocated `SETS` sets and `Exit` has not freed them;
        // `set_of` is below `SETS`.
        let set = unsafe { &*sets.add(set_of(hash)) };
        let era = c.era.get();
        let out = c.outstanding.get();
        let current = |e: &Entry| e.family == family && e.hash == hash && e.era == era;
        let mut e = set.ways[0].get();
        if !current(&e) {
            e = set.ways[1].get();
            if !current(&e) {
                return None;
            }
        }
        if out == usize::MAX || e.generation != generation.load(Acquire) {
            return None;
        }
        // Invariant 3: counted before the series is read.
        c.outstanding.set(out + 1);
        let cached = Cached {
            _not_send: PhantomData,
        };
        let series = e.series.cast::<Series<M>>();
        // SAFETY: the entry's era is the guard's, so the series is protected (invariants 1 and
        // 2) and, by the contract, a `Series<M>`.
        if unsafe { (*series).matches(values) } {
            Some((series, cached))
        } else {
            None // `cached` drops: uncounted
        }
    }
}

/// What [`fill`] did.
pub(super) enum Fill<M> {
    /// Found under the cache's guard, cached and counted as outstanding.
    Found(*const Series<M>, Cached),
    /// Not in the family's table.
    Absent,
    /// The cache cannot be used now (references outstanding, a fill in progress on this thread,
    /// or the thread exiting): look up with a guard of your own.
    Unavailable,
}

/// Takes the guard out for a fill (moving to `Filling`), first setting the cache up on a
/// `Fresh` thread; `None` when the cache cannot be used now.
fn begin(c: &Cache) -> Option<ManuallyDrop<Guard<'static>>> {
    if c.outstanding.get() != 0 {
        return None;
    }
    match c.state.get() {
        State::Live => {}
        State::Fresh => {
            // Register the exit hook first; a thread whose thread-locals are going away gets no
            // cache.
            EXIT.try_with(|_| ()).ok()?;
            let sets: Box<[Set]> = (0..SETS)
                .map(|_| Set {
                    ways: [Cell::new(EMPTY), Cell::new(EMPTY)],
                    victim: Cell::new(0),
                })
                .collect();
            c.sets.set(Box::into_raw(sets).cast::<Set>().cast_const());
            c.guard
                .set(Some(ManuallyDrop::new(Domain::global().guard())));
        }
        State::Filling | State::Dead => return None,
    }
    let guard = c.guard.take()?;
    c.era.set(0); // invariant 4: no entry matches while the guard is out
    c.state.set(State::Filling);
    Some(guard)
}

/// Runs the family's probe `find` under the cache's guard (moved to the current era first) and
/// caches what it finds for `family` and `hash`, with the family's `generation` read before the
/// probe.
///
/// # Safety
/// As [`hit`]; and `find` returns only a series of that family, validated under the guard it is
/// given (a pointer it loaded after the guard last moved, confirmed by `Guard::validate`).
#[inline(never)]
pub(super) unsafe fn fill<M>(
    family: u64,
    generation: &AtomicU64,
    hash: u64,
    find: impl FnOnce(&mut Guard<'static>) -> Option<*const Series<M>>,
) -> Fill<M> {
    let Some(guard) = begin(cache()) else {
        return Fill::Unavailable;
    };
    // Ends the fill, also if `find` unwinds (invariant 4): puts the guard back and publishes its
    // era. `find` cannot leave the guard half-moved: `validate` stores the new era before it
    // returns.
    struct Filling(ManuallyDrop<Guard<'static>>);
    impl Drop for Filling {
        fn drop(&mut self) {
            // SAFETY: the guard is moved out once, here, and `self.0` is not used again.
            let guard = unsafe { ManuallyDrop::take(&mut self.0) };
            let c = cache();
            c.era.set(guard.era());
            c.guard.set(Some(ManuallyDrop::new(guard)));
            c.state.set(State::Live);
        }
    }
    let mut filling = Filling(guard);
    // The entries' era moves on here, with nothing outstanding (invariant 2).
    let _ = filling.0.validate();
    let seen = generation.load(Acquire);
    let found = find(&mut filling.0);
    let era = filling.0.era();
    drop(filling);
    let Some(series) = found else {
        return Fill::Absent;
    };
    {
        let c = cache();
        // SAFETY: `Live` again (set by `Filling::drop`), so the sets are allocated.
        let set = unsafe { &*c.sets.get().add(set_of(hash)) };
        let victim = usize::from(set.victim.get());
        set.ways[victim].set(Entry {
            family,
            hash,
            generation: seen,
            era,
            series: series.cast(),
        });
        set.victim.set(1 - victim as u8);
        c.outstanding.set(c.outstanding.get() + 1);
    }
    Fill::Found(
        series,
        Cached {
            _not_send: PhantomData,
        },
    )
}
