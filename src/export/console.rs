//! [`ConsoleSpanExporter`]: OTLP JSON lines on standard output (`OTEL_TRACES_EXPORTER=console`
//! or `otlp/stdout`), one `TracesData` object per batch: the OTLP file format, which
//! `jq`, the Collector's `otlpjsonfile` receiver and the OTLP decoders read back.

use std::fmt;
use std::io::Write;

use super::exporter::{Deadline, ExportError, ExportOutcome, SpanExporter};
use super::otlp::{OtlpEncoder, Protocol};
use super::resource::Resource;
use super::source::ExportSpan;

/// Writes each batch as one line of OTLP JSON to a writer (standard output by default).
///
/// ```
/// use agentcore_telemetry::export::{ConsoleSpanExporter, Deadline, ExportSpan, Resource, SpanExporter};
/// use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};
/// use std::sync::{Arc, Mutex};
///
/// #[derive(Clone, Default)]
/// struct Shared(Arc<Mutex<Vec<u8>>>);
/// impl std::io::Write for Shared {
///     fn write(&mut self, b: &[u8]) -> std::io::Result<usize> { self.0.lock().unwrap().write(b) }
///     fn flush(&mut self) -> std::io::Result<()> { Ok(()) }
/// }
///
/// let tracer = DistributedTracer::new(TracerConfig::default());
/// let span = tracer.start_span("op", SpanKind::Internal, []);
/// let id = span.span_id();
/// span.end();
/// let record = tracer.get_span_by_id(id).unwrap();
///
/// let out = Shared::default();
/// let mut exporter = ConsoleSpanExporter::with_writer(&Resource::new("svc"), out.clone());
/// exporter.add(ExportSpan::new(&record));
/// let outcome = exporter.export(&Deadline::after(std::time::Duration::from_secs(1)));
/// assert_eq!(outcome.exported, 1);
/// let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
/// assert!(text.starts_with("{\"resourceSpans\":[") && text.ends_with("}\n"));
/// assert_eq!(text.lines().count(), 1);
/// ```
pub struct ConsoleSpanExporter {
    encoder: OtlpEncoder,
    out: Box<dyn Write + Send>,
    line: Vec<u8>,
}

impl ConsoleSpanExporter {
    /// Writes to standard output.
    ///
    /// ```
    /// use agentcore_telemetry::export::{ConsoleSpanExporter, Resource};
    /// let _ = ConsoleSpanExporter::stdout(&Resource::new("svc"));
    /// ```
    pub fn stdout(resource: &Resource) -> Self {
        Self::with_writer(resource, std::io::stdout())
    }

    /// Writes to `out`.
    pub fn with_writer(resource: &Resource, out: impl Write + Send + 'static) -> Self {
        ConsoleSpanExporter {
            encoder: OtlpEncoder::new(Protocol::HttpJson, resource),
            out: Box::new(out),
            line: Vec::new(),
        }
    }
}

impl fmt::Debug for ConsoleSpanExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsoleSpanExporter")
            .field("batch", &self.encoder.len())
            .finish()
    }
}

impl SpanExporter for ConsoleSpanExporter {
    fn add(&mut self, span: ExportSpan<'_>) {
        self.encoder.add(&span);
    }

    fn export(&mut self, _deadline: &Deadline) -> ExportOutcome {
        let n = self.encoder.len() as u64;
        if n == 0 {
            return ExportOutcome::default();
        }
        self.line.clear();
        self.encoder.write_request(&mut self.line);
        self.encoder.clear();
        self.line.push(b'\n');
        match self
            .out
            .write_all(&self.line)
            .and_then(|_| self.out.flush())
        {
            Ok(()) => ExportOutcome::exported(n),
            Err(e) => ExportOutcome::failed(
                n,
                ExportError::Io {
                    detail: e.to_string(),
                },
            ),
        }
    }

    fn shutdown(&mut self, _deadline: &Deadline) {
        let _ = self.out.flush();
    }

    fn component_type(&self) -> &'static str {
        "console_span_exporter"
    }
}
