//! `MetricsCollector::remove_agent` costs the same however many agents are live: an agent
//! runtime calls it for every agent that ends, so a pass over every series of the per-agent
//! families on each call made ending N agents quadratic in N.

use std::time::{Duration, Instant};

use agentcore_telemetry::{AgentPhilosophy, MetricsCollector};

#[test]
fn ending_nine_thousand_agents_is_linear() {
    const N: usize = 9_000;
    let c = MetricsCollector::new();
    let ids: Vec<String> = (0..N).map(|i| format!("agent-{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let p = AgentPhilosophy::ALL[i % 4];
        c.update_resource_usage(id, p, 1.0, 1.0);
        c.record_react_iterations(id, 3);
        c.record_cot_steps(id, 3);
        c.record_autonomous_decision(id);
    }
    // An agent reported under two philosophies has both series removed.
    c.update_resource_usage(&ids[0], AgentPhilosophy::Autonomous, 2.0, 2.0);
    let started = Instant::now();
    let removed: usize = ids.iter().map(|id| c.remove_agent(id)).sum();
    let took = started.elapsed();
    assert_eq!(removed, 5 * N + 2);
    let text = c.encode_text();
    assert!(
        !text.contains("agent_id=\"agent-"),
        "every agent's series is gone"
    );
    assert!(
        took < Duration::from_secs(10),
        "removing {N} agents took {took:?}"
    );
}
