//! Zero-allocation proof for the collector: every recording method, on series that already
//! exist, allocates nothing. A counting global allocator counts this thread's allocations; each
//! call is warmed up once (creating its series, leasing the thread's arena block), then
//! repeated many times with the count checked to stay at zero.
//!
//! Not covered (not recording on an existing series, and allowed to allocate):
//! `set_runtime_info` (replaces the info series), `remove_agent`, `create_custom_metric`,
//! `snapshot_metrics` and `encode_text`.

use agentcore_telemetry::agent::MetricType;
use agentcore_telemetry::{AgentPhilosophy, MetricsCollector};
use std::time::Duration;
use support::alloc::thread_allocations;

mod support;

#[global_allocator]
static GLOBAL: support::alloc::Counting = support::alloc::Counting;

fn allocations() -> u64 {
    thread_allocations()
}

/// Runs `f` once to warm up, then 1000 times, asserting no allocation in those.
#[track_caller]
fn assert_no_alloc(name: &str, mut f: impl FnMut()) {
    f();
    let before = allocations();
    for _ in 0..1000 {
        f();
    }
    let n = allocations() - before;
    assert_eq!(n, 0, "{name}: {n} allocations over 1000 calls");
}

#[test]
fn every_recording_method_is_allocation_free_on_existing_series() {
    use AgentPhilosophy::*;
    let c = MetricsCollector::new();
    let user_actions = c
        .create_custom_metric(
            "user_actions",
            MetricType::Counter,
            "U",
            &["action_type", "user_role"],
        )
        .unwrap();
    let depth = c
        .create_custom_metric("queue_depth", MetricType::Gauge, "D", &["queue"])
        .unwrap();
    let latency = c
        .create_custom_metric(
            "request_latency",
            MetricType::histogram(),
            "L",
            &["endpoint"],
        )
        .unwrap();
    let rtt = c
        .create_custom_metric("rtt", MetricType::summary(), "R", &[])
        .unwrap();
    let info = c
        .create_custom_metric("build_info", MetricType::Info, "B", &["commit"])
        .unwrap();

    assert_no_alloc("record_agent_created", || {
        c.record_agent_created(React, "initializing")
    });
    assert_no_alloc("record_agent_completed", || {
        c.record_agent_completed(React, "completed")
    });
    assert_no_alloc("record_agent_initialization", || {
        c.record_agent_initialization(React, 1.5)
    });
    assert_no_alloc("record_agent_initialization(Duration)", || {
        c.record_agent_initialization(MultiAgent, Duration::from_millis(1500))
    });
    assert_no_alloc("record_agent_execution", || {
        c.record_agent_execution(ChainOfThought, 30.5)
    });
    assert_no_alloc("record_state_transition", || {
        c.record_state_transition("initializing", "running", React)
    });
    assert_no_alloc("update_resource_usage", || {
        c.update_resource_usage("agent-123", React, 45.5, 256.0)
    });
    assert_no_alloc("record_container_creation(warm)", || {
        c.record_container_creation(React, 0.05, true)
    });
    assert_no_alloc("record_container_creation(cold)", || {
        c.record_container_creation(Autonomous, 1.0, false)
    });
    assert_no_alloc("update_system_resources", || {
        c.update_system_resources(65.5, 72.3, 4096.0)
    });
    assert_no_alloc("set_container_pool_size", || {
        c.set_container_pool_size(React, 8)
    });
    assert_no_alloc("record_cache_access(hit)", || {
        c.record_cache_access("tool_metadata", true, 150)
    });
    assert_no_alloc("record_cache_access(miss)", || {
        c.record_cache_access("tool_metadata", false, 150)
    });
    assert_no_alloc("record_gc_collection", || c.record_gc_collection(25.5));
    assert_no_alloc("record_react_iterations", || {
        c.record_react_iterations("agent-123", 5)
    });
    assert_no_alloc("record_cot_steps", || c.record_cot_steps("agent-456", 7));
    assert_no_alloc("record_multi_agent_message", || {
        c.record_multi_agent_message("direct")
    });
    assert_no_alloc("record_consensus", || c.record_consensus("reached"));
    assert_no_alloc("record_autonomous_goal", || {
        c.record_autonomous_goal("active", "high")
    });
    assert_no_alloc("record_autonomous_decision", || {
        c.record_autonomous_decision("autonomous-agent-1")
    });
    assert_no_alloc("record_tool_execution", || {
        c.record_tool_execution("calculator", 0.25, "success", None)
    });
    assert_no_alloc("record_tool_execution(error)", || {
        c.record_tool_execution("web_search", 1.5, "failed", Some("TimeoutError"))
    });
    assert_no_alloc("record_error", || {
        c.record_error("ValidationError", "sandbox")
    });
    assert_no_alloc("record_agent_failure", || {
        c.record_agent_failure(React, "execution_timeout")
    });
    // Refused values are counted without allocating either.
    assert_no_alloc("refused duration", || {
        c.record_agent_execution(React, f64::NAN)
    });
    assert_no_alloc("refused gc amount", || c.record_gc_collection(-1.0));
    assert_no_alloc("refused gauge value", || {
        c.update_system_resources(f64::NAN, f64::INFINITY, f64::NAN)
    });
    // Custom metrics.
    assert_no_alloc("custom counter", || {
        user_actions
            .labels(&["agent_create", "admin"])
            .unwrap()
            .inc()
    });
    assert_no_alloc("custom counter add", || {
        user_actions
            .labels(&["agent_create", "admin"])
            .unwrap()
            .add(0.5)
    });
    assert_no_alloc("custom gauge", || {
        let s = depth.labels(&["q1"]).unwrap();
        s.set(3.0);
        s.inc();
        s.dec();
        s.sub(1.0);
    });
    assert_no_alloc("custom histogram", || {
        latency.labels(&["/api/agents"]).unwrap().observe(0.123)
    });
    assert_no_alloc("custom summary", || {
        rtt.labels::<&str>(&[]).unwrap().observe(0.5)
    });
    assert_no_alloc("custom info", || {
        info.labels(&["abc123"]).unwrap();
    });
    assert_no_alloc("custom refused op", || {
        latency.labels(&["/api/agents"]).unwrap().inc()
    });

    // Control: the counter does see allocations (a new series allocates).
    let before = allocations();
    c.record_error("NewError", "new_component");
    assert!(
        allocations() > before,
        "the counting allocator counts nothing"
    );

    // The calls did record.
    let text = c.encode_text();
    assert!(
        text.contains("agentcore_gc_collections_total 2002\n"),
        "{text}"
    );
    assert!(text.contains(
        "agentcore_user_actions_total{action_type=\"agent_create\",user_role=\"admin\"} 1501.5\n"
    ));
}
