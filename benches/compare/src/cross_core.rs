//! The machine's cross-core latency at the moment: a cache line passed back and forth between
//! two threads pinned to CPUs 0 and 1.
//!
//! Why it is measured: on the 2-vCPU KVM guest this comparison runs on, the round trip was
//! seen to flip between about 70 ns and about 330 ns from one second to the next
//! (2026-12-07), as the host moved the two vCPUs between nearby and distant physical cores.
//! A workload whose threads share data pays that latency per transfer: the recording thread
//! with the OTLP exporter running flat out read 1.2× its cost without the exporter in some
//! processes and 2.4–2.8× in others, with the same cursor statistics. So each workload's row
//! says the round trip measured just before and just after it, and a row measured on a
//! distant pair can be told from one measured on a near pair.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Round trips per measurement: about 4–20 ms, far below a workload's time.
const TRIPS: u64 = 50_000;

#[repr(align(128))]
struct Line(AtomicU64);

/// Pins the calling thread to `cpu`; `false` when the process may not run there.
fn pin(cpu: usize) -> bool {
    // SAFETY: `set` is a valid, zero-initialized `cpu_set_t` owned by this frame; CPU_SET
    // writes within it (`cpu` is checked against its size), and sched_setaffinity reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if cpu >= 8 * std::mem::size_of::<libc::cpu_set_t>() {
            return false;
        }
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

/// The mean round trip in nanoseconds of one cache line between CPUs 0 and 1 (a store on one,
/// seen by a load on the other, answered the same way), or `None` on a machine where the two
/// threads cannot be pinned there (one CPU, or an affinity mask without both). Both sides are
/// threads of their own, so the caller's affinity is untouched.
pub fn round_trip_ns() -> Option<f64> {
    const GONE: u64 = u64::MAX;
    let line = Line(AtomicU64::new(0));
    let line = &line;
    std::thread::scope(|s| {
        let answer = s.spawn(move || {
            if !pin(1) {
                line.0.store(GONE, Ordering::Release);
                return;
            }
            line.0.store(1, Ordering::Release); // ready
            for i in 0..TRIPS {
                loop {
                    match line.0.load(Ordering::Acquire) {
                        v if v == 2 * i + 2 => break,
                        GONE => return,
                        _ => std::hint::spin_loop(),
                    }
                }
                line.0.store(2 * i + 3, Ordering::Release);
            }
        });
        let ask = s.spawn(move || {
            let pinned = pin(0);
            let ready = loop {
                match line.0.load(Ordering::Acquire) {
                    0 => std::hint::spin_loop(),
                    v => break v == 1,
                }
            };
            if !(pinned && ready) {
                line.0.store(GONE, Ordering::Release);
                return None;
            }
            let start = Instant::now();
            for i in 0..TRIPS {
                line.0.store(2 * i + 2, Ordering::Release);
                while line.0.load(Ordering::Acquire) != 2 * i + 3 {
                    std::hint::spin_loop();
                }
            }
            Some(start.elapsed().as_nanos() as f64 / TRIPS as f64)
        });
        let ns = ask.join().ok().flatten();
        let _ = answer.join();
        ns
    })
}

/// `round_trip_ns` for a table: "72 ns", or "–".
pub fn fmt(ns: Option<f64>) -> String {
    ns.map_or_else(|| "–".to_string(), |v| format!("{v:.0} ns"))
}
