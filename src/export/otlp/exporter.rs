//! [`OtlpHttpExporter`]: OTLP/HTTP with the transport rules of the OTLP specification.

use std::io::Write;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use super::encoder::OtlpEncoder;
use super::transport::{Endpoint, HttpClient, SendError};
use super::{json, proto, Compression, Protocol};
use crate::export::config_error::ConfigError;
use crate::export::exporter::{Deadline, ExportError, ExportOutcome, SpanExporter};
use crate::export::resource::{Resource, SCOPE_NAME, SDK_VERSION};
use crate::export::source::ExportSpan;
use crate::net::deadline::{deadline_after, instant_after};

/// The largest request body (uncompressed) the exporter sends by default: 20 MiB, the limit
/// OTLP recommends to clients ("It is RECOMMENDED to use 20 MiB as the default limit") and
/// to servers, which answer `413` past it. A larger batch is split; a single span over it is
/// refused.
///
/// ```
/// assert_eq!(agentcore_telemetry::export::otlp::MAX_REQUEST_BYTES, 20 << 20);
/// ```
pub const MAX_REQUEST_BYTES: usize = 20 << 20;

/// The `User-Agent` the exporter sends: this crate, its version and the exporter.
///
/// ```
/// use agentcore_telemetry::export::otlp::user_agent;
/// assert!(user_agent().starts_with("agentcore-telemetry/"));
/// ```
pub fn user_agent() -> String {
    format!("{SCOPE_NAME}/{SDK_VERSION} (OTLP/HTTP span exporter; Rust)")
}

/// How failed requests are retried: only 429, 502, 503, 504 and connection failures (the
/// OTLP specification's retryable cases), with exponential backoff and random jitter, or
/// after the server's `Retry-After`, as long as the export's deadline allows.
///
/// ```
/// use agentcore_telemetry::export::otlp::RetryPolicy;
/// use std::time::Duration;
/// let p = RetryPolicy::default();
/// assert_eq!(p.initial_backoff, Duration::from_secs(1));
/// assert_eq!(RetryPolicy::none().max_attempts, 1);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (default 5); 1 disables retries.
    pub max_attempts: u32,
    /// The first backoff (default 1 s); each next one is `multiplier` times longer.
    pub initial_backoff: Duration,
    /// The longest backoff (default 10 s).
    pub max_backoff: Duration,
    /// Backoff growth (default 2).
    pub multiplier: f64,
    /// The longest `Retry-After` honoured (default 30 s); a longer one, or one that would
    /// pass the export's deadline, ends the export as failed at once rather than waiting in
    /// vain.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
            multiplier: 2.0,
            max_retry_after: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// No retries.
    ///
    /// ```
    /// use agentcore_telemetry::export::otlp::RetryPolicy;
    /// assert_eq!(RetryPolicy::none().max_attempts, 1);
    /// ```
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..Default::default()
        }
    }

    /// The backoff before attempt `attempt + 1` (`attempt` ≥ 1): `initial × multiplier^(attempt-1)`,
    /// capped at `max_backoff`, then multiplied by a random factor in `[0.5, 1.5)` (jitter,
    /// so that many exporters do not retry in step).
    ///
    /// ```
    /// use agentcore_telemetry::export::otlp::RetryPolicy;
    /// use std::time::Duration;
    /// let p = RetryPolicy::default();
    /// let d = p.backoff(2, 0.0);
    /// assert_eq!(d, Duration::from_secs(1)); // 2 s × 0.5
    /// assert_eq!(p.backoff(10, 0.999_999), Duration::from_secs_f64(10.0 * 1.499_999));
    /// ```
    pub fn backoff(&self, attempt: u32, unit_random: f64) -> Duration {
        let exp = self
            .multiplier
            .max(1.0)
            .powi(attempt.saturating_sub(1).min(64) as i32);
        let base = (self.initial_backoff.as_secs_f64() * exp).min(self.max_backoff.as_secs_f64());
        let secs = (base * (0.5 + unit_random.clamp(0.0, 1.0))).max(0.0);
        // A backoff too long for a `Duration` (`Duration::MAX` settings, × 1.5 of jitter)
        // saturates rather than panicking.
        Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
    }
}

/// The OTLP/HTTP exporter's settings (see [`ExportConfig`](crate::export::ExportConfig) for
/// the same from the `OTEL_*` environment variables).
///
/// ```
/// use agentcore_telemetry::export::otlp::{OtlpHttpConfig, Protocol};
/// let c = OtlpHttpConfig::default();
/// assert_eq!(c.endpoint, "http://localhost:4318/v1/traces");
/// assert_eq!(c.protocol, Protocol::HttpProtobuf);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpHttpConfig {
    /// The full URL requests are POSTed to (`…/v1/traces`); `http://` only.
    pub endpoint: String,
    /// Protobuf (default) or JSON.
    pub protocol: Protocol,
    /// Request compression (default none).
    pub compression: Compression,
    /// Extra request headers (authentication, tenant ids).
    pub headers: Vec<(String, String)>,
    /// The longest one export may take, retries included (default 10 s).
    pub timeout: Duration,
    /// Retries.
    pub retry: RetryPolicy,
    /// Who emits the spans.
    pub resource: Resource,
    /// The largest request body sent, uncompressed (default [`MAX_REQUEST_BYTES`]).
    pub max_request_bytes: usize,
}

impl Default for OtlpHttpConfig {
    fn default() -> Self {
        OtlpHttpConfig {
            endpoint: "http://localhost:4318/v1/traces".into(),
            protocol: Protocol::HttpProtobuf,
            compression: Compression::None,
            headers: Vec::new(),
            timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            resource: Resource::default(),
            max_request_bytes: MAX_REQUEST_BYTES,
        }
    }
}

/// Sends span batches to an OTLP/HTTP receiver (OpenTelemetry Collector, Jaeger ≥ 1.35,
/// Grafana Tempo): `POST {endpoint}` with an `ExportTraceServiceRequest`, protobuf or JSON,
/// optionally gzip-compressed, over a kept-alive HTTP/1.1 connection.
///
/// Each span is encoded when the processor adds it; [`export`](SpanExporter::export) sends
/// the batch (split into several requests when it exceeds the request limit), retries by
/// the [`RetryPolicy`] within the deadline, and counts every span as exported, rejected
/// (partial success, never retried) or failed. After [`shutdown`](SpanExporter::shutdown),
/// exports fail ([`ExportError::Shutdown`]) and send nothing.
///
/// ```
/// use agentcore_telemetry::export::otlp::{OtlpHttpConfig, OtlpHttpExporter};
///
/// let exporter = OtlpHttpExporter::new(OtlpHttpConfig {
///     endpoint: "http://127.0.0.1:4318/v1/traces".into(),
///     ..OtlpHttpConfig::default()
/// })
/// .unwrap();
/// assert!(OtlpHttpExporter::new(OtlpHttpConfig {
///     endpoint: "https://collector.example/v1/traces".into(),
///     ..OtlpHttpConfig::default()
/// })
/// .is_err());
/// # drop(exporter);
/// ```
pub struct OtlpHttpExporter {
    encoder: OtlpEncoder,
    client: HttpClient,
    compression: Compression,
    timeout: Duration,
    retry: RetryPolicy,
    max_request_bytes: usize,
    body: Vec<u8>,
    gzipped: Vec<u8>,
    rng: u64,
    /// [`shutdown`](SpanExporter::shutdown) was called: exports fail from then on.
    shut_down: bool,
}

impl OtlpHttpExporter {
    /// An exporter for `config`; refuses an endpoint it cannot use (not `http://`, no host,
    /// a bad port) and header names or values that cannot go into an HTTP request.
    pub fn new(config: OtlpHttpConfig) -> Result<Self, ConfigError> {
        let endpoint = Endpoint::parse(&config.endpoint)
            .map_err(|r| ConfigError::new("OtlpHttpConfig::endpoint", &config.endpoint, r))?;
        for (k, v) in &config.headers {
            validate_header(k, v)
                // The value redacted, as in the environment's warnings: often a credential.
                .map_err(|r| {
                    let shown = crate::export::redact::redact_header(k);
                    ConfigError::new("OtlpHttpConfig::headers", &shown, r)
                })?;
        }
        let client = HttpClient::new(
            endpoint,
            config.protocol.content_type(),
            &user_agent(),
            &config.headers,
        );
        Ok(OtlpHttpExporter {
            encoder: OtlpEncoder::new(config.protocol, &config.resource),
            client,
            compression: config.compression,
            timeout: config.timeout,
            retry: config.retry,
            max_request_bytes: config.max_request_bytes.max(1),
            body: Vec::new(),
            gzipped: Vec::new(),
            rng: seed(),
            shut_down: false,
        })
    }

    fn unit_random(&mut self) -> f64 {
        // xorshift64*: jitter needs no more.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Sends the spans `range` of the batch as one request, with retries; counts them.
    fn send_run(&mut self, range: std::ops::Range<usize>, deadline: &Deadline) -> ExportOutcome {
        let n = range.len() as u64;
        self.body.clear();
        self.encoder.write_range(range, &mut self.body);
        let gzip = self.compression == Compression::Gzip;
        if gzip {
            self.gzipped.clear();
            let mut enc =
                flate2::write::GzEncoder::new(&mut self.gzipped, flate2::Compression::fast());
            // Writing into a Vec cannot fail.
            let _ = enc.write_all(&self.body);
            let _ = enc.finish();
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let payload = if gzip { &self.gzipped } else { &self.body };
            let protocol = self.encoder.protocol();
            let result = self.client.post(payload, gzip, deadline);
            // What to do next: done (an outcome), or retry after a delay.
            let (retry_after, failure) = match result {
                Ok(r) if (200..300).contains(&r.status) => {
                    return success(protocol, r.status, r.body, r.body_note, n);
                }
                Ok(r) if matches!(r.status, 429 | 502 | 503 | 504) => {
                    let message = status_message(protocol, r.body, r.body_note);
                    (
                        r.retry_after,
                        ExportError::Http {
                            status: r.status,
                            message,
                        },
                    )
                }
                Ok(r) => {
                    let message = status_message(protocol, r.body, r.body_note);
                    let mut out = ExportOutcome::failed(
                        n,
                        ExportError::Http {
                            status: r.status,
                            message,
                        },
                    );
                    out.http_status = Some(r.status);
                    return out;
                }
                Err(SendError::Timeout) => return ExportOutcome::failed(n, ExportError::Timeout),
                Err(SendError::Invalid(detail)) => {
                    return ExportOutcome::failed(n, ExportError::InvalidResponse { detail })
                }
                Err(SendError::Connect(e) | SendError::Broken(e)) => (
                    None,
                    ExportError::Connection {
                        detail: e.to_string(),
                    },
                ),
            };
            let status = match &failure {
                ExportError::Http { status, .. } => Some(*status),
                _ => None,
            };
            let give_up = |error: ExportError, why: Option<String>| {
                let error = match (error, why) {
                    (ExportError::Http { status, message }, Some(why)) => ExportError::Http {
                        status,
                        message: if message.is_empty() {
                            why
                        } else {
                            format!("{message} ({why})")
                        },
                    },
                    (e, _) => e,
                };
                let mut out = ExportOutcome::failed(n, error);
                out.http_status = status;
                out
            };
            if attempt >= self.retry.max_attempts {
                return give_up(failure, None);
            }
            let delay = match retry_after {
                Some(d) if d > self.retry.max_retry_after => {
                    let why = format!(
                        "Retry-After {} s is over the {} s this exporter waits",
                        d.as_secs(),
                        self.retry.max_retry_after.as_secs()
                    );
                    return give_up(failure, Some(why));
                }
                Some(d) => d,
                None => {
                    let r = self.unit_random();
                    self.retry.backoff(attempt, r)
                }
            };
            if instant_after(Instant::now(), delay) >= deadline.instant() {
                let why = format!(
                    "the retry {} ms later would pass the export deadline",
                    delay.as_millis()
                );
                return give_up(failure, Some(why));
            }
            if !deadline.sleep(delay) {
                return give_up(failure, None);
            }
        }
    }
}

/// The outcome of a 2xx response: a partial success's rejected spans are counted (never
/// retried); a body that does not decode still means the receiver accepted the request, and
/// so does one the transport could not read (`body_note`, e.g. bad gzip).
fn success(
    protocol: Protocol,
    status: u16,
    body: &[u8],
    body_note: Option<&str>,
    n: u64,
) -> ExportOutcome {
    let decoded = match (body_note, protocol) {
        (Some(note), _) => Err(note.to_owned()),
        (None, Protocol::HttpProtobuf) => proto::decode_response(body),
        (None, Protocol::HttpJson) => json::decode_response(body),
    };
    let mut out = ExportOutcome::exported(n);
    out.http_status = Some(status);
    match decoded {
        Ok(ps) if ps.rejected_spans > 0 => {
            let rejected = (ps.rejected_spans as u64).min(n);
            out.exported = n - rejected;
            out.rejected = rejected;
            out.error = Some(ExportError::Rejected {
                spans: rejected,
                message: ps.error_message,
            });
        }
        Ok(ps) if !ps.error_message.is_empty() => {
            out.warning = Some(ps.error_message);
        }
        Ok(_) => {}
        Err(detail) => {
            out.warning = Some(format!(
                "accepted, but the response did not decode: {detail}"
            ));
        }
    }
    out
}

/// The message of an error response's `google.rpc.Status` body, or the body itself when it
/// is short text, or why the transport could not read it (`body_note`), or nothing.
fn status_message(protocol: Protocol, body: &[u8], body_note: Option<&str>) -> String {
    if let Some(note) = body_note {
        return format!("the response body could not be read: {note}");
    }
    let decoded = match protocol {
        Protocol::HttpProtobuf => proto::decode_status_message(body),
        Protocol::HttpJson => json::decode_status_message(body),
    };
    decoded.unwrap_or_else(|| match std::str::from_utf8(body) {
        Ok(t) if t.len() <= 512 && !t.contains(['\0']) => t.trim().to_owned(),
        _ => String::new(),
    })
}

fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish() | 1
}

/// An HTTP header name must be a token (RFC 9110 §5.1), a value free of CR, LF and NUL.
/// A name that is not a token is not repeated in the error: it may be a credential pasted
/// without its key (see `export::redact`).
pub(crate) fn validate_header(name: &str, value: &str) -> Result<(), String> {
    let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(tchar) {
        return Err("has a name that is not a valid HTTP header name (a token)".into());
    }
    // A field value (RFC 9110 §5.5): visible ASCII, space, tab and obs-text (bytes 0x80 and
    // up, here the UTF-8 of non-ASCII text); no other control byte (CR and LF would split
    // the request).
    if let Some(i) = value
        .bytes()
        .position(|b| !(b == b'\t' || b == b' ' || b.is_ascii_graphic() || b >= 0x80))
    {
        return Err(format!(
            "the value of header {name:?} is not a valid HTTP field value (control byte \
             0x{:02X} at byte {i})",
            value.as_bytes()[i]
        ));
    }
    let reserved = [
        "host",
        "content-length",
        "content-type",
        "content-encoding",
        "transfer-encoding",
        "connection",
    ];
    if reserved.iter().any(|r| name.eq_ignore_ascii_case(r)) {
        return Err(format!("header {name:?} is set by the exporter itself"));
    }
    Ok(())
}

impl OtlpHttpExporter {
    /// [`SpanExporter::export`]'s work: every request of the batch, by `deadline`.
    fn export_batch(&mut self, deadline: &Deadline) -> ExportOutcome {
        let mut outcome = ExportOutcome::default();
        if self.encoder.is_empty() {
            // OTLP: senders SHOULD NOT send empty envelopes.
            return outcome;
        }
        // `Duration::MAX` ("no limit of its own") saturates far away instead of overflowing.
        let own = deadline_after(self.timeout);
        let runs = self.encoder.split(self.max_request_bytes);
        for (range, fits) in runs {
            let n = range.len() as u64;
            if !fits {
                let bytes = self.encoder.request_len(range);
                outcome.merge(ExportOutcome::failed(
                    n,
                    ExportError::RequestTooLarge {
                        bytes,
                        limit: self.max_request_bytes,
                    },
                ));
                continue;
            }
            // The exporter's own timeout (OTEL_EXPORTER_OTLP_TIMEOUT) within the processor's.
            // (still brought forward by the processor's shutdown, if any).
            let d = deadline.earlier(own);
            if d.passed() {
                outcome.merge(ExportOutcome::failed(n, ExportError::Timeout));
                continue;
            }
            let r = self.send_run(range, &d);
            outcome.merge(r);
        }
        outcome
    }
}

impl SpanExporter for OtlpHttpExporter {
    fn add(&mut self, span: ExportSpan<'_>) {
        self.encoder.add(&span);
    }

    fn export(&mut self, deadline: &Deadline) -> ExportOutcome {
        if self.shut_down {
            // "After the call to Shutdown subsequent calls to Export are not allowed and
            // should return a Failure result" (trace SDK, Span Exporter): nothing is sent.
            let n = self.encoder.len() as u64;
            self.encoder.clear();
            return ExportOutcome::failed(n, ExportError::Shutdown);
        }
        // The batch goes whatever happens, also when a panic unwinds through here: the
        // processor counts a panicked export's spans as failed, so they must not be sent
        // with the next batch.
        let sent = catch_unwind(AssertUnwindSafe(|| self.export_batch(deadline)));
        self.encoder.clear();
        let mut outcome = sent.unwrap_or_else(|panic| {
            // A request may have been cut off mid-way: never reuse that connection.
            self.client.close();
            resume_unwind(panic)
        });
        // (After a panic the hits stay with the client, for the next outcome to report.)
        outcome.connect_thread_cap = self.client.take_thread_cap_hits();
        outcome
    }

    fn shutdown(&mut self, _deadline: &Deadline) {
        self.shut_down = true;
        self.client.close();
    }

    fn component_type(&self) -> &'static str {
        match self.encoder.protocol() {
            Protocol::HttpProtobuf => "otlp_http_span_exporter",
            Protocol::HttpJson => "otlp_http_json_span_exporter",
        }
    }
}

impl std::fmt::Debug for OtlpHttpExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpHttpExporter")
            .field("protocol", &self.encoder.protocol())
            .field("compression", &self.compression)
            .field("batch", &self.encoder.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An attempt that found the process-wide cap on connection threads reached (16 threads
    /// a silent resolver holds) was counted only as a failed export (`failed`, error
    /// `connection`, the cap named in `last_error` alone, overwritten by the next error):
    /// nothing told the cap from a collector that refuses. Each such attempt is counted on
    /// its own now, in `ExportStats::connect_thread_cap` and in the registry's
    /// `agentcore_telemetry_export_connect_thread_cap_total`, beside the spans' `failed`.
    #[test]
    fn attempts_at_the_connection_thread_cap_are_counted_on_their_own() {
        use crate::export::{BatchConfig, BatchSpanProcessor, MemorySpanSource};
        use crate::net::connect::test_support::hold_cap;
        use crate::{DistributedTracer, Registry, SpanKind, TracerConfig};

        let tracer = DistributedTracer::new(TracerConfig::default());
        let source = MemorySpanSource::new(16);
        let span = tracer.start_span("op", SpanKind::Internal, []);
        let trace = span.trace_id();
        span.end();
        let exporter = OtlpHttpExporter::new(OtlpHttpConfig {
            // Never reached: at the cap no connection is attempted.
            endpoint: "http://127.0.0.1:9/v1/traces".into(),
            retry: RetryPolicy {
                max_attempts: 3,
                initial_backoff: Duration::from_millis(1),
                max_backoff: Duration::from_millis(1),
                ..RetryPolicy::default()
            },
            resource: Resource::new("svc"),
            ..OtlpHttpConfig::default()
        })
        .unwrap();
        let config = BatchConfig {
            schedule_delay: Duration::from_secs(3600),
            ..BatchConfig::default()
        };
        let p = BatchSpanProcessor::start(source.clone(), exporter, config).unwrap();
        let registry = Registry::new();
        p.register_metrics(&registry).unwrap();
        let name = "agentcore_telemetry_export_connect_thread_cap_total{otel_component_type=\"otlp_http_span_exporter\"";
        assert!(registry.encode_text().contains(name));

        let held = hold_cap();
        for r in tracer.get_trace_spans(trace) {
            source.push(r);
        }
        let flushed = p.force_flush(Duration::from_secs(10));
        drop(held);
        assert!(
            matches!(flushed, Err(ExportError::Connection { .. })),
            "{flushed:?}"
        );
        let stats = p.stats();
        // Three attempts, each at the cap; the one span failed with `connection`.
        assert_eq!(
            (stats.connect_thread_cap, stats.failed),
            (3, 1),
            "{stats:?}"
        );
        let text = registry.encode_text();
        let line = text
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(line.ends_with(" 3"), "{line}");
        assert!(text.contains("error_type=\"connection\"} 1"), "{text}");
        p.shutdown(Duration::from_secs(5)).unwrap();
    }

    /// OTLP (opentelemetry-proto `docs/specification.md`, "OTLP/HTTP Request"): "The client
    /// SHOULD limit the size of the request body, including before compression, to avoid
    /// overwhelming the server. It is RECOMMENDED to use 20 MiB as the default limit." A
    /// server keeps the same 20 MiB by default and answers `413` past it, which "The client
    /// MUST NOT retry": a batch of 21 spans of 1 MiB each went as one 21 MiB request (the
    /// limit was 64 MiB), refused whole by a collector with its default limit.
    #[test]
    fn a_batch_over_the_recommended_20_mib_is_split_by_default() {
        use crate::export::source::ExportSpan;
        use crate::{DistributedTracer, KeyValue, SpanKind, TracerConfig};

        const MIB: usize = 1 << 20;
        let tracer = DistributedTracer::new(TracerConfig::default());
        let span = tracer.start_span(
            "op",
            SpanKind::Internal,
            [KeyValue::new("payload", "x".repeat(MIB))],
        );
        let trace = span.trace_id();
        span.end();
        let record = tracer.get_trace_spans(trace).pop().unwrap();
        for protocol in [Protocol::HttpProtobuf, Protocol::HttpJson] {
            let mut exporter = OtlpHttpExporter::new(OtlpHttpConfig {
                protocol,
                ..OtlpHttpConfig::default()
            })
            .unwrap();
            for _ in 0..21 {
                exporter.add(ExportSpan::new(&record));
            }
            let runs = exporter.encoder.split(exporter.max_request_bytes);
            let sizes: Vec<usize> = runs
                .iter()
                .map(|(range, _)| exporter.encoder.request_len(range.clone()))
                .collect();
            assert!(
                sizes.iter().all(|&n| n <= 20 * MIB),
                "{protocol:?}: requests of {sizes:?} bytes, over 20 MiB"
            );
            assert_eq!(runs.iter().map(|(r, _)| r.len()).sum::<usize>(), 21);
        }
    }

    /// The specification (trace SDK, "Span Exporter", `Shutdown()`): "After the call to
    /// Shutdown subsequent calls to Export are not allowed and should return a Failure
    /// result." The exporter's shutdown only closed its connection: a later export opened a
    /// new one and sent the batch (the console and in-memory exporters already failed it).
    #[test]
    fn an_export_after_shutdown_fails_and_sends_nothing() {
        use crate::export::source::ExportSpan;
        use crate::{DistributedTracer, SpanKind, TracerConfig};

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let tracer = DistributedTracer::new(TracerConfig::default());
        let span = tracer.start_span("op", SpanKind::Internal, []);
        let trace = span.trace_id();
        span.end();
        let record = tracer.get_trace_spans(trace).pop().unwrap();
        let mut exporter = OtlpHttpExporter::new(OtlpHttpConfig {
            endpoint: format!("http://127.0.0.1:{port}/v1/traces"),
            retry: RetryPolicy::none(),
            ..OtlpHttpConfig::default()
        })
        .unwrap();
        exporter.shutdown(&Deadline::after(Duration::from_secs(1)));
        exporter.add(ExportSpan::new(&record));
        let outcome = exporter.export(&Deadline::after(Duration::from_millis(500)));
        let connected = listener.accept().is_ok();
        assert_eq!(
            (outcome.exported, outcome.failed, &outcome.error, connected),
            (0, 1, &Some(ExportError::Shutdown), false),
            "(exported, failed, error, connected) after shutdown"
        );
    }

    #[test]
    fn header_values_set_in_code_must_be_http_field_values() {
        for bad in ["a\u{1}b", "a\u{7f}", "a\rb", "a\nb", "\0"] {
            assert!(validate_header("x-tenant", bad).is_err(), "{bad:?}");
        }
        for good in ["", "a b", "a\tb", "café", "\u{2713} ~!"] {
            assert_eq!(validate_header("x-tenant", good), Ok(()), "{good:?}");
        }
        assert!(validate_header("x tenant", "a").is_err());
        assert!(validate_header("Content-Type", "a").is_err());
    }

    #[test]
    fn a_refused_header_set_in_code_is_reported_without_its_value() {
        let config = OtlpHttpConfig {
            headers: vec![("authorization".into(), "Bearer s3cr3t\r\nx: y".into())],
            ..OtlpHttpConfig::default()
        };
        let e = OtlpHttpExporter::new(config).map(|_| ()).unwrap_err();
        assert_eq!(e.value, "authorization=<redacted>");
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
    }

    #[test]
    fn backoffs_of_duration_max_saturate_instead_of_panicking() {
        let p = RetryPolicy {
            initial_backoff: Duration::MAX,
            max_backoff: Duration::MAX,
            ..RetryPolicy::default()
        };
        for (attempt, r) in [(1, 0.0), (1, 0.9), (5, 0.999), (u32::MAX, 1.0)] {
            assert!(
                p.backoff(attempt, r) >= Duration::from_secs(u64::MAX / 4),
                "{attempt} {r}"
            );
        }
        assert_eq!(p.backoff(1, 0.9), Duration::MAX);
        let p = RetryPolicy {
            multiplier: f64::INFINITY,
            max_backoff: Duration::MAX,
            ..RetryPolicy::default()
        };
        assert_eq!(p.backoff(3, 0.5), Duration::MAX);
        assert_eq!(
            RetryPolicy::default().backoff(2, 0.0),
            Duration::from_secs(1)
        );
    }
}
