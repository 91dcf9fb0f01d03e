//! Every built-in metric's exposition (name, `# TYPE`, label names), per-agent series removal
//! and the cardinality cap.

mod support;

use agentcore_telemetry::agent::{MetricType, BUILTIN_METRICS};
use agentcore_telemetry::registry::self_metrics::SELF_METRICS;
use agentcore_telemetry::{AgentPhilosophy, CollectorConfig, MetricKind, MetricsCollector};
use support::agent::record_everything;

/// The label names of a sample line (`le` and `quantile` excluded), in order.
fn label_names(line: &str) -> Vec<String> {
    let Some(open) = line.find('{') else {
        return Vec::new();
    };
    let close = line.rfind('}').unwrap();
    line[open + 1..close]
        .split("\",")
        .map(|pair| pair.split('=').next().unwrap().to_string())
        .filter(|n| n != "le" && n != "quantile")
        .collect()
}

#[test]
fn every_builtin_metric_is_exposed_with_its_type_and_exact_label_names() {
    let c = MetricsCollector::new();
    record_everything(&c);
    let text = c.encode_text();
    assert_eq!(BUILTIN_METRICS.len(), 31);
    for m in BUILTIN_METRICS {
        let keyword = match m.kind {
            MetricKind::Counter => "counter",
            MetricKind::Gauge | MetricKind::Info => "gauge",
            MetricKind::Histogram => "histogram",
            MetricKind::Summary => "summary",
        };
        assert!(
            text.contains(&format!("# TYPE {} {keyword}\n", m.name)),
            "# TYPE of {}",
            m.name
        );
        assert!(
            text.contains(&format!("# HELP {} ", m.name)),
            "# HELP of {}",
            m.name
        );
        let suffixes: &[&str] = if m.kind == MetricKind::Histogram {
            &["_bucket", "_sum", "_count"]
        } else {
            &[""]
        };
        for suffix in suffixes {
            let sample = format!("{}{suffix}", m.name);
            let lines: Vec<&str> = text
                .lines()
                .filter(|l| {
                    l.strip_prefix(&sample)
                        .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
                })
                .collect();
            assert!(!lines.is_empty(), "no sample {sample}");
            for line in lines {
                assert_eq!(label_names(line), m.labels, "labels of {line}");
            }
        }
    }
    // Exactly the spec's names (plus the telemetry's own and the standard process metrics the
    // collector registers by default): no other family.
    let exposed: std::collections::BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    let spec: Vec<&str> = exposed
        .iter()
        .copied()
        .filter(|name| !SELF_METRICS.contains(name) && !name.starts_with("process_"))
        .collect();
    assert_eq!(spec.len(), 31, "{spec:?}");
    let process = exposed.iter().filter(|n| n.starts_with("process_")).count();
    assert_eq!(process, if cfg!(target_os = "linux") { 8 } else { 0 });
    assert!(
        SELF_METRICS.iter().all(|m| exposed.contains(m)),
        "{exposed:?}"
    );
}

/// The specification's "Prometheus Metrics Generated" lists, transcribed from its text (not
/// from `BUILTIN_METRICS`, which the test above compares the scrape with): name, label names in
/// order, type. Its "(Info)" is exposed as a gauge in the text format 0.0.4, which has no info
/// type (as the Python client exposes an `Info`).
const SPEC_METRICS: [(&str, &[&str], &str); 31] = [
    (
        "agentcore_agents_total",
        &["philosophy", "status"],
        "Counter",
    ),
    ("agentcore_agents_active", &["philosophy"], "Gauge"),
    (
        "agentcore_agent_initialization_seconds",
        &["philosophy"],
        "Histogram",
    ),
    (
        "agentcore_agent_execution_seconds",
        &["philosophy"],
        "Histogram",
    ),
    (
        "agentcore_agent_state_transitions_total",
        &["from_state", "to_state", "philosophy"],
        "Counter",
    ),
    (
        "agentcore_agent_cpu_percent",
        &["agent_id", "philosophy"],
        "Gauge",
    ),
    (
        "agentcore_agent_memory_mb",
        &["agent_id", "philosophy"],
        "Gauge",
    ),
    (
        "agentcore_container_creation_seconds",
        &["philosophy", "warm_start"],
        "Histogram",
    ),
    ("agentcore_system_cpu_percent", &[], "Gauge"),
    ("agentcore_system_memory_percent", &[], "Gauge"),
    ("agentcore_system_memory_available_mb", &[], "Gauge"),
    ("agentcore_cache_hits_total", &["cache_type"], "Counter"),
    ("agentcore_cache_misses_total", &["cache_type"], "Counter"),
    ("agentcore_cache_size", &["cache_type"], "Gauge"),
    ("agentcore_container_pool_size", &["philosophy"], "Gauge"),
    ("agentcore_warm_starts_total", &["philosophy"], "Counter"),
    ("agentcore_cold_starts_total", &["philosophy"], "Counter"),
    ("agentcore_gc_collections_total", &[], "Counter"),
    ("agentcore_memory_released_mb_total", &[], "Counter"),
    ("agentcore_react_iterations", &["agent_id"], "Histogram"),
    ("agentcore_cot_steps", &["agent_id"], "Histogram"),
    (
        "agentcore_multi_agent_messages_total",
        &["message_type"],
        "Counter",
    ),
    (
        "agentcore_multi_agent_consensus_total",
        &["result"],
        "Counter",
    ),
    (
        "agentcore_autonomous_goals_total",
        &["status", "priority"],
        "Counter",
    ),
    (
        "agentcore_autonomous_decisions_total",
        &["agent_id"],
        "Counter",
    ),
    (
        "agentcore_tool_executions_total",
        &["tool_id", "status"],
        "Counter",
    ),
    (
        "agentcore_tool_execution_seconds",
        &["tool_id"],
        "Histogram",
    ),
    (
        "agentcore_tool_errors_total",
        &["tool_id", "error_type"],
        "Counter",
    ),
    (
        "agentcore_errors_total",
        &["error_type", "component"],
        "Counter",
    ),
    (
        "agentcore_agent_failures_total",
        &["philosophy", "failure_reason"],
        "Counter",
    ),
    (
        "agentcore_runtime_info",
        &["version", "environment", "platform"],
        "Info",
    ),
];

#[test]
fn every_specification_metric_is_scraped_with_the_listed_labels_and_type() {
    let c = MetricsCollector::new();
    record_everything(&c);
    let text = c.encode_text();
    let families = support::exposition::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    for (name, labels, kind) in SPEC_METRICS {
        let family = families
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("{name} is not scraped"));
        let keyword = match kind {
            "Counter" => "counter",
            "Gauge" | "Info" => "gauge",
            "Histogram" => "histogram",
            other => unreachable!("{other}"),
        };
        assert_eq!(family.kind.as_deref(), Some(keyword), "# TYPE of {name}");
        assert!(!family.samples.is_empty(), "{name} has no sample");
        let samples: &[&str] = match kind {
            "Histogram" => &["_bucket", "_sum", "_count"],
            _ => &[""],
        };
        for suffix in samples {
            let sample = format!("{name}{suffix}");
            assert!(
                family.samples.iter().any(|s| s.name == sample),
                "no sample {sample}"
            );
        }
        for s in &family.samples {
            let names: Vec<&str> = s
                .labels
                .iter()
                .map(|(k, _)| k.as_str())
                .filter(|k| *k != "le")
                .collect();
            assert_eq!(names, labels, "label names of {} {:?}", s.name, s.labels);
        }
        if kind == "Info" {
            assert!(family.samples.iter().all(|s| s.value == 1.0), "{name}");
        }
    }
}

#[test]
fn remove_agent_drops_every_series_of_that_agent_only() {
    let c = MetricsCollector::new();
    for id in ["agent-1", "agent-2"] {
        c.update_resource_usage(id, AgentPhilosophy::React, 10.0, 20.0);
        c.record_react_iterations(id, 3);
        c.record_cot_steps(id, 4);
        c.record_autonomous_decision(id);
    }
    assert_eq!(c.remove_agent("agent-1"), 5);
    let text = c.encode_text();
    assert!(!text.contains("agent-1"), "{text}");
    for line in [
        "agentcore_agent_cpu_percent{agent_id=\"agent-2\",philosophy=\"react\"} 10\n",
        "agentcore_agent_memory_mb{agent_id=\"agent-2\",philosophy=\"react\"} 20\n",
        "agentcore_react_iterations_count{agent_id=\"agent-2\"} 1\n",
        "agentcore_cot_steps_count{agent_id=\"agent-2\"} 1\n",
        "agentcore_autonomous_decisions_total{agent_id=\"agent-2\"} 1\n",
    ] {
        assert!(text.contains(line), "missing {line}");
    }
    assert_eq!(c.remove_agent("agent-1"), 0);
    // An agent that comes back starts from zero.
    c.record_autonomous_decision("agent-1");
    assert!(c
        .encode_text()
        .contains("agentcore_autonomous_decisions_total{agent_id=\"agent-1\"} 1\n"));
    // Other agent-free families are untouched by remove_agent.
    c.record_agent_created(AgentPhilosophy::React, "initializing");
    c.remove_agent("agent-2");
    assert!(c
        .encode_text()
        .contains("agentcore_agents_active{philosophy=\"react\"} 1\n"));
}

#[test]
fn cardinality_storm_folds_into_the_overflow_series_and_is_counted() {
    let c = MetricsCollector::with_config(CollectorConfig {
        max_series_per_family: 3,
        ..CollectorConfig::default()
    });
    for i in 0..10 {
        let id = format!("agent-{i}");
        c.update_resource_usage(&id, AgentPhilosophy::React, i as f64, 1.0);
        c.record_autonomous_decision(&id);
    }
    let text = c.encode_text();
    let cpu_series = text
        .lines()
        .filter(|l| l.starts_with("agentcore_agent_cpu_percent{"))
        .count();
    assert_eq!(cpu_series, 4, "3 series + overflow:\n{text}");
    assert!(text.contains(
        "agentcore_agent_cpu_percent{agent_id=\"__overflow__\",philosophy=\"__overflow__\"} 9\n"
    ));
    assert!(text.contains("agentcore_autonomous_decisions_total{agent_id=\"__overflow__\"} 7\n"));
    for family in [
        "agentcore_agent_cpu_percent",
        "agentcore_agent_memory_mb",
        "agentcore_autonomous_decisions_total",
    ] {
        assert!(
            text.contains(&format!(
                "agentcore_telemetry_series_overflow_total{{family=\"{family}\"}} 7\n"
            )),
            "overflow count of {family}:\n{text}"
        );
    }
    // Removing agents makes room again.
    for i in 0..3 {
        c.remove_agent(&format!("agent-{i}"));
    }
    c.record_autonomous_decision("agent-new");
    assert!(c
        .encode_text()
        .contains("agentcore_autonomous_decisions_total{agent_id=\"agent-new\"} 1\n"));
    // Custom metrics share the cap.
    let m = c
        .create_custom_metric("hits_total", MetricType::Counter, "Hits", &["route"])
        .unwrap();
    for i in 0..5 {
        m.labels(&[format!("/r{i}")]).unwrap().inc();
    }
    assert!(c
        .encode_text()
        .contains("agentcore_hits_total{route=\"__overflow__\"} 2\n"));
}
