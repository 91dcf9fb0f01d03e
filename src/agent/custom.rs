//! Custom metrics: application-specific families created at run time through the collector.
//!
//! # Naming
//! Custom names get the `agentcore_` prefix, so every metric of the runtime shares one
//! namespace: a gauge `queue_depth` is exposed as `agentcore_queue_depth`; a name that already
//! starts with `agentcore_` is used as it is (never `agentcore_agentcore_...`). A counter also
//! gets the `_total` suffix Prometheus' conventions (and `promtool check metrics`) ask of
//! counters, unless its name has it: `user_actions` is exposed as
//! `agentcore_user_actions_total`. An info metric gets the `_info` suffix its samples have
//! (as the specification's `agentcore_runtime_info`, and as OpenMetrics writes them), unless
//! its name has it: `build` is exposed as `agentcore_build_info` in both formats. Look-ups
//! accept every form (`user_actions`, `agentcore_user_actions`, `user_actions_total`; `build`,
//! `build_info`), and one name is one metric: `x` and `x_total` (or, for an info metric,
//! `x_info`) cannot be two metrics of different types.
//!
//! # Recording
//! [`CustomMetric::labels`] resolves a series by positional label values and returns a
//! [`CustomSeries`] whose recording methods return `()`, as the built-in ones do. An operation
//! the metric's type does not have (`observe` on a counter, `inc` on a histogram), a negative
//! counter increment and a non-finite gauge value are refused and counted in
//! `agentcore_telemetry_rejected_values_total{metric="<name>"}`. For compile-time checked use,
//! take the typed family with [`CustomMetric::as_counter`] and friends.
//!
//! ```
//! use agentcore_telemetry::agent::MetricType;
//! use agentcore_telemetry::MetricsCollector;
//!
//! let collector = MetricsCollector::new();
//! let actions = collector
//!     .create_custom_metric("user_actions", MetricType::Counter, "User actions performed", &["action_type", "user_role"])
//!     .unwrap();
//! actions.labels(&["agent_create", "admin"]).unwrap().inc();
//! actions.labels(&["agent_create", "admin"]).unwrap().observe(1.0); // refused and counted
//! let text = collector.encode_text();
//! assert!(text.contains("agentcore_user_actions_total{action_type=\"agent_create\",user_role=\"admin\"} 1\n"));
//! assert_eq!(collector.rejected_values("agentcore_user_actions_total"), 1);
//! ```

use crate::primitives::SummaryConfig;
use crate::registry::{FamilyOptions, Metric, OVERFLOW_METRIC};
use crate::{
    Buckets, Counter, Error, Family, Gauge, Histogram, Info, MetricKind, Registry, SeriesRef,
    Summary,
};

use super::builtin::{BuiltinMetric, BUILTIN_METRICS, REJECTED_METRIC};
use super::snapshot::{FamilySnapshot, SnapshotFamily};

/// The type of a custom metric, with what its type needs (histogram buckets, summary settings).
///
/// ```
/// use agentcore_telemetry::agent::MetricType;
/// use agentcore_telemetry::{Buckets, MetricKind};
///
/// assert_eq!(MetricType::histogram().kind(), MetricKind::Histogram);
/// let latency = MetricType::Histogram(Buckets::new(vec![0.1, 0.5, 1.0]).unwrap());
/// assert_eq!(latency.kind(), MetricKind::Histogram);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum MetricType {
    /// A monotonically increasing value.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// Observations counted into these buckets.
    Histogram(Buckets),
    /// Quantiles over a sliding window.
    Summary(SummaryConfig),
    /// Constant labels with value 1.
    Info,
}

impl MetricType {
    /// A histogram with Prometheus' default buckets (durations in seconds).
    ///
    /// ```
    /// use agentcore_telemetry::agent::MetricType;
    /// use agentcore_telemetry::Buckets;
    ///
    /// assert_eq!(MetricType::histogram(), MetricType::Histogram(Buckets::default()));
    /// ```
    pub fn histogram() -> MetricType {
        MetricType::Histogram(Buckets::default())
    }

    /// A summary with the default quantiles (0.5, 0.9, 0.99) over 10 minutes.
    ///
    /// ```
    /// use agentcore_telemetry::agent::MetricType;
    /// use agentcore_telemetry::SummaryConfig;
    ///
    /// assert_eq!(MetricType::summary(), MetricType::Summary(SummaryConfig::default()));
    /// ```
    pub fn summary() -> MetricType {
        MetricType::Summary(SummaryConfig::default())
    }

    /// The metric kind.
    ///
    /// ```
    /// use agentcore_telemetry::agent::MetricType;
    /// use agentcore_telemetry::MetricKind;
    ///
    /// assert_eq!(MetricType::Counter.kind(), MetricKind::Counter);
    /// ```
    pub fn kind(&self) -> MetricKind {
        match self {
            MetricType::Counter => MetricKind::Counter,
            MetricType::Gauge => MetricKind::Gauge,
            MetricType::Histogram(_) => MetricKind::Histogram,
            MetricType::Summary(_) => MetricKind::Summary,
            MetricType::Info => MetricKind::Info,
        }
    }
}

/// A custom metric: its family (by type) and where it reports refused operations. Cheap to
/// clone (shared). Returned by
/// [`MetricsCollector::create_custom_metric`](super::MetricsCollector::create_custom_metric).
///
/// ```
/// use agentcore_telemetry::agent::MetricType;
/// use agentcore_telemetry::MetricsCollector;
///
/// let collector = MetricsCollector::new();
/// let actions = collector
///     .create_custom_metric("user_actions", MetricType::Counter, "User actions performed", &["action_type", "user_role"])
///     .unwrap();
/// actions.labels(&["agent_create", "admin"]).unwrap().inc();
/// assert_eq!(actions.name(), "agentcore_user_actions_total");
/// assert!(collector.encode_text().contains(
///     "agentcore_user_actions_total{action_type=\"agent_create\",user_role=\"admin\"} 1\n"
/// ));
/// ```
#[derive(Debug, Clone)]
pub struct CustomMetric {
    family: CustomFamily,
    rejections: Rejections,
}

/// The family of a custom metric, by type.
///
/// ```
/// use agentcore_telemetry::agent::{CustomFamily, MetricType};
/// use agentcore_telemetry::MetricsCollector;
///
/// let collector = MetricsCollector::new();
/// let m = collector.create_custom_metric("jobs_total", MetricType::Counter, "Jobs.", &[]).unwrap();
/// assert!(matches!(m.family(), CustomFamily::Counter(_)));
/// ```
#[derive(Debug, Clone)]
pub enum CustomFamily {
    /// A counter family.
    Counter(Family<Counter>),
    /// A gauge family.
    Gauge(Family<Gauge>),
    /// A histogram family.
    Histogram(Family<Histogram>),
    /// A summary family.
    Summary(Family<Summary>),
    /// An info family.
    Info(Family<Info>),
}

/// Whom a [`CustomSeries`] reports refused operations to.
#[derive(Debug, Clone)]
pub(crate) struct Rejections(pub Family<Counter>);

impl Rejections {
    #[cold]
    fn reject(&self, metric: &str) {
        if let Ok(c) = self.0.with_label_values(&[metric]) {
            c.inc();
        }
    }
}

impl CustomMetric {
    pub(crate) fn new(family: CustomFamily, rejections: Family<Counter>) -> CustomMetric {
        CustomMetric {
            family,
            rejections: Rejections(rejections),
        }
    }

    /// The family, by type.
    ///
    /// ```
    /// use agentcore_telemetry::agent::{CustomFamily, MetricType};
    /// use agentcore_telemetry::MetricsCollector;
    ///
    /// let collector = MetricsCollector::new();
    /// let m = collector.create_custom_metric("level", MetricType::Gauge, "Level.", &[]).unwrap();
    /// assert!(matches!(m.family(), CustomFamily::Gauge(_)));
    /// ```
    pub fn family(&self) -> &CustomFamily {
        &self.family
    }

    /// The full metric name (with the `agentcore_` prefix).
    ///
    /// ```
    /// use agentcore_telemetry::agent::MetricType;
    /// use agentcore_telemetry::MetricsCollector;
    ///
    /// let collector = MetricsCollector::new();
    /// let m = collector.create_custom_metric("agentcore_queue_depth", MetricType::Gauge, "Queue depth.", &[]).unwrap();
    /// assert_eq!(m.name(), "agentcore_queue_depth");
    /// ```
    pub fn name(&self) -> &str {
        self.family.name()
    }

    /// The metric kind.
    ///
    /// ```
    /// use agentcore_telemetry::agent::MetricType;
    /// use agentcore_telemetry::{MetricKind, MetricsCollector};
    ///
    /// let collector = MetricsCollector::new();
    /// let m = collector.create_custom_metric("latency", MetricType::histogram(), "Latency.", &[]).unwrap();
    /// assert_eq!(m.kind(), MetricKind::Histogram);
    /// ```
    pub fn kind(&self) -> MetricKind {
        self.family.kind()
    }

    /// The label names, in order.
    ///
    /// ```
    /// use agentcore_telemetry::agent::MetricType;
    /// use agentcore_telemetry::MetricsCollector;
    ///
    /// let collector = MetricsCollector::new();
    /// let m = collector.create_custom_metric("hits", MetricType::Counter, "Hits.", &["route"]).unwrap();
    /// assert_eq!(&*m.label_names()[0], "route");
    /// ```
    pub fn label_names(&self) -> &[Box<str>] {
        self.family.label_names()
    }

    /// The series for these label values (positional, in the order of the label names),
    /// created if needed; no lock and no allocation once it exists. Errors with
    /// [`Error::WrongLabelCount`] when the count is wrong.
    ///
    /// ```
    /// use agentcore_telemetry::agent::MetricType;
    /// use agentcore_telemetry::MetricsCollector;
    ///
    /// let collector = MetricsCollector::new();
    /// let latency = collector
    ///     .create_custom_metric("request_latency", MetricType::histogram(), "API request latency", &["endpoint"])
    ///     .unwrap();
    /// latency.labels(&["/api/agents"]).unwrap().observe(0.123);
    /// assert!(latency.labels(&["a", "b"]).is_err());
    /// assert!(collector.encode_text().contains("agentcore_request_latency_count{endpoint=\"/api/agents\"} 1\n"));
    /// ```
    #[inline]
    pub fn labels<S: AsRef<str>>(&self, values: &[S]) -> Result<CustomSeries<'_>, Error> {
        self.series(Labels::Values(values))
    }

    /// The series for these `(label name, value)` pairs, in any order: the specification's
    /// `labels(action_type="agent_create", user_role="admin")`. Each label name once; errors as
    /// [`Family::with_named_labels`](crate::Family::with_named_labels) does. No lock and no allocation once the series exists.
    ///
    /// ```
    /// use agentcore_telemetry::agent::MetricType;
    /// use agentcore_telemetry::MetricsCollector;
    ///
    /// let collector = MetricsCollector::new();
    /// let actions = collector
    ///     .create_custom_metric("user_actions_total", MetricType::Counter, "User actions.", &["action_type", "user_role"])
    ///     .unwrap();
    /// actions.named_labels(&[("user_role", "admin"), ("action_type", "agent_create")]).unwrap().inc();
    /// assert!(actions.named_labels(&[("action_type", "agent_create")]).is_err());
    /// assert!(collector
    ///     .encode_text()
    ///     .contains("agentcore_user_actions_total{action_type=\"agent_create\",user_role=\"admin\"} 1\n"));
    /// ```
    pub fn named_labels(&self, labels: &[(&str, &str)]) -> Result<CustomSeries<'_>, Error> {
        self.series(Labels::<&str>::Named(labels))
    }

    /// The series `labels` name, of whichever type this metric is.
    #[inline]
    fn series<S: AsRef<str>>(&self, labels: Labels<'_, S>) -> Result<CustomSeries<'_>, Error> {
        let series = match &self.family {
            CustomFamily::Counter(f) => SeriesKind::Counter(labels.look_up(f)?),
            CustomFamily::Gauge(f) => SeriesKind::Gauge(labels.look_up(f)?),
            CustomFamily::Histogram(f) => SeriesKind::Histogram(labels.look_up(f)?),
            CustomFamily::Summary(f) => SeriesKind::Summary(labels.look_up(f)?),
            CustomFamily::Info(f) => {
                labels.look_up(f)?;
                SeriesKind::Info
            }
        };
        Ok(CustomSeries {
            name: self.name(),
            series,
            rejections: &self.rejections,
        })
    }

    /// The counter family, if this is a counter.
    ///
    /// ```
    /// use agentcore_telemetry::agent::MetricType;
    /// use agentcore_telemetry::MetricsCollector;
    ///
    /// let collector = MetricsCollector::new();
    /// let m = collector.create_custom_metric("jobs_total", MetricType::Counter, "Jobs.", &["queue"]).unwrap();
    /// m.as_counter().unwrap().with_label_values(&["default"]).unwrap().inc_by(3);
    /// assert!(m.as_gauge().is_none());
    /// ```
    pub fn as_counter(&self) -> Option<&Family<Counter>> {
        match &self.family {
            CustomFamily::Counter(f) => Some(f),
            _ => None,
        }
    }

    /// The gauge family, if this is a gauge.
    ///
    /// ```
    /// use agentcore_telemetry::agent::MetricType;
    /// use agentcore_telemetry::MetricsCollector;
    ///
    /// let collector = MetricsCollector::new();
    /// let m = collector.create_custom_metric("queue_depth", MetricType::Gauge, "Depth.", &[]).unwrap();
    /// m.as_gauge().unwrap().with_label_values::<&str>(&[]).unwrap().set(4.0);
    /// ```
    pub fn as_gauge(&self) -> Option<&Family<Gauge>> {
        match &self.family {
            CustomFamily::Gauge(f) => Some(f),
            _ => None,
        }
    }

    /// The histogram family, if this is a histogram.
    ///
    /// ```
    /// use agentcore_telemetry::agent::MetricType;
    /// use agentcore_telemetry::MetricsCollector;
    ///
    /// let collector = MetricsCollector::new();
    /// let m = collector.create_custom_metric("size_bytes", MetricType::histogram(), "Sizes.", &[]).unwrap();
    /// m.as_histogram().unwrap().with_label_values::<&str>(&[]).unwrap().observe(0.5);
    /// ```
    pub fn as_histogram(&self) -> Option<&Family<Histogram>> {
        match &self.family {
            CustomFamily::Histogram(f) => Some(f),
            _ => None,
        }
    }

    /// The summary family, if this is a summary.
    ///
    /// ```
    /// use agentcore_telemetry::agent::MetricType;
    /// use agentcore_telemetry::MetricsCollector;
    ///
    /// let collector = MetricsCollector::new();
    /// let m = collector.create_custom_metric("rtt_seconds", MetricType::summary(), "RTT.", &[]).unwrap();
    /// m.as_summary().unwrap().with_label_values::<&str>(&[]).unwrap().observe(0.5);
    /// ```
    pub fn as_summary(&self) -> Option<&Family<Summary>> {
        match &self.family {
            CustomFamily::Summary(f) => Some(f),
            _ => None,
        }
    }

    /// The info family, if this is an info metric.
    ///
    /// ```
    /// use agentcore_telemetry::agent::MetricType;
    /// use agentcore_telemetry::MetricsCollector;
    ///
    /// let collector = MetricsCollector::new();
    /// let m = collector.create_custom_metric("build_info", MetricType::Info, "Build.", &["commit"]).unwrap();
    /// m.as_info().unwrap().with_label_values(&["abc123"]).unwrap();
    /// ```
    pub fn as_info(&self) -> Option<&Family<Info>> {
        match &self.family {
            CustomFamily::Info(f) => Some(f),
            _ => None,
        }
    }
}

impl CustomFamily {
    /// The full metric name.
    ///
    /// ```
    /// use agentcore_telemetry::agent::MetricType;
    /// use agentcore_telemetry::MetricsCollector;
    ///
    /// let collector = MetricsCollector::new();
    /// let m = collector.create_custom_metric("x_total", MetricType::Counter, "X.", &[]).unwrap();
    /// assert_eq!(m.family().name(), "agentcore_x_total");
    /// ```
    pub fn name(&self) -> &str {
        match self {
            CustomFamily::Counter(f) => f.name(),
            CustomFamily::Gauge(f) => f.name(),
            CustomFamily::Histogram(f) => f.name(),
            CustomFamily::Summary(f) => f.name(),
            CustomFamily::Info(f) => f.name(),
        }
    }

    /// The help text (the description it was created with).
    ///
    /// ```
    /// use agentcore_telemetry::agent::MetricType;
    /// use agentcore_telemetry::MetricsCollector;
    ///
    /// let collector = MetricsCollector::new();
    /// let m = collector.create_custom_metric("x_total", MetricType::Counter, "X.", &[]).unwrap();
    /// assert_eq!(m.family().help(), "X.");
    /// ```
    pub fn help(&self) -> &str {
        match self {
            CustomFamily::Counter(f) => &f.descriptor().help,
            CustomFamily::Gauge(f) => &f.descriptor().help,
            CustomFamily::Histogram(f) => &f.descriptor().help,
            CustomFamily::Summary(f) => &f.descriptor().help,
            CustomFamily::Info(f) => &f.descriptor().help,
        }
    }

    /// The metric kind.
    ///
    /// ```
    /// use agentcore_telemetry::agent::MetricType;
    /// use agentcore_telemetry::{MetricKind, MetricsCollector};
    ///
    /// let collector = MetricsCollector::new();
    /// let m = collector.create_custom_metric("x_total", MetricType::Counter, "X.", &[]).unwrap();
    /// assert_eq!(m.family().kind(), MetricKind::Counter);
    /// ```
    pub fn kind(&self) -> MetricKind {
        match self {
            CustomFamily::Counter(_) => MetricKind::Counter,
            CustomFamily::Gauge(_) => MetricKind::Gauge,
            CustomFamily::Histogram(_) => MetricKind::Histogram,
            CustomFamily::Summary(_) => MetricKind::Summary,
            CustomFamily::Info(_) => MetricKind::Info,
        }
    }

    /// The label names, in order.
    ///
    /// ```
    /// use agentcore_telemetry::agent::MetricType;
    /// use agentcore_telemetry::MetricsCollector;
    ///
    /// let collector = MetricsCollector::new();
    /// let m = collector.create_custom_metric("x_total", MetricType::Counter, "X.", &["a"]).unwrap();
    /// assert_eq!(m.family().label_names().len(), 1);
    /// ```
    pub fn label_names(&self) -> &[Box<str>] {
        match self {
            CustomFamily::Counter(f) => f.label_names(),
            CustomFamily::Gauge(f) => f.label_names(),
            CustomFamily::Histogram(f) => f.label_names(),
            CustomFamily::Summary(f) => f.label_names(),
            CustomFamily::Info(f) => f.label_names(),
        }
    }

    pub(crate) fn snapshot(&self) -> FamilySnapshot {
        match self {
            CustomFamily::Counter(f) => f.snapshot(),
            CustomFamily::Gauge(f) => f.snapshot(),
            CustomFamily::Histogram(f) => f.snapshot(),
            CustomFamily::Summary(f) => f.snapshot(),
            CustomFamily::Info(f) => f.snapshot(),
        }
    }
}

/// How [`CustomMetric::labels`] and [`CustomMetric::named_labels`] give a series' labels.
enum Labels<'a, S> {
    /// Values in the order of the label names.
    Values(&'a [S]),
    /// `(name, value)` pairs in any order.
    Named(&'a [(&'a str, &'a str)]),
}

impl<S: AsRef<str>> Labels<'_, S> {
    #[inline]
    fn look_up<'f, M: Metric>(&self, family: &'f Family<M>) -> Result<SeriesRef<'f, M>, Error> {
        match self {
            Labels::Values(values) => family.with_label_values(values),
            Labels::Named(labels) => family.with_named_labels(labels),
        }
    }
}

enum SeriesKind<'a> {
    Counter(SeriesRef<'a, Counter>),
    Gauge(SeriesRef<'a, Gauge>),
    Histogram(SeriesRef<'a, Histogram>),
    Summary(SeriesRef<'a, Summary>),
    Info,
}

/// One series of a custom metric, borrowed from [`CustomMetric::labels`]. Recording methods
/// return `()`; an operation the type does not have, or an invalid value, is refused and
/// counted (see the [module documentation](self)), never a panic.
///
/// ```
/// use agentcore_telemetry::agent::MetricType;
/// use agentcore_telemetry::MetricsCollector;
///
/// let collector = MetricsCollector::new();
/// let depth = collector.create_custom_metric("queue_depth", MetricType::Gauge, "Depth.", &["queue"]).unwrap();
/// let series = depth.labels(&["default"]).unwrap();
/// series.set(10.0);
/// series.dec();
/// series.observe(1.0); // not a gauge operation: refused and counted
/// assert_eq!(series.get(), Some(9.0));
/// ```
pub struct CustomSeries<'a> {
    name: &'a str,
    series: SeriesKind<'a>,
    rejections: &'a Rejections,
}

impl std::fmt::Debug for CustomSeries<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomSeries")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl CustomSeries<'_> {
    #[cold]
    fn reject(&self) {
        self.rejections.reject(self.name);
    }

    /// Adds one (counter, gauge).
    ///
    /// ```
    /// # use agentcore_telemetry::{agent::MetricType, MetricsCollector};
    /// let c = MetricsCollector::new();
    /// let m = c.create_custom_metric("n_total", MetricType::Counter, "N.", &[]).unwrap();
    /// m.labels::<&str>(&[]).unwrap().inc();
    /// assert_eq!(m.labels::<&str>(&[]).unwrap().get(), Some(1.0));
    /// ```
    #[inline]
    pub fn inc(&self) {
        match &self.series {
            SeriesKind::Counter(c) => c.inc(),
            SeriesKind::Gauge(g) => g.inc(),
            _ => self.reject(),
        }
    }

    /// Adds `n` (counter, gauge).
    ///
    /// ```
    /// # use agentcore_telemetry::{agent::MetricType, MetricsCollector};
    /// let c = MetricsCollector::new();
    /// let m = c.create_custom_metric("n_total", MetricType::Counter, "N.", &[]).unwrap();
    /// m.labels::<&str>(&[]).unwrap().inc_by(5);
    /// assert_eq!(m.labels::<&str>(&[]).unwrap().get(), Some(5.0));
    /// ```
    #[inline]
    pub fn inc_by(&self, n: u64) {
        match &self.series {
            SeriesKind::Counter(c) => c.inc_by(n),
            SeriesKind::Gauge(g) => g.add(n as f64),
            _ => self.reject(),
        }
    }

    /// Adds `v` (counter: finite and non-negative; gauge: finite, may be negative).
    ///
    /// ```
    /// # use agentcore_telemetry::{agent::MetricType, MetricsCollector};
    /// let c = MetricsCollector::new();
    /// let m = c.create_custom_metric("mb_total", MetricType::Counter, "MB.", &[]).unwrap();
    /// let s = m.labels::<&str>(&[]).unwrap();
    /// s.add(2.5);
    /// s.add(-1.0); // refused and counted
    /// assert_eq!(s.get(), Some(2.5));
    /// ```
    #[inline]
    pub fn add(&self, v: f64) {
        match &self.series {
            SeriesKind::Counter(c) => {
                if c.add(v).is_err() {
                    self.reject();
                }
            }
            SeriesKind::Gauge(g) if v.is_finite() => g.add(v),
            _ => self.reject(),
        }
    }

    /// Subtracts one (gauge).
    ///
    /// ```
    /// # use agentcore_telemetry::{agent::MetricType, MetricsCollector};
    /// let c = MetricsCollector::new();
    /// let m = c.create_custom_metric("level", MetricType::Gauge, "Level.", &[]).unwrap();
    /// m.labels::<&str>(&[]).unwrap().dec();
    /// assert_eq!(m.labels::<&str>(&[]).unwrap().get(), Some(-1.0));
    /// ```
    #[inline]
    pub fn dec(&self) {
        match &self.series {
            SeriesKind::Gauge(g) => g.dec(),
            _ => self.reject(),
        }
    }

    /// Subtracts `v` (gauge; finite).
    ///
    /// ```
    /// # use agentcore_telemetry::{agent::MetricType, MetricsCollector};
    /// let c = MetricsCollector::new();
    /// let m = c.create_custom_metric("level", MetricType::Gauge, "Level.", &[]).unwrap();
    /// m.labels::<&str>(&[]).unwrap().sub(2.0);
    /// assert_eq!(m.labels::<&str>(&[]).unwrap().get(), Some(-2.0));
    /// ```
    #[inline]
    pub fn sub(&self, v: f64) {
        match &self.series {
            SeriesKind::Gauge(g) if v.is_finite() => g.sub(v),
            _ => self.reject(),
        }
    }

    /// Sets the value (gauge; finite).
    ///
    /// ```
    /// # use agentcore_telemetry::{agent::MetricType, MetricsCollector};
    /// let c = MetricsCollector::new();
    /// let m = c.create_custom_metric("level", MetricType::Gauge, "Level.", &[]).unwrap();
    /// m.labels::<&str>(&[]).unwrap().set(7.0);
    /// m.labels::<&str>(&[]).unwrap().set(f64::NAN); // refused and counted
    /// assert_eq!(m.labels::<&str>(&[]).unwrap().get(), Some(7.0));
    /// ```
    #[inline]
    pub fn set(&self, v: f64) {
        match &self.series {
            SeriesKind::Gauge(g) if v.is_finite() => g.set(v),
            _ => self.reject(),
        }
    }

    /// Records an observation (histogram, summary; not NaN). `±Inf` is recorded (a histogram
    /// counts it in its first or `+Inf` bucket) and makes the sum infinite, or NaN once both
    /// have been seen; a [snapshot](super::MetricsSnapshot) writes such values to JSON as
    /// `"+Inf"`, `"-Inf"` and `"NaN"` and reads them back.
    ///
    /// ```
    /// # use agentcore_telemetry::{agent::MetricType, MetricsCollector};
    /// let c = MetricsCollector::new();
    /// let m = c.create_custom_metric("latency", MetricType::summary(), "Latency.", &[]).unwrap();
    /// m.labels::<&str>(&[]).unwrap().observe(0.25);
    /// assert!(c.encode_text().contains("agentcore_latency_count 1\n"));
    /// ```
    #[inline]
    pub fn observe(&self, v: f64) {
        match &self.series {
            SeriesKind::Histogram(h) if !v.is_nan() => h.observe(v),
            SeriesKind::Summary(s) if !v.is_nan() => s.observe(v),
            _ => self.reject(),
        }
    }

    /// The current value of a counter or gauge (`Some(1.0)` for info); `None` for histograms
    /// and summaries.
    ///
    /// ```
    /// # use agentcore_telemetry::{agent::MetricType, MetricsCollector};
    /// let c = MetricsCollector::new();
    /// let m = c.create_custom_metric("build_info", MetricType::Info, "Build.", &["v"]).unwrap();
    /// assert_eq!(m.labels(&["1.0"]).unwrap().get(), Some(1.0));
    /// ```
    pub fn get(&self) -> Option<f64> {
        match &self.series {
            SeriesKind::Counter(c) => Some(c.get()),
            SeriesKind::Gauge(g) => Some(g.get()),
            SeriesKind::Info => Some(1.0),
            SeriesKind::Histogram(_) | SeriesKind::Summary(_) => None,
        }
    }
}

/// The full name of a custom metric: `name` with the `agentcore_` prefix, unless it already
/// has it.
///
/// ```
/// use agentcore_telemetry::agent::custom_metric_name;
///
/// assert_eq!(custom_metric_name("user_actions"), "agentcore_user_actions");
/// assert_eq!(custom_metric_name("agentcore_user_actions"), "agentcore_user_actions");
/// ```
pub fn custom_metric_name(name: &str) -> String {
    if name.starts_with("agentcore_") {
        name.to_string()
    } else {
        format!("agentcore_{name}")
    }
}

/// The collector's custom family `name`: the registered one when `ours` (it is in the
/// collector's custom map; its shape is checked), else a new one, [`Error::DuplicateMetric`]
/// when another family has the name.
fn get_or_register<M: Metric>(
    registry: &Registry,
    ours: bool,
    name: &str,
    help: &str,
    labels: &[&str],
    config: M::Config,
    options: FamilyOptions,
) -> Result<Family<M>, Error> {
    if ours {
        registry.get_or_register(name, help, labels, config, options)
    } else {
        registry.register(name, help, labels, config, options)
    }
}

// The collector's custom-metric methods.
impl super::MetricsCollector {
    /// Creates (or returns) a custom metric named `agentcore_<name>` (see
    /// [`custom_metric_name`]) with the given type, help text and label names. A counter is
    /// exposed with the `_total` suffix Prometheus' conventions and clients give counters
    /// (`user_actions` → `agentcore_user_actions_total`; a name already ending in `_total`
    /// keeps it), and is found under either name. An info metric likewise gets the `_info`
    /// suffix of its samples (`build` → `agentcore_build_info`, as Python's `Info` and the
    /// OpenMetrics exposition name them), and is found under either name.
    ///
    /// Re-creating a name with the same type, description, label names and buckets/settings
    /// returns the existing metric. Errors: an invalid metric or label name
    /// ([`Error::InvalidMetricName`], [`Error::InvalidLabelName`],
    /// [`Error::DuplicateLabelName`]), another shape or description under the same name
    /// ([`Error::ShapeMismatch`]: the first would be kept and the new one lost), a name of a
    /// built-in metric, of any other family of the registry that is not one of this
    /// collector's custom metrics (registered directly, by the `metrics` bridge, by a tracer,
    /// the telemetry's own), or one clashing with a sample name of another family
    /// ([`Error::DuplicateMetric`]), invalid summary settings.
    ///
    /// ```
    /// use agentcore_telemetry::agent::MetricType;
    /// use agentcore_telemetry::{Error, MetricsCollector};
    ///
    /// let c = MetricsCollector::new();
    /// let a = c.create_custom_metric("user_actions", MetricType::Counter, "User actions performed", &["action_type", "user_role"]).unwrap();
    /// a.labels(&["agent_create", "admin"]).unwrap().inc();
    /// assert_eq!(a.family().name(), "agentcore_user_actions_total");
    /// assert!(c.encode_text().contains(
    ///     "agentcore_user_actions_total{action_type=\"agent_create\",user_role=\"admin\"} 1\n"
    /// ));
    /// let again = c.create_custom_metric("agentcore_user_actions", MetricType::Counter, "User actions performed", &["action_type", "user_role"]).unwrap();
    /// assert_eq!(again.labels(&["agent_create", "admin"]).unwrap().get(), Some(1.0));
    /// assert!(c.get_custom_metric("user_actions_total").is_some());
    /// assert!(matches!(
    ///     c.create_custom_metric("user_actions", MetricType::Gauge, "x", &[]),
    ///     Err(Error::ShapeMismatch { .. })
    /// ));
    /// assert!(matches!(
    ///     c.create_custom_metric("user_actions", MetricType::Counter, "Actions", &["action_type", "user_role"]),
    ///     Err(Error::ShapeMismatch { .. })
    /// ));
    /// assert!(matches!(
    ///     c.create_custom_metric("agents_active", MetricType::Gauge, "x", &["philosophy"]),
    ///     Err(Error::DuplicateMetric { .. })
    /// ));
    /// let build = c.create_custom_metric("build", MetricType::Info, "Build.", &["commit"]).unwrap();
    /// build.labels(&["abc123"]).unwrap();
    /// assert!(c.encode_text().contains("agentcore_build_info{commit=\"abc123\"} 1\n"));
    /// assert_eq!(c.get_custom_metric("build_info").unwrap().name(), "agentcore_build_info");
    /// ```
    pub fn create_custom_metric(
        &self,
        name: &str,
        metric_type: MetricType,
        description: &str,
        labels: &[&str],
    ) -> Result<CustomMetric, Error> {
        let full = custom_metric_name(name);
        // The key a metric is known by (and the family name of all but counters and info
        // metrics): the name without `_total`, so that `x` and `x_total` are one metric
        // whatever its type; for an info metric, the name without `_info`, so that `x` and
        // `x_info` are one. Info metrics are exposed with `_info`, as counters with `_total`:
        // registered as `x`, one was `x{..} 1` in the text format and `x_info{..} 1` in
        // OpenMetrics, two names for one series depending on the scrape's `Accept` header.
        let key = match metric_type {
            MetricType::Info => full.strip_suffix("_info"),
            _ => full.strip_suffix("_total"),
        }
        .unwrap_or(&full)
        .to_owned();
        let full = match metric_type {
            MetricType::Counter => format!("{key}_total"),
            MetricType::Info => format!("{key}_info"),
            _ => full,
        };
        // A built-in's name, with or without `_total`, is taken, and so are the sample names
        // of built-in histograms and summaries (`x_count` would read as one of their series
        // even as `x_count_total`). The error names what is taken.
        let taken = |n: &str| n == full || n.strip_suffix("_total").unwrap_or(n) == key;
        let sample_of = |b: &BuiltinMetric| {
            matches!(b.kind, MetricKind::Histogram | MetricKind::Summary)
                && ["_count", "_sum", "_bucket"]
                    .iter()
                    .any(|suffix| key.strip_suffix(suffix) == Some(b.name))
        };
        let clash = BUILTIN_METRICS
            .iter()
            .find_map(|b| {
                if taken(b.name) {
                    Some(b.name.to_owned())
                } else if sample_of(b) {
                    Some(key.clone())
                } else {
                    None
                }
            })
            .or_else(|| {
                [REJECTED_METRIC, OVERFLOW_METRIC]
                    .into_iter()
                    .find(|n| taken(n))
                    .map(str::to_owned)
            });
        if let Some(name) = clash {
            return Err(Error::DuplicateMetric { name });
        }
        let registry = &self.inner.registry;
        let options = FamilyOptions {
            max_series: self.inner.config.max_series_per_family,
            ..FamilyOptions::default()
        };
        let mut custom = self.inner.custom.write().unwrap_or_else(|e| e.into_inner());
        if let Some(existing) = custom.get(&key) {
            let existing_name = existing.family().name();
            if existing_name != full {
                return Err(Error::ShapeMismatch {
                    name: existing_name.to_owned(),
                    detail: format!(
                        "custom metric {key:?} exists as {existing_name:?}, not {full:?}"
                    ),
                });
            }
            // Another description would be dropped in silence (the family keeps the first):
            // refused, as client_golang and rust-prometheus refuse a different help string.
            let help = existing.family().help();
            if help != description {
                return Err(Error::ShapeMismatch {
                    name: existing_name.to_owned(),
                    detail: format!(
                        "custom metric {key:?} exists with the description {help:?}, not \
                         {description:?}"
                    ),
                });
            }
        }
        // Only a custom metric of this collector's is returned again. A name free in the
        // custom map is registered afresh: `get_or_register` handed back any family of the
        // registry with that shape (registered directly, by the `metrics` bridge, by a
        // tracer) as if it were custom, the caller's description dropped in silence, and the
        // telemetry's own families were refused as another shape, not as taken (found by
        // review helper-123).
        let ours = custom.contains_key(&key);
        let family = match metric_type {
            MetricType::Counter => CustomFamily::Counter(get_or_register(
                registry,
                ours,
                &full,
                description,
                labels,
                (),
                options,
            )?),
            MetricType::Gauge => CustomFamily::Gauge(get_or_register(
                registry,
                ours,
                &full,
                description,
                labels,
                (),
                options,
            )?),
            MetricType::Histogram(buckets) => CustomFamily::Histogram(get_or_register(
                registry,
                ours,
                &full,
                description,
                labels,
                buckets,
                options,
            )?),
            MetricType::Summary(config) => {
                config.validate()?;
                CustomFamily::Summary(get_or_register(
                    registry,
                    ours,
                    &full,
                    description,
                    labels,
                    config,
                    options,
                )?)
            }
            MetricType::Info => CustomFamily::Info(get_or_register(
                registry,
                ours,
                &full,
                description,
                labels,
                (),
                options,
            )?),
        };
        let metric = CustomMetric::new(family, self.inner.m.rejected.clone());
        custom.insert(key, metric.clone());
        Ok(metric)
    }

    /// The custom metric named `name` (with or without the `agentcore_` prefix, a counter's
    /// `_total` and an info metric's `_info`), if created.
    ///
    /// ```
    /// use agentcore_telemetry::agent::MetricType;
    /// use agentcore_telemetry::MetricsCollector;
    ///
    /// let c = MetricsCollector::new();
    /// c.create_custom_metric("user_actions", MetricType::Counter, "User actions", &[]).unwrap();
    /// assert_eq!(c.get_custom_metric("user_actions").unwrap().name(), "agentcore_user_actions_total");
    /// assert!(c.get_custom_metric("agentcore_user_actions").is_some());
    /// assert!(c.get_custom_metric("agents_total").is_none()); // built-in, not custom
    /// c.create_custom_metric("build", MetricType::Info, "Build", &["commit"]).unwrap();
    /// assert!(c.get_custom_metric("build").is_some());
    /// assert!(c.get_custom_metric("agentcore_build_info").is_some());
    /// ```
    pub fn get_custom_metric(&self, name: &str) -> Option<CustomMetric> {
        let custom = self.inner.custom.read().unwrap_or_else(|e| e.into_inner());
        let full = custom_metric_name(name);
        let info = |m: &&CustomMetric| m.kind() == MetricKind::Info;
        // An info metric created with this very name first: its key keeps a `_total` (only a
        // counter's is its type's suffix), so one created as `x_total` is known as
        // `agentcore_x_total`, and was not found by that name (review helper-105); looked up
        // after the key less `_total`, it lost to another custom metric keyed so, a gauge `x`
        // beside it (review helper-131).
        custom
            .get(&full)
            .filter(info)
            .or_else(|| custom.get(full.strip_suffix("_total").unwrap_or(&full)))
            .or_else(|| {
                // An info metric is known by its name without `_info`.
                full.strip_suffix("_info")
                    .and_then(|key| custom.get(key))
                    .filter(info)
            })
            .cloned()
    }
}
