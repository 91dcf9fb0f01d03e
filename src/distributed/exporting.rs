//! Span export from the tracer: the span log's [`SpanSource`] ([`SpanLogSource`], over the
//! ring's export cursor) and the [`DistributedTracer`] methods that start, flush and stop
//! the exporter ([`crate::export`] is the pipeline; this file is the tracer's side of it).
//!
//! The recording thread does nothing for export but mark the record it publishes (one
//! relaxed load and one store; see `sync::ring`, "Export cursor"): no lock, no allocation,
//! no notification. The exporter thread drains the span log through the cursor, each
//! finished sampled span exactly once, and learns how many were overwritten (or found no
//! slot) before it came.
//!
//! The boundary at shutdown: a span belongs to the exporter if it finished before the
//! exporter stopped taking spans. The processor's shutdown first closes the source, which
//! detaches the cursor: finishers stop marking, and a finisher that read "attached" just
//! before sees the detach when it re-checks after publishing and withdraws its mark, unless
//! the cursor found the span first (`sync::ring`, "Detach"; a process-wide barrier, no
//! sleep, orders the two). Then the last flush exports everything that was marked, and
//! whatever the deadline leaves is counted as dropped. So every span is exported, counted
//! as dropped, or finished after the shutdown began and left in the span log unmarked,
//! as the OpenTelemetry SDKs' processors ignore spans that end once shutdown has begun.

use super::DistributedTracer;
use crate::export::{
    BatchConfig, BatchSpanProcessor, Drained, ExportConfig, ExportError, ExportSpan, ExportStats,
    SpanExporter, SpanSource, StartError, TracesExporter,
};
use crate::sync::ring::ExportCursor;
use crate::tracer::SpanRecord;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The span log as a [`SpanSource`]: finished sampled spans published while it is
/// attached, oldest first per shard, each visited once; overwritten ones are reported as
/// `lost`, spans that found no slot as `refused`.
pub(crate) struct SpanLogSource {
    cursor: ExportCursor<SpanRecord>,
    /// The `tracestate` header of the span being handed over, rendered on the exporter
    /// thread (reused: the records share their trace's parsed `TraceState`).
    trace_state: String,
}

impl SpanSource for SpanLogSource {
    fn pending(&self) -> usize {
        self.cursor.pending()
    }

    fn queued(&self) -> usize {
        self.cursor.queued()
    }

    fn drain(&mut self, max: usize, f: &mut dyn FnMut(ExportSpan<'_>)) -> Drained {
        let buf = &mut self.trace_state;
        let d = self.cursor.drain(max, &mut |record: &SpanRecord| {
            buf.clear();
            record.trace_state().write_to(buf);
            f(ExportSpan {
                record,
                trace_flags: record.trace_flags(),
                parent_is_remote: Some(record.parent_is_remote),
                trace_state: buf,
            })
        });
        Drained {
            visited: d.visited,
            lost: d.evicted,
            refused: d.unclaimed,
        }
    }

    fn set_wake(&mut self, wake: Box<dyn Fn() + Send + Sync>) {
        self.cursor.set_wake(wake);
    }

    fn close(&mut self) {
        if !self.cursor.detach() {
            eprintln!(
                "WARN agentcore_telemetry::export: no process-wide barrier (membarrier and \
                 its fallback refused): a span finishing during this shutdown may be left in the \
                 span log, neither exported nor counted as dropped"
            );
        }
    }
}

/// The tracer's exporter, if one was started, and the registry its metrics go to.
///
/// The lock guards the slot only, never a wait: `force_flush`, `shutdown` and `stats` take a
/// clone of the processor's `Arc` and let the lock go before they call it (the processor
/// takes concurrent calls). Held across a flush or a shutdown, it made `get_metrics` and
/// `export_stats` wait for the whole export, and an exporter that read the tracer's metrics
/// stalled `shutdown` until its deadline (it waited for the lock that `shutdown` held while
/// waiting for it).
#[derive(Default)]
pub(crate) struct ExportSlot {
    processor: Mutex<Option<Arc<BatchSpanProcessor>>>,
    registry: Mutex<Option<crate::Registry>>,
}

impl ExportSlot {
    fn processor(&self) -> MutexGuard<'_, Option<Arc<BatchSpanProcessor>>> {
        self.processor.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The processor, if one was started; the lock is released on return.
    fn current(&self) -> Option<Arc<BatchSpanProcessor>> {
        self.processor().clone()
    }

    /// The exporter's counts, if one was started.
    pub(crate) fn stats(&self) -> Option<ExportStats> {
        self.current().map(|p| p.stats())
    }

    /// Registers the running exporter's self-metrics in `registry`, and remembers it for
    /// exporters started later.
    pub(crate) fn register(&self, registry: &crate::Registry) -> Result<(), crate::Error> {
        let previous = self
            .registry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(registry.clone());
        // Dropped after the lock: if it is the registry's last handle, its families' functions
        // drop with it, and what they captured may register this tracer again (review
        // helper-97: a deadlock on this mutex).
        drop(previous);
        match self.current() {
            Some(p) => p.register_metrics(registry),
            None => Ok(()),
        }
    }
}

impl std::fmt::Debug for ExportSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportSlot")
            .field("stats", &self.stats())
            .finish()
    }
}

/// Whether the environment asks for span export: an OTLP endpoint is set, or
/// `OTEL_TRACES_EXPORTER` names an exporter (`otlp`, to the endpoint the variables give or the
/// specification's default `http://localhost:4318`; or the console one, `console` or
/// `otlp/stdout`; any case, alone or in a list) (the variables as `lookup` reads them). With
/// none of them set, none: `otlp` is the specification's default exporter, but a tracer in a
/// library or a test does not reach for localhost unasked.
pub(crate) fn env_asks_for_export(lookup: &dyn Fn(&str) -> Option<String>) -> bool {
    let set = |name: &str| lookup(name).is_some_and(|v| !v.trim().is_empty());
    let named = |item: &str| {
        let item = item.trim();
        ["otlp", "console", "otlp/stdout"]
            .iter()
            .any(|e| item.eq_ignore_ascii_case(e))
    };
    set("OTEL_EXPORTER_OTLP_ENDPOINT")
        || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        || lookup("OTEL_TRACES_EXPORTER").is_some_and(|v| v.split(',').any(named))
}

impl DistributedTracer {
    /// Starts export from the `OTEL_*` environment if it asks for it (see
    /// [`TracerConfig::from_env`](super::TracerConfig::from_env)); a refused
    /// setting or an ignored value is reported on standard error, once, and the tracer runs
    /// without export (or with the default for the ignored value). `OTEL_TRACES_EXPORTER` set
    /// to an exporter this crate does not have (`jaeger`, `zipkin`) or does not know, which
    /// asks for no export, is read all the same, so that its refusal or warning is reported;
    /// read only with an endpoint set, it went without effect and without a word (found by
    /// review helper-124).
    pub(crate) fn start_export_from_env(&self) {
        // Lossy only to see what is set: `from_env` reports a value that is not UTF-8.
        let lookup = |name: &str| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned());
        let asks = env_asks_for_export(&lookup);
        if !asks && lookup("OTEL_TRACES_EXPORTER").is_none_or(|v| v.trim().is_empty()) {
            return;
        }
        let service = &self.config().service_name;
        match ExportConfig::from_env() {
            Err(e) => eprintln!(
                "WARN agentcore_telemetry::tracer: service {service:?}: span export not started: {e}"
            ),
            Ok(from_env) => {
                // A non-boolean OTEL_SDK_DISABLED was reported with the sampler's warnings.
                for w in from_env
                    .warnings
                    .iter()
                    .filter(|w| w.variable != "OTEL_SDK_DISABLED")
                {
                    eprintln!("WARN agentcore_telemetry::tracer: service {service:?}: {w}");
                }
                if !asks {
                    return;
                }
                if let Err(e) = self.start_export(&from_env.config) {
                    eprintln!("WARN agentcore_telemetry::tracer: service {service:?}: {e}");
                }
            }
        }
    }

    /// Starts exporting finished sampled spans as `config` says (OTLP/HTTP, or OTLP JSON
    /// lines on standard output), on the exporter's own thread. `Ok(false)` when the
    /// configuration disables export (`disabled`, or [`TracesExporter::None`]). The
    /// resource's `service.name` defaults to the tracer's service name. Spans finished from
    /// now on are exported; the recording threads never wait for the exporter (see
    /// [`crate::export`]). Fails if an exporter already runs, if a setting is refused, or
    /// if no thread can be started.
    ///
    /// ```
    /// use agentcore_telemetry::export::{ExportConfig, TracesExporter};
    /// use agentcore_telemetry::{DistributedTracer, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig { from_env: false, ..Default::default() });
    /// let none = ExportConfig { exporter: TracesExporter::None, ..Default::default() };
    /// assert!(!tracer.start_export(&none).unwrap());
    /// assert!(!tracer.get_metrics().export_enabled);
    /// ```
    pub fn start_export(&self, config: &ExportConfig) -> Result<bool, StartError> {
        if config.disabled || config.exporter == TracesExporter::None {
            return Ok(false);
        }
        let source = self.attach_source()?;
        // Started without the slot's lock (see `attach_source`).
        let processor = config.start(source, Some(&self.config().service_name))?;
        let mut slot = self.export_slot().processor();
        let replaced = self.install(&mut slot, processor.map(Arc::new));
        // Both dropped after the lock (see `install`).
        drop(slot);
        drop(replaced);
        Ok(true)
    }

    /// Starts exporting finished sampled spans into `exporter` (any [`SpanExporter`]: the
    /// OTLP one with settings of your own, the console one, the in-memory one in tests),
    /// batched by `batch` on the exporter's own thread. Fails if an exporter already runs
    /// or if no thread can be started.
    ///
    /// ```
    /// use agentcore_telemetry::export::{BatchConfig, InMemorySpanExporter};
    /// use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};
    /// use std::time::Duration;
    ///
    /// let tracer = DistributedTracer::new(TracerConfig { from_env: false, ..Default::default() });
    /// let exporter = InMemorySpanExporter::new();
    /// tracer.start_export_with(exporter.clone(), BatchConfig::default()).unwrap();
    /// tracer.start_span("create_agent", SpanKind::Internal, []).end();
    /// tracer.force_flush(Duration::from_secs(5)).unwrap();
    /// assert_eq!(exporter.spans()[0].name, "create_agent");
    /// let m = tracer.get_metrics();
    /// assert!(m.export_enabled);
    /// assert_eq!(m.spans_exported, 1);
    /// tracer.shutdown(Duration::from_secs(5)).unwrap();
    /// assert!(!tracer.get_metrics().export_enabled);
    /// ```
    pub fn start_export_with<E: SpanExporter + 'static>(
        &self,
        exporter: E,
        batch: BatchConfig,
    ) -> Result<(), StartError> {
        let source = self.attach_source()?;
        // Started without the slot's lock (see `attach_source`): a start that fails drops
        // `exporter`, the caller's code.
        let processor =
            BatchSpanProcessor::start(source, exporter, batch).map_err(StartError::Spawn)?;
        let mut slot = self.export_slot().processor();
        let replaced = self.install(&mut slot, Some(Arc::new(processor)));
        // Both dropped after the lock (see `install`).
        drop(slot);
        drop(replaced);
        Ok(())
    }

    /// The span log's source for a new exporter; `AlreadyRunning` while one runs.
    ///
    /// The span log's export cursor, not the slot's lock, is what lets one exporter start at
    /// a time: the cursor is attached once, until the thread holding it exits. So a start
    /// checks the slot, lets the lock go, and starts its processor without it. Started under
    /// the lock, a start whose thread could not be spawned dropped the caller's exporter there,
    /// and an exporter whose `Drop` called the tracer (`export_stats`, `force_flush`) waited
    /// for that lock on the thread that held it, for good
    /// (`tests/export_spawn_refused.rs`). A start racing a `shutdown` is ordered by its
    /// `install`: the shutdown stops what was installed before, not a processor still being
    /// started.
    fn attach_source(&self) -> Result<SpanLogSource, StartError> {
        if self.export_slot().current().is_some_and(|p| p.is_running()) {
            return Err(StartError::AlreadyRunning);
        }
        // The previous exporter's thread drops its cursor when it exits; until then the
        // span log refuses a second one.
        match self.core().attach_export_cursor() {
            Some(cursor) => Ok(SpanLogSource {
                cursor,
                trace_state: String::new(),
            }),
            None => Err(StartError::AlreadyRunning),
        }
    }

    /// Puts `processor` in the slot; returns the one it replaces, for the caller to drop once
    /// it has let the slot's lock go: its `Drop` waits, up to its `drop_timeout`, for its
    /// thread to drop the exporter (the caller's code, which may block), and under the lock
    /// every reader of the slot (`export_stats`, `get_metrics`, `force_flush`) waited as long
    /// (found by review). With it comes the handle of the registry the new processor's
    /// metrics went to: if `register_metrics` replaced that registry meanwhile it is the last
    /// one, and its function families' closures drop with it, the caller's code, which may
    /// call this tracer (`export_stats` takes the slot's lock: under it, a deadlock; review
    /// helper-113).
    #[must_use = "drop the replaced processor and the registry after the slot's lock"]
    fn install(
        &self,
        slot: &mut Option<Arc<BatchSpanProcessor>>,
        processor: Option<Arc<BatchSpanProcessor>>,
    ) -> (Option<Arc<BatchSpanProcessor>>, Option<crate::Registry>) {
        // The replaced processor is stopped (`attach_source`): its series leave now, before
        // the new one's go in, not at its drop after. A family with room for one processor's
        // series (a cap of the caller's) refused the new one's for its whole life.
        if let Some(old) = slot.as_ref() {
            old.unregister_metrics();
        }
        let mut registry = None;
        if let Some(p) = &processor {
            registry = self
                .export_slot()
                .registry
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            if let Some(registry) = &registry {
                // The families exist already if an earlier exporter registered them.
                let _ = p.register_metrics(registry);
            }
        }
        (std::mem::replace(slot, processor), registry)
    }

    /// Exports the finished spans waiting now and returns when they are delivered, or at
    /// `timeout` at the latest, whatever the collector does. `Ok` without an exporter.
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, TracerConfig};
    /// use std::time::Duration;
    /// let tracer = DistributedTracer::new(TracerConfig { from_env: false, ..Default::default() });
    /// assert!(tracer.force_flush(Duration::from_millis(10)).is_ok());
    /// ```
    pub fn force_flush(&self, timeout: Duration) -> Result<(), ExportError> {
        match self.export_slot().current() {
            Some(p) if p.is_running() => p.force_flush(timeout),
            _ => Ok(()),
        }
    }

    /// Exports what waits, stops the exporter and returns by `timeout` whatever the
    /// collector does (hung, slow, refusing); spans left at the deadline are counted as
    /// dropped. The tracer keeps recording into its span log; export can be started again.
    /// `Ok` without an exporter. Dropping the tracer shuts the exporter down too, within
    /// [`BatchConfig::drop_timeout`].
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, TracerConfig};
    /// use std::time::Duration;
    /// let tracer = DistributedTracer::new(TracerConfig { from_env: false, ..Default::default() });
    /// assert!(tracer.shutdown(Duration::from_millis(10)).is_ok());
    /// ```
    pub fn shutdown(&self, timeout: Duration) -> Result<(), ExportError> {
        match self.export_slot().current() {
            Some(p) => p.shutdown(timeout),
            None => Ok(()),
        }
    }

    /// The exporter's counts (exported, dropped, failed, rejected, queue), if export was
    /// started.
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig { from_env: false, ..Default::default() });
    /// assert!(tracer.export_stats().is_none());
    /// ```
    pub fn export_stats(&self) -> Option<ExportStats> {
        self.export_slot().stats()
    }
}

#[cfg(test)]
mod tests {
    use super::env_asks_for_export;

    /// `otlp/stdout` is the console exporter (`ExportConfig` reads it so, and the
    /// specification lists it: "OTLP File writing to standard output"), so it asks for export
    /// as `console` does; a list naming it does too.
    #[test]
    fn a_standard_output_exporter_asks_for_export() {
        let asks = |v: &str| {
            env_asks_for_export(&|name: &str| (name == "OTEL_TRACES_EXPORTER").then(|| v.into()))
        };
        for v in [
            "console",
            " Console ",
            "otlp/stdout",
            "OTLP/STDOUT",
            "console,console",
            "otlp/stdout, console",
        ] {
            assert!(asks(v), "{v:?}");
        }
        for v in ["", "none", "zipkin", "consoles", "otlps"] {
            assert!(!asks(v), "{v:?}");
        }
        // Nothing set: no export (a library's tracer does not reach for localhost:4318 unasked).
        assert!(!env_asks_for_export(&|_: &str| None));
        assert!(env_asks_for_export(&|name: &str| {
            (name == "OTEL_EXPORTER_OTLP_ENDPOINT").then(|| "http://c:4318".into())
        }));
    }

    /// `OTEL_TRACES_EXPORTER=otlp` set, with no endpoint, asks for OTLP export to the
    /// specification's default endpoint (`http://localhost:4318`, "OTLP Exporter
    /// Configuration"), as every OpenTelemetry SDK does; it used to start nothing, and say
    /// nothing: an explicit setting without effect.
    #[test]
    fn an_explicit_otlp_exporter_asks_for_export() {
        let asks = |v: &str| {
            env_asks_for_export(&|name: &str| (name == "OTEL_TRACES_EXPORTER").then(|| v.into()))
        };
        for v in ["otlp", " OTLP ", "otlp,console", "none,otlp"] {
            assert!(asks(v), "{v:?}");
        }
    }
}
