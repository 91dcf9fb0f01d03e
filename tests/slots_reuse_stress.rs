//! Handles that outlive their series, and ranges freed and handed out again, under threads:
//! a `Counter` kept after `remove` and a `SeriesRef` held across it keep recording into their
//! own words (never into a series created since), while other threads churn series whose freed
//! ranges are reused (each new one starts from zero and counts exactly), more threads than the
//! arena has exclusive blocks record (stripes), and a scraper sums and reclaims meanwhile.
//! Also run under AddressSanitizer (clean):
//! `RUSTFLAGS="-Zsanitizer=address -Cunsafe-allow-abi-mismatch=sanitizer" cargo +nightly test
//! --target x86_64-unknown-linux-gnu --target-dir target/asan --test slots_reuse_stress`.
//! Mutation caught: `Arena::free` not zeroing the range (a reused range starts at the freed
//! series' counts: "round 0: a reused range starts at zero").

use agentcore_telemetry::{Buckets, Registry};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

#[test]
fn handles_outliving_their_series_and_reused_ranges_never_mix_counts() {
    const CHURNERS: usize = 6;
    const ROUNDS: u64 = 300;
    const OPS: u64 = 200;
    let registry = Registry::new();
    let fam = registry
        .counter_family("churn_total", "Churn.", &["k"])
        .unwrap();
    let hist = registry
        .histogram_family("churn_seconds", "Churn.", &["k"], Buckets::default())
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let scraper = {
        let (registry, stop) = (registry.clone(), stop.clone());
        thread::spawn(move || {
            let mut buf = String::new();
            while !stop.load(Ordering::Relaxed) {
                buf.clear();
                registry.encode_text_into(&mut buf);
            }
        })
    };
    let kept = fam.get_or_create(&["kept"]).unwrap();
    let start = Arc::new(Barrier::new(CHURNERS + 2));
    // A handle kept after its series is removed.
    let keeper = {
        let (fam, start) = (fam.clone(), start.clone());
        thread::spawn(move || {
            assert!(fam.remove(&["kept"]));
            start.wait();
            for _ in 0..ROUNDS * OPS {
                kept.inc();
            }
            assert_eq!(kept.get(), (ROUNDS * OPS) as f64, "a kept handle's count");
        })
    };
    // A borrowed handle held across the removal of its series.
    let holder = {
        let (fam, start) = (fam.clone(), start.clone());
        thread::spawn(move || {
            let r = fam.with_label_values(&["held"]).unwrap();
            assert!(fam.remove(&["held"]));
            start.wait();
            for _ in 0..ROUNDS * OPS {
                r.inc();
            }
            assert_eq!(r.get(), (ROUNDS * OPS) as f64, "a held reference's count");
        })
    };
    let churners: Vec<_> = (0..CHURNERS)
        .map(|t| {
            let (fam, hist, start) = (fam.clone(), hist.clone(), start.clone());
            thread::spawn(move || {
                let k = format!("c{t}");
                start.wait();
                for round in 0..ROUNDS {
                    let c = fam.get_or_create(&[k.as_str()]).unwrap();
                    let h = hist.get_or_create(&[k.as_str()]).unwrap();
                    assert_eq!(c.get(), 0.0, "round {round}: a reused range starts at zero");
                    assert_eq!(h.snapshot().count, 0, "round {round}");
                    for i in 0..OPS {
                        c.inc();
                        h.observe((i % 7) as f64);
                    }
                    assert_eq!(c.get(), OPS as f64, "round {round}: exact");
                    assert_eq!(h.snapshot().count, OPS, "round {round}: exact");
                    assert!(fam.remove(&[k.as_str()]) && hist.remove(&[k.as_str()]));
                }
            })
        })
        .collect();
    for t in churners {
        t.join().unwrap();
    }
    keeper.join().unwrap();
    holder.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    scraper.join().unwrap();
}
