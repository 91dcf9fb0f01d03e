//! The batch span processor against an exporter that panics, and against timeouts meaning
//! "forever" (`Duration::MAX`). Found by an adversarial review: a panic on the exporter thread
//! (a hostile collector's chunk size overflowed in the OTLP transport; any `SpanExporter` may
//! panic) killed the thread without marking it exited, so every flush and shutdown timed out
//! and no span was ever counted again; and `Instant::now() + Duration::MAX` panicked in
//! `force_flush`, `shutdown`, `Deadline::after` and the Pushgateway client.
#![cfg(feature = "otlp")]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agentcore_telemetry::export::{
    BatchConfig, BatchSpanProcessor, Deadline, ExportError, ExportOutcome, ExportSpan,
    MemorySpanSource, SpanExporter,
};
use agentcore_telemetry::{DistributedTracer, SpanKind, SpanRecord, TracerConfig};

fn record() -> SpanRecord {
    let tracer = DistributedTracer::new(TracerConfig {
        from_env: false,
        ..TracerConfig::default()
    });
    let span = tracer.start_span("op", SpanKind::Internal, []);
    let id = span.span_id();
    span.end();
    tracer.get_span_by_id(id).unwrap()
}

/// Panics where it is told to, counting the calls; otherwise exports what it was given.
#[derive(Default)]
struct Panicky {
    held: u64,
    adds: u64,
    exports: Arc<AtomicU64>,
    /// Panic in `add` on this call (1-based; 0: never).
    add_panics_at: u64,
    /// Panic in `export` on this call (1-based; 0: never).
    export_panics_at: u64,
    panic_on_shutdown: bool,
}

impl SpanExporter for Panicky {
    fn add(&mut self, _: ExportSpan<'_>) {
        self.adds += 1;
        if self.adds == self.add_panics_at {
            panic!("add panicked on purpose");
        }
        self.held += 1;
    }
    fn export(&mut self, _: &Deadline) -> ExportOutcome {
        let call = self.exports.fetch_add(1, Ordering::Relaxed) + 1;
        if call == self.export_panics_at {
            panic!("export panicked on purpose");
        }
        ExportOutcome::exported(std::mem::take(&mut self.held))
    }
    fn shutdown(&mut self, _: &Deadline) {
        if self.panic_on_shutdown {
            panic!("shutdown panicked on purpose");
        }
    }
}

fn start(exporter: Panicky) -> (MemorySpanSource, BatchSpanProcessor) {
    let source = MemorySpanSource::new(4096);
    let config = BatchConfig {
        schedule_delay: Duration::from_secs(60),
        ..BatchConfig::default()
    };
    let p = BatchSpanProcessor::start(source.clone(), exporter, config).unwrap();
    (source, p)
}

#[test]
fn an_export_that_panics_fails_its_batch_and_the_thread_goes_on() {
    let (source, p) = start(Panicky {
        export_panics_at: 1,
        ..Panicky::default()
    });
    for _ in 0..10 {
        source.push(record());
    }
    let e = p.force_flush(Duration::from_secs(5)).unwrap_err();
    assert!(
        matches!(e, ExportError::Panicked { ref message } if message.contains("on purpose")),
        "{e:?}"
    );
    for _ in 0..5 {
        source.push(record());
    }
    p.force_flush(Duration::from_secs(5)).unwrap();
    let started = Instant::now();
    p.shutdown(Duration::from_secs(5)).unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    let s = p.stats();
    assert_eq!((s.failed, s.exported, s.accounted()), (10, 5, 15), "{s:?}");
    assert!(!s.running);
}

#[test]
fn an_add_that_panics_fails_that_span_and_the_others_are_exported() {
    let (source, p) = start(Panicky {
        add_panics_at: 3,
        ..Panicky::default()
    });
    for _ in 0..10 {
        source.push(record());
    }
    let e = p.force_flush(Duration::from_secs(5)).unwrap_err();
    assert!(matches!(e, ExportError::Panicked { .. }), "{e:?}");
    p.shutdown(Duration::from_secs(5)).unwrap();
    let s = p.stats();
    assert_eq!((s.failed, s.exported, s.accounted()), (1, 9, 10), "{s:?}");
}

#[test]
fn a_shutdown_that_panics_is_reported_and_the_thread_exits() {
    let (source, p) = start(Panicky {
        panic_on_shutdown: true,
        ..Panicky::default()
    });
    for _ in 0..3 {
        source.push(record());
    }
    let started = Instant::now();
    let e = p.shutdown(Duration::from_secs(5)).unwrap_err();
    assert!(matches!(e, ExportError::Panicked { .. }), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    let s = p.stats();
    assert_eq!((s.exported, s.accounted()), (3, 3), "{s:?}");
    assert!(!s.running && !p.is_running());
}

#[test]
fn timeouts_of_duration_max_mean_forever_and_do_not_panic() {
    let exports = Arc::new(AtomicU64::new(0));
    let source = MemorySpanSource::new(4096);
    let config = BatchConfig {
        schedule_delay: Duration::MAX,
        export_timeout: Duration::MAX,
        drop_timeout: Duration::MAX,
        max_poll_interval: Duration::MAX,
        ..BatchConfig::default()
    };
    let p = BatchSpanProcessor::start(
        source.clone(),
        Panicky {
            exports: exports.clone(),
            ..Panicky::default()
        },
        config,
    )
    .unwrap();
    source.push(record());
    p.force_flush(Duration::MAX).unwrap();
    assert_eq!(exports.load(Ordering::Relaxed), 1);
    source.push(record());
    p.shutdown(Duration::MAX).unwrap();
    assert_eq!(p.stats().exported, 2);
    drop(p); // `drop_timeout: Duration::MAX`: shut down already, returns at once

    let d = Deadline::after(Duration::MAX);
    assert!(!d.passed());
    assert!(d.remaining() > Duration::from_secs(3600 * 24 * 365));
}

#[cfg(feature = "pushgateway")]
#[test]
fn a_pushgateway_client_with_a_timeout_of_duration_max_does_not_panic() {
    use agentcore_telemetry::pushgateway::Pushgateway;
    // Nothing listens on port 1 of the loopback: the connection is refused at once.
    let gateway = Pushgateway::new("http://127.0.0.1:1", "job")
        .unwrap()
        .with_timeout(Duration::MAX);
    let registry = agentcore_telemetry::Registry::new();
    assert!(gateway.push(&registry).is_err());
}

/// A panic payload whose own `Drop` panics (found by the review of the panic handling: the
/// payload was dropped outside the catch, the thread died with 10 spans in flight and none
/// of them counted).
struct PanicsWhenDropped;
impl Drop for PanicsWhenDropped {
    fn drop(&mut self) {
        panic!("the payload's drop panicked");
    }
}

struct PanicsWithABadPayload {
    held: u64,
    in_add: bool,
}

impl SpanExporter for PanicsWithABadPayload {
    fn add(&mut self, _: ExportSpan<'_>) {
        if self.in_add {
            std::panic::panic_any(PanicsWhenDropped);
        }
        self.held += 1;
    }
    fn export(&mut self, _: &Deadline) -> ExportOutcome {
        if !self.in_add && self.held > 0 {
            self.held = 0;
            std::panic::panic_any(PanicsWhenDropped);
        }
        ExportOutcome::exported(std::mem::take(&mut self.held))
    }
}

#[test]
fn a_panic_payload_whose_drop_panics_is_contained_too() {
    for in_add in [false, true] {
        let source = MemorySpanSource::new(4096);
        let config = BatchConfig {
            schedule_delay: Duration::from_secs(60),
            ..BatchConfig::default()
        };
        let exporter = PanicsWithABadPayload { held: 0, in_add };
        let p = BatchSpanProcessor::start(source.clone(), exporter, config).unwrap();
        for _ in 0..10 {
            source.push(record());
        }
        let e = p.force_flush(Duration::from_secs(5)).unwrap_err();
        assert!(
            matches!(e, ExportError::Panicked { .. }),
            "in add: {in_add}: {e:?}"
        );
        assert!(p.is_running(), "in add: {in_add}: the thread died");
        p.shutdown(Duration::from_secs(5)).unwrap();
        let s = p.stats();
        assert_eq!(
            (s.failed, s.accounted()),
            (10, 10),
            "in add: {in_add}: {s:?}"
        );
    }
}
