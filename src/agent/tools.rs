//! Tools and errors: tool executions, errors by component, agent failures.

use super::{AgentPhilosophy, IntoSeconds, MetricsCollector};

impl MetricsCollector {
    /// A tool ran: counts `agentcore_tool_executions_total{tool_id, status}`, observes
    /// `agentcore_tool_execution_seconds{tool_id}` and, with an `error_type` that is not empty,
    /// counts `agentcore_tool_errors_total{tool_id, error_type}`. An invalid duration is
    /// refused; the execution is still counted.
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
    /// c.record_tool_execution("shell", 0.5, "failed", Some("")); // no error type: no error
    /// assert!(!c.encode_text().contains("agentcore_tool_errors_total{tool_id=\"shell\""));
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
        let f = &m.tool_execution_seconds;
        // Converted first: `IntoSeconds` is the caller's, and a conversion that panics must
        // leave no execution counted without its duration (review helper-97), as the other
        // records convert before they count.
        let seconds = self.duration(f.name(), duration_seconds);
        if let Some(c) = self.series(&m.tool_executions_total, &[tool_id, status]) {
            c.inc();
        }
        if let Some(s) = seconds {
            if let Some(h) = self.series(f, &[tool_id]) {
                h.observe(s);
            }
        }
        // As the specification's code counts it, `if error_type:`: an empty error type is no
        // error (and `error_type=""` would read, to Prometheus, as the label left out).
        if let Some(error_type) = error_type.filter(|e| !e.is_empty()) {
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
    /// [module documentation](super)).
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
}
