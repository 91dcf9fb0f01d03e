//! The counting global allocator of the zero-allocation tests. A test binary installs it with
//!
//! ```ignore
//! #[global_allocator]
//! static GLOBAL: support::alloc::Counting = support::alloc::Counting;
//! ```
//!
//! It counts allocations (including reallocations) per thread and for the whole process, the
//! bytes requested process-wide, and the bytes live (allocated and not yet freed); everything is
//! forwarded to the system allocator unchanged.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

/// The counting allocator.
pub struct Counting;

thread_local! {
    static THREAD: Cell<u64> = const { Cell::new(0) };
    static THREAD_BYTES: Cell<u64> = const { Cell::new(0) };
}
static PROCESS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);
static LIVE: AtomicI64 = AtomicI64::new(0);

fn count(bytes: usize) {
    // `try_with`: the allocator also runs while thread-locals are being torn down.
    let _ = THREAD.try_with(|c| c.set(c.get() + 1));
    let _ = THREAD_BYTES.try_with(|c| c.set(c.get() + bytes as u64));
    PROCESS.fetch_add(1, Relaxed);
    BYTES.fetch_add(bytes as u64, Relaxed);
}

fn live(delta: i64) {
    LIVE.fetch_add(delta, Relaxed);
}

// SAFETY: every method forwards to the system allocator unchanged; counting touches only a
// const thread-local `Cell` and two atomics, and never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: same contract as ours.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            live(layout.size() as i64);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: same contract as ours.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            live(layout.size() as i64);
        }
        p
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: same contract as ours.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            live(new_size as i64 - layout.size() as i64);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        live(-(layout.size() as i64));
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Allocations made by the calling thread so far.
pub fn thread_allocations() -> u64 {
    THREAD.with(Cell::get)
}

/// Bytes requested by the calling thread so far (reallocations count their new size).
pub fn thread_bytes() -> u64 {
    THREAD_BYTES.with(Cell::get)
}

/// Allocations made by every thread so far.
pub fn process_allocations() -> u64 {
    PROCESS.load(Relaxed)
}

/// Bytes requested by every thread so far.
pub fn process_bytes() -> u64 {
    BYTES.load(Relaxed)
}

/// Bytes allocated and not yet freed, by every thread, since the process started.
pub fn live_bytes() -> i64 {
    LIVE.load(Relaxed)
}
