//! Clients that misbehave towards a `/metrics` server, for the availability tests: slowloris
//! clients, idle keep-alive connections, greedy keep-alive scrapers and clients that never read
//! their responses, all reconnecting when the
//! server closes them, so that the pressure lasts as long as the adversary runs. They run as tasks
//! on their own two-thread tokio runtime in the test process and talk to 127.0.0.1 only.
//!
//! A [`Probe`] is the well-behaved client next to them: a fresh connection every few hundred
//! milliseconds, timing a scrape and a 404.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What an adversary does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Sends a request line and then one more header line every 300 ms, never finishing the
    /// head; reconnects as soon as the server closes the connection.
    Slowloris,
    /// Sends one scrape, reads the response, then keeps the connection open and silent; when
    /// the server closes it, comes back a second later (as a connection pool re-opens a
    /// connection it next needs) and does the same.
    IdleKeepAlive,
    /// Scrapes back to back on a keep-alive connection, as fast as responses come;
    /// reconnects when the server closes it.
    Greedy,
    /// Connects with the smallest receive buffer the kernel allows, pipelines 100 scrapes and
    /// never reads a byte, so that the server's writes stall on full buffers; a second later
    /// (0.9-1.1 s) drops the connection and does the same on a new one.
    NonReader,
}

/// What the clients of one adversary saw.
#[derive(Debug, Default)]
pub struct Tally {
    /// Connections established.
    pub connects: AtomicU64,
    /// Connection attempts that failed or timed out (2 s).
    pub connect_failures: AtomicU64,
    /// Responses by class.
    pub ok: AtomicU64,
    pub client_errors: AtomicU64,
    pub server_errors: AtomicU64,
    /// Connections the server closed (EOF or reset) while the client waited or trickled.
    pub closed_by_server: AtomicU64,
}

/// A copy of a [`Tally`].
#[derive(Debug, Clone, Copy, Default)]
pub struct TallySnapshot {
    pub connects: u64,
    pub connect_failures: u64,
    pub ok: u64,
    pub client_errors: u64,
    pub server_errors: u64,
    pub closed_by_server: u64,
}

impl Tally {
    fn snapshot(&self) -> TallySnapshot {
        TallySnapshot {
            connects: self.connects.load(Relaxed),
            connect_failures: self.connect_failures.load(Relaxed),
            ok: self.ok.load(Relaxed),
            client_errors: self.client_errors.load(Relaxed),
            server_errors: self.server_errors.load(Relaxed),
            closed_by_server: self.closed_by_server.load(Relaxed),
        }
    }

    fn count_status(&self, status: u16) {
        match status {
            200..=299 => self.ok.fetch_add(1, Relaxed),
            400..=499 => self.client_errors.fetch_add(1, Relaxed),
            _ => self.server_errors.fetch_add(1, Relaxed),
        };
    }
}

/// `count` clients of one [`Kind`], running until [`stop`](Self::stop).
pub struct Adversary {
    runtime: Option<tokio::runtime::Runtime>,
    tally: Arc<Tally>,
}

const REQUEST: &[u8] = b"GET /metrics HTTP/1.1\r\nHost: adversary\r\nAccept-Encoding: gzip\r\n\r\n";

impl Adversary {
    /// Starts `count` clients of `kind` against `addr`.
    pub fn start(kind: Kind, count: usize, addr: SocketAddr) -> Adversary {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("adversary")
            .enable_all()
            .build()
            .expect("adversary runtime");
        let tally = Arc::new(Tally::default());
        for i in 0..count {
            let tally = Arc::clone(&tally);
            runtime.spawn(async move {
                // Spread the first connections over 100 ms, as real clients would arrive.
                tokio::time::sleep(Duration::from_micros((i as u64 * 100_000) / count as u64))
                    .await;
                loop {
                    if kind == Kind::NonReader {
                        let hold = Duration::from_millis(900 + (i as u64 * 7919) % 200);
                        non_reader(addr, hold, &tally).await;
                        continue;
                    }
                    let Some(conn) = connect(addr, &tally).await else {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    };
                    let pause = match kind {
                        Kind::Slowloris => {
                            slowloris(conn, &tally).await;
                            // Reconnect at once, but never spin on a server that refuses.
                            Duration::from_millis(5)
                        }
                        Kind::IdleKeepAlive => {
                            idle(conn, &tally).await;
                            // Spread over 0.9-1.1 s, so the clients do not come back in step.
                            Duration::from_millis(900 + (i as u64 * 7919) % 200)
                        }
                        Kind::Greedy => {
                            greedy(conn, &tally).await;
                            Duration::from_millis(5)
                        }
                        Kind::NonReader => unreachable!("handled above"),
                    };
                    tally.closed_by_server.fetch_add(1, Relaxed);
                    tokio::time::sleep(pause).await;
                }
            });
        }
        Adversary {
            runtime: Some(runtime),
            tally,
        }
    }

    /// What the clients saw so far.
    pub fn tally(&self) -> TallySnapshot {
        self.tally.snapshot()
    }

    /// Stops every client (their sockets close with the runtime) and returns the tally.
    pub fn stop(mut self) -> TallySnapshot {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
        self.tally.snapshot()
    }
}

impl Drop for Adversary {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

async fn connect(addr: SocketAddr, tally: &Tally) -> Option<TcpStream> {
    match tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr)).await {
        Ok(Ok(conn)) => {
            tally.connects.fetch_add(1, Relaxed);
            let _ = conn.set_nodelay(true);
            Some(conn)
        }
        _ => {
            tally.connect_failures.fetch_add(1, Relaxed);
            None
        }
    }
}

/// Trickles header lines until the server closes the connection.
async fn slowloris(mut conn: TcpStream, tally: &Tally) {
    if conn
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: slowloris\r\n")
        .await
        .is_err()
    {
        return;
    }
    let mut buf = [0u8; 1024];
    loop {
        tokio::select! {
            read = conn.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                // An error response (408, 431, 400) before the close: count it and go on
                // reading until the close.
                Ok(n) => {
                    if let Some(status) = status_of(&buf[..n]) {
                        tally.count_status(status);
                    }
                }
            },
            _ = tokio::time::sleep(Duration::from_millis(300)) => {
                if conn.write_all(b"X-Slowloris: still-here\r\n").await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Connects with a minimal receive window, pipelines 100 scrapes it never reads, and drops the
/// connection after `hold`.
async fn non_reader(addr: SocketAddr, hold: Duration, tally: &Tally) {
    let connected = async {
        let socket = match addr {
            SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        // Set before connecting, so that the window the client offers is small from the start.
        socket.set_recv_buffer_size(1)?;
        socket.connect(addr).await
    };
    let Ok(Ok(mut conn)) = tokio::time::timeout(Duration::from_secs(2), connected).await else {
        tally.connect_failures.fetch_add(1, Relaxed);
        // Never spin on a server that refuses.
        tokio::time::sleep(Duration::from_millis(20)).await;
        return;
    };
    tally.connects.fetch_add(1, Relaxed);
    let started = tokio::time::Instant::now();
    let pipeline = REQUEST.repeat(100);
    let _ = tokio::time::timeout(hold, conn.write_all(&pipeline)).await;
    tokio::time::sleep_until(started + hold).await;
}

/// One scrape, then silence until the server closes the connection.
async fn idle(mut conn: TcpStream, tally: &Tally) {
    if conn.write_all(REQUEST).await.is_err() {
        return;
    }
    let mut buf = Vec::new();
    match read_response(&mut conn, &mut buf).await {
        Some((status, _)) => tally.count_status(status),
        None => return,
    }
    let mut byte = [0u8; 1];
    // Returns on EOF or reset: the server closed the idle connection.
    let _ = conn.read(&mut byte).await;
}

/// Scrapes back to back until the server closes the connection.
async fn greedy(mut conn: TcpStream, tally: &Tally) {
    let mut buf = Vec::new();
    loop {
        if conn.write_all(REQUEST).await.is_err() {
            return;
        }
        match read_response(&mut conn, &mut buf).await {
            Some((status, close)) => {
                tally.count_status(status);
                if close {
                    return;
                }
            }
            None => return,
        }
    }
}

/// The status code of a response that starts in `bytes`.
fn status_of(bytes: &[u8]) -> Option<u16> {
    let line = bytes.split(|&b| b == b'\n').next()?;
    let text = std::str::from_utf8(line).ok()?;
    let mut parts = text.split(' ');
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    parts.next()?.parse().ok()
}

/// Reads one response (head and `Content-Length` body; 10 s at most); returns its status and
/// whether the server said `Connection: close`. `None` on EOF, error or timeout.
async fn read_response(conn: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(u16, bool)> {
    tokio::time::timeout(Duration::from_secs(10), async {
        buf.clear();
        let mut chunk = [0u8; 16 * 1024];
        let head_end = loop {
            if let Some(end) = find_head_end(buf) {
                break end;
            }
            let n = conn.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let status = status_of(&buf[..head_end])?;
        let head = std::str::from_utf8(&buf[..head_end])
            .ok()?
            .to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let close = head
            .lines()
            .any(|l| l.starts_with("connection:") && l.contains("close"));
        let mut have = buf.len() - head_end;
        while have < length {
            let n = conn.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            have += n;
        }
        Some((status, close))
    })
    .await
    .ok()
    .flatten()
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// One timed request of a [`Probe`].
#[derive(Debug, Clone, Copy)]
pub struct Probed {
    /// Status code, or `None` for a connection error or a timeout.
    pub status: Option<u16>,
    pub elapsed: Duration,
}

/// A well-behaved client: every `every`, a fresh connection asks for `path` with a 1 s
/// timeout, as a scraper would.
pub struct Probe {
    stop: Arc<AtomicBool>,
    results: Arc<Mutex<Vec<Probed>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Probe {
    pub fn start(addr: SocketAddr, path: &'static str, every: Duration) -> Probe {
        let stop = Arc::new(AtomicBool::new(false));
        let results = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let stop = Arc::clone(&stop);
            let results = Arc::clone(&results);
            std::thread::spawn(move || {
                while !stop.load(Relaxed) {
                    let probed = probe_once(addr, path, Duration::from_secs(1));
                    results.lock().unwrap().push(probed);
                    std::thread::sleep(every.saturating_sub(probed.elapsed));
                }
            })
        };
        Probe {
            stop,
            results,
            thread: Some(thread),
        }
    }

    /// Stops the probe and returns what it saw.
    pub fn stop(mut self) -> Vec<Probed> {
        self.stop.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        std::mem::take(&mut *self.results.lock().unwrap())
    }
}

/// One request on a fresh connection with `Connection: close`, within `timeout` in all.
pub fn probe_once(addr: SocketAddr, path: &str, timeout: Duration) -> Probed {
    let started = Instant::now();
    let status = (|| {
        let mut conn = std::net::TcpStream::connect_timeout(&addr, timeout).ok()?;
        conn.set_read_timeout(Some(
            timeout
                .saturating_sub(started.elapsed())
                .max(Duration::from_millis(1)),
        ))
        .ok()?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n");
        conn.write_all(request.as_bytes()).ok()?;
        let mut bytes = Vec::new();
        conn.read_to_end(&mut bytes).ok()?;
        if started.elapsed() > timeout {
            return None;
        }
        status_of(&bytes)
    })();
    Probed {
        status,
        elapsed: started.elapsed(),
    }
}

/// Median, 99th percentile and maximum of the probes' times, and how many failed (no status or
/// not `expect`).
pub fn summarize(probes: &[Probed], expect: u16) -> (Duration, Duration, Duration, usize) {
    let mut times: Vec<Duration> = probes.iter().map(|p| p.elapsed).collect();
    times.sort();
    let at = |q: f64| {
        times
            .get(((times.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    let failed = probes.iter().filter(|p| p.status != Some(expect)).count();
    (at(0.5), at(0.99), at(1.0), failed)
}
