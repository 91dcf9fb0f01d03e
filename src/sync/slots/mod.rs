//! The slot arena: where counters, histograms and summaries record.
//!
//! # Why
//! A shared atomic `fetch_add` costs about 2.4 ns uncontended on this class of machine and
//! 100-200 ns once two cores fight over the cache line. A plain load and store to memory that only
//! one thread writes costs about 0.7 ns and scales with the number of threads. So every counter,
//! histogram bucket and summary bucket is a *word index* into an arena, and a recording thread adds
//! into its own copy of the word (in its [`Block`]) with a relaxed load and a relaxed store. A read
//! or a scrape sums the word over every block. This is the per-CPU counter of the Linux kernel
//! and RocksDB's core-local statistics.
//!
//! # Layout
//! The arena hands out *ranges* of words below its capacity (`2^26` words by default). Ranges are
//! powers of two, at most [`MAX_RANGE_WORDS`], from a buddy allocator, so space freed by one size
//! serves any later size (a freed summary's range can become 256 histograms' ranges and back).
//! A block is one copy of the whole word space: `capacity` zeroed words reserved from the
//! operating system without committing memory (`mmap` with `MAP_NORESERVE` on Linux, a zeroed
//! allocation elsewhere), so a block costs resident memory only for the pages written through it,
//! and a word is `base + index`: no directory, no null check, one dependent load from the thread's
//! block pointer to the word.
//!
//! # Recording
//! A thread's exclusive block base lives in a destructor-free thread-local (`LOCAL`), null until
//! the thread leases a block and again once the lease is returned. Every recording path loads it
//! once and, when it is not null, writes the thread's own words with a plain load + store:
//! [`add_u64`] / [`add_f64`] (a counter), [`OwnedWords`] (several words of one range, with nothing
//! to match: a histogram's bucket and sum). Only when it is null does a recording take the cold
//! path, through [`Words`]: lease a block if one is idle, else keep to a stripe.
//!
//! # Blocks, threads and the memory bound
//! There are two kinds of blocks, each created the first time it is needed and kept for the
//! arena's life:
//! * **exclusive** blocks (`cores + 2`, at least 4): a thread *leases* one the first time it
//!   records and returns it when it exits. Only the lessee writes it, with a relaxed load + store.
//! * **stripes** (`cores / 2`, at least 2): written with atomic read-modify-writes by every thread that
//!   found no exclusive block free (more threads than blocks), or whose lease has ended (a
//!   recording at thread exit after the lease's end). Each such thread
//!   keeps to one stripe, chosen round-robin, so they rarely share a cache line either.
//!
//! Resident memory is therefore bounded by `pages written × blocks`, with at most
//! `max(cores + 2, 4) + max(cores / 2, 2)` blocks (6 on one or two cores, at most `1.5 × cores + 2` from
//! four), however many threads record: 1 000 threads cost what a few do. While the threads
//! that record are no more than the exclusive blocks (the common case: a runtime's workers),
//! nothing on the recording path writes a shared cache line. A thread beyond them pays one atomic
//! add per record; it retries the lease (one relaxed load of a shared counter) whenever a block
//! has been returned.
//!
//! # Ownership and thread exit
//! When a thread exits, its lease is returned and the block, with all its counts, waits for the
//! next thread: after every thread-local destructor of the thread (which keep recording to the
//! block), also for a lease first taken in a `pthread_key` destructor (`sync::thread_exit`; a
//! thread-local destructor registered there never runs, and the block stayed leased for good:
//! `tests/tracer_thread_key_exit.rs` under LeakSanitizer, and this module's tests). Counts recorded by an exited thread are therefore never lost. Blocks are never
//! freed while the arena lives (the global arena lives for the whole process), so a reader can
//! sum over them without locks.
//!
//! # Invariants
//! 1. An exclusive block's words are written only by its lessee (relaxed load + store), by
//!    [`Arena::free`], which only touches a range no live handle refers to, or by
//!    [`Arena::zero_word`], for a summary's period extremes that no recorder writes at that time.
//! 2. Stripe words are written only with atomic read-modify-writes (any thread).
//! 3. Every word index handed out is below `capacity`; a word belongs to at most one live range; a
//!    freed range is zeroed in every block before it can be handed out again, so a reused range
//!    starts from zero.
//! 4. A lease changes hands only through [`Arena::release`] then [`Arena::lease`].
//!
//! # Memory ordering
//! * Lease hand-over: the exiting lessee releases with a `Release` store, the next one takes the
//!   lease with an `Acquire` CAS, so it sees every word the previous lessee wrote and continues
//!   from those values. It then issues a `Release` fence before writing any word, so that a
//!   reader whose `Acquire` fence follows its read of a word the new lessee wrote sees what the
//!   previous lessee did before its release (a sum's negative mark, `primitives::counter_sum`).
//! * Block creation: a block is built (its memory zeroed by the OS or the allocator) before a
//!   `Release` CAS publishes its pointer; readers load block pointers with `Acquire`.
//! * Words themselves are read and written `Relaxed`: each word is a monotone (counter) or
//!   last-writer-wins value, and a scrape needs no order between different words (histograms
//!   derive `_count` from the bucket words they read, see
//!   [`Histogram`](crate::primitives::Histogram)).
//! * Freeing: the last handle of a series is dropped after every write through it (the `Arc`
//!   release/acquire pair orders them), so zeroing in `free` cannot race with a write to the range.

use std::cell::Cell;
use std::ptr;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use std::sync::OnceLock;

use crate::sync::{fence, AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Mutex};
use crate::Error;

mod lease;
mod region;
use lease::{lease_for_thread, thread_stripe, LOCAL};
use region::Region;

/// The largest range, in words (a summary takes one of this size).
#[cfg(not(agentcore_loom))]
pub(crate) const MAX_RANGE_WORDS: usize = 4096;
/// The largest range, in words (small under loom so the models stay small).
#[cfg(agentcore_loom)]
pub(crate) const MAX_RANGE_WORDS: usize = 4;

/// Words per block of the global arena: 512 MiB of address space, reserved, not committed. A
/// smaller space is tried when the system refuses the reservation (strict overcommit). Under
/// Miri, which allocates (and tracks) every byte of a mapping, the smallest one (2^16 words).
#[cfg(not(agentcore_loom))]
const DEFAULT_CAPACITY_WORDS: usize = 1 << if cfg!(miri) { 16 } else { 26 };
/// The smallest word space the global arena accepts before it gives up reserving.
#[cfg(not(agentcore_loom))]
const MIN_CAPACITY_WORDS: usize = 1 << 16;

const MAX_ORDER: u32 = MAX_RANGE_WORDS.trailing_zeros();

/// A run of consecutive words in the arena, within one aligned run of [`MAX_RANGE_WORDS`].
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

    /// The number of words (a power of two).
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

// ---------------------------------------------------------------------------------------------
// Blocks and the arena.
// ---------------------------------------------------------------------------------------------

/// One copy of the arena's words.
pub(crate) struct Block {
    region: Region,
}

impl Block {
    /// The word at `index` (below the arena's capacity, invariant 3).
    #[inline(always)]
    pub(crate) fn word(&self, index: u32) -> &AtomicU64 {
        // SAFETY: word indices come only from ranges the arena handed out, which lie below its
        // capacity, the length of every region (invariant 3).
        unsafe { self.region.word_unchecked(index as usize) }
    }
}

/// A block pointer, null until the block is created; the block then lives as long as the arena.
/// `refused` once the system refused its memory: it is not asked again (a stripe is looked up
/// on every record of the threads that keep to it).
struct BlockCell(AtomicPtr<Block>, AtomicBool);

impl BlockCell {
    fn new() -> BlockCell {
        BlockCell(AtomicPtr::new(ptr::null_mut()), AtomicBool::new(false))
    }

    #[inline]
    fn get(&self) -> Option<&Block> {
        // SAFETY: a non-null pointer was published by `get_or_create` (built, then a `Release`
        // CAS) and stays valid until the arena drops, which outlives `&self`.
        unsafe { self.0.load(Acquire).as_ref() }
    }

    /// The block, created with `capacity` words if it does not exist yet; `None` when the system
    /// refuses the memory, now or before.
    fn get_or_create(&self, capacity: usize) -> Option<&Block> {
        if let Some(block) = self.get() {
            return Some(block);
        }
        if self.1.load(Relaxed) {
            return None;
        }
        let Some(region) = Region::new(capacity) else {
            self.1.store(true, Relaxed);
            return None;
        };
        let fresh = Box::into_raw(Box::new(Block { region }));
        match self
            .0
            .compare_exchange(ptr::null_mut(), fresh, AcqRel, Acquire)
        {
            // SAFETY: just published; lives until the arena drops.
            Ok(_) => Some(unsafe { &*fresh }),
            Err(existing) => {
                // SAFETY: `fresh` came from `Box::into_raw` above and was never published.
                drop(unsafe { Box::from_raw(fresh) });
                // SAFETY: as in `get`.
                Some(unsafe { &*existing })
            }
        }
    }
}

impl Drop for BlockCell {
    fn drop(&mut self) {
        let p = self.0.load(Acquire);
        if !p.is_null() {
            // SAFETY: the arena is being dropped, so nobody uses the block; it came from
            // `Box::into_raw` in `get_or_create`.
            drop(unsafe { Box::from_raw(p) });
        }
    }
}

/// An exclusive block and its lease flag.
struct Exclusive {
    cell: BlockCell,
    leased: AtomicBool,
}

/// The buddy allocator of the word ranges in `next..end`. `free[k]` holds the starts of free
/// ranges of `2^k` words.
struct Buddy {
    /// The next never-used word (a multiple of `MAX_RANGE_WORDS`).
    next: usize,
    end: usize,
    free: Vec<std::collections::BTreeSet<u32>>,
    /// Words in live ranges.
    live: usize,
}

impl Buddy {
    fn new(start: usize, end: usize) -> Buddy {
        Buddy {
            next: start,
            end,
            free: (0..=MAX_ORDER).map(|_| Default::default()).collect(),
            live: 0,
        }
    }

    fn alloc(&mut self, order: u32) -> Option<u32> {
        // The smallest free range at least as large, split down to the size asked for.
        let found = (order..=MAX_ORDER).find(|&k| !self.free[k as usize].is_empty());
        let (mut k, start) = match found {
            Some(k) => {
                let start = self.free[k as usize].pop_first().expect("non-empty");
                (k, start)
            }
            None => {
                if self.next + MAX_RANGE_WORDS > self.end {
                    return None;
                }
                let start = self.next as u32;
                self.next += MAX_RANGE_WORDS;
                (MAX_ORDER, start)
            }
        };
        while k > order {
            k -= 1;
            self.free[k as usize].insert(start + (1 << k));
        }
        self.live += 1 << order;
        Some(start)
    }

    fn free(&mut self, mut start: u32, mut order: u32) {
        self.live -= 1 << order;
        while order < MAX_ORDER {
            let buddy = start ^ (1 << order);
            if !self.free[order as usize].remove(&buddy) {
                break;
            }
            start = start.min(buddy);
            order += 1;
        }
        self.free[order as usize].insert(start);
    }
}

/// The word allocators: most of the space for any metric, and a reserve at the end for the
/// crate's own bookkeeping (the tracer's span counters, the registry's overflow counters), so that
/// an arena that metrics have exhausted still has room for them.
struct Allocators {
    user: Buddy,
    reserve: Buddy,
}

impl Allocators {
    fn owner(&mut self, start: u32) -> &mut Buddy {
        if start as usize >= self.user.end {
            &mut self.reserve
        } else {
            &mut self.user
        }
    }
}

/// The arena: its blocks and its word allocator.
pub(crate) struct Arena {
    capacity: usize,
    exclusive: Box<[Exclusive]>,
    stripes: Box<[BlockCell]>,
    /// Exclusive blocks not leased (a hint: recording threads without a block read it to decide
    /// whether a lease is worth trying).
    idle: AtomicUsize,
    /// The next stripe to assign to a thread without an exclusive block.
    next_stripe: AtomicUsize,
    alloc: Mutex<Allocators>,
    /// Two words the crate's own counters share when even the reserve is full (their counts then
    /// mix; nothing fails).
    sink: SlotRange,
}

impl Arena {
    /// An arena of `capacity` words per block with `exclusive` leasable blocks and `stripes` shared
    /// ones (at least one), or `None` when the system refuses the first stripe's memory.
    pub(crate) fn with_shape(capacity: usize, exclusive: usize, stripes: usize) -> Option<Arena> {
        // 1/64 of the space (whole runs) is kept for the crate's own counters.
        let reserve = capacity / 64 / MAX_RANGE_WORDS * MAX_RANGE_WORDS;
        let mut allocators = Allocators {
            user: Buddy::new(0, capacity - reserve),
            reserve: Buddy::new(capacity - reserve, capacity),
        };
        let sink = allocators.user.alloc(1)?;
        let arena = Arena {
            capacity,
            exclusive: (0..exclusive)
                .map(|_| Exclusive {
                    cell: BlockCell::new(),
                    leased: AtomicBool::new(false),
                })
                .collect(),
            stripes: (0..stripes.max(1)).map(|_| BlockCell::new()).collect(),
            idle: AtomicUsize::new(exclusive),
            next_stripe: AtomicUsize::new(0),
            alloc: Mutex::new(allocators),
            sink: SlotRange {
                start: sink,
                len: 2,
            },
        };
        // Stripe 0 always exists: it is where a record goes when nothing else can take it.
        arena.stripes[0].get_or_create(capacity)?;
        Some(arena)
    }

    /// The global arena's shape for this machine: `cores + 2` exclusive blocks (at least 4: the
    /// runtime's workers plus a main thread and one more), `cores / 2` stripes (at least 2), the
    /// largest word space the system lets us reserve.
    #[cfg(not(agentcore_loom))]
    fn for_this_machine() -> Option<Arena> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let (exclusive, stripes) = ((cores + 2).max(4), (cores / 2).max(2));
        let mut capacity = DEFAULT_CAPACITY_WORDS;
        loop {
            if let Some(arena) = Arena::with_shape(capacity, exclusive, stripes) {
                return Some(arena);
            }
            if capacity <= MIN_CAPACITY_WORDS {
                return None;
            }
            capacity /= 4;
        }
    }

    /// Words per block.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Allocates `len` consecutive zeroed words (`1 <= len <= MAX_RANGE_WORDS`), rounded up to a
    /// power of two.
    pub(crate) fn alloc(&self, len: usize) -> Result<SlotRange, Error> {
        if len == 0 || len > MAX_RANGE_WORDS {
            return Err(Error::SlotArenaExhausted);
        }
        let order = len.next_power_of_two().trailing_zeros();
        let mut allocators = self.alloc.lock().unwrap_or_else(|e| e.into_inner());
        let start = allocators
            .user
            .alloc(order)
            .ok_or(Error::SlotArenaExhausted)?;
        Ok(SlotRange {
            start,
            len: 1 << order,
        })
    }

    /// Two words for one of the crate's own counters: from the shared space, else from the
    /// reserve, else (`None`) the caller shares the arena's sink.
    fn alloc_internal(&self) -> Option<SlotRange> {
        let mut allocators = self.alloc.lock().unwrap_or_else(|e| e.into_inner());
        let start = allocators
            .user
            .alloc(1)
            .or_else(|| allocators.reserve.alloc(1))?;
        Some(SlotRange { start, len: 2 })
    }

    /// Zeroes `range` in every block and returns it to the allocator.
    ///
    /// The caller guarantees that no handle can write to `range` any more (invariant 3).
    pub(crate) fn free(&self, range: SlotRange) {
        for block in self.blocks() {
            block.region.zero(range.start() as usize, range.len());
        }
        let mut allocators = self.alloc.lock().unwrap_or_else(|e| e.into_inner());
        allocators
            .owner(range.start)
            .free(range.start, range.len.trailing_zeros());
    }

    /// Words in live ranges.
    pub(crate) fn live_words(&self) -> usize {
        let allocators = self.alloc.lock().unwrap_or_else(|e| e.into_inner());
        allocators.user.live + allocators.reserve.live
    }

    /// Every block created so far, exclusive and stripes.
    fn blocks(&self) -> impl Iterator<Item = &Block> {
        self.exclusive
            .iter()
            .map(|e| &e.cell)
            .chain(self.stripes.iter())
            .filter_map(BlockCell::get)
    }

    /// Blocks created so far: (exclusive, stripes).
    pub(crate) fn block_counts(&self) -> (usize, usize) {
        let exclusive = self.exclusive.iter().filter(|e| e.cell.get().is_some());
        let stripes = self.stripes.iter().filter(|s| s.get().is_some());
        (exclusive.count(), stripes.count())
    }

    /// The number of exclusive blocks and of stripes this arena may create.
    pub(crate) fn shape(&self) -> (usize, usize) {
        (self.exclusive.len(), self.stripes.len())
    }

    /// Leases an exclusive block for the calling thread: `Some((lease, block))`, or `None` when
    /// every exclusive block is leased (or cannot be created).
    pub(crate) fn lease(&self) -> Option<(usize, &Block)> {
        if self.idle.load(Relaxed) == 0 {
            return None;
        }
        for (i, e) in self.exclusive.iter().enumerate() {
            if !e.leased.load(Relaxed)
                && e.leased
                    .compare_exchange(false, true, Acquire, Relaxed)
                    .is_ok()
            {
                // After the Acquire that continues from the previous lessee's words, before any
                // word this lessee writes: a reader's `Acquire` fence after reading one of them
                // synchronises with this fence, and so sees what the previous lessee did before
                // its release (a histogram's or summary's negative mark, `counter_sum`: the
                // plain stores of a later lessee are in no release sequence of the previous
                // lessee's). Once per lease.
                fence(Release);
                self.idle.fetch_sub(1, Relaxed);
                // A block the system refuses memory for stays leased for good: nobody retries
                // the failing reservation on every record.
                return e.cell.get_or_create(self.capacity).map(|b| (i, b));
            }
        }
        None
    }

    /// Returns the exclusive block `lease`; its counts stay and go to the next lessee.
    pub(crate) fn release(&self, lease: usize) {
        self.exclusive[lease].leased.store(false, Release);
        self.idle.fetch_add(1, Relaxed);
    }

    /// A stripe for a thread without an exclusive block: stripes are assigned round-robin.
    pub(crate) fn assign_stripe(&self) -> usize {
        self.next_stripe.fetch_add(1, Relaxed) % self.stripes.len()
    }

    /// Stripe `index`, or stripe 0 (which always exists) when the system refuses the memory.
    #[inline]
    fn stripe(&self, index: usize) -> &Block {
        let cells = &self.stripes;
        cells[index % cells.len()]
            .get_or_create(self.capacity)
            .or_else(|| cells[0].get())
            .expect("stripe 0 is created with the arena")
    }

    /// Adds `v` to a word of stripe `stripe` (atomic RMW; any thread).
    pub(crate) fn stripe_add_u64(&self, stripe: usize, word: u32, v: u64) {
        self.stripe(stripe).word(word).fetch_add(v, Relaxed);
    }

    /// Adds `v` to an integer word of stripe `stripe`, never past [`COUNTER_CAP`] (atomic CAS
    /// loop; any thread; see `add_u64_capped`).
    pub(crate) fn stripe_add_u64_capped(&self, stripe: usize, word: u32, v: u64) {
        let slot = self.stripe(stripe).word(word);
        let _ = slot.fetch_update(Relaxed, Relaxed, |cur| Some(sum::<true>(cur, v)));
    }

    /// Adds `v` to an `f64` word of stripe `stripe` (atomic CAS loop; any thread).
    pub(crate) fn stripe_add_f64(&self, stripe: usize, word: u32, v: f64) {
        let slot = self.stripe(stripe).word(word);
        let mut cur = slot.load(Relaxed);
        loop {
            let new = (f64::from_bits(cur) + v).to_bits();
            match slot.compare_exchange_weak(cur, new, Relaxed, Relaxed) {
                Ok(_) => return,
                Err(seen) => cur = seen,
            }
        }
    }

    /// The sum of an integer word over every block, stopping at `u64::MAX` (a counter's
    /// blocks may each be near it: the total must not wrap to a smaller value).
    pub(crate) fn read_u64(&self, word: u32) -> u64 {
        self.blocks().fold(0u64, |acc, b| {
            acc.saturating_add(b.word(word).load(Relaxed))
        })
    }

    /// The sum of an `f64` word over every block (`+0.0` when nothing was recorded: an empty
    /// sum is positive zero, never `-0`).
    pub(crate) fn read_f64(&self, word: u32) -> f64 {
        self.blocks().fold(0.0f64, |acc, b| {
            acc + f64::from_bits(b.word(word).load(Relaxed))
        })
    }

    /// The largest value of a word over every block.
    pub(crate) fn read_max_u64(&self, word: u32) -> u64 {
        self.blocks()
            .map(|b| b.word(word).load(Relaxed))
            .max()
            .unwrap_or(0)
    }

    /// Zeroes one word in every block: a summary starting a period zeroes that period's
    /// extremes, which no recorder writes until it publishes the period (see
    /// [`Summary`](crate::Summary)); the one writer besides a lessee and `free` (invariant 1).
    pub(crate) fn zero_word(&self, word: u32) {
        for block in self.blocks() {
            block.word(word).store(0, Relaxed);
        }
    }

    /// Sums the first `out.len()` integer words of `range` (at most all of them) over every
    /// block into `out`.
    pub(crate) fn read_range_u64(&self, range: SlotRange, out: &mut [u64]) {
        let n = out.len().min(range.len());
        let out = &mut out[..n];
        out.fill(0);
        for block in self.blocks() {
            for (i, acc) in out.iter_mut().enumerate() {
                *acc = acc.wrapping_add(block.word(range.word(i)).load(Relaxed));
            }
        }
    }
}

impl std::fmt::Debug for Arena {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Arena")
            .field("capacity", &self.capacity)
            .field("blocks", &self.block_counts())
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------------------------
// The process-wide arena and the thread-local fast path.
// ---------------------------------------------------------------------------------------------

/// The process-wide arena every metric records into, or `None` if the system refused even the
/// smallest word space (then no metric can be created: [`Error::SlotArenaExhausted`]).
#[cfg(not(agentcore_loom))]
pub(crate) fn global() -> Option<&'static Arena> {
    static GLOBAL: OnceLock<Option<Arena>> = OnceLock::new();
    GLOBAL.get_or_init(Arena::for_this_machine).as_ref()
}

/// Under loom the models build their own arenas; the global one is small and never used by them.
#[cfg(agentcore_loom)]
pub(crate) fn global() -> Option<&'static Arena> {
    static GLOBAL: OnceLock<Option<Arena>> = OnceLock::new();
    GLOBAL.get_or_init(|| Arena::with_shape(64, 2, 1)).as_ref()
}

/// Adds `v` to `word` of the global arena, in this thread's block.
///
/// Hot path: one thread-local load, one relaxed load and one relaxed store of the thread's own
/// word. Wraps at `u64::MAX`: for increments by one (a counter's `inc`, a bucket count), which
/// cannot get there in practice; see [`add_u64_capped`] for a counter's arbitrary increments.
#[inline(always)]
pub(crate) fn add_u64(word: u32, v: u64) {
    add_u64_with::<false>(word, v);
}

/// Where a counter's integer word stops: 2^63. [`add_u64_capped`] (a counter's `inc_by` and
/// whole `add`s, whose increments can be arbitrarily large) never takes a word past it, and
/// [`add_u64`] (its `inc`, by one, a single instruction) would need 2^63 more increments on one
/// thread to wrap from there: so a counter never goes backwards, and `inc` pays nothing for it
/// (a saturating add by one there cost two to five more instructions under callgrind).
pub(crate) const COUNTER_CAP: u64 = 1 << 63;

/// Adds `v` to `word` like [`add_u64`], but never past [`COUNTER_CAP`] (and never lowers a
/// word already past it): for a counter's arbitrary increments.
#[inline(always)]
pub(crate) fn add_u64_capped(word: u32, v: u64) {
    add_u64_with::<true>(word, v);
}

#[inline(always)]
fn add_u64_with<const CAPPED: bool>(word: u32, v: u64) {
    let base = LOCAL.with(Cell::get);
    if !base.is_null() {
        // SAFETY: `base` is the base of this thread's exclusive block of the global arena (it is
        // set only by `lease_for_thread` and cleared when the lease ends), which holds
        // `capacity` words and lives for the whole process; `word` is below the capacity
        // (invariant 3). Only this thread writes the block (invariant 1).
        let slot = unsafe { &*base.add(word as usize) };
        slot.store(sum::<CAPPED>(slot.load(Relaxed), v), Relaxed);
        return;
    }
    add_u64_cold::<CAPPED>(word, v);
}

/// `a + b`, wrapping, or capped at [`COUNTER_CAP`] (never below `a`).
#[inline(always)]
fn sum<const CAPPED: bool>(a: u64, b: u64) -> u64 {
    if CAPPED {
        a.max(a.saturating_add(b).min(COUNTER_CAP))
    } else {
        a.wrapping_add(b)
    }
}

#[cold]
#[inline(never)]
fn add_u64_cold<const CAPPED: bool>(word: u32, v: u64) {
    // A word exists only if the global arena does (it handed the word out).
    let Some(arena) = global() else { return };
    match lease_for_thread(arena) {
        Some(base) => {
            // SAFETY: as in `add_u64_with`.
            let slot = unsafe { &*base.add(word as usize) };
            slot.store(sum::<CAPPED>(slot.load(Relaxed), v), Relaxed);
        }
        None if CAPPED => arena.stripe_add_u64_capped(thread_stripe(arena), word, v),
        None => arena.stripe_add_u64(thread_stripe(arena), word, v),
    }
}

/// Adds `v` to the `f64` word `word` of the global arena, in this thread's block.
#[inline(always)]
pub(crate) fn add_f64(word: u32, v: f64) {
    let base = LOCAL.with(Cell::get);
    if !base.is_null() {
        // SAFETY: as in `add_u64`.
        let slot = unsafe { &*base.add(word as usize) };
        slot.store((f64::from_bits(slot.load(Relaxed)) + v).to_bits(), Relaxed);
        return;
    }
    add_f64_cold(word, v);
}

#[cold]
#[inline(never)]
fn add_f64_cold(word: u32, v: f64) {
    let Some(arena) = global() else { return };
    match lease_for_thread(arena) {
        Some(base) => {
            // SAFETY: as in `add_u64`.
            let slot = unsafe { &*base.add(word as usize) };
            slot.store((f64::from_bits(slot.load(Relaxed)) + v).to_bits(), Relaxed);
        }
        None => arena.stripe_add_f64(thread_stripe(arena), word, v),
    }
}

/// The calling thread's exclusive block of the global arena, when it holds one: the recording
/// fast path with nothing to match (a histogram observation's bucket and sum). `current` is one
/// thread-local load and a null check; each add is a plain load and store of the thread's word.
/// When it is `None` (no lease yet, all blocks leased, thread-local storage torn down), record
/// through [`Words::current`].
#[derive(Clone, Copy)]
pub(crate) struct OwnedWords(ptr::NonNull<AtomicU64>);

impl OwnedWords {
    /// This thread's exclusive block, if it holds a lease.
    #[inline(always)]
    pub(crate) fn current() -> Option<OwnedWords> {
        ptr::NonNull::new(LOCAL.with(Cell::get).cast_mut()).map(OwnedWords)
    }

    /// The word at `word` (a `usize`, so that callers adding an offset to a range's start do
    /// it in the address width, with no zero-extension).
    #[inline(always)]
    fn slot(self, word: usize) -> &'static AtomicU64 {
        debug_assert!(global().is_some_and(|arena| word < arena.capacity));
        // SAFETY: as in `add_u64`: the pointer is this thread's exclusive block of the global
        // arena, which holds `capacity` words and lives for the whole process, and `word` is
        // below the capacity (invariant 3). The thread that called `current` still holds its
        // lease: `OwnedWords` is used within one recording call on that thread (the lease ends
        // only at the thread's exit, in its own `end_lease`).
        unsafe { &*self.0.as_ptr().add(word) }
    }

    /// Adds `v` to `word` (plain load + store: invariant 1).
    #[inline(always)]
    pub(crate) fn add_u64(self, word: usize, v: u64) {
        let slot = self.slot(word);
        slot.store(slot.load(Relaxed).wrapping_add(v), Relaxed);
    }

    /// Adds `v` to the `f64` word `word`.
    #[inline(always)]
    pub(crate) fn add_f64(self, word: usize, v: f64) {
        let slot = self.slot(word);
        slot.store((f64::from_bits(slot.load(Relaxed)) + v).to_bits(), Relaxed);
    }
}

/// The calling thread's words of the global arena for a burst of records into one range (a
/// summary observation, a histogram's slow path): one thread-local load for all of them.
#[derive(Clone, Copy)]
pub(crate) enum Words {
    /// This thread's exclusive block: plain load + store.
    Owned(*const AtomicU64),
    /// A stripe: atomic read-modify-writes.
    Shared(&'static Arena, usize),
}

impl Words {
    /// The calling thread's words.
    #[inline(always)]
    pub(crate) fn current() -> Option<Words> {
        let base = LOCAL.with(Cell::get);
        if !base.is_null() {
            return Some(Words::Owned(base));
        }
        Words::current_cold()
    }

    #[cold]
    #[inline(never)]
    fn current_cold() -> Option<Words> {
        let arena = global()?;
        Some(match lease_for_thread(arena) {
            Some(base) => Words::Owned(base),
            None => Words::Shared(arena, thread_stripe(arena)),
        })
    }

    /// Adds `v` to `word`.
    #[inline(always)]
    pub(crate) fn add_u64(self, word: u32, v: u64) {
        match self {
            Words::Owned(base) => {
                // SAFETY: as in `add_u64` (the thread that called `current` still holds its lease:
                // `Words` is used within one recording call on that thread).
                let slot = unsafe { &*base.add(word as usize) };
                slot.store(slot.load(Relaxed).wrapping_add(v), Relaxed);
            }
            Words::Shared(arena, stripe) => arena.stripe_add_u64(stripe, word, v),
        }
    }

    /// Raises `word` to `v` if it is below (a running maximum).
    #[inline(always)]
    pub(crate) fn max_u64(self, word: u32, v: u64) {
        match self {
            Words::Owned(base) => {
                // SAFETY: as in `Words::add_u64`.
                let slot = unsafe { &*base.add(word as usize) };
                if slot.load(Relaxed) < v {
                    slot.store(v, Relaxed);
                }
            }
            Words::Shared(arena, stripe) => {
                arena.stripe(stripe).word(word).fetch_max(v, Relaxed);
            }
        }
    }

    /// Adds `v` to the `f64` word `word`.
    #[inline(always)]
    pub(crate) fn add_f64(self, word: u32, v: f64) {
        match self {
            Words::Owned(base) => {
                // SAFETY: as in `Words::add_u64`.
                let slot = unsafe { &*base.add(word as usize) };
                slot.store((f64::from_bits(slot.load(Relaxed)) + v).to_bits(), Relaxed);
            }
            Words::Shared(arena, stripe) => arena.stripe_add_f64(stripe, word, v),
        }
    }
}

/// A range of words in the global arena, freed when dropped (unless shared). Metric cores own one
/// each.
pub(crate) struct OwnedSlots {
    range: SlotRange,
    /// False for the arena's shared sink, which is never freed.
    owned: bool,
}

impl OwnedSlots {
    /// Allocates `len` zeroed words of the global arena. When the arena is exhausted, it first
    /// reclaims what the reclamation domain holds for no reader and tries again: a removed
    /// series keeps its words until its retired `Series` is freed, which otherwise waits for a
    /// batch of retires or a scrape, and the registration that a removal made room for was
    /// refused beside a range nobody could reach any more.
    pub(crate) fn new(len: usize) -> Result<OwnedSlots, Error> {
        let arena = global().ok_or(Error::SlotArenaExhausted)?;
        let range = match arena.alloc(len) {
            Err(Error::SlotArenaExhausted) => {
                reclaim_retired();
                arena.alloc(len)?
            }
            allocated => allocated?,
        };
        Ok(OwnedSlots { range, owned: true })
    }

    /// Two words for one of the crate's own counters; never fails: from the reserve when metrics
    /// have exhausted the arena, and as a last resort the arena's shared sink (or, without any
    /// arena, words recording ignores).
    pub(crate) fn new_internal() -> OwnedSlots {
        match global() {
            Some(arena) => match arena.alloc_internal() {
                Some(range) => OwnedSlots { range, owned: true },
                None => OwnedSlots {
                    range: arena.sink,
                    owned: false,
                },
            },
            None => OwnedSlots {
                range: SlotRange { start: 0, len: 2 },
                owned: false,
            },
        }
    }

    /// The range.
    #[inline(always)]
    pub(crate) fn range(&self) -> SlotRange {
        self.range
    }

    /// The global arena, if there is one (there is, if it handed out this range).
    pub(crate) fn arena(&self) -> Option<&'static Arena> {
        global()
    }
}

/// Frees what the global reclamation domain holds for no reader (removed series, with their
/// words), once per retire: an arena that stays exhausted does not pay a reclamation (a
/// process-wide barrier) on every refused registration. A series still held at that time (a
/// `SeriesRef` kept, a thread's lookup cache) comes back with the next retire or scrape.
#[cold]
#[inline(never)]
fn reclaim_retired() {
    #[cfg(not(agentcore_loom))]
    {
        use std::sync::atomic::AtomicU64 as StdAtomicU64;
        /// The domain's count of retired objects at the last reclaim made here.
        static RETIRED_AT: StdAtomicU64 = StdAtomicU64::new(0);
        let domain = crate::sync::era::Domain::global();
        let retired = domain.stats().retired;
        if RETIRED_AT.swap(retired, Relaxed) != retired {
            domain.reclaim();
        }
    }
}

impl Drop for OwnedSlots {
    fn drop(&mut self) {
        if let (true, Some(arena)) = (self.owned, global()) {
            arena.free(self.range);
        }
    }
}

impl std::fmt::Debug for OwnedSlots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("OwnedSlots").field(&self.range).finish()
    }
}

#[cfg(all(test, not(agentcore_loom)))]
mod tests {
    use super::*;

    /// A thread whose first recording is in a `pthread_key` destructor ends its lease too
    /// (`EXIT`, in the next destructor round), seen from the same destructor two rounds later:
    /// the thread holds no lease and no block. Fails if the lease's end rides on `EXIT`'s fallback
    /// alone (glibc never runs a thread-local destructor registered then: the block stayed
    /// leased for good).
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn a_lease_first_taken_in_a_key_destructor_ends() {
        use super::lease::{ENDED, LEASED};
        use crate::sync::thread_exit::ExitKey;
        use std::sync::atomic::AtomicUsize;
        static ROUND: AtomicUsize = AtomicUsize::new(0);
        /// `LEASED` after the first recording, then after the lease's end (with `LOCAL` null).
        static SEEN: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];
        static WORD: AtomicUsize = AtomicUsize::new(0);
        static KEY: ExitKey = ExitKey::new(at_exit);
        extern "C" fn at_exit(_: *mut std::ffi::c_void) {
            match ROUND.fetch_add(1, Relaxed) {
                0 => {
                    add_u64(WORD.load(Relaxed) as u32, 1);
                    SEEN[0].store(LEASED.with(Cell::get), Relaxed);
                }
                1 => {}
                _ => {
                    let local = LOCAL.with(Cell::get);
                    let leased = LEASED.with(Cell::get);
                    SEEN[1].store(if local.is_null() { leased } else { 0 }, Relaxed);
                    return;
                }
            }
            assert!(KEY.arm());
        }
        let arena = global().unwrap();
        let range = arena.alloc(1).unwrap();
        WORD.store(range.word(0) as usize, Relaxed);
        // Other tests' threads hold blocks meanwhile: try until this one gets a lease.
        for _ in 0..100 {
            ROUND.store(0, Relaxed);
            std::thread::spawn(|| assert!(KEY.arm())).join().unwrap();
            assert_eq!(ROUND.load(Relaxed), 3, "three destructor rounds");
            if SEEN[0].load(Relaxed) < ENDED {
                assert_eq!(
                    SEEN[1].load(Relaxed),
                    ENDED,
                    "the lease ended, `LOCAL` cleared"
                );
                arena.free(range);
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("no exclusive block was idle in 100 tries");
    }

    #[test]
    fn ranges_are_powers_of_two_and_freed_space_serves_every_size() {
        let arena = Arena::with_shape(4 * MAX_RANGE_WORDS, 2, 1).unwrap();
        let big = arena.alloc(MAX_RANGE_WORDS - 1).unwrap();
        assert_eq!(big.len(), MAX_RANGE_WORDS);
        let h = arena.alloc(13).unwrap();
        assert_eq!(h.len(), 16);
        arena.free(big);
        // The freed summary-sized range is split for small ranges...
        let smalls: Vec<_> = (0..256).map(|_| arena.alloc(16).unwrap()).collect();
        assert!(smalls
            .iter()
            .all(|r| r.start() < 2 * MAX_RANGE_WORDS as u32));
        for r in smalls {
            arena.free(r);
        }
        arena.free(h);
        // ...and once they are all free again, they coalesce back into whole runs (but the
        // one holding the arena's two-word sink, which is never freed).
        assert_eq!(arena.live_words(), 2);
        for _ in 0..3 {
            arena.alloc(MAX_RANGE_WORDS).unwrap();
        }
        assert_eq!(arena.alloc(MAX_RANGE_WORDS), Err(Error::SlotArenaExhausted));
        for _ in 0..(MAX_RANGE_WORDS - 2) / 2 {
            arena.alloc(2).unwrap();
        }
        assert_eq!(arena.alloc(1), Err(Error::SlotArenaExhausted));
        // The crate's own counters still get words: the sink (no reserve in so small an arena).
        assert_eq!(arena.alloc_internal(), None);
    }

    #[test]
    fn a_reused_range_starts_from_zero_in_every_block() {
        let arena = Arena::with_shape(MAX_RANGE_WORDS, 2, 2).unwrap();
        let r = arena.alloc(2).unwrap();
        let (lease, block) = arena.lease().unwrap();
        let w = block.word(r.word(1));
        w.store(w.load(Relaxed) + 7, Relaxed);
        arena.stripe_add_u64(1, r.word(1), 3);
        assert_eq!(arena.read_u64(r.word(1)), 10);
        arena.free(r);
        let again = arena.alloc(2).unwrap();
        assert_eq!(again, r, "the freed range is reused");
        assert_eq!(arena.read_u64(again.word(1)), 0);
        arena.release(lease);
    }

    #[test]
    fn a_freed_summary_sized_range_reads_zero_and_is_reused_from_zero() {
        let arena = Arena::with_shape(2 * MAX_RANGE_WORDS, 1, 1).unwrap();
        let r = arena.alloc(MAX_RANGE_WORDS).unwrap();
        let (lease, block) = arena.lease().unwrap();
        for i in 0..r.len() {
            block.word(r.word(i)).store(i as u64 + 1, Relaxed);
            arena.stripe_add_u64(0, r.word(i), 1);
        }
        arena.free(r);
        let again = arena.alloc(MAX_RANGE_WORDS).unwrap();
        assert_eq!(again, r);
        let mut sums = vec![1; r.len()];
        arena.read_range_u64(again, &mut sums);
        assert!(
            sums.iter().all(|&s| s == 0),
            "whole pages and the rest read zero"
        );
        arena.release(lease);
    }

    #[test]
    fn released_blocks_keep_their_counts_for_the_next_lessee() {
        let arena = Arena::with_shape(MAX_RANGE_WORDS, 1, 1).unwrap();
        let r = arena.alloc(1).unwrap();
        let (lease, b1) = arena.lease().unwrap();
        b1.word(r.start()).fetch_add(5, Relaxed);
        assert!(
            arena.lease().is_none(),
            "the only exclusive block is leased"
        );
        arena.release(lease);
        let (lease2, b2) = arena.lease().unwrap();
        assert!(ptr::eq(b1, b2));
        arena.stripe_add_u64(0, r.start(), 10);
        assert_eq!(arena.read_u64(r.start()), 15);
        assert_eq!(arena.block_counts(), (1, 1));
        arena.release(lease2);
    }

    #[test]
    fn oversize_and_empty_ranges_are_refused() {
        let arena = Arena::with_shape(MAX_RANGE_WORDS, 1, 1).unwrap();
        assert_eq!(arena.alloc(0), Err(Error::SlotArenaExhausted));
        assert_eq!(
            arena.alloc(MAX_RANGE_WORDS + 1),
            Err(Error::SlotArenaExhausted)
        );
    }

    /// A stripe the system refuses memory for is asked once: a thread recording to it goes to
    /// stripe 0 from then on, without a failing reservation (a `mmap` system call) on every
    /// record. Before, every record to it tried again.
    #[test]
    fn a_refused_stripe_is_not_retried_on_every_record() {
        let arena = Arena::with_shape(MAX_RANGE_WORDS, 1, 2).unwrap();
        let w = arena.alloc(1).unwrap().start();
        region::tests::refuse(true);
        for _ in 0..1000 {
            arena.stripe_add_u64(1, w, 1);
        }
        let asked = region::tests::refuse(false);
        assert_eq!(arena.read_u64(w), 1000, "recorded to stripe 0");
        assert_eq!(arena.block_counts(), (0, 1));
        assert_eq!(asked, 1, "reservations tried for the refused stripe");
    }

    #[test]
    fn an_empty_f64_sum_is_positive_zero() {
        let arena = Arena::with_shape(MAX_RANGE_WORDS, 1, 1).unwrap();
        let r = arena.alloc(1).unwrap();
        assert!(arena.read_f64(r.start()).is_sign_positive());
    }
}
