//! The names a family takes in each exposition format ([`claims`]), which registration checks
//! against every family already registered, so that both formats' expositions stay valid.

use crate::exposition::openmetrics;
use crate::exposition::MetricKind;

/// A name a family takes in one of the formats it can be exposed in.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Claim {
    /// A sample name in the text format 0.0.4.
    TextSample(String),
    /// A family name or a sample name in OpenMetrics 1.0. The two share one namespace: a
    /// family name must differ from every other family's name *and* from every sample name
    /// another family may produce (a histogram `foo_total` beside a counter `foo`, whose
    /// sample is `foo_total`, is a clash), and the parser rejects the whole exposition when
    /// one of them repeats ("Clashing name").
    OpenMetrics(String),
}

impl Claim {
    pub(super) fn name(&self) -> &str {
        match self {
            Claim::TextSample(n) | Claim::OpenMetrics(n) => n,
        }
    }
}

/// Every name a family of `kind` named `name` takes. In the text format 0.0.4: its sample names
/// (`x`, and `x_bucket`, `x_sum`, `x_count` for a histogram). In OpenMetrics 1.0: its family
/// name, which drops a counter's `_total` (a counter `x_total` is the family `x`) and an info's
/// `_info`, and the sample names the family may produce (`_created` included, which
/// OpenMetrics makes optional). Two families may not share a name of the same format: OpenMetrics
/// requires unique family names and forbids a family name that could produce another family's
/// sample name (a gauge `x_created` beside a counter `x`; a counter `h_sum_total`, family
/// `h_sum`, beside a histogram `h`), and a parser that groups samples by family (the Python
/// client's, for one) rejects an exposition with a gauge `x` and a counter `x_total`, which both
/// are family `x`.
pub(super) fn claims(name: &str, kind: MetricKind) -> Vec<Claim> {
    let mut claims: Vec<Claim> = kind
        .sample_suffixes()
        .iter()
        .map(|suffix| Claim::TextSample(format!("{name}{suffix}")))
        .collect();
    let (family, samples): (&str, &[&str]) = match kind {
        MetricKind::Counter => (
            openmetrics::family_name(kind, name),
            &["_total", "_created"],
        ),
        MetricKind::Gauge => (name, &[""]),
        MetricKind::Histogram => (name, &["_bucket", "_count", "_sum", "_created"]),
        MetricKind::Summary => (name, &["", "_count", "_sum", "_created"]),
        MetricKind::Info => (openmetrics::family_name(kind, name), &["_info"]),
    };
    claims.push(Claim::OpenMetrics(family.to_string()));
    claims.extend(
        samples
            .iter()
            .map(|suffix| format!("{family}{suffix}"))
            .filter(|sample| sample != family)
            .map(Claim::OpenMetrics),
    );
    claims
}
