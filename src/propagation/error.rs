//! The single error type of the propagation formats.

use std::fmt;

/// Why a `traceparent`, `tracestate` or `baggage` header (or a value meant for one) was rejected.
///
/// Every variant names exactly one rule of the W3C Trace Context or Baggage specification.
/// The type is `Copy` and carries no heap data, so producing it never allocates.
///
/// ```
/// use agentcore_telemetry::propagation::{PropagationError, TraceParent};
///
/// let err = TraceParent::parse("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap_err();
/// assert_eq!(err, PropagationError::InvalidVersion);
/// assert_eq!(err.to_string(), "traceparent version ff is invalid");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PropagationError {
    /// `traceparent` has the wrong length: shorter than 55 characters, or version `00` not
    /// exactly 55 characters (after trimming surrounding spaces and tabs).
    InvalidLength,
    /// `traceparent` version is `ff`, which the specification forbids.
    InvalidVersion,
    /// A hex field of `traceparent` holds an uppercase digit; only lowercase is allowed.
    UppercaseHex {
        /// The field: `"version"`, `"trace-id"`, `"parent-id"` or `"trace-flags"`.
        field: &'static str,
    },
    /// A hex field of `traceparent` holds a character that is not a hex digit.
    InvalidHex {
        /// The field: `"version"`, `"trace-id"`, `"parent-id"` or `"trace-flags"`.
        field: &'static str,
    },
    /// A `-` separator of `traceparent` is missing or misplaced.
    MissingDelimiter {
        /// The field that should have been followed by `-`.
        after: &'static str,
    },
    /// A higher-version `traceparent` has something other than `-` right after the flags.
    TrailingData,
    /// `traceparent` trace-id is all zeros.
    ZeroTraceId,
    /// `traceparent` parent-id is all zeros.
    ZeroParentId,
    /// A list header has more members than the specification allows.
    TooManyMembers {
        /// The maximum number of members (32 for `tracestate`, 180 for `baggage`).
        limit: usize,
    },
    /// A header is longer than the accepted size (for `baggage`, its members as they are
    /// re-encoded: the resulting `baggage-string`, not the bytes received).
    TooLong {
        /// The maximum length in bytes (8192 for `baggage`).
        limit: usize,
    },
    /// A list member has no `=` between key and value.
    MissingEquals,
    /// A key does not match the grammar (`tracestate` key, or RFC 7230 token for `baggage`).
    InvalidKey,
    /// A value does not match the grammar (`tracestate` value, or baggage-octets for `baggage`).
    InvalidValue,
    /// A `baggage` property key is not an RFC 7230 token.
    InvalidProperty,
}

impl fmt::Display for PropagationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidLength => f.write_str("traceparent has an invalid length"),
            Self::InvalidVersion => f.write_str("traceparent version ff is invalid"),
            Self::UppercaseHex { field } => {
                write!(f, "traceparent {field} contains uppercase hex")
            }
            Self::InvalidHex { field } => write!(f, "traceparent {field} is not hex"),
            Self::MissingDelimiter { after } => {
                write!(f, "traceparent is missing '-' after {after}")
            }
            Self::TrailingData => f.write_str("traceparent flags are followed by data without '-'"),
            Self::ZeroTraceId => f.write_str("traceparent trace-id is all zeros"),
            Self::ZeroParentId => f.write_str("traceparent parent-id is all zeros"),
            Self::TooManyMembers { limit } => {
                write!(f, "header has more than {limit} list members")
            }
            Self::TooLong { limit } => write!(f, "header is longer than {limit} bytes"),
            Self::MissingEquals => f.write_str("list member has no '='"),
            Self::InvalidKey => f.write_str("list member key is invalid"),
            Self::InvalidValue => f.write_str("list member value is invalid"),
            Self::InvalidProperty => f.write_str("baggage property is invalid"),
        }
    }
}

impl std::error::Error for PropagationError {}
