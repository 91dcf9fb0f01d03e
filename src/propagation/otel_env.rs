//! `OTEL_PROPAGATORS`, the OpenTelemetry variable that chooses an SDK's *global* propagators,
//! and what this crate does with it.
//!
//! This crate has no global propagator to configure: propagation is explicit. The caller
//! writes and reads W3C Trace Context and W3C Baggage headers with
//! [`TraceContext::inject`](crate::TraceContext::inject),
//! [`extract`](crate::TraceContext::extract) and
//! [`extract_baggage`](crate::TraceContext::extract_baggage) (or [`Propagation`](super::Propagation)),
//! whatever the variable lists. So a tracer that reads the environment (`TracerConfig::from_env`)
//! checks the variable only to say so when it asks for anything else, as the specification
//! requires ("Invalid or unrecognized input MUST be logged"): another format (`b3`, `jaeger`,
//! ...), `none`, or one of the two left out (`tracecontext` alone, to keep baggage in the
//! process, is the case where silence would be costly: `inject` still writes `baggage`).
//!
//! The value is read as the specification's enum lists are: comma-separated, spaces around
//! entries ignored, case-insensitive, repeats counted once, empty entries skipped; empty or
//! unset is the default, `tracecontext,baggage`.

/// The variable's name.
pub(crate) const VARIABLE: &str = "OTEL_PROPAGATORS";

/// The formats the specification names that this crate does not write or read.
const OTHER_FORMATS: [&str; 5] = ["b3", "b3multi", "jaeger", "xray", "ottrace"];

/// The warning for `OTEL_PROPAGATORS=value`, or `None` when it asks for what this crate does
/// (W3C trace context and baggage, or the default).
pub(crate) fn warning(value: &str) -> Option<String> {
    let mut listed: Vec<String> = Vec::new();
    for entry in value.split(',') {
        let entry = entry.trim().to_ascii_lowercase();
        if !entry.is_empty() && !listed.contains(&entry) {
            listed.push(entry);
        }
    }
    let has = |name: &str| listed.iter().any(|e| e == name);
    if listed.is_empty() || (listed.len() == 2 && has("tracecontext") && has("baggage")) {
        return None;
    }
    let mut why = Vec::new();
    for entry in &listed {
        match entry.as_str() {
            "tracecontext" | "baggage" => {}
            "none" => why.push(
                "`none` does not turn propagation off (the caller decides whether to inject)"
                    .to_owned(),
            ),
            other if OTHER_FORMATS.contains(&other) => {
                why.push(format!("`{other}` is not supported"));
            }
            other => why.push(format!(
                "{other:?} is not a propagator the specification names"
            )),
        }
    }
    for (name, headers) in [
        ("tracecontext", "`traceparent` and `tracestate`"),
        ("baggage", "`baggage`"),
    ] {
        if !has(name) && !has("none") {
            why.push(format!(
                "`{name}` is not listed, but inject still writes {headers} and extract reads them"
            ));
        }
    }
    Some(format!(
        "{VARIABLE}={value:?}: not applied: this crate propagates W3C trace context and baggage \
         explicitly (TraceContext::inject / extract), whatever the variable lists; {}",
        why.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_this_crate_does_is_not_warned_about() {
        for value in [
            "",
            " ",
            ",",
            "tracecontext,baggage",
            "baggage,tracecontext",
            " TraceContext , BAGGAGE ,",
            "tracecontext,baggage,tracecontext",
        ] {
            assert_eq!(warning(value), None, "{value:?}");
        }
    }

    #[test]
    fn anything_else_is_warned_about_saying_why() {
        let w = warning("tracecontext").unwrap();
        assert!(
            w.starts_with("OTEL_PROPAGATORS=\"tracecontext\": not applied"),
            "{w}"
        );
        assert!(
            w.contains("`baggage` is not listed, but inject still writes `baggage`"),
            "{w}"
        );
        assert!(!w.contains("`tracecontext` is not listed"), "{w}");

        let w = warning("b3,tracecontext,baggage").unwrap();
        assert!(w.contains("`b3` is not supported"), "{w}");
        assert!(!w.contains("is not listed"), "{w}");

        let w = warning("B3Multi").unwrap();
        assert!(w.contains("`b3multi` is not supported"), "{w}");
        assert!(w.contains("`tracecontext` is not listed"), "{w}");
        assert!(w.contains("`baggage` is not listed"), "{w}");

        let w = warning("none").unwrap();
        assert!(w.contains("`none` does not turn propagation off"), "{w}");
        assert!(!w.contains("is not listed"), "{w}");

        let w = warning("w3c,\u{0}\"x\nWARN forged").unwrap();
        assert!(!w.contains('\n'), "{w}");
        assert!(
            w.contains(r#""w3c" is not a propagator the specification names"#),
            "{w}"
        );
        // The value is quoted with escapes: a hostile value cannot forge a line of its own.
        assert!(
            w.contains(r#"OTEL_PROPAGATORS="w3c,\0\"x\nWARN forged""#),
            "{w}"
        );
    }
}
