//! The span log frees what its records owned when their slots are reused, whatever the spans
//! held: the live heap stays flat while spans with owned strings of every kind overwrite one
//! another in a small log.
//!
//! Why: a span's start forgets the old record's items instead of dropping them when the
//! record's heap mark says they own nothing (`tracer::record::HeapMark`, issue 16). A path that
//! added owned memory without setting the mark would leak it at every reuse of the slot; this
//! test takes each such path (the start's name and attributes, `set_attribute` new and
//! replaced, values shortened by the length limit, events with owned names and attributes and
//! beyond their inline room, links, exceptions, error messages) and fails on the growth.
//!
//! This binary holds a single test function, so no other test thread allocates while it
//! measures.

use agentcore_telemetry::{
    DistributedTracer, KeyValue, SpanId, SpanKind, SpanLimits, SpanStatus, TraceId, TracerConfig,
};
use support::alloc::live_bytes;

mod support;

#[global_allocator]
static GLOBAL: support::alloc::Counting = support::alloc::Counting;

/// Slots in the log: every span below overwrites one, many times over.
const CAPACITY: usize = 64;

/// An owned string of 48 bytes, so that a leak shows: 48 bytes or more per span.
fn owned(tag: &str, i: u64) -> String {
    format!("{tag}-{i:0>48}")[..48].to_owned()
}

type Case = (&'static str, fn(&DistributedTracer, u64));

const CASES: &[Case] = &[
    ("owned name", |t, i| {
        t.start_span(owned("name", i), SpanKind::Internal, []).end();
    }),
    ("owned start attribute", |t, i| {
        let kv = KeyValue::new(owned("key", i), owned("value", i));
        t.start_span("op", SpanKind::Internal, [kv]).end();
    }),
    // A key and a value are noted apart: each owned alone (found by review).
    ("owned start attribute key, integer value", |t, i| {
        let kv = KeyValue::new(owned("key", i), i as i64);
        t.start_span("op", SpanKind::Internal, [kv]).end();
    }),
    ("static start attribute key, owned value", |t, i| {
        let kv = KeyValue::new("k", owned("value", i));
        t.start_span("op", SpanKind::Internal, [kv]).end();
    }),
    ("owned set_attribute key, static value", |t, i| {
        let mut s = t.start_span("op", SpanKind::Internal, []);
        s.set_attribute(owned("key", i), "v");
        s.end();
    }),
    ("owned event attribute key, integer value", |t, i| {
        let mut s = t.start_span("op", SpanKind::Internal, []);
        s.add_event("e", [KeyValue::new(owned("key", i), 1i64)]);
        s.end();
    }),
    ("owned set_attribute key and value", |t, i| {
        let mut s = t.start_span("op", SpanKind::Internal, []);
        s.set_attribute(owned("key", i), owned("value", i));
        s.end();
    }),
    ("set_attribute replacing a key", |t, i| {
        let mut s = t.start_span("op", SpanKind::Internal, []);
        s.set_attribute("k", 1i64);
        s.set_attribute("k", owned("value", i));
        s.end();
    }),
    ("attributes beyond the inline room", |t, i| {
        let mut s = t.start_span("op", SpanKind::Internal, []);
        for k in ["a", "b", "c", "d", "e", "f"] {
            s.set_attribute(k, i as i64);
        }
        s.end();
    }),
    ("owned event name", |t, i| {
        let mut s = t.start_span("op", SpanKind::Internal, []);
        s.add_event(owned("event", i), []);
        s.end();
    }),
    ("owned event attribute", |t, i| {
        let mut s = t.start_span("op", SpanKind::Internal, []);
        s.add_event("e", [KeyValue::new("k", owned("value", i))]);
        s.end();
    }),
    ("event attributes beyond the inline room", |t, i| {
        let mut s = t.start_span("op", SpanKind::Internal, []);
        s.add_event(
            "e",
            ["a", "b", "c", "d"].map(|k| KeyValue::new(k, i as i64)),
        );
        s.end();
    }),
    ("events beyond the inline room", |t, _| {
        let mut s = t.start_span("op", SpanKind::Internal, []);
        for _ in 0..3 {
            s.add_event("e", []);
        }
        s.end();
    }),
    ("a link with attributes", |t, i| {
        let mut s = t.start_span("op", SpanKind::Internal, []);
        s.add_link(
            TraceId::random(),
            SpanId::random(),
            [KeyValue::new("k", owned("value", i))],
        );
        s.end();
    }),
    ("an exception", |t, i| {
        let mut s = t.start_span("op", SpanKind::Internal, []);
        s.record_exception(&owned("error", i));
        s.end();
    }),
    ("an error message", |t, i| {
        let s = t.start_span("op", SpanKind::Internal, []);
        t.finish_span(s, SpanStatus::Error, Some(&owned("message", i)));
    }),
    ("an error status set on the span", |t, i| {
        let mut s = t.start_span("op", SpanKind::Internal, []);
        s.set_status(SpanStatus::Error, owned("message", i));
        s.end();
    }),
];

/// Live heap growth over `rounds` passes of `CAPACITY` spans, after two passes that fill the
/// log (and warm the thread's context stack and the tracer's metrics).
fn growth(tracer: &DistributedTracer, case: &dyn Fn(&DistributedTracer, u64), rounds: u64) -> i64 {
    let n = CAPACITY as u64;
    for i in 0..2 * n {
        case(tracer, i);
    }
    let before = live_bytes();
    for i in 0..rounds * n {
        case(tracer, i);
    }
    live_bytes() - before
}

fn tracer(limits: Option<SpanLimits>) -> DistributedTracer {
    DistributedTracer::new(TracerConfig {
        span_log_capacity: CAPACITY,
        limits,
        from_env: false,
        ..TracerConfig::default()
    })
}

#[test]
fn reused_slots_free_what_their_records_owned() {
    const ROUNDS: u64 = 20;
    let mut failures = Vec::new();
    let plain = tracer(None);
    // The length limit shortens values on the out-of-line path.
    let limited = tracer(Some(SpanLimits {
        max_attribute_value_len: Some(8),
        ..SpanLimits::default()
    }));
    for (name, case) in CASES {
        for (which, t) in [("", &plain), (" (value length limit)", &limited)] {
            let alone = growth(t, case, ROUNDS);
            // At least 48 bytes per span if anything leaked: ROUNDS * 64 * 48 = 61,440.
            if alone > 4096 {
                failures.push(format!("{name}{which}: {alone} bytes more live"));
            }
            // Every other span plain: a plain span's start must drop what an owned one left
            // in its slot (the mark is the old record's, not the new one's), and an owned
            // span's start must forget nothing a plain one left. At least 30,720 bytes if
            // anything leaked.
            let interleaved = growth(
                t,
                &|t, i| {
                    if i % 2 == 0 {
                        t.start_span("plain", SpanKind::Internal, []).end();
                    } else {
                        case(t, i);
                    }
                },
                ROUNDS,
            );
            if interleaved > 4096 {
                failures.push(format!(
                    "{name}{which}, every other span plain: {interleaved} bytes more live"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "the span log leaked:\n{}",
        failures.join("\n")
    );
    // The records are intact after all that reuse.
    let mut s = plain.start_span("last", SpanKind::Internal, []);
    s.set_attribute("k", "v");
    let id = s.span_id();
    s.end();
    let r = plain.get_span_by_id(id).unwrap();
    assert_eq!(
        (&*r.name, r.attributes.len(), r.events.len()),
        ("last", 1, 0)
    );
    assert!(r.links.is_empty() && r.status_message.is_empty());
}
