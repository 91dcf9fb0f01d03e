//! Work a thread's exit must do even when the thread first needed it from a `pthread_key`
//! destructor: an [`ExitKey`] runs a function at the exit of each thread that armed it, after
//! every thread-local destructor of the thread.
//!
//! A per-thread resource (a span-log shard index, a context stack's frames, a slot-arena
//! block) is given back by a destructor. A thread-local's destructor is registered the first
//! time the thread-local is used, and glibc runs a thread's `pthread_key` destructors after
//! its thread-local destructors and never runs a thread-local destructor registered then: a
//! thread that first took the resource in a `pthread_key` destructor (another library's
//! thread-exit hook recording a span) kept it for good (review helper-93;
//! `tests/tracer_thread_key_exit.rs`). A `pthread_key`'s destructor is run in rounds
//! (`PTHREAD_DESTRUCTOR_ITERATIONS`, 4, on glibc) that run again the destructors of keys set
//! during the round before, so one armed from a thread-local destructor, or from another key's
//! destructor, still runs.
//!
//! On Linux (outside the loom models, whose threads are not OS threads) an `ExitKey` is a
//! process-wide `pthread_key`, created by the first thread that arms it; arming sets the
//! thread's value for it (a non-null marker). Elsewhere, or when the process has no key left
//! (`PTHREAD_KEYS_MAX`, 1024 on glibc) or no memory for the value, [`ExitKey::arm`] returns
//! false and the caller falls back to a thread-local destructor of its own.
//!
//! # Invariants
//! 1. Once a thread's `arm` has returned true, the function runs at the thread's exit at most
//!    once per arming, and at least once unless the thread arms it during the last destructor
//!    round (by a `pthread_key` destructor that runs in that round, itself set again by a
//!    destructor in each round before). The function runs on the exiting thread, whose
//!    destructor-free thread-locals are still there; `std`'s thread-locals with destructors
//!    have been destroyed.
//! 2. A key is never deleted once published, so an armed value always has its destructor.
//!
//! # Orderings
//! The key's number is published with a `Release` compare-and-swap and read with `Acquire`:
//! its creation (the C library's table entry for it) happens before any thread sets a value
//! for it.

use std::ffi::c_void;

/// A function run at the exit of each thread that armed it, after the thread's thread-local
/// destructors (see the module docs).
pub(crate) struct ExitKey {
    #[cfg(all(target_os = "linux", not(agentcore_loom)))]
    key: std::sync::atomic::AtomicUsize,
    at_exit: extern "C" fn(*mut c_void),
}

/// Not a key (`pthread_key_t` is a `u32`).
#[cfg(all(target_os = "linux", not(agentcore_loom)))]
const NO_KEY: usize = usize::MAX;

impl ExitKey {
    /// A key whose function is `at_exit`. It is called with the thread's (meaningless) value;
    /// it must not unwind (a panic there aborts the process).
    pub(crate) const fn new(at_exit: extern "C" fn(*mut c_void)) -> Self {
        ExitKey {
            #[cfg(all(target_os = "linux", not(agentcore_loom)))]
            key: std::sync::atomic::AtomicUsize::new(NO_KEY),
            at_exit,
        }
    }

    /// Arms the key for the calling thread: its function runs at the thread's exit (again if
    /// it ran already). False if it cannot be armed (see the module docs).
    #[cfg(all(target_os = "linux", not(agentcore_loom)))]
    pub(crate) fn arm(&self) -> bool {
        let Some(key) = self.key() else {
            return false;
        };
        // SAFETY: `key` is a live key (invariant 2). The value is a non-null marker (a key's
        // destructor runs only for a non-null value), never dereferenced.
        unsafe { libc::pthread_setspecific(key, std::ptr::dangling::<c_void>()) == 0 }
    }

    /// Arms the key for the calling thread: not on this platform (see the module docs).
    #[cfg(not(all(target_os = "linux", not(agentcore_loom))))]
    pub(crate) fn arm(&self) -> bool {
        let _ = self.at_exit;
        false
    }

    /// The process's key, created by the first caller; `None` if it cannot be. Lock-free: a
    /// thread that loses the race to publish its key deletes it and uses the winner's.
    #[cfg(all(target_os = "linux", not(agentcore_loom)))]
    fn key(&self) -> Option<libc::pthread_key_t> {
        use std::sync::atomic::Ordering;
        // `Acquire`: see "Orderings".
        let key = self.key.load(Ordering::Acquire);
        if key != NO_KEY {
            return Some(key as libc::pthread_key_t);
        }
        let mut new: libc::pthread_key_t = 0;
        // SAFETY: `new` is a valid place for the key. `at_exit` is an `extern "C"` function
        // that does not unwind (`new`'s contract).
        if unsafe { libc::pthread_key_create(&mut new, Some(self.at_exit)) } != 0 {
            return None;
        }
        // `Release`: see "Orderings".
        match self
            .key
            .compare_exchange(NO_KEY, new as usize, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => Some(new),
            Err(theirs) => {
                // SAFETY: `new` is a live key that was never published, so no thread has a
                // value for it.
                unsafe { libc::pthread_key_delete(new) };
                Some(theirs as libc::pthread_key_t)
            }
        }
    }
}

#[cfg(all(test, target_os = "linux", not(agentcore_loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

    static RAN: AtomicUsize = AtomicUsize::new(0);
    static REARMS: AtomicUsize = AtomicUsize::new(0);
    static KEY: ExitKey = ExitKey::new(count_and_rearm);

    extern "C" fn count_and_rearm(_: *mut c_void) {
        RAN.fetch_add(1, Relaxed);
        // Armed again from its own destructor: runs in the next round, up to glibc's four.
        if REARMS
            .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1))
            .is_ok()
        {
            assert!(KEY.arm());
        }
    }

    /// Invariant 1: runs once per arming at the thread's exit, also when armed from a key
    /// destructor (the next round), and not for a thread that never armed it.
    #[test]
    fn runs_at_exit_of_each_thread_that_armed_it() {
        std::thread::spawn(|| assert!(KEY.arm() && KEY.arm()))
            .join()
            .unwrap();
        assert_eq!(RAN.load(Relaxed), 1, "once, armed twice");
        std::thread::spawn(|| ()).join().unwrap();
        assert_eq!(RAN.load(Relaxed), 1, "not armed");
        REARMS.store(2, Relaxed);
        std::thread::spawn(|| assert!(KEY.arm())).join().unwrap();
        assert_eq!(
            RAN.load(Relaxed),
            4,
            "armed again from its destructor, twice"
        );
    }
}
