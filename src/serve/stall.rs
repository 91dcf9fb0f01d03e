//! A connection's response write and whether it has stalled: shared, on the I/O thread, by the
//! connection writing (`connection`), the table of connections that makes room for new ones
//! and the in-flight list that admits scrapes (`scrape`).
//!
//! A client that stops reading leaves the server's write blocked once the socket buffers are
//! full, until `write_timeout`. Such a write holds what the server has least of: its place in
//! the table (a busy connection is never evicted) and, for a scrape, its in-flight place (a
//! scrape being written cannot be preempted). A few dozen clients that pipeline scrapes and
//! never read held every place that way, and a scraper got `503` or a reset for as long as
//! they went on. So a write that has made no progress for [`STALL`] (for an in-flight place
//! wanted by a less greedy connection, [`STALL_GREEDIER`]) can be *cut* when a newcomer needs
//! its place: it ends at once and its connection closes (counted `evicted`). A write that
//! moves, however slowly, is never cut; nor is a stalled one while nobody needs room (it runs
//! on to `write_timeout`).
//!
//! Everything here runs on the I/O thread: plain `Cell`s, read and written between awaits.

use std::cell::Cell;
use std::time::{Duration, Instant};

use super::flag::Flag;

/// How long a write must have made no progress before it may be cut to make room. A client
/// that reads its response gives the kernel room within a round trip; a second without any is
/// a client that has stopped reading (or a network that has, for now, failed it).
pub(crate) const STALL: Duration = Duration::from_secs(1);

/// How long, for a scrape's in-flight place to be taken by a scrape from a connection that
/// asks less often (`scrape`'s pace): clients that pipeline scrapes and never read, and
/// reconnect as fast as they are cut, refill the places stalled for [`STALL`] as fast as they
/// free up; their connections ask more often than a scraper's (a keep-alive scraper's pace is
/// under 0.1, theirs above 1), and this shorter wait lets the scraper in first.
pub(crate) const STALL_GREEDIER: Duration = Duration::from_millis(100);

/// The write in progress on one connection, if any.
#[derive(Debug, Default)]
pub(crate) struct Writing {
    /// When the write last made progress (began, or the kernel took bytes); `None` between
    /// writes.
    progress: Cell<Option<Instant>>,
    /// Raised to cut the write: it ends, and its connection closes.
    cut: Flag,
}

impl Writing {
    /// A write begins (or the kernel took some of its bytes).
    pub(crate) fn progressed(&self) {
        self.progress.set(Some(Instant::now()));
    }

    /// The write has ended.
    pub(crate) fn ended(&self) {
        self.progress.set(None);
    }

    /// Whether a write is in progress.
    pub(crate) fn in_progress(&self) -> bool {
        self.progress.get().is_some()
    }

    /// When the write in progress last made progress.
    pub(crate) fn progress(&self) -> Option<Instant> {
        self.progress.get()
    }

    /// Whether a write is in progress and has made no progress for [`STALL`] by `now`, and
    /// has not been cut already.
    pub(crate) fn stalled(&self, now: Instant) -> bool {
        self.stalled_for(now).is_some_and(|d| d >= STALL)
    }

    /// How long the write in progress has made no progress by `now`; `None` if no write is in
    /// progress or it has been cut already.
    pub(crate) fn stalled_for(&self, now: Instant) -> Option<Duration> {
        match self.progress.get() {
            Some(at) if !self.cut.is_up() => Some(now.saturating_duration_since(at)),
            _ => None,
        }
    }

    /// Cuts the write (see the module documentation).
    pub(crate) fn cut(&self) {
        self.cut.raise();
    }

    /// Completes once the write has been cut.
    pub(crate) async fn was_cut(&self) {
        self.cut.raised().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_stalls_after_a_second_without_progress_until_it_is_cut_or_ends() {
        let w = Writing::default();
        let now = Instant::now();
        assert!(!w.in_progress() && !w.stalled(now + STALL));
        w.progressed();
        assert!(w.in_progress());
        assert!(!w.stalled(Instant::now()));
        assert!(w.stalled(Instant::now() + STALL));
        w.cut();
        assert!(!w.stalled(Instant::now() + STALL), "cut once");
        let w = Writing::default();
        w.progressed();
        w.ended();
        assert!(!w.stalled(Instant::now() + STALL));
    }
}
