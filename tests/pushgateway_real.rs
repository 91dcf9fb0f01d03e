//! Pushing to the real Prometheus Pushgateway (Debian's `prometheus-pushgateway`, started by each
//! test on a free loopback port): push, push-add and delete of a grouping key, values
//! re-exposed by the gateway, hostile grouping-key values that round-trip, the gateway's
//! refusals surfaced as errors (one sent before a large body was read included), pushes the
//! gateway would take but not keep as sent refused before sending (a series with a grouping
//! label of another value, a family named as the gateway's own `push_time_seconds`), a push whose
//! registry callback outlasts its timeout, the periodic pusher's final push, and shutdown deadlines kept
//! against a gateway that never answers. Against fake gateways on loopback: a registry callback
//! that panics under the periodic pusher, a shutdown by its deadline while one blocks, a response cut short, and an answer sent before the
//! request was all in. And the harness itself: a test's gateway starts empty, whatever a
//! gateway run with Debian's defaults persisted on the machine.
#![cfg(feature = "pushgateway")]

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agentcore_telemetry::pushgateway::{
    PeriodicPusher, PushError, PushMode, PusherStats, Pushgateway, MIN_INTERVAL,
};
use agentcore_telemetry::{Buckets, Registry};
use support::exposition::{parse, Family};
use support::pushgateway::{require_pushgateway, PushgatewayServer};

/// The samples of `name` the gateway exposes, as (labels → value).
fn samples(families: &[Family], name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    families
        .iter()
        .flat_map(|f| f.samples.iter())
        .filter(|s| s.name == name)
        .map(|s| (s.labels.iter().cloned().collect(), s.value))
        .collect()
}

fn scrape(gw: &PushgatewayServer) -> Vec<Family> {
    let text = gw.metrics();
    parse(&text).unwrap_or_else(|e| panic!("the gateway's exposition: {e}\n{text}"))
}

/// The gateway's exposition once `done` holds of it, within 5 s. A DELETE is answered `202
/// Accepted` when the gateway has queued it, before its storage has removed the group
/// (Pushgateway's `handler/delete.go`): a scrape right after may still show the group.
fn scrape_until(gw: &PushgatewayServer, done: impl Fn(&[Family]) -> bool) -> Vec<Family> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let f = scrape(gw);
        if done(&f) {
            return f;
        }
        assert!(
            Instant::now() < deadline,
            "still not so after 5 s:\n{}",
            gw.metrics()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn job_registry(records: u64) -> Registry {
    let r = Registry::new();
    r.counter("batch_records_total", "Records processed.")
        .unwrap()
        .inc_by(records);
    r.gauge("batch_last_success_seconds", "Last success.")
        .unwrap()
        .set(1.7e9);
    let h = r
        .histogram(
            "batch_step_seconds",
            "Step latency.",
            Buckets::new(vec![0.5, 1.0]).unwrap(),
        )
        .unwrap();
    h.observe(0.75);
    r
}

/// Polls `pusher`'s stats every 10 ms until `done` holds; fails with `what` and the last stats
/// at `deadline`.
fn wait_for(
    pusher: &PeriodicPusher,
    deadline: Instant,
    what: &str,
    done: impl Fn(&PusherStats) -> bool,
) {
    loop {
        let stats = pusher.stats();
        if done(&stats) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {stats:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn push_push_add_and_delete_round_trip_through_the_gateway() {
    if !require_pushgateway("push_push_add_and_delete_round_trip_through_the_gateway") {
        return;
    }
    let gw = PushgatewayServer::start();
    let group = Pushgateway::new(&gw.url(), "nightly_batch")
        .unwrap()
        .with_grouping_key("instance", "worker-3")
        .unwrap();
    group.push(&job_registry(1200)).unwrap();
    let f = scrape(&gw);
    let records = samples(&f, "batch_records_total");
    assert_eq!(records.len(), 1, "{records:?}\n{}", gw.metrics());
    assert_eq!(records[0].0["job"], "nightly_batch");
    assert_eq!(records[0].0["instance"], "worker-3");
    assert_eq!(records[0].1, 1200.0);
    let bucket: Vec<_> = samples(&f, "batch_step_seconds_bucket")
        .into_iter()
        .filter(|(l, _)| l["le"] == "1")
        .collect();
    assert_eq!(bucket.len(), 1);
    assert_eq!(bucket[0].1, 1.0);
    assert_eq!(samples(&f, "push_time_seconds").len(), 1);

    // PUT replaces the whole group: a registry without the gauge removes it.
    let only_counter = Registry::new();
    only_counter
        .counter("batch_records_total", "Records processed.")
        .unwrap()
        .inc_by(5);
    group.push(&only_counter).unwrap();
    let f = scrape(&gw);
    assert_eq!(samples(&f, "batch_records_total")[0].1, 5.0);
    assert!(samples(&f, "batch_last_success_seconds").is_empty());

    // POST keeps metrics of other names.
    let gauge_only = Registry::new();
    gauge_only
        .gauge("batch_last_success_seconds", "Last success.")
        .unwrap()
        .set(42.0);
    group.push_add(&gauge_only).unwrap();
    let f = scrape(&gw);
    assert_eq!(samples(&f, "batch_records_total")[0].1, 5.0);
    assert_eq!(samples(&f, "batch_last_success_seconds")[0].1, 42.0);

    // DELETE removes the group (soon after its 202).
    group.delete().unwrap();
    scrape_until(&gw, |f| {
        samples(f, "batch_records_total").is_empty() && samples(f, "push_time_seconds").is_empty()
    });
}

#[test]
fn hostile_grouping_key_values_round_trip() {
    if !require_pushgateway("hostile_grouping_key_values_round_trip") {
        return;
    }
    let gw = PushgatewayServer::start();
    let values = [
        "/var/tmp",
        "a/b/c/",
        "",
        "with space",
        "per%cent+plus?query#frag",
        "é✓ unicode",
        "@base64",
        "quote\"back\\slash",
        "==",
        "-_.~",
    ];
    for (i, v) in values.iter().enumerate() {
        let r = Registry::new();
        r.counter("hostile_total", "Hostile keys.")
            .unwrap()
            .inc_by(i as u64 + 1);
        Pushgateway::new(&gw.url(), "job/with/slashes")
            .unwrap()
            .with_grouping_key("key", v)
            .unwrap()
            .push(&r)
            .unwrap_or_else(|e| panic!("{v:?}: {e}\n{}", gw.log()));
    }
    let f = scrape(&gw);
    let got: BTreeMap<String, f64> = samples(&f, "hostile_total")
        .into_iter()
        .map(|(l, v)| {
            assert_eq!(l["job"], "job/with/slashes");
            // An empty label value is the same as no label in Prometheus' data model: the
            // gateway exposes the group without `key`.
            (l.get("key").cloned().unwrap_or_default(), v)
        })
        .collect();
    let want: BTreeMap<String, f64> = values
        .iter()
        .enumerate()
        .map(|(i, v)| (v.to_string(), i as f64 + 1.0))
        .collect();
    assert_eq!(got, want);
    // And each one can be deleted by the same key.
    for v in values {
        Pushgateway::new(&gw.url(), "job/with/slashes")
            .unwrap()
            .with_grouping_key("key", v)
            .unwrap()
            .delete()
            .unwrap();
    }
    scrape_until(&gw, |f| samples(f, "hostile_total").is_empty());
}

#[test]
fn the_gateways_refusals_are_errors_with_its_explanation() {
    if !require_pushgateway("the_gateways_refusals_are_errors_with_its_explanation") {
        return;
    }
    let gw = PushgatewayServer::start();
    let as_gauge = Registry::new();
    as_gauge.gauge("clash", "A gauge.").unwrap().set(1.0);
    Pushgateway::new(&gw.url(), "a")
        .unwrap()
        .push(&as_gauge)
        .unwrap();
    // The same name as a counter in another group: the gateway's consistency check refuses it.
    let as_counter = Registry::new();
    as_counter.counter("clash", "A counter.").unwrap().inc();
    match Pushgateway::new(&gw.url(), "b").unwrap().push(&as_counter) {
        Err(PushError::Status { status: 400, body }) => {
            assert!(body.contains("clash"), "{body}")
        }
        other => panic!("expected a 400, got {other:?}"),
    }
}

#[test]
fn the_periodic_pusher_pushes_and_its_final_push_carries_the_last_values() {
    if !require_pushgateway("the_periodic_pusher_pushes_and_its_final_push_carries_the_last_values")
    {
        return;
    }
    let gw = PushgatewayServer::start();
    let registry = Registry::new();
    let done = registry.counter("steps_total", "Steps.").unwrap();
    let pusher = Pushgateway::new(&gw.url(), "periodic")
        .unwrap()
        .start_periodic(registry.clone(), Duration::from_millis(100), PushMode::Add)
        .unwrap();
    done.inc();
    let deadline = Instant::now() + Duration::from_secs(10);
    while samples(&scrape(&gw), "steps_total").is_empty() {
        assert!(Instant::now() < deadline, "no periodic push arrived");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The gateway stores a push before it answers, and the pusher counts it only once it has
    // read that answer: the scrape above can see the push before the pusher thread has run
    // on to count it. Wait for the count too (same deadline).
    wait_for(
        &pusher,
        deadline,
        "a push arrived but the pusher never counted it",
        |s| s.pushes >= 1,
    );
    done.inc_by(41);
    let started = Instant::now();
    pusher.shutdown(Duration::from_secs(5)).unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(samples(&scrape(&gw), "steps_total")[0].1, 42.0);
}

#[test]
fn deadlines_hold_against_a_gateway_that_never_answers() {
    // A listener that accepts connections (the kernel completes the handshake) and never
    // reads or answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let registry = job_registry(1);

    let started = Instant::now();
    let e = Pushgateway::new(&url, "j")
        .unwrap()
        .with_timeout(Duration::from_millis(300))
        .push(&registry)
        .unwrap_err();
    assert_eq!(e, PushError::Timeout);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_millis(1_500),
        "{took:?}"
    );

    // Shutdown of a pusher whose interval push is stuck: the final push gets the deadline and
    // shutdown returns by it.
    let pusher = Pushgateway::new(&url, "j")
        .unwrap()
        .with_timeout(Duration::from_secs(30))
        .start_periodic(
            registry.clone(),
            Duration::from_millis(10),
            PushMode::Replace,
        )
        .unwrap();
    std::thread::sleep(Duration::from_millis(100)); // an interval push is now in flight
    let started = Instant::now();
    assert_eq!(
        pusher.shutdown(Duration::from_millis(400)),
        Err(PushError::Timeout)
    );
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(1_000),
        "shutdown took {took:?}"
    );

    // Dropping a pusher also keeps its (timeout) deadline.
    let pusher = Pushgateway::new(&url, "j")
        .unwrap()
        .with_timeout(Duration::from_millis(300))
        .start_periodic(registry, Duration::from_secs(3600), PushMode::Replace)
        .unwrap();
    let started = Instant::now();
    drop(pusher);
    assert!(started.elapsed() < Duration::from_millis(1_000));

    // Nothing listening: an error at once, not a wait.
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let started = Instant::now();
    let e = Pushgateway::new(&format!("http://{closed}"), "j")
        .unwrap()
        .delete()
        .unwrap_err();
    assert!(matches!(e, PushError::Io(_)), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn dot_segment_grouping_key_values_round_trip() {
    if !require_pushgateway("dot_segment_grouping_key_values_round_trip") {
        return;
    }
    // `.` and `..` are unreserved characters, but a path segment made of them is removed by
    // dot-segment removal (RFC 3986 §5.2.4): sent as they are, the gateway answers 301.
    let gw = PushgatewayServer::start();
    let groups = [
        ("..", None),
        (".", None),
        ("j", Some("..")),
        ("j", Some(".")),
    ];
    let gateway = |job: &str, instance: Option<&str>| {
        let g = Pushgateway::new(&gw.url(), job).unwrap();
        match instance {
            Some(v) => g.with_grouping_key("instance", v).unwrap(),
            None => g,
        }
    };
    for (i, (job, instance)) in groups.iter().enumerate() {
        let r = Registry::new();
        r.counter("dots_total", "Dots.")
            .unwrap()
            .inc_by(i as u64 + 1);
        let g = gateway(job, *instance);
        g.push(&r)
            .unwrap_or_else(|e| panic!("{job:?} {instance:?} ({}): {e}", g.path()));
    }
    let got: BTreeMap<(String, String), f64> = samples(&scrape(&gw), "dots_total")
        .into_iter()
        .map(|(l, v)| {
            let instance = l.get("instance").cloned().unwrap_or_default();
            ((l["job"].clone(), instance), v)
        })
        .collect();
    let want: BTreeMap<(String, String), f64> = groups
        .iter()
        .enumerate()
        .map(|(i, (job, instance))| {
            let key = (job.to_string(), instance.unwrap_or_default().to_string());
            (key, i as f64 + 1.0)
        })
        .collect();
    assert_eq!(got, want);
    for (job, instance) in groups {
        gateway(job, instance).delete().unwrap();
    }
    scrape_until(&gw, |f| samples(f, "dots_total").is_empty());
}

/// The gateway gives every pushed metric the grouping key's labels. Under a grouping label `le`,
/// a histogram's buckets would carry `le` twice: Pushgateway 1.5.1 took such a push (`200`) and
/// exposed `h_bucket{...,le="5",le="1"}`, which fails every scrape of the gateway, every other
/// group's metrics with it. The registry refuses `le` on a histogram (and `quantile` on a
/// summary); the client refuses a push that would add them, sending nothing.
#[test]
fn a_grouping_label_a_histogram_or_summary_reserves_is_refused_before_sending() {
    if !require_pushgateway(
        "a_grouping_label_a_histogram_or_summary_reserves_is_refused_before_sending",
    ) {
        return;
    }
    let gw = PushgatewayServer::start();
    let with_le = Pushgateway::new(&gw.url(), "j")
        .unwrap()
        .with_grouping_key("le", "5")
        .unwrap();
    // `job_registry` holds a histogram.
    for r in [
        with_le.push(&job_registry(1)),
        with_le.push_add(&job_registry(1)),
    ] {
        assert!(
            matches!(&r, Err(PushError::InvalidGroupingKey(e)) if e.contains("\"le\"") && e.contains("batch_step_seconds")),
            "{r:?}\n{}",
            gw.metrics()
        );
    }
    let summaries = Registry::new();
    summaries
        .summary_family("s_seconds", "S.", &[], Default::default())
        .unwrap()
        .with_label_values::<&str>(&[])
        .unwrap()
        .observe(1.0);
    let r = Pushgateway::new(&gw.url(), "j")
        .unwrap()
        .with_grouping_key("quantile", "x")
        .unwrap()
        .push(&summaries);
    assert!(
        matches!(&r, Err(PushError::InvalidGroupingKey(e)) if e.contains("\"quantile\"") && e.contains("s_seconds")),
        "{r:?}"
    );
    // Nothing was stored: the gateway's exposition is still valid.
    let text = gw.metrics();
    assert!(!text.contains("batch_step_seconds"), "{text}");
    scrape(&gw);
    // Without a histogram (or summary) the same grouping key is fine.
    let counter_only = Registry::new();
    counter_only.counter("c_total", "C.").unwrap().inc();
    with_le.push(&counter_only).unwrap();
    assert_eq!(samples(&scrape(&gw), "c_total")[0].0["le"], "5");
}

/// The gateway gives every pushed series the grouping key's labels, overwriting one of the same
/// name (its README: labels in the body "_will be overwritten to match the labels defined by the
/// URL path!_"). Pushgateway 1.5.1 took a series labelled `instance="worker-1"` pushed under
/// `instance=batch-1` (`200`) and exposed it as `instance="batch-1"`: the push said `Ok`, and the
/// value the series carried was gone. Two series differing only there were refused as duplicates
/// of a series the client never sent. The client refuses such a push, naming the series and the
/// label, sending nothing (the `job` label too); a series carrying the grouping key's own value
/// loses nothing and is sent.
#[test]
fn a_series_carrying_a_grouping_label_with_another_value_is_refused_before_sending() {
    if !require_pushgateway(
        "a_series_carrying_a_grouping_label_with_another_value_is_refused_before_sending",
    ) {
        return;
    }
    let gw = PushgatewayServer::start();
    let gateway = Pushgateway::new(&gw.url(), "batch")
        .unwrap()
        .with_grouping_key("instance", "batch-1")
        .unwrap();
    let registry = Registry::new();
    let tasks = registry
        .counter_family("tasks_total", "Tasks.", &["kind", "instance"])
        .unwrap();
    tasks
        .with_label_values(&["a\\\"b", "batch-1"])
        .unwrap()
        .inc();
    tasks
        .with_label_values(&["plain", "worker-1"])
        .unwrap()
        .inc_by(7);
    for r in [gateway.push(&registry), gateway.push_add(&registry)] {
        assert!(
            matches!(&r, Err(PushError::InvalidGroupingKey(e))
                if e.contains("tasks_total") && e.contains("\"instance\"") && e.contains("worker-1")),
            "{r:?}; the gateway exposes {:?}",
            samples(&scrape(&gw), "tasks_total")
        );
    }
    let jobs = Registry::new();
    jobs.gauge_family("g", "G.", &["job"])
        .unwrap()
        .with_label_values(&["other"])
        .unwrap()
        .set(1.0);
    let r = gateway.push(&jobs);
    assert!(
        matches!(&r, Err(PushError::InvalidGroupingKey(e)) if e.contains("\"job\"") && e.contains("other")),
        "{r:?}; the gateway exposes {:?}",
        samples(&scrape(&gw), "g")
    );
    assert!(samples(&scrape(&gw), "tasks_total").is_empty());
    assert!(samples(&scrape(&gw), "g").is_empty());
    // The grouping key's own value (escapes elsewhere on the line notwithstanding) is sent.
    let same = Registry::new();
    same.counter_family("tasks_total", "Tasks.", &["kind", "instance", "job"])
        .unwrap()
        .with_label_values(&["a\\\"b,instance=\"x\"", "batch-1", "batch"])
        .unwrap()
        .inc();
    gateway.push(&same).unwrap();
    let got = samples(&scrape(&gw), "tasks_total");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0["kind"], "a\\\"b,instance=\"x\"");
    assert_eq!(got[0].0["instance"], "batch-1");
}

/// The gateway adds `push_time_seconds` and `push_failure_time_seconds` to every group, which
/// "will override any pushed metric by that name" (its README, "About timestamps"). Pushgateway
/// 1.5.1 answered a push of a registry gauge `push_time_seconds` set to 42 with `200`, so the push
/// said `Ok`, and exposed its own push time instead: the pushed value was gone. The client refuses
/// a registry with a family of either name, naming it, sending nothing.
#[test]
fn a_family_named_like_the_gateways_own_push_metrics_is_refused_before_sending() {
    if !require_pushgateway(
        "a_family_named_like_the_gateways_own_push_metrics_is_refused_before_sending",
    ) {
        return;
    }
    let gw = PushgatewayServer::start();
    let gateway = Pushgateway::new(&gw.url(), "reserved").unwrap();
    let gauge = Registry::new();
    gauge
        .gauge("push_time_seconds", "When the job pushed.")
        .unwrap()
        .set(42.0);
    gauge.counter("other_total", "Other.").unwrap().inc();
    let histogram = Registry::new();
    histogram
        .histogram(
            "push_failure_time_seconds",
            "H.",
            Buckets::new(vec![1.0]).unwrap(),
        )
        .unwrap()
        .observe(0.5);
    for (registry, name) in [
        (&gauge, "push_time_seconds"),
        (&histogram, "push_failure_time_seconds"),
    ] {
        for r in [gateway.push(registry), gateway.push_add(registry)] {
            assert!(
                matches!(&r, Err(PushError::ReservedName(e)) if e.contains(&format!("{name:?}"))),
                "{r:?}; the gateway exposes {:?}",
                samples(&scrape(&gw), name)
            );
        }
    }
    assert!(samples(&scrape(&gw), "other_total").is_empty());
    // `push_time_seconds_total` (another family) is not the gateway's.
    let other = Registry::new();
    other
        .counter("push_time_seconds_total", "C.")
        .unwrap()
        .inc_by(3);
    gateway.push(&other).unwrap();
    assert_eq!(samples(&scrape(&gw), "push_time_seconds_total")[0].1, 3.0);
}

/// `with_timeout` bounds the whole push, the registry's encoding included, but a registry
/// callback is not interrupted: one that blocks past the timeout delays the push's return to
/// its end, and the push then fails with `Timeout`, sending nothing (as `with_timeout` says).
#[test]
fn a_push_whose_registry_callback_outlasts_its_timeout_sends_nothing() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    listener.set_nonblocking(true).unwrap();
    let registry = Registry::new();
    registry
        .gauge_fn("slow", "Blocks.", || {
            std::thread::sleep(Duration::from_millis(300));
            1.0
        })
        .unwrap();
    let started = Instant::now();
    let r = Pushgateway::new(&url, "j")
        .unwrap()
        .with_timeout(Duration::from_millis(100))
        .push(&registry);
    let took = started.elapsed();
    assert_eq!(r, Err(PushError::Timeout));
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(listener.accept().is_err(), "a connection was made");
}

/// Pushes from many threads at once to a gateway that answers every one: each resolves and
/// connects on a connection thread of its own (`net::connect`), and the process-wide cap of 16
/// counted every such thread, its caller still waiting included. With 64 pushes at once, 14
/// failed at once with `Io("16 connection attempts given up on earlier are still running (a
/// resolver or network that does not answer); none started")`: no attempt had been given up
/// on, and the network was fine. The cap is on threads given up on (which outlive their
/// callers), as it says; every push here succeeds.
#[test]
fn concurrent_pushes_to_a_healthy_gateway_all_succeed() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            std::thread::spawn(move || {
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                while !String::from_utf8_lossy(&got).ends_with("up 1\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
            });
        }
    });
    let n = 64;
    let barrier = Arc::new(std::sync::Barrier::new(n));
    let pushes: Vec<_> = (0..n)
        .map(|i| {
            let (url, barrier) = (url.clone(), barrier.clone());
            std::thread::spawn(move || {
                let registry = Registry::new();
                registry.gauge("up", "U.").unwrap().set(1.0);
                let gateway = Pushgateway::new(&url, &format!("j{i}")).unwrap();
                barrier.wait();
                gateway.push(&registry)
            })
        })
        .collect();
    let failed: Vec<_> = pushes
        .into_iter()
        .map(|p| p.join().unwrap())
        .filter(Result::is_err)
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {n} pushes failed, the first: {:?}",
        failed.len(),
        failed[0]
    );
}

#[test]
fn a_panicking_registry_callback_is_a_failed_push_and_the_pusher_goes_on() {
    if !require_pushgateway("a_panicking_registry_callback_is_a_failed_push_and_the_pusher_goes_on")
    {
        return;
    }
    let gw = PushgatewayServer::start();
    let registry = Registry::new();
    let failing = Arc::new(AtomicBool::new(true));
    let f = failing.clone();
    registry
        .gauge_fn("flaky", "Panics while `failing` is set.", move || {
            assert!(!f.load(Ordering::Relaxed), "flaky gauge callback failed");
            7.0
        })
        .unwrap();
    let pusher = Pushgateway::new(&gw.url(), "flaky")
        .unwrap()
        .start_periodic(registry, Duration::from_millis(20), PushMode::Replace)
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while pusher.stats().failures < 2 {
        assert!(Instant::now() < deadline, "{:?}", pusher.stats());
        std::thread::sleep(Duration::from_millis(10));
    }
    let stats = pusher.stats();
    assert_eq!(stats.pushes, 0, "{stats:?}");
    let error = stats.last_error.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        error.contains("panic") && error.contains("encoding the registry"),
        "{error}"
    );
    assert!(error.contains("flaky gauge callback failed"), "{error}");
    // Nothing reached the gateway: a failed encoding sends nothing.
    assert!(samples(&scrape(&gw), "flaky").is_empty());
    // The callback recovers: the thread is still there and pushes again.
    failing.store(false, Ordering::Relaxed);
    while pusher.stats().pushes == 0 {
        assert!(Instant::now() < deadline, "{:?}", pusher.stats());
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(samples(&scrape(&gw), "flaky")[0].1, 7.0);
    pusher.shutdown(Duration::from_secs(5)).unwrap();
}

/// A fake gateway: answers every request with `reply` (after reading the request head and its
/// `Content-Length` body), then closes. Runs until the test process ends.
fn fake_gateway(reply: &'static [u8]) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map(|v| v.trim().parse().unwrap())
                        .unwrap_or(0);
                    if got.len() >= end + 4 + len {
                        break;
                    }
                }
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let _ = conn.write_all(reply);
        }
    });
    url
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

/// A registry whose encoding always panics (a `gauge_fn` callback).
fn panicking_registry() -> Registry {
    let r = Registry::new();
    r.gauge_fn("boom", "Panics.", || panic!("gauge callback failed"))
        .unwrap();
    r
}

#[test]
fn every_push_whose_encoding_panics_is_counted_as_a_failure() {
    let pusher = Pushgateway::new(&fake_gateway(OK), "j")
        .unwrap()
        .start_periodic(
            panicking_registry(),
            Duration::from_millis(20),
            PushMode::Replace,
        )
        .unwrap();
    // Two failed pushes at a 20 ms interval; waited for (a fixed 500 ms sleep stood here,
    // which assumed the pusher thread got through two within it), up to a minute.
    let deadline = Instant::now() + Duration::from_secs(60);
    wait_for(&pusher, deadline, "the pusher stopped pushing", |s| {
        s.failures >= 2
    });
    // Invariant 3 of src/pushgateway/pusher.rs: every push is counted, with the last error.
    let stats = pusher.stats();
    assert_eq!(stats.pushes, 0, "{stats:?}");
    assert!(stats.failures >= 2, "the pusher stopped pushing: {stats:?}");
    let error = stats.last_error.as_ref().map(|e| e.to_string());
    assert!(
        error.is_some_and(|e| e.contains("panic") && e.contains("gauge callback failed")),
        "{stats:?}"
    );
    let started = Instant::now();
    drop(pusher);
    assert!(started.elapsed() < Duration::from_secs(1));
}

/// An interval of zero would push back to back; it is raised to `MIN_INTERVAL`. Push `k` is
/// never before `k` intervals from the start (no catch-up bursts), so in `t` there are at most
/// `t / MIN_INTERVAL` pushes, however fast the gateway answers (a loaded machine only makes
/// fewer).
#[test]
fn a_zero_interval_is_raised_to_the_minimum() {
    let started = Instant::now();
    let pusher = Pushgateway::new(&fake_gateway(OK), "j")
        .unwrap()
        .start_periodic(Registry::new(), Duration::ZERO, PushMode::Replace)
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let stats = pusher.stats();
    let bound = started.elapsed().as_millis() / MIN_INTERVAL.as_millis();
    assert!(
        u128::from(stats.pushes + stats.failures) <= bound,
        "{stats:?} in more than {bound} intervals"
    );
    pusher.shutdown(Duration::from_secs(5)).unwrap();
}

#[test]
fn shutdown_reports_a_panicking_final_push_at_once() {
    let pusher = Pushgateway::new(&fake_gateway(OK), "j")
        .unwrap()
        .start_periodic(
            panicking_registry(),
            Duration::from_millis(20),
            PushMode::Replace,
        )
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let result = pusher.shutdown(Duration::from_secs(3));
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "shutdown took {took:?}: {result:?}"
    );
    let error = result.as_ref().err().map(|e| e.to_string());
    assert!(
        error.is_some_and(|e| e.contains("panic") && e.contains("gauge callback failed")),
        "{result:?}"
    );
}

#[test]
fn shutdown_without_a_limit_returns_when_the_final_push_panics() {
    let pusher = Pushgateway::new(&fake_gateway(OK), "j")
        .unwrap()
        .start_periodic(
            panicking_registry(),
            Duration::from_millis(20),
            PushMode::Replace,
        )
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(pusher.shutdown(Duration::MAX));
    });
    let Ok(result) = rx.recv_timeout(Duration::from_secs(5)) else {
        panic!("shutdown(Duration::MAX) still blocked after 5 s");
    };
    let error = result.as_ref().err().map(|e| e.to_string());
    assert!(
        error.is_some_and(|e| e.contains("gauge callback failed")),
        "{result:?}"
    );
}

#[test]
fn a_response_cut_short_is_an_error_not_a_successful_push() {
    // RFC 9112 §6.3: a message closed before its Content-Length octets arrived is incomplete.
    let url = fake_gateway(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly-part");
    let r = Registry::new();
    r.counter("x_total", "X.").unwrap().inc();
    let result = Pushgateway::new(&url, "j")
        .unwrap()
        .with_timeout(Duration::from_secs(2))
        .push(&r);
    match result {
        Err(PushError::Io(e)) => assert!(e.contains("incomplete"), "{e}"),
        other => panic!("a 200 cut at 9 of 100 body bytes: {other:?}"),
    }
    // A complete one with a body is still a success.
    let url = fake_gateway(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nfine");
    Pushgateway::new(&url, "j").unwrap().push(&r).unwrap();
}

/// A registry whose callback owns this: dropping the registry (which the pusher thread does
/// after its final push) blocks for 3 s.
struct SlowDrop;

impl Drop for SlowDrop {
    fn drop(&mut self) {
        std::thread::sleep(Duration::from_secs(3));
    }
}

#[test]
fn shutdown_returns_by_its_timeout_while_the_registry_drops_slowly() {
    // `shutdown(timeout)` returns by `timeout` "whatever the gateway (or the registry's
    // callbacks) do". It used to join the thread after the final push, and the thread then
    // drops the registry: 3 s for a 500 ms shutdown (found by a review).
    let registry = Registry::new();
    let slow = SlowDrop;
    registry
        .gauge_fn("g", "h", move || {
            let _ = &slow;
            1.0
        })
        .unwrap();
    let pusher = Pushgateway::new(&fake_gateway(OK), "j")
        .unwrap()
        .start_periodic(registry, Duration::from_secs(3600), PushMode::Replace)
        .unwrap();
    let started = Instant::now();
    let result = pusher.shutdown(Duration::from_millis(500));
    let took = started.elapsed();
    assert_eq!(result, Ok(()));
    assert!(
        took < Duration::from_millis(1500),
        "shutdown(500 ms) took {took:?}"
    );
}

#[test]
fn shutdown_returns_by_its_timeout_while_a_registry_callback_blocks() {
    // The other half of "whatever the gateway (or the registry's callbacks) do": the final
    // push's encode runs a user callback that does not return until released (the test
    // releases it once shutdown has returned; it gives up on its own after 30 s).
    let released = Arc::new(AtomicBool::new(false));
    let registry = Registry::new();
    let flag = Arc::clone(&released);
    registry
        .gauge_fn("g", "h", move || {
            let until = Instant::now() + Duration::from_secs(30);
            while !flag.load(Ordering::Acquire) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
            1.0
        })
        .unwrap();
    let pusher = Pushgateway::new(&fake_gateway(OK), "j")
        .unwrap()
        .start_periodic(registry, Duration::from_secs(3600), PushMode::Replace)
        .unwrap();
    let started = Instant::now();
    let result = pusher.shutdown(Duration::from_millis(300));
    let took = started.elapsed();
    released.store(true, Ordering::Release);
    assert_eq!(result, Err(PushError::Timeout));
    assert!(
        took < Duration::from_secs(3),
        "shutdown(300 ms) took {took:?}"
    );
}

#[test]
fn a_refusal_sent_before_the_body_is_read_is_reported_not_a_broken_pipe() {
    if !require_pushgateway("a_refusal_sent_before_the_body_is_read_is_reported_not_a_broken_pipe")
    {
        return;
    }
    // A gateway URL with a wrong path prefix and a big registry: the gateway answers 404 as
    // soon as it has the request head, and closes the connection without reading a body this
    // large (Go's server drains at most 256 KiB). The client, still sending, sees the
    // connection reset; the gateway's answer is already there to be read (RFC 9112 §9.5: a
    // client sending a body should look for an error response while it sends).
    let gw = PushgatewayServer::start();
    let registry = Registry::new();
    registry
        .gauge("big", &"h".repeat(32 << 20))
        .unwrap()
        .set(1.0);
    let result = Pushgateway::new(&format!("{}/wrong-prefix", gw.url()), "j")
        .unwrap()
        .with_timeout(Duration::from_secs(5))
        .push(&registry);
    match result {
        Err(PushError::Status { status: 404, body }) => {
            assert!(body.contains("not found"), "{body}")
        }
        other => panic!("expected the gateway's 404, got {other:?}"),
    }
}

/// A fake gateway that reads the request head only, answers `reply` and closes: unread body
/// bytes make the kernel reset the connection under the sending client.
fn answers_before_the_body(reply: &'static [u8]) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let _ = conn.write_all(reply);
        }
    });
    url
}

#[test]
fn an_early_answer_is_the_result_but_never_a_success_for_a_body_not_sent() {
    let registry = Registry::new();
    registry
        .gauge("big", &"h".repeat(32 << 20))
        .unwrap()
        .set(1.0);
    // A proxy's `413` before the body: the status, with its explanation.
    let url = answers_before_the_body(
        b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 9\r\n\r\ntoo large",
    );
    let result = Pushgateway::new(&url, "j")
        .unwrap()
        .with_timeout(Duration::from_secs(5))
        .push(&registry);
    assert_eq!(
        result,
        Err(PushError::Status {
            status: 413,
            body: "too large".into()
        })
    );
    // A `200` before the body is in: the gateway cannot have taken the push; the broken
    // connection is the error.
    let url = answers_before_the_body(OK);
    let result = Pushgateway::new(&url, "j")
        .unwrap()
        .with_timeout(Duration::from_secs(5))
        .push(&registry);
    assert!(matches!(result, Err(PushError::Io(_))), "{result:?}");
}

#[test]
fn a_long_refusal_comes_back_without_its_chunked_framing() {
    if !require_pushgateway("a_long_refusal_comes_back_without_its_chunked_framing") {
        return;
    }
    // The gateway's explanation of a type clash quotes the series; past 2 KiB, Go's server
    // sends it chunked (`Transfer-Encoding: chunked`, no `Content-Length`).
    let gw = PushgatewayServer::start();
    let value = "v".repeat(3000);
    let as_gauge = Registry::new();
    as_gauge
        .gauge_family("clash", "A gauge.", &["l"])
        .unwrap()
        .with_label_values(&[&value])
        .unwrap()
        .set(1.0);
    Pushgateway::new(&gw.url(), "a")
        .unwrap()
        .push(&as_gauge)
        .unwrap();
    let as_counter = Registry::new();
    as_counter
        .counter_family("clash", "A counter.", &["l"])
        .unwrap()
        .with_label_values(&[&value])
        .unwrap()
        .inc();
    match Pushgateway::new(&gw.url(), "b").unwrap().push(&as_counter) {
        Err(PushError::Status { status: 400, body }) => assert!(
            body.starts_with("pushed metrics are invalid or inconsistent"),
            "{body}"
        ),
        other => panic!("expected a 400, got {other:?}"),
    }
}

#[test]
fn a_content_length_near_the_largest_number_is_an_incomplete_response_not_a_panic() {
    // A `Content-Length` that parses as a `usize` but is within a few bytes of its largest
    // value: the client added it to where the body starts and overflowed (a panic where
    // overflow is checked, as in tests; elsewhere the sum wrapped round to a small number and
    // a response with no body at all passed as complete). It is a body far longer than the
    // 4 bytes sent before the gateway closes: incomplete, like any other cut short.
    for length in ["18446744073709551615", "18446744073709551600"] {
        let reply = format!("HTTP/1.1 200 OK\r\nContent-Length: {length}\r\n\r\nbody");
        let url = fake_gateway(Box::leak(reply.into_bytes().into_boxed_slice()));
        let r = Registry::new();
        r.counter("x_total", "X.").unwrap().inc();
        let result = std::thread::spawn(move || {
            Pushgateway::new(&url, "j")
                .unwrap()
                .with_timeout(Duration::from_secs(5))
                .push(&r)
        })
        .join()
        .unwrap_or_else(|_| panic!("push panicked on Content-Length: {length}"));
        match result {
            Err(PushError::Io(e)) => assert!(e.contains("incomplete"), "{e}"),
            other => panic!("Content-Length: {length} with a 4-byte body: {other:?}"),
        }
    }
}

#[test]
fn a_refusals_chunk_size_near_the_largest_number_is_its_start_not_a_panic() {
    // A refusal whose chunked body declares a first chunk of `fffffffffffffffe` bytes (within
    // two of `usize::MAX`), then more than the client reads (64 KiB): the status is in, so the
    // push is that refusal, with the start of the chunk as its explanation. Reading the chunk's
    // data for the message added the chunk's CRLF to its size and overflowed: a panic out of
    // `push` where overflow is checked (as in tests), and under a periodic pusher the end of
    // its thread.
    let mut reply =
        b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffe\r\n"
            .to_vec();
    reply.extend_from_slice(&[b'x'; 70 << 10]);
    let url = fake_gateway(Box::leak(reply.into_boxed_slice()));
    let r = Registry::new();
    r.counter("x_total", "X.").unwrap().inc();
    let (gateway, registry) = (url.clone(), r.clone());
    let result = std::thread::spawn(move || {
        Pushgateway::new(&gateway, "j")
            .unwrap()
            .with_timeout(Duration::from_secs(5))
            .push(&registry)
    })
    .join()
    .unwrap_or_else(|_| panic!("push panicked on a chunk size of usize::MAX - 1"));
    match result {
        Err(PushError::Status { status: 400, body }) => {
            assert!(
                !body.is_empty() && body.bytes().all(|b| b == b'x'),
                "{body}"
            )
        }
        other => panic!("expected the 400, got {other:?}"),
    }
    // A periodic pusher meeting it goes on pushing, every push a failure (10 s for three
    // 20 ms intervals: room for a loaded machine).
    let pusher = Pushgateway::new(&url, "j")
        .unwrap()
        .start_periodic(r, Duration::from_millis(20), PushMode::Replace)
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    wait_for(&pusher, deadline, "the pusher stopped", |s| s.failures >= 3);
    let stats = pusher.stats();
    assert!(
        matches!(
            stats.last_error,
            Some(PushError::Status { status: 400, .. })
        ),
        "{stats:?}"
    );
}

/// What tells a re-run of this binary that it is the child of a test in namespaces of its own.
#[cfg(target_os = "linux")]
const CHILD: &str = "AGENTCORE_PUSHGATEWAY_REAL_CHILD";

#[cfg(target_os = "linux")]
#[test]
fn a_test_gateway_starts_empty_whatever_another_gateway_persisted() {
    use support::namespaces::{in_namespaces, is_child, run};
    const NAME: &str = "a_test_gateway_starts_empty_whatever_another_gateway_persisted";
    if !require_pushgateway(NAME) {
        return;
    }
    if !is_child(CHILD) {
        in_namespaces(CHILD, NAME, false);
        return;
    }
    // Debian's gateway persists its groups to `/var/lib/prometheus/pushgateway.data` by
    // default, and loads them when it starts: a gateway run with the defaults (the package's
    // service, or one started by hand) left its groups there, and every test gateway began
    // with them (seen in a review: a hand-started gateway's groups in a test's scrape). Here,
    // in a mount namespace of its own, the default directory is a fresh one.
    if !std::path::Path::new("/var/lib/prometheus").is_dir() {
        eprintln!("no /var/lib/prometheus: the binary's default persistence cannot apply; done");
        return;
    }
    run("ip", &["link", "set", "lo", "up"]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    run(
        "mount",
        &[
            "--bind",
            dir.path().to_str().unwrap(),
            "/var/lib/prometheus",
        ],
    )
    .unwrap();
    // A gateway with the package's defaults: a group pushed, then a graceful stop (SIGTERM),
    // on which it persists.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut seed = std::process::Command::new(support::pushgateway::BINARY)
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let registry = Registry::new();
    registry.counter("seeded_total", "Seeded.").unwrap().inc();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Pushgateway::new(&url, "persisted")
        .unwrap()
        .push(&registry)
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "the seed gateway never took a push"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // A push is answered once the gateway has queued it, before its storage holds the group
    // (as a DELETE is: see `scrape_until`); a SIGTERM in between could stop it with nothing to
    // persist (seen once in `.ci/test` on a loaded machine: "the seed gateway persisted
    // nothing"). Wait until it exposes the group.
    while !ureq::get(&format!("{url}/metrics"))
        .call()
        .ok()
        .and_then(|r| r.into_string().ok())
        .is_some_and(|text| text.contains("job=\"persisted\""))
    {
        assert!(
            Instant::now() < deadline,
            "the seed gateway never exposed the group pushed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // The gateway installs its SIGTERM handler in a goroutine it starts at start-up, which
    // nothing outside it can observe; a SIGTERM before that ends it by the default action,
    // without persisting. Pushes started as soon as it listened, so give it a moment.
    std::thread::sleep(Duration::from_millis(200));
    extern "C" {
        fn kill(pid: i32, signal: i32) -> i32;
    }
    const SIGTERM: i32 = 15;
    let pid = i32::try_from(seed.id()).unwrap();
    // SAFETY: `kill` only sends a signal; `pid` is our child's, not yet waited for, so the id
    // is still its own.
    assert_eq!(
        unsafe { kill(pid, SIGTERM) },
        0,
        "SIGTERM to the seed gateway"
    );
    seed.wait().unwrap();
    assert!(
        dir.path().join("pushgateway.data").exists(),
        "the seed gateway persisted nothing: the scenario did not happen"
    );
    let gw = PushgatewayServer::start();
    let groups = samples(&scrape(&gw), "push_time_seconds");
    assert!(
        groups.is_empty(),
        "a test gateway started with another's groups: {groups:?}"
    );
    eprintln!("done");
}

#[test]
fn a_connection_closed_before_the_response_head_is_broken_not_an_invalid_response() {
    // `PushError::Io` is "the connection broke before a full response arrived" and
    // `InvalidResponse` "the response was not HTTP". A gateway (or a proxy with no gateway
    // behind it) that takes the request and closes without a word, or in the middle of its
    // head, sent nothing that is not HTTP: the connection broke. It used to be
    // `InvalidResponse("no complete response head")`, which a caller deciding whether to retry
    // reads as a server that does not speak HTTP (found by a review).
    let r = Registry::new();
    r.counter("x_total", "X.").unwrap().inc();
    for (reply, why) in [
        (&b""[..], "closed the connection without answering"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Le",
            "in the middle of the response head",
        ),
        (
            b"HTTP/1.1 100 Continue\r\n\r\n",
            "in the middle of the response head",
        ),
    ] {
        let result = Pushgateway::new(&fake_gateway(reply), "j")
            .unwrap()
            .with_timeout(Duration::from_secs(5))
            .push(&r);
        match result {
            Err(PushError::Io(e)) => assert!(e.contains(why), "{e}"),
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(reply)),
        }
    }
}

/// A proxy in front of the gateway at `upstream` that relays every connection at once but the
/// one accepted after `hold` is set, which the network delays: with `stall_sending`, it reads
/// that request's head and 64 KiB of its body, then nothing for a second (the sender blocks
/// once the buffers are full), then the rest, up to the request's end or the sender's close;
/// without, it reads the request whole and holds it a second. Then it relays what came, cut
/// after its last line feed if the request ended early (the gateway receiving the bytes sent
/// before the sender closed, ending at a line's end), and sends the gateway's status line on
/// `relayed`. `held` is signalled once the delay starts.
fn late_proxy(
    upstream: String,
    stall_sending: bool,
) -> (
    String,
    Arc<AtomicBool>,
    std::sync::mpsc::Receiver<()>,
    std::sync::mpsc::Receiver<String>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let hold = Arc::new(AtomicBool::new(false));
    let (held_tx, held) = std::sync::mpsc::channel::<()>();
    let (relayed_tx, relayed) = std::sync::mpsc::channel::<String>();
    let proxy_hold = hold.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let delayed = proxy_hold.swap(false, Ordering::SeqCst);
            let upstream = upstream.clone();
            let (held_tx, relayed_tx) = (held_tx.clone(), relayed_tx.clone());
            std::thread::spawn(move || {
                let mut request = Vec::new();
                if delayed && stall_sending {
                    let mut buf = vec![0u8; 64 << 10];
                    conn.read_exact(&mut buf).unwrap();
                    request.extend_from_slice(&buf);
                    let _ = held_tx.send(());
                    std::thread::sleep(Duration::from_secs(1));
                    let mut rest = read_request_after(&mut conn, &request);
                    request.append(&mut rest);
                } else {
                    request = read_request_after(&mut conn, &[]);
                    if delayed {
                        let _ = held_tx.send(());
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }
                let mut gateway = std::net::TcpStream::connect(&upstream).unwrap();
                if request_complete(&request) {
                    gateway.write_all(&request).unwrap();
                } else {
                    let end = request.iter().rposition(|&b| b == b'\n').unwrap() + 1;
                    gateway.write_all(&request[..end]).unwrap();
                    gateway.shutdown(std::net::Shutdown::Write).unwrap();
                }
                let mut response = Vec::new();
                let _ = gateway.read_to_end(&mut response);
                let _ = conn.write_all(&response); // the pusher may have gone
                if delayed {
                    let status = String::from_utf8_lossy(&response);
                    let _ = relayed_tx.send(status.lines().next().unwrap_or("").into());
                }
            });
        }
    });
    (url, hold, held, relayed)
}

/// Whether `got` holds a whole request (head and `Content-Length` body).
fn request_complete(got: &[u8]) -> bool {
    let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0);
    got.len() >= end + 4 + len
}

/// Reads from `conn` what follows `got`, up to the request's end or the connection's.
fn read_request_after(conn: &mut std::net::TcpStream, got: &[u8]) -> Vec<u8> {
    let mut all = got.to_vec();
    let mut buf = [0u8; 64 << 10];
    while !request_complete(&all) {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => all.extend_from_slice(&buf[..n]),
        }
    }
    all.split_off(got.len())
}

/// A pusher's interval push the network delivers late: the pusher had written it whole (it is
/// in the kernel's buffers, or on the wire), and its shutdown came while it waited for the
/// answer. The gateway takes a request whenever it arrives, and the pusher sent its final push
/// beside it on a connection of its own: the final push was stored first (`200`, `shutdown` said
/// `Ok`), then the late push with the older value over it (Pushgateway 1.5.1: `steps_total` 1,
/// not 42, after a shutdown that said `Ok`). The README guarantees the order of requests
/// "successfully sent" only. A request the gateway has begun to receive is now finished and
/// answered (by the shutdown's deadline) before the final push goes.
#[test]
fn a_late_interval_push_does_not_overwrite_the_final_push() {
    if !require_pushgateway("a_late_interval_push_does_not_overwrite_the_final_push") {
        return;
    }
    let gw = PushgatewayServer::start();
    let upstream = gw.url().trim_start_matches("http://").to_string();
    let (url, hold, held, relayed) = late_proxy(upstream, false);
    let registry = Registry::new();
    let steps = registry.counter("steps_total", "Steps.").unwrap();
    let pusher = Pushgateway::new(&url, "late")
        .unwrap()
        .with_timeout(Duration::from_secs(30))
        .start_periodic(
            registry.clone(),
            Duration::from_millis(100),
            PushMode::Replace,
        )
        .unwrap();
    steps.inc();
    let deadline = Instant::now() + Duration::from_secs(10);
    wait_for(&pusher, deadline, "no interval push got through", |s| {
        s.pushes >= 1
    });
    hold.store(true, Ordering::SeqCst);
    held.recv_timeout(Duration::from_secs(10))
        .expect("no interval push was held");
    // The held push carries 1; the final push 42.
    steps.inc_by(41);
    assert_eq!(pusher.shutdown(Duration::from_secs(10)), Ok(()));
    let late = relayed
        .recv_timeout(Duration::from_secs(10))
        .expect("the held push never reached the gateway");
    assert!(late.contains(" 200 "), "{late}");
    let values = samples(&scrape(&gw), "steps_total");
    assert_eq!(
        values.iter().map(|(_, v)| *v).collect::<Vec<_>>(),
        [42.0],
        "the gateway keeps the value of a push older than the final one, which shutdown \
         reported stored"
    );
}

/// As above, with the interval push's shutdown coming while it is still sending: it was
/// abandoned, and the network delivered what it had sent after the final push. Pushgateway 1.5.1
/// takes a `PUT` whose body ends early at a line's end as a whole push (`200`): the group, after
/// a shutdown that said `Ok`, held the first lines of the older push (part of `big`, no
/// `steps_total`), not the final push.
#[test]
fn an_interval_push_cut_while_sending_does_not_overwrite_the_final_push() {
    if !require_pushgateway("an_interval_push_cut_while_sending_does_not_overwrite_the_final_push")
    {
        return;
    }
    // 16,000 series (a family holds at most 16,384) of 1 KB: more than the socket buffers hold.
    const SERIES: usize = 16_000;
    let gw = PushgatewayServer::start();
    let upstream = gw.url().trim_start_matches("http://").to_string();
    let (url, hold, held, relayed) = late_proxy(upstream, true);
    let registry = Registry::new();
    let big = registry.gauge_family("big", "Big.", &["i"]).unwrap();
    for i in 0..SERIES {
        big.with_label_values(&[format!("{i:0>1000}")])
            .unwrap()
            .set(1.0);
    }
    let steps = registry.counter("steps_total", "Steps.").unwrap();
    steps.inc();
    hold.store(true, Ordering::SeqCst); // the first push is the late one
    let pusher = Pushgateway::new(&url, "late")
        .unwrap()
        .with_timeout(Duration::from_secs(60))
        .start_periodic(
            registry.clone(),
            Duration::from_millis(100),
            PushMode::Replace,
        )
        .unwrap();
    held.recv_timeout(Duration::from_secs(30))
        .expect("no interval push was held");
    steps.inc_by(41);
    assert_eq!(pusher.shutdown(Duration::from_secs(30)), Ok(()));
    let late = relayed
        .recv_timeout(Duration::from_secs(30))
        .expect("the held push never reached the gateway");
    assert!(late.contains(" 200 "), "{late}");
    let mut exposition = String::new(); // past what `gw.metrics()` takes (10 MB)
    ureq::get(&format!("{}/metrics", gw.url()))
        .call()
        .unwrap()
        .into_reader()
        .read_to_string(&mut exposition)
        .unwrap();
    let steps_lines: Vec<&str> = exposition
        .lines()
        .filter(|l| l.starts_with("steps_total"))
        .collect();
    let big_lines = exposition.lines().filter(|l| l.starts_with("big{")).count();
    assert_eq!(
        (steps_lines, big_lines),
        (vec![r#"steps_total{instance="",job="late"} 42"#], SERIES),
        "the gateway keeps part of a push older than the final one, which shutdown reported \
         stored"
    );
}
