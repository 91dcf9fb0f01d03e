//! The `/metrics` HTTP server: serves a Prometheus text exposition (format 0.0.4) over HTTP/1.1.
//!
//! Available with the cargo feature **`http-server`**, which is on by default; build with
//! `default-features = false` to leave out the HTTP stack (hyper 1.x on a one-thread tokio
//! runtime, plus flate2 for gzip).
//!
//! [`MetricsServer::start`] binds a socket and spawns one background thread that serves:
//!
//! * `GET /metrics` and `HEAD /metrics`: `200` with [`CONTENT_TYPE`], gzip-compressed
//!   (`Content-Encoding: gzip`) when the request's `Accept-Encoding` accepts gzip;
//! * any other method on `/metrics`: `405` with `Allow: GET, HEAD`;
//! * any other path: `404`.
//!
//! The exposition is encoded into a pooled buffer and only then written, so no lock of the
//! source is held across a socket write, and slow clients never stall recorders. Request heads
//! are bounded in size, reads and writes in time, connections in number (see
//! [`ServerConfig`]).
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

mod compression;
mod config;
mod http;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

pub use config::ServerConfig;

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
}

/// Something that writes a Prometheus text exposition (format 0.0.4) into a reusable buffer.
///
/// The server calls [`encode_into`](Self::encode_into) once per scrape, with an empty
/// `String` taken from its buffer pool (its capacity is kept across scrapes). Any
/// `Fn(&mut String) + Send + Sync + 'static` closure is a source.
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
    /// Appends the exposition to `out`. Called on the server thread, once per scrape; keep
    /// it short and do not block on I/O. A panic is caught and answered with `500`.
    ///
    /// ```
    /// use agentcore_telemetry::serve::ExpositionSource;
    /// let source = |out: &mut String| out.push_str("# TYPE q gauge\nq 1\n");
    /// let mut buf = String::with_capacity(64);
    /// source.encode_into(&mut buf);
    /// assert_eq!(buf, "# TYPE q gauge\nq 1\n");
    /// ```
    fn encode_into(&self, out: &mut String);
}

impl<F: Fn(&mut String) + Send + Sync + 'static> ExpositionSource for F {
    fn encode_into(&self, out: &mut String) {
        self(out)
    }
}

/// Counters the server keeps about itself; a snapshot from [`MetricsServer::stats`].
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
    /// `/metrics` responses produced (GET and HEAD), successful encodes.
    pub scrapes: u64,
    /// Scrapes whose source panicked while encoding (answered `500`).
    pub scrape_errors: u64,
    /// Connections that ended on an error: a stalled request or response (read/write
    /// timeout), an oversize or malformed request, an I/O error. Not errors: a client that
    /// disconnects, and a keep-alive connection closed after idling for the read timeout.
    pub connection_errors: u64,
    /// Connections accepted since start.
    pub connections_accepted: u64,
    /// Connections open now.
    pub active_connections: u64,
    /// Time the source took for the last scrape's [`ExpositionSource::encode_into`].
    pub last_encode_duration: Duration,
    /// Size of the last scrape's exposition, uncompressed, in bytes.
    pub last_encode_bytes: u64,
    /// Size of the last scrape's response body as sent (after gzip, if any), in bytes.
    pub last_response_bytes: u64,
}

/// A running `/metrics` HTTP server on its own background thread.
///
/// Dropping it shuts it down like [`shutdown`](Self::shutdown): it stops accepting, lets
/// in-flight responses finish (up to [`ServerConfig::shutdown_timeout`]), closes the port
/// and joins the thread.
///
/// ```
/// use agentcore_telemetry::serve::{ServerConfig, MetricsServer};
/// use std::io::{Read, Write};
///
/// let server = MetricsServer::start(
///     ServerConfig::default().with_addr("127.0.0.1:0".parse().unwrap()),
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
    shared: Arc<http::Shared>,
    shutdown_tx: Option<tokio::sync::watch::Sender<bool>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for MetricsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsServer")
            .field("local_addr", &self.local_addr)
            .field("running", &self.thread.is_some())
            .finish_non_exhaustive()
    }
}

impl MetricsServer {
    /// Validates `config`, binds `config.addr` (port 0 allowed) and starts serving `source` on a
    /// background thread named `agentcore-metrics-server`.
    ///
    /// Errors: an invalid config (`InvalidInput`), a bind failure (e.g. `AddrInUse`), or failing
    /// to build the runtime or spawn the thread.
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
        config.validate()?;
        let (server, shared) = http::Server::bind(config, Box::new(source))?;
        let local_addr = server.local_addr();
        let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
        let thread = std::thread::Builder::new()
            .name("agentcore-metrics-server".into())
            .spawn(move || server.run(shutdown_rx))?;
        Ok(MetricsServer {
            local_addr,
            shared,
            shutdown_tx: Some(shutdown_tx),
            thread: Some(thread),
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
        let s = &self.shared.stats;
        ServerStats {
            scrapes: s.scrapes.load(Ordering::Relaxed),
            scrape_errors: s.scrape_errors.load(Ordering::Relaxed),
            connection_errors: s.connection_errors.load(Ordering::Relaxed),
            connections_accepted: s.connections_accepted.load(Ordering::Relaxed),
            active_connections: s.active_connections.load(Ordering::Relaxed),
            last_encode_duration: Duration::from_nanos(s.last_encode_nanos.load(Ordering::Relaxed)),
            last_encode_bytes: s.last_encode_bytes.load(Ordering::Relaxed),
            last_response_bytes: s.last_response_bytes.load(Ordering::Relaxed),
        }
    }

    /// Stops accepting connections, lets in-flight responses finish (up to
    /// [`ServerConfig::shutdown_timeout`]), closes every connection and the listening socket,
    /// joins the background thread, and returns the final [`stats`](Self::stats).
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
    pub fn shutdown(mut self) -> ServerStats {
        self.stop();
        self.stats()
    }

    fn stop(&mut self) {
        if let Some(tx) = self.shutdown_tx.take() {
            // Receivers may already be gone if the server thread ended; nothing to do then.
            let _ = tx.send(true);
        }
        if let Some(thread) = self.thread.take() {
            // The server catches source panics; a panic here would be an server bug, and
            // re-raising it from Drop could abort, so it is swallowed.
            let _ = thread.join();
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop();
    }
}
