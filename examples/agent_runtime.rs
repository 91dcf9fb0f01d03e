//! A simulated agent runtime (first cut: metrics only; the tracer and the collector join it).
//!
//! `cargo run --release --example agent_runtime`

use std::thread;
use std::time::{Duration, Instant};

use agentcore_telemetry::{Buckets, Registry};

fn main() {
    let registry = Registry::new();
    let tools = registry
        .counter_family(
            "agentcore_tool_executions_total",
            "Tool executions.",
            &["tool_id", "status"],
        )
        .unwrap();
    let latency = registry
        .histogram_family(
            "agentcore_tool_execution_seconds",
            "Tool latency.",
            &["tool_id"],
            Buckets::default(),
        )
        .unwrap();
    let started = Instant::now();
    let workers: Vec<_> = (0..2)
        .map(|w| {
            let (tools, latency) = (tools.clone(), latency.clone());
            thread::spawn(move || {
                let mut ops = 0u64;
                let deadline = Instant::now() + Duration::from_millis(500);
                while Instant::now() < deadline {
                    for i in 0..1000u64 {
                        let tool =
                            ["calculator", "web_search", "code_exec"][((i + w) % 3) as usize];
                        let status = if i % 17 == 0 { "failed" } else { "success" };
                        tools.with_label_values(&[tool, status]).unwrap().inc();
                        latency
                            .with_label_values(&[tool])
                            .unwrap()
                            .observe((i % 100) as f64 * 1e-3);
                        ops += 2;
                    }
                }
                ops
            })
        })
        .collect();
    let ops: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    let elapsed = started.elapsed();
    let scrape_start = Instant::now();
    let text = registry.encode_text();
    println!("{text}");
    println!(
        "recorded {ops} operations in {elapsed:?} ({:.1} M ops/s); scrape {:?}, {} bytes",
        ops as f64 / elapsed.as_secs_f64() / 1e6,
        scrape_start.elapsed(),
        text.len()
    );
}
