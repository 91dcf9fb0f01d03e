//! The standard process metrics (Prometheus' "Process metrics" in `standard_exports.md`, the
//! names client_golang's process collector uses), read from `/proc` at scrape time.
//!
//! [`Registry::register_process_metrics`] registers them as scrape-time families
//! ([`Registry::counter_fn`] / [`Registry::gauge_fn`]): nothing runs between scrapes, no thread,
//! no timer. Each scrape reads:
//!
//! | metric | type | source |
//! |---|---|---|
//! | `process_cpu_seconds_total` | counter | `/proc/self/stat` utime + stime, ÷ `sysconf(_SC_CLK_TCK)` |
//! | `process_resident_memory_bytes` | gauge | `/proc/self/stat` rss × `sysconf(_SC_PAGESIZE)` |
//! | `process_virtual_memory_bytes` | gauge | `/proc/self/stat` vsize |
//! | `process_virtual_memory_max_bytes` | gauge | `getrlimit(RLIMIT_AS)` soft limit (unlimited: 2⁶⁴ − 1, as client_golang) |
//! | `process_open_fds` | gauge | entries of `/proc/self/fd` (`getdents64`), less the one reading it |
//! | `process_max_fds` | gauge | `getrlimit(RLIMIT_NOFILE)` soft limit |
//! | `process_start_time_seconds` | gauge | `/proc/stat` btime + `/proc/self/stat` starttime ÷ clock ticks (read once, at registration) |
//! | `process_threads` | gauge | `/proc/self/stat` num_threads |
//!
//! `process_heap_bytes`, the one other name of `standard_exports.md`, is left out: a Rust
//! process has no single heap whose size the kernel reports.
//!
//! A scrape reads `/proc/self/stat` once, whichever of the four metrics from it comes first,
//! and the others take their values from that reading (the scrape's scratch keeps it): one
//! system call's worth of work instead of four, and CPU time, memory and threads of one moment,
//! as client_golang's collector gives them.
//!
//! A scrape allocates nothing for them: `/proc/self/stat` is read into a stack buffer (its
//! line is a few hundred bytes: the command name in it is at most 15 bytes), and `/proc/self/fd`
//! is listed with the raw `getdents64` system call into a stack buffer (`opendir` would
//! `malloc`). A read that fails at scrape time (a file descriptor limit reached, `/proc`
//! unmounted since) gives NaN for that scrape: the 0.0.4 exposition writes `NaN`, OpenMetrics
//! leaves the counter's sample out (a counter cannot be NaN there).
//!
//! Linux only. Elsewhere [`Registry::register_process_metrics`] registers nothing and returns
//! 0; [`process_stats`] returns `None`.

use super::Registry;
use crate::Error;

/// The process metrics [`Registry::register_process_metrics`] adds, by name.
pub const PROCESS_METRICS: [&str; 8] = [
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_virtual_memory_max_bytes",
    "process_open_fds",
    "process_max_fds",
    "process_start_time_seconds",
    "process_threads",
];

/// One reading of the process' resources (what the process metrics expose).
///
/// ```
/// # #[cfg(target_os = "linux")] {
/// use agentcore_telemetry::registry::process::process_stats;
///
/// let stats = process_stats().unwrap();
/// assert!(stats.resident_memory_bytes > 0);
/// assert!(stats.threads >= 1);
/// assert!(stats.open_fds >= 3 && stats.open_fds <= stats.max_fds);
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct ProcessStats {
    /// User and system CPU time, in seconds.
    pub cpu_seconds: f64,
    /// Resident set size, in bytes.
    pub resident_memory_bytes: u64,
    /// Virtual memory size, in bytes.
    pub virtual_memory_bytes: u64,
    /// The soft limit on virtual memory (`RLIMIT_AS`), in bytes; `u64::MAX` when unlimited.
    pub virtual_memory_max_bytes: u64,
    /// Open file descriptors.
    pub open_fds: u64,
    /// The soft limit on open file descriptors.
    pub max_fds: u64,
    /// When the process started, in seconds since the Unix epoch.
    pub start_time_seconds: f64,
    /// Threads.
    pub threads: u64,
}

/// Reads every process statistic now (`None` off Linux or when `/proc` cannot be read).
/// Allocates nothing except for the start time, which needs `/proc/stat`'s boot time; the
/// registered metrics read that once.
///
/// ```
/// use agentcore_telemetry::registry::process::process_stats;
/// use std::time::{SystemTime, UNIX_EPOCH};
///
/// let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
/// match process_stats() {
///     Some(stats) => {
///         assert!(stats.start_time_seconds > 0.0 && stats.start_time_seconds <= now + 1.0);
///         assert!(stats.virtual_memory_bytes >= stats.resident_memory_bytes);
///     }
///     None => assert!(!cfg!(target_os = "linux")), // only Linux has `/proc`
/// }
/// ```
pub fn process_stats() -> Option<ProcessStats> {
    imp::stats()
}

impl Registry {
    /// Registers the standard process metrics ([`PROCESS_METRICS`]: CPU seconds, resident and
    /// virtual memory, the virtual memory limit, open and maximum file descriptors, start time,
    /// threads), read from `/proc` at each scrape, allocation-free (see
    /// [`process`](crate::registry::process)). Returns how many families it registered: 8 on
    /// Linux, 0 elsewhere (nothing to read).
    ///
    /// Errors with [`Error::DuplicateMetric`] if a name is taken (for instance by an earlier
    /// call), and with [`Error::ProcessMetricsUnavailable`] if `/proc` cannot be read now; in
    /// either case nothing is registered.
    ///
    /// ```
    /// use agentcore_telemetry::Registry;
    ///
    /// let registry = Registry::new();
    /// let registered = registry.register_process_metrics().unwrap();
    /// let text = registry.encode_text();
    /// if cfg!(target_os = "linux") {
    ///     assert_eq!(registered, 8);
    ///     assert!(text.contains("# TYPE process_cpu_seconds_total counter\n"));
    ///     assert!(text.contains("\nprocess_threads "));
    /// } else {
    ///     assert_eq!(registered, 0);
    /// }
    /// ```
    pub fn register_process_metrics(&self) -> Result<usize, Error> {
        imp::register(self)
    }
}

#[cfg(target_os = "linux")]
mod imp {
    use super::{ProcessStats, Registry, PROCESS_METRICS};
    use crate::exposition::MetricKind;
    use crate::registry::proc_stat::{read_stat, Stat};
    use crate::registry::Scratch;
    use crate::Error;

    /// Counts the entries of `/proc/self/fd`, less the descriptor used to list it.
    pub(super) fn open_fds() -> Option<u64> {
        // SAFETY: a NUL-terminated path and valid flags; the descriptor is closed below.
        let fd = unsafe {
            libc::open(
                c"/proc/self/fd".as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return None;
        }
        // `linux_dirent64` records are 8-byte aligned: a `u64` buffer keeps them so.
        let mut buf = [0u64; 512];
        let mut count = 0u64;
        let result = loop {
            // SAFETY: `buf` is writable for its whole length; `fd` is an open directory.
            let n = unsafe {
                libc::syscall(
                    libc::SYS_getdents64,
                    fd,
                    buf.as_mut_ptr().cast::<u8>(),
                    std::mem::size_of_val(&buf),
                )
            };
            if n < 0 {
                break None;
            }
            if n == 0 {
                break Some(count);
            }
            let bytes = &bytemuck_u8(&buf)[..n as usize];
            let mut at = 0usize;
            while at + 19 < bytes.len() {
                // struct linux_dirent64 { u64 d_ino; i64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
                let reclen = usize::from(u16::from_ne_bytes([bytes[at + 16], bytes[at + 17]]));
                if reclen == 0 || at + reclen > bytes.len() {
                    break;
                }
                let name = &bytes[at + 19..at + reclen];
                let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
                if name != b"." && name != b".." {
                    count += 1;
                }
                at += reclen;
            }
        };
        // SAFETY: `fd` was opened above and is closed once.
        unsafe { libc::close(fd) };
        // The descriptor listing the directory is one of its entries.
        result.map(|c| c.saturating_sub(1))
    }

    /// The buffer's bytes.
    fn bytemuck_u8(words: &[u64]) -> &[u8] {
        // SAFETY: any `u64` is 8 initialised bytes; `u8` has alignment 1 and the length covers
        // exactly the words' bytes.
        unsafe {
            std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), std::mem::size_of_val(words))
        }
    }

    /// The soft limit on open descriptors.
    pub(super) fn max_fds() -> Option<u64> {
        let mut limit = ZEROED_RLIMIT;
        // SAFETY: `limit` is a valid, writable `rlimit`.
        let result = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
        soft_limit(result, limit)
    }

    /// The soft limit on the address space, in bytes (`u64::MAX` when unlimited).
    pub(super) fn max_virtual_memory() -> Option<u64> {
        let mut limit = ZEROED_RLIMIT;
        // SAFETY: `limit` is a valid, writable `rlimit`.
        let result = unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut limit) };
        soft_limit(result, limit)
    }

    /// An `rlimit` for `getrlimit` to fill in.
    const ZEROED_RLIMIT: libc::rlimit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };

    /// The soft limit `getrlimit` returned `result` for; `RLIM_INFINITY` is `u64::MAX`, as
    /// procfs reads `unlimited`.
    fn soft_limit(result: libc::c_int, limit: libc::rlimit) -> Option<u64> {
        if result != 0 {
            return None;
        }
        if limit.rlim_cur == libc::RLIM_INFINITY {
            return Some(u64::MAX);
        }
        // `rlim_t` is 32 bits wide on some 32-bit targets.
        #[allow(clippy::unnecessary_cast)]
        Some(limit.rlim_cur as u64)
    }

    fn sysconf(name: libc::c_int) -> Option<u64> {
        // SAFETY: `sysconf` only reads its argument.
        let v = unsafe { libc::sysconf(name) };
        u64::try_from(v).ok().filter(|&v| v > 0)
    }

    /// Seconds since the epoch at boot (`btime` of `/proc/stat`).
    fn boot_time() -> Option<u64> {
        let text = std::fs::read_to_string("/proc/stat").ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse().ok())
    }

    /// The constants a reading needs: clock ticks per second, the page size, the start time.
    #[derive(Debug, Clone, Copy)]
    struct Constants {
        ticks: f64,
        page: u64,
        start_time: f64,
    }

    /// The constants, and the reading of `/proc/self/stat` they took the start time from.
    fn constants() -> Result<(Constants, Stat), Error> {
        let unavailable = |what: &str| Error::ProcessMetricsUnavailable {
            reason: what.to_string(),
        };
        let ticks =
            sysconf(libc::_SC_CLK_TCK).ok_or_else(|| unavailable("sysconf(_SC_CLK_TCK)"))?;
        let page =
            sysconf(libc::_SC_PAGESIZE).ok_or_else(|| unavailable("sysconf(_SC_PAGESIZE)"))?;
        let stat = read_stat().ok_or_else(|| unavailable("/proc/self/stat unreadable"))?;
        let boot = boot_time().ok_or_else(|| unavailable("no btime in /proc/stat"))?;
        open_fds().ok_or_else(|| unavailable("/proc/self/fd unreadable"))?;
        let ticks = ticks as f64;
        let k = Constants {
            ticks,
            page,
            start_time: boot as f64 + stat.start_ticks as f64 / ticks,
        };
        Ok((k, stat))
    }

    pub(super) fn stats() -> Option<ProcessStats> {
        let (k, stat) = constants().ok()?;
        Some(ProcessStats {
            cpu_seconds: stat.cpu_ticks as f64 / k.ticks,
            resident_memory_bytes: stat.rss.saturating_mul(k.page),
            virtual_memory_bytes: stat.vsize,
            virtual_memory_max_bytes: max_virtual_memory()?,
            open_fds: open_fds()?,
            max_fds: max_fds()?,
            start_time_seconds: k.start_time,
            threads: stat.threads,
        })
    }

    fn or_nan(v: Option<f64>) -> f64 {
        v.unwrap_or(f64::NAN)
    }

    /// This scrape's reading of `/proc/self/stat`: read by the first of the four metrics that
    /// come from it, then shared, so that one scrape reads the file once (as client_golang's
    /// collector does) and its CPU time, memory and thread count are one moment's.
    fn scrape_stat(scratch: &mut Scratch) -> Option<Stat> {
        *scratch.process_stat.get_or_insert_with(read_stat)
    }

    pub(super) fn register(registry: &Registry) -> Result<usize, Error> {
        let (k, _) = constants()?;
        let [cpu, rss, vsize, vsize_max, open, max, start, threads] = PROCESS_METRICS;
        // All or nothing: one registration of the eight (`register_fns`).
        registry.register_fns(vec![
            (
                MetricKind::Counter,
                cpu,
                "Total user and system CPU time spent in seconds.",
                Box::new(move |scratch| {
                    or_nan(scrape_stat(scratch).map(|s| s.cpu_ticks as f64 / k.ticks))
                }),
            ),
            (
                MetricKind::Gauge,
                rss,
                "Resident memory size in bytes.",
                Box::new(move |scratch| {
                    or_nan(scrape_stat(scratch).map(|s| s.rss.saturating_mul(k.page) as f64))
                }),
            ),
            (
                MetricKind::Gauge,
                vsize,
                "Virtual memory size in bytes.",
                Box::new(|scratch| or_nan(scrape_stat(scratch).map(|s| s.vsize as f64))),
            ),
            (
                MetricKind::Gauge,
                vsize_max,
                "Maximum amount of virtual memory available in bytes.",
                Box::new(|_| or_nan(max_virtual_memory().map(|n| n as f64))),
            ),
            (
                MetricKind::Gauge,
                open,
                "Number of open file descriptors.",
                Box::new(|_| or_nan(open_fds().map(|n| n as f64))),
            ),
            (
                MetricKind::Gauge,
                max,
                "Maximum number of open file descriptors.",
                Box::new(|_| or_nan(max_fds().map(|n| n as f64))),
            ),
            (
                MetricKind::Gauge,
                start,
                "Start time of the process since unix epoch in seconds.",
                Box::new(move |_| k.start_time),
            ),
            (
                MetricKind::Gauge,
                threads,
                "Number of OS threads in the process.",
                Box::new(|scratch| or_nan(scrape_stat(scratch).map(|s| s.threads as f64))),
            ),
        ])?;
        Ok(PROCESS_METRICS.len())
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::registry::proc_stat::tests::STAT_READS;
        use std::cell::Cell;

        #[test]
        fn a_scrape_reads_proc_self_stat_once() {
            let registry = Registry::new();
            registry.register_process_metrics().unwrap();
            for openmetrics in [false, true, false] {
                let before = STAT_READS.with(Cell::get);
                let text = if openmetrics {
                    registry.encode_openmetrics()
                } else {
                    registry.encode_text()
                };
                assert_eq!(STAT_READS.with(Cell::get) - before, 1, "{text}");
                for name in ["process_cpu_seconds_total", "process_threads"] {
                    let value = text
                        .lines()
                        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
                        .unwrap_or_else(|| panic!("no {name} sample in\n{text}"));
                    assert!(value.parse::<f64>().unwrap() >= 0.0, "{name} {value}");
                }
            }
            // Scrape-time functions of users still run once per scrape each.
            let calls = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
            let c = calls.clone();
            registry
                .gauge_fn("user_fn", "U.", move || {
                    f64::from(c.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
                })
                .unwrap();
            assert!(registry.encode_text().contains("\nuser_fn 0\n"));
            assert!(registry.encode_text().contains("\nuser_fn 1\n"));
        }

        #[test]
        fn a_clash_with_any_of_the_eight_registers_none_of_them() {
            // `process_threads_total` is the OpenMetrics family `process_threads`, the last
            // gauge's name: not the same name, but a clash (before, the six others stayed
            // registered and a second call failed on the first of them).
            let registry = Registry::new();
            registry.counter("process_threads_total", "").unwrap();
            let before = registry.family_names();
            assert!(matches!(
                registry.register_process_metrics(),
                Err(Error::DuplicateMetric { name }) if name == "process_threads"
            ));
            assert_eq!(registry.family_names(), before);
            // With the name free, all eight register.
            let registry = Registry::new();
            assert_eq!(
                registry.register_process_metrics(),
                Ok(PROCESS_METRICS.len())
            );
            assert!(matches!(
                registry.register_process_metrics(),
                Err(Error::DuplicateMetric { .. })
            ));
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::{ProcessStats, Registry};
    use crate::Error;

    pub(super) fn stats() -> Option<ProcessStats> {
        None
    }

    pub(super) fn register(_: &Registry) -> Result<usize, Error> {
        Ok(0)
    }
}
