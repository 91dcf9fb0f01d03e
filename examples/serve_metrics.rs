//! Serving `/metrics`: a registry behind the crate's HTTP/1.1 server, a required and a
//! best-effort source, scraped once over loopback (as Prometheus would, also in OpenMetrics when
//! asked), then shut down within its deadline.
//!
//! `cargo run --example serve_metrics`

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use agentcore_telemetry::{MetricsServer, Registry, ServerConfig};

fn scrape(addr: std::net::SocketAddr, accept: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    response
}

fn main() {
    let registry = Registry::new();
    let jobs = registry
        .counter_family("jobs_total", "Jobs run.", &["kind"])
        .unwrap();
    jobs.with_label_values(&["index"]).unwrap().inc_by(3);

    let server =
        MetricsServer::builder(ServerConfig::default().with_addr("127.0.0.1:0".parse().unwrap()))
            .source("registry", registry.clone())
            .best_effort_source("inventory", |out: &mut String| {
                // A figure read from a slow backend: left out of a scrape it cannot make in time.
                out.push_str("# TYPE inventory_items gauge\ninventory_items 7\n");
            })
            .start()
            .expect("bind 127.0.0.1");
    let addr = server.local_addr();
    println!("serving http://{addr}/metrics");

    let text = scrape(addr, "text/plain");
    let (head, body) = text.split_once("\r\n\r\n").expect("a response");
    println!("{head}\n");
    print!(
        "{}",
        body.lines()
            .take(6)
            .map(|l| format!("{l}\n"))
            .collect::<String>()
    );
    assert!(head.starts_with("HTTP/1.1 200"));
    assert!(body.contains("jobs_total{kind=\"index\"} 3\n"));
    assert!(body.contains("inventory_items 7\n"));

    let started = Instant::now();
    server.shutdown();
    assert!(started.elapsed() < Duration::from_secs(10));
    println!("shut down in {:?}", started.elapsed());
}
