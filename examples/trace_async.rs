//! Tracing async code: the specification's "Complete Agent Lifecycle" and "Tool Execution
//! with Observability", run 100 times concurrently three ways (joined on a current-thread
//! runtime, spawned on a multi-thread one, in a `JoinSet`); every span lands in its own
//! lifecycle's trace with the right parent (asserted). Prints one trace as a tree and the
//! tracer's counts.
//!
//! ```sh
//! cargo run --example trace_async
//! ```

use agentcore_telemetry::{
    get_distributed_tracer, trace_operation, FutureExt, KeyValue, SpanKind, SpanRecord, SpanStatus,
    TraceId,
};
use std::fmt;

#[derive(Debug)]
struct ToolError(String);

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ToolError {}

type AgentResult<T> = Result<T, ToolError>;

/// A client span per call; an `Err` is recorded as an exception with `Error` status.
#[trace_operation(name = "execute_tool", kind = SpanKind::Client, attributes(tool_id = tool_id))]
async fn execute_tool(tool_id: &'static str, agent: u32) -> AgentResult<f64> {
    tokio::task::yield_now().await; // the tool's I/O
    if tool_id == "web_search" && agent % 10 == 0 {
        return Err(ToolError(format!("{tool_id} timed out")));
    }
    Ok(0.25)
}

#[trace_operation]
async fn initialize_container() {
    tokio::task::yield_now().await; // pull the image, start the container
}

/// A lifecycle: its own trace; `create_agent` with a child; `execute_agent` with the tools.
async fn create_and_run_agent(mode: &'static str, agent: u32) -> AgentResult<()> {
    let tracer = get_distributed_tracer();
    let trace =
        tracer.start_detached_trace(Some(&format!("{mode}-agent-{agent}")), [("tenant", "acme")]);
    async {
        let mut create = tracer.start_detached_span(
            "create_agent",
            SpanKind::Internal,
            [KeyValue::new("philosophy", "react")],
        );
        // A detached span is current nowhere: run the work in it to make it the parent.
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
        let message = result.as_ref().err().map(ToString::to_string);
        let status = if result.is_ok() {
            SpanStatus::Ok
        } else {
            SpanStatus::Error
        };
        tracer.finish_span(exec, status, message.as_deref());
        result
    }
    .in_context(trace)
    .await
}

/// Prints a trace's spans as a tree.
fn print_tree(spans: &[SpanRecord], parent: Option<agentcore_telemetry::SpanId>, depth: usize) {
    for s in spans.iter().filter(|s| s.parent_span_id == parent) {
        let tool = s
            .attribute("tool_id")
            .map(|v| format!(" tool_id={v}"))
            .unwrap_or_default();
        let error = match s.status {
            SpanStatus::Error => format!(" ({})", s.status_message),
            _ => String::new(),
        };
        println!(
            "{:indent$}{} [{}{tool}] {:?}{error}, {:.3} ms",
            "",
            s.name,
            s.kind.as_str(),
            s.status,
            s.duration_ms(),
            indent = depth * 2
        );
        print_tree(spans, Some(s.span_id), depth + 1);
    }
}

/// Asserts a lifecycle's tree: `create_agent` and `execute_agent` at the top (their trace has
/// no root span), `initialize_container` under the first, both tools under the second.
fn check_parents(spans: &[SpanRecord], mode: &str, agent: u32) {
    let id_of = |name: &str| {
        let found: Vec<_> = spans.iter().filter(|s| s.name == name).collect();
        assert_eq!(found.len(), 1, "{mode}-agent-{agent}: one {name}");
        assert_eq!(
            found[0].parent_span_id, None,
            "{mode}-agent-{agent}: {name} at the top"
        );
        found[0].span_id
    };
    let (create, exec) = (id_of("create_agent"), id_of("execute_agent"));
    for s in spans {
        let parent = match &*s.name {
            "initialize_container" => Some(create),
            "execute_tool" => Some(exec),
            _ => continue,
        };
        assert_eq!(s.parent_span_id, parent, "{mode}-agent-{agent}: {}", s.name);
    }
}

fn main() {
    const N: u32 = 100;
    let tracer = get_distributed_tracer();

    // Joined on one thread.
    let current = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let joined = current.block_on(async {
        let mut results = Vec::new();
        for pair in (0..N).collect::<Vec<_>>().chunks(2) {
            let (a, b) = tokio::join!(
                create_and_run_agent("joined", pair[0]),
                create_and_run_agent("joined", pair[1])
            );
            results.extend([a, b]);
        }
        results
    });

    // Spawned, and in a JoinSet, on a multi-thread runtime.
    let multi = tokio::runtime::Runtime::new().unwrap();
    let spawned = multi.block_on(async {
        let handles: Vec<_> = (0..N)
            .map(|agent| tokio::spawn(create_and_run_agent("spawned", agent)))
            .collect();
        let mut results = Vec::new();
        for h in handles {
            results.push(h.await.unwrap());
        }
        results
    });
    let in_set = multi.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for agent in 0..N {
            set.spawn(create_and_run_agent("joinset", agent));
        }
        set.join_all().await
    });

    for (mode, results) in [
        ("joined", &joined),
        ("spawned", &spawned),
        ("joinset", &in_set),
    ] {
        let failed = results.iter().filter(|r| r.is_err()).count();
        let spans: usize = (0..N)
            .map(|agent| {
                let trace = TraceId::from_external(&format!("{mode}-agent-{agent}"));
                tracer.get_trace_spans(trace).len()
            })
            .sum();
        println!("{mode}: {N} lifecycles, {failed} failed, {spans} spans in {N} traces");
        // One agent in ten fails its web search; five spans per lifecycle, each in its own
        // lifecycle's trace under the right parent.
        assert_eq!(failed, (N / 10) as usize, "{mode}");
        assert_eq!(spans, 5 * N as usize, "{mode}");
        for agent in 0..N {
            let trace = TraceId::from_external(&format!("{mode}-agent-{agent}"));
            check_parents(&tracer.get_trace_spans(trace), mode, agent);
        }
    }

    println!("\ntrace joined-agent-10:");
    let spans = tracer.get_trace_spans(TraceId::from_external("joined-agent-10"));
    print_tree(&spans, None, 1);

    let stats = tracer.stats();
    println!(
        "\nspans started {}, finished {}, errored {}; context misuse: {} spans, {} guards",
        stats.spans_started,
        stats.spans_finished,
        stats.spans_errored,
        stats.spans_ended_out_of_context,
        stats.guards_dropped_out_of_context
    );
    assert_eq!(stats.spans_started, stats.spans_finished);
    assert_eq!(
        (
            stats.spans_ended_out_of_context,
            stats.guards_dropped_out_of_context
        ),
        (0, 0)
    );
}
