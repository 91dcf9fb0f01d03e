//! Callgrind's client requests, issued by the child of `--instructions` around its measured
//! region (see `instructions.rs` for why and how the parent reads the result).
//!
//! A client request is valgrind's "magic sequence": on x86-64, four rotations of `rdi` by 3, 13,
//! 61 and 51 bits (128 in all, so `rdi` ends as it began) followed by `xchg rbx, rbx`, with `rax`
//! pointing to `[request, arg1..arg5]` and the default result in `rdx`. On a real CPU the
//! sequence changes no register and touches no memory; under valgrind the emulator recognises it
//! and hands the request to the tool. The codes are callgrind's (`valgrind/callgrind.h`):
//! `VG_USERREQ_TOOL_BASE('C','T')` = `0x4354_0000`, then `DUMP_STATS`, `ZERO_STATS`, ... in
//! order. No dependency: the sequence is the whole interface.
//!
//! What callgrind 3.19 does with them (its `main.c`, `dump.c`): `ZERO_STATS` zeroes every cost
//! centre of the calling thread's table, which without `--separate-threads` is the one table all
//! threads record into; `DUMP_STATS` writes those cost centres to a new file named
//! `<--callgrind-out-file>.<dump number>` (with `--separate-threads=yes`, only the calling
//! thread's, to `<out>.<dump number>-<thread id, two digits>`) and zeroes them again.

/// Callgrind's first request code: `VG_USERREQ_TOOL_BASE('C','T')`.
#[cfg(target_arch = "x86_64")]
const TOOL_BASE: u64 = ((b'C' as u64) << 24) | ((b'T' as u64) << 16);
/// `VG_USERREQ__DUMP_STATS`.
#[cfg(target_arch = "x86_64")]
const DUMP_STATS: u64 = TOOL_BASE;
/// `VG_USERREQ__ZERO_STATS`.
#[cfg(target_arch = "x86_64")]
const ZERO_STATS: u64 = TOOL_BASE + 1;

/// Whether this build can issue the requests (x86-64 only).
pub const SUPPORTED: bool = cfg!(target_arch = "x86_64");

/// Why counting the measured region is impossible on this architecture.
pub const UNSUPPORTED: &str = "--instructions counts the measured region with callgrind client \
    requests, implemented for x86-64 only (benches/compare/src/callgrind.rs); this binary was \
    built for another architecture";

/// Issues one client request without arguments; returns valgrind's result (`0` outside valgrind,
/// the default).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn request(code: u64) -> u64 {
    let args: [u64; 6] = [code, 0, 0, 0, 0, 0];
    let mut result: u64 = 0;
    // SAFETY: on a real CPU the sequence is a no-op by design: the four rotations of `rdi` add up
    // to 128 bits (twice its width), so `rdi` is unchanged, and `xchg rbx, rbx` exchanges a
    // register with itself; only the flags change, which `asm!` assumes clobbered by default
    // (no `preserves_flags`). `rdx` holds the default result and is declared as an in/out
    // operand. Under valgrind the sequence is replaced by a call into the tool, which reads the
    // six words at `rax` (a live local array of exactly six `u64`, as `valgrind.h` lays out) and
    // writes only `rdx`. Without `nomem`/`readonly`, the compiler treats the block as reading and
    // writing memory, so it neither elides it nor moves memory accesses (the measured call's
    // effects) across it.
    unsafe {
        std::arch::asm!(
            "rol rdi, 3",
            "rol rdi, 13",
            "rol rdi, 61",
            "rol rdi, 51",
            "xchg rbx, rbx",
            in("rax") args.as_ptr(),
            inout("rdx") result,
            // `rdi` is rotated in place and ends unchanged, but tell the compiler it is used.
            inout("rdi") 0u64 => _,
            options(nostack),
        );
    }
    result
}

/// `CALLGRIND_ZERO_STATS`: forget every cost counted so far. A no-op outside valgrind.
pub fn zero_stats() {
    #[cfg(target_arch = "x86_64")]
    request(ZERO_STATS);
}

/// `CALLGRIND_DUMP_STATS`: write the costs counted since the last zero or dump to a new numbered
/// file next to `--callgrind-out-file`, then zero them. A no-op outside valgrind.
pub fn dump_stats() {
    #[cfg(target_arch = "x86_64")]
    request(DUMP_STATS);
}
