//! W3C Trace Context and Baggage headers for a [`TraceContext`]: the bridge between the tracer
//! and the format rules of [`crate::propagation`].
//!
//! * [`TraceContext::inject`] writes `traceparent` (version `00`, this context's span as the
//!   parent id, the sampled and Level 2 random-trace-id flags), `tracestate` (the vendors'
//!   entries this context carries, whole entries only, at most 512 bytes: the specification's
//!   "SHOULD propagate at least 512 characters", truncated as it prescribes; all of them for a
//!   remote context sent on as it is, whose `traceparent` is the one received: "If the value of
//!   the traceparent field wasn't changed before propagation, tracestate MUST NOT be modified
//!   as well") and `baggage` (percent-encoded; whole members only, at most 64 members and 8192
//!   bytes: the W3C propagation limit). It returns how many `tracestate` entries and baggage
//!   members did not fit.
//! * [`TraceContext::extract`] reads them back. A missing `traceparent` gives `Ok(None)`; an
//!   invalid one gives the error naming the problem, and the whole header is ignored, as the
//!   specification requires — the caller starts a fresh trace, and `tracestate` is not even
//!   parsed ("If the vendor failed to parse traceparent, it MUST NOT attempt to parse
//!   tracestate"). An invalid `tracestate` header is ignored on its own (the trace
//!   continues without it); a malformed `baggage` member is skipped, and the header's other
//!   members are kept. Baggage properties (`;ttl=30;private`) are kept with their
//!   entry ([`TraceContext::baggage_properties`]) and `inject` appends them again (W3C
//!   Baggage allows adding, updating, deleting and deduplicating entries, not stripping them;
//!   OpenTelemetry: "On `inject`, the propagator should append the metadata"). The context is
//!   marked remote ([`TraceContext::is_remote`]), so the spans started under it export OTLP's
//!   `IS_REMOTE` parent flag. Baggage does not depend on the trace: without a valid
//!   `traceparent`, [`TraceContext::extract_baggage`] reads it alone, for the new trace.
//! * The context keeps `tracestate` and the random-trace-id flag, every span started in it
//!   inherits them, and so every outgoing call forwards them: "Vendors receiving a tracestate
//!   request header MUST send it to outgoing requests", and for the random flag "If the flag is
//!   set in the incoming traceparent header, it MUST also be set in all outgoing traceparent
//!   headers which use the same trace-id" (and unset when it was unset).
//!
//! # Duplicate baggage keys
//!
//! W3C Baggage ("baggage-string"): "Uniqueness of keys between multiple `list-member`s in a
//! `baggage-string` is not guaranteed. The order of duplicate entries SHOULD be preserved when
//! mutating the list. Producers SHOULD try to produce a `baggage-string` without any
//! `list-member`s which duplicate the `key` of another list member." The text does not say
//! which entry a reader sees, so this crate picks one rule and applies it on both paths:
//! **the first member with a key wins**. [`crate::propagation::Baggage`] keeps every member in
//! order (nothing is mutated) and its `get` returns the first; a [`TraceContext`] holds one
//! value per key and [`TraceContext::extract`] keeps the first and discards the later ones,
//! so [`TraceContext::inject`] never produces a duplicate. First-wins is also the rule the
//! current Trace Context text gives `tracestate` (the leftmost entry is the most recent).

use super::context::{Baggage, Carried};
use super::{SpanId, TraceContext, TraceId};
use crate::propagation::baggage::LimitedList;
use crate::propagation::{
    Baggage as W3cBaggage, BaggageMember, BaggageProperty, PropagationError, TraceParent,
    TraceState, BAGGAGE, TRACEPARENT, TRACESTATE,
};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The most bytes of `tracestate` [`TraceContext::inject`] writes for a context whose parent-id
/// this process set (a remote context sent on unchanged forwards its `tracestate` whole): the
/// specification's "Vendors SHOULD propagate at least 512 characters of a combined header",
/// truncated (whole entries, those over 128 characters first, then from the right) as
/// "tracestate Limits" prescribes.
///
/// ```
/// assert_eq!(agentcore_telemetry::tracer::TRACESTATE_EMIT_MAX_BYTES, 512);
/// ```
pub const TRACESTATE_EMIT_MAX_BYTES: usize = 512;

impl TraceContext {
    /// Writes the W3C `traceparent`, `tracestate` and `baggage` headers of this context
    /// through `set(name, value)` (lowercase header names). A context without a span (a fresh
    /// `start_trace`) has no parent id to send, and an [invalid](Self::is_valid) one (a no-op
    /// span's without a parent, `OTEL_SDK_DISABLED=true`) no trace, so for them only
    /// `baggage` is written; empty
    /// `tracestate` and `baggage` are not written. Returns how many list members were left
    /// out: `tracestate` entries beyond [`TRACESTATE_EMIT_MAX_BYTES`] (never for a
    /// [remote](Self::is_remote) context, whose `traceparent` goes out as received), baggage
    /// entries whose key is not an RFC 7230 token (W3C Baggage: "key = token"), and baggage
    /// members beyond the 64-member / 8192-byte limit.
    ///
    /// The `baggage` header always meets W3C Baggage's limits, however many entries the
    /// context holds: at most 64 members (the spec's "Limits", well under the 180 its ABNF
    /// allows and [`extract`](Self::extract) accepts) and at most 8192 bytes, whole members
    /// only, in key order; a member that would overflow the bytes is skipped and later, smaller
    /// ones may still go. The work is linear in the entries: past the 64th member the rest
    /// are only counted.
    ///
    /// ```
    /// use agentcore_telemetry::{SpanId, TraceContext, TraceId};
    ///
    /// let mut cx = TraceContext::new(
    ///     TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
    ///     SpanId::from_hex("00f067aa0ba902b7"),
    ///     true,
    /// );
    /// cx.set_random_trace_id(true);
    /// cx.trace_state_mut().insert("congo", "t61rcWkgMzE")?;
    /// cx.set_baggage("tenant", "acme corp, 100%");
    /// let mut headers = Vec::new();
    /// cx.inject(|name, value| headers.push((name, value)));
    /// assert_eq!(headers, [
    ///     ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03".to_string()),
    ///     ("tracestate", "congo=t61rcWkgMzE".to_string()),
    ///     ("baggage", "tenant=acme%20corp%2C%20100%25".to_string()),
    /// ]);
    /// # Ok::<(), agentcore_telemetry::propagation::PropagationError>(())
    /// ```
    pub fn inject(&self, mut set: impl FnMut(&'static str, String)) -> usize {
        let mut dropped = 0;
        // An invalid context (a no-op span's without a parent) has no trace to send on: W3C
        // and OpenTelemetry's propagator MUST NOT inject it. Its baggage still goes.
        if let Some(span_id) = self.span_id().filter(|_| self.is_valid()) {
            let tp = TraceParent {
                version: 0,
                trace_id: self.trace_id().to_u128(),
                parent_id: span_id.to_u64(),
                flags: self.trace_flags(),
            };
            let mut value = String::with_capacity(55);
            tp.write_to(&mut value);
            set(TRACEPARENT, value);
            let trace_state = self.trace_state();
            if !trace_state.is_empty() {
                let mut value = String::new();
                if self.is_remote() {
                    // The caller's own parent-id goes back out (a pass-through): "If the value
                    // of the traceparent field wasn't changed before propagation, tracestate
                    // MUST NOT be modified as well", so no entry is dropped.
                    trace_state.write_to(&mut value);
                } else {
                    dropped += trace_state.write_truncated(&mut value, TRACESTATE_EMIT_MAX_BYTES);
                }
                if !value.is_empty() {
                    set(TRACESTATE, value);
                }
            }
        }
        // The local baggage is a map: its keys are unique, so the list goes out in key order
        // with no duplicate to remove, written member by member as it is read (no list is
        // built, nor searched: linear in the entries, and once 64 members are out the rest
        // are only counted).
        let mut value = String::new();
        let mut list = LimitedList::new(&mut value);
        for (k, v) in self.baggage() {
            if list.is_full() {
                dropped += 1;
                continue;
            }
            // A key that is not an RFC 7230 token cannot travel in the header: left out, and
            // counted (as `set_baggage` promises).
            let Ok(member) = BaggageMember::new(k, v) else {
                dropped += 1;
                continue;
            };
            // The properties the entry arrived with go on with it.
            let member = self
                .baggage_properties(k)
                .iter()
                .cloned()
                .fold(member, BaggageMember::with_property);
            list.offer(&member);
        }
        dropped += list.dropped();
        if !value.is_empty() {
            set(BAGGAGE, value);
        }
        dropped
    }

    /// Reads a context from W3C headers through `get(lowercase name)`: `Ok(None)` without a
    /// `traceparent`, `Err` when it is invalid (the caller starts a fresh trace), otherwise the
    /// remote context: its span is the parent of the next local span, its sampled flag is
    /// respected by the sampler, its random-trace-id flag and `tracestate` are carried on,
    /// and it holds the well-formed members of the `baggage` header (a malformed member is
    /// skipped, the others kept, as [`Baggage::parse_lossy`](crate::propagation::Baggage::parse_lossy)
    /// reads them; the first member of a repeated key wins; see the module docs). When a request repeats a header, `get` should return
    /// the fields joined with `,` (RFC 9110 section 5.3), which is how `tracestate` split over
    /// several fields is combined.
    ///
    /// ```
    /// use agentcore_telemetry::TraceContext;
    /// use agentcore_telemetry::propagation::PropagationError;
    ///
    /// let cx = TraceContext::extract(|name| match name {
    ///     "traceparent" => Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02"),
    ///     "tracestate" => Some("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"),
    ///     "baggage" => Some("user_id=12345,note=50%25%20off,user_id=67890"),
    ///     _ => None,
    /// })
    /// .unwrap()
    /// .unwrap();
    /// assert_eq!(cx.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
    /// assert!(!cx.is_sampled());
    /// assert!(cx.is_random_trace_id());
    /// assert_eq!(cx.trace_state().to_string(), "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
    /// assert_eq!(cx.get_baggage("note"), Some("50% off"));
    /// assert_eq!(cx.get_baggage("user_id"), Some("12345"));
    ///
    /// let bad = TraceContext::extract(|name| {
    ///     (name == "traceparent").then_some("00-00000000000000000000000000000000-00f067aa0ba902b7-01")
    /// });
    /// assert_eq!(bad, Err(PropagationError::ZeroTraceId));
    /// assert_eq!(TraceContext::extract(|_| None), Ok(None));
    /// ```
    pub fn extract<'h>(
        get: impl Fn(&str) -> Option<&'h str>,
    ) -> Result<Option<TraceContext>, PropagationError> {
        let Some(header) = get(TRACEPARENT) else {
            return Ok(None);
        };
        let tp = TraceParent::parse(header)?;
        // `parse` refuses all-zero ids, so both conversions succeed.
        let (Some(trace_id), Some(span_id)) = (
            TraceId::from_u128(tp.trace_id),
            SpanId::from_u64(tp.parent_id),
        ) else {
            return Err(PropagationError::ZeroTraceId);
        };
        // Parsed only now that `traceparent` is valid; an invalid one is dropped on its own.
        let trace_state = get(TRACESTATE)
            .and_then(|h| TraceState::parse(h).ok())
            .unwrap_or_default();
        let (baggage, baggage_properties) = read_baggage(&get);
        let carried = Carried {
            baggage,
            baggage_properties,
            trace_state,
            // Kept as received, set or unset (Level 2, "Random Trace ID Flag").
            random: tp.random(),
        };
        Ok(Some(
            TraceContext::from_parts(
                trace_id,
                Some(span_id),
                tp.sampled(),
                Some(Arc::new(carried)),
            )
            .with_remote(true),
        ))
    }

    /// The baggage of W3C headers alone, through `get(lowercase name)`: the well-formed members
    /// of the `baggage` header, the first of a repeated key winning (as in
    /// [`extract`](Self::extract)); empty without one. For a request that carries `baggage` but no
    /// valid `traceparent`: [`extract`](Self::extract) then gives no context, and W3C Baggage
    /// is independent of the trace ("a system receiving a baggage request header SHOULD send
    /// it to outgoing requests"), so the new trace the server starts takes it along.
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, SpanKind, TraceContext, TracerConfig};
    ///
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// // A caller's fresh trace has no span to name: only `baggage` was sent.
    /// let get = |name: &str| (name == "baggage").then_some("tenant=acme");
    /// let parent = match TraceContext::extract(get) {
    ///     Ok(Some(cx)) => cx,
    ///     // Absent or invalid `traceparent`: a new trace that carries the caller's baggage.
    ///     _ => tracer.start_detached_trace(None, TraceContext::extract_baggage(get)).context().clone(),
    /// };
    /// let server = tracer.start_span_with_parent("handle", SpanKind::Server, [], Some(&parent));
    /// assert_eq!(server.context().get_baggage("tenant"), Some("acme"));
    /// ```
    pub fn extract_baggage<'h>(get: impl Fn(&str) -> Option<&'h str>) -> Baggage {
        read_baggage(get).0
    }
}

/// The entries of the `baggage` header's well-formed members, the first member of a key winning (as
/// `propagation::Baggage::get` reads it), and the properties of those that have some.
fn read_baggage<'h>(
    get: impl Fn(&str) -> Option<&'h str>,
) -> (Baggage, BTreeMap<String, Vec<BaggageProperty>>) {
    let mut baggage = Baggage::new();
    let mut properties = BTreeMap::new();
    if let Some(header) = get(BAGGAGE) {
        // A malformed member is skipped, the others kept (`Baggage::parse_lossy`).
        let parsed = W3cBaggage::parse_skipping(header);
        for member in parsed.iter() {
            if baggage.contains_key(member.key()) {
                continue;
            }
            baggage.insert(member.key().to_owned(), member.value().to_owned());
            if !member.properties().is_empty() {
                properties.insert(member.key().to_owned(), member.properties().to_vec());
            }
        }
    }
    (baggage, properties)
}
