//! Stopping a background thread keeps its deadline also when what the thread drops last is
//! the caller's code: a handle it holds may be the last one, and the drop then runs the
//! `Drop` of what the caller put inside (a registry's scrape-time functions), which may block.
#![cfg(all(feature = "system-monitor", target_os = "linux"))]

use std::sync::mpsc::{channel, Receiver};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use agentcore_telemetry::MetricsCollector;

/// A value whose drop blocks until the test releases it (or 30 s pass).
struct SlowDrop(Mutex<Receiver<()>>);

impl Drop for SlowDrop {
    fn drop(&mut self) {
        let rx = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let _ = rx.recv_timeout(Duration::from_secs(30));
    }
}

/// `SystemMonitor::stop_within` returns by its timeout. The monitor's thread holds a handle
/// of the collector; when it is the last one (the caller dropped theirs), the thread's end
/// drops the collector's registry and with it the closures of `gauge_fn`s registered there.
/// `stop_within` took the thread's dropped stop channel for its end and joined it with no
/// deadline, so it waited for as long as such a closure's drop blocked.
#[test]
fn stopping_the_system_monitor_keeps_its_deadline_when_the_last_collector_drop_blocks() {
    let (release, blocked) = channel();
    let slow = SlowDrop(Mutex::new(blocked));
    let collector = MetricsCollector::new();
    collector
        .get_registry()
        .gauge_fn("slow_to_drop", "Drops slowly.", move || {
            let _ = &slow;
            1.0
        })
        .unwrap();
    let monitor = collector
        .start_system_monitor(Duration::from_secs(3600))
        .unwrap();
    drop(collector); // the monitor's handle is the last one
    let timeout = Duration::from_millis(200);
    let started = Instant::now();
    let _ = monitor.stop_within(timeout);
    let took = started.elapsed();
    let _ = release.send(());
    // Generous (10x) for a loaded machine: the point is returning by the deadline at all.
    assert!(
        took < timeout * 10,
        "stop_within({timeout:?}) returned after {took:?}: it waited for the collector's drop"
    );
}
