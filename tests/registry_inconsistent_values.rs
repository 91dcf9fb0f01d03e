//! A label value whose `AsRef<str>` answers differently from one call to the next is the
//! caller's logic error (as an inconsistent `Hash` is for a `HashMap`), but it must not hang a
//! lookup or corrupt the family. It did both: the insert path called `as_ref` again at every
//! step, so a value alternating "a"/"b" made `with_label_values` loop for ever (the insert found
//! the series the probe then did not match), and a value that said "a" to the hash and "b"
//! afterwards made a series that later lookups of "b" missed and inserted again: two
//! `{k="b"}` lines in one exposition.

use std::cell::Cell;
use std::sync::mpsc;
use std::time::Duration;

use agentcore_telemetry::Registry;

/// "a" on even calls, "b" on odd ones.
struct Alternating(Cell<u32>);

impl AsRef<str> for Alternating {
    fn as_ref(&self) -> &str {
        let n = self.0.get();
        self.0.set(n + 1);
        if n % 2 == 0 {
            "a"
        } else {
            "b"
        }
    }
}

/// "a" on the first call, "b" on every later one.
struct FirstA(Cell<bool>);

impl AsRef<str> for FirstA {
    fn as_ref(&self) -> &str {
        if self.0.replace(true) {
            "b"
        } else {
            "a"
        }
    }
}

/// The exposition's sample lines of family `name`.
fn samples(text: &str, name: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_value_that_alternates_does_not_hang_the_lookup() {
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let registry = Registry::new();
        let family = registry
            .counter_family("flip_total", "Flips.", &["k"])
            .unwrap();
        for _ in 0..4 {
            let value = Alternating(Cell::new(0));
            family.with_label_values(&[value]).unwrap().inc();
        }
        let _ = done.send(samples(&registry.encode_text(), "flip_total"));
    });
    let lines = finished
        .recv_timeout(Duration::from_secs(20))
        .expect("with_label_values returned (it looped for ever)");
    assert!(
        !lines.is_empty() && lines.len() <= 2,
        "one series per value read: {lines:?}"
    );
}

#[test]
fn a_value_that_changes_after_the_hash_makes_no_duplicate_series() {
    let registry = Registry::new();
    let family = registry
        .counter_family("first_total", "Firsts.", &["k"])
        .unwrap();
    family
        .with_label_values(&[FirstA(Cell::new(false))])
        .unwrap()
        .inc();
    family.with_label_values(&["b"]).unwrap().inc();
    family.with_label_values(&["a"]).unwrap().inc();
    let lines = samples(&registry.encode_text(), "first_total");
    let mut unique = lines
        .iter()
        .map(|l| l.split(' ').next().unwrap_or_default())
        .collect::<Vec<_>>();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), lines.len(), "a label set twice: {lines:?}");
    assert_eq!(family.len(), lines.len());
}
