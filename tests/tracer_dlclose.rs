//! A shared library built on the crate survives `dlclose` while a thread that used it lives:
//! the crate's thread-exit keys (`sync::thread_exit`) have destructors that point into the
//! library, and glibc runs them at the thread's exit. Unmapped by the `dlclose`, that exit
//! jumped into unmapped code (review helper-94: a segmentation fault, which kills this test's
//! process). The crate pins the object holding its code before it creates a key.
//!
//! The library is `tests/dlclose` (a `cdylib` of the crate), built by this test with the
//! `cargo` that runs it, into the build's scratch directory (`CARGO_TARGET_TMPDIR`). The thread only records a span through it:
//! nothing that registers a thread-local destructor of the library's, which would make glibc
//! defer the unloading while the thread lives. Without the pin, this test's process dies of a
//! `SIGSEGV` at the thread's exit.
#![cfg(all(target_os = "linux", target_env = "gnu"))]

use std::ffi::{c_void, CString};
use std::process::Command;
use std::sync::mpsc;

#[test]
fn a_library_built_on_the_crate_survives_dlclose_while_a_thread_that_used_it_lives() {
    let root = env!("CARGO_MANIFEST_DIR");
    let manifest = format!("{root}/tests/dlclose/Cargo.toml");
    if !std::path::Path::new(&manifest).exists() {
        // A packaged crate leaves out `tests/dlclose` (a folder with a manifest of its own).
        eprintln!("SKIPPED: {manifest} is not here (a packaged crate)");
        return;
    }
    // Under the build's own scratch directory (not the source tree, which may be read-only),
    // for the host (an inherited `CARGO_BUILD_TARGET` would move the output).
    let target_dir = format!("{}/dlclose", env!("CARGO_TARGET_TMPDIR"));
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--manifest-path", &manifest])
        .args(["--target-dir", &target_dir])
        .env_remove("CARGO_BUILD_TARGET")
        .status()
        .expect("cargo runs");
    assert!(status.success(), "the plugin builds");
    let path = CString::new(format!("{target_dir}/debug/libdlclose_plugin.so")).unwrap();

    // SAFETY: `path` is a NUL-terminated path; the library's initialisers are Rust's (none of
    // its own).
    let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    assert!(!handle.is_null(), "dlopen");
    // SAFETY: `handle` is the library just opened; the name is NUL-terminated.
    let symbol = unsafe { libc::dlsym(handle, c"record".as_ptr()) };
    assert!(!symbol.is_null(), "dlsym");
    // SAFETY: `record` is `extern "C" fn()` in tests/dlclose/plugin.rs.
    let record: extern "C" fn() =
        unsafe { std::mem::transmute::<*mut c_void, extern "C" fn()>(symbol) };

    let (recorded_tx, recorded) = mpsc::channel();
    let (exit_tx, exit) = mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        record();
        recorded_tx.send(()).unwrap();
        exit.recv().unwrap(); // lives on past the dlclose
    });
    recorded.recv().unwrap();
    // SAFETY: `handle` is open; `record` is not called after this.
    assert_eq!(unsafe { libc::dlclose(handle) }, 0, "dlclose");
    exit_tx.send(()).unwrap();
    thread.join().unwrap(); // its exit runs the library's key destructors

    // SAFETY: as above; `RTLD_NOLOAD` loads nothing.
    let again = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD) };
    assert!(!again.is_null(), "the library stays loaded (pinned)");
}
