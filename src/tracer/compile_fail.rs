//! Misuse the type system refuses, pinned by `compile_fail` doc tests (run by `cargo test
//! --doc`; this module exists only under `cfg(doctest)`).
//!
//! A `compile_fail` test passes for *any* compile error, so each one has a twin right after
//! it that differs only in the one line under test and must compile: if the twin stops
//! compiling, the pair no longer proves anything and the twin fails. (Error codes in
//! `compile_fail,E0277` are not checked by a stable rustdoc, so they are not relied on.)
//! Doc tests build with `deny(warnings)` (see `lib.rs`), so a `#[must_use]` value left unused
//! is an error here, as it is in any crate that denies warnings.
//!
//! # 1. A `Span` cannot move to another thread
//!
//! It is current on the thread that started it; moving it would leave its frame behind.
//!
//! ```compile_fail
//! use agentcore_telemetry::{get_distributed_tracer, SpanKind};
//! let span = get_distributed_tracer().start_span("op", SpanKind::Internal, []);
//! std::thread::spawn(move || span.end()); // `Span` is `!Send`
//! ```
//!
//! Twin: the detached span moves.
//!
//! ```
//! use agentcore_telemetry::{get_distributed_tracer, SpanKind};
//! let span = get_distributed_tracer().start_span("op", SpanKind::Internal, []).detach();
//! std::thread::spawn(move || span.end()).join().unwrap();
//! ```
//!
//! # 2. A `ContextGuard` cannot move to another thread
//!
//! ```compile_fail
//! use agentcore_telemetry::get_distributed_tracer;
//! let trace = get_distributed_tracer().start_trace(Some("request-123"), [("k", "v")]);
//! std::thread::spawn(move || drop(trace)); // `ContextGuard` is `!Send`
//! ```
//!
//! Twin: its context (a plain value) moves.
//!
//! ```
//! use agentcore_telemetry::get_distributed_tracer;
//! let trace = get_distributed_tracer().start_trace(Some("request-123"), [("k", "v")]);
//! let cx = trace.context().clone();
//! std::thread::spawn(move || drop(cx)).join().unwrap();
//! ```
//!
//! # 3. A `Span` held across `.await` cannot be spawned
//!
//! The future would keep the span current on whichever worker last polled it.
//!
//! ```compile_fail
//! use agentcore_telemetry::{get_distributed_tracer, SpanKind};
//! # let rt = tokio::runtime::Builder::new_multi_thread().build().unwrap();
//! # rt.block_on(async {
//! tokio::spawn(async {
//!     let span = get_distributed_tracer().start_span("op", SpanKind::Internal, []);
//!     tokio::task::yield_now().await;
//!     span.end();
//! });
//! # });
//! ```
//!
//! Twin: a detached span, current during each poll through `in_span`.
//!
//! ```
//! use agentcore_telemetry::{get_distributed_tracer, FutureExt, SpanKind};
//! # let rt = tokio::runtime::Builder::new_multi_thread().build().unwrap();
//! # rt.block_on(async {
//! let span = get_distributed_tracer().start_detached_span("op", SpanKind::Internal, []);
//! tokio::spawn(async {
//!     tokio::task::yield_now().await;
//! }.in_span(span)).await.unwrap();
//! # });
//! ```
//!
//! # 4. A `ContextGuard` held across `.await` cannot be spawned
//!
//! ```compile_fail
//! use agentcore_telemetry::get_distributed_tracer;
//! # let rt = tokio::runtime::Builder::new_multi_thread().build().unwrap();
//! # rt.block_on(async {
//! tokio::spawn(async {
//!     let _trace = get_distributed_tracer().start_trace(Some("request-123"), [("k", "v")]);
//!     tokio::task::yield_now().await;
//! });
//! # });
//! ```
//!
//! Twin: the guard dropped before the `.await`.
//!
//! ```
//! use agentcore_telemetry::get_distributed_tracer;
//! # let rt = tokio::runtime::Builder::new_multi_thread().build().unwrap();
//! # rt.block_on(async {
//! tokio::spawn(async {
//!     {
//!         let _trace = get_distributed_tracer().start_trace(Some("request-123"), [("k", "v")]);
//!     }
//!     tokio::task::yield_now().await;
//! }).await.unwrap();
//! # });
//! ```
//!
//! # 5. `start_trace` written as a statement
//!
//! As the specification writes it (`tracer.start_trace(trace_id="request-123")`): the guard
//! would drop at once and the next span would start an unrelated trace.
//!
//! ```compile_fail
//! use agentcore_telemetry::get_distributed_tracer;
//! let tracer = get_distributed_tracer();
//! tracer.start_trace(Some("request-123"), [("k", "v")]); // unused `#[must_use]` value
//! ```
//!
//! Twin: bound for the scope.
//!
//! ```
//! use agentcore_telemetry::get_distributed_tracer;
//! let tracer = get_distributed_tracer();
//! let _trace = tracer.start_trace(Some("request-123"), [("k", "v")]);
//! ```
//!
//! # 6. `start_span` written as a statement
//!
//! ```compile_fail
//! use agentcore_telemetry::{get_distributed_tracer, SpanKind};
//! get_distributed_tracer().start_span("op", SpanKind::Internal, []); // ends at once
//! ```
//!
//! Twin:
//!
//! ```
//! use agentcore_telemetry::{get_distributed_tracer, SpanKind};
//! let _span = get_distributed_tracer().start_span("op", SpanKind::Internal, []);
//! ```
//!
//! # 7. A detached span started and dropped unused
//!
//! ```compile_fail
//! use agentcore_telemetry::{get_distributed_tracer, SpanKind};
//! get_distributed_tracer().start_detached_span("op", SpanKind::Internal, []);
//! ```
//!
//! Twin:
//!
//! ```
//! use agentcore_telemetry::{get_distributed_tracer, SpanKind};
//! let span = get_distributed_tracer().start_detached_span("op", SpanKind::Internal, []);
//! span.end();
//! ```
//!
//! # 8. A span cannot outlive its tracer
//!
//! ```compile_fail
//! use agentcore_telemetry::{DetachedSpan, DistributedTracer, SpanKind, TracerConfig};
//! fn leak() -> DetachedSpan<'static> {
//!     let tracer = DistributedTracer::new(TracerConfig::default());
//!     tracer.start_detached_span("op", SpanKind::Internal, [])
//! }
//! ```
//!
//! Twin: a tracer that lives long enough.
//!
//! ```
//! use agentcore_telemetry::{DetachedSpan, DistributedTracer, SpanKind, TracerConfig};
//! fn start(tracer: &DistributedTracer) -> DetachedSpan<'_> {
//!     tracer.start_detached_span("op", SpanKind::Internal, [])
//! }
//! let tracer = DistributedTracer::new(TracerConfig::default());
//! start(&tracer).end();
//! ```
