//! `Baggage::parse` never panics; accepted headers re-encode to a header that parses to an
//! equal value, formatting is stable, and the emit limits hold. `Baggage::parse_lossy` keeps
//! exactly the members `parse` accepts one by one, within the limits, and equals `parse` when
//! nothing is skipped.
#![no_main]

use agentcore_telemetry::propagation::{Baggage, BAGGAGE_EMIT_MAX_MEMBERS, BAGGAGE_MAX_BYTES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    // Also exercise the multi-field path: split the input at NUL bytes.
    let fields: Vec<&str> = input.split('\0').collect();
    let _ = Baggage::parse_all(fields.iter().copied());
    let (lossy, skipped) = Baggage::parse_lossy([&*input]);
    // What is kept is a valid baggage within the parse limits: it re-encodes within 8192
    // bytes and parses back strictly to itself.
    let kept = lossy.to_string();
    assert!(kept.len() <= BAGGAGE_MAX_BYTES, "{} bytes", kept.len());
    assert_eq!(Baggage::parse(&kept).as_ref(), Ok(&lossy));
    // Each kept member is one of the input's, in order, and parses alone.
    let mut members = input.split(',');
    for m in lossy.iter() {
        let want = m.to_string();
        assert!(
            members.any(|raw| Baggage::parse(raw).is_ok_and(|b| b.to_string() == want)),
            "{want} is not a member of the input, in order"
        );
    }
    let strict = Baggage::parse(&input);
    match &strict {
        Ok(b) => {
            assert_eq!(&lossy, b);
            assert!(skipped.is_empty(), "{skipped:?}");
        }
        // The strict parse fails on the first member the lossy one skips.
        Err(e) => assert_eq!(skipped.first(), Some(e)),
    }
    let Ok(first) = strict else {
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
