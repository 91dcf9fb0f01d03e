//! Span export costs: encoding one span (protobuf, OTLP JSON) into a warm buffer, and the
//! spans per second one exporter thread encodes and sends to a loopback OTLP/HTTP receiver
//! (batches of 512, kept-alive connection; the receiver reads each request and answers 200).
//!
//! `cargo bench --bench export`. Instruction counts of the encoding: `bash
//! benches/compare/profile.sh encode_span_proto encode_span_json` (callgrind).

use std::hint::black_box;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use agentcore_telemetry::export::otlp::{
    Compression, OtlpEncoder, OtlpHttpConfig, OtlpHttpExporter, Protocol, RetryPolicy,
};
use agentcore_telemetry::export::{Deadline, ExportSpan, Resource, SpanExporter};
use agentcore_telemetry::{DistributedTracer, SpanKind, SpanRecord, SpanStatus, TracerConfig};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// The span of the S1 workload: a static name, 2 attributes, 1 event.
fn record() -> SpanRecord {
    let tracer = DistributedTracer::new(TracerConfig::default());
    let mut span = tracer.start_span("tool_execution", SpanKind::Internal, []);
    span.set_attribute("tool_id", "calculator");
    span.set_attribute("attempt", 1i64);
    span.add_event("checkpoint", []);
    let id = span.span_id();
    tracer.finish_span(span, SpanStatus::Ok, None);
    tracer.get_span_by_id(id).unwrap()
}

/// A minimal keep-alive HTTP/1.1 receiver: reads each request, answers 200 with no body.
fn loopback_receiver() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || serve(conn));
        }
    });
    format!("http://{addr}/v1/traces")
}

fn serve(mut conn: TcpStream) {
    let _ = conn.set_nodelay(true);
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match conn.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + len {
            match conn.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..head_end + len);
        if conn
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n")
            .is_err()
        {
            return;
        }
    }
}

fn bench(c: &mut Criterion) {
    let record = record();
    let view = ExportSpan::new(&record);
    let resource = Resource::new("agent-runtime");

    let mut g = c.benchmark_group("export/encode_span");
    g.throughput(Throughput::Elements(1));
    for protocol in [Protocol::HttpProtobuf, Protocol::HttpJson] {
        let mut encoder = OtlpEncoder::new(protocol, &resource);
        let mut n = 0u32;
        g.bench_function(protocol.to_string(), |b| {
            b.iter(|| {
                encoder.add(black_box(&view));
                n += 1;
                if n == 512 {
                    n = 0;
                    encoder.clear();
                }
            })
        });
    }
    g.finish();

    let url = loopback_receiver();
    let mut g = c.benchmark_group("export/send_batch_512");
    g.throughput(Throughput::Elements(512));
    g.measurement_time(Duration::from_secs(5));
    for (name, protocol, compression) in [
        ("protobuf", Protocol::HttpProtobuf, Compression::None),
        ("protobuf_gzip", Protocol::HttpProtobuf, Compression::Gzip),
        ("json", Protocol::HttpJson, Compression::None),
    ] {
        let mut exporter = OtlpHttpExporter::new(OtlpHttpConfig {
            endpoint: url.clone(),
            protocol,
            compression,
            retry: RetryPolicy::none(),
            resource: resource.clone(),
            ..OtlpHttpConfig::default()
        })
        .unwrap();
        g.bench_function(name, |b| {
            b.iter(|| {
                for _ in 0..512 {
                    exporter.add(view);
                }
                let outcome = exporter.export(&Deadline::after(Duration::from_secs(10)));
                assert_eq!(outcome.exported, 512, "{outcome:?}");
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
