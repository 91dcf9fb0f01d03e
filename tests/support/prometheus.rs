//! The real Prometheus tools as test oracles: `promtool check metrics` and a throwaway
//! `prometheus` server that scrapes an exporter.
//!
//! Install both with `.ci/install-prometheus`. Tests call [`require_prometheus!`] first: when
//! the binaries are missing they skip with a loud banner on a developer machine, and fail
//! under `CI=true`, where they must run.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// One instant-query result: its labels (including `__name__`) and its value as Prometheus
/// printed it (e.g. `"1027"`, `"0.9"`, `"+Inf"`).
pub type Sample = (BTreeMap<String, String>, String);

/// The scrape job name used in the generated Prometheus config.
pub const JOB: &str = "agentcore_exporter";

/// Whether `prometheus` and `promtool` can be run.
pub fn prometheus_available() -> bool {
    ["prometheus", "promtool"].iter().all(|bin| {
        Command::new(bin)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// `true` when the Prometheus binaries are present. Otherwise: under `CI=true`, panics (the
/// test must run in CI); elsewhere prints a loud banner and returns `false` (skip).
pub fn require_prometheus(test: &str) -> bool {
    if prometheus_available() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "{test}: `prometheus`/`promtool` not found on PATH under CI=true; \
             .ci/install-prometheus must run before the tests"
        );
    }
    let banner = format!(
        "\n{bar}\n!! SKIPPED {test}: `prometheus`/`promtool` not on PATH.\n\
         !! Run `.ci/install-prometheus` (Debian package `prometheus`) to run it.\n\
         !! Under CI=true this is a failure, not a skip.\n{bar}\n",
        bar = "!".repeat(78)
    );
    // Straight to the stderr handle, not `eprintln!`: the test harness captures the latter
    // and would hide the banner of a passing (skipped) test.
    let _ = std::io::stderr().write_all(banner.as_bytes());
    false
}

/// Returns from the calling test (skip) when the Prometheus binaries are missing, or panics
/// under `CI=true`; see [`require_prometheus`].
#[macro_export]
macro_rules! require_prometheus {
    () => {
        $crate::require_prometheus!(module_path!())
    };
    ($test:expr) => {
        if !$crate::support::prometheus::require_prometheus($test) {
            return;
        }
    };
}

/// What `promtool check metrics` said about an exposition.
#[derive(Debug, Clone)]
pub struct PromtoolResult {
    /// Exit code: 0 clean, 3 lint problems, 1 parse error (or -1 if killed by a signal).
    pub exit_code: i32,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error (lint problems and parse errors are reported here).
    pub stderr: String,
    /// The lint problems, one per line (`<metric> <problem>`), parse errors excluded.
    pub lint_warnings: Vec<String>,
}

impl PromtoolResult {
    /// Exit code 0: parsed, and no lint problems.
    pub fn is_clean(&self) -> bool {
        self.exit_code == 0
    }
}

/// Runs `promtool check metrics` on `exposition` (fed on stdin).
pub fn promtool_check_metrics(exposition: &str) -> PromtoolResult {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn promtool (run .ci/install-prometheus)");
    {
        let mut stdin = child.stdin.take().expect("promtool stdin");
        // promtool may stop reading early on a parse error; that shows in its output.
        let _ = stdin.write_all(exposition.as_bytes());
    }
    let out = child.wait_with_output().expect("wait for promtool");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let lint_warnings = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("error while linting"))
        .map(String::from)
        .collect();
    PromtoolResult {
        exit_code: out.status.code().unwrap_or(-1),
        stdout,
        stderr,
        lint_warnings,
    }
}

/// The health of the scrape target, from `/api/v1/targets`.
#[derive(Debug, Clone, Default)]
pub struct TargetHealth {
    /// `up`, `down` or `unknown` (`absent` if the target never showed up).
    pub health: String,
    /// The last scrape error, empty if none.
    pub last_error: String,
    /// The URL Prometheus scrapes.
    pub scrape_url: String,
    /// The target's labels (`instance`, `job`).
    pub labels: BTreeMap<String, String>,
    /// Duration of the last scrape, in seconds.
    pub last_scrape_duration: f64,
}

/// How often Prometheus scrapes the target, and how long it gives each scrape.
#[derive(Debug, Clone, Copy)]
pub struct Scrape {
    /// `scrape_interval`.
    pub interval: Duration,
    /// `scrape_timeout` (Prometheus sends it as `X-Prometheus-Scrape-Timeout-Seconds`).
    pub timeout: Duration,
    /// Run with `--enable-feature=exemplar-storage` (and `storage.exemplars.max_exemplars:
    /// 1000` in the config), so `/api/v1/query_exemplars` answers.
    pub exemplars: bool,
}

impl Default for Scrape {
    /// Every second, with a one-second timeout.
    fn default() -> Self {
        Scrape {
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            exemplars: false,
        }
    }
}

/// A `prometheus` server started for one test, scraping one target (every second by default).
///
/// Dropping it kills the process by its id, waits for it and removes its temporary
/// config and storage.
pub struct PrometheusServer {
    child: Child,
    addr: SocketAddr,
    job: String,
    log_path: PathBuf,
    agent: ureq::Agent,
    // Dropped after the child is killed (field order does not matter: Drop kills first).
    dir: tempfile::TempDir,
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl PrometheusServer {
    /// Starts `prometheus` scraping `http://{target}/metrics` every second and waits (up to
    /// 30 s) until it reports ready.
    pub fn start(target: SocketAddr) -> Result<PrometheusServer, String> {
        Self::launch(target, Scrape::default(), JOB, &[])
    }

    /// Starts `prometheus` scraping `http://{target}/metrics` as `scrape` says and waits (up to
    /// 30 s) until it reports ready.
    pub fn start_with(target: SocketAddr, scrape: Scrape) -> Result<PrometheusServer, String> {
        Self::launch(target, scrape, JOB, &[])
    }

    /// Like [`start`](Self::start), with the scrape job named `job` and the given rule files
    /// loaded (evaluated every second).
    pub fn start_with_rules(
        target: SocketAddr,
        job: &str,
        rule_files: &[PathBuf],
    ) -> Result<PrometheusServer, String> {
        Self::launch(target, Scrape::default(), job, rule_files)
    }

    fn launch(
        target: SocketAddr,
        scrape: Scrape,
        job: &str,
        rule_files: &[PathBuf],
    ) -> Result<PrometheusServer, String> {
        let dir = tempfile::Builder::new()
            .prefix("agentcore-prometheus-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let config_path = dir.path().join("prometheus.yml");
        let data_path = dir.path().join("data");
        let log_path = dir.path().join("prometheus.log");
        let mut config = format!(
            "global:\n  scrape_interval: {interval}ms\n  scrape_timeout: {timeout}ms\n  \
             evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: {job}\n    metrics_path: /metrics\n    scheme: http\n    \
             static_configs:\n      - targets: ['{target}']\n",
            interval = scrape.interval.as_millis(),
            timeout = scrape.timeout.as_millis(),
        );
        if !rule_files.is_empty() {
            config.push_str("rule_files:\n");
            for f in rule_files {
                config.push_str(&format!("  - '{}'\n", f.display()));
            }
        }
        if scrape.exemplars {
            config.push_str("storage:\n  exemplars:\n    max_exemplars: 1000\n");
        }
        std::fs::write(&config_path, config).map_err(|e| format!("write config: {e}"))?;
        let log = File::create(&log_path).map_err(|e| format!("log file: {e}"))?;
        let log_err = log.try_clone().map_err(|e| format!("log file: {e}"))?;
        let port = free_port().map_err(|e| format!("free port: {e}"))?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut command = Command::new("prometheus");
        if scrape.exemplars {
            command.arg("--enable-feature=exemplar-storage");
        }
        let child = command
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg(format!("--storage.tsdb.path={}", data_path.display()))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| format!("spawn prometheus: {e}"))?;
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(5))
            .build();
        let mut server = PrometheusServer {
            child,
            addr,
            job: job.to_string(),
            log_path,
            agent,
            dir,
        };
        server.wait_ready(Duration::from_secs(30))?;
        Ok(server)
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let url = format!("http://{}/-/ready", self.addr);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "prometheus exited early ({status}); log:\n{}",
                    self.log()
                ));
            }
            if matches!(self.agent.get(&url).call(), Ok(r) if r.status() == 200) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "prometheus not ready after {timeout:?}; log:\n{}",
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Where the server's HTTP API listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's log so far (stdout and stderr), for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_else(|e| format!("<no log: {e}>"))
    }

    fn api(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, String> {
        let url = format!("http://{}{path}", self.addr);
        let mut req = self.agent.get(&url);
        for (k, v) in query {
            req = req.query(k, v);
        }
        let body: Value = match req.call() {
            Ok(r) => r
                .into_json()
                .map_err(|e| format!("{path}: bad JSON: {e}"))?,
            Err(ureq::Error::Status(code, r)) => {
                let text = r.into_string().unwrap_or_default();
                return Err(format!("{path}: HTTP {code}: {text}"));
            }
            Err(e) => return Err(format!("{path}: {e}")),
        };
        if body["status"] != "success" {
            return Err(format!("{path}: {body}"));
        }
        Ok(body["data"].clone())
    }

    /// `/api/v1/query_exemplars` for `promql` over the last `window`: one entry per series,
    /// `{"seriesLabels": {...}, "exemplars": [{"labels": {...}, "value": "...", "timestamp": ...}]}`.
    pub fn query_exemplars(&self, promql: &str, window: Duration) -> Result<Vec<Value>, String> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_secs_f64();
        let (start, end) = (
            format!("{:.3}", now - window.as_secs_f64()),
            format!("{:.3}", now + 60.0),
        );
        let data = self.api(
            "/api/v1/query_exemplars",
            &[("query", promql), ("start", &start), ("end", &end)],
        )?;
        Ok(data.as_array().cloned().unwrap_or_default())
    }

    /// The loaded rule groups, as `/api/v1/rules` reports them (`groups[].rules[]` with `name`,
    /// `type` ("recording" or "alerting"), `health`, `lastError`).
    pub fn rules(&self) -> Result<Value, String> {
        self.api("/api/v1/rules", &[])
    }

    /// The scrape target's health now, if Prometheus lists it yet.
    pub fn target_health(&self) -> Result<Option<TargetHealth>, String> {
        let data = self.api("/api/v1/targets", &[("state", "active")])?;
        let targets = data["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        Ok(targets
            .iter()
            .find(|t| t["labels"]["job"] == self.job.as_str())
            .map(|t| TargetHealth {
                health: t["health"].as_str().unwrap_or("").to_string(),
                last_error: t["lastError"].as_str().unwrap_or("").to_string(),
                scrape_url: t["scrapeUrl"].as_str().unwrap_or("").to_string(),
                labels: string_map(&t["labels"]),
                last_scrape_duration: t["lastScrapeDuration"].as_f64().unwrap_or(0.0),
            }))
    }

    /// Polls `/api/v1/targets` until the target is `up` or `timeout` passes; returns the last
    /// health seen (`absent` if the target never appeared). The first scrape takes ~6 s.
    pub fn wait_for_target_up(&self, timeout: Duration) -> TargetHealth {
        let deadline = Instant::now() + timeout;
        let mut last = TargetHealth {
            health: "absent".into(),
            ..TargetHealth::default()
        };
        loop {
            match self.target_health() {
                Ok(Some(t)) => {
                    let up = t.health == "up";
                    last = t;
                    if up {
                        return last;
                    }
                }
                Ok(None) => {}
                Err(e) => last.last_error = e,
            }
            if Instant::now() >= deadline {
                return last;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Runs an instant PromQL query; each result is (labels including `__name__`, value).
    /// A scalar or string result comes back as one entry with no labels.
    pub fn query(&self, promql: &str) -> Result<Vec<Sample>, String> {
        self.query_params(&[("query", promql)])
    }

    /// [`query`](Self::query) evaluated at `time` (Unix seconds) instead of now.
    pub fn query_at(&self, promql: &str, time: f64) -> Result<Vec<Sample>, String> {
        self.query_params(&[("query", promql), ("time", &format!("{time:.3}"))])
    }

    fn query_params(&self, params: &[(&str, &str)]) -> Result<Vec<Sample>, String> {
        let data = self.api("/api/v1/query", params)?;
        let value_of = |v: &Value| v[1].as_str().unwrap_or("").to_string();
        match data["resultType"].as_str() {
            Some("vector") => Ok(data["result"]
                .as_array()
                .map(|rs| {
                    rs.iter()
                        .map(|r| (string_map(&r["metric"]), value_of(&r["value"])))
                        .collect()
                })
                .unwrap_or_default()),
            Some("scalar") | Some("string") => {
                Ok(vec![(BTreeMap::new(), value_of(&data["result"]))])
            }
            other => Err(format!("unsupported result type {other:?}: {data}")),
        }
    }

    /// The series of the job now in the head, without Prometheus' synthetic `up` and
    /// `scrape_*` series.
    pub fn series_for_job(&self) -> Result<Vec<BTreeMap<String, String>>, String> {
        let all = self.query(&format!("{{job=\"{}\"}}", self.job))?;
        Ok(all
            .into_iter()
            .map(|(labels, _)| labels)
            .filter(|l| {
                let name = l.get("__name__").map(String::as_str).unwrap_or("");
                name != "up" && !name.starts_with("scrape_")
            })
            .collect())
    }

    /// How many series of the job were ingested (see [`series_for_job`](Self::series_for_job)).
    pub fn series_count_for_job(&self) -> Result<usize, String> {
        Ok(self.series_for_job()?.len())
    }

    /// Polls `promql` until it returns at least one result or `timeout` passes.
    pub fn query_eventually(&self, promql: &str, timeout: Duration) -> Result<Vec<Sample>, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let r = self.query(promql)?;
            if !r.is_empty() || Instant::now() >= deadline {
                return Ok(r);
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        // Only the process this harness started, by its id; then reap it.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = &self.dir; // removed when the TempDir field drops, after the process is gone
    }
}

/// Sample lines of a text exposition: not blank, not a `#` comment.
pub fn sample_lines(exposition: &str) -> Vec<&str> {
    exposition
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}
