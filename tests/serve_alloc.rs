//! Steady-state scrapes reuse pooled buffers: the per-scrape allocation volume does not grow
//! with the exposition size. One test per binary (a counting global allocator sees every
//! thread).
#![cfg(feature = "http-server")]

use agentcore_telemetry::serve::{MetricsServer, ServerConfig};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use support::alloc::{process_allocations, process_bytes};

mod support;

#[global_allocator]
static GLOBAL: support::alloc::Counting = support::alloc::Counting;

/// One scrape on a fresh connection, reading into a fixed buffer (no client allocations).
/// Returns the bytes received.
fn scrape(addr: SocketAddr, request: &[u8], buf: &mut [u8]) -> usize {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.write_all(request).unwrap();
    let mut total = 0;
    loop {
        match conn.read(buf).unwrap() {
            0 => return total,
            n => total += n,
        }
    }
}

#[test]
fn steady_state_scrapes_do_not_reallocate_the_exposition() {
    const BODY: usize = 1 << 20;
    let line = "agent_requests_total{route=\"/chat\",status=\"200\"} 1027\n";
    let big: String = line.repeat(BODY / line.len());
    let body_len = big.len();
    let exporter = MetricsServer::start(
        ServerConfig::default().with_addr("127.0.0.1:0".parse().unwrap()),
        move |out: &mut String| out.push_str(&big),
    )
    .unwrap();
    let addr = exporter.local_addr();
    let mut buf = vec![0u8; 64 * 1024];
    for (name, request) in [
        (
            "identity",
            &b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"[..],
        ),
        (
            "gzip",
            b"GET /metrics HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n",
        ),
    ] {
        // Warm-up: the pool's buffers grow to size once.
        for _ in 0..3 {
            assert!(scrape(addr, request, &mut buf) > 0);
        }
        const N: u64 = 20;
        let (a0, b0) = (process_allocations(), process_bytes());
        let started = Instant::now();
        let mut received = 0;
        for _ in 0..N {
            received = scrape(addr, request, &mut buf);
        }
        let per_scrape = started.elapsed() / N as u32;
        let allocs = (process_allocations() - a0) / N;
        let bytes = (process_bytes() - b0) / N;
        let stats = exporter.stats();
        eprintln!(
            "{name}: {body_len} B exposition, {received} B response, {per_scrape:?}/scrape \
             (encode {:?}), {allocs} allocations and {bytes} B allocated per scrape",
            stats.last_encode_duration
        );
        // Per-connection machinery (task, hyper buffers, timers) only: far below the body size.
        assert!(
            bytes < (body_len as u64) / 8,
            "{name}: {bytes} B allocated per scrape for a {body_len} B exposition"
        );
        assert!(allocs < 200, "{name}: {allocs} allocations per scrape");
        assert!(per_scrape < Duration::from_secs(2));
    }
}
