//! The specification's custom metrics on a `MetricsCollector`: created once by name, type,
//! description and labels (prefixed with `agentcore_`; counters end in `_total`), found again by
//! name, recorded through one handle whatever their type, and refused with a clear error when
//! they would clash with a built-in metric.
//!
//! `cargo run --example custom_metrics`

use agentcore_telemetry::agent::MetricType;
use agentcore_telemetry::{Error, MetricsCollector};

fn main() {
    let collector = MetricsCollector::new();

    let actions = collector
        .create_custom_metric(
            "user_actions",
            MetricType::Counter,
            "User actions performed",
            &["action_type", "user_role"],
        )
        .expect("a new custom counter");
    let queue = collector
        .create_custom_metric(
            "queue_depth",
            MetricType::Gauge,
            "Tasks waiting",
            &["queue"],
        )
        .expect("a new custom gauge");
    let tokens = collector
        .create_custom_metric(
            "tokens_per_call",
            MetricType::histogram(),
            "Tokens used per model call",
            &["model"],
        )
        .expect("a new custom histogram");

    actions.labels(&["agent_create", "admin"]).unwrap().inc();
    actions
        .labels(&["agent_create", "admin"])
        .unwrap()
        .inc_by(2);
    queue.labels(&["planner"]).unwrap().set(7.0);
    tokens.labels(&["small"]).unwrap().observe(812.0);

    // Found again by its name, with or without the prefix and suffix.
    let again = collector.get_custom_metric("user_actions_total").unwrap();
    assert_eq!(
        again.labels(&["agent_create", "admin"]).unwrap().get(),
        Some(3.0)
    );

    // A built-in's name is taken; another type under an existing custom name is refused.
    assert!(matches!(
        collector.create_custom_metric("agents_active", MetricType::Gauge, "x", &["philosophy"]),
        Err(Error::DuplicateMetric { .. })
    ));
    match collector.create_custom_metric("user_actions", MetricType::Gauge, "x", &[]) {
        Err(e) => println!("refused as expected: {e}"),
        Ok(_) => panic!("a gauge under a counter's name must be refused"),
    }

    let text = collector.encode_text();
    for line in text.lines().filter(|l| {
        l.contains("agentcore_user_actions")
            || l.contains("agentcore_queue_depth")
            || l.contains("agentcore_tokens_per_call_count")
    }) {
        println!("{line}");
    }
    assert!(text.contains(
        "agentcore_user_actions_total{action_type=\"agent_create\",user_role=\"admin\"} 3\n"
    ));
    assert!(text.contains("agentcore_queue_depth{queue=\"planner\"} 7\n"));
    assert!(text.contains("agentcore_tokens_per_call_count{model=\"small\"} 1\n"));
}
