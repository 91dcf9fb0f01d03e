//! Where the sampled span's time goes on the machine it runs on, beyond what an instruction
//! count says: what one clock read costs there, and how the span's time moves with the span
//! log's size (memory traffic) and with the clock it reads.
//!
//! ```text
//! cargo build --release --manifest-path benches/compare/Cargo.toml --bin span_probe
//! taskset -c 1 benches/compare/target/release/span_probe 1024 65536
//! AGENTCORE_TRACE_CLOCK=instant taskset -c 1 benches/compare/target/release/span_probe 65536
//! ```
//!
//! The span is `profile_driver`'s `span_basic` (start, two attributes, one event, finish: three
//! clock reads). Arguments are span log capacities (`TracerConfig::span_log_capacity`, default
//! 65,536); each is timed after the log was filled once, so the ring wraps, as in the
//! comparison. Each figure is the fastest of 7 runs of 2 million spans (wall time per span; pin
//! the process to a quiet core). `AGENTCORE_TRACE_CLOCK=instant` makes the tracer read
//! `Instant` instead of the TSC (its documented fallback on machines without an invariant
//! TSC). The clock lines time 50 million reads of each source alone, back to back (throughput,
//! not latency: a span's reads overlap with its other work, so they are an upper bound of what
//! the span's three reads cost it).

use agentcore_telemetry::{DistributedTracer, SpanKind, SpanStatus, TracerConfig};
use std::hint::black_box;
use std::time::Instant;

const RUNS: usize = 7;

fn fastest(n: u64, mut f: impl FnMut(u64)) -> f64 {
    (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            f(n);
            start.elapsed().as_nanos() as f64 / n as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn span_ns(capacity: usize) -> (usize, f64) {
    let t = DistributedTracer::new(TracerConfig {
        span_log_capacity: capacity,
        from_env: false,
        ..Default::default()
    });
    let spans = |n: u64| {
        for _ in 0..n {
            let t = black_box(&t);
            let mut span = t.start_span("tool_execution", SpanKind::Internal, []);
            span.set_attribute("tool_id", "calculator");
            span.set_attribute("attempt", 1i64);
            span.add_event("checkpoint", []);
            t.finish_span(span, SpanStatus::Ok, None);
        }
    };
    spans(t.span_log_capacity() as u64);
    (t.span_log_capacity(), fastest(2_000_000, spans))
}

#[cfg(target_arch = "x86_64")]
fn rdtsc_ns() -> Option<f64> {
    Some(fastest(50_000_000, |n| {
        let mut acc = 0u64;
        for _ in 0..n {
            // SAFETY: `rdtsc` has no preconditions on x86_64.
            acc = acc.wrapping_add(unsafe { core::arch::x86_64::_rdtsc() });
        }
        black_box(acc);
    }))
}

#[cfg(not(target_arch = "x86_64"))]
fn rdtsc_ns() -> Option<f64> {
    None
}

fn main() {
    let capacities: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("span log capacities, e.g. 1024 65536"))
        .collect();
    let clock = std::env::var("AGENTCORE_TRACE_CLOCK").unwrap_or_default();
    println!(
        "tracer clock: {}",
        if clock.eq_ignore_ascii_case("instant") {
            "Instant (AGENTCORE_TRACE_CLOCK=instant)"
        } else {
            "default (the TSC where it is invariant, else Instant)"
        }
    );
    if let Some(ns) = rdtsc_ns() {
        println!("one rdtsc: {ns:.2} ns");
    }
    let instant = fastest(50_000_000, |n| {
        for _ in 0..n {
            black_box(Instant::now());
        }
    });
    println!("one Instant::now(): {instant:.2} ns");
    for c in capacities {
        let (slots, ns) = span_ns(c);
        println!("span (start, 2 attributes, event, finish), log of {slots} slots: {ns:.1} ns");
    }
}
