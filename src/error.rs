//! The crate's error type: every way a caller's input can be refused, each naming what was wrong.

use std::fmt;

/// Why a registration, a label lookup or a recording was refused.
///
/// Recording methods on the hot path never panic: where they can refuse a value they return this
/// error (or count the refusal) and leave the recorded data untouched.
///
/// ```
/// use agentcore_telemetry::{Error, Registry};
///
/// let registry = Registry::new();
/// let err = registry.counter_family("bad name", "help", &[]).unwrap_err();
/// assert!(matches!(err, Error::InvalidMetricName { .. }));
/// assert_eq!(err.to_string(), "invalid metric name \"bad name\": must match [a-zA-Z_:][a-zA-Z0-9_:]*");
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// A metric name that does not match `[a-zA-Z_:][a-zA-Z0-9_:]*`, or that starts with `_`
    /// (reserved by OpenMetrics 1.0, which the registry also exposes).
    InvalidMetricName {
        /// The refused name.
        name: String,
    },
    /// A label name that does not match `[a-zA-Z_][a-zA-Z0-9_]*`, starts with the reserved `__`
    /// (or, in a registry, with `_`: reserved by OpenMetrics 1.0), or is one the metric type
    /// reserves (`le` for histograms, `quantile` for summaries).
    InvalidLabelName {
        /// The refused label name.
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// The same label name twice in one family, or twice in one
    /// [`with_named_labels`](crate::Family::with_named_labels) lookup.
    DuplicateLabelName {
        /// The repeated label name.
        name: String,
    },
    /// A label name a family does not have, given to
    /// [`with_named_labels`](crate::Family::with_named_labels).
    UnknownLabelName {
        /// The name given.
        name: String,
    },
    /// A second family with a name already taken in either exposition format: a sample name
    /// (such as `x_count` of a histogram `x`), or an OpenMetrics family or sample name (a counter
    /// `x_total` is the OpenMetrics family `x`).
    DuplicateMetric {
        /// The clashing name.
        name: String,
    },
    /// A family re-declared with another type, label set or buckets.
    ShapeMismatch {
        /// The family's name.
        name: String,
        /// What differs.
        detail: String,
    },
    /// A label-value list whose length differs from the family's label names.
    WrongLabelCount {
        /// How many label names the family has.
        expected: usize,
        /// How many values were given.
        got: usize,
    },
    /// A counter increment that is negative, NaN or infinite.
    InvalidIncrement {
        /// The refused increment.
        value: f64,
    },
    /// An observation that is NaN.
    InvalidObservation {
        /// The refused value.
        value: f64,
    },
    /// Histogram bucket bounds that are not finite and strictly increasing, or too many of them.
    InvalidBuckets {
        /// What is wrong with them.
        reason: String,
    },
    /// A summary configuration that cannot work (quantiles outside `[0, 1]`, a zero window).
    InvalidSummaryConfig {
        /// What is wrong with it.
        reason: String,
    },
    /// The per-thread slot arena has no room left for another series (see
    /// the crate-private `sync::slots` module); remove series or lower cardinality.
    SlotArenaExhausted,
    /// An exemplar refused by `inc_with_exemplar` / `observe_with_exemplar` (the value itself
    /// was recorded): an invalid or repeated label name, more than 128 code points of names and
    /// values, or a rendering over 256 bytes.
    InvalidExemplar {
        /// Why it was refused.
        reason: String,
    },
    /// `inc_with_exemplar` / `observe_with_exemplar` on a metric with exemplars
    /// [`Off`](crate::Exemplars::Off) (the value itself was recorded). It holds nothing and
    /// allocates nothing, so code that passes an exemplar with every recording may run with
    /// exemplars switched off by configuration at no cost beyond the call.
    ///
    /// ```
    /// use agentcore_telemetry::{Counter, Error};
    ///
    /// let plain = Counter::new().unwrap(); // exemplars off
    /// assert_eq!(plain.inc_with_exemplar(&[("trace_id", "abc")]), Err(Error::ExemplarsOff));
    /// assert_eq!(plain.get(), 1.0); // the increment was recorded
    /// ```
    ExemplarsOff,
    /// The process metrics cannot be read here (`/proc/self` unreadable on Linux); see
    /// [`Registry::register_process_metrics`](crate::Registry::register_process_metrics).
    ProcessMetricsUnavailable {
        /// What could not be read, and why.
        reason: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidMetricName { name } => {
                // A name of the 0.0.4 grammar that begins with `_`: refused for OpenMetrics'
                // sake (`exposition::name::reserved_by_openmetrics`; not called from here, which
                // sits below every module).
                let grammar = name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':');
                if name.starts_with('_') && grammar {
                    write!(
                        f,
                        "invalid metric name {name:?}: names starting with _ are reserved by OpenMetrics 1.0"
                    )
                } else {
                    write!(
                        f,
                        "invalid metric name {name:?}: must match [a-zA-Z_:][a-zA-Z0-9_:]*"
                    )
                }
            }
            Error::InvalidLabelName { name, reason } => {
                write!(f, "invalid label name {name:?}: {reason}")
            }
            Error::DuplicateLabelName { name } => {
                write!(f, "label name {name:?} given twice")
            }
            Error::UnknownLabelName { name } => {
                write!(f, "label name {name:?} is not one of the family's")
            }
            Error::DuplicateMetric { name } => {
                write!(f, "a metric family named {name:?} (or producing that sample name) is already registered")
            }
            Error::ShapeMismatch { name, detail } => {
                write!(
                    f,
                    "metric {name:?} is already registered with another shape: {detail}"
                )
            }
            Error::WrongLabelCount { expected, got } => {
                write!(f, "wrong number of label values: the family has {expected} label names, {got} values were given")
            }
            Error::InvalidIncrement { value } => {
                write!(
                    f,
                    "counter increments must be finite and non-negative, got {value}"
                )
            }
            Error::InvalidObservation { value } => write!(f, "observation {value} is not a number"),
            Error::InvalidBuckets { reason } => write!(f, "invalid histogram buckets: {reason}"),
            Error::InvalidSummaryConfig { reason } => {
                write!(f, "invalid summary configuration: {reason}")
            }
            Error::SlotArenaExhausted => {
                f.write_str("the per-thread slot arena is full: too many live series")
            }
            Error::InvalidExemplar { reason } => {
                write!(f, "exemplar not kept (the value was recorded): {reason}")
            }
            Error::ExemplarsOff => f.write_str(
                "exemplar not kept (the value was recorded): exemplars are off for this metric \
                 (see Exemplars)",
            ),
            Error::ProcessMetricsUnavailable { reason } => {
                write!(f, "process metrics unavailable: {reason}")
            }
        }
    }
}

impl std::error::Error for Error {}
