//! The asymmetric fence pair, decided once per process: a *light* fence for the frequent side (a
//! compiler fence when `membarrier(2)` registration succeeded, else `fence(SeqCst)`) and a *heavy*
//! fence for the rare side (`membarrier`, which runs a full barrier on every running thread of the
//! process, or the `mprotect` write-buffer flush when it starts failing; `fence(SeqCst)` when the
//! light side is one too).
//!
//! # The guarantee
//! The pair orders a store-then-load on each side (the "store buffering" shape) as two
//! `fence(SeqCst)` would: if the light side does `store X; light_fence(); load Y` and the heavy
//! side does `store Y; heavy_fence(); load X`, then at least one of the loads sees the other
//! side's store. A light fence a thread has not reached yet when the heavy fence runs is ordered
//! after it (the kernel interrupts every CPU running a thread of the process and a thread not
//! running was fenced by its context switch), one it has passed is ordered before it. When
//! [`heavy_fence`] returns [`Heavy::Failed`] nothing was ordered and the caller must not rely on
//! the pair.
//!
//! Users: [`era`](super::era) (readers' slot store vs the reclaimer's scan; its "Fences" and "Why
//! it is safe" sections) and [`ring`](super::ring) (the span finisher's publish vs the export
//! cursor's detach; its "Detach" section). Under loom both sides are `fence(SeqCst)`, which
//! loom models.

use std::sync::atomic::AtomicU8;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};

const UNDECIDED: u8 = 0;
pub(crate) const ASYMMETRIC: u8 = 1;
const SYMMETRIC: u8 = 2;

/// How readers and reclaimers fence, decided once per process.
static FENCES: AtomicU8 = AtomicU8::new(UNDECIDED);

#[inline(always)]
pub(crate) fn fences() -> u8 {
    match FENCES.load(Relaxed) {
        UNDECIDED => decide_fences(),
        mode => mode,
    }
}

#[cold]
fn decide_fences() -> u8 {
    // Miri has no `membarrier`: it runs the symmetric scheme, as loom does.
    let mode = if cfg!(agentcore_loom) || cfg!(miri) || !membarrier::register() {
        SYMMETRIC
    } else {
        ASYMMETRIC
    };
    match FENCES.compare_exchange(UNDECIDED, mode, Relaxed, Relaxed) {
        Ok(_) => mode,
        Err(decided) => decided,
    }
}

#[inline(always)]
/// The frequent side's fence (see the module docs).
pub(crate) fn light_fence() {
    if fences() == ASYMMETRIC {
        std::sync::atomic::compiler_fence(SeqCst);
    } else {
        crate::sync::fence(SeqCst);
    }
}

#[cfg(all(target_os = "linux", not(agentcore_loom)))]
mod membarrier {
    const CMD_PRIVATE_EXPEDITED: libc::c_long = 1 << 3;
    const CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_long = 1 << 4;

    pub(super) fn register() -> bool {
        // SAFETY: membarrier(2) takes two integer arguments and touches no memory of ours.
        unsafe { libc::syscall(libc::SYS_membarrier, CMD_REGISTER_PRIVATE_EXPEDITED, 0) == 0 }
    }

    /// A full memory barrier on every running thread of the process; `false` if the kernel
    /// refused (then nothing was ordered).
    pub(super) fn barrier() -> bool {
        // SAFETY: as above.
        unsafe { libc::syscall(libc::SYS_membarrier, CMD_PRIVATE_EXPEDITED, 0) == 0 }
    }
}

#[cfg(not(all(target_os = "linux", not(agentcore_loom))))]
mod membarrier {
    pub(super) fn register() -> bool {
        false
    }
    pub(super) fn barrier() -> bool {
        false
    }
}

/// The process-wide barrier a TLB shootdown gives: changing the protection of a page that is
/// mapped and dirty makes the kernel interrupt every CPU running a thread of this process, and an
/// interrupt drains that CPU's store buffer (x86-64) or is a full barrier (AArch64); a thread not
/// running was fenced by its context switch.
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64"),
    not(agentcore_loom)
))]
mod flush {
    use std::sync::{Mutex, OnceLock};

    struct Page(*mut u8);
    // SAFETY: the page is only touched under `LOCK`.
    unsafe impl Send for Page {}
    // SAFETY: as above.
    unsafe impl Sync for Page {}

    static PAGE: OnceLock<Option<Page>> = OnceLock::new();
    static LOCK: Mutex<()> = Mutex::new(());

    pub(super) fn process_write_buffers() -> bool {
        let page = PAGE.get_or_init(|| {
            // SAFETY: a fresh anonymous mapping of one page; checked before use.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    4096,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            (p != libc::MAP_FAILED).then_some(Page(p.cast()))
        });
        let Some(page) = page else { return false };
        let _serial = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        // SAFETY: `page.0` is our own one-page mapping; it is made writable before the write and
        // only this function (under `LOCK`) changes its protection.
        let ok = unsafe {
            libc::mprotect(page.0.cast(), 4096, libc::PROT_READ | libc::PROT_WRITE) == 0 && {
                // Dirty the page so the kernel cannot skip the shootdown.
                page.0
                    .write_volatile(page.0.read_volatile().wrapping_add(1));
                libc::mprotect(page.0.cast(), 4096, libc::PROT_NONE) == 0
            }
        };
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        ok
    }
}

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64"),
    not(agentcore_loom)
)))]
mod flush {
    pub(super) fn process_write_buffers() -> bool {
        false
    }
}

/// Which barrier [`heavy_fence`] ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Heavy {
    /// `fence(SeqCst)`: the light side is one too (no `membarrier`, or loom).
    Symmetric,
    /// `membarrier(PRIVATE_EXPEDITED)`.
    Membarrier,
    /// `membarrier` failed; the `mprotect` write-buffer flush ran instead.
    Flush,
    /// Both failed: nothing was ordered.
    Failed,
}

/// The rare side's fence (see the module docs). `fail` is test support: bit 0 makes
/// `membarrier` report failure, bit 1 the fallback barrier.
pub(crate) fn heavy_fence(fail: u8) -> Heavy {
    if fences() != ASYMMETRIC {
        crate::sync::fence(SeqCst);
        return Heavy::Symmetric;
    }
    if fail & 1 == 0 && membarrier::barrier() {
        return Heavy::Membarrier;
    }
    if fail & 2 == 0 && flush::process_write_buffers() {
        return Heavy::Flush;
    }
    Heavy::Failed
}
