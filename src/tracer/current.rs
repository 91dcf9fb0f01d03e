//! The current context: a thread-local stack of frames, and context *scopes*, which let a
//! future carry its own frames from one poll to the next.
//!
//! # Frames
//!
//! A frame is a started [`Span`](super::Span) (pushed when it starts, removed when it
//! finishes, even out of order), an attached context ([`ContextGuard`](super::ContextGuard),
//! from `start_trace` or `attach`), or a copy of a context a future carries (see scopes). Each
//! is tagged with its tracer's id, so independent tracers on one thread never see each other's
//! spans. The current context of a tracer is its top-most *visible* frame: finishing a span
//! makes its parent current again. (A scope's marker, below, hides the frames beneath it from
//! every tracer, not only from the one whose frame the scope carries; see there.)
//!
//! # Scopes
//!
//! A thread runs many futures in turn (`tokio::join!`, `select!`, a current-thread runtime, a
//! worker running task after task), so "the top of this thread's stack" is only right for the
//! future being polled if every future takes its frames off the stack when its poll returns.
//! A scope does that: a future wrapper ([`Instrumented`](super::Instrumented),
//! [`WithContext`](super::WithContext), `#[trace_operation]`) owns a [`Saved`] list of
//! frames, and each poll
//!
//! 1. pushes a scope marker, then the saved frames ([`enter`]);
//! 2. polls the inner future, whose spans and guards push and remove frames above the marker
//!    as usual, including spans and guards held across `.await`;
//! 3. moves every frame still above the marker back into the list, in order, and pops the
//!    marker ([`Scope`]'s drop, also when the poll panics).
//!
//! So a span held across an `.await` inside a scope is current again, on whatever thread, when
//! that future resumes, and never while another future runs. The marker is also a barrier:
//! the current context seen inside a scope is found among the scope's own frames only, never
//! below them, so a scoped future cannot pick up frames another future left on the thread.
//! That holds for every tracer: a scope that carries one tracer's frame (`in_span`,
//! `in_context`) hides another tracer's spans current outside it (frames below a marker cannot
//! be told apart from frames another future left), as OpenTelemetry's `with_context` replaces
//! the whole context; `in_current_context` carries every tracer's current frame.
//!
//! # Frames that leave their scope
//!
//! A scope cannot see what became of the owners of the frames above its marker: a `Span` or
//! guard may have been moved out of the future during the poll (returned, stored elsewhere,
//! forgotten). Two rules keep the stack close to what synchronous code would see:
//!
//! * **A completed future** (its poll returned `Ready`) holds nothing any more: the wrappers
//!   drop it in its scope as soon as it completes (an `async` block holds nothing then; a
//!   `poll_fn` closure or a hand-written future may still hold a span, which ends there), so
//!   every owner still open outlived it. So its scope's exit ([`Scope::set_completed`]) drops the
//!   scope's own copies (key 0) and the marker, and leaves every other frame where it is,
//!   in order: a span returned by an `async` block stays current for the caller, as one
//!   returned by a function does, until it ends (and a span forgotten inside stays current,
//!   as after `mem::forget` in synchronous code; before, the scope dropped its frame).
//! * **A pending future** keeps every frame above its marker, including those whose owner
//!   has left. Such an owner, ending while its frame is saved, finds no frame to remove
//!   ([`remove`] returns `NotFound`); it notes `(tracer, key)` on its thread
//!   ([`Stack::note_ended`], up to [`ENDED`] of them, in the thread-local stack: no
//!   allocation), and the next scope entered on that thread that carries the frame drops
//!   it ([`enter`]). So a span that left and ended never becomes a parent again.
//!
//! Two more rules keep a frame from outliving its owner:
//!
//! * A future dropped while pending (a `select!` loser, a timeout, an aborted task) drops its
//!   inner future inside its scope, entered one last time (the wrappers' `PinnedDrop`): the
//!   locals it still holds run their `Drop` in its context, as a synchronous function's do
//!   when it unwinds, so a span a drop guard starts there is the future's child (before, it
//!   took the context current where the future was dropped: the `select!`'s, another
//!   trace's, or none), and the spans it held end while their frames are on the stack. Where
//!   no scope can be entered (the stack closed at thread exit), they end while their frames
//!   are saved and note it; the list's drop forgets the notes of its frames (no scope will
//!   enter it again), so cancellations never fill the notes and push out one that matters.
//! * A saved list remembers the thread whose scope exit saved it ([`Stack::thread`]); entered
//!   on another thread, it drops its frames that have a key: they belong to `Span`s and
//!   guards, which are `!Send`, so their owners stayed on the first thread (a `Send` future
//!   can only have stored one there, not held it).
//!
//! What this does not cover, documented: an owner that left and is still open stays
//! current inside the pending future until it ends (it is a live span of the same trace);
//! a left owner is not current for the code that took it while the future is pending; more
//! than [`ENDED`] owners leaving and ending between two polls of their futures on one thread
//! forget the oldest notes, and a completed future then leaves such a frame current on the
//! thread; and a completed future leaves current on the thread the frame of a span it started
//! and handed to *another* future that is still pending (the scope cannot tell that owner
//! from the caller, who would own a returned span), until that span ends. `tests/tracer_scope_escape.rs` checks every rule.
//!
//! # Stranded entries
//!
//! With the `tracing` bridge (module [`stray`]): an entry of a `tracing` span held across
//! `.await` in a future that moves threads outside our scopes exits on another thread than the
//! one whose stack holds its frame. Once that span closes, [`stray`] lists it, and every thread
//! drops the entry frames of listed spans from its live stack, above or below any marker (no
//! entry of a closed span is open anywhere), keeping the other frames in order, at its next
//! [`current`] or [`current_carried`] (every span start, in a scope or not: the whole live
//! stack is checked), [`capture`], out-of-order removal, or bridge entry
//! ([`stray::check_stranded`]); not at a scope's [`enter`] (every poll of a scoped future),
//! which needs it for nothing. Each of those first compares the list's epoch (one `Relaxed`
//! load) with the thread's `SEEN`, a thread-local of its own read before the stack is
//! borrowed; only when they differ does the thread lock the list, out of line.
//!
//! Not covered, documented: a frame saved in a pending scoped future is not on the stack and is
//! not checked. One restored after its span closed (an entry whose guard left the pending
//! future for a task that moved threads, where it exited, and whose span then closed) stays
//! current in that future, and if the future then completes, on the thread for good, as before
//! (a completed future leaves the frames it holds in place: see "Frames that leave their
//! scope"). Checking restored frames would cost every scoped poll that carries a frame, and a
//! guard that leaves the future that entered its span is rare. The exemplar cache keeps a
//! stranded span until the thread's next check. Without the feature none of this is built.
//!
//! # Invariants
//!
//! 1. Markers carry the reserved tracer id [`TracerId::SCOPE`] and a fresh random key; no real
//!    tracer has that id, so lookups and removals by tracer never match a marker.
//! 2. Copies of a context that a scope carries ([`capture`]) have key 0, which no span or
//!    guard uses (span ids and guard keys are never zero): finishing a span never removes a
//!    copy of it that a scoped future still uses as its parent.
//! 3. A scope's exit finds its marker by key wherever it is (frames below it may have been
//!    removed meanwhile) and takes exactly the frames above it (after a `Ready` poll, the
//!    copies among them; the others stay, see above).
//! 4. The exemplar cache (`primitives::exemplar`'s `CURRENT_SPAN`) holds, whenever no stack
//!    operation is in progress, what `sampled_span_ids` (test-only) computes: the ids of the
//!    top live frame if it is a sampled span or context, else none. Every operation that changes the live
//!    frames or `depth` republishes it before it returns ([`Stack::push`],
//!    [`push_unsampled`], [`remove`], a scope's exit, the stack's closing at thread
//!    exit); `set_frame_baggage` changes no id or flag.
//!    A marker is never sampled, so a marker on top (an entered scope with no frame above it)
//!    publishes none, as the barrier demands. A metric recorded *during* an operation (from a
//!    destructor or the allocator inside it) sees the state before or after it, where
//!    `sampled_span_ids` would see none (the stack is borrowed). This module's tests check the
//!    cache against it after every kind of change.
//!
//! # Misuse that cannot be refused at compile time
//!
//! A `Span` or `ContextGuard` held across `.await` *without* a scope (two futures joined on
//! one thread, say) leaves its frame on the thread while the other future runs, which then
//! takes it as parent. [`remove`] notices when it finally goes: a frame of the same tracer
//! but another trace sits above it, below any scope marker above it
//! ([`Removal::OtherTraceAbove`]); the caller counts it (see `TracerCore::misuse`). Frames
//! past a marker belong to a scoped future the owner was moved into (`block_on`, a
//! `LocalSet`) and ends in, so they are no sign of misuse. Spans the other future started and
//! ended while the frame was left (in no trace of their own) took it as parent and are gone by
//! then: nothing is noticed (documented in `tracer/mod.rs`, "In async code"). The `tracing` bridge does not: `tracing` lets entered spans exit in
//! any order, so for its frames that is no misuse (`DetachedSpan::exit_frame`).

use super::context::{Carried, TraceContext};
use super::id::{SpanId, TraceId, TracerId};
#[cfg(feature = "tracing-bridge")]
pub(crate) mod stray;
use crate::primitives::exemplar;
use crate::sync::thread_exit::exit_hook;
use smallvec::SmallVec;
use std::cell::RefCell;
use std::mem::ManuallyDrop;
use std::sync::Arc;

/// One entry of the thread-local context stack.
pub(crate) struct Frame {
    pub(crate) tracer: TracerId,
    /// Identifies the frame for removal: the span id, a random key for attached contexts and
    /// scope markers, 0 for copies carried by a scope (never removed by key).
    pub(crate) key: u64,
    pub(crate) trace_id: TraceId,
    pub(crate) span_id: Option<SpanId>,
    pub(crate) sampled: bool,
    /// Baggage, `tracestate` and the random-trace-id flag (see `Carried`).
    pub(crate) baggage: Option<Arc<Carried>>,
    /// The context came from another process (only attached contexts; spans are local).
    pub(crate) remote: bool,
}

impl Frame {
    /// A frame carrying `cx` for `tracer` under `key`.
    pub(crate) fn of_context(tracer: TracerId, key: u64, cx: &TraceContext) -> Frame {
        Frame {
            tracer,
            key,
            trace_id: cx.trace_id(),
            span_id: cx.span_id(),
            sampled: cx.is_sampled(),
            baggage: cx.carried().cloned(),
            remote: cx.is_remote(),
        }
    }

    /// What the exemplar cache publishes while this frame is the top one (invariant 4): its
    /// ids if it is a sampled span or context, else none.
    #[inline(always)]
    fn exemplar_ids(&self) -> Option<(u128, u64)> {
        match self.span_id {
            Some(span) if self.sampled => Some((self.trace_id.to_u128(), span.to_u64())),
            _ => None,
        }
    }

    /// Moves the frame out of its stack slot, leaving the slot's baggage released.
    fn take(&mut self) -> Frame {
        Frame {
            tracer: self.tracer,
            key: self.key,
            trace_id: self.trace_id,
            span_id: self.span_id,
            sampled: self.sampled,
            baggage: self.baggage.take(),
            remote: self.remote,
        }
    }

    /// A copy that no removal by key matches (invariant 2).
    fn copy(&self) -> Frame {
        Frame {
            key: 0,
            baggage: self.baggage.clone(),
            ..*self
        }
    }

    fn parent(&self) -> Parent {
        Parent {
            trace_id: self.trace_id,
            span_id: self.span_id,
            sampled: self.sampled,
            baggage: self.baggage.clone(),
            remote: self.remote,
        }
    }
}

/// What a new span inherits from the current frame.
#[derive(Clone)]
pub(crate) struct Parent {
    pub(crate) trace_id: TraceId,
    pub(crate) span_id: Option<SpanId>,
    pub(crate) sampled: bool,
    pub(crate) baggage: Option<Arc<Carried>>,
    /// The parent context came from another process.
    pub(crate) remote: bool,
}

impl Parent {
    /// What a span started under `cx` (an explicit parent) inherits from it.
    pub(crate) fn of_context(cx: &TraceContext) -> Parent {
        Parent {
            trace_id: cx.trace_id(),
            span_id: cx.span_id(),
            sampled: cx.is_sampled(),
            baggage: cx.carried().cloned(),
            remote: cx.is_remote(),
        }
    }
}

/// A thread's frames: `frames[..depth]` are live. Slots above `depth` are kept (with their
/// baggage released) and reused: a push then assigns a slot's fields one by one instead of
/// copying a whole `Frame` in, which the profile showed as a store-forwarding stall (the
/// frame built with 8-byte stores, then copied with 16-byte loads: about 8 ns a push).
///
/// The frames are in a `ManuallyDrop` and the stack has no `Drop`: so the thread-local has no
/// destructor, and reaching it costs no check of a destructor's state (`STACK`'s
/// `LocalKey::try_with` was a load, a compare and a branch on every access: three per span,
/// nine instructions under callgrind; issue 16). [`close_at_exit`] frees them instead.
struct Stack {
    frames: ManuallyDrop<Vec<Frame>>,
    depth: usize,
    /// Frames whose owner ended while the frame was not on this stack (see "Frames that
    /// leave their scope"): `(tracer, key)`, the newest `ended_len` of them, written in turn
    /// at `ended_next`. A scope entered on this thread drops a saved frame listed here.
    ended: [(TracerId, u64); ENDED],
    ended_len: usize,
    ended_next: usize,
    /// This thread's id for saved lists (see [`Stack::thread`]); 0 until first asked.
    thread: u64,
}

/// How many [`Stack::ended`] entries a thread keeps; beyond that, a new one replaces an old
/// one (the oldest, unless entries were taken meanwhile).
const ENDED: usize = 16;

impl Stack {
    #[inline]
    fn live(&self) -> &[Frame] {
        self.frames.get(..self.depth).unwrap_or_default()
    }

    #[inline]
    fn position(&self, tracer: TracerId, key: u64) -> Option<usize> {
        self.live()
            .iter()
            .rposition(|f| f.tracer == tracer && f.key == key)
    }

    /// The frames above the innermost scope marker (all of them outside any scope).
    #[inline]
    fn visible(&self) -> &[Frame] {
        let live = self.live();
        let from = live
            .iter()
            .rposition(|f| f.tracer == TracerId::SCOPE)
            .map_or(0, |m| m + 1);
        live.get(from..).unwrap_or_default()
    }

    /// Publishes the top live frame as the exemplar cache's current span (invariant 4); call
    /// after every change of the live frames.
    #[inline(always)]
    fn publish_top(&self) {
        publish(self.top_exemplar_ids());
    }

    /// What [`Stack::publish_top`] publishes.
    #[inline(always)]
    fn top_exemplar_ids(&self) -> Option<(u128, u64)> {
        self.live().last().and_then(Frame::exemplar_ids)
    }

    /// Pushes `frame`; `false` (nothing pushed, the exemplar cache unchanged) only when the
    /// stack would have to grow at thread exit (see [`Stack::grow`]).
    #[inline(always)]
    fn push(&mut self, frame: Frame) -> bool {
        let ids = frame.exemplar_ids();
        if self.depth < self.frames.len() {
            let stale = self.fill_free_slot(frame);
            debug_assert!(!stale, "a free slot held baggage");
        } else if self.grow(frame) {
            self.depth += 1;
        } else {
            return false;
        }
        // Invariant 4: the new top frame is the current one for exemplars.
        publish(ids);
        true
    }

    /// Writes `frame` into the free slot at `depth` and makes it the top: loads and stores
    /// only, nothing dropped, nothing called, no panic (what [`push`] relies on). The caller
    /// has checked `depth < frames.len()` and publishes the exemplar cache. Returns whether
    /// the slot held baggage, which it never should (see `Stack`; the tests' debug builds
    /// assert it, after the stack's last use).
    #[inline(always)]
    fn fill_free_slot(&mut self, frame: Frame) -> bool {
        let depth = self.depth;
        let Some(f) = self.frames.get_mut(depth) else {
            return false; // never: checked by the caller
        };
        let stale = f.baggage.is_some();
        // Reuse the slot field by field (see `Stack`).
        f.tracer = frame.tracer;
        f.key = frame.key;
        f.trace_id = frame.trace_id;
        f.span_id = frame.span_id;
        f.sampled = frame.sampled;
        // A slot above `depth` holds no baggage (see `Stack`): the old value is `None` and
        // is not dropped (its drop check cost 7 instructions per unsampled span under
        // callgrind, 212 instead of 205; issue 16). Were it not `None`, an `Arc` would leak,
        // nothing worse.
        std::mem::forget(std::mem::replace(&mut f.baggage, frame.baggage));
        f.remote = frame.remote;
        self.depth = depth + 1;
        stale
    }
}

impl Stack {
    /// Notes that the owner of frame `(tracer, key)` ended while the frame was not on this
    /// stack: it is in a saved list, or gone.
    #[cold]
    #[inline(never)]
    fn note_ended(&mut self, tracer: TracerId, key: u64) {
        if let Some(e) = self.ended.get_mut(self.ended_next) {
            *e = (tracer, key);
        }
        self.ended_next = (self.ended_next + 1) % ENDED;
        self.ended_len = (self.ended_len + 1).min(ENDED);
    }

    /// Whether `f`'s owner ended while `f` was saved (see [`note_ended`](Self::note_ended));
    /// if so, forgets the entry.
    #[cold]
    #[inline(never)]
    fn take_ended(&mut self, f: &Frame) -> bool {
        let Some(i) = self.ended[..self.ended_len]
            .iter()
            .position(|&(tracer, key)| tracer == f.tracer && key == f.key)
        else {
            return false;
        };
        // Move the newest entry into its place and forget the newest (the order of the
        // others does not matter while the list is not full; once full, `ended_next`
        // restarts from the freed place).
        self.ended_len -= 1;
        self.ended[i] = self.ended[self.ended_len];
        self.ended_next = self.ended_len;
        true
    }
}

impl Stack {
    /// A process-unique id of this thread (never reused, never 0), handed out on first use.
    #[inline]
    fn thread(&mut self) -> u64 {
        if self.thread == 0 {
            static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
            self.thread = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        self.thread
    }
}

impl Stack {
    /// Appends `frame` to a full `frames` (the push of a new deepest frame: the first on this
    /// thread, or deeper than any before), once the stack's closing is registered to free them
    /// at thread exit ([`EXIT`]). `false`, pushing nothing and republishing the top frame
    /// (the caller has published `frame`), if it cannot be: no key can be armed and the
    /// thread is past the hook's fallback destructor, so the buffer would never be freed.
    #[cold]
    #[inline(never)]
    fn grow(&mut self, frame: Frame) -> bool {
        if !EXIT.register() {
            self.publish_top();
            return false;
        }
        self.frames.push(frame);
        true
    }
}

/// Closes a thread's stack at its exit, in place of a destructor of `STACK` (see `Stack`):
/// takes the frames out and frees them, leaves the stack mutably borrowed for good (*closed*:
/// every later access finds it unavailable, as it found the destroyed thread-local before:
/// pushes fail, lookups find nothing, removals find no frame) and clears the exemplar cache
/// (invariant 4: `sampled_span_ids` answers none from then on, for metrics recorded by
/// later destructors).
///
/// Run by [`EXIT`], registered by each [`Stack::grow`]: after every thread-local destructor
/// of the thread (those all find the stack open, and their spans nest), and also for a stack
/// first grown in a `pthread_key` destructor, whose frames a thread-local destructor
/// registered then would have leaked (glibc never runs it: `sync::thread_exit`,
/// `tests/tracer_thread_key_exit.rs` under LeakSanitizer). Where the key cannot be armed, by
/// the hook's fallback thread-local destructor instead.
fn close_at_exit() {
    let frames = STACK.with(|cell| {
        // Borrowed here only if the thread is ending inside one of this module's calls:
        // a borrow lasts for one call, which runs no code of the caller's, only the global
        // allocator, and an allocator that calls `std::process::exit` runs the thread's
        // destructors there (the borrower never resumes). Then the frames leak, nothing
        // worse.
        let mut s = cell.try_borrow_mut().ok()?;
        s.depth = 0;
        let frames = std::mem::take(&mut *s.frames);
        std::mem::forget(s);
        Some(frames)
    });
    exemplar::publish_current_span(0, 0);
    // Dropped with the stack already closed: releasing a frame's baggage runs no code of
    // the caller's, and would find the stack unavailable if it did.
    drop(frames);
}

exit_hook! {
    /// Closes the stack after the thread's thread-local destructors (`sync::thread_exit`):
    /// registered by the first [`Stack::grow`] on the thread.
    ///
    /// Where the key cannot be armed, its fallback thread-local destructor runs
    /// [`close_at_exit`], with one difference from a destructor of `STACK` itself (found by
    /// review): that one was registered by the thread's first access of any kind, this one by
    /// its first push. Thread-local destructors run in reverse order of registration, so a
    /// thread-local of the application's first set between a thread's first lookup
    /// (`current`) and its first push is destroyed after the stack closes: a span it ends or
    /// starts there finds no frame (the span is still recorded; it only does not nest).
    /// Registering on a lookup too would put back the per-access check `Stack` avoids.
    ///
    /// Where `std` implements thread-locals with OS keys instead of native ones (Android,
    /// OpenBSD, illumos, windows-gnu; none of which this crate builds for today), `STACK`'s
    /// storage is boxed and freed by a key destructor of its own, which may run before this
    /// one: its frames would then leak at thread exit (never used after being freed: see
    /// `stack`).
    static EXIT runs close_at_exit;
}

thread_local! {
    static STACK: RefCell<Stack> = const {
        RefCell::new(Stack {
            frames: ManuallyDrop::new(Vec::new()),
            depth: 0,
            ended: [(TracerId::SCOPE, 0); ENDED],
            ended_len: 0,
            ended_next: 0,
            thread: 0,
        })
    };
}

/// This thread's context stack. At thread exit [`close_at_exit`] leaves it mutably borrowed for
/// good: every borrow the callers try fails from then on.
///
/// Hot path: doing the work inside `LocalKey::with`'s closure left it out of line, and
/// handing frames to it through memory caused store-forwarding stalls (both seen in the
/// profile). Taking only the address in the closure lets the work inline into the caller;
/// so does returning a reference rather than taking a closure (a closure was outlined once a
/// program had two span workloads: ~35 instructions per span under callgrind).
///
/// # Safety
///
/// The reference is valid only on this thread, and only while the thread runs. The caller
/// must use it during its own call on this thread only: never store it, return it or send it
/// to another thread.
#[inline(always)]
unsafe fn stack<'a>() -> &'a RefCell<Stack> {
    let ptr = STACK.with(|s| s as *const RefCell<Stack>);
    // SAFETY: `ptr` points to this thread's `STACK`. Its type has no destructor (see
    // `Stack`): with native thread-locals its storage lives as long as the thread; with
    // thread-locals on OS keys (see [`EXIT`]) it is freed by a key destructor at thread
    // exit, between destructors (a later access makes a new one), never during a call of this
    // module. Either way it outlives every use confined to the caller's call on this thread,
    // as the contract asks.
    unsafe { &*ptr }
}

/// This thread's context stack, for a change that runs nothing but its own loads and stores:
/// `None` while the stack is borrowed (re-entry from a destructor or the allocator inside
/// another of this module's calls) or closed (thread exit, see [`close_at_exit`]).
///
/// Hot path (issue 16): `try_borrow_mut`'s guard sets the borrow flag and restores it around
/// the change, and the compiler keeps both writes, since the frames' stores might alias the
/// flag; and for the same reason it reloads after every such store what it had read of the
/// stack (its length, the thread-local's other fields). Taken and given back before the
/// change, with nothing in between, the guard leaves only its test. What the guard protects
/// against, code reaching this module while the change is half done, cannot happen when the
/// change calls nothing, which is the contract. The push and the in-order removal of a frame
/// without baggage take the stack this way. Under callgrind (`breakdown.py W` in
/// `benches/compare`, release / thin LTO): `span_unsampled` 159 -> 150 / 165 -> 143,
/// `span_basic` 566 -> 553 / 569 -> 544, `macro_call` 448 -> 428 / 438 -> 414, and
/// `profile_future`'s `span_nested` (a parent and three children) 1757 -> 1640 / 1750 -> 1639.
///
/// # Safety
///
/// The caller uses the reference during its own call on this thread only, and between this
/// call and the reference's last use it runs nothing that could reach this module: no call,
/// no drop of a value with a destructor, no allocation, no panic (a panic runs the hook: code
/// of the caller's), no access to another thread-local (one on OS keys may allocate at its
/// first access); only loads and stores of the stack. What it must do besides (publish the
/// exemplar cache, check its invariants with `debug_assert!`) comes after that last use. A
/// change that may need any of those inside takes a `RefMut` instead ([`with_stack`]).
#[inline(always)]
unsafe fn stack_for_stores<'a>() -> Option<&'a mut Stack> {
    // SAFETY: the reference is used within the caller's call only (this function's contract).
    let cell = unsafe { stack() };
    // The check alone: not borrowed in any way now.
    drop(cell.try_borrow_mut().ok()?);
    // SAFETY: nothing borrows the stack at this point: `try_borrow_mut` succeeds only when no
    // `Ref` or `RefMut` is live, and the only references taken without a guard
    // (`try_borrow_unguarded` in `current` and `current_carried`) are used within those calls,
    // which never call into this module meanwhile. Until the reference's last use, the
    // caller's contract keeps anything else from borrowing it (nothing runs that could).
    Some(unsafe { &mut *cell.as_ptr() })
}

/// Runs `f` on this thread's context stack; `None` once it is closed (thread exit, see
/// [`close_at_exit`]) or while it is borrowed (re-entry from a destructor running inside `f`).
#[inline]
fn with_stack<R>(f: impl FnOnce(&mut Stack) -> R) -> Option<R> {
    // SAFETY: the reference is used within this call only: `f` gets a borrow bounded by it.
    let cell = unsafe { stack() };
    let mut stack = cell.try_borrow_mut().ok()?;
    Some(f(&mut stack))
}

/// The current frame of `tracer` on this thread, if any: its top-most frame above the
/// innermost scope marker.
#[inline]
pub(crate) fn current(tracer: TracerId) -> Option<Parent> {
    // Stranded entries: one load and a compare (see there).
    #[cfg(feature = "tracing-bridge")]
    if stray::news() {
        stray::catch_up();
    }
    // SAFETY: the reference is used within this call only.
    let cell = unsafe { stack() };
    // Hot path: read without taking a shared borrow (no increment and decrement of the
    // borrow flag on every span start).
    // SAFETY: `try_borrow_unguarded` fails while the stack is mutably borrowed; otherwise
    // nothing can borrow it mutably while `s` is used: the loop below only reads frames and
    // clones an `Arc` (no user code, no call into this module), and `s` does not outlive
    // this call.
    let s = unsafe { cell.try_borrow_unguarded() }.ok()?;
    // `get` and `?` rather than `live()`: a branch instead of selecting the empty slice's
    // dangling pointer with conditional moves (never taken: `depth <= frames.len()`).
    // `split_last` rather than `iter().rev()`: an empty stack (a root span) returns on the
    // length alone, where the iterator first loaded the buffer and computed its end
    // (callgrind, `breakdown.py`, release / thin LTO: `span_unsampled` 164 -> 159 / 170 ->
    // 165, `span_basic` 571 -> 566 / 572 -> 569, `macro_call` 452 -> 448 / 443 -> 438,
    // `span_nested` 1763 -> 1757 / 1755 -> 1750; testing `depth == 0` before the loop instead
    // cost `span_nested` 2, the iterator's own test staying in the loop).
    let (mut f, mut below) = s.frames.get(..s.depth)?.split_last()?;
    loop {
        if f.tracer == tracer {
            return Some(f.parent());
        }
        if f.tracer == TracerId::SCOPE {
            return None;
        }
        (f, below) = below.split_last()?;
    }
}

/// [`current`], and whether that frame is a copy a scope carries (key 0, invariant 2): the
/// context a wrapper (`in_context`, `in_span`, a traced future's own scope) runs the future
/// being polled in, rather than the frame of a span or guard open on the thread (which a
/// runtime polling its tasks under its `block_on` caller's span leaves current for them).
#[inline]
pub(crate) fn current_carried(tracer: TracerId) -> Option<(Parent, bool)> {
    #[cfg(feature = "tracing-bridge")]
    if stray::news() {
        stray::catch_up();
    }
    // SAFETY: the reference is used within this call only.
    let cell = unsafe { stack() };
    // SAFETY: as in `current`: read only, no user code, `s` does not outlive this call.
    let s = unsafe { cell.try_borrow_unguarded() }.ok()?;
    for f in s.frames.get(..s.depth)?.iter().rev() {
        if f.tracer == tracer {
            return Some((f.parent(), f.key == 0));
        }
        if f.tracer == TracerId::SCOPE {
            return None;
        }
    }
    None
}

/// The innermost span on this thread, of any tracer, if it is sampled: `(trace_id, span_id)`.
/// Looks above the innermost scope marker only, as [`current`] does; `None` while the stack
/// is borrowed or closed (thread exit).
///
/// The definition of the span a trace-based exemplar keeps. The metrics layer does not call it:
/// it reads the cache this module keeps equal to it (invariant 4), which the tests here check
/// against it after every kind of stack change.
#[cfg(test)]
pub(crate) fn sampled_span_ids() -> Option<(u128, u64)> {
    // SAFETY: the reference is used within this call only.
    let s = unsafe { stack() }.try_borrow().ok()?;
    let f = s.visible().last()?;
    match (f.sampled, f.span_id) {
        (true, Some(span)) => Some((f.trace_id.to_u128(), span.to_u64())),
        _ => None,
    }
}

/// Publishes `ids` as the exemplar cache's current span, or none (invariant 4). A branch per
/// case, so that the key of "none" is the constant it is (one call with the ids chosen
/// first computed it at run time: `breakdown.py`, release, `span_unsampled` 155 against
/// 150, `span_basic` 558 against 553, `macro_call` 433 against 428).
#[inline(always)]
fn publish(ids: Option<(u128, u64)>) {
    match ids {
        Some((trace, span)) => exemplar::publish_current_span(trace, span),
        None => exemplar::publish_current_span(0, 0),
    }
}

/// Pushes a frame; returns `false` if the thread-local stack is unavailable (thread exit).
/// Always inlined: out of line, the frame was passed through memory (~20 instructions of
/// call overhead and spills per span in the profile).
///
/// A push into a free slot (every push but a thread's deepest yet) takes the stack without
/// writing the borrow flag ([`stack_for_stores`]); a push that grows the stack takes the
/// borrow ([`push_growing`]).
#[inline(always)]
pub(crate) fn push(frame: Frame) -> bool {
    // SAFETY: used within this call only. With a free slot (checked first: a push that
    // grows the stack allocates), `Stack::fill_free_slot` runs nothing but loads and stores:
    // the frame's fields written into the slot (whose old baggage is `None` and is
    // forgotten, not dropped), the depth.
    if let Some(s) = unsafe { stack_for_stores() } {
        if s.depth < s.frames.len() {
            let ids = frame.exemplar_ids();
            let stale = s.fill_free_slot(frame);
            // The stack's last use is above: what follows may run code.
            debug_assert!(!stale, "a free slot held baggage");
            // Invariant 4: the new top frame is the current one for exemplars.
            publish(ids);
            return true;
        }
    }
    push_growing(frame)
}

/// [`push`] under the stack's borrow: a push that grows the stack (it allocates), or finds
/// the stack unavailable.
#[cold]
#[inline(never)]
fn push_growing(frame: Frame) -> bool {
    // SAFETY: the reference is used within this call only.
    let Ok(mut s) = unsafe { stack() }.try_borrow_mut() else {
        return false;
    };
    s.push(frame)
}

/// [`push`] for an unsampled span's frame: the same frame (`sampled: false`, not remote,
/// keyed by its span id), written by code of its own, so that the compiler does not merge it
/// with the sampled span's push and test `sampled` at run time (issue 16).
#[inline(always)]
pub(crate) fn push_unsampled(
    tracer: TracerId,
    trace_id: TraceId,
    span_id: SpanId,
    baggage: Option<Arc<Carried>>,
) -> bool {
    // The frame, built in whichever branch takes it (measured the same as one built before
    // the branches: `breakdown.py span_unsampled`, release, 155 either way before `publish`).
    let frame = move || Frame {
        tracer,
        key: span_id.to_u64(),
        trace_id,
        span_id: Some(span_id),
        sampled: false,
        baggage,
        remote: false,
    };
    // SAFETY: as in `push`: with a free slot, `Stack::fill_free_slot` only loads and stores.
    if let Some(s) = unsafe { stack_for_stores() } {
        if s.depth < s.frames.len() {
            let stale = s.fill_free_slot(frame());
            // The stack's last use is above.
            debug_assert!(!stale, "a free slot held baggage");
            // Invariant 4: an unsampled frame on top means no current span for exemplars.
            exemplar::publish_current_span(0, 0);
            return true;
        }
    }
    push_growing(frame())
}

/// What [`remove`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Removal {
    /// Removed; no frame of another trace of the same tracer was above it.
    Removed,
    /// Removed, but a frame of the same tracer and another trace was above it, in the same
    /// scope: a span or guard of another trace was current when this one ended (see the
    /// module docs).
    OtherTraceAbove,
    /// Not on this thread's stack (carried by a scope that is not being polled, or the
    /// stack is closed at thread exit).
    NotFound,
}

/// Removes the frame `(tracer, key)` (the top one in the common, in-order case).
///
/// Hot path: only the in-order case (the top frame) is inlined into every finish; the search
/// below the top, the misuse check and the reordering are out of line
/// ([`remove_borrowed`], [`remove_below_top`]). Inlined whole, they took about 600 bytes of
/// every finish site (`nm -S`, release: `span_basic`'s driver function 7,780 -> 7,175 bytes). Instructions
/// barely move: release `span_basic` 609 -> 608, a `#[trace_operation]` call 462 -> 458;
/// thin LTO, whose inlining elsewhere shifts with any size change, 607 -> 615 and 446 -> 447
/// (callgrind; issue 16). `#[cold]` as well read worse in both builds (LTO 618).
///
/// The top frame without baggage (every span's but those under baggage or `tracestate`) is
/// popped without writing the borrow flag ([`stack_for_stores`]); one with baggage, whose
/// release may run the allocator, and every other case take the borrow ([`remove_borrowed`]).
#[inline(always)]
pub(crate) fn remove(tracer: TracerId, key: u64) -> Removal {
    // SAFETY: used within this call only. The pop below runs nothing but loads and stores:
    // the top frame is compared, its baggage is `None` (nothing to release), the depth is
    // written and the new top frame read.
    if let Some(s) = unsafe { stack_for_stores() } {
        let depth = s.depth;
        if let Some(top) = depth.checked_sub(1).and_then(|t| s.frames.get(t)) {
            if top.tracer == tracer && top.key == key && top.baggage.is_none() {
                s.depth = depth - 1;
                let ids = s.top_exemplar_ids();
                // The stack's last use is above. Invariant 4.
                publish(ids);
                return Removal::Removed;
            }
        }
    }
    remove_borrowed(tracer, key)
}

/// [`remove`] under the stack's borrow: the top frame with its baggage, or a frame below it.
#[inline(never)]
fn remove_borrowed(tracer: TracerId, key: u64) -> Removal {
    // SAFETY: the reference is used within this call only.
    let Ok(mut s) = unsafe { stack() }.try_borrow_mut() else {
        return Removal::NotFound;
    };
    let depth = s.depth;
    // A span finishing in order whose frame holds baggage: pop it, releasing the baggage
    // under the borrow.
    if let Some(top) = depth.checked_sub(1).and_then(|t| s.frames.get_mut(t)) {
        if top.tracer == tracer && top.key == key {
            top.baggage = None;
            s.depth = depth - 1;
            s.publish_top();
            return Removal::Removed;
        }
    }
    remove_below_top(&mut s, tracer, key)
}

/// [`remove`] of a frame that is not the top one (or of none).
#[inline(never)]
fn remove_below_top(s: &mut Stack, tracer: TracerId, key: u64) -> Removal {
    // A stranded entry above the frame would count as misuse (see "Stranded entries").
    #[cfg(feature = "tracing-bridge")]
    if stray::news() {
        s.drop_stranded();
    }
    let depth = s.depth;
    let Some(i) = s.position(tracer, key) else {
        // Its owner left the scope that saved the frame, or the frame is gone (see "Frames
        // that leave their scope"). Key 0 never names one frame (invariant 2).
        if key != 0 {
            s.note_ended(tracer, key);
        }
        return Removal::NotFound;
    };
    let mut removal = Removal::Removed;
    if i + 1 < depth {
        // Out of order: was another trace of this tracer current above it, in its own scope?
        // Frames past a marker above it are a future's that runs there (its owner was moved
        // into that future), not another future's left on the thread: not counted.
        let trace_id = s.frames.get(i).map(|f| f.trace_id);
        if s.live().get(i + 1..).is_some_and(|above| {
            above
                .iter()
                .take_while(|f| f.tracer != TracerId::SCOPE)
                .any(|f| f.tracer == tracer && Some(f.trace_id) != trace_id)
        }) {
            removal = Removal::OtherTraceAbove;
        }
        // Move the frame to the top, keeping the others' order.
        if let Some(live) = s.frames.get_mut(i..depth) {
            live.rotate_left(1);
        }
    }
    // Pop the top frame, releasing its baggage.
    if let Some(top) = s.frames.get_mut(depth - 1) {
        top.baggage = None;
    }
    s.depth = depth - 1;
    s.publish_top();
    removal
}

/// Removes the top-most live frame of `tracer` for span `span` that is an entry of a
/// `tracing` span (see `DetachedSpan::exit_frame`): its key is odd (a `ContextGuard` attaching
/// the same context has an even one, see `guard.rs`; copies have 0), or the span id (an entry
/// made at thread exit). In any scope; notes nothing; returns its key, or `None` if there is
/// none on this thread's stack.
#[cfg(feature = "tracing-bridge")]
pub(crate) fn remove_entry(tracer: TracerId, span: SpanId) -> Option<u64> {
    let id = span.to_u64();
    with_stack(|s| {
        let key = s
            .live()
            .iter()
            .rev()
            .find(|f| {
                f.tracer == tracer && f.span_id == Some(span) && (f.key & 1 == 1 || f.key == id)
            })?
            .key;
        let depth = s.depth;
        // The common case first, as in `remove`: the frame is the top one.
        match depth.checked_sub(1).and_then(|t| s.frames.get_mut(t)) {
            Some(top) if top.tracer == tracer && top.key == key => {
                top.baggage = None;
                s.depth = depth - 1;
                s.publish_top();
            }
            _ => {
                let _ = remove_below_top(s, tracer, key);
            }
        }
        Some(key)
    })
    .flatten()
}

/// Replaces the baggage of frame `(tracer, key)`.
pub(crate) fn set_frame_baggage(tracer: TracerId, key: u64, baggage: Option<Arc<Carried>>) {
    with_stack(|s| {
        if let Some(i) = s.position(tracer, key) {
            if let Some(f) = s.frames.get_mut(i) {
                f.baggage = baggage;
            }
        }
    });
}

/// The frames a scoped future carries between polls (see the module docs). Two fit inline
/// (a future's own span, plus one span or guard it holds across an `.await`); more spill to
/// the heap once and keep that buffer.
#[derive(Default)]
pub(crate) struct Saved {
    frames: SmallVec<[Frame; 2]>,
    /// The [`Stack::thread`] of the thread whose scope exit saved `frames` (0: none yet).
    thread: u64,
}

impl Saved {
    /// A list holding `frame`.
    ///
    /// `#[inline]`, as `clear`: a future's scope builds and clears its list on every
    /// `in_span`; out of line (the compiler's choice once the span handle became thin) both
    /// were calls with their spills: `span_in_future` 885 instead of 808 instructions under
    /// callgrind (no LTO; issue 16).
    #[inline]
    pub(crate) fn one(frame: Frame) -> Saved {
        let mut saved = Saved::default();
        saved.frames.push(frame);
        saved
    }

    /// Drops every frame (the future is done with them).
    #[inline]
    pub(crate) fn clear(&mut self) {
        self.frames.clear();
    }
}

/// A future dropped while pending drops its inner future first, in its scope entered one last
/// time (see "Frames that leave their scope"), then this list (the last field of every
/// scope). Where that scope could not be entered (the stack closed at thread exit), a span
/// held there ended while its frame was in this list, and noted it ([`Stack::note_ended`]). No
/// scope will enter the list again, so forget those notes here: left behind, they would only
/// make later scopes on the thread scan them.
impl Drop for Saved {
    fn drop(&mut self) {
        if self.frames.iter().all(|f| f.key == 0) {
            return;
        }
        with_stack(|s| {
            for f in &self.frames {
                if s.ended_len == 0 {
                    break;
                }
                if f.key != 0 {
                    s.take_ended(f);
                }
            }
        });
    }
}

impl std::fmt::Debug for Saved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.frames.iter().map(|f| (f.trace_id, f.span_id)))
            .finish()
    }
}

/// Copies of the current context of every tracer on this thread (each tracer's top-most
/// visible frame, bottom to top), for a future to carry (`in_current_context`).
pub(crate) fn capture() -> Saved {
    with_stack(|s| {
        // A stranded entry must not become the future's context (see "Stranded entries").
        #[cfg(feature = "tracing-bridge")]
        if stray::news() {
            s.drop_stranded();
        }
        let visible = s.visible();
        let mut saved = Saved::default();
        for (i, f) in visible.iter().enumerate() {
            let shadowed = visible
                .get(i + 1..)
                .is_some_and(|above| above.iter().any(|g| g.tracer == f.tracer));
            if !shadowed {
                saved.frames.push(f.copy());
            }
        }
        saved
    })
    .unwrap_or_default()
}

/// A scope being polled: entered by [`enter`], exited when dropped (also by a panic).
pub(crate) struct Scope<'a> {
    saved: &'a mut Saved,
    /// The marker's key; `None` if the thread-local stack was unavailable.
    marker: Option<u64>,
    /// The future completed in this poll (see [`set_completed`](Self::set_completed)).
    completed: bool,
}

/// Enters a scope: pushes a marker, then moves `saved`'s frames onto the stack, except those
/// whose owner ended meanwhile off this stack (see "Frames that leave their scope").
#[inline]
pub(crate) fn enter(saved: &mut Saved) -> Scope<'_> {
    let key = SpanId::random().to_u64();
    let entered = with_stack(|s| {
        let marker = Frame {
            tracer: TracerId::SCOPE,
            key,
            trace_id: TraceId::MARKER,
            span_id: None,
            sampled: false,
            baggage: None,
            remote: false,
        };
        if !s.push(marker) {
            return false; // thread exit (see `Stack::grow`): `saved` keeps its frames
        }
        // Saved on another thread: the frames with a key belong to `Span`s and guards, which
        // are `!Send`, so their owners stayed there; none is in this future any more.
        let moved = saved.thread != 0 && saved.thread != s.thread();
        for f in saved.frames.drain(..) {
            if f.key != 0 && (moved || (s.ended_len != 0 && s.take_ended(&f))) {
                continue;
            }
            // Fails only at thread exit, past the marker's push: the frame is dropped.
            let _ = s.push(f);
        }
        true
    });
    Scope {
        saved,
        marker: (entered == Some(true)).then_some(key),
        completed: false,
    }
}

impl Scope<'_> {
    /// The future's poll returned `Ready`: when the scope exits, its carried copies (key 0)
    /// go, and every other frame still above the marker stays on the stack, in order, where
    /// the marker was: its owner outlived the future (returned in its output, or stored or
    /// leaked elsewhere) and stays current for the caller, as it would after a synchronous
    /// call (see "Frames that leave their scope").
    #[inline]
    pub(crate) fn set_completed(&mut self) {
        self.completed = true;
    }
}

impl Drop for Scope<'_> {
    #[inline]
    fn drop(&mut self) {
        let Some(key) = self.marker else {
            return;
        };
        let saved = &mut *self.saved;
        let completed = self.completed;
        with_stack(|s| {
            let Some(m) = s.position(TracerId::SCOPE, key) else {
                return; // invariant 3: never, while the stack exists
            };
            let depth = s.depth;
            if completed {
                // Keep the frames that are not copies, from the marker's place up.
                let mut kept = m;
                for i in m + 1..depth {
                    if s.frames.get(i).is_some_and(|f| f.key != 0) {
                        s.frames.swap(kept, i);
                        kept += 1;
                    }
                }
                // Release the baggage of the slots given up (the marker and the copies).
                for f in s.frames.get_mut(kept..depth).unwrap_or_default() {
                    f.baggage = None;
                }
                s.depth = kept;
            } else {
                if let Some(above) = s.frames.get_mut(m + 1..depth) {
                    saved.frames.extend(above.iter_mut().map(Frame::take));
                }
                saved.thread = s.thread();
                s.depth = m;
            }
            s.publish_top();
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitives::exemplar::current_span;
    use crate::sync::thread_exit::ExitKey;

    /// The exemplar cache, in `sampled_span_ids`'s terms.
    fn cached() -> Option<(u128, u64)> {
        match current_span() {
            (_, 0) => None,
            ids => Some(ids),
        }
    }

    /// A small deterministic generator (the sequence only needs to cover every operation).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % n
        }
    }

    fn frame(tracer: TracerId, key: u64, sampled: bool, span: bool) -> Frame {
        Frame {
            tracer,
            key,
            trace_id: TraceId::random(),
            span_id: if span { SpanId::from_u64(key) } else { None },
            sampled,
            baggage: None,
            remote: false,
        }
    }

    /// Random pushes (spans and contexts, sampled or not, of two tracers), removals of any
    /// live frame (in or out of order), and nested scopes entered with captured contexts or
    /// carried frames and exited (taking their frames along); after every step the cache must
    /// equal `sampled_span_ids`. Fails if any of `Stack::push`, `remove`, a scope's exit (or
    /// `publish_top`) stops publishing.
    fn walk(rng: &mut Lcg, tracers: [TracerId; 2], level: usize, next_key: &mut u64) {
        let mut keys: Vec<(TracerId, u64)> = Vec::new();
        // Shorter walks under Miri (see the test below).
        for _ in 0..if cfg!(miri) { 16 } else { 40 } {
            match rng.next(10) {
                0..=3 => {
                    let tracer = tracers[rng.next(2) as usize];
                    *next_key += 1;
                    let f = frame(tracer, *next_key, rng.next(3) != 0, rng.next(4) != 0);
                    let pushed = match (f.sampled, f.span_id) {
                        // An unsampled span's own push, half the time.
                        (false, Some(span)) if rng.next(2) == 0 => {
                            push_unsampled(tracer, f.trace_id, span, None)
                        }
                        _ => push(f),
                    };
                    if pushed {
                        keys.push((tracer, *next_key));
                    }
                }
                4..=6 if !keys.is_empty() => {
                    let (tracer, key) = keys.remove(rng.next(keys.len() as u64) as usize);
                    assert_ne!(remove(tracer, key), Removal::NotFound);
                }
                7 if level < 3 => {
                    let mut saved = if rng.next(2) == 0 {
                        capture()
                    } else {
                        *next_key += 1;
                        Saved::one(frame(tracers[0], *next_key, true, true))
                    };
                    for _ in 0..2 {
                        {
                            let _scope = enter(&mut saved);
                            assert_eq!(cached(), sampled_span_ids());
                            walk(rng, tracers, level + 1, next_key);
                        }
                        assert_eq!(cached(), sampled_span_ids());
                    }
                }
                _ => {}
            }
            assert_eq!(cached(), sampled_span_ids(), "level {level}");
        }
        for (tracer, key) in keys.into_iter().rev() {
            remove(tracer, key);
            assert_eq!(cached(), sampled_span_ids());
        }
    }

    #[test]
    fn the_exemplar_cache_is_the_innermost_visible_sampled_span_after_every_change() {
        let tracers = [TracerId::next(), TracerId::next()];
        // Under Miri (`.ci/miri`, which checks this module's unguarded stack references
        // against Stacked Borrows) a few short walks: 200 whole ones take over 25 minutes
        // there, six about ten; eight of 16 steps, half a minute.
        let seeds = if cfg!(miri) { 8 } else { 200 };
        for seed in 0..seeds {
            let mut rng = Lcg(seed);
            let mut next_key = 0;
            walk(&mut rng, tracers, 0, &mut next_key);
            assert_eq!(cached(), None);
            assert_eq!(sampled_span_ids(), None);
        }
    }

    /// The live frames' keys, bottom to top.
    fn live_keys() -> Vec<u64> {
        with_stack(|s| s.live().iter().map(|f| f.key).collect()).unwrap()
    }

    #[test]
    fn a_completed_scope_leaves_what_outlived_it_in_place_of_its_marker() {
        let tracer = TracerId::next();
        assert!(push(frame(tracer, 1, true, true)));
        let mut saved = Saved::one(frame(tracer, 2, true, true).copy());
        {
            let mut scope = enter(&mut saved);
            assert!(push(frame(tracer, 3, true, true)));
            assert!(push(frame(tracer, 4, false, true)));
            assert!(push(frame(tracer, 5, true, true)));
            // Out of order (the test frames' traces differ: `OtherTraceAbove`).
            assert_ne!(remove(tracer, 4), Removal::NotFound);
            scope.set_completed();
        }
        // The marker and the copy went; 3 and 5 stayed, in order, above 1.
        assert_eq!(live_keys(), [1, 3, 5]);
        assert!(saved.frames.is_empty());
        assert_eq!(cached(), sampled_span_ids());
        assert_eq!(cached().map(|(_, span)| span), Some(5));
        for key in [5, 3, 1] {
            assert_eq!(remove(tracer, key), Removal::Removed);
        }
        assert_eq!(cached(), None);
    }

    #[test]
    fn a_frame_whose_owner_ended_while_it_was_saved_is_not_entered_again() {
        let tracer = TracerId::next();
        let mut saved = Saved::default();
        {
            let _scope = enter(&mut saved);
            for key in 1..=3 {
                assert!(push(frame(tracer, key, true, true)));
            }
        }
        assert_eq!(saved.frames.len(), 3);
        // Owner 2 ends while its frame is saved: not found, noted.
        assert_eq!(remove(tracer, 2), Removal::NotFound);
        {
            let _scope = enter(&mut saved);
            assert_eq!(&live_keys()[1..], [1, 3]);
            assert_eq!(cached().map(|(_, span)| span), Some(3));
        }
        assert_eq!(saved.frames.len(), 2);
        // The note was used up.
        assert_eq!(with_stack(|s| s.ended_len), Some(0));
    }

    #[test]
    fn a_saved_list_dropped_with_frames_whose_owners_ended_forgets_their_notes() {
        let tracer = TracerId::next();
        for _ in 0..3 * ENDED {
            let mut saved = Saved::default();
            {
                let _scope = enter(&mut saved);
                assert!(push(frame(tracer, 7, true, true)));
                assert!(push(frame(tracer, 8, true, true)));
            }
            // A cancelled future: its span ends (not found: noted), then its list drops.
            assert_eq!(remove(tracer, 8), Removal::NotFound);
            assert_eq!(remove(tracer, 7), Removal::NotFound);
            assert_eq!(with_stack(|s| s.ended_len), Some(2));
            drop(saved);
            assert_eq!(with_stack(|s| s.ended_len), Some(0));
        }
    }

    #[test]
    fn the_ended_notes_keep_the_newest_when_full() {
        let tracer = TracerId::next();
        let n = ENDED as u64 + 3;
        for key in 1..=n {
            assert_eq!(remove(tracer, key), Removal::NotFound);
        }
        let noted =
            |key: u64| with_stack(|s| s.take_ended(&frame(tracer, key, true, true))).unwrap();
        // The three oldest were forgotten, the others are taken once each.
        for key in 1..=3 {
            assert!(!noted(key), "{key}");
        }
        for key in 4..=n {
            assert!(noted(key), "{key}");
            assert!(!noted(key), "{key} again");
        }
        // Key 0 (a copy) is never noted.
        assert_eq!(remove(tracer, 0), Removal::NotFound);
        assert_eq!(with_stack(|s| s.ended_len), Some(0));
    }

    /// A recorded span's entry frames go at the next look-up, above and below a scope's
    /// marker, in order; its guard (even key), a scope's copy of it (key 0), our spans and
    /// another tracer's frame of the same id stay. Fails if `current` stops checking the
    /// epoch, or if `drop_stranded` matches more than entries.
    #[test]
    #[cfg(feature = "tracing-bridge")]
    fn a_recorded_spans_entries_go_at_the_next_look_up_and_nothing_else() {
        let (tracer, other) = (TracerId::next(), TracerId::next());
        let id = SpanId::random().to_u64() & !1;
        let of_span = |tracer, key| Frame {
            span_id: SpanId::from_u64(id),
            ..frame(tracer, key, true, true)
        };
        assert_eq!(current(tracer).map(|p| p.span_id), None); // takes the epoch
        assert!(push(frame(tracer, 2, true, true))); // a span of ours
        assert!(push(of_span(tracer, 3))); // an entry
        assert!(push(of_span(tracer, 4))); // a guard attaching its context
        assert!(push(of_span(other, 5))); // another tracer's entry of that id
        let mut saved = Saved::one(of_span(tracer, 7).copy());
        {
            let _scope = enter(&mut saved);
            assert!(push(of_span(tracer, 9))); // an entry above the marker
            assert!(push(of_span(tracer, id))); // an entry made at thread exit
            assert_eq!(cached().map(|(_, span)| span), Some(id));
            stray::publish(tracer, id);
            // The copy is the scope's context: the entries above it went.
            let parent = current(tracer).expect("the copy");
            assert_eq!(parent.span_id, SpanId::from_u64(id));
            let keys = live_keys();
            assert_eq!(keys[..4], [2, 4, 5, keys[3]]);
            assert_eq!(keys[4..], [0]);
            assert_eq!(cached(), sampled_span_ids());
        }
        for key in [5, 4, 2] {
            let tracer = if key == 5 { other } else { tracer };
            assert_eq!(remove(tracer, key), Removal::Removed, "{key}");
        }
        assert!(current(tracer).is_none());
    }

    /// A check run at the exit of a thread after its stack has closed: from a test
    /// [`ExitKey`] that arms itself once more, so that its second run is in the destructor
    /// round after the one that ran [`EXIT`]'s key (armed by the thread's first push).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    struct AfterClose {
        key: ExitKey,
        runs: std::sync::atomic::AtomicU8,
        check: fn() -> bool,
        /// 0: not run, 1: the check held, 2: it failed.
        seen: std::sync::atomic::AtomicU8,
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    impl AfterClose {
        fn run(&self) {
            use std::sync::atomic::Ordering::SeqCst;
            if self.runs.fetch_add(1, SeqCst) == 0 {
                assert!(self.key.arm());
            } else {
                self.seen.store(if (self.check)() { 1 } else { 2 }, SeqCst);
            }
        }
    }

    /// The stack has no destructor (see `Stack`): `close_at_exit` frees the frames still live
    /// at thread exit (their baggage released) and closes the stack, so that a destructor
    /// running after it pushes nothing (which would leak a new buffer), finds no current
    /// frame and removes none, and does not panic. Fails if `grow` stops registering `EXIT`
    /// (the baggage stays held by the leaked frames) or if `close_at_exit` frees the frames
    /// without closing the stack (the late push succeeds).
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn frames_live_at_thread_exit_are_freed_and_the_stack_closes() {
        use std::sync::atomic::{AtomicU8, Ordering::SeqCst};
        static TRACER: std::sync::OnceLock<TracerId> = std::sync::OnceLock::new();
        static LATE: AfterClose = AfterClose {
            key: ExitKey::new(late),
            runs: AtomicU8::new(0),
            check: || {
                let tracer = *TRACER.get().unwrap();
                !push(frame(tracer, 9, true, true))
                    && current(tracer).is_none()
                    && remove(tracer, 8) == Removal::NotFound
                    && with_stack(|_| ()).is_none()
                    && cached().is_none()
            },
            seen: AtomicU8::new(0),
        };
        extern "C" fn late(_: *mut std::ffi::c_void) {
            LATE.run();
        }
        let baggage = Arc::new(Carried::RANDOM_ROOT);
        let held = Arc::clone(&baggage);
        std::thread::spawn(move || {
            let tracer = *TRACER.get_or_init(TracerId::next);
            assert!(LATE.key.arm());
            for key in 1..=8 {
                let mut f = frame(tracer, key, true, true);
                f.baggage = Some(Arc::clone(&held));
                assert!(push(f));
            }
            assert_eq!(Arc::strong_count(&held), 10);
            // The thread ends with all eight frames live.
        })
        .join()
        .unwrap();
        assert_eq!(
            LATE.seen.load(SeqCst),
            1,
            "the stack was not closed at thread exit"
        );
        assert_eq!(
            Arc::strong_count(&baggage),
            1,
            "live frames were not freed at thread exit"
        );
    }

    /// A thread whose first push is in a `pthread_key` destructor (after its thread-local
    /// destructors, which would never run one registered then) has its frames freed too, by
    /// `EXIT`'s key in the next destructor round. Fails if `grow` registers only the fallback.
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn frames_first_pushed_in_a_key_destructor_are_freed() {
        static HELD: std::sync::Mutex<Option<Arc<Carried>>> = std::sync::Mutex::new(None);
        static KEY: ExitKey = ExitKey::new(push_at_exit);
        extern "C" fn push_at_exit(_: *mut std::ffi::c_void) {
            let held = HELD.lock().unwrap().take().unwrap();
            let tracer = TracerId::next();
            for key in 1..=8 {
                let mut f = frame(tracer, key, true, true);
                f.baggage = Some(Arc::clone(&held));
                assert!(push(f));
            }
        }
        let baggage = Arc::new(Carried::RANDOM_ROOT);
        *HELD.lock().unwrap() = Some(Arc::clone(&baggage));
        std::thread::spawn(|| assert!(KEY.arm())).join().unwrap();
        assert!(HELD.lock().unwrap().is_none(), "the key destructor ran");
        assert_eq!(
            Arc::strong_count(&baggage),
            1,
            "frames pushed in a key destructor were not freed at thread exit"
        );
    }

    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn the_exemplar_cache_is_cleared_when_the_stack_is_destroyed() {
        use std::sync::atomic::{AtomicU8, Ordering::SeqCst};
        // The cache and the definition agree on none.
        static CHECK: AfterClose = AfterClose {
            key: ExitKey::new(check),
            runs: AtomicU8::new(0),
            check: || cached() == sampled_span_ids() && cached().is_none(),
            seen: AtomicU8::new(0),
        };
        extern "C" fn check(_: *mut std::ffi::c_void) {
            CHECK.run();
        }
        std::thread::spawn(|| {
            assert!(CHECK.key.arm());
            assert!(push(frame(TracerId::next(), 7, true, true)));
            assert!(cached().is_some());
            assert_eq!(cached(), sampled_span_ids());
        })
        .join()
        .unwrap();
        assert_eq!(CHECK.seen.load(SeqCst), 1);
    }
}
