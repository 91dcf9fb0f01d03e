//! Instructions per operation of every arm under callgrind: the machine-independent side of the
//! comparison (`--instructions`).
//!
//! Timings say how a library's instructions run on one core; the instruction count is the same
//! on any x86-64 machine for a given binary, so it carries the claim across machines (a narrow or
//! busy core pays for every instruction, a wide one hides some of them behind others).
//!
//! # How
//! For each arm, this binary runs itself twice under `valgrind --tool=callgrind`
//! (`--run-arm WORKLOAD LIBRARY N`): the workload's set-up, then `N` operations of the arm in one
//! call of its closure, with `N = n` and `N = 2n` (`n` from a million operations for a counter to
//! four for a scrape). The per-operation count is
//! `(Ir(2n) - Ir(n)) / n`, so the set-up, first-use costs (lazy initialisation, a thread's first
//! lease) and any fixed cost per call (an arm's flush of its background consumer) cancel out,
//! and every thread of the process is counted (a library that hands work to a background thread
//! is charged for it, as the timings charge its CPU time). The closure is the very one the
//! timing comparison calls, with the same inputs, `black_box`es and loop.
//!
//! The tracing workloads' children start the tracing libraries' global collectors, whose
//! background threads also wake on timers; that work grows with the run's duration rather than
//! its operations, so it can add a little noise to their counts (a few instructions per span at
//! these `n`). The metrics workloads' children start no background thread.
//!
//! The span export rows: `export_recording` counts the **recording thread only**
//! (`--separate-threads=yes`, the main thread's file): its subject is what recording costs that
//! thread with an exporter attached, and the exporter's and the sink's threads would otherwise
//! be charged to it. Under valgrind only one thread runs at a time, so the exporter never reads
//! the span log *while* the recording thread writes it: the count has the instructions the
//! exporter adds to the recording thread (marking each record for export, and counting the
//! records it overwrites before the exporter read them), but none of the cache-line traffic
//! between the two cores that the timed row has. `export_process_cpu` counts every thread,
//! the loopback sink's included (it reads and counts the same spans for both libraries, so it
//! adds about the same to both and narrows the ratio).
//!
//! Multi-threaded workloads are left out (valgrind runs one thread at a time, so contention,
//! their subject, does not exist under it).

use std::fmt::Write as _;
use std::process::Command;

use crate::harness::fmt_ratio;
use crate::metrics_wl::OURS;

/// Workloads measured in threads (not meaningful under valgrind's serialised threads).
pub const SKIP: &[&str] = &["counter_inc_2t"];

/// Operations per run (`n`; the second run does `2n`): enough that the difference dwarfs any
/// noise (a background thread's timer firing in one run only), few enough for valgrind.
pub fn ops(id: &str) -> u64 {
    match id {
        "encode" => 4,
        "span_basic" | "span_nested" | "span_unsampled" | "macro_call" | "traceparent" => 50_000,
        "record_tool_execution" | "record_agent_created" => 100_000,
        // The export rows' main threads vary by up to ~10 M instructions from one run to the
        // next whatever `n` (threads interleave differently under valgrind); large `n` keeps
        // that to a few instructions per span.
        "export_recording" => 500_000,
        // 8 and 16 chunks of 8,192 spans, each flushed.
        "export_process_cpu" => 8 * crate::export_wl::CHUNK,
        _ => 1_000_000,
    }
}

/// Whether the workload needs the tracing libraries' global state (their background threads
/// run in its children; the metrics workloads' children start none, so nothing but the arm runs).
pub fn needs_tracing_globals(id: &str) -> bool {
    matches!(
        id,
        "span_basic" | "span_nested" | "span_unsampled" | "macro_call" | "traceparent"
    )
}

/// One arm's count.
#[derive(Debug, Clone)]
pub struct Count {
    pub lib: &'static str,
    /// Instructions per operation (`NaN` when valgrind failed).
    pub per_op: f64,
}

/// One workload's counts.
#[derive(Debug, Clone)]
pub struct WorkloadCounts {
    pub id: &'static str,
    pub title: &'static str,
    pub counts: Vec<Count>,
}

fn collected(stderr: &str) -> Option<u64> {
    stderr.lines().find_map(|l| {
        let rest = l.split("Collected :").nth(1)?;
        rest.trim().replace(',', "").parse().ok()
    })
}

/// Workloads counted on the main (recording) thread only.
pub const MAIN_THREAD_ONLY: &[&str] = &["export_recording"];

/// Instructions of one run of `--run-arm id lib n` under callgrind (all threads, or the main
/// thread alone for [`MAIN_THREAD_ONLY`]).
fn run_under_callgrind(id: &str, lib: &str, n: u64) -> Option<u64> {
    let exe = std::env::current_exe().ok()?;
    let main_only = MAIN_THREAD_ONLY.contains(&id);
    let dir = std::env::temp_dir().join(format!(
        "compare-cg-{}-{id}-{}-{n}",
        std::process::id(),
        lib.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
    ));
    let mut cmd = Command::new("valgrind");
    cmd.args(["--tool=callgrind", "--dump-instr=no", "--dump-line=no"]);
    if main_only {
        std::fs::create_dir_all(&dir).ok()?;
        cmd.arg("--separate-threads=yes")
            .arg(format!("--callgrind-out-file={}/cg.out", dir.display()));
    } else {
        cmd.arg("--callgrind-out-file=/dev/null");
    }
    let out = cmd
        .arg(exe)
        .args(["--run-arm", id, lib, &n.to_string()])
        .output()
        .ok()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        eprintln!("  {id} / {lib}: valgrind failed: {}", stderr.trim_end());
        let _ = std::fs::remove_dir_all(&dir);
        return None;
    }
    if !main_only {
        return collected(&stderr);
    }
    // Thread 1's file (`cg.out-01`): its `summary:` (or `totals:`) line.
    let main_file = std::fs::read_dir(&dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with("-01"));
    let ir = main_file
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|text| {
            text.lines().find_map(|l| {
                let v = l
                    .strip_prefix("summary:")
                    .or_else(|| l.strip_prefix("totals:"))?;
                v.split_whitespace().next()?.parse().ok()
            })
        });
    let _ = std::fs::remove_dir_all(&dir);
    if ir.is_none() {
        eprintln!("  {id} / {lib}: no main-thread count in callgrind's output");
    }
    ir
}

/// Counts instructions per operation of each arm of `id` (the library names in `libs`).
/// The runs of one workload go in parallel (valgrind runs a program on one thread, and the
/// counts do not depend on timing).
pub fn count(id: &'static str, title: &'static str, libs: &[&'static str]) -> WorkloadCounts {
    let n = ops(id);
    let runs: Vec<(Option<u64>, Option<u64>)> = std::thread::scope(|s| {
        let handles: Vec<_> = libs
            .iter()
            .map(|&lib| {
                let a = s.spawn(move || run_under_callgrind(id, lib, n));
                let b = s.spawn(move || run_under_callgrind(id, lib, 2 * n));
                (a, b)
            })
            .collect();
        handles
            .into_iter()
            .map(|(a, b)| (a.join().ok().flatten(), b.join().ok().flatten()))
            .collect()
    });
    let counts = libs
        .iter()
        .zip(runs)
        .map(|(&lib, runs)| {
            let per_op = match runs {
                (Some(a), Some(b)) if b >= a => (b - a) as f64 / n as f64,
                _ => f64::NAN,
            };
            eprintln!("  {id} / {lib}: {per_op:.1} instructions per operation");
            Count { lib, per_op }
        })
        .collect();
    WorkloadCounts { id, title, counts }
}

/// `123`, `4.5 k`, `1.23 M` instructions.
pub fn fmt_ir(ir: f64) -> String {
    if !ir.is_finite() {
        "n/a".into()
    } else if ir >= 1e6 {
        format!("{:.2} M", ir / 1e6)
    } else if ir >= 1e4 {
        format!("{:.1} k", ir / 1e3)
    } else {
        format!("{ir:.0}")
    }
}

/// The markdown table: one row per workload, one column pair per library (count, ratio to ours).
pub fn table(out: &mut String, results: &[WorkloadCounts], libs: &[&str]) {
    let present: Vec<&str> = libs
        .iter()
        .copied()
        .filter(|l| results.iter().any(|r| r.counts.iter().any(|c| c.lib == *l)))
        .collect();
    let _ = write!(out, "| workload (instructions/op) |");
    for lib in &present {
        if *lib == OURS || lib.starts_with("floor") {
            let _ = write!(out, " {lib} |");
        } else {
            let _ = write!(out, " {lib} | ×ours |");
        }
    }
    out.push_str("\n| --- |");
    for lib in &present {
        let cols = if *lib == OURS || lib.starts_with("floor") {
            1
        } else {
            2
        };
        for _ in 0..cols {
            out.push_str(" ---: |");
        }
    }
    out.push('\n');
    for r in results {
        let ours = r
            .counts
            .iter()
            .find(|c| c.lib == OURS)
            .map_or(f64::NAN, |c| c.per_op);
        let _ = write!(out, "| {} |", r.title);
        for lib in &present {
            let c = r.counts.iter().find(|c| c.lib == *lib);
            let cell = c.map_or("–".into(), |c| fmt_ir(c.per_op));
            if *lib == OURS || lib.starts_with("floor") {
                let _ = write!(out, " {cell} |");
            } else {
                let ratio = c.map_or("–".into(), |c| fmt_ratio(c.per_op / ours));
                let _ = write!(out, " {cell} | {ratio} |");
            }
        }
        out.push('\n');
    }
}
