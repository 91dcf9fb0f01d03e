//! `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG` and `OTEL_SDK_DISABLED` change what a
//! tracer records (they were parsed and then ignored: a setting that did nothing). One test
//! function: it changes the process environment, which the tests of one binary share.

use agentcore_telemetry::{
    DistributedTracer, Sampler, SpanKind, SpanStatus, TraceContext, TraceId, TracerConfig,
};

const VARS: [&str; 3] = [
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_SDK_DISABLED",
];

fn with_env(vars: &[(&str, &str)], f: impl FnOnce()) {
    for v in VARS {
        std::env::remove_var(v);
    }
    for (k, v) in vars {
        std::env::set_var(k, v);
    }
    f();
    for v in VARS {
        std::env::remove_var(v);
    }
}

fn tracer(sampler: Option<Sampler>, from_env: bool) -> DistributedTracer {
    DistributedTracer::new(TracerConfig {
        sampler,
        from_env,
        span_log_capacity: 64,
        ..TracerConfig::default()
    })
}

/// Whether a root span is recorded, and whether a child of an unsampled remote parent is.
fn decisions(t: &DistributedTracer) -> (bool, bool) {
    let root = t.start_span("root", SpanKind::Internal, []);
    let root_sampled = root.is_recording();
    t.finish_span(root, SpanStatus::Ok, None);
    let remote = TraceContext::new(
        TraceId::random(),
        agentcore_telemetry::SpanId::from_u64(7),
        false,
    );
    let _attached = t.attach(remote);
    let child = t.start_span("child", SpanKind::Server, []);
    let child_sampled = child.is_recording();
    t.finish_span(child, SpanStatus::Ok, None);
    (root_sampled, child_sampled)
}

#[test]
fn the_environment_chooses_the_sampler_unless_the_code_does() {
    // Unset: parentbased_always_on.
    with_env(&[], || {
        let t = tracer(None, true);
        assert_eq!(t.sampler(), Sampler::default());
        assert_eq!(decisions(&t), (true, false));
    });
    // always_off from the environment: nothing recorded.
    with_env(&[("OTEL_TRACES_SAMPLER", "always_off")], || {
        let t = tracer(None, true);
        assert_eq!(t.sampler(), Sampler::always_off());
        assert_eq!(decisions(&t), (false, false));
        assert_eq!(t.get_metrics().total_spans, 0);
    });
    // always_on (not parent-based): the child of an unsampled remote parent is recorded.
    with_env(&[("OTEL_TRACES_SAMPLER", "always_on")], || {
        assert_eq!(decisions(&tracer(None, true)), (true, true));
    });
    // A ratio with its argument.
    with_env(
        &[
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
        ],
        || assert_eq!(tracer(None, true).sampler(), Sampler::ratio(0.25)),
    );
    // The code's sampler beats the environment's.
    with_env(&[("OTEL_TRACES_SAMPLER", "always_off")], || {
        let t = tracer(Some(Sampler::always_on()), true);
        assert_eq!(decisions(&t), (true, true));
    });
    // `from_env: false`: the environment is not read.
    with_env(&[("OTEL_TRACES_SAMPLER", "always_off")], || {
        assert_eq!(tracer(None, false).sampler(), Sampler::default());
    });
    // OTEL_SDK_DISABLED=true: nothing is recorded, whatever the code or the sampler says...
    with_env(
        &[
            ("OTEL_SDK_DISABLED", "TRUE"),
            ("OTEL_TRACES_SAMPLER", "always_on"),
        ],
        || {
            let t = tracer(Some(Sampler::always_on()), true);
            assert_eq!(decisions(&t), (false, false));
        },
    );
    // ... unless the code asked not to read the environment.
    with_env(&[("OTEL_SDK_DISABLED", "true")], || {
        assert_eq!(decisions(&tracer(None, false)), (true, false));
    });
    // Unknown, remote and malformed values: the default runs (the warning goes to stderr).
    for bad in ["sometimes", "jaeger_remote", "xray", "🚀"] {
        with_env(&[("OTEL_TRACES_SAMPLER", bad)], || {
            assert_eq!(tracer(None, true).sampler(), Sampler::default(), "{bad:?}");
        });
    }
    with_env(
        &[
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "2"),
        ],
        || assert_eq!(tracer(None, true).sampler(), Sampler::always_on()),
    );
}

/// The specification's rule for enum values: "Enum values SHOULD be interpreted in a
/// case-insensitive manner." Read through `Sampler::from_env_lookup`, not the process
/// environment, so it does not race the test above.
#[test]
fn otel_traces_sampler_values_are_case_insensitive() {
    let read = |value: &'static str| {
        Sampler::from_env_lookup(move |name| {
            (name == "OTEL_TRACES_SAMPLER").then(|| value.to_string())
        })
    };
    for (value, want) in [
        ("ALWAYS_OFF", Sampler::always_off()),
        ("Always_On", Sampler::always_on()),
        ("TraceIdRatio", Sampler::trace_id_ratio(1.0)),
        (
            " ParentBased_Always_Off ",
            Sampler::parent_based(Sampler::always_off()),
        ),
        ("PARENTBASED_ALWAYS_ON", Sampler::default()),
        ("ParentBased_TraceIdRatio", Sampler::ratio(1.0)),
    ] {
        let got = read(value);
        assert_eq!(got.sampler, Some(want), "{value:?}: {:?}", got.warnings);
        assert!(got.warnings.is_empty(), "{value:?}: {:?}", got.warnings);
    }
    // The argument goes with a ratio sampler whatever its case.
    let got = Sampler::from_env_lookup(|name| match name {
        "OTEL_TRACES_SAMPLER" => Some("TRACEIDRATIO".into()),
        "OTEL_TRACES_SAMPLER_ARG" => Some("0.5".into()),
        _ => None,
    });
    assert_eq!(got.sampler, Some(Sampler::trace_id_ratio(0.5)));
    // Remote samplers are recognised in any case; warnings quote the value as given.
    for value in ["JAEGER_REMOTE", "ParentBased_Jaeger_Remote", "XRay"] {
        let got = read(value);
        assert_eq!(got.sampler, None, "{value:?}");
        assert_eq!(got.warnings.len(), 1, "{value:?}: {:?}", got.warnings);
        let warning = &got.warnings[0];
        assert!(
            warning.starts_with(&format!("OTEL_TRACES_SAMPLER={value:?}: remote samplers")),
            "{warning}"
        );
    }
    let got = read("Sometimes");
    assert_eq!(got.sampler, None);
    assert!(
        got.warnings[0].starts_with("OTEL_TRACES_SAMPLER=\"Sometimes\": unknown sampler"),
        "{:?}",
        got.warnings
    );
}

/// A value of `OTEL_SDK_DISABLED` other than "true" or "false" (any case) is read as false
/// with a warning ("If any value other than a true value, case-insensitive string "false",
/// empty, or unset is used, a warning SHOULD be logged to inform users about the fallback to
/// false being applied"). The tracer reads the variable through `Sampler::from_env_lookup`
/// whether or not export is configured, so the warning must come from there: it used to be
/// left to `ExportConfig`, which a tracer without an OTLP endpoint never reads, so
/// `OTEL_SDK_DISABLED=1` recorded everything without a word. (No process environment here.)
#[test]
fn a_non_boolean_otel_sdk_disabled_is_warned_about_by_the_sampler() {
    for v in ["1", "yes", "on", "disabled", " t "] {
        let got =
            Sampler::from_env_lookup(|name| (name == "OTEL_SDK_DISABLED").then(|| v.to_string()));
        assert!(!got.sdk_disabled, "{v:?}");
        assert_eq!(got.sampler, None, "{v:?}");
        assert_eq!(got.warnings.len(), 1, "{v:?}: {:?}", got.warnings);
        assert!(
            got.warnings[0].starts_with(&format!("OTEL_SDK_DISABLED={v:?}: ")),
            "{v:?}: {:?}",
            got.warnings
        );
    }
    for v in ["false", "FALSE", "", "  "] {
        let got =
            Sampler::from_env_lookup(|name| (name == "OTEL_SDK_DISABLED").then(|| v.to_string()));
        assert!(!got.sdk_disabled, "{v:?}");
        assert!(got.warnings.is_empty(), "{v:?}: {:?}", got.warnings);
    }
}

/// "Any value that represents a Boolean MUST be set to true only by the case-insensitive
/// string "true" [...] An implementation MUST NOT extend this definition and define
/// additional values that are interpreted as true. Any value not explicitly defined here as
/// a true value [...] MUST be interpreted as false" (sdk-environment-variables.md, Boolean).
/// `" true"` or `"true\n"` is not the string "true": it used to disable the SDK (the value
/// was trimmed first), where it must leave it enabled, with the warning any other non-boolean
/// gets. The same for `ExportConfig` (`tests/export_env.rs`).
#[test]
fn otel_sdk_disabled_is_true_only_for_the_string_true() {
    for v in [" true", "true ", "TRUE\n", "\ttrue", " True "] {
        let got =
            Sampler::from_env_lookup(|name| (name == "OTEL_SDK_DISABLED").then(|| v.to_string()));
        assert!(!got.sdk_disabled, "{v:?} disabled the SDK");
        assert_eq!(got.sampler, None, "{v:?}");
        assert_eq!(got.warnings.len(), 1, "{v:?}: {:?}", got.warnings);
        assert!(
            got.warnings[0].starts_with(&format!("OTEL_SDK_DISABLED={v:?}: ")),
            "{v:?}: {:?}",
            got.warnings
        );
    }
    for v in ["true", "TRUE", "tRuE"] {
        let got =
            Sampler::from_env_lookup(|name| (name == "OTEL_SDK_DISABLED").then(|| v.to_string()));
        assert!(got.sdk_disabled, "{v:?}");
    }
}
