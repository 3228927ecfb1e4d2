//! Connections: the accept loop, the request-head check that runs before async-h1 (header
//! timeout, malformed requests, HTTP/1.0), and the shutdown.
//!
//! async-h1 answers a malformed request, an HTTP/1.0 request or a non-ASCII header with no
//! response at all (and panics on the last one), so every request head is read and checked
//! here first. A head that passes is handed to async-h1 by replaying its bytes.

use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_h1::server::{ConnectionStatus, Server};
use async_io::{Async, Timer};
use futures_lite::future::{self, FutureExt as _};
use futures_lite::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use http_types::{Body, Method, Request, Response, StatusCode, Url};

use crate::app::App;
use crate::config::ServeArgs;
use crate::routes::{self, ConnInfo};
use crate::stream::EventStream;
use crate::tls::{self, TlsAcceptor};

/// How long a client may take to send a request's headers (the Go program's
/// `ReadHeaderTimeout`); an idle keep-alive connection is closed after as long.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest request head accepted (async-h1's own limit).
const MAX_HEAD: usize = 8 * 1024;
/// How long a shutdown waits for streams to end before exiting anyway (a client that stopped
/// reading never lets its stream end); well inside the promised two seconds.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// Runs the server until SIGINT or SIGTERM. `on_listening` gets the bound address once the
/// socket listens (the binary prints it).
pub fn run(args: ServeArgs, on_listening: impl FnOnce(SocketAddr)) -> io::Result<()> {
    args.check()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(tls::acceptor(cert, key)?),
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let listener = Async::<TcpListener>::bind(args.addr)?;
    let addr = listener.get_ref().local_addr()?;
    // Before `on_listening`, so a test that sees the address can already signal us.
    let mut signals =
        async_signal::Signals::new([async_signal::Signal::Term, async_signal::Signal::Int])?;
    let threads = match args.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let tick = args.tick;
    let app = Arc::new(App::new(args)?);
    let ex = Arc::new(smol::Executor::new());
    let (stop_tx, stop_rx) = async_channel::bounded::<()>(1);
    let mut workers = Vec::new();
    for i in 1..threads {
        let ex = Arc::clone(&ex);
        let stop_rx = stop_rx.clone();
        workers.push(
            std::thread::Builder::new()
                .name(format!("ssecast-{i}"))
                .spawn(move || {
                    // Runs tasks until the stop channel closes.
                    let _ = smol::block_on(ex.run(stop_rx.recv()));
                })?,
        );
    }
    on_listening(addr);
    let every = |d: Duration| {
        if d.is_zero() {
            "off".to_owned()
        } else {
            format!("{d:?}")
        }
    };
    log::info!(
        "ssecast {} listening on {scheme}://{addr} (tick {}, keepalive {}, queue {}, overflow {:?}, {threads} threads, www {})",
        env!("CARGO_PKG_VERSION"),
        every(app.args.tick),
        every(app.args.keepalive),
        app.args.queue,
        app.args.overflow,
        app.args.www_dir().display(),
    );
    if !app.args.www_dir().is_dir() {
        log::warn!(
            "{} is not a directory: static files will be 404",
            app.args.www_dir().display()
        );
    }
    smol::block_on(drive(&ex, async {
        ex.spawn(Arc::clone(&app).run_timer()).detach();
        if let Some(cluster) = &app.cluster {
            ex.spawn(Arc::clone(cluster).run_reader(Arc::clone(&app)))
                .detach();
        }
        ex.spawn(Arc::clone(&app).run_waker()).detach();
        if !tick.is_zero() {
            ex.spawn(Arc::clone(&app).run_ticker(tick)).detach();
        }
        let stopped = async {
            use futures_lite::StreamExt as _;
            match signals.next().await {
                Some(Ok(signal)) => log::info!("{signal:?} received: shutting down"),
                _ => log::info!("signal stream ended: shutting down"),
            }
        };
        let accepting = accept_loop(&app, &ex, &listener, tls);
        future::or(stopped, accepting).await;
        drop(listener);
        app.shutdown_streams();
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        // Bounded by the grace period.
        while app.counters.open_streams.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
            Timer::after(Duration::from_millis(10)).await;
        }
    }));
    drop(stop_tx);
    for worker in workers {
        let _ = worker.join();
    }
    let left = app.counters.open_streams.load(Ordering::Relaxed);
    log::info!("stopped ({left} streams still open at exit)");
    Ok(())
}

/// Tasks run between two looks at the sockets while tasks are waiting.
const TASKS_PER_POLL: usize = 16;

/// Runs `main` and `ex`'s tasks on this thread. Like `ex.run(main)`, but it returns to
/// `block_on` (which then polls the sockets without blocking) every [`TASKS_PER_POLL`] tasks
/// instead of every 200, so a request that arrives during a long fan-out is noticed soon.
async fn drive<T>(ex: &smol::Executor<'_>, main: impl Future<Output = T>) -> T {
    let tasks = async {
        loop {
            let mut ran = 0;
            while ran < TASKS_PER_POLL && ex.try_tick() {
                ran += 1;
            }
            if ran < TASKS_PER_POLL {
                // Nothing left to run: sleep until a task is woken.
                ex.tick().await;
            } else {
                future::yield_now().await;
            }
        }
    };
    future::or(main, tasks).await
}

async fn accept_loop(
    app: &Arc<App>,
    ex: &Arc<smol::Executor<'static>>,
    listener: &Async<TcpListener>,
    tls: Option<TlsAcceptor>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                app.counters.accepted.fetch_add(1, Ordering::Relaxed);
                // Small frames must leave at once, not wait for Nagle.
                let _ = stream.get_ref().set_nodelay(true);
                let socket = Arc::new(stream);
                let info = ConnInfo {
                    peer,
                    socket: Some(Arc::clone(&socket)),
                };
                let app = Arc::clone(app);
                let tls = tls.clone();
                ex.spawn(async move {
                    let serving = async {
                        match tls {
                            // Boxed: a plain connection's task stays as small as it was.
                            Some(tls) => Box::pin(serve_tls(&app, tls, socket, &info)).await,
                            None => serve_connection(&app, TcpConn(socket), &info).await,
                        }
                    };
                    // A panic while serving one connection ends that connection only.
                    let served = std::panic::AssertUnwindSafe(serving).catch_unwind().await;
                    if served.is_err() {
                        log::error!("panic while serving {}; connection closed", info.peer);
                    }
                })
                .detach();
            }
            Err(e) => {
                // Usually out of file descriptors: wait instead of spinning.
                log::error!("accept failed: {e}");
                Timer::after(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Serves a connection over TLS once its handshake is done, within [`HEADER_TIMEOUT`]. A
/// client that speaks plain HTTP to the port is told so in plain HTTP.
async fn serve_tls(
    app: &Arc<App>,
    tls: TlsAcceptor,
    socket: Arc<Async<TcpStream>>,
    info: &ConnInfo,
) {
    let handshake = async {
        let mut first = [0u8; 1];
        if !matches!(socket.peek(&mut first).await, Ok(1)) {
            return Err(false);
        }
        if first[0] != tls::HANDSHAKE_RECORD {
            return Err(true);
        }
        tls.accept(TcpConn(Arc::clone(&socket))).await.map_err(|e| {
            app.counters.bad_requests.fetch_add(1, Ordering::Relaxed);
            log::debug!("{}: TLS handshake failed: {e}", info.peer);
            false
        })
    };
    let timeout = async {
        Timer::after(HEADER_TIMEOUT).await;
        Err(false)
    };
    match handshake.or(timeout).await {
        Ok(stream) => serve_connection(app, stream, info).await,
        Err(true) => {
            app.counters.bad_requests.fetch_add(1, Ordering::Relaxed);
            let reason = "this port speaks HTTPS: use an https:// URL";
            let refusal = routes::text(StatusCode::BadRequest, reason);
            let _ = write_plain(&Conn::new(TcpConn(socket)), refusal, false).await;
        }
        Err(false) => {}
    }
}

/// A TCP socket shared with the subscriber's slot in the hub (which shuts it down to end a
/// blocked write).
#[derive(Debug, Clone)]
pub(crate) struct TcpConn(pub(crate) Arc<Async<TcpStream>>);

impl AsyncRead for TcpConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TcpConn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self.0).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut &*self.0).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut &*self.0).poll_close(cx)
    }
}

/// The client's stream (plain TCP, TLS or in memory) as async-h1 and this module see it:
/// first the bytes already read by the head check, then the stream. Clones share it
/// (async-h1 wants a `Clone` connection); they all live in the connection's one task and the
/// lock is held only inside a poll, so it is never contended. Counts the bytes written, to
/// know whether async-h1 answered before failing. (The client tools use it for async-h1's
/// `Clone` connection too.)
pub(crate) struct Conn<S> {
    shared: Arc<Shared<S>>,
}

struct Shared<S> {
    io: Mutex<Io<S>>,
    written: AtomicU64,
}

struct Io<S> {
    stream: S,
    replay: Replay,
}

/// What the reader of a [`Conn`] gets before, and from, the stream.
#[derive(Debug, Default)]
struct Replay {
    bytes: Vec<u8>,
    pos: usize,
    /// How many bytes may still come from the stream (`None`: any). async-h1 reads through a
    /// buffer it drops after each request, so it must never read past the request's end: a
    /// pipelined request behind it would be lost.
    budget: Option<u64>,
}

impl<S> Clone for Conn<S> {
    fn clone(&self) -> Self {
        Conn {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S> Conn<S> {
    pub(crate) fn new(stream: S) -> Conn<S> {
        Conn {
            shared: Arc::new(Shared {
                io: Mutex::new(Io {
                    stream,
                    replay: Replay::default(),
                }),
                written: AtomicU64::new(0),
            }),
        }
    }

    fn io(&self) -> MutexGuard<'_, Io<S>> {
        // Poisoned only by a panic inside a poll, which ends this connection's task anyway.
        self.shared
            .io
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn set_replay(&self, bytes: Vec<u8>, budget: Option<u64>) {
        self.io().replay = Replay {
            bytes,
            pos: 0,
            budget,
        };
    }

    fn written(&self) -> u64 {
        self.shared.written.load(Ordering::Relaxed)
    }

    fn count_written(&self, polled: &Poll<io::Result<usize>>) {
        if let Poll::Ready(Ok(n)) = polled {
            self.shared.written.fetch_add(*n as u64, Ordering::Relaxed);
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Conn<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut io = self.io();
        let Io { stream, replay } = &mut *io;
        let Replay { bytes, pos, budget } = replay;
        if *pos < bytes.len() {
            let n = (bytes.len() - *pos).min(buf.len());
            buf[..n].copy_from_slice(&bytes[*pos..*pos + n]);
            *pos += n;
            if *pos == bytes.len() {
                // Replayed in full: free it, it would otherwise live as long as the
                // connection (an idle subscriber's, for hours).
                *bytes = Vec::new();
                *pos = 0;
            }
            return Poll::Ready(Ok(n));
        }
        let Some(left) = *budget else {
            return Pin::new(stream).poll_read(cx, buf);
        };
        // The request ends here: what follows belongs to the next one.
        let max = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if max == 0 {
            return Poll::Ready(Ok(0));
        }
        let polled = Pin::new(stream).poll_read(cx, &mut buf[..max]);
        if let Poll::Ready(Ok(n)) = polled {
            *budget = Some(left - n as u64);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Conn<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io().stream).poll_write(cx, buf);
        self.count_written(&polled);
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io().stream).poll_write_vectored(cx, bufs);
        self.count_written(&polled);
        polled
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io().stream).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io().stream).poll_close(cx)
    }
}

/// A request head that passed the checks.
#[derive(Debug)]
struct Head {
    /// Everything read so far: the head and possibly the start of the body.
    bytes: Vec<u8>,
    /// Length of the head within `bytes`.
    head_len: usize,
    http10: bool,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    content_length: Option<u64>,
    /// `Transfer-Encoding: chunked`.
    chunked: bool,
}

impl Head {
    /// Whether this is `GET /events`, which is served without async-h1.
    fn is_events(&self) -> bool {
        self.method == "GET" && target_path(&self.path) == "/events"
    }

    /// Splits what was read into this request's bytes, what the reader may still take from
    /// the socket for its body (`None`: any, for a chunked body), and the bytes of the
    /// requests pipelined behind it.
    fn split(self) -> (Vec<u8>, Option<u64>, Vec<u8>) {
        let mut bytes = self.bytes;
        if self.chunked {
            // Its end is known only by decoding it; the connection closes after it.
            return (bytes, None, Vec::new());
        }
        let end = (self.head_len as u64).saturating_add(self.content_length.unwrap_or(0));
        let have = bytes.len() as u64;
        if end >= have {
            return (bytes, Some(end - have), Vec::new());
        }
        // `end < have`, a usize.
        let next = bytes.split_off(usize::try_from(end).unwrap_or(bytes.len()));
        (bytes, Some(0), next)
    }
}

/// The path of a request target (origin or absolute form), without the query.
fn target_path(target: &str) -> &str {
    let path = match target.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => target,
    };
    path.split(['?', '#']).next().unwrap_or(path)
}

/// Why a request head was refused.
#[derive(Debug)]
enum HeadError {
    /// The connection closed (or stayed silent past the timeout) before a request began.
    Idle,
    /// An answer, then close.
    Refuse(StatusCode, String),
}

fn refuse(status: StatusCode, reason: impl Into<String>) -> HeadError {
    HeadError::Refuse(status, reason.into())
}

/// Serves the requests that arrive on `stream` (plain TCP, TLS or in memory) until the
/// connection closes. `info` says who the peer is, and which socket to shut down if any.
pub(crate) async fn serve_connection<S>(app: &Arc<App>, stream: S, info: &ConnInfo)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Boxed: the requests before an event stream (heads, async-h1, answers) are freed when it
    // starts, so an idle subscriber's task holds the stream's own state and nothing more.
    let Some((mut conn, events, head, chunked)) = Box::pin(serve_requests(app, stream, info)).await
    else {
        return;
    };
    let socket = info.socket.as_deref();
    if let Err(e) = events.serve(&mut conn, socket, head, chunked).await {
        log::debug!("{}: event stream ended: {e}", info.peer);
    }
}

/// Serves requests until the connection closes or one of them opens an event stream, which
/// is returned with its connection, response head and whether it is chunked.
async fn serve_requests<S>(
    app: &Arc<App>,
    stream: S,
    info: &ConnInfo,
) -> Option<(Conn<S>, EventStream, String, bool)>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut conn = Conn::new(stream);
    // Bytes of pipelined requests read along with the previous one.
    let mut next = Vec::new();
    // One request per iteration; ends when a response closes the connection or at EOF.
    loop {
        // Boxed here and below: rare or short states, kept out of the future's size.
        let head = match Box::pin(read_head(app, &mut conn, std::mem::take(&mut next))).await {
            Ok(head) => head,
            Err(HeadError::Idle) => return None,
            Err(HeadError::Refuse(status, reason)) => {
                log::debug!("{}: {status} {reason}", info.peer);
                app.counters.bad_requests.fetch_add(1, Ordering::Relaxed);
                let _ = write_plain(&conn, routes::text(status, reason), false).await;
                return None;
            }
        };
        if head.http10 || head.is_events() {
            let (events, head, chunked) = Box::pin(answer_direct(app, info, &conn, head)).await?;
            return Some((conn, events, head, chunked));
        }
        let chunked = head.chunked;
        let (request, budget, rest) = head.split();
        conn.set_replay(request, budget);
        next = rest;
        let before = conn.written();
        let endpoint = |req: Request| {
            let app = Arc::clone(app);
            let info = info.clone();
            async move {
                let mut res = routes::handle(&app, req, &info).await;
                if chunked {
                    // Where a chunked body ends is known only to async-h1's decoder.
                    res.insert_header("Connection", "close");
                }
                Ok(res)
            }
        };
        // async-h1's own header timeout (60 s, not configurable) never fires: the head has
        // arrived already.
        let served = Box::pin(Server::new(conn.clone(), endpoint).accept_one()).await;
        match served {
            Ok(ConnectionStatus::KeepAlive) => {}
            Ok(ConnectionStatus::Close) => return None,
            Err(e) => {
                // Nothing was written: async-h1 refused the request without answering.
                if conn.written() == before {
                    app.counters.bad_requests.fetch_add(1, Ordering::Relaxed);
                    let reason = e
                        .to_string()
                        .lines()
                        .next()
                        .unwrap_or("bad request")
                        .to_owned();
                    let _ = write_plain(&conn, routes::text(StatusCode::BadRequest, reason), false)
                        .await;
                } else {
                    // Usually a client that left mid-response: not an error of ours.
                    log::debug!("{}: connection ended: {e}", info.peer);
                }
                return None;
            }
        }
    }
}

/// Reads and checks one request head, within [`HEADER_TIMEOUT`]. `bytes` holds what was
/// already read of it (pipelined behind the previous request).
async fn read_head<S>(app: &App, conn: &mut Conn<S>, mut bytes: Vec<u8>) -> Result<Head, HeadError>
where
    S: AsyncRead + Unpin,
{
    // Straight from the stream: the previous request's bounds are done with.
    conn.set_replay(Vec::new(), None);
    // Bytes actually received: `bytes` has spare zeroes while a read is pending.
    let mut received = bytes.len();
    let reading = async {
        // What was searched for the head's end already.
        let mut filled = 0;
        // Bounded: every pass adds bytes, and the head is capped at MAX_HEAD.
        loop {
            if filled < bytes.len() {
                let scan_from = filled.saturating_sub(3);
                if let Some(end) = find(&bytes[scan_from..], b"\r\n\r\n") {
                    return Ok(scan_from + end + 4);
                }
                if find(&bytes, b"\n\n").is_some() {
                    return Err(refuse(
                        StatusCode::BadRequest,
                        "request lines must end with CRLF",
                    ));
                }
                if bytes.len() > MAX_HEAD {
                    return Err(refuse(
                        StatusCode::RequestHeaderFieldsTooLarge,
                        format!("request head larger than {MAX_HEAD} bytes"),
                    ));
                }
            }
            // Read straight into the buffer: no scratch array in the connection's task, which
            // lives (at its largest state's size) as long as the connection.
            filled = bytes.len();
            bytes.resize(filled + 1024, 0);
            let read = conn.read(&mut bytes[filled..]).await;
            bytes.truncate(filled + *read.as_ref().unwrap_or(&0));
            received = bytes.len();
            let n = read.map_err(|_| HeadError::Idle)?;
            if n == 0 {
                return Err(if bytes.is_empty() {
                    HeadError::Idle
                } else {
                    refuse(
                        StatusCode::BadRequest,
                        "connection closed inside the request head",
                    )
                });
            }
        }
    };
    let timeout = async {
        Timer::after(HEADER_TIMEOUT).await;
        Err(HeadError::Idle)
    };
    let head_len = reading.or(timeout).await.map_err(|e| match e {
        // A request was begun but not finished in time.
        HeadError::Idle if received > 0 => refuse(
            StatusCode::RequestTimeout,
            "request head not received within 5 s",
        ),
        e => e,
    })?;
    if head_len > MAX_HEAD {
        return Err(refuse(
            StatusCode::RequestHeaderFieldsTooLarge,
            format!("request head larger than {MAX_HEAD} bytes"),
        ));
    }
    check_head(app, bytes, head_len)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Everything async-h1 would refuse without an answer (or panic on), refused with one.
fn check_head(app: &App, bytes: Vec<u8>, head_len: usize) -> Result<Head, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(&bytes[..head_len]) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => {
            return Err(refuse(StatusCode::BadRequest, "incomplete request head"))
        }
        Err(e) => {
            return Err(refuse(
                StatusCode::BadRequest,
                format!("malformed request: {e}"),
            ))
        }
    }
    let method = req.method.unwrap_or_default().to_owned();
    let path = req.path.unwrap_or_default().to_owned();
    let http10 = match req.version {
        Some(1) => false,
        Some(0) => true,
        _ => {
            return Err(refuse(
                StatusCode::HttpVersionNotSupported,
                "only HTTP/1.1 and HTTP/1.0 are supported",
            ))
        }
    };
    if method.parse::<Method>().is_err() {
        return Err(refuse(
            StatusCode::NotImplemented,
            format!("unknown method {method:?}"),
        ));
    }
    // Origin form (`/path`), or the absolute form (`http://host/path`) servers must accept.
    let absolute = path.starts_with("http://") || path.starts_with("https://");
    if !path.starts_with('/') && !absolute {
        return Err(refuse(
            StatusCode::BadRequest,
            "the request target must be a path or an absolute URL",
        ));
    }
    let mut list = Vec::with_capacity(req.headers.len());
    let mut host = None;
    let mut content_length = None;
    let mut chunked = false;
    for h in req.headers.iter() {
        let Some(value) = std::str::from_utf8(h.value).ok().filter(|v| v.is_ascii()) else {
            return Err(refuse(
                StatusCode::BadRequest,
                format!("header {} is not ASCII", h.name),
            ));
        };
        if h.name.eq_ignore_ascii_case("host") {
            host = Some(value.to_owned());
        } else if h.name.eq_ignore_ascii_case("content-length") {
            // Digits only (RFC 9112): `+5` or `5, 5` parse differently elsewhere, and a proxy
            // that reads another length than ours lets a request be smuggled past it.
            let digits = value.trim();
            let n: u64 = digits
                .parse()
                .ok()
                .filter(|_| digits.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| refuse(StatusCode::BadRequest, "invalid Content-Length"))?;
            if content_length.is_some_and(|m| m != n) {
                return Err(refuse(
                    StatusCode::BadRequest,
                    "conflicting Content-Length headers",
                ));
            }
            content_length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if http10 || !value.trim().eq_ignore_ascii_case("chunked") {
                return Err(refuse(
                    StatusCode::NotImplemented,
                    "only Transfer-Encoding: chunked is supported",
                ));
            }
            chunked = true;
        }
        list.push((h.name.to_owned(), value.to_owned()));
    }
    if content_length.is_some() && chunked {
        return Err(refuse(
            StatusCode::BadRequest,
            "both Content-Length and Transfer-Encoding",
        ));
    }
    if content_length.is_some_and(|n| n > app.args.max_body as u64) {
        return Err(refuse(
            StatusCode::PayloadTooLarge,
            format!("body larger than {} bytes", app.args.max_body),
        ));
    }
    if !http10 {
        let Some(host) = host else {
            return Err(refuse(StatusCode::BadRequest, "missing Host header"));
        };
        let url = if absolute {
            Url::parse(&path)
        } else {
            Url::parse(&format!("http://{host}{path}"))
        };
        if url.is_err() {
            return Err(refuse(
                StatusCode::BadRequest,
                "invalid Host or request target",
            ));
        }
    }
    Ok(Head {
        bytes,
        head_len,
        http10,
        method,
        path,
        headers: list,
        content_length,
        chunked,
    })
}

/// Answers `head`'s request without async-h1, for the connection to close after it: an
/// HTTP/1.0 request (async-h1 would not answer it), answered without chunked encoding, the
/// body delimited by Content-Length or by closing; and every event stream, returned with its
/// response head and whether it is chunked for [`EventStream::serve`], which writes it
/// straight to the connection (no body machinery, no copy buffer per subscriber). Any other
/// response is written here.
async fn answer_direct<S>(
    app: &Arc<App>,
    info: &ConnInfo,
    conn: &Conn<S>,
    head: Head,
) -> Option<(EventStream, String, bool)>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let host = head
        .headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("host"))
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| "localhost".into());
    let url = if head.path.starts_with('/') {
        Url::parse(&format!("http://{host}{}", head.path))
            .or_else(|_| Url::parse(&format!("http://localhost{}", head.path)))
    } else {
        Url::parse(&head.path)
    };
    let (Ok(url), Ok(method)) = (url, head.method.parse::<Method>()) else {
        let _ = write_plain(
            conn,
            routes::text(StatusCode::BadRequest, "invalid request target"),
            false,
        )
        .await;
        return None;
    };
    let mut req = Request::new(method, url);
    for (name, value) in &head.headers {
        req.append_header(name.as_str(), value.as_str());
    }
    let rest = head.bytes[head.head_len..].to_vec();
    let http10 = head.http10;
    let content_length = head.content_length;
    conn.set_replay(rest, None);
    if let Some(len) = content_length {
        let body = futures_lite::io::BufReader::new(conn.clone().take(len));
        req.set_body(Body::from_reader(body, usize::try_from(len).ok()));
    }
    let mut res = routes::handle(app, req, info).await;
    if let Some(stream) = res.ext_mut().remove::<EventStream>() {
        let framing = if http10 {
            ""
        } else {
            "Transfer-Encoding: chunked\r\n"
        };
        return Some((stream, response_head(&mut res, framing), !http10));
    }
    if let Err(e) = write_plain(conn, res, method == Method::Head).await {
        log::debug!("{}: response ended: {e}", info.peer);
    }
    None
}

/// Writes `res` with `Connection: close` and no chunked encoding (the body ends when the
/// connection does), then closes. Used for HTTP/1.0 and for refusals.
/// (Boxed: it is rare, and would otherwise make every connection's task larger.)
fn write_plain<S>(
    conn: &Conn<S>,
    mut res: Response,
    head_only: bool,
) -> Pin<Box<impl Future<Output = io::Result<()>> + '_>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    Box::pin(async move {
        let mut out = conn.clone();
        let framing = match res.len() {
            Some(len) => format!("Content-Length: {len}\r\n"),
            None => String::new(),
        };
        let head = response_head(&mut res, &framing);
        out.write_all(head.as_bytes()).await?;
        if !head_only {
            let body = res.take_body();
            futures_lite::io::copy(body, &mut out).await?;
        }
        out.flush().await?;
        // Ends the sending side (after TLS's close_notify), so the client sees the end.
        let _ = out.close().await;
        linger(&mut out).await;
        Ok(())
    })
}

/// The head of `res` for a connection that closes after it: the status line, its headers
/// (sorted), `framing` (the line saying how the body is delimited, if any) and
/// `Connection: close`.
fn response_head(res: &mut Response, framing: &str) -> String {
    let status = res.status();
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        u16::from(status),
        status.canonical_reason()
    );
    res.remove_header("Connection");
    res.remove_header("Transfer-Encoding");
    res.remove_header("Content-Length");
    let mut names: Vec<_> = res
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.clone()))
        .collect();
    names.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, values) in names {
        for value in values.iter() {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str(framing);
    head.push_str("Connection: close\r\n\r\n");
    head
}

/// Reads and discards what the client still sends (bounded in bytes and time) before the
/// socket is dropped: closing with unread input sends a reset, which can destroy the answer
/// before the client reads it.
async fn linger<S: AsyncRead + Unpin>(conn: &mut Conn<S>) {
    conn.set_replay(Vec::new(), None);
    let drain = async {
        let mut scratch = [0u8; 4096];
        let mut left: usize = 256 * 1024;
        while left > 0 {
            match conn.read(&mut scratch).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    drain
        .or(async {
            Timer::after(Duration::from_secs(1)).await;
        })
        .await;
}
