//! The operations kit in `deploy/`: Prometheus rules and a Grafana dashboard.
//!
//! * `promtool check rules` accepts the rule file, and `promtool test rules` passes its unit
//!   tests (`deploy/prometheus/agentcore.rules.test.yml`);
//! * every PromQL expression of the dashboard parses (promtool checks them as the expressions of
//!   a generated rule file, Grafana's `$job` and `$__rate_interval` substituted);
//! * every metric the dashboard and the rules name exists, and the dashboard covers every one of
//!   the specification's metrics;
//! * the main job (`examples/agent_runtime.rs`) scraped by a real Prometheus with the rules
//!   loaded: every rule evaluates without error, and every recording rule and every dashboard
//!   query returns data.
//!
//! Needs `prometheus` and `promtool` (`.ci/install-prometheus`); skipped loudly without them,
//! except under `CI=true`.
#![cfg(all(feature = "http-server", feature = "system-monitor"))]

mod support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agentcore_telemetry::agent::BUILTIN_METRICS;
use agentcore_telemetry::registry::OVERFLOW_METRIC;
use agentcore_telemetry::{get_distributed_tracer, MetricKind, MetricsCollector};
use serde_json::Value;
use support::prometheus::PrometheusServer;

/// The scrape job name the rules' exporter alerts select.
const JOB: &str = "agentcore";

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(path)
}

fn rules_file() -> PathBuf {
    deploy("prometheus/agentcore.rules.yml")
}

fn promtool(args: &[&str], dir: &Path) -> (bool, String) {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The names the rule file records (`- record: NAME` lines).
fn recorded_names() -> Vec<String> {
    std::fs::read_to_string(rules_file())
        .unwrap()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- record:"))
        .map(|n| n.trim().to_string())
        .collect()
}

/// Every `(panel title, expr)` of the dashboard.
fn dashboard_queries() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(deploy("grafana/agentcore-dashboard.json")).unwrap();
    let dash: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut out = Vec::new();
    for panel in dash["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().expect("every target has an expr");
            out.push((
                panel["title"].as_str().unwrap_or("?").to_string(),
                expr.to_string(),
            ));
        }
    }
    out
}

/// A dashboard expression as Prometheus runs it for job `job` (Grafana's variables filled in).
fn substitute(expr: &str, job: &str) -> String {
    expr.replace("$__rate_interval", "1m").replace("$job", job)
}

/// The metric names an expression mentions (identifiers followed by `{`, `[`, `)` or the end,
/// that are not functions or keywords) — enough for our expressions, which always give
/// metrics a selector or a range.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let bytes = expr.as_bytes();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let mut in_string = false;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'"' {
            in_string = !in_string;
            i += 1;
            continue;
        }
        if in_string || !(b.is_ascii_alphabetic() || b == b'_' || b == b':') {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len()
            && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b':')
        {
            i += 1;
        }
        let word = &expr[start..i];
        let next = expr[i..].trim_start().chars().next();
        if matches!(next, Some('{') | Some('[')) && !word.is_empty() {
            names.insert(word.to_string());
        }
    }
    names
}

/// Every metric name the main job can expose.
fn known_metrics() -> BTreeSet<String> {
    let c = MetricsCollector::new();
    get_distributed_tracer()
        .register_metrics(c.get_registry())
        .unwrap();
    // The collector has registered the process metrics already (by default).
    assert!(matches!(
        c.get_registry().register_process_metrics(),
        Err(agentcore_telemetry::Error::DuplicateMetric { .. }) | Ok(0)
    ));
    let mut known: BTreeSet<String> = c.get_registry().family_names().into_iter().collect();
    known.insert(OVERFLOW_METRIC.into());
    for m in BUILTIN_METRICS {
        if m.kind == MetricKind::Histogram {
            known.insert(format!("{}_bucket", m.name));
        }
    }
    known.insert("agentcore_tracer_span_duration_seconds_bucket".into());
    known.insert("up".into());
    known.extend(recorded_names());
    known
}

#[test]
fn promtool_checks_the_rules_and_passes_their_unit_tests() {
    require_prometheus!("promtool_checks_the_rules_and_passes_their_unit_tests");
    let dir = deploy("prometheus");
    let (ok, out) = promtool(&["check", "rules", "agentcore.rules.yml"], &dir);
    assert!(ok, "promtool check rules:\n{out}");
    assert!(out.contains("SUCCESS: 15 rules found"), "{out}");
    let (ok, out) = promtool(&["test", "rules", "agentcore.rules.test.yml"], &dir);
    assert!(ok, "promtool test rules:\n{out}");
    let (ok, out) = promtool(&["check", "config", "prometheus.yml"], &dir);
    assert!(ok, "promtool check config:\n{out}");
}

#[test]
fn every_dashboard_expression_parses_and_names_real_metrics() {
    require_prometheus!("every_dashboard_expression_parses_and_names_real_metrics");
    let queries = dashboard_queries();
    assert!(queries.len() >= 40, "{} queries", queries.len());
    // promtool parses each one as the expression of a recording rule.
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, (_, expr)) in queries.iter().enumerate() {
        rules.push_str(&format!(
            "      - record: dashboard:query_{i}\n        expr: {}\n",
            serde_json::to_string(&substitute(expr, JOB)).unwrap()
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dashboard.rules.yml"), &rules).unwrap();
    let (ok, out) = promtool(&["check", "rules", "dashboard.rules.yml"], dir.path());
    assert!(ok, "a dashboard expression does not parse:\n{out}\n{rules}");
    assert!(
        out.contains(&format!("SUCCESS: {} rules found", queries.len())),
        "{out}"
    );

    // Every metric named exists; every specification metric is on the dashboard.
    let known = known_metrics();
    let mut used = BTreeSet::new();
    for (title, expr) in &queries {
        for name in metric_names(expr) {
            assert!(
                known.contains(&name),
                "panel {title:?} names unknown metric {name}"
            );
            used.insert(name);
        }
    }
    for (_, expr) in rules_exprs() {
        for name in metric_names(&expr) {
            assert!(known.contains(&name), "a rule names unknown metric {name}");
        }
    }
    for m in BUILTIN_METRICS {
        let exposed = if m.kind == MetricKind::Histogram {
            format!("{}_bucket", m.name)
        } else {
            m.name.to_string()
        };
        assert!(
            used.contains(&exposed)
                || used
                    .iter()
                    .any(|u| u.starts_with("agentcore:") && rule_uses(u, &exposed)),
            "the dashboard shows nothing of {}",
            m.name
        );
    }
    // The latency panels are exemplar-ready.
    let text = std::fs::read_to_string(deploy("grafana/agentcore-dashboard.json")).unwrap();
    let dash: Value = serde_json::from_str(&text).unwrap();
    let exemplar_panels: Vec<&str> = dash["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| {
            p["targets"]
                .as_array()
                .is_some_and(|ts| ts.iter().any(|t| t["exemplar"] == true))
        })
        .filter_map(|p| p["title"].as_str())
        .collect();
    for want in [
        "Tool latency p50 / p99",
        "Agent execution latency p50 / p99",
        "Tool latency distribution",
    ] {
        assert!(
            exemplar_panels.contains(&want),
            "{want} not exemplar-ready: {exemplar_panels:?}"
        );
    }
}

/// `(record name, expr)` of every recording rule, read from the YAML file's `- record:` /
/// `expr:` lines (block scalars included).
fn rules_exprs() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(rules_file()).unwrap();
    let mut out = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(name) = line.trim().strip_prefix("- record:") else {
            continue;
        };
        let expr_line = lines.next().unwrap_or_default();
        let expr = expr_line
            .trim()
            .strip_prefix("expr:")
            .unwrap_or_default()
            .trim();
        let expr = if expr == "|" {
            let mut block = String::new();
            while let Some(l) = lines.peek() {
                if l.trim().is_empty() || l.trim_start().starts_with("- ") {
                    break;
                }
                block.push_str(l.trim());
                block.push(' ');
                lines.next();
            }
            block
        } else {
            expr.to_string()
        };
        out.push((name.trim().to_string(), expr));
    }
    out
}

/// Whether recording rule `record` reads metric `metric`.
fn rule_uses(record: &str, metric: &str) -> bool {
    rules_exprs()
        .iter()
        .any(|(name, expr)| name == record && metric_names(expr).contains(metric))
}

/// Builds `examples/agent_runtime.rs` (a no-op when `cargo test` already did) and returns its
/// path.
fn example_binary() -> PathBuf {
    let out = Command::new(env!("CARGO"))
        .args([
            "build",
            "--example",
            "agent_runtime",
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run cargo build --example agent_runtime");
    assert!(
        out.status.success(),
        "cargo build --example agent_runtime failed"
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "agent_runtime")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .expect("cargo reported the example's executable")
}

/// The example, killed (by its id) and reaped on drop.
struct MainJob {
    child: Child,
    addr: SocketAddr,
}

impl MainJob {
    fn start(seconds: u32) -> MainJob {
        let mut child = Command::new(example_binary())
            .args(["--seconds", &seconds.to_string(), "--addr", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the main job");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("the main job printed its address")
                .unwrap();
            if let Some(rest) = line.split("metrics at http://").nth(1) {
                break rest
                    .trim_end_matches("/metrics")
                    .parse()
                    .expect("an address");
            }
        };
        // Keep draining its output so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        MainJob { child, addr }
    }
}

impl Drop for MainJob {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_main_job_under_prometheus_feeds_every_rule_and_panel() {
    require_prometheus!("the_main_job_under_prometheus_feeds_every_rule_and_panel");
    let job = MainJob::start(120);
    let prom = PrometheusServer::start_with_rules(job.addr, JOB, &[rules_file()])
        .unwrap_or_else(|e| panic!("start prometheus: {e}"));
    let health = prom.wait_for_target_up(Duration::from_secs(40));
    assert_eq!(health.health, "up", "{health:?}\n{}", prom.log());

    // Every recording rule returns data once two scrapes are in (rates need two points).
    let deadline = Instant::now() + Duration::from_secs(60);
    for name in recorded_names() {
        let left = deadline.saturating_duration_since(Instant::now());
        let result = prom.query_eventually(&name, left).unwrap();
        assert!(
            !result.is_empty(),
            "recording rule {name} returned no data\n{}",
            prom.log()
        );
    }
    // Every rule, recording or alerting, evaluates without error.
    let rules = prom.rules().unwrap();
    let mut seen = 0;
    for group in rules["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            seen += 1;
            assert_eq!(
                rule["health"], "ok",
                "rule {} is unhealthy: {}",
                rule["name"], rule["lastError"]
            );
        }
    }
    assert_eq!(seen, 15);
    // The exporter is up: its alerts stay quiet.
    assert!(prom
        .query("ALERTS{alertname=~\"AgentcoreExporter.*\"}")
        .unwrap()
        .is_empty());

    // Every dashboard query returns data.
    for (title, expr) in dashboard_queries() {
        let expr = substitute(&expr, JOB);
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_secs(5));
        let result = prom.query_eventually(&expr, left).unwrap();
        assert!(
            !result.is_empty(),
            "panel {title:?}: {expr} returned no data"
        );
    }
}
