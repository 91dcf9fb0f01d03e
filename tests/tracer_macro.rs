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
