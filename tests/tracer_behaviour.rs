//! Tracer behaviour beyond the spec scenarios: context restoration, drop-finish, status
//! rules, limits, sampling, the span log's wrap-around and concurrent readers.

use agentcore_telemetry::{
    DistributedTracer, KeyValue, Sampler, SpanKind, SpanLimits, SpanStatus, TraceContext, TraceId,
    TracerConfig,
};

fn tracer_with(config: TracerConfig) -> DistributedTracer {
    DistributedTracer::new(config)
}

fn tracer() -> DistributedTracer {
    tracer_with(TracerConfig {
        span_log_capacity: 1024,
        ..TracerConfig::default()
    })
}

#[test]
fn finishing_out_of_order_keeps_the_innermost_open_span_current() {
    let t = tracer();
    let a = t.start_span("a", SpanKind::Internal, []);
    let b = t.start_span("b", SpanKind::Internal, []);
    let c = t.start_span("c", SpanKind::Internal, []);
    let (a_id, b_id, c_id) = (a.span_id(), b.span_id(), c.span_id());
    // Finish the middle one first: c stays current.
    b.end();
    assert_eq!(t.current_context().unwrap().span_id(), Some(c_id));
    let d = t.start_span("d", SpanKind::Internal, []);
    assert_eq!(d.parent_span_id(), Some(c_id));
    d.end();
    // Finish c: a (b is gone) is current again.
    c.end();
    assert_eq!(t.current_context().unwrap().span_id(), Some(a_id));
    let e = t.start_span("e", SpanKind::Internal, []);
    assert_eq!(e.parent_span_id(), Some(a_id));
    e.end();
    a.end();
    assert!(t.current_context().is_none());
    assert_eq!(t.get_span_by_id(c_id).unwrap().parent_span_id, Some(b_id));
}

#[test]
fn dropping_an_unfinished_span_finishes_it_unset_and_restores_the_parent() {
    let t = tracer();
    let parent = t.start_span("parent", SpanKind::Internal, []);
    let child_id = {
        let mut child = t.start_span("child", SpanKind::Internal, []);
        child.set_attribute("k", 1);
        child.span_id()
    };
    let r = t.get_span_by_id(child_id).expect("finished by drop");
    assert_eq!(r.status, SpanStatus::Unset);
    assert_eq!(r.parent_span_id, Some(parent.span_id()));
    assert_eq!(
        t.current_context().unwrap().span_id(),
        Some(parent.span_id())
    );
    let s = t.stats();
    assert_eq!((s.spans_started, s.spans_finished), (2, 1));
    drop(parent);
    assert_eq!(t.stats().spans_finished, 2);
    assert!(t.current_context().is_none());
}

/// Attributes passed to `start_span`, the same attributes set one by one after it, and the same
/// attributes on an event are recorded alike: the same values (a repeated key keeps its last
/// value), the same order and the same drop count, within the inline storage and past it (4
/// inline for a span, 2 for an event), under attribute limits above, at and below the inline
/// capacity, and with a value-length limit applied to a value that arrives while there is room
/// (the fast path must refuse it) and to one that arrives at the limit. The start and
/// `add_event` take `set_attribute`'s inline fast path since issue 16; this pins the three
/// together, each against the expected record, and checks that an event obeys
/// `max_attributes_per_event` and a span `max_attributes`, not the other's (each case runs
/// with the tested limit on one and no limit on the other, then the other way round).
#[test]
fn attributes_at_start_and_on_events_are_recorded_as_set_attribute_records_them() {
    use agentcore_telemetry::Value;
    let sequence = || {
        vec![
            KeyValue::new("long", "a longer value"), // first: room, and a value to truncate
            KeyValue::new("a", 1),
            KeyValue::new("b", "two"),
            KeyValue::new("a", 3), // repeated
            KeyValue::new("", "empty key"),
            KeyValue::new("c", 4),
            KeyValue::new("d", 5),
            KeyValue::new("e", "another long value"),
            KeyValue::new("b", 9), // repeated once spilled
            KeyValue::new(String::from("f"), 6),
            KeyValue::new("g", 7),
        ]
    };
    // What a record holds after `sequence` under a limit of `limit` attributes and value
    // length `max_len`: the first `limit` distinct keys, with their last values, and a drop for
    // the empty key and for every item whose key is not among those kept.
    let expected = |limit: usize, max_len: Option<usize>| -> (Vec<KeyValue>, u32) {
        let truncate = |v: &str| match max_len {
            Some(n) => v.chars().take(n).collect::<String>(),
            None => v.to_string(),
        };
        let all = vec![
            KeyValue::new("long", truncate("a longer value")),
            KeyValue::new("a", 3),
            KeyValue::new("b", 9),
            KeyValue::new("c", 4),
            KeyValue::new("d", 5),
            KeyValue::new("e", truncate("another long value")),
            KeyValue::new("f", 6),
            KeyValue::new("g", 7),
        ];
        let kept: Vec<KeyValue> = all.into_iter().take(limit).collect();
        let dropped = sequence()
            .iter()
            .filter(|kv| !kept.iter().any(|k| k.key == kv.key))
            .count();
        (kept, dropped as u32)
    };
    for (limit, max_len) in [
        (128, None),
        (5, None),
        (3, None),
        (1, None),
        (0, None),
        (128, Some(3)),
        (3, Some(1)),
    ] {
        let (want, want_dropped) = expected(limit as usize, max_len);
        let (free, free_dropped) = expected(128, max_len);
        for limit_on_events in [false, true] {
            let case =
                format!("limit {limit}, value length {max_len:?}, on events: {limit_on_events}");
            let t = tracer_with(TracerConfig {
                limits: Some(SpanLimits {
                    max_attributes: if limit_on_events { 128 } else { limit },
                    max_attributes_per_event: if limit_on_events { limit } else { 128 },
                    max_attribute_value_len: max_len,
                    ..SpanLimits::default()
                }),
                ..TracerConfig::default()
            });
            let at_start = t.start_span("s", SpanKind::Internal, sequence());
            let at_start_id = at_start.span_id();
            at_start.end();
            let mut one_by_one = t.start_span("s", SpanKind::Internal, []);
            for kv in sequence() {
                one_by_one.set_attribute(kv.key, kv.value);
            }
            one_by_one.add_event("e", sequence());
            let one_by_one_id = one_by_one.span_id();
            one_by_one.end();
            let (a, b) = (
                t.get_span_by_id(at_start_id).unwrap(),
                t.get_span_by_id(one_by_one_id).unwrap(),
            );
            let (span_want, span_dropped, event_want, event_dropped) = if limit_on_events {
                (&free, free_dropped, &want, want_dropped)
            } else {
                (&want, want_dropped, &free, free_dropped)
            };
            assert_eq!(&a.attributes[..], &span_want[..], "at start: {case}");
            assert_eq!(a.dropped_attributes_count, span_dropped, "at start: {case}");
            assert_eq!(&b.attributes[..], &span_want[..], "one by one: {case}");
            assert_eq!(
                b.dropped_attributes_count, span_dropped,
                "one by one: {case}"
            );
            let event = &b.events[0];
            assert_eq!(&event.attributes[..], &event_want[..], "event: {case}");
            assert_eq!(
                event.dropped_attributes_count, event_dropped,
                "event: {case}"
            );
        }
    }
    // The expectation itself, spelled out once.
    assert_eq!(expected(3, Some(1)).0[0].value, Value::from("a"));
}

#[test]
fn status_rules_ok_is_final_and_unset_is_ignored() {
    let t = tracer();
    let mut s = t.start_span("s", SpanKind::Internal, []);
    s.set_status(SpanStatus::Error, "first");
    s.set_status(SpanStatus::Unset, "ignored");
    assert_eq!(s.status(), SpanStatus::Error);
    s.set_status(SpanStatus::Ok, "message dropped for ok");
    s.set_status(SpanStatus::Error, "too late");
    let id = s.span_id();
    t.finish_span(s, SpanStatus::Error, Some("also too late"));
    let r = t.get_span_by_id(id).unwrap();
    assert_eq!((r.status, &*r.status_message), (SpanStatus::Ok, ""));
}

#[test]
fn limits_drop_extra_items_and_count_them() {
    let t = tracer_with(TracerConfig {
        limits: Some(SpanLimits {
            max_attributes: 3,
            max_events: 2,
            max_links: 1,
            max_attributes_per_event: 1,
            max_attributes_per_link: 1,
            max_attribute_value_len: None,
        }),
        ..TracerConfig::default()
    });
    let mut s = t.start_span(
        "limited",
        SpanKind::Internal,
        (0..5).map(|i| KeyValue::new(format!("init{i}"), i)),
    );
    s.set_attribute("init0", 100); // replacing an existing key is always allowed
    s.set_attribute("late", 1);
    for i in 0..4 {
        s.add_event("e", [KeyValue::new("a", i), KeyValue::new("b", i)]);
    }
    for _ in 0..3 {
        s.add_link(
            TraceId::random(),
            agentcore_telemetry::SpanId::random(),
            [KeyValue::new("x", 1), KeyValue::new("y", 2)],
        );
    }
    let id = s.span_id();
    s.end();
    let r = t.get_span_by_id(id).unwrap();
    assert_eq!(r.attributes.len(), 3);
    assert_eq!(
        r.attribute("init0"),
        Some(&agentcore_telemetry::Value::I64(100))
    );
    assert_eq!(r.dropped_attributes_count, 3); // init3, init4, late
    assert_eq!((r.events.len(), r.dropped_events_count), (2, 2));
    assert_eq!(
        (
            r.events[0].attributes.len(),
            r.events[0].dropped_attributes_count
        ),
        (1, 1)
    );
    assert_eq!((r.links.len(), r.dropped_links_count), (1, 2));
    assert_eq!(r.links[0].dropped_attributes_count, 1);
}

#[test]
fn default_limits_are_128_and_a_long_lived_span_stays_bounded() {
    let t = tracer();
    let mut s = t.start_span("connection", SpanKind::Server, []);
    for i in 0..1000 {
        s.add_event("frame", [KeyValue::new("i", i)]);
    }
    let id = s.span_id();
    s.end();
    let r = t.get_span_by_id(id).unwrap();
    assert_eq!((r.events.len(), r.dropped_events_count), (128, 872));
}

#[test]
fn sampling_ratio_zero_records_nothing_but_propagates() {
    let t = tracer_with(TracerConfig {
        sampler: Some(Sampler::ratio(0.0)),
        ..TracerConfig::default()
    });
    let mut root = t.start_span("root", SpanKind::Server, [KeyValue::new("a", 1)]);
    root.add_event("e", []);
    assert!(!root.is_recording());
    let child = t.start_span("child", SpanKind::Internal, []);
    assert!(!child.is_recording());
    assert_eq!(child.trace_id(), root.trace_id());
    assert!(!child.context().is_sampled());
    child.end();
    root.end();
    let s = t.stats();
    assert_eq!(
        (s.spans_started, s.spans_finished, s.spans_unsampled),
        (0, 0, 2)
    );
    assert_eq!(t.get_metrics().total_spans, 0);
}

/// What an unsampled span must still do (issue 16 made its path lean): be the current
/// context, with its own non-zero span id, so that W3C propagation from it carries the trace
/// id, that span id and the sampled flag clear, and so that spans nested in it are unsampled and in its
/// trace; its ids stay the same however often they are read; finishing it (in order or
/// not) makes its parent current again.
#[test]
fn an_unsampled_span_is_current_and_propagates_its_own_ids() {
    let t = tracer_with(TracerConfig {
        sampler: Some(Sampler::ratio(0.0)),
        ..TracerConfig::default()
    });
    // Twice: the first round grows this thread's context stack, the second reuses its slots.
    for _ in 0..2 {
        let root = t.start_span("root", SpanKind::Server, []);
        let (trace, root_id) = (root.trace_id(), root.span_id());
        assert_ne!(root_id.to_u64(), 0);
        assert_eq!(
            (root.trace_id(), root.span_id()),
            (trace, root_id),
            "stable ids"
        );
        let cx = t.current_context().expect("the unsampled span is current");
        assert_eq!(
            (cx.trace_id(), cx.span_id(), cx.is_sampled()),
            (trace, Some(root_id), false)
        );
        let mut headers = Vec::new();
        root.context()
            .inject(|name, value| headers.push((name, value)));
        assert_eq!(
            headers,
            // Flags 02: the sampled bit clear; W3C Level 2's random-trace-id flag set (the root
            // drew its trace id here).
            [("traceparent", format!("00-{trace}-{root_id}-02"))],
            "W3C needs a parent-id: the unsampled span's own id"
        );
        let back = TraceContext::extract(|name| {
            headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
        })
        .expect("a valid traceparent")
        .expect("a traceparent");
        assert_eq!(
            (back.trace_id(), back.span_id(), back.is_sampled()),
            (trace, Some(root_id), false)
        );

        let child = t.start_span("child", SpanKind::Internal, []);
        assert!(!child.is_recording());
        assert_eq!(child.trace_id(), trace);
        assert_ne!(child.span_id(), root_id);
        assert_eq!(
            t.current_context().unwrap().span_id(),
            Some(child.span_id())
        );
        let grandchild = t.start_span("grandchild", SpanKind::Internal, []);
        assert_eq!(grandchild.trace_id(), trace);
        assert!(!grandchild.context().is_sampled());
        // Out of order: the child first; the grandchild stays current, then the root is.
        let grandchild_id = grandchild.span_id();
        child.end();
        assert_eq!(t.current_context().unwrap().span_id(), Some(grandchild_id));
        grandchild.end();
        assert_eq!(t.current_context().unwrap().span_id(), Some(root_id));
        // Detached and moved to another thread: same ids there, and nothing current here.
        let detached = root.detach();
        assert!(t.current_context().is_none());
        std::thread::scope(|s| {
            s.spawn(move || {
                assert_eq!((detached.trace_id(), detached.span_id()), (trace, root_id));
                assert_eq!(detached.context().span_id(), Some(root_id));
                detached.end();
            });
        });
    }
    assert!(t.current_context().is_none());
    assert_eq!(t.stats().spans_unsampled, 6);
    assert_eq!(t.stats().spans_started, 0);
}

/// A non-parent-based sampler may sample the child of an unsampled span: the child is in the
/// unsampled span's trace and names it as its parent.
#[test]
fn a_sampled_child_of_an_unsampled_span_keeps_its_trace_and_parent() {
    let t = tracer_with(TracerConfig {
        sampler: Some(Sampler::always_on()),
        ..TracerConfig::default()
    });
    let local = tracer_with(TracerConfig {
        sampler: Some(Sampler::always_off()),
        ..TracerConfig::default()
    });
    let off = local.start_span("off", SpanKind::Internal, []);
    assert!(!off.is_recording());
    let on = t.start_span_with_parent("on", SpanKind::Internal, [], Some(&off.context()));
    assert!(on.is_recording());
    assert_eq!(on.trace_id(), off.trace_id());
    assert_eq!(on.parent_span_id(), Some(off.span_id()));
}

#[test]
fn sampling_ratio_one_records_everything() {
    let t = tracer();
    for _ in 0..100 {
        t.start_span("s", SpanKind::Internal, []).end();
    }
    assert_eq!(t.get_metrics().total_spans, 100);
    assert_eq!(t.stats().spans_unsampled, 0);
}

#[test]
fn sampling_ratio_half_is_statistical_and_deterministic_per_trace() {
    let t = tracer_with(TracerConfig {
        sampler: Some(Sampler::ratio(0.5)),
        span_log_capacity: 16_384,
        ..TracerConfig::default()
    });
    let n = 10_000;
    let mut sampled_roots = 0;
    for _ in 0..n {
        let root = t.start_span("root", SpanKind::Server, []);
        let child = t.start_span("child", SpanKind::Internal, []);
        // A child always follows its parent.
        assert_eq!(child.is_recording(), root.is_recording());
        if root.is_recording() {
            sampled_roots += 1;
        }
    }
    // Binomial(10000, 0.5): sd = 50; allow 6 sd.
    assert!((4_700..=5_300).contains(&sampled_roots), "{sampled_roots}");
    let s = t.stats();
    assert_eq!(s.spans_started, 2 * sampled_roots);
    assert_eq!(s.spans_unsampled, 2 * (n - sampled_roots));
    // The same trace id gets the same decision in every tracer with that ratio.
    let other = tracer_with(TracerConfig {
        sampler: Some(Sampler::ratio(0.5)),
        ..TracerConfig::default()
    });
    for i in 0..200 {
        let id = TraceId::from_external(&format!("req-{i}"));
        let decide = |tr: &DistributedTracer| {
            tr.start_trace(Some(&id.to_string()), [("k", "v")])
                .is_sampled()
        };
        assert_eq!(decide(&t), decide(&other));
    }
}

#[test]
fn sampling_respects_a_remote_parent_flag() {
    let never = tracer_with(TracerConfig {
        sampler: Some(Sampler::ratio(0.0)),
        ..TracerConfig::default()
    });
    let sampled_parent = TraceContext::new(
        TraceId::random(),
        agentcore_telemetry::SpanId::from_u64(5),
        true,
    );
    let s = never.start_span_with_parent("s", SpanKind::Server, [], Some(&sampled_parent));
    assert!(s.is_recording(), "a sampled parent wins over ratio 0");
    drop(s);
    let always = tracer();
    let unsampled_parent = TraceContext::new(TraceId::random(), None, false);
    let _cx = always.attach(unsampled_parent);
    assert!(!always.start_span("s", SpanKind::Server, []).is_recording());
}

#[test]
fn span_log_wraps_around_and_counts_overwrites() {
    let t = tracer_with(TracerConfig {
        span_log_capacity: 8,
        span_log_shards: 1,
        ..TracerConfig::default()
    });
    assert_eq!(t.span_log_capacity(), 8);
    let ids: Vec<_> = (0..20)
        .map(|i| {
            let s = t.start_span("s", SpanKind::Internal, [KeyValue::new("i", i)]);
            let id = s.span_id();
            s.end();
            id
        })
        .collect();
    let s = t.stats();
    assert_eq!(
        (s.spans_finished, s.spans_overwritten, s.spans_dropped),
        (20, 12, 0)
    );
    assert_eq!(t.get_metrics().total_spans, 8);
    // The 8 newest survive, the 12 oldest are gone.
    assert!(ids[..12].iter().all(|id| t.get_span_by_id(*id).is_none()));
    assert!(ids[12..].iter().all(|id| t.get_span_by_id(*id).is_some()));
}

#[test]
fn open_spans_hold_their_slots_and_a_span_finding_none_counts_as_dropped() {
    let t = tracer_with(TracerConfig {
        span_log_capacity: 4,
        span_log_shards: 1,
        ..TracerConfig::default()
    });
    // Four open spans hold all four slots: readers skip them, nothing is visible yet.
    let open: Vec<_> = (0..4)
        .map(|i| {
            t.start_span("open", SpanKind::Internal, [KeyValue::new("i", i)])
                .detach()
        })
        .collect();
    assert_eq!(t.get_metrics().total_spans, 0);
    // A fifth finds every slot busy: it still works as a span but records nothing.
    let mut lost = t.start_span("lost", SpanKind::Internal, []);
    assert!(!lost.is_recording());
    assert!(lost.parent_span_id().is_none());
    lost.set_status(SpanStatus::Error, "boom");
    assert_eq!(lost.status(), SpanStatus::Error);
    lost.end();
    let ids: Vec<_> = open.iter().map(|s| s.span_id()).collect();
    open.into_iter().for_each(|s| s.end());
    let s = t.stats();
    assert_eq!(
        (
            s.spans_finished,
            s.spans_errored,
            s.spans_dropped,
            s.spans_overwritten
        ),
        (5, 1, 1, 0)
    );
    assert_eq!(t.get_metrics().total_spans, 4);
    assert!(ids.iter().all(|id| t.get_span_by_id(*id).is_some()));
}

#[test]
fn concurrent_writers_and_readers_account_for_every_span() {
    let t = tracer_with(TracerConfig {
        span_log_capacity: 64,
        ..TracerConfig::default()
    });
    let per_thread = 5_000u64;
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                for i in 0..per_thread {
                    let mut span = t.start_span("w", SpanKind::Internal, []);
                    span.set_attribute("i", i as i64);
                    span.end();
                }
            });
        }
        s.spawn(|| {
            for _ in 0..200 {
                let m = t.get_metrics();
                assert!(m.total_spans <= t.span_log_capacity());
            }
        });
    });
    let stats = t.stats();
    let stored = t.get_metrics().total_spans as u64;
    assert_eq!(stats.spans_finished, 3 * per_thread);
    // Every finished span is in the log, was overwritten, or was dropped on a busy slot.
    assert_eq!(
        stored + stats.spans_overwritten + stats.spans_dropped,
        3 * per_thread
    );
    assert!(stored <= t.span_log_capacity() as u64 && stored > 0);
}

#[test]
fn ids_are_nonzero_unique_and_hex() {
    let t = tracer();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..1000 {
        let s = t.start_span("s", SpanKind::Internal, []);
        assert_ne!(s.span_id().to_u64(), 0);
        assert_ne!(s.trace_id().to_u128(), 0);
        assert!(seen.insert(s.span_id()));
        assert_eq!(
            agentcore_telemetry::SpanId::from_hex(&s.span_id().to_string()),
            Some(s.span_id())
        );
        assert_eq!(
            TraceId::from_hex(&s.trace_id().to_string()),
            Some(s.trace_id())
        );
    }
}

#[test]
fn counts_of_exited_threads_are_kept_and_their_blocks_folded() {
    let t = tracer();
    for round in 0..20u64 {
        std::thread::scope(|s| {
            s.spawn(|| {
                t.start_span("a", SpanKind::Internal, [])
                    .finish(SpanStatus::Error);
                t.start_span("b", SpanKind::Internal, []).end();
            });
        });
        let stats = t.stats();
        assert_eq!(stats.spans_finished, 2 * (round + 1));
        assert_eq!(stats.spans_errored, round + 1);
    }
}

#[test]
fn long_string_values_are_truncated_to_the_limit_in_characters() {
    let t = tracer_with(TracerConfig {
        limits: Some(SpanLimits {
            max_attribute_value_len: Some(5),
            ..SpanLimits::default()
        }),
        ..TracerConfig::default()
    });
    let mut s = t.start_span(
        "s",
        SpanKind::Internal,
        [KeyValue::new("static", "abcdefgh")],
    );
    // 'é' is 2 bytes, but the limit counts characters (OpenTelemetry's attribute limits:
    // "counting any character in it as 1"): "héllo", 6 bytes (it was cut to "héll").
    s.set_attribute("owned", "héllo wörld".to_string());
    s.set_attribute("exact", "wörld".to_string()); // 5 characters in 6 bytes: kept whole
    s.set_attribute("short", "abc");
    s.set_attribute("number", 123_456_789);
    s.add_event("e", [KeyValue::new("v", "0123456789")]);
    let id = s.span_id();
    s.end();
    let r = t.get_span_by_id(id).unwrap();
    let get = |k| r.attribute(k).unwrap().to_string();
    assert_eq!(get("static"), "abcde");
    assert_eq!(get("owned"), "héllo");
    assert_eq!(get("exact"), "wörld");
    assert_eq!(get("short"), "abc");
    assert_eq!(get("number"), "123456789");
    assert_eq!(r.events[0].attributes[0].value.to_string(), "01234");
}

#[test]
fn removing_frames_in_any_order_keeps_the_others_in_order() {
    let t = tracer();
    let spans: Vec<_> = (0..5)
        .map(|_| t.start_span("s", SpanKind::Internal, []))
        .collect();
    let ids: Vec<_> = spans.iter().map(|s| s.span_id()).collect();
    let mut spans: Vec<_> = spans.into_iter().map(Some).collect();
    // Finish 1, then 3: 4 stays current; then 4: 2 is current; then 0: 2 still current.
    let mut finish = |i: usize| spans[i].take().unwrap().end();
    let current = |t: &DistributedTracer| t.current_context().and_then(|c| c.span_id());
    finish(1);
    assert_eq!(current(&t), Some(ids[4]));
    finish(3);
    assert_eq!(current(&t), Some(ids[4]));
    finish(4);
    assert_eq!(current(&t), Some(ids[2]));
    finish(0);
    assert_eq!(current(&t), Some(ids[2]));
    let child = t.start_span("child", SpanKind::Internal, []);
    assert_eq!(child.parent_span_id(), Some(ids[2]));
    drop(child);
    finish(2);
    assert_eq!(current(&t), None);
}

/// `finish_with_message` hands the caller's message over while the span is still current: its
/// `Into` conversion (a sampled span keeping the message) and its drop (an unsampled span, which
/// keeps none) see the finishing span as the current one, not its parent (found by review: a
/// finish that removed the frame first ran them with the parent current).
#[test]
fn the_callers_message_is_converted_or_dropped_while_the_span_is_current() {
    use std::borrow::Cow;
    use std::cell::Cell;
    use std::sync::OnceLock;

    static TRACERS: OnceLock<[DistributedTracer; 2]> = OnceLock::new();
    thread_local!(static SEEN: Cell<Option<agentcore_telemetry::SpanId>> = const { Cell::new(None) });
    fn tracer(sampled: bool) -> &'static DistributedTracer {
        let tracers = TRACERS.get_or_init(|| {
            [0.0, 1.0].map(|ratio| {
                tracer_with(TracerConfig {
                    sampler: Some(Sampler::ratio(ratio)),
                    from_env: false,
                    ..TracerConfig::default()
                })
            })
        });
        &tracers[usize::from(sampled)]
    }
    fn note_current(sampled: bool) {
        SEEN.set(tracer(sampled).current_context().and_then(|c| c.span_id()));
    }
    /// Notes the current span when converted, and when dropped unconverted.
    struct Message {
        sampled: bool,
        converted: bool,
    }
    impl From<Message> for Cow<'static, str> {
        fn from(mut m: Message) -> Self {
            m.converted = true;
            note_current(m.sampled);
            Cow::Borrowed("converted")
        }
    }
    impl Drop for Message {
        fn drop(&mut self) {
            if !self.converted {
                note_current(self.sampled);
            }
        }
    }

    for sampled in [true, false] {
        let t = tracer(sampled);
        let parent = t.start_span("parent", SpanKind::Internal, []);
        let span = t.start_span("child", SpanKind::Internal, []);
        let id = span.span_id();
        SEEN.set(None);
        span.finish_with_message(
            SpanStatus::Error,
            Message {
                sampled,
                converted: false,
            },
        );
        assert_eq!(SEEN.get(), Some(id), "sampled: {sampled}");
        assert_eq!(
            t.current_context().and_then(|c| c.span_id()),
            Some(parent.span_id())
        );
        if sampled {
            let record = t.get_span_by_id(id).expect("recorded");
            assert_eq!(&*record.status_message, "converted");
        }
    }
}
