//! `Accept` negotiation between the two expositions the server can write: OpenMetrics 1.0.0
//! text and the Prometheus text format 0.0.4 (RFC 9110 §12.5.1 and §12.4.2).
//!
//! Every `Accept` field of a request is read (several fields are one comma-separated list). Each
//! media range carries a weight (`q`, default 1; `q=0` means "not acceptable"); a representation
//! takes the weight of the *most specific* range that matches it (`type/subtype` with
//! parameters, then `type/subtype`, `type/*`, `*/*`), or 0 when none does. A range with
//! parameters matches only a representation that has each of them with the same value:
//! `application/openmetrics-text; version=1.0.0` and `...; charset=utf-8` match OpenMetrics 1.0.0,
//! `version=0.0.1` or `version=2.0.0` do not (we write 1.0.0 only). The `escaping` parameter of
//! Prometheus 3 is accepted with any value and names are written as they are: the registry
//! accepts only names of the classic grammar, which `allow-utf-8`, `underscores` and `values`
//! leave unchanged. `dots` is the exception: it also doubles every underscore of a valid name
//! (`a_b` as `a__b`), and a scraper that asked for it (Prometheus does only when configured
//! with `metric_name_escaping_scheme: dots`) gets the names unescaped, so it would read a name
//! holding `__` or `_dot_` as another one. Writing names `dots`-escaped is not implemented.
//!
//! The heavier representation wins; on a tie the format 0.0.4 does (it is the default, and the
//! one a bare `*/*` such as curl's gets), unless OpenMetrics was named explicitly and 0.0.4 only
//! through a wildcard. When nothing is acceptable (every weight 0) or the field is malformed,
//! the answer is 0.0.4 rather than `406`: a scraper always gets data, and "answering 0.0.4 is
//! always legal" for Prometheus. Elements that do not parse (a bad weight, no `/`) are skipped,
//! the rest still count.
//!
//! Prometheus 2.42 sends
//! `application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1`:
//! OpenMetrics, weight 1.

/// An exposition format the server can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// Prometheus text format 0.0.4.
    Text,
    /// OpenMetrics 1.0.0 text.
    OpenMetrics,
}

impl Format {
    /// Index for per-format state.
    pub(crate) fn index(self) -> usize {
        match self {
            Format::Text => 0,
            Format::OpenMetrics => 1,
        }
    }
}

/// A representation: its media type and parameters (lower case).
struct Representation {
    kind: &'static str,
    subtype: &'static str,
    params: &'static [(&'static str, &'static str)],
}

const TEXT: Representation = Representation {
    kind: "text",
    subtype: "plain",
    params: &[("version", "0.0.4"), ("charset", "utf-8")],
};

const OPENMETRICS: Representation = Representation {
    kind: "application",
    subtype: "openmetrics-text",
    params: &[("version", "1.0.0"), ("charset", "utf-8")],
};

/// How well one representation is accepted: `(specificity, weight in thousandths)` of the most
/// specific matching range; `None` when no range matches.
type Match = Option<(u8, u16)>;

/// Chooses the format for a request whose `Accept` field values are `values` (none: 0.0.4).
pub(crate) fn choose<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Format {
    let (mut text, mut om): (Match, Match) = (None, None);
    for value in values {
        for element in value.split(|&b| b == b',') {
            let Some(range) = MediaRange::parse(element) else {
                continue;
            };
            for (best, rep) in [(&mut text, &TEXT), (&mut om, &OPENMETRICS)] {
                if let Some(specificity) = range.matches(rep) {
                    // The most specific range decides; among equally specific ones, the
                    // first (RFC 9110 leaves it open; a client repeating one is confused).
                    if best.is_none_or(|(s, _)| specificity > s) {
                        *best = Some((specificity, range.weight));
                    }
                }
            }
        }
    }
    let weight = |m: Match| m.map_or(0, |(_, q)| q);
    let (tq, oq) = (weight(text), weight(om));
    let om_explicit = om.is_some_and(|(s, _)| s >= EXACT);
    let text_wildcard = text.is_none_or(|(s, _)| s < EXACT);
    if oq > tq || (oq > 0 && oq == tq && om_explicit && text_wildcard) {
        Format::OpenMetrics
    } else {
        Format::Text
    }
}

/// Specificity: `*/*`.
const ANY: u8 = 0;
/// `type/*`.
const TYPE: u8 = 1;
/// `type/subtype`.
const EXACT: u8 = 2;
/// `type/subtype;param=value`.
const WITH_PARAMS: u8 = 3;

/// One parsed element of an `Accept` list.
struct MediaRange<'a> {
    kind: &'a [u8],
    subtype: &'a [u8],
    /// Parameters other than the weight, raw.
    params: &'a [u8],
    has_params: bool,
    /// Thousandths: 0..=1000.
    weight: u16,
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| !matches!(c, b' ' | b'\t'));
    let end = b.iter().rposition(|c| !matches!(c, b' ' | b'\t'));
    match (start, end) {
        (Some(s), Some(e)) => &b[s..=e],
        _ => &[],
    }
}

/// An RFC 9110 token character.
fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

fn is_token(b: &[u8]) -> bool {
    !b.is_empty() && b.iter().all(|&c| is_tchar(c))
}

/// A parameter value: a token or a quoted string (returned without quotes, escapes kept).
fn unquote(v: &[u8]) -> Option<&[u8]> {
    if let [b'"', inner @ .., b'"'] = v {
        Some(inner)
    } else if is_token(v) {
        Some(v)
    } else {
        None
    }
}

/// RFC 9110 §12.4.2: `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`, in
/// thousandths.
fn parse_weight(v: &[u8]) -> Option<u16> {
    let (int, frac) = match v.iter().position(|&c| c == b'.') {
        Some(dot) => (&v[..dot], &v[dot + 1..]),
        None => (v, &[][..]),
    };
    if frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut thousandths = 0u16;
    for i in 0..3 {
        thousandths = thousandths * 10 + frac.get(i).map_or(0, |d| u16::from(d - b'0'));
    }
    match int {
        b"0" => Some(thousandths),
        b"1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// Splits `params` (`;a=b;c="d"`) into `(name, value)` pairs; `None` on a malformed one.
fn params(raw: &[u8]) -> impl Iterator<Item = Option<(&[u8], &[u8])>> {
    raw.split(|&b| b == b';')
        .map(trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let eq = p.iter().position(|&c| c == b'=')?;
            let name = trim(&p[..eq]);
            let value = unquote(trim(&p[eq + 1..]))?;
            is_token(name).then_some((name, value))
        })
}

impl<'a> MediaRange<'a> {
    fn parse(element: &'a [u8]) -> Option<MediaRange<'a>> {
        let element = trim(element);
        if element.is_empty() {
            return None;
        }
        let end = element
            .iter()
            .position(|&c| c == b';')
            .unwrap_or(element.len());
        let media = trim(&element[..end]);
        let slash = media.iter().position(|&c| c == b'/')?;
        let (kind, subtype) = (&media[..slash], &media[slash + 1..]);
        if !is_token(kind) || !is_token(subtype) || (kind == b"*" && subtype != b"*") {
            return None;
        }
        // The weight ends the media type's parameters (what follows it are accept-ext,
        // ignored).
        let rest = &element[end..];
        let mut weight = 1000;
        let mut params_end = rest.len();
        let mut has_params = false;
        let mut at = 0;
        for piece in rest.split(|&b| b == b';') {
            let start = at;
            at += piece.len() + 1;
            let p = trim(piece);
            if p.is_empty() {
                continue;
            }
            let eq = p.iter().position(|&c| c == b'=')?;
            let (name, value) = (trim(&p[..eq]), trim(&p[eq + 1..]));
            if name.eq_ignore_ascii_case(b"q") {
                weight = parse_weight(value)?;
                params_end = start;
                break;
            }
            if !is_token(name) || unquote(value).is_none() {
                return None;
            }
            has_params = true;
        }
        let params = &rest[..params_end];
        Some(MediaRange {
            kind,
            subtype,
            params,
            has_params,
            weight,
        })
    }

    /// The specificity with which this range matches `rep`, or `None`.
    fn matches(&self, rep: &Representation) -> Option<u8> {
        if self.kind == b"*" {
            return (!self.has_params).then_some(ANY);
        }
        if !self.kind.eq_ignore_ascii_case(rep.kind.as_bytes()) {
            return None;
        }
        if self.subtype == b"*" {
            return (!self.has_params).then_some(TYPE);
        }
        if !self.subtype.eq_ignore_ascii_case(rep.subtype.as_bytes()) {
            return None;
        }
        if !self.has_params {
            return Some(EXACT);
        }
        for (name, value) in self::params(self.params).flatten() {
            if name.eq_ignore_ascii_case(b"escaping") {
                continue;
            }
            let Some((_, want)) = rep
                .params
                .iter()
                .find(|(n, _)| name.eq_ignore_ascii_case(n.as_bytes()))
            else {
                return None; // a parameter this representation does not have
            };
            let equal = if name.eq_ignore_ascii_case(b"charset") {
                value.eq_ignore_ascii_case(want.as_bytes())
            } else {
                value == want.as_bytes()
            };
            if !equal {
                return None;
            }
        }
        Some(WITH_PARAMS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(values: &[&str]) -> Format {
        choose(values.iter().map(|v| v.as_bytes()))
    }

    use Format::{OpenMetrics as Om, Text};

    #[test]
    fn prometheus_2_42_gets_openmetrics() {
        assert_eq!(pick(&["application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"]), Om);
        // With native histograms it puts protobuf first and OpenMetrics at 0.8.
        assert_eq!(pick(&["application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"]), Om);
        // Prometheus 3's escaping parameter.
        assert_eq!(pick(&["application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,text/plain;version=0.0.4;q=0.3"]), Om);
    }

    #[test]
    fn no_accept_and_wildcards_get_0_0_4() {
        assert_eq!(pick(&[]), Text);
        assert_eq!(pick(&["*/*"]), Text);
        assert_eq!(pick(&["text/*"]), Text);
        assert_eq!(pick(&["text/plain"]), Text);
        assert_eq!(pick(&["application/*"]), Om);
        assert_eq!(pick(&["application/*;q=0.5, */*;q=0.4"]), Om);
        assert_eq!(
            pick(&["application/openmetrics-text, */*"]),
            Om,
            "named beats a wildcard on a tie"
        );
        assert_eq!(
            pick(&["application/openmetrics-text, text/plain"]),
            Text,
            "a tie of named ones: the default"
        );
    }

    #[test]
    fn weights() {
        assert_eq!(
            pick(&["application/openmetrics-text;q=0"]),
            Text,
            "q=0 is not acceptable"
        );
        assert_eq!(pick(&["application/openmetrics-text;q=0, */*"]), Text);
        assert_eq!(
            pick(&["application/openmetrics-text;q=0.001, text/plain;q=0"]),
            Om
        );
        assert_eq!(
            pick(&["text/plain;q=0, */*"]),
            Om,
            "the specific q=0 excludes text; */* admits OpenMetrics"
        );
        assert_eq!(
            pick(&["text/plain; q=0.5, application/openmetrics-text; q=0.501"]),
            Om
        );
        assert_eq!(
            pick(&["text/plain;Q=1.000, application/openmetrics-text;q=0.999"]),
            Text
        );
        // Malformed weights drop their element only.
        for bad in ["q=1.5", "q=2", "q=0.1234", "q=-1", "q=", "q=abc", "q=1.001"] {
            assert_eq!(
                pick(&[&format!("application/openmetrics-text;{bad}")]),
                Text,
                "{bad}"
            );
            assert_eq!(
                pick(&[&format!(
                    "text/plain;{bad}, application/openmetrics-text;q=0.1"
                )]),
                Om,
                "{bad}"
            );
        }
    }

    #[test]
    fn versions_and_parameters() {
        assert_eq!(pick(&["application/openmetrics-text; version=1.0.0"]), Om);
        assert_eq!(
            pick(&["application/openmetrics-text;version=\"1.0.0\";charset=UTF-8"]),
            Om
        );
        assert_eq!(
            pick(&["application/openmetrics-text; version=2.0.0"]),
            Text,
            "unknown version"
        );
        assert_eq!(
            pick(&["application/openmetrics-text; version=0.0.1"]),
            Text,
            "we write 1.0.0 only"
        );
        assert_eq!(
            pick(&["application/openmetrics-text; charset=latin1"]),
            Text
        );
        assert_eq!(
            pick(&["application/openmetrics-text; foo=bar"]),
            Text,
            "unknown parameter"
        );
        // The most specific range decides, whatever the order.
        assert_eq!(
            pick(&["application/openmetrics-text;version=1.0.0;q=0, application/openmetrics-text"]),
            Text
        );
        assert_eq!(
            pick(&["application/openmetrics-text, application/openmetrics-text;version=1.0.0;q=0"]),
            Text
        );
        assert_eq!(pick(&["text/plain;version=0.0.4;q=0.2, text/plain;q=1, application/openmetrics-text;q=0.5"]), Om);
    }

    #[test]
    fn several_fields_and_case() {
        assert_eq!(
            pick(&[
                "text/plain;q=0.1",
                "APPLICATION/OpenMetrics-Text;Version=1.0.0"
            ]),
            Om
        );
        assert_eq!(pick(&["", "application/openmetrics-text"]), Om);
    }

    #[test]
    fn malformed_accept_gets_0_0_4() {
        for bad in [
            "garbage",
            ";;;,,,",
            "application/",
            "/openmetrics-text",
            "*/openmetrics-text",
            "application/openmetrics-text;version",
            "application/openmetrics-text;version=\"1.0.0",
            "application/open metrics-text",
            "\u{0}\u{7f}",
        ] {
            assert_eq!(pick(&[bad]), Text, "{bad:?}");
        }
        assert_eq!(
            choose([&b"\xff\xfe application/openmetrics-text"[..]]),
            Text
        );
        assert_eq!(
            choose([&b"\xff\xfe, application/openmetrics-text"[..]]),
            Om,
            "the good element still counts"
        );
        // A long list costs linear time and no allocation.
        let long = "x/y;q=0.1,".repeat(10_000) + "application/openmetrics-text";
        assert_eq!(pick(&[&long]), Om);
    }
}
