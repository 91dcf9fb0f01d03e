//! HTTP/1.1 over `std::net::TcpStream`: just what OTLP/HTTP needs, blocking, with every
//! step bounded by the export's [`Deadline`].
//!
//! * One connection, kept alive between exports; a request that fails on a reused
//!   connection before any byte of the answer (the collector closed it while idle) is sent
//!   once more on a fresh one at once.
//! * Every read and write waits at most 50 ms before looking at the deadline again, so a
//!   deadline brought forward by a shutdown is noticed promptly.
//! * Response bodies are read up to [`MAX_RESPONSE_BODY`] (4 MiB, the OTLP limit); a longer
//!   one is an error, never buffered. Headers are capped at 64 KiB.
//! * `Content-Length`, `Transfer-Encoding: chunked` and close-delimited bodies; `1xx`
//!   interim responses skipped; `Connection: close` honoured.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::time::{Duration, SystemTime};

use crate::export::exporter::Deadline;
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
    /// The `Host` header value (`host[:port]`, brackets kept for IPv6).
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
            host: parsed.host.to_owned(),
            port: parsed.port,
            authority: parsed.authority.to_owned(),
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
        let mut h = Vec::new();
        let _ = write!(
            h,
            "Host: {}\r\nUser-Agent: {user_agent}\r\nContent-Type: {content_type}\r\n",
            endpoint.authority
        );
        for (k, v) in headers {
            let _ = write!(h, "{k}: {v}\r\n");
        }
        HttpClient {
            endpoint,
            headers: h,
            conn: None,
            head: Vec::new(),
            buf: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Drops the kept-alive connection.
    pub(crate) fn close(&mut self) {
        if let Some(c) = self.conn.take() {
            let _ = c.shutdown(Shutdown::Both);
        }
    }

    /// POSTs `body` and reads the response, by `deadline`.
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
        })
    }

    fn connect(&mut self, deadline: &Deadline) -> Result<(), SendError> {
        if self.conn.is_some() {
            return Ok(());
        }
        // Name resolution blocks without a timeout (getaddrinfo); it is instant for the
        // IP literals and `localhost` a local collector uses.
        let addrs = (self.endpoint.host.as_str(), self.endpoint.port)
            .to_socket_addrs()
            .map_err(SendError::Connect)?;
        let mut last = io::Error::new(io::ErrorKind::NotFound, "the host has no address");
        for addr in addrs {
            let remaining = deadline.remaining();
            if remaining.is_zero() {
                return Err(SendError::Timeout);
            }
            match TcpStream::connect_timeout(&addr, remaining) {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    self.conn = Some(s);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::TimedOut && deadline.passed() => {
                    return Err(SendError::Timeout)
                }
                Err(e) => last = e,
            }
        }
        Err(SendError::Connect(last))
    }

    /// Sends the request and reads one final response into `self.body`.
    fn exchange(&mut self, body: &[u8], deadline: &Deadline) -> Result<Parsed, SendError> {
        self.buf.clear();
        self.body.clear();
        self.connect(deadline)?;
        let conn = self.conn.as_mut().ok_or(SendError::Timeout)?;
        write_all(conn, &[&self.head, body], deadline)?;
        loop {
            let parsed = read_head(conn, &mut self.buf, deadline)?;
            if (100..200).contains(&parsed.status) {
                // An interim response: drop it and read the final one.
                self.buf.drain(..parsed.head_len);
                continue;
            }
            self.buf.drain(..parsed.head_len);
            read_body(conn, &mut self.buf, &mut self.body, &parsed, deadline)?;
            let mut parsed = parsed;
            if parsed.content_length.is_none()
                && !parsed.chunked
                && !matches!(parsed.status, 204 | 304)
            {
                // A close-delimited body: the connection is done.
                parsed.close = true;
            }
            if parsed.gzip {
                let mut out = Vec::new();
                let mut dec =
                    flate2::read::GzDecoder::new(&self.body[..]).take(MAX_RESPONSE_BODY as u64 + 1);
                dec.read_to_end(&mut out)
                    .map_err(|e| SendError::Invalid(format!("bad gzip response body: {e}")))?;
                if out.len() > MAX_RESPONSE_BODY {
                    return Err(SendError::Invalid(
                        "response body over 4 MiB once decompressed".into(),
                    ));
                }
                self.body = out;
            }
            return Ok(parsed);
        }
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
    let mut bufs: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
    let mut bufs = &mut bufs[..];
    IoSlice::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        slice(conn, deadline, true)?;
        match conn.write_vectored(bufs) {
            Ok(0) => {
                return Err(SendError::Broken(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "the connection closed while sending",
                )))
            }
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted || is_timeout(&e) => {}
            Err(e) => return Err(SendError::Broken(e)),
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

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

fn read_head(
    conn: &mut TcpStream,
    buf: &mut Vec<u8>,
    deadline: &Deadline,
) -> Result<Parsed, SendError> {
    let head_len = loop {
        if let Some(end) = find_head_end(buf) {
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
    let head = std::str::from_utf8(&buf[..head_len])
        .map_err(|_| SendError::Invalid("response headers are not UTF-8".into()))?;
    parse_head(head, head_len).map_err(SendError::Invalid)
}

fn parse_head(head: &str, head_len: usize) -> Result<Parsed, String> {
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1.x response: {status_line:?}"));
    }
    let status = parts
        .next()
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
    for line in lines.filter(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("bad header line {line:?}"));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let n = value
                .parse::<usize>()
                .map_err(|_| format!("bad Content-Length {value:?}"))?;
            if p.content_length.is_some_and(|m| m != n) {
                return Err("conflicting Content-Length headers".into());
            }
            p.content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            p.chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("chunked"));
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',') {
                if token.trim().eq_ignore_ascii_case("close") {
                    p.close = true;
                } else if token.trim().eq_ignore_ascii_case("keep-alive") {
                    p.close = false;
                }
            }
        } else if name.eq_ignore_ascii_case("retry-after") {
            p.retry_after = parse_retry_after(value, SystemTime::now());
        } else if name.eq_ignore_ascii_case("content-encoding") {
            p.gzip = value.eq_ignore_ascii_case("gzip") || value.eq_ignore_ascii_case("x-gzip");
        }
    }
    Ok(p)
}

fn too_large() -> SendError {
    SendError::Invalid("response body over 4 MiB".into())
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
        loop {
            let line_end = loop {
                if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
                    break i;
                }
                if buf.len() > 1024 {
                    return Err(SendError::Invalid("bad chunk header".into()));
                }
                if fill(conn, buf, deadline)? == 0 {
                    return Err(eof("chunked body"));
                }
            };
            let size_text = std::str::from_utf8(&buf[..line_end]).unwrap_or("");
            let size_text = size_text.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_text, 16)
                .map_err(|_| SendError::Invalid(format!("bad chunk size {size_text:?}")))?;
            buf.drain(..line_end + 2);
            if size == 0 {
                // Trailers (if any), then the final empty line.
                loop {
                    if buf.starts_with(b"\r\n") {
                        buf.drain(..2);
                        return Ok(());
                    }
                    if let Some(end) = find_head_end(buf) {
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
            if body.len() + size > MAX_RESPONSE_BODY {
                return Err(too_large());
            }
            while buf.len() < size + 2 {
                if fill(conn, buf, deadline)? == 0 {
                    return Err(eof("chunked body"));
                }
            }
            body.extend_from_slice(&buf[..size]);
            buf.drain(..size + 2);
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

/// `Retry-After` (RFC 9110 §10.2.3): delay-seconds, or an HTTP-date (IMF-fixdate, or the
/// obsolete RFC 850 and asctime forms), as the delay from `now` (zero for a past date).
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::from_secs(
            value.parse::<u64>().unwrap_or(u64::MAX),
        ));
    }
    let at = parse_http_date(value)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Parses the three HTTP-date forms.
pub(crate) fn parse_http_date(s: &str) -> Option<SystemTime> {
    let (day, month, year, time) = if let Some((_, rest)) = s.split_once(", ") {
        let parts: Vec<&str> = rest.split([' ', '-']).collect();
        match parts.as_slice() {
            // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
            [d, m, y, t, "GMT"] if y.len() == 4 => (*d, *m, y.parse::<i64>().ok()?, *t),
            // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"
            [d, m, y, t, "GMT"] if y.len() == 2 => {
                let yy = y.parse::<i64>().ok()?;
                // RFC 9110: a two-digit year more than 50 years in the future is in the past.
                (*d, *m, if yy < 70 { 2000 + yy } else { 1900 + yy }, *t)
            }
            _ => return None,
        }
    } else {
        // asctime: "Sun Nov  6 08:49:37 1994"
        let parts: Vec<&str> = s.split_whitespace().collect();
        match parts.as_slice() {
            [_, m, d, t, y] => (*d, *m, y.parse::<i64>().ok()?, *t),
            _ => return None,
        }
    };
    let month = MONTHS.iter().position(|m| *m == month)? as i64 + 1;
    let day: i64 = day.parse().ok().filter(|d| (1..=31).contains(d))?;
    let mut hms = time.split(':').map(|p| p.parse::<i64>().ok());
    let (h, mi, se) = (hms.next()??, hms.next()??, hms.next()??);
    if hms.next().is_some() || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + h * 3600 + mi * 60 + se;
    let secs = u64::try_from(secs).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn retry_after_takes_seconds_and_all_three_date_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_770); // 1994-11-06 08:49:30
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        for date in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(
                parse_retry_after(date, now),
                Some(Duration::from_secs(7)),
                "{date}"
            );
        }
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        for bad in [
            "",
            "-1",
            "1.5",
            "soon",
            "Sun, 06 Nov 1994 25:00:00 GMT",
            "Sun, 32 Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad}");
        }
        assert_eq!(
            parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"),
            Some(SystemTime::UNIX_EPOCH)
        );
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2028 12:00:00 GMT"),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_835_438_400))
        );
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
}
