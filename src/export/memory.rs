//! [`InMemorySpanExporter`]: keeps exported spans in memory, for tests. It can be told to
//! fail, reject or stall, to exercise the processor's accounting and deadlines.

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

#[derive(Default)]
struct State {
    spans: Vec<SpanRecord>,
    batches: Vec<usize>,
    script: VecDeque<MemoryAnswer>,
    shut_down: bool,
}

/// A [`SpanExporter`] that clones each span it accepts into a shared list (clones of the
/// exporter share it: keep one to read, hand another to the processor). Exports answer
/// [`MemoryAnswer::Accept`] unless [scripted](Self::script) otherwise.
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
    /// An exporter with an empty list.
    ///
    /// ```
    /// use agentcore_telemetry::export::InMemorySpanExporter;
    /// assert!(InMemorySpanExporter::new().spans().is_empty());
    /// ```
    pub fn new() -> Self {
        InMemorySpanExporter {
            shared: Arc::new(Mutex::new(State::default())),
            batch: Vec::new(),
            shut_down: false,
        }
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

    /// The spans accepted so far, in export order.
    ///
    /// ```
    /// use agentcore_telemetry::export::InMemorySpanExporter;
    /// assert_eq!(InMemorySpanExporter::new().spans().len(), 0);
    /// ```
    pub fn spans(&self) -> Vec<SpanRecord> {
        self.lock().spans.clone()
    }

    /// The size of each batch exported so far (including failed ones).
    ///
    /// ```
    /// use agentcore_telemetry::export::InMemorySpanExporter;
    /// assert!(InMemorySpanExporter::new().batches().is_empty());
    /// ```
    pub fn batches(&self) -> Vec<usize> {
        self.lock().batches.clone()
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
            s.batches.push(self.batch.len());
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
        self.lock().spans.append(&mut batch);
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
