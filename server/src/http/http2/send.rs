//! What an HTTP/2 stream sends: [`Chunk`], the one buffer type of a connection (a shared
//! event frame, sent without a copy, or bytes), and [`send_all`], which sends DATA only as
//! flow control allows, so nothing is buffered past what the peer's windows and the
//! connection's send buffer let through.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_io::Timer;
use bytes::{Buf, Bytes};
use futures_lite::future::Future as _;
use h2::SendStream;
use ssecast::Frame;

/// A piece of a response body: part of a shared event frame (the same `Arc` every
/// subscriber holds), or bytes of an ordinary response.
#[derive(Debug)]
pub(crate) enum Chunk {
    /// `frame.as_bytes()[at..end]`.
    Frame {
        frame: Frame,
        at: usize,
        end: usize,
    },
    Bytes(Bytes),
}

impl Chunk {
    pub(crate) fn frame(frame: Frame) -> Chunk {
        let end = frame.len();
        Chunk::Frame { frame, at: 0, end }
    }

    pub(crate) fn empty() -> Chunk {
        Chunk::Bytes(Bytes::new())
    }

    /// The first `n` bytes (at most what is left), leaving the rest in `self`.
    fn split_to(&mut self, n: usize) -> Chunk {
        match self {
            Chunk::Frame { frame, at, end } => {
                let split = (*at + n).min(*end);
                let head = Chunk::Frame {
                    frame: frame.clone(),
                    at: *at,
                    end: split,
                };
                *at = split;
                head
            }
            Chunk::Bytes(bytes) => Chunk::Bytes(bytes.split_to(n.min(bytes.len()))),
        }
    }
}

impl Buf for Chunk {
    fn remaining(&self) -> usize {
        match self {
            Chunk::Frame { at, end, .. } => end - at,
            Chunk::Bytes(bytes) => bytes.len(),
        }
    }

    fn chunk(&self) -> &[u8] {
        match self {
            Chunk::Frame { frame, at, end } => frame.as_bytes().get(*at..*end).unwrap_or(&[]),
            Chunk::Bytes(bytes) => bytes,
        }
    }

    fn advance(&mut self, n: usize) {
        match self {
            Chunk::Frame { at, end, .. } => *at = (*at + n).min(*end),
            Chunk::Bytes(bytes) => bytes.advance(n.min(bytes.len())),
        }
    }
}

/// Why [`send_all`] stopped early.
#[derive(Debug)]
pub(crate) enum Stopped {
    /// No capacity came for the write timeout: the client stopped reading this stream.
    Stalled,
    /// The stream was reset or the connection failed.
    Gone,
    /// `interrupt` said so.
    Interrupted,
}

impl From<Stopped> for io::Error {
    fn from(s: Stopped) -> io::Error {
        match s {
            Stopped::Stalled => io::ErrorKind::TimedOut.into(),
            Stopped::Gone => io::ErrorKind::ConnectionReset.into(),
            Stopped::Interrupted => io::ErrorKind::Interrupted.into(),
        }
    }
}

/// Sends `chunks` (`total` bytes in all) as DATA frames, each within the capacity h2 grants
/// the stream (the peer's stream and connection windows, and the send buffer), waiting for
/// capacity when there is none. Fails with [`Stopped::Stalled`] once no capacity came for
/// `timeout` (the timer exists only while waiting), and with [`Stopped::Interrupted`] when
/// `interrupt` is ready while waiting. Nothing is sent with `END_STREAM`.
pub(crate) async fn send_all(
    stream: &mut SendStream<Chunk>,
    chunks: impl IntoIterator<Item = Chunk>,
    total: usize,
    timeout: Option<Duration>,
    mut interrupt: impl FnMut(&mut Context<'_>) -> Poll<()>,
) -> Result<(), Stopped> {
    let mut left = total;
    for mut chunk in chunks {
        while chunk.has_remaining() {
            stream.reserve_capacity(left);
            let capacity = wait_capacity(stream, timeout, &mut interrupt).await?;
            let n = capacity.min(chunk.remaining());
            let piece = if n < chunk.remaining() {
                chunk.split_to(n)
            } else {
                std::mem::replace(&mut chunk, Chunk::empty())
            };
            stream.send_data(piece, false).map_err(|_| Stopped::Gone)?;
            left = left.saturating_sub(n);
        }
    }
    Ok(())
}

/// The stream's capacity, once it is more than zero.
async fn wait_capacity(
    stream: &mut SendStream<Chunk>,
    timeout: Option<Duration>,
    interrupt: &mut impl FnMut(&mut Context<'_>) -> Poll<()>,
) -> Result<usize, Stopped> {
    let mut stalled: Option<Timer> = None;
    poll_fn(|cx| loop {
        let capacity = stream.capacity();
        if capacity > 0 {
            return Poll::Ready(Ok(capacity));
        }
        match stream.poll_capacity(cx) {
            // Capacity came (or went to another stream first): look again.
            Poll::Ready(Some(Ok(_))) => continue,
            Poll::Ready(Some(Err(_)) | None) => return Poll::Ready(Err(Stopped::Gone)),
            Poll::Pending => {}
        }
        if stream.poll_reset(cx).is_ready() {
            return Poll::Ready(Err(Stopped::Gone));
        }
        if interrupt(cx).is_ready() {
            return Poll::Ready(Err(Stopped::Interrupted));
        }
        if let Some(limit) = timeout {
            let timer = stalled.get_or_insert_with(|| Timer::after(limit));
            if Pin::new(timer).poll(cx).is_ready() {
                return Poll::Ready(Err(Stopped::Stalled));
            }
        }
        return Poll::Pending;
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssecast::Event;

    #[test]
    fn a_frame_chunk_splits_without_copying_the_frame() {
        let frame = Frame::event(&Event::new("hello world"));
        let bytes = frame.as_bytes().to_vec();
        let mut chunk = Chunk::frame(frame);
        let mut out = Vec::new();
        for n in [0, 1, 3, 1000] {
            let mut head = chunk.split_to(n);
            while head.has_remaining() {
                let c = head.chunk().to_vec();
                out.extend_from_slice(&c);
                head.advance(c.len());
            }
        }
        assert_eq!(out, bytes);
        assert_eq!(chunk.remaining(), 0);
        let mut chunk = Chunk::Bytes(Bytes::from_static(b"abcdef"));
        assert_eq!(chunk.split_to(2).chunk(), b"ab");
        chunk.advance(1);
        assert_eq!(chunk.chunk(), b"def");
    }
}
