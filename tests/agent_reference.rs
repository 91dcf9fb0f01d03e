//! Behaviours of the specification's reference implementation (the Python
//! `metrics_collector.py` the specification documents) that its text leaves implicit.

use agentcore_telemetry::MetricsCollector;

fn lines_with<'a>(text: &'a str, fragment: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.contains(fragment)).collect()
}

/// The reference counts a tool error only `if error_type:`: an empty error type is no error
/// (and `error_type=""` is, to Prometheus, the label left out).
#[test]
fn an_empty_error_type_counts_no_tool_error() {
    let c = MetricsCollector::new();
    c.record_tool_execution("web_search", 1.5, "failed", Some(""));
    let text = c.encode_text();
    assert_eq!(
        lines_with(&text, "agentcore_tool_executions_total{"),
        ["agentcore_tool_executions_total{tool_id=\"web_search\",status=\"failed\"} 1"]
    );
    assert_eq!(
        lines_with(&text, "agentcore_tool_errors_total{"),
        Vec::<&str>::new(),
        "an empty error type was counted as a tool error"
    );
}

/// The `le` bounds of one series of `family` in `text`.
fn bounds(text: &str, family: &str) -> Vec<String> {
    let prefix = format!("{family}_bucket{{");
    let mut out = Vec::new();
    for line in text.lines().filter(|l| l.starts_with(&prefix)) {
        let le = line.split("le=\"").nth(1).and_then(|r| r.split('"').next());
        let le = le.unwrap_or_else(|| panic!("no le in {line}"));
        if out.iter().any(|b| b == le) {
            break; // the next series
        }
        out.push(le.to_string());
    }
    out
}

/// Every bucket bound the reference implementation gives a built-in histogram is a bound of
/// it here too (more are fine): a dashboard or SLO written against the reference's buckets
/// (ReAct runs within `le="10"` iterations, tools within `le="2"` seconds), or a fleet
/// aggregating both implementations' buckets by `le`, finds each of them.
#[test]
fn every_reference_bucket_bound_is_a_bound_of_the_builtin_histograms() {
    use agentcore_telemetry::AgentPhilosophy::React;
    let c = MetricsCollector::new();
    c.record_agent_initialization(React, 1.0);
    c.record_agent_execution(React, 1.0);
    c.record_container_creation(React, 1.0, true);
    c.record_tool_execution("calculator", 1.0, "success", None);
    c.record_react_iterations("agent-123", 5);
    c.record_cot_steps("agent-456", 7);
    let text = c.encode_text();
    // `metrics_collector.py`, the `buckets=` of each family.
    let reference: [(&str, &[&str]); 6] = [
        (
            "agentcore_agent_initialization_seconds",
            &["0.01", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10"],
        ),
        (
            "agentcore_agent_execution_seconds",
            &["0.1", "0.5", "1", "5", "10", "30", "60", "120", "300"],
        ),
        (
            "agentcore_container_creation_seconds",
            &["0.01", "0.05", "0.1", "0.25", "0.5", "1", "2", "5"],
        ),
        (
            "agentcore_tool_execution_seconds",
            &["0.01", "0.05", "0.1", "0.25", "0.5", "1", "2", "5"],
        ),
        (
            "agentcore_react_iterations",
            &["1", "3", "5", "10", "15", "20", "30", "50"],
        ),
        ("agentcore_cot_steps", &["1", "3", "5", "10", "15", "20"]),
    ];
    let mut missing = Vec::new();
    for (family, wanted) in reference {
        let have = bounds(&text, family);
        assert!(have.len() > 1, "{family}: no buckets in\n{text}");
        let lacking: Vec<&str> = wanted
            .iter()
            .copied()
            .filter(|b| !have.iter().any(|h| h == b))
            .collect();
        if !lacking.is_empty() {
            missing.push(format!("{family} lacks le {lacking:?} (has {have:?})"));
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}
