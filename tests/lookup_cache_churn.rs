//! The per-thread lookup cache under churn: threads look their own keys up in shared families
//! while they remove and re-create them, scrapes reclaim what was removed, and families of
//! three metric types with the same label values are created and dropped over and over (new
//! families at the addresses of dropped ones). Every increment must land in the series the
//! family holds for its key at the time: a cache entry that outlived its series' removal (a
//! generation that did not move, or came back), or another family's entry, would send it to a
//! removed or foreign series and the totals would not add up. Run it under AddressSanitizer
//! too: a cached series used after its reclamation is a use-after-free there.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use agentcore_telemetry::{Buckets, Registry};

const THREADS: usize = 4;
const ROUNDS: usize = 300;
const INCS: u64 = 40;

#[test]
fn cached_lookups_follow_removals_reclamation_and_family_churn() {
    let registry = Registry::new();
    let shared = registry
        .counter_family("churn_total", "Churn.", &["worker", "k"])
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let scraper = {
        let registry = registry.clone();
        let stop = stop.clone();
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                // Reclaims what no era protects any more.
                let _ = registry.encode_text();
                thread::yield_now();
            }
        })
    };
    let start = Arc::new(Barrier::new(THREADS));
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let shared = shared.clone();
            let start = start.clone();
            thread::spawn(move || {
                start.wait();
                let me = t.to_string();
                let keys = ["a", "b", "a label value longer than sixteen bytes"];
                for round in 0..ROUNDS {
                    for k in keys {
                        // Removed and re-created by this thread: its entry is stale now.
                        let _ = shared.remove(&[me.as_str(), k]);
                        for _ in 0..INCS {
                            shared.with_label_values(&[me.as_str(), k]).unwrap().inc();
                        }
                        let got = shared.get(&[me.as_str(), k]).unwrap().get();
                        assert_eq!(got, INCS as f64, "thread {t}, round {round}, key {k}");
                    }
                    // Families of three types under the same label values, created and
                    // dropped (with their registry) every round.
                    let local = Registry::new();
                    let c = local.counter_family("x_total", "X.", &["k"]).unwrap();
                    let g = local.gauge_family("y", "Y.", &["k"]).unwrap();
                    let buckets = Buckets::new(vec![1.0]).unwrap();
                    let h = local
                        .histogram_family("z_h", "Z.", &["k"], buckets)
                        .unwrap();
                    for i in 0..3 {
                        for k in keys {
                            c.with_label_values(&[k]).unwrap().inc();
                            g.with_label_values(&[k]).unwrap().add(2.0);
                            h.with_label_values(&[k]).unwrap().observe(0.5);
                        }
                        if i == 1 {
                            assert!(c.remove(&[keys[0]]));
                            assert!(g.remove(&[keys[1]]));
                            assert!(h.remove(&[keys[2]]));
                        }
                    }
                    assert_eq!(c.get(&[keys[0]]).unwrap().get(), 1.0);
                    assert_eq!(c.get(&[keys[1]]).unwrap().get(), 3.0);
                    assert_eq!(g.get(&[keys[1]]).unwrap().get(), 2.0);
                    assert_eq!(g.get(&[keys[2]]).unwrap().get(), 6.0);
                    let text = local.encode_text();
                    let lv = keys[2];
                    assert!(
                        text.contains(&format!("z_h_count{{k=\"{lv}\"}} 1\n")),
                        "{text}"
                    );
                    assert!(text.contains("z_h_count{k=\"a\"} 3\n"), "{text}");
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    scraper.join().unwrap();
    assert_eq!(shared.len(), THREADS * 3);
}
