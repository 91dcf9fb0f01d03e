//! A collector fixture: one call of every `MetricsCollector` recording method, so every one of
//! the specification's 31 metrics has a series.

use agentcore_telemetry::{AgentPhilosophy, MetricsCollector};

/// Calls every recording method once or twice (an agent created, completed and failed; a warm
/// and a cold container; a cache hit and a miss; a tool success and a failure; runtime info).
pub fn record_everything(c: &MetricsCollector) {
    use AgentPhilosophy::*;
    c.record_agent_created(React, "initializing");
    c.record_agent_completed(React, "completed");
    c.record_agent_initialization(React, 1.5);
    c.record_agent_execution(ChainOfThought, 30.5);
    c.record_state_transition("initializing", "running", React);
    c.update_resource_usage("agent-123", React, 45.5, 256.0);
    c.record_container_creation(React, 0.05, true);
    c.record_container_creation(React, 0.5, false);
    c.update_system_resources(65.5, 72.3, 4096.0);
    c.record_cache_access("tool_metadata", true, 150);
    c.record_cache_access("tool_metadata", false, 150);
    c.set_container_pool_size(React, 4);
    c.record_gc_collection(25.5);
    c.record_react_iterations("agent-123", 5);
    c.record_cot_steps("agent-456", 7);
    c.record_multi_agent_message("direct");
    c.record_consensus("reached");
    c.record_autonomous_goal("active", "high");
    c.record_autonomous_decision("autonomous-agent-1");
    c.record_tool_execution("calculator", 0.25, "success", None);
    c.record_tool_execution("web_search", 1.5, "failed", Some("TimeoutError"));
    c.record_error("ValidationError", "sandbox");
    c.record_agent_failure(React, "execution_timeout");
    c.set_runtime_info([
        ("version", "1.0.0"),
        ("environment", "production"),
        ("platform", "linux"),
    ]);
}
