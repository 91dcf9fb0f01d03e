//! [`OtlpEncoder`]: a batch of spans encoded as they are drained, and the requests built
//! from it (whole, or split to stay under a size limit).

use std::ops::Range;

use super::{json, proto, Protocol};
use crate::export::resource::{Resource, SCOPE_NAME, SDK_VERSION};
use crate::export::source::ExportSpan;

/// Encodes spans into OTLP requests (`ExportTraceServiceRequest`), protobuf or JSON, into
/// reused buffers: each span is encoded when added (straight from the borrowed record), and
/// a request is the envelope (resource, scope) around a run of encoded spans.
///
/// ```
/// use agentcore_telemetry::export::otlp::{OtlpEncoder, Protocol};
/// use agentcore_telemetry::export::{ExportSpan, Resource};
/// use agentcore_telemetry::{DistributedTracer, KeyValue, SpanKind, TracerConfig};
///
/// let tracer = DistributedTracer::new(TracerConfig::default());
/// let span = tracer.start_span("create_agent", SpanKind::Server, [KeyValue::new("retries", 3)]);
/// let id = span.span_id();
/// span.end();
/// let record = tracer.get_span_by_id(id).unwrap();
///
/// let mut encoder = OtlpEncoder::new(Protocol::HttpJson, &Resource::new("agent-runtime"));
/// encoder.add(&ExportSpan::new(&record));
/// let mut body = Vec::new();
/// encoder.write_request(&mut body);
/// let text = String::from_utf8(body).unwrap();
/// assert!(text.starts_with(r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"agent-runtime"}}"#));
/// assert!(text.contains(r#""kind":2"#));
/// assert!(text.contains(r#"{"key":"retries","value":{"intValue":"3"}}"#));
/// ```
#[derive(Debug, Clone)]
pub struct OtlpEncoder {
    protocol: Protocol,
    resource: Vec<u8>,
    scope: Vec<u8>,
    spans: Vec<u8>,
    /// End offset of each span in `spans`.
    ends: Vec<usize>,
}

impl OtlpEncoder {
    /// An empty batch for `resource`, with this crate as the instrumentation scope.
    ///
    /// ```
    /// use agentcore_telemetry::export::otlp::{OtlpEncoder, Protocol};
    /// use agentcore_telemetry::export::Resource;
    /// assert!(OtlpEncoder::new(Protocol::HttpProtobuf, &Resource::new("svc")).is_empty());
    /// ```
    pub fn new(protocol: Protocol, resource: &Resource) -> Self {
        let (resource, scope) = match protocol {
            Protocol::HttpProtobuf => (
                proto::encode_resource(resource.attributes()),
                proto::encode_scope(SCOPE_NAME, SDK_VERSION),
            ),
            Protocol::HttpJson => (
                json::encode_resource(resource.attributes()),
                json::encode_scope(SCOPE_NAME, SDK_VERSION),
            ),
        };
        OtlpEncoder {
            protocol,
            resource,
            scope,
            spans: Vec::new(),
            ends: Vec::new(),
        }
    }

    /// The encoding.
    ///
    /// ```
    /// use agentcore_telemetry::export::otlp::{OtlpEncoder, Protocol};
    /// use agentcore_telemetry::export::Resource;
    /// assert_eq!(OtlpEncoder::new(Protocol::HttpJson, &Resource::new("s")).protocol(), Protocol::HttpJson);
    /// ```
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Encodes `span` into the batch.
    ///
    /// ```
    /// use agentcore_telemetry::export::otlp::{OtlpEncoder, Protocol};
    /// use agentcore_telemetry::export::{ExportSpan, Resource};
    /// use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// let span = tracer.start_span("op", SpanKind::Internal, []);
    /// let id = span.span_id();
    /// span.end();
    /// let mut encoder = OtlpEncoder::new(Protocol::HttpProtobuf, &Resource::new("svc"));
    /// encoder.add(&ExportSpan::new(&tracer.get_span_by_id(id).unwrap()));
    /// assert_eq!(encoder.len(), 1);
    /// ```
    #[inline]
    pub fn add(&mut self, span: &ExportSpan<'_>) {
        match self.protocol {
            Protocol::HttpProtobuf => proto::encode_span(&mut self.spans, span),
            Protocol::HttpJson => json::encode_span(&mut self.spans, span),
        }
        self.ends.push(self.spans.len());
    }

    /// Spans in the batch.
    ///
    /// ```
    /// use agentcore_telemetry::export::otlp::{OtlpEncoder, Protocol};
    /// use agentcore_telemetry::export::Resource;
    /// assert_eq!(OtlpEncoder::new(Protocol::HttpJson, &Resource::new("s")).len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the batch is empty.
    ///
    /// ```
    /// use agentcore_telemetry::export::otlp::{OtlpEncoder, Protocol};
    /// use agentcore_telemetry::export::Resource;
    /// assert!(OtlpEncoder::new(Protocol::HttpJson, &Resource::new("s")).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Empties the batch, keeping the buffers' capacity.
    ///
    /// ```
    /// use agentcore_telemetry::export::otlp::{OtlpEncoder, Protocol};
    /// use agentcore_telemetry::export::Resource;
    /// let mut e = OtlpEncoder::new(Protocol::HttpJson, &Resource::new("s"));
    /// e.clear();
    /// assert!(e.is_empty());
    /// ```
    pub fn clear(&mut self) {
        self.spans.clear();
        self.ends.clear();
    }

    fn span_range(&self, i: usize) -> Range<usize> {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        start..self.ends[i]
    }

    /// The size of the request for spans `range`.
    pub(crate) fn request_len(&self, range: Range<usize>) -> usize {
        if range.is_empty() {
            return self.request_len_of(0, 0);
        }
        let bytes = self.span_range(range.end - 1).end - self.span_range(range.start).start;
        self.request_len_of(bytes, range.len())
    }

    fn request_len_of(&self, bytes: usize, n: usize) -> usize {
        match self.protocol {
            Protocol::HttpProtobuf => proto::request_len(&self.resource, &self.scope, bytes),
            Protocol::HttpJson => json::request_len(&self.resource, &self.scope, bytes, n),
        }
    }

    /// Appends the request for the whole batch to `out`.
    ///
    /// ```
    /// use agentcore_telemetry::export::otlp::{OtlpEncoder, Protocol};
    /// use agentcore_telemetry::export::Resource;
    /// let mut out = Vec::new();
    /// OtlpEncoder::new(Protocol::HttpJson, &Resource::new("s")).write_request(&mut out);
    /// assert!(out.ends_with(br#""spans":[]}]}]}"#));
    /// ```
    pub fn write_request(&self, out: &mut Vec<u8>) {
        self.write_range(0..self.len(), out);
    }

    /// Appends the request for spans `range` (indices in adding order) to `out`.
    pub(crate) fn write_range(&self, range: Range<usize>, out: &mut Vec<u8>) {
        match self.protocol {
            Protocol::HttpProtobuf => {
                // The span entries are contiguous: one slice.
                let bytes = if range.is_empty() {
                    &self.spans[..0]
                } else {
                    let start = self.span_range(range.start).start;
                    &self.spans[start..self.span_range(range.end - 1).end]
                };
                proto::write_request(out, &self.resource, &self.scope, bytes);
            }
            Protocol::HttpJson => json::write_request(
                out,
                &self.resource,
                &self.scope,
                range.map(|i| &self.spans[self.span_range(i)]),
            ),
        }
    }

    /// Splits the batch into runs whose requests stay within `limit` bytes. A span whose
    /// request alone exceeds the limit comes back as its own run with `fits == false`.
    pub(crate) fn split(&self, limit: usize) -> Vec<(Range<usize>, bool)> {
        let mut runs = Vec::new();
        let mut start = 0;
        while start < self.len() {
            if self.request_len(start..start + 1) > limit {
                runs.push((start..start + 1, false));
                start += 1;
                continue;
            }
            // Grow the run while the request still fits (sizes are additive per span).
            let mut end = start + 1;
            while end < self.len() && self.request_len(start..end + 1) <= limit {
                end += 1;
            }
            runs.push((start..end, true));
            start = end;
        }
        runs
    }
}
