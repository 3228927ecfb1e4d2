//! Bounded subscriber queues and what happens when one is full.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;

use crate::encode::Frame;

/// What a full subscriber queue does with one more frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// Drop the new frame; the subscriber misses it (what the Go program does).
    #[default]
    DropNewest,
    /// Drop the oldest queued frame to make room for the new one.
    DropOldest,
    /// Drop nothing; close the subscriber instead, so it reconnects and replays.
    Disconnect,
}

impl FromStr for Overflow {
    type Err = UnknownOverflow;
    /// Parses `drop-newest`, `drop-oldest` or `disconnect`.
    fn from_str(s: &str) -> Result<Overflow, UnknownOverflow> {
        match s {
            "drop-newest" => Ok(Overflow::DropNewest),
            "drop-oldest" => Ok(Overflow::DropOldest),
            "disconnect" => Ok(Overflow::Disconnect),
            _ => Err(UnknownOverflow),
        }
    }
}

/// The text was not one of `drop-newest`, `drop-oldest`, `disconnect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownOverflow;

impl fmt::Display for UnknownOverflow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("expected drop-newest, drop-oldest or disconnect")
    }
}

impl std::error::Error for UnknownOverflow {}

/// What [`Queue::push`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// The frame was queued.
    Queued,
    /// The queue was full and the new frame was dropped.
    DroppedNewest,
    /// The queue was full and the oldest frame was dropped to make room.
    DroppedOldest,
    /// The queue was full and the policy is to disconnect; nothing was queued.
    Overflowed,
}

/// A bounded FIFO of frames for one subscriber.
#[derive(Debug, Clone)]
pub struct Queue {
    frames: VecDeque<Frame>,
    capacity: usize,
    policy: Overflow,
    dropped: u64,
}

impl Queue {
    /// An empty queue holding at most `capacity` frames (at least one).
    pub fn new(capacity: usize, policy: Overflow) -> Queue {
        let _ = (capacity, policy);
        todo!()
    }

    /// Adds `frame`, applying the overflow policy when the queue is full.
    pub fn push(&mut self, frame: Frame) -> Pushed {
        let _ = frame;
        todo!()
    }

    /// Takes the oldest frame.
    pub fn pop(&mut self) -> Option<Frame> {
        todo!()
    }

    /// Frames queued now.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether no frame is queued.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Frames dropped by the overflow policy so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}
