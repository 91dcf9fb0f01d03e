//! Families of one to six labels: value lists that differ in one position only, short and long,
//! each get a series of their own, and every way of finding a series (`with_label_values`,
//! `get`, `remove`, the scrape) agrees.
//!
//! A series keeps the keys of its first two values inline and computes the others from its text
//! (`registry::series`, `INLINE_KEYS`), and the lookup keeps the caller's first four keys
//! (`KEPT`); so the positions below, above and at those bounds take different paths. Long values
//! (over 16 bytes) that share their length and first and last eight bytes have equal keys and are
//! told apart by their text only.

use agentcore_telemetry::Registry;

/// Base values, and values that differ from them in one position: short ones (their keys decide)
/// and long ones whose keys equal the base's (their text decides).
const SHORT_BASE: &str = "v";
const SHORT_OTHER: &str = "w";
const LONG_BASE: &str = "aaaaaaaa-0-bbbbbbbb";
const LONG_OTHER: &str = "aaaaaaaa-1-bbbbbbbb";

fn label_lists(n: usize, base: &str, other: &str) -> Vec<Vec<String>> {
    let mut lists = vec![vec![base.to_string(); n]];
    for p in 0..n {
        let mut l = vec![base.to_string(); n];
        l[p] = other.to_string();
        lists.push(l);
    }
    lists
}

#[test]
fn value_lists_that_differ_in_one_position_get_their_own_series() {
    for n in 1..=6 {
        for (base, other) in [(SHORT_BASE, SHORT_OTHER), (LONG_BASE, LONG_OTHER)] {
            let registry = Registry::new();
            let names: Vec<String> = (0..n).map(|i| format!("l{i}")).collect();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let family = registry
                .counter_family("many_total", "Many labels.", &names)
                .unwrap();
            let lists = label_lists(n, base, other);
            // Each list gets an amount of its own, twice (the second time a lookup of an existing
            // series, through the thread's cache).
            for _ in 0..2 {
                for (i, l) in lists.iter().enumerate() {
                    family.with_label_values(l).unwrap().inc_by(i as u64 + 1);
                }
            }
            assert_eq!(family.len(), lists.len(), "{n} labels, {base}");
            for (i, l) in lists.iter().enumerate() {
                let got = family.get(l).map(|c| c.get());
                assert_eq!(got, Some(2.0 * (i as f64 + 1.0)), "{n} labels, {l:?}");
            }
            let text = registry.encode_text();
            for (i, l) in lists.iter().enumerate() {
                let labels: Vec<String> = names
                    .iter()
                    .zip(l)
                    .map(|(k, v)| format!("{k}=\"{v}\""))
                    .collect();
                let line = format!("many_total{{{}}} {}", labels.join(","), 2 * (i + 1));
                assert!(
                    text.lines().any(|t| t == line),
                    "{line} missing from:\n{text}"
                );
            }
            // Removing each list removes its series and no other.
            for (i, l) in lists.iter().enumerate() {
                assert!(family.remove(l), "{n} labels, {l:?}");
                assert!(family.get(l).is_none());
                assert_eq!(family.len(), lists.len() - i - 1);
                for later in &lists[i + 1..] {
                    assert!(family.get(later).is_some(), "{later:?} gone with {l:?}");
                }
            }
        }
    }
}
