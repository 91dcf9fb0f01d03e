//! The measuring machinery: a counting global allocator, process CPU time, calibration, the
//! interleaved rounds, and the statistics.
//!
//! # How a sample is taken
//! An [`Arm`] is one library's implementation of one workload: a closure that performs `iters`
//! operations. A sample reads, in this order, the allocation counter, the process CPU clock and
//! the monotonic clock, runs the closure, and reads them again. So:
//!
//! * **wall ns/op** is elapsed time / `iters` (or, for multi-threaded workloads, the per-thread
//!   time the closure reports itself);
//! * **CPU ns/op** is the growth of `CLOCK_PROCESS_CPUTIME_ID` / (`iters` × threads): it counts
//!   every thread of the process, so a library that pushes work to a background thread (a span
//!   collector, a batch processor) is charged for the work done during the sample; arms whose
//!   library defers work flush it inside the measured region for the same reason;
//! * **allocs/op** is the growth of the allocation counter / (`iters` × threads); the counter is
//!   bumped by every `alloc`, `alloc_zeroed` and `realloc` on any thread;
//! * **thread CPU ns/op** and **thread allocs/op** are the same two figures for the calling
//!   thread alone (`CLOCK_THREAD_CPUTIME_ID`, and a thread-local allocation counter): what the
//!   thread that runs the closure (the recording thread) pays, without the background threads
//!   (the span export rows' recording-thread cost);
//! * an arm may exclude CPU time of its own helper threads that stand for another process
//!   ([`report_excluded_cpu`]: the loopback OTLP sink, which is the collector's work, not the
//!   exporter's); the CPU figure is then process CPU minus that.
//!
//! # Fairness
//! Each arm is warmed up and calibrated alone (doubling `iters` until a sample lasts the target
//! time). Then the rounds run: in round `r` every arm of the workload takes one sample, in an
//! order rotated by `r`, so drift of the machine (other processes, frequency) hits all libraries
//! alike. The reported figure is the median over rounds.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

/// Counts every allocation of every thread.
pub struct CountingAlloc;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's allocations (a `const`-initialised `Cell` of a type without `Drop`: no
    /// lazy registration, no allocation, so the allocator may touch it).
    static THREAD_ALLOCS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

#[inline(always)]
fn count_alloc() {
    ALLOCS.fetch_add(1, Relaxed);
    // `try_with`: a thread being torn down may still allocate after its locals are gone.
    let _ = THREAD_ALLOCS.try_with(|c| c.set(c.get() + 1));
}

/// Allocations so far by the calling thread.
pub fn thread_allocs() -> u64 {
    THREAD_ALLOCS.try_with(|c| c.get()).unwrap_or(0)
}

// SAFETY: forwards every call to `System` unchanged; only counts.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_alloc();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_alloc();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_alloc();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Set by a multi-threaded arm for the sample it just ran: a lower bound of the fraction of the
/// timed interval during which all its threads were running at once (`NaN`: not reported).
static CO_RUNNING: AtomicU64 = AtomicU64::new(0);

/// Reports the co-running fraction of the sample being taken (see [`CO_RUNNING`]).
pub fn report_co_running(fraction: f64) {
    CO_RUNNING.store(fraction.to_bits(), Relaxed);
}

/// CPU time (ns) of the sample being taken that is not the measured library's: reported by the
/// arm, subtracted from the process CPU time.
static EXCLUDED_CPU: AtomicU64 = AtomicU64::new(0);

/// Excludes `ns` of CPU time, spent during the sample being taken by a helper thread that
/// stands for another process (the loopback OTLP sink), from the sample's CPU figure.
pub fn report_excluded_cpu(ns: u64) {
    EXCLUDED_CPU.fetch_add(ns, Relaxed);
}

/// CPU time consumed so far by the calling thread, in nanoseconds.
pub fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Allocations so far, all threads.
pub fn allocs() -> u64 {
    ALLOCS.load(Relaxed)
}

/// CPU time consumed so far by every thread of the process, in nanoseconds.
pub fn process_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID) failed");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The closure of an arm: performs `iters` operations; returns `Some(wall ns per op per thread)`
/// when it timed itself (multi-threaded workloads), `None` to be timed by the harness.
pub type RunFn = Box<dyn FnMut(u64) -> Option<f64>>;

/// One library's implementation of a workload.
pub struct Arm {
    /// The library (a column of the tables).
    pub lib: &'static str,
    /// Runs the operations.
    pub run: RunFn,
    /// A note printed under the table (what this arm does differently, if anything).
    pub note: Option<&'static str>,
    /// The arm flushes a background consumer once per sample (a fixed cost per sample that
    /// must be amortised): its samples get at least [`Plan::flush_min_iters`] operations.
    pub flushes: bool,
    /// Runs before every sample, outside the measured region (bringing a background thread
    /// into its steady state, so that the sample starts there).
    pub prepare: Option<Box<dyn FnMut()>>,
}

impl Arm {
    pub fn new(lib: &'static str, run: impl FnMut(u64) -> Option<f64> + 'static) -> Arm {
        Arm {
            lib,
            run: Box::new(run),
            note: None,
            flushes: false,
            prepare: None,
        }
    }

    pub fn prepare(mut self, f: impl FnMut() + 'static) -> Arm {
        self.prepare = Some(Box::new(f));
        self
    }

    pub fn flushes(mut self) -> Arm {
        self.flushes = true;
        self
    }

    pub fn note(mut self, note: &'static str) -> Arm {
        self.note = Some(note);
        self
    }
}

/// A workload: the same operation, implemented by several libraries.
pub struct Workload {
    /// A short id (JSON key, `--filter`).
    pub id: &'static str,
    /// What one operation is.
    pub title: &'static str,
    /// Threads performing operations concurrently (CPU and allocations are divided by it).
    pub threads: u64,
    /// The arms; `agentcore` first when present.
    pub arms: Vec<Arm>,
    /// A workload of ours not measured yet, and why (printed instead of numbers).
    pub todo: Option<&'static str>,
}

/// The result of one arm.
#[derive(Debug, Clone)]
pub struct ArmResult {
    pub lib: &'static str,
    pub wall_ns: f64,
    pub wall_min_ns: f64,
    pub cpu_ns: f64,
    pub allocs: f64,
    /// The calling (recording) thread's own CPU time per operation.
    pub thread_cpu_ns: f64,
    /// The calling (recording) thread's own allocations per operation.
    pub thread_allocs: f64,
    /// `thread_cpu_ns` of every round, in round order, for ratios paired by round
    /// ([`paired_ratio`]).
    pub thread_cpu_rounds: Vec<f64>,
    /// `cpu_ns` of every round, in round order (as `thread_cpu_rounds`).
    pub cpu_rounds: Vec<f64>,
    /// CPU time per operation excluded from `cpu_ns` ([`report_excluded_cpu`]).
    pub excluded_cpu_ns: f64,
    /// Multi-threaded arms: the median lower bound of the fraction of the timed interval during
    /// which all threads ran at once (`NaN` otherwise).
    pub co_running: f64,
    pub iters: u64,
    pub note: Option<&'static str>,
}

/// The results of one workload.
#[derive(Debug, Clone)]
pub struct WorkloadResult {
    pub id: &'static str,
    pub title: &'static str,
    pub threads: u64,
    pub arms: Vec<ArmResult>,
    pub todo: Option<&'static str>,
    /// The cross-core round trip measured before each round (empty unless asked for).
    pub round_trips: Vec<Option<f64>>,
}

impl WorkloadResult {
    pub fn arm(&self, lib: &str) -> Option<&ArmResult> {
        self.arms.iter().find(|a| a.lib == lib)
    }
}

/// How long and how often to measure.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub rounds: usize,
    pub sample_ns: u64,
    /// Minimum operations per sample of an arm that flushes once per sample.
    pub flush_min_iters: u64,
}

struct Sample {
    wall: f64,
    cpu: f64,
    allocs: f64,
    thread_cpu: f64,
    thread_allocs: f64,
    excluded_cpu: f64,
    co_running: f64,
}

fn sample(arm: &mut Arm, iters: u64, threads: u64) -> Sample {
    if let Some(p) = arm.prepare.as_mut() {
        p();
    }
    CO_RUNNING.store(f64::NAN.to_bits(), Relaxed);
    EXCLUDED_CPU.store(0, Relaxed);
    let a0 = allocs();
    let ta0 = thread_allocs();
    let c0 = process_cpu_ns();
    let tc0 = thread_cpu_ns();
    let t0 = Instant::now();
    let own = (arm.run)(iters);
    let elapsed = t0.elapsed().as_nanos() as f64;
    let tc1 = thread_cpu_ns();
    let c1 = process_cpu_ns();
    let ta1 = thread_allocs();
    let a1 = allocs();
    let ops = (iters * threads) as f64;
    let excluded = EXCLUDED_CPU.load(Relaxed);
    Sample {
        wall: own.unwrap_or(elapsed / iters as f64),
        cpu: (c1 - c0).saturating_sub(excluded) as f64 / ops,
        allocs: (a1 - a0) as f64 / ops,
        thread_cpu: (tc1 - tc0) as f64 / iters as f64,
        thread_allocs: (ta1 - ta0) as f64 / iters as f64,
        excluded_cpu: excluded as f64 / ops,
        co_running: f64::from_bits(CO_RUNNING.load(Relaxed)),
    }
}

/// Warms the arm up and finds the `iters` that makes a sample last about `plan.sample_ns`.
///
/// Calibrates twice and keeps the second: the first pass is the warm-up, which absorbs
/// first-use costs (page faults on a fresh ring buffer, lazy initialisation) that would
/// otherwise make the first timing, and so `iters`, unrepresentative of the steady state.
fn calibrate(arm: &mut Arm, plan: Plan) -> u64 {
    let _ = calibrate_once(arm, plan);
    calibrate_once(arm, plan)
}

fn calibrate_once(arm: &mut Arm, plan: Plan) -> u64 {
    let mut iters = 1u64;
    loop {
        if let Some(p) = arm.prepare.as_mut() {
            p();
        }
        let t0 = Instant::now();
        let own = (arm.run)(iters);
        // A self-timed arm (threads) reports its own time without its fixed set-up cost
        // (spawning threads), which must not shrink the calibrated `iters`.
        let ns = match own {
            Some(per_op) => (per_op * iters as f64) as u64,
            None => t0.elapsed().as_nanos() as u64,
        };
        let enough = !arm.flushes || iters >= plan.flush_min_iters;
        if (ns >= plan.sample_ns / 4 && enough) || iters >= 1 << 40 {
            let scaled = (iters as u128 * plan.sample_ns as u128 / ns.max(1) as u128) as u64;
            let min = if arm.flushes { plan.flush_min_iters } else { 1 };
            return scaled.max(min);
        }
        iters *= 2;
    }
}

pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The median over rounds of `b[r] / a[r]`: two arms' ratio paired by round (each round samples
/// every arm back to back), so that drift of the machine between rounds cancels in each pair
/// instead of landing in one arm's median and not the other's.
pub fn paired_ratio(a: &[f64], b: &[f64]) -> f64 {
    let mut r: Vec<f64> = a.iter().zip(b).map(|(a, b)| b / a).collect();
    median(&mut r)
}

/// Measures every arm of `w`: calibration, then `plan.rounds` interleaved rounds.
/// With `latency_each_round`, the cross-core round trip is measured before each round
/// (`cross_core`; a few milliseconds each).
pub fn run_workload(mut w: Workload, plan: Plan, latency_each_round: bool) -> WorkloadResult {
    let n = w.arms.len();
    let iters: Vec<u64> = w.arms.iter_mut().map(|a| calibrate(a, plan)).collect();
    let mut samples: Vec<Vec<Sample>> = (0..n).map(|_| Vec::new()).collect();
    let mut round_trips = Vec::new();
    for r in 0..plan.rounds {
        if latency_each_round {
            round_trips.push(crate::cross_core::round_trip_ns());
        }
        for k in 0..n {
            let i = (k + r) % n;
            let s = sample(&mut w.arms[i], iters[i], w.threads);
            samples[i].push(s);
        }
    }
    let arms = w
        .arms
        .iter()
        .zip(samples)
        .zip(&iters)
        .map(|((arm, s), &it)| {
            let mut wall: Vec<f64> = s.iter().map(|x| x.wall).collect();
            let cpu_rounds: Vec<f64> = s.iter().map(|x| x.cpu).collect();
            let mut cpu = cpu_rounds.clone();
            let mut al: Vec<f64> = s.iter().map(|x| x.allocs).collect();
            let thread_cpu_rounds: Vec<f64> = s.iter().map(|x| x.thread_cpu).collect();
            let mut tc = thread_cpu_rounds.clone();
            let mut ta: Vec<f64> = s.iter().map(|x| x.thread_allocs).collect();
            let mut ex: Vec<f64> = s.iter().map(|x| x.excluded_cpu).collect();
            let mut co: Vec<f64> = s
                .iter()
                .map(|x| x.co_running)
                .filter(|c| !c.is_nan())
                .collect();
            let wall_min = wall.iter().copied().fold(f64::INFINITY, f64::min);
            ArmResult {
                lib: arm.lib,
                wall_ns: median(&mut wall),
                wall_min_ns: wall_min,
                cpu_ns: median(&mut cpu),
                allocs: median(&mut al),
                thread_cpu_ns: median(&mut tc),
                thread_allocs: median(&mut ta),
                thread_cpu_rounds,
                cpu_rounds,
                excluded_cpu_ns: median(&mut ex),
                co_running: median(&mut co),
                iters: it,
                note: arm.note,
            }
        })
        .collect();
    WorkloadResult {
        id: w.id,
        title: w.title,
        threads: w.threads,
        arms,
        todo: w.todo,
        round_trips,
    }
}

/// `1.23 ns`, `45.6 ns`, `789 ns`, `1.23 µs`, `4.56 ms`.
pub fn fmt_ns(ns: f64) -> String {
    if !ns.is_finite() {
        return "n/a".into();
    }
    let (v, unit) = if ns >= 1e6 {
        (ns / 1e6, "ms")
    } else if ns >= 1e3 {
        (ns / 1e3, "µs")
    } else {
        (ns, "ns")
    };
    if v >= 100.0 {
        format!("{v:.0} {unit}")
    } else if v >= 10.0 {
        format!("{v:.1} {unit}")
    } else {
        format!("{v:.2} {unit}")
    }
}

/// `0`, `0.02`, `1`, `69036`.
pub fn fmt_allocs(a: f64) -> String {
    if a == 0.0 {
        "0".into()
    } else if a >= 100.0 || a.fract() == 0.0 {
        format!("{a:.0}")
    } else {
        format!("{a:.2}")
    }
}

/// `2.31×`.
pub fn fmt_ratio(r: f64) -> String {
    if r.is_finite() {
        format!("{r:.2}×")
    } else {
        "n/a".into()
    }
}
