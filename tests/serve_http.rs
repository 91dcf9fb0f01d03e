//! The `/metrics` exporter over real sockets: routing, headers, gzip, and hostile clients.
#![cfg(feature = "http-server")]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agentcore_telemetry::serve::{MetricsServer, ServerConfig, CONTENT_TYPE};

const EXPOSITION: &str = "# HELP jobs_total Jobs done.\n# TYPE jobs_total counter\njobs_total{queue=\"a\"} 3\n# TYPE temp gauge\ntemp 21.5\n";

fn config() -> ServerConfig {
    ServerConfig::default().with_addr("127.0.0.1:0".parse().unwrap())
}

fn start_fixed(config: ServerConfig) -> MetricsServer {
    MetricsServer::start(config, |out: &mut String| out.push_str(EXPOSITION)).unwrap()
}

/// Waits (up to 10 s) for a condition the server reaches asynchronously.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `raw` (a complete request that asks for `Connection: close`) and reads the reply.
fn exchange(addr: SocketAddr, raw: &[u8]) -> Reply {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    conn.write_all(raw).unwrap();
    let mut bytes = Vec::new();
    conn.read_to_end(&mut bytes).unwrap();
    parse_reply(&bytes)
}

fn parse_reply(bytes: &[u8]) -> Reply {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no end of headers");
    let head = std::str::from_utf8(&bytes[..end]).unwrap();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_string(), v.trim().to_string())
        })
        .collect();
    Reply {
        status,
        headers,
        body: bytes[end + 4..].to_vec(),
    }
}

fn get(addr: SocketAddr, path: &str, extra_headers: &str) -> Reply {
    let req =
        format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{extra_headers}\r\n");
    exchange(addr, req.as_bytes())
}

#[test]
fn get_metrics_serves_the_exposition_with_the_prometheus_content_type() {
    let exporter = start_fixed(config());
    let reply = get(exporter.local_addr(), "/metrics", "");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some(CONTENT_TYPE));
    assert_eq!(
        reply.header("content-length"),
        Some(EXPOSITION.len().to_string().as_str())
    );
    assert_eq!(reply.header("content-encoding"), None);
    assert_eq!(reply.body, EXPOSITION.as_bytes());
    // A query string does not change the route.
    assert_eq!(get(exporter.local_addr(), "/metrics?x=1", "").status, 200);
    let stats = exporter.stats();
    assert_eq!(stats.scrapes, 2);
    assert_eq!(stats.last_encode_bytes, EXPOSITION.len() as u64);
    assert_eq!(stats.last_response_bytes, EXPOSITION.len() as u64);
    assert_eq!(stats.scrape_errors, 0);
}

#[test]
fn gzip_when_accepted_and_not_when_refused() {
    let exporter = start_fixed(config());
    let addr = exporter.local_addr();
    for accept in ["gzip", "deflate, gzip;q=0.5", "br, *"] {
        let reply = get(addr, "/metrics", &format!("Accept-Encoding: {accept}\r\n"));
        assert_eq!(reply.status, 200, "{accept}");
        assert_eq!(reply.header("content-encoding"), Some("gzip"), "{accept}");
        assert_eq!(reply.header("content-type"), Some(CONTENT_TYPE));
        let mut decoded = String::new();
        flate2::read::GzDecoder::new(&reply.body[..])
            .read_to_string(&mut decoded)
            .unwrap();
        assert_eq!(decoded, EXPOSITION, "{accept}");
        assert_eq!(
            exporter.stats().last_response_bytes,
            reply.body.len() as u64
        );
    }
    for accept in ["gzip;q=0", "identity", "gzip;q=0, *", "deflate"] {
        let reply = get(addr, "/metrics", &format!("Accept-Encoding: {accept}\r\n"));
        assert_eq!(reply.header("content-encoding"), None, "{accept}");
        assert_eq!(reply.body, EXPOSITION.as_bytes(), "{accept}");
    }
}

#[test]
fn large_exposition_gzips_and_round_trips() {
    let big: String = (0..20_000)
        .map(|i| format!("series_{}{{shard=\"{i}\"}} {i}\n", i % 7))
        .collect();
    let expected = big.clone();
    let exporter =
        MetricsServer::start(config(), move |out: &mut String| out.push_str(&big)).unwrap();
    for _ in 0..3 {
        let reply = get(
            exporter.local_addr(),
            "/metrics",
            "Accept-Encoding: gzip\r\n",
        );
        let mut decoded = String::new();
        flate2::read::GzDecoder::new(&reply.body[..])
            .read_to_string(&mut decoded)
            .unwrap();
        assert_eq!(decoded, expected);
        assert!(reply.body.len() < expected.len() / 3);
    }
}

#[test]
fn head_has_headers_and_no_body() {
    let exporter = start_fixed(config());
    let req = b"HEAD /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
    let reply = exchange(exporter.local_addr(), req);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some(CONTENT_TYPE));
    assert_eq!(
        reply.header("content-length"),
        Some(EXPOSITION.len().to_string().as_str())
    );
    assert!(reply.body.is_empty());
}

#[test]
fn other_paths_404_and_other_methods_405() {
    let exporter = start_fixed(config());
    let addr = exporter.local_addr();
    for path in ["/", "/metric", "/metrics/", "/metricsx", "/favicon.ico"] {
        assert_eq!(get(addr, path, "").status, 404, "{path}");
    }
    for method in ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"] {
        let req = format!(
            "{method} /metrics HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let reply = exchange(addr, req.as_bytes());
        assert_eq!(reply.status, 405, "{method}");
        assert_eq!(reply.header("allow"), Some("GET, HEAD"), "{method}");
    }
    assert_eq!(exporter.stats().scrapes, 0);
}

#[test]
fn garbage_requests_get_an_error_not_a_crash() {
    let exporter = start_fixed(config());
    let addr = exporter.local_addr();
    for garbage in [
        &b"\x00\x01\x02\xff\r\n\r\n"[..],
        b"GET\r\n\r\n",
        b"GET /metrics HTTP/9.9\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nBad Header\r\n\r\n",
    ] {
        let mut conn = TcpStream::connect(addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        conn.write_all(garbage).unwrap();
        let mut bytes = Vec::new();
        let _ = conn.read_to_end(&mut bytes);
        if !bytes.is_empty() {
            let status = parse_reply(&bytes).status;
            assert!((400..500).contains(&status) || status == 505, "{status}");
        }
    }
    assert_eq!(get(addr, "/metrics", "").status, 200);
}

#[test]
fn keep_alive_serves_several_scrapes_on_one_connection() {
    let exporter = start_fixed(config());
    let mut conn = TcpStream::connect(exporter.local_addr()).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    for _ in 0..3 {
        conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n")
            .unwrap();
        let mut buf = vec![0u8; 4096];
        let mut got = Vec::new();
        while !got.ends_with(EXPOSITION.as_bytes()) {
            let n = conn.read(&mut buf).unwrap();
            assert!(n > 0, "connection closed early");
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(parse_reply(&got).status, 200);
    }
    assert_eq!(exporter.stats().scrapes, 3);
    assert_eq!(exporter.stats().connections_accepted, 1);
}

#[test]
fn slowloris_is_dropped_after_the_read_timeout_and_does_not_block_other_scrapes() {
    let exporter = start_fixed(config().with_read_timeout(Duration::from_secs(1)));
    let addr = exporter.local_addr();
    // Half a request, then silence.
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: te")
        .unwrap();
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(100));
    let reply = get(addr, "/metrics", "");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, EXPOSITION.as_bytes());
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "the other scrape waited for the slow client: {:?}",
        started.elapsed()
    );
    // The stalled client is disconnected once the read timeout passes.
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest); // EOF or reset: either way the server closed it
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    assert!(rest.is_empty() || parse_reply(&rest).status == 408);
    // A stalled half request is an error (an idle keep-alive connection is not: see below).
    wait_until("the slow client counted", || {
        exporter.stats().connection_errors == 1
    });
    wait_until("no active connections", || {
        exporter.stats().active_connections == 0
    });
}

#[test]
fn idle_connections_are_closed_after_the_read_timeout_without_counting_errors() {
    let exporter = start_fixed(config().with_read_timeout(Duration::from_millis(500)));
    let addr = exporter.local_addr();
    // One that never says anything, and one kept alive after a scrape.
    let mut silent = TcpStream::connect(addr).unwrap();
    let mut kept = TcpStream::connect(addr).unwrap();
    kept.write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n")
        .unwrap();
    for conn in [&mut silent, &mut kept] {
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut bytes = Vec::new();
        let _ = conn.read_to_end(&mut bytes);
    }
    wait_until("both closed", || exporter.stats().active_connections == 0);
    let stats = exporter.stats();
    assert_eq!(stats.scrapes, 1);
    assert_eq!(stats.connection_errors, 0, "{stats:?}");
}

#[test]
fn client_that_does_not_read_is_dropped_after_the_write_timeout() {
    // Large enough to fill the loopback socket buffers of a client that never reads.
    let big = "x 1\n".repeat(16 << 20 >> 2); // 16 MiB
    let len = big.len();
    // Stands for the recorders' side: the source takes this lock while encoding.
    let recorders = Arc::new(std::sync::Mutex::new(0u64));
    let source_lock = Arc::clone(&recorders);
    let exporter = MetricsServer::start(
        config().with_write_timeout(Duration::from_secs(1)),
        move |out: &mut String| {
            let _held = source_lock.lock().unwrap();
            out.push_str(&big);
        },
    )
    .unwrap();
    let addr = exporter.local_addr();
    let mut stalled = TcpStream::connect(addr).unwrap();
    stalled
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    // While the server is stuck writing to that client, the source's lock is free: it was
    // released when encoding finished, before any socket write.
    assert!(exporter.stats().active_connections >= 1);
    *recorders
        .try_lock()
        .expect("lock held across a socket write") += 1;
    // Meanwhile another scrape goes through in full.
    let reply = get(addr, "/metrics", "");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body.len(), len);
    // The stalled one is dropped by the write timeout.
    wait_until("the stalled writer timed out", || {
        exporter.stats().connection_errors > 0
    });
    wait_until("no active connections", || {
        exporter.stats().active_connections == 0
    });
    drop(stalled);
}

#[test]
fn oversize_request_headers_are_rejected() {
    let exporter = start_fixed(config().with_max_request_bytes(2048));
    let addr = exporter.local_addr();
    let filler = "a".repeat(64 * 1024);
    let req = format!(
        "GET /metrics HTTP/1.1\r\nHost: test\r\nX-Filler: {filler}\r\nConnection: close\r\n\r\n"
    );
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // The server may close before we finish writing; that is a rejection too.
    let _ = conn.write_all(req.as_bytes());
    let mut bytes = Vec::new();
    let _ = conn.read_to_end(&mut bytes);
    if !bytes.is_empty() {
        assert_eq!(parse_reply(&bytes).status, 431);
    }
    assert_eq!(exporter.stats().scrapes, 0);
    // Just under the limit is fine.
    let ok = get(
        addr,
        "/metrics",
        &format!("X-Filler: {}\r\n", "a".repeat(1500)),
    );
    assert_eq!(ok.status, 200);
}

#[test]
fn connection_limit_queues_extra_connections_until_a_slot_frees() {
    let exporter = start_fixed(
        config()
            .with_max_connections(1)
            .with_read_timeout(Duration::from_secs(1)),
    );
    let addr = exporter.local_addr();
    let idle = TcpStream::connect(addr).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    let reply = get(addr, "/metrics", "");
    assert_eq!(reply.status, 200);
    // It had to wait for the idle connection's read timeout to free the only slot.
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "{:?}",
        started.elapsed()
    );
    drop(idle);
}

#[test]
fn concurrent_scrapes_all_succeed() {
    let exporter = start_fixed(config());
    let addr = exporter.local_addr();
    let threads: Vec<_> = (0..8)
        .map(|i| {
            std::thread::spawn(move || {
                for _ in 0..10 {
                    let enc = if i % 2 == 0 {
                        "Accept-Encoding: gzip\r\n"
                    } else {
                        ""
                    };
                    let reply = get(addr, "/metrics", enc);
                    assert_eq!(reply.status, 200);
                    let gzipped = reply.header("content-encoding").is_some();
                    let mut body = reply.body;
                    if gzipped {
                        let mut d = Vec::new();
                        flate2::read::GzDecoder::new(&body[..])
                            .read_to_end(&mut d)
                            .unwrap();
                        body = d;
                    }
                    assert_eq!(body, EXPOSITION.as_bytes());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(exporter.stats().scrapes, 80);
}

#[test]
fn a_panicking_source_gets_500_and_the_server_lives_on() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    let exporter = MetricsServer::start(config(), move |out: &mut String| {
        if c.fetch_add(1, Ordering::SeqCst) == 0 {
            panic!("encoder bug (expected by this test)");
        }
        out.push_str(EXPOSITION);
    })
    .unwrap();
    assert_eq!(get(exporter.local_addr(), "/metrics", "").status, 500);
    let reply = get(exporter.local_addr(), "/metrics", "");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, EXPOSITION.as_bytes());
    let stats = exporter.stats();
    assert_eq!((stats.scrapes, stats.scrape_errors), (1, 1));
}

#[test]
fn shutdown_joins_and_closes_the_port() {
    let alive = Arc::new(());
    let token = Arc::clone(&alive);
    let exporter = MetricsServer::start(config(), move |out: &mut String| {
        let _ = &token;
        out.push_str(EXPOSITION);
    })
    .unwrap();
    let addr = exporter.local_addr();
    assert_eq!(get(addr, "/metrics", "").status, 200);
    // An idle keep-alive connection must not hold shutdown up.
    let idle = TcpStream::connect(addr).unwrap();
    let started = Instant::now();
    let stats = exporter.shutdown();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(stats.scrapes, 1);
    // The thread is gone: it dropped the source it owned.
    assert_eq!(Arc::strong_count(&alive), 1);
    assert!(TcpStream::connect(addr).is_err(), "port still open");
    drop(idle);
}

#[test]
fn drop_without_shutdown_also_joins_and_closes_the_port() {
    let alive = Arc::new(());
    let token = Arc::clone(&alive);
    let exporter = MetricsServer::start(config(), move |out: &mut String| {
        let _ = &token;
        out.push_str(EXPOSITION);
    })
    .unwrap();
    let addr = exporter.local_addr();
    assert_eq!(get(addr, "/metrics", "").status, 200);
    drop(exporter);
    assert_eq!(Arc::strong_count(&alive), 1);
    assert!(TcpStream::connect(addr).is_err(), "port still open");
}

#[test]
fn invalid_config_is_an_error() {
    for bad in [
        config().with_max_connections(0),
        config().with_read_timeout(Duration::ZERO),
        config().with_write_timeout(Duration::ZERO),
        config().with_max_request_bytes(10),
    ] {
        let err = MetricsServer::start(bad, |_: &mut String| {}).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    }
}
