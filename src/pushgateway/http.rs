//! One HTTP/1.1 request to a Pushgateway over `std::net::TcpStream`, blocking, bounded by a
//! deadline.
//!
//! One connection per request (`Connection: close`): a push every few seconds does not need
//! keep-alive, and a fresh connection never meets one the gateway closed while idle. Every
//! socket call waits at most 50 ms before the deadline (and the pusher's shutdown cut) is
//! looked at again. Name resolution and the connection, which block for as long as they
//! take (a silent DNS server, a far gateway), run on a thread of their own with all the time
//! left, which the caller waits on 50 ms at a time (`net::connect`); given up at the deadline
//! or the cut, that thread ends on its own (its connection attempts by the deadline, a
//! resolution when the resolver gives up). The response is read up to 64 KiB (a Pushgateway answers with a few
//! bytes, or an error message); only its status and the start of its body are kept, the
//! chunks' data when the body is chunked (Go's server chunks a message past 2 KiB).
//! Interim (1xx) responses before the final one are read and skipped (RFC 9110 §15.2), at
//! most 16 of them; a `101 Switching Protocols`, never asked for, is an error. The final
//! response ends where its framing says (RFC 9112 §6.3): a 204 or 304 with its head, a chunked
//! body with its last chunk and trailer section, another body at its `Content-Length` or, with
//! none, where the connection does; a gateway that keeps the connection open past that end is
//! not waited for. A response the gateway closes before that end is incomplete, an error
//! whatever its status: the connection broke ([`PushError::Io`]), as it did when the gateway
//! closes before the end of the final response's head, or without answering at all. A response
//! whose `Content-Length` is not a number or says two things (RFC 9112 §6.3: its framing is
//! invalid), whose `Transfer-Encoding` ends in a coding other than chunked beside a
//! `Content-Length` (§6.3 rule 3: ambiguous, "ought to be handled as an error") or comes in an
//! HTTP/1.0 response (§6.1: faulty framing), whose chunks do not parse (§7.1), or whose head
//! does not end within the 64 KiB read, is not one this client can take
//! ([`PushError::InvalidResponse`]). Field lines are read as §5 has a user agent read them:
//! whitespace before the colon removed, an obs-fold replaced by a space.
//! When the connection breaks while the request is going out, the response the gateway may
//! have sent before closing is read (RFC 9112 §9.5: a client sending a body looks for an error
//! response): a refusal (not 2xx) is the result, with its status and explanation; otherwise,
//! and always for a 2xx to a request not all sent, the broken connection is the error.
//!
//! Only the URL parsing (`net::url`) and the connect (`net::connect`) are shared with
//! `export::otlp`'s transport, which is built around what OTLP needs (keep-alive reuse and retry of a stale connection, gzip,
//! `Retry-After`, 4 MiB bodies) and lives behind the `otlp` feature.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use super::PushError;
use crate::net::connect::{ConnectError, MAX_THREADS};
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
    /// too: the grouping key's path is appended to the prefix. An IPv6 zone, written `%25`
    /// and the zone in a URL (RFC 6874), is resolved as `%` and the zone, the form the
    /// resolver takes; the `Host` header keeps the URL's.
    pub(super) fn parse(url: &str) -> Result<Endpoint, String> {
        let parsed = crate::net::url::parse(url).map_err(|e| match e {
            // Named without its user info and query (`net::url::redact_credentials`).
            UrlError::NotHttp => format!(
                "{:?} is not an http:// URL",
                crate::net::url::redact_credentials(url)
            ),
            UrlError::Https => "https:// needs TLS, which this crate does not include".into(),
            e => e.to_string(),
        })?;
        if parsed.query.is_some() {
            return Err("must not contain a query".into());
        }
        Ok(Endpoint {
            host: parsed.resolver_host(),
            port: parsed.port,
            authority: parsed.host_header(),
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
    /// How the last response's body is delimited: chunked, or by its `Content-Length` (what a
    /// gateway writes after it is not part of it), or not at all.
    framing: Framing,
}

impl Scratch {
    /// The start of the last response's body, printable (the chunks' data, when chunked): at
    /// most [`MAX_ERROR_BODY`] bytes, cut between characters.
    pub(super) fn body_text(&self) -> String {
        let mut body = self.response.get(self.body_start..).unwrap_or_default();
        let mut data = Vec::new();
        match self.framing {
            Framing::Empty => body = &[],
            Framing::Length(n) => body = &body[..body.len().min(n)],
            Framing::Chunked => {
                dechunk(body, &mut data);
                body = &data;
            }
            Framing::Close => {}
        }
        // Cut at most MAX_ERROR_BODY bytes in, between characters (not inside one, which
        // would come back as U+FFFD).
        let text = String::from_utf8_lossy(body);
        let mut end = text.len().min(MAX_ERROR_BODY);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text[..end]
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect::<String>()
            .trim()
            .to_string()
    }
}

/// Sends `request` and returns the response status, by `deadline`. Once `shutdown()` gives a
/// deadline (a periodic pusher's shutdown asked for its final push), a request still connecting
/// is abandoned at once, nothing sent. One the gateway has begun to receive is not: it takes
/// whatever arrives whenever it arrives, whatever this client does then (Pushgateway 1.5.1 even
/// stores a body cut short at a line's end, as sent whole), so the request goes on, by the
/// shutdown's deadline too, before the final push goes: a final push sent beside it could be
/// stored before it, and the group left with its older (or fewer) metrics.
pub(super) fn send(
    endpoint: &Endpoint,
    request: &Request<'_>,
    deadline: Instant,
    shutdown: &dyn Fn() -> Option<Instant>,
    scratch: &mut Scratch,
) -> Result<u16, PushError> {
    scratch.head.clear();
    scratch.response.clear();
    scratch.body_start = 0;
    scratch.framing = Framing::Close;
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
    let cut = || shutdown().is_some();
    let left = || -> Result<Duration, PushError> {
        let end = shutdown().map_or(deadline, |d| d.min(deadline));
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(PushError::Timeout)
        } else {
            Ok(left)
        }
    };
    let mut conn = connect(endpoint, deadline, &cut)?;
    let result = exchange(&mut conn, request, &left, scratch);
    let _ = conn.shutdown(Shutdown::Both);
    result
}

/// Resolves the gateway's name and connects (`net::connect`: on a thread of its own, while
/// this one looks at the deadline and the shutdown cut every 50 ms; on the deadline or the cut
/// that thread is left to end on its own). The errors as this client words them.
fn connect(
    endpoint: &Endpoint,
    deadline: Instant,
    cut: &dyn Fn() -> bool,
) -> Result<TcpStream, PushError> {
    let remaining = || {
        if cut() {
            Duration::ZERO
        } else {
            deadline.saturating_duration_since(Instant::now())
        }
    };
    let host = &endpoint.host;
    crate::net::connect::connect(
        host,
        endpoint.port,
        deadline,
        &remaining,
        "agentcore-pushgateway-connect",
    )
    .map_err(|e| match e {
        ConnectError::Timeout => PushError::Timeout,
        ConnectError::Resolve(e) => PushError::Io(format!("resolving {host}: {e}")),
        ConnectError::NoAddress => PushError::Io(format!("{host} has no address")),
        ConnectError::Connect { addr, error } => {
            PushError::Io(format!("connecting to {addr}: {error}"))
        }
        ConnectError::Spawn(e) => PushError::Io(format!("starting the connection thread: {e}")),
        ConnectError::TooManyThreads => PushError::Io(format!(
            "{MAX_THREADS} connection attempts given up on earlier are still running (a resolver or network that does not answer); none started"
        )),
        ConnectError::Lost => PushError::Io("the connection thread ended without a result".into()),
    })
}

fn exchange(
    conn: &mut TcpStream,
    request: &Request<'_>,
    left: &dyn Fn() -> Result<Duration, PushError>,
    scratch: &mut Scratch,
) -> Result<u16, PushError> {
    let mut reading = Reading::default();
    match write_request(conn, request, left, scratch) {
        Ok(()) => read_response(conn, left, scratch, &mut reading)?,
        Err(PushError::Timeout) => return Err(PushError::Timeout),
        Err(sending) => {
            // The connection broke while the request was going out: a server may answer
            // before it has read it all (a 404 for a wrong prefix, a 413 from a proxy, a 431
            // for a long grouping key) and close, and the answer is there to read (RFC 9112
            // §9.5). It is the result when it is a refusal; a 2xx to a request that was not
            // all sent cannot be a push taken, so then the broken connection is the error.
            let _ = read_response(conn, left, scratch, &mut reading);
            let refused = reading.last.is_some_and(|(status, _)| status >= 300);
            if !refused {
                return Err(sending);
            }
        }
    }
    let (status, body_start) = reading.last.ok_or_else(|| {
        PushError::InvalidResponse(format!(
            "no complete response head in the first {} KiB",
            MAX_RESPONSE >> 10
        ))
    })?;
    scratch.body_start = body_start;
    scratch.framing = reading.framing;
    Ok(status)
}

fn write_request(
    conn: &mut TcpStream,
    request: &Request<'_>,
    left: &dyn Fn() -> Result<Duration, PushError>,
    scratch: &Scratch,
) -> Result<(), PushError> {
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
    Ok(())
}

/// Reads to the end (the gateway closes: `Connection: close`) or to the cap, skipping interim
/// (1xx) responses as their heads arrive (RFC 9110 §15.2); `reading` holds what was parsed,
/// whatever the outcome.
fn read_response(
    conn: &mut TcpStream,
    left: &dyn Fn() -> Result<Duration, PushError>,
    scratch: &mut Scratch,
    reading: &mut Reading,
) -> Result<(), PushError> {
    let mut chunk = [0u8; 4096];
    loop {
        conn.set_read_timeout(Some(left()?.min(SLICE)))
            .map_err(io_error)?;
        match conn.read(&mut chunk) {
            Ok(0) => {
                // Closed before the end of the final response's head, or of the body its
                // framing declared: the response is incomplete (RFC 9112 §6.3, §8), whatever
                // its status says; the connection broke.
                if let Some(why) = reading.cut_short(&scratch.response) {
                    return Err(PushError::Io(why));
                }
                return Ok(());
            }
            Ok(n) => {
                let room = MAX_RESPONSE - scratch.response.len();
                scratch.response.extend_from_slice(&chunk[..n.min(room)]);
                reading.advance(&scratch.response)?;
                if scratch.response.len() >= MAX_RESPONSE || reading.complete(&scratch.response) {
                    return Ok(());
                }
            }
            Err(e) if is_retry(&e) => {}
            Err(e) => {
                // A reset after a complete response is still a response.
                if reading.complete(&scratch.response) {
                    return Ok(());
                }
                return Err(io_error(e));
            }
        }
    }
}

/// The most interim (1xx) responses read before the final one; a gateway sending more is
/// answered with an error.
const MAX_INTERIM: usize = 16;

/// How the final response's body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Framing {
    /// No body: a 204 or 304 ends with its head (rule 1).
    Empty,
    /// Chunked, the final transfer coding: to the last chunk and trailer section (rule 4).
    Chunked,
    /// `Content-Length` bytes (rule 6).
    Length(usize),
    /// To the connection's end: no length declared (rule 8), or a final transfer coding other
    /// than chunked (rule 4).
    #[default]
    Close,
}

/// Where the parse of a chunked body stands (RFC 9112 §7.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Chunks {
    /// At a chunk's size line.
    #[default]
    Size,
    /// In a chunk's data, which ends at this offset (then CRLF).
    Data(usize),
    /// Past the last chunk: in the trailer section.
    Trailers,
    /// The body ends at this offset.
    Done(usize),
}

/// How far the response read so far has been parsed. Each read is parsed from where the last
/// one stopped (a head's end straddling two reads found all the same), so a response is looked
/// at once, not again from its start after every read.
#[derive(Debug, Default)]
struct Reading {
    /// Where the response not yet known to be interim starts.
    start: usize,
    /// The interim responses skipped.
    interim: usize,
    /// The final response's status and where its body starts, once its head is in.
    last: Option<(u16, usize)>,
    /// How the final response's body is delimited, once its head is in.
    framing: Framing,
    /// A chunked body's parse: its state, and where the element in hand starts.
    chunks: Chunks,
    chunk_at: usize,
    /// Where the search in hand (a head's end, a chunk's size line, the trailer section's end)
    /// has looked up to.
    scanned: usize,
    /// The places a search looked at, for the test that they are not looked at again.
    #[cfg(test)]
    examined: usize,
}

impl Reading {
    /// Parses what `response` holds past what was parsed already: the heads (an interim
    /// response, 1xx but 101, is skipped, a final one's status and framing kept), then a
    /// chunked body's chunks. Fails on a bad status line, on `101 Switching Protocols` (no
    /// upgrade is asked for, so the connection no longer speaks HTTP), past [`MAX_INTERIM`]
    /// interim responses, on framing that is invalid (see [`framing`]) and on chunks that do
    /// not parse.
    fn advance(&mut self, response: &[u8]) -> Result<(), PushError> {
        while self.last.is_none() {
            let Some(end) = self.search(response, self.start, b"\r\n\r\n") else {
                return Ok(());
            };
            let head = &response[self.start..end];
            let next = end + 4;
            match status(head)? {
                101 => {
                    return Err(PushError::InvalidResponse(
                        "101 Switching Protocols, though no upgrade was asked for".into(),
                    ))
                }
                100..=199 if self.interim == MAX_INTERIM => {
                    return Err(PushError::InvalidResponse(format!(
                        "more than {MAX_INTERIM} interim (1xx) responses"
                    )))
                }
                100..=199 => {
                    self.interim += 1;
                    self.start = next;
                }
                s => {
                    self.framing = framing(head, s).map_err(PushError::InvalidResponse)?;
                    self.last = Some((s, next));
                    self.chunk_at = next;
                }
            }
        }
        if self.framing == Framing::Chunked {
            self.parse_chunks(response)?;
        }
        Ok(())
    }

    /// Where `needle` first is in `response` from `from` on, resuming where the last search
    /// stopped (less the bytes of a needle that may straddle two reads).
    fn search(&mut self, response: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
        let start = from.max(self.scanned.saturating_sub(needle.len() - 1));
        #[cfg(test)]
        {
            self.examined +=
                (response.len().saturating_sub(start) + 1).saturating_sub(needle.len());
        }
        match find(&response[start.min(response.len())..], needle) {
            Some(at) => {
                self.scanned = start + at + needle.len();
                Some(start + at)
            }
            None => {
                self.scanned = response.len();
                None
            }
        }
    }

    /// Parses the chunks that arrived since the last call (RFC 9112 §7.1: `chunk-size [
    /// chunk-ext ] CRLF chunk-data CRLF`, then `last-chunk trailer-section CRLF`), up to the
    /// body's end. A size line that is not one and chunk data not followed by CRLF are
    /// errors, said at once rather than waited on. A size may be anything up to `usize::MAX`
    /// (the gateway wrote it): nothing is added to it unchecked.
    fn parse_chunks(&mut self, response: &[u8]) -> Result<(), PushError> {
        loop {
            match self.chunks {
                Chunks::Done(_) => return Ok(()),
                Chunks::Size => {
                    let Some(eol) = self.search(response, self.chunk_at, b"\r\n") else {
                        return Ok(());
                    };
                    let line = &response[self.chunk_at..eol];
                    let size = chunk_size(line).ok_or_else(|| {
                        PushError::InvalidResponse(format!(
                            "bad chunk size line {:?}",
                            String::from_utf8_lossy(&line[..line.len().min(40)])
                        ))
                    })?;
                    self.chunk_at = eol + 2;
                    self.chunks = if size == 0 {
                        Chunks::Trailers
                    } else {
                        Chunks::Data(self.chunk_at.saturating_add(size))
                    };
                }
                Chunks::Data(end) => {
                    if response.len() < end.saturating_add(2) {
                        return Ok(());
                    }
                    if &response[end..end + 2] != b"\r\n" {
                        return Err(PushError::InvalidResponse(
                            "chunk data not followed by CRLF".into(),
                        ));
                    }
                    self.chunk_at = end + 2;
                    self.chunks = Chunks::Size;
                }
                Chunks::Trailers => {
                    // Field lines, then an empty line: the CRLF ending the last chunk's line
                    // and the section's end make the first CRLFCRLF from that CRLF on.
                    let Some(at) = self.search(response, self.chunk_at - 2, b"\r\n\r\n") else {
                        return Ok(());
                    };
                    self.chunks = Chunks::Done(at + 4);
                }
            }
        }
    }

    /// Whether the final response is in, by its framing (RFC 9112 §6.3): a 204 or 304 at the
    /// end of its head (it has no body whatever its fields say), a chunked body at its last
    /// chunk and trailer section, another at its `Content-Length`. So a gateway that keeps the
    /// connection open anyway is not waited for. The body read is compared with the length,
    /// never the length added to anything: a gateway may declare one up to `usize::MAX`.
    fn complete(&self, response: &[u8]) -> bool {
        let Some((_, body_start)) = self.last else {
            return false;
        };
        match self.framing {
            Framing::Empty => true,
            Framing::Chunked => matches!(self.chunks, Chunks::Done(_)),
            Framing::Length(n) => response.len() - body_start >= n,
            Framing::Close => false,
        }
    }

    /// When the response, as read when the connection closed, is short of its end, why: no
    /// final response head yet (nothing at all, or a head cut off), or a final response's body
    /// short of the end its framing declares, a chunked body without its last chunk and trailer
    /// section, or fewer bytes than its `Content-Length` (a 204 or 304 has no body).
    fn cut_short(&self, response: &[u8]) -> Option<String> {
        let Some((_, body_start)) = self.last else {
            return Some(if response.is_empty() {
                "the gateway closed the connection without answering".into()
            } else {
                format!(
                    "the connection closed in the middle of the response head ({} bytes \
                     received, no final response): the response is incomplete",
                    response.len()
                )
            });
        };
        let got = response.len() - body_start;
        match self.framing {
            Framing::Chunked if !self.complete(response) => Some(format!(
                "the connection closed after {got} body bytes, before the end of the \
                 chunked body (its last chunk): the response is incomplete"
            )),
            Framing::Length(declared) if got < declared => Some(format!(
                "the connection closed after {got} of the {declared} body bytes the response \
                 declared (Content-Length): the response is incomplete"
            )),
            _ => None,
        }
    }
}

/// The status of a response head (`HTTP/1.x NNN reason`): three digits, 100 to 599.
fn status(head: &[u8]) -> Result<u16, PushError> {
    let status_line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let status_line = String::from_utf8_lossy(status_line);
    let mut parts = status_line.split_whitespace();
    let version = parts.next().unwrap_or("");
    let status = parts
        .next()
        .filter(|s| s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse::<u16>().ok());
    match status {
        Some(s) if version.starts_with("HTTP/1.") && (100..600).contains(&s) => Ok(s),
        _ => Err(PushError::InvalidResponse(format!(
            "bad status line {:?}",
            status_line.chars().take(80).collect::<String>()
        ))),
    }
}

/// How the body of a final response with this head and status is delimited (RFC 9112 §6.3),
/// or why it cannot be told:
///
/// * a 204 or 304 has none (rule 1);
/// * an HTTP/1.0 response with a `Transfer-Encoding` has faulty framing (§6.1: a client "MUST
///   treat the message as if the framing is faulty, even if a Content-Length is present");
/// * with `chunked` the final transfer coding, the chunks (rules 3 and 4: the
///   `Transfer-Encoding` overrides any `Content-Length`);
/// * with another final transfer coding, the connection's end (rule 4), unless there is a
///   `Content-Length` too: a message that "might indicate an attempt to perform request
///   smuggling (Section 11.2) or response splitting (Section 11.1) and ought to be handled as
///   an error" (rule 3), which is refused, the two disagreeing on where the body ends;
/// * without `Transfer-Encoding`, the `Content-Length`, which must be valid (rules 5 and 6);
/// * with neither, the connection's end (rule 8).
fn framing(head: &[u8], status: u16) -> Result<Framing, String> {
    if matches!(status, 204 | 304) {
        return Ok(Framing::Empty);
    }
    let codings = field_values(head, "transfer-encoding");
    if codings.is_empty() {
        return Ok(declared_length(head)?.map_or(Framing::Close, Framing::Length));
    }
    let codings = codings.join(", ");
    if head.starts_with(b"HTTP/1.0") {
        return Err(format!(
            "an HTTP/1.0 response with a Transfer-Encoding ({codings:?}): its framing is faulty \
             (RFC 9112 §6.1)"
        ));
    }
    if final_coding_chunked(&codings) {
        Ok(Framing::Chunked)
    } else if !field_values(head, "content-length").is_empty() {
        Err(format!(
            "Transfer-Encoding {codings:?}, whose body ends with the connection, and a \
             Content-Length: ambiguous framing (RFC 9112 §6.3)"
        ))
    } else {
        Ok(Framing::Close)
    }
}

/// The values of the fields named `name` in a response head, in order, without the
/// whitespace around them. Fields are read as RFC 9112 §5 has a user agent read them: each
/// obs-fold (a line break followed by spaces or tabs) is replaced by a space before the value
/// is interpreted (§5.2: "MUST replace each received obs-fold with one or more SP octets"), a
/// whitespace-preceded line before the first field is consumed without further processing
/// (§2.2), and whitespace between a field name and its colon is removed (§5.1 has a proxy
/// remove it; a server rejects such a request, but a response cannot be answered). A line ends
/// with CRLF, as the head does (`Reading::advance`): a bare LF, which §2.2 lets a recipient
/// take as a line's end only if it takes it so everywhere, is part of its line (and makes a
/// value this client interprets invalid).
fn field_values(head: &[u8], name: &str) -> Vec<String> {
    let head = String::from_utf8_lossy(head);
    let mut fields: Vec<String> = Vec::new();
    for line in head.split("\r\n").skip(1) {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = fields.last_mut() {
                last.truncate(last.trim_end_matches([' ', '\t']).len());
                last.push(' ');
                last.push_str(line.trim_matches([' ', '\t']));
            }
        } else {
            fields.push(line.to_owned());
        }
    }
    fields
        .iter()
        .filter_map(|field| {
            let (n, v) = field.split_once(':')?;
            n.trim_end_matches([' ', '\t'])
                .eq_ignore_ascii_case(name)
                .then(|| v.trim_matches([' ', '\t']).to_owned())
        })
        .collect()
}

/// The `Content-Length` a head declares (`None` without one): digits, the same value however
/// often it is given (fields or a list, RFC 9110 §8.6, RFC 9112 §6.3); anything else is an
/// error.
fn declared_length(head: &[u8]) -> Result<Option<usize>, String> {
    let values = field_values(head, "content-length");
    let mut length = None;
    for v in values.iter().flat_map(|v| v.split(',')).map(str::trim) {
        let n = Some(v)
            .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|v| v.parse::<usize>().ok())
            .ok_or_else(|| format!("invalid Content-Length {v:?}"))?;
        if let Some(l) = length.filter(|&l| l != n) {
            return Err(format!("Content-Length values differ ({l} and {n})"));
        }
        length = Some(n);
    }
    Ok(length)
}

/// Whether `chunked` is the last of a `Transfer-Encoding` list (RFC 9112 §6.1), the field
/// lines' values joined with commas: empty list elements do not count (RFC 9110 §5.6.1).
fn final_coding_chunked(codings: &str) -> bool {
    codings
        .split(',')
        .map(|c| c.trim_matches([' ', '\t']))
        .rfind(|c| !c.is_empty())
        .is_some_and(|c| c.eq_ignore_ascii_case("chunked"))
}

/// The size on a chunk's size line (`size [; extensions]`, hexadecimal).
fn chunk_size(line: &[u8]) -> Option<usize> {
    let line = std::str::from_utf8(line).ok()?;
    let size = line.split(';').next()?.trim();
    if size.is_empty() || !size.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    usize::from_str_radix(size, 16).ok()
}

/// Appends the data of the chunks `body` holds (RFC 9112 §7.1), up to [`MAX_ERROR_BODY`]
/// bytes, stopping at the last chunk, at a chunk cut short (its start kept) or at framing that
/// does not parse. A size may be anything up to `usize::MAX` (the gateway wrote it): nothing is
/// added to it unchecked.
fn dechunk(mut body: &[u8], out: &mut Vec<u8>) {
    while out.len() < MAX_ERROR_BODY {
        let Some(eol) = find(body, b"\r\n") else {
            return;
        };
        let Some(size @ 1..) = chunk_size(&body[..eol]) else {
            return;
        };
        body = &body[eol + 2..];
        out.extend_from_slice(&body[..size.min(body.len())]);
        // Past the data and its CRLF; a size too large for that is a chunk cut short.
        body = body.get(size.saturating_add(2)..).unwrap_or_default();
    }
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

    /// A refused URL is named in the error without its user info and query (credentials).
    #[test]
    fn a_refused_url_is_named_without_its_credentials() {
        let e = Endpoint::parse("ftp://user:s3cret@gw:9091/x?k=t0ken").unwrap_err();
        assert!(!e.contains("s3cret") && !e.contains("t0ken"), "{e}");
        assert!(e.contains("<redacted>@gw:9091/x"), "{e}");
    }

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

    /// What a fake gateway does after its reply.
    #[derive(Clone, Copy, PartialEq)]
    enum Then {
        /// Closes the connection.
        Close,
        /// Writes the reply over and over while the client listens.
        Repeat,
        /// Keeps the connection open (against RFC 9112 §9.6, since the request said
        /// `Connection: close`) until the client closes it.
        KeepOpen,
    }

    /// A one-connection fake gateway: reads the request (head and `Content-Length` body),
    /// then writes `reply` and does `then`.
    fn fake_gateway(reply: impl Into<Vec<u8>>, then: Then) -> Endpoint {
        let reply: Vec<u8> = reply.into();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let Ok((mut conn, _)) = listener.accept() else {
                return;
            };
            let mut got = Vec::new();
            let mut buf = [0u8; 1024];
            while !request_complete(&got) {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            match then {
                Then::Close => {
                    let _ = conn.write_all(&reply);
                }
                Then::Repeat => while conn.write_all(&reply).is_ok() {},
                Then::KeepOpen => {
                    let _ = conn.write_all(&reply);
                    while matches!(conn.read(&mut buf), Ok(1..)) {}
                }
            }
        });
        Endpoint::parse(&format!("http://{addr}")).unwrap()
    }

    /// [`fake_gateway`] that closes after its reply, or repeats it when `repeat`.
    fn gateway(reply: impl Into<Vec<u8>>, repeat: bool) -> Endpoint {
        fake_gateway(reply, if repeat { Then::Repeat } else { Then::Close })
    }

    fn push_to(endpoint: &Endpoint, scratch: &mut Scratch) -> Result<u16, PushError> {
        let request = Request {
            method: "PUT",
            path: "/metrics/job/j",
            content_type: "text/plain",
            body: b"up 1\n",
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        send(endpoint, &request, deadline, &|| None, scratch)
    }

    #[test]
    fn interim_responses_are_skipped() {
        let mut scratch = Scratch::default();
        let g = gateway(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            false,
        );
        assert_eq!(push_to(&g, &mut scratch), Ok(200));
        // Several, one with fields (103 Early Hints), then a final error with a body: the
        // body is the final response's.
        let g = gateway(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n\
              HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 400 Bad Request\r\nContent-Length: 8\r\n\r\nbad body",
            false,
        );
        assert_eq!(push_to(&g, &mut scratch), Ok(400));
        assert_eq!(scratch.body_text(), "bad body");
        // Up to the cap (16) is fine.
        let mut reply = "HTTP/1.1 100 Continue\r\n\r\n".repeat(16).into_bytes();
        reply.extend_from_slice(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(push_to(&gateway(reply, false), &mut scratch), Ok(204));
    }

    #[test]
    fn endless_interim_responses_are_an_error_not_a_hang() {
        let mut scratch = Scratch::default();
        let g = gateway(b"HTTP/1.1 100 Continue\r\n\r\n", true);
        let started = Instant::now();
        let r = push_to(&g, &mut scratch);
        assert!(matches!(r, Err(PushError::InvalidResponse(_))), "{r:?}");
        assert!(started.elapsed() < Duration::from_secs(2), "{r:?}");
    }

    #[test]
    fn a_head_longer_than_what_is_read_is_an_invalid_response() {
        // Not a broken connection: the head goes on past the 64 KiB read (its end unseen).
        let mut reply = b"HTTP/1.1 200 OK\r\nX-Long: ".to_vec();
        reply.extend_from_slice(&[b'x'; 70 << 10]);
        let r = push_to(&gateway(reply, false), &mut Scratch::default());
        assert!(
            matches!(&r, Err(PushError::InvalidResponse(e)) if e.contains("64 KiB")),
            "{r:?}"
        );
    }

    #[test]
    fn switching_protocols_is_an_error() {
        let mut scratch = Scratch::default();
        let g = gateway(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n\x00\x00",
            true,
        );
        let started = Instant::now();
        let r = push_to(&g, &mut scratch);
        assert!(matches!(r, Err(PushError::InvalidResponse(_))), "{r:?}");
        assert!(started.elapsed() < Duration::from_secs(2), "{r:?}");
    }

    /// Whether a request (head, then its `Content-Length` body) is all in.
    fn request_complete(request: &[u8]) -> bool {
        let Some(end) = find(request, b"\r\n\r\n") else {
            return false;
        };
        let head = String::from_utf8_lossy(&request[..end]).to_ascii_lowercase();
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        request.len() - (end + 4) >= length
    }

    /// Whether `response` is complete, as [`Reading`] finds it read in one piece.
    fn complete(response: &[u8]) -> bool {
        let mut reading = Reading::default();
        reading.advance(response).is_ok() && reading.complete(response)
    }

    /// Whether a response head declares its body chunked.
    fn chunked(head: &[u8]) -> bool {
        let mut head = head.to_vec();
        head.extend_from_slice(b"\r\n\r\n");
        let mut reading = Reading::default();
        reading.advance(&head).is_ok() && reading.framing == Framing::Chunked
    }

    /// Where a chunked body ends, once its last chunk and trailer section are in; `None` while
    /// they are not, or when its framing does not parse.
    fn chunks_end(body: &[u8]) -> Option<usize> {
        let mut response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        let head_len = response.len();
        response.extend_from_slice(body);
        let mut reading = Reading::default();
        reading.advance(&response).ok()?;
        match reading.chunks {
            Chunks::Done(end) => Some(end - head_len),
            _ => None,
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
        // The largest lengths a `usize` holds: far more than is there, not an overflow.
        assert!(!complete(
            b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\nabc"
        ));
        assert!(!complete(
            b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551600\r\n\r\nabc"
        ));
    }

    #[test]
    fn a_response_closed_before_its_content_length_is_incomplete() {
        let mut scratch = Scratch::default();
        let g = gateway(
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly-part",
            false,
        );
        let r = push_to(&g, &mut scratch);
        assert!(
            matches!(&r, Err(PushError::Io(e)) if e.contains("9 of the 100 body bytes") && e.contains("incomplete")),
            "{r:?}"
        );
        // After interim responses, the final response's length is the one that counts.
        let g = gateway(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 1\r\n\r\n",
            false,
        );
        assert!(matches!(push_to(&g, &mut scratch), Err(PushError::Io(_))));
        // A 204 has no body, whatever its Content-Length says.
        let g = gateway(
            b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
            false,
        );
        assert_eq!(push_to(&g, &mut scratch), Ok(204));
        // No length: the body ends where the connection does.
        let g = gateway(b"HTTP/1.1 200 OK\r\n\r\nall of it", false);
        assert_eq!(push_to(&g, &mut scratch), Ok(200));
        assert_eq!(scratch.body_text(), "all of it");
    }

    /// The body an error reports ends where the response's `Content-Length` says, not with
    /// whatever the gateway wrote after it (found by the `push_response` fuzz target: a `405`
    /// with `Content-Length: 0` followed by stray bytes reported them as its body).
    #[test]
    fn an_error_body_ends_at_its_content_length() {
        let mut scratch = Scratch::default();
        let g = gateway(
            b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 8\r\n\r\nbad bodyHTTP/1.1 200 OK\r\n",
            false,
        );
        assert_eq!(push_to(&g, &mut scratch), Ok(405));
        assert_eq!(scratch.body_text(), "bad body");
        let g = gateway(
            b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\nstray",
            false,
        );
        assert_eq!(push_to(&g, &mut scratch), Ok(405));
        assert_eq!(scratch.body_text(), "");
    }

    /// The explanation is cut at 512 bytes, on a character boundary: a character cut in half
    /// came back as U+FFFD, a character the gateway never sent.
    #[test]
    fn a_long_error_body_is_cut_between_characters() {
        let mut scratch = Scratch::default();
        let body = format!("{}é and more", "a".repeat(MAX_ERROR_BODY - 1));
        let reply = format!(
            "HTTP/1.1 400 Bad Request\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        assert_eq!(push_to(&gateway(reply, false), &mut scratch), Ok(400));
        assert_eq!(scratch.body_text(), "a".repeat(MAX_ERROR_BODY - 1));
    }

    #[test]
    fn a_chunked_body_is_reported_without_its_framing() {
        let mut scratch = Scratch::default();
        let g = gateway(
            b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
              6\r\nbad bo\r\n2;ext=1\r\ndy\r\n0\r\n\r\n",
            false,
        );
        assert_eq!(push_to(&g, &mut scratch), Ok(400));
        assert_eq!(scratch.body_text(), "bad body");
        let text = |body: &[u8]| {
            let mut out = Vec::new();
            dechunk(body, &mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(text(b"3\r\nabc\r\n0\r\n\r\n"), "abc");
        assert_eq!(text(b"A\r\n0123"), "0123", "a chunk cut short: its start");
        assert_eq!(
            text(b"3\r\nabc\r\nzz\r\nmore"),
            "abc",
            "bad framing: what came before"
        );
        assert_eq!(text(b"+3\r\nabc\r\n"), "");
        assert_eq!(text(b"ffffffffffffffffffff\r\nabc"), "");
        // Sizes a 64-bit `usize` holds, within two of its largest: chunks cut short, not an
        // overflow.
        #[cfg(target_pointer_width = "64")]
        for size in ["fffffffffffffffe", "ffffffffffffffff"] {
            assert_eq!(text(format!("{size}\r\nabc").as_bytes()), "abc");
        }
        assert_eq!(
            text(
                &b"1000\r\n"
                    .iter()
                    .chain(&[b'x'; 4096])
                    .copied()
                    .collect::<Vec<_>>()
            )
            .len(),
            4096
        );
        assert!(chunked(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, Chunked"
        ));
        assert!(!chunked(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip"
        ));
        assert!(!chunked(b"HTTP/1.1 200 OK\r\nContent-Length: 3"));
        assert_eq!(chunks_end(b"0\r\n\r\nafter"), Some(5));
        assert_eq!(chunks_end(b"1\r\na\r\n0\r\nT: 1\r\nU: 2\r\n\r\n"), Some(23));
        assert_eq!(chunks_end(b"1\r\na\r\n0\r\nT: 1\r\n"), None);
        assert_eq!(chunks_end(b"ffffffffffffffff\r\nabc"), None);
        assert_eq!(chunks_end(b"zz\r\n0\r\n\r\n"), None);
    }

    #[test]
    fn an_ipv6_zone_in_its_url_form_is_resolved_as_the_zone() {
        // RFC 6874: the zone of `fe80::1%1` is written `%25` then `1` in a URL, which
        // `net::url` accepts; the resolver takes `fe80::1%1` (`net::url`'s `resolver_host`,
        // whose test resolves it).
        let e = Endpoint::parse("http://[fe80::1%251]:9091/gw").unwrap();
        assert_eq!(e.host, "fe80::1%1");
        assert_eq!(
            e.authority, "[fe80::1]:9091",
            "the Host header without the zone (RFC 6874 §4)"
        );
        // A `%25` outside an IPv6 literal is not a zone (and resolves as it is, or not).
        assert_eq!(Endpoint::parse("http://a%25b:1").unwrap().host, "a%25b");
    }

    #[test]
    fn a_response_is_complete_by_its_framing_not_only_its_content_length() {
        // RFC 9112 §6.3: a 204 (or 304) ends with its head; a chunked body with its last chunk
        // and trailer section. Neither is waited on past its end (`push_to` allows 5 s).
        let mut scratch = Scratch::default();
        for (reply, status, body) in [
            (&b"HTTP/1.1 204 No Content\r\n\r\n"[..], 204, ""),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
                200,
                "hello",
            ),
            (
                b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n\
                  3;x=y\r\nbad\r\n0\r\nX-Trailer: 1\r\n\r\n",
                400,
                "bad",
            ),
        ] {
            let r = push_to(&fake_gateway(reply, Then::KeepOpen), &mut scratch);
            assert_eq!(r, Ok(status), "{:?}", String::from_utf8_lossy(reply));
            assert_eq!(scratch.body_text(), body);
        }
        // A chunked body the gateway closes before its last chunk is incomplete, as one short
        // of its Content-Length is.
        for reply in [
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel"[..],
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-Trailer: 1\r\n",
        ] {
            let r = push_to(&gateway(reply, false), &mut scratch);
            assert!(
                matches!(&r, Err(PushError::Io(e)) if e.contains("incomplete")),
                "{:?}: {r:?}",
                String::from_utf8_lossy(reply)
            );
        }
    }

    /// RFC 9112 §6.3 rule 3: "If a message is received with both a Transfer-Encoding and a
    /// Content-Length header field, the Transfer-Encoding overrides the Content-Length. Such a
    /// message might indicate an attempt to perform request smuggling (Section 11.2) or
    /// response splitting (Section 11.1) and ought to be handled as an error"; with a final
    /// coding other than chunked the body would end with the connection (rule 4), not at the
    /// length. It was framed by the length, and a `200` taken.
    #[test]
    fn a_transfer_coding_other_than_chunked_with_a_content_length_is_refused() {
        let mut scratch = Scratch::default();
        for reply in [
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 2\r\n\r\nok"[..],
            b"HTTP/1.1 400 Bad\r\nContent-Length: 2\r\nTransfer-Encoding: chunked, gzip\r\n\r\nok",
        ] {
            let r = push_to(&fake_gateway(reply, Then::KeepOpen), &mut scratch);
            assert!(
                matches!(&r, Err(PushError::InvalidResponse(e)) if e.contains("Transfer-Encoding") && e.contains("Content-Length")),
                "{:?}: {r:?}",
                String::from_utf8_lossy(reply)
            );
        }
        // Without a Content-Length, such a body ends with the connection (rule 4).
        let g = gateway(
            b"HTTP/1.1 400 Bad\r\nTransfer-Encoding: identity\r\n\r\nbad body",
            false,
        );
        assert_eq!(push_to(&g, &mut scratch), Ok(400));
        assert_eq!(scratch.body_text(), "bad body");
    }

    /// RFC 9112 §6.1: "A server or client that receives an HTTP/1.0 message containing a
    /// Transfer-Encoding header field MUST treat the message as if the framing is faulty, even
    /// if a Content-Length is present"; it was read as chunked, or by its length.
    #[test]
    fn an_http_1_0_response_with_a_transfer_encoding_is_refused() {
        let mut scratch = Scratch::default();
        for reply in [
            &b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"[..],
            b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n",
        ] {
            let r = push_to(&gateway(reply, false), &mut scratch);
            assert!(
                matches!(&r, Err(PushError::InvalidResponse(e)) if e.contains("HTTP/1.0")),
                "{:?}: {r:?}",
                String::from_utf8_lossy(reply)
            );
        }
        // HTTP/1.0 with a Content-Length alone is fine.
        let g = fake_gateway(
            &b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"[..],
            Then::KeepOpen,
        );
        assert_eq!(push_to(&g, &mut scratch), Ok(200));
    }

    /// RFC 9112 §5.1: whitespace between a field name and its colon is removed by a recipient
    /// that does not reject the message (a proxy "MUST remove any such whitespace"), and §5.2:
    /// a user agent "MUST replace each received obs-fold with one or more SP octets prior to
    /// interpreting the field value". `Content-Length : 2` was not a length (the client waited
    /// for the close), and a folded value was cut at its fold.
    #[test]
    fn field_names_before_whitespace_and_folded_values_are_read_whole() {
        let mut scratch = Scratch::default();
        for reply in [
            &b"HTTP/1.1 400 Bad\r\nContent-Length : 2\r\n\r\nok"[..],
            b"HTTP/1.1 400 Bad\r\nTransfer-Encoding\t: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
            b"HTTP/1.1 400 Bad\r\nTransfer-Encoding: gzip,\r\n chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
            b"HTTP/1.1 400 Bad\r\nTransfer-Encoding: chunked,\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        ] {
            let r = push_to(&fake_gateway(reply, Then::KeepOpen), &mut scratch);
            assert_eq!(r, Ok(400), "{:?}", String::from_utf8_lossy(reply));
            assert_eq!(scratch.body_text(), "ok");
        }
        // A length folded onto a second line is one value, `2 0`: not a number.
        let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n 0\r\n\r\nok";
        let r = push_to(&gateway(reply, false), &mut scratch);
        assert!(
            matches!(&r, Err(PushError::InvalidResponse(e)) if e.contains("Content-Length")),
            "{r:?}"
        );
    }

    /// RFC 9112 §2.2 lets a recipient take a bare LF as a line's end, but then for the head's
    /// end too; this client finds the head's end at CRLFCRLF only, and read field lines split
    /// at bare LFs as well: `Content-Length: 2` then an empty line of a bare LF was a length
    /// for a body that, as the head was found, had not started. A bare LF is now part of its
    /// line, as the head's end is found: a length with one is not a number.
    #[test]
    fn a_bare_lf_does_not_end_a_field_line() {
        let mut scratch = Scratch::default();
        assert!(declared_length(b"HTTP/1.1 200 OK\r\nContent-Length: 2\n\nok").is_err());
        assert_eq!(
            declared_length(b"HTTP/1.1 200 OK\r\nX: 1\nContent-Length: 2"),
            Ok(None)
        );
        let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\nX: 1\r\n\r\nok";
        let r = push_to(&gateway(reply, false), &mut scratch);
        assert!(
            matches!(&r, Err(PushError::InvalidResponse(e)) if e.contains("Content-Length")),
            "{r:?}"
        );
    }

    /// RFC 9112 §7.1: `chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF`. Two bytes after
    /// a chunk's data were skipped whatever they were, and a size line that is not one left
    /// the client waiting for the connection's end (then "incomplete"): both are a framing
    /// error, said at once.
    #[test]
    fn bad_chunk_framing_is_an_invalid_response_at_once() {
        let mut scratch = Scratch::default();
        for (reply, why) in [
            (
                &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXX0\r\n\r\n"[..],
                "CRLF",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                "chunk size",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n",
                "chunk size",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n",
                "chunk size",
            ),
        ] {
            let r = push_to(&fake_gateway(reply, Then::KeepOpen), &mut scratch);
            assert!(
                matches!(&r, Err(PushError::InvalidResponse(e)) if e.contains(why)),
                "{:?}: {r:?}",
                String::from_utf8_lossy(reply)
            );
        }
    }

    /// The head's end is found however the response is cut into reads, each byte looked at a
    /// bounded number of times (it was searched from the start again after every read), and
    /// so is a chunked body's end.
    #[test]
    fn a_response_arriving_byte_by_byte_is_parsed_once() {
        let response: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nX: y\r\n\
              Transfer-Encoding: chunked\r\n\r\n3;e=1\r\nabc\r\n0\r\nT: 1\r\n\r\n";
        let mut reading = Reading::default();
        for end in 1..=response.len() {
            let seen = &response[..end];
            reading.advance(seen).unwrap();
            assert_eq!(reading.complete(seen), end == response.len(), "{end}");
        }
        assert_eq!(reading.last.map(|(s, _)| s), Some(200));
        assert!(
            reading.examined <= 2 * response.len(),
            "{} bytes examined for {}",
            reading.examined,
            response.len()
        );
    }

    #[test]
    fn a_response_with_an_invalid_content_length_is_not_a_success() {
        // RFC 9112 §6.3: without Transfer-Encoding, an invalid Content-Length makes the framing
        // invalid, and a user agent must discard the response.
        let mut scratch = Scratch::default();
        for reply in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: +0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 0\r\n\r\nok",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2, 0\r\n\r\nok",
        ] {
            let r = push_to(&gateway(reply, false), &mut scratch);
            assert!(
                matches!(&r, Err(PushError::InvalidResponse(e)) if e.contains("Content-Length")),
                "{:?}: {r:?}",
                String::from_utf8_lossy(reply)
            );
        }
        // The same value repeated is one length (RFC 9112 §6.3 lets a recipient take it).
        for reply in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\nok",
        ] {
            assert_eq!(
                push_to(&fake_gateway(reply, Then::KeepOpen), &mut scratch),
                Ok(200)
            );
        }
        // Transfer-Encoding overrides it.
        let reply =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: x\r\n\r\n0\r\n\r\n";
        assert_eq!(
            push_to(&fake_gateway(reply, Then::KeepOpen), &mut scratch),
            Ok(200)
        );
    }
}
