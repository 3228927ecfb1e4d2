//! One HTTP/1.1 connection: request heads read and checked once, bodies framed and bounded,
//! each request handed to the routes, responses written in order (pipelined requests are
//! answered in one write), until the connection closes or a request opens an event stream,
//! which [`super::stream`] then writes.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_io::Timer;
use futures_lite::future::FutureExt as _;
use futures_lite::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use super::body::Dechunker;
use super::head::{self, Framing, Head};
use super::message::{Body, ConnInfo, Field, Method, Reply, Request, Response, Status, Version};
use super::{response, stream, Refusal};
use crate::app::App;
use crate::routes;

/// How long a client may take to send a request's head (the Go program's
/// `ReadHeaderTimeout`); an idle keep-alive connection is closed after as long.
pub(crate) const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes asked of the socket per read (the buffer grows past it only for a large body).
const READ_SIZE: usize = 4096;
/// A buffer larger than this is given back once its request is done, so an idle
/// connection does not keep the memory of its largest request.
const KEEP_BUFFER: usize = 16 * 1024;
/// Responses kept for one write while pipelined requests are answered, at most.
const MAX_PENDING_OUT: usize = 64 * 1024;
/// What a closing connection reads and drops, at most, so that its answer is not destroyed
/// by a reset (closing with unread input sends one).
const LINGER_BYTES: usize = 256 * 1024;
const LINGER_TIME: Duration = Duration::from_secs(1);

/// Why no request head came.
enum NoHead {
    /// The connection closed, or stayed silent past the timeout, before a request began.
    Idle,
    /// Something came that is not a request we serve: answer, then close.
    Refused(Refusal),
}

impl From<Refusal> for NoHead {
    fn from(r: Refusal) -> NoHead {
        NoHead::Refused(r)
    }
}

/// Where a request's body is.
enum BodyAt {
    /// `len` bytes right after the head, in the read buffer.
    InBuffer(usize),
    /// De-chunked into the body buffer; its framing is gone from the read buffer.
    Dechunked,
}

/// A connection's stream and buffers, reused from one request to the next.
struct Conn<S> {
    io: S,
    /// Bytes read: `buf[pos..end]` is not consumed yet (the rest of `buf` is spare room).
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    fields: Vec<Field>,
    /// A de-chunked body.
    body: Vec<u8>,
    /// Responses not written yet.
    out: Vec<u8>,
    write_timeout: Option<Duration>,
}

/// Serves the requests that arrive on `stream` (plain TCP, TLS or in memory) until the
/// connection closes. `info` says who the peer is, and which socket to shut down if any.
pub(crate) async fn serve_connection<S>(app: &Arc<App>, stream: S, info: &ConnInfo)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Boxed: the requests before an event stream (buffers, heads, answers) are freed when it
    // starts, so an idle subscriber's task holds the stream's own state and nothing more.
    let Some((mut io, head, feed, chunked)) = Box::pin(serve_requests(app, stream, info)).await
    else {
        return;
    };
    let socket = info.socket.as_deref();
    if let Err(e) = stream::serve(&mut io, socket, feed, head, chunked, app.write_timeout()).await {
        log::debug!("{}: event stream ended: {e}", info.peer);
    }
}

/// Serves requests until the connection closes or one of them opens an event stream, which
/// is returned with the connection, the bytes to write first (earlier answers and the
/// stream's head) and whether the stream is chunked.
async fn serve_requests<S>(
    app: &Arc<App>,
    stream: S,
    info: &ConnInfo,
) -> Option<(S, Vec<u8>, crate::app::Feed, bool)>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut c = Conn {
        io: stream,
        buf: Vec::new(),
        pos: 0,
        end: 0,
        fields: Vec::new(),
        body: Vec::new(),
        out: Vec::new(),
        write_timeout: app.write_timeout(),
    };
    // One request per iteration; ends when the connection closes or a stream starts.
    loop {
        let head = match c.next_head(app.args.max_body).await {
            Ok(head) => head,
            Err(NoHead::Idle) => {
                let _ = c.flush().await;
                return None;
            }
            Err(NoHead::Refused(refusal)) => {
                c.refuse(app, info, refusal).await;
                return None;
            }
        };
        let body = match c.read_body(&head, app).await {
            Ok(body) => body,
            Err(refusal) => {
                c.refuse(app, info, refusal).await;
                return None;
            }
        };
        let reply = {
            let bytes = &c.buf[c.pos..c.pos + head.len];
            let text = |(start, end): (u32, u32)| {
                std::str::from_utf8(&bytes[start as usize..end as usize]).unwrap_or("")
            };
            let path = match text(head.path) {
                "" => "/",
                path => path,
            };
            let body = match body {
                BodyAt::InBuffer(len) => &c.buf[c.pos + head.len..c.pos + head.len + len],
                BodyAt::Dechunked => &c.body[..],
            };
            let req = Request::new(
                head.method,
                path,
                text(head.query),
                bytes,
                &c.fields,
                body,
                info,
            );
            routes::handle(app, &req).await
        };
        c.consume(
            head.len
                + match body {
                    BodyAt::InBuffer(n) => n,
                    BodyAt::Dechunked => 0,
                },
        );
        match reply {
            Reply::Response(res) => {
                let head_only = head.method == Method::Head;
                let close = head.close;
                if let Err(e) = c.answer(res, head_only, close).await {
                    log::debug!("{}: response not written: {e}", info.peer);
                    return None;
                }
                if close {
                    c.close().await;
                    return None;
                }
            }
            Reply::Events(headers, feed) => {
                let chunked = head.version == Version::Http11;
                let mut bytes = std::mem::take(&mut c.out);
                response::events_head(&mut bytes, &headers, chunked);
                return Some((c.io, bytes, feed, chunked));
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    /// Reads more bytes into the buffer (room for `want` more at least, and never less than
    /// [`READ_SIZE`]), waiting until `deadline` at most: `Ok(0)` at the end of the stream,
    /// `TimedOut` past the deadline. Unconsumed bytes may move to the buffer's start: offsets
    /// are relative to `pos`.
    async fn read_more(&mut self, deadline: Instant, want: usize) -> io::Result<usize> {
        if self.pos == self.end {
            (self.pos, self.end) = (0, 0);
        }
        let want = want.max(READ_SIZE);
        if self.buf.len() - self.end < want {
            if self.pos > 0 {
                self.buf.copy_within(self.pos..self.end, 0);
                (self.pos, self.end) = (0, self.end - self.pos);
            }
            if self.buf.len() - self.end < want {
                self.buf.resize(self.end + want, 0);
            }
        }
        let reading = self.io.read(&mut self.buf[self.end..]);
        // The timer is only set up if the read has to wait.
        let timeout = async {
            Timer::at(deadline).await;
            Err(io::ErrorKind::TimedOut.into())
        };
        let n = reading.or(timeout).await?;
        self.end += n;
        Ok(n)
    }

    /// The next request's head: already read (pipelined) or read now, within
    /// [`HEADER_TIMEOUT`]. Answers still pending are written before waiting for more.
    async fn next_head(&mut self, max_body: usize) -> Result<Head, NoHead> {
        let deadline = Instant::now() + HEADER_TIMEOUT;
        let mut scanned = 0;
        loop {
            let have = &self.buf[self.pos..self.end];
            if let Some(len) = head::find_end(have, scanned)? {
                return Ok(head::parse(&have[..len], max_body, &mut self.fields)?);
            }
            scanned = have.len();
            if !self.out.is_empty() && self.flush().await.is_err() {
                return Err(NoHead::Idle);
            }
            match self.read_more(deadline, 0).await {
                Ok(0) if scanned == 0 => return Err(NoHead::Idle),
                Ok(0) => {
                    return Err(NoHead::Refused(Refusal::new(
                        Status::BAD_REQUEST,
                        "connection closed inside the request head",
                    )))
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::TimedOut && scanned > 0 => {
                    return Err(NoHead::Refused(Refusal::new(
                        Status::REQUEST_TIMEOUT,
                        format!(
                            "request head not received within {} s",
                            HEADER_TIMEOUT.as_secs()
                        ),
                    )))
                }
                Err(_) => return Err(NoHead::Idle),
            }
        }
    }

    /// Reads the body of `head` (whatever a route will do with it), each read within
    /// `--body-timeout`; answers `100 Continue` first if the client waits for it.
    async fn read_body(&mut self, head: &Head, app: &App) -> Result<BodyAt, Refusal> {
        let timeout = app.args.body_timeout;
        let wait = |what: &str| -> Result<(), Refusal> {
            Err(Refusal::new(
                Status::REQUEST_TIMEOUT,
                format!(
                    "{what} within {} (--body-timeout)",
                    crate::config::show_duration(timeout)
                ),
            ))
        };
        if head.framing != Framing::None
            && head.expect_continue
            && head.version == Version::Http11
            && self.end == self.pos + head.len
        {
            // Only before the body, and so before any final answer to this request.
            self.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            self.flush()
                .await
                .map_err(|_| Refusal::new(Status::BAD_REQUEST, "connection failed"))?;
        }
        let deadline = || Instant::now() + timeout;
        match head.framing {
            Framing::None => Ok(BodyAt::InBuffer(0)),
            Framing::Length(len) => {
                // Bounded by --max-body, checked with the head.
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                loop {
                    let have = self.end - self.pos - head.len;
                    if have >= len {
                        break;
                    }
                    match self.read_more(deadline(), len - have).await {
                        Ok(0) => {
                            return Err(Refusal::new(
                                Status::BAD_REQUEST,
                                "the body ended before its Content-Length",
                            ))
                        }
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                            wait("the body stopped arriving: no bytes")?
                        }
                        Err(_) => {
                            return Err(Refusal::new(Status::BAD_REQUEST, "connection failed"))
                        }
                    }
                }
                Ok(BodyAt::InBuffer(len))
            }
            Framing::Chunked => {
                let mut chunks = Dechunker::new(app.args.max_body);
                self.body.clear();
                loop {
                    // `pos` may move when the buffer is compacted: offsets are from it.
                    let from = self.pos + head.len;
                    let used = chunks.feed(&self.buf[from..self.end], &mut self.body)?;
                    // What was decoded leaves the read buffer, which so keeps the head and
                    // at most a line not decoded yet: the framing (tiny chunks, long
                    // extensions) costs no memory, whatever its size against the body's.
                    self.buf.copy_within(from + used..self.end, from);
                    self.end -= used;
                    if chunks.is_done() {
                        break;
                    }
                    match self.read_more(deadline(), 0).await {
                        Ok(0) => {
                            return Err(Refusal::new(
                                Status::BAD_REQUEST,
                                "the body ended before its last chunk",
                            ))
                        }
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                            wait("the body stopped arriving: no bytes")?
                        }
                        Err(_) => {
                            return Err(Refusal::new(Status::BAD_REQUEST, "connection failed"))
                        }
                    }
                }
                Ok(BodyAt::Dechunked)
            }
        }
    }

    /// Marks the `n` bytes of a request that was answered as used.
    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.end);
        if self.pos == self.end {
            (self.pos, self.end) = (0, 0);
            if self.buf.len() > KEEP_BUFFER {
                self.buf = Vec::new();
            }
            if self.body.capacity() > KEEP_BUFFER {
                self.body = Vec::new();
            }
        }
    }

    /// Queues `res` (written now if it carries a file, or once nothing more is pipelined).
    async fn answer(&mut self, res: Response, head_only: bool, close: bool) -> io::Result<()> {
        response::write_head(&mut self.out, &res, close);
        match res.body {
            Body::Empty => {}
            Body::Bytes(bytes) if !head_only => self.out.extend_from_slice(&bytes),
            Body::Bytes(_) => {}
            Body::File(file, len) if !head_only => {
                self.flush().await?;
                let mut file = smol::Unblock::new(file).take(len);
                let copy = futures_lite::io::copy(&mut file, &mut self.io);
                // A file is written at the client's pace, bounded like every write.
                match self.write_timeout {
                    Some(limit) => {
                        copy.or(async {
                            Timer::after(limit.max(Duration::from_secs(1)) * 4).await;
                            Err(io::ErrorKind::TimedOut.into())
                        })
                        .await?;
                    }
                    None => {
                        copy.await?;
                    }
                }
            }
            Body::File(..) => {}
        }
        if self.out.len() > MAX_PENDING_OUT {
            self.flush().await?;
        }
        Ok(())
    }

    /// Writes what is pending; fails once no byte could be written for `--write-timeout`.
    async fn flush(&mut self) -> io::Result<()> {
        let out = std::mem::take(&mut self.out);
        let written = stream::write_all(&mut self.io, &out, self.write_timeout).await;
        self.out = out;
        self.out.clear();
        if self.out.capacity() > MAX_PENDING_OUT {
            self.out = Vec::new();
        }
        written?;
        self.io.flush().await
    }

    /// Answers a request refused before any route saw it, then closes.
    async fn refuse(&mut self, app: &App, info: &ConnInfo, refusal: Refusal) {
        log::debug!("{}: {} {}", info.peer, refusal.status, refusal.reason);
        app.count_bad_request();
        let res = Response::text(refusal.status, &refusal.reason);
        if self.answer(res, false, true).await.is_ok() {
            self.close().await;
        }
    }

    /// Writes what is pending, ends the sending side (after TLS's `close_notify`), and reads
    /// what the client still sends, within bounds, before the socket is dropped.
    async fn close(&mut self) {
        if self.flush().await.is_err() {
            return;
        }
        let _ = self.io.close().await;
        let drain = async {
            let mut scratch = [0u8; 4096];
            let mut left = LINGER_BYTES;
            while left > 0 {
                match self.io.read(&mut scratch).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => left = left.saturating_sub(n),
                }
            }
        };
        drain
            .or(async {
                Timer::after(LINGER_TIME).await;
            })
            .await;
    }
}

/// For refusals before a connection got to requests (a plain-HTTP client on the TLS port).
pub(crate) async fn refuse_raw<S>(io: S, app: &App, info: &ConnInfo, refusal: Refusal)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut c = Conn {
        io,
        buf: Vec::new(),
        pos: 0,
        end: 0,
        fields: Vec::new(),
        body: Vec::new(),
        out: Vec::new(),
        write_timeout: app.write_timeout(),
    };
    c.refuse(app, info, refusal).await;
}
