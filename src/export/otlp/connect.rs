//! Connecting to the collector within an export's deadline, watching the deadline while the
//! handshake runs (a shutdown brings it forward: `Deadline`'s cut), so that a collector that
//! never answers the SYN holds a shutdown up for at most one slice, not the export timeout.
//! The OTLP transport's (`transport.rs`) connect; its own module for its `unsafe` socket calls.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::export::exporter::Deadline;

/// Why [`connect_sliced`] failed.
pub(super) enum ConnectError {
    /// The deadline passed (or was brought forward by a shutdown) first.
    Timeout,
    /// The connection was refused, unreachable, ...
    Io(io::Error),
}

/// Connects to `addr` by `deadline`, looking at the deadline every `slice` like the reads
/// and writes, so that a shutdown during a connect to a collector that never answers the SYN
/// is noticed at once rather than after the whole export timeout (`connect_timeout` cannot
/// be interrupted). A non-blocking `connect(2)`, then `poll(2)` for at most a slice at a time:
/// what `TcpStream::connect_timeout` does inside, with the deadline looked at in between.
#[cfg(target_os = "linux")]
pub(super) fn connect_sliced(
    addr: &SocketAddr,
    deadline: &Deadline,
    slice: Duration,
) -> Result<TcpStream, ConnectError> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let family = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    let kind = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: socket(2) takes no pointers; it returns a new descriptor or -1.
    let raw = unsafe { libc::socket(family, kind, 0) };
    if raw < 0 {
        return Err(ConnectError::Io(io::Error::last_os_error()));
    }
    // SAFETY: `raw` is a descriptor just opened here and owned by nothing else; the `OwnedFd`
    // closes it on every path (or hands it to the `TcpStream`).
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let r = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: `sin` is a complete `sockaddr_in` that outlives the call, and the length
            // passed is its size; connect(2) only reads it.
            unsafe {
                libc::connect(
                    raw,
                    (&sin as *const libc::sockaddr_in).cast(),
                    std::mem::size_of_val(&sin) as libc::socklen_t,
                )
            }
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                // As std converts it (`SocketAddrV6` keeps it as the socket API has it).
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above, for a complete `sockaddr_in6`.
            unsafe {
                libc::connect(
                    raw,
                    (&sin6 as *const libc::sockaddr_in6).cast(),
                    std::mem::size_of_val(&sin6) as libc::socklen_t,
                )
            }
        }
    };
    if r != 0 {
        let e = io::Error::last_os_error();
        // EINPROGRESS: the handshake goes on; EINTR: it goes on too (connect(2)), and is
        // waited for the same way.
        if !matches!(e.raw_os_error(), Some(libc::EINPROGRESS | libc::EINTR)) {
            return Err(ConnectError::Io(e));
        }
        let revents = loop {
            let left = deadline.remaining();
            if left.is_zero() {
                return Err(ConnectError::Timeout);
            }
            // At most SLICE (50 ms), at least 1 ms: fits a c_int.
            let ms = left.min(slice).as_millis().max(1) as libc::c_int;
            let mut pfd = libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLOUT,
                revents: 0,
            };
            // SAFETY: `pfd` is one valid, writable `pollfd` and the count passed is 1.
            let n = unsafe { libc::poll(&mut pfd, 1, ms) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(ConnectError::Io(e));
            }
            if n > 0 {
                break pfd.revents;
            }
        };
        // How the handshake ended: SO_ERROR.
        let mut err: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `err` and `len` are valid for writes, and `len` holds the size of `err`.
        let r = unsafe {
            libc::getsockopt(
                raw,
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                (&mut err as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        if r != 0 {
            return Err(ConnectError::Io(io::Error::last_os_error()));
        }
        if err != 0 {
            return Err(ConnectError::Io(io::Error::from_raw_os_error(err)));
        }
        if revents & (libc::POLLHUP | libc::POLLERR) != 0 {
            // As std's connect_timeout: a hang-up with no error set is still a failure.
            return Err(ConnectError::Io(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                "the connection failed (no error set after POLLHUP)",
            )));
        }
    }
    let s = TcpStream::from(fd);
    s.set_nonblocking(false).map_err(ConnectError::Io)?;
    Ok(s)
}

/// Connects to `addr` by `deadline` (see the Linux version). Without `libc` (a dependency on
/// Linux only), std has no connect that can be watched while it runs, so this makes attempts
/// of at most [`CONNECT_ATTEMPT`] each, looking at the deadline between them: a shutdown is
/// noticed within that. Not `slice`: a handshake must fit in one attempt, and 50 ms is less
/// than the round trip to a distant collector; each new attempt sends a new SYN, about as
/// often as the kernel would retransmit it anyway.
#[cfg(not(target_os = "linux"))]
pub(super) fn connect_sliced(
    addr: &SocketAddr,
    deadline: &Deadline,
    slice: Duration,
) -> Result<TcpStream, ConnectError> {
    // Attempts of `CONNECT_ATTEMPT`, not of `slice` (see above).
    let _ = slice;
    loop {
        let left = deadline.remaining();
        if left.is_zero() {
            return Err(ConnectError::Timeout);
        }
        match TcpStream::connect_timeout(addr, left.min(CONNECT_ATTEMPT)) {
            Ok(s) => return Ok(s),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {}
            Err(e) => return Err(ConnectError::Io(e)),
        }
    }
}

/// The longest one connect attempt lasts where connects cannot be sliced (not Linux).
#[cfg(not(target_os = "linux"))]
const CONNECT_ATTEMPT: Duration = Duration::from_secs(1);
