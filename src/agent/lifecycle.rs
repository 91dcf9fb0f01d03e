//! Agent lifecycle: creation, completion, initialisation and execution times, state transitions.

use super::{AgentPhilosophy, IntoSeconds, MetricsCollector};

impl MetricsCollector {
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
}
