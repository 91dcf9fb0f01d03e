//! Scrape latency of the `/metrics` server while two threads record, as Prometheus sees it: a
//! keep-alive connection on loopback asking `GET /metrics` (gzip, as Prometheus asks, and
//! identity), timed from the request's first byte to the response's last.
//!
//! `cargo bench --bench serve`; criterion reports the mean and median per scrape, and this file
//! prints the p50 / p99 / max of every scrape criterion timed (the distribution criterion's
//! estimates do not show).
//!
//! Two registries: a small one (100 counters and 10 histograms) and the 11,000-series one of
//! `hot_path`'s `encode_text_into_11k_series` (10,000 counters, 1,000 histograms of 11 buckets).
//! Two threads record into them all through the run (counter increments and histogram
//! observations on existing series, cycling over every series).

use std::hint::black_box;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agentcore_telemetry::serve::{MetricsServer, ServerConfig};
use agentcore_telemetry::{Buckets, Registry};
use criterion::{criterion_group, criterion_main, Criterion};

/// A registry of `counters` counter series and `histograms` histogram series, two threads
/// recording into it until the returned flag is raised.
fn recorded_registry(
    counters: usize,
    histograms: usize,
) -> (Registry, Arc<AtomicBool>, Vec<std::thread::JoinHandle<()>>) {
    let registry = Registry::new();
    let c = registry
        .counter_family("agent_tool_calls_total", "Tool calls.", &["agent_id"])
        .unwrap();
    let h = registry
        .histogram_family(
            "agent_step_seconds",
            "Step latency.",
            &["agent_id"],
            Buckets::default(),
        )
        .unwrap();
    let ids: Arc<Vec<String>> = Arc::new((0..counters).map(|i| format!("agent-{i:05}")).collect());
    for (i, id) in ids.iter().enumerate() {
        c.with_label_values(&[id]).unwrap().inc();
        if i < histograms {
            h.with_label_values(&[id]).unwrap().observe(0.25);
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let threads = (0..2)
        .map(|t| {
            let (c, h, ids, stop) = (c.clone(), h.clone(), Arc::clone(&ids), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut i = t * 7;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..1024 {
                        i = (i + 1) % ids.len();
                        let id: &str = &ids[i];
                        c.with_label_values(&[id]).unwrap().inc();
                        if i < histograms {
                            h.with_label_values(&[id])
                                .unwrap()
                                .observe((i % 100) as f64 * 0.01);
                        }
                    }
                }
            })
        })
        .collect();
    (registry, stop, threads)
}

/// One scrape on a keep-alive connection: writes `request`, reads the response to its last
/// byte (by `Content-Length`). Returns the body length.
fn scrape(conn: &mut TcpStream, request: &[u8], buf: &mut Vec<u8>) -> usize {
    conn.write_all(request).unwrap();
    buf.clear();
    let mut chunk = [0u8; 64 * 1024];
    loop {
        let n = conn.read(&mut chunk).unwrap();
        assert!(n > 0, "server closed the connection");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end])
                .unwrap()
                .to_ascii_lowercase();
            assert!(head.starts_with("http/1.1 200"), "{head}");
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            while buf.len() < end + 4 + len {
                let n = conn.read(&mut chunk).unwrap();
                assert!(n > 0, "server closed the connection");
                buf.extend_from_slice(&chunk[..n]);
            }
            return len;
        }
    }
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn scrapes(c: &mut Criterion) {
    let mut report = String::from(
        "\nscrape latency under two recording threads (every scrape criterion timed):\n",
    );
    for (label, counters, histograms) in [("110 series", 100, 10), ("11k series", 10_000, 1_000)] {
        let (registry, stop, recorders) = recorded_registry(counters, histograms);
        // The steady state of a scraper's keep-alive connection: no recycling within the run
        // (at the defaults a connection is recycled every 1 000 requests or 5 minutes, which a
        // Prometheus scraping every 15 s reaches after hours, the bench after a second).
        let server = MetricsServer::start(
            ServerConfig::default()
                .with_addr("127.0.0.1:0".parse().unwrap())
                .with_max_requests_per_connection(u64::MAX)
                .with_max_connection_age(Duration::from_secs(3600)),
            registry,
        )
        .unwrap();
        let mut group = c.benchmark_group("serve");
        group.sample_size(50);
        for (encoding, request) in [
            (
                "gzip",
                &b"GET /metrics HTTP/1.1\r\nHost: bench\r\nAccept-Encoding: gzip\r\n\r\n"[..],
            ),
            ("identity", b"GET /metrics HTTP/1.1\r\nHost: bench\r\n\r\n"),
        ] {
            let mut conn = TcpStream::connect(server.local_addr()).unwrap();
            conn.set_nodelay(true).unwrap();
            let mut buf = Vec::new();
            let times = Mutex::new(Vec::new());
            let mut bytes = 0;
            group.bench_function(
                format!("scrape_{}_{encoding}", label.replace(' ', "_")),
                |b| {
                    b.iter_custom(|iters| {
                        let mut total = Duration::ZERO;
                        let mut times = times.lock().unwrap();
                        for _ in 0..iters {
                            let started = Instant::now();
                            bytes = black_box(scrape(&mut conn, request, &mut buf));
                            let took = started.elapsed();
                            times.push(took);
                            total += took;
                        }
                        total
                    })
                },
            );
            let mut times = times.into_inner().unwrap();
            times.sort();
            report.push_str(&format!(
                "  {label}, {encoding} ({bytes} B body): p50 {:?}, p99 {:?}, max {:?} over {} scrapes\n",
                percentile(&times, 0.5),
                percentile(&times, 0.99),
                percentile(&times, 1.0),
                times.len()
            ));
        }
        group.finish();
        stop.store(true, Ordering::Relaxed);
        for t in recorders {
            t.join().unwrap();
        }
        let stats = server.shutdown();
        report.push_str(&format!(
            "  {label}: last encode {:?}, {} B exposition\n",
            stats.last_encode_duration, stats.last_encode_bytes
        ));
    }
    let _ = std::io::stderr().write_all(report.as_bytes());
}

criterion_group!(benches, scrapes);
criterion_main!(benches);
