//! Per-span limits ([`SpanLimits`]), read from the `OTEL_*` span-limit variables
//! ([`SpanLimits::from_env_lookup`]), and the one place they are applied: adding an attribute
//! (to a span, an event or a link) within its cap, truncating long string values.

use super::attribute::{KeyValue, Value};
use smallvec::SmallVec;
use std::borrow::Cow;

/// Per-span limits (OpenTelemetry defaults: 128 each). Items beyond a limit are dropped and
/// counted in the record's `dropped_*_count` fields.
///
/// ```
/// use agentcore_telemetry::SpanLimits;
/// let limits = SpanLimits { max_events: 16, ..SpanLimits::default() };
/// assert_eq!(limits.max_attributes, 128);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanLimits {
    /// Attributes per span.
    pub max_attributes: u32,
    /// Events per span.
    pub max_events: u32,
    /// Links per span.
    pub max_links: u32,
    /// Attributes per event.
    pub max_attributes_per_event: u32,
    /// Attributes per link.
    pub max_attributes_per_link: u32,
    /// Maximum length of a string attribute value (span, event and link attributes), in
    /// characters (Unicode scalar values, "counting any character in it as 1" as the
    /// OpenTelemetry attribute limits say), not bytes; longer values are truncated after that
    /// many characters, without allocating. `None` (the OpenTelemetry default) means
    /// unlimited.
    pub max_attribute_value_len: Option<usize>,
}

impl Default for SpanLimits {
    fn default() -> Self {
        SpanLimits {
            max_attributes: 128,
            max_events: 128,
            max_links: 128,
            max_attributes_per_event: 128,
            max_attributes_per_link: 128,
            max_attribute_value_len: None,
        }
    }
}

/// The environment variables [`SpanLimits::from_env_lookup`] reads.
///
/// ```
/// assert!(agentcore_telemetry::tracer::SPAN_LIMIT_VARIABLES.contains(&"OTEL_SPAN_EVENT_COUNT_LIMIT"));
/// ```
pub const SPAN_LIMIT_VARIABLES: &[&str] = &[
    "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT",
    "OTEL_ATTRIBUTE_COUNT_LIMIT",
    "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
    "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
    "OTEL_SPAN_EVENT_COUNT_LIMIT",
    "OTEL_SPAN_LINK_COUNT_LIMIT",
    "OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT",
    "OTEL_LINK_ATTRIBUTE_COUNT_LIMIT",
];

/// The largest value a limit variable may take: 2^31 - 1, as for the other `OTEL_*` integers
/// this crate reads (`ExportConfig::from_env`).
const MAX_LIMIT: u32 = (1 << 31) - 1;

impl SpanLimits {
    /// The limits the `OTEL_*` span-limit variables ask for, read through `lookup` (for the
    /// process environment: `|name| std::env::var(name).ok()`, which reads a value that is not
    /// UTF-8 as unset without a word; a tracer reading its environment
    /// ([`TracerConfig::from_env`](crate::TracerConfig::from_env))
    /// warns about such a value), with the OpenTelemetry
    /// specification's rules (SDK environment variables, "Attribute Limits" and "Span
    /// Limits"; common concepts, "Attribute Limits"):
    ///
    /// * `OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT`, else the general `OTEL_ATTRIBUTE_COUNT_LIMIT`:
    ///   [`max_attributes`](Self::max_attributes).
    /// * `OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT`, else the general
    ///   `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`:
    ///   [`max_attribute_value_len`](Self::max_attribute_value_len), in characters.
    /// * `OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT`, else the general `OTEL_ATTRIBUTE_COUNT_LIMIT`:
    ///   [`max_attributes_per_event`](Self::max_attributes_per_event); the same for links
    ///   (`OTEL_LINK_ATTRIBUTE_COUNT_LIMIT`). An event's or a link's attributes are a record's
    ///   attributes, and "if [the model-specific limit] isn't set, then the SDK MUST attempt
    ///   to use the general limit" (common concepts, "Attribute Limits"); the Python SDK reads
    ///   them so (its `SpanLimits`), the Go SDK does not.
    /// * `OTEL_SPAN_EVENT_COUNT_LIMIT`, `OTEL_SPAN_LINK_COUNT_LIMIT`: the other two (counts of
    ///   events and links, not attribute limits: no general fallback).
    ///
    /// Each value is an integer from 0 to 2^31 - 1 (surrounding whitespace ignored); 0 is
    /// valid (no attributes, events or links; every string value emptied). Unset or empty:
    /// the next variable in its line, then the OpenTelemetry default (128 each, no length
    /// limit). Anything else (not a number, negative, too large) is a warning and counts as
    /// unset, so an invalid model-specific value leaves the general one in force, as the
    /// specification asks of invalid values ("treat them as not set"). Never fails: the
    /// tracer must start anyway.
    ///
    /// ```
    /// use agentcore_telemetry::SpanLimits;
    /// let env = |name: &str| match name {
    ///     "OTEL_ATTRIBUTE_COUNT_LIMIT" => Some("32".to_string()),
    ///     "OTEL_SPAN_EVENT_COUNT_LIMIT" => Some("8".to_string()),
    ///     "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT" => Some("-1".to_string()),
    ///     _ => None,
    /// };
    /// let got = SpanLimits::from_env_lookup(env);
    /// assert_eq!(got.limits.max_attributes, 32);
    /// assert_eq!(got.limits.max_events, 8);
    /// assert_eq!(got.limits.max_links, 128);
    /// assert_eq!(got.limits.max_attribute_value_len, None);
    /// assert!(got.warnings[0].starts_with("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT=\"-1\""));
    /// ```
    pub fn from_env_lookup(lookup: impl Fn(&str) -> Option<String>) -> SpanLimitsFromEnv {
        let mut warnings = Vec::new();
        // The value of the first of `names` that is set and valid.
        let mut read = |names: &[&'static str]| -> Option<u32> {
            for &name in names {
                let Some(v) = lookup(name).filter(|v| !v.trim().is_empty()) else {
                    continue;
                };
                match v.trim().parse::<u32>() {
                    Ok(n) if n <= MAX_LIMIT => return Some(n),
                    _ => {
                        // Once, although the general variable is read for three limits.
                        let w = format!(
                            "{name}={v:?}: must be an integer from 0 to {MAX_LIMIT}; ignored"
                        );
                        if !warnings.contains(&w) {
                            warnings.push(w);
                        }
                    }
                }
            }
            None
        };
        let d = SpanLimits::default();
        let limits = SpanLimits {
            max_attributes: read(&[
                "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT",
                "OTEL_ATTRIBUTE_COUNT_LIMIT",
            ])
            .unwrap_or(d.max_attributes),
            max_attribute_value_len: read(&[
                "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
                "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
            ])
            .map(|n| n as usize)
            .or(d.max_attribute_value_len),
            max_events: read(&["OTEL_SPAN_EVENT_COUNT_LIMIT"]).unwrap_or(d.max_events),
            max_links: read(&["OTEL_SPAN_LINK_COUNT_LIMIT"]).unwrap_or(d.max_links),
            max_attributes_per_event: read(&[
                "OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT",
                "OTEL_ATTRIBUTE_COUNT_LIMIT",
            ])
            .unwrap_or(d.max_attributes_per_event),
            max_attributes_per_link: read(&[
                "OTEL_LINK_ATTRIBUTE_COUNT_LIMIT",
                "OTEL_ATTRIBUTE_COUNT_LIMIT",
            ])
            .unwrap_or(d.max_attributes_per_link),
        };
        SpanLimitsFromEnv { limits, warnings }
    }
}

/// What [`SpanLimits::from_env_lookup`] read: the limits in force and the values it ignored,
/// one message each (`VARIABLE="value": why`).
///
/// ```
/// use agentcore_telemetry::SpanLimits;
/// let got = SpanLimits::from_env_lookup(|_| None);
/// assert_eq!(got.limits, SpanLimits::default());
/// assert!(got.warnings.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanLimitsFromEnv {
    /// The limits: each from its variable, or the OpenTelemetry default.
    pub limits: SpanLimits,
    /// Ignored values, one message each.
    pub warnings: Vec<String>,
}

/// [`put_attribute`]'s common case, small enough to inline at every call site: a non-empty
/// key the vector does not hold yet, with room for it (within `limit` and the vector's
/// capacity, so nothing is allocated), and no value-length limit to apply. Returns `kv`
/// untouched in every other case, for the caller to hand to [`put_attribute`] out of line.
/// (The empty-key test folds away for a literal key, the usual case.)
///
/// Hot path (issue 16): `set_attribute`'s recording was one out-of-line call per attribute,
/// whose call, prologue and argument moves were ~25 instructions of the ~85 it cost under
/// callgrind; the whole of `put_attribute` inlined instead grew each call site by ~700 bytes.
///
/// The vector's inline/heap state is tested once, and each branch runs the same code
/// ([`try_push_new`]): every `SmallVec` accessor (`len`, `capacity`, `iter`, `push`) decodes
/// that state again, and inside a branch that has tested it the compiler folds those decodes
/// away (`breakdown.py span_basic`, release: 113 -> 73 instructions for two attributes, 20
/// fewer each; the call site grows by 15 bytes). Both branches are checked against
/// [`put_attribute`] alone by this module's tests.
#[allow(
    clippy::if_same_then_else,
    reason = "the same code in both branches, so that each is compiled knowing the state"
)]
#[inline(always)]
pub(crate) fn try_put_new_attribute<const N: usize>(
    attrs: &mut SmallVec<[KeyValue; N]>,
    limit: u32,
    max_value_len: Option<usize>,
    kv: KeyValue,
) -> Result<(), KeyValue>
where
    [KeyValue; N]: smallvec::Array<Item = KeyValue>,
{
    if attrs.spilled() {
        try_push_new(attrs, limit, max_value_len, kv)
    } else {
        try_push_new(attrs, limit, max_value_len, kv)
    }
}

/// [`try_put_new_attribute`]'s work, the same in both of its branches.
#[inline(always)]
fn try_push_new<const N: usize>(
    attrs: &mut SmallVec<[KeyValue; N]>,
    limit: u32,
    max_value_len: Option<usize>,
    kv: KeyValue,
) -> Result<(), KeyValue>
where
    [KeyValue; N]: smallvec::Array<Item = KeyValue>,
{
    let len = attrs.len();
    if max_value_len.is_some()
        || kv.key.is_empty()
        || len >= limit as usize
        || len >= attrs.capacity()
        || attrs.iter().any(|e| same_key(&e.key, &kv.key))
    {
        return Err(kv);
    }
    attrs.push(kv); // `len < capacity`: no reallocation
    Ok(())
}

/// Adds or replaces attribute `kv` within `limit`, counting drops. Always inlined: it runs
/// once per attribute on the hot path.
///
/// An attribute with an empty key is dropped and counted with those over the limit: the
/// OpenTelemetry common specification requires a non-empty key ("The attribute key MUST be
/// a non-null and non-empty string"), and OTLP's `dropped_attributes_count` counts what was
/// discarded for any reason. Kept, it would reach a collector as an attribute no API can
/// name.
#[inline(always)]
pub(crate) fn put_attribute<const N: usize>(
    attrs: &mut SmallVec<[KeyValue; N]>,
    dropped: &mut u32,
    limit: u32,
    max_value_len: Option<usize>,
    mut kv: KeyValue,
) where
    [KeyValue; N]: smallvec::Array<Item = KeyValue>,
{
    if kv.key.is_empty() {
        *dropped = dropped.saturating_add(1);
        return;
    }
    if let Some(max) = max_value_len {
        truncate_value(&mut kv.value, max);
    }
    // One look at the vector's inline/heap state for both the search and the length (each
    // `SmallVec` accessor checks it again: ~4 instructions per attribute under callgrind).
    let existing = attrs.as_mut_slice();
    let len = existing.len();
    if let Some(e) = existing.iter_mut().find(|e| same_key(&e.key, &kv.key)) {
        e.value = kv.value;
    } else if len < limit as usize {
        attrs.push(kv);
    } else {
        *dropped = dropped.saturating_add(1);
    }
}

/// `a == b`, cheaply in the common cases: the same static key (same pointer), or keys
/// that differ in length or first byte, which skip the out-of-line `memcmp` (it showed as
/// ~20 instructions per span with two attributes of equal length in the profile).
#[inline(always)]
fn same_key(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && (a.as_ptr() == b.as_ptr() || (a.as_bytes().first() == b.as_bytes().first() && a == b))
}

/// Truncates a string value to at most `max` characters, in place. A string of at most `max`
/// bytes has at most `max` characters and is left as it is without a scan; a longer one is
/// scanned over its first `max + 1` characters only, however long it is.
fn truncate_value(value: &mut Value, max: usize) {
    if let Value::Str(s) = value {
        if s.len() > max {
            if let Some((end, _)) = s.char_indices().nth(max) {
                match s {
                    Cow::Borrowed(b) => *b = b.get(..end).unwrap_or_default(),
                    Cow::Owned(o) => o.truncate(end),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `set_attribute` does: the inline fast path, and the general one when it declines.
    fn set<const N: usize>(
        attrs: &mut SmallVec<[KeyValue; N]>,
        dropped: &mut u32,
        limit: u32,
        kv: KeyValue,
    ) where
        [KeyValue; N]: smallvec::Array<Item = KeyValue>,
    {
        if let Err(kv) = try_put_new_attribute(attrs, limit, None, kv) {
            put_attribute(attrs, dropped, limit, None, kv);
        }
    }

    /// The fast path agrees with the general one alone, on inline and spilled vectors alike
    /// (it tests the inline/heap state once and runs the same code in both branches): random
    /// sequences of keys from a small pool, with repeats (a replacement), owned copies of
    /// static keys (equal keys at other addresses), the empty key and a limit in reach.
    #[test]
    fn the_fast_path_agrees_with_the_general_one_inline_and_spilled() {
        const KEYS: [&str; 9] = ["a", "b", "c", "d", "e", "f", "g", "tool_id", ""];
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as usize
        };
        let mut spilled_seen = 0;
        for round in 0..2_000 {
            let limit = [2u32, 4, 6, 128][round % 4];
            let mut fast: SmallVec<[KeyValue; 4]> = SmallVec::new();
            let mut model: SmallVec<[KeyValue; 4]> = SmallVec::new();
            let (mut fast_dropped, mut model_dropped) = (0, 0);
            for i in 0..(next() % 12) {
                let k = KEYS[next() % KEYS.len()];
                let key: Cow<'static, str> = if next() % 2 == 0 {
                    Cow::Borrowed(k)
                } else {
                    Cow::Owned(k.to_owned())
                };
                let v = i as i64;
                set(
                    &mut fast,
                    &mut fast_dropped,
                    limit,
                    KeyValue::new(key.clone(), v),
                );
                put_attribute(
                    &mut model,
                    &mut model_dropped,
                    limit,
                    None,
                    KeyValue::new(key, v),
                );
                if fast.spilled() {
                    spilled_seen += 1;
                }
            }
            let view = |a: &SmallVec<[KeyValue; 4]>| {
                a.iter()
                    .map(|kv| (kv.key.to_string(), format!("{:?}", kv.value)))
                    .collect::<Vec<_>>()
            };
            assert_eq!(view(&fast), view(&model), "round {round}, limit {limit}");
            assert_eq!(fast_dropped, model_dropped, "round {round}, limit {limit}");
        }
        assert!(
            spilled_seen > 1_000,
            "spilled vectors exercised: {spilled_seen}"
        );
    }
}
