//! [`Family`]: the series of one metric, keyed by label values, with a cardinality cap.
//!
//! # Structure
//! A family keeps its series in one open-addressing hash table (linear probing, at most half
//! full). A slot is a *tag* (the label values' 64-bit hash; 0 = empty, 1 = removed) and a pointer
//! to the series. A lookup hashes the label values (one folded multiply per value of its length
//! and first and last bytes, seeded per family: see `LabelHasher` for why not a general-purpose
//! hasher), takes a reclamation guard (an era stored in a slot of the
//! thread's record and a compiler fence: no lock, no atomic read-modify-write, no allocation; see
//! the crate-private `sync::era` module), probes from the hash, and for each slot whose tag matches compares the
//! label values exactly — each value's length and first and last eight bytes (which determine a
//! value of up to 16 bytes), then the full text only for longer values — so two different
//! label-value lists never share a series even when their hashes collide.
//!
//! Inserting or removing a series (the cold path) takes the family's writer mutex. An insert
//! writes the series into a free slot in place (no copy of the table); a removal marks the slot
//! removed and retires the series. When live and removed slots reach half the table, the writer
//! builds a new table (three to six slots per live series), publishes it and retires the old one. Readers
//! never wait for writers; a retired series or table is freed once no reader's era can hold it.
//!
//! Before all this, a lookup asks the thread's lookup cache (`lookup_cache`): a series this
//! thread found recently is returned from there, protected by the cache's long-lived guard,
//! with no guard of its own and no probe; a miss probes the table under that guard and caches
//! what it finds. The loom models' families, in domains of their own, have no cache.
//!
//! The parts live beside this file: the table in `table`, one series and its label values in
//! `series`, the hashing and the compare keys in `label_hash`, the handle a lookup returns in
//! `series_ref`. The invariants and orderings below
//! govern all of them; their SAFETY comments cite them as "family invariant N".
//!
//! # Invariants
//! 1. A label-value list maps to at most one live series: inserts look under the writer mutex
//!    before inserting.
//! 2. Only the holder of the writer mutex changes the table or replaces it. It publishes a slot's
//!    series pointer before its tag, marks a removed slot's tag before clearing its pointer, and
//!    retires a series or a table only after it is unreachable from the current table.
//! 3. At least half of every table's slots are empty, so every probe ends (and is also bounded by
//!    the table's length).
//! 4. `len` counts the live series (the overflow series excluded) and never exceeds `max_series`;
//!    once it is reached, new label sets are folded into the overflow series, whose every label
//!    value is [`OVERFLOW_LABEL_VALUE`], and each fold is counted.
//! 5. `generation` changes after every insert is published and before every removed series is
//!    retired, so a scrape's sorted cache is rebuilt whenever the set of series changed, and a
//!    cache that is current only holds series its reader's guard protects (see
//!    [`Family::for_each_series`]); and a lookup-cache entry made before it changed no longer
//!    matches (`lookup_cache`, invariant 5).
//! 6. Every series and table is owned by exactly one of: the current table (a live series), the
//!    family (the current table, the overflow series), the reclamation domain (retired, waiting),
//!    or nobody (freed).
//!
//! # Memory ordering
//! Tags, series pointers and the table pointer are stored with `Release` and loaded with
//! `Acquire`, so a reader that sees a tag sees its series fully built, and a reader that sees a
//! table sees its slots. Reclamation safety is argued in the crate-private `sync::era` module: a reader
//! dereferences a table or a series only after `Guard::validate` confirmed its era.
//! `len` and `generation` are written under the writer mutex; readers use `len` as a hint (to
//! skip the mutex when the family is full) and `generation` with `Acquire` (the sorted cache).

use std::marker::PhantomData;
use std::ptr::{self, NonNull};
use std::sync::atomic::{Ordering::Acquire, Ordering::Relaxed, Ordering::Release};
use std::sync::{Arc, OnceLock};

pub use super::series::{LabelValues, Series};
use super::series_ref::Hold;
pub use super::series_ref::SeriesRef;
pub(crate) use crate::primitives::unix_micros_now;

use super::label_hash::{as_strs, Key, LabelHasher, KEPT};
use super::table::{tag_of, Table, EMPTY, MIN_SLOTS, REMOVED};
use super::{Descriptor, Metric};
// Through the crate's shim, so the loom models explore the family's real code: `std` normally,
// loom's primitives under `--cfg agentcore_loom` (see `crate::sync`). The `OnceLock`s stay `std`:
// they are only initialised with plain moves (no loom operation inside), so they cannot block a
// loom thread, and loom does not explore them.
#[cfg(not(agentcore_loom))]
use super::lookup_cache;
use crate::sync::era::{assert_not_freed, Domain, Guard};
use crate::sync::{AtomicPtr, AtomicU64, AtomicUsize, Mutex};
use crate::{Counter, Error, Exemplars};

// `Family::generation`, for the `metrics` bridge (a child module: it reads the private field).
mod generation;
// `Family::with_named_labels`: the series by label name.
mod named;
// The scrape's sorted series cache (`for_each_series`).
mod sorted;

use sorted::{SeriesPtr, SortedCache};

/// The label value every label of the overflow series carries.
pub const OVERFLOW_LABEL_VALUE: &str = "__overflow__";

/// The default cardinality cap of a family: label sets beyond it go to the overflow series.
pub const DEFAULT_MAX_SERIES: usize = 16_384;

/// The share of the slot arena one family may take: its cardinality cap is lowered so that its
/// series' words stay within `capacity / ARENA_SHARE` (at the default 2^26-word arena, 1 024
/// summaries), so no single family can exhaust the arena for every other metric of the process.
pub const ARENA_SHARE: usize = 16;

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
    /// The family's id in the threads' lookup caches (`lookup_cache`, whose guard is of the
    /// global domain: outside the loom models, which have no lookup cache, every family is in
    /// it).
    #[cfg(not(agentcore_loom))]
    id: u64,
    pub(crate) desc: Arc<Descriptor>,
    pub(crate) config: M::Config,
    table: AtomicPtr<Table<M>>,
    hasher: LabelHasher,
    domain: &'static Domain,
    /// Held by writers; counts the table's used (live or removed) slots.
    writer: Mutex<usize>,
    len: AtomicUsize,
    /// Invariant 5. Outside the loom models every value it takes is new to the process (drawn
    /// from the counter family ids come from): no two families ever share one, so a lookup-cache
    /// entry's generation also names its family (`lookup_cache`, invariant 5).
    generation: AtomicU64,
    max_series: usize,
    overflow: OnceLock<Box<Series<M>>>,
    overflowed: AtomicU64,
    /// The registry's own `agentcore_telemetry_series_overflow_total{family}` series for this
    /// family, created on the first overflow.
    overflow_counter: OnceLock<Option<Counter>>,
    overflow_family: Option<Family<Counter>>,
    /// One of the crate's own families: series come from [`Metric::create_internal`].
    internal: bool,
    /// The exemplars its series keep ([`Metric::create_with_exemplars`]).
    exemplars: Exemplars,
    /// Scrape-side cache of the series sorted by label values; recorders never touch it.
    sorted: Mutex<SortedCache<M>>,
}

impl<M: Metric> Drop for FamilyInner<M> {
    fn drop(&mut self) {
        let table = self.table.load(Acquire);
        // SAFETY: the family is being dropped: no reader borrows it any more (a `SeriesRef`
        // borrows its family), and the current table came from `Box::into_raw`. Its live series
        // are owned by it (invariant 6) and dropped here once; retired ones belong to the domain.
        unsafe {
            let table = Box::from_raw(table);
            for series in table.live() {
                drop(Box::from_raw(series));
            }
        }
    }
}

/// What [`Family::insert_locked`] did.
enum Insert {
    Added,
    Exists,
    Full,
}

/// Whether `values` are the overflow series' label values (every one [`OVERFLOW_LABEL_VALUE`]).
fn is_overflow_key<S: AsRef<str>>(values: &[S]) -> bool {
    !values.is_empty() && values.iter().all(|v| v.as_ref() == OVERFLOW_LABEL_VALUE)
}

impl<M: Metric> Family<M> {
    /// A family outside any registry, in a reclamation domain of its own, for the loom models:
    /// registry families count folds in a `Counter`, which records into the process-wide slot
    /// arena, and loom objects cannot outlive one model execution.
    #[cfg(all(test, agentcore_loom))]
    pub(crate) fn standalone(
        name: &str,
        label_names: &[&str],
        config: M::Config,
        max_series: usize,
        domain: &'static Domain,
    ) -> Family<M> {
        let desc = Descriptor {
            name: name.into(),
            help: "".into(),
            label_names: label_names.iter().map(|l| Box::from(*l)).collect(),
            kind: M::KIND,
        };
        Family::new_in(
            Arc::new(desc),
            config,
            max_series,
            None,
            domain,
            false,
            Exemplars::Off,
        )
    }

    pub(crate) fn new(
        desc: Arc<Descriptor>,
        config: M::Config,
        max_series: usize,
        overflow_family: Option<Family<Counter>>,
        exemplars: Exemplars,
    ) -> Family<M> {
        Family::new_in(
            desc,
            config,
            max_series,
            overflow_family,
            Domain::global(),
            false,
            exemplars,
        )
    }

    /// One of the crate's own families (the registry's overflow counters): its series are
    /// created with [`Metric::create_internal`], which does not fail on an exhausted arena.
    pub(crate) fn new_internal(
        desc: Arc<Descriptor>,
        config: M::Config,
        max_series: usize,
    ) -> Family<M> {
        Family::new_in(
            desc,
            config,
            max_series,
            None,
            Domain::global(),
            true,
            Exemplars::Off,
        )
    }

    fn new_in(
        desc: Arc<Descriptor>,
        config: M::Config,
        max_series: usize,
        overflow_family: Option<Family<Counter>>,
        domain: &'static Domain,
        internal: bool,
        exemplars: Exemplars,
    ) -> Family<M> {
        let table = Box::new(Table::new(MIN_SLOTS, domain.era()));
        let words = M::arena_words(&config);
        let mut max_series = max_series.max(1);
        if words > 0 {
            let share = crate::sync::slots::global().map_or(0, |a| a.capacity() / ARENA_SHARE);
            max_series = max_series.min(share / words.next_power_of_two()).max(1);
        }
        Family {
            inner: Arc::new(FamilyInner {
                #[cfg(not(agentcore_loom))]
                id: {
                    assert!(
                        ptr::eq(domain, Domain::global()),
                        "the lookup cache's domain"
                    );
                    lookup_cache::next_family_id()
                },
                desc,
                config,
                table: AtomicPtr::new(Box::into_raw(table)),
                hasher: LabelHasher::new(),
                domain,
                writer: Mutex::new(0),
                len: AtomicUsize::new(0),
                generation: AtomicU64::new(FamilyInner::<M>::first_generation()),
                max_series,
                overflow: OnceLock::new(),
                overflowed: AtomicU64::new(0),
                overflow_counter: OnceLock::new(),
                overflow_family,
                internal,
                exemplars,
                sorted: Mutex::new(SortedCache::stale()),
            }),
        }
    }

    pub(crate) fn descriptor(&self) -> &Descriptor {
        &self.inner.desc
    }

    /// The family's name.
    ///
    /// ```
    /// use agentcore_telemetry::Registry;
    ///
    /// let registry = Registry::new();
    /// let calls = registry.counter_family("tool_calls_total", "Tool calls.", &["tool"]).unwrap();
    /// assert_eq!(calls.name(), "tool_calls_total");
    /// ```
    pub fn name(&self) -> &str {
        &self.inner.desc.name
    }

    /// The family's label names.
    ///
    /// ```
    /// use agentcore_telemetry::Registry;
    ///
    /// let registry = Registry::new();
    /// let calls = registry.counter_family("calls_total", "Calls.", &["tool", "status"]).unwrap();
    /// let names: Vec<&str> = calls.label_names().iter().map(|l| &**l).collect();
    /// assert_eq!(names, ["tool", "status"]);
    /// ```
    pub fn label_names(&self) -> &[Box<str>] {
        &self.inner.desc.label_names
    }

    /// The metric configuration shared by every series (buckets, summary settings, or `()`).
    ///
    /// ```
    /// use agentcore_telemetry::{Buckets, Registry};
    ///
    /// let registry = Registry::new();
    /// let buckets = Buckets::new(vec![0.1, 1.0]).unwrap();
    /// let latency = registry.histogram_family("latency_seconds", "Latency.", &["tool"], buckets.clone()).unwrap();
    /// assert_eq!(latency.config(), &buckets);
    /// ```
    pub fn config(&self) -> &M::Config {
        &self.inner.config
    }

    /// The number of series (the overflow series excluded).
    ///
    /// ```
    /// use agentcore_telemetry::Registry;
    ///
    /// let registry = Registry::new();
    /// let calls = registry.counter_family("calls_total", "Calls.", &["tool"]).unwrap();
    /// calls.with_label_values(&["search"]).unwrap().inc();
    /// calls.with_label_values(&["search"]).unwrap().inc(); // the same series
    /// calls.with_label_values(&["fetch"]).unwrap().inc();
    /// assert_eq!(calls.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.inner.len.load(Relaxed)
    }

    /// Whether the family has no series, the overflow series included: once label sets past
    /// the cap have folded into it, it stays for the family's life ([`Family::clear`] and
    /// [`Family::remove`] leave it), so the family is never empty again.
    ///
    /// ```
    /// use agentcore_telemetry::Registry;
    ///
    /// let registry = Registry::new();
    /// let calls = registry.counter_family("calls_total", "Calls.", &["tool"]).unwrap();
    /// assert!(calls.is_empty());
    /// calls.with_label_values(&["search"]).unwrap();
    /// assert!(!calls.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0 && self.inner.overflow.get().is_none()
    }

    /// The cardinality cap: the one asked for at registration, lowered if needed so that the
    /// family's series fit in its share of the slot arena (see [`ARENA_SHARE`]).
    ///
    /// ```
    /// use agentcore_telemetry::registry::{FamilyOptions, DEFAULT_MAX_SERIES};
    /// use agentcore_telemetry::{Counter, Registry};
    ///
    /// let registry = Registry::new();
    /// let calls = registry.counter_family("calls_total", "Calls.", &["tool"]).unwrap();
    /// assert_eq!(calls.max_series(), DEFAULT_MAX_SERIES);
    /// let options = FamilyOptions { max_series: 100, ..FamilyOptions::default() };
    /// let users = registry.register::<Counter>("logins_total", "Logins.", &["user"], (), options).unwrap();
    /// assert_eq!(users.max_series(), 100);
    /// ```
    pub fn max_series(&self) -> usize {
        self.inner.max_series
    }

    /// How many lookups were folded into the overflow series because the cap was reached.
    ///
    /// ```
    /// use agentcore_telemetry::registry::FamilyOptions;
    /// use agentcore_telemetry::{Counter, Registry};
    ///
    /// let registry = Registry::new();
    /// let options = FamilyOptions { max_series: 1, ..FamilyOptions::default() };
    /// let users = registry.register::<Counter>("logins_total", "Logins.", &["user"], (), options).unwrap();
    /// users.with_label_values(&["ann"]).unwrap().inc();
    /// users.with_label_values(&["bob"]).unwrap().inc(); // over the cap: folded into the overflow series
    /// assert_eq!((users.len(), users.overflowed()), (1, 1));
    /// assert!(registry.encode_text().contains("logins_total{user=\"__overflow__\"} 1\n"));
    /// ```
    pub fn overflowed(&self) -> u64 {
        self.inner.overflowed.load(Relaxed)
    }

    #[inline(always)]
    fn hash<S: AsRef<str>>(&self, values: &[S]) -> u64 {
        self.inner.hasher.hash(values)
    }

    /// The live series for `values` in the current table, found under `guard`.
    #[inline(always)]
    fn find<S: AsRef<str>>(
        &self,
        guard: &mut Guard<'_>,
        hash: u64,
        values: &[S],
    ) -> Option<*const Series<M>> {
        let tag = tag_of(hash);
        'retry: loop {
            let table = self.inner.table.load(Acquire);
            if !guard.validate() {
                continue;
            }
            assert_not_freed(table);
            // SAFETY: validated under `guard`, which keeps the table from being freed (era.rs).
            let table = unsafe { &*table };
            let mut i = hash as usize & table.mask;
            for _ in 0..table.slots.len() {
                // SAFETY: `i` is masked with `mask`, and a table has `mask + 1` slots
                // (`Table::new`), so it is in range (no bounds check on the probe).
                let slot = unsafe { table.slots.get_unchecked(i) };
                let t = slot.tag.load(Acquire);
                if t == EMPTY {
                    return None;
                }
                if t == tag {
                    let series = slot.series.load(Acquire);
                    if !guard.validate() {
                        continue 'retry;
                    }
                    assert_not_freed(series);
                    // SAFETY: validated under `guard`; null when the slot was just emptied.
                    if let Some(s) = unsafe { series.as_ref() } {
                        if s.matches(values) {
                            return Some(series);
                        }
                    }
                }
                i = (i + 1) & table.mask;
            }
            return None;
        }
    }

    /// The series for `values`, created if it does not exist (or the overflow series once the
    /// family is full). Looking up an existing series allocates nothing and takes no lock.
    ///
    /// Errors with [`Error::WrongLabelCount`] when `values` has the wrong length. Each value is
    /// read (`as_ref`, once) before the count is checked: the count check is on the miss path
    /// only, since a cached series never matches a list of another length.
    ///
    /// ```
    /// use agentcore_telemetry::{Error, Registry};
    ///
    /// let registry = Registry::new();
    /// let calls = registry.counter_family("calls_total", "Calls.", &["tool", "status"]).unwrap();
    /// calls.with_label_values(&["search", "ok"]).unwrap().inc();
    /// calls.with_label_values(&["search", "ok"]).unwrap().inc_by(2);
    /// assert_eq!(calls.get(&["search", "ok"]).unwrap().get(), 3.0);
    /// let err = calls.with_label_values(&["search"]).unwrap_err();
    /// assert_eq!(err, Error::WrongLabelCount { expected: 2, got: 1 });
    /// ```
    // Always inlined: called out of line, the lookup paid about 30 instructions more for the call,
    // its register saves and the `Result` returned through memory (callgrind, both profiles).
    #[inline(always)]
    pub fn with_label_values<S: AsRef<str>>(
        &self,
        values: &[S],
    ) -> Result<SeriesRef<'_, M>, Error> {
        let mut keys = [Key::ZERO; KEPT];
        let hash = self.inner.hasher.hash_keys(values, &mut keys);
        // No count check before a hit: `matches_keys` takes only a series with as many values as
        // `values`, and every series of the family has one per label name. A miss checks.
        #[cfg(not(agentcore_loom))]
        {
            let generation = &self.inner.generation;
            // SAFETY: `generation` is this family's; only this family fills entries under its id
            // and generations (`with_label_values_miss`).
            let hit = unsafe { lookup_cache::hit::<M, S>(generation, hash, &keys, values) };
            match hit {
                Some((series, cached)) => Ok(SeriesRef {
                    // SAFETY: `series` is live while the cache's guard that `cached` holds
                    // lives (`lookup_cache`, invariants 1 and 2), so reading its field here is
                    // sound; the `Deref` later relies on the same guard, kept in `_hold`.
                    metric: NonNull::from(unsafe { &(*series).metric }),
                    _hold: Hold::cached(cached),
                    _family: PhantomData,
                }),
                // A short list's copy, not the caller's slice (`cold_copy`).
                None if values.len() <= KEPT => self
                    .with_label_values_miss(
                        hash,
                        &super::label_hash::cold_copy(values)[..values.len()],
                    )
                    .map_err(|e| *e),
                None => self.with_label_values_miss(hash, values).map_err(|e| *e),
            }
        }
        // The loom models' families live in domains of their own: no lookup cache.
        #[cfg(agentcore_loom)]
        self.check_count(values.len())
            .and_then(|()| self.with_label_values_guarded(hash, values))
    }

    /// `Err(WrongLabelCount)` unless there are as many values (`got`) as label names.
    fn check_count(&self, got: usize) -> Result<(), Error> {
        let expected = self.inner.desc.label_names.len();
        match got == expected {
            true => Ok(()),
            false => Err(Error::WrongLabelCount { expected, got }),
        }
    }

    /// [`Family::with_label_values`] past a lookup-cache miss: the probe under the cache's
    /// guard, which caches what it finds; or, when the cache cannot be used, under a guard of
    /// its own.
    #[cfg(not(agentcore_loom))]
    #[inline(never)]
    fn with_label_values_miss<S: AsRef<str>>(
        &self,
        hash: u64,
        values: &[S],
    ) -> Result<SeriesRef<'_, M>, Box<Error>> {
        self.check_count(values.len())?;
        // SAFETY: as in `with_label_values`; `find` returns a series of this family validated
        // under the guard it is given.
        let fill = unsafe {
            lookup_cache::fill::<M>(self.inner.id, &self.inner.generation, hash, |guard| {
                self.find(guard, hash, values)
            })
        };
        match fill {
            lookup_cache::Fill::Found(series, cached) => Ok(SeriesRef {
                // SAFETY: as for a hit.
                metric: NonNull::from(unsafe { &(*series).metric }),
                _hold: Hold::cached(cached),
                _family: PhantomData,
            }),
            lookup_cache::Fill::Absent => self.insert_slow(values).map_err(Box::new),
            lookup_cache::Fill::Unavailable => self
                .with_label_values_guarded(hash, values)
                .map_err(Box::new),
        }
    }

    /// The lookup under a guard of its own (no lookup cache).
    #[inline(always)]
    fn with_label_values_guarded<S: AsRef<str>>(
        &self,
        hash: u64,
        values: &[S],
    ) -> Result<SeriesRef<'_, M>, Error> {
        let mut guard = self.inner.domain.guard();
        match self.find(&mut guard, hash, values) {
            Some(series) => Ok(SeriesRef {
                // SAFETY: `series` was found under `guard`, which keeps it live; the `Deref`
                // later relies on the same guard, kept in `_hold`.
                metric: NonNull::from(unsafe { &(*series).metric }),
                _hold: Hold::guard(guard),
                _family: PhantomData,
            }),
            None => {
                drop(guard);
                self.insert_slow(values)
            }
        }
    }

    /// Like [`Family::with_label_values`], but returns an owned handle to keep (one reference
    /// count increment).
    ///
    /// ```
    /// use agentcore_telemetry::Registry;
    ///
    /// let registry = Registry::new();
    /// let calls = registry.counter_family("calls_total", "Calls.", &["tool"]).unwrap();
    /// let search = calls.get_or_create(&["search"]).unwrap(); // a `Counter`, kept for the hot path
    /// search.inc();
    /// search.inc();
    /// assert_eq!(calls.get(&["search"]).unwrap().get(), 2.0);
    /// ```
    pub fn get_or_create<S: AsRef<str>>(&self, values: &[S]) -> Result<M, Error> {
        self.with_label_values(values).map(|s| (*s).clone())
    }

    /// The existing series for `values`, without creating it: the overflow series too, by its
    /// label values (every one [`OVERFLOW_LABEL_VALUE`]), once something has folded into it.
    /// Each value is read once (`as_ref`), as by the lookups that create series.
    ///
    /// ```
    /// use agentcore_telemetry::registry::{FamilyOptions, OVERFLOW_LABEL_VALUE};
    /// use agentcore_telemetry::{Counter, Registry};
    ///
    /// let registry = Registry::new();
    /// let calls = registry.counter_family("calls_total", "Calls.", &["tool"]).unwrap();
    /// assert!(calls.get(&["search"]).is_none());
    /// assert!(calls.is_empty()); // `get` created nothing
    /// calls.with_label_values(&["search"]).unwrap().inc();
    /// assert_eq!(calls.get(&["search"]).map(|c| c.get()), Some(1.0));
    ///
    /// let options = FamilyOptions { max_series: 1, ..FamilyOptions::default() };
    /// let users = registry.register::<Counter>("logins_total", "Logins.", &["user"], (), options).unwrap();
    /// assert!(users.get(&[OVERFLOW_LABEL_VALUE]).is_none()); // nothing folded yet
    /// users.with_label_values(&["ann"]).unwrap().inc();
    /// users.with_label_values(&["bob"]).unwrap().inc(); // over the cap: folded
    /// assert_eq!(users.get(&[OVERFLOW_LABEL_VALUE]).map(|c| c.get()), Some(1.0));
    /// ```
    pub fn get<S: AsRef<str>>(&self, values: &[S]) -> Option<M> {
        if values.len() != self.inner.desc.label_names.len() {
            return None;
        }
        // Read once: the hash and the comparisons read the caller's `as_ref` each otherwise,
        // and one that answers differently from one call to the next looked up one value
        // under another's hash.
        let read = as_strs(values);
        let values = &read[..];
        if is_overflow_key(values) {
            // Not in the table (`overflow_series`), but exposed under these values.
            return self.inner.overflow.get().map(|s| s.metric.clone());
        }
        let hash = self.hash(values);
        let mut guard = self.inner.domain.guard();
        let series = self.find(&mut guard, hash, values)?;
        // SAFETY: validated under `guard`, which is still held.
        Some(unsafe { (*series).metric.clone() })
    }

    /// Inserts the series for `values` (or finds the one another thread inserted meanwhile).
    ///
    /// Each value is read once, here (see `label_hash::as_strs`), and the hash is taken again from what
    /// was read: the caller's `as_ref` is called again by every step below otherwise, and one
    /// that answers differently from one call to the next (a logic error of the caller's, as an
    /// inconsistent `Hash` is for a `HashMap`) made this loop for ever (the insert found the
    /// series the probe then did not match), or inserted a series under another value's hash,
    /// which later lookups of its own values missed and inserted again: two series with the
    /// same labels in the exposition (found by review). Now it ends, with one series for what
    /// it read. Off the hot path.
    #[cold]
    #[inline(never)]
    fn insert_slow<S: AsRef<str>>(&self, values: &[S]) -> Result<SeriesRef<'_, M>, Error> {
        let read = as_strs(values);
        let values = &read[..];
        let hash = self.hash(values);
        let inner = &*self.inner;
        if is_overflow_key(values) {
            return self.overflow_series();
        }
        loop {
            if inner.len.load(Relaxed) >= inner.max_series {
                return self.fold_into_overflow();
            }
            let create = || match inner.internal {
                true => M::create_internal(&inner.config),
                false => M::create_with_exemplars(&inner.config, inner.exemplars),
            };
            match self.insert_locked(hash, values, create) {
                // The arena is exhausted (other families took it): fold, counted, rather than
                // lose the record; an error only if the overflow series cannot exist either.
                Ok(Insert::Full) | Err(Error::SlotArenaExhausted) => {
                    return self.fold_into_overflow()
                }
                Ok(Insert::Added | Insert::Exists) => {}
                Err(e) => return Err(e),
            }
            // Inserted now, or by another thread while we waited for the writer mutex; unless a
            // removal raced us, it is there.
            let mut guard = inner.domain.guard();
            if let Some(series) = self.find(&mut guard, hash, values) {
                return Ok(SeriesRef {
                    // SAFETY: as in `with_label_values`.
                    metric: NonNull::from(unsafe { &(*series).metric }),
                    _hold: Hold::guard(guard),
                    _family: PhantomData,
                });
            }
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
        let values = as_strs(values);
        let values = &values[..];
        let inner = &*self.inner;
        let mut used = inner.writer.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: only the holder of the writer mutex (us) replaces or retires the table.
        let mut table = unsafe { &*inner.table.load(Acquire) };
        if table.find_locked(hash, values).is_some() {
            return Ok(Insert::Exists);
        }
        if inner.len.load(Relaxed) >= inner.max_series {
            return Ok(Insert::Full);
        }
        let series = Box::into_raw(Box::new(self.make_series(hash, values, metric()?)));
        if (*used + 1) * 2 > table.slots.len() {
            table = self.rebuild();
            *used = inner.len.load(Relaxed);
        }
        if table.put(hash, series) {
            *used += 1;
        }
        inner.len.fetch_add(1, Relaxed);
        inner.next_generation();
        Ok(Insert::Added)
    }

    /// Under the writer mutex: publishes a table sized for the live series (three to six slots each)
    /// holding the current table's, retires the current one, and returns the new table.
    ///
    /// It reads the current table itself, through a local reference, rather than take it as a
    /// `&Table` parameter: the retire may free the old table at once (a reclaim when the waiting
    /// list reaches its threshold and no guard holds the table, as for a writer that took none:
    /// `insert_metric`), and a reference parameter must stay valid until the call returns
    /// (Miri: "deallocating while item ... is strongly protected";
    /// `a_rebuild_whose_retire_frees_the_old_table`).
    fn rebuild(&self) -> &Table<M> {
        let inner = &*self.inner;
        let live = inner.len.load(Relaxed) + 1;
        let slots = (3 * live).next_power_of_two().max(MIN_SLOTS);
        let table = Table::new(slots, inner.domain.era());
        // SAFETY: only the holder of the writer mutex (us) replaces or retires the table; not
        // used after its retire below.
        let current = unsafe { &*inner.table.load(Acquire) };
        for series in current.live() {
            // SAFETY: a live series of the current table, under the writer mutex.
            table.put(unsafe { (*series).hash }, series);
        }
        let table = Box::into_raw(Box::new(table));
        let old = inner.table.swap(table, Release);
        // SAFETY: `old` came from `Box::into_raw`; after the swap no new reader reaches it; it is
        // retired once, here, and nothing here or in the caller reads it afterwards (the
        // caller's reference to it is replaced by the returned one); its birth was read before
        // it was published.
        unsafe { Table::retire(old, inner.domain) };
        // SAFETY: just published, and only a later writer (after us) can retire it.
        unsafe { &*table }
    }

    /// Adds an existing handle as the series for `values` (the handle keeps recording as
    /// before; a scrape now exposes it). Returns `false`, changing nothing, if a series for
    /// `values` already exists, or if `values` are the overflow series' own (every value
    /// [`OVERFLOW_LABEL_VALUE`]), which are reserved for it. Subject to the cardinality cap
    /// like any new series ([`Error::ShapeMismatch`] when the family is full). A histogram
    /// made with other buckets, or a summary with other settings, than the family's
    /// ([`Family::config`]) is refused with [`Error::ShapeMismatch`]. The handle keeps its own
    /// exemplar setting (`Counter::with_exemplars`, `Histogram::with_exemplars`), which may
    /// differ from the one the family gives the series it creates
    /// ([`FamilyOptions::exemplars`](super::FamilyOptions::exemplars)): the scrape shows the
    /// exemplars each series keeps. So does its OpenMetrics `_created`: the handle's values
    /// started from zero when it was made, not when it was adopted ([`Series::created`]).
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
        self.check_count(values.len())?;
        let config = &self.inner.config;
        if !metric.has_config(config) {
            // Every series of a family shares its configuration (`Family::config`): one `le`
            // set per histogram family, one set of quantiles per summary family.
            let detail = format!("the handle's configuration is not the family's, {config:?}");
            let name = self.inner.desc.name.to_string();
            return Err(Error::ShapeMismatch { name, detail });
        }
        // Each value read once (see `insert_slow`): the overflow check, the hash and the insert
        // read it each otherwise, and a value that answers differently from one call to the next
        // was inserted under another value's hash (a duplicate series once its own values were
        // looked up) or beside the overflow series with its labels (found by review).
        let read = as_strs(values);
        let values = &read[..];
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

    fn make_series(&self, hash: u64, values: &[&str], metric: M) -> Series<M> {
        let birth = self.inner.domain.era();
        // A counter's, histogram's or summary's values started from zero when it was made (an
        // adopted handle's before it was adopted); a gauge's or info's series has no `_created`.
        let created = metric.created_micros().unwrap_or_else(unix_micros_now);
        Series::new(
            birth,
            hash,
            &self.inner.desc.label_names,
            values,
            metric,
            created,
        )
    }

    fn overflow_series(&self) -> Result<SeriesRef<'_, M>, Error> {
        let series = match self.inner.overflow.get() {
            Some(s) => s,
            None => {
                let values = vec![OVERFLOW_LABEL_VALUE; self.inner.desc.label_names.len()];
                let hash = self.hash(&values);
                let metric = M::create_with_exemplars(&self.inner.config, self.inner.exemplars)?;
                let created = Box::new(self.make_series(hash, &values, metric));
                let _ = self.inner.overflow.set(created);
                self.inner.next_generation();
                self.inner.overflow.get().expect("set above")
            }
        };
        Ok(SeriesRef {
            _hold: Hold::family(),
            metric: NonNull::from(&series.metric),
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

    /// Under the writer mutex: empties slot `index` of `table` and retires its series.
    fn remove_locked(&self, table: &Table<M>, index: usize) {
        let inner = &*self.inner;
        let slot = &table.slots[index];
        let series = slot.series.load(Relaxed);
        slot.tag.store(REMOVED, Release);
        slot.series.store(ptr::null_mut(), Release);
        inner.len.fetch_sub(1, Relaxed);
        inner.next_generation();
        // SAFETY: `series` came from `Box::into_raw` in `insert_locked`, is unreachable from the
        // current table now, and only this removal (which found it live) retires it; its birth
        // was read before it was published.
        unsafe { Series::retire(series, inner.domain) };
    }

    /// Removes the series for `values` (for example an agent that finished); returns whether it
    /// existed. Handles to it keep working but are no longer exposed. The overflow series stays
    /// for the family's lifetime: its label values (every one [`OVERFLOW_LABEL_VALUE`]) remove
    /// nothing and return `false`. Each value is read once (`as_ref`).
    ///
    /// ```
    /// use agentcore_telemetry::Registry;
    ///
    /// let registry = Registry::new();
    /// let memory = registry.gauge_family("agent_memory_bytes", "Memory.", &["agent"]).unwrap();
    /// let handle = memory.get_or_create(&["a-1"]).unwrap();
    /// assert!(memory.remove(&["a-1"]));
    /// assert!(!memory.remove(&["a-1"])); // already gone
    /// handle.set(5.0); // still works, but no longer exposed
    /// assert!(!registry.encode_text().contains("a-1"));
    /// ```
    pub fn remove<S: AsRef<str>>(&self, values: &[S]) -> bool {
        if values.len() != self.inner.desc.label_names.len() {
            return false;
        }
        // Read once, hashed and compared as read (see `get`).
        let read = as_strs(values);
        let values = &read[..];
        let hash = self.hash(values);
        let inner = &*self.inner;
        let _writer = inner.writer.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: only the holder of the writer mutex (us) replaces or retires the table.
        let table = unsafe { &*inner.table.load(Acquire) };
        match table.find_locked(hash, values) {
            Some(index) => {
                self.remove_locked(table, index);
                true
            }
            None => false,
        }
    }

    /// Under the writer mutex, with a guard taken after locking it: the live series. The guard
    /// protects every one of them for as long as it lives (each was born before the guard's era
    /// and can only be retired by a later writer).
    fn snapshot(&self, out: &mut Vec<SeriesPtr<M>>) -> (Guard<'static>, u64) {
        let inner = &*self.inner;
        let _writer = inner.writer.lock().unwrap_or_else(|e| e.into_inner());
        let guard = inner.domain.guard();
        // SAFETY: only the holder of the writer mutex (us) replaces or retires the table.
        let table = unsafe { &*inner.table.load(Acquire) };
        out.clear();
        out.extend(table.live().map(|s| SeriesPtr(s as *const Series<M>)));
        (guard, inner.generation.load(Acquire))
    }

    /// Removes every series for which `keep` returns false; returns how many were removed.
    ///
    /// `keep` runs without any of the family's locks held: it may look up, create or remove
    /// series of this family. If it panics, nothing is removed.
    ///
    /// ```
    /// use agentcore_telemetry::Registry;
    ///
    /// let registry = Registry::new();
    /// let memory = registry.gauge_family("agent_memory_bytes", "Memory.", &["agent"]).unwrap();
    /// for agent in ["a-1", "a-2", "a-3"] {
    ///     memory.with_label_values(&[agent]).unwrap().set(1.0);
    /// }
    /// let removed = memory.retain(|labels, _gauge| labels.first() != Some("a-2"));
    /// assert_eq!((removed, memory.len()), (1, 2));
    /// assert!(memory.get(&["a-2"]).is_none());
    /// ```
    pub fn retain(&self, mut keep: impl FnMut(LabelValues<'_>, &M) -> bool) -> usize {
        let mut series = Vec::new();
        let (_guard, _) = self.snapshot(&mut series);
        series.retain(|s| {
            assert_not_freed(s.0);
            // SAFETY: protected by `_guard` (see `snapshot`).
            let s = unsafe { &*s.0 };
            !keep(s.label_values(), &s.metric)
        });
        if series.is_empty() {
            return 0;
        }
        let inner = &*self.inner;
        let _writer = inner.writer.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: only the holder of the writer mutex (us) replaces or retires the table.
        let table = unsafe { &*inner.table.load(Acquire) };
        let mut removed = 0;
        for doomed in &series {
            // SAFETY: protected by `_guard`; only its hash is read. It may have been removed
            // meanwhile (by `keep` or another thread): then no slot holds it any more.
            let hash = unsafe { (*doomed.0).hash };
            let mut i = hash as usize & table.mask;
            for _ in 0..table.slots.len() {
                let slot = &table.slots[i];
                if slot.tag.load(Relaxed) == EMPTY {
                    break;
                }
                if ptr::eq(slot.series.load(Relaxed), doomed.0) {
                    self.remove_locked(table, i);
                    removed += 1;
                    break;
                }
                i = (i + 1) & table.mask;
            }
        }
        removed
    }

    /// Removes every series but the overflow series, which lasts as long as the family (its
    /// count of folded records would otherwise go backwards).
    ///
    /// ```
    /// use agentcore_telemetry::Registry;
    ///
    /// let registry = Registry::new();
    /// let calls = registry.counter_family("calls_total", "Calls.", &["tool"]).unwrap();
    /// calls.with_label_values(&["search"]).unwrap().inc();
    /// calls.with_label_values(&["fetch"]).unwrap().inc();
    /// calls.clear();
    /// assert!(calls.is_empty());
    /// ```
    pub fn clear(&self) {
        self.retain(|_, _| false);
    }

    /// Calls `f` for every series, sorted by label values, the overflow series last.
    ///
    /// Used by scrapes: the sorted order is cached and only rebuilt when series were added or
    /// removed, so a steady-state scrape neither sorts nor allocates here. `f` may call back
    /// into the family (then that inner call sorts a list of its own).
    ///
    /// ```
    /// use agentcore_telemetry::Registry;
    ///
    /// let registry = Registry::new();
    /// let calls = registry.counter_family("calls_total", "Calls.", &["tool"]).unwrap();
    /// calls.with_label_values(&["search"]).unwrap().inc_by(2);
    /// calls.with_label_values(&["fetch"]).unwrap().inc();
    /// let mut seen = Vec::new();
    /// calls.for_each_series(|series| {
    ///     let tool = series.label_values().first().unwrap();
    ///     seen.push(format!("{tool}={}", series.metric().get()));
    /// });
    /// assert_eq!(seen, ["fetch=1", "search=2"]); // sorted by label values
    /// ```
    pub fn for_each_series(&self, mut f: impl FnMut(&Series<M>)) {
        let inner = &*self.inner;
        // Taken before the generation is read, and still at its first era after the check
        // below: then it protects every series in a current cache (invariant 5). A series
        // inserted after the guard's era was read, once the era had moved (another thread
        // retired something, inserted it and rebuilt the cache in between), was born after
        // that era and is not protected: `validate` failing means the era moved, and the
        // cache is rebuilt under a fresh guard instead.
        let mut guard = inner.domain.guard();
        let mut own = SortedCache::stale();
        let mut locked = sorted::try_lock(&inner.sorted);
        let cache = locked.as_deref_mut().unwrap_or(&mut own);
        let mut _rebuilt_guard = None;
        if cache.generation != inner.generation.load(Acquire) || !guard.validate() {
            // Stale until rebuilt whole (should anything below unwind).
            cache.generation = u64::MAX;
            let (fresh, generation) = self.snapshot(&mut cache.series);
            _rebuilt_guard = Some(fresh);
            cache.series.sort_unstable_by(|a, b| {
                // SAFETY: protected by the fresh guard (see `snapshot`).
                let (a, b) = unsafe { (&*a.0, &*b.0) };
                a.label_values().cmp(&b.label_values())
            });
            if let Some(overflow) = inner.overflow.get() {
                cache.series.push(SeriesPtr(&**overflow));
            }
            cache.generation = generation;
        }
        for series in &cache.series {
            // SAFETY: the cache is current and `guard`, taken before that was checked, was
            // still at its first era after it (invariant 5: every series in the cache was born
            // at or before that era and is retired after it), or it was just rebuilt under the
            // fresh guard; the overflow series lives as long as the family.
            assert_not_freed(series.0);
            // SAFETY: as above.
            f(unsafe { &*series.0 });
        }
        drop(guard);
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

#[cfg(all(test, not(agentcore_loom)))]
mod tests {
    use super::super::label_hash::SHORT;
    use super::*;

    /// The byte positions of a value of `len` bytes that the exactness tests flip: every one,
    /// or under Miri (`.ci/miri`, where each flip is a lookup of a few seconds) those at the
    /// edges of what a compare key holds (the first and last eight bytes) and the middle,
    /// which only the full-text comparison of a long value sees.
    fn flipped_positions(len: usize) -> Vec<usize> {
        if !cfg!(miri) {
            return (0..len).collect();
        }
        let mut at: Vec<usize> = [0, 7, 8, len / 2, len.wrapping_sub(9), len.wrapping_sub(8)]
            .into_iter()
            .chain(len.checked_sub(1))
            .filter(|&i| i < len)
            .collect();
        at.sort_unstable();
        at.dedup();
        at
    }

    /// Keys identify values up to `SHORT` bytes exactly (any one-bit change, any other length
    /// changes the key), and `matches` is exact at every length, long values included.
    #[test]
    fn keys_and_matches_are_exact() {
        let texts: Vec<String> = (0..40)
            .map(|n| (0..n).map(|i| char::from(b'a' + (i % 26) as u8)).collect())
            .collect();
        let registry = crate::Registry::new();
        let family = registry.counter_family("k_total", "K.", &["v"]).unwrap();
        for t in &texts {
            family.with_label_values(&[t.as_str()]).unwrap().inc();
        }
        assert_eq!(family.len(), texts.len());
        for t in &texts {
            let key = Key::of(t.as_bytes());
            for i in flipped_positions(t.len()) {
                let mut u = t.clone().into_bytes();
                u[i] ^= 1;
                if t.len() <= SHORT {
                    assert_ne!(key, Key::of(&u), "len {} differs at {i}", t.len());
                }
                let u = String::from_utf8(u).unwrap();
                // A one-bit change is a different series, at any length.
                assert!(family.get(&[u.as_str()]).is_none(), "{u:?} is not {t:?}");
            }
            assert_eq!(family.get(&[t.as_str()]).unwrap().get(), 1.0);
        }
        // Values that split the same bytes differently are different series.
        let two = registry
            .counter_family("two_total", "T.", &["a", "b"])
            .unwrap();
        two.with_label_values(&["x", "yz"]).unwrap().inc();
        assert!(two.get(&["xy", "z"]).is_none());
        assert!(two.get(&["", "xyz"]).is_none());
    }

    /// A family's configuration is "shared by every series" (`Family::config`): a handle made
    /// with other buckets or summary settings is not adopted, so a family's series always have
    /// one `le` set (as `histogram_quantile` over `sum by (le)` needs) and one set of quantiles.
    #[test]
    fn insert_metric_refuses_a_handle_configured_otherwise() {
        use crate::{Buckets, Histogram, Summary, SummaryConfig};
        use std::time::Duration;
        let registry = crate::Registry::new();
        let buckets = Buckets::new(vec![1.0, 2.0]).unwrap();
        let h = registry
            .histogram_family("h_seconds", "H.", &["k"], buckets.clone())
            .unwrap();
        let other = Histogram::new(Buckets::new(vec![5.0]).unwrap()).unwrap();
        assert!(matches!(
            h.insert_metric(&["other"], other),
            Err(Error::ShapeMismatch { .. })
        ));
        assert!(h.get(&["other"]).is_none());
        assert!(!registry.encode_text().contains("le=\"5\""));
        let same = Histogram::new(Buckets::new(vec![1.0, 2.0]).unwrap()).unwrap();
        assert_eq!(h.insert_metric(&["same"], same), Ok(true));

        let config = SummaryConfig::default();
        let s = registry
            .summary_family("s_seconds", "S.", &["k"], config.clone())
            .unwrap();
        let quantiles = SummaryConfig::new(vec![0.1], config.max_age, config.age_buckets).unwrap();
        let window =
            SummaryConfig::new(config.quantiles.clone(), Duration::from_secs(1), 1).unwrap();
        for other in [quantiles, window] {
            let other = Summary::new(other).unwrap();
            assert!(matches!(
                s.insert_metric(&["other"], other),
                Err(Error::ShapeMismatch { .. })
            ));
        }
        assert!(s.get(&["other"]).is_none());
        assert_eq!(
            s.insert_metric(&["same"], Summary::new(config).unwrap()),
            Ok(true)
        );
    }

    /// A family outside any registry whose every label-value list hashes alike.
    fn colliding_family(label_names: &[&str]) -> Family<Counter> {
        colliding_family_of::<Counter>(label_names, ())
    }

    /// [`colliding_family`] of any metric type: two of them hash every list alike too.
    fn colliding_family_of<M: Metric>(label_names: &[&str], config: M::Config) -> Family<M> {
        let desc = Descriptor {
            name: "colliding_total".into(),
            help: "C.".into(),
            label_names: label_names.iter().map(|l| Box::from(*l)).collect(),
            kind: M::KIND,
        };
        let mut family = Family::new(Arc::new(desc), config, 4096, None, Exemplars::Off);
        Arc::get_mut(&mut family.inner)
            .expect("not shared yet")
            .hasher = LabelHasher::colliding();
        family
    }

    /// The address a handle points at, to compare handles of different metric types.
    fn address<M>(r: &SeriesRef<'_, M>) -> usize {
        std::ptr::from_ref::<M>(r) as *const () as usize
    }

    /// Lookup-cache invariant 5 across families: a hit compares the hash and the generation
    /// alone, so an entry of another family (of the same or another metric type) for the same
    /// hash (here every hash is the same) must never carry the generation the looking-up
    /// family has now. The first family's generation is stepped (inserts and removals of
    /// another key) up to the gauge family's before its entry is made: if generations were
    /// per-family counts (`fetch_add(1)`), they would meet and the gauge family's lookup would
    /// hand out the other family's series (as a `Series<Gauge>`). Also the same family's
    /// re-created key after a removal: the new series, never the removed one.
    #[test]
    fn a_cache_entry_never_matches_another_familys_generation() {
        use crate::Gauge;
        fn rounds<A: Metric>(config: A::Config, drop_first: bool) {
            // A few rounds under Miri (`.ci/miri`): each is some seconds there.
            for round in 0..if cfg!(miri) { 4 } else { 50 } {
                let a = colliding_family_of::<A>(&["k"], config.clone());
                let g = colliding_family_of::<Gauge>(&["k"], ());
                drop(a.with_label_values(&["x"]).unwrap()); // insert
                g.with_label_values(&["x"]).unwrap().set(1.0); // insert
                let target = g.inner.generation.load(Acquire);
                // Step the first family's generation up to (at least) the gauge family's, by
                // one at a time where it moved by one.
                let mut steps = 0;
                while a.inner.generation.load(Acquire) < target && steps < 1_000 {
                    drop(a.with_label_values(&["tmp"]).unwrap());
                    if a.inner.generation.load(Acquire) == target {
                        break;
                    }
                    assert!(a.remove(&["tmp"]));
                    steps += 1;
                }
                // The first family's entry for "x" at its current generation (a miss, a hit).
                let other = address(&a.with_label_values(&["x"]).unwrap());
                assert_eq!(address(&a.with_label_values(&["x"]).unwrap()), other);
                if drop_first {
                    // Its series freed at once (a family's drop frees its live series), its
                    // entry left in the cache: only the generation keeps it from a hit.
                    drop(a);
                }
                for _ in 0..2 {
                    let gauge = g.with_label_values(&["x"]).unwrap();
                    assert_ne!(
                        address(&gauge),
                        other,
                        "round {round}: the gauge family was handed another family's series"
                    );
                    gauge.add(1.0);
                }
                assert_eq!(g.get(&["x"]).unwrap().get(), 3.0);
                // The same family: removed and re-created with no lookup between (a fill
                // whose guard moved would empty the sets anyway), looked up: the new series.
                let old = address(&g.with_label_values(&["x"]).unwrap());
                assert!(g.remove(&["x"]));
                let fresh = Gauge::new();
                fresh.inc();
                assert_eq!(g.insert_metric(&["x"], fresh), Ok(true));
                for _ in 0..2 {
                    let new = g.with_label_values(&["x"]).unwrap();
                    assert_ne!(address(&new), old, "round {round}: the removed series");
                    new.inc();
                }
                assert_eq!(g.get(&["x"]).unwrap().get(), 3.0);
            }
        }
        std::thread::spawn(|| {
            rounds::<Gauge>((), false);
            rounds::<Counter>((), false);
            rounds::<Gauge>((), true);
        })
        .join()
        .unwrap();
    }

    /// Family invariant 5, outside the loom models: every value a generation takes, in any
    /// family, is new to the process (the lookup cache's hit relies on it). Families of several
    /// types on several threads, each recording every value its family's generation takes.
    #[test]
    fn generations_are_unique_across_families_and_time() {
        use crate::Gauge;
        use std::collections::HashSet;
        // Fewer and shorter threads under Miri (`.ci/miri`), where the whole took minutes.
        let (threads, families) = if cfg!(miri) { (2, 3) } else { (4, 50) };
        let per_thread: Vec<Vec<u64>> = (0..threads)
            .map(|t| {
                std::thread::spawn(move || {
                    let mut seen = Vec::new();
                    for _ in 0..families {
                        let c = colliding_family_of::<Counter>(&["k"], ());
                        let g = colliding_family_of::<Gauge>(&["k"], ());
                        let mut note = |v: u64| {
                            if seen.last() != Some(&v) {
                                seen.push(v);
                            }
                        };
                        note(c.inner.generation.load(Acquire));
                        note(g.inner.generation.load(Acquire));
                        for i in 0..4 {
                            let k = format!("{t}-{i}");
                            c.with_label_values(&[k.as_str()]).unwrap().inc();
                            note(c.inner.generation.load(Acquire));
                            g.with_label_values(&[k.as_str()]).unwrap().inc();
                            note(g.inner.generation.load(Acquire));
                            assert!(c.remove(&[k.as_str()]));
                            note(c.inner.generation.load(Acquire));
                        }
                    }
                    seen
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        let all: Vec<u64> = per_thread.into_iter().flatten().collect();
        assert!(all.iter().all(|&v| v != 0), "0 is an empty entry's");
        let unique: HashSet<u64> = all.iter().copied().collect();
        assert_eq!(unique.len(), all.len(), "a generation value taken twice");
    }

    /// A rebuild retires the table it replaces, and that retire may free it at once: the
    /// waiting list reaches its threshold and no guard's era lies in the table's lifetime (a
    /// writer that holds none, as `insert_metric` and `remove` do not, on a thread that never
    /// looked up, so no lookup-cache guard either). Nothing may still borrow the old table
    /// then: a `&Table` parameter is protected for the whole call, and freeing its memory
    /// before the call returns is undefined behaviour (Miri: "not granting access to tag ...
    /// because that would remove [SharedReadOnly ...] which is strongly protected"), even with
    /// no later read. The test steers the waiting list to one short of its threshold, then
    /// inserts until a rebuild: its retire of the old table is the one that reclaims.
    #[test]
    fn a_rebuild_whose_retire_frees_the_old_table() {
        use crate::sync::era::RECLAIM_BATCH;
        use crate::Gauge;
        std::thread::spawn(|| {
            let registry = crate::Registry::new();
            let family = registry.gauge_family("g", "G.", &["k"]).unwrap();
            let stats = || Domain::global().stats();
            // One series retired, no rebuild (the key's removed slot is reused), but the first.
            let churn = || {
                assert_eq!(family.insert_metric(&["churn"], Gauge::new()), Ok(true));
                assert!(family.remove(&["churn"]));
            };
            let mut next = 0;
            let mut freeing_rebuilds = 0;
            for _ in 0..20 {
                // Until a reclaim runs: the next one comes when the waiting list holds
                // `RECLAIM_BATCH`, or twice what this one left (`Domain::collect`).
                for _ in 0..=RECLAIM_BATCH.max(2 * stats().pending as usize) {
                    let freed = stats().freed;
                    churn();
                    if stats().freed > freed {
                        break;
                    }
                }
                let threshold = RECLAIM_BATCH.max(2 * stats().pending as usize);
                for _ in 0..threshold {
                    if (stats().pending as usize) + 1 >= threshold {
                        break;
                    }
                    churn();
                }
                // New keys, which retire nothing, until one rebuilds.
                loop {
                    let (table, freed) = (family.inner.table.load(Relaxed), stats().freed);
                    next += 1;
                    let k = next.to_string();
                    assert_eq!(family.insert_metric(&[k.as_str()], Gauge::new()), Ok(true));
                    if family.inner.table.load(Relaxed) != table {
                        freeing_rebuilds += usize::from(stats().freed > freed);
                        break;
                    }
                }
                if freeing_rebuilds == 2 {
                    break;
                }
            }
            assert_eq!(freeing_rebuilds, 2, "no reclaim ran inside a rebuild");
        })
        .join()
        .unwrap();
    }

    /// Family invariant 6 and the reclamation's promise to a handle: a series removed while
    /// `SeriesRef`s hold it (one through the thread's lookup cache, whose guard protects it;
    /// one with a guard of its own, as a lookup that created its series returns) is retired,
    /// not freed, until they drop, however often the domain reclaims meanwhile (a scrape
    /// reclaims); and a `for_each_series` or `retain` callback that removes the very series it
    /// was handed, and reclaims, still reads it afterwards. Under Miri a series freed too
    /// early is a use after free here.
    #[test]
    fn removed_series_live_on_under_the_handles_and_callbacks_that_hold_them() {
        std::thread::spawn(|| {
            let registry = crate::Registry::new();
            let family = registry.counter_family("held_total", "H.", &["k"]).unwrap();
            drop(family.with_label_values(&["a"]).unwrap()); // created
            let cached = family.with_label_values(&["a"]).unwrap(); // a fill: the cache's
            let again = family.with_label_values(&["a"]).unwrap(); // a hit: the cache's
            let own = family.with_label_values(&["b"]).unwrap(); // created: a guard of its own
            cached.inc();
            own.inc();
            assert!(family.remove(&["a"]) && family.remove(&["b"]));
            Domain::global().reclaim();
            again.inc();
            own.inc();
            assert_eq!((cached.get(), own.get()), (2.0, 2.0));
            drop((cached, again, own));

            // A callback removes the series it is handed and reclaims before it reads it.
            let remove_and_reclaim = |values: LabelValues<'_>| {
                assert!(family.remove(&values.to_vec()));
                Domain::global().reclaim();
            };
            family.with_label_values(&["c"]).unwrap().inc();
            family.for_each_series(|s| {
                remove_and_reclaim(s.label_values());
                assert_eq!(
                    (s.label_values().first(), s.metric().get()),
                    (Some("c"), 1.0)
                );
            });
            family.with_label_values(&["d"]).unwrap().inc();
            let removed = family.retain(|values, metric| {
                remove_and_reclaim(values);
                assert_eq!((values.first(), metric.get()), (Some("d"), 1.0));
                true
            });
            assert_eq!((removed, family.len()), (0, 0));
        })
        .join()
        .unwrap();
    }

    /// The comparisons themselves (above, different values almost always differ in their hash
    /// already, so a comparison that accepted too much would go unnoticed): with every hash
    /// equal, each lookup compares its values with every series in the probe sequence, and a
    /// one-bit change in any value at any length, or the same bytes split differently, is still
    /// another series, through `with_label_values`, `get` and `remove` alike.
    #[test]
    fn lookups_are_exact_when_every_hash_collides() {
        let family = colliding_family(&["a", "b"]);
        // Under Miri (`.ci/miri`) the lengths each side of a compare key's eight and sixteen
        // bytes, and a long one.
        let lengths: &[usize] = if cfg!(miri) {
            &[0, 1, 8, 9, 16, 17, 33]
        } else {
            &[0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 24, 33]
        };
        let texts: Vec<String> = lengths
            .iter()
            .map(|&n| (0..n).map(|i| char::from(b'a' + (i % 26) as u8)).collect())
            .collect();
        for t in &texts {
            family.with_label_values(&[t.as_str(), "x"]).unwrap().inc();
        }
        for t in &texts {
            for i in flipped_positions(t.len()) {
                let mut u = t.clone().into_bytes();
                u[i] ^= 1;
                let u = String::from_utf8(u).unwrap();
                assert!(
                    family.get(&[u.as_str(), "x"]).is_none(),
                    "{u:?} is not {t:?}"
                );
                let before = family.len();
                family.with_label_values(&[u.as_str(), "x"]).unwrap().inc();
                assert_eq!(family.len(), before + 1, "{u:?} is a new series");
                assert!(family.remove(&[u.as_str(), "x"]));
            }
            assert_eq!(family.get(&[t.as_str(), "x"]).unwrap().get(), 1.0);
        }
        assert_eq!(family.len(), texts.len());
        family.with_label_values(&["x", "yz"]).unwrap().inc();
        assert!(family.get(&["xy", "z"]).is_none());
        assert!(family.get(&["", "xyz"]).is_none());
        assert!(!family.remove(&["xyz", ""]));
        assert_eq!(family.get(&["x", "yz"]).unwrap().get(), 1.0);
    }
}
