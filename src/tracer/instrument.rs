//! Futures carrying a span: [`Instrumented`] makes its span current for the duration of
//! every poll, so parent/child links stay right across `.await` on any executor thread.

use super::current;
use super::span::DetachedSpan;
use pin_project_lite::pin_project;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A hook run when an instrumented future completes, before its span finishes (used by
/// `#[trace_operation]` to record `Err` results). Not part of the stable API.
#[doc(hidden)]
///
/// ```
/// use agentcore_telemetry::tracer::__private::{OnReady, RecordErr};
/// use agentcore_telemetry::{DistributedTracer, SpanKind, SpanStatus, TracerConfig};
/// let tracer = DistributedTracer::new(TracerConfig::default());
/// let mut span = tracer.start_detached_span("op", SpanKind::Internal, []);
/// RecordErr.on_ready(&Err::<(), _>("boom"), &mut span);
/// assert_eq!(span.status(), SpanStatus::Error);
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

/// Sets `Ok` status on completion (`#[trace_operation]` on a function not returning
/// `Result`).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, Default)]
///
/// ```
/// use agentcore_telemetry::tracer::__private::{MarkOk, OnReady};
/// use agentcore_telemetry::{get_distributed_tracer, SpanKind, SpanStatus};
/// let mut span = get_distributed_tracer().start_detached_span("op", SpanKind::Internal, []);
/// MarkOk.on_ready(&1, &mut span);
/// assert_eq!(span.status(), SpanStatus::Ok);
/// ```
pub struct MarkOk;

impl<T> OnReady<T> for MarkOk {
    #[inline]
    fn on_ready(self, _: &T, span: &mut DetachedSpan<'_>) {
        span.set_status(super::SpanStatus::Ok, "");
    }
}

/// Records an `Err` output as an exception (type = `type_name::<E>()`, message =
/// `Display`) with `Error` status; an `Ok` output sets `Ok` status.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, Default)]
///
/// ```
/// use agentcore_telemetry::tracer::__private::{OnReady, RecordErr};
/// use agentcore_telemetry::{get_distributed_tracer, SpanKind, SpanStatus};
/// let mut span = get_distributed_tracer().start_detached_span("op", SpanKind::Internal, []);
/// RecordErr.on_ready(&Ok::<u8, String>(1), &mut span);
/// assert_eq!(span.status(), SpanStatus::Ok);
/// ```
pub struct RecordErr;

impl<T, E: fmt::Display> OnReady<Result<T, E>> for RecordErr {
    fn on_ready(self, output: &Result<T, E>, span: &mut DetachedSpan<'_>) {
        match output {
            Ok(_) => span.set_status(super::SpanStatus::Ok, ""),
            Err(e) => record_err(span, e),
        }
    }
}

/// Holds a sync function's span for `#[trace_operation]`: on drop, sets `Ok` unless the
/// thread is panicking, then the span finishes (recording the panic if there is one).
///
/// ```
/// use agentcore_telemetry::tracer::__private::OkOnReturn;
/// use agentcore_telemetry::{get_distributed_tracer, SpanKind, SpanStatus};
/// let tracer = get_distributed_tracer();
/// let span = tracer.start_span("op", SpanKind::Internal, []);
/// let id = span.span_id();
/// drop(OkOnReturn(span));
/// assert_eq!(tracer.get_span_by_id(id).unwrap().status, SpanStatus::Ok);
/// ```
#[doc(hidden)]
#[derive(Debug)]
pub struct OkOnReturn<'t>(pub super::Span<'t>);

impl Drop for OkOnReturn<'_> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.0.set_status(super::SpanStatus::Ok, "");
        }
    }
}

/// Records `e` as an exception and sets `Error` status with its message.
#[doc(hidden)]
///
/// ```
/// use agentcore_telemetry::tracer::__private::record_err;
/// use agentcore_telemetry::{get_distributed_tracer, SpanKind, SpanStatus};
/// let mut span = get_distributed_tracer().start_detached_span("op", SpanKind::Internal, []);
/// record_err(&mut span, "disk full");
/// assert_eq!(span.status(), SpanStatus::Error);
/// ```
pub fn record_err<E: fmt::Display + ?Sized>(span: &mut DetachedSpan<'_>, e: &E) {
    if span.is_recording() {
        let message = e.to_string();
        span.record_exception(e);
        span.set_status(super::SpanStatus::Error, message);
    }
}

pin_project! {
    /// A future that makes `span` current while it is polled and finishes the span when it
    /// completes (or when dropped unfinished, status Unset). A panic during a poll is recorded
    /// on the span (exception event, `Error` status). Made by [`FutureExt::in_span`].
    ///
    /// ```
    /// use agentcore_telemetry::{get_distributed_tracer, FutureExt, SpanKind};
    ///
    /// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// # rt.block_on(async {
    /// let tracer = get_distributed_tracer();
    /// let span = tracer.start_span("request", SpanKind::Server, []);
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
        #[pin]
        inner: F,
        span: Option<DetachedSpan<'t>>,
        hook: Option<H>,
    }
}

impl<'t, F: Future, H: OnReady<F::Output>> Instrumented<'t, F, H> {
    /// Wraps `inner` with `span` and a completion hook. Not part of the stable API.
    #[doc(hidden)]
    ///
    /// ```
    /// use agentcore_telemetry::tracer::__private::MarkOk;
    /// use agentcore_telemetry::{get_distributed_tracer, Instrumented, SpanKind};
    /// let span = get_distributed_tracer().start_detached_span("op", SpanKind::Internal, []);
    /// let fut = Instrumented::with_hook(async { 1 }, span, MarkOk);
    /// assert!(fut.span().is_some());
    /// ```
    pub fn with_hook(inner: F, span: impl Into<DetachedSpan<'t>>, hook: H) -> Self {
        Instrumented {
            inner,
            span: Some(span.into()),
            hook: Some(hook),
        }
    }

    /// The span (until the future completes).
    ///
    /// ```
    /// use agentcore_telemetry::{get_distributed_tracer, FutureExt, SpanKind};
    /// let span = get_distributed_tracer().start_span("op", SpanKind::Internal, []);
    /// let id = span.span_id();
    /// let fut = async {}.in_span(span);
    /// assert_eq!(fut.span().unwrap().span_id(), id);
    /// ```
    pub fn span(&self) -> Option<&DetachedSpan<'t>> {
        self.span.as_ref()
    }
}

/// Removes the span's frame after a poll, also when the poll panics (then the panic is
/// recorded on the span first).
struct Exit<'a, 't> {
    span: &'a mut DetachedSpan<'t>,
    entered: bool,
}

impl Drop for Exit<'_, '_> {
    fn drop(&mut self) {
        if self.entered {
            // Also drops frames of spans still open from inside the poll (a `!Send` span
            // kept across an `.await` on a local executor), so nothing leaks to other tasks.
            current::truncate_at(self.span.tracer().id(), self.span.span_id().to_u64());
        }
        if std::thread::panicking() {
            self.span.record_panic();
        }
    }
}

impl<'t, F: Future, H: OnReady<F::Output>> Future for Instrumented<'t, F, H> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // `inner` is structurally pinned; `span` and `hook` are not (see `pin_project!`).
        let this = self.project();
        let inner = this.inner;
        let Some(span) = this.span.as_mut() else {
            // Polled after completion or without a span: just poll through.
            return inner.poll(cx);
        };
        let entered = current::push(span.frame());
        let exit = Exit { span, entered };
        let poll = inner.poll(cx);
        drop(exit);
        if let Poll::Ready(output) = &poll {
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
            .field("inner", &self.inner)
            .field("span", &self.span)
            .finish()
    }
}

/// Attaches spans to futures.
///
/// ```
/// use agentcore_telemetry::{get_distributed_tracer, FutureExt, SpanKind};
/// # let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
/// # rt.block_on(async {
/// let tracer = get_distributed_tracer();
/// let span = tracer.start_span("job", SpanKind::Internal, []);
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
    /// Runs the future with `span` current during every poll; the span finishes when the
    /// future completes.
    fn in_span<'t>(self, span: impl Into<DetachedSpan<'t>>) -> Instrumented<'t, Self> {
        Instrumented::with_hook(self, span, NoHook)
    }
}

impl<F: Future> FutureExt for F {}
