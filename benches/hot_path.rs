//! Criterion benchmarks of agentcore-telemetry's own hot paths (`cargo bench --bench hot_path`).
//!
//! What each benchmark measures, and how it is kept honest:
//! * every handle goes through `black_box` on every call, so nothing is hoisted or folded;
//! * values and label sets are precomputed (the same 4,096 log-uniform values over
//!   [1e-4, 10] and the same 50 label sets as `benches/compare`), so generating them is not
//!   timed;
//! * labeled series exist before timing starts: the labeled benchmarks time the lookup of an
//!   existing series, the steady state of a runtime;
//! * criterion warms every benchmark up before it measures; span benchmarks also fill the span
//!   log once first, so they measure the steady state (the ring wrapping).
//!
//! The side-by-side comparison with the peer crates is `benches/compare` (see README.md,
//! "Benchmarks").

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use agentcore_telemetry::propagation::TraceParent;
use agentcore_telemetry::{
    get_distributed_tracer, trace_operation, AgentPhilosophy, Buckets, DistributedTracer, KeyValue,
    MetricsCollector, Registry, Sampler, SpanKind, SpanStatus, SummaryConfig, TracerConfig,
};
use criterion::{criterion_group, criterion_main, Criterion};

const VALUES: usize = 4096;
const LABEL_SETS: usize = 50;

/// 4,096 values spread log-uniformly over [1e-4, 10] (deterministic xorshift).
fn values() -> Vec<f64> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..VALUES)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x >> 11) as f64 / (1u64 << 53) as f64;
            10f64.powf(-4.0 + 5.0 * u)
        })
        .collect()
}

/// The 50 two-label sets: 25 tools × {success, error}.
fn label_sets() -> Vec<(String, &'static str)> {
    (0..LABEL_SETS)
        .map(|i| {
            let status = if i < 25 { "success" } else { "error" };
            (format!("tool_{:02}", i % 25), status)
        })
        .collect()
}

fn metrics(c: &mut Criterion) {
    let registry = Registry::new();
    let vals = values();
    let sets = label_sets();

    // A counter increment on a resolved handle: one thread-local load, a pointer chase and a
    // relaxed load + store to the calling thread's own word.
    let counter = registry.counter("requests_total", "Requests.").unwrap();
    c.bench_function("counter_inc", |b| b.iter(|| black_box(&counter).inc()));

    // The same counter from two threads at once. Each iteration of criterion is one increment
    // per thread; the reported time is the mean per-thread time (both threads start together at
    // a barrier, after their own warm-up).
    c.bench_function("counter_inc_2_threads_per_thread", |b| {
        b.iter_custom(|iters| {
            let barrier = Barrier::new(2);
            let total: Duration = std::thread::scope(|s| {
                let hs: Vec<_> = (0..2)
                    .map(|_| {
                        s.spawn(|| {
                            for _ in 0..1000 {
                                black_box(&counter).inc();
                            }
                            barrier.wait();
                            let t0 = Instant::now();
                            for _ in 0..iters {
                                black_box(&counter).inc();
                            }
                            t0.elapsed()
                        })
                    })
                    .collect();
                hs.into_iter().map(|h| h.join().unwrap()).sum()
            });
            total / 2
        })
    });

    // Labeled lookup + increment of an existing series: hash the two values, load the shard,
    // compare the stored values, increment. 50 label sets cycled in a fixed order.
    let family = registry
        .counter_family("tool_calls_total", "Tool calls.", &["tool_id", "status"])
        .unwrap();
    for (t, s) in &sets {
        family.with_label_values(&[t.as_str(), s]).unwrap();
    }
    c.bench_function("labeled_lookup_inc", |b| {
        let mut i = 0;
        b.iter(|| {
            let (t, s) = &sets[i % LABEL_SETS];
            i += 1;
            black_box(&family)
                .with_label_values(&[t.as_str(), s])
                .unwrap()
                .inc();
        })
    });

    // Histogram observe, 11 default buckets: a branch-free bucket search, then the bucket word
    // and the sum word of the calling thread.
    let histogram = registry
        .histogram("latency_seconds", "Latency.", Buckets::default())
        .unwrap();
    c.bench_function("histogram_observe", |b| {
        let mut i = 0;
        b.iter(|| {
            black_box(&histogram).observe(vals[i % VALUES]);
            i += 1;
        })
    });

    // Labeled histogram observe: one `agent_id` label, 50 values cycled.
    let hfamily = registry
        .histogram_family(
            "agent_step_seconds",
            "Step latency.",
            &["agent_id"],
            Buckets::default(),
        )
        .unwrap();
    let agents: Vec<String> = (0..LABEL_SETS).map(|i| format!("agent-{i:03}")).collect();
    for a in &agents {
        hfamily.with_label_values(&[a]).unwrap();
    }
    c.bench_function("labeled_histogram_observe", |b| {
        let mut i = 0;
        b.iter(|| {
            black_box(&hfamily)
                .with_label_values(&[&agents[i % LABEL_SETS]])
                .unwrap()
                .observe(vals[i % VALUES]);
            i += 1;
        })
    });

    // Summary observe (default quantiles 0.5/0.9/0.99, 10-minute window).
    let summary = registry
        .summary_family("rpc_seconds_s", "RPC.", &[], SummaryConfig::default())
        .unwrap()
        .get_or_create::<&str>(&[])
        .unwrap();
    c.bench_function("summary_observe", |b| {
        let mut i = 0;
        b.iter(|| {
            black_box(&summary).observe(vals[i % VALUES]);
            i += 1;
        })
    });

    // Gauge set: one relaxed store of an f64.
    let gauge = registry.gauge("queue_depth", "Depth.").unwrap();
    c.bench_function("gauge_set", |b| {
        let mut i = 0;
        b.iter(|| {
            black_box(&gauge).set(vals[i % VALUES]);
            i += 1;
        })
    });
}

fn encode(c: &mut Criterion) {
    // 10,000 counter series and 1,000 histograms (11 buckets), one `agent_id` label, all
    // non-zero, alone in their registry; one full scrape per iteration into a reused buffer.
    let registry = Registry::new();
    let vals = values();
    let counters = registry
        .counter_family("agent_tool_calls_total", "Tool calls.", &["agent_id"])
        .unwrap();
    let histograms = registry
        .histogram_family(
            "agent_step_seconds",
            "Step latency.",
            &["agent_id"],
            Buckets::default(),
        )
        .unwrap();
    for i in 0..10_000usize {
        let id = format!("agent-{i:05}");
        counters
            .with_label_values(&[&id])
            .unwrap()
            .inc_by((i % 97 + 1) as u64);
        if i < 1_000 {
            let h = histograms.with_label_values(&[&id]).unwrap();
            for k in 0..20 {
                h.observe(vals[(i * 20 + k) % VALUES]);
            }
        }
    }
    let mut buf = String::new();
    registry.encode_text_into(&mut buf);
    let mut group = c.benchmark_group("encode");
    group.sample_size(30);
    group.bench_function("encode_text_into_11k_series", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&registry).encode_text_into(&mut buf);
            black_box(buf.len());
        })
    });
    // The same registry in OpenMetrics 1.0 (target: within 1.2x of the 0.0.4 scrape above).
    registry.encode_openmetrics_into(&mut buf);
    group.bench_function("encode_openmetrics_into_11k_series", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&registry).encode_openmetrics_into(&mut buf);
            black_box(buf.len());
        })
    });
    group.finish();
}

fn propagation(c: &mut Criterion) {
    // Extract (parse) an incoming `traceparent`, inject (format) the child's into a reused
    // buffer.
    const HEADER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let mut out = String::with_capacity(64);
    c.bench_function("traceparent_extract_inject", |b| {
        let mut id = 1u64;
        b.iter(|| {
            let tp = TraceParent::parse(black_box(HEADER)).unwrap();
            out.clear();
            tp.child(id).write_to(&mut out);
            id += 2;
            black_box(&out);
        })
    });
    // The same on the headers a server receives: a different trace each call (4,096 headers
    // with random ids, cycled), whose hex digits no branch predictor learns (cfb500a).
    let mut s = 0x243f_6a88_85a3_08d3u64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let headers: Vec<String> = (0..4096)
        .map(|_| {
            let trace_id = u128::from(next()) << 64 | u128::from(next());
            format!("00-{trace_id:032x}-{:016x}-01", next())
        })
        .collect();
    c.bench_function("traceparent_extract_inject_varied", |b| {
        let mut i = 0usize;
        b.iter(|| {
            let tp = TraceParent::parse(black_box(&headers[i & 4095])).unwrap();
            out.clear();
            tp.child(i as u64 | 1).write_to(&mut out);
            i += 1;
            black_box(&out);
        })
    });
}

#[trace_operation]
fn traced_call(x: u64) -> u64 {
    black_box(x) + 1
}

fn tracing(c: &mut Criterion) {
    // Sampled spans finish into the tracer's in-process span log (no background thread). The
    // log is filled once before measuring, so every benchmark runs with the ring wrapping (the
    // steady state), not on first-touch pages.
    let tracer = DistributedTracer::new(TracerConfig::default());
    for _ in 0..tracer.span_log_capacity() {
        tracer.start_span("warm", SpanKind::Internal, []).end();
    }

    // Start + 2 attributes + 1 event + finish: the common instrumented operation.
    c.bench_function("span_start_2_attributes_event_finish", |b| {
        b.iter(|| {
            let t = black_box(&tracer);
            let mut span = t.start_span("tool_execution", SpanKind::Internal, []);
            span.set_attribute("tool_id", "calculator");
            span.set_attribute("attempt", 1i64);
            span.add_event("checkpoint", []);
            t.finish_span(span, SpanStatus::Ok, None);
        })
    });

    // The same span with its 2 attributes passed to `start_span` (as the specification passes
    // them), and the same span whose event carries 2 attributes.
    c.bench_function("span_attributes_at_start_event_finish", |b| {
        b.iter(|| {
            let t = black_box(&tracer);
            let mut span = t.start_span(
                "tool_execution",
                SpanKind::Internal,
                [
                    KeyValue::new("tool_id", "calculator"),
                    KeyValue::new("attempt", 1i64),
                ],
            );
            span.add_event("checkpoint", []);
            t.finish_span(span, SpanStatus::Ok, None);
        })
    });
    c.bench_function("span_2_attributes_event_with_2_attributes_finish", |b| {
        b.iter(|| {
            let t = black_box(&tracer);
            let mut span = t.start_span("tool_execution", SpanKind::Internal, []);
            span.set_attribute("tool_id", "calculator");
            span.set_attribute("attempt", 1i64);
            span.add_event(
                "retry_attempt",
                [KeyValue::new("attempt", 2), KeyValue::new("delay_ms", 1000)],
            );
            t.finish_span(span, SpanStatus::Ok, None);
        })
    });

    // The first span ended by its `Drop` at the end of its scope (`let _span = ...`), sampled
    // and not (`profile_driver`'s `span_dropped` and `span_unsampled_dropped`).
    let unsampled = DistributedTracer::new(TracerConfig {
        sampler: Some(Sampler::ratio(0.0)),
        ..TracerConfig::default()
    });
    for (name, tracer) in [
        ("span_start_2_attributes_event_drop", &tracer),
        ("span_unsampled_drop", &unsampled),
    ] {
        c.bench_function(name, |b| {
            b.iter(|| {
                let t = black_box(tracer);
                let mut span = t.start_span("tool_execution", SpanKind::Internal, []);
                span.set_attribute("tool_id", "calculator");
                span.set_attribute("attempt", 1i64);
                span.add_event("checkpoint", []);
            })
        });
    }

    // A parent with 3 children started and finished inside it (4 spans per iteration).
    c.bench_function("span_parent_3_children", |b| {
        b.iter(|| {
            let t = black_box(&tracer);
            let parent = t.start_span("agent_lifecycle", SpanKind::Internal, []);
            for _ in 0..3 {
                let child = t.start_span("step", SpanKind::Internal, []);
                t.finish_span(child, SpanStatus::Ok, None);
            }
            t.finish_span(parent, SpanStatus::Ok, None);
        })
    });

    // The same span as above, not sampled (the tracer with Sampler::ratio(0) above).
    c.bench_function("span_unsampled", |b| {
        b.iter(|| {
            let t = black_box(&unsampled);
            let mut span = t.start_span("tool_execution", SpanKind::Internal, []);
            span.set_attribute("tool_id", "calculator");
            span.set_attribute("attempt", 1i64);
            span.add_event("checkpoint", []);
            t.finish_span(span, SpanStatus::Ok, None);
        })
    });

    // A call of a `#[trace_operation]` function (global tracer, trivial body).
    let global = get_distributed_tracer();
    for _ in 0..global.span_log_capacity() {
        traced_call(0);
    }
    c.bench_function("trace_operation_call", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i = traced_call(i);
        })
    });
}

fn collector(c: &mut Criterion) {
    // One call each of the MetricsCollector's two most frequent recording methods, on existing
    // series: 25 tools (success) with the same log-uniform durations, and the 4 philosophies,
    // cycled (the same inputs as the comparison's `record_*` workloads).
    let m = MetricsCollector::new();
    let vals = values();
    let tools: Vec<String> = (0..25).map(|i| format!("tool_{i:02}")).collect();
    for t in &tools {
        m.record_tool_execution(t, 0.1, "success", None);
    }
    for p in AgentPhilosophy::ALL {
        m.record_agent_created(p, "initializing");
    }
    c.bench_function("record_tool_execution", |b| {
        let mut i = 0;
        b.iter(|| {
            black_box(&m).record_tool_execution(
                &tools[i % tools.len()],
                vals[i % VALUES],
                "success",
                None,
            );
            i += 1;
        })
    });
    c.bench_function("record_agent_created", |b| {
        let mut i = 0;
        b.iter(|| {
            black_box(&m).record_agent_created(AgentPhilosophy::ALL[i % 4], "initializing");
            i += 1;
        })
    });
}

criterion_group!(benches, metrics, encode, propagation, tracing, collector);
criterion_main!(benches);
