//! `TraceState::parse` never panics; accepted headers re-encode to a header that parses to an
//! equal value, formatting is stable, and truncation never exceeds its budget.
#![no_main]

use agentcore_telemetry::propagation::TraceState;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    // Also exercise the multi-field path: split the input at NUL bytes.
    let fields: Vec<&str> = input.split('\0').collect();
    let _ = TraceState::parse_all(fields.iter().copied());
    let Ok(first) = TraceState::parse(&input) else {
        return;
    };
    let encoded = first.to_string();
    let second = TraceState::parse(&encoded).expect("re-encoded tracestate must parse");
    assert_eq!(second, first);
    assert_eq!(second.to_string(), encoded);

    let budget = data.len() % 600;
    let mut truncated = String::new();
    let dropped = first.write_truncated(&mut truncated, budget);
    assert!(truncated.len() <= budget);
    let kept = TraceState::parse(&truncated).expect("truncated tracestate must parse");
    assert_eq!(kept.len() + dropped, first.len());
});
