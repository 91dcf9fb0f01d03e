//! Encoding a span for export allocates nothing once the encoder's buffers have grown: the
//! exporter thread encodes each span straight from the borrowed record into a reused buffer,
//! and builds each request into another.
//!
//! This binary holds a single test function, so no other test thread allocates while it
//! counts.
#![cfg(feature = "otlp")]

use agentcore_telemetry::export::otlp::{OtlpEncoder, Protocol};
use agentcore_telemetry::export::{ExportSpan, Resource};
use agentcore_telemetry::{DistributedTracer, KeyValue, SpanKind, SpanStatus, TracerConfig};
use support::alloc::process_allocations;

mod support;

#[global_allocator]
static GLOBAL: support::alloc::Counting = support::alloc::Counting;

#[test]
fn encoding_spans_and_requests_allocates_nothing_once_warm() {
    let tracer = DistributedTracer::new(TracerConfig::default());
    let mut span = tracer.start_span(
        "call_tool",
        SpanKind::Client,
        [
            KeyValue::new("tool", "calculator"),
            KeyValue::new("attempt", 2),
        ],
    );
    span.add_event("retry", [KeyValue::new("delay_ms", 12.5)]);
    let id = span.span_id();
    tracer.finish_span(span, SpanStatus::Error, Some("timeout"));
    let record = tracer.get_span_by_id(id).unwrap();
    let view = ExportSpan::new(&record);
    let resource = Resource::new("agent-runtime");
    for protocol in [Protocol::HttpProtobuf, Protocol::HttpJson] {
        let mut encoder = OtlpEncoder::new(protocol, &resource);
        let mut body = Vec::new();
        let round = |encoder: &mut OtlpEncoder, body: &mut Vec<u8>| {
            for _ in 0..512 {
                encoder.add(&view);
            }
            body.clear();
            encoder.write_request(body);
            encoder.clear();
        };
        round(&mut encoder, &mut body); // warm up: the buffers grow to a batch's size
        let before = process_allocations();
        for _ in 0..10 {
            round(&mut encoder, &mut body);
        }
        let allocations = process_allocations() - before;
        assert_eq!(allocations, 0, "{protocol}: 5120 spans and 10 requests");
    }
}
