//! The per-thread slot arena: where counters, histograms and summaries record.
//!
//! # Why
//! A shared atomic `fetch_add` costs about 2.4 ns uncontended on this class of machine and
//! 100-200 ns once two cores fight over the cache line. A plain load and store to memory that only
//! one thread writes costs about 0.7 ns and scales with the number of threads. So every counter,
//! histogram bucket and summary bucket is a *word offset* into an arena, and each thread records
//! into its own copy of the arena (its [`Block`]) with a relaxed load and a relaxed store. A read or
//! a scrape sums the word over every block. This is the per-CPU counter of the Linux kernel and
//! RocksDB's core-local statistics, done per thread.
//!
//! # Layout
//! A [`Block`] is a directory of `MAX_CHUNKS` chunk pointers; a chunk is `CHUNK_WORDS` zeroed
//! `AtomicU64`s, allocated the first time its owner records into it. A [`SlotRange`] never spans
//! two chunks. Blocks are linked into one push-only list and never freed while the arena lives
//! (the global arena lives for the whole process), so a reader can walk the list without locks.
//!
//! # Ownership and thread exit
//! A thread *leases* a block the first time it records. When the thread exits, its lease is
//! returned and the block (with all its counts) waits for the next new thread, which continues
//! adding to it. Counts recorded by an exited thread are therefore never lost, and memory is
//! bounded by the peak number of threads that recorded at once. A thread whose thread-local
//! storage is already torn down (a recording inside another thread-local's destructor) records
//! into the arena's *shared* block with atomic read-modify-writes instead.
//!
//! # Invariants
//! 1. A leased block's words are written only by the leasing thread (relaxed load + store), or by
//!    [`Arena::free`], which only touches words of a range that no live handle refers to.
//! 2. The shared block is written only with atomic RMW operations.
//! 3. A word belongs to at most one live series; a freed range is zeroed in every block before it
//!    goes back on the free list, so a reused range starts from zero.
//!
//! # Memory ordering
//! * Lease hand-over: the exiting owner releases with a `Release` store; the next owner takes the
//!   lease with an `Acquire` CAS, so it sees every word the previous owner wrote and continues
//!   from those values.
//! * Chunk installation: chunks are zero-initialised before being published with a `Release`
//!   CAS; readers load chunk pointers with `Acquire`.
//! * Block list: a block is fully built before a `Release` CAS links it at the head; readers load
//!   the head with `Acquire` and `next` pointers never change after publication.
//! * Words themselves are read and written `Relaxed`: each word is a monotone (counter) or
//!   last-writer-wins value, and the scrape needs no order between different words (histograms
//!   derive `_count` from the bucket words they read, see
//!   [`Histogram`](crate::primitives::Histogram)).
//! * Freeing: the last handle of a series is dropped after every write through it (the `Arc`
//!   release/acquire pair orders them), so zeroing in `free` cannot race with a write to the range.

use std::cell::Cell;
use std::ptr;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use std::sync::OnceLock;

use crate::sync::{AtomicBool, AtomicPtr, AtomicU64, Mutex};
use crate::Error;

/// Words per chunk (a chunk is 32 KiB).
#[cfg(not(agentcore_loom))]
pub(crate) const CHUNK_WORDS: usize = 4096;
/// Chunks per block: the arena holds at most `CHUNK_WORDS * MAX_CHUNKS` words (64 MiB per thread
/// if every word were in use; only chunks a thread records into are allocated).
#[cfg(not(agentcore_loom))]
pub(crate) const MAX_CHUNKS: usize = 2048;
/// Words per chunk (small under loom so the models stay small).
#[cfg(agentcore_loom)]
pub(crate) const CHUNK_WORDS: usize = 4;
/// Chunks per block (small under loom so the models stay small).
#[cfg(agentcore_loom)]
pub(crate) const MAX_CHUNKS: usize = 4;

/// A run of consecutive words in the arena, inside one chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SlotRange {
    start: u32,
    len: u32,
}

impl SlotRange {
    /// The first word.
    #[inline]
    pub(crate) fn start(self) -> u32 {
        self.start
    }

    /// The number of words.
    #[inline]
    pub(crate) fn len(self) -> usize {
        self.len as usize
    }

    /// The `i`-th word of the range.
    #[inline]
    pub(crate) fn word(self, i: usize) -> u32 {
        debug_assert!(i < self.len as usize);
        self.start + i as u32
    }
}

/// One thread's copy of the arena (or the shared copy for threads without one).
pub(crate) struct Block {
    /// Inline rather than boxed: one dependent load less on the recording path.
    chunks: [AtomicPtr<AtomicU64>; MAX_CHUNKS],
    /// The next block in the arena's list; set before the block is published, never changed.
    next: *const Block,
    leased: AtomicBool,
    /// This thread's read-side epoch for [`rcu`](super::rcu) (0 = not reading).
    pub(crate) rcu_epoch: AtomicU64,
    /// How many read guards this thread holds; written only by the lessee.
    pub(crate) rcu_nesting: AtomicU64,
}

// SAFETY: `next` is only written before the block is published and is read-only afterwards; every
// other field is an atomic. A `Block` is therefore safe to share between threads.
unsafe impl Sync for Block {}
// SAFETY: as above; the raw pointer does not carry thread affinity.
unsafe impl Send for Block {}

impl Block {
    fn new(leased: bool) -> Block {
        Block {
            chunks: std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
            next: ptr::null(),
            leased: AtomicBool::new(leased),
            rcu_epoch: AtomicU64::new(0),
            rcu_nesting: AtomicU64::new(0),
        }
    }

    /// The word, if its chunk exists in this block.
    #[inline(always)]
    fn word(&self, word: u32) -> Option<&AtomicU64> {
        let word = word as usize;
        let chunk = self.chunks.get(word / CHUNK_WORDS)?.load(Acquire);
        if chunk.is_null() {
            return None;
        }
        // SAFETY: a non-null chunk pointer points to `CHUNK_WORDS` initialised `AtomicU64`s that
        // live as long as the block (chunks are only freed when the arena is dropped), and
        // `word % CHUNK_WORDS < CHUNK_WORDS`.
        Some(unsafe { &*chunk.add(word % CHUNK_WORDS) })
    }

    /// The word, allocating its chunk if this block has none yet.
    fn word_or_alloc(&self, word: u32) -> Option<&AtomicU64> {
        let index = word as usize / CHUNK_WORDS;
        let dir = self.chunks.get(index)?;
        if dir.load(Acquire).is_null() {
            let fresh: Box<[AtomicU64]> = (0..CHUNK_WORDS).map(|_| AtomicU64::new(0)).collect();
            let fresh = Box::into_raw(fresh) as *mut AtomicU64;
            if dir
                .compare_exchange(ptr::null_mut(), fresh, AcqRel, Acquire)
                .is_err()
            {
                // SAFETY: `fresh` came from `Box::into_raw` just above and was never published.
                drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(fresh, CHUNK_WORDS)) });
            }
        }
        self.word(word)
    }

    /// Adds `v` to a word of a block this thread owns (relaxed load + store, no RMW).
    ///
    /// Callers guarantee invariant 1: only the leasing thread calls this on a leased block.
    #[inline(always)]
    pub(crate) fn owner_add_u64(&self, word: u32, v: u64) -> bool {
        match self.word(word) {
            Some(slot) => {
                slot.store(slot.load(Relaxed).wrapping_add(v), Relaxed);
                true
            }
            None => false,
        }
    }

    /// Adds `v` to an `f64` word of a block this thread owns.
    #[inline(always)]
    pub(crate) fn owner_add_f64(&self, word: u32, v: f64) -> bool {
        match self.word(word) {
            Some(slot) => {
                let sum = f64::from_bits(slot.load(Relaxed)) + v;
                slot.store(sum.to_bits(), Relaxed);
                true
            }
            None => false,
        }
    }

    fn shared_add_u64(&self, word: u32, v: u64) {
        if let Some(slot) = self.word_or_alloc(word) {
            slot.fetch_add(v, Relaxed);
        }
    }

    fn shared_add_f64(&self, word: u32, v: f64) {
        if let Some(slot) = self.word_or_alloc(word) {
            let mut cur = slot.load(Relaxed);
            loop {
                let new = (f64::from_bits(cur) + v).to_bits();
                match slot.compare_exchange_weak(cur, new, Relaxed, Relaxed) {
                    Ok(_) => return,
                    Err(seen) => cur = seen,
                }
            }
        }
    }

    /// Adds `v` to a word of a block this thread owns, allocating the chunk if needed.
    pub(crate) fn owner_add_u64_alloc(&self, word: u32, v: u64) {
        if let Some(slot) = self.word_or_alloc(word) {
            slot.store(slot.load(Relaxed).wrapping_add(v), Relaxed);
        }
    }

    /// Adds `v` to an `f64` word of a block this thread owns, allocating the chunk if needed.
    pub(crate) fn owner_add_f64_alloc(&self, word: u32, v: f64) {
        if self.word_or_alloc(word).is_some() {
            self.owner_add_f64(word, v);
        }
    }
}

#[derive(Default)]
struct Allocator {
    /// The next never-used word.
    next: usize,
    /// Freed (and zeroed) ranges, by length.
    free: ahash::AHashMap<u32, Vec<u32>>,
    /// Live words, for the arena's own accounting.
    live: usize,
}

/// The arena: the list of blocks, the shared block and the word allocator.
pub(crate) struct Arena {
    head: AtomicPtr<Block>,
    shared: Box<Block>,
    alloc: Mutex<Allocator>,
}

impl Default for Arena {
    fn default() -> Self {
        Self::new()
    }
}

impl Arena {
    /// An empty arena.
    pub(crate) fn new() -> Arena {
        Arena {
            head: AtomicPtr::new(ptr::null_mut()),
            shared: Box::new(Block::new(false)),
            alloc: Mutex::new(Allocator::default()),
        }
    }

    /// Allocates `len` consecutive zeroed words (`1 <= len <= CHUNK_WORDS`).
    pub(crate) fn alloc(&self, len: usize) -> Result<SlotRange, Error> {
        if len == 0 || len > CHUNK_WORDS {
            return Err(Error::SlotArenaExhausted);
        }
        let mut a = self.alloc.lock().unwrap_or_else(|e| e.into_inner());
        let len32 = len as u32;
        let start = match a.free.get_mut(&len32).and_then(Vec::pop) {
            Some(start) => start as usize,
            None => {
                let mut start = a.next;
                if start / CHUNK_WORDS != (start + len - 1) / CHUNK_WORDS {
                    start = (start / CHUNK_WORDS + 1) * CHUNK_WORDS;
                }
                if start + len > CHUNK_WORDS * MAX_CHUNKS {
                    return Err(Error::SlotArenaExhausted);
                }
                a.next = start + len;
                start
            }
        };
        a.live += len;
        Ok(SlotRange {
            start: start as u32,
            len: len32,
        })
    }

    /// Zeroes `range` in every block and returns it to the free list.
    ///
    /// The caller guarantees that no handle can write to `range` any more (invariant 3).
    pub(crate) fn free(&self, range: SlotRange) {
        for block in self.blocks().chain(std::iter::once(&*self.shared)) {
            for i in 0..range.len() {
                if let Some(slot) = block.word(range.word(i)) {
                    slot.store(0, Relaxed);
                }
            }
        }
        let mut a = self.alloc.lock().unwrap_or_else(|e| e.into_inner());
        a.live -= range.len();
        a.free.entry(range.len).or_default().push(range.start);
    }

    /// Words allocated to live series.
    pub(crate) fn live_words(&self) -> usize {
        self.alloc.lock().unwrap_or_else(|e| e.into_inner()).live
    }

    /// Every block, newest first (the shared block excluded).
    pub(crate) fn blocks(&self) -> impl Iterator<Item = &Block> {
        let mut cur = self.head.load(Acquire) as *const Block;
        std::iter::from_fn(move || {
            // SAFETY: blocks in the list are never freed while the arena lives (it is borrowed
            // for the iterator's lifetime) and `next` is immutable after publication.
            let block = unsafe { cur.as_ref()? };
            cur = block.next;
            Some(block)
        })
    }

    /// The number of blocks ever created (the peak number of concurrently recording threads).
    pub(crate) fn block_count(&self) -> usize {
        self.blocks().count()
    }

    /// Leases a block for the calling thread: an unleased one if any, or a new one.
    pub(crate) fn lease(&self) -> &Block {
        for block in self.blocks() {
            if !block.leased.load(Relaxed)
                && block
                    .leased
                    .compare_exchange(false, true, Acquire, Relaxed)
                    .is_ok()
            {
                return block;
            }
        }
        let mut block = Box::new(Block::new(true));
        let mut head = self.head.load(Relaxed);
        loop {
            block.next = head;
            let raw = Box::into_raw(block);
            match self.head.compare_exchange_weak(head, raw, Release, Relaxed) {
                // SAFETY: `raw` is now owned by the list, which lives as long as `self`.
                Ok(_) => return unsafe { &*raw },
                Err(seen) => {
                    head = seen;
                    // SAFETY: the CAS failed, so `raw` was not published; take it back.
                    block = unsafe { Box::from_raw(raw) };
                }
            }
        }
    }

    /// Returns a block leased by [`Arena::lease`]; its counts stay and go to the next lessee.
    pub(crate) fn release(&self, block: &Block) {
        block.leased.store(false, Release);
    }

    /// Adds to a word of the shared block (atomic RMW; any thread).
    pub(crate) fn shared_add_u64(&self, word: u32, v: u64) {
        self.shared.shared_add_u64(word, v);
    }

    /// Adds to an `f64` word of the shared block (atomic CAS loop; any thread).
    pub(crate) fn shared_add_f64(&self, word: u32, v: f64) {
        self.shared.shared_add_f64(word, v);
    }

    /// The sum of an integer word over every block.
    pub(crate) fn read_u64(&self, word: u32) -> u64 {
        self.all_blocks()
            .filter_map(|b| b.word(word))
            .fold(0u64, |acc, w| acc.wrapping_add(w.load(Relaxed)))
    }

    /// The sum of an `f64` word over every block.
    pub(crate) fn read_f64(&self, word: u32) -> f64 {
        self.all_blocks()
            .filter_map(|b| b.word(word))
            .map(|w| f64::from_bits(w.load(Relaxed)))
            .sum()
    }

    /// Sums the first `out.len()` integer words of `range` (at most all of them) over every
    /// block into `out`.
    pub(crate) fn read_range_u64(&self, range: SlotRange, out: &mut [u64]) {
        let n = out.len().min(range.len());
        let out = &mut out[..n];
        out.fill(0);
        for block in self.all_blocks() {
            if block.word(range.start).is_none() {
                continue;
            }
            for (i, acc) in out.iter_mut().enumerate() {
                if let Some(w) = block.word(range.word(i)) {
                    *acc = acc.wrapping_add(w.load(Relaxed));
                }
            }
        }
    }

    fn all_blocks(&self) -> impl Iterator<Item = &Block> {
        self.blocks().chain(std::iter::once(&*self.shared))
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        let free_chunks = |block: &Block| {
            for dir in block.chunks.iter() {
                let chunk = dir.load(Acquire);
                if !chunk.is_null() {
                    // SAFETY: the arena is being dropped, so no reader or writer remains; every
                    // non-null chunk came from `Box::into_raw` of a `CHUNK_WORDS` slice.
                    drop(unsafe {
                        Box::from_raw(ptr::slice_from_raw_parts_mut(chunk, CHUNK_WORDS))
                    });
                }
            }
        };
        free_chunks(&self.shared);
        let mut cur = self.head.load(Acquire);
        while !cur.is_null() {
            // SAFETY: every block in the list came from `Box::into_raw` in `lease` and is
            // reachable once; the arena is being dropped, so nobody else holds it.
            let block = unsafe { Box::from_raw(cur) };
            free_chunks(&block);
            cur = block.next as *mut Block;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The process-wide arena and the thread-local fast path.
// ---------------------------------------------------------------------------------------------

/// The process-wide arena every metric records into.
pub(crate) fn global() -> &'static Arena {
    static GLOBAL: OnceLock<Arena> = OnceLock::new();
    GLOBAL.get_or_init(Arena::new)
}

thread_local! {
    /// This thread's leased block, or null. It has no destructor, so reading it is a plain
    /// thread-local load with no lazy-initialisation check: this is the hot path.
    static LOCAL: Cell<*const Block> = const { Cell::new(ptr::null()) };
    /// Owns the lease; its destructor returns the block when the thread exits.
    static LEASE: LeaseGuard = const { LeaseGuard(Cell::new(ptr::null())) };
}

struct LeaseGuard(Cell<*const Block>);

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        let block = self.0.replace(ptr::null());
        // Later recordings on this thread (from other thread-locals' destructors) go to the
        // shared block; `LOCAL` has no destructor, so it is still accessible here.
        let _ = LOCAL.try_with(|l| l.set(ptr::null()));
        // SAFETY: a non-null pointer came from `global().lease()` and blocks of the global arena
        // live for the whole process.
        if let Some(block) = unsafe { block.as_ref() } {
            global().release(block);
        }
    }
}

/// This thread's block, leasing one on first use; `None` once thread-local storage is torn down.
#[cold]
pub(crate) fn lease_for_thread() -> Option<&'static Block> {
    LEASE
        .try_with(|guard| {
            // SAFETY: as in `LeaseGuard::drop`.
            if let Some(block) = unsafe { guard.0.get().as_ref() } {
                return block;
            }
            let block = global().lease();
            guard.0.set(block);
            let _ = LOCAL.try_with(|l| l.set(block));
            block
        })
        .ok()
}

#[inline(always)]
pub(crate) fn local_block() -> Option<&'static Block> {
    // SAFETY: `LOCAL` is either null or a block of the global arena, which is never freed.
    LOCAL
        .try_with(|l| unsafe { l.get().as_ref() })
        .ok()
        .flatten()
}

/// Adds `v` to `word` of the global arena, in this thread's block.
///
/// Hot path: one thread-local load, two pointer loads, one relaxed load and one relaxed store.
#[inline(always)]
pub(crate) fn add_u64(word: u32, v: u64) {
    if let Some(block) = local_block() {
        if block.owner_add_u64(word, v) {
            return;
        }
    }
    add_u64_cold(word, v);
}

#[cold]
#[inline(never)]
fn add_u64_cold(word: u32, v: u64) {
    match lease_for_thread() {
        Some(block) => block.owner_add_u64_alloc(word, v),
        None => global().shared_add_u64(word, v),
    }
}

/// Adds `v` to the `f64` word `word` of the global arena, in this thread's block.
#[inline(always)]
pub(crate) fn add_f64(word: u32, v: f64) {
    if let Some(block) = local_block() {
        if block.owner_add_f64(word, v) {
            return;
        }
    }
    add_f64_cold(word, v);
}

#[cold]
#[inline(never)]
fn add_f64_cold(word: u32, v: f64) {
    match lease_for_thread() {
        Some(block) => block.owner_add_f64_alloc(word, v),
        None => global().shared_add_f64(word, v),
    }
}

/// A range of words in the global arena, freed when dropped. Metric cores own one each.
pub(crate) struct OwnedSlots(SlotRange);

impl OwnedSlots {
    /// Allocates `len` zeroed words of the global arena.
    pub(crate) fn new(len: usize) -> Result<OwnedSlots, Error> {
        global().alloc(len).map(OwnedSlots)
    }

    /// The range.
    #[inline(always)]
    pub(crate) fn range(&self) -> SlotRange {
        self.0
    }
}

impl Drop for OwnedSlots {
    fn drop(&mut self) {
        global().free(self.0);
    }
}

#[cfg(all(test, not(agentcore_loom)))]
mod tests {
    use super::*;

    #[test]
    fn ranges_never_span_chunks_and_reuse_zeroed_words() {
        let arena = Arena::new();
        let a = arena.alloc(CHUNK_WORDS - 1).unwrap();
        let b = arena.alloc(2).unwrap();
        assert_eq!(
            b.start() as usize,
            CHUNK_WORDS,
            "b must start in the next chunk"
        );
        let block = arena.lease();
        block.owner_add_u64_alloc(b.word(1), 7);
        assert_eq!(arena.read_u64(b.word(1)), 7);
        arena.free(b);
        let c = arena.alloc(2).unwrap();
        assert_eq!(c, b, "a freed range of the same length is reused");
        assert_eq!(
            arena.read_u64(c.word(1)),
            0,
            "a reused range starts at zero"
        );
        assert_eq!(arena.live_words(), CHUNK_WORDS - 1 + 2);
        let _ = a;
    }

    #[test]
    fn released_blocks_are_reused_with_their_counts() {
        let arena = Arena::new();
        let r = arena.alloc(1).unwrap();
        let b1 = arena.lease();
        b1.owner_add_u64_alloc(r.start(), 5);
        arena.release(b1);
        let b2 = arena.lease();
        assert!(ptr::eq(b1, b2));
        b2.owner_add_u64(r.start(), 1);
        arena.shared_add_u64(r.start(), 10);
        assert_eq!(arena.read_u64(r.start()), 16);
        assert_eq!(arena.block_count(), 1);
    }

    #[test]
    fn oversize_and_empty_ranges_are_refused() {
        let arena = Arena::new();
        assert_eq!(arena.alloc(0), Err(Error::SlotArenaExhausted));
        assert_eq!(arena.alloc(CHUNK_WORDS + 1), Err(Error::SlotArenaExhausted));
    }
}
