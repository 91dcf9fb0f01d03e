//! A tracer whose export is stopped and started again (a new endpoint, a restart after a
//! shutdown) keeps its registry's size: the self-metrics of a processor that is gone are not
//! kept for good.
#![cfg(feature = "otlp")]

use std::time::Duration;

use agentcore_telemetry::export::InMemorySpanExporter;
use agentcore_telemetry::{DistributedTracer, Registry, SpanKind, TracerConfig};

/// Restarts export `n` times; the exposition's sample lines after it.
fn samples_after_restarts(tracer: &DistributedTracer, registry: &Registry, n: usize) -> usize {
    for _ in 0..n {
        tracer
            .start_export_with(InMemorySpanExporter::new(), Default::default())
            .unwrap();
        tracer.start_span("op", SpanKind::Internal, []).end();
        tracer.shutdown(Duration::from_secs(5)).unwrap();
    }
    registry
        .encode_text()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .count()
}

/// Every start of export makes a processor with new `otel_component_name`s
/// (`batching_span_processor/N`, `in_memory_span_exporter/N`) and registers its series in
/// the tracer's registry. A processor replaced by the next start was never taken out: its
/// queue gauges and counters stayed exposed, frozen, and the registry and every scrape grew
/// by some 20 samples (about 7 KiB) per restart, up to each family's cardinality cap.
#[test]
fn restarting_export_does_not_grow_the_registry() {
    let tracer = DistributedTracer::new(TracerConfig {
        span_log_capacity: 64,
        from_env: false,
        ..TracerConfig::default()
    });
    let registry = Registry::new();
    tracer.register_metrics(&registry).unwrap();
    let after_two = samples_after_restarts(&tracer, &registry, 2);
    let after_fifty = samples_after_restarts(&tracer, &registry, 48);
    assert_eq!(
        after_fifty, after_two,
        "50 restarts of export left {after_fifty} samples in the exposition, 2 left {after_two}"
    );
}

/// Restarting export replaces the processor under the tracer's export slot lock, and the
/// replaced processor's `Drop` waits there, for up to `drop_timeout`, for its thread to drop
/// its exporter (the caller's code, which may block). Readers of the slot on other threads
/// (`export_stats`, `get_metrics`, `force_flush`) waited as long: the lock "guards the slot
/// only, never a wait" (`distributed/exporting.rs`).
#[test]
fn restarting_export_does_not_hold_readers_while_the_old_exporter_drops() {
    use agentcore_telemetry::export::{
        BatchConfig, Deadline, ExportOutcome, ExportSpan, SpanExporter,
    };
    use std::sync::mpsc::{channel, Receiver};
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    /// Its export ignores its deadline for 300 ms; its drop blocks until released (or 10 s).
    struct Slow {
        release: Mutex<Receiver<()>>,
    }
    impl SpanExporter for Slow {
        fn add(&mut self, _: ExportSpan<'_>) {}
        fn export(&mut self, _: &Deadline) -> ExportOutcome {
            std::thread::sleep(Duration::from_millis(300));
            ExportOutcome::default()
        }
    }
    impl Drop for Slow {
        fn drop(&mut self) {
            let rx = self.release.lock().unwrap_or_else(|e| e.into_inner());
            let _ = rx.recv_timeout(Duration::from_secs(10));
        }
    }

    let tracer = Arc::new(DistributedTracer::new(TracerConfig {
        span_log_capacity: 64,
        from_env: false,
        ..TracerConfig::default()
    }));
    let (release, blocked) = channel();
    let batch = BatchConfig {
        drop_timeout: Duration::from_secs(2),
        ..BatchConfig::default()
    };
    tracer
        .start_export_with(
            Slow {
                release: Mutex::new(blocked),
            },
            batch,
        )
        .unwrap();
    tracer.start_span("op", SpanKind::Internal, []).end();
    // Gives up while the export runs: the thread is not joined, its handle is kept.
    let _ = tracer.force_flush(Duration::from_millis(20));
    let _ = tracer.shutdown(Duration::from_millis(20));
    let waited = Instant::now();
    while tracer.export_stats().is_some_and(|s| s.running) {
        assert!(waited.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(10));
    }
    // The thread has exited its loop and now blocks in the exporter's drop.
    std::thread::sleep(Duration::from_millis(50));
    let restarter = {
        let tracer = Arc::clone(&tracer);
        std::thread::spawn(move || {
            tracer
                .start_export_with(InMemorySpanExporter::new(), Default::default())
                .unwrap()
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    let _ = tracer.export_stats();
    let took = started.elapsed();
    let _ = release.send(());
    restarter.join().unwrap();
    assert!(
        took < Duration::from_millis(500),
        "export_stats() took {took:?} while another thread restarted export"
    );
}

/// A tracer whose metrics are registered in a registry where the caller registered
/// `otel_sdk_processor_span_processed_total` first, with a cap of `max_series` series, one of
/// them its own.
fn tracer_beside_a_capped_processed_family(max_series: usize) -> (DistributedTracer, Registry) {
    use agentcore_telemetry::registry::FamilyOptions;
    use agentcore_telemetry::Counter;

    let tracer = DistributedTracer::new(TracerConfig {
        span_log_capacity: 64,
        from_env: false,
        ..TracerConfig::default()
    });
    let registry = Registry::new();
    let processed = registry
        .register::<Counter>(
            "otel_sdk_processor_span_processed_total",
            "Spans processed.",
            &["otel_component_type", "otel_component_name", "error_type"],
            (),
            FamilyOptions {
                max_series,
                ..FamilyOptions::default()
            },
        )
        .unwrap();
    processed
        .with_label_values(&["mine", "mine/0", ""])
        .unwrap()
        .inc();
    tracer.register_metrics(&registry).unwrap();
    (tracer, registry)
}

/// A processor's registration that fails part-way (here the processed-spans family, which the
/// caller registered with a cap of one series, is full) has already put its queue and inflight
/// gauges in the registry; they were not remembered for removal, so every restart of export
/// left three more frozen samples there for good, however often the processor was dropped.
#[test]
fn a_registration_that_fails_part_way_leaves_nothing_behind() {
    // The processed-spans family, which the caller registered, is full: its cap is 1.
    let (tracer, registry) = tracer_beside_a_capped_processed_family(1);
    let after_two = samples_after_restarts(&tracer, &registry, 2);
    let after_twenty = samples_after_restarts(&tracer, &registry, 18);
    assert_eq!(
        after_twenty, after_two,
        "20 restarts of export left {after_twenty} samples in the exposition, 2 left {after_two}"
    );
}

/// The `otel_component_name`s of the processors exposed in `text`, and the exporters' exported
/// counts (`otel_sdk_exporter_span_exported_total`, successes) by component name.
fn exposed(text: &str) -> (Vec<String>, Vec<(String, u64)>) {
    let name_in = |line: &str| {
        let start = line.find("otel_component_name=\"")? + "otel_component_name=\"".len();
        let end = line[start..].find('"')? + start;
        Some(line[start..end].to_owned())
    };
    let processors = text
        .lines()
        .filter(|l| l.starts_with("otel_sdk_processor_span_queue_capacity{"))
        .filter_map(name_in)
        .collect();
    let exported = text
        .lines()
        .filter(|l| {
            l.starts_with("otel_sdk_exporter_span_exported_total{")
                && l.contains("error_type=\"\"}")
        })
        .filter_map(|l| Some((name_in(l)?, l.rsplit(' ').next()?.parse().ok()?)))
        .collect();
    (processors, exported)
}

/// Two tracers share a registry and one of them restarts export: the replaced processor's drop
/// (after the tracer's export lock, and after the new one registered in the same families)
/// takes out its own series only. The new processor's and the other tracer's stay, and
/// still count.
#[test]
fn a_replaced_processor_takes_out_its_own_series_only() {
    let config = || TracerConfig {
        span_log_capacity: 64,
        from_env: false,
        ..TracerConfig::default()
    };
    let (a, b) = (
        DistributedTracer::new(config()),
        DistributedTracer::new(config()),
    );
    let registry = Registry::new();
    a.register_metrics(&registry).unwrap();
    // `b`'s span metrics cannot share `a`'s series and are refused; its exporter's self-metrics,
    // labelled per processor, are registered all the same.
    assert!(matches!(
        b.register_metrics(&registry),
        Err(agentcore_telemetry::Error::DuplicateMetric { .. })
    ));
    for t in [&a, &b] {
        t.start_export_with(InMemorySpanExporter::new(), Default::default())
            .unwrap();
    }
    let (before, _) = exposed(&registry.encode_text());
    assert_eq!(before.len(), 2, "{before:?}");
    a.shutdown(Duration::from_secs(5)).unwrap();
    a.start_export_with(InMemorySpanExporter::new(), Default::default())
        .unwrap();
    for t in [&a, &b] {
        t.start_span("op", SpanKind::Internal, []).end();
        t.force_flush(Duration::from_secs(5)).unwrap();
    }
    let (after, exported) = exposed(&registry.encode_text());
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(
        after.contains(&before[0]) != after.contains(&before[1]),
        "{before:?} -> {after:?}"
    );
    assert_eq!(exported.len(), 2, "{exported:?}");
    assert!(exported.iter().all(|(_, n)| *n == 1), "{exported:?}");
}

/// A restart of export registers the new processor while the replaced one is still in the slot;
/// its series were taken out only when it dropped, after. In a family with room for one
/// processor's series (here the caller's processed-spans family, capped at its own series plus
/// one), the new processor's were refused: it ran its whole life without its processed and
/// exported counts exposed. The replaced processor, stopped, leaves before the new one
/// registers.
#[test]
fn a_restarted_processor_takes_the_room_its_predecessor_left() {
    // Room for the caller's series and one processor's.
    let (tracer, registry) = tracer_beside_a_capped_processed_family(2);
    for start in 1..=3 {
        tracer
            .start_export_with(InMemorySpanExporter::new(), Default::default())
            .unwrap();
        tracer.start_span("op", SpanKind::Internal, []).end();
        tracer.force_flush(Duration::from_secs(5)).unwrap();
        let (processors, exported) = exposed(&registry.encode_text());
        assert_eq!(processors.len(), 1, "start {start}: {processors:?}");
        assert_eq!(
            exported.len(),
            1,
            "start {start} of export: the running processor's exported count is not exposed \
             ({exported:?})"
        );
        let processed_lines = registry
            .encode_text()
            .lines()
            .filter(|l| l.starts_with("otel_sdk_processor_span_processed_total{"))
            .filter(|l| l.contains(&format!("otel_component_name=\"{}\"", processors[0])))
            .count();
        assert_eq!(
            processed_lines, 1,
            "start {start} of export: the running processor's processed count is not exposed"
        );
        tracer.shutdown(Duration::from_secs(5)).unwrap();
    }
}
