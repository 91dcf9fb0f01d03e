//! The tracer's machinery, which the span handles point at: [`TracerCore`] holds a tracer's
//! identity, clock anchor, limits, span log and counters, and implements the two steps every
//! sampled span goes through: opening its record in a span-log slot ([`TracerCore::open`])
//! and publishing it ([`TracerCore::record_finished`]).
//!
//! [`DistributedTracer`](crate::DistributedTracer) owns one and adds configuration, sampling
//! and queries; a [`Span`](super::Span) holds a `&TracerCore`, so the handles and the
//! facade never reach into each other.

use super::attribute::KeyValue;
use super::clock::Anchor;
use super::context::Carried;
use super::id::{SpanId, TraceId, TracerId};
use super::limits::{put_attribute, try_put_new_attribute, SpanLimits};
use super::record::{Event, HeapMark, SpanKind, SpanRecord, SpanStatus};
use super::stats::SpanCounters;
use super::thread_index::thread_index;
use crate::sync::ring::{Claimed, ShardedRing};
use smallvec::SmallVec;
use std::borrow::Cow;
use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The fewest slots a span-log shard gets. A thread writes to one shard, and each open span
/// holds its slot, so a shard must have room for a few nested spans and the claim attempts
/// beyond them: with one slot per shard (a capacity of twice the CPUs, at the default shard
/// count), every child of an open span found its thread's only slot held and was dropped
/// (found by review).
const MIN_SLOTS_PER_SHARD: usize = 16;

/// A tracer's identity, clock, limits, span log and counters (see the module docs).
pub(crate) struct TracerCore {
    id: TracerId,
    /// The service name, for the misuse report.
    service: Cow<'static, str>,
    anchor: Anchor,
    limits: SpanLimits,
    log: ShardedRing<SpanRecord>,
    counters: SpanCounters,
    /// Whether each kind of [`Misuse`] has been reported yet (once per tracer).
    reported: [AtomicBool; 2],
}

/// Misuse of the current context that the type system cannot refuse, detected at run time
/// (see `current.rs`, "Misuse").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Misuse {
    /// A span ended (finished or detached) while another trace's frame was above it.
    SpanEnded,
    /// A `ContextGuard` dropped while another trace's frame was above it.
    GuardDropped,
}

/// A new span's ids, parent and sampling decision (a small `Copy` value: passed around by
/// value, it stays in registers; borrowed, the whole `SpanStart` went through memory, ~10
/// instructions per span under callgrind).
#[derive(Clone, Copy)]
pub(crate) struct SpanIds {
    pub(crate) trace_id: TraceId,
    pub(crate) span_id: SpanId,
    pub(crate) parent_span_id: Option<SpanId>,
    pub(crate) sampled: bool,
    /// The parent context came from another process.
    pub(crate) parent_is_remote: bool,
}

/// What a running span handle holds besides its tracer: its whole state (issue 16, "thin
/// span handle").
///
/// Hot path: a sampled span's record (about 570 bytes) is built once, in place, in the
/// span-log slot claimed when the span starts, and published there when it finishes (the
/// slot stays locked meanwhile, so readers skip it). Everything else a sampled span knows
/// lives in that record too: its ids, parent and baggage, and while it is open its start
/// time (`start_time_unix_nano` holds the start *ticks* until the finish converts them, and
/// each event's `time_unix_nano` its ticks, converted with the same offset) and
/// whether its thread was unwinding when it started (`end_time_unix_nano` is 1 then, else
/// 0, until the finish stamps the end). An unsampled span has no record: its trace id, span
/// id and baggage are inline. So the handle is 40 bytes (a `Span` 64, was 120) and builds
/// and moves in a few stores: under callgrind (`breakdown.py`, release) `span_unsampled`
/// went from 238 to 212 instructions, `span_basic` from 821 to 783.
///
/// An explicit tag, tested with one compare on each `set_attribute`, `add_event` and finish
/// (a tag in a niche was decoded with a 64-bit constant, an add, a compare and a conditional
/// move: 228 instead of 239 instructions per unsampled span). A whole word: behind a `u8`
/// tag, the seven bytes of padding were copied piecewise on every move of the span (217
/// instead of 212 per unsampled span, 788 instead of 783 per sampled one).
///
/// A no-op span (`OTEL_SDK_DISABLED=true`, see `span/noop.rs`) carries its parent's context
/// whole, sampled and remote flags included, in one of four variants with the unsampled
/// span's fields: `Unsampled` itself for an unsampled local parent (or none: invalid ids),
/// and one `Noop*` variant per other flag pair. A `flags: u8` field instead grew the handle
/// to 48 bytes and cost 1 to 11 instructions per span (`benches/HISTORY.md`, "What a no-op
/// span's flags would cost every handle"). The discriminants are explicit so that each check
/// stays one compare: the four inline-context variants are `0..=3`, sampled and open is
/// `>= 5`, recorded is `5`; and an inline-context variant's discriminant is its flags,
/// `sampled | remote << 1`, so that a no-op span's tag is computed without a branch (see
/// `span/noop.rs`, `NoopStart`).
#[repr(u64)]
pub(crate) enum Rec<'t> {
    /// Unsampled: the context its children inherit, and nothing recorded. The trace id is
    /// kept with 8-byte alignment (a `u128` field aligned the whole handle to 16 bytes and
    /// grew it by 16). Also a no-op span whose parent is unsampled and local, or that has
    /// none (then both ids are invalid, all-zero).
    Unsampled {
        trace_id: TraceId8,
        span_id: SpanId,
        baggage: Option<Arc<Carried>>,
    } = 0,
    /// A no-op span whose parent context is sampled and local: the parent's ids.
    NoopSampled {
        trace_id: TraceId8,
        span_id: SpanId,
        baggage: Option<Arc<Carried>>,
    } = 1,
    /// A no-op span whose parent context is unsampled and remote.
    NoopRemote {
        trace_id: TraceId8,
        span_id: SpanId,
        baggage: Option<Arc<Carried>>,
    } = 2,
    /// A no-op span whose parent context is sampled and remote.
    NoopSampledRemote {
        trace_id: TraceId8,
        span_id: SpanId,
        baggage: Option<Arc<Carried>>,
    } = 3,
    /// Finished (only the handle's own `Drop` or `mem::forget` can still see it).
    None = 4,
    /// Sampled: the record, in its claimed span-log slot (with the ids, baggage, start ticks
    /// and unwinding flag, see above).
    Claimed(Claimed<'t, SpanRecord>) = 5,
    /// Sampled, but every slot tried was busy (readers, or other open spans): nothing is
    /// recorded; what the handle reports and the finish needs (metrics hook, counters, where
    /// it counts as dropped, as a busy push did) is kept aside. Boxed: this is the one
    /// allocation of a span's start, on a path that only a span log full of open spans or
    /// busy readers takes (it is counted as dropped); inline, its ~90 bytes sized every
    /// handle and were copied on every move of the common case.
    Lost(Box<Lost>) = 6,
}

#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<Rec<'_>>() == 40);

/// A trace id stored with 8-byte alignment (see `Rec::Unsampled`). Read by value only.
#[derive(Clone, Copy)]
#[repr(C, packed(8))]
pub(crate) struct TraceId8(pub(crate) TraceId);

/// What a `Rec::Lost` span keeps.
pub(crate) struct Lost {
    pub(crate) trace_id: TraceId,
    pub(crate) span_id: SpanId,
    pub(crate) parent_span_id: Option<SpanId>,
    pub(crate) carried: Option<Arc<Carried>>,
    pub(crate) name: Cow<'static, str>,
    pub(crate) status: SpanStatus,
    pub(crate) start_ticks: u64,
    pub(crate) started_unwinding: bool,
}

impl Rec<'_> {
    /// The record, for a change that may add heap memory to it: sets its [`HeapMark`], so
    /// that its slot's next start drops what it holds.
    #[inline(always)]
    pub(crate) fn get_mut(&mut self) -> Option<&mut SpanRecord> {
        let r = self.get_mut_noting()?;
        r.heap.set();
        Some(r)
    }

    /// The record, for a caller that notes in its [`HeapMark`] whatever heap memory it adds
    /// (the hot paths: see `HeapMark`).
    #[inline(always)]
    pub(crate) fn get_mut_noting(&mut self) -> Option<&mut SpanRecord> {
        match self {
            Rec::Claimed(slot) => slot.get_mut(),
            _ => None,
        }
    }

    #[inline(always)]
    pub(crate) fn get(&self) -> Option<&SpanRecord> {
        match self {
            Rec::Claimed(slot) => slot.get(),
            _ => None,
        }
    }

    /// Sampled and not finished: `Claimed` or `Lost`.
    #[inline(always)]
    pub(crate) fn is_open_sampled(&self) -> bool {
        matches!(self, Rec::Claimed(_) | Rec::Lost(_))
    }

    /// The baggage of a span whose context is inline (unsampled or no-op), to release.
    #[inline(always)]
    pub(crate) fn inline_baggage(&mut self) -> Option<&mut Option<Arc<Carried>>> {
        match self {
            Rec::Unsampled { baggage, .. }
            | Rec::NoopSampled { baggage, .. }
            | Rec::NoopRemote { baggage, .. }
            | Rec::NoopSampledRemote { baggage, .. } => Some(baggage),
            _ => None,
        }
    }
}

impl TracerCore {
    /// A core with a span log of `capacity` slots in `shards` shards (allocated here, once),
    /// each of at least [`MIN_SLOTS_PER_SHARD`] slots: fewer shards if the capacity is small.
    pub(crate) fn new(
        service: Cow<'static, str>,
        capacity: usize,
        shards: usize,
        limits: SpanLimits,
    ) -> Self {
        let shards = shards.min(capacity / MIN_SLOTS_PER_SHARD).max(1);
        TracerCore {
            id: TracerId::next(),
            service,
            anchor: Anchor::now(),
            limits,
            log: ShardedRing::new(capacity, shards),
            counters: SpanCounters::new(),
            reported: [AtomicBool::new(false), AtomicBool::new(false)],
        }
    }

    /// Counts a misuse of the context (in `TracerStats` and
    /// `agentcore_tracer_context_misuse_total{kind}`) and reports the first of each kind on
    /// standard error, as one log-style line. Never panics (a failed write is ignored).
    #[cold]
    pub(crate) fn misuse(&self, kind: Misuse) {
        let (counter, label, what) = match kind {
            Misuse::SpanEnded => (
                &self.counters.spans_out_of_context,
                "span_ended",
                "a span ended",
            ),
            Misuse::GuardDropped => (
                &self.counters.guards_out_of_context,
                "guard_dropped",
                "a ContextGuard was dropped",
            ),
        };
        counter.inc();
        if !self.reported[kind as usize].swap(true, Ordering::Relaxed) {
            let _ = writeln!(
                std::io::stderr(),
                "WARN agentcore_telemetry::tracer: service {service:?}: {what} while a span or \
                 context of another trace was current above it on this thread. A Span or \
                 ContextGuard was probably held across .await while another future ran on the \
                 same thread, and spans of that future may have taken it as parent. Run each \
                 concurrent future in its own context scope (FutureExt::in_current_context, \
                 in_context or in_span, or #[trace_operation]). Counted in \
                 agentcore_tracer_context_misuse_total{{kind=\"{label}\"}}; reported once per \
                 tracer.",
                service = self.service,
            );
        }
    }

    #[inline(always)]
    pub(crate) fn id(&self) -> TracerId {
        self.id
    }

    #[inline(always)]
    pub(crate) fn limits(&self) -> &SpanLimits {
        &self.limits
    }

    #[inline(always)]
    pub(crate) fn counters(&self) -> &SpanCounters {
        &self.counters
    }

    /// Clock ticks now: an event's time while its span is open (see `Rec`).
    #[inline]
    pub(crate) fn now_ticks(&self) -> u64 {
        self.anchor.now_ticks()
    }

    /// The span log's actual capacity.
    pub(crate) fn span_log_capacity(&self) -> usize {
        self.log.capacity()
    }

    /// Calls `f` on every finished record in the span log (slot by slot; busy slots are
    /// skipped).
    pub(crate) fn for_each_record(&self, f: impl FnMut(&SpanRecord)) {
        self.log.for_each(f);
    }

    #[cfg(feature = "otlp")]
    /// Attaches the span log's export cursor (`None` while another one is attached).
    pub(crate) fn attach_export_cursor(
        &self,
    ) -> Option<crate::sync::ring::ExportCursor<SpanRecord>> {
        self.log.attach_exporter()
    }

    /// Claims the span-log slot a starting sampled span builds its record in (see `Rec`).
    #[inline]
    fn claim_slot(&self) -> Option<Claimed<'_, SpanRecord>> {
        // The live threads holding the lowest indices each own a shard and advance its
        // cursor without a locked instruction; the others share the rest (see `sync::ring`,
        // "Cursor", and `tracer::thread_index`).
        self.log.claim_as(thread_index())
    }

    /// Counts a span that has started (after everything that could panic: a start that
    /// unwinds counts nothing, so `started == finished` holds).
    #[inline(always)]
    pub(crate) fn count_start(&self, sampled: bool) {
        // The crate's own counters keep no exemplar: the plain increment, without
        // `Counter::inc`'s exemplar check.
        if sampled {
            self.counters.started.inc_internal();
        } else {
            self.counters.unsampled.inc_internal();
        }
    }

    /// Opens the record of a starting sampled span: claims a span-log slot and resets the
    /// record in it for this span, with its attributes applied within the limits, its start
    /// time read last (as ticks, see `Rec`) and `unwinding`, whether the thread was unwinding
    /// from a panic as the span started; then counts the span started. Without a free slot
    /// the span is `Lost` (it still counts and feeds the metrics hook).
    ///
    /// If the caller's attribute iterator panics, the slot is emptied before it is released
    /// (`Opening`): a half-filled record is never published, and nothing is counted.
    ///
    /// Hot path: the record is written straight into its slot (see `Rec`). The count is the
    /// last call before the returned `Rec` is built: counted by the caller after this returned
    /// (a call the compiler must assume can unwind, which would drop the `Rec`), the `Rec`
    /// sat in a stack temporary whose address the unwinding path took, and was copied out of
    /// it whole (`span_basic` 621 -> 615 instructions, `#[trace_operation]` 474 -> 465 under
    /// callgrind, release; issue 16).
    #[inline(always)]
    pub(crate) fn open(
        &self,
        ids: SpanIds,
        carried: &Option<Arc<Carried>>,
        unwinding: bool,
        name: Cow<'static, str>,
        kind: SpanKind,
        attributes: impl IntoIterator<Item = KeyValue>,
    ) -> Rec<'_> {
        let Some(slot) = self.claim_slot() else {
            return self.lost(ids, carried, unwinding, name, attributes);
        };
        // The finished record the slot held is gone from here on: counted now, not when this
        // span finishes (it may never: a forgotten span left the loss uncounted; found by
        // review).
        if slot.overwrote() {
            self.counters.overwritten.inc_internal();
        }
        let mut opening = Opening { slot: Some(slot) };
        let Some(slot) = opening.slot.as_mut() else {
            return Rec::None; // never: just set
        };
        // Reset the slot's old record field by field (or build the first one): a new
        // record built aside was copied into the slot (three `memcpy`s of ~570 bytes per
        // span in the profile).
        let r = slot.get_or_insert_with(SpanRecord::empty);
        r.trace_id = ids.trace_id;
        r.span_id = ids.span_id;
        r.parent_span_id = ids.parent_span_id;
        r.parent_is_remote = ids.parent_is_remote;
        r.carried.clone_from(carried);
        // Empty the old record: drop what it holds, or, when its mark says it holds no heap
        // memory but its vectors' buffers (see `HeapMark`), forget its items and strings.
        // A heap buffer of the vectors themselves is released either way (memory follows the
        // records in the log, as before).
        // (Links are added only through `Rec::get_mut`, which sets the mark, so their vector
        // spills only in a marked record; tested anyway, so that `forget_items` never sees
        // a spilled vector whatever adds links later. It reads 2 fewer instructions per
        // span than without the test, by code layout.)
        if r.heap.is_set() || r.attributes.spilled() || r.events.spilled() || r.links.spilled() {
            drop_items(r);
        } else {
            forget_items(&mut r.attributes);
            forget_items(&mut r.events);
            forget_items(&mut r.links);
            // The old strings are `'static` (the mark): overwritten, not dropped.
            std::mem::forget(std::mem::replace(&mut r.status_message, Cow::Borrowed("")));
        }
        r.heap = HeapMark::CLEAR;
        r.heap.note_str(&name);
        // The old name needs no drop: emptied by `drop_items`, or `'static` (the mark).
        std::mem::forget(std::mem::replace(&mut r.name, name));
        r.kind = kind;
        r.status = SpanStatus::Unset;
        // The unwinding flag until the finish stamps the end (see `Rec`).
        r.end_time_unix_nano = u64::from(unwinding);
        r.dropped_attributes_count = 0;
        let limits = &self.limits;
        for kv in attributes {
            // As `set_attribute`: the common case inline, the rest out of line.
            r.heap.note_attribute(&kv);
            if let Err(kv) = try_put_new_attribute(
                &mut r.attributes,
                limits.max_attributes,
                limits.max_attribute_value_len,
                kv,
            ) {
                put_record_attribute(r, limits, kv);
            }
        }
        r.dropped_events_count = 0;
        r.dropped_links_count = 0;
        // The start ticks until the finish converts them (see `Rec`).
        r.start_time_unix_nano = self.anchor.now_ticks();
        self.count_start(true);
        // Complete: disarm the guard.
        match opening.slot.take() {
            Some(slot) => Rec::Claimed(slot),
            None => Rec::None, // never: set above
        }
    }

    /// A sampled span that found no free slot (see `Rec::Lost`), counted started. Its
    /// attributes are unused: dropped first, before the count, as the claimed path's loop
    /// consumes them before it counts (a `Drop` of the caller's that panics must count
    /// nothing; found by review). Both here, out of line, rather than in `open`'s branch
    /// that calls this: there they cost the hot path's code 8 instructions per span
    /// (`span_basic` 622), here it saves 5 (609, against 614 with the count after this call
    /// and no `drop`; callgrind, release).
    #[cold]
    #[inline(never)]
    fn lost(
        &self,
        ids: SpanIds,
        carried: &Option<Arc<Carried>>,
        unwinding: bool,
        name: Cow<'static, str>,
        attributes: impl IntoIterator<Item = KeyValue>,
    ) -> Rec<'_> {
        drop(attributes);
        let lost = Rec::Lost(Box::new(Lost {
            trace_id: ids.trace_id,
            span_id: ids.span_id,
            parent_span_id: ids.parent_span_id,
            carried: carried.clone(),
            name,
            status: SpanStatus::Unset,
            start_ticks: self.anchor.now_ticks(),
            started_unwinding: unwinding,
        }));
        self.count_start(true);
        lost
    }

    /// Called when a sampled span finishes: stamps the times into its record (in its
    /// span-log slot), calls the metrics hook, counts, and publishes the record (releases the
    /// slot). Never blocks or allocates. The displaced oldest record (an overwrite) was
    /// already dropped and counted when the slot was claimed (`open`); a span that found no
    /// free slot (`Lost`) counts as dropped, as a busy push did. Does nothing for an
    /// unsampled or finished span.
    ///
    /// If the metrics hook unwinds, the record is left as it was (its start and event ticks
    /// and unwinding flag unconverted, see `Rec`), so the span's `Drop` finishes it again.
    ///
    /// Hot path: always inlined. With `#[inline]` the default release build kept it out of
    /// line, and every sampled finish paid the call and six register saves and restores
    /// (under callgrind, `breakdown.py span_basic --fn`: 43 of its 114 instructions were its
    /// own frame; span 694 → 669, LTO 682 → 656).
    #[inline(always)]
    pub(crate) fn record_finished(&self, record: &mut Rec<'_>) {
        let end_ticks = self.anchor.now_ticks();
        let (error, lost) = match record {
            Rec::Claimed(slot) => match slot.get_mut() {
                Some(r) => {
                    let start_ticks = r.start_time_unix_nano;
                    // Never before the start: the TSCs of two cores may disagree by a few
                    // cycles (more on a host that does not keep them in step), and a thread
                    // that moved between them can read an end before its start. Events are
                    // kept within the span likewise, below. (`max`/`min`, not `clamp`, which
                    // has a panic path.)
                    let end_ticks = end_ticks.max(start_ticks);
                    self.on_span_finished(&r.name, r.status, start_ticks, end_ticks);
                    // One conversion for both: the duration is the ticks' (see `Anchor`).
                    let conversion = self.anchor.conversion_at(end_ticks);
                    r.start_time_unix_nano = conversion.unix_ns(start_ticks);
                    r.end_time_unix_nano = conversion.unix_ns(end_ticks);
                    // The events' ticks too, with the same conversion: converted when each was
                    // added, with the offset of that moment, an event added just before a
                    // re-anchor in a span finishing just after it lay outside the span by the
                    // offset's step (found by an adversarial review).
                    for e in r.events.iter_mut() {
                        let ticks = e.time_unix_nano.max(start_ticks).min(end_ticks);
                        e.time_unix_nano = conversion.unix_ns(ticks);
                    }
                    (r.status == SpanStatus::Error, false)
                }
                None => (false, false), // never: a claimed slot is written at start
            },
            Rec::Lost(lost) => {
                self.on_span_finished(&lost.name, lost.status, lost.start_ticks, end_ticks);
                (lost.status == SpanStatus::Error, true)
            }
            _ => return, // unsampled, no-op or finished
        };
        // Counted before the record is published: a query that reads the record (its slot's
        // read lock acquires the publish's release) then reads the counters, so it never
        // counts more spans (or errors) in the log than finished. Counted after, a query
        // between the two saw `total_spans` 1 with `spans_finished` 0 (found by review,
        // `tests/tracer_query_consistency.rs`). Counted in each branch, first in the one that
        // publishes: counted once before both, the layout cost 4 instructions per span, on the
        // unsampled path too (`span_basic` 564, `span_unsampled` 166, against 560 and 162;
        // `benches/compare/breakdown.py`, release).
        //
        // Publishes the record (releases the slot), marked for the export cursor if one is
        // attached (see `sync::ring`, "Export cursor" and "Detach").
        if let Rec::Claimed(mut slot) = std::mem::replace(record, Rec::None) {
            self.count_finished(error);
            let mark = slot.mark_for_export(&self.log);
            slot.publish(&self.log, mark);
        } else {
            self.count_finished(error);
        }
        if lost {
            self.counters.dropped.inc_internal();
            // A finished span the exporter cannot see: its drop, if an exporter runs now
            // (counted when it finishes, as a published span is marked when it finishes;
            // see `sync::ring`, "Export cursor").
            self.log.unclaimed();
        }
    }

    /// Counts a sampled span finished (and errored, if `error`); see `record_finished` for
    /// why before its record is published.
    #[inline(always)]
    fn count_finished(&self, error: bool) {
        let c = &self.counters;
        c.finished.inc_internal();
        if error {
            c.errored.inc_internal();
        }
    }

    /// The metrics hook: called on every sampled span finish with the operation name, the
    /// final status and the duration; observes `agentcore_tracer_span_duration_seconds` once
    /// the tracer is registered in a registry.
    ///
    /// Hot path: only the check is inline; the observation (a labeled lookup) is out of line,
    /// so a tracer without a registry pays a load and a branch, not the lookup's register
    /// pressure (~25 instructions of spills per span under callgrind).
    #[inline(always)]
    fn on_span_finished(&self, name: &str, status: SpanStatus, start_ticks: u64, end_ticks: u64) {
        if let Some(family) = self.counters.duration.get() {
            let duration_ns = self
                .anchor
                .ticks_to_ns(end_ticks.saturating_sub(start_ticks));
            observe_duration(family, name, status, duration_ns);
        }
    }
}

/// Adds attribute `kv` to a span's record within the limits (see [`put_attribute`]): the
/// out-of-line rest of `try_put_new_attribute`'s common case, shared by the attributes a span
/// starts with and `set_attribute`'s.
///
/// Its callers have noted `kv` in the record's [`HeapMark`]; what this adds beyond `kv` is a
/// spilled buffer of the span's own vector (which the start checks apart), and a shortened
/// value stays borrowed or owned as it was.
#[inline(never)]
pub(crate) fn put_record_attribute(r: &mut SpanRecord, limits: &SpanLimits, kv: KeyValue) {
    put_attribute(
        &mut r.attributes,
        &mut r.dropped_attributes_count,
        limits.max_attributes,
        limits.max_attribute_value_len,
        kv,
    );
}

/// Empties `v` for the next record in its slot. A heap buffer is released (memory follows
/// the records in the log, as before); inline items are dropped in place.
///
/// Hot path: `SmallVec::clear` is an out-of-line `truncate` that pops one item at a time,
/// and runs even when there is nothing to drop (~40 instructions per span under callgrind
/// for the three vectors).
#[inline(always)]
fn reset<A: smallvec::Array>(v: &mut SmallVec<A>) {
    if v.spilled() {
        *v = SmallVec::new();
        return;
    }
    let len = v.len();
    if len != 0 {
        // SAFETY: `items` covers the vector's `len` initialised items (inline storage, which
        // `set_len` does not move). The length is set to 0 first, so the vector no longer
        // owns them: each is dropped exactly once, here, and if a drop panics the rest are
        // still dropped by `drop_in_place` and the vector stays valid (empty). The pointer is
        // taken after `set_len`, whose `&mut` of the vector also covers its inline items: a
        // pointer from an earlier borrow is invalidated by it (Stacked Borrows; Miri, this
        // module's `inline_*` tests).
        unsafe {
            v.set_len(0);
            let items = std::ptr::slice_from_raw_parts_mut(v.as_mut_ptr(), len);
            std::ptr::drop_in_place(items);
        }
    }
}

/// Empties the record `r` for the next span in its slot, dropping what it holds: the start's
/// path for a record whose [`HeapMark`] is set, or whose vectors spilled.
///
/// Out of line: inlined, its drops of every item sized the start's code and, by register
/// pressure, the unsampled span's code beside it (timed 8.6 -> 10.1 ns per unsampled span in
/// `profile_driver`, for 2 instructions more; issue 16).
#[inline(never)]
fn drop_items(r: &mut SpanRecord) {
    r.name = Cow::Borrowed("");
    r.status_message = Cow::Borrowed("");
    reset(&mut r.attributes);
    reset_events(&mut r.events);
    reset(&mut r.links);
}

/// Empties `v` without dropping its items, which own no heap memory (the record's
/// [`HeapMark`] is clear) and are therefore only forgotten; `v`'s own buffer is inline.
///
/// Hot path: this is the common case of a span's start (see `HeapMark`).
#[inline(always)]
fn forget_items<A: smallvec::Array>(v: &mut SmallVec<A>) {
    debug_assert!(!v.spilled());
    // SAFETY: a length of 0 is within any capacity and asks no item to be initialised. The
    // items stay where they are, unreachable, and are never dropped: forgotten, which is
    // safe whatever they own (a wrong mark would leak, not free twice); the clear mark says
    // they own nothing.
    unsafe { v.set_len(0) };
}

/// [`reset`] for the events: each event's name is dropped in place and its attribute vector
/// emptied in place with [`reset`]; the emptied (inline) vector owns nothing, so it is not
/// dropped.
///
/// Hot path: dropping an event called `SmallVec`'s out-of-line `Drop` for its (usually
/// empty, inline) attributes: ~19 instructions per event under callgrind.
#[inline(always)]
fn reset_events<A: smallvec::Array<Item = Event>>(v: &mut SmallVec<A>) {
    if v.spilled() {
        *v = SmallVec::new();
        return;
    }
    let len = v.len();
    if len == 0 {
        return;
    }
    // SAFETY: the length is set to 0 first, so the vector no longer owns its `len`
    // initialised inline items (which `set_len` does not move, and nothing below moves the
    // vector): each is finished exactly once below. If a drop panics, the events not yet
    // finished are leaked (never dropped twice, never used after being dropped).
    unsafe { v.set_len(0) };
    // Taken after `set_len` (see `reset`).
    let base = v.as_mut_ptr();
    for i in 0..len {
        // SAFETY: `i < len`, so `p` points to an initialised event that nothing else
        // borrows (see above). Its name is dropped once, in place. Its attributes are
        // emptied by `reset` (which leaves an empty inline vector, owning no item and no
        // heap buffer), so not dropping that vector leaks nothing; the other fields are
        // plain integers.
        unsafe {
            let p = base.add(i);
            std::ptr::drop_in_place(std::ptr::addr_of_mut!((*p).name));
            reset(&mut (*p).attributes);
        }
    }
}

/// Appends an event named `name` at `time_unix_nano`, with no attributes yet, to `v` and
/// returns it (the caller fills its attributes in place): `Span::add_event`'s append.
///
/// Hot path: the new event's fields are written straight into the vector's spare slot.
/// `push(Event { .. })` built the event aside and copied its 144 bytes with an out-of-line
/// `memcpy` whose wide loads hit the narrow stores that had just built it (a store-forwarding
/// stall: ~10% of a span with one event in a `perf record -e cpu-clock` profile). `reserve`
/// is an out-of-line call even when there is room (~30 instructions per event under
/// callgrind): it is only made when the vector is full.
///
/// The vector's inline/heap state is tested once, with the same code in each branch: every
/// `SmallVec` accessor decodes it again, and inside a branch that has tested it the compiler
/// folds those decodes (see `limits::try_put_new_attribute`).
#[allow(
    clippy::if_same_then_else,
    reason = "the same code in both branches, so that each is compiled knowing the state"
)]
#[inline(always)]
pub(crate) fn push_event<'v, A: smallvec::Array<Item = Event>>(
    v: &'v mut SmallVec<A>,
    name: Cow<'static, str>,
    time_unix_nano: u64,
) -> &'v mut Event {
    if v.spilled() {
        push_event_in(v, name, time_unix_nano)
    } else {
        push_event_in(v, name, time_unix_nano)
    }
}

/// [`push_event`]'s work.
#[inline(always)]
fn push_event_in<'v, A: smallvec::Array<Item = Event>>(
    v: &'v mut SmallVec<A>,
    name: Cow<'static, str>,
    time_unix_nano: u64,
) -> &'v mut Event {
    let len = v.len();
    if len == v.capacity() {
        v.reserve(1);
    }
    // SAFETY: `len < capacity` (checked above, or `reserve(1)` made it so) guarantees room for
    // an element at index `len` (inline or on the heap), so `p` is valid for writes and
    // properly aligned. Every field is initialised through raw pointers (no reference to the
    // uninitialised element is made) before `set_len` makes the element visible, and nothing in
    // between can panic or read it. The returned reference is made from a pointer taken again
    // after `set_len` (see `reset`: `p` is invalidated by it when the vector is inline), and
    // is tied to the borrow of `v`.
    unsafe {
        let p = v.as_mut_ptr().add(len);
        std::ptr::addr_of_mut!((*p).name).write(name);
        std::ptr::addr_of_mut!((*p).time_unix_nano).write(time_unix_nano);
        std::ptr::addr_of_mut!((*p).attributes).write(SmallVec::new());
        std::ptr::addr_of_mut!((*p).dropped_attributes_count).write(0);
        v.set_len(len + 1);
        &mut *v.as_mut_ptr().add(len)
    }
}

/// Observes one finished span in `agentcore_tracer_span_duration_seconds`.
#[inline(never)]
fn observe_duration(
    family: &crate::Family<crate::Histogram>,
    name: &str,
    status: SpanStatus,
    duration_ns: u64,
) {
    if let Ok(h) = family.with_label_values(&[name, status.as_str()]) {
        h.observe(duration_ns as f64 * 1e-9);
    }
}

/// A span-log slot claimed by a starting span whose record is not complete yet. If the start
/// unwinds (the caller's attribute iterator panicked), dropping it empties the slot before the
/// claim releases it, so readers never see a half-filled record (start and end times 0, a
/// mix of the older record's fields and the new ones). The older record the claim displaced
/// was counted as overwritten when the slot was claimed.
struct Opening<'c> {
    slot: Option<Claimed<'c, SpanRecord>>,
}

impl Drop for Opening<'_> {
    #[inline]
    fn drop(&mut self) {
        if let Some(mut slot) = self.slot.take() {
            drop(slot.take());
        }
    }
}

impl fmt::Debug for TracerCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TracerCore")
            .field("id", &self.id)
            .field("limits", &self.limits)
            .field("span_log", &self.log)
            .finish()
    }
}

#[cfg(all(test, not(agentcore_loom)))]
mod tests {
    use super::*;
    use crate::{DistributedTracer, SpanKind, TracerConfig};

    fn event(name: &str) -> Event {
        let mut attributes = SmallVec::new();
        attributes.push(KeyValue::new("k", "v".to_string()));
        Event {
            name: Cow::Owned(name.to_string()),
            time_unix_nano: 1,
            attributes,
            dropped_attributes_count: 0,
        }
    }

    // `reset`, `reset_events` and `push_event` work on a record's vectors through raw pointers.
    // A vector's inline items lie inside the vector itself, so a `&mut` of it (as `set_len`
    // takes) covers them too: a pointer taken before that borrow and used after it is a
    // Stacked Borrows violation. These run under Miri (`.ci/miri`), as do this module's tests
    // that build a whole tracer:
    //
    //     MIRIFLAGS=-Zmiri-disable-isolation cargo +nightly miri test --lib \
    //         --no-default-features tracer::core::tests::

    #[test]
    fn inline_attributes_are_reset_in_place() {
        let mut attributes: SmallVec<[KeyValue; 4]> = SmallVec::new();
        attributes.push(KeyValue::new("a", "1".to_string()));
        attributes.push(KeyValue::new("b", "2".to_string()));
        assert!(!attributes.spilled());
        reset(&mut attributes);
        assert!(attributes.is_empty());
    }

    #[test]
    fn inline_events_are_reset_in_place() {
        let mut events: SmallVec<[Event; 2]> = SmallVec::new();
        events.push(event("one"));
        events.push(event("two"));
        assert!(!events.spilled());
        reset_events(&mut events);
        assert!(events.is_empty());
    }

    #[test]
    fn inline_events_are_appended_in_place() {
        let mut events: SmallVec<[Event; 2]> = SmallVec::new();
        // Inline, then the one that spills the vector, then on the heap.
        for (i, name) in ["one", "two", "three"].into_iter().enumerate() {
            let e = push_event(&mut events, Cow::Borrowed(name), i as u64);
            e.attributes.push(KeyValue::new("k", "v".to_string()));
            e.dropped_attributes_count = 7;
        }
        let seen: Vec<_> = events
            .iter()
            .map(|e| {
                (
                    &*e.name,
                    e.time_unix_nano,
                    e.attributes.len(),
                    e.dropped_attributes_count,
                )
            })
            .collect();
        assert_eq!(
            seen,
            [("one", 0, 1, 7), ("two", 1, 1, 7), ("three", 2, 1, 7)]
        );
    }

    /// Opens a sampled span's record on a fresh tracer, lets `skew` change its ticks (while
    /// the span is open the record holds ticks, see `Rec`), finishes it and returns what the
    /// tracer recorded, after checking that it ends at or after its start and holds its
    /// events within it.
    fn finish_skewed(skew: impl FnOnce(&TracerCore, &mut SpanRecord)) -> SpanRecord {
        let tracer = DistributedTracer::new(TracerConfig {
            span_log_capacity: 16,
            span_log_shards: 1,
            from_env: false,
            ..TracerConfig::default()
        });
        let core = tracer.core();
        let ids = SpanIds {
            trace_id: TraceId::random(),
            span_id: SpanId::random(),
            parent_span_id: None,
            sampled: true,
            parent_is_remote: false,
        };
        let mut rec = core.open(
            ids,
            &None,
            false,
            Cow::Borrowed("skewed"),
            SpanKind::Internal,
            [],
        );
        skew(core, rec.get_mut().expect("a claimed slot"));
        core.record_finished(&mut rec);
        let r = tracer.get_span_by_id(ids.span_id).expect("recorded");
        let (start, end) = (r.start_time_unix_nano, r.end_time_unix_nano);
        assert!(end >= start, "{end} < {start}");
        for e in &r.events {
            let t = e.time_unix_nano;
            assert!(
                (start..=end).contains(&t),
                "event at {t}, span {start}..={end}"
            );
        }
        r
    }

    /// Seconds of ticks, at any rate.
    const AHEAD: u64 = 10_000_000_000;

    /// A span whose clock reads run backwards (a thread moved to a core whose TSC is
    /// behind) still ends at or after its start, with its events inside it: its start ticks
    /// are moved seconds into the future here, past the end and the event.
    #[test]
    fn a_span_never_ends_before_it_starts_nor_holds_an_event_outside_it() {
        let r = finish_skewed(|core, r| {
            r.start_time_unix_nano = core.now_ticks() + AHEAD;
            push_event(&mut r.events, Cow::Borrowed("early"), core.now_ticks());
        });
        assert_eq!(r.events.len(), 1);
    }

    /// The other bound: an event whose ticks read later than the finish's (the event's
    /// thread read a TSC ahead of the one the finish read) is kept at the span's end, not
    /// after it. The event's ticks are moved seconds into the future here.
    #[test]
    fn an_event_read_after_the_end_is_kept_at_the_end() {
        let r = finish_skewed(|core, r| {
            push_event(
                &mut r.events,
                Cow::Borrowed("late"),
                core.now_ticks() + AHEAD,
            );
        });
        assert_eq!(r.events.len(), 1);
    }

    /// The same paths through the span API: more spans than slots, so later
    /// spans reset a used slot's inline attributes and events, each adding events.
    #[test]
    fn spans_reuse_slots_with_inline_attributes_and_events() {
        let tracer = DistributedTracer::new(TracerConfig {
            span_log_capacity: 16,
            span_log_shards: 1,
            ..TracerConfig::default()
        });
        for _ in 0..40 {
            let attributes = [KeyValue::new("a", "1".to_string())];
            let mut span = tracer.start_span("op", SpanKind::Internal, attributes);
            span.add_event("e", [KeyValue::new("k", "v".to_string())]);
            span.add_event("f", []);
            let id = span.span_id();
            span.end();
            let record = tracer.get_span_by_id(id).expect("recorded");
            assert_eq!(record.events.len(), 2);
            assert_eq!(record.events[0].attributes.len(), 1);
            assert_eq!(record.attributes.len(), 1);
        }
    }
}
