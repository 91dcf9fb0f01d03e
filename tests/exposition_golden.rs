//! Golden output of `encode_text()` for every metric type, escaping round-trips through a strict
//! parser, and the registry's refusals.

mod support;

use std::time::Duration;

use agentcore_telemetry::{Buckets, Error, Registry, SummaryConfig, CONTENT_TYPE};
use support::exposition::{parse, value};

fn lines(v: &[&str]) -> String {
    v.iter().map(|l| format!("{l}\n")).collect()
}

#[test]
fn golden_counter_gauge_info() {
    let r = Registry::new();
    let c = r
        .counter_family(
            "agentcore_agents_total",
            "Agents created.",
            &["philosophy", "status"],
        )
        .unwrap();
    c.with_label_values(&["react", "initializing"])
        .unwrap()
        .inc_by(3);
    c.with_label_values(&["autonomous", "initializing"])
        .unwrap()
        .inc();
    let released = r
        .counter("agentcore_memory_released_mb_total", "Memory released.")
        .unwrap();
    released.add(25.5).unwrap();
    released.inc_by(2);
    let g = r.gauge("agentcore_system_cpu_percent", "CPU.").unwrap();
    g.set(65.5);
    let info = r
        .info_family(
            "agentcore_runtime_info",
            "Runtime.",
            &["version", "environment", "platform"],
        )
        .unwrap();
    info.with_label_values(&["1.0.0", "production", "linux"])
        .unwrap();
    assert_eq!(
        r.encode_text(),
        lines(&[
            "# HELP agentcore_agents_total Agents created.",
            "# TYPE agentcore_agents_total counter",
            r#"agentcore_agents_total{philosophy="autonomous",status="initializing"} 1"#,
            r#"agentcore_agents_total{philosophy="react",status="initializing"} 3"#,
            "# HELP agentcore_memory_released_mb_total Memory released.",
            "# TYPE agentcore_memory_released_mb_total counter",
            "agentcore_memory_released_mb_total 27.5",
            "# HELP agentcore_runtime_info Runtime.",
            "# TYPE agentcore_runtime_info gauge",
            r#"agentcore_runtime_info{version="1.0.0",environment="production",platform="linux"} 1"#,
            "# HELP agentcore_system_cpu_percent CPU.",
            "# TYPE agentcore_system_cpu_percent gauge",
            "agentcore_system_cpu_percent 65.5",
        ])
    );
    assert_eq!(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
}

#[test]
fn golden_histogram_and_summary() {
    let r = Registry::new();
    let h = r
        .histogram(
            "agentcore_tool_execution_seconds",
            "Tool latency.",
            Buckets::new(vec![0.005, 0.25, 1.0, 1e6]).unwrap(),
        )
        .unwrap();
    for v in [0.001, 0.25, 0.3, 2e6] {
        h.observe(v);
    }
    let s = r
        .summary_family(
            "agentcore_request_seconds",
            "Requests.",
            &["endpoint"],
            SummaryConfig::new(vec![0.5, 0.99], Duration::from_secs(60), 3).unwrap(),
        )
        .unwrap();
    let api = s.get_or_create(&["/api"]).unwrap();
    for v in [1.0, 1.0, 1.0, 64.0] {
        api.observe(v);
    }
    assert_eq!(
        r.encode_text(),
        lines(&[
            "# HELP agentcore_request_seconds Requests.",
            "# TYPE agentcore_request_seconds summary",
            // Quantiles report their bucket's midpoint: 1 and 64 are bucket lower bounds, so
            // they read 1/64 of an octave above (within the documented 1.6 %).
            r#"agentcore_request_seconds{endpoint="/api",quantile="0.5"} 1.015625"#,
            r#"agentcore_request_seconds{endpoint="/api",quantile="0.99"} 64"#, // clamped to the observed maximum (the bucket midpoint is 65)
            r#"agentcore_request_seconds_sum{endpoint="/api"} 67"#,
            r#"agentcore_request_seconds_count{endpoint="/api"} 4"#,
            "# HELP agentcore_tool_execution_seconds Tool latency.",
            "# TYPE agentcore_tool_execution_seconds histogram",
            r#"agentcore_tool_execution_seconds_bucket{le="0.005"} 1"#,
            r#"agentcore_tool_execution_seconds_bucket{le="0.25"} 2"#,
            r#"agentcore_tool_execution_seconds_bucket{le="1"} 3"#,
            r#"agentcore_tool_execution_seconds_bucket{le="1e+06"} 3"#,
            r#"agentcore_tool_execution_seconds_bucket{le="+Inf"} 4"#,
            "agentcore_tool_execution_seconds_sum 2.000000551e+06",
            "agentcore_tool_execution_seconds_count 4",
        ])
    );
}

#[test]
fn empty_families_are_omitted_and_an_empty_registry_encodes_to_nothing() {
    let r = Registry::new();
    r.counter_family("unused_total", "Unused.", &["a"]).unwrap();
    assert_eq!(r.encode_text(), "");
}

#[test]
fn hostile_label_values_and_help_round_trip_exactly() {
    let hostile = [
        "",
        "\\",
        "\\\\",
        "a\\b",
        "a\\\\b",
        "\"",
        "\\\"",
        "a\"b",
        "line1\nline2",
        "\n",
        "tab\there",
        "cr\rhere",
        "nul\0byte",
        "héllo wörld ✓ 🚀",
        "}{,=\" ",
        "# HELP fake",
    ];
    let r = Registry::new();
    let help = "Help with \\ backslash,\nnewline and \"quotes\".";
    let fam = r.counter_family("hostile_total", help, &["v"]).unwrap();
    for (i, v) in hostile.iter().enumerate() {
        fam.with_label_values(&[*v]).unwrap().inc_by(i as u64 + 1);
    }
    let text = r.encode_text();
    let families = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(families.len(), 1);
    assert_eq!(families[0].help.as_deref(), Some(help));
    assert_eq!(
        families[0].samples.len(),
        hostile.len(),
        "no two values merged"
    );
    for (i, v) in hostile.iter().enumerate() {
        assert_eq!(
            value(&families, "hostile_total", &[("v", v)]),
            Some(i as f64 + 1.0),
            "value {v:?}"
        );
    }
    // HELP escapes only backslash and newline; a quote stays raw (\" is invalid in 0.0.4 HELP).
    assert!(text
        .starts_with("# HELP hostile_total Help with \\\\ backslash,\\nnewline and \"quotes\".\n"));
    // Label values escape exactly \\, \" and \n: a tab and a CR stay raw.
    assert!(text.contains("hostile_total{v=\"tab\there\"} 11\n"));
    assert!(text.contains("hostile_total{v=\"a\\\\b\"} 4\n"));
    assert!(text.contains("hostile_total{v=\"a\\\\\\\\b\"} 5\n"));
}

#[test]
fn different_label_lists_never_share_a_series() {
    let r = Registry::new();
    let fam = r
        .counter_family("alias_total", "Aliasing.", &["a", "b"])
        .unwrap();
    fam.with_label_values(&["x", "yz"]).unwrap().inc();
    fam.with_label_values(&["xy", "z"]).unwrap().inc_by(10);
    fam.with_label_values(&["", "xyz"]).unwrap().inc_by(100);
    assert_eq!(fam.len(), 3);
    let families = parse(&r.encode_text()).unwrap();
    assert_eq!(
        value(&families, "alias_total", &[("a", "x"), ("b", "yz")]),
        Some(1.0)
    );
    assert_eq!(
        value(&families, "alias_total", &[("a", "xy"), ("b", "z")]),
        Some(10.0)
    );
    assert_eq!(
        value(&families, "alias_total", &[("a", ""), ("b", "xyz")]),
        Some(100.0)
    );
}

#[test]
fn invalid_names_and_shapes_are_refused_with_the_bad_name() {
    let r = Registry::new();
    for bad in ["", "1abc", "a-b", "a b", "é", "a.b"] {
        assert_eq!(
            r.counter_family(bad, "h", &[]).unwrap_err(),
            Error::InvalidMetricName { name: bad.into() }
        );
    }
    for bad in ["", "1a", "a:b", "a-b", "__reserved"] {
        assert!(
            matches!(r.counter_family("ok_total", "h", &[bad]), Err(Error::InvalidLabelName { ref name, .. }) if name == bad),
            "{bad:?}"
        );
    }
    assert!(matches!(
        r.histogram_family("h_seconds", "h", &["le"], Buckets::default()),
        Err(Error::InvalidLabelName { .. })
    ));
    assert!(matches!(
        r.summary_family("s_seconds", "h", &["quantile"], SummaryConfig::default()),
        Err(Error::InvalidLabelName { .. })
    ));
    assert_eq!(
        r.counter_family("dup_total", "h", &["a", "a"]).unwrap_err(),
        Error::DuplicateLabelName { name: "a".into() }
    );
    r.histogram("lat_seconds", "h", Buckets::default()).unwrap();
    assert_eq!(
        r.counter_family("lat_seconds_count", "h", &[]).unwrap_err(),
        Error::DuplicateMetric {
            name: "lat_seconds_count".into()
        }
    );
    assert_eq!(
        r.gauge_family("lat_seconds", "h", &[]).unwrap_err(),
        Error::DuplicateMetric {
            name: "lat_seconds".into()
        }
    );
    let fam = r.counter_family("two_total", "h", &["a", "b"]).unwrap();
    assert!(matches!(
        fam.with_label_values(&["only"]),
        Err(Error::WrongLabelCount {
            expected: 2,
            got: 1
        })
    ));
    assert!(matches!(
        r.get_or_register::<agentcore_telemetry::Gauge>(
            "two_total",
            "h",
            &["a", "b"],
            (),
            Default::default()
        ),
        Err(Error::ShapeMismatch { .. })
    ));
    let again = r
        .get_or_register::<agentcore_telemetry::Counter>(
            "two_total",
            "h",
            &["a", "b"],
            (),
            Default::default(),
        )
        .unwrap();
    again.with_label_values(&["1", "2"]).unwrap().inc();
    assert_eq!(
        fam.get(&["1", "2"]).unwrap().get(),
        1.0,
        "same family returned"
    );
}

#[test]
fn cardinality_cap_folds_into_an_overflow_series_and_counts_it() {
    use agentcore_telemetry::registry::FamilyOptions;
    let r = Registry::new();
    let fam = r
        .register::<agentcore_telemetry::Counter>(
            "agent_ops_total",
            "Ops.",
            &["agent_id"],
            (),
            FamilyOptions {
                max_series: 3,
                ..FamilyOptions::default()
            },
        )
        .unwrap();
    for i in 0..10 {
        fam.with_label_values(&[format!("agent-{i}")])
            .unwrap()
            .inc();
    }
    assert_eq!(fam.len(), 3);
    assert_eq!(fam.overflowed(), 7);
    let families = parse(&r.encode_text()).unwrap();
    assert_eq!(
        value(
            &families,
            "agent_ops_total",
            &[("agent_id", "__overflow__")]
        ),
        Some(7.0)
    );
    assert_eq!(
        value(
            &families,
            "agentcore_telemetry_series_overflow_total",
            &[("family", "agent_ops_total")]
        ),
        Some(7.0)
    );
    // Removing a series makes room again.
    assert!(fam.remove(&["agent-0"]));
    fam.with_label_values(&["agent-new"]).unwrap().inc();
    assert_eq!(fam.len(), 3);
    assert_eq!(fam.overflowed(), 7);
    // Asking for the overflow label set directly reaches the same series, never a duplicate.
    fam.with_label_values(&["__overflow__"]).unwrap().inc();
    let families = parse(&r.encode_text()).unwrap();
    assert_eq!(
        value(
            &families,
            "agent_ops_total",
            &[("agent_id", "__overflow__")]
        ),
        Some(8.0)
    );
}

#[test]
fn removed_series_disappear_from_the_exposition() {
    let r = Registry::new();
    let cpu = r
        .gauge_family("agent_cpu_percent", "CPU.", &["agent_id"])
        .unwrap();
    cpu.with_label_values(&["a"]).unwrap().set(1.0);
    cpu.with_label_values(&["b"]).unwrap().set(2.0);
    let kept = cpu.get_or_create(&["b"]).unwrap();
    assert!(cpu.remove(&["b"]));
    assert!(!cpu.remove(&["b"]));
    kept.set(5.0); // a kept handle still works, but is no longer exposed
    let text = r.encode_text();
    assert!(text.contains("agent_cpu_percent{agent_id=\"a\"} 1\n"));
    assert!(!text.contains("agent_id=\"b\""));
    assert_eq!(cpu.retain(|values, _| &values[0] != "a"), 1);
    assert_eq!(r.encode_text(), "");
}
