//! [`SystemMonitor`]: a background thread filling the `agentcore_system_*` gauges from the OS
//! (through the `sysinfo` crate).
//!
//! ```
//! use agentcore_telemetry::MetricsCollector;
//! use std::time::Duration;
//!
//! let collector = MetricsCollector::new();
//! let _monitor = collector.start_system_monitor(Duration::from_secs(30)).unwrap();
//! // ... the runtime runs; dropping `_monitor` stops and joins the thread.
//! ```

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sysinfo::System;

use super::MetricsCollector;

/// The shortest sampling interval (shorter ones are raised to it, so a zero interval cannot
/// spin). CPU usage is only meaningful with intervals of at least
/// [`sysinfo::MINIMUM_CPU_UPDATE_INTERVAL`].
///
/// ```
/// use agentcore_telemetry::agent::system::MIN_INTERVAL;
///
/// assert_eq!(MIN_INTERVAL.as_millis(), 10);
/// ```
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// How long [`SystemMonitor::stop`] and dropping the monitor wait for a sample in progress
/// before they return and leave the thread to end on its own once that sample is done.
///
/// ```
/// use agentcore_telemetry::agent::system::STOP_TIMEOUT;
///
/// assert_eq!(STOP_TIMEOUT.as_secs(), 2);
/// ```
pub const STOP_TIMEOUT: Duration = Duration::from_secs(2);

/// Samples the system's CPU and memory usage every interval on a background thread, sets
/// `agentcore_system_cpu_percent`, `agentcore_system_memory_percent` and
/// `agentcore_system_memory_available_mb`, then takes a snapshot (as the specification's
/// monitoring loop does). A figure the OS does not give (no `/proc`, a platform `sysinfo`
/// does not support) is set to NaN, not to 0. Dropping the handle (or [`SystemMonitor::stop`]) wakes the thread at
/// once, whatever the interval, and joins it; a sample in progress is waited for up to
/// [`STOP_TIMEOUT`] ([`SystemMonitor::stop_within`] takes another), after which the thread is
/// left to end on its own when the sample returns.
///
/// A sample that panics (inside `sysinfo`, or in taking the snapshot) does not end the
/// monitor: it is counted ([`MonitorStats::panics`]), the OS reader is made afresh, and the
/// next interval samples again. (The panic's message goes to the panic hook, as any panic's.)
///
/// ```
/// use agentcore_telemetry::agent::SystemMonitor;
/// use agentcore_telemetry::MetricsCollector;
/// use std::time::Duration;
///
/// let collector = MetricsCollector::new();
/// let monitor = SystemMonitor::start(collector.clone(), Duration::from_millis(50)).unwrap();
/// while monitor.stats().samples == 0 {
///     std::thread::sleep(Duration::from_millis(10));
/// }
/// // A counted sample is complete: its snapshot is in the history.
/// assert!(collector.history_len() >= 1);
/// monitor.stop();
/// let snapshot = collector.snapshot_metrics();
/// assert!((0.0..=100.0).contains(&snapshot.system.memory_percent));
/// ```
///
/// The handle is `#[must_use]`: a monitor started and not kept stops at the end of the
/// statement, having sampled nothing.
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// use agentcore_telemetry::MetricsCollector;
/// use std::time::Duration;
///
/// let collector = MetricsCollector::new();
/// collector.start_system_monitor(Duration::from_secs(30)).unwrap(); // stopped at once
/// ```
#[derive(Debug)]
#[must_use = "dropping the monitor stops it: keep it for as long as it should sample"]
pub struct SystemMonitor {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
    /// Disconnected when the thread ends (it holds the sender), however it ends.
    ended: Receiver<()>,
    shared: Arc<Shared>,
}

/// What the monitor and its thread share.
#[derive(Debug, Default)]
struct Shared {
    samples: AtomicU64,
    panics: AtomicU64,
    /// Test support: how many of the next samples panic, and how long each sample stalls.
    #[cfg(test)]
    test_panics: AtomicU64,
    #[cfg(test)]
    test_stall_ms: AtomicU64,
    #[cfg(test)]
    test_started: AtomicU64,
}

/// What a [`SystemMonitor`] has done so far ([`SystemMonitor::stats`]).
///
/// ```
/// use agentcore_telemetry::agent::system::MonitorStats;
///
/// let stats = MonitorStats::default();
/// assert_eq!((stats.samples, stats.panics), (0, 0));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MonitorStats {
    /// Samples taken (the gauges set and the snapshot taken).
    pub samples: u64,
    /// Samples that panicked instead (the monitor went on).
    pub panics: u64,
}

impl SystemMonitor {
    /// Starts sampling into `collector` every `interval` (at least [`MIN_INTERVAL`]). The first
    /// sample is taken one interval after the start. Errors if the thread cannot be spawned.
    ///
    /// ```
    /// use agentcore_telemetry::agent::SystemMonitor;
    /// use agentcore_telemetry::MetricsCollector;
    /// use std::time::Duration;
    ///
    /// let monitor = SystemMonitor::start(MetricsCollector::new(), Duration::from_secs(30)).unwrap();
    /// assert!(monitor.is_running());
    /// ```
    pub fn start(
        collector: MetricsCollector,
        interval: Duration,
    ) -> std::io::Result<SystemMonitor> {
        let interval = interval.max(MIN_INTERVAL);
        let (stop, stopped) = mpsc::channel::<()>();
        let (ending, ended) = mpsc::channel::<()>();
        let shared = Arc::new(Shared::default());
        let counts = shared.clone();
        let thread = std::thread::Builder::new()
            .name("agentcore-system-monitor".into())
            .spawn(move || {
                // Dropped when the thread ends: `ended` disconnects.
                let _ending = ending;
                // Dropped before `_ending`: the handle may be the collector's last one, whose
                // drop runs the caller's code (the `Drop` of a `gauge_fn` closure in its
                // registry), which may block; `stop_within` then stops waiting at its deadline
                // instead of joining a thread still inside it (as a captured value, the
                // collector was dropped after the body's locals, so after `_ending`).
                let collector = collector;
                let mut system = fresh_system();
                // Any message or a dropped sender stops the loop; only a timeout samples.
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    let sampled = catch_unwind(AssertUnwindSafe(|| {
                        counts.test_hooks();
                        sample(&mut system, &collector);
                        collector.snapshot_metrics();
                    }));
                    // Release: whoever reads the count (`stats`, Acquire) sees the sample's
                    // gauges and snapshot. (Counted after the snapshot; a reader that waited
                    // for the history and then read the count could see 0: CI did once.)
                    match sampled {
                        Ok(()) => counts.samples.fetch_add(1, Release),
                        Err(_) => {
                            // The reader may have been left half-updated: start it again.
                            system = fresh_system();
                            counts.panics.fetch_add(1, Relaxed)
                        }
                    };
                }
            })?;
        Ok(SystemMonitor {
            stop: Some(stop),
            thread: Some(thread),
            ended,
            shared,
        })
    }

    /// Whether the sampling thread is still running.
    ///
    /// ```
    /// use agentcore_telemetry::MetricsCollector;
    /// use std::time::Duration;
    ///
    /// let monitor = MetricsCollector::new().start_system_monitor(Duration::from_secs(1)).unwrap();
    /// assert!(monitor.is_running());
    /// ```
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// How many samples the monitor has taken, and how many panicked. A sample counted here
    /// is complete: its gauges are set and its snapshot is in the history.
    ///
    /// ```
    /// use agentcore_telemetry::MetricsCollector;
    /// use std::time::Duration;
    ///
    /// let monitor = MetricsCollector::new().start_system_monitor(Duration::from_secs(60)).unwrap();
    /// assert_eq!(monitor.stats().samples, 0); // the first sample comes after one interval
    /// ```
    pub fn stats(&self) -> MonitorStats {
        MonitorStats {
            samples: self.shared.samples.load(Acquire),
            panics: self.shared.panics.load(Relaxed),
        }
    }

    /// Stops the thread and waits for it, at most [`STOP_TIMEOUT`] (what dropping does).
    ///
    /// ```
    /// use agentcore_telemetry::MetricsCollector;
    /// use std::time::{Duration, Instant};
    ///
    /// let monitor = MetricsCollector::new().start_system_monitor(Duration::from_secs(3600)).unwrap();
    /// let t = Instant::now();
    /// monitor.stop();
    /// assert!(t.elapsed() < Duration::from_secs(5));
    /// ```
    pub fn stop(self) {
        self.stop_within(STOP_TIMEOUT);
    }

    /// Stops the thread and waits for it at most `timeout`. `true` if it ended and was joined;
    /// `false` if a sample was still in progress at the deadline, in which case the thread ends
    /// on its own once that sample returns (it samples no more).
    ///
    /// ```
    /// use agentcore_telemetry::MetricsCollector;
    /// use std::time::Duration;
    ///
    /// let monitor = MetricsCollector::new().start_system_monitor(Duration::from_secs(3600)).unwrap();
    /// assert!(monitor.stop_within(Duration::from_secs(5)));
    /// ```
    pub fn stop_within(mut self, timeout: Duration) -> bool {
        self.shutdown(timeout)
    }

    fn shutdown(&mut self, timeout: Duration) -> bool {
        // Dropping the sender wakes the thread at once (a disconnected channel).
        drop(self.stop.take());
        let Some(thread) = self.thread.take() else {
            return true;
        };
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let wait = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => Duration::from_secs(3600),
            };
            match self.ended.recv_timeout(wait) {
                Err(RecvTimeoutError::Disconnected) => break,
                // Nothing is ever sent; a timeout before the deadline (the "forever" case)
                // waits again.
                Ok(()) | Err(RecvTimeoutError::Timeout) => {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return false; // detached: it ends after its sample
                    }
                }
            }
        }
        // The thread dropped its sender last, after its collector handle: the join is at
        // once.
        let _ = thread.join();
        true
    }
}

impl Drop for SystemMonitor {
    fn drop(&mut self) {
        self.shutdown(STOP_TIMEOUT);
    }
}

impl Shared {
    /// Test support: panics or stalls as the test asked; nothing outside tests.
    #[inline]
    fn test_hooks(&self) {
        #[cfg(test)]
        {
            use std::sync::atomic::Ordering::SeqCst;
            self.test_started.fetch_add(1, SeqCst);
            let stall = self.test_stall_ms.load(SeqCst);
            if stall > 0 {
                std::thread::sleep(Duration::from_millis(stall));
            }
            let panics = self.test_panics.load(Relaxed);
            if panics > 0 {
                self.test_panics.store(panics - 1, Relaxed);
                panic!("test: a sample panics");
            }
        }
    }
}

/// An OS reader with its first CPU reading taken (CPU usage is the change between two).
fn fresh_system() -> System {
    let mut system = System::new();
    system.refresh_cpu_usage();
    system
}

fn sample(system: &mut System, collector: &MetricsCollector) {
    system.refresh_cpu_usage();
    system.refresh_memory();
    // A figure the OS does not give (no `/proc`, a platform `sysinfo` does not read) is NaN,
    // unknown, as the process metrics write what they cannot read: `sysinfo` answers 0 for
    // it, which the gauges exposed as a reading, an idle machine with no memory in use and
    // none available (0 MB: a low-memory alert fires).
    let cpu = if system.cpus().is_empty() {
        f64::NAN
    } else {
        f64::from(system.global_cpu_usage()).clamp(0.0, 100.0)
    };
    let total = system.total_memory() as f64;
    let available = system.available_memory() as f64;
    let (memory_percent, available_mb) = if total > 0.0 {
        (
            ((total - available) / total * 100.0).clamp(0.0, 100.0),
            available / (1024.0 * 1024.0),
        )
    } else {
        (f64::NAN, f64::NAN)
    };
    let m = &collector.inner.m;
    for (gauge, v) in [
        (&m.system_cpu_percent, cpu),
        (&m.system_memory_percent, memory_percent),
        (&m.system_memory_available_mb, available_mb),
    ] {
        // Set directly: `update_system_resources` refuses a NaN as a caller's mistake (and
        // counts it); here it is the answer.
        gauge.set(v);
    }
}

impl super::MetricsCollector {
    /// Starts a [`SystemMonitor`] that fills the `agentcore_system_*` gauges from the OS and
    /// takes a snapshot every `interval`, on a background thread; it stops when the returned
    /// handle is dropped.
    ///
    /// ```
    /// use agentcore_telemetry::MetricsCollector;
    /// use std::time::Duration;
    ///
    /// let c = MetricsCollector::new();
    /// let monitor = c.start_system_monitor(Duration::from_secs(30)).unwrap();
    /// drop(monitor); // stops and joins at once
    /// ```
    #[cfg(feature = "system-monitor")]
    #[cfg_attr(docsrs, doc(cfg(feature = "system-monitor")))]
    pub fn start_system_monitor(&self, interval: Duration) -> std::io::Result<SystemMonitor> {
        SystemMonitor::start(self.clone(), interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Waits (up to a minute, for a loaded machine) until `done` holds.
    fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_panicking_sample_is_counted_and_the_monitor_goes_on() {
        let collector = MetricsCollector::new();
        let monitor = SystemMonitor::start(collector.clone(), MIN_INTERVAL).unwrap();
        monitor.shared.test_panics.store(2, Relaxed);
        wait_for("two panics and a sample after them", || {
            let s = monitor.stats();
            s.panics == 2 && s.samples >= 1
        });
        assert!(monitor.is_running());
        // The samples after the panics set the gauges and took snapshots.
        assert!(collector.history_len() >= 1);
        assert!(monitor.stop_within(Duration::from_secs(60)));
    }

    #[test]
    fn a_stop_during_a_stalled_sample_returns_by_its_deadline() {
        let monitor = SystemMonitor::start(MetricsCollector::new(), MIN_INTERVAL).unwrap();
        let shared = monitor.shared.clone();
        // Every sample that begins from now on takes 3 s (SeqCst: a sample counted as begun
        // after the read of `begun` below reads the stall after it was stored).
        use std::sync::atomic::Ordering::SeqCst;
        shared.test_stall_ms.store(3_000, SeqCst);
        let begun = shared.test_started.load(SeqCst);
        wait_for("a stalled sample to begin", || {
            shared.test_started.load(SeqCst) > begun
        });
        let t = Instant::now();
        assert!(!monitor.stop_within(Duration::from_millis(100)));
        let took = t.elapsed();
        // The 100 ms deadline against a 3 s stall: a generous bound.
        assert!(took < Duration::from_millis(2_500), "stop took {took:?}");
        // Detached, the thread ends after that sample and takes no other.
        let after = shared.samples.load(Relaxed);
        wait_for("the detached thread's end", || {
            Arc::strong_count(&shared) == 1
        });
        assert!(shared.samples.load(Relaxed) <= after + 1);
    }
}
