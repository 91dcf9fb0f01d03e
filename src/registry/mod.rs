//! The [`Registry`]: named metric families, validated, and their exposition.
//!
//! # Structure
//! The registry keeps its families in one copy-on-write list behind an [`ArcSwap`], sorted by
//! name. Registering a family (rare) takes a writer mutex, checks the name, the label names and
//! every sample name the family will produce against the families already there, and publishes a
//! new list. A scrape loads the current list without a lock and encodes one family at a time;
//! it never holds anything a recorder or a registration waits on (each family's scrape-side sort
//! cache is only ever locked by scrapes).

pub mod family;
pub mod name;
pub mod process;
pub mod self_metrics;

use std::any::Any;
use std::fmt::Debug;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arc_swap::ArcSwap;

pub use family::{
    Family, LabelValues, Series, SeriesRef, ARENA_SHARE, DEFAULT_MAX_SERIES, OVERFLOW_LABEL_VALUE,
};

use crate::exposition::float::format_go_float;
use crate::exposition::openmetrics::{self, OpenMetricsEncoder, SeriesHead};
use crate::exposition::prometheus_text::{escape_help, sample_start, value_f64, value_u64};
use crate::primitives::{Buckets, Counter, Gauge, Histogram, Info, Summary, SummaryConfig};
use crate::Error;

/// The name of the registry's own metric counting label sets folded into overflow series.
pub const OVERFLOW_METRIC: &str = "agentcore_telemetry_series_overflow_total";

/// A name a family takes in one of the formats it can be exposed in.
#[derive(Debug, PartialEq, Eq)]
enum Claim {
    /// A sample name in the text format 0.0.4.
    TextSample(String),
    /// A family name in OpenMetrics 1.0 (which must be unique in an exposition).
    OpenMetricsFamily(String),
    /// A sample name a family may produce in OpenMetrics 1.0.
    OpenMetricsSample(String),
}

impl Claim {
    fn name(&self) -> &str {
        match self {
            Claim::TextSample(n) | Claim::OpenMetricsFamily(n) | Claim::OpenMetricsSample(n) => n,
        }
    }
}

/// Every name a family of `kind` named `name` takes. In the text format 0.0.4: its sample names
/// (`x`, and `x_bucket`, `x_sum`, `x_count` for a histogram). In OpenMetrics 1.0: its family
/// name, which drops a counter's `_total` (a counter `x_total` is the family `x`) and an info's
/// `_info`, and the sample names the family may produce (`_created` included, which
/// OpenMetrics makes optional). Two families may not share a name of the same kind: OpenMetrics
/// requires unique family names and forbids a family name that could produce another family's
/// sample name (a gauge `x_created` beside a counter `x`), and a parser that groups samples by
/// family (the Python client's, for one) rejects an exposition with a gauge `x` and a counter
/// `x_total`, which both are family `x`.
fn claims(name: &str, kind: MetricKind) -> Vec<Claim> {
    let mut claims: Vec<Claim> = kind
        .sample_suffixes()
        .iter()
        .map(|suffix| Claim::TextSample(format!("{name}{suffix}")))
        .collect();
    let (family, samples): (&str, &[&str]) = match kind {
        MetricKind::Counter => (
            openmetrics::family_name(kind, name),
            &["_total", "_created"],
        ),
        MetricKind::Gauge => (name, &[""]),
        MetricKind::Histogram => (name, &["_bucket", "_count", "_sum", "_created"]),
        MetricKind::Summary => (name, &["", "_count", "_sum", "_created"]),
        MetricKind::Info => (openmetrics::family_name(kind, name), &["_info"]),
    };
    claims.push(Claim::OpenMetricsFamily(family.to_string()));
    claims.extend(
        samples
            .iter()
            .map(|suffix| Claim::OpenMetricsSample(format!("{family}{suffix}"))),
    );
    claims
}

/// The type of a metric family.
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
    pub fn type_keyword(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge | MetricKind::Info => "gauge",
            MetricKind::Histogram => "histogram",
            MetricKind::Summary => "summary",
        }
    }

    /// The suffixes of the sample names a family of this kind produces.
    pub fn sample_suffixes(self) -> &'static [&'static str] {
        match self {
            MetricKind::Counter | MetricKind::Gauge | MetricKind::Info => &[""],
            MetricKind::Histogram => &["", "_bucket", "_sum", "_count"],
            MetricKind::Summary => &["", "_sum", "_count"],
        }
    }

    /// A label name the kind reserves for itself.
    pub fn reserved_label(self) -> Option<&'static str> {
        match self {
            MetricKind::Histogram => Some("le"),
            MetricKind::Summary => Some("quantile"),
            _ => None,
        }
    }
}

/// A family's identity: name, help and label names.
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

mod sealed {
    /// Writes one series' samples, in each exposition format. Sealed: only this crate's metric
    /// types are families.
    pub trait EncodeSeries {
        /// Text format 0.0.4: `name` is the registered name, `labels` the rendered label pairs.
        #[doc(hidden)]
        fn encode_series(
            &self,
            name: &str,
            labels: &str,
            out: &mut String,
            scratch: &mut super::Scratch,
        );

        /// OpenMetrics 1.0 text (`exposition::openmetrics`): `head` carries the OpenMetrics
        /// family name, the rendered label pairs and the `_created` time when it is on.
        #[doc(hidden)]
        fn encode_series_openmetrics(
            &self,
            head: &crate::exposition::openmetrics::SeriesHead<'_>,
            out: &mut String,
            scratch: &mut super::Scratch,
        );
    }
}

/// Reusable buffers of a scrape.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct Scratch {
    counts: Vec<u64>,
    /// A `quantile` label value being formatted.
    label: String,
    now: Option<Instant>,
}

/// A metric type that can form a [`Family`]: [`Counter`], [`Gauge`], [`Histogram`],
/// [`Summary`] or [`Info`].
pub trait Metric: Clone + Send + Sync + 'static + sealed::EncodeSeries {
    /// What every series of a family shares ([`Buckets`], [`SummaryConfig`] or `()`).
    type Config: Clone + PartialEq + Debug + Send + Sync + 'static;
    /// The family type.
    const KIND: MetricKind;
    /// Creates one series' metric.
    fn create(config: &Self::Config) -> Result<Self, Error>;
    /// Checks a configuration before a family is registered with it, so that an invalid one is
    /// refused at registration rather than at every later lookup.
    fn validate(config: &Self::Config) -> Result<(), Error> {
        let _ = config;
        Ok(())
    }
    /// Creates one series of one of the crate's own families (the registry's overflow counters),
    /// which must not fail when metrics have exhausted the slot arena.
    #[doc(hidden)]
    fn create_internal(config: &Self::Config) -> Result<Self, Error> {
        Self::create(config)
    }
    /// Words of the slot arena one series takes (0 for metrics that keep their value elsewhere).
    #[doc(hidden)]
    fn arena_words(config: &Self::Config) -> usize {
        let _ = config;
        0
    }
}

impl Metric for Counter {
    type Config = ();
    const KIND: MetricKind = MetricKind::Counter;
    fn create(_: &()) -> Result<Self, Error> {
        Counter::new()
    }
    fn create_internal(_: &()) -> Result<Self, Error> {
        Ok(Counter::new_internal())
    }
    fn arena_words(_: &()) -> usize {
        2
    }
}

impl sealed::EncodeSeries for Counter {
    fn encode_series(&self, name: &str, labels: &str, out: &mut String, _: &mut Scratch) {
        sample_start(out, name, "", labels, None);
        let (int, frac) = self.parts();
        if frac == 0.0 {
            value_u64(out, int);
        } else {
            value_f64(out, int as f64 + frac);
        }
    }

    fn encode_series_openmetrics(&self, head: &SeriesHead<'_>, out: &mut String, _: &mut Scratch) {
        let (int, frac) = self.parts();
        openmetrics::counter(out, head, int, frac);
    }
}

impl Metric for Gauge {
    type Config = ();
    const KIND: MetricKind = MetricKind::Gauge;
    fn create(_: &()) -> Result<Self, Error> {
        Ok(Gauge::new())
    }
}

impl sealed::EncodeSeries for Gauge {
    fn encode_series(&self, name: &str, labels: &str, out: &mut String, _: &mut Scratch) {
        sample_start(out, name, "", labels, None);
        value_f64(out, self.get());
    }

    fn encode_series_openmetrics(&self, head: &SeriesHead<'_>, out: &mut String, _: &mut Scratch) {
        openmetrics::gauge(out, head, self.get());
    }
}

impl Metric for Info {
    type Config = ();
    const KIND: MetricKind = MetricKind::Info;
    fn create(_: &()) -> Result<Self, Error> {
        Ok(Info)
    }
}

impl sealed::EncodeSeries for Info {
    fn encode_series(&self, name: &str, labels: &str, out: &mut String, _: &mut Scratch) {
        sample_start(out, name, "", labels, None);
        value_u64(out, 1);
    }

    fn encode_series_openmetrics(&self, head: &SeriesHead<'_>, out: &mut String, _: &mut Scratch) {
        openmetrics::info(out, head);
    }
}

impl Metric for Histogram {
    type Config = Buckets;
    const KIND: MetricKind = MetricKind::Histogram;
    fn create(buckets: &Buckets) -> Result<Self, Error> {
        Histogram::new(buckets.clone())
    }
    fn arena_words(buckets: &Buckets) -> usize {
        buckets.bounds().len() + 2
    }
}

impl sealed::EncodeSeries for Histogram {
    fn encode_series(&self, name: &str, labels: &str, out: &mut String, scratch: &mut Scratch) {
        let sum = self.read_into(&mut scratch.counts);
        let les = self.buckets().le_labels();
        let mut cumulative = 0u64;
        for (i, &count) in scratch.counts.iter().enumerate() {
            cumulative = cumulative.wrapping_add(count);
            let le = les.get(i).map_or("+Inf", |s| s);
            sample_start(out, name, "_bucket", labels, Some(("le", le)));
            value_u64(out, cumulative);
        }
        sample_start(out, name, "_sum", labels, None);
        value_f64(out, sum);
        // `_count` is the `+Inf` bucket by construction: both come from the same reading.
        sample_start(out, name, "_count", labels, None);
        value_u64(out, cumulative);
    }

    fn encode_series_openmetrics(
        &self,
        head: &SeriesHead<'_>,
        out: &mut String,
        scratch: &mut Scratch,
    ) {
        let sum = self.read_into(&mut scratch.counts);
        let buckets = self.buckets();
        let negative_bounds = buckets.bounds().first().is_some_and(|&b| b < 0.0);
        openmetrics::histogram(
            out,
            head,
            buckets.le_labels_openmetrics(),
            negative_bounds,
            &scratch.counts,
            sum,
        );
    }
}

impl Metric for Summary {
    type Config = SummaryConfig;
    const KIND: MetricKind = MetricKind::Summary;
    fn create(config: &SummaryConfig) -> Result<Self, Error> {
        Summary::new(config.clone())
    }
    fn validate(config: &SummaryConfig) -> Result<(), Error> {
        config.validate()
    }
    fn arena_words(config: &SummaryConfig) -> usize {
        config.arena_words()
    }
}

impl sealed::EncodeSeries for Summary {
    fn encode_series(&self, name: &str, labels: &str, out: &mut String, scratch: &mut Scratch) {
        let now = *scratch.now.get_or_insert_with(Instant::now);
        let q_label = &mut scratch.label;
        let (count, sum) = self.read_with(now, |q, v| {
            q_label.clear();
            format_go_float(q_label, q);
            sample_start(out, name, "", labels, Some(("quantile", q_label)));
            value_f64(out, v);
        });
        sample_start(out, name, "_sum", labels, None);
        value_f64(out, sum);
        sample_start(out, name, "_count", labels, None);
        value_u64(out, count);
    }

    fn encode_series_openmetrics(
        &self,
        head: &SeriesHead<'_>,
        out: &mut String,
        scratch: &mut Scratch,
    ) {
        let now = *scratch.now.get_or_insert_with(Instant::now);
        let label = &mut scratch.label;
        let (count, sum) = self.read_with(now, |q, v| {
            openmetrics::summary_quantile(out, head, label, q, v);
        });
        openmetrics::summary_end(out, head, count, sum);
    }
}

/// Type-erased family, as the registry stores it.
trait RegisteredFamily: Send + Sync {
    fn desc(&self) -> &Descriptor;
    /// Text format 0.0.4: header and every series.
    fn encode(&self, out: &mut String, scratch: &mut Scratch);
    /// OpenMetrics 1.0 text: header and every series (no `# EOF`: the registry ends the set).
    fn encode_openmetrics(
        &self,
        out: &mut String,
        scratch: &mut Scratch,
        options: &OpenMetricsEncoder,
    );
    fn as_any(&self) -> &dyn Any;
}

/// `# HELP` and `# TYPE` of a family.
fn write_header(out: &mut String, desc: &Descriptor) {
    out.push_str("# HELP ");
    out.push_str(&desc.name);
    out.push(' ');
    escape_help(out, &desc.help);
    out.push_str("\n# TYPE ");
    out.push_str(&desc.name);
    out.push(' ');
    out.push_str(desc.kind.type_keyword());
    out.push('\n');
}

/// A metric without labels whose value a function returns at scrape time (client_golang's
/// `GaugeFunc` / `CounterFunc`): for values another part of the program already keeps.
struct FnFamily {
    desc: Descriptor,
    read: Box<dyn Fn() -> f64 + Send + Sync>,
    /// When it was registered (its OpenMetrics `_created` time), microseconds since the epoch.
    created_micros: u64,
}

impl RegisteredFamily for FnFamily {
    fn desc(&self) -> &Descriptor {
        &self.desc
    }

    fn encode(&self, out: &mut String, _: &mut Scratch) {
        write_header(out, &self.desc);
        sample_start(out, &self.desc.name, "", "", None);
        value_f64(out, (self.read)());
    }

    fn encode_openmetrics(&self, out: &mut String, _: &mut Scratch, options: &OpenMetricsEncoder) {
        let family = openmetrics::write_header(out, &self.desc);
        let head = SeriesHead {
            family,
            labels: "",
            created_micros: options.created().then_some(self.created_micros),
        };
        let value = (self.read)();
        match self.desc.kind {
            MetricKind::Counter => openmetrics::counter_value(out, &head, value),
            _ => openmetrics::gauge(out, &head, value),
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl<M: Metric> RegisteredFamily for Family<M> {
    fn desc(&self) -> &Descriptor {
        self.descriptor()
    }

    fn encode(&self, out: &mut String, scratch: &mut Scratch) {
        if self.is_empty() {
            return;
        }
        let desc = self.descriptor();
        write_header(out, desc);
        self.for_each_series(|series| {
            series
                .metric()
                .encode_series(&desc.name, series.rendered_labels(), out, scratch)
        });
    }

    fn encode_openmetrics(
        &self,
        out: &mut String,
        scratch: &mut Scratch,
        options: &OpenMetricsEncoder,
    ) {
        if self.is_empty() {
            return;
        }
        let family = openmetrics::write_header(out, self.descriptor());
        let created = options.created();
        self.for_each_series(|series| {
            let head = SeriesHead {
                family,
                labels: series.rendered_labels(),
                created_micros: created.then(|| series.created_micros()),
            };
            series
                .metric()
                .encode_series_openmetrics(&head, out, scratch)
        });
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The default cardinality cap of a summary family: a summary series takes 4 096 words of the slot
/// arena (32 KiB of address space per block, resident only for the buckets its values touch; see
/// [`primitives::summary`](crate::primitives::summary)), so its families are capped lower than the
/// others' [`DEFAULT_MAX_SERIES`]; it is also the most one family's [`ARENA_SHARE`] holds.
pub const DEFAULT_MAX_SUMMARY_SERIES: usize = 1_024;

/// Options for registering a family beyond name, help and labels.
#[derive(Debug, Clone)]
pub struct FamilyOptions {
    /// The cardinality cap (default [`DEFAULT_MAX_SERIES`]).
    pub max_series: usize,
}

impl Default for FamilyOptions {
    fn default() -> Self {
        FamilyOptions {
            max_series: DEFAULT_MAX_SERIES,
        }
    }
}

/// A set of metric families and their Prometheus text exposition. Cheap to clone (shared).
///
/// ```
/// use agentcore_telemetry::{Buckets, Registry};
///
/// let registry = Registry::new();
/// let latency = registry
///     .histogram_family("request_seconds", "Latency.", &["endpoint"], Buckets::new(vec![0.1, 1.0]).unwrap())
///     .unwrap();
/// latency.with_label_values(&["/api"]).unwrap().observe(0.25);
/// let expected = [
///     "# HELP request_seconds Latency.",
///     "# TYPE request_seconds histogram",
///     r#"request_seconds_bucket{endpoint="/api",le="0.1"} 0"#,
///     r#"request_seconds_bucket{endpoint="/api",le="1"} 1"#,
///     r#"request_seconds_bucket{endpoint="/api",le="+Inf"} 1"#,
///     r#"request_seconds_sum{endpoint="/api"} 0.25"#,
///     r#"request_seconds_count{endpoint="/api"} 1"#,
/// ];
/// assert_eq!(registry.encode_text(), expected.join("\n") + "\n");
/// ```
#[derive(Clone)]
pub struct Registry {
    inner: Arc<RegistryInner>,
}

struct RegistryInner {
    families: ArcSwap<Vec<Arc<dyn RegisteredFamily>>>,
    writer: Mutex<()>,
    overflow: Family<Counter>,
    scratch: Mutex<Scratch>,
    last_size: AtomicUsize,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    /// An empty registry (it holds only its own overflow counter family, exposed once a family
    /// overflows).
    pub fn new() -> Registry {
        let overflow = Family::new_internal(
            Arc::new(Descriptor {
                name: OVERFLOW_METRIC.into(),
                help: "Label sets folded into a family's overflow series because the family reached its cardinality cap.".into(),
                label_names: vec![Box::from("family")].into_boxed_slice(),
                kind: MetricKind::Counter,
            }),
            (),
            DEFAULT_MAX_SERIES,
        );
        let families: Vec<Arc<dyn RegisteredFamily>> = vec![Arc::new(overflow.clone())];
        Registry {
            inner: Arc::new(RegistryInner {
                families: ArcSwap::from_pointee(families),
                writer: Mutex::new(()),
                overflow,
                scratch: Mutex::new(Scratch::default()),
                last_size: AtomicUsize::new(0),
            }),
        }
    }

    /// Registers a family of any metric type. Errors name the problem: an invalid metric or
    /// label name, a duplicate label name, a label name the type reserves (`le`, `quantile`), or
    /// a name already taken in either exposition format ([`Error::DuplicateMetric`] with the
    /// shared name): a sample name (a histogram `x` takes `x_count`), or an OpenMetrics family
    /// or sample name (a counter `x_total` is the OpenMetrics family `x`, so it clashes with a
    /// gauge `x`; a counter `x` may write `x_created`, so it clashes with a gauge `x_created`).
    ///
    /// ```
    /// use agentcore_telemetry::{Error, Registry};
    ///
    /// let registry = Registry::new();
    /// registry.gauge_family("jobs", "Jobs queued.", &[]).unwrap();
    /// assert_eq!(
    ///     registry.counter_family("jobs_total", "Jobs done.", &[]).unwrap_err(),
    ///     Error::DuplicateMetric { name: "jobs".into() }
    /// );
    /// ```
    pub fn register<M: Metric>(
        &self,
        name: &str,
        help: &str,
        label_names: &[&str],
        config: M::Config,
        options: FamilyOptions,
    ) -> Result<Family<M>, Error> {
        let desc = Self::descriptor::<M>(name, help, label_names)?;
        M::validate(&config)?;
        self.insert_family(name, M::KIND, || {
            let family = Family::<M>::new(
                Arc::new(desc),
                config,
                options.max_series,
                Some(self.inner.overflow.clone()),
            );
            (Arc::new(family.clone()), family)
        })
    }

    /// Under the writer mutex: refuses a name whose samples clash with a registered family's,
    /// otherwise builds the family and publishes the list with it, sorted by name.
    fn insert_family<T>(
        &self,
        name: &str,
        kind: MetricKind,
        build: impl FnOnce() -> (Arc<dyn RegisteredFamily>, T),
    ) -> Result<T, Error> {
        let _writer = self.inner.writer.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.inner.families.load_full();
        if let Some(clash) = Self::clash(&current, name, kind) {
            return Err(Error::DuplicateMetric { name: clash });
        }
        let (registered, handle) = build();
        let mut next = (*current).clone();
        let at = next.partition_point(|f| *f.desc().name < *name);
        next.insert(at, registered);
        self.inner.families.store(Arc::new(next));
        Ok(handle)
    }

    /// Registers a gauge without labels whose value `read` returns at each scrape (for a value
    /// kept elsewhere: a queue's length, a pool's size). `read` runs on the scraping thread; keep
    /// it fast and non-blocking.
    ///
    /// ```
    /// use agentcore_telemetry::Registry;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let registry = Registry::new();
    /// let queue = Arc::new(AtomicUsize::new(3));
    /// let q = queue.clone();
    /// registry
    ///     .gauge_fn("queue_depth", "Jobs waiting.", move || q.load(Ordering::Relaxed) as f64)
    ///     .unwrap();
    /// assert!(registry.encode_text().contains("queue_depth 3\n"));
    /// queue.store(5, Ordering::Relaxed);
    /// assert!(registry.encode_text().contains("queue_depth 5\n"));
    /// ```
    pub fn gauge_fn(
        &self,
        name: &str,
        help: &str,
        read: impl Fn() -> f64 + Send + Sync + 'static,
    ) -> Result<(), Error> {
        self.register_fn::<Gauge>(name, help, Box::new(read))
    }

    /// Registers a counter without labels whose value `read` returns at each scrape (it must
    /// never decrease, like any counter). See [`Registry::gauge_fn`].
    ///
    /// ```
    /// use agentcore_telemetry::Registry;
    ///
    /// let registry = Registry::new();
    /// registry.counter_fn("boots_total", "Boots.", || 1.0).unwrap();
    /// assert!(registry.encode_text().contains("# TYPE boots_total counter\nboots_total 1\n"));
    /// ```
    pub fn counter_fn(
        &self,
        name: &str,
        help: &str,
        read: impl Fn() -> f64 + Send + Sync + 'static,
    ) -> Result<(), Error> {
        self.register_fn::<Counter>(name, help, Box::new(read))
    }

    fn register_fn<M: Metric>(
        &self,
        name: &str,
        help: &str,
        read: Box<dyn Fn() -> f64 + Send + Sync>,
    ) -> Result<(), Error> {
        let desc = Self::descriptor::<M>(name, help, &[])?;
        self.insert_family(name, M::KIND, || {
            (
                Arc::new(FnFamily {
                    desc,
                    read,
                    created_micros: family::unix_micros_now(),
                }) as Arc<dyn RegisteredFamily>,
                (),
            )
        })
    }

    /// The family named `name` if it exists with exactly this type, label names and
    /// configuration; registers it if the name is free; errors with [`Error::ShapeMismatch`]
    /// if it exists with another shape.
    pub fn get_or_register<M: Metric>(
        &self,
        name: &str,
        help: &str,
        label_names: &[&str],
        config: M::Config,
        options: FamilyOptions,
    ) -> Result<Family<M>, Error> {
        if let Some(existing) = self.find(name) {
            let desc = existing.desc();
            let mismatch = |detail: String| Error::ShapeMismatch {
                name: name.into(),
                detail,
            };
            if desc.kind != M::KIND {
                return Err(mismatch(format!(
                    "registered as {:?}, requested as {:?}",
                    desc.kind,
                    M::KIND
                )));
            }
            if desc
                .label_names
                .iter()
                .map(|l| &**l)
                .ne(label_names.iter().copied())
            {
                return Err(mismatch(format!(
                    "registered with labels {:?}, requested with {:?}",
                    desc.label_names, label_names
                )));
            }
            let family = existing
                .as_any()
                .downcast_ref::<Family<M>>()
                .ok_or_else(|| mismatch("another metric type".into()))?;
            if family.config() != &config {
                return Err(mismatch(format!(
                    "registered with {:?}, requested with {:?}",
                    family.config(),
                    config
                )));
            }
            return Ok(family.clone());
        }
        match self.register(name, help, label_names, config.clone(), options.clone()) {
            // Lost a race with another registration of the same name: resolve against it.
            Err(Error::DuplicateMetric { .. }) if self.find(name).is_some() => {
                self.get_or_register(name, help, label_names, config, options)
            }
            other => other,
        }
    }

    fn find(&self, name: &str) -> Option<Arc<dyn RegisteredFamily>> {
        let families = self.inner.families.load();
        let at = families.partition_point(|f| *f.desc().name < *name);
        families
            .get(at)
            .filter(|f| &*f.desc().name == name)
            .cloned()
    }

    fn descriptor<M: Metric>(
        name: &str,
        help: &str,
        label_names: &[&str],
    ) -> Result<Descriptor, Error> {
        name::validate_metric_name(name)?;
        for (i, label) in label_names.iter().enumerate() {
            name::validate_label_name(label)?;
            if Some(*label) == M::KIND.reserved_label() {
                return Err(Error::InvalidLabelName {
                    name: (*label).into(),
                    reason:
                        "reserved by the metric type (le for histograms, quantile for summaries)",
                });
            }
            if label_names[..i].contains(label) {
                return Err(Error::DuplicateLabelName {
                    name: (*label).into(),
                });
            }
        }
        Ok(Descriptor {
            name: name.into(),
            help: help.into(),
            label_names: label_names.iter().map(|l| Box::from(*l)).collect(),
            kind: M::KIND,
        })
    }

    /// The first name the new family would share with a registered one, in either format it can
    /// be exposed in (see [`claims`]).
    fn clash(
        families: &[Arc<dyn RegisteredFamily>],
        name: &str,
        kind: MetricKind,
    ) -> Option<String> {
        let new = claims(name, kind);
        families.iter().find_map(|family| {
            let desc = family.desc();
            let old = claims(&desc.name, desc.kind);
            new.iter()
                .find(|claim| old.contains(claim))
                .map(|claim| claim.name().to_string())
        })
    }

    /// Registers a counter family.
    pub fn counter_family(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> Result<Family<Counter>, Error> {
        self.register(name, help, labels, (), FamilyOptions::default())
    }

    /// Registers a gauge family.
    pub fn gauge_family(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> Result<Family<Gauge>, Error> {
        self.register(name, help, labels, (), FamilyOptions::default())
    }

    /// Registers a histogram family.
    pub fn histogram_family(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
        buckets: Buckets,
    ) -> Result<Family<Histogram>, Error> {
        self.register(name, help, labels, buckets, FamilyOptions::default())
    }

    /// Registers a summary family (capped at [`DEFAULT_MAX_SUMMARY_SERIES`] series; use
    /// [`Registry::register`] for another cap).
    pub fn summary_family(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
        config: SummaryConfig,
    ) -> Result<Family<Summary>, Error> {
        config.validate()?;
        self.register(
            name,
            help,
            labels,
            config,
            FamilyOptions {
                max_series: DEFAULT_MAX_SUMMARY_SERIES,
            },
        )
    }

    /// Registers an info family.
    pub fn info_family(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> Result<Family<Info>, Error> {
        self.register(name, help, labels, (), FamilyOptions::default())
    }

    /// Registers an unlabelled counter and returns its handle.
    pub fn counter(&self, name: &str, help: &str) -> Result<Counter, Error> {
        self.counter_family(name, help, &[])?
            .get_or_create::<&str>(&[])
    }

    /// Registers an unlabelled gauge and returns its handle.
    pub fn gauge(&self, name: &str, help: &str) -> Result<Gauge, Error> {
        self.gauge_family(name, help, &[])?
            .get_or_create::<&str>(&[])
    }

    /// Registers an unlabelled histogram and returns its handle.
    pub fn histogram(&self, name: &str, help: &str, buckets: Buckets) -> Result<Histogram, Error> {
        self.histogram_family(name, help, &[], buckets)?
            .get_or_create::<&str>(&[])
    }

    /// The registry's own `agentcore_telemetry_series_overflow_total{family}` counter family
    /// (read by structured snapshots, which cannot reach it through the type-erased list).
    pub(crate) fn overflow_family(&self) -> &Family<Counter> {
        &self.inner.overflow
    }

    /// The names of the registered families, sorted.
    pub fn family_names(&self) -> Vec<String> {
        self.inner
            .families
            .load()
            .iter()
            .map(|f| f.desc().name.to_string())
            .collect()
    }

    /// Appends the text exposition (format 0.0.4, [`CONTENT_TYPE`](crate::CONTENT_TYPE)) of every
    /// family to `out`. With a reused buffer a steady-state scrape allocates O(1) (nothing per
    /// series). Families without series are skipped.
    pub fn encode_text_into(&self, out: &mut String) {
        self.scrape(|family, scratch| family.encode(out, scratch));
    }

    /// Appends the OpenMetrics 1.0 text exposition
    /// ([`OPENMETRICS_CONTENT_TYPE`](crate::exposition::OPENMETRICS_CONTENT_TYPE)) of every
    /// family to `out`, ending with `# EOF`, without `_created` samples (see
    /// [`OpenMetricsEncoder`] for them and for the rules it follows). The same families and
    /// series as [`Registry::encode_text_into`], allocation-free per series with a reused buffer.
    ///
    /// ```
    /// use agentcore_telemetry::{Buckets, Registry};
    ///
    /// let registry = Registry::new();
    /// let latency = registry
    ///     .histogram_family("request_seconds", "Latency.", &["endpoint"], Buckets::new(vec![0.1, 1.0]).unwrap())
    ///     .unwrap();
    /// latency.with_label_values(&["/api"]).unwrap().observe(0.25);
    /// registry.counter("requests_total", "Requests.").unwrap().inc();
    /// let expected = [
    ///     "# TYPE request_seconds histogram",
    ///     "# UNIT request_seconds seconds",
    ///     "# HELP request_seconds Latency.",
    ///     r#"request_seconds_bucket{endpoint="/api",le="0.1"} 0"#,
    ///     r#"request_seconds_bucket{endpoint="/api",le="1.0"} 1"#,
    ///     r#"request_seconds_bucket{endpoint="/api",le="+Inf"} 1"#,
    ///     r#"request_seconds_count{endpoint="/api"} 1"#,
    ///     r#"request_seconds_sum{endpoint="/api"} 0.25"#,
    ///     "# TYPE requests counter",
    ///     "# HELP requests Requests.",
    ///     "requests_total 1",
    ///     "# EOF",
    /// ];
    /// let mut out = String::new();
    /// registry.encode_openmetrics_into(&mut out);
    /// assert_eq!(out, expected.join("\n") + "\n");
    /// ```
    pub fn encode_openmetrics_into(&self, out: &mut String) {
        self.encode_openmetrics_with(&OpenMetricsEncoder::new(), out);
    }

    /// The OpenMetrics 1.0 text exposition as a new `String` (pre-sized from the previous
    /// scrape); see [`Registry::encode_openmetrics_into`].
    pub fn encode_openmetrics(&self) -> String {
        let mut out = String::with_capacity(self.inner.last_size.load(Relaxed) + 1024);
        self.encode_openmetrics_into(&mut out);
        self.inner.last_size.store(out.len(), Relaxed);
        out
    }

    pub(crate) fn encode_openmetrics_with(&self, options: &OpenMetricsEncoder, out: &mut String) {
        self.scrape(|family, scratch| family.encode_openmetrics(out, scratch, options));
        openmetrics::write_eof(out);
    }

    /// Runs `encode` on every family, in name order, with the scrape's scratch buffers.
    fn scrape(&self, mut encode: impl FnMut(&dyn RegisteredFamily, &mut Scratch)) {
        let families = self.inner.families.load();
        // Scrape-only lock: serialises concurrent scrapes' use of the scratch buffers; no
        // recorder or registration ever takes it.
        let mut scratch = self.inner.scratch.lock().unwrap_or_else(|e| e.into_inner());
        scratch.now = None;
        for family in families.iter() {
            encode(&**family, &mut scratch);
        }
        drop(scratch);
        // Series and tables retired since the last scrape are freed now rather than when the
        // next batch of them fills (a no-op when nothing waits).
        crate::sync::era::Domain::global().reclaim();
    }

    /// The text exposition as a new `String` (pre-sized from the previous scrape).
    pub fn encode_text(&self) -> String {
        let mut out = String::with_capacity(self.inner.last_size.load(Relaxed) + 1024);
        self.encode_text_into(&mut out);
        self.inner.last_size.store(out.len(), Relaxed);
        out
    }
}

impl Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("families", &self.family_names())
            .finish()
    }
}
