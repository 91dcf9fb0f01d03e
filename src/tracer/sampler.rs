//! Head sampling: OpenTelemetry's built-in samplers, and `OTEL_TRACES_SAMPLER`.
//!
//! A sampler decides, when a span starts, whether it is recorded (span log, export, span
//! metrics by status) or only propagated. The decision is a comparison and a branch: the
//! unsampled path must stay cheap (issue 16), so the sampler is a small `Copy` value, not a
//! trait object.

use std::fmt;

use super::id::TraceId;

/// `2^56`: the rejection threshold that samples nothing (no 56-bit randomness value reaches
/// it), and the scale of sampling probabilities in OpenTelemetry's threshold arithmetic.
const MAX_THRESHOLD: u64 = 1 << 56;

/// A head sampler: OpenTelemetry's `AlwaysOn`, `AlwaysOff`, `TraceIdRatioBased`, and
/// `ParentBased` over any of them.
///
/// * A **parent-based** sampler follows the parent's sampled flag (local span, attached
///   context or remote context), so a trace is recorded whole or not at all; only root spans
///   ask the root sampler. [`Sampler::ratio`] (parent-based, trace-id ratio) is the tracer's
///   default with ratio 1.0 (`parentbased_always_on`).
/// * A **trace-id ratio** decision follows the OpenTelemetry specification's
///   `TraceIdRatioBased` algorithm (`trace/sdk.md`, "`TraceIdRatioBased` sampler algorithm";
///   the arithmetic of `trace/tracestate-probability-sampling.md`): the randomness value `R`
///   is the least-significant 56 bits (the 7 rightmost bytes) of the trace id, the rejection
///   threshold is `T = 2^56 - round(ratio * 2^56)`, and a span is sampled when `R >= T`.
///   Deterministic per trace id and the same in every SDK that follows the specification
///   (OpenTelemetry Python's composable `TraceIdRatioBased`, for one), so a trace one service
///   samples at ratio `r` is sampled by every other at `r` or more. Ratio `>= 1` samples
///   everything; `<= 0`, NaN, or below `2^-57` (rounds to no span in `2^56`) nothing. (This
///   crate used to compare the low 64 bits with `ratio * 2^64`, as the older SDKs still do;
///   see the CHANGELOG.) An explicit randomness value (`rv` in the `ot` entry of
///   `tracestate`) is not read, and the threshold is not written to `tracestate` (`th`).
/// * A sampler that is *not* parent-based decides every span alone: `always_on` records
///   children of unsampled remote parents, `traceidratio` re-decides each span by its trace
///   id (the same answer within one trace, unless the parent came from a service with
///   another ratio).
///
/// [`DistributedTracer::new`](crate::DistributedTracer::new) reads `OTEL_TRACES_SAMPLER` and
/// `OTEL_TRACES_SAMPLER_ARG` ([`Sampler::from_env_lookup`]) when the configuration leaves
/// the sampler to the environment.
///
/// ```
/// use agentcore_telemetry::{Sampler, TraceId};
///
/// let half = Sampler::ratio(0.5);
/// let id = TraceId::random();
/// assert_eq!(half.should_sample(None, id), half.should_sample(None, id));
/// assert!(Sampler::ratio(0.0).should_sample(Some(true), id));
/// assert!(!Sampler::ratio(1.0).should_sample(Some(false), id));
/// // Not parent-based: the parent's flag is not asked.
/// assert!(Sampler::always_on().should_sample(Some(false), id));
/// assert!(!Sampler::always_off().should_sample(Some(true), id));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sampler {
    /// A span with a parent follows the parent's flag.
    parent_based: bool,
    /// The rejection threshold `T` (sample when the trace id's randomness `R`, its low 56
    /// bits, is at least `T`), as [`shifted`] stores it: `T << 8`, so that the decision is
    /// `R << 8 >= T << 8` with no mask to load (one instruction fewer on the span path), and
    /// `u64::MAX` for `T = 2^56`, which no `R << 8` (low byte 0) reaches. 0 samples
    /// everything.
    threshold: u64,
    /// The ratio as configured (`f64::to_bits`), for [`description`](Sampler::description):
    /// exactly 1.0 for `always_on`, 0.0 for `always_off`.
    ratio_bits: u64,
}

impl Default for Sampler {
    /// `parentbased_always_on`, the OpenTelemetry default.
    fn default() -> Self {
        Sampler::parent_based(Sampler::always_on())
    }
}

impl Sampler {
    /// Samples every span (`always_on`), whatever its parent says.
    ///
    /// ```
    /// use agentcore_telemetry::{Sampler, TraceId};
    /// assert!(Sampler::always_on().should_sample(Some(false), TraceId::random()));
    /// ```
    pub const fn always_on() -> Self {
        Sampler {
            parent_based: false,
            threshold: 0,
            ratio_bits: 0x3ff0_0000_0000_0000, // 1.0
        }
    }

    /// Samples no span (`always_off`), whatever its parent says.
    ///
    /// ```
    /// use agentcore_telemetry::{Sampler, TraceId};
    /// assert!(!Sampler::always_off().should_sample(Some(true), TraceId::random()));
    /// ```
    pub const fn always_off() -> Self {
        Sampler {
            parent_based: false,
            threshold: shifted(MAX_THRESHOLD),
            ratio_bits: 0, // 0.0
        }
    }

    /// Samples about `ratio` of all spans by trace id (`traceidratio`, OpenTelemetry's
    /// `TraceIdRatioBased`), clamped to `0.0..=1.0`; the parent's flag is not asked.
    ///
    /// The decision is the specification's: sampled when the trace id's low 56 bits `R` are
    /// at least `T = 2^56 - round(ratio * 2^56)` (rounding half to even, as the
    /// specification's Python examples do).
    ///
    /// ```
    /// use agentcore_telemetry::{Sampler, TraceId};
    /// // Low 56 bits all ones: the largest randomness, sampled at any ratio > 0.
    /// let id = TraceId::from_u128(0x00ff_ffff_ffff_ffff).unwrap();
    /// assert!(Sampler::trace_id_ratio(0.001).should_sample(Some(false), id));
    /// // Randomness 1: below the threshold of any ratio < 1.
    /// assert!(!Sampler::trace_id_ratio(0.999).should_sample(None, TraceId::from_u128(1).unwrap()));
    /// ```
    pub fn trace_id_ratio(ratio: f64) -> Self {
        if ratio >= 1.0 {
            return Sampler::always_on();
        }
        if ratio.is_nan() || ratio <= 0.0 {
            return Sampler::always_off();
        }
        // ratio * 2^56 is exact (a power-of-two scaling) and below 2^56, so the cast is too.
        let kept = (ratio * MAX_THRESHOLD as f64).round_ties_even() as u64;
        if kept == 0 {
            // Below 2^-57: no randomness value is sampled.
            return Sampler::always_off();
        }
        Sampler {
            parent_based: false,
            threshold: shifted(MAX_THRESHOLD - kept),
            ratio_bits: ratio.to_bits(),
        }
    }

    /// Follows the parent's sampled flag; asks `root` for spans without a parent
    /// (`parentbased_*`).
    ///
    /// ```
    /// use agentcore_telemetry::{Sampler, TraceId};
    /// let s = Sampler::parent_based(Sampler::always_off());
    /// assert!(s.should_sample(Some(true), TraceId::random()));
    /// assert!(!s.should_sample(None, TraceId::random()));
    /// ```
    pub const fn parent_based(root: Sampler) -> Self {
        Sampler {
            parent_based: true,
            ..root
        }
    }

    /// A parent-based sampler keeping about `ratio` of the root spans
    /// (`parentbased_traceidratio`): `parent_based(trace_id_ratio(ratio))`.
    ///
    /// ```
    /// use agentcore_telemetry::{Sampler, TraceId};
    /// assert!(Sampler::ratio(1.0).should_sample(None, TraceId::random()));
    /// assert!(!Sampler::ratio(0.0).should_sample(None, TraceId::random()));
    /// assert_eq!(Sampler::ratio(1.0), Sampler::default());
    /// ```
    pub fn ratio(ratio: f64) -> Self {
        Sampler::parent_based(Sampler::trace_id_ratio(ratio))
    }

    /// Whether spans with a parent follow the parent's flag.
    ///
    /// ```
    /// assert!(agentcore_telemetry::Sampler::default().is_parent_based());
    /// ```
    pub const fn is_parent_based(&self) -> bool {
        self.parent_based
    }

    /// The fraction of root spans sampled, `0.0..=1.0` (approximately, for a ratio).
    ///
    /// ```
    /// use agentcore_telemetry::Sampler;
    /// assert_eq!(Sampler::always_off().root_ratio(), 0.0);
    /// assert_eq!(Sampler::ratio(0.25).root_ratio(), 0.25);
    /// ```
    pub fn root_ratio(&self) -> f64 {
        (MAX_THRESHOLD - self.rejection_threshold()) as f64 / MAX_THRESHOLD as f64
    }

    /// The rejection threshold `T`, `0..=2^56`.
    fn rejection_threshold(&self) -> u64 {
        if self.threshold == u64::MAX {
            MAX_THRESHOLD
        } else {
            self.threshold >> 8
        }
    }

    /// The specification's `GetDescription`: `AlwaysOnSampler`, `AlwaysOffSampler`,
    /// `TraceIdRatioBased{RATIO}` (the ratio as configured, in Rust's shortest decimal form)
    /// and, for a parent-based sampler, `ParentBased{root:...,remoteParentSampled:...,...}`
    /// with its five delegates (the form the Python, Go and Java SDKs use). Also what
    /// `Display` writes.
    ///
    /// ```
    /// use agentcore_telemetry::Sampler;
    /// assert_eq!(Sampler::trace_id_ratio(0.0001).description(), "TraceIdRatioBased{0.0001}");
    /// assert_eq!(Sampler::always_off().to_string(), "AlwaysOffSampler");
    /// assert_eq!(
    ///     Sampler::ratio(0.5).description(),
    ///     "ParentBased{root:TraceIdRatioBased{0.5},remoteParentSampled:AlwaysOnSampler,\
    ///      remoteParentNotSampled:AlwaysOffSampler,localParentSampled:AlwaysOnSampler,\
    ///      localParentNotSampled:AlwaysOffSampler}"
    /// );
    /// ```
    pub fn description(&self) -> String {
        self.to_string()
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
            Some(sampled) if self.parent_based => sampled,
            // R >= T, both shifted left by 8 (see `threshold`).
            _ => trace_id.randomness_shifted() >= self.threshold,
        }
    }

    /// The sampler the `OTEL_*` environment asks for, read through `lookup` (for the process
    /// environment: `|name| std::env::var(name).ok()`, which reads a value that is not
    /// UTF-8 as unset without a word; a tracer reading its environment
    /// ([`TracerConfig::from_env`](crate::TracerConfig::from_env))
    /// warns about such a value), with the OpenTelemetry
    /// specification's rules:
    ///
    /// * `OTEL_SDK_DISABLED=true` (any case): [`always_off`](Self::always_off), whatever
    ///   else is set (the SDK is disabled, so nothing is recorded). Any other value but
    ///   `false` (any case), surrounding whitespace included (`" true"`), is false with a
    ///   warning (the specification's boolean rule, which "MUST NOT" be extended).
    /// * `OTEL_TRACES_SAMPLER`: `always_on`, `always_off`, `traceidratio`,
    ///   `parentbased_always_on`, `parentbased_always_off`, `parentbased_traceidratio`
    ///   in any case (`ALWAYS_OFF` too: the specification's enum rule), surrounding
    ///   whitespace ignored. Unset or empty: `sampler` is `None` (the caller's
    ///   default applies). Unknown, or a remote sampler (`jaeger_remote`, `xray`, ...) that
    ///   this crate does not implement: `None` and a warning.
    /// * `OTEL_TRACES_SAMPLER_ARG`: the ratio of the two ratio samplers, `0..=1`; unset:
    ///   1.0; not a number in range: 1.0 and a warning. Set for a sampler that takes no
    ///   argument, or without `OTEL_TRACES_SAMPLER`: ignored with a warning (the
    ///   specification: "Invalid or unrecognized input MUST be logged"), so a ratio left
    ///   behind when the sampler changed does not go unnoticed.
    ///
    /// Never fails: a bad value is a warning, since the tracer must start anyway.
    ///
    /// ```
    /// use agentcore_telemetry::Sampler;
    /// let env = |name: &str| match name {
    ///     "OTEL_TRACES_SAMPLER" => Some("parentbased_traceidratio".to_string()),
    ///     "OTEL_TRACES_SAMPLER_ARG" => Some("0.25".to_string()),
    ///     _ => None,
    /// };
    /// let got = Sampler::from_env_lookup(env);
    /// assert_eq!(got.sampler, Some(Sampler::ratio(0.25)));
    /// assert!(got.warnings.is_empty());
    /// ```
    pub fn from_env_lookup(lookup: impl Fn(&str) -> Option<String>) -> SamplerFromEnv {
        let mut warnings = Vec::new();
        let set = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        if let Some(v) = set("OTEL_SDK_DISABLED") {
            // The string "true" in any case, as given: the specification's Boolean "MUST NOT
            // extend this definition" (so not with whitespace around it either).
            if v.eq_ignore_ascii_case("true") {
                return SamplerFromEnv {
                    sampler: Some(Sampler::always_off()),
                    sdk_disabled: true,
                    warnings,
                };
            }
            // Not "true": not disabled. Warned about here, since the tracer reads this
            // variable whether or not it exports (`ExportConfig` is read only for export).
            if !v.eq_ignore_ascii_case("false") {
                warnings.push(format!(
                    "OTEL_SDK_DISABLED={v:?}: only \"true\" or \"false\" (any case) are booleans; treated as false"
                ));
            }
        }
        let Some(name) = set("OTEL_TRACES_SAMPLER") else {
            // "Invalid or unrecognized input MUST be logged": an argument with no sampler
            // named is one nothing reads (a ratio left behind when the sampler was unset).
            if let Some(a) = set("OTEL_TRACES_SAMPLER_ARG") {
                warnings.push(format!(
                    "OTEL_TRACES_SAMPLER_ARG={a:?}: OTEL_TRACES_SAMPLER is not set, so no sampler reads it; ignored"
                ));
            }
            return SamplerFromEnv {
                sampler: None,
                sdk_disabled: false,
                warnings,
            };
        };
        let ratio = |warnings: &mut Vec<String>| match set("OTEL_TRACES_SAMPLER_ARG") {
            None => 1.0,
            Some(a) => match a.trim().parse::<f64>() {
                Ok(x) if (0.0..=1.0).contains(&x) => x,
                _ => {
                    warnings.push(format!(
                        "OTEL_TRACES_SAMPLER_ARG={a:?}: must be a ratio from 0 to 1; ignored (1.0 is used)"
                    ));
                    1.0
                }
            },
        };
        // A sampler that takes no argument: "Invalid or unrecognized input MUST be logged and
        // MUST be otherwise ignored" (its expected input is none).
        let no_argument = |warnings: &mut Vec<String>, sampler: Sampler| {
            if let Some(a) = set("OTEL_TRACES_SAMPLER_ARG") {
                warnings.push(format!(
                    "OTEL_TRACES_SAMPLER_ARG={a:?}: OTEL_TRACES_SAMPLER={:?} takes no argument; ignored",
                    name.trim()
                ));
            }
            Some(sampler)
        };
        // An enum: "Enum values SHOULD be interpreted in a case-insensitive manner."
        let sampler = match name.trim() {
            v if v.eq_ignore_ascii_case("always_on") => {
                no_argument(&mut warnings, Sampler::always_on())
            }
            v if v.eq_ignore_ascii_case("always_off") => {
                no_argument(&mut warnings, Sampler::always_off())
            }
            v if v.eq_ignore_ascii_case("traceidratio") => {
                Some(Sampler::trace_id_ratio(ratio(&mut warnings)))
            }
            v if v.eq_ignore_ascii_case("parentbased_always_on") => {
                no_argument(&mut warnings, Sampler::parent_based(Sampler::always_on()))
            }
            v if v.eq_ignore_ascii_case("parentbased_always_off") => {
                no_argument(&mut warnings, Sampler::parent_based(Sampler::always_off()))
            }
            v if v.eq_ignore_ascii_case("parentbased_traceidratio") => {
                Some(Sampler::ratio(ratio(&mut warnings)))
            }
            other => {
                let remote = other
                    .as_bytes()
                    .windows(b"jaeger_remote".len())
                    .any(|w| w.eq_ignore_ascii_case(b"jaeger_remote"));
                let why = if remote || other.eq_ignore_ascii_case("xray") {
                    "remote samplers are not implemented"
                } else {
                    "unknown sampler"
                };
                warnings.push(format!(
                    "OTEL_TRACES_SAMPLER={name:?}: {why}; ignored (the configured sampler is used)"
                ));
                None
            }
        };
        SamplerFromEnv {
            sampler,
            sdk_disabled: false,
            warnings,
        }
    }
}

/// How [`Sampler`] stores a rejection threshold `t` (`0..=2^56`): `t << 8`, or `u64::MAX` for
/// `2^56`.
const fn shifted(t: u64) -> u64 {
    if t >= MAX_THRESHOLD {
        u64::MAX
    } else {
        t << 8
    }
}

impl fmt::Display for Sampler {
    /// [`Sampler::description`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let root = Sampler {
            parent_based: false,
            ..*self
        };
        if self.parent_based {
            return write!(
                f,
                "ParentBased{{root:{root},remoteParentSampled:AlwaysOnSampler,\
                 remoteParentNotSampled:AlwaysOffSampler,localParentSampled:AlwaysOnSampler,\
                 localParentNotSampled:AlwaysOffSampler}}"
            );
        }
        if root == Sampler::always_on() {
            f.write_str("AlwaysOnSampler")
        } else if root == Sampler::always_off() {
            f.write_str("AlwaysOffSampler")
        } else {
            write!(
                f,
                "TraceIdRatioBased{{{}}}",
                f64::from_bits(self.ratio_bits)
            )
        }
    }
}

/// What [`Sampler::from_env_lookup`] read: the sampler asked for (if any) and the values it
/// ignored, one message each (`VARIABLE="value": why`).
///
/// ```
/// use agentcore_telemetry::Sampler;
/// let got = Sampler::from_env_lookup(|name| {
///     (name == "OTEL_TRACES_SAMPLER").then(|| "sometimes".to_string())
/// });
/// assert_eq!(got.sampler, None);
/// assert!(got.warnings[0].starts_with("OTEL_TRACES_SAMPLER=\"sometimes\": unknown sampler"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SamplerFromEnv {
    /// The sampler the environment asks for; `None` when it asks for none (or for one this
    /// crate does not have).
    pub sampler: Option<Sampler>,
    /// `OTEL_SDK_DISABLED=true`: nothing may be recorded, whatever the code configures
    /// (`sampler` is then [`Sampler::always_off`]).
    pub sdk_disabled: bool,
    /// Ignored values, one message each.
    pub warnings: Vec<String>,
}

/// The environment variables [`Sampler::from_env_lookup`] reads.
///
/// ```
/// assert!(agentcore_telemetry::tracer::SAMPLER_VARIABLES.contains(&"OTEL_TRACES_SAMPLER"));
/// ```
pub const SAMPLER_VARIABLES: &[&str] = &[
    "OTEL_SDK_DISABLED",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
];

#[cfg(test)]
mod tests {
    use super::*;

    /// A trace id whose randomness (low 56 bits) is `r`, with every other bit set, so that
    /// only the low 56 bits can decide.
    fn id(r: u64) -> TraceId {
        assert!(r < MAX_THRESHOLD);
        TraceId::from_u128((u128::MAX << 56) | u128::from(r)).unwrap()
    }

    #[test]
    fn parent_based_follows_the_parent_and_others_do_not() {
        let low = id(MAX_THRESHOLD - 1);
        for (s, root, under_sampled, under_unsampled) in [
            (Sampler::always_on(), true, true, true),
            (Sampler::always_off(), false, false, false),
            (Sampler::trace_id_ratio(0.5), true, true, true),
            (
                Sampler::parent_based(Sampler::always_on()),
                true,
                true,
                false,
            ),
            (
                Sampler::parent_based(Sampler::always_off()),
                false,
                true,
                false,
            ),
            (Sampler::ratio(0.5), true, true, false),
        ] {
            assert_eq!(s.should_sample(None, low), root, "{s:?}");
            assert_eq!(s.should_sample(Some(true), low), under_sampled, "{s:?}");
            assert_eq!(s.should_sample(Some(false), low), under_unsampled, "{s:?}");
        }
        // A trace id below the threshold: a ratio sampler says no even under a sampled
        // parent unless it is parent-based.
        let high = id(0);
        assert!(!Sampler::trace_id_ratio(0.5).should_sample(Some(true), high));
        assert!(Sampler::ratio(0.5).should_sample(Some(true), high));
    }

    #[test]
    fn ratio_edges() {
        assert_eq!(Sampler::trace_id_ratio(f64::NAN), Sampler::always_off());
        assert_eq!(Sampler::trace_id_ratio(-1.0), Sampler::always_off());
        assert_eq!(Sampler::trace_id_ratio(2.0), Sampler::always_on());
        assert_eq!(Sampler::ratio(1.0), Sampler::default());
        // The specification's rule: T = 2^56 - round(0.25 * 2^56) = 0xc0000000000000, and
        // R >= T samples.
        let quarter = Sampler::trace_id_ratio(0.25);
        assert!(quarter.should_sample(None, id(0xc0_0000_0000_0000)));
        assert!(!quarter.should_sample(None, id(0xbf_ffff_ffff_ffff)));
        // The smallest ratio the specification allows, 2^-56, samples the one largest R;
        // 2^-57 rounds (to even) to no span at all, and is always_off.
        let min = Sampler::trace_id_ratio(2f64.powi(-56));
        assert!(min.should_sample(None, id(MAX_THRESHOLD - 1)));
        assert!(!min.should_sample(None, id(MAX_THRESHOLD - 2)));
        assert_eq!(
            Sampler::trace_id_ratio(2f64.powi(-57)),
            Sampler::always_off()
        );
        // A ratio just below 1 keeps every R but 0..2^56 * (1 - ratio).
        let most = Sampler::trace_id_ratio(1.0 - 2f64.powi(-53));
        assert!(!most.should_sample(None, id(6)));
        assert!(most.should_sample(None, id(8)));
    }

    #[test]
    fn descriptions_are_the_specifications() {
        for (s, want) in [
            (Sampler::always_on(), "AlwaysOnSampler"),
            (Sampler::always_off(), "AlwaysOffSampler"),
            (Sampler::trace_id_ratio(1.5), "AlwaysOnSampler"),
            (Sampler::trace_id_ratio(0.0), "AlwaysOffSampler"),
            (Sampler::trace_id_ratio(0.5), "TraceIdRatioBased{0.5}"),
            (Sampler::trace_id_ratio(0.0001), "TraceIdRatioBased{0.0001}"),
            (
                Sampler::trace_id_ratio(1.0 / 3.0),
                "TraceIdRatioBased{0.3333333333333333}",
            ),
            (
                Sampler::default(),
                "ParentBased{root:AlwaysOnSampler,remoteParentSampled:AlwaysOnSampler,\
                 remoteParentNotSampled:AlwaysOffSampler,localParentSampled:AlwaysOnSampler,\
                 localParentNotSampled:AlwaysOffSampler}",
            ),
        ] {
            assert_eq!(s.description(), want);
        }
        // Samplers with different ratios have different descriptions (the specification:
        // "high enough to identify when Samplers have different ratios").
        let a = Sampler::trace_id_ratio(0.1);
        let b = Sampler::trace_id_ratio(0.1 + f64::EPSILON);
        assert_ne!(a.description(), b.description());
    }

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn every_sampler_name() {
        let s = |v: &str| {
            let got = Sampler::from_env_lookup(env(&[("OTEL_TRACES_SAMPLER", v)]));
            assert!(got.warnings.is_empty(), "{v}: {:?}", got.warnings);
            got.sampler.unwrap()
        };
        assert_eq!(s("always_on"), Sampler::always_on());
        assert_eq!(s(" always_off "), Sampler::always_off());
        assert_eq!(s("traceidratio"), Sampler::always_on()); // ratio 1.0
        assert_eq!(s("parentbased_always_on"), Sampler::default());
        assert_eq!(
            s("parentbased_always_off"),
            Sampler::parent_based(Sampler::always_off())
        );
        assert_eq!(s("parentbased_traceidratio"), Sampler::ratio(1.0));
        // Enum values are read in any case (the specification's enum rule).
        assert_eq!(s("ALWAYS_ON"), Sampler::always_on());
        assert_eq!(s("Always_Off"), Sampler::always_off());
        assert_eq!(s("ParentBased_TraceIdRatio"), Sampler::ratio(1.0));
    }

    #[test]
    fn unset_empty_unknown_and_remote() {
        assert_eq!(Sampler::from_env_lookup(env(&[])).sampler, None);
        let empty = Sampler::from_env_lookup(env(&[("OTEL_TRACES_SAMPLER", "  ")]));
        assert_eq!((empty.sampler, empty.warnings.len()), (None, 0));
        for bad in [
            "sometimes",
            "always-on",
            "always_on_",
            "jaeger_remote",
            "parentbased_jaeger_remote",
            "JAEGER_REMOTE",
            "xray",
            "XRAY",
        ] {
            let got = Sampler::from_env_lookup(env(&[("OTEL_TRACES_SAMPLER", bad)]));
            assert_eq!(got.sampler, None, "{bad}");
            assert_eq!(got.warnings.len(), 1, "{bad}");
            assert!(got.warnings[0].starts_with("OTEL_TRACES_SAMPLER="), "{bad}");
        }
    }

    #[test]
    fn the_ratio_argument() {
        let got = Sampler::from_env_lookup(env(&[
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", " 0.25 "),
        ]));
        assert_eq!(got.sampler, Some(Sampler::trace_id_ratio(0.25)));
        // Only the ratio samplers read it; the others ignore it, and say so.
        for (name, sampler) in [
            ("always_off", Sampler::always_off()),
            ("ALWAYS_ON", Sampler::always_on()),
            (
                "parentbased_always_on",
                Sampler::parent_based(Sampler::always_on()),
            ),
            (
                "parentbased_always_off",
                Sampler::parent_based(Sampler::always_off()),
            ),
        ] {
            let got = Sampler::from_env_lookup(env(&[
                ("OTEL_TRACES_SAMPLER", name),
                ("OTEL_TRACES_SAMPLER_ARG", "0.1"),
            ]));
            assert_eq!(got.sampler, Some(sampler), "{name}");
            assert_eq!(
                got.warnings,
                [format!(
                    "OTEL_TRACES_SAMPLER_ARG=\"0.1\": OTEL_TRACES_SAMPLER=\"{name}\" takes no argument; ignored"
                )],
            );
            // Unset or blank, it is no input at all.
            for arg in [None, Some(" ")] {
                let mut vars = vec![("OTEL_TRACES_SAMPLER", name)];
                vars.extend(arg.map(|a| ("OTEL_TRACES_SAMPLER_ARG", a)));
                let got = Sampler::from_env_lookup(env(&vars));
                assert_eq!(got.warnings, Vec::<String>::new(), "{name} {arg:?}");
            }
        }
        // With no sampler named, nothing reads it.
        let got = Sampler::from_env_lookup(env(&[("OTEL_TRACES_SAMPLER_ARG", "0.1")]));
        assert_eq!(got.sampler, None);
        assert_eq!(
            got.warnings,
            ["OTEL_TRACES_SAMPLER_ARG=\"0.1\": OTEL_TRACES_SAMPLER is not set, so no sampler reads it; ignored"]
        );
        // A disabled SDK reads nothing else: no warning.
        let got = Sampler::from_env_lookup(env(&[
            ("OTEL_SDK_DISABLED", "true"),
            ("OTEL_TRACES_SAMPLER", "always_on"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.1"),
        ]));
        assert!(got.warnings.is_empty());
        for bad in ["1.5", "-0.1", "NaN", "half", "inf"] {
            let got = Sampler::from_env_lookup(env(&[
                ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", bad),
            ]));
            assert_eq!(got.sampler, Some(Sampler::ratio(1.0)), "{bad}");
            assert!(
                got.warnings[0].starts_with("OTEL_TRACES_SAMPLER_ARG="),
                "{bad}"
            );
        }
    }

    #[test]
    fn sdk_disabled_wins() {
        for v in ["true", "TRUE", "tRuE"] {
            let got = Sampler::from_env_lookup(env(&[
                ("OTEL_SDK_DISABLED", v),
                ("OTEL_TRACES_SAMPLER", "always_on"),
            ]));
            assert_eq!(got.sampler, Some(Sampler::always_off()), "{v}");
            assert!(got.sdk_disabled);
        }
        let got = Sampler::from_env_lookup(env(&[("OTEL_SDK_DISABLED", "false")]));
        assert_eq!((got.sampler, got.sdk_disabled), (None, false));
        // Not the string "true": false, with a warning.
        let got = Sampler::from_env_lookup(env(&[("OTEL_SDK_DISABLED", " True ")]));
        assert_eq!((got.sampler, got.sdk_disabled), (None, false));
        assert_eq!(got.warnings.len(), 1, "{:?}", got.warnings);
    }
}
