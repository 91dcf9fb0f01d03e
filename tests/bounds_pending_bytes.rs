//! `agentcore_telemetry_reclamation_pending_bytes` ("Bytes of the objects waiting") says how
//! much memory removed series and replaced tables hold while a reader's guard keeps them: the
//! figure an operator reads to tell a held `SeriesRef` costing kilobytes from one costing
//! gigabytes. Measured against the bytes their reclamation gives back.
//!
//! This binary holds a single test function, so no other test thread allocates while it
//! measures.

use std::sync::{Arc, Barrier};

use agentcore_telemetry::registry::self_metrics::reclamation_stats;
use agentcore_telemetry::Registry;
use support::alloc::live_bytes;

mod support;

#[global_allocator]
static GLOBAL: support::alloc::Counting = support::alloc::Counting;

/// Series with 200-byte label values, removed while another thread holds one of them (its
/// lookup cache's guard keeps every series of that moment waiting). `pending_bytes` counted
/// only each object's own struct (`size_of`), not the label values and slot arrays it owns:
/// here some 120 bytes per series where reclaiming one gives back about five times that.
#[test]
fn pending_bytes_is_what_reclaiming_the_waiting_objects_frees() {
    const SERIES: usize = 2_000;
    let registry = Registry::new();
    let family = registry
        .counter_family("waiting_total", "W.", &["k"])
        .unwrap();
    let value = |i: usize| format!("{i:0>200}");
    for i in 0..SERIES {
        family
            .with_label_values(&[value(i).as_str()])
            .unwrap()
            .inc();
    }
    // Another thread's cache pins the series alive now (its guard's era) until it exits.
    let (held, release) = (Arc::new(Barrier::new(2)), Arc::new(Barrier::new(2)));
    let holder = {
        let (family, held, release) = (family.clone(), held.clone(), release.clone());
        let first = value(0);
        std::thread::spawn(move || {
            let r = family.with_label_values(&[first.as_str()]).unwrap();
            held.wait();
            release.wait();
            drop(r);
        })
    };
    held.wait();
    let before = reclamation_stats().pending_bytes;
    for i in 0..SERIES {
        assert!(family.remove(&[value(i).as_str()]));
    }
    // This thread's own cache guard moves on with a fill (a lookup of a new series, twice).
    for key in ["after-1", "after-1"] {
        family.with_label_values(&[key]).unwrap().inc();
    }
    let _ = registry.encode_text(); // reclaims what no guard holds
    let reported = reclamation_stats().pending_bytes - before;
    let live = live_bytes();
    release.wait();
    holder.join().unwrap();
    for key in ["after-2", "after-2"] {
        family.with_label_values(&[key]).unwrap().inc();
    }
    let _ = registry.encode_text();
    assert!(
        reclamation_stats().pending_bytes <= before,
        "all of it freed"
    );
    let freed = (live - live_bytes()) as u64;
    assert!(
        reported * 2 >= freed && reported <= freed * 2,
        "pending_bytes said {reported} bytes wait; reclaiming them freed {freed}"
    );
}
