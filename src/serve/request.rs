//! Request heads: finding their end, tokenizing them (httparse) and applying HTTP/1.1's rules
//! (RFC 9112) to what the server needs to know.
//!
//! Pure functions over bytes, with no I/O: [`find_head_end`] scans what has arrived for the empty
//! line that ends a head, and [`parse`] turns a complete head into a [`Head`] or a
//! [`Rejection`]. The server never reads request bodies: a request that announces one is
//! answered and its connection closed, which keeps the framing of the next request unambiguous.

use std::time::Duration;

use super::compression::accepts_gzip;
use super::negotiate::{self, Format};
use super::response::Status;

/// Header fields parsed on the stack; a request with more is parsed again with room for
/// [`ServerConfig::max_headers`](super::ServerConfig::max_headers) on the heap.
const STACK_HEADERS: usize = 32;

/// The request method, as far as the server cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Head,
    /// A method the server recognises but `/metrics` does not allow (`405`): the other methods
    /// of RFC 9110 §9 (`POST`, `PUT`, `DELETE`, `CONNECT`, `OPTIONS`, `TRACE`) and `PATCH`
    /// (RFC 5789).
    Other,
    /// A method the server does not recognise (`501`, RFC 9110 §15.6.2). Methods are
    /// case-sensitive (RFC 9110 §9.1): `get` is one.
    Unknown,
}

impl Method {
    fn of(token: &str) -> Method {
        match token {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" | "PUT" | "DELETE" | "CONNECT" | "OPTIONS" | "TRACE" | "PATCH" => Method::Other,
            _ => Method::Unknown,
        }
    }
}

/// What a request asks for and how its connection should go on.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Head {
    pub(crate) method: Method,
    /// The request target's path is exactly `/metrics` (any query is ignored).
    pub(crate) metrics: bool,
    /// `OPTIONS *`: the asterisk form, a request about the server as a whole (RFC 9112
    /// §3.2.4), which no other method may make.
    pub(crate) server_wide: bool,
    /// The client accepts a gzip-coded response.
    pub(crate) gzip: bool,
    /// The exposition format its `Accept` fields prefer (`negotiate`); served only when the
    /// server has OpenMetrics enabled.
    pub(crate) format: Format,
    /// The connection may serve another request after this one (HTTP/1.1 without
    /// `Connection: close`, or HTTP/1.0 with `Connection: keep-alive`, and no request body).
    pub(crate) keep_alive: bool,
    /// The request is HTTP/1.0 (its responses announce a kept connection).
    pub(crate) http10: bool,
    /// `X-Prometheus-Scrape-Timeout-Seconds`: how long the scraper waits for the response.
    pub(crate) scrape_timeout: Option<Duration>,
}

/// Why a head is refused; each is answered with its status and the connection closed (a
/// refused head leaves the framing of anything after it unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rejection {
    pub(crate) status: Status,
    pub(crate) reason: &'static str,
}

fn reject(status: Status, reason: &'static str) -> Rejection {
    Rejection { status, reason }
}

/// The index just past the empty line that ends a head in `buf`, looking from `from` on (a
/// position already scanned, so that a head arriving in pieces is scanned once). A line may
/// end in CRLF or, as RFC 9112 §2.2 allows a recipient to accept, a bare LF.
pub(crate) fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    // Resume a little before `from`: the terminator may straddle two reads.
    let start = from.saturating_sub(3);
    let mut i = start;
    while let Some(offset) = buf[i..].iter().position(|&b| b == b'\n') {
        let lf = i + offset;
        match buf.get(lf + 1) {
            Some(b'\n') => return Some(lf + 2),
            Some(b'\r') if buf.get(lf + 2) == Some(&b'\n') => return Some(lf + 3),
            _ => i = lf + 1,
        }
    }
    None
}

/// Why a head that has reached `max_header_bytes` without ending is refused: `414 URI Too
/// Long` while its request target is still arriving (RFC 9112 §3: a server that receives a
/// request-target longer than any URI it wishes to parse "MUST respond with a 414"), that is
/// when the request line (after any empty lines) has no line end yet and one space, after the
/// method; else `431`, the header section being too large.
pub(crate) fn too_large(buf: &[u8]) -> Rejection {
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    let line = &buf[start..];
    let spaces = line.iter().filter(|&&b| b == b' ').take(2).count();
    if spaces == 1 && !line.contains(&b'\n') {
        reject(
            Status::UriTooLong,
            "request target longer than max_header_bytes",
        )
    } else {
        reject(
            Status::HeaderFieldsTooLarge,
            "request head larger than max_header_bytes",
        )
    }
}

/// Whether the request line at the start of `buf` (after any empty lines) names the method
/// `HEAD`. A response to `HEAD` has no content (RFC 9110 §9.3.2: "the server MUST NOT send
/// content in the response"; RFC 9112 §6.3: it ends with its header section), a refusal
/// included, so the connection asks this of whatever head it refuses (malformed, too large, not
/// complete in time): the method is the first token whatever is wrong after it.
pub(crate) fn names_head(buf: &[u8]) -> bool {
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    buf[start..].starts_with(b"HEAD ")
}

/// The length of the empty lines (CRLF, or a bare LF as RFC 9112 §2.2 allows) at the start of
/// `buf`: what may be dropped before a request line. A CR not followed by LF ends the run (a
/// bare CR makes its element invalid, §2.2, and it is left for [`parse`] to refuse; it may also
/// be the first half of a CRLF still arriving).
pub(crate) fn empty_lines(buf: &[u8]) -> usize {
    let mut i = 0;
    loop {
        match buf[i..] {
            [b'\n', ..] => i += 1,
            [b'\r', b'\n', ..] => i += 2,
            _ => return i,
        }
    }
}

/// Where a head ends, and what it says.
#[derive(Debug)]
pub(crate) enum Parsed {
    /// The head is complete and `len` bytes long.
    Complete {
        len: usize,
        head: Result<Head, Rejection>,
    },
    /// Only empty lines so far (which RFC 9112 §2.2 says to skip before a request line): read
    /// on.
    Partial,
}

/// Parses the head at the start of `buf`, which [`find_head_end`] found complete.
///
/// The version token must follow RFC 9112 §2.3's grammar, `HTTP-name "/" DIGIT "." DIGIT`:
/// anything else there (`HTTP/1.10`, `HTTP/11.1`, `HTTP/1.1x`) is a malformed request line,
/// `400`. A request line in a later minor version of HTTP/1 (`HTTP/1.2` to `HTTP/1.9`) is read
/// as HTTP/1.1, the highest the server supports (RFC 9110 §2.5: a recipient "SHOULD process the
/// message as if it were in the highest minor version within that major version to which the
/// recipient is conformant"); httparse knows only 1.0 and 1.1, so such a head is tokenized again
/// from a copy that says `HTTP/1.1`. Any other well-formed version gets `505`.
pub(crate) fn parse(buf: &[u8], max_headers: usize) -> Parsed {
    let parsed = tokenize(buf, max_headers);
    // A head httparse took has version 1.0 or 1.1: only a refused one is looked at again.
    let Parsed::Complete { head: Err(e), .. } = &parsed else {
        return parsed;
    };
    match version_token(buf) {
        Some(Version::Malformed) => Parsed::Complete {
            len: 0,
            head: Err(reject(Status::BadRequest, "malformed HTTP version")),
        },
        Some(Version::Later11 { at }) if e.status == Status::VersionNotSupported => {
            let mut as_11 = buf.to_vec();
            as_11[at] = b'1';
            tokenize(&as_11, max_headers)
        }
        _ => parsed,
    }
}

/// The version token of a request line, as [`version_token`] reads it.
#[derive(Debug, PartialEq, Eq)]
enum Version {
    /// Not `"HTTP/" DIGIT "." DIGIT`.
    Malformed,
    /// `HTTP/1.2` to `HTTP/1.9`; `at` is where the minor digit is in the buffer.
    Later11 { at: usize },
    /// Any other `"HTTP/" DIGIT "." DIGIT`.
    Other,
}

/// The version token of the request line at the start of `buf` (after any empty lines): what
/// follows its last space, when the line has a method, a target and a version (two spaces at
/// least); `None` otherwise (the tokenizer's reason stands).
fn version_token(buf: &[u8]) -> Option<Version> {
    let start = empty_lines(buf);
    let line_len = buf[start..].iter().position(|&b| b == b'\n')?;
    let line = &buf[start..start + line_len];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().filter(|&&b| b == b' ').count() < 2 {
        return None;
    }
    let version_at = line.iter().rposition(|&b| b == b' ')? + 1;
    Some(match &line[version_at..] {
        [b'H', b'T', b'T', b'P', b'/', b'1', b'.', b'2'..=b'9'] => Version::Later11 {
            at: start + line.len() - 1,
        },
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            Version::Other
        }
        _ => Version::Malformed,
    })
}

fn tokenize(buf: &[u8], max_headers: usize) -> Parsed {
    let mut stack = [httparse::EMPTY_HEADER; STACK_HEADERS];
    let mut request = httparse::Request::new(&mut stack[..max_headers.min(STACK_HEADERS)]);
    match request.parse(buf) {
        Err(httparse::Error::TooManyHeaders) if max_headers > STACK_HEADERS => {
            let mut heap = vec![httparse::EMPTY_HEADER; max_headers];
            let mut request = httparse::Request::new(&mut heap);
            let parsed = request.parse(buf);
            interpret(&request, parsed)
        }
        parsed => interpret(&request, parsed),
    }
}

fn interpret(request: &httparse::Request<'_, '_>, parsed: httparse::Result<usize>) -> Parsed {
    let len = match parsed {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(e) => {
            // The head is complete (its end was found), so any error is final; its length is
            // unknown, but the connection closes anyway.
            return Parsed::Complete {
                len: 0,
                head: Err(tokenizer_rejection(e, request)),
            };
        }
    };
    Parsed::Complete {
        len,
        head: head(request),
    }
}

fn tokenizer_rejection(e: httparse::Error, request: &httparse::Request<'_, '_>) -> Rejection {
    match e {
        httparse::Error::TooManyHeaders => {
            reject(Status::HeaderFieldsTooLarge, "too many header fields")
        }
        // A version token of the form HTTP/x.y other than 1.0 and 1.1 (httparse knows only
        // those; `parse` reads 1.2 to 1.9 as 1.1); anything else there is malformed.
        httparse::Error::Version if request.path.is_some() => {
            reject(Status::VersionNotSupported, "only HTTP/1")
        }
        httparse::Error::HeaderName => reject(Status::BadRequest, "malformed header field name"),
        httparse::Error::HeaderValue => reject(Status::BadRequest, "malformed header field value"),
        httparse::Error::NewLine => reject(Status::BadRequest, "malformed line ending"),
        _ => reject(Status::BadRequest, "malformed request line"),
    }
}

/// The request-line and header rules of RFC 9112 that decide the answer.
fn head(request: &httparse::Request<'_, '_>) -> Result<Head, Rejection> {
    let (Some(method), Some(target), Some(minor)) = (request.method, request.path, request.version)
    else {
        return Err(reject(Status::BadRequest, "incomplete request line"));
    };
    let http11 = minor == 1;
    // RFC 9112 §3.2.4: the asterisk form "is only used for a server-wide OPTIONS request";
    // with any other method the request line is invalid (§3: `400`).
    if target == "*" && method != "OPTIONS" {
        return Err(reject(
            Status::BadRequest,
            "asterisk-form request target with a method other than OPTIONS",
        ));
    }
    // RFC 9112 §3.2.4: an OPTIONS in absolute form "in which the URI has an empty path and no
    // query component" is the server-wide request a proxy forwards as `OPTIONS *` (RFC 9110
    // §7.1: it targets the server as a whole).
    let server_wide = target == "*" || (method == "OPTIONS" && empty_absolute_path(target));
    let method = Method::of(method);
    let mut hosts = 0usize;
    let mut close = false;
    let mut keep_alive_token = false;
    let mut content_length: Option<u64> = None;
    let mut transfer_encoding = false;
    let mut chunked_last = false;
    // How often `chunked` is applied, in every Transfer-Encoding field together.
    let mut chunked_count = 0usize;
    // A transfer coding other than chunked: the server decodes none (RFC 9112 §6.1: `501`).
    let mut unknown_coding = false;
    let mut scrape_timeout = None;
    for field in request.headers.iter() {
        let name = field.name;
        let value = field.value;
        if name.eq_ignore_ascii_case("host") {
            hosts += 1;
            if !valid_host(trim(value)) {
                return Err(reject(Status::BadRequest, "invalid Host header field"));
            }
        } else if name.eq_ignore_ascii_case("connection") {
            for token in list(value) {
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive_token |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            // RFC 9112 §6.3: a list of identical values may be taken as that value;
            // anything else is an unrecoverable framing error.
            for item in value.split(|&b| b == b',') {
                let n = parse_length(trim(item))
                    .ok_or(reject(Status::BadRequest, "invalid Content-Length"))?;
                if content_length.is_some_and(|c| c != n) {
                    return Err(reject(Status::BadRequest, "conflicting Content-Length"));
                }
                content_length = Some(n);
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            transfer_encoding = true;
            for coding in list(value) {
                chunked_last = coding.eq_ignore_ascii_case(b"chunked");
                chunked_count += usize::from(chunked_last);
                unknown_coding |= !chunked_last;
            }
        } else if name.eq_ignore_ascii_case("x-prometheus-scrape-timeout-seconds") {
            scrape_timeout = std::str::from_utf8(trim(value))
                .ok()
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s > 0.0)
                .map(|s| Duration::from_secs_f64(s.min(86_400.0)));
        }
    }
    // RFC 9112 §3.2: a 1.1 request without Host, or any request with more than one.
    if hosts > 1 {
        return Err(reject(
            Status::BadRequest,
            "more than one Host header field",
        ));
    }
    if hosts == 0 && http11 {
        return Err(reject(
            Status::BadRequest,
            "HTTP/1.1 request without a Host header field",
        ));
    }
    // RFC 9112 §6.1 and §6.3: Transfer-Encoding with Content-Length, in HTTP/1.0, or not
    // ending in chunked leaves the body length unknown: 400 and close.
    if transfer_encoding && (content_length.is_some() || !http11 || !chunked_last) {
        return Err(reject(
            Status::BadRequest,
            "ambiguous request body framing (Transfer-Encoding)",
        ));
    }
    // RFC 9112 §6.1: "A sender MUST NOT apply the chunked transfer coding more than once to a
    // message body": `chunked, chunked` cannot be read correctly, a framing error like those
    // above (and, like them, answered before an unknown coding's 501).
    if chunked_count > 1 {
        return Err(reject(
            Status::BadRequest,
            "chunked transfer coding applied more than once",
        ));
    }
    // RFC 9112 §6.1: "A server that receives a request message with a transfer coding it does
    // not understand SHOULD respond with 501 (Not Implemented)"; the body cannot be skipped
    // either, so the connection closes (as for every rejection). The `400`s above come first:
    // §6.3 says a server MUST answer those so.
    if unknown_coding {
        return Err(reject(
            Status::NotImplemented,
            "a transfer coding other than chunked",
        ));
    }
    let has_body = transfer_encoding || content_length.is_some_and(|n| n > 0);
    let gzip = accepts_gzip(
        request
            .headers
            .iter()
            .filter(|f| f.name.eq_ignore_ascii_case("accept-encoding"))
            .map(|f| f.value),
    );
    let format = negotiate::choose(
        request
            .headers
            .iter()
            .filter(|f| f.name.eq_ignore_ascii_case("accept"))
            .map(|f| f.value),
    );
    let keep_alive = !has_body && !close && (http11 || keep_alive_token);
    Ok(Head {
        method,
        metrics: path_of(target) == Some("/metrics"),
        server_wide,
        gzip,
        format,
        keep_alive,
        http10: !http11,
        scrape_timeout,
    })
}

/// The path of a request target in origin form (`/metrics?x`) or absolute form
/// (`http://host:9464/metrics`, which RFC 9112 §3.2.2 says a server must accept); `None` for
/// the asterisk and authority forms.
fn path_of(target: &str) -> Option<&str> {
    let without_query = target.split(['?', '#']).next().unwrap_or("");
    if without_query.starts_with('/') {
        return Some(without_query);
    }
    let (scheme, rest) = without_query.split_once("://")?;
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
        return None;
    }
    Some(rest.find('/').map_or("/", |at| &rest[at..]))
}

/// Whether `target` is in absolute form (`http://host:port`) with an empty path and no query.
fn empty_absolute_path(target: &str) -> bool {
    let Some((scheme, rest)) = target.split_once("://") else {
        return false;
    };
    (scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https"))
        && !rest.is_empty()
        && !rest.contains(['/', '?', '#'])
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|b| !matches!(b, b' ' | b'\t'));
    let end = v.iter().rposition(|b| !matches!(b, b' ' | b'\t'));
    match (start, end) {
        (Some(s), Some(e)) => &v[s..=e],
        _ => &[],
    }
}

/// The non-empty items of a comma-separated field value, trimmed.
fn list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim)
        .filter(|t| !t.is_empty())
}

/// `1*DIGIT`, without overflow.
fn parse_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    v.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// `Host = uri-host [ ":" port ]` (RFC 9110 §7.2, RFC 3986 §3.2.2): an IP literal in
/// brackets (an IPv6 address or `IPvFuture`, no zone: RFC 6874 §4 has clients remove it), or a
/// reg-name / IPv4 address of unreserved, sub-delims and percent-encoded
/// characters; the port is digits. An empty value is allowed (§7.2: a target without an
/// authority).
fn valid_host(v: &[u8]) -> bool {
    let (host, port) = if v.first() == Some(&b'[') {
        let Some(close) = v.iter().position(|&b| b == b']') else {
            return false;
        };
        let literal = &v[1..close];
        if !(ipv6_address(literal) || ipv_future(literal)) {
            return false;
        }
        match &v[close + 1..] {
            [] => return true,
            [b':', port @ ..] => (&v[..0], port),
            _ => return false,
        }
    } else {
        match v.iter().position(|&b| b == b':') {
            Some(colon) => (&v[..colon], &v[colon + 1..]),
            None => (v, &v[..0]),
        }
    };
    port.iter().all(u8::is_ascii_digit) && reg_name(host)
}

/// `IPv6address` (RFC 3986 §3.2.2), by the standard library's parser of the same grammar: the
/// characters alone (hex digits, colons, dots) let through `::1::2` or `1.2.3.4`.
fn ipv6_address(literal: &[u8]) -> bool {
    std::str::from_utf8(literal).is_ok_and(|s| s.parse::<std::net::Ipv6Addr>().is_ok())
}

/// `IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )` (RFC 3986 §3.2.2).
fn ipv_future(literal: &[u8]) -> bool {
    let [v, rest @ ..] = literal else {
        return false;
    };
    let Some(dot) = rest.iter().position(|&b| b == b'.') else {
        return false;
    };
    let (version, address) = (&rest[..dot], &rest[dot + 1..]);
    v.eq_ignore_ascii_case(&b'v')
        && !version.is_empty()
        && version.iter().all(u8::is_ascii_hexdigit)
        && !address.is_empty()
        && address
            .iter()
            .all(|&b| unreserved(b) || sub_delim(b) || b == b':')
}

fn reg_name(host: &[u8]) -> bool {
    let mut i = 0;
    while i < host.len() {
        let b = host[i];
        if b == b'%' {
            let hex = host.get(i + 1..i + 3);
            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                return false;
            }
            i += 3;
        } else if unreserved(b) || sub_delim(b) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn sub_delim(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(raw: &str) -> Result<Head, Rejection> {
        parse_max(raw, 256)
    }

    fn parse_max(raw: &str, max_headers: usize) -> Result<Head, Rejection> {
        let end = find_head_end(raw.as_bytes(), 0).expect("complete head");
        match parse(&raw.as_bytes()[..end], max_headers) {
            Parsed::Complete { head, .. } => head,
            Parsed::Partial => panic!("partial: {raw:?}"),
        }
    }

    fn status(raw: &str) -> Status {
        parse_str(raw).unwrap_err().status
    }

    #[test]
    fn head_end_with_crlf_bare_lf_and_split_reads() {
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\n", 0), Some(18));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\n\n", 0), Some(16));
        assert_eq!(
            find_head_end(b"GET / HTTP/1.1\r\nA: b\n\r\nrest", 0),
            Some(23)
        );
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nHost: x\r\n", 0), None);
        // Resuming from where the previous read ended still finds a straddling terminator.
        let raw = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        for from in 0..raw.len() {
            assert_eq!(find_head_end(raw, from), Some(raw.len()), "from {from}");
        }
        assert_eq!(find_head_end(b"", 0), None);
        assert_eq!(find_head_end(b"\n", 0), None);
    }

    #[test]
    fn an_unfinished_target_is_too_long_and_anything_else_too_large() {
        let status = |buf: &[u8]| too_large(buf).status;
        assert_eq!(status(b"GET /aaaaaaaa"), Status::UriTooLong);
        assert_eq!(status(b"\r\nGET /aaaaaaaa"), Status::UriTooLong);
        assert_eq!(status(b"GET http://h/aaaa"), Status::UriTooLong);
        assert_eq!(
            status(b"GET /a HTTP/1.1\r\nX: aaaa"),
            Status::HeaderFieldsTooLarge
        );
        assert_eq!(status(b"GET /a HTTP/1.1111"), Status::HeaderFieldsTooLarge);
        assert_eq!(status(b"GETGETGETGET"), Status::HeaderFieldsTooLarge);
        assert_eq!(status(b"\r\n\r\n"), Status::HeaderFieldsTooLarge);
        assert_eq!(status(b""), Status::HeaderFieldsTooLarge);
    }

    #[test]
    fn names_head_reads_the_method_token_only() {
        assert!(names_head(b"HEAD /metrics HTTP/1.1\r\n"));
        assert!(names_head(b"\r\n\nHEAD / HTTP/2.0"));
        assert!(names_head(b"HEAD /aaaa"));
        assert!(!names_head(b"GET /metrics HTTP/1.1\r\n"));
        assert!(!names_head(b"head / HTTP/1.1\r\n")); // methods are case-sensitive
        assert!(!names_head(b"HEADER / HTTP/1.1\r\n"));
        assert!(!names_head(b" HEAD / HTTP/1.1\r\n"));
        assert!(!names_head(b"HEAD"));
        assert!(!names_head(b""));
    }

    #[test]
    fn a_scrape_request() {
        let head = parse_str(
            "GET /metrics HTTP/1.1\r\nHost: localhost:9464\r\nAccept-Encoding: gzip\r\n\
             X-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n",
        )
        .unwrap();
        assert_eq!(
            head,
            Head {
                method: Method::Get,
                metrics: true,
                server_wide: false,
                gzip: true,
                format: Format::Text,
                keep_alive: true,
                http10: false,
                scrape_timeout: Some(Duration::from_secs(10)),
            }
        );
        // Prometheus 2.42's Accept, split over two fields: OpenMetrics.
        let head = parse_str(
            "GET /metrics HTTP/1.1\r\nHost: h\r\nAccept: text/plain;version=0.0.4;q=0.5\r\n\
             Accept: application/openmetrics-text;version=1.0.0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(head.format, Format::OpenMetrics);
    }

    #[test]
    fn targets_in_origin_and_absolute_form() {
        let metrics = |target: &str| {
            parse_str(&format!("GET {target} HTTP/1.1\r\nHost: h\r\n\r\n"))
                .unwrap()
                .metrics
        };
        assert!(metrics("/metrics"));
        assert!(metrics("/metrics?name[]=up"));
        assert!(metrics("http://h:9464/metrics"));
        assert!(metrics("HTTP://h/metrics?x=1"));
        assert!(!metrics("/metrics/"));
        assert!(!metrics("/Metrics"));
        assert!(!metrics("/metricsx"));
        assert!(!metrics("/"));
        // `*` is no path (and only `OPTIONS` may send it: `the_asterisk_form_is_for_options_only`).
        assert_eq!(path_of("*"), None);
        assert!(!metrics("h:9464"));
        assert!(!metrics("ftp://h/metrics"));
        assert!(!metrics("http://h"));
    }

    /// RFC 9112 §3.2.4: the asterisk form is for `OPTIONS` only; with any other method the
    /// request line is invalid.
    #[test]
    fn the_asterisk_form_is_for_options_only() {
        let head = parse_str("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
        assert!(head.server_wide && !head.metrics && head.keep_alive);
        assert_eq!(head.method, Method::Other);
        assert!(parse_str("OPTIONS * HTTP/1.0\r\n\r\n").unwrap().server_wide);
        for method in ["GET", "HEAD", "POST", "CONNECT", "BREW", "options"] {
            assert_eq!(
                status(&format!("{method} * HTTP/1.1\r\nHost: h\r\n\r\n")),
                Status::BadRequest,
                "{method}"
            );
        }
        // Only the target `*` itself, or (RFC 9112 §3.2.4) an absolute form with an empty path
        // and no query, for OPTIONS only.
        for target in [
            "/metrics",
            "/*",
            "*x",
            "http://h/*",
            "http://h/",
            "http://h?q",
            "h:80",
        ] {
            let head = parse_str(&format!("OPTIONS {target} HTTP/1.1\r\nHost: h\r\n\r\n")).unwrap();
            assert!(!head.server_wide, "{target}");
        }
        for target in ["http://h", "HTTPS://h:9464"] {
            let head = parse_str(&format!("OPTIONS {target} HTTP/1.1\r\nHost: h\r\n\r\n")).unwrap();
            assert!(head.server_wide && !head.metrics, "{target}");
            let head = parse_str(&format!("GET {target} HTTP/1.1\r\nHost: h\r\n\r\n")).unwrap();
            assert!(!head.server_wide, "GET {target}");
        }
        assert!(
            !parse_str("GET /* HTTP/1.1\r\nHost: h\r\n\r\n")
                .unwrap()
                .server_wide
        );
    }

    #[test]
    fn host_rules_of_rfc_9112() {
        // 1.1 needs exactly one Host; 1.0 may omit it; nobody may send two.
        assert_eq!(status("GET /metrics HTTP/1.1\r\n\r\n"), Status::BadRequest);
        assert_eq!(
            status("GET /metrics HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"),
            Status::BadRequest
        );
        assert_eq!(
            status("GET /metrics HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n"),
            Status::BadRequest
        );
        assert!(parse_str("GET /metrics HTTP/1.0\r\n\r\n").is_ok());
        for good in [
            "",
            "localhost",
            "localhost:9464",
            "127.0.0.1:80",
            "[::1]",
            "[::1]:9464",
            "[2001:DB8::1]:80",
            "[::ffff:192.0.2.1]",
            "[1:2:3:4:5:6:7:8]",
            "[v1.fe80::a+en1]",
            "[VA1.x]",
            "my-host.example_1.com",
            "%41host",
            "h:",
        ] {
            assert!(
                parse_str(&format!("GET / HTTP/1.1\r\nHost: {good}\r\n\r\n")).is_ok(),
                "{good:?}"
            );
        }
        for bad in [
            "a b",
            "a/b",
            "a:b",
            "a:1:2",
            "[::1",
            "[::1]x",
            "[]",
            "[::g]",
            "%4",
            "%zz",
            "a@b",
            "\"a\"",
            // Characters of an IP literal, not one (RFC 3986 §3.2.2): found by review
            // helper-128, these were served.
            "[::1::2]",
            "[1.2.3.4]",
            "[12345::]",
            "[:::]",
            "[1:2:3:4:5:6:7:8:9]",
            "[::1.2.3]",
            "[vx]",
            "[v1]",
            "[v1.]",
            "[vg.x]",
            "[v.x]",
        ] {
            assert_eq!(
                status(&format!("GET / HTTP/1.1\r\nHost: {bad}\r\n\r\n")),
                Status::BadRequest,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn keep_alive_by_version_and_connection_tokens() {
        let ka = |raw: &str| parse_str(raw).unwrap().keep_alive;
        assert!(ka("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
        assert!(!ka(
            "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
        ));
        assert!(!ka(
            "GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, CLOSE\r\n\r\n"
        ));
        assert!(!ka("GET / HTTP/1.0\r\n\r\n"));
        assert!(ka("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
        // A body the server will not read ends the connection after the response.
        assert!(!ka(
            "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n"
        ));
        assert!(ka("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"));
        assert!(!ka(
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        ));
    }

    #[test]
    fn body_framing_errors() {
        for bad in [
            "Content-Length: x",
            "Content-Length: -1",
            "Content-Length: 1, 2",
            "Content-Length: 99999999999999999999999",
            "Content-Length: 1\r\nContent-Length: 2",
            "Transfer-Encoding: chunked\r\nContent-Length: 3",
            "Transfer-Encoding: chunked, gzip",
        ] {
            assert_eq!(
                status(&format!("POST / HTTP/1.1\r\nHost: h\r\n{bad}\r\n\r\n")),
                Status::BadRequest,
                "{bad:?}"
            );
        }
        assert_eq!(
            status("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Status::BadRequest
        );
        assert!(parse_str("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4, 4\r\n\r\n").is_ok());
    }

    /// RFC 9112 §6.1: "A sender MUST NOT apply the chunked transfer coding more than once":
    /// `chunked` twice, in one field or across fields, is a framing error (`400`), before an
    /// unknown coding's `501`.
    #[test]
    fn chunked_applied_twice_is_a_bad_request() {
        for coding in [
            "chunked, chunked",
            "Chunked,CHUNKED",
            "chunked\r\nTransfer-Encoding: chunked",
            "chunked\r\nTransfer-Encoding: gzip, chunked",
            "gzip, chunked, chunked",
        ] {
            let head = format!("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: {coding}\r\n\r\n");
            assert_eq!(
                parse_str(&head).unwrap_err(),
                reject(
                    Status::BadRequest,
                    "chunked transfer coding applied more than once"
                ),
                "{coding:?}"
            );
        }
    }

    /// RFC 9112 §6.1: a transfer coding the server does not understand (any but `chunked`) is
    /// `501`, after §6.3's framing errors (`400`).
    #[test]
    fn an_unknown_transfer_coding_is_not_implemented() {
        for coding in [
            "gzip, chunked",
            "foo, chunked",
            "x-custom , Chunked",
            "identity, chunked",
            "gzip\r\nTransfer-Encoding: chunked",
        ] {
            for method in ["GET", "POST", "BREW"] {
                assert_eq!(
                    status(&format!(
                        "{method} /metrics HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: {coding}\r\n\r\n"
                    )),
                    Status::NotImplemented,
                    "{method} {coding:?}"
                );
            }
        }
        // Understood: served, then the connection closes (the body is not read).
        for chunked in ["chunked", "CHUNKED", " chunked ", "chunked,", ",chunked"] {
            let head = parse_str(&format!(
                "GET /metrics HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: {chunked}\r\n\r\n"
            ))
            .unwrap_or_else(|e| panic!("{chunked:?}: {e:?}"));
            assert!(!head.keep_alive, "{chunked:?}");
        }
        // §6.3's framing errors stay 400.
        for framing in [
            "Transfer-Encoding: gzip",
            "Transfer-Encoding: chunked, gzip",
            "Transfer-Encoding: gzip, chunked\r\nContent-Length: 3",
        ] {
            assert_eq!(
                status(&format!("GET / HTTP/1.1\r\nHost: h\r\n{framing}\r\n\r\n")),
                Status::BadRequest,
                "{framing:?}"
            );
        }
        assert_eq!(
            status("GET / HTTP/1.0\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            Status::BadRequest
        );
    }

    #[test]
    fn header_count_limit_is_exact() {
        let with = |n: usize| {
            let mut raw = String::from("GET /metrics HTTP/1.1\r\nHost: h\r\n");
            for i in 1..n {
                raw.push_str(&format!("x{i}: y\r\n"));
            }
            raw.push_str("\r\n");
            raw
        };
        for max in [8, 32, 33, 100, 256] {
            assert!(
                parse_max(&with(max), max).is_ok(),
                "{max} fields, limit {max}"
            );
            assert_eq!(
                parse_max(&with(max + 1), max).unwrap_err().status,
                Status::HeaderFieldsTooLarge,
                "{} fields, limit {max}",
                max + 1
            );
        }
        // Any head of up to 1 KiB fits the default of 256 fields.
        let mut raw = String::from("GET /metrics HTTP/1.1\r\nHost: h\r\n");
        while raw.len() + 4 + 2 <= 1024 {
            raw.push_str("a:\r\n");
        }
        raw.push_str("\r\n");
        assert!(raw.len() <= 1024);
        assert!(parse_max(&raw, 256).is_ok());
    }

    #[test]
    fn malformed_heads_are_rejected_with_the_right_status() {
        assert_eq!(
            status("GET / HTTP/2.0\r\nHost: h\r\n\r\n"),
            Status::VersionNotSupported
        );
        assert_eq!(
            status("GET / HTTP/1.1 \r\nHost: h\r\n\r\n"),
            Status::BadRequest
        );
        assert_eq!(
            status("GET  / HTTP/1.1\r\nHost: h\r\n\r\n"),
            Status::BadRequest
        );
        assert_eq!(
            status("GET / HTTP/1.1\r\nHost : h\r\n\r\n"),
            Status::BadRequest
        );
        assert_eq!(
            status("GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n"),
            Status::BadRequest
        );
        assert_eq!(
            status("GET / HTTP/1.1\r\nBad\x01: h\r\n\r\n"),
            Status::BadRequest
        );
        assert_eq!(
            status("GET / HTTP/1.1\r\nA: b\x00c\r\nHost: h\r\n\r\n"),
            Status::BadRequest
        );
        assert_eq!(status("\x16\x03\x01\x02\x00\n\n"), Status::BadRequest);
    }

    /// RFC 9110 §2.5: a later minor version of HTTP/1 is processed as HTTP/1.1 (persistent,
    /// `Host` required); another major version, or a version token that is not
    /// `HTTP/DIGIT.DIGIT` (RFC 9112 §2.3), is not.
    #[test]
    fn a_later_http_1_minor_version_is_read_as_1_1() {
        for version in ["HTTP/1.2", "HTTP/1.5", "HTTP/1.9"] {
            let head = parse_str(&format!("GET /metrics {version}\r\nHost: h\r\n\r\n"))
                .unwrap_or_else(|e| panic!("{version}: {e:?}"));
            assert!(head.metrics && head.keep_alive && !head.http10, "{version}");
            assert_eq!(head.method, Method::Get);
            let head = parse_str(&format!(
                "\r\nHEAD /metrics?a {version}\nHost: h\nAccept-Encoding: gzip\n\n"
            ))
            .unwrap();
            assert!(head.metrics && head.keep_alive && head.gzip, "{version}");
            assert_eq!(head.method, Method::Head);
            assert!(
                !parse_str(&format!(
                    "GET / {version}\r\nHost: h\r\nConnection: close\r\n\r\n"
                ))
                .unwrap()
                .keep_alive
            );
            // HTTP/1.1's rules apply: a Host is required, a bad header is still refused.
            assert_eq!(
                status(&format!("GET / {version}\r\n\r\n")),
                Status::BadRequest
            );
            assert_eq!(
                status(&format!("GET / {version}\r\nHost: h\r\nBad\x01: v\r\n\r\n")),
                Status::BadRequest
            );
        }
        for version in [
            "HTTP/2.0", "HTTP/0.9", "HTTP/3.0", "HTTP/2.1", "HTTP/0.1", "HTTP/9.9",
        ] {
            assert_eq!(
                status(&format!("GET / {version}\r\nHost: h\r\n\r\n")),
                Status::VersionNotSupported,
                "{version}"
            );
        }
        // Not `HTTP/DIGIT.DIGIT`, or not at the end of the request line: never read as 1.1.
        for bad in [
            "GET / HTTP/1.10\r\nHost: h\r\n\r\n",
            "GET / http/1.2\r\nHost: h\r\n\r\n",
            "GET / HTTP/1.2 \r\nHost: h\r\n\r\n",
            "GET  HTTP/1.2\r\nHost: h\r\n\r\n",
            "GET / HTTP/1.a\r\nHost: h\r\n\r\n",
        ] {
            assert!(parse_str(bad).is_err(), "{bad:?}");
        }
        let later = |at| Some(Version::Later11 { at });
        assert_eq!(version_token(b"GET / HTTP/1.2\r\n"), later(13));
        assert_eq!(version_token(b"\n\r\nGET / HTTP/1.7\n"), later(16));
        assert_eq!(version_token(b"GET / HTTP/1.1\r\n"), Some(Version::Other));
        assert_eq!(version_token(b"GET / HTTP/2.0\r\n"), Some(Version::Other));
        assert_eq!(version_token(b"HTTP/1.2\r\n"), None);
        assert_eq!(version_token(b"GET / HTTP/1.2"), None);
        assert_eq!(version_token(b""), None);
        for bad in [
            "HTTP/1.10",
            "HTTP/11.1",
            "HTTP/1.1x",
            "http/1.1",
            "HTTP/1.",
            "",
        ] {
            let line = format!("GET / {bad}\r\n");
            assert_eq!(
                version_token(line.as_bytes()),
                Some(Version::Malformed),
                "{bad:?}"
            );
            let head = format!("GET / {bad}\r\nHost: h\r\n\r\n");
            assert_eq!(status(&head), Status::BadRequest, "{bad:?}");
        }
    }

    #[test]
    fn empty_lines_stop_at_a_bare_cr() {
        assert_eq!(empty_lines(b""), 0);
        assert_eq!(empty_lines(b"\r\n\nGET"), 3);
        assert_eq!(empty_lines(b"\r\n\r\n\rGET"), 4);
        assert_eq!(empty_lines(b"\n\n\r\r\n"), 2);
        assert_eq!(empty_lines(b"\r\n\r"), 2);
        assert_eq!(empty_lines(b"\r"), 0);
        assert_eq!(empty_lines(b"GET\n\n"), 0);
    }

    #[test]
    fn leading_empty_lines_are_skipped() {
        assert!(matches!(parse(b"\r\n\r\n", 256), Parsed::Partial));
        let raw = "\r\nGET /metrics HTTP/1.1\r\nHost: h\r\n\r\n";
        let end = find_head_end(raw.as_bytes(), 0).unwrap();
        // The first "end" found is the leading empty line plus the next line break.
        let end = if matches!(parse(&raw.as_bytes()[..end], 256), Parsed::Partial) {
            find_head_end(raw.as_bytes(), end).unwrap()
        } else {
            end
        };
        assert!(matches!(
            parse(&raw.as_bytes()[..end], 256),
            Parsed::Complete {
                head: Ok(Head { metrics: true, .. }),
                ..
            }
        ));
    }

    #[test]
    fn methods_gzip_and_the_scrape_timeout_header() {
        let h =
            parse_str("HEAD /metrics HTTP/1.1\r\nHost: h\r\nAccept-Encoding: br, gzip;q=0\r\n\r\n")
                .unwrap();
        assert_eq!((h.method, h.gzip), (Method::Head, false));
        assert_eq!(
            parse_str("DELETE /metrics HTTP/1.1\r\nHost: h\r\n\r\n")
                .unwrap()
                .method,
            Method::Other
        );
        let timeout = |v: &str| {
            parse_str(&format!(
                "GET / HTTP/1.1\r\nHost: h\r\nX-Prometheus-Scrape-Timeout-Seconds: {v}\r\n\r\n"
            ))
            .unwrap()
            .scrape_timeout
        };
        assert_eq!(timeout("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(timeout("0"), None);
        assert_eq!(timeout("-1"), None);
        assert_eq!(timeout("NaN"), None);
        assert_eq!(timeout("inf"), None);
        assert_eq!(timeout("1e300"), Some(Duration::from_secs(86_400)));
        assert_eq!(timeout("soon"), None);
    }

    /// RFC 9110 §9's methods and PATCH (RFC 5789) are known; any other token, or one of those
    /// in another case (RFC 9110 §9.1: methods are case-sensitive), is not (`501`).
    #[test]
    fn methods_are_recognised_case_sensitively() {
        let method = |m: &str| {
            parse_str(&format!("{m} /metrics HTTP/1.1\r\nHost: h\r\n\r\n"))
                .unwrap()
                .method
        };
        assert_eq!(method("GET"), Method::Get);
        assert_eq!(method("HEAD"), Method::Head);
        for known in [
            "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
        ] {
            assert_eq!(method(known), Method::Other, "{known}");
        }
        for unknown in [
            "FOO", "BREW", "get", "Get", "head", "post", "PROPFIND", "GETS", "PRI", "M-SEARCH",
        ] {
            assert_eq!(method(unknown), Method::Unknown, "{unknown}");
        }
    }
}
