//! The specification's 36 MetricsCollector scenarios, each asserting the exposition lines that
//! result. Every test uses its own collector (its own registry).

mod support;

use std::time::Duration;

use agentcore_telemetry::agent::{MetricType, BUILTIN_METRICS, REJECTED_METRIC};
use agentcore_telemetry::{
    get_metrics_collector, AgentPhilosophy, Buckets, CollectorConfig, Error, MetricKind,
    MetricsCollector, Registry,
};

use support::exposition::without_process_wide;
use AgentPhilosophy::*;

#[track_caller]
fn has(text: &str, line: &str) {
    let line = format!("{line}\n");
    assert!(
        text.lines().any(|l| format!("{l}\n") == line),
        "missing line {line:?} in:\n{text}"
    );
}

#[track_caller]
fn lacks(text: &str, fragment: &str) {
    assert!(
        !text.contains(fragment),
        "unexpected {fragment:?} in:\n{text}"
    );
}

// ---------------------------------------------------------------------------------------------
// Collector initialization (3)
// ---------------------------------------------------------------------------------------------

#[test]
fn spec_init_registers_every_builtin_family_once() {
    let c = MetricsCollector::new();
    let names = c.get_registry().family_names();
    for m in BUILTIN_METRICS {
        assert_eq!(
            names.iter().filter(|n| *n == m.name).count(),
            1,
            "{}",
            m.name
        );
    }
    // The unlabelled metrics are exposed from the start, at zero.
    let text = c.encode_text();
    has(&text, "# TYPE agentcore_system_cpu_percent gauge");
    has(&text, "agentcore_system_cpu_percent 0");
    has(&text, "agentcore_system_memory_percent 0");
    has(&text, "agentcore_system_memory_available_mb 0");
    has(&text, "agentcore_gc_collections_total 0");
    has(&text, "agentcore_memory_released_mb_total 0");
    // Labelled families appear once they have a series.
    lacks(&text, "agentcore_agents_total");
}

#[test]
fn spec_init_collectors_are_independent() {
    let a = MetricsCollector::new();
    let b = MetricsCollector::with_config(CollectorConfig::default());
    a.record_agent_created(React, "initializing");
    has(
        &a.encode_text(),
        "agentcore_agents_total{philosophy=\"react\",status=\"initializing\"} 1",
    );
    lacks(&b.encode_text(), "agentcore_agents_total");
    // Clones share everything.
    let a2 = a.clone();
    a2.record_agent_created(React, "initializing");
    has(
        &a.encode_text(),
        "agentcore_agents_total{philosophy=\"react\",status=\"initializing\"} 2",
    );
}

#[test]
fn spec_init_global_collector_and_custom_registry() {
    let g1 = get_metrics_collector();
    let g2 = get_metrics_collector();
    assert!(std::ptr::eq(g1, g2));
    assert!(std::ptr::eq(g1.get_registry(), g2.get_registry()));
    // A collector can register into a registry of the caller's, once.
    let registry = Registry::new();
    let c = MetricsCollector::with_registry(registry.clone(), CollectorConfig::default()).unwrap();
    c.record_error("E", "x");
    has(
        &registry.encode_text(),
        "agentcore_errors_total{error_type=\"E\",component=\"x\"} 1",
    );
    assert!(matches!(
        MetricsCollector::with_registry(registry, CollectorConfig::default()),
        Err(Error::DuplicateMetric { .. })
    ));
}

/// A registry holding one of the collector's later names (here the runtime info) refused the
/// collector only after the families before it were registered: 30 of them stayed in the
/// caller's registry, orphaned, exposed empty, and every later attempt failed on the first.
#[test]
fn spec_init_a_refused_registry_is_left_as_it_was() {
    let registry = Registry::new();
    registry
        .info_family("agentcore_runtime_info", "Mine.", &["v"])
        .unwrap();
    let before = registry.family_names();
    assert_eq!(
        MetricsCollector::with_registry(registry.clone(), CollectorConfig::default()).unwrap_err(),
        Error::DuplicateMetric {
            name: "agentcore_runtime_info".into()
        }
    );
    assert_eq!(registry.family_names(), before);
    // A clash through another format's name is found first too (the OpenMetrics family of the
    // counter `agentcore_errors_total` is `agentcore_errors`).
    let registry = Registry::new();
    registry
        .gauge_family("agentcore_errors", "Mine.", &[])
        .unwrap();
    let before = registry.family_names();
    assert!(matches!(
        MetricsCollector::with_registry(registry.clone(), CollectorConfig::default()),
        Err(Error::DuplicateMetric { .. })
    ));
    assert_eq!(registry.family_names(), before);
}

// ---------------------------------------------------------------------------------------------
// Agent metrics (5)
// ---------------------------------------------------------------------------------------------

#[test]
fn spec_agent_created() {
    let c = MetricsCollector::new();
    c.record_agent_created(React, "initializing");
    c.record_agent_created(React, "initializing");
    c.record_agent_created(MultiAgent, "initializing");
    let text = c.encode_text();
    has(&text, "# TYPE agentcore_agents_total counter");
    has(
        &text,
        "agentcore_agents_total{philosophy=\"react\",status=\"initializing\"} 2",
    );
    has(
        &text,
        "agentcore_agents_total{philosophy=\"multi_agent\",status=\"initializing\"} 1",
    );
    has(&text, "# TYPE agentcore_agents_active gauge");
    has(&text, "agentcore_agents_active{philosophy=\"react\"} 2");
    has(
        &text,
        "agentcore_agents_active{philosophy=\"multi_agent\"} 1",
    );
}

#[test]
fn spec_agent_completed_decrements_active_never_below_zero() {
    let c = MetricsCollector::new();
    c.record_agent_created(React, "initializing");
    c.record_agent_created(React, "initializing");
    c.record_agent_completed(React, "completed");
    let text = c.encode_text();
    has(
        &text,
        "agentcore_agents_total{philosophy=\"react\",status=\"completed\"} 1",
    );
    has(&text, "agentcore_agents_active{philosophy=\"react\"} 1");
    c.record_agent_completed(React, "failed");
    c.record_agent_completed(React, "terminated"); // one too many
    let text = c.encode_text();
    has(&text, "agentcore_agents_active{philosophy=\"react\"} 0");
    has(
        &text,
        "agentcore_agents_total{philosophy=\"react\",status=\"failed\"} 1",
    );
    has(
        &text,
        "agentcore_agents_total{philosophy=\"react\",status=\"terminated\"} 1",
    );
    // A completion for a philosophy never created does not go negative either.
    c.record_agent_completed(Autonomous, "completed");
    has(
        &c.encode_text(),
        "agentcore_agents_active{philosophy=\"autonomous\"} 0",
    );
}

#[test]
fn spec_agent_initialization_histogram() {
    let c = MetricsCollector::new();
    c.record_agent_initialization(React, 1.5);
    c.record_agent_initialization(React, Duration::from_millis(200));
    let text = c.encode_text();
    has(
        &text,
        "# TYPE agentcore_agent_initialization_seconds histogram",
    );
    has(
        &text,
        "agentcore_agent_initialization_seconds_bucket{philosophy=\"react\",le=\"0.1\"} 0",
    );
    has(
        &text,
        "agentcore_agent_initialization_seconds_bucket{philosophy=\"react\",le=\"0.25\"} 1",
    );
    has(
        &text,
        "agentcore_agent_initialization_seconds_bucket{philosophy=\"react\",le=\"1\"} 1",
    );
    has(
        &text,
        "agentcore_agent_initialization_seconds_bucket{philosophy=\"react\",le=\"2.5\"} 2",
    );
    has(
        &text,
        "agentcore_agent_initialization_seconds_bucket{philosophy=\"react\",le=\"+Inf\"} 2",
    );
    has(
        &text,
        "agentcore_agent_initialization_seconds_sum{philosophy=\"react\"} 1.7",
    );
    has(
        &text,
        "agentcore_agent_initialization_seconds_count{philosophy=\"react\"} 2",
    );
}

#[test]
fn spec_agent_execution_histogram() {
    let c = MetricsCollector::new();
    c.record_agent_execution(ChainOfThought, 30.5);
    let text = c.encode_text();
    has(&text, "# TYPE agentcore_agent_execution_seconds histogram");
    has(
        &text,
        "agentcore_agent_execution_seconds_bucket{philosophy=\"chain_of_thought\",le=\"30\"} 0",
    );
    has(
        &text,
        "agentcore_agent_execution_seconds_bucket{philosophy=\"chain_of_thought\",le=\"60\"} 1",
    );
    has(
        &text,
        "agentcore_agent_execution_seconds_sum{philosophy=\"chain_of_thought\"} 30.5",
    );
    has(
        &text,
        "agentcore_agent_execution_seconds_count{philosophy=\"chain_of_thought\"} 1",
    );
}

#[test]
fn spec_agent_state_transition() {
    let c = MetricsCollector::new();
    c.record_state_transition("initializing", "running", React);
    c.record_state_transition("initializing", "running", React);
    c.record_state_transition("running", "completed", React);
    let text = c.encode_text();
    has(
        &text,
        "# TYPE agentcore_agent_state_transitions_total counter",
    );
    has(&text, "agentcore_agent_state_transitions_total{from_state=\"initializing\",to_state=\"running\",philosophy=\"react\"} 2");
    has(&text, "agentcore_agent_state_transitions_total{from_state=\"running\",to_state=\"completed\",philosophy=\"react\"} 1");
}

// ---------------------------------------------------------------------------------------------
// Resource metrics (3)
// ---------------------------------------------------------------------------------------------

#[test]
fn spec_resource_agent_usage() {
    let c = MetricsCollector::new();
    c.update_resource_usage("agent-123", React, 45.5, 256.0);
    c.update_resource_usage("agent-123", React, 50.25, 300.0); // last value wins
    let text = c.encode_text();
    has(&text, "# TYPE agentcore_agent_cpu_percent gauge");
    has(
        &text,
        "agentcore_agent_cpu_percent{agent_id=\"agent-123\",philosophy=\"react\"} 50.25",
    );
    has(&text, "# TYPE agentcore_agent_memory_mb gauge");
    has(
        &text,
        "agentcore_agent_memory_mb{agent_id=\"agent-123\",philosophy=\"react\"} 300",
    );
}

#[test]
fn spec_resource_container_creation_warm_and_cold() {
    let c = MetricsCollector::new();
    c.record_container_creation(React, 0.05, true);
    c.record_container_creation(React, 2.0, false);
    c.record_container_creation(React, 0.004, true);
    let text = c.encode_text();
    has(&text, "agentcore_warm_starts_total{philosophy=\"react\"} 2");
    has(&text, "agentcore_cold_starts_total{philosophy=\"react\"} 1");
    has(&text, "agentcore_container_creation_seconds_bucket{philosophy=\"react\",warm_start=\"true\",le=\"0.005\"} 1");
    has(&text, "agentcore_container_creation_seconds_bucket{philosophy=\"react\",warm_start=\"true\",le=\"0.05\"} 2");
    has(
        &text,
        "agentcore_container_creation_seconds_count{philosophy=\"react\",warm_start=\"true\"} 2",
    );
    has(
        &text,
        "agentcore_container_creation_seconds_sum{philosophy=\"react\",warm_start=\"false\"} 2",
    );
    has(&text, "agentcore_container_creation_seconds_bucket{philosophy=\"react\",warm_start=\"false\",le=\"1\"} 0");
}

#[test]
fn spec_resource_system_resources() {
    let c = MetricsCollector::new();
    c.update_system_resources(65.5, 72.3, 4096.0);
    let text = c.encode_text();
    has(&text, "agentcore_system_cpu_percent 65.5");
    has(&text, "agentcore_system_memory_percent 72.3");
    has(&text, "agentcore_system_memory_available_mb 4096");
    // NaN is refused, the previous value kept, the refusal counted.
    c.update_system_resources(f64::NAN, 10.0, 1.0);
    let text = c.encode_text();
    has(&text, "agentcore_system_cpu_percent 65.5");
    has(&text, "agentcore_system_memory_percent 10");
    has(
        &text,
        "agentcore_telemetry_rejected_values_total{metric=\"agentcore_system_cpu_percent\"} 1",
    );
}

// ---------------------------------------------------------------------------------------------
// Performance metrics (3)
// ---------------------------------------------------------------------------------------------

#[test]
fn spec_performance_cache_access() {
    let c = MetricsCollector::new();
    c.record_cache_access("tool_metadata", true, 150);
    c.record_cache_access("tool_metadata", true, 150);
    c.record_cache_access("tool_metadata", false, 151);
    c.record_cache_access("tool_results", false, 100);
    let text = c.encode_text();
    has(
        &text,
        "agentcore_cache_hits_total{cache_type=\"tool_metadata\"} 2",
    );
    has(
        &text,
        "agentcore_cache_misses_total{cache_type=\"tool_metadata\"} 1",
    );
    has(
        &text,
        "agentcore_cache_size{cache_type=\"tool_metadata\"} 151",
    );
    has(
        &text,
        "agentcore_cache_misses_total{cache_type=\"tool_results\"} 1",
    );
    has(
        &text,
        "agentcore_cache_size{cache_type=\"tool_results\"} 100",
    );
    lacks(
        &text,
        "agentcore_cache_hits_total{cache_type=\"tool_results\"}",
    );
}

#[test]
fn spec_performance_gc_collection() {
    let c = MetricsCollector::new();
    c.record_gc_collection(25.5);
    c.record_gc_collection(10.0);
    let text = c.encode_text();
    has(&text, "# TYPE agentcore_gc_collections_total counter");
    has(&text, "agentcore_gc_collections_total 2");
    has(&text, "agentcore_memory_released_mb_total 35.5");
    // A negative amount is refused (the collection still counted).
    c.record_gc_collection(-3.0);
    c.record_gc_collection(f64::NAN);
    let text = c.encode_text();
    has(&text, "agentcore_gc_collections_total 4");
    has(&text, "agentcore_memory_released_mb_total 35.5");
    assert_eq!(c.rejected_values("agentcore_memory_released_mb_total"), 2);
}

#[test]
fn spec_performance_container_pool_size() {
    let c = MetricsCollector::new();
    c.set_container_pool_size(React, 10);
    c.set_container_pool_size(React, 8);
    c.set_container_pool_size(Autonomous, 2);
    let text = c.encode_text();
    has(&text, "# TYPE agentcore_container_pool_size gauge");
    has(
        &text,
        "agentcore_container_pool_size{philosophy=\"react\"} 8",
    );
    has(
        &text,
        "agentcore_container_pool_size{philosophy=\"autonomous\"} 2",
    );
}

// ---------------------------------------------------------------------------------------------
// Philosophy metrics (6)
// ---------------------------------------------------------------------------------------------

#[test]
fn spec_philosophy_react_iterations() {
    let c = MetricsCollector::new();
    c.record_react_iterations("agent-123", 5);
    c.record_react_iterations("agent-123", 40);
    let text = c.encode_text();
    has(&text, "# TYPE agentcore_react_iterations histogram");
    has(
        &text,
        "agentcore_react_iterations_bucket{agent_id=\"agent-123\",le=\"3\"} 0",
    );
    has(
        &text,
        "agentcore_react_iterations_bucket{agent_id=\"agent-123\",le=\"5\"} 1",
    );
    has(
        &text,
        "agentcore_react_iterations_bucket{agent_id=\"agent-123\",le=\"34\"} 1",
    );
    has(
        &text,
        "agentcore_react_iterations_bucket{agent_id=\"agent-123\",le=\"55\"} 2",
    );
    has(
        &text,
        "agentcore_react_iterations_sum{agent_id=\"agent-123\"} 45",
    );
    has(
        &text,
        "agentcore_react_iterations_count{agent_id=\"agent-123\"} 2",
    );
}

#[test]
fn spec_philosophy_cot_steps() {
    let c = MetricsCollector::new();
    c.record_cot_steps("agent-456", 7);
    let text = c.encode_text();
    has(&text, "# TYPE agentcore_cot_steps histogram");
    has(
        &text,
        "agentcore_cot_steps_bucket{agent_id=\"agent-456\",le=\"5\"} 0",
    );
    has(
        &text,
        "agentcore_cot_steps_bucket{agent_id=\"agent-456\",le=\"8\"} 1",
    );
    has(&text, "agentcore_cot_steps_sum{agent_id=\"agent-456\"} 7");
    has(&text, "agentcore_cot_steps_count{agent_id=\"agent-456\"} 1");
}

#[test]
fn spec_philosophy_multi_agent_message() {
    let c = MetricsCollector::new();
    c.record_multi_agent_message("direct");
    c.record_multi_agent_message("direct");
    c.record_multi_agent_message("broadcast");
    let text = c.encode_text();
    has(
        &text,
        "agentcore_multi_agent_messages_total{message_type=\"direct\"} 2",
    );
    has(
        &text,
        "agentcore_multi_agent_messages_total{message_type=\"broadcast\"} 1",
    );
}

#[test]
fn spec_philosophy_consensus() {
    let c = MetricsCollector::new();
    c.record_consensus("reached");
    c.record_consensus("failed");
    c.record_consensus("reached");
    let text = c.encode_text();
    has(
        &text,
        "agentcore_multi_agent_consensus_total{result=\"reached\"} 2",
    );
    has(
        &text,
        "agentcore_multi_agent_consensus_total{result=\"failed\"} 1",
    );
}

#[test]
fn spec_philosophy_autonomous_goal() {
    let c = MetricsCollector::new();
    c.record_autonomous_goal("active", "high");
    c.record_autonomous_goal("completed", "low");
    let text = c.encode_text();
    has(
        &text,
        "agentcore_autonomous_goals_total{status=\"active\",priority=\"high\"} 1",
    );
    has(
        &text,
        "agentcore_autonomous_goals_total{status=\"completed\",priority=\"low\"} 1",
    );
}

#[test]
fn spec_philosophy_autonomous_decision() {
    let c = MetricsCollector::new();
    for _ in 0..3 {
        c.record_autonomous_decision("autonomous-agent-1");
    }
    has(
        &c.encode_text(),
        "agentcore_autonomous_decisions_total{agent_id=\"autonomous-agent-1\"} 3",
    );
}

// ---------------------------------------------------------------------------------------------
// Tool metrics (2)
// ---------------------------------------------------------------------------------------------

#[test]
fn spec_tool_execution_success() {
    let c = MetricsCollector::new();
    c.record_tool_execution("calculator", 0.25, "success", None);
    let text = c.encode_text();
    has(
        &text,
        "agentcore_tool_executions_total{tool_id=\"calculator\",status=\"success\"} 1",
    );
    has(
        &text,
        "agentcore_tool_execution_seconds_bucket{tool_id=\"calculator\",le=\"0.25\"} 1",
    );
    has(
        &text,
        "agentcore_tool_execution_seconds_bucket{tool_id=\"calculator\",le=\"0.1\"} 0",
    );
    has(
        &text,
        "agentcore_tool_execution_seconds_sum{tool_id=\"calculator\"} 0.25",
    );
    has(
        &text,
        "agentcore_tool_execution_seconds_count{tool_id=\"calculator\"} 1",
    );
    lacks(&text, "agentcore_tool_errors_total");
}

#[test]
fn spec_tool_execution_with_error() {
    let c = MetricsCollector::new();
    c.record_tool_execution("web_search", 1.5, "failed", Some("TimeoutError"));
    c.record_tool_execution(
        "web_search",
        Duration::from_secs(2),
        "failed",
        Some("TimeoutError"),
    );
    let text = c.encode_text();
    has(
        &text,
        "agentcore_tool_executions_total{tool_id=\"web_search\",status=\"failed\"} 2",
    );
    has(
        &text,
        "agentcore_tool_errors_total{tool_id=\"web_search\",error_type=\"TimeoutError\"} 2",
    );
    has(
        &text,
        "agentcore_tool_execution_seconds_sum{tool_id=\"web_search\"} 3.5",
    );
}

// ---------------------------------------------------------------------------------------------
// Error metrics (3)
// ---------------------------------------------------------------------------------------------

#[test]
fn spec_error_record_error() {
    let c = MetricsCollector::new();
    c.record_error("ValidationError", "sandbox");
    c.record_error("ValidationError", "sandbox");
    c.record_error("IOError", "storage");
    let text = c.encode_text();
    has(
        &text,
        "agentcore_errors_total{error_type=\"ValidationError\",component=\"sandbox\"} 2",
    );
    has(
        &text,
        "agentcore_errors_total{error_type=\"IOError\",component=\"storage\"} 1",
    );
}

#[test]
fn spec_error_agent_failure() {
    let c = MetricsCollector::new();
    c.record_agent_created(React, "initializing");
    c.record_agent_failure(React, "execution_timeout");
    let text = c.encode_text();
    has(
        &text,
        "agentcore_agent_failures_total{philosophy=\"react\",failure_reason=\"execution_timeout\"} 1",
    );
    // A failed agent is no longer active (the specification's lifecycle example reports a
    // failure through record_agent_failure alone).
    has(&text, "agentcore_agents_active{philosophy=\"react\"} 0");
}

#[test]
fn spec_error_runtime_info() {
    let c = MetricsCollector::new();
    c.set_runtime_info([
        ("version", "1.0.0"),
        ("environment", "production"),
        ("platform", "linux"),
    ]);
    let text = c.encode_text();
    has(&text, "# TYPE agentcore_runtime_info gauge");
    has(
        &text,
        "agentcore_runtime_info{version=\"1.0.0\",environment=\"production\",platform=\"linux\"} 1",
    );
    // Replacing: the previous set disappears; missing keys are "unknown"; extra keys ignored.
    let info: std::collections::HashMap<&str, &str> = [("version", "1.1.0"), ("region", "eu")]
        .into_iter()
        .collect();
    c.set_runtime_info(info);
    let text = c.encode_text();
    has(
        &text,
        "agentcore_runtime_info{version=\"1.1.0\",environment=\"unknown\",platform=\"unknown\"} 1",
    );
    lacks(&text, "1.0.0");
    lacks(&text, "region");
    assert_eq!(text.matches("agentcore_runtime_info{").count(), 1);
}

// ---------------------------------------------------------------------------------------------
// Custom metrics (6)
// ---------------------------------------------------------------------------------------------

#[test]
fn spec_custom_counter() {
    let c = MetricsCollector::new();
    let m = c
        .create_custom_metric(
            "user_actions",
            MetricType::Counter,
            "User actions performed",
            &["action_type", "user_role"],
        )
        .unwrap();
    m.labels(&["agent_create", "admin"]).unwrap().inc();
    m.labels(&["agent_create", "admin"]).unwrap().inc_by(2);
    m.labels(&["agent_delete", "user"]).unwrap().add(0.5);
    let text = c.encode_text();
    // Exposed with the `_total` suffix of Prometheus' counter convention (issue 11).
    has(
        &text,
        "# HELP agentcore_user_actions_total User actions performed",
    );
    has(&text, "# TYPE agentcore_user_actions_total counter");
    has(
        &text,
        "agentcore_user_actions_total{action_type=\"agent_create\",user_role=\"admin\"} 3",
    );
    has(
        &text,
        "agentcore_user_actions_total{action_type=\"agent_delete\",user_role=\"user\"} 0.5",
    );
    assert!(matches!(
        m.labels(&["only_one"]),
        Err(Error::WrongLabelCount {
            expected: 2,
            got: 1
        })
    ));
}

#[test]
fn spec_custom_histogram() {
    let c = MetricsCollector::new();
    let m = c
        .create_custom_metric(
            "request_latency",
            MetricType::histogram(),
            "API request latency",
            &["endpoint"],
        )
        .unwrap();
    m.labels(&["/api/agents"]).unwrap().observe(0.123);
    let text = c.encode_text();
    has(&text, "# TYPE agentcore_request_latency histogram");
    has(
        &text,
        "agentcore_request_latency_bucket{endpoint=\"/api/agents\",le=\"0.1\"} 0",
    );
    has(
        &text,
        "agentcore_request_latency_bucket{endpoint=\"/api/agents\",le=\"0.25\"} 1",
    );
    has(
        &text,
        "agentcore_request_latency_sum{endpoint=\"/api/agents\"} 0.123",
    );
    has(
        &text,
        "agentcore_request_latency_count{endpoint=\"/api/agents\"} 1",
    );
    // Custom buckets.
    let sizes = c
        .create_custom_metric(
            "payload_bytes",
            MetricType::Histogram(Buckets::new(vec![100.0, 1000.0]).unwrap()),
            "Payload sizes",
            &[],
        )
        .unwrap();
    sizes.labels::<&str>(&[]).unwrap().observe(500.0);
    has(
        &c.encode_text(),
        "agentcore_payload_bytes_bucket{le=\"1000\"} 1",
    );
}

#[test]
fn spec_custom_get_custom_metric() {
    let c = MetricsCollector::new();
    assert!(c.get_custom_metric("user_actions").is_none());
    c.create_custom_metric("user_actions", MetricType::Counter, "User actions", &["a"])
        .unwrap();
    let m = c.get_custom_metric("user_actions").unwrap();
    assert_eq!(m.name(), "agentcore_user_actions_total");
    assert_eq!(m.kind(), MetricKind::Counter);
    m.labels(&["x"]).unwrap().inc();
    let same = c.get_custom_metric("agentcore_user_actions").unwrap();
    same.labels(&["x"]).unwrap().inc();
    has(&c.encode_text(), "agentcore_user_actions_total{a=\"x\"} 2");
    assert!(c.get_custom_metric("user_actions_total").is_some());
    // Built-ins are not custom metrics; other collectors do not see it.
    assert!(c.get_custom_metric("agents_total").is_none());
    assert!(MetricsCollector::new()
        .get_custom_metric("user_actions")
        .is_none());
}

#[test]
fn spec_custom_recreate_same_shape_returns_existing_other_shape_errors() {
    let c = MetricsCollector::new();
    let a = c
        .create_custom_metric("jobs_total", MetricType::Counter, "Jobs", &["queue"])
        .unwrap();
    a.labels(&["default"]).unwrap().inc();
    let b = c
        .create_custom_metric("jobs_total", MetricType::Counter, "Jobs", &["queue"])
        .unwrap();
    b.labels(&["default"]).unwrap().inc();
    has(
        &c.encode_text(),
        "agentcore_jobs_total{queue=\"default\"} 2",
    );
    assert!(matches!(
        c.create_custom_metric("jobs_total", MetricType::Gauge, "Jobs", &["queue"]),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        c.create_custom_metric("jobs_total", MetricType::Counter, "Jobs", &["queue", "x"]),
        Err(Error::ShapeMismatch { .. })
    ));
    let h = MetricType::Histogram(Buckets::new(vec![1.0]).unwrap());
    c.create_custom_metric("lat", h.clone(), "L", &[]).unwrap();
    c.create_custom_metric("lat", h, "L", &[]).unwrap();
    assert!(matches!(
        c.create_custom_metric(
            "lat",
            MetricType::Histogram(Buckets::new(vec![2.0]).unwrap()),
            "L",
            &[]
        ),
        Err(Error::ShapeMismatch { .. })
    ));
    // Still exactly one family of that name.
    let names = c.get_registry().family_names();
    assert_eq!(
        names
            .iter()
            .filter(|n| *n == "agentcore_jobs_total")
            .count(),
        1
    );
}

#[test]
fn spec_custom_names_prefix_validation_and_builtin_collisions() {
    let c = MetricsCollector::new();
    let a = c
        .create_custom_metric("agentcore_already", MetricType::Gauge, "Prefixed", &[])
        .unwrap();
    assert_eq!(a.name(), "agentcore_already");
    a.labels::<&str>(&[]).unwrap().set(3.0);
    let text = c.encode_text();
    has(&text, "agentcore_already 3");
    lacks(&text, "agentcore_agentcore_");
    // Built-in names, with or without the prefix, and their sample names are refused.
    for name in [
        "agents_total",
        "agentcore_agents_active",
        "telemetry_rejected_values_total",
    ] {
        assert!(
            matches!(
                c.create_custom_metric(name, MetricType::Counter, "x", &[]),
                Err(Error::DuplicateMetric { .. })
            ),
            "{name}"
        );
    }
    assert!(matches!(
        c.create_custom_metric(
            "agent_execution_seconds_count",
            MetricType::Counter,
            "x",
            &[]
        ),
        Err(Error::DuplicateMetric { .. })
    ));
    // Invalid names.
    assert!(matches!(
        c.create_custom_metric("bad name", MetricType::Counter, "x", &[]),
        Err(Error::InvalidMetricName { .. })
    ));
    assert!(matches!(
        c.create_custom_metric("ok", MetricType::Counter, "x", &["bad-label"]),
        Err(Error::InvalidLabelName { .. })
    ));
    assert!(matches!(
        c.create_custom_metric("ok2", MetricType::Counter, "x", &["a", "a"]),
        Err(Error::DuplicateLabelName { .. })
    ));
    assert!(matches!(
        c.create_custom_metric("ok3", MetricType::histogram(), "x", &["le"]),
        Err(Error::InvalidLabelName { .. })
    ));
}

#[test]
fn spec_custom_gauge_summary_info_and_refused_operations() {
    let c = MetricsCollector::new();
    let g = c
        .create_custom_metric("queue_depth", MetricType::Gauge, "Depth", &["queue"])
        .unwrap();
    let s = g.labels(&["q1"]).unwrap();
    s.set(10.0);
    s.dec();
    s.sub(2.0);
    s.add(0.5);
    s.inc();
    s.set(f64::NAN); // refused
    s.observe(1.0); // not a gauge operation: refused
    has(&c.encode_text(), "agentcore_queue_depth{queue=\"q1\"} 8.5");
    assert_eq!(c.rejected_values("agentcore_queue_depth"), 2);

    let sum = c
        .create_custom_metric("rtt_seconds", MetricType::summary(), "RTT", &[])
        .unwrap();
    for v in [1.0, 2.0, 3.0] {
        sum.labels::<&str>(&[]).unwrap().observe(v);
    }
    sum.labels::<&str>(&[]).unwrap().inc(); // refused
    let text = c.encode_text();
    has(&text, "# TYPE agentcore_rtt_seconds summary");
    has(&text, "agentcore_rtt_seconds_sum 6");
    has(&text, "agentcore_rtt_seconds_count 3");
    assert!(text.contains("agentcore_rtt_seconds{quantile=\"0.5\"} "));

    let info = c
        .create_custom_metric("build_info", MetricType::Info, "Build", &["commit"])
        .unwrap();
    info.labels(&["abc123"]).unwrap();
    has(
        &c.encode_text(),
        "agentcore_build_info{commit=\"abc123\"} 1",
    );

    let counter = c
        .create_custom_metric("n_total", MetricType::Counter, "N", &[])
        .unwrap();
    counter.labels::<&str>(&[]).unwrap().add(-1.0); // refused
    counter.labels::<&str>(&[]).unwrap().set(1.0); // refused
    has(&c.encode_text(), "agentcore_n_total 0");
    has(
        &c.encode_text(),
        &format!("{REJECTED_METRIC}{{metric=\"agentcore_n_total\"}} 2"),
    );
}

#[test]
fn spec_custom_info_is_exposed_with_the_info_suffix() {
    // An info metric's samples are `<name>_info` (the specification's `agentcore_runtime_info`,
    // the Python client's `Info`), as a counter's are `<name>_total`: a custom info metric
    // named as the specification names custom metrics, without the suffix, gets it, so both
    // exposition formats show the same series (OpenMetrics always writes `_info`).
    let c = MetricsCollector::new();
    let build = c
        .create_custom_metric("build", MetricType::Info, "Build information.", &["commit"])
        .unwrap();
    build.labels(&["abc123"]).unwrap();
    assert_eq!(build.name(), "agentcore_build_info");
    has(
        &c.encode_text(),
        "agentcore_build_info{commit=\"abc123\"} 1",
    );
    lacks(&c.encode_text(), "agentcore_build{");
    let om = c.get_registry().encode_openmetrics();
    assert!(
        om.contains("agentcore_build_info{commit=\"abc123\"} 1\n"),
        "{om}"
    );
    // Found under every form of its name, and one metric: re-created with the suffix it is
    // the same one (one family in the snapshot), and no other type may take the name.
    for name in [
        "build",
        "build_info",
        "agentcore_build",
        "agentcore_build_info",
    ] {
        let m = c
            .get_custom_metric(name)
            .unwrap_or_else(|| panic!("{name}"));
        assert_eq!(m.name(), "agentcore_build_info");
    }
    let again = c
        .create_custom_metric(
            "build_info",
            MetricType::Info,
            "Build information.",
            &["commit"],
        )
        .unwrap();
    assert_eq!(again.name(), "agentcore_build_info");
    let snapshot = c.snapshot_metrics();
    assert_eq!(
        snapshot
            .metrics
            .iter()
            .filter(|f| f.name == "agentcore_build_info")
            .count(),
        1
    );
    assert!(c
        .create_custom_metric("build", MetricType::Gauge, "x", &[])
        .is_err());
    // A gauge that happens to end in `_info` is a gauge of that name, found by it.
    let cpu = c
        .create_custom_metric("cpu_info", MetricType::Gauge, "CPU.", &[])
        .unwrap();
    assert_eq!(cpu.name(), "agentcore_cpu_info");
    assert_eq!(
        c.get_custom_metric("cpu_info").unwrap().kind(),
        MetricKind::Gauge
    );
    // The built-in info's name stays taken, with or without the suffix.
    for name in ["runtime", "runtime_info"] {
        assert!(matches!(
            c.create_custom_metric(name, MetricType::Info, "x", &[]),
            Err(Error::DuplicateMetric { .. })
        ));
    }
}

/// An info metric whose name ends in `_total` keeps it (only a counter's `_total` is its type's
/// suffix): `x_total` is exposed as `agentcore_x_total_info`. `get_custom_metric` with the name
/// it was created with took `_total` off and found nothing (review helper-105).
#[test]
fn spec_custom_info_named_with_total_is_found_by_its_name() {
    let c = MetricsCollector::new();
    let m = c
        .create_custom_metric("jobs_total", MetricType::Info, "Jobs.", &["v"])
        .unwrap();
    assert_eq!(m.name(), "agentcore_jobs_total_info");
    for name in [
        "jobs_total",
        "agentcore_jobs_total",
        "jobs_total_info",
        "agentcore_jobs_total_info",
    ] {
        let found = c.get_custom_metric(name);
        assert_eq!(
            found.as_ref().map(|m| m.name()),
            Some("agentcore_jobs_total_info"),
            "get_custom_metric({name:?})"
        );
    }
    // The counter's rule still holds beside it: `jobs` is not the info metric.
    assert!(c.get_custom_metric("jobs").is_none());
}

/// The same info metric beside a custom gauge or histogram named without `_total` (`jobs`,
/// whose key `agentcore_jobs` is also `jobs_total` less its `_total`): both are created (their
/// exposed names, `agentcore_jobs` and `agentcore_jobs_total_info`, do not clash), but
/// `get_custom_metric("jobs_total")`, the name the info metric was created with, answered the
/// gauge. The specification retrieves a custom metric by the name it was created with
/// (`collector.get_custom_metric("user_actions")`).
#[test]
fn spec_custom_info_named_with_total_is_found_by_its_name_beside_a_gauge_without() {
    for (first_gauge, other) in [(true, MetricType::Gauge), (false, MetricType::histogram())] {
        let c = MetricsCollector::new();
        let make_info = || {
            c.create_custom_metric("jobs_total", MetricType::Info, "Jobs.", &["v"])
                .unwrap()
        };
        let make_other = || {
            c.create_custom_metric("jobs", other.clone(), "Jobs.", &[])
                .unwrap()
        };
        let (info, other) = if first_gauge {
            let o = make_other();
            (make_info(), o)
        } else {
            let i = make_info();
            (i, make_other())
        };
        assert_eq!(info.name(), "agentcore_jobs_total_info");
        assert_eq!(other.name(), "agentcore_jobs");
        for (name, expected) in [
            ("jobs_total", "agentcore_jobs_total_info"),
            ("agentcore_jobs_total", "agentcore_jobs_total_info"),
            ("jobs_total_info", "agentcore_jobs_total_info"),
            ("jobs", "agentcore_jobs"),
            ("agentcore_jobs", "agentcore_jobs"),
        ] {
            let found = c.get_custom_metric(name);
            assert_eq!(
                found.as_ref().map(|m| m.name()),
                Some(expected),
                "get_custom_metric({name:?}), {:?} created first",
                if first_gauge { "the other" } else { "the info" }
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Metric snapshots (4)
// ---------------------------------------------------------------------------------------------

#[test]
fn spec_snapshot_structure() {
    let c = MetricsCollector::new();
    for _ in 0..15 {
        c.record_agent_created(React, "initializing");
    }
    c.update_system_resources(65.5, 72.3, 4096.0);
    let s = c.snapshot_metrics();
    // RFC 3339 UTC with milliseconds: 2025-01-15T12:34:56.789Z
    let ts = s.timestamp.as_bytes();
    assert_eq!(ts.len(), 24, "{}", s.timestamp);
    assert_eq!(
        (ts[4], ts[7], ts[10], ts[13], ts[16], ts[19], ts[23]),
        (b'-', b'-', b'T', b':', b':', b'.', b'Z')
    );
    assert!(s.unix_seconds > 1.7e9);
    assert_eq!(s.agents.active, 15.0);
    assert_eq!(s.system.cpu_percent, 65.5);
    assert_eq!(s.system.memory_percent, 72.3);
    assert_eq!(s.system.memory_available_mb, 4096.0);
    // Every family is there, with type and help, sorted by name.
    for m in BUILTIN_METRICS {
        let f = s.get(m.name).unwrap_or_else(|| panic!("{}", m.name));
        assert!(!f.help.is_empty());
    }
    assert!(s.get(REJECTED_METRIC).is_some());
    assert!(s.get("agentcore_telemetry_series_overflow_total").is_some());
    assert!(s.metrics.windows(2).all(|w| w[0].name < w[1].name));
    assert_eq!(s.get("agentcore_runtime_info").unwrap().kind, "info");
    assert_eq!(
        s.value(
            "agents_total",
            &[("philosophy", "react"), ("status", "initializing")]
        ),
        Some(15.0)
    );
}

#[test]
fn spec_snapshot_histogram_and_summary_values() {
    let c = MetricsCollector::new();
    c.record_tool_execution("calculator", 0.25, "success", None);
    c.record_tool_execution("calculator", 3.0, "success", None);
    let sum = c
        .create_custom_metric("rtt", MetricType::summary(), "RTT", &[])
        .unwrap();
    sum.labels::<&str>(&[]).unwrap().observe(2.0);
    let s = c.snapshot_metrics();
    let series = s
        .series("tool_execution_seconds", &[("tool_id", "calculator")])
        .unwrap();
    match &series.value {
        agentcore_telemetry::agent::SampleValue::Histogram {
            buckets,
            sum,
            count,
        } => {
            assert_eq!(*count, 2);
            assert_eq!(*sum, 3.25);
            let b = |le: &str| buckets.iter().find(|b| b.le == le).unwrap().count;
            assert_eq!(b("0.1"), 0);
            assert_eq!(b("0.25"), 1);
            assert_eq!(b("5"), 2);
            assert_eq!(b("+Inf"), 2);
            assert_eq!(buckets.last().unwrap().le, "+Inf");
        }
        other => panic!("{other:?}"),
    }
    match &s.series("rtt", &[]).unwrap().value {
        agentcore_telemetry::agent::SampleValue::Summary {
            quantiles,
            sum,
            count,
        } => {
            assert_eq!((*sum, *count), (2.0, 1));
            assert_eq!(quantiles.len(), 3);
            let median = quantiles[0].value.unwrap();
            assert!((median - 2.0).abs() < 0.05, "{median}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn spec_snapshot_history_limit() {
    let c = MetricsCollector::with_config(CollectorConfig {
        history_capacity: 5,
        ..CollectorConfig::default()
    });
    for i in 0..8 {
        c.record_gc_collection(1.0);
        let s = c.snapshot_metrics();
        assert_eq!(s.value("gc_collections_total", &[]), Some(f64::from(i + 1)));
    }
    assert_eq!(c.history_len(), 5);
    let all = c.get_metric_history(None, None);
    let gcs: Vec<f64> = all
        .iter()
        .map(|s| s.value("gc_collections_total", &[]).unwrap())
        .collect();
    assert_eq!(gcs, [4.0, 5.0, 6.0, 7.0, 8.0]); // the most recent, oldest first
    let last2 = c.get_metric_history(Some(2), None);
    assert_eq!(last2.len(), 2);
    assert_eq!(last2[1].value("gc_collections_total", &[]), Some(8.0));
    assert!(c.get_metric_history(Some(0), None).is_empty());
    assert_eq!(c.get_metric_history(Some(100), None).len(), 5);
    has(&c.encode_text(), "agentcore_gc_collections_total 8");
}

#[test]
fn spec_snapshot_history_filter_by_metric() {
    let c = MetricsCollector::new();
    c.record_tool_execution("calculator", 0.25, "success", None);
    c.snapshot_metrics();
    c.record_tool_execution("calculator", 0.25, "success", None);
    c.snapshot_metrics();
    let tools = c.get_metric_history(None, Some("tool_executions"));
    assert_eq!(tools.len(), 2);
    for s in &tools {
        assert_eq!(s.metrics.len(), 1);
        assert_eq!(s.metrics[0].name, "agentcore_tool_executions_total");
    }
    let v = |s: &agentcore_telemetry::MetricsSnapshot| {
        s.value(
            "tool_executions_total",
            &[("tool_id", "calculator"), ("status", "success")],
        )
    };
    assert_eq!(v(&tools[0]), Some(1.0));
    assert_eq!(v(&tools[1]), Some(2.0));
    // The full name works too, and a prefix matches every family containing it.
    assert_eq!(
        c.get_metric_history(Some(1), Some("agentcore_tool_executions_total"))[0]
            .metrics
            .len(),
        1
    );
    assert_eq!(
        c.get_metric_history(Some(1), Some("tool_"))[0]
            .metrics
            .len(),
        3
    );
    assert!(c
        .get_metric_history(None, Some("no_such_metric"))
        .is_empty());
}

/// The specification's "Get specific metric history" names one metric
/// (`get_metric_history(metric_name="tool_executions")`). A name that is another metric's name
/// inside a longer one (`errors` of `agentcore_errors_total` in `agentcore_tool_errors_total`,
/// `agents` of `agentcore_agents_total` in `agentcore_agents_active`) also brought the other
/// metric's history, where `MetricsSnapshot::get` finds the one metric.
#[test]
fn spec_snapshot_history_of_a_named_metric_is_that_metric_alone() {
    let c = MetricsCollector::new();
    c.record_error("ValidationError", "sandbox");
    c.record_tool_execution("web_search", 1.5, "failed", Some("TimeoutError"));
    c.record_agent_created(React, "initializing");
    c.snapshot_metrics();
    for (name, only) in [
        ("errors", "agentcore_errors_total"),
        ("errors_total", "agentcore_errors_total"),
        ("agentcore_errors_total", "agentcore_errors_total"),
        ("tool_errors", "agentcore_tool_errors_total"),
        ("agents", "agentcore_agents_total"),
        ("agents_total", "agentcore_agents_total"),
        ("agents_active", "agentcore_agents_active"),
    ] {
        let history = c.get_metric_history(None, Some(name));
        assert_eq!(history.len(), 1, "{name}");
        let names: Vec<&str> = history[0].metrics.iter().map(|f| &*f.name).collect();
        assert_eq!(names, [only], "get_metric_history(metric_name={name:?})");
        // The same metric `MetricsSnapshot::get` finds by that name.
        assert_eq!(history[0].get(name).map(|f| &*f.name), Some(only));
    }
    // A custom metric by the name it was made with, beside one whose name contains it.
    let actions = c
        .create_custom_metric("actions", MetricType::Counter, "Actions.", &[])
        .unwrap();
    let user_actions = c
        .create_custom_metric("user_actions", MetricType::Counter, "User actions.", &[])
        .unwrap();
    actions.labels::<&str>(&[]).unwrap().inc();
    user_actions.labels::<&str>(&[]).unwrap().inc();
    c.snapshot_metrics();
    let history = c.get_metric_history(Some(1), Some("actions"));
    let names: Vec<&str> = history[0].metrics.iter().map(|f| &*f.name).collect();
    assert_eq!(names, ["agentcore_actions_total"]);
    // What names no metric still matches every family containing it.
    let tools = c.get_metric_history(Some(1), Some("tool_"));
    assert_eq!(tools[0].metrics.len(), 3);
}

// ---------------------------------------------------------------------------------------------
// Registry access (1)
// ---------------------------------------------------------------------------------------------

#[test]
fn spec_registry_access() {
    let c = MetricsCollector::new();
    c.record_agent_created(React, "initializing");
    let registry = c.get_registry();
    let text = registry.encode_text();
    assert_eq!(
        without_process_wide(&text),
        without_process_wide(&c.encode_text())
    );
    has(
        &text,
        "# HELP agentcore_agents_total Agents created or finished, by philosophy and status.",
    );
    has(
        &text,
        "agentcore_agents_total{philosophy=\"react\",status=\"initializing\"} 1",
    );
    // Families registered directly into the collector's registry are exposed alongside.
    let extra = registry
        .counter_family("app_requests_total", "Requests.", &[])
        .unwrap();
    extra.with_label_values::<&str>(&[]).unwrap().inc();
    has(&c.encode_text(), "app_requests_total 1");
    let mut buf = String::new();
    registry.encode_text_into(&mut buf);
    assert_eq!(
        without_process_wide(&buf),
        without_process_wide(&c.encode_text())
    );
}

// ---------------------------------------------------------------------------------------------
// Refusals (beyond the specification)
// ---------------------------------------------------------------------------------------------

#[test]
fn invalid_values_are_refused_and_counted_never_panic() {
    let c = MetricsCollector::new();
    c.record_agent_initialization(React, f64::NAN);
    c.record_agent_execution(React, -1.0);
    c.record_agent_execution(React, f64::INFINITY);
    c.record_container_creation(React, f64::NAN, false);
    c.record_tool_execution("t", -0.5, "success", None);
    c.update_resource_usage("a", React, f64::NAN, f64::NEG_INFINITY);
    let text = c.encode_text();
    lacks(&text, "agentcore_agent_initialization_seconds_count");
    lacks(&text, "agentcore_agent_execution_seconds_count");
    lacks(&text, "agentcore_container_creation_seconds_count");
    lacks(&text, "agentcore_agent_cpu_percent{");
    // The rest of each call is still recorded.
    has(&text, "agentcore_cold_starts_total{philosophy=\"react\"} 1");
    has(
        &text,
        "agentcore_tool_executions_total{tool_id=\"t\",status=\"success\"} 1",
    );
    for (metric, n) in [
        ("agentcore_agent_initialization_seconds", 1),
        ("agentcore_agent_execution_seconds", 2),
        ("agentcore_container_creation_seconds", 1),
        ("agentcore_tool_execution_seconds", 1),
        ("agentcore_agent_cpu_percent", 1),
        ("agentcore_agent_memory_mb", 1),
    ] {
        has(
            &text,
            &format!("{REJECTED_METRIC}{{metric=\"{metric}\"}} {n}"),
        );
    }
    // Label values with quotes, backslashes and newlines are escaped, not refused.
    c.record_error("a\"b", "c\\d\ne");
    has(
        &c.encode_text(),
        "agentcore_errors_total{error_type=\"a\\\"b\",component=\"c\\\\d\\ne\"} 1",
    );
}

/// Re-creating a custom metric with another description was answered with the existing
/// metric, and the new description was lost in silence (the exposition kept the first).
/// Refused now, as client_golang and rust-prometheus refuse a different help string; the same
/// description still returns the existing metric.
#[test]
fn a_custom_metric_re_created_with_another_description_is_refused() {
    use agentcore_telemetry::agent::MetricType;
    use agentcore_telemetry::Error;
    let c = MetricsCollector::new();
    let first = c
        .create_custom_metric(
            "user_actions",
            MetricType::Counter,
            "User actions performed",
            &["action_type"],
        )
        .unwrap();
    first.labels(&["agent_create"]).unwrap().inc();
    match c.create_custom_metric(
        "user_actions",
        MetricType::Counter,
        "Actions",
        &["action_type"],
    ) {
        Err(Error::ShapeMismatch { name, detail }) => {
            assert_eq!(name, "agentcore_user_actions_total");
            assert!(
                detail.contains("\"User actions performed\"") && detail.contains("\"Actions\""),
                "{detail}"
            );
        }
        other => panic!("{other:?}"),
    }
    let again = c
        .create_custom_metric(
            "user_actions",
            MetricType::Counter,
            "User actions performed",
            &["action_type"],
        )
        .unwrap();
    assert_eq!(again.labels(&["agent_create"]).unwrap().get(), Some(1.0));
    assert!(c
        .encode_text()
        .contains("# HELP agentcore_user_actions_total User actions performed\n"));
}

/// A family registered on the collector's registry by another (directly, through the
/// `metrics` bridge, by a tracer's `register_metrics`) was handed back by
/// `create_custom_metric` as if it were one of the collector's custom metrics: the caller's
/// description was dropped in silence, the caller's increments went into the other's series,
/// and the family joined the collector's snapshots. And a name of the telemetry's own
/// families (`agentcore_telemetry_arena_blocks`) was refused as another shape
/// (`ShapeMismatch`), not as the taken name the README says. Both are `DuplicateMetric` now,
/// as Python's registry refuses a duplicated name; the collector's own custom metrics are
/// still returned when created again.
#[test]
fn a_custom_metric_never_adopts_a_family_registered_by_another() {
    let c = MetricsCollector::new();
    let theirs = c
        .get_registry()
        .counter_family("agentcore_deployments_total", "Deployments.", &["env"])
        .unwrap();
    theirs.with_label_values(&["prod"]).unwrap().inc();
    let before = c.encode_text();
    for help in ["Agent deployments by environment", "Deployments."] {
        assert_eq!(
            c.create_custom_metric("deployments", MetricType::Counter, help, &["env"])
                .map(|m| m.name().to_owned()),
            Err(Error::DuplicateMetric {
                name: "agentcore_deployments_total".into()
            }),
            "{help}"
        );
    }
    assert!(c.get_custom_metric("deployments").is_none());
    assert!(c.snapshot_metrics().get("deployments").is_none());
    assert_eq!(
        without_process_wide(&c.encode_text()),
        without_process_wide(&before)
    );
    assert_eq!(
        c.create_custom_metric("telemetry_arena_blocks", MetricType::Gauge, "mine", &[])
            .map(|m| m.name().to_owned()),
        Err(Error::DuplicateMetric {
            name: "agentcore_telemetry_arena_blocks".into()
        })
    );
    // The collector's own: created once, returned again.
    let mine = c
        .create_custom_metric("rollouts", MetricType::Counter, "Rollouts.", &["env"])
        .unwrap();
    mine.labels(&["prod"]).unwrap().inc();
    let again = c
        .create_custom_metric("rollouts", MetricType::Counter, "Rollouts.", &["env"])
        .unwrap();
    assert_eq!(again.labels(&["prod"]).unwrap().get(), Some(1.0));
}
