//! The exposition served by `MetricsServer`, judged by the real Prometheus tools:
//! `promtool check metrics` and a `prometheus` server that scrapes it.
//!
//! Needs `prometheus` and `promtool` (`.ci/install-prometheus`); skipped loudly without them,
//! except under `CI=true`, where their absence fails the test.
#![cfg(feature = "http-server")]

mod support;

use std::time::Duration;

use agentcore_telemetry::serve::{MetricsServer, ServerConfig};
use support::prometheus::{promtool_check_metrics, sample_lines, PrometheusServer};

/// The escaped label value as it appears on the wire ...
const ESCAPED_WIRE: &str = r#"say \"hi\" C:\\dir\nline2"#;
/// ... and as Prometheus must store it.
const ESCAPED_VALUE: &str = "say \"hi\" C:\\dir\nline2";

/// A hand-written exposition with one of every metric type and an escaped label value.
fn exposition() -> String {
    format!(
        r#"# HELP agent_requests_total Requests handled.
# TYPE agent_requests_total counter
agent_requests_total{{route="/chat",status="200"}} 1027
agent_requests_total{{route="/chat",status="500"}} 3
# HELP agent_queue_depth Items waiting in the queue.
# TYPE agent_queue_depth gauge
agent_queue_depth 42.5
# HELP agent_latency_seconds Request latency.
# TYPE agent_latency_seconds histogram
agent_latency_seconds_bucket{{le="0.005"}} 2
agent_latency_seconds_bucket{{le="0.1"}} 17
agent_latency_seconds_bucket{{le="1"}} 24
agent_latency_seconds_bucket{{le="+Inf"}} 25
agent_latency_seconds_sum 7.25
agent_latency_seconds_count 25
# HELP agent_tool_seconds Tool call duration.
# TYPE agent_tool_seconds summary
agent_tool_seconds{{quantile="0.5"}} 0.12
agent_tool_seconds{{quantile="0.99"}} 0.9
agent_tool_seconds_sum 31.5
agent_tool_seconds_count 200
# HELP agent_errors_total Errors by message.
# TYPE agent_errors_total counter
agent_errors_total{{msg="{ESCAPED_WIRE}"}} 2
"#
    )
}

/// Serves [`exposition`] alone (without the server's own section, checked separately below).
fn start_exporter() -> MetricsServer {
    let text = exposition();
    MetricsServer::start(
        ServerConfig::default()
            .with_addr("127.0.0.1:0".parse().unwrap())
            .with_self_metrics(false),
        move |out: &mut String| out.push_str(&text),
    )
    .expect("start exporter")
}

/// Fetches the exposition through the exporter, as Prometheus would see it.
fn scrape(exporter: &MetricsServer) -> String {
    ureq::get(&format!("http://{}/metrics", exporter.local_addr()))
        .call()
        .expect("scrape")
        .into_string()
        .expect("utf-8 exposition")
}

#[test]
fn promtool_accepts_the_served_exposition() {
    crate::require_prometheus!("promtool_accepts_the_served_exposition");
    let exporter = start_exporter();
    let served = scrape(&exporter);
    assert_eq!(served, exposition());
    let result = promtool_check_metrics(&served);
    assert_eq!(
        result.exit_code, 0,
        "promtool rejected the exposition: {result:#?}"
    );
    assert!(result.lint_warnings.is_empty(), "{result:#?}");
}

#[test]
fn promtool_harness_reports_errors_and_lint_warnings() {
    crate::require_prometheus!("promtool_harness_reports_errors_and_lint_warnings");
    let broken = promtool_check_metrics("metric{ 1\n");
    assert_ne!(broken.exit_code, 0, "{broken:#?}");
    let lint = promtool_check_metrics("# TYPE jobs counter\njobs 1\n");
    assert_eq!(lint.exit_code, 3, "{lint:#?}");
    assert!(
        lint.lint_warnings.iter().any(|w| w.contains("_total")),
        "{lint:#?}"
    );
}

#[test]
fn real_prometheus_scrapes_and_ingests_everything() {
    crate::require_prometheus!("real_prometheus_scrapes_and_ingests_everything");
    let exporter = start_exporter();
    let prom = PrometheusServer::start(exporter.local_addr()).expect("start prometheus");

    let target = prom.wait_for_target_up(Duration::from_secs(30));
    assert_eq!(
        target.health,
        "up",
        "target not up: {target:#?}\nprometheus log:\n{}",
        prom.log()
    );
    assert_eq!(target.last_error, "", "{target:#?}");
    assert_eq!(
        target.scrape_url,
        format!("http://{}/metrics", exporter.local_addr())
    );

    // Every sample line became exactly one series (no more, no fewer).
    let expected = sample_lines(&exposition()).len();
    assert_eq!(expected, 14);
    // Health flips to up right after the first scrape's samples are committed; poll a
    // little anyway so a slow machine cannot race the query.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let series = loop {
        let series = prom.series_for_job().expect("series");
        if series.len() >= expected || std::time::Instant::now() >= deadline {
            break series;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        series.len(),
        expected,
        "ingested series differ from the exposition's samples: {series:#?}"
    );

    let counter = prom
        .query(r#"agent_requests_total{status="200"}"#)
        .expect("query counter");
    assert_eq!(counter.len(), 1, "{counter:?}");
    assert_eq!(counter[0].1, "1027");
    assert_eq!(counter[0].0["route"], "/chat");

    let bucket = prom
        .query(r#"agent_latency_seconds_bucket{le="0.1"}"#)
        .expect("query bucket");
    assert_eq!(bucket.len(), 1, "{bucket:?}");
    assert_eq!(bucket[0].1, "17");
    let inf = prom
        .query(r#"agent_latency_seconds_bucket{le="+Inf"}"#)
        .expect("query +Inf bucket");
    assert_eq!(inf.len(), 1, "{inf:?}");
    assert_eq!(inf[0].1, "25");

    let escaped = prom.query("agent_errors_total").expect("query escaped");
    assert_eq!(escaped.len(), 1, "{escaped:?}");
    assert_eq!(escaped[0].0["msg"], ESCAPED_VALUE);
    assert_eq!(escaped[0].1, "2");

    let gauge = prom.query("agent_queue_depth").expect("query gauge");
    assert_eq!(gauge[0].1, "42.5");
    let quantile = prom
        .query(r#"agent_tool_seconds{quantile="0.99"}"#)
        .expect("query summary");
    assert_eq!(quantile[0].1, "0.9");

    // Prometheus' own view of the scrape agrees on the sample count.
    let scraped = prom
        .query("scrape_samples_scraped")
        .expect("query scrape_samples_scraped");
    assert_eq!(scraped[0].1, expected.to_string());

    let stats = exporter.stats();
    assert!(stats.scrapes >= 1, "{stats:?}");
    assert_eq!(stats.scrape_errors, 0, "{stats:?}");
    assert_eq!(stats.connection_errors, 0, "{stats:?}");
    // Prometheus asks for gzip, and got it.
    assert!(
        stats.last_response_bytes < stats.last_encode_bytes,
        "expected a gzip response to Prometheus: {stats:?}"
    );
    assert_eq!(stats.last_encode_bytes, exposition().len() as u64);
    eprintln!(
        "prometheus scraped {} times; last encode {:?}, {} bytes ({} on the wire); last scrape took {:.4} s",
        stats.scrapes,
        stats.last_encode_duration,
        stats.last_encode_bytes,
        stats.last_response_bytes,
        target.last_scrape_duration
    );

    let pid = prom.pid();
    drop(prom);
    // The server process is gone (reaped by Drop).
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
}

#[test]
fn promtool_and_prometheus_accept_the_servers_own_metrics() {
    crate::require_prometheus!("promtool_and_prometheus_accept_the_servers_own_metrics");
    let text = exposition();
    let server =
        MetricsServer::builder(ServerConfig::default().with_addr("127.0.0.1:0".parse().unwrap()))
            .source("main", move |out: &mut String| out.push_str(&text))
            .best_effort_source("side \"car\"", |out: &mut String| {
                out.push_str("# HELP side_items Items.\n# TYPE side_items gauge\nside_items 3\n")
            })
            .start()
            .expect("start server");
    let served = scrape(&server);
    assert!(served.starts_with(&exposition()));
    let own = &served[exposition().len()..];
    assert!(
        own.contains("agentcore_telemetry_http_requests_total{code=\"200\"}"),
        "{own}"
    );
    let result = promtool_check_metrics(&served);
    assert_eq!(result.exit_code, 0, "promtool: {result:#?}");
    assert!(result.lint_warnings.is_empty(), "{result:#?}");

    let prom = PrometheusServer::start(server.local_addr()).expect("start prometheus");
    let target = prom.wait_for_target_up(Duration::from_secs(30));
    assert_eq!(target.health, "up", "{target:#?}\n{}", prom.log());
    // Prometheus's own scrapes are counted, gzip-coded (Prometheus asks for gzip), by code.
    let ok = prom
        .query_eventually(
            r#"agentcore_telemetry_http_requests_total{code="200"} > 1"#,
            Duration::from_secs(10),
        )
        .expect("query");
    assert_eq!(ok.len(), 1, "{ok:?}");
    let overdue = prom
        .query(r#"agentcore_telemetry_http_encodes_overdue{source="side \"car\""}"#)
        .expect("query");
    assert_eq!(overdue.len(), 1, "{overdue:?}");
    assert_eq!(overdue[0].1, "0");
    let buckets = prom
        .query(
            r#"agentcore_telemetry_http_encode_duration_seconds_bucket{source="main",le="+Inf"}"#,
        )
        .expect("query");
    assert_eq!(buckets.len(), 1, "{buckets:?}");
}
