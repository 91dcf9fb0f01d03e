//! The `/metrics` HTTP server: serves a Prometheus text exposition (format 0.0.4) over HTTP/1.1,
//! and stays up for a well-behaved scraper whatever other clients and sources do.
//!
//! Available with the cargo feature **`http-server`**, which is on by default; build with
//! `default-features = false` to leave out the HTTP stack (tokio's one-thread runtime, httparse,
//! and flate2 for gzip).
//!
//! [`MetricsServer::start`] binds a socket and serves one source; [`MetricsServer::builder`]
//! serves several, each *required* (a scrape without it fails) or *best-effort* (a scrape goes
//! on without it). The response is the sources' expositions one after the other: the server
//! does not compare their family names, so two sources (two registries) that both define
//! `jobs_total`, or a source that defines a name beginning `agentcore_telemetry_http_` (the
//! server's own section, below), make an exposition that repeats a family, which Prometheus
//! and OpenMetrics parsers refuse. Give each source its own names (a prefix per registry).
//! The server answers:
//!
//! * `GET` and `HEAD /metrics` (any query ignored): `200` with [`CONTENT_TYPE`] (or
//!   OpenMetrics', see *Formats*), gzip-coded
//!   (`Content-Encoding: gzip`) when `Accept-Encoding` accepts gzip; `503` when the scrape
//!   cannot be served in time or the in-flight limit says no; `500` when a required source
//!   panicked;
//! * a method the server does not recognise, on any path: `501` (RFC 9110 §15.6.2; the
//!   recognised methods are RFC 9110's, `GET`, `HEAD`, `POST`, `PUT`, `DELETE`, `CONNECT`,
//!   `OPTIONS`, `TRACE`, and `PATCH`, RFC 5789; case-sensitive, so `get` is not one);
//! * `OPTIONS *` (RFC 9112 §3.2.4, a server-wide request): `200` with `Allow: GET, HEAD` and no
//!   content (RFC 9110 §9.3.7);
//! * any other recognised method on `/metrics`: `405` with `Allow: GET, HEAD`; any other path:
//!   `404` (these, and `501`, keep the connection as the request asks);
//! * a malformed head `400` (among them, RFC 9112 §3.2: an HTTP/1.1 request without `Host`, or
//!   any request with two; a request target `*` with a method other than `OPTIONS`), too large
//!   or with too many fields `431` (`414` when the limit is reached inside the request target),
//!   an HTTP major version other than 1 `505` (a later HTTP/1 minor version, `HTTP/1.2` to
//!   `HTTP/1.9`, is served as HTTP/1.1: RFC 9110 §2.5), a `Transfer-Encoding` with a coding
//!   other than `chunked` `501` (RFC 9112 §6.1; the body is not read, so a `chunked` one is
//!   served and the connection then closed), a head not complete in time `408`, each followed
//!   by a close;
//! * a `HEAD` request, whatever the answer (refusals included), gets the head that `GET` would
//!   get and no content (RFC 9110 §9.3.2).
//!
//! ```
//! use agentcore_telemetry::serve::{ServerConfig, MetricsServer};
//!
//! let config = ServerConfig::default().with_addr("127.0.0.1:0".parse().unwrap());
//! let server = MetricsServer::start(config, |out: &mut String| {
//!     out.push_str("# TYPE jobs_total counter\njobs_total 3\n");
//! })?;
//! println!("serving on http://{}/metrics", server.local_addr());
//! let stats = server.shutdown();
//! assert_eq!(stats.scrapes, 0);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Concurrency model
//! * **The I/O thread** (`agentcore-metrics-server`) runs a one-thread tokio runtime. It owns
//!   the listener, one task per connection (`connection`), and the scrape driver (`scrape`).
//!   Everything it shares among its tasks is single-threaded (`Rc`, `Cell`); it never runs a
//!   source, never compresses an exposition, and never blocks.
//! * **One encoder thread per source** (`agentcore-metrics-encode-<i>`, `encoder`) calls
//!   [`ExpositionSource::encode_into`], and compresses the result when a scrape wants gzip.
//! * Threads talk through channels only: the driver sends a job to an encoder thread only when
//!   that thread has returned its previous result, and results come back on one channel. The
//!   counters (`stats`) are relaxed atomics, each exact on its own.
//!
//! # Invariants
//! 1. **Capacity goes to requests, not to connections.** Any number of connections up to
//!    [`ServerConfig::max_connections`] read their request heads concurrently, each under
//!    [`header_read_timeout`](ServerConfig::header_read_timeout); a full table closes the
//!    connection whose response write has stalled (its client has stopped reading: no progress
//!    for a second), else an idle keep-alive connection (the one that has served the fewest
//!    requests, then the one idle longest), else the one that has waited longest for its
//!    head, to admit a new one (`connection`'s module documentation says why in this order).
//!    Only when every connection has a request in progress and moving is a new connection
//!    refused. Idle, silent, slow or non-reading connections therefore never keep a scraper
//!    out.
//! 2. **A connection is recycled**: after `max_requests_per_connection` requests or
//!    `max_connection_age`, and when idle for `idle_timeout`.
//! 3. **Each source encodes at most once at a time.** Scrapes that arrive while a generation of
//!    encodes runs join the next one and share its result; so the encoding work does not grow
//!    with the number of clients, and every response holds data read after its request
//!    arrived.
//! 4. **A slow or hung source costs its own thread and nothing else.** A generation waits for a
//!    source at most [`encode_timeout`](ServerConfig::encode_timeout); the late encode goes on
//!    in the background, and the source is not asked again until it returns (the
//!    `agentcore_telemetry_http_encodes_overdue` gauge shows it). Threads are bounded by one per
//!    source plus the I/O thread, whatever sources do.
//! 5. **A scrape is answered in bounded time**: within twice `encode_timeout` (plus assembly;
//!    three times with OpenMetrics on, when scrapes of both formats arrive together), or 90 %
//!    of the scraper's `X-Prometheus-Scrape-Timeout-Seconds` if sooner; `503` if its data is
//!    not ready by then.
//! 6. **At most [`max_in_flight`](ServerConfig::max_in_flight) scrapes are in flight**; beyond
//!    it a scrape gets `503` at once, except that it takes the place of a scrape whose response
//!    write has stalled (no progress for a second, or 100 ms if that connection asks more often:
//!    the write is cut and the connection closed), or else, from a connection that asks less
//!    often than the most frequent asker among the waiting scrapes, that one's place (which
//!    gets the `503`).
//! 7. **Shutdown keeps its deadline.** [`MetricsServer::shutdown`] and `Drop` stop accepting,
//!    let responses in progress finish until [`shutdown_timeout`](ServerConfig::shutdown_timeout),
//!    close everything, join the threads that have ended and leave a hung source's thread
//!    behind. They return by the deadline whatever a source does.
//! 8. **Memory is bounded**: head buffers by `max_header_bytes` per connection; encode buffers
//!    by a few per source (pooled, reused across scrapes); response bodies by one exposition per
//!    in-flight scrape (each response being written holds its generation's body, which the
//!    scrapes of one generation share), so by `max_in_flight` expositions, twice that with
//!    gzip; connections by `max_connections`.
//!
//! # Self-metrics
//! With [`ServerConfig::self_metrics`] (on by default), every exposition ends with the server's
//! own families, named like client_golang's promhttp ones under our prefix:
//!
//! | family | type | what |
//! | --- | --- | --- |
//! | `agentcore_telemetry_http_requests_total{code}` | counter | requests answered, by status code (promhttp: `promhttp_metric_handler_requests_total`) |
//! | `agentcore_telemetry_http_requests_in_flight` | gauge | scrapes waiting for their encode or being written (promhttp: `..._requests_in_flight`) |
//! | `agentcore_telemetry_http_encode_duration_seconds{source}` | histogram | time each source took to encode |
//! | `agentcore_telemetry_http_source_failures_total{source,reason}` | counter | scrapes that went on without a source: `timeout`, `busy` (an earlier encode still running), `panic` |
//! | `agentcore_telemetry_http_encodes_overdue{source}` | gauge | 1 while a source's encode runs past `encode_timeout` |
//! | `agentcore_telemetry_http_connections_open` | gauge | connections open |
//! | `agentcore_telemetry_http_connections_accepted_total` | counter | connections accepted |
//! | `agentcore_telemetry_http_connections_rejected_total` | counter | connections closed at once because every connection had a request in progress |
//! | `agentcore_telemetry_http_connections_closed_total{reason}` | counter | connections closed: `client`, `requested`, `idle_timeout`, `header_timeout`, `evicted`, `max_requests`, `max_age`, `bad_request`, `write_timeout`, `io_error`, `shutdown` |
//!
//! The section is written once per generation, after the sources' parts, so it shows the state
//! as that generation's responses were assembled.
//!
//! # Formats
//! Every response is the text format 0.0.4 unless [`ServerConfig::openmetrics`] is on and the
//! request's `Accept` prefers OpenMetrics 1.0.0 (`negotiate`: RFC 9110 weights, specificity and
//! parameters); then it is OpenMetrics (exemplars included), written by every source's
//! [`ExpositionSource::encode_openmetrics_into`], then the server's own section, then `# EOF`.
//! Each format has its own next generation, so invariant 3 holds per format.

mod compression;
mod config;
mod connection;
mod encoder;
mod flag;
mod negotiate;
mod request;
mod response;
mod scrape;
mod server;
mod stall;
mod stats;
mod threads;
mod write;

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use config::ServerConfig;

/// `start + after`, saturating (`crate::net::deadline`): a duration too long to add
/// (`Duration::MAX`, "no limit") gives a deadline in the far future instead of a panic, so it
/// never fires. (Far, but well inside tokio's timer, which adds to a deadline and clamps it.)
pub(crate) fn later(start: Instant, after: Duration) -> Instant {
    crate::net::deadline::instant_after(start, after)
}

/// [`later`] for tokio's clock.
pub(crate) fn later_tokio(start: tokio::time::Instant, after: Duration) -> tokio::time::Instant {
    tokio::time::Instant::from_std(later(start.into_std(), after))
}

pub use crate::exposition::CONTENT_TYPE;

/// A [`Registry`](crate::Registry) serves its own exposition.
///
/// ```
/// use agentcore_telemetry::{ServerConfig, MetricsServer, Registry};
///
/// let registry = Registry::new();
/// registry.counter("up_total", "Up.").unwrap().inc();
/// let server = MetricsServer::start(
///     ServerConfig::default().with_addr("127.0.0.1:0".parse().unwrap()),
///     registry.clone(),
/// )
/// .unwrap();
/// server.shutdown();
/// ```
impl ExpositionSource for crate::Registry {
    fn encode_into(&self, out: &mut String) {
        self.encode_text_into(out);
    }

    fn supports_openmetrics(&self) -> bool {
        true
    }

    fn encode_openmetrics_into(&self, out: &mut String) {
        self.encode_openmetrics_families_into(out);
    }
}

/// Something that writes a Prometheus text exposition (format 0.0.4) into a reusable buffer.
///
/// The server calls [`encode_into`](Self::encode_into) on the source's own thread, at most once
/// at a time, with an empty `String` from its buffer pool (its capacity is kept across
/// scrapes). Any `Fn(&mut String) + Send + Sync + 'static` closure is a source.
///
/// ```
/// use agentcore_telemetry::serve::ExpositionSource;
///
/// struct Fixed;
/// impl ExpositionSource for Fixed {
///     fn encode_into(&self, out: &mut String) {
///         out.push_str("# TYPE up_total counter\nup_total 1\n");
///     }
/// }
///
/// let mut buf = String::new();
/// Fixed.encode_into(&mut buf);
/// let closure = |out: &mut String| out.push_str("x 1\n");
/// closure.encode_into(&mut buf);
/// assert!(buf.ends_with("x 1\n"));
/// ```
pub trait ExpositionSource: Send + Sync + 'static {
    /// Appends the exposition to `out`. Called on the source's encoder thread, once per
    /// generation of scrapes. It may block: a scrape waits for it at most
    /// [`ServerConfig::encode_timeout`], and while it runs no other encode of this source
    /// starts. A panic is caught (a required source's scrape is answered `500`).
    ///
    /// ```
    /// use agentcore_telemetry::serve::ExpositionSource;
    /// let source = |out: &mut String| out.push_str("# TYPE q gauge\nq 1\n");
    /// let mut buf = String::with_capacity(64);
    /// source.encode_into(&mut buf);
    /// assert_eq!(buf, "# TYPE q gauge\nq 1\n");
    /// ```
    fn encode_into(&self, out: &mut String);

    /// Whether [`encode_openmetrics_into`](Self::encode_openmetrics_into) writes OpenMetrics
    /// (default `false`: closures and other sources write 0.0.4 only). A server with
    /// [`ServerConfig::openmetrics`] on refuses to start with a source that does not.
    ///
    /// ```
    /// use agentcore_telemetry::serve::ExpositionSource;
    /// use agentcore_telemetry::Registry;
    ///
    /// let closure = |out: &mut String| out.push_str("up 1\n");
    /// assert!(!closure.supports_openmetrics()); // closures write 0.0.4 only
    /// assert!(Registry::new().supports_openmetrics());
    /// ```
    fn supports_openmetrics(&self) -> bool {
        false
    }

    /// Appends the source's families in OpenMetrics 1.0.0 text, **without** the final
    /// `# EOF` (the server writes it after every source and its own section). Called instead
    /// of [`encode_into`](Self::encode_into) for scrapes that negotiated OpenMetrics, under
    /// the same rules. The default writes nothing.
    ///
    /// ```
    /// use agentcore_telemetry::serve::ExpositionSource;
    /// use agentcore_telemetry::Registry;
    ///
    /// let registry = Registry::new();
    /// registry.counter("jobs_total", "Jobs.").unwrap().inc();
    /// let mut out = String::new();
    /// assert!(registry.supports_openmetrics());
    /// // The trait's method (the inherent `Registry::encode_openmetrics_into` ends with `# EOF`).
    /// ExpositionSource::encode_openmetrics_into(&registry, &mut out);
    /// assert!(out.contains("jobs_total 1\n") && !out.contains("# EOF"));
    /// ```
    fn encode_openmetrics_into(&self, out: &mut String) {
        let _ = out;
    }
}

impl<F: Fn(&mut String) + Send + Sync + 'static> ExpositionSource for F {
    fn encode_into(&self, out: &mut String) {
        self(out)
    }
}

/// Counters the server keeps about itself; a snapshot from [`MetricsServer::stats`]. The same
/// counts appear in the exposition as the `agentcore_telemetry_http_*` families.
///
/// ```
/// use agentcore_telemetry::serve::{ServerConfig, MetricsServer};
///
/// let server = MetricsServer::start(
///     ServerConfig::default().with_addr("127.0.0.1:0".parse().unwrap()),
///     |out: &mut String| out.push_str("a 1\n"),
/// )?;
/// let stats = server.stats();
/// assert_eq!((stats.scrapes, stats.scrape_errors), (0, 0));
/// assert_eq!(stats.last_encode_bytes, 0);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ServerStats {
    /// `/metrics` requests answered `200` (GET and HEAD).
    pub scrapes: u64,
    /// `/metrics` requests answered `500`: a required source panicked.
    pub scrape_errors: u64,
    /// `/metrics` requests answered `503` because their data was not ready in time (a required
    /// source missed `encode_timeout` or was still busy with an earlier encode).
    pub scrapes_unavailable: u64,
    /// `/metrics` requests answered `503` at once by the in-flight limit (including those
    /// whose place a less frequent asker took).
    pub scrapes_rejected: u64,
    /// Times a scrape went on without a source (timed out, busy or panicked), required or not.
    pub source_failures: u64,
    /// Sources whose encode is running past `encode_timeout` now.
    pub encodes_overdue: u64,
    /// Connections that ended on a fault of the client or the network: a head not complete in
    /// time, a malformed or oversize request (or one with a transfer coding the server does not
    /// understand, `501`), a response not written in time, a socket error, an accept error.
    /// Not errors: a client that closes, an idle connection that expires, a connection evicted
    /// or recycled, a `404`, `405` or `501` for an unrecognised method.
    pub connection_errors: u64,
    /// Connections accepted since start.
    pub connections_accepted: u64,
    /// Connections open now.
    pub active_connections: u64,
    /// Connections closed to make room for new ones, or for a scrape when every in-flight place
    /// was held (a connection whose response write had stalled: its client stopped reading).
    pub connections_evicted: u64,
    /// Connections closed at once because every open connection had a request in progress.
    pub connections_rejected: u64,
    /// Scrapes in flight now: admitted and waiting for their encode, or being written (at most
    /// [`max_in_flight`](ServerConfig::max_in_flight)); the exposition's
    /// `agentcore_telemetry_http_requests_in_flight`.
    pub requests_in_flight: u64,
    /// The longest source encode of the last served generation.
    pub last_encode_duration: Duration,
    /// Size of the last served exposition, uncompressed (the server's own section included),
    /// in bytes.
    pub last_encode_bytes: u64,
    /// Size of the last `200` response body as sent (after gzip, if any), in bytes. A `200`
    /// to `HEAD` sends no body and leaves it unchanged.
    pub last_response_bytes: u64,
}

/// Builds a [`MetricsServer`] that serves several sources; from [`MetricsServer::builder`].
///
/// Sources are encoded concurrently, each on its own thread, and written in the order they were
/// added, followed by the server's own section. Their families must not overlap.
///
/// ```
/// use agentcore_telemetry::serve::{MetricsServer, ServerConfig};
/// use agentcore_telemetry::Registry;
///
/// let registry = Registry::new();
/// registry.counter("jobs_total", "Jobs.").unwrap().inc();
/// let server = MetricsServer::builder(
///     ServerConfig::default().with_addr("127.0.0.1:0".parse().unwrap()),
/// )
/// .source("registry", registry)
/// // A source that reads something slow: left out of a scrape it cannot make in time.
/// .best_effort_source("inventory", |out: &mut String| {
///     out.push_str("# TYPE inventory_items gauge\ninventory_items 7\n");
/// })
/// .start()?;
/// server.shutdown();
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct ServerBuilder {
    config: ServerConfig,
    sources: Vec<encoder::Source>,
}

impl std::fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sources: Vec<(&str, bool)> = self
            .sources
            .iter()
            .map(|s| (&*s.name, s.required))
            .collect();
        f.debug_struct("ServerBuilder")
            .field("config", &self.config)
            .field("sources (name, required)", &sources)
            .finish()
    }
}

impl ServerBuilder {
    /// Adds a *required* source: a scrape without its part (it missed `encode_timeout`, or an
    /// earlier encode of it still runs) is answered `503`, and `500` if it panicked. `name`
    /// labels its self-metrics (`source="<name>"`).
    ///
    /// ```
    /// # use agentcore_telemetry::serve::{MetricsServer, ServerConfig};
    /// let b = MetricsServer::builder(ServerConfig::default())
    ///     .source("main", |out: &mut String| out.push_str("a 1\n"));
    /// assert!(format!("{b:?}").contains("\"main\", true"));
    /// ```
    #[must_use]
    pub fn source(self, name: &str, source: impl ExpositionSource) -> Self {
        self.add(name, true, source)
    }

    /// Adds a *best-effort* source: a scrape its part does not make in time (or that finds it
    /// still busy, or panicking) goes on without it, and
    /// `agentcore_telemetry_http_source_failures_total{source="<name>"}` counts the miss.
    ///
    /// ```
    /// # use agentcore_telemetry::serve::{MetricsServer, ServerConfig};
    /// let b = MetricsServer::builder(ServerConfig::default())
    ///     .best_effort_source("extra", |out: &mut String| out.push_str("b 1\n"));
    /// assert!(format!("{b:?}").contains("\"extra\", false"));
    /// ```
    #[must_use]
    pub fn best_effort_source(self, name: &str, source: impl ExpositionSource) -> Self {
        self.add(name, false, source)
    }

    fn add(mut self, name: &str, required: bool, source: impl ExpositionSource) -> Self {
        self.sources.push(encoder::Source {
            name: name.into(),
            required,
            source: Arc::new(source),
        });
        self
    }

    /// Validates the configuration and the sources (at least one, names unique), binds
    /// `config.addr` and starts serving.
    ///
    /// Errors: an invalid config or source list (`InvalidInput`), a bind failure (e.g.
    /// `AddrInUse`), or failing to build the runtime or spawn a thread.
    ///
    /// ```
    /// # use agentcore_telemetry::serve::{MetricsServer, ServerConfig};
    /// let none = MetricsServer::builder(ServerConfig::default()).start();
    /// assert_eq!(none.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    /// let twice = MetricsServer::builder(ServerConfig::default().with_addr("127.0.0.1:0".parse().unwrap()))
    ///     .source("a", |out: &mut String| out.push_str("a 1\n"))
    ///     .source("a", |out: &mut String| out.push_str("b 1\n"))
    ///     .start();
    /// assert_eq!(twice.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    /// ```
    pub fn start(self) -> std::io::Result<MetricsServer> {
        let invalid = |msg: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, msg);
        self.config.validate()?;
        if self.sources.is_empty() {
            return Err(invalid("a metrics server needs at least one source".into()));
        }
        if self.config.openmetrics {
            if let Some(s) = self
                .sources
                .iter()
                .find(|s| !s.source.supports_openmetrics())
            {
                return Err(invalid(format!(
                    "OpenMetrics is enabled but source {:?} writes the text format 0.0.4 only",
                    s.name
                )));
            }
        }
        for (i, s) in self.sources.iter().enumerate() {
            if self.sources[..i].iter().any(|t| t.name == s.name) {
                return Err(invalid(format!("two sources named {:?}", s.name)));
            }
        }
        MetricsServer::launch(self.config, self.sources)
    }
}

/// A running `/metrics` HTTP server on its own threads (see the [module documentation](self)).
///
/// Dropping it shuts it down like [`shutdown`](Self::shutdown).
///
/// ```
/// use agentcore_telemetry::serve::{ServerConfig, MetricsServer};
/// use std::io::{Read, Write};
///
/// let server = MetricsServer::start(
///     ServerConfig::default()
///         .with_addr("127.0.0.1:0".parse().unwrap())
///         .with_self_metrics(false),
///     |out: &mut String| out.push_str("# TYPE jobs gauge\njobs 2\n"),
/// )?;
/// let mut conn = std::net::TcpStream::connect(server.local_addr())?;
/// conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
/// let mut response = String::new();
/// conn.read_to_string(&mut response)?;
/// assert!(response.starts_with("HTTP/1.1 200 OK"));
/// assert!(response.ends_with("jobs 2\n"));
/// assert_eq!(server.stats().scrapes, 1);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct MetricsServer {
    local_addr: SocketAddr,
    stats: Arc<stats::Stats>,
    shutdown_timeout: Duration,
    stop: Option<server::Stop>,
    /// The encoder threads, then the I/O thread (indexed as their exit signals).
    threads: Vec<Option<JoinHandle<()>>>,
    exited: std::sync::mpsc::Receiver<usize>,
}

impl std::fmt::Debug for MetricsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsServer")
            .field("local_addr", &self.local_addr)
            .field("running", &self.stop.is_some())
            .finish_non_exhaustive()
    }
}

impl MetricsServer {
    /// Validates `config`, binds `config.addr` (port 0 allowed) and serves `source` (required,
    /// named `main`) on background threads.
    ///
    /// Errors: an invalid config (`InvalidInput`), a bind failure (e.g. `AddrInUse`), or failing
    /// to build the runtime or spawn a thread.
    ///
    /// ```
    /// use agentcore_telemetry::serve::{ServerConfig, MetricsServer};
    ///
    /// let a = MetricsServer::start(
    ///     ServerConfig::default().with_addr("127.0.0.1:0".parse().unwrap()),
    ///     |out: &mut String| out.push_str("a 1\n"),
    /// )?;
    /// // The same port twice is an error, not a panic.
    /// let b = MetricsServer::start(
    ///     ServerConfig::default().with_addr(a.local_addr()),
    ///     |out: &mut String| out.push_str("b 1\n"),
    /// );
    /// assert_eq!(b.unwrap_err().kind(), std::io::ErrorKind::AddrInUse);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn start(
        config: ServerConfig,
        source: impl ExpositionSource,
    ) -> std::io::Result<MetricsServer> {
        Self::builder(config).source("main", source).start()
    }

    /// A builder for a server with several sources.
    ///
    /// ```
    /// use agentcore_telemetry::serve::{MetricsServer, ServerConfig};
    /// let server = MetricsServer::builder(ServerConfig::default().with_addr("127.0.0.1:0".parse().unwrap()))
    ///     .source("a", |out: &mut String| out.push_str("a 1\n"))
    ///     .source("b", |out: &mut String| out.push_str("b 1\n"))
    ///     .start()?;
    /// assert_eq!(server.stats().scrapes, 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn builder(config: ServerConfig) -> ServerBuilder {
        ServerBuilder {
            config,
            sources: Vec::new(),
        }
    }

    fn launch(
        config: ServerConfig,
        sources: Vec<encoder::Source>,
    ) -> std::io::Result<MetricsServer> {
        let bound = server::bind(config.addr)?;
        let local_addr = bound.local_addr();
        let names: Vec<(Box<str>, bool)> = sources
            .iter()
            .map(|s| (s.name.clone(), s.required))
            .collect();
        let stats = Arc::new(stats::Stats::new(&names, config.encode_timeout));
        let (results_tx, results) = tokio::sync::mpsc::unbounded_channel();
        let (exited_tx, exited) = std::sync::mpsc::channel();
        let mut threads = Vec::with_capacity(sources.len() + 1);
        let mut encoders = Vec::with_capacity(sources.len());
        for (index, source) in sources.into_iter().enumerate() {
            // On an error here, the threads already started end when `encoders` is dropped.
            let (jobs, handle) = encoder::spawn(
                index,
                source.source,
                Arc::clone(&stats),
                results_tx.clone(),
                exited_tx.clone(),
            )?;
            encoders.push(jobs);
            threads.push(Some(handle));
        }
        drop(results_tx);
        let (stop, stop_rx) = tokio::sync::watch::channel(None);
        let shutdown_timeout = config.shutdown_timeout;
        let parts = server::Parts {
            bound,
            config,
            stats: Arc::clone(&stats),
            encoders,
            results,
            stop: stop_rx,
        };
        let io_index = threads.len();
        let io = std::thread::Builder::new()
            .name("agentcore-metrics-server".into())
            .spawn(move || {
                let _exit = threads::ExitSignal::new(io_index, exited_tx);
                server::run(parts);
            })?;
        threads.push(Some(io));
        Ok(MetricsServer {
            local_addr,
            stats,
            shutdown_timeout,
            stop: Some(stop),
            threads,
            exited,
        })
    }

    /// The address the server listens on (with the real port when bound to port 0).
    ///
    /// ```
    /// # use agentcore_telemetry::serve::{ServerConfig, MetricsServer};
    /// let server = MetricsServer::start(
    ///     ServerConfig::default().with_addr("127.0.0.1:0".parse().unwrap()),
    ///     |out: &mut String| out.push_str("a 1\n"),
    /// )?;
    /// assert_ne!(server.local_addr().port(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A snapshot of the server's own counters (plain relaxed atomics).
    ///
    /// ```
    /// # use agentcore_telemetry::serve::{ServerConfig, MetricsServer};
    /// let server = MetricsServer::start(
    ///     ServerConfig::default().with_addr("127.0.0.1:0".parse().unwrap()),
    ///     |out: &mut String| out.push_str("a 1\n"),
    /// )?;
    /// let s = server.stats();
    /// println!("{} scrapes, last took {:?} for {} bytes",
    ///     s.scrapes, s.last_encode_duration, s.last_encode_bytes);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn stats(&self) -> ServerStats {
        let s = &self.stats;
        ServerStats {
            scrapes: s.scrapes.load(Relaxed),
            scrape_errors: s.scrape_errors.load(Relaxed),
            scrapes_unavailable: s.scrapes_unavailable.load(Relaxed),
            scrapes_rejected: s.scrapes_rejected.load(Relaxed),
            source_failures: s.source_failures(),
            encodes_overdue: s.encodes_overdue(),
            connection_errors: s.connection_errors(),
            connections_accepted: s.connections_accepted.load(Relaxed),
            active_connections: s.connections_open.load(Relaxed),
            connections_evicted: s.closed_count(stats::Close::Evicted),
            connections_rejected: s.connections_rejected.load(Relaxed),
            requests_in_flight: s.in_flight.load(Relaxed),
            last_encode_duration: Duration::from_nanos(s.last_encode_nanos.load(Relaxed)),
            last_encode_bytes: s.last_encode_bytes.load(Relaxed),
            last_response_bytes: s.last_response_bytes.load(Relaxed),
        }
    }

    /// Stops accepting connections, lets responses in progress finish until
    /// [`ServerConfig::shutdown_timeout`], closes every connection and the listening socket,
    /// joins the threads that have ended, and returns the final [`stats`](Self::stats). It
    /// returns by the deadline whatever a source does: the thread of a source that is still
    /// encoding is left to end on its own (`encodes_overdue` counts it if it is past
    /// `encode_timeout`).
    ///
    /// ```
    /// # use agentcore_telemetry::serve::{ServerConfig, MetricsServer};
    /// let server = MetricsServer::start(
    ///     ServerConfig::default().with_addr("127.0.0.1:0".parse().unwrap()),
    ///     |out: &mut String| out.push_str("a 1\n"),
    /// )?;
    /// let addr = server.local_addr();
    /// server.shutdown();
    /// assert!(std::net::TcpStream::connect(addr).is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown(self) -> ServerStats {
        let timeout = self.shutdown_timeout;
        self.shutdown_with_timeout(timeout)
    }

    /// [`shutdown`](Self::shutdown) with another deadline than the configured one.
    ///
    /// ```
    /// # use agentcore_telemetry::serve::{ServerConfig, MetricsServer};
    /// # use std::time::{Duration, Instant};
    /// let server = MetricsServer::start(
    ///     ServerConfig::default().with_addr("127.0.0.1:0".parse().unwrap()),
    ///     |_: &mut String| std::thread::sleep(Duration::from_secs(3600)), // a hung source
    /// )?;
    /// let started = Instant::now();
    /// server.shutdown_with_timeout(Duration::from_millis(100));
    /// assert!(started.elapsed() < Duration::from_secs(5));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown_with_timeout(mut self, timeout: Duration) -> ServerStats {
        self.stop(timeout);
        self.stats()
    }

    fn stop(&mut self, timeout: Duration) {
        let Some(stop) = self.stop.take() else {
            return;
        };
        let deadline = later(Instant::now(), timeout);
        // The I/O thread drains until a little before the deadline, to have closed its
        // sockets by then. Closing takes time of its own: the kernel frees each socket's
        // queues, and 64 writers stalled on full send buffers (with some 50 other connections)
        // took 92 ms to close, past the 50 ms this margin used to be, so the I/O thread was
        // left behind mid-teardown and the stats returned still counted open connections.
        let drain_until = deadline
            .checked_sub(Duration::from_millis(250).min(timeout / 4))
            .unwrap_or(deadline);
        // The I/O thread may already be gone; then there is nothing to tell.
        let _ = stop.send(Some(drain_until));
        // An encoder thread stuck past `encode_timeout` is not waited for (it may never
        // return); the others end as soon as their job channel closes, the I/O thread by the
        // drain deadline.
        let worth_waiting: Vec<bool> = (0..self.threads.len())
            .map(|i| !self.stats.overdue(i))
            .collect();
        threads::join_by(deadline, &mut self.threads, &worth_waiting, &self.exited);
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop(self.shutdown_timeout);
    }
}
