//! The memory row (issue 17): resident memory of N threads × M histogram series, ours against
//! tikv `prometheus`, each scenario in a fresh child process of this binary
//! (`--memory-child LIBRARY THREADS SERIES`) so that its resident-set growth is its own.
//!
//! A child reads its resident set (`/proc/self/statm`) first, builds one histogram family
//! (Prometheus' 11 default buckets, one label) with `SERIES` series, then starts `THREADS`
//! threads that are all alive at once, each observing every series once through the family's
//! labeled lookup, and reads its resident set again while they are all still alive. The growth
//! is what the library's series and the recording threads cost together (thread stacks and
//! thread-local storage included, the same 256 KiB stack reservation for both libraries, of
//! which only the touched pages count). The child checks that every observation is there.

use std::fmt::Write as _;
use std::hint::black_box;
use std::process::Command;
use std::sync::Barrier;

use crate::metrics_wl::{DEFAULT_BUCKETS, OURS, TIKV};

/// The scenarios: issue 17's table (10 000 series, 1 to 256 threads) and 1 000 threads × 1 000
/// series.
pub const SCENARIOS: [(usize, usize); 5] = [
    (1, 10_000),
    (16, 10_000),
    (64, 10_000),
    (256, 10_000),
    (1000, 1_000),
];

pub const LIBS: [&str; 2] = [OURS, TIKV];

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split(' ')
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64
}

/// Runs `threads` threads, all alive at once, each calling `observe(thread, series_index)` for
/// every series; returns the resident set while they are all alive.
fn record_on_threads<F: Fn(usize, usize) + Sync>(threads: usize, series: usize, observe: F) -> u64 {
    let recorded = Barrier::new(threads + 1);
    let release = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        for t in 0..threads {
            let (observe, recorded, release) = (&observe, &recorded, &release);
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn_scoped(s, move || {
                    for i in 0..series {
                        observe(t, i);
                    }
                    recorded.wait();
                    release.wait();
                })
                .expect("spawn");
        }
        recorded.wait();
        let rss = rss_bytes();
        release.wait();
        rss
    })
}

fn value(t: usize, i: usize) -> f64 {
    ((t + i) % 100) as f64 / 10.0
}

/// The child: prints `MEMORY baseline=.. after=.. count=..`.
pub fn child(lib: &str, threads: usize, series: usize) {
    let ids: Vec<String> = (0..series).map(|i| format!("series-{i}")).collect();
    let baseline = rss_bytes();
    let (after, count) = match lib {
        OURS => {
            let registry = agentcore_telemetry::Registry::new();
            let family = registry
                .histogram_family(
                    "req_seconds",
                    "Latency.",
                    &["id"],
                    agentcore_telemetry::Buckets::default(),
                )
                .expect("family");
            for id in &ids {
                family.with_label_values(&[id.as_str()]).expect("series");
            }
            let after = record_on_threads(threads, series, |t, i| {
                black_box(&family)
                    .with_label_values(&[ids[i].as_str()])
                    .expect("series")
                    .observe(value(t, i));
            });
            let mut count = 0;
            family.for_each_series(|s| count += s.metric().snapshot().count);
            (after, count)
        }
        TIKV => {
            let family = prometheus::HistogramVec::new(
                prometheus::HistogramOpts::new("req_seconds", "Latency.")
                    .buckets(DEFAULT_BUCKETS.to_vec()),
                &["id"],
            )
            .expect("family");
            for id in &ids {
                family.with_label_values(&[id.as_str()]);
            }
            let after = record_on_threads(threads, series, |t, i| {
                black_box(&family)
                    .with_label_values(&[ids[i].as_str()])
                    .observe(value(t, i));
            });
            let count = ids
                .iter()
                .map(|id| family.with_label_values(&[id.as_str()]).get_sample_count())
                .sum();
            (after, count)
        }
        _ => panic!("--memory-child: unknown library {lib}"),
    };
    assert_eq!(count, (threads * series) as u64, "observations lost");
    println!("MEMORY baseline={baseline} after={after} count={count}");
}

/// One scenario's growth per library, in bytes (`None`: the child failed).
#[derive(Debug, Clone)]
pub struct Row {
    pub threads: usize,
    pub series: usize,
    pub growth: Vec<(&'static str, Option<u64>)>,
}

fn run_child(lib: &str, threads: usize, series: usize) -> Option<u64> {
    let out = Command::new(std::env::current_exe().ok()?)
        .args([
            "--memory-child",
            lib,
            &threads.to_string(),
            &series.to_string(),
        ])
        .output()
        .ok()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        eprintln!(
            "  memory {lib} {threads}x{series}: child failed: {}",
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
        return None;
    }
    let line = stdout.lines().find_map(|l| l.strip_prefix("MEMORY "))?;
    let field = |name: &str| -> Option<u64> {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))?
            .parse()
            .ok()
    };
    Some(field("after")?.saturating_sub(field("baseline")?))
}

/// Runs every scenario for every library, one child process each.
pub fn run() -> Vec<Row> {
    SCENARIOS
        .iter()
        .map(|&(threads, series)| {
            let growth = LIBS
                .iter()
                .map(|&lib| {
                    let g = run_child(lib, threads, series);
                    eprintln!(
                        "  memory {lib} {threads} threads x {series} series: {}",
                        g.map_or("failed".into(), fmt_mb)
                    );
                    (lib, g)
                })
                .collect();
            Row {
                threads,
                series,
                growth,
            }
        })
        .collect()
}

pub fn fmt_mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

pub fn table(out: &mut String, rows: &[Row]) {
    out.push_str("| threads × histogram series | agentcore | prometheus | ours ÷ prometheus |\n");
    out.push_str("| --- | ---: | ---: | ---: |\n");
    for r in rows {
        let get = |lib: &str| r.growth.iter().find(|g| g.0 == lib).and_then(|g| g.1);
        let (o, t) = (get(OURS), get(TIKV));
        let cell = |g: Option<u64>| g.map_or("failed".into(), fmt_mb);
        let ratio = match (o, t) {
            (Some(o), Some(t)) if t > 0 => format!("{:.2}×", o as f64 / t as f64),
            _ => "n/a".into(),
        };
        let _ = writeln!(
            out,
            "| {} × {} | {} | {} | {ratio} |",
            r.threads,
            r.series,
            cell(o),
            cell(t)
        );
    }
}
