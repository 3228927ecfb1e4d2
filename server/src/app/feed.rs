//! A subscriber's side of the hub, as the connection writing its stream sees it: take the
//! frames queued for it, end it, and unsubscribe when it is dropped.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use ssecast::{Comment, Frame, SubscriberId};

use super::App;

/// Why a stream ended, for the `disconnected` metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EndCause {
    /// The client closed the connection or a write to it failed.
    ClientGone,
    /// Its queue overflowed under `--overflow disconnect`.
    Overflow,
    /// Its writes made no progress for `--write-timeout` (the client stopped reading).
    Stalled,
    /// The server is shutting down.
    Shutdown,
    /// The subscriber's token expired (its `exp`).
    Expired,
}

impl EndCause {
    pub(crate) const ALL: [EndCause; 5] = [
        EndCause::ClientGone,
        EndCause::Overflow,
        EndCause::Stalled,
        EndCause::Shutdown,
        EndCause::Expired,
    ];

    pub(crate) fn label(self) -> &'static str {
        match self {
            EndCause::ClientGone => "client_gone",
            EndCause::Overflow => "overflow",
            EndCause::Stalled => "stalled",
            EndCause::Shutdown => "shutdown",
            EndCause::Expired => "token_expired",
        }
    }
}

/// What [`Feed::poll_frames`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Polled {
    /// Frames were taken: write them.
    Frames,
    /// The stream was ended (shutdown, overflow, write timeout): end the body.
    Ended,
    /// The client left: stop.
    Gone,
}

/// One subscriber's stream of frames. Dropping it unsubscribes.
pub(crate) struct Feed {
    app: Arc<App>,
    id: SubscriberId,
    /// A comment sent first, so the client sees bytes (and the headers) at once, before the
    /// hub's `retry:` hint and the replay.
    hello: Option<Frame>,
}

impl fmt::Debug for Feed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.id)
    }
}

impl Feed {
    pub(super) fn new(app: Arc<App>, id: SubscriberId) -> Feed {
        // A constant without CR or LF: cannot be refused.
        let hello = Comment::new("ssecast").map(|c| Frame::comment(&c)).ok();
        Feed { app, id, hello }
    }

    /// Moves queued frames (at most `max`) into `frames`; `Pending` (with the waker kept)
    /// until the hub queues one or the stream ends.
    pub(crate) fn poll_frames(
        &mut self,
        cx: &mut Context<'_>,
        frames: &mut Vec<Frame>,
        max: usize,
    ) -> Poll<Polled> {
        frames.extend(self.hello.take());
        let mut state = self.app.lock();
        if state.ended(self.id) {
            // Frames still queued are dropped: the client resumes from its Last-Event-ID.
            return Poll::Ready(Polled::Ended);
        }
        while frames.len() < max {
            match state.hub.pop_frame(self.id) {
                Some(frame) => frames.push(frame),
                None => break,
            }
        }
        if frames.is_empty() {
            state.set_waker(self.id, cx.waker());
            return Poll::Pending;
        }
        Poll::Ready(Polled::Frames)
    }

    /// `Ready` once the stream was ended (shutdown, overflow), else `Pending` with the waker
    /// kept: for a writer blocked on something else (HTTP/2 flow control) that must notice.
    pub(crate) fn poll_ended(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.app.lock();
        if state.ended(self.id) {
            return Poll::Ready(());
        }
        state.set_waker(self.id, cx.waker());
        Poll::Pending
    }

    /// Ends the stream (its client left or stopped reading).
    pub(crate) fn end(&self, cause: EndCause) {
        self.app.end_stream(self.id, cause);
    }

    /// Counts `bytes` of frames written to the client.
    pub(crate) fn wrote(&self, bytes: usize) {
        self.app
            .counters
            .bytes_written
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.app.stream_dropped(self.id);
    }
}
