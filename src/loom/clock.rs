//! loom model of the span clock's conversion cell (`tracer::clock::conversion::ConversionCell`):
//! a pair of words, `(offset, rate)`, published by one writer at a time through two entries and
//! the due-time word that names the current one, and copied by readers without a lock.
//!
//! Run: `bash .ci/loom` (the models of `src/loom/`, under `--cfg agentcore_loom`).
//!
//! Invariants checked in every interleaving (one writer publishing twice, so that its second
//! publication rewrites the entry a reader of the first due time may still be copying, against
//! one reader; and two threads finding the conversion due at once):
//! 1. A read returns one published pair whole, never one pair's offset with another's rate:
//!    conversion `k` is `(k, 10 k)`.
//! 2. Reads never go back: a reader's second read is the same publication or a later one.
//! 3. Once the writer is done, a read returns its last publication.
//! 4. The rate read alone (`ConversionCell::mult`, the metrics hook's durations) is a published
//!    one, never the second entry's before its first publication.
//! 5. Of two threads that find the conversion due, exactly one claims it and publishes; the
//!    other converts with a whole publication, and the winner's stays.
//!
//! Deliberate bugs these models caught (applied one at a time to `tracer/clock/conversion.rs`,
//! then restored; the first failing assertion is quoted):
//! * the reader's second `due` load dropped (`copy` returning its copy unchecked): "torn
//!   conversion: offset 1, rate 30" (the first entry's offset, rewritten by the third
//!   publication under the reader's copy, with that publication's rate);
//! * the reader's `fence(Acquire)` removed: the same;
//! * the writer's `fence(Release)` removed: the same;
//! * the writer filling the entry `due` names instead of the other one: "torn conversion:
//!   offset 1, rate 20";
//! * the publishing store `Relaxed` instead of `Release`: "torn conversion: offset 0, rate 20"
//!   (the new entry named before its words were seen);
//! * the reader's first `due` load `Relaxed` instead of `Acquire`: "a read went back: 1 then 0";
//! * the claim leaving `due` as it was (no `HELD` bit): "exactly one claim succeeds: (true, 2)
//!   (true, 3)";
//! * the held value naming the other entry (the one being filled): "a read went back: 1 then 0".
//! * `mult`'s `due` load `Relaxed` instead of `Acquire`: "a rate never published: 0" (the second
//!   entry named, its rate not yet seen; missed before invariant 4 was checked).

use crate::tracer::clock::conversion::{Conversion, ConversionCell};
use loom::sync::Arc;
use loom::thread;

fn conversion(k: u64) -> Conversion {
    Conversion {
        offset: k,
        mult: 10 * k,
    }
}

/// The `k` of the publication `c` is; panics on a torn copy, or on the second entry's words
/// before anything was published there (`(0, 0)`, whole by the rate check alone).
fn whole(c: Conversion) -> u64 {
    assert!(
        c.offset > 0 && c.mult == 10 * c.offset,
        "torn conversion: offset {}, rate {}",
        c.offset,
        c.mult
    );
    c.offset
}

/// The rate alone (`ConversionCell::mult`, a span's duration for the metrics hook): one that
/// was published, never the unpublished entry's 0.
fn rate(cell: &ConversionCell) {
    let mult = cell.mult();
    assert!(mult > 0 && mult % 10 == 0, "a rate never published: {mult}");
}

/// A reader's copy at a tick count never due (the model's due times are 100 and up).
fn read(cell: &ConversionCell) -> u64 {
    whole(cell.read(0).expect("not due"))
}

/// The writer's turn `k`: claims the due time it reads and publishes conversion `k`.
fn reanchor(cell: &ConversionCell, k: u64) {
    let Err(seen) = cell.read(u64::MAX >> 1) else {
        panic!("due for the writer");
    };
    assert!(cell.claim(seen), "the only writer's claim");
    cell.publish(conversion(k), 100 * k);
}

#[test]
fn a_read_never_mixes_two_conversions() {
    loom::model(|| {
        let cell = Arc::new(ConversionCell::new(conversion(1), 100));
        let writer = {
            let cell = cell.clone();
            thread::spawn(move || {
                reanchor(&cell, 2);
                reanchor(&cell, 3);
            })
        };
        let first = read(&cell);
        rate(&cell);
        let second = read(&cell);
        assert!(first <= second, "a read went back: {first} then {second}");
        writer.join().unwrap();
        assert_eq!(
            read(&cell),
            3,
            "the last publication, once the writer is done"
        );
    });
}

/// Two threads read the clock at tick 150, past the due time (100), at once: one claim
/// succeeds, and the other thread converts with a whole publication (the first or the
/// winner's, due at 200 or later, which tick 150 is not past).
#[test]
fn one_of_two_racing_re_anchors_publishes() {
    loom::model(|| {
        let cell = Arc::new(ConversionCell::new(conversion(1), 100));
        let race = |k: u64| {
            let cell = cell.clone();
            thread::spawn(move || match cell.read(150) {
                Ok(c) => (false, whole(c)),
                Err(seen) if cell.claim(seen) => {
                    cell.publish(conversion(k), 100 * k);
                    (true, k)
                }
                Err(_) => (false, whole(cell.read_again())),
            })
        };
        let (a, b) = (race(2), race(3));
        let (a, b) = (a.join().unwrap(), b.join().unwrap());
        assert!(a.0 != b.0, "exactly one claim succeeds: {a:?} {b:?}");
        let published = if a.0 { a.1 } else { b.1 };
        assert_eq!(read(&cell), published, "the winner's publication stays");
    });
}
