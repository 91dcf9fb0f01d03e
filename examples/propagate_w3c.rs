//! Two services in one process, one trace: the caller injects W3C `traceparent` and `baggage`
//! into its outgoing request's headers; the callee extracts them, handles the request in a
//! Server span that is a child of the caller's Client span, and reads the baggage. Each service
//! has its own tracer (its own span log), as two processes would.
//!
//! `cargo run --example propagate_w3c`

use std::collections::HashMap;

use agentcore_telemetry::{DistributedTracer, SpanKind, SpanStatus, TraceContext, TracerConfig};

/// The callee: extracts the context from the request headers and handles the request under it.
fn handle(tracer: &DistributedTracer, headers: &HashMap<&'static str, String>) -> String {
    let get = |name: &str| headers.get(name).map(String::as_str);
    let remote = match TraceContext::extract(get) {
        Ok(Some(cx)) => cx,
        // No valid traceparent: a new trace, which still carries the caller's baggage.
        _ => tracer
            .start_detached_trace(None, TraceContext::extract_baggage(get))
            .context()
            .clone(),
    };
    let tenant = remote
        .get_baggage("tenant")
        .unwrap_or("unknown")
        .to_string();
    let _cx = tracer.attach(remote);
    let span = tracer.start_span("handle_request", SpanKind::Server, []);
    tracer.finish_span(span, SpanStatus::Ok, None);
    tenant
}

fn main() {
    let caller = DistributedTracer::new(TracerConfig::default());
    let callee = DistributedTracer::new(TracerConfig::default());

    let _trace = caller.start_trace(Some("request-123"), [("tenant", "acme corp")]);
    let call = caller.start_span("call_tool_service", SpanKind::Client, []);
    let mut headers = HashMap::new();
    call.context().inject(|name, value| {
        headers.insert(name, value);
    });
    println!("outgoing headers: {headers:?}");

    let tenant = handle(&callee, &headers);
    let (trace_id, client_id) = (call.trace_id(), call.span_id());
    caller.finish_span(call, SpanStatus::Ok, None);

    let server_spans = callee.get_trace_spans(trace_id);
    assert_eq!(server_spans.len(), 1);
    let server = &server_spans[0];
    assert_eq!(server.parent_span_id, Some(client_id));
    assert_eq!(tenant, "acme corp");
    println!(
        "trace {trace_id}: client span {client_id} -> server span {} (tenant {tenant})",
        server.span_id
    );
}
