//! One HTTP/1.1 request to a Pushgateway over `std::net::TcpStream`, blocking, bounded by a
//! deadline.
//!
//! One connection per request (`Connection: close`): a push every few seconds does not need
//! keep-alive, and a fresh connection never meets one the gateway closed while idle. Every
//! socket call waits at most 50 ms before the deadline (and the pusher's shutdown cut) is
//! looked at again. The response is read up to 64 KiB (a Pushgateway answers with a few
//! bytes, or an error message); only its status and the start of its body are kept.
//!
//! Only the URL parsing (`net::url`) is shared with `export::otlp`'s transport, which is built
//! around what OTLP needs (keep-alive reuse and retry of a stale connection, gzip,
//! `Retry-After`, 4 MiB bodies) and lives behind the `otlp` feature.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use super::PushError;
use crate::net::url::UrlError;

/// The longest a blocking socket call waits before the deadline is looked at again.
const SLICE: Duration = Duration::from_millis(50);
/// The most of a response the client reads.
const MAX_RESPONSE: usize = 64 << 10;
/// The most of a response body an error message carries.
const MAX_ERROR_BODY: usize = 512;

/// A parsed `http://host[:port][/prefix]` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Endpoint {
    host: String,
    port: u16,
    /// The `Host` header value.
    authority: String,
    /// The path prefix (may be empty); `/metrics/job/...` is appended to it.
    pub(super) prefix: String,
}

impl Endpoint {
    /// Parses the gateway URL (`net::url`, which says what it refuses); a query is refused
    /// too: the grouping key's path is appended to the prefix.
    pub(super) fn parse(url: &str) -> Result<Endpoint, String> {
        let parsed = crate::net::url::parse(url).map_err(|e| match e {
            UrlError::NotHttp => format!("{url:?} is not an http:// URL"),
            UrlError::Https => "https:// needs TLS, which this crate does not include".into(),
            e => e.to_string(),
        })?;
        if parsed.query.is_some() {
            return Err("must not contain a query".into());
        }
        Ok(Endpoint {
            host: parsed.host.into(),
            port: parsed.port,
            authority: parsed.authority.into(),
            prefix: parsed.path.into(),
        })
    }
}

/// What to send.
pub(super) struct Request<'a> {
    pub(super) method: &'static str,
    pub(super) path: &'a str,
    pub(super) content_type: &'a str,
    pub(super) body: &'a [u8],
}

/// Buffers a request reuses (the pusher keeps one across pushes).
#[derive(Debug, Default)]
pub(super) struct Scratch {
    head: Vec<u8>,
    response: Vec<u8>,
    body_start: usize,
}

impl Scratch {
    /// The start of the last response's body, printable.
    pub(super) fn body_text(&self) -> String {
        let body = self.response.get(self.body_start..).unwrap_or_default();
        let body = &body[..body.len().min(MAX_ERROR_BODY)];
        String::from_utf8_lossy(body)
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect::<String>()
            .trim()
            .to_string()
    }
}

/// Sends `request` and returns the response status, by `deadline` or until `cut()` is true.
pub(super) fn send(
    endpoint: &Endpoint,
    request: &Request<'_>,
    deadline: Instant,
    cut: &dyn Fn() -> bool,
    scratch: &mut Scratch,
) -> Result<u16, PushError> {
    scratch.head.clear();
    scratch.response.clear();
    scratch.body_start = 0;
    let _ = write!(
        scratch.head,
        "{} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: agentcore-telemetry/{}\r\n",
        request.method,
        request.path,
        endpoint.authority,
        env!("CARGO_PKG_VERSION")
    );
    if !request.body.is_empty() {
        let _ = write!(scratch.head, "Content-Type: {}\r\n", request.content_type);
    }
    let _ = write!(
        scratch.head,
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        request.body.len()
    );
    let left = || -> Result<Duration, PushError> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || cut() {
            Err(PushError::Timeout)
        } else {
            Ok(left)
        }
    };
    let mut conn = connect(endpoint, &left)?;
    let result = exchange(&mut conn, request, &left, scratch);
    let _ = conn.shutdown(Shutdown::Both);
    result
}

fn connect(
    endpoint: &Endpoint,
    left: &dyn Fn() -> Result<Duration, PushError>,
) -> Result<TcpStream, PushError> {
    // Name resolution blocks without a timeout (getaddrinfo); it is instant for IP literals
    // and `localhost`.
    let addrs = (endpoint.host.as_str(), endpoint.port)
        .to_socket_addrs()
        .map_err(|e| PushError::Io(format!("resolving {}: {e}", endpoint.host)))?;
    let mut last = PushError::Io(format!("{} has no address", endpoint.host));
    for addr in addrs {
        // Connect in slices too, so that a shutdown cut is noticed while a SYN goes unanswered.
        loop {
            let slice = left()?.min(SLICE * 4);
            match TcpStream::connect_timeout(&addr, slice) {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    return Ok(s);
                }
                Err(e) if e.kind() == io::ErrorKind::TimedOut => continue,
                Err(e) => {
                    last = PushError::Io(format!("connecting to {addr}: {e}"));
                    break;
                }
            }
        }
    }
    Err(last)
}

fn exchange(
    conn: &mut TcpStream,
    request: &Request<'_>,
    left: &dyn Fn() -> Result<Duration, PushError>,
    scratch: &mut Scratch,
) -> Result<u16, PushError> {
    for part in [&scratch.head[..], request.body] {
        let mut at = 0;
        while at < part.len() {
            conn.set_write_timeout(Some(left()?.min(SLICE)))
                .map_err(io_error)?;
            match conn.write(&part[at..]) {
                Ok(0) => return Err(PushError::Io("connection closed while sending".into())),
                Ok(n) => at += n,
                Err(e) if is_retry(&e) => {}
                Err(e) => return Err(io_error(e)),
            }
        }
    }
    // Read to the end (the gateway closes: `Connection: close`) or to the cap, then parse.
    let mut chunk = [0u8; 4096];
    loop {
        conn.set_read_timeout(Some(left()?.min(SLICE)))
            .map_err(io_error)?;
        match conn.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                let room = MAX_RESPONSE - scratch.response.len();
                scratch.response.extend_from_slice(&chunk[..n.min(room)]);
                if scratch.response.len() >= MAX_RESPONSE || complete(&scratch.response) {
                    break;
                }
            }
            Err(e) if is_retry(&e) => {}
            Err(e) => {
                // A reset after a complete response is still a response.
                if complete(&scratch.response) {
                    break;
                }
                return Err(io_error(e));
            }
        }
    }
    let head_end = find(&scratch.response, b"\r\n\r\n")
        .ok_or_else(|| PushError::InvalidResponse("no complete response head".into()))?;
    scratch.body_start = head_end + 4;
    let status_line = scratch.response[..head_end]
        .split(|&b| b == b'\n')
        .next()
        .unwrap_or_default();
    let status_line = String::from_utf8_lossy(status_line);
    let mut parts = status_line.split_whitespace();
    let version = parts.next().unwrap_or("");
    let status = parts.next().and_then(|s| s.parse::<u16>().ok());
    match status {
        Some(s) if version.starts_with("HTTP/1.") && (100..600).contains(&s) => Ok(s),
        _ => Err(PushError::InvalidResponse(format!(
            "bad status line {:?}",
            status_line.chars().take(80).collect::<String>()
        ))),
    }
}

/// Whether `response` holds a head and, when it declares a `Content-Length`, that many body
/// bytes (so a gateway that keeps the connection open anyway is not waited for).
fn complete(response: &[u8]) -> bool {
    let Some(end) = find(response, b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&response[..end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    length.is_some_and(|n| response.len() >= end + 4 + n)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn is_retry(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

fn io_error(e: io::Error) -> PushError {
    PushError::Io(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_bad_ones_are_refused() {
        let e = Endpoint::parse("http://127.0.0.1:9091").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.prefix.as_str()),
            ("127.0.0.1", 9091, "")
        );
        let e = Endpoint::parse("HTTP://[::1]:9091/gw/").unwrap();
        assert_eq!(
            (e.host.as_str(), e.authority.as_str(), e.prefix.as_str()),
            ("::1", "[::1]:9091", "/gw/")
        );
        assert_eq!(Endpoint::parse("http://gw").unwrap().port, 80);
        for bad in [
            "https://gw",
            "ftp://gw",
            "gw:9091",
            "http://",
            "http://:9091",
            "http://gw:0",
            "http://gw:99999",
            "http://u@gw",
            "http://gw/a b",
            "http://gw/?q",
            "http://gw/#f",
            "http://[::1",
            "http://gw\n",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn completeness_follows_content_length() {
        assert!(!complete(b"HTTP/1.1 200 OK\r\n"));
        assert!(
            !complete(b"HTTP/1.1 200 OK\r\n\r\n"),
            "no length: read to the end"
        );
        assert!(complete(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
        assert!(!complete(b"HTTP/1.1 400 X\r\nContent-Length: 3\r\n\r\nab"));
        assert!(complete(b"HTTP/1.1 400 X\r\ncontent-length: 3\r\n\r\nabc"));
    }
}
