//! [`InMemorySpanExporter`]: keeps exported spans in memory, for tests. It can be told to
//! fail, reject or stall, to exercise the processor's accounting and deadlines. What it keeps
//! is capped: the last [`InMemorySpanExporter::DEFAULT_CAPACITY`] spans (or the number given
//! to [`InMemorySpanExporter::with_capacity`]), the older ones dropped and counted.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::exporter::{Deadline, ExportError, ExportOutcome, SpanExporter};
use super::source::ExportSpan;
use crate::tracer::SpanRecord;

/// What the exporter does with one batch (see [`InMemorySpanExporter::script`]).
///
/// ```
/// use agentcore_telemetry::export::{ExportError, MemoryAnswer};
/// let plan = [MemoryAnswer::Accept, MemoryAnswer::Fail(ExportError::Timeout)];
/// assert_eq!(plan.len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum MemoryAnswer {
    /// Keep every span.
    Accept,
    /// Keep all but `n` spans, which count as rejected (a partial success).
    Reject(u64),
    /// Keep nothing; every span fails with this error.
    Fail(ExportError),
    /// Take this long (or until the deadline, which then fails the batch with
    /// [`ExportError::Timeout`]), then keep every span.
    Stall(Duration),
}

struct State {
    /// At most `capacity`, oldest first.
    spans: VecDeque<SpanRecord>,
    /// At most `capacity`, oldest first.
    batches: VecDeque<usize>,
    capacity: usize,
    /// Spans dropped from `spans` to keep it within `capacity`.
    dropped: u64,
    /// Batch sizes dropped from `batches` to keep it within `capacity`.
    batches_dropped: u64,
    script: VecDeque<MemoryAnswer>,
    shut_down: bool,
}

impl State {
    fn new(capacity: usize) -> Self {
        State {
            spans: VecDeque::new(),
            batches: VecDeque::new(),
            capacity,
            dropped: 0,
            batches_dropped: 0,
            script: VecDeque::new(),
            shut_down: false,
        }
    }

    /// Keeps `batch`'s spans, dropping (and counting) the oldest beyond the capacity.
    fn keep(&mut self, batch: Vec<SpanRecord>) {
        let over = (self.spans.len() + batch.len()).saturating_sub(self.capacity);
        // The oldest kept ones go first, then (a batch larger than the whole capacity) the
        // batch's own first spans; never more than the capacity is held, even for a moment.
        let from_kept = over.min(self.spans.len());
        self.spans.drain(..from_kept);
        let from_batch = over - from_kept;
        self.spans.extend(batch.into_iter().skip(from_batch));
        self.dropped = self.dropped.saturating_add(over as u64);
    }

    /// Records one batch's size, dropping (and counting) the oldest beyond the capacity.
    fn record_batch(&mut self, size: usize) {
        if self.batches.len() == self.capacity {
            self.batches.pop_front();
            self.batches_dropped = self.batches_dropped.saturating_add(1);
        }
        self.batches.push_back(size);
    }
}

/// A [`SpanExporter`] that clones each span it accepts into a shared list (clones of the
/// exporter share it: keep one to read, hand another to the processor). Exports answer
/// [`MemoryAnswer::Accept`] unless [scripted](Self::script) otherwise.
///
/// The list is capped ([`DEFAULT_CAPACITY`](Self::DEFAULT_CAPACITY) spans, or
/// [`with_capacity`](Self::with_capacity)'s): past it the oldest spans are dropped and counted
/// in [`dropped`](Self::dropped). Dropped spans were still exported (the outcome the
/// processor sees does not change); only this record of them is gone. The batch sizes
/// ([`batches`](Self::batches)) are capped alike ([`batches_dropped`](Self::batches_dropped)).
///
/// ```
/// use agentcore_telemetry::export::{Deadline, ExportSpan, InMemorySpanExporter, MemoryAnswer, SpanExporter};
/// use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};
/// use std::time::Duration;
///
/// let tracer = DistributedTracer::new(TracerConfig::default());
/// let span = tracer.start_span("op", SpanKind::Internal, []);
/// let id = span.span_id();
/// span.end();
/// let record = tracer.get_span_by_id(id).unwrap();
///
/// let reader = InMemorySpanExporter::new();
/// let mut exporter = reader.clone();
/// reader.script([MemoryAnswer::Reject(1)]);
/// exporter.add(ExportSpan::new(&record));
/// let outcome = exporter.export(&Deadline::after(Duration::from_secs(1)));
/// assert_eq!((outcome.exported, outcome.rejected), (0, 1));
/// exporter.add(ExportSpan::new(&record));
/// assert_eq!(exporter.export(&Deadline::after(Duration::from_secs(1))).exported, 1);
/// assert_eq!(reader.spans().len(), 1);
/// assert_eq!(reader.batches(), [1, 1]);
/// ```
pub struct InMemorySpanExporter {
    shared: Arc<Mutex<State>>,
    batch: Vec<SpanRecord>,
    /// This handle was shut down: its exports fail (other clones still export).
    shut_down: bool,
}

impl InMemorySpanExporter {
    /// How many spans (and batch sizes) [`new`](Self::new) keeps.
    ///
    /// ```
    /// use agentcore_telemetry::export::InMemorySpanExporter;
    /// assert_eq!(InMemorySpanExporter::new().capacity(), InMemorySpanExporter::DEFAULT_CAPACITY);
    /// assert_eq!(InMemorySpanExporter::DEFAULT_CAPACITY, 65_536);
    /// ```
    pub const DEFAULT_CAPACITY: usize = 65_536;

    /// An exporter with an empty list, keeping the last
    /// [`DEFAULT_CAPACITY`](Self::DEFAULT_CAPACITY) spans.
    ///
    /// ```
    /// use agentcore_telemetry::export::InMemorySpanExporter;
    /// assert!(InMemorySpanExporter::new().spans().is_empty());
    /// ```
    pub fn new() -> Self {
        Self::with_capacity(Self::DEFAULT_CAPACITY)
    }

    /// An exporter with an empty list, keeping the last `capacity` spans (at least 1) and the
    /// sizes of the last `capacity` batches; older ones are dropped and counted
    /// ([`dropped`](Self::dropped), [`batches_dropped`](Self::batches_dropped)).
    ///
    /// ```
    /// use agentcore_telemetry::export::{Deadline, ExportSpan, InMemorySpanExporter, SpanExporter};
    /// use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};
    /// use std::time::Duration;
    ///
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// let span = tracer.start_span("op", SpanKind::Internal, []);
    /// let id = span.span_id();
    /// span.end();
    /// let record = tracer.get_span_by_id(id).unwrap();
    ///
    /// let reader = InMemorySpanExporter::with_capacity(2);
    /// let mut exporter = reader.clone();
    /// for _ in 0..3 {
    ///     exporter.add(ExportSpan::new(&record));
    /// }
    /// assert_eq!(exporter.export(&Deadline::after(Duration::from_secs(1))).exported, 3);
    /// assert_eq!((reader.spans().len(), reader.dropped()), (2, 1));
    /// assert_eq!(InMemorySpanExporter::with_capacity(0).capacity(), 1);
    /// ```
    pub fn with_capacity(capacity: usize) -> Self {
        InMemorySpanExporter {
            shared: Arc::new(Mutex::new(State::new(capacity.max(1)))),
            batch: Vec::new(),
            shut_down: false,
        }
    }

    /// How many spans (and batch sizes) this exporter keeps.
    ///
    /// ```
    /// use agentcore_telemetry::export::InMemorySpanExporter;
    /// assert_eq!(InMemorySpanExporter::with_capacity(8).capacity(), 8);
    /// ```
    pub fn capacity(&self) -> usize {
        self.lock().capacity
    }

    /// Spans dropped so far, the oldest first, to keep the list within
    /// [`capacity`](Self::capacity). [`spans`](Self::spans)`().len() + dropped()` is every span
    /// kept since the start.
    ///
    /// ```
    /// use agentcore_telemetry::export::InMemorySpanExporter;
    /// assert_eq!(InMemorySpanExporter::new().dropped(), 0);
    /// ```
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    /// Batch sizes dropped so far, the oldest first, to keep [`batches`](Self::batches)
    /// within [`capacity`](Self::capacity).
    ///
    /// ```
    /// use agentcore_telemetry::export::InMemorySpanExporter;
    /// assert_eq!(InMemorySpanExporter::new().batches_dropped(), 0);
    /// ```
    pub fn batches_dropped(&self) -> u64 {
        self.lock().batches_dropped
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues answers for the next batches, in order (then back to `Accept`).
    ///
    /// ```
    /// use agentcore_telemetry::export::{InMemorySpanExporter, MemoryAnswer};
    /// InMemorySpanExporter::new().script([MemoryAnswer::Accept]);
    /// ```
    pub fn script(&self, answers: impl IntoIterator<Item = MemoryAnswer>) {
        self.lock().script.extend(answers);
    }

    /// The spans accepted so far, in export order (the last [`capacity`](Self::capacity)).
    ///
    /// ```
    /// use agentcore_telemetry::export::InMemorySpanExporter;
    /// assert_eq!(InMemorySpanExporter::new().spans().len(), 0);
    /// ```
    pub fn spans(&self) -> Vec<SpanRecord> {
        self.lock().spans.iter().cloned().collect()
    }

    /// The size of each batch exported so far (including failed ones; the last
    /// [`capacity`](Self::capacity)).
    ///
    /// ```
    /// use agentcore_telemetry::export::InMemorySpanExporter;
    /// assert!(InMemorySpanExporter::new().batches().is_empty());
    /// ```
    pub fn batches(&self) -> Vec<usize> {
        self.lock().batches.iter().copied().collect()
    }

    /// Whether [`SpanExporter::shutdown`] was called (on any clone). A handle that was shut
    /// down fails its exports ([`ExportError::Shutdown`]) and keeps none of their spans; its
    /// clones go on.
    ///
    /// ```
    /// use agentcore_telemetry::export::InMemorySpanExporter;
    /// assert!(!InMemorySpanExporter::new().is_shut_down());
    /// ```
    pub fn is_shut_down(&self) -> bool {
        self.lock().shut_down
    }
}

impl Default for InMemorySpanExporter {
    fn default() -> Self {
        Self::new()
    }
}

impl Clone for InMemorySpanExporter {
    /// Another handle on the same list (with its own, empty, batch in progress, and not
    /// shut down).
    fn clone(&self) -> Self {
        InMemorySpanExporter {
            shared: Arc::clone(&self.shared),
            batch: Vec::new(),
            shut_down: false,
        }
    }
}

impl fmt::Debug for InMemorySpanExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock();
        f.debug_struct("InMemorySpanExporter")
            .field("spans", &s.spans.len())
            .field("batches", &s.batches.len())
            .field("capacity", &s.capacity)
            .field("dropped", &s.dropped)
            .finish()
    }
}

impl SpanExporter for InMemorySpanExporter {
    fn add(&mut self, span: ExportSpan<'_>) {
        self.batch.push(span.record.clone());
    }

    fn export(&mut self, deadline: &Deadline) -> ExportOutcome {
        let n = self.batch.len() as u64;
        if self.shut_down {
            // OTel: after Shutdown, "subsequent calls to Export are not allowed and should
            // return a Failure result".
            self.batch.clear();
            return ExportOutcome::failed(n, ExportError::Shutdown);
        }
        let answer = {
            let mut s = self.lock();
            s.record_batch(self.batch.len());
            s.script.pop_front().unwrap_or(MemoryAnswer::Accept)
        };
        let mut batch = std::mem::take(&mut self.batch);
        let outcome = match answer {
            MemoryAnswer::Accept => ExportOutcome::exported(n),
            MemoryAnswer::Reject(r) => {
                let r = r.min(n);
                batch.truncate((n - r) as usize);
                ExportOutcome {
                    exported: n - r,
                    rejected: r,
                    error: Some(ExportError::Rejected {
                        spans: r,
                        message: "scripted rejection".into(),
                    }),
                    ..Default::default()
                }
            }
            MemoryAnswer::Fail(e) => {
                batch.clear();
                ExportOutcome::failed(n, e)
            }
            MemoryAnswer::Stall(d) => {
                if deadline.sleep(d) {
                    ExportOutcome::exported(n)
                } else {
                    batch.clear();
                    ExportOutcome::failed(n, ExportError::Timeout)
                }
            }
        };
        self.lock().keep(batch);
        outcome
    }

    fn shutdown(&mut self, _deadline: &Deadline) {
        self.shut_down = true;
        self.batch.clear();
        self.lock().shut_down = true;
    }

    fn component_type(&self) -> &'static str {
        "in_memory_span_exporter"
    }
}
