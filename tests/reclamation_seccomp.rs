//! Issue 10, finding 3: `membarrier(2)` failing *after* registration succeeded, as it does when a
//! sandbox installs a seccomp filter after start-up. The reclaimer must then either use another
//! process-wide barrier or free nothing, and say so in its self-metrics; on the previous design
//! it fell back to a `SeqCst` fence that orders nothing on the readers' side (they only issue a
//! compiler fence) and freed anyway, silently.
//!
//! The scenario runs in a child process (this test binary re-run with an environment variable),
//! because a seccomp filter cannot be removed and would otherwise reach every other test. The
//! child registers `membarrier` (its first series lookup), installs a real seccomp BPF filter
//! that answers `EPERM` to `membarrier`, then churns series while reader threads look them up, and
//! prints the reclamation counters; the parent checks them. Linux x86-64 only (the filter is
//! written for that system-call table).
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

use std::process::Command;
use std::thread;

use agentcore_telemetry::registry::self_metrics::reclamation_stats;
use agentcore_telemetry::Registry;

mod support;
use support::child_output::tagged;

const CHILD: &str = "AGENTCORE_SECCOMP_CHILD";

/// Installs a seccomp filter on this thread and its future threads: `membarrier` fails with
/// `EPERM`, every other system call is allowed.
fn deny_membarrier() {
    // struct sock_filter instructions (classic BPF).
    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    const RET_ALLOW: u32 = 0x7fff_0000;
    const RET_ERRNO: u32 = 0x0005_0000;
    let nr = libc::SYS_membarrier as u32;
    let filter = [
        // seccomp_data.arch (offset 4): kill the filter's meaning on another ABI: allow.
        libc::sock_filter {
            code: LD_W_ABS,
            jt: 0,
            jf: 0,
            k: 4,
        },
        libc::sock_filter {
            code: JEQ_K,
            jt: 1,
            jf: 0,
            k: AUDIT_ARCH_X86_64,
        },
        libc::sock_filter {
            code: RET_K,
            jt: 0,
            jf: 0,
            k: RET_ALLOW,
        },
        // seccomp_data.nr (offset 0).
        libc::sock_filter {
            code: LD_W_ABS,
            jt: 0,
            jf: 0,
            k: 0,
        },
        libc::sock_filter {
            code: JEQ_K,
            jt: 0,
            jf: 1,
            k: nr,
        },
        libc::sock_filter {
            code: RET_K,
            jt: 0,
            jf: 0,
            k: RET_ERRNO | libc::EPERM as u32,
        },
        libc::sock_filter {
            code: RET_K,
            jt: 0,
            jf: 0,
            k: RET_ALLOW,
        },
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: prctl with these arguments only changes this thread's privileges and filter; `prog`
    // and the filter it points to outlive the call (the kernel copies them).
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        assert_eq!(
            libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &prog),
            0,
            "seccomp filter refused: {}",
            std::io::Error::last_os_error()
        );
        // The filter works: membarrier now fails.
        assert_eq!(libc::syscall(libc::SYS_membarrier, 0, 0), -1);
    }
}

/// The child: registration succeeds, then the filter makes every barrier fail; series churn
/// with concurrent readers must not free anything through a missing barrier.
fn child() {
    let registry = Registry::new();
    let fam = registry
        .counter_family("sandboxed_total", "Sandboxed.", &["k"])
        .unwrap();
    fam.with_label_values(&["warm-up"]).unwrap().inc(); // registers membarrier
    deny_membarrier();
    thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for i in 0..50_000u32 {
                    let key = ["a", "b", "c"][i as usize % 3];
                    fam.with_label_values(&[key]).unwrap().inc();
                }
            });
        }
        for i in 0..5_000u32 {
            let key = ["a", "b", "c"][i as usize % 3];
            fam.with_label_values(&[key]).unwrap().inc();
            fam.remove(&[key]);
        }
    });
    let _ = registry.encode_text(); // a scrape reclaims too
    let s = reclamation_stats();
    println!(
        "STATS retired={} freed={} fallbacks={} deferred={}",
        s.retired, s.freed, s.barrier_fallbacks, s.deferred
    );
}

#[test]
fn a_membarrier_that_starts_failing_after_registration_never_frees_through_a_missing_barrier() {
    if std::env::var_os(CHILD).is_some() {
        child();
        return;
    }
    if unsafe { libc::syscall(libc::SYS_membarrier, 0, 0) } < 0 {
        eprintln!("SKIP: this kernel has no membarrier(2); the symmetric fences need no barrier");
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_membarrier_that_starts_failing_after_registration_never_frees_through_a_missing_barrier",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stats = tagged(&stdout, "STATS ").unwrap_or_else(|| panic!("no STATS line in {stdout}"));
    let field = |name: &str| -> u64 {
        stats
            .split(' ')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .unwrap()
            .parse()
            .unwrap()
    };
    let (retired, freed) = (field("retired"), field("freed"));
    let (fallbacks, deferred) = (field("fallbacks"), field("deferred"));
    eprintln!("child: {stats}");
    assert!(retired >= 5_000, "{stats}");
    // Every reclaim after the filter found membarrier failing: each one either used the
    // mprotect barrier (counted) or freed nothing (counted). Nothing was freed uncounted.
    assert!(
        fallbacks + deferred > 0,
        "the failures went unnoticed: {stats}"
    );
    if deferred == 0 {
        assert!(freed > 0, "the fallback barrier frees: {stats}");
    }
}
