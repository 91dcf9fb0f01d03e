//! `agentcore_runtime_info` never disappears from a scrape: `set_runtime_info` replaces the
//! info series without a moment with none (a scrape that finds no info series breaks every
//! `group_left` join on it and fires `absent(agentcore_runtime_info)` alerts), and calling
//! it again with the same information changes nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use agentcore_telemetry::{CollectorConfig, MetricsCollector};

const V1: [(&str, &str); 3] = [
    ("version", "1.0.0"),
    ("environment", "production"),
    ("platform", "linux"),
];
const V2: [(&str, &str); 3] = [
    ("version", "1.0.1"),
    ("environment", "production"),
    ("platform", "linux"),
];

fn info_lines(c: &MetricsCollector) -> Vec<String> {
    c.encode_text()
        .lines()
        .filter(|l| l.starts_with("agentcore_runtime_info{"))
        .map(str::to_owned)
        .collect()
}

/// Scrapes while another thread calls `set_runtime_info` with `infos` in turn, for a while;
/// returns how many scrapes saw no info series and how many saw more than one.
fn scrape_while_setting(infos: &'static [[(&'static str, &'static str); 3]]) -> (usize, usize) {
    let c = MetricsCollector::new();
    c.set_runtime_info(infos[0]);
    let stop = AtomicBool::new(false);
    let (mut none, mut several) = (0, 0);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                c.set_runtime_info(infos[i % infos.len()]);
                i += 1;
            }
        });
        let deadline = Instant::now() + Duration::from_millis(700);
        while Instant::now() < deadline {
            // The snapshot reads the family the same way; cheaper than a full encode.
            let snapshot = c.snapshot_metrics();
            match snapshot.get("runtime_info").map_or(0, |f| f.series.len()) {
                0 => none += 1,
                1 => {}
                _ => several += 1,
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
    (none, several)
}

#[test]
fn setting_the_same_runtime_info_again_never_hides_it_from_a_scrape() {
    let (none, several) = scrape_while_setting(&[V1]);
    assert_eq!(
        (none, several),
        (0, 0),
        "scrapes without / with several info series"
    );
}

#[test]
fn changing_the_runtime_info_never_hides_it_from_a_scrape() {
    let (none, _several) = scrape_while_setting(&[V1, V2]);
    assert_eq!(none, 0, "scrapes that saw no agentcore_runtime_info series");
}

#[test]
fn set_runtime_info_replaces_the_series() {
    let c = MetricsCollector::new();
    c.set_runtime_info(V1);
    c.set_runtime_info(V1);
    assert_eq!(
        info_lines(&c),
        ["agentcore_runtime_info{version=\"1.0.0\",environment=\"production\",platform=\"linux\"} 1"]
    );
    c.set_runtime_info(V2);
    assert_eq!(
        info_lines(&c),
        ["agentcore_runtime_info{version=\"1.0.1\",environment=\"production\",platform=\"linux\"} 1"]
    );
}

/// A cardinality cap of one (or zero, raised to one) left no room for the new info series
/// beside the old one: it folded into the overflow series, the old one was then removed, and
/// the scrape showed only `{version="__overflow__",...}` until the next change.
#[test]
fn changing_the_runtime_info_under_a_cap_of_one_keeps_it() {
    for cap in [0, 1] {
        let c = MetricsCollector::with_config(CollectorConfig {
            max_series_per_family: cap,
            ..CollectorConfig::default()
        });
        for (info, version) in [(V1, "1.0.0"), (V2, "1.0.1"), (V1, "1.0.0")] {
            c.set_runtime_info(info);
            assert_eq!(
                info_lines(&c),
                [format!(
                    "agentcore_runtime_info{{version=\"{version}\",environment=\"production\",platform=\"linux\"}} 1"
                )],
                "cap {cap}"
            );
        }
    }
}

/// Every value `__overflow__` (the label value reserved for a family's overflow series)
/// resolved to the info family's overflow series, which no removal reaches: that series
/// replaced the runtime info, and every later change left it exposed beside the new one, two
/// `agentcore_runtime_info` series for good (found by review helper-123). Such information
/// is refused and counted; the information before it stays.
#[test]
fn runtime_info_of_the_reserved_overflow_values_is_refused_not_left_behind() {
    use agentcore_telemetry::registry::OVERFLOW_LABEL_VALUE as O;

    let c = MetricsCollector::new();
    c.set_runtime_info(V1);
    c.set_runtime_info([("version", O), ("environment", O), ("platform", O)]);
    assert_eq!(
        info_lines(&c),
        ["agentcore_runtime_info{version=\"1.0.0\",environment=\"production\",platform=\"linux\"} 1"]
    );
    assert_eq!(c.rejected_values("agentcore_runtime_info"), 1);
    c.set_runtime_info(V2);
    assert_eq!(
        info_lines(&c),
        ["agentcore_runtime_info{version=\"1.0.1\",environment=\"production\",platform=\"linux\"} 1"]
    );
}
