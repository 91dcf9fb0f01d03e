//! [`AgentcoreRecorder`]: a `metrics::Recorder` whose counters, gauges and histograms are
//! series of a [`Registry`], in its scrape and pushes like any other.
//!
//! # What maps to what
//!
//! | `metrics` | our registry |
//! |---|---|
//! | a metric name | a family (counter, gauge or histogram), name sanitized to `[a-zA-Z_:][a-zA-Z0-9_:]*` |
//! | its label keys at first registration | the family's label names, fixed from then on (any order of the same set is accepted) |
//! | another label-key set, or another kind, for a registered name | refused by the [`OnConflict`] strategy, counted in `agentcore_telemetry_bridge_rejected_total{reason}` |
//! | `describe_*` | the family's HELP (when it comes before the first registration, as the `describe_*!` macros and `counter!(description: ...)` do) |
//! | `counter.increment(n)` / `absolute(n)` | `inc_by(n)` / raised to `n` (never lowered: a counter is monotonic) |
//! | `gauge.increment/decrement/set` | `add` / `sub` / `set` |
//! | `histogram.record(v)` | `observe(v)` into fixed buckets: [`Buckets::default`] or per name ([`RecorderBuilder::buckets_for`]); no sample buffering |
//! | a label set beyond the family's cap | the family's overflow series (see [`Registry`]) |
//!
//! # Invariants
//!
//! 1. **One lookup, no allocation.** Every `counter!`/`gauge!`/`histogram!` call registers its
//!    key; the handle of a key seen before comes from a cache (`key_cache.rs`): an append-only
//!    hash table read with one `Acquire` load and a probe from the hash the `metrics::Key`
//!    already carries, no lock and no atomic read-modify-write, then one reference-count
//!    increment. The cache holds only series within their family's cap, so its size is
//!    bounded by the caps.
//! 2. **Slow path under one mutex.** A key not in the cache takes the recorder's mutex: it
//!    resolves the family (creating it, or refusing the key), finds or creates the series, and
//!    adds the handle to the cache. Keys folded into an overflow series, and refused
//!    keys, are not cached (each such call takes the slow path and is counted).
//! 3. **Never a panic in release.** A refused key gets a no-op handle; [`OnConflict::Panic`]
//!    panics only in builds with `debug_assertions`.
//! 4. **Handles outlive nothing they need.** A handle owns its series' metric (a reference
//!    count), so a handle kept by the caller stays valid however the cache changes.

use super::key_cache::KeyCache;
use crate::error::Error;
use crate::primitives::{Buckets, Counter, Gauge, Histogram};
use crate::registry::{Family, FamilyOptions, Registry, DEFAULT_MAX_SERIES};
use metrics::{
    CounterFn, GaugeFn, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The counter of keys refused by the recorder (label `reason`: `label_set`, `kind`,
/// `invalid`).
///
/// ```
/// assert_eq!(
///     agentcore_telemetry::bridge::metrics_recorder::REJECTED_METRIC,
///     "agentcore_telemetry_bridge_rejected_total"
/// );
/// ```
pub const REJECTED_METRIC: &str = "agentcore_telemetry_bridge_rejected_total";

/// What the recorder does with a key it cannot map to its family: another set of label names,
/// another metric kind for a registered name, or a name or label the registry refuses. The key
/// always gets a no-op handle and is counted in [`REJECTED_METRIC`].
///
/// ```
/// use agentcore_telemetry::bridge::metrics_recorder::{AgentcoreRecorder, OnConflict};
/// let recorder = AgentcoreRecorder::builder().on_conflict(OnConflict::Ignore).build(&agentcore_telemetry::Registry::new());
/// # let _ = recorder;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnConflict {
    /// Count it and record nothing (the default).
    #[default]
    Ignore,
    /// Count it; in builds with `debug_assertions` also panic with the reason, to find the
    /// call site in tests. Never panics in release.
    Panic,
}

/// Which metric names a bucket layout applies to.
///
/// ```
/// use agentcore_telemetry::bridge::metrics_recorder::Matcher;
/// assert!(Matcher::Suffix("_seconds".into()).matches("http_request_seconds"));
/// assert!(!Matcher::Full("a".into()).matches("ab"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    /// Exactly this (sanitized) name.
    Full(String),
    /// Names starting with this.
    Prefix(String),
    /// Names ending with this.
    Suffix(String),
}

impl Matcher {
    /// Whether `name` matches.
    ///
    /// ```
    /// use agentcore_telemetry::bridge::metrics_recorder::Matcher;
    /// assert!(Matcher::Prefix("llm_".into()).matches("llm_tokens"));
    /// ```
    pub fn matches(&self, name: &str) -> bool {
        match self {
            Matcher::Full(s) => name == s,
            Matcher::Prefix(s) => name.starts_with(s.as_str()),
            Matcher::Suffix(s) => name.ends_with(s.as_str()),
        }
    }
}

/// Configures an [`AgentcoreRecorder`].
///
/// ```
/// use agentcore_telemetry::bridge::metrics_recorder::{AgentcoreRecorder, Matcher};
/// use agentcore_telemetry::{Buckets, Registry};
/// let recorder = AgentcoreRecorder::builder()
///     .buckets_for(Matcher::Suffix("_seconds".into()), Buckets::new(vec![0.01, 0.1, 1.0]).unwrap())
///     .max_series(1_000)
///     .build(&Registry::new());
/// # let _ = recorder;
/// ```
#[derive(Debug, Clone)]
pub struct RecorderBuilder {
    default_buckets: Buckets,
    buckets: Vec<(Matcher, Buckets)>,
    on_conflict: OnConflict,
    max_series: usize,
}

impl RecorderBuilder {
    /// Buckets for histograms whose name matches `matcher` (the first matching rule wins).
    ///
    /// ```
    /// use agentcore_telemetry::bridge::metrics_recorder::{AgentcoreRecorder, Matcher};
    /// use agentcore_telemetry::{Buckets, Registry};
    /// let registry = Registry::new();
    /// let recorder = AgentcoreRecorder::builder()
    ///     .buckets_for(Matcher::Full("tokens".into()), Buckets::new(vec![100.0, 1000.0]).unwrap())
    ///     .build(&registry);
    /// metrics::with_local_recorder(&recorder, || metrics::histogram!("tokens").record(512.0));
    /// assert!(registry.encode_text().contains("tokens_bucket{le=\"1000\"} 1\n"));
    /// ```
    pub fn buckets_for(mut self, matcher: Matcher, buckets: Buckets) -> Self {
        self.buckets.push((matcher, buckets));
        self
    }

    /// Buckets for histograms no rule matches (default [`Buckets::default`]).
    ///
    /// ```
    /// use agentcore_telemetry::bridge::metrics_recorder::AgentcoreRecorder;
    /// use agentcore_telemetry::{Buckets, Registry};
    /// let r = AgentcoreRecorder::builder().default_buckets(Buckets::linear(1.0, 1.0, 3).unwrap()).build(&Registry::new());
    /// # let _ = r;
    /// ```
    pub fn default_buckets(mut self, buckets: Buckets) -> Self {
        self.default_buckets = buckets;
        self
    }

    /// What to do with keys that conflict with their family (default [`OnConflict::Ignore`]).
    ///
    /// ```
    /// use agentcore_telemetry::bridge::metrics_recorder::{AgentcoreRecorder, OnConflict};
    /// let builder = AgentcoreRecorder::builder().on_conflict(OnConflict::Panic);
    /// # let _ = builder;
    /// ```
    pub fn on_conflict(mut self, strategy: OnConflict) -> Self {
        self.on_conflict = strategy;
        self
    }

    /// The cardinality cap of each family the recorder creates (default
    /// [`DEFAULT_MAX_SERIES`]); label sets beyond it go to the family's overflow series.
    ///
    /// ```
    /// use agentcore_telemetry::bridge::metrics_recorder::AgentcoreRecorder;
    /// use agentcore_telemetry::Registry;
    /// let registry = Registry::new();
    /// let recorder = AgentcoreRecorder::builder().max_series(2).build(&registry);
    /// metrics::with_local_recorder(&recorder, || {
    ///     for user in ["a", "b", "c", "d"] {
    ///         metrics::counter!("logins_total", "user" => user).increment(1);
    ///     }
    /// });
    /// assert!(registry.encode_text().contains("logins_total{user=\"__overflow__\"} 2\n"));
    /// ```
    pub fn max_series(mut self, max_series: usize) -> Self {
        self.max_series = max_series;
        self
    }

    /// The recorder, registering into `registry` (which it shares: scrape, serve or push that).
    /// Registers [`REJECTED_METRIC`] there (shared by every recorder on the registry).
    ///
    /// ```
    /// use agentcore_telemetry::bridge::metrics_recorder::{AgentcoreRecorder, REJECTED_METRIC};
    /// use agentcore_telemetry::Registry;
    /// let registry = Registry::new();
    /// let _recorder = AgentcoreRecorder::builder().build(&registry);
    /// assert!(registry.family_names().iter().any(|n| n == REJECTED_METRIC));
    /// ```
    pub fn build(self, registry: &Registry) -> AgentcoreRecorder {
        let rejected = registry
            .get_or_register::<Counter>(
                REJECTED_METRIC,
                "Keys the metrics bridge refused: another label set or kind for a registered name, or an invalid name.",
                &["reason"],
                (),
                FamilyOptions::default(),
            )
            .ok();
        AgentcoreRecorder {
            inner: Arc::new(Inner {
                registry: registry.clone(),
                config: self,
                counters: KeyCache::default(),
                gauges: KeyCache::default(),
                histograms: KeyCache::default(),
                slow: Mutex::new(Slow::default()),
                rejected,
            }),
        }
    }
}

/// A `metrics::Recorder` into a [`Registry`] (see the [module docs](self)). Cheap to clone;
/// install it with `metrics::set_global_recorder`, or per thread with
/// `metrics::with_local_recorder`.
///
/// ```
/// use agentcore_telemetry::bridge::metrics_recorder::AgentcoreRecorder;
/// use agentcore_telemetry::Registry;
///
/// let registry = Registry::new();
/// let recorder = AgentcoreRecorder::new(&registry);
/// metrics::with_local_recorder(&recorder, || {
///     metrics::describe_counter!("tool_calls_total", "Tool calls.");
///     let tool = String::from("calculator");
///     metrics::counter!("tool_calls_total", "tool" => tool, "status" => "ok").increment(1);
///     metrics::histogram!("llm_latency_seconds").record(0.25);
/// });
/// let text = registry.encode_text();
/// assert!(text.contains("# HELP tool_calls_total Tool calls.\n"));
/// assert!(text.contains("tool_calls_total{tool=\"calculator\",status=\"ok\"} 1\n"));
/// assert!(text.contains("llm_latency_seconds_count 1\n"));
/// ```
#[derive(Clone)]
pub struct AgentcoreRecorder {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AgentcoreRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentcoreRecorder")
            .field("config", &self.inner.config)
            .field("rejected", &self.rejected())
            .finish()
    }
}

impl AgentcoreRecorder {
    /// A recorder into `registry` with the default configuration.
    ///
    /// ```
    /// let recorder = agentcore_telemetry::bridge::metrics_recorder::AgentcoreRecorder::new(&agentcore_telemetry::Registry::new());
    /// assert_eq!(recorder.rejected(), 0);
    /// ```
    pub fn new(registry: &Registry) -> Self {
        Self::builder().build(registry)
    }

    /// A builder, to configure buckets, the conflict strategy and the cap.
    ///
    /// ```
    /// let builder = agentcore_telemetry::bridge::metrics_recorder::AgentcoreRecorder::builder();
    /// # let _ = builder;
    /// ```
    pub fn builder() -> RecorderBuilder {
        RecorderBuilder {
            default_buckets: Buckets::default(),
            buckets: Vec::new(),
            on_conflict: OnConflict::Ignore,
            max_series: DEFAULT_MAX_SERIES,
        }
    }

    /// The registry the recorder registers into.
    ///
    /// ```
    /// use agentcore_telemetry::bridge::metrics_recorder::AgentcoreRecorder;
    /// let recorder = AgentcoreRecorder::new(&agentcore_telemetry::Registry::new());
    /// assert!(recorder.registry().encode_text().is_empty());
    /// ```
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// How many registrations were refused so far (all reasons).
    ///
    /// ```
    /// use agentcore_telemetry::bridge::metrics_recorder::AgentcoreRecorder;
    /// let recorder = AgentcoreRecorder::new(&agentcore_telemetry::Registry::new());
    /// metrics::with_local_recorder(&recorder, || {
    ///     metrics::counter!("jobs_total", "queue" => "a").increment(1);
    ///     metrics::counter!("jobs_total", "worker" => "7").increment(1); // another label set
    /// });
    /// assert_eq!(recorder.rejected(), 1);
    /// ```
    pub fn rejected(&self) -> u64 {
        // A panic under the lock (`OnConflict::Panic` in a debug build) poisons it; the
        // count is still right.
        self.inner
            .slow
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .rejected
    }
}

struct CounterHandle {
    counter: Counter,
    /// Serialises `absolute` (read, then raise): rare, and never on `increment`'s path.
    absolute: Mutex<()>,
}

impl CounterFn for CounterHandle {
    #[inline]
    fn increment(&self, value: u64) {
        self.counter.inc_by(value);
    }

    fn absolute(&self, value: u64) {
        let _serial = self.absolute.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.counter.get();
        if (value as f64) > current {
            self.counter.inc_by(value - current as u64);
        }
    }
}

struct GaugeHandle(Gauge);

impl GaugeFn for GaugeHandle {
    #[inline]
    fn increment(&self, value: f64) {
        self.0.add(value);
    }

    #[inline]
    fn decrement(&self, value: f64) {
        self.0.sub(value);
    }

    #[inline]
    fn set(&self, value: f64) {
        self.0.set(value);
    }
}

struct HistogramHandle(Histogram);

impl HistogramFn for HistogramHandle {
    #[inline]
    fn record(&self, value: f64) {
        self.0.observe(value);
    }
}

/// A family the recorder created or adopted, with its fixed label names.
enum Fam {
    Counter(Family<Counter>),
    Gauge(Family<Gauge>),
    Histogram(Family<Histogram>),
}

impl Fam {
    fn kind(&self) -> &'static str {
        match self {
            Fam::Counter(_) => "counter",
            Fam::Gauge(_) => "gauge",
            Fam::Histogram(_) => "histogram",
        }
    }
}

struct FamilyEntry {
    family: Fam,
    /// Label names in the family's order (as first registered, sanitized).
    label_names: Vec<String>,
    /// The shared handle of the overflow series, once the family is full (never cached per
    /// key: invariant 2).
    overflow: Option<OverflowHandle>,
}

#[derive(Clone)]
enum OverflowHandle {
    Counter(Arc<CounterHandle>),
    Gauge(Arc<GaugeHandle>),
    Histogram(Arc<HistogramHandle>),
}

/// State behind the recorder's mutex: families by sanitized name, descriptions seen before
/// their family exists, the rejection total.
#[derive(Default)]
struct Slow {
    families: HashMap<String, FamilyEntry>,
    descriptions: HashMap<String, String>,
    rejected: u64,
}

struct Inner {
    registry: Registry,
    config: RecorderBuilder,
    counters: KeyCache<CounterHandle>,
    gauges: KeyCache<GaugeHandle>,
    histograms: KeyCache<HistogramHandle>,
    slow: Mutex<Slow>,
    rejected: Option<Family<Counter>>,
}

/// Which kind a registration asks for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// `name` with every character outside `[a-zA-Z0-9_:]` replaced by `_`, and `_` before a
/// leading digit (empty: `_`), as metrics-exporter-prometheus sanitizes.
fn sanitize_metric_name(name: &str) -> String {
    sanitize(name, |c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// A label name with characters outside `[a-zA-Z0-9_]` replaced by `_`.
fn sanitize_label_name(name: &str) -> String {
    sanitize(name, |c| c.is_ascii_alphanumeric() || c == '_')
}

fn sanitize(name: &str, valid: impl Fn(char) -> bool) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    if name.chars().next().is_none_or(|c| c.is_ascii_digit()) {
        out.push('_');
    }
    out.extend(name.chars().map(|c| if valid(c) { c } else { '_' }));
    out
}

/// Why a key was refused (the `reason` label).
#[derive(Debug, Clone, Copy)]
enum Refusal {
    LabelSet,
    Kind,
    Invalid,
}

impl Refusal {
    fn label(self) -> &'static str {
        match self {
            Refusal::LabelSet => "label_set",
            Refusal::Kind => "kind",
            Refusal::Invalid => "invalid",
        }
    }
}

/// What the slow path resolved a key to.
enum Resolved {
    Counter(Arc<CounterHandle>),
    Gauge(Arc<GaugeHandle>),
    Histogram(Arc<HistogramHandle>),
    Refused,
}

impl Inner {
    fn refuse(&self, slow: &mut Slow, why: Refusal, key: &Key, detail: &str) -> Resolved {
        slow.rejected += 1;
        if let Some(family) = &self.rejected {
            if let Ok(c) = family.with_label_values(&[why.label()]) {
                c.inc();
            }
        }
        if self.config.on_conflict == OnConflict::Panic && cfg!(debug_assertions) {
            panic!("metrics bridge refused {key}: {detail}");
        }
        Resolved::Refused
    }

    fn buckets_for(&self, name: &str) -> Buckets {
        self.config
            .buckets
            .iter()
            .find(|(m, _)| m.matches(name))
            .map_or_else(|| self.config.default_buckets.clone(), |(_, b)| b.clone())
    }

    fn register_family(
        &self,
        kind: Kind,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> Result<Fam, Error> {
        let options = FamilyOptions {
            max_series: self.config.max_series,
            ..FamilyOptions::default()
        };
        let r = &self.registry;
        Ok(match kind {
            Kind::Counter => Fam::Counter(r.get_or_register(name, help, labels, (), options)?),
            Kind::Gauge => Fam::Gauge(r.get_or_register(name, help, labels, (), options)?),
            Kind::Histogram => Fam::Histogram(r.get_or_register(
                name,
                help,
                labels,
                self.buckets_for(name),
                options,
            )?),
        })
    }

    /// The slow path (invariant 2): resolves `key` to a handle, caching it when it is a
    /// series of its own.
    #[cold]
    fn resolve(&self, kind: Kind, key: &Key) -> Resolved {
        let mut slow = self.slow.lock().unwrap_or_else(|e| e.into_inner());
        let slow = &mut *slow;
        // Another thread may have resolved it meanwhile.
        match kind {
            Kind::Counter => {
                if let Some(h) = self.counters.get(key) {
                    return Resolved::Counter(h);
                }
            }
            Kind::Gauge => {
                if let Some(h) = self.gauges.get(key) {
                    return Resolved::Gauge(h);
                }
            }
            Kind::Histogram => {
                if let Some(h) = self.histograms.get(key) {
                    return Resolved::Histogram(h);
                }
            }
        }
        let name = sanitize_metric_name(key.name());
        let key_labels: Vec<(String, &str)> = key
            .labels()
            .map(|l| (sanitize_label_name(l.key()), l.value()))
            .collect();
        if !slow.families.contains_key(&name) {
            let help = slow.descriptions.get(&name).cloned().unwrap_or_default();
            let names: Vec<&str> = key_labels.iter().map(|(k, _)| k.as_str()).collect();
            match self.register_family(kind, &name, &help, &names) {
                Ok(family) => {
                    let label_names = names.iter().map(|s| (*s).to_owned()).collect();
                    slow.families.insert(
                        name.clone(),
                        FamilyEntry {
                            family,
                            label_names,
                            overflow: None,
                        },
                    );
                }
                Err(e) => return self.refuse(slow, Refusal::Invalid, key, &e.to_string()),
            }
        }
        let Some(entry) = slow.families.get_mut(&name) else {
            return Resolved::Refused; // inserted just above
        };
        // The key's values in the family's label order; the same set of names in any order.
        let mut values: Vec<&str> = Vec::with_capacity(entry.label_names.len());
        for label in &entry.label_names {
            match key_labels.iter().find(|(k, _)| k == label) {
                Some((_, v)) => values.push(v),
                None => break,
            }
        }
        if values.len() != entry.label_names.len() || key_labels.len() != values.len() {
            let detail = format!("label names fixed as {:?}", entry.label_names);
            return self.refuse(slow, Refusal::LabelSet, key, &detail);
        }
        let expected = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        if entry.family.kind() != expected {
            let detail = format!("registered as a {}", entry.family.kind());
            return self.refuse(slow, Refusal::Kind, key, &detail);
        }
        macro_rules! series {
            ($family:expr, $variant:ident, $handle:expr, $cache:expr) => {{
                let metric = match $family.get_or_create(&values) {
                    Ok(m) => m,
                    Err(e) => return self.refuse(slow, Refusal::Invalid, key, &e.to_string()),
                };
                if $family.get(&values).is_some() {
                    let handle = Arc::new($handle(metric));
                    $cache.insert(key, handle.clone());
                    Resolved::$variant(handle)
                } else {
                    // Folded into the overflow series: one shared handle, not cached per key.
                    match &entry.overflow {
                        Some(OverflowHandle::$variant(h)) => Resolved::$variant(h.clone()),
                        _ => {
                            let handle = Arc::new($handle(metric));
                            entry.overflow = Some(OverflowHandle::$variant(handle.clone()));
                            Resolved::$variant(handle)
                        }
                    }
                }
            }};
        }
        match &entry.family {
            Fam::Counter(f) => {
                let f = f.clone();
                series!(
                    f,
                    Counter,
                    |counter| CounterHandle {
                        counter,
                        absolute: Mutex::new(())
                    },
                    self.counters
                )
            }
            Fam::Gauge(f) => {
                let f = f.clone();
                series!(f, Gauge, GaugeHandle, self.gauges)
            }
            Fam::Histogram(f) => {
                let f = f.clone();
                series!(f, Histogram, HistogramHandle, self.histograms)
            }
        }
    }

    fn describe(&self, name: KeyName, description: SharedString) {
        let mut slow = self.slow.lock().unwrap_or_else(|e| e.into_inner());
        let name = sanitize_metric_name(name.as_str());
        // Only before the family exists: a registered family's HELP is fixed.
        if !slow.families.contains_key(&name) {
            slow.descriptions
                .insert(name, description.as_ref().to_owned());
        }
    }
}

impl Recorder for AgentcoreRecorder {
    fn describe_counter(&self, key: KeyName, _unit: Option<Unit>, description: SharedString) {
        self.inner.describe(key, description);
    }

    fn describe_gauge(&self, key: KeyName, _unit: Option<Unit>, description: SharedString) {
        self.inner.describe(key, description);
    }

    fn describe_histogram(&self, key: KeyName, _unit: Option<Unit>, description: SharedString) {
        self.inner.describe(key, description);
    }

    #[inline]
    fn register_counter(&self, key: &Key, _metadata: &Metadata<'_>) -> metrics::Counter {
        if let Some(h) = self.inner.counters.get(key) {
            return metrics::Counter::from_arc(h);
        }
        match self.inner.resolve(Kind::Counter, key) {
            Resolved::Counter(h) => metrics::Counter::from_arc(h),
            _ => metrics::Counter::noop(),
        }
    }

    #[inline]
    fn register_gauge(&self, key: &Key, _metadata: &Metadata<'_>) -> metrics::Gauge {
        if let Some(h) = self.inner.gauges.get(key) {
            return metrics::Gauge::from_arc(h);
        }
        match self.inner.resolve(Kind::Gauge, key) {
            Resolved::Gauge(h) => metrics::Gauge::from_arc(h),
            _ => metrics::Gauge::noop(),
        }
    }

    #[inline]
    fn register_histogram(&self, key: &Key, _metadata: &Metadata<'_>) -> metrics::Histogram {
        if let Some(h) = self.inner.histograms.get(key) {
            return metrics::Histogram::from_arc(h);
        }
        match self.inner.resolve(Kind::Histogram, key) {
            Resolved::Histogram(h) => metrics::Histogram::from_arc(h),
            _ => metrics::Histogram::noop(),
        }
    }
}
