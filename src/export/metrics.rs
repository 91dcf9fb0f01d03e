//! The exporter's self-observability: [`ExportStats`] (a snapshot for `get_metrics()`-style
//! reports) and the OpenTelemetry SDK self-metrics, Prometheus-spelled, for a [`Registry`].
//!
//! | metric (semantic conventions `otel.sdk.*`, Development) | Prometheus family | type |
//! |---|---|---|
//! | `otel.sdk.processor.span.queue.size` | `otel_sdk_processor_span_queue_size` | gauge |
//! | `otel.sdk.processor.span.queue.capacity` | `otel_sdk_processor_span_queue_capacity` | gauge |
//! | `otel.sdk.processor.span.processed` | `otel_sdk_processor_span_processed_total{error_type}` | counter |
//! | `otel.sdk.exporter.span.inflight` | `otel_sdk_exporter_span_inflight` | gauge |
//! | `otel.sdk.exporter.span.exported` | `otel_sdk_exporter_span_exported_total{error_type}` | counter |
//! | `otel.sdk.exporter.operation.duration` | `otel_sdk_exporter_operation_duration_seconds{error_type}` | histogram |
//! | (the crate's own) | `agentcore_telemetry_export_connect_thread_cap_total` | counter |
//!
//! Every family also has `otel_component_type` and `otel_component_name` labels
//! (`batching_span_processor`, `batching_span_processor/0`; `otlp_http_span_exporter`,
//! `otlp_http_span_exporter/0`, ...). `error_type` is empty on success (Prometheus treats an
//! empty label as absent, which is the conventions' "MUST NOT be set"). A processed span with
//! an `error_type` was dropped: `queue_full` (over `OTEL_BSP_MAX_QUEUE_SIZE`), `overwritten`
//! (the span log wrapped before the exporter read it) or `shutdown` (still queued when the
//! shutdown deadline passed). Exported spans with an `error_type` failed (`timeout`,
//! `connection`, an HTTP status such as `400`, ...) or were rejected in a partial success
//! (`rejected`; the conventions count those as failed).
//! `agentcore_telemetry_export_connect_thread_cap_total` counts the exporter's connection
//! attempts that found the process-wide cap on connection threads reached and started none
//! (a resolver that does not answer holds them): attempts, not spans, whose spans are counted
//! in `exported_total{error_type="connection"}` too if no later attempt delivered them.
//!
//! The counters are the crate's [`Counter`]s, incremented by the exporter thread once per
//! export, never by a recording thread.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::registry::FamilyOptions;
use crate::{Buckets, Counter, Error, Family, Gauge, Histogram, Registry};

use super::exporter::ExportOutcome;

/// Why a span left the processor without reaching the exporter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DropReason {
    QueueFull,
    Overwritten,
    Shutdown,
}

impl DropReason {
    fn error_type(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::Overwritten => "overwritten",
            DropReason::Shutdown => "shutdown",
        }
    }
}

/// A snapshot of what a [`BatchSpanProcessor`](super::BatchSpanProcessor) did.
///
/// Every span the source received is counted once, eventually, in exactly one of
/// `exported`, `rejected`, `failed` and the three `dropped_*` counts (while an export is in
/// flight its spans are in `inflight`), so [`accounted`](Self::accounted) catches up with
/// the spans submitted.
///
/// ```
/// use agentcore_telemetry::export::ExportStats;
/// let s = ExportStats { exported: 5, dropped_queue_full: 1, ..Default::default() };
/// assert_eq!((s.dropped(), s.accounted()), (1, 6));
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExportStats {
    /// Whether the exporter thread is running (false before start and after shutdown).
    pub running: bool,
    /// Spans the receiver accepted.
    pub exported: u64,
    /// Spans the receiver refused in a partial success.
    pub rejected: u64,
    /// Spans not delivered after retries (timeouts, errors, refused requests).
    pub failed: u64,
    /// Spans dropped because the queue held more than its capacity.
    pub dropped_queue_full: u64,
    /// Spans overwritten in the source before the exporter read them.
    pub dropped_overwritten: u64,
    /// Spans still queued when the shutdown deadline passed.
    pub dropped_shutdown: u64,
    /// Connection attempts the exporter did not start because the process-wide cap on
    /// connection threads was reached ([`ExportOutcome::connect_thread_cap`]; attempts, not
    /// spans: their spans are in `failed` if no later attempt delivered them).
    pub connect_thread_cap: u64,
    /// Spans waiting, as of the exporter thread's last look.
    pub queue_size: u64,
    /// The queue's capacity (`max_queue_size`).
    pub queue_capacity: u64,
    /// Spans in the export under way.
    pub inflight: u64,
    /// Export calls made.
    pub exports: u64,
    /// Time spent in export calls.
    pub export_time: Duration,
    /// The last export error, as text.
    pub last_error: Option<String>,
    /// The last warning a receiver sent with a success.
    pub last_warning: Option<String>,
}

impl ExportStats {
    /// All dropped spans.
    ///
    /// ```
    /// use agentcore_telemetry::export::ExportStats;
    /// assert_eq!(ExportStats::default().dropped(), 0);
    /// ```
    pub fn dropped(&self) -> u64 {
        self.dropped_queue_full + self.dropped_overwritten + self.dropped_shutdown
    }

    /// Spans with a final fate: exported + rejected + failed + dropped.
    ///
    /// ```
    /// use agentcore_telemetry::export::ExportStats;
    /// assert_eq!(ExportStats { failed: 2, rejected: 1, ..Default::default() }.accounted(), 3);
    /// ```
    pub fn accounted(&self) -> u64 {
        self.exported + self.rejected + self.failed + self.dropped()
    }
}

const PROCESSOR_TYPE: &str = "batching_span_processor";

/// Seconds: 1 ms to 60 s.
const DURATION_BOUNDS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
];

static NEXT_PROCESSOR: AtomicUsize = AtomicUsize::new(0);
static NEXT_EXPORTER: Mutex<BTreeMap<&'static str, usize>> = Mutex::new(BTreeMap::new());

/// The registry families one processor's series live in.
#[derive(Clone)]
struct Families {
    queue_size: Family<Gauge>,
    queue_capacity: Family<Gauge>,
    processed: Family<Counter>,
    inflight: Family<Gauge>,
    exported: Family<Counter>,
    duration: Family<Histogram>,
    connect_thread_cap: Family<Counter>,
}

struct State {
    stats: ExportStats,
    // `None` when the slot arena had no room for the counter (a runaway cardinality
    // elsewhere): the numbers in `stats` stay right, only the registry series is missing.
    processed: BTreeMap<&'static str, Option<Counter>>,
    exported: BTreeMap<String, Option<Counter>>,
    durations: BTreeMap<String, Histogram>,
    families: Vec<Families>,
}

/// One processor's counters and gauges (shared between its thread and its handle).
pub(crate) struct ExportMetrics {
    processor_name: String,
    exporter_type: &'static str,
    exporter_name: String,
    queue_size: Gauge,
    queue_capacity: Gauge,
    inflight: Gauge,
    /// `None` when the slot arena had no room (as for `State::exported`).
    connect_thread_cap: Option<Counter>,
    state: Mutex<State>,
}

impl ExportMetrics {
    pub(crate) fn new(exporter_type: &'static str, capacity: usize) -> Self {
        let n = NEXT_PROCESSOR.fetch_add(1, Ordering::Relaxed);
        let e = {
            let mut next = NEXT_EXPORTER.lock().unwrap_or_else(|e| e.into_inner());
            let slot = next.entry(exporter_type).or_insert(0);
            *slot += 1;
            *slot - 1
        };
        let queue_capacity = Gauge::new();
        queue_capacity.set(capacity as f64);
        ExportMetrics {
            processor_name: format!("{PROCESSOR_TYPE}/{n}"),
            exporter_type,
            exporter_name: format!("{exporter_type}/{e}"),
            queue_size: Gauge::new(),
            queue_capacity,
            inflight: Gauge::new(),
            connect_thread_cap: Counter::new().ok(),
            state: Mutex::new(State {
                stats: ExportStats {
                    queue_capacity: capacity as u64,
                    ..Default::default()
                },
                processed: BTreeMap::new(),
                exported: BTreeMap::new(),
                durations: BTreeMap::new(),
                families: Vec::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn processor_name(&self) -> &str {
        &self.processor_name
    }

    pub(crate) fn exporter_name(&self) -> &str {
        &self.exporter_name
    }

    pub(crate) fn snapshot(&self) -> ExportStats {
        self.lock().stats.clone()
    }

    pub(crate) fn set_running(&self, running: bool) {
        self.lock().stats.running = running;
    }

    pub(crate) fn set_queue_size(&self, n: usize) {
        self.queue_size.set(n as f64);
        self.lock().stats.queue_size = n as u64;
    }

    pub(crate) fn set_inflight(&self, n: usize) {
        self.inflight.set(n as f64);
        self.lock().stats.inflight = n as u64;
    }

    /// Counts `n` spans handed to the exporter (processed without error).
    pub(crate) fn handed_over(&self, n: usize) {
        if n > 0 {
            let mut s = self.lock();
            self.count_processed(&mut s, "", n as u64);
        }
    }

    pub(crate) fn dropped(&self, reason: DropReason, n: u64) {
        if n == 0 {
            return;
        }
        let mut s = self.lock();
        match reason {
            // Saturating: `n` may come from a caller's `SpanSource` (review helper-97).
            DropReason::QueueFull => {
                s.stats.dropped_queue_full = s.stats.dropped_queue_full.saturating_add(n)
            }
            DropReason::Overwritten => {
                s.stats.dropped_overwritten = s.stats.dropped_overwritten.saturating_add(n)
            }
            DropReason::Shutdown => {
                s.stats.dropped_shutdown = s.stats.dropped_shutdown.saturating_add(n)
            }
        }
        self.count_processed(&mut s, reason.error_type(), n);
    }

    /// Records one export call's outcome and duration.
    pub(crate) fn exported(&self, outcome: &ExportOutcome, took: Duration) {
        let mut s = self.lock();
        s.stats.exports += 1;
        s.stats.export_time += took;
        s.stats.exported += outcome.exported;
        s.stats.rejected += outcome.rejected;
        s.stats.failed += outcome.failed;
        s.stats.connect_thread_cap = s
            .stats
            .connect_thread_cap
            .saturating_add(outcome.connect_thread_cap);
        if let (Some(c), n @ 1..) = (&self.connect_thread_cap, outcome.connect_thread_cap) {
            c.inc_by(n);
        }
        if let Some(e) = &outcome.error {
            s.stats.last_error = Some(e.to_string());
        }
        if let Some(w) = &outcome.warning {
            s.stats.last_warning = Some(w.clone());
        }
        if outcome.exported > 0 {
            self.count_exported(&mut s, "", outcome.exported);
        }
        if outcome.rejected > 0 {
            self.count_exported(&mut s, "rejected", outcome.rejected);
        }
        let error_type = outcome
            .error
            .as_ref()
            .filter(|_| outcome.failed > 0)
            .map(|e| e.error_type().into_owned());
        if outcome.failed > 0 {
            let et = error_type.clone().unwrap_or_else(|| "unknown".into());
            self.count_exported(&mut s, &et, outcome.failed);
        }
        let duration_key = match (&error_type, outcome.rejected) {
            (Some(et), _) => et.clone(),
            (None, 0) => String::new(),
            (None, _) => "rejected".into(),
        };
        if let Some(h) = self.duration_histogram(&mut s, &duration_key) {
            h.observe(took.as_secs_f64());
        }
    }

    /// Adds `n` to `processed{error_type}`, creating (and registering) the series first.
    fn count_processed(&self, s: &mut State, error_type: &'static str, n: u64) {
        if !s.processed.contains_key(error_type) {
            let c = Counter::new().ok();
            if let Some(c) = &c {
                for f in &s.families {
                    let _ = f.processed.insert_metric(
                        &[PROCESSOR_TYPE, &self.processor_name, error_type],
                        c.clone(),
                    );
                }
            }
            s.processed.insert(error_type, c);
        }
        if let Some(Some(c)) = s.processed.get(error_type) {
            c.inc_by(n);
        }
    }

    /// Adds `n` to `exported{error_type}`, creating (and registering) the series first.
    fn count_exported(&self, s: &mut State, error_type: &str, n: u64) {
        if !s.exported.contains_key(error_type) {
            let c = Counter::new().ok();
            if let Some(c) = &c {
                for f in &s.families {
                    let _ = f.exported.insert_metric(
                        &[self.exporter_type, &self.exporter_name, error_type],
                        c.clone(),
                    );
                }
            }
            s.exported.insert(error_type.to_owned(), c);
        }
        if let Some(Some(c)) = s.exported.get(error_type) {
            c.inc_by(n);
        }
    }

    fn duration_histogram(&self, s: &mut State, error_type: &str) -> Option<Histogram> {
        if let Some(h) = s.durations.get(error_type) {
            return Some(h.clone());
        }
        let h = Histogram::new(duration_buckets()?).ok()?;
        for f in &s.families {
            let _ = f.duration.insert_metric(
                &[self.exporter_type, &self.exporter_name, error_type],
                h.clone(),
            );
        }
        s.durations.insert(error_type.to_owned(), h.clone());
        Some(h)
    }

    /// Adds this processor's series to `registry` (families shared with other processors,
    /// told apart by `otel_component_name`).
    pub(crate) fn register(&self, registry: &Registry) -> Result<(), Error> {
        const COMPONENT: [&str; 2] = ["otel_component_type", "otel_component_name"];
        const WITH_ERROR: [&str; 3] = ["otel_component_type", "otel_component_name", "error_type"];
        let opts = FamilyOptions::default;
        let families = Families {
            queue_size: registry.get_or_register(
                "otel_sdk_processor_span_queue_size",
                "The number of spans in the queue of a given instance of an SDK span processor.",
                &COMPONENT,
                (),
                opts(),
            )?,
            queue_capacity: registry.get_or_register(
                "otel_sdk_processor_span_queue_capacity",
                "The maximum number of spans the queue of a given instance of an SDK span processor can hold.",
                &COMPONENT,
                (),
                opts(),
            )?,
            processed: registry.get_or_register(
                "otel_sdk_processor_span_processed_total",
                "The number of spans for which the processing has finished, either successful or failed (error_type: queue_full, overwritten, shutdown).",
                &WITH_ERROR,
                (),
                opts(),
            )?,
            inflight: registry.get_or_register(
                "otel_sdk_exporter_span_inflight",
                "The number of spans which were passed to the exporter, but that have not been exported yet.",
                &COMPONENT,
                (),
                opts(),
            )?,
            exported: registry.get_or_register(
                "otel_sdk_exporter_span_exported_total",
                "The number of spans for which the export has finished, either successful or failed (rejected spans count as failed, error_type=rejected).",
                &WITH_ERROR,
                (),
                opts(),
            )?,
            duration: registry.get_or_register(
                "otel_sdk_exporter_operation_duration_seconds",
                "The duration of exporting a batch of spans, retries included.",
                &WITH_ERROR,
                duration_buckets().ok_or_else(|| Error::InvalidBuckets {
                    reason: "export duration buckets".into(),
                })?,
                opts(),
            )?,
            connect_thread_cap: registry.get_or_register(
                "agentcore_telemetry_export_connect_thread_cap_total",
                "Connection attempts of a span exporter not started because the process-wide cap on connection threads was reached (a resolver that does not answer holds them); their spans also count as failed (error_type=connection) if no retry delivered them.",
                &COMPONENT,
                (),
                opts(),
            )?,
        };
        let mut s = self.lock();
        // Kept before the first insert: a registration that fails part-way (a family of the
        // caller's that is full) has put series in the registry, which the processor's drop
        // must take out too (they stayed, frozen, one set per restart of export). Registered in
        // this registry before: its families are the ones kept, keep nothing more (a repeated
        // registration is a no-op, as `DistributedTracer::register_metrics` says; it used to
        // keep another set of families per call).
        if !s
            .families
            .iter()
            .any(|f| f.queue_size.is_same_family(&families.queue_size))
        {
            s.families.push(families.clone());
        }
        let processor = [PROCESSOR_TYPE, self.processor_name.as_str()];
        let exporter = [self.exporter_type, self.exporter_name.as_str()];
        families
            .queue_size
            .insert_metric(&processor, self.queue_size.clone())?;
        families
            .queue_capacity
            .insert_metric(&processor, self.queue_capacity.clone())?;
        families
            .inflight
            .insert_metric(&exporter, self.inflight.clone())?;
        if let Some(c) = &self.connect_thread_cap {
            families
                .connect_thread_cap
                .insert_metric(&exporter, c.clone())?;
        }
        // The success series exist from the start, so a dashboard sees 0 rather than nothing.
        self.count_processed(&mut s, "", 0);
        self.count_exported(&mut s, "", 0);
        for (et, c) in &s.processed {
            if let Some(c) = c {
                families
                    .processed
                    .insert_metric(&[PROCESSOR_TYPE, &self.processor_name, et], c.clone())?;
            }
        }
        for (et, c) in &s.exported {
            if let Some(c) = c {
                families.exported.insert_metric(
                    &[self.exporter_type, &self.exporter_name, et.as_str()],
                    c.clone(),
                )?;
            }
        }
        for (et, h) in &s.durations {
            families.duration.insert_metric(
                &[self.exporter_type, &self.exporter_name, et.as_str()],
                h.clone(),
            )?;
        }
        Ok(())
    }
}

impl ExportMetrics {
    /// Takes this processor's series out of every registry they were registered in (its
    /// handle is gone: a replaced exporter's series, kept, grew the registry by one set per
    /// restart of export, frozen). Nothing is registered for it afterwards.
    pub(crate) fn unregister(&self) {
        let (families, processed, exported, durations) = {
            let mut s = self.lock();
            (
                std::mem::take(&mut s.families),
                s.processed.keys().copied().collect::<Vec<_>>(),
                s.exported.keys().cloned().collect::<Vec<_>>(),
                s.durations.keys().cloned().collect::<Vec<_>>(),
            )
        };
        // Removed after the lock: a removal may drop a family's last handle, whose drop is
        // nothing of ours to hold a lock across.
        let processor = [PROCESSOR_TYPE, self.processor_name.as_str()];
        let exporter = [self.exporter_type, self.exporter_name.as_str()];
        for f in &families {
            f.queue_size.remove(&processor);
            f.queue_capacity.remove(&processor);
            f.inflight.remove(&exporter);
            f.connect_thread_cap.remove(&exporter);
            for et in &processed {
                f.processed.remove(&[processor[0], processor[1], et]);
            }
            for et in &exported {
                f.exported.remove(&[exporter[0], exporter[1], et.as_str()]);
            }
            for et in &durations {
                f.duration.remove(&[exporter[0], exporter[1], et.as_str()]);
            }
        }
    }
}

fn duration_buckets() -> Option<Buckets> {
    Buckets::new(DURATION_BOUNDS.to_vec()).ok()
}
