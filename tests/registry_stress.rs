//! Concurrency stress: writers record known totals while a scraper scrapes and parses every
//! exposition strictly (histogram invariants included), and writer threads exit midway. The final
//! scrape must show exactly the expected totals: nothing recorded by an exited thread is lost.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use agentcore_telemetry::{Buckets, Registry};
use support::exposition::{parse, value};

const WAVES: usize = 3;
const WRITERS_PER_WAVE: usize = 3;
const OPS: u64 = 100_000;

#[test]
fn exact_totals_with_concurrent_writers_scrapes_and_thread_exits() {
    let registry = Registry::new();
    let ops = registry
        .counter_family("ops_total", "Ops.", &["worker"])
        .unwrap();
    let all = registry.counter("all_total", "All ops.").unwrap();
    let frac = registry.counter("frac_total", "Fractional adds.").unwrap();
    let lat = registry
        .histogram_family(
            "lat_seconds",
            "Latency.",
            &["kind"],
            Buckets::new(vec![0.25, 0.5, 0.75]).unwrap(),
        )
        .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let scraper = {
        let registry = registry.clone();
        let stop = stop.clone();
        thread::spawn(move || {
            let mut buf = String::new();
            let mut scrapes = 0u64;
            let mut last_all = 0.0;
            while !stop.load(Ordering::Relaxed) {
                buf.clear();
                registry.encode_text_into(&mut buf);
                let families = parse(&buf).unwrap_or_else(|e| panic!("{e}\n{buf}"));
                let now = value(&families, "all_total", &[]).unwrap_or(0.0);
                assert!(
                    now >= last_all,
                    "a counter went backwards: {last_all} -> {now}"
                );
                last_all = now;
                scrapes += 1;
            }
            scrapes
        })
    };

    for wave in 0..WAVES {
        let writers: Vec<_> = (0..WRITERS_PER_WAVE)
            .map(|w| {
                let (ops, all, frac, lat) = (ops.clone(), all.clone(), frac.clone(), lat.clone());
                thread::spawn(move || {
                    let worker = format!("w{}", w);
                    let kind = if wave % 2 == 0 { "even" } else { "odd" };
                    for i in 0..OPS {
                        ops.with_label_values(&[worker.as_str()]).unwrap().inc();
                        all.inc();
                        frac.add(0.5).unwrap();
                        lat.with_label_values(&[kind])
                            .unwrap()
                            .observe((i % 4) as f64 * 0.25);
                    }
                })
            })
            .collect();
        // Each wave's threads exit before the next starts; the next reuses their blocks.
        for w in writers {
            w.join().unwrap();
        }
    }
    stop.store(true, Ordering::Relaxed);
    let scrapes = scraper.join().unwrap();
    assert!(scrapes > 0);

    let text = registry.encode_text();
    let families = parse(&text).unwrap();
    let total = (WAVES * WRITERS_PER_WAVE) as u64 * OPS;
    assert_eq!(value(&families, "all_total", &[]), Some(total as f64));
    assert_eq!(
        value(&families, "frac_total", &[]),
        Some(total as f64 * 0.5)
    );
    for w in 0..WRITERS_PER_WAVE {
        let worker = format!("w{w}");
        assert_eq!(
            value(&families, "ops_total", &[("worker", &worker)]),
            Some((WAVES as u64 * OPS) as f64)
        );
    }
    // Observations cycle 0, 0.25, 0.5, 0.75: a quarter of them per bucket, le inclusive.
    let even_waves = (0..WAVES).filter(|w| w % 2 == 0).count() as u64;
    let n = even_waves * WRITERS_PER_WAVE as u64 * OPS;
    for (le, expect) in [
        ("0.25", n / 2),
        ("0.5", 3 * n / 4),
        ("0.75", n),
        ("+Inf", n),
    ] {
        assert_eq!(
            value(
                &families,
                "lat_seconds_bucket",
                &[("kind", "even"), ("le", le)]
            ),
            Some(expect as f64),
            "le={le}"
        );
    }
    assert_eq!(
        value(&families, "lat_seconds_count", &[("kind", "even")]),
        Some(n as f64)
    );
    assert_eq!(
        value(&families, "lat_seconds_sum", &[("kind", "even")]),
        Some(n as f64 / 4.0 * 1.5)
    );
}

#[test]
fn counts_of_an_exited_thread_are_kept() {
    let registry = Registry::new();
    let c = registry
        .counter("exited_total", "From exited threads.")
        .unwrap();
    for _ in 0..8 {
        let c = c.clone();
        thread::spawn(move || c.inc_by(5)).join().unwrap();
    }
    assert_eq!(c.get(), 40.0);
}

#[test]
fn series_created_concurrently_are_unique() {
    let registry = Registry::new();
    let fam = registry
        .counter_family("race_total", "Race.", &["id"])
        .unwrap();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let fam = fam.clone();
            thread::spawn(move || {
                for i in 0..500 {
                    fam.with_label_values(&[format!("id-{i}")]).unwrap().inc();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(fam.len(), 500);
    let families = parse(&registry.encode_text()).unwrap();
    for i in 0..500 {
        let id = format!("id-{i}");
        assert_eq!(value(&families, "race_total", &[("id", &id)]), Some(4.0));
    }
}

/// Issue 17: more recording threads than the arena has blocks (64 at once on a 2-core machine,
/// whose arena has 4 exclusive blocks), in waves that come and go while a scraper parses every
/// exposition strictly (cumulative buckets, `_count == +Inf`, counters never going backwards).
/// Threads beyond the exclusive blocks record into shared stripes with atomic adds and retry
/// the lease as blocks are returned; totals are exact and the blocks stay within the arena's
/// shape.
#[test]
fn more_threads_than_blocks_coming_and_going_while_scrapes_run_keep_exact_totals() {
    use agentcore_telemetry::registry::self_metrics::arena_stats;
    const THREADS: usize = 64;
    const WAVES: usize = 4;
    const OPS: u64 = 5_000;
    let registry = Registry::new();
    let all = registry.counter("busy_total", "Ops.").unwrap();
    let half = registry.counter("half_total", "Fractional adds.").unwrap();
    let lat = registry
        .histogram_family(
            "busy_seconds",
            "Latency.",
            &["wave"],
            Buckets::new(vec![0.25, 0.5, 0.75]).unwrap(),
        )
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let scraper = {
        let (registry, stop) = (registry.clone(), stop.clone());
        thread::spawn(move || {
            let (mut buf, mut last, mut scrapes) = (String::new(), 0.0, 0u64);
            while !stop.load(Ordering::Relaxed) {
                buf.clear();
                registry.encode_text_into(&mut buf);
                let families = parse(&buf).unwrap_or_else(|e| panic!("{e}\n{buf}"));
                let now = value(&families, "busy_total", &[]).unwrap_or(0.0);
                assert!(now >= last, "a counter went backwards: {last} -> {now}");
                last = now;
                scrapes += 1;
            }
            scrapes
        })
    };
    for wave in 0..WAVES {
        let barrier = Arc::new(std::sync::Barrier::new(THREADS));
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let (all, half, lat, barrier) =
                    (all.clone(), half.clone(), lat.clone(), barrier.clone());
                thread::spawn(move || {
                    barrier.wait(); // all 64 alive at once
                    let w = wave.to_string();
                    for i in 0..OPS {
                        all.inc();
                        half.add(0.5).unwrap();
                        lat.with_label_values(&[w.as_str()])
                            .unwrap()
                            .observe(((i as usize + t) % 4) as f64 * 0.25);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }
    stop.store(true, Ordering::Relaxed);
    assert!(scraper.join().unwrap() > 0);
    let families = parse(&registry.encode_text()).unwrap();
    let total = (WAVES * THREADS) as u64 * OPS;
    assert_eq!(value(&families, "busy_total", &[]), Some(total as f64));
    assert_eq!(
        value(&families, "half_total", &[]),
        Some(total as f64 / 2.0)
    );
    for wave in 0..WAVES {
        let w = wave.to_string();
        assert_eq!(
            value(&families, "busy_seconds_count", &[("wave", &w)]),
            Some((THREADS as u64 * OPS) as f64)
        );
    }
    let stats = arena_stats();
    assert!(
        stats.exclusive_blocks <= stats.max_exclusive_blocks && stats.stripes <= stats.max_stripes,
        "{stats:?}"
    );
}

/// Removals and clears while other threads record, through handles they keep and through
/// lookups: every scrape in between parses (no duplicate series, histogram invariants), and a
/// removed series is gone for good: its kept handle records into nothing the family exposes,
/// and the next lookup of its label values starts a new series from zero (no resurrection).
#[test]
fn removals_and_clears_while_threads_record_keep_scrapes_valid_and_never_resurrect() {
    let registry = Registry::new();
    let fam = registry
        .histogram_family(
            "churn_seconds",
            "Churn.",
            &["k"],
            Buckets::new(vec![0.25, 0.5]).unwrap(),
        )
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let recorders: Vec<_> = (0..2)
        .map(|t| {
            let (fam, stop) = (fam.clone(), stop.clone());
            thread::spawn(move || {
                let kept = fam.get_or_create(&["kept"]).unwrap();
                let mine = format!("t{t}");
                while !stop.load(Ordering::Relaxed) {
                    kept.observe(0.1);
                    fam.with_label_values(&[mine.as_str()])
                        .unwrap()
                        .observe(0.3);
                    fam.with_label_values(&["shared"]).unwrap().observe(0.7);
                }
                kept
            })
        })
        .collect();
    let mut buf = String::new();
    for round in 0..2000 {
        buf.clear();
        registry.encode_text_into(&mut buf);
        parse(&buf).unwrap_or_else(|e| panic!("{e}\n{buf}"));
        fam.remove(&["kept"]);
        fam.remove(&["shared"]);
        if round % 3 == 0 {
            fam.clear();
        }
        // A lookup just after the removal of what this thread looked up before (its lookup
        // cache had it) finds a new series, not the removed one.
        fam.with_label_values(&["again"]).unwrap().observe(0.1);
        assert!(fam.remove(&["again"]));
        fam.with_label_values(&["again"]).unwrap().observe(0.1);
        assert_eq!(
            fam.get(&["again"]).map(|h| h.snapshot().count),
            Some(1),
            "round {round}: the removed series came back"
        );
        assert!(fam.remove(&["again"]));
    }
    stop.store(true, Ordering::Relaxed);
    let kept: Vec<_> = recorders.into_iter().map(|r| r.join().unwrap()).collect();

    fam.clear();
    for h in &kept {
        h.observe(0.1); // into a removed series
    }
    assert!(fam.is_empty() && fam.get(&["kept"]).is_none());
    assert!(!registry.encode_text().contains("churn_seconds"));
    for k in ["kept", "shared", "t0"] {
        fam.with_label_values(&[k]).unwrap().observe(0.1);
        fam.with_label_values(&[k]).unwrap().observe(0.1);
    }
    let families = parse(&registry.encode_text()).unwrap();
    for k in ["kept", "shared", "t0"] {
        assert_eq!(
            value(&families, "churn_seconds_count", &[("k", k)]),
            Some(2.0),
            "{k}: a new series from zero"
        );
    }
}
