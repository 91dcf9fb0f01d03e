//! The registry on its own: counters, gauges and histograms with labels, recorded from several
//! threads, then one scrape in the Prometheus text format 0.0.4.
//!
//! `cargo run --example registry_basics`

use std::thread;

use agentcore_telemetry::{Buckets, Registry};

fn main() {
    let registry = Registry::new();
    let requests = registry
        .counter_family("requests_total", "Requests handled.", &["route", "status"])
        .expect("a valid name and labels");
    let in_flight = registry
        .gauge_family("requests_in_flight", "Requests being handled.", &[])
        .expect("a valid name");
    let latency = registry
        .histogram_family(
            "request_duration_seconds",
            "Request latency.",
            &["route"],
            Buckets::exponential(0.001, 2.0, 12).expect("valid buckets"),
        )
        .expect("a valid name and labels");

    // Four workers record concurrently: no lock and no allocation once a series exists.
    thread::scope(|s| {
        for worker in 0..4u32 {
            let (requests, in_flight, latency) = (&requests, &in_flight, &latency);
            s.spawn(move || {
                let gauge = in_flight.with_label_values::<&str>(&[]).unwrap();
                for i in 0..1_000u32 {
                    gauge.inc();
                    let route = if i % 3 == 0 { "/search" } else { "/agents" };
                    let status = if (i + worker) % 50 == 0 { "500" } else { "200" };
                    requests.with_label_values(&[route, status]).unwrap().inc();
                    latency
                        .with_label_values(&[route])
                        .unwrap()
                        .observe(f64::from(i % 40) / 1_000.0);
                    gauge.dec();
                }
            });
        }
    });

    let text = registry.encode_text();
    print!("{text}");
    // Every count arrived: 4 workers x 1 000 requests.
    let total: f64 = text
        .lines()
        .filter(|l| l.starts_with("requests_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(total, 4_000.0);
    assert!(text.contains("requests_in_flight 0\n"));
}
