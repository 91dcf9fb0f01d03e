//! Deadlines from caller-given timeouts: `Instant::now() + timeout` panics when the sum does not
//! fit an `Instant` (`Duration::MAX`, a common way to say "wait as long as it takes"). These
//! saturate instead, at a point centuries away, which no wait reaches.

use std::time::{Duration, Instant};

/// About 136 years: far beyond any wait, and small enough that `Instant::now()` plus it fits
/// on every platform `std` supports.
const FAR: Duration = Duration::from_secs(1 << 32);

/// `Instant::now() + timeout`, or a point [`FAR`] away when that does not fit.
#[cfg(any(feature = "pushgateway", feature = "otlp"))]
#[inline]
pub(crate) fn deadline_after(timeout: Duration) -> Instant {
    instant_after(Instant::now(), timeout)
}

/// `at + timeout`, with `timeout` [`capped`] at [`FAR`] (or `at` itself, if even that does not
/// fit). Capped, not only checked: tokio adds a little to a deadline it is given (under a
/// millisecond), so one that only just fits an `Instant` would still overflow there.
#[inline]
pub(crate) fn instant_after(at: Instant, timeout: Duration) -> Instant {
    at.checked_add(capped(timeout)).unwrap_or(at)
}

/// `timeout`, at most [`FAR`]: the longest wait handed on (to tokio's `timeout` and `sleep`,
/// which add it to the present).
#[inline]
pub(crate) fn capped(timeout: Duration) -> Duration {
    timeout.min(FAR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_too_large_for_an_instant_saturates_far_away() {
        let now = Instant::now();
        for t in [Duration::MAX, Duration::from_secs(u64::MAX), FAR * 4] {
            let at = instant_after(now, t);
            assert!(at >= now + FAR, "{t:?}");
        }
        assert_eq!(
            instant_after(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
        // Just short of overflowing: capped too (tokio would overflow adding to it).
        assert_eq!(instant_after(now, FAR * 1000), now + FAR);
        assert_eq!(capped(Duration::MAX), FAR);
        #[cfg(any(feature = "pushgateway", feature = "otlp"))]
        assert!(deadline_after(Duration::MAX) > now);
    }
}
