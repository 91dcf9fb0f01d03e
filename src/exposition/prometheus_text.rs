//! The pieces of a Prometheus text 0.0.4 exposition: family headers, escaping, sample starts
//! and values.
//!
//! Escaping follows the format exactly: HELP escapes `\` and line feed only (`\"` is *invalid*
//! in 0.0.4 HELP text and promtool rejects it); label values escape `\`, `"` and line feed, and
//! nothing else (over-escaping is a bug too: `\t` is rejected by promtool).

use super::descriptor::MetricKind;
use super::float::format_go_float;

/// Writes a family's `# HELP` (escaped) and `# TYPE` lines, in that order (client_golang's).
pub(crate) fn write_family_header(out: &mut String, kind: MetricKind, name: &str, help: &str) {
    out.push_str("# HELP ");
    out.push_str(name);
    out.push(' ');
    escape_help(out, help);
    out.push_str("\n# TYPE ");
    out.push_str(name);
    out.push(' ');
    out.push_str(kind.type_keyword());
    out.push('\n');
}

/// Appends `help` escaped for a `# HELP` line: `\` → `\\`, line feed → `\n`.
pub(crate) fn escape_help(out: &mut String, help: &str) {
    escape(out, help, false);
}

/// Appends `value` escaped for a label value: `\` → `\\`, `"` → `\"`, line feed → `\n`.
pub(crate) fn escape_label_value(out: &mut String, value: &str) {
    escape(out, value, true);
}

#[inline]
fn escape(out: &mut String, s: &str, quote: bool) {
    let needs = |b: u8| b == b'\\' || b == b'\n' || (quote && b == b'"');
    // Fast path: most values need nothing; copy them whole.
    if !s.bytes().any(needs) {
        out.push_str(s);
        return;
    }
    let mut last = 0;
    for (i, b) in s.bytes().enumerate() {
        if needs(b) {
            out.push_str(&s[last..i]);
            out.push_str(match b {
                b'\\' => "\\\\",
                b'\n' => "\\n",
                _ => "\\\"",
            });
            last = i + 1;
        }
    }
    out.push_str(&s[last..]);
}

/// Appends the rendered label pairs `a="x",b="y"` (no braces) for the given names and values.
pub(crate) fn render_labels<S: AsRef<str>>(out: &mut String, names: &[Box<str>], values: &[S]) {
    for (i, (name, value)) in names.iter().zip(values).enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(name);
        out.push_str("=\"");
        escape_label_value(out, value.as_ref());
        out.push('"');
    }
}

/// Appends `name{labels,extra="v"} ` (braces omitted when there are no labels at all).
#[inline]
pub(crate) fn sample_start(
    out: &mut String,
    name: &str,
    suffix: &str,
    labels: &str,
    extra: Option<(&str, &str)>,
) {
    out.push_str(name);
    out.push_str(suffix);
    if !labels.is_empty() || extra.is_some() {
        out.push('{');
        out.push_str(labels);
        if let Some((k, v)) = extra {
            if !labels.is_empty() {
                out.push(',');
            }
            out.push_str(k);
            out.push_str("=\"");
            out.push_str(v);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
}

/// Appends an exact integer value and the line end.
#[inline]
pub(crate) fn value_u64(out: &mut String, v: u64) {
    out.push_str(itoa::Buffer::new().format(v));
    out.push('\n');
}

/// Appends a float value as Go writes it, and the line end.
#[inline]
pub(crate) fn value_f64(out: &mut String, v: f64) {
    format_go_float(out, v);
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_escapes_backslash_and_line_feed_only() {
        let mut s = String::new();
        escape_help(&mut s, "a \\ b\n\"c\"");
        assert_eq!(s, "a \\\\ b\\n\"c\"");
    }

    #[test]
    fn label_values_escape_backslash_quote_and_line_feed() {
        let mut s = String::new();
        escape_label_value(&mut s, "say \"hi\"\\\n");
        assert_eq!(s, "say \\\"hi\\\"\\\\\\n");
    }
}
