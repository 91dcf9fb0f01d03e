//! The fences of the era protocol, decided once per process: the readers' light fence (a
//! compiler fence when `membarrier(2)` registration succeeded, else `fence(SeqCst)`) and the
//! primitives of the reclaimer's heavy fence (`membarrier`, or the `mprotect` write-buffer flush
//! when it starts failing). Why this pairing is sound, and what happens when both fail, is the
//! "Fences" and "Why it is safe" sections of [`era`](super)'s module docs.

use std::sync::atomic::AtomicU8;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};

const UNDECIDED: u8 = 0;
pub(super) const ASYMMETRIC: u8 = 1;
const SYMMETRIC: u8 = 2;

/// How readers and reclaimers fence, decided once per process.
static FENCES: AtomicU8 = AtomicU8::new(UNDECIDED);

#[inline(always)]
pub(super) fn fences() -> u8 {
    match FENCES.load(Relaxed) {
        UNDECIDED => decide_fences(),
        mode => mode,
    }
}

#[cold]
fn decide_fences() -> u8 {
    let mode = if cfg!(agentcore_loom) || !membarrier::register() {
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
pub(super) fn light_fence() {
    if fences() == ASYMMETRIC {
        std::sync::atomic::compiler_fence(SeqCst);
    } else {
        crate::sync::fence(SeqCst);
    }
}

#[cfg(all(target_os = "linux", not(agentcore_loom)))]
pub(super) mod membarrier {
    const CMD_PRIVATE_EXPEDITED: libc::c_long = 1 << 3;
    const CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_long = 1 << 4;

    pub(super) fn register() -> bool {
        // SAFETY: membarrier(2) takes two integer arguments and touches no memory of ours.
        unsafe { libc::syscall(libc::SYS_membarrier, CMD_REGISTER_PRIVATE_EXPEDITED, 0) == 0 }
    }

    /// A full memory barrier on every running thread of the process; `false` if the kernel
    /// refused (then nothing was ordered).
    pub(in crate::sync::era) fn barrier() -> bool {
        // SAFETY: as above.
        unsafe { libc::syscall(libc::SYS_membarrier, CMD_PRIVATE_EXPEDITED, 0) == 0 }
    }
}

#[cfg(not(all(target_os = "linux", not(agentcore_loom))))]
pub(super) mod membarrier {
    pub(super) fn register() -> bool {
        false
    }
    pub(in crate::sync::era) fn barrier() -> bool {
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
pub(super) mod flush {
    use std::sync::{Mutex, OnceLock};

    struct Page(*mut u8);
    // SAFETY: the page is only touched under `LOCK`.
    unsafe impl Send for Page {}
    // SAFETY: as above.
    unsafe impl Sync for Page {}

    static PAGE: OnceLock<Option<Page>> = OnceLock::new();
    static LOCK: Mutex<()> = Mutex::new(());

    pub(in crate::sync::era) fn process_write_buffers() -> bool {
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
pub(super) mod flush {
    pub(in crate::sync::era) fn process_write_buffers() -> bool {
        false
    }
}
