//! What a sampled span costs on a span-log shard its thread owns (the cursor advanced with a
//! plain load and store) against one it shares (`fetch_add`), on the machine it runs on: the
//! difference a thread pays when the owned shards' indices are held by other threads. Before
//! `tracer::thread_index` gave an exited thread's index back, every thread of a process whose
//! earlier threads had exited paid it (`tests/tracer_thread_churn.rs`).
//!
//! ```text
//! cargo build --release --manifest-path benches/compare/Cargo.toml --bin shard_probe
//! taskset -c 1 benches/compare/target/release/shard_probe owned
//! taskset -c 1 benches/compare/target/release/shard_probe shared
//! ```
//!
//! The span is `profile_driver`'s `span_basic` (start, two attributes, one event, finish) on a
//! tracer with the default span log (twice the CPUs in shards, the first half owned). `owned`:
//! the timed thread is the process's first to record, so it holds index 0. `shared`: first,
//! as many live threads as there are owned shards record a span and wait, holding the owned
//! indices, so the timed thread's index is in the shared half. Each figure is the fastest of
//! 7 runs of 2 million spans (wall time per span, after 200,000 to wrap the log once more);
//! pin the process to a quiet core.

use agentcore_telemetry::{DistributedTracer, SpanKind, SpanStatus, TracerConfig};
use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::Instant;

fn span(t: &DistributedTracer) {
    let mut s = t.start_span("tool_execution", SpanKind::Internal, []);
    s.set_attribute("tool_id", "calculator");
    s.set_attribute("attempt", 1i64);
    s.add_event("checkpoint", []);
    t.finish_span(black_box(s), SpanStatus::Ok, None);
}

fn fastest_ns_per_span(t: &DistributedTracer) -> f64 {
    for _ in 0..200_000 {
        span(t);
    }
    (0..7)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..2_000_000 {
                span(t);
            }
            start.elapsed().as_nanos() as f64 / 2e6
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let t: &'static DistributedTracer = Box::leak(Box::new(DistributedTracer::new(TracerConfig {
        from_env: false,
        ..Default::default()
    })));
    let mode = std::env::args().nth(1).unwrap_or_default();
    // The default shard count is twice the available parallelism; its first half is owned.
    let owned = std::thread::available_parallelism().map_or(1, |n| n.get());
    match mode.as_str() {
        "owned" => {
            let ns = std::thread::spawn(move || fastest_ns_per_span(t))
                .join()
                .unwrap();
            println!("owned shard: {ns:.2} ns/span");
        }
        "shared" => {
            let hold = Arc::new(Barrier::new(owned + 1));
            let holders: Vec<_> = (0..owned)
                .map(|_| {
                    let hold = hold.clone();
                    std::thread::spawn(move || {
                        t.start_span("holder", SpanKind::Internal, []).end();
                        hold.wait(); // the owned indices are taken
                        hold.wait(); // the timing is done
                    })
                })
                .collect();
            hold.wait();
            let ns = std::thread::spawn(move || fastest_ns_per_span(t))
                .join()
                .unwrap();
            println!("shared shard: {ns:.2} ns/span");
            hold.wait();
            holders.into_iter().for_each(|h| h.join().unwrap());
        }
        _ => eprintln!("usage: shard_probe owned|shared"),
    }
}
