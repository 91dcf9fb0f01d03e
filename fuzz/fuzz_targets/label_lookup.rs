//! Arbitrary label-value lists never alias one another's series.
//!
//! A counter family records distinct amounts per distinct label-value list, removes and re-creates
//! series, keeps handles across removals, adopts existing handles (`insert_metric`), and folds
//! label sets past a small cardinality cap into the overflow series. A `HashMap<Vec<String>, u64>` model must agree after every step
//! (`get`, `len`, `remove`'s answer) and at the end with the strict parse of the exposition:
//! exactly the model's series, each with exactly its count, plus the overflow series with exactly
//! the folded amount and `agentcore_telemetry_series_overflow_total` with exactly the number of
//! folds.
#![no_main]

#[path = "../../tests/support/exposition.rs"]
#[allow(dead_code)]
mod exposition;

use std::collections::HashMap;

use agentcore_telemetry::registry::{FamilyOptions, OVERFLOW_LABEL_VALUE, OVERFLOW_METRIC};
use agentcore_telemetry::{Counter, Error, Registry};
use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;

/// Values that look alike once concatenated, need escaping, or are special.
const POOL: &[&str] = &[
    "",
    "x",
    "yz",
    "xy",
    "z",
    "\0",
    "x\0",
    "\0x",
    "\\",
    "\"",
    "\n",
    "é",
    "e\u{301}",
    OVERFLOW_LABEL_VALUE,
    "1",
    "01",
];

/// Five candidate values and a length: usually the family's label count (the first `n`
/// values), one time in eight an arbitrary length (usually a wrong count). Five, one per label
/// of the widest family: every position varies on its own, past the two keys a series keeps
/// inline and past the four a lookup keeps.
#[derive(Debug)]
struct Values {
    values: [String; 5],
    len: Option<usize>,
}

impl Values {
    fn list(&self, n: usize) -> Vec<String> {
        let len = self.len.unwrap_or(n);
        (0..len).map(|i| self.values[i % 5].clone()).collect()
    }
}

impl<'a> Arbitrary<'a> for Values {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let value = |u: &mut Unstructured<'a>| -> arbitrary::Result<String> {
            Ok(if u.ratio(7, 8)? {
                POOL[u.choose_index(POOL.len())?].to_string()
            } else {
                String::arbitrary(u)?
            })
        };
        let values = [value(u)?, value(u)?, value(u)?, value(u)?, value(u)?];
        let len = if u.ratio(1, 8)? {
            Some(u.int_in_range(0..=6)?)
        } else {
            None
        };
        Ok(Values { values, len })
    }
}

#[derive(Debug, Arbitrary)]
enum Op {
    /// `with_label_values(v).inc_by(n)`.
    Inc(Values, u16),
    /// `remove(v)`.
    Remove(Values),
    /// Keep an owned handle to the series of `v`.
    Keep(Values),
    /// Increment a kept handle (its series may have been removed since).
    IncKept(u8, u16),
    /// `retain`: drop every series whose first value has an even length.
    RetainOddFirst,
    /// `insert_metric(v, counter)` with a fresh counter already at `n`.
    Adopt(Values, u16),
}

#[derive(Debug, Arbitrary)]
struct Input {
    labels: u8,
    max_series: u8,
    ops: Vec<Op>,
}

#[derive(Default)]
struct Model {
    series: HashMap<Vec<String>, u64>,
    overflow: Option<u64>,
    folds: u64,
    max_series: usize,
}

/// What a lookup of `values` resolves to in the model.
enum Target {
    Series(Vec<String>),
    Overflow,
}

impl Model {
    fn resolve(&mut self, values: &[String]) -> Target {
        if !values.is_empty() && values.iter().all(|v| v == OVERFLOW_LABEL_VALUE) {
            self.overflow.get_or_insert(0);
            return Target::Overflow;
        }
        if !self.series.contains_key(values) {
            if self.series.len() >= self.max_series {
                self.folds += 1;
                self.overflow.get_or_insert(0);
                return Target::Overflow;
            }
            self.series.insert(values.to_vec(), 0);
        }
        Target::Series(values.to_vec())
    }

    fn add(&mut self, target: &Target, n: u64) {
        match target {
            Target::Series(k) => {
                if let Some(c) = self.series.get_mut(k) {
                    *c += n;
                }
            }
            Target::Overflow => *self.overflow.get_or_insert(0) += n,
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let names = ["a", "b", "c", "d", "e"];
    let labels = &names[..usize::from(input.labels % 6)];
    let n = labels.len();
    let max_series = if input.max_series >= 128 {
        usize::from(input.max_series)
    } else {
        usize::from(input.max_series % 6) + 1
    };
    let registry = Registry::new();
    let family = registry
        .register::<Counter>(
            "lookup_total",
            "Lookups.",
            labels,
            (),
            FamilyOptions {
                max_series,
                ..FamilyOptions::default()
            },
        )
        .unwrap();
    let mut model = Model {
        max_series,
        ..Model::default()
    };
    // Kept handles and the series they count into (`None`: a removed series, no longer exposed).
    let mut kept: Vec<(Counter, Option<Target>)> = Vec::new();

    for op in input.ops.iter().take(128) {
        let list = |v: &Values| v.list(n);
        match op {
            Op::Inc(v, _) | Op::Keep(v) if list(v).len() != n => {
                let v = &list(v);
                let err = family.with_label_values(v).err();
                assert_eq!(
                    err,
                    Some(Error::WrongLabelCount {
                        expected: n,
                        got: v.len()
                    })
                );
                assert!(family.get(v).is_none());
            }
            Op::Inc(v, amount) => {
                let v = &list(v);
                family
                    .with_label_values(v)
                    .unwrap()
                    .inc_by(u64::from(*amount));
                let target = model.resolve(v);
                model.add(&target, u64::from(*amount));
            }
            Op::Keep(v) => {
                let v = &list(v);
                let handle = family.get_or_create(v).unwrap();
                let target = model.resolve(v);
                kept.push((handle, Some(target)));
            }
            Op::IncKept(i, amount) => {
                if kept.is_empty() {
                    continue;
                }
                let idx = usize::from(*i) % kept.len();
                let (handle, target) = &kept[idx];
                handle.inc_by(u64::from(*amount));
                if let Some(target) = target {
                    let target = match target {
                        Target::Series(k) => Target::Series(k.clone()),
                        Target::Overflow => Target::Overflow,
                    };
                    model.add(&target, u64::from(*amount));
                }
            }
            Op::Remove(v) => {
                let v = &list(v);
                let removed = family.remove(v);
                let expected = v.len() == n && model.series.remove(v).is_some();
                assert_eq!(removed, expected, "remove {v:?}");
                if removed {
                    // Handles to the removed series keep working but count nowhere visible.
                    for (_, target) in kept.iter_mut() {
                        if matches!(target, Some(Target::Series(k)) if k == v) {
                            *target = None;
                        }
                    }
                }
            }
            Op::Adopt(v, amount) => {
                let v = &list(v);
                let counter = Counter::new().unwrap();
                counter.inc_by(u64::from(*amount));
                let result = family.insert_metric(v, counter.clone());
                let overflow_key = !v.is_empty() && v.iter().all(|x| x == OVERFLOW_LABEL_VALUE);
                if v.len() != n {
                    assert_eq!(
                        result,
                        Err(Error::WrongLabelCount {
                            expected: n,
                            got: v.len()
                        })
                    );
                } else if overflow_key || model.series.contains_key(v) {
                    assert_eq!(result, Ok(false), "adopt {v:?}");
                } else if model.series.len() >= model.max_series {
                    assert!(result.is_err(), "adopt {v:?} into a full family");
                } else {
                    assert_eq!(result, Ok(true), "adopt {v:?}");
                    model.series.insert(v.clone(), u64::from(*amount));
                    kept.push((counter, Some(Target::Series(v.clone()))));
                }
            }
            Op::RetainOddFirst => {
                let keep = |values: &[String]| values.first().is_none_or(|s| s.len() % 2 == 1);
                let removed = family.retain(|values, _| {
                    keep(&values.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                });
                let before = model.series.len();
                model.series.retain(|k, _| keep(k));
                assert_eq!(removed, before - model.series.len());
                for (_, target) in kept.iter_mut() {
                    if matches!(target, Some(Target::Series(k)) if !model.series.contains_key(k)) {
                        *target = None;
                    }
                }
            }
        }
        assert_eq!(family.len(), model.series.len());
    }

    // Every model series reads back its own count through `get`, and nothing else exists.
    for (values, count) in &model.series {
        let c = family
            .get(values)
            .unwrap_or_else(|| panic!("lost series {values:?}"));
        assert_eq!(c.get(), *count as f64, "{values:?}");
    }
    assert_eq!(family.overflowed(), model.folds);

    let text = registry.encode_text();
    let parsed = exposition::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let mut want: HashMap<Vec<String>, u64> = model.series.clone();
    if let Some(overflow) = model.overflow {
        want.insert(vec![OVERFLOW_LABEL_VALUE.to_string(); n], overflow);
    }
    let mut got: HashMap<Vec<String>, u64> = HashMap::new();
    let mut folds_seen = None;
    for fam in &parsed {
        for s in &fam.samples {
            match s.name.as_str() {
                "lookup_total" => {
                    let names: Vec<&str> = s.labels.iter().map(|(k, _)| k.as_str()).collect();
                    assert_eq!(names, labels);
                    let values = s.labels.iter().map(|(_, v)| v.clone()).collect();
                    assert!(
                        got.insert(values, s.value as u64).is_none(),
                        "duplicate series"
                    );
                    assert_eq!(s.value, s.value.trunc());
                }
                name if name == OVERFLOW_METRIC => {
                    assert_eq!(s.label("family"), Some("lookup_total"));
                    folds_seen = Some(s.value as u64);
                }
                other => panic!("unexpected sample {other}"),
            }
        }
    }
    assert_eq!(got, want, "\n{text}");
    assert_eq!(folds_seen, (model.folds > 0).then_some(model.folds));
});
