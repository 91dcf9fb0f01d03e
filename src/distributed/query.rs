//! The span-log queries of [`DistributedTracer`] (the specification's `get_trace_spans`,
//! `get_span_by_id`, `get_trace_summary`, `get_metrics`) and their result types. Each reads
//! the log slot by slot without stopping recorders, and returns owned copies.
//!
//! The log holds finished sampled spans: a span still open is in no answer until it
//! finishes, as in the specification's code, whose queries read its list of completed spans.
//!
//! ```
//! use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};
//! let tracer = DistributedTracer::new(TracerConfig::default());
//! let root = tracer.start_span("root", SpanKind::Server, []);
//! let (trace_id, id) = (root.trace_id(), root.span_id());
//! assert!(tracer.get_span_by_id(id).is_none());
//! assert!(tracer.get_trace_summary(trace_id).is_none());
//! assert_eq!(tracer.get_metrics().total_spans, 0);
//! root.end();
//! assert!(tracer.get_span_by_id(id).is_some());
//! ```

use super::DistributedTracer;
use crate::tracer::{SpanId, SpanRecord, SpanStatus, ToSpanId, ToTraceId, TraceId};
use std::collections::{BTreeMap, HashMap, HashSet};

/// The export counts of a build without span export (feature `otlp`): all zero.
#[cfg(not(feature = "otlp"))]
#[derive(Default)]
struct NoExport {
    running: bool,
    exported: u64,
    failed: u64,
    rejected: u64,
    queue_size: u64,
}

#[cfg(not(feature = "otlp"))]
impl NoExport {
    fn dropped(&self) -> u64 {
        0
    }
}

/// Summary of one trace in the span log ([`DistributedTracer::get_trace_summary`]).
///
/// ```
/// use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};
/// let tracer = DistributedTracer::new(TracerConfig::default());
/// let root = tracer.start_span("root", SpanKind::Server, []);
/// let trace_id = root.trace_id();
/// tracer.start_span("child", SpanKind::Internal, []).end();
/// root.end();
/// let summary = tracer.get_trace_summary(trace_id).unwrap();
/// assert_eq!(summary.span_count, 2);
/// assert_eq!(summary.operations, ["root", "child"]);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSummary {
    /// The trace.
    pub trace_id: TraceId,
    /// Spans of the trace in the span log.
    pub span_count: usize,
    /// From the earliest start to the latest end, milliseconds.
    pub total_duration_ms: f64,
    /// Spans with `Error` status.
    pub error_count: usize,
    /// Earliest start, Unix seconds.
    pub start_time: f64,
    /// Latest end, Unix seconds.
    pub end_time: f64,
    /// Distinct operation names, in order of first start.
    pub operations: Vec<String>,
}

/// Tracing metrics over the span log plus the counters ([`DistributedTracer::get_metrics`]).
///
/// ```
/// use agentcore_telemetry::{DistributedTracer, SpanKind, SpanStatus, TracerConfig};
/// let tracer = DistributedTracer::new(TracerConfig::default());
/// tracer.start_span("a", SpanKind::Internal, []).finish(SpanStatus::Ok);
/// tracer.start_span("b", SpanKind::Internal, []).finish(SpanStatus::Error);
/// let m = tracer.get_metrics();
/// assert_eq!((m.total_spans, m.error_spans, m.unique_traces), (2, 1, 2));
/// assert_eq!(m.error_rate_percent, 50.0);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct TracingMetrics {
    /// Spans in the span log.
    pub total_spans: usize,
    /// Spans in the span log with `Error` status.
    pub error_spans: usize,
    /// `error_spans / total_spans * 100`, unrounded, as the specification's code computes it
    /// (its example's `3.33` for 5 of 150 spans is `3.3333333333333335` shown to two places);
    /// 0 when empty. Rounded to two decimals, a few error spans in a full span log read as
    /// none (1 of 30,000: 0.0 beside `error_spans` 1).
    pub error_rate_percent: f64,
    /// Distinct trace ids in the span log.
    pub unique_traces: usize,
    /// Whether a span exporter is running ([`DistributedTracer::start_export`], or the
    /// `OTEL_*` environment).
    pub export_enabled: bool,
    /// Sampled spans started (counter).
    pub spans_started: u64,
    /// Sampled spans finished (counter).
    pub spans_finished: u64,
    /// Spans not sampled (counter).
    pub spans_unsampled: u64,
    /// Finished spans dropped on a busy slot (counter).
    pub spans_dropped: u64,
    /// Finished spans overwritten in the span log (counter).
    pub spans_overwritten: u64,
    /// Spans the exporter delivered (0 without export).
    pub spans_exported: u64,
    /// Spans the exporter dropped: overwritten in the span log before it read them, no
    /// span-log slot, over its queue capacity, or left at shutdown.
    pub spans_export_dropped: u64,
    /// Spans not delivered after retries.
    pub spans_export_failed: u64,
    /// Spans the receiver refused in a partial success.
    pub spans_export_rejected: u64,
    /// Spans waiting for export, as of the exporter's last look.
    pub export_queue_size: u64,
}

impl DistributedTracer {
    /// All spans of trace `trace_id` in the span log, sorted by start time; among spans that
    /// started in the same nanosecond, a parent before its children (then the earlier end
    /// first). Reads the log slot by slot without stopping recorders.
    ///
    /// `trace_id` is a [`TraceId`] or a string, as the specification passes it
    /// (`get_trace_spans("trace-123")`): the same string given to
    /// [`start_trace`](Self::start_trace) finds its trace (a W3C hex id is the id itself, any
    /// other string is mapped with [`TraceId::from_external`], as `start_trace` and
    /// [`add_link`](crate::DetachedSpan::add_link) map it).
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, SpanKind, TraceId, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// let _trace = tracer.start_trace(Some("trace-123"), [("k", "v")]);
    /// tracer.start_span("a", SpanKind::Internal, []).end();
    /// tracer.start_span("b", SpanKind::Internal, []).end();
    /// let spans = tracer.get_trace_spans("trace-123");
    /// assert_eq!(spans.iter().map(|s| &*s.name).collect::<Vec<_>>(), ["a", "b"]);
    /// assert_eq!(tracer.get_trace_spans(TraceId::from_external("trace-123")), spans);
    /// assert!(tracer.get_trace_spans("trace-999").is_empty());
    /// ```
    pub fn get_trace_spans(&self, trace_id: impl ToTraceId) -> Vec<SpanRecord> {
        let (trace_id, _) = trace_id.to_trace_id();
        let mut spans = Vec::new();
        self.core().for_each_record(|r| {
            if r.trace_id == trace_id {
                spans.push(r.clone());
            }
        });
        sort_trace(spans)
    }

    /// The span `span_id` from the span log, if still there.
    ///
    /// `span_id` is a [`SpanId`] or a string, as the specification passes it
    /// (`get_span_by_id("span-456")`): a W3C hex id (as [`SpanId`]'s `Display`
    /// and [`to_map`](crate::TraceContext::to_map) write it) is the id itself, any other
    /// string is mapped with [`SpanId::from_external`](crate::SpanId::from_external), as
    /// [`add_link`](crate::DetachedSpan::add_link) maps it.
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, SpanId, SpanKind, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// assert!(tracer.get_span_by_id(SpanId::random()).is_none());
    /// let span = tracer.start_span("op", SpanKind::Internal, []);
    /// let logged = span.span_id().to_string();
    /// span.end();
    /// assert_eq!(tracer.get_span_by_id(logged.as_str()).unwrap().name, "op");
    /// assert!(tracer.get_span_by_id("span-456").is_none());
    /// ```
    pub fn get_span_by_id(&self, span_id: impl ToSpanId) -> Option<SpanRecord> {
        let (span_id, _) = span_id.to_span_id();
        let mut found = None;
        self.core().for_each_record(|r| {
            if found.is_none() && r.span_id == span_id {
                found = Some(r.clone());
            }
        });
        found
    }

    /// A summary of trace `trace_id`, or `None` if none of its spans is in the span log.
    /// `trace_id` is a [`TraceId`] or a string, as for [`get_trace_spans`](Self::get_trace_spans);
    /// the summary's [`trace_id`](TraceSummary::trace_id) is the id it stands for.
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, SpanKind, SpanStatus, TraceId, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// let span = tracer.start_span("op", SpanKind::Internal, []);
    /// let trace_id = span.trace_id();
    /// span.finish(SpanStatus::Error);
    /// let s = tracer.get_trace_summary(trace_id).unwrap();
    /// assert_eq!((s.span_count, s.error_count), (1, 1));
    /// assert!(s.end_time >= s.start_time);
    ///
    /// let _trace = tracer.start_trace(Some("trace-123"), [("k", "v")]);
    /// tracer.start_span("create_agent", SpanKind::Internal, []).end();
    /// let s = tracer.get_trace_summary("trace-123").unwrap();
    /// assert_eq!(s.trace_id, TraceId::from_external("trace-123"));
    /// assert!(tracer.get_trace_summary("trace-999").is_none());
    /// ```
    pub fn get_trace_summary(&self, trace_id: impl ToTraceId) -> Option<TraceSummary> {
        let (trace_id, _) = trace_id.to_trace_id();
        let spans = self.get_trace_spans(trace_id);
        let start = spans.iter().map(|s| s.start_time_unix_nano).min()?;
        let end = spans.iter().map(|s| s.end_time_unix_nano).max()?;
        // A set of the names seen, not a scan of the list: one name per span (names built
        // from ids) made the scan quadratic, 25 s for a full default span log (found by
        // review).
        let mut seen: HashSet<&str> = HashSet::with_capacity(spans.len());
        let operations: Vec<String> = spans
            .iter()
            .filter(|s| seen.insert(&s.name))
            .map(|s| s.name.to_string())
            .collect();
        Some(TraceSummary {
            trace_id,
            span_count: spans.len(),
            total_duration_ms: end.saturating_sub(start) as f64 / 1e6,
            error_count: spans
                .iter()
                .filter(|s| s.status == SpanStatus::Error)
                .count(),
            start_time: start as f64 / 1e9,
            end_time: end as f64 / 1e9,
            operations,
        })
    }

    /// Metrics over the span log plus the counters.
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, TracerConfig};
    /// let m = DistributedTracer::new(TracerConfig { from_env: false, ..Default::default() }).get_metrics();
    /// assert_eq!((m.total_spans, m.error_rate_percent, m.export_enabled), (0, 0.0, false));
    /// assert_eq!((m.spans_exported, m.spans_export_dropped), (0, 0));
    /// ```
    pub fn get_metrics(&self) -> TracingMetrics {
        let (mut total, mut errors) = (0usize, 0usize);
        let mut traces = HashSet::new();
        self.core().for_each_record(|r| {
            total += 1;
            if r.status == SpanStatus::Error {
                errors += 1;
            }
            traces.insert(r.trace_id);
        });
        let stats = self.stats();
        #[cfg(feature = "otlp")]
        let export = self.export_stats().unwrap_or_default();
        #[cfg(not(feature = "otlp"))]
        let export = NoExport::default();
        TracingMetrics {
            total_spans: total,
            error_spans: errors,
            error_rate_percent: if total == 0 {
                0.0
            } else {
                errors as f64 / total as f64 * 100.0
            },
            unique_traces: traces.len(),
            export_enabled: export.running,
            spans_started: stats.spans_started,
            spans_finished: stats.spans_finished,
            spans_unsampled: stats.spans_unsampled,
            spans_dropped: stats.spans_dropped,
            spans_overwritten: stats.spans_overwritten,
            spans_exported: export.exported,
            spans_export_dropped: export.dropped(),
            spans_export_failed: export.failed,
            spans_export_rejected: export.rejected,
            export_queue_size: export.queue_size,
        }
    }

    /// Spans per operation name in the span log (a small helper for dashboards and tests).
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// tracer.start_span("a", SpanKind::Internal, []).end();
    /// tracer.start_span("a", SpanKind::Internal, []).end();
    /// assert_eq!(tracer.operation_counts()["a"], 2);
    /// ```
    pub fn operation_counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        self.core().for_each_record(|r| {
            *counts.entry(r.name.to_string()).or_insert(0) += 1;
        });
        counts
    }
}

/// One trace's spans in order: by start time, then by depth in the trace (a parent before its
/// children: a child may start in the same nanosecond as its parent, and then ends first, so
/// the end alone put the child first; found by review), then by end.
///
/// The depth counts the parent links that lead to another span in `spans` (a span whose
/// parent is not in the log, overwritten or remote, has depth 0). Each span's depth is found
/// once (a walk up stops at a span already done), so a deep chain costs linear time; a cycle
/// of parent links, which only hostile remote ids could make, is cut where the walk meets
/// itself. With ids repeated (equally hostile), a parent link names the last span that has
/// the id. The sort is stable: spans equal in all three keep the log's order.
fn sort_trace(spans: Vec<SpanRecord>) -> Vec<SpanRecord> {
    const UNKNOWN: usize = usize::MAX;
    const ON_PATH: usize = usize::MAX - 1;
    let index: HashMap<SpanId, usize> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| (s.span_id, i))
        .collect();
    let parent = |i: usize| spans[i].parent_span_id.and_then(|p| index.get(&p).copied());
    let mut depth = vec![UNKNOWN; spans.len()];
    let mut path = Vec::new();
    for first in 0..spans.len() {
        if depth[first] != UNKNOWN {
            continue;
        }
        // Walk up from `first` until a root, a span whose depth is known, or the path itself.
        path.clear();
        let mut i = first;
        let mut d = loop {
            match depth[i] {
                UNKNOWN => {
                    depth[i] = ON_PATH;
                    path.push(i);
                    match parent(i) {
                        Some(p) => i = p,
                        None => break 0,
                    }
                }
                // A cycle: the path's last span is taken as its root.
                ON_PATH => break 0,
                known => break known + 1,
            }
        };
        for &j in path.iter().rev() {
            depth[j] = d;
            d += 1;
        }
    }
    let mut keyed: Vec<_> = spans
        .into_iter()
        .zip(depth)
        .map(|(s, d)| ((s.start_time_unix_nano, d, s.end_time_unix_nano), s))
        .collect();
    keyed.sort_by_key(|&(key, _)| key);
    keyed.into_iter().map(|(_, s)| s).collect()
}

#[cfg(test)]
mod tests {
    use super::sort_trace;
    use crate::tracer::{SpanId, SpanKind, SpanRecord, SpanStatus, TraceId};
    use std::borrow::Cow;

    fn span(id: u64, parent: Option<u64>, start: u64, end: u64) -> SpanRecord {
        SpanRecord {
            trace_id: TraceId::from_u128(7).unwrap(),
            span_id: SpanId::from_u64(id).unwrap(),
            parent_span_id: parent.and_then(SpanId::from_u64),
            name: Cow::Owned(format!("s{id}")),
            kind: SpanKind::Internal,
            status: SpanStatus::Ok,
            status_message: Cow::Borrowed(""),
            start_time_unix_nano: start,
            end_time_unix_nano: end,
            attributes: Default::default(),
            events: Default::default(),
            links: Default::default(),
            dropped_attributes_count: 0,
            dropped_events_count: 0,
            dropped_links_count: 0,
            parent_is_remote: false,
            ..SpanRecord::empty()
        }
    }

    fn order(spans: Vec<SpanRecord>) -> Vec<u64> {
        sort_trace(spans)
            .iter()
            .map(|s| s.span_id.to_u64())
            .collect()
    }

    #[test]
    fn a_parent_comes_before_a_child_that_started_in_the_same_nanosecond() {
        // The child ends first: sorted by (start, end), it came first.
        assert_eq!(
            order(vec![span(2, Some(1), 100, 150), span(1, None, 100, 200)]),
            [1, 2]
        );
        // Start and end equal (a coarse clock): only the links tell, down a chain given
        // in reverse.
        assert_eq!(
            order(vec![
                span(4, Some(3), 100, 100),
                span(3, Some(2), 100, 100),
                span(2, Some(1), 100, 100),
                span(1, None, 100, 100),
            ]),
            [1, 2, 3, 4]
        );
        // The start time still comes first; then the end among unrelated spans.
        assert_eq!(
            order(vec![
                span(5, Some(1), 90, 95),
                span(2, Some(1), 100, 150),
                span(1, None, 80, 200),
                span(9, None, 100, 120),
            ]),
            [1, 5, 9, 2]
        );
    }

    #[test]
    fn hostile_parent_links_sort_without_panicking() {
        // A cycle (1 -> 2 -> 1), a self-parent, and a repeated id: defined and total.
        let got = order(vec![
            span(1, Some(2), 100, 100),
            span(2, Some(1), 100, 100),
            span(3, Some(3), 100, 100),
            span(4, Some(4), 50, 60),
            span(4, None, 50, 60),
        ]);
        assert_eq!(got.len(), 5);
        assert_eq!(&got[..2], [4, 4]);
        // A long chain sorts in linear depth work (a quadratic walk of 10^5 would hang).
        let n = 100_000u64;
        let chain: Vec<_> = (1..=n)
            .rev()
            .map(|i| span(i, (i > 1).then(|| i - 1), 100, 100))
            .collect();
        assert_eq!(order(chain), (1..=n).collect::<Vec<_>>());
    }
}
