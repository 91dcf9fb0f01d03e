//! [`Gauge`]: a value that goes up and down.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use atomic::Atomic;

/// A value that can go up and down, stored as one `f64`.
///
/// `set` is a single relaxed store; `add`/`sub`/`inc`/`dec` are a compare-and-swap loop (a gauge
/// is last-writer-wins, so it cannot be sharded per thread the way a counter is). Cloning is
/// cheap and clones share the value.
///
/// ```
/// use agentcore_telemetry::Gauge;
///
/// let g = Gauge::new();
/// g.set(10.0);
/// g.inc();
/// g.sub(4.5);
/// assert_eq!(g.get(), 6.5);
/// ```
#[derive(Clone, Default)]
pub struct Gauge {
    value: Arc<Atomic<f64>>,
}

impl Gauge {
    /// A new gauge at zero.
    pub fn new() -> Gauge {
        Gauge::default()
    }

    /// Sets the value.
    #[inline]
    pub fn set(&self, v: f64) {
        self.value.store(v, Relaxed);
    }

    /// Adds `v` (which may be negative).
    #[inline]
    pub fn add(&self, v: f64) {
        let _ = self
            .value
            .fetch_update(Relaxed, Relaxed, |cur| Some(cur + v));
    }

    /// Subtracts `v`.
    #[inline]
    pub fn sub(&self, v: f64) {
        self.add(-v);
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.add(1.0);
    }

    /// Subtracts one.
    #[inline]
    pub fn dec(&self) {
        self.add(-1.0);
    }

    /// Subtracts `v` but never goes below `floor`; returns whether the full amount was subtracted.
    ///
    /// The collector uses it for `agents_active`, which a stray extra "completed" must not drive
    /// negative.
    #[inline]
    pub fn sub_floored(&self, v: f64, floor: f64) -> bool {
        let mut full = true;
        let _ = self.value.fetch_update(Relaxed, Relaxed, |cur| {
            let next = cur - v;
            full = next >= floor;
            Some(if full { next } else { cur.min(floor) })
        });
        full
    }

    /// The current value.
    #[inline]
    pub fn get(&self) -> f64 {
        self.value.load(Relaxed)
    }
}

impl std::fmt::Debug for Gauge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gauge").field("value", &self.get()).finish()
    }
}
