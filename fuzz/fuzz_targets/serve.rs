//! The `/metrics` server's request handling (private: reached over a loopback socket) with
//! arbitrary request bytes.
//!
//! One `MetricsServer` per process, with small head limits (1024 bytes, 8 fields) so that inputs
//! of a few KiB reach them. Each input is written on a fresh connection, optionally after one
//! well-formed scrape request, and the write side is then shut down. What comes back must be a
//! sequence of well-formed responses (`HTTP/1.1`, a status the server documents, a
//! `Content-Length` matching the body, nothing after a `Connection: close`) followed by the close,
//! or just the close; never a hang (the connection must end within the server's deadlines) and
//! never a panic (libFuzzer's panic hook aborts on a panic in any thread, the server's
//! included). After the well-formed scrape, the first response is `200` with the exposition.
//! Every 64 inputs a plain scrape checks that the server still serves.
#![no_main]

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use agentcore_telemetry::serve::{MetricsServer, ServerConfig};
use libfuzzer_sys::fuzz_target;

#[path = "support/http.rs"]
mod http;
use http::set_linger_zero;

const MARKER: &str = "fuzz_serve_marker_total 7\n";
const STATUSES: &[u16] = &[200, 400, 404, 405, 408, 414, 431, 500, 501, 503, 505];
const SCRAPE: &[u8] = b"GET /metrics HTTP/1.1\r\nHost: fuzz\r\n\r\n";

/// The server's address. The server is started once and lives as long as the process, in a
/// static (so that the leak checker sees it reachable; the mutex only makes it `Sync`).
fn server() -> SocketAddr {
    static SERVER: OnceLock<(Mutex<MetricsServer>, SocketAddr)> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            let config = ServerConfig::default()
                .with_addr("127.0.0.1:0".parse().expect("addr"))
                .with_max_header_bytes(1024)
                .with_max_headers(8)
                .with_header_read_timeout(Duration::from_secs(1))
                .with_encode_timeout(Duration::from_secs(5))
                .with_max_connections(64);
            let server = MetricsServer::start(config, |out: &mut String| {
                out.push_str("# TYPE fuzz_serve_marker_total counter\n");
                out.push_str(MARKER);
            })
            .expect("server starts");
            let addr = server.local_addr();
            (Mutex::new(server), addr)
        })
        .1
}

/// Sends `request` on a fresh connection, shuts the write side, and reads until the server
/// closes. The server must end the connection within its deadlines.
fn exchange(request: &[u8]) -> Vec<u8> {
    let stream = TcpStream::connect(server()).expect("connect");
    set_linger_zero(&stream);
    // Header read timeout (1 s) + two encode timeouts (10 s) + slack for a loaded machine.
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut stream = stream;
    // The server may close before reading everything (a head over its limit): a reset or a
    // broken pipe on write is an answer too, so keep going and read what came back.
    let _ = stream.write_all(request);
    let _ = stream.shutdown(Shutdown::Write);
    let mut out = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {
                panic!(
                    "the server neither answered nor closed within 30 s; got {:?}",
                    String::from_utf8_lossy(&out)
                )
            }
            Err(e) => panic!("read: {e}"),
        }
    }
    out
}

struct Response {
    status: u16,
    close: bool,
    body: Vec<u8>,
}

/// Splits the bytes a connection returned into well-formed responses; panics on anything else.
/// A response to `HEAD` carries the `Content-Length` of the body it leaves out, so where the
/// request holds a `HEAD`, each response may also be read without its body: the split must
/// work one way or the other (tried with the body first, failures remembered per offset).
fn parse_responses(all: &[u8], head_possible: bool) -> Vec<Response> {
    let mut failed = std::collections::HashSet::new();
    let mut errors = Vec::new();
    parse_from(all, 0, head_possible, &mut failed, &mut errors).unwrap_or_else(|| {
        panic!(
            "not a sequence of well-formed responses ({}): {:?}",
            errors.join("; "),
            String::from_utf8_lossy(all)
        )
    })
}

fn parse_from(
    all: &[u8],
    at: usize,
    head_possible: bool,
    failed: &mut std::collections::HashSet<usize>,
    errors: &mut Vec<String>,
) -> Option<Vec<Response>> {
    if at == all.len() {
        return Some(Vec::new());
    }
    if !failed.insert(at) {
        return None;
    }
    let (response, head_end, length) = match parse_head(&all[at..]) {
        Ok(parsed) => parsed,
        Err(e) => {
            errors.push(format!("at byte {at}: {e}"));
            return None;
        }
    };
    let body_start = at + head_end;
    let mut options = vec![];
    if all.len() - body_start >= length {
        options.push(length);
    }
    if head_possible && length > 0 {
        options.push(0);
    }
    for body_len in options {
        let next = body_start + body_len;
        if response.close && next != all.len() {
            errors.push(format!(
                "at byte {next}: bytes after a Connection: close response"
            ));
            continue;
        }
        if let Some(mut rest) = parse_from(all, next, head_possible, failed, errors) {
            let mut out = vec![Response {
                status: response.status,
                close: response.close,
                body: all[body_start..next].to_vec(),
            }];
            out.append(&mut rest);
            return Some(out);
        }
    }
    if all.len() - body_start < length && !head_possible {
        errors.push(format!(
            "at byte {body_start}: body shorter than Content-Length {length}"
        ));
    }
    None
}

/// One response head: the response (without body), the head's length with its empty line, and
/// the `Content-Length`.
fn parse_head(bytes: &[u8]) -> Result<(Response, usize, usize), String> {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("truncated response head")?;
    let head = std::str::from_utf8(&bytes[..end]).map_err(|_| "response head not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    if parts.next() != Some("HTTP/1.1") {
        return Err(format!("status line {status_line:?}"));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("status line {status_line:?}"))?;
    if !STATUSES.contains(&status) {
        return Err(format!("undocumented status {status}"));
    }
    if !parts.next().is_some_and(|r| !r.is_empty()) {
        return Err(format!("no reason phrase: {status_line:?}"));
    }
    let mut length = None;
    let mut close = false;
    for line in lines {
        let (name, value) = line
            .split_once(": ")
            .ok_or_else(|| format!("header line {line:?}"))?;
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(format!("header name {name:?}"));
        }
        if value.bytes().any(|b| b.is_ascii_control()) {
            return Err(format!("header value {line:?}"));
        }
        if name.eq_ignore_ascii_case("content-length") {
            if length.is_some() {
                return Err("two Content-Length fields".into());
            }
            length = Some(value.parse::<usize>().map_err(|_| format!("{line:?}"))?);
        }
        if name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close") {
            close = true;
        }
    }
    let length = length.ok_or("a response without Content-Length")?;
    let response = Response {
        status,
        close,
        body: Vec::new(),
    };
    Ok((response, end + 4, length))
}

fuzz_target!(|data: &[u8]| {
    static RUNS: AtomicU64 = AtomicU64::new(0);
    if RUNS.fetch_add(1, Ordering::Relaxed) % 64 == 0 {
        let responses = parse_responses(&exchange(SCRAPE), false);
        assert_eq!(responses.len(), 1);
        assert_eq!(responses[0].status, 200, "the server stopped serving");
    }
    // The first byte chooses: even, the raw bytes alone; odd, a well-formed scrape first.
    let (scrape_first, rest) = match data.split_first() {
        Some((b, rest)) => (b % 2 == 1, rest),
        None => (false, data),
    };
    let mut request = Vec::with_capacity(SCRAPE.len() + rest.len());
    if scrape_first {
        request.extend_from_slice(SCRAPE);
    }
    request.extend_from_slice(rest);
    // Methods are case-sensitive: only this spelling is a HEAD the server answers without body.
    let head_possible = request.windows(4).any(|w| w == b"HEAD");
    let responses = parse_responses(&exchange(&request), head_possible);
    if scrape_first {
        let first = responses
            .first()
            .expect("no answer to a well-formed scrape");
        assert_eq!(first.status, 200);
        let body = String::from_utf8_lossy(&first.body);
        assert!(body.contains(MARKER), "scrape body {body:?}");
    }
});
