//! Arbitrary metric names, help texts, label names and label values go through the `Registry`
//! and `encode_text()`.
//!
//! * Every registration is checked against an independent, regex-free reference of the naming
//!   rules (metric name, label names, `__` prefix, reserved `le`/`quantile`, duplicate label
//!   names, sample-name and OpenMetrics family-name clashes with families already registered)
//!   and of the summary configuration rules: invalid ones must be refused with the matching
//!   error (and register nothing), valid ones accepted. Each family is registered through one of
//!   the three paths, which must answer alike: `register`, the `*_family` helpers, and
//!   `get_or_register`, which must also hand back the registered family for exactly its name,
//!   type, label names and configuration (recordings through either handle land in one series)
//!   and refuse any other shape with `ShapeMismatch`.
//! * Every recording is mirrored in a model (counters, gauges, histograms, summaries, infos,
//!   removal, the cardinality cap and its overflow series).
//! * The exposition must parse with the strict parser of `tests/support/exposition.rs` to exactly
//!   the model: the same families in name order with the same help and type, the same series in
//!   label-value order (overflow series last) with the same label values, and the same values,
//!   bit for bit (floats are written as the shortest string that round-trips).
#![no_main]

#[path = "../../tests/support/exposition.rs"]
#[allow(dead_code)]
mod exposition;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use agentcore_telemetry::primitives::summary::MAX_AGE_BUCKETS;
use agentcore_telemetry::registry::{
    FamilyOptions, DEFAULT_MAX_SERIES, DEFAULT_MAX_SUMMARY_SERIES, OVERFLOW_LABEL_VALUE,
    OVERFLOW_METRIC,
};
use agentcore_telemetry::{
    Buckets, Counter, Error, Family, Gauge, Histogram, Info, Registry, Summary, SummaryConfig,
};
use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;

/// Characters names are built from: valid ones and one of each kind of invalid one.
const NAME_CHARS: &[char] = &[
    'a', 'b', 'x', 'Z', '_', ':', '0', '9', '-', ' ', '.', 'é', '\0', '\n', '/', '"',
];

/// Names that exercise the rules directly: clashes of derived sample names, reserved labels,
/// the `__` prefix, the registry's own overflow metric.
const FIXED_NAMES: &[&str] = &[
    "x",
    "x_count",
    "x_sum",
    "x_bucket",
    "x_total",
    "x_created",
    "x_info",
    "y",
    "le",
    "quantile",
    "__x",
    "_",
    ":",
    "a",
    "b",
    OVERFLOW_METRIC,
    "family",
    "",
];

/// Label values that need escaping or are otherwise special.
const VALUE_POOL: &[&str] = &[
    "",
    "a",
    "b",
    "x",
    "yz",
    "xy",
    "z",
    "\\",
    "\"",
    "\n",
    "\r",
    "\t",
    "\0",
    "é",
    "\u{1F600}",
    "a\\nb",
    "\\\"",
    "\\n",
    OVERFLOW_LABEL_VALUE,
    "} 1\n# HELP",
    "le",
    "+Inf",
];

#[derive(Debug)]
struct Name(String);

impl<'a> Arbitrary<'a> for Name {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Name(match u.int_in_range(0..=3)? {
            0 => FIXED_NAMES[u.choose_index(FIXED_NAMES.len())?].to_string(),
            1 => String::arbitrary(u)?,
            _ => {
                let len = u.int_in_range(0..=6)?;
                let mut s = String::new();
                for _ in 0..len {
                    s.push(*u.choose(NAME_CHARS)?);
                }
                s
            }
        }))
    }
}

#[derive(Debug)]
struct Value(String);

impl<'a> Arbitrary<'a> for Value {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Value(if u.ratio(3, 4)? {
            VALUE_POOL[u.choose_index(VALUE_POOL.len())?].to_string()
        } else {
            String::arbitrary(u)?
        }))
    }
}

#[derive(Debug, Arbitrary, Clone, Copy, PartialEq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Info,
}

/// Which registration path a family takes.
#[derive(Debug, Arbitrary, Clone, Copy, PartialEq)]
enum Via {
    Register,
    /// `counter_family`, `gauge_family`, ...: the default cardinality cap of the type.
    Helper,
    GetOrRegister,
}

/// A summary's configuration: mostly valid, sometimes not (arbitrary quantiles, zero or too many
/// age buckets, a zero age).
#[derive(Debug, Arbitrary)]
enum SummaryIn {
    Fixed,
    Sorted(Vec<u8>),
    Raw {
        quantiles: Vec<f64>,
        max_age_secs: u8,
        age_buckets: u8,
    },
}

#[derive(Debug, Arbitrary)]
struct FamilySpec {
    name: Name,
    help: String,
    kind: Kind,
    labels: Vec<Name>,
    bounds: Vec<f64>,
    summary: SummaryIn,
    max_series: u8,
    via: Via,
}

#[derive(Debug, Arbitrary)]
enum Action {
    Record(u64),
    RecordF(f64),
    Remove,
}

#[derive(Debug, Arbitrary)]
struct Op {
    family: u8,
    /// Unless 0 (one in 8), `values` is fitted to the family's label count; otherwise it is
    /// passed as it is (usually a wrong count).
    fit: u8,
    values: Vec<Value>,
    action: Action,
}

#[derive(Debug, Arbitrary)]
struct Input {
    families: Vec<FamilySpec>,
    ops: Vec<Op>,
}

// ---------------------------------------------------------------------------------------------
// The reference rules, written independently of `agentcore_telemetry::registry::name`.
// ---------------------------------------------------------------------------------------------

/// The 0.0.4 grammar, and no leading `_` (OpenMetrics 1.0 reserves those names).
fn ref_metric_name_ok(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z' | 'A'..='Z' | ':'))
        && chars.all(|c| matches!(c, 'a'..='z' | 'A'..='Z' | '0'..='9' | '_' | ':'))
}

/// The 0.0.4 grammar, and no leading `_` (0.0.4 reserves `__`, OpenMetrics 1.0 any `_`).
fn ref_label_name_ok(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z' | 'A'..='Z'))
        && chars.all(|c| matches!(c, 'a'..='z' | 'A'..='Z' | '0'..='9' | '_'))
}

fn suffixes(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Counter | Kind::Gauge | Kind::Info => &[""],
        Kind::Histogram => &["", "_bucket", "_sum", "_count"],
        Kind::Summary => &["", "_sum", "_count"],
    }
}

/// Every name a family takes, tagged by namespace: its 0.0.4 sample names; its OpenMetrics
/// family name (a counter drops `_total`, an info `_info`) and the OpenMetrics sample names it
/// may write (`_created` included), which share one namespace (a family name may not be another
/// family's sample name). Two families may not share a tagged name.
fn taken_names(name: &str, kind: Kind) -> Vec<String> {
    let mut names: Vec<String> = suffixes(kind)
        .iter()
        .map(|s| format!("text {name}{s}"))
        .collect();
    let family = match kind {
        Kind::Counter if name.ends_with("_total") => &name[..name.len() - 6],
        Kind::Info if name.ends_with("_info") => &name[..name.len() - 5],
        _ => name,
    };
    names.push(format!("om {family}"));
    let om_samples: &[&str] = match kind {
        Kind::Counter => &["_total", "_created"],
        Kind::Gauge => &[""],
        Kind::Histogram => &["_bucket", "_count", "_sum", "_created"],
        Kind::Summary => &["", "_count", "_sum", "_created"],
        Kind::Info => &["_info"],
    };
    names.extend(om_samples.iter().map(|s| format!("om {family}{s}")));
    names
}

/// A counter's whole part after adding `v`: it stops at 2^63 (per thread; the target records
/// on one), and never goes down.
fn capped(int: u64, v: u64) -> u64 {
    int.max(int.saturating_add(v).min(1 << 63))
}

fn reserved(kind: Kind) -> Option<&'static str> {
    match kind {
        Kind::Histogram => Some("le"),
        Kind::Summary => Some("quantile"),
        _ => None,
    }
}

/// What the registry must answer, by the reference rules.
#[derive(Debug, PartialEq)]
enum Expected {
    Ok,
    BadName,
    BadLabel(String),
    DupLabel(String),
    BadConfig,
    Clash,
    /// `get_or_register` of a registered name with another type, labels or configuration.
    Shape,
    /// `get_or_register` handing back the registered family at this index.
    Existing(usize),
}

fn expected_registration(
    name: &str,
    labels: &[String],
    kind: Kind,
    config_ok: bool,
    taken: &HashSet<String>,
) -> Expected {
    if !ref_metric_name_ok(name) {
        return Expected::BadName;
    }
    for (i, l) in labels.iter().enumerate() {
        if !ref_label_name_ok(l) || reserved(kind) == Some(l.as_str()) {
            return Expected::BadLabel(l.clone());
        }
        if labels[..i].contains(l) {
            return Expected::DupLabel(l.clone());
        }
    }
    if !config_ok {
        return Expected::BadConfig;
    }
    if taken_names(name, kind).iter().any(|n| taken.contains(n)) {
        return Expected::Clash;
    }
    Expected::Ok
}

fn classify(err: &Error) -> Expected {
    match err {
        Error::InvalidMetricName { .. } => Expected::BadName,
        Error::InvalidLabelName { name, .. } => Expected::BadLabel(name.clone()),
        Error::DuplicateLabelName { name } => Expected::DupLabel(name.clone()),
        Error::DuplicateMetric { .. } => Expected::Clash,
        Error::InvalidSummaryConfig { .. } => Expected::BadConfig,
        Error::ShapeMismatch { .. } => Expected::Shape,
        other => panic!("unexpected registration error {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The model.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Default)]
struct Model {
    /// Counter: integer part, fractional part. Gauge: value in `gauge`.
    int: u64,
    frac: f64,
    gauge: f64,
    /// Histogram/summary: observations in order.
    observed: Vec<f64>,
}

#[derive(Clone)]
enum Handle {
    Counter(Family<Counter>),
    Gauge(Family<Gauge>),
    Histogram(Family<Histogram>, Buckets),
    Summary(Family<Summary>, SummaryConfig),
    Info(Family<Info>),
}

struct Fam {
    name: String,
    help: String,
    kind: Kind,
    labels: Vec<String>,
    max_series: usize,
    handle: Handle,
    series: BTreeMap<Vec<String>, Model>,
    overflow: Option<Model>,
    folds: u64,
}

impl Fam {
    /// The model of the series `values` resolves to, created as the family would.
    fn resolve(&mut self, values: &[String]) -> &mut Model {
        let overflow_key = !values.is_empty() && values.iter().all(|v| v == OVERFLOW_LABEL_VALUE);
        if overflow_key {
            return self.overflow.get_or_insert_with(Model::default);
        }
        if !self.series.contains_key(values) {
            if self.series.len() >= self.max_series {
                self.folds += 1;
                return self.overflow.get_or_insert_with(Model::default);
            }
            self.series.insert(values.to_vec(), Model::default());
        }
        self.series.get_mut(values).expect("inserted above")
    }
}

fn same(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b
}

fn sequential_sum(values: &[f64]) -> f64 {
    values.iter().fold(0.0, |acc, v| acc + v)
}

/// The summary configuration of a spec, and whether the reference rules accept it.
fn summary_config(spec: &SummaryIn) -> (SummaryConfig, bool) {
    let config = match spec {
        SummaryIn::Fixed => SummaryConfig {
            quantiles: vec![0.0, 0.5, 0.99, 1.0],
            max_age: Duration::from_secs(60),
            age_buckets: 2,
        },
        SummaryIn::Sorted(ks) => {
            let mut q: Vec<f64> = ks.iter().take(6).map(|&k| f64::from(k) / 255.0).collect();
            q.sort_by(f64::total_cmp);
            q.dedup();
            SummaryConfig {
                quantiles: q,
                max_age: Duration::from_secs(60),
                age_buckets: 3,
            }
        }
        SummaryIn::Raw {
            quantiles,
            max_age_secs,
            age_buckets,
        } => SummaryConfig {
            quantiles: quantiles.iter().copied().take(6).collect(),
            max_age: Duration::from_secs(u64::from(*max_age_secs)),
            age_buckets: u32::from(*age_buckets),
        },
    };
    let ok = config.quantiles.iter().all(|q| (0.0..=1.0).contains(q))
        && config.quantiles.windows(2).all(|w| w[0] < w[1])
        && !config.max_age.is_zero()
        && (1..=MAX_AGE_BUCKETS).contains(&config.age_buckets);
    (config, ok)
}

/// The bucket layout of a spec (the default one when the bounds are refused, as the reference
/// says they must be).
fn buckets_of(spec: &FamilySpec) -> Buckets {
    let bounds: Vec<f64> = spec.bounds.iter().copied().take(8).collect();
    // Reference: a trailing +Inf is dropped; the rest must be finite, strictly increasing.
    let mut finite = bounds.clone();
    if finite.last() == Some(&f64::INFINITY) {
        finite.pop();
    }
    let valid = finite.iter().all(|b| b.is_finite()) && finite.windows(2).all(|w| w[0] < w[1]);
    match Buckets::new(bounds.clone()) {
        Ok(b) => {
            assert!(valid, "accepted invalid bounds {bounds:?}");
            assert_eq!(b.bounds(), &finite[..]);
            b
        }
        Err(Error::InvalidBuckets { .. }) => {
            assert!(!valid, "refused valid bounds {bounds:?}");
            Buckets::default()
        }
        Err(e) => panic!("unexpected bucket error {e:?}"),
    }
}

/// The cardinality cap a family registered by `spec` gets.
fn max_series(spec: &FamilySpec) -> usize {
    match (spec.via, spec.kind) {
        (Via::Helper, Kind::Summary) => DEFAULT_MAX_SUMMARY_SERIES,
        (Via::Helper, _) => DEFAULT_MAX_SERIES,
        _ => usize::from(spec.max_series % 8) + 1,
    }
}

fn register(registry: &Registry, spec: &FamilySpec, labels: &[&str]) -> Result<Handle, Error> {
    let options = FamilyOptions {
        max_series: max_series(spec),
        ..FamilyOptions::default()
    };
    let (name, help) = (spec.name.0.as_str(), spec.help.as_str());
    macro_rules! via {
        ($config:expr, $helper:expr) => {
            match spec.via {
                Via::Register => registry.register(name, help, labels, $config, options)?,
                Via::GetOrRegister => {
                    registry.get_or_register(name, help, labels, $config, options)?
                }
                Via::Helper => $helper?,
            }
        };
    }
    Ok(match spec.kind {
        Kind::Counter => Handle::Counter(via!((), registry.counter_family(name, help, labels))),
        Kind::Gauge => Handle::Gauge(via!((), registry.gauge_family(name, help, labels))),
        Kind::Info => Handle::Info(via!((), registry.info_family(name, help, labels))),
        Kind::Histogram => {
            let buckets = buckets_of(spec);
            let family = via!(
                buckets.clone(),
                registry.histogram_family(name, help, labels, buckets.clone())
            );
            Handle::Histogram(family, buckets)
        }
        Kind::Summary => {
            let (config, _) = summary_config(&spec.summary);
            let family = via!(
                config.clone(),
                registry.summary_family(name, help, labels, config.clone())
            );
            Handle::Summary(family, config)
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let registry = Registry::new();
    let mut taken: HashSet<String> = taken_names(OVERFLOW_METRIC, Kind::Counter)
        .into_iter()
        .collect();
    let mut fams: Vec<Fam> = Vec::new();

    // Every handle the registrations gave, with the family it belongs to (`get_or_register`
    // of a registered name gives a second handle to the same family).
    let mut handles: Vec<(usize, Handle)> = Vec::new();
    for spec in input.families.iter().take(5) {
        let labels: Vec<String> = spec.labels.iter().take(3).map(|l| l.0.clone()).collect();
        let label_refs: Vec<&str> = labels.iter().map(String::as_str).collect();
        let config_ok = spec.kind != Kind::Summary || summary_config(&spec.summary).1;
        let existing = fams.iter().position(|f| f.name == spec.name.0);
        let expected = match existing {
            Some(i) if spec.via == Via::GetOrRegister => {
                let fam = &fams[i];
                let same_config = match &fam.handle {
                    Handle::Histogram(_, b) => *b == buckets_of(spec),
                    Handle::Summary(_, c) => *c == summary_config(&spec.summary).0,
                    _ => true,
                };
                if !config_ok {
                    Expected::BadConfig
                } else if fam.kind != spec.kind || fam.labels != labels || !same_config {
                    Expected::Shape
                } else {
                    Expected::Existing(i)
                }
            }
            // The registry's own overflow counter family is registered from the start.
            None if spec.via == Via::GetOrRegister && spec.name.0 == OVERFLOW_METRIC => {
                if !config_ok {
                    Expected::BadConfig
                } else if spec.kind != Kind::Counter || labels != ["family"] {
                    Expected::Shape
                } else {
                    Expected::Existing(usize::MAX)
                }
            }
            _ => expected_registration(&spec.name.0, &labels, spec.kind, config_ok, &taken),
        };
        let families_before = registry.family_names();
        match register(&registry, spec, &label_refs) {
            Ok(handle) => {
                if let Expected::Existing(i) = expected {
                    // A handle to the overflow family itself is not recorded through: the
                    // model follows it only as the target of folds.
                    if i != usize::MAX {
                        handles.push((i, handle));
                    }
                    continue;
                }
                assert_eq!(expected, Expected::Ok, "accepted {spec:?}");
                taken.extend(taken_names(&spec.name.0, spec.kind));
                handles.push((fams.len(), handle.clone()));
                fams.push(Fam {
                    name: spec.name.0.clone(),
                    help: spec.help.clone(),
                    kind: spec.kind,
                    labels,
                    max_series: max_series(spec),
                    handle,
                    series: BTreeMap::new(),
                    overflow: None,
                    folds: 0,
                });
            }
            Err(e) => {
                assert_eq!(classify(&e), expected, "refused {spec:?} with {e:?}");
                assert_eq!(
                    registry.family_names(),
                    families_before,
                    "a refusal registered"
                );
            }
        }
    }
    if fams.is_empty() {
        return;
    }

    for op in input.ops.iter().take(64) {
        let (index, handle) = &handles[usize::from(op.family) % handles.len()];
        let fam = &mut fams[*index];
        let mut values: Vec<String> = op.values.iter().map(|v| v.0.clone()).collect();
        if op.fit % 8 != 0 {
            values.resize(fam.labels.len(), String::new());
        }
        let n = fam.labels.len();
        if let Action::Remove = op.action {
            let removed = match handle {
                Handle::Counter(f) => f.remove(&values),
                Handle::Gauge(f) => f.remove(&values),
                Handle::Histogram(f, _) => f.remove(&values),
                Handle::Summary(f, _) => f.remove(&values),
                Handle::Info(f) => f.remove(&values),
            };
            let expected = values.len() == n && fam.series.remove(&values).is_some();
            assert_eq!(removed, expected, "remove {values:?}");
            continue;
        }
        macro_rules! lookup {
            ($f:expr) => {
                match $f.with_label_values(&values) {
                    Err(Error::WrongLabelCount { expected, got }) => {
                        assert_eq!((expected, got), (n, values.len()));
                        continue;
                    }
                    Err(e) => panic!("lookup {values:?}: {e:?}"),
                    Ok(series) => {
                        assert_eq!(values.len(), n, "accepted a wrong label count");
                        series
                    }
                }
            };
        }
        match (handle, &op.action) {
            (Handle::Counter(f), Action::Record(v)) => {
                lookup!(f).inc_by(*v);
                let m = fam.resolve(&values);
                m.int = capped(m.int, *v);
            }
            (Handle::Counter(f), Action::RecordF(v)) => {
                let result = lookup!(f).add(*v);
                let m = fam.resolve(&values);
                let valid = *v >= 0.0 && v.is_finite();
                assert_eq!(result.is_ok(), valid, "add({v})");
                if valid {
                    if *v < 9_007_199_254_740_992.0 && v.fract() == 0.0 {
                        m.int = capped(m.int, *v as u64);
                    } else {
                        m.frac += *v;
                    }
                }
            }
            (Handle::Gauge(f), Action::Record(v)) => {
                lookup!(f).set(*v as f64);
                fam.resolve(&values).gauge = *v as f64;
            }
            (Handle::Gauge(f), Action::RecordF(v)) => {
                lookup!(f).add(*v);
                fam.resolve(&values).gauge += *v;
            }
            (Handle::Histogram(f, _), action) => {
                let v = match action {
                    Action::Record(v) => (*v % 4096) as f64 / 8.0,
                    Action::RecordF(v) => *v,
                    Action::Remove => unreachable!(),
                };
                lookup!(f).observe(v);
                let m = fam.resolve(&values);
                if !v.is_nan() {
                    m.observed.push(v);
                }
            }
            (Handle::Summary(f, _), action) => {
                let v = match action {
                    Action::Record(v) => (*v % 4096) as f64 / 8.0,
                    Action::RecordF(v) => *v,
                    Action::Remove => unreachable!(),
                };
                lookup!(f).observe(v);
                let m = fam.resolve(&values);
                if !v.is_nan() {
                    m.observed.push(v);
                }
            }
            (Handle::Info(f), _) => {
                lookup!(f);
                fam.resolve(&values);
            }
            (_, Action::Remove) => unreachable!(),
        }
    }

    let text = registry.encode_text();
    let parsed = exposition::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    // A second scrape of unchanged data is byte-identical (a reused buffer too).
    let mut again = String::from("stale");
    again.clear();
    registry.encode_text_into(&mut again);
    assert_eq!(text, again);

    // The expected families: the registered ones with series, plus the overflow counter family
    // once some family folded a label set; sorted by name. A sample's value is `None` where it
    // is not compared (summary quantiles are approximations by design).
    type Samples = Vec<(String, Vec<(String, String)>, Option<f64>)>;
    let mut expected: Vec<(String, String, &'static str, Samples)> = Vec::new();
    let mut folds: Samples = fams
        .iter()
        .filter(|f| f.folds > 0)
        .map(|f| {
            let labels = vec![("family".to_string(), f.name.clone())];
            (OVERFLOW_METRIC.to_string(), labels, Some(f.folds as f64))
        })
        .collect();
    if !folds.is_empty() {
        folds.sort_by(|a, b| a.1.cmp(&b.1));
        let help = "Label sets folded into a family's overflow series because the family reached its cardinality cap.";
        expected.push((
            OVERFLOW_METRIC.to_string(),
            help.to_string(),
            "counter",
            folds,
        ));
    }
    // `le` and `quantile` values are compared as numbers: their text is Go's float format, which
    // must parse back to exactly the bound.
    let number = |v: f64| format!("{v:?}");
    for fam in &fams {
        if fam.series.is_empty() && fam.overflow.is_none() {
            continue;
        }
        let overflow_values = vec![OVERFLOW_LABEL_VALUE.to_string(); fam.labels.len()];
        let all = fam
            .series
            .iter()
            .map(|(k, m)| (k.clone(), m))
            .chain(fam.overflow.as_ref().map(|m| (overflow_values.clone(), m)));
        let mut samples: Samples = Vec::new();
        for (values, m) in all {
            let labels: Vec<(String, String)> = fam
                .labels
                .iter()
                .cloned()
                .zip(values.iter().cloned())
                .collect();
            let with = |k: &str, v: f64| {
                let mut l = labels.clone();
                l.push((k.to_string(), number(v)));
                l
            };
            let name = &fam.name;
            match &fam.handle {
                Handle::Counter(_) => {
                    let v = if m.frac == 0.0 {
                        m.int as f64
                    } else {
                        // Never below the whole part (OpenMetrics 1.0: a Total "MUST be
                        // monotonically non-decreasing", and the whole part alone is written
                        // exactly): the float sum, or, where it falls below `int` (past 2^53),
                        // the smallest float not below `int`.
                        let mut at_least = m.int as f64;
                        if at_least < 18_446_744_073_709_551_616.0 && (at_least as u64) < m.int {
                            at_least = f64::from_bits(at_least.to_bits() + 1);
                        }
                        (m.int as f64 + m.frac).max(at_least)
                    };
                    samples.push((name.clone(), labels, Some(v)));
                }
                Handle::Gauge(_) => samples.push((name.clone(), labels, Some(m.gauge))),
                Handle::Info(_) => samples.push((name.clone(), labels, Some(1.0))),
                Handle::Histogram(_, buckets) => {
                    for &b in buckets.bounds().iter().chain(&[f64::INFINITY]) {
                        let cumulative = m.observed.iter().filter(|&&v| v <= b).count();
                        samples.push((
                            format!("{name}_bucket"),
                            with("le", b),
                            Some(cumulative as f64),
                        ));
                    }
                    let count = Some(m.observed.len() as f64);
                    samples.push((
                        format!("{name}_sum"),
                        labels.clone(),
                        Some(sequential_sum(&m.observed)),
                    ));
                    samples.push((format!("{name}_count"), labels, count));
                }
                Handle::Summary(_, config) => {
                    for &q in &config.quantiles {
                        samples.push((name.clone(), with("quantile", q), None));
                    }
                    let count = Some(m.observed.len() as f64);
                    samples.push((
                        format!("{name}_sum"),
                        labels.clone(),
                        Some(sequential_sum(&m.observed)),
                    ));
                    samples.push((format!("{name}_count"), labels, count));
                }
            }
        }
        let keyword = match fam.kind {
            Kind::Counter => "counter",
            Kind::Gauge | Kind::Info => "gauge",
            Kind::Histogram => "histogram",
            Kind::Summary => "summary",
        };
        expected.push((fam.name.clone(), fam.help.clone(), keyword, samples));
    }
    expected.sort_by(|a, b| a.0.cmp(&b.0));

    assert_eq!(
        parsed.iter().map(|f| &f.name).collect::<Vec<_>>(),
        expected.iter().map(|f| &f.0).collect::<Vec<_>>(),
        "families\n{text}"
    );
    for (got, (name, help, keyword, samples)) in parsed.iter().zip(&expected) {
        assert_eq!(got.help.as_deref(), Some(help.as_str()), "help of {name}");
        assert_eq!(got.kind.as_deref(), Some(*keyword), "type of {name}");
        assert_eq!(
            got.samples.len(),
            samples.len(),
            "samples of {name}\n{text}"
        );
        for (s, (sname, labels, value)) in got.samples.iter().zip(samples) {
            assert_eq!(&s.name, sname, "\n{text}");
            let got_labels: Vec<(String, String)> = s
                .labels
                .iter()
                .map(|(k, v)| match (k.as_str(), *keyword) {
                    ("le", "histogram") | ("quantile", "summary") => {
                        let x = exposition_number(v).unwrap_or_else(|| panic!("{k}={v:?}"));
                        (k.clone(), number(x))
                    }
                    _ => (k.clone(), v.clone()),
                })
                .collect();
            assert_eq!(&got_labels, labels, "labels of {sname}\n{text}");
            if let Some(value) = value {
                assert!(
                    same(s.value, *value),
                    "{sname}{:?}: got {} want {value}\n{text}",
                    s.labels,
                    s.value
                );
            }
        }
    }
});

/// A number as the exposition spells it (`+Inf`, `-Inf`, `NaN` or a decimal float).
fn exposition_number(v: &str) -> Option<f64> {
    match v {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => v.parse().ok(),
    }
}
