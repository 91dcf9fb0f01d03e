//! The network between the client and a Pushgateway, slow where the client cannot slice the
//! wait: the connection handshake and name resolution.
//!
//! * A gateway whose handshake takes longer than 200 ms, the slice after which the client used
//!   to give a connection attempt up and start another (a gateway across the world, or over a
//!   satellite link, is 300 ms to 600 ms away): every attempt's SYN-ACK came to a socket
//!   already closed, and the push timed out however long its timeout. The loopback is slowed
//!   with a token bucket filter (`tc qdisc ... tbf rate 2kbit`): every packet waits for its
//!   bytes' tokens, so a SYN and its SYN-ACK (74 bytes each) take well over 300 ms together,
//!   every time (even after 200 ms idle, the bucket holds only 50 bytes).
//! * A DNS server that never answers: name resolution (getaddrinfo) used to run on the
//!   caller's thread with no timeout, so a 500 ms push took glibc's 5 s. Now it runs on a
//!   connection thread the push gives up on at its deadline, which the resolver holds on to:
//!   the threads held so are capped (16 in the process), so pushes in a loop through an outage
//!   add no more.
//!
//! Each scenario runs in a child process in network and mount namespaces of its own
//! (`support::namespaces`): its own loopback to slow down, its own `/etc/resolv.conf`
//! bind-mounted. Where namespaces cannot be made, or `ip`, `tc` or `mount` is missing, a test
//! says so loudly and skips.
#![cfg(all(feature = "pushgateway", target_os = "linux"))]

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::time::{Duration, Instant};

use support::namespaces::{in_namespaces, is_child, run, SilentResolver};

use agentcore_telemetry::pushgateway::{PushError, Pushgateway};
use agentcore_telemetry::Registry;

const CHILD: &str = "AGENTCORE_SLOW_NETWORK_CHILD";
const TEST: &str = "a_gateway_slower_to_connect_than_a_connect_slice_is_still_reached";

/// In the child, in its own network namespace: slows its loopback down.
fn slow_loopback() -> Result<(), String> {
    // tbf refuses packets larger than its bucket: a 1500-byte MTU keeps them below 1600.
    run("ip", &["link", "set", "lo", "mtu", "1500", "up"])?;
    run(
        "tc",
        &[
            "qdisc", "add", "dev", "lo", "root", "tbf", "rate", "2kbit", "burst", "1600",
            "latency", "60s",
        ],
    )?;
    // The bucket starts full (1600 bytes): spend it, and more, so that from now on every
    // packet waits for its tokens (250 bytes a second).
    let sink = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let source = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let to = sink.local_addr().map_err(|e| e.to_string())?;
    for size in [1400, 100, 100] {
        source
            .send_to(&vec![0u8; size], to)
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn child() {
    slow_loopback().unwrap_or_else(|e| panic!("setting up the slow loopback: {e}"));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut got = Vec::new();
            let mut buf = [0u8; 1024];
            while !String::from_utf8_lossy(&got).ends_with("up 1\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let registry = Registry::new();
    registry.gauge("up", "U.").unwrap().set(1.0);
    let started = Instant::now();
    let result = Pushgateway::new(&url, "j")
        .unwrap()
        .with_timeout(Duration::from_secs(10))
        .push(&registry);
    let took = started.elapsed();
    assert_eq!(result, Ok(()), "after {took:?}");
}

#[test]
fn a_gateway_slower_to_connect_than_a_connect_slice_is_still_reached() {
    if !is_child(CHILD) {
        in_namespaces(CHILD, TEST, true);
        return;
    }
    child();
    eprintln!("done");
}

#[test]
fn a_push_keeps_its_timeout_while_the_name_does_not_resolve() {
    const NAME: &str = "a_push_keeps_its_timeout_while_the_name_does_not_resolve";
    if !is_child(CHILD) {
        in_namespaces(CHILD, NAME, false);
        return;
    }
    let silent = SilentResolver::start();
    let registry = Registry::new();
    registry.gauge("up", "U.").unwrap().set(1.0);
    let started = Instant::now();
    let result = Pushgateway::new("http://gateway.agentcore-test.example:9091", "j")
        .unwrap()
        .with_timeout(Duration::from_millis(500))
        .push(&registry);
    let took = started.elapsed();
    drop(silent);
    assert_eq!(result, Err(PushError::Timeout), "after {took:?}");
    assert!(took < Duration::from_secs(3), "a 500 ms push took {took:?}");
    eprintln!("done");
}

/// This process's threads.
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

#[test]
fn connection_threads_a_silent_resolver_holds_are_capped() {
    const NAME: &str = "connection_threads_a_silent_resolver_holds_are_capped";
    if !is_child(CHILD) {
        in_namespaces(CHILD, NAME, false);
        return;
    }
    // Every push gives its connection thread up after 100 ms, and the resolver holds each
    // for 5 s: without a cap, one more thread per push for as long as the outage lasts.
    let _silent = SilentResolver::start();
    let registry = Registry::new();
    registry.gauge("up", "U.").unwrap().set(1.0);
    let gateway = Pushgateway::new("http://gateway.agentcore-test.example:9091", "j")
        .unwrap()
        .with_timeout(Duration::from_millis(100));
    // Past the cap, a client with a 10 s timeout: failing at once there is told from waiting
    // however late the scheduler runs the test (a 100 ms timeout left 50 ms of margin).
    let patient = Pushgateway::new("http://gateway.agentcore-test.example:9091", "j")
        .unwrap()
        .with_timeout(Duration::from_secs(10));
    let before = threads();
    let mut results = Vec::new();
    for i in 0..24 {
        let client = if i < 16 { &gateway } else { &patient };
        let started = Instant::now();
        results.push((client.push(&registry), started.elapsed()));
    }
    let after = threads();
    // 16 (the cap) time out, each holding a thread; the others start none and fail at once,
    // saying why.
    let timeouts = results
        .iter()
        .filter(|(r, _)| *r == Err(PushError::Timeout))
        .count();
    assert_eq!(timeouts, 16, "{results:?}");
    for (r, took) in &results[16..] {
        match r {
            Err(PushError::Io(why)) => assert!(why.contains("still running"), "{why}"),
            other => panic!("past the cap: {other:?}"),
        }
        assert!(*took < Duration::from_secs(2), "{took:?}");
    }
    assert!(
        after <= before + 16,
        "{before} threads before, {after} after 24 pushes"
    );
    eprintln!("done");
}
