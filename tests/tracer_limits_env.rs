//! The `OTEL_*` span-limit variables (`OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT` and the seven others)
//! change what a tracer keeps (they were not read at all), unless the code sets the limits.
//! One test function: it changes the process environment, which the tests of one binary share.

use agentcore_telemetry::tracer::SPAN_LIMIT_VARIABLES;
use agentcore_telemetry::{
    DistributedTracer, KeyValue, SpanId, SpanKind, SpanLimits, TraceId, TracerConfig, Value,
};

fn with_env(vars: &[(&str, &str)], f: impl FnOnce()) {
    for v in SPAN_LIMIT_VARIABLES {
        std::env::remove_var(v);
    }
    for (k, v) in vars {
        std::env::set_var(k, v);
    }
    f();
    for v in SPAN_LIMIT_VARIABLES {
        std::env::remove_var(v);
    }
}

fn tracer(limits: Option<SpanLimits>, from_env: bool) -> DistributedTracer {
    DistributedTracer::new(TracerConfig {
        limits,
        from_env,
        span_log_capacity: 64,
        span_log_shards: 1,
        ..TracerConfig::default()
    })
}

/// What one span with 10 attributes, 10 events of 10 attributes, 10 links of 10 attributes
/// and a 10-character value (the 11th attribute) kept: (attributes, events, links, attributes of the first
/// event, attributes of the first link, the long value).
fn kept(t: &DistributedTracer) -> (usize, usize, usize, usize, usize, Option<Value>) {
    let ten = |p: &'static str| (0..10).map(move |i| KeyValue::new(format!("{p}{i}"), i));
    let mut span = t.start_span("op", SpanKind::Internal, ten("a"));
    span.set_attribute("long", "éééééééééé".to_string());
    for _ in 0..10 {
        span.add_event("e", ten("e"));
        span.add_link(TraceId::random(), SpanId::from_u64(9).unwrap(), ten("l"));
    }
    let id = span.span_id();
    span.end();
    let r = t.get_span_by_id(id).expect("recorded");
    (
        r.attributes.len(),
        r.events.len(),
        r.links.len(),
        r.events.first().map_or(0, |e| e.attributes.len()),
        r.links.first().map_or(0, |l| l.attributes.len()),
        r.attribute("long").cloned(),
    )
}

#[test]
fn the_environment_sets_the_span_limits_unless_the_code_does() {
    let whole = Value::from("éééééééééé");
    // Unset: the OpenTelemetry defaults (128 each, no length limit).
    with_env(&[], || {
        let t = tracer(None, true);
        assert_eq!(t.span_limits(), SpanLimits::default());
        assert_eq!(kept(&t), (11, 10, 10, 10, 10, Some(whole)));
    });
    // Every model-specific variable.
    with_env(
        &[
            ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "4"),
            ("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "3"),
            ("OTEL_SPAN_EVENT_COUNT_LIMIT", "2"),
            ("OTEL_SPAN_LINK_COUNT_LIMIT", "3"),
            ("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", "5"),
            ("OTEL_LINK_ATTRIBUTE_COUNT_LIMIT", "6"),
        ],
        || {
            let t = tracer(None, true);
            assert_eq!(kept(&t), (4, 2, 3, 5, 6, None));
            assert_eq!(t.span_limits().max_attribute_value_len, Some(3));
        },
    );
    // The long value, with room for it among the attributes: 3 characters (6 bytes).
    with_env(
        &[
            ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "3"),
            ("OTEL_ATTRIBUTE_COUNT_LIMIT", "64"),
        ],
        || {
            let t = tracer(None, true);
            assert_eq!(kept(&t).5, Some(Value::from("ééé")));
            assert_eq!(t.span_limits().max_attributes, 64);
        },
    );
    // The model-specific variable wins over the general one; an invalid one counts as unset,
    // so the general one applies (not the default).
    with_env(
        &[
            ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "7"),
            ("OTEL_ATTRIBUTE_COUNT_LIMIT", "2"),
            ("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "ten"),
            ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "8"),
        ],
        || {
            let l = tracer(None, true).span_limits();
            assert_eq!(l.max_attributes, 7);
            assert_eq!(l.max_attribute_value_len, Some(8));
            // An event's and a link's attributes fall back to the general limit too.
            assert_eq!(
                (l.max_attributes_per_event, l.max_attributes_per_link),
                (2, 2)
            );
        },
    );
    // Their own variables win over it; an invalid general value is warned about once.
    with_env(
        &[
            ("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", "5"),
            ("OTEL_ATTRIBUTE_COUNT_LIMIT", "many"),
        ],
        || {
            let read = SpanLimits::from_env_lookup(|name| std::env::var(name).ok());
            let l = read.limits;
            assert_eq!(
                (l.max_attributes_per_event, l.max_attributes_per_link),
                (5, 128)
            );
            assert_eq!(l.max_attributes, 128);
            assert_eq!(read.warnings.len(), 1, "{:?}", read.warnings);
        },
    );
    // 0 is a limit (nothing kept); negative, too large, fractional or empty values are not.
    with_env(
        &[
            ("OTEL_SPAN_EVENT_COUNT_LIMIT", "0"),
            ("OTEL_SPAN_LINK_COUNT_LIMIT", "-1"),
            ("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", "2147483648"),
            ("OTEL_LINK_ATTRIBUTE_COUNT_LIMIT", "1.5"),
            ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "  "),
        ],
        || {
            let t = tracer(None, true);
            let l = t.span_limits();
            assert_eq!(l.max_events, 0);
            assert_eq!(
                (
                    l.max_links,
                    l.max_attributes_per_event,
                    l.max_attributes_per_link
                ),
                (128, 128, 128)
            );
            assert_eq!(kept(&t).1, 0);
            let read = SpanLimits::from_env_lookup(|name| std::env::var(name).ok());
            assert_eq!(read.limits, l);
            assert_eq!(read.warnings.len(), 3, "{:?}", read.warnings);
        },
    );
    // Limits set in code, or `from_env: false`: the variables are not read.
    with_env(&[("OTEL_SPAN_EVENT_COUNT_LIMIT", "1")], || {
        let coded = SpanLimits {
            max_events: 5,
            ..SpanLimits::default()
        };
        assert_eq!(tracer(Some(coded), true).span_limits(), coded);
        assert_eq!(tracer(None, false).span_limits(), SpanLimits::default());
        assert_eq!(tracer(None, true).span_limits().max_events, 1);
    });
}
