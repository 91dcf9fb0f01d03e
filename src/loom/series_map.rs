//! loom models of the series table (`registry::family::Family`): concurrent lookup, insert,
//! removal, `retain`, overflow folding and the scrape's sorted cache, on the family's real code
//! with real reclamation: under `--cfg agentcore_loom` the family's writer mutex, sort-cache mutex,
//! table, slots and counters are loom's (through the crate's `sync` shim), tables start at four
//! slots (so inserts rebuild and retire them) and every retire reclaims (`RECLAIM_BATCH` is 1), so
//! the models explore lookups racing the freeing of the tables and series they read. Each family
//! gets a reclamation domain of its own (the process-wide one lives in a static, which cannot hold
//! loom objects), and a fixed hash seed, so every execution puts the same keys in the same slots.
//!
//! The families are `Family<Gauge>` built with `Family::standalone` (no registry): a registry
//! family counts folds in a `Counter`, which records into the process-wide slot arena, and loom
//! objects cannot outlive one model execution. Gauges keep a plain `std` atomic, which loom does
//! not explore, but every model thread runs on one OS thread, so their adds are never lost.
//!
//! Run: `bash .ci/loom` (the models of `src/loom/`, under `--cfg agentcore_loom`).

use std::collections::BTreeMap;

use crate::registry::OVERFLOW_LABEL_VALUE;
use crate::sync::era::Domain;
use crate::{Family, Gauge};
use loom::sync::Arc;
use loom::thread;

/// Every series the family exposes, as `label values -> value` (the overflow series included,
/// under its `__overflow__` values), asserting no label-value list appears twice.
fn exposed(family: &Family<Gauge>) -> BTreeMap<Vec<String>, f64> {
    let mut out = BTreeMap::new();
    family.for_each_series(|series| {
        let key: Vec<String> = series.label_values().to_vec();
        let previous = out.insert(key.clone(), series.metric().get());
        assert!(previous.is_none(), "two series for {key:?}");
    });
    out
}

fn leak_domain() -> &'static Domain {
    Box::leak(Box::new(Domain::new()))
}

fn key(v: &str) -> Vec<String> {
    vec![v.to_string()]
}

/// Invariant 1 (one series per label-value list) and copy-on-write: two threads create the same
/// key at once while one of them also creates a second key and the other looks up a key that
/// existed before (possibly in the shard being copied). Afterwards each key has exactly one
/// series holding every add made through it; the pre-existing series was never lost or
/// duplicated by a concurrent copy of its shard.
#[test]
fn concurrent_inserts_never_duplicate_or_lose_a_series() {
    loom::model(|| {
        let family = Arc::new(Family::<Gauge>::standalone(
            "m",
            &["k"],
            (),
            16,
            leak_domain(),
        ));
        family.with_label_values(&["x"]).unwrap().add(1.0);
        let t1 = {
            let family = family.clone();
            thread::spawn(move || {
                family.with_label_values(&["a"]).unwrap().add(1.0);
                family.with_label_values(&["b"]).unwrap().add(1.0);
            })
        };
        let t2 = {
            let family = family.clone();
            thread::spawn(move || {
                family.with_label_values(&["a"]).unwrap().add(1.0);
                family.with_label_values(&["x"]).unwrap().add(1.0);
            })
        };
        t1.join().unwrap();
        t2.join().unwrap();
        let want = BTreeMap::from([(key("a"), 2.0), (key("b"), 1.0), (key("x"), 2.0)]);
        assert_eq!(exposed(&family), want);
        assert_eq!(family.len(), 3);
        assert_eq!(family.overflowed(), 0);
    });
}

/// Invariant 2 (cardinality cap and folding): with a cap of one series, two threads create two
/// different keys at once. Exactly one gets a series; the other's add goes to the overflow
/// series and is counted as one fold. `len` never exceeds the cap, even mid-race, and no add is
/// lost.
#[test]
fn racing_inserts_past_the_cap_fold_exactly_once() {
    loom::model(|| {
        let family = Arc::new(Family::<Gauge>::standalone(
            "m",
            &["k"],
            (),
            1,
            leak_domain(),
        ));
        let spawn = |v: &'static str| {
            let family = family.clone();
            thread::spawn(move || {
                family.with_label_values(&[v]).unwrap().add(1.0);
                assert!(family.len() <= 1, "len {} over the cap", family.len());
            })
        };
        let (t1, t2) = (spawn("a"), spawn("b"));
        t1.join().unwrap();
        t2.join().unwrap();
        let series = exposed(&family);
        assert_eq!(family.len(), 1);
        assert_eq!(family.overflowed(), 1);
        assert_eq!(series.get(&key(OVERFLOW_LABEL_VALUE)), Some(&1.0));
        assert_eq!(series.len(), 2, "{series:?}");
        assert_eq!(series.values().sum::<f64>(), 2.0);
    });
}

/// Invariants 1 and 2 under removal: a full family (cap 2) loses one series while another thread
/// creates a new key. The new key either gets the freed room or, if it saw the family full, is
/// folded and counted; never both, never lost, and `len` stays the number of series in the map
/// and within the cap. The removed key is gone; the other one is untouched.
#[test]
fn removal_racing_an_insert_keeps_the_count_and_the_cap() {
    loom::model(|| {
        let family = Arc::new(Family::<Gauge>::standalone(
            "m",
            &["k"],
            (),
            2,
            leak_domain(),
        ));
        family.with_label_values(&["a"]).unwrap().add(1.0);
        family.with_label_values(&["b"]).unwrap().add(1.0);
        let remover = {
            let family = family.clone();
            thread::spawn(move || assert!(family.remove(&["a"])))
        };
        let inserter = {
            let family = family.clone();
            thread::spawn(move || {
                family.with_label_values(&["c"]).unwrap().add(1.0);
                assert!(family.len() <= 2);
            })
        };
        remover.join().unwrap();
        inserter.join().unwrap();
        let series = exposed(&family);
        assert!(!series.contains_key(&key("a")));
        assert_eq!(series.get(&key("b")), Some(&1.0));
        let overflow = series.get(&key(OVERFLOW_LABEL_VALUE)).copied();
        match series.get(&key("c")) {
            Some(&v) => {
                assert_eq!(v, 1.0);
                assert_eq!((family.overflowed(), overflow), (0, None));
                assert_eq!(family.len(), 2);
            }
            None => {
                assert_eq!((family.overflowed(), overflow), (1, Some(1.0)));
                assert_eq!(family.len(), 1);
            }
        }
    });
}

/// Invariant 3 (the scrape's sorted cache): a scrape that runs while a series is created may
/// or may not include it, but the next scrape after the insert is done must: the insert's
/// generation bump is ordered after the new map is published, so a cache built from the old
/// map is never stamped with the new generation.
#[test]
fn a_scrape_racing_an_insert_never_caches_a_stale_series_list() {
    loom::model(|| {
        let family = Arc::new(Family::<Gauge>::standalone(
            "m",
            &["k"],
            (),
            16,
            leak_domain(),
        ));
        family.with_label_values(&["a"]).unwrap().add(1.0);
        let _ = exposed(&family);
        let inserter = {
            let family = family.clone();
            thread::spawn(move || family.with_label_values(&["b"]).unwrap().add(1.0))
        };
        let scraper = {
            let family = family.clone();
            thread::spawn(move || {
                let seen = exposed(&family);
                assert!(seen.contains_key(&key("a")));
                assert!(seen.len() <= 2);
            })
        };
        inserter.join().unwrap();
        scraper.join().unwrap();
        let want = BTreeMap::from([(key("a"), 1.0), (key("b"), 1.0)]);
        assert_eq!(exposed(&family), want);
    });
}

/// `retain` calls its predicate without the family's locks (it may call back into the family)
/// and removes what the predicate refused, while another thread looks up the key being removed
/// and then creates a new one. The refused key is gone unless the racing lookup re-created it
/// afterwards (then it holds only that lookup's add); the other keys are untouched; `len` is the
/// number of exposed series; nothing a lookup holds is freed under it (real reclamation).
///
/// Mutation caught: running the predicate under the writer mutex (the old `retain`) deadlocks the
/// model when the predicate calls back into the family ("deadlock" reported by loom).
#[test]
fn retain_races_lookups_and_inserts_without_locks_held() {
    loom::model(|| {
        let family = Arc::new(Family::<Gauge>::standalone(
            "m",
            &["k"],
            (),
            16,
            leak_domain(),
        ));
        family.with_label_values(&["a"]).unwrap().add(1.0);
        family.with_label_values(&["b"]).unwrap().add(1.0);
        let other = {
            let family = family.clone();
            thread::spawn(move || {
                family.with_label_values(&["a"]).unwrap().add(10.0);
                family.with_label_values(&["c"]).unwrap().add(1.0);
            })
        };
        let inner = family.clone();
        let removed = family.retain(|values, _| {
            // Re-entrant: a removal (of a key that does not exist) on the same family from
            // inside the predicate.
            assert!(!inner.remove(&["zz"]));
            &values[0] != "a"
        });
        assert!(removed <= 1);
        other.join().unwrap();
        let series = exposed(&family);
        assert_eq!(series.get(&key("b")), Some(&1.0));
        assert_eq!(series.get(&key("c")), Some(&1.0));
        if let Some(&a) = series.get(&key("a")) {
            // The lookup ran before the removal (then "a" would be gone) or after it: a fresh
            // series with only its add.
            assert!(a == 11.0 || a == 10.0, "{a}");
        }
        assert_eq!(family.len(), series.len());
    });
}

/// Reclamation of series under a lookup: the lookup's guard starts, then another thread removes
/// a series (the era moves on), creates a new one (born at the new era, in place: the table is
/// not rebuilt) and removes that one again, retiring it. A lookup that found the new series must
/// have moved its guard to the new era before reading it, so the retire cannot free it under the
/// lookup; one that did not find it read nothing of it.
///
/// Mutation caught: not validating the guard after loading a series pointer (in
/// `Family::find`) lets the lookup read the new series after it was freed ("a reader reached a
/// freed object", caught through the quarantine loom builds keep freed objects in).
#[test]
fn a_lookup_never_reads_a_series_freed_under_it() {
    loom::model(|| {
        let family = Arc::new(Family::<Gauge>::standalone(
            "m",
            &["k"],
            (),
            16,
            leak_domain(),
        ));
        family.with_label_values(&["a"]).unwrap().add(1.0);
        let reader = {
            let family = family.clone();
            thread::spawn(move || {
                if let Some(c) = family.get(&["c"]) {
                    c.add(1.0);
                }
            })
        };
        assert!(family.remove(&["a"]));
        family.with_label_values(&["c"]).unwrap().add(1.0);
        assert!(family.remove(&["c"]));
        reader.join().unwrap();
        assert!(exposed(&family).is_empty());
        assert_eq!(family.len(), 0);
    });
}

/// A scrape whose guard started before another thread removed a series (moving the era),
/// inserted a new one and rebuilt the shared sorted cache must not read the new series from
/// that cache after a later removal reclaimed it (found by a review: a heap-use-after-free
/// under ASan, within seconds to a minute).
///
/// Mutation caught: without `for_each_series`'s `!guard.validate()` (the cache used whenever its
/// generation is current) this fails at once with "a reader reached a freed object". The race
/// needs three preemptions, one more than `.ci/loom`'s default bound: the model sets its own.
#[test]
fn a_scrape_never_reads_a_series_born_after_its_guard_from_the_shared_cache() {
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(3);
    model.check(|| {
        let family = Arc::new(Family::<Gauge>::standalone(
            "m",
            &["k"],
            (),
            16,
            leak_domain(),
        ));
        family.with_label_values(&["a"]).unwrap().add(1.0);
        let reader = {
            let family = family.clone();
            thread::spawn(move || {
                family.for_each_series(|series| {
                    let _ = series.label_values().len();
                });
            })
        };
        assert!(family.remove(&["a"]));
        family.with_label_values(&["c"]).unwrap().add(1.0);
        let _ = exposed(&family);
        assert!(family.remove(&["c"]));
        reader.join().unwrap();
    });
}
