//! `OTEL_TRACES_EXPORTER=otlp/stdout` writes OTLP JSON lines to standard output, one
//! `TracesData` per batch (`console`: per span), which the official strict OTLP JSON classes
//! decode.
//!
//! The parent test runs this test binary again as a child (with the variable set), so the
//! child's real standard output can be read.
//!
//! Then the exporter's own rules: an export returns by its deadline when the output blocks
//! (and the batch processor's shutdown with it), a blocked output's queue is bounded, a line
//! that failed half-way does not swallow the next one, a closed standard output is a
//! failure, strings are safe to print on a terminal, and exports after shutdown fail.
#![cfg(feature = "otlp")]

mod support;

use std::io::{self, Write};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agentcore_telemetry::export::{
    BatchConfig, BatchSpanProcessor, ConsoleSpanExporter, Deadline, ExportConfig, ExportError,
    ExportSpan, MemorySpanSource, Resource, SpanExporter, TracesExporter,
};
use agentcore_telemetry::{DistributedTracer, KeyValue, SpanKind, SpanRecord, TracerConfig};
use serde_json::Value;
use support::otlp::{assert_same, decode, expected_span, spans_of};

const CHILD: &str = "AGENTCORE_CONSOLE_EXPORT_CHILD";

fn records() -> Vec<SpanRecord> {
    // Only the pipeline under test prints: the tracer itself would export too, since the
    // child's environment says OTEL_TRACES_EXPORTER=console.
    let tracer = DistributedTracer::new(TracerConfig {
        from_env: false,
        ..TracerConfig::default()
    });
    let root = tracer.start_span("console_root", SpanKind::Server, [KeyValue::new("n", 7)]);
    let trace = root.trace_id();
    let mut child = tracer.start_span("console_child", SpanKind::Internal, []);
    child.add_event("line\nbreak \"quoted\"", []);
    child.end();
    root.end();
    tracer.get_trace_spans(trace)
}

/// The child's side: export through whatever the environment configures.
#[test]
fn console_export_child_process() {
    if std::env::var_os(CHILD).is_none() {
        return; // run by `console_exporter_writes_otlp_json_lines` only
    }
    let from_env = ExportConfig::from_env().unwrap();
    assert_eq!(from_env.config.exporter, TracesExporter::Console);
    let source = MemorySpanSource::new(64);
    let processor = from_env
        .config
        .start(source.clone(), Some("console-test"))
        .unwrap()
        .unwrap();
    for r in records() {
        source.push(r);
    }
    processor.force_flush(Duration::from_secs(5)).unwrap();
    processor.shutdown(Duration::from_secs(5)).unwrap();
}

/// The OTLP JSON lines the child writes with `OTEL_TRACES_EXPORTER=exporter`.
fn child_lines(exporter: &str) -> Vec<String> {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "console_export_child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .env("OTEL_TRACES_EXPORTER", exporter)
        .env("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=ci")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // (The harness prints "test ... " before the child's output, on the same line.)
    stdout
        .lines()
        .filter_map(|l| l.find("{\"resourceSpans\"").map(|i| l[i..].to_owned()))
        .collect()
}

/// The specification pairs the exporters `OTEL_TRACES_EXPORTER` chooses with processors: "by
/// default the standard output exporter SHOULD be paired with a simple processor"
/// (trace/sdk_exporters/stdout.md), and the OTLP file exporter (`otlp/stdout`) "SHOULD be
/// paired with a batching processor" (protocol/file-exporter.md). `console` got the batch
/// processor's defaults: spans up to 5 s late, 512 to a line. It now exports each span on its
/// own as soon as the exporter thread sees it (a batch of one): one line per span.
#[test]
fn console_writes_one_line_per_span_and_otlp_stdout_one_per_batch() {
    require_otlp_oracles!("console_writes_one_line_per_span_and_otlp_stdout_one_per_batch");
    let lines = child_lines("console");
    assert_eq!(lines.len(), 2, "console: one line per span: {lines:#?}");
    for (line, name) in lines.iter().zip(["console_root", "console_child"]) {
        let spans = spans_of(&decode(line.as_bytes(), true)["decoded"]);
        assert_eq!(spans.len(), 1, "{line}");
        assert_eq!(spans[0]["name"], name);
    }
    assert_eq!(
        child_lines("otlp/stdout").len(),
        1,
        "otlp/stdout: one batch"
    );
}

#[test]
fn console_exporter_writes_otlp_json_lines() {
    require_otlp_oracles!("console_exporter_writes_otlp_json_lines");
    let lines = child_lines("otlp/stdout");
    assert_eq!(lines.len(), 1, "one batch, one line: {lines:#?}");
    let decoded = decode(lines[0].as_bytes(), true);
    assert_eq!(decoded["strict_errors"], Value::Array(vec![]));
    let resource = &decoded["decoded"]["resource_spans"][0]["resource"];
    assert!(resource.as_array().unwrap().contains(&serde_json::json!([
        "service.name",
        "string",
        "console-test"
    ])));
    assert!(resource.as_array().unwrap().contains(&serde_json::json!([
        "deployment.environment.name",
        "string",
        "ci"
    ])));
    let spans = spans_of(&decoded["decoded"]);
    let names: Vec<&str> = spans.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["console_root", "console_child"]);
    // Field by field, against what the same records would encode to (ids and times are the
    // child's, so take them from the decoded line).
    for (got, mut want) in spans.iter().zip(records().iter().map(|r| {
        expected_span(&ExportSpan {
            parent_is_remote: Some(false),
            ..ExportSpan::new(r)
        })
    })) {
        for k in ["trace_id", "span_id", "parent_span_id", "start", "end"] {
            want[k] = got[k].clone();
        }
        for (i, e) in want["events"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .enumerate()
        {
            e["time"] = got["events"][i]["time"].clone();
        }
        // The console source's records carry "unknown" remoteness for children.
        want["flags"] = got["flags"].clone();
        assert_same(got, &want, "span");
    }
}

fn quiet_tracer() -> DistributedTracer {
    DistributedTracer::new(TracerConfig {
        from_env: false,
        ..TracerConfig::default()
    })
}

fn one_record(tracer: &DistributedTracer, name: &'static str, attrs: Vec<KeyValue>) -> SpanRecord {
    let span = tracer.start_span(name, SpanKind::Internal, attrs);
    let id = span.span_id();
    span.end();
    tracer.get_span_by_id(id).unwrap()
}

/// A span whose line (256 KiB) is more than a pipe's buffer (64 KiB) holds.
fn big_record(tracer: &DistributedTracer) -> SpanRecord {
    one_record(
        tracer,
        "big",
        vec![KeyValue::new("blob", "x".repeat(256 * 1024))],
    )
}

/// A pipe nobody reads: (its read end, kept open; its write end), whose writes block once
/// the kernel's buffer is full.
#[cfg(target_os = "linux")]
fn unread_pipe() -> (std::fs::File, std::fs::File) {
    use std::os::fd::FromRawFd;
    let mut fds = [0i32; 2];
    // SAFETY: `fds` has room for the two descriptors `pipe` writes.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: both descriptors were just opened by `pipe` and are owned by nothing else.
    unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    }
}

/// A writer whose bytes the test can read.
#[derive(Clone, Default)]
struct Shared {
    out: Arc<Mutex<Vec<u8>>>,
    /// Accepts this many bytes more, then fails once with `WouldBlock`.
    fail_after: Arc<Mutex<Option<usize>>>,
}

impl Shared {
    fn text(&self) -> String {
        String::from_utf8(self.out.lock().unwrap().clone()).unwrap()
    }
}

impl Write for Shared {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let mut fail_after = self.fail_after.lock().unwrap();
        let k = match *fail_after {
            Some(0) => {
                *fail_after = None;
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Some(n) => {
                let k = n.min(b.len());
                *fail_after = Some(n - k);
                k
            }
            None => b.len(),
        };
        self.out.lock().unwrap().extend_from_slice(&b[..k]);
        Ok(k)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn within(d: Duration) -> Deadline<'static> {
    Deadline::after(d)
}

#[cfg(target_os = "linux")]
#[test]
fn console_export_returns_by_its_deadline_when_the_output_blocks() {
    let (_read_end, write_end) = unread_pipe();
    let tracer = quiet_tracer();
    let (big, small) = (big_record(&tracer), one_record(&tracer, "small", vec![]));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut exporter = ConsoleSpanExporter::with_writer(&Resource::new("svc"), write_end);
        let mut took = Vec::new();
        for (record, timeout) in [
            (&big, Duration::from_millis(200)),
            // Queued behind the blocked line: times out as well.
            (&small, Duration::from_millis(100)),
        ] {
            exporter.add(ExportSpan::new(record));
            let started = Instant::now();
            let outcome = exporter.export(&within(timeout));
            took.push((started.elapsed(), outcome.failed, outcome.error));
        }
        let started = Instant::now();
        exporter.shutdown(&within(Duration::from_millis(100)));
        let _ = tx.send((took, started.elapsed()));
    });
    let (took, shutdown) = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("a console export with a 200 ms deadline has not returned after 5 s");
    for (elapsed, failed, error) in took {
        assert!(
            elapsed < Duration::from_secs(1),
            "an export took {elapsed:?}"
        );
        assert_eq!((failed, error), (1, Some(ExportError::Timeout)));
    }
    assert!(
        shutdown < Duration::from_secs(1),
        "shutdown took {shutdown:?}"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn a_blocked_console_queues_batches_up_to_its_cap_then_drops_them() {
    let (_read_end, write_end) = unread_pipe();
    let tracer = quiet_tracer();
    let big = big_record(&tracer);
    let mut exporter = ConsoleSpanExporter::with_writer(&Resource::new("svc"), write_end);
    // The first line blocks the writer; then 4 MiB of lines (16 of 256 KiB) may wait.
    let mut errors = Vec::new();
    for _ in 0..20 {
        exporter.add(ExportSpan::new(&big));
        let outcome = exporter.export(&within(Duration::from_millis(20)));
        assert_eq!((outcome.exported, outcome.failed), (0, 1));
        errors.push(outcome.error.unwrap().error_type().into_owned());
    }
    let timeouts = errors.iter().take_while(|e| *e == "timeout").count();
    assert!((16..=17).contains(&timeouts), "{errors:?}");
    assert!(errors[timeouts..].iter().all(|e| e == "io"), "{errors:?}");
    assert_eq!(exporter.dropped_batches(), (20 - timeouts) as u64);
}

#[cfg(target_os = "linux")]
#[test]
fn processor_shutdown_finishes_promptly_when_the_console_output_blocks() {
    let (_read_end, write_end) = unread_pipe();
    let tracer = quiet_tracer();
    let source = MemorySpanSource::new(16);
    source.push(big_record(&tracer));
    let exporter = ConsoleSpanExporter::with_writer(&Resource::new("svc"), write_end);
    let p = BatchSpanProcessor::start(source.clone(), exporter, BatchConfig::default()).unwrap();
    let shut = p.shutdown(Duration::from_millis(300));
    assert!(
        shut.is_err(),
        "the shutdown cannot write the span: {shut:?}"
    );
    // "It then finishes on its own, promptly: its export deadline has passed too."
    let until = Instant::now() + Duration::from_secs(3);
    while p.is_running() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    let stats = p.stats();
    assert!(
        !p.is_running(),
        "the exporter thread still runs 3 s after a 300 ms shutdown: {stats:?}"
    );
    assert_eq!((stats.accounted(), stats.exported), (1, 0), "{stats:?}");
}

#[test]
fn after_a_line_failed_half_way_the_next_batch_starts_a_fresh_line() {
    let tracer = quiet_tracer();
    let out = Shared::default();
    *out.fail_after.lock().unwrap() = Some(40);
    let mut exporter = ConsoleSpanExporter::with_writer(&Resource::new("svc"), out.clone());
    exporter.add(ExportSpan::new(&one_record(&tracer, "first", vec![])));
    let first = exporter.export(&within(Duration::from_secs(5)));
    assert_eq!((first.exported, first.failed), (0, 1));
    assert_eq!(first.error.unwrap().error_type(), "io");
    exporter.add(ExportSpan::new(&one_record(&tracer, "second", vec![])));
    let second = exporter.export(&within(Duration::from_secs(5)));
    assert_eq!(second.exported, 1);
    let text = out.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    // Only the failed batch's line is broken.
    assert_eq!(lines[0].len(), 40);
    assert!(serde_json::from_str::<Value>(lines[0]).is_err());
    let second: Value = serde_json::from_str(lines[1])
        .unwrap_or_else(|e| panic!("the exported batch is not a JSON line ({e}):\n{}", lines[1]));
    assert_eq!(
        second["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["name"],
        "second"
    );
    assert!(text.ends_with("}\n"));
}

#[test]
fn console_output_escapes_what_a_terminal_would_act_on() {
    let tracer = quiet_tracer();
    let out = Shared::default();
    let mut exporter = ConsoleSpanExporter::with_writer(&Resource::new("svc"), out.clone());
    // U+009B "2J": clear the screen by the 8-bit CSI; U+0085: a line break (NEL); bidi
    // overrides and isolates reorder what follows.
    let hostile = "name\u{9b}2J\u{85}\u{7f}\u{202e}\u{2066}\u{2069}\u{1b}[0m";
    exporter.add(ExportSpan::new(&one_record(
        &tracer,
        "op",
        vec![KeyValue::new("user_input", hostile)],
    )));
    assert_eq!(exporter.export(&within(Duration::from_secs(5))).exported, 1);
    let text = out.text();
    let raw: Vec<char> = text
        .chars()
        .filter(|&c| {
            c < ' ' && c != '\n'
                || ('\u{7f}'..='\u{9f}').contains(&c)
                || ('\u{2028}'..='\u{202e}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c)
        })
        .collect();
    assert!(
        raw.is_empty(),
        "raw control characters on the console: {raw:?}"
    );
    assert!(text.contains(r"name\u009b2J\u0085\u007f\u202e\u2066\u2069\u001b[0m"));
    // Still the same JSON.
    let line: Value = serde_json::from_str(text.trim_end()).unwrap();
    let attribute = &line["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"][0];
    assert_eq!(attribute["value"]["stringValue"], hostile);
}

#[test]
fn console_export_after_shutdown_fails() {
    let tracer = quiet_tracer();
    let out = Shared::default();
    let mut exporter = ConsoleSpanExporter::with_writer(&Resource::new("svc"), out.clone());
    exporter.add(ExportSpan::new(&one_record(&tracer, "before", vec![])));
    assert_eq!(exporter.export(&within(Duration::MAX)).exported, 1);
    exporter.shutdown(&within(Duration::MAX));
    exporter.add(ExportSpan::new(&one_record(&tracer, "late", vec![])));
    let late = exporter.export(&within(Duration::MAX));
    assert_eq!(
        (late.exported, late.failed, late.error),
        (0, 1, Some(ExportError::Shutdown))
    );
    assert_eq!(out.text().lines().count(), 1);
}

const CLOSED_STDOUT_CHILD: &str = "AGENTCORE_CONSOLE_CLOSED_STDOUT_CHILD";

/// The child's side: closes its standard output, exports one span to it, reports on stderr.
/// (Closed by the process itself, as a daemon does: a Rust program started with fd 1 closed
/// finds `/dev/null` there, which std opens in its place before `main`.)
#[test]
fn console_export_to_closed_stdout_child_process() {
    if std::env::var_os(CLOSED_STDOUT_CHILD).is_none() {
        return; // run by `spans_written_to_a_closed_stdout_are_failed` only
    }
    let tracer = quiet_tracer();
    let record = one_record(&tracer, "nowhere", vec![]);
    let mut exporter = ConsoleSpanExporter::stdout(&Resource::new("svc"));
    #[cfg(target_os = "linux")]
    // SAFETY: nothing in this process holds fd 1 as an owned handle; `Stdout` writes to
    // the number (and reports EBADF as success, which is the point).
    assert_eq!(unsafe { libc::close(libc::STDOUT_FILENO) }, 0);
    exporter.add(ExportSpan::new(&record));
    let outcome = exporter.export(&within(Duration::from_secs(5)));
    let error = outcome.error.map(|e| e.error_type().into_owned());
    eprintln!(
        "OUTCOME exported={} failed={} error={error:?}",
        outcome.exported, outcome.failed
    );
}

#[cfg(target_os = "linux")]
#[test]
fn spans_written_to_a_closed_stdout_are_failed() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "console_export_to_closed_stdout_child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CLOSED_STDOUT_CHILD, "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.starts_with("OUTCOME"))
        .unwrap_or_else(|| panic!("no outcome from the child:\n{err}"));
    assert_eq!(line, "OUTCOME exported=0 failed=1 error=Some(\"io\")");
}

/// A writer that accepts 40 bytes, then panics on its next write call, then works.
#[derive(Clone, Default)]
struct PanicsMidLine {
    out: Arc<Mutex<Vec<u8>>>,
    calls: Arc<AtomicUsize>,
}

impl Write for PanicsMidLine {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        match self.calls.fetch_add(1, Ordering::SeqCst) {
            0 => {
                let k = b.len().min(40);
                self.out.lock().unwrap().extend_from_slice(&b[..k]);
                Ok(k)
            }
            1 => panic!("user writer panicked half-way through a line"),
            _ => {
                self.out.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A write that *panics* after part of a line went out fails its batch, and the next batch
/// starts a fresh line (it was glued onto the fragment, counted exported: found by a review).
#[test]
fn after_a_write_panicked_half_way_the_next_batch_starts_a_fresh_line() {
    let tracer = quiet_tracer();
    let out = PanicsMidLine::default();
    let mut exporter = ConsoleSpanExporter::with_writer(&Resource::new("svc"), out.clone());
    exporter.add(ExportSpan::new(&one_record(&tracer, "first", vec![])));
    let first = exporter.export(&within(Duration::from_secs(5)));
    assert_eq!((first.exported, first.failed), (0, 1), "{first:?}");
    exporter.add(ExportSpan::new(&one_record(&tracer, "second", vec![])));
    let second = exporter.export(&within(Duration::from_secs(5)));
    assert_eq!(second.exported, 1, "{second:?}");
    let text = String::from_utf8(out.out.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let last = lines.last().unwrap();
    assert!(
        serde_json::from_str::<serde_json::Value>(last).is_ok(),
        "the batch counted exported is not a JSON line ({} lines):\n{last:.200}",
        lines.len()
    );
}

/// A panic payload whose own drop panics.
struct Bomb;
impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("the panic payload's drop panics too");
    }
}

#[derive(Clone, Default)]
struct PanicsWithBomb {
    out: Arc<Mutex<Vec<u8>>>,
    calls: Arc<AtomicUsize>,
}

impl Write for PanicsWithBomb {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            std::panic::panic_any(Bomb);
        }
        self.out.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A panic payload whose drop panics again no longer kills the writer thread (every later
/// export waited out its deadline for Timeout, and shutdown its own: found by a review).
#[test]
fn a_panic_payload_that_panics_on_drop_leaves_the_console_writer_working() {
    let tracer = quiet_tracer();
    let out = PanicsWithBomb::default();
    let mut exporter = ConsoleSpanExporter::with_writer(&Resource::new("svc"), out.clone());
    exporter.add(ExportSpan::new(&one_record(&tracer, "first", vec![])));
    let first = exporter.export(&within(Duration::from_secs(1)));
    eprintln!("first: {first:?}");
    exporter.add(ExportSpan::new(&one_record(&tracer, "second", vec![])));
    let started = Instant::now();
    let second = exporter.export(&within(Duration::from_secs(1)));
    let took = started.elapsed();
    let started = Instant::now();
    exporter.shutdown(&within(Duration::from_secs(1)));
    let shutdown = started.elapsed();
    assert_eq!(
        second.exported,
        1,
        "a batch to a working writer, after one write panicked: {second:?} after {took:?}; \
         shutdown took {shutdown:?}; output {} bytes",
        out.out.lock().unwrap().len()
    );
}

/// A writer whose drop (closing it: a gzip trailer, a socket's close, a file's sync) takes
/// a while and must run before the process exits.
struct SlowClose {
    closed: Arc<AtomicBool>,
}

impl Write for SlowClose {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for SlowClose {
    fn drop(&mut self) {
        std::thread::sleep(Duration::from_millis(300));
        self.closed.store(true, Ordering::SeqCst);
    }
}

/// `shutdown` returns once the writer has dropped (closed) the output, and joins it: whatever
/// the output's drop writes (a gzip trailer) is out when it returns (it returned before, and
/// a process exiting then lost it: found by a review).
#[test]
fn shutdown_returns_once_the_output_is_closed() {
    let tracer = quiet_tracer();
    let closed = Arc::new(AtomicBool::new(false));
    let mut exporter = ConsoleSpanExporter::with_writer(
        &Resource::new("svc"),
        SlowClose {
            closed: Arc::clone(&closed),
        },
    );
    exporter.add(ExportSpan::new(&one_record(&tracer, "only", vec![])));
    assert_eq!(exporter.export(&within(Duration::from_secs(5))).exported, 1);
    let started = Instant::now();
    exporter.shutdown(&within(Duration::from_secs(5)));
    let took = started.elapsed();
    drop(exporter);
    assert!(
        closed.load(Ordering::SeqCst),
        "shutdown(5 s) returned after {took:?} and the exporter was dropped, but the output \
         has not been closed (dropped) yet"
    );
}
