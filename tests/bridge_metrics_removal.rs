//! The `metrics` bridge and series removed from the registry (`Family::remove`, `retain`,
//! `clear`, `MetricsCollector::remove_agent`): a key the recorder has cached notices that its
//! series is gone, and its next write creates a fresh series that the next scrape shows, as the
//! direct `Family::with_label_values` API does; and the recorder keeps no removed series alive,
//! so agent churn leaves its memory (and the slot arena) bounded.
//!
//! The slot arena is process-wide, and the churn test measures it: every test here holds
//! `ARENA` so that none allocates metrics while it counts.

use agentcore_telemetry::bridge::metrics_recorder::AgentcoreRecorder;
use agentcore_telemetry::registry::self_metrics::arena_stats;
use agentcore_telemetry::registry::FamilyOptions;
use agentcore_telemetry::{
    AgentPhilosophy, Buckets, CollectorConfig, Counter, Family, Gauge, Histogram, MetricsCollector,
    Registry,
};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};
use support::exposition::{parse, value};

mod support;

static ARENA: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    ARENA.lock().unwrap_or_else(|e| e.into_inner())
}

fn scraped(registry: &Registry, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    value(
        &parse(&registry.encode_text()).expect("a valid exposition"),
        name,
        labels,
    )
}

/// A counter, a gauge and a histogram written through the bridge, their series removed (by
/// `remove`, by `clear`, and by `remove` followed by the direct API creating the series again),
/// then written again through the same keys: each write after the removal is in the scrape,
/// in the live series, starting over from zero.
#[test]
fn a_cached_key_whose_series_was_removed_records_into_a_fresh_series() {
    let _serial = serial();
    let registry = Registry::new();
    let recorder = AgentcoreRecorder::new(&registry);
    let write = |n: u64| {
        metrics::with_local_recorder(&recorder, || {
            metrics::counter!("jobs_total", "queue" => "a").increment(n);
            metrics::gauge!("queue_depth", "queue" => "a").set(n as f64);
            metrics::histogram!("job_seconds", "queue" => "a").record(n as f64);
        })
    };
    write(1);
    let options = FamilyOptions::default;
    let jobs = registry
        .get_or_register::<Counter>("jobs_total", "", &["queue"], (), options())
        .unwrap();
    let depth = registry
        .get_or_register::<Gauge>("queue_depth", "", &["queue"], (), options())
        .unwrap();
    let latency = registry
        .get_or_register::<Histogram>("job_seconds", "", &["queue"], Buckets::default(), options())
        .unwrap();
    write(2); // the cached path
    assert_eq!(
        scraped(&registry, "jobs_total", &[("queue", "a")]),
        Some(3.0)
    );

    // `remove`.
    assert!(jobs.remove(&["a"]) && depth.remove(&["a"]) && latency.remove(&["a"]));
    write(5);
    assert_eq!(
        scraped(&registry, "jobs_total", &[("queue", "a")]),
        Some(5.0)
    );
    assert_eq!(
        scraped(&registry, "queue_depth", &[("queue", "a")]),
        Some(5.0)
    );
    assert_eq!(
        scraped(&registry, "job_seconds_count", &[("queue", "a")]),
        Some(1.0)
    );

    // `clear` (which is `retain`).
    jobs.clear();
    depth.clear();
    latency.clear();
    write(7);
    assert_eq!(
        scraped(&registry, "jobs_total", &[("queue", "a")]),
        Some(7.0)
    );
    assert_eq!(
        scraped(&registry, "queue_depth", &[("queue", "a")]),
        Some(7.0)
    );
    assert_eq!(
        scraped(&registry, "job_seconds_sum", &[("queue", "a")]),
        Some(7.0)
    );

    // Removed, then created again through the direct API before the bridge writes: the bridge
    // writes into that new series, not into the one it cached.
    assert!(jobs.remove(&["a"]));
    jobs.with_label_values(&["a"]).unwrap().inc_by(10);
    write(1);
    assert_eq!(
        scraped(&registry, "jobs_total", &[("queue", "a")]),
        Some(11.0)
    );
    assert_eq!(jobs.len(), 1);
    assert_eq!(recorder.rejected(), 0);
}

/// The realistic flow: a `metrics`-instrumented agent reports into the collector's per-agent
/// family, `remove_agent` drops the agent's series when it ends, and the agent comes back with
/// the same id (a restart): its reports reach the scrape again.
#[test]
fn writes_after_remove_agent_reach_the_scrape() {
    let _serial = serial();
    let collector =
        MetricsCollector::with_registry(Registry::new(), CollectorConfig::default()).unwrap();
    let recorder = AgentcoreRecorder::new(collector.get_registry());
    let report = |mb: f64| {
        metrics::with_local_recorder(&recorder, || {
            metrics::gauge!("agentcore_agent_memory_mb", "agent_id" => "agent-1", "philosophy" => "react")
                .set(mb)
        })
    };
    let memory = |text: &str| {
        value(
            &parse(text).expect("a valid exposition"),
            "agentcore_agent_memory_mb",
            &[("agent_id", "agent-1"), ("philosophy", "react")],
        )
    };
    report(100.0);
    assert_eq!(memory(&collector.encode_text()), Some(100.0));
    assert!(collector.remove_agent("agent-1") >= 1); // the agent ended
    assert_eq!(memory(&collector.encode_text()), None);
    report(256.0); // restarted with the same id
    collector.update_resource_usage("agent-2", AgentPhilosophy::React, 1.0, 1.0);
    let text = collector.encode_text();
    assert_eq!(
        memory(&text),
        Some(256.0),
        "agent-1's memory after its restart:\n{}",
        text.lines()
            .filter(|l| l.contains("agent_memory_mb"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(recorder.rejected(), 0);
}

/// Agent churn: 20,000 agents each write through the bridge, then `remove_agent` drops their
/// series. The recorder keeps none of them alive: the slot-arena words still live afterwards
/// stay within a small constant (the recorder's cache of live keys, and removed entries waiting
/// for reclamation), as through the collector's own API, instead of two words per agent ever
/// seen (40,000 here).
#[test]
fn agent_churn_leaves_the_bridge_bounded() {
    let _serial = serial();
    const AGENTS: usize = 20_000;
    /// Far below the two words each churned agent would keep if the bridge kept them.
    const BOUND: i64 = 1_024;
    let collector =
        MetricsCollector::with_registry(Registry::new(), CollectorConfig::default()).unwrap();
    let recorder = AgentcoreRecorder::new(collector.get_registry());
    let before = arena_stats().live_words as i64;
    for i in 0..AGENTS {
        let id = format!("direct-{i}");
        collector.record_autonomous_decision(&id);
        collector.remove_agent(&id);
    }
    let direct_growth = arena_stats().live_words as i64 - before;
    let before = arena_stats().live_words as i64;
    for i in 0..AGENTS {
        let id = format!("bridged-{i}");
        metrics::with_local_recorder(&recorder, || {
            metrics::counter!("agentcore_autonomous_decisions_total", "agent_id" => id.clone())
                .increment(1)
        });
        collector.remove_agent(&id);
    }
    let bridged_growth = arena_stats().live_words as i64 - before;
    let series = collector
        .snapshot_metrics()
        .get("agentcore_autonomous_decisions_total")
        .unwrap()
        .series
        .len();
    eprintln!(
        "arena words still live: direct API +{direct_growth}, through the bridge +{bridged_growth}"
    );
    assert_eq!(series, 0);
    assert!(
        bridged_growth < BOUND,
        "{AGENTS} ended agents left {bridged_growth} arena words live through the bridge \
         (direct API: {direct_growth}), with 0 series in the family"
    );
    // The recorder still works for a live agent afterwards.
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("agentcore_autonomous_decisions_total", "agent_id" => "last").increment(3)
    });
    assert_eq!(
        scraped(
            collector.get_registry(),
            "agentcore_autonomous_decisions_total",
            &[("agent_id", "last")]
        ),
        Some(3.0)
    );
}

/// Removals racing writes: threads write the same keys while another removes and clears their
/// series over and over. A write racing a removal may be lost (as with the direct API), but
/// nothing panics, and once the removals stop every key records into a live series again.
#[test]
fn removals_racing_writes_never_break_a_key() {
    let _serial = serial();
    let registry = Registry::new();
    let recorder = AgentcoreRecorder::new(&registry);
    let family = registry
        .get_or_register::<Counter>("work_total", "", &["shard"], (), FamilyOptions::default())
        .unwrap();
    let stop = AtomicBool::new(false);
    let writes = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..3 {
            let (recorder, stop, writes) = (recorder.clone(), &stop, &writes);
            s.spawn(move || {
                metrics::with_local_recorder(&recorder, || {
                    while !stop.load(Relaxed) {
                        for shard in ["0", "1", "2", "3"] {
                            metrics::counter!("work_total", "shard" => shard).increment(1);
                        }
                        writes.fetch_add(4, Relaxed);
                    }
                })
            });
        }
        let mut round = 0;
        while round < 2_000 || writes.load(Relaxed) < 100_000 {
            if round % 2 == 0 {
                family.remove(&[(round / 2 % 4).to_string()]);
            } else {
                family.clear();
            }
            round += 1;
        }
        stop.store(true, Relaxed);
    });
    family.clear();
    metrics::with_local_recorder(&recorder, || {
        for shard in ["0", "1", "2", "3"] {
            metrics::counter!("work_total", "shard" => shard).increment(1);
        }
    });
    for shard in ["0", "1", "2", "3"] {
        assert_eq!(
            scraped(&registry, "work_total", &[("shard", shard)]),
            Some(1.0),
            "shard {shard}"
        );
    }
    assert_eq!(recorder.rejected(), 0);
}

/// The slow path took "not in the table and the family is full" for a fold, and handed back the
/// metric `get_or_create` had just returned: when that was the key's own series, removed in
/// between while other series filled the family, the family's first fold in this recorder made
/// that removed series its overflow handle for good, and every later fold through the recorder
/// wrote into it, never scraped (found by a review of 1e7a6c3). Each trial: a fresh registry
/// and recorder (cap 2), a family {a, k} (full); one thread toggles it between {a, k} and
/// {a, b} (always full but for a moment) while the bridge writes `k`; then the family is made
/// full without `z`, and `z`, written through the bridge, must land in the exposed overflow
/// series.
#[test]
#[ignore = "a race stress test: run with --release -- --ignored (30 s); it failed within 20 s in release before the fix, and a debug build does not reach the window"]
fn a_fold_racing_a_removal_never_makes_a_removed_series_the_overflow_handle() {
    let _serial = serial();
    // A long label value: comparing it is what widens the window between `series()`'s
    // `get_or_create` (which found the series) and its `get` (which no longer does).
    // In a static, not leaked, so that LeakSanitizer finds it reachable (`.ci/asan`).
    static LONG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let long: &'static str = LONG.get_or_init(|| "k".repeat(64 * 1024));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut trial = 0;
    while std::time::Instant::now() < deadline {
        trial += 1;
        let registry = Registry::new();
        let recorder = AgentcoreRecorder::builder().max_series(2).build(&registry);
        metrics::with_local_recorder(&recorder, || {
            metrics::counter!("fold_total", "l" => "a").increment(0)
        });
        let family: Family<Counter> = registry
            .get_or_register(
                "fold_total",
                "",
                &["l"],
                (),
                FamilyOptions {
                    max_series: 2,
                    ..FamilyOptions::default()
                },
            )
            .unwrap();
        family.get_or_create(&[long]).unwrap(); // {a, k}: full
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                while !stop.load(Relaxed) {
                    // Removes `k` without comparing its value: fast.
                    family.retain(|v, _| v.first().is_none_or(|x| x.len() != long.len()));
                    let _ = family.get_or_create(&["b"]); // full again, without `k`
                    family.remove(&["b"]);
                    let _ = family.get_or_create(&[long]);
                }
            });
            metrics::with_local_recorder(&recorder, || {
                for _ in 0..2_000 {
                    metrics::counter!("fold_total", "l" => long).increment(1);
                }
            });
            stop.store(true, Relaxed);
        });
        // Full without `z`: `z` is folded into the overflow series.
        family.clear();
        family.get_or_create(&["a"]).unwrap();
        family.get_or_create(&["b"]).unwrap();
        let overflow = family.get_or_create(&["__overflow__"]).unwrap();
        let before = overflow.get();
        metrics::with_local_recorder(&recorder, || {
            metrics::counter!("fold_total", "l" => "z").increment(1_000)
        });
        let after = overflow.get();
        let scraped = registry.encode_text();
        assert_eq!(
            after - before,
            1_000.0,
            "trial {trial}: `z`, folded into the overflow series (family.overflowed() = {}), \
             did not reach it (overflow series {before} -> {after}); scrape: {:?}",
            family.overflowed(),
            scraped
                .lines()
                .filter(|l| l.starts_with("fold_total") && l.len() < 200)
                .collect::<Vec<_>>()
        );
    }
    eprintln!("{trial} trials, no wrong overflow handle");
}
