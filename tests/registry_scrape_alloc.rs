//! A scrape's allocations, in a process of their own. A scrape also frees what any thread has
//! retired (series removed, tables rebuilt) and is waiting for reclamation in the process-wide
//! domain; beside other tests that churn series (`registry_alloc.rs`), that work would fall into
//! the measured scrape at random. Here the tests run one at a time and the churn is their own.

use std::sync::Mutex;

use agentcore_telemetry::registry::self_metrics::reclamation_stats;
use agentcore_telemetry::{Buckets, Registry, SummaryConfig};
use support::alloc::thread_allocations;

mod support;

#[global_allocator]
static GLOBAL: support::alloc::Counting = support::alloc::Counting;

/// One test at a time: each one's retirements are its own.
static SERIAL: Mutex<()> = Mutex::new(());

/// The allocations of one scrape into `buf` on this thread.
fn scrape_allocations(registry: &Registry, buf: &mut String) -> u64 {
    buf.clear();
    let before = thread_allocations();
    registry.encode_text_into(buf);
    thread_allocations() - before
}

/// A registry with 2,000 agents, each one series of a counter and of a histogram family.
fn agents_registry() -> Registry {
    let registry = Registry::new();
    let c = registry
        .counter_family("c_total", "C.", &["agent_id"])
        .unwrap();
    let h = registry
        .histogram_family("h_seconds", "H.", &["agent_id"], Buckets::default())
        .unwrap();
    for i in 0..2_000 {
        let id = format!("agent-{i}");
        c.with_label_values(&[&id]).unwrap().inc();
        h.with_label_values(&[&id]).unwrap().observe(0.3);
    }
    registry
}

#[test]
fn steady_state_scrape_allocates_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let registry = agents_registry();
    let mut buf = String::new();
    registry.encode_text_into(&mut buf);
    assert!(
        buf.contains("c_total{agent_id=\"agent-1999\"} 1"),
        "{buf:.200}"
    );
    for _ in 0..5 {
        assert_eq!(
            scrape_allocations(&registry, &mut buf),
            0,
            "a steady-state scrape into a reused buffer allocates nothing"
        );
    }
}

/// The reclamation a scrape does for other threads reuses its list: once it has grown, freeing
/// what another thread retired allocates nothing on the scraping thread.
#[test]
fn a_scrape_freeing_another_threads_retired_series_allocates_nothing_once_warm() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let registry = Registry::new();
    let kept = registry
        .counter_family("kept_total", "Kept.", &["id"])
        .unwrap();
    kept.with_label_values(&["a"]).unwrap().inc();
    let churn = registry
        .counter_family("churn_total", "Churned.", &["id"])
        .unwrap();
    let keys: Vec<String> = (0..20).map(|i| format!("k{i}")).collect();
    // Another thread adds 20 series and removes them: 20 series retired, waiting (fewer than
    // a retiring thread's reclamation batch), for the scrape to free.
    let churn_on_another_thread = || {
        // Joined explicitly: a join waits for the thread's thread-local destructors, which
        // end its lookup cache and with it the guard that protects what it looked up.
        std::thread::scope(|s| {
            s.spawn(|| {
                for k in &keys {
                    churn.with_label_values(&[k]).unwrap().inc();
                }
                for k in &keys {
                    assert!(churn.remove(&[k]));
                }
            })
            .join()
            .unwrap();
        })
    };
    let mut buf = String::new();
    for _ in 0..3 {
        churn_on_another_thread();
        registry.encode_text_into(&mut buf); // warms the reclamation list up
    }
    for round in 0..5 {
        let freed_before = reclamation_stats().freed;
        churn_on_another_thread();
        assert_eq!(
            scrape_allocations(&registry, &mut buf),
            0,
            "round {round}: the scrape freed the other thread's series without allocating"
        );
        assert!(
            reclamation_stats().freed >= freed_before + 20,
            "and it did free them"
        );
    }
}

#[test]
fn steady_state_openmetrics_scrape_allocates_nothing() {
    use agentcore_telemetry::exposition::OpenMetricsEncoder;
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let registry = agents_registry();
    let s = registry
        .summary_family("s_bytes", "S.", &["agent_id"], SummaryConfig::default())
        .unwrap();
    let g = registry.gauge_family("g", "G.", &["agent_id"]).unwrap();
    let i = registry.info_family("build_info", "B.", &["v"]).unwrap();
    i.with_label_values(&["1"]).unwrap();
    registry.counter_fn("f_total", "F.", || 2.5).unwrap();
    registry.gauge_fn("fg", "FG.", || 1.5).unwrap();
    for i in 0..2_000 {
        let id = format!("agent-{i}");
        g.with_label_values(&[&id]).unwrap().set(i as f64);
        if i < 50 {
            s.with_label_values(&[&id]).unwrap().observe(i as f64);
        }
    }
    let mut buf = String::new();
    for encoder in [
        OpenMetricsEncoder::new(),
        OpenMetricsEncoder::new().with_created(true),
    ] {
        encoder.encode_into(&registry, &mut buf);
        let n: u64 = (0..5)
            .map(|_| {
                buf.clear();
                let before = thread_allocations();
                encoder.encode_into(&registry, &mut buf);
                thread_allocations() - before
            })
            .sum();
        assert_eq!(
            n, 0,
            "a steady-state OpenMetrics scrape into a reused buffer allocates nothing ({encoder:?})"
        );
    }
    // The text format 0.0.4 scrape of the same registry (summaries included) allocates nothing
    // either.
    registry.encode_text_into(&mut buf);
    for _ in 0..5 {
        assert_eq!(scrape_allocations(&registry, &mut buf), 0);
    }
}

/// A `for_each_series` callback that panics poisons the family's sorted-cache mutex. The cache is
/// still whole, and later scrapes keep using it: they used to treat the poisoned mutex as busy
/// and rebuild, sort and allocate on every scrape from then on (6 allocations per scrape of 100
/// series; found by a review).
#[test]
fn a_panicking_for_each_series_callback_keeps_scrapes_allocation_free() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let registry = Registry::new();
    let family = registry.counter_family("p_total", "P.", &["k"]).unwrap();
    for i in 0..100 {
        family.with_label_values(&[format!("k{i}")]).unwrap().inc();
    }
    let mut buf = String::new();
    for _ in 0..3 {
        registry.encode_text_into(&mut buf);
    }
    assert_eq!(scrape_allocations(&registry, &mut buf), 0, "warm");
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        family.for_each_series(|_| panic!("a callback that panics"))
    }));
    assert!(panicked.is_err());
    for _ in 0..3 {
        assert_eq!(
            scrape_allocations(&registry, &mut buf),
            0,
            "a scrape after a panicking callback allocates nothing"
        );
    }
    assert!(buf.contains("p_total{k=\"k99\"} 1\n"), "{buf:.200}");
}
