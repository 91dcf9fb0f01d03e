//! User code that misbehaves inside the crate's calls (review helper-97): a `Drop` that
//! registers in the registry it is dropped by, a duration conversion that panics, an error
//! whose `Display` panics or fails, an exporter reporting impossible counts, a source whose
//! panic payload panics when dropped. Each leaves the crate's state consistent and the
//! caller's own result in place; each test failed before its fix.

mod registry_fn_refused {
    //! A refused `gauge_fn` drops the caller's closure while the registry's writer mutex is held:
    //! a value captured by the closure whose `Drop` registers in the same registry deadlocks.

    use std::sync::mpsc;
    use std::time::Duration;

    use agentcore_telemetry::Registry;

    /// Registers a counter in `registry` when dropped (a handle that records its own teardown).
    struct RegistersOnDrop(Registry);
    impl Drop for RegistersOnDrop {
        fn drop(&mut self) {
            let _ = self.0.counter("teardowns_total", "Teardowns.");
        }
    }

    #[test]
    fn a_refused_gauge_fn_drops_its_closure_without_holding_the_registry() {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let registry = Registry::new();
            registry.gauge_fn("queue_depth", "Depth.", || 1.0).unwrap();
            let token = RegistersOnDrop(registry.clone());
            // The name is taken: refused, and the closure (with `token`) dropped.
            let refused = registry.gauge_fn("queue_depth", "Depth.", move || {
                let _ = &token;
                2.0
            });
            let _ = tx.send((refused.is_err(), registry.family_names()));
        });
        let (refused, names) = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("gauge_fn returned within 10 s (it deadlocked)");
        assert!(refused);
        assert!(names.iter().any(|n| n == "teardowns_total"), "{names:?}");
    }
}

mod collector_duration {
    //! `record_tool_execution` counts the execution before it converts the caller's duration: a
    //! duration (`IntoSeconds`) that panics leaves a counted execution with no duration observed,
    //! half a record (`record_container_creation` and the lifecycle records convert first).

    use std::panic::{catch_unwind, AssertUnwindSafe};

    use agentcore_telemetry::agent::IntoSeconds;
    use agentcore_telemetry::MetricsCollector;

    struct PanickingDuration;
    impl IntoSeconds for PanickingDuration {
        fn into_seconds(self) -> f64 {
            panic!("no duration (expected by this test)")
        }
    }

    #[test]
    fn a_panicking_duration_records_nothing() {
        let c = MetricsCollector::new();
        let r = catch_unwind(AssertUnwindSafe(|| {
            c.record_tool_execution("search", PanickingDuration, "success", None)
        }));
        assert!(r.is_err());
        let text = c.encode_text();
        let line = |prefix: &str| {
            text.lines()
                .find(|l| l.starts_with(prefix))
                .map(str::to_owned)
        };
        assert_eq!(
            (
                line("agentcore_tool_executions_total{tool_id=\"search\""),
                line("agentcore_tool_execution_seconds_count{tool_id=\"search\"")
            ),
            (None, None),
            "an execution counted without its duration"
        );
    }
}

mod trace_operation_display {
    //! `#[trace_operation]` formats a traced function's `Err` (for the span's exception event):
    //! an error whose `Display` panics turns the function's `Err` return into a panic, even on an
    //! unsampled span, which formats the error only to throw the text away.

    use std::fmt;
    use std::panic::{catch_unwind, AssertUnwindSafe};

    use agentcore_telemetry::trace_operation;

    #[derive(Debug)]
    struct PanicsOnDisplay;
    impl fmt::Display for PanicsOnDisplay {
        fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
            panic!("Display panics (expected by this test)")
        }
    }

    #[trace_operation]
    fn fails() -> Result<u32, PanicsOnDisplay> {
        Err(PanicsOnDisplay)
    }

    #[test]
    fn an_err_whose_display_panics_is_returned_not_a_panic() {
        let out = catch_unwind(AssertUnwindSafe(fails));
        assert!(
            matches!(out, Ok(Err(PanicsOnDisplay))),
            "the traced function's Err became a panic"
        );
    }
}

#[cfg(feature = "otlp")]
mod console_writer_error {
    //! The console exporter formats the `io::Error` its writer returned with `to_string()`: an
    //! error whose `Display` returns `fmt::Error` panics the writer thread after it has marked the
    //! line finished, so the failed batch is reported exported and every later export fails.

    use std::fmt;
    use std::io::{self, Write};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use agentcore_telemetry::export::{
        ConsoleSpanExporter, Deadline, ExportSpan, Resource, SpanExporter,
    };
    use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};

    #[derive(Debug)]
    struct Opaque;
    impl fmt::Display for Opaque {
        fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
            Err(fmt::Error)
        }
    }
    impl std::error::Error for Opaque {}

    /// Fails its first write with an error whose `Display` fails; then accepts everything.
    #[derive(Clone)]
    struct FailOnce(Arc<AtomicBool>);
    impl Write for FailOnce {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            if !self.0.swap(true, Ordering::SeqCst) {
                return Err(io::Error::other(Opaque));
            }
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_writer_error_whose_display_fails_is_a_failed_batch_not_a_dead_exporter() {
        let tracer = DistributedTracer::new(TracerConfig {
            from_env: false,
            ..TracerConfig::default()
        });
        let record = |name: &'static str| {
            let span = tracer.start_span(name, SpanKind::Internal, []);
            let id = span.span_id();
            span.end();
            tracer.get_span_by_id(id).unwrap()
        };
        let mut exporter =
            ConsoleSpanExporter::with_writer(&Resource::new("svc"), FailOnce(Arc::default()));
        exporter.add(ExportSpan::new(&record("first")));
        let first = exporter.export(&Deadline::after(Duration::from_secs(5)));
        exporter.add(ExportSpan::new(&record("second")));
        let second = exporter.export(&Deadline::after(Duration::from_secs(5)));
        assert_eq!(
            (first.exported, first.failed),
            (0, 1),
            "the write failed, yet: {first:?}"
        );
        assert_eq!(
            second.exported, 1,
            "the writer accepts the second line: {second:?}"
        );
    }
}

#[cfg(feature = "otlp")]
mod export_garbage_outcome {
    //! An exporter whose outcome's counts overflow when summed (`ExportOutcome::spans`) panics the
    //! processor's thread outside any `catch_unwind` of the exporter's calls: the worker is
    //! abandoned and no span is exported again, where "every span counted exactly once, whatever
    //! the exporter reported" was promised.

    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use agentcore_telemetry::export::{
        BatchConfig, Deadline, ExportOutcome, ExportSpan, SpanExporter,
    };
    use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};

    #[derive(Clone, Default)]
    struct Lying {
        calls: Arc<Mutex<u32>>,
        exported: Arc<Mutex<Vec<String>>>,
        batch: Vec<String>,
    }

    impl SpanExporter for Lying {
        fn add(&mut self, span: ExportSpan<'_>) {
            self.batch.push(span.record.name.to_string());
        }
        fn export(&mut self, _: &Deadline) -> ExportOutcome {
            let mut calls = self.calls.lock().unwrap();
            *calls += 1;
            let batch = std::mem::take(&mut self.batch);
            if *calls == 1 {
                // Garbage: counts that do not add up (and overflow when summed).
                let mut o = ExportOutcome::exported(u64::MAX);
                o.rejected = 1;
                return o;
            }
            let n = batch.len() as u64;
            self.exported.lock().unwrap().extend(batch);
            ExportOutcome::exported(n)
        }
    }

    #[test]
    fn a_garbage_outcome_fails_its_batch_and_export_goes_on() {
        let tracer = DistributedTracer::new(TracerConfig {
            from_env: false,
            ..TracerConfig::default()
        });
        let exporter = Lying::default();
        tracer
            .start_export_with(exporter.clone(), BatchConfig::default())
            .unwrap();
        tracer.start_span("first", SpanKind::Internal, []).end();
        let _ = tracer.force_flush(Duration::from_secs(5));
        tracer.start_span("second", SpanKind::Internal, []).end();
        let second = tracer.force_flush(Duration::from_secs(5));
        assert_eq!(
            *exporter.exported.lock().unwrap(),
            ["second"],
            "flush: {second:?}, stats: {:?}",
            tracer.export_stats()
        );
    }
}

#[cfg(feature = "http-server")]
mod serve_panic_payload {
    //! A source that panics with a payload whose `Drop` panics kills its encoder thread (the
    //! payload is dropped outside the `catch_unwind`): every later scrape is a 500, for good.

    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpStream};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use agentcore_telemetry::serve::{MetricsServer, ServerConfig};

    struct DropPanics;
    impl Drop for DropPanics {
        fn drop(&mut self) {
            panic!("the payload's drop panics (expected by this test)");
        }
    }

    fn status(addr: SocketAddr) -> u16 {
        let mut conn = TcpStream::connect(addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut bytes = Vec::new();
        conn.read_to_end(&mut bytes).unwrap();
        let head = String::from_utf8_lossy(&bytes);
        head.split(' ').nth(1).unwrap().parse().unwrap()
    }

    #[test]
    fn a_source_panicking_with_a_bad_payload_fails_one_scrape_not_all_of_them() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = Arc::clone(&calls);
        let config = ServerConfig::default()
            .with_addr("127.0.0.1:0".parse().unwrap())
            .with_self_metrics(false);
        let server = MetricsServer::start(config, move |out: &mut String| {
            if c.fetch_add(1, Ordering::SeqCst) == 0 {
                std::panic::panic_any(DropPanics);
            }
            out.push_str("up 1\n");
        })
        .unwrap();
        assert_eq!(status(server.local_addr()), 500, "the panicking scrape");
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(status(server.local_addr()), 200, "the source works again");
    }
}

#[cfg(feature = "otlp")]
mod tracer_registry_drop {
    //! The tracer remembers the last registry its metrics went to (for exporters started
    //! later); replacing it dropped the old one under the tracer's mutex, so a function family
    //! of that registry whose captured value registers the tracer again in its `Drop`
    //! deadlocked (review helper-97, argued; reproduced here).
    use std::sync::mpsc;
    use std::time::Duration;

    use agentcore_telemetry::{DistributedTracer, Registry, TracerConfig};

    struct RegistersOnDrop(&'static DistributedTracer);
    impl Drop for RegistersOnDrop {
        fn drop(&mut self) {
            let _ = self.0.register_metrics(&Registry::new());
        }
    }

    #[test]
    fn the_replaced_registry_drops_without_holding_the_tracer() {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // A static, not a leak, for LeakSanitizer (`.ci/asan`).
            static TRACER: std::sync::OnceLock<DistributedTracer> = std::sync::OnceLock::new();
            let tracer = TRACER.get_or_init(|| {
                DistributedTracer::new(TracerConfig {
                    from_env: false,
                    ..TracerConfig::default()
                })
            });
            let first = Registry::new();
            let token = RegistersOnDrop(tracer);
            first
                .gauge_fn("depth", "Depth.", move || {
                    let _ = &token;
                    1.0
                })
                .unwrap();
            tracer.register_metrics(&first).unwrap();
            drop(first); // the tracer holds the last handle
            let replaced = tracer.register_metrics(&Registry::new());
            let _ = tx.send(replaced.is_ok());
        });
        let ok = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("register_metrics returned within 10 s (it deadlocked)");
        assert!(ok);
    }
}

mod scrape_of_a_panicking_function {
    //! A function family whose function panics, scraped into the caller's buffer: the panic
    //! reaches the caller, and the buffer holds nothing of the scrape (it held a half-written
    //! record before: `# HELP`, `# TYPE` and the sample's name; review helper-97).
    use std::panic::{catch_unwind, AssertUnwindSafe};

    use agentcore_telemetry::exposition::OpenMetricsEncoder;
    use agentcore_telemetry::Registry;

    #[test]
    fn the_buffer_is_left_as_it_was_in_both_formats() {
        let registry = Registry::new();
        registry
            .counter("requests_total", "Requests.")
            .unwrap()
            .inc();
        registry
            .gauge_fn("zz_broken", "Panics.", || {
                panic!("a gauge function that panics (expected by this test)")
            })
            .unwrap();
        for openmetrics in [false, true] {
            let mut out = String::from("# kept\n");
            let scrape = catch_unwind(AssertUnwindSafe(|| {
                if openmetrics {
                    registry.encode_openmetrics_into(&mut out)
                } else {
                    registry.encode_text_into(&mut out)
                }
            }));
            assert!(scrape.is_err(), "the panic goes on to the caller");
            assert_eq!(out, "# kept\n", "openmetrics: {openmetrics}");
        }
    }

    /// The same through `OpenMetricsEncoder::encode_into` (the encoder with options, `_created`
    /// on or off): it left the families before the panicking one in the buffer, with no
    /// `# EOF`, which a caller that catches the panic and serves the buffer sends as an
    /// exposition every OpenMetrics parser rejects ("Missing # EOF at end").
    #[test]
    fn the_buffer_is_left_as_it_was_by_the_openmetrics_encoder_with_options() {
        let registry = Registry::new();
        registry
            .counter("requests_total", "Requests.")
            .unwrap()
            .inc();
        registry
            .gauge_fn("zz_broken", "Panics.", || {
                panic!("a gauge function that panics (expected by this test)")
            })
            .unwrap();
        for created in [false, true] {
            let encoder = OpenMetricsEncoder::new().with_created(created);
            let mut out = String::from("# kept\n");
            let scrape = catch_unwind(AssertUnwindSafe(|| {
                encoder.encode_into(&registry, &mut out)
            }));
            assert!(scrape.is_err(), "the panic goes on to the caller");
            assert_eq!(out, "# kept\n", "created: {created}");
        }
    }
}

#[cfg(feature = "otlp")]
mod a_source_that_never_runs_dry {
    //! A span source that never runs dry: its `drain` always reports a span visited (a buggy
    //! or hostile source; a producer pushing without end into one that keeps taking spans
    //! after `close` is the same, if rarely). The shutdown's count of what is left drained
    //! until a drain visited nothing, so the export thread spun for good after the shutdown
    //! returned (review helper-97, argued; reproduced here).
    use std::time::{Duration, Instant};

    use agentcore_telemetry::export::{
        BatchConfig, BatchSpanProcessor, Drained, ExportSpan, InMemorySpanExporter, SpanSource,
    };

    struct Bottomless;
    impl SpanSource for Bottomless {
        fn pending(&self) -> usize {
            1
        }
        fn drain(&mut self, _max: usize, _f: &mut dyn FnMut(ExportSpan<'_>)) -> Drained {
            Drained {
                visited: 1,
                lost: 0,
                refused: 0,
            }
        }
    }

    #[test]
    fn the_export_thread_ends_after_its_shutdown() {
        let p = BatchSpanProcessor::start(
            Bottomless,
            InMemorySpanExporter::new(),
            BatchConfig::default(),
        )
        .unwrap();
        let _ = p.shutdown(Duration::from_millis(300));
        let until = Instant::now() + Duration::from_secs(5);
        while p.stats().running && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            !p.stats().running,
            "the export thread still runs 5 s after its shutdown"
        );
    }
}

#[cfg(feature = "otlp")]
mod export_restart_registry_drop {
    //! A restart of export registers the new processor's self-metrics in the tracer's registry
    //! through a clone of its handle, taken under the export slot's lock. When
    //! `register_metrics` replaces that registry on another thread meanwhile, the clone is its
    //! last handle: dropped under the slot's lock, its function families' closures drop there,
    //! and one whose captured value reads the tracer's export stats (which takes that lock)
    //! deadlocked the restart, and every later call on the tracer's exporter (review
    //! helper-113).
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    use agentcore_telemetry::export::{BatchConfig, InMemorySpanExporter};
    use agentcore_telemetry::{DistributedTracer, Registry, TracerConfig};

    static TRACER: std::sync::OnceLock<DistributedTracer> = std::sync::OnceLock::new();
    static STOP: AtomicBool = AtomicBool::new(false);

    fn tracer() -> &'static DistributedTracer {
        TRACER.get_or_init(|| {
            DistributedTracer::new(TracerConfig {
                from_env: false,
                ..TracerConfig::default()
            })
        })
    }

    /// Reads the tracer's export stats when dropped.
    struct ReadsExportOnDrop;
    impl Drop for ReadsExportOnDrop {
        fn drop(&mut self) {
            let _ = tracer().export_stats();
        }
    }

    #[test]
    fn a_registry_replaced_during_a_restart_drops_outside_the_slot_lock() {
        let tracer = tracer();
        let (tx, rx) = mpsc::channel();
        let restarts = {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let start = Instant::now();
                let mut n = 0u32;
                while start.elapsed() < Duration::from_secs(4) {
                    let _ = tracer
                        .start_export_with(InMemorySpanExporter::new(), BatchConfig::default());
                    let _ = tracer.shutdown(Duration::from_secs(5));
                    n += 1;
                }
                STOP.store(true, Ordering::Relaxed);
                let _ = tx.send(("restarts", n));
            })
        };
        let registrations = std::thread::spawn(move || {
            let mut n = 0u32;
            while !STOP.load(Ordering::Relaxed) {
                let registry = Registry::new();
                let token = ReadsExportOnDrop;
                registry
                    .gauge_fn("depth", "Depth.", move || {
                        let _ = &token;
                        1.0
                    })
                    .unwrap();
                let _ = tracer.register_metrics(&registry);
                n += 1;
            }
            let _ = tx.send(("registrations", n));
        });
        for _ in 0..2 {
            let (who, n) = rx
                .recv_timeout(Duration::from_secs(30))
                .expect("restarts and registrations ended within 30 s (a deadlock)");
            assert!(n > 0, "{who}: {n}");
        }
        restarts.join().unwrap();
        registrations.join().unwrap();
    }
}
