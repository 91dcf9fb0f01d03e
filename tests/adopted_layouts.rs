//! A family's series share one bucket layout (histograms) or one set of quantiles (summaries):
//! `Family::insert_metric` refuses a handle made with another, so that every series of a family
//! has the same `le` (or `quantile`) label values, as `histogram_quantile` over `sum by (le)`
//! needs. "The same" is the same labels: `-0.0` and `0.0` are equal numbers, but `le="-0.0"`
//! and `le="0.0"` are two label values (review helper-161).

use std::collections::BTreeSet;
use std::time::Duration;

use agentcore_telemetry::{Buckets, Histogram, Registry, Summary, SummaryConfig};

/// The values of `label` in the exposition's samples.
fn label_values(text: &str, label: &str) -> BTreeSet<String> {
    let key = format!("{label}=\"");
    text.lines()
        .filter_map(|line| {
            let rest = &line[line.find(&key)? + key.len()..];
            Some(rest[..rest.find('"')?].to_string())
        })
        .collect()
}

#[test]
fn a_histogram_whose_bounds_differ_only_in_the_sign_of_zero_is_not_adopted() {
    let registry = Registry::new();
    let family = registry
        .histogram_family("h", "H.", &["k"], Buckets::new(vec![0.0, 1.0]).unwrap())
        .unwrap();
    family.with_label_values(&["a"]).unwrap().observe(0.5);
    let other = Histogram::new(Buckets::new(vec![-0.0, 1.0]).unwrap()).unwrap();
    let adopted = family.insert_metric(&["b"], other);
    for text in [registry.encode_openmetrics(), registry.encode_text()] {
        let les = label_values(&text, "le");
        assert!(
            adopted.is_err() && les.len() == 3,
            "adopted: {adopted:?}; one family, le values {les:?}:\n{text}"
        );
    }
}

#[test]
fn a_summary_whose_quantiles_differ_only_in_the_sign_of_zero_is_not_adopted() {
    let config = |q0: f64| SummaryConfig::new(vec![q0, 0.5], Duration::from_secs(60), 5).unwrap();
    let registry = Registry::new();
    let family = registry
        .summary_family("s", "S.", &["k"], config(0.0))
        .unwrap();
    family.with_label_values(&["a"]).unwrap().observe(0.5);
    let other = Summary::new(config(-0.0)).unwrap();
    other.observe(0.5);
    let adopted = family.insert_metric(&["b"], other);
    for text in [registry.encode_openmetrics(), registry.encode_text()] {
        let quantiles = label_values(&text, "quantile");
        assert!(
            adopted.is_err() && quantiles.len() == 2,
            "adopted: {adopted:?}; one family, quantile values {quantiles:?}:\n{text}"
        );
    }
}
