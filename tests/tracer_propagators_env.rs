//! `OTEL_PROPAGATORS` asks an OpenTelemetry SDK for its global propagators. This crate's
//! propagation is explicit (W3C trace context and baggage through `TraceContext::inject` and
//! `extract`), so a tracer that reads the environment says on standard error when the variable
//! asks for anything else, once, naming what is not applied ("Invalid or unrecognized input
//! MUST be logged"); before, it was ignored in silence, and `OTEL_PROPAGATORS=tracecontext`
//! (set to keep baggage in the process) left `inject` writing `baggage` without a word.
//!
//! Each case runs the ignored `child` test in a child process with the variable set, and reads
//! its standard error.

use agentcore_telemetry::{DistributedTracer, TracerConfig};
use std::process::Command;

/// Run by the test below only: builds one tracer, reading the environment unless
/// `CHILD_FROM_ENV=0`.
#[test]
#[ignore = "run by the tests of this file in a child process"]
fn child() {
    let from_env = std::env::var("CHILD_FROM_ENV").as_deref() != Ok("0");
    let tracer = DistributedTracer::new(TracerConfig {
        from_env,
        ..TracerConfig::default()
    });
    drop(tracer);
}

/// The `child` test of this binary, in an environment without this process's `OTEL_*`
/// variables.
fn child_command() -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "child",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("OTEL_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// The tracer's warning lines about `OTEL_PROPAGATORS` when the child runs with `value`.
fn warnings(value: Option<&str>, from_env: bool) -> Vec<String> {
    let mut cmd = child_command();
    if let Some(v) = value {
        cmd.env("OTEL_PROPAGATORS", v);
    }
    cmd.env("CHILD_FROM_ENV", if from_env { "1" } else { "0" });
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    stderr
        .lines()
        .filter(|l| l.starts_with("WARN agentcore_telemetry::tracer:"))
        .filter(|l| l.contains("OTEL_PROPAGATORS"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_propagators_value_this_crate_does_not_apply_is_warned_about_once() {
    let w = warnings(Some("tracecontext"), true);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("OTEL_PROPAGATORS=\"tracecontext\": not applied"),
        "{w:?}"
    );
    assert!(
        w[0].contains("`baggage` is not listed, but inject still writes `baggage`"),
        "{w:?}"
    );

    let w = warnings(Some("b3multi,tracecontext,baggage"), true);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("`b3multi` is not supported"), "{w:?}");
}

#[test]
fn what_this_crate_does_and_a_tracer_not_reading_the_environment_are_silent() {
    for value in [
        None,
        Some(""),
        Some("tracecontext,baggage"),
        Some("Baggage, TraceContext"),
    ] {
        assert_eq!(warnings(value, true), Vec::<String>::new(), "{value:?}");
    }
    assert_eq!(warnings(Some("b3"), false), Vec::<String>::new());
}

#[cfg(unix)]
#[test]
fn a_value_that_is_not_utf8_is_warned_about_as_such() {
    use std::os::unix::ffi::OsStrExt;
    let mut cmd = child_command();
    cmd.env(
        "OTEL_PROPAGATORS",
        std::ffi::OsStr::from_bytes(b"tracecontext\xff"),
    );
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("WARN agentcore_telemetry::tracer:")
                && l.contains("OTEL_PROPAGATORS=")
                && l.contains("not valid UTF-8")),
        "{stderr}"
    );
}
