//! The [`SpanExporter`] trait, what one export did ([`ExportOutcome`]), why one failed
//! ([`ExportError`]), and the [`Deadline`] every export keeps.

use crate::net::deadline::deadline_after;
use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::source::ExportSpan;

/// Turns batches of finished spans into something outside the process (a collector, a
/// stream). The batch processor calls it from its own thread, never two calls at once:
/// [`add`](Self::add) once per span of a batch (encode it; the borrow ends when `add`
/// returns), then [`export`](Self::export) once.
///
/// A panic in any of its methods is caught by the processor, which goes on: the spans of
/// that batch are counted as failed ([`ExportError::Panicked`]), so an exporter should not
/// keep them to send with a later batch (clear the batch also while unwinding, as the OTLP
/// exporter does); a span whose `add` panicked counts as failed whatever `export` reports.
///
/// ```
/// use agentcore_telemetry::export::{Deadline, ExportOutcome, ExportSpan, SpanExporter};
///
/// /// Counts spans and sends nothing.
/// #[derive(Default)]
/// struct Counting { batch: u64, total: u64 }
///
/// impl SpanExporter for Counting {
///     fn add(&mut self, _span: ExportSpan<'_>) {
///         self.batch += 1;
///     }
///     fn export(&mut self, _deadline: &Deadline) -> ExportOutcome {
///         self.total += self.batch;
///         ExportOutcome::exported(std::mem::take(&mut self.batch))
///     }
/// }
///
/// let mut exporter = Counting::default();
/// let outcome = exporter.export(&Deadline::after(std::time::Duration::from_secs(1)));
/// assert_eq!(outcome.exported, 0);
/// ```
pub trait SpanExporter: Send {
    /// Adds one span to the batch being built. Called on the exporter thread while the
    /// source holds the span's slot: encode and return, never block.
    fn add(&mut self, span: ExportSpan<'_>);

    /// Sends the batch built since the last call and starts a new one. Returns by
    /// `deadline` (checking it between steps, as it may be cut short by a shutdown), with
    /// every added span counted once in the outcome.
    fn export(&mut self, deadline: &Deadline) -> ExportOutcome;

    /// Releases what the exporter holds (connections, buffered output), by `deadline`.
    fn shutdown(&mut self, deadline: &Deadline) {
        let _ = deadline;
    }

    /// The `otel.component.type` of the exporter in the self-metrics (OTel semantic
    /// conventions: `otlp_http_span_exporter`, `otlp_http_json_span_exporter`, ...).
    fn component_type(&self) -> &'static str {
        "span_exporter"
    }
}

impl<E: SpanExporter + ?Sized> SpanExporter for Box<E> {
    fn add(&mut self, span: ExportSpan<'_>) {
        (**self).add(span)
    }
    fn export(&mut self, deadline: &Deadline) -> ExportOutcome {
        (**self).export(deadline)
    }
    fn shutdown(&mut self, deadline: &Deadline) {
        (**self).shutdown(deadline)
    }
    fn component_type(&self) -> &'static str {
        (**self).component_type()
    }
}

/// What one [`SpanExporter::export`] did with its batch: each span is counted once, as
/// exported, rejected (the receiver refused it in a partial success) or failed (not
/// delivered, after any retries).
///
/// ```
/// use agentcore_telemetry::export::{ExportError, ExportOutcome};
/// let ok = ExportOutcome::exported(3);
/// assert_eq!((ok.exported, ok.failed, ok.spans()), (3, 0, 3));
/// let failed = ExportOutcome::failed(2, ExportError::Timeout);
/// assert_eq!(failed.error, Some(ExportError::Timeout));
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExportOutcome {
    /// Spans the receiver accepted.
    pub exported: u64,
    /// Spans the receiver refused in a partial success (never retried).
    pub rejected: u64,
    /// Spans not delivered.
    pub failed: u64,
    /// Why spans were rejected or failed (the last such cause), if any were.
    pub error: Option<ExportError>,
    /// A message the receiver sent with a success (a partial success with 0 rejected spans
    /// and a message is a warning, by the OTLP specification).
    pub warning: Option<String>,
    /// The HTTP status of the last response, when there was one.
    pub http_status: Option<u16>,
    /// Connection attempts not started because the process-wide cap on connection threads
    /// (16, the threads that resolve names and connect; those a silent resolver holds stay
    /// alive past their caller) was reached. Each is a failed attempt like a refused
    /// connection: retried, and the spans count as `failed` ([`ExportError::Connection`]) if
    /// none delivered them; this counts the attempts, not spans. The OTLP exporter fills it.
    ///
    /// ```
    /// use agentcore_telemetry::export::ExportOutcome;
    /// assert_eq!(ExportOutcome::exported(1).connect_thread_cap, 0);
    /// ```
    pub connect_thread_cap: u64,
}

impl ExportOutcome {
    /// `n` spans exported.
    ///
    /// ```
    /// use agentcore_telemetry::export::ExportOutcome;
    /// assert!(ExportOutcome::exported(1).error.is_none());
    /// ```
    pub fn exported(n: u64) -> Self {
        ExportOutcome {
            exported: n,
            ..Default::default()
        }
    }

    /// `n` spans failed because of `error`.
    ///
    /// ```
    /// use agentcore_telemetry::export::{ExportError, ExportOutcome};
    /// assert_eq!(ExportOutcome::failed(4, ExportError::Timeout).failed, 4);
    /// ```
    pub fn failed(n: u64, error: ExportError) -> Self {
        ExportOutcome {
            failed: n,
            error: Some(error),
            ..Default::default()
        }
    }

    /// All spans counted: exported + rejected + failed.
    ///
    /// ```
    /// use agentcore_telemetry::export::ExportOutcome;
    /// assert_eq!(ExportOutcome::exported(2).spans(), 2);
    /// ```
    pub fn spans(&self) -> u64 {
        // Saturating: an exporter's outcome is the exporter's to fill, garbage included (review
        // helper-97: a sum that overflowed panicked the span processor's thread).
        self.exported
            .saturating_add(self.rejected)
            .saturating_add(self.failed)
    }

    /// Adds `other`'s counts to this one (its error and status replace this one's).
    pub(crate) fn merge(&mut self, other: ExportOutcome) {
        self.exported = self.exported.saturating_add(other.exported);
        self.rejected = self.rejected.saturating_add(other.rejected);
        self.failed = self.failed.saturating_add(other.failed);
        if other.error.is_some() {
            self.error = other.error;
        }
        if other.warning.is_some() {
            self.warning = other.warning;
        }
        if other.http_status.is_some() {
            self.http_status = other.http_status;
        }
        self.connect_thread_cap = self
            .connect_thread_cap
            .saturating_add(other.connect_thread_cap);
    }
}

/// Why an export (or a flush or shutdown) did not deliver everything.
///
/// [`ExportError::error_type`] is the `error.type` label of the self-metrics.
///
/// ```
/// use agentcore_telemetry::export::ExportError;
/// let e = ExportError::Http { status: 400, message: "bad span".into() };
/// assert_eq!(e.error_type(), "400");
/// assert_eq!(e.to_string(), "the collector answered HTTP 400: bad span");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExportError {
    /// The deadline passed first (a hung or slow collector, or a flush/shutdown deadline).
    Timeout,
    /// No connection, or it broke before a response, after the retries the deadline allowed.
    Connection {
        /// What the operating system said.
        detail: String,
    },
    /// The collector answered with an error status (after retries, for 429/502/503/504).
    Http {
        /// The HTTP status code.
        status: u16,
        /// The `google.rpc.Status` message of the body, or why a retry was not attempted.
        message: String,
    },
    /// The response was malformed or larger than the 4 MiB the exporter reads.
    InvalidResponse {
        /// What was wrong.
        detail: String,
    },
    /// One span alone encodes to more than the request limit (20 MiB by default), so it
    /// cannot be sent.
    RequestTooLarge {
        /// Its encoded size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// The receiver refused spans in a partial success.
    Rejected {
        /// How many.
        spans: u64,
        /// The receiver's `error_message`.
        message: String,
    },
    /// Writing the output failed (console exporter).
    Io {
        /// What the operating system said.
        detail: String,
    },
    /// The processor was shut down.
    Shutdown,
    /// The exporter panicked (in `add`, `export` or `shutdown`); the processor caught it and
    /// counted the spans it held as failed.
    Panicked {
        /// The panic's message, if it was a string.
        message: String,
    },
}

impl ExportError {
    /// The `error.type` attribute of the OpenTelemetry SDK self-metrics: `timeout`,
    /// `connection`, the HTTP status code (`"400"`), `invalid_response`,
    /// `request_too_large`, `rejected`, `io`, `shutdown` or `panic`.
    ///
    /// ```
    /// use agentcore_telemetry::export::ExportError;
    /// assert_eq!(ExportError::Timeout.error_type(), "timeout");
    /// ```
    pub fn error_type(&self) -> Cow<'static, str> {
        match self {
            ExportError::Timeout => "timeout".into(),
            ExportError::Connection { .. } => "connection".into(),
            ExportError::Http { status, .. } => status.to_string().into(),
            ExportError::InvalidResponse { .. } => "invalid_response".into(),
            ExportError::RequestTooLarge { .. } => "request_too_large".into(),
            ExportError::Rejected { .. } => "rejected".into(),
            ExportError::Io { .. } => "io".into(),
            ExportError::Shutdown => "shutdown".into(),
            ExportError::Panicked { .. } => "panic".into(),
        }
    }
}

impl fmt::Display for ExportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExportError::Timeout => f.write_str("the export deadline passed"),
            ExportError::Connection { detail } => {
                write!(f, "could not reach the collector: {detail}")
            }
            ExportError::Http { status, message } if message.is_empty() => {
                write!(f, "the collector answered HTTP {status}")
            }
            ExportError::Http { status, message } => {
                write!(f, "the collector answered HTTP {status}: {message}")
            }
            ExportError::InvalidResponse { detail } => {
                write!(f, "invalid response from the collector: {detail}")
            }
            ExportError::RequestTooLarge { bytes, limit } => write!(
                f,
                "a span encodes to {bytes} bytes, over the {limit}-byte request limit"
            ),
            ExportError::Rejected { spans, message } => {
                write!(f, "the collector rejected {spans} span(s): {message}")
            }
            ExportError::Io { detail } => write!(f, "writing spans failed: {detail}"),
            ExportError::Shutdown => f.write_str("the span processor is shut down"),
            ExportError::Panicked { message } => write!(f, "the exporter panicked: {message}"),
        }
    }
}

impl std::error::Error for ExportError {}

/// When an export must be over. The batch processor can bring it forward from another
/// thread (a shutdown during a slow export), so exporters read it again between steps
/// instead of computing one timeout up front.
///
/// ```
/// use agentcore_telemetry::export::Deadline;
/// use std::time::Duration;
///
/// let d = Deadline::after(Duration::from_secs(60));
/// assert!(!d.passed());
/// assert!(d.remaining() <= Duration::from_secs(60));
/// assert!(Deadline::after(Duration::ZERO).passed());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Deadline<'a> {
    at: Instant,
    cut: Option<&'a DeadlineCut>,
}

impl<'a> Deadline<'a> {
    /// The deadline `at`.
    ///
    /// ```
    /// use agentcore_telemetry::export::Deadline;
    /// let now = std::time::Instant::now();
    /// assert_eq!(Deadline::at(now).instant(), now);
    /// ```
    pub fn at(at: Instant) -> Self {
        Deadline { at, cut: None }
    }

    /// The deadline `timeout` from now.
    ///
    /// ```
    /// use agentcore_telemetry::export::Deadline;
    /// assert!(!Deadline::after(std::time::Duration::from_secs(1)).passed());
    /// ```
    pub fn after(timeout: Duration) -> Self {
        Deadline::at(deadline_after(timeout))
    }

    /// This deadline, or `at` if that is earlier (a cut still applies).
    pub(crate) fn earlier(&self, at: Instant) -> Deadline<'a> {
        Deadline {
            at: self.at.min(at),
            cut: self.cut,
        }
    }

    pub(crate) fn with_cut(at: Instant, cut: &'a DeadlineCut) -> Self {
        Deadline { at, cut: Some(cut) }
    }

    /// The deadline now (it may have been brought forward since the export started).
    ///
    /// ```
    /// use agentcore_telemetry::export::Deadline;
    /// let d = Deadline::after(std::time::Duration::from_secs(1));
    /// assert!(d.instant() > std::time::Instant::now());
    /// ```
    pub fn instant(&self) -> Instant {
        match self.cut.and_then(DeadlineCut::get) {
            Some(cut) => cut.min(self.at),
            None => self.at,
        }
    }

    /// Time left (zero once passed).
    ///
    /// ```
    /// use agentcore_telemetry::export::Deadline;
    /// assert_eq!(Deadline::after(std::time::Duration::ZERO).remaining(), std::time::Duration::ZERO);
    /// ```
    pub fn remaining(&self) -> Duration {
        self.instant().saturating_duration_since(Instant::now())
    }

    /// Whether it has passed.
    ///
    /// ```
    /// use agentcore_telemetry::export::Deadline;
    /// assert!(Deadline::at(std::time::Instant::now()).passed());
    /// ```
    pub fn passed(&self) -> bool {
        Instant::now() >= self.instant()
    }

    /// Sleeps for `d` or until the deadline, whichever comes first, waking at least every
    /// 10 ms to notice a deadline brought forward. Returns `false` if the deadline passed.
    pub(crate) fn sleep(&self, d: Duration) -> bool {
        let until = deadline_after(d);
        loop {
            let now = Instant::now();
            let end = until.min(self.instant());
            if now >= end {
                return now < self.instant();
            }
            std::thread::sleep((end - now).min(Duration::from_millis(10)));
        }
    }
}

/// A deadline another thread can bring forward: nanoseconds after `epoch`, `u64::MAX` when
/// unset. Relaxed ordering is enough: it carries no data, and a reader that sees it late
/// notices on its next check (at most 10 ms later, see [`Deadline::sleep`] and the sliced
/// socket timeouts of the transport).
#[derive(Debug)]
pub(crate) struct DeadlineCut {
    epoch: Instant,
    nanos: AtomicU64,
}

impl DeadlineCut {
    pub(crate) fn new() -> Self {
        DeadlineCut {
            epoch: Instant::now(),
            nanos: AtomicU64::new(u64::MAX),
        }
    }

    /// Brings the deadline forward to `at` (never later than an earlier cut).
    pub(crate) fn cut(&self, at: Instant) {
        let n = at.saturating_duration_since(self.epoch).as_nanos();
        let n = u64::try_from(n).unwrap_or(u64::MAX - 1);
        self.nanos.fetch_min(n, Ordering::Relaxed);
    }

    fn get(&self) -> Option<Instant> {
        match self.nanos.load(Ordering::Relaxed) {
            u64::MAX => None,
            n => Some(self.epoch + Duration::from_nanos(n)),
        }
    }
}
