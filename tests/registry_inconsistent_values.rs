//! A label value whose `AsRef<str>` answers differently from one call to the next is the
//! caller's logic error (as an inconsistent `Hash` is for a `HashMap`), but it must not hang a
//! lookup or corrupt the family. It did both: the insert path called `as_ref` again at every
//! step, so a value alternating "a"/"b" made `with_label_values` loop for ever (the insert found
//! the series the probe then did not match), and a value that said "a" to the hash and "b"
//! afterwards made a series that later lookups of "b" missed and inserted again: two
//! `{k="b"}` lines in one exposition. `Family::insert_metric` had the same defect (found by an
//! adversarial review), and `Family::get` and `Family::remove` hashed one reading and compared
//! another.

use std::cell::Cell;
use std::sync::mpsc;
use std::time::Duration;

use agentcore_telemetry::registry::FamilyOptions;
use agentcore_telemetry::{Counter, Registry};

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

/// "a" for the first `n` calls, then `then` on every later one.
struct FirstNThen(Cell<u32>, u32, &'static str);

impl AsRef<str> for FirstNThen {
    fn as_ref(&self) -> &str {
        let calls = self.0.get();
        self.0.set(calls + 1);
        if calls < self.1 {
            "a"
        } else {
            self.2
        }
    }
}

/// `insert_metric` read each value three times (the overflow check, the hash, the insert), so a
/// value that changed after the hash was inserted under another value's hash: later lookups of
/// what it stored missed it and inserted it again, two `{k="b"}` lines in one exposition (found
/// by an adversarial review, the same defect `insert_slow` had).
#[test]
fn insert_metric_reads_each_value_once_and_makes_no_duplicate_series() {
    let registry = Registry::new();
    let family = registry
        .counter_family("inserted_total", "Inserted.", &["k"])
        .unwrap();
    let value = FirstNThen(Cell::new(0), 2, "b");
    assert!(family
        .insert_metric(&[value], Counter::new().unwrap())
        .unwrap());
    family.with_label_values(&["b"]).unwrap().inc();
    family.with_label_values(&["a"]).unwrap().inc();
    let lines = samples(&registry.encode_text(), "inserted_total");
    let mut unique = lines
        .iter()
        .map(|l| l.split(' ').next().unwrap_or_default())
        .collect::<Vec<_>>();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), lines.len(), "a label set twice: {lines:?}");
    assert_eq!(family.len(), lines.len());
}

/// The same for the overflow series' own values: a value that said "a" to the overflow check and
/// `__overflow__` afterwards became a regular series beside the overflow series, with the very
/// same labels.
#[test]
fn insert_metric_never_adds_a_second_overflow_series() {
    let registry = Registry::new();
    let options = FamilyOptions {
        max_series: 2,
        ..FamilyOptions::default()
    };
    let family = registry
        .register::<Counter>("overflowing_total", "Overflowing.", &["k"], (), options)
        .unwrap();
    let value = FirstNThen(Cell::new(0), 1, "__overflow__");
    let _ = family.insert_metric(&[value], Counter::new().unwrap());
    for k in ["x", "y", "z"] {
        family.with_label_values(&[k]).unwrap().inc(); // "z" (or "y") folds: the overflow series
    }
    let lines = samples(&registry.encode_text(), "overflowing_total");
    let overflow = lines
        .iter()
        .filter(|l| l.contains("k=\"__overflow__\""))
        .count();
    assert_eq!(overflow, 1, "the overflow labels twice: {lines:?}");
}

/// `Family::get` hashed the caller's values and then compared them with a stored series' by
/// reading them again, so a value that said "a" and then "b" was looked up under "a"'s hash as
/// "b": the series for "a" was not found. Read once, it is: the one value it read.
#[test]
fn get_reads_each_value_once() {
    let registry = Registry::new();
    let family = registry
        .counter_family("got_total", "Got.", &["k"])
        .unwrap();
    family.with_label_values(&["a"]).unwrap().inc_by(3);
    let got = family.get(&[FirstA(Cell::new(false))]);
    assert_eq!(
        got.map(|c| c.get()),
        Some(3.0),
        "the series for what it read"
    );
}

/// `Family::remove` likewise hashed one reading and compared another: with series for both
/// "a" and "b", a value that said "a" and then "b" removed neither and returned `false`. Read
/// once, it removes the series for what it read, and only that one.
#[test]
fn remove_reads_each_value_once() {
    let registry = Registry::new();
    let family = registry
        .counter_family("removed_total", "Removed.", &["k"])
        .unwrap();
    family.with_label_values(&["a"]).unwrap().inc();
    family.with_label_values(&["b"]).unwrap().inc();
    assert!(
        family.remove(&[FirstA(Cell::new(false))]),
        "\"a\" was there"
    );
    assert!(family.get(&["a"]).is_none(), "the series it read is gone");
    assert!(family.get(&["b"]).is_some(), "the other one stays");
    assert_eq!(family.len(), 1);
}
