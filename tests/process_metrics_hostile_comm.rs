//! The process metrics of a process whose command name is hostile: `/proc/self/stat` writes the
//! name between parentheses unescaped, so a name holding `) ` and numbers must not shift the
//! fields after it. The name is set for real (through `/proc/self/comm`, the thread group
//! leader's), not only fed to the parser as a line.
//!
//! One test function, alone in its binary: the name is the whole process'.
#![cfg(target_os = "linux")]

mod support;

use agentcore_telemetry::registry::process::process_stats;
use agentcore_telemetry::Registry;
use support::exposition::{parse, value};
use support::mem::proc_status;

#[test]
fn hostile_command_names_leave_every_field_in_place() {
    let registry = Registry::new();
    registry.register_process_metrics().unwrap();
    let original = std::fs::read_to_string("/proc/self/comm").unwrap();
    let start = process_stats().unwrap().start_time_seconds;
    // CPU time enough for a tick or more, so a CPU reading of 0 means a misread.
    let mut x = 0u64;
    while process_stats().unwrap().cpu_seconds < 0.05 {
        for i in 0..1_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
        }
    }
    // At most 15 bytes each (the kernel truncates to TASK_COMM_LEN - 1).
    for comm in [
        "a) b (c",
        ") 9 9 9 9 9 9 9",
        "x) R 1 2 3",
        "((((",
        "))))",
        "a\nb) 7",
    ] {
        std::fs::write("/proc/self/comm", comm).unwrap();
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        assert!(
            stat.contains(&format!("({comm})")),
            "{comm:?} not in {stat:?}"
        );
        let stats = process_stats().unwrap_or_else(|| panic!("{comm:?}: unreadable"));
        assert_eq!(stats.threads as f64, proc_status("Threads"), "{comm:?}");
        assert_eq!(stats.start_time_seconds, start, "{comm:?}");
        assert!(stats.cpu_seconds > 0.0, "{comm:?}: {stats:?}");
        let rss_kb = proc_status("VmRSS");
        let got_kb = stats.resident_memory_bytes as f64 / 1024.0;
        assert!(
            (got_kb - rss_kb).abs() <= rss_kb * 0.5 + 4096.0,
            "{comm:?}: rss {got_kb} kB, status says {rss_kb} kB"
        );
        assert!(
            stats.virtual_memory_bytes >= stats.resident_memory_bytes,
            "{comm:?}"
        );
        // The registered metrics read the same way at scrape time.
        let text = registry.encode_text();
        let families = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let threads = value(&families, "process_threads", &[]).unwrap();
        assert_eq!(threads, proc_status("Threads"), "{comm:?}\n{text}");
        let cpu = value(&families, "process_cpu_seconds_total", &[]).unwrap();
        assert!(cpu.is_finite() && cpu > 0.0, "{comm:?}\n{text}");
    }
    std::fs::write("/proc/self/comm", original.trim_end_matches('\n')).unwrap();
}
