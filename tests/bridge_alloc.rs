//! Allocations per call through the bridges, with the counting allocator
//! (`tests/support/alloc.rs`), next to the peers they replace (reported, not asserted).
//!
//! * A `counter!`/`gauge!`/`histogram!` whose key the recorder has seen: 0 allocations with
//!   static labels, also with `description:` (which describes the name on every call), also
//!   for a name the recorder sanitizes (`http.requests`). With dynamic labels the macro itself builds its label `Vec` (one
//!   allocation, before the recorder is called); the recorder's part, measured on its own with a
//!   prebuilt key, is 0.
//! * A `tracing` span with 2 fields and an event with fields: at most 1 allocation (the
//!   subscriber registry boxes the span's extension). An event *message* is formatted into the
//!   event name: one more.
//!
//! One test function, so no other test thread allocates while it counts.

use agentcore_telemetry::bridge::metrics_recorder::AgentcoreRecorder;
use agentcore_telemetry::bridge::tracing_layer::AgentcoreLayer;
use agentcore_telemetry::{DistributedTracer, Registry, TracerConfig};
use metrics::Recorder;
use support::alloc::process_allocations;
use tracing_subscriber::layer::SubscriberExt;

mod support;

#[global_allocator]
static GLOBAL: support::alloc::Counting = support::alloc::Counting;

/// Allocations per call of `f`, after a warm-up.
fn per_call(iterations: u64, mut f: impl FnMut(u64)) -> f64 {
    for i in 0..1_000 {
        f(i); // warm up: thread-locals, arenas, caches, slab slots
    }
    let before = process_allocations();
    for i in 0..iterations {
        f(i);
    }
    (process_allocations() - before) as f64 / iterations as f64
}

const STATUSES: [&str; 2] = ["ok", "error"];
const TOOLS: [&str; 3] = ["calculator", "search", "browser"];

fn metrics_calls(label: &str, recorder: &dyn Recorder) -> [f64; 6] {
    metrics::with_local_recorder(recorder, || {
        let static_counter = per_call(10_000, |_| {
            metrics::counter!("calls_total", "tool" => "calculator", "status" => "ok").increment(1)
        });
        let static_histogram = per_call(10_000, |i| {
            metrics::histogram!("latency_seconds", "tool" => "calculator").record(i as f64 / 1e4)
        });
        let dynamic_counter = per_call(10_000, |i| {
            let tool: &'static str = TOOLS[i as usize % 3];
            let status: &'static str = STATUSES[i as usize % 2];
            metrics::counter!("dyn_total", "tool" => tool, "status" => status).increment(1)
        });
        // `description:` makes the macro describe the name on every call, before registering.
        let described = per_call(10_000, |_| {
            metrics::counter!(description: "Described.", "described_total", "tool" => "calculator")
                .increment(1)
        });
        // The same with a name that is not a Prometheus name as it is (the `metrics` style with
        // dots): the description is for its sanitized name, `described_dotted_total`.
        let described_dotted = per_call(10_000, |_| {
            metrics::counter!(description: "Described.", "described.dotted.total", "tool" => "calculator")
                .increment(1)
        });
        let keys: Vec<metrics::Key> = (0..6)
            .map(|i| {
                metrics::Key::from_parts(
                    "prebuilt_total",
                    vec![
                        metrics::Label::new("tool", TOOLS[i % 3].to_string()),
                        metrics::Label::new("status", STATUSES[i % 2].to_string()),
                    ],
                )
            })
            .collect();
        static META: metrics::Metadata<'static> =
            metrics::Metadata::new("bridge_alloc", metrics::Level::INFO, None);
        let recorder_part = per_call(10_000, |i| {
            recorder
                .register_counter(&keys[i as usize % 6], &META)
                .increment(1)
        });
        println!(
            "{label:>12}: counter! static {static_counter:.2}, histogram! static {static_histogram:.2}, \
             counter! 2 dynamic labels {dynamic_counter:.2}, register_counter (prebuilt dynamic key) {recorder_part:.2}, \
             counter!(description:) static {described:.2}, with a dotted name {described_dotted:.2} allocations per call"
        );
        [
            static_counter,
            static_histogram,
            dynamic_counter,
            recorder_part,
            described,
            described_dotted,
        ]
    })
}

fn tracing_calls(label: &str, dispatch: &tracing::Dispatch) -> [f64; 2] {
    tracing::dispatcher::with_default(dispatch, || {
        let span_and_event = per_call(10_000, |i| {
            let span = tracing::info_span!("request", user_id = i as i64, premium = true);
            let _e = span.enter();
            tracing::info!(tokens = 12_i64);
        });
        let with_message = per_call(10_000, |i| {
            let span = tracing::info_span!("request", user_id = i as i64, premium = true);
            let _e = span.enter();
            tracing::info!(tokens = 12_i64, "called the model");
        });
        println!(
            "{label:>22}: span (2 fields) + event {span_and_event:.2}, with an event message {with_message:.2} allocations per span"
        );
        [span_and_event, with_message]
    })
}

#[test]
fn allocations_per_call() {
    // metrics: ours, then the peer (reported).
    let registry = Registry::new();
    let ours = AgentcoreRecorder::new(&registry);
    let [static_counter, static_histogram, dynamic_counter, recorder_part, described, described_dotted] =
        metrics_calls("ours", &ours);
    assert_eq!(static_counter, 0.0, "cached counter! with static labels");
    assert_eq!(
        static_histogram, 0.0,
        "cached histogram! with static labels"
    );
    assert_eq!(
        recorder_part, 0.0,
        "the recorder's part of a dynamic-label call"
    );
    assert_eq!(
        described, 0.0,
        "cached counter!(description:) with static labels"
    );
    assert_eq!(
        described_dotted, 0.0,
        "cached counter!(description:) with a name the recorder sanitizes"
    );
    assert!(
        dynamic_counter <= 1.0,
        "only the macro's own label Vec: {dynamic_counter}"
    );
    let peer = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    metrics_calls("prometheus", &peer);

    // tracing: ours, then tracing-opentelemetry with the SDK (reported).
    let tracer: &'static DistributedTracer =
        Box::leak(Box::new(DistributedTracer::new(TracerConfig::default())));
    let dispatch =
        tracing::Dispatch::new(tracing_subscriber::registry().with(AgentcoreLayer::new(tracer)));
    let [span_and_event, with_message] = tracing_calls("ours", &dispatch);
    assert!(span_and_event <= 1.0, "{span_and_event} per span");
    assert!(with_message <= 2.0, "{with_message} per span");
    assert_eq!(
        tracer.stats().spans_finished,
        22_000,
        "every span was recorded"
    );

    use opentelemetry::trace::TracerProvider as _;
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let otel = tracing::Dispatch::new(
        tracing_subscriber::registry().with(
            tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("alloc"))
                .with_location(false)
                .with_threads(false)
                .with_target(false)
                .with_tracked_inactivity(false),
        ),
    );
    tracing_calls("tracing-opentelemetry", &otel);
}
