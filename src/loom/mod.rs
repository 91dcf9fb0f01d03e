//! The loom models of the crate's concurrent structures, inside the crate (as tokio keeps its
//! own) so they reach the crate-private building blocks without making them public.
//!
//! Built only with `--cfg agentcore_loom` (a namespaced cfg: tokio reacts to a bare `cfg(loom)`
//! itself), where `crate::sync` swaps `std`'s atomics and mutexes for loom's. Run them with
//! `bash .ci/loom`; `bash .ci/test` does.

mod clock;
mod counter_sum;
mod era;
mod exemplar;
mod export_cursor;
mod series_map;
mod slot_arena;
mod span_log;
