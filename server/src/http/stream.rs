//! An event stream on the wire, written straight to the connection: every frame a subscriber
//! has queued goes out in one vectored write (one HTTP/1.1 chunk), with no copy and no buffer
//! held while the stream is idle; and the watch that notices when its client leaves.

use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::net::TcpStream;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_io::{Async, Timer};
use futures_lite::future::Future as _;
use futures_lite::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _};
use ssecast::Frame;

use crate::app::{EndCause, Feed, Polled};

/// Most frames in one write: bounds the slices built for it on the stack.
const MAX_FRAMES: usize = 64;

/// Writes `head` (earlier answers and the stream's response head), then every frame of
/// `feed` as it is queued, to `out` until the stream ends (by the hub, the client or the
/// shutdown), then the end of the body. `chunked` (HTTP/1.1) frames each write as one chunk;
/// otherwise the body ends when the connection does (HTTP/1.0). `socket` is the TCP socket
/// under `out`, if any. A write that makes no progress for `timeout` ends the stream.
pub(crate) async fn serve<W>(
    out: &mut W,
    socket: Option<&Async<TcpStream>>,
    mut feed: Feed,
    head: Vec<u8>,
    chunked: bool,
    timeout: Option<Duration>,
) -> io::Result<()>
where
    W: AsyncRead + AsyncWrite + Unpin,
{
    let mut input = Input {
        socket,
        read_once: false,
    };
    let mut frames = Vec::new();
    let mut head = head;
    loop {
        let next = poll_fn(|cx| match feed.poll_frames(cx, &mut frames, MAX_FRAMES) {
            Poll::Ready(polled) => Poll::Ready(polled),
            Poll::Pending => {
                if input.may_be_there(cx) && client_gone(cx, out) {
                    feed.end(EndCause::ClientGone);
                    return Poll::Ready(Polled::Gone);
                }
                Poll::Pending
            }
        })
        .await;
        match next {
            Polled::Frames => {}
            Polled::Ended => break,
            Polled::Gone => return Ok(()),
        }
        let body: usize = frames.iter().map(Frame::len).sum();
        let written = write_chunk(out, &head, &frames, chunked, timeout).await;
        if let Err(e) = written {
            if e.kind() == io::ErrorKind::TimedOut {
                log::debug!("{feed:?}: no write progress for {timeout:?}; closing");
                feed.end(EndCause::Stalled);
            }
            return Err(e);
        }
        // Freed: it would otherwise live as long as the stream.
        head = Vec::new();
        feed.wrote(body);
        frames.clear();
        // An idle stream keeps a small vector, not the largest burst's.
        frames.shrink_to(4);
    }
    write_all(out, &head, timeout).await?;
    if chunked {
        write_all(out, b"0\r\n\r\n", timeout).await?;
    }
    out.flush().await
}

/// Writes `bytes`, resuming after partial writes; fails with `TimedOut` once no byte could
/// be written for `timeout`.
pub(crate) async fn write_all<W>(
    out: &mut W,
    bytes: &[u8],
    timeout: Option<Duration>,
) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    write_chunk(out, bytes, &[], false, timeout).await
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
