//! [`PeriodicPusher`]: a thread that pushes a registry every interval, and once more at
//! shutdown within a deadline.
//!
//! # Invariants
//! 1. At most one request is in flight (the thread is the only sender).
//! 2. [`PeriodicPusher::shutdown`] returns by its deadline, whatever the gateway does: it sets
//!    the shared state's `deadline` (under its mutex) and wakes the thread; every socket call of
//!    a request in flight waits at most 50 ms before it looks at that deadline (the request's
//!    *cut*), so an interval push still connecting stops there, one already sending goes on by
//!    that deadline (the gateway takes whatever of it arrives, whenever it arrives, a body cut
//!    short at a line's end included: a final push sent beside it could be stored first, then
//!    overwritten with its older or fewer metrics), and the final push runs within what is
//!    left. The
//!    caller waits for the thread's *done* signal on the condition variable until the deadline,
//!    then returns (joining the thread, which has finished, or leaving it to end on its own if
//!    it has not: it holds no lock and exits at its next cut). After *done* the thread still
//!    drops the registry, which runs the drops of the registry's callbacks (user code, which
//!    may block): the caller joins it only once it has finished, before the deadline.
//! 3. Every push is counted in [`PusherStats`], success or failure, with the last error kept.
//! 4. A panic in the code a push runs that the crate does not control (the registry's
//!    `gauge_fn`/`counter_fn` callbacks, run while it is encoded) is caught: that push fails
//!    with [`PushError::Panicked`], nothing is sent, and the thread goes on (the final push
//!    included). Whatever ends the thread — its final push, or a panic anywhere else — it sets
//!    *done* as it ends (a guard dropped when it returns or unwinds), so shutdown never waits
//!    for a thread that is gone.

use crate::net::deadline::{deadline_after, instant_after};
use crate::unwind::panic_message;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{http, PushError, Pushgateway};
use crate::Registry;

/// Which request the periodic pusher sends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PushMode {
    /// `PUT` ([`Pushgateway::push`]): the group holds exactly the registry's metrics.
    #[default]
    Replace,
    /// `POST` ([`Pushgateway::push_add`]): metrics of other names in the group are kept.
    Add,
}

/// What a [`PeriodicPusher`] has done.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PusherStats {
    /// Pushes the gateway accepted.
    pub pushes: u64,
    /// Pushes that failed (no connection, timeout, a status other than 2xx, a registry
    /// callback that panicked, a registry the client refuses to push, nothing sent:
    /// [`PushError::InvalidGroupingKey`], [`PushError::ReservedName`]).
    pub failures: u64,
    /// The last failure, if any.
    pub last_error: Option<PushError>,
}

struct State {
    stats: PusherStats,
    /// Set by shutdown: the final push must end by then, and so must a push in flight.
    deadline: Option<Instant>,
    /// The final push's outcome, once it is done.
    done: Option<Result<(), PushError>>,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The pusher thread's end, signalled however the thread ends (invariant 4): `run` sets
/// *done* with its final push; if it has not when this is dropped (the thread returns or
/// unwinds without it), *done* is set to an error here, so that shutdown stops waiting.
struct Exit<'a>(&'a Shared);

impl Exit<'_> {
    /// A panic that escaped `run` (outside the calls it catches): counted as a failed push,
    /// and the thread's outcome, unless the final push already had one (a panic after it, as
    /// the registry is dropped, changes nothing that was pushed).
    fn panicked(&self, message: String) {
        let mut state = self.0.lock();
        if state.done.is_none() {
            let error = PushError::Panicked {
                message: format!("running the pusher thread: {message}"),
            };
            state.stats.failures += 1;
            state.stats.last_error = Some(error.clone());
            state.done = Some(Err(error));
        }
    }
}

impl Drop for Exit<'_> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        if state.done.is_none() {
            state.done = Some(Err(PushError::Panicked {
                message: "running the pusher thread: it ended without its final push".into(),
            }));
        }
        drop(state);
        self.0.wake.notify_all();
    }
}

/// Pushes a registry to a Pushgateway every interval from a thread of its own, and a last time
/// at [`shutdown`](Self::shutdown) — or on drop, within [`Pushgateway::with_timeout`]'s timeout.
///
/// ```no_run
/// use agentcore_telemetry::pushgateway::{PushMode, Pushgateway};
/// use agentcore_telemetry::Registry;
/// use std::time::Duration;
///
/// let registry = Registry::new();
/// let jobs = registry.counter("jobs_total", "Jobs done.")?;
/// let pusher = Pushgateway::new("http://127.0.0.1:9091", "worker")?
///     .start_periodic(registry.clone(), Duration::from_secs(10), PushMode::Replace)?;
/// jobs.inc();
/// // ... the job's work ...
/// pusher.shutdown(Duration::from_secs(2))?; // the final push, done or abandoned by then
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct PeriodicPusher {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    drop_timeout: Duration,
}

impl std::fmt::Debug for PeriodicPusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeriodicPusher")
            .field("stats", &self.stats())
            .finish()
    }
}

/// The shortest interval [`Pushgateway::start_periodic`] pushes at: a shorter one (zero
/// included, which would push back to back) is raised to it.
///
/// ```
/// assert_eq!(agentcore_telemetry::pushgateway::MIN_INTERVAL.as_millis(), 10);
/// ```
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);

impl Pushgateway {
    /// Starts a thread that pushes `registry` every `interval` (the first push one interval
    /// from now; an interval under [`MIN_INTERVAL`] is raised to it), with `mode`'s request.
    /// Stop it with [`PeriodicPusher::shutdown`], which pushes once more. Errors, starting
    /// nothing, when the operating system cannot start the thread.
    ///
    /// ```no_run
    /// use agentcore_telemetry::pushgateway::{PushMode, Pushgateway};
    /// use agentcore_telemetry::Registry;
    /// use std::time::Duration;
    ///
    /// let registry = Registry::new();
    /// let pusher = Pushgateway::new("http://127.0.0.1:9091", "worker")?
    ///     .start_periodic(registry, Duration::from_secs(15), PushMode::Add)?;
    /// pusher.shutdown(Duration::from_secs(2))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start_periodic(
        self,
        registry: Registry,
        interval: Duration,
        mode: PushMode,
    ) -> std::io::Result<PeriodicPusher> {
        let interval = interval.max(MIN_INTERVAL);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                stats: PusherStats::default(),
                deadline: None,
                done: None,
            }),
            wake: Condvar::new(),
        });
        let drop_timeout = self.timeout;
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("agentcore-pushgateway".into())
            .spawn(move || {
                let exit = Exit(&thread_shared);
                // The registry's callbacks are caught where they run (`run`); this is the last
                // resort for a panic anywhere else (the registry's drop, a bug of ours).
                let ran = catch_unwind(AssertUnwindSafe(|| {
                    run(self, registry, interval, mode, &thread_shared);
                }));
                if let Err(panic) = ran {
                    exit.panicked(panic_message(panic));
                }
            })?;
        Ok(PeriodicPusher {
            shared,
            thread: Some(thread),
            drop_timeout,
        })
    }
}

fn run(
    gateway: Pushgateway,
    registry: Registry,
    interval: Duration,
    mode: PushMode,
    shared: &Shared,
) {
    let method = match mode {
        PushMode::Replace => "PUT",
        PushMode::Add => "POST",
    };
    let mut body = String::new();
    let mut scratch = http::Scratch::default();
    let mut next = deadline_after(interval);
    let shutdown_deadline = || shared.lock().deadline;
    loop {
        // Wait for the next push or for shutdown.
        let final_deadline = {
            let mut state = shared.lock();
            loop {
                if let Some(d) = state.deadline {
                    break Some(d);
                }
                let now = Instant::now();
                if now >= next {
                    break None;
                }
                state = shared
                    .wake
                    .wait_timeout(state, next - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        };
        body.clear();
        // A panicking callback fails this push (nothing is sent: the body would be cut
        // short) and leaves the thread running (invariant 4).
        let encoded = catch_unwind(AssertUnwindSafe(|| registry.encode_text_into(&mut body)));
        let (deadline, shutdown): (Instant, &dyn Fn() -> Option<Instant>) = match final_deadline {
            // The final push: by the shutdown deadline.
            Some(d) => (d, &|| None),
            // An interval push: by its own timeout; once a shutdown asks for the final push,
            // abandoned if still connecting, else sent and answered by the shutdown's deadline
            // (see invariant 2), and the final push has what is left.
            None => (deadline_after(gateway.timeout), &shutdown_deadline),
        };
        let result = match encoded {
            Ok(()) => gateway.send(method, body.as_bytes(), deadline, shutdown, &mut scratch),
            Err(panic) => Err(PushError::Panicked {
                message: format!("encoding the registry: {}", panic_message(panic)),
            }),
        };
        let mut state = shared.lock();
        match &result {
            Ok(()) => state.stats.pushes += 1,
            Err(e) => {
                state.stats.failures += 1;
                state.stats.last_error = Some(e.clone());
            }
        }
        if final_deadline.is_some() {
            state.done = Some(result);
            shared.wake.notify_all();
            return;
        }
        next += interval;
        let now = Instant::now();
        if next < now {
            // A push took longer than the interval: no catch-up burst.
            next = instant_after(now, interval);
        }
    }
}

impl PeriodicPusher {
    /// What the pusher has done so far.
    pub fn stats(&self) -> PusherStats {
        self.shared.lock().stats.clone()
    }

    /// Pushes a last time and stops the thread, returning by `timeout` from now whatever the
    /// gateway (or the registry's callbacks) do. `Ok` if the final push succeeded; its error
    /// ([`PushError::Panicked`] if encoding the registry panicked, or the thread had ended
    /// already), or [`PushError::Timeout`] when it did not finish in time. An interval push in
    /// flight is abandoned if it is still connecting; one already sending is finished first (by
    /// the same deadline), so that the gateway cannot store it after the final push.
    pub fn shutdown(mut self, timeout: Duration) -> Result<(), PushError> {
        self.stop(timeout)
    }

    fn stop(&mut self, timeout: Duration) -> Result<(), PushError> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        let deadline = deadline_after(timeout);
        let mut state = self.shared.lock();
        state.deadline = Some(deadline);
        self.shared.wake.notify_all();
        while state.done.is_none() {
            let now = Instant::now();
            if now >= deadline {
                // The thread ends at its next cut (within 50 ms): leave it to finish.
                return Err(PushError::Timeout);
            }
            state = self
                .shared
                .wake
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let result = state.done.clone().unwrap_or(Ok(()));
        drop(state);
        // Done, but the thread may still be dropping the registry (user closures, whose drop
        // may block): joined once it has finished, left to end on its own at the deadline.
        while !thread.is_finished() {
            if Instant::now() >= deadline {
                return result;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let _ = thread.join();
        result
    }
}

impl Drop for PeriodicPusher {
    /// Pushes a last time and stops, within the gateway's timeout ([`Pushgateway::with_timeout`]).
    fn drop(&mut self) {
        let _ = self.stop(self.drop_timeout);
    }
}
