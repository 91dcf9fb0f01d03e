//! Exemplars: the link from a counter increment or a histogram observation to the trace that
//! caused it, kept in a fixed record per series (per bucket for histograms) and exposed only in
//! OpenMetrics (`sample # {trace_id="…",span_id="…"} value timestamp`).
//!
//! # What gets recorded
//! A metric created with [`Exemplars::TraceBased`] (OpenTelemetry's default `trace_based`
//! filter) keeps, on an `inc`/`observe` made inside a *sampled* span, that span's trace and
//! span ids, the value and the observation's wall-clock time. One exemplar per span and record:
//! further recordings in the span that already holds a record leave it as it is (no clock read,
//! no write), so the exemplar and its timestamp stay fixed and Prometheus stores it once. Any metric with exemplars on
//! ([`Exemplars::Explicit`] or `TraceBased`) also accepts explicit label sets through
//! `Counter::inc_with_exemplar` / `Histogram::observe_with_exemplar`. With
//! [`Exemplars::Off`] (the default) nothing is kept and the recording path is the plain one.
//!
//! The metrics layer does not know the tracer: the tracer publishes "the innermost visible
//! sampled span of this thread" into a thread-local this module owns (`CURRENT_SPAN`,
//! written through `publish_current_span` at every change of the tracer's context stack), and
//! a trace-based record reads it (a thread-local load: no call into the tracer, no borrow, no
//! scan). Without a tracer nothing is published, so there is no sampled span and no exemplar.
//!
//! # The record (`ExemplarCell`) and its protocol
//! Fixed size, written in place, never allocated after the metric is created:
//!
//! | word | holds |
//! | --- | --- |
//! | `seq` | version: even = stable, odd = a writer is inside |
//! | `value` | the observed value or increment (`f64` bits) |
//! | `time` | nanoseconds since the Unix epoch of the observation |
//! | `meta` | `EMPTY`, `IDS` (trace-based) or `LABELS + n` (explicit, `n` rendered bytes) |
//! | `trace_hi`, `trace_lo`, `span` | the ids (trace-based) |
//! | `held` | the ids' one-word key (`span_key`; 0 unless the record holds ids), for the hot path's check |
//! | `labels` | `LABEL_WORDS` words of rendered label pairs (explicit) |
//!
//! A seqlock with a *try-lock* writer:
//! 1. **A writer never waits.** It claims the record with one `compare_exchange` of `seq` from
//!    even `s` to `s + 1`; if `seq` is odd (another writer is inside) or the CAS fails, it drops
//!    its exemplar (last-writer-wins sampling: a concurrent writer's exemplar is as good).
//!    Lock-free, allocation-free, and a recording never blocks on a scrape or on another
//!    recorder.
//! 2. **A reader never sees a torn record.** It reads `seq` (`s1`, `Acquire`), every word
//!    (`Relaxed`), then an `Acquire` fence and `seq` again (`s2`); the copy is kept only if
//!    `s1 == s2` and `s1` is even. Otherwise it retries, at most `READ_ATTEMPTS` times, then
//!    reports no exemplar for this scrape (a scrape never spins on a busy writer).
//!
//! # Memory ordering
//! * Writer: the claim CAS is `Acquire` and is followed by a `Release` fence, so no data store
//!   can become visible before `seq` is odd; the data stores are `Relaxed`; the final store of
//!   `s + 2` is `Release`, publishing them.
//! * Reader: `Acquire` load of `s1` synchronises with the `Release` store that made it even, so
//!   the data words read afterwards are at least that write's; the `Acquire` fence before the
//!   `s2` load orders the data loads before it. If any data load saw a later writer's store,
//!   that writer's odd `seq` (or its `s + 2`) is visible to the `s2` load through the fence
//!   pairing with the writer's `Release` fence, so `s2 != s1` and the copy is discarded
//!   (Boehm, "Can seqlocks get along with programming language memory models?", 2012).
//! * Every word is an atomic: a torn *read* is detected and discarded, never undefined
//!   behaviour.
//!
//! The protocol is checked by the loom models of `src/loom/exemplar.rs` (`bash .ci/loom`: no
//! torn copy, including a record changing kind; a losing writer drops its exemplar only to a
//! kept write; the last kept write is what a later read returns), which fail for each ordering
//! above weakened and for a writer that publishes early or does not make `seq` odd; and by a
//! stress test in this module (`stress_readers_never_see_a_torn_record`: two writers, one
//! reader, every copy must be one writer's whole record), which fails when the reader skips its
//! second `seq` comparison or the writer stops versioning the record.

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::sync::{fence, AtomicU64};
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use crate::Error;

/// Which recordings keep an exemplar; chosen per metric or family
/// ([`FamilyOptions::exemplars`](crate::registry::FamilyOptions::exemplars)), or for every
/// family of a registry ([`Registry::set_default_exemplars`](crate::Registry::set_default_exemplars)).
///
/// ```
/// use agentcore_telemetry::{Counter, Exemplars};
///
/// let requests = Counter::with_exemplars(Exemplars::Explicit).unwrap();
/// requests.inc_with_exemplar(&[("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736")]).unwrap();
/// assert_eq!(requests.get(), 1.0);
/// assert_eq!(Exemplars::default(), Exemplars::Off);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Exemplars {
    /// No exemplar storage; `inc`/`observe` are the plain recording path, and the
    /// `*_with_exemplar` methods record the value and report [`Error::ExemplarsOff`].
    #[default]
    Off,
    /// Storage is kept; only `inc_with_exemplar` / `observe_with_exemplar` write it.
    Explicit,
    /// As `Explicit`, and every `inc`/`observe` made inside a sampled span keeps that span's
    /// `trace_id` and `span_id` (OpenTelemetry's `trace_based` exemplar filter).
    TraceBased,
}

impl Exemplars {
    /// Whether the metric keeps exemplar records at all.
    #[inline]
    pub(crate) fn stored(self) -> bool {
        self != Exemplars::Off
    }
}

/// OpenMetrics 1.0: "The combined length of the label names and values of an Exemplar's LabelSet
/// MUST NOT exceed 128 UTF-8 character code points" (Prometheus `ExemplarMaxLabelSetLength`).
pub const MAX_EXEMPLAR_LABEL_CHARS: usize = 128;

/// Words of rendered (escaped) explicit label pairs a record holds: 256 bytes, room for 128
/// ASCII code points with their syntax; a label set that renders longer is refused.
pub(crate) const LABEL_WORDS: usize = 32;
pub(crate) const LABEL_BYTES: usize = LABEL_WORDS * 8;

/// `meta`: nothing recorded yet.
pub(crate) const EMPTY: u64 = 0;
/// `meta`: trace and span ids.
pub(crate) const IDS: u64 = 1;
/// `meta`: explicit labels, `LABELS + n` for `n` rendered bytes.
pub(crate) const LABELS: u64 = 2;

/// A scrape gives up on a record after this many torn copies (a writer kept overtaking it) and
/// shows no exemplar for it this time.
pub(crate) const READ_ATTEMPTS: usize = 8;

// ---------------------------------------------------------------------------------------------
// The tracer's hook.
// ---------------------------------------------------------------------------------------------

thread_local! {
    /// The innermost visible sampled span of this thread, as the tracer last published it:
    /// `(trace_id, span_id)`, with span id 0 (no span has it) for "none".
    ///
    /// The tracer owns the definition (`tracer::current`: the top frame of the thread's context
    /// stack above the innermost scope marker, if it is a sampled span or context) and publishes
    /// it here at the end of every change of that stack (push, removal, scope exit, the stack's
    /// own destruction at thread exit), so a trace-based record reads it with one thread-local
    /// load, no borrow and no scan. The dependency goes tracer → primitives: this layer never
    /// calls the tracer. A plain `Cell` with `const` init and no destructor: never lazily
    /// initialised, never destroyed, so reading or writing it works at any point of a thread's
    /// life, thread exit included.
    static CURRENT_SPAN: Cell<CurrentSpan> = const {
        Cell::new(CurrentSpan { trace: 0, span: 0, key: 0 })
    };
}

/// What [`CURRENT_SPAN`] holds: the ids and their [`span_key`], computed once when the tracer
/// publishes them, so that the hot path compares one word.
#[derive(Clone, Copy)]
struct CurrentSpan {
    trace: u128,
    span: u64,
    key: u64,
}

/// One word standing for a span's ids in [`ExemplarCell::settled`]: the span id times an odd
/// number made of the low half of the trace id (`2 * low + 1`, wrapping), 0 for none (published
/// as `(0, 0)`). An odd factor is invertible modulo 2^64, so within a trace keys differ exactly
/// when span ids do, and the key is 0 exactly when the span id is: no span is taken for "none",
/// whatever its ids. Across traces the low half, which W3C requires to be random, is mixed in,
/// so that span ids that repeat from trace to trace (schemes that number their spans) make
/// different keys: the same id `s` in two traces shares one only if `2^k` divides `s` and the
/// low halves differ by a multiple of `2^(63-k)`. Two random spans share a key with probability
/// about 2^-64, and if they did, the second one's first record would keep the first one's
/// exemplar, a valid exemplar of an earlier observation.
///
/// Neither xor nor a sum: each makes 0, the key of "no span", from ids a remote parent sends.
/// The xor did for a span whose id *is* its trace id's low half, which Zipkin (B3) and Jaeger
/// clients send for a root span (a 64-bit trace id, left-padded to W3C's 128 bits, and the
/// root's span id are one number); the sum for a span id and low half that add up to 2^64
/// (`…ffffffffffffffff-0000000000000001`, anyone's traceparent) and for that root with id
/// 2^63. A metric recorded in such a context kept no exemplar
/// (`tests/exemplars.rs`, `a_remote_parent_whose_ids_made_the_key_of_no_span_gets_exemplars`).
/// No branch: `2 * low + 1` is one `lea` and the multiply takes the add's place, one
/// instruction more per publish than the sum, where a test for the zero case cost 3 more per
/// span (`span_basic` under callgrind, `benches/compare/breakdown.py`).
#[inline(always)]
fn span_key(trace: u128, span: u64) -> u64 {
    span.wrapping_mul((trace as u64) << 1 | 1)
}

/// Publishes this thread's innermost visible sampled span; none is `(0, 0)` (both zero, as
/// [`ExemplarCell::settled`] expects). Called by the tracer only (see [`CURRENT_SPAN`]).
///
/// Hot path: written through `with`, not `LocalKey::set`, which goes through the out-of-line
/// `LocalKey::initialize_with` wherever the compiler does not inline it (a `#[trace_operation]`
/// function paid that call, 25 instructions, on every span's finish under callgrind); for this
/// constant-initialised thread-local without a destructor, `with` is one `fs`-relative store.
#[inline(always)]
pub(crate) fn publish_current_span(trace: u128, span: u64) {
    // `span_key` gives none the key 0 only as `(0, 0)`.
    debug_assert!(span != 0 || trace == 0, "no span is published as (0, 0)");
    let current = CurrentSpan {
        trace,
        span,
        key: span_key(trace, span),
    };
    CURRENT_SPAN.with(|c| c.set(current));
}

/// The current sampled span's ids on this thread, as last published by the tracer; `span` is 0
/// when there is none (no tracer, no span, or an unsampled one on top).
#[inline(always)]
pub(crate) fn current_span() -> (u128, u64) {
    let c = CURRENT_SPAN.get();
    (c.trace, c.span)
}

/// The current sampled span's [`span_key`] (0 for none).
#[inline(always)]
fn current_key() -> u64 {
    CURRENT_SPAN.get().key
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

// ---------------------------------------------------------------------------------------------
// The record.
// ---------------------------------------------------------------------------------------------

/// One exemplar record (see the module documentation for its protocol).
pub(crate) struct ExemplarCell {
    seq: AtomicU64,
    value: AtomicU64,
    time: AtomicU64,
    meta: AtomicU64,
    trace_hi: AtomicU64,
    trace_lo: AtomicU64,
    span: AtomicU64,
    /// `span_key` of the ids held, 0 when the record holds none (labels, or nothing yet).
    held: AtomicU64,
    labels: [AtomicU64; LABEL_WORDS],
}

/// A consistent copy of a record, taken at scrape time.
#[derive(Clone, Copy)]
pub(crate) struct ExemplarRead {
    pub(crate) value: f64,
    pub(crate) time_nanos: u64,
    kind: ReadKind,
}

// A stack copy that lives for one sample's encoding; boxing the large variant would allocate per
// exemplar at every scrape.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy)]
enum ReadKind {
    Ids {
        trace: u128,
        span: u64,
    },
    Labels {
        bytes: [u8; LABEL_BYTES],
        len: usize,
    },
}

impl ExemplarCell {
    pub(crate) fn new() -> ExemplarCell {
        ExemplarCell {
            seq: AtomicU64::new(0),
            value: AtomicU64::new(0),
            time: AtomicU64::new(0),
            meta: AtomicU64::new(EMPTY),
            trace_hi: AtomicU64::new(0),
            trace_lo: AtomicU64::new(0),
            span: AtomicU64::new(0),
            held: AtomicU64::new(0),
            labels: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// `count` fresh records.
    pub(crate) fn boxed_slice(count: usize) -> Box<[ExemplarCell]> {
        (0..count).map(|_| ExemplarCell::new()).collect()
    }

    /// Claims the record, or `None` when another writer is inside (the caller drops its
    /// exemplar).
    #[inline]
    fn claim(&self) -> Option<u64> {
        let s = self.seq.load(Relaxed);
        if s & 1 == 1 {
            return None;
        }
        self.seq.compare_exchange(s, s + 1, Acquire, Relaxed).ok()?;
        // No data store below may become visible before `seq` is odd.
        fence(Release);
        Some(s)
    }

    /// Ends the write claimed at version `s`; returns the new version.
    #[inline]
    fn publish(&self, s: u64) -> u64 {
        let next = s.wrapping_add(2);
        self.seq.store(next, Release);
        next
    }

    /// Whether a trace-based record for the span whose [`span_key`] is `key` (0 for none) has
    /// nothing to do: the record holds this span's ids already, or there is no span. A relaxed
    /// peek, not a consistent read: a wrong answer only makes the caller write, or skip, one
    /// exemplar. `false` says "ask [`write_trace_based`]".
    ///
    /// Hot path, shaped for it: one load and compare against the thread-local key (inside a span
    /// that holds the record, the whole check; issue 13 asks for at most twice the cost of the
    /// bare increment, which is about ten instructions). No `meta` check: `held` is zero unless
    /// the record holds ids ([`write_labels`] zeroes it), so a record holding labels or nothing
    /// never matches a span.
    ///
    /// [`write_labels`]: Self::write_labels
    #[inline(always)]
    fn settled(&self, key: u64) -> bool {
        self.held.load(Relaxed) == key || key == 0
    }

    /// Records the ids of a span with `value` at `time_nanos`. Returns the record's version
    /// after this write (even, one step of 2 per kept write), or `None` when another writer
    /// held the record and this exemplar was dropped.
    pub(crate) fn write_ids(
        &self,
        trace: u128,
        span: u64,
        value: f64,
        time_nanos: u64,
    ) -> Option<u64> {
        let s = self.claim()?;
        self.value.store(value.to_bits(), Relaxed);
        self.time.store(time_nanos, Relaxed);
        self.meta.store(IDS, Relaxed);
        self.trace_hi.store((trace >> 64) as u64, Relaxed);
        self.trace_lo.store(trace as u64, Relaxed);
        self.span.store(span, Relaxed);
        self.held.store(span_key(trace, span), Relaxed);
        Some(self.publish(s))
    }

    /// Records rendered label pairs (`len <= LABEL_BYTES`) with `value` at `time_nanos`; returns
    /// what [`write_ids`](Self::write_ids) does.
    pub(crate) fn write_labels(
        &self,
        rendered: &[u8; LABEL_BYTES],
        len: usize,
        value: f64,
        time_nanos: u64,
    ) -> Option<u64> {
        let s = self.claim()?;
        self.value.store(value.to_bits(), Relaxed);
        self.time.store(time_nanos, Relaxed);
        self.meta.store(LABELS + len as u64, Relaxed);
        // The record no longer holds a span: `settled` relies on a zero `held` here.
        self.span.store(0, Relaxed);
        self.trace_lo.store(0, Relaxed);
        self.held.store(0, Relaxed);
        for (word, chunk) in self
            .labels
            .iter()
            .zip(rendered.chunks_exact(8))
            .take(len.div_ceil(8))
        {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            word.store(u64::from_le_bytes(b), Relaxed);
        }
        Some(self.publish(s))
    }

    /// A consistent copy, or `None` when nothing was recorded (or writers kept overtaking the
    /// reader for [`READ_ATTEMPTS`] tries).
    pub(crate) fn read(&self) -> Option<ExemplarRead> {
        for _ in 0..READ_ATTEMPTS {
            let s1 = self.seq.load(Acquire);
            if s1 & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let value = f64::from_bits(self.value.load(Relaxed));
            let time_nanos = self.time.load(Relaxed);
            let meta = self.meta.load(Relaxed);
            let kind = match meta {
                EMPTY => None,
                IDS => Some(ReadKind::Ids {
                    trace: (u128::from(self.trace_hi.load(Relaxed)) << 64)
                        | u128::from(self.trace_lo.load(Relaxed)),
                    span: self.span.load(Relaxed),
                }),
                _ => {
                    let len = (meta - LABELS).min(LABEL_BYTES as u64) as usize;
                    let mut bytes = [0u8; LABEL_BYTES];
                    for (word, chunk) in self
                        .labels
                        .iter()
                        .zip(bytes.chunks_exact_mut(8))
                        .take(len.div_ceil(8))
                    {
                        chunk.copy_from_slice(&word.load(Relaxed).to_le_bytes());
                    }
                    Some(ReadKind::Labels { bytes, len })
                }
            };
            fence(Acquire);
            if self.seq.load(Relaxed) != s1 {
                continue;
            }
            return kind.map(|kind| ExemplarRead {
                value,
                time_nanos,
                kind,
            });
        }
        None
    }

    /// Test access to the raw ids and value, for the protocol checks.
    #[cfg(test)]
    pub(crate) fn read_ids(&self) -> Option<(u128, u64, f64, u64)> {
        let r = self.read()?;
        match r.kind {
            ReadKind::Ids { trace, span } => Some((trace, span, r.value, r.time_nanos)),
            ReadKind::Labels { .. } => None,
        }
    }
}

/// Records a trace-based exemplar into `cell` if a sampled span is current.
///
/// Hot path, inlined into `Counter::inc` and `Histogram::observe`: the thread-local
/// [`CURRENT_SPAN`]'s key and the [`settled`](ExemplarCell::settled) peek (inside a span that
/// holds the record: one thread-local load, one load and compare); only a span's first record in
/// `cell` calls the out-of-line [`write_trace_based`].
#[inline(always)]
pub(crate) fn record_trace_based(cell: &ExemplarCell, value: f64) {
    // This span's exemplar is kept already (one per span and record, the first: a loop inside
    // one span reads no clock and writes nothing), or no sampled span is current.
    if !cell.settled(current_key()) {
        write_trace_based(cell, value);
    }
}

/// A span's first record in `cell`: reads the clock and writes the ids (nothing when no sampled
/// span is current).
#[cold]
#[inline(never)]
fn write_trace_based(cell: &ExemplarCell, value: f64) {
    let (trace, span) = current_span();
    if span == 0 {
        return;
    }
    // A dropped exemplar (another writer held the record) is not counted: the concurrent
    // writer's exemplar is as good a sample.
    let _ = cell.write_ids(trace, span, value, now_nanos());
}

/// Validates and records an explicit exemplar (label pairs) into `cell`.
pub(crate) fn record_explicit(
    cell: &ExemplarCell,
    labels: &[(&str, &str)],
    value: f64,
) -> Result<(), Error> {
    let mut rendered = [0u8; LABEL_BYTES];
    let len = render_labels(labels, &mut rendered)?;
    let _ = cell.write_labels(&rendered, len, value, now_nanos());
    Ok(())
}

/// The error for a `*_with_exemplar` call on a metric without exemplar storage.
pub(crate) fn exemplars_off() -> Error {
    // A unit variant: a metric with exemplars off may be given one on every recording, which
    // must not allocate a message each time (review helper-161: 2,000 calls, 2,000 allocations).
    Error::ExemplarsOff
}

/// Renders `name="value",...` (OpenMetrics escaping) into `out`; returns the length. Refuses an
/// invalid or duplicate label name, more than [`MAX_EXEMPLAR_LABEL_CHARS`] code points of names
/// and values together, a value with a double quote or a NUL (valid OpenMetrics that a real
/// parser rejects the whole exposition over), or a rendering longer than the record holds.
fn render_labels(labels: &[(&str, &str)], out: &mut [u8; LABEL_BYTES]) -> Result<usize, Error> {
    let invalid = |reason: String| Err(Error::InvalidExemplar { reason });
    let mut chars = 0usize;
    for (i, (name, value)) in labels.iter().enumerate() {
        // Counted first: a long list is refused once it crosses the limit, so the duplicate
        // check below (quadratic) sees at most 128 labels (every name has a code point).
        chars += name.chars().count() + value.chars().count();
        if chars > MAX_EXEMPLAR_LABEL_CHARS {
            return invalid(format!(
                "exemplar labels have at least {chars} code points, at most {MAX_EXEMPLAR_LABEL_CHARS} allowed"
            ));
        }
        if let Err(e) = crate::exposition::name::validate_label_name(name) {
            return invalid(format!("exemplar label: {e}"));
        }
        if crate::exposition::name::reserved_by_openmetrics(name) {
            return invalid(format!(
                "exemplar label {name:?}: {}",
                crate::exposition::name::OPENMETRICS_RESERVED
            ));
        }
        if value.contains('"') {
            // Valid OpenMetrics once escaped, but the official Python parser
            // (prometheus_client 0.26) toggles its quote state on escaped quotes inside an
            // exemplar and then rejects the whole exposition: one such exemplar would make every
            // scrape unreadable to it.
            return invalid(format!(
                "exemplar label {name:?}: a double quote in an exemplar label value is refused (prometheus_client's parser rejects the whole exposition over it)"
            ));
        }
        if value.contains('\0') {
            // Valid OpenMetrics (the ABNF's `normal-char` includes %x00), but Prometheus 2.42
            // fails the whole scrape on a NUL inside an exemplar (`expected label value, got
            // "INVALID"`), though it stores one in a series' label value.
            return invalid(format!(
                "exemplar label {name:?}: a NUL in an exemplar label value is refused (Prometheus fails the whole scrape over it)"
            ));
        }
        if labels[..i].iter().any(|(n, _)| n == name) {
            return invalid(format!("exemplar label name {name:?} given twice"));
        }
    }
    let mut len = 0usize;
    let mut push = |bytes: &[u8]| -> Result<(), Error> {
        let end = len + bytes.len();
        let Some(dst) = out.get_mut(len..end) else {
            return Err(Error::InvalidExemplar {
                reason: format!("exemplar labels render longer than {LABEL_BYTES} bytes"),
            });
        };
        dst.copy_from_slice(bytes);
        len = end;
        Ok(())
    };
    for (i, (name, value)) in labels.iter().enumerate() {
        if i > 0 {
            push(b",")?;
        }
        push(name.as_bytes())?;
        push(b"=\"")?;
        let mut utf8 = [0u8; 4];
        for c in value.chars() {
            match c {
                '\\' => push(b"\\\\")?,
                '"' => push(b"\\\"")?,
                '\n' => push(b"\\n")?,
                c => push(c.encode_utf8(&mut utf8).as_bytes())?,
            }
        }
        push(b"\"")?;
    }
    Ok(len)
}

/// Appends ` # {labels} value timestamp` (OpenMetrics 1.0 exemplar syntax; the timestamp in
/// seconds with nanosecond digits) to `out`.
pub(crate) fn write(out: &mut String, e: &ExemplarRead) {
    out.push_str(" # {");
    match &e.kind {
        ReadKind::Ids { trace, span } => {
            out.push_str("trace_id=\"");
            push_hex(out, *trace, 32);
            out.push_str("\",span_id=\"");
            push_hex(out, u128::from(*span), 16);
            out.push('"');
        }
        ReadKind::Labels { bytes, len } => {
            // Rendered from `&str`s by `render_labels` and copied whole: valid UTF-8 unless the
            // copy was torn, which `read` rules out; checked rather than trusted.
            out.push_str(std::str::from_utf8(&bytes[..*len]).unwrap_or(""));
        }
    }
    out.push_str("} ");
    // A float: with a decimal point or an exponent (see `openmetrics::value_f64`).
    crate::exposition::float::format_openmetrics_canonical(out, e.value);
    out.push(' ');
    out.push_str(itoa::Buffer::new().format(e.time_nanos / 1_000_000_000));
    let frac = e.time_nanos % 1_000_000_000;
    if frac != 0 {
        out.push('.');
        let mut digits = [b'0'; 9];
        let mut f = frac;
        for d in digits.iter_mut().rev() {
            *d = b'0' + (f % 10) as u8;
            f /= 10;
        }
        let end = digits.iter().rposition(|&d| d != b'0').map_or(1, |p| p + 1);
        for &d in &digits[..end] {
            out.push(d as char);
        }
    }
}

impl crate::exposition::openmetrics::Exemplar for ExemplarRead {
    fn write(&self, out: &mut String) {
        write(out, self);
    }
}

fn push_hex(out: &mut String, v: u128, digits: u32) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for i in (0..digits).rev() {
        out.push(HEX[((v >> (i * 4)) & 0xf) as usize] as char);
    }
}

#[cfg(all(test, not(agentcore_loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn ids_render_as_openmetrics_exemplar() {
        let cell = ExemplarCell::new();
        assert!(cell.read().is_none(), "nothing recorded yet");
        let version = cell.write_ids(
            0x4bf92f3577b34da6a3ce929d0e0e4736,
            0x00f067aa0ba902b7,
            0.25,
            1_700_000_000_500_000_000,
        );
        assert_eq!(version, Some(2), "an idle record takes the write");
        let mut out = String::new();
        write(&mut out, &cell.read().unwrap());
        assert_eq!(
            out,
            r#" # {trace_id="4bf92f3577b34da6a3ce929d0e0e4736",span_id="00f067aa0ba902b7"} 0.25 1700000000.5"#
        );
    }

    /// The hot path compares one key per record (`span_key`), not the ids: the same span id in
    /// another trace (a remote parent's id from a sequential generator, say) is another span and
    /// gets its own exemplar; the same span again writes nothing; outside a span nothing is
    /// written, whatever the record holds.
    #[test]
    fn the_settled_key_tells_spans_apart_by_trace_too() {
        let cell = ExemplarCell::new();
        let held = |cell: &ExemplarCell| cell.read().map(|r| (r.value, r.time_nanos));
        publish_current_span(0xA << 64 | 0x1111, 7);
        record_trace_based(&cell, 1.0);
        let first = held(&cell).expect("a sampled span's first record is kept");
        assert_eq!(first.0, 1.0);
        record_trace_based(&cell, 2.0);
        assert_eq!(held(&cell), Some(first), "the same span writes once");
        publish_current_span(0xB << 64 | 0x2222, 7);
        record_trace_based(&cell, 3.0);
        assert_eq!(
            held(&cell).map(|h| h.0),
            Some(3.0),
            "span 7 of another trace is another span"
        );
        publish_current_span(0, 0);
        record_trace_based(&cell, 4.0);
        assert_eq!(held(&cell).map(|h| h.0), Some(3.0), "no span, no write");
        record_explicit(&cell, &[("user", "u")], 5.0).unwrap();
        publish_current_span(0xB << 64 | 0x2222, 7);
        record_trace_based(&cell, 6.0);
        assert_eq!(
            held(&cell).map(|h| h.0),
            Some(6.0),
            "labels in the record: the span's ids replace them"
        );
        // A span whose id is its trace id's low half (Zipkin and Jaeger roots) is a span, and
        // each trace's is another one.
        publish_current_span(0xC << 64 | 0x3333, 0x3333);
        record_trace_based(&cell, 7.0);
        assert_eq!(
            held(&cell).map(|h| h.0),
            Some(7.0),
            "span id = trace id's low half"
        );
        publish_current_span(0xD << 64 | 0x4444, 0x4444);
        record_trace_based(&cell, 8.0);
        assert_eq!(held(&cell).map(|h| h.0), Some(8.0), "another trace's root");
        publish_current_span(0, 0);
    }

    #[test]
    fn explicit_labels_are_escaped_and_limited() {
        let cell = ExemplarCell::new();
        record_explicit(&cell, &[("user", "a\\c\nd")], 3.0).unwrap();
        let mut out = String::new();
        write(&mut out, &cell.read().unwrap());
        assert!(out.starts_with(r#" # {user="a\\c\nd"} 3.0 "#), "{out}");
        assert!(record_explicit(&cell, &[("user", "a\"b")], 3.0).is_err());
        assert!(record_explicit(&cell, &[("user", "a\0b")], 3.0).is_err());
        // OpenMetrics reserves label names that begin with `_`.
        assert!(record_explicit(&cell, &[("_user", "a")], 3.0).is_err());
        // 128 code points exactly: accepted.
        let v = "x".repeat(128 - 2);
        assert!(record_explicit(&cell, &[("id", &v)], 1.0).is_ok());
        // Code points, not bytes, count: 126 two-byte `é` are 128 code points, but 258 bytes
        // rendered, more than the record's 256.
        assert!(record_explicit(&cell, &[("id", &"é".repeat(100))], 1.0).is_ok());
        let err = record_explicit(&cell, &[("id", &"é".repeat(126))], 1.0).unwrap_err();
        assert!(err.to_string().contains("render longer"), "{err}");
        let long = "x".repeat(128 - 1);
        let err = record_explicit(&cell, &[("id", &long)], 1.0).unwrap_err();
        assert!(err.to_string().contains("129 code points"), "{err}");
        assert!(record_explicit(&cell, &[("bad name", "x")], 1.0).is_err());
        assert!(record_explicit(&cell, &[("__x", "x")], 1.0).is_err());
        assert!(record_explicit(&cell, &[("a", "x"), ("a", "y")], 1.0).is_err());
        // 120 backslashes: 122 code points, but 240 escaped bytes plus syntax fit; 127 do not.
        assert!(record_explicit(&cell, &[("q", &"\\".repeat(120))], 1.0).is_ok());
        let err = record_explicit(&cell, &[("q", &"\\".repeat(127))], 1.0).unwrap_err();
        assert!(err.to_string().contains("render longer"), "{err}");
        // The last accepted exemplar is what is kept.
        let mut out = String::new();
        write(&mut out, &cell.read().unwrap());
        assert!(out.starts_with(" # {q=\"\\\\"), "{out}");
    }

    /// Writers store records whose every word derives from one number `k`; readers check that
    /// every copy they get is one writer's whole record. Mutation checks (run once each, then
    /// restored): with the reader's second `seq` comparison disabled it fails with "torn trace
    /// id"; with the writer's claim CAS and final `seq` store removed, with "torn value".
    ///
    /// The reader runs for at least 700 ms and then until it has checked enough copies from both
    /// writers: a reader gives up after a few attempts while a writer holds the cell, so how many
    /// copies a time window yields depends on the scheduler (under AddressSanitizer on two busy
    /// cores, 499 in 700 ms once). The cap only ends a test that would otherwise hang.
    #[test]
    fn stress_readers_never_see_a_torn_record() {
        const WANTED: u64 = 2_000;
        let cell = Arc::new(ExemplarCell::new());
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..2u64)
            .map(|w| {
                let (cell, stop) = (Arc::clone(&cell), Arc::clone(&stop));
                std::thread::spawn(move || {
                    let mut k = w << 48;
                    while !stop.load(Relaxed) {
                        k += 1;
                        let _ = cell.write_ids(u128::from(k) << 64 | u128::from(k), k, k as f64, k);
                    }
                })
            })
            .collect();
        // Copies checked, how many differed from the one before, and from which writer.
        let (mut seen, mut changes, mut from) = (0u64, 0u64, [0u64; 2]);
        let mut last = None;
        let started = std::time::Instant::now();
        let (least, cap) = (Duration::from_millis(700), Duration::from_secs(60));
        while (started.elapsed() < least
            || seen < WANTED
            || changes < WANTED / 4
            || from.contains(&0))
            && started.elapsed() < cap
        {
            if let Some((trace, span, value, time)) = cell.read_ids() {
                let k = span;
                assert_eq!(trace, u128::from(k) << 64 | u128::from(k), "torn trace id");
                assert_eq!(value, k as f64, "torn value");
                assert_eq!(time, k, "torn time");
                seen += 1;
                changes += u64::from(last != Some(k));
                from[(k >> 48) as usize] += 1;
                last = Some(k);
            }
        }
        stop.store(true, Relaxed);
        for w in writers {
            w.join().unwrap();
        }
        assert!(
            seen >= WANTED && changes >= WANTED / 4 && !from.contains(&0),
            "in 60 s the reader checked only {seen} copies, {changes} changes, {from:?} per writer"
        );
    }
}
