//! `#[trace_operation]` recognises errors by type, not by spelling: a `Result` alias,
//! `anyhow::Result`, `io::Result`, an `async fn` and an `impl Future<Output = Result<..>>` (the
//! async form, and `Pin<Box<dyn Future>>` as `#[async_trait]` writes it) all record an `Err` as
//! an exception with `Error` status; non-`Result` types (and a generic `T`) record `Ok`. Also
//! the shapes the `async fn` rewrite must keep compiling: methods on `&self`/`&mut self`,
//! generic impls with lifetimes, `impl Trait` and pattern arguments, `?` with conversions, and
//! the moment arguments are dropped.

use agentcore_telemetry::{
    get_distributed_tracer, trace_operation, FutureExt, SpanKind, SpanRecord, SpanStatus, Value,
};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug)]
struct AgentError(&'static str);

impl fmt::Display for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "agent error: {}", self.0)
    }
}

impl std::error::Error for AgentError {}

impl From<std::num::ParseIntError> for AgentError {
    fn from(_: std::num::ParseIntError) -> Self {
        AgentError("not a number")
    }
}

type AgentResult<T> = Result<T, AgentError>;

/// Held by each test: one test queries the global span log at a time (its readers skip a
/// slot another reader holds at that instant).
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `f` in a fresh trace (a detached root span) and returns the span named `name`.
fn traced<R>(name: &str, f: impl FnOnce() -> R) -> (R, SpanRecord) {
    let tracer = get_distributed_tracer();
    let root = tracer.start_span("test_root", SpanKind::Server, []);
    let (root_id, trace_id) = (root.span_id(), root.trace_id());
    let out = f();
    root.end();
    let spans = tracer.get_trace_spans(trace_id);
    let span = spans
        .into_iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no span {name}"));
    assert_eq!(
        span.parent_span_id,
        Some(root_id),
        "{name} is a child of the root"
    );
    (out, span)
}

fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
        .block_on(f)
}

/// Runs an async operation in a fresh trace, on a current-thread runtime.
fn traced_async<F: Future>(name: &str, f: impl FnOnce() -> F) -> (F::Output, SpanRecord) {
    traced(name, || {
        let cx = get_distributed_tracer().current_context().unwrap();
        let ctx = get_distributed_tracer().detached_context(cx);
        block_on(async { f().await }.in_context(ctx))
    })
}

fn exception(span: &SpanRecord) -> (String, String) {
    let e = span
        .events
        .iter()
        .find(|e| e.name == "exception")
        .unwrap_or_else(|| panic!("no exception event on {span:#?}"));
    let get = |k: &str| {
        e.attributes
            .iter()
            .find(|kv| kv.key == k)
            .map(|kv| kv.value.to_string())
            .unwrap()
    };
    (get("exception.type"), get("exception.message"))
}

fn assert_err(span: &SpanRecord, ty: &str, message: &str) {
    assert_eq!(span.status, SpanStatus::Error, "{span:#?}");
    assert_eq!(&*span.status_message, message);
    assert_eq!(exception(span), (ty.to_string(), message.to_string()));
}

fn assert_ok(span: &SpanRecord) {
    assert_eq!(span.status, SpanStatus::Ok, "{span:#?}");
    assert!(span.events.iter().all(|e| e.name != "exception"));
}

// ---- sync -----------------------------------------------------------------------------------

#[trace_operation]
fn alias_result(fail: bool) -> AgentResult<u8> {
    let n: u8 = if fail { "x".parse()? } else { "7".parse()? }; // `?` with `From`
    Ok(n)
}

#[trace_operation]
fn anyhow_result(fail: bool) -> anyhow::Result<u8> {
    if fail {
        anyhow::bail!("anyhow failure");
    }
    Ok(1)
}

#[trace_operation]
fn io_result(fail: bool) -> std::io::Result<u8> {
    if fail {
        return Err(std::io::Error::other("disk full"));
    }
    Ok(2)
}

#[trace_operation]
fn boxed_result(fail: bool) -> Result<u8, Box<dyn std::error::Error + Send + Sync>> {
    if fail {
        Err("x".parse::<u8>().unwrap_err())?;
    }
    Ok(3)
}

#[derive(Debug)]
struct DebugOnly;

#[trace_operation]
fn debug_only_error() -> Result<(), DebugOnly> {
    Err(DebugOnly)
}

struct Opaque;

#[trace_operation]
fn opaque_error() -> Result<(), Opaque> {
    Err(Opaque)
}

#[trace_operation]
fn not_a_result() -> Option<u8> {
    None
}

#[trace_operation]
fn generic<T>(value: T) -> T {
    value
}

#[test]
fn sync_results_are_recognised_by_type() {
    let _serial = serial();
    let (out, span) = traced("alias_result", || alias_result(true));
    assert!(out.is_err());
    assert_err(
        &span,
        std::any::type_name::<AgentError>(),
        "agent error: not a number",
    );
    let (_, span) = traced("alias_result", || alias_result(false));
    assert_ok(&span);

    let (_, span) = traced("anyhow_result", || anyhow_result(true));
    assert_err(&span, "anyhow::Error", "anyhow failure");
    let (_, span) = traced("anyhow_result", || anyhow_result(false));
    assert_ok(&span);

    let (_, span) = traced("io_result", || io_result(true));
    assert_err(&span, "std::io::error::Error", "disk full");

    // A type-erased error: its `Debug` form names the concrete error.
    let (_, span) = traced("boxed_result", || boxed_result(true));
    assert_err(
        &span,
        "ParseIntError { kind: InvalidDigit }",
        "invalid digit found in string",
    );

    let (_, span) = traced("debug_only_error", debug_only_error);
    assert_err(&span, std::any::type_name::<DebugOnly>(), "DebugOnly");
    let (_, span) = traced("opaque_error", opaque_error);
    // Neither `Display` nor `Debug`: its type's name is the message (review helper-162).
    assert_err(
        &span,
        std::any::type_name::<Opaque>(),
        std::any::type_name::<Opaque>(),
    );

    let (_, span) = traced("not_a_result", not_a_result);
    assert_ok(&span);
    // A generic return type is not known to be a `Result` where the expansion compiles.
    let (out, span) = traced("generic", || generic::<Result<u8, String>>(Err("e".into())));
    assert!(out.is_err());
    assert_ok(&span);
}

// ---- async ----------------------------------------------------------------------------------

#[trace_operation]
async fn async_alias(fail: bool) -> AgentResult<u8> {
    tokio::task::yield_now().await;
    let n: u8 = if fail { "x".parse()? } else { "9".parse()? };
    Ok(n)
}

#[trace_operation]
async fn async_anyhow(fail: bool) -> anyhow::Result<()> {
    tokio::task::yield_now().await;
    anyhow::ensure!(!fail, "async anyhow failure");
    Ok(())
}

#[trace_operation]
async fn async_io(fail: bool) -> std::io::Result<()> {
    tokio::task::yield_now().await;
    if fail {
        return Err(std::io::Error::other("async io"));
    }
    Ok(())
}

/// The async form: a plain function returning `impl Future<Output = Result<..>>`.
#[trace_operation(name = "future_form")]
fn future_form(fail: bool) -> impl Future<Output = AgentResult<u8>> + Send {
    async move {
        tokio::task::yield_now().await;
        if fail {
            Err(AgentError("future form"))
        } else {
            Ok(4)
        }
    }
}

/// What `#[async_trait]` writes.
#[trace_operation(name = "boxed_future_form")]
fn boxed_future_form(fail: bool) -> Pin<Box<dyn Future<Output = std::io::Result<u8>> + Send>> {
    Box::pin(async move {
        tokio::task::yield_now().await;
        if fail {
            Err(std::io::Error::other("boxed future"))
        } else {
            Ok(5)
        }
    })
}

/// An `Unpin` future (a `ready`, a hand-written state machine): the traced one must be `Unpin`
/// too (the rewrite's `async` block is not: E0277, "cannot be unpinned").
#[trace_operation(name = "unpin_future_form")]
fn unpin_future_form(fail: bool) -> impl Future<Output = std::io::Result<u8>> + Send + Unpin {
    std::future::ready(if fail {
        Err(std::io::Error::other("unpin future"))
    } else {
        Ok(6)
    })
}

#[test]
fn async_results_are_recognised_by_type() {
    let _serial = serial();
    let (_, span) = traced_async("async_alias", || async_alias(true));
    assert_err(
        &span,
        std::any::type_name::<AgentError>(),
        "agent error: not a number",
    );
    let (out, span) = traced_async("async_alias", || async_alias(false));
    assert_eq!(out.unwrap(), 9);
    assert_ok(&span);

    let (_, span) = traced_async("async_anyhow", || async_anyhow(true));
    assert_err(&span, "anyhow::Error", "async anyhow failure");
    let (_, span) = traced_async("async_io", || async_io(true));
    assert_err(&span, "std::io::error::Error", "async io");
    let (_, span) = traced_async("async_io", || async_io(false));
    assert_ok(&span);

    let (_, span) = traced_async("future_form", || future_form(true));
    assert_err(
        &span,
        std::any::type_name::<AgentError>(),
        "agent error: future form",
    );
    let (out, span) = traced_async("future_form", || future_form(false));
    assert_eq!(out.unwrap(), 4);
    assert_ok(&span);

    let (_, span) = traced_async("boxed_future_form", || boxed_future_form(true));
    assert_err(&span, "std::io::error::Error", "boxed future");
    let (_, span) = traced_async("boxed_future_form", || boxed_future_form(false));
    assert_ok(&span);

    let (_, span) = traced_async("unpin_future_form", || unpin_future_form(true));
    assert_err(&span, "std::io::error::Error", "unpin future");
    let (out, span) = traced_async("unpin_future_form", || unpin_future_form(false));
    assert_eq!(out.unwrap(), 6);
    assert_ok(&span);

    // The futures are `Send` (spawnable) when their bodies are.
    fn spawnable<F: Future + Send + 'static>(_: &F) {}
    spawnable(&async_alias(false));
    spawnable(&future_form(false));
    spawnable(&boxed_future_form(false));
    fn unpin<F: Future + Unpin>(_: &F) {}
    unpin(&unpin_future_form(false));
}

// ---- shapes the async rewrite keeps compiling --------------------------------------------

struct Agent<'a, T> {
    name: &'a str,
    memory: Vec<T>,
}

impl<'a, T: Clone + fmt::Debug + Send + Sync> Agent<'a, T> {
    #[trace_operation(attributes(agent = self.name.to_string()))]
    async fn remember(&mut self, item: T) -> &mut Vec<T> {
        tokio::task::yield_now().await;
        self.memory.push(item);
        &mut self.memory
    }

    #[trace_operation]
    async fn name_of(&self, prefix: &str) -> String {
        tokio::task::yield_now().await;
        format!("{prefix}{}", self.name)
    }

    #[trace_operation]
    async fn first(&self) -> Option<&T> {
        self.memory.first()
    }

    #[trace_operation]
    async fn into_memory(self) -> Vec<T> {
        self.memory
    }

    #[trace_operation]
    async fn with_self_type(other: &Self, (a, b): (u8, u8), _: u8) -> usize {
        other.memory.len() + usize::from(a) + usize::from(b)
    }
}

#[trace_operation]
async fn impl_trait_arg(
    x: impl fmt::Display + Send,
    mut n: u32,
    f: impl Fn(&str) -> usize,
) -> String {
    n += 1;
    tokio::task::yield_now().await;
    format!("{x}{n}{}", f("ab"))
}

#[trace_operation]
async fn explicit_lifetimes<'a, 'b>(a: &'a str, b: &'b str) -> &'a str {
    let _ = b;
    a
}

/// An argument the body never uses, dropped (like an `async fn`'s) when the future ends,
/// not when it is created.
struct DropFlag<'a>(&'a AtomicBool);

impl Drop for DropFlag<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[trace_operation]
async fn holds_its_arguments(_flag: DropFlag<'_>, _: DropFlag<'_>) {
    tokio::task::yield_now().await;
}

trait Tool {
    async fn run(&self, input: u32) -> AgentResult<u32>;
}

struct Doubler;

impl Tool for Doubler {
    #[trace_operation(name = "doubler_run")]
    async fn run(&self, input: u32) -> AgentResult<u32> {
        if input == 0 {
            return Err(AgentError("zero"));
        }
        Ok(input * 2)
    }
}

#[test]
fn the_async_rewrite_keeps_methods_lifetimes_and_arguments_working() {
    let _serial = serial();
    let (_, span) = traced_async("remember", || async {
        let mut agent = Agent {
            name: "a1",
            memory: vec![1u8],
        };
        assert_eq!(agent.remember(2).await.len(), 2);
        assert_eq!(agent.name_of("agent-").await, "agent-a1");
        assert_eq!(agent.first().await, Some(&1));
        assert_eq!(Agent::with_self_type(&agent, (1, 2), 0).await, 5);
        assert_eq!(agent.into_memory().await, [1, 2]);
    });
    assert_eq!(
        span.attribute("agent"),
        Some(&Value::from("a1".to_string()))
    );

    let (out, _) = traced_async("impl_trait_arg", || {
        impl_trait_arg("x", 1, |s: &str| s.len())
    });
    assert_eq!(out, "x22");
    let (out, _) = traced_async("explicit_lifetimes", || explicit_lifetimes("a", "b"));
    assert_eq!(out, "a");

    let (a, b) = (AtomicBool::new(false), AtomicBool::new(false));
    let fut = holds_its_arguments(DropFlag(&a), DropFlag(&b));
    assert!(
        !a.load(Ordering::SeqCst) && !b.load(Ordering::SeqCst),
        "dropped too early"
    );
    block_on(fut);
    assert!(a.load(Ordering::SeqCst) && b.load(Ordering::SeqCst));

    let (out, span) = traced_async("doubler_run", || Doubler.run(0));
    assert!(out.is_err());
    assert_err(
        &span,
        std::any::type_name::<AgentError>(),
        "agent error: zero",
    );
}

// ---- boxed futures spelled through an alias -------------------------------------------------

/// `futures::future::BoxFuture`'s definition; recognised by its name (the last segment).
type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[trace_operation(name = "box_future_alias")]
fn box_future_alias(fail: bool) -> BoxFuture<'static, std::io::Result<u8>> {
    Box::pin(async move {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        if fail {
            Err(std::io::Error::other("late failure"))
        } else {
            Ok(6)
        }
    })
}

/// Any other alias hides the future: `boxed_future` says it is one.
type Job<T> = Pin<Box<dyn Future<Output = T> + Send>>;

#[trace_operation(name = "job_alias", boxed_future)]
fn job_alias(fail: bool) -> Job<std::io::Result<u8>> {
    Box::pin(async move {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        if fail {
            Err(std::io::Error::other("late job failure"))
        } else {
            Ok(7)
        }
    })
}

fn duration_ms(span: &SpanRecord) -> f64 {
    (span.end_time_unix_nano - span.start_time_unix_nano) as f64 / 1e6
}

#[test]
fn a_box_future_alias_is_traced_like_pin_box_dyn_future() {
    let _serial = serial();
    // The span covers the future's run (not just its creation) and sees its `Err` output.
    let (out, span) = traced_async("box_future_alias", || box_future_alias(true));
    assert!(out.is_err());
    assert_err(&span, "std::io::error::Error", "late failure");
    assert!(duration_ms(&span) >= 50.0, "{} ms", duration_ms(&span));
    let (out, span) = traced_async("box_future_alias", || box_future_alias(false));
    assert_eq!(out.unwrap(), 6);
    assert_ok(&span);

    let (out, span) = traced_async("job_alias", || job_alias(true));
    assert!(out.is_err());
    assert_err(&span, "std::io::error::Error", "late job failure");
    assert!(duration_ms(&span) >= 50.0, "{} ms", duration_ms(&span));
    let (out, span) = traced_async("job_alias", || job_alias(false));
    assert_eq!(out.unwrap(), 7);
    assert_ok(&span);
}

// ---- errors whose formatting fails ----------------------------------------------------------

/// An error whose `Display` and `Debug` write a little and then fail, as an implementation that
/// passes on an inner writer's error with `?` does (`to_string()` would panic on it).
struct FailingFmt;

impl fmt::Display for FailingFmt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("half")?;
        Err(fmt::Error)
    }
}

impl fmt::Debug for FailingFmt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[trace_operation]
fn failing_fmt() -> Result<u8, FailingFmt> {
    Err(FailingFmt)
}

#[trace_operation]
async fn failing_fmt_async() -> Result<u8, FailingFmt> {
    Err(FailingFmt)
}

/// The error of the verdicts that use `Debug` only.
struct FailingDebug;

impl fmt::Debug for FailingDebug {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        Err(fmt::Error)
    }
}

#[trace_operation]
fn failing_debug() -> Result<u8, FailingDebug> {
    Err(FailingDebug)
}

/// A traced function returning an `Err` whose formatting fails still returns its `Err` (review
/// helper-96: the verdict's `to_string()` panicked instead, sync and async, sampled or not),
/// and its span records what the formatting wrote, marked.
#[test]
fn an_err_whose_formatting_fails_is_returned_not_a_panic() {
    let _serial = serial();
    let (out, span) = traced("failing_fmt", failing_fmt);
    assert!(matches!(out, Err(FailingFmt)));
    assert_err(
        &span,
        std::any::type_name::<FailingFmt>(),
        "half<fmt::Error>",
    );
    let (out, span) = traced_async("failing_fmt_async", failing_fmt_async);
    assert!(matches!(out, Err(FailingFmt)));
    assert_err(
        &span,
        std::any::type_name::<FailingFmt>(),
        "half<fmt::Error>",
    );
    let (out, span) = traced("failing_debug", failing_debug);
    assert!(matches!(out, Err(FailingDebug)));
    assert_err(&span, std::any::type_name::<FailingDebug>(), "<fmt::Error>");
    // `record_exception` on a span of its own.
    let tracer = get_distributed_tracer();
    let mut span = tracer.start_span("record_failing", SpanKind::Internal, []);
    tracer.record_exception(&mut span, &FailingFmt);
    let id = span.span_id();
    span.end();
    let record = tracer.get_span_by_id(id).unwrap();
    assert_eq!(
        exception(&record),
        (
            std::any::type_name::<FailingFmt>().to_string(),
            "half<fmt::Error>".to_string()
        )
    );
}
