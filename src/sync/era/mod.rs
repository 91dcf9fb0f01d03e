//! Era-based reclamation ("hazard eras"): how a family frees a series table or a series that a
//! lock-free reader may still be reading, without readers paying an atomic read-modify-write or a
//! fence, and without one long-held reference stalling reclamation for everyone.
//!
//! # Why
//! A family's lookup runs on every labelled record; its writers (a new series, a removal) are
//! rare. `ArcSwap::load` costs about 10.5 ns here (two locked instructions), `crossbeam_epoch::pin`
//! about 6 ns (one locked instruction as a store-load fence); both are more than the rest of a
//! labelled record. Plain epoch-based reclamation (what this module replaced) is as cheap for
//! readers, but one reader that stays pinned (a `SeriesRef` kept in a struct or a thread-local, a
//! leaked guard) keeps *everything* retired after its epoch alive: with series churn, memory grows
//! without bound. Here a reader protects only what was *alive at its era*: an object that was
//! created after the reader's era and retired since is freed, whatever the reader holds. This is
//! Ramalhete and Correia's hazard eras (2017), with the asymmetric fences of userspace RCU's
//! `membarrier` flavour.
//!
//! # Protocol
//! * A global **era** clock `E` starts at 1 and advances by one at every retire.
//! * Every object readers reach lock-free carries its **birth era**: `E` read when it was created,
//!   before it was published.
//! * A reader holds a **slot** in its thread's [`Record`] while it reads: `slot := E`, light fence,
//!   load a pointer, then [`Guard::validate`]: re-read `E`; if it moved, `slot := E`, light fence,
//!   and start again from the root pointer. A pointer is dereferenced only after it validated.
//! * **Retire** (after unlinking an object, so that no new reader can reach it): `R := E++`; the
//!   object waits with `(birth, R)`.
//! * **Reclaim**: heavy fence, read every slot of every record, free each waiting object whose
//!   interval `[birth, R]` contains no slot's era.
//!
//! # Why it is safe
//! A reader validated pointer `p` with era `e`: it stored `e`, fenced, loaded `p`, and read `E = e`
//! again. *Birth*: `p`'s creator read `b` from `E` before publishing `p` with a release store that
//! the reader's acquire load read from, so the reader's second read of `E` is coherence-ordered
//! after the creator's: `b <= e`. *Retire*: `p` is retired with `R` by a `fetch_add` that follows
//! its unlink; had the reader read a value above `R` (written by that RMW or a later one, which
//! continue its release sequence), it would have synchronised with the unlink and could not have
//! loaded `p`; so `e <= R`. Hence `e` lies in `[b, R]`. *Visibility*: either the reader's slot
//! store precedes the reclaimer's heavy fence, and the reclaimer (which reads slots after it) sees
//! `e` and keeps `p`; or it does not, and then the reader's pointer load follows the fence too and
//! sees the unlink, so the reader never had `p`. *Leaving an era*: every store to a slot is a release
//! (cleared to 0, moved to a later era by `validate`, or reused by a new guard), and the reclaimer
//! reads slots with acquire; a reclaimer that reads the new value, and may therefore free what the
//! old era protected, has acquired every read the reader made under that era. (A `Relaxed` store
//! there gave the acquire nothing to pair with: loom reported the reader's last read of an object
//! racing with its drop, for a guard moved on by `validate` and for a slot reused.)
//!
//! # The memory bound
//! A slot with era `e` keeps alive only objects alive at `e` (`birth <= e <= R`): at most one
//! version of each family's table and the series it held then. So whatever callers hold and for
//! however long, memory waiting for reclamation is at most the live structures at as many eras as
//! there are held guards, plus a batch. Reclaiming scans the waiting list once, and the next reclaim
//! waits until the list has doubled (or reached [`RECLAIM_BATCH`]), so retiring costs amortised
//! O(log guards) and never goes quadratic however much is held.
//!
//! # Records, threads and guards
//! A thread leases a record (a cache line with [`SLOTS`] era slots) on its first read and returns
//! it when it exits; records are reused, never freed, so there are as many as the peak number of
//! records leased at once: reading threads, plus guards beyond [`SLOTS`] held at once (below). A
//! record never changes hands while one of its slots is in use: a thread exiting with guards
//! outstanding (a guard kept where it outlives the lease: another `pthread_key`'s value, or a
//! thread-local where the lease ends from a thread-local destructor) leaves its record
//! *orphaned*, and the last of those guards returns it. The lease ends after every thread-local
//! destructor of the thread, also when it was first taken in a `pthread_key` destructor
//! (`sync::thread_exit`). Guards beyond [`SLOTS`] on one thread, and guards taken after the
//! lease has ended, lease a record of their own for their lifetime (one atomic
//! compare-and-swap). A leaked guard (`mem::forget`) keeps its record
//! and its era forever: it pins the objects alive at that era, never more.
//!
//! # Fences
//! Readers' light fence is a compiler fence when `membarrier(2)` (`PRIVATE_EXPEDITED`) registration
//! succeeded; the reclaimer's heavy fence is then `membarrier`, which runs a full barrier on every
//! thread of the process. If `membarrier` starts failing after registration (a seccomp filter
//! installed later, as sandboxes do), the reclaimer falls back to the process-wide barrier that a
//! TLB shootdown gives (`mprotect` of a dirty page, as .NET's `FlushProcessWriteBuffers` does) on
//! x86-64 and AArch64 Linux, and counts it; if that fails too, or on other systems, it frees
//! nothing and counts the deferral ([`ReclaimStats`]). Without `membarrier` (other systems, old
//! kernels) both sides use `fence(SeqCst)`, the textbook symmetric scheme; so does loom.

use std::cell::Cell;
use std::marker::PhantomData;
use std::ptr;
#[cfg(test)]
use std::sync::atomic::AtomicU8;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicU64 as StdAtomicU64, AtomicUsize as StdAtomicUsize};
use std::sync::OnceLock;

use crossbeam_utils::CachePadded;

use crate::sync::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Mutex};

/// Era slots per record: the guards one thread can hold at once before further guards lease a
/// record of their own.
pub(crate) const SLOTS: usize = 4;
const ALL_SLOTS: u32 = (1 << SLOTS) - 1;

/// The fewest waiting objects that trigger a reclaim.
#[cfg(not(agentcore_loom))]
pub(crate) const RECLAIM_BATCH: usize = 64;
/// Under loom every retire reclaims, so the models exercise freeing.
#[cfg(agentcore_loom)]
pub(crate) const RECLAIM_BATCH: usize = 1;

use crate::sync::asymmetric_fence::{heavy_fence, light_fence, Heavy};
use crate::sync::thread_exit::exit_hook;

// ---------------------------------------------------------------------------------------------
// Records.
// ---------------------------------------------------------------------------------------------

/// One thread's (or one transient guard's) era slots.
pub(crate) struct Record {
    /// The era each slot protects (0: free).
    eras: [AtomicU64; SLOTS],
    /// Which slots the lessee's guards use (bit `i` for slot `i`). Only the lessee touches it.
    used: AtomicU32,
    /// The lessee's thread exited with guards outstanding: the last one returns the record. Only
    /// the lessee touches it.
    orphaned: AtomicBool,
    leased: AtomicBool,
    /// The next record of the domain's list; set before the record is published, never changed.
    next: *const CachePadded<Record>,
    /// This record's own node in the list (where a scan may start, see `scan_from`); set before
    /// the record is published, never changed.
    node: *const CachePadded<Record>,
}

// SAFETY: `next` is written before publication and read-only afterwards; every other field is an
// atomic.
unsafe impl Sync for Record {}
// SAFETY: as above.
unsafe impl Send for Record {}

impl Record {
    fn new() -> Record {
        Record {
            eras: std::array::from_fn(|_| AtomicU64::new(0)),
            used: AtomicU32::new(0),
            orphaned: AtomicBool::new(false),
            leased: AtomicBool::new(true),
            next: ptr::null(),
            node: ptr::null(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The domain.
// ---------------------------------------------------------------------------------------------

struct Retired {
    ptr: *mut (),
    drop_fn: unsafe fn(*mut ()),
    birth: u64,
    retire: u64,
    bytes: usize,
}

// SAFETY: a retired object is dropped once, by whichever thread reclaims it; `retire` requires
// `T: Send`.
unsafe impl Send for Retired {}

struct Waiting {
    items: Vec<Retired>,
    /// Reclaim when `items` reaches this (at least `RECLAIM_BATCH`, twice what survived the last
    /// reclaim), so a reclaim's scan is paid for by as many retires.
    threshold: usize,
    /// The slots' eras of the last scan (kept to reuse its allocation).
    eras: Vec<u64>,
    /// The last reclaim's list of freed objects, empty, kept to reuse its allocation: a scrape
    /// that frees what other threads retired allocates nothing once it has grown.
    freeable: Vec<Retired>,
}

/// Counters of a domain's reclamation, for self-observability.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ReclaimStats {
    /// Objects retired.
    pub(crate) retired: u64,
    /// Objects freed.
    pub(crate) freed: u64,
    /// Objects waiting (retired, not yet freed).
    pub(crate) pending: u64,
    /// Bytes of the objects waiting.
    pub(crate) pending_bytes: u64,
    /// Reclaims whose `membarrier` failed and that used the `mprotect` barrier instead.
    pub(crate) barrier_fallbacks: u64,
    /// Reclaims that freed nothing because no process-wide barrier was available.
    pub(crate) deferred: u64,
}

#[derive(Default)]
struct Counters {
    retired: StdAtomicU64,
    freed: StdAtomicU64,
    pending: StdAtomicU64,
    pending_bytes: StdAtomicUsize,
    barrier_fallbacks: StdAtomicU64,
    deferred: StdAtomicU64,
}

/// The era clock, the reader records and the waiting objects of a set of lock-free structures.
/// The process has one, [`Domain::global`]; tests and models build their own.
pub(crate) struct Domain {
    era: CachePadded<AtomicU64>,
    records: AtomicPtr<CachePadded<Record>>,
    /// How many records are returned and not leased again: exact whenever no lease or return is
    /// in progress (each return adds one after its release store, each lease that takes a
    /// returned record subtracts one; wrapping, so a lease that overtakes the return's add
    /// reads a huge value for a moment). A lease scans the list only when it is non-zero, so
    /// taking many guards at once on one thread (each beyond [`SLOTS`] leases a record of its
    /// own while every record is leased) no longer scans the whole list each time: holding `n`
    /// guards cost O(n²) (40,000 `SeriesRef`s held took 16 s to take).
    ///
    /// A `std` atomic even under loom: a hint (its value decides only whether a scan happens,
    /// never what a scan may take), so the models need not explore its orderings, which
    /// multiplied the series-map models' interleavings past minutes.
    returned: StdAtomicUsize,
    /// Where the next scan starts: the record returned last, or just after the record the
    /// last scan leased (null: the head). Scans go from there to the end of the list, then
    /// from the head up to it, so taking again many records returned at once does not rescan
    /// the ones just leased, and a record just returned is found first. Records are never
    /// freed while the domain lives, so any value stays a valid place to start.
    scan_from: AtomicPtr<CachePadded<Record>>,
    waiting: Mutex<Waiting>,
    counters: Counters,
    /// Whether this is the global domain, whose records threads keep in thread-local storage.
    is_global: bool,
    /// Test support: bit 0 makes `membarrier` report failure, bit 1 the fallback barrier, as a
    /// seccomp filter would (`tests/reclamation_seccomp.rs` installs a real one).
    #[cfg(test)]
    fail_barriers: AtomicU8,
}

impl Domain {
    /// A domain whose threads take a record per guard (no thread-local record).
    #[cfg(test)]
    pub(crate) fn new() -> Domain {
        Domain::with_thread_records(false)
    }

    fn with_thread_records(is_global: bool) -> Domain {
        Domain {
            era: CachePadded::new(AtomicU64::new(1)),
            records: AtomicPtr::new(ptr::null_mut()),
            returned: StdAtomicUsize::new(0),
            scan_from: AtomicPtr::new(ptr::null_mut()),
            waiting: Mutex::new(Waiting {
                items: Vec::new(),
                threshold: RECLAIM_BATCH,
                eras: Vec::new(),
                freeable: Vec::new(),
            }),
            counters: Counters::default(),
            is_global,
            #[cfg(test)]
            fail_barriers: AtomicU8::new(0),
        }
    }

    /// The process-wide domain every family uses.
    #[inline]
    pub(crate) fn global() -> &'static Domain {
        static GLOBAL: OnceLock<Domain> = OnceLock::new();
        GLOBAL.get_or_init(|| Domain::with_thread_records(true))
    }

    /// The current era: what a new object records as its birth, read before it is published.
    #[inline]
    pub(crate) fn era(&self) -> u64 {
        self.era.load(Acquire)
    }

    fn records(&self) -> impl Iterator<Item = &Record> {
        self.records_between(self.records.load(Acquire), ptr::null())
            .map(|(record, _)| record)
    }

    /// The records from `from` (included) up to `to` (excluded) or the end of the list.
    fn records_between(
        &self,
        from: *const CachePadded<Record>,
        to: *const CachePadded<Record>,
    ) -> impl Iterator<Item = (&Record, *const CachePadded<Record>)> + '_ {
        let mut cur = from;
        std::iter::from_fn(move || {
            if cur == to {
                return None;
            }
            // SAFETY: `cur` is null or a record of this domain's list (its head, a `next`, or
            // a `scan_from`, all taken from the list); records are never freed while the
            // domain lives (it is borrowed for the iterator's lifetime) and `next` is
            // immutable after publication.
            let record = unsafe { cur.as_ref()? };
            cur = record.next;
            Some((&**record, cur))
        })
    }

    /// Leases a record: a returned one if any, or a new one.
    pub(crate) fn lease_record(&self) -> &Record {
        if self.returned.load(Relaxed) != 0 {
            let start = self.scan_start();
            let head = self.records.load(Acquire) as *const CachePadded<Record>;
            // From `start` to the end (nothing when it is null), then from the head to it.
            let scan = self
                .records_between(start, ptr::null())
                .chain(self.records_between(head, start));
            for (record, next) in scan {
                if !record.leased.load(Relaxed)
                    && record
                        .leased
                        .compare_exchange(false, true, Acquire, Relaxed)
                        .is_ok()
                {
                    self.returned.fetch_sub(1, Relaxed);
                    self.set_scan_start(next);
                    return record;
                }
            }
        }
        let mut fresh = Box::new(CachePadded::new(Record::new()));
        let mut head = self.records.load(Relaxed);
        loop {
            fresh.next = head;
            let raw = Box::into_raw(fresh);
            // SAFETY: `raw` is the box just released, not yet published: ours alone.
            unsafe { (&mut *raw).node = raw };
            match self
                .records
                .compare_exchange_weak(head, raw, Release, Relaxed)
            {
                // SAFETY: `raw` now belongs to the list, which lives as long as `self`.
                Ok(_) => return unsafe { &*raw },
                Err(seen) => {
                    head = seen;
                    // SAFETY: the CAS failed, so `raw` was not published; take it back.
                    fresh = unsafe { Box::from_raw(raw) };
                }
            }
        }
    }

    /// Ends a thread's lease of `record`: returns it now, or, while guards of it are still held
    /// (they are dropped later on the same thread), leaves that to the last of them.
    pub(crate) fn end_lease(&self, record: &Record) {
        if record.used.load(Relaxed) == 0 {
            self.return_record(record);
        } else {
            record.orphaned.store(true, Relaxed);
        }
    }

    /// Where the next scan starts (see `scan_from`). `Acquire`, pairing with the `Release` of
    /// `set_scan_start`: the record pointed at was published before (its `next` and `node`
    /// written); loom found the `Relaxed` first written here (a record reached through a
    /// relaxed pointer, its fields not ordered before the scan's reads).
    ///
    /// Under loom the scan starts at the head, as the models always had it: the extra atomic
    /// accesses on every lease and return multiplied the series-map models' interleavings
    /// (one minute for every model became more than ten). The era models ran with it when it
    /// was written, and pass.
    #[inline]
    fn scan_start(&self) -> *const CachePadded<Record> {
        if cfg!(agentcore_loom) {
            return ptr::null();
        }
        self.scan_from.load(Acquire)
    }

    /// Sets where the next scan starts: a record of the list, or null (the head).
    #[inline]
    fn set_scan_start(&self, node: *const CachePadded<Record>) {
        if !cfg!(agentcore_loom) {
            self.scan_from.store(node.cast_mut(), Release);
        }
    }

    /// Returns a leased record with no slot in use, for the next lease, whose scan starts
    /// there: a guard taken and dropped while many are held (each lookup's own, beside the
    /// held ones) is found again at once, not after every leased record of the list.
    fn return_record(&self, record: &Record) {
        record.leased.store(false, Release);
        self.returned.fetch_add(1, Relaxed);
        self.set_scan_start(record.node);
    }

    /// A guard for reading this domain's structures on the calling thread.
    #[inline]
    pub(crate) fn guard(&self) -> Guard<'_> {
        if self.is_global {
            let record = RECORD.with(Cell::get);
            // SAFETY: `RECORD` is null or a record of the global domain (which is `self`) leased
            // by this thread; records are never freed while their domain lives, and the global one
            // lives for the whole process.
            if let Some(record) = unsafe { record.as_ref() } {
                return self.guard_in(record);
            }
            return self.guard_cold();
        }
        self.guard_transient()
    }

    #[cold]
    #[inline(never)]
    fn guard_cold(&self) -> Guard<'_> {
        // The thread's first guard: lease a record, unless the lease has ended or is being
        // taken (see `LeaseState`) or its end cannot be registered (the thread is exiting).
        if LEASE_STATE.with(Cell::get) != LeaseState::Open || !EXIT.register() {
            return self.guard_transient();
        }
        LEASE_STATE.with(|e| e.set(LeaseState::Taking));
        let record: &Record = Domain::global().lease_record();
        RECORD.with(|r| r.set(record));
        LEASE_STATE.with(|e| e.set(LeaseState::Open));
        self.guard_in(record)
    }

    /// A guard in a slot of `record`, which the calling thread leases.
    #[inline]
    pub(crate) fn guard_in<'d>(&'d self, record: &'d Record) -> Guard<'d> {
        let used = record.used.load(Relaxed);
        if used == ALL_SLOTS {
            return self.guard_transient();
        }
        let slot = (!used).trailing_zeros() as usize;
        record.used.store(used | 1 << slot, Relaxed);
        self.start(record, slot, Lease::Thread)
    }

    /// A guard with a record of its own, leased for its lifetime.
    #[cold]
    fn guard_transient(&self) -> Guard<'_> {
        let record = self.lease_record();
        self.start(record, 0, Lease::Guard)
    }

    #[inline(always)]
    fn start<'d>(&'d self, record: &'d Record, slot: usize, lease: Lease) -> Guard<'d> {
        let era = self.era.load(Acquire);
        // Release: the slot may be reused from an earlier guard (see "Leaving an era").
        record.eras[slot].store(era, Release);
        light_fence();
        Guard {
            domain: self,
            record,
            slot,
            era,
            lease,
            _not_send: PhantomData,
        }
    }

    /// Hands `ptr` to the domain, to be dropped once no reader can hold it, counting its own
    /// size in the pending bytes ([`retire_sized`](Self::retire_sized) for an object that
    /// owns more).
    ///
    /// # Safety
    /// As [`retire_sized`](Self::retire_sized).
    // Only tests call it (this module's and the loom models'): a library build, with or
    // without the loom cfg, has no caller.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) unsafe fn retire<T: Send + 'static>(&self, ptr: *mut T, birth: u64) {
        // SAFETY: the caller's contract is `retire_sized`'s.
        unsafe { self.retire_sized(ptr, birth, std::mem::size_of::<T>()) }
    }

    /// Hands `ptr` to the domain, to be dropped once no reader can hold it; `bytes` is what
    /// freeing it gives back (its own size and what it owns), counted in the pending bytes
    /// while it waits.
    ///
    /// # Safety
    /// `ptr` came from `Box::<T>::into_raw`; it is already unreachable for new readers (unlinked
    /// from every structure of this domain); it is retired once and not used by the caller
    /// afterwards; `birth` is [`Domain::era`] read before `ptr` was first published.
    pub(crate) unsafe fn retire_sized<T: Send + 'static>(
        &self,
        ptr: *mut T,
        birth: u64,
        bytes: usize,
    ) {
        #[cfg(not(agentcore_loom))]
        unsafe fn drop_box<T>(p: *mut ()) {
            // SAFETY: `p` came from `Box::<T>::into_raw` and is dropped once (`retire`'s contract).
            drop(unsafe { Box::from_raw(p.cast::<T>()) });
        }
        /// Under loom: drops the object but keeps its memory, quarantined, so that a reader that
        /// reaches it afterwards is caught by [`assert_not_freed`] instead of reading reused memory.
        #[cfg(agentcore_loom)]
        unsafe fn drop_box<T>(p: *mut ()) {
            // SAFETY: as above; the allocation itself is leaked, never reused.
            unsafe { ptr::drop_in_place(p.cast::<T>()) };
            quarantine().lock().unwrap().insert(p as usize);
        }
        let retire = self.era.fetch_add(1, AcqRel);
        let c = &self.counters;
        c.retired.fetch_add(1, Relaxed);
        c.pending.fetch_add(1, Relaxed);
        c.pending_bytes.fetch_add(bytes, Relaxed);
        let freeable = {
            let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
            waiting.items.push(Retired {
                ptr: ptr.cast(),
                drop_fn: drop_box::<T>,
                birth,
                retire,
                bytes,
            });
            if waiting.items.len() < waiting.threshold {
                return;
            }
            self.collect(&mut waiting)
        };
        self.free(freeable);
    }

    /// Frees whatever waiting object no reader can hold now (scrapes call it, so that objects
    /// below the batch threshold do not wait for the next retire).
    pub(crate) fn reclaim(&self) {
        let freeable = {
            let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
            if waiting.items.is_empty() {
                return;
            }
            self.collect(&mut waiting)
        };
        self.free(freeable);
    }

    /// Under the waiting list's lock: takes out every object no slot protects.
    fn collect(&self, waiting: &mut Waiting) -> Vec<Retired> {
        let mut freeable = std::mem::take(&mut waiting.freeable);
        if self.heavy_fence() {
            let Waiting { items, eras, .. } = waiting;
            eras.clear();
            for record in self.records() {
                for slot in &record.eras {
                    let era = slot.load(Acquire);
                    if era != 0 {
                        eras.push(era);
                    }
                }
            }
            eras.sort_unstable();
            items.retain(|r| {
                let first = eras.partition_point(|&e| e < r.birth);
                let protected = eras.get(first).is_some_and(|&e| e <= r.retire);
                if !protected {
                    freeable.push(Retired { ..*r });
                }
                protected
            });
        }
        waiting.threshold = RECLAIM_BATCH.max(2 * waiting.items.len());
        if freeable.is_empty() {
            // Nothing to free: keep the allocation where it was.
            waiting.freeable = freeable;
            return Vec::new();
        }
        freeable
    }

    fn free(&self, mut freeable: Vec<Retired>) {
        if freeable.is_empty() {
            return;
        }
        let c = &self.counters;
        for r in freeable.drain(..) {
            c.freed.fetch_add(1, Relaxed);
            c.pending.fetch_sub(1, Relaxed);
            c.pending_bytes.fetch_sub(r.bytes, Relaxed);
            // SAFETY: no slot's era lies in `[birth, retire]`, so no reader can hold the object
            // (module docs); it was taken out of the waiting list exactly once, under its lock.
            unsafe { (r.drop_fn)(r.ptr) };
        }
        // Give the list's allocation back for the next reclaim (unless one meanwhile kept a
        // larger one).
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        if waiting.freeable.capacity() < freeable.capacity() {
            waiting.freeable = freeable;
        }
    }

    /// The reclaimer's barrier; `false` when none is available (then nothing may be freed).
    fn heavy_fence(&self) -> bool {
        #[cfg(test)]
        let fail = self.fail_barriers.load(Relaxed);
        #[cfg(not(test))]
        let fail = 0;
        match heavy_fence(fail) {
            Heavy::Symmetric | Heavy::Membarrier => true,
            Heavy::Flush => {
                self.counters.barrier_fallbacks.fetch_add(1, Relaxed);
                true
            }
            Heavy::Failed => {
                self.counters.deferred.fetch_add(1, Relaxed);
                false
            }
        }
    }

    /// A reading of the domain's counters.
    pub(crate) fn stats(&self) -> ReclaimStats {
        let c = &self.counters;
        ReclaimStats {
            retired: c.retired.load(Relaxed),
            freed: c.freed.load(Relaxed),
            pending: c.pending.load(Relaxed),
            pending_bytes: c.pending_bytes.load(Relaxed) as u64,
            barrier_fallbacks: c.barrier_fallbacks.load(Relaxed),
            deferred: c.deferred.load(Relaxed),
        }
    }
}

impl Drop for Domain {
    fn drop(&mut self) {
        let waiting = self.waiting.get_mut().unwrap_or_else(|e| e.into_inner());
        for r in waiting.items.drain(..) {
            // SAFETY: the domain is being dropped, so no reader of it remains.
            unsafe { (r.drop_fn)(r.ptr) };
        }
        let mut cur = self.records.load(Acquire);
        while !cur.is_null() {
            // SAFETY: every record came from `Box::into_raw` in `lease_record` and is reachable
            // once; the domain is being dropped, so nobody holds it.
            let record = unsafe { Box::from_raw(cur) };
            cur = record.next as *mut CachePadded<Record>;
        }
    }
}

impl std::fmt::Debug for Domain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Domain")
            .field("era", &self.era.load(Relaxed))
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

#[cfg(agentcore_loom)]
fn quarantine() -> &'static std::sync::Mutex<std::collections::HashSet<usize>> {
    static FREED: OnceLock<std::sync::Mutex<std::collections::HashSet<usize>>> = OnceLock::new();
    FREED.get_or_init(Default::default)
}

/// Under loom, panics if `ptr` was freed by a reclaim: what a reader calls on a pointer right
/// before it dereferences it, so the models catch a use after free. A no-op otherwise.
#[inline(always)]
pub(crate) fn assert_not_freed<T>(ptr: *const T) {
    #[cfg(agentcore_loom)]
    assert!(
        !quarantine().lock().unwrap().contains(&(ptr as usize)),
        "a reader reached a freed object"
    );
    let _ = ptr;
}

// ---------------------------------------------------------------------------------------------
// Guards.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lease {
    /// A slot of the thread's own record.
    Thread,
    /// A record leased for this guard alone.
    Guard,
}

/// A reader's protection: while it lives, every pointer it validated stays valid. `!Send`: it
/// is a slot of the calling thread's record.
pub(crate) struct Guard<'d> {
    domain: &'d Domain,
    record: &'d Record,
    slot: usize,
    era: u64,
    lease: Lease,
    _not_send: PhantomData<*const ()>,
}

impl Guard<'_> {
    /// The era the guard protects now: every pointer it validated since it last moved to this
    /// era stays valid for as long as it holds it (it moves only when [`Guard::validate`]
    /// returns `false`).
    #[cfg(not(agentcore_loom))]
    #[inline(always)]
    pub(crate) fn era(&self) -> u64 {
        self.era
    }

    /// Whether every pointer loaded since the guard started (or since the last `false`) is
    /// protected. On `false` the guard has moved to the current era: the caller must drop what it
    /// loaded and load again from the root.
    #[inline(always)]
    pub(crate) fn validate(&mut self) -> bool {
        let now = self.domain.era.load(Acquire);
        if now == self.era {
            return true;
        }
        self.era = now;
        // Release: the reads made under the old era happen before any free that reading `now`
        // allows (see "Leaving an era").
        self.record.eras[self.slot].store(now, Release);
        light_fence();
        false
    }
}

/// A guard of the global domain as one word, for a holder that only keeps it until it drops it
/// (a `SeriesRef`): the record's address with the slot and the lease in its low bits.
#[cfg(not(agentcore_loom))]
impl Guard<'static> {
    const SLOT_SHIFT: u32 = 1;
    const LOW_BITS: usize = 0b111;

    /// The word [`Guard::from_raw`] takes back: the record's pointer, its provenance kept, with
    /// the slot and the lease in its low bits. Panics for a guard of another domain (the word
    /// does not name the domain).
    pub(crate) fn into_raw(self) -> *const () {
        const _: () = assert!(SLOTS <= 4 && std::mem::align_of::<Record>() >= 8);
        assert!(
            ptr::eq(self.domain, Domain::global()),
            "a guard of the global domain"
        );
        let this = std::mem::ManuallyDrop::new(self);
        let low = this.slot << Self::SLOT_SHIFT | usize::from(this.lease == Lease::Guard);
        ptr::from_ref::<Record>(this.record)
            .cast::<()>()
            .map_addr(|a| a | low)
    }

    /// The guard [`Guard::into_raw`] made `raw` of.
    ///
    /// # Safety
    /// `raw` came from `into_raw`, and is taken back once.
    pub(crate) unsafe fn from_raw(raw: *const ()) -> Guard<'static> {
        let low = raw.addr() & Self::LOW_BITS;
        // SAFETY: a pointer to a record of the global domain (`into_raw`'s assertion), which is
        // never freed, with its provenance; aligned to 8, so the low bits were free for the slot
        // and the lease, and clearing them gives the record's address back.
        let record = unsafe { &*raw.map_addr(|a| a & !Self::LOW_BITS).cast::<Record>() };
        let slot = low >> Self::SLOT_SHIFT;
        Guard {
            domain: Domain::global(),
            record,
            slot,
            // The era the slot holds: the guard's, which `into_raw` left in place.
            era: record.eras[slot].load(Relaxed),
            lease: if low & 1 == 1 {
                Lease::Guard
            } else {
                Lease::Thread
            },
            _not_send: PhantomData,
        }
    }
}

impl Drop for Guard<'_> {
    #[inline]
    fn drop(&mut self) {
        let record = self.record;
        record.eras[self.slot].store(0, Release);
        match self.lease {
            Lease::Guard => self.domain.return_record(record),
            Lease::Thread => {
                let used = record.used.load(Relaxed) & !(1 << self.slot);
                record.used.store(used, Relaxed);
                if used == 0 && record.orphaned.load(Relaxed) {
                    record.orphaned.store(false, Relaxed);
                    self.domain.return_record(record);
                }
            }
        }
    }
}

#[cfg(all(test, agentcore_loom))]
impl Guard<'_> {
    /// The slot and the era the guard holds (for the models).
    pub(crate) fn slot_and_era(&self) -> (usize, u64) {
        (self.slot, self.era)
    }
}

#[cfg(all(test, agentcore_loom))]
impl Record {
    /// The era in `slot` (for the models).
    pub(crate) fn slot_era(&self, slot: usize) -> u64 {
        self.eras[slot].load(Relaxed)
    }
}

impl std::fmt::Debug for Guard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("era", &self.era)
            .field("slot", &self.slot)
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------------------------
// The thread's record of the global domain.
// ---------------------------------------------------------------------------------------------

thread_local! {
    /// This thread's record of the global domain, or null. No destructor: a plain load.
    static RECORD: Cell<*const Record> = const { Cell::new(ptr::null()) };
    /// Where this thread's lease of `RECORD` stands. No destructor.
    static LEASE_STATE: Cell<LeaseState> = const { Cell::new(LeaseState::Open) };
}

/// Where a thread's lease of its record of the global domain stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum LeaseState {
    /// Leased (`RECORD` not null) or not yet.
    Open,
    /// Being taken: a guard taken meanwhile on this thread (by a global allocator that takes
    /// guards, when the record is allocated) takes a record of its own for its lifetime. It
    /// leased one for the thread before, which the outer lease then overwrote (leased for
    /// good), and each such lease allocated a record again, without end
    /// (`tests/reentrant_allocator.rs`).
    Taking,
    /// Ended (the thread is exiting): its guards from then on take a record of their own.
    Ended,
}

exit_hook! {
    /// Ends the thread's lease at its exit, after every thread-local destructor of the thread
    /// (so that guards those take and drop keep using the record), also for a lease first taken
    /// in a `pthread_key` destructor, whose thread-local destructor glibc would never run: the
    /// record stayed leased for good, and every such thread added one to the list
    /// (`sync::thread_exit`).
    static EXIT runs end_thread_lease;
}

/// Ends the calling thread's lease of its record of the global domain: guards it takes from
/// now on lease records of their own.
fn end_thread_lease() {
    LEASE_STATE.with(|e| e.set(LeaseState::Ended));
    let record = RECORD.with(|r| r.replace(ptr::null()));
    // SAFETY: a non-null pointer is a record of the global domain, never freed.
    if let Some(record) = unsafe { record.as_ref() } {
        Domain::global().end_lease(record);
    }
}

#[cfg(all(test, not(agentcore_loom)))]
mod tests {
    use super::*;

    /// A guard taken while the thread's lease is being taken (by the global allocator, asked
    /// for the record) takes a record of its own and leaves the thread's lease to the outer
    /// call: it does not lease one for the thread that the outer call would overwrite (the
    /// allocator's side is `tests/reentrant_allocator.rs`; this is the nested call alone).
    #[test]
    fn a_guard_taken_while_the_lease_is_taken_leases_nothing_for_the_thread() {
        std::thread::spawn(|| {
            LEASE_STATE.with(|e| e.set(LeaseState::Taking));
            drop(Domain::global().guard());
            assert!(
                RECORD.with(Cell::get).is_null(),
                "no record leased for the thread"
            );
            LEASE_STATE.with(|e| e.set(LeaseState::Open));
            drop(Domain::global().guard());
            assert!(
                !RECORD.with(Cell::get).is_null(),
                "the thread's lease, once open"
            );
        })
        .join()
        .unwrap();
    }

    /// A thread whose first guard is taken in a `pthread_key` destructor ends its lease too
    /// (`EXIT`, in the next destructor round), seen from the same destructor two rounds later:
    /// the thread holds no record. Fails if the lease's end rides
    /// on `EXIT`'s fallback thread-local alone (glibc never runs a thread-local destructor registered then: the
    /// record stayed leased for good).
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn a_lease_first_taken_in_a_key_destructor_ends() {
        static ROUND: StdAtomicUsize = StdAtomicUsize::new(0);
        /// The thread's record after its first guard; then whether, after the lease's end,
        /// the thread holds none and the lease is marked ended.
        static RECORD_SEEN: StdAtomicUsize = StdAtomicUsize::new(0);
        static ENDED: AtomicU8 = AtomicU8::new(0);
        use crate::sync::thread_exit::ExitKey;
        static KEY: ExitKey = ExitKey::new(at_exit);
        extern "C" fn at_exit(_: *mut std::ffi::c_void) {
            match ROUND.fetch_add(1, Relaxed) {
                0 => {
                    drop(Domain::global().guard());
                    RECORD_SEEN.store(RECORD.with(Cell::get) as usize, Relaxed);
                }
                1 => {}
                _ => {
                    // (Whether the record is leased is not asked: the next lease anywhere
                    // takes the returned record first.)
                    let ended = RECORD.with(Cell::get).is_null()
                        && LEASE_STATE.with(Cell::get) == LeaseState::Ended;
                    ENDED.store(if ended { 1 } else { 2 }, Relaxed);
                    return;
                }
            }
            assert!(KEY.arm());
        }
        std::thread::spawn(|| assert!(KEY.arm())).join().unwrap();
        assert_eq!(ROUND.load(Relaxed), 3, "three destructor rounds");
        assert_ne!(
            RECORD_SEEN.load(Relaxed),
            0,
            "the first guard leased a record"
        );
        assert_eq!(ENDED.load(Relaxed), 1, "the lease ended");
    }
    use crate::sync::asymmetric_fence::{fences, ASYMMETRIC};
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    struct CountsDrops(Arc<AtomicUsize>);
    impl Drop for CountsDrops {
        fn drop(&mut self) {
            self.0.fetch_add(1, Relaxed);
        }
    }

    fn tracked(domain: &Domain, drops: &Arc<AtomicUsize>) -> (*mut CountsDrops, u64) {
        (
            Box::into_raw(Box::new(CountsDrops(drops.clone()))),
            domain.era(),
        )
    }

    #[test]
    fn a_guard_keeps_what_was_alive_at_its_era_and_nothing_newer() {
        let domain = Domain::new();
        let drops = Arc::new(AtomicUsize::new(0));
        let (old, old_birth) = tracked(&domain, &drops);
        let guard = domain.guard();
        // Alive at the guard's era: protected.
        // SAFETY: a fresh box, never published, retired once.
        unsafe { domain.retire(old, old_birth) };
        // Born after the guard's era (the retire above advanced it), retired while the guard
        // is held: not protected.
        let (young, young_birth) = tracked(&domain, &drops);
        assert!(young_birth > old_birth);
        // SAFETY: a fresh box, never published, retired once.
        unsafe { domain.retire(young, young_birth) };
        domain.reclaim();
        assert_eq!(drops.load(Relaxed), 1, "only the young object is freed");
        assert_eq!(domain.stats().pending, 1);
        drop(guard);
        domain.reclaim();
        assert_eq!(drops.load(Relaxed), 2);
        assert_eq!(domain.stats().pending, 0);
    }

    #[test]
    fn a_thread_exiting_with_a_guard_outstanding_keeps_its_record_until_the_guard_drops() {
        let domain = Domain::new();
        let record = domain.lease_record();
        let guard = domain.guard_in(record);
        domain.end_lease(record); // the thread "exits"; a guard in another thread-local lives on
        let other = domain.lease_record();
        assert!(
            !ptr::eq(record, other),
            "a record in use is never leased again"
        );
        drop(guard);
        domain.end_lease(other);
        let (a, b) = (domain.lease_record(), domain.lease_record());
        assert!(
            ptr::eq(a, record) || ptr::eq(b, record),
            "the last guard returned the orphaned record"
        );
    }

    #[test]
    fn guards_beyond_the_slots_lease_records_of_their_own() {
        let domain = Domain::new();
        let record = domain.lease_record();
        let guards: Vec<_> = (0..SLOTS + 3).map(|_| domain.guard_in(record)).collect();
        assert_eq!(record.used.load(Relaxed), ALL_SLOTS);
        assert!(guards.iter().filter(|g| g.lease == Lease::Guard).count() == 3);
        drop(guards);
        assert_eq!(record.used.load(Relaxed), 0);
    }

    #[test]
    fn records_returned_by_many_held_guards_are_all_leased_again() {
        // A domain without thread records: every guard leases a record of its own.
        let domain = Domain::new();
        for round in 0..3 {
            let guards: Vec<_> = (0..100).map(|_| domain.guard()).collect();
            assert_eq!(
                domain.records().count(),
                100,
                "round {round}: records reused"
            );
            assert_eq!(domain.returned.load(Relaxed), 0);
            drop(guards);
            assert_eq!(domain.returned.load(Relaxed), 100, "round {round}");
        }
    }

    #[test]
    fn the_reclaim_threshold_doubles_with_what_survives() {
        let domain = Domain::new();
        let drops = Arc::new(AtomicUsize::new(0));
        let pinned = {
            let (p, b) = tracked(&domain, &drops);
            (p, b)
        };
        let guard = domain.guard();
        // SAFETY: fresh boxes, retired once.
        unsafe { domain.retire(pinned.0, pinned.1) };
        for _ in 0..10 * RECLAIM_BATCH {
            let (p, b) = tracked(&domain, &drops);
            // SAFETY: as above.
            unsafe { domain.retire(p, b) };
        }
        // Everything but the pinned object was freed along the way.
        assert!(domain.stats().pending <= RECLAIM_BATCH as u64);
        drop(guard);
        domain.reclaim();
        assert_eq!(domain.stats().pending, 0);
    }

    #[test]
    fn without_a_barrier_nothing_is_freed_and_the_deferral_is_counted() {
        let domain = Domain::new();
        if fences() != ASYMMETRIC {
            return; // the symmetric scheme needs no process-wide barrier
        }
        let drops = Arc::new(AtomicUsize::new(0));
        domain.fail_barriers.store(3, Relaxed);
        let (p, b) = tracked(&domain, &drops);
        // SAFETY: fresh box, retired once.
        unsafe { domain.retire(p, b) };
        domain.reclaim();
        let stats = domain.stats();
        domain.fail_barriers.store(1, Relaxed);
        domain.reclaim();
        let fallback = domain.stats();
        domain.fail_barriers.store(0, Relaxed);
        assert_eq!(drops.load(Relaxed), 1, "freed once a barrier worked again");
        assert!(stats.deferred >= 1 && stats.freed == 0, "{stats:?}");
        assert!(fallback.barrier_fallbacks >= 1, "{fallback:?}");
    }
}
