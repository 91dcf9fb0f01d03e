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
//!
//! A test that expects no allocation can also ask where the first one came from:
//! [`trace_allocations`] arms the calling thread, and [`first_allocation`] returns the
//! backtrace of its first allocation since, so that a rare allocation (seen once in CI, not
//! reproduced on demand) says in the failure message what made it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

/// The counting allocator.
pub struct Counting;

thread_local! {
    static THREAD: Cell<u64> = const { Cell::new(0) };
    static THREAD_BYTES: Cell<u64> = const { Cell::new(0) };
    /// Armed by `trace_allocations`: the next allocation of this thread captures a backtrace.
    static TRACING: Cell<bool> = const { Cell::new(false) };
    /// Set while capturing, so the capture's own allocations are neither counted nor traced.
    static CAPTURING: Cell<bool> = const { Cell::new(false) };
    static FIRST: RefCell<Option<String>> = const { RefCell::new(None) };
}
static PROCESS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);
static LIVE: AtomicI64 = AtomicI64::new(0);

fn count(bytes: usize) {
    if CAPTURING.try_with(Cell::get).unwrap_or(false) {
        return;
    }
    if TRACING.try_with(|t| t.replace(false)).unwrap_or(false) {
        capture();
    }
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

/// Captures the backtrace of the allocation being made (the first since `trace_allocations`).
#[cold]
fn capture() {
    let _ = CAPTURING.try_with(|c| c.set(true));
    let trace = std::backtrace::Backtrace::force_capture().to_string();
    let _ = FIRST.try_with(|f| *f.borrow_mut() = Some(trace));
    let _ = CAPTURING.try_with(|c| c.set(false));
}

/// Arms the calling thread: its next allocation's backtrace is kept for [`first_allocation`]
/// (and a backtrace kept earlier is forgotten).
pub fn trace_allocations() {
    FIRST.with(|f| f.borrow_mut().take());
    TRACING.with(|t| t.set(true));
}

/// The backtrace of the calling thread's first allocation since [`trace_allocations`], if it
/// allocated since; disarms the thread.
pub fn first_allocation() -> Option<String> {
    TRACING.with(|t| t.set(false));
    FIRST.with(|f| f.borrow_mut().take())
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
