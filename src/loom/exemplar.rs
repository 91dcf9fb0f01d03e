//! loom models of the exemplar record (`primitives::exemplar::ExemplarCell`): a seqlock whose
//! writers never wait (a writer that finds the record held drops its exemplar) and whose readers
//! discard and retry a copy a writer overlapped, at most `READ_ATTEMPTS` times.
//!
//! Run: `bash .ci/loom` (the models of `src/loom/`, under `--cfg agentcore_loom`).
//!
//! Invariants checked in every interleaving (three models: a writer replacing a kept record
//! under a concurrent reader; two writers racing for the record; a record changing kind, trace
//! ids to explicit labels, under a concurrent reader):
//! 1. A read returns nothing or one writer's whole record, never a mix: every writer `k` writes
//!    words that all derive from `k` (trace id `k << 64 | k`, span id `k`, value `k`, time `k`);
//!    in the third model a copy mixing the two kinds (labels with the other's value, labels cut
//!    short) is caught in the rendered OpenMetrics text (`exemplar::write`, what a scrape shows).
//! 2. A writer drops its exemplar only to a writer that kept its own: at least one write is
//!    kept, and each kept write publishes its own version (2, 4, ...: no claim is lost).
//! 3. Once the writers are done, a read returns the last kept write (the one with the highest
//!    version), and an idle record always takes the next write.
//!
//! The two-writers-and-a-reader model in one was tried first: with the reader's up to
//! `READ_ATTEMPTS` copies of six relaxed words, each of which may read any of three stores, it
//! had not finished after eight minutes (four and a half of CPU on a loaded machine). Split as above, the three take under a second together
//! (`LOOM_MAX_PREEMPTIONS=2`), and each deliberate bug below is still caught.
//!
//! Deliberate bugs this model caught (applied one at a time to `primitives/exemplar.rs`, then
//! restored; the first failing assertion is quoted):
//! * the reader's `fence(Acquire)` before its second `seq` load removed: "torn exemplar:
//!   0x10000000000000001 2 1 1" (writer 2's span id with writer 1's other words) and "torn
//!   exemplar:  # {                 } 1 1" (labels kind and length with the ids' value);
//! * the reader's first `seq` load `Relaxed` instead of `Acquire`: the same two;
//! * the writer's claim not making `seq` odd (no CAS; `claim` returns the even `s`): "each kept
//!   write publishes its own version: [(1, Some(2)), (2, Some(2))]", and both torn copies;
//! * the writer's `fence(Release)` after the claim CAS removed: both torn copies;
//! * the writer publishing (`seq = s + 2`) before its data stores in `write_ids`: "torn
//!   exemplar: 0x10000000000000001 2 1 1", and "after the writers, a read returns the last kept
//!   write: [(1, Some(2)), (2, Some(4))]" (left: `Some(1)`);
//! * the publishing store `Relaxed` instead of `Release`: all three models fail (the torn copies
//!   and the stale read after the writers);
//! * the claim CAS `Relaxed` instead of `Acquire`: "after the writers, a read returns the last
//!   kept write: [(1, Some(2)), (2, Some(4))]" (left: `Some(1)`): without the acquire, the
//!   second writer's stores are not ordered after the first writer's.

use crate::primitives::exemplar::{write, ExemplarCell, LABEL_BYTES};
use loom::sync::Arc;
use loom::thread;

/// Writer `k`'s record: every word derives from `k`.
fn record(k: u64) -> (u128, u64, f64, u64) {
    (u128::from(k) << 64 | u128::from(k), k, k as f64, k)
}

fn write_record(cell: &ExemplarCell, k: u64) -> Option<u64> {
    let (trace, span, value, time) = record(k);
    cell.write_ids(trace, span, value, time)
}

/// Reads the record; returns the `k` of the writer whose whole record it is, `None` when the
/// read returned nothing. Panics on a torn copy.
fn read_whole(cell: &ExemplarCell) -> Option<u64> {
    let (trace, span, value, time) = cell.read_ids()?;
    let k = span;
    assert_eq!(
        (trace, span, value, time),
        record(k),
        "torn exemplar: {trace:#x} {span} {value} {time}"
    );
    assert!((1..=3).contains(&k), "an exemplar nobody wrote: {k}");
    Some(k)
}

/// Invariants 2 and 3 on what the writers returned (`(k, version)`); returns the last kept `k`.
fn last_kept(results: &[(u64, Option<u64>)]) -> u64 {
    let mut kept: Vec<(u64, u64)> = results
        .iter()
        .filter_map(|&(k, version)| version.map(|v| (v, k)))
        .collect();
    kept.sort_unstable();
    let versions: Vec<u64> = kept.iter().map(|&(v, _)| v).collect();
    let expected: Vec<u64> = (1..=kept.len() as u64).map(|i| 2 * i).collect();
    assert!(
        !kept.is_empty(),
        "both writers dropped their exemplars: {results:?}"
    );
    assert_eq!(
        versions, expected,
        "each kept write publishes its own version: {results:?}"
    );
    kept.last().expect("not empty").1
}

/// A writer replaces a kept record (writer 1's, written before the model's threads start)
/// while the main thread reads it: the read returns nothing or one writer's whole record, and
/// once the writer is done its record is what a read returns.
#[test]
fn a_reader_never_sees_a_torn_exemplar() {
    loom::model(|| {
        let cell = Arc::new(ExemplarCell::new());
        assert_eq!(read_whole(&cell), None, "nothing recorded yet");
        assert_eq!(write_record(&cell, 1), Some(2));
        let writer = {
            let cell = cell.clone();
            thread::spawn(move || write_record(&cell, 2))
        };

        // Concurrent reader: writer 1's whole record or writer 2's (or nothing, after
        // `READ_ATTEMPTS` torn copies).
        let _ = read_whole(&cell);

        assert_eq!(
            writer.join().unwrap(),
            Some(4),
            "an uncontended write is kept"
        );
        assert_eq!(
            read_whole(&cell),
            Some(2),
            "after the writer, a read returns its write"
        );
    });
}

/// Two writers race for the record, each once (a writer that finds it held drops its
/// exemplar); then the last kept write must be what a read returns, and a third write on the
/// idle record must be kept and read back.
#[test]
fn a_losing_writer_drops_its_exemplar_and_the_last_kept_write_wins() {
    loom::model(|| {
        let cell = Arc::new(ExemplarCell::new());
        let writers: Vec<_> = (1..=2u64)
            .map(|k| {
                let cell = cell.clone();
                thread::spawn(move || (k, write_record(&cell, k)))
            })
            .collect();
        let results: Vec<_> = writers.into_iter().map(|w| w.join().unwrap()).collect();
        let last = last_kept(&results);
        assert_eq!(
            read_whole(&cell),
            Some(last),
            "after the writers, a read returns the last kept write: {results:?}"
        );
        let kept = results.iter().filter(|(_, v)| v.is_some()).count() as u64;
        assert_eq!(
            write_record(&cell, 3),
            Some(2 * kept + 2),
            "an idle record takes the next write"
        );
        assert_eq!(read_whole(&cell), Some(3));
    });
}

const IDS_TEXT: &str =
    r#" # {trace_id="00000000000000010000000000000001",span_id="0000000000000001"} 1.0 1"#;
/// Three label words (17 bytes), so a copy can also tear inside the labels.
const LABELS: &[u8] = br#"tool="search_web""#;
const LABELS_TEXT: &str = r#" # {tool="search_web"} 2.0 2"#;

/// The record as the OpenMetrics exposition renders it, or `None`.
fn rendered(cell: &ExemplarCell) -> Option<String> {
    let read = cell.read()?;
    let mut out = String::new();
    write(&mut out, &read);
    Some(out)
}

/// The record changes kind under a concurrent reader: it holds trace ids (written before the
/// model's threads start) when a writer replaces them with explicit labels. Every rendered copy
/// is exactly one of the two exemplar lines, and after the writer is done the labels are.
#[test]
fn a_record_changing_kind_never_renders_a_mix() {
    loom::model(|| {
        let cell = Arc::new(ExemplarCell::new());
        assert_eq!(cell.write_ids(1 << 64 | 1, 1, 1.0, 1_000_000_000), Some(2));
        let writer = {
            let cell = cell.clone();
            thread::spawn(move || {
                let mut bytes = [0u8; LABEL_BYTES];
                bytes[..LABELS.len()].copy_from_slice(LABELS);
                cell.write_labels(&bytes, LABELS.len(), 2.0, 2_000_000_000)
            })
        };

        if let Some(text) = rendered(&cell) {
            assert!(
                text == IDS_TEXT || text == LABELS_TEXT,
                "torn exemplar: {text}"
            );
        }

        assert_eq!(
            writer.join().unwrap(),
            Some(4),
            "an uncontended write is kept"
        );
        assert_eq!(rendered(&cell).as_deref(), Some(LABELS_TEXT));
    });
}
