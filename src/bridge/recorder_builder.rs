//! The configuration of an [`AgentcoreRecorder`](super::metrics_recorder::AgentcoreRecorder)
//! (re-exported from [`metrics_recorder`](super::metrics_recorder), where its `build` is): the
//! conflict strategy, the bucket layouts, the caps on series per family and on families.

use crate::primitives::Buckets;

/// The default cap on the metric names an [`AgentcoreRecorder`](super::metrics_recorder::AgentcoreRecorder) maps to families, and on the
/// descriptions it keeps for names that have no family yet ([`RecorderBuilder::max_families`]).
///
/// ```
/// assert_eq!(agentcore_telemetry::bridge::metrics_recorder::DEFAULT_MAX_FAMILIES, 10_000);
/// ```
pub const DEFAULT_MAX_FAMILIES: usize = 10_000;

/// What the recorder does with a key it cannot map to its family: another set of label names,
/// another metric kind for a registered name, or a name or label the registry refuses. The key
/// always gets a no-op handle and is counted in [`REJECTED_METRIC`](super::metrics_recorder::REJECTED_METRIC).
///
/// ```
/// use agentcore_telemetry::bridge::metrics_recorder::{AgentcoreRecorder, OnConflict};
/// let recorder = AgentcoreRecorder::builder().on_conflict(OnConflict::Ignore).build(&agentcore_telemetry::Registry::new());
/// # let _ = recorder;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnConflict {
    /// Count it and record nothing (the default).
    #[default]
    Ignore,
    /// Count it; in builds with `debug_assertions` also panic with the reason, to find the
    /// call site in tests. Never panics in release.
    Panic,
}

/// Which metric names a bucket layout applies to.
///
/// ```
/// use agentcore_telemetry::bridge::metrics_recorder::Matcher;
/// assert!(Matcher::Suffix("_seconds".into()).matches("http_request_seconds"));
/// assert!(!Matcher::Full("a".into()).matches("ab"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    /// Exactly this (sanitized) name.
    Full(String),
    /// Names starting with this.
    Prefix(String),
    /// Names ending with this.
    Suffix(String),
}

impl Matcher {
    /// Whether `name` matches.
    ///
    /// ```
    /// use agentcore_telemetry::bridge::metrics_recorder::Matcher;
    /// assert!(Matcher::Prefix("llm_".into()).matches("llm_tokens"));
    /// ```
    pub fn matches(&self, name: &str) -> bool {
        match self {
            Matcher::Full(s) => name == s,
            Matcher::Prefix(s) => name.starts_with(s.as_str()),
            Matcher::Suffix(s) => name.ends_with(s.as_str()),
        }
    }
}

/// Configures an [`AgentcoreRecorder`](super::metrics_recorder::AgentcoreRecorder).
///
/// ```
/// use agentcore_telemetry::bridge::metrics_recorder::{AgentcoreRecorder, Matcher};
/// use agentcore_telemetry::{Buckets, Registry};
/// let recorder = AgentcoreRecorder::builder()
///     .buckets_for(Matcher::Suffix("_seconds".into()), Buckets::new(vec![0.01, 0.1, 1.0]).unwrap())
///     .max_series(1_000)
///     .build(&Registry::new());
/// # let _ = recorder;
/// ```
#[derive(Debug, Clone)]
pub struct RecorderBuilder {
    pub(super) default_buckets: Buckets,
    pub(super) buckets: Vec<(Matcher, Buckets)>,
    pub(super) on_conflict: OnConflict,
    pub(super) max_series: usize,
    pub(super) max_families: usize,
}

impl RecorderBuilder {
    /// Buckets for histograms whose name matches `matcher` (the first matching rule wins).
    ///
    /// ```
    /// use agentcore_telemetry::bridge::metrics_recorder::{AgentcoreRecorder, Matcher};
    /// use agentcore_telemetry::{Buckets, Registry};
    /// let registry = Registry::new();
    /// let recorder = AgentcoreRecorder::builder()
    ///     .buckets_for(Matcher::Full("tokens".into()), Buckets::new(vec![100.0, 1000.0]).unwrap())
    ///     .build(&registry);
    /// metrics::with_local_recorder(&recorder, || metrics::histogram!("tokens").record(512.0));
    /// assert!(registry.encode_text().contains("tokens_bucket{le=\"1000\"} 1\n"));
    /// ```
    pub fn buckets_for(mut self, matcher: Matcher, buckets: Buckets) -> Self {
        self.buckets.push((matcher, buckets));
        self
    }

    /// Buckets for histograms no rule matches (default [`Buckets::default`](crate::Buckets::default)).
    ///
    /// ```
    /// use agentcore_telemetry::bridge::metrics_recorder::AgentcoreRecorder;
    /// use agentcore_telemetry::{Buckets, Registry};
    /// let r = AgentcoreRecorder::builder().default_buckets(Buckets::linear(1.0, 1.0, 3).unwrap()).build(&Registry::new());
    /// # let _ = r;
    /// ```
    pub fn default_buckets(mut self, buckets: Buckets) -> Self {
        self.default_buckets = buckets;
        self
    }

    /// What to do with keys that conflict with their family (default [`OnConflict::Ignore`]).
    ///
    /// ```
    /// use agentcore_telemetry::bridge::metrics_recorder::{AgentcoreRecorder, OnConflict};
    /// let builder = AgentcoreRecorder::builder().on_conflict(OnConflict::Panic);
    /// # let _ = builder;
    /// ```
    pub fn on_conflict(mut self, strategy: OnConflict) -> Self {
        self.on_conflict = strategy;
        self
    }

    /// The cardinality cap of each family the recorder creates (default
    /// [`DEFAULT_MAX_SERIES`](crate::registry::DEFAULT_MAX_SERIES)); label sets beyond it go to the family's overflow series.
    ///
    /// ```
    /// use agentcore_telemetry::bridge::metrics_recorder::AgentcoreRecorder;
    /// use agentcore_telemetry::Registry;
    /// let registry = Registry::new();
    /// let recorder = AgentcoreRecorder::builder().max_series(2).build(&registry);
    /// metrics::with_local_recorder(&recorder, || {
    ///     for user in ["a", "b", "c", "d"] {
    ///         metrics::counter!("logins_total", "user" => user).increment(1);
    ///     }
    /// });
    /// assert!(registry.encode_text().contains("logins_total{user=\"__overflow__\"} 2\n"));
    /// ```
    pub fn max_series(mut self, max_series: usize) -> Self {
        self.max_series = max_series;
        self
    }

    /// The cap on the metric names the recorder maps to families (default
    /// [`DEFAULT_MAX_FAMILIES`]), and, on its own, on the descriptions it keeps for names that
    /// have no family yet. A new name past it is refused as `families`, counted in
    /// [`REJECTED_METRIC`](super::metrics_recorder::REJECTED_METRIC) and [`AgentcoreRecorder::rejected`](super::metrics_recorder::AgentcoreRecorder::rejected), and gets a no-op handle, as
    /// other refused keys do (with [`OnConflict::Panic`], a panic in debug builds); a
    /// description past it is dropped and counted alike (never a panic). The names mapped
    /// already keep recording. Without it, names built at run time
    /// (`counter!(format!("job_{id}_total"))`) made a family each, without end; each family's
    /// series are capped by [`max_series`](Self::max_series), their number was not. `0`
    /// refuses every name.
    ///
    /// ```
    /// use agentcore_telemetry::bridge::metrics_recorder::{AgentcoreRecorder, REJECTED_METRIC};
    /// use agentcore_telemetry::Registry;
    /// let registry = Registry::new();
    /// let recorder = AgentcoreRecorder::builder().max_families(2).build(&registry);
    /// metrics::with_local_recorder(&recorder, || {
    ///     for job in ["a", "b", "c"] {
    ///         metrics::counter!(format!("job_{job}_total")).increment(1);
    ///     }
    ///     metrics::counter!("job_a_total").increment(1); // a name mapped already
    /// });
    /// assert_eq!(recorder.rejected(), 1);
    /// let text = registry.encode_text();
    /// assert!(text.contains("job_a_total 2\n"));
    /// assert!(!text.contains("job_c_total"));
    /// assert!(text.contains(&format!("{REJECTED_METRIC}{{reason=\"families\"}} 1\n")));
    /// ```
    pub fn max_families(mut self, max_families: usize) -> Self {
        self.max_families = max_families;
        self
    }
}
