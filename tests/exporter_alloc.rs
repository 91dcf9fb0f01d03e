//! Steady-state scrapes reuse pooled buffers: the per-scrape allocation volume does not grow
//! with the exposition size. One test per binary (a counting global allocator sees every
//! thread).
#![cfg(feature = "exporter")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use agentcore_telemetry::exporter::{ExporterConfig, MetricsExporter};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

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
    let exporter = MetricsExporter::start(
        ExporterConfig::default().with_addr("127.0.0.1:0".parse().unwrap()),
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
        let (a0, b0) = (ALLOCS.load(Ordering::SeqCst), BYTES.load(Ordering::SeqCst));
        let started = Instant::now();
        let mut received = 0;
        for _ in 0..N {
            received = scrape(addr, request, &mut buf);
        }
        let per_scrape = started.elapsed() / N as u32;
        let allocs = (ALLOCS.load(Ordering::SeqCst) - a0) / N;
        let bytes = (BYTES.load(Ordering::SeqCst) - b0) / N;
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
