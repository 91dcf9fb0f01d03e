//! Reading the tracer's numbers never waits for an export. `get_metrics` and `export_stats`
//! once took the lock that `force_flush` and `shutdown` held for their whole wait: a scrape
//! or a health check stalled behind a slow collector, and an exporter that read the tracer's
//! metrics (to log them, say) stalled `shutdown` until its deadline, the exporter thread
//! waiting for the lock that `shutdown` held while it waited for that thread.
#![cfg(feature = "otlp")]

use agentcore_telemetry::export::{BatchConfig, Deadline, ExportOutcome, ExportSpan, SpanExporter};
use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};
use std::sync::mpsc;
use std::time::Duration;

fn tracer() -> &'static DistributedTracer {
    Box::leak(Box::new(DistributedTracer::new(TracerConfig {
        from_env: false,
        ..TracerConfig::default()
    })))
}

/// An exporter whose first export waits until the test lets it go.
struct Held {
    count: u64,
    started: mpsc::Sender<()>,
    release: mpsc::Receiver<()>,
}

impl SpanExporter for Held {
    fn add(&mut self, _: ExportSpan<'_>) {
        self.count += 1;
    }

    fn export(&mut self, _: &Deadline) -> ExportOutcome {
        let _ = self.started.send(());
        let _ = self.release.recv_timeout(Duration::from_secs(30));
        ExportOutcome::exported(std::mem::take(&mut self.count))
    }
}

#[test]
fn metrics_are_readable_while_a_flush_waits_for_the_exporter() {
    let tracer = tracer();
    let (started_tx, started) = mpsc::channel();
    let (release, release_rx) = mpsc::channel();
    let exporter = Held {
        count: 0,
        started: started_tx,
        release: release_rx,
    };
    tracer
        .start_export_with(exporter, BatchConfig::default())
        .unwrap();
    tracer.start_span("s", SpanKind::Internal, []).end();
    let flusher = std::thread::spawn(move || tracer.force_flush(Duration::from_secs(30)));
    // The export is under way and held: the flush is waiting for it.
    started.recv_timeout(Duration::from_secs(30)).unwrap();

    let (read_tx, read) = mpsc::channel();
    std::thread::spawn(move || {
        let m = tracer.get_metrics();
        let s = tracer.export_stats();
        let _ = read_tx.send((m.export_enabled, s.is_some()));
    });
    // Without waiting for the export: it stays held until after this.
    let got = read.recv_timeout(Duration::from_secs(10));
    release.send(()).unwrap();
    assert_eq!(
        got,
        Ok((true, true)),
        "get_metrics / export_stats waited for the flush"
    );
    flusher.join().unwrap().unwrap();
    tracer.shutdown(Duration::from_secs(10)).unwrap();
}

/// An exporter that reads the tracer's metrics for every span it is given.
struct Querying {
    tracer: &'static DistributedTracer,
    count: u64,
}

impl SpanExporter for Querying {
    fn add(&mut self, _: ExportSpan<'_>) {
        let _ = self.tracer.get_metrics();
        self.count += 1;
    }

    fn export(&mut self, _: &Deadline) -> ExportOutcome {
        ExportOutcome::exported(std::mem::take(&mut self.count))
    }
}

#[test]
fn an_exporter_that_reads_the_tracer_does_not_stall_shutdown() {
    let tracer = tracer();
    tracer
        .start_export_with(Querying { tracer, count: 0 }, BatchConfig::default())
        .unwrap();
    for _ in 0..10 {
        tracer.start_span("s", SpanKind::Internal, []).end();
    }
    assert_eq!(tracer.shutdown(Duration::from_secs(5)), Ok(()));
    let s = tracer.export_stats().unwrap();
    assert_eq!(s.exported, 10, "{s:?}");
}
