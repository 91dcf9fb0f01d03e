//! What warnings and errors show of a header list's value (`OTEL_EXPORTER_OTLP_HEADERS`,
//! `OTEL_EXPORTER_OTLP_TRACES_HEADERS`, `OtlpHttpConfig::headers`): the keys, never the values.
//! Header values are often credentials (`authorization=Bearer ..`, `api-key=..`), and warnings
//! end up in logs.

/// What a warning shows of a header list's value in place of each header value.
pub(crate) const REDACTED: &str = "<redacted>";

/// Whether `variable` holds a header list (`OTEL_EXPORTER_OTLP_HEADERS`,
/// `OTEL_EXPORTER_OTLP_TRACES_HEADERS`), whose values are redacted in warnings.
pub(crate) fn is_header_list(variable: &str) -> bool {
    variable.ends_with("_HEADERS")
}

/// A header list (`key=value,..`) as a warning shows it: every value replaced by
/// [`REDACTED`], and an entry without `=` too (it may be a value pasted without its key).
/// Header values are often credentials (`authorization=Bearer ..`, `api-key=..`), and
/// warnings end up in logs; the keys say which entry is meant.
pub(crate) fn redact_headers(list: &str) -> String {
    list.split(',')
        .map(|item| match item.split_once('=') {
            Some((key, _)) => format!("{key}={REDACTED}"),
            None if item.trim().is_empty() => item.to_owned(),
            None => REDACTED.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}
