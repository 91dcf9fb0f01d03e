//! Configuration of the `/metrics` server.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

/// Settings of a [`MetricsServer`](super::MetricsServer).
///
/// Build it from [`Default`] and the `with_*` setters; the struct is `#[non_exhaustive]`, so
/// new settings can be added without breaking callers.
///
/// | setting | default | what it bounds |
/// | --- | --- | --- |
/// | [`addr`](Self::addr) | `127.0.0.1:9464` | where to listen (port 0 picks a free port) |
/// | [`read_timeout`](Self::read_timeout) | 10 s | time to send the request headers, idle keep-alive time, any stalled read |
/// | [`write_timeout`](Self::write_timeout) | 10 s | how long one socket write may stall (a client that stops reading) |
/// | [`max_request_bytes`](Self::max_request_bytes) | 16 KiB | request line + headers; larger gets `431` |
/// | [`max_connections`](Self::max_connections) | 64 | open connections at once; more wait in the listen backlog |
/// | [`shutdown_timeout`](Self::shutdown_timeout) | 2 s | how long shutdown lets in-flight responses finish |
///
/// ```
/// use agentcore_telemetry::serve::ServerConfig;
/// use std::time::Duration;
///
/// let config = ServerConfig::default()
///     .with_addr("127.0.0.1:0".parse().unwrap())
///     .with_read_timeout(Duration::from_secs(5))
///     .with_max_connections(16);
/// assert_eq!(config.max_connections, 16);
/// assert_eq!(config.write_timeout, Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Address to bind. Port 0 lets the OS pick one; read it back with
    /// [`MetricsServer::local_addr`](super::MetricsServer::local_addr).
    pub addr: SocketAddr,
    /// Deadline for a client to send its complete request headers (measured from when the
    /// connection starts waiting for a request, so it also closes idle keep-alive connections),
    /// and for any single read that makes no progress.
    pub read_timeout: Duration,
    /// Deadline for any single socket write (or flush) that makes no progress: a client that
    /// stops reading its response is dropped after this.
    pub write_timeout: Duration,
    /// Largest request head (request line and headers) accepted, in bytes. A larger request is
    /// answered `431 Request Header Fields Too Large` and its connection closed. At least 1024.
    pub max_request_bytes: usize,
    /// Most connections served at once. Further connections wait in the kernel's listen
    /// backlog until a slot frees up. At least 1.
    pub max_connections: usize,
    /// On shutdown, how long in-flight responses may take to finish before their connections
    /// are dropped.
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
            read_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            max_request_bytes: 16 * 1024,
            max_connections: 64,
            shutdown_timeout: Duration::from_secs(2),
        }
    }
}

impl ServerConfig {
    /// Sets [`addr`](Self::addr).
    ///
    /// ```
    /// # use agentcore_telemetry::serve::ServerConfig;
    /// let c = ServerConfig::default().with_addr("0.0.0.0:9100".parse().unwrap());
    /// assert_eq!(c.addr.port(), 9100);
    /// ```
    #[must_use]
    pub fn with_addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Sets [`read_timeout`](Self::read_timeout).
    ///
    /// ```
    /// # use agentcore_telemetry::serve::ServerConfig;
    /// # use std::time::Duration;
    /// let c = ServerConfig::default().with_read_timeout(Duration::from_millis(500));
    /// assert_eq!(c.read_timeout, Duration::from_millis(500));
    /// ```
    #[must_use]
    pub fn with_read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// Sets [`write_timeout`](Self::write_timeout).
    ///
    /// ```
    /// # use agentcore_telemetry::serve::ServerConfig;
    /// # use std::time::Duration;
    /// let c = ServerConfig::default().with_write_timeout(Duration::from_secs(3));
    /// assert_eq!(c.write_timeout, Duration::from_secs(3));
    /// ```
    #[must_use]
    pub fn with_write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// Sets [`max_request_bytes`](Self::max_request_bytes).
    ///
    /// ```
    /// # use agentcore_telemetry::serve::ServerConfig;
    /// let c = ServerConfig::default().with_max_request_bytes(4096);
    /// assert_eq!(c.max_request_bytes, 4096);
    /// ```
    #[must_use]
    pub fn with_max_request_bytes(mut self, bytes: usize) -> Self {
        self.max_request_bytes = bytes;
        self
    }

    /// Sets [`max_connections`](Self::max_connections).
    ///
    /// ```
    /// # use agentcore_telemetry::serve::ServerConfig;
    /// let c = ServerConfig::default().with_max_connections(4);
    /// assert_eq!(c.max_connections, 4);
    /// ```
    #[must_use]
    pub fn with_max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections;
        self
    }

    /// Sets [`shutdown_timeout`](Self::shutdown_timeout).
    ///
    /// ```
    /// # use agentcore_telemetry::serve::ServerConfig;
    /// # use std::time::Duration;
    /// let c = ServerConfig::default().with_shutdown_timeout(Duration::ZERO);
    /// assert_eq!(c.shutdown_timeout, Duration::ZERO);
    /// ```
    #[must_use]
    pub fn with_shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Checks the settings, as [`MetricsServer::start`](super::MetricsServer::start) does.
    pub(crate) fn validate(&self) -> std::io::Result<()> {
        let invalid = |msg: &str| {
            Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("invalid server config: {msg}"),
            ))
        };
        if self.read_timeout.is_zero() {
            return invalid("read_timeout must be > 0");
        }
        if self.write_timeout.is_zero() {
            return invalid("write_timeout must be > 0");
        }
        if self.max_request_bytes < 1024 {
            return invalid("max_request_bytes must be >= 1024");
        }
        if self.max_connections == 0 {
            return invalid("max_connections must be >= 1");
        }
        Ok(())
    }
}
