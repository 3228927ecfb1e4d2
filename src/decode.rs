//! A push parser for `text/event-stream`, exact to the WHATWG HTML "Server-sent events"
//! parsing and interpretation algorithms, whatever the chunking.

use std::fmt;

use crate::event::Millis;

/// An event dispatched by the [`Decoder`], as a browser's `MessageEvent` would carry it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MessageEvent {
    /// The event type; `message` when the stream set none.
    pub event_type: String,
    /// The data, with the final LF removed.
    pub data: String,
    /// The last event ID at the time of dispatch (it persists across events).
    pub last_event_id: String,
}

/// Limits that keep a decoder's memory bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest line accepted, in bytes, not counting its line ending.
    pub max_line: usize,
    /// The most data buffered for one event, in bytes.
    pub max_event: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_line: 1 << 20, max_event: 8 << 20 }
    }
}

/// A limit was reached. The offending line or event is discarded and decoding goes on
/// after it with the next call to [`Decoder::feed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// A line was longer than [`Limits::max_line`].
    LineTooLong {
        /// The limit in bytes.
        max: usize,
    },
    /// An event's data grew beyond [`Limits::max_event`].
    EventTooLarge {
        /// The limit in bytes.
        max: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::LineTooLong { max } => write!(f, "line longer than {max} bytes"),
            DecodeError::EventTooLarge { max } => write!(f, "event larger than {max} bytes"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// The push parser: [`feed`](Decoder::feed) it bytes as they arrive, then take the
/// dispatched events out with [`next_event`](Decoder::next_event).
#[derive(Debug, Clone, Default)]
pub struct Decoder {
    // filled in by the implementation
}

impl Decoder {
    /// A decoder with the default [`Limits`].
    pub fn new() -> Decoder {
        todo!()
    }

    /// A decoder with the given limits.
    pub fn with_limits(limits: Limits) -> Decoder {
        let _ = limits;
        todo!()
    }

    /// Keeps comment lines (without the leading `:`) for [`next_comment`](Decoder::next_comment).
    /// Off by default.
    pub fn keep_comments(mut self, keep: bool) -> Decoder {
        let _ = keep;
        self
    }

    /// Parses `chunk`, queueing every event it completes.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), DecodeError> {
        let _ = chunk;
        todo!()
    }

    /// Takes the oldest dispatched event not yet taken.
    pub fn next_event(&mut self) -> Option<MessageEvent> {
        todo!()
    }

    /// Takes the oldest comment not yet taken (only with `keep_comments(true)`).
    pub fn next_comment(&mut self) -> Option<String> {
        todo!()
    }

    /// The last event ID: what a client sends as `Last-Event-ID` when it reconnects.
    pub fn last_event_id(&self) -> &str {
        todo!()
    }

    /// The reconnection time set by the last valid `retry:` field, if any.
    pub fn retry(&self) -> Option<Millis> {
        todo!()
    }

    /// Prepares for a new connection: forgets the partial line, the data and type buffers
    /// and the BOM state, but keeps the last event ID and the reconnection time, as the
    /// spec's reconnect does. Queued events stay queued.
    pub fn reconnect(&mut self) {
        todo!()
    }
}
