//! What a new span is, decided before it starts ([`SpanStart`], made by
//! `DistributedTracer::decide`), and what an unsampled one's start takes from it.

use super::{Frame, Rec, Span};
use crate::tracer::context::Carried;
use crate::tracer::core::SpanIds;
use crate::tracer::id::{DeferredIds, Ids, SpanId, TraceId, UnsampledIds};
use std::sync::Arc;

/// What a new span is, decided before it starts: sampled or not, its ids (and a sampled
/// span's parent), and the baggage it inherits (`tracestate` and the random-trace-id flag
/// too, see `Carried`).
pub(crate) enum SpanStart {
    Sampled {
        ids: SpanIds,
        baggage: Option<Arc<Carried>>,
    },
    /// Its own trace id and span id, drawn (a child of a context whose ids are drawn).
    Unsampled {
        trace_id: TraceId,
        span_id: SpanId,
        baggage: Option<Arc<Carried>>,
    },
    /// Its own ids, deferred (a root, or a child of a span whose ids are deferred). A variant
    /// of its own rather than a value of `UnsampledIds`: the start of each then knows which it
    /// is without testing (an unsampled root span 144 -> 142 instructions under callgrind;
    /// `Unsampled` as an enum of the two inside one variant read 148).
    Deferred {
        ids: DeferredIds,
        baggage: Option<Arc<Carried>>,
    },
}

/// What an unsampled span's start takes from [`SpanStart`], whichever way its ids came.
pub(super) struct UnsampledStart {
    /// Its frame's key.
    pub(super) key: u64,
    /// Its ids, for its frame and for its handle.
    pub(super) frame_ids: Ids,
    pub(super) ids: UnsampledIds,
    pub(super) baggage: Option<Arc<Carried>>,
}

impl SpanStart {
    /// An unsampled span's start, or a sampled one's ids and baggage.
    #[inline(always)]
    pub(super) fn unsampled(self) -> Result<UnsampledStart, (SpanIds, Option<Arc<Carried>>)> {
        match self {
            SpanStart::Sampled { ids, baggage } => Err((ids, baggage)),
            SpanStart::Unsampled {
                trace_id,
                span_id,
                baggage,
            } => Ok(UnsampledStart {
                key: span_id.to_u64(),
                frame_ids: Ids::Drawn {
                    trace_id,
                    span_id: Some(span_id),
                },
                ids: UnsampledIds::drawn(trace_id, span_id),
                baggage,
            }),
            SpanStart::Deferred { ids, baggage } => Ok(UnsampledStart {
                key: ids.key(),
                frame_ids: Ids::Deferred(ids),
                ids: UnsampledIds::deferred(ids),
                baggage,
            }),
        }
    }
}

// Deferred ids fit where drawn ones are: the handle stays 40 bytes (a `Span` 64) and a frame
// 64 (one cache line).
const _: () = assert!(std::mem::size_of::<Rec<'static>>() == 40);
const _: () = assert!(std::mem::size_of::<Span<'static>>() == 64);
const _: () = assert!(std::mem::size_of::<Frame>() == 64);
