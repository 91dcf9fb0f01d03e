//! loom model of `sync::rcu` (the series maps' read-mostly cell), in its symmetric-fence
//! form (under loom both sides use `fence(SeqCst)`; on Linux the reader's fence becomes a compiler
//! fence and the writer's a `membarrier(2)`, which is at least as strong for the writer).
//!
//! Run: `bash .ci/loom` (the models of `src/loom/`, under `--cfg agentcore_loom`).

use crate::sync::rcu::{Domain, RcuCell};
use crate::sync::slots::Arena;
use loom::sync::atomic::{AtomicBool, Ordering::SeqCst};
use loom::sync::Arc;
use loom::thread;

/// A value that records its own drop in a flag outside itself.
struct Tracked {
    id: usize,
    dropped: Arc<[AtomicBool; 3]>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.dropped[self.id].store(true, SeqCst);
    }
}

/// Invariant (no premature reclamation): while a reader is pinned, the value it loaded is never
/// dropped, whatever the interleaving with a writer that replaces the value twice (each replace
/// retires the old value and tries to reclaim). After everyone is done and a final reclaim runs,
/// every retired value has been dropped exactly once (nothing leaks either).
#[test]
fn a_loaded_value_is_never_freed_while_its_reader_is_pinned() {
    loom::model(|| {
        let arena: &'static Arena = Box::leak(Box::new(Arena::new()));
        let domain = Arc::new(Domain::new(arena));
        let dropped = Arc::new([
            AtomicBool::new(false),
            AtomicBool::new(false),
            AtomicBool::new(false),
        ]);
        let cell = Arc::new(RcuCell::new(Tracked {
            id: 0,
            dropped: dropped.clone(),
        }));

        let reader = {
            let (domain, cell, dropped) = (domain.clone(), cell.clone(), dropped.clone());
            thread::spawn(move || {
                let block = arena.lease();
                let pin = domain.pin(block);
                let value = cell.load(&pin);
                let id = value.id;
                assert!(!dropped[id].load(SeqCst), "value {id} freed while pinned");
                thread::yield_now();
                assert!(!dropped[id].load(SeqCst), "value {id} freed while pinned");
                drop(pin);
                arena.release(block);
            })
        };

        for id in 1..3 {
            cell.replace(
                Tracked {
                    id,
                    dropped: dropped.clone(),
                },
                &domain,
            );
        }
        reader.join().unwrap();
        domain.reclaim();
        assert_eq!(
            domain.pending(),
            0,
            "everything retired is freed once readers are gone"
        );
        assert!(dropped[0].load(SeqCst) && dropped[1].load(SeqCst));
        assert!(!dropped[2].load(SeqCst), "the current value is alive");
    });
}
