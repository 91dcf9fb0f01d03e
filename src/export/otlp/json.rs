//! OTLP JSON, by OTLP's own rules (opentelemetry-proto `docs/specification.md`, "JSON
//! Protobuf Encoding"), which differ from protobuf's generic JSON mapping:
//!
//! * `traceId`, `spanId`, `parentSpanId` (and a link's ids) are **lowercase hex** strings,
//!   not base64;
//! * enums (`kind`, `status.code`) are **integers**, never names;
//! * keys are lowerCamelCase;
//! * 64-bit integers (`startTimeUnixNano`, `timeUnixNano`, `intValue`) are **decimal
//!   strings**; 32-bit ones (`flags`, `dropped*Count`) are numbers;
//! * doubles are numbers, except the non-finite ones, which are the strings `"NaN"`,
//!   `"Infinity"` and `"-Infinity"` (proto3 JSON);
//! * fields at their default value are omitted (receivers treat absent as default).
//!
//! The same encoder writes the console exporter's lines (`TracesData` per line, the OTLP
//! file format), whose one key, `resourceSpans`, is the request's.

use crate::export::source::ExportSpan;
use crate::propagation::hex;
use crate::tracer::{KeyValue, SpanStatus, Value};

use super::proto::{kind_number, status_number};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends a trace id as a quoted string of 32 lowercase hex digits, in one copy (the digits
/// eight per word: `propagation::hex`).
fn put_trace_id(buf: &mut Vec<u8>, id: u128) {
    let mut out = [b'"'; 34];
    let mut digits = [0; 32];
    hex::encode_u128(id, &mut digits);
    out[1..33].copy_from_slice(&digits);
    buf.extend_from_slice(&out);
}

/// Appends a span id as a quoted string of 16 lowercase hex digits, in one copy.
fn put_span_id(buf: &mut Vec<u8>, id: u64) {
    let mut out = [b'"'; 18];
    let mut digits = [0; 16];
    hex::encode_u64(id, &mut digits);
    out[1..17].copy_from_slice(&digits);
    buf.extend_from_slice(&out);
}

/// Appends `s` as a JSON string: RFC 8259 escaping (`"`, `\\` and the C0 controls), and
/// also `\uXXXX` for the characters a terminal may act on when the line is printed (the
/// console exporter writes these strings to standard output): DEL (U+007F), the C1 controls
/// (U+0080–U+009F: U+009B is an 8-bit CSI, U+0085 a line break), the line and paragraph
/// separators and bidi embeddings and overrides (U+2028–U+202E) and the bidi isolates
/// (U+2066–U+2069). The JSON decodes to the same string either way (OTLP/JSON receivers
/// included): only a few more bytes for those rare characters.
///
/// Printable ASCII other than `"` and `\\` is copied as it is, and most strings (names, keys,
/// values) are nothing else: the loop skips such bytes eight at a time ([`plain_word`], the
/// last word overlapping the one before, a string shorter than a word padded into one) and
/// looks at the others one by one, for the rest of their eight-byte word. (Byte by byte throughout, these strings were 40% of an encoded
/// span's instructions under callgrind.)
pub(crate) fn put_string(buf: &mut Vec<u8>, s: &str) {
    buf.push(b'"');
    let bytes = s.as_bytes();
    if bytes.len() < 8 {
        // Shorter than a word: padded with spaces (plain) into one.
        let mut word = [b' '; 8];
        if let Some(w) = word.get_mut(..bytes.len()) {
            w.copy_from_slice(bytes);
        }
        if plain_word(u64::from_le_bytes(word)) {
            buf.extend_from_slice(bytes);
            buf.push(b'"');
            return;
        }
    }
    let mut start = 0;
    let mut i = 0;
    // Bytes before `slow_until` are looked at one by one (their word was not plain).
    let mut slow_until = 0;
    while i < bytes.len() {
        if i >= slow_until && bytes.len() >= 8 {
            // The next eight bytes or, fewer left, the string's last eight, which end with
            // them (a string shorter than a word goes byte by byte).
            let at = i.min(bytes.len() - 8);
            let word = bytes.get(at..at + 8).and_then(|w| w.try_into().ok());
            let word = u64::from_le_bytes(word.unwrap_or([0; 8]));
            if plain_word(word) {
                i = at + 8;
                continue;
            }
            slow_until = at + 8;
        }
        let b = bytes[i];
        // (The escape, or empty for `\uXXXX`; the character's width in bytes.)
        let (escape, width): (&[u8], usize) = match b {
            b'"' => (b"\\\"", 1),
            b'\\' => (b"\\\\", 1),
            b'\n' => (b"\\n", 1),
            b'\r' => (b"\\r", 1),
            b'\t' => (b"\\t", 1),
            0x00..=0x1f | 0x7f => (b"", 1),
            // U+0080–U+009F: C2 80 – C2 9F.
            0xc2 if matches!(bytes.get(i + 1), Some(0x80..=0x9f)) => (b"", 2),
            // U+2028–U+202E: E2 80 A8 – E2 80 AE; U+2066–U+2069: E2 81 A6 – E2 81 A9.
            0xe2 if matches!(
                (bytes.get(i + 1), bytes.get(i + 2)),
                (Some(0x80), Some(0xa8..=0xae)) | (Some(0x81), Some(0xa6..=0xa9))
            ) =>
            {
                (b"", 3)
            }
            _ => {
                i += 1;
                continue;
            }
        };
        buf.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            // `i` starts a character (a lead byte was matched), so this decodes it.
            let c = s[i..].chars().next().map_or(0, u32::from);
            buf.extend_from_slice(b"\\u");
            for shift in [12, 8, 4, 0] {
                buf.push(HEX[((c >> shift) & 15) as usize]);
            }
        } else {
            buf.extend_from_slice(escape);
        }
        i += width;
        start = i;
    }
    buf.extend_from_slice(&bytes[start..]);
    buf.push(b'"');
}

/// Whether all eight bytes of `word` are printable ASCII other than `"` and `\\` (0x20..=0x7e),
/// the bytes [`put_string`] copies unchanged. Word-at-a-time tests (each exact about whether
/// *some* byte matches, which is all this needs: a carry or borrow between bytes only starts
/// at a byte that matches itself):
/// a byte below 0x20 borrows in `word - 0x20…`; `"` and `\\` are a zero byte after an XOR;
/// a byte of 0x7f or more has its top bit set in `word + 0x01…` or in `word`.
#[inline]
fn plain_word(word: u64) -> bool {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_le_bytes([0x80; 8]);
    let below = |w: u64, n: u8| w.wrapping_sub(ONES * u64::from(n)) & !w & HIGH;
    let control = below(word, 0x20);
    let quote = below(word ^ (ONES * u64::from(b'"')), 1);
    let backslash = below(word ^ (ONES * u64::from(b'\\')), 1);
    let high = (word.wrapping_add(ONES) | word) & HIGH;
    control | quote | backslash | high == 0
}

fn put_key(buf: &mut Vec<u8>, first: &mut bool, key: &str) {
    if !*first {
        buf.push(b',');
    }
    *first = false;
    buf.push(b'"');
    buf.extend_from_slice(key.as_bytes());
    buf.extend_from_slice(b"\":");
}

fn put_u64_string(buf: &mut Vec<u8>, v: u64) {
    buf.push(b'"');
    buf.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    buf.push(b'"');
}

fn put_u32(buf: &mut Vec<u8>, v: u32) {
    buf.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

fn put_f64(buf: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        buf.extend_from_slice(b"\"NaN\"");
    } else if v.is_infinite() {
        buf.extend_from_slice(if v > 0.0 {
            b"\"Infinity\""
        } else {
            b"\"-Infinity\""
        });
    } else {
        // ryu prints the shortest representation that round-trips, and always as a valid
        // JSON number ("1.0", "1e16", "-0.0").
        buf.extend_from_slice(ryu::Buffer::new().format_finite(v).as_bytes());
    }
}

fn put_value(buf: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Str(s) => {
            buf.extend_from_slice(b"{\"stringValue\":");
            put_string(buf, s);
        }
        Value::Bool(b) => {
            buf.extend_from_slice(if *b {
                b"{\"boolValue\":true"
            } else {
                b"{\"boolValue\":false"
            });
        }
        Value::I64(i) => {
            buf.extend_from_slice(b"{\"intValue\":\"");
            buf.extend_from_slice(itoa::Buffer::new().format(*i).as_bytes());
            buf.push(b'"');
        }
        Value::F64(f) => {
            buf.extend_from_slice(b"{\"doubleValue\":");
            put_f64(buf, *f);
        }
    }
    buf.push(b'}');
}

/// Appends `"attributes":[...]` (after a comma unless `first`), nothing when empty.
fn put_attributes(buf: &mut Vec<u8>, first: &mut bool, attributes: &[KeyValue]) {
    if attributes.is_empty() {
        return;
    }
    put_key(buf, first, "attributes");
    buf.push(b'[');
    for (i, kv) in attributes.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        buf.extend_from_slice(b"{\"key\":");
        put_string(buf, &kv.key);
        buf.extend_from_slice(b",\"value\":");
        put_value(buf, &kv.value);
        buf.push(b'}');
    }
    buf.push(b']');
}

fn put_count(buf: &mut Vec<u8>, first: &mut bool, key: &str, v: u32) {
    if v != 0 {
        put_key(buf, first, key);
        put_u32(buf, v);
    }
}

/// Appends one span as a JSON `Span` object.
pub(crate) fn encode_span(buf: &mut Vec<u8>, span: &ExportSpan<'_>) {
    let r = span.record;
    let first = &mut true;
    buf.push(b'{');
    put_key(buf, first, "traceId");
    put_trace_id(buf, r.trace_id.to_u128());
    put_key(buf, first, "spanId");
    put_span_id(buf, r.span_id.to_u64());
    if !span.trace_state.is_empty() {
        put_key(buf, first, "traceState");
        put_string(buf, span.trace_state);
    }
    if let Some(parent) = r.parent_span_id {
        put_key(buf, first, "parentSpanId");
        put_span_id(buf, parent.to_u64());
    }
    let flags = span.otlp_flags();
    if flags != 0 {
        put_key(buf, first, "flags");
        put_u32(buf, flags);
    }
    if !r.name.is_empty() {
        put_key(buf, first, "name");
        put_string(buf, &r.name);
    }
    put_key(buf, first, "kind");
    buf.push(b'0' + kind_number(r.kind) as u8);
    if r.start_time_unix_nano != 0 {
        put_key(buf, first, "startTimeUnixNano");
        put_u64_string(buf, r.start_time_unix_nano);
    }
    if r.end_time_unix_nano != 0 {
        put_key(buf, first, "endTimeUnixNano");
        put_u64_string(buf, r.end_time_unix_nano);
    }
    put_attributes(buf, first, &r.attributes);
    put_count(
        buf,
        first,
        "droppedAttributesCount",
        r.dropped_attributes_count,
    );
    if !r.events.is_empty() {
        put_key(buf, first, "events");
        buf.push(b'[');
        for (i, event) in r.events.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            let f = &mut true;
            buf.push(b'{');
            if event.time_unix_nano != 0 {
                put_key(buf, f, "timeUnixNano");
                put_u64_string(buf, event.time_unix_nano);
            }
            if !event.name.is_empty() {
                put_key(buf, f, "name");
                put_string(buf, &event.name);
            }
            put_attributes(buf, f, &event.attributes);
            put_count(
                buf,
                f,
                "droppedAttributesCount",
                event.dropped_attributes_count,
            );
            buf.push(b'}');
        }
        buf.push(b']');
    }
    put_count(buf, first, "droppedEventsCount", r.dropped_events_count);
    if !r.links.is_empty() {
        put_key(buf, first, "links");
        buf.push(b'[');
        for (i, link) in r.links.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            let f = &mut true;
            buf.push(b'{');
            put_key(buf, f, "traceId");
            put_trace_id(buf, link.trace_id.to_u128());
            put_key(buf, f, "spanId");
            put_span_id(buf, link.span_id.to_u64());
            put_attributes(buf, f, &link.attributes);
            put_count(
                buf,
                f,
                "droppedAttributesCount",
                link.dropped_attributes_count,
            );
            buf.push(b'}');
        }
        buf.push(b']');
    }
    put_count(buf, first, "droppedLinksCount", r.dropped_links_count);
    if r.status != SpanStatus::Unset || !r.status_message.is_empty() {
        put_key(buf, first, "status");
        let f = &mut true;
        buf.push(b'{');
        if !r.status_message.is_empty() {
            put_key(buf, f, "message");
            put_string(buf, &r.status_message);
        }
        put_key(buf, f, "code");
        buf.push(b'0' + status_number(r.status) as u8);
        buf.push(b'}');
    }
    buf.push(b'}');
}

/// A `Resource` object.
pub(crate) fn encode_resource(attributes: &[KeyValue]) -> Vec<u8> {
    let mut buf = vec![b'{'];
    put_attributes(&mut buf, &mut true, attributes);
    buf.push(b'}');
    buf
}

/// An `InstrumentationScope` object.
pub(crate) fn encode_scope(name: &str, version: &str) -> Vec<u8> {
    let mut buf = b"{\"name\":".to_vec();
    put_string(&mut buf, name);
    buf.extend_from_slice(b",\"version\":");
    put_string(&mut buf, version);
    buf.push(b'}');
    buf
}

const PREFIX_A: &[u8] = b"{\"resourceSpans\":[{\"resource\":";
const PREFIX_B: &[u8] = b",\"scopeSpans\":[{\"scope\":";
const PREFIX_C: &[u8] = b",\"spans\":[";
const SUFFIX: &[u8] = b"]}]}]}";

/// The size of the request [`write_request`] writes around `n` spans of `spans_len` bytes.
pub(crate) fn request_len(resource: &[u8], scope: &[u8], spans_len: usize, n: usize) -> usize {
    PREFIX_A.len()
        + resource.len()
        + PREFIX_B.len()
        + scope.len()
        + PREFIX_C.len()
        + spans_len
        + n.saturating_sub(1)
        + SUFFIX.len()
}

/// Appends the request object (`ExportTraceServiceRequest`, which is also a `TracesData`)
/// around the given span objects.
pub(crate) fn write_request<'a>(
    out: &mut Vec<u8>,
    resource: &[u8],
    scope: &[u8],
    spans: impl Iterator<Item = &'a [u8]>,
) {
    out.extend_from_slice(PREFIX_A);
    out.extend_from_slice(resource);
    out.extend_from_slice(PREFIX_B);
    out.extend_from_slice(scope);
    out.extend_from_slice(PREFIX_C);
    for (i, s) in spans.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(s);
    }
    out.extend_from_slice(SUFFIX);
}

/// A parsed JSON value (only what reading a response needs).
#[derive(Debug, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// A small recursive-descent JSON parser with a depth limit (a hostile collector cannot
/// overflow the stack: the body is capped at 4 MiB and nesting at 64 levels).
struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    depth: usize,
}

const MAX_DEPTH: usize = 64;

impl Parser<'_> {
    fn ws(&mut self) {
        while self
            .s
            .get(self.i)
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.i += 1;
        }
    }

    fn eat(&mut self, lit: &[u8]) -> Result<(), String> {
        if self.s[self.i..].starts_with(lit) {
            self.i += lit.len();
            Ok(())
        } else {
            Err(self.error("unexpected token"))
        }
    }

    fn error(&self, what: &str) -> String {
        format!("malformed JSON response: {what} at byte {}", self.i)
    }

    fn value(&mut self) -> Result<Json, String> {
        self.ws();
        match self.s.get(self.i) {
            Some(b'{') => {
                self.enter()?;
                self.i += 1;
                let mut members = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                } else {
                    loop {
                        self.ws();
                        let key = self.string()?;
                        self.ws();
                        self.eat(b":")?;
                        let v = self.value()?;
                        members.push((key, v));
                        self.ws();
                        match self.s.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b'}') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(self.error("expected ',' or '}'")),
                        }
                    }
                }
                self.depth -= 1;
                Ok(Json::Object(members))
            }
            Some(b'[') => {
                self.enter()?;
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                } else {
                    loop {
                        items.push(self.value()?);
                        self.ws();
                        match self.s.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b']') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(self.error("expected ',' or ']'")),
                        }
                    }
                }
                self.depth -= 1;
                Ok(Json::Array(items))
            }
            Some(b'"') => self.string().map(Json::String),
            Some(b't') => self.eat(b"true").map(|_| Json::Bool(true)),
            Some(b'f') => self.eat(b"false").map(|_| Json::Bool(false)),
            Some(b'n') => self.eat(b"null").map(|_| Json::Null),
            Some(b'-' | b'0'..=b'9') => {
                let start = self.i;
                while self
                    .s
                    .get(self.i)
                    .is_some_and(|b| matches!(b, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'))
                {
                    self.i += 1;
                }
                std::str::from_utf8(&self.s[start..self.i])
                    .ok()
                    .and_then(|t| t.parse().ok())
                    .map(Json::Number)
                    .ok_or_else(|| self.error("bad number"))
            }
            _ => Err(self.error("unexpected character")),
        }
    }

    fn enter(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        Ok(())
    }

    /// The four hexadecimal digits at `at` (exactly four: no sign, as `from_str_radix` takes).
    fn hex4(&self, at: usize) -> Option<u32> {
        self.s
            .get(at..at + 4)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u32::from_str_radix(h, 16).ok())
    }

    fn string(&mut self) -> Result<String, String> {
        if self.s.get(self.i) != Some(&b'"') {
            return Err(self.error("expected a string"));
        }
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let Some(&b) = self.s.get(self.i) else {
                return Err(self.error("unterminated string"));
            };
            self.i += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let Some(&e) = self.s.get(self.i) else {
                        return Err(self.error("unterminated escape"));
                    };
                    self.i += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let hex = self
                                .hex4(self.i)
                                .ok_or_else(|| self.error("bad \\u escape"))?;
                            self.i += 4;
                            // A character beyond the BMP is a surrogate pair, `\uD8xx\uDCxx`
                            // (RFC 8259 §7).
                            let pair = match hex {
                                0xd800..=0xdbff
                                    if self.s.get(self.i..self.i + 2) == Some(b"\\u") =>
                                {
                                    self.hex4(self.i + 2)
                                        .filter(|low| (0xdc00..=0xdfff).contains(low))
                                        .map(|low| {
                                            0x10000 + ((hex - 0xd800) << 10) + (low - 0xdc00)
                                        })
                                }
                                _ => None,
                            };
                            let hex = match pair {
                                Some(c) => {
                                    self.i += 6;
                                    c
                                }
                                None => hex,
                            };
                            // Lone surrogates become U+FFFD: the message is only reported.
                            let c = char::from_u32(hex).unwrap_or('\u{fffd}');
                            let mut tmp = [0u8; 4];
                            out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                        }
                        _ => return Err(self.error("bad escape")),
                    }
                }
                _ => out.push(b),
            }
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

fn parse(body: &[u8]) -> Result<Json, String> {
    let mut p = Parser {
        s: body,
        i: 0,
        depth: 0,
    };
    let v = p.value()?;
    p.ws();
    if p.i != body.len() {
        return Err(p.error("trailing characters"));
    }
    Ok(v)
}

/// Decodes a JSON `ExportTraceServiceResponse`: `partialSuccess.rejectedSpans` (a string or
/// a number, as OTLP receivers must accept both) and `partialSuccess.errorMessage`. An empty
/// body is a full success.
pub(crate) fn decode_response(body: &[u8]) -> Result<super::proto::PartialSuccess, String> {
    let mut out = super::proto::PartialSuccess::default();
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(out);
    }
    let v = parse(body)?;
    if let Some(ps) = v.get("partialSuccess") {
        out.rejected_spans = match ps.get("rejectedSpans") {
            None | Some(Json::Null) => 0,
            Some(Json::Number(n)) if n.fract() == 0.0 => *n as i64,
            Some(Json::String(s)) => s
                .parse()
                .map_err(|_| format!("malformed JSON response: rejectedSpans {s:?}"))?,
            Some(other) => {
                return Err(format!(
                    "malformed JSON response: rejectedSpans is {other:?}"
                ))
            }
        };
        if let Some(Json::String(m)) = ps.get("errorMessage") {
            out.error_message = m.clone();
        }
    }
    Ok(out)
}

/// The `message` of a JSON `google.rpc.Status` body, if there is one.
pub(crate) fn decode_status_message(body: &[u8]) -> Option<String> {
    match parse(body).ok()?.get("message")? {
        Json::String(s) => Some(s.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[u8]) -> String {
        String::from_utf8(v.to_vec()).unwrap()
    }

    #[test]
    fn strings_are_escaped_by_rfc_8259() {
        let mut buf = Vec::new();
        put_string(&mut buf, "a\"b\\c\nd\u{1}é\u{7f}");
        assert_eq!(s(&buf), r#""a\"b\\c\nd\u0001é\u007f""#);
    }

    /// `put_string` as it was before it skipped plain words: one byte at a time.
    fn put_string_bytewise(buf: &mut Vec<u8>, s: &str) {
        buf.push(b'"');
        let bytes = s.as_bytes();
        let mut start = 0;
        let mut i = 0;
        while i < bytes.len() {
            let (escape, width): (&[u8], usize) = match bytes[i] {
                b'"' => (b"\\\"", 1),
                b'\\' => (b"\\\\", 1),
                b'\n' => (b"\\n", 1),
                b'\r' => (b"\\r", 1),
                b'\t' => (b"\\t", 1),
                0x00..=0x1f | 0x7f => (b"", 1),
                0xc2 if matches!(bytes.get(i + 1), Some(0x80..=0x9f)) => (b"", 2),
                0xe2 if matches!(
                    (bytes.get(i + 1), bytes.get(i + 2)),
                    (Some(0x80), Some(0xa8..=0xae)) | (Some(0x81), Some(0xa6..=0xa9))
                ) =>
                {
                    (b"", 3)
                }
                _ => {
                    i += 1;
                    continue;
                }
            };
            buf.extend_from_slice(&bytes[start..i]);
            if escape.is_empty() {
                let c = s[i..].chars().next().map_or(0, u32::from);
                buf.extend_from_slice(format!("\\u{c:04x}").as_bytes());
            } else {
                buf.extend_from_slice(escape);
            }
            i += width;
            start = i;
        }
        buf.extend_from_slice(&bytes[start..]);
        buf.push(b'"');
    }

    #[test]
    fn plain_word_is_exact_for_every_byte_at_every_position() {
        for b in 0..=255u8 {
            let plain = (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\';
            // The byte among plain neighbours, the lowest and highest of them included (the
            // ones most likely to carry or borrow into it).
            for neighbour in [b'a', b' ', b'~'] {
                for pos in 0..8 {
                    let mut w = [neighbour; 8];
                    w[pos] = b;
                    let got = plain_word(u64::from_le_bytes(w));
                    assert_eq!(got, plain, "byte {b:#04x} at {pos} among {neighbour:#04x}");
                }
            }
        }
    }

    #[test]
    fn put_string_equals_the_bytewise_escaper_on_mixed_strings() {
        // Pieces that need escaping, multi-byte characters that do and do not, and plain runs,
        // concatenated at every alignment: each escape lands at every offset of a word, and
        // multi-byte characters straddle word boundaries.
        let pieces = [
            "a",
            "plain_text",
            "\"",
            "\\",
            "\n",
            "\u{1}",
            "\u{7f}",
            "~",
            " ",
            "é",
            "\u{85}",
            "\u{a0}",
            "\u{2028}",
            "\u{2027}",
            "\u{2069}",
            "\u{206a}",
            "€",
            "😀",
            "\u{9b}",
        ];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let mut s = String::new();
            for _ in 0..next() % 12 {
                s.push_str(pieces[(next() % pieces.len() as u64) as usize]);
            }
            let (mut fast, mut slow) = (Vec::new(), Vec::new());
            put_string(&mut fast, &s);
            put_string_bytewise(&mut slow, &s);
            assert_eq!(fast, slow, "{s:?}");
        }
    }

    #[test]
    fn characters_a_terminal_acts_on_are_escaped_and_decode_the_same() {
        let hostile = "x\u{9b}2J\u{85}\u{80}\u{9f}\u{a0}\u{202e}\u{2028}\u{2029}\u{202a}\u{2066}\u{2069}\u{2027}\u{202f}\u{2065}\u{206a}é€😀";
        let mut buf = Vec::new();
        put_string(&mut buf, hostile);
        assert_eq!(
            s(&buf),
            concat!(
                r#""x\u009b2J\u0085\u0080\u009f"#,
                "\u{a0}",
                r#"\u202e\u2028\u2029\u202a\u2066\u2069"#,
                "\u{2027}\u{202f}\u{2065}\u{206a}é€😀\""
            )
        );
        let mut p = Parser {
            s: &buf,
            i: 0,
            depth: 0,
        };
        assert_eq!(p.string().unwrap(), hostile);
    }

    #[test]
    fn values_follow_otlp_json() {
        let cases = [
            (Value::I64(-5), r#"{"intValue":"-5"}"#),
            (
                Value::I64(i64::MAX),
                r#"{"intValue":"9223372036854775807"}"#,
            ),
            (Value::Bool(false), r#"{"boolValue":false}"#),
            (Value::F64(1.5), r#"{"doubleValue":1.5}"#),
            (Value::F64(f64::NAN), r#"{"doubleValue":"NaN"}"#),
            (
                Value::F64(f64::NEG_INFINITY),
                r#"{"doubleValue":"-Infinity"}"#,
            ),
            (Value::from("x"), r#"{"stringValue":"x"}"#),
        ];
        for (v, want) in cases {
            let mut buf = Vec::new();
            put_value(&mut buf, &v);
            assert_eq!(s(&buf), want);
        }
    }

    #[test]
    fn request_len_is_what_write_request_writes() {
        let resource = encode_resource(&[KeyValue::new("service.name", "svc")]);
        let scope = encode_scope("agentcore-telemetry", "0.1.0");
        for n in 0..4 {
            let spans: Vec<&[u8]> = (0..n).map(|_| &b"{}"[..]).collect();
            let mut out = Vec::new();
            write_request(&mut out, &resource, &scope, spans.into_iter());
            assert_eq!(out.len(), request_len(&resource, &scope, 2 * n, n));
            assert!(parse(&out).is_ok(), "{}", s(&out));
        }
    }

    #[test]
    fn responses_decode_both_int64_forms_and_refuse_garbage() {
        assert_eq!(decode_response(b"").unwrap().rejected_spans, 0);
        assert_eq!(decode_response(b"{}").unwrap().rejected_spans, 0);
        let r = decode_response(
            br#"{"partialSuccess":{"rejectedSpans":"3","errorMessage":"x\u00e9"}}"#,
        )
        .unwrap();
        assert_eq!((r.rejected_spans, r.error_message.as_str()), (3, "xé"));
        let r =
            decode_response(br#"{"partialSuccess":{"rejectedSpans":2}, "other":[1,{"a":null}]}"#)
                .unwrap();
        assert_eq!(r.rejected_spans, 2);
        assert!(decode_response(b"{\"partialSuccess\":").is_err());
        assert!(decode_response(b"<html></html>").is_err());
        let deep = "[".repeat(10_000);
        assert!(decode_response(deep.as_bytes()).is_err());
        assert_eq!(
            decode_status_message(br#"{"code":3,"message":"bad span"}"#).as_deref(),
            Some("bad span")
        );
    }

    /// RFC 8259 §7: "To escape an extended character that is not in the Basic Multilingual
    /// Plane, the character is represented as a 12-character sequence, encoding the UTF-16
    /// surrogate pair", and `\u` is followed by exactly "four hexadecimal digits". A collector
    /// (or a proxy in front of it) that escapes every non-ASCII character, as Python's `json`
    /// does by default, sends `😀` as `\ud83d\ude00`: the message reported must read `😀`,
    /// not two U+FFFD. A lone surrogate is still U+FFFD; `\u+041` (a sign, not a digit) is
    /// not JSON.
    #[test]
    fn escaped_surrogate_pairs_decode_to_the_character_they_encode() {
        let r = decode_response(
            br#"{"partialSuccess":{"rejectedSpans":1,"errorMessage":"\ud83d\ude00 span \uD834\uDD1E"}}"#,
        )
        .unwrap();
        assert_eq!(r.error_message, "\u{1f600} span \u{1d11e}");
        assert_eq!(
            decode_status_message(br#"{"message":"quota \ud83d\udeab"}"#).as_deref(),
            Some("quota \u{1f6ab}")
        );
        // Lone surrogates, or a high one followed by something else: U+FFFD each.
        assert_eq!(
            decode_status_message(br#"{"message":"\ud83d-\ude00|\ud83d\u0041|\ud83d"}"#).as_deref(),
            Some("\u{fffd}-\u{fffd}|\u{fffd}A|\u{fffd}")
        );
        assert!(decode_status_message(br#"{"message":"\u+041"}"#).is_none());
        assert!(decode_status_message(br#"{"message":"\u-041"}"#).is_none());
    }
}
