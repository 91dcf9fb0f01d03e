//! A thread whose first sampled span is recorded from a `pthread_key` destructor gives its
//! span-log shard index back too. glibc runs a thread's `pthread_key` destructors after its
//! thread-local destructors, and never runs a thread-local destructor registered after those
//! have run; an index whose return rode on one stayed held for good, and the next threads
//! crowded past it (review helper-93 reproduced it; this is that case, kept).
//!
//! The process's first recording thread records its only span from a `pthread_key`
//! destructor and exits; then as many threads as the log has shards, alive together, fill it.
//! With the index back, they take indices `0..SHARDS` and fill every shard; with it held, they
//! take `1..=SHARDS`, shard 0 keeps the early span, and the late spans fill all but that shard.
//!
//! One test in this file, so that it runs alone in its process: the indices it reasons about
//! are the process's.
#![cfg(all(target_os = "linux", target_env = "gnu"))]

mod support;

use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};
use std::ffi::c_void;
use std::sync::OnceLock;
use std::thread;
use support::span_log::record_from_live_threads;

const SHARDS: usize = 8;
const PER_SHARD: usize = 16;

static TRACER: OnceLock<DistributedTracer> = OnceLock::new();

/// A `pthread_key` destructor that records the thread's first span.
extern "C" fn record_at_exit(_: *mut c_void) {
    if let Some(tracer) = TRACER.get() {
        tracer.start_span("early", SpanKind::Internal, []).end();
    }
}

#[test]
fn a_span_from_a_pthread_key_destructor_gives_its_index_back() {
    let tracer = TRACER.get_or_init(|| {
        DistributedTracer::new(TracerConfig {
            span_log_capacity: SHARDS * PER_SHARD,
            span_log_shards: SHARDS,
            from_env: false,
            ..Default::default()
        })
    });
    let mut key: libc::pthread_key_t = 0;
    // SAFETY: `key` is a valid place for the new key; `record_at_exit` does not unwind (the
    // tracer's recording path does not panic; a panic would abort, failing the test loudly).
    assert_eq!(
        unsafe { libc::pthread_key_create(&mut key, Some(record_at_exit)) },
        0
    );
    thread::spawn(move || {
        // SAFETY: `key` was created above and is never deleted; the value is only a non-null
        // marker (the destructor runs for non-null values) and is never dereferenced.
        assert_eq!(
            unsafe { libc::pthread_setspecific(key, std::ptr::dangling::<c_void>()) },
            0
        );
    })
    .join() // a `pthread_join`: the thread's `pthread_key` destructors have run
    .unwrap();
    assert_eq!(tracer.operation_counts()["early"], 1, "recorded at exit");

    record_from_live_threads(tracer, SHARDS, 2 * PER_SHARD, "late");
    let counts = tracer.operation_counts();
    assert_eq!(
        (counts.get("late").copied(), counts.get("early").copied()),
        (Some(SHARDS * PER_SHARD), None),
        "the late threads' spans fill every shard (the early thread's index was given back)"
    );
}
