//! Checks of a body to push (text format 0.0.4, as `Registry::encode_text_into` writes it)
//! against what the gateway does with it, so that a push the gateway would take but not keep as
//! sent fails, naming why, with nothing sent.
//!
//! The gateway gives every pushed series the grouping key's labels, overwriting a label of the
//! same name (the Pushgateway README, "URL": labels already set in the body "will be overwritten
//! to match the labels defined by the URL path!"). A series carrying a grouping label with
//! another value would be stored under the key's value, its own lost, and the push would still
//! be answered `200`; two series differing only there are refused as duplicates of a series no
//! one sent. [`check_grouping_labels`] refuses such a body; a series carrying the key's own
//! value loses nothing and is let through.
//!
//! The gateway also adds `push_time_seconds` and `push_failure_time_seconds` to every group,
//! which "will override any pushed metric by that name" (the README, "About timestamps"):
//! [`check_reserved_names`] refuses a body with a family of either name.

use super::PushError;

/// The longest a label value is quoted in an error.
const MAX_QUOTED: usize = 128;

/// Refuses `body` when one of its series has a label of the grouping key (`grouping`, `job`
/// included) with a value other than the key's.
pub(super) fn check_grouping_labels(
    body: &[u8],
    grouping: &[(String, String)],
) -> Result<(), PushError> {
    // The body is the registry's text exposition, a `String`; a delete's is empty.
    let Ok(body) = std::str::from_utf8(body) else {
        return Ok(());
    };
    let mut value = String::new();
    for line in body.lines() {
        let Some((series, mut rest)) = line.split_once('{') else {
            continue;
        };
        if series.starts_with('#') || series.contains(' ') {
            continue;
        }
        // `label="value"` pairs, separated by `,`, up to `}`.
        while let Some((label, after)) = rest.split_once("=\"") {
            let Some(after) = unescape_value(after, &mut value) else {
                break;
            };
            let differs = |(n, v): &&(String, String)| n == label && *v != value;
            if let Some((_, key_value)) = grouping.iter().find(differs) {
                return Err(PushError::InvalidGroupingKey(format!(
                    "label {label:?} is in the grouping key as {:?}, which the gateway gives \
                     every pushed series, overwriting the series' own: {series:?} has it as {:?}, \
                     which would be lost (leave the label out of the series, or out of the key)",
                    quoted(key_value),
                    quoted(&value)
                )));
            }
            rest = match after.strip_prefix(',') {
                Some(r) if !r.starts_with('}') => r,
                _ => break,
            };
        }
    }
    Ok(())
}

/// The families the gateway writes itself in every group, replacing pushed ones of their names.
const RESERVED: [&str; 2] = ["push_time_seconds", "push_failure_time_seconds"];

/// Refuses `body` when it has a family named as one of the gateway's own ([`RESERVED`]): by its
/// `# TYPE` line, or a sample of that name (a family written without one).
pub(super) fn check_reserved_names(body: &[u8]) -> Result<(), PushError> {
    for line in body.split(|&b| b == b'\n') {
        let name = match line.strip_prefix(b"# TYPE ") {
            Some(rest) => rest.split(|&b| b == b' ').next(),
            None => line.split(|&b| b == b'{' || b == b' ').next(),
        };
        if let Some(name) = RESERVED.iter().find(|r| name == Some(r.as_bytes())) {
            return Err(PushError::ReservedName(format!(
                "the registry has a family {name:?}, a name the gateway gives a metric of its own \
                 in every group, replacing a pushed family of that name: rename it"
            )));
        }
    }
    Ok(())
}

/// Reads a quoted label value's text up to its closing `"` into `out`, unescaped (`\\`, `\"`,
/// `\n`: text format 0.0.4); returns what follows the quote, or `None` without one.
fn unescape_value<'a>(text: &'a str, out: &mut String) -> Option<&'a str> {
    out.clear();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some(&text[i + 1..]),
            '\\' => match chars.next()?.1 {
                'n' => out.push('\n'),
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

/// `value`, cut to [`MAX_QUOTED`] characters.
fn quoted(value: &str) -> String {
    match value.char_indices().nth(MAX_QUOTED) {
        Some((i, _)) => format!("{}…", &value[..i]),
        None => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_gateways_own_family_names_are_found_by_type_or_sample() {
        let ok = |body: &str| check_reserved_names(body.as_bytes()).is_ok();
        assert!(!ok("# TYPE push_time_seconds gauge\npush_time_seconds 1\n"));
        assert!(!ok("x 1\npush_failure_time_seconds{a=\"b\"} 1\n"));
        assert!(!ok("# TYPE push_failure_time_seconds histogram\n"));
        assert!(ok(
            "# TYPE push_time_seconds_total counter\npush_time_seconds_total 1\n"
        ));
        assert!(ok(
            "# HELP x push_time_seconds\nx{l=\"push_time_seconds\"} 1\n"
        ));
        assert!(ok(""));
    }

    #[test]
    fn a_grouping_label_with_another_value_is_found_escapes_and_all() {
        let k = key(&[("job", "j"), ("instance", "i\"1")]);
        let ok = |body: &str| check_grouping_labels(body.as_bytes(), &k).is_ok();
        assert!(ok(
            "# HELP x instance=\"no\" {\n# TYPE x counter\nx 1\ny{a=\"b\"} 2\n"
        ));
        assert!(ok("x{a=\"instance=\\\"no\\\",job=\\\"no\\\"\"} 1\n"));
        assert!(ok("x{instance=\"i\\\"1\",job=\"j\"} 1\n"));
        assert!(!ok("x{a=\"\\\\\",instance=\"i1\"} 1\n"));
        assert!(!ok("x{job=\"\"} 1\n"));
        assert!(!ok("x_bucket{job=\"k\",le=\"+Inf\"} 1\n"));
        let long = format!("x{{job=\"{}\"}} 1\n", "é".repeat(1000));
        let e = check_grouping_labels(long.as_bytes(), &k)
            .unwrap_err()
            .to_string();
        assert!(e.contains(&format!("{}…", "é".repeat(MAX_QUOTED))), "{e}");
        assert!(e.len() < 1000, "{e}");
        // Cut-off lines are no match, nor a panic.
        for bad in ["x{job=\"k", "x{job=", "x{", "x{job=\"k\\", "{job=\"k\"} 1"] {
            let _ = check_grouping_labels(bad.as_bytes(), &k);
        }
    }
}
