//! W3C context propagation: parsing and formatting of the `traceparent`, `tracestate` and
//! `baggage` HTTP headers.
//!
//! Pure string handling on primitive types; nothing here depends on the tracer.
//!
//! # Rules implemented
//!
//! * **[`TraceParent`]**, W3C Trace Context (Level 1 REC and the Level 2 draft),
//!   `spec/20-http_request_header_format.md`, "traceparent Header": `version-traceid-parentid-flags`,
//!   lowercase hex only, version `ff` invalid, all-zero ids invalid (the header is ignored), version
//!   `00` exactly 55 characters, higher versions at least 55 characters with `-` or the end after the
//!   flags, surrounding spaces and tabs trimmed, always emitted as version `00`.
//! * **[`TraceState`]**, same document, "tracestate Header": at most 32 members; key
//!   `(lcalpha / DIGIT) 0*255(lcalpha / DIGIT / "_" / "-" / "*" / "/")` or the multi-tenant
//!   `tenant@system` (tenant up to 241 characters, system up to 14 starting with a letter); value
//!   1 to 256 characters of 0x20–0x7E other than `,` and `=`, not ending in a space; empty members
//!   skipped; duplicate keys invalid; modified keys move to the left; truncation drops whole
//!   members, those over 128 characters first.
//! * **[`Baggage`]**, W3C Baggage, `baggage/HTTP_HEADER_FORMAT.md`: keys are RFC 7230 tokens;
//!   values are percent-encoded UTF-8 where every byte outside the baggage-octets
//!   (`%x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E`) **and `%` itself** is encoded (unlike
//!   opentelemetry-rust 0.31, which leaves `%` and `\` raw); invalid UTF-8 decodes to U+FFFD;
//!   properties are kept; parse accepts up to 180 members and 8192 bytes; emission is capped at
//!   64 members and 8192 bytes, whole members only.
//!
//! Header names are lowercase: [`TRACEPARENT`], [`TRACESTATE`], [`BAGGAGE`].
//!
//! ```
//! use agentcore_telemetry::propagation::Propagation;
//!
//! let extracted = Propagation::extract(|name| match name {
//!     "traceparent" => Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
//!     "tracestate" => Some("congo=t61rcWkgMzE"),
//!     "baggage" => Some("userId=alice"),
//!     _ => None,
//! });
//! assert!(extracted.trace_parent.unwrap().sampled());
//! assert_eq!(extracted.baggage.get("userId"), Some("alice"));
//! ```

mod baggage;
mod error;
mod traceparent;
mod tracestate;

pub use baggage::{
    Baggage, BaggageMember, BaggageProperty, BAGGAGE_EMIT_MAX_MEMBERS, BAGGAGE_MAX_BYTES,
    BAGGAGE_PARSE_MAX_MEMBERS,
};
pub use error::PropagationError;
pub use traceparent::TraceParent;
pub use tracestate::{TraceState, TRACESTATE_MAX_MEMBERS};

/// The `traceparent` header name.
///
/// ```
/// assert_eq!(agentcore_telemetry::propagation::TRACEPARENT, "traceparent");
/// ```
pub const TRACEPARENT: &str = "traceparent";
/// The `tracestate` header name.
///
/// ```
/// assert_eq!(agentcore_telemetry::propagation::TRACESTATE, "tracestate");
/// ```
pub const TRACESTATE: &str = "tracestate";
/// The `baggage` header name.
///
/// ```
/// assert_eq!(agentcore_telemetry::propagation::BAGGAGE, "baggage");
/// ```
pub const BAGGAGE: &str = "baggage";

/// RFC 7230 `OWS` characters.
fn is_ows(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// What [`Propagation::extract`] found in a request's headers.
///
/// Invalid headers are ignored as the specs require, and their errors are kept in
/// [`errors`](Self::errors) for diagnostics.
///
/// ```
/// use agentcore_telemetry::propagation::{Extracted, Propagation, PropagationError, TRACEPARENT};
///
/// let ex: Extracted = Propagation::extract(|name| (name == "traceparent").then_some("garbage"));
/// assert_eq!(ex.trace_parent, None);
/// assert_eq!(ex.errors, [(TRACEPARENT, PropagationError::InvalidLength)]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extracted {
    /// The caller's trace context; `None` when absent or invalid (start a new trace).
    pub trace_parent: Option<TraceParent>,
    /// Vendor state; empty when absent, invalid, or when `traceparent` was absent or invalid.
    pub trace_state: TraceState,
    /// Baggage; empty when absent or invalid. Independent of `traceparent`.
    pub baggage: Baggage,
    /// Each header that was present but rejected, with the reason.
    pub errors: Vec<(&'static str, PropagationError)>,
}

/// Extracts and injects all three headers at once.
///
/// ```
/// use agentcore_telemetry::propagation::{Baggage, Propagation, TraceParent, TraceState};
///
/// let tp = TraceParent { version: 0, trace_id: 1, parent_id: 2, flags: 1 };
/// let mut headers = Vec::new();
/// let dropped = Propagation::inject(Some(&tp), &TraceState::new(), &Baggage::new(), |k, v| headers.push((k, v)));
/// assert_eq!(dropped, 0);
/// assert_eq!(headers, [("traceparent", tp.to_string())]);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Propagation;

impl Propagation {
    /// Reads the three headers through `get_header`, called with lowercase names. When a
    /// request repeats a header, `get_header` should return the fields joined with `,`.
    ///
    /// `tracestate` is only parsed when `traceparent` is valid.
    ///
    /// ```
    /// use agentcore_telemetry::propagation::Propagation;
    ///
    /// let ex = Propagation::extract(|name| match name {
    ///     "traceparent" => Some("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
    ///     "tracestate" => Some("a=1"),
    ///     _ => None,
    /// });
    /// assert!(ex.trace_parent.is_none());
    /// assert!(ex.trace_state.is_empty());
    /// ```
    pub fn extract<'h>(get_header: impl Fn(&str) -> Option<&'h str>) -> Extracted {
        let mut ex = Extracted::default();
        if let Some(header) = get_header(TRACEPARENT) {
            match TraceParent::parse(header) {
                Ok(tp) => ex.trace_parent = Some(tp),
                Err(e) => ex.errors.push((TRACEPARENT, e)),
            }
        }
        if ex.trace_parent.is_some() {
            if let Some(header) = get_header(TRACESTATE) {
                match TraceState::parse(header) {
                    Ok(ts) => ex.trace_state = ts,
                    Err(e) => ex.errors.push((TRACESTATE, e)),
                }
            }
        }
        if let Some(header) = get_header(BAGGAGE) {
            match Baggage::parse(header) {
                Ok(b) => ex.baggage = b,
                Err(e) => ex.errors.push((BAGGAGE, e)),
            }
        }
        ex
    }

    /// Writes the headers through `set_header` and returns how many baggage members were
    /// dropped by the emit limits ([`Baggage::write_limited`]).
    ///
    /// `traceparent` and `tracestate` are written only when `trace_parent` is `Some`; empty
    /// `tracestate` and `baggage` are not written.
    ///
    /// ```
    /// use agentcore_telemetry::propagation::{Baggage, Propagation, TraceState};
    ///
    /// let bag = Baggage::parse("k=v")?;
    /// let mut headers = Vec::new();
    /// Propagation::inject(None, &TraceState::parse("a=1")?, &bag, |k, v| headers.push((k, v)));
    /// assert_eq!(headers, [("baggage", "k=v".to_string())]);
    /// # Ok::<(), agentcore_telemetry::propagation::PropagationError>(())
    /// ```
    pub fn inject(
        trace_parent: Option<&TraceParent>,
        trace_state: &TraceState,
        baggage: &Baggage,
        mut set_header: impl FnMut(&'static str, String),
    ) -> usize {
        if let Some(tp) = trace_parent {
            set_header(TRACEPARENT, tp.to_string());
            if !trace_state.is_empty() {
                set_header(TRACESTATE, trace_state.to_string());
            }
        }
        let mut dropped = 0;
        if !baggage.is_empty() {
            let mut out = String::new();
            dropped = baggage.write_limited(&mut out);
            if !out.is_empty() {
                set_header(BAGGAGE, out);
            }
        }
        dropped
    }
}
