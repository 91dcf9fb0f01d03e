//! `Family::with_named_labels` and `CustomMetric::named_labels`: the series by label name, in
//! any order, the same series `with_label_values` gives for the values in the family's order;
//! a missing, unknown or repeated name refused with its own error, nothing created.

use agentcore_telemetry::agent::MetricType;
use agentcore_telemetry::{Buckets, Error, MetricsCollector, Registry};

#[test]
fn named_labels_in_any_order_are_the_positional_series() {
    let registry = Registry::new();
    let calls = registry
        .counter_family("calls_total", "Calls.", &["tool", "status", "region"])
        .unwrap();
    let orders: [[(&str, &str); 3]; 3] = [
        [("tool", "search"), ("status", "ok"), ("region", "eu")],
        [("region", "eu"), ("tool", "search"), ("status", "ok")],
        [("status", "ok"), ("region", "eu"), ("tool", "search")],
    ];
    for labels in &orders {
        calls.with_named_labels(labels).unwrap().inc();
    }
    assert_eq!(calls.len(), 1);
    assert_eq!(calls.get(&["search", "ok", "eu"]).unwrap().get(), 3.0);
    // Values that are other names' values are still placed by name.
    calls
        .with_named_labels(&[("tool", "ok"), ("status", "search"), ("region", "eu")])
        .unwrap()
        .inc();
    assert_eq!(calls.get(&["ok", "search", "eu"]).unwrap().get(), 1.0);
    let latency = registry
        .histogram_family("latency_seconds", "Latency.", &["tool"], Buckets::default())
        .unwrap();
    latency
        .with_named_labels(&[("tool", "search")])
        .unwrap()
        .observe(0.5);
    assert_eq!(latency.get(&["search"]).unwrap().snapshot().count, 1);
    let singleton = registry.gauge_family("up", "Up.", &[]).unwrap();
    singleton.with_named_labels(&[]).unwrap().set(1.0);
    assert_eq!(singleton.get::<&str>(&[]).unwrap().get(), 1.0);
}

#[test]
fn missing_unknown_and_repeated_names_are_refused_and_create_nothing() {
    let registry = Registry::new();
    let calls = registry
        .counter_family("calls_total", "Calls.", &["tool", "status"])
        .unwrap();
    assert_eq!(
        calls.with_named_labels(&[("tool", "search")]).unwrap_err(),
        Error::WrongLabelCount {
            expected: 2,
            got: 1
        }
    );
    assert_eq!(
        calls
            .with_named_labels(&[("tool", "a"), ("status", "b"), ("x", "c")])
            .unwrap_err(),
        Error::WrongLabelCount {
            expected: 2,
            got: 3
        }
    );
    let unknown = calls
        .with_named_labels(&[("tool", "search"), ("state", "ok")])
        .unwrap_err();
    assert_eq!(
        unknown,
        Error::UnknownLabelName {
            name: "state".into()
        }
    );
    assert_eq!(
        unknown.to_string(),
        "label name \"state\" is not one of the family's"
    );
    let twice = calls
        .with_named_labels(&[("tool", "search"), ("tool", "fetch")])
        .unwrap_err();
    assert_eq!(
        twice,
        Error::DuplicateLabelName {
            name: "tool".into()
        }
    );
    assert_eq!(twice.to_string(), "label name \"tool\" given twice");
    assert!(calls.is_empty(), "a refused lookup created a series");
}

/// The specification's `custom_counter.labels(action_type="agent_create", user_role="admin")`.
#[test]
fn a_custom_metric_takes_its_labels_by_name() {
    let collector = MetricsCollector::new();
    let actions = collector
        .create_custom_metric(
            "user_actions_total",
            MetricType::Counter,
            "User actions.",
            &["action_type", "user_role"],
        )
        .unwrap();
    actions
        .named_labels(&[("action_type", "agent_create"), ("user_role", "admin")])
        .unwrap()
        .inc();
    actions
        .named_labels(&[("user_role", "admin"), ("action_type", "agent_create")])
        .unwrap()
        .inc();
    let text = collector.encode_text();
    assert!(
        text.contains(
            "agentcore_user_actions_total{action_type=\"agent_create\",user_role=\"admin\"} 2\n"
        ),
        "{text}"
    );
    assert!(matches!(
        actions.named_labels(&[("action", "x"), ("user_role", "y")]),
        Err(Error::UnknownLabelName { .. })
    ));
}
