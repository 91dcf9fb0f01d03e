//! The [`MetricsCollector`]: the specification's whole metrics API for an agent runtime, on top
//! of the lock-free [`Registry`].
//!
//! # Conventions
//! * **Durations** are `f64` seconds, as in the specification (`duration_seconds=1.5`); every
//!   duration parameter also accepts a [`std::time::Duration`] (see [`IntoSeconds`]).
//! * **Labels** are `&str` and [`AgentPhilosophy`] (rendered `react`, `chain_of_thought`,
//!   `multi_agent`, `autonomous`); booleans become the static label values `"true"`/`"false"`.
//! * **Recording methods return `()`** and never panic. A value that cannot be recorded — a NaN,
//!   infinite or negative duration, a non-finite gauge value (CPU, memory), a negative, NaN or
//!   infinite GC amount — is refused: it is not recorded and is counted in
//!   `agentcore_telemetry_rejected_values_total{metric="<the metric it was meant for>"}`
//!   (see [`MetricsCollector::rejected_values`]). Only the refused sample is dropped; the rest of
//!   the call is recorded (a container creation with a NaN duration still counts its warm or
//!   cold start).
//! * **Hot path**: recording into an existing series resolves it with
//!   [`Family::with_label_values`]: no lock, no allocation. The five unlabelled metrics (system
//!   gauges, GC counters) are kept as resolved handles.
//! * **Per-agent series** (`agent_id` labels: CPU, memory, ReAct iterations, CoT steps,
//!   autonomous decisions) are dropped with [`MetricsCollector::remove_agent`] when an agent
//!   ends. Every family is capped at [`CollectorConfig::max_series_per_family`] series; label
//!   sets beyond the cap fold into the family's overflow series (every label
//!   `"__overflow__"`), counted in `agentcore_telemetry_series_overflow_total{family}`.
//! * **Active agents**: [`MetricsCollector::record_agent_created`] increments
//!   `agentcore_agents_active{philosophy}`, [`MetricsCollector::record_agent_completed`]
//!   (whatever its status: `completed`, `failed`, `terminated`) decrements it, never below zero.
//!   [`MetricsCollector::record_agent_failure`] decrements it too, because the specification's
//!   lifecycle example reports a failed agent through `record_agent_failure` alone. Report an
//!   agent's end once: through `record_agent_completed` or `record_agent_failure`, not both.
//!
//! ```
//! use agentcore_telemetry::{AgentPhilosophy, MetricsCollector};
//!
//! let collector = MetricsCollector::new();
//! collector.record_agent_created(AgentPhilosophy::React, "initializing");
//! collector.record_agent_initialization(AgentPhilosophy::React, 1.5);
//! collector.record_tool_execution("web_search", 1.5, "failed", Some("TimeoutError"));
//! let text = collector.encode_text();
//! assert!(text.contains("agentcore_agents_active{philosophy=\"react\"} 1\n"));
//! assert!(text.contains("agentcore_tool_errors_total{tool_id=\"web_search\",error_type=\"TimeoutError\"} 1\n"));
//! ```

pub mod builtin;
pub mod custom;
pub mod philosophy;
pub mod snapshot;
#[cfg(feature = "system-monitor")]
#[cfg_attr(docsrs, doc(cfg(feature = "system-monitor")))]
pub mod system;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

pub use builtin::{BuiltinMetric, BUILTIN_METRICS, REJECTED_METRIC};
pub use custom::{custom_metric_name, CustomFamily, CustomMetric, CustomSeries, MetricType};
pub use philosophy::{AgentPhilosophy, ParsePhilosophyError};
pub use snapshot::{
    AgentsSummary, BucketSnapshot, FamilySnapshot, MetricsSnapshot, QuantileSnapshot, SampleValue,
    SeriesSnapshot, SystemSummary,
};
#[cfg(feature = "system-monitor")]
pub use system::SystemMonitor;

use crate::registry::{FamilyOptions, Metric, OVERFLOW_METRIC};
use crate::{Error, Family, Registry, SeriesRef};
use builtin::BuiltinMetrics;
use snapshot::History;

/// The default number of snapshots [`MetricsCollector::get_metric_history`] keeps.
///
/// ```
/// use agentcore_telemetry::agent::DEFAULT_HISTORY_CAPACITY;
/// use agentcore_telemetry::CollectorConfig;
///
/// assert_eq!(CollectorConfig::default().history_capacity, DEFAULT_HISTORY_CAPACITY);
/// ```
pub const DEFAULT_HISTORY_CAPACITY: usize = 100;

/// The default cardinality cap of each of the collector's families.
///
/// ```
/// use agentcore_telemetry::agent::DEFAULT_MAX_SERIES_PER_FAMILY;
/// use agentcore_telemetry::CollectorConfig;
///
/// assert_eq!(CollectorConfig::default().max_series_per_family, DEFAULT_MAX_SERIES_PER_FAMILY);
/// ```
pub const DEFAULT_MAX_SERIES_PER_FAMILY: usize = 10_000;

/// The value [`MetricsCollector::set_runtime_info`] gives a key it was not given.
///
/// ```
/// use agentcore_telemetry::agent::UNKNOWN_INFO_VALUE;
/// use agentcore_telemetry::MetricsCollector;
///
/// let c = MetricsCollector::new();
/// c.set_runtime_info([("version", "1.0.0")]);
/// assert!(c.encode_text().contains(&format!("platform=\"{UNKNOWN_INFO_VALUE}\"")));
/// ```
pub const UNKNOWN_INFO_VALUE: &str = "unknown";

/// How a [`MetricsCollector`] is set up.
///
/// ```
/// use agentcore_telemetry::{CollectorConfig, MetricsCollector};
///
/// let config = CollectorConfig { max_series_per_family: 1_000, ..CollectorConfig::default() };
/// assert_eq!(config.history_capacity, 100);
/// let collector = MetricsCollector::with_config(config);
/// assert_eq!(collector.config().max_series_per_family, 1_000);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectorConfig {
    /// Cardinality cap of every family, built-in and custom (default
    /// [`DEFAULT_MAX_SERIES_PER_FAMILY`]); protects memory when per-agent series are not removed.
    pub max_series_per_family: usize,
    /// How many snapshots the history ring keeps (default [`DEFAULT_HISTORY_CAPACITY`]); `0`
    /// keeps none.
    pub history_capacity: usize,
}

impl Default for CollectorConfig {
    fn default() -> Self {
        CollectorConfig {
            max_series_per_family: DEFAULT_MAX_SERIES_PER_FAMILY,
            history_capacity: DEFAULT_HISTORY_CAPACITY,
        }
    }
}

/// A duration parameter: `f64` seconds, or a [`Duration`].
///
/// ```
/// use agentcore_telemetry::agent::IntoSeconds;
/// use std::time::Duration;
///
/// assert_eq!(1.5.into_seconds(), 1.5);
/// assert_eq!(Duration::from_millis(250).into_seconds(), 0.25);
/// ```
pub trait IntoSeconds {
    /// The duration in seconds.
    fn into_seconds(self) -> f64;
}

impl IntoSeconds for f64 {
    #[inline]
    fn into_seconds(self) -> f64 {
        self
    }
}

impl IntoSeconds for Duration {
    #[inline]
    fn into_seconds(self) -> f64 {
        self.as_secs_f64()
    }
}

#[inline(always)]
fn bool_label(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

/// Prometheus metrics for an agent runtime: one method per call of the specification. Cheap to
/// clone (clones share everything).
///
/// Build independent collectors (each with its own [`Registry`]) with [`MetricsCollector::new`]
/// or [`MetricsCollector::with_config`]; use [`get_metrics_collector`] for the process-wide one.
/// See the [module documentation](self) for the conventions.
///
/// ```
/// use agentcore_telemetry::{AgentPhilosophy, MetricsCollector};
///
/// let collector = MetricsCollector::new();
/// collector.update_resource_usage("agent-123", AgentPhilosophy::React, 45.5, 256.0);
/// assert!(collector
///     .encode_text()
///     .contains("agentcore_agent_cpu_percent{agent_id=\"agent-123\",philosophy=\"react\"} 45.5\n"));
/// collector.remove_agent("agent-123");
/// assert!(!collector.encode_text().contains("agent-123"));
/// ```
#[derive(Clone)]
pub struct MetricsCollector {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    config: CollectorConfig,
    m: BuiltinMetrics,
    /// Custom metrics by full name. Only creation and look-up take it, never recording.
    custom: RwLock<HashMap<String, CustomMetric>>,
    /// Only snapshot takers and history readers take it, never recording.
    history: Mutex<History>,
    /// Serialises `set_runtime_info` calls, so two concurrent ones leave one info series.
    runtime_info: Mutex<()>,
}

impl Default for MetricsCollector {
    fn default() -> Self {
        MetricsCollector::new()
    }
}

impl std::fmt::Debug for MetricsCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsCollector")
            .field("config", &self.inner.config)
            .field("registry", &self.inner.registry)
            .finish()
    }
}

/// The process-wide collector, created on first use with the default configuration and its own
/// process-wide [`Registry`] (reach it with [`MetricsCollector::get_registry`]).
///
/// ```
/// use agentcore_telemetry::get_metrics_collector;
///
/// let a = get_metrics_collector();
/// let b = get_metrics_collector();
/// assert!(std::ptr::eq(a, b));
/// ```
pub fn get_metrics_collector() -> &'static MetricsCollector {
    static GLOBAL: OnceLock<MetricsCollector> = OnceLock::new();
    GLOBAL.get_or_init(MetricsCollector::new)
}

impl MetricsCollector {
    /// A collector with the default configuration and a registry of its own.
    ///
    /// # Panics
    /// Only if the process-wide slot arena has no room for the five unlabelled series (see
    /// [`Error::SlotArenaExhausted`]); [`MetricsCollector::with_registry`] returns that error
    /// instead.
    ///
    /// ```
    /// use agentcore_telemetry::MetricsCollector;
    ///
    /// let collector = MetricsCollector::new();
    /// assert!(collector.get_registry().family_names().contains(&"agentcore_agents_total".to_string()));
    /// ```
    pub fn new() -> MetricsCollector {
        MetricsCollector::with_config(CollectorConfig::default())
    }

    /// A collector with `config` and a registry of its own.
    ///
    /// # Panics
    /// As [`MetricsCollector::new`].
    ///
    /// ```
    /// use agentcore_telemetry::{CollectorConfig, MetricsCollector};
    ///
    /// let collector = MetricsCollector::with_config(CollectorConfig { history_capacity: 5, ..Default::default() });
    /// assert_eq!(collector.config().history_capacity, 5);
    /// ```
    pub fn with_config(config: CollectorConfig) -> MetricsCollector {
        match MetricsCollector::with_registry(Registry::new(), config) {
            Ok(c) => c,
            Err(e) => panic!("registering the collector's families into a fresh registry: {e}"),
        }
    }

    /// A collector registering its families into `registry` (which must not hold any of the
    /// names yet: [`Error::DuplicateMetric`] otherwise).
    ///
    /// ```
    /// use agentcore_telemetry::{CollectorConfig, MetricsCollector, Registry};
    ///
    /// let registry = Registry::new();
    /// let collector = MetricsCollector::with_registry(registry.clone(), CollectorConfig::default()).unwrap();
    /// collector.record_gc_collection(1.0);
    /// assert!(registry.encode_text().contains("agentcore_gc_collections_total 1\n"));
    /// // A second collector cannot take the same names.
    /// assert!(MetricsCollector::with_registry(registry, CollectorConfig::default()).is_err());
    /// ```
    pub fn with_registry(
        registry: Registry,
        config: CollectorConfig,
    ) -> Result<MetricsCollector, Error> {
        let m = BuiltinMetrics::register(&registry, config.max_series_per_family)?;
        // The telemetry's own memory and reclamation metrics, unless the registry has them.
        match registry.register_self_metrics() {
            Ok(()) | Err(Error::DuplicateMetric { .. }) => {}
            Err(e) => return Err(e),
        }
        Ok(MetricsCollector {
            inner: Arc::new(Inner {
                history: Mutex::new(History::new(config.history_capacity)),
                registry,
                config,
                m,
                custom: RwLock::new(HashMap::new()),
                runtime_info: Mutex::new(()),
            }),
        })
    }

    /// The configuration.
    ///
    /// ```
    /// use agentcore_telemetry::MetricsCollector;
    ///
    /// assert_eq!(MetricsCollector::new().config().history_capacity, 100);
    /// ```
    pub fn config(&self) -> &CollectorConfig {
        &self.inner.config
    }

    /// The registry the collector's families live in (for an exposition endpoint).
    ///
    /// ```
    /// use agentcore_telemetry::MetricsCollector;
    ///
    /// let collector = MetricsCollector::new();
    /// collector.record_error("ValidationError", "sandbox");
    /// let text = collector.get_registry().encode_text();
    /// assert!(text.contains("agentcore_errors_total{error_type=\"ValidationError\",component=\"sandbox\"} 1\n"));
    /// ```
    pub fn get_registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// The Prometheus text exposition (format 0.0.4, [`CONTENT_TYPE`](crate::CONTENT_TYPE)) of
    /// the collector's registry.
    ///
    /// ```
    /// use agentcore_telemetry::MetricsCollector;
    ///
    /// let text = MetricsCollector::new().encode_text();
    /// assert!(text.contains("# TYPE agentcore_system_cpu_percent gauge\n"));
    /// ```
    pub fn encode_text(&self) -> String {
        self.inner.registry.encode_text()
    }

    #[inline(always)]
    fn series<'a, M: Metric>(
        &self,
        family: &'a Family<M>,
        values: &[&str],
    ) -> Option<SeriesRef<'a, M>> {
        match family.with_label_values(values) {
            Ok(s) => Some(s),
            Err(_) => {
                self.reject(family.name());
                None
            }
        }
    }

    #[cold]
    #[inline(never)]
    fn reject(&self, metric: &str) {
        self.inner.m.reject(metric);
    }

    /// A duration in seconds if it is finite and non-negative; otherwise counts a refusal.
    #[inline(always)]
    fn duration(&self, metric: &str, d: impl IntoSeconds) -> Option<f64> {
        let s = d.into_seconds();
        if s.is_finite() && s >= 0.0 {
            Some(s)
        } else {
            self.reject(metric);
            None
        }
    }

    /// A gauge value if it is finite; otherwise counts a refusal.
    #[inline(always)]
    fn finite(&self, metric: &str, v: f64) -> Option<f64> {
        if v.is_finite() {
            Some(v)
        } else {
            self.reject(metric);
            None
        }
    }

    // -----------------------------------------------------------------------------------------
    // Agent lifecycle.
    // -----------------------------------------------------------------------------------------

    /// An agent was created: counts `agentcore_agents_total{philosophy, status}` and increments
    /// `agentcore_agents_active{philosophy}`.
    ///
    /// ```
    /// use agentcore_telemetry::{AgentPhilosophy, MetricsCollector};
    ///
    /// let c = MetricsCollector::new();
    /// c.record_agent_created(AgentPhilosophy::React, "initializing");
    /// let text = c.encode_text();
    /// assert!(text.contains("agentcore_agents_total{philosophy=\"react\",status=\"initializing\"} 1\n"));
    /// assert!(text.contains("agentcore_agents_active{philosophy=\"react\"} 1\n"));
    /// ```
    #[inline]
    pub fn record_agent_created(&self, philosophy: AgentPhilosophy, status: &str) {
        let m = &self.inner.m;
        let p = philosophy.as_str();
        if let Some(c) = self.series(&m.agents_total, &[p, status]) {
            c.inc();
        }
        if let Some(g) = self.series(&m.agents_active, &[p]) {
            g.inc();
        }
    }

    /// An agent finished with `status` (`completed`, `failed`, `terminated`): counts
    /// `agentcore_agents_total{philosophy, status}` and decrements
    /// `agentcore_agents_active{philosophy}`, never below zero.
    ///
    /// ```
    /// use agentcore_telemetry::{AgentPhilosophy, MetricsCollector};
    ///
    /// let c = MetricsCollector::new();
    /// c.record_agent_created(AgentPhilosophy::React, "initializing");
    /// c.record_agent_completed(AgentPhilosophy::React, "completed");
    /// c.record_agent_completed(AgentPhilosophy::React, "completed"); // a stray extra one
    /// let text = c.encode_text();
    /// assert!(text.contains("agentcore_agents_total{philosophy=\"react\",status=\"completed\"} 2\n"));
    /// assert!(text.contains("agentcore_agents_active{philosophy=\"react\"} 0\n"));
    /// ```
    #[inline]
    pub fn record_agent_completed(&self, philosophy: AgentPhilosophy, status: &str) {
        let m = &self.inner.m;
        let p = philosophy.as_str();
        if let Some(c) = self.series(&m.agents_total, &[p, status]) {
            c.inc();
        }
        if let Some(g) = self.series(&m.agents_active, &[p]) {
            g.sub_floored(1.0, 0.0);
        }
    }

    /// Observes an agent's initialization duration in
    /// `agentcore_agent_initialization_seconds{philosophy}`.
    ///
    /// ```
    /// use agentcore_telemetry::{AgentPhilosophy, MetricsCollector};
    ///
    /// let c = MetricsCollector::new();
    /// c.record_agent_initialization(AgentPhilosophy::React, 1.5);
    /// c.record_agent_initialization(AgentPhilosophy::React, f64::NAN); // refused and counted
    /// let text = c.encode_text();
    /// assert!(text.contains("agentcore_agent_initialization_seconds_count{philosophy=\"react\"} 1\n"));
    /// assert!(text.contains("agentcore_agent_initialization_seconds_sum{philosophy=\"react\"} 1.5\n"));
    /// ```
    #[inline]
    pub fn record_agent_initialization(
        &self,
        philosophy: AgentPhilosophy,
        duration_seconds: impl IntoSeconds,
    ) {
        let f = &self.inner.m.agent_initialization_seconds;
        if let Some(s) = self.duration(f.name(), duration_seconds) {
            if let Some(h) = self.series(f, &[philosophy.as_str()]) {
                h.observe(s);
            }
        }
    }

    /// Observes an agent's execution duration in `agentcore_agent_execution_seconds{philosophy}`.
    ///
    /// ```
    /// use agentcore_telemetry::{AgentPhilosophy, MetricsCollector};
    /// use std::time::Duration;
    ///
    /// let c = MetricsCollector::new();
    /// c.record_agent_execution(AgentPhilosophy::ChainOfThought, 30.5);
    /// c.record_agent_execution(AgentPhilosophy::ChainOfThought, Duration::from_millis(500));
    /// assert!(c.encode_text().contains("agentcore_agent_execution_seconds_sum{philosophy=\"chain_of_thought\"} 31\n"));
    /// ```
    #[inline]
    pub fn record_agent_execution(
        &self,
        philosophy: AgentPhilosophy,
        duration_seconds: impl IntoSeconds,
    ) {
        let f = &self.inner.m.agent_execution_seconds;
        if let Some(s) = self.duration(f.name(), duration_seconds) {
            if let Some(h) = self.series(f, &[philosophy.as_str()]) {
                h.observe(s);
            }
        }
    }

    /// Counts a state transition in
    /// `agentcore_agent_state_transitions_total{from_state, to_state, philosophy}`.
    ///
    /// ```
    /// use agentcore_telemetry::{AgentPhilosophy, MetricsCollector};
    ///
    /// let c = MetricsCollector::new();
    /// c.record_state_transition("initializing", "running", AgentPhilosophy::React);
    /// assert!(c.encode_text().contains(
    ///     "agentcore_agent_state_transitions_total{from_state=\"initializing\",to_state=\"running\",philosophy=\"react\"} 1\n"
    /// ));
    /// ```
    #[inline]
    pub fn record_state_transition(
        &self,
        from_state: &str,
        to_state: &str,
        philosophy: AgentPhilosophy,
    ) {
        let m = &self.inner.m;
        if let Some(c) = self.series(
            &m.agent_state_transitions_total,
            &[from_state, to_state, philosophy.as_str()],
        ) {
            c.inc();
        }
    }

    // -----------------------------------------------------------------------------------------
    // Resources.
    // -----------------------------------------------------------------------------------------

    /// Sets an agent's CPU (percent) and memory (MB) gauges,
    /// `agentcore_agent_cpu_percent{agent_id, philosophy}` and
    /// `agentcore_agent_memory_mb{agent_id, philosophy}`. A non-finite value is refused.
    /// Remove the agent's series with [`MetricsCollector::remove_agent`] when it ends.
    ///
    /// ```
    /// use agentcore_telemetry::{AgentPhilosophy, MetricsCollector};
    ///
    /// let c = MetricsCollector::new();
    /// c.update_resource_usage("agent-123", AgentPhilosophy::React, 45.5, 256.0);
    /// assert!(c.encode_text().contains("agentcore_agent_memory_mb{agent_id=\"agent-123\",philosophy=\"react\"} 256\n"));
    /// ```
    #[inline]
    pub fn update_resource_usage(
        &self,
        agent_id: &str,
        philosophy: AgentPhilosophy,
        cpu_percent: f64,
        memory_mb: f64,
    ) {
        let m = &self.inner.m;
        let labels = [agent_id, philosophy.as_str()];
        if let Some(v) = self.finite(m.agent_cpu_percent.name(), cpu_percent) {
            if let Some(g) = self.series(&m.agent_cpu_percent, &labels) {
                g.set(v);
            }
        }
        if let Some(v) = self.finite(m.agent_memory_mb.name(), memory_mb) {
            if let Some(g) = self.series(&m.agent_memory_mb, &labels) {
                g.set(v);
            }
        }
    }

    /// A container was created in `duration_seconds`: observes
    /// `agentcore_container_creation_seconds{philosophy, warm_start}` (`warm_start` is `"true"`
    /// or `"false"`) and counts `agentcore_warm_starts_total{philosophy}` or
    /// `agentcore_cold_starts_total{philosophy}`. An invalid duration is refused; the start is
    /// still counted.
    ///
    /// ```
    /// use agentcore_telemetry::{AgentPhilosophy, MetricsCollector};
    ///
    /// let c = MetricsCollector::new();
    /// c.record_container_creation(AgentPhilosophy::React, 0.05, true);
    /// let text = c.encode_text();
    /// assert!(text.contains("agentcore_warm_starts_total{philosophy=\"react\"} 1\n"));
    /// assert!(text.contains("agentcore_container_creation_seconds_count{philosophy=\"react\",warm_start=\"true\"} 1\n"));
    /// ```
    #[inline]
    pub fn record_container_creation(
        &self,
        philosophy: AgentPhilosophy,
        duration_seconds: impl IntoSeconds,
        warm_start: bool,
    ) {
        let m = &self.inner.m;
        let p = philosophy.as_str();
        let f = &m.container_creation_seconds;
        if let Some(s) = self.duration(f.name(), duration_seconds) {
            if let Some(h) = self.series(f, &[p, bool_label(warm_start)]) {
                h.observe(s);
            }
        }
        let starts = if warm_start {
            &m.warm_starts_total
        } else {
            &m.cold_starts_total
        };
        if let Some(c) = self.series(starts, &[p]) {
            c.inc();
        }
    }

    /// Sets `agentcore_system_cpu_percent`, `agentcore_system_memory_percent` and
    /// `agentcore_system_memory_available_mb`. A non-finite value is refused. The
    /// [`SystemMonitor`] calls it from the OS's figures.
    ///
    /// ```
    /// use agentcore_telemetry::MetricsCollector;
    ///
    /// let c = MetricsCollector::new();
    /// c.update_system_resources(65.5, 72.3, 4096.0);
    /// let text = c.encode_text();
    /// assert!(text.contains("agentcore_system_cpu_percent 65.5\n"));
    /// assert!(text.contains("agentcore_system_memory_available_mb 4096\n"));
    /// ```
    #[inline]
    pub fn update_system_resources(
        &self,
        cpu_percent: f64,
        memory_percent: f64,
        memory_available_mb: f64,
    ) {
        let m = &self.inner.m;
        for (gauge, name, v) in [
            (&m.system_cpu_percent, BUILTIN_METRICS[8].name, cpu_percent),
            (
                &m.system_memory_percent,
                BUILTIN_METRICS[9].name,
                memory_percent,
            ),
            (
                &m.system_memory_available_mb,
                BUILTIN_METRICS[10].name,
                memory_available_mb,
            ),
        ] {
            if let Some(v) = self.finite(name, v) {
                gauge.set(v);
            }
        }
    }

    /// Sets `agentcore_container_pool_size{philosophy}` (the specification lists the gauge
    /// without a method).
    ///
    /// ```
    /// use agentcore_telemetry::{AgentPhilosophy, MetricsCollector};
    ///
    /// let c = MetricsCollector::new();
    /// c.set_container_pool_size(AgentPhilosophy::MultiAgent, 8);
    /// assert!(c.encode_text().contains("agentcore_container_pool_size{philosophy=\"multi_agent\"} 8\n"));
    /// ```
    #[inline]
    pub fn set_container_pool_size(&self, philosophy: AgentPhilosophy, size: usize) {
        if let Some(g) = self.series(&self.inner.m.container_pool_size, &[philosophy.as_str()]) {
            g.set(size as f64);
        }
    }

    // -----------------------------------------------------------------------------------------
    // Performance.
    // -----------------------------------------------------------------------------------------

    /// A cache access: counts `agentcore_cache_hits_total{cache_type}` or
    /// `agentcore_cache_misses_total{cache_type}` and sets `agentcore_cache_size{cache_type}` to
    /// `current_size`.
    ///
    /// ```
    /// use agentcore_telemetry::MetricsCollector;
    ///
    /// let c = MetricsCollector::new();
    /// c.record_cache_access("tool_metadata", true, 150);
    /// c.record_cache_access("tool_metadata", false, 151);
    /// let text = c.encode_text();
    /// assert!(text.contains("agentcore_cache_hits_total{cache_type=\"tool_metadata\"} 1\n"));
    /// assert!(text.contains("agentcore_cache_misses_total{cache_type=\"tool_metadata\"} 1\n"));
    /// assert!(text.contains("agentcore_cache_size{cache_type=\"tool_metadata\"} 151\n"));
    /// ```
    #[inline]
    pub fn record_cache_access(&self, cache_type: &str, hit: bool, current_size: usize) {
        let m = &self.inner.m;
        let counter = if hit {
            &m.cache_hits_total
        } else {
            &m.cache_misses_total
        };
        if let Some(c) = self.series(counter, &[cache_type]) {
            c.inc();
        }
        if let Some(g) = self.series(&m.cache_size, &[cache_type]) {
            g.set(current_size as f64);
        }
    }

    /// A garbage collection released `memory_released_mb`: counts
    /// `agentcore_gc_collections_total` and adds the amount to
    /// `agentcore_memory_released_mb_total`. A negative, NaN or infinite amount is refused; the
    /// collection is still counted.
    ///
    /// ```
    /// use agentcore_telemetry::MetricsCollector;
    ///
    /// let c = MetricsCollector::new();
    /// c.record_gc_collection(25.5);
    /// c.record_gc_collection(-1.0); // amount refused and counted
    /// let text = c.encode_text();
    /// assert!(text.contains("agentcore_gc_collections_total 2\n"));
    /// assert!(text.contains("agentcore_memory_released_mb_total 25.5\n"));
    /// ```
    #[inline]
    pub fn record_gc_collection(&self, memory_released_mb: f64) {
        let m = &self.inner.m;
        m.gc_collections_total.inc();
        if m.memory_released_mb_total.add(memory_released_mb).is_err() {
            self.reject(BUILTIN_METRICS[18].name);
        }
    }

    // -----------------------------------------------------------------------------------------
    // Philosophy-specific.
    // -----------------------------------------------------------------------------------------

    /// Observes a ReAct run's iteration count in `agentcore_react_iterations{agent_id}`.
    ///
    /// ```
    /// use agentcore_telemetry::MetricsCollector;
    ///
    /// let c = MetricsCollector::new();
    /// c.record_react_iterations("agent-123", 5);
    /// let text = c.encode_text();
    /// assert!(text.contains("agentcore_react_iterations_bucket{agent_id=\"agent-123\",le=\"5\"} 1\n"));
    /// assert!(text.contains("agentcore_react_iterations_bucket{agent_id=\"agent-123\",le=\"3\"} 0\n"));
    /// ```
    #[inline]
    pub fn record_react_iterations(&self, agent_id: &str, iterations: u64) {
        if let Some(h) = self.series(&self.inner.m.react_iterations, &[agent_id]) {
            h.observe(iterations as f64);
        }
    }

    /// Observes a chain-of-thought run's step count in `agentcore_cot_steps{agent_id}`.
    ///
    /// ```
    /// use agentcore_telemetry::MetricsCollector;
    ///
    /// let c = MetricsCollector::new();
    /// c.record_cot_steps("agent-456", 7);
    /// assert!(c.encode_text().contains("agentcore_cot_steps_sum{agent_id=\"agent-456\"} 7\n"));
    /// ```
    #[inline]
    pub fn record_cot_steps(&self, agent_id: &str, steps: u64) {
        if let Some(h) = self.series(&self.inner.m.cot_steps, &[agent_id]) {
            h.observe(steps as f64);
        }
    }

    /// Counts a message between agents in `agentcore_multi_agent_messages_total{message_type}`.
    ///
    /// ```
    /// use agentcore_telemetry::MetricsCollector;
    ///
    /// let c = MetricsCollector::new();
    /// c.record_multi_agent_message("direct");
    /// assert!(c.encode_text().contains("agentcore_multi_agent_messages_total{message_type=\"direct\"} 1\n"));
    /// ```
    #[inline]
    pub fn record_multi_agent_message(&self, message_type: &str) {
        if let Some(c) = self.series(&self.inner.m.multi_agent_messages_total, &[message_type]) {
            c.inc();
        }
    }

    /// Counts a consensus round's result in `agentcore_multi_agent_consensus_total{result}`.
    ///
    /// ```
    /// use agentcore_telemetry::MetricsCollector;
    ///
    /// let c = MetricsCollector::new();
    /// c.record_consensus("reached");
    /// assert!(c.encode_text().contains("agentcore_multi_agent_consensus_total{result=\"reached\"} 1\n"));
    /// ```
    #[inline]
    pub fn record_consensus(&self, result: &str) {
        if let Some(c) = self.series(&self.inner.m.multi_agent_consensus_total, &[result]) {
            c.inc();
        }
    }

    /// Counts an autonomous agent's goal in `agentcore_autonomous_goals_total{status, priority}`.
    ///
    /// ```
    /// use agentcore_telemetry::MetricsCollector;
    ///
    /// let c = MetricsCollector::new();
    /// c.record_autonomous_goal("active", "high");
    /// assert!(c.encode_text().contains("agentcore_autonomous_goals_total{status=\"active\",priority=\"high\"} 1\n"));
    /// ```
    #[inline]
    pub fn record_autonomous_goal(&self, status: &str, priority: &str) {
        if let Some(c) = self.series(&self.inner.m.autonomous_goals_total, &[status, priority]) {
            c.inc();
        }
    }

    /// Counts an autonomous agent's decision in `agentcore_autonomous_decisions_total{agent_id}`.
    ///
    /// ```
    /// use agentcore_telemetry::MetricsCollector;
    ///
    /// let c = MetricsCollector::new();
    /// c.record_autonomous_decision("autonomous-agent-1");
    /// assert!(c.encode_text().contains("agentcore_autonomous_decisions_total{agent_id=\"autonomous-agent-1\"} 1\n"));
    /// ```
    #[inline]
    pub fn record_autonomous_decision(&self, agent_id: &str) {
        if let Some(c) = self.series(&self.inner.m.autonomous_decisions_total, &[agent_id]) {
            c.inc();
        }
    }

    // -----------------------------------------------------------------------------------------
    // Tools and errors.
    // -----------------------------------------------------------------------------------------

    /// A tool ran: counts `agentcore_tool_executions_total{tool_id, status}`, observes
    /// `agentcore_tool_execution_seconds{tool_id}` and, with an `error_type`, counts
    /// `agentcore_tool_errors_total{tool_id, error_type}`. An invalid duration is refused; the
    /// execution is still counted.
    ///
    /// ```
    /// use agentcore_telemetry::MetricsCollector;
    ///
    /// let c = MetricsCollector::new();
    /// c.record_tool_execution("calculator", 0.25, "success", None);
    /// c.record_tool_execution("web_search", 1.5, "failed", Some("TimeoutError"));
    /// let text = c.encode_text();
    /// assert!(text.contains("agentcore_tool_executions_total{tool_id=\"calculator\",status=\"success\"} 1\n"));
    /// assert!(text.contains("agentcore_tool_errors_total{tool_id=\"web_search\",error_type=\"TimeoutError\"} 1\n"));
    /// assert!(!text.contains("agentcore_tool_errors_total{tool_id=\"calculator\""));
    /// ```
    #[inline]
    pub fn record_tool_execution(
        &self,
        tool_id: &str,
        duration_seconds: impl IntoSeconds,
        status: &str,
        error_type: Option<&str>,
    ) {
        let m = &self.inner.m;
        if let Some(c) = self.series(&m.tool_executions_total, &[tool_id, status]) {
            c.inc();
        }
        let f = &m.tool_execution_seconds;
        if let Some(s) = self.duration(f.name(), duration_seconds) {
            if let Some(h) = self.series(f, &[tool_id]) {
                h.observe(s);
            }
        }
        if let Some(error_type) = error_type {
            if let Some(c) = self.series(&m.tool_errors_total, &[tool_id, error_type]) {
                c.inc();
            }
        }
    }

    /// Counts an error in `agentcore_errors_total{error_type, component}`.
    ///
    /// ```
    /// use agentcore_telemetry::MetricsCollector;
    ///
    /// let c = MetricsCollector::new();
    /// c.record_error("ValidationError", "sandbox");
    /// assert!(c.encode_text().contains("agentcore_errors_total{error_type=\"ValidationError\",component=\"sandbox\"} 1\n"));
    /// ```
    #[inline]
    pub fn record_error(&self, error_type: &str, component: &str) {
        if let Some(c) = self.series(&self.inner.m.errors_total, &[error_type, component]) {
            c.inc();
        }
    }

    /// Counts an agent failure in `agentcore_agent_failures_total{philosophy, failure_reason}`
    /// and decrements `agentcore_agents_active{philosophy}`, never below zero (see the
    /// [module documentation](self)).
    ///
    /// ```
    /// use agentcore_telemetry::{AgentPhilosophy, MetricsCollector};
    ///
    /// let c = MetricsCollector::new();
    /// c.record_agent_failure(AgentPhilosophy::React, "execution_timeout");
    /// assert!(c.encode_text().contains(
    ///     "agentcore_agent_failures_total{philosophy=\"react\",failure_reason=\"execution_timeout\"} 1\n"
    /// ));
    /// ```
    #[inline]
    pub fn record_agent_failure(&self, philosophy: AgentPhilosophy, failure_reason: &str) {
        let m = &self.inner.m;
        let p = philosophy.as_str();
        if let Some(c) = self.series(&m.agent_failures_total, &[p, failure_reason]) {
            c.inc();
        }
        if let Some(g) = self.series(&m.agents_active, &[p]) {
            g.sub_floored(1.0, 0.0);
        }
    }

    /// Replaces `agentcore_runtime_info{version, environment, platform}` (value 1) with the
    /// given keys. A key not given is exposed as [`UNKNOWN_INFO_VALUE`] (`"unknown"`); other keys
    /// are ignored (an info family's label names are fixed). A scrape running concurrently may
    /// see no info series for that instant.
    ///
    /// ```
    /// use agentcore_telemetry::MetricsCollector;
    ///
    /// let c = MetricsCollector::new();
    /// c.set_runtime_info([("version", "1.0.0"), ("environment", "production"), ("platform", "linux")]);
    /// c.set_runtime_info([("version", "1.0.1")]);
    /// let text = c.encode_text();
    /// assert!(text.contains("agentcore_runtime_info{version=\"1.0.1\",environment=\"unknown\",platform=\"unknown\"} 1\n"));
    /// assert!(!text.contains("1.0.0"));
    /// ```
    pub fn set_runtime_info<I, K, V>(&self, info: I)
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let family = &self.inner.m.runtime_info;
        let mut values: [String; 3] = Default::default();
        let mut given = [false; 3];
        for (k, v) in info {
            if let Some(i) = family.label_names().iter().position(|n| **n == *k.as_ref()) {
                values[i] = v.as_ref().to_string();
                given[i] = true;
            }
        }
        for (value, given) in values.iter_mut().zip(given) {
            if !given {
                *value = UNKNOWN_INFO_VALUE.to_string();
            }
        }
        let _serial = self
            .inner
            .runtime_info
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        family.clear();
        if family.with_label_values(&values).is_err() {
            self.reject(family.name());
        }
    }

    // -----------------------------------------------------------------------------------------
    // Per-agent series and refusals.
    // -----------------------------------------------------------------------------------------

    /// Drops every series of `agent_id` (CPU, memory, ReAct iterations, CoT steps, autonomous
    /// decisions); returns how many were removed. Call it when an agent ends.
    ///
    /// ```
    /// use agentcore_telemetry::{AgentPhilosophy, MetricsCollector};
    ///
    /// let c = MetricsCollector::new();
    /// c.update_resource_usage("agent-1", AgentPhilosophy::React, 1.0, 2.0);
    /// c.record_react_iterations("agent-1", 3);
    /// assert_eq!(c.remove_agent("agent-1"), 3);
    /// assert_eq!(c.remove_agent("agent-1"), 0);
    /// ```
    pub fn remove_agent(&self, agent_id: &str) -> usize {
        self.inner
            .m
            .per_agent()
            .iter()
            .map(|f| f.remove_agent(agent_id))
            .sum()
    }

    /// How many values were refused for `metric` (a full name), as counted in
    /// `agentcore_telemetry_rejected_values_total{metric}`.
    ///
    /// ```
    /// use agentcore_telemetry::{AgentPhilosophy, MetricsCollector};
    ///
    /// let c = MetricsCollector::new();
    /// c.record_agent_execution(AgentPhilosophy::React, -1.0);
    /// assert_eq!(c.rejected_values("agentcore_agent_execution_seconds"), 1);
    /// ```
    pub fn rejected_values(&self, metric: &str) -> u64 {
        self.inner
            .m
            .rejected
            .get(&[metric])
            .map_or(0, |c| c.get() as u64)
    }

    // -----------------------------------------------------------------------------------------
    // Custom metrics.
    // -----------------------------------------------------------------------------------------

    /// Creates (or returns) a custom metric named `agentcore_<name>` (see
    /// [`custom_metric_name`]) with the given type, help text and label names.
    ///
    /// Re-creating a name with the same type, label names and buckets/settings returns the
    /// existing metric. Errors: an invalid metric or label name ([`Error::InvalidMetricName`],
    /// [`Error::InvalidLabelName`], [`Error::DuplicateLabelName`]), another shape under the same
    /// name ([`Error::ShapeMismatch`]), a name of a built-in metric or one clashing with a sample
    /// name of another family ([`Error::DuplicateMetric`]), invalid summary settings.
    ///
    /// ```
    /// use agentcore_telemetry::agent::MetricType;
    /// use agentcore_telemetry::{Error, MetricsCollector};
    ///
    /// let c = MetricsCollector::new();
    /// let a = c.create_custom_metric("user_actions", MetricType::Counter, "User actions performed", &["action_type", "user_role"]).unwrap();
    /// a.labels(&["agent_create", "admin"]).unwrap().inc();
    /// let again = c.create_custom_metric("agentcore_user_actions", MetricType::Counter, "User actions performed", &["action_type", "user_role"]).unwrap();
    /// assert_eq!(again.labels(&["agent_create", "admin"]).unwrap().get(), Some(1.0));
    /// assert!(matches!(
    ///     c.create_custom_metric("user_actions", MetricType::Gauge, "x", &[]),
    ///     Err(Error::ShapeMismatch { .. })
    /// ));
    /// assert!(matches!(
    ///     c.create_custom_metric("agents_active", MetricType::Gauge, "x", &["philosophy"]),
    ///     Err(Error::DuplicateMetric { .. })
    /// ));
    /// ```
    pub fn create_custom_metric(
        &self,
        name: &str,
        metric_type: MetricType,
        description: &str,
        labels: &[&str],
    ) -> Result<CustomMetric, Error> {
        let full = custom_metric_name(name);
        let builtin = BUILTIN_METRICS.iter().any(|b| b.name == full)
            || full == REJECTED_METRIC
            || full == OVERFLOW_METRIC;
        if builtin {
            return Err(Error::DuplicateMetric { name: full });
        }
        let registry = &self.inner.registry;
        let options = FamilyOptions {
            max_series: self.inner.config.max_series_per_family,
        };
        let mut custom = self.inner.custom.write().unwrap_or_else(|e| e.into_inner());
        let family =
            match metric_type {
                MetricType::Counter => CustomFamily::Counter(registry.get_or_register(
                    &full,
                    description,
                    labels,
                    (),
                    options,
                )?),
                MetricType::Gauge => CustomFamily::Gauge(registry.get_or_register(
                    &full,
                    description,
                    labels,
                    (),
                    options,
                )?),
                MetricType::Histogram(buckets) => CustomFamily::Histogram(
                    registry.get_or_register(&full, description, labels, buckets, options)?,
                ),
                MetricType::Summary(config) => {
                    config.validate()?;
                    CustomFamily::Summary(registry.get_or_register(
                        &full,
                        description,
                        labels,
                        config,
                        options,
                    )?)
                }
                MetricType::Info => CustomFamily::Info(registry.get_or_register(
                    &full,
                    description,
                    labels,
                    (),
                    options,
                )?),
            };
        let metric = CustomMetric::new(family, self.inner.m.rejected.clone());
        custom.insert(full, metric.clone());
        Ok(metric)
    }

    /// The custom metric named `name` (with or without the `agentcore_` prefix), if created.
    ///
    /// ```
    /// use agentcore_telemetry::agent::MetricType;
    /// use agentcore_telemetry::MetricsCollector;
    ///
    /// let c = MetricsCollector::new();
    /// c.create_custom_metric("user_actions", MetricType::Counter, "User actions", &[]).unwrap();
    /// assert_eq!(c.get_custom_metric("user_actions").unwrap().name(), "agentcore_user_actions");
    /// assert!(c.get_custom_metric("agentcore_user_actions").is_some());
    /// assert!(c.get_custom_metric("agents_total").is_none()); // built-in, not custom
    /// ```
    pub fn get_custom_metric(&self, name: &str) -> Option<CustomMetric> {
        let custom = self.inner.custom.read().unwrap_or_else(|e| e.into_inner());
        custom.get(&*custom_metric_name(name)).cloned()
    }

    // -----------------------------------------------------------------------------------------
    // Snapshots.
    // -----------------------------------------------------------------------------------------

    /// Reads every family (built-in, custom and the telemetry's own) into a timestamped
    /// [`MetricsSnapshot`] and appends it to the history ring. Reads like a scrape: recorders
    /// are never blocked.
    ///
    /// ```
    /// use agentcore_telemetry::MetricsCollector;
    ///
    /// let c = MetricsCollector::new();
    /// c.update_system_resources(65.5, 72.3, 4096.0);
    /// let s = c.snapshot_metrics();
    /// assert_eq!(s.system.memory_percent, 72.3);
    /// assert_eq!(s.value("system_memory_available_mb", &[]), Some(4096.0));
    /// assert_eq!(c.get_metric_history(None, None).len(), 1);
    /// ```
    pub fn snapshot_metrics(&self) -> MetricsSnapshot {
        let (timestamp, unix_seconds) = snapshot::now();
        let m = &self.inner.m;
        let mut metrics: Vec<FamilySnapshot> = m.all.iter().map(|f| f.snapshot()).collect();
        {
            let custom = self.inner.custom.read().unwrap_or_else(|e| e.into_inner());
            metrics.extend(custom.values().map(|c| c.family().snapshot()));
        }
        metrics.sort_by(|a, b| a.name.cmp(&b.name));
        let mut active = 0.0;
        m.agents_active
            .for_each_series(|s| active += s.metric().get());
        let snapshot = MetricsSnapshot {
            timestamp,
            unix_seconds,
            agents: AgentsSummary { active },
            system: SystemSummary {
                cpu_percent: m.system_cpu_percent.get(),
                memory_percent: m.system_memory_percent.get(),
                memory_available_mb: m.system_memory_available_mb.get(),
            },
            metrics,
        };
        self.inner
            .history
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(snapshot.clone());
        snapshot
    }

    /// The most recent snapshots, oldest first: the last `limit` (all kept when `None`), each
    /// restricted, when `metric_name` is given, to the families whose name contains it — so the
    /// full name (`agentcore_tool_executions_total`) and the specification's short form
    /// (`tool_executions`) both work; snapshots without a matching family are left out. The
    /// ring keeps [`CollectorConfig::history_capacity`] snapshots.
    ///
    /// ```
    /// use agentcore_telemetry::MetricsCollector;
    ///
    /// let c = MetricsCollector::new();
    /// for _ in 0..3 {
    ///     c.snapshot_metrics();
    /// }
    /// assert_eq!(c.get_metric_history(Some(2), None).len(), 2);
    /// let tools = c.get_metric_history(None, Some("tool_executions"));
    /// assert_eq!(tools.len(), 3);
    /// assert_eq!(tools[0].metrics.len(), 1);
    /// ```
    pub fn get_metric_history(
        &self,
        limit: Option<usize>,
        metric_name: Option<&str>,
    ) -> Vec<MetricsSnapshot> {
        self.inner
            .history
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .recent(limit, metric_name)
    }

    /// How many snapshots the history ring holds now.
    ///
    /// ```
    /// use agentcore_telemetry::MetricsCollector;
    ///
    /// let c = MetricsCollector::new();
    /// c.snapshot_metrics();
    /// assert_eq!(c.history_len(), 1);
    /// ```
    pub fn history_len(&self) -> usize {
        self.inner
            .history
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Starts a [`SystemMonitor`] that fills the `agentcore_system_*` gauges from the OS and
    /// takes a snapshot every `interval`, on a background thread; it stops when the returned
    /// handle is dropped.
    ///
    /// ```
    /// use agentcore_telemetry::MetricsCollector;
    /// use std::time::Duration;
    ///
    /// let c = MetricsCollector::new();
    /// let monitor = c.start_system_monitor(Duration::from_secs(30)).unwrap();
    /// drop(monitor); // stops and joins at once
    /// ```
    #[cfg(feature = "system-monitor")]
    #[cfg_attr(docsrs, doc(cfg(feature = "system-monitor")))]
    pub fn start_system_monitor(&self, interval: Duration) -> std::io::Result<SystemMonitor> {
        SystemMonitor::start(self.clone(), interval)
    }
}
