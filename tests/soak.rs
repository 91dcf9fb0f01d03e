//! Soak: writers on every core record metrics and spans for a fixed number of operations while a
//! scraper scrapes continuously (parsing every exposition strictly) and threads come and go (writer
//! waves are spawned and joined, short-lived churn threads record and exit, per-session series
//! are created and removed). At the end every total is exact, the slot arena holds no more blocks
//! than threads were ever alive at once, and resident memory after warm-up stays within
//! [`MEMORY_BOUND`].
//!
//! `#[ignore]`d by default; `.ci/run` runs it in its short mode:
//!
//! ```sh
//! cargo test --release --test soak -- --ignored --nocapture             # short (SOAK_OPS=20000000)
//! SOAK_OPS=1000000000 cargo test --release --test soak -- --ignored --nocapture # about 4 minutes
//! ```
//!
//! `SOAK_OPS` is the number of operations each writer performs over all waves.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Instant;

use agentcore_telemetry::registry::self_metrics::arena_stats;
use agentcore_telemetry::{
    Buckets, DistributedTracer, KeyValue, Registry, SpanKind, SpanStatus, SummaryConfig,
    TracerConfig,
};
use support::exposition::{parse, value};
use support::mem::{mib, resident_bytes};

/// Resident memory may grow by less than this after the warm-up wave, whatever `SOAK_OPS` is:
/// the set of series is fixed (sessions are removed again), so memory must stay flat.
const MEMORY_BOUND: u64 = 32 * 1024 * 1024;
const WAVES: u64 = 4;
const AGENTS: u64 = 8;
/// Short-lived threads per wave, four alive at a time.
const CHURN_THREADS: u64 = 16;
const CHURN_BATCH: u64 = 4;
const CHURN_OPS: u64 = 1_000;
/// A writer opens (and later removes) a session series every this many operations.
const SESSION_EVERY: u64 = 10_000;
/// A writer records a parent span with one child every this many operations.
const SPAN_EVERY: u64 = 16;
const SPAN_LOG_CAPACITY: usize = 4096;

fn soak_ops() -> u64 {
    std::env::var("SOAK_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000_000)
}

#[test]
#[ignore = "soak: run with `cargo test --release --test soak -- --ignored` (SOAK_OPS scales it)"]
fn soak_exact_totals_bounded_memory_under_scrapes_and_thread_churn() {
    let writers = thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    let ops_per_wave = soak_ops() / WAVES;
    let registry = Registry::new();
    let steps = registry
        .counter_family("agent_steps_total", "Steps.", &["agent_id"])
        .unwrap();
    let all = registry.counter("ops_total", "All operations.").unwrap();
    let churned = registry
        .counter("churn_ops_total", "Operations of short-lived threads.")
        .unwrap();
    let cost = registry.counter("cost_total", "Fractional.").unwrap();
    let in_flight = registry.gauge("in_flight", "Up and down.").unwrap();
    let latency = registry
        .histogram_family(
            "step_seconds",
            "Latency.",
            &["kind"],
            Buckets::new(vec![0.25, 0.5, 0.75]).unwrap(),
        )
        .unwrap();
    let sizes = registry
        .summary_family("step_bytes", "Sizes.", &[], SummaryConfig::default())
        .unwrap();
    let sessions = registry
        .counter_family("session_steps_total", "Per-session steps.", &["session"])
        .unwrap();

    let tracer = Arc::new(DistributedTracer::new(TracerConfig {
        span_log_capacity: SPAN_LOG_CAPACITY,
        ..TracerConfig::default()
    }));

    let stop = Arc::new(AtomicBool::new(false));
    let scraper = {
        let registry = registry.clone();
        let stop = stop.clone();
        let tracer = tracer.clone();
        thread::spawn(move || {
            let mut buf = String::new();
            let (mut scrapes, mut last_all) = (0u64, 0.0);
            while !stop.load(Ordering::Relaxed) {
                buf.clear();
                registry.encode_text_into(&mut buf);
                let families = parse(&buf).unwrap_or_else(|e| panic!("{e}\n{buf}"));
                let now = value(&families, "ops_total", &[]).unwrap_or(0.0);
                assert!(
                    now >= last_all,
                    "ops_total went backwards: {last_all} -> {now}"
                );
                last_all = now;
                // The span log is read concurrently too (readers make slots busy for writers).
                if scrapes % 64 == 0 {
                    let _ = tracer.get_metrics();
                }
                scrapes += 1;
            }
            scrapes
        })
    };

    let start = Instant::now();
    let mut warm = None;
    let mut peak_threads = 0u64;
    for wave in 0..WAVES {
        let barrier = Arc::new(Barrier::new(writers as usize));
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                let (steps, all, cost, in_flight) =
                    (steps.clone(), all.clone(), cost.clone(), in_flight.clone());
                let (latency, sizes, sessions) = (latency.clone(), sizes.clone(), sessions.clone());
                let barrier = barrier.clone();
                let tracer = tracer.clone();
                thread::spawn(move || {
                    barrier.wait();
                    let agents: Vec<String> = (0..AGENTS).map(|a| format!("agent-{a}")).collect();
                    let mut session = String::new();
                    for i in 0..ops_per_wave {
                        let agent = &agents[(i % AGENTS) as usize];
                        steps.with_label_values(&[agent.as_str()]).unwrap().inc();
                        all.inc();
                        cost.add(0.5).unwrap();
                        in_flight.inc();
                        latency
                            .with_label_values(&["step"])
                            .unwrap()
                            .observe((i % 4) as f64 * 0.25);
                        sizes
                            .with_label_values::<&str>(&[])
                            .unwrap()
                            .observe((i % 1000) as f64);
                        if i % SESSION_EVERY == 0 {
                            if !session.is_empty() {
                                assert!(sessions.remove(&[session.as_str()]));
                            }
                            session = format!("w{w}-wave{wave}-{i}");
                        }
                        sessions
                            .with_label_values(&[session.as_str()])
                            .unwrap()
                            .inc();
                        in_flight.dec();
                        if i % SPAN_EVERY == 0 {
                            let parent = tracer.start_span(
                                "agent_step",
                                SpanKind::Internal,
                                [KeyValue::new("agent_id", agent.clone())],
                            );
                            let mut child = tracer.start_span("tool_call", SpanKind::Client, []);
                            child.add_event("retry", []);
                            child.finish(SpanStatus::Ok);
                            drop(parent); // dropped unfinished: finished by the guard
                        }
                    }
                    assert!(sessions.remove(&[session.as_str()]));
                })
            })
            .collect();
        // Short-lived threads come and go while the writers run.
        for _ in 0..CHURN_THREADS / CHURN_BATCH {
            let batch: Vec<_> = (0..CHURN_BATCH)
                .map(|_| {
                    let churned = churned.clone();
                    let tracer = tracer.clone();
                    thread::spawn(move || {
                        for _ in 0..CHURN_OPS {
                            churned.inc();
                        }
                        tracer.start_span("churn", SpanKind::Internal, []).end();
                    })
                })
                .collect();
            for t in batch {
                t.join().unwrap();
            }
        }
        for h in handles {
            h.join().unwrap();
        }
        // writers + a churn batch + the scraper + this thread.
        peak_threads = peak_threads.max(writers + CHURN_BATCH + 2);
        if wave == 0 {
            let _ = registry.encode_text();
            warm = resident_bytes();
        }
    }
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let scrapes = scraper.join().unwrap();
    assert!(scrapes > 0);

    let text = registry.encode_text();
    let families = parse(&text).unwrap();
    let per_writer = ops_per_wave * WAVES;
    let total = writers * per_writer;
    assert_eq!(value(&families, "ops_total", &[]), Some(total as f64));
    assert_eq!(
        value(&families, "cost_total", &[]),
        Some(total as f64 * 0.5)
    );
    assert_eq!(value(&families, "in_flight", &[]), Some(0.0));
    assert_eq!(
        value(&families, "churn_ops_total", &[]),
        Some((WAVES * CHURN_THREADS * CHURN_OPS) as f64)
    );
    // Each writer spreads its operations evenly over the agents (ops_per_wave % AGENTS aside).
    let mut agents_total = 0.0;
    for a in 0..AGENTS {
        let id = format!("agent-{a}");
        let got = value(&families, "agent_steps_total", &[("agent_id", &id)]).unwrap();
        let per_wave = ops_per_wave / AGENTS + u64::from(a < ops_per_wave % AGENTS);
        assert_eq!(got, (writers * WAVES * per_wave) as f64, "{id}");
        agents_total += got;
    }
    assert_eq!(agents_total, total as f64);
    // Observations cycle 0, 0.25, 0.5, 0.75 (le inclusive).
    let count = value(&families, "step_seconds_count", &[("kind", "step")]).unwrap();
    assert_eq!(count, total as f64);
    let le = |b: &str| {
        value(
            &families,
            "step_seconds_bucket",
            &[("kind", "step"), ("le", b)],
        )
    };
    let quarter = |k: u64| -> f64 {
        (0..ops_per_wave).filter(|i| i % 4 < k).count() as f64 * (writers * WAVES) as f64
    };
    assert_eq!(le("0.25"), Some(quarter(2)));
    assert_eq!(le("0.5"), Some(quarter(3)));
    assert_eq!(le("+Inf"), Some(total as f64));
    assert_eq!(
        value(&families, "step_bytes_count", &[]),
        Some(total as f64)
    );
    // Every session series was removed again; none is exposed.
    assert_eq!(sessions.len(), 0);
    assert!(!families.iter().any(|f| f.name == "session_steps_total"));
    // Blocks are reused across thread generations: bounded by the arena's shape (the core
    // count), and by the threads alive at once plus the one stripe that always exists.
    let stats = arena_stats();
    let blocks = (stats.exclusive_blocks + stats.stripes) as u64;
    assert!(
        stats.exclusive_blocks <= stats.max_exclusive_blocks && stats.stripes <= stats.max_stripes,
        "{stats:?}"
    );
    assert!(
        blocks <= peak_threads + 1,
        "{blocks} arena blocks for at most {peak_threads} concurrent threads"
    );

    // Spans: exact counts across thread generations, and every finished span accounted for
    // (in the log, overwritten by a newer one, or dropped because a reader held its slot).
    let spans_per_writer = 2 * WAVES * ops_per_wave.div_ceil(SPAN_EVERY);
    let spans = writers * spans_per_writer + WAVES * CHURN_THREADS;
    let stats = tracer.stats();
    assert_eq!(stats.spans_started, spans, "{stats:?}");
    assert_eq!(stats.spans_finished, spans, "{stats:?}");
    let in_log: usize = tracer.operation_counts().values().sum();
    assert!(in_log <= tracer.span_log_capacity());
    assert_eq!(
        in_log as u64 + stats.spans_overwritten + stats.spans_dropped,
        spans,
        "{stats:?}, {in_log} in the log"
    );

    let after = resident_bytes();
    eprintln!(
        "soak: {writers} writers x {per_writer} ops x 8 recordings in {elapsed:.2?} \
         ({:.1} M recordings/s), {spans} spans, {scrapes} strict scrapes, {} threads spawned, \
         {blocks} arena blocks",
        (total * 8) as f64 / elapsed.as_secs_f64() / 1e6,
        WAVES * (writers + CHURN_THREADS),
    );
    if let (Some(warm), Some(after)) = (warm, after) {
        let growth = after.saturating_sub(warm);
        eprintln!(
            "soak: resident after warm-up {:.1} MiB, at the end {:.1} MiB (+{:.1} MiB, bound {:.0} MiB)",
            mib(warm),
            mib(after),
            mib(growth),
            mib(MEMORY_BOUND)
        );
        assert!(
            growth < MEMORY_BOUND,
            "resident memory grew by {:.1} MiB",
            mib(growth)
        );
    }
}
