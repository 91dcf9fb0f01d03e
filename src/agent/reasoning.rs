//! Reasoning philosophies: ReAct iterations, chain-of-thought steps, multi-agent messages and consensus, autonomous goals and decisions.

use super::MetricsCollector;

impl MetricsCollector {
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
}
