//! Head sampling: OpenTelemetry's built-in samplers, and `OTEL_TRACES_SAMPLER`.
//!
//! A sampler decides, when a span starts, whether it is recorded (span log, export, span
//! metrics by status) or only propagated. The decision is a comparison and a branch: the
//! unsampled path must stay cheap (issue 16), so the sampler is a small `Copy` value, not a
//! trait object.

use super::id::TraceId;

/// A head sampler: OpenTelemetry's `AlwaysOn`, `AlwaysOff`, `TraceIdRatioBased`, and
/// `ParentBased` over any of them.
///
/// * A **parent-based** sampler follows the parent's sampled flag (local span, attached
///   context or remote context), so a trace is recorded whole or not at all; only root spans
///   ask the root sampler. [`Sampler::ratio`] (parent-based, trace-id ratio) is the tracer's
///   default with ratio 1.0 (`parentbased_always_on`).
/// * A **trace-id ratio** decision samples when the low 64 bits of the trace id are below
///   `ratio * 2^64`: deterministic per trace id, so every service with the same ratio takes
///   the same decision. Ratio `>= 1` samples everything, `<= 0` (or NaN) nothing.
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
    /// Every root decision (and, unless parent-based, every decision) is "sample".
    always: bool,
    /// Otherwise: sample when the trace id's low 64 bits are below this.
    threshold: u64,
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
            always: true,
            threshold: u64::MAX,
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
            always: false,
            threshold: 0,
        }
    }

    /// Samples about `ratio` of all spans by trace id (`traceidratio`), clamped to
    /// `0.0..=1.0`; the parent's flag is not asked.
    ///
    /// ```
    /// use agentcore_telemetry::{Sampler, TraceId};
    /// let id = TraceId::from_u128(1).unwrap(); // low 64 bits: 1, below any ratio > 0
    /// assert!(Sampler::trace_id_ratio(0.001).should_sample(Some(false), id));
    /// ```
    pub fn trace_id_ratio(ratio: f64) -> Self {
        if ratio >= 1.0 {
            Sampler::always_on()
        } else if ratio > 0.0 {
            // 2^64 * ratio, in range since ratio < 1 (the float->int cast saturates).
            Sampler {
                parent_based: false,
                always: false,
                threshold: (ratio * 18_446_744_073_709_551_616.0) as u64,
            }
        } else {
            // Also NaN.
            Sampler::always_off()
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
        if self.always {
            1.0
        } else {
            self.threshold as f64 / 18_446_744_073_709_551_616.0
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
            Some(sampled) if self.parent_based => sampled,
            _ => self.always || trace_id.low_u64() < self.threshold,
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

    fn id(low: u64) -> TraceId {
        TraceId::from_u128((1u128 << 64) | u128::from(low)).unwrap()
    }

    #[test]
    fn parent_based_follows_the_parent_and_others_do_not() {
        let low = id(1);
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
        // A trace id above the threshold: a ratio sampler says no even under a sampled
        // parent unless it is parent-based.
        let high = id(u64::MAX);
        assert!(!Sampler::trace_id_ratio(0.5).should_sample(Some(true), high));
        assert!(Sampler::ratio(0.5).should_sample(Some(true), high));
    }

    #[test]
    fn ratio_edges() {
        assert_eq!(Sampler::trace_id_ratio(f64::NAN), Sampler::always_off());
        assert_eq!(Sampler::trace_id_ratio(-1.0), Sampler::always_off());
        assert_eq!(Sampler::trace_id_ratio(2.0), Sampler::always_on());
        assert_eq!(Sampler::ratio(1.0), Sampler::default());
        let quarter = Sampler::trace_id_ratio(0.25);
        assert!(quarter.should_sample(None, id((1u64 << 62) - 1)));
        assert!(!quarter.should_sample(None, id(1u64 << 62)));
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
