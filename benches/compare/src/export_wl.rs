//! The span export rows (issue 12): what OTLP export costs, against the loopback sink of
//! `sink.rs` (a stand-in for the collector, on `127.0.0.1`, answering `200` to everything).
//!
//! * **`export_recording`**: S1 (`span_basic`'s span: start, 2 attributes, 1 event, finish) on
//!   two tracers of the same configuration, one without an exporter and one exporting by
//!   OTLP/HTTP protobuf to the sink all the time. The figures that matter are the recording
//!   thread's own: its CPU time (`CLOCK_THREAD_CPUTIME_ID`) and its allocations per span. The
//!   recording thread runs flat out (tens of millions of spans per second, far above what one
//!   exporter thread sends), so the exporter is busy for the whole sample and most spans are
//!   dropped (counted `queue_full` / `overwritten`): the worst case for the recording thread,
//!   which then shares the span log's cache lines with a reader that never rests. Before each
//!   sample (outside it), each arm records 50,000 spans, and the exporting arm goes on until
//!   its exporter has exported twice (it sleeps between looks, up to 50 ms, until recording
//!   threads wake it), so that every sample runs with the exporter busy. A third arm is the
//!   control: the tracer without an exporter while a thread that shares nothing with it
//!   streams writes through 64 MiB on the other core ([`Neighbour`]). The recording thread
//!   writes its span into a slot of a 38 MB span log, out of every cache, so it waits on
//!   memory, and any busy neighbour's memory traffic slows it: the control shows how much on
//!   this machine, without the exporter.
//! * **`export_recording_paced`**: the same two tracers, recording in bursts of [`BURST`]
//!   spans with a 250 µs sleep after each (about 0.7 M spans per second on the 2-vCPU EPYC of
//!   benches/README.md), a rate one exporter thread keeps up with: the steady state of a
//!   service whose exporter is not overloaded. Thread CPU per span, as above; the sleeps cost
//!   both arms the same. Before each sample the exporting arm records at that rate until its
//!   exporter is exporting (it slept through the other arm's sample); the target row counts
//!   what the exporter exported and dropped while the samples ran.
//! * **`export_process_cpu`**: process CPU time (every thread: recording, encoding, sending,
//!   the HTTP client's runtime threads) per *exported* span, ours against `opentelemetry-otlp`
//!   (OTLP/HTTP protobuf over reqwest's blocking client, the SDK's `BatchSpanProcessor`), each
//!   with its own sink. Spans are recorded in chunks of [`CHUNK`], each followed by the
//!   library's `force_flush`, and both queues hold a chunk (`max_queue_size` 65,536, batches of
//!   512), so every span is exported; the sink's CPU time is excluded (it is the collector's).
//!   The sink counts the spans it received, which must equal the spans recorded.
//! * **`export_throughput`** ([`throughput`]): spans per second one exporter thread of ours
//!   encodes and sends: the span log is filled with [`DRAIN_SPANS`] spans while the exporter
//!   sleeps (or, woken by the recording thread, waits for the sink's answer to its first
//!   batch, which the sink holds: so up to 512 spans are encoded before the timing starts),
//!   then `force_flush` is timed while it drains them, batch after batch. A pre-filled
//!   drain rather than a steady state with a producer: on a 2-core machine a producer thread
//!   (and the sink) would compete with the exporter thread for the cores, and the figure would
//!   measure the scheduler; the drain measures the thread alone, at its maximum rate.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agentcore_telemetry::export::{BatchConfig, ExportConfig, ExportStats};
use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};
use opentelemetry::trace::{Span as _, Status, Tracer as _, TracerProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracer, SdkTracerProvider,
};

use crate::harness::{self, process_cpu_ns, thread_cpu_ns, Arm, Plan, Workload};
use crate::sink::{Sink, SinkStats};
use crate::trace_wl::{otel_flush, our_span};

/// Our arm without an exporter (the baseline of the ratios).
pub const OURS: &str = crate::trace_wl::OURS;
/// Our arm with the OTLP exporter running.
pub const OURS_EXPORTING: &str = "agentcore + OTLP exporter";
/// The control arm of `export_recording`: no exporter, a memory-streaming neighbour thread.
pub const OURS_NEIGHBOUR: &str = "agentcore + memory-streaming neighbour (no exporter)";
/// Spans per burst in `export_recording_paced`.
pub const BURST: u64 = 256;
/// The peer: opentelemetry-otlp 0.31, http-proto, reqwest blocking client.
pub const OTLP: &str = "opentelemetry-otlp";

/// Spans each arm of `export_recording` records before a sample, outside it (and then, with
/// the exporter, until the exporter is exporting).
const PREPARE_SPANS: u64 = 50_000;
/// Spans recorded between two flushes in `export_process_cpu`.
pub const CHUNK: u64 = 8192;
/// Spans pre-filled per round of `export_throughput`.
pub const DRAIN_SPANS: u64 = 32_768;
/// Both libraries' `max_queue_size` in `export_process_cpu` (a chunk fits with room).
const QUEUE: usize = 65_536;
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

/// The export counts of one arm over the whole run (calibration included).
pub struct ArmCounts {
    pub workload: &'static str,
    pub lib: &'static str,
    /// Spans the arm recorded while its exporter was attached.
    pub recorded: Arc<AtomicU64>,
    pub sink: Arc<SinkStats>,
    /// Our tracer (its exporter's stats), for our arms.
    pub tracer: Option<&'static DistributedTracer>,
}

static COUNTS: Mutex<Vec<ArmCounts>> = Mutex::new(Vec::new());

fn keep(c: ArmCounts) {
    COUNTS.lock().unwrap().push(c);
}

/// One arm's totals, read after the run.
#[derive(Debug, Clone)]
pub struct Totals {
    pub workload: &'static str,
    pub lib: &'static str,
    pub recorded: u64,
    pub sink_spans: u64,
    pub sink_requests: u64,
    pub sink_bytes: u64,
    pub sink_bad: u64,
    /// Our exporter's counts (ours only).
    pub stats: Option<ExportStats>,
}

impl Totals {
    /// Exported spans: our exporter's count, or what the sink received (the peer).
    pub fn exported(&self) -> u64 {
        self.stats.as_ref().map_or(self.sink_spans, |s| s.exported)
    }
    /// Dropped spans: our exporter's count, or those the sink never received (the peer).
    pub fn dropped(&self) -> u64 {
        self.stats
            .as_ref()
            .map_or(self.recorded.saturating_sub(self.sink_spans), |s| {
                s.dropped()
            })
    }
}

/// The totals of every export arm measured so far.
pub fn totals() -> Vec<Totals> {
    COUNTS
        .lock()
        .unwrap()
        .iter()
        .map(|c| Totals {
            workload: c.workload,
            lib: c.lib,
            recorded: c.recorded.load(Relaxed),
            sink_spans: c.sink.spans.load(Relaxed),
            sink_requests: c.sink.requests.load(Relaxed),
            sink_bytes: c.sink.bytes.load(Relaxed),
            sink_bad: c.sink.bad.load(Relaxed),
            stats: c.tracer.and_then(|t| t.export_stats()),
        })
        .collect()
}

/// A tracer of ours like `trace_wl`'s (default span log, everything sampled), its span log
/// filled once, never exporting from the environment; leaked so arms can hold it. `shards`:
/// `0` for the default (twice the cores: one recording thread then writes into a quarter of
/// the log on this machine), `1` for one shard the recording thread fills alone.
fn our_tracer(shards: usize) -> &'static DistributedTracer {
    let t = Box::leak(Box::new(DistributedTracer::new(TracerConfig {
        from_env: false,
        span_log_shards: shards,
        ..TracerConfig::default()
    })));
    for _ in 0..t.span_log_capacity() {
        t.start_span("warm", SpanKind::Internal, []).end();
    }
    t
}

/// Starts our OTLP/HTTP protobuf exporter on `t`, to `sink`.
fn start_ours(t: &DistributedTracer, sink: &Sink, batch: BatchConfig) {
    let started = t
        .start_export(&ExportConfig {
            endpoint: sink.url.clone(),
            batch,
            ..ExportConfig::default()
        })
        .expect("start our exporter");
    assert!(started, "our exporter did not start");
}

/// S1 with the OpenTelemetry API (the same content: name, 2 attributes, 1 event, status Ok).
fn otel_span(tracer: &SdkTracer) {
    let mut span = tracer.start("tool_execution");
    span.set_attribute(KeyValue::new("tool_id", "calculator"));
    span.set_attribute(KeyValue::new("attempt", 1i64));
    span.add_event("checkpoint", vec![]);
    span.set_status(Status::Ok);
    span.end();
}

/// `export_recording`: S1 without and with our exporter running, recording thread's cost.
pub fn recording() -> Workload {
    let plain = our_tracer(0);
    let exporting = our_tracer(0);
    let sink = Sink::start();
    start_ours(exporting, &sink, BatchConfig::default());
    let neighbour = Neighbour::start();
    let recorded = Arc::new(AtomicU64::new(0));
    let recorded_prepare = Arc::clone(&recorded);
    keep(ArmCounts {
        workload: "export_recording",
        lib: OURS_EXPORTING,
        recorded: Arc::clone(&recorded),
        sink: Arc::clone(&sink.stats),
        tracer: Some(exporting),
    });
    Workload {
        id: "export_recording",
        title: "S1 span (start + 2 attributes + 1 event + finish) without / with the OTLP exporter running",
        threads: 1,
        todo: None,
        arms: vec![
            Arm::new(OURS, move |n| {
                spans(plain, n);
                None
            })
            .prepare(move || spans(plain, PREPARE_SPANS))
            .note("agentcore: a tracer without an exporter (the baseline)"),
            Arm::new(OURS_EXPORTING, move |n| {
                spans(exporting, n);
                recorded.fetch_add(n, Relaxed);
                None
            })
            .prepare(move || {
                // The exporter thread sleeps between looks (up to 50 ms, until a recording
                // thread wakes it): record until it has exported twice, so the sample starts
                // with it busy, and it stays busy while the sample records.
                let e0 = exporting.export_stats().map_or(0, |s| s.exports);
                let t0 = Instant::now();
                let mut k = 0;
                while k < PREPARE_SPANS
                    || (exporting.export_stats().map_or(0, |s| s.exports) < e0 + 2
                        && t0.elapsed() < Duration::from_millis(500))
                {
                    spans(exporting, 1000);
                    k += 1000;
                }
                recorded_prepare.fetch_add(k, Relaxed);
            })
            .note("agentcore + OTLP exporter: the same tracer configuration, exporting OTLP/HTTP protobuf to the loopback sink (default batch settings) for the whole run; before each sample (untimed) it records until the exporter is exporting; the recording thread runs flat out, so the exporter is busy throughout the sample and drops what it cannot send (counted)"),
            Arm::new(OURS_NEIGHBOUR, move |n| {
                neighbour.during(|| spans(plain, n));
                None
            })
            .prepare(move || spans(plain, PREPARE_SPANS))
            .note("agentcore + memory-streaming neighbour: the tracer without an exporter (the baseline's), while a thread sharing no data with it streams writes through 64 MiB (one store per cache line) on the other core: the control, what a busy neighbour's memory traffic alone costs the recording thread here"),
        ],
    }
}

/// A thread that streams writes through 64 MiB (one store per cache line) while `on`, and
/// is parked otherwise (it looks at `on` every 4,096 lines, so it stops within about 0.1 ms
/// of the arm's end): memory traffic that shares no data with the recording thread. Leaked
/// with its workload, like the tracers.
pub struct Neighbour {
    on: std::sync::atomic::AtomicBool,
    thread: std::sync::OnceLock<std::thread::Thread>,
}

impl Neighbour {
    fn start() -> &'static Neighbour {
        let n: &'static Neighbour = Box::leak(Box::new(Neighbour {
            on: std::sync::atomic::AtomicBool::new(false),
            thread: std::sync::OnceLock::new(),
        }));
        let handle = std::thread::Builder::new()
            .name("memory-neighbour".into())
            .spawn(move || {
                let mut buf = vec![1u64; 8 << 20];
                let (mut i, mut k) = (0usize, 0u64);
                loop {
                    if !n.on.load(Relaxed) {
                        std::thread::park();
                        continue;
                    }
                    for _ in 0..4096 {
                        buf[i] = buf[i].wrapping_add(k);
                        i += 8;
                        if i >= buf.len() {
                            (i, k) = (0, black_box(k + 1));
                        }
                    }
                }
            })
            .expect("spawn the memory neighbour");
        let _ = n.thread.set(handle.thread().clone());
        n
    }

    /// Runs `f` with the neighbour streaming.
    fn during<R>(&self, f: impl FnOnce() -> R) -> R {
        self.on.store(true, Relaxed);
        if let Some(t) = self.thread.get() {
            t.unpark();
        }
        let r = f();
        self.on.store(false, Relaxed);
        r
    }
}

/// Records `n` S1 spans on `t`, flat out.
fn spans(t: &DistributedTracer, n: u64) {
    for _ in 0..n {
        our_span(black_box(t));
    }
}

/// Records `n` S1 spans on `t` in bursts of [`BURST`], sleeping 250 µs after each.
fn paced(t: &DistributedTracer, n: u64) {
    let mut left = n;
    while left > 0 {
        let burst = left.min(BURST);
        spans(t, burst);
        left -= burst;
        std::thread::sleep(Duration::from_micros(250));
    }
}

/// Spans `export_recording_paced`'s exporting arm recorded inside its samples, and the
/// spans its exporter dropped while those samples ran.
pub static PACED_SAMPLED: AtomicU64 = AtomicU64::new(0);
pub static PACED_DROPPED: AtomicU64 = AtomicU64::new(0);
pub static PACED_EXPORTED: AtomicU64 = AtomicU64::new(0);

/// `export_recording_paced`: S1 in bursts of [`BURST`] with 250 µs sleeps, without and with
/// our exporter running (at a rate it keeps up with).
pub fn recording_paced() -> Workload {
    let plain = our_tracer(0);
    let exporting = our_tracer(0);
    let sink = Sink::start();
    start_ours(exporting, &sink, BatchConfig::default());
    let recorded = Arc::new(AtomicU64::new(0));
    let recorded_prepare = Arc::clone(&recorded);
    keep(ArmCounts {
        workload: "export_recording_paced",
        lib: OURS_EXPORTING,
        recorded: Arc::clone(&recorded),
        sink: Arc::clone(&sink.stats),
        tracer: Some(exporting),
    });
    Workload {
        id: "export_recording_paced",
        title: "S1 span in bursts of 256 with 250 µs sleeps (a rate the exporter keeps up with) without / with the OTLP exporter running",
        threads: 1,
        todo: None,
        arms: vec![
            Arm::new(OURS, move |n| {
                paced(black_box(plain), n);
                None
            })
            .prepare(move || paced(black_box(plain), 16 * BURST))
            .note("agentcore: a tracer without an exporter (the baseline)"),
            Arm::new(OURS_EXPORTING, move |n| {
                let dropped = || exporting.export_stats().map_or(0, |s| s.dropped());
                let exported = || exporting.export_stats().map_or(0, |s| s.exported);
                let (d0, x0) = (dropped(), exported());
                paced(black_box(exporting), n);
                PACED_DROPPED.fetch_add(dropped() - d0, Relaxed);
                PACED_EXPORTED.fetch_add(exported() - x0, Relaxed);
                PACED_SAMPLED.fetch_add(n, Relaxed);
                recorded.fetch_add(n, Relaxed);
                None
            })
            .prepare(move || {
                // As in `export_recording`: the exporter slept through the other arm's sample;
                // record at the paced rate until it has exported twice, so that the sample
                // finds its arrival-rate estimate settled.
                let exports = || exporting.export_stats().map_or(0, |s| s.exports);
                let (e0, t0) = (exports(), Instant::now());
                let mut k = 0;
                while exports() < e0 + 2 && t0.elapsed() < Duration::from_millis(500) {
                    paced(black_box(exporting), BURST);
                    k += BURST;
                }
                paced(black_box(exporting), 16 * BURST);
                recorded_prepare.fetch_add(k + 16 * BURST, Relaxed);
            })
            .note("agentcore + OTLP exporter: the same tracer configuration, exporting OTLP/HTTP protobuf to the loopback sink (default batch settings) at a rate it keeps up with; before each sample (untimed) it records at that rate until the exporter is exporting (the table's `dropped` counts that warm-up too; the target row gives the drops while samples ran)"),
        ],
    }
}

/// Records `n` spans with `span` in chunks of [`CHUNK`], each followed by `flush`; excludes
/// the sink's CPU time of the sample.
fn chunked(n: u64, sink: &SinkStats, mut span: impl FnMut(), mut flush: impl FnMut()) {
    let sink0 = sink.cpu_ns.load(Relaxed);
    let mut left = n;
    while left > 0 {
        let k = left.min(CHUNK);
        for _ in 0..k {
            span();
        }
        flush();
        left -= k;
    }
    harness::report_excluded_cpu(sink.cpu_ns.load(Relaxed) - sink0);
}

fn otlp_provider(sink: &Sink) -> SdkTracerProvider {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(sink.url.clone())
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_timeout(FLUSH_TIMEOUT)
        .build()
        .expect("opentelemetry-otlp exporter");
    let bsp = BatchSpanProcessor::builder(exporter)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_max_queue_size(QUEUE)
                .with_max_export_batch_size(512)
                .build(),
        )
        .build();
    SdkTracerProvider::builder()
        .with_span_processor(bsp)
        .build()
}

/// `export_process_cpu`: process CPU per exported span, ours against opentelemetry-otlp.
pub fn process_cpu() -> Workload {
    // Ours.
    let t = our_tracer(0);
    let our_sink = Sink::start();
    start_ours(
        t,
        &our_sink,
        BatchConfig {
            max_queue_size: QUEUE,
            ..BatchConfig::default()
        },
    );
    let our_recorded = Arc::new(AtomicU64::new(0));
    keep(ArmCounts {
        workload: "export_process_cpu",
        lib: OURS,
        recorded: Arc::clone(&our_recorded),
        sink: Arc::clone(&our_sink.stats),
        tracer: Some(t),
    });
    // opentelemetry-otlp.
    let otel_sink = Sink::start();
    let provider = otlp_provider(&otel_sink);
    let tracer = provider.tracer("bench");
    let otel_recorded = Arc::new(AtomicU64::new(0));
    keep(ArmCounts {
        workload: "export_process_cpu",
        lib: OTLP,
        recorded: Arc::clone(&otel_recorded),
        sink: Arc::clone(&otel_sink.stats),
        tracer: None,
    });
    let our_stats = Arc::clone(&our_sink.stats);
    let otel_stats = Arc::clone(&otel_sink.stats);
    Workload {
        id: "export_process_cpu",
        title: "S1 span recorded, encoded and sent by OTLP/HTTP protobuf to a loopback sink, every span exported",
        threads: 1,
        todo: None,
        arms: vec![
            Arm::new(OURS, move |n| {
                chunked(
                    n,
                    &our_stats,
                    || our_span(black_box(t)),
                    || t.force_flush(FLUSH_TIMEOUT).expect("our force_flush"),
                );
                our_recorded.fetch_add(n, Relaxed);
                None
            })
            .flushes()
            .note("agentcore: DistributedTracer::start_export (OTLP/HTTP protobuf, max_queue_size 65,536, batches of 512), force_flush every 8,192 spans"),
            Arm::new(OTLP, move |n| {
                chunked(
                    n,
                    &otel_stats,
                    || otel_span(black_box(&tracer)),
                    || otel_flush(&provider),
                );
                otel_recorded.fetch_add(n, Relaxed);
                None
            })
            .flushes()
            .note("opentelemetry-otlp 0.31: http-proto, reqwest blocking client, SDK BatchSpanProcessor (max_queue_size 65,536, batches of 512), force_flush every 8,192 spans; the span is not made the thread's current context (agentcore's is)"),
        ],
    }
}

/// The result of `export_throughput`.
#[derive(Debug, Clone)]
pub struct Throughput {
    pub spans_per_round: u64,
    pub rounds: usize,
    /// Median spans per second by wall time of the drain (`force_flush`).
    pub spans_per_s: f64,
    pub spans_per_s_min: f64,
    pub spans_per_s_max: f64,
    /// Median exporter CPU per span: process CPU during the drain minus the sink's and the
    /// waiting caller's.
    pub exporter_cpu_ns: f64,
    /// Median sink CPU per span (excluded above).
    pub sink_cpu_ns: f64,
    pub requests_per_round: f64,
    pub bytes_per_span: f64,
    /// Rounds in which the exporter had sent something before the timed drain (should be 0).
    pub unclean_rounds: usize,
    pub exported: u64,
    pub dropped: u64,
    pub failed: u64,
}

/// `export_throughput`: spans per second one exporter thread of ours encodes and sends.
pub fn throughput(plan: Plan) -> Throughput {
    let t = our_tracer(1);
    let sink = Sink::start();
    // The exporter must not drain the pre-filled spans before the flush: no scheduled export,
    // no poll; the recording thread wakes it once per 256 spans, though, and it then sends a
    // first full batch, which the sink holds unanswered until the timed flush begins.
    start_ours(
        t,
        &sink,
        BatchConfig {
            max_queue_size: QUEUE,
            schedule_delay: Duration::from_secs(3600),
            max_poll_interval: Duration::from_secs(3600),
            ..BatchConfig::default()
        },
    );
    let rounds = plan.rounds.max(3);
    let mut rate = Vec::new();
    let mut cpu = Vec::new();
    let mut sink_cpu = Vec::new();
    let mut unclean = 0;
    let req0 = sink.stats.requests.load(Relaxed);
    let bytes0 = sink.stats.bytes.load(Relaxed);
    // One untimed round first (warms the connection, the encoder's buffer, the pages).
    for round in 0..=rounds {
        // Let the exporter thread go back to sleep after the previous flush.
        std::thread::sleep(Duration::from_millis(5));
        let before = t.export_stats().unwrap();
        sink.gate.hold();
        for _ in 0..DRAIN_SPANS {
            our_span(black_box(t));
        }
        let mid = t.export_stats().unwrap();
        let s0 = sink.stats.cpu_ns.load(Relaxed);
        let c0 = process_cpu_ns();
        let tc0 = thread_cpu_ns();
        let w0 = Instant::now();
        sink.gate.release();
        t.force_flush(FLUSH_TIMEOUT).expect("force_flush");
        let wall = w0.elapsed().as_nanos() as f64;
        let tc1 = thread_cpu_ns();
        let c1 = process_cpu_ns();
        let s1 = sink.stats.cpu_ns.load(Relaxed);
        let after = t.export_stats().unwrap();
        let clean = mid.exports == before.exports
            && after.exported - before.exported == DRAIN_SPANS
            && after.dropped() == before.dropped();
        if round == 0 {
            continue;
        }
        if !clean {
            unclean += 1;
        }
        let n = DRAIN_SPANS as f64;
        rate.push(n / (wall / 1e9));
        cpu.push((c1 - c0).saturating_sub(s1 - s0).saturating_sub(tc1 - tc0) as f64 / n);
        sink_cpu.push((s1 - s0) as f64 / n);
    }
    let requests = (sink.stats.requests.load(Relaxed) - req0) as f64 / (rounds + 1) as f64;
    let bytes = (sink.stats.bytes.load(Relaxed) - bytes0) as f64
        / ((rounds + 1) as f64 * DRAIN_SPANS as f64);
    let stats = t.export_stats().unwrap();
    let min = rate.iter().copied().fold(f64::INFINITY, f64::min);
    let max = rate.iter().copied().fold(0.0, f64::max);
    Throughput {
        spans_per_round: DRAIN_SPANS,
        rounds,
        spans_per_s: harness::median(&mut rate),
        spans_per_s_min: min,
        spans_per_s_max: max,
        exporter_cpu_ns: harness::median(&mut cpu),
        sink_cpu_ns: harness::median(&mut sink_cpu),
        requests_per_round: requests,
        bytes_per_span: bytes,
        unclean_rounds: unclean,
        exported: stats.exported,
        dropped: stats.dropped(),
        failed: stats.failed,
    }
}
