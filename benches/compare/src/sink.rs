//! A loopback OTLP/HTTP sink for the span export rows: a tiny HTTP/1.1 server on
//! `127.0.0.1:0` (std only, a thread per connection, keep-alive) that reads every request in
//! full (`Content-Length` or `chunked` bodies), counts the spans in it and answers `200` with
//! an empty protobuf body (an empty `ExportTraceServiceResponse`: full success).
//!
//! It stands for the collector, which is another process: its threads add their CPU time to
//! [`SinkStats::cpu_ns`], so that the measurements can exclude it (see
//! `harness::report_excluded_cpu`). In steady state it allocates nothing (each connection
//! reuses its buffer), so it does not disturb the all-threads allocation counts either.
//!
//! The span count decodes just enough protobuf to count the `Span` messages of an
//! `ExportTraceServiceRequest` (`resource_spans` = 1 → `scope_spans` = 2 → `spans` = 2);
//! [`self_check`] compares it with the official generated classes (`opentelemetry-proto`,
//! prost) on requests written by our encoder and by prost.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use crate::harness::thread_cpu_ns;

/// What the sink received.
#[derive(Debug, Default)]
pub struct SinkStats {
    /// Requests answered.
    pub requests: AtomicU64,
    /// Request body bytes.
    pub bytes: AtomicU64,
    /// Spans in the request bodies.
    pub spans: AtomicU64,
    /// Requests whose body was empty or not a decodable `ExportTraceServiceRequest`.
    pub bad: AtomicU64,
    /// CPU time of the sink's connection threads (reading, counting, answering).
    pub cpu_ns: AtomicU64,
}

/// A running sink; its threads live as long as the process.
pub struct Sink {
    /// `http://127.0.0.1:PORT/v1/traces`.
    pub url: String,
    pub stats: Arc<SinkStats>,
    /// While held, requests are read and counted but not answered (the sender waits).
    pub gate: Arc<Gate>,
}

/// Holds the sink's answers (see [`Sink::gate`]).
#[derive(Default)]
pub struct Gate {
    held: std::sync::Mutex<bool>,
    opened: std::sync::Condvar,
}

impl Gate {
    /// From now on, answers wait for [`release`](Self::release).
    pub fn hold(&self) {
        *self.held.lock().unwrap() = true;
    }

    /// Answers again, the held ones first.
    pub fn release(&self) {
        *self.held.lock().unwrap() = false;
        self.opened.notify_all();
    }

    fn wait_open(&self) {
        let mut held = self.held.lock().unwrap();
        while *held {
            held = self.opened.wait(held).unwrap();
        }
    }
}

impl Sink {
    pub fn start() -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let stats = Arc::new(SinkStats::default());
        let gate = Arc::new(Gate::default());
        let (s, g) = (Arc::clone(&stats), Arc::clone(&gate));
        std::thread::Builder::new()
            .name("otlp-sink-accept".into())
            .spawn(move || {
                for conn in listener.incoming().flatten() {
                    let (s, g) = (Arc::clone(&s), Arc::clone(&g));
                    let _ = std::thread::Builder::new()
                        .name("otlp-sink-conn".into())
                        .spawn(move || serve(conn, &s, &g));
                }
            })
            .expect("sink thread");
        Sink {
            url: format!("http://{addr}/v1/traces"),
            stats,
            gate,
        }
    }
}

const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n";

/// Serves one connection: request after request until the peer closes it.
fn serve(mut conn: TcpStream, stats: &SinkStats, gate: &Gate) {
    let _ = conn.set_nodelay(true);
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut body: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut filled = 0usize;
    let mut cpu_mark = thread_cpu_ns();
    loop {
        // The head.
        let head_end = loop {
            if let Some(i) = find(&buf[..filled], b"\r\n\r\n") {
                break i + 4;
            }
            if !fill(&mut conn, &mut buf, &mut filled) {
                return;
            }
        };
        let head = &buf[..head_end];
        let content_length = header(head, b"content-length")
            .and_then(|v| std::str::from_utf8(v).ok()?.trim().parse::<usize>().ok());
        let chunked = header(head, b"transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().windows(7).any(|w| w == b"chunked"));
        let close = header(head, b"connection").is_some_and(|v| v.eq_ignore_ascii_case(b"close"));
        // The body, into `body`; `at` is where the next message starts in `buf`.
        body.clear();
        let mut at = head_end;
        if chunked {
            loop {
                let line_end = loop {
                    if let Some(i) = find(&buf[at..filled], b"\r\n") {
                        break at + i;
                    }
                    if !fill(&mut conn, &mut buf, &mut filled) {
                        return;
                    }
                };
                let size_text = std::str::from_utf8(&buf[at..line_end]).unwrap_or("");
                let size_text = size_text.split(';').next().unwrap_or("").trim();
                let Ok(size) = usize::from_str_radix(size_text, 16) else {
                    return;
                };
                at = line_end + 2;
                // The chunk and its CRLF (the last chunk: trailers end with an empty line).
                let need = if size == 0 { 2 } else { size + 2 };
                while filled < at + need {
                    if !fill(&mut conn, &mut buf, &mut filled) {
                        return;
                    }
                }
                if size == 0 {
                    at += 2;
                    break;
                }
                body.extend_from_slice(&buf[at..at + size]);
                at += size + 2;
            }
        } else {
            let len = content_length.unwrap_or(0);
            while filled < at + len {
                if !fill(&mut conn, &mut buf, &mut filled) {
                    return;
                }
            }
            body.extend_from_slice(&buf[at..at + len]);
            at += len;
        }
        // Keep what follows (a pipelined request) at the front of the buffer.
        buf.copy_within(at..filled, 0);
        filled -= at;

        match count_spans(&body) {
            Some(n) if n > 0 => {
                stats.spans.fetch_add(n, Relaxed);
            }
            _ => {
                stats.bad.fetch_add(1, Relaxed);
            }
        }
        stats.bytes.fetch_add(body.len() as u64, Relaxed);
        stats.requests.fetch_add(1, Relaxed);
        let now = thread_cpu_ns();
        stats.cpu_ns.fetch_add(now - cpu_mark, Relaxed);
        gate.wait_open();
        cpu_mark = thread_cpu_ns();
        if conn.write_all(RESPONSE).is_err() || close {
            return;
        }
    }
}

/// Reads more into `buf[filled..]`, growing it when full; false when the peer is gone.
fn fill(conn: &mut TcpStream, buf: &mut Vec<u8>, filled: &mut usize) -> bool {
    if *filled == buf.len() {
        let grow = buf.len().max(64 << 10);
        buf.resize(buf.len() + grow, 0);
    }
    match conn.read(&mut buf[*filled..]) {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            *filled += n;
            true
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The value of header `name` (lower case) in a request head.
fn header<'a>(head: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    head.split(|&b| b == b'\n').skip(1).find_map(|line| {
        let colon = line.iter().position(|&b| b == b':')?;
        line[..colon]
            .eq_ignore_ascii_case(name)
            .then(|| trim(&line[colon + 1..]))
    })
}

fn trim(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t' | b'\r', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t' | b'\r'] = v {
        v = rest;
    }
    v
}

fn varint(b: &[u8], i: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*i)?;
        *i += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Calls `f(field, bytes)` for every length-delimited field of the message `b`, skipping the
/// others; `None` if `b` is not a well-formed message.
fn for_each_len(b: &[u8], mut f: impl FnMut(u64, &[u8]) -> Option<()>) -> Option<()> {
    let mut i = 0;
    while i < b.len() {
        let key = varint(b, &mut i)?;
        match key & 7 {
            0 => {
                varint(b, &mut i)?;
            }
            1 => i = i.checked_add(8).filter(|&e| e <= b.len())?,
            5 => i = i.checked_add(4).filter(|&e| e <= b.len())?,
            2 => {
                let len = usize::try_from(varint(b, &mut i)?).ok()?;
                let end = i.checked_add(len).filter(|&e| e <= b.len())?;
                f(key >> 3, &b[i..end])?;
                i = end;
            }
            _ => return None,
        }
    }
    Some(())
}

/// The number of `Span`s in an `ExportTraceServiceRequest` (protobuf), `None` if malformed.
pub fn count_spans(req: &[u8]) -> Option<u64> {
    let mut n = 0u64;
    for_each_len(req, |field, resource_spans| {
        if field != 1 {
            return Some(());
        }
        for_each_len(resource_spans, |field, scope_spans| {
            if field != 2 {
                return Some(());
            }
            for_each_len(scope_spans, |field, _span| {
                n += u64::from(field == 2);
                Some(())
            })
        })
    })?;
    Some(n)
}

/// Checks [`count_spans`] against the official generated classes (prost): on a request of
/// our encoder (3 spans) and on one prost writes (2 resources, 3 scopes, 5 spans). Panics on a
/// disagreement: the export rows' span counts would be wrong.
pub fn self_check() {
    use agentcore_telemetry::export::otlp::{OtlpEncoder, Protocol};
    use agentcore_telemetry::export::{ExportSpan, Resource};
    use agentcore_telemetry::{DistributedTracer, SpanKind, SpanStatus, TracerConfig};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prost::Message as _;

    let tracer = DistributedTracer::new(TracerConfig {
        from_env: false,
        span_log_capacity: 64,
        ..TracerConfig::default()
    });
    let mut encoder = OtlpEncoder::new(Protocol::HttpProtobuf, &Resource::new("check"));
    for _ in 0..3 {
        let mut span = tracer.start_span("tool_execution", SpanKind::Internal, []);
        span.set_attribute("tool_id", "calculator");
        span.add_event("checkpoint", []);
        let id = span.span_id();
        tracer.finish_span(span, SpanStatus::Ok, None);
        encoder.add(&ExportSpan::new(&tracer.get_span_by_id(id).unwrap()));
    }
    let mut ours = Vec::new();
    encoder.write_request(&mut ours);
    let decoded = ExportTraceServiceRequest::decode(ours.as_slice()).expect("prost decodes ours");
    let official: usize = decoded
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum();
    assert_eq!(official, 3);
    assert_eq!(count_spans(&ours), Some(3), "span count of our request");

    let scope = |k: usize| ScopeSpans {
        spans: (0..k)
            .map(|i| Span {
                name: format!("s{i}"),
                span_id: vec![1; 8],
                ..Span::default()
            })
            .collect(),
        schema_url: "x".into(),
        ..ScopeSpans::default()
    };
    let req = ExportTraceServiceRequest {
        resource_spans: vec![
            ResourceSpans {
                scope_spans: vec![scope(2), scope(1)],
                ..ResourceSpans::default()
            },
            ResourceSpans {
                scope_spans: vec![scope(2)],
                schema_url: "y".into(),
                ..ResourceSpans::default()
            },
        ],
    };
    assert_eq!(
        count_spans(&req.encode_to_vec()),
        Some(5),
        "span count of prost's request"
    );
    assert_eq!(count_spans(&[0x0a, 0x05, 0x12]), None, "truncated message");
}
