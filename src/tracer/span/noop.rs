//! No-op spans: what a tracer whose SDK is disabled (`OTEL_SDK_DISABLED=true`, see
//! [`DistributedTracer::is_sdk_disabled`](crate::DistributedTracer::is_sdk_disabled)) starts.
//!
//! OpenTelemetry's API without an SDK ("Behavior of the API in the absence of an installed
//! SDK") returns a non-recording span whose context is the parent context's, sampled and
//! remote flags included, or an invalid one (all-zero ids) without a parent. So a no-op span
//! draws no id, claims no span-log slot, records, exports and counts nothing, and carries its
//! parent's context in its handle (`Rec::Unsampled` or a `Rec::Noop*` variant, by flags; see
//! `Rec`): a service whose SDK is disabled passes its caller's `traceparent` on unchanged.
//!
//! Being current: a no-op span pushes a frame carrying its parent's context (the current
//! one under `start_span`; for `start_span_with_parent`, the explicit parent's, or an invalid
//! one for `None`, which hides whatever was current: its children are roots, invalid too),
//! under a fresh random even key, as an attached context has (never the parent's span id:
//! that would name the parent's own frame). So it stays its children's parent until it ends,
//! as a span of the SDK does, also when the context it started in ends first (a guard dropped
//! below it, a function that attaches the caller's context and returns the server span; with
//! no frame of its own, its children then saw nothing current, and nothing was injected).

use super::{DetachedSpan, FrameHold, Span};
use crate::tracer::context::Carried;
use crate::tracer::core::{Rec, TraceId8, TracerCore};
use crate::tracer::current::{self, Frame, Parent};
use crate::tracer::id::{SpanId, TraceId};
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::sync::Arc;

/// The handle of a no-op span whose parent is `parent` (`None`: invalid ids, no baggage).
#[inline(always)]
fn record<'t>(parent: Option<Parent>) -> Rec<'t> {
    let Some(p) = parent else {
        return Rec::Unsampled {
            trace_id: TraceId8(TraceId::INVALID),
            span_id: SpanId::INVALID,
            baggage: None,
        };
    };
    let (trace_id, span_id, baggage) = (
        TraceId8(p.trace_id),
        p.span_id.unwrap_or(SpanId::INVALID),
        p.baggage,
    );
    match (p.sampled, p.remote) {
        (false, false) => Rec::Unsampled {
            trace_id,
            span_id,
            baggage,
        },
        (true, false) => Rec::NoopSampled {
            trace_id,
            span_id,
            baggage,
        },
        (false, true) => Rec::NoopRemote {
            trace_id,
            span_id,
            baggage,
        },
        (true, true) => Rec::NoopSampledRemote {
            trace_id,
            span_id,
            baggage,
        },
    }
}

/// `frame` with no span id if it names the invalid one: a no-op span's whose parent context
/// has no span (a trace root context, `start_trace` or `from_map` without `span_id`). Such a
/// frame, sampled, named span id zero as the current sampled span, and the exemplar cache
/// refuses `(trace, 0)` (invariant 4: none is `(0, 0)`). For the frames of `attach` and
/// `context_frame` only: `DetachedSpan::frame` (the `tracing` bridge's) never sees a no-op span.
#[inline(always)]
pub(super) fn without_invalid_span(mut frame: Frame) -> Frame {
    if frame.span_id == Some(SpanId::INVALID) {
        frame.span_id = None;
    }
    frame
}

/// A `Rec::Noop*` span's trace id, span id, sampled and remote flags and baggage (see
/// `DetachedSpan::parts`; anything else reports invalid ids). Out of line: inlined, its arms
/// grew every `parts` of an enabled tracer's span (`bridge_span` 5,281 -> 5,286 instructions,
/// `benches/HISTORY.md`).
#[cold]
#[inline(never)]
pub(super) fn parts<'a>(
    rec: &'a Rec<'_>,
) -> (TraceId, SpanId, bool, bool, Option<&'a Arc<Carried>>) {
    match rec {
        Rec::NoopSampled {
            trace_id,
            span_id,
            baggage,
        } => (trace_id.0, *span_id, true, false, baggage.as_ref()),
        Rec::NoopRemote {
            trace_id,
            span_id,
            baggage,
        } => (trace_id.0, *span_id, false, true, baggage.as_ref()),
        Rec::NoopSampledRemote {
            trace_id,
            span_id,
            baggage,
        } => (trace_id.0, *span_id, true, true, baggage.as_ref()),
        _ => (TraceId::INVALID, SpanId::INVALID, false, false, None),
    }
}

impl<'t> Span<'t> {
    /// A no-op span under the current context `parent` (see the module docs): current on
    /// this thread, as one with that parent as its explicit parent.
    #[inline(always)]
    pub(crate) fn noop(tracer: &'t TracerCore, parent: Option<Parent>) -> Span<'t> {
        Span::noop_with_parent(tracer, parent)
    }

    /// A no-op span with the explicit parent `parent` (`None`: a root), current on this
    /// thread: a frame carrying the parent's context (an invalid one for a root) under a
    /// fresh random key (see the module docs).
    pub(crate) fn noop_with_parent(tracer: &'t TracerCore, parent: Option<Parent>) -> Span<'t> {
        // Even, as `DetachedSpan::attach`'s keys (odd ones are the `tracing` bridge's).
        let key = (SpanId::random().to_u64() & !1).max(2);
        let frame = match &parent {
            Some(p) => Frame {
                tracer: tracer.id(),
                key,
                trace_id: p.trace_id,
                span_id: p.span_id,
                sampled: p.sampled,
                baggage: p.baggage.clone(),
                remote: p.remote,
            },
            None => Frame {
                tracer: tracer.id(),
                key,
                trace_id: TraceId::INVALID,
                span_id: None,
                sampled: false,
                baggage: None,
                remote: false,
            },
        };
        let inner = DetachedSpan::noop(tracer, parent);
        let attached = current::push(frame);
        Span {
            frame: FrameHold {
                tracer,
                key: if attached { key } else { 0 },
            },
            inner: ManuallyDrop::new(inner),
            _not_send: PhantomData,
        }
    }
}

impl<'t> DetachedSpan<'t> {
    /// A detached no-op span whose parent is `parent` (see the module docs).
    #[inline(always)]
    pub(crate) fn noop(tracer: &'t TracerCore, parent: Option<Parent>) -> DetachedSpan<'t> {
        DetachedSpan {
            tracer,
            record: record(parent),
        }
    }
}
