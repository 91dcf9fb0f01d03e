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
//! # Layout
//! `MetricsCollector` is defined here with its constructors and shared helpers; its recording
//! methods live in one `impl` block per domain: `lifecycle.rs` (creation, completion, times,
//! state transitions), `resources.rs` (per-agent and system resources, containers),
//! `performance.rs` (caches, garbage collection), `reasoning.rs` (the reasoning
//! philosophies), `tools.rs` (tools, errors, failures), `custom.rs` (custom metrics),
//! `snapshot.rs` (snapshots and history) and `system.rs` (the system monitor).
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
mod lifecycle;
mod performance;
pub mod philosophy;
mod reasoning;
mod resources;
pub mod snapshot;
#[cfg(feature = "system-monitor")]
#[cfg_attr(docsrs, doc(cfg(feature = "system-monitor")))]
pub mod system;
mod tools;

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

use crate::registry::{Metric, OVERFLOW_LABEL_VALUE};
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

/// The default memory budget of the snapshot history: 64 MiB.
///
/// ```
/// use agentcore_telemetry::agent::DEFAULT_HISTORY_MAX_BYTES;
/// use agentcore_telemetry::CollectorConfig;
///
/// assert_eq!(CollectorConfig::default().history_max_bytes, DEFAULT_HISTORY_MAX_BYTES);
/// ```
pub const DEFAULT_HISTORY_MAX_BYTES: usize = 64 << 20;

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
    /// At least 1: `0` is taken as 1, as [`FamilyOptions::max_series`](crate::registry::FamilyOptions::max_series) is.
    /// The runtime info's family keeps room for two series whatever the cap (its change makes
    /// the new series before it removes the old).
    pub max_series_per_family: usize,
    /// How many snapshots the history ring keeps (default [`DEFAULT_HISTORY_CAPACITY`]); `0`
    /// keeps none.
    pub history_capacity: usize,
    /// The history ring's memory budget, in bytes (default [`DEFAULT_HISTORY_MAX_BYTES`]):
    /// the oldest snapshots are dropped while the kept ones take more, so the ring holds
    /// fewer than `history_capacity` when snapshots are large; the newest is always kept. A
    /// snapshot's size is estimated from its contents (strings, series, buckets), not read
    /// from the allocator. Without it the ring grew with series × snapshots: with 10,000
    /// agents a snapshot's copy takes 24.5 MB, the default 100 of them about 2.5 GB (found by
    /// review; measured by `tests/agent_history_memory.rs`, which prints it).
    pub history_max_bytes: usize,
}

impl Default for CollectorConfig {
    fn default() -> Self {
        CollectorConfig {
            max_series_per_family: DEFAULT_MAX_SERIES_PER_FAMILY,
            history_capacity: DEFAULT_HISTORY_CAPACITY,
            history_max_bytes: DEFAULT_HISTORY_MAX_BYTES,
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
    ///
    /// ```
    /// use agentcore_telemetry::agent::IntoSeconds;
    /// use std::time::Duration;
    ///
    /// fn to_millis(t: impl IntoSeconds) -> f64 {
    ///     t.into_seconds() * 1000.0
    /// }
    /// assert_eq!(to_millis(Duration::from_millis(1500)), 1500.0);
    /// assert_eq!(to_millis(0.25), 250.0);
    /// ```
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
    /// Only snapshot takers (for the push) and history readers take it, never recording.
    history: Mutex<History>,
    /// Serialises snapshot takers from the timestamp to the push, so the history stays in
    /// timestamp order under concurrent takers; history readers never wait for it.
    snapshot_taker: Mutex<()>,
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
    /// names yet: [`Error::DuplicateMetric`] otherwise, and then none of the collector's families
    /// is registered; unless another thread registers one of the names meanwhile).
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
        // The standard process metrics, as client_golang's default registry has them: unless
        // the registry has them already, or `/proc` cannot be read here (nothing to expose).
        match registry.register_process_metrics() {
            Ok(_)
            | Err(Error::DuplicateMetric { .. } | Error::ProcessMetricsUnavailable { .. }) => {}
            Err(e) => return Err(e),
        }
        Ok(MetricsCollector {
            inner: Arc::new(Inner {
                history: Mutex::new(History::new(
                    config.history_capacity,
                    config.history_max_bytes,
                )),
                snapshot_taker: Mutex::new(()),
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

    /// Replaces `agentcore_runtime_info{version, environment, platform}` (value 1) with the
    /// given keys. A key not given is exposed as [`UNKNOWN_INFO_VALUE`] (`"unknown"`); other keys
    /// are ignored (an info family's label names are fixed).
    ///
    /// A scrape never misses the info series: the new series is created before the old one is
    /// removed, so a scrape running while the information *changes* may see both for that
    /// instant, and setting the same information again changes nothing. Information whose
    /// every value is [`OVERFLOW_LABEL_VALUE`] (`__overflow__`, reserved for the overflow
    /// series) is refused and counted in
    /// [`rejected_values`](Self::rejected_values); the information before it stays.
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
        // Every value the reserved `__overflow__` names the family's overflow series, which
        // no removal reaches: it replaced the information, and stayed beside every later one
        // (found by review helper-123). Refused; the information before it stays.
        if values.iter().all(|v| v == OVERFLOW_LABEL_VALUE) {
            self.reject(family.name());
            return;
        }
        let _serial = self
            .inner
            .runtime_info
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // The new series first, then the others away: clearing first left a window in which
        // a scrape found no info series at all, even when the information had not changed
        // (found by review).
        if family.with_label_values(&values).is_err() {
            self.reject(family.name());
            return;
        }
        family.retain(|labels, _| labels.iter().eq(values.iter().map(String::as_str)));
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
}
