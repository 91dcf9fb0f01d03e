//! A malformed `baggage` list-member is skipped on extraction and the others are kept.
//!
//! W3C Baggage (`baggage/HTTP_HEADER_FORMAT.md`, "Mutating baggage"): "If a system determines
//! that the value of a baggage entry is not in the format defined in this specification, it
//! MAY remove that entry before propagating the baggage header as part of outgoing
//! requests." and ("Limits") "A platform MUST propagate all list-members including any
//! list-members added by the platform if and only if the resulting baggage-string would have
//! 64 list-members or less, and the baggage-string would be 8192 bytes or less." Removing the
//! bad entry is allowed; removing the good ones with it is not. (The OpenTelemetry Python
//! `W3CBaggagePropagator.extract` does the same: it logs and `continue`s past a member that
//! does not match the format.)

use agentcore_telemetry::propagation::{Baggage, Propagation, PropagationError, BAGGAGE};
use agentcore_telemetry::{DistributedTracer, SpanKind, TraceContext, TracerConfig};

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// Headers with one malformed member among good ones, each a different rule broken.
const BAD: &[&str] = &[
    "userId=alice,bad key=1,tenant=acme", // key is not a token
    "userId=alice,noequals,tenant=acme",  // no `=`
    "userId=alice,k=a b,tenant=acme",     // space inside a value
    "userId=alice,k=v;p q,tenant=acme",   // property key not a token
    "userId=alice,k=\"v\",tenant=acme",   // DQUOTE is not a baggage-octet
    "userId=alice,k=v\\w,tenant=acme",    // backslash is not a baggage-octet
    "userId=alice, =1 ,tenant=acme",      // empty key
    "userId=alice,k=v;p=a b,tenant=acme", // property value with a space
];

#[test]
fn propagation_extract_keeps_the_good_members() {
    for header in BAD {
        let ex = Propagation::extract(|name| match name {
            "traceparent" => Some(TRACEPARENT),
            "baggage" => Some(*header),
            _ => None,
        });
        assert_eq!(ex.baggage.get("userId"), Some("alice"), "{header}");
        assert_eq!(ex.baggage.get("tenant"), Some("acme"), "{header}");
        assert_eq!(ex.baggage.len(), 2, "{header}: {}", ex.baggage);
        // The skipped member is reported.
        assert_eq!(ex.errors.len(), 1, "{header}: {:?}", ex.errors);
        assert_eq!(ex.errors[0].0, BAGGAGE);
    }
}

#[test]
fn the_tracer_keeps_and_forwards_the_good_members() {
    let tracer = DistributedTracer::new(TracerConfig {
        from_env: false,
        ..TracerConfig::default()
    });
    for header in BAD {
        let get = |name: &str| match name {
            "traceparent" => Some(TRACEPARENT),
            "baggage" => Some(*header),
            _ => None,
        };
        let cx = TraceContext::extract(get).unwrap().unwrap();
        assert_eq!(cx.get_baggage("userId"), Some("alice"), "{header}");
        assert_eq!(cx.get_baggage("tenant"), Some("acme"), "{header}");
        assert_eq!(
            TraceContext::extract_baggage(get).len(),
            2,
            "{header}: extract_baggage"
        );
        // What goes on to the next service: the good members, whole.
        let span = tracer.start_span_with_parent("handle", SpanKind::Server, [], Some(&cx));
        let mut headers = Vec::new();
        span.context().inject(|k, v| headers.push((k, v)));
        let sent = headers
            .iter()
            .find(|(k, _)| *k == "baggage")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let mut members: Vec<&str> = sent.split(',').collect();
        members.sort_unstable();
        assert_eq!(
            members,
            ["tenant=acme", "userId=alice"],
            "{header}: sent {sent:?}"
        );
    }
}

#[test]
fn empty_members_and_ows_are_not_errors() {
    let ex = Propagation::extract(|name| {
        (name == "baggage").then_some(" a = 1 ,, \t,b=2 ; p ; q = x ,")
    });
    assert_eq!(ex.errors, []);
    assert_eq!(ex.baggage.to_string(), "a=1,b=2;p;q=x");
}

/// A hostile header of malformed members (32 KiB of `x,`: 16,384 members without `=`) gave
/// one error per member skipped: `Propagation::extract` returned 16,384 errors, about 650 KB
/// of `Extracted::errors` (and as many log lines for a server that logs them) for one 32 KiB
/// header, on every request. The first ten are reported; the good members are still kept.
#[test]
fn a_header_of_many_malformed_members_gives_a_bounded_number_of_errors() {
    let header = format!("{}tenant=acme", "x,".repeat(16 * 1024 - 6));
    assert!(header.len() <= 32 * 1024);
    let ex = Propagation::extract(|name| (name == "baggage").then_some(header.as_str()));
    assert_eq!(ex.baggage.get("tenant"), Some("acme"));
    assert_eq!(
        ex.errors.len(),
        10,
        "errors for one header of {} bytes",
        header.len()
    );
    assert!(ex
        .errors
        .iter()
        .all(|e| *e == (BAGGAGE, PropagationError::MissingEquals)));
    let (bag, errors) = Baggage::parse_lossy([header.as_str()]);
    assert_eq!(bag.to_string(), "tenant=acme");
    assert_eq!(errors, [PropagationError::MissingEquals; 10]);
}
