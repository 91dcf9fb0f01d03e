//! The system monitor (`MetricsCollector::start_system_monitor`) against its shutdown promise:
//! stopping or dropping it returns promptly whatever the interval (zero, a nanosecond,
//! `Duration::MAX`), leaves no thread behind even after a thousand collectors and monitors, and
//! scrapes from several threads while it samples see whole, parseable expositions.
//!
//! One test function: the harness runs tests on parallel threads, which would move the thread
//! count under a neighbour's feet.
#![cfg(all(feature = "system-monitor", target_os = "linux"))]

mod support;

use std::time::{Duration, Instant};

use agentcore_telemetry::agent::system::MIN_INTERVAL;
use agentcore_telemetry::agent::SystemMonitor;
use agentcore_telemetry::MetricsCollector;
use support::exposition::{parse, value};

/// This process' threads, by name.
fn thread_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|n| n.trim_end().to_string())
        .collect();
    names.sort();
    names
}

/// Asserts the process is back to `before`'s threads. A joined thread can still be listed for
/// an instant (the kernel wakes the joiner before it reaps the thread), so it waits up to 2 s.
fn assert_threads(before: &[String], when: &str) {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut now = thread_names();
    while now != before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
        now = thread_names();
    }
    assert_eq!(now, before, "threads left {when}");
}

/// Stops (or drops) a monitor and says how long that took.
fn timed_stop(monitor: SystemMonitor, by_drop: bool) -> Duration {
    let t = Instant::now();
    if by_drop {
        drop(monitor);
    } else {
        monitor.stop();
    }
    t.elapsed()
}

#[test]
fn the_monitor_stops_promptly_leaks_no_thread_and_scrapes_alongside() {
    let before = thread_names();

    // Any interval: the stop does not wait for it.
    let intervals = [
        Duration::ZERO,
        Duration::from_nanos(1),
        MIN_INTERVAL,
        Duration::from_millis(250),
        Duration::from_secs(3600),
        Duration::from_secs(u64::MAX / 2),
        Duration::MAX,
    ];
    for (i, interval) in intervals.into_iter().enumerate() {
        let c = MetricsCollector::new();
        let monitor = c.start_system_monitor(interval).unwrap();
        assert!(monitor.is_running(), "{interval:?}");
        if interval <= MIN_INTERVAL {
            // A zero interval is raised to the minimum: it samples, and does not spin.
            let deadline = Instant::now() + Duration::from_secs(10);
            while c.history_len() < 3 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            assert!(c.history_len() >= 3, "{interval:?}: no samples");
        }
        let took = timed_stop(monitor, i % 2 == 0);
        assert!(
            took < Duration::from_secs(2),
            "{interval:?}: stop took {took:?}"
        );
        let taken = c.history_len();
        std::thread::sleep(MIN_INTERVAL * 3);
        assert_eq!(c.history_len(), taken, "{interval:?}: sampled after stop");
    }
    assert_threads(&before, "after the interval cases");

    // A thousand collectors, each with a monitor, created and dropped: no thread left over.
    for i in 0..1_000u32 {
        let c = MetricsCollector::new();
        let interval = Duration::from_nanos(u64::from(i % 3) * 5_000_000);
        let monitor = c.start_system_monitor(interval).unwrap();
        if i % 2 == 0 {
            drop(c);
            drop(monitor);
        } else {
            drop(monitor);
            drop(c);
        }
    }
    assert_threads(&before, "after 1,000 collectors");

    // Scrapes from several threads while the monitor samples every MIN_INTERVAL.
    let c = MetricsCollector::new();
    let monitor = c.start_system_monitor(Duration::ZERO).unwrap();
    std::thread::scope(|s| {
        for t in 0..4 {
            let c = &c;
            s.spawn(move || {
                for _ in 0..100 {
                    let text = if t % 2 == 0 {
                        c.encode_text()
                    } else {
                        c.get_registry().encode_openmetrics()
                    };
                    if t % 2 == 0 {
                        let families = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
                        let memory =
                            value(&families, "agentcore_system_memory_percent", &[]).unwrap();
                        assert!((0.0..=100.0).contains(&memory), "{memory}");
                        let threads = value(&families, "process_threads", &[]).unwrap();
                        assert!(threads >= 2.0, "{threads}");
                    } else {
                        assert!(text.ends_with("# EOF\n"), "{text}");
                    }
                    let s = c.snapshot_metrics();
                    assert!(
                        (0.0..=100.0).contains(&s.system.cpu_percent),
                        "{:?}",
                        s.system
                    );
                }
            });
        }
    });
    assert!(monitor.is_running());
    assert!(timed_stop(monitor, true) < Duration::from_secs(2));
    assert_threads(&before, "after the concurrent scrapes");
}
