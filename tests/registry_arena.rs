//! Issue 10, finding 7: summaries used to exhaust the process-wide slot arena (about 4 096 summary
//! series filled it, the summary family cap said 16 384), after which every new metric in the
//! process failed and the tracer's constructor panicked; the free list only reused ranges of the
//! same length. Now a family's cap is lowered to its share of the arena, exhaustion is an error
//! (or a counted fold into the overflow series) everywhere, and freed space serves every size.
//!
//! This binary exhausts the global arena on purpose, so it holds a single test.

mod support;

use agentcore_telemetry::registry::{FamilyOptions, ARENA_SHARE};
use agentcore_telemetry::{
    Buckets, Counter, DistributedTracer, Error, Family, Histogram, Registry, Summary,
    SummaryConfig, TracerConfig,
};
use support::arena::fill;

#[test]
fn no_family_exhausts_the_arena_and_exhaustion_is_a_clear_error_everywhere() {
    let registry = Registry::new();
    // A summary family asking for far more than its share gets its share.
    let summaries: Family<Summary> = registry
        .register(
            "latency_seconds",
            "Latency.",
            &["id"],
            SummaryConfig::default(),
            FamilyOptions {
                max_series: 100_000,
                ..FamilyOptions::default()
            },
        )
        .unwrap();
    let cap = summaries.max_series();
    assert!(cap <= 1024, "capped at its 1/{ARENA_SHARE} share: {cap}");
    for i in 0..cap + 50 {
        summaries
            .with_label_values(&[i.to_string()])
            .unwrap()
            .observe(1.0);
    }
    assert_eq!(summaries.len(), cap);
    assert_eq!(summaries.overflowed(), 50);

    // Exhaust what is left: unregistered summaries (the largest ranges), then histograms and
    // counters for the smaller holes.
    let mut held = fill(|| Summary::new(SummaryConfig::default()));
    let small_histograms = fill(|| Histogram::new(Buckets::default()));
    let small_counters = fill(Counter::new);
    assert!(held.len() > 1000, "{}", held.len());
    // Every constructor says so; nothing panics.
    assert_eq!(Counter::new().err(), Some(Error::SlotArenaExhausted));
    assert!(matches!(
        Histogram::new(Buckets::default()),
        Err(Error::SlotArenaExhausted)
    ));
    let tracer = DistributedTracer::new(TracerConfig::default());
    tracer
        .start_span("still_works", Default::default(), [])
        .end();
    let counters = registry
        .counter_family("jobs_total", "Jobs.", &["kind"])
        .unwrap();
    assert_eq!(
        counters.with_label_values(&["a"]).err(),
        Some(Error::SlotArenaExhausted),
        "neither a series nor the overflow series can get words"
    );
    // A family whose overflow series exists folds, counted, instead of failing.
    summaries
        .with_label_values(&["after-exhaustion"])
        .unwrap()
        .observe(2.0);
    assert_eq!(summaries.overflowed(), 51);

    // Space freed by summaries serves counters and histograms (and summaries again).
    held.truncate(held.len() / 2);
    drop((small_histograms, small_counters));
    let c = Counter::new().unwrap();
    c.inc();
    Histogram::new(Buckets::default()).unwrap().observe(0.1);
    counters.with_label_values(&["a"]).unwrap().inc();
    assert_eq!(counters.get(&["a"]).unwrap().get(), 1.0);
    Summary::new(SummaryConfig::default()).unwrap().observe(3.0);
    assert!(registry
        .encode_text()
        .contains("jobs_total{kind=\"a\"} 1\n"));
}
