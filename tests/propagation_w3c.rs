//! W3C Trace Context and Baggage conformance tests for `agentcore_telemetry::propagation`.
//!
//! Cases follow the W3C specs and the `w3c/trace-context` test suite (`test/test.py`).

use agentcore_telemetry::propagation::{
    Baggage, BaggageMember, BaggageProperty, Propagation, PropagationError as E, TraceParent,
    TraceState, BAGGAGE, TRACEPARENT, TRACESTATE, TRACESTATE_MAX_MEMBERS,
};
use support::alloc::thread_allocations;

mod support;

#[global_allocator]
static GLOBAL: support::alloc::Counting = support::alloc::Counting;

fn allocs() -> usize {
    thread_allocations() as usize
}

// ---------------------------------------------------------------------------------------------
// Tiny deterministic PRNG (splitmix64) for property-style tests.

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

// ---------------------------------------------------------------------------------------------
// traceparent

const TID: &str = "12345678901234567890123456789012";
const PID: &str = "1234567890123456";

fn tp(s: &str) -> Result<TraceParent, E> {
    TraceParent::parse(s)
}

#[test]
fn traceparent_valid_basic() {
    let t = tp("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
    assert_eq!(
        t,
        TraceParent {
            version: 0,
            trace_id: 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736,
            parent_id: 0x00f0_67aa_0ba9_02b7,
            flags: 1
        }
    );
    assert!(t.sampled());
    let t = tp(&format!("00-{TID}-{PID}-00")).unwrap();
    assert!(!t.sampled());
    assert_eq!(t.trace_id, 0x1234_5678_9012_3456_7890_1234_5678_9012);
    assert_eq!(t.parent_id, 0x1234_5678_9012_3456);
}

#[test]
fn traceparent_flags_kept_including_random_bit() {
    let t = tp(&format!("00-{TID}-{PID}-03")).unwrap();
    assert_eq!(t.flags, 0x03);
    assert!(t.sampled());
    assert!(t.random());
    assert_eq!(t.to_string(), format!("00-{TID}-{PID}-03"));
    let t = tp(&format!("00-{TID}-{PID}-02")).unwrap();
    assert!(!t.sampled());
    assert_eq!(t.child(7).flags, 0x02);
    assert_eq!(t.child(7).parent_id, 7);
}

#[test]
fn traceparent_ows_trimmed() {
    for h in [
        format!(" 00-{TID}-{PID}-01"),
        format!("\t00-{TID}-{PID}-01"),
        format!("00-{TID}-{PID}-01 "),
        format!("00-{TID}-{PID}-01\t"),
        format!("\t 00-{TID}-{PID}-01 \t"),
    ] {
        assert_eq!(
            tp(&h).unwrap().trace_id,
            u128::from_str_radix(TID, 16).unwrap()
        );
    }
}

#[test]
fn traceparent_version_00_exact_length() {
    assert_eq!(tp(&format!("00-{TID}-{PID}-01.")), Err(E::InvalidLength));
    assert_eq!(
        tp(&format!("00-{TID}-{PID}-01-what-the-future-will-be-like")),
        Err(E::InvalidLength)
    );
    assert_eq!(tp(&format!("00-{TID}-{PID}-001")), Err(E::InvalidLength));
    assert_eq!(tp(&format!("00-{TID}-{PID}-1")), Err(E::InvalidLength));
    assert_eq!(tp(""), Err(E::InvalidLength));
    assert_eq!(tp("   "), Err(E::InvalidLength));
}

#[test]
fn traceparent_higher_versions() {
    // Exactly 55 characters: valid.
    let t = tp(&format!("cc-{TID}-{PID}-01")).unwrap();
    assert_eq!(t.version, 0xcc);
    assert_eq!(t.parent_id, 0x1234_5678_9012_3456);
    // Extra fields after a dash: valid; re-emitted as version 00 without them.
    let t = tp(&format!("cc-{TID}-{PID}-01-what-the-future-will-be-like")).unwrap();
    assert_eq!(t.version, 0xcc);
    assert_eq!(t.to_string(), format!("00-{TID}-{PID}-01"));
    // Garbage without a dash after the flags: invalid.
    assert_eq!(
        tp(&format!("cc-{TID}-{PID}-01.what-the-future-will-be-like")),
        Err(E::TrailingData)
    );
    assert_eq!(tp(&format!("cc-{TID}-{PID}-0100")), Err(E::TrailingData));
    // Shorter than 55: invalid.
    assert_eq!(tp(&format!("cc-{TID}-{PID}-1")), Err(E::InvalidLength));
    // Version fe is the highest valid one.
    assert_eq!(tp(&format!("fe-{TID}-{PID}-01-x")).unwrap().version, 0xfe);
}

#[test]
fn traceparent_version_ff_invalid() {
    assert_eq!(tp(&format!("ff-{TID}-{PID}-01")), Err(E::InvalidVersion));
    assert_eq!(
        tp(&format!("ff-{TID}-{PID}-01-more")),
        Err(E::InvalidVersion)
    );
}

#[test]
fn traceparent_version_illegal_or_wrong_length() {
    assert_eq!(
        tp(&format!(".0-{TID}-{PID}-01")),
        Err(E::InvalidHex { field: "version" })
    );
    assert_eq!(
        tp(&format!("0.-{TID}-{PID}-01")),
        Err(E::InvalidHex { field: "version" })
    );
    assert_eq!(tp(&format!("000-{TID}-{PID}-01")), Err(E::InvalidLength));
    assert_eq!(tp(&format!("0000-{TID}-{PID}-01")), Err(E::InvalidLength));
    assert_eq!(tp(&format!("0-{TID}-{PID}-01")), Err(E::InvalidLength));
    // A higher version with a too-long version field shifts the dash.
    assert_eq!(
        tp(&format!("cc0-{TID}-{PID}-01")),
        Err(E::MissingDelimiter { after: "version" })
    );
}

#[test]
fn traceparent_uppercase_rejected_in_every_field() {
    assert_eq!(
        tp(&format!("0A-{TID}-{PID}-01")),
        Err(E::UppercaseHex { field: "version" })
    );
    assert_eq!(
        tp(&format!("00-4BF92F3577B34DA6A3CE929D0E0E4736-{PID}-01")),
        Err(E::UppercaseHex { field: "trace-id" })
    );
    assert_eq!(
        tp(&format!("00-{TID}-00F067AA0BA902B7-01")),
        Err(E::UppercaseHex { field: "parent-id" })
    );
    assert_eq!(
        tp(&format!("00-{TID}-{PID}-0A")),
        Err(E::UppercaseHex {
            field: "trace-flags"
        })
    );
}

#[test]
fn traceparent_zero_ids_invalid() {
    assert_eq!(
        tp(&format!("00-00000000000000000000000000000000-{PID}-01")),
        Err(E::ZeroTraceId)
    );
    assert_eq!(
        tp(&format!("00-{TID}-0000000000000000-01")),
        Err(E::ZeroParentId)
    );
}

#[test]
fn traceparent_illegal_characters() {
    assert_eq!(
        tp(&format!("00-.2345678901234567890123456789012-{PID}-01")),
        Err(E::InvalidHex { field: "trace-id" })
    );
    assert_eq!(
        tp(&format!("00-1234567890123456789012345678901.-{PID}-01")),
        Err(E::InvalidHex { field: "trace-id" })
    );
    assert_eq!(
        tp(&format!("00-{TID}-.234567890123456-01")),
        Err(E::InvalidHex { field: "parent-id" })
    );
    assert_eq!(
        tp(&format!("00-{TID}-123456789012345.-01")),
        Err(E::InvalidHex { field: "parent-id" })
    );
    assert_eq!(
        tp(&format!("00-{TID}-{PID}-.0")),
        Err(E::InvalidHex {
            field: "trace-flags"
        })
    );
    assert_eq!(
        tp(&format!("00-{TID}-{PID}-0.")),
        Err(E::InvalidHex {
            field: "trace-flags"
        })
    );
    assert_eq!(
        tp(&format!("00-{TID}-{PID}-0g")),
        Err(E::InvalidHex {
            field: "trace-flags"
        })
    );
    // Multi-byte UTF-8 in a field: no panic, an error.
    assert_eq!(
        tp(&format!("00-{TID}-123456789012345é-1")),
        Err(E::InvalidHex { field: "parent-id" })
    );
    assert!(tp("00-ééééééééééééééééééééééééééééééé-1234567890123456-01").is_err());
}

#[test]
fn traceparent_field_lengths_and_dashes() {
    // trace-id too long / too short (total length changes).
    assert_eq!(tp(&format!("00-{TID}3-{PID}-01")), Err(E::InvalidLength));
    assert_eq!(
        tp(&format!("00-{}-{PID}-01", &TID[1..])),
        Err(E::InvalidLength)
    );
    // parent-id too long / too short.
    assert_eq!(tp(&format!("00-{TID}-{PID}7-01")), Err(E::InvalidLength));
    assert_eq!(
        tp(&format!("00-{TID}-{}-01", &PID[1..])),
        Err(E::InvalidLength)
    );
    // Same total length but fields shifted: a missing dash is detected.
    assert_eq!(
        tp(&format!("00-{TID}1-{}-01", &PID[1..])),
        Err(E::MissingDelimiter { after: "trace-id" })
    );
    assert_eq!(
        tp(&format!("00-{TID}-{PID}1-1")),
        Err(E::MissingDelimiter { after: "parent-id" })
    );
    assert_eq!(
        tp(&format!("00_{TID}-{PID}-01")),
        Err(E::MissingDelimiter { after: "version" })
    );
    // Dashes missing entirely / extra dash.
    assert_eq!(tp(&format!("00{TID}{PID}01")), Err(E::InvalidLength));
    assert_eq!(tp(&format!("00--{TID}-{PID}-01")), Err(E::InvalidLength));
    assert_eq!(
        tp(&format!("cc--{TID}-{PID}-01")),
        Err(E::InvalidHex { field: "trace-id" })
    );
}

#[test]
fn traceparent_format_and_write_to() {
    let t = TraceParent {
        version: 0x42,
        trace_id: 0x0af7_6519_16cd_43dd_8448_eb21_1c80_319c,
        parent_id: 0xb7ad_6b71_6920_3331,
        flags: 0x01,
    };
    let mut out = String::from("x:");
    t.write_to(&mut out);
    assert_eq!(
        out,
        "x:00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    );
    assert_eq!(t.to_string().len(), 55);
    assert_eq!(&out[2..], t.to_string());
}

/// A header of a later version, or one with reserved flag bits set, is forwarded by
/// `to_string` / `write_to` as a version-00 header with the reserved bits zero: W3C Trace
/// Context Level 2, "Other Flags": "The behavior of other flags, such as (`00000100`) is not
/// defined and is reserved for future use. Vendors MUST set those to zero." Before, `ff` was
/// written back as version 00's flags (review helper-149).
#[test]
fn reserved_flag_bits_are_written_as_zero() {
    let future = tp(&format!("cc-{TID}-{PID}-ff-what-next")).unwrap();
    assert_eq!(future.flags, 0xff, "the parsed value keeps the byte whole");
    assert_eq!(future.to_string(), format!("00-{TID}-{PID}-03"));
    let reserved = tp(&format!("00-{TID}-{PID}-fd")).unwrap();
    let mut out = String::new();
    reserved.write_to(&mut out);
    assert_eq!(out, format!("00-{TID}-{PID}-01"));
}

/// `TraceId::from_hex` / `SpanId::from_hex`, the tracer's readers of W3C ids, share the
/// word-at-a-time decoder (`propagation::hex`, rewritten in cfb500a / 0558db2) but have their
/// own length checks, untested until now beyond a few valid values (review helper-109).
/// `trace-id = 32HEXDIGLC`, `parent-id = 16HEXDIGLC`, `HEXDIGLC = DIGIT / "a" / "b" / "c" /
/// "d" / "e" / "f" ; lowercase hex character`, "All bytes as zero [...] is considered an
/// invalid value": every byte value at every position (uppercase, the bytes next to each
/// range, 0x80 and up), mixed case, multi-byte characters, and every length around the right
/// one, against a digit-by-digit reading of that grammar.
#[test]
fn trace_and_span_ids_from_hex_take_exactly_lowercase_hex_of_their_length() {
    use agentcore_telemetry::{SpanId, TraceId};
    fn reference(s: &[u8], len: usize) -> Option<u128> {
        if s.len() != len {
            return None;
        }
        let v = s.iter().try_fold(0u128, |v, &c| {
            let d = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                _ => return None,
            };
            Some(v << 4 | u128::from(d))
        })?;
        (v != 0).then_some(v)
    }
    let check = |s: &[u8]| {
        let text = String::from_utf8_lossy(s);
        assert_eq!(
            TraceId::from_hex(&text).map(TraceId::to_u128),
            reference(text.as_bytes(), 32),
            "{text:?}"
        );
        assert_eq!(
            SpanId::from_hex(&text).map(|id| u128::from(id.to_u64())),
            reference(text.as_bytes(), 16),
            "{text:?}"
        );
    };
    for seed in [
        TID,
        PID,
        "0123456789abcdeffedcba9876543210",
        "0000000000000001",
    ] {
        let seed = seed.as_bytes();
        for pos in 0..seed.len() {
            for byte in 0..=255u8 {
                let mut s = seed.to_vec();
                s[pos] = byte;
                check(&s);
            }
        }
        for len in 0..=seed.len() + 1 {
            check(&seed.repeat(2)[..len]);
        }
        // Bytes 0x80 and up at the right length: every two-byte character, and the three-byte
        // ones all of whose bytes have the low seven bits of a digit (lead E1-E6 is `a`-`f`,
        // continuation B0-B9 is `0`-`9`: U+1C30 is E1 B0 B0, "a00" once the top bits go), in
        // every position.
        let digit_like = (0x1..=0x6u32).flat_map(|lead| {
            (0x30..=0x39u32)
                .flat_map(move |b| (0x30..=0x39u32).map(move |c| lead << 12 | b << 6 | c))
        });
        let wide = (0x80..0x800u32).chain(digit_like).chain([0xff10, 0xfffd]);
        for c in wide.filter_map(char::from_u32) {
            let mut buf = [0; 4];
            let c = c.encode_utf8(&mut buf).as_bytes();
            for pos in 0..=seed.len() - c.len() {
                let mut s = seed.to_vec();
                s[pos..pos + c.len()].copy_from_slice(c);
                check(&s);
            }
        }
    }
    for s in [
        "4BF92F3577B34DA6A3CE929D0E0E4736",
        "4bf92f3577b34da6a3ce929d0e0e473A",
        "Abcdef0123456789",
        "00f067aa0ba902bF",
        "4bf92f3577b34da6a3ce929d0e0e473é",
        "4bf92f3577b34da6a3ce929d0e0e47é",
        "00f067aa0ba902é",
        "00f067aa0ba902b７",
        "00000000000000000000000000000000",
        "0000000000000000",
        " 00f067aa0ba902b7",
        "00f067aa0ba902b7 ",
    ] {
        check(s.as_bytes());
    }
}

#[test]
fn traceparent_round_trip_random() {
    let mut rng = Rng(1);
    for _ in 0..2000 {
        let x = TraceParent {
            version: 0,
            trace_id: (u128::from(rng.next()) << 64 | u128::from(rng.next())).max(1),
            parent_id: rng.next().max(1),
            flags: rng.next() as u8,
        };
        // The reserved flag bits are written as zero (Level 2, "Other Flags": "Vendors MUST
        // set those to zero"); the rest round-trips.
        let written = TraceParent {
            flags: x.flags & (TraceParent::FLAG_SAMPLED | TraceParent::FLAG_RANDOM),
            ..x
        };
        assert_eq!(tp(&x.to_string()), Ok(written));
    }
}

#[test]
fn traceparent_parse_does_not_allocate() {
    let valid = format!("00-{TID}-{PID}-01");
    let invalid = format!("00-{TID}-0000000000000000-01");
    let before = allocs();
    for _ in 0..100 {
        assert!(TraceParent::parse(&valid).is_ok());
        assert_eq!(TraceParent::parse(&invalid), Err(E::ZeroParentId));
    }
    assert_eq!(allocs() - before, 0);
}

#[test]
fn traceparent_write_to_only_grows_the_string() {
    let t = tp(&format!("00-{TID}-{PID}-01")).unwrap();
    let mut out = String::with_capacity(64);
    let before = allocs();
    t.write_to(&mut out);
    assert_eq!(allocs() - before, 0);
    assert_eq!(out.len(), 55);
}

// ---------------------------------------------------------------------------------------------
// tracestate

fn members(n: usize) -> String {
    (1..=n)
        .map(|i| format!("bar{i:02}={i:02}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn tracestate_32_members_ok_33_invalid() {
    let ts = TraceState::parse(&members(32)).unwrap();
    assert_eq!(ts.len(), 32);
    assert_eq!(ts.get("bar01"), Some("01"));
    assert_eq!(ts.get("bar32"), Some("32"));
    assert_eq!(
        TraceState::parse(&members(33)),
        Err(E::TooManyMembers { limit: 32 })
    );
    // Same across multiple header fields (test suite layout).
    let all = members(33);
    let (a, b) = all.split_at(all.find("bar31").unwrap());
    assert_eq!(
        TraceState::parse_all([a.trim_end_matches(','), b]),
        Err(E::TooManyMembers { limit: 32 })
    );
    // Empty members do not count toward the limit.
    assert_eq!(
        TraceState::parse(&(members(32) + ",,, ,")).unwrap().len(),
        32
    );
}

/// The key grammar of the current text (Level 2, w3c/trace-context #386):
/// `key = ( lcalpha / DIGIT ) 0*255 ( keychar )`, `keychar = lcalpha / DIGIT / "_" / "-"/ "*"
/// / "/" / "@"`: "A key MUST begin with a lowercase letter or a digit and contain up to 256
/// characters including [...] and at signs (@)." `@` is an ordinary key character; the Level 1
/// `tenant@system` form and its part limits (241 and 14 characters) no longer exist.
#[test]
fn tracestate_key_grammar() {
    let ok = |k: &str| TraceState::parse(&format!("{k}=1")).map(|ts| ts.len());
    assert_eq!(ok(&"z".repeat(256)), Ok(1));
    assert_eq!(ok(&"z".repeat(257)), Err(E::InvalidKey));
    assert_eq!(ok("0abc"), Ok(1));
    assert_eq!(ok("abcdefghijklmnopqrstuvwxyz0123456789_-*/"), Ok(1));
    assert_eq!(
        ok("abcdefghijklmnopqrstuvwxyz0123456789_-*/@a-z0-9_-*/"),
        Ok(1)
    );
    for level2 in [
        format!("{}@{}", "t".repeat(241), "v".repeat(14)),
        // Level 1 refused these (tenant over 241, system over 14 or not starting with a
        // letter, more than one `@`, empty system); the current grammar accepts them.
        format!("{}@v", "t".repeat(242)),
        format!("t@{}", "v".repeat(15)),
        "t@1v".into(),
        "foo@".into(),
        "foo@@bar".into(),
        "foo@bar@baz".into(),
        // Only the total counts: 256 characters with `@`s anywhere after the first.
        format!("a{}", "@".repeat(255)),
    ] {
        assert_eq!(ok(&level2), Ok(1), "{level2}");
    }
    assert_eq!(ok(&format!("a{}", "@".repeat(256))), Err(E::InvalidKey));
    for bad in [
        "FOO", "foo.bar", "_foo", "-foo", "*foo", "/foo", "@foo", "@", "fOo", "é", "foo bar",
    ] {
        assert_eq!(ok(bad), Err(E::InvalidKey), "{bad}");
    }
    // "foo =1": the space belongs to the key.
    assert_eq!(TraceState::parse("foo =1"), Err(E::InvalidKey));
    assert_eq!(TraceState::parse("=1"), Err(E::InvalidKey));
    let mut ts = TraceState::new();
    assert_eq!(ts.insert("foo@@bar", "1"), Ok(()));
    assert_eq!(ts.insert("@foo", "1"), Err(E::InvalidKey));
}

#[test]
fn tracestate_value_rules() {
    let all: String = (0x20u8..=0x7e)
        .filter(|c| *c != b',' && *c != b'=')
        .map(char::from)
        .collect();
    let ts = TraceState::parse(&format!("k={all}")).unwrap();
    assert_eq!(ts.get("k"), Some(all.as_str()));
    assert_eq!(
        TraceState::parse(&format!("k={}", "v".repeat(256)))
            .unwrap()
            .get("k"),
        Some("v".repeat(256).as_str())
    );
    assert_eq!(
        TraceState::parse(&format!("k={}", "v".repeat(257))),
        Err(E::InvalidValue)
    );
    assert_eq!(TraceState::parse("foo=bar=baz"), Err(E::InvalidValue));
    assert_eq!(TraceState::parse("foo=,bar=3"), Err(E::InvalidValue));
    assert_eq!(TraceState::parse("foo"), Err(E::MissingEquals));
    assert_eq!(TraceState::parse("k=a\tb"), Err(E::InvalidValue));
    assert_eq!(TraceState::parse("k=é"), Err(E::InvalidValue));
    // Leading spaces in a value are part of it; trailing OWS is trimmed by the list syntax.
    assert_eq!(TraceState::parse("k= v ").unwrap().get("k"), Some(" v"));
    let mut ts = TraceState::new();
    assert_eq!(ts.insert("k", "v "), Err(E::InvalidValue));
    assert_eq!(ts.insert("k", "a,b"), Err(E::InvalidValue));
    assert_eq!(ts.insert("k", "a=b"), Err(E::InvalidValue));
    assert_eq!(ts.insert("k", ""), Err(E::InvalidValue));
    assert_eq!(ts.insert("K", "v"), Err(E::InvalidKey));
    assert!(ts.is_empty());
}

/// Level 2 (w3c/trace-context #477), "Mutating the tracestate Field": "Adding a key/value pair
/// MUST NOT result in the same key being present multiple times", and "Vendors SHOULD NOT delete
/// keys that were not generated by them. [...] Finally, vendors MAY also discard duplicate keys
/// that were not generated by them." A repeated key no longer voids the header (Level 1 said
/// "Only one entry per key is allowed" and receivers dropped it): the first entry is kept.
#[test]
fn tracestate_duplicates_keep_the_first_entry() {
    let parsed = |h: &str| TraceState::parse(h).map(|ts| ts.to_string());
    assert_eq!(parsed("foo=1,foo=1"), Ok("foo=1".into()));
    assert_eq!(parsed("foo=1,foo=2"), Ok("foo=1".into()));
    assert_eq!(
        parsed("a=1,foo=2,b=3,foo=4,a=5"),
        Ok("a=1,foo=2,b=3".into())
    );
    let all = |hs: &[&str]| TraceState::parse_all(hs.iter().copied()).map(|ts| ts.to_string());
    assert_eq!(all(&["foo=1", "foo=1"]), Ok("foo=1".into()));
    assert_eq!(all(&["foo=1", "foo=2"]), Ok("foo=1".into()));
    assert_eq!(
        all(&["bar=0,foo=1", "", "foo=2,baz=3"]),
        Ok("bar=0,foo=1,baz=3".into())
    );
    // Duplicates still count towards the 32 list-members of the ABNF.
    let dup33 = vec!["k=v"; 33].join(",");
    assert_eq!(
        TraceState::parse(&dup33),
        Err(E::TooManyMembers {
            limit: TRACESTATE_MAX_MEMBERS
        })
    );
    assert_eq!(parsed(&vec!["k=v"; 32].join(",")), Ok("k=v".into()));
    // An invalid member anywhere still voids the header, duplicates or not.
    assert_eq!(TraceState::parse("foo=1,foo=2,@bar=3"), Err(E::InvalidKey));
    // What this participant adds never duplicates a key: `insert` replaces and moves left.
    let mut ts = TraceState::parse("foo=1,bar=2,foo=3").unwrap();
    ts.insert("bar", "9").unwrap();
    assert_eq!(ts.to_string(), "bar=9,foo=1");
}

#[test]
fn tracestate_ows_and_empty_members() {
    for h in [
        "foo=1 \t , \t bar=2, \t baz=3",
        "foo=1\t \t,\t \tbar=2,\t \tbaz=3",
        ",foo=1,,bar=2, ,baz=3,",
    ] {
        let ts = TraceState::parse(h).unwrap();
        assert_eq!(ts.to_string(), "foo=1,bar=2,baz=3", "{h:?}");
    }
    assert!(TraceState::parse("").unwrap().is_empty());
    let ts = TraceState::parse_all(["", "foo=1", ""]).unwrap();
    assert_eq!(ts.get("foo"), Some("1"));
    let ts = TraceState::parse_all(["foo=1,bar=2", "rojo=1,congo=2", "baz=3"]).unwrap();
    assert_eq!(ts.to_string(), "foo=1,bar=2,rojo=1,congo=2,baz=3");
}

#[test]
fn tracestate_insert_moves_left_and_evicts_rightmost() {
    let mut ts = TraceState::parse("a=1,b=2,c=3").unwrap();
    ts.insert("c", "9").unwrap();
    assert_eq!(ts.to_string(), "c=9,a=1,b=2");
    ts.insert("new", "x").unwrap();
    assert_eq!(ts.to_string(), "new=x,c=9,a=1,b=2");
    assert_eq!(ts.remove("a").as_deref(), Some("1"));
    assert_eq!(ts.remove("a"), None);
    assert_eq!(ts.to_string(), "new=x,c=9,b=2");
    let pairs: Vec<(&str, &str)> = ts.iter().collect();
    assert_eq!(pairs, [("new", "x"), ("c", "9"), ("b", "2")]);

    let mut full = TraceState::parse(&members(32)).unwrap();
    full.insert("bar05", "x").unwrap();
    assert_eq!(full.len(), 32);
    assert_eq!(full.iter().next(), Some(("bar05", "x")));
    full.insert("fresh", "y").unwrap();
    assert_eq!(full.len(), 32);
    assert_eq!(full.iter().next(), Some(("fresh", "y")));
    assert_eq!(full.get("bar32"), None, "rightmost member evicted");
    assert_eq!(full.get("bar31"), Some("31"));
}

#[test]
fn tracestate_truncation_rule() {
    let big1 = "x".repeat(150); // entry "big1=..." is 155 chars (> 128)
    let big2 = "y".repeat(130);
    let h = format!("a=1,big1={big1},b=2,big2={big2},c=3");
    let ts = TraceState::parse(&h).unwrap();

    let mut out = String::new();
    assert_eq!(ts.write_truncated(&mut out, 512), 0);
    assert_eq!(out, h);

    // Need to shed one large entry: the rightmost large one goes first.
    let mut out = String::new();
    assert_eq!(ts.write_truncated(&mut out, h.len() - 1), 1);
    assert_eq!(out, format!("a=1,big1={big1},b=2,c=3"));

    // Both large ones go before any small one.
    let mut out = String::new();
    assert_eq!(ts.write_truncated(&mut out, 11), 2);
    assert_eq!(out, "a=1,b=2,c=3");

    // Then small ones from the right.
    let mut out = String::new();
    assert_eq!(ts.write_truncated(&mut out, 10), 3);
    assert_eq!(out, "a=1,b=2");
    let mut out = String::new();
    assert_eq!(ts.write_truncated(&mut out, 0), 5);
    assert_eq!(out, "");

    // 32 members of ~20 chars: at least 512 chars are kept and the output never exceeds the cap.
    let many: Vec<String> = (0..32)
        .map(|i| format!("k{i:02}={}", "v".repeat(16)))
        .collect();
    let ts = TraceState::parse(&many.join(",")).unwrap();
    let mut out = String::new();
    let dropped = ts.write_truncated(&mut out, 512);
    assert!(out.len() <= 512);
    assert_eq!(dropped, 32 - out.split(',').count());
    assert_eq!(out, many[..32 - dropped].join(","));
    assert_eq!(TraceState::parse(&out).unwrap().len(), 32 - dropped);
}

#[test]
fn tracestate_round_trip_random() {
    let mut rng = Rng(7);
    let first: Vec<u8> = (b'a'..=b'z').chain(b'0'..=b'9').collect();
    let rest: Vec<u8> = first.iter().copied().chain(*b"_-*/").collect();
    let value_chars: Vec<u8> = (0x20u8..=0x7e)
        .filter(|c| *c != b',' && *c != b'=')
        .collect();
    for _ in 0..300 {
        let mut ts = TraceState::new();
        for _ in 0..rng.below(33) {
            let mut key = String::from(char::from(*rng.pick(&first)));
            for _ in 0..rng.below(20) {
                key.push(char::from(*rng.pick(&rest)));
            }
            if rng.below(3) == 0 {
                key.push('@');
                key.push(char::from(b'a' + rng.below(26) as u8));
            }
            let mut value: String = (0..rng.below(40))
                .map(|_| char::from(*rng.pick(&value_chars)))
                .collect();
            value.push(char::from(*rng.pick(&value_chars[1..]))); // not a space
            ts.insert(&key, &value).unwrap();
        }
        assert_eq!(TraceState::parse(&ts.to_string()), Ok(ts.clone()));
    }
}

// ---------------------------------------------------------------------------------------------
// baggage

fn bag_of(pairs: &[(&str, &str)]) -> Baggage {
    let mut b = Baggage::new();
    for (k, v) in pairs {
        b.insert(k, v).unwrap();
    }
    b
}

#[test]
fn baggage_encoding_of_every_special_class() {
    let cases: &[(&str, &str)] = &[
        ("50%off", "50%25off"),
        (r"a\b", "a%5Cb"),
        ("a b", "a%20b"),
        ("a,b", "a%2Cb"),
        ("a;b", "a%3Bb"),
        ("\"q\"", "%22q%22"),
        ("a=b", "a=b"),
        ("é", "%C3%A9"),
        ("🦀", "%F0%9F%A6%80"),
        ("\t\r\n\0\x7f", "%09%0D%0A%00%7F"),
        ("", ""),
        ("!#$&'()*+-./:<>?@[]^_`{|}~", "!#$&'()*+-./:<>?@[]^_`{|}~"),
    ];
    for (value, encoded) in cases {
        let b = bag_of(&[("k", value)]);
        assert_eq!(b.to_string(), format!("k={encoded}"), "{value:?}");
        assert_eq!(Baggage::parse(&b.to_string()).unwrap(), b, "{value:?}");
        assert_eq!(
            Baggage::parse(&format!("k={encoded}")).unwrap().get("k"),
            Some(*value)
        );
    }
}

#[test]
fn baggage_decoding_is_case_insensitive_and_plus_is_literal() {
    let b = Baggage::parse("k=%c3%a9%2c%2C+").unwrap();
    assert_eq!(b.get("k"), Some("é,,+"));
}

#[test]
fn baggage_invalid_percent_escapes_kept_literally() {
    let b = Baggage::parse("bad=%ZZ,trail=50%,short=%4,mixed=%4g%41").unwrap();
    assert_eq!(b.get("bad"), Some("%ZZ"));
    assert_eq!(b.get("trail"), Some("50%"));
    assert_eq!(b.get("short"), Some("%4"));
    assert_eq!(b.get("mixed"), Some("%4gA"));
    // Re-encoding escapes the literal '%', so the value survives another round.
    assert_eq!(
        b.to_string(),
        "bad=%25ZZ,trail=50%25,short=%254,mixed=%254gA"
    );
    assert_eq!(Baggage::parse(&b.to_string()).unwrap(), b);
}

#[test]
fn baggage_invalid_utf8_becomes_replacement_char() {
    let b = Baggage::parse("a=%FF,b=x%C3,c=%C3%28,d=%F0%9F%A6").unwrap();
    assert_eq!(b.get("a"), Some("\u{FFFD}"));
    assert_eq!(b.get("b"), Some("x\u{FFFD}"));
    assert_eq!(b.get("c"), Some("\u{FFFD}("));
    assert_eq!(b.get("d"), Some("\u{FFFD}"));
    assert_eq!(
        b.to_string(),
        "a=%EF%BF%BD,b=x%EF%BF%BD,c=%EF%BF%BD(,d=%EF%BF%BD"
    );
}

#[test]
fn baggage_properties_kept_and_reemitted() {
    let b = Baggage::parse(
        "key1=value1;property1;property2, key2 = value2, key3=value3; propertyKey=propertyValue",
    )
    .unwrap();
    assert_eq!(b.len(), 3);
    let m: Vec<&BaggageMember> = b.iter().collect();
    assert_eq!(m[0].key(), "key1");
    assert_eq!(m[0].value(), "value1");
    assert_eq!(
        m[0].properties(),
        [
            BaggageProperty::new("property1", None).unwrap(),
            BaggageProperty::new("property2", None).unwrap()
        ]
    );
    assert_eq!(b.get("key2"), Some("value2"));
    assert_eq!(m[2].properties()[0].key(), "propertyKey");
    assert_eq!(m[2].properties()[0].value(), Some("propertyValue"));
    assert_eq!(
        b.to_string(),
        "key1=value1;property1;property2,key2=value2,key3=value3;propertyKey=propertyValue"
    );
    // Property values are percent-coded like member values.
    let m = BaggageMember::new("k", "v")
        .unwrap()
        .with_property(BaggageProperty::new("p", Some("a;b %")).unwrap());
    let mut b = Baggage::new();
    b.insert_member(m);
    assert_eq!(b.to_string(), "k=v;p=a%3Bb%20%25");
    assert_eq!(Baggage::parse(&b.to_string()).unwrap(), b);
    // Trailing or doubled ';' yield no empty property.
    let b = Baggage::parse("k=v;;p;").unwrap();
    assert_eq!(b.to_string(), "k=v;p");
}

#[test]
fn baggage_ows_and_spec_examples() {
    let b = Baggage::parse_all([
        "userId =   alice",
        "serverNode = DF%2028, isProduction = false",
    ])
    .unwrap();
    assert_eq!(b.get("userId"), Some("alice"));
    assert_eq!(b.get("serverNode"), Some("DF 28"));
    assert_eq!(b.get("isProduction"), Some("false"));
    assert_eq!(
        b.to_string(),
        "userId=alice,serverNode=DF%2028,isProduction=false"
    );
    let b = Baggage::parse("\t a = 1 \t,\tb=2\t").unwrap();
    assert_eq!(b.to_string(), "a=1,b=2");
    assert!(Baggage::parse("").unwrap().is_empty());
    assert!(Baggage::parse(" , ,").unwrap().is_empty());
    assert_eq!(Baggage::parse("a=1,,b=2").unwrap().len(), 2);
    // Values may contain '='.
    assert_eq!(Baggage::parse("k=a==b").unwrap().get("k"), Some("a==b"));
}

#[test]
fn baggage_malformed_members_rejected() {
    assert_eq!(Baggage::parse("novalue"), Err(E::MissingEquals));
    assert_eq!(Baggage::parse("=v"), Err(E::InvalidKey));
    assert_eq!(Baggage::parse("a b=v"), Err(E::InvalidKey));
    assert_eq!(Baggage::parse("k(=v"), Err(E::InvalidKey));
    assert_eq!(Baggage::parse("é=v"), Err(E::InvalidKey));
    assert_eq!(Baggage::parse("k=a b"), Err(E::InvalidValue));
    assert_eq!(Baggage::parse("k=\"q\""), Err(E::InvalidValue));
    assert_eq!(Baggage::parse(r"k=a\b"), Err(E::InvalidValue));
    assert_eq!(Baggage::parse("k=é"), Err(E::InvalidValue));
    assert_eq!(Baggage::parse("k=v;p q"), Err(E::InvalidProperty));
    assert_eq!(Baggage::parse("k=v;p=a b"), Err(E::InvalidProperty));
    assert_eq!(Baggage::parse("k=v;=x"), Err(E::InvalidProperty));
    assert_eq!(bag_of(&[]).insert("a b", "v"), Err(E::InvalidKey));
    assert_eq!(BaggageMember::new("k,", "v"), Err(E::InvalidKey));
    assert_eq!(BaggageProperty::new("", None), Err(E::InvalidProperty));
}

#[test]
fn baggage_parse_limits() {
    // 8192 bytes accepted, 8193 rejected.
    let value = "v".repeat(8192 - 2);
    assert_eq!(Baggage::parse(&format!("k={value}")).unwrap().len(), 1);
    assert_eq!(
        Baggage::parse(&format!("k={value}v")),
        Err(E::TooLong { limit: 8192 })
    );
    // Across header fields, counted as joined with ','.
    let half = "v".repeat(4096 - 2);
    assert_eq!(
        Baggage::parse_all([format!("a={half}").as_str(), &format!("b={}", &half[1..])])
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        Baggage::parse_all([format!("a={half}").as_str(), &format!("b={half}")]),
        Err(E::TooLong { limit: 8192 })
    );
    // 180 members accepted, 181 rejected.
    let list = |n: usize| {
        (0..n)
            .map(|i| format!("k{i}=v"))
            .collect::<Vec<_>>()
            .join(",")
    };
    assert_eq!(Baggage::parse(&list(180)).unwrap().len(), 180);
    assert_eq!(
        Baggage::parse(&list(181)),
        Err(E::TooManyMembers { limit: 180 })
    );
    assert_eq!(
        Baggage::parse_all([list(100).as_str(), &list(81)]),
        Err(E::TooManyMembers { limit: 180 })
    );
    // Huge garbage: an error, not a panic.
    assert_eq!(
        Baggage::parse(&",".repeat(100_000)),
        Err(E::TooLong { limit: 8192 })
    );
}

/// W3C Baggage, "Limits": "A platform *MUST* propagate all `list-member`s including any
/// `list-member`s added by the platform whenever both of these conditions are met: Condition 1:
/// The resulting `baggage-string` contains 64 `list-member`s or less. Condition 2: The resulting
/// `baggage-string` is of size 8192 bytes or less." The yardstick is the *resulting* string, the
/// one propagated, not the bytes received: optional whitespace ("Leading and trailing whitespaces
/// (`OWS`) are allowed and are not considered to be a part of the value", and `OWS "," OWS`) and
/// characters encoded that need not be ("Code points which are not required to be
/// percent-encoded *MAY* be percent-encoded") do not travel on. A header of more than 8192
/// bytes whose members re-encode within the limits was rejected whole (review helper-109).
#[test]
fn baggage_parse_limit_counts_the_resulting_string_not_the_received_bytes() {
    // 60 members of 134 bytes each (`kNN=` and 130 characters), as the spec's example spaces
    // them (`key2 = value2`, OWS around the commas): 8337 bytes received, 8099 propagated.
    let value = "x".repeat(130);
    let member = |i: usize, sep: &str| format!("k{i:02}{sep}={sep}{value}");
    let spaced: Vec<String> = (0..60).map(|i| member(i, " ")).collect();
    let spaced = spaced.join(" , ");
    let tight: Vec<String> = (0..60).map(|i| member(i, "")).collect();
    let tight = tight.join(",");
    assert!(
        spaced.len() > 8192 && tight.len() <= 8192,
        "{} {}",
        spaced.len(),
        tight.len()
    );
    let bag = Baggage::parse(&spaced).expect("members that fit once re-encoded must be kept");
    assert_eq!(bag.len(), 60);
    let mut out = String::new();
    assert_eq!(bag.write_limited(&mut out), 0);
    assert_eq!(out, tight);
    // Across header fields, the same.
    let (a, b) = spaced.split_at(spaced.find(" , k30").unwrap());
    assert_eq!(Baggage::parse_all([a, &b[3..]]).unwrap().len(), 60);

    // A value percent-encoded where it need not be (`%2F` for `/`): 8194 bytes received, 2734
    // propagated.
    let url = "%2F".repeat(2730);
    let bag = Baggage::parse(&format!("url={url}")).expect("the decoded value fits");
    assert_eq!(bag.get("url").map(str::len), Some(2730));
    assert_eq!(bag.to_string(), format!("url={}", "/".repeat(2730)));

    // What does not fit once re-encoded is still refused, however few bytes it came in: a
    // literal `%` (which "*MUST* be percent-encoded") grows to `%25`.
    let pct = format!("k={}", "%".repeat(2731));
    assert!(pct.len() <= 8192);
    assert_eq!(Baggage::parse(&pct), Err(E::TooLong { limit: 8192 }));
    let pct = format!("k={}", "%".repeat(2730));
    assert_eq!(Baggage::parse(&pct).unwrap().to_string().len(), 8192);

    // At most 32768 bytes are read (fields trimmed, joined with ","): a header padded past that
    // is refused before any member is parsed, the price of bounding the work.
    let padded = |n: usize| format!("a=1,{}b=2", " ".repeat(n - 7));
    assert_eq!(Baggage::parse(&padded(32768)).unwrap().len(), 2);
    assert_eq!(
        Baggage::parse(&padded(32769)),
        Err(E::TooLong { limit: 8192 })
    );
}

#[test]
fn baggage_emit_member_limit() {
    let mut b = Baggage::new();
    for i in 0..65 {
        b.insert(&format!("k{i}"), "v").unwrap();
    }
    let mut out = String::new();
    assert_eq!(b.write_limited(&mut out), 1);
    let emitted = Baggage::parse(&out).unwrap();
    assert_eq!(emitted.len(), 64);
    assert_eq!(emitted.get("k63"), Some("v"));
    assert_eq!(emitted.get("k64"), None);
    // write_to is unlimited.
    assert_eq!(Baggage::parse(&b.to_string()).unwrap().len(), 65);
}

#[test]
fn baggage_emit_byte_limit_never_partial() {
    // Four members of 3000 encoded bytes: only two fit into 8192.
    let mut b = Baggage::new();
    for k in ["a", "b", "c", "d"] {
        b.insert(k, &"x".repeat(2998)).unwrap();
    }
    b.insert("small", "1").unwrap();
    let mut out = String::from("prefix-not-counted:");
    let dropped = b.write_limited(&mut out);
    let out = out.strip_prefix("prefix-not-counted:").unwrap();
    assert_eq!(dropped, 2);
    assert!(out.len() <= 8192);
    let emitted = Baggage::parse(out).unwrap();
    assert_eq!(
        emitted.iter().map(BaggageMember::key).collect::<Vec<_>>(),
        ["a", "b", "small"]
    );
    assert_eq!(emitted.get("a").map(str::len), Some(2998));

    // Exactly 8192 bytes is emitted in full.
    let b = bag_of(&[("k", &"x".repeat(8190))]);
    let mut out = String::new();
    assert_eq!(b.write_limited(&mut out), 0);
    assert_eq!(out.len(), 8192);
    // One more byte (after encoding) and the single member is dropped, not cut.
    let b = bag_of(&[("k", &format!("{}%", "x".repeat(8188)))]);
    let mut out = String::new();
    assert_eq!(b.write_limited(&mut out), 1);
    assert_eq!(out, "");
}

#[test]
fn baggage_insert_remove_get_and_duplicates() {
    let mut b = Baggage::parse("a=1;p,b=2,a=3").unwrap();
    assert_eq!(b.get("a"), Some("1"));
    assert_eq!(b.len(), 3);
    b.insert("b", "20").unwrap();
    b.insert("c", "30").unwrap();
    assert_eq!(b.to_string(), "a=1;p,b=20,a=3,c=30");
    b.insert("a", "x").unwrap();
    assert_eq!(b.to_string(), "a=x,b=20,c=30");
    assert_eq!(b.remove("b").as_deref(), Some("20"));
    assert_eq!(b.remove("zzz"), None);
    assert_eq!(b.to_string(), "a=x,c=30");
}

#[test]
fn baggage_property_round_trip_random_strings() {
    // Byte classes: baggage-octets, the characters that must be encoded, '%' and escapes,
    // controls, non-ASCII of every UTF-8 length, and arbitrary scalar values.
    let classes: &[&[&str]] = &[
        &[
            "a", "Z", "0", "=", "!", "~", "#", ":", "<", "[", "]", "^", "{", "}",
        ],
        &["%", "%2", "%25", "%ZZ", "%e9", "\\", " ", ",", ";", "\""],
        &["\t", "\r", "\n", "\0", "\x7f", "\x1b"],
        &["é", "ß", "€", "中", "🦀", "😀", "\u{FFFD}", "\u{10FFFF}"],
    ];
    let tchars: Vec<char> = "!#$%&'*+-.^_`|~0123456789abcxyzABCXYZ".chars().collect();
    let mut rng = Rng(42);
    let random_text = |rng: &mut Rng| -> String {
        let mut s = String::new();
        for _ in 0..rng.below(24) {
            if rng.below(6) == 0 {
                // An arbitrary scalar value.
                let c = loop {
                    if let Some(c) = char::from_u32((rng.next() % 0x11_0000) as u32) {
                        break c;
                    }
                };
                s.push(c);
            } else {
                let class = rng.pick::<&[&str]>(classes);
                let piece = rng.pick::<&str>(class);
                s.push_str(piece);
            }
        }
        s
    };
    for _ in 0..500 {
        let mut b = Baggage::new();
        for i in 0..rng.below(10) {
            let mut key: String = (0..=rng.below(8)).map(|_| *rng.pick(&tchars)).collect();
            key.push_str(&i.to_string()); // unique keys
            let mut m = BaggageMember::new(&key, &random_text(&mut rng)).unwrap();
            for _ in 0..rng.below(3) {
                let pkey: String = (0..=rng.below(4)).map(|_| *rng.pick(&tchars)).collect();
                let pval = (rng.below(2) == 0).then(|| random_text(&mut rng));
                m = m.with_property(BaggageProperty::new(&pkey, pval.as_deref()).unwrap());
            }
            b.insert_member(m);
        }
        let encoded = b.to_string();
        assert!(
            encoded
                .bytes()
                .all(|c| (0x21..=0x7e).contains(&c) && c != b'"' && c != b'\\'),
            "{encoded}"
        );
        assert_eq!(Baggage::parse(&encoded), Ok(b.clone()), "{encoded}");
    }
}

// ---------------------------------------------------------------------------------------------
// Propagation helper

#[test]
fn extract_all_three_headers() {
    let ex = Propagation::extract(|name| match name {
        "traceparent" => Some("00-12345678901234567890123456789012-1234567890123456-01"),
        "tracestate" => Some("foo=1,bar=2"),
        "baggage" => Some("userId=alice"),
        _ => None,
    });
    assert_eq!(ex.trace_parent.unwrap().parent_id, 0x1234_5678_9012_3456);
    assert_eq!(ex.trace_state.to_string(), "foo=1,bar=2");
    assert_eq!(ex.baggage.get("userId"), Some("alice"));
    assert!(ex.errors.is_empty());
}

#[test]
fn extract_ignores_tracestate_when_traceparent_invalid_or_missing() {
    let ex = Propagation::extract(|name| match name {
        "traceparent" => Some("00-12345678901234567890123456789012-0000000000000000-01"),
        "tracestate" => Some("foo=1"),
        "baggage" => Some("k=v"),
        _ => None,
    });
    assert_eq!(ex.trace_parent, None);
    assert!(ex.trace_state.is_empty());
    assert_eq!(ex.baggage.get("k"), Some("v"), "baggage is independent");
    assert_eq!(ex.errors, [(TRACEPARENT, E::ZeroParentId)]);

    let ex = Propagation::extract(|name| (name == "tracestate").then_some("foo=1"));
    assert!(ex.trace_state.is_empty());
    assert!(ex.errors.is_empty());
}

#[test]
fn extract_reports_invalid_tracestate_and_baggage() {
    let ex = Propagation::extract(|name| match name {
        "traceparent" => Some("00-12345678901234567890123456789012-1234567890123456-01"),
        "tracestate" => Some("foo=1,@foo=2"),
        "baggage" => Some("k=a b"),
        _ => None,
    });
    assert!(ex.trace_parent.is_some());
    assert!(ex.trace_state.is_empty());
    assert!(ex.baggage.is_empty());
    assert_eq!(
        ex.errors,
        [(TRACESTATE, E::InvalidKey), (BAGGAGE, E::InvalidValue)]
    );
    // Two traceparent fields joined by the caller are rejected as a whole.
    let ex = Propagation::extract(|name| {
        (name == "traceparent").then_some(
            "00-12345678901234567890123456789011-1234567890123456-01,00-12345678901234567890123456789012-1234567890123456-01",
        )
    });
    assert_eq!(ex.trace_parent, None);
}

#[test]
fn inject_writes_lowercase_headers() {
    let tp = TraceParent {
        version: 0xcc,
        trace_id: 1,
        parent_id: 2,
        flags: 3,
    };
    let ts = TraceState::parse("a=1").unwrap();
    let mut bag = Baggage::new();
    for i in 0..66 {
        bag.insert(&format!("k{i}"), "50%").unwrap();
    }
    let mut headers = Vec::new();
    let dropped = Propagation::inject(Some(&tp), &ts, &bag, |k, v| headers.push((k, v)));
    assert_eq!(dropped, 2);
    assert_eq!(headers.len(), 3);
    assert_eq!(
        headers[0],
        (
            "traceparent",
            "00-00000000000000000000000000000001-0000000000000002-03".to_string()
        )
    );
    assert_eq!(headers[1], ("tracestate", "a=1".to_string()));
    assert_eq!(headers[2].0, "baggage");
    assert!(headers[2].1.starts_with("k0=50%25,k1=50%25,"));
    assert_eq!(Baggage::parse(&headers[2].1).unwrap().len(), 64);

    let mut headers = Vec::new();
    Propagation::inject(None, &ts, &Baggage::new(), |k, v| headers.push((k, v)));
    assert!(headers.is_empty());
}

/// Trace Context, "Other Flags": "The behavior of other flags, such as (`00000100`) is not
/// defined and is reserved for future use. Vendors MUST set those to zero." Processing model, a
/// higher version received: "The vendor will only parse the `trace-flags` values supported by
/// this version of this specification and ignore all other values. [...] Vendors will set all
/// unparsed / unknown `trace-flags` to 0 on outgoing requests." `TraceParent::parse` keeps the
/// flags byte whole, so a request's `traceparent` extracted and injected again (a proxy's
/// pass-through with `Propagation`) went out as version `00` with the bits that version
/// reserves still set: `cc-...-ff-...` became `00-...-ff` (review helper-109). The sampled and
/// Level 2 random-trace-id bits go on; the others are zeroed.
#[test]
fn inject_zeroes_the_flags_this_version_does_not_define() {
    for (incoming, flags) in [
        (format!("cc-{TID}-{PID}-ff-future"), "03"),
        (format!("00-{TID}-{PID}-09"), "01"),
        (format!("00-{TID}-{PID}-fe"), "02"),
        (format!("00-{TID}-{PID}-03"), "03"),
    ] {
        let ex = Propagation::extract(|name| (name == TRACEPARENT).then_some(incoming.as_str()));
        let mut headers = Vec::new();
        Propagation::inject(
            ex.trace_parent.as_ref(),
            &ex.trace_state,
            &ex.baggage,
            |k, v| headers.push((k, v)),
        );
        assert_eq!(
            headers,
            [(TRACEPARENT, format!("00-{TID}-{PID}-{flags}"))],
            "{incoming}"
        );
    }
}

#[test]
fn errors_display_and_are_std_errors() {
    let e: Box<dyn std::error::Error> = Box::new(E::TooManyMembers { limit: 180 });
    assert_eq!(e.to_string(), "header has more than 180 list members");
    assert_eq!(
        E::UppercaseHex { field: "trace-id" }.to_string(),
        "traceparent trace-id contains uppercase hex"
    );
    assert_eq!(
        E::TooLong { limit: 8192 }.to_string(),
        "header is longer than 8192 bytes"
    );
}
