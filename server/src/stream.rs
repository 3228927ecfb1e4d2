//! The body of a `GET /events` response: an `AsyncRead` over one subscriber's queue in the
//! hub, and the watch that notices when its client leaves.

use std::io;
use std::net::TcpStream;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use futures_lite::future::FutureExt as _;
use futures_lite::io::{AsyncBufRead, AsyncRead, AsyncReadExt as _};
use ssecast::{Comment, Frame, SubscriberId};

use crate::app::{App, EndCause};

/// One subscriber's stream of frames.
///
/// `poll_read` copies every queued frame that fits into the caller's buffer at once, so a
/// subscriber that fell behind gets one write (one HTTP chunk) instead of one per event.
/// Dropping the body unsubscribes.
#[derive(Debug)]
pub(crate) struct EventStream {
    app: Arc<App>,
    id: SubscriberId,
    /// A frame not yet fully handed out, and how much of it was.
    pending: Option<(Frame, usize)>,
    /// Reads the client's side of the socket; cancelled when the body drops.
    _watch: Option<smol::Task<()>>,
}

impl EventStream {
    /// A body for subscriber `id`. It starts with a comment, so the client sees bytes (and
    /// the headers) at once, before the hub's `retry:` hint and the replay.
    pub(crate) fn new(app: Arc<App>, id: SubscriberId, watch: Option<smol::Task<()>>) -> Self {
        // A constant without CR or LF: cannot be refused.
        let hello = Comment::new("ssecast").map(|c| Frame::comment(&c)).ok();
        EventStream {
            app,
            id,
            pending: hello.map(|frame| (frame, 0)),
            _watch: watch,
        }
    }

    /// Copies the pending frame's rest into `buf`; returns the bytes copied.
    fn copy_pending(&mut self, buf: &mut [u8]) -> usize {
        let Some((frame, offset)) = &mut self.pending else {
            return 0;
        };
        let rest = &frame.as_bytes()[*offset..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        *offset += n;
        if *offset == frame.len() {
            self.pending = None;
        }
        n
    }
}

impl AsyncRead for EventStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let mut n = this.copy_pending(buf);
        if this.pending.is_some() {
            return this.ready(n);
        }
        let app = Arc::clone(&this.app);
        let mut state = app.lock();
        if state.ended(this.id) {
            // Frames still queued are dropped: the client resumes from its Last-Event-ID.
            return if n > 0 {
                this.ready(n)
            } else {
                Poll::Ready(Ok(0))
            };
        }
        // Bounded by the subscriber's queue capacity.
        while n < buf.len() {
            let Some(frame) = state.hub.pop_frame(this.id) else {
                break;
            };
            this.pending = Some((frame, 0));
            n += this.copy_pending(&mut buf[n..]);
        }
        if n > 0 {
            return this.ready(n);
        }
        state.set_waker(this.id, cx.waker());
        Poll::Pending
    }
}

impl EventStream {
    fn ready(&self, n: usize) -> Poll<io::Result<usize>> {
        self.app
            .counters
            .bytes_written
            .fetch_add(n as u64, Ordering::Relaxed);
        Poll::Ready(Ok(n))
    }
}

/// `Body::from_reader` wants a buffered reader. Reads go through `poll_read` (batched); this
/// impl hands out one frame at a time for callers that use the buffered interface.
impl AsyncBufRead for EventStream {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let this = self.get_mut();
        if this.pending.is_none() {
            let app = Arc::clone(&this.app);
            let mut state = app.lock();
            if state.ended(this.id) {
                return Poll::Ready(Ok(&[]));
            }
            match state.hub.pop_frame(this.id) {
                Some(frame) => this.pending = Some((frame, 0)),
                None => {
                    state.set_waker(this.id, cx.waker());
                    return Poll::Pending;
                }
            }
        }
        match &this.pending {
            Some((frame, offset)) => Poll::Ready(Ok(&frame.as_bytes()[*offset..])),
            None => Poll::Ready(Ok(&[])),
        }
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        let this = self.get_mut();
        if let Some((frame, offset)) = &mut this.pending {
            *offset = (*offset + amt).min(frame.len());
            if *offset == frame.len() {
                this.pending = None;
            }
            this.app
                .counters
                .bytes_written
                .fetch_add(amt as u64, Ordering::Relaxed);
        }
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        self.app.stream_dropped(self.id);
    }
}

/// Whether a connection's writes are making progress: set when a write would block, cleared
/// when one succeeds. Shared by the connection (which writes) and the stream's watch.
#[derive(Debug)]
pub(crate) struct WriteProgress {
    origin: Instant,
    /// Milliseconds since `origin`, plus one, when the pending write started; 0 if none.
    blocked_since: AtomicU64,
}

impl WriteProgress {
    pub(crate) fn new() -> WriteProgress {
        WriteProgress {
            origin: Instant::now(),
            blocked_since: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1
    }

    /// A write would block: the stall starts now unless it started earlier.
    pub(crate) fn blocked(&self) {
        let now = self.now();
        let _ = self
            .blocked_since
            .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// A write went through.
    pub(crate) fn progressed(&self) {
        self.blocked_since.store(0, Ordering::Relaxed);
    }

    /// How long the current write has been blocked.
    fn stalled_for(&self) -> Duration {
        match self.blocked_since.load(Ordering::Relaxed) {
            0 => Duration::ZERO,
            since => Duration::from_millis(self.now().saturating_sub(since)),
        }
    }
}

/// What ended a watch.
enum Watched {
    Gone,
    Stalled,
}

/// Watches the client's side of an event stream: async-h1 never reads the socket while it
/// streams a response, so without this a client that left unnoticed would stay subscribed
/// until the next write fails (forever, when nothing is published). With a write timeout,
/// it also ends a stream whose writes have been blocked that long (a client that stopped
/// reading), so the connection and its socket buffers are released.
pub(crate) async fn watch_client(
    app: Arc<App>,
    socket: Arc<Async<TcpStream>>,
    id: SubscriberId,
    writes: Arc<WriteProgress>,
    write_timeout: Option<Duration>,
) {
    let gone = async {
        // Small: it lives in every idle subscriber's task, and clients send nothing here.
        let mut scratch = [0u8; 64];
        // A client has nothing more to send on an event stream: whatever it sends is
        // discarded, and end-of-file or an error means it is gone.
        loop {
            match (&*socket).read(&mut scratch).await {
                Ok(0) | Err(_) => return Watched::Gone,
                Ok(_) => {}
            }
        }
    };
    let stalled = async {
        let Some(limit) = write_timeout else {
            return std::future::pending().await;
        };
        let check = (limit / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
        // Ends when the stream does (this task is cancelled with its body).
        loop {
            Timer::after(check).await;
            if writes.stalled_for() >= limit {
                return Watched::Stalled;
            }
        }
    };
    match gone.or(stalled).await {
        Watched::Gone => app.end_stream(id, &socket, EndCause::ClientGone),
        Watched::Stalled => {
            log::debug!("{id:?}: no write progress for {write_timeout:?}; closing");
            app.end_stream(id, &socket, EndCause::Stalled);
        }
    }
}
