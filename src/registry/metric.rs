//! The [`Metric`] trait (what makes a type a [`Family`](super::Family) member: its kind, its
//! configuration, how a series is created) and, sealed, how each metric type writes one series
//! in each exposition format.

use std::fmt::Debug;
use std::time::Instant;

use crate::exposition::float::{counter_total, format_go_float};
use crate::exposition::openmetrics::{self, SeriesHead};
use crate::exposition::prometheus_text::{sample_start, value_f64, value_u64};
use crate::exposition::MetricKind;
use crate::primitives::{
    Buckets, Counter, Exemplars, Gauge, Histogram, Info, Summary, SummaryConfig,
};
use crate::Error;

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
    pub(super) counts: Vec<u64>,
    /// A `quantile` label value being formatted.
    pub(super) label: String,
    pub(super) now: Option<Instant>,
    /// This scrape's one reading of `/proc/self/stat`, shared by the four process metrics
    /// that come from it (`None` until the first of them reads it; `Some(None)`: unreadable).
    #[cfg(target_os = "linux")]
    pub(super) process_stat: Option<Option<super::proc_stat::Stat>>,
}

impl Scratch {
    /// Forgets what the previous scrape read: a scrape reads the clock and `/proc/self/stat`
    /// at most once, and never reuses another scrape's reading.
    pub(super) fn begin_scrape(&mut self) {
        self.now = None;
        #[cfg(target_os = "linux")]
        {
            self.process_stat = None;
        }
    }
}

/// A metric type that can form a [`Family`](super::Family): [`Counter`], [`Gauge`], [`Histogram`],
/// [`Summary`] or [`Info`].
///
/// ```
/// use agentcore_telemetry::registry::Metric;
/// use agentcore_telemetry::{Buckets, Family, Registry};
///
/// // Generic over every metric type a family can hold.
/// fn describe<M: Metric>(family: &Family<M>) -> String {
///     format!("{} ({:?})", family.name(), M::KIND)
/// }
/// let registry = Registry::new();
/// let latency = registry.histogram_family("latency_seconds", "Latency.", &[], Buckets::default()).unwrap();
/// assert_eq!(describe(&latency), "latency_seconds (Histogram)");
/// ```
pub trait Metric: Clone + Send + Sync + 'static + sealed::EncodeSeries {
    /// What every series of a family shares ([`Buckets`], [`SummaryConfig`] or `()`).
    type Config: Clone + PartialEq + Debug + Send + Sync + 'static;
    /// The family type.
    const KIND: MetricKind;
    /// Creates one series' metric.
    ///
    /// ```
    /// use agentcore_telemetry::registry::Metric;
    /// use agentcore_telemetry::{Buckets, Histogram};
    ///
    /// let h = Histogram::create(&Buckets::new(vec![1.0]).unwrap()).unwrap();
    /// h.observe(0.5);
    /// assert_eq!(h.snapshot().cumulative, vec![1, 1]);
    /// ```
    fn create(config: &Self::Config) -> Result<Self, Error>;
    /// Checks a configuration before a family is registered with it, so that an invalid one is
    /// refused at registration rather than at every later lookup.
    ///
    /// ```
    /// use agentcore_telemetry::registry::Metric;
    /// use agentcore_telemetry::{Summary, SummaryConfig};
    /// use std::time::Duration;
    ///
    /// assert!(Summary::validate(&SummaryConfig::default()).is_ok());
    /// let bad = SummaryConfig { quantiles: vec![2.0], max_age: Duration::from_secs(60), age_buckets: 5 };
    /// assert!(Summary::validate(&bad).is_err());
    /// ```
    fn validate(config: &Self::Config) -> Result<(), Error> {
        let _ = config;
        Ok(())
    }
    /// Creates one series keeping exemplars as `exemplars` says (counters and histograms; the
    /// other types have no exemplars in OpenMetrics and ignore it).
    #[doc(hidden)]
    fn create_with_exemplars(config: &Self::Config, exemplars: Exemplars) -> Result<Self, Error> {
        let _ = exemplars;
        Self::create(config)
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
    /// Whether this handle was made with `config` (a histogram's buckets, a summary's
    /// settings): what [`Family::insert_metric`](crate::Family::insert_metric) checks before
    /// adopting it into a family, whose configuration every series shares.
    #[doc(hidden)]
    fn has_config(&self, config: &Self::Config) -> bool {
        let _ = config;
        true
    }
    /// When this handle's values started from zero, in microseconds since the Unix epoch (its
    /// series' OpenMetrics `_created`): when a counter, histogram or summary was made, which a
    /// handle adopted by [`Family::insert_metric`](crate::Family::insert_metric) brings along.
    /// `None` for the types without `_created` (gauges, info), and for a counter whose total
    /// counts from elsewhere (set by the `metrics` bridge's `absolute`): then no scrape writes
    /// its `_created`.
    #[doc(hidden)]
    fn created_micros(&self) -> Option<u64> {
        None
    }
}

impl Metric for Counter {
    type Config = ();
    const KIND: MetricKind = MetricKind::Counter;
    fn create(_: &()) -> Result<Self, Error> {
        Counter::new()
    }
    fn create_with_exemplars(_: &(), exemplars: Exemplars) -> Result<Self, Error> {
        Counter::with_exemplars(exemplars)
    }
    fn create_internal(_: &()) -> Result<Self, Error> {
        Ok(Counter::new_internal())
    }
    fn arena_words(_: &()) -> usize {
        2
    }
    fn created_micros(&self) -> Option<u64> {
        Counter::created_micros(self)
    }
}

impl sealed::EncodeSeries for Counter {
    fn encode_series(&self, name: &str, labels: &str, out: &mut String, _: &mut Scratch) {
        sample_start(out, name, "", labels, None);
        let (int, frac) = self.parts();
        if frac == 0.0 {
            value_u64(out, int);
        } else {
            value_f64(out, counter_total(int, frac));
        }
    }

    fn encode_series_openmetrics(&self, head: &SeriesHead<'_>, out: &mut String, _: &mut Scratch) {
        let (int, frac) = self.parts();
        openmetrics::counter(out, head, int, frac, self.exemplar());
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
    fn create_with_exemplars(buckets: &Buckets, exemplars: Exemplars) -> Result<Self, Error> {
        Histogram::with_exemplars(buckets.clone(), exemplars)
    }
    fn has_config(&self, buckets: &Buckets) -> bool {
        self.buckets() == buckets
    }
    fn arena_words(buckets: &Buckets) -> usize {
        buckets.bounds().len() + 2
    }
    fn created_micros(&self) -> Option<u64> {
        Some(Histogram::created_micros(self))
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
        // No `_sum` with a negative bound, nor once a negative value was recorded.
        let negative_bounds = buckets.bounds().first().is_some_and(|&b| b < 0.0);
        let sum_exposed = !negative_bounds && self.openmetrics_sum_exposable(sum);
        openmetrics::histogram(
            out,
            head,
            buckets.le_labels_openmetrics(),
            sum_exposed,
            &scratch.counts,
            sum,
            |i| self.exemplar(i),
        );
    }
}

impl Metric for Summary {
    type Config = SummaryConfig;
    const KIND: MetricKind = MetricKind::Summary;
    fn create(config: &SummaryConfig) -> Result<Self, Error> {
        Summary::new(config.clone())
    }
    fn has_config(&self, config: &SummaryConfig) -> bool {
        self.config() == config
    }
    fn validate(config: &SummaryConfig) -> Result<(), Error> {
        config.validate()
    }
    fn arena_words(config: &SummaryConfig) -> usize {
        config.arena_words()
    }
    fn created_micros(&self) -> Option<u64> {
        Some(Summary::created_micros(self))
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
        let sum_exposed = self.openmetrics_sum_exposable(sum);
        openmetrics::summary_end(out, head, count, sum_exposed.then_some(sum));
    }
}
