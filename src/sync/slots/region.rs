//! A [`Region`]: one block's words, a reserved and lazily committed anonymous mapping (a zeroed
//! allocation under loom). It only holds words; who writes which word, and when a range may be
//! zeroed, are the invariants of [`slots`](super)'s module docs, which the SAFETY comments here
//! cite as "slots invariant N".

#[cfg(not(agentcore_loom))]
use std::ptr;
use std::sync::atomic::Ordering::Relaxed;

use crate::sync::AtomicU64;

/// `len` zeroed `AtomicU64`s, reserved from the operating system.
#[cfg(not(agentcore_loom))]
pub(super) struct Region {
    base: ptr::NonNull<AtomicU64>,
    len: usize,
}

#[cfg(not(agentcore_loom))]
impl Region {
    /// Reserves `len` zeroed words, or `None` when the system refuses.
    pub(super) fn new(len: usize) -> Option<Region> {
        #[cfg(test)]
        if tests::refused() {
            return None;
        }
        let bytes = len.checked_mul(std::mem::size_of::<AtomicU64>())?;
        #[cfg(unix)]
        {
            // (Miri maps only `MAP_PRIVATE | MAP_ANONYMOUS`; its arena is small, see `slots`.)
            #[cfg(all(any(target_os = "linux", target_os = "android"), not(miri)))]
            let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
            #[cfg(not(all(any(target_os = "linux", target_os = "android"), not(miri))))]
            let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
            // SAFETY: an anonymous private mapping at an address of the kernel's choosing touches
            // no existing memory; the result is checked before use.
            let p = unsafe {
                libc::mmap(
                    ptr::null_mut(),
                    bytes,
                    libc::PROT_READ | libc::PROT_WRITE,
                    flags,
                    -1,
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                return None;
            }
            // Anonymous mappings are zero-filled, page-aligned (so aligned for `AtomicU64`), and
            // a zero bit pattern is a valid `AtomicU64`.
            ptr::NonNull::new(p.cast::<AtomicU64>()).map(|base| Region { base, len })
        }
        #[cfg(not(unix))]
        {
            let layout = std::alloc::Layout::array::<AtomicU64>(len).ok()?;
            // SAFETY: `layout` has a non-zero size (callers ask for at least one word); the
            // zeroed memory is a valid array of `AtomicU64`.
            let p = unsafe { std::alloc::alloc_zeroed(layout) };
            ptr::NonNull::new(p.cast::<AtomicU64>()).map(|base| Region { base, len })
        }
    }

    /// The word at `index`.
    ///
    /// # Safety
    /// `index < self.len`.
    #[inline(always)]
    pub(super) unsafe fn word_unchecked(&self, index: usize) -> &AtomicU64 {
        debug_assert!(index < self.len);
        // SAFETY: the caller guarantees `index < len`, and the region holds `len` initialised
        // words for as long as it lives.
        unsafe { &*self.base.as_ptr().add(index) }
    }

    #[inline(always)]
    pub(super) fn base(&self) -> *const AtomicU64 {
        self.base.as_ptr()
    }

    /// Zeroes words `start..start + len`. Whole pages are handed back to the system
    /// (`MADV_DONTNEED`: they read as zero and cost no memory until written again), so freeing a
    /// summary that a block never touched commits nothing; the rest is stored to.
    #[cfg_attr(miri, allow(unused_mut, unused_variables))]
    pub(super) fn zero(&self, start: usize, len: usize) {
        debug_assert!(start + len <= self.len);
        const PAGE_WORDS: usize = 4096 / std::mem::size_of::<AtomicU64>();
        let (first, end) = (start.next_multiple_of(PAGE_WORDS), start + len);
        let pages_end = end - end % PAGE_WORDS;
        let mut stored = start..end;
        // (Not under Miri, which has no `madvise`: it stores zeroes.)
        #[cfg(all(any(target_os = "linux", target_os = "android"), not(miri)))]
        if pages_end > first {
            // SAFETY: the range is whole pages inside our own private anonymous mapping, and no
            // live handle refers to any word in it (slots invariant 3), so dropping their contents
            // (they read as zero afterwards) cannot lose a count.
            let done = unsafe {
                libc::madvise(
                    self.base.as_ptr().add(first).cast(),
                    (pages_end - first) * std::mem::size_of::<AtomicU64>(),
                    libc::MADV_DONTNEED,
                ) == 0
            };
            if done {
                for i in start..first {
                    // SAFETY: `i < start + len <= self.len`.
                    unsafe { self.word_unchecked(i) }.store(0, Relaxed);
                }
                stored = pages_end..end;
            }
        }
        for i in stored {
            // SAFETY: `i < start + len <= self.len`.
            unsafe { self.word_unchecked(i) }.store(0, Relaxed);
        }
    }
}

#[cfg(not(agentcore_loom))]
impl Drop for Region {
    fn drop(&mut self) {
        #[cfg(unix)]
        // SAFETY: `base`/`len` are exactly the mapping made in `new`; nobody uses it any more
        // (regions are dropped only with their arena).
        unsafe {
            libc::munmap(
                self.base.as_ptr().cast(),
                self.len * std::mem::size_of::<AtomicU64>(),
            );
        }
        #[cfg(not(unix))]
        // SAFETY: as above, with the allocation made in `new`.
        unsafe {
            std::alloc::dealloc(
                self.base.as_ptr().cast(),
                std::alloc::Layout::array::<AtomicU64>(self.len).expect("allocated with it"),
            );
        }
    }
}

/// The system refusing memory, on one thread (a strictly overcommitted machine refuses a block's
/// reservation; the tests cannot make it do so for one arena alone).
#[cfg(all(test, not(agentcore_loom)))]
pub(super) mod tests {
    use std::cell::Cell;

    thread_local! {
        /// Whether `Region::new` on this thread refuses; how many times it was asked meanwhile.
        static REFUSING: Cell<Option<usize>> = const { Cell::new(None) };
    }

    /// Makes `Region::new` refuse on this thread (`Some(0)`), or stop refusing (`None`);
    /// returns how many reservations it refused since the last call.
    pub(in super::super) fn refuse(on: bool) -> usize {
        REFUSING.with(|r| r.replace(on.then_some(0))).unwrap_or(0)
    }

    pub(super) fn refused() -> bool {
        REFUSING.with(|r| match r.get() {
            Some(n) => {
                r.set(Some(n + 1));
                true
            }
            None => false,
        })
    }
}

// SAFETY: a region is an array of atomics, shareable between threads; the pointer carries no
// thread affinity.
#[cfg(not(agentcore_loom))]
unsafe impl Send for Region {}
// SAFETY: as above.
#[cfg(not(agentcore_loom))]
unsafe impl Sync for Region {}

/// Under loom: loom's atomics cannot be zero-initialised memory, so a region is a boxed slice.
#[cfg(agentcore_loom)]
pub(super) struct Region {
    pub(super) words: Box<[AtomicU64]>,
}

#[cfg(agentcore_loom)]
impl Region {
    pub(super) fn new(len: usize) -> Option<Region> {
        Some(Region {
            words: (0..len).map(|_| AtomicU64::new(0)).collect(),
        })
    }

    /// # Safety
    /// `index < len` (checked anyway under loom).
    pub(super) unsafe fn word_unchecked(&self, index: usize) -> &AtomicU64 {
        &self.words[index]
    }

    pub(super) fn zero(&self, start: usize, len: usize) {
        for w in &self.words[start..start + len] {
            w.store(0, Relaxed);
        }
    }
}
