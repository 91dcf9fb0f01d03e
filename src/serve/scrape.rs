//! Scrapes on the I/O thread: admission (the in-flight limit), coalescing into *generations*,
//! and the driver that runs each generation's encodes on the encoder threads.
//!
//! # Generations
//! A scrape joins the *next* generation, which has not started yet. The driver starts it as soon
//! as the generation before has finished: it asks every source whose encoder thread is free to
//! encode (a thread still busy with an earlier generation's encode is left out: `busy`), waits
//! for their parts until `encode_timeout` (late ones: `timeout`, left running), and publishes one
//! [`Scraped`] to every scrape of the generation. So:
//!
//! * every response holds data read after its request arrived (its generation started later);
//! * each source encodes at most once at a time, however many clients scrape: concurrent
//!   scrapes share one encode, and 200 greedy clients cost one encode per generation;
//! * a scrape waits at most for the rest of the generation in progress and then its own:
//!   within `2 × encode_timeout` plus the assembly; `3 ×` with OpenMetrics on (below).
//!
//! Each exposition format ([`Format`]: 0.0.4, OpenMetrics) has its own next generation, and a
//! scrape joins the one of the format it negotiated, so concurrent scrapes share an encode per
//! format. The driver runs one generation at a time (a source still encodes at most once at a
//! time); when scrapes of both formats wait, it alternates, so neither starves. A scrape then
//! waits at most for the generation in progress, one of the other format and its own: a
//! 0.0.4 scrape that arrives during a 0.0.4 generation, with an OpenMetrics scrape waiting,
//! comes after both. That third encode cannot be avoided while a source encodes one format at
//! a time, so with OpenMetrics on a scrape's budget is `3 × encode_timeout` plus the assembly
//! ([`Scrapes::budget`]; it was `2 ×`, and such a scrape got `503` from a source that always
//! met its timeout: review helper-148).
//!
//! # Admission
//! At most `max_in_flight` scrapes are admitted at once (waiting or being written). When full, a
//! scrape takes the place of one whose response write has stalled (its client has stopped
//! reading: no progress for a second, or for 100 ms if its connection asks more often than the
//! newcomer's; the write is cut and its connection closed, see `stall`); failing that, a scrape
//! from a connection that asks *less often* than the most frequent asker among the waiting
//! scrapes takes that one's place (which is answered `503` at once); otherwise it is answered
//! `503` at once itself. A connection's pace is its requests (this one included) per
//! second of its age, the age counted as at least one second: a new connection's pace is 1, a
//! keep-alive connection scraping every 15 s has about 0.07, a client scraping back to back has
//! hundreds. So a scraper that asks every few seconds always finds room among clients that ask
//! back to back, and, once its connection is established, among clients that reconnect for
//! every request.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flate2::Crc;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::Notify;

use super::compression::{append_stored_final, append_trailer, GZIP_HEADER};
use super::encoder::{Done, Job, Part};
use super::flag::Flag;
use super::later_tokio;
use super::negotiate::Format;
use super::stall::{Writing, STALL, STALL_GREEDIER};
use super::stats::{SourceFailure, Stats};

/// What a generation produced for its scrapes.
pub(crate) enum Scraped {
    /// Every required source's part (and whichever best-effort parts made it).
    Body(Rc<Body>),
    /// A required source missed its deadline or was still busy: `503`.
    Unavailable,
    /// A required source panicked (or its part could not be compressed): `500`.
    Failed,
}

/// A response body: the parts in source order, then the server's own section.
pub(crate) struct Body {
    parts: Vec<Arc<Part>>,
    own: String,
    /// The stored final block(s) with `own` and the gzip trailer, when gzip was asked for.
    gzip_tail: Option<Vec<u8>>,
    identity_len: usize,
    gzip_len: usize,
}

impl Body {
    fn new(parts: Vec<Arc<Part>>, own: String, gzip: bool) -> Body {
        let identity_len = parts.iter().map(|p| p.text().len()).sum::<usize>() + own.len();
        let gzip_tail = gzip.then(|| {
            let mut crc = Crc::new();
            for part in &parts {
                crc.combine(part.crc());
            }
            crc.update(own.as_bytes());
            let mut tail = Vec::with_capacity(own.len() + 16);
            append_stored_final(own.as_bytes(), &mut tail);
            append_trailer(&crc, &mut tail);
            tail
        });
        let gzip_len = gzip_tail.as_ref().map_or(0, |tail| {
            GZIP_HEADER.len()
                + parts
                    .iter()
                    .map(|p| p.segment().map_or(0, <[u8]>::len))
                    .sum::<usize>()
                + tail.len()
        });
        Body {
            parts,
            own,
            gzip_tail,
            identity_len,
            gzip_len,
        }
    }

    /// Whether the gzip form exists (some scrape of the generation accepted gzip).
    pub(crate) fn has_gzip(&self) -> bool {
        self.gzip_tail.is_some()
    }

    pub(crate) fn len(&self, gzip: bool) -> usize {
        if gzip {
            self.gzip_len
        } else {
            self.identity_len
        }
    }

    /// The body's pieces, in order, to be written one after the other.
    pub(crate) fn pieces(&self, gzip: bool) -> Vec<&[u8]> {
        let mut pieces = Vec::with_capacity(self.parts.len() + 2);
        match (&self.gzip_tail, gzip) {
            (Some(tail), true) => {
                pieces.push(&GZIP_HEADER[..]);
                pieces.extend(self.parts.iter().filter_map(|p| p.segment()));
                pieces.push(tail);
            }
            _ => {
                pieces.extend(self.parts.iter().map(|p| p.text()));
                pieces.push(self.own.as_bytes());
            }
        }
        pieces.retain(|p| !p.is_empty());
        pieces
    }
}

/// One generation: the scrapes that joined it and, once the driver has run it, the outcome.
pub(crate) struct Generation {
    id: u64,
    format: Format,
    scrapes: Cell<usize>,
    gzip: Cell<bool>,
    outcome: RefCell<Option<Rc<Scraped>>>,
    done: Notify,
}

impl Generation {
    fn new(id: u64, format: Format) -> Rc<Generation> {
        Rc::new(Generation {
            id,
            format,
            scrapes: Cell::new(0),
            gzip: Cell::new(false),
            outcome: RefCell::new(None),
            done: Notify::new(),
        })
    }

    /// The format its scrapes negotiated.
    pub(crate) fn format(&self) -> Format {
        self.format
    }

    /// The outcome, once the driver has published it.
    pub(crate) async fn outcome(&self) -> Rc<Scraped> {
        loop {
            let notified = self.done.notified();
            if let Some(outcome) = self.outcome.borrow().as_ref() {
                return Rc::clone(outcome);
            }
            notified.await;
        }
    }
}

/// An admitted scrape's place in the in-flight list.
pub(crate) struct Ticket {
    pace: f64,
    /// Its connection's response write: in progress once the scrape is being answered.
    writing: Rc<Writing>,
    preempted: Flag,
}

/// Holds a place among the in-flight scrapes until dropped.
pub(crate) struct Admission {
    scrapes: Rc<Scrapes>,
    ticket: Rc<Ticket>,
}

impl Admission {
    /// Completes if another scrape took this one's place while it waited (answer `503`).
    pub(crate) async fn preempted(&self) {
        self.ticket.preempted.raised().await;
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut list = self.scrapes.in_flight.borrow_mut();
        if let Some(at) = list.iter().position(|t| Rc::ptr_eq(t, &self.ticket)) {
            list.swap_remove(at);
        }
        self.scrapes
            .stats
            .in_flight
            .store(list.len() as u64, Relaxed);
    }
}

/// The scrape side of the I/O thread.
pub(crate) struct Scrapes {
    stats: Arc<Stats>,
    max_in_flight: usize,
    encode_timeout: Duration,
    /// How many formats scrapes may ask for: 1 (0.0.4), or 2 with OpenMetrics on.
    formats: u32,
    self_metrics: bool,
    in_flight: RefCell<Vec<Rc<Ticket>>>,
    /// The next generation of each format (indexed by [`Format::index`]).
    next: RefCell<[Rc<Generation>; 2]>,
    /// The last id given to a generation (ids are shared by both formats).
    last_id: Cell<u64>,
    wake: Notify,
}

impl Scrapes {
    pub(crate) fn new(
        stats: Arc<Stats>,
        max_in_flight: usize,
        encode_timeout: Duration,
        openmetrics: bool,
        self_metrics: bool,
    ) -> Rc<Scrapes> {
        Rc::new(Scrapes {
            stats,
            max_in_flight,
            encode_timeout,
            formats: 1 + u32::from(openmetrics),
            self_metrics,
            in_flight: RefCell::new(Vec::with_capacity(max_in_flight)),
            next: RefCell::new([
                Generation::new(1, Format::Text),
                Generation::new(2, Format::OpenMetrics),
            ]),
            last_id: Cell::new(2),
            wake: Notify::new(),
        })
    }

    /// How long a scrape may wait for its generation: the rest of the one in progress, one of
    /// the other format if OpenMetrics is on (see "Generations"), and its own, plus assembly.
    pub(crate) fn budget(&self) -> Duration {
        // Saturating and capped: `Duration::MAX` means no limit, and tokio's `sleep` adds it
        // to the present.
        crate::net::deadline::capped(
            self.encode_timeout
                .saturating_mul(1 + self.formats)
                .saturating_add(Duration::from_millis(100)),
        )
    }

    /// Admits a scrape from a connection of `pace` (see [`pace`]) whose response will be
    /// written under `writing`, or `None`: answer `503` at once. When the list is full, the
    /// place of a scrape whose response write has stalled is taken first (for [`STALL`], or
    /// [`STALL_GREEDIER`] if its connection is greedier than this one; the one stalled longest;
    /// the write is cut and its connection closes), else the waiting scrape of the greediest
    /// connection if greedier than this one.
    pub(crate) fn admit(self: &Rc<Self>, pace: f64, writing: &Rc<Writing>) -> Option<Admission> {
        let mut list = self.in_flight.borrow_mut();
        if list.len() >= self.max_in_flight {
            let now = Instant::now();
            let stalled = list
                .iter()
                .enumerate()
                .filter(|(_, t)| {
                    let limit = if t.pace > pace { STALL_GREEDIER } else { STALL };
                    t.writing.stalled_for(now).is_some_and(|d| d >= limit)
                })
                .min_by_key(|(_, t)| t.writing.progress())
                .map(|(at, _)| at);
            let greediest = || {
                list.iter()
                    .enumerate()
                    .filter(|(_, t)| !t.writing.in_progress() && !t.preempted.is_up())
                    .max_by(|(_, a), (_, b)| a.pace.total_cmp(&b.pace))
                    .filter(|(_, t)| t.pace > pace)
                    .map(|(at, _)| at)
            };
            let at = stalled.or_else(greediest)?;
            let victim = list.swap_remove(at);
            if victim.writing.in_progress() {
                victim.writing.cut();
            } else {
                victim.preempted.raise();
            }
        }
        let ticket = Rc::new(Ticket {
            pace,
            writing: Rc::clone(writing),
            preempted: Flag::default(),
        });
        list.push(Rc::clone(&ticket));
        self.stats.in_flight.store(list.len() as u64, Relaxed);
        Some(Admission {
            scrapes: Rc::clone(self),
            ticket,
        })
    }

    /// Joins the next generation of `format`.
    pub(crate) fn join(&self, gzip: bool, format: Format) -> Rc<Generation> {
        let generation = Rc::clone(&self.next.borrow()[format.index()]);
        generation.scrapes.set(generation.scrapes.get() + 1);
        if gzip {
            generation.gzip.set(true);
        }
        self.wake.notify_one();
        generation
    }

    /// Runs generations for as long as the I/O thread runs.
    pub(crate) async fn drive(
        self: Rc<Self>,
        encoders: Vec<SyncSender<Job>>,
        mut results: UnboundedReceiver<Done>,
    ) {
        // The generation each source's thread is working on, if any.
        let mut busy: Vec<Option<u64>> = vec![None; encoders.len()];
        let mut parts: Vec<Option<Arc<Part>>> = vec![None; encoders.len()];
        let mut failed: Vec<bool> = vec![false; encoders.len()];
        let mut panicked: Vec<bool> = vec![false; encoders.len()];
        let mut last_format = Format::OpenMetrics;
        loop {
            // Wait for a scrape to join a next generation, then start it (alternating formats
            // when scrapes of both wait).
            let format = loop {
                let notified = self.wake.notified();
                let waiting = |f: Format| self.next.borrow()[f.index()].scrapes.get() > 0;
                let other = match last_format {
                    Format::Text => Format::OpenMetrics,
                    Format::OpenMetrics => Format::Text,
                };
                if waiting(other) {
                    break other;
                }
                if waiting(last_format) {
                    break last_format;
                }
                notified.await;
            };
            last_format = format;
            let generation = {
                let id = self.last_id.get() + 1;
                self.last_id.set(id);
                let mut next = self.next.borrow_mut();
                std::mem::replace(&mut next[format.index()], Generation::new(id, format))
            };
            // Late results of earlier generations free their threads; their data is stale.
            while let Ok(done) = results.try_recv() {
                busy[done.source] = None;
            }
            // The encodes' clock starts here, for the deadline and for the `encodes_overdue`
            // gauge alike: an encode is overdue from the moment this scrape stops waiting for
            // it (stamped by the encoder thread when it began instead, the gauge lagged by
            // that thread's wake-up, and under load read 0 after the scrape's 503; found in
            // CI by `a_late_required_source_gets_503_and_is_not_asked_again_until_it_returns`).
            let dispatched = Instant::now();
            let deadline = later_tokio(
                tokio::time::Instant::from_std(dispatched),
                self.encode_timeout,
            );
            let job = Job {
                generation: generation.id,
                gzip: generation.gzip.get(),
                format,
            };
            let mut pending = 0;
            for (i, encoder) in encoders.iter().enumerate() {
                parts[i] = None;
                panicked[i] = false;
                failed[i] = busy[i].is_some();
                if failed[i] {
                    self.stats.sources[i].failed(SourceFailure::Busy);
                    continue;
                }
                // Stamped before the job is sent: the encoder thread clears it when the
                // encode returns, which may be before `try_send` does.
                self.stats.sources[i].encode_dispatched(&self.stats, dispatched);
                match encoder.try_send(job) {
                    Ok(()) => {
                        busy[i] = Some(generation.id);
                        pending += 1;
                    }
                    // Cannot happen (one job at a time, and the threads outlive the driver);
                    // treated as a panicked source rather than trusted.
                    Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                        self.stats.sources[i].encode_not_dispatched();
                        failed[i] = true;
                        panicked[i] = true;
                    }
                }
            }
            while pending > 0 {
                let done = tokio::select! {
                    done = results.recv() => done,
                    () = tokio::time::sleep_until(deadline) => break,
                };
                let Some(done) = done else { break };
                busy[done.source] = None;
                if done.generation != generation.id {
                    continue;
                }
                pending -= 1;
                match done.part {
                    Some(part) => parts[done.source] = Some(part),
                    None => {
                        failed[done.source] = true;
                        panicked[done.source] = true;
                    }
                }
            }
            for i in 0..encoders.len() {
                if busy[i] == Some(generation.id) {
                    failed[i] = true;
                    self.stats.sources[i].failed(SourceFailure::Timeout);
                } else if panicked[i] {
                    self.stats.sources[i].failed(SourceFailure::Panic);
                }
            }
            let outcome = self.assemble(&generation, &mut parts, &failed, &panicked);
            *generation.outcome.borrow_mut() = Some(Rc::new(outcome));
            generation.done.notify_waiters();
        }
    }

    fn assemble(
        &self,
        generation: &Generation,
        parts: &mut [Option<Arc<Part>>],
        failed: &[bool],
        panicked: &[bool],
    ) -> Scraped {
        let required = |i: usize| self.stats.sources[i].required;
        if (0..parts.len()).any(|i| required(i) && panicked[i]) {
            return Scraped::Failed;
        }
        if (0..parts.len()).any(|i| required(i) && failed[i]) {
            return Scraped::Unavailable;
        }
        let parts: Vec<Arc<Part>> = parts.iter_mut().filter_map(Option::take).collect();
        let took = parts.iter().map(|p| p.took()).max().unwrap_or_default();
        self.stats
            .last_encode_nanos
            .store(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX), Relaxed);
        let mut own = String::new();
        if self.self_metrics {
            self.stats.encode(&mut own, generation.format);
        }
        if generation.format == Format::OpenMetrics {
            crate::exposition::openmetrics::write_eof(&mut own);
        }
        let body = Body::new(parts, own, generation.gzip.get());
        self.stats
            .last_encode_bytes
            .store(body.len(false) as u64, Relaxed);
        Scraped::Body(Rc::new(body))
    }
}

/// A connection's pace: its requests (the current one included) per second of its age, the
/// age counted as at least one second.
pub(crate) fn pace(requests: u64, born: Instant) -> f64 {
    requests as f64 / born.elapsed().as_secs_f64().max(1.0)
}
