//! OTLP binary protobuf, hand-written: the writer for `ExportTraceServiceRequest` and the
//! reader for `ExportTraceServiceResponse` and `google.rpc.Status`.
//!
//! Field numbers and wire types follow `opentelemetry/proto/trace/v1/trace.proto`,
//! `common/v1/common.proto`, `resource/v1/resource.proto` and
//! `collector/trace/v1/trace_service.proto` (opentelemetry-proto 1.x). Proto3 rules: scalar
//! fields at their default value are omitted, except the members of `AnyValue`'s `oneof`,
//! which are always written (an `int_value` of 0 is a value, not an absence).
//!
//! Nested messages are length-prefixed. The writer reserves one length byte, writes the
//! body, and when the body turns out to be 128 bytes or longer shifts it right to make room
//! for the longer varint: one `copy_within` per large message, no second sizing pass and no
//! allocation beyond the growth of the reused buffer.

use crate::export::source::ExportSpan;
use crate::tracer::{KeyValue, SpanKind, SpanStatus, Value};

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

/// Appends `v` as a base-128 varint.
#[inline]
pub(crate) fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// The encoded length of varint `v`.
#[inline]
pub(crate) fn varint_len(v: u64) -> usize {
    // 1 + floor(bits / 7), with 0 taking one byte.
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

#[inline]
fn put_tag(buf: &mut Vec<u8>, field: u32, wire: u8) {
    put_varint(buf, u64::from(field << 3 | u32::from(wire)));
}

#[inline]
fn put_len_field(buf: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_tag(buf, field, LEN);
    put_varint(buf, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}

/// A string field, omitted when empty (proto3 default).
#[inline]
fn put_str(buf: &mut Vec<u8>, field: u32, s: &str) {
    if !s.is_empty() {
        put_len_field(buf, field, s.as_bytes());
    }
}

/// A varint field, omitted when zero.
#[inline]
fn put_uint(buf: &mut Vec<u8>, field: u32, v: u64) {
    if v != 0 {
        put_tag(buf, field, VARINT);
        put_varint(buf, v);
    }
}

/// A fixed64 field, omitted when zero.
#[inline]
fn put_fixed64(buf: &mut Vec<u8>, field: u32, v: u64) {
    if v != 0 {
        put_tag(buf, field, FIXED64);
        buf.extend_from_slice(&v.to_le_bytes());
    }
}

/// A fixed32 field, omitted when zero.
#[inline]
fn put_fixed32(buf: &mut Vec<u8>, field: u32, v: u32) {
    if v != 0 {
        put_tag(buf, field, FIXED32);
        buf.extend_from_slice(&v.to_le_bytes());
    }
}

/// Starts a nested message in field `field`: writes the tag and reserves `width` length
/// bytes (1 for small messages, 2 for a span, whose body is usually 128 bytes to 16 KiB).
/// Returns the mark [`end`] needs.
#[inline]
fn begin(buf: &mut Vec<u8>, field: u32, width: usize) -> usize {
    put_tag(buf, field, LEN);
    buf.resize(buf.len() + width, 0);
    buf.len()
}

/// Ends the nested message started at `mark` with `width` reserved length bytes: writes
/// its length, shifting the body when the length's varint is not `width` bytes long.
#[inline]
fn end(buf: &mut Vec<u8>, mark: usize, width: usize) {
    let len = buf.len() - mark;
    if width == 1 && len < 0x80 {
        buf[mark - 1] = len as u8;
        return;
    }
    let n = varint_len(len as u64);
    let start = mark - width;
    if n > width {
        buf.resize(buf.len() + n - width, 0);
        buf.copy_within(mark..mark + len, start + n);
    } else if n < width {
        buf.copy_within(mark..mark + len, start + n);
        buf.truncate(start + n + len);
    }
    let mut v = len as u64;
    for b in &mut buf[start..start + n] {
        *b = (v as u8 & 0x7f) | if v >= 0x80 { 0x80 } else { 0 };
        v >>= 7;
    }
}

/// `AnyValue` (common.proto): string 1, bool 2, int 3, double 4. Always writes the member.
fn put_any_value(buf: &mut Vec<u8>, field: u32, value: &Value) {
    let m = begin(buf, field, 1);
    match value {
        Value::Str(s) => put_len_field(buf, 1, s.as_bytes()),
        Value::Bool(b) => {
            put_tag(buf, 2, VARINT);
            buf.push(u8::from(*b));
        }
        Value::I64(i) => {
            put_tag(buf, 3, VARINT);
            // int64: two's complement, so a negative value takes ten bytes.
            put_varint(buf, *i as u64);
        }
        Value::F64(f) => {
            put_tag(buf, 4, FIXED64);
            buf.extend_from_slice(&f.to_bits().to_le_bytes());
        }
    }
    end(buf, m, 1);
}

/// `KeyValue` (common.proto): key 1, value 2.
fn put_key_value(buf: &mut Vec<u8>, field: u32, kv: &KeyValue) {
    let m = begin(buf, field, 1);
    put_str(buf, 1, &kv.key);
    put_any_value(buf, 2, &kv.value);
    end(buf, m, 1);
}

/// The attributes as repeated `KeyValue` in `field`.
pub(crate) fn put_attributes(buf: &mut Vec<u8>, field: u32, attributes: &[KeyValue]) {
    for kv in attributes {
        put_key_value(buf, field, kv);
    }
}

/// `Span.SpanKind`.
pub(crate) fn kind_number(kind: SpanKind) -> u64 {
    match kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

/// `Status.StatusCode`.
pub(crate) fn status_number(status: SpanStatus) -> u64 {
    match status {
        SpanStatus::Unset => 0,
        SpanStatus::Ok => 1,
        SpanStatus::Error => 2,
    }
}

/// Appends one span as a `ScopeSpans.spans` entry (field 2, length-prefixed `Span`).
pub(crate) fn encode_span(buf: &mut Vec<u8>, span: &ExportSpan<'_>) {
    let r = span.record;
    let m = begin(buf, 2, 2);
    put_len_field(buf, 1, &r.trace_id.to_u128().to_be_bytes());
    put_len_field(buf, 2, &r.span_id.to_u64().to_be_bytes());
    put_str(buf, 3, span.trace_state);
    if let Some(parent) = r.parent_span_id {
        put_len_field(buf, 4, &parent.to_u64().to_be_bytes());
    }
    put_str(buf, 5, &r.name);
    put_uint(buf, 6, kind_number(r.kind));
    put_fixed64(buf, 7, r.start_time_unix_nano);
    put_fixed64(buf, 8, r.end_time_unix_nano);
    put_attributes(buf, 9, &r.attributes);
    put_uint(buf, 10, u64::from(r.dropped_attributes_count));
    for event in &r.events {
        let e = begin(buf, 11, 1);
        put_fixed64(buf, 1, event.time_unix_nano);
        put_str(buf, 2, &event.name);
        put_attributes(buf, 3, &event.attributes);
        put_uint(buf, 4, u64::from(event.dropped_attributes_count));
        end(buf, e, 1);
    }
    put_uint(buf, 12, u64::from(r.dropped_events_count));
    for link in &r.links {
        let l = begin(buf, 13, 1);
        put_len_field(buf, 1, &link.trace_id.to_u128().to_be_bytes());
        put_len_field(buf, 2, &link.span_id.to_u64().to_be_bytes());
        put_attributes(buf, 4, &link.attributes);
        put_uint(buf, 5, u64::from(link.dropped_attributes_count));
        // flags (6): the link's trace flags are not recorded, so "unknown" (0, omitted).
        end(buf, l, 1);
    }
    put_uint(buf, 14, u64::from(r.dropped_links_count));
    if r.status != SpanStatus::Unset || !r.status_message.is_empty() {
        let s = begin(buf, 15, 1);
        put_str(buf, 2, &r.status_message);
        put_uint(buf, 3, status_number(r.status));
        end(buf, s, 1);
    }
    put_fixed32(buf, 16, span.otlp_flags());
    end(buf, m, 2);
}

/// A `Resource` message body: attributes 1.
pub(crate) fn encode_resource(attributes: &[KeyValue]) -> Vec<u8> {
    let mut buf = Vec::new();
    put_attributes(&mut buf, 1, attributes);
    buf
}

/// An `InstrumentationScope` message body: name 1, version 2.
pub(crate) fn encode_scope(name: &str, version: &str) -> Vec<u8> {
    let mut buf = Vec::new();
    put_str(&mut buf, 1, name);
    put_str(&mut buf, 2, version);
    buf
}

fn field_len(field: u32, len: usize) -> usize {
    varint_len(u64::from(field << 3)) + varint_len(len as u64) + len
}

/// The size of the request [`write_request`] writes around `spans_len` bytes of span entries.
pub(crate) fn request_len(resource: &[u8], scope: &[u8], spans_len: usize) -> usize {
    let scope_spans = field_len(1, scope.len()) + spans_len;
    let resource_spans = field_len(1, resource.len()) + field_len(2, scope_spans);
    field_len(1, resource_spans)
}

/// Appends `ExportTraceServiceRequest{resource_spans: [{resource, scope_spans: [{scope,
/// spans}]}]}` to `out`, where `spans` is a run of span entries from [`encode_span`].
pub(crate) fn write_request(out: &mut Vec<u8>, resource: &[u8], scope: &[u8], spans: &[u8]) {
    let spans_len = spans.len();
    let scope_spans = field_len(1, scope.len()) + spans_len;
    let resource_spans = field_len(1, resource.len()) + field_len(2, scope_spans);
    out.reserve(field_len(1, resource_spans));
    put_tag(out, 1, LEN);
    put_varint(out, resource_spans as u64);
    put_len_field(out, 1, resource);
    put_tag(out, 2, LEN);
    put_varint(out, scope_spans as u64);
    put_len_field(out, 1, scope);
    out.extend_from_slice(spans);
}

/// A protobuf reader over a byte slice: just enough to walk the response messages.
struct Reader<'a> {
    buf: &'a [u8],
}

enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Other,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..70).step_by(7) {
            let (&b, rest) = self.buf.split_first()?;
            self.buf = rest;
            if shift == 63 && b > 1 {
                return None;
            }
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.buf.len() < n {
            return None;
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Some(head)
    }

    /// The next field (number and value), `Ok(None)` at the end, `Err` on malformed input.
    fn next(&mut self) -> Result<Option<(u64, Field<'a>)>, ()> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint().ok_or(())?;
        let field = key >> 3;
        let value = match key & 7 {
            0 => Field::Varint(self.varint().ok_or(())?),
            1 => {
                self.take(8).ok_or(())?;
                Field::Other
            }
            2 => {
                let n = usize::try_from(self.varint().ok_or(())?).map_err(|_| ())?;
                Field::Bytes(self.take(n).ok_or(())?)
            }
            5 => {
                self.take(4).ok_or(())?;
                Field::Other
            }
            _ => return Err(()), // groups (3, 4) are not used by these messages
        };
        Ok(Some((field, value)))
    }
}

/// `ExportTracePartialSuccess`: rejected spans and the server's message.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct PartialSuccess {
    pub(crate) rejected_spans: i64,
    pub(crate) error_message: String,
}

/// Decodes an `ExportTraceServiceResponse` body; an empty body is a full success.
pub(crate) fn decode_response(body: &[u8]) -> Result<PartialSuccess, String> {
    let mut out = PartialSuccess::default();
    let mut r = Reader { buf: body };
    while let Some((field, value)) = r.next().map_err(|_| malformed())? {
        if let (1, Field::Bytes(ps)) = (field, value) {
            let mut p = Reader { buf: ps };
            while let Some((f, v)) = p.next().map_err(|_| malformed())? {
                match (f, v) {
                    (1, Field::Varint(n)) => out.rejected_spans = n as i64,
                    (2, Field::Bytes(m)) => {
                        out.error_message = String::from_utf8_lossy(m).into_owned();
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(out)
}

fn malformed() -> String {
    "malformed protobuf ExportTraceServiceResponse".to_owned()
}

/// The `message` of a `google.rpc.Status` body (code 1, message 2), if it decodes.
pub(crate) fn decode_status_message(body: &[u8]) -> Option<String> {
    let mut r = Reader { buf: body };
    let mut message = None;
    while let Some((field, value)) = r.next().ok()? {
        if let (2, Field::Bytes(m)) = (field, value) {
            message = Some(String::from_utf8_lossy(m).into_owned());
        }
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_match_the_protobuf_encoding() {
        let cases: [(u64, &[u8]); 5] = [
            (0, &[0]),
            (1, &[1]),
            (127, &[0x7f]),
            (300, &[0xac, 0x02]),
            (
                u64::MAX,
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            ),
        ];
        for (v, bytes) in cases {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            assert_eq!(buf, bytes, "{v}");
            assert_eq!(varint_len(v), bytes.len(), "{v}");
            assert_eq!(Reader { buf: bytes }.varint(), Some(v));
        }
    }

    #[test]
    fn nested_lengths_grow_when_the_body_is_long() {
        for (len, width) in [0usize, 1, 127, 128, 300, 16_383, 16_384, 70_000]
            .into_iter()
            .flat_map(|l| [(l, 1), (l, 2)])
        {
            let mut buf = vec![0xAA];
            let m = begin(&mut buf, 3, width);
            buf.extend(std::iter::repeat_n(7u8, len));
            end(&mut buf, m, width);
            let mut r = Reader { buf: &buf[1..] };
            match r.next() {
                Ok(Some((3, Field::Bytes(b)))) => {
                    assert_eq!(b.len(), len);
                    assert!(b.iter().all(|&x| x == 7));
                }
                _ => panic!("length {len} did not round-trip"),
            }
            assert!(r.buf.is_empty());
        }
    }

    #[test]
    fn request_len_is_what_write_request_writes() {
        let resource = encode_resource(&[KeyValue::new("service.name", "svc")]);
        let scope = encode_scope("agentcore-telemetry", "0.1.0");
        for spans_len in [0usize, 5, 200, 20_000] {
            let spans = vec![0u8; spans_len];
            let mut out = Vec::new();
            write_request(&mut out, &resource, &scope, &spans);
            assert_eq!(out.len(), request_len(&resource, &scope, spans_len));
        }
    }

    #[test]
    fn responses_decode_and_malformed_ones_are_refused() {
        assert_eq!(decode_response(&[]), Ok(PartialSuccess::default()));
        // partial_success { rejected_spans: 2, error_message: "no" }
        let body = [0x0a, 0x06, 0x08, 0x02, 0x12, 0x02, b'n', b'o'];
        assert_eq!(
            decode_response(&body),
            Ok(PartialSuccess {
                rejected_spans: 2,
                error_message: "no".into()
            })
        );
        assert!(decode_response(&[0x0a, 0x09, 0x08]).is_err());
        assert!(decode_response(&[0xff]).is_err());
        // google.rpc.Status { code: 3, message: "bad" }
        let status = [0x08, 0x03, 0x12, 0x03, b'b', b'a', b'd'];
        assert_eq!(decode_status_message(&status).as_deref(), Some("bad"));
        assert_eq!(decode_status_message(b"<html>"), None);
    }
}
