//! A family's open-addressing hash table: slots of a tag (the label values' hash, or one of the
//! two reserved values) and a series pointer, linear probing. The rules for who changes it and
//! how readers see it are the invariants and orderings of [`family`](super::family)'s module
//! docs, which the comments here cite ("family invariant N").

use std::ptr;
use std::sync::atomic::{Ordering::Relaxed, Ordering::Release};

use super::series::Series;
use crate::sync::era::Domain;
use crate::sync::{AtomicPtr, AtomicU64};

/// The smallest table (slots).
#[cfg(not(agentcore_loom))]
pub(super) const MIN_SLOTS: usize = 16;
/// Small under loom so that the models rebuild (and so retire) tables.
#[cfg(agentcore_loom)]
pub(super) const MIN_SLOTS: usize = 4;

/// The tag of a slot never used: a probe ends here.
pub(super) const EMPTY: u64 = 0;
/// The tag of a slot whose series was removed: a probe goes on.
pub(super) const REMOVED: u64 = 1;

/// A slot's tag for a hash: the hash itself, moved off the two reserved values.
#[inline(always)]
pub(super) fn tag_of(hash: u64) -> u64 {
    if hash <= REMOVED {
        hash + 2
    } else {
        hash
    }
}

pub(super) struct Slot<M> {
    pub(super) tag: AtomicU64,
    pub(super) series: AtomicPtr<Series<M>>,
}

/// A family's hash table. Dropping it never drops the series it points to (family invariant 6).
pub(super) struct Table<M> {
    /// The reclamation era when the table was built (before it was published).
    pub(super) birth: u64,
    pub(super) mask: usize,
    pub(super) slots: Box<[Slot<M>]>,
}

impl<M> Table<M> {
    /// The bytes freeing the table gives back: the struct and its slot array (the series it
    /// points to are not its own).
    pub(super) fn footprint(&self) -> usize {
        std::mem::size_of::<Self>() + std::mem::size_of_val(&*self.slots)
    }

    /// Retires `table` in `domain`, counting its [`footprint`](Self::footprint).
    ///
    /// # Safety
    /// `Domain::retire_sized`'s, for `table`.
    pub(super) unsafe fn retire(table: *mut Table<M>, domain: &Domain)
    where
        M: Send + 'static,
    {
        // SAFETY: the caller's; `table` is live until retired.
        unsafe { domain.retire_sized(table, (*table).birth, (*table).footprint()) }
    }

    pub(super) fn new(slots: usize, birth: u64) -> Table<M> {
        // `find` relies on `slots == mask + 1`.
        assert!(slots.is_power_of_two());
        Table {
            birth,
            mask: slots - 1,
            slots: (0..slots)
                .map(|_| Slot {
                    tag: AtomicU64::new(EMPTY),
                    series: AtomicPtr::new(ptr::null_mut()),
                })
                .collect(),
        }
    }

    /// Under the writer mutex: the index of the live slot holding `values`.
    pub(super) fn find_locked<S: AsRef<str>>(&self, hash: u64, values: &[S]) -> Option<usize> {
        let tag = tag_of(hash);
        let mut i = hash as usize & self.mask;
        for _ in 0..self.slots.len() {
            let slot = &self.slots[i];
            match slot.tag.load(Relaxed) {
                EMPTY => return None,
                t if t == tag => {
                    // SAFETY: under the writer mutex nobody retires a series of the current
                    // table (family invariant 2); a live tag's pointer is a live series.
                    let series = unsafe { &*slot.series.load(Relaxed) };
                    if series.matches(values) {
                        return Some(i);
                    }
                }
                _ => {}
            }
            i = (i + 1) & self.mask;
        }
        None
    }

    /// Under the writer mutex: the live series, in slot order.
    pub(super) fn live(&self) -> impl Iterator<Item = *mut Series<M>> + '_ {
        self.slots
            .iter()
            .filter(|s| s.tag.load(Relaxed) > REMOVED)
            .map(|s| s.series.load(Relaxed))
    }

    /// Under the writer mutex: stores `series` in the first free slot of its probe sequence;
    /// returns whether that slot had never been used.
    pub(super) fn put(&self, hash: u64, series: *mut Series<M>) -> bool {
        let mut i = hash as usize & self.mask;
        loop {
            let slot = &self.slots[i];
            let tag = slot.tag.load(Relaxed);
            if tag <= REMOVED {
                slot.series.store(series, Release);
                slot.tag.store(tag_of(hash), Release);
                return tag == EMPTY;
            }
            i = (i + 1) & self.mask;
        }
    }
}
