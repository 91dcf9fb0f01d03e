//! The official Python `prometheus_client` OpenMetrics parser as a test oracle
//! (`prometheus_client.openmetrics.parser.text_string_to_metric_families`: strict; the
//! OpenMetrics 1.0 test suite's 167 bad cases are all rejected by it).
//!
//! Installed by `.ci/install-openmetrics-oracle` into `target/openmetrics-oracle/venv`
//! (or `$AGENTCORE_OPENMETRICS_PYTHON`). Tests call [`require_openmetrics_oracle!`] first: when
//! the interpreter or the package is missing they skip with a loud banner on a developer
//! machine, and fail under `CI=true`, where they must run.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

/// The parser's script: reads an exposition on stdin, prints one JSON document: either
/// `{"ok": [[family, type, unit, help, [[sample name, {labels}, value, exemplar], ...]], ...]}`
/// (`exemplar` `null` or `[{labels}, value, timestamp]`) or
/// `{"error": "..."}`. Values are strings (`repr` of the float) so NaN and infinities survive.
const SCRIPT: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
text = sys.stdin.buffer.read().decode("utf-8")
try:
    fams = []
    def ex(e):
        if e is None:
            return None
        return [e.labels, repr(float(e.value)), None if e.timestamp is None else repr(float(e.timestamp))]
    for f in text_string_to_metric_families(text):
        fams.append([f.name, f.type, f.unit, f.documentation,
                     [[s.name, s.labels, repr(float(s.value)), ex(s.exemplar)] for s in f.samples]])
    print(json.dumps({"ok": fams}))
except Exception as e:
    print(json.dumps({"error": "%s: %s" % (type(e).__name__, e)}))
"#;

/// The interpreter of the oracle's venv.
pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("AGENTCORE_OPENMETRICS_PYTHON") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/openmetrics-oracle/venv/bin/python")
}

/// Whether the parser can be imported.
pub fn oracle_available() -> bool {
    Command::new(python())
        .args(["-c", "import prometheus_client.openmetrics.parser"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `true` when the oracle is there. Otherwise: under `CI=true`, panics; elsewhere prints a loud
/// banner and returns `false` (skip).
pub fn require_openmetrics_oracle(test: &str) -> bool {
    if oracle_available() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "{test}: prometheus_client not importable from {} under CI=true; \
             .ci/install-openmetrics-oracle must run before the tests",
            python().display()
        );
    }
    let banner = format!(
        "\n{bar}\n!! SKIPPED {test}: the Python prometheus_client OpenMetrics parser is missing.\n\
         !! Run `.ci/install-openmetrics-oracle` to run it.\n\
         !! Under CI=true this is a failure, not a skip.\n{bar}\n",
        bar = "!".repeat(78)
    );
    let _ = std::io::stderr().write_all(banner.as_bytes());
    false
}

/// Returns from the calling test (skip) when the oracle is missing, or panics under `CI=true`.
#[macro_export]
macro_rules! require_openmetrics_oracle {
    ($test:expr) => {
        if !$crate::support::openmetrics::require_openmetrics_oracle($test) {
            return;
        }
    };
}

/// One sample as the oracle parsed it.
#[derive(Debug, Clone, PartialEq)]
pub struct OmSample {
    pub name: String,
    pub labels: std::collections::BTreeMap<String, String>,
    /// Python's `repr(float(value))`: `1.0`, `0.25`, `nan`, `inf`.
    pub value: String,
    /// The sample's exemplar, if it has one.
    pub exemplar: Option<OmExemplar>,
}

/// An exemplar as the oracle parsed it.
#[derive(Debug, Clone, PartialEq)]
pub struct OmExemplar {
    pub labels: std::collections::BTreeMap<String, String>,
    /// `repr(float(value))`.
    pub value: String,
    /// `repr(float(timestamp))` (seconds), if it has one.
    pub timestamp: Option<String>,
}

/// One family as the oracle parsed it.
#[derive(Debug, Clone, PartialEq)]
pub struct OmFamily {
    pub name: String,
    pub kind: String,
    pub unit: String,
    pub help: String,
    pub samples: Vec<OmSample>,
}

/// Parses `exposition` with the strict parser: its families, or the parser's error.
pub fn parse_openmetrics(exposition: &str) -> Result<Vec<OmFamily>, String> {
    let mut child = Command::new(python())
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the OpenMetrics oracle (run .ci/install-openmetrics-oracle)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(exposition.as_bytes())
        .expect("feed the oracle");
    let out = child.wait_with_output().expect("wait for the oracle");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let doc: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "oracle output not JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    if let Some(err) = doc.get("error") {
        return Err(err.as_str().unwrap_or("?").to_string());
    }
    let families = doc["ok"].as_array().expect("ok list");
    Ok(families
        .iter()
        .map(|f| OmFamily {
            name: f[0].as_str().unwrap_or("").into(),
            kind: f[1].as_str().unwrap_or("").into(),
            unit: f[2].as_str().unwrap_or("").into(),
            help: f[3].as_str().unwrap_or("").into(),
            samples: f[4]
                .as_array()
                .expect("samples")
                .iter()
                .map(|s| OmSample {
                    name: s[0].as_str().unwrap_or("").into(),
                    labels: s[1]
                        .as_object()
                        .expect("labels")
                        .iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").into()))
                        .collect(),
                    value: s[2].as_str().unwrap_or("").into(),
                    exemplar: s[3].as_array().map(|e| OmExemplar {
                        labels: e[0]
                            .as_object()
                            .expect("exemplar labels")
                            .iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").into()))
                            .collect(),
                        value: e[1].as_str().unwrap_or("").into(),
                        timestamp: e[2].as_str().map(Into::into),
                    }),
                })
                .collect(),
        })
        .collect())
}

/// A minimal HTTP/1.1 server for tests: every request is answered `200` with the body `body()`
/// returns at that moment, labelled `content_type`, and the connection closed. It serves until
/// dropped (the accept loop polls a stop flag every 10 ms; each connection has 2 s timeouts).
pub struct ExpositionServer {
    addr: std::net::SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ExpositionServer {
    pub fn start(
        content_type: &'static str,
        body: impl Fn() -> String + Send + 'static,
    ) -> ExpositionServer {
        use std::io::{BufRead, BufReader};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let (stream, _) = match listener.accept() {
                    Ok(s) => s,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(std::time::Duration::from_millis(10));
                        continue;
                    }
                    Err(_) => continue,
                };
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(2)));
                let _ = stream.set_write_timeout(Some(std::time::Duration::from_secs(2)));
                let mut reader = BufReader::new(&stream);
                let mut line = String::new();
                // The request head, up to the blank line.
                loop {
                    line.clear();
                    match reader.read_line(&mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) if line == "\r\n" || line == "\n" => break,
                        Ok(_) => {}
                    }
                }
                let payload = body();
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    payload.len()
                );
                let mut w = &stream;
                let _ = w.write_all(head.as_bytes());
                let _ = w.write_all(payload.as_bytes());
                let _ = w.flush();
            }
        });
        ExpositionServer {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }
}

impl Drop for ExpositionServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
