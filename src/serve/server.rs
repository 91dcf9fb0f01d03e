//! The I/O thread: a one-thread tokio runtime that accepts connections, runs their tasks and the
//! scrape driver, and shuts them down by the deadline it is given.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::{watch, Notify};

use super::connection::{self, Ctx, Table};
use super::encoder::{Done, Job};
use super::flag::Flag;
use super::response::DateCache;
use super::scrape::Scrapes;
use super::stats::Stats;
use super::ServerConfig;

/// Pending connections the kernel may queue for `accept`: above the usual 128, so that a burst
/// of reconnecting clients does not overflow the queue and drop a scraper's SYN (the kernel
/// caps it at `net.core.somaxconn`).
const BACKLOG: u32 = 1024;

/// Tells the I/O thread to stop: the deadline by which it must be done.
pub(crate) type Stop = watch::Sender<Option<Instant>>;

/// A bound socket and the runtime that will serve it.
pub(crate) struct Bound {
    runtime: tokio::runtime::Runtime,
    listener: TcpListener,
    local_addr: SocketAddr,
}

impl Bound {
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

/// Builds the runtime and binds `addr` (on the caller's thread, so that errors reach it).
pub(crate) fn bind(addr: SocketAddr) -> io::Result<Bound> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    let listener = {
        let _guard = runtime.enter();
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        #[cfg(unix)]
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(BACKLOG)?
    };
    let local_addr = listener.local_addr()?;
    Ok(Bound {
        runtime,
        listener,
        local_addr,
    })
}

/// What the I/O thread needs, all `Send`; the thread builds its single-threaded state from it.
pub(crate) struct Parts {
    pub(crate) bound: Bound,
    pub(crate) config: ServerConfig,
    pub(crate) stats: Arc<Stats>,
    pub(crate) encoders: Vec<SyncSender<Job>>,
    pub(crate) results: UnboundedReceiver<Done>,
    pub(crate) stop: watch::Receiver<Option<Instant>>,
}

/// Serves until told to stop, then drains until the deadline; runs on the I/O thread. Dropping
/// the task set at the end closes every connection still open and the encoder job channels
/// (idle encoder threads then end).
pub(crate) fn run(parts: Parts) {
    let Parts {
        bound,
        config,
        stats,
        encoders,
        results,
        stop,
    } = parts;
    let Bound {
        runtime, listener, ..
    } = bound;
    let local = tokio::task::LocalSet::new();
    let scrapes = Scrapes::new(
        Arc::clone(&stats),
        config.max_in_flight,
        config.encode_timeout,
        config.openmetrics,
        config.self_metrics,
    );
    let ctx = Rc::new(Ctx {
        config,
        stats,
        scrapes: Rc::clone(&scrapes),
        table: RefCell::new(Table::default()),
        date: RefCell::new(DateCache::new()),
        stop: Flag::default(),
        changed: Notify::new(),
    });
    local.block_on(&runtime, async {
        tokio::task::spawn_local(scrapes.drive(encoders, results));
        let deadline = accept_until_stopped(&ctx, listener, stop).await;
        // The listener is closed: no new connections. Waiting connections close now; busy
        // ones after their response.
        ctx.stop.raise();
        let deadline = tokio::time::Instant::from_std(deadline);
        loop {
            let changed = ctx.changed.notified();
            if ctx.table.borrow().is_empty() {
                break;
            }
            tokio::select! {
                () = changed => {}
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
    });
    drop(local);
    drop(ctx);
    drop(runtime);
}

/// Accepts until the stop signal; returns the deadline it carries (the listener is dropped).
async fn accept_until_stopped(
    ctx: &Rc<Ctx>,
    listener: TcpListener,
    mut stop: watch::Receiver<Option<Instant>>,
) -> Instant {
    let max_connections = ctx.config.max_connections;
    loop {
        // While evicted connections are still closing, let them close before accepting more.
        loop {
            let changed = ctx.changed.notified();
            if !ctx.table.borrow().closing_to_make_room(max_connections) {
                break;
            }
            changed.await;
        }
        tokio::select! {
            biased;
            changed = stop.changed() => {
                if let Some(deadline) = *stop.borrow() {
                    return deadline;
                }
                if changed.is_err() {
                    return Instant::now(); // the handle is gone without a word
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => connection::accept(ctx, stream),
                Err(_) => {
                    // Out of descriptors (EMFILE) or similar: make room and back off briefly
                    // instead of spinning.
                    ctx.stats.accept_errors.fetch_add(1, Relaxed);
                    ctx.table.borrow_mut().evict_oldest();
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
        }
    }
}
