//! `agentcore-telemetry-compare`: the same workloads against agentcore-telemetry, its peers and
//! the two physical floors, in one run, with a markdown table of the ratio of each peer to us.
//!
//! ```text
//! cargo run --release --manifest-path benches/compare/Cargo.toml -- --quick   # < 1 minute
//! cargo run --release --manifest-path benches/compare/Cargo.toml              # full
//! cargo run --profile release-lto --manifest-path benches/compare/Cargo.toml   # the same, LTO
//! options: --quick | --full, --rounds N, --sample-ms N, --filter SUBSTRING, --json PATH,
//!          --realtime (the two-thread workload's threads under SCHED_FIFO, so they co-run),
//!          --instructions (callgrind instructions per operation of every arm instead of timings),
//!          --cache-model (with --instructions: also the L1d and L2 misses and mispredicted
//!          branches per operation on a simulated older core, see `instructions.rs`)
//! ```
//!
//! `bash benches/compare/run.sh` runs it in both profiles: `release` (the default release
//! profile: no LTO, 16 codegen units, as users build) and `release-lto` (thin LTO, one codegen
//! unit). The machine line names the profile the binary was built with.
//!
//! See `harness.rs` for how samples are taken (wall, process CPU, allocations) and interleaved,
//! `metrics_wl.rs` and `trace_wl.rs` for what each workload does and its fairness rules. The
//! JSON (default `target/compare.json` at the repository root) holds the same numbers as the
//! tables.

mod bridge_wl;
mod callgrind;
mod cross_core;
mod exemplar_wl;
mod export_wl;
mod harness;
mod instructions;
mod memory;
mod metrics_wl;
mod sink;
mod trace_wl;

use std::fmt::Write as _;
use std::path::PathBuf;

use harness::{fmt_allocs, fmt_ns, fmt_ratio, run_workload, Plan, Workload, WorkloadResult};
use serde_json::json;

#[global_allocator]
static ALLOC: harness::CountingAlloc = harness::CountingAlloc;

const OURS: &str = metrics_wl::OURS;

struct Args {
    quick: bool,
    instructions: bool,
    cache_model: bool,
    plan: Plan,
    filter: Option<String>,
    json: PathBuf,
}

fn parse_args() -> Args {
    let mut quick = false;
    let mut instructions = false;
    let mut cache_model = false;
    let mut rounds = None;
    let mut sample_ms = None;
    let mut filter = None;
    let mut json = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/compare.json"
    ));
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--instructions" => instructions = true,
            "--cache-model" => cache_model = true,
            // Internal: one arm's operations, for callgrind (see `instructions.rs`).
            "--run-arm" => {
                let id = it.next().expect("--run-arm WORKLOAD LIBRARY N");
                let lib = it.next().expect("--run-arm WORKLOAD LIBRARY N");
                let n = it.next().and_then(|v| v.parse().ok()).expect("N");
                run_arm(&id, &lib, n);
                std::process::exit(0);
            }
            // Internal: one scenario of the memory row (see `memory.rs`).
            "--memory-child" => {
                let lib = it.next().expect("--memory-child LIBRARY THREADS SERIES");
                let threads = it.next().and_then(|v| v.parse().ok()).expect("THREADS");
                let series = it.next().and_then(|v| v.parse().ok()).expect("SERIES");
                memory::child(&lib, threads, series);
                std::process::exit(0);
            }
            "--full" => quick = false,
            "--rounds" => rounds = it.next().and_then(|v| v.parse().ok()),
            "--sample-ms" => sample_ms = it.next().and_then(|v| v.parse::<u64>().ok()),
            "--filter" => filter = it.next(),
            "--realtime" => metrics_wl::REALTIME.store(true, std::sync::atomic::Ordering::Relaxed),
            "--json" => json = PathBuf::from(it.next().expect("--json PATH")),
            "-h" | "--help" => {
                println!(
                    "usage: agentcore-telemetry-compare [--quick|--full] [--rounds N] \
                     [--sample-ms N] [--filter SUBSTRING] [--json PATH] [--realtime] \
                     [--instructions [--cache-model]]"
                );
                std::process::exit(0);
            }
            // `cargo bench` passes `--bench`; ignore it and anything unknown.
            _ => {}
        }
    }
    let plan = Plan {
        rounds: rounds.unwrap_or(if quick { 5 } else { 41 }),
        sample_ns: sample_ms.unwrap_or(if quick { 2 } else { 10 }) * 1_000_000,
        flush_min_iters: if quick { 20_000 } else { 100_000 },
    };
    if cache_model && !instructions {
        eprintln!("--cache-model goes with --instructions (it models the callgrind runs' core)");
        std::process::exit(2);
    }
    Args {
        quick,
        instructions,
        cache_model,
        plan,
        filter,
        json,
    }
}

/// The Cargo profile this binary was built with (the name of its target directory) and what it
/// means for code generation.
fn build_profile() -> String {
    let dir = std::env::current_exe()
        .ok()
        .and_then(|p| Some(p.parent()?.file_name()?.to_string_lossy().into_owned()))
        .unwrap_or_default();
    match dir.as_str() {
        "release" => {
            "profile `release` (the default release profile: no LTO, 16 codegen units)".into()
        }
        "release-lto" => "profile `release-lto` (thin LTO, 1 codegen unit)".into(),
        other => format!("profile `{other}`"),
    }
}

/// Runs `n` operations of one arm once (the child of `--instructions`, under callgrind).
fn run_arm(id: &str, lib: &str, n: u64) {
    if !callgrind::SUPPORTED {
        eprintln!("{}", callgrind::UNSUPPORTED);
        std::process::exit(2);
    }
    if instructions::needs_tracing_globals(id) {
        trace_wl::init_globals();
    }
    let make = workloads(None)
        .into_iter()
        .find(|(w, _)| *w == id)
        .unwrap_or_else(|| panic!("--run-arm: no workload {id}"))
        .1;
    let mut w = make();
    let arm = w
        .arms
        .iter_mut()
        .find(|a| a.lib == lib)
        .unwrap_or_else(|| panic!("--run-arm: workload {id} has no arm {lib}"));
    // The measured region: callgrind counts from here (the set-up above, and fastant's and
    // quanta's clock calibrations, whose counts follow wall time, are forgotten) ...
    callgrind::zero_stats();
    let r = (arm.run)(n);
    // ... to here, written to its own dump file, which the parent reads (`instructions.rs`).
    callgrind::dump_stats();
    std::hint::black_box(r);
}

fn machine() -> serde_json::Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cmd = |c: &str, args: &[&str]| {
        std::process::Command::new(c)
            .args(args)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|| "unknown".into())
    };
    let lscpu = cmd("lscpu", &[]);
    let field = |name: &str| {
        lscpu
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    let caches = format!(
        "L1d {}, L2 {}, L3 {}",
        field("L1d cache"),
        field("L2 cache"),
        field("L3 cache")
    );
    json!({
        "cpu": model,
        "caches": caches,
        "hypervisor": field("Hypervisor vendor"),
        "cores": cores,
        "rustc": cmd("rustc", &["-V"]),
        "kernel": cmd("uname", &["-r"]),
        "profile": build_profile(),
        "date_utc": cmd("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
    })
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Our arms of the span workloads.
fn ours_tracing() -> [Option<harness::Arm>; 3] {
    [
        Some(trace_wl::ours_span_basic()),
        Some(trace_wl::ours_span_nested()),
        Some(trace_wl::ours_span_unsampled()),
    ]
}

/// Builds a workload (its set-up runs only when it is selected).
type MakeWorkload = Box<dyn FnOnce() -> Workload>;

fn workloads(filter: Option<&str>) -> Vec<(&'static str, MakeWorkload)> {
    let all: Vec<(&str, MakeWorkload)> = vec![
        ("counter_inc", Box::new(metrics_wl::counter_inc)),
        ("counter_inc_2t", Box::new(metrics_wl::counter_inc_2t)),
        ("labeled_inc", Box::new(metrics_wl::labeled_inc)),
        ("histogram_observe", Box::new(metrics_wl::histogram_observe)),
        (
            "counter_inc_exemplar",
            Box::new(exemplar_wl::counter_inc_exemplar),
        ),
        (
            "histogram_observe_exemplar",
            Box::new(exemplar_wl::histogram_observe_exemplar),
        ),
        (
            "labeled_histogram_observe",
            Box::new(metrics_wl::labeled_histogram_observe),
        ),
        ("summary_observe", Box::new(metrics_wl::summary_observe)),
        ("gauge_set", Box::new(metrics_wl::gauge_set)),
        ("encode", Box::new(metrics_wl::encode)),
        (
            "span_basic",
            Box::new(|| {
                let [a, _, _] = ours_tracing();
                trace_wl::span_basic(a)
            }),
        ),
        (
            "span_nested",
            Box::new(|| {
                let [_, b, _] = ours_tracing();
                trace_wl::span_nested(b)
            }),
        ),
        (
            "span_unsampled",
            Box::new(|| {
                let [_, _, c] = ours_tracing();
                trace_wl::span_unsampled(c)
            }),
        ),
        (
            "macro_call",
            Box::new(|| trace_wl::macro_call(Some(trace_wl::ours_macro_call()))),
        ),
        ("traceparent", Box::new(trace_wl::traceparent)),
        ("traceparent_varied", Box::new(trace_wl::traceparent_varied)),
        ("bridge_span", Box::new(bridge_wl::bridge_span)),
        ("bridge_counter", Box::new(bridge_wl::bridge_counter)),
        (
            "record_tool_execution",
            Box::new(metrics_wl::record_tool_execution),
        ),
        (
            "record_agent_created",
            Box::new(metrics_wl::record_agent_created),
        ),
        ("export_recording", Box::new(export_wl::recording)),
        (
            "export_recording_paced",
            Box::new(export_wl::recording_paced),
        ),
        ("export_process_cpu", Box::new(export_wl::process_cpu)),
    ];
    all.into_iter()
        .filter(|(id, _)| filter.is_none_or(|f| id.contains(f)))
        .collect()
}

/// Library columns of the two summary tables.
const METRIC_LIBS: [&str; 6] = [
    OURS,
    metrics_wl::TIKV,
    metrics_wl::PCLIENT,
    metrics_wl::METRICS,
    metrics_wl::FLOOR_LS,
    metrics_wl::FLOOR_FA,
];
const TRACE_LIBS: [&str; 4] = [OURS, trace_wl::FASTRACE, trace_wl::OTEL, trace_wl::TRACING];

fn ratio(r: &WorkloadResult, lib: &str, cpu: bool) -> f64 {
    match (r.arm(OURS), r.arm(lib)) {
        (Some(o), Some(p)) if cpu => p.cpu_ns / o.cpu_ns,
        (Some(o), Some(p)) => p.wall_ns / o.wall_ns,
        _ => f64::NAN,
    }
}

fn summary_table(out: &mut String, results: &[WorkloadResult], libs: &[&str], cpu: bool) {
    let col = if cpu { "CPU ns/op" } else { "median ns/op" };
    let _ = write!(out, "| workload ({col}) |");
    for lib in libs {
        if *lib == OURS || lib.starts_with("floor") {
            let _ = write!(out, " {lib} |");
        } else {
            let _ = write!(out, " {lib} | ×ours |");
        }
    }
    out.push('\n');
    out.push_str("| --- |");
    for lib in libs {
        let n = if *lib == OURS || lib.starts_with("floor") {
            1
        } else {
            2
        };
        for _ in 0..n {
            out.push_str(" ---: |");
        }
    }
    out.push('\n');
    for r in results {
        let _ = write!(out, "| {} |", r.title);
        for lib in libs {
            let cell = match r.arm(lib) {
                Some(a) => fmt_ns(if cpu { a.cpu_ns } else { a.wall_ns }),
                None if *lib == OURS && r.todo.is_some() => "TODO".into(),
                None => "–".into(),
            };
            if *lib == OURS || lib.starts_with("floor") {
                let _ = write!(out, " {cell} |");
            } else {
                let rt = ratio(r, lib, cpu);
                let rc = if r.arm(lib).is_some() {
                    fmt_ratio(rt)
                } else {
                    "–".into()
                };
                let _ = write!(out, " {cell} | {rc} |");
            }
        }
        out.push('\n');
    }
}

fn detail_table(out: &mut String, results: &[WorkloadResult]) {
    out.push_str("| workload | library | median ns/op | min ns/op | CPU ns/op | allocs/op | ×ours (wall) | ×ours (CPU) |\n");
    out.push_str("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for r in results {
        if r.arms.is_empty() {
            let _ = writeln!(out, "| {} | {} | | | | | | |", r.id, r.todo.unwrap_or(""));
        }
        for a in &r.arms {
            let (rw, rc) = if a.lib == OURS {
                ("1.00×".to_string(), "1.00×".to_string())
            } else {
                (
                    fmt_ratio(ratio(r, a.lib, false)),
                    fmt_ratio(ratio(r, a.lib, true)),
                )
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                r.id,
                a.lib,
                fmt_ns(a.wall_ns),
                fmt_ns(a.wall_min_ns),
                fmt_ns(a.cpu_ns),
                fmt_allocs(a.allocs),
                rw,
                rc
            );
        }
    }
}

struct Target {
    what: String,
    measured: String,
    met: Option<bool>,
}

fn get<'a>(results: &'a [WorkloadResult], id: &str) -> Option<&'a WorkloadResult> {
    results.iter().find(|r| r.id == id)
}

/// The targets, evaluated from this run's numbers only.
fn targets(results: &[WorkloadResult]) -> Vec<Target> {
    let mut t = Vec::new();
    let ours = |id: &str| get(results, id).and_then(|r| r.arm(OURS));
    let na = |what: &str| Target {
        what: what.into(),
        measured: "not measured in this run".into(),
        met: None,
    };

    let w = "counter inc ≤ 1.5× the thread-owned load+store floor";
    match (
        ours("counter_inc"),
        get(results, "counter_inc").and_then(|r| r.arm(metrics_wl::FLOOR_LS)),
    ) {
        (Some(o), Some(f)) => {
            let r = o.cpu_ns / f.cpu_ns;
            t.push(Target {
                what: w.into(),
                measured: format!(
                    "{} vs {} = {} (wall medians {} vs {})",
                    fmt_ns(o.cpu_ns),
                    fmt_ns(f.cpu_ns),
                    fmt_ratio(r),
                    fmt_ns(o.wall_ns),
                    fmt_ns(f.wall_ns)
                ),
                met: Some(r <= 1.5),
            });
        }
        _ => t.push(na(w)),
    }
    let w = "counter inc per-thread cost unchanged with 2 threads on the same counter (≤ 1.2× the 1-thread cost, with the threads running at once ≥ 50% of the time)";
    let two_t = get(results, "counter_inc_2t");
    match (
        two_t.and_then(|w| w.arm(metrics_wl::OURS_ONE)),
        two_t.and_then(|w| w.arm(OURS)),
        two_t,
    ) {
        (Some(one), Some(two), Some(wr)) => {
            // Paired by round with the one-thread arm of the same workload: the machine's
            // drift between rounds, and where the host put the two vCPUs, cancel in each pair.
            let r = harness::paired_ratio(&one.cpu_rounds, &two.cpu_rounds);
            let co = two.co_running;
            let control = wr
                .arm(metrics_wl::OURS_SEPARATE)
                .map(|s| {
                    format!(
                        "; 2 threads on separate counters ({}): {:.3}× paired",
                        fmt_ns(s.cpu_ns),
                        harness::paired_ratio(&one.cpu_rounds, &s.cpu_rounds)
                    )
                })
                .unwrap_or_default();
            let floor = wr
                .arm(metrics_wl::FLOOR_LS)
                .zip(wr.arm(metrics_wl::FLOOR_LS_ONE))
                .map(|(two, one)| {
                    format!(
                        "; the load+store floor, 2 threads (each its own word) against 1: {:.3}× paired",
                        harness::paired_ratio(&one.cpu_rounds, &two.cpu_rounds)
                    )
                })
                .unwrap_or_default();
            let alone = ours("counter_inc")
                .map(|o| format!("; the one-thread workload read {}", fmt_ns(o.cpu_ns)))
                .unwrap_or_default();
            let by_latency = by_round_trip(wr, &one.cpu_rounds, &two.cpu_rounds);
            // Two threads that never run at the same time never contend: the verdict needs them
            // to have overlapped for at least half of the timed interval.
            let overlapped = co >= 0.5;
            t.push(Target {
                what: w.into(),
                measured: format!(
                    "{} per thread vs {} on one thread alone in the same rounds: paired by round {:.3}×{by_latency}{control}{floor}{alone}; threads ran at once ≥ {:.0}% of the time{}",
                    fmt_ns(two.cpu_ns),
                    fmt_ns(one.cpu_ns),
                    r,
                    co * 100.0,
                    if overlapped {
                        ""
                    } else {
                        ": too little overlap on this machine to show contention, no verdict"
                    }
                ),
                met: overlapped.then_some(r <= 1.2),
            });
        }
        _ => t.push(na(w)),
    }
    let w = "labeled lookup + inc ≤ 15 ns, 0 allocations";
    match ours("labeled_inc") {
        Some(o) => t.push(Target {
            what: w.into(),
            measured: format!(
                "{}, {} allocs/op (wall median {}, min {})",
                fmt_ns(o.cpu_ns),
                fmt_allocs(o.allocs),
                fmt_ns(o.wall_ns),
                fmt_ns(o.wall_min_ns)
            ),
            met: Some(o.cpu_ns <= 15.0 && o.allocs == 0.0),
        }),
        None => t.push(na(w)),
    }
    let w = "histogram observe ≤ 5 ns";
    match ours("histogram_observe") {
        Some(o) => t.push(Target {
            what: w.into(),
            measured: format!(
                "{} (wall median {}, min {})",
                fmt_ns(o.cpu_ns),
                fmt_ns(o.wall_ns),
                fmt_ns(o.wall_min_ns)
            ),
            met: Some(o.cpu_ns <= 5.0),
        }),
        None => t.push(na(w)),
    }
    let w = "encode of the 11,000-series scrape ≥ 2× faster than the fastest peer, O(1) allocations per scrape";
    match get(results, "encode") {
        Some(r) if r.arm(OURS).is_some() => {
            let o = r.arm(OURS).unwrap();
            let best = r
                .arms
                .iter()
                // Peers only: not our own second arm (OpenMetrics).
                .filter(|a| a.lib != OURS && a.lib != metrics_wl::OURS_OPENMETRICS)
                .min_by(|a, b| a.cpu_ns.total_cmp(&b.cpu_ns));
            if let Some(b) = best {
                let rt = b.cpu_ns / o.cpu_ns;
                t.push(Target {
                    what: w.into(),
                    measured: format!(
                        "{} vs {} ({}) = {}; {} allocs/scrape",
                        fmt_ns(o.cpu_ns),
                        fmt_ns(b.cpu_ns),
                        b.lib,
                        fmt_ratio(rt),
                        fmt_allocs(o.allocs)
                    ),
                    // O(1): a handful per scrape, independent of the 11,000 series.
                    met: Some(rt >= 2.0 && o.allocs <= 16.0),
                });
            }
        }
        _ => t.push(na(w)),
    }
    let w = "OpenMetrics scrape of the 11,000-series registry within 1.2× of our 0.0.4 scrape and ≥ 2× faster than prometheus-client's OpenMetrics encoder";
    match get(results, "encode") {
        Some(r) => match (
            r.arm(OURS),
            r.arm(metrics_wl::OURS_OPENMETRICS),
            r.arm(metrics_wl::PCLIENT),
        ) {
            (Some(text), Some(om), Some(pc)) => {
                let vs_text = om.cpu_ns / text.cpu_ns;
                let vs_pc = pc.cpu_ns / om.cpu_ns;
                t.push(Target {
                    what: w.into(),
                    measured: format!(
                        "{} vs 0.0.4 {} = {:.2}× the 0.0.4 cost; prometheus-client {} = {} ours; {} allocs/scrape",
                        fmt_ns(om.cpu_ns),
                        fmt_ns(text.cpu_ns),
                        vs_text,
                        fmt_ns(pc.cpu_ns),
                        fmt_ratio(vs_pc),
                        fmt_allocs(om.allocs)
                    ),
                    met: Some(vs_text <= 1.2 && vs_pc >= 2.0 && om.allocs <= 16.0),
                });
            }
            _ => t.push(na(w)),
        },
        None => t.push(na(w)),
    }
    let w = "span start + 2 attributes + event + finish ≥ 1.5× faster than the fastest peer (CPU incl. background threads), 0 allocations";
    match get(results, "span_basic") {
        Some(r) if r.arm(OURS).is_some() => {
            let o = r.arm(OURS).unwrap();
            let mut parts = Vec::new();
            let mut met = o.allocs == 0.0;
            for (label, libs) in [
                (
                    "fastest peer",
                    &[trace_wl::FASTRACE, trace_wl::OTEL, trace_wl::TRACING][..],
                ),
                (
                    "fastest peer that keeps the attributes and event",
                    &[trace_wl::FASTRACE, trace_wl::OTEL][..],
                ),
            ] {
                if let Some(b) = r
                    .arms
                    .iter()
                    .filter(|a| libs.contains(&a.lib))
                    .min_by(|a, b| a.cpu_ns.total_cmp(&b.cpu_ns))
                {
                    let rt = b.cpu_ns / o.cpu_ns;
                    if label == "fastest peer" {
                        met &= rt >= 1.5;
                    }
                    parts.push(format!(
                        "{label}: {} ({}) / {} = {}",
                        fmt_ns(b.cpu_ns),
                        b.lib,
                        fmt_ns(o.cpu_ns),
                        fmt_ratio(rt)
                    ));
                }
            }
            parts.push(format!("{} allocs/op", fmt_allocs(o.allocs)));
            t.push(Target {
                what: w.into(),
                measured: parts.join("; "),
                met: Some(met),
            });
        }
        _ => t.push(Target {
            what: w.into(),
            measured: "not measured in this run".into(),
            met: None,
        }),
    }
    t
}

fn main() {
    let args = parse_args();
    let machine = machine();
    let load_start = loadavg();
    trace_wl::init_globals();
    // The sink's span count against the official decoder, before any export row relies on it.
    sink::self_check();
    eprintln!(
        "mode: {} ({} rounds, {} ms samples)",
        if args.quick { "quick" } else { "full" },
        args.plan.rounds,
        args.plan.sample_ns / 1_000_000
    );
    if args.instructions {
        if !callgrind::SUPPORTED {
            eprintln!("{}", callgrind::UNSUPPORTED);
            std::process::exit(2);
        }
        instruction_counts(&args, &machine, &load_start);
        return;
    }
    let mut results = Vec::new();
    // The cross-core round trip just before and just after each workload (`cross_core`).
    let mut latency = Vec::new();
    for (_, make) in workloads(args.filter.as_deref()) {
        let w = make();
        let plan = plan_for(w.id, args.plan, args.quick);
        eprintln!(
            "measuring {} ({} arms, {} rounds)",
            w.id,
            w.arms.len(),
            plan.rounds
        );
        let before = cross_core::round_trip_ns();
        // The export rows' threads share data across the cores, and the two-thread counter's
        // threads share a core or not: their rounds say where the host had put the vCPUs.
        let each_round = w.id.starts_with("export_recording") || w.id == "counter_inc_2t";
        results.push(run_workload(w, plan, each_round));
        latency.push((before, cross_core::round_trip_ns()));
    }
    let throughput = if args
        .filter
        .as_deref()
        .is_none_or(|f| "export_throughput".contains(f))
    {
        eprintln!(
            "measuring export_throughput ({} rounds of {} spans)",
            args.plan.rounds.max(3),
            export_wl::DRAIN_SPANS
        );
        Some(export_wl::throughput(args.plan))
    } else {
        None
    };
    let export_totals = export_wl::totals();
    let memory_rows = if args.filter.as_deref().is_none_or(|f| "memory".contains(f)) {
        eprintln!(
            "measuring memory ({} scenarios, a child process each)",
            memory::SCENARIOS.len() * memory::LIBS.len()
        );
        memory::run()
    } else {
        Vec::new()
    };
    let load_end = loadavg();
    let realtime = metrics_wl::REALTIME.load(std::sync::atomic::Ordering::Relaxed);

    let mut out = String::new();
    let _ = writeln!(
        out,
        "Machine: {} ({} cores; {}; hypervisor {}), {}, kernel {}; {}; {}; mode {} ({} rounds × {} ms samples{}); load average {} at start, {} at end.\n",
        machine["cpu"].as_str().unwrap_or(""),
        machine["cores"],
        machine["caches"].as_str().unwrap_or(""),
        machine["hypervisor"].as_str().unwrap_or(""),
        machine["rustc"].as_str().unwrap_or(""),
        machine["kernel"].as_str().unwrap_or(""),
        machine["profile"].as_str().unwrap_or(""),
        machine["date_utc"].as_str().unwrap_or(""),
        if args.quick { "quick" } else { "full" },
        args.plan.rounds,
        args.plan.sample_ns / 1_000_000,
        if realtime {
            "; two-thread workload under SCHED_FIFO"
        } else {
            ""
        },
        load_start,
        load_end
    );
    out.push_str(
        "Ratios and targets use process CPU time per operation (all threads, so background \
         collectors are charged): on a shared machine, wall time also counts time spent waiting \
         for a CPU. The last table has the wall medians and minima too.\n\n",
    );
    let metric_ids = [
        "counter_inc",
        "counter_inc_2t",
        "labeled_inc",
        "histogram_observe",
        "labeled_histogram_observe",
        "summary_observe",
        "gauge_set",
        "encode",
        "record_tool_execution",
        "record_agent_created",
    ];
    let (mres, tres): (Vec<WorkloadResult>, Vec<WorkloadResult>) = results
        .iter()
        .cloned()
        .partition(|r| metric_ids.contains(&r.id));
    let (bres, tres): (Vec<WorkloadResult>, Vec<WorkloadResult>) = tres
        .into_iter()
        .filter(|r| !r.id.starts_with("record_") && !r.id.starts_with("export_"))
        .partition(|r| r.id.starts_with("bridge_"));
    if !mres.is_empty() {
        out.push_str("**Metrics** (median process CPU ns/op; ×ours = peer ÷ agentcore, above 1 means agentcore is faster)\n\n");
        summary_table(&mut out, &mres, &METRIC_LIBS, true);
        out.push('\n');
    }
    if !tres.is_empty() {
        out.push_str("**Tracing** (median process CPU ns/op, background threads included; ×ours = peer ÷ agentcore)\n\n");
        summary_table(&mut out, &tres, &TRACE_LIBS, true);
        out.push('\n');
    }
    if !bres.is_empty() {
        out.push_str("**Bridges** (the `tracing` and `metrics` facades' macros through our layer/recorder and through the peers they replace; median process CPU ns/op, background threads included; ×ours = peer ÷ agentcore)\n\n");
        summary_table(
            &mut out,
            &bres,
            &[OURS, bridge_wl::TRACING_OTEL, bridge_wl::METRICS_PROM],
            true,
        );
        out.push('\n');
    }
    out.push_str("**Every measurement**\n\n");
    detail_table(&mut out, &results);
    out.push('\n');
    let notes: Vec<String> = results
        .iter()
        .flat_map(|r| {
            r.arms
                .iter()
                .filter_map(move |a| a.note.map(|n| format!("- {}: {n}", r.id)))
        })
        .chain(
            results
                .iter()
                .filter_map(|r| r.todo.map(|t| format!("- {}: {t}", r.id))),
        )
        .chain(results.iter().flat_map(|r| {
            r.arms.iter().filter(|a| !a.co_running.is_nan()).map(move |a| {
                format!(
                    "- {}: {}: both threads ran at once during at least {:.0}% of the timed interval (median over rounds; from per-thread CPU time)",
                    r.id,
                    a.lib,
                    a.co_running * 100.0
                )
            })
        }))
        .collect();
    if !notes.is_empty() {
        out.push_str("Notes:\n\n");
        for n in notes {
            out.push_str(&n);
            out.push('\n');
        }
        out.push('\n');
    }
    span_export_section(&mut out, &results, &export_totals, throughput.as_ref());
    if !memory_rows.is_empty() {
        out.push_str("**Memory** (resident-set growth of a fresh process: one histogram family with the 11 default buckets and one label, its series created, then N threads all alive at once, each observing every series once through the labeled lookup; thread stacks included)\n\n");
        memory::table(&mut out, &memory_rows);
        out.push('\n');
    }
    if !latency.is_empty() {
        out.push_str("**Cross-core round trip** (one cache line passed between two threads pinned to CPUs 0 and 1, 50,000 times, just before and just after each workload: what every transfer of data between the cores cost then; on a virtual machine the host may move the vCPUs between near and distant cores while it runs)\n\n| workload | before | after |\n| --- | ---: | ---: |\n");
        for (r, (before, after)) in results.iter().zip(&latency) {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                r.id,
                cross_core::fmt(*before),
                cross_core::fmt(*after)
            );
        }
        out.push('\n');
    }
    let mut ts = targets(&results);
    ts.extend(export_targets(&results, &export_totals));
    out.push_str("**Targets**\n\n| target | measured | |\n| --- | --- | --- |\n");
    for t in &ts {
        let verdict = match t.met {
            Some(true) => "met",
            Some(false) => "**missed**",
            None => "no verdict",
        };
        let _ = writeln!(out, "| {} | {} | {verdict} |", t.what, t.measured);
    }
    print!("{out}");

    let doc = json!({
        "machine": machine,
        "mode": if args.quick { "quick" } else { "full" },
        "rounds": args.plan.rounds,
        "sample_ms": args.plan.sample_ns / 1_000_000,
        "loadavg_start": load_start,
        "loadavg_end": load_end,
        "realtime_two_threads": realtime,
        "workloads": results.iter().zip(&latency).map(|(r, (before, after))| json!({
            "id": r.id,
            "cross_core_round_trip_ns": [before, after],
            "title": r.title,
            "threads": r.threads,
            "todo": r.todo,
            "results": r.arms.iter().map(|a| json!({
                "lib": a.lib,
                "median_ns": a.wall_ns,
                "min_ns": a.wall_min_ns,
                "cpu_ns": a.cpu_ns,
                "allocs_per_op": a.allocs,
                "thread_cpu_ns": a.thread_cpu_ns,
                "thread_allocs_per_op": a.thread_allocs,
                "excluded_cpu_ns": a.excluded_cpu_ns,
                "co_running_lower_bound": if a.co_running.is_nan() { None } else { Some(a.co_running) },
                "iters_per_sample": a.iters,
                "ratio_to_ours_wall": ratio(r, a.lib, false),
                "ratio_to_ours_cpu": ratio(r, a.lib, true),
                "note": a.note,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "memory": memory_rows.iter().map(|r| json!({
            "threads": r.threads,
            "series": r.series,
            "growth_bytes": r.growth.iter().map(|(lib, g)| (lib.to_string(), json!(g))).collect::<serde_json::Map<_, _>>(),
        })).collect::<Vec<_>>(),
        "span_export": {
            "counts": export_totals.iter().map(|t| json!({
                "workload": t.workload,
                "lib": t.lib,
                "recorded": t.recorded,
                "exported": t.exported(),
                "dropped": t.dropped(),
                "failed": t.stats.as_ref().map(|s| s.failed),
                "rejected": t.stats.as_ref().map(|s| s.rejected),
                "dropped_queue_full": t.stats.as_ref().map(|s| s.dropped_queue_full),
                "dropped_overwritten": t.stats.as_ref().map(|s| s.dropped_overwritten),
                "sink_spans": t.sink_spans,
                "sink_requests": t.sink_requests,
                "sink_bytes": t.sink_bytes,
                "sink_bad_requests": t.sink_bad,
            })).collect::<Vec<_>>(),
            "throughput": throughput.as_ref().map(|t| json!({
                "spans_per_round": t.spans_per_round,
                "rounds": t.rounds,
                "spans_per_s_median": t.spans_per_s,
                "spans_per_s_min": t.spans_per_s_min,
                "spans_per_s_max": t.spans_per_s_max,
                "exporter_cpu_ns_per_span": t.exporter_cpu_ns,
                "sink_cpu_ns_per_span": t.sink_cpu_ns,
                "requests_per_round": t.requests_per_round,
                "bytes_per_span": t.bytes_per_span,
                "unclean_rounds": t.unclean_rounds,
                "exported": t.exported,
                "dropped": t.dropped,
                "failed": t.failed,
            })),
        },
        "targets": ts.iter().map(|t| json!({"target": t.what, "measured": t.measured, "met": t.met})).collect::<Vec<_>>(),
    });
    if let Some(dir) = args.json.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match std::fs::write(&args.json, serde_json::to_string_pretty(&doc).unwrap()) {
        Ok(()) => eprintln!("wrote {}", args.json.display()),
        Err(e) => eprintln!("could not write {}: {e}", args.json.display()),
    }
}

/// `--instructions`: callgrind instructions per operation of every arm of every single-threaded
/// workload (see `instructions.rs`), printed as a markdown table and written to the JSON.
fn instruction_counts(args: &Args, machine: &serde_json::Value, load_start: &str) {
    let mut results = Vec::new();
    for (id, make) in workloads(args.filter.as_deref()) {
        if instructions::SKIP.contains(&id) {
            continue;
        }
        let w = make();
        // The control arm's recording thread runs the baseline's instructions; its
        // neighbour would only slow valgrind down.
        let libs: Vec<&'static str> = w
            .arms
            .iter()
            .map(|a| a.lib)
            .filter(|&lib| lib != export_wl::OURS_NEIGHBOUR)
            .collect();
        let title = w.title;
        drop(w);
        eprintln!("counting {id} ({} arms, 2 callgrind runs each)", libs.len());
        results.push(instructions::count(id, title, &libs, args.cache_model));
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Instructions per operation under callgrind ({}; valgrind's x86-64 count, the same on any machine for this binary); {}, {}; {}; load average {load_start} at start (irrelevant to the counts).\n",
        machine["profile"].as_str().unwrap_or(""),
        machine["rustc"].as_str().unwrap_or(""),
        machine["cpu"].as_str().unwrap_or(""),
        machine["date_utc"].as_str().unwrap_or(""),
    );
    let metric: Vec<_> = results
        .iter()
        .filter(|r| !TRACE_IDS.contains(&r.id) && !r.id.starts_with("export_"))
        .cloned()
        .collect();
    if !metric.is_empty() {
        out.push_str("**Metrics** (instructions per operation; ×ours = peer ÷ agentcore)\n\n");
        instructions::table(&mut out, &metric, &METRIC_LIBS);
    }
    let trace: Vec<_> = results
        .iter()
        .filter(|r| TRACE_IDS.contains(&r.id))
        .cloned()
        .collect();
    if !trace.is_empty() {
        out.push_str("\n**Tracing** (instructions per operation, background threads included; ×ours = peer ÷ agentcore)\n\n");
        instructions::table(&mut out, &trace, &TRACE_LIBS);
    }
    let export: Vec<_> = results
        .iter()
        .filter(|r| r.id.starts_with("export_"))
        .cloned()
        .collect();
    if !export.is_empty() {
        out.push_str("\n**Span export** (instructions per span; `export_recording`: the recording thread only, without / with the OTLP exporter attached, threads serialised by valgrind; `export_process_cpu`: every thread, the loopback sink's included; ×ours = arm ÷ agentcore)\n\n");
        instructions::table(
            &mut out,
            &export,
            &[OURS, export_wl::OURS_EXPORTING, export_wl::OTLP],
        );
    }
    if args.cache_model {
        let _ = writeln!(
            out,
            "\n**The modeled older core** (callgrind's cache and branch simulation: {}; per operation, by the same difference of two runs: L1d misses, reads and writes · L2 misses, data and instructions · mispredicted branches, conditional and indirect; no prefetcher is simulated)\n",
            instructions::CACHE_MODEL.join(" ")
        );
        let all_libs: Vec<&str> = METRIC_LIBS
            .iter()
            .chain(TRACE_LIBS.iter())
            .chain([export_wl::OURS_EXPORTING, export_wl::OTLP].iter())
            .copied()
            .fold(Vec::new(), |mut v, l| {
                if !v.contains(&l) {
                    v.push(l);
                }
                v
            });
        for group in [&metric, &trace, &export] {
            if !group.is_empty() {
                instructions::modeled_table(&mut out, group, &all_libs);
                out.push('\n');
            }
        }
    }
    print!("{out}");
    let doc = json!({
        "machine": machine,
        "cache_model": args.cache_model.then(|| instructions::CACHE_MODEL.join(" ")),
        "instructions_per_op": results.iter().map(|r| json!({
            "id": r.id,
            "title": r.title,
            "ops_per_run": instructions::ops(r.id),
            "results": r.counts.iter().map(|c| {
                let mut o = json!({"lib": c.lib, "instructions": c.per_op});
                if let Some(m) = c.modeled {
                    o["modeled"] = json!({
                        "l1d_misses": m.l1d_misses,
                        "l2_misses": m.l2_misses,
                        "mispredicts": m.mispredicts,
                    });
                }
                o
            }).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    });
    let path = args.json.with_file_name(format!(
        "{}-instructions.json",
        args.json
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("compare")
    ));
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()) {
        Ok(()) => eprintln!("wrote {}", path.display()),
        Err(e) => eprintln!("could not write {}: {e}", path.display()),
    }
}

/// The tracing workloads (their own table, with the tracing libraries' columns).
const TRACE_IDS: [&str; 6] = [
    "span_basic",
    "span_nested",
    "span_unsampled",
    "macro_call",
    "traceparent",
    "traceparent_varied",
];

/// The span export rows (issue 12): the recording thread without / with the exporter, process
/// CPU per exported span against opentelemetry-otlp, one exporter thread's rate; with the
/// export counts of every arm (exported, dropped, what the sink received).
fn span_export_section(
    out: &mut String,
    results: &[WorkloadResult],
    totals: &[export_wl::Totals],
    throughput: Option<&export_wl::Throughput>,
) {
    let rec = get(results, "export_recording");
    let paced = get(results, "export_recording_paced");
    let cpu = get(results, "export_process_cpu");
    if rec.is_none() && paced.is_none() && cpu.is_none() && throughput.is_none() {
        return;
    }
    out.push_str("**Span export** (OTLP/HTTP protobuf to a loopback sink on 127.0.0.1: a std HTTP/1.1 server in this process, a thread per connection, keep-alive, reading every request in full and answering 200 with an empty body; its CPU time is excluded where process CPU is reported)\n\n");
    let counts = |workload: &str, lib: &str| {
        totals
            .iter()
            .find(|t| t.workload == workload && t.lib == lib)
    };
    let count_cells = |t: Option<&export_wl::Totals>| match t {
        Some(t) => format!(
            "{} | {} | {} | {} | {}",
            t.recorded,
            t.exported(),
            t.dropped(),
            t.sink_spans,
            t.sink_requests
        ),
        None => "– | – | – | – | –".into(),
    };
    let heads = [
        (rec, "S1 on the recording thread, flat out, without and with the exporter running, and the control (median of the rounds; thread CPU = `CLOCK_THREAD_CPUTIME_ID` of the recording thread, allocations counted on that thread only; × without: the medians' ratio, paired: the median of the per-round ratios, which the verdict uses):"),
        (paced, "S1 on the recording thread in bursts of 256 spans with 250 µs sleeps (a rate the exporter keeps up with), without and with the exporter running (as above; `dropped` includes the warm-up before each sample, see the target row for the samples):"),
    ];
    for (r, head) in heads {
        let Some(r) = r else { continue };
        out.push_str(head);
        out.push_str("\n\n| arm | recording-thread CPU ns/span | × without | paired | recording-thread allocs/span | process CPU ns/span (all threads) | wall ns/span | spans recorded | exported | dropped | sink: spans | sink: requests |\n");
        out.push_str(
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
        );
        let base = r.arm(export_wl::OURS);
        for a in &r.arms {
            let c = if a.lib == export_wl::OURS_EXPORTING {
                count_cells(counts(r.id, a.lib))
            } else {
                "n/a (no exporter) | – | – | – | –".to_string()
            };
            let (ratio, paired) = match base {
                Some(b) => (
                    a.thread_cpu_ns / b.thread_cpu_ns,
                    harness::paired_ratio(&b.thread_cpu_rounds, &a.thread_cpu_rounds),
                ),
                None => (f64::NAN, f64::NAN),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {c} |",
                a.lib,
                fmt_ns(a.thread_cpu_ns),
                fmt_ratio(ratio),
                fmt_ratio(paired),
                fmt_allocs(a.thread_allocs),
                fmt_ns(a.cpu_ns),
                fmt_ns(a.wall_ns),
            );
        }
        out.push('\n');
    }
    if let Some(r) = cpu {
        out.push_str("Process CPU per exported span: recording + encoding + sending, every thread of the process except the sink's (median of the rounds; spans recorded in chunks of 8,192, each followed by `force_flush`, so every span is exported):\n\n");
        out.push_str("| library | process CPU ns/span (sink excluded) | × agentcore | sink CPU ns/span (excluded) | wall ns/span | allocs/span (all threads) | bytes/span sent | spans recorded | exported | dropped | sink: spans | sink: requests |\n");
        out.push_str("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
        let base = r.arm(export_wl::OURS).map_or(f64::NAN, |a| a.cpu_ns);
        for a in &r.arms {
            let t = counts(r.id, a.lib);
            let bytes = t.map_or(f64::NAN, |t| {
                t.sink_bytes as f64 / t.sink_spans.max(1) as f64
            });
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {:.0} | {} |",
                a.lib,
                fmt_ns(a.cpu_ns),
                fmt_ratio(a.cpu_ns / base),
                fmt_ns(a.excluded_cpu_ns),
                fmt_ns(a.wall_ns),
                fmt_allocs(a.allocs),
                bytes,
                count_cells(t),
            );
        }
        out.push('\n');
    }
    if let Some(t) = throughput {
        out.push_str("One exporter thread of ours, encoding and sending: the span log pre-filled with S1 spans while the exporter sleeps or waits for the sink, which holds its answers until the timing starts, then `force_flush` timed while the thread drains them in batches of 512 (each a POST answered before the next; no producer competes for the 2 cores):\n\n");
        out.push_str("| spans per drain | rounds | spans/s (wall, median) | min – max | exporter CPU ns/span | → spans/s per busy core | sink CPU ns/span (excluded) | requests per drain | bytes/span | exported | dropped | failed | rounds the exporter finished an export early |\n");
        out.push_str("| ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
        let _ = writeln!(
            out,
            "| {} | {} | {:.2} M | {:.2} M – {:.2} M | {} | {:.2} M | {} | {:.0} | {:.0} | {} | {} | {} | {} |\n",
            t.spans_per_round,
            t.rounds,
            t.spans_per_s / 1e6,
            t.spans_per_s_min / 1e6,
            t.spans_per_s_max / 1e6,
            fmt_ns(t.exporter_cpu_ns),
            1e3 / t.exporter_cpu_ns,
            fmt_ns(t.sink_cpu_ns),
            t.requests_per_round,
            t.bytes_per_span,
            t.exported,
            t.dropped,
            t.failed,
            t.unclean_rounds,
        );
    }
    for t in totals {
        if t.sink_bad > 0 {
            let _ = writeln!(
                out,
                "- {} / {}: the sink received {} empty or undecodable requests\n",
                t.workload, t.lib, t.sink_bad
            );
        }
    }
}

/// The plan for workload `id`: the run's, except that `export_recording` takes at least 201
/// rounds of 20 ms in a full run. It runs three busy threads (recording, exporter, sink) on what
/// may be two CPUs, and its 10 ms samples moved with where the scheduler put them: the
/// with/without ratio of 41 rounds ranged 0.87×–1.34× over twenty runs of one tree, while 201
/// rounds of 20 ms gave 0.97×–1.02× (2026-11-30, the 2-vCPU EPYC of benches/README.md).
fn plan_for(id: &str, plan: Plan, quick: bool) -> Plan {
    if id.starts_with("export_recording") && !quick {
        Plan {
            rounds: plan.rounds.max(201),
            sample_ns: plan.sample_ns.max(20_000_000),
            ..plan
        }
    } else {
        plan
    }
}

/// The issue 12 targets, from this run's numbers.
fn export_targets(results: &[WorkloadResult], totals: &[export_wl::Totals]) -> Vec<Target> {
    let mut t = Vec::new();
    for (id, w) in [
        ("export_recording", "S1 recording-thread cost with the OTLP exporter running ≤ 1.10× without, 0 allocations on the recording thread (flat out: the exporter busy, dropping)"),
        ("export_recording_paced", "the same in bursts of 256 spans with 250 µs sleeps, a rate the exporter keeps up with"),
    ] {
        let Some(r) = get(results, id) else {
            t.push(Target {
                what: w.into(),
                measured: "not measured in this run".into(),
                met: None,
            });
            continue;
        };
        let (Some(a), Some(b)) = (r.arm(export_wl::OURS), r.arm(export_wl::OURS_EXPORTING)) else {
            continue;
        };
        // The verdict takes the ratio paired by round: both arms sample back to back in
        // each round, and the machine's drift between rounds (the ratio of the two medians
        // moved from 0.87× to 1.34× over eight runs of this tree) cancels within a pair.
        let rt = harness::paired_ratio(&a.thread_cpu_rounds, &b.thread_cpu_rounds);
        let control = r
            .arm(export_wl::OURS_NEIGHBOUR)
            .map(|c| {
                format!(
                    "; the control (no exporter, a memory-streaming neighbour): {:.3}× paired",
                    harness::paired_ratio(&a.thread_cpu_rounds, &c.thread_cpu_rounds)
                )
            })
            .unwrap_or_default();
        let by_latency = by_round_trip(r, &a.thread_cpu_rounds, &b.thread_cpu_rounds);
        let dropped = if id == "export_recording_paced" {
            format!(
                "; while the samples ran the exporter exported {} spans and dropped {}; they recorded {}",
                export_wl::PACED_EXPORTED.load(std::sync::atomic::Ordering::Relaxed),
                export_wl::PACED_DROPPED.load(std::sync::atomic::Ordering::Relaxed),
                export_wl::PACED_SAMPLED.load(std::sync::atomic::Ordering::Relaxed)
            )
        } else {
            totals
                .iter()
                .find(|x| x.workload == id && x.lib == export_wl::OURS_EXPORTING)
                .map(|x| format!("; {} dropped of {} recorded", x.dropped(), x.recorded))
                .unwrap_or_default()
        };
        t.push(Target {
            what: w.into(),
            measured: format!(
                "{} vs {} (medians; {:.3}×), paired by round: median {:.3}× over {} rounds{by_latency}; {} allocs/span on the recording thread with the exporter ({} without){control}{dropped}",
                fmt_ns(b.thread_cpu_ns),
                fmt_ns(a.thread_cpu_ns),
                b.thread_cpu_ns / a.thread_cpu_ns,
                rt,
                a.thread_cpu_rounds.len(),
                fmt_allocs(b.thread_allocs),
                fmt_allocs(a.thread_allocs)
            ),
            // The paced row's premise is an exporter that keeps up: it must have dropped at
            // most 5% of what the samples recorded.
            met: Some(
                rt <= 1.10
                    && b.thread_allocs == 0.0
                    && (id != "export_recording_paced"
                        || export_wl::PACED_DROPPED.load(std::sync::atomic::Ordering::Relaxed) * 20
                            <= export_wl::PACED_SAMPLED.load(std::sync::atomic::Ordering::Relaxed)),
            ),
        });
    }
    let w = "process CPU per exported span (all threads) ≥ 5× less than opentelemetry-otlp with its batch processor, same sink";
    match get(results, "export_process_cpu")
        .map(|r| (r.arm(export_wl::OURS), r.arm(export_wl::OTLP)))
    {
        Some((Some(a), Some(b))) => {
            let rt = b.cpu_ns / a.cpu_ns;
            let all_exported = totals
                .iter()
                .filter(|c| c.workload == "export_process_cpu")
                .all(|c| {
                    c.sink_spans == c.recorded && c.exported() == c.recorded && c.dropped() == 0
                });
            t.push(Target {
                what: w.into(),
                measured: format!(
                    "{} (opentelemetry-otlp) / {} (agentcore) = {}; every recorded span received by the sink: {}",
                    fmt_ns(b.cpu_ns),
                    fmt_ns(a.cpu_ns),
                    fmt_ratio(rt),
                    if all_exported { "yes" } else { "**no**" }
                ),
                met: Some(rt >= 5.0 && all_exported),
            });
        }
        _ => t.push(Target {
            what: w.into(),
            measured: "not measured in this run".into(),
            met: None,
        }),
    }
    t
}

/// The paired ratio of `b` to `a` (per-round values of two arms of `r`), grouped by the
/// cross-core round trip measured before each round (`cross_core`): "; paired, by the
/// cross-core round trip measured before the round: < 45 ns 1.411× (30 rounds), ...", or
/// nothing when the rounds were not measured.
fn by_round_trip(r: &WorkloadResult, a: &[f64], b: &[f64]) -> String {
    if r.round_trips.len() != a.len() || a.len() != b.len() {
        return String::new();
    }
    let classes: [(&str, f64, f64); 3] = [
        ("< 45 ns", 0.0, 45.0),
        ("45–150 ns", 45.0, 150.0),
        ("> 150 ns", 150.0, f64::INFINITY),
    ];
    let parts: Vec<String> = classes
        .iter()
        .filter_map(|&(name, lo, hi)| {
            let (x, y): (Vec<f64>, Vec<f64>) = r
                .round_trips
                .iter()
                .zip(a.iter().zip(b))
                .filter(|(rt, _)| rt.is_some_and(|v| v >= lo && v < hi))
                .map(|(_, (x, y))| (*x, *y))
                .unzip();
            (!x.is_empty()).then(|| {
                format!(
                    "{name} {:.3}× ({} rounds)",
                    harness::paired_ratio(&x, &y),
                    x.len()
                )
            })
        })
        .collect();
    format!(
        "; paired, by the cross-core round trip measured before the round: {}",
        parts.join(", ")
    )
}
