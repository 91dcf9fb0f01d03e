//! Issue 17: recording memory grows with the number of cores, not the number of threads.
//!
//! Each scenario runs in a child process (this test binary re-run with an environment variable)
//! so that its resident-set growth is its own: a registry of histogram series (default buckets,
//! one label), then N threads that are all alive at once, each observing every series once. The
//! previous design gave every recording thread its own copy of every series (256 threads x 10 000
//! histograms: 267 MB, tikv `prometheus` 13.8 MB); now threads beyond the arena's exclusive blocks
//! share its stripes, so the growth is bounded by `blocks x live words x 8 bytes` plus each
//! series' own state, whatever N is. The growth against tikv `prometheus` in the same run is the
//! comparison harness's memory row (`benches/compare`).
#![cfg(target_os = "linux")]

use std::process::Command;
use std::sync::{Arc, Barrier};
use std::thread;

use agentcore_telemetry::registry::self_metrics::arena_stats;
use agentcore_telemetry::{Buckets, Registry};

mod support;
use support::child_output::tagged;

const CHILD: &str = "AGENTCORE_MEMORY_CHILD";

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split(' ').nth(1).unwrap().parse().unwrap();
    // SAFETY: sysconf has no preconditions.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64
}

/// The child: `threads` threads alive at once, each observing every one of `series` series.
fn scenario(threads: usize, series: usize) {
    let baseline = rss_bytes();
    let registry = Registry::new();
    let family = registry
        .histogram_family("req_seconds", "Latency.", &["id"], Buckets::default())
        .unwrap();
    let ids: Arc<Vec<String>> = Arc::new((0..series).map(|i| format!("series-{i}")).collect());
    for id in ids.iter() {
        family.with_label_values(&[id.as_str()]).unwrap();
    }
    let after_series = rss_bytes();
    let recorded = Arc::new(Barrier::new(threads + 1));
    let release = Arc::new(Barrier::new(threads + 1));
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (family, ids) = (family.clone(), ids.clone());
            let (recorded, release) = (recorded.clone(), release.clone());
            thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    for (i, id) in ids.iter().enumerate() {
                        let v = ((t + i) % 100) as f64 / 10.0;
                        family.with_label_values(&[id.as_str()]).unwrap().observe(v);
                    }
                    recorded.wait();
                    release.wait();
                })
                .unwrap()
        })
        .collect();
    recorded.wait();
    let after_threads = rss_bytes();
    let arena = arena_stats();
    // Every observation is there.
    let mut total = 0u64;
    family.for_each_series(|s| total += s.metric().snapshot().count);
    release.wait();
    for w in workers {
        w.join().unwrap();
    }
    println!(
        "MEMORY threads={threads} series={series} baseline={baseline} after_series={after_series} \
         after_threads={after_threads} blocks={} max_blocks={} live_words={} total={total}",
        arena.exclusive_blocks + arena.stripes,
        arena.max_exclusive_blocks + arena.max_stripes,
        arena.live_words,
    );
}

fn run(threads: usize, series: usize) {
    if let Ok(spec) = std::env::var(CHILD) {
        if spec == format!("{threads}x{series}") {
            scenario(threads, series);
        }
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "--nocapture",
            &format!("_{threads}_threads_x_{series}_series"),
        ])
        .env(CHILD, format!("{threads}x{series}"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = tagged(&stdout, "MEMORY ").unwrap_or_else(|| panic!("no MEMORY line: {stdout}"));
    eprintln!("{line}");
    let field = |name: &str| -> u64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(field("total"), (threads * series) as u64, "{line}");
    assert!(field("blocks") <= field("max_blocks"), "{line}");
    // What the threads added: each block's pages of the series' words (a histogram series is a
    // 16-word range), plus the threads' own stacks and thread-local storage (64 KiB each,
    // generously), which any library pays.
    let recording = field("max_blocks") * field("live_words") * 8;
    let stacks = threads as u64 * 64 * 1024;
    let growth = field("after_threads").saturating_sub(field("after_series"));
    assert!(
        growth <= recording + stacks,
        "{threads} threads grew the resident set by {growth} bytes, above the bound {} \
         ({recording} for {} blocks x {} words, {stacks} for stacks): {line}",
        recording + stacks,
        field("max_blocks"),
        field("live_words"),
    );
    // The whole registry, series and recording included (stacks aside), against what one copy
    // of the series' words per thread would cost: at least ten times less.
    let per_thread_copies = threads as u64 * field("live_words") * 8;
    let total_growth = field("after_threads").saturating_sub(field("baseline") + stacks);
    assert!(total_growth * 10 <= per_thread_copies, "{line}");
}

#[test]
fn _256_threads_x_10000_series() {
    run(256, 10_000);
}

#[test]
fn _1000_threads_x_1000_series() {
    run(1000, 1000);
}
