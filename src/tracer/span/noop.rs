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

/// A no-op span's handle, as parts: its parent's context (`None`: invalid ids, no baggage)
/// and, for a current span, its frame's key.
///
/// Hot path of the enabled tracer (`benches/HISTORY.md`, "`OTEL_SDK_DISABLED` at the cost of
/// its compare"): `DistributedTracer::start_span` gets these from an out-of-line start and
/// builds the `Span` itself ([`Span::from_noop`]), with the tag computed from `flags` without a
/// branch. An out-of-line call that returned the whole `Span` wrote it into the caller's span
/// (the return slot), which then lived on the stack for the enabled tracer's spans too: each
/// was stored there, its tag loaded back and tested again (`span_unsampled` 162 -> 172
/// instructions). Built from parts, the span stays in registers, and the no-op tag's known
/// range (`0..=3`) settles each later tag test as the unsampled span's constant 0 does.
pub(crate) struct NoopStart {
    trace_id: TraceId8,
    span_id: SpanId,
    baggage: Option<Arc<Carried>>,
    /// `sampled | remote << 1`: the `Rec` discriminant (see there).
    flags: u8,
    /// The frame's key: 0 if none was pushed (as for a detached span).
    key: u64,
}

impl NoopStart {
    /// The context of a no-op span whose parent is `parent`, with no frame.
    #[inline(always)]
    fn of(parent: Option<Parent>) -> NoopStart {
        match parent {
            Some(p) => NoopStart {
                trace_id: TraceId8(p.trace_id),
                span_id: p.span_id.unwrap_or(SpanId::INVALID),
                baggage: p.baggage,
                flags: u8::from(p.sampled) | (u8::from(p.remote) << 1),
                key: 0,
            },
            None => NoopStart {
                trace_id: TraceId8(TraceId::INVALID),
                span_id: SpanId::INVALID,
                baggage: None,
                flags: 0,
                key: 0,
            },
        }
    }

    /// The handle: `Rec::Unsampled` for an unsampled local parent (or none), a `Rec::Noop*`
    /// variant by flags otherwise. Each arm's variant has the discriminant it matches (see
    /// `Rec`), so the compiler stores `flags & 3` as the tag without a branch.
    #[inline(always)]
    fn record<'t>(self) -> Rec<'t> {
        let NoopStart {
            trace_id,
            span_id,
            baggage,
            flags,
            key: _,
        } = self;
        match flags & 3 {
            0 => Rec::Unsampled {
                trace_id,
                span_id,
                baggage,
            },
            1 => Rec::NoopSampled {
                trace_id,
                span_id,
                baggage,
            },
            2 => Rec::NoopRemote {
                trace_id,
                span_id,
                baggage,
            },
            _ => Rec::NoopSampledRemote {
                trace_id,
                span_id,
                baggage,
            },
        }
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
    /// A no-op span under the current context (see the module docs): current on this thread,
    /// as one with that parent as its explicit parent. Out of line, off the enabled tracer's
    /// path: the caller builds the span ([`from_noop`](Self::from_noop), see `NoopStart`).
    #[cold]
    #[inline(never)]
    pub(crate) fn noop_start(tracer: &TracerCore) -> NoopStart {
        Span::noop_start_with_parent(tracer, current::current(tracer.id()))
    }

    /// The no-op span `start` describes (see `NoopStart`). Infallible, and it must stay so:
    /// the start's frame is already pushed, and `NoopStart` has no `Drop` to remove it.
    #[inline(always)]
    pub(crate) fn from_noop(tracer: &'t TracerCore, start: NoopStart) -> Span<'t> {
        let key = start.key;
        Span {
            frame: FrameHold { tracer, key },
            inner: ManuallyDrop::new(DetachedSpan {
                tracer,
                record: start.record(),
            }),
            _not_send: PhantomData,
        }
    }

    /// A no-op span with the explicit parent `parent` (`None`: a root), current on this
    /// thread.
    pub(crate) fn noop_with_parent(tracer: &'t TracerCore, parent: Option<Parent>) -> Span<'t> {
        Span::from_noop(tracer, Span::noop_start_with_parent(tracer, parent))
    }

    /// The start of a no-op span with the explicit parent `parent`: a frame carrying the
    /// parent's context (an invalid one for a root) under a fresh random key (see the module
    /// docs), pushed.
    #[inline(always)]
    fn noop_start_with_parent(tracer: &TracerCore, parent: Option<Parent>) -> NoopStart {
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
        let start = NoopStart::of(parent);
        let attached = current::push(frame);
        NoopStart {
            key: if attached { key } else { 0 },
            ..start
        }
    }
}

impl<'t> DetachedSpan<'t> {
    /// A detached no-op span whose parent is `parent` (see the module docs).
    #[inline(always)]
    pub(crate) fn noop(tracer: &'t TracerCore, parent: Option<Parent>) -> DetachedSpan<'t> {
        DetachedSpan {
            tracer,
            record: NoopStart::of(parent).record(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `NoopStart::record` picks the variant of each flag pair (the match, not the
    /// discriminants, decides it: these are only what makes it branch-free).
    #[test]
    fn each_flag_pair_is_its_variant() {
        for (sampled, remote) in [(false, false), (true, false), (false, true), (true, true)] {
            let parent = Parent {
                trace_id: TraceId::from_u128(7).unwrap(),
                span_id: SpanId::from_u64(9),
                sampled,
                baggage: None,
                remote,
            };
            let rec = NoopStart::of(Some(parent)).record();
            let got = match &rec {
                Rec::Unsampled {
                    trace_id, span_id, ..
                } => (trace_id.0, *span_id, false, false),
                other => {
                    let (t, s, sampled, remote, _) = parts(other);
                    (t, s, sampled, remote)
                }
            };
            let want = (TraceId::from_u128(7).unwrap(), SpanId::from_u64(9).unwrap());
            assert_eq!(got, (want.0, want.1, sampled, remote));
        }
        let root = NoopStart::of(None).record();
        assert!(matches!(root, Rec::Unsampled { span_id, .. } if span_id == SpanId::INVALID));
    }
}
