//! The tracing workloads: agentcore-telemetry's tracer against `fastrace` (with a real global
//! collector and a no-op `Reporter`), the OpenTelemetry SDK (`BatchSpanProcessor` with a no-op
//! exporter) and `tracing` with a `tracing-subscriber` `Registry`.
//!
//! Fairness rules every arm follows:
//! * the same span names, the same two attributes (`tool_id = "calculator"`, `attempt = 1`) and
//!   one event named `checkpoint`, with no event attributes;
//! * **consumers are charged**: each sample ends with the library's flush (`fastrace::flush()`,
//!   `SdkTracerProvider::force_flush()`), inside the measured region, and the CPU column counts
//!   every thread, so the collector thread and the batch processor's thread are charged for the
//!   spans of the sample;
//! * **nothing is dropped**: fastrace drops spans above 10,240 per local span line, and the OTel
//!   batch processor drops spans when its queue is full; so fastrace runs its spans under a root
//!   span closed every 1,000 spans (its documented fast path: `LocalSpan`s under a local parent),
//!   and OTel's queue is made larger than any sample (`max_queue_size = 2^20`) and flushed at the
//!   end of the sample;
//! * `tracing` with a bare `Registry` keeps span structure but no field values and no events (it
//!   has no layer that stores them): it does less work than the others, and the table says so.

use std::borrow::Cow;
use std::hint::black_box;
use std::time::Duration;

use fastrace::collector::{Config as FtConfig, Reporter, SpanRecord};
use fastrace::prelude::{Event as FtEvent, LocalSpan, Span as FtSpan, SpanContext as FtContext};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{Span as _, TraceContextExt as _, Tracer as _, TracerProvider as _};
use opentelemetry::{Context as OtContext, KeyValue as OtKv};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracer, SdkTracerProvider, SpanData,
    SpanExporter,
};
use tracing_subscriber::layer::SubscriberExt as _;

use crate::harness::{Arm, Workload};

pub const OURS: &str = "agentcore";
pub const FASTRACE: &str = "fastrace";
pub const OTEL: &str = "opentelemetry";
pub const TRACING: &str = "tracing";

/// Spans per fastrace root (below its 10,240-span cap per span line).
const CHUNK: u64 = 1000;

pub const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

struct NoopReporter;

impl Reporter for NoopReporter {
    fn report(&mut self, spans: Vec<SpanRecord>) {
        black_box(spans);
    }
}

#[derive(Debug)]
struct NoopExporter;

impl SpanExporter for NoopExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        black_box(batch);
        Ok(())
    }
}

/// Process-wide set-up of the peers that need global state: fastrace's reporter and tracing's
/// global subscriber (a `Registry` with an INFO level filter, so `debug_span!` is the
/// "not sampled" path).
pub fn init_globals() {
    fastrace::set_reporter(NoopReporter, FtConfig::default());
    let subscriber =
        tracing_subscriber::registry().with(tracing_subscriber::filter::LevelFilter::INFO);
    tracing::subscriber::set_global_default(subscriber).expect("first global subscriber");
}

/// The SDK's `force_flush`, until it succeeds: its timeout is fixed at 5 s (a `TODO` in
/// opentelemetry_sdk 0.31), which a flush of 8,192 spans can exceed under valgrind or on a
/// loaded machine; the processor goes on exporting meanwhile, so flushing again waits for the
/// rest. Any other error stops the run.
pub fn otel_flush(provider: &SdkTracerProvider) {
    for _ in 0..24 {
        match provider.force_flush() {
            Ok(()) => return,
            // The provider reports its processors' timeouts as `InternalFailure("errs:
            // [Err(Timeout(5s))]")`.
            Err(OTelSdkError::Timeout(_)) => continue,
            Err(OTelSdkError::InternalFailure(m)) if m.contains("Timeout(") => continue,
            Err(e) => panic!("opentelemetry force_flush: {e:?}"),
        }
    }
    panic!("opentelemetry force_flush: timed out 24 times");
}

/// The OpenTelemetry arms' provider: a batch processor whose worker drains only when asked to
/// flush (a batch as large as the queue, a schedule longer than any run), so that it never
/// drains while the arm records. opentelemetry_sdk 0.31's processor counts a span into its
/// batch size *after* sending it (`on_end`: `try_send`, then `fetch_add`); a worker draining
/// concurrently can receive the span and `fetch_sub` first, wrapping the counter, and then loops
/// on empty exports towards a target near `usize::MAX`, answering no flush again. Full runs
/// (41 rounds of 10 ms) hit that three times on 2026-11-30 ("force_flush: timed out 24 times"
/// in `span_basic` and `span_nested`). Every span is still exported, and charged, inside the
/// sample: the arm flushes before the sample ends.
fn otel_provider(sampler: Sampler) -> (SdkTracerProvider, SdkTracer) {
    let bsp = BatchSpanProcessor::builder(NoopExporter)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_max_queue_size(1 << 20)
                .with_max_export_batch_size(1 << 20)
                .with_scheduled_delay(Duration::from_secs(24 * 3600))
                .build(),
        )
        .build();
    let provider = SdkTracerProvider::builder()
        .with_sampler(sampler)
        .with_span_processor(bsp)
        .build();
    let tracer = provider.tracer("bench");
    (provider, tracer)
}

/// Runs `body` `n` times for fastrace: under a root span closed every [`CHUNK`] spans, then
/// flushes the global collector.
fn fastrace_chunks(n: u64, mut body: impl FnMut()) {
    let mut left = n;
    while left > 0 {
        let k = left.min(CHUNK);
        let root = FtSpan::root("batch", FtContext::random());
        {
            let _g = root.set_local_parent();
            for _ in 0..k {
                body();
            }
        }
        drop(root);
        left -= k;
    }
    fastrace::flush();
}

fn otel_span(tracer: &SdkTracer) {
    let mut span = tracer.start("tool_execution");
    span.set_attribute(OtKv::new("tool_id", "calculator"));
    span.set_attribute(OtKv::new("attempt", 1i64));
    span.add_event("checkpoint", vec![]);
    span.end();
}

/// Our arm of a tracing workload, or `None` when the tracer is not on this branch yet.
pub type OursArm = Option<Arm>;

fn workload(id: &'static str, title: &'static str, ours: OursArm, peers: Vec<Arm>) -> Workload {
    let todo = if ours.is_none() {
        Some("agentcore not measured")
    } else {
        None
    };
    let mut arms: Vec<Arm> = ours.into_iter().collect();
    arms.extend(peers);
    Workload {
        id,
        title,
        threads: 1,
        arms,
        todo,
    }
}

/// A span: start, 2 attributes, 1 event, finish (sampled, exported to a no-op sink).
pub fn span_basic(ours: OursArm) -> Workload {
    let (provider, tracer) = otel_provider(Sampler::AlwaysOn);
    workload(
        "span_basic",
        "span start + 2 attributes + 1 event + finish",
        ours,
        vec![
            Arm::new(FASTRACE, |n| {
                fastrace_chunks(n, || {
                    let _s = LocalSpan::enter_with_local_parent("tool_execution").with_properties(
                        || {
                            [
                                ("tool_id", Cow::Borrowed("calculator")),
                                ("attempt", Cow::Borrowed("1")),
                            ]
                        },
                    );
                    LocalSpan::add_event(FtEvent::new("checkpoint"));
                });
                None
            })
            .flushes()
            .note("fastrace: LocalSpans under a root closed every 1,000 spans; property values are strings"),
            Arm::new(OTEL, move |n| {
                for _ in 0..n {
                    otel_span(black_box(&tracer));
                }
                otel_flush(&provider);
                None
            })
            .flushes()
            .note("opentelemetry: the span is not made the thread's current context (agentcore's is)"),
            Arm::new(TRACING, |n| {
                for _ in 0..n {
                    let span =
                        tracing::info_span!("tool_execution", tool_id = "calculator", attempt = 1i64);
                    let _e = span.enter();
                    tracing::info!("checkpoint");
                }
                None
            })
            .note("tracing: a bare Registry stores neither field values nor events"),
        ],
    )
}

/// A parent span with 3 children started and finished inside it (4 spans per operation).
pub fn span_nested(ours: OursArm) -> Workload {
    let (provider, tracer) = otel_provider(Sampler::AlwaysOn);
    workload(
        "span_nested",
        "parent span with 3 nested children (4 spans)",
        ours,
        vec![
            Arm::new(FASTRACE, |n| {
                // 4 spans per operation: keep each root's line under the cap.
                let mut left = n;
                while left > 0 {
                    let k = left.min(CHUNK / 4);
                    let root = FtSpan::root("batch", FtContext::random());
                    {
                        let _g = root.set_local_parent();
                        for _ in 0..k {
                            let _p = LocalSpan::enter_with_local_parent("agent_lifecycle");
                            for _ in 0..3 {
                                let _c = LocalSpan::enter_with_local_parent("step");
                            }
                        }
                    }
                    drop(root);
                    left -= k;
                }
                fastrace::flush();
                None
            })
            .flushes(),
            Arm::new(OTEL, move |n| {
                let t = black_box(&tracer);
                for _ in 0..n {
                    let parent = t.start("agent_lifecycle");
                    let cx = OtContext::current_with_span(parent);
                    for _ in 0..3 {
                        let mut c = t.start_with_context("step", &cx);
                        c.end();
                    }
                    cx.span().end();
                }
                otel_flush(&provider);
                None
            })
            .flushes()
            .note("opentelemetry: children get the parent through an explicit Context"),
            Arm::new(TRACING, |n| {
                for _ in 0..n {
                    let p = tracing::info_span!("agent_lifecycle");
                    let _pe = p.enter();
                    for _ in 0..3 {
                        let c = tracing::info_span!("step");
                        let _ce = c.enter();
                    }
                }
                None
            }),
        ],
    )
}

/// The same span as `span_basic`, not sampled.
pub fn span_unsampled(ours: OursArm) -> Workload {
    let (provider, tracer) = otel_provider(Sampler::AlwaysOff);
    workload(
        "span_unsampled",
        "unsampled span (start + 2 attributes + 1 event + finish)",
        ours,
        vec![
            Arm::new(FASTRACE, |n| {
                // No local parent: fastrace's not-sampled path (every call is a no-op).
                for _ in 0..n {
                    let _s = LocalSpan::enter_with_local_parent("tool_execution").with_properties(
                        || {
                            [
                                ("tool_id", Cow::Borrowed("calculator")),
                                ("attempt", Cow::Borrowed("1")),
                            ]
                        },
                    );
                    LocalSpan::add_event(FtEvent::new("checkpoint"));
                }
                None
            })
            .note("fastrace: a LocalSpan with no local parent"),
            Arm::new(OTEL, move |n| {
                for _ in 0..n {
                    otel_span(black_box(&tracer));
                }
                otel_flush(&provider);
                None
            })
            .flushes()
            .note("opentelemetry: Sampler::AlwaysOff"),
            Arm::new(TRACING, |n| {
                for _ in 0..n {
                    let span = tracing::debug_span!(
                        "tool_execution",
                        tool_id = "calculator",
                        attempt = 1i64
                    );
                    let _e = span.enter();
                    tracing::debug!("checkpoint");
                }
                None
            })
            .note("tracing: debug_span! below the subscriber's INFO filter"),
        ],
    )
}

#[fastrace::trace(short_name = true)]
fn ft_traced(x: u64) -> u64 {
    black_box(x) + 1
}

#[tracing::instrument(skip_all)]
fn tr_traced(x: u64) -> u64 {
    black_box(x) + 1
}

/// A call to a function instrumented by an attribute macro (the function body is trivial).
pub fn macro_call(ours: OursArm) -> Workload {
    workload(
        "macro_call",
        "call of an attribute-instrumented function (#[trace_operation])",
        ours,
        vec![
            Arm::new(FASTRACE, |n| {
                let mut i = 0u64;
                fastrace_chunks(n, || {
                    i = ft_traced(i);
                });
                None
            })
            .flushes()
            .note("fastrace: #[fastrace::trace(short_name = true)] (a LocalSpan)"),
            Arm::new(TRACING, |n| {
                let mut i = 0u64;
                for _ in 0..n {
                    i = tr_traced(i);
                }
                black_box(i);
                None
            })
            .note("tracing: #[instrument(skip_all)]; opentelemetry has no attribute macro"),
        ],
    )
}

struct OneHeader<'a>(&'a str);

impl Extractor for OneHeader<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        (key == "traceparent").then_some(self.0)
    }
    fn keys(&self) -> Vec<&str> {
        vec!["traceparent"]
    }
}

struct OutHeader<'a>(&'a mut String);

impl Injector for OutHeader<'_> {
    fn set(&mut self, key: &str, value: String) {
        if key == "traceparent" {
            self.0.push_str(&value);
        }
    }
}

/// `traceparent`: extract (parse) an incoming header, inject (format) an outgoing one.
pub fn traceparent() -> Workload {
    use agentcore_telemetry::propagation::TraceParent;
    let prop = TraceContextPropagator::new();
    let mut obuf = String::with_capacity(64);
    let mut pbuf = String::with_capacity(64);
    Workload {
        id: "traceparent",
        title: "traceparent extract + inject",
        threads: 1,
        todo: None,
        arms: vec![
            Arm::new(OURS, move |n| {
                for i in 0..n {
                    let tp = TraceParent::parse(black_box(TRACEPARENT)).unwrap();
                    obuf.clear();
                    tp.child(i | 1).write_to(&mut obuf);
                    black_box(&obuf);
                }
                None
            })
            .note("agentcore: `TraceParent::parse`, then `child(span_id).write_to(&mut reused String)`"),
            Arm::new(FASTRACE, |n| {
                for _ in 0..n {
                    let cx = FtContext::decode_w3c_traceparent(black_box(TRACEPARENT)).unwrap();
                    black_box(cx.encode_w3c_traceparent());
                }
                None
            }),
            Arm::new(OTEL, move |n| {
                for _ in 0..n {
                    let cx = prop.extract(&OneHeader(black_box(TRACEPARENT)));
                    pbuf.clear();
                    prop.inject_context(&cx, &mut OutHeader(&mut pbuf));
                    black_box(&pbuf);
                }
                None
            })
            .note("opentelemetry: TraceContextPropagator with a one-header extractor/injector"),
        ],
    }
}

/// Distinct headers `traceparent_varied` cycles through (a power of two).
const VARIED_HEADERS: usize = 4096;

/// `VARIED_HEADERS` distinct `traceparent` values with random ids (a fixed seed: the same ones
/// in every run and for every arm), sampled.
fn varied_traceparents() -> std::sync::Arc<Vec<String>> {
    let mut s = 0x243f_6a88_85a3_08d3u64;
    let mut next = move || {
        // xorshift64: enough to make every digit of every id a coin toss.
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let headers = (0..VARIED_HEADERS)
        .map(|_| {
            let trace_id = u128::from(next()) << 64 | u128::from(next());
            format!("00-{trace_id:032x}-{:016x}-01", next())
        })
        .collect();
    std::sync::Arc::new(headers)
}

/// `traceparent` on the headers a server receives: each call a different trace (4,096 distinct
/// headers with random ids, cycled), where `traceparent` parses one header again and again,
/// whose digits a branch predictor learns.
pub fn traceparent_varied() -> Workload {
    use agentcore_telemetry::propagation::TraceParent;
    let prop = TraceContextPropagator::new();
    let mut obuf = String::with_capacity(64);
    let mut pbuf = String::with_capacity(64);
    let (ours, ft, otel) = (
        varied_traceparents(),
        varied_traceparents(),
        varied_traceparents(),
    );
    let mask = VARIED_HEADERS as u64 - 1;
    Workload {
        id: "traceparent_varied",
        title: "traceparent extract + inject, a different trace each call (4,096 headers cycled)",
        threads: 1,
        todo: None,
        arms: vec![
            Arm::new(OURS, move |n| {
                for i in 0..n {
                    let h = ours[(i & mask) as usize].as_str();
                    let tp = TraceParent::parse(black_box(h)).unwrap();
                    obuf.clear();
                    tp.child(i | 1).write_to(&mut obuf);
                    black_box(&obuf);
                }
                None
            })
            .note("agentcore: as `traceparent`, each call on the next of 4,096 headers with random ids"),
            Arm::new(FASTRACE, move |n| {
                for i in 0..n {
                    let h = ft[(i & mask) as usize].as_str();
                    let cx = FtContext::decode_w3c_traceparent(black_box(h)).unwrap();
                    black_box(cx.encode_w3c_traceparent());
                }
                None
            }),
            Arm::new(OTEL, move |n| {
                for i in 0..n {
                    let h = otel[(i & mask) as usize].as_str();
                    let cx = prop.extract(&OneHeader(black_box(h)));
                    pbuf.clear();
                    prop.inject_context(&cx, &mut OutHeader(&mut pbuf));
                    black_box(&pbuf);
                }
                None
            }),
        ],
    }
}

// ---------------------------------------------------------------------------------------------
// agentcore-telemetry's tracer.
// ---------------------------------------------------------------------------------------------

use agentcore_telemetry::{DistributedTracer, SpanKind, SpanStatus, TracerConfig};

/// A tracer of our own for one workload (default span log; `Sampler::ratio` 1 or 0), leaked so
/// that arms can hold it for the whole run. Spans finish into its in-process span log: there is
/// no background thread, so there is nothing to flush. The log is filled once before measuring,
/// so samples run with the ring wrapping (the steady state), never on first-touch pages.
fn our_tracer(sample_ratio: f64) -> &'static DistributedTracer {
    let t = Box::leak(Box::new(DistributedTracer::new(TracerConfig {
        sampler: Some(agentcore_telemetry::Sampler::ratio(sample_ratio)),
        ..TracerConfig::default()
    })));
    for _ in 0..t.span_log_capacity() {
        t.start_span("warm", SpanKind::Internal, []).end();
    }
    t
}

/// S1: start, 2 attributes, 1 event, finish (also `export_wl`'s span, so both measure the
/// same recording).
#[inline(always)]
pub fn our_span(t: &DistributedTracer) {
    let mut span = t.start_span("tool_execution", SpanKind::Internal, []);
    span.set_attribute("tool_id", "calculator");
    span.set_attribute("attempt", 1i64);
    span.add_event("checkpoint", []);
    t.finish_span(span, SpanStatus::Ok, None);
}

/// Our arm of `span_basic`.
pub fn ours_span_basic() -> Arm {
    let t = our_tracer(1.0);
    Arm::new(OURS, move |n| {
        for _ in 0..n {
            our_span(black_box(t));
        }
        None
    })
}

/// Our arm of `span_nested`.
pub fn ours_span_nested() -> Arm {
    let t = our_tracer(1.0);
    Arm::new(OURS, move |n| {
        let t = black_box(t);
        for _ in 0..n {
            let p = t.start_span("agent_lifecycle", SpanKind::Internal, []);
            for _ in 0..3 {
                let c = t.start_span("step", SpanKind::Internal, []);
                t.finish_span(c, SpanStatus::Ok, None);
            }
            t.finish_span(p, SpanStatus::Ok, None);
        }
        None
    })
}

/// Our arm of `span_unsampled`: a tracer with `Sampler::ratio(0.0)`.
pub fn ours_span_unsampled() -> Arm {
    let t = our_tracer(0.0);
    Arm::new(OURS, move |n| {
        for _ in 0..n {
            our_span(black_box(t));
        }
        None
    })
    .note("agentcore: a tracer with Sampler::ratio(0)")
}

#[agentcore_telemetry::trace_operation]
fn ours_traced(x: u64) -> u64 {
    black_box(x) + 1
}

/// Our arm of `macro_call`: `#[trace_operation]` (the global tracer, default configuration).
pub fn ours_macro_call() -> Arm {
    for _ in 0..agentcore_telemetry::get_distributed_tracer().span_log_capacity() {
        ours_traced(0);
    }
    Arm::new(OURS, |n| {
        let mut i = 0u64;
        for _ in 0..n {
            i = ours_traced(i);
        }
        black_box(i);
        None
    })
}
