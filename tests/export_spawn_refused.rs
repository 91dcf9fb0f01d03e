//! An exporter handed to `start_export_with` when no thread can be started is dropped where the
//! start fails. Its `Drop` is the caller's code, and may call the tracer (a flush, its stats):
//! dropped while the start still held the tracer's export slot, such a call waited for that
//! lock on the same thread, for good.
//!
//! Its own test binary: it lowers the process's address-space limit (`RLIMIT_AS`) so that the
//! exporter thread's stack cannot be mapped, then restores it. One test only: a thread that
//! exited before it would leave glibc a cached stack, which a spawn reuses without mapping.
#![cfg(feature = "otlp")]

use std::io::Write as _;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use agentcore_telemetry::export::{
    BatchConfig, Deadline, ExportOutcome, ExportSpan, SpanExporter, StartError,
};
use agentcore_telemetry::{DistributedTracer, TracerConfig};

/// An exporter whose `Drop` asks the tracer for its export stats, and says it returned.
struct AsksOnDrop {
    tracer: Arc<DistributedTracer>,
    returned: mpsc::Sender<()>,
}

impl SpanExporter for AsksOnDrop {
    fn add(&mut self, _span: ExportSpan<'_>) {}
    fn export(&mut self, _deadline: &Deadline) -> ExportOutcome {
        ExportOutcome::exported(0)
    }
}

impl Drop for AsksOnDrop {
    fn drop(&mut self) {
        let _ = self.tracer.export_stats();
        let _ = self.returned.send(());
    }
}

/// `RLIMIT_AS`'s soft limit, set to `limit`; returns the one it replaced.
fn set_address_space_limit(limit: libc::rlim_t) -> libc::rlim_t {
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `old` is a valid `rlimit` to write to.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut old) }, 0);
    let new = libc::rlimit {
        rlim_cur: limit.min(old.rlim_max),
        rlim_max: old.rlim_max,
    };
    // SAFETY: `new` is a valid `rlimit`; changing the soft limit within the hard one needs no
    // privilege.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &new) }, 0);
    old.rlim_cur
}

/// The process's mapped address space now, in bytes (`VmSize` of `/proc/self/status`).
fn mapped_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .map(|v| v.trim().parse().unwrap())
        .unwrap();
    kib * 1024
}

#[test]
fn an_exporter_dropped_by_a_failed_start_may_call_the_tracer() {
    let tracer = Arc::new(DistributedTracer::new(TracerConfig {
        from_env: false,
        ..TracerConfig::default()
    }));
    let (returned, drop_returned) = mpsc::channel();
    let exporter = AsksOnDrop {
        tracer: Arc::clone(&tracer),
        returned,
    };
    // Waits for the drop on another thread (running before the limit), so that a drop that
    // never returns fails the test instead of hanging it. The limit waits until the watchdog
    // runs: a new thread maps its signal stack when it starts, not when `spawn` returns, and
    // under load it started after the limit, failed that mapping and aborted the process
    // ("failed to allocate an alternative stack", a CI run of 2026-12-06).
    let (started, start_returned) = mpsc::channel();
    let (running, watchdog_running) = mpsc::channel();
    let watchdog = std::thread::spawn(move || {
        running.send(()).unwrap();
        let outcome = start_returned.recv_timeout(Duration::from_secs(60));
        if outcome.is_err() {
            // Past the test harness's capture, which `exit` would discard.
            let _ = writeln!(
                std::io::stderr(),
                "the exporter's drop, inside a failed start_export_with, did not return in 60 s: \
                 it waits for the export slot's lock its own thread holds"
            );
            std::process::exit(1);
        }
    });
    watchdog_running.recv().unwrap();
    // Room for a few small allocations, not for a thread's 2 MiB stack.
    let old = set_address_space_limit(mapped_bytes() + (256 << 10));
    let start = tracer.start_export_with(exporter, BatchConfig::default());
    set_address_space_limit(old);
    started.send(()).unwrap();
    watchdog.join().unwrap();
    assert!(
        matches!(start, Err(StartError::Spawn(_))),
        "the thread could not start: {start:?}"
    );
    drop_returned
        .try_recv()
        .expect("the exporter was dropped, and its drop returned");
    // And the tracer is usable: nothing runs, a later start works.
    assert!(tracer.export_stats().is_none());
    let (returned, _keep) = mpsc::channel();
    let again = AsksOnDrop {
        tracer: Arc::clone(&tracer),
        returned,
    };
    tracer
        .start_export_with(again, BatchConfig::default())
        .expect("a start with room for its thread");
    tracer.shutdown(Duration::from_secs(5)).unwrap();
}
