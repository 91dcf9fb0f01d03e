//! `agentcore_telemetry_reclamation_pending_bytes` for what the `metrics` bridge's key cache
//! retires: its entries, which own a copy of the `metrics::Key` (name and label values) and a
//! handle. Measured against the bytes their reclamation gives back, as
//! `tests/bounds_pending_bytes.rs` does for series and tables.
//!
//! This binary holds a single test function, so no other test thread allocates while it
//! measures.

use std::sync::{Arc, Barrier};

use agentcore_telemetry::bridge::metrics_recorder::AgentcoreRecorder;
use agentcore_telemetry::registry::self_metrics::reclamation_stats;
use agentcore_telemetry::{Counter, Registry};
use support::alloc::live_bytes;

mod support;

#[global_allocator]
static GLOBAL: support::alloc::Counting = support::alloc::Counting;

/// Keys with a 200-byte label value, recorded through the bridge; their series removed and
/// reclaimed; recorded again while another thread's guard holds the era: each write replaces
/// its key's cache entry, which is retired. `pending_bytes` counted each entry's struct only
/// (`Domain::retire`, `size_of::<Entry>()`), not the key it owns.
#[test]
fn pending_bytes_counts_what_a_key_cache_entry_owns() {
    const KEYS: usize = 2_000;
    let registry = Registry::new();
    let recorder = AgentcoreRecorder::new(&registry);
    let value = |i: usize| format!("{i:0>200}");
    let write = || {
        metrics::with_local_recorder(&recorder, || {
            for i in 0..KEYS {
                metrics::counter!("bridged_total", "k" => value(i)).increment(1);
            }
        })
    };
    write();
    let family = registry
        .get_or_register::<Counter>("bridged_total", "", &["k"], (), Default::default())
        .unwrap();
    for i in 0..KEYS {
        assert!(family.remove(&[value(i).as_str()]));
    }
    // Reclaims the removed series (no guard holds them).
    for key in ["fill-1", "fill-1"] {
        family.with_label_values(&[key]).unwrap().inc();
    }
    let _ = registry.encode_text();
    // Another thread's cache pins what is retired from now on until it lets go.
    let (held, release) = (Arc::new(Barrier::new(2)), Arc::new(Barrier::new(2)));
    let holder = {
        let (family, held, release) = (family.clone(), held.clone(), release.clone());
        std::thread::spawn(move || {
            let r = family.with_label_values(&["pin"]).unwrap();
            held.wait();
            release.wait();
            drop(r);
        })
    };
    held.wait();
    let before = reclamation_stats().pending_bytes;
    // Each key's entry now holds a removed series: replaced, and retired.
    write();
    // Frees what no guard holds (the new series stay: only the replaced entries wait).
    let _ = registry.encode_text();
    let reported_total = reclamation_stats().pending_bytes - before;
    let live = live_bytes();
    release.wait();
    holder.join().unwrap();
    for key in ["fill-2", "fill-2"] {
        family.with_label_values(&[key]).unwrap().inc();
    }
    let _ = registry.encode_text();
    let freed = (live - live_bytes()) as u64;
    assert!(
        reported_total * 2 >= freed && reported_total <= freed * 2,
        "pending_bytes said {reported_total} bytes wait; reclaiming them freed {freed}"
    );
}
