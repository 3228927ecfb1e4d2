//! Bounded subscriber queues and what happens when one is full.
//!
//! A [`Queue`] allocates nothing until its first frame arrives and then grows only as far as
//! it is filled (never beyond its capacity), so an idle subscriber costs a few words.

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
///
/// ```
/// use ssecast::{Event, Frame, Overflow, Pushed, Queue};
/// let frame = |data: &str| Frame::event(&Event::new(data));
/// let mut queue = Queue::new(2, Overflow::DropOldest);
/// assert_eq!(queue.push(frame("a")), Pushed::Queued);
/// assert_eq!(queue.push(frame("b")), Pushed::Queued);
/// assert_eq!(queue.push(frame("c")), Pushed::DroppedOldest);
/// assert_eq!(queue.pop(), Some(frame("b")));
/// assert_eq!(queue.pop(), Some(frame("c")));
/// assert_eq!(queue.pop(), None);
/// assert_eq!(queue.dropped(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct Queue {
    frames: VecDeque<Frame>,
    capacity: usize,
    policy: Overflow,
    dropped: u64,
}

impl Queue {
    /// An empty queue holding at most `capacity` frames (a capacity of 0 is taken as 1).
    /// Allocates nothing until the first push.
    pub fn new(capacity: usize, policy: Overflow) -> Queue {
        Queue {
            frames: VecDeque::new(),
            capacity: capacity.max(1),
            policy,
            dropped: 0,
        }
    }

    /// Adds `frame`, applying the overflow policy when the queue is full.
    ///
    /// A frame dropped by [`Overflow::DropNewest`] or [`Overflow::DropOldest`] counts in
    /// [`dropped`](Queue::dropped); [`Overflow::Disconnect`] drops nothing and returns
    /// [`Pushed::Overflowed`], leaving the queue as it was.
    pub fn push(&mut self, frame: Frame) -> Pushed {
        if self.frames.len() < self.capacity {
            self.frames.push_back(frame);
            return Pushed::Queued;
        }
        match self.policy {
            Overflow::DropNewest => {
                self.dropped += 1;
                Pushed::DroppedNewest
            }
            Overflow::DropOldest => {
                self.frames.pop_front();
                self.frames.push_back(frame);
                self.dropped += 1;
                Pushed::DroppedOldest
            }
            Overflow::Disconnect => Pushed::Overflowed,
        }
    }

    /// Takes the oldest frame.
    pub fn pop(&mut self) -> Option<Frame> {
        self.frames.pop_front()
    }

    /// The most frames the queue holds (at least 1).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The overflow policy.
    pub fn policy(&self) -> Overflow {
        self.policy
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
