//! The per-thread lookup cache: the series a thread looked up recently, reachable again with no
//! reclamation guard and no table probe (issue 16: the guard and the probe were about half of a
//! labelled record's instructions).
//!
//! # Structure
//! Each thread that looks up has [`SETS`] sets of eight entries (eight-way set-associative, the
//! set picked by the label values' hash; a new entry goes over a stale entry for the same key,
//! or in the way more bits of the hash pick if it is empty (where a hit looks first), or in
//! the first empty way, or over the way the hash picks), allocated on its first
//! lookup, four 64-byte cache lines per set; and one long-lived reclamation guard of the global
//! domain (`sync::era`), which it keeps between lookups. An entry names a family (by its
//! process-unique id), the hash, the family's `generation` when the entry was made, and the
//! series. A lookup ([`hit`]) whose entry has its hash and its family's current generation
//! (which no other family ever has: family invariant 5), and whose series' label values equal
//! the caller's, returns that series; otherwise the family probes its table with this
//! guard ([`fill`]) and caches what it finds.
//!
//! A reference handed out from the cache ([`Cached`], inside a `SeriesRef`) holds no guard of
//! its own: the cache's guard protects it. The cache counts them (`held`: one more than their
//! number while the thread lives, so that only the last drop after the thread's exit reaches 0).
//!
//! # Invariants
//! 1. Every entry's series was validated under the cache's guard at the era the guard holds now;
//!    so the series is not freed while the guard holds it (hazard eras: it was alive then).
//! 2. The guard's era changes only in [`fill`], and only while no reference from the cache is
//!    outstanding; a fill that moved it empties every entry before it adds its own. So every
//!    outstanding reference, and every entry, is protected (1). (The generation check (5)
//!    alone nearly suffices, since a family bumps its generation before it retires; emptying on
//!    an era move keeps the argument local to this module instead of resting on the orderings
//!    between a remover, the era clock and this thread. No deterministic test reaches the
//!    window it closes; the tests cover (3), (5) and (6).)
//! 3. A hit counts its reference as outstanding *before* it reads the series (its label values
//!    are compared by their keys, computed before the hit, but a long value, or a fifth, is
//!    compared through the caller's `AsRef<str>`, which can run any code, including another
//!    lookup on this thread): nothing that code does can move the era under it.
//! 4. While a fill uses the guard, the sets are out of the cache (it points to [`NO_SETS`]): a lookup
//!    that the caller's code makes from inside the fill misses, finds no guard, and takes a guard
//!    of its own (the family's uncached path). A fill whose probe unwinds puts the sets back,
//!    emptied, and the guard too. (A fill is *not* unwinding because the thread is: one that
//!    runs inside a destructor during another panic completes and hands out a reference.)
//! 5. A generation that moved means the family inserted or removed a series since the entry was
//!    made (family invariant 5; its values are unique in the process, so an entry of another
//!    family never has this family's generation either): the entry does not match, so a
//!    removed series is never handed out again, and a lookup after `remove` gets the new
//!    series.
//! 6. A thread that exits with references outstanding (one kept where it outlives the cache's
//!    end: another `pthread_key`'s value, or a thread-local whose destructor runs after the
//!    thread-local hook, where the key cannot be armed) keeps its guard until the last of them
//!    drops, which drops it; their series stay protected until then. A reference leaked with `mem::forget` keeps the guard
//!    forever: it pins what was alive at one era, as a leaked guard does (`sync::era`, "The
//!    memory bound"). The count never wraps: once it would, lookups stop using the cache.
//! 7. The cache's thread-local has no destructor, so a lookup is one thread-pointer-relative
//!    access (a thread-local with one checks its state on every access); an exit hook,
//!    registered on the first fill, ends the cache at thread exit (an `ExitHook`: its key, after
//!    every thread-local destructor, `sync::thread_exit`; where that cannot be armed, a second
//!    thread-local's destructor): it frees the entries, drops the guard unless references are
//!    outstanding (6) and marks the cache dead, after which lookups take the uncached path. `CACHE` itself stays readable until the thread is gone,
//!    so references dropped by later destructors still count down.
//!
//! # Orderings
//! The cache is thread-local: its cells need no ordering. The family's `generation` is read with
//! `Acquire` (as the scrape cache does), before the fill's probe, so an entry never records a
//! generation newer than the table state its series was found in. Reclamation safety is the
//! guard's (`sync::era`).
//!
//! # Memory
//! A thread's entries take `SETS` × 256 bytes (8 KiB), on the heap, only in threads that look
//! up. Between fills the guard keeps the era it last moved to: a thread that looked up once and
//! went idle keeps alive what was alive then and was retired since (one version of each
//! family's table and its series), as a `SeriesRef` kept in a thread-local does; its next fill
//! with nothing outstanding moves it on.

use std::cell::Cell;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicU64 as StdAtomicU64, Ordering::Acquire, Ordering::Relaxed};

use super::label_hash::{Key, KEPT};
use super::series::Series;
use crate::sync::era::{Domain, Guard};
use crate::sync::thread_exit::exit_hook;
use crate::sync::AtomicU64;

/// Sets per thread (a power of two).
pub(super) const SETS: usize = 32;

/// Entries per set.
const WAYS: usize = 8;

#[derive(Clone, Copy)]
struct Entry {
    /// The family's id (0: empty; ids start at 1): where a fill puts a key's entry. A hit
    /// compares `generation` instead, which also names the family (invariant 5).
    family: u64,
    hash: u64,
    generation: u64,
    series: *const (),
}

const EMPTY: Entry = Entry {
    family: 0,
    hash: 0,
    generation: 0,
    series: std::ptr::null(),
};

/// One set: eight entries, filled in order; four cache lines (a hit reads the first one or two).
#[repr(align(64))]
struct Set {
    ways: [Cell<Entry>; WAYS],
}

const _: () = assert!(std::mem::size_of::<Set>() == 256);

/// The sets of a cache that has none of its own (before its first fill, while a fill has them
/// out, after `Exit`): all empty, and family ids start at 1, so a hit finds nothing here, with
/// no test for a missing pointer first (two instructions per lookup).
struct NoSets([Set; SETS]);

// SAFETY: nothing writes it: only a fill writes entries, into the sets it took from a `Live`
// cache, which are that cache's own allocation (`Filling::begin`); reading memory that never
// changes is sound from any thread.
unsafe impl Sync for NoSets {}

static NO_SETS: NoSets = NoSets(
    [const {
        Set {
            ways: [const { Cell::new(EMPTY) }; WAYS],
        }
    }; SETS],
);

#[inline(always)]
fn no_sets() -> *const Set {
    (&raw const NO_SETS.0).cast()
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
    /// `SETS` sets on the heap while `Live`; [`NO_SETS`] otherwise (a fill has them out).
    sets: Cell<*const Set>,
    /// One more than the references handed out from the cache and not yet dropped, while the
    /// thread lives; just their number once `Exit` ran (invariant 6). So a drop that leaves 0
    /// is the last one after the thread's exit, which one comparison tells.
    held: Cell<usize>,
    guard: Cell<Option<ManuallyDrop<Guard<'static>>>>,
    state: Cell<State>,
}

thread_local! {
    static CACHE: Cache = const {
        Cache {
            sets: Cell::new((&raw const NO_SETS.0).cast()),
            held: Cell::new(1),
            guard: Cell::new(None),
            state: Cell::new(State::Fresh),
        }
    };
}

exit_hook! {
    /// Ends this thread's cache at its exit (invariant 7), after every thread-local destructor
    /// of the thread (whose lookups keep the cache), also for a cache first filled in a
    /// `pthread_key` destructor, whose thread-local hook glibc would never run: its sets leaked
    /// and its guard pinned an era for good (`sync::thread_exit`).
    static EXIT runs end_cache;
}

/// Ends this thread's cache (invariant 7): registered once, from `Fresh`, so run once.
fn end_cache() {
    let c = cache();
    c.state.set(State::Dead);
    let sets = c.sets.replace(no_sets());
    if sets != no_sets() {
        // SAFETY: allocated by `Filling::begin` as a boxed slice of `SETS` sets, freed once
        // (the pointer was just replaced, and nothing sets it again once `Dead`).
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(sets.cast_mut(), SETS)) });
    }
    let outstanding = c.held.get() - 1;
    c.held.set(outstanding);
    if outstanding == 0 {
        if let Some(guard) = c.guard.take() {
            drop(ManuallyDrop::into_inner(guard));
        }
    }
    // Otherwise invariant 6: the last reference drops it.
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

/// A new family's id for its cache entries, or a family's new generation: unique in the
/// process (ids and generations alike), never 0.
pub(super) fn next_family_id() -> u64 {
    static NEXT: StdAtomicU64 = StdAtomicU64::new(1);
    NEXT.fetch_add(1, Relaxed)
}

/// The entry a key prefers, counting from the first set's first: its set (`set_of`) times
/// `WAYS`, plus its way (`way_of`): the hash's bits from `SHIFT` up, so that its byte offset
/// (`entry_offset`) is the hash masked.
#[inline(always)]
fn entry_of(hash: u64) -> usize {
    entry_offset(hash) >> SHIFT
}

/// log2 of an entry's size.
const SHIFT: u32 = std::mem::size_of::<Entry>().trailing_zeros();
const _: () = assert!(std::mem::size_of::<Entry>() == 1 << SHIFT);

/// `entry_of(hash)` entries, in bytes: one mask of the hash (and a copy, the hash being still
/// needed). The bits a folded multiply leaves low are as good as its high ones (each is a
/// low-half bit xor a high-half bit), and the family seeds the hash at random. (The high
/// bits, taken before, cost a shift and a move more per lookup.)
#[inline(always)]
fn entry_offset(hash: u64) -> usize {
    hash as usize & ((SETS * WAYS - 1) << SHIFT)
}

#[inline(always)]
fn set_of(hash: u64) -> usize {
    entry_of(hash) / WAYS
}

/// The way a key prefers: where a hit looks first, and the one it takes in a full set.
#[inline(always)]
fn way_of(hash: u64) -> usize {
    entry_of(hash) % WAYS
}

/// A reference from the cache, counted as outstanding until it drops (invariant 2). `!Send`: the
/// count is its thread's.
pub(crate) struct Cached {
    _not_send: PhantomData<*const ()>,
}

impl Cached {
    /// Gives up the value, keeping its count: [`Cached::take_back`] ends it (a `SeriesRef`
    /// keeps the count as one word of its hold instead).
    #[inline(always)]
    pub(crate) fn keep(self) {
        std::mem::forget(self);
    }

    /// The value a [`Cached::keep`] gave up, to drop.
    ///
    /// # Safety
    /// Once per `keep`, on the same thread.
    #[inline(always)]
    pub(crate) unsafe fn take_back() -> Cached {
        Cached {
            _not_send: PhantomData,
        }
    }
}

impl Drop for Cached {
    #[inline]
    fn drop(&mut self) {
        let c = cache();
        let left = c.held.get() - 1;
        c.held.set(left);
        if left == 0 {
            end_after_exit(c); // `Dead`: while the thread lives, `held` is at least 1
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

/// The cached series of the family whose generation is `generation` for `hash`, if its entry
/// is current (invariants 2 and 5) and its label values are `values` (whose first keys are
/// `keys`, from `LabelHasher::hash_keys`), counted as outstanding; `None` otherwise.
///
/// An entry records its family's id and the family's generation when it was made; a hit
/// compares the generation alone. No two families ever have the same generation (family
/// invariant 5: each value is drawn from the process-wide counter ids come from, never 0, an
/// empty entry's), so an entry whose generation is the family's current one is that family's
/// and current: one comparison for both (3 instructions per lookup).
///
/// # Safety
/// `generation` is a family's, and that family caches only its own series under its own id
/// and generations (so the entry's series is a `Series<M>` if the family is a `Family<M>`
/// the caller holds).
#[inline(always)]
pub(super) unsafe fn hit<M, S: AsRef<str>>(
    generation: &AtomicU64,
    hash: u64,
    keys: &[Key; KEPT],
    values: &[S],
) -> Option<(*const Series<M>, Cached)> {
    {
        let c = cache();
        let sets = c.sets.get();
        // Invariant 3: counted first, before the series is read; every `None` below gives it
        // back as `cached` drops (a miss counts and gives back: off the hit path). Counted
        // here, beside the read of `sets`, it is one `inc` of the thread-local and a branch;
        // a `checked_add` after the probe kept the count in a register, computed the
        // thread-local's address again and stored it back (4 instructions more). A count that
        // would wrap is not taken (invariant 6): undone, and the lookup goes uncached.
        let more = c.held.get().wrapping_add(1);
        c.held.set(more);
        if more == 0 {
            c.held.set(usize::MAX);
            return None;
        }
        let cached = Cached {
            _not_send: PhantomData,
        };
        let generation = generation.load(Acquire);
        // Read in place (a `Cell::get` per way copied whole entries: ~30 instructions more).
        let at = |offset: usize| {
            // SAFETY: `SETS` sets, `NO_SETS` or those `fill` allocated, which `Exit` frees only
            // after replacing them with `NO_SETS`: as many entries as `entry_of` has values,
            // one after the other (`Set` has no padding), and every offset below is below
            // `SETS * WAYS` entries and a multiple of an entry's size. The cells are this
            // thread's and nothing writes them while the reference lives (only a fill does, and
            // none runs until this function returns: invariant 3 for the code `matches_keys`
            // runs).
            unsafe { &*sets.byte_add(offset).cast::<Entry>() }
        };
        let is_key = |e: &Entry| e.hash == hash && e.generation == generation;
        // The entry's offset, not its address, out of the two branches: the series is then read
        // with the base and the offset, its address never materialised (2 instructions).
        let preferred = entry_offset(hash);
        let offset = if is_key(at(preferred)) {
            preferred
        } else {
            // The set of that entry (its offset rounded down to a set's size).
            let set = preferred & !(size_of::<Set>() - 1);
            (set..set + size_of::<Set>())
                .step_by(size_of::<Entry>())
                .find(|&o| is_key(at(o)))?
        };
        let series = at(offset).series;
        let series = series.cast::<Series<M>>();
        // SAFETY: every entry is protected by the guard (invariants 1 and 2) and, by the
        // contract, the series is a `Series<M>`.
        if unsafe { (*series).matches_keys(keys, values) } {
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

/// A fill's hold on the cache: the guard and the sets, out of the cache while it runs
/// (invariant 4). Dropping it puts both back, the sets emptied if the probe did not return.
struct Filling {
    guard: ManuallyDrop<Guard<'static>>,
    sets: *const Set,
    /// The probe returned. (Not `thread::panicking()`: that is also true for a fill that
    /// completes inside a destructor run by another panic's unwinding, and such a fill hands
    /// out a reference the guard must keep protecting.)
    probed: bool,
}

impl Filling {
    /// Takes the guard and the sets out for a fill, first setting the cache up on a `Fresh`
    /// thread; `None` when the cache cannot be used now.
    fn begin(c: &Cache) -> Option<Filling> {
        if c.held.get() != 1 {
            return None; // references outstanding, or `Dead`
        }
        match c.state.get() {
            State::Live => {}
            State::Fresh => {
                // Register the exit hook first (the key; else the thread-local); a thread that
                // can register neither gets no cache.
                if !EXIT.register() {
                    return None;
                }
                // `Filling` while the sets and the guard are made: a lookup made meanwhile on
                // this thread (by a global allocator that looks up) takes the uncached path.
                // It made a cache of its own before, whose sets and guard this fill then
                // overwrote: the sets leaked, the guard held for good
                // (`tests/reentrant_allocator.rs`).
                c.state.set(State::Filling);
                let sets: Box<[Set]> = (0..SETS)
                    .map(|_| Set {
                        ways: [const { Cell::new(EMPTY) }; WAYS],
                    })
                    .collect();
                c.sets.set(Box::into_raw(sets).cast::<Set>().cast_const());
                c.guard
                    .set(Some(ManuallyDrop::new(Domain::global().guard())));
                c.state.set(State::Live);
            }
            State::Filling | State::Dead => return None,
        }
        // `Live` always has its guard (a fill puts it back, also when its probe unwinds).
        let guard = c.guard.take()?;
        c.state.set(State::Filling);
        Some(Filling {
            guard,
            sets: c.sets.replace(no_sets()),
            probed: false,
        })
    }

    fn sets(&self) -> &[Set] {
        // SAFETY: `begin` took the pointer of a live allocation of `SETS` sets, which only
        // `Exit` frees, and only once it is back in the cache.
        unsafe { std::slice::from_raw_parts(self.sets, SETS) }
    }

    fn clear(&self) {
        for set in self.sets() {
            for way in &set.ways {
                way.set(EMPTY);
            }
        }
    }
}

impl Drop for Filling {
    fn drop(&mut self) {
        let c = cache();
        if !self.probed {
            // The probe unwound: the guard may have moved with entries still in the sets. No
            // reference from the cache is outstanding (lookups inside a fill are uncached:
            // invariant 4), so emptying the sets restores invariant 2.
            self.clear();
        }
        // SAFETY: moved out once, here; `self.guard` is not used again.
        let guard = unsafe { ManuallyDrop::take(&mut self.guard) };
        c.guard.set(Some(ManuallyDrop::new(guard)));
        c.sets.set(self.sets);
        c.state.set(State::Live);
    }
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
    let Some(mut filling) = Filling::begin(cache()) else {
        return Fill::Unavailable;
    };
    let before = filling.guard.era();
    // The guard moves on to the current era here, with nothing outstanding (invariant 2).
    let _ = filling.guard.validate();
    let seen = generation.load(Acquire);
    let found = find(&mut filling.guard);
    filling.probed = true;
    if filling.guard.era() != before {
        filling.clear(); // invariant 2
    }
    let Some(series) = found else {
        return Fill::Absent;
    };
    let set = &filling.sets()[set_of(hash)];
    // The entry goes where a stale entry for the same key is (a moved generation; so a key has
    // one entry at most), else in the way three more bits of the hash pick (`way_of`, where a
    // hit looks first) if it is empty, else in the first empty way (a hit that does not find
    // the key in its way looks at all eight; empty ones never match), else over the way
    // `way_of` picks, so that more hot keys than ways evict in pairs instead of all missing in
    // turn. (64 sets of 4 ways, evicting the oldest, missed 10% of a 50-key cycle on runs
    // whose random seed put 5 keys in one set, about one run in ten; 32 sets of 8 ways take
    // the same memory, and 9 of 50 keys in one set is about 30 times rarer.)
    let empty = |w: usize| set.ways[w].get().family == 0;
    let way = set
        .ways
        .iter()
        .position(|w| {
            let e = w.get();
            e.family == family && e.hash == hash
        })
        .or_else(|| Some(way_of(hash)).filter(|&w| empty(w)))
        .or_else(|| (0..WAYS).find(|&w| empty(w)))
        .unwrap_or(way_of(hash));
    set.ways[way].set(Entry {
        family,
        hash,
        generation: seen,
        series: series.cast(),
    });
    drop(filling);
    let c = cache();
    c.held.set(c.held.get() + 1);
    Fill::Found(
        series,
        Cached {
            _not_send: PhantomData,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::thread_exit::ExitKey;

    /// Invariant 4: a fill whose probe unwinds leaves the cache usable, with its guard, and its
    /// sets emptied (the probe may have moved the guard past the era its entries were found at).
    #[test]
    fn a_fill_that_unwinds_leaves_the_cache_usable() {
        std::thread::spawn(|| {
            let generation = AtomicU64::new(0);
            // SAFETY: `find` returns no series.
            let absent = |find: fn(&mut Guard<'static>) -> Option<*const Series<()>>| unsafe {
                matches!(fill(1, &generation, 7, find), Fill::Absent)
            };
            assert!(absent(|_| None), "a fresh thread's fill probes");
            // An entry (its series never read: no hit asks for family 1).
            let dangling = std::ptr::NonNull::<Series<()>>::dangling()
                .as_ptr()
                .cast_const();
            // SAFETY: as above; the entry's series is never dereferenced.
            let found = unsafe { fill(1, &generation, 7, |_| Some(dangling)) };
            assert!(matches!(found, Fill::Found(..)));
            drop(found);
            let entries = || {
                // SAFETY: `Live`: the thread's own allocation of `SETS` sets.
                let sets = unsafe { std::slice::from_raw_parts(cache().sets.get(), SETS) };
                let ways = sets.iter().flat_map(|s| s.ways.iter());
                ways.filter(|w| w.get().family != 0).count()
            };
            assert_eq!(entries(), 1);
            let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                absent(|_| panic!("the caller's AsRef panicked"))
            }));
            assert!(unwound.is_err());
            assert_eq!(entries(), 0, "the sets put back emptied");
            assert!(
                absent(|_| None),
                "the fill after an unwound one probes again"
            );
            let guard = cache().guard.take();
            assert!(guard.is_some(), "and keeps its guard");
            cache().guard.set(guard);
        })
        .join()
        .unwrap();
    }

    /// The masked offset (`entry_offset`) and the scan's set (the offset rounded down to a
    /// set's size) stay inside the `SETS * WAYS` entries, on an entry's boundary, for every
    /// pattern of the bits it keeps and any others; and a fill puts an entry (`set_of`,
    /// `way_of`) exactly where a hit looks first.
    #[test]
    fn every_hash_gives_an_offset_inside_the_sets() {
        let total = SETS * WAYS * size_of::<Entry>();
        let mut hit_first = std::collections::HashSet::new();
        let mut h: u64 = 0x9E37_79B9_7F4A_7C15;
        for low in 0..1u64 << 14 {
            for high in [0, u64::MAX << 14, h << 14] {
                h = h.rotate_left(7) ^ h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
                let hash = high | low;
                let offset = entry_offset(hash);
                assert!(offset < total, "{hash:#x}: {offset} past the sets");
                assert_eq!(offset % size_of::<Entry>(), 0, "{hash:#x}: mid-entry");
                let set = offset & !(size_of::<Set>() - 1);
                assert!(set + size_of::<Set>() <= total && set <= offset);
                assert!(offset < set + size_of::<Set>());
                assert_eq!(set / size_of::<Set>(), set_of(hash));
                assert_eq!(
                    (set_of(hash) * WAYS + way_of(hash)) * size_of::<Entry>(),
                    offset,
                    "a fill's entry is where a hit looks first"
                );
                hit_first.insert(offset);
            }
        }
        assert_eq!(hit_first.len(), SETS * WAYS, "every entry reachable");
    }

    /// The entries that a family's label values prefer spread as random ones would, whatever
    /// the family's seeds, also for values that differ only in their last bytes, as ids and
    /// numbered names do. Of 1,000 random hashers per pattern, at most 3 may push more than 14
    /// of 50 lists out of the entry they prefer: a random placement of 50 keys in 256 entries
    /// displaces 4.5 on average and more than 14 in none of 3,000 simulated placements, and the
    /// hash without its finishing multiply did so for 1 to 6 per cent of the seeds on these
    /// patterns (`N` 1.1, `abN` 1.9, `worker-N` 2.8, `model, agent-NN` 4.3, `agent-NNN` 5.8:
    /// `python3 benches/compare/label_hash_spread.py`), which crowded sets past their eight
    /// ways. (Arithmetic only, and 250,000 hashes: not under Miri.)
    #[test]
    #[cfg_attr(miri, ignore)]
    fn label_values_spread_over_the_entries_whatever_the_seeds() {
        use super::super::label_hash::LabelHasher;
        type Pattern = (&'static str, fn(usize) -> Vec<String>);
        let patterns: [Pattern; 5] = [
            ("agent-NNN", |i| vec![format!("agent-{i:03}")]),
            ("worker-N", |i| vec![format!("worker-{i}")]),
            ("abN", |i| vec![format!("ab{i}")]),
            ("N", |i| vec![format!("{i}")]),
            ("model, agent-NN", |i| {
                vec!["gpt-4o-mini".to_string(), format!("agent-{i:02}")]
            }),
        ];
        for (pattern, values) in patterns {
            let lists: Vec<Vec<String>> = (0..50).map(values).collect();
            let mut crowded = 0;
            for _ in 0..1_000 {
                let hasher = LabelHasher::new();
                let mut taken = [false; SETS * WAYS];
                let displaced = lists
                    .iter()
                    .filter(|l| std::mem::replace(&mut taken[entry_of(hasher.hash(l))], true))
                    .count();
                if displaced > 14 {
                    crowded += 1;
                }
            }
            assert!(
                crowded <= 3,
                "{pattern}: {crowded} of 1,000 seeds crowded the entries"
            );
        }
    }

    /// Invariant 3's count on the paths of a lookup that is not a hit: a miss (no entry) and
    /// a lookup while a fill has the sets out (from the probe's own code): each gives its
    /// count back, so `held` is where it was.
    #[test]
    fn every_lookup_that_is_not_a_hit_gives_its_count_back() {
        use crate::{Counter, Family, Registry};
        /// A value whose second read (when it is the first value: `Some` family) looks up.
        struct Nested<'a>(Option<&'a Family<Counter>>, &'a str, Cell<usize>);
        impl AsRef<str> for Nested<'_> {
            fn as_ref(&self) -> &str {
                let n = self.2.get();
                self.2.set(n + 1);
                if let (1, Some(family)) = (n, self.0) {
                    // Inside the fill's probe (the first call is the hash).
                    assert!(cache().state.get() == State::Filling);
                    let inner = family.with_label_values(&["inner"]).unwrap();
                    assert_eq!(cache().held.get(), 1, "uncached inside a fill");
                    inner.inc();
                }
                self.1
            }
        }
        std::thread::spawn(|| {
            let registry = Registry::new();
            let f = registry.counter_family("g_total", "G.", &["k"]).unwrap();
            for k in ["a", "b", "c", "inner"] {
                f.with_label_values(&[k]).unwrap().inc(); // insert
            }
            assert_eq!(cache().held.get(), 1);
            for round in 0..3 {
                for k in ["a", "b", "c"] {
                    let r = f.with_label_values(&[k]).unwrap(); // fill, then hits
                    assert_eq!(cache().held.get(), 2, "{k} in round {round}");
                    drop(r);
                    assert_eq!(cache().held.get(), 1);
                    assert!(f.with_label_values(&["absent"]).is_ok());
                    assert_eq!(cache().held.get(), 1, "a miss gives back");
                    assert!(f.remove(&["absent"]));
                }
            }
            // More values than a lookup keeps keys of: its fill compares through `as_ref`
            // (a shorter list is read into a copy before the fill, `label_hash::cold_copy`),
            // which looks up inside the fill.
            let wide = registry
                .counter_family("w_total", "W.", &["a", "b", "c", "d", "e"])
                .unwrap();
            let long = "a label value longer than sixteen bytes";
            let list = [long, "b", "c", "d", "e"];
            wide.with_label_values(&list).unwrap().inc(); // insert
            let values = list.map(|v| Nested((v == long).then_some(&f), v, Cell::new(0)));
            wide.with_label_values(&values).unwrap().inc(); // fill (the probe compares)
            assert_eq!(cache().held.get(), 1);
            assert_eq!(f.get(&["inner"]).unwrap().get(), 2.0);
        })
        .join()
        .unwrap();
    }

    /// After the cache ended (`Dead`, from a `pthread_key` destructor in the round after the
    /// cache's own), with no reference outstanding: a lookup counts from 0 and gives back to 0,
    /// calling `end_after_exit` with no guard, each time; with one outstanding (kept from
    /// before the exit), lookups leave the count at 1 and the guard in place until it drops.
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn lookups_after_the_cache_ended_give_their_count_back() {
        use crate::{Counter, Family, Registry, SeriesRef};
        use std::cell::RefCell;
        static ROUND: StdAtomicU64 = StdAtomicU64::new(0);
        static OK: StdAtomicU64 = StdAtomicU64::new(0);
        static FAMILY: std::sync::OnceLock<Family<Counter>> = std::sync::OnceLock::new();
        static KEY: ExitKey = ExitKey::new(at_exit);
        thread_local! {
            static KEPT: RefCell<Option<ManuallyDrop<SeriesRef<'static, Counter>>>> =
                const { RefCell::new(None) };
        }
        extern "C" fn at_exit(_: *mut std::ffi::c_void) {
            if ROUND.fetch_add(1, Relaxed) == 0 {
                assert!(KEY.arm());
                return;
            }
            let f = FAMILY.get().unwrap();
            let c = cache();
            let mut ok = c.state.get() == State::Dead && c.held.get() == 1;
            let guarded = || {
                let g = c.guard.take();
                let some = g.is_some();
                c.guard.set(g);
                some
            };
            ok &= guarded();
            for k in ["x", "x", "y"] {
                f.with_label_values(&[k]).unwrap().inc();
                ok &= c.held.get() == 1 && guarded();
            }
            let kept = KEPT.with(|k| k.borrow_mut().take()).unwrap();
            drop(ManuallyDrop::into_inner(kept));
            ok &= c.held.get() == 0 && !guarded();
            for k in ["x", "y", "z"] {
                f.with_label_values(&[k]).unwrap().inc();
                ok &= c.held.get() == 0 && !guarded() && c.sets.get() == no_sets();
            }
            OK.store(if ok { 1 } else { 2 }, Relaxed);
        }
        let registry = Registry::new();
        FAMILY.get_or_init(|| registry.counter_family("d_total", "D.", &["k"]).unwrap());
        std::thread::spawn(|| {
            assert!(KEY.arm());
            let f = FAMILY.get().unwrap();
            f.with_label_values(&["x"]).unwrap().inc(); // insert
            f.with_label_values(&["x"]).unwrap().inc(); // fill
            let kept = f.with_label_values(&["x"]).unwrap(); // hit, kept past the exit
            KEPT.with(|k| *k.borrow_mut() = Some(ManuallyDrop::new(kept)));
        })
        .join()
        .unwrap();
        assert_eq!(ROUND.load(Relaxed), 2, "two destructor rounds");
        assert_eq!(OK.load(Relaxed), 1, "the counts after the exit");
        let f = FAMILY.get().unwrap();
        assert_eq!(f.get(&["x"]).unwrap().get(), 5.0);
        assert_eq!(f.get(&["z"]).unwrap().get(), 1.0);
    }

    /// Invariant 6's last sentence: a count that would wrap is not taken, and lookups go the
    /// uncached way. Had it wrapped to 0, the reference's drop would have taken the thread for
    /// exited and dropped the guard that protects every entry, while the thread went on hitting
    /// them. (`usize::MAX` forgotten references cannot be made in a test: the count is set.)
    #[test]
    fn a_count_that_would_wrap_makes_lookups_uncached() {
        use crate::Registry;
        std::thread::spawn(|| {
            let registry = Registry::new();
            let f = registry.counter_family("w_total", "W.", &["k"]).unwrap();
            f.with_label_values(&["a"]).unwrap().inc(); // insert
            f.with_label_values(&["a"]).unwrap().inc(); // fill
            cache().held.set(usize::MAX);
            for _ in 0..3 {
                let a = f.with_label_values(&["a"]).unwrap();
                assert_eq!(cache().held.get(), usize::MAX, "not counted");
                a.inc();
            }
            cache().held.set(1);
            let a = f.with_label_values(&["a"]).unwrap();
            assert_eq!(cache().held.get(), 2, "a hit again");
            drop(a);
            assert_eq!(f.get(&["a"]).unwrap().get(), 5.0);
        })
        .join()
        .unwrap();
    }

    /// Invariant 3's other side: a hit whose comparison (the caller's `as_ref`) panics gives
    /// its count back as it unwinds, so the cache fills again afterwards (a count left behind
    /// made every later lookup on the thread take the uncached path).
    #[test]
    fn a_hit_whose_comparison_panics_gives_its_count_back() {
        use crate::Registry;
        struct PanicsOnCompare<'a>(&'a str, Cell<usize>);
        impl AsRef<str> for PanicsOnCompare<'_> {
            fn as_ref(&self) -> &str {
                let n = self.1.get();
                self.1.set(n + 1);
                // Call 0 is the hash; call 1 the hit's comparison.
                assert!(n != 1, "the caller's as_ref panicked");
                self.0
            }
        }
        std::thread::spawn(|| {
            let registry = Registry::new();
            let f = registry.counter_family("p_total", "P.", &["k"]).unwrap();
            let long = "a label value longer than sixteen bytes";
            f.with_label_values(&[long]).unwrap().inc(); // insert
            f.with_label_values(&[long]).unwrap().inc(); // fill
            let unwound = std::panic::catch_unwind(|| {
                let values = [PanicsOnCompare(long, Cell::new(0))];
                drop(f.with_label_values(&values));
            });
            assert!(unwound.is_err());
            assert_eq!(cache().held.get(), 1, "the count given back");
            f.with_label_values(&["b"]).unwrap().inc(); // insert
            f.with_label_values(&["b"]).unwrap().inc(); // fill
            let b = f.with_label_values(&["b"]).unwrap();
            assert_eq!(cache().held.get(), 2, "a hit: the cache filled");
            drop(b);
            assert_eq!(f.get(&[long]).unwrap().get(), 2.0);
        })
        .join()
        .unwrap();
    }

    /// The cache's paths in few steps, small enough for Miri (`MIRIFLAGS=-Zmiri-disable-isolation
    /// cargo +nightly miri test --lib --no-default-features registry::lookup_cache`), which
    /// checks the raw-pointer reads of the sets and the series against the aliasing rules: a
    /// fill, hits comparing a long value through the caller's `as_ref` (which looks up itself),
    /// a held hit kept across a removal and a reclaim, and a reference kept in a thread-local
    /// of a thread that exits (dropped after the cache's exit hook).
    #[test]
    fn hits_fills_re_entry_and_thread_exit_in_few_steps() {
        use crate::{Counter, Family, Registry};
        use std::cell::RefCell;
        struct Reentrant<'a>(&'a Family<Counter>, &'a str);
        impl AsRef<str> for Reentrant<'_> {
            fn as_ref(&self) -> &str {
                self.0.with_label_values(&["inner"]).unwrap().inc();
                self.1
            }
        }
        let registry = Registry::new();
        let f = registry.counter_family("m_total", "M.", &["k"]).unwrap();
        let long = "a label value longer than sixteen bytes";
        for _ in 0..3 {
            f.with_label_values(&[Reentrant(&f, long)]).unwrap().inc(); // insert, fill, hit
        }
        let held = f.with_label_values(&[long]).unwrap(); // a hit
        assert!(f.remove(&[long]));
        for i in 0..3 {
            let k = i.to_string();
            f.with_label_values(&[k.as_str()]).unwrap().inc();
            assert!(f.remove(&[k.as_str()]));
        }
        let _ = registry.encode_text(); // reclaims what no era protects
        held.inc();
        assert_eq!(held.get(), 4.0);
        drop(held);

        // A reference outstanding when the cache ends (invariant 6): kept in a thread-local
        // without a destructor, and dropped by a `pthread_key` destructor in the round after
        // the one that ends the cache (`AfterExit`: it arms itself once more).
        thread_local! {
            static KEPT: RefCell<Option<ManuallyDrop<SeriesRefOf>>> = const { RefCell::new(None) };
        }
        type SeriesRefOf = crate::SeriesRef<'static, Counter>;
        static RUNS: StdAtomicU64 = StdAtomicU64::new(0);
        static AFTER_EXIT: ExitKey = ExitKey::new(drop_kept);
        extern "C" fn drop_kept(_: *mut std::ffi::c_void) {
            if RUNS.fetch_add(1, Relaxed) == 0 {
                assert!(AFTER_EXIT.arm());
                return;
            }
            assert!(cache().state.get() == State::Dead, "the cache ended first");
            if let Some(kept) = KEPT.with(|k| k.borrow_mut().take()) {
                kept.inc();
                drop(ManuallyDrop::into_inner(kept));
            }
            assert_eq!(
                cache().held.get(),
                0,
                "the last reference dropped the guard"
            );
        }
        // `'static` for the thread-local; a static, not a leak, for Miri's leak check.
        static FAMILY: std::sync::OnceLock<Family<Counter>> = std::sync::OnceLock::new();
        let f = FAMILY.get_or_init(|| f);
        std::thread::spawn(move || {
            if !AFTER_EXIT.arm() {
                return; // not Linux: no key (the thread-local hook's order is `std`'s)
            }
            f.with_label_values(&["kept"]).unwrap().inc(); // insert
            f.with_label_values(&["kept"]).unwrap().inc(); // fill
            let kept = f.with_label_values(&["kept"]).unwrap(); // hit
            KEPT.with(|k| *k.borrow_mut() = Some(ManuallyDrop::new(kept)));
        })
        .join()
        .unwrap();
        if cfg!(all(target_os = "linux", target_env = "gnu")) {
            assert_eq!(RUNS.load(Relaxed), 2);
            assert_eq!(f.get(&["kept"]).unwrap().get(), 3.0);
        }
    }

    /// A thread whose first fill is in a `pthread_key` destructor has its cache ended too (its
    /// sets freed, its guard dropped), by `EXIT`'s key in the next round: seen from the same
    /// destructor two rounds later. Fails if the hook is only the thread-local (glibc never
    /// runs one registered then).
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn a_cache_first_filled_in_a_key_destructor_ends() {
        use crate::{Counter, Family, Registry};
        static ROUND: StdAtomicU64 = StdAtomicU64::new(0);
        static DEAD: StdAtomicU64 = StdAtomicU64::new(0);
        static FAMILY: std::sync::OnceLock<Family<Counter>> = std::sync::OnceLock::new();
        static KEY: ExitKey = ExitKey::new(at_exit);
        extern "C" fn at_exit(_: *mut std::ffi::c_void) {
            match ROUND.fetch_add(1, Relaxed) {
                0 => {
                    let f = FAMILY.get().unwrap();
                    for _ in 0..2 {
                        f.with_label_values(&["x"]).unwrap().inc(); // insert, then fill
                    }
                    assert!(cache().state.get() == State::Live);
                }
                1 => {}
                _ => {
                    let dead = cache().state.get() == State::Dead
                        && cache().sets.get() == no_sets()
                        && cache().held.get() == 0;
                    DEAD.store(if dead { 1 } else { 2 }, Relaxed);
                    return;
                }
            }
            assert!(KEY.arm());
        }
        let registry = Registry::new();
        FAMILY.get_or_init(|| registry.counter_family("k_total", "K.", &["k"]).unwrap());
        std::thread::spawn(|| assert!(KEY.arm())).join().unwrap();
        assert_eq!(ROUND.load(Relaxed), 3, "three destructor rounds");
        assert_eq!(DEAD.load(Relaxed), 1, "the cache ended");
        assert_eq!(FAMILY.get().unwrap().get(&["x"]).unwrap().get(), 2.0);
    }
}
