//! One connection, from accept to close: a task on the I/O thread that reads request heads
//! under their deadlines, answers them, and keeps the connection for the next request while
//! the limits allow; and the table of open connections that makes room for new ones.
//!
//! # States
//! A connection is *idle* (it has been answered and waits, silent, for its next request),
//! *reading* (a new connection, or a head in progress) or *busy* (a request is being answered).
//! When the table is full, a new connection evicts, in this order: a busy one whose response
//! write has stalled (no progress for a second, `stall::STALL`: its client has stopped reading;
//! the one stalled longest); an idle one (the one that has served the fewest requests, and of
//! those the one idle longest); the reading one whose wait began earliest. A stalled write
//! holds its place for nothing; an idle connection is the cheapest to lose otherwise (its
//! client reconnects when it needs to), and one that has served many requests is a scraper's
//! keep-alive connection, worth keeping over a pool's connection that asked once; a reading
//! one is about to make a request. A request in progress is otherwise never cut off to make
//! room, and a complete request that has already arrived on an evicted connection is answered
//! (with `Connection: close`) rather than dropped.

use std::cell::{Cell, RefCell};
use std::io::ErrorKind;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;

use super::flag::Flag;
use super::negotiate::Format;
use super::request::{
    empty_lines, find_head_end, names_head, parse, too_large, Head, Method, Parsed, Rejection,
};
use super::response::{write_head, DateCache, HeadFields, Status};
use super::scrape::{pace, Scraped, Scrapes};
use super::stall::Writing;
use super::stats::{Close, Stats};
use super::write::write_all_parts;
use super::{later, later_tokio, ServerConfig, CONTENT_TYPE};
use crate::exposition::OPENMETRICS_CONTENT_TYPE;

const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

/// How long and how much a closing connection reads and discards after its last response, so
/// that unread request bytes do not turn the close into a reset that destroys the response.
const LINGER_TIME: Duration = Duration::from_millis(500);
const LINGER_BYTES: usize = 64 * 1024;

/// What the tasks on the I/O thread share.
pub(crate) struct Ctx {
    pub(crate) config: ServerConfig,
    pub(crate) stats: Arc<Stats>,
    pub(crate) scrapes: Rc<Scrapes>,
    pub(crate) table: RefCell<Table>,
    pub(crate) date: RefCell<DateCache>,
    /// Raised at shutdown: waiting connections close, busy ones close after their response.
    pub(crate) stop: Flag,
    /// Notified when a connection leaves the table or acknowledges its eviction.
    pub(crate) changed: Notify,
}

/// Where a connection is in its request cycle (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Reading,
    Busy,
}

/// The table's view of one connection.
#[derive(Debug)]
pub(crate) struct Conn {
    /// When the current wait began: accept, or the end of the last response.
    since: Cell<Instant>,
    phase: Cell<Phase>,
    /// Requests answered on it so far.
    served: Cell<u64>,
    evict: Flag,
    /// Its response write, if one is in progress (shared with its scrape's in-flight place).
    writing: Rc<Writing>,
    /// Its task has seen the eviction (and is closing, or answering a request that had
    /// arrived, then closing).
    acknowledged: Cell<bool>,
}

/// The open connections.
#[derive(Debug, Default)]
pub(crate) struct Table {
    slots: Vec<Option<Rc<Conn>>>,
    free: Vec<usize>,
    open: usize,
    /// Evicted and not gone yet.
    evicting: usize,
    /// Evicted, and their task has not run since.
    unacknowledged: usize,
}

impl Table {
    /// Connections open and not being evicted.
    pub(crate) fn live(&self) -> usize {
        self.open - self.evicting
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.open == 0
    }

    /// Whether accepting should wait: the table is full and evicted connections have yet to
    /// close. (Their tasks run within one scheduling round; waiting keeps the descriptors in use
    /// at `max_connections` plus one, instead of letting a burst of accepts outrun the
    /// closes.)
    pub(crate) fn closing_to_make_room(&self, max_connections: usize) -> bool {
        self.open >= max_connections && self.unacknowledged > 0
    }

    fn acknowledge(&mut self, conn: &Conn) {
        if conn.evict.is_up() && !conn.acknowledged.get() {
            conn.acknowledged.set(true);
            self.unacknowledged -= 1;
        }
    }

    fn insert(&mut self, conn: Rc<Conn>) -> usize {
        self.open += 1;
        match self.free.pop() {
            Some(key) => {
                self.slots[key] = Some(conn);
                key
            }
            None => {
                self.slots.push(Some(conn));
                self.slots.len() - 1
            }
        }
    }

    fn remove(&mut self, key: usize) {
        if let Some(conn) = self.slots.get_mut(key).and_then(Option::take) {
            self.acknowledge(&conn);
            self.open -= 1;
            if conn.evict.is_up() {
                self.evicting -= 1;
            }
            self.free.push(key);
        }
    }

    /// Evicts a busy connection whose write has stalled (the one stalled longest), or an idle
    /// one (the one that has served the fewest requests, and of those the one idle longest),
    /// or the reading one whose wait began earliest; `false` if every connection is busy and
    /// moving (or already being evicted).
    pub(crate) fn evict_oldest(&mut self) -> bool {
        let now = Instant::now();
        let victim = self
            .slots
            .iter()
            .flatten()
            .filter(|c| {
                !c.evict.is_up() && (c.phase.get() != Phase::Busy || c.writing.stalled(now))
            })
            .min_by_key(|c| match c.phase.get() {
                Phase::Busy => (0, 0, c.writing.progress().unwrap_or(now)),
                Phase::Idle => (1, c.served.get(), c.since.get()),
                Phase::Reading => (2, 0, c.since.get()),
            });
        match victim {
            Some(conn) => {
                if conn.phase.get() == Phase::Busy {
                    conn.writing.cut();
                }
                conn.evict.raise();
                self.evicting += 1;
                self.unacknowledged += 1;
                true
            }
            None => false,
        }
    }
}

/// Removes the connection from the table when its task ends (or is dropped at shutdown), and
/// counts why it closed.
struct Entry<'a> {
    ctx: &'a Ctx,
    key: usize,
    why: Cell<Option<Close>>,
}

impl Drop for Entry<'_> {
    fn drop(&mut self) {
        let mut table = self.ctx.table.borrow_mut();
        table.remove(self.key);
        self.ctx
            .stats
            .connections_open
            .store(table.open as u64, Relaxed);
        // A task dropped before it returned was cut off by the shutdown deadline.
        self.ctx
            .stats
            .closed(self.why.get().unwrap_or(Close::Shutdown));
        self.ctx.changed.notify_waiters();
    }
}

/// Admits a freshly accepted connection: makes room by evicting if the table is full, or
/// refuses it (closed at once) when every connection is busy.
pub(crate) fn accept(ctx: &Rc<Ctx>, stream: TcpStream) {
    ctx.stats.connections_accepted.fetch_add(1, Relaxed);
    let conn = {
        let mut table = ctx.table.borrow_mut();
        if table.live() >= ctx.config.max_connections && !table.evict_oldest() {
            ctx.stats.connections_rejected.fetch_add(1, Relaxed);
            return; // dropping the stream closes it
        }
        Rc::new(Conn {
            since: Cell::new(Instant::now()),
            phase: Cell::new(Phase::Reading),
            served: Cell::new(0),
            evict: Flag::default(),
            writing: Rc::default(),
            acknowledged: Cell::new(false),
        })
    };
    let key = {
        let mut table = ctx.table.borrow_mut();
        let key = table.insert(Rc::clone(&conn));
        ctx.stats.connections_open.store(table.open as u64, Relaxed);
        key
    };
    tokio::task::spawn_local(serve(Rc::clone(ctx), stream, conn, key));
}

async fn serve(ctx: Rc<Ctx>, mut stream: TcpStream, conn: Rc<Conn>, key: usize) {
    let entry = Entry {
        ctx: &ctx,
        key,
        why: Cell::new(None),
    };
    let _ = stream.set_nodelay(true);
    let mut connection = Connection {
        ctx: &ctx,
        stream: &mut stream,
        conn: &conn,
        born: Instant::now(),
        served: 0,
        out: Vec::new(),
        answered_last: false,
        evicted: false,
        http10: false,
    };
    let why = connection.run().await;
    let answered_last = connection.answered_last;
    entry.why.set(Some(why));
    if answered_last {
        linger(&ctx, &mut stream, &conn).await;
    }
}

/// Half-closes and drains what the client still sends, briefly (see [`LINGER_TIME`]); the
/// connection counts as waiting (evictable) meanwhile.
async fn linger(ctx: &Ctx, stream: &mut TcpStream, conn: &Conn) {
    // Evictable from here on; an eviction only shortens the linger.
    conn.phase.set(Phase::Idle);
    conn.since.set(Instant::now());
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 1024];
    let mut drained = 0;
    let until = later_tokio(tokio::time::Instant::now(), LINGER_TIME);
    while drained < LINGER_BYTES {
        tokio::select! {
            biased;
            () = conn.evict.raised() => return,
            () = ctx.stop.raised() => return,
            read = tokio::time::timeout_at(until, stream.read(&mut sink)) => match read {
                Ok(Ok(n)) if n > 0 => drained += n,
                _ => return,
            },
        }
    }
}

/// Errors that mean the peer went away.
fn gone(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::BrokenPipe
            | ErrorKind::UnexpectedEof
    )
}

struct Connection<'a> {
    ctx: &'a Ctx,
    stream: &'a mut TcpStream,
    conn: &'a Conn,
    born: Instant,
    /// Requests answered so far.
    served: u64,
    /// The response head being written.
    out: Vec<u8>,
    /// A response went out just before the close (so the close lingers).
    answered_last: bool,
    /// Evicted with a complete request in hand: answer it, then close.
    evicted: bool,
    /// The request being answered is HTTP/1.0: a response that keeps the connection open
    /// says so (`Connection: keep-alive`, see `HeadFields::keep_alive`).
    http10: bool,
}

/// How a request head ended: complete (with its length), or not.
enum Read {
    Head(usize, Result<Head, Rejection>),
    Closed(Close),
}

impl Connection<'_> {
    async fn run(&mut self) -> Close {
        let config = &self.ctx.config;
        let mut buf: Vec<u8> = Vec::new();
        loop {
            let (len, head) = match self.read_head(&mut buf).await {
                Read::Head(len, head) => (len, head),
                Read::Closed(why) => return why,
            };
            self.conn.phase.set(Phase::Busy);
            self.served += 1;
            self.conn.served.set(self.served);
            let head = match head {
                Ok(head) => {
                    self.http10 = head.http10;
                    head
                }
                Err(rejection) => {
                    // A refused `HEAD` is answered without content too (`names_head`).
                    let body = !names_head(&buf);
                    self.answered_last = self
                        .plain(rejection.status, rejection.reason, true, body)
                        .await
                        .is_ok();
                    return Close::BadRequest;
                }
            };
            let last = if self.evicted {
                Some(Close::Evicted)
            } else if !head.keep_alive {
                Some(Close::Requested)
            } else if self.served >= config.max_requests_per_connection {
                Some(Close::MaxRequests)
            } else if self.born.elapsed() >= config.max_connection_age {
                Some(Close::MaxAge)
            } else if self.ctx.stop.is_up() {
                Some(Close::Shutdown)
            } else {
                None
            };
            let body = head.method != Method::Head;
            // A method the server does not recognise is refused whatever the path (RFC 9110
            // §15.6.2: `501` "when the server does not recognize the request method"): the
            // methods it knows are the server's, not a resource's. `OPTIONS *` asks about the
            // server as a whole (RFC 9110 §9.3.7): `200` with `Allow` and no content. A known
            // method that `/metrics` does not allow gets `405`, on any other path `404`. Each
            // keeps the connection as the request asks (its framing is known).
            let answered = if head.method == Method::Unknown {
                self.plain(
                    Status::NotImplemented,
                    "Not Implemented: the server does not recognize the request method\n",
                    last.is_some(),
                    body,
                )
                .await
            } else if head.server_wide {
                self.respond(
                    Status::Ok,
                    HeadFields {
                        content_type: None,
                        content_length: 0,
                        gzip: false,
                        vary: false,
                        vary_accept: false,
                        allow: true,
                        close: last.is_some(),
                        keep_alive: false,
                    },
                    &[],
                )
                .await
            } else if !head.metrics {
                self.plain(
                    Status::NotFound,
                    "Not Found: the exposition is at /metrics\n",
                    last.is_some(),
                    body,
                )
                .await
            } else if head.method == Method::Other {
                self.respond(
                    Status::MethodNotAllowed,
                    HeadFields {
                        content_type: Some(TEXT_PLAIN),
                        content_length: 19,
                        gzip: false,
                        vary: false,
                        vary_accept: false,
                        allow: true,
                        close: last.is_some(),
                        keep_alive: false,
                    },
                    &[b"Method Not Allowed\n"],
                )
                .await
            } else {
                self.scrape(&head, last.is_some()).await
            };
            if let Err(why) = answered {
                return why;
            }
            if let Some(why) = last {
                self.answered_last = true;
                return why;
            }
            buf.drain(..len);
            if buf.capacity() > 4096 {
                buf.shrink_to(4096);
            }
            self.conn.since.set(Instant::now());
        }
    }

    /// Reads until `buf` holds a complete head, under the head and idle deadlines. Empty lines
    /// before a request line are skipped (RFC 9112 §2.2) but count towards the head's
    /// `max_header_bytes` and its `header_read_timeout`: a client that sends nothing else gets
    /// `431` or `408` and the close, like one that sends an endless head (a head that reaches
    /// the limit inside its request target gets `414`, `too_large`).
    async fn read_head(&mut self, buf: &mut Vec<u8>) -> Read {
        let config = &self.ctx.config;
        // Pipelined bytes already here count as a head in progress.
        let mut started = (!buf.is_empty()).then(Instant::now);
        self.conn
            .phase
            .set(if self.served > 0 && started.is_none() {
                Phase::Idle
            } else {
                Phase::Reading
            });
        let mut scanned = 0;
        // Bytes of empty lines dropped so far.
        let mut skipped = 0usize;
        loop {
            if let Some(end) = find_head_end(buf, scanned) {
                match parse(&buf[..end], config.max_headers) {
                    Parsed::Complete { len, head } => return Read::Head(len, head),
                    Parsed::Partial => {
                        // Only empty lines so far: drop all of them at once (not one line
                        // per pass: each drain moves the rest of the buffer) and read on. Only
                        // whole empty lines: a bare CR after them is the parser's to refuse
                        // (RFC 9112 §2.2), not a blank to skip.
                        let blank = empty_lines(buf);
                        buf.drain(..blank.max(end));
                        skipped = skipped.saturating_add(blank.max(end));
                        scanned = 0;
                        continue;
                    }
                }
            }
            scanned = buf.len();
            if buf.len().saturating_add(skipped) >= config.max_header_bytes {
                return Read::Head(0, Err(too_large(buf)));
            }
            let deadline = match started {
                Some(at) => later(at, config.header_read_timeout),
                None if self.served == 0 => later(self.born, config.header_read_timeout),
                None => later(self.conn.since.get(), config.idle_timeout)
                    .min(later(self.born, config.max_connection_age)),
            };
            // What the head may still take: a read never goes past `max_header_bytes`, so a
            // head one byte over it gets `431` however its bytes arrive (before, a read filled
            // whatever room the buffer had, up to 512 bytes past the limit, and a head that
            // completed there was served).
            let room = config.max_header_bytes - buf.len().saturating_add(skipped);
            if buf.capacity() - buf.len() < 512 {
                let target = (buf.capacity() * 2).clamp(1024, config.max_header_bytes);
                buf.reserve_exact(target.saturating_sub(buf.len()).clamp(1, room));
            }
            // Checked here too, not only by the timer below: tokio's `timeout_at` polls the read
            // first, so a client that always has more bytes ready would never see it fire.
            let read = if Instant::now() >= deadline {
                None
            } else {
                tokio::select! {
                    biased;
                    () = self.conn.evict.raised() => {
                        self.ctx.table.borrow_mut().acknowledge(self.conn);
                        self.ctx.changed.notify_waiters();
                        // A complete request that has already arrived is answered, not dropped.
                        if !self.evicted && self.take_arrived(buf, skipped) {
                            self.evicted = true;
                            continue;
                        }
                        return Read::Closed(Close::Evicted);
                    }
                    () = self.ctx.stop.raised() => return Read::Closed(Close::Shutdown),
                    read = tokio::time::timeout_at(
                        deadline.into(),
                        async { (&mut *self.stream).take(room as u64).read_buf(buf).await },
                    ) => read.ok(),
                }
            };
            // `None`: the deadline passed.
            match read {
                Some(Ok(0)) => return Read::Closed(Close::Client),
                Some(Ok(_)) => {
                    // A connection's first head is due `header_read_timeout` after accept
                    // (`ServerConfig::header_read_timeout`), as it was while silent: its first
                    // byte does not restart the clock (it did, so a client silent until just
                    // before the deadline got a second full one). Later heads are timed from
                    // their first byte.
                    let first = (self.served == 0).then_some(self.born);
                    started.get_or_insert_with(|| first.unwrap_or_else(Instant::now));
                    self.conn.phase.set(Phase::Reading);
                }
                Some(Err(e)) if gone(&e) => return Read::Closed(Close::Client),
                Some(Err(_)) => return Read::Closed(Close::IoError),
                None if started.is_some() => {
                    self.conn.phase.set(Phase::Busy);
                    let body = !names_head(buf);
                    self.answered_last = self
                        .plain(
                            Status::RequestTimeout,
                            "Request Timeout: the request head did not arrive in time\n",
                            true,
                            body,
                        )
                        .await
                        .is_ok();
                    return Read::Closed(Close::HeaderTimeout);
                }
                None if self.served > 0 && self.born.elapsed() >= config.max_connection_age => {
                    return Read::Closed(Close::MaxAge);
                }
                // Silent until the deadline: an idle keep-alive connection (or a new one that
                // never spoke) expires quietly.
                None => return Read::Closed(Close::IdleTimeout),
            }
        }
    }

    /// Reads, without waiting, whatever has arrived, up to `max_header_bytes` with the `skipped`
    /// empty lines; whether `buf` now holds a complete head.
    fn take_arrived(&mut self, buf: &mut Vec<u8>, skipped: usize) -> bool {
        let limit = self.ctx.config.max_header_bytes;
        loop {
            if find_head_end(buf, 0).is_some() {
                return true;
            }
            let len = buf.len();
            let room = limit.saturating_sub(len.saturating_add(skipped)).min(1024);
            if room == 0 {
                return false;
            }
            // A slice of exactly `room` bytes: `try_read_buf` would fill all the spare capacity
            // `reserve` gave, which can be more.
            buf.resize(len + room, 0);
            match self.stream.try_read(&mut buf[len..]) {
                Ok(n) if n > 0 => buf.truncate(len + n),
                _ => {
                    buf.truncate(len);
                    return false;
                }
            }
        }
    }

    /// Answers a scrape: admission, the generation's outcome, the response.
    async fn scrape(&mut self, head: &Head, close: bool) -> Result<(), Close> {
        let ctx = self.ctx;
        let stats = &ctx.stats;
        let body = head.method != Method::Head;
        let admission = ctx
            .scrapes
            .admit(pace(self.served, self.born), &self.conn.writing);
        let Some(admission) = admission else {
            stats.scrapes_rejected.fetch_add(1, Relaxed);
            return self.too_many(close, body).await;
        };
        let format = match ctx.config.openmetrics {
            true => head.format,
            false => Format::Text,
        };
        let generation = ctx.scrapes.join(head.gzip, format);
        let mut budget = ctx.scrapes.budget();
        if let Some(scraper) = head.scrape_timeout {
            // Answer before the scraper gives up, so that it sees why.
            budget = budget.min(scraper.mul_f64(0.9));
        }
        let outcome = tokio::select! {
            outcome = generation.outcome() => Some(outcome),
            () = admission.preempted() => {
                drop(admission);
                stats.scrapes_rejected.fetch_add(1, Relaxed);
                return self.too_many(close, body).await;
            }
            () = tokio::time::sleep(budget) => None,
        };
        let scraped = outcome.as_deref();
        match scraped {
            Some(Scraped::Body(exposition)) => {
                let gzip = head.gzip && exposition.has_gzip();
                let len = exposition.len(gzip);
                let pieces = if body {
                    exposition.pieces(gzip)
                } else {
                    Vec::new()
                };
                stats.scrapes.fetch_add(1, Relaxed);
                if body {
                    // A `HEAD` sends no body: it leaves the last body's size as it was.
                    stats.last_response_bytes.store(len as u64, Relaxed);
                }
                self.respond(
                    Status::Ok,
                    HeadFields {
                        content_type: Some(match generation.format() {
                            Format::Text => CONTENT_TYPE,
                            Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
                        }),
                        content_length: len,
                        gzip,
                        vary: true,
                        vary_accept: ctx.config.openmetrics,
                        allow: false,
                        close,
                        keep_alive: false,
                    },
                    &pieces,
                )
                .await
            }
            Some(Scraped::Failed) => {
                stats.scrape_errors.fetch_add(1, Relaxed);
                self.plain(
                    Status::InternalServerError,
                    "Internal Server Error: an exposition source failed\n",
                    close,
                    body,
                )
                .await
            }
            Some(Scraped::Unavailable) | None => {
                stats.scrapes_unavailable.fetch_add(1, Relaxed);
                self.plain(
                    Status::ServiceUnavailable,
                    "Service Unavailable: the exposition was not ready in time\n",
                    close,
                    body,
                )
                .await
            }
        }
    }

    async fn too_many(&mut self, close: bool, body: bool) -> Result<(), Close> {
        self.plain(
            Status::ServiceUnavailable,
            "Service Unavailable: too many scrapes in flight; try again later\n",
            close,
            body,
        )
        .await
    }

    /// A short `text/plain` answer.
    async fn plain(
        &mut self,
        status: Status,
        text: &'static str,
        close: bool,
        body: bool,
    ) -> Result<(), Close> {
        let fields = HeadFields {
            content_type: Some(TEXT_PLAIN),
            content_length: text.len(),
            gzip: false,
            vary: false,
            vary_accept: false,
            allow: false,
            close,
            keep_alive: false,
        };
        let pieces: &[&[u8]] = if body { &[text.as_bytes()] } else { &[] };
        self.respond(status, fields, pieces).await
    }

    /// Writes the head and `pieces` within `write_timeout`, unless the write stalls and is cut
    /// to make room (see `stall`).
    async fn respond(
        &mut self,
        status: Status,
        fields: HeadFields,
        pieces: &[&[u8]],
    ) -> Result<(), Close> {
        self.ctx.stats.answered(status);
        let fields = HeadFields {
            keep_alive: self.http10 && !fields.close,
            ..fields
        };
        write_head(
            &mut self.out,
            status,
            &fields,
            self.ctx.date.borrow_mut().now(),
        );
        let writing = &*self.conn.writing;
        writing.progressed();
        let write = write_all_parts(self.stream, &self.out, pieces, writing);
        let limit = crate::net::deadline::capped(self.ctx.config.write_timeout);
        let written = tokio::select! {
            biased;
            () = writing.was_cut() => Err(Close::Evicted),
            written = tokio::time::timeout(limit, write) => match written {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) if gone(&e) => Err(Close::Client),
                Ok(Err(_)) => Err(Close::IoError),
                Err(_elapsed) => Err(Close::WriteTimeout),
            },
        };
        writing.ended();
        written
    }
}
