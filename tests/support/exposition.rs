//! A strict parser of the Prometheus text format 0.0.4, for tests.
//!
//! Stricter than Prometheus itself: it rejects everything `encode_text()` must never produce —
//! a missing final newline, escapes other than those the format allows, HELP/TYPE after a sample
//! or twice, interleaved families, duplicate label names, duplicate series, timestamps, trailing
//! commas, values that are not canonical floats (`1\r` included) — and checks the histogram
//! invariants (`+Inf` bucket present and equal to `_count`, cumulative buckets in increasing `le`
//! order). Raw `\r`, tab and NUL bytes inside a label value are legal (promtool accepts them) and
//! must round-trip.

use std::collections::{BTreeMap, HashSet};

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
    pub raw_value: String,
}

impl Sample {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One family: its metadata and samples, in exposition order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Family {
    pub name: String,
    pub help: Option<String>,
    pub kind: Option<String>,
    pub samples: Vec<Sample>,
}

fn is_metric_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().enumerate().all(|(i, b)| {
            b.is_ascii_alphabetic() || b == b'_' || b == b':' || (i > 0 && b.is_ascii_digit())
        })
}

fn is_label_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .enumerate()
            .all(|(i, b)| b.is_ascii_alphabetic() || b == b'_' || (i > 0 && b.is_ascii_digit()))
}

fn unescape(s: &str, allow_quote: bool) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if allow_quote => out.push('"'),
            other => return Err(format!("invalid escape sequence \\{other:?} in {s:?}")),
        }
    }
    Ok(out)
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "NaN" => Ok(f64::NAN),
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => {
            let ok = !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'+' | b'-'));
            if !ok {
                return Err(format!("invalid value {s:?}"));
            }
            s.parse::<f64>()
                .map_err(|e| format!("invalid value {s:?}: {e}"))
        }
    }
}

/// Parses one sample line (without its newline).
fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(['{', ' '])
        .ok_or_else(|| format!("no value in {line:?}"))?;
    let name = &line[..name_end];
    if !is_metric_name(name) {
        return Err(format!("invalid metric name {name:?}"));
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = after;
        if let Some(after) = rest.strip_prefix('}') {
            rest = after;
        } else {
            loop {
                let eq = rest.find('=').ok_or("label without =")?;
                let lname = &rest[..eq];
                if !is_label_name(lname) {
                    return Err(format!("invalid label name {lname:?}"));
                }
                rest = rest[eq + 1..]
                    .strip_prefix('"')
                    .ok_or("label value must be quoted")?;
                // Find the closing quote, skipping escaped characters.
                let bytes = rest.as_bytes();
                let mut i = 0;
                loop {
                    match bytes.get(i) {
                        None => return Err("unterminated label value".into()),
                        Some(b'\\') => i += 2,
                        Some(b'"') => break,
                        Some(b'\n') => return Err("raw newline in label value".into()),
                        Some(_) => i += 1,
                    }
                }
                let value = unescape(&rest[..i], true)?;
                if labels.iter().any(|(k, _): &(String, String)| k == lname) {
                    return Err(format!("duplicate label name {lname:?}"));
                }
                labels.push((lname.to_string(), value));
                rest = &rest[i + 1..];
                if let Some(after) = rest.strip_prefix(',') {
                    rest = after;
                    if rest.starts_with('}') {
                        return Err("trailing comma in label set".into());
                    }
                } else if let Some(after) = rest.strip_prefix('}') {
                    rest = after;
                    break;
                } else {
                    return Err(format!("expected , or }} in {line:?}"));
                }
            }
        }
    }
    let value = rest
        .strip_prefix(' ')
        .ok_or_else(|| format!("expected one space before the value in {line:?}"))?;
    if value.contains(' ') {
        return Err(format!(
            "timestamps or extra tokens are not expected: {line:?}"
        ));
    }
    Ok(Sample {
        name: name.to_string(),
        labels,
        value: parse_value(value)?,
        raw_value: value.to_string(),
    })
}

fn belongs_to(sample: &str, family: &str, kind: Option<&str>) -> bool {
    let suffixes: &[&str] = match kind {
        Some("histogram") => &["_bucket", "_sum", "_count"],
        Some("summary") => &["", "_sum", "_count"],
        _ => &[""],
    };
    suffixes
        .iter()
        .any(|s| sample.strip_suffix(s) == Some(family))
        || (kind != Some("histogram") && sample == family)
}

/// Parses a whole exposition strictly.
pub fn parse(text: &str) -> Result<Vec<Family>, String> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    if !text.ends_with('\n') {
        return Err("the exposition must end with a newline".into());
    }
    let mut families: Vec<Family> = Vec::new();
    let mut closed: HashSet<String> = HashSet::new();
    let mut series: HashSet<(String, Vec<(String, String)>)> = HashSet::new();
    for (n, line) in text[..text.len() - 1].split('\n').enumerate() {
        let err = |e: String| format!("line {}: {e}: {line:?}", n + 1);
        if line.is_empty() {
            return Err(err("empty line".into()));
        }
        if let Some(comment) = line.strip_prefix("# ") {
            let (keyword, rest) = comment
                .split_once(' ')
                .ok_or_else(|| err("bad comment".into()))?;
            let (name, payload) = match rest.split_once(' ') {
                Some((n, p)) => (n, Some(p)),
                None => (rest, None),
            };
            if !is_metric_name(name) {
                return Err(err(format!("invalid metric name {name:?}")));
            }
            let current_is_name = families.last().is_some_and(|f| f.name == name);
            if !current_is_name {
                if let Some(prev) = families.last() {
                    closed.insert(prev.name.clone());
                }
                if closed.contains(name) {
                    return Err(err(format!("family {name} is interleaved or repeated")));
                }
                families.push(Family {
                    name: name.to_string(),
                    ..Family::default()
                });
            }
            let family = families.last_mut().expect("pushed above");
            if !family.samples.is_empty() {
                return Err(err("metadata after samples".into()));
            }
            match keyword {
                "HELP" => {
                    if family.help.is_some() || family.kind.is_some() {
                        return Err(err("HELP repeated or after TYPE".into()));
                    }
                    family.help = Some(unescape(payload.unwrap_or(""), false).map_err(err)?);
                }
                "TYPE" => {
                    if family.kind.is_some() {
                        return Err(err("TYPE repeated".into()));
                    }
                    let kind = payload.ok_or_else(|| err("TYPE without type".into()))?;
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                        return Err(err(format!("invalid type {kind:?}")));
                    }
                    family.kind = Some(kind.to_string());
                }
                _ => return Err(err(format!("unexpected comment keyword {keyword:?}"))),
            }
            continue;
        }
        if line.starts_with('#') {
            return Err(err("unexpected comment".into()));
        }
        let sample = parse_sample(line).map_err(err)?;
        let fits = families
            .last()
            .is_some_and(|f| belongs_to(&sample.name, &f.name, f.kind.as_deref()));
        if !fits {
            return Err(err(format!(
                "sample {} outside its family's HELP/TYPE group",
                sample.name
            )));
        }
        let mut key_labels = sample.labels.clone();
        key_labels.sort();
        if !series.insert((sample.name.clone(), key_labels)) {
            return Err(err("duplicate series".into()));
        }
        families.last_mut().expect("checked").samples.push(sample);
    }
    for family in &families {
        if family.kind.as_deref() == Some("histogram") {
            check_histogram(family)?;
        }
    }
    Ok(families)
}

fn check_histogram(family: &Family) -> Result<(), String> {
    type Key = Vec<(String, String)>;
    let mut buckets: BTreeMap<Key, Vec<(f64, f64)>> = BTreeMap::new();
    let mut counts: BTreeMap<Key, f64> = BTreeMap::new();
    for s in &family.samples {
        let mut key: Key = s
            .labels
            .iter()
            .filter(|(k, _)| k != "le")
            .cloned()
            .collect();
        key.sort();
        if s.name.ends_with("_bucket") {
            let le = s.label("le").ok_or("bucket without le")?;
            buckets
                .entry(key)
                .or_default()
                .push((parse_value(le)?, s.value));
        } else if s.name.ends_with("_count") {
            counts.insert(key, s.value);
        }
    }
    for (key, list) in &buckets {
        if list.windows(2).any(|w| {
            w[0].0.partial_cmp(&w[1].0) != Some(std::cmp::Ordering::Less) || w[0].1 > w[1].1
        }) {
            return Err(format!(
                "{}{key:?}: buckets not increasing/cumulative",
                family.name
            ));
        }
        let last = list.last().expect("non-empty");
        if last.0 != f64::INFINITY {
            return Err(format!("{}{key:?}: no +Inf bucket", family.name));
        }
        if counts.get(key) != Some(&last.1) {
            return Err(format!(
                "{}{key:?}: _count differs from +Inf bucket",
                family.name
            ));
        }
    }
    Ok(())
}

/// The value of the sample `name{labels}` (labels in any order), if present.
pub fn value(families: &[Family], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    families.iter().flat_map(|f| &f.samples).find_map(|s| {
        let same = s.name == name
            && s.labels.len() == labels.len()
            && labels.iter().all(|(k, v)| s.label(k) == Some(v));
        same.then_some(s.value)
    })
}

/// `text` without the crate's process-wide self-metrics (`agentcore_telemetry_*`).
///
/// Those (and the standard `process_*` metrics, which the collector registers) describe the
/// whole process (the slot arena, reclamation, CPU and memory), so tests running beside each
/// other in one binary move them between two scrapes; a test that compares two expositions of its
/// own registry byte for byte compares the rest.
pub fn without_process_wide(text: &str) -> String {
    text.split_inclusive('\n')
        .filter(|line| {
            let name = line
                .strip_prefix("# HELP ")
                .or_else(|| line.strip_prefix("# TYPE "))
                .unwrap_or(line);
            !name.starts_with("agentcore_telemetry_") && !name.starts_with("process_")
        })
        .collect()
}
