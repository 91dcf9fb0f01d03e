//! The two ways a request's W3C headers enter the crate, `Propagation::extract` and
//! `TraceContext::extract`, and the ways a context leaves it (`inject`, `to_map`).
//!
//! * All three headers together (`traceparent`, `tracestate`, `baggage`) extract to exactly what
//!   each header parses to alone (`tracestate` only beside a valid `traceparent`), with the
//!   errors of the rejected ones in order; and `TraceContext::extract` agrees with
//!   `Propagation::extract` on the ids, the sampled flag, the error and the baggage.
//! * `inject` → `extract` round trips a context with arbitrary Unicode baggage: ids and flag
//!   exactly, every entry whose key is an RFC 7230 token with its value byte for byte, minus
//!   exactly the members `inject` reports dropped (keys that are not tokens, and the W3C
//!   limits: 64 members, 8192 bytes).
//!   The same for `Propagation::inject` of a `Baggage`.
//! * `to_map` → `from_map` gives the context back (baggage properties included); `from_map` of
//!   an arbitrary list of pairs answers as an independent reference of its documented rules
//!   says.
#![no_main]

use std::collections::BTreeMap;

use agentcore_telemetry::propagation::BaggageProperty;
use agentcore_telemetry::propagation::{
    Baggage, Extracted, Propagation, PropagationError, TraceParent, TraceState, BAGGAGE,
    BAGGAGE_EMIT_MAX_MEMBERS, BAGGAGE_MAX_BYTES, TRACEPARENT, TRACESTATE,
};
use agentcore_telemetry::tracer::BAGGAGE_PROPERTIES_PREFIX;
use agentcore_telemetry::tracer::{ContextMapError, BAGGAGE_PREFIX, EXTERNAL_ID_KEY, KEY_SAMPLED};
use agentcore_telemetry::tracer::{
    KEY_RANDOM_TRACE_ID, KEY_SPAN_ID, KEY_TRACE_ID, KEY_TRACE_STATE,
};
use agentcore_telemetry::{SpanId, TraceContext, TraceId};
use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;

/// Keys that collide often (duplicates, case), plus arbitrary ones.
const KEYS: &[&str] = &[
    "k", "K", "a", "key", "user_id", "x-y", "é", "", "a b", "a=b",
];

#[derive(Debug)]
struct Key(String);

impl<'a> Arbitrary<'a> for Key {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Key(if u.ratio(3, 4)? {
            KEYS[u.choose_index(KEYS.len())?].to_string()
        } else {
            String::arbitrary(u)?
        }))
    }
}

/// A header value: arbitrary text, or one built to be valid (so the agreement checks see
/// accepted headers too).
#[derive(Debug, Arbitrary)]
enum TraceParentIn {
    Raw(String),
    Ids {
        trace_id: u128,
        parent_id: u64,
        flags: u8,
        future: bool,
    },
}

#[derive(Debug, Arbitrary)]
enum BaggageIn {
    Raw(String),
    Members(Vec<(Key, String)>),
    /// One long member: reaches the 8192-byte limit with few input bytes.
    Long {
        key: Key,
        fill: u8,
        len: u16,
    },
}

#[derive(Debug, Arbitrary)]
enum MapKey {
    TraceId,
    SpanId,
    Sampled,
    Baggage(Key),
    BaggageProperties(Key),
    Other(String),
}

#[derive(Debug, Arbitrary)]
enum MapValue {
    True,
    False,
    One,
    Zero,
    ZeroTraceId,
    ZeroSpanId,
    Hex128(u128),
    Hex64(u64),
    Properties,
    Any(String),
}

#[derive(Debug, Arbitrary)]
struct Input {
    traceparent: Option<TraceParentIn>,
    tracestate: Option<String>,
    baggage: Option<BaggageIn>,
    trace_id: u128,
    span_id: Option<u64>,
    sampled: bool,
    entries: Vec<(Key, String)>,
    map: Vec<(MapKey, MapValue)>,
}

fn traceparent_text(tp: &TraceParentIn) -> String {
    match tp {
        TraceParentIn::Raw(s) => s.clone(),
        TraceParentIn::Ids {
            trace_id,
            parent_id,
            flags,
            future,
        } => {
            let version = if *future { "cc" } else { "00" };
            format!("{version}-{trace_id:032x}-{parent_id:016x}-{flags:02x}")
        }
    }
}

fn baggage_text(b: &BaggageIn) -> String {
    match b {
        BaggageIn::Raw(s) => s.clone(),
        BaggageIn::Members(members) => {
            // Written by hand (not by `Baggage`), so duplicate keys survive into the header.
            let parts: Vec<String> = members
                .iter()
                .map(|(k, v)| format!("{}={}", k.0, percent_encode(v)))
                .collect();
            parts.join(",")
        }
        BaggageIn::Long { key, fill, len } => {
            let c = char::from(b'a' + fill % 26);
            format!("{}={}", key.0, c.to_string().repeat(usize::from(*len)))
        }
    }
}

/// Percent-encodes everything outside the unreserved set: the reference encoding of a value.
fn percent_encode(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// RFC 7230 `token`: the keys a `baggage` header can carry.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn pairs(bag: &Baggage) -> Vec<(String, String)> {
    bag.iter()
        .map(|m| (m.key().to_string(), m.value().to_string()))
        .collect()
}

fn context_baggage(cx: &TraceContext) -> BTreeMap<String, String> {
    cx.baggage()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn extract_from(headers: &[(&'static str, String)]) -> Extracted {
    Propagation::extract(|name| lookup(headers, name))
}

fn lookup<'h>(headers: &'h [(&'static str, String)], name: &str) -> Option<&'h str> {
    let mut found = headers.iter().filter(|(k, _)| *k == name);
    let first = found.next().map(|(_, v)| v.as_str());
    assert!(found.next().is_none(), "{name} written twice: {headers:?}");
    first
}

/// Part 1: all three headers against each alone, and the two extract paths against each other.
fn check_extract(input: &Input) {
    let tp = input.traceparent.as_ref().map(traceparent_text);
    let ts = input.tracestate.clone();
    let bg = input.baggage.as_ref().map(baggage_text);
    let mut headers: Vec<(&'static str, String)> = Vec::new();
    if let Some(v) = &tp {
        headers.push((TRACEPARENT, v.clone()));
    }
    if let Some(v) = &ts {
        headers.push((TRACESTATE, v.clone()));
    }
    if let Some(v) = &bg {
        headers.push((BAGGAGE, v.clone()));
    }
    let all = extract_from(&headers);

    let tp_alone = tp.as_deref().map(TraceParent::parse);
    let ts_alone = ts.as_deref().map(TraceState::parse);
    // Extraction skips a malformed baggage member and keeps the others.
    let bg_alone = bg.as_deref().map(|h| Baggage::parse_lossy([h]));
    let mut errors: Vec<(&'static str, PropagationError)> = Vec::new();
    let trace_parent = match &tp_alone {
        Some(Ok(tp)) => Some(*tp),
        Some(Err(e)) => {
            errors.push((TRACEPARENT, e.clone()));
            None
        }
        None => None,
    };
    let trace_state = match (&trace_parent, &ts_alone) {
        (Some(_), Some(Ok(ts))) => ts.clone(),
        (Some(_), Some(Err(e))) => {
            errors.push((TRACESTATE, e.clone()));
            TraceState::new()
        }
        _ => TraceState::new(),
    };
    let baggage = match &bg_alone {
        Some((b, skipped)) => {
            errors.extend(skipped.iter().map(|e| (BAGGAGE, *e)));
            b.clone()
        }
        None => Baggage::new(),
    };
    let expected = Extracted {
        trace_parent,
        trace_state,
        baggage,
        errors,
    };
    assert_eq!(
        all, expected,
        "all three headers vs each alone: {headers:?}"
    );

    // Each header in a request of its own extracts the same as in the full request.
    let only = |name: &'static str| -> Vec<(&'static str, String)> {
        headers
            .iter()
            .filter(|(k, _)| *k == name)
            .cloned()
            .collect()
    };
    assert_eq!(
        extract_from(&only(TRACEPARENT)).trace_parent,
        all.trace_parent
    );
    assert_eq!(
        pairs(&extract_from(&only(BAGGAGE)).baggage),
        pairs(&all.baggage)
    );
    assert!(extract_from(&only(TRACESTATE)).trace_state.is_empty());

    // The tracer's path: the same traceparent verdict, the same baggage.
    let cx = TraceContext::extract(|name| lookup(&headers, name));
    match (&tp_alone, &cx) {
        (None, Ok(None)) => {}
        (Some(Err(e)), Err(got)) => assert_eq!(e, got),
        (Some(Ok(tp)), Ok(Some(cx))) => {
            assert_eq!(cx.trace_id().to_u128(), tp.trace_id);
            assert_eq!(cx.span_id().map(SpanId::to_u64), Some(tp.parent_id));
            assert_eq!(cx.is_sampled(), tp.sampled());
            let got = context_baggage(cx);
            // The tracer forwards the `tracestate` the propagation layer parsed (W3C Level 2:
            // kept only beside a valid traceparent).
            assert_eq!(
                cx.trace_state(),
                &all.trace_state,
                "tracestate: {headers:?}"
            );
            // Duplicate baggage keys: the first member wins on both paths (issue 20 defect 3).
            let mut first: BTreeMap<String, String> = BTreeMap::new();
            for m in all.baggage.iter() {
                first
                    .entry(m.key().to_string())
                    .or_insert_with(|| m.value().to_string());
            }
            assert_eq!(got, first, "baggage of the two extract paths: {headers:?}");
        }
        (tp, cx) => panic!("traceparent {tp:?} extracted by the tracer as {cx:?}"),
    }
}

/// Part 2: inject → extract with arbitrary Unicode baggage.
fn check_round_trip(input: &Input) {
    let Some(trace_id) = TraceId::from_u128(input.trace_id) else {
        return;
    };
    let span_id = input.span_id.and_then(SpanId::from_u64);
    let mut cx = TraceContext::new(trace_id, span_id, input.sampled);
    for (k, v) in input.entries.iter().take(80) {
        cx.set_baggage(k.0.clone(), v.clone());
    }
    let mut headers: Vec<(&'static str, String)> = Vec::new();
    let dropped = cx.inject(|name, value| headers.push((name, value)));
    let written = lookup(&headers, BAGGAGE);
    if let Some(b) = written {
        assert!(b.len() <= BAGGAGE_MAX_BYTES, "baggage of {} bytes", b.len());
        assert!(b.split(',').count() <= BAGGAGE_EMIT_MAX_MEMBERS);
    }
    let sendable: BTreeMap<String, String> = context_baggage(&cx)
        .into_iter()
        .filter(|(k, _)| is_token(k))
        .collect();
    let back = TraceContext::extract(|name| lookup(&headers, name));
    let received = match (span_id, back) {
        (None, Ok(None)) => {
            // No span, no traceparent: the baggage still travels.
            assert!(lookup(&headers, TRACEPARENT).is_none());
            let bag = Propagation::extract(|name| lookup(&headers, name)).baggage;
            pairs(&bag).into_iter().collect()
        }
        (Some(span), Ok(Some(back))) => {
            assert_eq!(back.trace_id(), trace_id);
            assert_eq!(back.span_id(), Some(span));
            assert_eq!(back.is_sampled(), input.sampled);
            context_baggage(&back)
        }
        (span, back) => panic!("span {span:?} came back as {back:?}: {headers:?}"),
    };
    // `dropped` counts the keys that are not tokens too (`set_baggage`: "inject drops, and
    // counts, those that are not W3C tokens").
    assert_eq!(
        received.len() + dropped,
        context_baggage(&cx).len(),
        "{headers:?}"
    );
    for (k, v) in &received {
        assert_eq!(
            sendable.get(k),
            Some(v),
            "baggage {k:?} round trip: {headers:?}"
        );
    }

    // The same through `Propagation::inject` of a `Baggage` (in insertion order, no duplicates).
    let mut bag = Baggage::new();
    for (k, v) in input.entries.iter().take(80) {
        assert_eq!(
            bag.insert(&k.0, v).is_ok(),
            is_token(&k.0),
            "insert key {:?}",
            k.0
        );
    }
    let mut headers: Vec<(&'static str, String)> = Vec::new();
    let dropped = Propagation::inject(None, &TraceState::new(), &bag, |k, v| headers.push((k, v)));
    let got = pairs(&extract_from(&headers).baggage);
    let sent = pairs(&bag);
    assert_eq!(got.len() + dropped, sent.len());
    // Whole members in order: what arrived is a subsequence of what was sent.
    let mut rest = sent.iter();
    for member in &got {
        assert!(
            rest.any(|s| s == member),
            "{member:?} not sent in order: {headers:?}"
        );
    }
}

/// The reference of `from_map`'s documented rules (with issue 18's `random_trace_id` and
/// `tracestate` keys: each checked where it appears, in order, like the others).
fn reference_from_map(pairs: &[(String, String)]) -> Result<TraceContext, ContextMapError> {
    let mut trace_id = None;
    let mut external = None;
    let mut span_id = None;
    let mut sampled = None;
    let mut random = None;
    let mut trace_state = None;
    let mut baggage: Vec<(String, String)> = Vec::new();
    let mut properties: Vec<(String, Vec<BaggageProperty>)> = Vec::new();
    for (k, v) in pairs {
        let duplicate = if k == KEY_TRACE_ID {
            if v.is_empty() || v.bytes().all(|b| b == b'0') && v.len() == 32 {
                return Err(ContextMapError::InvalidTraceId(v.clone()));
            }
            if TraceId::from_hex(v).is_none() {
                external = Some(v.clone());
            }
            trace_id.replace(TraceId::from_external(v)).is_some()
        } else if k == KEY_SPAN_ID {
            if v.is_empty() || v.bytes().all(|b| b == b'0') && v.len() == 16 {
                return Err(ContextMapError::InvalidSpanId(v.clone()));
            }
            span_id.replace(SpanId::from_external(v)).is_some()
        } else if k == KEY_SAMPLED {
            let s = match v.as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => return Err(ContextMapError::InvalidSampled(v.clone())),
            };
            sampled.replace(s).is_some()
        } else if k == KEY_RANDOM_TRACE_ID {
            let r = match v.as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => return Err(ContextMapError::InvalidRandom(v.clone())),
            };
            random.replace(r).is_some()
        } else if k == KEY_TRACE_STATE {
            let ts = TraceState::parse(v)
                .map_err(|e| ContextMapError::InvalidTraceState(v.clone(), e))?;
            trace_state.replace(ts).is_some()
        } else if let Some(key) = k.strip_prefix(BAGGAGE_PREFIX) {
            if key.is_empty() {
                return Err(ContextMapError::EmptyBaggageKey);
            }
            let seen = baggage.iter().any(|(b, _)| b == key);
            baggage.push((key.to_string(), v.clone()));
            seen
        } else if let Some(key) = k.strip_prefix(BAGGAGE_PROPERTIES_PREFIX) {
            let parsed = reference_properties(v)
                .map_err(|e| ContextMapError::InvalidBaggageProperties(v.clone(), e))?;
            let seen = properties.iter().any(|(p, _)| p == key);
            properties.push((key.to_string(), parsed));
            seen
        } else {
            false
        };
        if duplicate {
            return Err(ContextMapError::DuplicateKey(k.clone()));
        }
    }
    let trace_id = trace_id.ok_or(ContextMapError::MissingTraceId)?;
    // Properties belong to an entry of the map; the first key without one is named.
    let mut orphans: Vec<&String> = properties
        .iter()
        .map(|(k, _)| k)
        .filter(|k| !baggage.iter().any(|(b, _)| b == *k))
        .collect();
    orphans.sort();
    if let Some(k) = orphans.first() {
        return Err(ContextMapError::BaggagePropertiesWithoutEntry((*k).clone()));
    }
    // A caller's id that is not a W3C id is kept in baggage, unless the map has that entry.
    if let Some(ext) = external {
        if !baggage.iter().any(|(b, _)| b == EXTERNAL_ID_KEY) {
            baggage.push((EXTERNAL_ID_KEY.to_string(), ext));
        }
    }
    let mut cx = TraceContext::new(trace_id, span_id, sampled.unwrap_or(true));
    for (k, v) in baggage {
        cx.set_baggage(k, v);
    }
    for (k, p) in properties {
        assert!(cx.set_baggage_properties(&k, p));
    }
    cx.set_random_trace_id(random.unwrap_or(false));
    *cx.trace_state_mut() = trace_state.unwrap_or_default();
    // A map is what another service sent: the context is remote (e04f51b).
    Ok(cx.with_remote(true))
}

/// W3C Baggage's `*( OWS ";" OWS property )`, `property = key OWS "=" OWS value / key OWS`,
/// without the leading `;`: empty properties skipped, values percent-decoded (either hex case;
/// a `%` without two hex digits literal; invalid UTF-8 as U+FFFD).
fn reference_properties(v: &str) -> Result<Vec<BaggageProperty>, PropagationError> {
    let ows: &[char] = &[' ', '\t'];
    let octet = |c: u8| matches!(c, 0x21 | 0x23..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e);
    let decode = |s: &str| {
        let (b, mut out, mut i) = (s.as_bytes(), Vec::new(), 0);
        while i < b.len() {
            let hex = |j: usize| b.get(j).and_then(|c| char::from(*c).to_digit(16));
            match (b[i], hex(i + 1), hex(i + 2)) {
                (b'%', Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                }
                (c, _, _) => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    let mut properties = Vec::new();
    for piece in v.split(';') {
        let p = piece.trim_matches(ows);
        if p.is_empty() {
            continue;
        }
        let (key, value) = match p.split_once('=') {
            Some((k, val)) => (k.trim_matches(ows), Some(val.trim_matches(ows))),
            None => (p, None),
        };
        if value.is_some_and(|val| !val.bytes().all(octet)) {
            return Err(PropagationError::InvalidProperty);
        }
        properties.push(BaggageProperty::new(key, value.map(decode).as_deref())?);
    }
    Ok(properties)
}

/// Part 3: `to_map` / `from_map`.
fn check_maps(input: &Input) {
    if let Some(trace_id) = TraceId::from_u128(input.trace_id) {
        let span_id = input.span_id.and_then(SpanId::from_u64);
        let mut cx = TraceContext::new(trace_id, span_id, input.sampled);
        for (k, v) in input.entries.iter().take(80) {
            // An empty key is refused where it enters (the fuzzing finding of issue 20).
            assert_eq!(cx.set_baggage(k.0.clone(), v.clone()), !k.0.is_empty());
        }
        assert_eq!(cx.get_baggage(""), None);
        let map = cx.to_map();
        // So every context `to_map` writes reads back.
        // ... as the remote context it is on the receiving side.
        assert_eq!(
            TraceContext::from_map(&map),
            Ok(cx.clone().with_remote(true)),
            "{map:?}"
        );
    }

    let pairs: Vec<(String, String)> = input
        .map
        .iter()
        .take(32)
        .map(|(k, v)| {
            let k = match k {
                MapKey::TraceId => KEY_TRACE_ID.to_string(),
                MapKey::SpanId => KEY_SPAN_ID.to_string(),
                MapKey::Sampled => KEY_SAMPLED.to_string(),
                MapKey::Baggage(key) => format!("{BAGGAGE_PREFIX}{}", key.0),
                MapKey::BaggageProperties(key) => {
                    format!("{BAGGAGE_PROPERTIES_PREFIX}{}", key.0)
                }
                MapKey::Other(s) => s.clone(),
            };
            let v = match v {
                MapValue::True => "true".to_string(),
                MapValue::False => "false".to_string(),
                MapValue::One => "1".to_string(),
                MapValue::Zero => "0".to_string(),
                MapValue::ZeroTraceId => "0".repeat(32),
                MapValue::ZeroSpanId => "0".repeat(16),
                MapValue::Hex128(x) => format!("{x:032x}"),
                MapValue::Hex64(x) => format!("{x:016x}"),
                MapValue::Properties => " ttl = 30 ;;private;p=a%3Bb".to_string(),
                MapValue::Any(s) => s.clone(),
            };
            (k, v)
        })
        .collect();
    let got = TraceContext::from_map(pairs.iter().map(|(k, v)| (k, v)));
    assert_eq!(got, reference_from_map(&pairs), "from_map {pairs:?}");
    if let Ok(cx) = got {
        assert_eq!(TraceContext::from_map(&cx.to_map()), Ok(cx));
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    check_extract(&input);
    check_round_trip(&input);
    check_maps(&input);
});
