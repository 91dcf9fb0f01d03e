//! The specification's async examples ("Complete Agent Lifecycle", "Tool Execution with
//! Observability"), written in Rust the way the README documents, run as 100 concurrent
//! lifecycles three ways: `tokio::join!` on a current-thread runtime, `tokio::spawn` on a
//! multi-thread runtime, and a `JoinSet`. Every span must land in its own lifecycle's trace
//! with the right parent: each test asserts the whole tree from `get_trace_spans`.
//!
//! Also: the specification's guard style (a `ContextGuard` and `Span`s held across `.await`)
//! under `join!` inside context scopes, `select!` with a cancelled branch, and
//! `#[trace_operation]` futures created in a traced scope and spawned.
//!
//! The lifecycles use the global tracer (`#[trace_operation]` does); each has a trace of its
//! own, found by its id, so the tests of this binary never see each other's spans. They run
//! one at a time (`serial()`): the span log's readers skip a slot another reader holds at that
//! instant, so two tests querying at once could each miss a span of their own.

use agentcore_telemetry::{
    get_distributed_tracer, trace_operation, FutureExt, KeyValue, SpanId, SpanKind, SpanRecord,
    SpanStatus, TraceId,
};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

const LIFECYCLES: u32 = 100;

/// Held by each test: one test queries the global span log at a time (see the module docs).
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug)]
struct ToolError(String);

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tool failed: {}", self.0)
    }
}

impl std::error::Error for ToolError {}

/// The crate-style alias the macro must see through.
type AgentResult<T> = Result<T, ToolError>;

/// "Tool Execution with Observability": a client span per call, a cache lookup as a child,
/// an error recorded as an exception. Fails for `web_search` of every tenth agent.
#[trace_operation(name = "execute_tool", kind = SpanKind::Client, attributes(tool_id = tool_id))]
async fn execute_tool(tool_id: &'static str, agent: u32) -> AgentResult<f64> {
    cache_lookup(tool_id).await;
    tokio::task::yield_now().await;
    if tool_id == "web_search" && agent % 10 == 0 {
        return Err(ToolError(format!("{tool_id} timed out")));
    }
    Ok(0.25)
}

#[trace_operation(name = "cache_lookup")]
async fn cache_lookup(_tool_id: &'static str) -> bool {
    tokio::task::yield_now().await;
    false
}

/// "Complete Agent Lifecycle", the documented async way: the trace and the spans are
/// detached (`Send`); each future runs in its context with `in_context` / `in_span`, so the
/// whole lifecycle can be joined, spawned or put in a `JoinSet`.
async fn create_and_run_agent(mode: &'static str, agent: u32) -> AgentResult<()> {
    let tracer = get_distributed_tracer();
    let trace =
        tracer.start_detached_trace(Some(&format!("agent-{mode}-{agent}")), [("tenant", "acme")]);
    async {
        let mut create = tracer.start_detached_span(
            "create_agent",
            SpanKind::Internal,
            [KeyValue::new("philosophy", "react")],
        );
        initialize_container().in_context(&create).await;
        create.add_event("agent_initialized", []);
        tracer.finish_span(create, SpanStatus::Ok, None);

        let exec = tracer.start_detached_span("execute_agent", SpanKind::Internal, []);
        let result: AgentResult<()> = async {
            execute_tool("calculator", agent).await?;
            execute_tool("web_search", agent).await?;
            Ok(())
        }
        .in_context(&exec)
        .await;
        match &result {
            Ok(()) => tracer.finish_span(exec, SpanStatus::Ok, None),
            Err(e) => tracer.finish_span(exec, SpanStatus::Error, Some(&e.to_string())),
        }
        result
    }
    .in_context(trace)
    .await
}

async fn initialize_container() {
    let tracer = get_distributed_tracer();
    tokio::task::yield_now().await;
    let span = tracer.start_detached_span("initialize_container", SpanKind::Internal, []);
    async { tokio::task::yield_now().await }.in_span(span).await;
}

/// The trace's spans by name (names are unique per trace except `execute_tool` and
/// `cache_lookup`, which come twice and are told apart by their parents).
fn tree(mode: &str, agent: u32) -> (TraceId, Vec<SpanRecord>) {
    let trace_id = TraceId::from_external(&format!("agent-{mode}-{agent}"));
    (trace_id, get_distributed_tracer().get_trace_spans(trace_id))
}

/// The whole tree of one lifecycle:
///
/// ```text
/// create_agent                 (root, Ok, event agent_initialized)
///   initialize_container
/// execute_agent                (root, Ok or Error)
///   execute_tool calculator    (Client, Ok)
///     cache_lookup
///   execute_tool web_search    (Client, Ok or Error + exception; absent if calculator failed)
///     cache_lookup
/// ```
fn assert_lifecycle(mode: &str, agent: u32) {
    let (trace_id, spans) = tree(mode, agent);
    let fails = agent % 10 == 0;
    assert_eq!(spans.len(), 7, "agent {agent} ({mode}): {spans:#?}");
    assert!(spans.iter().all(|s| s.trace_id == trace_id));
    let by_id: HashMap<SpanId, &SpanRecord> = spans.iter().map(|s| (s.span_id, s)).collect();
    let one = |name: &str| {
        let found: Vec<_> = spans.iter().filter(|s| s.name == name).collect();
        assert_eq!(found.len(), 1, "{name} in agent {agent} ({mode})");
        found[0]
    };
    let parent_name = |s: &SpanRecord| s.parent_span_id.map(|p| by_id[&p].name.to_string());

    let create = one("create_agent");
    assert_eq!(create.parent_span_id, None);
    assert_eq!(create.status, SpanStatus::Ok);
    assert_eq!(create.events[0].name, "agent_initialized");
    assert_eq!(
        parent_name(one("initialize_container")).as_deref(),
        Some("create_agent")
    );

    let exec = one("execute_agent");
    assert_eq!(exec.parent_span_id, None);
    let tools: Vec<_> = spans.iter().filter(|s| s.name == "execute_tool").collect();
    assert_eq!(tools.len(), 2);
    for tool in &tools {
        assert_eq!(tool.parent_span_id, Some(exec.span_id), "{tool:#?}");
        assert_eq!(tool.kind, SpanKind::Client);
        let lookups: Vec<_> = spans
            .iter()
            .filter(|s| s.name == "cache_lookup" && s.parent_span_id == Some(tool.span_id))
            .collect();
        assert_eq!(lookups.len(), 1, "one cache_lookup under each execute_tool");
        assert_eq!(lookups[0].status, SpanStatus::Ok);
    }
    let tool = |id: &str| {
        tools
            .iter()
            .find(|t| t.attribute("tool_id").and_then(|v| v.as_str()) == Some(id))
            .unwrap_or_else(|| panic!("no execute_tool {id}"))
    };
    assert_eq!(tool("calculator").status, SpanStatus::Ok);
    let search = tool("web_search");
    if fails {
        assert_eq!(search.status, SpanStatus::Error);
        assert_eq!(&*search.status_message, "tool failed: web_search timed out");
        let exception = &search.events[0];
        assert_eq!(exception.name, "exception");
        assert_eq!(
            exception.attributes[0].value.as_str(),
            Some(std::any::type_name::<ToolError>())
        );
        assert_eq!(exec.status, SpanStatus::Error);
    } else {
        assert_eq!(search.status, SpanStatus::Ok);
        assert_eq!(exec.status, SpanStatus::Ok);
    }
}

/// `tokio::join!` over many futures: split in halves, recursively.
fn join_all<'a, T: 'a>(
    mut futures: Vec<Pin<Box<dyn Future<Output = T> + 'a>>>,
) -> Pin<Box<dyn Future<Output = Vec<T>> + 'a>> {
    Box::pin(async move {
        if futures.len() <= 1 {
            let mut out = Vec::new();
            for f in futures {
                out.push(f.await);
            }
            return out;
        }
        let right = futures.split_off(futures.len() / 2);
        let (mut a, b) = tokio::join!(join_all(futures), join_all(right));
        a.extend(b);
        a
    })
}

fn check_results(results: Vec<AgentResult<()>>) {
    assert_eq!(results.len(), LIFECYCLES as usize);
    for (agent, r) in results.iter().enumerate() {
        assert_eq!(r.is_err(), agent % 10 == 0, "agent {agent}: {r:?}");
    }
}

#[test]
fn spec_lifecycles_joined_on_a_current_thread_runtime() {
    let _serial = serial();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let futures = (0..LIFECYCLES)
        .map(|agent| {
            Box::pin(create_and_run_agent("join", agent)) as Pin<Box<dyn Future<Output = _>>>
        })
        .collect();
    check_results(rt.block_on(join_all(futures)));
    for agent in 0..LIFECYCLES {
        assert_lifecycle("join", agent);
    }
    assert!(get_distributed_tracer().current_context().is_none());
}

#[test]
fn spec_lifecycles_spawned_on_a_multi_thread_runtime() {
    let _serial = serial();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .build()
        .unwrap();
    let results = rt.block_on(async {
        let handles: Vec<_> = (0..LIFECYCLES)
            .map(|agent| tokio::spawn(create_and_run_agent("spawn", agent)))
            .collect();
        let mut results = Vec::new();
        for h in handles {
            results.push(h.await.unwrap());
        }
        results
    });
    check_results(results);
    for agent in 0..LIFECYCLES {
        assert_lifecycle("spawn", agent);
    }
}

#[test]
fn spec_lifecycles_in_a_join_set() {
    let _serial = serial();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .build()
        .unwrap();
    let results = rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for agent in 0..LIFECYCLES {
            set.spawn(async move { (agent, create_and_run_agent("joinset", agent).await) });
        }
        let mut results: Vec<_> = set.join_all().await;
        results.sort_by_key(|(agent, _)| *agent);
        results.into_iter().map(|(_, r)| r).collect()
    });
    check_results(results);
    for agent in 0..LIFECYCLES {
        assert_lifecycle("joinset", agent);
    }
}

/// The specification's own style, a guard and spans held across `.await` (`!Send`, so not
/// spawnable), is right under `join!` when each branch runs in its own context scope.
async fn guard_style_lifecycle(agent: u32) {
    let tracer = get_distributed_tracer();
    let _trace = tracer.start_trace(Some(&format!("agent-guard-{agent}")), [("tenant", "acme")]);
    let create = tracer.start_span("create_agent", SpanKind::Internal, []);
    tokio::task::yield_now().await;
    let child = tracer.start_span("initialize_container", SpanKind::Internal, []);
    tokio::task::yield_now().await;
    tracer.finish_span(child, SpanStatus::Ok, None);
    tracer.finish_span(create, SpanStatus::Ok, None);
    let exec = tracer.start_span("execute_agent", SpanKind::Internal, []);
    let _ = execute_tool("calculator", agent + 1).await;
    tokio::task::yield_now().await;
    tracer.finish_span(exec, SpanStatus::Ok, None);
}

#[test]
fn spec_guard_style_lifecycles_joined_in_context_scopes() {
    let _serial = serial();
    let before = get_distributed_tracer().stats();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let futures = (0..LIFECYCLES)
        .map(|agent| {
            Box::pin(guard_style_lifecycle(agent).in_current_context())
                as Pin<Box<dyn Future<Output = ()>>>
        })
        .collect();
    rt.block_on(join_all(futures));
    for agent in 0..LIFECYCLES {
        let (trace_id, spans) = tree("guard", agent);
        assert_eq!(spans.len(), 5, "{spans:#?}");
        let by_name: HashMap<&str, &SpanRecord> = spans.iter().map(|s| (&*s.name, s)).collect();
        let id = |n: &str| by_name[n].span_id;
        assert!(spans.iter().all(|s| s.trace_id == trace_id));
        assert_eq!(by_name["create_agent"].parent_span_id, None);
        assert_eq!(
            by_name["initialize_container"].parent_span_id,
            Some(id("create_agent"))
        );
        assert_eq!(by_name["execute_agent"].parent_span_id, None);
        assert_eq!(
            by_name["execute_tool"].parent_span_id,
            Some(id("execute_agent"))
        );
        assert_eq!(
            by_name["cache_lookup"].parent_span_id,
            Some(id("execute_tool"))
        );
    }
    // Nothing was detected as misuse (the global tracer's counters only grow; other tests
    // here never misuse it).
    let after = get_distributed_tracer().stats();
    assert_eq!(
        after.spans_ended_out_of_context,
        before.spans_ended_out_of_context
    );
    assert_eq!(
        after.guards_dropped_out_of_context,
        before.guards_dropped_out_of_context
    );
}

#[trace_operation(name = "slow_branch")]
async fn slow_branch() -> u32 {
    let tracer = get_distributed_tracer();
    let held = tracer.start_span("held_across_await", SpanKind::Internal, []);
    tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    held.end();
    1
}

#[trace_operation(name = "fast_branch")]
async fn fast_branch() -> u32 {
    tokio::task::yield_now().await;
    2
}

/// `select!`: the losing branch is dropped mid-flight; its spans finish (Unset) with the
/// right parents and leave nothing current; the winner's and later spans are right.
#[test]
fn select_cancels_a_branch_without_leaking_its_context() {
    let _serial = serial();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let tracer = get_distributed_tracer();
    let trace = tracer.start_detached_trace(Some("select-1"), []);
    let trace_id = trace.trace_id();
    let winner = rt.block_on(
        async {
            let root = tracer.start_detached_span("request", SpanKind::Server, []);
            let winner = async {
                tokio::select! {
                    v = slow_branch() => v,
                    v = fast_branch() => v,
                }
            }
            .in_context(&root)
            .await;
            let after = tracer.start_detached_span("after_select", SpanKind::Internal, []);
            assert_eq!(
                after.parent_span_id(),
                None,
                "nothing of the branches is current"
            );
            after.end();
            root.end();
            winner
        }
        .in_context(trace),
    );
    assert_eq!(winner, 2);
    assert!(tracer.current_context().is_none());
    let spans = tracer.get_trace_spans(trace_id);
    let by_name: HashMap<&str, &SpanRecord> = spans.iter().map(|s| (&*s.name, s)).collect();
    assert_eq!(spans.len(), 5, "{spans:#?}");
    let request = by_name["request"].span_id;
    assert_eq!(by_name["fast_branch"].parent_span_id, Some(request));
    assert_eq!(by_name["fast_branch"].status, SpanStatus::Ok);
    assert_eq!(by_name["slow_branch"].parent_span_id, Some(request));
    assert_eq!(
        by_name["slow_branch"].status,
        SpanStatus::Unset,
        "cancelled"
    );
    assert_eq!(
        by_name["held_across_await"].parent_span_id,
        Some(by_name["slow_branch"].span_id)
    );
    assert_eq!(by_name["after_select"].parent_span_id, None);
}

#[trace_operation(name = "background_job")]
async fn background_job(n: u32) -> u32 {
    tokio::task::yield_now().await;
    let tracer = get_distributed_tracer();
    tracer
        .start_detached_span("job_step", SpanKind::Internal, [KeyValue::new("n", n)])
        .end();
    n
}

/// A `#[trace_operation]` future created inside a traced scope and spawned (first polled on
/// a worker where nothing is current) continues its creator's trace; so does a plain future
/// spawned with `in_current_context()`.
#[test]
fn spawned_operations_continue_their_creators_trace() {
    let _serial = serial();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let tracer = get_distributed_tracer();
    let root = tracer.start_detached_span("request", SpanKind::Server, []);
    let (root_id, trace_id) = (root.span_id(), root.trace_id());
    rt.block_on(
        async {
            let jobs: Vec<_> = (0..8).map(|n| tokio::spawn(background_job(n))).collect();
            let plain = tokio::spawn(
                async {
                    tokio::task::yield_now().await;
                    get_distributed_tracer()
                        .start_detached_span("plain_spawn", SpanKind::Internal, [])
                        .end();
                }
                .in_current_context(),
            );
            for j in jobs {
                j.await.unwrap();
            }
            plain.await.unwrap();
        }
        .in_span(root),
    );
    let spans = tracer.get_trace_spans(trace_id);
    assert_eq!(spans.len(), 1 + 8 * 2 + 1, "{spans:#?}");
    let jobs: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "background_job")
        .collect();
    assert_eq!(jobs.len(), 8);
    for job in &jobs {
        assert_eq!(job.parent_span_id, Some(root_id));
        let steps = spans
            .iter()
            .filter(|s| s.name == "job_step" && s.parent_span_id == Some(job.span_id))
            .count();
        assert_eq!(steps, 1);
    }
    let plain = spans.iter().find(|s| s.name == "plain_spawn").unwrap();
    assert_eq!(plain.parent_span_id, Some(root_id));

    // Without a scope, a plain spawned future starts a new trace: the documented reason for
    // `in_current_context`.
    let root = tracer.start_detached_span("request", SpanKind::Server, []);
    let lost = rt.block_on(
        async {
            tokio::spawn(async {
                get_distributed_tracer()
                    .start_detached_span("unscoped", SpanKind::Internal, [])
                    .parent_span_id()
            })
            .await
            .unwrap()
        }
        .in_span(root),
    );
    assert_eq!(lost, None);
}
