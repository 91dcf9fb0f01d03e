//! The `/metrics` server over real sockets: routing, headers, gzip, HTTP/1.1's rules, hostile
//! clients, the connection and in-flight limits, slow and hung sources, and its self-metrics.
#![cfg(feature = "http-server")]

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use agentcore_telemetry::serve::{MetricsServer, ServerConfig, CONTENT_TYPE};
use support::exposition::{parse, value};

const EXPOSITION: &str = "# HELP jobs_total Jobs done.\n# TYPE jobs_total counter\njobs_total{queue=\"a\"} 3\n# TYPE temp gauge\ntemp 21.5\n";

/// Loopback, on a free port, without the server's own section (so that bodies compare exactly
/// with the source's exposition).
fn config() -> ServerConfig {
    ServerConfig::default()
        .with_addr("127.0.0.1:0".parse().unwrap())
        .with_self_metrics(false)
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
    // Counted as a scrape; no body was sent, so no body size is recorded.
    let stats = exporter.stats();
    assert_eq!(stats.scrapes, 1);
    assert_eq!(stats.last_response_bytes, 0);
    // After a `GET` (gzip, so the sizes differ), a `HEAD` leaves the `GET`'s size in place.
    let gzipped = get(
        exporter.local_addr(),
        "/metrics",
        "Accept-Encoding: gzip\r\n",
    );
    assert_eq!(gzipped.header("content-encoding"), Some("gzip"));
    let req = b"HEAD /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
    assert_eq!(exchange(exporter.local_addr(), req).status, 200);
    let stats = exporter.stats();
    assert_eq!(stats.scrapes, 3);
    assert_eq!(stats.last_response_bytes, gzipped.body.len() as u64);
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
fn slowloris_gets_408_after_the_header_read_timeout_and_does_not_block_other_scrapes() {
    let exporter = start_fixed(config().with_header_read_timeout(Duration::from_secs(1)));
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
    // The stalled client is answered 408 and disconnected once the timeout passes.
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    assert_eq!(parse_reply(&rest).status, 408);
    assert_eq!(parse_reply(&rest).header("connection"), Some("close"));
    // A stalled half request is an error (an idle keep-alive connection is not: see below).
    wait_until("the slow client counted", || {
        exporter.stats().connection_errors == 1
    });
    wait_until("no active connections", || {
        exporter.stats().active_connections == 0
    });
}

#[test]
fn idle_connections_are_closed_after_their_timeouts_without_counting_errors() {
    let exporter = start_fixed(
        config()
            .with_header_read_timeout(Duration::from_millis(100))
            .with_idle_timeout(Duration::from_millis(1500)),
    );
    // Timeouts far apart, so a late server thread (ASan, a loaded machine) still closes the
    // silent connection well before the idle timeout could have (they were 300 ms and 600 ms,
    // with 250 ms of margin).
    let addr = exporter.local_addr();
    // One that never says anything (closed after the header timeout: it owes its first
    // request), and one kept alive after a scrape (closed after the idle timeout).
    let started = Instant::now();
    let mut silent = TcpStream::connect(addr).unwrap();
    let mut kept = TcpStream::connect(addr).unwrap();
    kept.write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n")
        .unwrap();
    let mut closed_after = Vec::new();
    for conn in [&mut silent, &mut kept] {
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut bytes = Vec::new();
        let _ = conn.read_to_end(&mut bytes);
        closed_after.push(started.elapsed());
    }
    assert!(
        closed_after[0] < Duration::from_millis(1000),
        "{closed_after:?}"
    );
    assert!(
        closed_after[1] >= Duration::from_millis(1450),
        "{closed_after:?}"
    );
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
    // Once the encode is assembled (the source returned, so its guard is dropped) the server
    // writes to that client, and the source's lock must be free: it was released when
    // encoding finished, before any socket write. (A fixed 200 ms sleep stood here; under CPU
    // contention the 16 MiB encode was still running then and held the lock.)
    wait_until("the encode finished", || {
        exporter.stats().last_encode_bytes >= len as u64
    });
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
    let exporter = start_fixed(config().with_max_header_bytes(2048));
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
fn a_full_connection_table_evicts_the_connection_that_waited_longest() {
    let exporter = start_fixed(config().with_max_connections(2));
    let addr = exporter.local_addr();
    // Two connections that say nothing fill the table; the older is evicted for the scrape.
    let mut oldest = TcpStream::connect(addr).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let mut newer = TcpStream::connect(addr).unwrap();
    wait_until("both accepted", || exporter.stats().active_connections == 2);
    let started = Instant::now();
    let reply = get(addr, "/metrics", "");
    assert_eq!(reply.status, 200);
    // Served at once, not after anyone's timeout (2 s).
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    oldest
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut byte = [0u8; 1];
    assert!(
        matches!(oldest.read(&mut byte), Ok(0) | Err(_)),
        "not closed"
    );
    // The newer one is still open and still gets its scrape.
    newer
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut bytes = Vec::new();
    newer.read_to_end(&mut bytes).unwrap();
    assert_eq!(parse_reply(&bytes).status, 200);
    let stats = exporter.stats();
    assert_eq!(stats.connections_evicted, 1, "{stats:?}");
    assert_eq!(stats.connection_errors, 0, "{stats:?}");
}

#[test]
fn a_connection_is_refused_only_when_every_connection_is_busy() {
    let gate = Gate::closed();
    let exporter = MetricsServer::start(config().with_max_connections(1), gate.source()).unwrap();
    let addr = exporter.local_addr();
    let busy = std::thread::spawn(move || get(addr, "/metrics", ""));
    wait_until("the scrape is waiting", || gate.waiting() == 1);
    // The only connection has a request in progress: the newcomer is closed at once.
    let mut refused = TcpStream::connect(addr).unwrap();
    refused
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = refused.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
    let mut bytes = Vec::new();
    let _ = refused.read_to_end(&mut bytes);
    assert!(bytes.is_empty());
    wait_until("counted", || exporter.stats().connections_rejected == 1);
    gate.open();
    assert_eq!(busy.join().unwrap().status, 200);
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
        config().with_header_read_timeout(Duration::ZERO),
        config().with_idle_timeout(Duration::ZERO),
        config().with_write_timeout(Duration::ZERO),
        config().with_encode_timeout(Duration::ZERO),
        config().with_max_connection_age(Duration::ZERO),
        config().with_max_requests_per_connection(0),
        config().with_max_header_bytes(10),
        config().with_max_headers(7),
        config().with_max_in_flight(0),
    ] {
        let err = MetricsServer::start(bad, |_: &mut String| {}).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    }
}

/// A source that blocks while the gate is closed, counting its calls and the encodes waiting.
#[derive(Clone)]
struct Gate {
    state: Arc<(Mutex<GateState>, Condvar)>,
}

#[derive(Default)]
struct GateState {
    open: bool,
    waiting: usize,
    calls: usize,
}

impl Gate {
    fn closed() -> Gate {
        Gate {
            state: Arc::new((Mutex::new(GateState::default()), Condvar::new())),
        }
    }

    fn source(&self) -> impl Fn(&mut String) + Send + Sync + 'static {
        let gate = self.clone();
        move |out: &mut String| {
            gate.pass();
            out.push_str(EXPOSITION);
        }
    }

    /// A source that writes which call it is (`encode_call N`), after the gate.
    fn numbered_source(&self) -> impl Fn(&mut String) + Send + Sync + 'static {
        let gate = self.clone();
        move |out: &mut String| {
            let call = gate.pass();
            out.push_str(&format!("# TYPE encode_call gauge\nencode_call {call}\n"));
        }
    }

    /// Waits at the gate; returns the call's number (from 1).
    fn pass(&self) -> usize {
        let (lock, cv) = &*self.state;
        let mut s = lock.lock().unwrap();
        s.calls += 1;
        let call = s.calls;
        s.waiting += 1;
        while !s.open {
            s = cv.wait(s).unwrap();
        }
        s.waiting -= 1;
        call
    }

    fn set(&self, open: bool) {
        let (lock, cv) = &*self.state;
        lock.lock().unwrap().open = open;
        cv.notify_all();
    }

    fn open(&self) {
        self.set(true);
    }

    fn close(&self) {
        self.set(false);
    }

    fn waiting(&self) -> usize {
        self.state.0.lock().unwrap().waiting
    }

    fn calls(&self) -> usize {
        self.state.0.lock().unwrap().calls
    }
}

/// Sends `raw` on an open connection and reads exactly one response (by Content-Length).
fn request_on(conn: &mut TcpStream, raw: &[u8]) -> Reply {
    conn.write_all(raw).unwrap();
    read_one(conn)
}

fn read_one(conn: &mut TcpStream) -> Reply {
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let reply = parse_reply(&got);
            let len: usize = reply
                .header("content-length")
                .map_or(0, |v| v.parse().unwrap());
            if got.len() >= end + 4 + len {
                let mut reply = parse_reply(&got[..end + 4 + len]);
                reply.body.truncate(len);
                return reply;
            }
        }
        let n = conn.read(&mut buf).unwrap();
        assert!(n > 0, "connection closed before a full response");
        got.extend_from_slice(&buf[..n]);
    }
}

/// Whether the server has closed `conn` (EOF or reset within 5 s).
/// A `GET /metrics` on a new connection whose `Transfer-Encoding` is `coding` (which may
/// close the field and open a second one), with an empty chunked body; the connection and the
/// reply.
fn with_transfer_coding(addr: SocketAddr, coding: &str) -> (TcpStream, Reply) {
    let mut conn = TcpStream::connect(addr).unwrap();
    let raw =
        format!("GET /metrics HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: {coding}\r\n\r\n0\r\n\r\n");
    let reply = request_on(&mut conn, raw.as_bytes());
    (conn, reply)
}

fn closed(conn: &mut TcpStream) -> bool {
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut byte = [0u8; 1];
    matches!(conn.read(&mut byte), Ok(0) | Err(_))
}

#[test]
fn host_rules_of_rfc_9112_over_the_wire() {
    let exporter = start_fixed(config());
    let addr = exporter.local_addr();
    for (request, status) in [
        ("GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n", 400),
        (
            "GET /metrics HTTP/1.1\r\nHost: a\r\nHost: a\r\nConnection: close\r\n\r\n",
            400,
        ),
        ("GET /metrics HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (
            "GET /metrics HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n",
            400,
        ),
        // Not an IPv6 address (found by review helper-128: served).
        (
            "GET /metrics HTTP/1.1\r\nHost: [::1::2]:9464\r\nConnection: close\r\n\r\n",
            400,
        ),
        ("GET /metrics HTTP/1.0\r\n\r\n", 200),
        (
            "GET /metrics HTTP/1.1\r\nHost: [::1]:9464\r\nConnection: close\r\n\r\n",
            200,
        ),
        (
            "GET /metrics HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n",
            200,
        ),
    ] {
        let reply = exchange(addr, request.as_bytes());
        assert_eq!(reply.status, status, "{request:?}");
        if status == 400 {
            assert_eq!(reply.header("connection"), Some("close"), "{request:?}");
        }
    }
    // A 400 closes the connection even when the client wanted to keep it.
    let mut conn = TcpStream::connect(addr).unwrap();
    let reply = request_on(&mut conn, b"GET /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(reply.status, 400);
    assert!(closed(&mut conn));
    assert_eq!(exporter.stats().scrapes, 3);
}

/// A request with `n` header fields in all (Host included), each line tiny.
fn with_fields(n: usize) -> String {
    let mut raw = String::from("GET /metrics HTTP/1.1\r\nHost: h\r\nConnection: close\r\n");
    for i in 2..n {
        raw.push_str(&format!("x{i}:\r\n"));
    }
    raw.push_str("\r\n");
    raw
}

#[test]
fn many_small_header_fields_are_accepted_up_to_the_configured_count() {
    for (max, server) in [
        (256, start_fixed(config())),
        (40, start_fixed(config().with_max_headers(40))),
        (1000, start_fixed(config().with_max_headers(1000))),
    ] {
        let addr = server.local_addr();
        assert_eq!(
            exchange(addr, with_fields(max).as_bytes()).status,
            200,
            "{max}"
        );
        let over = exchange(addr, with_fields(max + 1).as_bytes());
        assert_eq!(over.status, 431, "{max}");
        assert_eq!(over.header("connection"), Some("close"));
    }
}

#[test]
fn an_ordinary_1_kib_request_is_never_431() {
    let exporter = start_fixed(config());
    // A browser-like head padded to 1 KiB, and a head of 1 KiB of the smallest possible fields.
    let mut browser = String::from(
        "GET /metrics HTTP/1.1\r\nHost: localhost:9464\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\n\
         Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
         Accept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\nConnection: close\r\n\
         Cookie: session=",
    );
    while browser.len() < 1020 {
        browser.push('a');
    }
    browser.push_str("\r\n\r\n");
    let mut tiny = String::from("GET /metrics HTTP/1.1\r\nHost: h\r\nConnection: close\r\n");
    while tiny.len() + 6 <= 1024 {
        tiny.push_str("a:\r\n");
    }
    tiny.push_str("\r\n");
    for head in [browser, tiny] {
        assert!(head.len() <= 1024);
        assert_eq!(exchange(exporter.local_addr(), head.as_bytes()).status, 200);
    }
}

#[test]
fn a_slow_source_does_not_delay_other_requests() {
    let exporter = MetricsServer::start(
        config().with_encode_timeout(Duration::from_secs(10)),
        |out: &mut String| {
            std::thread::sleep(Duration::from_secs(3));
            out.push_str(EXPOSITION);
        },
    )
    .unwrap();
    let addr = exporter.local_addr();
    let scrape = std::thread::spawn(move || get(addr, "/metrics", ""));
    std::thread::sleep(Duration::from_millis(200));
    // The encode runs on its own thread: the I/O thread answers everything else at once.
    let started = Instant::now();
    assert_eq!(get(addr, "/nothing-here", "").status, 404);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(scrape.join().unwrap().status, 200);
}

#[test]
fn a_late_required_source_gets_503_and_is_not_asked_again_until_it_returns() {
    let gate = Gate::closed();
    let exporter = MetricsServer::start(
        config().with_encode_timeout(Duration::from_millis(200)),
        gate.source(),
    )
    .unwrap();
    let addr = exporter.local_addr();
    let started = Instant::now();
    let reply = get(addr, "/metrics", "");
    assert_eq!(reply.status, 503);
    // Within the budget (twice the timeout, plus assembly), not when the source returns.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // The encode goes on in the background; meanwhile scrapes are answered 503 at once,
    // without asking the source again.
    for _ in 0..3 {
        let started = Instant::now();
        assert_eq!(get(addr, "/metrics", "").status, 503);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }
    assert_eq!(gate.calls(), 1);
    assert_eq!(exporter.stats().encodes_overdue, 1);
    // Once it returns, it is asked again and the scrape succeeds.
    gate.open();
    // The gauge clears once the late result is sent to the server: then the next scrape
    // finds the source free. (`gate.waiting()` alone drops inside the source, before that.)
    wait_until("the late encode returned", || {
        gate.waiting() == 0 && exporter.stats().encodes_overdue == 0
    });
    let reply = get(addr, "/metrics", "");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, EXPOSITION.as_bytes());
    assert_eq!(gate.calls(), 2);
    let stats = exporter.stats();
    assert_eq!(stats.encodes_overdue, 0);
    assert_eq!(stats.scrapes_unavailable, 4, "{stats:?}");
    // One timeout, then three scrapes that found it busy.
    assert_eq!(stats.source_failures, 4, "{stats:?}");
}

#[test]
fn a_scrape_is_answered_before_the_scrapers_own_timeout() {
    let gate = Gate::closed();
    let exporter = MetricsServer::start(config(), gate.source()).unwrap();
    let started = Instant::now();
    let reply = get(
        exporter.local_addr(),
        "/metrics",
        "X-Prometheus-Scrape-Timeout-Seconds: 0.5\r\n",
    );
    let took = started.elapsed();
    // 90 % of the scraper's 0.5 s, long before encode_timeout (4 s).
    assert_eq!(reply.status, 503);
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(2),
        "{took:?}"
    );
    gate.open();
}

#[test]
fn a_late_or_hung_best_effort_source_is_left_out() {
    let gate = Gate::closed();
    let exporter = MetricsServer::builder(config().with_encode_timeout(Duration::from_millis(200)))
        .source("main", |out: &mut String| out.push_str(EXPOSITION))
        .best_effort_source("extra", {
            let gate = gate.source();
            move |out: &mut String| {
                gate(&mut String::new());
                out.push_str("# TYPE extra gauge\nextra 1\n");
            }
        })
        .start()
        .unwrap();
    let addr = exporter.local_addr();
    // First scrape: waits for the extra source until the timeout, then goes on without it.
    let reply = get(addr, "/metrics", "");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, EXPOSITION.as_bytes());
    // While it stays hung, scrapes skip it at once.
    for _ in 0..3 {
        let started = Instant::now();
        let reply = get(addr, "/metrics", "Accept-Encoding: gzip\r\n");
        assert_eq!(reply.status, 200);
        assert!(
            started.elapsed() < Duration::from_millis(150),
            "{:?}",
            started.elapsed()
        );
        let mut decoded = String::new();
        flate2::read::GzDecoder::new(&reply.body[..])
            .read_to_string(&mut decoded)
            .unwrap();
        assert_eq!(decoded, EXPOSITION);
    }
    assert_eq!(gate.calls(), 1);
    // Back to normal once it returns: its part is in the next scrape, after the main one.
    gate.open();
    wait_until("the extra source returned", || gate.waiting() == 0);
    let reply = get(addr, "/metrics", "");
    assert_eq!(
        String::from_utf8(reply.body).unwrap(),
        format!("{EXPOSITION}# TYPE extra gauge\nextra 1\n")
    );
    let stats = exporter.stats();
    assert_eq!((stats.scrapes, stats.source_failures), (5, 4), "{stats:?}");
}

#[test]
fn concurrent_scrapes_share_one_encode_that_starts_after_they_arrive() {
    let gate = Gate::closed();
    let exporter = MetricsServer::start(config(), gate.numbered_source()).unwrap();
    let addr = exporter.local_addr();
    // One scrape starts an encode and waits at the gate; eight more arrive meanwhile.
    let first = std::thread::spawn(move || get(addr, "/metrics", ""));
    wait_until("the first encode started", || gate.waiting() == 1);
    let rest: Vec<_> = (0..8)
        .map(|i| {
            std::thread::spawn(move || {
                let enc = if i % 2 == 0 {
                    "Accept-Encoding: gzip\r\n"
                } else {
                    ""
                };
                get(addr, "/metrics", enc)
            })
        })
        .collect();
    // Admitted, so joined the next encode: the I/O thread admits a scrape and joins it to the
    // next encode in one step, before it can start that encode. (A fixed 100 ms sleep stood
    // here, for the server to read the eight requests after accepting their connections.)
    wait_until("all eight in flight", || {
        exporter.stats().requests_in_flight == 9
    });
    gate.open();
    let body = |reply: Reply| {
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
        String::from_utf8(body).unwrap()
    };
    assert!(body(first.join().unwrap()).ends_with("encode_call 1\n"));
    // The eight share the second encode, which started after they arrived (the first had
    // begun before them, so its data could predate their requests).
    for t in rest {
        assert!(body(t.join().unwrap()).ends_with("encode_call 2\n"));
    }
    assert_eq!(gate.calls(), 2);
    assert_eq!(exporter.stats().scrapes, 9);
}

#[test]
fn the_in_flight_limit_answers_503_at_once() {
    let gate = Gate::closed();
    let exporter = MetricsServer::start(config().with_max_in_flight(2), gate.source()).unwrap();
    let addr = exporter.local_addr();
    let waiting: Vec<_> = (0..2)
        .map(|_| std::thread::spawn(move || get(addr, "/metrics", "")))
        .collect();
    wait_until("two in flight", || {
        gate.waiting() == 1 && exporter.stats().requests_in_flight == 2
    });
    let started = Instant::now();
    let reply = get(addr, "/metrics", "");
    assert_eq!(reply.status, 503);
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    assert!(String::from_utf8_lossy(&reply.body).contains("too many scrapes"));
    gate.open();
    for t in waiting {
        assert_eq!(t.join().unwrap().status, 200);
    }
    assert_eq!(exporter.stats().scrapes_rejected, 1);
}

#[test]
fn a_scraper_that_asks_less_often_takes_the_place_of_a_greedy_client() {
    let gate = Gate::closed();
    gate.open();
    let exporter = MetricsServer::start(config().with_max_in_flight(2), gate.source()).unwrap();
    let addr = exporter.local_addr();
    // Two keep-alive clients that have scraped back to back, then wait on a closed gate.
    // Each connects just before its own requests: connected together, the second waited for
    // the first one's 20 scrapes with its first request unsent, and under CPU contention the
    // 2 s header-read timeout (counted from accept) closed it.
    let mut greedy: Vec<TcpStream> = Vec::new();
    for _ in 0..2 {
        let mut conn = TcpStream::connect(addr).unwrap();
        for _ in 0..20 {
            let reply = request_on(&mut conn, b"GET /metrics HTTP/1.1\r\nHost: g\r\n\r\n");
            assert_eq!(reply.status, 200);
        }
        greedy.push(conn);
    }
    gate.close();
    for conn in &mut greedy {
        conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: g\r\n\r\n")
            .unwrap();
    }
    wait_until("both waiting", || {
        gate.waiting() == 1 && exporter.stats().requests_in_flight == 2
    });
    // A fresh scraper gets in; one of the greedy clients is answered 503 at once.
    let polite = std::thread::spawn(move || get(addr, "/metrics", ""));
    let mut answers = Vec::new();
    for conn in &mut greedy {
        conn.set_nonblocking(false).unwrap();
    }
    // Exactly one greedy connection receives its 503 before the gate opens.
    wait_until("one greedy scrape preempted", || {
        exporter.stats().scrapes_rejected == 1
    });
    gate.open();
    assert_eq!(polite.join().unwrap().status, 200);
    for conn in &mut greedy {
        answers.push(read_one(conn).status);
    }
    answers.sort();
    assert_eq!(answers, [200, 503]);
}

#[test]
fn connections_are_recycled_after_max_requests_and_max_age() {
    let exporter = start_fixed(config().with_max_requests_per_connection(3));
    let mut conn = TcpStream::connect(exporter.local_addr()).unwrap();
    for i in 1..=3 {
        let reply = request_on(&mut conn, b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!(reply.status, 200);
        let close = reply.header("connection") == Some("close");
        assert_eq!(close, i == 3, "request {i}");
    }
    assert!(closed(&mut conn));

    let exporter = start_fixed(config().with_max_connection_age(Duration::from_millis(300)));
    let mut conn = TcpStream::connect(exporter.local_addr()).unwrap();
    let reply = request_on(&mut conn, b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(reply.header("connection"), None);
    std::thread::sleep(Duration::from_millis(400));
    // Found idle past its age: closed without waiting for another request.
    assert!(closed(&mut conn));
    let stats = exporter.stats();
    assert_eq!(stats.connection_errors, 0, "{stats:?}");
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let exporter = start_fixed(config());
    let mut conn = TcpStream::connect(exporter.local_addr()).unwrap();
    conn.write_all(
        b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\nGET /nope HTTP/1.1\r\nHost: t\r\n\r\n\
          HEAD /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut bytes = Vec::new();
    conn.read_to_end(&mut bytes).unwrap();
    // Split the three responses: the first two by Content-Length, the HEAD one has no body.
    let mut rest = &bytes[..];
    let mut statuses = Vec::new();
    for has_body in [true, true, false] {
        let end = rest.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let reply = parse_reply(&rest[..end]);
        let len: usize = reply.header("content-length").unwrap().parse().unwrap();
        statuses.push(reply.status);
        rest = &rest[end + if has_body { len } else { 0 }..];
    }
    assert_eq!(statuses, [200, 404, 200]);
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(rest));
}

#[test]
fn http_1_0_request_bodies_and_absolute_targets() {
    let exporter = start_fixed(config());
    let addr = exporter.local_addr();
    // HTTP/1.0 closes unless it asks for keep-alive; then every response that keeps the
    // connection says so (an HTTP/1.0 client waits for the close otherwise: RFC 9112 §9.3).
    let mut conn = TcpStream::connect(addr).unwrap();
    let reply = request_on(&mut conn, b"GET /metrics HTTP/1.0\r\n\r\n");
    assert_eq!(
        (reply.status, reply.header("connection")),
        (200, Some("close"))
    );
    assert!(closed(&mut conn));
    let mut conn = TcpStream::connect(addr).unwrap();
    let reply = request_on(
        &mut conn,
        b"GET /metrics HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    );
    assert_eq!(
        (reply.status, reply.header("connection")),
        (200, Some("keep-alive"))
    );
    let reply = request_on(
        &mut conn,
        b"GET /missing HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    );
    assert_eq!(
        (reply.status, reply.header("connection")),
        (404, Some("keep-alive"))
    );
    let reply = request_on(&mut conn, b"GET /metrics HTTP/1.0\r\n\r\n");
    assert_eq!(
        (reply.status, reply.header("connection")),
        (200, Some("close"))
    );
    assert!(closed(&mut conn));
    // HTTP/1.1 keeps the connection without announcing it.
    let mut conn = TcpStream::connect(addr).unwrap();
    let reply = request_on(&mut conn, b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!((reply.status, reply.header("connection")), (200, None));
    // A body the server does not read: answered, then the connection closes.
    let mut conn = TcpStream::connect(addr).unwrap();
    let reply = request_on(
        &mut conn,
        b"GET /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello",
    );
    assert_eq!(
        (reply.status, reply.header("connection")),
        (200, Some("close"))
    );
    assert!(closed(&mut conn));
    // The absolute form of the target (RFC 9112 §3.2.2).
    let reply = exchange(
        addr,
        format!("GET http://{addr}/metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, EXPOSITION.as_bytes());
}

#[test]
fn the_exposition_ends_with_the_servers_own_metrics() {
    let exporter =
        MetricsServer::builder(ServerConfig::default().with_addr("127.0.0.1:0".parse().unwrap()))
            .source("main", |out: &mut String| out.push_str(EXPOSITION))
            .best_effort_source("odd \"name\"\n", |out: &mut String| {
                out.push_str("# TYPE odd gauge\nodd 1\n")
            })
            .start()
            .unwrap();
    let addr = exporter.local_addr();
    assert_eq!(get(addr, "/nothing", "").status, 404);
    assert_eq!(get(addr, "/metrics", "").status, 200);
    for enc in ["", "Accept-Encoding: gzip\r\n"] {
        let reply = get(addr, "/metrics", enc);
        let body = if enc.is_empty() {
            String::from_utf8(reply.body).unwrap()
        } else {
            let mut decoded = String::new();
            flate2::read::GzDecoder::new(&reply.body[..])
                .read_to_string(&mut decoded)
                .unwrap();
            decoded
        };
        assert!(
            body.starts_with(&format!(
                "{EXPOSITION}# TYPE odd gauge\nodd 1\n# HELP agentcore_telemetry_http_"
            )),
            "{body}"
        );
        let families = parse(&body).unwrap_or_else(|e| panic!("{e}\n{body}"));
        let v = |name: &str, labels: &[(&str, &str)]| {
            value(&families, name, labels).unwrap_or_else(|| panic!("{name} {labels:?}\n{body}"))
        };
        // Counted before this generation was assembled: one 404 and at least one 200.
        assert_eq!(
            v(
                "agentcore_telemetry_http_requests_total",
                &[("code", "404")]
            ),
            1.0
        );
        assert!(
            v(
                "agentcore_telemetry_http_requests_total",
                &[("code", "200")]
            ) >= 1.0
        );
        assert_eq!(
            v(
                "agentcore_telemetry_http_requests_total",
                &[("code", "503")]
            ),
            0.0
        );
        assert_eq!(v("agentcore_telemetry_http_requests_in_flight", &[]), 1.0);
        assert!(v("agentcore_telemetry_http_connections_accepted_total", &[]) >= 3.0);
        assert!(
            v(
                "agentcore_telemetry_http_encode_duration_seconds_count",
                &[("source", "main")]
            ) >= 2.0
        );
        assert_eq!(
            v(
                "agentcore_telemetry_http_source_failures_total",
                &[("source", "odd \"name\"\n"), ("reason", "timeout")]
            ),
            0.0
        );
        assert_eq!(
            v(
                "agentcore_telemetry_http_encodes_overdue",
                &[("source", "main")]
            ),
            0.0
        );
        assert_eq!(
            v(
                "agentcore_telemetry_http_connections_closed_total",
                &[("reason", "evicted")]
            ),
            0.0
        );
        assert_eq!(
            v("agentcore_telemetry_http_connections_rejected_total", &[]),
            0.0
        );
        assert!(v("agentcore_telemetry_http_connections_open", &[]) >= 1.0);
    }
}

/// A request head of `len` bytes in all (request line, `Host`, `Connection: close`, one filler
/// field, the empty line).
fn head_of(len: usize) -> String {
    let start = "GET /metrics HTTP/1.1\r\nHost: h\r\nConnection: close\r\nX-Filler: ";
    let end = "\r\n\r\n";
    let mut raw = String::from(start);
    raw.push_str(&"a".repeat(len - start.len() - end.len()));
    raw.push_str(end);
    assert_eq!(raw.len(), len);
    raw
}

/// Sends `raw` in two writes, the second `split` bytes in and after a pause (so the server has
/// read the first part and grown its buffer for more), and returns the reply's status.
fn status_in_two_parts(addr: SocketAddr, raw: &[u8], split: usize) -> u16 {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    conn.write_all(&raw[..split]).unwrap();
    std::thread::sleep(Duration::from_millis(150));
    // The server may already have answered and closed; that is the answer.
    let _ = conn.write_all(&raw[split..]);
    let mut bytes = Vec::new();
    let _ = conn.read_to_end(&mut bytes);
    parse_reply(&bytes).status
}

/// `max_header_bytes` is exact however the head arrives: a head of that many bytes is served,
/// one byte more gets `431`. Before, the buffer grew by at least 512 bytes at a time and a read
/// filled whatever it had room for, so a head up to ~500 bytes over the limit whose last part
/// arrived in one read was served (found by review helper-101).
#[test]
fn max_header_bytes_is_exact_however_the_head_arrives() {
    let max = 2048;
    let exporter = start_fixed(config().with_max_header_bytes(max));
    let addr = exporter.local_addr();
    for split in [1, 600, 1000, 1500, 1900, 2040] {
        let fits = head_of(max);
        assert_eq!(
            status_in_two_parts(addr, fits.as_bytes(), split),
            200,
            "a head of exactly max_header_bytes, split at {split}"
        );
        for over in [1, 100, 400] {
            let raw = head_of(max + over);
            assert_eq!(
                status_in_two_parts(addr, raw.as_bytes(), split),
                431,
                "a head {over} bytes over max_header_bytes, split at {split}"
            );
        }
    }
}

/// A response to `HEAD` never has content (RFC 9110 §9.3.2: "the server MUST NOT send content
/// in the response"; RFC 9112 §6.3: it ends at the end of its header section), refusals
/// included: a client reads no body after the head, so body bytes would be taken as the start
/// of the next response. Found by review helper-128: every refusal of a `HEAD` request (`400`,
/// `408`, `431`, `505`) carried its text.
#[test]
fn a_refused_head_request_gets_no_body() {
    let exporter = start_fixed(
        config()
            .with_max_header_bytes(2048)
            .with_header_read_timeout(Duration::from_millis(300)),
    );
    let addr = exporter.local_addr();
    let oversized = format!(
        "HEAD /metrics HTTP/1.1\r\nHost: h\r\nX-Filler: {}\r\n\r\n",
        "a".repeat(4096)
    );
    for (request, status) in [
        ("HEAD /metrics HTTP/1.1\r\n\r\n", 400),
        (
            "HEAD /metrics HTTP/1.1\r\nHost: h\r\nContent-Length: x\r\n\r\n",
            400,
        ),
        (
            "HEAD /metrics HTTP/1.1\r\nHost: h\r\nBad\x01: v\r\n\r\n",
            400,
        ),
        (
            "HEAD /metrics HTTP/1.1\r\nHost: h\r\nX: a\r\n folded\r\n\r\n",
            400,
        ),
        ("HEAD /metrics HTTP/2.0\r\nHost: h\r\n\r\n", 505),
        (oversized.as_str(), 431),
        // Never completed: 408 after the head deadline.
        ("HEAD /metrics HTTP/1.1\r\nHost: h\r\n", 408),
    ] {
        let mut conn = TcpStream::connect(addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        // The server may close before a large head is all written; the reply is there.
        let _ = conn.write_all(request.as_bytes());
        let mut bytes = Vec::new();
        let _ = conn.read_to_end(&mut bytes);
        let reply = parse_reply(&bytes);
        assert_eq!(reply.status, status, "{request:.60?}");
        assert_eq!(reply.header("connection"), Some("close"), "{request:.60?}");
        assert!(
            reply.body.is_empty(),
            "{request:.60?}: a HEAD response with content: {:?}",
            String::from_utf8_lossy(&reply.body)
        );
    }
    // The same refusals of a GET keep their explanation.
    let reply = exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(reply.status, 400);
    assert!(!reply.body.is_empty());
}

/// A request target longer than the server will read gets `414 URI Too Long` (RFC 9112 §3: a
/// server that receives a request-target longer than any URI it wishes to parse "MUST respond
/// with a 414"), however it arrives; a head too large for its fields keeps `431`. Found by
/// review helper-128: an overlong target got `431 Request Header Fields Too Large`.
#[test]
fn an_overlong_request_target_gets_414() {
    let max = 2048;
    let exporter = start_fixed(config().with_max_header_bytes(max));
    let addr = exporter.local_addr();
    for target in [
        format!("/metrics?{}", "a".repeat(max)),
        format!("/{}", "a".repeat(4 * max)),
        format!("http://h/{}", "a".repeat(max)),
    ] {
        let raw = format!("GET {target} HTTP/1.1\r\nHost: h\r\n\r\n");
        for split in [1, 100, max / 2, max - 10] {
            assert_eq!(
                status_in_two_parts(addr, raw.as_bytes(), split),
                414,
                "a {}-byte target, split at {split}",
                target.len()
            );
        }
    }
    let reply = exchange(
        addr,
        format!("GET /{} HTTP/1.1\r\n", "a".repeat(max)).as_bytes(),
    );
    assert_eq!(
        (reply.status, reply.header("connection")),
        (414, Some("close"))
    );
    // A target that fits, followed by too much of the rest, is the head's fault.
    assert_eq!(
        status_in_two_parts(addr, head_of(max + 1).as_bytes(), 100),
        431
    );
    assert_eq!(exporter.stats().scrapes, 0);
}

/// Empty lines before a request line are skipped (RFC 9112 §2.2), but a bare CR among them is
/// not an empty line: RFC 9112 §2.2 says a recipient MUST treat the element holding it as
/// invalid (or read the CR as SP, which makes ` GET` no request line either). Found by review
/// helper-128: a CR after the last empty line was dropped with them, so `\r\n\r\n\rGET ...`
/// was served however it arrived.
#[test]
fn a_bare_cr_before_the_request_line_is_refused() {
    let exporter = start_fixed(config());
    let addr = exporter.local_addr();
    let request = "GET /metrics HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
    for prefix in ["\r\n\r\n\r", "\n\n\r", "\r\n\n\r\r"] {
        let raw = format!("{prefix}{request}");
        for split in [raw.len(), prefix.len(), 1] {
            assert_eq!(
                status_in_two_parts(addr, raw.as_bytes(), split),
                400,
                "{prefix:?}, split at {split}"
            );
        }
    }
    // Empty lines alone, in CRLF or bare LF, are still skipped however they arrive.
    for prefix in ["\r\n\r\n", "\n\n\n", "\r\n\n\r\n"] {
        let raw = format!("{prefix}{request}");
        for split in [raw.len(), prefix.len(), prefix.len() - 1, 1] {
            assert_eq!(
                status_in_two_parts(addr, raw.as_bytes(), split),
                200,
                "{prefix:?}, split at {split}"
            );
        }
    }
    assert_eq!(exporter.stats().scrapes, 12);
}

/// A method the server does not recognise gets `501 Not Implemented` (RFC 9110 §15.6.2: "the
/// server does not support the functionality required to fulfill the request. This is the
/// appropriate response when the server does not recognize the request method"), whatever the
/// path: which methods it knows is a property of the whole server. Methods are case-sensitive
/// (RFC 9110 §9.1), so `get` is one it does not know. A method it knows that `/metrics` does
/// not allow keeps `405` with `Allow: GET, HEAD`; on another path, `404`. The `501` is an
/// answer like the `405`: the request's framing is known, so the connection is kept as the
/// request asks. Before, an unknown method got `405` on `/metrics` and `404` elsewhere.
#[test]
fn an_unknown_method_gets_501_and_a_known_one_405() {
    let exporter = MetricsServer::start(
        ServerConfig::default().with_addr("127.0.0.1:0".parse().unwrap()),
        |out: &mut String| out.push_str(EXPOSITION),
    )
    .unwrap();
    let addr = exporter.local_addr();
    for (method, path) in [
        ("FOO", "/metrics"),
        ("BREW", "/metrics"),
        ("get", "/metrics"),
        ("Head", "/metrics"),
        ("PROPFIND", "/metrics"),
        ("FOO", "/elsewhere"),
        ("BREW", "/"),
    ] {
        let reply = exchange(
            addr,
            format!("{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        assert_eq!(reply.status, 501, "{method} {path}");
        assert_eq!(reply.header("allow"), None, "{method} {path}");
        assert!(!reply.body.is_empty(), "{method} {path}");
    }
    for method in [
        "POST", "PUT", "DELETE", "PATCH", "CONNECT", "TRACE", "OPTIONS",
    ] {
        let reply = exchange(
            addr,
            format!("{method} /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        );
        assert_eq!(reply.status, 405, "{method}");
        assert_eq!(reply.header("allow"), Some("GET, HEAD"), "{method}");
        let reply = exchange(
            addr,
            format!("{method} /elsewhere HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        );
        assert_eq!(reply.status, 404, "{method} /elsewhere");
    }
    // The connection goes on after a 501, as after a 405.
    let mut conn = TcpStream::connect(addr).unwrap();
    let reply = request_on(&mut conn, b"BREW /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!((reply.status, reply.header("connection")), (501, None));
    let reply = request_on(&mut conn, b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(reply.status, 200);
    let body = String::from_utf8(reply.body).unwrap();
    let families = parse(&body).unwrap_or_else(|e| panic!("{e}\n{body}"));
    let code = |code: &str| {
        value(
            &families,
            "agentcore_telemetry_http_requests_total",
            &[("code", code)],
        )
        .unwrap_or_else(|| panic!("no code={code:?} series\n{body}"))
    };
    assert_eq!(code("501"), 8.0);
    assert_eq!(code("405"), 7.0);
    assert_eq!(code("404"), 7.0);
    // Not a fault of the client's connection: nothing closed for a bad request.
    let stats = exporter.stats();
    assert_eq!((stats.connection_errors, stats.scrapes), (0, 1));
}

/// A request in a later minor version of HTTP/1 (`HTTP/1.2` to `HTTP/1.9`: RFC 9112 §2.3's
/// `HTTP-version = HTTP-name "/" DIGIT "." DIGIT`) is served as HTTP/1.1, the highest minor
/// version the server supports, and answered in HTTP/1.1 (RFC 9110 §2.5: "A recipient that
/// receives a message with a major version number that it implements and a minor version number
/// higher than what it implements SHOULD process the message as if it were in the highest minor
/// version within that major version to which the recipient is conformant"; §6.2). So its
/// connection persists by default, and it needs a `Host`. Other major versions keep `505`.
/// Before, `HTTP/1.2` got `505 HTTP Version Not Supported`.
#[test]
fn a_later_http_1_minor_version_is_served_as_1_1() {
    let exporter = start_fixed(config());
    let addr = exporter.local_addr();
    for version in ["HTTP/1.2", "HTTP/1.9"] {
        // Answered in HTTP/1.1.
        let mut conn = TcpStream::connect(addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        conn.write_all(
            format!("GET /metrics {version}\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .unwrap();
        let mut bytes = Vec::new();
        conn.read_to_end(&mut bytes).unwrap();
        assert!(
            bytes.starts_with(b"HTTP/1.1 200 OK\r\n"),
            "{version}: {:?}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(60)])
        );
        // Persistent by default, as HTTP/1.1 is.
        let mut conn = TcpStream::connect(addr).unwrap();
        for _ in 0..2 {
            let reply = request_on(
                &mut conn,
                format!("GET /metrics {version}\r\nHost: t\r\n\r\n").as_bytes(),
            );
            assert_eq!(
                (reply.status, reply.header("connection")),
                (200, None),
                "{version}"
            );
        }
        let reply = request_on(
            &mut conn,
            format!("GET /metrics {version}\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        assert_eq!(reply.status, 200, "{version}");
        assert_eq!(reply.body, EXPOSITION.as_bytes(), "{version}");
        assert!(closed(&mut conn));
        // 1.1's rules: a Host is required.
        let reply = exchange(addr, format!("GET /metrics {version}\r\n\r\n").as_bytes());
        assert_eq!(reply.status, 400, "{version} without Host");
    }
    for version in ["HTTP/2.0", "HTTP/0.9", "HTTP/3.0", "HTTP/2.1"] {
        let reply = exchange(
            addr,
            format!("GET /metrics {version}\r\nHost: t\r\n\r\n").as_bytes(),
        );
        assert_eq!(
            (reply.status, reply.header("connection")),
            (505, Some("close")),
            "{version}"
        );
    }
    assert_eq!(exporter.stats().scrapes, 8);
}

/// A request whose `Transfer-Encoding` has a coding the server does not understand (anything
/// but `chunked`: it decodes no body) gets `501` and the close (RFC 9112 §6.1: "A server that
/// receives a request message with a transfer coding it does not understand SHOULD respond with
/// 501 (Not Implemented)", and §9.6 / §6.3: the body's framing is then unknown, so the
/// connection cannot go on). `chunked` alone is unchanged (served, then the connection closes:
/// the server does not read bodies), and so are the framing errors §6.3 answers with `400`
/// (`chunked` not last, with `Content-Length`, in HTTP/1.0). Before, `gzip, chunked` was served
/// as `chunked` was.
#[test]
fn an_unknown_transfer_coding_gets_501_and_a_close() {
    let exporter = start_fixed(config());
    let addr = exporter.local_addr();
    for coding in [
        "gzip, chunked",
        "foo, chunked",
        "GZIP,chunked",
        "identity, chunked",
        "deflate\r\nTransfer-Encoding: chunked",
    ] {
        let (mut conn, reply) = with_transfer_coding(addr, coding);
        assert_eq!(
            (reply.status, reply.header("connection")),
            (501, Some("close")),
            "{coding:?}"
        );
        assert!(!reply.body.is_empty(), "{coding:?}");
        assert!(closed(&mut conn), "{coding:?}");
    }
    // A refusal like a malformed head's: the connection ended on the client's fault.
    wait_until("five bad requests counted", || {
        exporter.stats().connection_errors == 5
    });
    // Plain chunked: served, then closed (the body is not read), not an error.
    let mut conn = TcpStream::connect(addr).unwrap();
    let reply = request_on(
        &mut conn,
        b"GET /metrics HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    );
    assert_eq!(
        (reply.status, reply.header("connection")),
        (200, Some("close"))
    );
    assert_eq!(reply.body, EXPOSITION.as_bytes());
    assert!(closed(&mut conn));
    // Framing that §6.3 answers with 400 keeps it, an unknown coding or not.
    for framing in [
        "HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip",
        "HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip",
        "HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 5",
        "HTTP/1.0\r\nTransfer-Encoding: gzip, chunked",
    ] {
        let reply = exchange(
            addr,
            format!("GET /metrics {framing}\r\n\r\n0\r\n\r\n").as_bytes(),
        );
        assert_eq!(
            (reply.status, reply.header("connection")),
            (400, Some("close")),
            "{framing:?}"
        );
    }
    assert_eq!(exporter.stats().scrapes, 1);
}

/// `OPTIONS *` (the asterisk form, RFC 9112 §3.2.4: "only used for a server-wide OPTIONS
/// request") asks about the server as a whole: `200` with `Allow: GET, HEAD` and no content
/// (RFC 9110 §9.3.7: "A server generating a successful response to OPTIONS SHOULD send any
/// header that might indicate optional features implemented by the server and applicable to the
/// target resource (e.g., Allow)"; "A server MUST generate a Content-Length field with a value
/// of "0" if no content is to be sent in the response"). The asterisk form with any other
/// method is not a valid request line (`400` and the close). Before, `OPTIONS *` got `404`.
#[test]
fn options_asterisk_gets_200_with_allow() {
    let exporter = start_fixed(config());
    let addr = exporter.local_addr();
    let mut conn = TcpStream::connect(addr).unwrap();
    for version in ["HTTP/1.1", "HTTP/1.2"] {
        let reply = request_on(
            &mut conn,
            format!("OPTIONS * {version}\r\nHost: t\r\n\r\n").as_bytes(),
        );
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("allow"), Some("GET, HEAD"));
        assert_eq!(reply.header("content-length"), Some("0"));
        assert_eq!(reply.header("content-type"), None);
        assert_eq!(reply.header("connection"), None);
        assert!(reply.body.is_empty());
    }
    // The connection went on, and still does.
    assert_eq!(
        request_on(&mut conn, b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n").status,
        200
    );
    let mut bytes = Vec::new();
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    conn.write_all(b"OPTIONS * HTTP/1.0\r\n\r\n").unwrap();
    conn.read_to_end(&mut bytes).unwrap();
    assert!(
        bytes.starts_with(b"HTTP/1.1 200 OK\r\n") && bytes.ends_with(b"\r\n\r\n"),
        "{:?}",
        String::from_utf8_lossy(&bytes)
    );
    assert_eq!(parse_reply(&bytes).header("connection"), Some("close"));
    // Any other method in asterisk form: a bad request line.
    for method in ["GET", "HEAD", "POST", "DELETE", "BREW", "options"] {
        let reply = exchange(
            addr,
            format!("{method} * HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes(),
        );
        assert_eq!(
            (reply.status, reply.header("connection")),
            (400, Some("close")),
            "{method} *"
        );
    }
    // OPTIONS on /metrics is still 405, and elsewhere 404.
    let reply = exchange(
        addr,
        b"OPTIONS /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(
        (reply.status, reply.header("allow")),
        (405, Some("GET, HEAD"))
    );
    let reply = exchange(
        addr,
        b"OPTIONS / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(reply.status, 404);
    assert_eq!(exporter.stats().scrapes, 1);
}

/// RFC 9112 §2.3: `HTTP-version = HTTP-name "/" DIGIT "." DIGIT`, one digit each. A version
/// token outside that grammar (`HTTP/1.10`, `HTTP/11.1`, `HTTP/1.1x`) is a malformed request
/// line, `400` and the close (§3: "Recipients of an invalid request-line SHOULD respond with
/// either a 400 (Bad Request) error or a 301 (Moved Permanently) redirect"), not a version the
/// server does not support: `505` stays for well-formed versions of another major
/// (`a_later_http_1_minor_version_is_served_as_1_1`). Before, `HTTP/1.10` got `505`.
#[test]
fn a_version_outside_the_grammar_gets_400_not_505() {
    let exporter = start_fixed(config());
    let addr = exporter.local_addr();
    for version in [
        "HTTP/1.10",
        "HTTP/1.11",
        "HTTP/11.1",
        "HTTP/1.1x",
        "HTTP/2.00",
    ] {
        let reply = exchange(
            addr,
            format!("GET /metrics {version}\r\nHost: t\r\n\r\n").as_bytes(),
        );
        assert_eq!(
            (reply.status, reply.header("connection")),
            (400, Some("close")),
            "{version}"
        );
        assert_eq!(
            String::from_utf8_lossy(&reply.body),
            "malformed HTTP version",
            "{version}"
        );
    }
    let reply = exchange(addr, b"GET /metrics HTTP/2.0\r\nHost: t\r\n\r\n");
    assert_eq!(reply.status, 505);
    assert_eq!(exporter.stats().scrapes, 0);
}

/// RFC 9112 §6.1: "A sender MUST NOT apply the chunked transfer coding more than once to a
/// message body", so `Transfer-Encoding: chunked, chunked` (in one field or two) is a framing
/// the server cannot read correctly: `400` and the close, as §6.3's other framing errors
/// (`chunked` not last, with `Content-Length`), and before the `501` of an unknown coding.
/// Before, `chunked, chunked` was served as `chunked` (and `gzip, chunked, chunked` got `501`).
#[test]
fn chunked_applied_twice_gets_400_and_a_close() {
    let exporter = start_fixed(config());
    let addr = exporter.local_addr();
    for coding in [
        "chunked, chunked",
        "chunked,chunked",
        "CHUNKED, chunked",
        "chunked\r\nTransfer-Encoding: chunked",
        "gzip, chunked, chunked",
        "chunked, gzip, chunked",
    ] {
        let (mut conn, reply) = with_transfer_coding(addr, coding);
        assert_eq!(
            (reply.status, reply.header("connection")),
            (400, Some("close")),
            "{coding:?}"
        );
        assert!(closed(&mut conn), "{coding:?}");
    }
    assert_eq!(exporter.stats().scrapes, 0);
}

/// RFC 9112 §3.2.4: an `OPTIONS` request in absolute form "in which the URI has an empty path
/// and no query component" is what a proxy turns into `OPTIONS *`; RFC 9110 §7.1 and §9.3.7:
/// it targets the server as a whole. So `OPTIONS http://t` is answered as `OPTIONS *` is
/// (`200`, `Allow: GET, HEAD`, no content, the connection kept). A path (`http://t/`) or a
/// query (`http://t?x`) names a resource, as before (`404`), and other methods on an empty
/// path ask for `/` (`404`). Before, `OPTIONS http://t` got `404`.
#[test]
fn options_in_absolute_form_with_an_empty_path_is_server_wide() {
    let exporter = start_fixed(config());
    let addr = exporter.local_addr();
    let mut conn = TcpStream::connect(addr).unwrap();
    for target in ["http://t", "HTTP://t:9464", "https://t"] {
        let reply = request_on(
            &mut conn,
            format!("OPTIONS {target} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes(),
        );
        assert_eq!(reply.status, 200, "{target}");
        assert_eq!(reply.header("allow"), Some("GET, HEAD"), "{target}");
        assert_eq!(reply.header("content-length"), Some("0"), "{target}");
        assert_eq!(reply.header("connection"), None, "{target}");
        assert!(reply.body.is_empty(), "{target}");
    }
    for request in [
        "OPTIONS http://t/ HTTP/1.1",
        "OPTIONS http://t?x HTTP/1.1",
        "GET http://t HTTP/1.1",
    ] {
        let reply = request_on(
            &mut conn,
            format!("{request}\r\nHost: t\r\n\r\n").as_bytes(),
        );
        assert_eq!(reply.status, 404, "{request}");
    }
    assert_eq!(exporter.stats().scrapes, 0);
}

/// `ServerConfig::header_read_timeout`: "from a request's first byte, or from accept for a
/// connection's first request, to its end". A client that stays silent for most of the
/// timeout after connecting and then starts a head must not get a second full timeout: its
/// first head is due `header_read_timeout` after accept.
#[test]
fn a_connections_first_head_is_due_header_read_timeout_after_accept() {
    let timeout = Duration::from_millis(1000);
    let exporter = start_fixed(config().with_header_read_timeout(timeout));
    let mut slow = TcpStream::connect(exporter.local_addr()).unwrap();
    let accepted = Instant::now();
    std::thread::sleep(Duration::from_millis(800));
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: te")
        .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    let waited = accepted.elapsed();
    assert_eq!(parse_reply(&rest).status, 408);
    assert!(
        waited < timeout + Duration::from_millis(400),
        "the first head was given {waited:?} from accept, not {timeout:?}"
    );
}

/// A full table closes an idle keep-alive connection before one still waiting for its head,
/// even one that has waited longer (`ServerConfig::max_connections`; before, its docs and
/// invariant 1 said "the one that has waited longest for a request", which closed the
/// reading one here).
#[test]
fn a_full_table_evicts_an_idle_connection_before_one_reading_its_head() {
    let exporter = start_fixed(config().with_max_connections(2));
    let addr = exporter.local_addr();
    // The older waiter: half a head, since accept.
    let mut reading = TcpStream::connect(addr).unwrap();
    reading.write_all(b"GET /metrics HTTP/1.1\r\nHo").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    // The newer waiter: one scrape, then idle on its keep-alive connection.
    let mut idle = TcpStream::connect(addr).unwrap();
    let reply = request_on(&mut idle, b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(reply.status, 200);
    wait_until("both open", || exporter.stats().active_connections == 2);
    // A newcomer: one of the two must go.
    assert_eq!(get(addr, "/metrics", "").status, 200);
    let closed = |conn: &mut TcpStream| {
        conn.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        match conn.read(&mut [0u8; 1]) {
            Ok(n) => n == 0,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        }
    };
    assert!(closed(&mut idle), "the idle connection was kept");
    assert!(!closed(&mut reading), "the reading connection was closed");
}
