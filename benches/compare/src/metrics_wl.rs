//! The metrics workloads, each implemented by agentcore-telemetry and by every peer that has the
//! operation: `prometheus` (tikv), `prometheus-client`, and `metrics` with
//! `metrics-exporter-prometheus`'s recorder.
//!
//! Fairness rules every arm follows:
//! * handles, label sets and values are built before measuring and are the same for every
//!   library (the same 50 label sets in the same order, the same 4,096 log-uniform values);
//! * every handle goes through `black_box` on every operation, so no library's call is hoisted
//!   out of the loop or constant-folded;
//! * series are created during setup, so labeled workloads measure the lookup of an existing
//!   series (the steady state), never its creation;
//! * each library gets the form its documentation recommends for the operation (the label key
//!   type its API wants, pre-built where it must own it; its cached handles where it has them),
//!   and where that gives the peer an advantage we did not have, it is noted.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Barrier;
use std::time::Instant;

use agentcore_telemetry as ours;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use prometheus::Encoder as _;
use prometheus_client::encoding::EncodeLabelSet;

use crate::harness::{report_co_running, thread_cpu_ns, Arm, Workload};

pub const OURS: &str = "agentcore";
pub const TIKV: &str = "prometheus";
pub const PCLIENT: &str = "prometheus-client";
pub const METRICS: &str = "metrics";
pub const FLOOR_LS: &str = "floor: load+store";
/// The control arm of the two-thread workload: agentcore with a counter per thread.
pub const OURS_SEPARATE: &str = "agentcore, a counter per thread";
/// The two-thread workload's one-thread arm: the same counter, the same number of increments
/// as the two threads together, on one thread alone, sampled in the same rounds.
pub const OURS_ONE: &str = "agentcore, one thread alone";
/// The two-thread workload's load+store floor on one thread alone (as [`OURS_ONE`]).
pub const FLOOR_LS_ONE: &str = "floor: load+store, one thread alone";
pub const FLOOR_FA: &str = "floor: fetch_add";
/// The `encode` workload's second arm of ours: the same registry in OpenMetrics 1.0 text, the
/// format prometheus-client writes.
pub const OURS_OPENMETRICS: &str = "agentcore, OpenMetrics";

/// Prometheus' default buckets (the same 11 bounds in every library).
pub const DEFAULT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

const VALUES: usize = 4096;
const LABEL_SETS: usize = 50;

/// 4,096 values spread log-uniformly over [1e-4, 10] (deterministic xorshift).
pub fn values() -> &'static [f64] {
    static V: std::sync::OnceLock<Vec<f64>> = std::sync::OnceLock::new();
    V.get_or_init(|| {
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
    })
}

/// The 50 two-label sets: 25 tools × {success, error}.
pub fn label_sets() -> &'static [(&'static str, &'static str)] {
    static L: std::sync::OnceLock<Vec<(&'static str, &'static str)>> = std::sync::OnceLock::new();
    L.get_or_init(|| {
        (0..LABEL_SETS)
            .map(|i| {
                let tool: &'static str = Box::leak(format!("tool_{:02}", i % 25).into_boxed_str());
                let status = if i < 25 { "success" } else { "error" };
                (tool, status)
            })
            .collect()
    })
}

/// The 50 one-label sets of the labeled histogram: `agent-000` … `agent-049`.
pub fn agent_ids() -> &'static [&'static str] {
    static L: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    L.get_or_init(|| {
        (0..LABEL_SETS)
            .map(|i| &*Box::leak(format!("agent-{i:03}").into_boxed_str()))
            .collect()
    })
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolLabels {
    tool_id: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AgentLabels {
    agent_id: String,
}

fn metrics_recorder() -> (PrometheusRecorder, PrometheusHandle) {
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Suffix("_seconds".into()),
            &DEFAULT_BUCKETS,
        )
        .expect("valid buckets")
        .build_recorder();
    let handle = recorder.handle();
    (recorder, handle)
}

fn pc_histogram() -> prometheus_client::metrics::histogram::Histogram {
    prometheus_client::metrics::histogram::Histogram::new(DEFAULT_BUCKETS)
}

/// Counter increment on a resolved handle, one thread, with the two physical floors.
pub fn counter_inc() -> Workload {
    let reg = ours::Registry::new();
    let c = reg.counter("requests_total", "Requests.").unwrap();
    let tc = prometheus::IntCounter::new("requests_total", "Requests.").unwrap();
    let pc = prometheus_client::metrics::counter::Counter::<u64>::default();
    let (rec, _h) = metrics_recorder();
    let mc = metrics::with_local_recorder(&rec, || metrics::counter!("requests_total"));
    let floor = Box::new(AtomicU64::new(0));
    let shared = AtomicU64::new(0);
    Workload {
        id: "counter_inc",
        title: "counter inc, resolved handle, 1 thread",
        threads: 1,
        todo: None,
        arms: vec![
            Arm::new(OURS, move |n| {
                for _ in 0..n {
                    black_box(&c).inc();
                }
                None
            }),
            Arm::new(TIKV, move |n| {
                for _ in 0..n {
                    black_box(&tc).inc();
                }
                None
            }),
            Arm::new(PCLIENT, move |n| {
                for _ in 0..n {
                    black_box(&pc).inc();
                }
                None
            }),
            Arm::new(METRICS, move |n| {
                let _keep = &rec;
                for _ in 0..n {
                    black_box(&mc).increment(1);
                }
                None
            }),
            Arm::new(FLOOR_LS, move |n| {
                for _ in 0..n {
                    let a = black_box(&floor);
                    a.store(a.load(Relaxed) + 1, Relaxed);
                }
                None
            }),
            Arm::new(FLOOR_FA, move |n| {
                for _ in 0..n {
                    black_box(&shared).fetch_add(1, Relaxed);
                }
                None
            }),
        ],
    }
}

/// `--realtime`: the two threads of the two-thread workload run under `SCHED_FIFO` (priority
/// 1), so that on a machine busy with other work they still run at the same time (the kernel's
/// real-time throttling keeps a share of each second for everything else). Needs root or
/// `CAP_SYS_NICE`; without it the threads keep the normal policy.
pub static REALTIME: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn set_fifo() {
    let param = libc::sched_param { sched_priority: 1 };
    // SAFETY: `param` is a valid sched_param; pid 0 is the calling thread.
    let _ = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) };
}

/// A word alone on its cache lines (no false sharing between the two threads' floor words).
#[repr(align(128))]
struct Padded(AtomicU64);

/// Runs `op(thread_index)` `n` times on each of two threads released together by a barrier; returns the mean
/// per-thread wall time per operation. Each thread warms up (1,000 operations) before the
/// barrier, so thread start-up and first-use costs are outside the timed region.
///
/// It also reports how much the two threads really ran at the same time: on a shared VM a vCPU
/// may be descheduled, and two threads that never co-run never contend. With `r_i` = thread
/// CPU time / the timed interval, both ran at once during at least `r_1 + r_2 - 1` of it.
fn two_threads<F: Fn(usize) + Sync>(n: u64, op: F) -> Option<f64> {
    let barrier = Barrier::new(2);
    let start = Instant::now();
    let runs: Vec<(f64, Instant, Instant, u64)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..2)
            .map(|i| {
                let (op, barrier) = (&op, &barrier);
                s.spawn(move || {
                    if REALTIME.load(Relaxed) {
                        set_fifo();
                    }
                    for _ in 0..1000 {
                        op(i);
                    }
                    barrier.wait();
                    let c0 = thread_cpu_ns();
                    let t0 = Instant::now();
                    for _ in 0..n {
                        op(i);
                    }
                    let t1 = Instant::now();
                    let cpu = thread_cpu_ns() - c0;
                    ((t1 - t0).as_nanos() as f64 / n as f64, t0, t1, cpu)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let first = runs.iter().map(|r| r.1).min().unwrap_or(start);
    let last = runs.iter().map(|r| r.2).max().unwrap_or(start);
    let span = (last - first).as_nanos().max(1) as f64;
    let ratios: f64 = runs.iter().map(|r| (r.3 as f64 / span).min(1.0)).sum();
    report_co_running((ratios - 1.0).max(0.0));
    Some(runs.iter().map(|r| r.0).sum::<f64>() / runs.len() as f64)
}

/// Runs `op` `2 n` times on one thread of its own, warmed up as in [`two_threads`]: the
/// two-thread workload's operations on one thread, so its CPU time per operation is the one
/// thread's cost beside the two threads' in the same round. Returns the wall time per operation.
fn one_thread<F: Fn() + Sync>(n: u64, op: F) -> Option<f64> {
    std::thread::scope(|s| {
        s.spawn(|| {
            if REALTIME.load(Relaxed) {
                set_fifo();
            }
            for _ in 0..1000 {
                op();
            }
            let t0 = Instant::now();
            for _ in 0..2 * n {
                op();
            }
            Some(t0.elapsed().as_nanos() as f64 / (2 * n) as f64)
        })
        .join()
        .unwrap()
    })
}

/// The same counter incremented from two threads at once; per-thread ns per increment.
pub fn counter_inc_2t() -> Workload {
    let reg = ours::Registry::new();
    let c = reg.counter("requests_total", "Requests.").unwrap();
    let tc = prometheus::IntCounter::new("requests_total", "Requests.").unwrap();
    let pc = prometheus_client::metrics::counter::Counter::<u64>::default();
    let (rec, _h) = metrics_recorder();
    let mc = metrics::with_local_recorder(&rec, || metrics::counter!("requests_total"));
    let shared = AtomicU64::new(0);
    let words = Box::new([Padded(AtomicU64::new(0)), Padded(AtomicU64::new(0))]);
    Workload {
        id: "counter_inc_2t",
        title: "counter inc, same counter from 2 threads (per-thread ns)",
        threads: 2,
        todo: None,
        arms: vec![
            // Control: the same two threads, each on a counter of its own. Against it, the
            // agentcore arm shows what sharing the counter costs (nothing, by design), apart
            // from whatever running two threads at once costs on this machine.
            Arm::new(OURS_SEPARATE, {
                let a = reg.counter("a_total", "A.").unwrap();
                let b = reg.counter("b_total", "B.").unwrap();
                move |n| {
                    two_threads(n, |i| {
                        if i == 0 {
                            black_box(&a).inc()
                        } else {
                            black_box(&b).inc()
                        }
                    })
                }
            }),
            Arm::new(OURS, {
                let c = c.clone();
                move |n| two_threads(n, |_| black_box(&c).inc())
            }),
            // The same counter from one thread, in the same rounds: the verdict's reference,
            // paired by round.
            Arm::new(OURS_ONE, move |n| one_thread(n, || black_box(&c).inc())),
            Arm::new(TIKV, move |n| two_threads(n, |_| black_box(&tc).inc())),
            Arm::new(PCLIENT, move |n| {
                two_threads(n, |_| {
                    black_box(&pc).inc();
                })
            }),
            Arm::new(METRICS, move |n| {
                let _keep = &rec;
                two_threads(n, |_| black_box(&mc).increment(1))
            }),
            Arm::new(FLOOR_LS, move |n| {
                // Each thread its own word, on its own cache line: the no-sharing floor, the
                // same code as the one-thread floor.
                two_threads(n, |i| {
                    let a = black_box(&words[i].0);
                    a.store(a.load(Relaxed) + 1, Relaxed);
                })
            }),
            Arm::new(FLOOR_LS_ONE, {
                let word = Padded(AtomicU64::new(0));
                move |n| {
                    one_thread(n, || {
                        let a = black_box(&word.0);
                        a.store(a.load(Relaxed) + 1, Relaxed);
                    })
                }
            }),
            Arm::new(FLOOR_FA, move |n| {
                // Both threads on one word: a contended read-modify-write.
                two_threads(n, |_| {
                    black_box(&shared).fetch_add(1, Relaxed);
                })
            }),
        ],
    }
}

/// Labeled lookup + increment of an existing series: 2 labels, 50 label sets cycled.
pub fn labeled_inc() -> Workload {
    let sets = label_sets();
    let reg = ours::Registry::new();
    let f = reg
        .counter_family("tool_calls_total", "Tool calls.", &["tool_id", "status"])
        .unwrap();
    let tv = prometheus::IntCounterVec::new(
        prometheus::Opts::new("tool_calls_total", "Tool calls."),
        &["tool_id", "status"],
    )
    .unwrap();
    let pf = prometheus_client::metrics::family::Family::<
        ToolLabels,
        prometheus_client::metrics::counter::Counter,
    >::default();
    let pkeys: Vec<ToolLabels> = sets
        .iter()
        .map(|(t, s)| ToolLabels {
            tool_id: t.to_string(),
            status: s.to_string(),
        })
        .collect();
    let (rec, _h) = metrics_recorder();
    for &(t, s) in sets {
        f.with_label_values(&[t, s]).unwrap();
        tv.with_label_values(&[t, s]);
        let _ = pf.get_or_create(&ToolLabels {
            tool_id: t.into(),
            status: s.into(),
        });
        let _ = metrics::with_local_recorder(
            &rec,
            || metrics::counter!("tool_calls_total", "tool_id" => t, "status" => s),
        );
    }
    Workload {
        id: "labeled_inc",
        title: "labeled lookup + inc, existing series (2 labels, 50 sets cycled)",
        threads: 1,
        todo: None,
        arms: vec![
            Arm::new(OURS, move |n| {
                for i in 0..n as usize {
                    let (t, s) = sets[i % LABEL_SETS];
                    black_box(&f).with_label_values(&[t, s]).unwrap().inc();
                }
                None
            }),
            Arm::new(TIKV, move |n| {
                for i in 0..n as usize {
                    let (t, s) = sets[i % LABEL_SETS];
                    black_box(&tv).with_label_values(&[t, s]).inc();
                }
                None
            }),
            Arm::new(PCLIENT, move |n| {
                for i in 0..n as usize {
                    black_box(&pf).get_or_create(&pkeys[i % LABEL_SETS]).inc();
                }
                None
            })
            .note("prometheus-client: its key type owns Strings; the 50 keys are pre-built, so key construction is not charged"),
            Arm::new(METRICS, move |n| {
                metrics::with_local_recorder(&rec, || {
                    for i in 0..n as usize {
                        let (t, s) = sets[i % LABEL_SETS];
                        metrics::counter!("tool_calls_total", "tool_id" => black_box(t), "status" => black_box(s))
                            .increment(1);
                    }
                });
                None
            })
            .note("metrics: `counter!` with `&'static str` label values (its cheapest dynamic form)"),
        ],
    }
}

/// Histogram observe on a resolved handle: 11 default buckets, log-uniform values.
pub fn histogram_observe() -> Workload {
    let vals = values();
    let reg = ours::Registry::new();
    let h = reg
        .histogram("latency_seconds", "Latency.", ours::Buckets::default())
        .unwrap();
    let th = prometheus::Histogram::with_opts(
        prometheus::HistogramOpts::new("latency_seconds", "Latency.")
            .buckets(DEFAULT_BUCKETS.to_vec()),
    )
    .unwrap();
    let ph = pc_histogram();
    let (rec, handle) = metrics_recorder();
    let mh = metrics::with_local_recorder(&rec, || metrics::histogram!("latency_seconds"));
    Workload {
        id: "histogram_observe",
        title: "histogram observe, resolved handle (11 buckets)",
        threads: 1,
        todo: None,
        arms: vec![
            Arm::new(OURS, move |n| {
                for i in 0..n as usize {
                    black_box(&h).observe(vals[i % VALUES]);
                }
                None
            }),
            Arm::new(TIKV, move |n| {
                for i in 0..n as usize {
                    black_box(&th).observe(vals[i % VALUES]);
                }
                None
            }),
            Arm::new(PCLIENT, move |n| {
                for i in 0..n as usize {
                    black_box(&ph).observe(vals[i % VALUES]);
                }
                None
            }),
            Arm::new(METRICS, move |n| {
                let _keep = &rec;
                for i in 0..n as usize {
                    black_box(&mh).record(vals[i % VALUES]);
                }
                // metrics buffers raw samples; bucketing happens when they are drained. Drain
                // inside the measured region so that deferred work is charged.
                handle.run_upkeep();
                None
            })
            .note("metrics: buffers raw samples; `run_upkeep()` (the drain into buckets) is inside the measured region"),
        ],
    }
}

/// Labeled histogram observe: one `agent_id` label, 50 values cycled.
pub fn labeled_histogram_observe() -> Workload {
    let vals = values();
    let ids = agent_ids();
    let reg = ours::Registry::new();
    let f = reg
        .histogram_family(
            "agent_step_seconds",
            "Step latency.",
            &["agent_id"],
            ours::Buckets::default(),
        )
        .unwrap();
    let tv = prometheus::HistogramVec::new(
        prometheus::HistogramOpts::new("agent_step_seconds", "Step latency.")
            .buckets(DEFAULT_BUCKETS.to_vec()),
        &["agent_id"],
    )
    .unwrap();
    let pf = prometheus_client::metrics::family::Family::<AgentLabels, _, _>::new_with_constructor(
        pc_histogram as fn() -> prometheus_client::metrics::histogram::Histogram,
    );
    let pkeys: Vec<AgentLabels> = ids
        .iter()
        .map(|a| AgentLabels {
            agent_id: a.to_string(),
        })
        .collect();
    let (rec, handle) = metrics_recorder();
    for &a in ids {
        f.with_label_values(&[a]).unwrap();
        tv.with_label_values(&[a]);
        let _ = pf.get_or_create(&AgentLabels { agent_id: a.into() });
        let _ = metrics::with_local_recorder(
            &rec,
            || metrics::histogram!("agent_step_seconds", "agent_id" => a),
        );
    }
    Workload {
        id: "labeled_histogram_observe",
        title: "labeled histogram observe (1 label, 50 sets cycled)",
        threads: 1,
        todo: None,
        arms: vec![
            Arm::new(OURS, move |n| {
                for i in 0..n as usize {
                    black_box(&f)
                        .with_label_values(&[ids[i % LABEL_SETS]])
                        .unwrap()
                        .observe(vals[i % VALUES]);
                }
                None
            }),
            Arm::new(TIKV, move |n| {
                for i in 0..n as usize {
                    black_box(&tv)
                        .with_label_values(&[ids[i % LABEL_SETS]])
                        .observe(vals[i % VALUES]);
                }
                None
            }),
            Arm::new(PCLIENT, move |n| {
                for i in 0..n as usize {
                    black_box(&pf)
                        .get_or_create(&pkeys[i % LABEL_SETS])
                        .observe(vals[i % VALUES]);
                }
                None
            }),
            Arm::new(METRICS, move |n| {
                metrics::with_local_recorder(&rec, || {
                    for i in 0..n as usize {
                        metrics::histogram!("agent_step_seconds", "agent_id" => black_box(ids[i % LABEL_SETS]))
                            .record(vals[i % VALUES]);
                    }
                });
                handle.run_upkeep();
                None
            }),
        ],
    }
}

/// Summary observe. Only agentcore and `metrics` (whose histograms without buckets are exposed
/// as summaries) have one; tikv `prometheus` and `prometheus-client` have no summary type.
pub fn summary_observe() -> Workload {
    let vals = values();
    let reg = ours::Registry::new();
    let s = reg
        .summary_family("rpc_seconds_s", "RPC.", &[], ours::SummaryConfig::default())
        .unwrap()
        .get_or_create::<&str>(&[])
        .unwrap();
    let (rec, handle) = metrics_recorder();
    // Not matching the `_seconds` bucket matcher: rendered as a summary.
    let ms = metrics::with_local_recorder(&rec, || metrics::histogram!("rpc_duration"));
    Workload {
        id: "summary_observe",
        title: "summary observe, resolved handle",
        threads: 1,
        todo: None,
        arms: vec![
            Arm::new(OURS, move |n| {
                for i in 0..n as usize {
                    black_box(&s).observe(vals[i % VALUES]);
                }
                None
            }),
            Arm::new(METRICS, move |n| {
                let _keep = &rec;
                for i in 0..n as usize {
                    black_box(&ms).record(vals[i % VALUES]);
                }
                handle.run_upkeep();
                None
            })
            .note("metrics: a histogram without buckets, exposed as a summary; drain charged as above"),
        ],
    }
}

/// Gauge set on a resolved handle (f64).
pub fn gauge_set() -> Workload {
    let vals = values();
    let reg = ours::Registry::new();
    let g = reg.gauge("queue_depth", "Depth.").unwrap();
    let tg = prometheus::Gauge::new("queue_depth", "Depth.").unwrap();
    let pg =
        prometheus_client::metrics::gauge::Gauge::<f64, std::sync::atomic::AtomicU64>::default();
    let (rec, _h) = metrics_recorder();
    let mg = metrics::with_local_recorder(&rec, || metrics::gauge!("queue_depth"));
    Workload {
        id: "gauge_set",
        title: "gauge set (f64), resolved handle",
        threads: 1,
        todo: None,
        arms: vec![
            Arm::new(OURS, move |n| {
                for i in 0..n as usize {
                    black_box(&g).set(vals[i % VALUES]);
                }
                None
            }),
            Arm::new(TIKV, move |n| {
                for i in 0..n as usize {
                    black_box(&tg).set(vals[i % VALUES]);
                }
                None
            }),
            Arm::new(PCLIENT, move |n| {
                for i in 0..n as usize {
                    black_box(&pg).set(vals[i % VALUES]);
                }
                None
            }),
            Arm::new(METRICS, move |n| {
                let _keep = &rec;
                for i in 0..n as usize {
                    black_box(&mg).set(vals[i % VALUES]);
                }
                None
            }),
        ],
    }
}

pub const ENCODE_COUNTERS: usize = 10_000;
pub const ENCODE_HISTOGRAMS: usize = 1_000;

/// One full text scrape of 10,000 counter series plus 1,000 histograms (11 buckets), one
/// `agent_id` label, every series non-zero, into a reused buffer where the API allows one.
pub fn encode() -> Workload {
    let vals = values();
    let cid = |i: usize| format!("agent-{i:05}");
    let count = |i: usize| (i % 97 + 1) as u64;

    // agentcore
    let reg = ours::Registry::new();
    let f = reg
        .counter_family("agent_tool_calls_total", "Tool calls.", &["agent_id"])
        .unwrap();
    let hf = reg
        .histogram_family(
            "agent_step_seconds",
            "Step latency.",
            &["agent_id"],
            ours::Buckets::default(),
        )
        .unwrap();
    // prometheus (tikv)
    let treg = prometheus::Registry::new();
    let tv = prometheus::IntCounterVec::new(
        prometheus::Opts::new("agent_tool_calls_total", "Tool calls."),
        &["agent_id"],
    )
    .unwrap();
    let thv = prometheus::HistogramVec::new(
        prometheus::HistogramOpts::new("agent_step_seconds", "Step latency.")
            .buckets(DEFAULT_BUCKETS.to_vec()),
        &["agent_id"],
    )
    .unwrap();
    treg.register(Box::new(tv.clone())).unwrap();
    treg.register(Box::new(thv.clone())).unwrap();
    // prometheus-client
    let mut preg = prometheus_client::registry::Registry::default();
    let pf = prometheus_client::metrics::family::Family::<
        AgentLabels,
        prometheus_client::metrics::counter::Counter,
    >::default();
    let phf = prometheus_client::metrics::family::Family::<AgentLabels, _, _>::new_with_constructor(
        pc_histogram as fn() -> prometheus_client::metrics::histogram::Histogram,
    );
    preg.register("agent_tool_calls", "Tool calls.", pf.clone());
    preg.register("agent_step_seconds", "Step latency.", phf.clone());
    // metrics
    let (rec, handle) = metrics_recorder();

    for i in 0..ENCODE_COUNTERS {
        let id = cid(i);
        f.with_label_values(&[&id]).unwrap().inc_by(count(i));
        tv.with_label_values(&[&id]).inc_by(count(i));
        pf.get_or_create(&AgentLabels {
            agent_id: id.clone(),
        })
        .inc_by(count(i));
        metrics::with_local_recorder(&rec, || {
            metrics::counter!("agent_tool_calls_total", "agent_id" => id.clone())
                .increment(count(i))
        });
    }
    for i in 0..ENCODE_HISTOGRAMS {
        let id = cid(i);
        let oh = hf.with_label_values(&[&id]).unwrap();
        let th = thv.with_label_values(&[&id]);
        let key = AgentLabels {
            agent_id: id.clone(),
        };
        let ph = phf.get_or_create(&key);
        let mh = metrics::with_local_recorder(
            &rec,
            || metrics::histogram!("agent_step_seconds", "agent_id" => id.clone()),
        );
        for k in 0..20 {
            let v = vals[(i * 20 + k) % VALUES];
            oh.observe(v);
            th.observe(v);
            ph.observe(v);
            mh.record(v);
        }
    }
    drop(handle.render()); // drain the buffered histogram samples once, in setup

    let om_reg = reg.clone();
    let mut obuf = String::new();
    let mut ombuf = String::new();
    let mut tbuf: Vec<u8> = Vec::new();
    let mut pbuf = String::new();
    let mut mbuf: Vec<u8> = Vec::new();
    // Sanity: every library exposes every series (counted by sample lines).
    {
        reg.encode_text_into(&mut obuf);
        reg.encode_openmetrics_into(&mut ombuf);
        let mfs = treg.gather();
        prometheus::TextEncoder::new()
            .encode(&mfs, &mut tbuf)
            .unwrap();
        prometheus_client::encoding::text::encode(&mut pbuf, &preg).unwrap();
        handle.render_to_write(&mut mbuf).unwrap();
        let expect = ENCODE_COUNTERS + ENCODE_HISTOGRAMS * (12 + 2);
        let samples = |s: &str| s.lines().filter(|l| !l.starts_with('#')).count();
        for (lib, s) in [
            (OURS, obuf.as_str()),
            (OURS_OPENMETRICS, ombuf.as_str()),
            (TIKV, std::str::from_utf8(&tbuf).unwrap()),
            (PCLIENT, pbuf.as_str()),
            (METRICS, std::str::from_utf8(&mbuf).unwrap()),
        ] {
            let got = samples(s);
            assert!(
                got >= expect,
                "{lib}: {got} sample lines, expected at least {expect}"
            );
        }
    }
    Workload {
        id: "encode",
        title: "text scrape: 10,000 counters + 1,000 histograms (1 label), reused buffer",
        threads: 1,
        todo: None,
        arms: vec![
            Arm::new(OURS, move |n| {
                for _ in 0..n {
                    obuf.clear();
                    black_box(&reg).encode_text_into(&mut obuf);
                    black_box(obuf.len());
                }
                None
            }),
            Arm::new(OURS_OPENMETRICS, move |n| {
                for _ in 0..n {
                    ombuf.clear();
                    black_box(&om_reg).encode_openmetrics_into(&mut ombuf);
                    black_box(ombuf.len());
                }
                None
            })
            .note("agentcore, OpenMetrics: `encode_openmetrics_into` (OpenMetrics 1.0 text, `# EOF`) of the same registry into a reused String"),
            Arm::new(TIKV, move |n| {
                let enc = prometheus::TextEncoder::new();
                for _ in 0..n {
                    tbuf.clear();
                    let mfs = black_box(&treg).gather();
                    enc.encode(&mfs, &mut tbuf).unwrap();
                    black_box(tbuf.len());
                }
                None
            })
            .note("prometheus: `gather()` + `TextEncoder::encode` into a reused Vec"),
            Arm::new(PCLIENT, move |n| {
                for _ in 0..n {
                    pbuf.clear();
                    prometheus_client::encoding::text::encode(&mut pbuf, black_box(&preg))
                        .unwrap();
                    black_box(pbuf.len());
                }
                None
            })
            .note("prometheus-client: OpenMetrics text (its only text format) into a reused String"),
            Arm::new(METRICS, move |n| {
                let _keep = &rec;
                for _ in 0..n {
                    mbuf.clear();
                    black_box(&handle).render_to_write(&mut mbuf).unwrap();
                    black_box(mbuf.len());
                }
                None
            })
            .note("metrics: `PrometheusHandle::render_to_write` into a reused Vec (`render()` plus one String less)"),
        ],
    }
}

/// The `MetricsCollector`'s buckets of `agentcore_tool_execution_seconds` (15 bounds since
/// 03aece2 added the reference implementation's `2`; `src/agent/builtin.rs`, `buckets::TOOL`),
/// given to every peer for the same metric.
const TOOL_BUCKETS: [f64; 15] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolIdLabels {
    tool_id: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhilosophyStatus {
    philosophy: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhilosophyLabels {
    philosophy: String,
}

fn pc_tool_histogram() -> prometheus_client::metrics::histogram::Histogram {
    prometheus_client::metrics::histogram::Histogram::new(TOOL_BUCKETS)
}

/// `MetricsCollector::record_tool_execution(tool_id, seconds, "success", None)`: a labeled
/// counter increment `{tool_id, status}` plus a labeled histogram observe `{tool_id}` (14
/// buckets). Each peer does the same two updates through its own labeled API (25 tools cycled,
/// the same durations).
pub fn record_tool_execution() -> Workload {
    let vals = values();
    let tools: Vec<&'static str> = label_sets()[..25].iter().map(|(t, _)| *t).collect();
    let collector = ours::MetricsCollector::new();
    let tv = prometheus::IntCounterVec::new(
        prometheus::Opts::new("agentcore_tool_executions_total", "Tool executions."),
        &["tool_id", "status"],
    )
    .unwrap();
    let thv = prometheus::HistogramVec::new(
        prometheus::HistogramOpts::new("agentcore_tool_execution_seconds", "Tool latency.")
            .buckets(TOOL_BUCKETS.to_vec()),
        &["tool_id"],
    )
    .unwrap();
    let pf = prometheus_client::metrics::family::Family::<
        ToolLabels,
        prometheus_client::metrics::counter::Counter,
    >::default();
    let phf =
        prometheus_client::metrics::family::Family::<ToolIdLabels, _, _>::new_with_constructor(
            pc_tool_histogram as fn() -> prometheus_client::metrics::histogram::Histogram,
        );
    let pkeys: Vec<(ToolLabels, ToolIdLabels)> = tools
        .iter()
        .map(|t| {
            (
                ToolLabels {
                    tool_id: t.to_string(),
                    status: "success".into(),
                },
                ToolIdLabels {
                    tool_id: t.to_string(),
                },
            )
        })
        .collect();
    let (rec, handle) = metrics_recorder();
    for &t in &tools {
        collector.record_tool_execution(t, 0.1, "success", None);
        tv.with_label_values(&[t, "success"]);
        thv.with_label_values(&[t]);
        let _ = pf.get_or_create(&ToolLabels {
            tool_id: t.into(),
            status: "success".into(),
        });
        let _ = phf.get_or_create(&ToolIdLabels { tool_id: t.into() });
        metrics::with_local_recorder(&rec, || {
            metrics::counter!("agentcore_tool_executions_total", "tool_id" => t, "status" => "success").increment(1);
            metrics::histogram!("agentcore_tool_execution_seconds", "tool_id" => t).record(0.1);
        });
    }
    let n_tools = tools.len();
    let tools2 = tools.clone();
    let tools3 = tools.clone();
    Workload {
        id: "record_tool_execution",
        title: "MetricsCollector::record_tool_execution (labeled counter + labeled histogram)",
        threads: 1,
        todo: None,
        arms: vec![
            Arm::new(OURS, move |n| {
                for i in 0..n as usize {
                    black_box(&collector).record_tool_execution(
                        tools[i % n_tools],
                        vals[i % VALUES],
                        "success",
                        None,
                    );
                }
                None
            }),
            Arm::new(TIKV, move |n| {
                for i in 0..n as usize {
                    let t = tools2[i % n_tools];
                    black_box(&tv).with_label_values(&[t, "success"]).inc();
                    black_box(&thv)
                        .with_label_values(&[t])
                        .observe(vals[i % VALUES]);
                }
                None
            }),
            Arm::new(PCLIENT, move |n| {
                for i in 0..n as usize {
                    let (k2, k1) = &pkeys[i % n_tools];
                    black_box(&pf).get_or_create(k2).inc();
                    black_box(&phf).get_or_create(k1).observe(vals[i % VALUES]);
                }
                None
            }),
            Arm::new(METRICS, move |n| {
                metrics::with_local_recorder(&rec, || {
                    for i in 0..n as usize {
                        let t = black_box(tools3[i % n_tools]);
                        metrics::counter!("agentcore_tool_executions_total", "tool_id" => t, "status" => "success")
                            .increment(1);
                        metrics::histogram!("agentcore_tool_execution_seconds", "tool_id" => t)
                            .record(vals[i % VALUES]);
                    }
                });
                handle.run_upkeep();
                None
            }),
        ],
    }
}

/// `MetricsCollector::record_agent_created(philosophy, "initializing")`: a labeled counter
/// increment `{philosophy, status}` plus a labeled gauge increment `{philosophy}`; the 4
/// philosophies cycled. Peers do the same two updates.
pub fn record_agent_created() -> Workload {
    use ours::AgentPhilosophy;
    let phil = AgentPhilosophy::ALL;
    let names: Vec<&'static str> = phil.iter().map(|p| p.as_str()).collect();
    let collector = ours::MetricsCollector::new();
    let tv = prometheus::IntCounterVec::new(
        prometheus::Opts::new("agentcore_agents_total", "Agents."),
        &["philosophy", "status"],
    )
    .unwrap();
    let tg = prometheus::GaugeVec::new(
        prometheus::Opts::new("agentcore_agents_active", "Active agents."),
        &["philosophy"],
    )
    .unwrap();
    let pf = prometheus_client::metrics::family::Family::<
        PhilosophyStatus,
        prometheus_client::metrics::counter::Counter,
    >::default();
    let pg = prometheus_client::metrics::family::Family::<
        PhilosophyLabels,
        prometheus_client::metrics::gauge::Gauge<f64, AtomicU64>,
    >::default();
    let pkeys: Vec<(PhilosophyStatus, PhilosophyLabels)> = names
        .iter()
        .map(|p| {
            (
                PhilosophyStatus {
                    philosophy: p.to_string(),
                    status: "initializing".into(),
                },
                PhilosophyLabels {
                    philosophy: p.to_string(),
                },
            )
        })
        .collect();
    let (rec, _h) = metrics_recorder();
    for (k, &p) in names.iter().enumerate() {
        collector.record_agent_created(phil[k], "initializing");
        tv.with_label_values(&[p, "initializing"]);
        tg.with_label_values(&[p]);
        let _ = pf.get_or_create(&pkeys[k].0);
        let _ = pg.get_or_create(&pkeys[k].1);
        metrics::with_local_recorder(&rec, || {
            metrics::counter!("agentcore_agents_total", "philosophy" => p, "status" => "initializing").increment(1);
            metrics::gauge!("agentcore_agents_active", "philosophy" => p).increment(1.0);
        });
    }
    let names2 = names.clone();
    Workload {
        id: "record_agent_created",
        title: "MetricsCollector::record_agent_created (labeled counter + labeled gauge inc)",
        threads: 1,
        todo: None,
        arms: vec![
            Arm::new(OURS, move |n| {
                for i in 0..n as usize {
                    black_box(&collector).record_agent_created(phil[i % 4], "initializing");
                }
                None
            }),
            Arm::new(TIKV, move |n| {
                for i in 0..n as usize {
                    let p = names[i % 4];
                    black_box(&tv).with_label_values(&[p, "initializing"]).inc();
                    black_box(&tg).with_label_values(&[p]).inc();
                }
                None
            }),
            Arm::new(PCLIENT, move |n| {
                for i in 0..n as usize {
                    let (k2, k1) = &pkeys[i % 4];
                    black_box(&pf).get_or_create(k2).inc();
                    black_box(&pg).get_or_create(k1).inc();
                }
                None
            }),
            Arm::new(METRICS, move |n| {
                metrics::with_local_recorder(&rec, || {
                    for i in 0..n as usize {
                        let p = black_box(names2[i % 4]);
                        metrics::counter!("agentcore_agents_total", "philosophy" => p, "status" => "initializing")
                            .increment(1);
                        metrics::gauge!("agentcore_agents_active", "philosophy" => p)
                            .increment(1.0);
                    }
                });
                None
            }),
        ],
    }
}
