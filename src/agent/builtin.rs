//! The built-in metric families of the specification: names, help, label names, buckets.
//!
//! Every family is registered once per collector; the table [`BUILTIN_METRICS`] lists them in
//! the specification's order.
//!
//! ```
//! use agentcore_telemetry::agent::BUILTIN_METRICS;
//! use agentcore_telemetry::MetricsCollector;
//!
//! let names = MetricsCollector::new().get_registry().family_names();
//! assert!(BUILTIN_METRICS.iter().all(|m| names.iter().any(|n| n == m.name)));
//! ```

use crate::registry::FamilyOptions;
use crate::{
    Buckets, Counter, Error, Exemplars, Family, Gauge, Histogram, Info, MetricKind, Registry,
};

use super::snapshot::SnapshotFamily;
use super::AgentPhilosophy;

/// One built-in metric: its name, type and label names (in the specification's order).
///
/// ```
/// use agentcore_telemetry::agent::BUILTIN_METRICS;
/// use agentcore_telemetry::MetricKind;
///
/// let active = BUILTIN_METRICS.iter().find(|m| m.name == "agentcore_agents_active").unwrap();
/// assert_eq!(active.kind, MetricKind::Gauge);
/// assert_eq!(active.labels, &["philosophy"]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinMetric {
    /// The full metric name.
    pub name: &'static str,
    /// The type.
    pub kind: MetricKind,
    /// The label names, in order.
    pub labels: &'static [&'static str],
    /// The help text.
    pub help: &'static str,
}

const fn m(
    name: &'static str,
    kind: MetricKind,
    labels: &'static [&'static str],
    help: &'static str,
) -> BuiltinMetric {
    BuiltinMetric {
        name,
        kind,
        labels,
        help,
    }
}

use MetricKind::{Counter as C, Gauge as G, Histogram as H, Info as I};

/// The 31 metrics of the specification's "Prometheus Metrics Generated" lists, in its order.
///
/// ```
/// use agentcore_telemetry::agent::BUILTIN_METRICS;
///
/// assert_eq!(BUILTIN_METRICS.len(), 31);
/// assert_eq!(BUILTIN_METRICS[0].name, "agentcore_agents_total");
/// assert_eq!(BUILTIN_METRICS[30].name, "agentcore_runtime_info");
/// ```
pub const BUILTIN_METRICS: [BuiltinMetric; 31] = [
    m(
        "agentcore_agents_total",
        C,
        &["philosophy", "status"],
        "Agents created or finished, by philosophy and status.",
    ),
    m(
        "agentcore_agents_active",
        G,
        &["philosophy"],
        "Agents currently active, by philosophy.",
    ),
    m(
        "agentcore_agent_initialization_seconds",
        H,
        &["philosophy"],
        "Agent initialization duration in seconds.",
    ),
    m(
        "agentcore_agent_execution_seconds",
        H,
        &["philosophy"],
        "Agent execution duration in seconds.",
    ),
    m(
        "agentcore_agent_state_transitions_total",
        C,
        &["from_state", "to_state", "philosophy"],
        "Agent state transitions.",
    ),
    m(
        "agentcore_agent_cpu_percent",
        G,
        &["agent_id", "philosophy"],
        "CPU usage of an agent in percent.",
    ),
    m(
        "agentcore_agent_memory_mb",
        G,
        &["agent_id", "philosophy"],
        "Memory usage of an agent in megabytes.",
    ),
    m(
        "agentcore_container_creation_seconds",
        H,
        &["philosophy", "warm_start"],
        "Container creation duration in seconds.",
    ),
    m(
        "agentcore_system_cpu_percent",
        G,
        &[],
        "System CPU usage in percent.",
    ),
    m(
        "agentcore_system_memory_percent",
        G,
        &[],
        "System memory usage in percent.",
    ),
    m(
        "agentcore_system_memory_available_mb",
        G,
        &[],
        "System memory available in megabytes.",
    ),
    m(
        "agentcore_cache_hits_total",
        C,
        &["cache_type"],
        "Cache hits, by cache type.",
    ),
    m(
        "agentcore_cache_misses_total",
        C,
        &["cache_type"],
        "Cache misses, by cache type.",
    ),
    m(
        "agentcore_cache_size",
        G,
        &["cache_type"],
        "Current number of entries in a cache.",
    ),
    m(
        "agentcore_container_pool_size",
        G,
        &["philosophy"],
        "Current number of pooled containers, by philosophy.",
    ),
    m(
        "agentcore_warm_starts_total",
        C,
        &["philosophy"],
        "Containers created from a warm pool.",
    ),
    m(
        "agentcore_cold_starts_total",
        C,
        &["philosophy"],
        "Containers created cold.",
    ),
    m(
        "agentcore_gc_collections_total",
        C,
        &[],
        "Garbage collections run.",
    ),
    m(
        "agentcore_memory_released_mb_total",
        C,
        &[],
        "Memory released by garbage collection in megabytes.",
    ),
    m(
        "agentcore_react_iterations",
        H,
        &["agent_id"],
        "ReAct iterations per run of an agent.",
    ),
    m(
        "agentcore_cot_steps",
        H,
        &["agent_id"],
        "Chain-of-thought steps per run of an agent.",
    ),
    m(
        "agentcore_multi_agent_messages_total",
        C,
        &["message_type"],
        "Messages exchanged between agents.",
    ),
    m(
        "agentcore_multi_agent_consensus_total",
        C,
        &["result"],
        "Multi-agent consensus rounds, by result.",
    ),
    m(
        "agentcore_autonomous_goals_total",
        C,
        &["status", "priority"],
        "Autonomous agent goals, by status and priority.",
    ),
    m(
        "agentcore_autonomous_decisions_total",
        C,
        &["agent_id"],
        "Decisions taken by an autonomous agent.",
    ),
    m(
        "agentcore_tool_executions_total",
        C,
        &["tool_id", "status"],
        "Tool executions, by tool and status.",
    ),
    m(
        "agentcore_tool_execution_seconds",
        H,
        &["tool_id"],
        "Tool execution duration in seconds.",
    ),
    m(
        "agentcore_tool_errors_total",
        C,
        &["tool_id", "error_type"],
        "Tool execution errors, by tool and error type.",
    ),
    m(
        "agentcore_errors_total",
        C,
        &["error_type", "component"],
        "Errors, by type and component.",
    ),
    m(
        "agentcore_agent_failures_total",
        C,
        &["philosophy", "failure_reason"],
        "Agent failures, by philosophy and reason.",
    ),
    m(
        "agentcore_runtime_info",
        I,
        &["version", "environment", "platform"],
        "Runtime information (always 1).",
    ),
];

/// The collector's own counter of refused values (NaN or negative durations, non-finite gauge
/// values, negative GC amounts, operations of the wrong type on a custom metric), by metric.
///
/// ```
/// use agentcore_telemetry::agent::REJECTED_METRIC;
/// use agentcore_telemetry::MetricsCollector;
///
/// let c = MetricsCollector::new();
/// c.record_gc_collection(-1.0);
/// let line = format!("{REJECTED_METRIC}{{metric=\"agentcore_memory_released_mb_total\"}} 1\n");
/// assert!(c.encode_text().contains(&line));
/// ```
pub const REJECTED_METRIC: &str = "agentcore_telemetry_rejected_values_total";

/// Bucket bounds of each built-in histogram. Each holds every bound the specification's
/// reference implementation gives the family (its `buckets=`), so that dashboards, SLOs and
/// fleets aggregating by `le` across both find them; the others extend the range.
pub(crate) mod buckets {
    /// Agent initialization, seconds: 10 ms to 1 min.
    pub(crate) const INITIALIZATION: &[f64] =
        &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];
    /// Agent execution, seconds: 100 ms to 1 h.
    pub(crate) const EXECUTION: &[f64] = &[
        0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
    ];
    /// Container creation, seconds: 1 ms (warm) to 30 s (cold pull).
    pub(crate) const CONTAINER: &[f64] = &[
        0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 10.0, 30.0,
    ];
    /// Tool execution, seconds: 5 ms to 2 min.
    pub(crate) const TOOL: &[f64] = &[
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
    ];
    /// Iteration and step counts: Fibonacci, with the reference's round bounds (ReAct
    /// `1, 3, 5, 10, 15, 20, 30, 50`; chain of thought `1, 3, 5, 10, 15, 20`).
    pub(crate) const COUNTS: &[f64] = &[
        1.0, 2.0, 3.0, 5.0, 8.0, 10.0, 13.0, 15.0, 20.0, 21.0, 30.0, 34.0, 50.0, 55.0,
    ];
}

/// Handles to every built-in family, registered into one registry.
pub(crate) struct BuiltinMetrics {
    pub agents_total: Family<Counter>,
    pub agents_active: Family<Gauge>,
    pub agent_initialization_seconds: Family<Histogram>,
    pub agent_execution_seconds: Family<Histogram>,
    pub agent_state_transitions_total: Family<Counter>,
    pub agent_cpu_percent: Family<Gauge>,
    pub agent_memory_mb: Family<Gauge>,
    pub container_creation_seconds: Family<Histogram>,
    pub system_cpu_percent: Gauge,
    pub system_memory_percent: Gauge,
    pub system_memory_available_mb: Gauge,
    pub cache_hits_total: Family<Counter>,
    pub cache_misses_total: Family<Counter>,
    pub cache_size: Family<Gauge>,
    pub container_pool_size: Family<Gauge>,
    pub warm_starts_total: Family<Counter>,
    pub cold_starts_total: Family<Counter>,
    pub gc_collections_total: Counter,
    pub memory_released_mb_total: Counter,
    pub react_iterations: Family<Histogram>,
    pub cot_steps: Family<Histogram>,
    pub multi_agent_messages_total: Family<Counter>,
    pub multi_agent_consensus_total: Family<Counter>,
    pub autonomous_goals_total: Family<Counter>,
    pub autonomous_decisions_total: Family<Counter>,
    pub tool_executions_total: Family<Counter>,
    pub tool_execution_seconds: Family<Histogram>,
    pub tool_errors_total: Family<Counter>,
    pub errors_total: Family<Counter>,
    pub agent_failures_total: Family<Counter>,
    pub runtime_info: Family<Info>,
    pub rejected: Family<Counter>,
    /// Every family above (and the registry's overflow family), for snapshots, in name order.
    pub all: Vec<Box<dyn SnapshotFamily>>,
}

struct Registrar<'a> {
    registry: &'a Registry,
    options: FamilyOptions,
    next: usize,
    all: Vec<Box<dyn SnapshotFamily>>,
}

impl Registrar<'_> {
    fn spec(&mut self, kind: MetricKind) -> BuiltinMetric {
        let spec = BUILTIN_METRICS[self.next];
        debug_assert_eq!(spec.kind, kind, "{}", spec.name);
        self.next += 1;
        spec
    }

    fn counter(&mut self) -> Result<Family<Counter>, Error> {
        self.counter_with(self.options.clone())
    }

    /// A counter family whose increments inside a sampled span keep it as exemplar (issue 13:
    /// the families an operator follows from a spike to its trace).
    fn counter_traced(&mut self) -> Result<Family<Counter>, Error> {
        self.counter_with(self.options.clone().with_exemplars(Exemplars::TraceBased))
    }

    fn counter_with(&mut self, options: FamilyOptions) -> Result<Family<Counter>, Error> {
        let s = self.spec(MetricKind::Counter);
        let f: Family<Counter> = self
            .registry
            .register(s.name, s.help, s.labels, (), options)?;
        self.all.push(Box::new(f.clone()));
        Ok(f)
    }

    fn gauge(&mut self) -> Result<Family<Gauge>, Error> {
        let s = self.spec(MetricKind::Gauge);
        let f: Family<Gauge> =
            self.registry
                .register(s.name, s.help, s.labels, (), self.options.clone())?;
        self.all.push(Box::new(f.clone()));
        Ok(f)
    }

    fn histogram(&mut self, bounds: &[f64]) -> Result<Family<Histogram>, Error> {
        self.histogram_with(bounds, self.options.clone())
    }

    /// A latency histogram whose observations inside a sampled span keep it as their bucket's
    /// exemplar.
    fn histogram_traced(&mut self, bounds: &[f64]) -> Result<Family<Histogram>, Error> {
        let options = self.options.clone().with_exemplars(Exemplars::TraceBased);
        self.histogram_with(bounds, options)
    }

    fn histogram_with(
        &mut self,
        bounds: &[f64],
        options: FamilyOptions,
    ) -> Result<Family<Histogram>, Error> {
        let s = self.spec(MetricKind::Histogram);
        let f: Family<Histogram> = self.registry.register(
            s.name,
            s.help,
            s.labels,
            Buckets::new(bounds.to_vec())?,
            options,
        )?;
        self.all.push(Box::new(f.clone()));
        Ok(f)
    }

    /// The info family holds one series, but `set_runtime_info` creates the new one before it
    /// removes the old: under a cap of one the new one folded into the overflow series, and the
    /// info was lost until the next change (found by review). Two at least, whatever the cap.
    fn info(&mut self) -> Result<Family<Info>, Error> {
        let s = self.spec(MetricKind::Info);
        let options = FamilyOptions {
            max_series: self.options.max_series.max(2),
            ..self.options.clone()
        };
        let f: Family<Info> = self
            .registry
            .register(s.name, s.help, s.labels, (), options)?;
        self.all.push(Box::new(f.clone()));
        Ok(f)
    }
}

impl BuiltinMetrics {
    /// Registers every built-in family into `registry`, each capped at `max_series` series.
    pub(crate) fn register(
        registry: &Registry,
        max_series: usize,
    ) -> Result<BuiltinMetrics, Error> {
        // Every name checked before the first is registered: a clash with a later one left the
        // families before it in the caller's registry, orphaned and exposed, and every later
        // attempt failed on the first of them (found by review). A family registered by
        // another thread between the check and the registration can still refuse one midway.
        let names = BUILTIN_METRICS.iter().map(|b| (b.name, b.kind));
        for (name, kind) in names.chain([(REJECTED_METRIC, MetricKind::Counter)]) {
            if let Some(name) = registry.clash_with(name, kind) {
                return Err(Error::DuplicateMetric { name });
            }
        }
        let mut r = Registrar {
            registry,
            options: FamilyOptions {
                max_series,
                ..FamilyOptions::default()
            },
            next: 0,
            all: Vec::with_capacity(34),
        };
        let unlabelled = |f: Result<Family<Gauge>, Error>| f?.get_or_create::<&str>(&[]);
        let unlabelled_counter = |f: Result<Family<Counter>, Error>| f?.get_or_create::<&str>(&[]);
        let metrics = BuiltinMetrics {
            agents_total: r.counter()?,
            agents_active: r.gauge()?,
            agent_initialization_seconds: r.histogram_traced(buckets::INITIALIZATION)?,
            agent_execution_seconds: r.histogram_traced(buckets::EXECUTION)?,
            agent_state_transitions_total: r.counter()?,
            agent_cpu_percent: r.gauge()?,
            agent_memory_mb: r.gauge()?,
            container_creation_seconds: r.histogram(buckets::CONTAINER)?,
            system_cpu_percent: unlabelled(r.gauge())?,
            system_memory_percent: unlabelled(r.gauge())?,
            system_memory_available_mb: unlabelled(r.gauge())?,
            cache_hits_total: r.counter()?,
            cache_misses_total: r.counter()?,
            cache_size: r.gauge()?,
            container_pool_size: r.gauge()?,
            warm_starts_total: r.counter()?,
            cold_starts_total: r.counter()?,
            gc_collections_total: unlabelled_counter(r.counter())?,
            memory_released_mb_total: unlabelled_counter(r.counter())?,
            react_iterations: r.histogram(buckets::COUNTS)?,
            cot_steps: r.histogram(buckets::COUNTS)?,
            multi_agent_messages_total: r.counter()?,
            multi_agent_consensus_total: r.counter()?,
            autonomous_goals_total: r.counter()?,
            autonomous_decisions_total: r.counter()?,
            tool_executions_total: r.counter()?,
            tool_execution_seconds: r.histogram_traced(buckets::TOOL)?,
            tool_errors_total: r.counter_traced()?,
            errors_total: r.counter()?,
            agent_failures_total: r.counter()?,
            runtime_info: r.info()?,
            rejected: registry.register(
                REJECTED_METRIC,
                "Values the collector refused (NaN or negative durations, non-finite gauge values, negative amounts, operations of the wrong type), by metric.",
                &["metric"],
                (),
                FamilyOptions::default(),
            )?,
            all: Vec::new(),
        };
        let mut all = r.all;
        all.push(Box::new(metrics.rejected.clone()));
        all.push(Box::new(registry.overflow_family().clone()));
        all.sort_by(|a, b| a.name().cmp(b.name()));
        Ok(BuiltinMetrics { all, ..metrics })
    }

    /// Counts one refused value for `metric`.
    #[cold]
    pub(crate) fn reject(&self, metric: &str) {
        if let Ok(c) = self.rejected.with_label_values(&[metric]) {
            c.inc();
        }
    }

    /// The families keyed by an `agent_id` label (the label is first in each).
    pub(crate) fn per_agent(&self) -> [&dyn PerAgent; 5] {
        [
            &self.agent_cpu_percent,
            &self.agent_memory_mb,
            &self.react_iterations,
            &self.cot_steps,
            &self.autonomous_decisions_total,
        ]
    }
}

/// A family with `agent_id` as its first label.
pub(crate) trait PerAgent {
    /// Removes every series of `agent_id`; returns how many.
    fn remove_agent(&self, agent_id: &str) -> usize;
}

impl<M: crate::registry::Metric> PerAgent for Family<M> {
    /// By direct look-ups of the agent's possible series (`agent_id` alone, or with each
    /// philosophy), not by a pass over the family: `retain` visits every series, so ending
    /// each of 10,000 agents took 88 s in all (debug build; found by review).
    fn remove_agent(&self, agent_id: &str) -> usize {
        match self.label_names() {
            [_] => usize::from(self.remove(&[agent_id])),
            [_, p] if &**p == "philosophy" => AgentPhilosophy::ALL
                .iter()
                .filter(|p| self.remove(&[agent_id, p.as_str()]))
                .count(),
            _ => self.retain(|values, _| values.first().is_none_or(|v| v != agent_id)),
        }
    }
}
