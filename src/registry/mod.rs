//! The [`Registry`]: named metric families, validated, and their exposition.
//!
//! # Structure
//! The registry keeps its families in one copy-on-write list behind an [`ArcSwap`], sorted by
//! name. Registering a family (rare) takes a writer mutex, checks the name, the label names and
//! every sample name the family will produce against the families already there, and publishes a
//! new list. A scrape loads the current list without a lock and encodes one family at a time;
//! it never holds anything a recorder or a registration waits on (each family's scrape-side sort
//! cache is only ever locked by scrapes).
//!
//! # Layout
//! This file holds the [`Registry`] and its registration API; beside it: `family` (the
//! series of one family), `metric` (the [`Metric`] trait and how each metric type writes a
//! series), `claims` (the names a family takes in each format, checked at registration),
//! `scrape` (the type-erased families and the scrape loop that calls the encoders),
//! `process` and `self_metrics`. The registry sits above [`exposition`](crate::exposition):
//! it builds each family's [`Descriptor`] and calls the encoders; they never see a `Registry`.

mod claims;
// Misuse the type system refuses (compile_fail doc tests).
#[cfg(doctest)]
mod compile_fail;
pub mod family;
mod label_hash;
#[cfg(not(agentcore_loom))]
mod lookup_cache;
mod metric;
#[cfg(target_os = "linux")]
mod proc_stat;
pub mod process;
mod scrape;
pub mod self_metrics;
mod series;
mod series_ref;
mod table;

use std::fmt::Debug;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

/// Metric and label name validation; it lives in [`exposition::name`](crate::exposition::name)
/// (the formats' rules), and keeps this path.
pub use crate::exposition::name;
pub use crate::exposition::{Descriptor, MetricKind};
pub use family::{
    Family, LabelValues, Series, SeriesRef, ARENA_SHARE, DEFAULT_MAX_SERIES, OVERFLOW_LABEL_VALUE,
};

pub use metric::{Metric, Scratch};

use crate::primitives::{
    Buckets, Counter, Exemplars, Gauge, Histogram, Info, Summary, SummaryConfig,
};
use crate::Error;
use claims::{claims, Claimed};
use scrape::{FnFamily, RegisteredFamily};

/// The name of the registry's own metric counting label sets folded into overflow series.
pub const OVERFLOW_METRIC: &str = "agentcore_telemetry_series_overflow_total";

/// The default cardinality cap of a summary family: a summary series takes 4 096 words of the slot
/// arena (32 KiB of address space per block, resident only for the buckets its values touch; see
/// [`primitives::summary`](crate::primitives::summary)), so its families are capped lower than the
/// others' [`DEFAULT_MAX_SERIES`]; it is also the most one family's [`ARENA_SHARE`] holds.
pub const DEFAULT_MAX_SUMMARY_SERIES: usize = 1_024;

/// Options for registering a family beyond name, help and labels.
///
/// ```
/// use agentcore_telemetry::registry::FamilyOptions;
/// use agentcore_telemetry::{Gauge, Registry};
///
/// let registry = Registry::new();
/// let options = FamilyOptions { max_series: 500, ..FamilyOptions::default() };
/// let memory = registry.register::<Gauge>("agent_memory_bytes", "Memory.", &["agent"], (), options).unwrap();
/// assert_eq!(memory.max_series(), 500);
/// assert_eq!(FamilyOptions::default().exemplars, None); // the registry's default
/// // A cap of 0 is taken as 1 (the family still takes one series before its overflow series).
/// let none = FamilyOptions { max_series: 0, ..FamilyOptions::default() };
/// let one = registry.register::<Gauge>("agent_one", "One.", &["agent"], (), none).unwrap();
/// assert_eq!(one.max_series(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct FamilyOptions {
    /// The cardinality cap (default [`DEFAULT_MAX_SERIES`]): at least 1 (`0` is taken as 1),
    /// and at most what the family's share of the slot arena ([`ARENA_SHARE`]) holds of its
    /// kind of series. [`Family::max_series`] reports the cap in force.
    pub max_series: usize,
    /// Exemplars of the family's series (counters and histograms only); `None` (the default)
    /// takes the registry's ([`Registry::set_default_exemplars`], itself
    /// [`Exemplars::Off`] unless set).
    pub exemplars: Option<Exemplars>,
}

impl Default for FamilyOptions {
    fn default() -> Self {
        FamilyOptions {
            max_series: DEFAULT_MAX_SERIES,
            exemplars: None,
        }
    }
}

impl FamilyOptions {
    /// These options with `exemplars` for the family.
    ///
    /// ```
    /// use agentcore_telemetry::registry::FamilyOptions;
    /// use agentcore_telemetry::{Buckets, Exemplars, Histogram, Registry};
    ///
    /// let registry = Registry::new();
    /// let latency = registry
    ///     .register::<Histogram>("tool_seconds", "Tool latency.", &["tool"], Buckets::default(),
    ///         FamilyOptions::default().with_exemplars(Exemplars::TraceBased))
    ///     .unwrap();
    /// let h = latency.get_or_create(&["search"]).unwrap();
    /// assert_eq!(h.exemplars(), Exemplars::TraceBased);
    /// ```
    #[must_use]
    pub fn with_exemplars(mut self, exemplars: Exemplars) -> FamilyOptions {
        self.exemplars = Some(exemplars);
        self
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
    /// Held by every registration; guards the names the families take, which change only with
    /// `families`.
    writer: Mutex<Claimed>,
    overflow: Family<Counter>,
    scratch: Mutex<Scratch>,
    last_size: AtomicUsize,
    /// The exemplars of families registered without their own choice
    /// (`Exemplars as u8`, see [`Registry::set_default_exemplars`]).
    default_exemplars: AtomicU8,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

/// A family [`Registry::register_fns`] registers: its type, name, help and value function.
type FnSpec<'a> = (MetricKind, &'a str, &'a str, scrape::ScrapeFn);

impl Registry {
    /// An empty registry (it holds only its own overflow counter family, exposed once a family
    /// overflows).
    ///
    /// ```
    /// use agentcore_telemetry::Registry;
    ///
    /// let registry = Registry::new();
    /// assert_eq!(registry.encode_text(), ""); // nothing to expose yet
    /// registry.clone().counter("jobs_total", "Jobs.").unwrap().inc(); // clones share the families
    /// assert_eq!(registry.encode_text(), "# HELP jobs_total Jobs.\n# TYPE jobs_total counter\njobs_total 1\n");
    /// ```
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
        let mut claimed = Claimed::default();
        claimed.extend(claims(OVERFLOW_METRIC, MetricKind::Counter));
        Registry {
            inner: Arc::new(RegistryInner {
                families: ArcSwap::from_pointee(families),
                writer: Mutex::new(claimed),
                overflow,
                scratch: Mutex::new(Scratch::default()),
                last_size: AtomicUsize::new(0),
                default_exemplars: AtomicU8::new(Exemplars::Off as u8),
            }),
        }
    }

    /// Sets the exemplars of counter and histogram families registered from now on without an
    /// explicit [`FamilyOptions::exemplars`] (families registered before keep theirs).
    ///
    /// ```
    /// use agentcore_telemetry::{Exemplars, Registry};
    ///
    /// let registry = Registry::new();
    /// registry.set_default_exemplars(Exemplars::TraceBased);
    /// let c = registry.counter("jobs_total", "Jobs.").unwrap();
    /// assert_eq!(c.exemplars(), Exemplars::TraceBased);
    /// assert_eq!(registry.default_exemplars(), Exemplars::TraceBased);
    /// ```
    pub fn set_default_exemplars(&self, exemplars: Exemplars) {
        self.inner.default_exemplars.store(exemplars as u8, Relaxed);
    }

    /// The exemplars of families registered without their own choice.
    ///
    /// ```
    /// use agentcore_telemetry::{Exemplars, Registry};
    ///
    /// let registry = Registry::new();
    /// assert_eq!(registry.default_exemplars(), Exemplars::Off);
    /// registry.set_default_exemplars(Exemplars::Explicit);
    /// assert_eq!(registry.default_exemplars(), Exemplars::Explicit);
    /// ```
    pub fn default_exemplars(&self) -> Exemplars {
        match self.inner.default_exemplars.load(Relaxed) {
            x if x == Exemplars::TraceBased as u8 => Exemplars::TraceBased,
            x if x == Exemplars::Explicit as u8 => Exemplars::Explicit,
            _ => Exemplars::Off,
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
        let exemplars = options
            .exemplars
            .unwrap_or_else(|| self.default_exemplars());
        self.insert_family(name, M::KIND, || {
            let family = Family::<M>::new(
                Arc::new(desc),
                config,
                options.max_series,
                Some(self.inner.overflow.clone()),
                exemplars,
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
        let mut claimed = self.inner.writer.lock().unwrap_or_else(|e| e.into_inner());
        let new = claims(name, kind);
        if let Some(clash) = claimed.clash(&new) {
            return Err(Error::DuplicateMetric { name: clash });
        }
        let (registered, handle) = build();
        let current = self.inner.families.load_full();
        let mut next = (*current).clone();
        let at = next.partition_point(|f| *f.desc().name < *name);
        next.insert(at, registered);
        self.inner.families.store(Arc::new(next));
        claimed.extend(new);
        Ok(handle)
    }

    /// Registers a gauge without labels whose value `read` returns at each scrape (for a value
    /// kept elsewhere: a queue's length, a pool's size). `read` runs on the scraping thread; keep
    /// it fast and non-blocking, and do not scrape this registry from it: the scrape holds its
    /// scratch buffers while it calls `read`, so a scrape from inside waits for itself (and,
    /// given buffers of its own, would call `read` again without end).
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
        self.register_fn::<Gauge>(name, help, read)
    }

    /// Registers a counter without labels whose value `read` returns at each scrape (it must
    /// never decrease, like any counter). See [`Registry::gauge_fn`]. It has no OpenMetrics
    /// `_created` sample, even with [`OpenMetricsEncoder::with_created`]: its value is kept
    /// elsewhere, and the registry does not know when it was 0 (not when it was registered).
    ///
    /// [`OpenMetricsEncoder::with_created`]: crate::exposition::OpenMetricsEncoder::with_created
    ///
    /// ```
    /// use agentcore_telemetry::exposition::OpenMetricsEncoder;
    /// use agentcore_telemetry::Registry;
    ///
    /// let registry = Registry::new();
    /// registry.counter_fn("boots_total", "Boots.", || 1.0).unwrap();
    /// assert!(registry.encode_text().contains("# TYPE boots_total counter\nboots_total 1\n"));
    /// let om = OpenMetricsEncoder::new().with_created(true).encode(&registry);
    /// assert!(om.contains("boots_total 1.0\n") && !om.contains("boots_created"));
    /// ```
    pub fn counter_fn(
        &self,
        name: &str,
        help: &str,
        read: impl Fn() -> f64 + Send + Sync + 'static,
    ) -> Result<(), Error> {
        self.register_fn::<Counter>(name, help, read)
    }

    fn register_fn<M: Metric>(
        &self,
        name: &str,
        help: &str,
        read: impl Fn() -> f64 + Send + Sync + 'static,
    ) -> Result<(), Error> {
        let read: scrape::ScrapeFn = Box::new(move |_| read());
        self.register_fns(vec![(M::KIND, name, help, read)])
    }

    /// Registers families without labels whose values functions return at each scrape, all or
    /// none: each is validated first, then, under one hold of the writer mutex, checked against
    /// the registered families and the batch's earlier ones (with the same rules as
    /// [`Registry::insert_family`]), and the list is published once, with all of them.
    pub(super) fn register_fns(&self, fns: Vec<FnSpec<'_>>) -> Result<(), Error> {
        let mut built = Vec::with_capacity(fns.len());
        for (kind, name, help, read) in fns {
            let desc = Self::descriptor_of(kind, name, help, &[])?;
            built.push(Arc::new(FnFamily { desc, read }) as Arc<dyn RegisteredFamily>);
        }
        let mut writer = self.inner.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = (*self.inner.families.load_full()).clone();
        let mut built = built.into_iter();
        // The batch's claims so far: checked like the registered ones', kept only if the whole
        // batch is.
        let mut batch = Claimed::default();
        let mut clash = None;
        for registered in built.by_ref() {
            let desc = registered.desc();
            let new = claims(&desc.name, desc.kind);
            if let Some(name) = writer.clash(&new).or_else(|| batch.clash(&new)) {
                clash = Some((name, registered));
                break;
            }
            let at = next.partition_point(|f| *f.desc().name < *desc.name);
            next.insert(at, registered);
            batch.extend(new);
        }
        let Some((name, refused)) = clash else {
            self.inner.families.store(Arc::new(next));
            writer.extend(batch);
            return Ok(());
        };
        // Refused: the caller's functions (and what they captured) are dropped after the
        // writer mutex is released, so a `Drop` that registers in this registry does not wait
        // for the mutex its own thread holds (review helper-97: a deadlock).
        drop(writer);
        drop((refused, next, built));
        Err(Error::DuplicateMetric { name })
    }

    /// The family named `name` if it exists with exactly this type, label names and
    /// configuration; registers it if the name is free; errors with [`Error::ShapeMismatch`]
    /// if it exists with another shape. An invalid configuration is refused as such
    /// ([`Error::InvalidSummaryConfig`]) whether or not the name is registered, and registers
    /// nothing.
    ///
    /// ```
    /// use agentcore_telemetry::registry::FamilyOptions;
    /// use agentcore_telemetry::{Error, Registry, Summary, SummaryConfig};
    /// use std::time::Duration;
    ///
    /// let registry = Registry::new();
    /// let bad = SummaryConfig { quantiles: vec![1.5], max_age: Duration::from_secs(60), age_buckets: 5 };
    /// let refused = registry.get_or_register::<Summary>("rt_seconds", "h", &[], bad, FamilyOptions::default());
    /// assert!(matches!(refused, Err(Error::InvalidSummaryConfig { .. })));
    /// assert!(registry.family_names().iter().all(|n| n != "rt_seconds"));
    /// let family = registry
    ///     .get_or_register::<Summary>("rt_seconds", "h", &[], SummaryConfig::default(), FamilyOptions::default())
    ///     .unwrap();
    /// family.with_label_values::<&str>(&[]).unwrap().observe(0.25);
    /// ```
    pub fn get_or_register<M: Metric>(
        &self,
        name: &str,
        help: &str,
        label_names: &[&str],
        config: M::Config,
        options: FamilyOptions,
    ) -> Result<Family<M>, Error> {
        if let Some(existing) = self.find(name) {
            // The configuration first: an invalid one is the caller's error whatever the
            // registered family looks like (a fresh name reaches `register`, which checks it).
            M::validate(&config)?;
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

    /// The kind and label names (in its order) of the family registered as `name`, if there is
    /// one: the metrics bridge adopts the order of a family registered elsewhere
    /// (`get_or_register` compares label names in order) and tells why a key conflicts with it.
    #[cfg(feature = "metrics-bridge")]
    pub(crate) fn shape_of(&self, name: &str) -> Option<(MetricKind, Box<[Box<str>]>)> {
        self.find(name)
            .map(|f| (f.desc().kind, f.desc().label_names.clone()))
    }

    /// The configuration of the family registered as `name`, if it is a family of `M`: the
    /// metrics bridge records into a histogram family registered elsewhere with that family's
    /// buckets (`get_or_register` compares configurations).
    #[cfg(feature = "metrics-bridge")]
    pub(crate) fn config_of<M: Metric>(&self, name: &str) -> Option<M::Config> {
        let family = self.find(name)?;
        let family = family.as_any().downcast_ref::<Family<M>>()?;
        Some(family.config().clone())
    }

    /// Whether a family is registered as `name` (lock-free, no allocation): the metrics bridge
    /// skips a description of a registered family, whose HELP is fixed.
    #[cfg(feature = "metrics-bridge")]
    pub(crate) fn has_family(&self, name: &str) -> bool {
        self.find(name).is_some()
    }

    /// The first name a family of `kind` named `name` would share with a registered one (see
    /// [`claims()`]), without registering anything: the agent collector checks all its names
    /// before it registers the first, so a refused registry is left as it was.
    pub(crate) fn clash_with(&self, name: &str, kind: MetricKind) -> Option<String> {
        let claimed = self.inner.writer.lock().unwrap_or_else(|e| e.into_inner());
        claimed.clash(&claims(name, kind))
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
        Self::descriptor_of(M::KIND, name, help, label_names)
    }

    fn descriptor_of(
        kind: MetricKind,
        name: &str,
        help: &str,
        label_names: &[&str],
    ) -> Result<Descriptor, Error> {
        name::validate_metric_name(name)?;
        if name::reserved_by_openmetrics(name) {
            return Err(Error::InvalidMetricName { name: name.into() });
        }
        for (i, label) in label_names.iter().enumerate() {
            name::validate_label_name(label)?;
            if name::reserved_by_openmetrics(label) {
                return Err(Error::InvalidLabelName {
                    name: (*label).into(),
                    reason: name::OPENMETRICS_RESERVED,
                });
            }
            if Some(*label) == kind.reserved_label() {
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
            kind,
        })
    }

    /// Registers a counter family.
    ///
    /// ```
    /// use agentcore_telemetry::Registry;
    ///
    /// let registry = Registry::new();
    /// let tools = registry.counter_family("tool_calls_total", "Tool calls.", &["tool"]).unwrap();
    /// tools.with_label_values(&["search"]).unwrap().inc();
    /// assert!(registry.encode_text().contains("tool_calls_total{tool=\"search\"} 1\n"));
    /// assert!(registry.counter_family("bad name", "B.", &[]).is_err()); // invalid metric name
    /// ```
    pub fn counter_family(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> Result<Family<Counter>, Error> {
        self.register(name, help, labels, (), FamilyOptions::default())
    }

    /// Registers a gauge family.
    ///
    /// ```
    /// use agentcore_telemetry::Registry;
    ///
    /// let registry = Registry::new();
    /// let memory = registry.gauge_family("agent_memory_bytes", "Memory.", &["agent"]).unwrap();
    /// memory.with_label_values(&["a-1"]).unwrap().set(1024.0);
    /// let text = registry.encode_text();
    /// assert!(text.contains("# TYPE agent_memory_bytes gauge\nagent_memory_bytes{agent=\"a-1\"} 1024\n"));
    /// ```
    pub fn gauge_family(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> Result<Family<Gauge>, Error> {
        self.register(name, help, labels, (), FamilyOptions::default())
    }

    /// Registers a histogram family.
    ///
    /// ```
    /// use agentcore_telemetry::{Buckets, Registry};
    ///
    /// let registry = Registry::new();
    /// let latency = registry.histogram_family("tool_seconds", "Latency.", &["tool"], Buckets::default()).unwrap();
    /// latency.with_label_values(&["search"]).unwrap().observe(0.2);
    /// assert!(registry.encode_text().contains("tool_seconds_count{tool=\"search\"} 1\n"));
    /// assert!(registry.histogram_family("x_seconds", "X.", &["le"], Buckets::default()).is_err()); // reserved
    /// ```
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
    ///
    /// ```
    /// use agentcore_telemetry::registry::DEFAULT_MAX_SUMMARY_SERIES;
    /// use agentcore_telemetry::{Registry, SummaryConfig};
    ///
    /// let registry = Registry::new();
    /// let rt = registry
    ///     .summary_family("response_seconds", "Response time.", &["route"], SummaryConfig::default())
    ///     .unwrap();
    /// rt.with_label_values(&["/chat"]).unwrap().observe(0.5);
    /// assert_eq!(rt.max_series(), DEFAULT_MAX_SUMMARY_SERIES);
    /// assert!(registry.encode_text().contains("response_seconds_count{route=\"/chat\"} 1\n"));
    /// ```
    pub fn summary_family(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
        config: SummaryConfig,
    ) -> Result<Family<Summary>, Error> {
        // `register` validates the configuration, in the same order as every other path.
        self.register(
            name,
            help,
            labels,
            config,
            FamilyOptions {
                max_series: DEFAULT_MAX_SUMMARY_SERIES,
                ..FamilyOptions::default()
            },
        )
    }

    /// Registers an info family.
    ///
    /// ```
    /// use agentcore_telemetry::Registry;
    ///
    /// let registry = Registry::new();
    /// let runtime = registry.info_family("runtime_info", "Runtime.", &["version", "platform"]).unwrap();
    /// runtime.with_label_values(&["1.2.0", "linux"]).unwrap(); // creating the series records it
    /// assert!(registry.encode_text().contains("runtime_info{version=\"1.2.0\",platform=\"linux\"} 1\n"));
    /// ```
    pub fn info_family(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> Result<Family<Info>, Error> {
        self.register(name, help, labels, (), FamilyOptions::default())
    }

    /// Registers an unlabelled counter and returns its handle.
    ///
    /// ```
    /// use agentcore_telemetry::Registry;
    ///
    /// let registry = Registry::new();
    /// let restarts = registry.counter("restarts_total", "Restarts.").unwrap();
    /// restarts.inc();
    /// assert!(registry.encode_text().contains("restarts_total 1\n"));
    /// assert!(registry.counter("restarts_total", "Again.").is_err()); // the name is taken
    /// ```
    pub fn counter(&self, name: &str, help: &str) -> Result<Counter, Error> {
        self.counter_family(name, help, &[])?
            .get_or_create::<&str>(&[])
    }

    /// Registers an unlabelled gauge and returns its handle.
    ///
    /// ```
    /// use agentcore_telemetry::Registry;
    ///
    /// let registry = Registry::new();
    /// let workers = registry.gauge("workers", "Worker threads.").unwrap();
    /// workers.set(8.0);
    /// assert!(registry.encode_text().contains("workers 8\n"));
    /// ```
    pub fn gauge(&self, name: &str, help: &str) -> Result<Gauge, Error> {
        self.gauge_family(name, help, &[])?
            .get_or_create::<&str>(&[])
    }

    /// Registers an unlabelled histogram and returns its handle.
    ///
    /// ```
    /// use agentcore_telemetry::{Buckets, Registry};
    ///
    /// let registry = Registry::new();
    /// let step = registry.histogram("step_seconds", "Step time.", Buckets::new(vec![0.5, 1.0]).unwrap()).unwrap();
    /// step.observe(0.75);
    /// let text = registry.encode_text();
    /// assert!(text.contains("step_seconds_bucket{le=\"0.5\"} 0\n"));
    /// assert!(text.contains("step_seconds_bucket{le=\"1\"} 1\n"));
    /// ```
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
    ///
    /// ```
    /// use agentcore_telemetry::registry::OVERFLOW_METRIC;
    /// use agentcore_telemetry::Registry;
    ///
    /// let registry = Registry::new();
    /// registry.gauge("zeta", "Z.").unwrap();
    /// registry.counter("alpha_total", "A.").unwrap();
    /// assert_eq!(registry.family_names(), [OVERFLOW_METRIC, "alpha_total", "zeta"]); // with the registry's own
    /// ```
    pub fn family_names(&self) -> Vec<String> {
        self.inner
            .families
            .load()
            .iter()
            .map(|f| f.desc().name.to_string())
            .collect()
    }
}

impl Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("families", &self.family_names())
            .finish()
    }
}
