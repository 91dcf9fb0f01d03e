//! `TraceParent::parse` never panics and accepts exactly what a plain reading of the W3C rules
//! (below, digit by digit, with `u128::from_str_radix`) accepts, with the same fields; accepted
//! headers re-encode (as version 00) to a header that parses to the same ids and the flags
//! version 00 defines (reserved bits zero), and formatting is stable.
#![no_main]

use agentcore_telemetry::propagation::TraceParent;
use libfuzzer_sys::fuzz_target;

/// W3C Trace Context's `traceparent` rules, as `TraceParent::parse` documents them, written
/// the obvious way: an oracle independent of the crate's word-at-a-time parser.
fn reference(header: &str) -> Option<TraceParent> {
    let b = header.trim_matches([' ', '\t']).as_bytes();
    let hex = |field: &[u8]| {
        let lower = field
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c));
        lower
            .then(|| u128::from_str_radix(std::str::from_utf8(field).ok()?, 16).ok())
            .flatten()
    };
    if b.len() < 55 {
        return None;
    }
    let version = hex(&b[0..2])? as u8;
    let well_formed = version != 0xff
        && (version != 0 || b.len() == 55)
        && (b.len() == 55 || b[55] == b'-')
        && [b[2], b[35], b[52]] == [b'-'; 3];
    let trace_id = hex(&b[3..35])?;
    let parent_id = hex(&b[36..52])? as u64;
    let flags = hex(&b[53..55])? as u8;
    (well_formed && trace_id != 0 && parent_id != 0).then_some(TraceParent {
        version,
        trace_id,
        parent_id,
        flags,
    })
}

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    let parsed = TraceParent::parse(&input);
    assert_eq!(parsed.ok(), reference(&input), "{input:?}");
    let Ok(first) = parsed else {
        return;
    };
    let encoded = first.to_string();
    assert_eq!(encoded.len(), 55);
    let second = TraceParent::parse(&encoded).expect("re-encoded traceparent must parse");
    // Version 00, with the flags version 00 defines: the reserved bits are written as zero
    // (W3C Trace Context Level 2, "Other Flags": "Vendors MUST set those to zero").
    assert_eq!(
        second,
        TraceParent {
            version: 0,
            flags: first.flags & (TraceParent::FLAG_SAMPLED | TraceParent::FLAG_RANDOM),
            ..first
        }
    );
    assert_eq!(second.to_string(), encoded);
    let mut written = String::new();
    second.write_to(&mut written);
    assert_eq!(written, encoded);
});
