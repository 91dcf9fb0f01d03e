//! [`AgentcoreRecorder`]: a `metrics::Recorder` whose counters, gauges and histograms are
//! series of a [`Registry`], in its scrape and pushes like any other.
//!
//! # What maps to what
//!
//! | `metrics` | our registry |
//! |---|---|
//! | a metric name | a family (counter, gauge or histogram), name sanitized to `[a-zA-Z_:][a-zA-Z0-9_:]*` |
//! | its label keys at first registration | the family's label names, fixed from then on (any order of the same set is accepted; a family the registry already has by that name keeps its own order) |
//! | another label-key set, or another kind, for a registered name | refused by the [`OnConflict`] strategy, counted in `agentcore_telemetry_bridge_rejected_total{reason}` |
//! | a name in the crate's own namespaces ([`RESERVED_PREFIXES`]: its self-monitoring, the tracer's counts) | refused as `reserved` and counted: those counters report what the crate dropped, refused and recorded, which no caller may add to |
//! | `describe_*` | the family's HELP (when it comes before the first registration, as the `describe_*!` macros and `counter!(description: ...)` do); the `Unit` is not used (OpenMetrics takes a family's unit from its name's suffix, which the caller chooses, as metrics-exporter-prometheus leaves names as given) |
//! | `counter.increment(n)` / `absolute(n)` | `inc_by(n)` / raised to `n` (never lowered: a counter is monotonic); after an `absolute`, the series has no OpenMetrics `_created` (its total counts from a start kept elsewhere) |
//! | `gauge.increment/decrement/set` | `add` / `sub` / `set` |
//! | `histogram.record(v)` | `observe(v)` into fixed buckets: [`Buckets::default`] or per name ([`RecorderBuilder::buckets_for`]), or those of a histogram family the registry already has by that name; no sample buffering |
//! | a label set beyond the family's cap | the family's overflow series (see [`Registry`]) |
//! | a new name beyond the recorder's cap on names ([`RecorderBuilder::max_families`]), or its `describe_*` | refused as `families` and counted: names built at run time would otherwise make a family each, without end |
//!
//! **Names are matched after sanitizing.** Distinct `metrics` names that sanitize to the same
//! Prometheus name (`http.requests`, `http-requests` and `http_requests` are all
//! `http_requests`) are one family, and with the same labels one series: their values add up,
//! and no refusal is counted. This is deliberate (`metrics-exporter-prometheus` does the same)
//! and it is the only place two keys share a series; label names are sanitized likewise
//! (`http.method` is `http_method`). A name that sanitizes to a leading underscore (one that
//! starts with a digit, `2fa_checks` -> `_2fa_checks`, or with `_`) is refused as `invalid`
//! and counted: OpenMetrics 1.0 reserves such metric and label names, and the registry refuses
//! them (metrics-exporter-prometheus, which exposes 0.0.4 only, keeps them).
//!
//! ```
//! use agentcore_telemetry::bridge::metrics_recorder::AgentcoreRecorder;
//! use agentcore_telemetry::Registry;
//! let registry = Registry::new();
//! let recorder = AgentcoreRecorder::new(&registry);
//! metrics::with_local_recorder(&recorder, || {
//!     metrics::counter!("http.requests").increment(1);
//!     metrics::counter!("http-requests").increment(10);
//!     metrics::counter!("http_requests").increment(100);
//! });
//! assert!(registry.encode_text().contains("http_requests 111\n"));
//! assert_eq!(recorder.rejected(), 0);
//! ```
//!
//! **Removed series.** A series can be removed from its family ([`Family::remove`],
//! [`Family::retain`], [`Family::clear`], `MetricsCollector::remove_agent`). The next
//! `counter!`/`gauge!`/`histogram!` call with its key then creates a fresh series (from zero),
//! which the next scrape shows, exactly as [`Family::with_label_values`] does. A handle the
//! caller *kept* from before the removal (`let c = counter!(..)`, held) keeps recording into
//! the removed series, which is no longer exposed, like a kept [`Family::get_or_create`] handle.
//!
//! ```
//! use agentcore_telemetry::bridge::metrics_recorder::AgentcoreRecorder;
//! use agentcore_telemetry::registry::FamilyOptions;
//! use agentcore_telemetry::{Counter, Registry};
//! let registry = Registry::new();
//! let recorder = AgentcoreRecorder::new(&registry);
//! let jobs = || metrics::counter!("jobs_total", "queue" => "a");
//! metrics::with_local_recorder(&recorder, || jobs().increment(1));
//! let options = FamilyOptions::default();
//! let family = registry.get_or_register::<Counter>("jobs_total", "", &["queue"], (), options).unwrap();
//! assert!(family.remove(&["a"]));
//! metrics::with_local_recorder(&recorder, || jobs().increment(5));
//! assert!(registry.encode_text().contains("jobs_total{queue=\"a\"} 5\n"));
//! ```
//!
//! # Invariants
//!
//! 1. **One lookup, no allocation.** Every `counter!`/`gauge!`/`histogram!` call registers its
//!    key; the handle of a key seen before comes from a cache (`key_cache.rs`): a hash table
//!    read under a hazard-era guard (a slot of the thread's record and a compiler fence) with
//!    one `Acquire` load and a probe from the hash the `metrics::Key` already carries, no lock
//!    and no atomic read-modify-write, then one reference-count increment. The handle is then
//!    checked to be live: one `Acquire` load of its family's generation and a compare with the
//!    generation at which its series was last seen live. When the family changed since (a
//!    series inserted or removed), a lock-free lookup in the family (no allocation) confirms
//!    that the handle's series is still the family's series for its labels and stamps the new
//!    generation; when it is not (removed, or removed and created again), the key takes the
//!    slow path (2), which resolves it again and replaces its cache entry.
//! 2. **Slow path under one mutex.** A key not in the cache, or whose cached series was
//!    removed, takes the recorder's mutex: it resolves the family (creating it, or refusing
//!    the key), finds or creates the series, checks it is live in the family, and adds (or
//!    replaces) the key's cache entry. Keys folded into an overflow series, and refused
//!    keys, are not cached (each such call takes the slow path and is counted). A removal
//!    racing the slow path's check makes it try again (three times, then the call records
//!    into a handle of its own, not cached).
//! 3. **Never a panic in release.** A refused key gets a no-op handle; [`OnConflict::Panic`]
//!    panics only in builds with `debug_assertions`.
//! 4. **Handles outlive nothing they need.** A handle owns its series' metric (a reference
//!    count), so a handle kept by the caller, or one a reader got from the cache just as its
//!    entry was replaced, stays valid however the cache or the family changes: a write racing
//!    a removal lands in the removed series' metric and is lost, as with the direct API, and
//!    never touches freed memory.
//! 5. **Bounded memory.** Before an insert that would double the entries the last sweep kept
//!    (at least 64), a sweep drops the entries whose series were removed (with the key, its
//!    handle and through it the series' slot-arena words), and replaced and dropped entries
//!    are freed by reclamation. So the cache holds at most about twice the keys whose series
//!    were live at the last sweep (bounded by the families' caps, times the spellings of a key
//!    that map to one series: label orders, names equal after sanitizing), or 64, plus what
//!    waits for reclamation; not every key ever seen, and agent churn (`remove_agent` as
//!    agents end) leaves it bounded. The bound is a peak, not the live count: entries whose
//!    series were removed stay until enough new keys come to trigger a sweep (a wave of N
//!    agents that all ended keeps their N entries until about N new keys, or the recorder's
//!    drop). The families' number is capped too ([`RecorderBuilder::max_families`]), and so
//!    are the descriptions kept for names without a family: a name past the cap is refused
//!    and counted (`families`), so names built at run time do not make families without end.

use super::key_cache::KeyCache;
use super::metric_names::{
    is_valid_metric_name, sanitize_label_name, sanitize_metric_name, sanitize_metric_name_into,
};
pub use super::recorder_builder::{Matcher, OnConflict, RecorderBuilder, DEFAULT_MAX_FAMILIES};
use crate::error::Error;
use crate::primitives::{Buckets, Counter, Gauge, Histogram};
use crate::registry::{Family, FamilyOptions, Metric, MetricKind, Registry, DEFAULT_MAX_SERIES};
use metrics::{
    CounterFn, GaugeFn, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use smallvec::SmallVec;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// The counter of keys refused by the recorder (label `reason`: `label_set`, `kind`,
/// `invalid`, `reserved`, `families`), and of descriptions dropped past its cap on names
/// (`families`: [`RecorderBuilder::max_families`]).
///
/// ```
/// assert_eq!(
///     agentcore_telemetry::bridge::metrics_recorder::REJECTED_METRIC,
///     "agentcore_telemetry_bridge_rejected_total"
/// );
/// ```
pub const REJECTED_METRIC: &str = "agentcore_telemetry_bridge_rejected_total";

/// The metric-name prefixes the recorder refuses (as `reserved`, counted in
/// [`REJECTED_METRIC`]): the crate's self-monitoring (`agentcore_telemetry_`: drops, refusals,
/// overflow folds, reclamation, this very counter) and the tracer's counts
/// (`agentcore_tracer_`). Families under them may share the recorder's registry; a `metrics`
/// key naming one would otherwise get a handle on them and could add to what the crate
/// reports it dropped or recorded. Matched after sanitizing, as every name is.
///
/// ```
/// use agentcore_telemetry::bridge::metrics_recorder::{AgentcoreRecorder, REJECTED_METRIC};
/// use agentcore_telemetry::Registry;
///
/// let registry = Registry::new();
/// let recorder = AgentcoreRecorder::new(&registry);
/// metrics::with_local_recorder(&recorder, || {
///     metrics::counter!("agentcore_telemetry_bridge_rejected_total", "reason" => "kind").increment(9);
/// });
/// assert_eq!(recorder.rejected(), 1);
/// let text = registry.encode_text();
/// assert!(text.contains(&format!("{REJECTED_METRIC}{{reason=\"reserved\"}} 1\n")));
/// assert!(!text.contains("reason=\"kind\""));
/// ```
pub const RESERVED_PREFIXES: [&str; 2] = ["agentcore_telemetry_", "agentcore_tracer_"];

impl RecorderBuilder {
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
                "Registrations the metrics bridge refused (each call with a key it cannot map): another label set or kind for a registered name, an invalid or reserved name, or a new name (or its description) past the recorder's cap on names.",
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
            max_families: DEFAULT_MAX_FAMILIES,
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

    /// How many registrations were refused so far (all reasons), and descriptions dropped past
    /// the cap on names ([`RecorderBuilder::max_families`]).
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

/// A metric type the recorder maps to: its handles can tell whether two are the same series'.
trait Same: Metric {
    fn same(&self, other: &Self) -> bool;
}

impl Same for Counter {
    fn same(&self, other: &Self) -> bool {
        self.ptr_eq(other)
    }
}

impl Same for Gauge {
    fn same(&self, other: &Self) -> bool {
        self.ptr_eq(other)
    }
}

impl Same for Histogram {
    fn same(&self, other: &Self) -> bool {
        self.ptr_eq(other)
    }
}

/// Where a cached handle's series lives, to notice that it was removed (invariant 1).
struct Origin<M: Metric> {
    family: Family<M>,
    /// The series' label values, as given (only label *names* are sanitized), in the family's
    /// order.
    values: Box<[Box<str>]>,
    /// The family's generation when the series was last seen live in it.
    stamp: AtomicU64,
}

impl<M: Same> Origin<M> {
    /// Whether `metric` (this origin's handle's) is still its family's series for `values`:
    /// yes at once if the family's generation has not moved since it was last seen live (no
    /// series inserted or removed since: family invariant 5); otherwise looked up again.
    #[inline(always)]
    fn live(&self, metric: &M) -> bool {
        // `Acquire` (in `generation`): a removal that bumped it is seen by `revalidate`'s probe.
        self.family.generation() == self.stamp.load(Relaxed) || self.revalidate(metric)
    }

    /// The family changed since the series was last seen live: a lock-free lookup (no
    /// allocation) of `values`, which must find this very series (not merely one created
    /// again under the same values after a removal). Stamps the generation read before the
    /// lookup, so a removal after it is noticed next time.
    #[cold]
    #[inline(never)]
    fn revalidate(&self, metric: &M) -> bool {
        let generation = self.family.generation();
        let live = self
            .family
            .get(&self.values)
            .is_some_and(|m| m.same(metric));
        if live {
            self.stamp.store(generation, Relaxed);
        }
        live
    }
}

/// A handle the recorder hands out (and caches, with its [`Origin`], when the key is a series
/// of its own).
trait Handle: Send + Sync + 'static {
    type M: Same;
    fn new(metric: Self::M, origin: Option<Origin<Self::M>>) -> Self;
    fn metric(&self) -> &Self::M;
    fn origin(&self) -> Option<&Origin<Self::M>>;

    /// Whether the handle still records into a series of its family (a cached handle whose
    /// series was removed does not). Handles without an origin (the overflow series') are
    /// never cached; they stay live as long as their family.
    #[inline(always)]
    fn live(&self) -> bool {
        self.origin().is_none_or(|o| o.live(self.metric()))
    }
}

/// The locks that serialise `absolute` (read, then raise), one per counter by its identity
/// (striped: two counters may share one, which only makes them wait; a prime count, as the
/// identities are aligned addresses). Rare, and never on `increment`'s path.
static ABSOLUTE: [Mutex<()>; 61] = [const { Mutex::new(()) }; 61];

struct CounterHandle {
    counter: Counter,
    origin: Option<Origin<Counter>>,
}

impl Handle for CounterHandle {
    type M = Counter;
    fn new(counter: Counter, origin: Option<Origin<Counter>>) -> Self {
        CounterHandle { counter, origin }
    }
    #[inline(always)]
    fn metric(&self) -> &Counter {
        &self.counter
    }
    #[inline(always)]
    fn origin(&self) -> Option<&Origin<Counter>> {
        self.origin.as_ref()
    }
}

impl CounterFn for CounterHandle {
    #[inline]
    fn increment(&self, value: u64) {
        self.counter.inc_by(value);
    }

    fn absolute(&self, value: u64) {
        // Serialised per counter, not per handle: a series has a handle per recorder on the
        // registry and per spelling of its name, and two handles reading the same current
        // value would both raise it, past `value` (review helper-112).
        let stripe = &ABSOLUTE[self.counter.identity() % ABSOLUTE.len()];
        let _serial = stripe.lock().unwrap_or_else(|e| e.into_inner());
        // In integers: `get()` is an `f64`, which above 2^53 rounds, and a raise computed from
        // it overshoots `value`. The fractional part (only a family shared with direct `add`s
        // has one) counts by its whole units, as before.
        // The total mirrors one kept elsewhere, which did not start at zero when this
        // counter was made: no `_created` from now on (`Counter::forget_created`).
        self.counter.forget_created();
        let (whole, fraction) = self.counter.parts();
        let current = whole.saturating_add(fraction as u64);
        if value > current {
            self.counter.inc_by(value - current);
        }
    }
}

struct GaugeHandle(Gauge, Option<Origin<Gauge>>);

impl Handle for GaugeHandle {
    type M = Gauge;
    fn new(gauge: Gauge, origin: Option<Origin<Gauge>>) -> Self {
        GaugeHandle(gauge, origin)
    }
    #[inline(always)]
    fn metric(&self) -> &Gauge {
        &self.0
    }
    #[inline(always)]
    fn origin(&self) -> Option<&Origin<Gauge>> {
        self.1.as_ref()
    }
}

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

struct HistogramHandle(Histogram, Option<Origin<Histogram>>);

impl Handle for HistogramHandle {
    type M = Histogram;
    fn new(histogram: Histogram, origin: Option<Origin<Histogram>>) -> Self {
        HistogramHandle(histogram, origin)
    }
    #[inline(always)]
    fn metric(&self) -> &Histogram {
        &self.0
    }
    #[inline(always)]
    fn origin(&self) -> Option<&Origin<Histogram>> {
        self.1.as_ref()
    }
}

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
/// their family exists (each moved out when it does), the rejection total. Each map holds at
/// most `max_families` names.
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

impl Kind {
    fn metric_kind(self) -> MetricKind {
        match self {
            Kind::Counter => MetricKind::Counter,
            Kind::Gauge => MetricKind::Gauge,
            Kind::Histogram => MetricKind::Histogram,
        }
    }
}

/// Why a key was refused (the `reason` label).
#[derive(Debug, Clone, Copy)]
enum Refusal {
    LabelSet,
    Kind,
    Invalid,
    Reserved,
    /// A new name (or its description) past the cap on names.
    Families,
}

impl Refusal {
    fn label(self) -> &'static str {
        match self {
            Refusal::LabelSet => "label_set",
            Refusal::Kind => "kind",
            Refusal::Invalid => "invalid",
            Refusal::Reserved => "reserved",
            Refusal::Families => "families",
        }
    }
}

/// What [`series`] found for a key.
enum Series<H: Handle> {
    /// The key's own series: its handle, now cached.
    Own(Arc<H>),
    /// The family is full: the overflow series (never cached per key: invariant 2).
    Folded(H::M),
    /// A removal raced the lookup every time: a handle for this call only, not cached.
    Racing(H::M),
}

/// Attempts before [`Series::Racing`]: a removal of this very series between the creation and
/// the check, this many times over.
const RACE_ATTEMPTS: usize = 3;

/// The slow path's series for `values` in `family` (invariant 2): found or created, checked to
/// be the family's live series for `values` (not the overflow series, not one removed
/// meanwhile), and then cached for `key` with its [`Origin`] (replacing a stale entry).
fn series<H: Handle>(
    family: &Family<H::M>,
    values: &[&str],
    cache: &KeyCache<H>,
    key: &Key,
) -> Result<Series<H>, Error> {
    let mut metric = None;
    for _ in 0..RACE_ATTEMPTS {
        let m = family.get_or_create(values)?;
        // Read before the check: a removal after it moves it, and the hot path looks again.
        let generation = family.generation();
        match family.get(values) {
            Some(live) if live.same(&m) => {
                let origin = Origin {
                    family: family.clone(),
                    values: values.iter().map(|v| Box::from(*v)).collect(),
                    stamp: AtomicU64::new(generation),
                };
                let handle = Arc::new(H::new(m, Some(origin)));
                cache.insert(key, handle.clone(), H::live);
                return Ok(Series::Own(handle));
            }
            // Not in the table although just looked up, and it is the overflow series: folded.
            // (Not merely "the family is full": `m` may be the key's own series, removed since
            // and the family refilled, and then it must not become the family's overflow
            // handle, which is never checked again.)
            None if family.overflow_metric().is_some_and(|o| o.same(&m)) => {
                return Ok(Series::Folded(m))
            }
            // Removed (and perhaps created again) in between, or folded because the slot
            // arena is exhausted: look again.
            _ => metric = Some(m),
        }
    }
    Ok(Series::Racing(metric.expect("at least one attempt")))
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
        self.count_refusal(slow, why);
        if self.config.on_conflict == OnConflict::Panic && cfg!(debug_assertions) {
            panic!("metrics bridge refused {key}: {detail}");
        }
        Resolved::Refused
    }

    fn count_refusal(&self, slow: &mut Slow, why: Refusal) {
        slow.rejected += 1;
        if let Some(family) = &self.rejected {
            if let Ok(c) = family.with_label_values(&[why.label()]) {
                c.inc();
            }
        }
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
        registered: Option<Buckets>,
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
                registered.unwrap_or_else(|| self.buckets_for(name)),
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
        // Another thread may have resolved it meanwhile (a cached handle whose series was
        // removed is resolved again, and its entry replaced).
        match kind {
            Kind::Counter => {
                if let Some(h) = self.counters.get(key).filter(|h| h.live()) {
                    return Resolved::Counter(h);
                }
            }
            Kind::Gauge => {
                if let Some(h) = self.gauges.get(key).filter(|h| h.live()) {
                    return Resolved::Gauge(h);
                }
            }
            Kind::Histogram => {
                if let Some(h) = self.histograms.get(key).filter(|h| h.live()) {
                    return Resolved::Histogram(h);
                }
            }
        }
        let name = sanitize_metric_name(key.name());
        if RESERVED_PREFIXES.iter().any(|p| name.starts_with(p)) {
            return self.refuse(slow, Refusal::Reserved, key, "the crate's own metrics");
        }
        let key_labels: Vec<(String, &str)> = key
            .labels()
            .map(|l| (sanitize_label_name(l.key()), l.value()))
            .collect();
        // A new name past the cap: refused before anything is registered or kept for it.
        let mapped = slow.families.len();
        if mapped >= self.config.max_families && !slow.families.contains_key(&name) {
            let detail = format!("the recorder maps {mapped} names already, its cap");
            return self.refuse(slow, Refusal::Families, key, &detail);
        }
        // Looped once more when the registration lost a race (below).
        let mut lost_race = false;
        while !slow.families.contains_key(&name) {
            let help = slow.descriptions.get(&name).cloned().unwrap_or_default();
            let mut names: Vec<&str> = key_labels.iter().map(|(k, _)| k.as_str()).collect();
            // A family registered elsewhere (directly, or by another recorder on the registry)
            // has its label order fixed, and `get_or_register` compares label names in order:
            // the key's names in another order are that family's, so take its order (the values
            // are put in the family's order below). A key that conflicts with it is refused for
            // its reason (label set, then kind, as below), not as invalid, which registering
            // would make it.
            let registered = self.registry.shape_of(&name);
            if let Some((registered_kind, order)) = &registered {
                // No duplicates in `order` (the registry refuses them): equal lengths and every
                // one of them in `names` make `names` a permutation of it.
                if order.len() != names.len() || !order.iter().all(|l| names.contains(&&**l)) {
                    let detail = format!("label names fixed as {order:?}");
                    return self.refuse(slow, Refusal::LabelSet, key, &detail);
                }
                if *registered_kind != kind.metric_kind() {
                    let detail = format!("registered as a {}", registered_kind.type_keyword());
                    return self.refuse(slow, Refusal::Kind, key, &detail);
                }
                names = order.iter().map(|l| &**l).collect();
            }
            // A histogram family registered elsewhere keeps its buckets, as it keeps its label
            // order: `get_or_register` refuses another configuration (review helper-112).
            let buckets = match (&registered, kind) {
                (Some(_), Kind::Histogram) => self.registry.config_of::<Histogram>(&name),
                _ => None,
            };
            match self.register_family(kind, &name, &help, &names, buckets) {
                Ok(family) => {
                    // The family has its HELP now: the description is not needed any more.
                    slow.descriptions.remove(&name);
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
                // The name was free when read above, and is not now: another recorder on the
                // registry, or a direct registration, took it in between (with the key's label
                // names in another order, or as another kind). Look again, to adopt that family
                // or be refused for the reason, as when it came first: not as invalid, with the
                // call's value lost (review helper-122).
                Err(_) if registered.is_none() && !lost_race && self.registry.has_family(&name) => {
                    lost_race = true;
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
            ($family:expr, $variant:ident, $handle:ty, $cache:expr) => {{
                let family = $family;
                match series::<$handle>(&family, &values, &$cache, key) {
                    Ok(Series::Own(h)) => Resolved::$variant(h),
                    Ok(Series::Folded(metric)) => match &entry.overflow {
                        Some(OverflowHandle::$variant(h)) => Resolved::$variant(h.clone()),
                        _ => {
                            let handle = Arc::new(<$handle>::new(metric, None));
                            entry.overflow = Some(OverflowHandle::$variant(handle.clone()));
                            Resolved::$variant(handle)
                        }
                    },
                    Ok(Series::Racing(metric)) => {
                        Resolved::$variant(Arc::new(<$handle>::new(metric, None)))
                    }
                    Err(e) => return self.refuse(slow, Refusal::Invalid, key, &e.to_string()),
                }
            }};
        }
        match &entry.family {
            Fam::Counter(f) => series!(f.clone(), Counter, CounterHandle, self.counters),
            Fam::Gauge(f) => series!(f.clone(), Gauge, GaugeHandle, self.gauges),
            Fam::Histogram(f) => series!(f.clone(), Histogram, HistogramHandle, self.histograms),
        }
    }

    fn describe(&self, name: KeyName, description: SharedString) {
        // Only before the family exists: a registered family's HELP is fixed. `counter!(
        // description: ..)` describes on every call, so a registered family is the common
        // case: the registry answers it lock-free, and a name valid as it is is not copied,
        // so that such a call stays as cheap as one without a description (invariant 1); one
        // that is not (`http.requests`, the `metrics` style) is sanitized on the stack, for the
        // same reason (it allocated on every call before: review helper-122).
        let mut inline = SmallVec::new();
        let name = if is_valid_metric_name(name.as_str()) {
            name.as_str()
        } else {
            sanitize_metric_name_into(name.as_str(), &mut inline)
        };
        if self.registry.has_family(name) {
            return;
        }
        let mut slow = self.slow.lock().unwrap_or_else(|e| e.into_inner());
        let slow = &mut *slow;
        if slow.families.contains_key(name) {
            return;
        }
        if let Some(kept) = slow.descriptions.get_mut(name) {
            description.as_ref().clone_into(kept);
        } else if slow.descriptions.len() >= self.config.max_families {
            // A name past the cap: its description is not kept for ever (counted, no panic:
            // no key is refused yet).
            self.count_refusal(slow, Refusal::Families);
        } else {
            slow.descriptions
                .insert(name.to_owned(), description.as_ref().to_owned());
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
            // Invariant 1: one `Acquire` load and a compare while the series is live.
            if h.live() {
                return metrics::Counter::from_arc(h);
            }
        }
        match self.inner.resolve(Kind::Counter, key) {
            Resolved::Counter(h) => metrics::Counter::from_arc(h),
            _ => metrics::Counter::noop(),
        }
    }

    #[inline]
    fn register_gauge(&self, key: &Key, _metadata: &Metadata<'_>) -> metrics::Gauge {
        if let Some(h) = self.inner.gauges.get(key) {
            // Invariant 1: one `Acquire` load and a compare while the series is live.
            if h.live() {
                return metrics::Gauge::from_arc(h);
            }
        }
        match self.inner.resolve(Kind::Gauge, key) {
            Resolved::Gauge(h) => metrics::Gauge::from_arc(h),
            _ => metrics::Gauge::noop(),
        }
    }

    #[inline]
    fn register_histogram(&self, key: &Key, _metadata: &Metadata<'_>) -> metrics::Histogram {
        if let Some(h) = self.inner.histograms.get(key) {
            // Invariant 1: one `Acquire` load and a compare while the series is live.
            if h.live() {
                return metrics::Histogram::from_arc(h);
            }
        }
        match self.inner.resolve(Kind::Histogram, key) {
            Resolved::Histogram(h) => metrics::Histogram::from_arc(h),
            _ => metrics::Histogram::noop(),
        }
    }
}
