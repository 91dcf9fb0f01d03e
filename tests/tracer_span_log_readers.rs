//! Concurrent span-log queries while spans finish: a query must see every record that was
//! finished before it began and not overwritten. Readers used to exclude each other (an
//! exclusive try-lock per slot), so a query skipped every slot another query was visiting
//! at that moment and missed records.

use agentcore_telemetry::{DistributedTracer, KeyValue, SpanKind, TraceId, TracerConfig, Value};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

#[test]
fn concurrent_queries_see_every_record_finished_before_they_began() {
    const SPANS: i64 = 4_000;
    // Large enough that nothing is overwritten: every finished record must be found.
    let tracer = DistributedTracer::new(TracerConfig {
        span_log_capacity: 8_192,
        span_log_shards: 2,
        from_env: false,
        ..TracerConfig::default()
    });
    let trace = TraceId::from_external("readers");
    let finished = AtomicI64::new(-1); // the highest n such that spans 0..=n are finished
    let done = AtomicBool::new(false);
    let misses = std::thread::scope(|s| {
        let tracer = &tracer;
        let (finished, done) = (&finished, &done);
        s.spawn(move || {
            let _cx = tracer.start_trace(Some("readers"), [("k", "v")]);
            for n in 0..SPANS {
                tracer
                    .start_span("op", SpanKind::Internal, [KeyValue::new("n", n)])
                    .end();
                finished.store(n, Ordering::Release);
            }
            done.store(true, Ordering::Release);
        });
        let query = move || {
            let mut misses = 0;
            let mut queries = 0;
            while !done.load(Ordering::Acquire) || queries < 20 {
                let before = finished.load(Ordering::Acquire);
                let mut seen = vec![false; SPANS as usize];
                for r in tracer.get_trace_spans(trace) {
                    if let Some(Value::I64(n)) = r.attribute("n") {
                        seen[*n as usize] = true;
                    }
                }
                misses += (0..=before).filter(|&n| !seen[n as usize]).count();
                queries += 1;
            }
            misses
        };
        let a = s.spawn(query);
        let b = s.spawn(query);
        a.join().unwrap() + b.join().unwrap()
    });
    assert_eq!(
        misses, 0,
        "queries missed records finished before they began"
    );
    assert_eq!(tracer.stats().spans_overwritten, 0);
}
