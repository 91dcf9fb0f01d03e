//! The server's account of itself: counters kept by its threads, read by
//! [`MetricsServer::stats`](super::MetricsServer::stats) and written into every exposition as
//! the `agentcore_telemetry_http_*` families.
//!
//! Every value is a relaxed atomic written by one of the server's threads (the I/O thread, or a
//! source's encoder thread for that source's duration histogram and running flag) and read by
//! anyone: each value is exact on its own, and a reader sees no ordering between them.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use super::negotiate::Format;
use super::response::Status;
use crate::exposition::float::{format_go_float, format_openmetrics_canonical};
use crate::exposition::prometheus_text::{self, escape_label_value, value_f64, value_u64};
use crate::exposition::{openmetrics, MetricKind};

/// Why a connection ended (the `reason` label of
/// `agentcore_telemetry_http_connections_closed_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Close {
    /// The client closed it (or reset it) while the server waited for a request.
    Client,
    /// After a response, because the request asked for it (`Connection: close`, HTTP/1.0,
    /// or a request body the server does not read).
    Requested,
    /// Idle longer than `idle_timeout`.
    IdleTimeout,
    /// A request head not complete within `header_read_timeout` (answered `408`).
    HeaderTimeout,
    /// Closed to make room: for a new connection when the table was full, or (its response
    /// write stalled, see `stall`) for a new connection or scrape.
    Evicted,
    /// `max_requests_per_connection` reached.
    MaxRequests,
    /// `max_connection_age` reached.
    MaxAge,
    /// After a malformed or oversized request (`400`, `414`, `431`, `505`), or one whose body
    /// has a transfer coding the server does not understand (`501`).
    BadRequest,
    /// A response not written within `write_timeout`.
    WriteTimeout,
    /// A socket error other than a reset.
    IoError,
    /// The server shut down.
    Shutdown,
}

impl Close {
    pub(crate) const ALL: [Close; 11] = [
        Close::Client,
        Close::Requested,
        Close::IdleTimeout,
        Close::HeaderTimeout,
        Close::Evicted,
        Close::MaxRequests,
        Close::MaxAge,
        Close::BadRequest,
        Close::WriteTimeout,
        Close::IoError,
        Close::Shutdown,
    ];

    fn label(self) -> &'static str {
        match self {
            Close::Client => "client",
            Close::Requested => "requested",
            Close::IdleTimeout => "idle_timeout",
            Close::HeaderTimeout => "header_timeout",
            Close::Evicted => "evicted",
            Close::MaxRequests => "max_requests",
            Close::MaxAge => "max_age",
            Close::BadRequest => "bad_request",
            Close::WriteTimeout => "write_timeout",
            Close::IoError => "io_error",
            Close::Shutdown => "shutdown",
        }
    }

    /// Whether the connection ended on a fault of the client or the network (what
    /// [`ServerStats::connection_errors`](super::ServerStats::connection_errors) counts).
    pub(crate) fn is_error(self) -> bool {
        matches!(
            self,
            Close::HeaderTimeout | Close::BadRequest | Close::WriteTimeout | Close::IoError
        )
    }
}

/// Why a scrape went on without a source (the `reason` label of
/// `agentcore_telemetry_http_source_failures_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SourceFailure {
    /// Its encode missed `encode_timeout` (it goes on in the background).
    Timeout,
    /// An earlier encode of it was still running, so it was not asked.
    Busy,
    /// It panicked (or its output could not be compressed).
    Panic,
}

impl SourceFailure {
    const ALL: [SourceFailure; 3] = [
        SourceFailure::Timeout,
        SourceFailure::Busy,
        SourceFailure::Panic,
    ];

    fn label(self) -> &'static str {
        match self {
            SourceFailure::Timeout => "timeout",
            SourceFailure::Busy => "busy",
            SourceFailure::Panic => "panic",
        }
    }
}

/// Upper bounds (seconds) of the encode-duration histogram's buckets.
const DURATION_BOUNDS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// One source's counters.
#[derive(Debug)]
pub(crate) struct SourceStats {
    pub(crate) name: Box<str>,
    pub(crate) required: bool,
    /// Encodes per duration bucket (not cumulative; the last is above every bound).
    buckets: [AtomicU64; DURATION_BOUNDS.len() + 1],
    duration_nanos: AtomicU64,
    failures: [AtomicU64; SourceFailure::ALL.len()],
    /// When the encode in progress was dispatched (its scrape's deadline counts from then),
    /// as nanoseconds since the server started plus one; 0 when none is running.
    running_since: AtomicU64,
}

impl SourceStats {
    /// Called by the scrape driver as it hands an encode to the encoder thread, with the
    /// instant its deadline counts from (so the encode is overdue exactly when the scrape
    /// stops waiting for it). Happens-before the thread's `stamp` and `encode_returned` for
    /// that job (the job channel). The next job's stamp may come before the previous job's
    /// `encode_returned` (the result is sent first), which then leaves it alone: it clears
    /// only its own stamp. So a stamp is never left behind by a finished encode, nor cleared
    /// by another job's.
    pub(crate) fn encode_dispatched(&self, stats: &Stats, at: Instant) {
        let since = at.saturating_duration_since(stats.started).as_nanos();
        let since = u64::try_from(since).unwrap_or(u64::MAX - 1);
        self.running_since.store(since + 1, Relaxed);
    }

    /// The stamp of the job just received (read by the encoder thread; the job channel
    /// orders it after the driver's `encode_dispatched`).
    pub(crate) fn stamp(&self) -> u64 {
        self.running_since.load(Relaxed)
    }

    /// Called by the encoder thread once the job is done (encoded, compressed and its result
    /// sent), with the job's `stamp`: no encode of this source runs any more, unless the
    /// driver has already dispatched the next one, whose stamp stays.
    pub(crate) fn encode_returned(&self, stamp: u64) {
        let _ = self
            .running_since
            .compare_exchange(stamp, 0, Relaxed, Relaxed);
    }

    /// Undoes `encode_dispatched` when the job could not be sent.
    pub(crate) fn encode_not_dispatched(&self) {
        self.running_since.store(0, Relaxed);
    }

    /// Called by the encoder thread when the source's encode returns: its duration.
    pub(crate) fn encode_finished(&self, took: Duration) {
        let secs = took.as_secs_f64();
        let bucket = DURATION_BOUNDS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(DURATION_BOUNDS.len());
        self.buckets[bucket].fetch_add(1, Relaxed);
        self.duration_nanos
            .fetch_add(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX), Relaxed);
    }

    pub(crate) fn failed(&self, why: SourceFailure) {
        let at = SourceFailure::ALL
            .iter()
            .position(|&f| f == why)
            .unwrap_or(0);
        self.failures[at].fetch_add(1, Relaxed);
    }

    /// Whether an encode has been running (since its dispatch) for `timeout` or longer: the
    /// scrape that asked for it has stopped waiting.
    fn overdue(&self, stats: &Stats, timeout: Duration) -> bool {
        match self.running_since.load(Relaxed) {
            0 => false,
            since => {
                let started = Duration::from_nanos(since - 1);
                stats.started.elapsed().saturating_sub(started) >= timeout
            }
        }
    }
}

/// Every counter of one server.
#[derive(Debug)]
pub(crate) struct Stats {
    started: Instant,
    encode_timeout: Duration,
    requests: [AtomicU64; Status::ALL.len()],
    pub(crate) in_flight: AtomicU64,
    pub(crate) connections_open: AtomicU64,
    pub(crate) connections_accepted: AtomicU64,
    pub(crate) connections_rejected: AtomicU64,
    pub(crate) accept_errors: AtomicU64,
    closed: [AtomicU64; Close::ALL.len()],
    /// `/metrics` answers: 200, 500, 503 for lack of data, 503 from the in-flight limit.
    pub(crate) scrapes: AtomicU64,
    pub(crate) scrape_errors: AtomicU64,
    pub(crate) scrapes_unavailable: AtomicU64,
    pub(crate) scrapes_rejected: AtomicU64,
    pub(crate) last_encode_nanos: AtomicU64,
    pub(crate) last_encode_bytes: AtomicU64,
    pub(crate) last_response_bytes: AtomicU64,
    pub(crate) sources: Box<[SourceStats]>,
}

impl Stats {
    pub(crate) fn new(sources: &[(Box<str>, bool)], encode_timeout: Duration) -> Self {
        Stats {
            started: Instant::now(),
            encode_timeout,
            requests: Default::default(),
            in_flight: AtomicU64::new(0),
            connections_open: AtomicU64::new(0),
            connections_accepted: AtomicU64::new(0),
            connections_rejected: AtomicU64::new(0),
            accept_errors: AtomicU64::new(0),
            closed: Default::default(),
            scrapes: AtomicU64::new(0),
            scrape_errors: AtomicU64::new(0),
            scrapes_unavailable: AtomicU64::new(0),
            scrapes_rejected: AtomicU64::new(0),
            last_encode_nanos: AtomicU64::new(0),
            last_encode_bytes: AtomicU64::new(0),
            last_response_bytes: AtomicU64::new(0),
            sources: sources
                .iter()
                .map(|(name, required)| SourceStats {
                    name: name.clone(),
                    required: *required,
                    buckets: Default::default(),
                    duration_nanos: AtomicU64::new(0),
                    failures: Default::default(),
                    running_since: AtomicU64::new(0),
                })
                .collect(),
        }
    }

    pub(crate) fn answered(&self, status: Status) {
        self.requests[status.index()].fetch_add(1, Relaxed);
    }

    pub(crate) fn closed(&self, why: Close) {
        let at = Close::ALL.iter().position(|&c| c == why).unwrap_or(0);
        self.closed[at].fetch_add(1, Relaxed);
    }

    pub(crate) fn closed_count(&self, why: Close) -> u64 {
        let at = Close::ALL.iter().position(|&c| c == why).unwrap_or(0);
        self.closed[at].load(Relaxed)
    }

    pub(crate) fn connection_errors(&self) -> u64 {
        Close::ALL
            .iter()
            .filter(|c| c.is_error())
            .map(|&c| self.closed_count(c))
            .sum::<u64>()
            + self.accept_errors.load(Relaxed)
    }

    pub(crate) fn source_failures(&self) -> u64 {
        self.sources
            .iter()
            .flat_map(|s| s.failures.iter())
            .map(|f| f.load(Relaxed))
            .sum()
    }

    /// Whether source `index`'s encode is running past the encode timeout (`false` for an
    /// index that is not a source).
    pub(crate) fn overdue(&self, index: usize) -> bool {
        self.sources
            .get(index)
            .is_some_and(|s| s.overdue(self, self.encode_timeout))
    }

    pub(crate) fn encodes_overdue(&self) -> u64 {
        self.sources
            .iter()
            .filter(|s| s.overdue(self, self.encode_timeout))
            .count() as u64
    }

    /// Appends the `agentcore_telemetry_http_*` families in `format` (for OpenMetrics: counter
    /// families named without `_total`, canonical `le`, the float `_sum` with a decimal point
    /// or an exponent; no `# EOF`).
    pub(crate) fn encode(&self, out: &mut String, format: Format) {
        let om = format == Format::OpenMetrics;
        let family = |out: &mut String, name: &str, kind: MetricKind, help: &str| {
            family(out, name, kind, help, om)
        };
        family(
            out,
            http!("requests_total"),
            MetricKind::Counter,
            "HTTP requests answered by the /metrics server, by status code.",
        );
        for status in Status::ALL {
            sample(out, http!("requests_total"), &[("code", status.code())]);
            value_u64(out, self.requests[status.index()].load(Relaxed));
        }
        family(
            out,
            http!("requests_in_flight"),
            MetricKind::Gauge,
            "Scrapes being served: waiting for their encode or being written.",
        );
        sample(out, http!("requests_in_flight"), &[]);
        value_u64(out, self.in_flight.load(Relaxed));

        family(
            out,
            http!("encode_duration_seconds"),
            MetricKind::Histogram,
            "Time each source took to write its exposition.",
        );
        let mut le = String::new();
        for source in self.sources.iter() {
            let mut cumulative = 0;
            for (i, bound) in DURATION_BOUNDS.iter().enumerate() {
                cumulative += source.buckets[i].load(Relaxed);
                le.clear();
                if om {
                    format_openmetrics_canonical(&mut le, *bound);
                } else {
                    format_go_float(&mut le, *bound);
                }
                sample(
                    out,
                    http!("encode_duration_seconds_bucket"),
                    &[("source", &source.name), ("le", &le)],
                );
                value_u64(out, cumulative);
            }
            cumulative += source.buckets[DURATION_BOUNDS.len()].load(Relaxed);
            let labels = [("source", &*source.name)];
            sample(
                out,
                http!("encode_duration_seconds_bucket"),
                &[("source", &source.name), ("le", "+Inf")],
            );
            value_u64(out, cumulative);
            sample(out, http!("encode_duration_seconds_sum"), &labels);
            let seconds = source.duration_nanos.load(Relaxed) as f64 / 1e9;
            if om {
                // OpenMetrics 1.0, "Numbers": a float has a decimal point or an exponent, so
                // a whole one is `0.0`, not `0` (the registry's rule, `openmetrics::value_f64`).
                format_openmetrics_canonical(out, seconds);
                out.push('\n');
            } else {
                value_f64(out, seconds);
            }
            sample(out, http!("encode_duration_seconds_count"), &labels);
            value_u64(out, cumulative);
        }
        family(
            out,
            http!("source_failures_total"),
            MetricKind::Counter,
            "Scrapes that went on without a source: its encode timed out, an earlier encode of it was still running (busy), or it panicked.",
        );
        for source in self.sources.iter() {
            for (i, why) in SourceFailure::ALL.iter().enumerate() {
                sample(
                    out,
                    http!("source_failures_total"),
                    &[("source", &source.name), ("reason", why.label())],
                );
                value_u64(out, source.failures[i].load(Relaxed));
            }
        }
        family(
            out,
            http!("encodes_overdue"),
            MetricKind::Gauge,
            "Encodes running for longer than the encode timeout (a slow or hung source), by source.",
        );
        for source in self.sources.iter() {
            sample(out, http!("encodes_overdue"), &[("source", &source.name)]);
            value_u64(out, u64::from(source.overdue(self, self.encode_timeout)));
        }
        family(
            out,
            http!("connections_open"),
            MetricKind::Gauge,
            "Connections open now.",
        );
        sample(out, http!("connections_open"), &[]);
        value_u64(out, self.connections_open.load(Relaxed));
        family(
            out,
            http!("connections_accepted_total"),
            MetricKind::Counter,
            "Connections accepted.",
        );
        sample(out, http!("connections_accepted_total"), &[]);
        value_u64(out, self.connections_accepted.load(Relaxed));
        family(
            out,
            http!("connections_rejected_total"),
            MetricKind::Counter,
            "Connections closed at once because every open connection had a request in progress.",
        );
        sample(out, http!("connections_rejected_total"), &[]);
        value_u64(out, self.connections_rejected.load(Relaxed));
        family(
            out,
            http!("connections_closed_total"),
            MetricKind::Counter,
            "Connections closed, by reason (evicted: closed to make room for a new connection, or for a scrape while its response write had stalled).",
        );
        for why in Close::ALL {
            sample(
                out,
                http!("connections_closed_total"),
                &[("reason", why.label())],
            );
            value_u64(out, self.closed_count(why));
        }
    }
}

/// The full name of one of the server's own metrics: `http!("requests_total")` is
/// `agentcore_telemetry_http_requests_total`.
macro_rules! http {
    ($name:literal) => {
        concat!("agentcore_telemetry_http_", $name)
    };
}
use http;

/// A family's header in `format`'s order: 0.0.4's `# HELP` then `# TYPE`, OpenMetrics'
/// `# TYPE`, `# UNIT` (`_seconds`), `# HELP`, its counter families named without `_total`. The
/// registry's own writers, so that both follow one rule (help texts here need no escaping in
/// either format; they get it anyway).
fn family(out: &mut String, name: &str, kind: MetricKind, help: &str, openmetrics: bool) {
    if openmetrics {
        openmetrics::write_family_header(out, kind, name, help);
    } else {
        prometheus_text::write_family_header(out, kind, name, help);
    }
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)]) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(k);
            out.push_str("=\"");
            escape_label_value(out, v);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
}
