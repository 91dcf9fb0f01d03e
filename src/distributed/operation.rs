//! What `#[trace_operation]` expands to. Not part of the stable API (reached through the
//! hidden `distributed::__private`).
//!
//! * [`Caller`]: the context current where an `async fn`'s future is *created*, so that the
//!   future continues its caller's trace wherever it is first polled: on a thread where
//!   nothing is current (a spawned task), or under another trace's span (a current-thread
//!   runtime polls its tasks under what its `block_on` caller has current).
//! * [`Outcome`] and the `Verdict*` traits: what the function returned, decided by *type*
//!   with autoderef specialization, so a `Result` is recognised whatever it is called
//!   (`type AgentResult<T> = Result<T, AgentError>`, `anyhow::Result`, `io::Result`). The
//!   expansion calls `(&&&&&Outcome(&ret)).__agentcore_verdict(recording)`; method lookup
//!   tries the receiver with 5, 4, ... 1 references removed and takes the first trait
//!   implemented (an `Err`'s message is formatted only when `recording`: the span records
//!   it; an unsampled span's verdict allocates nothing):
//!
//!   | impl for | applies to | verdict |
//!   | --- | --- | --- |
//!   | `&&&&Outcome<Result<T, E>>` | `E: Display + Debug` | `Err`: [`exception_type`], `Display` message |
//!   | `&&&Outcome<Result<T, E>>` | `E: Display` | `Err`: type name, `Display` message |
//!   | `&&Outcome<Result<T, E>>` | `E: Debug` | `Err`: type name, `Debug` message |
//!   | `&Outcome<Result<T, E>>` | any `E` | `Err`: type name, type name as the message |
//!   | `Outcome<T>` | anything else | `Ok` |
//!
//!   In a generic function whose return type is a type parameter, the type is not known to be
//!   a `Result` where the expansion is compiled, so it is recorded as `Ok`.

use super::DistributedTracer;
use crate::tracer::core::TracerCore;
use crate::tracer::current::{self, Frame, Parent, Saved};
use crate::tracer::exception::exception_type;
use crate::tracer::instrument::{Instrumented, OnReady};
use crate::tracer::{DetachedSpan, KeyValue, SpanKind, SpanStatus};
use crate::user_fmt::{debug_text, display_text};
use std::borrow::Cow;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

/// Names lifetimes an `impl Trait` return type captures (the expansion of an `async fn` into
/// `fn .. -> impl Future + Captures<(&'a (), .., Self)>`, needed before edition 2024).
///
/// ```
/// use agentcore_telemetry::distributed::__private::Captures;
/// fn f<'a>(x: &'a str) -> impl Iterator<Item = char> + Captures<(&'a (),)> { x.chars() }
/// assert_eq!(f("ab").count(), 2);
/// ```
pub trait Captures<T: ?Sized> {}

impl<T: ?Sized, U: ?Sized> Captures<T> for U {}

/// `!`, as stable Rust lets a path name it (`impl Future<Output = !>` is unstable): the output of
/// an `async fn .. -> !`'s future (`impl Future<Output = Never>`), which `async fn` itself may
/// return on stable.
///
/// ```
/// use agentcore_telemetry::distributed::__private::Never;
/// fn forever() -> impl std::future::Future<Output = Never> {
///     async { loop {} }
/// }
/// # drop(forever());
/// ```
pub type Never = <fn() -> ! as FnOutput>::Output;

/// The return type of a function pointer (for [`Never`]).
pub trait FnOutput {
    /// `R` for `fn() -> R`.
    type Output;
}

impl<R> FnOutput for fn() -> R {
    type Output = R;
}

/// Calls `f` once: the expansion runs a sync function's body in a closure, so that `return`
/// and `?` come back to it; `FnOnce` lets the body return borrows of `&mut self`. The
/// expansion names `R` (`call_once::<DeclaredReturnType, _>`), so that the closure's return
/// type is the declared one and every `return` in the body is coerced to it (two
/// `Box::pin(async {..})` returned as one `Pin<Box<dyn Future>>`), as in the function itself.
///
/// ```
/// use agentcore_telemetry::distributed::__private::call_once;
/// use std::fmt::Debug;
/// assert_eq!(call_once(|| 1), 1);
/// let early = true;
/// let v = call_once::<Box<dyn Debug>, _>(|| {
///     if early {
///         return Box::new(1);
///     }
///     Box::new("two")
/// });
/// assert_eq!(format!("{v:?}"), "1");
/// ```
#[inline(always)]
pub fn call_once<R, F: FnOnce() -> R>(f: F) -> R {
    f()
}

/// The span of a sync function that returns `impl Trait` (not a future): its body is the
/// function's own, so that what it returns has the declared type to infer from (a closure
/// returned as `impl Fn(&str) -> &str` takes its signature from it; review helper-159: in a
/// closure of the expansion's, `|s| s.trim()` read "type annotations needed"). An opaque type
/// is never a `Result`: a return finishes the span with `Ok` status, as the verdict would; a
/// panic passing through records itself as the span drops (see `DetachedSpan`'s `Drop`).
///
/// ```
/// use agentcore_telemetry::distributed::__private::OkOnReturn;
/// use agentcore_telemetry::{get_distributed_tracer, SpanKind};
/// let _span = OkOnReturn::new(get_distributed_tracer().start_span("op", SpanKind::Internal, []));
/// ```
#[derive(Debug)]
pub struct OkOnReturn<'t> {
    span: crate::tracer::Span<'t>,
    /// Whether the thread was unwinding already when the span started (a destructor's call).
    unwinding: bool,
}

impl<'t> OkOnReturn<'t> {
    /// Holds `span`, started by the function.
    #[inline]
    pub fn new(span: crate::tracer::Span<'t>) -> Self {
        Self {
            span,
            unwinding: std::thread::panicking(),
        }
    }
}

impl Drop for OkOnReturn<'_> {
    #[inline]
    fn drop(&mut self) {
        // Not a panic of the function's: it returned (the span then ends as it drops).
        if self.unwinding || !std::thread::panicking() {
            Verdict::Ok.apply(&mut self.span);
        }
    }
}

/// `?` in the body of a `#[track_caller]` function, which runs inline (in a labeled block, not
/// a closure, which cannot be `#[track_caller]` on stable Rust): the expansion writes `x?` as
/// `match Branch::__agentcore_branch(x) { Continue(v) => v, Break(r) => break 'body
/// FromResidual::__agentcore_from_residual(r) }`, the stable part of `std::ops::Try` for
/// `Result` (with `From` on the error) and `Option`.
///
/// ```
/// use agentcore_telemetry::distributed::__private::{Branch, FromResidual};
/// use std::ops::ControlFlow;
/// let v: Result<u64, i64> = 'body: {
///     let x = match Branch::__agentcore_branch(Err::<u8, i32>(-1)) {
///         ControlFlow::Continue(v) => v,
///         ControlFlow::Break(r) => break 'body FromResidual::__agentcore_from_residual(r),
///     };
///     Ok(u64::from(x))
/// };
/// assert_eq!(v, Err(-1));
/// ```
pub trait Branch {
    /// What `x?` evaluates to.
    type Output;
    /// What `x?` returns early with (turned into the function's type by [`FromResidual`]).
    type Residual;
    /// `Continue(value)` or `Break(residual)`.
    fn __agentcore_branch(self) -> ControlFlow<Self::Residual, Self::Output>;
}

impl<T, E> Branch for Result<T, E> {
    type Output = T;
    type Residual = Result<Infallible, E>;
    #[inline(always)]
    fn __agentcore_branch(self) -> ControlFlow<Self::Residual, T> {
        match self {
            Ok(v) => ControlFlow::Continue(v),
            Err(e) => ControlFlow::Break(Err(e)),
        }
    }
}

impl<T> Branch for Option<T> {
    type Output = T;
    type Residual = Option<Infallible>;
    #[inline(always)]
    fn __agentcore_branch(self) -> ControlFlow<Self::Residual, T> {
        match self {
            Some(v) => ControlFlow::Continue(v),
            None => ControlFlow::Break(None),
        }
    }
}

/// `?` on a `ControlFlow`, as `std`'s `Try` (review helper-98: a `#[track_caller]` function
/// using it stopped compiling once traced).
impl<B, C> Branch for ControlFlow<B, C> {
    type Output = C;
    type Residual = ControlFlow<B, Infallible>;
    #[inline(always)]
    fn __agentcore_branch(self) -> ControlFlow<Self::Residual, C> {
        match self {
            ControlFlow::Continue(c) => ControlFlow::Continue(c),
            ControlFlow::Break(b) => ControlFlow::Break(ControlFlow::Break(b)),
        }
    }
}

/// `?` on a `Poll<Result<T, E>>`: `Poll<T>`, or the error returned early, as `std`'s `Try`.
impl<T, E> Branch for Poll<Result<T, E>> {
    type Output = Poll<T>;
    type Residual = Result<Infallible, E>;
    #[inline(always)]
    fn __agentcore_branch(self) -> ControlFlow<Self::Residual, Poll<T>> {
        match self {
            Poll::Ready(Ok(v)) => ControlFlow::Continue(Poll::Ready(v)),
            Poll::Ready(Err(e)) => ControlFlow::Break(Err(e)),
            Poll::Pending => ControlFlow::Continue(Poll::Pending),
        }
    }
}

/// `?` on a `Poll<Option<Result<T, E>>>` (a stream's poll), as `std`'s `Try`.
impl<T, E> Branch for Poll<Option<Result<T, E>>> {
    type Output = Poll<Option<T>>;
    type Residual = Result<Infallible, E>;
    #[inline(always)]
    fn __agentcore_branch(self) -> ControlFlow<Self::Residual, Poll<Option<T>>> {
        match self {
            Poll::Ready(Some(Ok(v))) => ControlFlow::Continue(Poll::Ready(Some(v))),
            Poll::Ready(Some(Err(e))) => ControlFlow::Break(Err(e)),
            Poll::Ready(None) => ControlFlow::Continue(Poll::Ready(None)),
            Poll::Pending => ControlFlow::Continue(Poll::Pending),
        }
    }
}

/// The early return of `x?` (see [`Branch`]).
pub trait FromResidual<R> {
    /// `Err(From::from(e))`, or `None`.
    fn __agentcore_from_residual(residual: R) -> Self;
}

impl<T, E, F: From<E>> FromResidual<Result<Infallible, E>> for Result<T, F> {
    #[inline(always)]
    fn __agentcore_from_residual(residual: Result<Infallible, E>) -> Self {
        match residual {
            Err(e) => Err(From::from(e)),
            Ok(never) => match never {},
        }
    }
}

impl<T> FromResidual<Option<Infallible>> for Option<T> {
    #[inline(always)]
    fn __agentcore_from_residual(_: Option<Infallible>) -> Self {
        None
    }
}

impl<B, C> FromResidual<ControlFlow<B, Infallible>> for ControlFlow<B, C> {
    #[inline(always)]
    fn __agentcore_from_residual(residual: ControlFlow<B, Infallible>) -> Self {
        match residual {
            ControlFlow::Break(b) => ControlFlow::Break(b),
            ControlFlow::Continue(never) => match never {},
        }
    }
}

impl<T, E, F: From<E>> FromResidual<Result<Infallible, E>> for Poll<Result<T, F>> {
    #[inline(always)]
    fn __agentcore_from_residual(residual: Result<Infallible, E>) -> Self {
        match residual {
            Err(e) => Poll::Ready(Err(From::from(e))),
            Ok(never) => match never {},
        }
    }
}

impl<T, E, F: From<E>> FromResidual<Result<Infallible, E>> for Poll<Option<Result<T, F>>> {
    #[inline(always)]
    fn __agentcore_from_residual(residual: Result<Infallible, E>) -> Self {
        match residual {
            Err(e) => Poll::Ready(Some(Err(From::from(e)))),
            Ok(never) => match never {},
        }
    }
}

/// The context current (for the global tracer) where an `async fn`'s future was created.
///
/// ```
/// use agentcore_telemetry::distributed::__private::Caller;
/// use agentcore_telemetry::{get_distributed_tracer, SpanKind};
/// let tracer = get_distributed_tracer();
/// let root = tracer.start_span("root", SpanKind::Server, []);
/// let caller = Caller::capture(tracer);
/// drop(root);
/// // Nothing is current now; the span still continues the caller's trace.
/// let span = caller.start("op", SpanKind::Internal, []);
/// assert!(span.parent_span_id().is_some());
/// ```
pub struct Caller<'t> {
    tracer: &'t DistributedTracer,
    parent: Option<Parent>,
}

impl<'t> Caller<'t> {
    /// Captures the context current here, now.
    #[inline]
    pub fn capture(tracer: &'t DistributedTracer) -> Self {
        Caller {
            tracer,
            parent: current::current(core(tracer).id()),
        }
    }

    /// Starts the operation's span (not current anywhere): a child of the context a scope
    /// runs the future in where it is first polled (`op().in_context(&span)`, `in_span`, an
    /// enclosing scoped future: the README's `execute_tool(..).in_context(&exec)`), else of
    /// the captured context, if any, else of the context current there (a future created
    /// outside any trace and awaited in one), else a new trace. The captured one wins over a
    /// span or guard merely open on the thread at the first poll, which can be another
    /// trace's (a current-thread runtime polls a spawned task under what its `block_on`
    /// caller has current; found by review).
    #[inline]
    pub fn start(
        self,
        name: impl Into<Cow<'static, str>>,
        kind: SpanKind,
        attributes: impl IntoIterator<Item = KeyValue>,
    ) -> DetachedSpan<'t> {
        self.tracer
            .start_detached_span_or(self.parent, name, kind, attributes)
    }

    /// Drops `value` (a traced future's start: its arguments, or the future of a function
    /// returning one) where [`Caller::start`] would start the span had the future been polled
    /// here (see [`Unstarted`]): here when a scope runs the future in a context here
    /// (`in_context`, `in_span`) or when nothing was captured, else in the captured context.
    #[cold]
    fn drop_unstarted<T>(self, value: T) {
        let tracer = core(self.tracer).id();
        let Some(p) = self.parent else {
            return drop(value);
        };
        if let Some((_, true)) = current::current_carried(tracer) {
            return drop(value);
        }
        let mut saved = Saved::one(Frame {
            tracer,
            key: 0, // a copy, as every frame a scope carries (`current.rs`, invariant 2)
            trace_id: p.trace_id,
            span_id: p.span_id,
            sampled: p.sampled,
            baggage: p.baggage,
            remote: p.remote,
        });
        let _scope = current::enter(&mut saved);
        drop(value);
    }
}

pin_project! {
    /// The future an `async fn` traced by `#[trace_operation]` returns (the expansion's):
    /// until its first poll, the caller and `make`, which holds the arguments and makes the
    /// body's future from the caller; at the first poll, that future, which starts the span
    /// ([`Caller::start`]: a child of the context a scope runs it in there, else of the
    /// captured context, else of the one current there). Dropped before that poll (a
    /// `select!` branch that never ran, a task aborted or shut down before it started), it
    /// drops `make`, and so the arguments, whose `Drop` may start spans, by the same rule: in
    /// the context a scope runs it in there (`in_context`), else in the captured context, as
    /// an `in_span` future dropped before its first poll drops its own in its span. (Before,
    /// they were dropped where the future was: on a runtime's worker, a new trace; found by
    /// review.) One or the other, never both: the future is as large as the body's future
    /// (which holds the caller and the arguments too), where keeping a copy of the captured
    /// context beside it made a traced `async fn`'s future 25 % larger (review helper-102).
    ///
    /// ```
    /// use agentcore_telemetry::distributed::__private::{Caller, Unstarted};
    /// let caller = Caller::capture(agentcore_telemetry::get_distributed_tracer());
    /// let fut = Unstarted::new(caller, |caller| async move { drop(caller) });
    /// # drop(fut);
    /// ```
    #[must_use = "futures do nothing unless polled"]
    // The fields are documented on their variants: `pin_project!` takes no doc comment on
    // an enum variant's field.
    #[allow(missing_docs)]
    #[project = UnstartedProj]
    #[project_replace = UnstartedOwn]
    pub enum Unstarted<'t, G, F> {
        /// Not polled yet: the caller and `make`.
        Start { start: Pending<'t, G> },
        /// Polled: the body's future.
        Running { #[pin] inner: F },
        /// Only while the first poll moves from one to the other.
        Moving,
    }
}

/// What an [`Unstarted`] future holds until its first poll. Dropped still holding it, it
/// drops `make` where the span would have started (as [`Caller::start`] would start it).
pub struct Pending<'t, G>(Option<(Caller<'t>, G)>);

impl<G> Drop for Pending<'_, G> {
    fn drop(&mut self) {
        if let Some((caller, make)) = self.0.take() {
            caller.drop_unstarted(make);
        }
    }
}

impl<G> fmt::Debug for Pending<'_, G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Pending")
            .field(&self.0.as_ref().map(|(caller, _)| caller))
            .finish()
    }
}

impl<'t, G: FnOnce(Caller<'t>) -> F, F> Unstarted<'t, G, F> {
    /// An `async fn`'s future: `make` makes the body's future from `caller` at the first
    /// poll.
    #[inline]
    pub fn new(caller: Caller<'t>, make: G) -> Self {
        Unstarted::Start {
            start: Pending(Some((caller, make))),
        }
    }
}

impl<'t, G: FnOnce(Caller<'t>) -> F, F: Future> Future for Unstarted<'t, G, F> {
    type Output = F::Output;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        if let UnstartedProj::Start { .. } = self.as_mut().project() {
            if let UnstartedOwn::Start { mut start } =
                self.as_mut().project_replace(Unstarted::Moving)
            {
                if let Some((caller, make)) = start.0.take() {
                    // Started: from now on the body's future drops what it holds in its own
                    // scope. (`make` only builds it: no user code runs here.)
                    self.as_mut().project_replace(Unstarted::Running {
                        inner: make(caller),
                    });
                }
            }
        }
        match self.project() {
            UnstartedProj::Running { inner } => inner.poll(cx),
            // Never: `Moving` only inside the first poll.
            UnstartedProj::Start { .. } | UnstartedProj::Moving => Poll::Pending,
        }
    }
}

impl fmt::Debug for Caller<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Caller")
            .field("parent_trace", &self.parent.as_ref().map(|p| p.trace_id))
            .finish()
    }
}

fn core(tracer: &DistributedTracer) -> &TracerCore {
    tracer.core()
}

/// How a traced function ended.
///
/// ```
/// use agentcore_telemetry::distributed::__private::Verdict;
/// use agentcore_telemetry::{get_distributed_tracer, SpanKind, SpanStatus};
/// let mut span = get_distributed_tracer().start_detached_span("op", SpanKind::Internal, []);
/// Verdict::Err { exception_type: "E".into(), message: "boom".into() }.apply(&mut span);
/// assert_eq!(span.status(), SpanStatus::Error);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Returned normally (not an `Err`): status `Ok`.
    Ok,
    /// Returned an `Err`: an `exception` event and status `Error` with the message.
    Err {
        /// `exception.type`.
        exception_type: Cow<'static, str>,
        /// `exception.message` and the status message.
        message: String,
    },
}

impl Verdict {
    /// An `Err` of type `E` whose message is not formatted: the span records nothing
    /// (formatting it would allocate for nothing).
    #[inline]
    fn unrecorded_err<E>() -> Verdict {
        Verdict::Err {
            exception_type: Cow::Borrowed(std::any::type_name::<E>()),
            message: String::new(),
        }
    }

    /// Records the verdict on `span`.
    #[inline]
    pub fn apply(self, span: &mut DetachedSpan<'_>) {
        match self {
            Verdict::Ok => span.set_status(SpanStatus::Ok, ""),
            Verdict::Err {
                exception_type,
                message,
            } => {
                if span.is_recording() {
                    span.record_exception_parts(exception_type, message.clone());
                    span.set_status(SpanStatus::Error, message);
                }
            }
        }
    }
}

/// A verdict from a completion hook: `instrument`'s third argument.
impl<T, V: FnOnce(&T, bool) -> Verdict> OnReady<T> for V {
    #[inline]
    fn on_ready(self, output: &T, span: &mut DetachedSpan<'_>) {
        self(output, span.is_recording()).apply(span);
    }
}

/// Runs `future` in `span` and records `verdict(&output, recording)` when it completes (the
/// expansion of an `async fn`; `recording`: whether the span records). A function rather than `Instrumented::with_hook`, so that the closure's
/// argument type is known (the future's output) when the closure is type-checked.
///
/// ```
/// use agentcore_telemetry::distributed::__private::{instrument, Verdict};
/// use agentcore_telemetry::{get_distributed_tracer, SpanKind};
/// let span = get_distributed_tracer().start_detached_span("op", SpanKind::Internal, []);
/// let fut = instrument(async { 1 }, span, |out: &i32, _recording| if *out > 0 { Verdict::Ok } else { Verdict::Ok });
/// # drop(fut);
/// ```
#[inline]
pub fn instrument<'t, F, V>(future: F, span: DetachedSpan<'t>, verdict: V) -> Instrumented<'t, F, V>
where
    F: Future,
    V: FnOnce(&F::Output, bool) -> Verdict,
{
    Instrumented::with_hook(future, span, verdict)
}

pin_project! {
    /// The future a traced function that returns one (`-> impl Future`) returns: at its first
    /// poll it starts the span (as [`Caller::start`]), then runs `future` in it as
    /// [`instrument`] does. Made by [`traced`].
    ///
    /// Not an `async` block (the expansion's before, review helper-98): one is never `Unpin`,
    /// so a function returning `std::future::ready(x)`, `Unpin` through `impl Future`'s auto
    /// traits, stopped being `Unpin` once traced. This one is `Unpin` when `future` is.
    #[must_use = "futures do nothing unless polled"]
    pub struct Traced<'t, F: Future, A, V: OnReady<F::Output>> {
        // The start's parts until the first poll, then `None`.
        start: Option<(Caller<'t>, &'static str, SpanKind, A, F, V)>,
        #[pin]
        running: Option<Instrumented<'t, F, V>>,
    }

    /// Dropped before its first poll, it drops the future (and what it holds) as
    /// [`Unstarted`] does.
    impl<'t, F: Future, A, V: OnReady<F::Output>> PinnedDrop for Traced<'t, F, A, V> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some((caller, name, kind, attributes, future, verdict)) = this.start.take() {
                caller.drop_unstarted((name, kind, attributes, future, verdict));
            }
        }
    }
}

impl<'t, F, A, V> Future for Traced<'t, F, A, V>
where
    F: Future,
    A: IntoIterator<Item = KeyValue>,
    V: OnReady<F::Output>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let mut this = self.project();
        if let Some((caller, name, kind, attributes, future, verdict)) = this.start.take() {
            let span = caller.start(name, kind, attributes);
            this.running
                .set(Some(Instrumented::with_hook(future, span, verdict)));
        }
        match this.running.as_pin_mut() {
            Some(running) => running.poll(cx),
            // `start` is `Some` until `running` is: not reachable.
            None => unreachable!("a traced future without its start"),
        }
    }
}

/// The future of a traced function that returns one (the expansion's): see [`Traced`].
///
/// ```
/// use agentcore_telemetry::distributed::__private::{traced, Caller, Verdict};
/// use agentcore_telemetry::{get_distributed_tracer, KeyValue, SpanKind};
/// let caller = Caller::capture(get_distributed_tracer());
/// let fut = traced(caller, "op", SpanKind::Internal, [KeyValue::new("k", 1)],
///     std::future::ready(1), |_: &i32, _recording| Verdict::Ok);
/// fn unpin<T: Unpin>(_: &T) {}
/// unpin(&fut);
/// ```
#[inline]
pub fn traced<'t, F, A, V>(
    caller: Caller<'t>,
    name: &'static str,
    kind: SpanKind,
    attributes: A,
    future: F,
    verdict: V,
) -> Traced<'t, F, A, V>
where
    F: Future,
    A: IntoIterator<Item = KeyValue>,
    V: FnOnce(&F::Output, bool) -> Verdict,
{
    Traced {
        start: Some((caller, name, kind, attributes, future, verdict)),
        running: None,
    }
}

/// A function's return value, for the verdict lookup (see the module docs).
#[derive(Debug)]
pub struct Outcome<'a, T: ?Sized>(pub &'a T);

/// `Err` of a `Result` whose error is `Display + Debug` (see the module docs).
pub trait VerdictDisplayDebug {
    /// The verdict.
    fn __agentcore_verdict(&self, recording: bool) -> Verdict;
}

impl<T, E: fmt::Display + fmt::Debug> VerdictDisplayDebug for &&&&Outcome<'_, Result<T, E>> {
    #[inline]
    fn __agentcore_verdict(&self, recording: bool) -> Verdict {
        match self.0 {
            Ok(_) => Verdict::Ok,
            Err(_) if !recording => Verdict::unrecorded_err::<E>(),
            Err(e) => Verdict::Err {
                exception_type: exception_type(e),
                message: display_text(e),
            },
        }
    }
}

/// `Err` of a `Result` whose error is `Display` only.
pub trait VerdictDisplay {
    /// The verdict.
    fn __agentcore_verdict(&self, recording: bool) -> Verdict;
}

impl<T, E: fmt::Display> VerdictDisplay for &&&Outcome<'_, Result<T, E>> {
    #[inline]
    fn __agentcore_verdict(&self, recording: bool) -> Verdict {
        match self.0 {
            Ok(_) => Verdict::Ok,
            Err(_) if !recording => Verdict::unrecorded_err::<E>(),
            Err(e) => Verdict::Err {
                exception_type: Cow::Borrowed(std::any::type_name::<E>()),
                message: display_text(e),
            },
        }
    }
}

/// `Err` of a `Result` whose error is `Debug` only.
pub trait VerdictDebug {
    /// The verdict.
    fn __agentcore_verdict(&self, recording: bool) -> Verdict;
}

impl<T, E: fmt::Debug> VerdictDebug for &&Outcome<'_, Result<T, E>> {
    #[inline]
    fn __agentcore_verdict(&self, recording: bool) -> Verdict {
        match self.0 {
            Ok(_) => Verdict::Ok,
            Err(_) if !recording => Verdict::unrecorded_err::<E>(),
            Err(e) => Verdict::Err {
                exception_type: Cow::Borrowed(std::any::type_name::<E>()),
                message: debug_text(e),
            },
        }
    }
}

/// `Err` of any `Result`.
pub trait VerdictAnyErr {
    /// The verdict.
    fn __agentcore_verdict(&self, recording: bool) -> Verdict;
}

impl<T, E> VerdictAnyErr for &Outcome<'_, Result<T, E>> {
    #[inline]
    fn __agentcore_verdict(&self, recording: bool) -> Verdict {
        match self.0 {
            Ok(_) => Verdict::Ok,
            Err(_) if !recording => Verdict::unrecorded_err::<E>(),
            // Nothing to format: the type's name says what failed (an empty message said
            // nothing; review helper-162).
            Err(_) => Verdict::Err {
                exception_type: Cow::Borrowed(std::any::type_name::<E>()),
                message: std::any::type_name::<E>().to_owned(),
            },
        }
    }
}

/// Anything but a `Result`.
pub trait VerdictOk {
    /// The verdict.
    fn __agentcore_verdict(&self, recording: bool) -> Verdict;
}

impl<T: ?Sized> VerdictOk for Outcome<'_, T> {
    #[inline]
    fn __agentcore_verdict(&self, _recording: bool) -> Verdict {
        Verdict::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An [`Unstarted`] future is its state before the first poll or the body's future, never
    /// both: at most a tag larger than the body's future. (Keeping a copy of the captured
    /// context beside the body's future, as its first version did, made a traced `async fn`'s
    /// future 64 bytes larger: 336 -> 400 bytes for a one-line body.)
    #[test]
    fn an_unstarted_future_is_no_larger_than_its_body_and_a_tag() {
        let tracer = crate::get_distributed_tracer();
        let arg = [0u64; 4];
        let make = move |caller: Caller<'static>| async move {
            std::hint::black_box(&arg);
            drop(caller);
        };
        let body = std::mem::size_of_val(&make(Caller::capture(tracer)));
        let traced = std::mem::size_of_val(&Unstarted::new(Caller::capture(tracer), make));
        assert!(
            traced <= body + 16,
            "an unstarted future of {traced} bytes around a body of {body}"
        );
    }
}
