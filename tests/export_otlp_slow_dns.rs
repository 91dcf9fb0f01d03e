//! The OTLP/HTTP exporter and a DNS server that never answers: name resolution (getaddrinfo)
//! has no timeout of its own, and glibc waits 5 s for a silent server. It used to run on the
//! exporter thread, so an export with a 500 ms timeout took those 5 s, and a shutdown during
//! it could not stop it (`shutdown` returned at its deadline, the thread still stuck).
//!
//! Each scenario runs in a child process in network and mount namespaces of its own
//! (`support::namespaces`): its own loopback, where a UDP socket on port 53 takes the queries
//! and says nothing, and its own `/etc/resolv.conf` bind-mounted to name it. Where namespaces
//! cannot be made, a test says so loudly and skips.
#![cfg(all(feature = "otlp", target_os = "linux"))]

mod support;

use std::time::{Duration, Instant};

use support::namespaces::{in_namespaces, is_child, SilentResolver};

use agentcore_telemetry::export::otlp::{OtlpHttpConfig, OtlpHttpExporter, RetryPolicy};
use agentcore_telemetry::export::{
    BatchConfig, BatchSpanProcessor, ExportError, MemorySpanSource, Resource,
};
use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};

const CHILD: &str = "AGENTCORE_SLOW_DNS_CHILD";
/// A name only DNS can answer (not in `/etc/hosts`; `.example` is reserved, RFC 2606).
const COLLECTOR: &str = "http://collector.agentcore-test.example:4318/v1/traces";
/// What a deadline may be overrun by: scheduling, a 50 ms wait slice, a slow CI machine.
const SLACK: Duration = Duration::from_millis(1000);

/// A source holding one ended span.
fn one_span() -> MemorySpanSource {
    let tracer = DistributedTracer::new(TracerConfig::default());
    let source = MemorySpanSource::new(16);
    let span = tracer.start_span("op", SpanKind::Internal, []);
    let trace = span.trace_id();
    span.end();
    for r in tracer.get_trace_spans(trace) {
        source.push(r);
    }
    assert_eq!(source.pushed(), 1);
    source
}

fn exporter(timeout: Duration) -> OtlpHttpExporter {
    OtlpHttpExporter::new(OtlpHttpConfig {
        endpoint: COLLECTOR.into(),
        timeout,
        retry: RetryPolicy::none(),
        resource: Resource::new("svc"),
        ..OtlpHttpConfig::default()
    })
    .unwrap()
}

#[test]
fn an_export_keeps_its_timeout_while_the_name_does_not_resolve() {
    const NAME: &str = "an_export_keeps_its_timeout_while_the_name_does_not_resolve";
    if !is_child(CHILD) {
        in_namespaces(CHILD, NAME, false);
        return;
    }
    let _silent = SilentResolver::start();
    let timeout = Duration::from_millis(500);
    let config = BatchConfig {
        schedule_delay: Duration::from_secs(60),
        ..BatchConfig::default()
    };
    let processor = BatchSpanProcessor::start(one_span(), exporter(timeout), config).unwrap();
    // The flush waits far longer than the export may take: what it returns, and when, is
    // the export's.
    let started = Instant::now();
    let flush = processor.force_flush(Duration::from_secs(20));
    let took = started.elapsed();
    assert_eq!(flush, Err(ExportError::Timeout), "after {took:?}");
    assert!(
        took < timeout + SLACK,
        "an export with a {timeout:?} timeout took {took:?}"
    );
    let stats = processor.stats();
    assert_eq!((stats.exported, stats.failed), (0, 1), "{stats:?}");
    let shutdown_timeout = Duration::from_secs(1);
    let started = Instant::now();
    let _ = processor.shutdown(shutdown_timeout);
    let took = started.elapsed();
    assert!(took <= shutdown_timeout + SLACK, "shutdown took {took:?}");
    assert!(!processor.is_running(), "the exporter thread still runs");
    eprintln!("done");
}

#[test]
fn a_shutdown_stops_an_export_waiting_for_the_name() {
    const NAME: &str = "a_shutdown_stops_an_export_waiting_for_the_name";
    if !is_child(CHILD) {
        in_namespaces(CHILD, NAME, false);
        return;
    }
    let _silent = SilentResolver::start();
    // The export's own deadlines are far away: only the shutdown's cut can end it early.
    let config = BatchConfig {
        schedule_delay: Duration::from_millis(10),
        export_timeout: Duration::from_secs(30),
        ..BatchConfig::default()
    };
    let processor =
        BatchSpanProcessor::start(one_span(), exporter(Duration::from_secs(30)), config).unwrap();
    // Wait until the export is under way (stuck resolving), then a little more.
    let waiting = Instant::now();
    while processor.stats().inflight == 0 {
        assert!(
            waiting.elapsed() < Duration::from_secs(3),
            "the export never started"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(200));
    let shutdown_timeout = Duration::from_millis(500);
    let started = Instant::now();
    let result = processor.shutdown(shutdown_timeout);
    let took = started.elapsed();
    assert!(took <= shutdown_timeout + SLACK, "shutdown took {took:?}");
    // Not only back by its deadline: the exporter thread stopped waiting and ended.
    assert!(
        !processor.is_running(),
        "the exporter thread still runs after shutdown ({result:?}, {took:?})"
    );
    assert_eq!(result, Err(ExportError::Timeout), "after {took:?}");
    let stats = processor.stats();
    assert_eq!((stats.exported, stats.failed), (0, 1), "{stats:?}");
    eprintln!("done");
}
