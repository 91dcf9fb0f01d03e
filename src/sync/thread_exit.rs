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
//! With glibc (outside the loom models, whose threads are not OS threads) an `ExitKey` is a
//! process-wide `pthread_key`, created by the first thread that arms it; arming sets the
//! thread's value for it (a non-null marker). The object holding this code is pinned first
//! (never unloaded: [`pin_this_object`]), since a key's destructor points into it. Elsewhere
//! (musl runs `std`'s thread-local destructors from a `pthread_key` of its own, in key order,
//! so a key of ours could run before them), or when the object cannot be pinned, the process
//! has no key left (`PTHREAD_KEYS_MAX`, 1024 on glibc) or no memory for the value,
//! [`ExitKey::arm`] returns false and the caller falls back to a thread-local destructor of
//! its own.
//!
//! Every user pairs its key with that fallback in the same way, so they declare an
//! [`ExitHook`] with [`exit_hook!`]: the key, the function it runs, and a thread-local whose
//! destructor runs the same function where the key cannot be armed.
//! [`ExitHook::register`] arms the key, else registers the destructor; false if neither can be
//! had (the thread-local is already destroyed: the thread is past its thread-local
//! destructors, where the caller must take nothing it could not give back).
//!
//! # Invariants
//! 1. Once a thread's `arm` has returned true, the function runs at the thread's exit at most
//!    once per arming, and at least once unless the thread arms it during the last destructor
//!    round (by a `pthread_key` destructor that runs in that round, itself set again by a
//!    destructor in each round before), or the thread ends the process (`exit`, or a return
//!    from `main`: the C library runs the thread's thread-local destructors then, but no key
//!    destructor; the process is ending). The function runs on the exiting thread, whose
//!    destructor-free thread-locals are still there; `std`'s thread-locals with destructors
//!    have been destroyed.
//! 2. A key is never deleted once published, so an armed value always has its destructor.
//!
//! # Orderings
//! The key's number is published with a `Release` compare-and-swap and read with `Acquire`:
//! its creation (the C library's table entry for it) happens before any thread sets a value
//! for it.

use std::ffi::c_void;
use std::thread::LocalKey;

/// A function run at the exit of each thread that armed it, after the thread's thread-local
/// destructors (see the module docs).
pub(crate) struct ExitKey {
    #[cfg(all(target_os = "linux", target_env = "gnu", not(agentcore_loom)))]
    key: std::sync::atomic::AtomicUsize,
    at_exit: extern "C" fn(*mut c_void),
}

/// Not a key (`pthread_key_t` is a `u32`).
#[cfg(all(target_os = "linux", target_env = "gnu", not(agentcore_loom)))]
const NO_KEY: usize = usize::MAX;

impl ExitKey {
    /// A key whose function is `at_exit`. It is called with the thread's (meaningless) value;
    /// it must not unwind (a panic there aborts the process).
    pub(crate) const fn new(at_exit: extern "C" fn(*mut c_void)) -> Self {
        ExitKey {
            #[cfg(all(target_os = "linux", target_env = "gnu", not(agentcore_loom)))]
            key: std::sync::atomic::AtomicUsize::new(NO_KEY),
            at_exit,
        }
    }

    /// Arms the key for the calling thread: its function runs at the thread's exit (again if
    /// it ran already). False if it cannot be armed (see the module docs).
    #[cfg(all(target_os = "linux", target_env = "gnu", not(agentcore_loom)))]
    pub(crate) fn arm(&self) -> bool {
        let Some(key) = self.key() else {
            return false;
        };
        // SAFETY: `key` is a live key (invariant 2). The value is a non-null marker (a key's
        // destructor runs only for a non-null value), never dereferenced.
        unsafe { libc::pthread_setspecific(key, std::ptr::dangling::<c_void>()) == 0 }
    }

    /// Arms the key for the calling thread: not on this platform (see the module docs).
    #[cfg(not(all(target_os = "linux", target_env = "gnu", not(agentcore_loom))))]
    pub(crate) fn arm(&self) -> bool {
        let _ = self.at_exit;
        false
    }

    /// The process's key, created by the first caller; `None` if it cannot be. Lock-free: a
    /// thread that loses the race to publish its key deletes it and uses the winner's.
    #[cfg(all(target_os = "linux", target_env = "gnu", not(agentcore_loom)))]
    fn key(&self) -> Option<libc::pthread_key_t> {
        use std::sync::atomic::Ordering;
        // `Acquire`: see "Orderings".
        let key = self.key.load(Ordering::Acquire);
        #[cfg(test)]
        if key == tests::REFUSED_KEY {
            return None;
        }
        if key != NO_KEY {
            return Some(key as libc::pthread_key_t);
        }
        if !pin_this_object() {
            return None;
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

/// A function run once at the exit of each thread that registered it: by an [`ExitKey`] after
/// every thread-local destructor of the thread, or, where the key cannot be armed, by a
/// thread-local destructor of its own (see the module docs). Declared with [`exit_hook!`].
pub(crate) struct ExitHook {
    key: ExitKey,
    fallback: &'static LocalKey<Fallback>,
}

impl ExitHook {
    /// A hook that arms `key` and falls back to `fallback`'s destructor; both run the same
    /// function ([`exit_hook!`] makes them).
    pub(crate) const fn new(key: ExitKey, fallback: &'static LocalKey<Fallback>) -> Self {
        ExitHook { key, fallback }
    }

    /// Registers the hook for the calling thread: its function runs at the thread's exit.
    /// False if it cannot run (no key can be armed and the fallback thread-local is already
    /// destroyed: the thread is past its thread-local destructors).
    ///
    /// Registering again is harmless: the key is armed again (its function still runs once),
    /// or the thread-local, already registered, is registered once.
    pub(crate) fn register(&self) -> bool {
        self.key.arm() || self.fallback.try_with(|_| ()).is_ok()
    }

    /// Whether the fallback thread-local's destructor has run on this thread (tests of the
    /// fallback's order).
    #[cfg(test)]
    pub(crate) fn fallback_destroyed(&self) -> bool {
        self.fallback.try_with(|_| ()).is_err()
    }
}

/// The thread-local of an [`ExitHook`]'s fallback: runs its function when destroyed.
pub(crate) struct Fallback(pub(crate) fn());

impl Drop for Fallback {
    fn drop(&mut self) {
        (self.0)();
    }
}

/// Declares a static [`ExitHook`] running a function at the exit of each thread that registers
/// it:
///
/// ```ignore
/// exit_hook! {
///     /// Ends the thread's lease at its exit.
///     static EXIT runs end_lease;
/// }
/// // on the thread's first use:
/// if !EXIT.register() { /* take nothing: it could not be given back */ }
/// ```
///
/// `end_lease` is a `fn()`; it must not unwind (from the key's destructor, a panic aborts the
/// process).
macro_rules! exit_hook {
    ($(#[$attr:meta])* $vis:vis static $name:ident runs $run:path;) => {
        $(#[$attr])*
        $vis static $name: $crate::sync::thread_exit::ExitHook = {
            extern "C" fn at_key_exit(_: *mut ::std::ffi::c_void) {
                $run()
            }
            ::std::thread_local! {
                static FALLBACK: $crate::sync::thread_exit::Fallback =
                    const { $crate::sync::thread_exit::Fallback($run) };
            }
            $crate::sync::thread_exit::ExitHook::new(
                $crate::sync::thread_exit::ExitKey::new(at_key_exit),
                &FALLBACK,
            )
        };
    };
}
pub(crate) use exit_hook;

/// Makes sure the object (executable or shared library) holding this crate's code is never
/// unloaded, as a key's destructor points into it; true once it is so. The main program never
/// is. A shared library is made undeletable (`dlopen` with `RTLD_NOLOAD | RTLD_NODELETE` on the
/// object already loaded, a reference never given back): a library that `dlclose` unmapped
/// while a thread that had armed a key lived made that thread's exit jump into unmapped code
/// (review helper-94, a segmentation fault; `__cxa_thread_atexit_impl`, behind `std`'s
/// thread-local destructors, holds a library loaded while one is pending, a key does not). If
/// it cannot be done, no key is created, and the callers keep their thread-local destructors.
#[cfg(all(target_os = "linux", target_env = "gnu", not(agentcore_loom)))]
fn pin_this_object() -> bool {
    use std::sync::atomic::{AtomicU8, Ordering};
    /// 0: not tried yet; 1: pinned (or the main program); 2: it cannot be.
    static PINNED: AtomicU8 = AtomicU8::new(0);
    if cfg!(miri) {
        return true; // Miri loads no shared objects (and has no `dl_iterate_phdr`)
    }
    match PINNED.load(Ordering::Relaxed) {
        1 => return true,
        2 => return false,
        _ => {}
    }
    // Idempotent: threads that race here each take a reference (never given back either).
    let pinned = pin(pin_this_object as *const () as usize);
    PINNED.store(if pinned { 1 } else { 2 }, Ordering::Relaxed);
    pinned
}

/// Pins the loaded object that holds `address` (see [`pin_this_object`]); `address` must be
/// in an object that stays loaded during the call (callers pass this crate's code, or
/// libc's), whose name the search keeps.
///
/// Allocates nothing (a global allocator that records metrics would re-enter the crate here,
/// on a thread's first recording, and `dlopen` from inside `dl_iterate_phdr`'s callback would
/// take the loader's locks in the reverse order: review helper-95): the callback keeps the
/// object's name as the loader's own pointer, and `dlopen` runs after it returns.
#[cfg(all(target_os = "linux", target_env = "gnu", not(agentcore_loom)))]
fn pin(address: usize) -> bool {
    /// What `dl_iterate_phdr`'s callback looks for, and what it finds.
    struct Search {
        address: usize,
        /// The main program's program headers (`AT_PHDR`): the object whose headers these are
        /// is the main program, never unloaded. (Not "the first object listed": in a
        /// `dlmopen` namespace that is the library opened there.)
        main_phdr: usize,
        /// `None` until found; then whether the object is the main program, and its name
        /// (the loader's string, valid while the object is loaded; possibly null or empty).
        found: Option<(bool, *const libc::c_char)>,
    }
    unsafe extern "C" fn visit(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut std::ffi::c_void,
    ) -> libc::c_int {
        // SAFETY: `data` is the `Search` that `pin` passed, alive and not otherwise borrowed
        // during the call; `info` is valid for the callback's duration (dl_iterate_phdr(3)),
        // its `dlpi_phdr` pointing to `dlpi_phnum` program headers (glibc gives every object
        // a non-null one); nothing here allocates.
        unsafe {
            let search = &mut *data.cast::<Search>();
            let info = &*info;
            if info.dlpi_phdr.is_null() {
                return 0;
            }
            let headers = std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum));
            let holds = headers.iter().any(|h| {
                let start = (info.dlpi_addr as usize).wrapping_add(h.p_vaddr as usize);
                h.p_type == libc::PT_LOAD
                    && (start..start.wrapping_add(h.p_memsz as usize)).contains(&search.address)
            });
            if !holds {
                return 0;
            }
            let main = info.dlpi_phdr as usize == search.main_phdr;
            search.found = Some((main, info.dlpi_name));
            1
        }
    }
    let mut search = Search {
        address,
        // SAFETY: `getauxval` reads the process's auxiliary vector; 0 if absent.
        main_phdr: unsafe { libc::getauxval(libc::AT_PHDR) } as usize,
        found: None,
    };
    // SAFETY: `visit` matches the callback's contract above; `search` outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(visit), (&raw mut search).cast()) };
    match search.found {
        Some((true, _)) => true,
        // SAFETY: `name` is the loader's NUL-terminated name of an object that holds
        // `address` and so is still loaded (the contract above).
        Some((false, name)) if !name.is_null() && unsafe { *name } != 0 => {
            // SAFETY: as above; `RTLD_NOLOAD` loads nothing, it only takes a reference to the
            // object, in the caller's namespace.
            let handle = unsafe {
                libc::dlopen(
                    name,
                    libc::RTLD_LAZY | libc::RTLD_NOLOAD | libc::RTLD_NODELETE,
                )
            };
            !handle.is_null()
        }
        _ => false,
    }
}

#[cfg(all(test, target_os = "linux", target_env = "gnu", not(agentcore_loom)))]
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

    static HOOK_RAN: AtomicUsize = AtomicUsize::new(0);
    fn count_hook() {
        HOOK_RAN.fetch_add(1, Relaxed);
    }
    exit_hook! {
        static HOOK runs count_hook;
    }

    static FALLBACK_RAN: AtomicUsize = AtomicUsize::new(0);
    fn count_fallback() {
        FALLBACK_RAN.fetch_add(1, Relaxed);
    }
    thread_local! {
        static REFUSED_FALLBACK: Fallback = const { Fallback(count_fallback) };
    }
    extern "C" fn never_run(_: *mut c_void) {
        unreachable!("the key is never armed");
    }
    /// The key number of an `ExitKey` that cannot be had (as on a platform without keys).
    pub(super) const REFUSED_KEY: usize = usize::MAX - 1;
    /// A hook whose key is never armed.
    static REFUSED: ExitHook = ExitHook::new(
        ExitKey {
            key: std::sync::atomic::AtomicUsize::new(REFUSED_KEY),
            at_exit: never_run,
        },
        &REFUSED_FALLBACK,
    );

    /// An `ExitHook` runs its function once at the exit of a thread that registered it (twice
    /// or not), after the thread's thread-local destructors (one registered before the hook,
    /// which a thread-local hook would run before, still sees it pending), and not for a thread
    /// that did not register it.
    #[test]
    fn a_hook_runs_once_after_the_thread_local_destructors() {
        static SEEN: AtomicUsize = AtomicUsize::new(usize::MAX);
        struct SeesPending;
        impl Drop for SeesPending {
            fn drop(&mut self) {
                SEEN.store(HOOK_RAN.load(Relaxed), Relaxed);
            }
        }
        thread_local! { static SEES_PENDING: SeesPending = const { SeesPending }; }
        std::thread::spawn(|| {
            SEES_PENDING.with(|_| ());
            assert!(HOOK.register() && HOOK.register());
        })
        .join()
        .unwrap();
        assert_eq!(SEEN.load(Relaxed), 0, "the hook had not run yet");
        assert_eq!(HOOK_RAN.load(Relaxed), 1);
        std::thread::spawn(|| ()).join().unwrap();
        assert_eq!(HOOK_RAN.load(Relaxed), 1, "not registered");
    }

    /// Where the key cannot be armed, the fallback thread-local's destructor runs the function
    /// once; registering after it has been destroyed fails.
    #[test]
    fn a_hook_whose_key_is_refused_falls_back_to_a_thread_local_destructor() {
        static LATE: AtomicUsize = AtomicUsize::new(0);
        struct LateRegister;
        impl Drop for LateRegister {
            fn drop(&mut self) {
                // Registered before the fallback, so destroyed after it (reverse order).
                let ran = FALLBACK_RAN.load(Relaxed);
                LATE.store(ran * 10 + if REFUSED.register() { 1 } else { 2 }, Relaxed);
            }
        }
        thread_local! { static LATE_REGISTER: LateRegister = const { LateRegister }; }
        std::thread::spawn(|| {
            LATE_REGISTER.with(|_| ());
            assert!(REFUSED.register() && REFUSED.register());
            assert!(!REFUSED.fallback_destroyed());
        })
        .join()
        .unwrap();
        assert_eq!(FALLBACK_RAN.load(Relaxed), 1, "once, registered twice");
        assert_eq!(
            LATE.load(Relaxed),
            12,
            "ran before, and refused once destroyed"
        );
    }

    /// The object holding an address is found and pinned: the main program (nothing to do),
    /// a shared library (glibc's, pinned by name), and no object at all (refused).
    #[test]
    #[cfg_attr(miri, ignore = "no dl_iterate_phdr")]
    fn the_object_holding_an_address_is_pinned() {
        assert!(
            pin(pin_this_object as *const () as usize),
            "the main program"
        );
        assert!(pin(libc::getpid as *const () as usize), "libc.so.6");
        assert!(!pin(8), "no object");
        assert!(pin_this_object());
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
