//! Reclamation of removed series and replaced tables under hostile callers (issue 10, findings
//! 1, 4 and 6): a `SeriesRef` held for the whole test, `SeriesRef`s kept in thread-locals that are
//! destroyed after the library's own, predicates that panic or call back into the family. Every
//! test checks a property that failed on the previous design (an epoch pin stalled reclamation for
//! the whole process; a thread's reader record was handed to another thread while pinned; `retain`
//! ran its predicate under the writer mutex and left `len` stale on a panic).
//!
//! The threaded tests are also run under AddressSanitizer by `.ci/asan`.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, OnceLock};
use std::thread;
use std::time::Duration;

use agentcore_telemetry::registry::self_metrics::reclamation_stats;
use agentcore_telemetry::registry::FamilyOptions;
use agentcore_telemetry::{Counter, Family, Registry, SeriesRef};

/// Runs `f` on a thread and fails (instead of hanging the test run) if it does not finish in
/// time: a deadlock is a failure.
fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(catch_unwind(AssertUnwindSafe(f)));
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(Ok(v)) => v,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("{what} did not finish in 60 s (deadlock?)"),
    }
}

/// Finding 4: one `SeriesRef` held across 100 000 inserts and removals (each removal retires a
/// series; table rebuilds retire tables) keeps alive only what existed when it was taken. On the
/// epoch design every map retired after the pin waited: 40 000 maps, 153 MB.
#[test]
fn a_series_ref_held_through_heavy_churn_keeps_pending_memory_bounded() {
    let registry = Registry::new();
    let held_family = registry
        .counter_family("held_total", "Held.", &["k"])
        .unwrap();
    let churn = registry
        .counter_family("churn_total", "Churned.", &["k"])
        .unwrap();
    let held = held_family.with_label_values(&["pinned"]).unwrap();
    let mut peak_pending = 0;
    for i in 0..100_000u32 {
        let key = i.to_string();
        churn.with_label_values(&[key.as_str()]).unwrap().inc();
        assert!(churn.remove(&[key.as_str()]));
        if i % 1000 == 0 {
            peak_pending = peak_pending.max(reclamation_stats().pending);
        }
    }
    held.inc();
    drop(held);
    let stats = reclamation_stats();
    assert!(stats.retired >= 100_000, "{stats:?}");
    // What the held guard protects (one table and the series alive then) plus one reclaim
    // batch, plus what other tests of this binary have waiting: far below the 100 000 retired.
    assert!(
        peak_pending < 2_000,
        "{peak_pending} objects waited at once while one SeriesRef was held ({stats:?})"
    );
    assert_eq!(held_family.get(&["pinned"]).unwrap().get(), 1.0);
}

fn family() -> &'static Family<Counter> {
    static FAMILY: OnceLock<Family<Counter>> = OnceLock::new();
    FAMILY.get_or_init(|| {
        Registry::new()
            .counter_family("tls_total", "Recorded from threads.", &["k"])
            .unwrap()
    })
}

thread_local! {
    /// A `SeriesRef` kept in a thread-local of the application's. The thread touches it before
    /// its first recording, so its destructor runs *after* the library's own thread-locals'.
    static HELD: RefCell<Option<SeriesRef<'static, Counter>>> = const { RefCell::new(None) };
}

/// Finding 1: a `SeriesRef` in a thread-local that outlives the library's thread-local state.
/// Each thread registers that thread-local first, then records (taking a reader record), then
/// stores a `SeriesRef` in it; at exit the library's state is torn down first, then the
/// `SeriesRef` drops. Meanwhile other threads churn series (so reclamation runs) and new threads
/// start (so reader records are handed over). Totals stay exact, and once every thread is gone
/// everything retired can be freed: no record was handed over while in use (which pinned
/// reclamation forever, or unpinned a reader still reading). (That order is the fallback's,
/// where no exit key can be armed; with glibc's exit keys the library's state ends after every
/// thread-local: `a_cached_reference_used_in_a_key_destructor_after_the_cache_ended_stays_protected`
/// covers a reference outliving it there.)
#[test]
fn series_refs_in_thread_locals_dropped_at_thread_exit_are_safe() {
    const ROUNDS: usize = 50;
    const THREADS: usize = 8;
    let fam = family();
    for round in 0..ROUNDS {
        let barrier = Arc::new(Barrier::new(THREADS + 1));
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let barrier = barrier.clone();
                thread::spawn(move || {
                    HELD.with(|_| {}); // registered before the library's thread-locals
                    let key = format!("{}", t % 3);
                    fam.with_label_values(&[key.as_str()]).unwrap().inc();
                    HELD.with(|h| {
                        *h.borrow_mut() = Some(fam.with_label_values(&["held"]).unwrap())
                    });
                    barrier.wait();
                    HELD.with(|h| h.borrow().as_ref().unwrap().inc());
                })
            })
            .collect();
        // Churn while the threads exit: removals retire series, reclaims scan the records.
        for i in 0..200 {
            let key = format!("churn-{round}-{i}");
            fam.with_label_values(&[key.as_str()]).unwrap().inc();
            fam.remove(&[key.as_str()]);
        }
        barrier.wait();
        for w in workers {
            w.join().unwrap();
        }
    }
    let total: f64 = ["0", "1", "2"]
        .iter()
        .map(|k| fam.get(&[*k]).unwrap().get())
        .sum();
    assert_eq!(total, (ROUNDS * THREADS) as f64);
    assert_eq!(fam.get(&["held"]).unwrap().get(), (ROUNDS * THREADS) as f64);
    // Every guard is gone: a scrape's reclaim frees what this test retired.
    let registry = Registry::new();
    let _ = registry.encode_text();
    let stats = reclamation_stats();
    assert!(stats.pending < 2_000, "{stats:?}");
}

/// Finding 6, panics: a predicate that panics half-way through leaves the family exactly as it
/// was (the predicate is asked about every series before anything is removed). On the previous
/// design the shards already visited had lost their series while `len` and the scrape cache still
/// counted them, and a full family then folded new label sets although it had room.
#[test]
fn retain_with_a_panicking_predicate_removes_nothing_and_keeps_the_count() {
    let registry = Registry::new();
    let fam: Family<Counter> = registry
        .register(
            "tasks_total",
            "Tasks.",
            &["id"],
            (),
            FamilyOptions {
                max_series: 10,
                ..FamilyOptions::default()
            },
        )
        .unwrap();
    for i in 0..10 {
        fam.with_label_values(&[i.to_string()]).unwrap().inc();
    }
    let mut asked = 0;
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        fam.retain(|_, _| {
            asked += 1;
            assert!(asked < 6, "the predicate fails on its sixth series");
            false
        })
    }));
    assert!(outcome.is_err());
    assert_eq!(fam.len(), 10);
    let exposed = registry.encode_text();
    assert_eq!(exposed.matches("tasks_total{id=").count(), 10, "{exposed}");
    assert!(!exposed.contains("__overflow__"));
    // The family is whole and consistent: clearing it frees its room for new label sets.
    assert_eq!(fam.retain(|_, _| false), 10);
    assert_eq!(fam.len(), 0);
    fam.with_label_values(&["new"]).unwrap().inc();
    assert_eq!(fam.len(), 1);
    assert_eq!(fam.overflowed(), 0);
}

/// Finding 6, re-entrancy: `retain`'s predicate and `for_each_series`' callback may call back
/// into the same family (look up, create, remove, iterate) and into a scrape. On the previous
/// design the first deadlocked on the writer mutex and the second on the sort-cache mutex.
#[test]
fn retain_and_for_each_series_may_call_back_into_the_family() {
    within("re-entrant retain and for_each_series", || {
        let registry = Registry::new();
        let fam = registry
            .counter_family("jobs_total", "Jobs.", &["id"])
            .unwrap();
        for id in ["a", "b", "c"] {
            fam.with_label_values(&[id]).unwrap().inc();
        }
        let removed = fam.retain(|values, _| {
            fam.with_label_values(&["created-inside"]).unwrap().inc();
            fam.remove(&["c"]);
            let mut inner = 0;
            fam.for_each_series(|_| inner += 1);
            assert!(inner >= 2);
            &values[0] != "a"
        });
        assert_eq!(removed, 1);
        let mut seen = Vec::new();
        fam.for_each_series(|series| {
            seen.push(series.label_values()[0].to_owned());
            let mut nested = 0;
            fam.for_each_series(|_| nested += 1);
            assert_eq!(nested, 2);
            assert!(registry.encode_text().contains("jobs_total{id=\"b\"} 1\n"));
        });
        assert_eq!(seen, ["b", "created-inside"]);
    });
}

/// Lookups on many threads race removals, re-creations, `retain` and scrapes on the same keys:
/// no lookup ever reads a freed series (AddressSanitizer, `.ci/asan`, turns one into a failure),
/// and every recording made through a series that is never removed is counted.
#[test]
fn lookups_racing_removal_retain_and_scrapes_are_safe() {
    let registry = Registry::new();
    let fam = registry
        .counter_family("racy_total", "Racy.", &["k"])
        .unwrap();
    let stable = registry
        .counter_family("stable_total", "Stable.", &["k"])
        .unwrap();
    const OPS: usize = 20_000;
    thread::scope(|s| {
        for t in 0..4 {
            let (fam, stable) = (&fam, &stable);
            s.spawn(move || {
                for i in 0..OPS {
                    let key = ["x", "y", "z"][(i + t) % 3];
                    fam.with_label_values(&[key]).unwrap().inc();
                    stable.with_label_values(&[key]).unwrap().inc();
                }
            });
        }
        s.spawn(|| {
            for i in 0..OPS / 10 {
                match i % 3 {
                    0 => {
                        fam.remove(&["x"]);
                    }
                    1 => {
                        fam.retain(|v, _| &v[0] != "y");
                    }
                    _ => {
                        let _ = registry.encode_text();
                    }
                }
            }
        });
    });
    let total: f64 = ["x", "y", "z"]
        .iter()
        .map(|k| stable.get(&[*k]).unwrap().get())
        .sum();
    assert_eq!(total, (4 * OPS) as f64);
}

/// Issue 16's per-thread lookup cache: a cached lookup after `remove` gets the new series, not
/// the removed one (the family's generation moved), and one after re-creation counts from zero.
#[test]
fn a_cached_lookup_after_remove_gets_the_new_series() {
    let registry = Registry::new();
    let f = registry
        .counter_family("cache_remove_total", "Cached.", &["k"])
        .unwrap();
    for _ in 0..3 {
        f.with_label_values(&["a"]).unwrap().inc(); // the second and third are cache hits
    }
    let old = f.get_or_create(&["a"]).unwrap();
    assert!(f.remove(&["a"]));
    f.with_label_values(&["a"]).unwrap().inc();
    f.with_label_values(&["a"]).unwrap().inc();
    assert_eq!(old.get(), 3.0, "the removed series got a later record");
    assert_eq!(f.get(&["a"]).unwrap().get(), 2.0);
}

/// Label values whose `as_ref` looks up another series of the same family: the caller's code
/// runs inside a lookup (the cache's comparison, the fill's probe), and must neither corrupt the
/// cache nor free what the outer lookup reads.
struct Reentrant<'f> {
    value: String,
    family: &'f Family<Counter>,
}

impl AsRef<str> for Reentrant<'_> {
    fn as_ref(&self) -> &str {
        let inner = format!("inner-{}", self.value.len() % 3);
        self.family
            .with_label_values(&[inner.as_str()])
            .unwrap()
            .inc();
        &self.value
    }
}

#[test]
fn a_lookup_from_inside_the_callers_as_ref_is_safe_and_counted() {
    let registry = Registry::new();
    let f = registry
        .counter_family("cache_reentrant_total", "Cached.", &["k"])
        .unwrap();
    let mut expected = [0.0; 5];
    let mut outer = 0.0;
    for i in 0..2_000usize {
        let v = Reentrant {
            value: "x".repeat(1 + i % 5),
            family: &f,
        };
        f.with_label_values(&[v]).unwrap().inc();
        expected[i % 5] += 1.0;
        outer += 1.0;
        if i % 97 == 0 {
            // A removal moves the generation and the era.
            assert!(f.remove(&["x".repeat(1 + i % 5)]));
            expected[i % 5] = 0.0;
        }
    }
    for (n, want) in expected.iter().enumerate() {
        let got = f.get(&["x".repeat(1 + n)]).map_or(0.0, |c| c.get());
        assert_eq!(got, *want, "outer series {n}");
    }
    let inner: f64 = (0..3)
        .filter_map(|k| f.get(&[format!("inner-{k}")]))
        .map(|c| c.get())
        .sum();
    // Every outer lookup calls `as_ref` at least once (hash), and again to compare.
    assert!(inner >= outer, "{inner} inner lookups for {outer} outer");
}

/// Label values whose `as_ref` creates a new series of the same family on every call, and
/// removes the previous one: the family's writer path (insert, `remove`, `insert_metric`) once
/// called the caller's `as_ref` with the family's writer mutex held, so the nested insert waited
/// for that mutex on its own thread forever. (`Reentrant` above never caught it: its inner keys
/// exist by the time the writer path runs.)
struct CreatesSeries {
    value: &'static str,
    family: Family<Counter>,
    calls: std::cell::Cell<usize>,
}

impl AsRef<str> for CreatesSeries {
    fn as_ref(&self) -> &str {
        let n = self.calls.get();
        self.calls.set(n + 1);
        let key = format!("nested-{n}");
        self.family
            .with_label_values(&[key.as_str()])
            .unwrap()
            .inc();
        if n > 0 {
            assert!(self.family.remove(&[format!("nested-{}", n - 1)]));
        }
        self.value
    }
}

#[test]
fn the_callers_as_ref_may_insert_and_remove_series_of_the_family_it_is_looked_up_in() {
    within("writer paths calling back into the family", || {
        let registry = Registry::new();
        let f = registry
            .counter_family("nested_writer_total", "Nested.", &["k"])
            .unwrap();
        let values = |value| CreatesSeries {
            value,
            family: f.clone(),
            calls: std::cell::Cell::new(0),
        };
        // A new series: the insert path.
        f.with_label_values(&[values("outer")]).unwrap().inc();
        assert_eq!(f.get(&["outer"]).map(|c| c.get()), Some(1.0));
        // An existing one, then its removal.
        f.with_label_values(&[values("outer")]).unwrap().inc();
        assert_eq!(f.get(&["outer"]).map(|c| c.get()), Some(2.0));
        assert!(f.remove(&[values("outer")]));
        assert!(f.get(&["outer"]).is_none());
        // An existing handle added under new values.
        assert!(f
            .insert_metric(&[values("added")], Counter::new().unwrap())
            .unwrap());
        assert!(f.get(&["added"]).is_some());
        // The nested calls' own series: the last one of each outer call is left.
        let nested = f.len() - 1;
        assert!(nested >= 1, "{nested}");
    });
}

/// A reference from the cache held while the same thread fills the cache again and the held
/// series is removed and reclaimed: the cache must not move its era while the reference is out
/// (`lookup_cache`, invariant 2). Under AddressSanitizer (`.ci/asan`) a cache that moved it
/// reads freed memory at `held.inc()`.
#[test]
fn a_held_cached_reference_survives_removal_reclamation_and_other_fills() {
    within("held cached reference", || {
        let registry = Registry::new();
        let f = registry
            .counter_family("cache_held_total", "Cached.", &["k"])
            .unwrap();
        f.with_label_values(&["held"]).unwrap().inc(); // fills the entry
        let held = f.with_label_values(&["held"]).unwrap(); // a hit: held by the cache's guard
        assert!(f.remove(&["held"]));
        for i in 0..5_000u32 {
            let key = i.to_string();
            f.with_label_values(&[key.as_str()]).unwrap().inc(); // misses: fills
            f.with_label_values(&[key.as_str()]).unwrap().inc(); // hits
            assert!(f.remove(&[key.as_str()]));
            if i % 500 == 0 {
                let _ = registry.encode_text(); // a scrape reclaims what no era protects
            }
        }
        held.inc();
        assert_eq!(held.get(), 2.0);
        drop(held);
        let _ = registry.encode_text();
    });
}

/// A hit compares a long label value through the caller's `as_ref`, which here removes that
/// very series, then looks up other keys (each a miss: a fill, which would move the cache's era
/// if the hit's reference were not counted yet) and scrapes (a reclaim): the series the hit
/// goes on comparing and then returns must still be alive (`lookup_cache`, invariant 3: the
/// reference is counted before the caller's code runs). Under AddressSanitizer (`.ci/asan`) a
/// hit that counted its reference only after the comparison reads freed memory there.
struct RemovesItselfOnCompare<'f> {
    value: String,
    family: &'f Family<Counter>,
    registry: &'f Registry,
    calls: std::cell::Cell<usize>,
}

impl AsRef<str> for RemovesItselfOnCompare<'_> {
    fn as_ref(&self) -> &str {
        let n = self.calls.get();
        self.calls.set(n + 1);
        // Call 0 is the hash; call 1 the hit's comparison of the cached series' keys.
        if n == 1 {
            assert!(self.family.remove(&[self.value.as_str()]));
            for i in 0..200 {
                let key = format!("compare-churn-{i}");
                self.family
                    .with_label_values(&[key.as_str()])
                    .unwrap()
                    .inc();
                assert!(self.family.remove(&[key.as_str()]));
                if i % 50 == 0 {
                    let _ = self.registry.encode_text();
                }
            }
            let _ = self.registry.encode_text();
        }
        &self.value
    }
}

#[test]
fn a_hit_whose_comparison_removes_and_reclaims_its_series_returns_it_alive() {
    within("a hit that removes its own series", || {
        let registry = Registry::new();
        let f = registry
            .counter_family("cache_compare_total", "Cached.", &["k"])
            .unwrap();
        for round in 0..20 {
            let long = format!("a label value longer than sixteen bytes, round {round}");
            f.with_label_values(&[long.as_str()]).unwrap().inc(); // inserts
            f.with_label_values(&[long.as_str()]).unwrap().inc(); // fills the entry
            let removed = f.get(&[long.as_str()]).unwrap();
            let values = [RemovesItselfOnCompare {
                value: long.clone(),
                family: &f,
                registry: &registry,
                calls: std::cell::Cell::new(0),
            }];
            let hit = f.with_label_values(&values).unwrap(); // a hit, removed meanwhile
            assert!(
                values[0].calls.get() >= 2,
                "the hit compared the long value"
            );
            hit.inc();
            drop(hit);
            assert_eq!(
                removed.get(),
                3.0,
                "round {round}: the hit's series was the removed one"
            );
            assert!(f.get(&[long.as_str()]).is_none());
        }
    });
}

/// References from the cache leaked with `mem::forget`: the cache stops moving its era (it
/// cannot know they are gone) and lookups stay correct through the uncached path.
#[test]
fn forgotten_cached_references_leave_lookups_correct() {
    within("forgotten cached references", || {
        let registry = Registry::new();
        let f = registry
            .counter_family("cache_forgotten_total", "Cached.", &["k"])
            .unwrap();
        f.with_label_values(&["a"]).unwrap().inc();
        std::mem::forget(f.with_label_values(&["a"]).unwrap());
        let mut expected = [0.0; 40];
        for i in 0..3_000u32 {
            let k = (i % 40) as usize;
            let key = k.to_string();
            f.with_label_values(&[key.as_str()]).unwrap().inc();
            expected[k] += 1.0;
            if i % 101 == 0 {
                assert!(f.remove(&[key.as_str()]));
                expected[k] = 0.0;
            }
        }
        f.with_label_values(&["a"]).unwrap().inc();
        assert_eq!(f.get(&["a"]).unwrap().get(), 2.0);
        for (k, want) in expected.iter().enumerate() {
            let got = f.get(&[k.to_string()]).map_or(0.0, |c| c.get());
            assert_eq!(got, *want, "series {k}");
        }
    });
}

/// A lookup made by a destructor that runs while another panic unwinds the thread is an ordinary
/// lookup: its fill completes and the reference it returns stays protected until dropped. (The
/// cache once took `thread::panicking()` to mean "this fill's probe unwound" and dropped its
/// guard, leaving such a reference unprotected: after `remove` and a scrape the series was
/// freed, ASan reported a heap-use-after-free in `Counter::inc`, and without ASan the increment
/// landed on a series created afterwards. Found by review, 2026-12-01.)
#[test]
fn a_lookup_in_a_destructor_during_unwinding_stays_protected() {
    struct LookupOnDrop<'a> {
        registry: &'a Registry,
        family: &'a Family<Counter>,
        later: &'a Family<Counter>,
        seen: &'a std::cell::Cell<Option<(f64, f64)>>,
    }
    impl Drop for LookupOnDrop<'_> {
        fn drop(&mut self) {
            assert!(thread::panicking());
            let held = self.family.with_label_values(&["victim"]).unwrap(); // a miss: a fill
            assert!(self.family.remove(&["victim"]));
            let _ = self.registry.encode_text(); // frees whatever nothing protects
                                                 // Series created now reuse whatever was freed.
            let keys: Vec<String> = (0..64).map(|i| format!("later-{i}")).collect();
            for k in &keys {
                drop(self.later.with_label_values(&[k]).unwrap());
            }
            held.inc();
            let later_total = keys
                .iter()
                .map(|k| self.later.with_label_values(&[k]).unwrap().get())
                .sum::<f64>();
            self.seen.set(Some((held.get(), later_total)));
        }
    }
    within("a lookup during unwinding", || {
        let registry = Registry::new();
        let family = registry
            .counter_family("unwind_victim_total", "V.", &["k"])
            .unwrap();
        let later = registry
            .counter_family("unwind_later_total", "L.", &["k"])
            .unwrap();
        // Created without a lookup, so no guard of this thread holds it yet.
        assert!(family
            .insert_metric(&["victim"], Counter::new().unwrap())
            .unwrap());
        let _ = registry.encode_text();
        let seen = std::cell::Cell::new(None);
        let unwound = catch_unwind(AssertUnwindSafe(|| {
            let _lookup = LookupOnDrop {
                registry: &registry,
                family: &family,
                later: &later,
                seen: &seen,
            };
            panic!("another panic, unwinding through the destructor");
        }));
        assert!(unwound.is_err());
        assert_eq!(
            seen.get(),
            Some((1.0, 0.0)),
            "the held reference counted on its own series, and on no series created later"
        );
    });
}

/// A scrape that finds the family's sorted cache current must not use series that were born after
/// its guard's era (found by a review): a writer that retires something, inserts a series and
/// rebuilds the shared cache between another scrape's `guard()` and its cache check used to leave
/// that scrape reading the new series under a guard that did not protect it, and a removal then
/// freed it under the scrape (ASan: heap-use-after-free in `Series::label_values`, from
/// `for_each_series`, within about 2 s). Scrapes now rebuild when their guard's era moved.
/// Here: readers that see a series newer than the scrape's start wait for the writer to remove and
/// reclaim it, then read it again. Run under AddressSanitizer by `.ci/asan`.
#[test]
fn a_scrape_never_reads_a_series_inserted_after_its_guard_was_taken() {
    use agentcore_telemetry::Gauge;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};
    use std::time::Instant;
    let registry = Registry::new();
    let family = registry.gauge_family("g", "G.", &["k"]).unwrap();
    let stop = AtomicBool::new(false);
    let inserted = AtomicUsize::new(0);
    let label = |i: usize| format!("series-with-a-long-label-value-{i:08}");
    thread::scope(|s| {
        s.spawn(|| {
            let mut i = 0usize;
            while !stop.load(Relaxed) {
                if i > 0 {
                    family.remove(&[label(i - 1)]);
                }
                family.insert_metric(&[label(i)], Gauge::new()).unwrap();
                inserted.store(i + 1, SeqCst);
                family.for_each_series(|_| {});
                i += 1;
            }
        });
        for _ in 0..3 {
            s.spawn(|| {
                while !stop.load(Relaxed) {
                    let before = inserted.load(SeqCst);
                    family.for_each_series(|series| {
                        let first = series.label_values().to_vec();
                        let j: usize = first[0].rsplit('-').next().unwrap().parse().unwrap();
                        if j > before {
                            thread::sleep(Duration::from_millis(3));
                            assert_eq!(
                                first,
                                series.label_values().to_vec(),
                                "series changed under the scrape"
                            );
                        }
                    });
                }
            });
        }
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(5) {
            thread::sleep(Duration::from_millis(50));
        }
        stop.store(true, Relaxed);
    });
}

/// The lookup cache's invariant 6: a reference from the cache kept in a thread-local of the
/// application's, whose destructor runs *after* the cache's exit hook (and the thread's era
/// record lease) ended the cache where that hook is a thread-local's (where no exit key can be
/// armed), is still protected when it is *used* there: the exit hook leaves the cache's guard
/// to the last reference. (With glibc's exit keys the thread-local is destroyed before the
/// cache ends, and this test passes with a hook that drops the guard regardless: the next
/// test, a `pthread_key` destructor run after the cache's, is the one that catches that.) Here the destructor waits while another
/// thread removes the series, churns (retires and reclaims) and scrapes, then records through
/// the reference. Under AddressSanitizer (`.ci/asan`) an exit hook that dropped the guard with
/// a reference outstanding fails with a heap-use-after-free in `Counter::inc`.
#[test]
fn a_cached_reference_used_after_its_threads_cache_ended_stays_protected() {
    struct UseAtExit {
        held: Option<SeriesRef<'static, Counter>>,
        exited: mpsc::Sender<()>,
        go: mpsc::Receiver<()>,
        result: mpsc::Sender<f64>,
    }
    impl Drop for UseAtExit {
        fn drop(&mut self) {
            let _ = self.exited.send(());
            let _ = self.go.recv();
            let held = self.held.take().expect("stored");
            held.inc();
            let _ = self.result.send(held.get());
        }
    }
    thread_local! {
        static AT_EXIT: RefCell<Option<UseAtExit>> = const { RefCell::new(None) };
    }
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    static FAMILY: OnceLock<Family<Counter>> = OnceLock::new();
    let registry = REGISTRY.get_or_init(Registry::new);
    let fam = FAMILY.get_or_init(|| {
        registry
            .counter_family("at_exit_total", "Used at exit.", &["k"])
            .unwrap()
    });
    within("a cached reference used at thread exit", move || {
        for round in 0..20 {
            let (exited_tx, exited) = mpsc::channel();
            let (go, go_rx) = mpsc::channel();
            let (result_tx, result) = mpsc::channel();
            let key = format!("held-{round}");
            let worker = {
                let key = key.clone();
                thread::spawn(move || {
                    // Registered before the library's thread-locals: destroyed after them.
                    AT_EXIT.with(|_| {});
                    fam.with_label_values(&[key.as_str()]).unwrap().inc(); // inserts
                    fam.with_label_values(&[key.as_str()]).unwrap().inc(); // fills the entry
                    let held = fam.with_label_values(&[key.as_str()]).unwrap(); // a hit
                    AT_EXIT.with(|a| {
                        *a.borrow_mut() = Some(UseAtExit {
                            held: Some(held),
                            exited: exited_tx,
                            go: go_rx,
                            result: result_tx,
                        })
                    });
                })
            };
            exited.recv().unwrap();
            // The worker's cache has ended; its reference is out. Remove its series, retire
            // and reclaim as much as possible, and reuse the memory.
            assert!(fam.remove(&[key.as_str()]));
            for i in 0..300 {
                let churn = format!("churn-{round}-{i}");
                fam.with_label_values(&[churn.as_str()]).unwrap().inc();
                assert!(fam.remove(&[churn.as_str()]));
                if i % 50 == 0 {
                    let _ = registry.encode_text();
                }
            }
            let _ = registry.encode_text();
            go.send(()).unwrap();
            assert_eq!(result.recv().unwrap(), 3.0, "round {round}");
            worker.join().unwrap();
        }
    });
}

/// Invariant 6 once more, where the reference outlives the cache for certain: kept in a
/// `pthread_key` value whose destructor runs in the round after the one in which the cache's
/// own exit key ended the cache (on glibc the thread-local above is destroyed *before* the
/// exit keys run, so there the cache has not ended yet). The destructor waits while another
/// thread removes the series, churns (retires and reclaims) and scrapes, then records through
/// the reference. Under AddressSanitizer (`.ci/asan`) an exit hook that dropped the guard with a
/// reference outstanding fails with a heap-use-after-free in `Counter::inc`. (The destructor
/// signals through atomics: a channel's `recv` there takes a thread-local that glibc never
/// destroys then, which LeakSanitizer reports.)
#[test]
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn a_cached_reference_used_in_a_key_destructor_after_the_cache_ended_stays_protected() {
    use std::ffi::c_void;
    use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Acquire, Ordering::Release};
    /// 0: running; 1: the worker's destructor waits (its cache ended); 2: go; 3: recorded.
    static STAGE: AtomicU8 = AtomicU8::new(0);
    static RESULT: AtomicU64 = AtomicU64::new(0);
    struct Kept {
        held: SeriesRef<'static, Counter>,
        rounds: u32,
    }
    static KEY: OnceLock<libc::pthread_key_t> = OnceLock::new();
    extern "C" fn at_exit(value: *mut c_void) {
        // SAFETY: the `Box<Kept>` the worker leaked into its value, still the key's.
        let kept = unsafe { &mut *value.cast::<Kept>() };
        kept.rounds += 1;
        if kept.rounds == 1 {
            // The first round is the one the cache's own key may run in: once more.
            // SAFETY: a live key; the same value, still owned by the key.
            unsafe { libc::pthread_setspecific(*KEY.get().unwrap(), value) };
            return;
        }
        // SAFETY: as above; taken back once, here.
        let kept = unsafe { Box::from_raw(value.cast::<Kept>()) };
        STAGE.store(1, Release);
        while STAGE.load(Acquire) != 2 {
            thread::yield_now();
        }
        kept.held.inc();
        RESULT.store(kept.held.get().to_bits(), Release);
        drop(kept);
        STAGE.store(3, Release);
    }
    let key = *KEY.get_or_init(|| {
        let mut key: libc::pthread_key_t = 0;
        // SAFETY: `key` is a valid place; `at_exit` does not unwind (a panic there aborts).
        assert_eq!(
            unsafe { libc::pthread_key_create(&mut key, Some(at_exit)) },
            0
        );
        key
    });
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    static FAMILY: OnceLock<Family<Counter>> = OnceLock::new();
    let registry = REGISTRY.get_or_init(Registry::new);
    let fam = FAMILY.get_or_init(|| {
        registry
            .counter_family("key_exit_total", "Used in a key destructor.", &["k"])
            .unwrap()
    });
    let wait_for = |stage: u8| {
        while STAGE.load(Acquire) != stage {
            thread::yield_now();
        }
    };
    within("a cached reference used in a key destructor", move || {
        for round in 0..20 {
            STAGE.store(0, Release);
            let name = format!("held-{round}");
            let worker = {
                let name = name.clone();
                thread::spawn(move || {
                    fam.with_label_values(&[name.as_str()]).unwrap().inc(); // inserts
                    fam.with_label_values(&[name.as_str()]).unwrap().inc(); // fills the entry
                    let held = fam.with_label_values(&[name.as_str()]).unwrap(); // a hit
                    let kept = Box::into_raw(Box::new(Kept { held, rounds: 0 }));
                    // SAFETY: a live key; the value is the leaked box, taken back by `at_exit`.
                    assert_eq!(unsafe { libc::pthread_setspecific(key, kept.cast()) }, 0);
                })
            };
            wait_for(1);
            // The worker's cache has ended (its exit key ran in the round before), and so has
            // its lease of its era record; its reference is out. Remove its series, retire and
            // reclaim as much as possible, on a new thread (which leases the record returned
            // last: had the worker's been returned with the cache's guard in it, the new
            // thread's guards would overwrite that guard's era).
            assert!(fam.remove(&[name.as_str()]));
            thread::spawn(move || {
                for i in 0..300 {
                    let churn = format!("churn-{round}-{i}");
                    fam.with_label_values(&[churn.as_str()]).unwrap().inc();
                    assert!(fam.remove(&[churn.as_str()]));
                    if i % 50 == 0 {
                        let _ = registry.encode_text();
                    }
                }
            })
            .join()
            .unwrap();
            let _ = registry.encode_text();
            STAGE.store(2, Release);
            wait_for(3);
            assert_eq!(f64::from_bits(RESULT.load(Acquire)), 3.0, "round {round}");
            worker.join().unwrap();
        }
    });
}
