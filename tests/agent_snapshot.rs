//! Snapshot JSON shape and round-trip (non-finite values too), history bound and order, the
//! global instance and the system monitor.

use agentcore_telemetry::agent::MetricType;
use agentcore_telemetry::{
    get_metrics_collector, AgentPhilosophy, CollectorConfig, MetricsCollector,
};

#[cfg(feature = "serde")]
#[test]
fn snapshot_json_round_trip() {
    use agentcore_telemetry::{agent::SampleValue, MetricsSnapshot};

    let c = MetricsCollector::new();
    for _ in 0..15 {
        c.record_agent_created(AgentPhilosophy::React, "initializing");
    }
    c.update_system_resources(65.5, 72.3, 4096.0);
    c.record_tool_execution("calculator", 0.25, "success", None);
    c.record_gc_collection(25.5);
    let s = c
        .create_custom_metric("rtt", MetricType::summary(), "RTT", &[])
        .unwrap();
    s.labels::<&str>(&[]).unwrap().observe(1.0);
    c.set_runtime_info([("version", "1.0.0")]);
    let snapshot = c.snapshot_metrics();

    let json = serde_json::to_string(&snapshot).unwrap();
    // Parsed generically: the specification's shape is there, every family beside its
    // sections in `metrics.families`.
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["metrics"]["agents"]["active"], 15.0);
    assert_eq!(v["metrics"]["system"]["cpu_percent"], 65.5);
    assert_eq!(v["metrics"]["system"]["memory_percent"], 72.3);
    assert_eq!(v["metrics"]["system"]["memory_available_mb"], 4096.0);
    assert_eq!(v["timestamp"], snapshot.timestamp.as_str());
    assert_eq!(v["unix_seconds"], snapshot.unix_seconds);
    let families = v["metrics"]["families"].as_array().unwrap();
    let gc = families
        .iter()
        .find(|f| f["name"] == "agentcore_memory_released_mb_total")
        .unwrap();
    assert_eq!(gc["type"], "counter");
    assert_eq!(gc["series"][0]["value"], 25.5);
    let tools = families
        .iter()
        .find(|f| f["name"] == "agentcore_tool_execution_seconds")
        .unwrap();
    assert_eq!(tools["series"][0]["labels"]["tool_id"], "calculator");
    assert_eq!(tools["series"][0]["value"]["count"], 1);
    assert_eq!(
        tools["series"][0]["value"]["buckets"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()["le"],
        "+Inf"
    );

    // Parsed back into the typed snapshot: equal to the original.
    let back: MetricsSnapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(back, snapshot);
    assert_eq!(
        back.value(
            "runtime_info",
            &[
                ("version", "1.0.0"),
                ("environment", "unknown"),
                ("platform", "unknown")
            ]
        ),
        Some(1.0)
    );
    match &back.series("rtt", &[]).unwrap().value {
        SampleValue::Summary { count, sum, .. } => assert_eq!((*count, *sum), (1, 1.0)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn history_ring_stays_bounded() {
    let c = MetricsCollector::with_config(CollectorConfig {
        history_capacity: 3,
        ..CollectorConfig::default()
    });
    for _ in 0..50 {
        c.snapshot_metrics();
    }
    assert_eq!(c.history_len(), 3);
    assert_eq!(c.get_metric_history(None, None).len(), 3);
    let none = MetricsCollector::with_config(CollectorConfig {
        history_capacity: 0,
        ..CollectorConfig::default()
    });
    none.snapshot_metrics();
    assert_eq!(none.history_len(), 0);
    // Default capacity.
    let d = MetricsCollector::new();
    for _ in 0..120 {
        d.snapshot_metrics();
    }
    assert_eq!(d.history_len(), 100);
    // Oldest first, timestamps non-decreasing.
    let h = d.get_metric_history(None, None);
    assert!(h.windows(2).all(|w| w[0].unix_seconds <= w[1].unix_seconds));
}

#[test]
fn global_instance_is_the_same_pointer_twice() {
    let a = get_metrics_collector();
    let b = std::thread::spawn(|| get_metrics_collector() as *const MetricsCollector as usize)
        .join()
        .unwrap();
    assert_eq!(a as *const MetricsCollector as usize, b);
    assert!(std::ptr::eq(a, get_metrics_collector()));
    a.record_error("GlobalTest", "snapshot_tests");
    assert!(get_metrics_collector().encode_text().contains(
        "agentcore_errors_total{error_type=\"GlobalTest\",component=\"snapshot_tests\"} 1\n"
    ));
}

#[cfg(feature = "system-monitor")]
#[test]
fn system_monitor_fills_the_system_gauges_and_joins_on_stop() {
    use std::time::{Duration, Instant};

    let c = MetricsCollector::new();
    let monitor = c.start_system_monitor(Duration::from_millis(250)).unwrap();
    assert!(monitor.is_running());
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.history_len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(c.history_len() >= 2, "the monitor took no snapshots");
    let t = Instant::now();
    monitor.stop();
    assert!(t.elapsed() < Duration::from_secs(2));
    let taken = c.history_len();
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(
        c.history_len(),
        taken,
        "the monitor kept running after stop"
    );

    let s = c.snapshot_metrics();
    assert!(
        (0.0..=100.0).contains(&s.system.cpu_percent),
        "{:?}",
        s.system
    );
    assert!(
        s.system.memory_percent > 0.0 && s.system.memory_percent <= 100.0,
        "{:?}",
        s.system
    );
    assert!(s.system.memory_available_mb > 0.0, "{:?}", s.system);
    let text = c.encode_text();
    assert!(text.contains("agentcore_system_memory_percent "));
    assert!(!text.contains("agentcore_system_memory_available_mb 0\n"));
}

#[cfg(feature = "system-monitor")]
#[test]
fn system_monitor_drop_does_not_wait_for_the_interval() {
    use std::time::{Duration, Instant};

    let c = MetricsCollector::new();
    let monitor = c.start_system_monitor(Duration::from_secs(3600)).unwrap();
    let t = Instant::now();
    drop(monitor);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert_eq!(c.history_len(), 0);
}

#[test]
fn concurrent_recording_and_snapshots_lose_nothing() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    let c = MetricsCollector::new();
    // Snapshots taken so far: each recording thread waits halfway until two have been, so at
    // least two overlap the recording however the scheduler runs the threads (a loop that
    // only counted its snapshots could take none before every thread had finished).
    let taken = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let c = c.clone();
            let taken = Arc::clone(&taken);
            std::thread::spawn(move || {
                let id = format!("agent-{t}");
                for i in 0..10_000 {
                    if i == 5_000 {
                        while taken.load(Ordering::Acquire) < 2 {
                            std::thread::yield_now();
                        }
                    }
                    c.record_agent_created(AgentPhilosophy::React, "initializing");
                    c.record_tool_execution("calculator", 0.25, "success", None);
                    c.record_autonomous_decision(&id);
                    c.record_gc_collection(0.5);
                    c.record_agent_completed(AgentPhilosophy::React, "completed");
                }
            })
        })
        .collect();
    while !threads.iter().all(|t| t.is_finished()) {
        let s = c.snapshot_metrics();
        let active = s.agents.active;
        assert!((0.0..=4.0).contains(&active), "{active}");
        taken.fetch_add(1, Ordering::Release);
    }
    for t in threads {
        t.join().unwrap();
    }
    let s = c.snapshot_metrics();
    assert!(taken.load(Ordering::Relaxed) >= 2);
    assert_eq!(
        s.value(
            "agents_total",
            &[("philosophy", "react"), ("status", "initializing")]
        ),
        Some(40_000.0)
    );
    assert_eq!(s.agents.active, 0.0);
    assert_eq!(
        s.series("tool_execution_seconds", &[("tool_id", "calculator")])
            .unwrap()
            .value
            .count(),
        Some(40_000)
    );
    assert_eq!(s.value("gc_collections_total", &[]), Some(40_000.0));
    assert_eq!(s.value("memory_released_mb_total", &[]), Some(20_000.0));
    for t in 0..4 {
        let id = format!("agent-{t}");
        assert_eq!(
            s.value("autonomous_decisions_total", &[("agent_id", &id)]),
            Some(10_000.0)
        );
    }
}

#[test]
fn arbitrary_label_values_never_panic() {
    let c = MetricsCollector::new();
    let long = "x".repeat(10_000);
    for v in ["", "\0", "é✓", "a\"b\\c\nd", "__overflow__", long.as_str()] {
        c.record_agent_created(AgentPhilosophy::Autonomous, v);
        c.update_resource_usage(v, AgentPhilosophy::React, 1.0, 1.0);
        c.record_tool_execution(v, 0.1, v, Some(v));
        c.record_cache_access(v, true, usize::MAX);
        c.record_react_iterations(v, u64::MAX);
        c.set_runtime_info([("version", v), (v, v)]);
        c.remove_agent(v);
        let _ = c.create_custom_metric(v, MetricType::Counter, v, &[v]);
        let _ = c.get_custom_metric(v);
        let _ = c.get_metric_history(Some(usize::MAX), Some(v));
    }
    let text = c.encode_text();
    assert!(text.contains(
        "agentcore_agents_total{philosophy=\"autonomous\",status=\"a\\\"b\\\\c\\nd\"} 1\n"
    ));
    let snapshot = c.snapshot_metrics();
    #[cfg(feature = "serde")]
    {
        let json = serde_json::to_string(&snapshot).unwrap();
        let back: agentcore_telemetry::MetricsSnapshot = serde_json::from_str(&json).unwrap();
        assert_eq!(back, snapshot);
    }
    assert!(!snapshot.metrics.is_empty());
}

/// The serialized snapshot has the specification's shape:
/// `{"timestamp": .., "metrics": {"agents": {"active": N}, "system": {..}}}`, with every family
/// under `metrics.families`.
#[cfg(feature = "serde")]
#[test]
fn snapshot_json_has_the_specification_shape() {
    let c = MetricsCollector::new();
    c.record_agent_created(AgentPhilosophy::React, "initializing");
    c.update_system_resources(65.5, 72.3, 4096.0);
    let snapshot = c.snapshot_metrics();
    let v: serde_json::Value = serde_json::to_value(&snapshot).unwrap();
    let top: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(
        v["metrics"]["agents"]["active"], 1.0,
        "the specification's metrics.agents.active is missing; top-level keys: {top:?}"
    );
    assert_eq!(v["metrics"]["system"]["cpu_percent"], 65.5);
    assert_eq!(v["metrics"]["system"]["memory_percent"], 72.3);
    assert_eq!(v["metrics"]["system"]["memory_available_mb"], 4096.0);
    assert_eq!(v["timestamp"], snapshot.timestamp.as_str());
    // Nothing of the specification's sections at the top level.
    assert!(
        v.get("agents").is_none() && v.get("system").is_none(),
        "{top:?}"
    );
    let families = v["metrics"]["families"].as_array().unwrap();
    assert_eq!(families.len(), snapshot.metrics.len());
    assert!(families
        .iter()
        .any(|f| f["name"] == "agentcore_agents_active"));
    // A history entry restricted to some families keeps the shape, and reads back.
    let tools = &c.get_metric_history(None, Some("tool_executions"))[0];
    let v: serde_json::Value = serde_json::to_value(tools).unwrap();
    assert_eq!(v["metrics"]["agents"]["active"], 1.0);
    assert_eq!(v["metrics"]["families"].as_array().unwrap().len(), 1);
    let back: agentcore_telemetry::MetricsSnapshot = serde_json::from_value(v).unwrap();
    assert_eq!(&back, tools);
}

/// Non-finite values (a custom histogram or summary accepts ±Inf; +Inf and -Inf observations
/// make a NaN sum) survive a JSON round trip, written as "NaN", "+Inf" and "-Inf".
#[cfg(feature = "serde")]
#[test]
fn snapshot_with_non_finite_values_round_trips_through_json() {
    use agentcore_telemetry::agent::{
        AgentsSummary, BucketSnapshot, FamilySnapshot, QuantileSnapshot, SampleValue,
        SeriesSnapshot, SystemSummary,
    };
    use agentcore_telemetry::MetricsSnapshot;

    // Through the collector.
    let c = MetricsCollector::new();
    let h = c
        .create_custom_metric(
            "request_latency",
            MetricType::histogram(),
            "Latency",
            &["endpoint"],
        )
        .unwrap();
    h.labels(&["/api"]).unwrap().observe(f64::INFINITY);
    h.labels(&["/nan"]).unwrap().observe(f64::INFINITY);
    h.labels(&["/nan"]).unwrap().observe(f64::NEG_INFINITY);
    let s = c
        .create_custom_metric("rtt", MetricType::summary(), "RTT", &[])
        .unwrap();
    s.labels::<&str>(&[]).unwrap().observe(f64::NEG_INFINITY);
    let snapshot = c.snapshot_metrics();
    let json = serde_json::to_string(&snapshot).unwrap();
    let back: Result<MetricsSnapshot, _> = serde_json::from_str(&json);
    let back = back.unwrap_or_else(|e| panic!("snapshot JSON does not read back: {e}"));
    // `Debug` writes every float exactly (NaN as NaN), so equal texts are equal snapshots.
    assert_eq!(format!("{back:?}"), format!("{snapshot:?}"));
    let sum = |endpoint: &str| match back
        .series("request_latency", &[("endpoint", endpoint)])
        .map(|s| &s.value)
    {
        Some(SampleValue::Histogram { sum, .. }) => *sum,
        other => panic!("{other:?}"),
    };
    assert_eq!(sum("/api"), f64::INFINITY);
    assert!(sum("/nan").is_nan());
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let family = |name: &str| {
        v["metrics"]["families"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap()
            .clone()
    };
    let latency = family("agentcore_request_latency");
    assert_eq!(latency["series"][0]["value"]["sum"], "+Inf");
    assert_eq!(latency["series"][1]["value"]["sum"], "NaN");
    let rtt = family("agentcore_rtt");
    assert_eq!(rtt["series"][0]["value"]["sum"], "-Inf");
    assert_eq!(rtt["series"][0]["value"]["quantiles"][0]["value"], "-Inf");

    // Every float field of a snapshot, built by hand.
    let mut i = 0;
    let mut next = || {
        i += 1;
        [f64::NAN, f64::INFINITY, f64::NEG_INFINITY][i % 3]
    };
    let series = |value| SeriesSnapshot {
        labels: Default::default(),
        value,
    };
    let odd = MetricsSnapshot {
        timestamp: "2025-01-15T12:34:56.789Z".into(),
        unix_seconds: next(),
        agents: AgentsSummary { active: next() },
        system: SystemSummary {
            cpu_percent: next(),
            memory_percent: next(),
            memory_available_mb: next(),
        },
        metrics: vec![FamilySnapshot {
            name: "odd".into(),
            kind: "gauge".into(),
            help: String::new(),
            series: vec![
                series(SampleValue::Number(next())),
                series(SampleValue::Number(next())),
                series(SampleValue::Number(next())),
                series(SampleValue::Histogram {
                    buckets: vec![BucketSnapshot {
                        le: "+Inf".into(),
                        count: 2,
                    }],
                    sum: next(),
                    count: 2,
                }),
                series(SampleValue::Summary {
                    quantiles: vec![
                        QuantileSnapshot {
                            quantile: next(),
                            value: Some(next()),
                        },
                        QuantileSnapshot {
                            quantile: 0.5,
                            value: None,
                        },
                        QuantileSnapshot {
                            quantile: next(),
                            value: Some(next()),
                        },
                    ],
                    sum: next(),
                    count: 2,
                }),
            ],
        }],
    };
    let json = serde_json::to_string(&odd).unwrap();
    assert!(
        !json.contains("null,") && json.matches("null").count() == 1,
        "{json}"
    );
    let back: MetricsSnapshot =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    assert_eq!(format!("{back:?}"), format!("{odd:?}"));
    for word in ["\"NaN\"", "\"+Inf\"", "\"-Inf\""] {
        assert!(json.contains(word), "{word} missing: {json}");
    }
}

/// The history stays oldest first when several threads take snapshots at once (the system
/// monitor takes one on every sample, beside the application's own): timestamps never go
/// backwards, and neither do the counters read into them.
#[test]
fn history_is_oldest_first_under_concurrent_snapshots() {
    let c = MetricsCollector::with_config(CollectorConfig {
        history_capacity: 100_000,
        ..CollectorConfig::default()
    });
    std::thread::scope(|s| {
        for _ in 0..4 {
            let c = c.clone();
            s.spawn(move || {
                for _ in 0..300 {
                    c.record_gc_collection(1.0);
                    c.snapshot_metrics();
                }
            });
        }
    });
    let h = c.get_metric_history(None, None);
    assert_eq!(h.len(), 1200);
    let inversions = h
        .windows(2)
        .filter(|w| w[0].unix_seconds > w[1].unix_seconds || w[0].timestamp > w[1].timestamp)
        .count();
    assert_eq!(
        inversions,
        0,
        "{inversions} out-of-order pairs in {} snapshots",
        h.len()
    );
    let gc: Vec<f64> = h
        .iter()
        .map(|s| s.value("gc_collections_total", &[]).unwrap())
        .collect();
    let decreases = gc.windows(2).filter(|w| w[0] > w[1]).count();
    assert_eq!(
        decreases, 0,
        "a counter went backwards {decreases} times along the history"
    );
}

/// A snapshot's `agents` and `system` sections are read with its families, not after them:
/// while other threads record, `agents.active` is the sum of the `agentcore_agents_active`
/// series of the same snapshot, and each `system` field the value of its gauge there.
#[test]
fn snapshot_sections_agree_with_its_families_while_others_record() {
    use std::sync::atomic::{AtomicBool, Ordering};

    let c = MetricsCollector::with_config(CollectorConfig {
        history_capacity: 0,
        ..CollectorConfig::default()
    });
    /// Stops the recorder when dropped, so that a failed assertion below unwinds out of the
    /// scope instead of waiting for the recorder forever.
    struct Stop<'a>(&'a AtomicBool);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let stop = AtomicBool::new(false);
    let mut disagreements = Vec::new();
    std::thread::scope(|s| {
        let _stop = Stop(&stop);
        s.spawn(|| {
            let mut i = 0.0;
            while !stop.load(Ordering::Relaxed) {
                c.record_agent_created(AgentPhilosophy::React, "initializing");
                i += 1.0;
                c.update_system_resources(i, i, i);
            }
        });
        for _ in 0..1_000 {
            let snap = c.snapshot_metrics();
            let active: f64 = snap
                .get("agents_active")
                .unwrap()
                .series
                .iter()
                .filter_map(|s| s.value.as_f64())
                .sum();
            let system = [
                ("cpu_percent", snap.system.cpu_percent),
                ("memory_percent", snap.system.memory_percent),
                ("memory_available_mb", snap.system.memory_available_mb),
            ];
            if snap.agents.active != active {
                disagreements.push(format!(
                    "agents.active {} but the agents_active series sum to {active}",
                    snap.agents.active
                ));
            }
            for (field, v) in system {
                let family = snap.value(&format!("system_{field}"), &[]);
                if family != Some(v) {
                    disagreements.push(format!("system.{field} {v} but its gauge {family:?}"));
                }
            }
        }
    });
    assert!(
        disagreements.is_empty(),
        "{} disagreements in 1000 snapshots, first: {:?}",
        disagreements.len(),
        &disagreements[..disagreements.len().min(3)]
    );
}

/// With no agent active (no `agentcore_agents_active` series yet), `agents.active` is +0.0,
/// as before the sections were summed from the families: `Iterator::sum` of no values is
/// -0.0, which JSON would show as `-0.0`.
#[test]
fn a_fresh_collectors_sections_are_positive_zero() {
    let c = MetricsCollector::with_config(CollectorConfig {
        history_capacity: 0,
        ..CollectorConfig::default()
    });
    let snap = c.snapshot_metrics();
    for (field, v) in [
        ("agents.active", snap.agents.active),
        ("system.cpu_percent", snap.system.cpu_percent),
        ("system.memory_percent", snap.system.memory_percent),
        (
            "system.memory_available_mb",
            snap.system.memory_available_mb,
        ),
    ] {
        assert!(
            v == 0.0 && v.is_sign_positive(),
            "{field} of a fresh collector is {v:?}"
        );
    }
}

/// Each `system` field is its gauge's value, as the specification's snapshot reads it, sign
/// of zero included: a gauge set to -0.0 (exposed `-0`) was summed from +0.0 into the section,
/// which then said `0.0` beside its own family's `-0.0`.
#[test]
fn the_system_section_is_its_gauges_value_even_a_negative_zero() {
    let c = MetricsCollector::with_config(CollectorConfig {
        history_capacity: 0,
        ..CollectorConfig::default()
    });
    c.update_system_resources(-0.0, -0.0, -0.0);
    assert!(c
        .encode_text()
        .contains("\nagentcore_system_cpu_percent -0\n"));
    let snap = c.snapshot_metrics();
    for (field, v) in [
        ("cpu_percent", snap.system.cpu_percent),
        ("memory_percent", snap.system.memory_percent),
        ("memory_available_mb", snap.system.memory_available_mb),
    ] {
        let gauge = snap.value(&format!("system_{field}"), &[]).unwrap();
        assert_eq!(
            v.to_bits(),
            gauge.to_bits(),
            "system.{field} is {v:?} but its gauge {gauge:?}"
        );
    }
}

/// `MetricsSnapshot::get` (and so `value` and `series`) finds a metric by the name it was
/// made with: a custom counter made as `user_actions` is the family
/// `agentcore_user_actions_total`, a custom info metric made as `build` is
/// `agentcore_build_info`, and the specification names built-ins the same way
/// (`tool_executions`, as `get_metric_history(metric_name="tool_executions")`). Before, only
/// the full name and the name without `agentcore_` were found.
#[test]
fn snapshot_get_finds_a_metric_by_the_name_it_was_made_with() {
    use agentcore_telemetry::MetricType;
    let c = MetricsCollector::new();
    let actions = c
        .create_custom_metric(
            "user_actions",
            MetricType::Counter,
            "User actions performed",
            &["action_type"],
        )
        .unwrap();
    actions.labels(&["agent_create"]).unwrap().inc();
    c.create_custom_metric("build", MetricType::Info, "Build", &["version"])
        .unwrap();
    c.record_tool_execution("calculator", 0.1, "success", None);
    let s = c.snapshot_metrics();
    for (short, full) in [
        ("user_actions", "agentcore_user_actions_total"),
        ("user_actions_total", "agentcore_user_actions_total"),
        ("build", "agentcore_build_info"),
        ("tool_executions", "agentcore_tool_executions_total"),
        (
            "agentcore_tool_executions",
            "agentcore_tool_executions_total",
        ),
        ("agents_active", "agentcore_agents_active"),
    ] {
        assert_eq!(s.get(short).map(|f| f.name.as_str()), Some(full), "{short}");
    }
    assert_eq!(
        s.value("user_actions", &[("action_type", "agent_create")]),
        Some(1.0)
    );
    // A suffix is only dropped where the type adds it (`agents` is the counter
    // `agentcore_agents_total`; a gauge keeps its name whole), and a name that is only a
    // suffix, or a part of a name, finds nothing.
    assert_eq!(s.get("agents").unwrap().name, "agentcore_agents_total");
    for absent in [
        "agents_activ",
        "tool_execution",
        "agents_active_total",
        "_total",
        "total",
        "info",
        "nope",
    ] {
        assert!(s.get(absent).is_none(), "{absent}");
    }
}
