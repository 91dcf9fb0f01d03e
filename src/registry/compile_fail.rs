//! Misuse of the registry's handles that the type system refuses, pinned by `compile_fail` doc
//! tests (run by `cargo test --doc`; this module exists only under `cfg(doctest)`), each with
//! a twin that differs in the one line under test and must compile (see `tracer::compile_fail`
//! for why).
//!
//! # 1. A `SeriesRef` cannot move to another thread
//!
//! What keeps its series alive is its thread's: a count of the thread's lookup cache, whose
//! guard protects the series (`lookup_cache`, invariant 2), or a slot of the thread's
//! reclamation record (`sync::era`). Dropped on another thread, it would take a count from that
//! thread's cache, which could then move its guard on with references still out (a
//! use-after-free once their series are removed and reclaimed), and leave its own thread's
//! cache counting it for good.
//!
//! ```compile_fail
//! use agentcore_telemetry::Registry;
//! let registry = Registry::new();
//! let calls = registry.counter_family("calls_total", "Calls.", &["tool"]).unwrap();
//! let search = calls.with_label_values(&["search"]).unwrap(); // `SeriesRef` is `!Send`
//! std::thread::scope(|s| {
//!     s.spawn(move || search.inc());
//! });
//! ```
//!
//! Twin: the handle [`Family::get_or_create`](crate::Family::get_or_create) returns moves.
//!
//! ```
//! use agentcore_telemetry::Registry;
//! let registry = Registry::new();
//! let calls = registry.counter_family("calls_total", "Calls.", &["tool"]).unwrap();
//! let search = calls.get_or_create(&["search"]).unwrap();
//! std::thread::scope(|s| {
//!     s.spawn(move || search.inc());
//! });
//! ```
//!
//! # 2. A `SeriesRef` cannot outlive the family handle it was looked up in
//!
//! The family's last handle frees its live series and its overflow series at once (they are
//! the family's own, not retired: `FamilyInner`'s `Drop`), whatever guard protects them.
//!
//! ```compile_fail
//! use agentcore_telemetry::Registry;
//! let registry = Registry::new();
//! let search = {
//!     let calls = registry.counter_family("calls_total", "Calls.", &["tool"]).unwrap();
//!     calls.with_label_values(&["search"]).unwrap() // `calls` does not live long enough
//! };
//! search.inc();
//! ```
//!
//! Twin: the handle [`Family::get_or_create`](crate::Family::get_or_create) returns is its own.
//!
//! ```
//! use agentcore_telemetry::Registry;
//! let registry = Registry::new();
//! let search = {
//!     let calls = registry.counter_family("calls_total", "Calls.", &["tool"]).unwrap();
//!     calls.get_or_create(&["search"]).unwrap()
//! };
//! search.inc();
//! ```
