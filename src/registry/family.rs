//! [`Family`]: the series of one metric, keyed by label values, with a cardinality cap.
//!
//! # Structure
//! The series live in `SHARDS` copy-on-write hash maps, each in an [`RcuCell`]. A lookup hashes
//! the label values (each prefixed by its length, so `["x","yz"]` and `["xy","z"]` never hash alike
//! by construction), pins the thread (two plain stores and a compiler fence: no lock, no atomic
//! read-modify-write, no allocation), probes the shard's current map by the precomputed hash and
//! compares the stored values in full: two different label-value lists never share a series even
//! when their hashes collide.
//!
//! Inserting or removing a series (the cold path) takes the family's writer mutex, copies the one
//! shard it touches, edits the copy and publishes it with [`RcuCell::replace`]; readers never wait
//! for it, and the old map is freed once no pinned reader can hold it.
//!
//! # Invariants
//! 1. A label-value list maps to at most one series: inserts re-check the shard under the writer
//!    mutex before inserting.
//! 2. `len` counts the series in the shards (the overflow series excluded) and never exceeds
//!    `max_series`; once it is reached, new label sets are folded into the overflow series, whose
//!    every label value is [`OVERFLOW_LABEL_VALUE`], and each fold is counted.
//! 3. `generation` changes after every insert or removal is published, so a scrape's sorted
//!    cache is rebuilt whenever the set of series changed.
//!
//! # Memory ordering
//! `RcuCell` publishes a new map with a release swap and readers load it with acquire, so a reader
//! that sees a map sees every series in it fully built; reclamation safety is argued in
//! [`rcu`](crate::sync::rcu). `len` and `generation` are updated under the writer mutex;
//! readers use them only as hints (`len` to skip the mutex when the family is full, `generation`
//! to decide whether to re-sort), so `Relaxed`/`Acquire` suffice.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::atomic::{Ordering::Acquire, Ordering::Relaxed, Ordering::Release};
use std::sync::{Arc, OnceLock};

use smallvec::SmallVec;

use super::{Descriptor, Metric};
use crate::exposition::prometheus_text::render_labels;
// Through the crate's shim, so the loom models explore the family's real code: `std` and
// `primitives::rcu` normally; loom's primitives and a loom-visible `RcuCell` stand-in under
// `--cfg agentcore_loom` (see `crate::sync`). The `OnceLock`s stay `std`: they are only initialised with
// plain moves (no loom operation inside), so they cannot block a loom thread, and loom does not
// explore them.
use crate::sync::{AtomicU64, AtomicUsize, Domain, Mutex, Pin, RcuCell};
use crate::{Counter, Error};

/// The label value every label of the overflow series carries.
pub const OVERFLOW_LABEL_VALUE: &str = "__overflow__";

/// The default cardinality cap of a family: label sets beyond it go to the overflow series.
pub const DEFAULT_MAX_SERIES: usize = 16_384;

#[cfg(not(agentcore_loom))]
const SHARDS: usize = 32;
/// Two shards under loom: with three keys, two share a shard (pigeonhole), so the models
/// exercise both a shared copy-on-write shard and independent ones.
#[cfg(agentcore_loom)]
const SHARDS: usize = 2;

/// Hashes are already `ahash` outputs: the maps use them as they are.
#[derive(Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("only u64 keys are hashed")
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

type ShardMap<M> = HashMap<u64, SmallVec<[Arc<Series<M>>; 1]>, BuildHasherDefault<IdentityHasher>>;

/// One series of a family: its label values, their rendered exposition form and its metric.
pub struct Series<M> {
    values: Box<[Box<str>]>,
    /// `a="x",b="y"`, escaped once at creation so a scrape only copies it.
    rendered: Box<str>,
    metric: M,
}

impl<M: std::fmt::Debug> std::fmt::Debug for Series<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Series")
            .field("label_values", &self.values)
            .field("metric", &self.metric)
            .finish()
    }
}

impl<M> Series<M> {
    /// The label values, in the family's label-name order.
    pub fn label_values(&self) -> &[Box<str>] {
        &self.values
    }

    /// The label pairs as the exposition writes them, without braces.
    pub fn rendered_labels(&self) -> &str {
        &self.rendered
    }

    /// The metric.
    pub fn metric(&self) -> &M {
        &self.metric
    }

    fn matches<S: AsRef<str>>(&self, values: &[S]) -> bool {
        self.values.len() == values.len()
            && self
                .values
                .iter()
                .zip(values)
                .all(|(a, b)| **a == *b.as_ref())
    }
}

/// A family of series of one metric type, keyed by label values. Cheap to clone (shared).
///
/// ```
/// use agentcore_telemetry::Registry;
///
/// let registry = Registry::new();
/// let tools = registry
///     .counter_family("tool_executions_total", "Tool executions.", &["tool_id", "status"])
///     .unwrap();
/// tools.with_label_values(&["calculator", "success"]).unwrap().inc();
/// // A handle to keep, for the hottest paths:
/// let ok = tools.get_or_create(&["calculator", "success"]).unwrap();
/// ok.inc_by(2);
/// assert_eq!(ok.get(), 3.0);
/// assert!(tools.with_label_values(&["only-one"]).is_err()); // wrong label count
/// assert!(tools.remove(&["calculator", "success"]));
/// assert_eq!(tools.len(), 0);
/// ```
pub struct Family<M: Metric> {
    inner: Arc<FamilyInner<M>>,
}

impl<M: Metric> Clone for Family<M> {
    fn clone(&self) -> Self {
        Family {
            inner: self.inner.clone(),
        }
    }
}

pub(crate) struct FamilyInner<M: Metric> {
    pub(crate) desc: Arc<Descriptor>,
    pub(crate) config: M::Config,
    shards: Box<[RcuCell<ShardMap<M>>]>,
    hasher: ahash::RandomState,
    writer: Mutex<()>,
    len: AtomicUsize,
    generation: AtomicU64,
    max_series: usize,
    overflow: OnceLock<Arc<Series<M>>>,
    overflowed: AtomicU64,
    /// The registry's own `agentcore_telemetry_series_overflow_total{family}` series for this
    /// family, created on the first overflow.
    overflow_counter: OnceLock<Option<Counter>>,
    overflow_family: Option<Family<Counter>>,
    /// Scrape-side cache of the series sorted by label values; recorders never touch it.
    sorted: Mutex<SortedCache<M>>,
}

/// What [`Family::insert_locked`] did.
enum Insert {
    Added,
    Exists,
    Full,
}

struct SortedCache<M> {
    generation: u64,
    series: Vec<Arc<Series<M>>>,
}

/// A borrowed series handle returned by [`Family::with_label_values`]: it dereferences to the
/// metric and keeps the series' map alive without touching any shared reference count.
pub struct SeriesRef<'a, M> {
    _pin: Option<Pin<'static>>,
    metric: *const M,
    _family: PhantomData<&'a M>,
}

impl<M: std::fmt::Debug> std::fmt::Debug for SeriesRef<'_, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SeriesRef").field(&**self).finish()
    }
}

impl<M> Deref for SeriesRef<'_, M> {
    type Target = M;

    #[inline(always)]
    fn deref(&self) -> &M {
        // SAFETY: `metric` points into a `Series` owned by an `Arc` that is either held by a
        // shard map loaded under `_pin` (which keeps it from being freed), or is the family's
        // overflow series, which lives as long as the family borrowed for `'a`.
        unsafe { &*self.metric }
    }
}

/// Whether `values` are the overflow series' label values (every one [`OVERFLOW_LABEL_VALUE`]).
fn is_overflow_key<S: AsRef<str>>(values: &[S]) -> bool {
    !values.is_empty() && values.iter().all(|v| v.as_ref() == OVERFLOW_LABEL_VALUE)
}

/// The label-value hasher: randomly seeded, except under loom, whose models must replay the
/// same execution (the same keys in the same shards) many times.
fn new_hasher() -> ahash::RandomState {
    #[cfg(not(agentcore_loom))]
    return ahash::RandomState::new();
    #[cfg(agentcore_loom)]
    return ahash::RandomState::with_seeds(1, 2, 3, 4);
}

impl<M: Metric> Family<M> {
    /// A family outside any registry (no `agentcore_telemetry_series_overflow_total` counter),
    /// for the loom models: registry families count folds in a `Counter`, which records into the
    /// process-wide slot arena, and loom objects cannot outlive one model execution.
    #[cfg(agentcore_loom)]
    #[doc(hidden)]
    pub fn standalone(
        name: &str,
        label_names: &[&str],
        config: M::Config,
        max_series: usize,
    ) -> Family<M> {
        let desc = Descriptor {
            name: name.into(),
            help: "".into(),
            label_names: label_names.iter().map(|l| Box::from(*l)).collect(),
            kind: M::KIND,
        };
        Family::new(Arc::new(desc), config, max_series, None)
    }

    pub(crate) fn new(
        desc: Arc<Descriptor>,
        config: M::Config,
        max_series: usize,
        overflow_family: Option<Family<Counter>>,
    ) -> Family<M> {
        Family {
            inner: Arc::new(FamilyInner {
                desc,
                config,
                shards: (0..SHARDS).map(|_| RcuCell::default()).collect(),
                hasher: new_hasher(),
                writer: Mutex::new(()),
                len: AtomicUsize::new(0),
                generation: AtomicU64::new(0),
                max_series: max_series.max(1),
                overflow: OnceLock::new(),
                overflowed: AtomicU64::new(0),
                overflow_counter: OnceLock::new(),
                overflow_family,
                sorted: Mutex::new(SortedCache {
                    generation: u64::MAX,
                    series: Vec::new(),
                }),
            }),
        }
    }

    pub(crate) fn descriptor(&self) -> &Descriptor {
        &self.inner.desc
    }

    /// The family's name.
    pub fn name(&self) -> &str {
        &self.inner.desc.name
    }

    /// The family's label names.
    pub fn label_names(&self) -> &[Box<str>] {
        &self.inner.desc.label_names
    }

    /// The metric configuration shared by every series (buckets, summary settings, or `()`).
    pub fn config(&self) -> &M::Config {
        &self.inner.config
    }

    /// The number of series (the overflow series excluded).
    pub fn len(&self) -> usize {
        self.inner.len.load(Relaxed)
    }

    /// Whether the family has no series.
    pub fn is_empty(&self) -> bool {
        self.len() == 0 && self.inner.overflow.get().is_none()
    }

    /// The cardinality cap.
    pub fn max_series(&self) -> usize {
        self.inner.max_series
    }

    /// How many lookups were folded into the overflow series because the cap was reached.
    pub fn overflowed(&self) -> u64 {
        self.inner.overflowed.load(Relaxed)
    }

    #[inline]
    fn hash<S: AsRef<str>>(&self, values: &[S]) -> u64 {
        let mut h = self.inner.hasher.build_hasher();
        for v in values {
            let v = v.as_ref();
            h.write_usize(v.len());
            h.write(v.as_bytes());
        }
        h.finish()
    }

    #[inline(always)]
    fn shard(&self, hash: u64) -> &RcuCell<ShardMap<M>> {
        // Bits 32..37: independent of the low bits the map uses for its slot and of the top
        // bits it uses for its control bytes.
        &self.inner.shards[(hash >> 32) as usize % SHARDS]
    }

    /// The series for `values`, created if it does not exist (or the overflow series once the
    /// family is full). Looking up an existing series allocates nothing and takes no lock.
    ///
    /// Errors with [`Error::WrongLabelCount`] when `values` has the wrong length.
    #[inline]
    pub fn with_label_values<S: AsRef<str>>(
        &self,
        values: &[S],
    ) -> Result<SeriesRef<'_, M>, Error> {
        let expected = self.inner.desc.label_names.len();
        if values.len() != expected {
            return Err(Error::WrongLabelCount {
                expected,
                got: values.len(),
            });
        }
        let hash = self.hash(values);
        let pin = Pin::current();
        let found = self
            .shard(hash)
            .load(&pin)
            .get(&hash)
            .and_then(|bucket| bucket.iter().find(|s| s.matches(values)))
            .map(|s| &s.metric as *const M);
        match found {
            Some(metric) => Ok(SeriesRef {
                _pin: Some(pin),
                metric,
                _family: PhantomData,
            }),
            None => {
                drop(pin);
                self.insert_slow(hash, values)
            }
        }
    }

    /// Like [`Family::with_label_values`], but returns an owned handle to keep (one reference
    /// count increment).
    pub fn get_or_create<S: AsRef<str>>(&self, values: &[S]) -> Result<M, Error> {
        self.with_label_values(values).map(|s| (*s).clone())
    }

    /// The existing series for `values`, without creating it.
    pub fn get<S: AsRef<str>>(&self, values: &[S]) -> Option<M> {
        if values.len() != self.inner.desc.label_names.len() {
            return None;
        }
        let hash = self.hash(values);
        let pin = Pin::current();
        let bucket = self.shard(hash).load(&pin).get(&hash)?;
        bucket
            .iter()
            .find(|s| s.matches(values))
            .map(|s| s.metric.clone())
    }

    #[cold]
    #[inline(never)]
    fn insert_slow<S: AsRef<str>>(
        &self,
        hash: u64,
        values: &[S],
    ) -> Result<SeriesRef<'_, M>, Error> {
        let inner = &*self.inner;
        if is_overflow_key(values) {
            return self.overflow_series();
        }
        if inner.len.load(Relaxed) >= inner.max_series {
            return self.fold_into_overflow();
        }
        match self.insert_locked(hash, values, || M::create(&inner.config))? {
            Insert::Full => self.fold_into_overflow(),
            // Inserted now, or by another thread while we waited for the writer mutex.
            Insert::Added | Insert::Exists => self.with_label_values(values),
        }
    }

    /// Under the writer mutex: inserts the series for `values`, built around `metric()`, unless
    /// it exists or the family is full.
    fn insert_locked<S: AsRef<str>>(
        &self,
        hash: u64,
        values: &[S],
        metric: impl FnOnce() -> Result<M, Error>,
    ) -> Result<Insert, Error> {
        let inner = &*self.inner;
        let _writer = inner.writer.lock().unwrap_or_else(|e| e.into_inner());
        let shard = self.shard(hash);
        // Under the writer mutex the map cannot change; copy it, then unpin before replacing so
        // the old map can be freed right away.
        let pin = Pin::current();
        let current = shard.load(&pin);
        if current
            .get(&hash)
            .is_some_and(|b| b.iter().any(|s| s.matches(values)))
        {
            return Ok(Insert::Exists);
        }
        if inner.len.load(Relaxed) >= inner.max_series {
            return Ok(Insert::Full);
        }
        let series = Arc::new(self.make_series(values, metric()?));
        let mut next: ShardMap<M> = current.clone();
        drop(pin);
        next.entry(hash).or_default().push(series);
        shard.replace(next, Domain::global());
        inner.len.fetch_add(1, Relaxed);
        inner.generation.fetch_add(1, Release);
        Ok(Insert::Added)
    }

    /// Adds an existing handle as the series for `values` (the handle keeps recording as
    /// before; a scrape now exposes it). Returns `false`, changing nothing, if a series for
    /// `values` already exists, or if `values` are the overflow series' own (every value
    /// [`OVERFLOW_LABEL_VALUE`]), which are reserved for it. Subject to the cardinality cap
    /// like any new series ([`Error::ShapeMismatch`] when the family is full).
    ///
    /// ```
    /// use agentcore_telemetry::{Counter, Registry};
    ///
    /// let registry = Registry::new();
    /// let requests = Counter::new().unwrap();
    /// requests.inc();
    /// let family = registry.counter_family("requests_total", "Requests.", &[]).unwrap();
    /// assert!(family.insert_metric::<&str>(&[], requests.clone()).unwrap());
    /// assert!(registry.encode_text().contains("requests_total 1\n"));
    /// ```
    pub fn insert_metric<S: AsRef<str>>(&self, values: &[S], metric: M) -> Result<bool, Error> {
        let expected = self.inner.desc.label_names.len();
        if values.len() != expected {
            return Err(Error::WrongLabelCount {
                expected,
                got: values.len(),
            });
        }
        if is_overflow_key(values) {
            // A regular series under these values would be exposed beside the overflow series
            // with the very same labels: a duplicate series.
            return Ok(false);
        }
        let hash = self.hash(values);
        match self.insert_locked(hash, values, || Ok(metric))? {
            Insert::Added => Ok(true),
            Insert::Exists => Ok(false),
            Insert::Full => Err(Error::ShapeMismatch {
                name: self.inner.desc.name.to_string(),
                detail: format!("the family is full ({} series)", self.inner.max_series),
            }),
        }
    }

    fn make_series<S: AsRef<str>>(&self, values: &[S], metric: M) -> Series<M> {
        let mut rendered = String::new();
        render_labels(&mut rendered, &self.inner.desc.label_names, values);
        Series {
            values: values.iter().map(|v| Box::from(v.as_ref())).collect(),
            rendered: rendered.into_boxed_str(),
            metric,
        }
    }

    fn overflow_series(&self) -> Result<SeriesRef<'_, M>, Error> {
        let series = match self.inner.overflow.get() {
            Some(s) => s,
            None => {
                let values = vec![OVERFLOW_LABEL_VALUE; self.inner.desc.label_names.len()];
                let created = Arc::new(self.make_series(&values, M::create(&self.inner.config)?));
                let _ = self.inner.overflow.set(created);
                self.inner.generation.fetch_add(1, Release);
                self.inner.overflow.get().expect("set above")
            }
        };
        Ok(SeriesRef {
            _pin: None,
            metric: &series.metric,
            _family: PhantomData,
        })
    }

    fn fold_into_overflow(&self) -> Result<SeriesRef<'_, M>, Error> {
        let inner = &*self.inner;
        inner.overflowed.fetch_add(1, Relaxed);
        let counter = inner.overflow_counter.get_or_init(|| {
            inner
                .overflow_family
                .as_ref()
                .and_then(|f| f.get_or_create(&[&*inner.desc.name]).ok())
        });
        if let Some(counter) = counter {
            counter.inc();
        }
        self.overflow_series()
    }

    /// Removes the series for `values` (for example an agent that finished); returns whether it
    /// existed. Handles to it keep working but are no longer exposed.
    pub fn remove<S: AsRef<str>>(&self, values: &[S]) -> bool {
        if values.len() != self.inner.desc.label_names.len() {
            return false;
        }
        let hash = self.hash(values);
        let inner = &*self.inner;
        let _writer = inner.writer.lock().unwrap_or_else(|e| e.into_inner());
        let shard = self.shard(hash);
        let pin = Pin::current();
        let current = shard.load(&pin);
        let Some(bucket) = current.get(&hash) else {
            return false;
        };
        if !bucket.iter().any(|s| s.matches(values)) {
            return false;
        }
        let mut next: ShardMap<M> = current.clone();
        drop(pin);
        if let Some(bucket) = next.get_mut(&hash) {
            bucket.retain(|s| !s.matches(values));
            if bucket.is_empty() {
                next.remove(&hash);
            }
        }
        shard.replace(next, Domain::global());
        inner.len.fetch_sub(1, Relaxed);
        inner.generation.fetch_add(1, Release);
        true
    }

    /// Removes every series for which `keep` returns false; returns how many were removed.
    pub fn retain(&self, mut keep: impl FnMut(&[Box<str>], &M) -> bool) -> usize {
        let inner = &*self.inner;
        let _writer = inner.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut removed = 0;
        for shard in inner.shards.iter() {
            let pin = Pin::current();
            let current = shard.load(&pin);
            let mut next: ShardMap<M> = ShardMap::default();
            let mut shard_removed = 0;
            for (h, bucket) in current.iter() {
                let kept: SmallVec<[Arc<Series<M>>; 1]> = bucket
                    .iter()
                    .filter(|s| {
                        let k = keep(&s.values, &s.metric);
                        shard_removed += usize::from(!k);
                        k
                    })
                    .cloned()
                    .collect();
                if !kept.is_empty() {
                    next.insert(*h, kept);
                }
            }
            drop(pin);
            if shard_removed == 0 {
                continue;
            }
            shard.replace(next, Domain::global());
            removed += shard_removed;
        }
        if removed > 0 {
            inner.len.fetch_sub(removed, Relaxed);
            inner.generation.fetch_add(1, Release);
        }
        removed
    }

    /// Removes every series.
    pub fn clear(&self) {
        self.retain(|_, _| false);
    }

    /// Calls `f` for every series, sorted by label values, the overflow series last.
    ///
    /// Used by scrapes: the sorted order is cached and only rebuilt when series were added or
    /// removed, so a steady-state scrape neither sorts nor allocates here.
    pub fn for_each_series(&self, mut f: impl FnMut(&Series<M>)) {
        let inner = &*self.inner;
        let mut cache = inner.sorted.lock().unwrap_or_else(|e| e.into_inner());
        let generation = inner.generation.load(Acquire);
        if cache.generation != generation {
            cache.series.clear();
            let pin = Pin::current();
            for shard in inner.shards.iter() {
                cache
                    .series
                    .extend(shard.load(&pin).values().flatten().cloned());
            }
            drop(pin);
            cache
                .series
                .sort_unstable_by(|a, b| a.values.cmp(&b.values));
            if let Some(overflow) = inner.overflow.get() {
                cache.series.push(overflow.clone());
            }
            cache.generation = generation;
        }
        for series in &cache.series {
            f(series);
        }
    }
}

impl<M: Metric> std::fmt::Debug for Family<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Family")
            .field("name", &self.inner.desc.name)
            .field("kind", &M::KIND)
            .field("label_names", &self.inner.desc.label_names)
            .field("series", &self.len())
            .finish()
    }
}
