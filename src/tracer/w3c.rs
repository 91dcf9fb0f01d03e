//! W3C Trace Context and Baggage headers for a [`TraceContext`]: the bridge between the tracer
//! and the format rules of [`crate::propagation`].
//!
//! * [`TraceContext::inject`] writes `traceparent` (version `00`, this context's span as the
//!   parent id, the sampled flag) and `baggage` (percent-encoded; whole members only, at most 64
//!   members and 8192 bytes: the W3C propagation limit; it returns how many members did not fit).
//! * [`TraceContext::extract`] reads them back. A missing `traceparent` gives `Ok(None)`; an
//!   invalid one gives the error naming the problem, and the whole header is ignored, as the
//!   specification requires — the caller starts a fresh trace. An invalid `baggage` header is
//!   ignored on its own (the trace continues without it). Baggage properties are not kept.
//! * `tracestate` is vendor data this tracer does not interpret: [`TraceContext::extract`]
//!   keeps a valid one (an invalid one is ignored on its own, as the specification says),
//!   spans inherit it (and export it in OTLP), and [`TraceContext::inject`] forwards it.

use super::{SpanId, TraceContext, TraceId};
use crate::propagation::{
    Baggage as W3cBaggage, PropagationError, TraceParent, TraceState, BAGGAGE, TRACEPARENT,
    TRACESTATE,
};

impl TraceContext {
    /// Writes the W3C `traceparent` and `baggage` headers of this context through `set(name,
    /// value)` (lowercase header names). A context without a span (a fresh `start_trace`) has no
    /// parent id to send, so only `baggage` is written. Returns how many baggage members were
    /// left out by the 64-member / 8192-byte limit.
    ///
    /// ```
    /// use agentcore_telemetry::{SpanId, TraceContext, TraceId};
    ///
    /// let mut cx = TraceContext::new(
    ///     TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
    ///     SpanId::from_hex("00f067aa0ba902b7"),
    ///     true,
    /// );
    /// cx.set_baggage("tenant", "acme corp, 100%");
    /// let mut headers = Vec::new();
    /// cx.inject(|name, value| headers.push((name, value)));
    /// assert_eq!(headers, [
    ///     ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_string()),
    ///     ("baggage", "tenant=acme%20corp%2C%20100%25".to_string()),
    /// ]);
    /// ```
    pub fn inject(&self, mut set: impl FnMut(&'static str, String)) -> usize {
        if let Some(span_id) = self.span_id() {
            let tp = TraceParent {
                version: 0,
                trace_id: self.trace_id().to_u128(),
                parent_id: span_id.to_u64(),
                flags: u8::from(self.is_sampled()) * TraceParent::FLAG_SAMPLED,
            };
            let mut value = String::with_capacity(55);
            tp.write_to(&mut value);
            set(TRACEPARENT, value);
            if !self.trace_state().is_empty() {
                set(TRACESTATE, self.trace_state().to_owned());
            }
        }
        let mut baggage = W3cBaggage::new();
        for (k, v) in self.baggage() {
            // A key that is not an RFC 7230 token cannot travel in the header; skip it.
            let _ = baggage.insert(k, v);
        }
        if baggage.is_empty() {
            return 0;
        }
        let mut value = String::new();
        let dropped = baggage.write_limited(&mut value);
        if !value.is_empty() {
            set(BAGGAGE, value);
        }
        dropped
    }

    /// Reads a context from W3C headers through `get(lowercase name)`: `Ok(None)` without a
    /// `traceparent`, `Err` when it is invalid (the caller starts a fresh trace), otherwise the
    /// remote context (its span is the parent of the next local span; its sampled flag is
    /// respected by the sampler) with the baggage of a valid `baggage` header.
    ///
    /// ```
    /// use agentcore_telemetry::TraceContext;
    /// use agentcore_telemetry::propagation::PropagationError;
    ///
    /// let cx = TraceContext::extract(|name| match name {
    ///     "traceparent" => Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"),
    ///     "baggage" => Some("user_id=12345,note=50%25%20off"),
    ///     _ => None,
    /// })
    /// .unwrap()
    /// .unwrap();
    /// assert_eq!(cx.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
    /// assert!(!cx.is_sampled());
    /// assert_eq!(cx.get_baggage("note"), Some("50% off"));
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
        let mut cx = TraceContext::new(trace_id, Some(span_id), tp.sampled()).with_remote(true);
        if let Some(Ok(ts)) = get(TRACESTATE).map(TraceState::parse) {
            cx = cx.with_trace_state(&ts);
        }
        if let Some(Ok(baggage)) = get(BAGGAGE).map(W3cBaggage::parse) {
            for member in baggage.iter() {
                cx.set_baggage(member.key(), member.value());
            }
        }
        Ok(Some(cx))
    }
}
