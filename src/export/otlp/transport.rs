//! HTTP/1.1 over `std::net::TcpStream`: just what OTLP/HTTP needs, blocking, with every
//! step bounded by the export's [`Deadline`].
//!
//! * One connection, kept alive between exports; a request that fails on a reused
//!   connection before any byte of the answer (the collector closed it while idle) is sent
//!   once more on a fresh one at once.
//! * Every read and write waits at most 50 ms before looking at the deadline again, so a
//!   deadline brought forward by a shutdown is noticed promptly. So does the wait for the
//!   connection: name resolution, which has no timeout of its own (a silent DNS server holds
//!   it for seconds), and the handshake run on a thread of their own (`net::connect`), left
//!   to end on its own when the deadline or a shutdown comes first.
//! * Response bodies are read up to [`MAX_RESPONSE_BODY`] (4 MiB, the OTLP limit); a longer
//!   one is an error, never buffered. Headers are capped at 64 KiB.
//! * `Content-Length`, `Transfer-Encoding: chunked` and close-delimited bodies; `1xx`
//!   interim responses skipped; `Connection: close` honoured.
//! * Once a response's head is read, its status is the answer: a body that ends early
//!   (closed, reset, or past the deadline) leaves the status with an empty body and a note
//!   (`Response::body_note`), and the connection is not reused. Only no response at all is
//!   a broken connection (which the exporter retries).

use std::borrow::Cow;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant, SystemTime};

use super::http_date::parse_retry_after;
use crate::export::exporter::Deadline;
use crate::net::connect::{ConnectError, MAX_THREADS};
use crate::net::url::UrlError;

/// The most response body the client reads (OTLP: clients MUST limit it to 4 MiB).
pub(crate) const MAX_RESPONSE_BODY: usize = 4 << 20;
const MAX_HEAD: usize = 64 << 10;
/// The longest a blocking socket call waits before the deadline is looked at again.
const SLICE: Duration = Duration::from_millis(50);

/// A parsed `http://` URL: where to connect and what to send in the request line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// Host to resolve (IPv6 without brackets).
    pub(crate) host: String,
    pub(crate) port: u16,
    /// The `Host` header value (`host[:port]`, brackets kept for IPv6, without a zone:
    /// `net::url`'s `host_header`).
    pub(crate) authority: String,
    /// Path and query, starting with `/`.
    pub(crate) target: String,
}

impl Endpoint {
    /// Parses an `http://host[:port][/path][?query]` URL (`net::url`, which says what it
    /// refuses: `https://`, this build having no TLS, user info, fragments, anything that is not
    /// a URL). The request target is the path (`/` when empty) and the query.
    pub(crate) fn parse(url: &str) -> Result<Endpoint, String> {
        let parsed = crate::net::url::parse(url).map_err(|e| match e {
            UrlError::Https => "https:// needs TLS, which this build does not include; \
                                send to a local collector or agent over http:// \
                                (for example an OpenTelemetry Collector on http://localhost:4318)"
                .into(),
            e => e.to_string(),
        })?;
        let path = if parsed.path.is_empty() {
            "/"
        } else {
            parsed.path
        };
        let target = match parsed.query {
            Some(query) => format!("{path}?{query}"),
            None => path.to_owned(),
        };
        Ok(Endpoint {
            // An IPv6 zone (`[fe80::1%25eth0]`) as the resolver takes it (`net::url`).
            host: parsed.resolver_host(),
            port: parsed.port,
            authority: parsed.host_header(),
            target,
        })
    }
}

/// Why a request got no usable response.
#[derive(Debug)]
pub(crate) enum SendError {
    /// No connection could be made.
    Connect(io::Error),
    /// The connection broke (reset, closed) before the whole response arrived.
    Broken(io::Error),
    /// The deadline passed.
    Timeout,
    /// The response was malformed or over the limits.
    Invalid(String),
}

/// A response: status, `Retry-After` and the body (in the client's buffer).
#[derive(Debug)]
pub(crate) struct Response<'a> {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) body: &'a [u8],
    /// Why `body` is empty although the server sent one: it did not decompress, or it was cut
    /// short (see [`HttpClient::post`]). The status still stands.
    pub(crate) body_note: Option<&'a str>,
}

/// The HTTP client of one exporter.
pub(crate) struct HttpClient {
    endpoint: Endpoint,
    /// Static header lines (`Host`, `User-Agent`, `Content-Type`, custom ones).
    headers: Vec<u8>,
    conn: Option<TcpStream>,
    head: Vec<u8>,
    buf: Vec<u8>,
    body: Vec<u8>,
    body_note: Option<String>,
    /// Connection attempts refused at the connection-thread cap since the last
    /// [`take_thread_cap_hits`](Self::take_thread_cap_hits).
    thread_cap_hits: u64,
}

struct Parsed {
    status: u16,
    retry_after: Option<Duration>,
    content_length: Option<usize>,
    chunked: bool,
    close: bool,
    gzip: bool,
    head_len: usize,
}

impl HttpClient {
    pub(crate) fn new(
        endpoint: Endpoint,
        content_type: &str,
        user_agent: &str,
        headers: &[(String, String)],
    ) -> Self {
        // One `User-Agent` line (RFC 9110 §5.3: it is not a list field, so it must not be
        // sent twice): a user's product tokens first, then the exporter's own, which the OTLP
        // specification asks every exporter to send.
        let is_ua = |k: &str| k.eq_ignore_ascii_case("user-agent");
        let mut ua = String::new();
        for (_, v) in headers.iter().filter(|(k, _)| is_ua(k)) {
            ua.push_str(v.trim());
            ua.push(' ');
        }
        ua.push_str(user_agent);
        let mut h = Vec::new();
        let _ = write!(
            h,
            "Host: {}\r\nUser-Agent: {ua}\r\nContent-Type: {content_type}\r\n",
            endpoint.authority
        );
        for (k, v) in headers.iter().filter(|(k, _)| !is_ua(k)) {
            let _ = write!(h, "{k}: {v}\r\n");
        }
        HttpClient {
            endpoint,
            headers: h,
            conn: None,
            head: Vec::new(),
            buf: Vec::new(),
            body: Vec::new(),
            body_note: None,
            thread_cap_hits: 0,
        }
    }

    /// How many connection attempts found [`MAX_THREADS`] connection threads given up on alive (and
    /// started none) since the last call.
    pub(crate) fn take_thread_cap_hits(&mut self) -> u64 {
        std::mem::take(&mut self.thread_cap_hits)
    }

    /// Drops the kept-alive connection.
    pub(crate) fn close(&mut self) {
        if let Some(c) = self.conn.take() {
            let _ = c.shutdown(Shutdown::Both);
        }
    }

    /// POSTs `body` and reads the response, by `deadline`.
    ///
    /// A response whose body cannot be used (a gzip body that does not decompress, or one
    /// cut short after the server refused the request early) is still a response: its status
    /// is returned with an empty body and [`Response::body_note`] saying why.
    pub(crate) fn post(
        &mut self,
        body: &[u8],
        gzip: bool,
        deadline: &Deadline,
    ) -> Result<Response<'_>, SendError> {
        self.head.clear();
        let _ = write!(self.head, "POST {} HTTP/1.1\r\n", self.endpoint.target);
        self.head.extend_from_slice(&self.headers);
        if gzip {
            self.head.extend_from_slice(b"Content-Encoding: gzip\r\n");
        }
        let _ = write!(self.head, "Content-Length: {}\r\n\r\n", body.len());
        // A kept-alive connection the collector closed, or left something unasked on, is
        // dropped first (see `connect`), so that `reused` means "sent on a connection that
        // looked idle and open": only then is a break with nothing read the idle close the
        // one fresh retry below is for (a break on a fresh connection is an answer).
        if self.conn.as_ref().is_some_and(|c| !idle_and_open(c)) {
            self.close();
        }
        let reused = self.conn.is_some();
        let parsed = match self.exchange(body, deadline) {
            Err(SendError::Broken(_)) if reused && self.buf.is_empty() => {
                // The idle connection was closed by the collector: once more, fresh.
                self.close();
                self.exchange(body, deadline)
            }
            other => other,
        };
        let parsed = match parsed {
            Ok(p) => p,
            Err(e) => {
                self.close();
                return Err(e);
            }
        };
        if parsed.close {
            self.close();
        }
        Ok(Response {
            status: parsed.status,
            retry_after: parsed.retry_after,
            body: &self.body,
            body_note: self.body_note.as_deref(),
        })
    }

    fn connect(&mut self, deadline: &Deadline) -> Result<(), SendError> {
        if let Some(conn) = &self.conn {
            if idle_and_open(conn) {
                return Ok(());
            }
            // The collector closed it, or sent something unasked (a `408` some proxies send
            // on an idle connection before closing it): that is no answer to the request
            // about to be sent, and must never be read as one. A fresh connection instead.
            self.close();
        }
        // Name resolution (getaddrinfo, no timeout of its own) and the handshake on a thread
        // of their own (`net::connect`), waited for 50 ms at a time: the deadline is kept, and
        // a shutdown's cut (read by `remaining`) noticed within a slice, whatever the DNS
        // server and the collector do.
        let remaining = || deadline.remaining();
        let conn = crate::net::connect::connect(
            &self.endpoint.host,
            self.endpoint.port,
            deadline.instant(),
            &remaining,
            "agentcore-otlp-connect",
        )
        .map_err(|e| match e {
            ConnectError::Timeout => SendError::Timeout,
            ConnectError::Resolve(e) | ConnectError::Spawn(e) => SendError::Connect(e),
            ConnectError::Connect { error, .. } => SendError::Connect(error),
            ConnectError::NoAddress => SendError::Connect(io::Error::new(
                io::ErrorKind::NotFound,
                "the host has no address",
            )),
            ConnectError::Lost => SendError::Connect(io::Error::other(
                "the connection thread ended without a result",
            )),
            ConnectError::TooManyThreads => {
                // A failed attempt like any other (retried, then the spans count as failed
                // with `connection`), and counted on its own: the cap, not the collector.
                self.thread_cap_hits += 1;
                SendError::Connect(io::Error::other(format!(
                    "{MAX_THREADS} connection attempts given up on earlier are still running (a resolver or network that does not answer); none started"
                )))
            }
        })?;
        self.conn = Some(conn);
        Ok(())
    }

    /// Sends the request and reads one final response into `self.body`.
    fn exchange(&mut self, body: &[u8], deadline: &Deadline) -> Result<Parsed, SendError> {
        self.buf.clear();
        self.body.clear();
        self.body_note = None;
        self.connect(deadline)?;
        let conn = self.conn.as_mut().ok_or(SendError::Timeout)?;
        let mut parsed = match write_all(conn, &[&self.head, body], deadline) {
            Ok(()) => {
                let note = &mut self.body_note;
                let mut p = read_response(conn, &mut self.buf, &mut self.body, deadline, note)?;
                // A body cut short leaves the connection mid-message: never reused.
                p.close |= note.is_some();
                p
            }
            Err(SendError::Broken(write_error)) if peer_gone(&write_error) => {
                // A server may answer before it has read the whole request (a 413 from Go's
                // net/http or the OpenTelemetry Collector's `max_request_body_size`) and then
                // close; the unread body makes that close a reset, which our write sees. The
                // answer arrived before the reset (TCP keeps order), so it is in the socket's
                // receive buffer if anywhere: read it, briefly, and only when there is none
                // is this a broken connection (retried as such).
                let brief = deadline.earlier(Instant::now() + EARLY_RESPONSE_WAIT);
                let note = &mut self.body_note;
                match read_response(conn, &mut self.buf, &mut self.body, &brief, note) {
                    Ok(mut p) => {
                        p.close = true;
                        p
                    }
                    Err(_) => {
                        // No answer: as before, and "nothing read" for `post`'s fresh retry.
                        self.buf.clear();
                        self.body.clear();
                        self.body_note = None;
                        return Err(SendError::Broken(write_error));
                    }
                }
            }
            Err(e) => return Err(e),
        };
        if parsed.gzip && !self.body.is_empty() {
            let mut out = Vec::new();
            let mut dec =
                flate2::read::GzDecoder::new(&self.body[..]).take(MAX_RESPONSE_BODY as u64 + 1);
            match dec.read_to_end(&mut out) {
                Ok(_) if out.len() > MAX_RESPONSE_BODY => {
                    return Err(SendError::Invalid(
                        "response body over 4 MiB once decompressed".into(),
                    ));
                }
                Ok(_) => self.body = out,
                Err(e) => {
                    // The status is what the server decided; a body we cannot decompress
                    // does not change it (a 2xx is still an acceptance, a 503 still
                    // retryable). Say why the body is missing.
                    self.body.clear();
                    self.body_note = Some(format!("bad gzip response body: {e}"));
                }
            }
        }
        if parsed.content_length.is_none() && !parsed.chunked && !matches!(parsed.status, 204 | 304)
        {
            // A close-delimited body: the connection is done.
            parsed.close = true;
        }
        Ok(parsed)
    }
}

/// Whether a kept-alive connection is still idle and open: nothing to read and no end of
/// stream (a non-blocking peek would block).
fn idle_and_open(conn: &TcpStream) -> bool {
    if conn.set_nonblocking(true).is_err() {
        return false;
    }
    let idle = matches!(
        conn.peek(&mut [0u8; 1]),
        Err(ref e) if e.kind() == io::ErrorKind::WouldBlock
    );
    conn.set_nonblocking(false).is_ok() && idle
}

/// How long, after a write the server broke off, the client looks for an answer it may
/// already have sent (see `HttpClient::exchange`). Such an answer precedes the reset and is
/// normally already received; this only bounds the wait for one that is not there.
const EARLY_RESPONSE_WAIT: Duration = Duration::from_millis(250);

/// Whether a write error says the server closed or reset the connection (it may have
/// answered first).
fn peer_gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::WriteZero
    )
}

/// Reads one final response (interim `1xx` ones skipped): the head, then the body into
/// `body`. Once the head is read, the status is the server's answer: a body that then ends
/// early (the connection closed or reset, or the deadline passed, before its end) is not an
/// error but a response with that status, an empty body and the reason in `cut_short`. (OTLP
/// retries a server that "disconnects without returning a response", and by status
/// otherwise: a 400 cut short must not be sent again, nor a 200's accepted spans.) A body
/// that is malformed or over the limit is still an error.
fn read_response(
    conn: &mut TcpStream,
    buf: &mut Vec<u8>,
    body: &mut Vec<u8>,
    deadline: &Deadline,
    cut_short: &mut Option<String>,
) -> Result<Parsed, SendError> {
    loop {
        let parsed = read_head(conn, buf, deadline)?;
        buf.drain(..parsed.head_len);
        if (100..200).contains(&parsed.status) {
            // An interim response: drop it and read the final one.
            continue;
        }
        match read_body(conn, buf, body, &parsed, deadline) {
            Ok(()) => {}
            Err(SendError::Broken(e)) => {
                body.clear();
                *cut_short = Some(format!("the response body was cut short: {e}"));
            }
            Err(SendError::Timeout) => {
                body.clear();
                *cut_short = Some("the response body was cut short (the deadline passed)".into());
            }
            Err(e) => return Err(e),
        }
        return Ok(parsed);
    }
}

/// Sets the socket timeout for the next call: the time left, at most [`SLICE`].
fn slice(conn: &TcpStream, deadline: &Deadline, write: bool) -> Result<(), SendError> {
    let left = deadline.remaining();
    if left.is_zero() {
        return Err(SendError::Timeout);
    }
    let t = Some(left.min(SLICE).max(Duration::from_millis(1)));
    let r = if write {
        conn.set_write_timeout(t)
    } else {
        conn.set_read_timeout(t)
    };
    r.map_err(SendError::Broken)
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn write_all(conn: &mut TcpStream, parts: &[&[u8]], deadline: &Deadline) -> Result<(), SendError> {
    // `write`, not `write_vectored`: on Linux std's `write` sends with `MSG_NOSIGNAL`, while
    // `writev` raises SIGPIPE on a connection the collector closed, which kills a host that
    // keeps the default disposition (a C program embedding the crate; Rust's own `main`
    // ignores SIGPIPE). Each part goes in its own segments (the socket is `TCP_NODELAY`, so
    // the head is not held back waiting for an acknowledgement).
    for part in parts {
        let mut rest = *part;
        while !rest.is_empty() {
            slice(conn, deadline, true)?;
            match conn.write(rest) {
                Ok(0) => {
                    return Err(SendError::Broken(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "the connection closed while sending",
                    )))
                }
                Ok(n) => rest = rest.get(n..).unwrap_or_default(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted || is_timeout(&e) => {}
                Err(e) => return Err(SendError::Broken(e)),
            }
        }
    }
    Ok(())
}

/// Reads more into `buf` (at least one byte); `Ok(0)` at end of stream.
fn fill(conn: &mut TcpStream, buf: &mut Vec<u8>, deadline: &Deadline) -> Result<usize, SendError> {
    let mut chunk = [0u8; 16 << 10];
    loop {
        slice(conn, deadline, false)?;
        match conn.read(&mut chunk) {
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Ok(n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted || is_timeout(&e) => {}
            Err(e) => return Err(SendError::Broken(e)),
        }
    }
}

/// The index just past the first CRLFCRLF in `buf`, searched for from `scanned` (less three
/// bytes: one may straddle two reads) on, `scanned` then set to where the search stopped. A
/// head arriving in pieces is so looked at once, not again from its start after every read.
fn find_head_end_from(buf: &[u8], scanned: &mut usize) -> Option<usize> {
    let start = scanned.saturating_sub(3).min(buf.len());
    match buf[start..].windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => {
            *scanned = start + i + 4;
            Some(start + i + 4)
        }
        None => {
            *scanned = buf.len();
            None
        }
    }
}

fn read_head(
    conn: &mut TcpStream,
    buf: &mut Vec<u8>,
    deadline: &Deadline,
) -> Result<Parsed, SendError> {
    let mut scanned = 0;
    let head_len = loop {
        if let Some(end) = find_head_end_from(buf, &mut scanned) {
            break end;
        }
        if buf.len() > MAX_HEAD {
            return Err(SendError::Invalid("response headers over 64 KiB".into()));
        }
        if fill(conn, buf, deadline)? == 0 {
            return Err(SendError::Broken(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                if buf.is_empty() {
                    "the collector closed the connection without answering"
                } else {
                    "the connection closed in the middle of the response headers"
                },
            )));
        }
    };
    // Field values may hold obs-text (bytes 0x80 to 0xFF), which a recipient "SHOULD treat
    // as opaque data" (RFC 9110 §5.5): read lossily. The fields this client interprets are
    // ASCII, and a replacement character in one of them makes it invalid, as it should.
    parse_head_bytes(&buf[..head_len]).map_err(SendError::Invalid)
}

fn parse_head_bytes(head: &[u8]) -> Result<Parsed, String> {
    parse_head(&String::from_utf8_lossy(head), head.len())
}

/// The head's field lines, each obs-fold (a line break followed by spaces or tabs) replaced by
/// one space, as RFC 9112 §5.2 requires of a user agent ("MUST replace each received obs-fold
/// with one or more SP octets prior to interpreting the field value"). Whitespace-preceded
/// lines before the first field are consumed without further processing, which §2.2 allows
/// a recipient ("MUST either reject the message as invalid or consume each
/// whitespace-preceded line").
fn unfolded_fields<'h>(lines: impl Iterator<Item = &'h str>) -> Vec<Cow<'h, str>> {
    let mut fields: Vec<Cow<'h, str>> = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = fields.last_mut() {
                let last = last.to_mut();
                last.truncate(last.trim_end_matches([' ', '\t']).len());
                last.push(' ');
                last.push_str(line.trim_start_matches([' ', '\t']));
            }
        } else {
            fields.push(Cow::Borrowed(line));
        }
    }
    fields
}

fn parse_head(head: &str, head_len: usize) -> Result<Parsed, String> {
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1.x response: {status_line:?}"));
    }
    // `status-code = 3DIGIT` (RFC 9112 §4): not `u16::from_str` alone, which takes a sign
    // (`+200`) and any number of leading zeros (`0200`).
    let status = parts
        .next()
        .filter(|s| s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|s| (100..1000).contains(s))
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut p = Parsed {
        status,
        retry_after: None,
        content_length: None,
        chunked: false,
        close: version == "HTTP/1.0",
        gzip: false,
        head_len,
    };
    let mut transfer_encoding = false;
    // RFC 9112 §9.6: a `close` option closes the connection, whatever else the field lists;
    // `keep-alive` only makes an HTTP/1.0 connection persistent (§9.3).
    let (mut close_option, mut keep_alive) = (false, false);
    for line in unfolded_fields(lines) {
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("bad header line {line:?}"));
        };
        // RFC 9112 §5.1: whitespace between the name and the colon is not allowed, and a proxy
        // removes it before passing a response on; read the field as it would arrive so.
        let name = name.trim_end_matches([' ', '\t']);
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            // `1*DIGIT` (RFC 9110 §8.6), not `usize::from_str` alone, which takes a sign: an
            // invalid Content-Length makes the response unusable (RFC 9112 §6.3).
            let n = Some(value)
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<usize>().ok())
                .ok_or_else(|| format!("bad Content-Length {value:?}"))?;
            if p.content_length.is_some_and(|m| m != n) {
                return Err("conflicting Content-Length headers".into());
            }
            p.content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            transfer_encoding = true;
            // The field lines make one list (RFC 9110 §5.3) whose empty elements do not count
            // (§5.6.1): a line of none leaves the last coding as it was.
            if let Some(last) = value.split(',').map(str::trim).rfind(|c| !c.is_empty()) {
                p.chunked = last.eq_ignore_ascii_case("chunked");
            }
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                close_option |= token.eq_ignore_ascii_case("close");
                keep_alive |= token.eq_ignore_ascii_case("keep-alive");
            }
        } else if name.eq_ignore_ascii_case("retry-after") {
            p.retry_after = parse_retry_after(value, SystemTime::now());
        } else if name.eq_ignore_ascii_case("content-encoding") {
            p.gzip = value.eq_ignore_ascii_case("gzip") || value.eq_ignore_ascii_case("x-gzip");
        }
    }
    p.close = close_option || (p.close && !keep_alive);
    if transfer_encoding && (p.content_length.is_some() || version == "HTTP/1.0") {
        // RFC 9112 §6.3: "the Transfer-Encoding overrides the Content-Length. Such a message
        // might indicate an attempt to perform request smuggling or response splitting": the
        // body is framed by the transfer coding (chunked, or to the close), and the connection
        // is not reused. Nor is it after an HTTP/1.0 message with a Transfer-Encoding, which a
        // client "MUST treat ... as if the framing is faulty, even if a Content-Length is
        // present, and close the connection after processing the message" (§6.1).
        p.content_length = None;
        p.close = true;
    }
    Ok(p)
}

fn too_large() -> SendError {
    SendError::Invalid("response body over 4 MiB".into())
}

#[cfg(test)]
thread_local! {
    /// The bytes [`drop_front`] moved on this thread, for the test that a chunked body does
    /// not move its buffer once per chunk.
    static MOVED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Drops the first `n` bytes of `buf` (moving the rest to its start).
fn drop_front(buf: &mut Vec<u8>, n: usize) {
    if n == 0 {
        return;
    }
    #[cfg(test)]
    MOVED.with(|m| m.set(m.get() + (buf.len() - n)));
    buf.drain(..n);
}

/// Drops the `at` bytes of `buf` already parsed, then reads more (see [`fill`]).
fn refill(
    conn: &mut TcpStream,
    buf: &mut Vec<u8>,
    at: &mut usize,
    deadline: &Deadline,
) -> Result<usize, SendError> {
    drop_front(buf, std::mem::take(at));
    fill(conn, buf, deadline)
}

/// Reads the body described by `p` from `buf` (bytes already read) and the connection.
fn read_body(
    conn: &mut TcpStream,
    buf: &mut Vec<u8>,
    body: &mut Vec<u8>,
    p: &Parsed,
    deadline: &Deadline,
) -> Result<(), SendError> {
    let eof = |what: &str| {
        SendError::Broken(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("the connection closed in the middle of the {what}"),
        ))
    };
    if p.status == 204 || p.status == 304 {
        return Ok(());
    }
    if p.chunked {
        // Where the bytes not yet parsed start: those before are dropped only when more are
        // read (one move of the rest per read, not one per chunk).
        let mut at = 0;
        loop {
            let line_end = loop {
                if let Some(i) = buf[at..].windows(2).position(|w| w == b"\r\n") {
                    break at + i;
                }
                if buf.len() - at > 1024 {
                    return Err(SendError::Invalid("bad chunk header".into()));
                }
                if refill(conn, buf, &mut at, deadline)? == 0 {
                    return Err(eof("chunked body"));
                }
            };
            let size_text = std::str::from_utf8(&buf[at..line_end]).unwrap_or("");
            let size_text = size_text.split(';').next().unwrap_or("").trim();
            // Hexadecimal digits only (`chunk-size = 1*HEXDIG`): `from_str_radix` also takes a
            // sign, and a peer that frames the body differently is how responses get smuggled.
            let size = Some(size_text)
                .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_hexdigit()))
                .and_then(|t| usize::from_str_radix(t, 16).ok())
                .ok_or_else(|| SendError::Invalid(format!("bad chunk size {size_text:?}")))?;
            at = line_end + 2;
            if size == 0 {
                drop_front(buf, at);
                // Trailers (if any), then the final empty line.
                let mut scanned = 0;
                loop {
                    if buf.starts_with(b"\r\n") {
                        buf.drain(..2);
                        return Ok(());
                    }
                    if let Some(end) = find_head_end_from(buf, &mut scanned) {
                        buf.drain(..end);
                        return Ok(());
                    }
                    if buf.len() > MAX_HEAD {
                        return Err(SendError::Invalid("chunk trailers over 64 KiB".into()));
                    }
                    if fill(conn, buf, deadline)? == 0 {
                        return Err(eof("chunk trailers"));
                    }
                }
            }
            // Compared by subtraction: a hostile size near `usize::MAX` must not wrap
            // (`body.len()` never exceeds the limit, so the subtraction cannot). Past this
            // check `size` is at most 4 MiB, so `size + 2` cannot overflow either.
            if size > MAX_RESPONSE_BODY.saturating_sub(body.len()) {
                return Err(too_large());
            }
            while buf.len() - at < size + 2 {
                if refill(conn, buf, &mut at, deadline)? == 0 {
                    return Err(eof("chunked body"));
                }
            }
            if &buf[at + size..at + size + 2] != b"\r\n" {
                return Err(SendError::Invalid("chunk data not followed by CRLF".into()));
            }
            body.extend_from_slice(&buf[at..at + size]);
            at += size + 2;
        }
    }
    match p.content_length {
        Some(n) => {
            if n > MAX_RESPONSE_BODY {
                return Err(too_large());
            }
            while buf.len() < n {
                if fill(conn, buf, deadline)? == 0 {
                    return Err(eof("response body"));
                }
            }
            body.extend_from_slice(&buf[..n]);
            buf.drain(..n);
            Ok(())
        }
        None => {
            // Close-delimited.
            loop {
                if buf.len() > MAX_RESPONSE_BODY {
                    return Err(too_large());
                }
                if fill(conn, buf, deadline)? == 0 {
                    body.append(buf);
                    return Ok(());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_zone_in_its_url_form_is_resolved_as_the_zone() {
        // RFC 6874: the zone of `fe80::1%1` is `%25` then `1` in a URL; the resolver takes
        // `fe80::1%1` (`net::url`'s `resolver_host`, whose test resolves it).
        let e = Endpoint::parse("http://[fe80::1%251]:4318/v1/traces").unwrap();
        assert_eq!(e.host, "fe80::1%1");
    }

    /// RFC 6874 §4: "An HTTP client, proxy, or other intermediary MUST remove any ZoneID
    /// attached to an outgoing URI, as it has only local significance at the sending host"
    /// (and RFC 9844, which obsoletes it, keeps zones out of URIs sent on the wire). The
    /// `Host` header used to carry the URL's `%25` and zone.
    #[test]
    fn the_host_header_carries_no_ipv6_zone() {
        for (url, host) in [
            ("http://[fe80::1%251]:4318/v1/traces", "[fe80::1]:4318"),
            ("http://[fe80::1%25eth0]/v1/traces", "[fe80::1]"),
            ("http://[::1]:4318/v1/traces", "[::1]:4318"),
            ("http://a%25b:4318/v1/traces", "a%25b:4318"),
        ] {
            let e = Endpoint::parse(url).unwrap();
            assert_eq!(e.authority, host, "{url}");
            let c = HttpClient::new(e, "application/x-protobuf", "exp/1", &[]);
            let head = String::from_utf8(c.headers.clone()).unwrap();
            assert!(head.starts_with(&format!("Host: {host}\r\n")), "{head:?}");
        }
    }

    #[test]
    fn endpoints_parse_and_bad_ones_are_refused() {
        let e = Endpoint::parse("http://localhost:4318/v1/traces").unwrap();
        assert_eq!(
            (
                e.host.as_str(),
                e.port,
                e.authority.as_str(),
                e.target.as_str()
            ),
            ("localhost", 4318, "localhost:4318", "/v1/traces")
        );
        let e = Endpoint::parse("HTTP://[::1]:9/x?y=1").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.target.as_str()),
            ("::1", 9, "/x?y=1")
        );
        let e = Endpoint::parse("http://collector").unwrap();
        assert_eq!((e.port, e.target.as_str()), (80, "/"));
        let e = Endpoint::parse("http://h:1?q").unwrap();
        assert_eq!(e.target, "/?q");
        for bad in [
            "https://h/v1/traces",
            "ftp://h",
            "h:4318",
            "http://",
            "http://:80/",
            "http://h:0/",
            "http://h:99999/",
            "http://h:x/",
            "http://u@h/",
            "http://h/a b",
            "http://h/#f",
            "http://[::1/",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
        assert!(Endpoint::parse("https://h").unwrap_err().contains("TLS"));
    }

    #[test]
    fn response_heads_parse() {
        let p = parse_head(
            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 2\r\nContent-Length: 5\r\nConnection: close\r\n\r\n",
            10,
        )
        .unwrap();
        assert_eq!((p.status, p.content_length, p.close), (503, Some(5), true));
        assert_eq!(p.retry_after, Some(Duration::from_secs(2)));
        let p = parse_head(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            1,
        )
        .unwrap();
        assert!(p.chunked && !p.close);
        assert!(parse_head("HTTP/1.0 200 OK\r\n\r\n", 1).unwrap().close);
        assert!(parse_head("SSH-2.0-OpenSSH\r\n\r\n", 1).is_err());
        assert!(parse_head("HTTP/1.1 abc\r\n\r\n", 1).is_err());
        assert!(parse_head(
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            1
        )
        .is_err());
        assert!(parse_head("HTTP/1.1 200 OK\r\nbroken\r\n\r\n", 1).is_err());
    }

    /// RFC 9112: `status-code = 3DIGIT` (§4) and `Content-Length = 1*DIGIT` (RFC 9110 §8.6),
    /// and a response whose Content-Length is invalid must be discarded with its connection
    /// (RFC 9112 §6.3). `str::parse` also takes a sign, and a status of more digits with
    /// leading zeros: `Content-Length: +5` framed a body, `HTTP/1.1 +200` and `0200` were
    /// read as a 200 (a peer that frames differently is how responses get smuggled).
    #[test]
    fn status_code_and_content_length_are_plain_digits() {
        for head in [
            "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: +0\r\n\r\n",
            "HTTP/1.1 +200 OK\r\n\r\n",
            "HTTP/1.1 0200 OK\r\n\r\n",
            "HTTP/1.1 +503 Unavailable\r\nRetry-After: 1\r\n\r\n",
            "HTTP/1.1 20 OK\r\n\r\n",
            "HTTP/1.1 099 X\r\n\r\n",
        ] {
            assert!(parse_head(head, 1).is_err(), "{head:?}");
        }
        let p = parse_head("HTTP/1.1 200 OK\r\nContent-Length: 05\r\n\r\n", 1).unwrap();
        assert_eq!((p.status, p.content_length), (200, Some(5)));
        assert_eq!(parse_head("HTTP/1.1 999 X\r\n\r\n", 1).unwrap().status, 999);
    }

    /// obs-text in a field value is opaque data (RFC 9110 §5.5), and an obs-fold is read as a
    /// space (RFC 9112 §5.2). Both used to make a valid response invalid: a 200 counted as
    /// failed, a 503 not retried ("response headers are not UTF-8", "bad header line").
    #[test]
    fn obs_text_and_obs_fold_are_read() {
        let p = parse_head_bytes(
            b"HTTP/1.1 503 Unavailable\r\nServer: caf\xe9\r\nRetry-After: 3\r\n\r\n",
        )
        .unwrap();
        assert_eq!(
            (p.status, p.retry_after),
            (503, Some(Duration::from_secs(3)))
        );
        let p = parse_head_bytes(b"HTTP/1.1 200 \xffK\r\nContent-Length: 0\r\n\r\n").unwrap();
        assert_eq!((p.status, p.content_length), (200, Some(0)));
        let p = parse_head_bytes(
            b"HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\nConnection:\r\n\t close\r\n\r\n",
        )
        .unwrap();
        assert!(p.close, "a folded Connection: close is read");
        let p =
            parse_head_bytes(b"HTTP/1.1 200 OK\r\n leading\r\nContent-Length: 4\r\n\r\n").unwrap();
        assert_eq!(
            p.content_length,
            Some(4),
            "a whitespace line before the first field is consumed"
        );
        // The fields this client reads must still be valid: a non-ASCII Content-Length is not.
        assert!(parse_head_bytes(b"HTTP/1.1 200 OK\r\nContent-Length: 1\xb2\r\n\r\n").is_err());
        // Transfer-Encoding overrides Content-Length (RFC 9112 §6.3), and the connection that
        // carried both is not reused; a coding other than chunked last reads to the close. Both
        // used to be framed by the Content-Length on a kept-alive connection.
        for head in [
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: \xffchunked\r\nContent-Length: 3\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: gzip\r\n\r\n",
        ] {
            let p = parse_head_bytes(head).unwrap();
            assert_eq!((p.content_length, p.chunked, p.close), (None, false, true));
        }
        let p = parse_head_bytes(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
        .unwrap();
        assert_eq!((p.content_length, p.chunked, p.close), (None, true, true));
        assert_eq!(
            unfolded_fields(["A: x  ", "\t y", "B: z"].into_iter()),
            ["A: x y", "B: z"]
        );
    }

    /// RFC 9112 §5.1: no whitespace is allowed between a field name and its colon; a proxy
    /// "MUST remove any such whitespace from a response message before forwarding", and a
    /// client reads the field as the proxy would pass it on. `Content-Length : 3` was no
    /// length at all (the body read to the close), `Connection : close` no close.
    #[test]
    fn whitespace_before_a_fields_colon_is_removed() {
        let p = parse_head(
            "HTTP/1.1 200 OK\r\nContent-Length : 3\r\nConnection\t: close\r\n\r\n",
            1,
        )
        .unwrap();
        assert_eq!((p.content_length, p.close), (Some(3), true));
        let p = parse_head("HTTP/1.1 200 OK\r\nTransfer-Encoding  : chunked\r\n\r\n", 1).unwrap();
        assert!(p.chunked);
        assert!(parse_head("HTTP/1.1 200 OK\r\nContent-Length : x\r\n\r\n", 1).is_err());
    }

    /// RFC 9110 §5.6.1: a recipient parses and ignores empty list elements, and several
    /// `Transfer-Encoding` field lines are one list (§5.3). `chunked,` was read as a final
    /// coding of nothing (the chunked body then read as if to the close, framing and all),
    /// and an empty field line after `chunked` undid it.
    #[test]
    fn empty_transfer_coding_list_elements_are_ignored() {
        for head in [
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked,\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked , ,\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding:\r\n\r\n",
        ] {
            assert!(parse_head(head, 1).unwrap().chunked, "{head:?}");
        }
        let p = parse_head(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n",
            1,
        )
        .unwrap();
        // Read to the close (`HttpClient::exchange` then closes the connection).
        assert!(!p.chunked && p.content_length.is_none());
    }

    /// A body of many small chunks, read from a real socket: every chunk's data is kept, and
    /// the bytes read are moved in the buffer a bounded number of times. The rest of the buffer
    /// (up to a 16 KiB read) was moved once per chunk: a body of one-byte chunks moved
    /// thousands of times what it carried.
    #[test]
    fn many_small_chunks_are_not_moved_once_each() {
        const CHUNKS: usize = 20_000;
        let mut reply = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for i in 0..CHUNKS {
            reply.extend_from_slice(b"1\r\n");
            reply.push(b'a' + (i % 26) as u8);
            reply.extend_from_slice(b"\r\n");
        }
        reply.extend_from_slice(b"0\r\n\r\n");
        let wire = reply.len();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let peer = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            // The request: its head, then its 4-byte body.
            while find_head_end_from(&got, &mut 0).is_none_or(|end| got.len() < end + 4) {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let _ = conn.write_all(&reply);
            let _ = conn.shutdown(Shutdown::Write);
            while matches!(conn.read(&mut buf), Ok(1..)) {}
        });
        let endpoint = Endpoint::parse(&format!("http://{addr}/v1/traces")).unwrap();
        let mut client = HttpClient::new(endpoint, "application/x-protobuf", "test", &[]);
        // Connected here, not by `net::connect`'s threads, whose cap other tests fill on
        // purpose.
        client.conn = Some(TcpStream::connect(addr).unwrap());
        MOVED.with(|m| m.set(0));
        let deadline = Deadline::after(Duration::from_secs(30));
        let response = client.post(b"body", false, &deadline).unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.body.len(), CHUNKS);
        assert!(response
            .body
            .iter()
            .enumerate()
            .all(|(i, &b)| b == b'a' + (i % 26) as u8));
        let moved = MOVED.with(std::cell::Cell::get);
        assert!(moved <= 2 * wire, "{moved} bytes moved for {wire} read");
        client.close();
        peer.join().unwrap();
    }

    /// A head's end is searched for from where the last search stopped, less three bytes (a
    /// CRLFCRLF straddling two reads): it was searched from the start after every read.
    #[test]
    fn a_head_end_straddling_reads_is_found_resuming() {
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nnext";
        for cut in 0..head.len() {
            let mut scanned = 0;
            let first = find_head_end_from(&head[..cut], &mut scanned);
            assert!(scanned <= cut);
            let end = first.or_else(|| find_head_end_from(head, &mut scanned));
            assert_eq!(end, Some(head.len() - 4), "cut at {cut}");
        }
    }

    /// RFC 9112 §9.6: "A client that receives a "close" connection option MUST cease sending
    /// requests on that connection and close the connection after reading the response
    /// message containing the "close" connection option". A `keep-alive` option beside it, in
    /// the same field or another, used to undo it when it came later, and the next request
    /// went out on a connection the collector had said it would close.
    #[test]
    fn a_close_option_is_not_undone_by_a_keep_alive_beside_it() {
        for head in [
            "HTTP/1.1 200 OK\r\nConnection: close, keep-alive\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nConnection: close\r\nConnection: Keep-Alive\r\n\r\n",
            "HTTP/1.0 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n",
        ] {
            assert!(parse_head(head, 1).unwrap().close, "{head:?}");
        }
        // Without a close option: HTTP/1.1 persists; HTTP/1.0 only with keep-alive (§9.3).
        for (head, close) in [
            ("HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\n", false),
            ("HTTP/1.1 200 OK\r\nConnection: x-other\r\n\r\n", false),
            ("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n\r\n", false),
            ("HTTP/1.0 200 OK\r\n\r\n", true),
        ] {
            assert_eq!(parse_head(head, 1).unwrap().close, close, "{head:?}");
        }
    }

    /// RFC 9112 §6.1: "A server or client that receives an HTTP/1.0 message containing a
    /// Transfer-Encoding header field MUST treat the message as if the framing is faulty, even
    /// if a Content-Length is present, and close the connection after processing the message."
    /// Without a Content-Length, an HTTP/1.0 `Connection: keep-alive` response framed by
    /// `Transfer-Encoding: chunked` kept its connection for the next request.
    #[test]
    fn an_http_1_0_response_with_a_transfer_encoding_closes_its_connection() {
        for head in [
            "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n",
            "HTTP/1.0 503 X\r\nConnection: keep-alive\r\nTransfer-Encoding: gzip\r\n\r\n",
        ] {
            assert!(parse_head(head, 1).unwrap().close, "{head:?}");
        }
        // HTTP/1.1 chunked, and HTTP/1.0 keep-alive with a Content-Length: kept alive.
        let p = parse_head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 1).unwrap();
        assert!(p.chunked && !p.close);
        let head = "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n";
        assert!(!parse_head(head, 1).unwrap().close);
    }

    /// A user's `User-Agent` joins the exporter's on one line (RFC 9110 §5.3 forbids two);
    /// it used to be sent as a second `User-Agent` line.
    #[test]
    fn one_user_agent_line() {
        let endpoint = Endpoint::parse("http://c:4318/v1/traces").unwrap();
        let headers = [
            ("user-Agent".to_string(), "my-app/1.0".to_string()),
            ("x-k".to_string(), "v".to_string()),
        ];
        let c = HttpClient::new(endpoint, "application/x-protobuf", "exp/1 (Rust)", &headers);
        let head = String::from_utf8(c.headers.clone()).unwrap();
        assert_eq!(
            head,
            "Host: c:4318\r\nUser-Agent: my-app/1.0 exp/1 (Rust)\r\n\
             Content-Type: application/x-protobuf\r\nx-k: v\r\n"
        );
    }
}
