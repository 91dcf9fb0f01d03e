//! The `/metrics` server writing to clients that went away, in a process that keeps SIGPIPE's
//! default disposition (terminate), as a C program embedding the crate does (Rust's own `main`
//! ignores SIGPIPE, which hid this). Responses used to be written with `writev`, which raises
//! SIGPIPE on a closed connection: the process was killed. Found by an adversarial review. Its
//! own test binary: the disposition is process-wide.
#![cfg(all(feature = "http-server", target_os = "linux"))]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use agentcore_telemetry::serve::{MetricsServer, ServerConfig};

extern "C" {
    fn signal(signum: i32, handler: usize) -> usize;
}
const SIGPIPE: i32 = 13;
const SIG_DFL: usize = 0;

#[test]
fn clients_that_close_mid_response_do_not_raise_sigpipe() {
    // SAFETY: `signal` with SIG_DFL installs no handler of ours; this binary runs this one
    // test, so no other thread depends on the disposition it replaces.
    unsafe { signal(SIGPIPE, SIG_DFL) };
    // An 8 MiB exposition: more than the socket buffers take, so the server is still writing
    // when the client's reset arrives.
    let line = format!("big_metric {}\n", "1".repeat(1000));
    let server = MetricsServer::start(
        ServerConfig::default()
            .with_addr("127.0.0.1:0".parse().unwrap())
            .with_self_metrics(false),
        move |out: &mut String| {
            for _ in 0..8 << 10 {
                out.push_str(&line);
            }
        },
    )
    .unwrap();
    let addr = server.local_addr();
    for _ in 0..5 {
        let mut conn = TcpStream::connect(addr).unwrap();
        conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        // Gone before the answer: a clean close (FIN, nothing unread), so the server's first
        // write draws a reset and its next one fails with EPIPE, the error `writev` turns
        // into SIGPIPE.
        drop(conn);
    }
    // Let the server meet them.
    std::thread::sleep(Duration::from_millis(500));
    // Reaching this line at all is the test (SIGPIPE would have killed the process); the
    // server still answers.
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut all = Vec::new();
    conn.read_to_end(&mut all).unwrap();
    assert!(
        all.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        &all[..all.len().min(64)]
    );
    server.shutdown();
}
