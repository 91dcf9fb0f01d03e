//! The names a family takes in each exposition format ([`claims`]), which registration checks
//! against every family already registered, so that both formats' expositions stay valid; and
//! the set of every name taken so far ([`Claimed`]), which makes that check a few lookups.

use std::collections::HashSet;

use crate::exposition::openmetrics;
use crate::exposition::MetricKind;

/// A name a family takes in one of the formats it can be exposed in.
#[derive(Debug, PartialEq, Eq, Hash)]
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

/// Every name the registered families take (their [`claims`]), kept beside the list of
/// families under the registry's writer mutex. A registration checks its own few claims here;
/// computing every registered family's claims again made each registration cost time and
/// allocations in proportion to the families already there (10,000 families took 29 s to
/// register in a release build). Families are never unregistered, so claims are only added.
#[derive(Debug, Default)]
pub(super) struct Claimed(HashSet<Claim>);

impl Claimed {
    /// The first of `new` (in its order) that a registered family takes, as a name.
    pub(super) fn clash(&self, new: &[Claim]) -> Option<String> {
        new.iter()
            .find(|claim| self.0.contains(claim))
            .map(|claim| claim.name().to_string())
    }

    /// Records the claims of a family just registered.
    pub(super) fn extend(&mut self, claims: impl IntoIterator<Item = Claim>) {
        self.0.extend(claims);
    }
}

impl IntoIterator for Claimed {
    type Item = Claim;
    type IntoIter = std::collections::hash_set::IntoIter<Claim>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`Claimed`] refuses exactly the registrations a comparison with every registered
    /// family's claims refuses (how registration checked before it), over names built to
    /// collide in every way the formats allow: each base name with every suffix a family of
    /// any kind may add or drop, registered as every kind, in order. The name it reports is
    /// the new family's first claim that any registered family takes; the old scan reported
    /// the first such claim shared with the first family by name, which differs only when the
    /// new family clashes with two (a counter `x_total` beside a counter `x_created_total` and
    /// a gauge `x_total`: `x_total` now, `x_created` before; both are names they share).
    #[test]
    fn the_claimed_set_refuses_what_a_scan_of_every_family_refuses() {
        const KINDS: [MetricKind; 5] = [
            MetricKind::Counter,
            MetricKind::Gauge,
            MetricKind::Histogram,
            MetricKind::Summary,
            MetricKind::Info,
        ];
        let suffixes = [
            "",
            "_total",
            "_created",
            "_bucket",
            "_count",
            "_sum",
            "_info",
            "_sum_total",
            "_total_total",
            "_info_info",
        ];
        let (mut claimed, mut registered) = (Claimed::default(), Vec::<Vec<Claim>>::new());
        let (mut refused, mut accepted) = (0, 0);
        for (i, kind) in KINDS.iter().cycle().take(3 * KINDS.len()).enumerate() {
            for base in ["a", "b_total", "c_info"] {
                for suffix in suffixes {
                    let name = format!("{base}{suffix}");
                    let new = claims(&name, *kind);
                    let scan: Vec<&str> = new
                        .iter()
                        .filter(|c| registered.iter().any(|old| old.contains(c)))
                        .map(Claim::name)
                        .collect();
                    match claimed.clash(&new) {
                        Some(clash) => {
                            refused += 1;
                            assert_eq!(clash, scan[0], "{name} ({kind:?}), round {i}");
                        }
                        None => {
                            accepted += 1;
                            assert!(scan.is_empty(), "{name} ({kind:?}) clashes on {scan:?}");
                            registered.push(claims(&name, *kind));
                            claimed.extend(new);
                        }
                    }
                }
            }
        }
        assert!(
            refused > 100 && accepted > 10,
            "{refused} refused, {accepted} accepted"
        );
    }
}
