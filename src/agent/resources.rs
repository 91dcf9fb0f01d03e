//! Resources: per-agent CPU and memory, container creation and pools, system resources.

use super::builtin::BUILTIN_METRICS;
use super::{bool_label, AgentPhilosophy, IntoSeconds, MetricsCollector};

impl MetricsCollector {
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
    /// [`SystemMonitor`](super::SystemMonitor) sets the same gauges from the OS's figures
    /// (NaN for a figure the OS does not give).
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
}
