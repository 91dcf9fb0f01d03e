//! What the `tracing` bridge (`crate::bridge`) needs of a span beyond the public API: entering
//! and leaving its frame without attaching it, the room left for events, and a new name or kind
//! recorded after the start. None of it is on the tracer's own hot path (`Span::start`,
//! `finish`, `add_event`). Only built with the `tracing-bridge` feature.

use super::DetachedSpan;
use crate::tracer::current;
use crate::tracer::record::SpanKind;
use std::borrow::Cow;

impl DetachedSpan<'_> {
    /// Makes the span current on this thread *without* attaching it (a `tracing` span being
    /// entered, which may happen several times, on several threads, while the span stays in
    /// the subscriber's storage). Pushes a frame keyed by the span id; every call that returns
    /// `true` is paired with one [`exit_frame`](Self::exit_frame) on the same thread.
    #[inline]
    pub(crate) fn enter_frame(&self) -> bool {
        current::push(self.frame())
    }

    /// Removes the top-most frame that [`enter_frame`](Self::enter_frame) pushed on this
    /// thread (frames of one span share a key, so re-entry unwinds in order). Unlike a `Span`
    /// or `ContextGuard` going, this counts no misuse when another trace's frame was above
    /// it: `tracing` lets entered spans exit in any order (guards dropped in another order
    /// than taken), and the frame is removed wherever it is, so the context stays right.
    #[inline]
    pub(crate) fn exit_frame(&self) {
        let _ = current::remove(self.tracer.id(), self.span_id().to_u64());
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
