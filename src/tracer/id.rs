//! Trace and span identifiers: random, never zero, printed as W3C lowercase hex; and the
//! crate-private [`TracerId`] that tags a tracer's frames on the thread-local context stack.

use crate::propagation::hex;
use std::cell::Cell;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A 128-bit trace identifier, never zero, displayed as 32 lowercase hex digits (W3C Trace Context).
/// (One exception: the invalid all-zero id a no-op span without a parent reports, on a tracer
/// whose SDK is disabled; see [`TraceContext::is_valid`](crate::TraceContext::is_valid).)
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
/// (One exception, as for [`TraceId`]: a no-op span without a parent reports all-zero.)
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
    /// alone left the low 64 bits, whose low 56 ratio samplers read, almost equal for ids differing
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

    /// The randomness value `R` of OpenTelemetry's `TraceIdRatioBased` sampler, the
    /// least-significant ("rightmost") 7 bytes, 56 bits, of the id (those W3C Trace Context
    /// Level 2 specifies as random), shifted left by 8: `R << 8`, its low byte 0. Compared
    /// with a threshold shifted alike, it orders as `R` does, without a mask.
    #[inline]
    pub(crate) fn randomness_shifted(self) -> u64 {
        (self.0 as u64) << 8
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

/// A thread's first state, and the state of the thread that forked, in the child (see
/// [`fork::reseed_in_children`]). The operating system's randomness where there is some, with
/// std's SipHash keys (random per process, advancing per `RandomState`) and the stack address
/// mixed in: the keys alone are the same in every child a process forks, which then all drew
/// the same ids (`tests/tracer_fork_ids.rs`).
fn seed() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_usize(&h as *const _ as usize);
    // (Not under Miri, which has no `pthread_atfork`.)
    #[cfg(all(target_os = "linux", not(miri)))]
    {
        fork::reseed_in_children();
        h.write_u64(fork::os_random());
    }
    h.finish() | 1
}

/// `fork()` copies the forking thread's generator state into the child: the child would draw
/// the ids its parent draws next, and every sibling the same again (a pre-forking server's
/// workers). A handler registered with `pthread_atfork` empties the state in the child, so its
/// next draw seeds afresh from the operating system. The draws themselves are unchanged (no
/// check on the hot path).
#[cfg(all(target_os = "linux", not(miri)))]
mod fork {
    use super::RNG;
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

    /// Registers the child handler, once per process (on the first seed of any thread).
    ///
    /// Never waits: a `Once` here made a child deadlock when the process forked while another
    /// thread was inside the registration (the child inherits the `Once` as running, and no
    /// thread of the child will finish it), so the child's first id waited forever
    /// (`tests/tracer_fork_ids.rs` hung so: the child in `Once::call` under
    /// `reseed_in_children`, found by a run of `.ci/test`). The first caller registers; a thread
    /// that comes while it does seeds without waiting for it. A fork in that window (before the
    /// first `pthread_atfork` returns) leaves the forking thread's state in the child, as any
    /// fork before the registration does.
    pub(super) fn reseed_in_children() {
        static REGISTERED: AtomicBool = AtomicBool::new(false);
        if REGISTERED.load(Relaxed) || REGISTERED.swap(true, Relaxed) {
            return;
        }
        // SAFETY: `pthread_atfork` with a child handler only; the handler is an `extern "C"`
        // function that lives as long as the program, and does nothing a child of a
        // multi-threaded process may not (a plain thread-local store). A failure (ENOMEM)
        // leaves children as before, with their parent's state.
        let _ = unsafe { libc::pthread_atfork(None, None, Some(empty_the_state)) };
    }

    /// In the child, on the thread that forked: its state emptied (0 means "not seeded").
    extern "C" fn empty_the_state() {
        // `RNG` has a `const` initializer and no destructor: this is one store at a
        // thread-pointer offset, no allocation, no lock.
        let _ = RNG.try_with(|c| c.set(0));
    }

    /// Eight bytes of the operating system's randomness (`getrandom`, not blocking), or 0
    /// when it has none to give now (the other inputs of the seed remain).
    pub(super) fn os_random() -> u64 {
        let mut v = 0u64;
        // SAFETY: `getrandom` writes at most 8 bytes into `v`, which has 8.
        let n = unsafe {
            libc::getrandom(
                (&mut v as *mut u64).cast(),
                std::mem::size_of::<u64>(),
                libc::GRND_NONBLOCK,
            )
        };
        if n == std::mem::size_of::<u64>() as isize {
            v
        } else {
            0
        }
    }
}

/// wyrand: one add, one 128-bit multiply; passes BigCrush, period 2^64 per thread.
#[inline(always)]
fn wyrand_step(state: &mut u64) -> u64 {
    let x = state.wrapping_add(0xa076_1d64_78bd_642f);
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

/// A new root span's trace id and span id, drawn with one thread-local access; random and
/// non-zero, as [`TraceId::random`] and [`SpanId::random`].
#[inline(always)]
pub(crate) fn random_root_ids() -> (TraceId, SpanId) {
    with_rng(|s| {
        let hi = wyrand_step(s);
        let lo = non_zero_u64(wyrand_step(s));
        let span = non_zero_u64(wyrand_step(s));
        (
            TraceId((u128::from(hi) << 64) | u128::from(lo)),
            SpanId(span),
        )
    })
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
}
