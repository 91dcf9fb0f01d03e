//! Export accounting when writers share a span-log shard: every span finished while an
//! exporter is attached is exported or counted as dropped. Writers run 10 ms per cycle, pause,
//! and the exporter shuts down; 300 cycles, in two layouts:
//!
//! * Two 128-slot shards, the writers being the process's threads 0 to 4. Thread 0 owns
//!   shard 0 and advances its cursor with a plain load and store. The others used to map
//!   onto shards by index modulo the shard count, so threads 2 and 4 shared thread 0's
//!   shard: a store of thread 0 made late (preempted between its load and its store) moved
//!   the cursor backwards, past positions the export cursor had walked, and a span claimed
//!   above the restored cursor was neither exported nor counted when the exporter shut down
//!   (10 to 22 cycles of 300 in each of 3 runs). Threads that own no shard now write to shards
//!   no thread owns (`sync::ring`, "Cursor").
//! * One 256-slot shard, which three writers share. A claim takes its position before it locks
//!   the slot, so a writer delayed by a lap of the shard stamped its slot with a position
//!   older than the one the export cursor had already settled there: the span stayed
//!   marked, neither exported nor counted (about 24 cycles of 300). A claim now refuses a
//!   position no later than its slot's value's and takes another.
//!
//! Both found by adversarial reviews.
#![cfg(feature = "otlp")]
// The file runs one test, so that its thread indexes are its own: the first layout needs the
// writers to be threads 0 to 4 of the process.

use agentcore_telemetry::export::{BatchConfig, Deadline, ExportOutcome, ExportSpan, SpanExporter};
use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

struct Counting(u64, Arc<AtomicU64>);
impl SpanExporter for Counting {
    fn add(&mut self, _: ExportSpan<'_>) {
        self.0 += 1;
        self.1.fetch_add(1, Ordering::Relaxed);
    }
    fn export(&mut self, _d: &Deadline) -> ExportOutcome {
        ExportOutcome::exported(std::mem::take(&mut self.0))
    }
}

#[test]
fn every_span_finished_while_exporting_is_exported_or_counted_with_shared_shards() {
    // Threads 0 to 4: this thread starts no span.
    let bad_owned = cycles_losing_spans(2, 256, 5);
    // Threads 5, 6 and 7, all on the one shard, which is shared.
    let bad_one_shard = cycles_losing_spans(1, 256, 3);
    assert_eq!(
        (bad_owned, bad_one_shard),
        (0, 0),
        "cycles where spans were neither exported nor counted (two shards, one shard)"
    );
}

/// Runs 300 cycles of `writers` threads on a tracer with `shards` span-log shards; returns
/// the number of cycles where `finished != exported + dropped`.
fn cycles_losing_spans(shards: usize, capacity: usize, writers: usize) -> usize {
    let t: &'static DistributedTracer = Box::leak(Box::new(DistributedTracer::new(TracerConfig {
        from_env: false,
        span_log_capacity: capacity,
        span_log_shards: shards,
        ..TracerConfig::default()
    })));
    // phase: even = paused, odd = running; acks counts writers that saw the pause.
    let phase = Arc::new(AtomicUsize::new(0));
    let acks = Arc::new(AtomicUsize::new(0));
    let mut hs = vec![];
    for _ in 0..writers {
        let (phase, acks) = (phase.clone(), acks.clone());
        hs.push(std::thread::spawn(move || {
            let mut seen = 0;
            loop {
                let p = phase.load(Ordering::Acquire);
                if p == usize::MAX {
                    return;
                }
                if p % 2 == 0 {
                    if p != seen {
                        seen = p;
                        acks.fetch_add(1, Ordering::AcqRel);
                    }
                    std::thread::yield_now();
                    continue;
                }
                t.start_span("w", SpanKind::Internal, []).end();
            }
        }));
    }
    let total = Arc::new(AtomicU64::new(0));
    let mut bad = 0;
    for cycle in 0..300 {
        let before_finished = t.stats().spans_finished;
        let before_exported = total.load(Ordering::Relaxed);
        t.start_export_with(
            Counting(0, total.clone()),
            BatchConfig {
                schedule_delay: Duration::from_millis(2),
                max_poll_interval: Duration::from_millis(2),
                max_queue_size: 1 << 20,
                max_export_batch_size: 4096,
                ..BatchConfig::default()
            },
        )
        .unwrap();
        acks.store(0, Ordering::Release);
        phase.fetch_add(1, Ordering::AcqRel); // run
        std::thread::sleep(Duration::from_millis(10));
        phase.fetch_add(1, Ordering::AcqRel); // pause
        while acks.load(Ordering::Acquire) < writers {
            std::thread::yield_now();
        }
        let finished = t.stats().spans_finished - before_finished;
        t.shutdown(Duration::from_secs(5)).unwrap();
        let s = t.export_stats().unwrap();
        let exported = total.load(Ordering::Relaxed) - before_exported;
        let dropped = s.dropped_overwritten + s.dropped_queue_full + s.dropped_shutdown;
        if exported + dropped != finished {
            bad += 1;
            eprintln!(
                "{shards} shard(s), cycle {cycle}: finished {finished}, exported {exported} + dropped {dropped} = {} (stats {s:?})",
                exported + dropped
            );
        }
    }
    phase.store(usize::MAX, Ordering::Release);
    for h in hs {
        h.join().unwrap();
    }
    bad
}
