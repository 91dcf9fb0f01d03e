//! Context across `.await` on a multi-threaded tokio runtime: many concurrent tasks, each
//! with nested spans over yield points, spawned across workers.

use agentcore_telemetry::{
    DistributedTracer, FutureExt, SpanId, SpanKind, SpanStatus, TraceId, TracerConfig,
};
use std::collections::HashMap;

const TASKS: usize = 200;

/// What a task saw: (span id, parent id seen at start, trace id) per span.
type Seen = Vec<(SpanId, Option<SpanId>, TraceId)>;

async fn task(tracer: &'static DistributedTracer, n: usize) -> Seen {
    let mut seen = Seen::new();
    // `start_detached_span`: a `Send` span for futures (a `Span` is `!Send`).
    let root = tracer.start_detached_span("task_root", SpanKind::Server, []);
    seen.push((root.span_id(), root.parent_span_id(), root.trace_id()));
    let inner = async move {
        let mut seen = Seen::new();
        for step in 0..3 {
            tokio::task::yield_now().await;
            // Child of the root, itself wrapping an awaiting grandchild.
            let child = tracer.start_detached_span("step", SpanKind::Internal, []);
            seen.push((child.span_id(), child.parent_span_id(), child.trace_id()));
            let grand = async move {
                tokio::task::yield_now().await;
                // A `Span` is `!Send`: keep it in a block that ends before the next await.
                let info = {
                    let leaf = tracer.start_span("leaf", SpanKind::Client, []);
                    let info = (leaf.span_id(), leaf.parent_span_id(), leaf.trace_id());
                    leaf.finish(SpanStatus::Ok);
                    info
                };
                tokio::task::yield_now().await;
                // After an await, the current context is still the step span.
                let after = tracer.current_context().and_then(|c| c.span_id());
                (info, after)
            }
            .in_span(child);
            // Sometimes hop to another task (and maybe another worker).
            let (leaf, after) = if (n + step) % 2 == 0 {
                tokio::spawn(grand).await.unwrap()
            } else {
                grand.await
            };
            assert_eq!(after, leaf.1);
            seen.push(leaf);
        }
        seen
    }
    .in_span(root);
    seen.extend(inner.await);
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nested_spans_across_awaits_in_200_concurrent_tasks() {
    let tracer: &'static DistributedTracer =
        Box::leak(Box::new(DistributedTracer::new(TracerConfig {
            span_log_capacity: 16_384,
            ..TracerConfig::default()
        })));
    let handles: Vec<_> = (0..TASKS).map(|n| tokio::spawn(task(tracer, n))).collect();
    let mut all = Vec::new();
    for h in handles {
        all.push(h.await.unwrap());
    }
    assert!(tracer.current_context().is_none());
    let records: HashMap<SpanId, _> = (0..TASKS)
        .flat_map(|i| tracer.get_trace_spans(all[i][0].2))
        .map(|r| (r.span_id, r))
        .collect();
    assert_eq!(
        records.len(),
        TASKS * 7,
        "1 root + 3 steps + 3 leaves per task"
    );
    for seen in &all {
        let (root_id, root_parent, trace) = seen[0];
        assert_eq!(root_parent, None);
        // seen = [root, step0, leaf0, step1, leaf1, step2, leaf2]
        for pair in seen[1..].chunks(2) {
            let (step, leaf) = (pair[0], pair[1]);
            assert_eq!(step.1, Some(root_id), "step's parent is the task root");
            assert_eq!(leaf.1, Some(step.0), "leaf's parent is its step");
            assert_eq!((step.2, leaf.2), (trace, trace));
            assert_eq!(records[&step.0].parent_span_id, Some(root_id));
            assert_eq!(records[&leaf.0].parent_span_id, Some(step.0));
            assert_eq!(records[&leaf.0].trace_id, trace);
        }
        assert_eq!(tracer.get_trace_summary(trace).unwrap().span_count, 7);
    }
    let s = tracer.stats();
    assert_eq!(
        (s.spans_started, s.spans_finished),
        ((TASKS * 7) as u64, (TASKS * 7) as u64)
    );
}
