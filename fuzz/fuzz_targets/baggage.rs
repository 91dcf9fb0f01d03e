//! `Baggage::parse` never panics; accepted headers re-encode to a header that parses to an
//! equal value, formatting is stable, and the emit limits hold.
#![no_main]

use agentcore_telemetry::propagation::{Baggage, BAGGAGE_EMIT_MAX_MEMBERS, BAGGAGE_MAX_BYTES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    // Also exercise the multi-field path: split the input at NUL bytes.
    let fields: Vec<&str> = input.split('\0').collect();
    let _ = Baggage::parse_all(fields.iter().copied());
    let Ok(first) = Baggage::parse(&input) else {
        return;
    };
    let encoded = first.to_string();
    // The parse limit is on the members re-encoded (the resulting `baggage-string`), so what
    // was accepted re-encodes within it, and parses back to an equal value.
    assert!(
        encoded.len() <= BAGGAGE_MAX_BYTES,
        "{} bytes",
        encoded.len()
    );
    let second = Baggage::parse(&encoded).expect("re-encoded baggage must parse");
    assert_eq!(second, first);
    assert_eq!(second.to_string(), encoded);

    let mut limited = String::new();
    let dropped = first.write_limited(&mut limited);
    assert!(limited.len() <= BAGGAGE_MAX_BYTES);
    let kept = Baggage::parse(&limited).expect("limited baggage must parse");
    assert!(kept.len() <= BAGGAGE_EMIT_MAX_MEMBERS);
    assert_eq!(kept.len() + dropped, first.len());
});
