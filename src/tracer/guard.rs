//! The context handles: [`ContextGuard`] makes a [`TraceContext`] current on this thread
//! until it drops (`!Send`, for synchronous code); [`DetachedContext`] is the same context not
//! current anywhere (`Send`), to run a future in with
//! [`FutureExt::in_context`](super::FutureExt::in_context) or to attach later.

use super::context::TraceContext;
use super::core::{Misuse, TracerCore};
use super::current::{self, Frame, Removal};
use super::id::SpanId;
use std::marker::PhantomData;
use std::ops::Deref;

/// A [`TraceContext`] made current on this thread until the guard drops; from
/// [`DistributedTracer::start_trace`](crate::DistributedTracer::start_trace) or
/// [`DistributedTracer::attach`](crate::DistributedTracer::attach). Spans started
/// meanwhile (without an explicit parent) join its trace, inherit its sampled flag and
/// baggage, and have its span id (if any) as parent.
///
/// The guard is `!Send`, and belongs in synchronous code. In `async` code, start the trace
/// with [`start_detached_trace`](crate::DistributedTracer::start_detached_trace) and run the
/// future in it with [`FutureExt::in_context`](super::FutureExt::in_context), which makes it
/// current during every poll only, on whatever thread: a guard held across `.await` stays
/// current on the thread while other futures run there (a task spawned with it does not
/// compile; under `join!` it is detected when it drops below another trace's span or guard
/// left the same way, see [`TracerStats`](super::TracerStats), but spans another future only
/// starts and ends meanwhile silently join its trace: see the [tracer module
/// docs](super#in-async-code)).
///
/// ```
/// use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};
///
/// let tracer = DistributedTracer::new(TracerConfig::default());
/// let mut trace = tracer.start_trace(Some("request-123"), [("tenant", "acme")]);
/// trace.set_baggage("user_id", "12345");
/// let span = tracer.start_span("create_agent", SpanKind::Internal, []);
/// assert_eq!(span.trace_id(), trace.trace_id());
/// assert_eq!(span.context().get_baggage("user_id"), Some("12345"));
/// assert_eq!(span.context().get_baggage("trace.external_id"), Some("request-123"));
/// ```
#[must_use = "the context is current only until the guard drops: bind it (`let _trace = ...`), or the next span starts a new trace"]
pub struct ContextGuard<'t> {
    tracer: &'t TracerCore,
    key: u64,
    cx: TraceContext,
    _not_send: PhantomData<*const ()>,
}

impl<'t> ContextGuard<'t> {
    pub(crate) fn attach(tracer: &'t TracerCore, cx: TraceContext) -> Self {
        // Even (never 0): the `tracing` bridge's entries have odd keys, and an exit of one
        // must not take a guard's frame that carries the same span's context
        // (`current::remove_entry`).
        let key = (SpanId::random().to_u64() & !1).max(2);
        current::push(Frame::of_context(tracer.id(), key, &cx));
        ContextGuard {
            tracer,
            key,
            cx,
            _not_send: PhantomData,
        }
    }

    /// Sets a baggage entry on the attached context; spans started afterwards in it inherit
    /// it. A span already open keeps the baggage it started with (its context is a snapshot,
    /// as an OpenTelemetry context is), and so do the spans started inside it: set baggage
    /// before starting the spans that should carry it. False, and nothing stored, for an
    /// empty key ([`TraceContext::set_baggage`]).
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// let mut trace = tracer.start_trace(None, [("a", "1")]);
    /// trace.set_baggage("request_id", "req-789");
    /// assert_eq!(trace.get_baggage("request_id"), Some("req-789"));
    /// let handle = tracer.start_span("handle", SpanKind::Server, []);
    /// trace.set_baggage("user_id", "12345"); // after `handle` started
    /// let call = tracer.start_span("call", SpanKind::Client, []);
    /// assert_eq!(call.context().get_baggage("request_id"), Some("req-789"));
    /// assert_eq!(call.context().get_baggage("user_id"), None);
    /// # drop((call, handle));
    /// ```
    pub fn set_baggage(&mut self, key: impl Into<String>, value: impl Into<String>) -> bool {
        if !self.cx.set_baggage(key, value) {
            return false;
        }
        current::set_frame_baggage(self.tracer.id(), self.key, self.cx.carried().cloned());
        true
    }

    /// The attached context (also reachable through `Deref`).
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// let trace = tracer.start_trace(None, []);
    /// let cx = trace.context().clone();
    /// assert_eq!(cx.span_id(), None);
    /// ```
    pub fn context(&self) -> &TraceContext {
        &self.cx
    }

    /// Stops the context being current on this thread and returns it as a
    /// [`DetachedContext`], to run a future in.
    ///
    /// ```
    /// use agentcore_telemetry::{DistributedTracer, TracerConfig};
    /// let tracer = DistributedTracer::new(TracerConfig::default());
    /// let trace = tracer.start_trace(Some("request-123"), []).detach();
    /// assert!(tracer.current_context().is_none());
    /// assert_eq!(trace.context().get_baggage("trace.external_id"), Some("request-123"));
    /// ```
    pub fn detach(self) -> DetachedContext<'t> {
        // `self` drops at the end, removing its frame.
        DetachedContext::new(self.tracer, self.cx.clone())
    }

    fn remove_frame(&self) {
        if current::remove(self.tracer.id(), self.key) == Removal::OtherTraceAbove {
            self.tracer.misuse(Misuse::GuardDropped);
        }
    }
}

impl Deref for ContextGuard<'_> {
    type Target = TraceContext;
    fn deref(&self) -> &TraceContext {
        &self.cx
    }
}

impl Drop for ContextGuard<'_> {
    fn drop(&mut self) {
        self.remove_frame();
    }
}

impl std::fmt::Debug for ContextGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContextGuard")
            .field("context", &self.cx)
            .finish()
    }
}

/// A context of a tracer that is not current anywhere: a [`TraceContext`] tied to the
/// tracer whose spans it parents. `Send`: run a future in it
/// ([`FutureExt::in_context`](super::FutureExt::in_context)), on any thread, or make it
/// current here ([`attach`](Self::attach)). From
/// [`DistributedTracer::start_detached_trace`](crate::DistributedTracer::start_detached_trace)
/// (a new trace), [`DistributedTracer::detached_context`](crate::DistributedTracer::detached_context)
/// (a context received from another service) or [`ContextGuard::detach`].
///
/// ```
/// use agentcore_telemetry::{get_distributed_tracer, FutureExt, SpanKind};
/// # let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
/// # rt.block_on(async {
/// let tracer = get_distributed_tracer();
/// let trace = tracer.start_detached_trace(Some("request-123"), [("tenant", "acme")]);
/// let trace_id = trace.trace_id();
/// let seen = tokio::spawn(
///     async move {
///         tokio::task::yield_now().await;
///         tracer.start_detached_span("handle", SpanKind::Server, []).trace_id()
///     }
///     .in_context(trace),
/// )
/// .await
/// .unwrap();
/// assert_eq!(seen, trace_id);
/// # });
/// ```
#[must_use = "a detached context does nothing until a future runs in it (`fut.in_context(cx)`) or it is attached"]
#[derive(Clone)]
pub struct DetachedContext<'t> {
    tracer: &'t TracerCore,
    cx: TraceContext,
}

impl<'t> DetachedContext<'t> {
    pub(crate) fn new(tracer: &'t TracerCore, cx: TraceContext) -> Self {
        DetachedContext { tracer, cx }
    }

    /// The context.
    ///
    /// ```
    /// use agentcore_telemetry::{get_distributed_tracer, TraceId};
    /// let trace = get_distributed_tracer().start_detached_trace(Some("request-123"), []);
    /// assert_eq!(trace.context().trace_id(), TraceId::from_external("request-123"));
    /// ```
    pub fn context(&self) -> &TraceContext {
        &self.cx
    }

    /// Sets a baggage entry; spans started in this context afterwards inherit it. False,
    /// and nothing stored, for an empty key ([`TraceContext::set_baggage`]).
    ///
    /// ```
    /// use agentcore_telemetry::get_distributed_tracer;
    /// let mut trace = get_distributed_tracer().start_detached_trace(None, []);
    /// trace.set_baggage("user_id", "12345");
    /// assert_eq!(trace.get_baggage("user_id"), Some("12345"));
    /// ```
    pub fn set_baggage(&mut self, key: impl Into<String>, value: impl Into<String>) -> bool {
        self.cx.set_baggage(key, value)
    }

    /// Makes the context current on this thread until the returned guard drops.
    ///
    /// ```
    /// use agentcore_telemetry::{get_distributed_tracer, SpanKind};
    /// let tracer = get_distributed_tracer();
    /// let trace = tracer.start_detached_trace(None, []);
    /// let trace_id = trace.trace_id();
    /// let _guard = trace.attach();
    /// assert_eq!(tracer.start_span("op", SpanKind::Internal, []).trace_id(), trace_id);
    /// ```
    pub fn attach(self) -> ContextGuard<'t> {
        ContextGuard::attach(self.tracer, self.cx)
    }

    /// The frame a future running in this context carries (a copy: never removed by key).
    pub(crate) fn frame(&self) -> Frame {
        Frame::of_context(self.tracer.id(), 0, &self.cx)
    }
}

impl Deref for DetachedContext<'_> {
    type Target = TraceContext;
    fn deref(&self) -> &TraceContext {
        &self.cx
    }
}

impl std::fmt::Debug for DetachedContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DetachedContext")
            .field("context", &self.cx)
            .finish()
    }
}
