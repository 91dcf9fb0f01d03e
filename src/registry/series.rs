//! One series of a family ([`Series`]): its label values ([`LabelValues`]), their rendered
//! exposition form, its creation time and its metric.

use std::ops::Index;

#[cfg(not(agentcore_loom))]
use super::label_hash::{cold_copy, KEPT};
use super::label_hash::{Key, SHORT};
use crate::exposition::prometheus_text::render_labels;
use crate::sync::era::Domain;

/// One series of a family: its label values, their rendered exposition form and its metric.
///
/// `repr(C)` with the metric first: a lookup's handle points at the metric, which is then the
/// series' own address (no offset added per lookup). What a lookup compares comes next
/// (`keyed`, then the first values' keys), so that a hit reads the series' first bytes only.
#[repr(C)]
pub struct Series<M> {
    pub(super) metric: M,
    /// The number of values if none is longer than [`SHORT`] (equal keys are equal values);
    /// `usize::MAX` otherwise (equal keys must be confirmed on the text). One comparison with
    /// the caller's count checks both.
    pub(super) keyed: usize,
    /// The [`Key`]s of the first [`INLINE_KEYS`] values ([`Key::ZERO`] past the last value),
    /// what a lookup compares, kept in the series itself: no pointer to follow and no line of
    /// their own to load. The keys of later values are computed from `text` when compared
    /// ([`Series::key`]).
    pub(super) keys: [Key; INLINE_KEYS],
    /// The reclamation era when the series was created (before it was published).
    pub(super) birth: u64,
    pub(super) hash: u64,
    /// The label values, concatenated; `ends[i]` is where value `i` ends.
    pub(super) text: Box<str>,
    pub(super) ends: Box<[u32]>,
    /// `a="x",b="y"`, escaped once at creation so a scrape only copies it.
    pub(super) rendered: Box<str>,
    /// When the series' values started from zero, in microseconds since the Unix epoch
    /// (OpenMetrics' `_created` sample): its metric's creation time for a counter, histogram or
    /// summary, which an adopted handle brings along; otherwise the series' own, read once on
    /// the cold path that creates it.
    pub(super) created_micros: u64,
}

/// How many values' [`Key`]s a [`Series`] keeps inline. Two: families of one or two labels
/// (most of them) compare keys without leaving the series. In a heap slice of every value's
/// keys (until 2026-12-07) a lookup paid a pointer load and a line of its own, and the series
/// an allocation (24 bytes a value; glibc's chunks of 32, 64, 80 and 112 bytes for one to four
/// values). Inline, the series is 32 bytes larger and allocates no keys: a series of one label
/// takes the same memory, one of two 32 bytes less, three 48 less, four 80 less; one without
/// labels (one per family) 32 more.
pub(super) const INLINE_KEYS: usize = 2;

impl<M: std::fmt::Debug> std::fmt::Debug for Series<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Series")
            .field("label_values", &self.label_values())
            .field("metric", &self.metric)
            .finish()
    }
}

impl<M> Series<M> {
    /// The series for `values` (one per name in `label_names`, already validated) under
    /// `hash`, born in reclamation era `birth`: its values stored once, their keys, their
    /// rendered exposition form and `created_micros`. Off the hot path (a new series).
    pub(super) fn new(
        birth: u64,
        hash: u64,
        label_names: &[Box<str>],
        values: &[&str],
        metric: M,
        created_micros: u64,
    ) -> Series<M> {
        let mut rendered = String::new();
        render_labels(&mut rendered, label_names, values);
        let mut text = String::new();
        let mut ends = Vec::with_capacity(values.len());
        for v in values {
            text.push_str(v);
            ends.push(u32::try_from(text.len()).unwrap_or(u32::MAX));
        }
        let (keys, keyed) = keys_of(values);
        Series {
            keyed,
            keys,
            birth,
            hash,
            text: text.into_boxed_str(),
            ends: ends.into_boxed_slice(),
            rendered: rendered.into_boxed_str(),
            created_micros,
            metric,
        }
    }

    /// The bytes freeing the series gives back: the struct and its label values' buffers (not
    /// its metric's recording words, which the slot arena keeps, nor what a shared handle
    /// keeps alive).
    pub(super) fn footprint(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.text.len()
            + std::mem::size_of_val(&*self.ends)
            + self.rendered.len()
    }

    /// Retires `series` in `domain`, counting its [`footprint`](Self::footprint).
    ///
    /// # Safety
    /// `Domain::retire_sized`'s, for `series`.
    pub(super) unsafe fn retire(series: *mut Series<M>, domain: &Domain)
    where
        M: Send + 'static,
    {
        // SAFETY: the caller's; `series` is live until retired.
        unsafe { domain.retire_sized(series, (*series).birth, (*series).footprint()) }
    }

    /// The label values, in the family's label-name order.
    pub fn label_values(&self) -> LabelValues<'_> {
        LabelValues {
            text: &self.text,
            ends: &self.ends,
        }
    }

    /// The label pairs as the exposition writes them, without braces.
    pub fn rendered_labels(&self) -> &str {
        &self.rendered
    }

    /// The metric.
    pub fn metric(&self) -> &M {
        &self.metric
    }

    /// When the series' values started from zero (the OpenMetrics `_created` time): when the
    /// series was created, or, for a counter, histogram or summary, when its metric was made,
    /// which is the same time for a series the family created and earlier for a handle adopted
    /// with [`Family::insert_metric`](super::Family::insert_metric), whose values it brings
    /// along. A series removed and created again starts over, as its value does. A counter
    /// series whose total the `metrics` bridge set with `absolute` counts from a start kept
    /// elsewhere: this is then only when the series was made here, and the OpenMetrics
    /// exposition writes no `_created` for it.
    ///
    /// ```
    /// use agentcore_telemetry::Registry;
    /// use std::time::SystemTime;
    ///
    /// let registry = Registry::new();
    /// let calls = registry.counter_family("calls_total", "Calls.", &["tool"]).unwrap();
    /// let before = SystemTime::now();
    /// calls.with_label_values(&["search"]).unwrap().inc();
    /// calls.for_each_series(|series| assert!(series.created() >= before - std::time::Duration::from_millis(1)));
    /// ```
    pub fn created(&self) -> std::time::SystemTime {
        std::time::UNIX_EPOCH + std::time::Duration::from_micros(self.created_micros)
    }

    /// [`Series::created`] in microseconds since the Unix epoch.
    pub(crate) fn created_micros(&self) -> u64 {
        self.created_micros
    }

    /// The [`Key`] of stored value `i` (`i` below the number of values): kept inline for the
    /// first [`INLINE_KEYS`], computed from the text for the others.
    #[inline(always)]
    fn key(&self, i: usize) -> Key {
        if i < INLINE_KEYS {
            self.keys[i]
        } else {
            self.label_values()
                .get(i)
                .map_or(Key::ZERO, |v| Key::of(v.as_bytes()))
        }
    }

    /// Whether the stored values are `values`: their count, their keys one value at a time,
    /// then, only if some stored value is long, the text in full.
    #[inline(always)]
    pub(super) fn matches<S: AsRef<str>>(&self, values: &[S]) -> bool {
        if self.ends.len() != values.len() {
            return false;
        }
        for (i, v) in values.iter().enumerate() {
            if self.key(i) != Key::of(v.as_ref().as_bytes()) {
                return false;
            }
        }
        self.keyed == values.len() || self.label_values() == *values
    }

    /// [`Series::matches`] for `values` whose first keys the caller computed
    /// ([`LabelHasher::hash_keys`](super::label_hash::LabelHasher::hash_keys)): when there
    /// are at most [`KEPT`] values, all short, the keys alone decide, with no call to the
    /// caller's `as_ref`.
    #[cfg(not(agentcore_loom))]
    #[inline(always)]
    pub(super) fn matches_keys<S: AsRef<str>>(&self, keys: &[Key; KEPT], values: &[S]) -> bool {
        let n = values.len();
        if n > KEPT {
            return self.matches_cold(values);
        }
        if self.keyed != n {
            return self.matches_cold(&cold_copy(values)[..n]);
        }
        // `keyed == n` only when the series has `n` values (`keys_of`), so `key(i)` is defined
        // for each `i < n`; for `n <= INLINE_KEYS` (a constant where the caller passes an
        // array) this is `n` inline comparisons.
        (0..n).all(|i| self.key(i) == keys[i])
    }

    #[cfg(not(agentcore_loom))]
    #[cold]
    #[inline(never)]
    fn matches_cold<S: AsRef<str>>(&self, values: &[S]) -> bool {
        self.matches(values)
    }
}

/// The inline keys of `values` ([`Series::keys`]) and the [`Series::keyed`] they give.
pub(super) fn keys_of(values: &[&str]) -> ([Key; INLINE_KEYS], usize) {
    let mut keys = [Key::ZERO; INLINE_KEYS];
    for (key, v) in keys.iter_mut().zip(values) {
        *key = Key::of(v.as_bytes());
    }
    let long = values.iter().any(|v| v.len() > SHORT);
    (keys, if long { usize::MAX } else { values.len() })
}

/// The label values of a [`Series`], in label-name order.
///
/// ```
/// use agentcore_telemetry::Registry;
///
/// let registry = Registry::new();
/// let calls = registry.counter_family("calls_total", "Calls.", &["tool", "status"]).unwrap();
/// calls.with_label_values(&["search", "ok"]).unwrap().inc();
/// calls.for_each_series(|series| {
///     let values = series.label_values();
///     assert_eq!(values.len(), 2);
///     assert_eq!(&values[0], "search");
///     assert_eq!(values.iter().collect::<Vec<_>>(), ["search", "ok"]);
///     assert_eq!(values, ["search", "ok"][..]);
/// });
/// ```
#[derive(Clone, Copy)]
pub struct LabelValues<'a> {
    text: &'a str,
    ends: &'a [u32],
}

impl<'a> LabelValues<'a> {
    /// The number of values.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are none (a family without labels).
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Value `i`, if there is one.
    pub fn get(&self, i: usize) -> Option<&'a str> {
        let end = *self.ends.get(i)? as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        Some(&self.text[start..end])
    }

    /// The first value, if any.
    pub fn first(&self) -> Option<&'a str> {
        self.get(0)
    }

    /// The values, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &'a str> + 'a {
        let (text, ends) = (self.text, self.ends);
        (0..ends.len()).map(move |i| {
            let start = if i == 0 { 0 } else { ends[i - 1] as usize };
            &text[start..ends[i] as usize]
        })
    }

    /// The values as owned strings.
    pub fn to_vec(&self) -> Vec<String> {
        self.iter().map(str::to_owned).collect()
    }
}

impl Index<usize> for LabelValues<'_> {
    type Output = str;

    fn index(&self, i: usize) -> &str {
        match self.get(i) {
            Some(v) => v,
            None => panic!("label value {i} of {}", self.len()),
        }
    }
}

impl<S: AsRef<str>> PartialEq<[S]> for LabelValues<'_> {
    fn eq(&self, other: &[S]) -> bool {
        self.len() == other.len() && self.iter().zip(other).all(|(a, b)| a == b.as_ref())
    }
}

impl PartialEq for LabelValues<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for LabelValues<'_> {}

impl PartialOrd for LabelValues<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for LabelValues<'_> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.iter().cmp(other.iter())
    }
}

impl std::fmt::Debug for LabelValues<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for LabelValues<'a> {
    type Item = &'a str;
    type IntoIter = Box<dyn ExactSizeIterator<Item = &'a str> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}
