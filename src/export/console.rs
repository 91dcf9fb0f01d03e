//! [`ConsoleSpanExporter`]: OTLP JSON lines on standard output (`OTEL_TRACES_EXPORTER=console`
//! or `otlp/stdout`), one `TracesData` object per batch: the OTLP file format, which
//! `jq`, the Collector's `otlpjsonfile` receiver and the OTLP decoders read back.
//!
//! The writes happen on a thread of the exporter's own ("agentcore-console-writer", started
//! by the first export), so that an export returns by its deadline even when the output
//! blocks (a pipe nobody reads, a terminal paused with Ctrl-S): see
//! [`ConsoleSpanExporter`] for the queue between the two.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use super::exporter::{Deadline, ExportError, ExportOutcome, SpanExporter};
use super::otlp::{OtlpEncoder, Protocol};
use super::resource::Resource;
use super::source::ExportSpan;
use crate::unwind::panic_message;
use crate::user_fmt::display_text;

/// Bytes of encoded batches that may wait behind the line being written (4 MiB); a batch
/// that would go beyond is dropped. One batch alone is always taken, whatever its size.
const QUEUE_BYTES: usize = 4 << 20;

/// The longest wait before reading the deadline again (a shutdown may bring it forward).
const SLICE: Duration = Duration::from_millis(10);

/// Writes each batch as one line of OTLP JSON to a writer (standard output by default).
///
/// * **Deadlines.** [`export`](SpanExporter::export) hands the batch's line to the
///   exporter's writer thread and waits for it to be written (and flushed) until the
///   deadline: written, the batch is exported; the deadline passed first, it counts as
///   failed ([`ExportError::Timeout`]) and stays queued, so the thread may still write it
///   once the output moves again (like an OTLP request whose answer came too late).
///   [`shutdown`](SpanExporter::shutdown) returns by its deadline too, leaving a blocked
///   thread to finish, or stay blocked, on its own.
/// * **The queue** between the two holds at most 4 MiB of lines behind the one being
///   written (one line alone is always taken); a batch beyond that is dropped, counted
///   failed ([`ExportError::Io`]) and counted in [`dropped_batches`](Self::dropped_batches).
/// * **Broken lines.** When a write fails after part of a line went out, the next line
///   starts with a `\n`: only the failed batch's line is unreadable.
/// * **Closed standard output.** Rust's `Stdout` reports success when file descriptor 1 is
///   closed; on Linux, the [`stdout`](Self::stdout) exporter checks before each batch that
///   it is open, and fails the batch ([`ExportError::Io`]) when it is not. (Elsewhere such
///   a batch still counts as exported.)
/// * **After [`shutdown`](SpanExporter::shutdown)**, exports fail ([`ExportError::Shutdown`]).
/// * **Dropped without a shutdown**, the exporter waits up to one second for its writer to
///   write what waits and close the output (whose drop may write a trailer), blocking the
///   dropping thread meanwhile; an output still blocked then is left to the writer thread,
///   which ends once the output moves. Shut it down first to choose the wait.
/// * Strings are escaped for a terminal as well as for JSON: control characters (C0, DEL,
///   C1) and the bidi overrides and isolates are written as `\uXXXX`.
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
    shared: Arc<Shared>,
    /// The writer thread, once started (it then holds the output).
    thread: Option<JoinHandle<()>>,
    /// Writing to standard output (checked to be open before each batch).
    stdout: bool,
    shut_down: bool,
    /// The sequence number of the last batch queued.
    queued: u64,
}

/// What the exporter and its writer thread share.
struct Shared {
    state: Mutex<State>,
    /// Wakes the writer: a line was queued, or the exporter closed.
    work: Condvar,
    /// Wakes the exporter: a line was written, or the writer exited.
    done: Condvar,
}

#[derive(Default)]
struct State {
    /// The output, until the writer thread takes it.
    out: Option<Box<dyn Write + Send>>,
    /// Lines waiting, each with its batch's sequence number.
    queue: VecDeque<(u64, Vec<u8>)>,
    /// Their bytes.
    queued_bytes: usize,
    /// The sequence number of the last line written (or failed), and its error if it failed.
    finished: u64,
    error: Option<String>,
    /// A buffer given back by the writer, for the next line.
    spare: Vec<u8>,
    /// Batches dropped because the queue was full.
    dropped: u64,
    /// No more lines: the writer exits once the queue is empty.
    closed: bool,
    /// The writer has dropped the output and is returning (set however it ends, also when it
    /// unwinds: `Exit`).
    exited: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits on `cv` until `done(state)` or the deadline; whether `done`.
    fn wait<'a>(
        &self,
        mut s: MutexGuard<'a, State>,
        cv: &Condvar,
        deadline: &Deadline,
        done: impl Fn(&State) -> bool,
    ) -> (MutexGuard<'a, State>, bool) {
        loop {
            if done(&s) {
                return (s, true);
            }
            let left = deadline.remaining();
            if left.is_zero() {
                return (s, false);
            }
            s = cv
                .wait_timeout(s, left.min(SLICE))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl ConsoleSpanExporter {
    /// Writes to standard output.
    ///
    /// ```
    /// use agentcore_telemetry::export::{ConsoleSpanExporter, Resource};
    /// let _ = ConsoleSpanExporter::stdout(&Resource::new("svc"));
    /// ```
    pub fn stdout(resource: &Resource) -> Self {
        let mut exporter = Self::with_writer(resource, std::io::stdout());
        exporter.stdout = true;
        exporter
    }

    /// Writes to `out`.
    pub fn with_writer(resource: &Resource, out: impl Write + Send + 'static) -> Self {
        ConsoleSpanExporter {
            encoder: OtlpEncoder::new(Protocol::HttpJson, resource),
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    out: Some(Box::new(out)),
                    ..State::default()
                }),
                work: Condvar::new(),
                done: Condvar::new(),
            }),
            thread: None,
            stdout: false,
            shut_down: false,
            queued: 0,
        }
    }

    /// Batches dropped so far because the output was blocked and the queue (4 MiB of lines
    /// behind the one being written) was full. Their spans were counted failed too.
    ///
    /// ```
    /// use agentcore_telemetry::export::{ConsoleSpanExporter, Resource};
    /// assert_eq!(ConsoleSpanExporter::with_writer(&Resource::new("svc"), std::io::sink()).dropped_batches(), 0);
    /// ```
    pub fn dropped_batches(&self) -> u64 {
        self.shared.lock().dropped
    }

    /// Starts the writer thread, once.
    fn start(&mut self) -> io::Result<()> {
        if self.thread.is_none() {
            let shared = Arc::clone(&self.shared);
            self.thread = Some(
                std::thread::Builder::new()
                    .name("agentcore-console-writer".into())
                    .spawn(move || write_lines(&shared))?,
            );
        }
        Ok(())
    }

    /// Closes the queue and waits, until `deadline`, for the writer to write what waits, drop
    /// the output (whose own drop may write: a gzip trailer, a socket's close) and exit; joins
    /// it if it did, leaves it to end on its own if not.
    fn close(&mut self, deadline: &Deadline) {
        let mut s = self.shared.lock();
        s.closed = true;
        self.shared.work.notify_all();
        let Some(thread) = self.thread.take() else {
            return;
        };
        let (s, exited) = self
            .shared
            .wait(s, &self.shared.done, deadline, |s| s.exited);
        drop(s);
        if exited {
            let _ = thread.join();
        }
    }
}

/// How long dropping an exporter that was not shut down waits for its writer (see
/// [`ConsoleSpanExporter`]'s `Drop`).
const DROP_WAIT: Duration = Duration::from_secs(1);

impl Drop for ConsoleSpanExporter {
    /// Without a [`shutdown`](SpanExporter::shutdown) before (which waited already): lets the
    /// writer thread write what waits, drop the output and exit, waiting for it up to one
    /// second (an output that blocks is left to its thread).
    fn drop(&mut self) {
        let deadline = if self.shut_down {
            Deadline::after(Duration::ZERO)
        } else {
            Deadline::after(DROP_WAIT)
        };
        self.close(&deadline);
    }
}

/// Sets *exited* and wakes the exporter when the writer thread ends, however it ends; dropped
/// after the output (declared before it), so *exited* also says the output is gone.
struct Exit<'a>(&'a Shared);

impl Drop for Exit<'_> {
    fn drop(&mut self) {
        self.0.lock().exited = true;
        self.0.done.notify_all();
    }
}

/// The writer thread: writes the queued lines in order, until closed.
fn write_lines(shared: &Shared) {
    let _exit = Exit(shared);
    let Some(mut out) = shared.lock().out.take() else {
        return;
    };
    // A line went out in part: the next one starts on a line of its own.
    let mut broken = false;
    loop {
        let mut s = shared.lock();
        let (seq, line) = loop {
            if let Some(next) = s.queue.pop_front() {
                s.queued_bytes -= next.1.len();
                break next;
            }
            if s.closed {
                return; // `out`, then `_exit`, drop here
            }
            s = shared.work.wait(s).unwrap_or_else(|e| e.into_inner());
        };
        drop(s);
        let result = catch_unwind(AssertUnwindSafe(|| {
            write_line(&mut *out, &line, &mut broken)
        }))
        .unwrap_or_else(|payload| {
            // Part of the line may have gone out before the panic: start the next one afresh.
            broken = true;
            // The payload is taken apart (and dropped) without unwinding out of here.
            let message = panic_message(payload);
            Err(io::Error::other(format!("the writer panicked: {message}")))
        });
        // Formatted before the lock and `finished`: the writer's error is the caller's, whose
        // `Display` may fail or panic (review helper-97: `to_string()` panicked here after
        // `finished` was set, so the failed line read as written and the thread was gone).
        let error = result.err().map(|e| display_text(&e));
        let mut s = shared.lock();
        s.finished = seq;
        s.error = error;
        if s.spare.capacity() < line.capacity() {
            s.spare = line;
        }
        shared.done.notify_all();
    }
}

/// Writes `line` (which ends in `\n`) and flushes; first a `\n` if the last line was
/// `broken`, which it then says of this one.
fn write_line(out: &mut dyn Write, line: &[u8], broken: &mut bool) -> io::Result<()> {
    if *broken {
        put(out, b"\n", &mut 0)?;
        *broken = false;
    }
    let mut written = 0;
    let result = put(out, line, &mut written).and_then(|()| out.flush());
    // (A failed flush may leave part of the line unwritten as well.)
    *broken = result.is_err() && written > 0;
    result
}

/// `write_all`, counting the bytes that went out.
fn put(out: &mut dyn Write, bytes: &[u8], written: &mut usize) -> io::Result<()> {
    while *written < bytes.len() {
        match out.write(&bytes[*written..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => *written = (*written + n).min(bytes.len()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Whether file descriptor 1 is open (Rust's `Stdout` turns `EBADF` into success).
#[cfg(target_os = "linux")]
fn stdout_is_open() -> bool {
    // SAFETY: `fcntl(F_GETFD)` only reads the flags of a descriptor number (no pointer, no
    // change); any number is allowed, a closed one fails with EBADF.
    let flags = unsafe { libc::fcntl(libc::STDOUT_FILENO, libc::F_GETFD) };
    flags != -1 || io::Error::last_os_error().raw_os_error() != Some(libc::EBADF)
}

/// Not checked outside Linux (no `libc` dependency there).
#[cfg(not(target_os = "linux"))]
fn stdout_is_open() -> bool {
    true
}

impl fmt::Debug for ConsoleSpanExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.shared.lock();
        f.debug_struct("ConsoleSpanExporter")
            .field("batch", &self.encoder.len())
            .field("queued_bytes", &s.queued_bytes)
            .field("dropped_batches", &s.dropped)
            .finish()
    }
}

impl SpanExporter for ConsoleSpanExporter {
    fn add(&mut self, span: ExportSpan<'_>) {
        self.encoder.add(&span);
    }

    fn export(&mut self, deadline: &Deadline) -> ExportOutcome {
        let n = self.encoder.len() as u64;
        if n == 0 {
            return ExportOutcome::default();
        }
        if self.shut_down {
            self.encoder.clear();
            return ExportOutcome::failed(n, ExportError::Shutdown);
        }
        if self.stdout && !stdout_is_open() {
            self.encoder.clear();
            let detail = "standard output (file descriptor 1) is closed".into();
            return ExportOutcome::failed(n, ExportError::Io { detail });
        }
        let mut line = std::mem::take(&mut self.shared.lock().spare);
        line.clear();
        self.encoder.write_request(&mut line);
        self.encoder.clear();
        line.push(b'\n');
        if let Err(e) = self.start() {
            let detail = format!("could not start the console writer thread: {e}");
            return ExportOutcome::failed(n, ExportError::Io { detail });
        }
        let mut s = self.shared.lock();
        if s.queued_bytes > 0 && s.queued_bytes + line.len() > QUEUE_BYTES {
            s.dropped += 1;
            let detail = format!(
                "the output is blocked and {} bytes already wait to be written (at most {QUEUE_BYTES}): batch dropped",
                s.queued_bytes
            );
            return ExportOutcome::failed(n, ExportError::Io { detail });
        }
        self.queued += 1;
        let seq = self.queued;
        s.queued_bytes += line.len();
        s.queue.push_back((seq, line));
        self.shared.work.notify_one();
        let (s, answered) = self.shared.wait(s, &self.shared.done, deadline, |s| {
            s.finished >= seq || s.exited
        });
        let written = answered && s.finished >= seq;
        if answered && !written {
            // The writer thread is gone (it cannot be, short of a bug: it catches the output's
            // panics), so nothing more will be written.
            let detail = "the console writer thread has ended".into();
            return ExportOutcome::failed(n, ExportError::Io { detail });
        }
        match (written, &s.error) {
            (false, _) => ExportOutcome::failed(n, ExportError::Timeout),
            (true, None) => ExportOutcome::exported(n),
            (true, Some(detail)) => ExportOutcome::failed(
                n,
                ExportError::Io {
                    detail: detail.clone(),
                },
            ),
        }
    }

    /// Lets the writer thread write what waits and exit, waiting for it until `deadline`.
    /// Exports fail from now on.
    fn shutdown(&mut self, deadline: &Deadline) {
        self.shut_down = true;
        self.encoder.clear();
        self.close(deadline);
    }

    fn component_type(&self) -> &'static str {
        "console_span_exporter"
    }
}
