//! The OTLP exporter writing to a connection the collector closed, in a process that keeps
//! SIGPIPE's default disposition (terminate), as a C program embedding the crate does (Rust's
//! own `main` ignores SIGPIPE, which hid this). The request used to be written with `writev`,
//! which raises SIGPIPE on a closed connection: the process was killed. Found by an
//! adversarial review. Its own test binary: the disposition is process-wide.
#![cfg(all(feature = "otlp", target_os = "linux"))]

use std::net::TcpListener;
use std::time::Duration;

use agentcore_telemetry::export::otlp::{OtlpHttpConfig, OtlpHttpExporter, RetryPolicy};
use agentcore_telemetry::export::{Deadline, ExportSpan, SpanExporter};
use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};

extern "C" {
    fn signal(signum: i32, handler: usize) -> usize;
}
const SIGPIPE: i32 = 13;
const SIG_DFL: usize = 0;

#[test]
fn writing_to_a_closed_connection_does_not_raise_sigpipe() {
    // SAFETY: `signal` with SIG_DFL installs no handler of ours; this binary runs this one
    // test, so no other thread depends on the disposition it replaces.
    unsafe { signal(SIGPIPE, SIG_DFL) };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for c in listener.incoming() {
            drop(c); // closed at once: the client's writes meet a reset
        }
    });
    let tracer = DistributedTracer::new(TracerConfig {
        from_env: false,
        ..TracerConfig::default()
    });
    let span = tracer.start_span("x".repeat(4 << 20), SpanKind::Internal, []);
    let id = span.span_id();
    span.end();
    let record = tracer.get_span_by_id(id).unwrap();
    let mut e = OtlpHttpExporter::new(OtlpHttpConfig {
        endpoint: format!("http://{addr}/v1/traces"),
        retry: RetryPolicy::none(),
        timeout: Duration::from_secs(2),
        ..OtlpHttpConfig::default()
    })
    .unwrap();
    for _ in 0..5 {
        e.add(ExportSpan::new(&record));
        let out = e.export(&Deadline::after(Duration::from_secs(2)));
        // Reaching this line at all is the test: SIGPIPE would have killed the process.
        assert_eq!(out.failed, 1, "{out:?}");
    }
}
