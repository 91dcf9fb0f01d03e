//! What the `tracing` bridge (`crate::bridge`) needs of a span beyond the public API: entering
//! and leaving its frame without attaching it, whether it is sampled and open, the room left
//! for events, and a new name or kind recorded after the start. None of it is on the tracer's
//! own hot path (`Span::start`, `finish`, `add_event`). Only built with the `tracing-bridge`
//! feature.

use super::DetachedSpan;
use crate::tracer::core::Rec;
use crate::tracer::current::{self, Frame};
use crate::tracer::id::{SpanId, TracerId};
use crate::tracer::record::SpanKind;
use std::borrow::Cow;
use std::cell::RefCell;

thread_local! {
    /// The frames [`enter_frame`](DetachedSpan::enter_frame) pushed on this thread that no
    /// [`exit_frame`](DetachedSpan::exit_frame) has taken back yet: `(tracer, span id, frame
    /// key)`, oldest first, at most [`MAX_ENTRIES`]. Each entry of a `tracing` span has a frame
    /// key of its own (as each `DetachedSpan::attach` has, for the same reason): the "ended"
    /// notes of `current.rs` name a frame by its key, so a note left by one entry (exited
    /// while its frame was saved in a pending future) must not drop the frame of another entry
    /// of the same span that another pending future holds (found by review:
    /// `tests/bridge_tracing_async.rs`). `tracing`'s exit names the span, not the entry: the
    /// list tells which key a note gets when none of the span's entries is on the stack.
    static ENTRIES: RefCell<Vec<(TracerId, u64, u64)>> = const { RefCell::new(Vec::new()) };
}

/// The most entries [`ENTRIES`] keeps; beyond, the oldest is forgotten. An `Entered` guard is
/// `Send`: held across `.await` (a mistake, see the bridge's docs) it may exit on another
/// thread, and its entry stays listed on the first one.
const MAX_ENTRIES: usize = 64;

impl DetachedSpan<'_> {
    /// Sampled and not finished: whether what is recorded into the span can matter (its
    /// record's, or, with no free slot, its name and status: `Rec::Lost`). The bridge asks
    /// before it visits a value `Span::record` gives.
    #[inline]
    pub(crate) fn is_open_sampled(&self) -> bool {
        self.record.is_open_sampled()
    }

    /// Makes the span current on this thread *without* attaching it (a `tracing` span being
    /// entered, which may happen several times, on several threads, while the span stays in
    /// the subscriber's storage). Pushes a frame under a fresh odd key (see
    /// `current::remove_entry`), listed in [`ENTRIES`]; every call that returns `true` is
    /// paired with one [`exit_frame`](Self::exit_frame). (Where the list is gone, at thread
    /// exit, the frame is keyed by the span id, as before.)
    #[inline]
    pub(crate) fn enter_frame(&self) -> bool {
        let frame = self.frame();
        let (tracer, span) = (frame.tracer, frame.key);
        let key = ENTRIES
            .try_with(|e| {
                let mut e = e.try_borrow_mut().ok()?;
                if e.len() >= MAX_ENTRIES {
                    e.remove(0);
                }
                let key = SpanId::random().to_u64() | 1;
                e.push((tracer, span, key));
                Some(key)
            })
            .ok()
            .flatten();
        current::stray::check_stranded();
        let pushed = current::push(Frame {
            key: key.unwrap_or(span),
            ..frame
        });
        if !pushed && key.is_some() {
            let _ = ENTRIES.try_with(|e| e.try_borrow_mut().map(|mut e| e.pop()));
        }
        pushed
    }

    /// Removes the frame of one of the span's entries: the top-most one on this thread's
    /// stack, in any scope (re-entry unwinds in order; an exit inside a scoped future takes
    /// the future's entry, above its marker, before one outside it; a `ContextGuard` attaching
    /// the span's context is no entry); if none is on the stack (its frame is saved in a
    /// pending future, or gone), the newest entry listed here, whose end `current::remove`
    /// then notes under that entry's own key. Unlike a `Span` or `ContextGuard` going, this
    /// counts no misuse when another trace's frame was above it: `tracing` lets entered spans
    /// exit in any order (guards dropped in another order than taken), and the frame is
    /// removed wherever it is, so the context stays right.
    ///
    /// `true` if the exit found neither a frame nor a listed entry of the span on this thread
    /// (nor the list, at thread exit):
    /// the entry was made on another thread (an `Entered` guard held across `.await` in a
    /// future that moved threads), where its frame may be stranded. The caller then has
    /// [`publish_stranded`](Self::publish_stranded) called when the span closes.
    #[inline]
    pub(crate) fn exit_frame(&self) -> bool {
        let tracer = self.tracer.id();
        let span = self.span_id();
        let id = span.to_u64();
        let removed = current::remove_entry(tracer, span);
        let mine = |&(t, s, _): &(TracerId, u64, u64)| t == tracer && s == id;
        let listed = ENTRIES.try_with(|e| {
            let mut e = e.try_borrow_mut().ok()?;
            let i = match removed {
                Some(key) => e.iter().rposition(|x| mine(x) && x.2 == key),
                None => e.iter().rposition(mine),
            }?;
            Some(e.remove(i).2)
        });
        if removed.is_some() {
            return false;
        }
        // None on the stack: the newest entry's frame is saved in a pending future, or gone;
        // noted under its key (the span id if none is listed).
        let listed = listed.ok();
        let _ = current::remove(tracer, listed.flatten().unwrap_or(id));
        // Nothing listed either: entered elsewhere. (Or forgotten, past `MAX_ENTRIES`, or the
        // list is gone, at thread exit, and cannot tell: a record of a closed span is always
        // safe, no entry of it being open anywhere, and costs a look at each thread's stack,
        // nothing worse; without it an entry made on another thread stayed there for good.)
        !matches!(listed, Some(Some(_)))
    }

    /// The span closes after an exit of it found no entry on its thread
    /// ([`exit_frame`](Self::exit_frame)): no entry of it is open anywhere any more, so every
    /// thread drops the frames of its entries that are still on its stack, at its next look-up
    /// of the current context (`tracer::stray`).
    #[cold]
    pub(crate) fn publish_stranded(&self) {
        current::stray::publish(self.tracer.id(), self.span_id().to_u64());
    }

    /// Whether one more event fits within [`SpanLimits::max_events`](crate::tracer::SpanLimits::max_events):
    /// `false` for an unsampled span, and `false` for a full one, whose drop this counts (as
    /// `add_event` would), so a bridge need not build an event that would be dropped.
    #[inline]
    pub(crate) fn event_room(&mut self) -> bool {
        let max = self.tracer.limits().max_events as usize;
        // Adds nothing that owns memory: no mark (see `HeapMark`).
        let Some(r) = self.record.get_mut_noting() else {
            return false;
        };
        if r.events.len() >= max {
            r.dropped_events_count = r.dropped_events_count.saturating_add(1);
            return false;
        }
        true
    }

    /// Whether [`set_status`](Self::set_status) can change the span: sampled (recorded, or
    /// lost for want of a slot, whose status still counts) and not finished.
    #[inline]
    pub(crate) fn takes_status(&self) -> bool {
        matches!(self.record, Rec::Claimed(_) | Rec::Lost(_))
    }

    /// Renames the span (`otel.name` recorded after the span started). No-op when unsampled.
    pub(crate) fn set_name(&mut self, name: Cow<'static, str>) {
        if let Some(r) = self.record.get_mut() {
            r.name = name;
        }
    }

    /// Changes the span's kind (`otel.kind` recorded after the span started). No-op when
    /// unsampled.
    pub(crate) fn set_kind(&mut self, kind: SpanKind) {
        if let Some(r) = self.record.get_mut() {
            r.kind = kind;
        }
    }
}
