//! Clients that stop reading their responses, and clients that send nothing but empty lines
//! (found by review on 2026-12-01): neither may keep a well-behaved scraper out, and neither
//! may keep a connection for longer than the head limits allow.
//!
//! Before the fixes: 8 clients that pipelined scrapes and never read held all 8 in-flight
//! places while their writes stood still, and every probe got `503` (`in_flight` test), or
//! held all 8 connections and every probe was reset (`connections` test); a client sending
//! empty lines without end kept its connection for good, 221 MB of them in 15 s.
#![cfg(all(feature = "http-server", target_os = "linux"))]

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::FromRawFd;
use std::time::{Duration, Instant};

use agentcore_telemetry::serve::{MetricsServer, ServerConfig, ServerStats};
use support::adversary::probe_once;

/// A source of about `bytes` of exposition.
fn source(bytes: usize) -> impl Fn(&mut String) + Send + Sync + 'static {
    move |out: &mut String| {
        out.push_str("# TYPE big gauge\n");
        let mut i = 0;
        while out.len() < bytes {
            out.push_str(&format!("big{{series=\"{i:08}\"}} 1\n"));
            i += 1;
        }
    }
}

/// A connection whose receive buffer was made as small as the kernel allows before it
/// connected (any client may do so), so that a response it does not read stalls the server's
/// write within a few hundred kilobytes.
fn small_window_connect(addr: SocketAddr) -> TcpStream {
    let SocketAddr::V4(v4) = addr else {
        panic!("the test server listens on IPv4")
    };
    // SAFETY: plain socket calls on a descriptor this function creates and then hands to
    // `TcpStream`, which owns it from there on; every pointer passed points at a local that
    // lives across the call, with its true size.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let size: libc::c_int = 1;
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        let sin = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: v4.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from_ne_bytes(v4.ip().octets()),
            },
            sin_zero: [0; 8],
        };
        let rc = libc::connect(
            fd,
            (&sin as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        assert_eq!(rc, 0, "connect: {}", std::io::Error::last_os_error());
        TcpStream::from_raw_fd(fd)
    }
}

/// A client that pipelines 100 scrapes and never reads a byte of the answers.
fn non_reader(addr: SocketAddr) -> TcpStream {
    let mut conn = small_window_connect(addr);
    conn.set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = conn.write_all(&b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".repeat(100));
    conn
}

fn probes(addr: SocketAddr, n: usize) -> Vec<Option<u16>> {
    (0..n)
        .map(|_| {
            let status = probe_once(addr, "/metrics", Duration::from_secs(5)).status;
            std::thread::sleep(Duration::from_millis(200));
            status
        })
        .collect()
}

/// Long enough for the non-readers' writes to stall (their buffers fill within milliseconds)
/// and then to count as stalled (a second without progress).
const STALLED: Duration = Duration::from_millis(2500);

/// Starts a server with `config`, lets 8 non-readers stall their writes, and probes 6 times;
/// returns what the probes got and the server's stats then.
fn probes_among_non_readers(config: ServerConfig) -> (Vec<Option<u16>>, ServerStats) {
    let server = MetricsServer::start(config, source(64 * 1024)).unwrap();
    let addr = server.local_addr();
    assert_eq!(probes(addr, 1), [Some(200)], "before");
    let stalled: Vec<TcpStream> = (0..8).map(|_| non_reader(addr)).collect();
    std::thread::sleep(STALLED);
    let seen = probes(addr, 6);
    let stats = server.stats();
    drop(stalled);
    (seen, stats)
}

#[test]
fn clients_that_stop_reading_do_not_hold_the_in_flight_places() {
    let (seen, stats) = probes_among_non_readers(
        ServerConfig::default()
            .with_addr("127.0.0.1:0".parse().unwrap())
            .with_max_in_flight(8),
    );
    assert_eq!(seen, [Some(200); 6], "{stats:?}");
    assert!(stats.connections_evicted >= 1, "{stats:?}");
}

#[test]
fn clients_that_stop_reading_do_not_hold_the_connections() {
    let (seen, stats) = probes_among_non_readers(
        ServerConfig::default()
            .with_addr("127.0.0.1:0".parse().unwrap())
            .with_max_connections(8),
    );
    assert_eq!(seen, [Some(200); 6], "{stats:?}");
    assert_eq!(stats.connections_rejected, 0, "{stats:?}");
    assert!(stats.connections_evicted >= 1, "{stats:?}");
}

/// Sends empty lines as fast as the server takes them until it closes the connection (or 20 s
/// pass); returns what the server answered and when it closed.
fn flood_with_empty_lines(addr: SocketAddr) -> (String, Option<Duration>) {
    let conn = TcpStream::connect(addr).unwrap();
    let mut writer = conn.try_clone().unwrap();
    writer
        .set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let started = Instant::now();
    let flood = std::thread::spawn(move || {
        let chunk = b"\r\n".repeat(8192);
        while started.elapsed() < Duration::from_secs(20) {
            match writer.write(&chunk) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return Some(started.elapsed()),
            }
        }
        None
    });
    let mut reader = conn;
    reader
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut answer = Vec::new();
    let _ = reader.read_to_end(&mut answer);
    let closed = flood.join().unwrap();
    (
        String::from_utf8_lossy(&answer)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned(),
        closed,
    )
}

#[test]
fn empty_lines_count_towards_the_head_size_limit() {
    let config = ServerConfig::default().with_addr("127.0.0.1:0".parse().unwrap());
    let server = MetricsServer::start(config, source(100)).unwrap();
    let (status, closed) = flood_with_empty_lines(server.local_addr());
    assert_eq!(status, "HTTP/1.1 431 Request Header Fields Too Large");
    assert!(
        closed.is_some_and(|t| t < Duration::from_secs(5)),
        "{closed:?}"
    );
}

#[test]
fn empty_lines_count_towards_the_head_deadline() {
    // No size limit to speak of: only the deadline can end the flood.
    let config = ServerConfig::default()
        .with_addr("127.0.0.1:0".parse().unwrap())
        .with_max_header_bytes(usize::MAX)
        .with_header_read_timeout(Duration::from_secs(1));
    let server = MetricsServer::start(config, source(100)).unwrap();
    let (status, closed) = flood_with_empty_lines(server.local_addr());
    assert_eq!(status, "HTTP/1.1 408 Request Timeout");
    assert!(
        closed.is_some_and(|t| t < Duration::from_secs(5)),
        "{closed:?}"
    );
}

#[test]
fn shutdown_closes_stalled_writers_by_its_deadline_and_reports_them_closed() {
    let config = ServerConfig::default().with_addr("127.0.0.1:0".parse().unwrap());
    let timeout = config.shutdown_timeout;
    let server = MetricsServer::start(config, source(64 * 1024)).unwrap();
    let addr = server.local_addr();
    // 64 writes stalled on full send buffers (the most the in-flight limit lets write), which
    // the kernel takes time to free when their sockets close (92 ms here), and idle ones.
    let mut held: Vec<TcpStream> = (0..64).map(|_| non_reader(addr)).collect();
    held.extend((0..32).map(|_| TcpStream::connect(addr).unwrap()));
    std::thread::sleep(Duration::from_millis(1500));
    let started = Instant::now();
    let stats = server.shutdown();
    let took = started.elapsed();
    drop(held);
    // Before: the I/O thread had 50 ms to close them after draining, was left behind
    // mid-teardown, and the stats it returned counted 23 to 33 connections still open.
    assert_eq!(stats.active_connections, 0, "{stats:?}");
    assert!(took <= timeout + Duration::from_secs(1), "{took:?}");
}
