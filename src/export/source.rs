//! Where finished spans come from: the [`SpanSource`] trait the batch processor drains, the
//! [`ExportSpan`] view it hands to exporters, and [`MemorySpanSource`], a bounded in-memory
//! source for tests and for programs that build their own records.
//!
//! The contract between the span log and the exporter thread is on [`SpanSource`].

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};

use crate::tracer::SpanRecord;

/// One finished span as an exporter sees it: the record, borrowed in place, plus the parts of
/// the span's context that [`SpanRecord`] does not carry.
///
/// [`ExportSpan::new`] fills those from what the record implies: trace flags `0x01` (a
/// recorded span is a sampled one), no trace state, and the remote-parent bit known only for
/// a root span (it has no parent, so no remote one). A source that knows more (the span log
/// knows whether a span's parent came from another process) sets the fields itself.
///
/// ```
/// use agentcore_telemetry::export::ExportSpan;
/// use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};
///
/// let tracer = DistributedTracer::new(TracerConfig::default());
/// let span = tracer.start_span("root", SpanKind::Server, []);
/// let id = span.span_id();
/// span.end();
/// let record = tracer.get_span_by_id(id).unwrap();
/// let view = ExportSpan::new(&record);
/// // sampled, and "the parent is not remote" is known (there is no parent)
/// assert_eq!(view.otlp_flags(), 0x01 | 0x100);
/// assert_eq!(ExportSpan { parent_is_remote: Some(true), ..view }.otlp_flags(), 0x301);
/// ```
#[derive(Clone, Copy)]
pub struct ExportSpan<'a> {
    /// The finished span.
    pub record: &'a SpanRecord,
    /// The W3C trace flags of the span's context (bit 0: sampled).
    pub trace_flags: u8,
    /// Whether the span's parent context came from another process: `Some(true)` for a
    /// parent extracted from a `traceparent` header, `Some(false)` for a local parent or no
    /// parent, `None` when unknown (OTLP then leaves `HAS_IS_REMOTE` clear).
    pub parent_is_remote: Option<bool>,
    /// The W3C `tracestate` of the span's context, empty when none.
    pub trace_state: &'a str,
}

impl<'a> ExportSpan<'a> {
    /// The view of `record` with what the record implies (see the type's documentation).
    ///
    /// ```
    /// use agentcore_telemetry::export::ExportSpan;
    /// use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// let parent = tracer.start_span("parent", SpanKind::Internal, []);
    /// let child = tracer.start_span("child", SpanKind::Internal, []);
    /// let id = child.span_id();
    /// child.end();
    /// parent.end();
    /// let record = tracer.get_span_by_id(id).unwrap();
    /// assert_eq!(ExportSpan::new(&record).parent_is_remote, None);
    /// ```
    pub fn new(record: &'a SpanRecord) -> Self {
        ExportSpan {
            record,
            trace_flags: 0x01,
            parent_is_remote: record.parent_span_id.is_none().then_some(false),
            trace_state: "",
        }
    }

    /// The OTLP `Span.flags` word: bits 0–7 the W3C trace flags, bit 8
    /// (`SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK`) set when the remote-parent bit is known, bit
    /// 9 (`SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK`) set when the parent is remote.
    ///
    /// ```
    /// use agentcore_telemetry::export::ExportSpan;
    /// use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// let span = tracer.start_span("op", SpanKind::Internal, []);
    /// let id = span.span_id();
    /// span.end();
    /// let record = tracer.get_span_by_id(id).unwrap();
    /// let unknown = ExportSpan { parent_is_remote: None, ..ExportSpan::new(&record) };
    /// assert_eq!(unknown.otlp_flags(), 0x01);
    /// ```
    pub fn otlp_flags(&self) -> u32 {
        let remote = match self.parent_is_remote {
            None => 0,
            Some(false) => 0x100,
            Some(true) => 0x300,
        };
        u32::from(self.trace_flags) | remote
    }
}

impl fmt::Debug for ExportSpan<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExportSpan")
            .field("trace_id", &self.record.trace_id)
            .field("span_id", &self.record.span_id)
            .field("name", &self.record.name)
            .field("trace_flags", &self.trace_flags)
            .field("parent_is_remote", &self.parent_is_remote)
            .field("trace_state", &self.trace_state)
            .finish()
    }
}

/// What one [`SpanSource::drain`] call did.
///
/// ```
/// use agentcore_telemetry::export::Drained;
/// let d = Drained { visited: 3, lost: 1, refused: 0 };
/// assert_eq!(d.visited + d.lost as usize, 4);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Drained {
    /// Spans handed to the callback by this call.
    pub visited: usize,
    /// Spans overwritten before any drain visited them, counted since the previous call
    /// (each lost span is reported exactly once, by one call).
    pub lost: u64,
    /// Spans the source could not take at all since the previous call (the span log had no
    /// free slot for them), each reported exactly once; counted as `queue_full` drops.
    pub refused: u64,
}

/// A queue of finished spans that the exporter thread drains: the span log implements it
/// (the tracer hands its spans over through nothing else), and so does
/// [`MemorySpanSource`].
///
/// # Contract
///
/// Recording threads only ever write finished spans into the source (no notification, no
/// lock, no allocation for the exporter's sake); the exporter thread, the only caller of
/// these methods, reads them lazily:
///
/// * [`pending`](Self::pending) estimates how many finished spans wait to be visited. It is
///   called on every wake of the exporter thread (every few milliseconds under load, at
///   least every `max_poll_interval`), so it must be cheap: a few atomic loads.
/// * [`drain`](Self::drain) visits up to `max` of them, oldest first, handing each to the
///   callback as an [`ExportSpan`] that borrows the record in place (no clone). The
///   callback encodes the span and returns (about a microsecond); it never blocks. While it
///   runs the source may keep the slot from being overwritten (a recorder that meets the
///   slot then treats it as busy).
/// * **Exactly once.** Every span written into the source is, over the source's life,
///   either visited by exactly one `drain` call or counted exactly once in one
///   [`Drained::lost`] (overwritten before the exporter reached it); a span the source
///   could not take at all is counted once in [`Drained::refused`]. This is what lets the
///   processor account for every span: `exported + rejected + failed + dropped =
///   submitted`.
/// * A span still open (its slot claimed, not yet published) is not waiting: `drain` skips
///   it (a source may stop a drain at it and return fewer than `max` spans), and
///   [`queued`](Self::queued) does not count it; the cheap `pending` estimate may.
/// * `pending` must not count spans already lost, so that `pending() == 0` after a drain
///   that returned fewer than asked means "caught up".
///
/// ```
/// use agentcore_telemetry::export::{Drained, ExportSpan, SpanSource};
/// use agentcore_telemetry::SpanRecord;
///
/// /// A source over a fixed list of records.
/// struct Fixed(Vec<SpanRecord>, usize);
///
/// impl SpanSource for Fixed {
///     fn pending(&self) -> usize {
///         self.0.len() - self.1
///     }
///     fn drain(&mut self, max: usize, f: &mut dyn FnMut(ExportSpan<'_>)) -> Drained {
///         let end = (self.1 + max).min(self.0.len());
///         for record in &self.0[self.1..end] {
///             f(ExportSpan::new(record));
///         }
///         let visited = end - self.1;
///         self.1 = end;
///         Drained { visited, lost: 0, refused: 0 }
///     }
/// }
///
/// let mut source = Fixed(Vec::new(), 0);
/// assert_eq!(source.pending(), 0);
/// assert_eq!(source.drain(10, &mut |_| {}), Drained::default());
/// ```
pub trait SpanSource: Send {
    /// Finished spans waiting to be visited (an estimate while recorders run; exact when
    /// they are quiet). Cheap: called on every wake of the exporter thread.
    fn pending(&self) -> usize;

    /// Finished spans waiting, counted exactly while recorders are quiet, and never
    /// counting spans still open (where [`pending`](Self::pending) may, to stay cheap).
    /// The processor asks only before a decision that must not overcount: dropping spans
    /// for [`max_queue_size`](super::BatchConfig::max_queue_size). The default is
    /// `pending()`, right for any source whose estimate never counts open spans.
    fn queued(&self) -> usize {
        self.pending()
    }

    /// Visits up to `max` finished spans not visited before, oldest first, calling `f` once
    /// for each with a view borrowing the record in place. Returns how many it visited and
    /// how many were lost (overwritten unvisited) since the previous call.
    fn drain(&mut self, max: usize, f: &mut dyn FnMut(ExportSpan<'_>)) -> Drained;

    /// Stops taking spans for export: once it returns, every span the source will ever
    /// hand over is already waiting for [`drain`](Self::drain), and spans finished from now
    /// on are not for this exporter. The processor's shutdown calls it first, then exports
    /// what waits, then counts what is left as dropped, so that nothing finished before the
    /// shutdown is left unaccounted and nothing finished after it is counted. The span log
    /// detaches its export cursor here (a process-wide barrier, no sleep). The default does
    /// nothing: a source that keeps taking spans has them counted as dropped at the
    /// shutdown's end, by up to 16 drains (one that still hands spans over in the last of
    /// them keeps the rest, uncounted: the export thread ends).
    ///
    /// ```
    /// use agentcore_telemetry::export::{MemorySpanSource, SpanSource};
    /// let mut source = MemorySpanSource::new(8);
    /// source.close(); // the in-memory source keeps no writer to stop
    /// assert_eq!(source.pending(), 0);
    /// ```
    fn close(&mut self) {}

    /// Takes the processor's wake-up: a source may call `wake` (from any thread; it never
    /// blocks or allocates) when spans arrive while the exporter thread sleeps, so that the
    /// thread looks before its next scheduled look. The processor calls this once, before its
    /// thread starts. The span log calls it once per 256 spans of a shard published while
    /// exporting; the default drops it (the thread then looks on its own schedule).
    ///
    /// ```
    /// use agentcore_telemetry::export::{MemorySpanSource, SpanSource};
    /// let mut source = MemorySpanSource::new(8);
    /// source.set_wake(Box::new(|| {})); // the in-memory source never wakes the thread
    /// ```
    fn set_wake(&mut self, wake: Box<dyn Fn() + Send + Sync>) {
        drop(wake);
    }
}

/// A bounded in-memory [`SpanSource`]: a ring of owned [`SpanRecord`]s behind a mutex, for
/// tests and for programs that produce records themselves. When full, a push overwrites the
/// oldest record and counts it as lost, like the span log. Clones share the queue: keep one
/// to push from any thread and hand another to the processor.
///
/// ```
/// use agentcore_telemetry::export::{MemorySpanSource, SpanSource};
/// use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};
///
/// let tracer = DistributedTracer::new(TracerConfig::default());
/// let span = tracer.start_span("op", SpanKind::Internal, []);
/// let trace = span.trace_id();
/// span.end();
///
/// let source = MemorySpanSource::new(2);
/// for record in tracer.get_trace_spans(trace) {
///     source.push(record);
/// }
/// let mut drainer = source.clone();
/// let mut names = Vec::new();
/// let drained = drainer.drain(10, &mut |s| names.push(s.record.name.to_string()));
/// assert_eq!((drained.visited, drained.lost), (1, 0));
/// assert_eq!(names, ["op"]);
/// ```
#[derive(Clone)]
pub struct MemorySpanSource {
    inner: Arc<Mutex<MemoryInner>>,
}

struct MemoryInner {
    capacity: usize,
    queue: VecDeque<Entry>,
    lost: u64,
    pushed: u64,
}

struct Entry {
    record: SpanRecord,
    parent_is_remote: Option<bool>,
    trace_state: String,
}

impl MemorySpanSource {
    /// An empty source holding at most `capacity` records (at least 1).
    ///
    /// ```
    /// use agentcore_telemetry::export::MemorySpanSource;
    /// assert_eq!(MemorySpanSource::new(0).capacity(), 1);
    /// ```
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        MemorySpanSource {
            inner: Arc::new(Mutex::new(MemoryInner {
                capacity,
                queue: VecDeque::with_capacity(capacity.min(1 << 16)),
                lost: 0,
                pushed: 0,
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryInner> {
        // A panic while holding the lock leaves the queue consistent (every operation is a
        // single push/pop), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The most records it holds.
    ///
    /// ```
    /// use agentcore_telemetry::export::MemorySpanSource;
    /// assert_eq!(MemorySpanSource::new(8).capacity(), 8);
    /// ```
    pub fn capacity(&self) -> usize {
        self.lock().capacity
    }

    /// Appends a finished span (as [`ExportSpan::new`] would see it); overwrites the oldest
    /// when full, counting it as lost.
    ///
    /// ```
    /// use agentcore_telemetry::export::{MemorySpanSource, SpanSource};
    /// use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// let span = tracer.start_span("op", SpanKind::Internal, []);
    /// let id = span.span_id();
    /// span.end();
    /// let source = MemorySpanSource::new(1);
    /// source.push(tracer.get_span_by_id(id).unwrap());
    /// source.push(tracer.get_span_by_id(id).unwrap());
    /// let d = source.clone().drain(10, &mut |_| {});
    /// assert_eq!((d.visited, d.lost), (1, 1));
    /// ```
    pub fn push(&self, record: SpanRecord) {
        let parent_is_remote = record.parent_span_id.is_none().then_some(false);
        self.push_with(record, parent_is_remote, String::new());
    }

    /// Appends a finished span with the context parts a [`SpanRecord`] lacks (see
    /// [`ExportSpan`]).
    ///
    /// ```
    /// use agentcore_telemetry::export::{MemorySpanSource, SpanSource};
    /// use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// let span = tracer.start_span("op", SpanKind::Server, []);
    /// let id = span.span_id();
    /// span.end();
    /// let source = MemorySpanSource::new(4);
    /// source.push_with(tracer.get_span_by_id(id).unwrap(), Some(true), "vendor=1".into());
    /// source.clone().drain(1, &mut |s| {
    ///     assert_eq!(s.otlp_flags(), 0x301);
    ///     assert_eq!(s.trace_state, "vendor=1");
    /// });
    /// ```
    pub fn push_with(
        &self,
        record: SpanRecord,
        parent_is_remote: Option<bool>,
        trace_state: String,
    ) {
        let mut inner = self.lock();
        inner.pushed += 1;
        if inner.queue.len() == inner.capacity {
            inner.queue.pop_front();
            inner.lost += 1;
        }
        inner.queue.push_back(Entry {
            record,
            parent_is_remote,
            trace_state,
        });
    }

    /// Records pushed so far (including those later overwritten).
    ///
    /// ```
    /// use agentcore_telemetry::export::MemorySpanSource;
    /// assert_eq!(MemorySpanSource::new(4).pushed(), 0);
    /// ```
    pub fn pushed(&self) -> u64 {
        self.lock().pushed
    }
}

impl SpanSource for MemorySpanSource {
    fn pending(&self) -> usize {
        self.lock().queue.len()
    }

    fn drain(&mut self, max: usize, f: &mut dyn FnMut(ExportSpan<'_>)) -> Drained {
        let mut inner = self.lock();
        let n = max.min(inner.queue.len());
        for entry in inner.queue.iter().take(n) {
            f(ExportSpan {
                record: &entry.record,
                trace_flags: 0x01,
                parent_is_remote: entry.parent_is_remote,
                trace_state: &entry.trace_state,
            });
        }
        inner.queue.drain(..n);
        let lost = std::mem::take(&mut inner.lost);
        Drained {
            visited: n,
            lost,
            refused: 0,
        }
    }
}

impl fmt::Debug for MemorySpanSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.lock();
        f.debug_struct("MemorySpanSource")
            .field("capacity", &inner.capacity)
            .field("len", &inner.queue.len())
            .field("lost", &inner.lost)
            .finish()
    }
}
