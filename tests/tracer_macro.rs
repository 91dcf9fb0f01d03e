//! `#[trace_operation]`: the spec's 5 decorator scenarios plus async error/panic, default
//! names and methods. All use the global tracer; each test finds its spans through a trace
//! of its own.

use agentcore_telemetry::{
    get_distributed_tracer, trace_operation, FutureExt, SpanKind, SpanRecord, SpanStatus, TraceId,
    Value,
};
use std::fmt;

#[derive(Debug)]
struct AgentError(String);

impl fmt::Display for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "agent error: {}", self.0)
    }
}

/// Runs `f` inside a fresh trace and returns that trace's finished spans.
fn in_trace<R>(label: &str, f: impl FnOnce() -> R) -> (R, Vec<SpanRecord>, TraceId) {
    let tracer = get_distributed_tracer();
    let cx = tracer.start_trace(None, [("test", label)]);
    let trace_id = cx.trace_id();
    let out = f();
    drop(cx);
    (out, tracer.get_trace_spans(trace_id), trace_id)
}

fn exception_attr<'a>(span: &'a SpanRecord, key: &str) -> Option<&'a Value> {
    span.events
        .iter()
        .find(|e| e.name == "exception")?
        .attributes
        .iter()
        .find(|kv| kv.key == key)
        .map(|kv| &kv.value)
}

#[trace_operation(name = "calculate_metrics")]
fn calculate_metrics(data: &[i64]) -> (usize, i64) {
    (data.len(), data.iter().sum())
}

#[test]
fn spec_decorator_sync_function_is_traced() {
    let (out, spans, trace_id) = in_trace("sync", || calculate_metrics(&[1, 2, 3]));
    assert_eq!(out, (3, 6));
    assert_eq!(spans.len(), 1);
    let s = &spans[0];
    assert_eq!(s.name, "calculate_metrics");
    assert_eq!(s.kind, SpanKind::Internal);
    assert_eq!(s.status, SpanStatus::Ok);
    assert_eq!(s.trace_id, trace_id);
    assert_eq!(s.parent_span_id, None);
}

#[trace_operation(name = "create_agent", attributes(component = "agent_lifecycle"))]
async fn create_agent(id: u32) -> u32 {
    tokio::task::yield_now().await;
    let child = inner_step(id).await;
    tokio::task::yield_now().await;
    child
}

#[trace_operation]
async fn inner_step(id: u32) -> u32 {
    tokio::task::yield_now().await;
    id * 2
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_decorator_async_function_is_traced_across_awaits() {
    let tracer = get_distributed_tracer();
    let root = tracer.start_span("decorator_async_root", SpanKind::Server, []);
    let (root_id, trace_id) = (root.span_id(), root.trace_id());
    let out = tokio::spawn(create_agent(21).in_span(root)).await.unwrap();
    assert_eq!(out, 42);
    let spans = tracer.get_trace_spans(trace_id);
    assert_eq!(spans.len(), 3, "{spans:#?}");
    let create = spans.iter().find(|s| s.name == "create_agent").unwrap();
    let inner = spans.iter().find(|s| s.name == "inner_step").unwrap();
    assert_eq!(create.parent_span_id, Some(root_id));
    assert_eq!(inner.parent_span_id, Some(create.span_id));
    assert_eq!(
        create.attribute("component"),
        Some(&Value::from("agent_lifecycle"))
    );
    assert_eq!(create.status, SpanStatus::Ok);
    assert!(create.start_time_unix_nano <= inner.start_time_unix_nano);
    assert!(inner.end_time_unix_nano <= create.end_time_unix_nano);
}

#[trace_operation(name = "validate_config")]
fn validate_config(value: i64) -> Result<i64, AgentError> {
    if value < 0 {
        return Err(AgentError(format!("negative value {value}")));
    }
    let parsed: i64 = "7".parse().map_err(|_| AgentError("unparsable".into()))?;
    Ok(value + parsed)
}

#[test]
fn spec_decorator_err_is_recorded_as_exception() {
    let (out, spans, _) = in_trace("err", || validate_config(-1));
    assert!(out.is_err());
    let s = &spans[0];
    assert_eq!(s.status, SpanStatus::Error);
    assert_eq!(s.status_message, "agent error: negative value -1");
    let ty = exception_attr(s, "exception.type")
        .unwrap()
        .as_str()
        .unwrap();
    assert!(ty.ends_with("AgentError"), "{ty}");
    assert_eq!(
        exception_attr(s, "exception.message").unwrap().as_str(),
        Some("agent error: negative value -1")
    );

    let (out, spans, _) = in_trace("ok", || validate_config(1));
    assert_eq!(out.unwrap(), 8);
    assert_eq!(spans[0].status, SpanStatus::Ok);
    assert!(spans[0].events.is_empty());
}

#[trace_operation]
fn explode(n: u32) -> u32 {
    if n > 0 {
        panic!("boom {n}");
    }
    n
}

#[test]
fn spec_decorator_panic_is_recorded_and_keeps_unwinding() {
    let (out, spans, _) = in_trace("panic", || std::panic::catch_unwind(|| explode(3)));
    assert!(out.is_err(), "the panic propagated");
    assert_eq!(spans.len(), 1);
    let s = &spans[0];
    assert_eq!(s.name, "explode");
    assert_eq!(s.status, SpanStatus::Error);
    assert_eq!(
        exception_attr(s, "exception.type").unwrap().as_str(),
        Some("panic")
    );
}

#[trace_operation(
    name = "provision_container",
    kind = SpanKind::Client,
    attributes(component = "agent_lifecycle", retries = 3, image = image.to_string(), gpu = false)
)]
fn provision(image: &str) -> usize {
    image.len()
}

/// OpenTelemetry's keys are dotted: written as strings.
#[trace_operation(kind = SpanKind::Client, attributes("http.request.method" = "GET", "server.port" = port))]
fn fetch(port: i64) -> i64 {
    port
}

#[test]
fn an_attribute_key_may_be_a_dotted_string() {
    let (out, spans, _) = in_trace("dotted", || fetch(8080));
    assert_eq!(out, 8080);
    assert_eq!(
        spans[0].attribute("http.request.method"),
        Some(&Value::from("GET"))
    );
    assert_eq!(spans[0].attribute("server.port"), Some(&Value::I64(8080)));
}

#[test]
fn spec_decorator_custom_name_kind_and_attributes() {
    let (out, spans, _) = in_trace("custom", || provision("python:3.12"));
    assert_eq!(out, 11);
    let s = &spans[0];
    assert_eq!(s.name, "provision_container");
    assert_eq!(s.kind, SpanKind::Client);
    assert_eq!(
        s.attribute("component"),
        Some(&Value::from("agent_lifecycle"))
    );
    assert_eq!(s.attribute("retries"), Some(&Value::I64(3)));
    assert_eq!(
        s.attribute("image"),
        Some(&Value::from("python:3.12".to_string()))
    );
    assert_eq!(s.attribute("gpu"), Some(&Value::Bool(false)));
}

#[trace_operation(kind = SpanKind::Consumer)]
async fn async_fails(fail: bool) -> Result<u8, AgentError> {
    tokio::task::yield_now().await;
    if fail {
        Err(AgentError("queue closed".into()))
    } else {
        Ok(1)
    }
}

#[trace_operation]
async fn async_panics() -> u8 {
    tokio::task::yield_now().await;
    panic!("async boom")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decorator_async_err_and_panic_are_recorded() {
    let tracer = get_distributed_tracer();
    let root = tracer.start_span("decorator_async_err_root", SpanKind::Internal, []);
    let trace_id = root.trace_id();
    let (err, ok, panicked) = tokio::spawn(
        async {
            let err = async_fails(true).await;
            let ok = async_fails(false).await;
            let panicked = tokio::spawn(async_panics().in_span(
                get_distributed_tracer().start_span("panic_parent", SpanKind::Internal, []),
            ))
            .await;
            (err, ok, panicked)
        }
        .in_span(root),
    )
    .await
    .unwrap();
    assert!(err.is_err() && ok.is_ok() && panicked.is_err());
    let spans = tracer.get_trace_spans(trace_id);
    let fails: Vec<_> = spans.iter().filter(|s| s.name == "async_fails").collect();
    assert_eq!(fails.len(), 2);
    assert_eq!(fails[0].kind, SpanKind::Consumer);
    assert_eq!(fails[0].status, SpanStatus::Error);
    assert_eq!(fails[0].status_message, "agent error: queue closed");
    assert_eq!(fails[1].status, SpanStatus::Ok);
    let p = spans.iter().find(|s| s.name == "async_panics").unwrap();
    assert_eq!(p.status, SpanStatus::Error);
    assert_eq!(
        exception_attr(p, "exception.type").unwrap().as_str(),
        Some("panic")
    );
    // One panic, one `exception` event: on the traced function's span and on the `in_span`
    // span it passed through (review helper-120: the poll's exit recorded it, then the span's
    // drop during the same unwinding recorded it again).
    let parent = spans.iter().find(|s| s.name == "panic_parent").unwrap();
    for s in [p, parent] {
        let exceptions = s.events.iter().filter(|e| e.name == "exception").count();
        assert_eq!(exceptions, 1, "{}: {:?}", s.name, s.events);
        assert_eq!(s.status, SpanStatus::Error);
    }
}

struct Agent {
    name: &'static str,
    memory: Vec<u32>,
}

impl Agent {
    #[trace_operation(attributes(agent = self.name))]
    fn step(&self, n: u32) -> Option<u32> {
        let doubled = n.checked_mul(2)?;
        Some(doubled)
    }

    #[trace_operation]
    fn memory_mut(&mut self, extra: u32) -> &mut Vec<u32> {
        self.memory.push(extra);
        &mut self.memory
    }
}

#[test]
fn decorator_on_methods_with_default_name() {
    let mut agent = Agent {
        name: "planner",
        memory: Vec::new(),
    };
    let (out, spans, _) = in_trace("method", || agent.step(4));
    assert_eq!(out, Some(8));
    assert_eq!(spans[0].name, "step");
    assert_eq!(spans[0].attribute("agent"), Some(&Value::from("planner")));
    let (len, spans, _) = in_trace("method_mut", || agent.memory_mut(7).len());
    assert_eq!(len, 1);
    assert_eq!(spans[0].name, "memory_mut");
    assert_eq!(spans[0].status, SpanStatus::Ok);
}

// ---- signatures the expansion must keep compiling -------------------------------------------

/// A boxed future with an early `return`: both `Box::pin(async ..)` are coerced to the
/// declared `Pin<Box<dyn Future>>` (the `#[async_trait]` shape, and async recursion).
struct Walker;

impl Walker {
    #[trace_operation]
    fn depth(
        &self,
        n: u32,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = u32> + Send + '_>> {
        if n == 0 {
            return Box::pin(async { 0 });
        }
        Box::pin(async move { self.depth(n - 1).await + 1 })
    }
}

/// The same coercion in a sync function.
#[trace_operation]
fn boxed_debug(early: bool) -> Box<dyn fmt::Debug> {
    if early {
        return Box::new(1u8);
    }
    Box::new("late")
}

/// Typed receivers: the output borrows from `self` (the receiver rule of elision), not
/// from the other reference argument.
struct Buffer {
    data: Vec<u8>,
    name: String,
}

impl Buffer {
    #[trace_operation]
    async fn head(self: std::pin::Pin<&mut Self>, _label: &str) -> &u8 {
        &self.get_mut().data[0]
    }

    #[trace_operation]
    #[allow(clippy::needless_arbitrary_self_type)]
    async fn name(self: &Self, _other: &str) -> &str {
        &self.name
    }

    #[trace_operation]
    async fn name_boxed(self: Box<Self>, other: &str) -> String {
        format!("{}{other}", self.name)
    }

    /// A reference to a type that holds `Self` (`&Arc<Self>`): the receiver rule takes its
    /// lifetime too. The rewrite left the output's elided next to the named inputs, and
    /// `mismatched_lifetime_syntaxes` (warn by default) flagged the user's signature.
    #[trace_operation]
    #[deny(warnings)]
    async fn name_shared(self: &std::sync::Arc<Self>, _other: &str) -> &str {
        &self.name
    }
}

/// `#[cfg]` on parameters: a configured-out parameter is not rebound.
#[trace_operation]
async fn configured(
    #[cfg(any())] debug_only: u8,
    #[cfg(test)] value: u8,
    #[cfg(any())] (_a, _b): (u8, u8),
    #[cfg(test)] (c, _): (u8, u8),
) -> u8 {
    value + c
}

/// Lint attributes on parameters reach the body's use of them (the rebinding inside the
/// future): an unused parameter the user allowed, or expected, to be unused was reported.
#[trace_operation]
#[deny(warnings)]
async fn linted(
    #[allow(unused_variables)] allowed: u8,
    #[expect(unused_variables)] expected: u8,
    #[allow(unused_variables)] (pair, _): (u8, u8),
    used: u8,
) -> u8 {
    used
}

/// Attribute values naming an argument (or a field of `self`) clone it instead of moving
/// it out of the body.
#[trace_operation(attributes(user = user, retries = retries))]
fn greet(user: String, retries: u32) -> usize {
    user.len() + retries as usize
}

#[trace_operation(attributes(user = user))]
async fn greet_async(user: String) -> usize {
    tokio::task::yield_now().await;
    user.len()
}

struct Owner {
    owner: String,
}

impl Owner {
    #[trace_operation(attributes(owner = self.owner, len = self.owner.len() as i64))]
    fn into_owner(self) -> String {
        self.owner
    }
}

#[test]
fn signatures_that_need_coercion_elision_cfg_or_borrowed_attributes() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();

    let (out, spans, _) = in_trace("early_return", || rt.block_on(Walker.depth(2)));
    assert_eq!(out, 2);
    assert_eq!(spans.iter().filter(|s| s.name == "depth").count(), 3);
    let (out, spans, _) = in_trace("boxed_debug", || {
        format!("{:?} {:?}", boxed_debug(true), boxed_debug(false))
    });
    assert_eq!(out, "1 \"late\"");
    assert_eq!(spans.len(), 2);

    let mut buffer = Buffer {
        data: vec![7],
        name: "buf".into(),
    };
    let (out, spans, _) = in_trace("typed_receivers", || {
        rt.block_on(async {
            let head = *std::pin::Pin::new(&mut buffer).head("x").await;
            let name = buffer.name("y").await.to_string();
            (head, name)
        })
    });
    assert_eq!(out, (7, "buf".to_string()));
    assert_eq!(spans.len(), 2);
    let shared = std::sync::Arc::new(Buffer {
        data: Vec::new(),
        name: "shared".into(),
    });
    let (out, spans, _) = in_trace("arc_receiver", || {
        rt.block_on(async { shared.name_shared("z").await.to_string() })
    });
    assert_eq!(
        (out.as_str(), spans[0].name.as_ref()),
        ("shared", "name_shared")
    );
    let (out, _, _) = in_trace("boxed_receiver", || {
        rt.block_on(Box::new(buffer).name_boxed("!"))
    });
    assert_eq!(out, "buf!");

    let (out, spans, _) = in_trace("cfg_params", || rt.block_on(configured(3, (4, 0))));
    assert_eq!(out, 7);
    assert_eq!(spans[0].name, "configured");
    let (out, _, _) = in_trace("lint_params", || rt.block_on(linted(1, 2, (3, 4), 5)));
    assert_eq!(out, 5);

    let (out, spans, _) = in_trace("attribute_args", || greet("bob".into(), 2));
    assert_eq!(out, 5);
    assert_eq!(spans[0].attribute("user"), Some(&Value::from("bob")));
    assert_eq!(spans[0].attribute("retries"), Some(&Value::I64(2)));
    let (out, spans, _) = in_trace("attribute_args_async", || {
        rt.block_on(greet_async("alice".into()))
    });
    assert_eq!(out, 5);
    assert_eq!(spans[0].attribute("user"), Some(&Value::from("alice")));
    let (out, spans, _) = in_trace("attribute_field", || {
        Owner {
            owner: "carol".into(),
        }
        .into_owner()
    });
    assert_eq!(out, "carol");
    assert_eq!(spans[0].attribute("owner"), Some(&Value::from("carol")));
    assert_eq!(spans[0].attribute("len"), Some(&Value::I64(5)));
}

// ---- #[track_caller] ------------------------------------------------------------------------

mod track_caller {
    use agentcore_telemetry::trace_operation;
    use std::panic::Location;

    #[trace_operation]
    #[track_caller]
    pub fn traced_where() -> &'static Location<'static> {
        Location::caller()
    }

    #[track_caller]
    pub fn plain_where() -> &'static Location<'static> {
        Location::caller()
    }

    /// `return` and `?` (with `From`) in a body that runs inline still reach the verdict;
    /// a closure in the body keeps its own `return`.
    #[trace_operation(name = "track_caller_checked")]
    #[track_caller]
    pub fn checked(v: &str) -> Result<(u64, u32), super::AgentError> {
        if v.is_empty() {
            return Ok((0, Location::caller().line()));
        }
        let first = (|| {
            if v.len() > 8 {
                return None;
            }
            v.chars().next()
        })();
        assert!(first.is_some(), "{v:?}");
        let n: u32 = v
            .parse()
            .map_err(|e: std::num::ParseIntError| super::AgentError(e.to_string()))?;
        Ok((u64::from(n), Location::caller().line()))
    }

    #[trace_operation(name = "track_caller_option")]
    #[track_caller]
    pub fn first_even(v: &[u32]) -> Option<u32> {
        let n = v.iter().copied().find(|n| n % 2 == 0)?;
        let Some(half) = n.checked_div(2) else {
            return None;
        };
        for _ in 0..3 {
            if half == 0 {
                return None;
            }
        }
        Some(n)
    }

    /// Bodies that always diverge, inline or not (the rest of the expansion is unreachable).
    #[trace_operation(name = "track_caller_diverges")]
    #[track_caller]
    pub fn diverges(v: u8) -> u8 {
        panic!("diverges {v}")
    }

    #[trace_operation(name = "never_returns")]
    pub fn never_returns(v: u8) -> ! {
        panic!("never returns {v}")
    }

    #[trace_operation(name = "track_caller_tail")]
    #[track_caller]
    pub fn tail_shapes(v: Option<u8>, early: bool) -> Option<u8> {
        if early {
            return None;
        }
        Some(v? + 1)
    }

    /// The synchronous part of a future-returning function sees the caller too.
    #[trace_operation(name = "track_caller_future")]
    #[track_caller]
    pub fn future_where() -> std::pin::Pin<Box<dyn std::future::Future<Output = u32> + Send>> {
        let line = Location::caller().line();
        if line == 0 {
            return Box::pin(async { 0 });
        }
        Box::pin(async move { line })
    }

    #[trace_operation(name = "track_caller_unwrap")]
    #[track_caller]
    pub fn must(v: Option<u8>) -> u8 {
        v.unwrap()
    }
}

#[test]
fn track_caller_survives_the_attribute() {
    let (plain, plain_line) = (track_caller::plain_where(), line!());
    let (traced, traced_line) = (track_caller::traced_where(), line!());
    assert_eq!(
        plain.line(),
        plain_line,
        "control: plain #[track_caller] works"
    );
    assert_eq!(
        (traced.file(), traced.line()),
        (file!(), traced_line),
        "traced #[track_caller] fn reports {traced} instead of its caller"
    );

    let (out, spans, _) = in_trace("track_caller_ok", || (track_caller::checked("12"), line!()));
    assert_eq!(out.0.unwrap(), (12, out.1));
    assert_eq!(spans[0].status, SpanStatus::Ok);
    let (out, spans, _) = in_trace("track_caller_return", || {
        (track_caller::checked(""), line!())
    });
    assert_eq!(out.0.unwrap(), (0, out.1));
    assert_eq!(spans[0].status, SpanStatus::Ok);
    let (out, spans, _) = in_trace("track_caller_err", || track_caller::checked("x"));
    assert!(out.is_err());
    assert_eq!(spans[0].name, "track_caller_checked");
    assert_eq!(spans[0].status, SpanStatus::Error);
    assert_eq!(
        spans[0].status_message,
        "agent error: invalid digit found in string"
    );

    let (out, _, _) = in_trace("track_caller_option", || {
        [
            track_caller::first_even(&[1, 4]),
            track_caller::first_even(&[1]),
            track_caller::first_even(&[0]),
        ]
    });
    assert_eq!(out, [Some(4), None, None]);
    let shapes = [
        track_caller::tail_shapes(Some(1), false),
        track_caller::tail_shapes(None, false),
        track_caller::tail_shapes(Some(1), true),
    ];
    assert_eq!(shapes, [Some(2), None, None]);
    let (fut, line) = (track_caller::future_where(), line!());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert_eq!(rt.block_on(fut), line);

    // A panic inside (`unwrap`) reports the caller's line, and is still recorded.
    let line = std::sync::Arc::new(std::sync::Mutex::new(0));
    let seen = line.clone();
    let this_test = std::thread::current().id();
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() == this_test {
            *seen.lock().unwrap() = info.location().map_or(0, |l| l.line());
        }
    }));
    let (out, spans, _) = in_trace("track_caller_panic", || {
        std::panic::catch_unwind(|| (track_caller::must(None), line!()))
    });
    let expected = line!() - 2;
    std::panic::set_hook(hook);
    assert!(out.is_err());
    assert_eq!(*line.lock().unwrap(), expected);
    assert_eq!(spans[0].status, SpanStatus::Error);

    let (out, spans, _) = in_trace("diverges", || {
        [
            std::panic::catch_unwind(|| track_caller::diverges(1)).is_err(),
            std::panic::catch_unwind(|| track_caller::never_returns(2)).is_err(),
        ]
    });
    assert_eq!(out, [true, true]);
    let names: Vec<_> = spans.iter().map(|s| (&*s.name, s.status)).collect();
    assert_eq!(
        names,
        [
            ("track_caller_diverges", SpanStatus::Error),
            ("never_returns", SpanStatus::Error)
        ]
    );
}

/// A label of the user's own spelled like the inlined body's (`'__agentcore_body`) is another
/// label: the rewritten `return` still leaves the function (it broke the user's loop instead,
/// found by a review: 102 for 2).
#[trace_operation]
#[track_caller]
#[allow(unused_labels, clippy::never_loop)]
fn label_named_like_the_inlined_body(v: u32) -> u32 {
    let x: u32 = '__agentcore_body: loop {
        if v > 0 {
            return v * 2;
        }
        break 0;
    };
    x + 100
}

#[test]
fn a_user_label_spelled_like_the_inlined_body_is_its_own() {
    assert_eq!(label_named_like_the_inlined_body(1), 2);
    assert_eq!(label_named_like_the_inlined_body(0), 100);
}

/// A function named with a raw identifier (a keyword: `r#match`, `r#type`) is traced under
/// its name, not its escaped spelling (the default name was `r#match`).
#[trace_operation]
fn r#match(v: u32) -> u32 {
    v
}

#[trace_operation]
async fn r#type() -> u32 {
    2
}

#[test]
fn a_raw_identifier_names_the_span_without_its_prefix() {
    let (out, spans, _) = in_trace("raw", || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        r#match(1) + rt.block_on(r#type().in_current_context())
    });
    assert_eq!(out, 3);
    let mut names: Vec<_> = spans.iter().map(|s| s.name.to_string()).collect();
    names.sort();
    assert_eq!(names, ["match", "type"]);
}

/// `async fn .. -> !` (a serving loop, or one that can only fail by panicking): stable Rust
/// accepts it, but not `impl Future<Output = !>`, which the rewrite wrote (E0658, "the `!`
/// type is experimental").
#[trace_operation]
async fn serve_until_it_gives_up(tries: u32) -> ! {
    for _ in 0..tries {
        tokio::task::yield_now().await;
    }
    panic!("gave up after {tries} tries")
}

#[test]
fn an_async_fn_returning_never_is_traced() {
    let (out, spans, _) = in_trace("never", || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let future = serve_until_it_gives_up(2).in_current_context();
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(future)))
    });
    assert!(out.is_err(), "the panic propagated");
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].name, "serve_until_it_gives_up");
    assert_eq!(spans[0].status, SpanStatus::Error);
}

/// A library reached through another path (a re-export here; a renamed dependency,
/// `telemetry = { package = "agentcore-telemetry", .. }`, has no `::agentcore_telemetry`
/// at all): `crate = ".."` names it.
mod telemetry {
    pub use agentcore_telemetry::*;
}

#[telemetry::trace_operation(crate = "crate::telemetry", kind = SpanKind::Client, attributes(k = 1))]
#[track_caller]
fn through_a_reexport(v: Option<u8>) -> Option<u8> {
    Some(v? + 1)
}

#[telemetry::trace_operation(crate = "crate::telemetry")]
async fn through_a_reexport_async(fail: bool) -> Result<u8, AgentError> {
    tokio::task::yield_now().await;
    if fail {
        return Err(AgentError("reexported".into()));
    }
    Ok(1)
}

#[test]
fn crate_names_the_path_to_the_library() {
    let (out, spans, _) = in_trace("crate_path", || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let failed = rt.block_on(through_a_reexport_async(true).in_current_context());
        (through_a_reexport(Some(1)), failed.is_err())
    });
    assert_eq!(out, (Some(2), true));
    let sync = spans
        .iter()
        .find(|s| s.name == "through_a_reexport")
        .unwrap();
    assert_eq!(sync.kind, SpanKind::Client);
    assert_eq!(sync.attribute("k"), Some(&Value::I64(1)));
    let failed = spans
        .iter()
        .find(|s| s.name == "through_a_reexport_async")
        .unwrap();
    assert_eq!(failed.status, SpanStatus::Error);
}
