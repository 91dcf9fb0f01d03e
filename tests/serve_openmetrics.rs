//! The `/metrics` server's `Accept` negotiation over real sockets: OpenMetrics 1.0.0 only when
//! enabled and preferred, 0.0.4 otherwise (q=0, unknown versions, wildcards, malformed fields,
//! several fields); encodes shared per format between concurrent scrapes; the served
//! OpenMetrics accepted by the strict Python parser; and a real Prometheus 2.42 scraping it,
//! with exemplar storage, returning our exemplars' trace ids from `/api/v1/query_exemplars`.
#![cfg(feature = "http-server")]

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use agentcore_telemetry::exposition::OPENMETRICS_CONTENT_TYPE;
use agentcore_telemetry::registry::FamilyOptions;
use agentcore_telemetry::serve::{ExpositionSource, MetricsServer, ServerConfig, CONTENT_TYPE};
use agentcore_telemetry::{
    Buckets, Counter, DistributedTracer, Exemplars, Histogram, Registry, SpanKind, SpanStatus,
    TracerConfig,
};
use support::openmetrics::parse_openmetrics;
use support::prometheus::{PrometheusServer, Scrape};

const PROMETHEUS_2_42: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

fn registry() -> Registry {
    let r = Registry::new();
    let h = r
        .histogram_family(
            "work_seconds",
            "Work.",
            &["kind"],
            Buckets::new(vec![1.0]).unwrap(),
        )
        .unwrap();
    h.with_label_values(&["a"]).unwrap().observe(0.5);
    r.counter("jobs_total", "Jobs.").unwrap().inc();
    r
}

fn config(openmetrics: bool) -> ServerConfig {
    ServerConfig::default()
        .with_addr("127.0.0.1:0".parse().unwrap())
        .with_openmetrics(openmetrics)
}

struct Reply {
    status: u16,
    content_type: String,
    vary: String,
    body: String,
}

fn get(addr: SocketAddr, accept: &[&str]) -> Reply {
    let mut req = String::from("GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n");
    for a in accept {
        req.push_str(&format!("Accept: {a}\r\n"));
    }
    req.push_str("\r\n");
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    conn.write_all(req.as_bytes()).unwrap();
    let mut bytes = Vec::new();
    conn.read_to_end(&mut bytes).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let field = |name: &str| {
        head.split("\r\n")
            .filter_map(|l| l.split_once(": "))
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map_or(String::new(), |(_, v)| v.to_string())
    };
    Reply {
        status: head.split(' ').nth(1).unwrap().parse().unwrap(),
        content_type: field("content-type"),
        vary: field("vary"),
        body: body.to_string(),
    }
}

fn is_openmetrics(r: &Reply) -> bool {
    assert_eq!(r.status, 200);
    match r.content_type.as_str() {
        OPENMETRICS_CONTENT_TYPE => {
            assert!(r.body.ends_with("# EOF\n"), "{}", r.body);
            assert!(r
                .body
                .contains("work_seconds_bucket{kind=\"a\",le=\"1.0\"} 1\n"));
            true
        }
        CONTENT_TYPE => {
            assert!(!r.body.contains("# EOF"));
            assert!(r
                .body
                .contains("work_seconds_bucket{kind=\"a\",le=\"1\"} 1\n"));
            false
        }
        other => panic!("content type {other}"),
    }
}

#[test]
fn negotiation_edge_cases_over_http() {
    let server = MetricsServer::start(config(true), registry()).unwrap();
    let addr = server.local_addr();
    let cases: &[(&[&str], bool, &str)] = &[
        (&[PROMETHEUS_2_42], true, "Prometheus 2.42's Accept"),
        (&[], false, "no Accept"),
        (&["*/*"], false, "curl's */*"),
        (
            &["application/openmetrics-text"],
            true,
            "OpenMetrics without a version",
        ),
        (
            &["application/openmetrics-text; version=1.0.0; charset=utf-8"],
            true,
            "with charset",
        ),
        (&["application/openmetrics-text;q=0"], false, "q=0"),
        (
            &["application/openmetrics-text;q=0, */*"],
            false,
            "q=0 beside */*",
        ),
        (
            &["text/plain;q=0, */*;q=0.1"],
            true,
            "0.0.4 refused, */* admits OpenMetrics",
        ),
        (
            &["application/openmetrics-text;version=2.0.0"],
            false,
            "unknown version",
        ),
        (
            &["application/openmetrics-text;version=2.0.0, text/plain;q=0.1"],
            false,
            "unknown version with a fallback",
        ),
        (
            &["application/openmetrics-text;q=1.5"],
            false,
            "malformed weight",
        ),
        (&["garbage;;;, ,"], false, "malformed Accept"),
        (
            &["applicätion/openmetrics-text, ☃/*"],
            false,
            "obs-text bytes in the media type",
        ),
        (
            &["text/plain;q=0.2", "application/openmetrics-text;q=0.3"],
            true,
            "two Accept fields",
        ),
        (
            &["text/plain;q=0.3", "application/openmetrics-text;q=0.2"],
            false,
            "two Accept fields, 0.0.4 heavier",
        ),
        (&["application/*"], true, "application/*"),
    ];
    for (accept, want_om, what) in cases {
        let r = get(addr, accept);
        assert_eq!(is_openmetrics(&r), *want_om, "{what}: {accept:?}");
        assert_eq!(r.vary, "Accept, Accept-Encoding", "{what}");
    }
    // Control characters are not a field value at all (RFC 9110 §5.5): the head is refused.
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\nAccept: \x01\x7f\r\n\r\n")
        .unwrap();
    let mut reply = Vec::new();
    conn.read_to_end(&mut reply).unwrap();
    assert!(
        reply.starts_with(b"HTTP/1.1 400 "),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    // The self-metrics section follows the format too, and the whole OpenMetrics body is one
    // valid exposition (the server's own families included).
    let r = get(addr, &[PROMETHEUS_2_42]);
    assert!(r
        .body
        .contains("# TYPE agentcore_telemetry_http_requests counter\n"));
    assert!(r
        .body
        .contains("agentcore_telemetry_http_requests_total{code=\"200\"}"));
    if support::openmetrics::require_openmetrics_oracle("negotiation_edge_cases_over_http (parser)")
    {
        parse_openmetrics(&r.body).unwrap_or_else(|e| panic!("{e}\n{}", r.body));
    }
    assert_eq!(server.stats().scrapes, cases.len() as u64 + 1);
    assert_eq!(server.stats().scrape_errors, 0);
}

#[test]
fn openmetrics_off_always_serves_0_0_4() {
    let server = MetricsServer::start(config(false), registry()).unwrap();
    let r = get(server.local_addr(), &[PROMETHEUS_2_42]);
    assert!(!is_openmetrics(&r));
    assert_eq!(
        r.vary, "Accept-Encoding",
        "no Vary: Accept without a choice of format"
    );
}

#[test]
fn a_0_0_4_only_source_is_refused_when_openmetrics_is_on() {
    let err = MetricsServer::builder(config(true))
        .source("reg", registry())
        .source("closure", |out: &mut String| out.push_str("x 1\n"))
        .start()
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("\"closure\""), "{err}");
    assert!(!(|out: &mut String| out.push_str("x 1\n")).supports_openmetrics());
}

/// A source whose encodes wait until the test drops the sender (it never finishes one while
/// the test scrapes).
struct Blocked(std::sync::Mutex<std::sync::mpsc::Receiver<()>>);

impl ExpositionSource for Blocked {
    fn encode_into(&self, _: &mut String) {
        let _ = self.0.lock().unwrap().recv();
    }
    fn supports_openmetrics(&self) -> bool {
        true
    }
    fn encode_openmetrics_into(&self, _: &mut String) {
        let _ = self.0.lock().unwrap().recv();
    }
}

/// The server's own section follows OpenMetrics' "Numbers" as the registry's families do: the
/// encode-duration histogram's `_sum` is a float, so a whole one has a decimal point. Before a
/// best-effort source has finished an encode it is 0 seconds, and was written `0`, an integer.
#[test]
fn the_servers_own_float_values_have_a_decimal_point_in_openmetrics() {
    let (release, blocked) = std::sync::mpsc::channel::<()>();
    let server =
        MetricsServer::builder(config(true).with_encode_timeout(Duration::from_millis(100)))
            .best_effort_source("hung", Blocked(std::sync::Mutex::new(blocked)))
            .start()
            .unwrap();
    let om = get(server.local_addr(), &[PROMETHEUS_2_42]);
    assert_eq!(om.content_type, OPENMETRICS_CONTENT_TYPE);
    let sum = "agentcore_telemetry_http_encode_duration_seconds_sum{source=\"hung\"} ";
    assert!(om.body.contains(&format!("\n{sum}0.0\n")), "{}", om.body);
    if support::openmetrics::require_openmetrics_oracle(
        "the_servers_own_float_values_have_a_decimal_point_in_openmetrics",
    ) {
        parse_openmetrics(&om.body).unwrap_or_else(|e| panic!("{e}\n{}", om.body));
    }
    // 0.0.4 writes floats as Go does: `0`.
    let text = get(server.local_addr(), &[]);
    assert_eq!(text.content_type, CONTENT_TYPE);
    assert!(text.body.contains(&format!("\n{sum}0\n")), "{}", text.body);
    drop(release);
    server.shutdown();
}

/// The server's own families write their metadata as the registry's do: in OpenMetrics
/// `# TYPE`, `# UNIT` (for the `_seconds` histogram), `# HELP`, the order the standard
/// recommends ("Metric families" in OpenMetrics 1.0); in 0.0.4 `# HELP` then `# TYPE`, as
/// client_golang writes them. Before, both formats wrote `# HELP` first, and OpenMetrics had
/// no `# UNIT`.
#[test]
fn the_servers_own_families_write_type_unit_help_in_openmetrics() {
    let server = MetricsServer::start(config(true), registry()).unwrap();
    let om = get(server.local_addr(), &[PROMETHEUS_2_42]);
    assert_eq!(om.content_type, OPENMETRICS_CONTENT_TYPE);
    let prefix = "agentcore_telemetry_http_";
    let own: Vec<&str> = om
        .body
        .lines()
        .filter(|l| l.starts_with('#') && l.contains(prefix))
        .collect();
    let families: Vec<&str> = own
        .iter()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next())
        .collect();
    assert!(families.len() >= 8, "{}", om.body);
    for family in &families {
        let kinds: Vec<&str> = own
            .iter()
            .filter(|l| l.split(' ').nth(2) == Some(family))
            .map(|l| l.split(' ').nth(1).unwrap())
            .collect();
        let want: &[&str] = if family.ends_with("_seconds") {
            &["TYPE", "UNIT", "HELP"]
        } else {
            &["TYPE", "HELP"]
        };
        assert_eq!(kinds, want, "{family}\n{}", om.body);
    }
    assert!(om
        .body
        .contains("# UNIT agentcore_telemetry_http_encode_duration_seconds seconds\n"));
    if support::openmetrics::require_openmetrics_oracle(
        "the_servers_own_families_write_type_unit_help_in_openmetrics",
    ) {
        parse_openmetrics(&om.body).unwrap_or_else(|e| panic!("{e}\n{}", om.body));
    }
    let text = get(server.local_addr(), &[]);
    assert_eq!(text.content_type, CONTENT_TYPE);
    let help = "# HELP agentcore_telemetry_http_requests_total ";
    let ty = "# TYPE agentcore_telemetry_http_requests_total counter\n";
    let (h, t) = (text.body.find(help).unwrap(), text.body.find(ty).unwrap());
    assert!(h < t, "{}", text.body);
    assert!(!text.body.contains("# UNIT"), "no UNIT in 0.0.4");
    server.shutdown();
}

/// A source that counts its encodes per format and takes a while, so scrapes pile up.
struct Slow {
    registry: Registry,
    text: AtomicUsize,
    om: AtomicUsize,
}

struct SlowSource(Arc<Slow>);

impl ExpositionSource for SlowSource {
    fn encode_into(&self, out: &mut String) {
        let slow = &self.0;
        slow.text.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(150));
        slow.registry.encode_into(out);
    }
    fn supports_openmetrics(&self) -> bool {
        true
    }
    fn encode_openmetrics_into(&self, out: &mut String) {
        let slow = &self.0;
        slow.om.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(150));
        ExpositionSource::encode_openmetrics_into(&slow.registry, out);
    }
}

#[test]
fn concurrent_scrapes_share_one_encode_per_format() {
    let slow = Arc::new(Slow {
        registry: registry(),
        text: AtomicUsize::new(0),
        om: AtomicUsize::new(0),
    });
    let server = MetricsServer::start(config(true), SlowSource(Arc::clone(&slow))).unwrap();
    let addr = server.local_addr();
    let threads: Vec<_> = (0..16)
        .map(|i| {
            std::thread::spawn(move || {
                let accept: &[&str] = if i % 2 == 0 { &[PROMETHEUS_2_42] } else { &[] };
                let r = get(addr, accept);
                assert_eq!(is_openmetrics(&r), i % 2 == 0);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let (text, om) = (
        slow.text.load(Ordering::Relaxed),
        slow.om.load(Ordering::Relaxed),
    );
    // 8 scrapes of each format arriving within one encode share a few generations each, never
    // one encode per scrape.
    assert!((1..=3).contains(&text), "{text} text encodes for 8 scrapes");
    assert!(
        (1..=3).contains(&om),
        "{om} OpenMetrics encodes for 8 scrapes"
    );
    assert_eq!(server.stats().scrapes, 16);
}

#[test]
fn prometheus_scrapes_openmetrics_with_exemplars_and_stores_our_trace_ids() {
    require_prometheus!("prometheus_scrapes_openmetrics_with_exemplars_and_stores_our_trace_ids");
    let tracer = DistributedTracer::new(TracerConfig::default());
    let registry = Registry::new();
    let opts = FamilyOptions::default().with_exemplars(Exemplars::TraceBased);
    let latency: Histogram = registry
        .register::<Histogram>(
            "tool_seconds",
            "Tool latency.",
            &["tool_id"],
            Buckets::default(),
            opts.clone(),
        )
        .unwrap()
        .get_or_create(&["calculator"])
        .unwrap();
    let errors: Counter = registry
        .register::<Counter>("tool_errors_total", "Tool errors.", &["tool_id"], (), opts)
        .unwrap()
        .get_or_create(&["calculator"])
        .unwrap();
    let span = tracer.start_span("execute_tool", SpanKind::Internal, []);
    let trace_id = span.trace_id().to_string();
    let span_id = span.span_id().to_string();
    latency.observe(0.3);
    errors.inc();
    tracer.finish_span(span, SpanStatus::Ok, None);
    assert_eq!(
        tracer.get_trace_spans(span_trace(&trace_id)).len(),
        1,
        "the span is in the log"
    );

    let server = MetricsServer::start(config(true), registry.clone()).unwrap();
    let prom = PrometheusServer::start_with(
        server.local_addr(),
        Scrape {
            exemplars: true,
            ..Scrape::default()
        },
    )
    .expect("start prometheus");
    let health = prom.wait_for_target_up(Duration::from_secs(30));
    assert_eq!(health.health, "up", "{health:?}\n{}", prom.log());
    // OpenMetrics was negotiated: Prometheus stored the canonical `le`.
    let le = prom
        .query_eventually("tool_seconds_bucket{le=\"0.5\"}", Duration::from_secs(30))
        .unwrap();
    assert_eq!(le.len(), 1, "{le:?}");

    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let found = loop {
        let mut got = Vec::new();
        for q in ["tool_seconds_bucket", "tool_errors_total"] {
            for series in prom.query_exemplars(q, Duration::from_secs(300)).unwrap() {
                for e in series["exemplars"].as_array().cloned().unwrap_or_default() {
                    got.push((
                        series["seriesLabels"]["__name__"]
                            .as_str()
                            .unwrap_or("")
                            .to_string(),
                        e["labels"]["trace_id"].as_str().unwrap_or("").to_string(),
                        e["labels"]["span_id"].as_str().unwrap_or("").to_string(),
                        e["value"].as_str().unwrap_or("").to_string(),
                    ));
                }
            }
        }
        if got.len() >= 2 || std::time::Instant::now() > deadline {
            break got;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        found.contains(&(
            "tool_seconds_bucket".into(),
            trace_id.clone(),
            span_id.clone(),
            "0.3".into()
        )),
        "{found:?}\n{}",
        prom.log()
    );
    assert!(
        found.contains(&(
            "tool_errors_total".into(),
            trace_id.clone(),
            span_id.clone(),
            "1".into()
        )),
        "{found:?}"
    );
    // An unchanged exemplar (same labels, value and observation time) is stored once, however
    // many scrapes saw it.
    assert_eq!(found.len(), 2, "{found:?}");
    drop(prom);
    server.shutdown();
}

fn span_trace(hex: &str) -> agentcore_telemetry::TraceId {
    agentcore_telemetry::TraceId::from_hex(hex).expect("trace id")
}

/// A source that always encodes within `encode_timeout` (450 ms of 500 ms, either format).
struct Steady(Registry);

impl ExpositionSource for Steady {
    fn encode_into(&self, out: &mut String) {
        std::thread::sleep(Duration::from_millis(450));
        self.0.encode_into(out);
    }
    fn supports_openmetrics(&self) -> bool {
        true
    }
    fn encode_openmetrics_into(&self, out: &mut String) {
        std::thread::sleep(Duration::from_millis(450));
        ExpositionSource::encode_openmetrics_into(&self.0, out);
    }
}

/// Invariant 5 and `scrape`'s module doc: a source that always meets `encode_timeout` is
/// always served. With both formats wanted, a 0.0.4 scrape that arrives during a 0.0.4
/// generation, together with an OpenMetrics one, waits for the generation in progress, the
/// OpenMetrics one (the driver alternates formats) and its own: three encodes. Its budget was
/// twice `encode_timeout`, so it got `503` (review helper-148); with OpenMetrics on it is
/// three times.
#[test]
fn a_scrape_waiting_for_both_formats_encodes_is_served_in_time() {
    let server = MetricsServer::start(
        config(true).with_encode_timeout(Duration::from_millis(500)),
        Steady(registry()),
    )
    .unwrap();
    let addr = server.local_addr();
    // A 0.0.4 scrape starts a generation...
    let first = std::thread::spawn(move || get(addr, &[]).status);
    std::thread::sleep(Duration::from_millis(100));
    // ...and, while it runs, an OpenMetrics scrape and another 0.0.4 one arrive.
    let om = std::thread::spawn(move || get(addr, &[PROMETHEUS_2_42]).status);
    std::thread::sleep(Duration::from_millis(20));
    let text = get(addr, &[]);
    assert_eq!(first.join().unwrap(), 200);
    assert_eq!(om.join().unwrap(), 200);
    assert_eq!(
        text.status, 200,
        "a source that always meets encode_timeout, and the scrape got {}: {}",
        text.status, text.body
    );
}
