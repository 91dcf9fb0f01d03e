//! `TraceParent::parse` never panics; accepted headers re-encode (as version 00) to a header
//! that parses to the same ids and flags, and formatting is stable.
#![no_main]

use agentcore_telemetry::propagation::TraceParent;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    let Ok(first) = TraceParent::parse(&input) else {
        return;
    };
    let encoded = first.to_string();
    assert_eq!(encoded.len(), 55);
    let second = TraceParent::parse(&encoded).expect("re-encoded traceparent must parse");
    assert_eq!(
        second,
        TraceParent {
            version: 0,
            ..first
        }
    );
    assert_eq!(second.to_string(), encoded);
    let mut written = String::new();
    second.write_to(&mut written);
    assert_eq!(written, encoded);
});
