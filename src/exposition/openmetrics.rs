//! The OpenMetrics 1.0 text exposition: [`OpenMetricsEncoder`], behind
//! [`Registry::encode_openmetrics_into`](crate::Registry::encode_openmetrics_into).
//!
//! It writes the same families, series and values as the text format 0.0.4 encoder
//! (`prometheus_text`), in OpenMetrics' syntax (OpenMetrics 1.0, "Text format"):
//!
//! * **Family names.** A counter family registered as `x_total` is the OpenMetrics family `x`
//!   (`# TYPE x counter`) whose sample is `x_total`; a counter registered without the suffix
//!   (`x`) is the family `x` and still exposes `x_total`. An info family registered as
//!   `x_info` is the family `x` with samples `x_info{...} 1`; one registered as `x` exposes
//!   `x_info` too. Every other type keeps its registered name. The registry refuses a name whose
//!   samples in either format could clash with another family's ("Suffixes": a gauge
//!   `foo_created` and a counter `foo` clash), so both expositions are always valid.
//! * **Metadata**, in the recommended order `# TYPE`, `# UNIT`, `# HELP`. Types: `counter`,
//!   `gauge`, `histogram`, `summary`, `info`. (No type of ours is untyped, so `unknown` never
//!   appears, and none is a set of booleans, so neither does `stateset`.) HELP escapes `\`,
//!   `"` and line feed (0.0.4 must not escape `"`); an empty HELP is left out, which the
//!   specification says means the same ("MUST be treated as if no metadata line ... existed").
//! * **`# UNIT`** is written when the family name's last `_`-separated word is one of the base
//!   units the specification names ("Units and Base Units": seconds, bytes, joules, grams,
//!   meters, ratios — spelled `ratio` in names, per Prometheus' naming guide —, volts, amperes
//!   and celsius; plus kelvin, which it allows). The unit is then a suffix of the family name,
//!   as "Unit" requires; info families never have one ("MUST have an empty Unit string"). So
//!   `agentcore_tool_execution_seconds` gets `# UNIT ... seconds`,
//!   `process_cpu_seconds_total` (family `process_cpu_seconds`) too, and
//!   `agentcore_agent_memory_mb` (not a base unit) none.
//! * **Samples.** Label values escape as in 0.0.4 (`\\`, `\"`, `\n`; rendered once per series
//!   and shared by both encoders). `le` and `quantile` are canonical numbers (`1.0`, `0.005`,
//!   `+Inf`; see `float`), precomputed per bucket layout. Histogram bucket and count values,
//!   summary counts and whole counter totals are integers; every float value (gauges, sums,
//!   quantile values, scrape-time and fractional counter totals, exemplar values) has a decimal
//!   point or an exponent (`2.0`, `-0.0`, `1e+06`), as "Numbers" requires (the same rendering as
//!   the canonical labels, and as client_golang's). Counter totals, histogram and summary sums and counts are never NaN or negative:
//!   a histogram with a negative bucket bound, or into whose sum a negative value was
//!   recorded, has no `_sum` and therefore no `_count` ("If and only if a Sum Value is
//!   present ... `_count`"); a summary into whose sum one was recorded has no `_sum`. For
//!   good (`primitives::counter_sum`: a sum that can fall is not a counter, and samples that
//!   came and went as it crossed zero broke `rate()`), and whatever earlier scrapes read
//!   ("Statelessness": "What information has been exposed before MUST have no impact on
//!   future expositions"). A
//!   scrape-time counter whose function returns NaN or a negative number has no sample in
//!   that scrape.
//! * **`_created`** (when the series' values started from zero, in seconds with microseconds:
//!   when its counter, histogram or summary was made, earlier than the series for a handle
//!   adopted with `Family::insert_metric`) follows the
//!   counter total, the histogram `_count` and the summary `_count` when
//!   [`OpenMetricsEncoder::with_created`] turns it on. It is off by default, as in client_golang
//!   (each one is an extra series in Prometheus 2.x). A scrape-time counter
//!   (`Registry::counter_fn`, `process_cpu_seconds_total`) never has one: its value is kept
//!   elsewhere, and when it was 0 is not known here (client_golang's `CounterFunc` and process
//!   collector write none either).
//! * **No timestamps**, no blank lines, no other comments, and the exposition ends `# EOF\n`.
//!
//! # Exemplars
//! Exactly two kinds of sample may carry an exemplar: a counter's `_total` and a histogram's
//! `_bucket`. Both end through `end_exemplar_sample`, which appends the metric's kept exemplar
//! (`primitives::exemplar`, read at scrape) when there is one. Every other sample ends through
//! `end_line`, where an exemplar is invalid.

use super::float::{counter_total, format_openmetrics_canonical};
use super::prometheus_text::escape_label_value;
use super::{Descriptor, MetricKind};

/// The `Content-Type` of the OpenMetrics 1.0 text exposition.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The base units for which a family gets a `# UNIT` line (see the module docs).
const BASE_UNITS: &[&str] = &[
    "seconds", "bytes", "joules", "grams", "meters", "ratio", "volts", "amperes", "celsius",
    "kelvin",
];

/// The OpenMetrics 1.0 text encoder of a [`Registry`](crate::Registry), with its options.
///
/// [`Registry::encode_openmetrics_into`](crate::Registry::encode_openmetrics_into) uses the
/// defaults; build one of these to change them.
///
/// ```
/// use agentcore_telemetry::exposition::OpenMetricsEncoder;
/// use agentcore_telemetry::Registry;
///
/// let registry = Registry::new();
/// registry.counter("jobs_total", "Jobs done.").unwrap().inc();
///
/// let mut out = String::new();
/// OpenMetricsEncoder::new().encode_into(&registry, &mut out);
/// assert_eq!(out, "# TYPE jobs counter\n# HELP jobs Jobs done.\njobs_total 1\n# EOF\n");
///
/// out.clear();
/// OpenMetricsEncoder::new().with_created(true).encode_into(&registry, &mut out);
/// assert!(out.contains("\njobs_created 1")); // seconds since the epoch, e.g. 1764489812.123456
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenMetricsEncoder {
    created: bool,
}

impl OpenMetricsEncoder {
    /// The defaults: no `_created` samples.
    ///
    /// ```
    /// use agentcore_telemetry::exposition::OpenMetricsEncoder;
    /// use agentcore_telemetry::Registry;
    ///
    /// let registry = Registry::new();
    /// registry.gauge("workers", "Workers.").unwrap().set(2.0);
    /// let text = OpenMetricsEncoder::new().encode(&registry);
    /// assert_eq!(text, "# TYPE workers gauge\n# HELP workers Workers.\nworkers 2.0\n# EOF\n");
    /// assert_eq!(OpenMetricsEncoder::new(), OpenMetricsEncoder::default());
    /// ```
    pub const fn new() -> OpenMetricsEncoder {
        OpenMetricsEncoder { created: false }
    }

    /// Whether counters, histograms and summaries expose `_created` (when the series' values
    /// started from zero; never for a scrape-time counter, whose start is not known). Off by
    /// default: Prometheus 2.x stores each one as an extra series.
    ///
    /// ```
    /// use agentcore_telemetry::exposition::OpenMetricsEncoder;
    /// use agentcore_telemetry::Registry;
    ///
    /// let registry = Registry::new();
    /// registry.counter("jobs_total", "Jobs.").unwrap().inc();
    /// assert!(!OpenMetricsEncoder::new().encode(&registry).contains("jobs_created"));
    /// let encoder = OpenMetricsEncoder::new().with_created(true);
    /// assert!(encoder.encode(&registry).contains("\njobs_total 1\njobs_created "));
    /// ```
    pub const fn with_created(mut self, created: bool) -> OpenMetricsEncoder {
        self.created = created;
        self
    }

    /// Whether `_created` samples are written.
    ///
    /// ```
    /// use agentcore_telemetry::exposition::OpenMetricsEncoder;
    ///
    /// assert!(!OpenMetricsEncoder::new().created());
    /// assert!(OpenMetricsEncoder::new().with_created(true).created());
    /// ```
    pub const fn created(&self) -> bool {
        self.created
    }

    // `encode_into` and `encode`, which take a `Registry`, are in `registry::scrape`: the
    // registry calls into this module, never the other way round.
}

/// The OpenMetrics family name of a family registered as `name` (see the module docs).
pub(crate) fn family_name(kind: MetricKind, name: &str) -> &str {
    let suffix = match kind {
        MetricKind::Counter => "_total",
        MetricKind::Info => "_info",
        _ => return name,
    };
    match name.strip_suffix(suffix) {
        Some(base) if !base.is_empty() => base,
        _ => name,
    }
}

/// The unit of an OpenMetrics family, if its name ends in one (see the module docs).
pub(crate) fn unit(kind: MetricKind, family: &str) -> Option<&'static str> {
    if kind == MetricKind::Info {
        return None;
    }
    let (head, last) = family.rsplit_once('_')?;
    if head.is_empty() {
        return None;
    }
    BASE_UNITS.iter().copied().find(|u| *u == last)
}

/// The `# TYPE` keyword of a kind.
fn type_keyword(kind: MetricKind) -> &'static str {
    match kind {
        MetricKind::Counter => "counter",
        MetricKind::Gauge => "gauge",
        MetricKind::Histogram => "histogram",
        MetricKind::Summary => "summary",
        MetricKind::Info => "info",
    }
}

/// Writes `# TYPE`, `# UNIT` (when the name ends in a unit) and `# HELP` (when there is help)
/// of a family; returns the OpenMetrics family name.
pub(crate) fn write_header<'d>(out: &mut String, desc: &'d Descriptor) -> &'d str {
    write_family_header(out, desc.kind, &desc.name, &desc.help)
}

/// [`write_header`] from the parts of a descriptor (the `/metrics` server's own families have
/// none): `# TYPE`, `# UNIT`, `# HELP`, in the order OpenMetrics recommends. Returns the
/// family name (`name` without a counter's `_total` or an info's `_info`).
pub(crate) fn write_family_header<'n>(
    out: &mut String,
    kind: MetricKind,
    name: &'n str,
    help: &str,
) -> &'n str {
    let family = family_name(kind, name);
    out.push_str("# TYPE ");
    out.push_str(family);
    out.push(' ');
    out.push_str(type_keyword(kind));
    out.push('\n');
    if let Some(unit) = unit(kind, family) {
        out.push_str("# UNIT ");
        out.push_str(family);
        out.push(' ');
        out.push_str(unit);
        out.push('\n');
    }
    if !help.is_empty() {
        out.push_str("# HELP ");
        out.push_str(family);
        out.push(' ');
        // OpenMetrics escapes `\`, `"` and line feed in HELP: exactly the label-value escaping.
        escape_label_value(out, help);
        out.push('\n');
    }
    family
}

/// What every sample of one series shares: the OpenMetrics family name, the rendered labels
/// (`a="x",b="y"`, no braces) and, when `_created` samples are on, the creation time.
/// Only this crate builds one (it appears in the sealed series-encoding trait).
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct SeriesHead<'a> {
    pub(crate) family: &'a str,
    pub(crate) labels: &'a str,
    /// Microseconds since the Unix epoch; `None` when `_created` is off.
    pub(crate) created_micros: Option<u64>,
}

impl SeriesHead<'_> {
    /// Appends `family+suffix{labels,extra="v"} ` (braces omitted when there are no labels).
    #[inline]
    fn start(&self, out: &mut String, suffix: &str, extra: Option<(&str, &str)>) {
        out.push_str(self.family);
        out.push_str(suffix);
        if !self.labels.is_empty() || extra.is_some() {
            out.push('{');
            out.push_str(self.labels);
            if let Some((k, v)) = extra {
                if !self.labels.is_empty() {
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

    /// The `_created` sample, when on.
    #[inline]
    fn created(&self, out: &mut String) {
        if let Some(micros) = self.created_micros {
            self.start(out, "_created", None);
            out.push_str(itoa::Buffer::new().format(micros / 1_000_000));
            out.push('.');
            let frac = micros % 1_000_000;
            // Six digits, zero-padded: `.000042`.
            let mut digits = [b'0'; 6];
            let mut f = frac;
            for d in digits.iter_mut().rev() {
                *d = b'0' + (f % 10) as u8;
                f /= 10;
            }
            for &d in &digits {
                out.push(d as char);
            }
            end_line(out);
        }
    }
}

/// A metric's kept exemplar, as a sample carries it: ` # {labels} value timestamp`. The
/// exemplar record and its syntax are `primitives::exemplar`'s (its `ExemplarRead`); this trait
/// lets the encoder take one without depending on the metric types.
pub(crate) trait Exemplar {
    /// Appends ` # {labels} value timestamp` to `out`.
    fn write(&self, out: &mut String);
}

/// The exemplar of a counter that keeps none (a scrape-time counter): there is no value of it.
pub(crate) enum NoExemplar {}

impl Exemplar for NoExemplar {
    fn write(&self, _: &mut String) {
        match *self {}
    }
}

/// Ends a sample that may carry an exemplar: a counter's `_total` or a histogram's `_bucket`.
/// When the metric kept one (`primitives::exemplar`), it is appended before the line feed:
/// ` # {trace_id="…",span_id="…"} <value> <timestamp>` (OpenMetrics 1.0, "Exemplars": label
/// names and values at most 128 code points together, checked when recorded; the value inside
/// the bucket; the observation's timestamp in seconds). No other sample carries one.
#[inline]
pub(crate) fn end_exemplar_sample(out: &mut String, exemplar: Option<impl Exemplar>) {
    if let Some(e) = exemplar {
        e.write(out);
    }
    out.push('\n');
}

/// Ends a sample that must not carry an exemplar.
#[inline]
fn end_line(out: &mut String) {
    out.push('\n');
}

/// A float value (never a label): Go's shortest round-trip rendering with `.0` appended when
/// it has neither a decimal point nor an exponent (`2.0`, `-0.0`, `1e+06`), `+Inf`/`-Inf`/`NaN`.
/// OpenMetrics 1.0, "Numbers": "Integer numbers MUST NOT have a decimal point ... Floating
/// point numbers MUST be represented either with a decimal point or using scientific
/// notation"; a whole float written bare would read as an integer (and `-0` loses its sign).
/// The same rendering as the canonical `le`/`quantile` labels, and as the Go client's.
#[inline]
fn value_f64(out: &mut String, v: f64) {
    format_openmetrics_canonical(out, v);
}

/// An integer value.
#[inline]
fn value_u64(out: &mut String, v: u64) {
    out.push_str(itoa::Buffer::new().format(v));
}

/// A counter series: `family_total`, exact when it only saw whole increments, then `_created`.
#[inline]
pub(crate) fn counter(
    out: &mut String,
    head: &SeriesHead<'_>,
    int: u64,
    frac: f64,
    exemplar: Option<impl Exemplar>,
) {
    head.start(out, "_total", None);
    if frac == 0.0 {
        value_u64(out, int);
    } else {
        value_f64(out, counter_total(int, frac));
    }
    end_exemplar_sample(out, exemplar);
    head.created(out);
}

/// A scrape-time counter's value: nothing when it is NaN or negative (an OpenMetrics counter
/// total "is a non-NaN and MUST be monotonically non-decreasing ... starting from 0").
pub(crate) fn counter_value(out: &mut String, head: &SeriesHead<'_>, v: f64) {
    if v.is_nan() || v < 0.0 {
        return;
    }
    head.start(out, "_total", None);
    // `-0.0` (which passed the test above) is written `0.0`: a total has no sign.
    value_f64(out, v + 0.0);
    end_exemplar_sample(out, None::<NoExemplar>);
    head.created(out);
}

/// A gauge series.
#[inline]
pub(crate) fn gauge(out: &mut String, head: &SeriesHead<'_>, v: f64) {
    head.start(out, "", None);
    value_f64(out, v);
    end_line(out);
}

/// An info series: `family_info{labels} 1`.
#[inline]
pub(crate) fn info(out: &mut String, head: &SeriesHead<'_>) {
    head.start(out, "_info", None);
    out.push('1');
    end_line(out);
}

/// A histogram series: cumulative `_bucket`s in increasing `le` order (the last `+Inf`), then
/// `_count` and `_sum` if `sum_exposed` (the caller's decision: no negative bound, and no
/// negative value ever recorded; a negative or NaN `sum` is left out regardless), then
/// `_created`. `counts` holds one count per bucket, `+Inf` last; `les` the canonical `le` of
/// each finite bound; `exemplar(i)` reads bucket `i`'s exemplar.
#[inline]
pub(crate) fn histogram<E: Exemplar>(
    out: &mut String,
    head: &SeriesHead<'_>,
    les: &[Box<str>],
    sum_exposed: bool,
    counts: &[u64],
    sum: f64,
    exemplar: impl Fn(usize) -> Option<E>,
) {
    let mut cumulative = 0u64;
    for (i, &count) in counts.iter().enumerate() {
        cumulative = cumulative.wrapping_add(count);
        let le = les.get(i).map_or("+Inf", |s| s);
        head.start(out, "_bucket", Some(("le", le)));
        value_u64(out, cumulative);
        end_exemplar_sample(out, exemplar(i));
    }
    if sum_exposed && sum >= 0.0 {
        // `_count` is the `+Inf` bucket by construction: both come from the same reading.
        head.start(out, "_count", None);
        value_u64(out, cumulative);
        end_line(out);
        head.start(out, "_sum", None);
        value_f64(out, sum);
        end_line(out);
    }
    head.created(out);
}

/// One quantile sample of a summary series; `label` is a scratch buffer for its canonical
/// `quantile` value. Nothing when the value is negative ("Quantile values MUST NOT be
/// negative").
#[inline]
pub(crate) fn summary_quantile(
    out: &mut String,
    head: &SeriesHead<'_>,
    label: &mut String,
    q: f64,
    v: f64,
) {
    if v < 0.0 {
        return;
    }
    label.clear();
    format_openmetrics_canonical(label, q);
    head.start(out, "", Some(("quantile", label)));
    value_f64(out, v);
    end_line(out);
}

/// The end of a summary series: `_count`, `_sum` (when given, and neither negative nor NaN),
/// `_created`.
#[inline]
pub(crate) fn summary_end(out: &mut String, head: &SeriesHead<'_>, count: u64, sum: Option<f64>) {
    head.start(out, "_count", None);
    value_u64(out, count);
    end_line(out);
    if let Some(sum) = sum.filter(|&s| s >= 0.0) {
        head.start(out, "_sum", None);
        value_f64(out, sum);
        end_line(out);
    }
    head.created(out);
}

/// The end of every exposition.
pub(crate) fn write_eof(out: &mut String) {
    out.push_str("# EOF\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_names_drop_the_counter_and_info_suffixes_only() {
        assert_eq!(family_name(MetricKind::Counter, "x_total"), "x");
        assert_eq!(family_name(MetricKind::Counter, "x"), "x");
        assert_eq!(family_name(MetricKind::Counter, "_total"), "_total");
        assert_eq!(family_name(MetricKind::Counter, "x_total_total"), "x_total");
        assert_eq!(family_name(MetricKind::Info, "build_info"), "build");
        assert_eq!(family_name(MetricKind::Info, "build"), "build");
        assert_eq!(family_name(MetricKind::Gauge, "x_total"), "x_total");
        assert_eq!(family_name(MetricKind::Histogram, "x_info"), "x_info");
    }

    #[test]
    fn units_are_base_unit_suffixes() {
        assert_eq!(unit(MetricKind::Histogram, "tool_seconds"), Some("seconds"));
        assert_eq!(
            unit(MetricKind::Counter, "process_cpu_seconds"),
            Some("seconds")
        );
        assert_eq!(
            unit(MetricKind::Gauge, "resident_memory_bytes"),
            Some("bytes")
        );
        assert_eq!(unit(MetricKind::Gauge, "cache_hit_ratio"), Some("ratio"));
        assert_eq!(unit(MetricKind::Gauge, "agent_memory_mb"), None);
        assert_eq!(unit(MetricKind::Gauge, "cpu_percent"), None);
        assert_eq!(unit(MetricKind::Gauge, "seconds"), None);
        assert_eq!(unit(MetricKind::Gauge, "_seconds"), None);
        assert_eq!(unit(MetricKind::Gauge, "milliseconds"), None);
        assert_eq!(unit(MetricKind::Info, "uptime_seconds"), None);
    }

    #[test]
    fn created_has_six_fraction_digits() {
        let head = SeriesHead {
            family: "x",
            labels: "",
            created_micros: Some(1_700_000_000_000_042),
        };
        let mut out = String::new();
        head.created(&mut out);
        assert_eq!(out, "x_created 1700000000.000042\n");
    }
}
