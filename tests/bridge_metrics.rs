//! The `metrics` bridge with the real `metrics` macros: static and dynamic labels, every handle
//! operation, descriptions, per-name buckets, label-set and kind conflicts (refused and
//! counted, never a panic in release), sanitized names and the cardinality cap. Assertions read
//! the registry's scrape through the strict parser of `tests/support/exposition.rs`.

use agentcore_telemetry::bridge::metrics_recorder::{
    AgentcoreRecorder, Matcher, OnConflict, DEFAULT_MAX_FAMILIES, REJECTED_METRIC,
};
use agentcore_telemetry::{Buckets, Registry};
use support::exposition::{parse, value};

mod support;

fn scrape(registry: &Registry) -> Vec<support::exposition::Family> {
    parse(&registry.encode_text()).expect("a valid exposition")
}

#[test]
fn macros_with_static_and_dynamic_labels() {
    let registry = Registry::new();
    let recorder = AgentcoreRecorder::new(&registry);
    metrics::with_local_recorder(&recorder, || {
        metrics::describe_counter!("tool_calls_total", "Tool calls.");
        for tool in ["calculator", "search", "calculator"] {
            metrics::counter!("tool_calls_total", "tool" => tool.to_string(), "status" => "ok")
                .increment(1);
        }
        metrics::counter!("boots_total").increment(2);
        metrics::counter!("tool_calls_total", "status" => "ok", "tool" => "search").increment(5);
        let g = metrics::gauge!("queue_depth", "queue" => "default");
        g.set(10.0);
        g.increment(2.5);
        g.decrement(0.5);
        metrics::histogram!("latency_seconds", "model" => "gpt").record(0.3);
        metrics::histogram!("latency_seconds", "model" => "gpt").record(7.0);
        let c = metrics::counter!("mirrored_total");
        c.absolute(10);
        c.absolute(4); // never lowered
        c.increment(1);
        c.absolute(20);
    });
    let f = scrape(&registry);
    let calls = |tool| value(&f, "tool_calls_total", &[("tool", tool), ("status", "ok")]);
    assert_eq!(calls("calculator"), Some(2.0));
    assert_eq!(calls("search"), Some(6.0), "label order does not matter");
    assert_eq!(value(&f, "boots_total", &[]), Some(2.0));
    assert_eq!(
        value(&f, "queue_depth", &[("queue", "default")]),
        Some(12.0)
    );
    assert_eq!(
        value(&f, "latency_seconds_count", &[("model", "gpt")]),
        Some(2.0)
    );
    assert_eq!(
        value(
            &f,
            "latency_seconds_bucket",
            &[("model", "gpt"), ("le", "0.5")]
        ),
        Some(1.0),
        "default buckets, no sample buffering"
    );
    assert_eq!(value(&f, "mirrored_total", &[]), Some(20.0));
    let help = f.iter().find(|f| f.name == "tool_calls_total").unwrap();
    assert_eq!(help.help.as_deref(), Some("Tool calls."));
    assert_eq!(recorder.rejected(), 0);
}

#[test]
fn per_name_buckets() {
    let registry = Registry::new();
    let recorder = AgentcoreRecorder::builder()
        .buckets_for(
            Matcher::Full("tokens".into()),
            Buckets::new(vec![10.0, 100.0]).unwrap(),
        )
        .buckets_for(
            Matcher::Suffix("_seconds".into()),
            Buckets::new(vec![1.0]).unwrap(),
        )
        .build(&registry);
    metrics::with_local_recorder(&recorder, || {
        metrics::histogram!("tokens").record(50.0);
        metrics::histogram!("step_seconds").record(0.5);
    });
    let f = scrape(&registry);
    assert_eq!(value(&f, "tokens_bucket", &[("le", "10")]), Some(0.0));
    assert_eq!(value(&f, "tokens_bucket", &[("le", "100")]), Some(1.0));
    assert_eq!(value(&f, "step_seconds_bucket", &[("le", "1")]), Some(1.0));
    assert_eq!(value(&f, "step_seconds_bucket", &[("le", "0.5")]), None);
}

#[test]
fn label_set_and_kind_conflicts_are_refused_and_counted() {
    let registry = Registry::new();
    let recorder = AgentcoreRecorder::new(&registry);
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("jobs_total", "queue" => "a").increment(1);
        metrics::counter!("jobs_total", "worker" => "7").increment(100); // other label name
        metrics::counter!("jobs_total", "queue" => "a", "worker" => "7").increment(100); // more
        metrics::counter!("jobs_total").increment(100); // fewer
        metrics::gauge!("jobs_total", "queue" => "a").set(100.0); // other kind
        metrics::histogram!("jobs_total", "queue" => "a").record(1.0); // other kind
        metrics::counter!("jobs_total", "queue" => "a").increment(1); // still fine
    });
    let f = scrape(&registry);
    assert_eq!(value(&f, "jobs_total", &[("queue", "a")]), Some(2.0));
    assert_eq!(recorder.rejected(), 5);
    assert_eq!(
        value(&f, REJECTED_METRIC, &[("reason", "label_set")]),
        Some(3.0)
    );
    assert_eq!(value(&f, REJECTED_METRIC, &[("reason", "kind")]), Some(2.0));
}

#[test]
#[cfg_attr(debug_assertions, should_panic(expected = "metrics bridge refused"))]
fn the_panic_strategy_panics_only_with_debug_assertions() {
    let registry = Registry::new();
    let recorder = AgentcoreRecorder::builder()
        .on_conflict(OnConflict::Panic)
        .build(&registry);
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("x_total", "a" => "1").increment(1);
        metrics::counter!("x_total", "b" => "1").increment(1);
    });
    assert_eq!(recorder.rejected(), 1); // release: counted, no panic
}

#[test]
fn the_recorder_keeps_working_after_a_debug_panic() {
    let registry = Registry::new();
    let recorder = AgentcoreRecorder::builder()
        .on_conflict(OnConflict::Panic)
        .build(&registry);
    let r = recorder.clone();
    let outcome = std::thread::spawn(move || {
        metrics::with_local_recorder(&r, || {
            metrics::counter!("y_total", "a" => "1").increment(1);
            metrics::counter!("y_total", "b" => "1").increment(1);
        })
    })
    .join();
    assert_eq!(outcome.is_err(), cfg!(debug_assertions));
    assert_eq!(recorder.rejected(), 1);
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("y_total", "a" => "2").increment(1); // a new series: slow path
    });
    assert!(registry.encode_text().contains("y_total{a=\"2\"} 1\n"));
}

#[test]
fn names_are_sanitized_and_invalid_keys_refused() {
    let registry = Registry::new();
    let recorder = AgentcoreRecorder::new(&registry);
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("http.requests-total", "http.method" => "GET").increment(1);
        metrics::counter!("2fa_checks").increment(1);
        metrics::histogram!("sizes", "le" => "x").record(1.0); // `le` is reserved
        metrics::counter!("dup_total", "a" => "1", "a" => "2").increment(1);
    });
    let f = scrape(&registry);
    assert_eq!(
        value(&f, "http_requests_total", &[("http_method", "GET")]),
        Some(1.0)
    );
    // `_2fa_checks` after sanitizing: a leading underscore is reserved by OpenMetrics 1.0,
    // so the registry refuses it, and the recorder counts it as invalid.
    assert_eq!(value(&f, "_2fa_checks", &[]), None);
    assert_eq!(recorder.rejected(), 3);
    assert_eq!(
        value(&f, REJECTED_METRIC, &[("reason", "invalid")]),
        Some(3.0)
    );
}

/// The crate's own counters share the recorder's registry: the bridge's refusals (the recorder
/// registers them there), the tracer's span counts. A `metrics` key naming one got a handle on
/// it, so a caller could add refusals that never happened or spans that never started. Names
/// in those namespaces are refused as `reserved` (after sanitizing, as every name is).
#[test]
fn the_crates_own_metrics_are_reserved() {
    use agentcore_telemetry::{DistributedTracer, TracerConfig};

    let registry = Registry::new();
    let tracer = DistributedTracer::new(TracerConfig::default());
    tracer.register_metrics(&registry).unwrap();
    let recorder = AgentcoreRecorder::new(&registry);
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!(REJECTED_METRIC, "reason" => "kind").increment(7);
        metrics::counter!("agentcore_tracer_spans_started_total").increment(7);
        metrics::counter!("agentcore.tracer.spans-started-total").increment(7); // sanitized
        metrics::gauge!("agentcore_telemetry_reclamation_pending").set(7.0);
        metrics::histogram!("agentcore_tracer_new_thing_seconds").record(7.0);
        metrics::counter!("agentcore_tool_executions_total").increment(1); // not reserved
    });
    let f = scrape(&registry);
    assert_eq!(recorder.rejected(), 5);
    assert_eq!(
        value(&f, REJECTED_METRIC, &[("reason", "reserved")]),
        Some(5.0)
    );
    assert_eq!(value(&f, REJECTED_METRIC, &[("reason", "kind")]), None);
    assert_eq!(
        value(&f, "agentcore_tracer_spans_started_total", &[]),
        Some(0.0)
    );
    assert_eq!(
        value(&f, "agentcore_tracer_new_thing_seconds_count", &[]),
        None
    );
    assert_eq!(value(&f, "agentcore_tool_executions_total", &[]), Some(1.0));
}

#[test]
fn the_cardinality_cap_folds_new_label_sets_into_the_overflow_series() {
    let registry = Registry::new();
    let recorder = AgentcoreRecorder::builder().max_series(4).build(&registry);
    metrics::with_local_recorder(&recorder, || {
        for user in 0..100 {
            metrics::counter!("requests_total", "user" => user.to_string()).increment(1);
        }
        // A capped label set again: still the overflow series.
        metrics::counter!("requests_total", "user" => "99").increment(1);
        // A series within the cap: still its own.
        metrics::counter!("requests_total", "user" => "0").increment(1);
    });
    let text = registry.encode_text();
    let f = parse(&text).unwrap();
    let family = f.iter().find(|f| f.name == "requests_total").unwrap();
    let total: f64 = family.samples.iter().map(|s| s.value).sum();
    assert_eq!(total, 102.0, "nothing lost:\n{text}");
    assert!(family.samples.len() <= 5, "{text}");
    assert_eq!(value(&f, "requests_total", &[("user", "0")]), Some(2.0));
    assert_eq!(recorder.rejected(), 0, "overflow is not a refusal");
}

#[test]
fn a_recorder_shares_families_registered_directly_with_the_same_shape() {
    let registry = Registry::new();
    let direct = registry
        .counter_family("agent_runs_total", "Runs.", &["agent"])
        .unwrap();
    direct.with_label_values(&["a"]).unwrap().inc();
    let recorder = AgentcoreRecorder::new(&registry);
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("agent_runs_total", "agent" => "a").increment(1);
        metrics::gauge!("agent_runs_total", "agent" => "a").set(1.0); // other kind: refused
    });
    assert_eq!(direct.get(&["a"]).unwrap().get(), 2.0);
    assert_eq!(recorder.rejected(), 1);
}

#[test]
fn handles_are_shared_across_threads() {
    let registry = Registry::new();
    let recorder = AgentcoreRecorder::new(&registry);
    std::thread::scope(|s| {
        for _ in 0..4 {
            let recorder = recorder.clone();
            s.spawn(move || {
                metrics::with_local_recorder(&recorder, || {
                    for i in 0..1_000 {
                        let shard = (i % 3).to_string();
                        metrics::counter!("work_total", "shard" => shard).increment(1);
                    }
                })
            });
        }
    });
    let f = scrape(&registry);
    let total: f64 = ["0", "1", "2"]
        .iter()
        .map(|s| value(&f, "work_total", &[("shard", s)]).unwrap())
        .sum();
    assert_eq!(total, 4_000.0);
}

/// `absolute(n)` raises the counter to exactly `n` however large: the current value is read
/// as an integer, not through an `f64` (which above 2^53 rounds, and the raise overshoots).
/// metrics-exporter-prometheus (`fetch_max` on a `u64`) shows the same.
#[test]
fn absolute_is_exact_above_2_pow_53() {
    let registry = Registry::new();
    let recorder = AgentcoreRecorder::new(&registry);
    let big = 1u64 << 53;
    metrics::with_local_recorder(&recorder, || {
        let c = metrics::counter!("bytes_total");
        c.absolute(big + 1);
        c.absolute(big + 3);
        c.absolute(big + 2); // never lowered
    });
    let text = registry.encode_text();
    assert!(
        text.contains(&format!("bytes_total {}\n", big + 3)),
        "{text}"
    );
}

/// A counter set with `absolute` mirrors a total kept elsewhere (a kernel's byte count, a
/// peer's request count), which was not 0 when the series was made here. OpenMetrics 1.0,
/// "Counter": if present, Created "MUST also be set to the timestamp of the reset"; the series'
/// creation time is not that, and a scraper that ingests created times as zeros (Prometheus'
/// `created-timestamp-zero-ingestion`) would read the whole mirrored total as an increase
/// since then. So it has no `_created`, as a scrape-time counter has none, for good.
#[test]
fn a_counter_set_with_absolute_has_no_created_time() {
    use agentcore_telemetry::exposition::OpenMetricsEncoder;
    let registry = Registry::new();
    let recorder = AgentcoreRecorder::new(&registry);
    let om = |registry: &Registry| {
        OpenMetricsEncoder::new()
            .with_created(true)
            .encode(registry)
    };
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("mirrored_bytes_total").increment(1);
        metrics::counter!("requests_total").increment(3);
    });
    // Increments alone: it counted from 0 here, so it has its creation time.
    assert!(om(&registry).contains("\nmirrored_bytes_created "));
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("mirrored_bytes_total").absolute(1_000_000);
    });
    let text = om(&registry);
    assert!(text.contains("\nmirrored_bytes_total 1000000\n"), "{text}");
    assert!(!text.contains("mirrored_bytes_created"), "{text}");
    assert!(text.contains("\nrequests_created "), "{text}");
    // A later increment does not bring it back: the total still counts from elsewhere.
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("mirrored_bytes_total").increment(1);
    });
    let text = om(&registry);
    assert!(text.contains("\nmirrored_bytes_total 1000001\n"), "{text}");
    assert!(!text.contains("mirrored_bytes_created"), "{text}");
}

/// A family registered before the recorder saw its name (directly, or by another recorder on
/// the same registry) keeps its label order, and keys with the same label names in any order
/// are its series, as they are once the recorder registered the family itself.
#[test]
fn a_family_registered_elsewhere_accepts_its_label_names_in_any_order() {
    let registry = Registry::new();
    let direct = registry
        .counter_family("runs_total", "Runs.", &["status", "tool"])
        .unwrap();
    let recorder = AgentcoreRecorder::new(&registry);
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("runs_total", "tool" => "search", "status" => "ok").increment(1);
    });
    assert_eq!(direct.get(&["ok", "search"]).map(|c| c.get()), Some(1.0));
    assert_eq!(recorder.rejected(), 0);

    // Two recorders on one registry, whose first keys order the labels differently.
    let first = AgentcoreRecorder::new(&registry);
    let second = AgentcoreRecorder::new(&registry);
    metrics::with_local_recorder(&first, || {
        metrics::gauge!("depth", "queue" => "a", "shard" => "1").set(1.0);
    });
    metrics::with_local_recorder(&second, || {
        metrics::gauge!("depth", "shard" => "1", "queue" => "a").increment(2.0);
    });
    assert_eq!(second.rejected(), 0);
    let f = scrape(&registry);
    assert_eq!(
        value(&f, "depth", &[("queue", "a"), ("shard", "1")]),
        Some(3.0)
    );
}

/// A key that conflicts with a family the registry already has (registered directly, not by
/// the recorder) is counted under its reason, `kind` or `label_set`, as a conflict with a
/// family the recorder registered is, not as `invalid`.
#[test]
fn conflicts_with_a_family_registered_elsewhere_are_counted_by_their_reason() {
    let registry = Registry::new();
    registry
        .counter_family("runs_total", "Runs.", &["agent"])
        .unwrap();
    let recorder = AgentcoreRecorder::new(&registry);
    metrics::with_local_recorder(&recorder, || {
        metrics::gauge!("runs_total", "agent" => "a").set(1.0); // other kind
        metrics::counter!("runs_total", "tool" => "a").increment(1); // other label name
    });
    let f = scrape(&registry);
    assert_eq!(recorder.rejected(), 2);
    assert_eq!(value(&f, REJECTED_METRIC, &[("reason", "kind")]), Some(1.0));
    assert_eq!(
        value(&f, REJECTED_METRIC, &[("reason", "label_set")]),
        Some(1.0)
    );
}

/// `absolute(n)` through several handles of one series (two recorders on one registry, and
/// two spellings of the name that sanitize alike) racing to mirror one external counter: the
/// series ends at the largest value mirrored, never above it (metrics' `CounterFn::absolute`:
/// "only allow setting the counter to the new value if it is greater than the current value";
/// metrics-exporter-prometheus: `fetch_max`). A lock per handle let two handles read the same
/// current value and both raise it.
#[test]
fn absolute_through_several_handles_of_one_series_never_overshoots() {
    const N: u64 = 20_000;
    for round in 0..10 {
        let registry = Registry::new();
        let recorders = [
            AgentcoreRecorder::new(&registry),
            AgentcoreRecorder::new(&registry),
        ];
        let start = std::sync::Barrier::new(4);
        std::thread::scope(|s| {
            for (recorder, name) in recorders
                .iter()
                .flat_map(|r| [(r, "mirror_total"), (r, "mirror.total")])
            {
                let start = &start;
                s.spawn(move || {
                    let c = metrics::with_local_recorder(recorder, || metrics::counter!(name));
                    start.wait();
                    for v in 1..=N {
                        c.absolute(v);
                    }
                });
            }
        });
        let f = scrape(&registry);
        assert_eq!(
            value(&f, "mirror_total", &[]),
            Some(N as f64),
            "round {round}"
        );
        assert!(recorders.iter().all(|r| r.rejected() == 0));
    }
}

/// A histogram family the registry already has (registered directly, or by a recorder with
/// other `buckets_for` rules) is the family of `histogram!` keys of its name and label names,
/// with its own buckets, as a counter or gauge family registered elsewhere is: its label order
/// is adopted, and so are its buckets. The recorder asked the registry for its own configured
/// buckets, and every record was refused as `invalid` ("registered with [1.0, 2.0], requested
/// with [0.005, ...]").
#[test]
fn a_histogram_family_registered_elsewhere_keeps_its_buckets() {
    let registry = Registry::new();
    registry
        .histogram_family(
            "step_seconds",
            "Steps.",
            &["agent", "tool"],
            Buckets::new(vec![1.0, 2.0]).unwrap(),
        )
        .unwrap();
    let first = AgentcoreRecorder::new(&registry);
    let second = AgentcoreRecorder::builder()
        .buckets_for(
            Matcher::Full("tokens".into()),
            Buckets::new(vec![10.0]).unwrap(),
        )
        .build(&registry);
    metrics::with_local_recorder(&first, || {
        metrics::histogram!("step_seconds", "tool" => "search", "agent" => "a").record(1.5);
        metrics::histogram!("tokens").record(0.3); // the default buckets
    });
    metrics::with_local_recorder(&second, || {
        metrics::histogram!("step_seconds", "agent" => "a", "tool" => "search").record(0.5);
        metrics::histogram!("tokens").record(5.0); // `first` registered it: its buckets
    });
    let f = scrape(&registry);
    let step = |le| {
        value(
            &f,
            "step_seconds_bucket",
            &[("agent", "a"), ("tool", "search"), ("le", le)],
        )
    };
    assert_eq!((step("1"), step("2")), (Some(1.0), Some(2.0)));
    assert_eq!(value(&f, "tokens_count", &[]), Some(2.0));
    assert_eq!(value(&f, "tokens_bucket", &[("le", "5")]), Some(2.0));
    assert_eq!((first.rejected(), second.rejected()), (0, 0));
}

/// Threads racing the first registration of one series through several spellings of its key
/// (two names that sanitize alike, two label orders), while others describe it: one series,
/// every increment counted, no refusal.
#[test]
fn racing_first_registrations_of_one_series_make_one_series() {
    const THREADS: usize = 8;
    const EACH: u64 = 5_000;
    for round in 0..10 {
        let registry = Registry::new();
        let recorder = AgentcoreRecorder::new(&registry);
        let start = std::sync::Barrier::new(THREADS);
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let (recorder, start) = (&recorder, &start);
                s.spawn(move || {
                    metrics::with_local_recorder(recorder, || {
                        start.wait();
                        for i in 0..EACH {
                            match t % 3 {
                                0 => metrics::counter!("race_total", "a" => "1", "b" => "2"),
                                1 => metrics::counter!("race.total", "b" => "2", "a" => "1"),
                                _ => metrics::counter!("race-total", "a" => "1", "b" => "2"),
                            }
                            .increment(1);
                            if i % 500 == 0 {
                                metrics::describe_counter!("race_total", "Races.");
                            }
                        }
                    })
                });
            }
        });
        let f = scrape(&registry);
        let family = f.iter().find(|f| f.name == "race_total").unwrap();
        assert_eq!(family.samples.len(), 1, "round {round}");
        assert_eq!(
            value(&f, "race_total", &[("a", "1"), ("b", "2")]),
            Some((THREADS as u64 * EACH) as f64),
            "round {round}"
        );
        assert_eq!(recorder.rejected(), 0);
    }
}

/// Handles the caller keeps stay valid (and record) after the recorder and the registry they
/// came from are dropped: each owns its series' metric (recorder invariant 4; under
/// AddressSanitizer a freed series would be a use-after-free here).
#[test]
fn kept_handles_outlive_the_recorder_and_the_registry() {
    let registry = Registry::new();
    let recorder = AgentcoreRecorder::new(&registry);
    let (c, g, h) = metrics::with_local_recorder(&recorder, || {
        (
            metrics::counter!("kept_total", "k" => "v"),
            metrics::gauge!("kept_depth"),
            metrics::histogram!("kept_seconds"),
        )
    });
    drop(recorder);
    drop(registry);
    let _ = agentcore_telemetry::Registry::new().encode_text(); // reclamation runs
    c.increment(1);
    c.absolute(10);
    g.set(1.0);
    g.increment(1.0);
    h.record(1.0);
}

/// Two recorders on one registry racing the first registration of one name, with its label
/// names in opposite orders (or one as a counter, the other as a gauge): the loser adopts the
/// winner's family (label order) or is refused for the kind, never refused as `invalid` for
/// having lost the race, and no increment is lost.
#[test]
fn recorders_racing_a_first_registration_adopt_the_winners_family() {
    const ROUNDS: usize = 1_000;
    let mut lost = Vec::new();
    for round in 0..ROUNDS {
        let registry = Registry::new();
        let recorders = [
            AgentcoreRecorder::new(&registry),
            AgentcoreRecorder::new(&registry),
        ];
        let start = std::sync::Barrier::new(2);
        std::thread::scope(|s| {
            for (t, recorder) in recorders.iter().enumerate() {
                let start = &start;
                s.spawn(move || {
                    metrics::with_local_recorder(recorder, || {
                        start.wait();
                        if t == 0 {
                            metrics::counter!("order_race_total", "a" => "1", "b" => "2")
                                .increment(1);
                            metrics::counter!("kind_race").increment(1);
                        } else {
                            metrics::counter!("order_race_total", "b" => "2", "a" => "1")
                                .increment(1);
                            metrics::gauge!("kind_race").set(1.0);
                        }
                    })
                });
            }
        });
        let f = scrape(&registry);
        let counted = value(&f, "order_race_total", &[("a", "1"), ("b", "2")]);
        let invalid = value(&f, REJECTED_METRIC, &[("reason", "invalid")]);
        let kind = value(&f, REJECTED_METRIC, &[("reason", "kind")]);
        if counted != Some(2.0) || invalid.is_some() || kind != Some(1.0) {
            lost.push((round, counted, invalid, kind));
        }
    }
    assert!(
        lost.is_empty(),
        "(round, counted, refused as invalid, as kind): {lost:?}"
    );
}

/// Every distinct `metrics` name makes a family, and a caller that builds names at run time
/// (`counter!(format!("job_{id}_total"))`) made one per value, without end: the families'
/// series are capped, their number was not (review helper-157). Past the recorder's cap, a new
/// name is refused and counted as `families`; the names already mapped keep recording.
#[test]
fn new_names_past_the_family_cap_are_refused_and_counted() {
    let registry = Registry::new();
    let recorder = AgentcoreRecorder::builder()
        .max_families(3)
        .build(&registry);
    metrics::with_local_recorder(&recorder, || {
        for i in 0..3 + 2 {
            metrics::counter!(format!("job_{i}_total")).increment(1);
        }
        metrics::counter!("job_0_total").increment(1); // a name mapped already: fine
        metrics::gauge!("job_1_total").set(1.0); // refused for its kind, not for the cap
        metrics::histogram!("late_seconds").record(1.0); // past the cap, another kind
    });
    assert_eq!(recorder.rejected(), 4);
    let f = scrape(&registry);
    assert_eq!(value(&f, "job_0_total", &[]), Some(2.0));
    assert_eq!(value(&f, "job_2_total", &[]), Some(1.0));
    assert_eq!(value(&f, "job_3_total", &[]), None);
    assert_eq!(value(&f, "late_seconds_count", &[]), None);
    assert_eq!(
        value(&f, REJECTED_METRIC, &[("reason", "families")]),
        Some(3.0)
    );
    assert_eq!(value(&f, REJECTED_METRIC, &[("reason", "kind")]), Some(1.0));
}

/// The default cap is [`DEFAULT_MAX_FAMILIES`] names: filled, the next new name is refused
/// and the names mapped keep recording. (Filling it took 83 s in a debug build while every
/// registration computed every registered family's names again; 34b5aa7 keeps them in a set.)
#[test]
fn the_default_family_cap_is_in_force() {
    let registry = Registry::new();
    let recorder = AgentcoreRecorder::new(&registry);
    metrics::with_local_recorder(&recorder, || {
        for i in 0..DEFAULT_MAX_FAMILIES + 1 {
            metrics::counter!(format!("job_{i}_total")).increment(1);
        }
        metrics::counter!("job_0_total").increment(1);
    });
    assert_eq!(recorder.rejected(), 1);
    let text = registry.encode_text();
    let last = DEFAULT_MAX_FAMILIES - 1;
    assert!(text.contains("\njob_0_total 2\n"), "job_0_total");
    assert!(
        text.contains(&format!("\njob_{last}_total 1\n")),
        "job_{last}_total"
    );
    assert!(!text.contains(&format!("job_{DEFAULT_MAX_FAMILIES}_total")));
}

/// A description comes before its family and is kept until the family exists; descriptions of
/// names that never got one were kept for ever, one per distinct name, without end (review
/// helper-157). Past the cap a new name's description is dropped and counted; one kept is
/// still taken by its family, and moved out of the pending ones then.
#[test]
fn descriptions_of_names_never_registered_are_capped_and_counted() {
    let registry = Registry::new();
    let recorder = AgentcoreRecorder::builder()
        .max_families(3)
        .build(&registry);
    metrics::with_local_recorder(&recorder, || {
        for i in 0..3 + 2 {
            metrics::describe_counter!(format!("never_{i}_total"), "Never recorded.");
        }
        metrics::describe_counter!("never_0_total", "Described again."); // kept: replaced
        metrics::counter!("never_0_total").increment(1);
        // Its description moved out with its family: room for one more.
        metrics::describe_counter!("late_total", "Late.");
    });
    assert_eq!(recorder.rejected(), 2);
    let f = scrape(&registry);
    assert_eq!(
        value(&f, REJECTED_METRIC, &[("reason", "families")]),
        Some(2.0)
    );
    let text = registry.encode_text();
    assert!(
        text.contains("# HELP never_0_total Described again.\n"),
        "{text}"
    );
}
