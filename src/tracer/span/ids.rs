//! Where a running span's ids are (its record in the span log, a lost span's box, or the
//! handle itself, deferred or drawn: see `Rec`), and its context as a frame of the thread's
//! context stack.

use super::DetachedSpan;
use crate::tracer::context::Carried;
use crate::tracer::core::Rec;
use crate::tracer::current::Frame;
use crate::tracer::id::{Ids, SpanId, TraceId};
use std::sync::Arc;

impl<'t> DetachedSpan<'t> {
    #[inline(always)]
    pub(crate) fn frame(&self) -> Frame {
        let (ids, sampled, baggage) = self.parts_deferred();
        Frame {
            tracer: self.tracer.id(),
            key: self.frame_key(),
            ids,
            sampled,
            baggage: baggage.cloned(),
            remote: false,
        }
    }

    /// The key of the span's own frame ([`frame`](Self::frame)): its span id, or its
    /// `DeferredIds::key` while its ids are deferred (drawing them is not needed for that).
    #[inline]
    pub(crate) fn frame_key(&self) -> u64 {
        match &self.record {
            Rec::Unsampled { ids, .. } => ids.key(),
            _ => self.span_id().to_u64(),
        }
    }

    /// The span's trace id, span id, sampled flag and baggage, wherever they are (see
    /// `Rec`), the ids drawn if they were deferred. A finished span (only its own `Drop` sees
    /// one) reports invalid ids.
    #[inline(always)]
    pub(super) fn parts(&self) -> (TraceId, SpanId, bool, Option<&Arc<Carried>>) {
        let (ids, sampled, baggage) = self.parts_deferred();
        let span_id = ids.span_id().unwrap_or(SpanId::INVALID);
        (ids.trace_id(), span_id, sampled, baggage)
    }

    /// [`parts`](Self::parts), with deferred ids left deferred.
    #[inline(always)]
    fn parts_deferred(&self) -> (Ids, bool, Option<&Arc<Carried>>) {
        let drawn = |trace_id, span_id| Ids::Drawn {
            trace_id,
            span_id: Some(span_id),
        };
        match &self.record {
            Rec::Unsampled { ids, baggage } => (ids.ids(), false, baggage.as_ref()),
            Rec::Claimed(slot) => match slot.get() {
                Some(r) => (drawn(r.trace_id, r.span_id), true, r.carried.as_ref()),
                // never: written at start
                None => (drawn(TraceId::INVALID, SpanId::INVALID), true, None),
            },
            Rec::Lost(lost) => (
                drawn(lost.trace_id, lost.span_id),
                true,
                lost.carried.as_ref(),
            ),
            Rec::None => (drawn(TraceId::INVALID, SpanId::INVALID), false, None),
        }
    }

    /// A copy of the span's context as a frame that nothing removes by key (a future running
    /// in this span without owning it carries it, see `FutureExt::in_context`).
    #[inline]
    pub(crate) fn context_frame(&self) -> Frame {
        Frame {
            key: 0,
            ..self.frame()
        }
    }
}
