//! The exemplar workloads (issue 13): a counter increment and a histogram observation that keep
//! an exemplar, against the same operation without one and against prometheus-client, the only
//! peer with exemplar types (`CounterWithExemplar`, `HistogramWithExemplars`).
//!
//! * `agentcore` (the arm the ratios are against): `Exemplars::TraceBased` inside a sampled span
//!   that is current on the recording thread. The span starts before the sample's loop and ends
//!   after it, so its cost is spread over the sample's operations; within the span a record
//!   keeps its first exemplar and later recordings leave it (the design: an unchanged exemplar
//!   with a fixed timestamp, which Prometheus stores once), which is the steady state a
//!   recording inside a long request meets.
//! * `agentcore, exemplars off`: the same metric kind with exemplars off, for the issue's
//!   "at most 2× the cost without exemplars" target.
//! * `prometheus-client`: `inc_by(1, Some(ids), None)` / `observe(v, Some(ids), None)`, its
//!   cheapest form: the trace and span ids handed in as two integers (the caller's lookup of the
//!   current span is not charged), no timestamp; it takes a write lock and stores the exemplar on
//!   every call.

use std::hint::black_box;

use agentcore_telemetry as ours;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::exemplar::{CounterWithExemplar, HistogramWithExemplars};

use crate::harness::{Arm, Workload};
use crate::metrics_wl::{values, DEFAULT_BUCKETS, OURS, PCLIENT};

/// The arm of ours with exemplars off.
pub const OURS_OFF: &str = "agentcore, exemplars off";

/// prometheus-client's exemplar labels: the ids as integers (no string to build).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TraceIds {
    trace_id: u64,
    span_id: u64,
}

const IDS: TraceIds = TraceIds {
    trace_id: 0x4bf9_2f35_77b3_4da6,
    span_id: 0x00f0_67aa_0ba9_02b7,
};

fn tracer() -> &'static ours::DistributedTracer {
    static T: std::sync::OnceLock<ours::DistributedTracer> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        ours::DistributedTracer::new(ours::TracerConfig {
            sampler: Some(ours::Sampler::always_on()),
            from_env: false,
            ..Default::default()
        })
    })
}

/// Counter increment with an exemplar.
pub fn counter_inc_exemplar() -> Workload {
    let with = ours::Counter::with_exemplars(ours::Exemplars::TraceBased).unwrap();
    let off = ours::Counter::with_exemplars(ours::Exemplars::Off).unwrap();
    let pc = CounterWithExemplar::<TraceIds>::default();
    let tracer = tracer();
    Workload {
        id: "counter_inc_exemplar",
        title: "counter inc keeping an exemplar (trace-based, in a sampled span)",
        threads: 1,
        todo: None,
        arms: vec![
            Arm::new(OURS, move |n| {
                let span = tracer.start_span("request", ours::SpanKind::Server, []);
                for _ in 0..n {
                    black_box(&with).inc();
                }
                drop(span);
                None
            }),
            Arm::new(OURS_OFF, move |n| {
                for _ in 0..n {
                    black_box(&off).inc();
                }
                None
            }),
            Arm::new(PCLIENT, move |n| {
                for _ in 0..n {
                    black_box(&pc).inc_by(1, Some(black_box(IDS)), None);
                }
                None
            })
            .note("prometheus-client: `CounterWithExemplar::inc_by(1, Some(ids), None)`, the ids as two integers, no timestamp"),
        ],
    }
}

/// Histogram observation with an exemplar (11 buckets, log-uniform values).
pub fn histogram_observe_exemplar() -> Workload {
    let vals = values();
    let with =
        ours::Histogram::with_exemplars(ours::Buckets::default(), ours::Exemplars::TraceBased)
            .unwrap();
    let off =
        ours::Histogram::with_exemplars(ours::Buckets::default(), ours::Exemplars::Off).unwrap();
    let pc = HistogramWithExemplars::<TraceIds>::new(DEFAULT_BUCKETS.into_iter());
    let tracer = tracer();
    Workload {
        id: "histogram_observe_exemplar",
        title: "histogram observe keeping an exemplar (trace-based, in a sampled span; 11 buckets)",
        threads: 1,
        todo: None,
        arms: vec![
            Arm::new(OURS, move |n| {
                let span = tracer.start_span("request", ours::SpanKind::Server, []);
                for i in 0..n as usize {
                    black_box(&with).observe(vals[i % vals.len()]);
                }
                drop(span);
                None
            }),
            Arm::new(OURS_OFF, move |n| {
                for i in 0..n as usize {
                    black_box(&off).observe(vals[i % vals.len()]);
                }
                None
            }),
            Arm::new(PCLIENT, move |n| {
                for i in 0..n as usize {
                    black_box(&pc).observe(vals[i % vals.len()], Some(black_box(IDS)), None);
                }
                None
            })
            .note("prometheus-client: `HistogramWithExemplars::observe(v, Some(ids), None)`, the ids as two integers, no timestamp"),
        ],
    }
}
