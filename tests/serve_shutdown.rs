//! `shutdown()` and `Drop` keep their deadline whatever the source does (issue 15, item 3).
//!
//! Each test runs the call under test on a helper thread and waits for it with a generous
//! margin, so that a server that breaks its deadline fails the test instead of hanging it.
#![cfg(feature = "http-server")]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use agentcore_telemetry::serve::{MetricsServer, ServerConfig};

const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(1);
/// Scheduling slack allowed on top of the deadline: generous, for a loaded 2-core CI machine.
const MARGIN: Duration = Duration::from_secs(2);

fn config() -> ServerConfig {
    ServerConfig::default()
        .with_addr("127.0.0.1:0".parse().unwrap())
        .with_shutdown_timeout(SHUTDOWN_TIMEOUT)
}

/// Starts a scrape on another thread (its result does not matter) and gives the server a moment
/// to start encoding it.
fn scrape_in_background(addr: SocketAddr) {
    std::thread::spawn(move || {
        let Ok(mut conn) = TcpStream::connect(addr) else {
            return;
        };
        let _ = conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
        let mut sink = Vec::new();
        let _ = conn.read_to_end(&mut sink);
    });
    std::thread::sleep(Duration::from_millis(300));
}

/// Runs `f` on a helper thread; its duration, or `None` if it did not return within `wait`.
fn timed(wait: Duration, f: impl FnOnce() + Send + 'static) -> Option<Duration> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let started = Instant::now();
        f();
        let _ = tx.send(started.elapsed());
    });
    rx.recv_timeout(wait).ok()
}

fn hang(_: &mut String) {
    loop {
        std::thread::park();
    }
}

#[test]
fn shutdown_returns_by_its_deadline_while_the_source_hangs() {
    let server = MetricsServer::start(config(), hang).unwrap();
    scrape_in_background(server.local_addr());
    let took = timed(
        SHUTDOWN_TIMEOUT + MARGIN + Duration::from_secs(5),
        move || {
            server.shutdown();
        },
    );
    let took = took.expect("shutdown() did not return");
    assert!(
        took <= SHUTDOWN_TIMEOUT + MARGIN,
        "shutdown() took {took:?}"
    );
}

#[test]
fn drop_returns_by_its_deadline_while_the_source_hangs() {
    let server = MetricsServer::start(config(), hang).unwrap();
    scrape_in_background(server.local_addr());
    let took = timed(
        SHUTDOWN_TIMEOUT + MARGIN + Duration::from_secs(5),
        move || drop(server),
    );
    let took = took.expect("drop did not return");
    assert!(took <= SHUTDOWN_TIMEOUT + MARGIN, "drop took {took:?}");
}

#[test]
fn shutdown_returns_by_its_deadline_during_a_slow_encode() {
    let server = MetricsServer::start(config(), |out: &mut String| {
        std::thread::sleep(Duration::from_secs(6));
        out.push_str("slow 1\n");
    })
    .unwrap();
    scrape_in_background(server.local_addr());
    let took = timed(Duration::from_secs(15), move || {
        server.shutdown();
    });
    let took = took.expect("shutdown() did not return");
    assert!(
        took <= SHUTDOWN_TIMEOUT + MARGIN,
        "shutdown() took {took:?}"
    );
}

/// A source whose `Drop` blocks: the caller's code (a closure's captured value, a registry's
/// last handle whose `gauge_fn` closures drop with it), which the encoder thread runs as it
/// ends. The encoder thread signalled its end before it dropped the source, and `shutdown()`
/// joined it with no deadline on that signal: it waited as long as the drop blocked.
#[test]
fn shutdown_returns_by_its_deadline_while_the_sources_drop_blocks() {
    struct SlowDrop(std::sync::Mutex<mpsc::Receiver<()>>);
    impl Drop for SlowDrop {
        fn drop(&mut self) {
            let rx = self.0.lock().unwrap_or_else(|e| e.into_inner());
            let _ = rx.recv_timeout(Duration::from_secs(30));
        }
    }
    let (release, blocked) = mpsc::channel();
    let slow = SlowDrop(std::sync::Mutex::new(blocked));
    let server = MetricsServer::start(config(), move |out: &mut String| {
        let _ = &slow;
        out.push_str("a 1\n");
    })
    .unwrap();
    let took = timed(Duration::from_secs(40), move || {
        server.shutdown();
    });
    let _ = release.send(());
    let took = took.expect("shutdown() did not return");
    assert!(
        took <= SHUTDOWN_TIMEOUT + MARGIN,
        "shutdown() took {took:?}: it waited for the source's drop"
    );
}
