//! The process metrics and the system monitor where `/proc` is missing or lies: a container
//! without it, or one whose `/proc/self/stat` is hostile or turns to garbage after start-up. The
//! collector is still built, every scrape still succeeds and parses, the metrics are absent or
//! NaN, and nothing panics.
//!
//! The scenarios run in a child process (this test binary re-run under `unshare --mount` with a
//! tmpfs over `/proc`), because `/proc` cannot be taken from one test without taking it from
//! every other. Without the privilege to do that (no `unshare`, no `CAP_SYS_ADMIN`) the test says
//! so and passes.
#![cfg(target_os = "linux")]

mod support;

use std::process::Command;

use agentcore_telemetry::registry::process::process_stats;
use agentcore_telemetry::{Error, MetricsCollector, Registry};
use support::exposition::{parse, value};

const CHILD: &str = "AGENTCORE_NO_PROC_CHILD";
const STARTED: &str = "agentcore-no-proc-child-started";
const DONE: &str = "agentcore-no-proc-child-done";
const NAME: &str = "without_or_with_a_lying_proc_every_scrape_succeeds";

fn scrape(registry: &Registry) -> Vec<support::exposition::Family> {
    let text = registry.encode_text();
    let om = registry.encode_openmetrics();
    assert!(om.ends_with("# EOF\n"), "{om}");
    parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn sysconf(name: libc::c_int) -> f64 {
    // SAFETY: `sysconf` only reads its argument.
    unsafe { libc::sysconf(name) as f64 }
}

/// An empty tmpfs over `/proc`: nothing to read.
fn child_without_proc() {
    assert!(process_stats().is_none());
    assert!(matches!(
        Registry::new().register_process_metrics(),
        Err(Error::ProcessMetricsUnavailable { .. })
    ));
    let c = MetricsCollector::new();
    let families = scrape(c.get_registry());
    assert!(!families.iter().any(|f| f.name.starts_with("process_")));
    #[cfg(feature = "system-monitor")]
    {
        use std::time::{Duration, Instant};

        let monitor = c.start_system_monitor(Duration::ZERO).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while c.history_len() < 3 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(monitor.is_running(), "the sampler thread died");
        assert!(c.history_len() >= 3, "no samples");
        // The OS gave no figure: the gauges say so (NaN), as the process metrics do, rather
        // than read as an idle machine with no memory in use and none available.
        let s = c.snapshot_metrics().system;
        assert!(
            s.cpu_percent.is_nan() && s.memory_percent.is_nan() && s.memory_available_mb.is_nan(),
            "no /proc, yet the system monitor reported {s:?}"
        );
        let t = Instant::now();
        monitor.stop();
        assert!(t.elapsed() < Duration::from_secs(2));
    }
    scrape(c.get_registry());
}

/// A writable tmpfs over `/proc` holding a `/proc/stat`, a hostile `/proc/self/stat` (its command
/// name holds spaces and parentheses) and a `/proc/self/fd` of four entries; then garbage.
fn child_with_a_lying_proc() {
    std::fs::write(
        "/proc/stat",
        "cpu  1 2 3 4\nbtime   1700000000\nprocesses 9\n",
    )
    .unwrap();
    std::fs::create_dir_all("/proc/self/fd").unwrap();
    for fd in 0..4 {
        std::fs::write(format!("/proc/self/fd/{fd}"), "").unwrap();
    }
    let stat = "77 (a) b) (c) R 1 77 77 0 -1 4194560 100 0 0 0 \
                300 200 0 0 20 0 5 0 4200 123456789 1000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 \
                0 17 1 0 0 0 0 0\n";
    std::fs::write("/proc/self/stat", stat).unwrap();

    let (ticks, page) = (sysconf(libc::_SC_CLK_TCK), sysconf(libc::_SC_PAGESIZE));
    // A finite address-space limit (1 TiB, far above what this process maps), in bytes.
    let address_space = libc::rlimit {
        rlim_cur: 1 << 40,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: `address_space` is a valid `rlimit`; lowering a soft limit needs no privilege.
    assert_eq!(
        unsafe { libc::setrlimit(libc::RLIMIT_AS, &address_space) },
        0
    );
    let registry = Registry::new();
    assert_eq!(registry.register_process_metrics(), Ok(8));
    let f = scrape(&registry);
    let get = |name: &str| value(&f, name, &[]).unwrap_or_else(|| panic!("{name} missing"));
    assert_eq!(get("process_cpu_seconds_total"), 500.0 / ticks);
    assert_eq!(get("process_threads"), 5.0);
    assert_eq!(get("process_virtual_memory_bytes"), 123_456_789.0);
    assert_eq!(get("process_resident_memory_bytes"), 1000.0 * page);
    assert_eq!(get("process_start_time_seconds"), 1.7e9 + 4200.0 / ticks);
    assert_eq!(
        get("process_open_fds"),
        3.0,
        "four entries, less the one reading them"
    );
    assert!(get("process_max_fds") >= 3.0);
    assert_eq!(get("process_virtual_memory_max_bytes"), (1u64 << 40) as f64);

    // Garbage, then nothing: every scrape still succeeds; what cannot be read is NaN in the
    // 0.0.4 format (OpenMetrics leaves the counter out), the rest stays.
    for garbage in [
        "77 (x) R 1 2",
        "77 (x) R 1 77 77 0 -1 4194560 100 0 0 0 3x0 200",
        "\u{0}\u{1}))))",
        "",
    ] {
        std::fs::write("/proc/self/stat", garbage).unwrap();
        let f = scrape(&registry);
        let get = |name: &str| value(&f, name, &[]).unwrap_or_else(|| panic!("{name} missing"));
        assert!(get("process_cpu_seconds_total").is_nan(), "{garbage:?}");
        assert!(get("process_threads").is_nan(), "{garbage:?}");
        assert_eq!(get("process_start_time_seconds"), 1.7e9 + 4200.0 / ticks);
        assert!(!registry
            .encode_openmetrics()
            .contains("\nprocess_cpu_seconds_total "));
    }
    std::fs::remove_dir_all("/proc/self").unwrap();
    let f = scrape(&registry);
    assert!(value(&f, "process_open_fds", &[]).unwrap().is_nan());
    assert!(process_stats().is_none());
}

#[test]
fn without_or_with_a_lying_proc_every_scrape_succeeds() {
    if let Ok(mode) = std::env::var(CHILD) {
        println!("{STARTED}");
        match mode.as_str() {
            "empty" => child_without_proc(),
            _ => child_with_a_lying_proc(),
        }
        println!("{DONE}");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    for mode in ["empty", "lying"] {
        let out = Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                "mount -t tmpfs agentcore-no-proc /proc && exec \"$0\" --exact \"$1\" --nocapture",
            ])
            .arg(&exe)
            .arg(NAME)
            .env(CHILD, mode)
            .output();
        let out = match out {
            Ok(out) => out,
            Err(e) => {
                eprintln!("skipped: cannot run unshare: {e}");
                return;
            }
        };
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !stdout.contains(STARTED) {
            eprintln!("skipped: no private mount namespace here: {stderr}");
            return;
        }
        assert!(
            out.status.success() && stdout.contains(DONE),
            "{mode}: {}\n{stdout}\n{stderr}",
            out.status
        );
    }
}
