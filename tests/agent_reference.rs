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
