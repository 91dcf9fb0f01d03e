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
//! four for a scrape). The closure is the very one the timing comparison calls, with the same
//! inputs, `black_box`es and loop.
//!
//! **Only the measured region is counted**: the child issues callgrind's `ZERO_STATS` client
//! request immediately before the one call of the closure and `DUMP_STATS` immediately after it
//! (`callgrind.rs`); callgrind writes that dump to its own file (`cg.out.1`, next to
//! `--callgrind-out-file`), and its `totals:` line is `Ir(N)`. The process's total is not usable:
//! its set-up runs time-based calibration loops whose instruction count follows the wall time
//! under valgrind, so it differs from one run to the next: `quanta::Clock::new` (reached through
//! metrics-exporter-prometheus's builder, which the `counter_inc` workload's constructor calls
//! even when only our arm runs) took 7.8 M instructions in one run and 10.9 M in the next, and
//! fastant's TSC calibration (a global constructor, in every child) 3.2 M against 4.2 M. Four
//! runs of `--run-arm counter_inc agentcore` at n, n, 2n, 2n (n = 10^6) read 24.5 M, 29.1 M,
//! 41.1 M and 34.1 M in all, so the ~10-instruction increment came out anywhere between 3 and
//! 10 per operation (and prometheus-client's exemplar increment at "2"). The region of those
//! runs counts 11,000,604 instructions in every run at n and 22,000,604 at 2n.
//!
//! The per-operation count is still `(Ir(2n) - Ir(n)) / n`: that cancels the fixed costs inside
//! the closure, first-use costs (lazy initialisation, a thread's first lease) and any fixed cost
//! per call (an arm's flush of its background consumer).
//!
//! Every thread of the process is counted (a library that hands work to a background thread is
//! charged for it, as the timings charge its CPU time): without `--separate-threads`, all threads
//! record into one table of cost centres, which `ZERO_STATS` zeroes and `DUMP_STATS` writes, so
//! the dump's `totals:` has every thread's instructions between the two requests (fastrace's
//! `span_basic` region: 177 M instructions in all, of which the main thread's are 42 M; its
//! `summary:` line, by contrast, adds each background thread's cost since that thread started,
//! since `ZERO_STATS` resets only the calling thread's mark, and is not read).
//!
//! What still varies from one run to the next is work that really differs between processes,
//! inside the region:
//! * the tracing workloads' children start the tracing libraries' global collectors, whose
//!   background threads wake on timers: what they do follows wall time, not the operations
//!   (`span_basic`, two runs: fastrace 3,569 and 3,521 instructions per span, opentelemetry
//!   3,786 and 3,779, tracing 873.9 and 874.2, which has no thread of its own but shares the
//!   process with the others' collectors; ours 851.0 both times);
//! * hash tables seeded per process: which label sets share a probe sequence changes with the
//!   seed (ours: `labeled_inc` 234.9 M, 237.1 M and 235.9 M instructions for the same 10^6
//!   operations in three processes, about 3 per operation; prometheus-client's `Family`, std's
//!   `RandomState`, about 1.5). Deterministic hashers (prometheus', metrics') read the same every
//!   time.
//!
//! The metrics workloads' children start no background thread.
//!
//! The span export rows: `export_recording` counts the **recording thread only**
//! (`--separate-threads=yes`: callgrind then writes one file per thread and per dump, and the
//! region's dump, requested by the main thread, is that thread's alone, `cg.out.1-01`): its
//! subject is what recording costs that thread with an exporter attached, and the exporter's and
//! the sink's threads would otherwise be charged to it. Under valgrind only one thread runs at a
//! time, so the exporter never reads the span log *while* the recording thread writes it: the
//! count has the instructions the exporter adds to the recording thread (marking each record for
//! export, and counting the records it overwrites before the exporter read them), but none of
//! the cache-line traffic between the two cores that the timed row has. `export_process_cpu`
//! counts every thread, the loopback sink's included (it reads and counts the same spans for
//! both libraries, so it adds about the same to both and narrows the ratio).
//!
//! Multi-threaded workloads are left out (valgrind runs one thread at a time, so contention,
//! their subject, does not exist under it).
//!
//! # A modeled older core (`--cache-model`)
//! An instruction count says nothing about what a core waits for. With `--cache-model` the same
//! runs also simulate the caches and the branch predictor ([`CACHE_MODEL`]: callgrind's
//! `--cache-sim` and `--branch-sim`) with the geometry of issue 16's older AMD EPYC, the core on
//! which our leads had inverted: 32 KiB L1i and L1d and a 512 KiB L2 per core, each 8-way with
//! 64-byte lines, the L2 standing for callgrind's last level (so an "L2 miss" goes to the L3 or
//! to memory). Each arm then also gets, per operation and by the same difference of two runs,
//! its L1d misses (reads and writes), its L2 misses (data and instructions) and its mispredicted
//! branches (conditional and indirect, callgrind's model: 16,384 two-bit counters indexed by
//! address and a 512-entry branch target buffer). Like the count, these are properties of the
//! binary and the model, the same on any machine that runs it; unlike it, they are a model:
//! a real core's predictor and prefetchers do better than callgrind's (no prefetcher at all is
//! simulated, so a stream of sequential writes counts one miss per line, which hardware mostly
//! hides). They say where a core that is narrower, or has smaller caches, than ours will wait.

use std::fmt::Write as _;
use std::process::Command;

use crate::harness::fmt_ratio;
use crate::metrics_wl::OURS;

/// Workloads measured in threads (not meaningful under valgrind's serialised threads), or
/// whose figure is thread CPU time between sleeps (`export_recording_paced`: the same
/// instructions as `export_recording`).
pub const SKIP: &[&str] = &["counter_inc_2t", "export_recording_paced"];

/// Operations per run (`n`; the second run does `2n`): enough that the difference dwarfs any
/// noise (a background thread's timer firing in one run only), few enough for valgrind.
pub fn ops(id: &str) -> u64 {
    match id {
        "encode" => 4,
        "span_basic" | "span_nested" | "span_unsampled" | "macro_call" | "traceparent"
        | "traceparent_varied" => 50_000,
        "record_tool_execution" | "record_agent_created" => 100_000,
        // The recording thread's count depends a little on how valgrind interleaves it with the
        // exporter (whose overwritten records it counts): with the region alone counted, two
        // runs read 845.0 and 844.5 instructions per span with the exporter (852.0 both times
        // without); large `n` keeps that to under one instruction per span.
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
        "span_basic"
            | "span_nested"
            | "span_unsampled"
            | "macro_call"
            | "traceparent"
            | "traceparent_varied"
    )
}

/// callgrind's options of `--cache-model` (see the module doc): the older AMD EPYC's per-core
/// caches, each `size,associativity,line`.
pub const CACHE_MODEL: [&str; 5] = [
    "--cache-sim=yes",
    "--branch-sim=yes",
    "--I1=32768,8,64",
    "--D1=32768,8,64",
    "--LL=524288,8,64",
];

/// Per operation, under [`CACHE_MODEL`]: what the modeled core waits for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Modeled {
    /// L1d misses, reads and writes (`D1mr + D1mw`).
    pub l1d_misses: f64,
    /// L2 (callgrind's last level) misses, data and instructions (`DLmr + DLmw + ILmr`).
    pub l2_misses: f64,
    /// Mispredicted branches, conditional and indirect (`Bcm + Bim`).
    pub mispredicts: f64,
}

/// One arm's count.
#[derive(Debug, Clone)]
pub struct Count {
    pub lib: &'static str,
    /// Instructions per operation (`NaN` when valgrind failed).
    pub per_op: f64,
    /// With `--cache-model`: the modeled core's misses per operation (`None` otherwise, or when
    /// valgrind failed).
    pub modeled: Option<Modeled>,
}

/// One workload's counts.
#[derive(Debug, Clone)]
pub struct WorkloadCounts {
    pub id: &'static str,
    pub title: &'static str,
    pub counts: Vec<Count>,
}

/// Workloads counted on the main (recording) thread only.
pub const MAIN_THREAD_ONLY: &[&str] = &["export_recording"];

/// The instruction total of a callgrind dump file: its `totals:` line (the sum of the cost
/// centres written to the file), else its `summary:` line.
///
/// `totals:` is preferred because it is exactly what the region's cost centres hold: without
/// `--separate-threads`, `summary:` adds up each thread's cost since *that thread's* last zero or
/// dump, and `ZERO_STATS` resets that mark for the calling thread only, so a background thread's
/// set-up before the region would leak into it.
fn dump_total(text: &str) -> Option<u64> {
    dump_events(text)?.first().map(|&(_, v)| v)
}

/// Every event of a callgrind dump with its total (`totals:`, else `summary:`, as
/// [`dump_total`]), in the order of its `events:` line; callgrind leaves out trailing zeros,
/// which come back as 0. `None` without an `events:` line or a total.
fn dump_events(text: &str) -> Option<Vec<(&str, u64)>> {
    let line = |prefix: &str| text.lines().find_map(|l| l.strip_prefix(prefix));
    let names = line("events:")?.split_whitespace();
    let values: Vec<u64> = line("totals:")
        .or_else(|| line("summary:"))?
        .split_whitespace()
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    if values.is_empty() {
        return None;
    }
    Some(
        names
            .enumerate()
            .map(|(i, name)| (name, values.get(i).copied().unwrap_or(0)))
            .collect(),
    )
}

/// The events of one run that the model reads (`Ir` first), summed as [`Modeled`]'s fields
/// are; with no cache simulation only `Ir` is non-zero.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct RunTotals {
    ir: u64,
    l1d_misses: u64,
    l2_misses: u64,
    mispredicts: u64,
}

impl RunTotals {
    fn of(text: &str) -> Option<RunTotals> {
        let events = dump_events(text)?;
        let sum = |names: &[&str]| {
            events
                .iter()
                .filter(|(n, _)| names.contains(n))
                .map(|&(_, v)| v)
                .sum::<u64>()
        };
        Some(RunTotals {
            ir: dump_total(text)?,
            l1d_misses: sum(&["D1mr", "D1mw"]),
            l2_misses: sum(&["DLmr", "DLmw", "ILmr"]),
            mispredicts: sum(&["Bcm", "Bim"]),
        })
    }
}

/// Instructions of the measured region of one run of `--run-arm id lib n` under callgrind (all
/// threads, or the main thread alone for [`MAIN_THREAD_ONLY`]).
///
/// The child zeroes callgrind's counts just before the region and dumps them just after it
/// (`callgrind.rs`): callgrind writes that dump to `cg.out.1` (the first dump of the process,
/// numbered from 1), or with `--separate-threads=yes` one file per thread, the calling (main)
/// thread's being `cg.out.1-01`; the process's end writes `cg.out` (`cg.out-NN`), the costs after
/// the region, which are not read.
fn run_under_callgrind(id: &str, lib: &str, n: u64, cache_model: bool) -> Option<RunTotals> {
    let exe = std::env::current_exe().ok()?;
    let main_only = MAIN_THREAD_ONLY.contains(&id);
    let dir = std::env::temp_dir().join(format!(
        "compare-cg-{}-{id}-{}-{n}",
        std::process::id(),
        lib.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
    ));
    std::fs::create_dir_all(&dir).ok()?;
    let mut cmd = Command::new("valgrind");
    cmd.args(["--tool=callgrind", "--dump-instr=no", "--dump-line=no"])
        .arg(format!("--callgrind-out-file={}/cg.out", dir.display()));
    if main_only {
        cmd.arg("--separate-threads=yes");
    }
    if cache_model {
        cmd.args(CACHE_MODEL);
    }
    let out = cmd
        .arg(exe)
        .args(["--run-arm", id, lib, &n.to_string()])
        .output();
    let ir = match out {
        Err(e) => {
            eprintln!("  {id} / {lib}: could not run valgrind: {e}");
            None
        }
        Ok(out) if !out.status.success() => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            eprintln!("  {id} / {lib}: valgrind failed: {}", stderr.trim_end());
            None
        }
        Ok(_) => {
            let region = dir.join(if main_only { "cg.out.1-01" } else { "cg.out.1" });
            // A second dump would mean something else dumped (a changed child): refuse to guess.
            let second = dir.join(if main_only { "cg.out.2-01" } else { "cg.out.2" });
            match std::fs::read_to_string(&region) {
                Err(e) => {
                    eprintln!(
                        "  {id} / {lib}: no dump of the measured region ({}: {e})",
                        region.display()
                    );
                    None
                }
                Ok(_) if second.exists() => {
                    eprintln!(
                        "  {id} / {lib}: more than one callgrind dump; expected only the region's"
                    );
                    None
                }
                Ok(text) if !text.contains("desc: Trigger: Client Request") => {
                    eprintln!(
                        "  {id} / {lib}: {} is not the region's dump",
                        region.display()
                    );
                    None
                }
                Ok(text) => {
                    let totals = RunTotals::of(&text);
                    if totals.is_none() {
                        eprintln!("  {id} / {lib}: no total in {}", region.display());
                    }
                    totals
                }
            }
        }
    };
    let _ = std::fs::remove_dir_all(&dir);
    ir
}

/// Counts instructions per operation of each arm of `id` (the library names in `libs`).
/// The runs of one workload go in parallel (valgrind runs a program on one thread, and the
/// counts do not depend on timing).
pub fn count(
    id: &'static str,
    title: &'static str,
    libs: &[&'static str],
    cache_model: bool,
) -> WorkloadCounts {
    let n = ops(id);
    let runs: Vec<(Option<RunTotals>, Option<RunTotals>)> = std::thread::scope(|s| {
        let handles: Vec<_> = libs
            .iter()
            .map(|&lib| {
                let a = s.spawn(move || run_under_callgrind(id, lib, n, cache_model));
                let b = s.spawn(move || run_under_callgrind(id, lib, 2 * n, cache_model));
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
            let (per_op, modeled) = match runs {
                (Some(a), Some(b)) if b.ir >= a.ir => {
                    (per_op(a.ir, b.ir, n), cache_model.then(|| modeled(a, b, n)))
                }
                _ => (f64::NAN, None),
            };
            eprintln!("  {id} / {lib}: {per_op:.1} instructions per operation");
            if let Some(m) = modeled {
                eprintln!(
                    "  {id} / {lib}: modeled core: {:.2} L1d misses, {:.2} L2 misses, {:.2} mispredicted branches per operation",
                    m.l1d_misses, m.l2_misses, m.mispredicts
                );
            }
            Count {
                lib,
                per_op,
                modeled,
            }
        })
        .collect();
    WorkloadCounts { id, title, counts }
}

/// `(b - a) / n`: the cost of the second run's `n` more operations, each (negative when the
/// second run had fewer events, which a miss count can, by noise: a background thread's timer).
fn per_op(a: u64, b: u64, n: u64) -> f64 {
    (b as f64 - a as f64) / n as f64
}

/// The modeled core's events per operation from the runs of `n` and `2n` operations.
fn modeled(a: RunTotals, b: RunTotals, n: u64) -> Modeled {
    Modeled {
        l1d_misses: per_op(a.l1d_misses, b.l1d_misses, n),
        l2_misses: per_op(a.l2_misses, b.l2_misses, n),
        mispredicts: per_op(a.mispredicts, b.mispredicts, n),
    }
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

/// An event count per operation: `0` below half a hundredth (run-to-run noise, either sign),
/// two decimals below 10, one above.
fn fmt_events(v: f64) -> String {
    if !v.is_finite() {
        "n/a".into()
    } else if v.abs() < 0.005 {
        "0".into()
    } else if v.abs() < 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.1}")
    }
}

/// `--cache-model`'s markdown table: one row per workload, one column per library, each cell
/// `L1d misses · L2 misses · mispredicted branches` per operation on the modeled core.
pub fn modeled_table(out: &mut String, results: &[WorkloadCounts], libs: &[&str]) {
    let present: Vec<&str> = libs
        .iter()
        .copied()
        .filter(|l| {
            results
                .iter()
                .any(|r| r.counts.iter().any(|c| c.lib == *l && c.modeled.is_some()))
        })
        .collect();
    let _ = write!(out, "| workload (L1d · L2 · mispredicted, per op) |");
    for lib in &present {
        let _ = write!(out, " {lib} |");
    }
    out.push_str(
        "
| --- |",
    );
    for _ in &present {
        out.push_str(" ---: |");
    }
    out.push('\n');
    for r in results {
        let _ = write!(out, "| {} |", r.title);
        for lib in &present {
            let cell = r
                .counts
                .iter()
                .find(|c| c.lib == *lib)
                .and_then(|c| c.modeled)
                .map_or("–".into(), |m| {
                    format!(
                        "{} · {} · {}",
                        fmt_events(m.l1d_misses),
                        fmt_events(m.l2_misses),
                        fmt_events(m.mispredicts)
                    )
                });
            let _ = write!(out, " {cell} |");
        }
        out.push('\n');
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A region dump as callgrind writes it with `--cache-sim=yes --branch-sim=yes` (trailing
    /// zero columns left out), and one without the simulation.
    #[test]
    fn reads_every_event_of_a_dump() {
        let text = "version: 1\ncreator: callgrind-3.19.0\n\
            desc: Trigger: Client Request: DUMP_STATS\n\
            events: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw Bc Bcm Bi Bim\n\
            summary: 9 9 9 9 9 9 9 9 9 9 9 9 9\n\
            totals: 1000 200 100 1 20 10 1 4 3 50 6\n";
        assert_eq!(
            RunTotals::of(text),
            Some(RunTotals {
                ir: 1000,
                l1d_misses: 30,
                l2_misses: 8,
                mispredicts: 6,
            })
        );
        let plain = "events: Ir\nsummary: 77\n";
        assert_eq!(
            RunTotals::of(plain),
            Some(RunTotals {
                ir: 77,
                ..RunTotals::default()
            })
        );
        assert_eq!(RunTotals::of("totals: 5\n"), None, "no events line");
        assert_eq!(RunTotals::of("events: Ir\ntotals: x\n"), None);
    }

    #[test]
    fn per_operation_is_the_difference_of_the_two_runs() {
        let a = RunTotals {
            ir: 1_000,
            l1d_misses: 50,
            l2_misses: 10,
            mispredicts: 7,
        };
        let b = RunTotals {
            ir: 1_600,
            l1d_misses: 80,
            l2_misses: 9,
            mispredicts: 7,
        };
        assert_eq!(per_op(a.ir, b.ir, 100), 6.0);
        let m = modeled(a, b, 100);
        assert_eq!(
            m,
            Modeled {
                l1d_misses: 0.3,
                l2_misses: -0.01,
                mispredicts: 0.0
            }
        );
        assert_eq!(fmt_events(m.l2_misses), "-0.01");
        assert_eq!(fmt_events(0.004), "0");
        assert_eq!(fmt_events(36.04), "36.0");
    }
}
