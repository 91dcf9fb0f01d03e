//! Context across services through W3C headers: a span in "service A" is the parent of the next
//! span in "service B", baggage arrives byte for byte, and malformed headers never panic.

use std::collections::HashMap;

use agentcore_telemetry::propagation::PropagationError;
use agentcore_telemetry::tracer::ContextMapError;
use agentcore_telemetry::{DistributedTracer, SpanKind, SpanStatus, TraceContext, TracerConfig};

fn headers_of(cx: &TraceContext) -> (HashMap<&'static str, String>, usize) {
    let mut headers = HashMap::new();
    let dropped = cx.inject(|k, v| {
        headers.insert(k, v);
    });
    (headers, dropped)
}

#[test]
fn a_remote_span_is_the_parent_of_the_next_local_span() {
    let service_a = DistributedTracer::new(TracerConfig::default());
    let service_b = DistributedTracer::new(TracerConfig::default());
    let hostile = "50% off, a=b; \\ \"q\" é✓";

    let _trace = service_a.start_trace(None, [("tenant", "acme"), ("note", hostile)]);
    let client = service_a.start_span("call_tool_service", SpanKind::Client, []);
    let (headers, dropped) = headers_of(&client.context());
    assert_eq!(dropped, 0);
    assert_eq!(headers["traceparent"].len(), 55);
    let (a_trace, a_span) = (client.trace_id(), client.span_id());
    service_a.finish_span(client, SpanStatus::Ok, None);

    let remote = TraceContext::extract(|name| headers.get(name).map(String::as_str))
        .unwrap()
        .unwrap();
    assert_eq!(remote.get_baggage("note"), Some(hostile));
    let _attached = service_b.attach(remote);
    let server = service_b.start_span("execute_tool", SpanKind::Server, []);
    assert_eq!(server.trace_id(), a_trace);
    assert_eq!(server.parent_span_id(), Some(a_span));
    assert_eq!(server.context().get_baggage("tenant"), Some("acme"));
    let id = server.span_id();
    service_b.finish_span(server, SpanStatus::Ok, None);
    let record = service_b.get_span_by_id(id).unwrap();
    assert_eq!(record.parent_span_id, Some(a_span));
}

#[test]
fn an_unsampled_remote_parent_keeps_the_trace_unsampled() {
    let tracer = DistributedTracer::new(TracerConfig::default());
    let remote = TraceContext::extract(|name| {
        (name == "traceparent").then_some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
    })
    .unwrap()
    .unwrap();
    let _attached = tracer.attach(remote);
    let span = tracer.start_span("child", SpanKind::Server, []);
    assert!(!span.is_recording());
    drop(span);
    assert_eq!(tracer.stats().spans_unsampled, 1);
}

#[test]
fn malformed_traceparents_are_clear_errors_and_the_caller_starts_fresh() {
    let cases: &[(&str, PropagationError)] = &[
        ("", PropagationError::InvalidLength),
        (
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            PropagationError::UppercaseHex { field: "trace-id" },
        ),
        (
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            PropagationError::InvalidVersion,
        ),
        (
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            PropagationError::ZeroTraceId,
        ),
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            PropagationError::ZeroParentId,
        ),
    ];
    let tracer = DistributedTracer::new(TracerConfig::default());
    for (header, expected) in cases {
        let got = TraceContext::extract(|name| (name == "traceparent").then_some(*header));
        match (&got, expected) {
            (Err(e), _) if std::mem::discriminant(e) == std::mem::discriminant(expected) => {}
            _ => panic!("{header:?}: got {got:?}, expected {expected:?}"),
        }
        // What a server does with it: a fresh trace.
        let span = match got {
            Ok(Some(cx)) => {
                let _a = tracer.attach(cx);
                tracer.start_span("server", SpanKind::Server, [])
            }
            _ => tracer.start_span("server", SpanKind::Server, []),
        };
        assert_eq!(span.parent_span_id(), None);
    }
    // Arbitrary garbage never panics.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..10_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let bytes: Vec<u8> = (0..(x % 70))
            .map(|i| b"0123456789abcdef-xF "[((x >> (i % 60)) % 20) as usize])
            .collect();
        let s = String::from_utf8(bytes).unwrap();
        let _ = TraceContext::extract(|name| (name == "traceparent").then_some(s.as_str()));
    }
}

#[test]
fn oversize_baggage_propagates_whole_members_within_the_limits() {
    let tracer = DistributedTracer::new(TracerConfig::default());
    let members: Vec<(String, String)> = (0..100)
        .map(|i| (format!("k{i}"), "v".repeat(10)))
        .collect();
    let _trace = tracer.start_trace(None, members);
    let span = tracer.start_span("client", SpanKind::Client, []);
    let (headers, dropped) = headers_of(&span.context());
    // The trace's own external-id baggage may or may not be present; every member is whole.
    let sent: Vec<&str> = headers["baggage"].split(',').collect();
    assert!(sent.len() <= 64, "{}", sent.len());
    assert!(headers["baggage"].len() <= 8192);
    assert_eq!(sent.len() + dropped, span.context().baggage().count());
    assert!(sent.iter().all(|m| m.ends_with("=vvvvvvvvvv")));
}

/// Issue 20, defect 3: for `baggage: k=1,k=2` the two extract paths disagreed
/// (`Propagation::extract` gave "1", `TraceContext::extract` gave "2"). W3C Baggage leaves the
/// reader's choice open ("Uniqueness of keys between multiple `list-member`s in a
/// `baggage-string` is not guaranteed"); this crate's rule is that the first member wins, on
/// both paths, also across several header fields, and inject never sends a duplicate
/// ("Producers SHOULD try to produce a `baggage-string` without any `list-member`s which
/// duplicate the `key` of another list member").
#[test]
fn duplicate_baggage_keys_read_the_same_on_both_extract_paths() {
    use agentcore_telemetry::propagation::Propagation;
    for header in ["k=1,k=2", "k=1, j=0 ,k=2", "k=1,k=2;p,k=3", "k=1 , k = 2"] {
        let get = |name: &str| match name {
            "traceparent" => Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            "baggage" => Some(header),
            _ => None,
        };
        let list = Propagation::extract(get).baggage;
        let cx = TraceContext::extract(get).unwrap().unwrap();
        assert_eq!(list.get("k"), Some("1"), "{header}");
        assert_eq!(cx.get_baggage("k"), Some("1"), "{header}");
        let (headers, _) = headers_of(&cx);
        assert_eq!(headers["baggage"].matches("k=").count(), 1, "{header}");
        assert!(headers["baggage"].contains("k=1"), "{header}");
    }
}

/// Level 2, "Random Trace ID Flag": "If the flag is set in the incoming traceparent header, it
/// MUST also be set in all outgoing traceparent headers which use the same trace-id", and "If
/// the flag is unset in the incoming traceparent header, it MUST also be unset". `tracestate`:
/// "Vendors receiving a tracestate request header MUST send it to outgoing requests". Both
/// travel from the extracted context through a Server span to every Client child.
#[test]
fn random_flag_and_tracestate_travel_through_spans_to_outgoing_calls() {
    let service = DistributedTracer::new(TracerConfig::default());
    for (flags, out) in [
        ("00", "00"),
        ("01", "01"),
        ("02", "02"),
        ("03", "03"),
        ("ff", "03"),
    ] {
        let tp = format!("00-12345678901234567890123456789012-1234567890123456-{flags}");
        let remote = TraceContext::extract(|name| match name {
            "traceparent" => Some(tp.as_str()),
            "tracestate" => Some("foo=1,bar=2"),
            _ => None,
        })
        .unwrap()
        .unwrap();
        let server = service.start_span_with_parent("handle", SpanKind::Server, [], Some(&remote));
        for _ in 0..2 {
            let client = service.start_span("call", SpanKind::Client, []);
            let (headers, dropped) = headers_of(&client.context());
            assert_eq!(dropped, 0);
            let sent = &headers["traceparent"];
            assert!(
                sent.starts_with("00-12345678901234567890123456789012-"),
                "{sent}"
            );
            assert!(sent.ends_with(&format!("-{out}")), "{flags} -> {sent}");
            assert_eq!(headers["tracestate"], "foo=1,bar=2");
            client.end();
        }
        server.end();
    }
    // New traces: the tracer generated the id at random, so the flag is set ("When at least
    // the right-most 7 bytes of the trace-id are randomly (or pseudo-randomly) generated, the
    // random-trace-id flag SHOULD be set to 1"); an id the caller chose is not claimed random.
    let root = service.start_span("root", SpanKind::Server, []);
    assert!(root.context().is_random_trace_id());
    let (headers, _) = headers_of(&root.context());
    assert!(
        headers["traceparent"].ends_with("-03"),
        "{}",
        headers["traceparent"]
    );
    assert!(!headers.contains_key("tracestate"));
    root.end();
    let _t = service.start_trace(Some("4bf92f3577b34da6a3ce929d0e0e4736"), []);
    let span = service.start_span("chosen", SpanKind::Internal, []);
    assert!(!span.context().is_random_trace_id());
    span.end();
}

/// `TraceContext::set_baggage` keeps any non-empty key and says "`inject` drops, and counts,
/// those that are not W3C tokens" (W3C Baggage: "key = token"). `inject` dropped them without
/// counting, so a key like `"user id"` vanished from the outgoing request with a return of 0.
#[test]
fn inject_counts_the_baggage_keys_that_are_not_tokens() {
    let tracer = DistributedTracer::new(TracerConfig::default());
    let _trace = tracer.start_trace(None, [("user id", "1"), ("tenant", "acme"), ("é", "2")]);
    let span = tracer.start_span("client", SpanKind::Client, []);
    let cx = span.context();
    assert_eq!(cx.baggage().count(), 3);
    let (headers, dropped) = headers_of(&cx);
    assert_eq!(headers["baggage"], "tenant=acme");
    assert_eq!(dropped, 2, "two members left out of {headers:?}");
}

/// W3C Baggage: baggage is independent of trace context, and "a system receiving a baggage
/// request header SHOULD send it to outgoing requests". A request with `baggage` and no
/// `traceparent` (a caller's fresh `start_trace`, which has no span to name) or an invalid
/// one: `TraceContext::extract` gives no context, and the baggage must still reach the new
/// trace the server starts, and its outgoing calls.
#[test]
fn baggage_without_a_traceparent_reaches_the_new_trace_and_its_calls() {
    let service_a = DistributedTracer::new(TracerConfig::default());
    let service_b = DistributedTracer::new(TracerConfig::default());
    let trace = service_a.start_trace(None, [("tenant", "acme"), ("note", "50% off")]);
    let (headers, _) = headers_of(trace.context());
    assert_eq!(
        headers.get("traceparent"),
        None,
        "no span to name: {headers:?}"
    );
    drop(trace);

    let invalid_traceparent = {
        let mut h = headers.clone();
        h.insert("traceparent", "00-zz-00f067aa0ba902b7-01".to_string());
        h
    };
    for incoming in [headers, invalid_traceparent] {
        let get = |name: &str| incoming.get(name).map(String::as_str);
        // The server flow the README shows.
        let parent = match TraceContext::extract(get) {
            Ok(Some(cx)) => cx,
            _ => service_b
                .start_detached_trace(None, TraceContext::extract_baggage(get))
                .context()
                .clone(),
        };
        let server =
            service_b.start_span_with_parent("handle", SpanKind::Server, [], Some(&parent));
        assert_eq!(server.parent_span_id(), None, "a new trace's root span");
        let client = service_b.start_span("call", SpanKind::Client, []);
        let (out, dropped) = headers_of(&client.context());
        assert_eq!(dropped, 0);
        assert_eq!(
            out.get("baggage").map(String::as_str),
            Some("note=50%25%20off,tenant=acme"),
            "{incoming:?}"
        );
        client.end();
        server.end();
    }
    // The first member of a repeated key wins, as on `extract`'s path; an invalid header is
    // no baggage.
    let get = |name: &str| (name == "baggage").then_some("k=first,k=second,j=1");
    let baggage = TraceContext::extract_baggage(get);
    assert_eq!(
        baggage.into_iter().collect::<Vec<_>>(),
        [("j".into(), "1".into()), ("k".into(), "first".into())]
    );
    let get = |name: &str| (name == "baggage").then_some("no equals sign");
    assert!(TraceContext::extract_baggage(get).is_empty());
}

/// Trace Context, "Mutating the traceparent Field": "If the value of the `traceparent` field
/// wasn't changed before propagation, `tracestate` MUST NOT be modified as well. Unmodified
/// header propagation is typically implemented in pass-through services like proxies." A
/// context read by `extract` and injected as it is (a proxy that starts no span) sends the
/// `traceparent` it received, so its `tracestate` must go on whole; `inject` cut it to the
/// 512 bytes it keeps for a context whose parent-id it changed (review helper-109). A span
/// started under it changes the parent-id, and the truncation rules apply again.
#[test]
fn a_context_passed_through_unchanged_forwards_its_whole_tracestate() {
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    // Ten entries of 103 characters: 1039 in all, over the 512 kept for a changed context.
    let tracestate = (0..10)
        .map(|i| format!("v{i}={}", "y".repeat(100)))
        .collect::<Vec<_>>()
        .join(",");
    let remote = TraceContext::extract(|name| match name {
        "traceparent" => Some(traceparent),
        "tracestate" => Some(tracestate.as_str()),
        _ => None,
    })
    .unwrap()
    .unwrap();
    let (headers, dropped) = headers_of(&remote);
    assert_eq!(headers["traceparent"], traceparent);
    assert_eq!(headers["tracestate"], tracestate);
    assert_eq!(dropped, 0);

    let tracer = DistributedTracer::new(TracerConfig::default());
    let client = tracer.start_span_with_parent("call", SpanKind::Client, [], Some(&remote));
    let (headers, dropped) = headers_of(&client.context());
    assert_ne!(headers["traceparent"], traceparent);
    let kept = tracestate[..4 * 104 - 1].to_owned();
    assert_eq!(
        (headers["tracestate"].as_str(), dropped),
        (kept.as_str(), 6)
    );
}

/// W3C Baggage, "property": "Additional metadata MAY be appended to values in the form of
/// property set"; "Mutating baggage" lists the changes a system may make (add, update, delete,
/// deduplicate), and dropping a member's properties is none of them. OpenTelemetry's Baggage
/// API, "Propagation": "On `extract`, the propagator should store all metadata as a single
/// metadata instance per entry. On `inject`, the propagator should append the metadata per the
/// W3C specification format." `TraceContext::extract` kept the values and dropped the
/// properties, so a service in the middle (a pass-through, or a span under the extracted
/// context) sent `userId=alice` on for `userId=alice;ttl=30;private`. The map form
/// (`to_map`, which "carries everything `inject` would") carries them as well. A value set
/// locally is a new entry, with no properties.
#[test]
fn baggage_properties_survive_extract_spans_and_inject() {
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let baggage = "userId = alice ; ttl=30;private, note=50%25%20off;p=a%3Bb, plain=v";
    let remote = TraceContext::extract(|name| match name {
        "traceparent" => Some(traceparent),
        "baggage" => Some(baggage),
        _ => None,
    })
    .unwrap()
    .unwrap();
    assert_eq!(remote.get_baggage("userId"), Some("alice"));
    let expected = "note=50%25%20off;p=a%3Bb,plain=v,userId=alice;ttl=30;private";

    // Passed through unchanged.
    let (headers, dropped) = headers_of(&remote);
    assert_eq!((headers["baggage"].as_str(), dropped), (expected, 0));

    // Through a span started under it, and a child of that span.
    let tracer = DistributedTracer::new(TracerConfig::default());
    let _attached = tracer.attach(remote.clone());
    let server = tracer.start_span("handle", SpanKind::Server, []);
    let client = tracer.start_span("call", SpanKind::Client, []);
    let (headers, dropped) = headers_of(&client.context());
    assert_eq!((headers["baggage"].as_str(), dropped), (expected, 0));
    drop((client, server));

    // The map form carries them too, and refuses what is not a property list.
    let map = remote.to_map();
    assert_eq!(map["baggage_properties.userId"], "ttl=30;private");
    assert_eq!(map["baggage_properties.note"], "p=a%3Bb");
    assert!(!map.contains_key("baggage_properties.plain"));
    assert_eq!(TraceContext::from_map(&map), Ok(remote.clone()));
    assert_eq!(
        TraceContext::from_map([
            ("trace_id", "t"),
            ("baggage.k", "v"),
            ("baggage_properties.k", "a b")
        ]),
        Err(ContextMapError::InvalidBaggageProperties(
            "a b".into(),
            PropagationError::InvalidProperty
        ))
    );
    assert_eq!(
        TraceContext::from_map([("trace_id", "t"), ("baggage_properties.k", "p")]),
        Err(ContextMapError::BaggagePropertiesWithoutEntry("k".into()))
    );

    // A value set locally replaces the entry, properties included.
    let mut cx = remote.clone();
    cx.set_baggage("userId", "bob");
    let (headers, _) = headers_of(&cx);
    assert_eq!(
        headers["baggage"],
        "note=50%25%20off;p=a%3Bb,plain=v,userId=bob"
    );
    assert!(cx.baggage_properties("userId").is_empty());
    assert!(!cx.to_map().contains_key("baggage_properties.userId"));
}

/// `inject` with tens of thousands of locally set baggage entries built its outgoing list with
/// `Baggage::insert_member`, which scans the list for the key: quadratic in the entries
/// (callgrind, release build: 67.7 M instructions for 2,000 entries, 1,035 M for 8,000).
/// It now writes the members as it reads them. The output must not change: the same members,
/// in key order, whole, within 64 members and 8192 bytes, with every entry left out (a key
/// that is not a token, a member over the byte limit, anything after the 64th) counted. The
/// reference below is the rule written out the plain way. Not timed: the instruction counts
/// are in the commit that made `inject` linear.
#[test]
fn inject_of_a_huge_local_baggage_matches_the_plain_reference() {
    use agentcore_telemetry::propagation::{BaggageMember, BaggageProperty};
    use agentcore_telemetry::{SpanId, TraceId};

    let mut cx = TraceContext::new(
        TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
        SpanId::from_hex("00f067aa0ba902b7"),
        true,
    );
    let n = 20_000;
    for i in 0..n {
        // Invalid keys and oversize values early (so the byte limit and the dropped count are
        // exercised before the member limit), ordinary members after.
        let key = if i % 7 == 3 && i < 500 {
            format!("k {i:05}")
        } else {
            format!("k{i:05}")
        };
        let value = if i % 11 == 5 && i < 500 {
            "x y".repeat(400)
        } else {
            format!("v{i}")
        };
        cx.set_baggage(key, value);
    }
    let prop = BaggageProperty::new("ttl", Some("30 s")).unwrap();
    assert!(cx.set_baggage_properties("k00001", [prop.clone()]));

    // The reference: every entry in key order, the first 64 whole members that fit in 8192
    // bytes, and the count of the others.
    let mut expected = String::new();
    let (mut emitted, mut expected_dropped) = (0, 0);
    for (k, v) in cx.baggage() {
        let Ok(mut member) = BaggageMember::new(k, v) else {
            expected_dropped += 1;
            continue;
        };
        for p in cx.baggage_properties(k) {
            member = member.with_property(p.clone());
        }
        let text = member.to_string();
        let sep = usize::from(emitted > 0);
        if emitted == 64 || expected.len() + sep + text.len() > 8192 {
            expected_dropped += 1;
            continue;
        }
        if sep == 1 {
            expected.push(',');
        }
        expected.push_str(&text);
        emitted += 1;
    }
    assert_eq!(emitted, 64);
    assert!(expected.contains("k00001=v1;ttl=30%20s,"), "{expected}");

    let (headers, dropped) = headers_of(&cx);
    assert_eq!(headers["baggage"], expected);
    assert_eq!(dropped, expected_dropped);
    assert_eq!(dropped, n - 64);
}
