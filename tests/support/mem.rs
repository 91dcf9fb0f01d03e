//! Resident memory of the test process, from `/proc/self/statm` (Linux).

/// The page size, from the auxiliary vector (`AT_PAGESZ`); 4096 if it cannot be read.
pub fn page_size() -> u64 {
    const AT_PAGESZ: u64 = 6;
    let Ok(auxv) = std::fs::read("/proc/self/auxv") else {
        return 4096;
    };
    auxv.chunks_exact(16)
        .map(|pair| {
            let key = u64::from_ne_bytes(pair[..8].try_into().expect("8 bytes"));
            let value = u64::from_ne_bytes(pair[8..].try_into().expect("8 bytes"));
            (key, value)
        })
        .find(|&(key, _)| key == AT_PAGESZ)
        .map_or(4096, |(_, value)| value)
}

/// Resident set size in bytes: the second field of `/proc/self/statm` (pages) times the page
/// size. `None` where `/proc` is not available.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

/// Bytes as MiB, for messages.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// What `/proc/<pid>` says about another process now (Linux).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessUsage {
    /// Resident set size (`VmRSS`), in bytes.
    pub resident_bytes: u64,
    /// Peak resident set size so far (`VmHWM`), in bytes.
    pub peak_resident_bytes: u64,
    /// Threads (`Threads`).
    pub threads: u64,
    /// Open file descriptors (entries of `/proc/<pid>/fd`).
    pub fds: u64,
}

/// The usage of process `pid`, or `None` where `/proc` cannot tell (not Linux, process gone).
pub fn process_usage(pid: u32) -> Option<ProcessUsage> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some(ProcessUsage {
        resident_bytes: field("VmRSS:")? * 1024,
        peak_resident_bytes: field("VmHWM:")? * 1024,
        threads: field("Threads:")?,
        fds,
    })
}

/// The first number of a `/proc/self/status` field (`VmRSS:  1234 kB` → 1234, `Threads:  3` →
/// 3); panics if the field is missing.
pub fn proc_status(field: &str) -> f64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}
