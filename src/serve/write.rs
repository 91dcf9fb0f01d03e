//! Writing one response to a socket: the head and the body's pieces in gathered writes,
//! without ever raising SIGPIPE, reporting each bit of progress to the connection's
//! [`Writing`] (so that a stalled write can be told from a slow one, see `stall`).

use std::io::{ErrorKind, IoSlice};

#[cfg(not(target_os = "linux"))]
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::stall::Writing;

/// Writes the head and then `pieces`, all of them in one gathered write per call, as
/// `write_vectored` did (one system call and one run of packets per response), telling
/// `progress` each time the kernel takes bytes, but never
/// with `writev`: it raises SIGPIPE on a connection the client closed, which kills a host
/// process that keeps the default disposition (a C program embedding the server; Rust's own
/// `main` ignores SIGPIPE). On Linux each call is `sendmsg` with `MSG_NOSIGNAL`
/// ([`gathered_write`]); elsewhere `write_vectored` (tokio's sockets set `SO_NOSIGPIPE`
/// where the platform has it).
pub(crate) async fn write_all_parts(
    stream: &mut TcpStream,
    head: &[u8],
    pieces: &[&[u8]],
    progress: &Writing,
) -> std::io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(pieces.len() + 1);
    slices.push(IoSlice::new(head));
    slices.extend(pieces.iter().map(|p| IoSlice::new(p)));
    let mut slices = &mut slices[..];
    while !slices.is_empty() {
        let n = gathered_write(stream, slices).await?;
        if n == 0 {
            return Err(ErrorKind::WriteZero.into());
        }
        progress.progressed();
        IoSlice::advance_slices(&mut slices, n);
    }
    Ok(())
}

/// One gathered write of `slices`: `sendmsg(MSG_NOSIGNAL)`, when the socket is writable.
#[cfg(target_os = "linux")]
async fn gathered_write(stream: &mut TcpStream, slices: &[IoSlice<'_>]) -> std::io::Result<usize> {
    use std::os::fd::AsRawFd;
    /// The most buffers one `sendmsg` takes on Linux (`UIO_MAXIOV`); the rest go next call.
    const MAX_IOV: usize = 1024;
    let fd = stream.as_raw_fd();
    loop {
        stream.writable().await?;
        let sent = stream.try_io(tokio::io::Interest::WRITABLE, || {
            // SAFETY: `msghdr` is a plain C struct of integers and pointers, for which all
            // zeroes is a valid value (no address, no buffers, no control data, no flags).
            let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
            // `IoSlice` is guaranteed ABI-compatible with `iovec` on Unix (its docs), so the
            // slice is an array of `iovec`s; `sendmsg` only reads them and the bytes they
            // point to, all borrowed for this call.
            msg.msg_iov = slices.as_ptr().cast_mut().cast::<libc::iovec>();
            msg.msg_iovlen = slices.len().min(MAX_IOV) as _;
            // SAFETY: `fd` is the stream's open socket (borrowed for this call); `msg` points
            // at `msg_iovlen` valid `iovec`s (above) and at nothing else.
            let n = unsafe { libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL) };
            if n < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        });
        match sent {
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
            sent => return sent,
        }
    }
}

/// One gathered write of `slices` (see [`write_all_parts`]).
#[cfg(not(target_os = "linux"))]
async fn gathered_write(stream: &mut TcpStream, slices: &[IoSlice<'_>]) -> std::io::Result<usize> {
    stream.write_vectored(slices).await
}
