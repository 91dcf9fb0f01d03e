//! The HTTP side: hyper 1.x HTTP/1.1 connections on a current-thread tokio runtime.

use std::convert::Infallible;
use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Sleep;

use super::compression::{accepts_gzip, Gzipper};
use super::{ExpositionSource, ServerConfig, CONTENT_TYPE};

/// The server's self-observation counters.
#[derive(Default)]
pub(crate) struct Stats {
    pub(crate) scrapes: AtomicU64,
    pub(crate) scrape_errors: AtomicU64,
    pub(crate) connection_errors: AtomicU64,
    pub(crate) connections_accepted: AtomicU64,
    pub(crate) active_connections: AtomicU64,
    pub(crate) last_encode_nanos: AtomicU64,
    pub(crate) last_encode_bytes: AtomicU64,
    pub(crate) last_response_bytes: AtomicU64,
}

/// One scrape's working memory, recycled through [`Shared::pool`].
struct Buffers {
    text: String,
    gz: Vec<u8>,
    gzipper: Option<Gzipper>,
}

/// State shared by the server thread's tasks and the [`super::MetricsServer`] handle.
pub(crate) struct Shared {
    source: Box<dyn ExpositionSource>,
    pub(crate) stats: Stats,
    pool: Mutex<Vec<Buffers>>,
    pool_cap: usize,
}

impl Shared {
    fn take_buffers(&self) -> Buffers {
        let pooled = self.pool.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut bufs = pooled.unwrap_or_else(|| Buffers {
            text: String::new(),
            gz: Vec::new(),
            gzipper: None,
        });
        bufs.text.clear();
        bufs.gz.clear();
        bufs
    }

    fn return_buffers(&self, bufs: Buffers) {
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < self.pool_cap {
            pool.push(bufs);
        }
    }
}

/// The bound, not yet running server.
pub(crate) struct Server {
    runtime: tokio::runtime::Runtime,
    listener: TcpListener,
    local_addr: SocketAddr,
    config: ServerConfig,
    shared: Arc<Shared>,
}

impl Server {
    pub(crate) fn bind(
        config: ServerConfig,
        source: Box<dyn ExpositionSource>,
    ) -> io::Result<(Server, Arc<Shared>)> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        let std_listener = std::net::TcpListener::bind(config.addr)?;
        std_listener.set_nonblocking(true)?;
        let local_addr = std_listener.local_addr()?;
        let listener = {
            let _guard = runtime.enter();
            TcpListener::from_std(std_listener)?
        };
        let shared = Arc::new(Shared {
            source,
            stats: Stats::default(),
            pool: Mutex::new(Vec::new()),
            pool_cap: config.max_connections.min(8),
        });
        let server = Server {
            runtime,
            listener,
            local_addr,
            config,
            shared: Arc::clone(&shared),
        };
        Ok((server, shared))
    }

    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` turns true (or its sender is dropped); runs on the server thread.
    pub(crate) fn run(self, shutdown: watch::Receiver<bool>) {
        let Server {
            runtime,
            listener,
            config,
            shared,
            ..
        } = self;
        runtime.block_on(serve(listener, config, shared, shutdown));
        // Dropping the runtime drops any connection task still left, closing its socket.
        drop(runtime);
    }
}

async fn wait_for_shutdown(mut rx: watch::Receiver<bool>) {
    loop {
        if *rx.borrow_and_update() {
            return;
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// Runs `f` unless `shutdown` completes first (then `None`).
async fn unless_shutdown<S: Future<Output = ()>, F: Future>(
    mut shutdown: Pin<&mut S>,
    f: F,
) -> Option<F::Output> {
    let mut f = pin!(f);
    poll_fn(move |cx| {
        if shutdown.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        f.as_mut().poll(cx).map(Some)
    })
    .await
}

async fn serve(
    listener: TcpListener,
    config: ServerConfig,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(config.read_timeout)
        .max_header_size(config.max_request_bytes)
        .max_buf_size(config.max_request_bytes.max(8192))
        .keep_alive(true);
    let builder = Arc::new(builder);
    let permits = Arc::new(Semaphore::new(config.max_connections));
    let mut tasks = JoinSet::new();
    let mut stop = pin!(wait_for_shutdown(shutdown.clone()));
    loop {
        while let Some(done) = tasks.try_join_next() {
            if done.is_err() {
                shared
                    .stats
                    .connection_errors
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        let next = unless_shutdown(stop.as_mut(), async {
            let permit = Arc::clone(&permits).acquire_owned().await;
            (permit, listener.accept().await)
        });
        let Some((permit, accepted)) = next.await else {
            break;
        };
        let Ok(permit) = permit else {
            break; // the semaphore is never closed
        };
        match accepted {
            Ok((stream, _peer)) => {
                shared
                    .stats
                    .connections_accepted
                    .fetch_add(1, Ordering::Relaxed);
                shared
                    .stats
                    .active_connections
                    .fetch_add(1, Ordering::Relaxed);
                let conn = Connection {
                    shared: Arc::clone(&shared),
                    _permit: permit,
                };
                tasks.spawn(conn.serve(
                    stream,
                    Arc::clone(&builder),
                    config.read_timeout,
                    config.write_timeout,
                    shutdown.clone(),
                ));
            }
            Err(_) => {
                // E.g. EMFILE: back off instead of spinning; the error is per-connection.
                shared
                    .stats
                    .connection_errors
                    .fetch_add(1, Ordering::Relaxed);
                drop(permit);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    // Stop accepting: close the listening socket first.
    drop(listener);
    // Connection tasks saw the same shutdown signal and close after their current response.
    let drain = async { while tasks.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(config.shutdown_timeout, drain).await;
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
}

/// One accepted connection; holds its connection-limit permit until dropped.
struct Connection {
    shared: Arc<Shared>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.shared
            .stats
            .active_connections
            .fetch_sub(1, Ordering::Relaxed);
    }
}

impl Connection {
    async fn serve(
        self,
        stream: TcpStream,
        builder: Arc<http1::Builder>,
        read_timeout: Duration,
        write_timeout: Duration,
        shutdown: watch::Receiver<bool>,
    ) {
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::default());
        let io = TokioIo::new(TimedIo::new(
            stream,
            read_timeout,
            write_timeout,
            Arc::clone(&activity),
        ));
        let shared = Arc::clone(&self.shared);
        let seen = Arc::clone(&activity);
        let service = service_fn(move |req| {
            seen.request_started();
            std::future::ready(Ok::<_, Infallible>(handle(&shared, &req)))
        });
        let mut conn = pin!(builder.serve_connection(io, service));
        let mut stop = pin!(wait_for_shutdown(shutdown));
        let mut stopping = false;
        let result = poll_fn(|cx| {
            if !stopping && stop.as_mut().poll(cx).is_ready() {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            conn.as_mut().poll(cx)
        })
        .await;
        if let Err(err) = result {
            // A keep-alive connection that sat idle until the read timeout is closed on
            // purpose (hyper reports it as a header timeout): not an error.
            let read_timeout = err.is_timeout() || activity.read_timed_out.load(Ordering::Relaxed);
            if !(read_timeout && activity.idle()) {
                self.shared
                    .stats
                    .connection_errors
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// What one connection's socket has seen, to tell an idle keep-alive expiry from a stall.
#[derive(Default)]
struct Activity {
    bytes_read: AtomicU64,
    bytes_read_at_last_request: AtomicU64,
    read_timed_out: std::sync::atomic::AtomicBool,
}

impl Activity {
    fn request_started(&self) {
        let read = self.bytes_read.load(Ordering::Relaxed);
        self.bytes_read_at_last_request
            .store(read, Ordering::Relaxed);
    }

    /// No bytes arrived since the last request was dispatched (or since connecting).
    fn idle(&self) -> bool {
        self.bytes_read.load(Ordering::Relaxed)
            == self.bytes_read_at_last_request.load(Ordering::Relaxed)
    }
}

fn plain(status: StatusCode, body: &'static str) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::new(Chunk::Static(Bytes::from_static(
        body.as_bytes(),
    ))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn handle(shared: &Arc<Shared>, req: &Request<Incoming>) -> Response<ResponseBody> {
    if req.uri().path() != "/metrics" {
        return plain(
            StatusCode::NOT_FOUND,
            "Not Found: the exposition is at /metrics\n",
        );
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n");
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let gzip = accepts_gzip(
        req.headers()
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .map(HeaderValue::as_bytes),
    );
    let stats = &shared.stats;
    let mut bufs = shared.take_buffers();
    let started = Instant::now();
    let encoded = catch_unwind(AssertUnwindSafe(|| {
        shared.source.encode_into(&mut bufs.text);
    }));
    let took = started.elapsed();
    if encoded.is_err() {
        stats.scrape_errors.fetch_add(1, Ordering::Relaxed);
        shared.return_buffers(bufs);
        return plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the exposition source failed\n",
        );
    }
    stats.last_encode_nanos.store(
        u64::try_from(took.as_nanos()).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
    stats
        .last_encode_bytes
        .store(bufs.text.len() as u64, Ordering::Relaxed);
    if gzip {
        let gzipper = bufs.gzipper.get_or_insert_with(Gzipper::new);
        if gzipper
            .compress(bufs.text.as_bytes(), &mut bufs.gz)
            .is_err()
        {
            // Drop the compressor state: it may be mid-stream.
            bufs.gzipper = None;
            stats.scrape_errors.fetch_add(1, Ordering::Relaxed);
            shared.return_buffers(bufs);
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "gzip failed\n");
        }
    }
    stats.scrapes.fetch_add(1, Ordering::Relaxed);
    let chunk = PooledChunk {
        bufs: Some(bufs),
        gzip,
        pos: 0,
        shared: Arc::clone(shared),
    };
    stats
        .last_response_bytes
        .store(chunk.remaining() as u64, Ordering::Relaxed);
    let mut response = Response::new(ResponseBody::new(Chunk::Pooled(chunk)));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if gzip {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

/// A response body of exactly one chunk (hyper derives `Content-Length` from its size).
pub(crate) struct ResponseBody {
    chunk: Option<Chunk>,
    len: u64,
}

impl ResponseBody {
    fn new(chunk: Chunk) -> Self {
        let len = chunk.remaining() as u64;
        ResponseBody {
            chunk: Some(chunk),
            len,
        }
    }
}

impl Body for ResponseBody {
    type Data = Chunk;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Chunk>, Infallible>>> {
        Poll::Ready(self.get_mut().chunk.take().map(|c| Ok(Frame::data(c))))
    }

    fn is_end_stream(&self) -> bool {
        self.chunk.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(if self.chunk.is_some() { self.len } else { 0 })
    }
}

/// Response bytes: a static message, or an exposition in pooled buffers.
pub(crate) enum Chunk {
    Static(Bytes),
    Pooled(PooledChunk),
}

/// The pooled buffers of one scrape; they go back to the pool when hyper drops the chunk
/// (after writing it), so a steady-state scrape allocates nothing for the exposition.
pub(crate) struct PooledChunk {
    bufs: Option<Buffers>,
    gzip: bool,
    pos: usize,
    shared: Arc<Shared>,
}

impl PooledChunk {
    fn bytes(&self) -> &[u8] {
        match &self.bufs {
            Some(b) if self.gzip => &b.gz,
            Some(b) => b.text.as_bytes(),
            None => &[],
        }
    }
}

impl Drop for PooledChunk {
    fn drop(&mut self) {
        if let Some(bufs) = self.bufs.take() {
            self.shared.return_buffers(bufs);
        }
    }
}

impl Buf for PooledChunk {
    fn remaining(&self) -> usize {
        self.bytes().len() - self.pos
    }

    fn chunk(&self) -> &[u8] {
        &self.bytes()[self.pos..]
    }

    fn advance(&mut self, cnt: usize) {
        assert!(cnt <= self.remaining(), "advance past the end of the chunk");
        self.pos += cnt;
    }
}

impl Buf for Chunk {
    fn remaining(&self) -> usize {
        match self {
            Chunk::Static(b) => b.remaining(),
            Chunk::Pooled(p) => p.remaining(),
        }
    }

    fn chunk(&self) -> &[u8] {
        match self {
            Chunk::Static(b) => b.chunk(),
            Chunk::Pooled(p) => p.chunk(),
        }
    }

    fn advance(&mut self, cnt: usize) {
        match self {
            Chunk::Static(b) => b.advance(cnt),
            Chunk::Pooled(p) => p.advance(cnt),
        }
    }
}

/// A TCP stream whose reads and writes fail with `TimedOut` when one makes no progress for
/// the configured time (hyper has no write timeout of its own).
struct TimedIo {
    inner: TcpStream,
    read_timeout: Duration,
    write_timeout: Duration,
    read_deadline: Pin<Box<Sleep>>,
    read_armed: bool,
    write_deadline: Pin<Box<Sleep>>,
    write_armed: bool,
    activity: Arc<Activity>,
}

impl TimedIo {
    fn new(
        inner: TcpStream,
        read_timeout: Duration,
        write_timeout: Duration,
        activity: Arc<Activity>,
    ) -> Self {
        TimedIo {
            inner,
            read_timeout,
            write_timeout,
            read_deadline: Box::pin(tokio::time::sleep(read_timeout)),
            read_armed: false,
            write_deadline: Box::pin(tokio::time::sleep(write_timeout)),
            write_armed: false,
            activity,
        }
    }
}

/// After the inner I/O returned `Pending`: arms the deadline if needed and checks it.
fn check_deadline(
    deadline: &mut Pin<Box<Sleep>>,
    armed: &mut bool,
    timeout: Duration,
    what: &'static str,
    cx: &mut Context<'_>,
) -> Poll<io::Error> {
    if !*armed {
        deadline
            .as_mut()
            .reset(tokio::time::Instant::now() + timeout);
        *armed = true;
    }
    match deadline.as_mut().poll(cx) {
        Poll::Ready(()) => {
            *armed = false;
            Poll::Ready(io::Error::new(io::ErrorKind::TimedOut, what))
        }
        Poll::Pending => Poll::Pending,
    }
}

impl AsyncRead for TimedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                this.read_armed = false;
                let n = buf.filled().len().saturating_sub(before) as u64;
                this.activity.bytes_read.fetch_add(n, Ordering::Relaxed);
                Poll::Ready(r)
            }
            Poll::Pending => check_deadline(
                &mut this.read_deadline,
                &mut this.read_armed,
                this.read_timeout,
                "read timed out",
                cx,
            )
            .map(|e| {
                this.activity.read_timed_out.store(true, Ordering::Relaxed);
                Err(e)
            }),
        }
    }
}

impl TimedIo {
    fn write_op<T>(
        &mut self,
        cx: &mut Context<'_>,
        op: impl FnOnce(Pin<&mut TcpStream>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match op(Pin::new(&mut self.inner), cx) {
            Poll::Ready(r) => {
                self.write_armed = false;
                Poll::Ready(r)
            }
            Poll::Pending => check_deadline(
                &mut self.write_deadline,
                &mut self.write_armed,
                self.write_timeout,
                "write timed out",
                cx,
            )
            .map(Err),
        }
    }
}

impl AsyncWrite for TimedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().write_op(cx, |s, cx| s.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .write_op(cx, |s, cx| s.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().write_op(cx, |s, cx| s.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().write_op(cx, |s, cx| s.poll_shutdown(cx))
    }
}
