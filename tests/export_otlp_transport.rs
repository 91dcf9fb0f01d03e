//! The OTLP/HTTP transport rules against a scripted loopback collector: which answers are
//! retried (429, 502, 503, 504, connection failures) and which are not (200 with partial
//! success, 400, 413, 500), `Retry-After` in seconds and as an HTTP date, backoff with
//! jitter, slow, reset, closed and hung connections; every span accounted for (exported +
//! rejected + failed + dropped = submitted) and `force_flush`/`shutdown` back by their
//! deadline. Every request the sink receives is also decoded with the official classes.
//!
//! Needs `.ci/install-otlp-oracles` (the sink runs on the venv's Python); skipped loudly
//! without it, except under `CI=true`.
#![cfg(feature = "otlp")]

mod support;

use std::time::{Duration, Instant};

use agentcore_telemetry::export::otlp::{OtlpHttpConfig, OtlpHttpExporter, Protocol, RetryPolicy};
use agentcore_telemetry::export::{
    BatchConfig, BatchSpanProcessor, ExportError, ExportStats, MemorySpanSource, Resource,
};
use agentcore_telemetry::{DistributedTracer, KeyValue, Registry, SpanKind, TracerConfig};
use serde_json::{json, Value};
use support::otlp::{spans_of, Sink};

const SPANS: usize = 5;

fn source(n: usize) -> MemorySpanSource {
    let tracer = DistributedTracer::new(TracerConfig::default());
    let source = MemorySpanSource::new(4096);
    let root = tracer.start_span("root", SpanKind::Server, [KeyValue::new("k", 1)]);
    let trace = root.trace_id();
    for _ in 1..n {
        tracer.start_span("child", SpanKind::Internal, []).end();
    }
    root.end();
    for r in tracer.get_trace_spans(trace) {
        source.push(r);
    }
    assert_eq!(source.pushed(), n as u64);
    source
}

fn retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(400),
        multiplier: 2.0,
        max_retry_after: Duration::from_secs(5),
    }
}

struct Run {
    flush: Result<(), ExportError>,
    flush_took: Duration,
    stats: ExportStats,
    requests: Vec<Value>,
}

/// Exports SPANS spans to a sink answering `script`, flushes with `flush_timeout`.
fn run(script: Value, timeout: Duration, flush_timeout: Duration, protocol: Protocol) -> Run {
    let sink = Sink::start(script);
    let exporter = OtlpHttpExporter::new(OtlpHttpConfig {
        endpoint: sink.url(),
        protocol,
        timeout,
        retry: retry(),
        resource: Resource::new("svc"),
        ..OtlpHttpConfig::default()
    })
    .unwrap();
    let processor =
        BatchSpanProcessor::start(source(SPANS), exporter, BatchConfig::default()).unwrap();
    let started = Instant::now();
    let flush = processor.force_flush(flush_timeout);
    let flush_took = started.elapsed();
    let shutdown_started = Instant::now();
    let _ = processor.shutdown(Duration::from_secs(2));
    assert!(shutdown_started.elapsed() <= Duration::from_secs(2) + SLACK);
    let stats = processor.stats();
    assert_eq!(
        stats.accounted(),
        SPANS as u64,
        "every span accounted for: {stats:?}"
    );
    let requests = sink.requests();
    for r in &requests {
        assert!(r.get("decode_error").is_none(), "{r}");
        assert_eq!(spans_of(&r["decoded"]).len(), SPANS, "{r}");
    }
    Run {
        flush,
        flush_took,
        stats,
        requests,
    }
}

fn gaps(requests: &[Value]) -> Vec<f64> {
    requests
        .windows(2)
        .map(|w| w[1]["time"].as_f64().unwrap() - w[0]["time"].as_f64().unwrap())
        .collect()
}

const T: Duration = Duration::from_secs(10);

/// Scheduling slack allowed past a deadline on a loaded machine. The deadlines tested are
/// against collectors that would otherwise hold the caller for 30 s or more, or, where a
/// backoff could hold it, with backoffs of 2 s or more ([`slow_retry`]): a missed deadline
/// overruns by more than this however late the test's threads run.
const SLACK: Duration = Duration::from_secs(1);

/// [`retry`] with backoffs of 4 s, then 8 s, each × [0.5, 1.5) of jitter: a shutdown that slept
/// out a backoff instead of cutting it would overrun its deadline by more than [`SLACK`].
fn slow_retry() -> RetryPolicy {
    RetryPolicy {
        initial_backoff: Duration::from_secs(4),
        max_backoff: Duration::from_secs(8),
        ..retry()
    }
}

#[test]
fn ok_exports_once() {
    require_otlp_oracles!("ok_exports_once");
    for protocol in [Protocol::HttpProtobuf, Protocol::HttpJson] {
        let r = run(json!([{"status": 200}]), T, T, protocol);
        assert!(r.flush.is_ok());
        assert_eq!((r.stats.exported, r.requests.len()), (SPANS as u64, 1));
    }
}

#[test]
fn partial_success_counts_rejected_and_is_not_retried() {
    require_otlp_oracles!("partial_success_counts_rejected_and_is_not_retried");
    for protocol in [Protocol::HttpProtobuf, Protocol::HttpJson] {
        let r = run(
            json!([{"status": 200, "rejected": 2, "message": "2 spans too old"}]),
            T,
            T,
            protocol,
        );
        assert_eq!(r.requests.len(), 1, "{protocol}");
        assert_eq!((r.stats.exported, r.stats.rejected), (3, 2));
        match r.flush {
            Err(ExportError::Rejected { spans: 2, message }) => {
                assert_eq!(message, "2 spans too old")
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_warning_with_zero_rejected_is_a_success() {
    require_otlp_oracles!("a_warning_with_zero_rejected_is_a_success");
    let r = run(
        json!([{"status": 200, "rejected": 0, "message": "deprecated field"}]),
        T,
        T,
        Protocol::HttpProtobuf,
    );
    assert!(r.flush.is_ok());
    assert_eq!(r.stats.exported, SPANS as u64);
    assert_eq!(r.stats.last_warning.as_deref(), Some("deprecated field"));
}

#[test]
fn client_and_server_errors_other_than_the_retryable_ones_are_not_retried() {
    require_otlp_oracles!("client_and_server_errors_other_than_the_retryable_ones_are_not_retried");
    for status in [400u16, 401, 403, 404, 413, 500, 501] {
        let r = run(
            json!([{"status": status, "message": "no thanks"}]),
            T,
            T,
            Protocol::HttpProtobuf,
        );
        assert_eq!(r.requests.len(), 1, "HTTP {status} must not be retried");
        assert_eq!(r.stats.failed, SPANS as u64);
        match r.flush {
            Err(ExportError::Http { status: s, message }) => {
                assert_eq!(s, status);
                assert_eq!(message, "no thanks", "the google.rpc.Status message");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn retryable_statuses_are_retried_with_jittered_exponential_backoff() {
    require_otlp_oracles!("retryable_statuses_are_retried_with_jittered_exponential_backoff");
    for status in [429u16, 502, 503, 504] {
        let r = run(
            json!([{"status": status}, {"status": status}, {"status": 200}]),
            T,
            T,
            Protocol::HttpJson,
        );
        assert!(r.flush.is_ok(), "{status}: {:?}", r.flush);
        assert_eq!(r.requests.len(), 3, "{status}");
        assert_eq!(r.stats.exported, SPANS as u64);
        // Backoff 100 ms then 200 ms, each × [0.5, 1.5): the lower bounds are exact; the
        // upper ones leave room for a loaded 2-core machine.
        let g = gaps(&r.requests);
        assert!((0.045..1.0).contains(&g[0]), "{status}: first gap {g:?}");
        assert!((0.095..1.5).contains(&g[1]), "{status}: second gap {g:?}");
    }
}

#[test]
fn retries_stop_after_max_attempts() {
    require_otlp_oracles!("retries_stop_after_max_attempts");
    let r = run(
        Value::Array(vec![json!({"status": 503}); 6]),
        T,
        T,
        Protocol::HttpProtobuf,
    );
    assert_eq!(r.requests.len(), 4);
    assert_eq!(r.stats.failed, SPANS as u64);
    assert!(matches!(
        r.flush,
        Err(ExportError::Http { status: 503, .. })
    ));
}

#[test]
fn retry_after_seconds_and_http_dates_are_honoured() {
    require_otlp_oracles!("retry_after_seconds_and_http_dates_are_honoured");
    let r = run(
        json!([{"status": 429, "retry_after": "1"}, {"status": 200}]),
        T,
        T,
        Protocol::HttpProtobuf,
    );
    assert!(r.flush.is_ok());
    let g = gaps(&r.requests);
    assert!((0.95..2.0).contains(&g[0]), "Retry-After: 1 → {g:?}");
    // An HTTP date 2 s ahead (second resolution: 1–2 s of wait).
    let r = run(
        json!([{"status": 503, "retry_after_date_in": 2}, {"status": 200}]),
        T,
        T,
        Protocol::HttpProtobuf,
    );
    assert!(r.flush.is_ok(), "{:?}", r.flush);
    let g = gaps(&r.requests);
    assert!((0.95..2.6).contains(&g[0]), "HTTP-date → {g:?}");
}

#[test]
fn a_retry_after_past_the_deadline_fails_at_once() {
    require_otlp_oracles!("a_retry_after_past_the_deadline_fails_at_once");
    let r = run(
        json!([{"status": 503, "retry_after": "3"}]),
        Duration::from_secs(1),
        T,
        Protocol::HttpProtobuf,
    );
    assert_eq!(r.requests.len(), 1);
    assert!(
        r.flush_took < Duration::from_millis(900),
        "{:?}",
        r.flush_took
    );
    match r.flush {
        Err(ExportError::Http {
            status: 503,
            message,
        }) => {
            assert!(message.contains("deadline"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn reset_and_closed_connections_are_retried() {
    require_otlp_oracles!("reset_and_closed_connections_are_retried");
    for action in ["reset", "close"] {
        let r = run(
            json!([{"action": action}, {"status": 200}]),
            T,
            T,
            Protocol::HttpProtobuf,
        );
        assert!(r.flush.is_ok(), "{action}: {:?}", r.flush);
        assert_eq!(r.requests.len(), 2, "{action}");
        assert_eq!(r.stats.exported, SPANS as u64);
    }
}

#[test]
fn a_response_over_4_mib_is_refused_and_not_retried() {
    require_otlp_oracles!("a_response_over_4_mib_is_refused_and_not_retried");
    let r = run(
        json!([{"action": "big_body", "size": (4 << 20) + 1}]),
        T,
        T,
        Protocol::HttpProtobuf,
    );
    assert_eq!(r.requests.len(), 1);
    assert_eq!(r.stats.failed, SPANS as u64);
    match r.flush {
        Err(ExportError::InvalidResponse { detail }) => {
            assert!(detail.contains("4 MiB"), "{detail}")
        }
        other => panic!("{other:?}"),
    }
    // Exactly 4 MiB is fine (a body the client does not understand still means accepted).
    let r = run(
        json!([{"action": "big_body", "size": 4 << 20}]),
        T,
        T,
        Protocol::HttpProtobuf,
    );
    assert!(r.flush.is_ok(), "{:?}", r.flush);
    assert!(r.stats.last_warning.unwrap().contains("did not decode"));
}

#[test]
fn chunked_responses_and_interim_100_continue_are_read() {
    require_otlp_oracles!("chunked_responses_and_interim_100_continue_are_read");
    let body = r#"{"partialSuccess":{"rejectedSpans":"1","errorMessage":"one bad"}}"#;
    let (a, b) = body.split_at(20);
    let raw = format!(
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\n{:x};ext=1\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\nX-Trailer: y\r\n\r\n",
        a.len(),
        b.len()
    );
    let r = run(
        json!([{"action": "raw", "bytes": raw}, {"status": 200}]),
        T,
        T,
        Protocol::HttpJson,
    );
    assert_eq!(r.requests.len(), 1);
    assert_eq!(
        (r.stats.exported, r.stats.rejected),
        (4, 1),
        "{:?}",
        r.stats
    );
}

#[test]
fn a_slow_collector_within_the_timeout_is_waited_for() {
    require_otlp_oracles!("a_slow_collector_within_the_timeout_is_waited_for");
    let r = run(
        json!([{"delay": 0.5, "status": 200}]),
        T,
        T,
        Protocol::HttpProtobuf,
    );
    assert!(r.flush.is_ok());
    assert!(r.flush_took >= Duration::from_millis(450));
    assert_eq!(r.requests.len(), 1);
}

#[test]
fn a_slow_or_hung_collector_fails_the_export_at_its_timeout() {
    require_otlp_oracles!("a_slow_or_hung_collector_fails_the_export_at_its_timeout");
    for step in [
        json!({"delay": 5, "status": 200}),
        json!({"action": "hang", "seconds": 30}),
    ] {
        let r = run(
            json!([step]),
            Duration::from_millis(700),
            T,
            Protocol::HttpProtobuf,
        );
        assert!(
            matches!(r.flush, Err(ExportError::Timeout)),
            "{:?}",
            r.flush
        );
        assert!(
            (Duration::from_millis(650)..Duration::from_millis(1500)).contains(&r.flush_took),
            "{step}: {:?}",
            r.flush_took
        );
        assert_eq!(r.stats.failed, SPANS as u64);
    }
}

#[test]
fn force_flush_returns_by_its_deadline_against_a_hung_collector() {
    require_otlp_oracles!("force_flush_returns_by_its_deadline_against_a_hung_collector");
    let r = run(
        json!([{"action": "hang", "seconds": 30}]),
        T,
        Duration::from_millis(500),
        Protocol::HttpProtobuf,
    );
    assert!(
        matches!(r.flush, Err(ExportError::Timeout)),
        "{:?}",
        r.flush
    );
    assert!(
        r.flush_took <= Duration::from_millis(500) + SLACK,
        "{:?}",
        r.flush_took
    );
}

#[test]
fn shutdown_returns_by_its_deadline_whatever_the_collector_does() {
    require_otlp_oracles!("shutdown_returns_by_its_deadline_whatever_the_collector_does");
    for script in [
        json!([{"action": "hang", "seconds": 30}]),
        json!([{"delay": 30, "status": 200}]),
        Value::Array(vec![json!({"status": 503}); 50]),
    ] {
        let sink = Sink::start(script.clone());
        let exporter = OtlpHttpExporter::new(OtlpHttpConfig {
            endpoint: sink.url(),
            retry: slow_retry(),
            resource: Resource::new("svc"),
            ..OtlpHttpConfig::default()
        })
        .unwrap();
        let processor = BatchSpanProcessor::start(
            source(SPANS),
            exporter,
            BatchConfig {
                schedule_delay: Duration::from_millis(10),
                ..BatchConfig::default()
            },
        )
        .unwrap();
        // Let the export start and get stuck, then shut down.
        sink.wait_for(1);
        let started = Instant::now();
        let result = processor.shutdown(Duration::from_millis(600));
        let took = started.elapsed();
        assert!(
            took <= Duration::from_millis(600) + SLACK,
            "{script}: {took:?}"
        );
        assert!(result.is_err(), "{script}: {result:?}");
        assert!(!processor.is_running());
        let stats = processor.stats();
        assert_eq!(stats.accounted(), SPANS as u64, "{script}: {stats:?}");
        assert_eq!(stats.failed, SPANS as u64, "{script}: {stats:?}");
    }
}

#[test]
fn shutdown_returns_by_its_deadline_when_nothing_listens() {
    // No oracle needed: a port nobody listens on refuses every connection.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let exporter = OtlpHttpExporter::new(OtlpHttpConfig {
        endpoint: format!("http://127.0.0.1:{port}/v1/traces"),
        retry: retry(),
        resource: Resource::new("svc"),
        ..OtlpHttpConfig::default()
    })
    .unwrap();
    let processor =
        BatchSpanProcessor::start(source(SPANS), exporter, BatchConfig::default()).unwrap();
    let started = Instant::now();
    let err = processor.force_flush(Duration::from_secs(5)).unwrap_err();
    assert_eq!(err.error_type(), "connection", "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "4 attempts, short backoffs"
    );
    let started = Instant::now();
    processor.shutdown(Duration::from_millis(300)).unwrap();
    assert!(started.elapsed() <= Duration::from_millis(300) + SLACK);
    let stats = processor.stats();
    assert_eq!(
        (stats.failed, stats.accounted()),
        (SPANS as u64, SPANS as u64)
    );
}

#[test]
fn a_full_queue_drops_the_oldest_and_counts_them() {
    // The queue is capped at 4; 5 spans wait when the exporter first looks.
    let exporter = agentcore_telemetry::export::InMemorySpanExporter::new();
    let processor = BatchSpanProcessor::start(
        source(SPANS),
        exporter.clone(),
        BatchConfig {
            max_queue_size: 4,
            max_export_batch_size: 2,
            ..BatchConfig::default()
        },
    )
    .unwrap();
    processor.force_flush(Duration::from_secs(5)).unwrap();
    let stats = processor.stats();
    assert_eq!(
        (
            stats.dropped_queue_full,
            stats.exported,
            stats.queue_capacity
        ),
        (1, 4, 4)
    );
    assert_eq!(exporter.batches(), [2, 2]);
    // The dropped one is the oldest: the root, which started (and was pushed) first.
    let names: Vec<String> = exporter
        .spans()
        .iter()
        .map(|s| s.name.to_string())
        .collect();
    assert_eq!(names, ["child", "child", "child", "child"]);
}

#[test]
fn self_metrics_use_the_otel_sdk_names() {
    require_otlp_oracles!("self_metrics_use_the_otel_sdk_names");
    let sink = Sink::start(json!([{"status": 200, "rejected": 1}, {"status": 400}]));
    let registry = Registry::new();
    let exporter = OtlpHttpExporter::new(OtlpHttpConfig {
        endpoint: sink.url(),
        retry: retry(),
        resource: Resource::new("svc"),
        ..OtlpHttpConfig::default()
    })
    .unwrap();
    let src = source(SPANS);
    let processor =
        BatchSpanProcessor::start(src.clone(), exporter, BatchConfig::default()).unwrap();
    processor.register_metrics(&registry).unwrap();
    let _ = processor.force_flush(T);
    for r in source(3).clone().drain_all() {
        src.push(r);
    }
    let _ = processor.force_flush(T);
    let text = registry.encode_text();
    let p = format!(
        "otel_component_type=\"batching_span_processor\",otel_component_name=\"{}\"",
        processor.component_name()
    );
    let e = format!(
        "otel_component_type=\"otlp_http_span_exporter\",otel_component_name=\"{}\"",
        processor.exporter_component_name()
    );
    for line in [
        format!("otel_sdk_processor_span_queue_capacity{{{p}}} 2048"),
        format!("otel_sdk_processor_span_queue_size{{{p}}} 0"),
        format!("otel_sdk_processor_span_processed_total{{{p},error_type=\"\"}} 8"),
        format!("otel_sdk_exporter_span_inflight{{{e}}} 0"),
        format!("otel_sdk_exporter_span_exported_total{{{e},error_type=\"\"}} 4"),
        format!("otel_sdk_exporter_span_exported_total{{{e},error_type=\"rejected\"}} 1"),
        format!("otel_sdk_exporter_span_exported_total{{{e},error_type=\"400\"}} 3"),
        format!("otel_sdk_exporter_operation_duration_seconds_count{{{e},error_type=\"400\"}} 1"),
        format!(
            "otel_sdk_exporter_operation_duration_seconds_count{{{e},error_type=\"rejected\"}} 1"
        ),
    ] {
        assert!(
            text.contains(&format!("{line}\n")),
            "missing {line:?} in\n{text}"
        );
    }
}

trait DrainAll {
    fn drain_all(self) -> Vec<agentcore_telemetry::SpanRecord>;
}

impl DrainAll for MemorySpanSource {
    fn drain_all(mut self) -> Vec<agentcore_telemetry::SpanRecord> {
        use agentcore_telemetry::export::SpanSource;
        let mut out = Vec::new();
        self.drain(usize::MAX, &mut |s| out.push(s.record.clone()));
        out
    }
}
