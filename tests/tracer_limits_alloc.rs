//! Applying the span limits allocates nothing on the hot path: a value cut at a character
//! boundary, a key set again (replaced, not counted), attributes, event attributes, events and
//! links over their limits (dropped and counted). Link attributes are left out: a link keeps
//! none inline (`INLINE_LINK_ATTRIBUTES` is 0). One test function: nothing else allocates while
//! it counts.

use agentcore_telemetry::{
    DistributedTracer, KeyValue, SpanId, SpanKind, SpanLimits, SpanStatus, TraceId, TracerConfig,
    Value,
};
use support::alloc::process_allocations;

mod support;

#[global_allocator]
static GLOBAL: support::alloc::Counting = support::alloc::Counting;

#[test]
fn applying_the_limits_allocates_nothing() {
    let tracer = DistributedTracer::new(TracerConfig {
        span_log_capacity: 64,
        limits: Some(SpanLimits {
            max_attributes: 2,
            max_events: 1,
            max_links: 1,
            max_attributes_per_event: 1,
            max_attributes_per_link: 1,
            max_attribute_value_len: Some(4),
        }),
        ..TracerConfig::default()
    });
    let (trace_id, span_id) = (TraceId::from_u128(5).unwrap(), SpanId::from_u64(6).unwrap());
    let run = || {
        let mut span = tracer.start_span(
            "op",
            SpanKind::Internal,
            [KeyValue::new("a", "héllo"), KeyValue::new("a", "wörld!")],
        );
        span.set_attribute("b", "ééééééé");
        span.set_attribute("c", 1); // over the limit
        span.set_attribute("b", "zz"); // replaced
        span.add_event(
            "e1",
            [KeyValue::new("k", "long value"), KeyValue::new("k2", 1)],
        );
        span.add_event("e2", []); // over the limit
        span.add_link(trace_id, span_id, []);
        span.add_link(trace_id, span_id, []); // over the limit
        let id = span.span_id();
        tracer.finish_span(span, SpanStatus::Ok, None);
        id
    };
    for _ in 0..200 {
        run(); // warm up, and wrap the span log
    }
    let before = process_allocations();
    for _ in 0..1_000 {
        run();
    }
    let n = process_allocations() - before;
    let r = tracer.get_span_by_id(run()).unwrap();
    assert_eq!(n, 0, "{n} allocations in 1000 spans");
    // What the limits kept and counted.
    let kept: Vec<_> = r
        .attributes
        .iter()
        .map(|kv| (&*kv.key, &kv.value))
        .collect();
    assert_eq!(
        kept,
        [("a", &Value::from("wörl")), ("b", &Value::from("zz"))]
    );
    assert_eq!(r.dropped_attributes_count, 1);
    assert_eq!((r.events.len(), r.dropped_events_count), (1, 1));
    assert_eq!(r.events[0].attributes[0].value, Value::from("long"));
    assert_eq!(r.events[0].dropped_attributes_count, 1);
    assert_eq!((r.links.len(), r.dropped_links_count), (1, 1));
}
