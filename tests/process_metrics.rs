//! The standard process metrics (`Registry::register_process_metrics`) against what the kernel
//! and `ps` say about this process, within tolerances; their types in both formats; promtool
//! and the OpenMetrics oracle on the exposition; and a steady-state scrape that allocates
//! nothing.
//!
//! One test function: the harness runs tests on parallel threads, which would move the thread
//! and descriptor counts under a neighbour's feet.
#![cfg(target_os = "linux")]

mod support;

use std::process::Command;

use agentcore_telemetry::registry::process::{process_stats, PROCESS_METRICS};
use agentcore_telemetry::{Error, Registry};
use support::alloc::thread_allocations;
use support::exposition::{parse, value};
use support::mem::proc_status;

#[global_allocator]
static GLOBAL: support::alloc::Counting = support::alloc::Counting;

fn scrape(registry: &Registry) -> Vec<support::exposition::Family> {
    let text = registry.encode_text();
    parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn get(families: &[support::exposition::Family], name: &str) -> f64 {
    value(families, name, &[]).unwrap_or_else(|| panic!("{name} missing"))
}

/// `ps -o <field>= -p <pid>` as a number.
fn ps(field: &str) -> f64 {
    let out = Command::new("ps")
        .args([
            "-o",
            &format!("{field}="),
            "-p",
            &std::process::id().to_string(),
        ])
        .output()
        .expect("run ps (procps)");
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .parse()
        .unwrap_or_else(|e| panic!("ps -o {field}=: {text:?}: {e}"))
}

fn within(what: &str, got: f64, want: f64, tolerance: f64) {
    assert!(
        (got - want).abs() <= tolerance,
        "{what}: exposed {got}, expected {want} ± {tolerance}"
    );
}

#[test]
fn process_metrics_match_proc_and_ps_and_allocate_nothing() {
    let registry = Registry::new();
    assert_eq!(registry.register_process_metrics().unwrap(), 8);
    // A second call refuses and registers nothing more.
    assert!(matches!(
        registry.register_process_metrics(),
        Err(Error::DuplicateMetric { .. })
    ));
    assert_eq!(registry.family_names().len(), 9, "8 + the overflow family");

    // Burn some CPU and hold some memory so the readings are not all tiny.
    let ballast: Vec<u8> = vec![1; 64 << 20];
    let mut x = 0u64;
    for i in 0..30_000_000u64 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
    }
    std::hint::black_box((x, &ballast));
    let files: Vec<std::fs::File> = (0..10)
        .map(|_| std::fs::File::open("/proc/self/stat").unwrap())
        .collect();

    let f = scrape(&registry);
    let page = 4096.0;
    within(
        "process_resident_memory_bytes vs ps rss",
        get(&f, "process_resident_memory_bytes"),
        ps("rss") * 1024.0,
        8.0 * 1024.0 * 1024.0,
    );
    within(
        "process_resident_memory_bytes vs VmRSS",
        get(&f, "process_resident_memory_bytes"),
        proc_status("VmRSS") * 1024.0,
        8.0 * 1024.0 * 1024.0,
    );
    assert!(get(&f, "process_resident_memory_bytes") >= 64.0 * 1024.0 * 1024.0 - page);
    within(
        "process_virtual_memory_bytes vs ps vsz",
        get(&f, "process_virtual_memory_bytes"),
        ps("vsz") * 1024.0,
        64.0 * 1024.0 * 1024.0,
    );
    within(
        "process_threads vs ps nlwp",
        get(&f, "process_threads"),
        ps("nlwp"),
        1.0,
    );
    within(
        "process_threads vs /proc/self/status",
        get(&f, "process_threads"),
        proc_status("Threads"),
        1.0,
    );
    let listed = std::fs::read_dir("/proc/self/fd").unwrap().count() as f64 - 1.0;
    within(
        "process_open_fds vs /proc/self/fd",
        get(&f, "process_open_fds"),
        listed,
        0.0,
    );
    assert!(
        get(&f, "process_open_fds") >= 13.0,
        "stdin/out/err + our 10"
    );
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let soft: f64 = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(get(&f, "process_max_fds"), soft);
    // client_golang's `process_virtual_memory_max_bytes`: the address-space soft limit, bytes;
    // `unlimited` is u64::MAX, as procfs reads it.
    let address_space = limits
        .lines()
        .find(|l| l.starts_with("Max address space"))
        .and_then(|l| l.split_whitespace().nth(3))
        .map(|v| {
            if v == "unlimited" {
                u64::MAX as f64
            } else {
                v.parse().unwrap()
            }
        })
        .unwrap();
    assert_eq!(get(&f, "process_virtual_memory_max_bytes"), address_space);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    within(
        "process_start_time_seconds vs now - ps etimes",
        get(&f, "process_start_time_seconds"),
        now - ps("etimes"),
        2.0,
    );
    let cpu = get(&f, "process_cpu_seconds_total");
    let rusage_cpu = {
        // SAFETY: an all-zero `rusage` is valid, and `getrusage` writes a whole one.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `u` is a writable `rusage`.
        assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) }, 0);
        let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
        t(u.ru_utime) + t(u.ru_stime)
    };
    within(
        "process_cpu_seconds_total vs getrusage",
        cpu,
        rusage_cpu,
        0.1,
    );
    assert!(cpu > 0.0);
    drop(files);

    // The counter only goes up.
    for _ in 0..3_000_000u64 {
        x = std::hint::black_box(x.wrapping_add(1));
    }
    let again = get(&scrape(&registry), "process_cpu_seconds_total");
    assert!(again >= cpu, "{again} < {cpu}");

    // The same reading through the public struct.
    let stats = process_stats().unwrap();
    assert!(stats.threads >= 1 && stats.max_fds as f64 == soft);

    // Types in both formats.
    let text = registry.encode_text();
    assert!(text.contains("# TYPE process_cpu_seconds_total counter\n"));
    assert!(text.contains("# TYPE process_resident_memory_bytes gauge\n"));
    let om = registry.encode_openmetrics();
    assert!(om.contains("# TYPE process_cpu_seconds counter\n# UNIT process_cpu_seconds seconds\n"));
    assert!(om.contains("\nprocess_cpu_seconds_total "));
    for name in PROCESS_METRICS {
        assert!(text.contains(&format!("\n{name} ")), "{name}\n{text}");
    }

    // Allocation-free in steady state, in both formats.
    let mut buf = String::new();
    registry.encode_text_into(&mut buf);
    registry.encode_openmetrics_into(&mut buf);
    let before = thread_allocations();
    for _ in 0..20 {
        buf.clear();
        registry.encode_text_into(&mut buf);
        buf.clear();
        registry.encode_openmetrics_into(&mut buf);
    }
    assert_eq!(
        thread_allocations() - before,
        0,
        "process metrics allocate at scrape time"
    );

    // promtool (0.0.4) and the strict OpenMetrics parser accept them.
    if support::prometheus::require_prometheus("process_metrics promtool") {
        let r = support::prometheus::promtool_check_metrics(&text);
        assert!(r.is_clean(), "{r:?}\n{text}");
    }
    if support::openmetrics::require_openmetrics_oracle("process_metrics oracle") {
        let families =
            support::openmetrics::parse_openmetrics(&om).unwrap_or_else(|e| panic!("{e}\n{om}"));
        let cpu = families
            .iter()
            .find(|f| f.name == "process_cpu_seconds")
            .unwrap();
        assert_eq!(
            (cpu.kind.as_str(), cpu.unit.as_str()),
            ("counter", "seconds")
        );
    }
}
