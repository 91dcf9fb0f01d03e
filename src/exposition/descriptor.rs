//! What the formats need to know of a family: its [`MetricKind`] (which fixes the `# TYPE`
//! keyword, the sample-name suffixes and the reserved label) and its [`Descriptor`] (name, help,
//! label names). The registry builds them; the encoders read them.

/// The type of a metric family.
///
/// ```
/// use agentcore_telemetry::MetricKind;
///
/// let kind = MetricKind::Histogram;
/// assert_eq!(kind.type_keyword(), "histogram");
/// assert_eq!(kind.reserved_label(), Some("le"));
/// assert!(kind.sample_suffixes().contains(&"_bucket"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricKind {
    /// A monotonically increasing value.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// Observations counted into fixed buckets.
    Histogram,
    /// Quantiles over a sliding window.
    Summary,
    /// Constant labels with value 1.
    Info,
}

impl MetricKind {
    /// The `# TYPE` keyword in the text format 0.0.4 (`info` has none and is exposed as `gauge`).
    ///
    /// ```
    /// use agentcore_telemetry::MetricKind;
    ///
    /// assert_eq!(MetricKind::Counter.type_keyword(), "counter");
    /// assert_eq!(MetricKind::Info.type_keyword(), "gauge");
    /// ```
    pub fn type_keyword(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge | MetricKind::Info => "gauge",
            MetricKind::Histogram => "histogram",
            MetricKind::Summary => "summary",
        }
    }

    /// The suffixes of the sample names a family of this kind produces.
    ///
    /// ```
    /// use agentcore_telemetry::MetricKind;
    ///
    /// assert_eq!(MetricKind::Summary.sample_suffixes(), ["", "_sum", "_count"]);
    /// assert_eq!(MetricKind::Gauge.sample_suffixes(), [""]);
    /// ```
    pub fn sample_suffixes(self) -> &'static [&'static str] {
        match self {
            MetricKind::Counter | MetricKind::Gauge | MetricKind::Info => &[""],
            MetricKind::Histogram => &["", "_bucket", "_sum", "_count"],
            MetricKind::Summary => &["", "_sum", "_count"],
        }
    }

    /// A label name the kind reserves for itself.
    ///
    /// ```
    /// use agentcore_telemetry::MetricKind;
    ///
    /// assert_eq!(MetricKind::Summary.reserved_label(), Some("quantile"));
    /// assert_eq!(MetricKind::Counter.reserved_label(), None);
    /// ```
    pub fn reserved_label(self) -> Option<&'static str> {
        match self {
            MetricKind::Histogram => Some("le"),
            MetricKind::Summary => Some("quantile"),
            _ => None,
        }
    }
}

/// A family's identity: name, help and label names.
///
/// ```
/// use agentcore_telemetry::exposition::{Descriptor, MetricKind};
///
/// let desc = Descriptor {
///     name: "tool_calls_total".into(),
///     help: "Tool calls.".into(),
///     label_names: vec![Box::from("tool")].into_boxed_slice(),
///     kind: MetricKind::Counter,
/// };
/// assert_eq!((&*desc.name, desc.kind.type_keyword()), ("tool_calls_total", "counter"));
/// assert_eq!(desc.label_names.len(), 1);
/// ```
#[derive(Debug)]
pub struct Descriptor {
    /// The metric name.
    pub name: Box<str>,
    /// The help text.
    pub help: Box<str>,
    /// The label names, in order.
    pub label_names: Box<[Box<str>]>,
    /// The type.
    pub kind: MetricKind,
}
