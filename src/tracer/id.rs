//! Trace and span identifiers: random, never zero, printed as W3C lowercase hex; and the
//! crate-private [`TracerId`] that tags a tracer's frames on the thread-local context stack.

use crate::propagation::hex;
use std::cell::Cell;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A 128-bit trace identifier, never zero, displayed as 32 lowercase hex digits (W3C Trace Context).
///
/// ```
/// use agentcore_telemetry::TraceId;
///
/// let id = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
/// assert_eq!(id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// assert!(TraceId::from_hex("00000000000000000000000000000000").is_none());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceId(u128);

/// A 64-bit span identifier, never zero, displayed as 16 lowercase hex digits (W3C Trace Context).
///
/// ```
/// use agentcore_telemetry::SpanId;
///
/// let id = SpanId::from_hex("00f067aa0ba902b7").unwrap();
/// assert_eq!(id.to_u64(), 0x00f0_67aa_0ba9_02b7);
/// assert_eq!(id.to_string(), "00f067aa0ba902b7");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpanId(u64);

impl TraceId {
    /// A new random, non-zero trace id (thread-local generator, no allocation, no lock).
    ///
    /// ```
    /// use agentcore_telemetry::TraceId;
    /// assert_ne!(TraceId::random(), TraceId::random());
    /// ```
    #[inline]
    pub fn random() -> Self {
        TraceId(next_u128())
    }

    /// The id for a raw value, or `None` for the invalid all-zero id.
    ///
    /// ```
    /// use agentcore_telemetry::TraceId;
    /// assert_eq!(TraceId::from_u128(7).unwrap().to_u128(), 7);
    /// assert!(TraceId::from_u128(0).is_none());
    /// ```
    pub fn from_u128(v: u128) -> Option<Self> {
        (v != 0).then_some(TraceId(v))
    }

    /// The raw 128-bit value.
    ///
    /// ```
    /// use agentcore_telemetry::TraceId;
    /// assert_eq!(TraceId::from_hex("000000000000000000000000000000ff").unwrap().to_u128(), 255);
    /// ```
    pub fn to_u128(self) -> u128 {
        self.0
    }

    /// Parses exactly 32 lowercase hex digits (the W3C form); rejects uppercase, other lengths
    /// and the all-zero id.
    ///
    /// ```
    /// use agentcore_telemetry::TraceId;
    /// assert!(TraceId::from_hex("4BF92F3577B34DA6A3CE929D0E0E4736").is_none());
    /// assert!(TraceId::from_hex("abc").is_none());
    /// ```
    pub fn from_hex(s: &str) -> Option<Self> {
        let digits = <&[u8; 32]>::try_from(s.as_bytes()).ok()?;
        hex::decode_u128(digits).and_then(Self::from_u128)
    }

    /// Maps a caller-supplied id to a trace id: a valid W3C id (see [`TraceId::from_hex`]) is
    /// used as is; any other string (for example `"request-123"`) is hashed with 128-bit
    /// FNV-1a and then MurmurHash3's 128-bit finalizer, a fixed, platform-independent hash,
    /// so the same external id always maps to the same trace id, across calls, processes and
    /// machines. The finalizer (a bijection) makes every bit depend on every byte: FNV-1a
    /// alone left the low 64 bits, which ratio samplers read, almost equal for ids differing
    /// in their last characters (`request-1`, `request-2`), so such ids were all sampled or
    /// none were. The all-zero result (never seen in practice) is mapped to 1.
    ///
    /// ```
    /// use agentcore_telemetry::TraceId;
    /// let a = TraceId::from_external("request-123");
    /// assert_eq!(a, TraceId::from_external("request-123"));
    /// assert_ne!(a, TraceId::from_external("request-124"));
    /// let w3c = "4bf92f3577b34da6a3ce929d0e0e4736";
    /// assert_eq!(TraceId::from_external(w3c).to_string(), w3c);
    /// ```
    pub fn from_external(s: &str) -> Self {
        if let Some(id) = Self::from_hex(s) {
            return id;
        }
        const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
        const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
        let mut h = OFFSET;
        for &b in s.as_bytes() {
            h ^= u128::from(b);
            h = h.wrapping_mul(PRIME);
        }
        let h = murmur3_finalize_128(h);
        TraceId(if h == 0 { 1 } else { h })
    }

    /// A valid id that is never looked at: the trace id of scope markers on the context
    /// stack, which lookups skip by their tracer id.
    pub(crate) const MARKER: TraceId = TraceId(1);

    /// The invalid all-zero id: what a finished span's handle reports, which only its own
    /// `Drop` can still see (see `tracer::core::Rec`).
    pub(crate) const INVALID: TraceId = TraceId(0);

    /// The low 64 bits, which the ratio sampler compares against its threshold.
    pub(crate) fn low_u64(self) -> u64 {
        self.0 as u64
    }
}

/// MurmurHash3 x64_128's finalization of the two 64-bit halves: a bijection of `u128` whose
/// every output bit depends on every input bit.
fn murmur3_finalize_128(h: u128) -> u128 {
    fn fmix64(mut k: u64) -> u64 {
        k ^= k >> 33;
        k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
        k ^= k >> 33;
        k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        k ^ (k >> 33)
    }
    let (mut h1, mut h2) = ((h >> 64) as u64, h as u64);
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    h1 = fmix64(h1);
    h2 = fmix64(h2);
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    (u128::from(h1) << 64) | u128::from(h2)
}

impl SpanId {
    /// The invalid all-zero id (see [`TraceId::INVALID`]).
    pub(crate) const INVALID: SpanId = SpanId(0);

    /// A new random, non-zero span id (thread-local generator, no allocation, no lock).
    ///
    /// ```
    /// use agentcore_telemetry::SpanId;
    /// assert_ne!(SpanId::random().to_u64(), 0);
    /// ```
    #[inline]
    pub fn random() -> Self {
        SpanId(next_u64())
    }

    /// The id for a raw value, or `None` for the invalid all-zero id.
    ///
    /// ```
    /// use agentcore_telemetry::SpanId;
    /// assert!(SpanId::from_u64(0).is_none());
    /// ```
    pub fn from_u64(v: u64) -> Option<Self> {
        (v != 0).then_some(SpanId(v))
    }

    /// The raw 64-bit value.
    ///
    /// ```
    /// use agentcore_telemetry::SpanId;
    /// assert_eq!(SpanId::from_u64(9).unwrap().to_u64(), 9);
    /// ```
    pub fn to_u64(self) -> u64 {
        self.0
    }

    /// Parses exactly 16 lowercase hex digits; rejects uppercase, other lengths and zero.
    ///
    /// ```
    /// use agentcore_telemetry::SpanId;
    /// assert!(SpanId::from_hex("0000000000000000").is_none());
    /// assert!(SpanId::from_hex("00f067aa0ba902b7").is_some());
    /// ```
    pub fn from_hex(s: &str) -> Option<Self> {
        let digits = <&[u8; 16]>::try_from(s.as_bytes()).ok()?;
        hex::decode_u64(digits).and_then(Self::from_u64)
    }

    /// Maps a caller-supplied span id to a span id, as [`TraceId::from_external`] does for
    /// trace ids: a valid W3C id (see [`SpanId::from_hex`]) is used as is; any other string
    /// (for example the specification's `"span-888"`) is hashed with 64-bit FNV-1a, a fixed,
    /// platform-independent hash, so the same string always maps to the same span id. The
    /// all-zero result is mapped to 1.
    ///
    /// ```
    /// use agentcore_telemetry::SpanId;
    /// let a = SpanId::from_external("span-888");
    /// assert_eq!(a, SpanId::from_external("span-888"));
    /// assert_ne!(a, SpanId::from_external("span-889"));
    /// assert_eq!(SpanId::from_external("00f067aa0ba902b7").to_string(), "00f067aa0ba902b7");
    /// ```
    pub fn from_external(s: &str) -> Self {
        if let Some(id) = Self::from_hex(s) {
            return id;
        }
        const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        let mut h = OFFSET;
        for &b in s.as_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(PRIME);
        }
        SpanId(if h == 0 { 1 } else { h })
    }
}

/// The link attribute under which [`DetachedSpan::add_link`](super::DetachedSpan::add_link)
/// keeps a span id given as a string that is not a W3C id (the link's span id is then derived
/// from it, see [`SpanId::from_external`]). A trace id is kept under
/// [`EXTERNAL_ID_KEY`](super::EXTERNAL_ID_KEY).
///
/// ```
/// assert_eq!(agentcore_telemetry::tracer::EXTERNAL_SPAN_ID_KEY, "span.external_id");
/// ```
pub const EXTERNAL_SPAN_ID_KEY: &str = "span.external_id";

/// A trace id, or a string naming one (what [`DetachedSpan::add_link`](super::DetachedSpan::add_link)
/// accepts): a [`TraceId`], or a `&str` / `String`, which is parsed as a W3C id or else mapped
/// with [`TraceId::from_external`]. Sealed.
///
/// ```
/// use agentcore_telemetry::tracer::ToTraceId;
/// use agentcore_telemetry::TraceId;
/// assert_eq!("trace-999".to_trace_id(), (TraceId::from_external("trace-999"), Some("trace-999")));
/// let id = TraceId::random();
/// assert_eq!(id.to_trace_id(), (id, None));
/// ```
pub trait ToTraceId: sealed::Sealed {
    /// The id, and the original string when it was mapped (not a W3C id).
    ///
    /// ```
    /// use agentcore_telemetry::tracer::ToTraceId;
    /// let w3c = "4bf92f3577b34da6a3ce929d0e0e4736";
    /// assert_eq!(w3c.to_trace_id().0.to_string(), w3c);
    /// assert_eq!(w3c.to_trace_id().1, None);
    /// ```
    fn to_trace_id(&self) -> (TraceId, Option<&str>);
}

/// A span id, or a string naming one (what [`DetachedSpan::add_link`](super::DetachedSpan::add_link)
/// accepts): a [`SpanId`], or a `&str` / `String`, which is parsed as a W3C id or else mapped
/// with [`SpanId::from_external`]. Sealed.
///
/// ```
/// use agentcore_telemetry::tracer::ToSpanId;
/// use agentcore_telemetry::SpanId;
/// assert_eq!("span-888".to_span_id(), (SpanId::from_external("span-888"), Some("span-888")));
/// assert_eq!("00f067aa0ba902b7".to_span_id().1, None);
/// ```
pub trait ToSpanId: sealed::Sealed {
    /// The id, and the original string when it was mapped (not a W3C id).
    ///
    /// ```
    /// use agentcore_telemetry::tracer::ToSpanId;
    /// use agentcore_telemetry::SpanId;
    /// let owned = String::from("span-888");
    /// assert_eq!(owned.to_span_id(), (SpanId::from_external("span-888"), Some("span-888")));
    /// ```
    fn to_span_id(&self) -> (SpanId, Option<&str>);
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::TraceId {}
    impl Sealed for super::SpanId {}
    impl Sealed for str {}
    impl Sealed for String {}
    impl<T: Sealed + ?Sized> Sealed for &T {}
}

impl ToTraceId for TraceId {
    fn to_trace_id(&self) -> (TraceId, Option<&str>) {
        (*self, None)
    }
}

impl ToTraceId for str {
    fn to_trace_id(&self) -> (TraceId, Option<&str>) {
        match TraceId::from_hex(self) {
            Some(id) => (id, None),
            None => (TraceId::from_external(self), Some(self)),
        }
    }
}

impl ToTraceId for String {
    fn to_trace_id(&self) -> (TraceId, Option<&str>) {
        self.as_str().to_trace_id()
    }
}

impl<T: ToTraceId + ?Sized> ToTraceId for &T {
    fn to_trace_id(&self) -> (TraceId, Option<&str>) {
        (**self).to_trace_id()
    }
}

impl ToSpanId for SpanId {
    fn to_span_id(&self) -> (SpanId, Option<&str>) {
        (*self, None)
    }
}

impl ToSpanId for str {
    fn to_span_id(&self) -> (SpanId, Option<&str>) {
        match SpanId::from_hex(self) {
            Some(id) => (id, None),
            None => (SpanId::from_external(self), Some(self)),
        }
    }
}

impl ToSpanId for String {
    fn to_span_id(&self) -> (SpanId, Option<&str>) {
        self.as_str().to_span_id()
    }
}

impl<T: ToSpanId + ?Sized> ToSpanId for &T {
    fn to_span_id(&self) -> (SpanId, Option<&str>) {
        (**self).to_span_id()
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({:032x})", self.0)
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({:016x})", self.0)
    }
}

thread_local! {
    // wyrand state; 0 means "not seeded yet". A `const` initializer with no destructor
    // makes each access a plain thread-pointer-relative load (a lazily initialized
    // thread-local checks its state on every access).
    static RNG: Cell<u64> = const { Cell::new(0) };
}

fn seed() -> u64 {
    // std's SipHash keys are random per process (and advance per `RandomState`).
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_usize(&h as *const _ as usize);
    h.finish() | 1
}

/// wyrand's increment: each draw adds it to the state.
const WY_ADD: u64 = 0xa076_1d64_78bd_642f;

/// wyrand: one add, one 128-bit multiply; passes BigCrush, period 2^64 per thread.
#[inline(always)]
fn wyrand_step(state: &mut u64) -> u64 {
    let x = state.wrapping_add(WY_ADD);
    *state = x;
    let t = u128::from(x).wrapping_mul(u128::from(x ^ 0xe703_7ed1_a0b4_28db));
    (t as u64) ^ ((t >> 64) as u64)
}

/// Runs `f` on this thread's generator state (seeded on first use): one thread-local load
/// and one store however many numbers `f` draws. (`RNG` has a `const` initializer and no
/// destructor, so it is never gone; the fallback only keeps this total.)
#[inline(always)]
fn with_rng<R>(f: impl FnOnce(&mut u64) -> R) -> R {
    let mut s = RNG.try_with(Cell::get).unwrap_or(0x9e37_79b9_7f4a_7c15);
    if s == 0 {
        s = seed();
    }
    let r = f(&mut s);
    let _ = RNG.try_with(|c| c.set(s));
    r
}

/// A random value, never zero: zero (probability 2^-64) maps to a fixed odd constant,
/// without a loop (a conditional move).
#[inline(always)]
fn non_zero_u64(v: u64) -> u64 {
    if v == 0 {
        0x9e37_79b9_7f4a_7c15
    } else {
        v
    }
}

#[inline]
fn next_u64() -> u64 {
    with_rng(|s| non_zero_u64(wyrand_step(s)))
}

#[inline]
fn next_u128() -> u128 {
    // The low half (what the sampler compares, and W3C's random rightmost bytes) is never
    // zero, so neither is the id.
    with_rng(|s| (u128::from(wyrand_step(s)) << 64) | u128::from(non_zero_u64(wyrand_step(s))))
}

/// Moves this thread's generator past `draws` draws without making them, and returns the state
/// they start from: what [`DeferredIds`] computes them from, when asked.
#[inline(always)]
fn reserve(draws: u64) -> u64 {
    with_rng(|s| {
        let from = *s;
        *s = from.wrapping_add(WY_ADD.wrapping_mul(draws));
        from
    })
}

/// A span's trace id and span id, not drawn yet: the generator states their draws start
/// from, which [`DeferredIds::trace_id`] and [`DeferredIds::span_id`] turn into the ids the
/// draws would have made. Reserving the draws is one thread-local access (a load, an add and
/// a store); drawing them is a 128-bit multiply each, which an unsampled span (most spans,
/// under a ratio sampler) never needs unless something asks for its ids (`inject`, a sampled
/// child, its handle's accessors). Drawing is a pure function of the two states, so a frame
/// carried to another thread, or a copy of it, draws the same ids anywhere, every time. They
/// are what [`TraceId::random`] and [`SpanId::random`] would have drawn: the same generator,
/// the same draws, only later; the draws were reserved, so no other id takes them. Every
/// root starts this way (a sampled one draws at once: `DistributedTracer::decide`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct DeferredIds {
    /// The state before the trace id's two draws (its high half, then its low half).
    trace_from: u64,
    /// The state before the span id's draw.
    span_from: u64,
}

impl DeferredIds {
    /// A root span's: three draws reserved, the trace id's two and then the span id's.
    #[inline(always)]
    pub(crate) fn root() -> DeferredIds {
        let from = reserve(3);
        DeferredIds {
            trace_from: from,
            span_from: from.wrapping_add(WY_ADD.wrapping_mul(2)),
        }
    }

    /// A child's, in the same trace: the trace id's states kept, the span id's draw reserved.
    #[inline(always)]
    pub(crate) fn child(self) -> DeferredIds {
        DeferredIds {
            trace_from: self.trace_from,
            span_from: reserve(1),
        }
    }

    #[inline]
    pub(crate) fn trace_id(self) -> TraceId {
        let mut s = self.trace_from;
        let hi = wyrand_step(&mut s);
        let lo = non_zero_u64(wyrand_step(&mut s));
        TraceId((u128::from(hi) << 64) | u128::from(lo))
    }

    /// The trace id's low half alone (what a ratio sampler compares): one draw of the two.
    #[inline(always)]
    pub(crate) fn trace_low(self) -> u64 {
        let mut s = self.trace_from.wrapping_add(WY_ADD);
        non_zero_u64(wyrand_step(&mut s))
    }

    #[inline]
    pub(crate) fn span_id(self) -> SpanId {
        let mut s = self.span_from;
        SpanId(non_zero_u64(wyrand_step(&mut s)))
    }

    /// The key its frame is removed by (see `current::Frame::key`), without drawing the span
    /// id: never 0 (which marks copies), and as unique among a thread's frames as span ids
    /// are. Two spans' states differ by a multiple of the odd increment, which is ±1 (a
    /// difference in the lowest bit alone) only for draws more than 2^62 apart
    /// (`key_is_unique_between_draws` checks the inverse); a span id (random) equals one with
    /// probability 2^-64, as two span ids do.
    #[inline(always)]
    pub(crate) fn key(self) -> u64 {
        self.span_from | 1
    }
}

/// An unsampled span's own ids as its handle and its start keep them: drawn (a trace id and a
/// span id, never 0) or deferred ([`DeferredIds`], with 0 where the span id would be). One
/// representation for both, 24 bytes with 8-byte alignment (a `u128` field aligned the whole
/// handle to 16 bytes), so that building the handle, finding its frame's key and ending it
/// do not branch on which (as two variants of the handle's `Rec`, they did: 165 instructions
/// per unsampled span instead of 158 before ids were deferred, under callgrind).
#[derive(Clone, Copy)]
pub(crate) struct UnsampledIds {
    /// The trace id's high and low halves, or the deferred ids' two states.
    words: [u64; 2],
    /// The span id, or 0 while the ids are deferred.
    span: u64,
}

impl UnsampledIds {
    #[inline(always)]
    pub(crate) fn drawn(trace_id: TraceId, span_id: SpanId) -> UnsampledIds {
        UnsampledIds {
            words: [(trace_id.0 >> 64) as u64, trace_id.0 as u64],
            span: span_id.0,
        }
    }

    #[inline(always)]
    pub(crate) fn deferred(ids: DeferredIds) -> UnsampledIds {
        UnsampledIds {
            words: [ids.trace_from, ids.span_from],
            span: 0,
        }
    }

    #[inline(always)]
    pub(crate) fn ids(self) -> Ids {
        let [a, b] = self.words;
        if self.span == 0 {
            Ids::Deferred(DeferredIds {
                trace_from: a,
                span_from: b,
            })
        } else {
            Ids::Drawn {
                trace_id: TraceId((u128::from(a) << 64) | u128::from(b)),
                span_id: Some(SpanId(self.span)),
            }
        }
    }

    /// The key of the span's frame: its span id, or [`DeferredIds::key`].
    #[inline(always)]
    pub(crate) fn key(self) -> u64 {
        match self.ids() {
            Ids::Deferred(ids) => ids.key(),
            Ids::Drawn { .. } => self.span,
        }
    }
}

/// A context's trace id and span id (`None`: a context with no span, such as an attached
/// remote context without one): drawn or received, or an unsampled span's, deferred.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Ids {
    Drawn {
        trace_id: TraceId,
        span_id: Option<SpanId>,
    },
    Deferred(DeferredIds),
}

impl Ids {
    #[inline]
    pub(crate) fn trace_id(self) -> TraceId {
        match self {
            Ids::Drawn { trace_id, .. } => trace_id,
            Ids::Deferred(ids) => ids.trace_id(),
        }
    }

    #[inline]
    pub(crate) fn span_id(self) -> Option<SpanId> {
        match self {
            Ids::Drawn { span_id, .. } => span_id,
            Ids::Deferred(ids) => Some(ids.span_id()),
        }
    }

    /// The trace id's low half (what a ratio sampler compares).
    #[inline]
    pub(crate) fn trace_low(self) -> u64 {
        match self {
            Ids::Drawn { trace_id, .. } => trace_id.low_u64(),
            Ids::Deferred(ids) => ids.trace_low(),
        }
    }
}

/// Identifies a tracer instance: tags its frames on the thread-local context stack, so that
/// independent tracers never see each other's spans. Never reused within a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TracerId(usize);

static NEXT_TRACER_ID: AtomicUsize = AtomicUsize::new(1);

impl TracerId {
    /// The id of scope markers on the context stack (`current.rs`); no tracer has it.
    pub(crate) const SCOPE: TracerId = TracerId(0);

    /// A fresh id, never handed out before in this process.
    pub(crate) fn next() -> Self {
        TracerId(NEXT_TRACER_ID.fetch_add(1, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn zero_maps_to_a_non_zero_constant() {
        assert_ne!(non_zero_u64(0), 0);
        assert_eq!(non_zero_u64(7), 7);
    }

    /// A root's ids drawn now.
    fn random_root_ids() -> (TraceId, SpanId) {
        let ids = DeferredIds::root();
        (ids.trace_id(), ids.span_id())
    }

    #[test]
    fn root_ids_are_non_zero_and_unique_across_threads() {
        let draw = || (0..50_000).map(|_| random_root_ids()).collect::<Vec<_>>();
        let other = std::thread::spawn(draw).join().unwrap();
        let mut traces = HashSet::new();
        let mut spans = HashSet::new();
        for (t, s) in draw().into_iter().chain(other) {
            assert_ne!(t.to_u128() as u64, 0, "the low half is never zero");
            assert_ne!(s.to_u64(), 0);
            assert!(traces.insert(t), "trace id repeated");
            assert!(spans.insert(s), "span id repeated");
        }
        // Span ids drawn alone come from the same per-thread sequence.
        assert!((0..1000).all(|_| spans.insert(SpanId::random())));
    }

    /// Deferred ids are the draws they reserved: the same ids as drawing at once from the same
    /// state, whenever and wherever they are drawn, and no later draw repeats them. Fails if
    /// `reserve` advances by fewer draws than the ids take, if a derivation starts from the
    /// wrong state, or if `child` keeps the parent's span state.
    #[test]
    fn deferred_ids_are_the_draws_they_reserved() {
        let seed = 0x1234_5678_9abc_def1;
        RNG.with(|c| c.set(seed));
        let eager = with_rng(|s| {
            let hi = wyrand_step(s);
            let lo = non_zero_u64(wyrand_step(s));
            let span = non_zero_u64(wyrand_step(s));
            (
                TraceId((u128::from(hi) << 64) | u128::from(lo)),
                SpanId(span),
            )
        });
        let after_eager = SpanId::random();
        RNG.with(|c| c.set(seed));
        let root = DeferredIds::root();
        assert_eq!(
            SpanId::random(),
            after_eager,
            "the root reserved three draws"
        );
        assert_eq!((root.trace_id(), root.span_id()), eager);
        assert_eq!(root.trace_low(), root.trace_id().low_u64());
        // The same ids on another thread, from a copy.
        let copy = root;
        let there = std::thread::spawn(move || (copy.trace_id(), copy.span_id()))
            .join()
            .unwrap();
        assert_eq!(there, eager);
        // A child: the same trace, a span id of its own, the one draw it reserved.
        RNG.with(|c| c.set(seed));
        let _ = DeferredIds::root();
        let next = SpanId::random();
        RNG.with(|c| c.set(seed));
        let child = DeferredIds::root().child();
        assert_eq!(child.trace_id(), eager.0);
        assert_eq!(child.span_id(), next);
        assert_ne!(child.key(), root.key());
        assert_eq!(
            Ids::Deferred(child).span_id(),
            Some(next),
            "Ids draws what it defers"
        );
        assert_eq!(Ids::Deferred(child).trace_low(), eager.0.low_u64());
    }

    /// Two frames' keys (`DeferredIds::key`, the span state with its lowest bit set) can only
    /// be equal for states one apart, which draws are only when more than 2^62 draws lie
    /// between them: the increment's inverse is that far from 0 both ways.
    #[test]
    fn key_is_unique_between_draws() {
        // The inverse of the (odd) increment modulo 2^64, by Newton's iteration.
        let mut inv: u64 = 1;
        for _ in 0..6 {
            inv = inv.wrapping_mul(2u64.wrapping_sub(WY_ADD.wrapping_mul(inv)));
        }
        assert_eq!(WY_ADD.wrapping_mul(inv), 1);
        assert!(inv.min(inv.wrapping_neg()) > 1 << 62, "{inv:#x}");
        // Keys are never 0 (which marks a copy), even from a state of 0.
        let ids = DeferredIds {
            trace_from: 0,
            span_from: 0,
        };
        assert_ne!(ids.key(), 0);
    }
}
