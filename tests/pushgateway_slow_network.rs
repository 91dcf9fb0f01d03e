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
//! Each scenario runs in a child process (this test binary re-run with an environment
//! variable) in network and mount namespaces of its own (`unshare -r -n -m`: its own loopback
//! to slow down, its own `/etc/resolv.conf` bind-mounted; a user namespace too, so that it
//! needs no root where the kernel lets users make namespaces); nothing outside them is
//! touched. Where namespaces cannot be made (a kernel or AppArmor policy forbids them to
//! users) or `ip`, `tc` or `mount` is missing, a test says so loudly and skips, under
//! `CI=true` too: that is the machine's policy, not something CI can install.
#![cfg(all(feature = "pushgateway", target_os = "linux"))]

use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use agentcore_telemetry::pushgateway::{PushError, Pushgateway};
use agentcore_telemetry::Registry;

const CHILD: &str = "AGENTCORE_SLOW_NETWORK_CHILD";
const TEST: &str = "a_gateway_slower_to_connect_than_a_connect_slice_is_still_reached";

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    match Command::new(program).args(args).output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!(
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(format!("{program}: {e}")),
    }
}

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

/// Runs `test` again in a child process, in network and mount namespaces of its own, and
/// checks that it printed `done`; false (after a loud banner) when this machine does not let
/// us make them, or lacks `ip`, `tc` or `mount`.
fn in_namespaces(test: &str) -> bool {
    let exe = std::env::current_exe().unwrap();
    let exe = exe.to_str().unwrap();
    let probe = run(
        "unshare",
        &["-r", "-n", "-m", "ip", "link", "set", "lo", "up"],
    )
    .and_then(|()| run("unshare", &["-r", "-n", "tc", "qdisc", "show", "dev", "lo"]))
    .and_then(|()| run("mount", &["--version"]));
    if let Err(why) = probe {
        let bar = "!".repeat(78);
        eprintln!("\n{bar}\n!! SKIPPED {test}: no namespaces of our own ({why}).\n{bar}\n");
        return false;
    }
    let out = Command::new("unshare")
        .args([
            "-r",
            "-n",
            "-m",
            exe,
            "--exact",
            test,
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the child failed:\n{text}");
    assert!(text.contains("done"), "{text}");
    true
}

#[test]
fn a_gateway_slower_to_connect_than_a_connect_slice_is_still_reached() {
    if std::env::var_os(CHILD).is_none() {
        in_namespaces(TEST);
        return;
    }
    child();
    eprintln!("done");
}

#[test]
fn a_push_keeps_its_timeout_while_the_name_does_not_resolve() {
    const NAME: &str = "a_push_keeps_its_timeout_while_the_name_does_not_resolve";
    if std::env::var_os(CHILD).is_none() {
        in_namespaces(NAME);
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

/// In the child, in its own network and mount namespaces: a resolver that never answers. The
/// namespace's `/etc/resolv.conf` names a server on the loopback, which takes the queries and
/// says nothing; glibc waits 5 s for it.
struct SilentResolver {
    _socket: UdpSocket,
    dir: std::path::PathBuf,
}

impl SilentResolver {
    fn start() -> SilentResolver {
        run("ip", &["link", "set", "lo", "up"]).unwrap();
        let socket = UdpSocket::bind("127.0.0.1:53").unwrap();
        let dir = std::env::temp_dir().join(format!("agentcore-resolv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("resolv.conf");
        std::fs::write(
            &conf,
            "nameserver 127.0.0.1\noptions timeout:5 attempts:1\n",
        )
        .unwrap();
        run(
            "mount",
            &["--bind", conf.to_str().unwrap(), "/etc/resolv.conf"],
        )
        .unwrap();
        SilentResolver {
            _socket: socket,
            dir,
        }
    }
}

impl Drop for SilentResolver {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// This process's threads.
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

#[test]
fn connection_threads_a_silent_resolver_holds_are_capped() {
    const NAME: &str = "connection_threads_a_silent_resolver_holds_are_capped";
    if std::env::var_os(CHILD).is_none() {
        in_namespaces(NAME);
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
    let before = threads();
    let mut results = Vec::new();
    for _ in 0..24 {
        let started = Instant::now();
        results.push((gateway.push(&registry), started.elapsed()));
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
        assert!(*took < Duration::from_millis(50), "{took:?}");
    }
    assert!(
        after <= before + 16,
        "{before} threads before, {after} after 24 pushes"
    );
    eprintln!("done");
}
