//! Every misuse of issue 11 either fails to compile or is detected, counted and reported at
//! run time, with one limit found by an adversarial review (the docs claimed "never a silent
//! wrong parent"): a future that only starts and ends spans between two polls of one holding a
//! span across `.await` outside a scope, in no trace of its own, silently puts them under the
//! held span (`a_span_held_across_await_is_not_detected_when_the_other_future_holds_nothing`).
//!
//! Refused at compile time (the `compile_fail` doc tests of `src/tracer/compile_fail.rs`,
//! each with a twin that compiles): a `Span` or `ContextGuard` moved to another thread or held
//! across `.await` in a spawned task (`!Send`), `start_trace`/`start_span` written as a
//! statement (`#[must_use]`), a span outliving its tracer.
//!
//! Detected at run time (here): a span or guard held across `.await` outside a context scope
//! while another future holding one of another trace the same way runs on the thread
//! (`join!`, a current-thread runtime). The smaller
//! points of the issue are tested here too: `start_trace(None, [])`, `add_link` with the
//! specification's string ids, `from_map` errors, and `record_exception` on a boxed error.

use agentcore_telemetry::tracer::{ContextMapError, EXTERNAL_ID_KEY, EXTERNAL_SPAN_ID_KEY};
use agentcore_telemetry::{
    DistributedTracer, FutureExt, KeyValue, Registry, SpanId, SpanKind, SpanStatus, TraceContext,
    TraceId, TracerConfig, Value,
};
use std::process::Command;

fn tracer() -> &'static DistributedTracer {
    Box::leak(Box::new(DistributedTracer::new(TracerConfig {
        span_log_capacity: 1024,
        ..TracerConfig::default()
    })))
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

/// The specification's lifecycle with a guard and a span held across `.await`. Returns the
/// parent the child got and the span it should have got.
async fn held_across_await(tracer: &DistributedTracer, name: &str) -> (Option<SpanId>, SpanId) {
    let _trace = tracer.start_trace(Some(name), []);
    let span = tracer.start_span("agent_lifecycle", SpanKind::Internal, []);
    let expected = span.span_id();
    tokio::task::yield_now().await;
    let child = tracer.start_span("initialize_container", SpanKind::Internal, []);
    let parent = child.parent_span_id();
    child.end();
    tokio::task::yield_now().await;
    span.end();
    (parent, expected)
}

#[test]
fn guards_held_across_await_without_a_scope_are_detected_counted_and_scraped() {
    let t = tracer();
    let registry = Registry::new();
    t.register_metrics(&registry).unwrap();
    let ((a_parent, a_expected), (b_parent, b_expected)) = current_thread().block_on(async {
        tokio::join!(
            held_across_await(t, "agent-a"),
            held_across_await(t, "agent-b")
        )
    });
    // What the misuse does: one future's child took the other future's span as parent...
    assert!(a_parent != Some(a_expected) || b_parent != Some(b_expected));
    // ...and it does not go unnoticed.
    let s = t.stats();
    assert!(s.spans_ended_out_of_context >= 1, "{s:?}");
    assert!(s.guards_dropped_out_of_context >= 1, "{s:?}");
    let text = registry.encode_text();
    assert!(
        text.contains(&format!(
            "agentcore_tracer_context_misuse_total{{kind=\"span_ended\"}} {}\n",
            s.spans_ended_out_of_context
        )),
        "{text}"
    );
    assert!(text.contains(&format!(
        "agentcore_tracer_context_misuse_total{{kind=\"guard_dropped\"}} {}\n",
        s.guards_dropped_out_of_context
    )));
    assert!(t.current_context().is_none(), "nothing left current");
}

#[test]
fn the_same_code_in_context_scopes_gets_the_right_parents_and_no_misuse() {
    let t = tracer();
    let ((a_parent, a_expected), (b_parent, b_expected)) = current_thread().block_on(async {
        tokio::join!(
            held_across_await(t, "agent-a").in_current_context(),
            held_across_await(t, "agent-b").in_current_context()
        )
    });
    assert_eq!(a_parent, Some(a_expected));
    assert_eq!(b_parent, Some(b_expected));
    let s = t.stats();
    assert_eq!(
        (
            s.spans_ended_out_of_context,
            s.guards_dropped_out_of_context
        ),
        (0, 0)
    );
}

#[test]
fn a_scoped_future_never_picks_up_a_frame_another_future_left_on_the_thread() {
    let t = tracer();
    let (leaked_trace, seen) = current_thread().block_on(async {
        // Created with nothing current: it carries no context, so its span starts a trace.
        let scoped = async {
            tokio::task::yield_now().await;
            let span = t.start_detached_span("scoped", SpanKind::Internal, []);
            (span.trace_id(), span.parent_span_id())
        }
        .in_current_context();
        let leaky = async {
            let trace = t.start_trace(Some("leaky"), []);
            let id = trace.trace_id();
            // Held across the await, outside any scope: left on the thread meanwhile.
            tokio::task::yield_now().await;
            tokio::task::yield_now().await;
            drop(trace);
            id
        };
        let (id, seen) = tokio::join!(leaky, scoped);
        (id, seen)
    });
    assert_ne!(
        seen.0, leaked_trace,
        "the scoped future joined the leaked trace"
    );
    assert_eq!(seen.1, None);
}

#[test]
fn a_span_held_by_a_scoped_future_is_current_again_each_time_it_resumes() {
    let t = tracer();
    // `Span` is `!Send`, so a spawned task cannot hold one across `.await`; a future polled
    // by `block_on` can. On a current-thread runtime, the spawned tasks run on the same
    // thread whenever it waits, each in its own span.
    current_thread().block_on(async {
        let noise: Vec<_> = (0..64)
            .map(|i| {
                let span =
                    t.start_detached_span("noise", SpanKind::Internal, [KeyValue::new("i", i)]);
                tokio::spawn(
                    async {
                        for _ in 0..4 {
                            tokio::task::yield_now().await;
                        }
                        t.start_detached_span("noise_child", SpanKind::Internal, [])
                            .parent_span_id()
                    }
                    .in_span(span),
                )
            })
            .collect();
        let root = t.start_detached_span("root", SpanKind::Server, []);
        let root_id = root.span_id();
        async {
            let held = t.start_span("held", SpanKind::Internal, []);
            for _ in 0..8 {
                tokio::task::yield_now().await;
                let child = t.start_span("child", SpanKind::Internal, []);
                assert_eq!(child.parent_span_id(), Some(held.span_id()));
                child.end();
            }
            assert_eq!(held.parent_span_id(), Some(root_id));
            held.end();
        }
        .in_span(root)
        .await;
        for n in noise {
            let parent = n.await.unwrap();
            assert!(parent.is_some() && parent != Some(root_id));
        }
    });
    assert_eq!(t.stats().spans_ended_out_of_context, 0);
}

#[test]
fn a_span_held_across_await_is_not_detected_when_the_other_future_holds_nothing() {
    let t = tracer();
    let (held, (_, b_parent)) = current_thread().block_on(async {
        tokio::join!(
            async {
                let _trace = t.start_trace(Some("holder"), []);
                let span = t.start_span("held", SpanKind::Internal, []);
                let id = span.span_id();
                tokio::task::yield_now().await;
                tokio::task::yield_now().await;
                span.end();
                id
            },
            async {
                tokio::task::yield_now().await;
                // Started and ended between two polls of the other future, in no trace of
                // its own (a library's span, say).
                let span = t.start_span("other", SpanKind::Internal, []);
                (span.trace_id(), span.parent_span_id())
            }
        )
    });
    // The limit: the other future's span joined the held one's trace, and nothing noticed
    // (the held span ended with no other trace's frame above it).
    assert_eq!(b_parent, Some(held));
    let s = t.stats();
    assert_eq!(
        (
            s.spans_ended_out_of_context,
            s.guards_dropped_out_of_context
        ),
        (0, 0),
        "{s:?}"
    );
    // The cure: each future in a scope.
    let (held, (_, b_parent)) = current_thread().block_on(async {
        tokio::join!(
            async {
                let _trace = t.start_trace(Some("holder"), []);
                let span = t.start_span("held", SpanKind::Internal, []);
                let id = span.span_id();
                tokio::task::yield_now().await;
                tokio::task::yield_now().await;
                span.end();
                id
            }
            .in_current_context(),
            async {
                tokio::task::yield_now().await;
                let span = t.start_span("other", SpanKind::Internal, []);
                (span.trace_id(), span.parent_span_id())
            }
            .in_current_context()
        )
    });
    assert_ne!(b_parent, Some(held));
    assert_eq!(b_parent, None);
}

/// No misuse: a `Span` (or guard) moved into a future that runs in another trace's scope on
/// the same thread (`block_on`, a `LocalSet`) and ended there. Its frame sits below the
/// scope's marker and the scope's context above it, but the scope's frames are that future's,
/// not another future's left on the thread. Counted (and reported on standard error) as a
/// misuse until an adversarial review: the check looked at every frame above, across scope
/// markers; it now stops at the first marker above the frame.
#[test]
fn a_span_moved_into_a_scope_of_another_trace_and_ended_there_is_no_misuse() {
    let t = tracer();
    let span = t.start_span("handed_over", SpanKind::Internal, []);
    let guard = t.start_trace(Some("handed-over-guard"), []);
    let other = t.start_detached_trace(Some("other"), []);
    let seen = current_thread().block_on(
        async move {
            tokio::task::yield_now().await;
            let inner = t.start_span("inner", SpanKind::Internal, []);
            // In the order they were made current (reversed).
            drop(guard);
            drop(span);
            let seen = t.current_context().map(|c| c.span_id());
            drop(inner);
            seen
        }
        .in_context(other),
    );
    assert!(seen.is_some());
    let s = t.stats();
    assert_eq!(
        (
            s.spans_ended_out_of_context,
            s.guards_dropped_out_of_context
        ),
        (0, 0),
        "{s:?}"
    );
    assert!(t.current_context().is_none(), "nothing left current");
}

/// The child half of the next test: misuses a fresh tracer three times over.
#[test]
#[ignore = "run by misuse_is_reported_once_per_tracer_on_stderr in a child process"]
fn child_misuses_a_tracer_three_times() {
    let t = tracer();
    for _ in 0..3 {
        current_thread()
            .block_on(async { tokio::join!(held_across_await(t, "a"), held_across_await(t, "b")) });
    }
    let s = t.stats();
    assert!(s.spans_ended_out_of_context >= 3 && s.guards_dropped_out_of_context >= 3);
}

#[test]
fn misuse_is_reported_once_per_tracer_on_stderr() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_misuses_a_tracer_three_times",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<_> = stderr
        .lines()
        .filter(|l| l.starts_with("WARN agentcore_telemetry::tracer:"))
        .collect();
    assert_eq!(lines.len(), 2, "one line per kind: {stderr}");
    assert!(lines.iter().any(|l| l.contains("a span ended while")));
    assert!(lines
        .iter()
        .any(|l| l.contains("a ContextGuard was dropped while")));
    assert!(lines
        .iter()
        .all(|l| l.contains("in_current_context")
            && l.contains("agentcore_tracer_context_misuse_total")));
}

#[test]
fn start_trace_takes_empty_baggage_without_annotations() {
    let t = tracer();
    let a = t.start_trace(None, []);
    assert_eq!(a.baggage().count(), 0);
    drop(a);
    let b = t.start_detached_trace(Some("request-123"), []);
    assert_eq!(
        b.baggage().collect::<Vec<_>>(),
        [(EXTERNAL_ID_KEY, "request-123")]
    );
    let owned = String::from("12345");
    let c = t.start_trace(None, vec![("user_id", owned)]);
    assert_eq!(c.get_baggage("user_id"), Some("12345"));
}

#[test]
fn add_link_takes_the_specifications_string_ids() {
    let t = tracer();
    let mut span = t.start_span("op", SpanKind::Internal, []);
    // As the specification writes it.
    span.add_link(
        "trace-999",
        "span-888",
        [KeyValue::new("relationship", "caused_by")],
    );
    // W3C ids as strings are used as is, without an extra attribute.
    span.add_link("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", []);
    let id = span.span_id();
    span.end();
    let links = t.get_span_by_id(id).unwrap().links;
    assert_eq!(links[0].trace_id, TraceId::from_external("trace-999"));
    assert_eq!(links[0].span_id, SpanId::from_external("span-888"));
    assert_eq!(
        links[0].span_id,
        SpanId::from_external("span-888"),
        "deterministic"
    );
    let attr = |k: &str| {
        links[0]
            .attributes
            .iter()
            .find(|kv| kv.key == k)
            .map(|kv| kv.value.clone())
    };
    assert_eq!(
        attr(EXTERNAL_ID_KEY),
        Some(Value::from("trace-999".to_string()))
    );
    assert_eq!(
        attr(EXTERNAL_SPAN_ID_KEY),
        Some(Value::from("span-888".to_string()))
    );
    assert_eq!(attr("relationship"), Some(Value::from("caused_by")));
    assert_eq!(links[1].span_id.to_string(), "00f067aa0ba902b7");
    assert!(links[1].attributes.is_empty());
}

#[test]
fn from_map_refuses_what_it_cannot_parse() {
    use ContextMapError::*;
    let ok =
        TraceContext::from_map([("trace_id", "request-123"), ("span_id", "span-888")]).unwrap();
    assert_eq!(ok.trace_id(), TraceId::from_external("request-123"));
    assert_eq!(ok.span_id(), Some(SpanId::from_external("span-888")));
    let cases: [(&[(&str, &str)], ContextMapError); 7] = [
        (&[("span_id", "00f067aa0ba902b7")], MissingTraceId),
        (&[("trace_id", "")], InvalidTraceId(String::new())),
        (
            &[("trace_id", "00000000000000000000000000000000")],
            InvalidTraceId("00000000000000000000000000000000".into()),
        ),
        (
            &[("trace_id", "t"), ("span_id", "0000000000000000")],
            InvalidSpanId("0000000000000000".into()),
        ),
        (
            &[("trace_id", "t"), ("sampled", "maybe")],
            InvalidSampled("maybe".into()),
        ),
        (&[("trace_id", "t"), ("baggage.", "v")], EmptyBaggageKey),
        (
            &[("trace_id", "t"), ("trace_id", "u")],
            DuplicateKey("trace_id".into()),
        ),
    ];
    for (map, expected) in cases {
        assert_eq!(
            TraceContext::from_map(map.iter().copied()),
            Err(expected.clone()),
            "{map:?}"
        );
        assert!(!expected.to_string().is_empty());
    }
}

#[test]
fn record_exception_on_a_boxed_error_names_the_concrete_error() {
    let t = tracer();
    let mut span = t.start_span("op", SpanKind::Internal, []);
    let boxed: Box<dyn std::error::Error> = Box::new("x".parse::<u8>().unwrap_err());
    span.record_exception(&boxed);
    span.record_exception(&*boxed);
    t.record_exception(&mut span, &std::io::Error::other("disk full"));
    let id = span.span_id();
    t.finish_span(span, SpanStatus::Error, Some("failed"));
    let events = t.get_span_by_id(id).unwrap().events;
    let ty = |i: usize| events[i].attributes[0].value.to_string();
    assert_eq!(ty(0), "ParseIntError { kind: InvalidDigit }");
    assert_eq!(ty(1), "ParseIntError { kind: InvalidDigit }");
    assert_eq!(ty(2), "std::io::error::Error");
    assert_eq!(
        events[0].attributes[1].value,
        Value::from("invalid digit found in string".to_string())
    );
}

/// Issue 20's finding: an empty baggage key was accepted by `set_baggage` and
/// `start_trace`, written by `to_map` as a bare `baggage.`, and then refused by `from_map`
/// (`EmptyBaggageKey`): a context that could not make the round trip. An empty key is now
/// refused where it enters, so every context `to_map` writes reads back.
#[test]
fn an_empty_baggage_key_is_refused_where_it_enters() {
    let mut cx = TraceContext::new(TraceId::random(), None, true);
    assert!(!cx.set_baggage("", "v"));
    assert!(cx.set_baggage("k", "v"));
    assert_eq!(cx.baggage().collect::<Vec<_>>(), [("k", "v")]);
    assert_eq!(
        TraceContext::from_map(cx.to_map()),
        Ok(cx.clone().with_remote(true))
    );

    let tracer = DistributedTracer::new(TracerConfig::default());
    let mut trace = tracer.start_trace(None, [("", "from start_trace"), ("a", "1")]);
    assert!(!trace.set_baggage(String::new(), "from the guard"));
    assert_eq!(trace.baggage().collect::<Vec<_>>(), [("a", "1")]);
    let back = TraceContext::from_map(trace.to_map()).unwrap();
    assert_eq!(back.baggage().collect::<Vec<_>>(), [("a", "1")]);
    drop(trace);

    let mut detached = tracer.start_detached_trace(None, [("", "x")]);
    assert!(!detached.set_baggage("", "y"));
    assert_eq!(detached.baggage().count(), 0);
}
