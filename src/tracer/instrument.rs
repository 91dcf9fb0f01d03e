//! Futures that carry their trace context: [`FutureExt`] wraps a future so that its context
//! is current during each of its polls only, on whatever thread polls it, and never while
//! other futures run on that thread.
//!
//! * [`in_span`](FutureExt::in_span): the future runs in a span, which finishes with it.
//! * [`in_context`](FutureExt::in_context): the future runs in a context: a trace
//!   ([`DetachedContext`]) or a span it does not own (`&span`), whose children its spans become.
//! * [`in_current_context`](FutureExt::in_current_context): the future runs in the context
//!   current where it was created: what a spawned task needs to continue its creator's trace.
//!
//! Each wrapper is a context *scope* (see `current.rs`): spans and guards the future keeps
//! open across an `.await` are taken off the thread with it when its poll returns, and put
//! back when it is polled again. So the specification's pattern (start a trace, start a span,
//! `.await`, start a child) gives the right parents under `tokio::join!`, `select!` and on a
//! current-thread runtime, as long as each concurrent future runs in its own scope. A wrapper
//! dropped before it completes (a `select!` loser, a timeout, an aborted task) drops its inner
//! future in its scope too: what the future's locals do in their `Drop` happens in its context.

use super::current::{self, Frame, Saved};
use super::guard::DetachedContext;
use super::span::{DetachedSpan, Span};
use pin_project_lite::pin_project;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A hook run when an instrumented future completes, before its span finishes (used by
/// `#[trace_operation]` to record the outcome). Not part of the stable API.
#[doc(hidden)]
///
/// ```
/// use agentcore_telemetry::distributed::__private::{OnReady, Verdict};
/// use agentcore_telemetry::{DistributedTracer, SpanKind, SpanStatus, TracerConfig};
/// let tracer = DistributedTracer::new(TracerConfig::default());
/// let mut span = tracer.start_detached_span("op", SpanKind::Internal, []);
/// (|_: &u8, _recording: bool| Verdict::Ok).on_ready(&1, &mut span);
/// assert_eq!(span.status(), SpanStatus::Ok);
/// ```
pub trait OnReady<T> {
    /// Inspects the output and records on the span.
    fn on_ready(self, output: &T, span: &mut DetachedSpan<'_>);
}

/// The default hook: does nothing.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, Default)]
///
/// ```
/// use agentcore_telemetry::tracer::__private::{NoHook, OnReady};
/// use agentcore_telemetry::{get_distributed_tracer, SpanKind, SpanStatus};
/// let mut span = get_distributed_tracer().start_detached_span("op", SpanKind::Internal, []);
/// NoHook.on_ready(&1, &mut span);
/// assert_eq!(span.status(), SpanStatus::Unset);
/// ```
pub struct NoHook;

impl<T> OnReady<T> for NoHook {
    #[inline]
    fn on_ready(self, _: &T, _: &mut DetachedSpan<'_>) {}
}

pin_project! {
    /// A future that runs in `span` (current during each poll, on whatever thread) and
    /// finishes the span when it completes (or when dropped unfinished, status Unset). A panic
    /// during a poll is recorded on the span (exception event, `Error` status). Spans and
    /// guards the future holds across an `.await` stay with it (see the [tracer module docs](super#in-async-code)).
    /// The inner future is dropped in the poll that completes it, inside its scope; polled
    /// again after that, this panics, as an `async` block does. Made by [`FutureExt::in_span`].
    ///
    /// ```
    /// use agentcore_telemetry::{get_distributed_tracer, FutureExt, SpanKind};
    ///
    /// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// # rt.block_on(async {
    /// let tracer = get_distributed_tracer();
    /// let span = tracer.start_detached_span("request", SpanKind::Server, []);
    /// let id = span.span_id();
    /// let child_parent = async {
    ///     tokio::task::yield_now().await;
    ///     let child = tracer.start_span("child", SpanKind::Internal, []);
    ///     child.parent_span_id()
    /// }
    /// .in_span(span)
    /// .await;
    /// assert_eq!(child_parent, Some(id));
    /// # });
    /// ```
    #[must_use = "futures do nothing unless polled; the span finishes when this completes or is dropped"]
    pub struct Instrumented<'t, F: Future, H: OnReady<F::Output> = NoHook> {
        // `None` once the inner future completed (dropped in its scope, see `poll`), and
        // while the wrapper drops (see its `PinnedDrop`).
        #[pin]
        inner: Option<F>,
        span: Option<DetachedSpan<'t>>,
        hook: Option<H>,
        saved: Saved,
    }

    /// Dropped before it completes (cancelled, or never polled), the future drops its inner
    /// future in its scope: the locals it still holds run their `Drop` in the future's
    /// context, as a synchronous function's locals do when it unwinds (a span a drop guard
    /// starts is a child of the future's span, the spans it holds end where their frames
    /// are), not in whatever context is current where it is dropped. The span finishes after.
    /// Cost: `span_in_future` (a span carried into a future polled once to completion) went
    /// from 782 to 803 instructions under callgrind (773 to 790 with LTO; `bash
    /// benches/compare/span_profile.sh`), the `Option` and the drop check; moving the scope's
    /// entry out of line (`#[cold]`) saved 2 of them, not kept. The span's own start, finish
    /// and context lookup are unchanged.
    impl<'t, F: Future, H: OnReady<F::Output>> PinnedDrop for Instrumented<'t, F, H> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            // Completed (the span is gone): nothing of the future's runs any more.
            if this.span.is_some() {
                let _scope = current::enter(this.saved);
                this.inner.set(None);
            }
        }
    }
}

impl<'t, F: Future, H: OnReady<F::Output>> Instrumented<'t, F, H> {
    /// Wraps `inner` with `span` and a completion hook. Not part of the stable API.
    #[doc(hidden)]
    ///
    /// ```
    /// use agentcore_telemetry::tracer::__private::NoHook;
    /// use agentcore_telemetry::{get_distributed_tracer, Instrumented, SpanKind};
    /// let span = get_distributed_tracer().start_detached_span("op", SpanKind::Internal, []);
    /// let fut = Instrumented::with_hook(async { 1 }, span, NoHook);
    /// assert!(fut.span().is_some());
    /// ```
    // Inlined into `in_span`: out of line (the compiler's choice once the span handle became
    // thin), `span_in_future` took 885 instead of 873 instructions under callgrind (issue 16).
    #[inline]
    pub fn with_hook(inner: F, span: impl Into<DetachedSpan<'t>>, hook: H) -> Self {
        let span = span.into();
        Instrumented {
            inner: Some(inner),
            // A copy (key 0): the span is not attached to a thread, and a copy is what a
            // completed scope discards (see `current.rs`, "Frames that leave their scope").
            saved: Saved::one(span.context_frame()),
            span: Some(span),
            hook: Some(hook),
        }
    }

    /// The span (until the future completes).
    ///
    /// ```
    /// use agentcore_telemetry::{get_distributed_tracer, FutureExt, SpanKind};
    /// let span = get_distributed_tracer().start_detached_span("op", SpanKind::Internal, []);
    /// let id = span.span_id();
    /// let fut = async {}.in_span(span);
    /// assert_eq!(fut.span().unwrap().span_id(), id);
    /// ```
    pub fn span(&self) -> Option<&DetachedSpan<'t>> {
        self.span.as_ref()
    }
}

/// Exits the scope after a poll, also when the poll panics (then the panic is recorded on the
/// span first).
struct Exit<'a, 's, 't> {
    scope: current::Scope<'s>,
    span: &'a mut DetachedSpan<'t>,
    /// The thread was already unwinding when the poll began (the future is polled inside a
    /// destructor during a panic): `thread::panicking()` after the poll is then true whether
    /// or not the poll panicked, and the poll is taken as completed. (One that panics and is
    /// caught within that same destructor goes unrecorded: `std` exposes no panic count that
    /// would tell the two apart.)
    unwinding_before: bool,
}

impl Drop for Exit<'_, '_, '_> {
    fn drop(&mut self) {
        if !self.unwinding_before && std::thread::panicking() {
            self.span.record_panic();
        }
        // `scope` drops next: the future's frames go back into its saved list (or, once it
        // completed, what it left open stays on the stack).
    }
}

impl<'t, F: Future, H: OnReady<F::Output>> Future for Instrumented<'t, F, H> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // `inner` is structurally pinned; `span`, `hook` and `saved` are not (see
        // `pin_project!`).
        let mut this = self.project();
        let Some(inner) = this.inner.as_mut().as_pin_mut() else {
            // Polled after completion (a breach of `Future`'s contract; never while dropping):
            // the inner future is gone. A panic that says so, as an `async` block's own, not
            // a `Pending` that hangs its caller without a word.
            panic!("`Instrumented` polled after it completed");
        };
        let Some(span) = this.span.as_mut() else {
            return Poll::Pending; // never: the span goes with the inner future
        };
        let mut exit = Exit {
            scope: current::enter(this.saved),
            span,
            unwinding_before: std::thread::panicking(),
        };
        let poll = inner.poll(cx);
        if poll.is_ready() {
            // What the completed future still holds (a `poll_fn` closure's captures, a
            // hand-written future's fields: an `async` block holds nothing once done) is
            // dropped here, in its scope, so that a span it holds ends where its frame is
            // rather than staying current for the caller (review helper-129).
            this.inner.set(None);
            // What the future leaves open (a span it returns) stays current for the caller.
            exit.scope.set_completed();
        }
        drop(exit);
        if let Poll::Ready(output) = &poll {
            // The inner future is done: its scope left nothing saved.
            this.saved.clear();
            if let Some(mut span) = this.span.take() {
                if let Some(hook) = this.hook.take() {
                    hook.on_ready(output, &mut span);
                }
                span.end();
            }
        }
        poll
    }
}

impl<F: Future + fmt::Debug, H: OnReady<F::Output>> fmt::Debug for Instrumented<'_, F, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Instrumented")
            .field("inner", &self.inner.as_ref())
            .field("span", &self.span)
            .finish()
    }
}

pin_project! {
    /// A future that runs in a context it carries: current during each poll only, on
    /// whatever thread; spans and guards it holds across an `.await` stay with it (see the
    /// [tracer module docs](super#in-async-code)). Made by [`FutureExt::in_context`] and
    /// [`FutureExt::in_current_context`]. Like [`Instrumented`], it drops the inner future in
    /// the poll that completes it, and panics if polled again.
    ///
    /// It borrows nothing: it can be spawned (`'static`, and `Send` when the inner future is)
    /// whatever the tracer's lifetime.
    ///
    /// ```
    /// use agentcore_telemetry::{get_distributed_tracer, FutureExt, SpanKind};
    /// # let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    /// # rt.block_on(async {
    /// let tracer = get_distributed_tracer();
    /// let root = tracer.start_detached_span("request", SpanKind::Server, []);
    /// let root_id = root.span_id();
    /// let parent = async {
    ///     // A task spawned from here continues this trace.
    ///     tokio::spawn(
    ///         async { tracer.start_detached_span("job", SpanKind::Internal, []).parent_span_id() }
    ///             .in_current_context(),
    ///     )
    ///     .await
    ///     .unwrap()
    /// }
    /// .in_span(root)
    /// .await;
    /// assert_eq!(parent, Some(root_id));
    /// # });
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct WithContext<F> {
        // `None` once the inner future completed (dropped in its scope, see `poll`), and
        // while the wrapper drops (see its `PinnedDrop`).
        #[pin]
        inner: Option<F>,
        // The inner future completed.
        done: bool,
        saved: Saved,
    }

    /// Dropped before it completes, the future drops its inner future in its scope (see
    /// [`Instrumented`]'s drop).
    impl<F> PinnedDrop for WithContext<F> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            if !*this.done {
                let _scope = current::enter(this.saved);
                this.inner.set(None);
            }
        }
    }
}

impl<F: Future> Future for WithContext<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let mut this = self.project();
        let Some(inner) = this.inner.as_mut().as_pin_mut() else {
            // Polled after completion: see `Instrumented`'s poll.
            panic!("`WithContext` polled after it completed");
        };
        let mut scope = current::enter(this.saved);
        let poll = inner.poll(cx);
        if poll.is_ready() {
            // What the completed future still holds is dropped in its scope (see
            // `Instrumented`'s poll).
            this.inner.set(None);
            // What the future leaves open (a span it returns) stays current for the caller.
            scope.set_completed();
            *this.done = true;
        }
        poll
    }
}

impl<F: fmt::Debug> fmt::Debug for WithContext<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WithContext")
            .field("inner", &self.inner.as_ref())
            .field("context", &self.saved)
            .finish()
    }
}

/// What [`FutureExt::in_context`] runs a future in: a [`DetachedContext`] (a trace, or a
/// remote context), or a span the future does not own (`&DetachedSpan`, `&Span`), whose
/// children the future's spans become. Sealed.
///
/// ```
/// use agentcore_telemetry::tracer::ContextSource;
/// fn takes(_: impl ContextSource) {}
/// let tracer = agentcore_telemetry::get_distributed_tracer();
/// takes(&tracer.start_detached_span("op", agentcore_telemetry::SpanKind::Internal, []));
/// takes(tracer.start_detached_trace(None, []));
/// ```
pub trait ContextSource: sealed::Sealed {}

/// The frame a future running in a [`ContextSource`] carries (opaque).
#[doc(hidden)]
pub struct CarriedFrame(Frame);

impl fmt::Debug for CarriedFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CarriedFrame")
            .field(&self.0.trace_id)
            .field(&self.0.span_id)
            .finish()
    }
}

mod sealed {
    use super::{CarriedFrame, DetachedContext, DetachedSpan, Span};

    pub trait Sealed {
        /// The frame a future running in the context carries.
        fn frame(self) -> CarriedFrame;
    }

    impl Sealed for DetachedContext<'_> {
        fn frame(self) -> CarriedFrame {
            CarriedFrame(DetachedContext::frame(&self))
        }
    }

    impl Sealed for &DetachedContext<'_> {
        fn frame(self) -> CarriedFrame {
            CarriedFrame(DetachedContext::frame(self))
        }
    }

    impl Sealed for &DetachedSpan<'_> {
        fn frame(self) -> CarriedFrame {
            CarriedFrame(self.context_frame())
        }
    }

    impl Sealed for &Span<'_> {
        fn frame(self) -> CarriedFrame {
            CarriedFrame(self.context_frame())
        }
    }
}

impl ContextSource for DetachedContext<'_> {}
impl ContextSource for &DetachedContext<'_> {}
impl ContextSource for &DetachedSpan<'_> {}
impl ContextSource for &Span<'_> {}

/// Runs futures in a trace context, so that parents stay right across `.await` on any
/// executor and thread (see the [tracer module docs](super#in-async-code)).
///
/// ```
/// use agentcore_telemetry::{get_distributed_tracer, FutureExt, SpanKind};
/// # let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
/// # rt.block_on(async {
/// let tracer = get_distributed_tracer();
/// let span = tracer.start_detached_span("job", SpanKind::Internal, []);
/// let trace_id = span.trace_id();
/// let seen = tokio::spawn(
///     async move { get_distributed_tracer().current_context().map(|c| c.trace_id()) }
///         .in_span(span),
/// )
/// .await
/// .unwrap();
/// assert_eq!(seen, Some(trace_id));
/// # });
/// ```
pub trait FutureExt: Future + Sized {
    /// Runs the future in `span`: current during every poll; the span finishes when the
    /// future completes (or is dropped). Inside, the future sees `span`'s tracer's context
    /// only: spans of another tracer current where it is polled are hidden too (use
    /// [`in_current_context`](Self::in_current_context) inside to carry them).
    ///
    /// ```
    /// use agentcore_telemetry::{get_distributed_tracer, FutureExt, SpanKind};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let tracer = get_distributed_tracer();
    /// let span = tracer.start_detached_span("fetch", SpanKind::Client, []);
    /// let id = span.span_id();
    /// async { tokio::task::yield_now().await }.in_span(span).await;
    /// assert!(tracer.get_span_by_id(id).is_some());
    /// # });
    /// ```
    fn in_span<'t>(self, span: impl Into<DetachedSpan<'t>>) -> Instrumented<'t, Self> {
        Instrumented::with_hook(self, span, NoHook)
    }

    /// Runs the future in `context`: a [`DetachedContext`] (from
    /// [`start_detached_trace`](crate::DistributedTracer::start_detached_trace) or
    /// [`detached_context`](crate::DistributedTracer::detached_context)), or a span it does not
    /// own (`&span`), which stays open for the caller to finish. As with
    /// [`in_span`](Self::in_span), other tracers' spans current where it is polled are hidden.
    ///
    /// ```
    /// use agentcore_telemetry::{get_distributed_tracer, FutureExt, SpanKind, SpanStatus};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let tracer = get_distributed_tracer();
    /// let mut create = tracer.start_detached_span("create_agent", SpanKind::Internal, []);
    /// let child_parent = async {
    ///     tokio::task::yield_now().await;
    ///     tracer.start_detached_span("create_container", SpanKind::Internal, []).parent_span_id()
    /// }
    /// .in_context(&create)
    /// .await;
    /// assert_eq!(child_parent, Some(create.span_id()));
    /// create.add_event("agent_initialized", []);
    /// tracer.finish_span(create, SpanStatus::Ok, None);
    /// # });
    /// ```
    fn in_context(self, context: impl ContextSource) -> WithContext<Self> {
        WithContext {
            inner: Some(self),
            done: false,
            saved: Saved::one(sealed::Sealed::frame(context).0),
        }
    }

    /// Runs the future in the context current here, now (of every tracer): the way to hand
    /// a trace to a spawned task or to each branch of a `join!`. It is a copy taken now:
    /// baggage set afterwards on the span or guard that is current here
    /// (`ContextGuard::set_baggage`) is not seen inside the future, as a context handed to
    /// another process is not changed by what its sender does next.
    ///
    /// ```
    /// use agentcore_telemetry::{get_distributed_tracer, FutureExt};
    /// # let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    /// # rt.block_on(async {
    /// let tracer = get_distributed_tracer();
    /// let trace = tracer.start_detached_trace(Some("request-123"), []);
    /// let trace_id = trace.trace_id();
    /// let seen = async {
    ///     let task = tokio::spawn(
    ///         async { get_distributed_tracer().current_context().map(|c| c.trace_id()) }
    ///             .in_current_context(),
    ///     );
    ///     task.await.unwrap()
    /// }
    /// .in_context(trace)
    /// .await;
    /// assert_eq!(seen, Some(trace_id));
    /// # });
    /// ```
    fn in_current_context(self) -> WithContext<Self> {
        WithContext {
            inner: Some(self),
            done: false,
            saved: current::capture(),
        }
    }
}

impl<F: Future> FutureExt for F {}
