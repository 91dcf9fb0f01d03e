//! What the fuzz targets that stand in for an HTTP peer share: the socket set-up of a fake
//! server, reading a client's request, and writing a response body in a chosen framing.
//! Included by each target with `#[path = "support/http.rs"] mod http;`; each uses part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::{Mutex, MutexGuard};

use arbitrary::Arbitrary;

/// Locks `m`, whatever a panicking holder left.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Closes with RST instead of FIN (`SO_LINGER` 0): no `TIME_WAIT` per connection, so a long
/// run does not use up the loopback's ephemeral ports.
pub fn set_linger_zero(stream: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket descriptor owned by `stream`, and a `linger` of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt(SO_LINGER)");
}

/// Reads one request (head, then a `Content-Length` body); `false` at end of stream or on
/// anything else. The clients under test always send a valid `Content-Length`.
pub fn read_request(r: &mut BufReader<TcpStream>) -> bool {
    let mut len = 0usize;
    let mut line = String::new();
    loop {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => return false,
            Ok(_) => {}
        }
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v
                .trim()
                .parse()
                .expect("the client sends a valid Content-Length");
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).is_ok()
}

/// How a response's body is delimited.
#[derive(Debug, Arbitrary)]
pub enum Framing {
    Length,
    /// A `Content-Length` that is off by this much (0 is right).
    WrongLength(i8),
    /// Chunks of these sizes (then the rest in one), with trailer fields, and with a chunk
    /// extension on every size line (RFC 9112 section 7.1.1: a recipient ignores those it does
    /// not understand).
    Chunked {
        sizes: Vec<u8>,
        trailers: bool,
        extensions: bool,
    },
    /// No length: the body ends with the connection (which the fake server closes only when
    /// the input says so).
    Close,
}

impl Framing {
    /// Whether a client can tell where the body ends without the connection's end.
    pub fn is_exact(&self) -> bool {
        !matches!(self, Framing::WrongLength(d) if *d != 0) && !matches!(self, Framing::Close)
    }

    /// Appends the framing's fields, the blank line ending the head, and `body` framed.
    pub fn write(&self, out: &mut Vec<u8>, body: &[u8]) {
        match self {
            Framing::Length | Framing::WrongLength(_) => {
                let delta = match self {
                    Framing::WrongLength(d) => i64::from(*d),
                    _ => 0,
                };
                let len = (body.len() as i64 + delta).max(0);
                out.extend_from_slice(format!("Content-Length: {len}\r\n\r\n").as_bytes());
                out.extend_from_slice(body);
            }
            Framing::Chunked {
                sizes,
                trailers,
                extensions,
            } => {
                out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                let ext = if *extensions { " ; a=1;b=\"x;y\"" } else { "" };
                let mut rest = body;
                for &s in sizes.iter().take(32) {
                    let s = usize::from(s).min(rest.len());
                    if s == 0 {
                        break;
                    }
                    out.extend_from_slice(format!("{s:x}{ext}\r\n").as_bytes());
                    out.extend_from_slice(&rest[..s]);
                    out.extend_from_slice(b"\r\n");
                    rest = &rest[s..];
                }
                if !rest.is_empty() {
                    out.extend_from_slice(format!("{:X}{ext}\r\n", rest.len()).as_bytes());
                    out.extend_from_slice(rest);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(format!("0{ext}\r\n").as_bytes());
                if *trailers {
                    out.extend_from_slice(b"X-Trailer: 1\r\n");
                }
                out.extend_from_slice(b"\r\n");
            }
            Framing::Close => {
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(body);
            }
        }
    }
}
