//! The MetricsCollector's exposition — every specification metric, every metric type through
//! custom metrics, hostile label values — judged by `promtool check metrics` and scraped by a real
//! Prometheus server through the `/metrics` exporter.
//!
//! Needs `prometheus` and `promtool` (`.ci/install-prometheus`); skipped loudly without them,
//! except under `CI=true`, where their absence fails the test.
#![cfg(feature = "http-server")]

mod support;

use std::time::{Duration, Instant};

use agentcore_telemetry::agent::{MetricType, MetricsCollector};
use agentcore_telemetry::serve::{MetricsServer, ServerConfig};
use agentcore_telemetry::{AgentPhilosophy::*, Buckets};
use support::agent::record_everything;
use support::exposition::parse;
use support::prometheus::{promtool_check_metrics, sample_lines, PrometheusServer};

/// A label value with everything the format must escape or keep raw.
const HOSTILE: &str = "say \"hi\" C:\\dir\nline2\ttab é✓";

/// The lint warnings promtool 2.42 raises about names the specification mandates (we keep the
/// names): "metric names should not contain abbreviated units" for the three `_mb` metrics.
const MANDATED_NAME_LINTS: &[&str] = &[
    "agentcore_agent_memory_mb",
    "agentcore_memory_released_mb_total",
    "agentcore_system_memory_available_mb",
];

fn full_collector() -> MetricsCollector {
    let c = MetricsCollector::new();
    record_everything(&c);
    c.record_agent_created(ChainOfThought, "initializing");
    c.record_container_creation(MultiAgent, 0.8, false);
    c.record_tool_execution(HOSTILE, 0.01, "failed", Some(HOSTILE));
    let counter = c
        .create_custom_metric(
            "user_actions_total",
            MetricType::Counter,
            "User actions.",
            &["action_type", "user_role"],
        )
        .unwrap();
    counter.labels(&["agent_create", "admin"]).unwrap().inc();
    // Named as the specification names it, without `_total`: exposed with it (promtool's lint
    // flags a counter without the suffix).
    let retries = c
        .create_custom_metric("tool_retries", MetricType::Counter, "Tool retries.", &[])
        .unwrap();
    retries.labels::<&str>(&[]).unwrap().inc();
    let gauge = c
        .create_custom_metric("queue_depth", MetricType::Gauge, "Queue depth.", &["queue"])
        .unwrap();
    gauge.labels(&[HOSTILE]).unwrap().set(3.0);
    let hist = c
        .create_custom_metric(
            "request_latency_seconds",
            MetricType::Histogram(Buckets::new(vec![0.1, 1.0]).unwrap()),
            "API request latency.",
            &["endpoint"],
        )
        .unwrap();
    hist.labels(&["/api/agents"]).unwrap().observe(0.123);
    let summary = c
        .create_custom_metric(
            "payload_bytes",
            MetricType::summary(),
            "Payload sizes.",
            &["endpoint"],
        )
        .unwrap();
    summary.labels(&["/api/agents"]).unwrap().observe(512.0);
    let info = c
        .create_custom_metric("build", MetricType::Info, "Build information.", &["commit"])
        .unwrap();
    info.labels(&["abc123"]).unwrap();
    c
}

#[test]
fn promtool_accepts_the_full_collector_exposition() {
    crate::require_prometheus!("promtool_accepts_the_full_collector_exposition");
    let text = full_collector().encode_text();
    parse(&text).unwrap_or_else(|e| panic!("strict parser: {e}\n{text}"));
    let result = promtool_check_metrics(&text);
    assert!(
        result.exit_code == 0 || result.exit_code == 3,
        "promtool refused the exposition: {result:#?}\n{text}"
    );
    let unexpected: Vec<&String> = result
        .lint_warnings
        .iter()
        .filter(|w| {
            !MANDATED_NAME_LINTS
                .iter()
                .any(|m| w.starts_with(&format!("{m} ")))
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "unexpected lint warnings: {unexpected:#?}"
    );
    // And the list stays true: each mandated name it excuses is really warned about.
    for name in MANDATED_NAME_LINTS {
        assert!(
            result
                .lint_warnings
                .iter()
                .any(|w| w.starts_with(&format!("{name} "))),
            "{name} is no longer warned about: {result:#?}"
        );
    }
}

#[test]
fn real_prometheus_ingests_the_collector_exactly() {
    crate::require_prometheus!("real_prometheus_ingests_the_collector_exactly");
    let collector = full_collector();
    let exposition = collector.encode_text();
    let exporter = MetricsServer::start(
        ServerConfig::default()
            .with_addr("127.0.0.1:0".parse().unwrap())
            .with_self_metrics(false),
        collector.get_registry().clone(),
    )
    .expect("start exporter");
    let prom = PrometheusServer::start(exporter.local_addr()).expect("start prometheus");
    let target = prom.wait_for_target_up(Duration::from_secs(30));
    assert_eq!(target.health, "up", "{target:#?}\n{}", prom.log());
    assert_eq!(target.last_error, "", "{target:#?}");

    let expected = sample_lines(&exposition).len();
    let deadline = Instant::now() + Duration::from_secs(10);
    let series = loop {
        let series = prom.series_for_job().expect("series");
        if series.len() >= expected || Instant::now() >= deadline {
            break series;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        series.len(),
        expected,
        "ingested series differ from the exposition's samples"
    );

    let one = |promql: &str| {
        let r = prom.query(promql).expect("query");
        assert_eq!(r.len(), 1, "{promql}: {r:?}");
        r.into_iter().next().unwrap()
    };
    assert_eq!(
        one(r#"agentcore_tool_executions_total{tool_id="calculator",status="success"}"#).1,
        "1"
    );
    assert_eq!(one("agentcore_memory_released_mb_total").1, "25.5");
    assert_eq!(
        one(r#"agentcore_agent_initialization_seconds_bucket{philosophy="react",le="2.5"}"#).1,
        "1"
    );
    let (labels, value) = one(r#"agentcore_tool_errors_total{error_type!="TimeoutError"}"#);
    assert_eq!(labels["tool_id"], HOSTILE);
    assert_eq!(labels["error_type"], HOSTILE);
    assert_eq!(value, "1");
    assert_eq!(one(r#"agentcore_runtime_info{version="1.0.0"}"#).1, "1");
}
