//! A series removed to make room in an exhausted slot arena gives its words back to the next
//! registration. Its range waits with the retired series in the reclamation domain, which frees
//! it only at a batch of retires or a scrape; a registration that found the arena exhausted
//! failed (or folded into the overflow series) beside a range nobody could reach any more. Now
//! it reclaims what no reader holds and tries again.
//!
//! The lookups run on threads that then exit: a thread's lookup cache keeps a guard at the era
//! of its last lookup that missed, which protects every series alive then (`sync::era`, "The
//! memory bound") until its next such lookup or its exit.
//!
//! This binary exhausts the global arena on purpose, so it holds a single test.

mod support;

use agentcore_telemetry::{Buckets, Counter, Error, Histogram, Registry, Summary, SummaryConfig};
use support::arena::fill;

/// Runs `f` on a thread of its own, which exits (with its lookup cache) before this returns.
fn on_a_thread<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().unwrap())
}

#[test]
fn a_removed_series_words_serve_the_next_registration_in_an_exhausted_arena() {
    let registry = Registry::new();
    let jobs = registry
        .counter_family("jobs_total", "Jobs.", &["kind"])
        .unwrap();
    let lat = registry
        .histogram_family("lat_seconds", "Latency.", &["kind"], Buckets::default())
        .unwrap();
    on_a_thread(|| {
        jobs.with_label_values(&["__overflow__"]).unwrap(); // for the threads below
        for kind in ["a", "w"] {
            jobs.with_label_values(&[kind]).unwrap().inc();
            lat.with_label_values(&[kind]).unwrap().observe(0.1);
        }
    });
    // Every size taken: summaries, then histograms and counters for the smaller holes.
    let held = (
        fill(|| Summary::new(SummaryConfig::default())),
        fill(|| Histogram::new(Buckets::default())),
        fill(Counter::new),
    );
    assert!(!held.0.is_empty() && !held.2.is_empty());
    assert_eq!(Counter::new().err(), Some(Error::SlotArenaExhausted));

    // Make room by removing a series: its words are what the next series of its size needs.
    assert!(jobs.remove(&["a"]));
    on_a_thread(|| {
        let b = jobs.with_label_values(&["b"]);
        b.expect("the removed series' words serve the new one")
            .inc_by(2);
    });
    assert_eq!(jobs.overflowed(), 0, "a real series, not a fold");
    assert_eq!(jobs.get(&["b"]).unwrap().get(), 2.0, "from zero");

    // The same for handles made outside any family.
    assert!(jobs.remove(&["w"]));
    let c = Counter::new().expect("the removed series' words serve an unregistered counter");
    assert_eq!(c.get(), 0.0);
    assert!(lat.remove(&["w"]));
    let h = Histogram::new(Buckets::default()).expect("a histogram's words come back too");
    assert_eq!(h.snapshot().count, 0);

    // Threads churning series in the arena still exhausted: each removal's words serve the next
    // series (reclaimed by whichever allocation finds the arena full), which starts from zero;
    // a series that finds no words is folded, counted, never an error (the overflow series
    // exists) and never a panic. "b" makes the room.
    assert!(jobs.remove(&["b"]));
    let real = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for t in 0..4 {
            let (jobs, real) = (&jobs, &real);
            s.spawn(move || {
                for round in 0..500 {
                    let k = format!("t{t}-{round}");
                    let series = jobs.with_label_values(&[k.as_str()]).unwrap();
                    // Its own series (only this thread removes it), not the overflow series.
                    if jobs.get(&[k.as_str()]).is_some() {
                        assert_eq!(series.get(), 0.0, "{k}: a reused range starts at zero");
                        series.inc();
                        assert_eq!(series.get(), 1.0, "{k}");
                        real.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    drop(series);
                    jobs.remove(&[k.as_str()]);
                }
            });
        }
    });
    let real = real.into_inner();
    assert!(
        real > 0,
        "every series folded: no removal's words came back"
    );
    assert_eq!(jobs.len(), 0);
    drop(held);
}
