//! Ids stay unique across `fork()`: a pre-forking server (the parent starts, traces or not, then
//! forks its workers) must not give two workers, or a worker and its parent, the same trace and
//! span ids. The id generator's state is per thread, and `fork` copies the forking thread's:
//! without a reseed in the child, the child drew the very ids its parent drew next, and every
//! sibling the same again.
#![cfg(target_os = "linux")]

use agentcore_telemetry::{SpanId, TraceId};

const N: usize = 8;

/// Ids drawn by this thread: `N` span ids, then `N` trace ids' low halves.
fn draw() -> [u64; 2 * N] {
    let mut out = [0u64; 2 * N];
    for (i, v) in out.iter_mut().enumerate() {
        *v = if i < N {
            SpanId::random().to_u64()
        } else {
            TraceId::random().to_u128() as u64
        };
    }
    out
}

/// Forks; the child draws ids, writes them to a pipe and exits; returns what the child drew.
/// (The child only draws, writes and `_exit`s: in a multi-threaded parent, the child may use
/// nothing that another thread could have held at the fork.)
fn drawn_in_a_child() -> [u64; 2 * N] {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` has room for the two descriptors `pipe` writes.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
    let [read_fd, write_fd] = fds;
    // SAFETY: the child runs only async-signal-safe work below (a thread-local generator's
    // draws, `write`, `_exit`).
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork");
    if pid == 0 {
        let ids = draw();
        // SAFETY: `ids` is a live buffer of the size passed; `_exit` ends the child without
        // running the parent's atexit handlers or destructors.
        unsafe {
            libc::write(write_fd, ids.as_ptr().cast(), std::mem::size_of_val(&ids));
            libc::_exit(0);
        }
    }
    // SAFETY: closing the parent's copy of the write end, which it owns.
    unsafe { libc::close(write_fd) };
    let mut ids = [0u64; 2 * N];
    let size = std::mem::size_of_val(&ids);
    let mut got = 0;
    while got < size {
        // SAFETY: reading into the rest of `ids`, within its size.
        let n = unsafe {
            libc::read(
                read_fd,
                ids.as_mut_ptr().cast::<u8>().add(got).cast(),
                size - got,
            )
        };
        assert!(n > 0, "the child wrote {got} of {size} bytes");
        got += n as usize;
    }
    let mut status = 0;
    // SAFETY: waiting for our own child; closing our read end.
    unsafe {
        libc::waitpid(pid, &mut status, 0);
        libc::close(read_fd);
    }
    ids
}

#[test]
fn a_forked_child_draws_other_ids_than_its_parent_and_its_siblings() {
    // The parent has drawn ids already (its generator is seeded), as a server that traced
    // during start-up has.
    let _ = draw();
    let first = drawn_in_a_child();
    let second = drawn_in_a_child();
    let parent = draw();
    for (who, ids) in [("the second child", &second), ("the parent", &parent)] {
        let shared: Vec<_> = first.iter().filter(|v| ids.contains(v)).collect();
        assert!(
            shared.is_empty(),
            "the first child drew ids {who} drew too: {shared:x?}"
        );
    }
}

#[test]
fn a_child_forked_before_any_id_draws_other_ids_than_its_siblings() {
    // A fresh thread, whose generator is not seeded yet: each child seeds its own, from
    // nothing its siblings share (this thread made a `HashMap` before the fork, whose random
    // keys `std` keeps per thread and only advances: a seed drawn from them in each child was
    // the same in every child).
    std::thread::spawn(|| {
        let _ = std::collections::HashMap::<u8, u8>::new();
        let first = drawn_in_a_child();
        let second = drawn_in_a_child();
        let shared: Vec<_> = first.iter().filter(|v| second.contains(v)).collect();
        assert!(
            shared.is_empty(),
            "two children forked before any draw drew the same ids: {shared:x?}"
        );
    })
    .join()
    .unwrap();
}
