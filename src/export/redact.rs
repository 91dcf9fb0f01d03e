//! What warnings and errors show of a header list's value (`OTEL_EXPORTER_OTLP_HEADERS`,
//! `OTEL_EXPORTER_OTLP_TRACES_HEADERS`, `OtlpHttpConfig::headers`): the keys that could be header
//! names, never the values; and of an endpoint's: not its user info or query.
//! Header values are often credentials (`authorization=Bearer ..`, `api-key=..`), and warnings
//! end up in logs.

/// What a warning shows of a header list's value in place of each header value.
pub(crate) const REDACTED: &str = "<redacted>";

/// Whether `variable` holds a header list (`OTEL_EXPORTER_OTLP_HEADERS`,
/// `OTEL_EXPORTER_OTLP_TRACES_HEADERS`), whose values are redacted in warnings.
pub(crate) fn is_header_list(variable: &str) -> bool {
    variable.ends_with("_HEADERS")
}

/// What a warning or an error shows of `variable`'s `value` (`ConfigError::new` calls it for
/// every value it keeps): a header list with its values
/// redacted ([`redact_headers`]; idempotent, so a value redacted before is shown the same), an
/// endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT`, `..._TRACES_ENDPOINT`, `OtlpHttpConfig::endpoint`)
/// with its user info and query redacted (`net::url::redact_credentials`), anything else as
/// it is.
pub(crate) fn shown(variable: &str, value: &str) -> String {
    if is_header_list(variable) {
        redact_headers(value)
    } else if variable.ends_with("_ENDPOINT") || variable.ends_with("::endpoint") {
        crate::net::url::redact_credentials(value)
    } else {
        value.to_owned()
    }
}

/// A header list (`key=value,..`) as a warning shows it: every value replaced by
/// [`REDACTED`], and an entry without `=` too (it may be a value pasted without its key).
/// Header values are often credentials (`authorization=Bearer ..`, `api-key=..`), and
/// warnings end up in logs; the keys say which entry is meant. A key is shown only when it
/// could be a header name (see [`redact_header`]).
pub(crate) fn redact_headers(list: &str) -> String {
    list.split(',')
        .map(|item| match item.split_once('=') {
            Some((key, _)) => redact_header(key),
            None if item.trim().is_empty() => item.to_owned(),
            None => REDACTED.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// One header as a warning shows it: `key=<redacted>` when `key` (its surrounding spaces and
/// tabs aside) could be a header name, written or percent-encoded (RFC 9110 §5.1 `token`
/// characters, `%` among them); [`REDACTED`] alone otherwise. Text before an `=` that is no
/// header name is a value pasted without its key whose own `=` (base64 padding, as in
/// `Authorization: Basic dXNlcjpwYXNzd29yZDE=`) split it: showing it would show the value.
pub(crate) fn redact_header(key: &str) -> String {
    let name = key.trim_matches([' ', '\t']);
    let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    // Decoded as the list's parser decodes it: `Authorization%3A%20Basic%20..` is written in
    // token characters but is no header name.
    let decoded = super::percent::percent_decode(name).unwrap_or_default();
    if !decoded.is_empty() && name.bytes().all(tchar) && decoded.bytes().all(tchar) {
        format!("{key}={REDACTED}")
    } else {
        REDACTED.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::ExportConfig;

    /// A credential pasted as a header with `:` instead of `=` (the curl habit), or without its
    /// key at all, is a value without its key; base64 padding (`Basic` credentials, many API
    /// keys) puts an `=` in it, and what comes before that `=` was shown as if it were a key.
    #[test]
    fn a_credential_with_base64_padding_pasted_without_its_key_is_not_shown() {
        // base64("user:password1") and base64("s3cr3t-tok"): both end in padding.
        let secrets = ["dXNlcjpwYXNzd29yZDE", "czNjcjN0LXRvaw"];
        for list in [
            format!("Authorization: Basic {}=", secrets[0]),
            format!("x-ok=1,Bearer {}==", secrets[1]),
            format!("api-key:{}==,x-ok=1", secrets[1]),
        ] {
            for variable in [
                "OTEL_EXPORTER_OTLP_HEADERS",
                "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
            ] {
                let r =
                    ExportConfig::from_lookup(|k| (k == variable).then(|| list.clone())).unwrap();
                assert!(!r.warnings.is_empty(), "{variable}={list:?} warns");
                for w in &r.warnings {
                    let shown = w.to_string();
                    for secret in secrets {
                        assert!(!shown.contains(secret), "{variable}={list:?}: {shown}");
                    }
                }
            }
        }
        // A key that is a header name is still shown: it says which entry is meant.
        assert_eq!(
            redact_headers("api-key=s3cr3t,x%2Dtenant=a, x-b = c"),
            "api-key=<redacted>,x%2Dtenant=<redacted>, x-b =<redacted>"
        );
    }

    /// The same credential percent-encoded (OTEL header lists are): every byte of the key is a
    /// token character, `%` among them, yet it decodes to `Authorization: Basic ..`, no header
    /// name; it was shown as the key.
    #[test]
    fn a_percent_encoded_credential_pasted_without_its_key_is_not_shown() {
        let secret = "dXNlcjpwYXNzd29yZDE";
        let list = format!("Authorization%3A%20Basic%20{secret}=");
        let r = ExportConfig::from_lookup(|k| {
            (k == "OTEL_EXPORTER_OTLP_HEADERS").then(|| list.clone())
        })
        .unwrap();
        assert!(!r.warnings.is_empty(), "{list:?} warns");
        for w in &r.warnings {
            assert!(!w.to_string().contains(secret), "{w}");
        }
        // A percent-encoded key that decodes to a header name is still shown.
        assert_eq!(redact_headers("x%2Dtenant=a"), "x%2Dtenant=<redacted>");
    }
}
