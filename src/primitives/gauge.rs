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
    /// Whether `self` and `other` are handles to the same gauge (clones of one another), not
    /// merely equal in value: what the `metrics` bridge checks to tell the series it cached from
    /// a new one created under the same label values after a removal.
    #[cfg(feature = "metrics-bridge")]
    pub(crate) fn ptr_eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.value, &other.value)
    }

    /// A new gauge at zero.
    ///
    /// ```
    /// use agentcore_telemetry::Gauge;
    ///
    /// let g = Gauge::new();
    /// assert_eq!(g.get(), 0.0);
    /// g.clone().set(2.0); // clones share the value
    /// assert_eq!(g.get(), 2.0);
    /// ```
    pub fn new() -> Gauge {
        Gauge::default()
    }

    /// Sets the value.
    ///
    /// ```
    /// use agentcore_telemetry::Gauge;
    ///
    /// let queue_depth = Gauge::new();
    /// queue_depth.set(12.0);
    /// queue_depth.set(7.0); // last writer wins
    /// assert_eq!(queue_depth.get(), 7.0);
    /// ```
    #[inline]
    pub fn set(&self, v: f64) {
        self.value.store(v, Relaxed);
    }

    /// Adds `v` (which may be negative).
    ///
    /// ```
    /// use agentcore_telemetry::Gauge;
    ///
    /// let g = Gauge::new();
    /// g.add(3.5);
    /// g.add(-1.0);
    /// assert_eq!(g.get(), 2.5);
    /// ```
    #[inline]
    pub fn add(&self, v: f64) {
        let _ = self
            .value
            .fetch_update(Relaxed, Relaxed, |cur| Some(cur + v));
    }

    /// Subtracts `v`.
    ///
    /// ```
    /// use agentcore_telemetry::Gauge;
    ///
    /// let g = Gauge::new();
    /// g.set(10.0);
    /// g.sub(2.5);
    /// assert_eq!(g.get(), 7.5);
    /// ```
    #[inline]
    pub fn sub(&self, v: f64) {
        self.add(-v);
    }

    /// Adds one.
    ///
    /// ```
    /// use agentcore_telemetry::Gauge;
    ///
    /// let in_flight = Gauge::new();
    /// in_flight.inc();
    /// in_flight.inc();
    /// assert_eq!(in_flight.get(), 2.0);
    /// ```
    #[inline]
    pub fn inc(&self) {
        self.add(1.0);
    }

    /// Subtracts one.
    ///
    /// ```
    /// use agentcore_telemetry::Gauge;
    ///
    /// let g = Gauge::new();
    /// g.dec();
    /// assert_eq!(g.get(), -1.0); // a gauge may go negative
    /// ```
    #[inline]
    pub fn dec(&self) {
        self.add(-1.0);
    }

    /// Subtracts `v` but never goes below `floor`; returns whether the full amount was subtracted.
    /// A NaN `v` subtracts nothing (and returns `false`).
    ///
    /// The collector uses it for `agents_active`, which a stray extra "completed" must not drive
    /// negative.
    ///
    /// ```
    /// use agentcore_telemetry::Gauge;
    ///
    /// let active = Gauge::new();
    /// active.set(2.0);
    /// assert!(active.sub_floored(1.0, 0.0));
    /// assert!(!active.sub_floored(f64::NAN, 0.0)); // no amount: nothing subtracted
    /// assert_eq!(active.get(), 1.0);
    /// assert!(!active.sub_floored(5.0, 0.0)); // would go below 0: clamped
    /// assert_eq!(active.get(), 0.0);
    /// ```
    #[inline]
    pub fn sub_floored(&self, v: f64, floor: f64) -> bool {
        if v.is_nan() {
            // Not an amount below the floor: clamping would replace the value with `floor`.
            return false;
        }
        let mut full = true;
        let _ = self.value.fetch_update(Relaxed, Relaxed, |cur| {
            let next = cur - v;
            full = next >= floor;
            Some(if full { next } else { cur.min(floor) })
        });
        full
    }

    /// The current value.
    ///
    /// ```
    /// use agentcore_telemetry::Gauge;
    ///
    /// let g = Gauge::new();
    /// g.set(42.0);
    /// g.inc();
    /// assert_eq!(g.get(), 43.0);
    /// ```
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

#[cfg(test)]
mod tests {
    use super::Gauge;

    /// A NaN amount is no amount "below the floor": the gauge used to be clamped to the floor
    /// (`5 - NaN` failed `>= floor`, so the value became `min(5, floor)`), losing its value in
    /// silence where `sub(NaN)` at least shows NaN (found by review helper-161).
    #[test]
    fn sub_floored_by_nan_leaves_the_value() {
        let g = Gauge::new();
        g.set(5.0);
        assert!(!g.sub_floored(f64::NAN, 0.0), "NaN is not the full amount");
        assert_eq!(g.get(), 5.0, "a NaN amount subtracted nothing");
        assert!(g.sub_floored(2.0, 0.0));
        assert!(!g.sub_floored(10.0, 0.0));
        assert_eq!(
            g.get(),
            0.0,
            "a real amount past the floor is still clamped"
        );
    }
}
