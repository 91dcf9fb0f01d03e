//! Response heads: the status codes the server answers with, and the header block it writes.

use std::time::{SystemTime, UNIX_EPOCH};

/// Every status the server answers with (the `code` label of
/// `agentcore_telemetry_http_requests_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Ok,
    BadRequest,
    NotFound,
    MethodNotAllowed,
    RequestTimeout,
    UriTooLong,
    HeaderFieldsTooLarge,
    InternalServerError,
    NotImplemented,
    ServiceUnavailable,
    VersionNotSupported,
}

impl Status {
    /// Every status, in the order of [`index`](Self::index).
    pub(crate) const ALL: [Status; 11] = [
        Status::Ok,
        Status::BadRequest,
        Status::NotFound,
        Status::MethodNotAllowed,
        Status::RequestTimeout,
        Status::UriTooLong,
        Status::HeaderFieldsTooLarge,
        Status::InternalServerError,
        Status::NotImplemented,
        Status::ServiceUnavailable,
        Status::VersionNotSupported,
    ];

    /// Position in [`ALL`](Self::ALL).
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    pub(crate) fn code(self) -> &'static str {
        match self {
            Status::Ok => "200",
            Status::BadRequest => "400",
            Status::NotFound => "404",
            Status::MethodNotAllowed => "405",
            Status::RequestTimeout => "408",
            Status::UriTooLong => "414",
            Status::HeaderFieldsTooLarge => "431",
            Status::InternalServerError => "500",
            Status::NotImplemented => "501",
            Status::ServiceUnavailable => "503",
            Status::VersionNotSupported => "505",
        }
    }

    fn reason(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::BadRequest => "Bad Request",
            Status::NotFound => "Not Found",
            Status::MethodNotAllowed => "Method Not Allowed",
            Status::RequestTimeout => "Request Timeout",
            Status::UriTooLong => "URI Too Long",
            Status::HeaderFieldsTooLarge => "Request Header Fields Too Large",
            Status::InternalServerError => "Internal Server Error",
            Status::NotImplemented => "Not Implemented",
            Status::ServiceUnavailable => "Service Unavailable",
            Status::VersionNotSupported => "HTTP Version Not Supported",
        }
    }
}

/// What goes into a response head besides the status.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeadFields {
    /// `Content-Type`; `None` for a response without content (`OPTIONS *`).
    pub(crate) content_type: Option<&'static str>,
    pub(crate) content_length: usize,
    /// `Content-Encoding: gzip`.
    pub(crate) gzip: bool,
    /// `Vary: Accept-Encoding` (a `/metrics` body depends on it).
    pub(crate) vary: bool,
    /// `Vary: Accept` too (the body's format depends on `Accept`: OpenMetrics is enabled).
    pub(crate) vary_accept: bool,
    /// `Allow: GET, HEAD` (with `405`, and with the `200` to `OPTIONS *`).
    pub(crate) allow: bool,
    /// `Connection: close`: the server closes the connection after this response.
    pub(crate) close: bool,
    /// `Connection: keep-alive`: the connection stays open after answering an HTTP/1.0
    /// request that asked for it (RFC 9112 §9.3 and its Appendix C.2.2: an HTTP/1.0 client
    /// keeps a connection only when the response says so; without it, such a client waits for
    /// the server to close). Set by the connection for each response, not by its callers.
    pub(crate) keep_alive: bool,
}

/// Writes `HTTP/1.1 <status>` and the header block, with its final empty line, into `out`.
pub(crate) fn write_head(out: &mut Vec<u8>, status: Status, fields: &HeadFields, date: &[u8]) {
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.code().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.reason().as_bytes());
    out.extend_from_slice(b"\r\nDate: ");
    out.extend_from_slice(date);
    if let Some(content_type) = fields.content_type {
        out.extend_from_slice(b"\r\nContent-Type: ");
        out.extend_from_slice(content_type.as_bytes());
    }
    out.extend_from_slice(b"\r\nContent-Length: ");
    out.extend_from_slice(itoa::Buffer::new().format(fields.content_length).as_bytes());
    if fields.gzip {
        out.extend_from_slice(b"\r\nContent-Encoding: gzip");
    }
    match (fields.vary_accept, fields.vary) {
        (true, true) => out.extend_from_slice(b"\r\nVary: Accept, Accept-Encoding"),
        (true, false) => out.extend_from_slice(b"\r\nVary: Accept"),
        (false, true) => out.extend_from_slice(b"\r\nVary: Accept-Encoding"),
        (false, false) => {}
    }
    if fields.allow {
        out.extend_from_slice(b"\r\nAllow: GET, HEAD");
    }
    if fields.close {
        out.extend_from_slice(b"\r\nConnection: close");
    } else if fields.keep_alive {
        out.extend_from_slice(b"\r\nConnection: keep-alive");
    }
    out.extend_from_slice(b"\r\n\r\n");
}

/// The `Date` header's value (RFC 9110 §5.6.7, IMF-fixdate), formatted once per second.
#[derive(Debug)]
pub(crate) struct DateCache {
    second: u64,
    text: [u8; 29],
}

impl DateCache {
    pub(crate) fn new() -> Self {
        DateCache {
            second: u64::MAX,
            text: [b' '; 29],
        }
    }

    /// The current date, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
    pub(crate) fn now(&mut self) -> &[u8] {
        let second = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if second != self.second {
            self.second = second;
            self.text = imf_fixdate(second);
        }
        &self.text
    }
}

/// Formats seconds since the Unix epoch as an IMF-fixdate.
fn imf_fixdate(secs: u64) -> [u8; 29] {
    const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let mut out = [0u8; 29];
    let two = |out: &mut [u8], v: u64| {
        out[0] = b'0' + (v / 10) as u8;
        out[1] = b'0' + (v % 10) as u8;
    };
    out[..3].copy_from_slice(DAYS[(days % 7) as usize]);
    out[3..5].copy_from_slice(b", ");
    two(&mut out[5..7], day);
    out[7] = b' ';
    out[8..11].copy_from_slice(MONTHS[(month - 1) as usize]);
    out[11] = b' ';
    let y = year.min(9999);
    two(&mut out[12..14], y / 100);
    two(&mut out[14..16], y % 100);
    out[16] = b' ';
    two(&mut out[17..19], rem / 3600);
    out[19] = b':';
    two(&mut out[20..22], rem / 60 % 60);
    out[22] = b':';
    two(&mut out[23..25], rem % 60);
    out[25..29].copy_from_slice(b" GMT");
    out
}

/// Year, month (1–12) and day (1–31) of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imf_fixdate_matches_known_dates() {
        let cases = [
            (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
            (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"), // RFC 9110's example
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
            (1_709_251_199, "Thu, 29 Feb 2024 23:59:59 GMT"),
            (4_102_444_800, "Fri, 01 Jan 2100 00:00:00 GMT"),
            (253_402_300_799, "Fri, 31 Dec 9999 23:59:59 GMT"),
        ];
        for (secs, text) in cases {
            assert_eq!(std::str::from_utf8(&imf_fixdate(secs)).unwrap(), text);
        }
    }

    #[test]
    fn statuses_are_listed_in_index_order() {
        for (i, s) in Status::ALL.iter().enumerate() {
            assert_eq!(s.index(), i);
            assert_eq!(s.code().len(), 3);
        }
    }

    #[test]
    fn head_has_every_requested_field() {
        let mut out = Vec::new();
        let fields = HeadFields {
            content_type: Some("text/plain"),
            content_length: 42,
            gzip: true,
            vary: true,
            vary_accept: false,
            allow: true,
            close: true,
            keep_alive: false,
        };
        write_head(
            &mut out,
            Status::Ok,
            &fields,
            b"Thu, 01 Jan 1970 00:00:00 GMT",
        );
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "HTTP/1.1 200 OK\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\nContent-Type: text/plain\r\n\
             Content-Length: 42\r\nContent-Encoding: gzip\r\nVary: Accept-Encoding\r\n\
             Allow: GET, HEAD\r\nConnection: close\r\n\r\n"
        );
        let open = HeadFields {
            close: false,
            keep_alive: true,
            ..fields
        };
        write_head(
            &mut out,
            Status::Ok,
            &open,
            b"Thu, 01 Jan 1970 00:00:00 GMT",
        );
        assert!(std::str::from_utf8(&out)
            .unwrap()
            .ends_with("Allow: GET, HEAD\r\nConnection: keep-alive\r\n\r\n"));
        // No content, no Content-Type (`OPTIONS *`).
        let empty = HeadFields {
            content_type: None,
            content_length: 0,
            gzip: false,
            vary: false,
            ..open
        };
        write_head(
            &mut out,
            Status::Ok,
            &empty,
            b"Thu, 01 Jan 1970 00:00:00 GMT",
        );
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "HTTP/1.1 200 OK\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\nContent-Length: 0\r\n\
             Allow: GET, HEAD\r\nConnection: keep-alive\r\n\r\n"
        );
    }
}
