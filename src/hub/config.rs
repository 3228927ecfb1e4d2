//! How a hub is configured, and what it counts.

use crate::event::Millis;
use crate::queue::Overflow;

/// How a hub behaves. `Default` matches the Go program ssecast started from. Not
/// constructible by a struct literal outside this crate (fields will be added): start from
/// `HubConfig::default()` and set fields.
///
/// ```
/// use ssecast::{HubConfig, Overflow};
/// let mut config = HubConfig::default();
/// config.queue_capacity = 64;
/// config.overflow = Overflow::Disconnect;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HubConfig {
    /// Frames each subscriber may have queued (16).
    pub queue_capacity: usize,
    /// What a full queue does ([`Overflow::DropNewest`]).
    pub overflow: Overflow,
    /// Send a `: ping` comment to a subscriber that has been sent nothing for this long
    /// (`Some(20 s)`), give or take a quarter of it (see the
    /// [hub docs](crate::Hub#keep-alive)); `None` disables keep-alives.
    pub keepalive: Option<Millis>,
    /// The reconnection time announced with the first event of every subscription
    /// (`Some(3 s)`); `None` announces none.
    pub retry: Option<Millis>,
    /// Events kept per topic for `Last-Event-ID` replay (1,000; 0 disables replay).
    pub history_events: usize,
    /// Encoded bytes kept per topic for replay (4 MiB).
    pub history_bytes: usize,
    /// Memory the whole hub's history may take (256 MiB): each retained event counts as its
    /// encoded bytes (once, however many topics it has) plus [`HubConfig::EVENT_COST`] for
    /// its bookkeeping. Past it the oldest events of the whole hub go first.
    pub history_total_bytes: usize,
    /// Subscribers at once (10,000); past it `subscribe` refuses.
    pub max_subscribers: usize,
    /// Topics kept (10,000). When a publish creates a topic beyond it, the least recently
    /// published topic without exact subscribers or rights is forgotten, history included.
    /// The others are never forgotten (and are bounded by `max_subscribers`).
    pub max_topics: usize,
    /// The `seq` of the first event this hub publishes (1). Hub-assigned ids below it were
    /// given by another instance (before a restart, say), so a `Last-Event-ID` below
    /// `first_seq - 1` is unknown, never mistaken for one of this hub's ids. A server that
    /// keeps no history across restarts passes a number that grows across restarts (the
    /// start time in microseconds, for instance) so that ids keep increasing.
    pub first_seq: u64,
}
impl HubConfig {
    /// What one retained event costs the hub besides its frame (its index entry, the
    /// frame's allocation, each topic's part and the publisher-id index; 95 to 170 B
    /// measured), counted against [`history_total_bytes`](HubConfig::history_total_bytes).
    ///
    /// ```
    /// use ssecast::{Event, Hub, HubConfig, Millis, Topic};
    ///
    /// let mut hub = Hub::new(HubConfig::default());
    /// hub.publish(&Topic::default(), Event::new("hi"), Millis(0));
    /// let frame = "id: 1\ndata: hi\n\n".len() as u64;
    /// assert_eq!(hub.stats().history_bytes, frame + HubConfig::EVENT_COST as u64);
    /// ```
    pub const EVENT_COST: usize = super::history::EVENT_COST;
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
            history_total_bytes: 256 << 20,
            max_subscribers: 10_000,
            max_topics: 10_000,
            first_seq: 1,
        }
    }
}
/// Counters, for metrics. All are totals since the hub was made, except the gauges
/// `subscribers` and `history_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Subscribers now.
    pub subscribers: u64,
    /// Subscriptions accepted.
    pub subscribed: u64,
    /// Subscriptions refused at the limit.
    pub refused: u64,
    /// Events published (duplicates not included).
    pub published: u64,
    /// Publishes refused as duplicates of a retained event's id.
    pub duplicates: u64,
    /// Event frames encoded: one per published event, one per missed marker. Never one per
    /// subscriber.
    pub encoded: u64,
    /// Event frames handed out by `pop_frame`, replayed ones included (keep-alives, retry
    /// hints and missed markers are not events and are not counted).
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
    /// What the events retained now count against [`HubConfig::history_total_bytes`]:
    /// their encoded bytes, each event once, plus [`HubConfig::EVENT_COST`] each.
    pub history_bytes: u64,
    /// Events let go of from the history (by any bound, or with a forgotten topic).
    pub history_evicted: u64,
}
