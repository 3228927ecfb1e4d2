//! The broker as a state machine: subscribers, topics, ids, replay history and keep-alive
//! deadlines, with time passed in. It performs no I/O; the caller pumps it.
//!
//! After every input (`subscribe`, `publish`, `unsubscribe`, `handle_timeout`) the caller
//! drains the outputs: [`Hub::poll_ready`] (subscribers with frames to write, each then
//! emptied with [`Hub::pop_frame`]), [`Hub::poll_close`] (subscribers to close), and
//! [`Hub::poll_timeout`] (when to call `handle_timeout` next).

use std::fmt;

use crate::encode::Frame;
use crate::event::{Event, EventId, Millis, Topic};
use crate::queue::Overflow;

/// How a hub behaves. `Default` matches the Go program ssecast started from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubConfig {
    /// Frames each subscriber may have queued (16).
    pub queue_capacity: usize,
    /// What a full queue does ([`Overflow::DropNewest`]).
    pub overflow: Overflow,
    /// Send a `: ping` comment to a subscriber that has been sent nothing for this long
    /// (`Some(20 s)`); `None` disables keep-alives.
    pub keepalive: Option<Millis>,
    /// The reconnection time announced in the first frame of every subscription
    /// (`Some(3 s)`); `None` announces none.
    pub retry: Option<Millis>,
    /// Events kept per topic for `Last-Event-ID` replay (1,000; 0 disables replay).
    pub history_events: usize,
    /// Encoded bytes kept per topic for replay (4 MiB).
    pub history_bytes: usize,
    /// Subscribers at once (10,000); past it `subscribe` refuses.
    pub max_subscribers: usize,
}

impl Default for HubConfig {
    fn default() -> HubConfig {
        HubConfig {
            queue_capacity: 16,
            overflow: Overflow::DropNewest,
            keepalive: Some(Millis(20_000)),
            retry: Some(Millis(3_000)),
            history_events: 1_000,
            history_bytes: 4 << 20,
            max_subscribers: 10_000,
        }
    }
}

/// A subscriber's handle. Stale handles (of subscribers already gone) are ignored by every
/// method, never confused with a newer subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubscriberId {
    index: u32,
    generation: u32,
}

impl SubscriberId {
    /// A small dense number, unique among live subscribers: use it to index a `Vec` of
    /// per-subscriber I/O state.
    pub fn index(self) -> usize {
        self.index as usize
    }
}

/// What a subscription with a `Last-Event-ID` got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// No last event ID was given: the subscriber starts live.
    Live,
    /// Every event after the last event ID was still in the history and has been queued:
    /// no gap, no duplicate.
    Resumed {
        /// Events queued from the history.
        replayed: usize,
    },
    /// The last event ID is older than the history (or unknown): events were missed. The
    /// subscriber first receives an event of type [`MISSED_EVENT_TYPE`] whose data is the
    /// id it asked for, then all the history still kept, then live events.
    Missed {
        /// Events queued from the history.
        replayed: usize,
    },
}

/// The event type of the event that tells a resuming client it missed events.
pub const MISSED_EVENT_TYPE: &str = "ssecast.missed";

/// The result of [`Hub::subscribe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscribed {
    /// The new subscriber's handle.
    pub id: SubscriberId,
    /// What the `Last-Event-ID` got.
    pub replay: Replay,
}

/// Why [`Hub::subscribe`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscribeError {
    /// [`HubConfig::max_subscribers`] are subscribed already.
    Full {
        /// The limit.
        max: usize,
    },
}

impl fmt::Display for SubscribeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubscribeError::Full { max } => write!(f, "subscriber limit of {max} reached"),
        }
    }
}

impl std::error::Error for SubscribeError {}

/// Why the hub wants a subscriber closed (see [`Hub::poll_close`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Its queue overflowed under [`Overflow::Disconnect`].
    Overflow,
}

/// Counters, for metrics. All are totals since the hub was made, except `subscribers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Subscribers now.
    pub subscribers: u64,
    /// Subscriptions accepted.
    pub subscribed: u64,
    /// Subscriptions refused at the limit.
    pub refused: u64,
    /// Events published.
    pub published: u64,
    /// Event frames handed out by `pop_frame` (keep-alives and retry hints not counted).
    pub delivered: u64,
    /// Event frames dropped by an overflow policy.
    pub dropped: u64,
    /// Subscribers closed because their queue overflowed.
    pub disconnected_overflow: u64,
    /// Subscribers removed with `unsubscribe`.
    pub unsubscribed: u64,
    /// Event frames queued from the history on resubscription.
    pub replayed: u64,
    /// Keep-alive comments queued.
    pub keepalives: u64,
}

/// The broker state machine. See the [module docs](self).
#[derive(Debug)]
pub struct Hub {
    // filled in by the implementation
}

impl Hub {
    /// An empty hub.
    pub fn new(config: HubConfig) -> Hub {
        let _ = config;
        todo!()
    }

    /// The configuration the hub was made with.
    pub fn config(&self) -> &HubConfig {
        todo!()
    }

    /// Adds a subscriber to `topics` (the default topic when empty). Its queue starts with
    /// the retry hint (if configured), then, when `last_event_id` is given, the replay.
    pub fn subscribe(
        &mut self,
        topics: &[Topic],
        last_event_id: Option<&str>,
        now: Millis,
    ) -> Result<Subscribed, SubscribeError> {
        let _ = (topics, last_event_id, now);
        todo!()
    }

    /// Publishes `event` to `topic`: assigns the next id when the event has none, encodes it
    /// once, keeps it in the topic's history and queues it to every subscriber of the topic
    /// under the overflow policy. Returns the event's id.
    pub fn publish(&mut self, topic: &Topic, event: Event, now: Millis) -> EventId {
        let _ = (topic, event, now);
        todo!()
    }

    /// Removes a subscriber and its queue. A stale id is ignored.
    pub fn unsubscribe(&mut self, id: SubscriberId) {
        let _ = id;
        todo!()
    }

    /// Lets time pass: queues keep-alives that are due.
    pub fn handle_timeout(&mut self, now: Millis) {
        let _ = now;
        todo!()
    }

    /// When `handle_timeout` should next be called, if ever.
    pub fn poll_timeout(&self) -> Option<Millis> {
        todo!()
    }

    /// A subscriber whose queue became non-empty since it was last drained to empty. Each
    /// such subscriber is returned once until `pop_frame` empties its queue again.
    pub fn poll_ready(&mut self) -> Option<SubscriberId> {
        todo!()
    }

    /// A subscriber the hub has removed and the caller must close.
    pub fn poll_close(&mut self) -> Option<(SubscriberId, CloseReason)> {
        todo!()
    }

    /// Takes the oldest frame queued for `id`.
    pub fn pop_frame(&mut self, id: SubscriberId) -> Option<Frame> {
        let _ = id;
        todo!()
    }

    /// Frames queued for `id` now (0 for a stale id).
    pub fn queued(&self, id: SubscriberId) -> usize {
        let _ = id;
        todo!()
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        todo!()
    }
}
