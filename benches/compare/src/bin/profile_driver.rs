//! A small driver for `valgrind --tool=callgrind`: runs one agentcore-telemetry hot path
//! `N` times so that instruction counts per operation can be read off (Ir / N), repeatably.
//!
//! ```text
//! cargo build --release --manifest-path benches/compare/Cargo.toml --bin profile_driver
//! valgrind --tool=callgrind --callgrind-out-file=cg.out \
//!     benches/compare/target/release/profile_driver labeled_inc 1000000
//! callgrind_annotate --inclusive=yes cg.out | head -40
//! ```
//! Workloads: `floor_load_store` (the thread-owned relaxed load + store floor), `counter_inc`,
//! `labeled_inc`, `histogram_observe`, `span_basic` (start + 2 attributes + event + finish),
//! `encode_span_proto` / `encode_span_json` (the exporter thread encoding that span for OTLP,
//! protobuf / JSON, into a warm reused buffer, cleared every 512 spans as a batch is),
//! `none` (set-up only, the baseline to subtract).

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use agentcore_telemetry::{Buckets, Registry};

#[inline(never)]
fn floor_load_store(w: &AtomicU64, n: u64) {
    for _ in 0..n {
        let a = black_box(w);
        a.store(a.load(Relaxed) + 1, Relaxed);
    }
}

#[inline(never)]
fn span_basic(t: &agentcore_telemetry::DistributedTracer, n: u64) {
    use agentcore_telemetry::{SpanKind, SpanStatus};
    for _ in 0..n {
        let t = black_box(t);
        let mut span = t.start_span("tool_execution", SpanKind::Internal, []);
        span.set_attribute("tool_id", "calculator");
        span.set_attribute("attempt", 1i64);
        span.add_event("checkpoint", []);
        t.finish_span(span, SpanStatus::Ok, None);
    }
}

#[inline(never)]
fn encode_span(
    encoder: &mut agentcore_telemetry::export::otlp::OtlpEncoder,
    span: &agentcore_telemetry::export::ExportSpan<'_>,
    n: u64,
) {
    for i in 0..n {
        black_box(&mut *encoder).add(black_box(span));
        if i % 512 == 511 {
            encoder.clear();
        }
    }
}

#[inline(never)]
fn counter_inc(c: &agentcore_telemetry::Counter, n: u64) {
    for _ in 0..n {
        black_box(c).inc();
    }
}

#[inline(never)]
fn labeled_inc(
    f: &agentcore_telemetry::Family<agentcore_telemetry::Counter>,
    sets: &[(String, &str)],
    n: u64,
) {
    for i in 0..n as usize {
        let (t, s) = &sets[i % sets.len()];
        black_box(f)
            .with_label_values(&[t.as_str(), s])
            .unwrap()
            .inc();
    }
}

#[inline(never)]
fn histogram_observe(h: &agentcore_telemetry::Histogram, vals: &[f64], n: u64) {
    for i in 0..n as usize {
        black_box(h).observe(vals[i % vals.len()]);
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let what = args.next().unwrap_or_else(|| "none".into());
    let n: u64 = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let registry = Registry::new();
    let c = registry.counter("c_total", "C.").unwrap();
    let f = registry
        .counter_family("tool_calls_total", "Tool calls.", &["tool_id", "status"])
        .unwrap();
    let sets: Vec<(String, &str)> = (0..50)
        .map(|i| {
            (
                format!("tool_{:02}", i % 25),
                if i < 25 { "success" } else { "error" },
            )
        })
        .collect();
    for (t, s) in &sets {
        f.with_label_values(&[t.as_str(), s]).unwrap();
    }
    let h = registry
        .histogram("h_seconds", "H.", Buckets::default())
        .unwrap();
    let vals: Vec<f64> = (0..4096)
        .map(|i| 10f64.powf(-4.0 + 5.0 * (i as f64 / 4096.0)))
        .collect();
    let tracer = agentcore_telemetry::DistributedTracer::new(Default::default());
    // Fill the span log once, in every run (so the baseline subtracts it too): `span_basic`
    // then measures the steady state, the ring wrapping.
    span_basic(&tracer, tracer.span_log_capacity() as u64);
    // Warm: first use leases this thread's block.
    c.inc();
    h.observe(1.0);
    // The record span_basic makes, as the exporter would see it, and warm encoders (their
    // buffers grown to a batch).
    let record = {
        use agentcore_telemetry::{SpanKind, SpanStatus};
        let mut span = tracer.start_span("tool_execution", SpanKind::Internal, []);
        span.set_attribute("tool_id", "calculator");
        span.set_attribute("attempt", 1i64);
        span.add_event("checkpoint", []);
        let id = span.span_id();
        tracer.finish_span(span, SpanStatus::Ok, None);
        tracer.get_span_by_id(id).unwrap()
    };
    let view = agentcore_telemetry::export::ExportSpan::new(&record);
    let resource = agentcore_telemetry::export::Resource::new("agent-runtime");
    let mut encoders = [
        agentcore_telemetry::export::otlp::Protocol::HttpProtobuf,
        agentcore_telemetry::export::otlp::Protocol::HttpJson,
    ]
    .map(|p| agentcore_telemetry::export::otlp::OtlpEncoder::new(p, &resource));
    for e in &mut encoders {
        encode_span(e, &view, 512);
    }
    let [proto, json] = &mut encoders;
    match what.as_str() {
        "encode_span_proto" => encode_span(proto, &view, n),
        "encode_span_json" => encode_span(json, &view, n),
        "floor_load_store" => floor_load_store(&AtomicU64::new(0), n),
        "counter_inc" => counter_inc(&c, n),
        "labeled_inc" => labeled_inc(&f, &sets, n),
        "histogram_observe" => histogram_observe(&h, &vals, n),
        "span_basic" => span_basic(&tracer, n),
        _ => {}
    }
}
