//! `Duration::MAX` as a server timeout means "no limit": the server accepts it, never fires it,
//! and never panics on it (no `Instant + Duration` or `Duration * n` overflow), whether it is a
//! connection timeout, the encode timeout, or the shutdown deadline.
//!
//! Every socket read has a timeout and every shutdown runs on a helper thread, so that a server
//! whose I/O thread died (or a call that hangs) fails the test instead of hanging it.
#![cfg(feature = "http-server")]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use agentcore_telemetry::serve::{MetricsServer, ServerConfig};

const FOREVER: Duration = Duration::MAX;
/// Generous, for a loaded 2-core CI machine; a correct server needs milliseconds.
const PROMPTLY: Duration = Duration::from_secs(5);

fn config() -> ServerConfig {
    ServerConfig::default()
        .with_addr("127.0.0.1:0".parse().unwrap())
        .with_self_metrics(false)
}

fn every_timeout_forever() -> ServerConfig {
    config()
        .with_header_read_timeout(FOREVER)
        .with_idle_timeout(FOREVER)
        .with_write_timeout(FOREVER)
        .with_max_connection_age(FOREVER)
        .with_encode_timeout(FOREVER)
        .with_shutdown_timeout(FOREVER)
}

fn start(config: ServerConfig) -> MetricsServer {
    MetricsServer::start(config, |out: &mut String| out.push_str("up 1\n")).unwrap()
}

fn connect(addr: SocketAddr) -> TcpStream {
    let conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(PROMPTLY)).unwrap();
    conn
}

/// Sends one keep-alive `GET /metrics` and reads its response: `(status line, body)`, or an
/// error text if the server sent nothing (or not a whole response) in time.
fn scrape_on(conn: &mut TcpStream) -> Result<(String, String), String> {
    conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match conn.read(&mut chunk) {
            Ok(0) => return Err(format!("closed after {got:?}")),
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(format!("read: {e} after {got:?}")),
        }
    };
    let head = String::from_utf8_lossy(&got[..head_end]).into_owned();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .ok_or_else(|| format!("no content-length in {head:?}"))?;
    while got.len() < head_end + len {
        match conn.read(&mut chunk) {
            Ok(0) => return Err("closed mid-body".into()),
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(format!("read body: {e}")),
        }
    }
    let status = head.lines().next().unwrap_or_default().to_owned();
    let body = String::from_utf8_lossy(&got[head_end..head_end + len]).into_owned();
    Ok((status, body))
}

/// Runs `f` on a helper thread; its duration, or `None` if it did not return within `wait` (or
/// panicked).
fn timed(wait: Duration, f: impl FnOnce() + Send + 'static) -> Option<Duration> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let started = Instant::now();
        f();
        let _ = tx.send(started.elapsed());
    });
    rx.recv_timeout(wait).ok()
}

fn shuts_down_promptly(server: MetricsServer, timeout: Duration) {
    let took = timed(PROMPTLY * 2, move || {
        server.shutdown_with_timeout(timeout);
    });
    let took = took.expect("shutdown panicked or hung");
    assert!(took < PROMPTLY, "shutdown took {took:?}");
}

/// Two requests on one connection, with a pause between them so that the second waits as an
/// idle keep-alive connection (the idle and age deadlines), then a third at once.
fn serves_three_on_one_connection(config: ServerConfig, what: &str) {
    let server = start(config);
    let mut conn = connect(server.local_addr());
    for i in 0..3 {
        let reply = scrape_on(&mut conn);
        assert_eq!(
            reply,
            Ok(("HTTP/1.1 200 OK".to_owned(), "up 1\n".to_owned())),
            "{what}: request {i}"
        );
        if i == 0 {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    drop(conn);
    shuts_down_promptly(server, Duration::from_secs(1));
}

#[test]
fn every_timeout_max_serves_several_requests_on_one_keep_alive_connection() {
    serves_three_on_one_connection(every_timeout_forever(), "every timeout MAX");
}

#[test]
fn header_read_timeout_max_alone_serves_several_requests_on_one_connection() {
    let config = config().with_header_read_timeout(FOREVER);
    serves_three_on_one_connection(config, "header_read_timeout");
}

#[test]
fn idle_timeout_max_alone_serves_several_requests_on_one_connection() {
    serves_three_on_one_connection(config().with_idle_timeout(FOREVER), "idle_timeout");
}

#[test]
fn write_timeout_max_alone_serves_several_requests_on_one_connection() {
    serves_three_on_one_connection(config().with_write_timeout(FOREVER), "write_timeout");
}

#[test]
fn max_connection_age_max_alone_serves_several_requests_on_one_connection() {
    let config = config().with_max_connection_age(FOREVER);
    serves_three_on_one_connection(config, "max_connection_age");
}

#[test]
fn scrape_with_encode_timeout_max_is_answered() {
    let server = MetricsServer::start(config().with_encode_timeout(FOREVER), |out: &mut String| {
        // A source that takes a moment: the scrape waits for it, without a deadline.
        std::thread::sleep(Duration::from_millis(100));
        out.push_str("slow 1\n");
    })
    .unwrap();
    let mut conn = connect(server.local_addr());
    for i in 0..2 {
        assert_eq!(
            scrape_on(&mut conn),
            Ok(("HTTP/1.1 200 OK".to_owned(), "slow 1\n".to_owned())),
            "scrape {i}"
        );
    }
    drop(conn);
    shuts_down_promptly(server, Duration::from_secs(1));
}

#[test]
fn shutdown_with_timeout_max_returns_promptly_when_nothing_is_in_flight() {
    shuts_down_promptly(start(config()), FOREVER);
}

#[test]
fn shutdown_with_timeout_max_closes_idle_keep_alive_connections_promptly() {
    let server = start(every_timeout_forever());
    let addr = server.local_addr();
    let mut conn = connect(addr);
    assert!(scrape_on(&mut conn).is_ok());
    // `conn` stays open, idle between requests: shutdown closes it at once.
    shuts_down_promptly(server, FOREVER);
    let mut rest = Vec::new();
    assert!(
        conn.read_to_end(&mut rest).is_ok(),
        "the idle connection was closed"
    );
    assert!(TcpStream::connect(addr).is_err(), "the port is closed");
}

#[test]
fn shutdown_with_configured_timeout_max_returns_promptly() {
    let server = start(config().with_shutdown_timeout(FOREVER));
    let took = timed(PROMPTLY * 2, move || {
        server.shutdown();
    })
    .expect("shutdown panicked or hung");
    assert!(took < PROMPTLY, "shutdown took {took:?}");
}

#[test]
fn drop_with_shutdown_timeout_max_returns_promptly() {
    let server = start(every_timeout_forever());
    let addr = server.local_addr();
    let took = timed(PROMPTLY * 2, move || drop(server)).expect("drop panicked or hung");
    assert!(took < PROMPTLY, "drop took {took:?}");
    assert!(TcpStream::connect(addr).is_err(), "the port is closed");
}
