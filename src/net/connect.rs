//! Resolving a host name and connecting to it, bounded by a deadline the caller keeps: the
//! connect of the blocking HTTP clients (the Pushgateway client, `pushgateway::http`, and the
//! OTLP/HTTP exporter's transport, `export::otlp::transport`).
//!
//! Both steps block for as long as they take. Name resolution (getaddrinfo) has no timeout of
//! its own: a DNS server that never answers holds it for the resolver's timeout (glibc: 5 s
//! per attempt). A connection attempt takes as long as the handshake does: attempts given up
//! after a short slice each would never reach a server whose handshake takes longer (one a
//! continent away, or behind a slow link), every new SYN's answer coming to a socket already
//! closed. So [`connect`] runs both on a short-lived thread of its own, with all the time
//! left, and waits for its result at most [`SLICE`] at a time, asking the caller between
//! waits how much time is left (a shutdown can bring that forward).
//!
//! A name with several addresses (`localhost` as `::1` and `127.0.0.1`, a dual-stack
//! collector) is tried the way RFC 8305 ("Happy Eyeballs Version 2") describes: the addresses
//! in the resolver's order with the two families interleaved (§4), one attempt started every
//! [`ATTEMPT_DELAY`] (§5's "Connection Attempt Delay", 250 ms as it recommends) or as soon as
//! every earlier one has failed, the earlier attempts kept running ("Starting a new connection
//! attempt does not affect previous attempts"), the first connection made kept. The RFC would
//! cancel the others; a blocking attempt cannot be, so each ends on its own, by the deadline at
//! the latest, and a connection it makes then is closed. An
//! address that drops packets (a broken IPv6 route) then costs the next one 250 ms, not the
//! whole deadline: tried in turn with all the time left, as before, it took the deadline of
//! every export and push, and the next address was never reached. Each attempt runs on a
//! thread of its own, counted against [`MAX_THREADS`] (in a count of its own, [`LIVE`]) and
//! ending by the deadline as the connection thread does; at the cap the next attempt waits for
//! one of them to fail, and with none running it runs on the connection thread, alone, as every
//! attempt did before.
//!
//! What it guarantees:
//!
//! * **The caller returns by its deadline**: by `deadline`, or within a [`SLICE`] of its
//!   `remaining` turning zero (a shutdown's cut), whatever the resolver and the network do.
//! * **The thread ends on its own**, never waited for: its connection attempts end by
//!   `deadline`; a resolution still running then ends when the resolver gives up (after which
//!   nothing is attempted, the deadline having passed).
//! * **Nothing leaks**: a connection made after the caller left is dropped (closed) with the
//!   result the caller no longer receives.
//! * **The threads given up on are capped**: once [`MAX_THREADS`] connection threads whose
//!   callers gave up on them ([`GIVEN_UP`]) live in the process (those of every client
//!   together), no more are started; so at most that many, and those of callers that were
//!   waiting as it was reached, which may give up too. They outlive their callers while the resolver holds them, so a silent DNS
//!   server and a short push or export interval would otherwise add one every attempt for as
//!   long as the outage lasts; at the cap, [`connect`] starts none and fails at once with
//!   [`ConnectError::TooManyThreads`], an attempt failed like any other (the client retries or
//!   reports it as it would a refusal). A connection thread whose caller still waits for it is
//!   not counted there: there is one per caller waiting, and it ends by its caller's deadline or
//!   is given up on then. (Counting those too, 17 pushes at once to a gateway that answered
//!   every one failed the 17th at once, blaming a resolver that had given no trouble.)
//!
//! The counts are process-wide atomics (`Relaxed`; they order nothing, only count). An attempt
//! thread is counted in [`LIVE`] before it is started and uncounted when its closure is dropped
//! — when it ends, or at once if it could not be started. A connection thread is counted in
//! [`GIVEN_UP`] by its caller as it gives up, and uncounted by the thread as it ends, whichever
//! comes first deciding through the state they share ([`Handoff`]): the caller counts it only
//! while it still runs, the thread uncounts it only if counted, so the count never holds a
//! thread that is gone for good, nor misses one given up on that runs.
//!
//! Each client maps [`ConnectError`] to its own error type.

use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{
    AtomicU8, AtomicUsize,
    Ordering::{AcqRel, Acquire, Relaxed},
};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The longest the caller waits for the connection thread before it asks again how much time
/// is left.
pub(crate) const SLICE: Duration = Duration::from_millis(50);

/// The most connection threads given up on by their callers alive at once, process-wide, and
/// the most attempt threads (see the module documentation). Only an outage that outlasts the
/// callers' deadlines (a resolver that never answers) keeps several of the first alive.
pub(crate) const MAX_THREADS: usize = 16;

/// How many attempt threads ([`connect_any`]) are alive (see the module documentation).
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// How many connection threads whose callers gave up on them are alive (see the module
/// documentation).
static GIVEN_UP: AtomicUsize = AtomicUsize::new(0);

/// A connection thread's state, shared with its caller: waited for, given up on (counted in
/// [`GIVEN_UP`]), or ended.
const WAITED_FOR: u8 = 0;
const GIVEN_UP_ON: u8 = 1;
const ENDED: u8 = 2;

/// The connection thread's side of the state it shares with its caller: dropped as the thread
/// ends (or with the closure, if the thread could not be started), it uncounts the thread from
/// [`GIVEN_UP`] if its caller counted it there.
struct Handoff(Arc<AtomicU8>);

impl Drop for Handoff {
    fn drop(&mut self) {
        if self.0.swap(ENDED, AcqRel) == GIVEN_UP_ON {
            GIVEN_UP.fetch_sub(1, Relaxed);
        }
    }
}

/// The caller's side: counts the thread in [`GIVEN_UP`] unless it has ended already. Counted
/// before the state says so, so that the thread's uncounting never comes first.
fn give_up(state: &AtomicU8) {
    GIVEN_UP.fetch_add(1, Relaxed);
    if state
        .compare_exchange(WAITED_FOR, GIVEN_UP_ON, AcqRel, Acquire)
        .is_err()
    {
        // The thread ended first: nothing outlives the caller.
        GIVEN_UP.fetch_sub(1, Relaxed);
    }
}

/// One live attempt thread, counted in [`LIVE`] from its creation to its drop.
struct Live(());

impl Live {
    /// Counts one more thread, unless [`MAX_THREADS`] are alive already.
    fn take() -> Option<Live> {
        LIVE.fetch_update(Relaxed, Relaxed, |n| (n < MAX_THREADS).then_some(n + 1))
            .ok()
            .map(|_| Live(()))
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Relaxed);
    }
}

/// Why [`connect`] returned no connection.
#[derive(Debug)]
pub(crate) enum ConnectError {
    /// The deadline passed, or the caller's time left turned zero, first.
    Timeout,
    /// The name did not resolve.
    Resolve(io::Error),
    /// The name resolved to no address.
    NoAddress,
    /// Every address refused the connection (or was unreachable, ...): the last one's error.
    Connect {
        /// The address tried last (in the Pushgateway client's messages; the OTLP transport
        /// reports the operating system's error alone, as it always has).
        #[cfg_attr(not(feature = "pushgateway"), allow(dead_code))]
        addr: SocketAddr,
        /// What the operating system said.
        error: io::Error,
    },
    /// The connection thread could not be started.
    Spawn(io::Error),
    /// [`MAX_THREADS`] connection threads given up on by their callers were alive already
    /// (the resolver or the network held them); none was started.
    TooManyThreads,
    /// The connection thread ended without a result (it panicked).
    Lost,
}

/// Resolves `host` and connects to `port` on its addresses, each tried in turn, on a thread
/// named `thread_name`, by `deadline`; `TCP_NODELAY` is set on the connection. The caller
/// waits at most [`SLICE`] at a time and gives up with [`ConnectError::Timeout`] when
/// `remaining()` (the caller's time left, asked after every wait; a shutdown may bring it to
/// zero early) or the time to `deadline` is zero. See the module documentation for what
/// happens to the thread then.
pub(crate) fn connect(
    host: &str,
    port: u16,
    deadline: Instant,
    remaining: &dyn Fn() -> Duration,
    thread_name: &str,
) -> Result<TcpStream, ConnectError> {
    let left = || {
        let left = remaining().min(deadline.saturating_duration_since(Instant::now()));
        if left.is_zero() {
            Err(ConnectError::Timeout)
        } else {
            Ok(left)
        }
    };
    left()?;
    if GIVEN_UP.load(Relaxed) >= MAX_THREADS {
        return Err(ConnectError::TooManyThreads);
    }
    let host = host.to_owned();
    let (tx, rx) = mpsc::channel();
    let state = Arc::new(AtomicU8::new(WAITED_FOR));
    let handoff = Handoff(state.clone());
    std::thread::Builder::new()
        .name(thread_name.into())
        .spawn(move || {
            let _handoff = handoff;
            // The caller may have left: then the result, a connection too, is dropped here.
            let _ = tx.send(resolve_and_connect(&host, port, deadline));
        })
        .map_err(ConnectError::Spawn)?;
    loop {
        let wait = left().inspect_err(|_| give_up(&state))?;
        match rx.recv_timeout(wait.min(SLICE)) {
            Ok(result) => return result,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return Err(ConnectError::Lost),
        }
    }
}

/// How long an attempt on one address runs alone before the next address's starts beside it:
/// RFC 8305 §5's fixed "Connection Attempt Delay", at the 250 milliseconds it recommends as the
/// default.
pub(crate) const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// The connection thread's work: resolves `host` and connects to one of its addresses by
/// `deadline` ([`connect_any`]).
fn resolve_and_connect(
    host: &str,
    port: u16,
    deadline: Instant,
) -> Result<TcpStream, ConnectError> {
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(ConnectError::Resolve)?
        .collect();
    connect_any(interleave(addrs), deadline, ATTEMPT_DELAY)
}

/// `addrs` with the two families alternating, the first address's family first, each family
/// in the resolver's order, as RFC 8305 §4 orders the addresses to try: a family that does not
/// work then costs one [`ATTEMPT_DELAY`] before the other's first address is tried, not one per
/// address it has.
fn interleave(addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let first_v6 = addrs.first().is_some_and(SocketAddr::is_ipv6);
    let (same, other): (Vec<_>, Vec<_>) = addrs.into_iter().partition(|a| a.is_ipv6() == first_v6);
    let mut out = Vec::with_capacity(same.len() + other.len());
    let mut other = other.into_iter();
    for a in same {
        out.push(a);
        out.extend(other.next());
    }
    out.extend(other);
    out
}

/// One address's attempt: connects with all the time left until `deadline`, again when the
/// kernel gives up on a handshake first; `TCP_NODELAY` set on the connection.
fn attempt(addr: SocketAddr, deadline: Instant) -> Result<TcpStream, ConnectError> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ConnectError::Timeout);
        }
        match TcpStream::connect_timeout(&addr, left) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            // The kernel gave up on the handshake before our deadline: try again.
            Err(e) if e.kind() == io::ErrorKind::TimedOut => continue,
            Err(error) => return Err(ConnectError::Connect { addr, error }),
        }
    }
}

/// Connects to one of `addrs` by `deadline`: the attempts start in order, each `delay` after
/// the one before or as soon as every earlier attempt has failed, and run side by side; the
/// first connection made is returned, and the others are closed as their attempts end (their
/// results are sent to a receiver that is gone, or received and dropped here). Every attempt
/// but the one this thread runs when it can start no other takes a thread of its own,
/// counted in [`LIVE`]. Without a connection: the last failure, or
/// [`ConnectError::Timeout`] if an attempt still runs at the deadline.
fn connect_any(
    addrs: Vec<SocketAddr>,
    deadline: Instant,
    delay: Duration,
) -> Result<TcpStream, ConnectError> {
    if addrs.len() <= 1 {
        return match addrs.first() {
            Some(&addr) => attempt(addr, deadline),
            None => Err(ConnectError::NoAddress),
        };
    }
    let (tx, rx) = mpsc::channel();
    let mut next = 0; // the next address to try
    let mut running = 0usize;
    let mut last = ConnectError::NoAddress;
    let mut start_next = Instant::now();
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(ConnectError::Timeout);
        }
        if let Some(&addr) = addrs.get(next) {
            if running == 0 || now >= start_next {
                let spawned = Live::take().and_then(|live| {
                    let tx = tx.clone();
                    std::thread::Builder::new()
                        .name("agentcore-connect-attempt".into())
                        .spawn(move || {
                            let _live = live;
                            // The first connection may have been returned already: then
                            // this one is dropped (closed) with the message no one receives.
                            let _ = tx.send(attempt(addr, deadline));
                        })
                        .ok()
                });
                if spawned.is_some() {
                    next += 1;
                    running += 1;
                    start_next = now + delay;
                } else if running == 0 {
                    // No thread to run it beside others: it runs here, alone, as before.
                    next += 1;
                    match attempt(addr, deadline) {
                        Ok(s) => return Ok(s),
                        Err(e) => last = e,
                    }
                } else {
                    // At the cap: it starts when the next delay has passed or an attempt
                    // running has failed, whichever comes first.
                    start_next = now + delay;
                }
                continue;
            }
        } else if running == 0 {
            return Err(last);
        }
        let until = if next < addrs.len() {
            start_next.min(deadline)
        } else {
            deadline
        };
        match rx.recv_timeout(until.saturating_duration_since(now)) {
            Ok(Ok(s)) => return Ok(s),
            Ok(Err(e)) => {
                running -= 1;
                last = e;
                // The address that failed holds nothing back: the next attempt starts at once.
                start_next = Instant::now();
            }
            // The delay or the deadline passed (the sender is never gone: `tx` is here).
            Err(_) => {}
        }
    }
}

/// For the tests of the clients (and of this module): the connection-thread count is one per
/// process, so the tests that start connection threads or fill the cap take one lock.
#[cfg(test)]
pub(crate) mod test_support {
    use super::{GIVEN_UP, MAX_THREADS};
    use std::sync::atomic::Ordering::Relaxed;
    use std::sync::{Mutex, MutexGuard};

    /// Every test that starts connection threads or holds the cap: they share the count.
    static SERIAL: Mutex<()> = Mutex::new(());

    pub(crate) fn serial() -> MutexGuard<'static, ()> {
        SERIAL.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cap on connection threads given up on, held full (as threads a silent resolver
    /// holds fill it); given back on drop.
    #[cfg_attr(not(feature = "otlp"), allow(dead_code))]
    pub(crate) struct CapHeld {
        _serial: MutexGuard<'static, ()>,
    }

    impl Drop for CapHeld {
        fn drop(&mut self) {
            GIVEN_UP.fetch_sub(MAX_THREADS, Relaxed);
        }
    }

    /// Fills the cap on connection threads given up on until the result is dropped.
    #[cfg_attr(not(feature = "otlp"), allow(dead_code))]
    pub(crate) fn hold_cap() -> CapHeld {
        let serial = serial();
        GIVEN_UP.fetch_add(MAX_THREADS, Relaxed);
        CapHeld { _serial: serial }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::serial;
    use super::*;
    use std::net::TcpListener;

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(10)
    }

    #[test]
    fn connects_to_a_listener_and_sets_nodelay() {
        let _serial = serial();
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let d = far();
        let left = || d.saturating_duration_since(Instant::now());
        let s = connect("127.0.0.1", port, d, &left, "test-connect").unwrap();
        assert_eq!(s.peer_addr().unwrap(), l.local_addr().unwrap());
        assert!(s.nodelay().unwrap());
    }

    #[test]
    fn a_refused_connection_names_the_address() {
        let _serial = serial();
        // A port just freed: nothing listens there.
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let d = far();
        let left = || d.saturating_duration_since(Instant::now());
        match connect("127.0.0.1", port, d, &left, "test-connect") {
            Err(ConnectError::Connect { addr, error }) => {
                assert_eq!(addr.port(), port);
                assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused);
            }
            other => panic!("{other:?}"),
        }
    }

    /// Waits until no connection thread is alive (those of other tests end by themselves).
    fn no_live_threads() {
        let until = Instant::now() + Duration::from_secs(10);
        while LIVE.load(Relaxed) != 0 || GIVEN_UP.load(Relaxed) != 0 {
            assert!(
                Instant::now() < until,
                "{} attempt threads, {} given up on, still live",
                LIVE.load(Relaxed),
                GIVEN_UP.load(Relaxed)
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn at_the_thread_cap_no_thread_starts_and_each_ends_uncounted() {
        let _serial = serial();
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let d = far();
        let left = || d.saturating_duration_since(Instant::now());
        // The count of threads given up on filled up to the cap, as threads a silent
        // resolver holds fill it (on top of any another module's test gave up on just now).
        let before = GIVEN_UP.fetch_add(MAX_THREADS, Relaxed);
        let r = connect("127.0.0.1", port, d, &left, "test-connect");
        assert!(matches!(r, Err(ConnectError::TooManyThreads)), "{r:?}");
        assert!(
            GIVEN_UP.load(Relaxed) <= before + MAX_THREADS,
            "the refused attempt counts nothing"
        );
        GIVEN_UP.fetch_sub(MAX_THREADS, Relaxed);
        // Below the cap again: a connection thread runs, and is uncounted once it has ended.
        connect("127.0.0.1", port, d, &left, "test-connect").unwrap();
        no_live_threads();
    }

    /// A connection thread whose caller waits for it is not counted against the cap: more
    /// connections at once than [`MAX_THREADS`] all succeed (each counted, 64 at once failed
    /// some at once with `TooManyThreads`). One its caller gives up on (here at a cut, the
    /// thread's own deadline being later) is counted until it ends.
    #[test]
    fn only_threads_given_up_on_count_against_the_cap() {
        let _serial = serial();
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let n = 4 * MAX_THREADS;
        let barrier = std::sync::Barrier::new(n);
        std::thread::scope(|s| {
            let connects: Vec<_> = (0..n)
                .map(|_| {
                    s.spawn(|| {
                        let d = far();
                        let left = || d.saturating_duration_since(Instant::now());
                        barrier.wait();
                        connect("127.0.0.1", port, d, &left, "test-connect").map(drop)
                    })
                })
                .collect();
            for c in connects {
                let r = c.join().unwrap();
                assert!(r.is_ok(), "{r:?}");
            }
        });
        let (hole, _queued) = black_hole();
        let cut_at = Instant::now() + Duration::from_millis(100);
        let deadline = Instant::now() + Duration::from_millis(1500);
        let left = || cut_at.saturating_duration_since(Instant::now());
        let hole = hole.local_addr().unwrap();
        let r = connect("127.0.0.1", hole.port(), deadline, &left, "test-connect");
        assert!(matches!(r, Err(ConnectError::Timeout)), "{r:?}");
        // (At least: another module's test may give a thread up at the same moment.)
        assert!(
            GIVEN_UP.load(Relaxed) >= 1,
            "the thread still runs, given up on"
        );
        no_live_threads();
    }

    #[test]
    fn no_time_left_is_a_timeout_before_any_thread() {
        let left = || Duration::ZERO;
        let r = connect("127.0.0.1", 9, far(), &left, "test-connect");
        assert!(matches!(r, Err(ConnectError::Timeout)), "{r:?}");
        let past = Instant::now();
        let all = || Duration::from_secs(10);
        let r = connect("127.0.0.1", 9, past, &all, "test-connect");
        assert!(matches!(r, Err(ConnectError::Timeout)), "{r:?}");
    }

    /// A listener whose accept queue is full: the kernel drops further SYNs (Linux counts them
    /// in `ListenOverflows`), so a connection to it neither succeeds nor fails before its
    /// deadline, as one to an address behind a broken route does. Kept while the result lives.
    fn black_hole() -> (TcpListener, Vec<TcpStream>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let mut queued = Vec::new();
        loop {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                Ok(s) => queued.push(s),
                Err(e) if e.kind() == io::ErrorKind::TimedOut => return (l, queued),
                Err(e) => panic!("filling the accept queue: {e}"),
            }
            assert!(queued.len() < 10_000, "the accept queue never filled");
        }
    }

    #[test]
    fn the_families_alternate_in_the_resolvers_order() {
        let v6 = |i: u16| SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], i));
        let v4 = |i: u16| SocketAddr::from(([127, 0, 0, 1], i));
        assert_eq!(
            interleave(vec![v6(1), v6(2), v6(3), v4(1), v4(2)]),
            [v6(1), v4(1), v6(2), v4(2), v6(3)]
        );
        assert_eq!(
            interleave(vec![v4(1), v4(2), v4(3), v6(1)]),
            [v4(1), v6(1), v4(2), v4(3)]
        );
        assert_eq!(interleave(vec![v6(1), v4(1)]), [v6(1), v4(1)]);
        assert_eq!(interleave(Vec::new()), []);
    }

    /// An address that drops packets first, a listening one second: the second is tried
    /// [`ATTEMPT_DELAY`] after the first, which is left running. Each address tried in turn
    /// with all the time left, the first held the whole deadline and the result was a timeout
    /// (as a dual-stack collector behind a broken IPv6 route failed every export).
    #[test]
    fn an_address_that_drops_packets_does_not_hold_back_the_next() {
        let _serial = serial();
        let (hole, _queued) = black_hole();
        let good = TcpListener::bind("127.0.0.1:0").unwrap();
        let addrs = vec![hole.local_addr().unwrap(), good.local_addr().unwrap()];
        let deadline = Instant::now() + Duration::from_secs(3);
        let s = connect_any(addrs, deadline, ATTEMPT_DELAY).unwrap();
        assert_eq!(s.peer_addr().unwrap(), good.local_addr().unwrap());
        // The black hole's attempt ends by the deadline, and with it its thread's count.
        no_live_threads();
    }

    /// Every address silent: a timeout, by the deadline (the attempts are not waited for
    /// beyond it), and every attempt's thread ends by then too.
    #[test]
    fn addresses_that_all_drop_packets_time_out_by_the_deadline() {
        let _serial = serial();
        let (a, _qa) = black_hole();
        let (b, _qb) = black_hole();
        let addrs = vec![a.local_addr().unwrap(), b.local_addr().unwrap()];
        let deadline = Instant::now() + Duration::from_millis(700);
        let r = connect_any(addrs, deadline, ATTEMPT_DELAY);
        assert!(matches!(r, Err(ConnectError::Timeout)), "{r:?}");
        assert!(Instant::now() < deadline + Duration::from_secs(2));
        no_live_threads();
    }

    /// A refused address, then a listening one: the refusal starts the next attempt at once;
    /// every address refused: the last refusal, naming its address.
    #[test]
    fn a_refused_address_hands_over_to_the_next() {
        let _serial = serial();
        let refused = || {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let good = TcpListener::bind("127.0.0.1:0").unwrap();
        let far = far();
        let s = connect_any(
            vec![refused(), good.local_addr().unwrap()],
            far,
            ATTEMPT_DELAY,
        );
        assert_eq!(s.unwrap().peer_addr().unwrap(), good.local_addr().unwrap());
        let (r1, r2) = (refused(), refused());
        match connect_any(vec![r1, r2], far, ATTEMPT_DELAY) {
            Err(ConnectError::Connect { addr, error }) => {
                assert!(addr == r1 || addr == r2, "{addr}");
                assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused);
            }
            other => panic!("{other:?}"),
        }
        no_live_threads();
    }

    /// At the thread cap no attempt thread starts: the addresses are tried one at a time on
    /// the calling thread, as before, and the first that answers is returned.
    #[test]
    fn at_the_thread_cap_the_addresses_are_tried_in_turn_here() {
        let _serial = serial();
        let mut held = Vec::new();
        while let Some(live) = Live::take() {
            held.push(live);
        }
        let refused = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let good = TcpListener::bind("127.0.0.1:0").unwrap();
        let s = connect_any(
            vec![refused, good.local_addr().unwrap()],
            far(),
            ATTEMPT_DELAY,
        );
        assert_eq!(s.unwrap().peer_addr().unwrap(), good.local_addr().unwrap());
        drop(held);
    }
}
