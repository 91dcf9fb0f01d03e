//! `OTEL_TRACES_EXPORTER=console` writes OTLP JSON lines to standard output, one
//! `TracesData` per batch, which the official strict OTLP JSON classes decode.
//!
//! The parent test runs this test binary again as a child (with the variable set), so the
//! child's real standard output can be read.
#![cfg(feature = "otlp")]

mod support;

use std::process::Command;
use std::time::Duration;

use agentcore_telemetry::export::{ExportConfig, ExportSpan, MemorySpanSource, TracesExporter};
use agentcore_telemetry::{DistributedTracer, KeyValue, SpanKind, SpanRecord, TracerConfig};
use serde_json::Value;
use support::otlp::{assert_same, decode, expected_span, spans_of};

const CHILD: &str = "AGENTCORE_CONSOLE_EXPORT_CHILD";

fn records() -> Vec<SpanRecord> {
    // Only the pipeline under test prints: the tracer itself would export too, since the
    // child's environment says OTEL_TRACES_EXPORTER=console.
    let tracer = DistributedTracer::new(TracerConfig {
        from_env: false,
        ..TracerConfig::default()
    });
    let root = tracer.start_span("console_root", SpanKind::Server, [KeyValue::new("n", 7)]);
    let trace = root.trace_id();
    let mut child = tracer.start_span("console_child", SpanKind::Internal, []);
    child.add_event("line\nbreak \"quoted\"", []);
    child.end();
    root.end();
    tracer.get_trace_spans(trace)
}

/// The child's side: export through whatever the environment configures.
#[test]
fn console_export_child_process() {
    if std::env::var_os(CHILD).is_none() {
        return; // run by `console_exporter_writes_otlp_json_lines` only
    }
    let from_env = ExportConfig::from_env().unwrap();
    assert_eq!(from_env.config.exporter, TracesExporter::Console);
    let source = MemorySpanSource::new(64);
    let processor = from_env
        .config
        .start(source.clone(), Some("console-test"))
        .unwrap()
        .unwrap();
    for r in records() {
        source.push(r);
    }
    processor.force_flush(Duration::from_secs(5)).unwrap();
    processor.shutdown(Duration::from_secs(5)).unwrap();
}

#[test]
fn console_exporter_writes_otlp_json_lines() {
    require_otlp_oracles!("console_exporter_writes_otlp_json_lines");
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "console_export_child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .env("OTEL_TRACES_EXPORTER", "console")
        .env("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=ci")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // (The harness prints "test ... " before the child's output, on the same line.)
    let lines: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.find("{\"resourceSpans\"").map(|i| &l[i..]))
        .collect();
    assert_eq!(lines.len(), 1, "one batch, one line:\n{stdout}");
    let decoded = decode(lines[0].as_bytes(), true);
    assert_eq!(decoded["strict_errors"], Value::Array(vec![]));
    let resource = &decoded["decoded"]["resource_spans"][0]["resource"];
    assert!(resource.as_array().unwrap().contains(&serde_json::json!([
        "service.name",
        "string",
        "console-test"
    ])));
    assert!(resource.as_array().unwrap().contains(&serde_json::json!([
        "deployment.environment.name",
        "string",
        "ci"
    ])));
    let spans = spans_of(&decoded["decoded"]);
    let names: Vec<&str> = spans.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["console_root", "console_child"]);
    // Field by field, against what the same records would encode to (ids and times are the
    // child's, so take them from the decoded line).
    for (got, mut want) in spans.iter().zip(records().iter().map(|r| {
        expected_span(&ExportSpan {
            parent_is_remote: Some(false),
            ..ExportSpan::new(r)
        })
    })) {
        for k in ["trace_id", "span_id", "parent_span_id", "start", "end"] {
            want[k] = got[k].clone();
        }
        for (i, e) in want["events"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .enumerate()
        {
            e["time"] = got["events"][i]["time"].clone();
        }
        // The console source's records carry "unknown" remoteness for children.
        want["flags"] = got["flags"].clone();
        assert_same(got, &want, "span");
    }
}
