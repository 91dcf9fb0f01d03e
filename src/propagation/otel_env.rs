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
//! unset is the default, `tracecontext,baggage`. The warning names the first ten entries it
//! objects to and counts the others.

use std::collections::HashSet;

/// The variable's name.
pub(crate) const VARIABLE: &str = "OTEL_PROPAGATORS";

/// The formats the specification names that this crate does not write or read.
const OTHER_FORMATS: [&str; 5] = ["b3", "b3multi", "jaeger", "xray", "ottrace"];

/// The entries a warning names one by one; it counts the others.
const NAMED: usize = 10;

/// The warning for `OTEL_PROPAGATORS=value`, or `None` when it asks for what this crate does
/// (W3C trace context and baggage, or the default).
pub(crate) fn warning(value: &str) -> Option<String> {
    // In order, each once (the specification: "Values MUST be deduplicated"); the set keeps a
    // long list of distinct entries linear.
    let mut seen = HashSet::new();
    let mut listed: Vec<String> = Vec::new();
    for entry in value.split(',') {
        let entry = entry.trim().to_ascii_lowercase();
        if !entry.is_empty() && seen.insert(entry.clone()) {
            listed.push(entry);
        }
    }
    let has = |name: &str| seen.contains(name);
    if listed.is_empty() || (listed.len() == 2 && has("tracecontext") && has("baggage")) {
        return None;
    }
    let mut why = Vec::new();
    // Entries named one by one; the rest are counted (a hostile 100 KiB list named each).
    let mut unnamed = 0;
    for entry in &listed {
        let reason = match entry.as_str() {
            "tracecontext" | "baggage" => continue,
            "none" => "`none` does not turn propagation off (the caller decides whether to inject)"
                .to_owned(),
            other if OTHER_FORMATS.contains(&other) => format!("`{other}` is not supported"),
            other => format!("{other:?} is not a propagator the specification names"),
        };
        if why.len() < NAMED {
            why.push(reason);
        } else {
            unnamed += 1;
        }
    }
    if unnamed > 0 {
        why.push(format!("{unnamed} more entries are not applied either"));
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

    /// 100 KiB of distinct unknown entries (`0,1,2,...`, 18,919 of them): the warning names
    /// the first few and counts the rest. It named every one (~50 bytes each: a warning line
    /// of ~1 MB on standard error for a 100 KiB value), and each entry was checked against
    /// every one before it (2.2 s for a tracer to start, debug build).
    #[test]
    fn many_unknown_entries_give_a_warning_of_bounded_length() {
        let mut value = String::new();
        let mut n = 0;
        while value.len() < 100 * 1024 {
            value.push_str(&format!("{n},"));
            n += 1;
        }
        let w = warning(&value).unwrap();
        let quoted = format!("{value:?}").len();
        assert!(
            w.len() < quoted + 2048,
            "{} bytes for a value quoted in {quoted}",
            w.len()
        );
        assert!(
            w.contains(r#""0" is not a propagator the specification names"#),
            "{w:.300}"
        );
        assert!(w.contains(&format!("{} more", n - 10)), "{}", &w[quoted..]);
        assert!(w.contains("`tracecontext` is not listed"));
        // Repeats are still counted once.
        let w = warning(&"b3,".repeat(30_000)).unwrap();
        assert_eq!(w.matches("`b3` is not supported").count(), 1);
        assert!(!w.contains("more"), "{}", &w[w.len() - 300..]);
    }
}
