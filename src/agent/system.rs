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

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

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

/// Samples the system's CPU and memory usage every interval on a background thread, sets
/// `agentcore_system_cpu_percent`, `agentcore_system_memory_percent` and
/// `agentcore_system_memory_available_mb`, then takes a snapshot (as the specification's
/// monitoring loop does). Dropping the handle (or [`SystemMonitor::stop`]) wakes the thread at
/// once, whatever the interval, and joins it.
///
/// ```
/// use agentcore_telemetry::agent::SystemMonitor;
/// use agentcore_telemetry::MetricsCollector;
/// use std::time::Duration;
///
/// let collector = MetricsCollector::new();
/// let monitor = SystemMonitor::start(collector.clone(), Duration::from_millis(50)).unwrap();
/// while collector.history_len() == 0 {
///     std::thread::sleep(Duration::from_millis(10));
/// }
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
        let thread = std::thread::Builder::new()
            .name("agentcore-system-monitor".into())
            .spawn(move || {
                let mut system = System::new();
                system.refresh_cpu_usage();
                // Any message or a dropped sender stops the loop; only a timeout samples.
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    sample(&mut system, &collector);
                    collector.snapshot_metrics();
                }
            })?;
        Ok(SystemMonitor {
            stop: Some(stop),
            thread: Some(thread),
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

    /// Stops the thread and waits for it (what dropping does).
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
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for SystemMonitor {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn sample(system: &mut System, collector: &MetricsCollector) {
    system.refresh_cpu_usage();
    system.refresh_memory();
    let cpu = f64::from(system.global_cpu_usage()).clamp(0.0, 100.0);
    let total = system.total_memory() as f64;
    let available = system.available_memory() as f64;
    let memory_percent = if total > 0.0 {
        ((total - available) / total * 100.0).clamp(0.0, 100.0)
    } else {
        0.0
    };
    collector.update_system_resources(cpu, memory_percent, available / (1024.0 * 1024.0));
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
