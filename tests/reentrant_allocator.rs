//! A global allocator that records metrics itself (an allocation counter, a labelled lookup),
//! as a process instrumenting its own allocations does. A thread's first recording allocates
//! (the slot arena's block when it is created, the lookup cache's sets, the era record), and
//! the allocator then records on the same thread, inside that first recording. The inner
//! recording took a block, a cache and its guard of its own, which the outer one then
//! overwrote: the block stayed leased for good, the cache's sets leaked and its guard pinned
//! an era for good, so that what was removed later was never freed. The inner recording now
//! finds the thread's lease (or cache) being taken and goes around it: a stripe, the uncached
//! lookup.
//!
//! The allocator guards against its own re-entry, as any allocator hook must (its recording
//! may allocate in turn); the crate's re-entry is one level deep. One test in this file, so
//! that it runs alone in its process: the arena's blocks and the pending reclamation it
//! reasons about are the process's.

use agentcore_telemetry::registry::self_metrics::{arena_stats, reclamation_stats};
use agentcore_telemetry::registry::{Family, Registry};
use agentcore_telemetry::Counter;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::{Barrier, OnceLock};

struct Recording;

thread_local! {
    /// Whether this thread's allocations are recorded.
    static ARMED: Cell<bool> = const { Cell::new(false) };
    /// Inside the hook: its own allocations are not recorded.
    static IN_HOOK: Cell<bool> = const { Cell::new(false) };
}

static ALLOCATIONS: OnceLock<Counter> = OnceLock::new();
static BY_KIND: OnceLock<Family<Counter>> = OnceLock::new();

fn hook() {
    if !ARMED.with(Cell::get) || IN_HOOK.with(Cell::get) {
        return;
    }
    IN_HOOK.with(|h| h.set(true));
    if let Some(c) = ALLOCATIONS.get() {
        c.inc();
    }
    if let Some(f) = BY_KIND.get() {
        f.with_label_values(&["alloc"]).unwrap().inc();
    }
    IN_HOOK.with(|h| h.set(false));
}

// SAFETY: every method forwards to the system allocator unchanged; the hook records through
// the crate, whose allocations come back here with the hook's re-entry guard set.
unsafe impl GlobalAlloc for Recording {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        hook();
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        hook();
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        hook();
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Recording = Recording;

#[test]
fn recordings_made_by_the_allocator_inside_a_first_recording_keep_nothing_for_good() {
    // Statics, not leaks (the AddressSanitizer run checks for leaks).
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    static JOBS: OnceLock<Family<Counter>> = OnceLock::new();
    let registry = REGISTRY.get_or_init(Registry::new);
    let jobs = JOBS.get_or_init(|| {
        registry
            .counter_family("jobs_total", "Jobs.", &["job"])
            .unwrap()
    });
    ALLOCATIONS.get_or_init(|| Counter::new().unwrap());
    BY_KIND.get_or_init(|| {
        registry
            .counter_family("allocs_total", "Allocations.", &["kind"])
            .unwrap()
    });
    // A series born before the armed threads' guards, removed after they have exited: freed
    // at the next scrape unless a guard of theirs was kept. Made without recording into it:
    // the armed threads are the first to record, and create the process's blocks.
    std::thread::spawn(move || drop(jobs.with_label_values(&["old"]).unwrap()))
        .join()
        .unwrap();

    let before = arena_stats();
    let (a_ready, a_wait) = (Barrier::new(2), Barrier::new(2));
    std::thread::scope(|s| {
        // A: its first lookup makes the cache; the allocator, asked for the cache's sets,
        // records (taking the process's first block) and looks up inside that first lookup.
        let a = s.spawn(|| {
            ARMED.with(|a| a.set(true));
            drop(jobs.with_label_values(&["new"]).unwrap());
            a_ready.wait();
            a_wait.wait(); // holds its block while B takes one
        });
        a_ready.wait();
        // B, while A holds the first block: its first recording creates the second block,
        // and the allocator records inside it.
        s.spawn(|| {
            ARMED.with(|a| a.set(true));
            ALLOCATIONS.get().unwrap().inc();
        })
        .join()
        .unwrap();
        a_wait.wait();
        a.join().unwrap();
    });
    let after = arena_stats();
    assert_eq!(before.exclusive_blocks, 0, "no recording before");
    assert!(
        after.exclusive_blocks <= 2,
        "a block for each thread, none leased for good by the allocator's recordings: \
         {before:?} -> {after:?}"
    );
    assert!(
        ALLOCATIONS.get().unwrap().get() >= 3.0,
        "the allocator recorded"
    );

    assert!(jobs.remove(&["old"]));
    let _ = registry.encode_text();
    assert_eq!(
        reclamation_stats().pending,
        0,
        "the removed series is freed: no guard of the exited threads pins it"
    );
}
