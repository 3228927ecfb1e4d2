//! The body of a `GET /events` response, written straight to the connection: every frame a
//! subscriber has queued goes out in one vectored write (one HTTP chunk), with no copy and no
//! buffer held while the stream is idle; and the watch that notices when its client leaves.

use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::net::TcpStream;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_io::{Async, Timer};
use futures_lite::future::Future as _;
use futures_lite::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _};
use ssecast::{Comment, Frame, SubscriberId};

use crate::app::{App, EndCause};

/// Most frames in one write: bounds the slices built for it on the stack.
const MAX_FRAMES: usize = 64;

/// One subscriber's stream of frames. Dropping it unsubscribes.
#[derive(Debug)]
pub(crate) struct EventStream {
    app: Arc<App>,
    id: SubscriberId,
    /// A comment sent first, so the client sees bytes (and the headers) at once, before the
    /// hub's `retry:` hint and the replay.
    hello: Option<Frame>,
}

/// What a stream does next.
enum Next {
    /// Write the frames taken.
    Write,
    /// End the body: the stream was ended (shutdown, overflow, write timeout).
    End,
    /// Stop: the client left.
    Gone,
}

impl EventStream {
    /// A body for subscriber `id`.
    pub(crate) fn new(app: Arc<App>, id: SubscriberId) -> Self {
        // A constant without CR or LF: cannot be refused.
        let hello = Comment::new("ssecast").map(|c| Frame::comment(&c)).ok();
        EventStream { app, id, hello }
    }

    /// Moves queued frames (at most [`MAX_FRAMES`]) into `frames`; `Pending` until the hub
    /// queues one, the stream ends or the client leaves (read from `conn` while waiting,
    /// once `input` says there may be something to read).
    fn poll_frames<C>(
        &mut self,
        cx: &mut Context<'_>,
        conn: &mut C,
        input: &mut Input<'_>,
        frames: &mut Vec<Frame>,
    ) -> Poll<Next>
    where
        C: AsyncRead + Unpin,
    {
        frames.extend(self.hello.take());
        let mut state = self.app.lock();
        if state.ended(self.id) {
            // Frames still queued are dropped: the client resumes from its Last-Event-ID.
            return Poll::Ready(Next::End);
        }
        while frames.len() < MAX_FRAMES {
            match state.hub.pop_frame(self.id) {
                Some(frame) => frames.push(frame),
                None => break,
            }
        }
        if frames.is_empty() {
            state.set_waker(self.id, cx.waker());
            drop(state);
            if input.may_be_there(cx) && client_gone(cx, conn) {
                self.app.end_stream(self.id, EndCause::ClientGone);
                return Poll::Ready(Next::Gone);
            }
            return Poll::Pending;
        }
        Poll::Ready(Next::Write)
    }

    /// Writes `head` (the response head), then every frame as it is queued, to `out` until
    /// the stream ends (by the hub, the client or the shutdown), then the end of the body.
    /// `chunked` (HTTP/1.1) frames each write as one chunk; otherwise the body ends when the
    /// connection does (HTTP/1.0). `socket` is the TCP socket under `out`, if any.
    pub(crate) async fn serve<W>(
        mut self,
        out: &mut W,
        socket: Option<&Async<TcpStream>>,
        head: String,
        chunked: bool,
    ) -> io::Result<()>
    where
        W: AsyncRead + AsyncWrite + Unpin,
    {
        let mut input = Input {
            socket,
            read_once: false,
        };
        let mut frames = Vec::new();
        let mut head = head.into_bytes();
        let timeout = Some(self.app.args.write_timeout).filter(|t| !t.is_zero());
        loop {
            match poll_fn(|cx| self.poll_frames(cx, out, &mut input, &mut frames)).await {
                Next::Write => {}
                Next::End => break,
                Next::Gone => return Ok(()),
            }
            let body: usize = frames.iter().map(Frame::len).sum();
            let written = write_chunk(out, &head, &frames, chunked, timeout).await;
            if let Err(e) = written {
                if e.kind() == io::ErrorKind::TimedOut {
                    log::debug!("{:?}: no write progress for {timeout:?}; closing", self.id);
                    self.app.end_stream(self.id, EndCause::Stalled);
                }
                return Err(e);
            }
            // Freed: it would otherwise live as long as the stream.
            head = Vec::new();
            self.app
                .counters
                .bytes_written
                .fetch_add(body as u64, Ordering::Relaxed);
            frames.clear();
            // An idle stream keeps a small vector, not the largest burst's.
            frames.shrink_to(4);
        }
        out.write_all(&head).await?;
        if chunked {
            out.write_all(b"0\r\n\r\n").await?;
        }
        out.flush().await
    }
}

/// Whether the client may have sent something. Reading the connection costs a system call
/// even when there is nothing (two layers of reads under TLS), on every idle turn of every
/// stream; after a first read, the socket's readiness, which costs none, says when to read.
struct Input<'a> {
    socket: Option<&'a Async<TcpStream>>,
    read_once: bool,
}

impl Input<'_> {
    fn may_be_there(&mut self, cx: &mut Context<'_>) -> bool {
        match self.socket {
            // Ready also after an error, which the read then reports.
            Some(socket) if self.read_once => socket.poll_readable(cx).is_ready(),
            _ => {
                self.read_once = true;
                true
            }
        }
    }
}

/// Reads and discards what the client sent (it has nothing to say on an event stream, and
/// nothing else reads the connection while the stream is written); true once it closed the
/// connection or the connection failed. Reading through the connection, not the raw socket,
/// keeps a TLS session intact and sees its `close_notify`.
fn client_gone<C>(cx: &mut Context<'_>, conn: &mut C) -> bool
where
    C: AsyncRead + Unpin,
{
    let mut scratch = [0u8; 64];
    // Bounded: a client that keeps sending is read on at its next turn.
    for _ in 0..16 {
        match Pin::new(&mut *conn).poll_read(cx, &mut scratch) {
            Poll::Pending => return false,
            Poll::Ready(Ok(0) | Err(_)) => return true,
            Poll::Ready(Ok(_)) => {}
        }
    }
    cx.waker().wake_by_ref();
    false
}

/// Writes `head` (empty after the first write) and `frames` as one chunk, or bare when not
/// `chunked`, resuming after partial writes. Fails with `TimedOut` once no byte could be
/// written for `timeout` (the client stopped reading); the timer exists only while a write
/// is blocked, so idle and flowing streams have none.
async fn write_chunk<W>(
    out: &mut W,
    head: &[u8],
    frames: &[Frame],
    chunked: bool,
    timeout: Option<Duration>,
) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    let len: usize = frames.iter().map(Frame::len).sum();
    let mut size_line = [0u8; 20];
    let size_line = if chunked {
        chunk_size_line(len, &mut size_line)
    } else {
        &[]
    };
    let end: &[u8] = if chunked { b"\r\n" } else { b"" };
    let total = head.len() + size_line.len() + len + end.len();
    let mut sent = 0;
    let mut stalled: Option<Timer> = None;
    while sent < total {
        let n = poll_fn(|cx| {
            let mut slices = [IoSlice::new(&[]); MAX_FRAMES + 3];
            let mut used = 0;
            let mut skip = sent;
            let parts = [head, size_line]
                .into_iter()
                .chain(frames.iter().map(Frame::as_bytes))
                .chain([end]);
            for part in parts {
                if skip >= part.len() {
                    skip -= part.len();
                    continue;
                }
                slices[used] = IoSlice::new(&part[skip..]);
                skip = 0;
                used += 1;
            }
            let polled = Pin::new(&mut *out).poll_write_vectored(cx, &slices[..used]);
            if polled.is_pending() {
                if let Some(limit) = timeout {
                    let timer = stalled.get_or_insert_with(|| Timer::after(limit));
                    if Pin::new(timer).poll(cx).is_ready() {
                        return Poll::Ready(Err(io::ErrorKind::TimedOut.into()));
                    }
                }
            }
            polled
        })
        .await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        stalled = None;
        sent += n;
    }
    Ok(())
}

/// `len` in hex and CRLF: the line that starts an HTTP/1.1 chunk.
fn chunk_size_line(mut len: usize, buf: &mut [u8; 20]) -> &[u8] {
    let mut digits = [0u8; 16];
    let mut n = 0;
    loop {
        digits[n] = b"0123456789ABCDEF"[len % 16];
        n += 1;
        len /= 16;
        if len == 0 {
            break;
        }
    }
    for (i, d) in digits[..n].iter().rev().enumerate() {
        buf[i] = *d;
    }
    buf[n] = b'\r';
    buf[n + 1] = b'\n';
    &buf[..n + 2]
}

impl Drop for EventStream {
    fn drop(&mut self) {
        self.app.stream_dropped(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssecast::Event;

    /// A connection that takes at most 3 bytes per write, across slices.
    struct Trickle(Vec<u8>);

    impl AsyncWrite for Trickle {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.poll_write_vectored(cx, &[IoSlice::new(buf)])
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let mut n = 0;
            for byte in bufs.iter().flat_map(|b| b.iter()).take(3) {
                self.0.push(*byte);
                n += 1;
            }
            Poll::Ready(Ok(n))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn chunk_size_lines_are_hex() {
        let check = |len: usize, expected: &str| {
            let mut buf = [0u8; 20];
            assert_eq!(chunk_size_line(len, &mut buf), expected.as_bytes(), "{len}");
        };
        check(0, "0\r\n");
        check(9, "9\r\n");
        check(10, "A\r\n");
        check(255, "FF\r\n");
        check(4096, "1000\r\n");
        check(usize::MAX, "FFFFFFFFFFFFFFFF\r\n");
    }

    #[test]
    fn every_queued_frame_goes_out_as_one_chunk_across_partial_writes() {
        let frames = vec![
            Frame::event(&Event::new("one")),
            Frame::event(&Event::new("two\nlines")),
            Frame::retry(ssecast::Millis(1500)),
        ];
        let body: Vec<u8> = frames.iter().flat_map(|f| f.as_bytes().to_vec()).collect();
        for (head, chunked) in [(&b"HEAD\r\n\r\n"[..], true), (b"", true), (b"HEAD", false)] {
            let mut out = Trickle(Vec::new());
            futures_lite::future::block_on(write_chunk(&mut out, head, &frames, chunked, None))
                .unwrap();
            let mut expected = head.to_vec();
            if chunked {
                expected.extend_from_slice(format!("{:X}\r\n", body.len()).as_bytes());
            }
            expected.extend_from_slice(&body);
            if chunked {
                expected.extend_from_slice(b"\r\n");
            }
            assert_eq!(out.0, expected, "{:?} chunked {chunked}", head);
        }
    }
}
