//! Configuration by the standard `OTEL_*` environment variables: one test per variable,
//! valid and malformed values. Invalid values are ignored with a warning naming the
//! variable (the specification's rule); unsupported ones (`grpc`, `zipkin`, `https://`
//! without TLS) are refused with an error naming the variable. Nothing
//! panics. The sampler's variables are the tracer's (`src/tracer/sampler.rs` tests them,
//! `tests/tracer_sampler_env.rs` their effect on a tracer).
#![cfg(feature = "otlp")]

mod support;

use std::collections::HashMap;
use std::time::Duration;

use agentcore_telemetry::export::otlp::{Compression, Protocol};
use agentcore_telemetry::export::{ConfigError, ExportConfig, FromEnv, TracesExporter, VARIABLES};

fn env(vars: &[(&str, &str)]) -> Result<FromEnv, ConfigError> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    ExportConfig::from_lookup(|k| map.get(k).cloned())
}

fn ok(vars: &[(&str, &str)]) -> ExportConfig {
    let r = env(vars).unwrap();
    assert!(r.warnings.is_empty(), "{vars:?}: {:?}", r.warnings);
    r.config
}

/// The value is ignored (default kept) with one warning naming `var`.
fn ignored(vars: &[(&str, &str)], var: &str) -> ExportConfig {
    let r = env(vars).unwrap_or_else(|e| panic!("{vars:?}: refused: {e}"));
    assert_eq!(r.warnings.len(), 1, "{vars:?}: {:?}", r.warnings);
    assert_eq!(r.warnings[0].variable, var);
    assert!(r.warnings[0].to_string().starts_with(&format!("{var}=")));
    r.config
}

fn refused(vars: &[(&str, &str)], var: &str) -> ConfigError {
    let e = env(vars).expect_err("must be refused");
    assert_eq!(e.variable, var, "{e}");
    e
}

#[test]
fn defaults_with_nothing_set() {
    let c = ok(&[]);
    assert_eq!(c, ExportConfig::default());
    assert_eq!(c.endpoint, "http://localhost:4318/v1/traces");
    assert_eq!(c.timeout, Duration::from_secs(10));
    assert_eq!(c.batch.max_queue_size, 2048);
    // Empty values are the same as unset ones.
    let empty: Vec<(&str, &str)> = VARIABLES.iter().map(|v| (*v, "")).collect();
    assert_eq!(ok(&empty), ExportConfig::default());
}

#[test]
fn otel_sdk_disabled() {
    assert!(ok(&[("OTEL_SDK_DISABLED", "true")]).disabled);
    assert!(ok(&[("OTEL_SDK_DISABLED", "TRUE")]).disabled);
    assert!(!ok(&[("OTEL_SDK_DISABLED", "false")]).disabled);
    // Only "true" is true; anything else is false, with a warning.
    assert!(!ignored(&[("OTEL_SDK_DISABLED", "1")], "OTEL_SDK_DISABLED").disabled);
    assert!(!ignored(&[("OTEL_SDK_DISABLED", "yes")], "OTEL_SDK_DISABLED").disabled);
    // Only the string "true" (any case): "MUST NOT extend this definition", so not with
    // whitespace around it either (it used to be trimmed, and disabled export).
    for v in [" true", "true ", "TRUE\n", " True "] {
        assert!(
            !ignored(&[("OTEL_SDK_DISABLED", v)], "OTEL_SDK_DISABLED").disabled,
            "{v:?}"
        );
    }
}

#[test]
fn otel_traces_exporter() {
    let e = |v| ok(&[("OTEL_TRACES_EXPORTER", v)]).exporter;
    assert_eq!(e("otlp"), TracesExporter::Otlp);
    assert_eq!(e("console"), TracesExporter::Console);
    assert_eq!(e("otlp/stdout"), TracesExporter::Console);
    assert_eq!(e("none"), TracesExporter::None);
    assert_eq!(e(" OTLP , otlp "), TracesExporter::Otlp);
    let c = ignored(
        &[("OTEL_TRACES_EXPORTER", "carrier-pigeon")],
        "OTEL_TRACES_EXPORTER",
    );
    assert_eq!(c.exporter, TracesExporter::Otlp);
    // Zipkin and Jaeger are reached over OTLP; the error says how.
    let zipkin = refused(
        &[("OTEL_TRACES_EXPORTER", "zipkin")],
        "OTEL_TRACES_EXPORTER",
    );
    assert!(zipkin.to_string().contains("zipkin exporter"), "{zipkin}");
    let jaeger = refused(
        &[("OTEL_TRACES_EXPORTER", "jaeger")],
        "OTEL_TRACES_EXPORTER",
    );
    assert!(jaeger.to_string().contains("4318"), "{jaeger}");
    refused(
        &[("OTEL_TRACES_EXPORTER", "otlp,console")],
        "OTEL_TRACES_EXPORTER",
    );
}

/// "By default the standard output exporter SHOULD be paired with a simple processor"
/// (trace/sdk_exporters/stdout.md); the OTLP file exporter (`otlp/stdout`) "with a batching
/// processor" (protocol/file-exporter.md). `console` is a batch of one span, unless
/// `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` says otherwise.
#[test]
fn console_pairs_with_one_span_per_export_and_otlp_stdout_with_batches() {
    let c = ok(&[("OTEL_TRACES_EXPORTER", "console")]);
    assert_eq!(c.batch.max_export_batch_size, 1);
    let c = ok(&[("OTEL_TRACES_EXPORTER", "otlp/stdout")]);
    assert_eq!(c.batch.max_export_batch_size, 512);
    let c = ok(&[
        ("OTEL_TRACES_EXPORTER", "console"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "64"),
    ]);
    assert_eq!(c.batch.max_export_batch_size, 64);
    let c = ok(&[("OTEL_TRACES_EXPORTER", "otlp")]);
    assert_eq!(c.batch.max_export_batch_size, 512);
}

/// A list that names no exporter at all (`,`) is a value that is set and not empty, and that
/// the implementation does not recognize: "For variables accepting an enum value, if the user
/// provides a value the implementation does not recognize, the implementation MUST generate a
/// warning and gracefully ignore the setting." It used to be ignored without a word (as a
/// header list of `,` is not: `otel_exporter_otlp_headers`).
#[test]
fn an_exporter_list_naming_no_exporter_is_warned_about() {
    for v in [",", " , ", ",,\t,"] {
        let c = ignored(&[("OTEL_TRACES_EXPORTER", v)], "OTEL_TRACES_EXPORTER");
        assert_eq!(c.exporter, TracesExporter::Otlp, "{v:?}");
    }
}

#[test]
fn otel_exporter_otlp_endpoint() {
    // Examples 1 and 3 of protocol/exporter.md: the signal path is appended, one '/'.
    let e = |v| ok(&[("OTEL_EXPORTER_OTLP_ENDPOINT", v)]).endpoint;
    assert_eq!(
        e("http://collector:4318"),
        "http://collector:4318/v1/traces"
    );
    assert_eq!(
        e("http://collector:4318/"),
        "http://collector:4318/v1/traces"
    );
    assert_eq!(
        e("http://collector:4318/mypath"),
        "http://collector:4318/mypath/v1/traces"
    );
    assert_eq!(e("http://[::1]:4318"), "http://[::1]:4318/v1/traces");
    // A query is kept after the signal path ("MAY ignore" other components; it used to be
    // refused, which stopped export for a collector that needs one).
    assert_eq!(e("http://h?x=1"), "http://h/v1/traces?x=1");
    assert_eq!(
        e("http://c:4318/?tenant=a"),
        "http://c:4318/v1/traces?tenant=a"
    );
    assert_eq!(
        e("http://c:4318/otlp?a=/b"),
        "http://c:4318/otlp/v1/traces?a=/b"
    );
    for bad in [
        "collector:4318",
        "http://",
        "http://h:99999",
        "ftp://h",
        "http://h/#frag",
        "http://user@h/",
    ] {
        let err = refused(
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", bad)],
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        );
        // User info is not shown (`an_endpoint_is_named_without_its_credentials`).
        let shown = bad.replace("user@", "<redacted>@");
        assert_eq!(err.value, shown);
    }
    let err = refused(
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4318")],
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    );
    assert!(err.reason.contains("TLS"), "{err}");
}

#[test]
fn otel_exporter_otlp_traces_endpoint() {
    // Used as is (Example 2), and it beats the general one.
    let c = ok(&[
        (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://collector:4318/custom/path",
        ),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://other:4318"),
    ]);
    assert_eq!(c.endpoint, "http://collector:4318/custom/path");
    assert_eq!(
        ok(&[(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://collector:4318"
        )])
        .endpoint,
        "http://collector:4318"
    );
    refused(
        &[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "not a url")],
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    );
}

#[test]
fn otel_exporter_otlp_headers() {
    let c = ok(&[(
        "OTEL_EXPORTER_OTLP_HEADERS",
        "api-key=secret, x-scope=a%2Cb%3Dc,empty=",
    )]);
    assert_eq!(
        c.headers,
        [
            ("api-key".to_string(), "secret".to_string()),
            ("x-scope".into(), "a,b=c".into()),
            ("empty".into(), "".into())
        ]
    );
    // A malformed entry is skipped (and reported); the others are kept.
    for bad in [
        "novalue",
        "bad name=x",
        "x=%zz",
        "x=a%0Db",
        "host=evil",
        "=v",
    ] {
        let c = ignored(
            &[("OTEL_EXPORTER_OTLP_HEADERS", &format!("ok=1,{bad}"))],
            "OTEL_EXPORTER_OTLP_HEADERS",
        );
        assert_eq!(c.headers, [("ok".to_string(), "1".to_string())], "{bad}");
    }
}

/// The variable is a list of key-value pairs ("W3C Baggage" format, protocol/exporter.md), which
/// the OpenTelemetry SDKs read into a map: a key given again (in any case, as HTTP field names
/// are) keeps its first place and takes its last value. Both were sent: two `Authorization`
/// field lines, which RFC 9110 §5.3 forbids for a field that is not a list ("A sender MUST
/// NOT generate multiple field lines with the same name in a message"), and a collector may
/// check either. Overriding one entry by appending to the variable is a common idiom.
#[test]
fn a_header_given_twice_takes_its_last_value() {
    for variable in [
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    ] {
        let c = ok(&[(
            variable,
            "authorization=Bearer%20old,x-tenant=a,Authorization=Bearer%20new",
        )]);
        assert_eq!(
            c.headers,
            [
                ("Authorization".to_string(), "Bearer new".to_string()),
                ("x-tenant".into(), "a".into()),
            ],
            "{variable}"
        );
    }
}

#[test]
fn otel_exporter_otlp_traces_headers() {
    let c = ok(&[
        ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "a=traces"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "a=general,b=general"),
    ]);
    assert_eq!(c.headers, [("a".to_string(), "traces".to_string())]);
    ignored(
        &[("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x")],
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    );
}

#[test]
fn otel_exporter_otlp_timeout() {
    let t = |v| ok(&[("OTEL_EXPORTER_OTLP_TIMEOUT", v)]).timeout;
    assert_eq!(t("2500"), Duration::from_millis(2500));
    assert_eq!(
        t("0"),
        Duration::from_millis(u64::from(u32::MAX)),
        "0 = no limit"
    );
    for bad in ["-1", "1.5", "10s", "99999999999"] {
        let c = ignored(
            &[("OTEL_EXPORTER_OTLP_TIMEOUT", bad)],
            "OTEL_EXPORTER_OTLP_TIMEOUT",
        );
        assert_eq!(c.timeout, Duration::from_secs(10), "{bad}");
    }
}

#[test]
fn otel_exporter_otlp_traces_timeout() {
    let c = ok(&[
        ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "700"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "900"),
    ]);
    assert_eq!(c.timeout, Duration::from_millis(700));
    ignored(
        &[("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "soon")],
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    );
}

#[test]
fn otel_exporter_otlp_protocol() {
    let p = |v| ok(&[("OTEL_EXPORTER_OTLP_PROTOCOL", v)]).protocol;
    assert_eq!(p("http/protobuf"), Protocol::HttpProtobuf);
    assert_eq!(p("http/json"), Protocol::HttpJson);
    let err = refused(
        &[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")],
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    );
    assert!(err.reason.contains("gRPC is not supported"), "{err}");
    let c = ignored(
        &[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/xml")],
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    );
    assert_eq!(c.protocol, Protocol::HttpProtobuf);
}

#[test]
fn otel_exporter_otlp_traces_protocol() {
    let c = ok(&[
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
    ]);
    assert_eq!(
        c.protocol,
        Protocol::HttpJson,
        "the signal-specific one wins"
    );
    refused(
        &[("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc")],
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    );
}

#[test]
fn otel_exporter_otlp_compression() {
    assert_eq!(
        ok(&[("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")]).compression,
        Compression::Gzip
    );
    assert_eq!(
        ok(&[("OTEL_EXPORTER_OTLP_COMPRESSION", "none")]).compression,
        Compression::None
    );
    let c = ignored(
        &[("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd")],
        "OTEL_EXPORTER_OTLP_COMPRESSION",
    );
    assert_eq!(c.compression, Compression::None);
}

#[test]
fn otel_exporter_otlp_traces_compression() {
    let c = ok(&[
        ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "gzip"),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "none"),
    ]);
    assert_eq!(c.compression, Compression::Gzip);
    ignored(
        &[("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "GZIP!")],
        "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
    );
}

/// The specification's rule for enum values: "Enum values SHOULD be interpreted in a
/// case-insensitive manner." Warnings and errors quote the value as it was given.
#[test]
fn enum_values_are_case_insensitive() {
    for var in [
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    ] {
        let p = |v| ok(&[(var, v)]).protocol;
        assert_eq!(p("HTTP/JSON"), Protocol::HttpJson, "{var}");
        assert_eq!(p(" Http/Json "), Protocol::HttpJson, "{var}");
        assert_eq!(p("HTTP/PROTOBUF"), Protocol::HttpProtobuf, "{var}");
        let err = refused(&[(var, "GRPC")], var);
        assert!(err.reason.contains("gRPC is not supported"), "{err}");
        assert_eq!(err.value, "GRPC");
        let c = env(&[(var, "HTTP/XML")]).unwrap();
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(
            c.warnings[0]
                .to_string()
                .starts_with(&format!("{var}=\"HTTP/XML\": unknown protocol")),
            "{}",
            c.warnings[0]
        );
    }
    for var in [
        "OTEL_EXPORTER_OTLP_COMPRESSION",
        "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
    ] {
        let c = |v| ok(&[(var, v)]).compression;
        assert_eq!(c("GZIP"), Compression::Gzip, "{var}");
        assert_eq!(c(" GZip "), Compression::Gzip, "{var}");
        assert_eq!(c("NONE"), Compression::None, "{var}");
        let c = env(&[(var, "ZSTD")]).unwrap();
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(
            c.warnings[0]
                .to_string()
                .starts_with(&format!("{var}=\"ZSTD\": unknown compression")),
            "{}",
            c.warnings[0]
        );
    }
    let e = |v| ok(&[("OTEL_TRACES_EXPORTER", v)]).exporter;
    assert_eq!(e("Console"), TracesExporter::Console);
    assert_eq!(e("OTLP/STDOUT"), TracesExporter::Console);
    assert_eq!(e("None"), TracesExporter::None);
    let zipkin = refused(
        &[("OTEL_TRACES_EXPORTER", "Zipkin")],
        "OTEL_TRACES_EXPORTER",
    );
    assert!(zipkin.to_string().contains("zipkin exporter"), "{zipkin}");
    let jaeger = refused(
        &[("OTEL_TRACES_EXPORTER", "JAEGER")],
        "OTEL_TRACES_EXPORTER",
    );
    assert!(jaeger.to_string().contains("4318"), "{jaeger}");
}

#[test]
fn otel_service_name() {
    let c = ok(&[
        ("OTEL_SERVICE_NAME", "agent-runtime"),
        ("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attributes"),
    ]);
    assert_eq!(
        c.service_name.as_deref(),
        Some("agent-runtime"),
        "it beats the attribute"
    );
    let r = c.resource(Some("code-default"));
    assert_eq!(r.get("service.name"), Some("agent-runtime"));
    // Unset: the code's default, else unknown_service:<executable>.
    assert_eq!(
        ok(&[]).resource(Some("agentcore")).get("service.name"),
        Some("agentcore")
    );
    assert!(ok(&[])
        .resource(None)
        .get("service.name")
        .unwrap()
        .starts_with("unknown_service:export_env"));
}

#[test]
fn otel_resource_attributes() {
    let c = ok(&[(
        "OTEL_RESOURCE_ATTRIBUTES",
        "service.name=svc, deployment.environment.name=prod,team=a%2Cb%3Dc%20d,,",
    )]);
    assert_eq!(c.service_name.as_deref(), Some("svc"));
    let r = c.resource(None);
    assert_eq!(r.get("deployment.environment.name"), Some("prod"));
    assert_eq!(r.get("team"), Some("a,b=c d"));
    assert_eq!(r.get("telemetry.sdk.language"), Some("rust"));
    // Any malformed entry: the whole variable is ignored, with one warning.
    for bad in ["a=1,novalue", "a=1,=empty-key", "a=1,b=%zz", "a=1,b=%ff%fe"] {
        let c = ignored(
            &[("OTEL_RESOURCE_ATTRIBUTES", bad)],
            "OTEL_RESOURCE_ATTRIBUTES",
        );
        assert!(c.resource_attributes.is_empty(), "{bad}");
    }
}

/// Many distinct resource attributes (400 KiB of `kN=v,`, 45,000 keys or so) are all read,
/// and a repeated key keeps its first place and its last value, in the config and in the
/// resource. They are read through a key index since d526217: each key was compared with
/// every key before it, once in `from_lookup` and again in `resource()` (400 KiB took about
/// 30 s, debug build; 0.15 s with the index). No wall-clock assertion here (timings belong to
/// benchmarks); a quadratic reader shows as this test's time.
#[test]
fn many_resource_attributes_keep_first_place_and_last_value() {
    let mut value = String::new();
    let mut n = 0;
    while value.len() < 400 * 1024 {
        value.push_str(&format!("k{n}=v{n},"));
        n += 1;
    }
    value.push_str("k1=again,service.name=svc");
    let c = ok(&[("OTEL_RESOURCE_ATTRIBUTES", &value)]);
    let r = c.resource(None);
    assert_eq!(c.resource_attributes.len(), n);
    assert_eq!(r.attributes().len(), n + 4);
    assert_eq!(c.resource_attributes[1], ("k1".into(), "again".into()));
    assert_eq!(r.get("k1"), Some("again"));
    assert_eq!(r.get("service.name"), Some("svc"));
    assert_eq!(r.attributes()[5].key, "k1");
}

/// `OTEL_RESOURCE_ATTRIBUTES` of commas alone (`,`) is set and not empty, yet holds no
/// `key1=value1` pair: a malformed value, which "SHOULD be discarded and an error SHOULD be
/// reported" (resource/sdk.md, "Specifying resource information via an environment
/// variable"). It was discarded without a word, where a header list or an exporter list of
/// commas alone is warned about (`an_exporter_list_naming_no_exporter_is_warned_about`).
#[test]
fn resource_attributes_of_no_pair_are_warned_about() {
    for v in [",", " , ", ",,\t,"] {
        let c = ignored(
            &[("OTEL_RESOURCE_ATTRIBUTES", v)],
            "OTEL_RESOURCE_ATTRIBUTES",
        );
        assert!(c.resource_attributes.is_empty(), "{v:?}");
        assert_eq!(c.service_name, None, "{v:?}");
    }
}

#[test]
fn otel_bsp_schedule_delay() {
    assert_eq!(
        ok(&[("OTEL_BSP_SCHEDULE_DELAY", "250")])
            .batch
            .schedule_delay,
        Duration::from_millis(250)
    );
    assert_eq!(
        ok(&[("OTEL_BSP_SCHEDULE_DELAY", "0")]).batch.schedule_delay,
        Duration::ZERO
    );
    for bad in ["-5", "5s", "2147483648"] {
        let c = ignored(
            &[("OTEL_BSP_SCHEDULE_DELAY", bad)],
            "OTEL_BSP_SCHEDULE_DELAY",
        );
        assert_eq!(c.batch.schedule_delay, Duration::from_secs(5));
    }
}

#[test]
fn otel_bsp_export_timeout() {
    assert_eq!(
        ok(&[("OTEL_BSP_EXPORT_TIMEOUT", "1000")])
            .batch
            .export_timeout,
        Duration::from_secs(1)
    );
    assert_eq!(
        ok(&[("OTEL_BSP_EXPORT_TIMEOUT", "0")]).batch.export_timeout,
        Duration::from_millis(u64::from(u32::MAX))
    );
    let c = ignored(
        &[("OTEL_BSP_EXPORT_TIMEOUT", "x")],
        "OTEL_BSP_EXPORT_TIMEOUT",
    );
    assert_eq!(c.batch.export_timeout, Duration::from_secs(30));
}

#[test]
fn otel_bsp_max_queue_size() {
    assert_eq!(
        ok(&[("OTEL_BSP_MAX_QUEUE_SIZE", "4096")])
            .batch
            .max_queue_size,
        4096
    );
    for bad in ["0", "-1", "lots"] {
        let c = ignored(
            &[("OTEL_BSP_MAX_QUEUE_SIZE", bad)],
            "OTEL_BSP_MAX_QUEUE_SIZE",
        );
        assert_eq!(c.batch.max_queue_size, 2048, "{bad}");
    }
}

#[test]
fn otel_bsp_max_export_batch_size() {
    assert_eq!(
        ok(&[("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "100")])
            .batch
            .max_export_batch_size,
        100
    );
    let c = ignored(
        &[("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "0")],
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
    );
    assert_eq!(c.batch.max_export_batch_size, 512);
    // Must be at most the queue size: clamped, reported.
    let c = ignored(
        &[
            ("OTEL_BSP_MAX_QUEUE_SIZE", "100"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "512"),
        ],
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
    );
    assert_eq!(
        (c.batch.max_queue_size, c.batch.max_export_batch_size),
        (100, 100)
    );
}

#[test]
fn every_variable_survives_hostile_values() {
    let hostile = [
        "\u{0}",
        "\r\n",
        "%",
        "=",
        ",,,",
        "🚀",
        "9999999999999999999999999999",
        "-0",
        &"x".repeat(100_000),
    ];
    for var in VARIABLES {
        for v in hostile {
            // Refused or ignored with warnings: never a panic.
            let _ = env(&[(var, v)]);
        }
    }
}

/// A list variable of many bad entries (100 KiB of `x,`: 51,200 of them) gives a bounded
/// number of warnings. Each bad header entry and each unknown exporter was a warning
/// of its own, each holding the whole value (a header list's redacted again for each): for
/// the header lists, 51,200 warnings of ~550 KB, about 28 GB, built in quadratic time (8 KB of
/// `x,` took 7.6 s and 176 MB, a debug build); for `OTEL_TRACES_EXPORTER`, 5 GB. The
/// first few bad entries are still named one by one, then one warning counts the rest.
#[test]
fn a_list_of_many_bad_entries_gives_a_bounded_number_of_warnings() {
    for var in [
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        "OTEL_TRACES_EXPORTER",
    ] {
        // Small first, so that the unbounded reader fails here quickly.
        for n in [1_000, 51_200] {
            let value = "x,".repeat(n);
            let r = env(&[(var, &value)]).unwrap();
            assert!(
                (2..=11).contains(&r.warnings.len()),
                "{var} with {n} bad entries: {} warnings",
                r.warnings.len()
            );
            assert!(r.warnings.iter().all(|w| w.variable == var), "{var}");
            let last = r.warnings.last().unwrap();
            let more = format!("{} more", n - (r.warnings.len() - 1));
            assert!(last.reason.contains(&more), "{var}: {last}");
            assert!(r.config.headers.is_empty());
            assert_eq!(r.config.exporter, TracesExporter::Otlp);
        }
    }
}

#[test]
fn from_env_reads_the_process_environment_and_start_honours_it() {
    // The only test in this binary that touches the process environment.
    std::env::set_var("OTEL_TRACES_EXPORTER", "none");
    std::env::set_var("OTEL_BSP_MAX_QUEUE_SIZE", "77");
    let r = ExportConfig::from_env().unwrap();
    std::env::remove_var("OTEL_TRACES_EXPORTER");
    std::env::remove_var("OTEL_BSP_MAX_QUEUE_SIZE");
    assert_eq!(r.config.exporter, TracesExporter::None);
    assert_eq!(r.config.batch.max_queue_size, 77);
    let source = agentcore_telemetry::export::MemorySpanSource::new(8);
    assert!(r.config.start(source.clone(), None).unwrap().is_none());
    let disabled = ExportConfig {
        disabled: true,
        ..ExportConfig::default()
    };
    assert!(disabled.start(source.clone(), None).unwrap().is_none());
    // An endpoint set in code that the exporter cannot use is refused at start.
    let bad = ExportConfig {
        endpoint: "https://collector:4318/v1/traces".into(),
        ..ExportConfig::default()
    };
    let err = bad.start(source, None).unwrap_err();
    assert!(err.to_string().contains("TLS"), "{err}");
    #[cfg(unix)]
    values_that_are_not_utf8_are_ignored_with_a_warning();
}

/// A variable set to bytes that are not UTF-8 is an invalid value: ignored with a warning
/// naming it, like any other ("an invalid value ... is ignored with a warning"). It used to
/// read as unset without a word (`std::env::var(..).ok()` is `None` for `NotUnicode`), and a
/// signal-specific endpoint that is not UTF-8 silently gave way to the general one, sending
/// spans where the user did not ask. (Called from the one test of this binary that touches the
/// process environment.)
#[cfg(unix)]
fn values_that_are_not_utf8_are_ignored_with_a_warning() {
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;
    let bad = || OsString::from_vec(b"svc\xff".to_vec());
    std::env::set_var("OTEL_SERVICE_NAME", bad());
    std::env::set_var("OTEL_BSP_MAX_QUEUE_SIZE", bad());
    let r = ExportConfig::from_env();
    std::env::remove_var("OTEL_SERVICE_NAME");
    std::env::remove_var("OTEL_BSP_MAX_QUEUE_SIZE");
    let r = r.unwrap();
    assert_eq!(r.config.service_name, None);
    assert_eq!(r.config.batch.max_queue_size, 2048);
    let named: Vec<_> = r.warnings.iter().map(|w| &*w.variable).collect();
    assert_eq!(
        named,
        ["OTEL_SERVICE_NAME", "OTEL_BSP_MAX_QUEUE_SIZE"],
        "{:?}",
        r.warnings
    );
    assert_eq!(r.warnings[0].value, "svc\u{fffd}");
    assert!(r.warnings[0].reason.contains("UTF-8"), "{}", r.warnings[0]);

    std::env::set_var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", bad());
    std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", "http://general:4318");
    let r = ExportConfig::from_env();
    std::env::remove_var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    std::env::remove_var("OTEL_EXPORTER_OTLP_ENDPOINT");
    let err = r.expect_err("an endpoint that is not UTF-8 is not a URL: refused");
    assert_eq!(err.variable, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "{err}");
}

/// An invalid signal-specific variable is treated as not set, so the valid general one applies
/// (the specification's "treat them as not set" / "gracefully ignore the setting"), not the
/// built-in default. It used to fall back to the default: a traces timeout of `-1` beside a
/// general `500` gave 10 s, and a traces headers list of only bad entries dropped the general
/// list's `api-key`, sending requests unauthenticated.
#[test]
fn invalid_traces_variable_falls_back_to_the_general_one() {
    let c = ignored(
        &[
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "500"),
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "-1"),
        ],
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    );
    assert_eq!(c.timeout, Duration::from_millis(500));
    let c = ignored(
        &[
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "zstd"),
        ],
        "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
    );
    assert_eq!(c.compression, Compression::Gzip);
    let c = ignored(
        &[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/proto"),
        ],
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    );
    assert_eq!(c.protocol, Protocol::HttpJson);
    let c = ignored(
        &[
            ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=secret"),
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "api-key=%zz"),
        ],
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    );
    assert_eq!(c.headers, [("api-key".to_string(), "secret".to_string())]);
    // A traces list with a valid entry is used: its bad entries are not sent, and the general
    // list is not merged in.
    let c = ignored(
        &[
            ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=secret"),
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "api-key=%zz,x=1"),
        ],
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    );
    assert_eq!(c.headers, [("x".to_string(), "1".to_string())]);
    // A traces list with no entry at all is warned about and ignored too (it used to hide the
    // general list without a warning).
    let c = ignored(
        &[
            ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=secret"),
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", " , ,"),
        ],
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    );
    assert_eq!(c.headers, [("api-key".to_string(), "secret".to_string())]);
    // gRPC is still refused, from either variable.
    refused(
        &[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"),
        ],
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    );
}

/// A batch size above the queue size is invalid ("Must be less than or equal to
/// OTEL_BSP_MAX_QUEUE_SIZE"), hence ignored: the default (512) applies, capped by the queue. It
/// used to be clamped to the queue size (2048 with an invalid queue size and a batch of 4096).
#[test]
fn batch_size_above_the_queue_size_is_ignored() {
    let r = env(&[
        ("OTEL_BSP_MAX_QUEUE_SIZE", "-5"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "4096"),
    ])
    .unwrap();
    let named: Vec<_> = r.warnings.iter().map(|w| &*w.variable).collect();
    assert_eq!(
        named,
        ["OTEL_BSP_MAX_QUEUE_SIZE", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"],
        "{:?}",
        r.warnings
    );
    assert_eq!(
        (
            r.config.batch.max_queue_size,
            r.config.batch.max_export_batch_size
        ),
        (2048, 512)
    );
    let r = env(&[
        ("OTEL_BSP_MAX_QUEUE_SIZE", "100"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", " 04096"),
    ])
    .unwrap();
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert_eq!(r.warnings[0].value, " 04096", "the value as given");
    assert_eq!(
        (
            r.config.batch.max_queue_size,
            r.config.batch.max_export_batch_size
        ),
        (100, 100)
    );
}

/// "if the port is empty or not given, TCP port 80 is the default for the `http` scheme"
/// (protocol/exporter.md, Endpoint URLs for OTLP/HTTP; RFC 3986 `port = *DIGIT`). An endpoint
/// with an empty port (`http://collector:`) used to be refused ("bad port \"\""), which
/// stopped span export.
#[test]
fn an_empty_endpoint_port_is_port_80() {
    assert_eq!(
        ok(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:")]).endpoint,
        "http://collector:/v1/traces"
    );
    assert_eq!(
        ok(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://[::1]:/otlp/")]).endpoint,
        "http://[::1]:/otlp/v1/traces"
    );
    assert_eq!(
        ok(&[(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://collector:/v1/traces"
        )])
        .endpoint,
        "http://collector:/v1/traces"
    );
    // The exporter takes it too.
    let config = ok(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:")]);
    agentcore_telemetry::export::otlp::OtlpHttpExporter::new(config.otlp_config(None)).unwrap();
}

/// `OTEL_SDK_DISABLED=true`: "a no-op SDK implementation will be used for all telemetry
/// signals", and an exporter other than `otlp` does not use the OTLP settings. A setting this
/// crate refuses (`grpc`, an `https://` endpoint, `zipkin`) is refused because "any fallback
/// would send spans somewhere the user did not ask"; when no span goes over OTLP (disabled,
/// `console`, `none`) nothing is sent anywhere, so it is ignored with a warning instead. It used
/// to fail the whole configuration: `OTEL_SDK_DISABLED=true` beside an `https://` endpoint was an
/// error instead of a disabled SDK, and a pod-wide `OTEL_EXPORTER_OTLP_PROTOCOL=grpc` stopped
/// `OTEL_TRACES_EXPORTER=console`.
#[test]
fn otlp_settings_are_not_refused_when_spans_do_not_go_over_otlp() {
    let unused_otlp = [
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4318"),
        (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "https://collector:4318",
        ),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "not a url"),
    ];
    for (var, value) in unused_otlp {
        for (also, how) in [
            ("OTEL_SDK_DISABLED", "true"),
            ("OTEL_TRACES_EXPORTER", "console"),
            ("OTEL_TRACES_EXPORTER", "none"),
        ] {
            let vars = [(also, how), (var, value)];
            let r = env(&vars).unwrap_or_else(|e| panic!("{vars:?}: refused: {e}"));
            assert_eq!(r.warnings.len(), 1, "{vars:?}: {:?}", r.warnings);
            assert_eq!(r.warnings[0].variable, var, "{vars:?}");
            assert_eq!(r.config.protocol, Protocol::HttpProtobuf, "{vars:?}");
            assert_eq!(
                r.config.endpoint,
                ExportConfig::default().endpoint,
                "{vars:?}"
            );
        }
    }
    let r = env(&[
        ("OTEL_SDK_DISABLED", "true"),
        ("OTEL_TRACES_EXPORTER", "zipkin"),
    ])
    .unwrap();
    assert!(r.config.disabled);
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert_eq!(r.warnings[0].variable, "OTEL_TRACES_EXPORTER");
    // Exporting over OTLP, they are still refused.
    refused(
        &[
            ("OTEL_TRACES_EXPORTER", "otlp"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ],
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    );
    refused(
        &[
            ("OTEL_SDK_DISABLED", "false"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://c"),
        ],
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    );
}

const OTLP_CHILD: &str = "AGENTCORE_EXPORT_ENV_OTLP_CHILD";

/// The child's side of `an_explicit_otlp_exporter_starts_export`: a tracer configured from
/// the environment the parent gave it.
#[test]
fn explicit_otlp_exporter_child_process() {
    if std::env::var_os(OTLP_CHILD).is_none() {
        return; // run by `an_explicit_otlp_exporter_starts_export` only
    }
    use agentcore_telemetry::{DistributedTracer, TracerConfig};
    let tracer = DistributedTracer::new(TracerConfig::default());
    assert!(
        tracer.get_metrics().export_enabled,
        "OTEL_TRACES_EXPORTER=otlp without an endpoint started no export"
    );
    let _ = tracer.shutdown(Duration::from_millis(200));
}

/// `OTEL_TRACES_EXPORTER=otlp`, set with no endpoint, exports to the specification's default
/// endpoint (`http://localhost:4318`), as any OpenTelemetry SDK does. It used to start nothing
/// and say nothing: an explicit setting without effect. (Unset, the tracer still starts no
/// export by itself: `distributed::exporting`'s unit tests.) Run in a child process, whose
/// environment this test sets without touching its own.
/// Removes from `child`'s environment every `OTEL_*` variable: those of this process's
/// environment now, and every variable the crate reads (`VARIABLES`) whatever this process
/// holds. The second part matters: `from_env_reads_the_process_environment_and_start_honours_it`
/// sets some of them for a moment on another thread, and a child spawned then inherited what
/// the snapshot of the first part had not seen (found by review helper-151; not seen to fail).
fn without_otel_variables(child: &mut std::process::Command) {
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("OTEL_") {
            child.env_remove(k);
        }
    }
    for k in VARIABLES {
        child.env_remove(k);
    }
}

#[test]
fn an_explicit_otlp_exporter_starts_export() {
    let mut child = std::process::Command::new(std::env::current_exe().unwrap());
    child
        .args([
            "--exact",
            "explicit_otlp_exporter_child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(OTLP_CHILD, "1")
        .env("OTEL_TRACES_EXPORTER", "otlp");
    without_otel_variables(&mut child);
    child.env("OTEL_TRACES_EXPORTER", "otlp");
    let out = child.output().unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

const UNSUPPORTED_CHILD: &str = "AGENTCORE_EXPORT_ENV_UNSUPPORTED_CHILD";

/// The child's side of `an_unsupported_exporter_is_reported_by_the_tracer`: a tracer configured
/// from the environment the parent gave it, which exports nothing.
#[test]
fn unsupported_exporter_child_process() {
    if std::env::var_os(UNSUPPORTED_CHILD).is_none() {
        return; // run by `an_unsupported_exporter_is_reported_by_the_tracer` only
    }
    use agentcore_telemetry::{DistributedTracer, TracerConfig};
    let tracer = DistributedTracer::new(TracerConfig::default());
    assert!(!tracer.get_metrics().export_enabled, "an exporter started");
}

/// `OTEL_TRACES_EXPORTER` naming an exporter this crate does not have (the specification's
/// Jaeger, Zipkin) or none known, with no endpoint set: the tracer starts no export, and says
/// so on standard error, as `ExportConfig::from_env` words it. It said nothing: the variable
/// was not read unless an endpoint was set too, so `OTEL_TRACES_EXPORTER=jaeger` went
/// silently without effect, against `TracerConfig::from_env`'s "ignored values are reported".
#[test]
fn an_unsupported_exporter_is_reported_by_the_tracer() {
    for (value, says) in [
        ("jaeger", "\"jaeger\" is not supported"),
        ("zipkin", "\"zipkin\" is not supported"),
        ("jaegre", "unknown exporter \"jaegre\" is ignored"),
    ] {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap());
        child
            .args([
                "--exact",
                "unsupported_exporter_child_process",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(UNSUPPORTED_CHILD, "1");
        without_otel_variables(&mut child);
        child.env("OTEL_TRACES_EXPORTER", value);
        let out = child.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{value}: {}\n{stderr}",
            String::from_utf8_lossy(&out.stdout)
        );
        let line = stderr.lines().find(|l| l.contains("OTEL_TRACES_EXPORTER"));
        assert!(
            line.is_some_and(|l| l.contains(says)),
            "OTEL_TRACES_EXPORTER={value}: no warning saying {says:?} on stderr:\n{stderr}"
        );
    }
}

/// An endpoint refused (or one whose query carries a key) is named in the error, and errors go
/// to logs: its user info and query, where URLs carry credentials, are not shown. Before, the
/// whole value was: `OTEL_EXPORTER_OTLP_ENDPOINT="https://user:s3cret@c:4318": https:// needs
/// TLS, ...` (found by an adversarial review).
#[test]
fn an_endpoint_is_named_without_its_credentials() {
    use agentcore_telemetry::export::otlp::{OtlpHttpConfig, OtlpHttpExporter};
    let secret = "s3cret";
    for var in [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ] {
        for value in [
            "https://user:s3cret@c:4318",
            "http://user:s3cret@c:4318/v1/traces",
            "https://c:4318/v1/traces?api_key=s3cret",
            "user:s3cret@c:4318",
        ] {
            let e = refused(&[(var, value)], var);
            let shown = e.to_string();
            assert!(!shown.contains(secret), "{var}={value:?}: {shown}");
            assert!(shown.contains("<redacted>"), "{var}={value:?}: {shown}");
        }
    }
    let e = OtlpHttpExporter::new(OtlpHttpConfig {
        endpoint: "http://user:s3cret@c:4318/v1/traces".into(),
        ..OtlpHttpConfig::default()
    })
    .expect_err("user info is refused");
    assert!(!e.to_string().contains(secret), "{e}");
}
