//! Issue 20 defect 1: an empty histogram or summary exposes `_sum 0`, never `_sum -0`.
//!
//! The defect showed only in a fresh process, before any thread had recorded into the arena
//! (an `f64` `Iterator::sum` over no blocks is `-0.0`), so this file is its own test binary
//! with one test, and nothing in it records before the first scrape.

use agentcore_telemetry::{Buckets, Registry, SummaryConfig};

#[test]
fn an_empty_histogram_and_summary_expose_a_positive_zero_sum() {
    let registry = Registry::new();
    let histogram = registry
        .histogram_family("req_seconds", "Request latency.", &[], Buckets::default())
        .unwrap();
    let summary = registry
        .summary_family("job_seconds", "Job latency.", &[], SummaryConfig::default())
        .unwrap();
    // Created series, nothing observed.
    histogram.with_label_values::<&str>(&[]).unwrap();
    summary.with_label_values::<&str>(&[]).unwrap();

    let text = registry.encode_text();
    for sum in ["req_seconds_sum", "job_seconds_sum"] {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{sum} ")))
            .unwrap_or_else(|| panic!("no {sum} in\n{text}"));
        assert_eq!(line, format!("{sum} 0"), "\n{text}");
    }
    let om = registry.encode_openmetrics();
    assert!(!om.contains("_sum -0"), "\n{om}");
}
