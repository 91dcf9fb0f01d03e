//! Head sampling: parent-based, trace-id-ratio sampler.

use super::id::TraceId;

/// A parent-based ratio sampler (OpenTelemetry's `ParentBased(TraceIdRatioBased)`).
///
/// * A span with a parent (local span, attached context or remote context) follows the
///   parent's sampled flag, so a trace is recorded whole or not at all.
/// * A root span is sampled when the low 64 bits of its trace id are below
///   `ratio * 2^64`: deterministic per trace id, so every service with the same ratio takes
///   the same decision. Ratio `>= 1` samples everything, `<= 0` (or NaN) nothing.
///
/// ```
/// use agentcore_telemetry::{Sampler, TraceId};
///
/// let half = Sampler::ratio(0.5);
/// let id = TraceId::random();
/// assert_eq!(half.should_sample(None, id), half.should_sample(None, id));
/// assert!(Sampler::ratio(0.0).should_sample(Some(true), id));
/// assert!(!Sampler::ratio(1.0).should_sample(Some(false), id));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sampler {
    always: bool,
    threshold: u64,
}

impl Sampler {
    /// A sampler keeping about `ratio` of the root spans (clamped to `0.0..=1.0`).
    ///
    /// ```
    /// use agentcore_telemetry::{Sampler, TraceId};
    /// assert!(Sampler::ratio(1.0).should_sample(None, TraceId::random()));
    /// assert!(!Sampler::ratio(0.0).should_sample(None, TraceId::random()));
    /// ```
    pub fn ratio(ratio: f64) -> Self {
        if ratio >= 1.0 {
            Sampler {
                always: true,
                threshold: u64::MAX,
            }
        } else if ratio > 0.0 {
            // 2^64 * ratio, in range since ratio < 1 (the float->int cast saturates).
            Sampler {
                always: false,
                threshold: (ratio * 18_446_744_073_709_551_616.0) as u64,
            }
        } else {
            Sampler {
                always: false,
                threshold: 0,
            }
        }
    }

    /// The decision for a span whose parent had `parent_sampled` (`None` for a root span)
    /// in trace `trace_id`.
    ///
    /// ```
    /// use agentcore_telemetry::{Sampler, TraceId};
    /// assert!(Sampler::ratio(0.5).should_sample(Some(true), TraceId::random()));
    /// ```
    #[inline]
    pub fn should_sample(&self, parent_sampled: Option<bool>, trace_id: TraceId) -> bool {
        match parent_sampled {
            Some(sampled) => sampled,
            None => self.always || trace_id.low_u64() < self.threshold,
        }
    }
}
