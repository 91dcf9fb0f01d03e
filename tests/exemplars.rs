//! Exemplars end to end: trace-based exemplars take the current sampled span's ids, explicit
//! ones their labels; both appear only in OpenMetrics, on `_total` and `_bucket`; the official
//! Python `prometheus_client` OpenMetrics parser (strict) accepts every exposition with them,
//! hostile values included; recording with exemplars allocates nothing; and the collector's
//! latency histograms and tool-error counter carry them out of the box.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use agentcore_telemetry::agent::{AgentPhilosophy, CollectorConfig};
use agentcore_telemetry::exposition::OPENMETRICS_CONTENT_TYPE;
use agentcore_telemetry::registry::FamilyOptions;
use agentcore_telemetry::{
    Buckets, Counter, DistributedTracer, Error, Exemplars, Histogram, MetricsCollector, Registry,
    Sampler, SpanKind, SpanStatus, TracerConfig,
};
use support::alloc::thread_allocations;
use support::openmetrics::{parse_openmetrics, ExpositionServer, OmFamily, OmSample};
use support::prometheus::PrometheusServer;

#[global_allocator]
static GLOBAL: support::alloc::Counting = support::alloc::Counting;

/// A label value with everything the format must escape or keep raw.
const HOSTILE: &str = "say \"hi\" C:\\dir\nline2\ttab é✓ # {} =,";
/// The same in an exemplar label value, less the double quote (refused there: the official
/// Python parser rejects a whole exposition with an escaped quote inside an exemplar).
const HOSTILE_EXEMPLAR: &str = "say hi C:\\dir\nline2\ttab é✓ # {} =,";

fn tracer(sample_ratio: f64) -> DistributedTracer {
    DistributedTracer::new(TracerConfig {
        sampler: Some(Sampler::ratio(sample_ratio)),
        ..TracerConfig::default()
    })
}

fn om(registry: &Registry) -> String {
    let mut out = String::new();
    registry.encode_openmetrics_into(&mut out);
    out
}

fn traced_registry() -> (Registry, Counter, Histogram) {
    let r = Registry::new();
    let opts = FamilyOptions::default().with_exemplars(Exemplars::TraceBased);
    let errors = r
        .register::<Counter>("tool_errors_total", "Errors.", &["tool"], (), opts.clone())
        .unwrap()
        .get_or_create(&[HOSTILE])
        .unwrap();
    let latency = r
        .register::<Histogram>(
            "tool_seconds",
            "Latency.",
            &["tool"],
            Buckets::new(vec![0.1, 1.0]).unwrap(),
            opts,
        )
        .unwrap()
        .get_or_create(&[HOSTILE])
        .unwrap();
    (r, errors, latency)
}

fn sample<'a>(families: &'a [OmFamily], name: &str, le: Option<&str>) -> &'a OmSample {
    families
        .iter()
        .flat_map(|f| &f.samples)
        .find(|s| {
            s.name == name && le.is_none_or(|le| s.labels.get("le").map(String::as_str) == Some(le))
        })
        .unwrap_or_else(|| panic!("no sample {name} {le:?}"))
}

#[test]
fn trace_based_exemplars_carry_the_current_sampled_span() {
    require_openmetrics_oracle!("trace_based_exemplars_carry_the_current_sampled_span");
    let tracer = tracer(1.0);
    let (registry, errors, latency) = traced_registry();
    // Outside any span: recorded, no exemplar.
    errors.inc();
    latency.observe(0.05);
    let before = om(&registry);
    assert!(
        !before.contains("trace_id="),
        "no exemplar outside a span:\n{before}"
    );

    let span = tracer.start_span("tool", SpanKind::Internal, []);
    let (trace_id, span_id) = (span.trace_id().to_string(), span.span_id().to_string());
    let t0 = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    errors.inc();
    latency.observe(0.5);
    tracer.finish_span(span, SpanStatus::Ok, None);

    let text = om(&registry);
    let families = parse_openmetrics(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let total = sample(&families, "tool_errors_total", None);
    assert_eq!(total.value, "2.0");
    let ex = total.exemplar.as_ref().expect("counter exemplar");
    assert_eq!(ex.labels["trace_id"], trace_id);
    assert_eq!(ex.labels["span_id"], span_id);
    assert_eq!(
        ex.value, "1.0",
        "a counter exemplar's value is the increment"
    );
    let ts: f64 = ex.timestamp.as_ref().expect("timestamp").parse().unwrap();
    assert!(
        (ts - t0).abs() < 5.0,
        "the observation's time: {ts} vs {t0}"
    );

    // The bucket the observation fell in has it; the others do not.
    let bucket = sample(&families, "tool_seconds_bucket", Some("1.0"));
    let ex = bucket.exemplar.as_ref().expect("bucket exemplar");
    assert_eq!(
        (ex.labels["trace_id"].as_str(), ex.value.as_str()),
        (trace_id.as_str(), "0.5")
    );
    assert!(sample(&families, "tool_seconds_bucket", Some("0.1"))
        .exemplar
        .is_none());
    assert!(sample(&families, "tool_seconds_bucket", Some("+Inf"))
        .exemplar
        .is_none());
    assert!(sample(&families, "tool_seconds_count", None)
        .exemplar
        .is_none());

    // The exemplar is stable between scrapes (Prometheus stores an unchanged one once).
    assert_eq!(om(&registry), text);
    // Never in the text format 0.0.4.
    assert!(!registry.encode_text().contains("trace_id="));
}

#[test]
fn unsampled_spans_and_off_metrics_keep_no_exemplar() {
    let tracer = tracer(0.0);
    let (registry, errors, latency) = traced_registry();
    let plain = registry.counter("plain_total", "No exemplars.").unwrap();
    let span = tracer.start_span("tool", SpanKind::Internal, []);
    errors.inc();
    latency.observe(0.5);
    plain.inc();
    tracer.finish_span(span, SpanStatus::Ok, None);
    let sampled = self::tracer(1.0);
    let span = sampled.start_span("tool", SpanKind::Internal, []);
    plain.inc();
    sampled.finish_span(span, SpanStatus::Ok, None);
    let text = om(&registry);
    assert!(
        !text.contains("} 1 # {") && !text.contains("trace_id="),
        "{text}"
    );
    assert_eq!(plain.exemplars(), Exemplars::Off);
    assert_eq!(
        plain.inc_with_exemplar(&[("a", "b")]).unwrap_err().to_string(),
        "exemplar not kept (the value was recorded): exemplars are off for this metric (see Exemplars)"
    );
    assert_eq!(
        plain.get(),
        3.0,
        "the value is recorded even when the exemplar is refused"
    );
}

/// A handle adopted into a family (`Family::insert_metric`) keeps its own exemplar setting,
/// whatever the family gives the series it creates: an adopted explicit-exemplar counter shows
/// its exemplar in a family whose series keep none, and an adopted plain counter none in a
/// family whose series keep them (as `insert_metric`'s docs say).
#[test]
fn an_adopted_handle_keeps_its_own_exemplar_setting() {
    let registry = Registry::new();
    let off = registry
        .counter_family("adopted_off_total", "Family off.", &["k"])
        .unwrap();
    let explicit = Counter::with_exemplars(Exemplars::Explicit).unwrap();
    explicit
        .inc_with_exemplar(&[("request_id", "r-1")])
        .unwrap();
    assert!(off.insert_metric(&["adopted"], explicit).unwrap());
    off.with_label_values(&["created"]).unwrap().inc();
    let on = registry
        .register::<Counter>(
            "adopted_on_total",
            "Family explicit.",
            &["k"],
            (),
            FamilyOptions {
                exemplars: Some(Exemplars::Explicit),
                ..FamilyOptions::default()
            },
        )
        .unwrap();
    assert!(on
        .insert_metric(&["adopted"], Counter::new().unwrap())
        .unwrap());
    let created = on.get_or_create(&["created"]).unwrap();
    created.inc_with_exemplar(&[("request_id", "r-2")]).unwrap();
    assert!(on
        .get(&["adopted"])
        .unwrap()
        .inc_with_exemplar(&[("a", "b")])
        .is_err());
    let text = om(&registry);
    // The strict parser accepts the exposition, exemplars and all.
    parse_openmetrics(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let line = |labels: &str| {
        text.lines()
            .find(|l| l.starts_with(labels))
            .unwrap_or_else(|| panic!("no {labels} in {text}"))
    };
    assert!(line("adopted_off_total{k=\"adopted\"}").contains("# {request_id=\"r-1\"}"));
    assert!(!line("adopted_off_total{k=\"created\"}").contains('#'));
    assert!(!line("adopted_on_total{k=\"adopted\"}").contains('#'));
    assert!(line("adopted_on_total{k=\"created\"}").contains("# {request_id=\"r-2\"}"));
}

#[test]
fn explicit_exemplars_with_hostile_values_pass_the_strict_parser() {
    require_openmetrics_oracle!("explicit_exemplars_with_hostile_values_pass_the_strict_parser");
    let r = Registry::new();
    r.set_default_exemplars(Exemplars::Explicit);
    let c = r
        .counter_family("requests_total", "Requests.", &["path"])
        .unwrap();
    let h = r
        .histogram_family(
            "size_bytes",
            "Sizes.",
            &["path"],
            Buckets::new(vec![-1.0, 10.0]).unwrap(),
        )
        .unwrap();
    let series = c.get_or_create(&[HOSTILE]).unwrap();
    series
        .inc_with_exemplar(&[("user", HOSTILE_EXEMPLAR), ("n", "")])
        .unwrap();
    assert!(series.inc_with_exemplar(&[("user", HOSTILE)]).is_err());
    series.inc_by_with_exemplar(0, &[("zero", "0")]).unwrap();
    let hs = h.get_or_create(&[HOSTILE]).unwrap();
    hs.observe_with_exemplar(-5.0, &[("q", "}\\\n # {")])
        .unwrap();
    hs.observe_with_exemplar(f64::INFINITY, &[]).unwrap();
    hs.observe_with_exemplar(3.0, &[("x", &"é".repeat(100))])
        .unwrap();
    // Refused exemplars: reported, the value still counted, the last good exemplar kept.
    let long = "x".repeat(128);
    assert!(matches!(
        series.inc_with_exemplar(&[("k", &long)]),
        Err(Error::InvalidExemplar { .. })
    ));
    assert!(series.inc_with_exemplar(&[("le gal", "x")]).is_err());
    assert!(series.inc_with_exemplar(&[("__name__", "x")]).is_err());
    assert!(matches!(
        hs.observe_with_exemplar(f64::NAN, &[("a", "b")]),
        Err(Error::InvalidObservation { value }) if value.is_nan()
    ));
    assert_eq!(series.get(), 5.0);

    let text = om(&r);
    let families = parse_openmetrics(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let total = sample(&families, "requests_total", None);
    assert_eq!(total.exemplar.as_ref().unwrap().labels["zero"], "0");
    let b = sample(&families, "size_bytes_bucket", Some("-1.0"));
    assert_eq!(b.exemplar.as_ref().unwrap().labels["q"], "}\\\n # {");
    assert_eq!(b.exemplar.as_ref().unwrap().value, "-5.0");
    let b = sample(&families, "size_bytes_bucket", Some("10.0"));
    assert_eq!(b.exemplar.as_ref().unwrap().labels["x"], "é".repeat(100));
    let b = sample(&families, "size_bytes_bucket", Some("+Inf"));
    let ex = b.exemplar.as_ref().unwrap();
    assert!(ex.labels.is_empty());
    assert_eq!(ex.value, "inf");

    // Exactly 128 code points of names and values: accepted by us and by the strict parser.
    let c2 = r.counter("edge_total", "Edge.").unwrap();
    c2.inc_with_exemplar(&[("id", &"y".repeat(126))]).unwrap();
    let text = om(&r);
    parse_openmetrics(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
}

/// A NUL in an exemplar label value is valid OpenMetrics (the ABNF's `normal-char` includes
/// %x00), and the Python parser reads it back; but Prometheus 2.42 fails the whole scrape on it
/// (`expected label value, got "INVALID"`): one exemplar recorded with a NUL took every series
/// of the target down until another exemplar replaced it. It is refused when recorded, as the
/// double quote is (the value still counts). A NUL in a *series'* label value is fine: the same
/// Prometheus stores it (checked here too).
#[test]
fn a_nul_in_an_exemplar_label_value_is_refused_as_prometheus_fails_the_scrape_on_it() {
    require_prometheus!(
        "a_nul_in_an_exemplar_label_value_is_refused_as_prometheus_fails_the_scrape_on_it"
    );
    let r = Registry::new();
    r.set_default_exemplars(Exemplars::Explicit);
    let c = r
        .counter_family("requests_total", "Requests.", &["path"])
        .unwrap()
        .get_or_create(&["a\0b"])
        .unwrap();
    let h = r
        .histogram("size_bytes", "Sizes.", Buckets::new(vec![1.0]).unwrap())
        .unwrap();
    let counted = c.inc_with_exemplar(&[("user", "a\0b")]);
    let observed = h.observe_with_exemplar(0.5, &[("user", "\0")]);
    assert_eq!((c.get(), h.snapshot().count), (1.0, 1), "the values count");

    let registry = r.clone();
    let server = ExpositionServer::start(OPENMETRICS_CONTENT_TYPE, move || om(&registry));
    let prom = PrometheusServer::start(server.addr()).expect("start prometheus");
    let health = prom.wait_for_target_up(Duration::from_secs(15));
    assert_eq!(
        health.health,
        "up",
        "Prometheus refused the scrape: {health:?}\n{}",
        om(&r)
    );
    let stored = prom
        .query_eventually("requests_total", Duration::from_secs(20))
        .unwrap();
    assert_eq!(stored[0].0["path"], "a\0b", "{stored:?}");
    assert!(
        matches!(counted, Err(Error::InvalidExemplar { .. })),
        "{counted:?}"
    );
    assert!(
        matches!(observed, Err(Error::InvalidExemplar { .. })),
        "{observed:?}"
    );
}

/// An explicit label set over the 128-code-point limit is refused as soon as it crosses it, not
/// after checking every pair of names for duplicates: that check is quadratic, and 100,000
/// distinct names (each pair of which was compared) took 40 s per call in a debug build before
/// it was refused, on the recording thread. With the running count checked first, at most 128
/// labels are looked at: the list's last label, a name given twice, is never reached (a
/// scan of the whole list reports it instead), and nothing here depends on the machine's speed.
#[test]
fn an_overlong_label_list_is_refused_without_scanning_it_quadratically() {
    let names: Vec<String> = (0..2_000).map(|i| format!("l{i}")).collect();
    let mut labels: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "")).collect();
    labels.push(("l0", "again"));
    let c = Counter::with_exemplars(Exemplars::Explicit).unwrap();
    let h = Histogram::with_exemplars(Buckets::default(), Exemplars::Explicit).unwrap();
    let counter = c.inc_with_exemplar(&labels);
    let histogram = h.observe_with_exemplar(0.5, &labels);
    for (what, result) in [("counter", counter), ("histogram", histogram)] {
        let err = result.expect_err(what).to_string();
        assert!(
            err.contains("code points, at most 128"),
            "{what}: refused for a label past the limit, so the whole list was scanned: {err}"
        );
    }
    assert_eq!(
        (c.get(), h.snapshot().count),
        (1.0, 1),
        "both values recorded"
    );
}

#[test]
fn recording_with_exemplars_allocates_nothing() {
    let tracer = tracer(1.0);
    let (_registry, errors, latency) = traced_registry();
    let explicit = Counter::with_exemplars(Exemplars::Explicit).unwrap();
    // Warm up: the thread's arena block, the tracer's thread-locals.
    let span = tracer.start_span("warm", SpanKind::Internal, []);
    errors.inc();
    latency.observe(0.5);
    explicit.inc_with_exemplar(&[("k", "v")]).unwrap();
    tracer.finish_span(span, SpanStatus::Ok, None);

    let span = tracer.start_span("hot", SpanKind::Internal, []);
    let before = thread_allocations();
    for i in 0..10_000 {
        errors.inc();
        errors.inc_by(2);
        errors.add(0.5).unwrap();
        latency.observe(f64::from(i % 3));
        latency
            .observe_with_exemplar(0.05, &[("request_id", "r-1")])
            .unwrap();
        explicit
            .inc_with_exemplar(&[("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736")])
            .unwrap();
    }
    let n = thread_allocations() - before;
    tracer.finish_span(span, SpanStatus::Ok, None);
    assert_eq!(
        n, 0,
        "{n} allocations recording 60 000 values with exemplars"
    );
    assert!(om(&_registry).contains("trace_id=\""));
}

#[test]
fn the_collector_links_latency_and_tool_errors_to_traces() {
    require_openmetrics_oracle!("the_collector_links_latency_and_tool_errors_to_traces");
    let registry = Registry::new();
    let collector =
        MetricsCollector::with_registry(registry.clone(), CollectorConfig::default()).unwrap();
    let tracer = tracer(1.0);
    let span = tracer.start_span("execute_tool", SpanKind::Internal, []);
    let trace_id = span.trace_id().to_string();
    collector.record_tool_execution("calculator", 0.2, "error", Some("ValueError"));
    collector.record_agent_execution(AgentPhilosophy::React, 1.5);
    tracer.finish_span(span, SpanStatus::Ok, None);
    let text = om(&registry);
    let families = parse_openmetrics(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let with_exemplar: Vec<&str> = families
        .iter()
        .flat_map(|f| &f.samples)
        .filter(|s| {
            s.exemplar
                .as_ref()
                .is_some_and(|e| e.labels["trace_id"] == trace_id)
        })
        .map(|s| s.name.as_str())
        .collect();
    for name in [
        "agentcore_tool_execution_seconds_bucket",
        "agentcore_tool_errors_total",
        "agentcore_agent_execution_seconds_bucket",
    ] {
        assert!(
            with_exemplar.contains(&name),
            "{name} has no exemplar: {with_exemplar:?}"
        );
    }
    // Families the issue does not name stay without.
    assert!(!with_exemplar.contains(&"agentcore_tool_executions_total"));
}

// ---------------------------------------------------------------------------------------------
// Exactness: a trace-based exemplar is always the innermost visible sampled span of the
// recording thread, whatever changed the thread's context last (the tracer publishes it to the
// metrics layer at every change; these checks fail if one change forgets to).
// ---------------------------------------------------------------------------------------------

/// The `(trace_id, span_id)` a fresh trace-based counter and histogram keep when recorded right
/// now on this thread (both must agree), or `None`.
fn exemplar_now() -> Option<(String, String)> {
    let (registry, errors, latency) = traced_registry();
    errors.inc();
    latency.observe(0.5);
    let text = om(&registry);
    let ids: Vec<(String, String)> = text
        .lines()
        .filter_map(|line| {
            let field = |k: &str| {
                let rest = line.split(&format!("{k}=\"")).nth(1)?;
                Some(rest[..rest.find('"')?].to_string())
            };
            Some((field("trace_id")?, field("span_id")?))
        })
        .collect();
    match ids.as_slice() {
        [] => None,
        [counter, bucket] => {
            assert_eq!(counter, bucket, "counter and histogram disagree:\n{text}");
            Some(counter.clone())
        }
        _ => panic!("one exemplar per metric expected:\n{text}"),
    }
}

fn ids_of(span: &agentcore_telemetry::DetachedSpan<'_>) -> Option<(String, String)> {
    Some((span.trace_id().to_string(), span.span_id().to_string()))
}

#[test]
fn exemplars_follow_nested_spans_and_their_ends_in_any_order() {
    let t = tracer(1.0);
    assert_eq!(exemplar_now(), None);
    let a = t.start_span("a", SpanKind::Internal, []);
    assert_eq!(exemplar_now(), ids_of(&a));
    let b = t.start_span("b", SpanKind::Internal, []);
    assert_eq!(exemplar_now(), ids_of(&b));
    let c = t.start_span("c", SpanKind::Internal, []);
    assert_eq!(exemplar_now(), ids_of(&c));
    // In order: the parent is current again.
    let c_ids = ids_of(&c);
    t.finish_span(c, SpanStatus::Ok, None);
    assert_eq!(exemplar_now(), ids_of(&b));
    let c = t.start_span("c2", SpanKind::Internal, []);
    assert_ne!(ids_of(&c), c_ids);
    // Out of order: ending a span below the top changes nothing, ending the top uncovers the
    // nearest span still open.
    t.finish_span(b, SpanStatus::Ok, None);
    assert_eq!(exemplar_now(), ids_of(&c));
    t.finish_span(c, SpanStatus::Ok, None);
    assert_eq!(exemplar_now(), ids_of(&a));
    t.finish_span(a, SpanStatus::Ok, None);
    assert_eq!(exemplar_now(), None);
}

#[test]
fn exemplars_are_the_innermost_span_of_any_tracer_and_only_when_sampled() {
    let sampled = tracer(1.0);
    let unsampled = tracer(0.0);
    let a = sampled.start_span("a", SpanKind::Internal, []);
    assert_eq!(exemplar_now(), ids_of(&a));
    // An unsampled span of another tracer on top: no exemplar (not its parent's).
    let u = unsampled.start_span("u", SpanKind::Internal, []);
    assert!(!u.context().is_sampled());
    assert_eq!(exemplar_now(), None);
    let c = sampled.start_span("c", SpanKind::Internal, []);
    assert_eq!(exemplar_now(), ids_of(&c));
    sampled.finish_span(c, SpanStatus::Ok, None);
    assert_eq!(exemplar_now(), None);
    unsampled.finish_span(u, SpanStatus::Ok, None);
    assert_eq!(exemplar_now(), ids_of(&a));
    // Detaching makes the span not current; attaching it again makes it current.
    let a = a.detach();
    assert_eq!(exemplar_now(), None);
    let a = a.attach();
    assert_eq!(exemplar_now(), ids_of(&a));
    sampled.finish_span(a, SpanStatus::Ok, None);
    assert_eq!(exemplar_now(), None);
}

/// Pending on its first poll, ready on the second.
struct YieldOnce(bool);

impl std::future::Future for YieldOnce {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            std::task::Poll::Ready(())
        } else {
            self.0 = true;
            std::task::Poll::Pending
        }
    }
}

fn poll<F: std::future::Future>(f: std::pin::Pin<&mut F>) -> std::task::Poll<F::Output> {
    f.poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
}

#[test]
fn exemplars_follow_async_context_scopes() {
    use agentcore_telemetry::FutureExt;
    use std::cell::RefCell;
    let t = tracer(1.0);
    let seen = RefCell::new(Vec::new());
    let outer = t.start_span("outer", SpanKind::Internal, []);
    let inner = t.start_span("inner", SpanKind::Internal, []).detach();
    let inner_ids = ids_of(&inner);
    let child_ids = RefCell::new(None);
    let fut = async {
        seen.borrow_mut().push(exemplar_now());
        // A span held across an await inside the scope.
        let child = t.start_span("child", SpanKind::Internal, []);
        *child_ids.borrow_mut() = ids_of(&child);
        seen.borrow_mut().push(exemplar_now());
        YieldOnce(false).await;
        seen.borrow_mut().push(exemplar_now());
        t.finish_span(child, SpanStatus::Ok, None);
        seen.borrow_mut().push(exemplar_now());
    }
    .in_span(inner);
    let mut fut = std::pin::pin!(fut);
    assert!(poll(fut.as_mut()).is_pending());
    // Between polls the future's spans are off the thread: the outer span is current again.
    assert_eq!(exemplar_now(), ids_of(&outer));
    let between = t.start_span("between", SpanKind::Internal, []);
    assert!(poll(fut.as_mut()).is_ready());
    let child = child_ids.borrow().clone();
    assert_eq!(
        *seen.borrow(),
        [inner_ids.clone(), child.clone(), child, inner_ids]
    );
    assert_eq!(exemplar_now(), ids_of(&between));
    t.finish_span(between, SpanStatus::Ok, None);

    // A scope is a barrier: a future that captured no context sees no span, even when it is
    // polled above one.
    let seen = RefCell::new(Vec::new());
    let outer_ids = ids_of(&outer);
    let outer = outer.detach();
    let fut = async {
        seen.borrow_mut().push(exemplar_now());
    }
    .in_current_context();
    let outer = outer.attach();
    let mut fut = std::pin::pin!(fut);
    assert!(poll(fut.as_mut()).is_ready());
    assert_eq!(*seen.borrow(), [None]);
    assert_eq!(exemplar_now(), outer_ids);
    // And one that captured the outer span sees it wherever it is polled.
    let seen = RefCell::new(Vec::new());
    let fut = async {
        seen.borrow_mut().push(exemplar_now());
    }
    .in_current_context();
    let unsampled = tracer(0.0);
    let u = unsampled.start_span("u", SpanKind::Internal, []);
    assert_eq!(exemplar_now(), None);
    let mut fut = std::pin::pin!(fut);
    assert!(poll(fut.as_mut()).is_ready());
    assert_eq!(*seen.borrow(), [outer_ids]);
    assert_eq!(exemplar_now(), None);
    unsampled.finish_span(u, SpanStatus::Ok, None);
    t.finish_span(outer, SpanStatus::Ok, None);
    assert_eq!(exemplar_now(), None);
}

/// A metric recorded at thread exit after the thread's context stack has closed carries no
/// exemplar, even with a span's frame still on the stack when it closed. The stack closes
/// after the thread's thread-local destructors (those still see the frame, as any code on the
/// thread did before), from a `pthread_key` destructor; the increment here comes from a key
/// destructor in the next round, which runs after it whatever the keys' order.
#[test]
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn no_exemplar_from_a_thread_whose_context_is_gone() {
    use std::ffi::c_void;
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    use std::sync::{Mutex, OnceLock};
    static LATE: Mutex<Option<Counter>> = Mutex::new(None);
    static KEY: OnceLock<libc::pthread_key_t> = OnceLock::new();
    static ROUND: AtomicUsize = AtomicUsize::new(0);
    /// Sets the key again in its first run, increments in its second.
    extern "C" fn late(_: *mut c_void) {
        if ROUND.fetch_add(1, Relaxed) == 0 {
            // SAFETY: as in the test body.
            unsafe { libc::pthread_setspecific(*KEY.get().unwrap(), std::ptr::dangling()) };
        } else if let Some(c) = LATE.lock().unwrap().take() {
            c.inc();
        }
    }
    let mut key = 0;
    // SAFETY: `key` is a valid place for the key; `late` does not unwind.
    assert_eq!(unsafe { libc::pthread_key_create(&mut key, Some(late)) }, 0);
    KEY.set(key).unwrap();
    // Shared, not leaked (the AddressSanitizer run checks for leaks); `join` returns once the
    // thread's destructors have run.
    let t = std::sync::Arc::new(tracer(1.0));
    let (registry, errors, _) = traced_registry();
    *LATE.lock().unwrap() = Some(errors);
    std::thread::spawn(move || {
        // SAFETY: `key` is live (never deleted); the value is a marker, never dereferenced.
        assert_eq!(
            unsafe { libc::pthread_setspecific(key, std::ptr::dangling::<c_void>()) },
            0
        );
        // A span left on the thread (safe, if unusual): its frame stays until the stack goes.
        std::mem::forget(t.start_span("forgotten", SpanKind::Internal, []));
    })
    .join()
    .unwrap();
    assert_eq!(ROUND.load(Relaxed), 2, "the key destructor ran twice");
    let text = om(&registry);
    assert!(
        text.contains("tool_errors_total{") && !text.contains("trace_id="),
        "the late increment is counted, with no exemplar:\n{text}"
    );
}

#[test]
fn an_explicit_exemplar_is_replaced_by_the_next_trace_based_one_even_in_the_same_span() {
    let t = tracer(1.0);
    let (registry, errors, latency) = traced_registry();
    let span = t.start_span("s", SpanKind::Internal, []);
    let trace_id = span.trace_id().to_string();
    errors.inc();
    latency.observe(0.5);
    errors.inc_with_exemplar(&[("request_id", "r-1")]).unwrap();
    latency
        .observe_with_exemplar(0.5, &[("request_id", "r-1")])
        .unwrap();
    assert!(om(&registry).contains("request_id=\"r-1\""));
    errors.inc();
    latency.observe(0.5);
    let text = om(&registry);
    assert!(
        !text.contains("request_id=") && text.matches(trace_id.as_str()).count() == 2,
        "{text}"
    );
    t.finish_span(span, SpanStatus::Ok, None);
}

/// A sampled remote parent is the current span for exemplars like a local one, whatever its
/// ids: among them the one whose span id is the low half of its trace id, which Zipkin (B3) and
/// Jaeger clients send for a root span (a 64-bit trace id, left-padded to W3C's 128 bits, and
/// the root's span id are one number). Its key (`span ^ trace_lo`) was 0, the hot path's "no
/// span", so a counter or histogram recorded in that context never kept an exemplar.
#[test]
fn a_remote_parent_whose_span_id_is_its_trace_ids_low_half_gets_exemplars() {
    remote_parents_are_current_for_exemplars(&[
        ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"),
        ("0000000000000000463ac35c9f6413ad", "463ac35c9f6413ad"),
        ("4bf92f3577b34da6a3ce929d0e0e4736", "a3ce929d0e0e4736"),
    ]);
}

/// Attaches each sampled remote parent `(trace id, span id)` in turn: it is the current span
/// for exemplars while attached, and none is after.
fn remote_parents_are_current_for_exemplars(parents: &[(&str, &str)]) {
    let t = tracer(1.0);
    for &(trace_id, span_id) in parents {
        let header = format!("00-{trace_id}-{span_id}-01");
        let remote = agentcore_telemetry::TraceContext::extract(|name| {
            (name == "traceparent").then_some(header.as_str())
        })
        .unwrap()
        .unwrap();
        let cx = t.attach(remote);
        assert_eq!(
            exemplar_now(),
            Some((trace_id.to_string(), span_id.to_string())),
            "traceparent {header}"
        );
        drop(cx);
        assert_eq!(exemplar_now(), None);
    }
}

/// A sampled remote parent whose span id and trace id's low half add up to 2^64 (a traceparent
/// anyone can send: `…ffffffffffffffff-0000000000000001`), and the Zipkin/Jaeger root with id
/// 2^63 (the one id whose doubled key wrapped to 0): their hot-path key (`span + trace_lo`,
/// wrapping) was 0, the key of "no span", so nothing recorded in their context kept an
/// exemplar.
#[test]
fn a_remote_parent_whose_ids_made_the_key_of_no_span_gets_exemplars() {
    remote_parents_are_current_for_exemplars(&[
        ("4bf92f3577b34da6ffffffffffffffff", "0000000000000001"),
        ("4bf92f3577b34da60000000000000001", "ffffffffffffffff"),
        ("00000000000000008000000000000000", "8000000000000000"),
    ]);
}

/// The value a racing trace-based writer records in span `(trace, span)`: derived from every
/// bit of both ids, so a copy mixing two records' ids and value is caught.
fn race_value(trace: u128, span: u64) -> u64 {
    (((trace >> 64) as u64 ^ trace as u64 ^ span) & ((1 << 40) - 1)) + 1
}

/// Scrapes race writers switching one record between its two kinds, with label sets of changing
/// lengths, and checks every exemplar a scrape shows, through the encoder, is one writer's whole
/// record: an explicit one's label is its value's digits repeated as the value says, a
/// trace-based one's value is [`race_value`] of its ids. (The module's stress test checks the
/// ids kind alone, the loom models every interleaving of a small case.) Mutation check, run
/// once and restored: with the reader's second `seq` comparison in `ExemplarCell::read`
/// removed, this fails in 0.7 s with "torn explicit exemplar: race_total 90951 #
/// {n=\"4264264264264264264} 425.0 …" (another writer's label, cut short, with this value).
#[test]
fn scrapes_racing_writers_of_both_kinds_see_whole_exemplars() {
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    use std::sync::Arc;
    use std::time::{Duration, Instant};
    let r = Registry::new();
    let c = r
        .register::<Counter>(
            "race_total",
            "Race.",
            &[],
            (),
            FamilyOptions::default().with_exemplars(Exemplars::TraceBased),
        )
        .unwrap()
        .get_or_create::<&str>(&[])
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let explicit = {
        let (c, stop) = (c.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Relaxed) {
                n += 1;
                let label = n.to_string().repeat(n as usize % 7 + 1);
                c.inc_by_with_exemplar(n, &[("n", &label)]).unwrap();
            }
        })
    };
    let traced = {
        let (c, stop) = (c.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let t = tracer(1.0);
            while !stop.load(Relaxed) {
                let span = t.start_span("race", SpanKind::Internal, []);
                let trace = u128::from_str_radix(&span.trace_id().to_string(), 16).unwrap();
                let id = u64::from_str_radix(&span.span_id().to_string(), 16).unwrap();
                c.inc_by(race_value(trace, id));
                t.finish_span(span, SpanStatus::Ok, None);
            }
        })
    };
    let (mut labels, mut ids) = (0u64, 0u64);
    let started = Instant::now();
    let mut text = String::new();
    while (started.elapsed() < Duration::from_millis(700) || labels < 500 || ids < 500)
        && started.elapsed() < Duration::from_secs(60)
    {
        text.clear();
        r.encode_openmetrics_into(&mut text);
        let line = text.lines().find(|l| l.starts_with("race_total ")).unwrap();
        let Some((_, exemplar)) = line.split_once(" # {") else {
            continue;
        };
        let (set, rest) = exemplar.split_once("} ").unwrap();
        let value: f64 = rest.split(' ').next().unwrap().parse().unwrap();
        if set.starts_with("n=") {
            let n = value as u64;
            let digits = n.to_string().repeat(n as usize % 7 + 1);
            assert_eq!(
                set,
                format!("n=\"{digits}\""),
                "torn explicit exemplar: {line}"
            );
            labels += 1;
        } else {
            let hex = |k: &str| {
                let rest = set.split(&format!("{k}=\"")).nth(1).unwrap();
                rest.split('"').next().unwrap().to_owned()
            };
            let trace = u128::from_str_radix(&hex("trace_id"), 16).unwrap();
            let span = u64::from_str_radix(&hex("span_id"), 16).unwrap();
            assert_eq!(
                value,
                race_value(trace, span) as f64,
                "torn trace-based exemplar: {line}"
            );
            ids += 1;
        }
    }
    stop.store(true, Relaxed);
    explicit.join().unwrap();
    traced.join().unwrap();
    assert!(
        labels >= 500 && ids >= 500,
        "in 60 s the scrapes checked only {labels} explicit and {ids} trace-based exemplars"
    );
}
