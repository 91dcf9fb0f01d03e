//! Configuration of the `/metrics` server: every limit it enforces, with its default and why.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

/// Settings of a [`MetricsServer`](super::MetricsServer): where it listens and every limit it
/// enforces.
///
/// Build it from [`Default`] and the `with_*` setters; the struct is `#[non_exhaustive]`, so
/// new settings can be added without breaking callers. The defaults are chosen so that a
/// Prometheus with its default `scrape_timeout` (10 s) is answered in time whatever other
/// clients do (see the [module documentation](super) for how):
///
/// | setting | default | what it bounds, and why this default |
/// | --- | --- | --- |
/// | [`addr`](Self::addr) | `127.0.0.1:9464` | where to listen (port 0 picks a free port); loopback until you choose otherwise, on the OpenTelemetry Prometheus exporter's port |
/// | [`max_connections`](Self::max_connections) | 256 | open connections. When full, a new connection closes, in this order, one whose response write has stalled (its client stopped reading), an idle keep-alive connection (the one that has served the fewest requests, then the one idle longest), or the one that has waited longest for its head to arrive; only when every connection has a request in progress and moving is the newcomer refused. So the limit bounds file descriptors and memory, never who gets served. 256 is far above the handful of scrapers a target has, and a quarter of the common 1 024 descriptor limit |
/// | [`header_read_timeout`](Self::header_read_timeout) | 2 s | from a request's first byte (or from accept, for a connection's first request) to the end of its head. A scraper sends its ~200-byte head in one segment; 2 s allows a TCP retransmission, and is a fifth of Prometheus's default scrape timeout. A slowloris client loses its connection after this |
/// | [`idle_timeout`](Self::idle_timeout) | 120 s | how long a keep-alive connection may wait for its next request: longer than the usual scrape intervals (up to 60 s), so a scraper keeps its connection between scrapes. Idle connections are also the first to be closed when the table is full |
/// | [`write_timeout`](Self::write_timeout) | 10 s | time to write one whole response; a client that stops reading is dropped after this, or once its write has made no progress for a second (100 ms, for an in-flight place wanted by a connection that asks less often) when its connection or in-flight place is needed for another |
/// | [`max_requests_per_connection`](Self::max_requests_per_connection) | 1 000 | requests served on one connection before it is closed (`Connection: close` on the last response), as nginx's `keepalive_requests`: a greedy client has to come back through `accept` like everyone else |
/// | [`max_connection_age`](Self::max_connection_age) | 5 min | a connection is closed after its first response past this age (or when found idle past it): a scraper reconnects at most every five minutes, and no client keeps its place indefinitely |
/// | [`max_header_bytes`](Self::max_header_bytes) | 16 KiB | request line and header fields, and the empty lines a client may send before them; larger gets `431` (`414` if the request target alone reaches it) and the connection closed. Scrape requests are ~200 bytes; 16 KiB per connection bounds head buffers to 4 MiB at the connection limit |
/// | [`max_headers`](Self::max_headers) | 256 | header fields in a request; more gets `431`. 256 admits any request head of up to 1 KiB (a field line is at least 4 bytes) |
/// | [`max_in_flight`](Self::max_in_flight) | 64 | scrapes being served at once (waiting for their encode or being written), like promhttp's `MaxRequestsInFlight`. Beyond it a scrape is answered `503` at once, unless one of those being written has stalled (see `write_timeout`: that write is cut and its connection closed), or it comes from a connection that asks less often than one of those waiting: that one gets the `503` instead, so greedy clients cannot crowd out a scraper that asks every few seconds. Scrapes that wait together share one encode, so 64 bounds the fan-out of one encode (64 responses) rather than the encoding work |
/// | [`encode_timeout`](Self::encode_timeout) | 4 s | how long one encode may take per source. A required source that misses it gets the scrape a `503`; a best-effort source is left out. The encode goes on in the background, and the source is not asked again until it returns. A scrape may wait for the encode in progress before its own, so it is answered within twice this (8 s, under Prometheus's default 10 s), or by the deadline in the scraper's `X-Prometheus-Scrape-Timeout-Seconds` if that is sooner. With [`openmetrics`](Self::openmetrics) on, a scrape may also wait for one encode of the other format (scrapes of both formats arriving together), so within three times this. Keep it under half your `scrape_timeout` (a third with both formats scraped) |
/// | [`openmetrics`](Self::openmetrics) | off | answer a scrape whose `Accept` prefers it (Prometheus 2.42 does by default) with OpenMetrics 1.0.0, exemplars included; otherwise always the text format 0.0.4. Off by default because switching a running target's format changes series identity in Prometheus 2.x (`le="1"` becomes `le="1.0"`). Every source must support it ([`ExpositionSource::supports_openmetrics`](super::ExpositionSource::supports_openmetrics)) |
/// | [`self_metrics`](Self::self_metrics) | on | append the server's own metrics (`agentcore_telemetry_http_*`) to every exposition |
/// | [`shutdown_timeout`](Self::shutdown_timeout) | 2 s | how long [`shutdown`](super::MetricsServer::shutdown) and `Drop` wait for responses in progress; they return by then, whatever a source does |
///
/// ```
/// use agentcore_telemetry::serve::ServerConfig;
/// use std::time::Duration;
///
/// let config = ServerConfig::default()
///     .with_addr("127.0.0.1:0".parse().unwrap())
///     .with_header_read_timeout(Duration::from_secs(1))
///     .with_max_connections(64);
/// assert_eq!(config.max_connections, 64);
/// assert_eq!(config.max_in_flight, 64);
/// assert_eq!(config.write_timeout, Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Address to bind. Port 0 lets the OS pick one; read it back with
    /// [`MetricsServer::local_addr`](super::MetricsServer::local_addr).
    pub addr: SocketAddr,
    /// Most connections open at once (at least 1). A connection beyond it closes an open one:
    /// one whose response write has stalled, else an idle keep-alive connection (the one that
    /// has served the fewest requests, then the one idle longest), else the one that has waited
    /// longest for its head to arrive; if every open connection has a request in progress
    /// and moving, the new one is closed at once (and counted as rejected).
    pub max_connections: usize,
    /// Deadline for a request head: from its first byte, or from accept for a connection's
    /// first request, to its end. Missed: `408` and the connection closed.
    pub header_read_timeout: Duration,
    /// How long a keep-alive connection may wait, silent, for its next request before it is
    /// closed.
    pub idle_timeout: Duration,
    /// Deadline for writing one whole response; missed: the connection is closed.
    pub write_timeout: Duration,
    /// Requests served on one connection before it is closed (at least 1).
    pub max_requests_per_connection: u64,
    /// Age after which a connection is closed at its next response, or when found idle.
    pub max_connection_age: Duration,
    /// Largest request head (request line and header fields) accepted, in bytes (at least
    /// 1024). Larger: `431 Request Header Fields Too Large` (`414 URI Too Long` when the limit is
    /// reached inside the request target), and the connection closed.
    pub max_header_bytes: usize,
    /// Most header fields in one request (at least 8). More: `431`, and the connection closed.
    pub max_headers: usize,
    /// Most scrapes served at once (at least 1); see the table above for who gets the `503`.
    pub max_in_flight: usize,
    /// How long an encode may take per source before the scrape goes on without it (a
    /// required source: `503`).
    pub encode_timeout: Duration,
    /// Whether to serve OpenMetrics 1.0.0 to scrapes whose `Accept` prefers it.
    pub openmetrics: bool,
    /// Whether to append the server's own metrics to the exposition.
    pub self_metrics: bool,
    /// How long shutdown waits for responses in progress.
    pub shutdown_timeout: Duration,
}

impl Default for ServerConfig {
    /// ```
    /// use agentcore_telemetry::serve::ServerConfig;
    /// assert_eq!(ServerConfig::default().addr, "127.0.0.1:9464".parse().unwrap());
    /// ```
    fn default() -> Self {
        ServerConfig {
            addr: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9464)),
            max_connections: 256,
            header_read_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(120),
            write_timeout: Duration::from_secs(10),
            max_requests_per_connection: 1000,
            max_connection_age: Duration::from_secs(300),
            max_header_bytes: 16 * 1024,
            max_headers: 256,
            max_in_flight: 64,
            encode_timeout: Duration::from_secs(4),
            openmetrics: false,
            self_metrics: true,
            shutdown_timeout: Duration::from_secs(2),
        }
    }
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident, $field:ident: $ty:ty) => {
        $(#[$doc])*
        #[must_use]
        pub fn $name(mut self, $field: $ty) -> Self {
            self.$field = $field;
            self
        }
    };
}

impl ServerConfig {
    setter!(
        /// Sets [`addr`](Self::addr).
        ///
        /// ```
        /// # use agentcore_telemetry::serve::ServerConfig;
        /// let c = ServerConfig::default().with_addr("0.0.0.0:9100".parse().unwrap());
        /// assert_eq!(c.addr.port(), 9100);
        /// ```
        with_addr, addr: SocketAddr
    );
    setter!(
        /// Sets [`max_connections`](Self::max_connections).
        ///
        /// ```
        /// # use agentcore_telemetry::serve::ServerConfig;
        /// assert_eq!(ServerConfig::default().with_max_connections(4).max_connections, 4);
        /// ```
        with_max_connections, max_connections: usize
    );
    setter!(
        /// Sets [`header_read_timeout`](Self::header_read_timeout).
        ///
        /// ```
        /// # use agentcore_telemetry::serve::ServerConfig;
        /// # use std::time::Duration;
        /// let c = ServerConfig::default().with_header_read_timeout(Duration::from_millis(500));
        /// assert_eq!(c.header_read_timeout, Duration::from_millis(500));
        /// ```
        with_header_read_timeout, header_read_timeout: Duration
    );
    setter!(
        /// Sets [`idle_timeout`](Self::idle_timeout).
        ///
        /// ```
        /// # use agentcore_telemetry::serve::ServerConfig;
        /// # use std::time::Duration;
        /// let c = ServerConfig::default().with_idle_timeout(Duration::from_secs(30));
        /// assert_eq!(c.idle_timeout, Duration::from_secs(30));
        /// ```
        with_idle_timeout, idle_timeout: Duration
    );
    setter!(
        /// Sets [`write_timeout`](Self::write_timeout).
        ///
        /// ```
        /// # use agentcore_telemetry::serve::ServerConfig;
        /// # use std::time::Duration;
        /// let c = ServerConfig::default().with_write_timeout(Duration::from_secs(3));
        /// assert_eq!(c.write_timeout, Duration::from_secs(3));
        /// ```
        with_write_timeout, write_timeout: Duration
    );
    setter!(
        /// Sets [`max_requests_per_connection`](Self::max_requests_per_connection).
        ///
        /// ```
        /// # use agentcore_telemetry::serve::ServerConfig;
        /// let c = ServerConfig::default().with_max_requests_per_connection(100);
        /// assert_eq!(c.max_requests_per_connection, 100);
        /// ```
        with_max_requests_per_connection, max_requests_per_connection: u64
    );
    setter!(
        /// Sets [`max_connection_age`](Self::max_connection_age).
        ///
        /// ```
        /// # use agentcore_telemetry::serve::ServerConfig;
        /// # use std::time::Duration;
        /// let c = ServerConfig::default().with_max_connection_age(Duration::from_secs(60));
        /// assert_eq!(c.max_connection_age, Duration::from_secs(60));
        /// ```
        with_max_connection_age, max_connection_age: Duration
    );
    setter!(
        /// Sets [`max_header_bytes`](Self::max_header_bytes).
        ///
        /// ```
        /// # use agentcore_telemetry::serve::ServerConfig;
        /// assert_eq!(ServerConfig::default().with_max_header_bytes(4096).max_header_bytes, 4096);
        /// ```
        with_max_header_bytes, max_header_bytes: usize
    );
    setter!(
        /// Sets [`max_headers`](Self::max_headers).
        ///
        /// ```
        /// # use agentcore_telemetry::serve::ServerConfig;
        /// assert_eq!(ServerConfig::default().with_max_headers(32).max_headers, 32);
        /// ```
        with_max_headers, max_headers: usize
    );
    setter!(
        /// Sets [`max_in_flight`](Self::max_in_flight).
        ///
        /// ```
        /// # use agentcore_telemetry::serve::ServerConfig;
        /// assert_eq!(ServerConfig::default().with_max_in_flight(8).max_in_flight, 8);
        /// ```
        with_max_in_flight, max_in_flight: usize
    );
    setter!(
        /// Sets [`encode_timeout`](Self::encode_timeout).
        ///
        /// ```
        /// # use agentcore_telemetry::serve::ServerConfig;
        /// # use std::time::Duration;
        /// let c = ServerConfig::default().with_encode_timeout(Duration::from_millis(300));
        /// assert_eq!(c.encode_timeout, Duration::from_millis(300));
        /// ```
        with_encode_timeout, encode_timeout: Duration
    );
    setter!(
        /// Sets [`openmetrics`](Self::openmetrics).
        ///
        /// ```
        /// # use agentcore_telemetry::serve::ServerConfig;
        /// assert!(ServerConfig::default().with_openmetrics(true).openmetrics);
        /// assert!(!ServerConfig::default().openmetrics);
        /// ```
        with_openmetrics, openmetrics: bool
    );
    setter!(
        /// Sets [`self_metrics`](Self::self_metrics).
        ///
        /// ```
        /// # use agentcore_telemetry::serve::ServerConfig;
        /// assert!(!ServerConfig::default().with_self_metrics(false).self_metrics);
        /// ```
        with_self_metrics, self_metrics: bool
    );
    setter!(
        /// Sets [`shutdown_timeout`](Self::shutdown_timeout).
        ///
        /// ```
        /// # use agentcore_telemetry::serve::ServerConfig;
        /// # use std::time::Duration;
        /// let c = ServerConfig::default().with_shutdown_timeout(Duration::ZERO);
        /// assert_eq!(c.shutdown_timeout, Duration::ZERO);
        /// ```
        with_shutdown_timeout, shutdown_timeout: Duration
    );

    /// Checks the settings, as [`MetricsServer::start`](super::MetricsServer::start) does.
    pub(crate) fn validate(&self) -> std::io::Result<()> {
        let invalid = |msg: &str| {
            Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("invalid server config: {msg}"),
            ))
        };
        for (name, value) in [
            ("header_read_timeout", self.header_read_timeout),
            ("idle_timeout", self.idle_timeout),
            ("write_timeout", self.write_timeout),
            ("max_connection_age", self.max_connection_age),
            ("encode_timeout", self.encode_timeout),
        ] {
            if value.is_zero() {
                return invalid(&format!("{name} must be > 0"));
            }
        }
        if self.max_connections == 0 {
            return invalid("max_connections must be >= 1");
        }
        if self.max_requests_per_connection == 0 {
            return invalid("max_requests_per_connection must be >= 1");
        }
        if self.max_header_bytes < 1024 {
            return invalid("max_header_bytes must be >= 1024");
        }
        if self.max_headers < 8 {
            return invalid("max_headers must be >= 8");
        }
        if self.max_in_flight == 0 {
            return invalid("max_in_flight must be >= 1");
        }
        Ok(())
    }
}
