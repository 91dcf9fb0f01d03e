//! The series by label *name*: [`Family::with_named_labels`] puts `(name, value)` pairs in the
//! family's label order and looks them up as [`Family::with_label_values`] does, so that a
//! caller cannot swap two values by writing them in another order (the specification's
//! `labels(action_type=.., user_role=..)`). Up to [`INLINE`] labels the ordering is on the stack:
//! a lookup of an existing series still allocates nothing and takes no lock.

use smallvec::SmallVec;

use super::{Family, SeriesRef};
use crate::registry::Metric;
use crate::Error;

/// Labels ordered without allocating (more spill to the heap, correctly, at a cost).
const INLINE: usize = 8;

impl<M: Metric> Family<M> {
    /// The series for these `(label name, value)` pairs, in any order, created if it does not
    /// exist (or the overflow series once the family is full), as
    /// [`with_label_values`](Self::with_label_values) gives it. Each of the family's label
    /// names must be given exactly once: a missing one is [`Error::WrongLabelCount`], a name
    /// the family does not have [`Error::UnknownLabelName`], a name given twice
    /// [`Error::DuplicateLabelName`]. Looking up an existing series allocates nothing and takes
    /// no lock (up to eight labels); it costs a comparison of the names on top of
    /// `with_label_values`, which stays the fastest way in.
    ///
    /// ```
    /// use agentcore_telemetry::{Error, Registry};
    ///
    /// let registry = Registry::new();
    /// let calls = registry.counter_family("calls_total", "Calls.", &["tool", "status"]).unwrap();
    /// calls.with_named_labels(&[("status", "ok"), ("tool", "search")]).unwrap().inc();
    /// assert_eq!(calls.get(&["search", "ok"]).unwrap().get(), 1.0);
    /// assert_eq!(
    ///     calls.with_named_labels(&[("tool", "search"), ("state", "ok")]).unwrap_err(),
    ///     Error::UnknownLabelName { name: "state".into() }
    /// );
    /// ```
    pub fn with_named_labels(&self, labels: &[(&str, &str)]) -> Result<SeriesRef<'_, M>, Error> {
        let names = self.label_names();
        if labels.len() != names.len() {
            return Err(Error::WrongLabelCount {
                expected: names.len(),
                got: labels.len(),
            });
        }
        if let Some(&(unknown, _)) = labels
            .iter()
            .find(|(name, _)| !names.iter().any(|n| **n == **name))
        {
            return Err(Error::UnknownLabelName {
                name: unknown.to_owned(),
            });
        }
        if let Some((_, &(twice, _))) = labels
            .iter()
            .enumerate()
            .find(|&(i, (name, _))| labels[..i].iter().any(|(n, _)| n == name))
        {
            return Err(Error::DuplicateLabelName {
                name: twice.to_owned(),
            });
        }
        // Now the names are distinct, each the family's, and as many as it has: each of its
        // names is given exactly once.
        let mut values: SmallVec<[&str; INLINE]> = SmallVec::with_capacity(names.len());
        for name in names {
            if let Some(&(_, value)) = labels.iter().find(|(n, _)| **n == **name) {
                values.push(value);
            }
        }
        self.with_label_values(&values)
    }
}
