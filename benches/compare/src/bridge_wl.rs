//! The bridge workloads (issue 14): the facades' own macros, through our bridges and through the
//! peers they replace.
//!
//! * `bridge_span`: a `tracing` span with 2 fields (`tool_id = "calculator"`, `attempt = 1`),
//!   entered, one event (`"checkpoint"`), closed; through `AgentcoreLayer` into our tracer's span
//!   log, and through tracing-opentelemetry into the OpenTelemetry SDK (`BatchSpanProcessor`
//!   with a no-op exporter, flushed inside each sample so its thread is charged). Both layers
//!   run without location, thread and busy/idle extras (options on both sides).
//! * `bridge_counter`: `counter!("tool_calls_total", "tool" => tool, "status" => status)` with 2
//!   dynamic `&'static str` labels cycling over 6 series; through `AgentcoreRecorder` and through
//!   metrics-exporter-prometheus's `PrometheusRecorder`. The macro builds its label `Vec` on
//!   every call in both arms (one allocation the recorders do not control).

use std::hint::black_box;

use agentcore_telemetry::bridge::metrics_recorder::AgentcoreRecorder;
use agentcore_telemetry::bridge::tracing_layer::AgentcoreLayer;
use agentcore_telemetry::{DistributedTracer, Registry, SpanKind, TracerConfig};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter,
};
use tracing_subscriber::layer::SubscriberExt as _;

use crate::harness::{Arm, Workload};

pub const OURS: &str = "agentcore";
pub const TRACING_OTEL: &str = "tracing-opentelemetry";
pub const METRICS_PROM: &str = "metrics-exporter-prometheus";

#[derive(Debug)]
struct NoopExporter;

impl SpanExporter for NoopExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        black_box(batch);
        Ok(())
    }
}

#[inline(always)]
fn span_with_event() {
    let span = tracing::info_span!("tool_execution", tool_id = "calculator", attempt = 1i64);
    let _e = span.enter();
    tracing::info!("checkpoint");
}

/// The span workload.
pub fn bridge_span() -> Workload {
    let tracer: &'static DistributedTracer =
        Box::leak(Box::new(DistributedTracer::new(TracerConfig::default())));
    for _ in 0..tracer.span_log_capacity() {
        tracer.start_span("warm", SpanKind::Internal, []).end();
    }
    let ours =
        tracing::Dispatch::new(tracing_subscriber::registry().with(AgentcoreLayer::new(tracer)));
    let bsp = BatchSpanProcessor::builder(NoopExporter)
        .with_batch_config(
            // Drains only on flush: see `trace_wl::otel_provider` for the SDK race this avoids
            // (it hung this arm's callgrind count on 2026-11-30).
            BatchConfigBuilder::default()
                .with_max_queue_size(1 << 20)
                .with_max_export_batch_size(1 << 20)
                .with_scheduled_delay(std::time::Duration::from_secs(24 * 3600))
                .build(),
        )
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(bsp)
        .build();
    let otel = tracing::Dispatch::new(
        tracing_subscriber::registry().with(
            tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("bench"))
                .with_location(false)
                .with_threads(false)
                .with_tracked_inactivity(false),
        ),
    );
    Workload {
        id: "bridge_span",
        title: "tracing span (2 fields) + enter + 1 event + close, through a layer",
        threads: 1,
        arms: vec![
            Arm::new(OURS, move |n| {
                tracing::dispatcher::with_default(&ours, || {
                    for _ in 0..n {
                        span_with_event();
                    }
                });
                None
            })
            .note("agentcore: AgentcoreLayer into the span log"),
            Arm::new(TRACING_OTEL, move |n| {
                tracing::dispatcher::with_default(&otel, || {
                    for _ in 0..n {
                        span_with_event();
                    }
                });
                crate::trace_wl::otel_flush(&provider);
                None
            })
            .flushes()
            .note("tracing-opentelemetry: the SDK's BatchSpanProcessor, no-op exporter, flushed per sample"),
        ],
        todo: None,
    }
}

const TOOLS: [&str; 3] = ["calculator", "search", "browser"];
const STATUSES: [&str; 2] = ["ok", "error"];

#[inline(always)]
fn counter_call(i: u64) {
    let tool: &'static str = TOOLS[i as usize % 3];
    let status: &'static str = STATUSES[i as usize % 2];
    metrics::counter!("tool_calls_total", "tool" => tool, "status" => status).increment(1);
}

/// The counter workload.
pub fn bridge_counter() -> Workload {
    let ours = AgentcoreRecorder::new(&Registry::new());
    let prom = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    Workload {
        id: "bridge_counter",
        title: "counter! with 2 dynamic labels (6 series), through a recorder",
        threads: 1,
        arms: vec![
            Arm::new(OURS, move |n| {
                metrics::with_local_recorder(&ours, || {
                    for i in 0..n {
                        counter_call(black_box(i));
                    }
                });
                None
            })
            .note("agentcore: AgentcoreRecorder (cached handle, lock-free lookup)"),
            Arm::new(METRICS_PROM, move |n| {
                metrics::with_local_recorder(&prom, || {
                    for i in 0..n {
                        counter_call(black_box(i));
                    }
                });
                None
            })
            .note("metrics-exporter-prometheus: PrometheusRecorder"),
        ],
        todo: None,
    }
}
