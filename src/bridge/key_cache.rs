//! The recorder's handle cache: an append-only hash table from `metrics::Key` to a handle,
//! read without a lock or an atomic read-modify-write.
//!
//! Every `counter!`/`gauge!`/`histogram!` call asks the recorder for its key's handle, so this
//! lookup is the bridge's hot path. The copy-on-write map behind an `ArcSwap` that it replaces
//! cost two locked instructions per load (`ArcSwap::load` takes and returns a debt slot;
//! `sync::era` measured about 10.5 ns for them here), as much as the rest of the lookup. Keys
//! are never unregistered (the `metrics::Recorder` trait has no such call, and the cache holds
//! only series within their family's cap), so the table can be append-only, and an append-only
//! table needs no reclamation scheme at all: nothing is freed before the cache drops.
//!
//! # Invariants
//! 1. **A slot is written once.** It goes from null to an entry (a key and its handle) and
//!    never changes again; an entry lives until the cache drops.
//! 2. **A table is never freed before the cache.** Growing builds a table of twice the slots
//!    holding every entry, publishes it, and keeps the old one, which readers may still be
//!    probing. The tables together have at most twice the slots of the newest (1 + 1/2 +
//!    1/4 + ...), and entries are shared between them, so memory stays linear in the keys.
//! 3. **Every table is at most half full** (a writer grows before the insert that would pass
//!    half), so a probe always reaches a null slot and ends.
//! 4. **Writers are serialised** by the cache's own mutex, which also owns the tables and the
//!    entries (the recorder calls `insert` under its own mutex too; the inner one is then
//!    uncontended).
//!
//! # Orderings
//! * A writer fills an entry, or a whole new table, with plain stores and then publishes it
//!   with one `Release` store (of the slot, or of `current`); a reader reaches it only through
//!   an `Acquire` load of that pointer, so it sees it fully built.
//! * A reader that meets a null slot reports a miss. It may be racing an insert of its key, or
//!   probing a table that a grow has just replaced: the recorder's slow path then looks again
//!   under its mutex and finds the key. A miss is never wrong, only slower; a hit is always
//!   the handle inserted for that key (invariant 1).
//!
//! Checked by `stress_readers_during_growth` below (readers probe while a writer inserts and
//! grows; run under AddressSanitizer by `.ci/asan`): freeing the replaced table at a grow, or
//! publishing a slot before its entry is written, fails it.

use metrics::Key;
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

struct Entry<H> {
    key: Key,
    handle: Arc<H>,
}

struct Table<H> {
    /// Slots minus one (the slot count is a power of two).
    mask: usize,
    slots: Box<[AtomicPtr<Entry<H>>]>,
}

impl<H> Table<H> {
    fn with_slots(n: usize) -> Table<H> {
        Table {
            mask: n - 1,
            slots: (0..n).map(|_| AtomicPtr::new(ptr::null_mut())).collect(),
        }
    }

    /// Puts `entry` in the first free slot of its probe sequence (the key is not in the table:
    /// the writer checked under the mutex). Writers only.
    fn place(&self, entry: &Arc<Entry<H>>) {
        let mut i = entry.key.get_hash() as usize & self.mask;
        // Invariant 3: a free slot exists.
        while !self.slots[i].load(Relaxed).is_null() {
            i = (i + 1) & self.mask;
        }
        self.slots[i].store(Arc::as_ptr(entry).cast_mut(), Release);
    }
}

/// What the mutex guards: ownership of every table and entry (invariants 1, 2).
struct Owned<H> {
    tables: Vec<Arc<Table<H>>>,
    entries: Vec<Arc<Entry<H>>>,
}

/// An append-only map from `metrics::Key` to `Arc<H>` (see the module doc).
pub(super) struct KeyCache<H> {
    /// The newest table; points into `owned.tables`.
    current: AtomicPtr<Table<H>>,
    owned: Mutex<Owned<H>>,
}

impl<H> Default for KeyCache<H> {
    fn default() -> Self {
        let first = Arc::new(Table::with_slots(FIRST_SLOTS));
        KeyCache {
            current: AtomicPtr::new(Arc::as_ptr(&first).cast_mut()),
            owned: Mutex::new(Owned {
                tables: vec![first],
                entries: Vec::new(),
            }),
        }
    }
}

impl<H> KeyCache<H> {
    /// The handle cached for `key`, if any: one `Acquire` load of the table, a probe from the
    /// hash the key carries, a key comparison per occupied slot, one reference-count increment.
    #[inline]
    pub(super) fn get(&self, key: &Key) -> Option<Arc<H>> {
        // SAFETY: `current` always points to a live table of this cache: at construction the
        // first table, already in `owned.tables`; after a grow the new table, which the
        // writer holds (`grown`) from before its `Release` store until it has pushed it into
        // `owned.tables`. Tables leave `owned.tables` only when `self` drops (invariant 2),
        // which cannot happen during `&self`.
        let table = unsafe { &*self.current.load(Acquire) };
        let mut i = key.get_hash() as usize & table.mask;
        loop {
            let entry = table.slots[i].load(Acquire);
            if entry.is_null() {
                return None;
            }
            // SAFETY: a non-null slot points to an entry in `owned.entries`, published by its
            // `Release` store after it was fully built (the `Acquire` load above pairs with
            // it), and entries live until `self` drops (invariant 1).
            let entry = unsafe { &*entry };
            if same_key(&entry.key, key) {
                return Some(Arc::clone(&entry.handle));
            }
            i = (i + 1) & table.mask;
        }
    }

    /// Adds `key` with `handle`, growing first if the table would pass half full. A key
    /// already present keeps its handle (the first insert wins; invariant 1).
    pub(super) fn insert(&self, key: &Key, handle: Arc<H>) {
        let mut owned = self.owned.lock().unwrap_or_else(|e| e.into_inner());
        if self.get(key).is_some() {
            return;
        }
        let entry = Arc::new(Entry {
            key: key.clone(),
            handle,
        });
        let table = owned.tables.last().expect("a cache always has a table");
        if (owned.entries.len() + 1) * 2 > table.slots.len() {
            let grown = Arc::new(Table::with_slots(table.slots.len() * 2));
            for e in &owned.entries {
                grown.place(e);
            }
            grown.place(&entry);
            // Publishes the grown table, every slot of it written above (`Release`; readers
            // load it with `Acquire`). The old table stays in `owned.tables` (invariant 2).
            self.current.store(Arc::as_ptr(&grown).cast_mut(), Release);
            owned.tables.push(grown);
        } else {
            table.place(&entry);
        }
        owned.entries.push(entry);
    }

    /// The number of keys cached.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.owned.lock().unwrap().entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics::Label;
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

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
        let cache = KeyCache::<usize>::default();
        assert!(cache.get(&key(1)).is_none());
        for i in 0..1_000 {
            cache.insert(&key(i), Arc::new(i));
        }
        cache.insert(&key(7), Arc::new(70)); // a repeat keeps the first handle
        assert_eq!(cache.len(), 1_000);
        for i in 0..1_000 {
            assert_eq!(cache.get(&key(i)).as_deref(), Some(&i));
        }
        assert!(cache.get(&key(1_000)).is_none());
        // Every table at most half full, and all of them together at most twice the newest.
        let owned = cache.owned.lock().unwrap();
        let newest = owned.tables.last().unwrap().slots.len();
        assert!(owned.entries.len() * 2 <= newest);
        assert!(owned.tables.iter().map(|t| t.slots.len()).sum::<usize>() <= 2 * newest);
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
        cache.insert(&pairs[2].0, Arc::new(7));
        assert_eq!(cache.get(&pairs[2].1).as_deref(), Some(&7));
    }

    /// Readers probe while a writer inserts and grows the table, over many fresh caches (so
    /// that many grows happen under the readers): every hit is the right handle, and every
    /// key inserted before a read began is found by it (the current table is loaded after).
    /// Under AddressSanitizer, a replaced table freed at its grow is a use-after-free here.
    #[test]
    fn stress_readers_during_growth() {
        const ROUNDS: usize = if cfg!(miri) { 2 } else { 100 };
        const KEYS: usize = if cfg!(miri) { 100 } else { 2_000 };
        let keys: Vec<Key> = (0..KEYS).map(key).collect();
        for _ in 0..ROUNDS {
            let cache = KeyCache::<usize>::default();
            let inserted = std::sync::atomic::AtomicUsize::new(0);
            let done = AtomicBool::new(false);
            std::thread::scope(|s| {
                for r in 0..2 {
                    let (cache, keys, inserted, done) = (&cache, &keys, &inserted, &done);
                    s.spawn(move || loop {
                        let finished = done.load(SeqCst);
                        let n = inserted.load(SeqCst);
                        for (i, k) in keys.iter().enumerate().skip(r).step_by(3) {
                            match cache.get(k) {
                                Some(h) => assert_eq!(*h, i, "a hit returns its own handle"),
                                None => assert!(i >= n, "key {i} was inserted before the read"),
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
                    cache.insert(k, Arc::new(i));
                    inserted.store(i + 1, SeqCst);
                }
                done.store(true, SeqCst);
            });
            assert_eq!(cache.len(), KEYS);
        }
    }
}
