//! Proof that the metrics hot path allocates nothing: a counting global allocator wraps the
//! system one, each operation is warmed up once (the first record of a thread into a chunk of
//! the slot arena allocates that chunk), and then many more calls must allocate zero times.

use agentcore_telemetry::{
    Buckets, Counter, Error, Exemplars, Gauge, Histogram, Registry, Summary, SummaryConfig,
};
use support::alloc::thread_allocations;

mod support;

#[global_allocator]
static GLOBAL: support::alloc::Counting = support::alloc::Counting;

/// Runs `op` once to warm up, then `n` times, and returns the allocations of those `n` calls.
fn allocations(n: usize, mut op: impl FnMut(usize)) -> u64 {
    op(0);
    let before = thread_allocations();
    for i in 0..n {
        op(i);
    }
    thread_allocations() - before
}

#[test]
fn counter_inc_and_add_allocate_nothing() {
    let c = Counter::new().unwrap();
    assert_eq!(allocations(10_000, |_| c.inc()), 0);
    assert_eq!(allocations(10_000, |i| c.inc_by(i as u64)), 0);
    assert_eq!(allocations(10_000, |_| c.add(25.5).unwrap()), 0);
    assert_eq!(allocations(1_000, |_| assert!(c.add(-1.0).is_err())), 0);
}

#[test]
fn gauge_set_and_add_allocate_nothing() {
    let g = Gauge::new();
    assert_eq!(allocations(10_000, |i| g.set(i as f64)), 0);
    assert_eq!(allocations(10_000, |_| g.add(0.5)), 0);
    assert_eq!(allocations(10_000, |_| g.dec()), 0);
}

#[test]
fn histogram_and_summary_observe_allocate_nothing() {
    let h = Histogram::new(Buckets::default()).unwrap();
    assert_eq!(allocations(10_000, |i| h.observe(i as f64 * 1e-3)), 0);
    assert_eq!(allocations(100, |_| h.observe(f64::NAN)), 0);
    let s = Summary::new(SummaryConfig::default()).unwrap();
    assert_eq!(allocations(10_000, |i| s.observe(i as f64 * 1e-3)), 0);
}

/// `*_with_exemplar` on a metric with exemplars off is refused without a message to allocate
/// (review helper-161: 2,000 calls made 2,000 allocations, a `String` reason each), and an
/// explicit exemplar with valid labels is kept without one.
#[test]
fn exemplars_off_and_explicit_exemplars_allocate_nothing() {
    let labels = [("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736")];
    let off = Counter::new().unwrap();
    let off_h = Histogram::new(Buckets::default()).unwrap();
    assert_eq!(
        allocations(2_000, |_| assert_eq!(
            off.inc_with_exemplar(&labels),
            Err(Error::ExemplarsOff)
        )),
        0
    );
    assert_eq!(
        allocations(2_000, |i| assert_eq!(
            off_h.observe_with_exemplar(i as f64 * 1e-3, &labels),
            Err(Error::ExemplarsOff)
        )),
        0
    );
    assert_eq!((off.get(), off_h.snapshot().count), (2_001.0, 2_001));
    let on = Counter::with_exemplars(Exemplars::Explicit).unwrap();
    let on_h = Histogram::with_exemplars(Buckets::default(), Exemplars::Explicit).unwrap();
    assert_eq!(
        allocations(2_000, |_| on.inc_with_exemplar(&labels).unwrap()),
        0
    );
    assert_eq!(
        allocations(2_000, |i| on_h
            .observe_with_exemplar(i as f64 * 1e-3, &labels)
            .unwrap()),
        0
    );
}

/// A lookup by label name (`with_named_labels`) of an existing series: no allocation, as the
/// positional one.
#[test]
fn a_lookup_by_label_name_allocates_nothing() {
    let registry = Registry::new();
    let calls = registry
        .counter_family("named_total", "Calls.", &["tool", "status"])
        .unwrap();
    let labels = [
        [("status", "ok"), ("tool", "a")],
        [("tool", "b"), ("status", "err")],
    ];
    let both = |_| {
        for l in &labels {
            calls.with_named_labels(l).unwrap().inc();
        }
    };
    assert_eq!(allocations(5_000, both), 0);
    assert_eq!(calls.get(&["a", "ok"]).unwrap().get(), 5_001.0);
}

#[test]
fn labeled_lookup_and_record_on_existing_series_allocate_nothing() {
    let registry = Registry::new();
    let calls = registry
        .counter_family("calls_total", "Calls.", &["tool_id", "status"])
        .unwrap();
    let latency = registry
        .histogram_family(
            "latency_seconds",
            "Latency.",
            &["tool_id"],
            Buckets::default(),
        )
        .unwrap();
    let tools: Vec<String> = (0..50).map(|i| format!("tool-{i}")).collect();
    for t in &tools {
        calls
            .with_label_values(&[t.as_str(), "success"])
            .unwrap()
            .inc();
        latency
            .with_label_values(&[t.as_str()])
            .unwrap()
            .observe(0.1);
    }
    let n = allocations(10_000, |i| {
        let t = tools[i % tools.len()].as_str();
        calls.with_label_values(&[t, "success"]).unwrap().inc();
        latency
            .with_label_values(&[t])
            .unwrap()
            .observe(i as f64 * 1e-4);
    });
    assert_eq!(n, 0);
    // String-owned values work too, without allocating for the lookup.
    let owned = [tools[3].clone(), "success".to_string()];
    assert_eq!(
        allocations(1_000, |_| calls.with_label_values(&owned).unwrap().inc()),
        0
    );
}

#[test]
fn the_counting_allocator_sees_allocations() {
    // A control: without it, a broken counter would make every test above pass.
    assert_eq!(
        allocations(10, |i| drop(std::hint::black_box(vec![i as u8; 16]))),
        10
    );
}

/// Registering a family checks its names against every registered family's. That check
/// computed every registered family's names again (about eight `String`s each), so one
/// registration cost allocations in proportion to the families already there: 10,000
/// families took 29 s to register in a release build, 20,000 took 161 s. Registering one more
/// family now costs as many allocations in a registry of 2,000 families as in one of 20.
#[test]
fn a_registration_allocates_the_same_whatever_the_registry_holds() {
    let cost_at = |held: usize| {
        let registry = Registry::new();
        for i in 0..held {
            registry.counter(&format!("job_{i}_total"), "J.").unwrap();
        }
        let name = format!("job_{held}_total");
        let before = thread_allocations();
        registry.counter(&name, "J.").unwrap();
        thread_allocations() - before
    };
    let (small, large) = (cost_at(20), cost_at(2_000));
    // One more at most: the set of names may grow its table on this insert at one size and
    // not the other (it does not at these two sizes today; 188 and 16,028 before).
    assert!(
        large <= small + 1,
        "allocations of one registration: {small} beside 20 families, {large} beside 2,000"
    );
}
