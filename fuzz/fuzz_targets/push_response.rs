//! The Pushgateway client's handling of what a gateway answers (private: reached over a loopback
//! socket): raw response bytes, and responses built from parts (a status, `1xx` interim
//! responses before it, fields, a body framed by a right or wrong `Content-Length`, by chunks
//! with or without trailers and chunk extensions, or by the close).
//!
//! A fake gateway on 127.0.0.1 reads the request (head, then its `Content-Length` body) and
//! answers the first request of an input with the input's answer, then closes the connection or
//! keeps it open, as the input says; every later request gets a well-formed `200`. Per input, a
//! push of a small registry:
//!
//! * returns by its timeout (plus slack for a loaded machine) and never panics;
//! * succeeds only on a `2xx`; an error's status is one from 100 to 599, its body is free of
//!   control characters and at most the 512 bytes it reads (each turned into at most one
//!   replacement character);
//! * for a clean built answer (a final status from 200 to 599 other than `204` and `304`, well
//!   framed by its length or its chunks, `1xx` interim responses other than `101` before it, and
//!   no field that changes the framing): `Ok` for a `2xx`, and otherwise `PushError::Status`
//!   with that status and, for a body of printable ASCII, exactly its first 512 bytes, trimmed
//!   (the chunks' data, when chunked);
//!
//! then a second push, to the gateway behaving again, succeeds.
#![no_main]

use std::io::{BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use agentcore_telemetry::pushgateway::{PushError, Pushgateway};
use agentcore_telemetry::Registry;
use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;

#[path = "support/http.rs"]
mod http;
use http::{lock, read_request, set_linger_zero, Framing};

/// The push timeout when the answer may never complete: such an input costs this much.
const SHORT: Duration = Duration::from_millis(30);
/// The push timeout for a clean answer, whose outcome the target predicts.
const LONG: Duration = Duration::from_secs(5);
/// What a loaded machine may add to a deadline before the target calls it a hang.
const SLACK: Duration = Duration::from_secs(5);
const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
/// The most body bytes the client puts in an error (`PushError::Status`).
const ERROR_BODY: usize = 512;

/// The gateway's shared state: the answer to the next request (and whether to close after it),
/// and the connections open now (closed at the end of each input).
struct Gateway {
    answer: Mutex<Option<(Vec<u8>, bool)>>,
    open: Mutex<Vec<TcpStream>>,
}

fn gateway() -> &'static (Gateway, SocketAddr) {
    static GATEWAY: OnceLock<(Gateway, SocketAddr)> = OnceLock::new();
    GATEWAY.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                set_linger_zero(&conn);
                let _ = conn.set_nodelay(true);
                if let Ok(clone) = conn.try_clone() {
                    lock(&gateway().0.open).push(clone);
                }
                std::thread::spawn(move || serve(conn));
            }
        });
        (
            Gateway {
                answer: Mutex::new(None),
                open: Mutex::new(Vec::new()),
            },
            addr,
        )
    })
}

/// Answers the requests of one connection until it ends. The client sends
/// `Connection: close`, one request per connection.
fn serve(conn: TcpStream) {
    let mut r = BufReader::new(conn);
    if !read_request(&mut r) {
        return;
    }
    let answer = lock(&gateway().0.answer).take();
    let w = r.get_mut();
    let (bytes, close) = answer.unwrap_or_else(|| (OK.to_vec(), true));
    let _ = w.write_all(&bytes);
    if close {
        // A graceful close: FIN, then wait for the client's close before the drop's reset
        // (`SO_LINGER` 0), which would discard an answer still unread on its side.
        let _ = w.shutdown(Shutdown::Write);
    }
    let _ = std::io::copy(&mut r, &mut std::io::sink());
}

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let r = Registry::new();
        r.counter("fuzz_pushes_total", "Pushes.")
            .expect("a valid name")
            .inc();
        r
    })
}

// ---- The input ----

/// Statuses the Pushgateway answers with, and a few it does not.
const STATUSES: &[u16] = &[
    200, 202, 204, 301, 304, 400, 404, 405, 413, 431, 500, 502, 503,
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

#[derive(Debug, Arbitrary)]
struct Built {
    status: Status,
    /// Interim responses before the final one: their statuses (100 to 199).
    interim: Vec<u8>,
    fields: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    framing: Framing,
    /// Bytes after the response.
    trailing: Option<Vec<u8>>,
}

#[derive(Debug, Arbitrary)]
enum Answer {
    Raw(Vec<u8>),
    Built(Built),
}

#[derive(Debug, Arbitrary)]
struct Input {
    close: bool,
    answer: Answer,
}

/// The bytes of a built answer, and whether it is clean (see the module docs).
fn build(b: &Built) -> (Vec<u8>, bool) {
    let status = b.status.0;
    let mut clean = (200..600).contains(&status)
        && !matches!(status, 204 | 304)
        && !(300..400).contains(&status)
        && b.framing.is_exact();
    let mut out = Vec::new();
    for &i in b.interim.iter().take(8) {
        let code = 100 + u16::from(i % 100);
        if code == 101 {
            clean = false; // an upgrade nobody asked for: refused
        }
        out.extend_from_slice(format!("HTTP/1.1 {code} Interim\r\n\r\n").as_bytes());
    }
    // More interim responses than the client takes (16) are refused, and are not built here.
    out.extend_from_slice(format!("HTTP/1.1 {status} X\r\n").as_bytes());
    for (name, value) in b.fields.iter().take(16) {
        let lower = name.to_ascii_lowercase();
        if name.is_empty()
            || !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
            || value.iter().any(|&c| (c < 0x20 && c != b'\t') || c == 0x7f)
            || ["content-length", "transfer-encoding", "connection"].contains(&lower.as_str())
        {
            clean = false;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    b.framing.write(&mut out, &b.body);
    if let Some(t) = &b.trailing {
        out.extend_from_slice(t);
    }
    (out, clean)
}

// ---- The checks ----

fn check_any(
    result: &Result<(), PushError>,
    took: Duration,
    timeout: Duration,
    shown: &dyn Fn() -> String,
) {
    assert!(
        took <= timeout + SLACK,
        "the push took {took:?} against a {timeout:?} timeout; answer {}",
        shown()
    );
    if let Err(PushError::Status { status, body }) = result {
        assert!(
            (100..600).contains(status) && !(200..300).contains(status),
            "an error with status {status}; answer {}",
            shown()
        );
        assert!(
            !body.chars().any(char::is_control),
            "control characters in the error's body {body:?}; answer {}",
            shown()
        );
        assert!(
            body.chars().count() <= ERROR_BODY,
            "{} characters of body in the error; answer {}",
            body.chars().count(),
            shown()
        );
    }
    if let Err(e) = result {
        assert!(
            !matches!(
                e,
                PushError::InvalidUrl(_)
                    | PushError::InvalidGroupingKey(_)
                    | PushError::ReservedName(_)
                    | PushError::Panicked { .. }
            ),
            "{e:?}; answer {}",
            shown()
        );
    }
}

fn check_clean(result: &Result<(), PushError>, b: &Built, shown: &dyn Fn() -> String) {
    let status = b.status.0;
    if (200..300).contains(&status) {
        assert_eq!(result, &Ok(()), "a clean 2xx; answer {}", shown());
        return;
    }
    let Err(PushError::Status { status: got, body }) = result else {
        panic!("a clean {status}: {result:?}; answer {}", shown());
    };
    assert_eq!(*got, status, "answer {}", shown());
    if b.body.iter().all(|&c| (0x20..0x7f).contains(&c)) {
        let start = &b.body[..b.body.len().min(ERROR_BODY)];
        let expected = std::str::from_utf8(start).expect("ASCII").trim();
        assert_eq!(body, expected, "the error's body; answer {}", shown());
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let (gw, addr) = gateway();
    let (bytes, built) = match &input.answer {
        Answer::Raw(raw) => (raw.clone(), None),
        Answer::Built(b) => {
            let (bytes, clean) = build(b);
            (bytes, clean.then_some(b))
        }
    };
    let timeout = if built.is_some() { LONG } else { SHORT };
    let shown = || format!("{:?} ({:?})", String::from_utf8_lossy(&bytes), input);

    *lock(&gw.answer) = Some((bytes.clone(), input.close));
    let pusher = Pushgateway::new(&format!("http://{addr}"), "fuzz")
        .expect("a valid URL and job")
        .with_timeout(timeout);
    let started = Instant::now();
    let first = pusher.push(registry());
    check_any(&first, started.elapsed(), timeout, &shown);
    if let Some(b) = built {
        check_clean(&first, b, &shown);
    }
    lock(&gw.answer).take();

    let second = Pushgateway::new(&format!("http://{addr}"), "fuzz")
        .expect("a valid URL and job")
        .with_timeout(SLACK)
        .push(registry());
    assert_eq!(
        second,
        Ok(()),
        "a push to a well-behaved gateway after this answer; the answer was {}",
        shown()
    );

    for conn in lock(&gw.open).drain(..) {
        let _ = conn.shutdown(Shutdown::Both);
    }
});
