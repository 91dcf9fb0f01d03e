//! The OTLP/HTTP exporter's handling of what a collector answers (private: reached over a
//! loopback socket): raw response bytes, and responses built from parts (a status, fields, a
//! protobuf or JSON body that is a partial success, a `google.rpc.Status` or arbitrary bytes,
//! `Content-Length` right or wrong, chunked (with or without chunk extensions), or delimited by
//! the close, gzip whole or corrupt, interim `100`, `102` and `103` responses before it, bytes
//! nobody asked for after it).
//!
//! A fake collector on 127.0.0.1 reads each request (head, then its `Content-Length` body) and
//! answers the first request of an input with the input's answer; every later request gets a
//! well-formed `200` with an empty body. Per input, a fresh exporter exports one span twice:
//!
//! 1. Against the answer: it returns by its deadline (plus slack for a loaded machine), never
//!    panics, and accounts for exactly the one span (`exported + rejected + failed == 1`); a
//!    status it reports is a three-digit code, a span counted as accepted came with a `2xx`, and
//!    the `error_type` it gives the self-metrics is one of the documented names or that code (a
//!    hostile collector cannot mint label values). A built answer that is clean (well framed,
//!    nothing unasked after it, no field that changes the framing, a `2xx` other than `204`, a
//!    `4xx` or a `5xx`) is
//!    also checked against what the OTLP specification says it means: a `2xx` accepts the span,
//!    or rejects it when its partial success says so (`rejected_spans` counted at most once per
//!    span, never negative); `429`, `502`, `503` and `504` are retried when the policy allows
//!    (the retry then succeeds) and fail with their status when it does not; every other status
//!    fails with that status, unretried.
//! 2. Then against a collector that behaves: the span is exported, whatever the answer left on
//!    the connection (unasked bytes, with the answer or arriving after the first export returned,
//!    a half response, a kept connection), since a connection left unusable must not be used
//!    again.
#![no_main]

use std::io::{BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use agentcore_telemetry::export::otlp::{OtlpHttpConfig, OtlpHttpExporter, Protocol, RetryPolicy};
use agentcore_telemetry::export::{Deadline, ExportError, ExportOutcome, ExportSpan, SpanExporter};
use agentcore_telemetry::{DistributedTracer, SpanKind, SpanRecord, TracerConfig};
use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;

#[path = "support/http.rs"]
mod http;
use http::{lock, read_request, set_linger_zero, Framing};

/// The export timeout when the answer may never complete (raw bytes, a wrong length, a body
/// delimited by a close that does not come): such an input costs this much, and random inputs
/// mostly are such (250 ms gave 8 inputs a second).
const SHORT: Duration = Duration::from_millis(30);
/// The export timeout for a clean answer, whose outcome the target predicts: long enough that a
/// loaded machine does not turn a retry into a timeout.
const LONG: Duration = Duration::from_secs(5);
/// What a loaded machine may add to a deadline before the target calls it a hang.
const SLACK: Duration = Duration::from_secs(5);
const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

/// The answer to the next request: its bytes, bytes for the same connection once the first
/// export has returned (the unasked ones a proxy sends on an idle connection), and whether the
/// collector then closes it.
struct Pending {
    bytes: Vec<u8>,
    later: Option<Vec<u8>>,
    close: bool,
}

/// Where the first export stands, for the collector's `later` bytes.
#[derive(Default)]
struct Steps {
    first_returned: bool,
    later_written: bool,
}

/// The collector's shared state: the answer waiting for the next request, the steps, and the
/// connections open now (closed from this side at the end of each input, so that the exporter's
/// side is the passive close and keeps no `TIME_WAIT` port per input).
struct Collector {
    answer: Mutex<Option<Pending>>,
    steps: Mutex<Steps>,
    changed: Condvar,
    open: Mutex<Vec<TcpStream>>,
}

fn collector() -> &'static (Collector, SocketAddr) {
    static COLLECTOR: OnceLock<(Collector, SocketAddr)> = OnceLock::new();
    COLLECTOR.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                set_linger_zero(&conn);
                // Unasked bytes written after an answer must arrive at once: with Nagle's
                // algorithm they waited for the exporter's acknowledgement of that answer, which
                // rode on its next request, and so arrived after the connection was found idle
                // (a proxy's 408 on a connection idle for long has nothing in flight to wait for).
                let _ = conn.set_nodelay(true);
                if let Ok(clone) = conn.try_clone() {
                    lock(&collector().0.open).push(clone);
                }
                std::thread::spawn(move || serve(conn));
            }
        });
        (
            Collector {
                answer: Mutex::new(None),
                steps: Mutex::new(Steps::default()),
                changed: Condvar::new(),
                open: Mutex::new(Vec::new()),
            },
            addr,
        )
    })
}

/// Answers the requests of one connection until it ends.
fn serve(conn: TcpStream) {
    let mut r = BufReader::new(conn);
    while read_request(&mut r) {
        let answer = lock(&collector().0.answer).take();
        let w = r.get_mut();
        match answer {
            Some(Pending {
                bytes,
                later,
                close,
            }) => {
                let _ = w.write_all(&bytes);
                if let Some(later) = later {
                    // Written from a thread of its own, so that this one goes on answering the
                    // connection meanwhile (a retry sent on it waited for the deadline).
                    let w = w.try_clone();
                    std::thread::spawn(move || {
                        let c = &collector().0;
                        let mut steps = lock(&c.steps);
                        while !steps.first_returned {
                            steps = c.changed.wait(steps).unwrap_or_else(|e| e.into_inner());
                        }
                        drop(steps);
                        if let Ok(mut w) = w {
                            let _ = w.write_all(&later);
                        }
                        // Given time to arrive before the second export looks at the connection.
                        std::thread::sleep(Duration::from_millis(1));
                        lock(&c.steps).later_written = true;
                        c.changed.notify_all();
                    });
                }
                if close {
                    // A graceful close: FIN, then wait for the exporter's close before the drop's
                    // reset (`SO_LINGER` 0), which would discard an answer still unread on its
                    // side (seen: a `403` lost, and the exporter's fresh retry taken for it).
                    let _ = w.shutdown(Shutdown::Write);
                    let _ = std::io::copy(&mut r, &mut std::io::sink());
                    return;
                }
            }
            None => {
                if w.write_all(OK).is_err() {
                    return;
                }
            }
        }
    }
}

/// One finished span's record (made once).
fn record() -> &'static SpanRecord {
    static RECORD: OnceLock<SpanRecord> = OnceLock::new();
    RECORD.get_or_init(|| {
        let tracer = DistributedTracer::new(TracerConfig {
            from_env: false,
            ..TracerConfig::default()
        });
        let span = tracer.start_span("fuzz", SpanKind::Client, []);
        let id = span.span_id();
        span.end();
        tracer.get_span_by_id(id).expect("the span is in the log")
    })
}

// ---- The input ----

/// Statuses with a meaning in the OTLP specification, and a few without.
const STATUSES: &[u16] = &[
    200, 202, 206, 301, 400, 401, 403, 404, 408, 413, 429, 500, 502, 503, 504,
];

#[derive(Debug)]
struct Status(u16);

impl<'a> Arbitrary<'a> for Status {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Status(if u.ratio(7, 8)? {
            STATUSES[u.choose_index(STATUSES.len())?]
        } else {
            u16::arbitrary(u)?
        }))
    }
}

/// A field besides the framing ones, which `Framing` and `gzip` write.
#[derive(Debug, Arbitrary)]
enum Field {
    RetryAfter(RetryAfter),
    ContentType,
    Other { name: String, value: Vec<u8> },
}

#[derive(Debug, Arbitrary)]
enum RetryAfter {
    Seconds(u64),
    Text(String),
    Date,
}

#[derive(Debug, Arbitrary)]
enum Body {
    Raw(Vec<u8>),
    /// `ExportTraceServiceResponse { partial_success }`.
    PartialSuccess {
        rejected: i64,
        message: String,
        /// JSON only: the `int64` as a number rather than a string (both are valid).
        number: bool,
    },
    /// `google.rpc.Status`.
    Status {
        code: i32,
        message: String,
    },
}

#[derive(Debug, Arbitrary)]
struct Built {
    status: Status,
    interim: u8,
    fields: Vec<Field>,
    body: Body,
    framing: Framing,
    /// Gzip the body, and corrupt it when `true`.
    gzip: Option<bool>,
    /// Bytes after the response, asked by nobody: sent with it, or (`later`) once the first
    /// export has returned, on the connection it may use again.
    unasked: Option<Unasked>,
}

#[derive(Debug, Arbitrary)]
struct Unasked {
    bytes: Vec<u8>,
    later: bool,
}

#[derive(Debug, Arbitrary)]
enum Answer {
    Raw(Vec<u8>),
    Built(Built),
}

#[derive(Debug, Arbitrary)]
struct Input {
    json: bool,
    close: bool,
    retries: bool,
    answer: Answer,
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn proto_field(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    varint(out, field << 3 | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn encode_body(body: &Body, json: bool) -> Vec<u8> {
    match body {
        Body::Raw(b) => b.clone(),
        Body::PartialSuccess {
            rejected,
            message,
            number,
        } => {
            if json {
                let n = if *number {
                    rejected.to_string()
                } else {
                    format!("\"{rejected}\"")
                };
                format!(
                    "{{\"partialSuccess\":{{\"rejectedSpans\":{n},\"errorMessage\":{}}}}}",
                    json_string(message)
                )
                .into_bytes()
            } else {
                let mut inner = Vec::new();
                if *rejected != 0 {
                    varint(&mut inner, 1 << 3);
                    varint(&mut inner, *rejected as u64);
                }
                if !message.is_empty() {
                    proto_field(&mut inner, 2, message.as_bytes());
                }
                let mut out = Vec::new();
                proto_field(&mut out, 1, &inner);
                out
            }
        }
        Body::Status { code, message } => {
            if json {
                format!("{{\"code\":{code},\"message\":{}}}", json_string(message)).into_bytes()
            } else {
                let mut out = Vec::new();
                if *code != 0 {
                    varint(&mut out, 1 << 3);
                    varint(&mut out, *code as i64 as u64);
                }
                if !message.is_empty() {
                    proto_field(&mut out, 2, message.as_bytes());
                }
                out
            }
        }
    }
}

fn gzip(bytes: &[u8], corrupt: bool) -> Vec<u8> {
    // A stored (uncompressed) deflate stream in a gzip member: no compressor needed here.
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let mut chunks = bytes.chunks(0xffff).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(c) = chunks.next() {
        let last = chunks.peek().is_none();
        let len = c.len() as u16;
        out.push(u8::from(last));
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(c);
    }
    out.extend_from_slice(&crc32(bytes).to_le_bytes());
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    if corrupt {
        let n = out.len();
        out[n - 5] ^= 0x55; // the CRC
    }
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                crc >> 1 ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The bytes of a built answer (but for unasked bytes sent later), and whether it is clean (see
/// the module docs).
fn build(b: &Built, json: bool) -> (Vec<u8>, bool) {
    // Not 3xx: the OTLP specification leaves following a redirect to the client.
    let status = b.status.0;
    let mut clean = ((200..300).contains(&status) && status != 204 || (400..600).contains(&status))
        && b.unasked.as_ref().is_none_or(|u| u.later)
        && b.framing.is_exact();
    let mut out = Vec::new();
    // Interim responses: `100 Continue`, `102 Processing`, `103 Early Hints` (with the fields
    // it hints), which a proxy or server may send before any final response.
    for i in 0..b.interim % 4 {
        out.extend_from_slice(match (b.interim >> 2).wrapping_add(i) % 3 {
            0 => b"HTTP/1.1 100 Continue\r\n\r\n".as_slice(),
            1 => b"HTTP/1.1 102 Processing\r\n\r\n",
            _ => b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n",
        });
    }
    out.extend_from_slice(format!("HTTP/1.1 {} X\r\n", b.status.0).as_bytes());
    for f in b.fields.iter().take(16) {
        match f {
            Field::RetryAfter(r) => {
                // A delay the exporter may honour: its outcome is not predicted.
                clean = false;
                out.extend_from_slice(b"Retry-After: ");
                match r {
                    RetryAfter::Seconds(s) => out.extend_from_slice(s.to_string().as_bytes()),
                    RetryAfter::Text(t) => out.extend_from_slice(t.as_bytes()),
                    RetryAfter::Date => out.extend_from_slice(b"Sun, 06 Nov 1994 08:49:37 GMT"),
                }
                out.extend_from_slice(b"\r\n");
            }
            Field::ContentType => out.extend_from_slice(if json {
                b"Content-Type: application/json\r\n"
            } else {
                b"Content-Type: application/x-protobuf\r\n"
            }),
            Field::Other { name, value } => {
                let lower = name.to_ascii_lowercase();
                if !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
                    || name.is_empty()
                    // A field value is visible characters, spaces, tabs and obs-text (RFC 9110
                    // section 5.5); a recipient may refuse a message with anything else.
                    || value.iter().any(|&c| (c < 0x20 && c != b'\t') || c == 0x7f)
                    || [
                        "content-length",
                        "transfer-encoding",
                        "content-encoding",
                        "connection",
                        "retry-after",
                    ]
                    .contains(&lower.as_str())
                {
                    clean = false;
                }
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(b": ");
                out.extend_from_slice(value);
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    let mut body = encode_body(&b.body, json);
    if let Some(corrupt) = b.gzip {
        body = gzip(&body, corrupt);
        out.extend_from_slice(b"Content-Encoding: gzip\r\n");
    }
    b.framing.write(&mut out, &body);
    if let Some(u) = b.unasked.as_ref().filter(|u| !u.later) {
        out.extend_from_slice(&u.bytes);
    }
    (out, clean)
}

// ---- The checks ----

/// The `error_type`s an error can have besides an HTTP status code.
const ERROR_TYPES: &[&str] = &[
    "timeout",
    "connection",
    "invalid_response",
    "request_too_large",
    "rejected",
    "io",
    "shutdown",
    "panic",
];

fn check_any(
    outcome: &ExportOutcome,
    took: Duration,
    timeout: Duration,
    shown: &dyn Fn() -> String,
) {
    assert!(
        took <= timeout + SLACK,
        "the export took {took:?} against a {timeout:?} timeout; answer {}",
        shown()
    );
    assert_eq!(
        outcome.spans(),
        1,
        "one span sent, not accounted for once: {outcome:?}; answer {}",
        shown()
    );
    if let Some(status) = outcome.http_status {
        assert!(
            (100..=999).contains(&status),
            "status {status}; answer {}",
            shown()
        );
    }
    if let Some(e) = &outcome.error {
        let t = e.error_type();
        let is_status = t.len() == 3 && t.bytes().all(|b| b.is_ascii_digit());
        assert!(
            is_status || ERROR_TYPES.contains(&t.as_ref()),
            "error_type {t:?} from {e:?}; answer {}",
            shown()
        );
    }
    if outcome.exported + outcome.rejected == 1 {
        assert!(
            outcome.http_status.is_some_and(|s| (200..300).contains(&s)),
            "accepted without a 2xx: {outcome:?}; answer {}",
            shown()
        );
    }
}

/// What the OTLP specification makes of a clean built answer.
fn check_clean(outcome: &ExportOutcome, b: &Built, retries: bool, shown: &dyn Fn() -> String) {
    let status = b.status.0;
    let rejected = match &b.body {
        Body::PartialSuccess { rejected, .. } if *rejected > 0 && b.gzip != Some(true) => 1,
        _ => 0,
    };
    let (exported, rejected, failed, http_error) = if (200..300).contains(&status) {
        match &b.body {
            // Arbitrary bytes may decode as a partial success.
            Body::Raw(_) => (outcome.exported, outcome.rejected, 0, None),
            _ => (1 - rejected, rejected, 0, None),
        }
    } else if matches!(status, 429 | 502 | 503 | 504) && retries {
        (1, 0, 0, None)
    } else {
        (0, 0, 1, Some(status))
    };
    let got_http_error = match &outcome.error {
        Some(ExportError::Http { status, .. }) => Some(*status),
        _ => None,
    };
    assert_eq!(
        (
            outcome.exported,
            outcome.rejected,
            outcome.failed,
            got_http_error
        ),
        (exported, rejected, failed, http_error),
        "a clean answer's outcome: {outcome:?}; answer {}",
        shown()
    );
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let (collector, addr) = collector();
    let (bytes, built) = match &input.answer {
        Answer::Raw(raw) => (raw.clone(), None),
        Answer::Built(b) => {
            let (bytes, clean) = build(b, input.json);
            (bytes, clean.then_some(b))
        }
    };
    let timeout = if built.is_some() { LONG } else { SHORT };
    let retry = if input.retries {
        RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
            ..RetryPolicy::default()
        }
    } else {
        RetryPolicy::none()
    };
    let mut exporter = OtlpHttpExporter::new(OtlpHttpConfig {
        endpoint: format!("http://{addr}/v1/traces"),
        protocol: if input.json {
            Protocol::HttpJson
        } else {
            Protocol::HttpProtobuf
        },
        // The first export's deadline is the shorter one it is handed (the earlier of the two
        // applies); the second's must not be cut short by a loaded machine.
        timeout: LONG,
        retry,
        ..OtlpHttpConfig::default()
    })
    .expect("a valid configuration");
    let shown = || format!("{:?} ({:?})", String::from_utf8_lossy(&bytes), input);

    let later = match &input.answer {
        Answer::Built(b) => b
            .unasked
            .as_ref()
            .filter(|u| u.later)
            .map(|u| u.bytes.clone()),
        Answer::Raw(_) => None,
    };
    let has_later = later.is_some();
    *lock(&collector.steps) = Steps::default();
    *lock(&collector.answer) = Some(Pending {
        bytes: bytes.clone(),
        later,
        close: input.close,
    });
    let started = Instant::now();
    exporter.add(ExportSpan::new(record()));
    let first = exporter.export(&Deadline::after(timeout));
    check_any(&first, started.elapsed(), timeout, &shown);
    if let Some(b) = built {
        check_clean(&first, b, input.retries, &shown);
    }
    // Not taken if the exporter failed before its request was read in full.
    let taken = lock(&collector.answer).take().is_none();
    lock(&collector.steps).first_returned = true;
    collector.changed.notify_all();
    if has_later && taken {
        let mut steps = lock(&collector.steps);
        let until = Instant::now() + SLACK;
        while !steps.later_written && Instant::now() < until {
            steps = collector
                .changed
                .wait_timeout(steps, until - Instant::now())
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    exporter.add(ExportSpan::new(record()));
    let second = exporter.export(&Deadline::after(SLACK));
    assert_eq!(
        (second.exported, second.error.as_ref()),
        (1, None),
        "a well-behaved collector after this answer: {second:?}; the answer was {}",
        shown()
    );

    for conn in lock(&collector.open).drain(..) {
        let _ = conn.shutdown(Shutdown::Both);
    }
    drop(exporter);
});
