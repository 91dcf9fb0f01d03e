//! A context received from another service through the specification's map form
//! (`to_dict` / `from_dict`: "Serialize context for cross-service calls ... Deserialize on
//! receiver side") is remote, as one read from a `traceparent` header is: the receiver's
//! spans record (and export, as OTLP's `IS_REMOTE` flag) that their parent is remote.

use agentcore_telemetry::{DistributedTracer, SpanKind, SpanStatus, TraceContext, TracerConfig};

fn tracer() -> DistributedTracer {
    DistributedTracer::new(TracerConfig {
        from_env: false,
        ..TracerConfig::default()
    })
}

#[test]
fn a_context_read_by_from_map_is_remote_like_one_read_by_extract() {
    let service_a = tracer();
    let service_b = tracer();
    let _trace = service_a.start_trace(Some("request-123"), [("tenant", "acme")]);
    let client = service_a.start_span("call_b", SpanKind::Client, []);
    let wire = client.context().to_map();
    let client_id = client.span_id();
    service_a.finish_span(client, SpanStatus::Ok, None);

    // Service B, as the specification does it.
    let received = TraceContext::from_map(&wire).unwrap();
    assert!(
        received.is_remote(),
        "from_map is the receiver side of a cross-service call"
    );
    let server_id = {
        let _attached = service_b.attach(received);
        let server = service_b.start_span("handle", SpanKind::Server, []);
        let id = server.span_id();
        let child = service_b.start_span("work", SpanKind::Internal, []);
        let child_id = child.span_id();
        child.end();
        server.finish(SpanStatus::Ok);
        let child = service_b.get_span_by_id(child_id).unwrap();
        assert!(!child.parent_is_remote, "the server span is a local parent");
        id
    };
    let server = service_b.get_span_by_id(server_id).unwrap();
    assert_eq!(server.parent_span_id, Some(client_id));
    assert!(
        server.parent_is_remote,
        "the parent is the client span of service A"
    );

    // A map without a span id has no parent span to be remote.
    let root_only = TraceContext::from_map([("trace_id", "request-456")]).unwrap();
    let _attached = service_b.attach(root_only);
    let span = service_b.start_span("first", SpanKind::Server, []);
    let id = span.span_id();
    span.end();
    assert!(!service_b.get_span_by_id(id).unwrap().parent_is_remote);
}
