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
//! `counter_inc_exemplar` (a trace-based exemplar counter inside a sampled span),
//! `span_unsampled` (`span_basic` on a tracer sampling nothing), `span_dropped` /
//! `span_unsampled_dropped` (the two, the span ended by its `Drop` at the end of its scope, as
//! `let _span = ...` ends it, instead of `finish_span`),
//! `macro_call` (a `#[trace_operation]` function with a trivial body, as the comparison's),
//! `labeled_inc`, `histogram_observe`, `labeled_histogram_observe` (one `agent_id` label, 50
//! series cycled, the same values), `labeled_inc_loop` / `labeled_histogram_observe_loop` (the
//! two labeled workloads' own loops, without the lookup: what to subtract for the library's
//! share), `span_basic` (start + 2 attributes + event + finish),
//! `span_start_attributes` (`span_basic` with the attributes passed to `start_span`),
//! `span_event_attributes` (`span_basic` whose event carries two attributes),
//! `encode_span_proto` / `encode_span_json` (the exporter thread encoding that span for OTLP,
//! protobuf / JSON, into a warm reused buffer, cleared every 512 spans as a batch is),
//! `scrape_text` / `scrape_openmetrics` (one full scrape of the comparison's 11,000-series
//! registry, 0.0.4 or OpenMetrics, into a warm reused buffer; they build that registry first, so
//! take the difference of two runs with different `N` rather than subtracting `none`),
//! `scrape_pclient_openmetrics` (the same registry built with prometheus-client 0.25 and
//! scraped by its OpenMetrics text encoder into a reused String, for the comparison),
//! `bridge_span` / `bridge_span_otel` (a `tracing` span with 2 fields, entered, one event,
//! closed, through `AgentcoreLayer` / tracing-opentelemetry with the SDK's batch processor and
//! a no-op exporter; the OTel arm's export thread is not counted by callgrind's main-thread
//! total), `bridge_record` (a `tracing` span with 2 fields, one of them empty until
//! `span.record` fills it, closed, through `AgentcoreLayer`: the bridge's `on_record`),
//! `bridge_record_unsampled` (the same on a tracer sampling nothing),
//! `bridge_counter` / `bridge_counter_prom` (`counter!` with 2 dynamic labels over 6
//! series through `AgentcoreRecorder` / metrics-exporter-prometheus); each bridge workload
//! builds and warms its subscriber or recorder (1,000 calls) inside the run, which N = 10^6
//! amortises, `traceparent_varied` (`TraceParent::parse` of the next of 4,096 headers with
//! random ids, then `child(..).write_to` a reused `String`: an incoming request's extract and
//! an outgoing call's inject, the comparison's `traceparent_varied`), `none` (set-up only, the
//! baseline to subtract).

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

/// `n` scrapes of the `encode` workload's registry: 10,000 counters and 1,000 histograms with
/// the default buckets, one `agent_id` label, every series non-zero.
#[inline(never)]
fn scrape(openmetrics: bool, n: u64) {
    let registry = Registry::new();
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
                h.observe(10f64.powf(-3.0 + (k as f64) / 5.0));
            }
        }
    }
    let mut buf = String::new();
    let encode = |buf: &mut String| {
        buf.clear();
        if openmetrics {
            black_box(&registry).encode_openmetrics_into(buf);
        } else {
            black_box(&registry).encode_text_into(buf);
        }
        black_box(buf.len());
    };
    encode(&mut buf);
    for _ in 0..n {
        encode(&mut buf);
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
struct AgentLabels {
    agent_id: String,
}

/// `n` scrapes of the same registry in prometheus-client (the `encode` workload's set-up).
#[inline(never)]
fn scrape_pclient(n: u64) {
    use prometheus_client::metrics::{counter::Counter, family::Family, histogram::Histogram};
    let mut registry = prometheus_client::registry::Registry::default();
    let counters = Family::<AgentLabels, Counter>::default();
    let histograms = Family::<AgentLabels, Histogram>::new_with_constructor(
        (|| Histogram::new(Buckets::DEFAULT_BOUNDS)) as fn() -> Histogram,
    );
    registry.register("agent_tool_calls", "Tool calls.", counters.clone());
    registry.register("agent_step_seconds", "Step latency.", histograms.clone());
    for i in 0..10_000usize {
        let key = AgentLabels {
            agent_id: format!("agent-{i:05}"),
        };
        counters.get_or_create(&key).inc_by((i % 97 + 1) as u64);
        if i < 1_000 {
            let h = histograms.get_or_create(&key);
            for k in 0..20 {
                h.observe(10f64.powf(-3.0 + (k as f64) / 5.0));
            }
        }
    }
    let mut buf = String::new();
    let encode = |buf: &mut String| {
        buf.clear();
        prometheus_client::encoding::text::encode(buf, black_box(&registry)).unwrap();
        black_box(buf.len());
    };
    encode(&mut buf);
    for _ in 0..n {
        encode(&mut buf);
    }
}

/// S1: start, 2 attributes, 1 event, finish; `n` times. Inlined into each workload function
/// below, so that callgrind's `--toggle-collect=profile_driver::<workload>` counts that
/// workload's loop alone (the set-up fills the span log through a function of its own). Each
/// caller passes its own `tag`, which keeps the functions' code distinct: rustc merges
/// identical functions into one symbol, and callgrind then counted the set-up's spans with
/// `span_basic`'s. The span ends by `finish_span`, or, with `dropped`, by going out of scope
/// (the `Drop` a `let _span = ...` or an early return runs).
#[inline(always)]
fn span_ops(t: &agentcore_telemetry::DistributedTracer, n: u64, tag: u8) {
    span_ops_ending(t, n, tag, false);
}

#[inline(always)]
fn span_ops_ending(t: &agentcore_telemetry::DistributedTracer, n: u64, tag: u8, dropped: bool) {
    use agentcore_telemetry::{SpanKind, SpanStatus};
    black_box(tag);
    for _ in 0..n {
        let t = black_box(t);
        let mut span = t.start_span("tool_execution", SpanKind::Internal, []);
        span.set_attribute("tool_id", "calculator");
        span.set_attribute("attempt", 1i64);
        span.add_event("checkpoint", []);
        if !dropped {
            t.finish_span(span, SpanStatus::Ok, None);
        }
        // Otherwise `span` drops here, where it is (as `let _span = ...` does at the end of
        // its scope).
    }
}

/// See the module doc; `headers` has a power-of-two length.
#[inline(never)]
fn traceparent_varied(headers: &[String], n: u64) {
    use agentcore_telemetry::propagation::TraceParent;
    let mut out = String::with_capacity(64);
    let mask = headers.len() as u64 - 1;
    for i in 0..n {
        let h = headers[(i & mask) as usize].as_str();
        let tp = TraceParent::parse(black_box(h)).unwrap();
        out.clear();
        tp.child(i | 1).write_to(&mut out);
        black_box(&out);
    }
}

/// 4,096 `traceparent` values with random ids (a fixed seed), sampled.
fn varied_traceparents() -> Vec<String> {
    let mut s = 0x243f_6a88_85a3_08d3u64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    (0..4096)
        .map(|_| {
            let trace_id = u128::from(next()) << 64 | u128::from(next());
            format!("00-{trace_id:032x}-{:016x}-01", next())
        })
        .collect()
}

#[inline(never)]
fn span_basic(t: &agentcore_telemetry::DistributedTracer, n: u64) {
    span_ops(t, n, 1);
}

/// `span_basic` on the tracer that samples nothing.
#[inline(never)]
fn span_unsampled(t: &agentcore_telemetry::DistributedTracer, n: u64) {
    span_ops(t, n, 2);
}

/// `span_basic` ended by dropping the span where it is (the end of its scope, with no move
/// into `drop(span)`'s argument) instead of `finish_span`.
#[inline(never)]
fn span_dropped(t: &agentcore_telemetry::DistributedTracer, n: u64) {
    span_ops_ending(t, n, 4, true);
}

/// `span_unsampled` ended by dropping the span instead of `finish_span`.
#[inline(never)]
fn span_unsampled_dropped(t: &agentcore_telemetry::DistributedTracer, n: u64) {
    span_ops_ending(t, n, 5, true);
}

/// `span_basic` with its two attributes passed to `start_span` instead of set after it (as
/// the specification's `start_span(name, kind, attributes)` passes them, and as the
/// comparison's `tracing` and fastrace arms record theirs).
#[inline(never)]
fn span_start_attributes(t: &agentcore_telemetry::DistributedTracer, n: u64) {
    use agentcore_telemetry::{KeyValue, SpanKind, SpanStatus};
    for _ in 0..n {
        let t = black_box(t);
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
    }
}

/// `span_basic` whose event carries two attributes (as the specification's
/// `add_event("retry_attempt", {"attempt": 2, "delay_ms": 1000})`).
#[inline(never)]
fn span_event_attributes(t: &agentcore_telemetry::DistributedTracer, n: u64) {
    use agentcore_telemetry::{KeyValue, SpanKind, SpanStatus};
    for _ in 0..n {
        let t = black_box(t);
        let mut span = t.start_span("tool_execution", SpanKind::Internal, []);
        span.set_attribute("tool_id", "calculator");
        span.set_attribute("attempt", 1i64);
        span.add_event(
            "retry_attempt",
            [KeyValue::new("attempt", 2), KeyValue::new("delay_ms", 1000)],
        );
        t.finish_span(span, SpanStatus::Ok, None);
    }
}

/// The set-up's `span_basic`, filling the span log.
#[inline(never)]
fn fill_span_log(t: &agentcore_telemetry::DistributedTracer, n: u64) {
    span_ops(t, n, 3);
}

/// The function `macro_call` calls: `#[trace_operation]` on a trivial body, as the
/// comparison's `ours_traced`.
#[agentcore_telemetry::trace_operation]
fn traced(x: u64) -> u64 {
    black_box(x) + 1
}

/// `n` calls of a `#[trace_operation]` function (the global tracer, default configuration):
/// the comparison's `macro_call`, seen by `breakdown.py`.
#[inline(never)]
fn macro_call(n: u64) {
    let mut x = 0;
    for _ in 0..n {
        x = traced(x);
    }
    black_box(x);
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
fn labeled_histogram_observe(
    f: &agentcore_telemetry::Family<agentcore_telemetry::Histogram>,
    ids: &[String],
    vals: &[f64],
    n: u64,
) {
    for i in 0..n as usize {
        black_box(f)
            .with_label_values(&[ids[i % ids.len()].as_str()])
            .unwrap()
            .observe(vals[i % vals.len()]);
    }
}

/// `labeled_inc`'s own loop alone: the same index, the same `(String, &str)` pair read and the
/// same `[&str; 2]` and family reference handed over (through `black_box`, so that they are
/// built as for the call), and no lookup. What `labeled_inc` counts beyond it is the lookup
/// and the increment.
#[inline(never)]
fn labeled_inc_loop(
    f: &agentcore_telemetry::Family<agentcore_telemetry::Counter>,
    sets: &[(String, &str)],
    n: u64,
) {
    for i in 0..n as usize {
        let (t, s) = &sets[i % sets.len()];
        black_box((black_box(f), [t.as_str(), s]));
    }
}

/// `labeled_histogram_observe`'s own loop alone (as `labeled_inc_loop`).
#[inline(never)]
fn labeled_histogram_observe_loop(
    f: &agentcore_telemetry::Family<agentcore_telemetry::Histogram>,
    ids: &[String],
    vals: &[f64],
    n: u64,
) {
    for i in 0..n as usize {
        black_box((
            black_box(f),
            [ids[i % ids.len()].as_str()],
            vals[i % vals.len()],
        ));
    }
}

/// A trace-based exemplar counter incremented inside one sampled span (the span's cost is in
/// the set-up, which the difference of two runs cancels).
#[inline(never)]
fn counter_inc_exemplar(tracer: &agentcore_telemetry::DistributedTracer, n: u64) {
    use agentcore_telemetry::{Counter, Exemplars, SpanKind};
    let c = Counter::with_exemplars(Exemplars::TraceBased).unwrap();
    let span = tracer.start_span("request", SpanKind::Server, []);
    c.inc();
    for _ in 0..n {
        black_box(&c).inc();
    }
    drop(span);
}

#[inline(never)]
fn histogram_observe(h: &agentcore_telemetry::Histogram, vals: &[f64], n: u64) {
    for i in 0..n as usize {
        black_box(h).observe(vals[i % vals.len()]);
    }
}

#[inline(always)]
fn tracing_span_with_event() {
    let span = tracing::info_span!("tool_execution", tool_id = "calculator", attempt = 1i64);
    let _e = span.enter();
    tracing::info!("checkpoint");
}

/// A `tracing` span with one field left empty at its creation and recorded after it (`Span::record`,
/// the bridge's `on_record`), closed; no event.
#[inline(always)]
fn tracing_span_recorded() {
    let span = tracing::info_span!(
        "tool_execution",
        tool_id = "calculator",
        attempt = tracing::field::Empty
    );
    span.record("attempt", 1i64);
}

#[inline(never)]
fn bridge_record(n: u64) {
    bridge_record_with(agentcore_telemetry::Sampler::always_on(), n);
}

/// `bridge_record` on a tracer sampling nothing: the bridge's `on_record` for an unsampled span.
#[inline(never)]
fn bridge_record_unsampled(n: u64) {
    bridge_record_with(agentcore_telemetry::Sampler::always_off(), n);
}

#[inline(always)]
fn bridge_record_with(sampler: agentcore_telemetry::Sampler, n: u64) {
    use tracing_subscriber::layer::SubscriberExt as _;
    let tracer: &'static agentcore_telemetry::DistributedTracer = Box::leak(Box::new(
        agentcore_telemetry::DistributedTracer::new(agentcore_telemetry::TracerConfig {
            sampler: Some(sampler),
            ..Default::default()
        }),
    ));
    let dispatch = tracing::Dispatch::new(
        tracing_subscriber::registry()
            .with(agentcore_telemetry::bridge::tracing_layer::AgentcoreLayer::new(tracer)),
    );
    tracing::dispatcher::with_default(&dispatch, || {
        for _ in 0..1_000 {
            tracing_span_recorded();
        }
        for _ in 0..n {
            tracing_span_recorded();
        }
    });
}

#[inline(never)]
fn bridge_span(otel: bool, n: u64) {
    use tracing_subscriber::layer::SubscriberExt as _;
    let dispatch = if otel {
        use opentelemetry::trace::TracerProvider as _;
        #[derive(Debug)]
        struct Noop;
        impl opentelemetry_sdk::trace::SpanExporter for Noop {
            async fn export(
                &self,
                batch: Vec<opentelemetry_sdk::trace::SpanData>,
            ) -> opentelemetry_sdk::error::OTelSdkResult {
                black_box(batch);
                Ok(())
            }
        }
        let bsp = opentelemetry_sdk::trace::BatchSpanProcessor::builder(Noop).build();
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_span_processor(bsp)
            .build();
        tracing::Dispatch::new(
            tracing_subscriber::registry().with(
                tracing_opentelemetry::layer()
                    .with_tracer(provider.tracer("profile"))
                    .with_location(false)
                    .with_threads(false)
                    .with_tracked_inactivity(false),
            ),
        )
    } else {
        let tracer: &'static agentcore_telemetry::DistributedTracer = Box::leak(Box::new(
            agentcore_telemetry::DistributedTracer::new(Default::default()),
        ));
        tracing::Dispatch::new(
            tracing_subscriber::registry()
                .with(agentcore_telemetry::bridge::tracing_layer::AgentcoreLayer::new(tracer)),
        )
    };
    tracing::dispatcher::with_default(&dispatch, || {
        for _ in 0..1_000 {
            tracing_span_with_event();
        }
        for _ in 0..n {
            tracing_span_with_event();
        }
    });
}

#[inline(never)]
fn bridge_counter(prom: bool, n: u64) {
    const TOOLS: [&str; 3] = ["calculator", "search", "browser"];
    const STATUSES: [&str; 2] = ["ok", "error"];
    let run = |n: u64| {
        for i in 0..n {
            let i = black_box(i) as usize;
            let (tool, status): (&'static str, &'static str) = (TOOLS[i % 3], STATUSES[i % 2]);
            metrics::counter!("tool_calls_total", "tool" => tool, "status" => status).increment(1);
        }
    };
    let recorder: Box<dyn metrics::Recorder> = if prom {
        Box::new(metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder())
    } else {
        Box::new(
            agentcore_telemetry::bridge::metrics_recorder::AgentcoreRecorder::new(&Registry::new()),
        )
    };
    metrics::with_local_recorder(&*recorder, || {
        run(1_000);
        run(n);
    });
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
    let hf = registry
        .histogram_family("step_seconds", "Step.", &["agent_id"], Buckets::default())
        .unwrap();
    let ids: Vec<String> = (0..50).map(|i| format!("agent-{i:03}")).collect();
    for id in &ids {
        hf.with_label_values(&[id.as_str()]).unwrap();
    }
    let vals: Vec<f64> = (0..4096)
        .map(|i| 10f64.powf(-4.0 + 5.0 * (i as f64 / 4096.0)))
        .collect();
    let tracer = agentcore_telemetry::DistributedTracer::new(Default::default());
    let unsampled =
        agentcore_telemetry::DistributedTracer::new(agentcore_telemetry::TracerConfig {
            sampler: Some(agentcore_telemetry::Sampler::ratio(0.0)),
            from_env: false,
            ..Default::default()
        });
    // Fill the span log once, in every run (so the baseline subtracts it too): `span_basic`
    // then measures the steady state, the ring wrapping.
    fill_span_log(&tracer, tracer.span_log_capacity() as u64);
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
        "scrape_text" | "scrape_openmetrics" => scrape(what == "scrape_openmetrics", n),
        "scrape_pclient_openmetrics" => scrape_pclient(n),
        "encode_span_proto" => encode_span(proto, &view, n),
        "encode_span_json" => encode_span(json, &view, n),
        "floor_load_store" => floor_load_store(&AtomicU64::new(0), n),
        "counter_inc" => counter_inc(&c, n),
        "counter_inc_exemplar" => counter_inc_exemplar(&tracer, n),
        "labeled_inc" => labeled_inc(&f, &sets, n),
        "histogram_observe" => histogram_observe(&h, &vals, n),
        "labeled_histogram_observe" => labeled_histogram_observe(&hf, &ids, &vals, n),
        "labeled_inc_loop" => labeled_inc_loop(&f, &sets, n),
        "labeled_histogram_observe_loop" => labeled_histogram_observe_loop(&hf, &ids, &vals, n),
        "span_basic" => span_basic(&tracer, n),
        "span_unsampled" => span_unsampled(&unsampled, n),
        "span_dropped" => span_dropped(&tracer, n),
        "span_unsampled_dropped" => span_unsampled_dropped(&unsampled, n),
        "span_start_attributes" => span_start_attributes(&tracer, n),
        "span_event_attributes" => span_event_attributes(&tracer, n),
        "macro_call" => {
            // The span log filled first, as the comparison's arm does.
            for _ in 0..agentcore_telemetry::get_distributed_tracer().span_log_capacity() {
                traced(0);
            }
            macro_call(n)
        }
        "bridge_span" => bridge_span(false, n),
        "bridge_record" => bridge_record(n),
        "bridge_record_unsampled" => bridge_record_unsampled(n),
        "bridge_span_otel" => bridge_span(true, n),
        "bridge_counter" => bridge_counter(false, n),
        "bridge_counter_prom" => bridge_counter(true, n),
        "traceparent_varied" => traceparent_varied(&varied_traceparents(), n),
        _ => {}
    }
}
