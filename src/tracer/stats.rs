//! The tracer's own metrics: span counters ([`TracerStats`] is their snapshot) and the
//! per-operation duration histogram.
//!
//! The counters are the crate's [`Counter`]s, so they cost what any counter costs — a relaxed
//! load and store into the calling thread's word of the [slot arena](crate::sync::slots),
//! no shared cache line, no read-modify-write — and they keep counts of exited threads. The
//! same handles are adopted as series by [`DistributedTracer::register_metrics`](crate::DistributedTracer::register_metrics),
//! so a scrape of that registry merges them lazily like every other metric.

use std::sync::OnceLock;

use crate::registry::FamilyOptions;
use crate::{Buckets, Counter, Error, Family, Histogram, Registry};

/// `agentcore_tracer_span_duration_seconds` buckets: 100 µs to 60 s.
pub(crate) const DURATION_BOUNDS: [f64; 12] = [
    0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0,
];

/// The tracer's counters, for the metrics scrape
/// ([`DistributedTracer::stats`](crate::DistributedTracer::stats)).
///
/// ```
/// use agentcore_telemetry::{DistributedTracer, SpanKind, SpanStatus, TracerConfig};
/// let tracer = DistributedTracer::new(TracerConfig::default());
/// tracer.start_span("a", SpanKind::Internal, []).finish(SpanStatus::Error);
/// let stats = tracer.stats();
/// assert_eq!((stats.spans_started, stats.spans_finished, stats.spans_errored), (1, 1, 1));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TracerStats {
    /// Sampled spans started.
    pub spans_started: u64,
    /// Sampled spans finished.
    pub spans_finished: u64,
    /// Sampled spans finished with `Error` status.
    pub spans_errored: u64,
    /// Spans not sampled (started, nothing recorded).
    pub spans_unsampled: u64,
    /// Sampled spans finished without a record because no span log slot was free when they
    /// started: every slot tried was held by an open span (a slot is a span's from its start
    /// to its finish) or by a reader. A log smaller than the spans open at once drops these.
    pub spans_dropped: u64,
    /// Finished spans overwritten in the span log by newer ones.
    pub spans_overwritten: u64,
    /// Spans that ended (finished or detached) while a span or context of another trace of
    /// this tracer was current above them on their thread: a `Span` held across `.await`
    /// outside a context scope, most likely (see
    /// [`FutureExt::in_current_context`](super::FutureExt::in_current_context)).
    pub spans_ended_out_of_context: u64,
    /// [`ContextGuard`](super::ContextGuard)s dropped while a span or context of another
    /// trace of this tracer was current above them on their thread.
    pub guards_dropped_out_of_context: u64,
    /// Process-wide, the same in every tracer's stats; 0 without the `tracing-bridge` feature.
    /// Records of closed `tracing` spans whose entry may be stranded on another thread (an
    /// `Entered` guard held across `.await` in a future that moved threads outside our scopes)
    /// that a thread with an entry of a `tracing` span on its context stack could not read
    /// any more: more than 64 newer ones were published before it looked. A frame of such a
    /// span may stay current on that thread, as before the fix (see the bridge's "Async
    /// code").
    pub stray_entries_missed: u64,
}

/// The span counters of one tracer.
pub(crate) struct SpanCounters {
    pub(crate) started: Counter,
    pub(crate) finished: Counter,
    pub(crate) errored: Counter,
    pub(crate) unsampled: Counter,
    pub(crate) overwritten: Counter,
    pub(crate) dropped: Counter,
    /// Context misuse detected at run time, by kind (see `TracerCore::misuse`).
    pub(crate) spans_out_of_context: Counter,
    pub(crate) guards_out_of_context: Counter,
    /// `agentcore_tracer_span_duration_seconds{operation, status}`, once registered.
    pub(crate) duration: OnceLock<Family<Histogram>>,
}

impl SpanCounters {
    pub(crate) fn new() -> SpanCounters {
        // Six two-word ranges, from the arena's reserve for the crate's own counters when
        // metrics have exhausted it: constructing a tracer never fails.
        let counter = Counter::new_internal;
        SpanCounters {
            started: counter(),
            finished: counter(),
            errored: counter(),
            unsampled: counter(),
            overwritten: counter(),
            dropped: counter(),
            spans_out_of_context: counter(),
            guards_out_of_context: counter(),
            duration: OnceLock::new(),
        }
    }

    /// The counters summed over threads (a snapshot taken while spans run may miss the
    /// latest increments).
    pub(crate) fn snapshot(&self) -> TracerStats {
        let n = |counter: &Counter| counter.parts().0;
        TracerStats {
            spans_started: n(&self.started),
            spans_finished: n(&self.finished),
            spans_errored: n(&self.errored),
            spans_unsampled: n(&self.unsampled),
            spans_dropped: n(&self.dropped),
            spans_overwritten: n(&self.overwritten),
            spans_ended_out_of_context: n(&self.spans_out_of_context),
            guards_dropped_out_of_context: n(&self.guards_out_of_context),
            #[cfg(feature = "tracing-bridge")]
            stray_entries_missed: n(super::current::stray::missed_counter()),
            #[cfg(not(feature = "tracing-bridge"))]
            stray_entries_missed: 0,
        }
    }

    /// Registers the counters (as they are: same handles) and the duration histogram family
    /// in `registry`. A series that holds another counter (another tracer's, or the caller's)
    /// is refused with [`Error::DuplicateMetric`]: the series has no label to tell two
    /// tracers apart, and accepted, the second tracer's counts were left out of the scrape
    /// while its durations went into the first's histogram (found by review helper-124).
    pub(crate) fn register(&self, registry: &Registry, max_operations: usize) -> Result<(), Error> {
        let single = |name: &str, help: &str, counter: &Counter| -> Result<(), Error> {
            let family = registry.get_or_register::<Counter>(
                name,
                help,
                &[],
                (),
                FamilyOptions::default(),
            )?;
            adopt(&family, &[], counter)
        };
        single(
            "agentcore_tracer_spans_started_total",
            "Sampled spans started.",
            &self.started,
        )?;
        single(
            "agentcore_tracer_spans_finished_total",
            "Sampled spans finished (explicitly or by dropping the span).",
            &self.finished,
        )?;
        single(
            "agentcore_tracer_spans_errored_total",
            "Sampled spans finished with status Error.",
            &self.errored,
        )?;
        single(
            "agentcore_tracer_spans_unsampled_total",
            "Spans the sampler decided not to record.",
            &self.unsampled,
        )?;
        let dropped = registry.get_or_register::<Counter>(
            "agentcore_tracer_spans_dropped_total",
            "Finished spans the span log lost: overwritten (oldest, log full) or busy (slot contended).",
            &["reason"],
            (),
            FamilyOptions::default(),
        )?;
        adopt(&dropped, &["overwritten"], &self.overwritten)?;
        adopt(&dropped, &["busy"], &self.dropped)?;
        let misuse = registry.get_or_register::<Counter>(
            "agentcore_tracer_context_misuse_total",
            "Spans ended (kind=span_ended) or context guards dropped (kind=guard_dropped) while another trace's context was current above them on their thread: a span or guard held across .await outside a context scope.",
            &["kind"],
            (),
            FamilyOptions::default(),
        )?;
        adopt(&misuse, &["span_ended"], &self.spans_out_of_context)?;
        adopt(&misuse, &["guard_dropped"], &self.guards_out_of_context)?;
        #[cfg(feature = "tracing-bridge")]
        single(
            "agentcore_tracer_stray_entries_missed_total",
            "Process-wide: records of closed tracing spans whose entry may be stranded on another thread (an Entered guard held across .await in a task that moved threads) that a thread holding entries missed (more than 64 newer ones before it looked): such a frame may stay current there.",
            super::current::stray::missed_counter(),
        )?;
        let duration = registry.get_or_register::<Histogram>(
            "agentcore_tracer_span_duration_seconds",
            "Duration of sampled spans by operation name and final status.",
            &["operation", "status"],
            Buckets::new(DURATION_BOUNDS.to_vec())?,
            FamilyOptions {
                max_series: max_operations,
                ..FamilyOptions::default()
            },
        )?;
        let _ = self.duration.set(duration);
        Ok(())
    }
}

/// Makes `counter` the series `values` of `family`. Idempotent for the same counter (a tracer
/// registered again); a series holding another counter is refused (see
/// [`SpanCounters::register`]).
fn adopt(family: &Family<Counter>, values: &[&str], counter: &Counter) -> Result<(), Error> {
    if family.insert_metric(values, counter.clone())? {
        return Ok(());
    }
    match family.get(values) {
        Some(there) if there.ptr_eq(counter) => Ok(()),
        _ => Err(Error::DuplicateMetric {
            name: family.name().to_owned(),
        }),
    }
}
