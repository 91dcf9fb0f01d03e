//! The `metrics` bridge's names: a `metrics` key's name and label names, sanitized to
//! Prometheus names (see the [recorder's docs](super::metrics_recorder), "Names are matched
//! after sanitizing").

use smallvec::SmallVec;

/// `name` with every character outside `[a-zA-Z0-9_:]` replaced by `_`, and `_` before a
/// leading digit (empty: `_`), as metrics-exporter-prometheus sanitizes.
pub(super) fn sanitize_metric_name(name: &str) -> String {
    sanitize(name, |c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// The bytes [`sanitize_metric_name_into`] sanitizes a name into without allocating (a longer
/// name spills to the heap).
pub(super) const INLINE_NAME: usize = 128;

/// [`sanitize_metric_name`] written into `out`, which holds names up to [`INLINE_NAME`] bytes
/// on the stack: the result is ASCII (a character kept is ASCII, every other is replaced).
pub(super) fn sanitize_metric_name_into<'a>(
    name: &str,
    out: &'a mut SmallVec<[u8; INLINE_NAME]>,
) -> &'a str {
    out.clear();
    if name.chars().next().is_none_or(|c| c.is_ascii_digit()) {
        out.push(b'_');
    }
    out.extend(name.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            c as u8
        } else {
            b'_'
        }
    }));
    // Every byte is ASCII (above), so this never fails; an empty name would only miss the
    // description, never panic.
    std::str::from_utf8(out).unwrap_or_default()
}

/// Whether `sanitize_metric_name` leaves `name` as it is.
pub(super) fn is_valid_metric_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| !c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// A label name with characters outside `[a-zA-Z0-9_]` replaced by `_`.
pub(super) fn sanitize_label_name(name: &str) -> String {
    sanitize(name, |c| c.is_ascii_alphanumeric() || c == '_')
}

fn sanitize(name: &str, valid: impl Fn(char) -> bool) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    if name.chars().next().is_none_or(|c| c.is_ascii_digit()) {
        out.push('_');
    }
    out.extend(name.chars().map(|c| if valid(c) { c } else { '_' }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stack sanitizer `describe` uses is `sanitize_metric_name`, for short names, long ones
    /// (spilled), non-ASCII ones, leading digits and the empty name.
    #[test]
    fn sanitizing_on_the_stack_is_sanitizing() {
        let long = "a.".repeat(INLINE_NAME);
        for name in [
            "http.requests",
            "http-requests",
            "ok_name:sub",
            "2fa.checks",
            "",
            "é☃.x",
            "x é",
            long.as_str(),
        ] {
            let mut inline = SmallVec::new();
            let sanitized = sanitize_metric_name_into(name, &mut inline).to_owned();
            assert_eq!(sanitized, sanitize_metric_name(name), "{name:?}");
            assert_eq!(inline.spilled(), sanitized.len() > INLINE_NAME, "{name:?}");
        }
    }
}
