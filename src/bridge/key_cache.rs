//! The recorder's handle cache: a hash table from `metrics::Key` to a handle, read without a
//! lock or an atomic read-modify-write.
//!
//! Every `counter!`/`gauge!`/`histogram!` call asks the recorder for its key's handle, so this
//! lookup is the bridge's hot path. The copy-on-write map behind an `ArcSwap` that it replaces
//! cost two locked instructions per load (`ArcSwap::load` takes and returns a debt slot;
//! `sync::era` measured about 10.5 ns for them here), as much as the rest of the lookup.
//!
//! A key's series can be removed from its family (`Family::remove`, `retain`, `clear`;
//! `MetricsCollector::remove_agent`), so an entry can go stale: the recorder then *replaces* it
//! with an entry for the key's new series, and a *sweep* drops the entries of keys whose series
//! are gone and that nobody wrote since. Replaced and swept entries, and replaced tables, are
//! freed by the crate's hazard-era reclamation (`sync::era`, the global domain the families
//! use): a reader holds a guard while it probes (a slot of its thread's record and a compiler
//! fence; no lock, no read-modify-write), and an object is freed only once no guard's era can
//! hold it.
//!
//! # Invariants
//! 1. **The current table owns exactly the live entries.** An entry (from `Box::into_raw`) is
//!    in one slot of the current table from its insert until it is replaced (its slot then
//!    points to the key's new entry) or swept (the table that replaces the current one does not
//!    hold it); then it is retired, once. A slot only ever goes from null to an entry, or from
//!    an entry to another entry *for the same key*.
//! 2. **A table is retired only after it is replaced.** Growing and sweeping build a new
//!    table, publish it in `current`, and retire the old one *before* retiring any entry the
//!    sweep dropped: a reader still probing the old table, protected at an era no later than
//!    the table's retirement, is then protected for every entry it can reach from there too
//!    (retired later still). A replaced entry may still sit in such an old table; it is retired
//!    after that table was, for the same reason.
//! 3. **Every table is at most half full** (a writer grows, or sweeps, before the insert that
//!    would pass half; a replacement does not change the count), so a probe always reaches a
//!    null slot and ends.
//! 4. **Writers are serialised** by the cache's own mutex (the recorder calls `insert` under
//!    its own mutex too; the inner one is then uncontended).
//! 5. **Bounded.** A sweep runs when an insert would pass `sweep_at`, which is twice what the
//!    last sweep kept (at least [`SWEEP_MIN`]): so the cache holds at most twice the entries
//!    whose series were live at the last sweep, or [`SWEEP_MIN`], plus what waits for
//!    reclamation (bounded by `sync::era`), whatever the number of keys ever seen; and each
//!    sweep's scan is paid for by as many inserts before it.
//!
//! # Orderings
//! * A writer fills an entry, or a whole new table, with plain stores and then publishes it
//!   with one `Release` store (of the slot, or of `current`); a reader reaches it only through
//!   an `Acquire` load of that pointer, so it sees it fully built.
//! * Each object records its birth era ([`Domain::era`]) before it is published; a reader
//!   validates its guard after every pointer load and before it dereferences the pointer, and
//!   starts again from `current` when the era moved (`sync::era`, "Why it is safe").
//! * A reader that meets a null slot reports a miss. It may be racing an insert of its key, or
//!   probing a table that a grow or sweep has just replaced: the recorder's slow path then
//!   looks again under its mutex. A miss is never wrong, only slower; a hit is an entry
//!   inserted for that key (invariant 1), possibly one just replaced or swept, which the
//!   recorder checks (its series may be gone: the recorder's liveness check catches that).
//!
//! Checked by `stress_readers_during_growth_replacement_and_sweeps` below (readers probe while
//! a writer inserts, replaces, grows and sweeps; run under AddressSanitizer by `.ci/asan`):
//! freeing a replaced table or entry while a reader may hold it fails it.

use crate::sync::era::{assert_not_freed, Domain};
use metrics::Key;
use std::marker::PhantomData;
use std::ptr;
use std::sync::atomic::AtomicPtr;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::{Arc, Mutex};

/// `a == b` (metrics' `Key` equality, which ignores label order), with a fast path first: the
/// hashes, then each string's address and length before its bytes. The `counter!` macro builds
/// keys from `'static` names and label keys (and often static values), the very strings the
/// cached key holds, so a hit usually ends without a `memcmp` call (callgrind, the bridged
/// `counter!` with two labels: five `memcmp` calls were 90 of its 648 instructions).
#[inline]
fn same_key(a: &Key, b: &Key) -> bool {
    #[inline(always)]
    fn same(a: &str, b: &str) -> bool {
        a.len() == b.len() && (ptr::eq(a.as_ptr(), b.as_ptr()) || a == b)
    }
    if a.get_hash() != b.get_hash() {
        return false;
    }
    let in_order = same(a.name(), b.name())
        && a.labels().len() == b.labels().len()
        && a.labels()
            .zip(b.labels())
            .all(|(x, y)| same(x.key(), y.key()) && same(x.value(), y.value()));
    in_order || a == b
}

/// Slots of a new cache's first table.
const FIRST_SLOTS: usize = 16;

/// The fewest entries a sweep waits for (invariant 5).
pub(super) const SWEEP_MIN: usize = 64;

struct Entry<H> {
    key: Key,
    handle: Arc<H>,
    /// [`Domain::era`] before the entry was first published.
    birth: u64,
}

impl<H> Entry<H> {
    /// The bytes freeing the entry gives back: the struct, its copy of the key (the name and
    /// label strings, counted as owned: a static one makes it a few bytes over), and the
    /// handle when the entry holds its last reference (what the handle's metric owns aside).
    fn footprint(&self) -> usize {
        let labels: usize = self
            .key
            .labels()
            .map(|l| std::mem::size_of::<metrics::Label>() + l.key().len() + l.value().len())
            .sum();
        let handle = if Arc::strong_count(&self.handle) == 1 {
            // `ArcInner`: the two counts and the value.
            2 * std::mem::size_of::<usize>() + std::mem::size_of::<H>()
        } else {
            0
        };
        std::mem::size_of::<Self>() + self.key.name().len() + labels + handle
    }

    /// Retires `entry` in the global domain, counting its [`footprint`](Self::footprint).
    ///
    /// # Safety
    /// `Domain::retire_sized`'s, for `entry`.
    unsafe fn retire(entry: *mut Entry<H>)
    where
        H: Send + Sync + 'static,
    {
        // SAFETY: the caller's; `entry` is live until retired.
        unsafe { Domain::global().retire_sized(entry, (*entry).birth, (*entry).footprint()) }
    }
}

struct Table<H> {
    /// Slots minus one (the slot count is a power of two).
    mask: usize,
    slots: Box<[AtomicPtr<Entry<H>>]>,
    /// [`Domain::era`] before the table was published.
    birth: u64,
}

impl<H> Table<H> {
    fn with_slots(n: usize) -> Table<H> {
        // The probe sequences (`i = (i + 1) & mask`) reach every slot only for a power of two;
        // the readers' unchecked indexing relies only on `mask < n`, which any `n >= 1` gives.
        // Checked here, on the cold path, rather than trusted to the callers.
        assert!(n.is_power_of_two(), "a key cache table of {n} slots");
        Table {
            mask: n - 1,
            slots: (0..n).map(|_| AtomicPtr::new(ptr::null_mut())).collect(),
            birth: Domain::global().era(),
        }
    }

    /// Puts `entry` in the first free slot of its probe sequence (its key is not in the table:
    /// the writer checked under the mutex). Writers only.
    fn place(&self, entry: *mut Entry<H>) {
        // SAFETY: the writer (the caller, under the mutex) owns `entry`: live, not freed.
        let hash = unsafe { (*entry).key.get_hash() };
        let mut i = hash as usize & self.mask;
        // Invariant 3: a free slot exists.
        while !self.slots[i].load(Relaxed).is_null() {
            i = (i + 1) & self.mask;
        }
        self.slots[i].store(entry, Release);
    }

    /// The slot holding `key`'s entry, if any. Writers only (the entries it reads are live:
    /// invariant 1).
    fn find_locked(&self, key: &Key) -> Option<usize> {
        let mut i = key.get_hash() as usize & self.mask;
        loop {
            let entry = self.slots[i].load(Relaxed);
            if entry.is_null() {
                return None;
            }
            // SAFETY: the current table's entries are live while the writer holds the mutex
            // (only it retires them; invariant 1).
            if same_key(unsafe { &(*entry).key }, key) {
                return Some(i);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// The entries in the table's slots.
    fn entries(&self) -> impl Iterator<Item = *mut Entry<H>> + '_ {
        self.slots
            .iter()
            .map(|s| s.load(Relaxed))
            .filter(|e| !e.is_null())
    }
}

/// What the mutex guards (invariant 4).
struct Owned {
    /// Entries in the current table.
    len: usize,
    /// Sweep before an insert that would pass this (invariant 5).
    sweep_at: usize,
}

/// A map from `metrics::Key` to `Arc<H>` (see the module doc).
pub(super) struct KeyCache<H: Send + Sync + 'static> {
    /// The current table (from `Box::into_raw`), owned by the cache; it owns the entries its
    /// slots point to (invariant 1).
    current: AtomicPtr<Table<H>>,
    owned: Mutex<Owned>,
    /// The cache owns tables and entries of `H` handles, shared with readers on any thread.
    _owns: PhantomData<Arc<H>>,
}

impl<H: Send + Sync + 'static> Default for KeyCache<H> {
    fn default() -> Self {
        let first = Box::new(Table::with_slots(FIRST_SLOTS));
        KeyCache {
            current: AtomicPtr::new(Box::into_raw(first)),
            owned: Mutex::new(Owned {
                len: 0,
                sweep_at: SWEEP_MIN,
            }),
            _owns: PhantomData,
        }
    }
}

impl<H: Send + Sync + 'static> Drop for KeyCache<H> {
    fn drop(&mut self) {
        // SAFETY: no reader borrows the cache any more (`get` borrows it), so nothing reaches
        // the current table or its entries; both came from `Box::into_raw` and are owned here
        // (invariant 1), so they are freed once. Retired tables and entries belong to the
        // domain, and a retired table never frees the entries it points to.
        unsafe {
            let table = Box::from_raw(*self.current.get_mut());
            for entry in table.entries() {
                drop(Box::from_raw(entry));
            }
        }
    }
}

impl<H: Send + Sync + 'static> KeyCache<H> {
    /// The handle cached for `key`, if any: under a reclamation guard, one `Acquire` load of
    /// the table, a probe from the hash the key carries, a key comparison per occupied slot,
    /// one reference-count increment. The handle may be stale (its series removed): the caller
    /// checks.
    #[inline]
    pub(super) fn get(&self, key: &Key) -> Option<Arc<H>> {
        let mut guard = Domain::global().guard();
        'retry: loop {
            let table = self.current.load(Acquire);
            if !guard.validate() {
                continue;
            }
            assert_not_freed(table);
            // SAFETY: validated under `guard` (see the module's orderings): the table is the
            // current one or was retired (invariant 2) at an era the guard protects, so it is
            // not freed while the guard lives.
            let table = unsafe { &*table };
            let mut i = key.get_hash() as usize & table.mask;
            loop {
                // SAFETY: `i` is masked with `mask`, and a table has `mask + 1` slots.
                let entry = unsafe { table.slots.get_unchecked(i) }.load(Acquire);
                if entry.is_null() {
                    return None;
                }
                if !guard.validate() {
                    continue 'retry;
                }
                assert_not_freed(entry);
                // SAFETY: validated under `guard`: live in the current table, or retired after
                // the table it was read from (invariants 1 and 2) at an era the guard protects;
                // published fully built (the `Acquire` load pairs with its `Release` store).
                let entry = unsafe { &*entry };
                if same_key(&entry.key, key) {
                    return Some(Arc::clone(&entry.handle));
                }
                i = (i + 1) & table.mask;
            }
        }
    }

    /// Adds `key` with `handle`, or replaces the key's entry if it has one (the recorder, under
    /// its mutex, inserts a key that is absent or whose handle is stale). Before an insert that
    /// would pass `sweep_at` it sweeps: it keeps the entries whose handle `live` accepts and
    /// retires the others (invariant 5); it grows the table before it would pass half full.
    pub(super) fn insert(&self, key: &Key, handle: Arc<H>, live: impl FnMut(&H) -> bool) {
        let domain = Domain::global();
        let mut owned = self.owned.lock().unwrap_or_else(|e| e.into_inner());
        let entry = Box::into_raw(Box::new(Entry {
            key: key.clone(),
            handle,
            birth: domain.era(),
        }));
        // SAFETY: only the holder of the mutex (us) replaces or retires the current table.
        let mut table = unsafe { &*self.current.load(Relaxed) };
        if let Some(i) = table.find_locked(key) {
            // Invariant 1: the same key's slot now points to the new entry; the old one is
            // unreachable from the current table, and any older table holding it was retired
            // before (invariant 2).
            let old = table.slots[i].swap(entry, Release);
            // SAFETY: `old` came from `Box::into_raw`, is unlinked from the current table and
            // retired once, here; its birth was read before it was published.
            unsafe { Entry::retire(old) };
            return;
        }
        if owned.len + 1 > owned.sweep_at {
            table = self.sweep(&mut owned, live);
        }
        if (owned.len + 1) * 2 > table.slots.len() {
            let grown = Box::new(Table::with_slots(table.slots.len() * 2));
            for e in table.entries() {
                grown.place(e);
            }
            grown.place(entry);
            self.publish(grown);
        } else {
            table.place(entry);
        }
        owned.len += 1;
    }

    /// Under the mutex: publishes `table` (every slot of it written) as the current table and
    /// retires the old one (invariant 2); returns the new one.
    fn publish(&self, table: Box<Table<H>>) -> &Table<H> {
        let table = Box::into_raw(table);
        // Publishes it, every slot written above (`Release`; readers load it with `Acquire`).
        let old = self.current.swap(table, Release);
        // SAFETY: `old` came from `Box::into_raw`; after the swap no new reader reaches it; it
        // is retired once, here; its birth was read before it was published. Counted with its
        // slot array (the reclamation's pending bytes).
        unsafe {
            let bytes = std::mem::size_of::<Table<H>>() + std::mem::size_of_val(&*(*old).slots);
            Domain::global().retire_sized(old, (*old).birth, bytes)
        };
        // SAFETY: just published, and only a later writer (after us) can retire it.
        unsafe { &*table }
    }

    /// Under the mutex: replaces the current table with one holding only the entries `live`
    /// accepts, retires the old table and then the dropped entries (invariant 2), and sets the
    /// next sweep's threshold (invariant 5). Returns the current table.
    #[cold]
    fn sweep(&self, owned: &mut Owned, mut live: impl FnMut(&H) -> bool) -> &Table<H> {
        // SAFETY: only the holder of the mutex (us) replaces or retires the current table.
        let table = unsafe { &*self.current.load(Relaxed) };
        let (mut keep, mut dead) = (Vec::new(), Vec::new());
        for e in table.entries() {
            // SAFETY: the current table's entries are live under the mutex (invariant 1).
            let handle = unsafe { &(*e).handle };
            if live(handle) {
                keep.push(e);
            } else {
                dead.push(e);
            }
        }
        owned.len = keep.len();
        owned.sweep_at = (2 * keep.len()).max(SWEEP_MIN);
        if dead.is_empty() {
            return table;
        }
        // Room for the kept entries and as many inserts again before the next sweep.
        let slots = (4 * (keep.len() + 1)).next_power_of_two().max(FIRST_SLOTS);
        let swept = Box::new(Table::with_slots(slots));
        for &e in &keep {
            swept.place(e);
        }
        let table = self.publish(swept);
        for e in dead {
            // SAFETY: `e` came from `Box::into_raw`, is in no table readers can reach from now
            // on (the current one does not hold it; the one that did was retired just above,
            // before it: invariant 2), and is retired once, here; its birth was read before it
            // was first published.
            unsafe { Entry::retire(e) };
        }
        table
    }

    /// The number of keys cached.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.owned.lock().unwrap().len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics::Label;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};

    /// Every handle live (no sweep drops anything).
    fn all(_: &usize) -> bool {
        true
    }

    fn key(i: usize) -> Key {
        Key::from_parts(
            "tool_calls_total",
            vec![
                Label::new("tool", format!("tool-{i}")),
                Label::new("status", "ok"),
            ],
        )
    }

    #[test]
    fn hits_what_was_inserted_and_misses_the_rest() {
        // Fewer keys under Miri (`.ci/miri`): still four grows past the first table.
        const N: usize = if cfg!(miri) { 100 } else { 1_000 };
        let cache = KeyCache::<usize>::default();
        assert!(cache.get(&key(1)).is_none());
        for i in 0..N {
            cache.insert(&key(i), Arc::new(i), all);
        }
        cache.insert(&key(7), Arc::new(70), all); // a repeat replaces the entry
        assert_eq!(cache.len(), N);
        for i in 0..N {
            let expected = if i == 7 { 70 } else { i };
            assert_eq!(cache.get(&key(i)).as_deref(), Some(&expected));
        }
        assert!(cache.get(&key(N)).is_none());
        // The table at most half full, holding exactly the entries counted.
        let _owned = cache.owned.lock().unwrap();
        // SAFETY: the mutex is held: nothing replaces the table.
        let table = unsafe { &*cache.current.load(Relaxed) };
        assert_eq!(table.entries().count(), N);
        assert!(N * 2 <= table.slots.len());
    }

    /// Keys churned as agents are: each key's handle goes dead right after its insert (its
    /// series removed). Sweeps keep the cache at most `SWEEP_MIN` entries, and the dead handles
    /// are dropped (retired, then freed by reclamation), not kept for every key ever seen.
    #[test]
    fn sweeps_bound_the_cache_under_key_churn() {
        static DROPPED: AtomicUsize = AtomicUsize::new(0);
        struct Handle(AtomicBool);
        impl Drop for Handle {
            fn drop(&mut self) {
                DROPPED.fetch_add(1, SeqCst);
            }
        }
        // Fewer keys under Miri (`.ci/miri`), where 20 000 inserts take minutes (a thousand,
        // a minute); as many sweeps per key either way (one per `SWEEP_MIN` inserts). What
        // may wait for reclamation at the end (up to a batch, `RECLAIM_BATCH`, or more while
        // other tests' guards hold it) is then a larger share of the keys.
        const KEYS: usize = if cfg!(miri) { 200 } else { 20_000 };
        const SLACK: usize = if cfg!(miri) { KEYS / 2 } else { 2_000 };
        let cache = KeyCache::<Handle>::default();
        for i in 0..KEYS {
            let handle = Arc::new(Handle(AtomicBool::new(true)));
            cache.insert(&key(i), handle.clone(), |h| h.0.load(SeqCst));
            assert!(cache.len() <= SWEEP_MIN);
            handle.0.store(false, SeqCst); // its series was removed
        }
        // Reclamation frees in batches, and other tests' guards may hold a few for a while.
        let dropped = DROPPED.load(SeqCst);
        assert!(
            dropped >= KEYS - SLACK,
            "{dropped} of {KEYS} dead handles freed"
        );
        // A live key survives every sweep, and a dead one that comes back is found again.
        let live = Arc::new(Handle(AtomicBool::new(true)));
        cache.insert(&key(KEYS), live.clone(), |h| h.0.load(SeqCst));
        for i in 0..if cfg!(miri) { 100 } else { 1_000 } {
            let handle = Arc::new(Handle(AtomicBool::new(false)));
            cache.insert(&key(KEYS + 1 + i), handle, |h| h.0.load(SeqCst));
        }
        assert!(cache
            .get(&key(KEYS))
            .is_some_and(|h| Arc::ptr_eq(&h, &live)));
        let again = Arc::new(Handle(AtomicBool::new(true)));
        cache.insert(&key(3), again.clone(), |h| h.0.load(SeqCst));
        assert!(cache.get(&key(3)).is_some_and(|h| Arc::ptr_eq(&h, &again)));
    }

    /// `same_key` is metrics' `Key` equality: equal text at other addresses, labels in another
    /// order (metrics ignores label order, and so must a cached lookup), and strings sharing an
    /// address but not a length.
    #[test]
    fn same_key_is_metrics_key_equality() {
        let text = String::from("tool_calls_totalok");
        let pairs = [
            (key(1), key(1)),
            (key(1), key(2)),
            (
                Key::from_parts("a", vec![Label::new("x", "1"), Label::new("y", "2")]),
                Key::from_parts("a", vec![Label::new("y", "2"), Label::new("x", "1")]),
            ),
            (
                Key::from_parts(text[..16].to_string(), vec![Label::new("s", "ok")]),
                Key::from_parts(
                    "tool_calls_total",
                    vec![Label::new("s", text[16..].to_string())],
                ),
            ),
            (
                Key::from_parts(text[..4].to_string(), vec![]),
                Key::from_parts(text[..5].to_string(), vec![]),
            ),
            (
                Key::from_parts("a", vec![Label::new("x", "1")]),
                Key::from_parts("a", vec![Label::new("x", "1"), Label::new("y", "2")]),
            ),
        ];
        for (a, b) in &pairs {
            assert_eq!(same_key(a, b), a == b, "{a:?} vs {b:?}");
            assert_eq!(same_key(b, a), a == b, "{b:?} vs {a:?}");
        }
        assert!(
            same_key(&pairs[2].0, &pairs[2].1),
            "label order does not matter"
        );
        let cache = KeyCache::<usize>::default();
        cache.insert(&pairs[2].0, Arc::new(7), all);
        assert_eq!(cache.get(&pairs[2].1).as_deref(), Some(&7));
    }

    /// Readers probe while a writer inserts, replaces, grows and sweeps, over many fresh caches
    /// (so that many grows and sweeps happen under the readers): every hit is a handle of its
    /// own key, and every key inserted before a read began, and never swept, is found by it
    /// (the current table is loaded after). Under AddressSanitizer, a replaced table or entry
    /// freed while a reader may still hold it is a use-after-free here.
    #[test]
    fn stress_readers_during_growth_replacement_and_sweeps() {
        // One round under Miri (`.ci/miri`): a hundred keys grow a fresh cache and sweep it
        // (at `SWEEP_MIN`) under the two readers; two rounds took half a minute there.
        const ROUNDS: usize = if cfg!(miri) { 1 } else { 100 };
        const KEYS: usize = if cfg!(miri) { 100 } else { 2_000 };
        // Handles are `i + KEYS * version`; those of keys `i % 5 == 0` are dead (swept).
        let live = |h: &usize| h % KEYS % 5 != 0;
        let keys: Vec<Key> = (0..KEYS).map(key).collect();
        for _ in 0..ROUNDS {
            let cache = KeyCache::<usize>::default();
            let inserted = AtomicUsize::new(0);
            let done = AtomicBool::new(false);
            std::thread::scope(|s| {
                for r in 0..2 {
                    let (cache, keys, inserted, done) = (&cache, &keys, &inserted, &done);
                    s.spawn(move || loop {
                        let finished = done.load(SeqCst);
                        let n = inserted.load(SeqCst);
                        for (i, k) in keys.iter().enumerate().skip(r).step_by(3) {
                            match cache.get(k) {
                                Some(h) => assert_eq!(*h % KEYS, i, "a hit is its own key's"),
                                None => assert!(
                                    i >= n || i % 5 == 0,
                                    "key {i} was inserted before the read"
                                ),
                            }
                            if i > n + 64 {
                                break;
                            }
                        }
                        if finished {
                            break;
                        }
                    });
                }
                for (i, k) in keys.iter().enumerate() {
                    cache.insert(k, Arc::new(i), live);
                    if i % 7 == 0 {
                        // Replace an earlier key's entry (a new handle for the same key).
                        let j = i / 2;
                        cache.insert(&keys[j], Arc::new(j + KEYS), live);
                    }
                    inserted.store(i + 1, SeqCst);
                }
                done.store(true, SeqCst);
            });
            assert!(cache.len() <= KEYS);
            for (i, k) in keys.iter().enumerate().filter(|(i, _)| i % 5 != 0) {
                assert_eq!(cache.get(k).map(|h| *h % KEYS), Some(i));
            }
        }
    }
}
