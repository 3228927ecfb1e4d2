//! HTTP/2 (RFC 9113) on the same port as HTTP/1.1: chosen by ALPN (`h2`) over TLS, or by the
//! client's connection preface on a plain connection (prior knowledge, h2c). The `h2` crate
//! does the framing, HPACK, flow control and stream states; it is poll-based and spawns
//! nothing, and reaches the socket through tokio's I/O traits only, bridged from smol's
//! futures-io by `tokio-util`'s `compat` (no tokio runtime runs). Each stream is a task of
//! its own ([`stream`]) that sees the same [`crate::http::Request`] and answers the same
//! [`crate::http::Reply`] as over HTTP/1.1; this task drives the connection.
//!
//! Limits: `--h2-max-streams` concurrent streams (`SETTINGS_MAX_CONCURRENT_STREAMS`; h2
//! refuses a stream past it with `REFUSED_STREAM`), a 16 KiB header list (`431` past it),
//! at most [`SEND_BUFFER`] buffered per stream, a connection without streams closed after
//! [`IDLE`]. Floods: a CONTINUATION flood (CVE-2024-27316) is h2's to refuse (a header
//! block in more CONTINUATION frames than its size needs, or larger than the header-list
//! bound, ends the connection with `GOAWAY ENHANCE_YOUR_CALM`); rapid reset
//! (CVE-2023-44487) is bounded twice: h2 ends a connection with more than
//! [`PENDING_RESETS`] reset streams waiting to be accepted, and [`ConnState`] ends one
//! whose client reset most of its streams before they were answered.

mod send;
mod stream;

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_io::Timer;
use futures_lite::future::{Future as _, FutureExt as _};
use futures_lite::io::{AsyncRead, AsyncWrite};
use h2::Reason;
use tokio_util::compat::FuturesAsyncReadCompatExt as _;

use super::conn::HEADER_TIMEOUT;
use super::message::ConnInfo;
use crate::app::App;
pub(crate) use send::Chunk;

/// The connection preface of HTTP/2 with prior knowledge (RFC 9113 3.4).
pub(crate) const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// `SETTINGS_MAX_HEADER_LIST_SIZE`: twice HTTP/1.1's 8 KiB head, as HPACK counts 32 bytes
/// more per field.
const MAX_HEADER_LIST: u32 = 16 * 1024;
/// Bytes h2 may hold for one stream before the socket takes them: a stream whose client
/// does not read gets no more capacity past it (and is then stalled, like a full socket).
const SEND_BUFFER: usize = 64 * 1024;
/// Reset streams waiting to be accepted before h2 ends the connection (its own default).
const PENDING_RESETS: usize = 20;
/// Resets the server may be made to send for the client's protocol errors.
const LOCAL_RESETS: usize = 256;
/// Streams reset before their answer, past which a connection where they are the majority
/// is ended as a rapid-reset flood.
const EARLY_RESETS: u64 = 100;
/// A connection with no open stream for this long is closed (GOAWAY), like an idle
/// HTTP/1.1 keep-alive connection.
pub(crate) const IDLE: Duration = HEADER_TIMEOUT;
/// How long a closing connection may take to send its GOAWAY and last frames.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// What every stream task of a connection shares with it: the rapid-reset count.
#[derive(Debug, Default)]
pub(crate) struct ConnState {
    opened: AtomicU64,
    early_resets: AtomicU64,
}

impl ConnState {
    /// Counts a stream the client reset before it was served.
    fn early_reset(&self) {
        self.early_resets.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether the client resets streams faster than it lets them be answered: more than
    /// [`EARLY_RESETS`], and more than half of the streams it opened.
    fn flooding(&self) -> bool {
        let resets = self.early_resets.load(Ordering::Relaxed);
        resets > EARLY_RESETS && resets * 2 > self.opened.load(Ordering::Relaxed)
    }
}

/// How the connection task learns that the server stops: the sender is dropped.
pub(crate) type Stopping = async_channel::Receiver<()>;

/// Serves one HTTP/2 connection (the preface not yet read) until it closes: accepts its
/// streams, each served by a task on `ex`, and ends with a GOAWAY when the server stops,
/// when it has been idle for [`IDLE`], or when the client floods it.
pub(crate) async fn serve<S>(
    app: &Arc<App>,
    ex: &Arc<smol::Executor<'static>>,
    io: S,
    info: ConnInfo,
    stopping: Stopping,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = WriteDeadline {
        io,
        timeout: app.write_timeout(),
        timer: None,
    };
    let mut builder = h2::server::Builder::new();
    builder
        .max_concurrent_streams(app.args.h2_max_streams)
        .max_header_list_size(MAX_HEADER_LIST)
        .max_send_buffer_size(SEND_BUFFER)
        .max_pending_accept_reset_streams(PENDING_RESETS)
        .max_local_error_reset_streams(Some(LOCAL_RESETS));
    let handshake = builder.handshake::<_, Chunk>(io.compat());
    let timeout = async {
        Timer::after(HEADER_TIMEOUT).await;
        Err(h2::Error::from(Reason::SETTINGS_TIMEOUT))
    };
    let mut conn = match handshake.or(timeout).await {
        Ok(conn) => conn,
        Err(e) => {
            log::debug!("{}: HTTP/2 handshake failed: {e}", info.peer);
            return;
        }
    };
    let info = Arc::new(info);
    let state = Arc::new(ConnState::default());
    let mut closing = false;
    let mut idle = Timer::after(IDLE);
    let mut stop = Box::pin(stopping.recv());
    let mut opened_at_last_look = 0;
    loop {
        let next = std::future::poll_fn(|cx| {
            if let Poll::Ready(next) = conn.poll_accept(cx) {
                return Poll::Ready(Next::Stream(next));
            }
            if !closing && stop.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Next::Stop);
            }
            if !closing && Pin::new(&mut idle).poll(cx).is_ready() {
                return Poll::Ready(Next::Idle);
            }
            Poll::Pending
        });
        match next.await {
            Next::Stream(Some(Ok((req, respond)))) => {
                state.opened.fetch_add(1, Ordering::Relaxed);
                if state.flooding() {
                    log::warn!(
                        "{}: HTTP/2 client reset most of its streams before their answer (rapid reset); closing the connection",
                        info.peer
                    );
                    app.count_bad_request();
                    conn.abrupt_shutdown(Reason::ENHANCE_YOUR_CALM);
                    closing = true;
                    continue;
                }
                let task = stream::serve(
                    Arc::clone(app),
                    req,
                    respond,
                    Arc::clone(&info),
                    Arc::clone(&state),
                );
                let app = Arc::clone(app);
                let peer = info.peer;
                ex.spawn(async move {
                    let served = std::panic::AssertUnwindSafe(task).catch_unwind().await;
                    if let Err(panic) = served {
                        app.counters.panics.fetch_add(1, Ordering::Relaxed);
                        log::error!(
                            "panic while serving an HTTP/2 stream of {peer}: {}; stream reset",
                            super::listen::panic_message(&*panic)
                        );
                    }
                })
                .detach();
            }
            Next::Stream(Some(Err(e))) => {
                // h2 has sent its GOAWAY (a protocol error, a flood) or the socket failed.
                if e.is_go_away() || e.reason() == Some(Reason::ENHANCE_YOUR_CALM) {
                    app.count_bad_request();
                }
                log::debug!("{}: HTTP/2 connection ended: {e}", info.peer);
                break;
            }
            Next::Stream(None) => break,
            Next::Stop => {
                // The streams end by themselves (the app ends them); GOAWAY says no more.
                conn.graceful_shutdown();
                closing = true;
            }
            Next::Idle => {
                let opened = state.opened.load(Ordering::Relaxed);
                if !conn.has_streams() && opened == opened_at_last_look {
                    conn.graceful_shutdown();
                    closing = true;
                } else {
                    opened_at_last_look = opened;
                    idle = Timer::after(IDLE);
                }
            }
        }
        if closing {
            // Bounded: a client that never reads must not keep the connection open.
            let rest = async { while let Some(Ok(_)) = conn.accept().await {} };
            rest.or(async {
                Timer::after(CLOSE_GRACE).await;
            })
            .await;
            break;
        }
    }
}

/// What the connection task woke for.
enum Next<T> {
    Stream(Option<Result<T, h2::Error>>),
    Stop,
    Idle,
}

/// The socket under an HTTP/2 connection, whose writes fail once none made progress for
/// `--write-timeout` (a client that stopped reading the whole connection); the timer
/// exists only while a write waits.
struct WriteDeadline<S> {
    io: S,
    timeout: Option<Duration>,
    timer: Option<Timer>,
}

impl<S: Unpin> WriteDeadline<S> {
    fn deadline<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.timer = None;
            return polled;
        }
        if let Some(limit) = self.timeout {
            let timer = self.timer.get_or_insert_with(|| Timer::after(limit));
            if Pin::new(timer).poll(cx).is_ready() {
                return Poll::Ready(Err(io::ErrorKind::TimedOut.into()));
            }
        }
        Poll::Pending
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteDeadline<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        self.deadline(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.deadline(cx, polled)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.io).poll_flush(cx);
        self.deadline(cx, polled)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_close(cx)
    }
}
