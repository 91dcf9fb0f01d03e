//! The official OTLP decoders (Python `opentelemetry-proto`, `opentelemetry-proto-json`) and
//! the Python SDK's reference encoders as oracles for span export, through
//! `tests/support/otlp_oracle.py`, plus the expected normalized form of our own spans.
//!
//! Install them with `.ci/install-otlp-oracles` (a venv under `target/`). Tests call
//! [`require_otlp_oracles!`] first: without the venv they skip with a loud banner on a
//! developer machine, and fail under `CI=true`, where they must run.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agentcore_telemetry::export::{ExportSpan, Resource, SCOPE_NAME, SDK_VERSION};
use agentcore_telemetry::{SpanKind, SpanRecord, SpanStatus, Value as Attr};
use serde_json::{json, Value};

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The oracle script.
pub fn script() -> PathBuf {
    manifest_dir().join("tests/support/otlp_oracle.py")
}

/// The venv interpreter (`$AGENTCORE_OTLP_PYTHON` overrides), if it has the decoders.
pub fn python() -> Option<PathBuf> {
    let p = std::env::var_os("AGENTCORE_OTLP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir().join("target/otlp-oracles/venv/bin/python"));
    let ok = Command::new(&p)
        .args([
            "-c",
            "import opentelemetry.proto.collector.trace.v1.trace_service_pb2, \
             opentelemetry.proto_json.collector.trace.v1.trace_service, \
             opentelemetry.exporter.otlp.proto.common.trace_encoder, \
             opentelemetry.exporter.otlp.json.common.trace_encoder",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(p)
}

/// `true` when the oracles can run; otherwise panics under `CI=true`, or prints a loud
/// banner and returns `false` (skip).
pub fn require_otlp_oracles(test: &str) -> bool {
    if python().is_some() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "{test}: the OTLP oracles (Python venv at target/otlp-oracles) are missing under \
             CI=true; .ci/install-otlp-oracles must run before the tests"
        );
    }
    let banner = format!(
        "\n{bar}\n!! SKIPPED {test}: the official OTLP decoders are not installed.\n\
         !! Run `.ci/install-otlp-oracles` (a Python venv under target/) to run it.\n\
         !! Under CI=true this is a failure, not a skip.\n{bar}\n",
        bar = "!".repeat(78)
    );
    let _ = std::io::stderr().write_all(banner.as_bytes());
    false
}

/// Returns from the calling test (skip) when the oracles are missing, or panics under
/// `CI=true`; see [`require_otlp_oracles`].
#[macro_export]
macro_rules! require_otlp_oracles {
    ($test:expr) => {
        if !$crate::support::otlp::require_otlp_oracles($test) {
            return;
        }
    };
}

fn run(args: &[&str], stdin: &[u8]) -> Value {
    let python = python().expect("oracle python");
    let mut child = Command::new(python)
        .arg(script())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the oracle");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("feed the oracle");
    let out = child.wait_with_output().expect("oracle output");
    assert!(
        out.status.success(),
        "oracle {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("oracle JSON")
}

/// Decodes a request body with the official classes: `{"decoded": .., "strict_errors": [..]}`.
pub fn decode(body: &[u8], json: bool) -> Value {
    run(&["decode", if json { "json" } else { "proto" }], body)
}

/// What the Python SDK's encoders make of `expected` (normalized form), decoded again:
/// `{"proto": .., "json": .., "json_strict_errors": [..]}`.
pub fn reference(expected: &Value) -> Value {
    run(&["reference"], expected.to_string().as_bytes())
}

fn attr_value(v: &Attr) -> Value {
    match v {
        Attr::Str(s) => json!(["string", s.as_ref()]),
        Attr::Bool(b) => json!(["bool", b]),
        Attr::I64(i) => json!(["int", i]),
        Attr::F64(f) if f.is_nan() => json!(["double", "NaN"]),
        Attr::F64(f) if f.is_infinite() => {
            json!(["double", if *f > 0.0 { "Infinity" } else { "-Infinity" }])
        }
        Attr::F64(f) => json!(["double", f]),
    }
}

fn attrs(kvs: &[agentcore_telemetry::KeyValue]) -> Value {
    Value::Array(
        kvs.iter()
            .map(|kv| {
                let mut a = vec![json!(kv.key.as_ref())];
                if let Value::Array(v) = attr_value(&kv.value) {
                    a.extend(v);
                }
                Value::Array(a)
            })
            .collect(),
    )
}

fn kind(k: SpanKind) -> u64 {
    match k {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

fn code(s: SpanStatus) -> u64 {
    match s {
        SpanStatus::Unset => 0,
        SpanStatus::Ok => 1,
        SpanStatus::Error => 2,
    }
}

/// The normalized form (as `otlp_oracle.py` prints it) of one span.
pub fn expected_span(span: &ExportSpan<'_>) -> Value {
    let r: &SpanRecord = span.record;
    json!({
        "trace_id": r.trace_id.to_string(),
        "span_id": r.span_id.to_string(),
        "trace_state": span.trace_state,
        "parent_span_id": r.parent_span_id.map(|p| p.to_string()).unwrap_or_default(),
        "flags": span.otlp_flags(),
        "name": r.name.as_ref(),
        "kind": kind(r.kind),
        "start": r.start_time_unix_nano,
        "end": r.end_time_unix_nano,
        "attributes": attrs(&r.attributes),
        "dropped_attributes": r.dropped_attributes_count,
        "events": r.events.iter().map(|e| json!({
            "time": e.time_unix_nano,
            "name": e.name.as_ref(),
            "attributes": attrs(&e.attributes),
            "dropped_attributes": e.dropped_attributes_count,
        })).collect::<Vec<_>>(),
        "dropped_events": r.dropped_events_count,
        "links": r.links.iter().map(|l| json!({
            "trace_id": l.trace_id.to_string(),
            "span_id": l.span_id.to_string(),
            "trace_state": "",
            "attributes": attrs(&l.attributes),
            "dropped_attributes": l.dropped_attributes_count,
            "flags": 0,
        })).collect::<Vec<_>>(),
        "dropped_links": r.dropped_links_count,
        "status": {"code": code(r.status), "message": r.status_message.as_ref()},
    })
}

/// The normalized form of a request carrying `spans` for `resource`.
pub fn expected_request(resource: &Resource, spans: &[ExportSpan<'_>]) -> Value {
    json!({"resource_spans": [{
        "resource": attrs(resource.attributes()),
        "scopes": [{
            "name": SCOPE_NAME,
            "version": SDK_VERSION,
            "spans": spans.iter().map(expected_span).collect::<Vec<_>>(),
        }],
    }]})
}

/// All spans of a decoded request (normalized form), in order.
pub fn spans_of(decoded: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for rs in decoded["resource_spans"].as_array().into_iter().flatten() {
        for ss in rs["scopes"].as_array().into_iter().flatten() {
            out.extend(ss["spans"].as_array().cloned().unwrap_or_default());
        }
    }
    out
}

/// Compares two values field by field, naming the first path that differs. Doubles compare
/// by value (NaN as the string the normal form uses).
pub fn assert_same(ours: &Value, theirs: &Value, path: &str) {
    match (ours, theirs) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                assert_same(
                    a.get(k).unwrap_or(&Value::Null),
                    b.get(k).unwrap_or(&Value::Null),
                    &format!("{path}.{k}"),
                );
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(
                a.len(),
                b.len(),
                "{path}: lengths differ: {ours} vs {theirs}"
            );
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                assert_same(x, y, &format!("{path}[{i}]"));
            }
        }
        (Value::Number(a), Value::Number(b)) if a.is_f64() || b.is_f64() => {
            let (x, y) = (a.as_f64().unwrap(), b.as_f64().unwrap());
            assert!(
                x == y && x.is_sign_negative() == y.is_sign_negative(),
                "{path}: {x} vs {y}"
            );
        }
        _ => assert_eq!(ours, theirs, "{path}"),
    }
}

/// A loopback OTLP/HTTP receiver (`otlp_oracle.py sink`), scripted per request; every
/// request is decoded with the official classes and logged.
pub struct Sink {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Sink {
    /// Starts the sink answering request N with `script[N]` (then 200).
    pub fn start(script: Value) -> Sink {
        let dir = tempfile::Builder::new()
            .prefix("agentcore-otlp-sink-")
            .tempdir()
            .expect("temp dir");
        let port_file = dir.path().join("port");
        let log = dir.path().join("requests.jsonl");
        let script_file = dir.path().join("script.json");
        std::fs::write(&script_file, script.to_string()).expect("write script");
        let child = Command::new(python().expect("oracle python"))
            .arg(self::script())
            .arg("sink")
            .arg(&port_file)
            .arg(&log)
            .arg(&script_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the sink");
        let mut sink = Sink {
            child,
            port: 0,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(p) = std::fs::read_to_string(&port_file) {
                sink.port = p.trim().parse().expect("port");
                return sink;
            }
            if let Ok(Some(status)) = sink.child.try_wait() {
                panic!("the sink exited early: {status}");
            }
            assert!(Instant::now() < deadline, "the sink did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The base URL (`http://127.0.0.1:PORT`).
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The traces URL.
    pub fn url(&self) -> String {
        format!("{}/v1/traces", self.base())
    }

    /// The requests received so far, in arrival order.
    pub fn requests(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut v: Vec<Value> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("log line"))
            .collect();
        v.sort_by_key(|r| r["index"].as_u64());
        v
    }

    /// Waits until `n` requests were logged (or 10 s) and returns them.
    pub fn wait_for(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r = self.requests();
            if r.len() >= n || Instant::now() >= deadline {
                return r;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        // Only the process this harness started, by its id.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
