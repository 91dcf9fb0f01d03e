//! Cost of the collector's recording methods on existing series (single thread), and of a
//! snapshot and a scrape.
//!
//! `cargo bench --bench collector -- --warm-up-time 1 --measurement-time 2`

use std::hint::black_box;

use agentcore_telemetry::agent::MetricType;
use agentcore_telemetry::{AgentPhilosophy, MetricsCollector};
use criterion::{criterion_group, criterion_main, Criterion};

fn recording(c: &mut Criterion) {
    let m = MetricsCollector::new();
    let custom = m
        .create_custom_metric(
            "user_actions",
            MetricType::Counter,
            "U",
            &["action_type", "user_role"],
        )
        .unwrap();
    let mut g = c.benchmark_group("collector");
    g.bench_function("record_agent_created", |b| {
        b.iter(|| {
            m.record_agent_created(black_box(AgentPhilosophy::React), black_box("initializing"))
        })
    });
    g.bench_function("update_resource_usage", |b| {
        b.iter(|| {
            m.update_resource_usage(
                black_box("agent-123"),
                AgentPhilosophy::React,
                black_box(45.5),
                black_box(256.0),
            )
        })
    });
    g.bench_function("record_tool_execution_error", |b| {
        b.iter(|| {
            m.record_tool_execution(
                black_box("web_search"),
                black_box(1.5),
                black_box("failed"),
                black_box(Some("TimeoutError")),
            )
        })
    });
    g.bench_function("record_gc_collection", |b| {
        b.iter(|| m.record_gc_collection(black_box(25.5)))
    });
    g.bench_function("update_system_resources", |b| {
        b.iter(|| m.update_system_resources(black_box(65.5), black_box(72.3), black_box(4096.0)))
    });
    g.bench_function("custom_counter_labels_inc", |b| {
        b.iter(|| {
            custom
                .labels(black_box(&["agent_create", "admin"]))
                .unwrap()
                .inc()
        })
    });
    g.finish();
}

fn reading(c: &mut Criterion) {
    let m = MetricsCollector::new();
    for i in 0..100 {
        let id = format!("agent-{i}");
        m.update_resource_usage(&id, AgentPhilosophy::React, 1.0, 2.0);
        m.record_react_iterations(&id, 5);
        m.record_tool_execution(&format!("tool-{}", i % 10), 0.25, "success", None);
    }
    let mut g = c.benchmark_group("collector_read");
    g.bench_function("encode_text_300_series", |b| {
        b.iter(|| black_box(m.encode_text()))
    });
    g.bench_function("snapshot_metrics_300_series", |b| {
        b.iter(|| black_box(m.snapshot_metrics()))
    });
    g.finish();
}

criterion_group!(benches, recording, reading);
criterion_main!(benches);
