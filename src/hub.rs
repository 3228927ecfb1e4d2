//! The broker as a state machine: subscribers, topics, ids, replay history and keep-alive
//! deadlines, with time passed in. It performs no I/O; the caller pumps it.
//!
//! After every input (`subscribe`, `publish`, `unsubscribe`, `handle_timeout`) the caller
//! drains the outputs: [`Hub::poll_ready`] (subscribers with frames to write, each then
//! emptied with [`Hub::pop_frame`]), [`Hub::poll_close`] (subscribers to close), and
//! [`Hub::poll_timeout`] (when to call `handle_timeout` next).
//!
//! # Ids
//! Every published event gets the next hub-wide sequence number `seq` (1, 2, 3, ...). Its wire
//! id (the `id:` field, what [`Hub::publish`] returns) is the id the publisher set, or else
//! `seq` in decimal. The event is encoded once; the same [`Frame`] is queued to every
//! subscriber and kept in the history.
//!
//! A hub fed from a log shared with other hubs (a cluster) uses [`Hub::publish_at`] instead:
//! the caller gives each event its `seq` (ordered as the log is) and its id, so every hub
//! fed from the same log gives the same event the same id and replays the same way.
//!
//! # Topics
//! A subscriber follows one or more topics (none given means [`Topic::default`]; a topic
//! named twice counts once). An event is published to one topic. A subscriber receives each
//! event of its topics once, in publish order.
//!
//! # History and replay
//! Each topic keeps its newest events, at most [`HubConfig::history_events`] of them and at
//! most [`HubConfig::history_bytes`] encoded bytes (the oldest go first until both hold), and
//! remembers the `seq` of the newest event it let go. A subscription with a `Last-Event-ID`
//! resumes after a position `p` found as follows:
//!
//! 1. if a retained event of the subscribed topics has exactly that wire id, `p` is its `seq`
//!    (the newest such event, should a publisher reuse ids);
//! 2. otherwise, if the id is a decimal number `n` (canonical: no sign, no leading zero) from
//!    `first_seq - 1` ([`HubConfig::first_seq`]) up to below the next `seq`, `p = n`: a
//!    hub-assigned id whose event is not in these topics' history;
//! 3. otherwise the id is unknown (for example from before a restart, or from the future).
//!
//! Every retained event of the subscribed topics with `seq > p` is queued, merged in `seq`
//! order. The outcome is [`Replay::Resumed`] when no subscribed topic let go of an event with
//! `seq > p` (nothing was missed), else [`Replay::Missed`]; an unknown id is `Missed` with the
//! whole retained history. A `Missed` subscriber first receives an event of type
//! [`MISSED_EVENT_TYPE`], with no id, whose data is the id it asked for (empty if that is not
//! a valid [`EventId`]). With `history_events == 0` every resume is `Missed` unless nothing
//! was published to those topics after the id.
//!
//! Topics are bounded by [`HubConfig::max_topics`]: when a publish creates a topic beyond it,
//! the hub forgets the least recently published topic that has no subscribers (a topic with
//! subscribers is never forgotten; if every topic has some, the new topic is allowed, since
//! subscribers are bounded too). A resume to a topic the hub forgot, or to a topic it creates
//! afterwards, cannot prove nothing was missed: it is `Missed` when the id is older than the
//! newest event of any forgotten topic.
//!
//! # Queues
//! A subscriber's frames come out of [`Hub::pop_frame`] in this order: the retry hint
//! ([`HubConfig::retry`]), the missed marker, the replayed events, then live frames (events
//! and keep-alives). Replayed events do not count against [`HubConfig::queue_capacity`]: a
//! client that reconnects with a long backlog keeps its whole live queue. Live events are
//! queued under [`HubConfig::overflow`]; under [`Overflow::Disconnect`] a subscriber whose
//! queue is full is removed (as [`Hub::unsubscribe`] would) and reported once by
//! [`Hub::poll_close`]. Keep-alives never take a place in the live queue, so they never cause
//! a drop or a disconnect.
//!
//! [`Hub::poll_ready`] is edge-triggered: a subscriber comes out once when frames are queued
//! for it, and again only after `pop_frame` has returned `None` for it. So drain each ready
//! subscriber until `None` (or until its socket would block, and come back to it later).
//!
//! # Keep-alive
//! With [`HubConfig::keepalive`] `= Some(k)` and `slack = k / 4` (at least 1 ms), a
//! subscriber whose queue is empty and that has had nothing queued for `k - slack` gets a
//! `: ping` comment at the next sweep. `handle_timeout` sweeps when [`Hub::poll_timeout`] is
//! due, which is never later than the first time some subscriber is due, and never sooner
//! than `slack` after the previous sweep. So, when the caller calls `handle_timeout` at
//! `poll_timeout`, a subscriber that drains its queue receives something at least every `k`,
//! and a ping never comes more than `slack` before `k` has passed. A subscriber with frames
//! still queued at a sweep is not idle (its connection has bytes to write): it gets no ping
//! and is looked at again at the next sweep, at most `slack` later. There are no
//! per-subscriber timers: a sweep visits every subscriber, and sweeps are at least `slack`
//! apart, so keep-alives cost at most four visits per subscriber per `k`.
//!
//! # Costs
//! A publish encodes once and, per subscriber of the topic, clones a reference-counted frame
//! into its queue (no allocation in the steady state, no hashing). `unsubscribe` costs the
//! number of topics of that subscriber. `poll_timeout` is O(1).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt;

use crate::encode::Frame;
use crate::event::{Comment, Event, EventId, EventType, Millis, Topic};
use crate::queue::{Overflow, Pushed, Queue};

/// How a hub behaves. `Default` matches the Go program ssecast started from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubConfig {
    /// Frames each subscriber may have queued (16).
    pub queue_capacity: usize,
    /// What a full queue does ([`Overflow::DropNewest`]).
    pub overflow: Overflow,
    /// Send a `: ping` comment to a subscriber that has been sent nothing for this long
    /// (`Some(20 s)`), give or take a quarter of it (see the
    /// [module docs](self#keep-alive)); `None` disables keep-alives.
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
    /// Topics kept (10,000). When a publish creates a topic beyond it, the least recently
    /// published topic without subscribers is forgotten, history included. Topics with
    /// subscribers are never forgotten (and are bounded by `max_subscribers`).
    pub max_topics: usize,
    /// The `seq` of the first event this hub publishes (1). Hub-assigned ids below it were
    /// given by another instance (before a restart, say), so a `Last-Event-ID` below
    /// `first_seq - 1` is unknown, never mistaken for one of this hub's ids. A server that
    /// keeps no history across restarts passes a number that grows across restarts (the
    /// start time in microseconds, for instance) so that ids keep increasing.
    pub first_seq: u64,
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
            max_topics: 10_000,
            first_seq: 1,
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

/// Why [`Hub::publish_at`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishAtError {
    /// The event has no id; a caller-ordered event must carry its own.
    NoId,
    /// The topic already has an event at or after that position.
    NotAfter {
        /// The topic's newest `seq`.
        last: u64,
    },
}

impl fmt::Display for PublishAtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublishAtError::NoId => f.write_str("the event has no id"),
            PublishAtError::NotAfter { last } => {
                write!(f, "the topic already has an event at {last}")
            }
        }
    }
}

impl std::error::Error for PublishAtError {}

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
}

/// Where a subscriber stands with [`Hub::poll_ready`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Notify {
    /// Nothing queued, or drained to `None`: the next queued frame lists it.
    Idle,
    /// In the ready list, not yet returned by `poll_ready`.
    Listed,
    /// Returned by `poll_ready`; waits for `pop_frame` to return `None`.
    Out,
}

/// One of a subscriber's topics, and where the subscriber sits in that topic's list.
#[derive(Debug, Clone, Copy)]
struct Membership {
    topic: u32,
    pos: u32,
}

/// One of a topic's subscribers, and which of its memberships points back here, so that a
/// `swap_remove` can fix the moved subscriber in O(1).
#[derive(Debug, Clone, Copy)]
struct Member {
    sub: u32,
    membership: u32,
}

#[derive(Debug)]
struct Subscriber {
    live: Queue,
    /// Replayed events, apart from `live` so that they never count against its capacity.
    backlog: VecDeque<Frame>,
    /// The missed marker, served before the backlog.
    marker: Option<Frame>,
    topics: Vec<Membership>,
    /// When a frame was last queued (or the subscription began): keep-alives count from it.
    last_queued: Millis,
    retry_pending: bool,
    /// Keep-alives live in a flag rather than in `live`, so they never cause an overflow.
    /// One is only queued when everything else is empty, so serving it before `live` keeps
    /// the order.
    ping_pending: bool,
    notify: Notify,
}

impl Subscriber {
    fn queued(&self) -> usize {
        usize::from(self.retry_pending)
            + usize::from(self.marker.is_some())
            + self.backlog.len()
            + usize::from(self.ping_pending)
            + self.live.len()
    }
}

#[derive(Debug)]
struct Slot {
    generation: u32,
    sub: Option<Subscriber>,
}

#[derive(Debug)]
struct Retained {
    seq: u64,
    /// The publisher's id, if it set one; otherwise the wire id is `seq`.
    id: Option<EventId>,
    frame: Frame,
}

#[derive(Debug)]
struct TopicState {
    name: Topic,
    subs: Vec<Member>,
    history: VecDeque<Retained>,
    history_bytes: usize,
    /// Retained events with a publisher-chosen id: when 0, an id lookup is a binary search.
    custom_ids: usize,
    /// The `seq` of the newest event let go of (0: none).
    evicted_seq: u64,
    /// The `seq` of the newest event published here (0: none); orders topic eviction.
    last_published: u64,
}

/// Keep-alive timing, derived once from [`HubConfig::keepalive`].
#[derive(Debug, Clone, Copy)]
struct Keepalive {
    /// `keepalive - slack`: how long a subscriber may have had nothing queued before a ping.
    due_after: Millis,
    slack: Millis,
}

/// The broker state machine. See the [module docs](self).
///
/// ```
/// use ssecast::{Event, Hub, HubConfig, Millis, Replay, Topic};
///
/// let mut hub = Hub::new(HubConfig { retry: None, ..HubConfig::default() });
/// let alice = hub.subscribe(&[], None, Millis(0)).unwrap().id;
/// let id = hub.publish(&Topic::default(), Event::new("hello"), Millis(5));
/// assert_eq!(id.as_str(), "1");
///
/// assert_eq!(hub.poll_ready(), Some(alice));
/// assert_eq!(hub.pop_frame(alice).unwrap().as_bytes(), b"id: 1\ndata: hello\n\n");
/// assert_eq!(hub.pop_frame(alice), None);
///
/// // A client that reconnects with `Last-Event-ID: 1` misses nothing.
/// hub.publish(&Topic::default(), Event::new("again"), Millis(6));
/// let bob = hub.subscribe(&[], Some("1"), Millis(7)).unwrap();
/// assert_eq!(bob.replay, Replay::Resumed { replayed: 1 });
/// assert_eq!(hub.pop_frame(bob.id).unwrap().as_bytes(), b"id: 2\ndata: again\n\n");
/// ```
#[derive(Debug)]
pub struct Hub {
    config: HubConfig,
    slots: Vec<Slot>,
    free_slots: Vec<u32>,
    topics: Vec<Option<TopicState>>,
    free_topics: Vec<u32>,
    topic_index: HashMap<Topic, u32>,
    /// Topics without subscribers, oldest publish first: the eviction order.
    idle_topics: BTreeSet<(u64, u32)>,
    /// The newest `seq` of any topic forgotten: replays to unknown topics cannot prove that
    /// nothing older was missed.
    forgotten_seq: u64,
    next_seq: u64,
    ready: VecDeque<SubscriberId>,
    closed: VecDeque<(SubscriberId, CloseReason)>,
    /// Reused by `publish` to collect overflowed subscribers without allocating.
    overflowed: Vec<u32>,
    retry_frame: Option<Frame>,
    ping_frame: Frame,
    missed_type: EventType,
    keepalive: Option<Keepalive>,
    last_sweep: Option<Millis>,
    /// A lower bound of the earliest keep-alive due time (None: no subscriber since the
    /// last sweep). Publishes only push due times later, so it stays a lower bound.
    next_due: Option<Millis>,
    stats: Stats,
}

impl Hub {
    /// An empty hub.
    pub fn new(config: HubConfig) -> Hub {
        let keepalive = config.keepalive.map(|k| {
            // A slack of at least 1 ms keeps sweeps apart even for tiny keep-alives.
            let slack = Millis((k.0 / 4).max(1));
            Keepalive {
                due_after: k.saturating_sub(slack),
                slack,
            }
        });
        #[allow(clippy::expect_used)]
        // Cannot fail: "ping" has no CR or LF.
        let ping = Comment::new("ping").expect("valid comment");
        #[allow(clippy::expect_used)]
        // Cannot fail: the constant has no CR or LF (and a unit test builds it).
        let missed_type = EventType::new(MISSED_EVENT_TYPE).expect("valid event type");
        let next_seq = config.first_seq.max(1);
        Hub {
            retry_frame: config.retry.map(Frame::retry),
            ping_frame: Frame::comment(&ping),
            missed_type,
            keepalive,
            config,
            slots: Vec::new(),
            free_slots: Vec::new(),
            topics: Vec::new(),
            free_topics: Vec::new(),
            topic_index: HashMap::new(),
            idle_topics: BTreeSet::new(),
            forgotten_seq: 0,
            next_seq,
            ready: VecDeque::new(),
            closed: VecDeque::new(),
            overflowed: Vec::new(),
            last_sweep: None,
            next_due: None,
            stats: Stats::default(),
        }
    }

    /// The configuration the hub was made with.
    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// Adds a subscriber to `topics` (the default topic when empty; duplicates count once).
    /// Its queue starts with the retry hint (if configured), then, when `last_event_id` is
    /// given, the replay described in the [module docs](self#history-and-replay).
    ///
    /// Refuses with [`SubscribeError::Full`] when [`HubConfig::max_subscribers`] are
    /// subscribed. The caller should bound the number of topics per subscription: each
    /// topic named costs a little memory, and the replay can hold the history of each.
    pub fn subscribe(
        &mut self,
        topics: &[Topic],
        last_event_id: Option<&str>,
        now: Millis,
    ) -> Result<Subscribed, SubscribeError> {
        // Slab indices are u32.
        let max = self.config.max_subscribers.min(u32::MAX as usize);
        if self.stats.subscribers >= max as u64 {
            self.stats.refused += 1;
            return Err(SubscribeError::Full {
                max: self.config.max_subscribers,
            });
        }

        let mut memberships: Vec<Membership> = if topics.is_empty() {
            let topic = self.topic_or_create(&Topic::default());
            vec![Membership { topic, pos: 0 }]
        } else {
            let mut m: Vec<Membership> = topics
                .iter()
                .map(|name| Membership {
                    topic: self.topic_or_create(name),
                    pos: 0,
                })
                .collect();
            m.sort_unstable_by_key(|m| m.topic);
            m.dedup_by_key(|m| m.topic);
            m
        };

        let (replay, marker, backlog) = match last_event_id {
            None => (Replay::Live, None, VecDeque::new()),
            Some(last) => {
                let (missed, backlog) = self.replay(&memberships, last);
                let replayed = backlog.len();
                self.stats.replayed += replayed as u64;
                if missed {
                    // The requested id as data, when it can be echoed safely.
                    let data = if EventId::new(last).is_ok() { last } else { "" };
                    let event = Event::new(data).with_type(self.missed_type.clone());
                    (
                        Replay::Missed { replayed },
                        Some(Frame::event(&event)),
                        backlog,
                    )
                } else {
                    (Replay::Resumed { replayed }, None, backlog)
                }
            }
        };

        let index = match self.free_slots.pop() {
            Some(index) => index,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    sub: None,
                });
                // Fits: at most `max` (<= u32::MAX) slots exist, and this one is new.
                (self.slots.len() - 1) as u32
            }
        };
        for (k, m) in memberships.iter_mut().enumerate() {
            if let Some(topic) = self.topics[m.topic as usize].as_mut() {
                if topic.subs.is_empty() {
                    self.idle_topics.remove(&(topic.last_published, m.topic));
                }
                m.pos = topic.subs.len() as u32;
                topic.subs.push(Member {
                    sub: index,
                    membership: k as u32,
                });
            }
        }
        let sub = Subscriber {
            live: Queue::new(self.config.queue_capacity, self.config.overflow),
            backlog,
            marker,
            topics: memberships,
            last_queued: now,
            retry_pending: self.retry_frame.is_some(),
            ping_pending: false,
            notify: Notify::Idle,
        };
        let has_frames = sub.queued() > 0;
        let slot = &mut self.slots[index as usize];
        slot.sub = Some(sub);
        let id = SubscriberId {
            index,
            generation: slot.generation,
        };
        if has_frames {
            self.list_ready(id);
        }
        if let Some(ka) = self.keepalive {
            let due = now.saturating_add(ka.due_after);
            self.next_due = Some(self.next_due.map_or(due, |d| d.min(due)));
        }
        self.stats.subscribers += 1;
        self.stats.subscribed += 1;
        Ok(Subscribed { id, replay })
    }

    /// Finds where `last` resumes in the topics of `memberships`: whether events were missed,
    /// and the retained events after that position, in `seq` order.
    fn replay(&self, memberships: &[Membership], last: &str) -> (bool, VecDeque<Frame>) {
        let topics = || {
            memberships
                .iter()
                .filter_map(|m| self.topics[m.topic as usize].as_ref())
        };
        let number = canonical_u64(last);
        let exact = topics().filter_map(|t| find_wire_id(t, last, number)).max();
        // `first_seq - 1` is "nothing of this hub seen yet"; anything older is another
        // instance's id.
        let first = self.config.first_seq.max(1) - 1;
        let position = exact.or(number.filter(|&n| first <= n && n < self.next_seq));
        let (after, missed) = match position {
            Some(p) => (p, topics().any(|t| t.evicted_seq > p)),
            None => (0, true),
        };
        let mut events: Vec<&Retained> = Vec::new();
        for topic in topics() {
            let start = topic.history.partition_point(|r| r.seq <= after);
            events.extend(topic.history.range(start..));
        }
        // Each topic's part is sorted already; a stable sort merges the runs cheaply.
        events.sort_by_key(|r| r.seq);
        (
            missed,
            events.into_iter().map(|r| r.frame.clone()).collect(),
        )
    }

    /// The index of topic `name`, created (with no history) if the hub does not know it.
    fn topic_or_create(&mut self, name: &Topic) -> u32 {
        if let Some(&index) = self.topic_index.get(name) {
            return index;
        }
        let state = TopicState {
            name: name.clone(),
            subs: Vec::new(),
            history: VecDeque::new(),
            history_bytes: 0,
            custom_ids: 0,
            // Events of a forgotten incarnation of this topic may have been missed.
            evicted_seq: self.forgotten_seq,
            last_published: 0,
        };
        let index = match self.free_topics.pop() {
            Some(index) => {
                self.topics[index as usize] = Some(state);
                index
            }
            None => {
                self.topics.push(Some(state));
                // Topics are bounded by max_topics plus subscribed topics, far below u32::MAX
                // for any hub that fits in memory.
                (self.topics.len() - 1) as u32
            }
        };
        self.topic_index.insert(name.clone(), index);
        index
    }

    /// Forgets topic `index` entirely, remembering how far its events went.
    fn forget_topic(&mut self, index: u32) {
        if let Some(topic) = self.topics[index as usize].take() {
            self.forgotten_seq = self
                .forgotten_seq
                .max(topic.last_published)
                .max(topic.evicted_seq);
            self.idle_topics.remove(&(topic.last_published, index));
            self.topic_index.remove(&topic.name);
            self.free_topics.push(index);
        }
    }

    /// Publishes `event` to `topic`: assigns the next id when the event has none, encodes it
    /// once, keeps it in the topic's history and queues it to every subscriber of the topic
    /// under the overflow policy. Returns the event's id (its wire id).
    pub fn publish(&mut self, topic: &Topic, event: Event, now: Millis) -> EventId {
        let seq = self.next_seq;
        self.next_seq += 1;
        let (id, custom, frame) = match event.id() {
            Some(id) => (id.clone(), Some(id.clone()), Frame::event(&event)),
            None => {
                let id = EventId::from(seq);
                let frame = Frame::event(&event.with_id(id.clone()));
                (id, None, frame)
            }
        };
        self.publish_frame(topic, seq, id, custom, frame, now)
    }

    /// Publishes an event whose order was decided outside this hub (a log shared by several
    /// hubs, such as a Redis Stream): like [`publish`](Hub::publish), but the position `seq`
    /// is the caller's, and the event must carry its id. `seq` must be above every `seq`
    /// published to `topic` so far ([`topic_last_seq`](Hub::topic_last_seq)); otherwise
    /// nothing happens and [`PublishAtError::NotAfter`] says so, so delivering the same log
    /// entry twice is harmless. Replay merges topics by `seq`, so the caller's numbering
    /// must order events across topics too. The hub's own counter is left alone: a hub fed
    /// this way should not also assign ids with `publish`.
    ///
    /// ```
    /// use ssecast::{Event, EventId, Hub, HubConfig, Millis, PublishAtError, Topic};
    ///
    /// let mut hub = Hub::new(HubConfig { retry: None, ..HubConfig::default() });
    /// let t = Topic::default();
    /// let event = |id: &str| Event::new("x").with_id(EventId::new(id).unwrap());
    /// assert!(hub.publish_at(&t, event("5-0"), 5_000_000, Millis(0)).is_ok());
    /// assert_eq!(
    ///     hub.publish_at(&t, event("5-0"), 5_000_000, Millis(1)),
    ///     Err(PublishAtError::NotAfter { last: 5_000_000 })
    /// );
    /// assert_eq!(hub.topic_last_seq(&t), Some(5_000_000));
    /// ```
    pub fn publish_at(
        &mut self,
        topic: &Topic,
        event: Event,
        seq: u64,
        now: Millis,
    ) -> Result<EventId, PublishAtError> {
        let Some(id) = event.id().cloned() else {
            return Err(PublishAtError::NoId);
        };
        if let Some(last) = self.topic_last_seq(topic) {
            if seq <= last {
                return Err(PublishAtError::NotAfter { last });
            }
        }
        let frame = Frame::event(&event);
        Ok(self.publish_frame(topic, seq, id.clone(), Some(id), frame, now))
    }

    /// The `seq` of the newest event published to `topic`, if the hub knows the topic and
    /// something was published to it.
    pub fn topic_last_seq(&self, topic: &Topic) -> Option<u64> {
        let &index = self.topic_index.get(topic)?;
        let state = self.topics[index as usize].as_ref()?;
        (state.last_published > 0).then_some(state.last_published)
    }

    /// How many subscribers follow `topic` now.
    pub fn topic_subscribers(&self, topic: &Topic) -> usize {
        self.topic_index
            .get(topic)
            .and_then(|&index| self.topics[index as usize].as_ref())
            .map_or(0, |state| state.subs.len())
    }

    /// Records that events of `topic` up to `seq` may be missing from its history (it was
    /// filled from a log that had let them go): a resume from a position before `seq` is
    /// then [`Replay::Missed`]. Does nothing for a topic the hub does not know.
    pub fn mark_evicted(&mut self, topic: &Topic, seq: u64) {
        if let Some(&index) = self.topic_index.get(topic) {
            if let Some(state) = self.topics[index as usize].as_mut() {
                state.evicted_seq = state.evicted_seq.max(seq);
            }
        }
    }

    /// Keeps `frame` (event `seq`, wire id `id`) in the history of `topic` and queues it.
    fn publish_frame(
        &mut self,
        topic: &Topic,
        seq: u64,
        id: EventId,
        custom: Option<EventId>,
        frame: Frame,
        now: Millis,
    ) -> EventId {
        self.stats.published += 1;
        let index = match self.topic_index.get(topic) {
            Some(&index) => index,
            None => {
                if self.topic_index.len() >= self.config.max_topics {
                    if let Some(&(_, oldest)) = self.idle_topics.first() {
                        self.forget_topic(oldest);
                    }
                }
                self.topic_or_create(topic)
            }
        };
        let Some(state) = self.topics[index as usize].as_mut() else {
            // topic_or_create just made sure the topic exists.
            return id;
        };
        if state.subs.is_empty() {
            self.idle_topics.remove(&(state.last_published, index));
            self.idle_topics.insert((seq, index));
        }
        state.last_published = seq;

        // Keep it in the history, then let the oldest go until both limits hold.
        state.custom_ids += usize::from(custom.is_some());
        state.history_bytes += frame.len();
        state.history.push_back(Retained {
            seq,
            id: custom,
            frame: frame.clone(),
        });
        while state.history.len() > self.config.history_events
            || state.history_bytes > self.config.history_bytes
        {
            let Some(old) = state.history.pop_front() else {
                break;
            };
            state.history_bytes -= old.frame.len();
            state.custom_ids -= usize::from(old.id.is_some());
            state.evicted_seq = old.seq;
        }

        // The hot loop: one Arc clone and one queue push per subscriber.
        for member in &state.subs {
            let slot = &mut self.slots[member.sub as usize];
            let Some(sub) = slot.sub.as_mut() else {
                continue;
            };
            match sub.live.push(frame.clone()) {
                Pushed::Queued => {
                    sub.last_queued = now;
                    if sub.notify == Notify::Idle {
                        sub.notify = Notify::Listed;
                        self.ready.push_back(SubscriberId {
                            index: member.sub,
                            generation: slot.generation,
                        });
                    }
                }
                Pushed::DroppedOldest => {
                    sub.last_queued = now;
                    self.stats.dropped += 1;
                }
                Pushed::DroppedNewest => self.stats.dropped += 1,
                Pushed::Overflowed => self.overflowed.push(member.sub),
            }
        }
        self.compact_ready();

        let mut overflowed = std::mem::take(&mut self.overflowed);
        for index in overflowed.drain(..) {
            let generation = self.slots[index as usize].generation;
            let id = SubscriberId { index, generation };
            if self.remove(id) {
                self.stats.disconnected_overflow += 1;
                self.closed.push_back((id, CloseReason::Overflow));
            }
        }
        self.overflowed = overflowed;
        id
    }

    /// Removes a subscriber and its queue. A stale id is ignored.
    pub fn unsubscribe(&mut self, id: SubscriberId) {
        if self.remove(id) {
            self.stats.unsubscribed += 1;
        }
    }

    /// Removes a live subscriber; false for a stale id.
    fn remove(&mut self, id: SubscriberId) -> bool {
        let Some(slot) = self.slots.get_mut(id.index()) else {
            return false;
        };
        if slot.generation != id.generation {
            return false;
        }
        let Some(sub) = slot.sub.take() else {
            return false;
        };
        slot.generation = slot.generation.wrapping_add(1);
        self.free_slots.push(id.index);
        self.stats.subscribers -= 1;
        if self.stats.subscribers == 0 {
            // Nobody left to ping: no deadline until the next subscribe.
            self.next_due = None;
        }
        for m in &sub.topics {
            let Some(topic) = self.topics[m.topic as usize].as_mut() else {
                continue;
            };
            let pos = m.pos as usize;
            topic.subs.swap_remove(pos);
            if let Some(moved) = topic.subs.get(pos).copied() {
                if let Some(other) = self.slots[moved.sub as usize].sub.as_mut() {
                    other.topics[moved.membership as usize].pos = m.pos;
                }
            }
            if topic.subs.is_empty() {
                if topic.history.is_empty() && topic.evicted_seq <= self.forgotten_seq {
                    // Nothing to replay and nothing to remember: drop it now.
                    self.forget_topic(m.topic);
                } else {
                    self.idle_topics.insert((topic.last_published, m.topic));
                }
            }
        }
        true
    }

    /// Lets time pass: queues keep-alives that are due. Does nothing before
    /// [`poll_timeout`](Hub::poll_timeout).
    pub fn handle_timeout(&mut self, now: Millis) {
        let Some(ka) = self.keepalive else {
            return;
        };
        match self.poll_timeout() {
            Some(due) if due <= now => {}
            _ => return,
        }
        self.last_sweep = Some(now);
        let mut next_due: Option<Millis> = None;
        for (index, slot) in self.slots.iter_mut().enumerate() {
            let Some(sub) = slot.sub.as_mut() else {
                continue;
            };
            let mut due = sub.last_queued.saturating_add(ka.due_after);
            if due <= now && sub.queued() == 0 {
                sub.ping_pending = true;
                sub.last_queued = now;
                self.stats.keepalives += 1;
                due = now.saturating_add(ka.due_after);
                if sub.notify == Notify::Idle {
                    sub.notify = Notify::Listed;
                    self.ready.push_back(SubscriberId {
                        // Slot indices fit in u32 (see subscribe).
                        index: index as u32,
                        generation: slot.generation,
                    });
                }
            }
            next_due = Some(next_due.map_or(due, |d| d.min(due)));
        }
        self.next_due = next_due;
        self.compact_ready();
    }

    /// When `handle_timeout` should next be called, if ever: `None` without keep-alives or
    /// subscribers. See the [module docs](self#keep-alive) for the guarantee.
    pub fn poll_timeout(&self) -> Option<Millis> {
        let ka = self.keepalive?;
        let due = self.next_due?;
        Some(match self.last_sweep {
            Some(last) => due.max(last.saturating_add(ka.slack)),
            None => due,
        })
    }

    /// A subscriber whose queue became non-empty since it was last drained to empty. Each
    /// such subscriber is returned once until `pop_frame` returns `None` for it; removed
    /// subscribers never come out.
    pub fn poll_ready(&mut self) -> Option<SubscriberId> {
        while let Some(id) = self.ready.pop_front() {
            let Some(sub) = self.live_mut(id) else {
                continue;
            };
            if sub.notify != Notify::Listed {
                continue;
            }
            if sub.queued() == 0 {
                // The caller drained it before asking: nothing to report.
                sub.notify = Notify::Idle;
                continue;
            }
            sub.notify = Notify::Out;
            return Some(id);
        }
        None
    }

    /// A subscriber the hub has removed and the caller must close. Each is reported once.
    pub fn poll_close(&mut self) -> Option<(SubscriberId, CloseReason)> {
        self.closed.pop_front()
    }

    /// Takes the oldest frame queued for `id` (`None` for a stale id). Returning `None`
    /// re-arms [`poll_ready`](Hub::poll_ready) for this subscriber.
    pub fn pop_frame(&mut self, id: SubscriberId) -> Option<Frame> {
        let index = id.index();
        let slot = self.slots.get_mut(index)?;
        if slot.generation != id.generation {
            return None;
        }
        let sub = slot.sub.as_mut()?;
        if sub.retry_pending {
            sub.retry_pending = false;
            return self.retry_frame.clone();
        }
        if let Some(marker) = sub.marker.take() {
            return Some(marker);
        }
        if let Some(frame) = sub.backlog.pop_front() {
            if sub.backlog.is_empty() {
                // Give the replay's memory back: an idle subscriber should cost little.
                sub.backlog = VecDeque::new();
            }
            self.stats.delivered += 1;
            return Some(frame);
        }
        if sub.ping_pending {
            sub.ping_pending = false;
            return Some(self.ping_frame.clone());
        }
        if let Some(frame) = sub.live.pop() {
            self.stats.delivered += 1;
            return Some(frame);
        }
        if sub.notify == Notify::Out {
            sub.notify = Notify::Idle;
        }
        None
    }

    /// Frames queued for `id` now (0 for a stale id): retry hint, missed marker, replay,
    /// keep-alive and live frames together.
    pub fn queued(&self, id: SubscriberId) -> usize {
        match self.slots.get(id.index()) {
            Some(slot) if slot.generation == id.generation => {
                slot.sub.as_ref().map_or(0, Subscriber::queued)
            }
            _ => 0,
        }
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    fn live_mut(&mut self, id: SubscriberId) -> Option<&mut Subscriber> {
        let slot = self.slots.get_mut(id.index())?;
        if slot.generation != id.generation {
            return None;
        }
        slot.sub.as_mut()
    }

    fn list_ready(&mut self, id: SubscriberId) {
        if let Some(sub) = self.live_mut(id) {
            if sub.notify == Notify::Idle {
                sub.notify = Notify::Listed;
                self.ready.push_back(id);
                self.compact_ready();
            }
        }
    }

    /// Drops stale entries from the ready list once they could outnumber live ones, so the
    /// list stays bounded even if the caller subscribes and unsubscribes without polling.
    fn compact_ready(&mut self) {
        if self.ready.len() <= 2 * self.stats.subscribers as usize + 64 {
            return;
        }
        let slots = &self.slots;
        self.ready.retain(|id| {
            slots.get(id.index()).is_some_and(|slot| {
                slot.generation == id.generation
                    && slot
                        .sub
                        .as_ref()
                        .is_some_and(|s| s.notify == Notify::Listed)
            })
        });
    }

    /// The `seq` of every event the hub retains for replay, over all topics, sorted: what a
    /// log of the history must keep so that replaying it rebuilds this history. Everything
    /// else has been let go (by the history bounds, or with its topic). Costs one pass over
    /// the retained events and a sort.
    ///
    /// ```
    /// use ssecast::{Event, Hub, HubConfig, Millis, Topic};
    ///
    /// let mut hub = Hub::new(HubConfig { history_events: 2, ..HubConfig::default() });
    /// let (a, b) = (Topic::new("a").unwrap(), Topic::new("b").unwrap());
    /// for (topic, at) in [(&a, 0), (&b, 1), (&a, 2), (&a, 3), (&b, 4)] {
    ///     hub.publish(topic, Event::new("x"), Millis(at));
    /// }
    /// // Topic a let its first event (seq 1) go; b keeps both of its own.
    /// assert_eq!(hub.retained_seqs(), [2, 3, 4, 5]);
    /// ```
    pub fn retained_seqs(&self) -> Vec<u64> {
        let mut seqs: Vec<u64> = self
            .topics
            .iter()
            .flatten()
            .flat_map(|topic| topic.history.iter().map(|r| r.seq))
            .collect();
        seqs.sort_unstable();
        seqs
    }
}

/// `text` as a number if it is the canonical decimal form of one (what the hub writes).
fn canonical_u64(text: &str) -> Option<u64> {
    let bytes = text.as_bytes();
    let canonical = !bytes.is_empty()
        && bytes.iter().all(u8::is_ascii_digit)
        && (bytes[0] != b'0' || bytes.len() == 1);
    if canonical {
        text.parse().ok()
    } else {
        None
    }
}

/// The `seq` of the newest retained event of `topic` whose wire id is `id`.
fn find_wire_id(topic: &TopicState, id: &str, number: Option<u64>) -> Option<u64> {
    let by_seq = number.and_then(|n| {
        let i = topic.history.partition_point(|r| r.seq < n);
        topic
            .history
            .get(i)
            .filter(|r| r.seq == n && r.id.is_none())
            .map(|r| r.seq)
    });
    if topic.custom_ids == 0 {
        return by_seq;
    }
    let by_custom = topic
        .history
        .iter()
        .rev()
        .find(|r| r.id.as_ref().is_some_and(|c| c.as_str() == id))
        .map(|r| r.seq);
    by_seq.max(by_custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_are_valid() {
        assert!(EventType::new(MISSED_EVENT_TYPE).is_ok());
        assert!(Comment::new("ping").is_ok());
    }

    #[test]
    fn an_idle_subscriber_stays_small() {
        // The server's budget is under 2 KB per idle subscriber; the hub's part is its slot
        // plus a few small heap blocks (memberships, a queue of a few frames).
        assert!(
            std::mem::size_of::<Slot>() <= 160,
            "{}",
            std::mem::size_of::<Slot>()
        );
    }

    #[test]
    fn canonical_numbers_only() {
        assert_eq!(canonical_u64("0"), Some(0));
        assert_eq!(canonical_u64("42"), Some(42));
        assert_eq!(canonical_u64("18446744073709551615"), Some(u64::MAX));
        for text in ["", "+1", "-1", "01", "1a", " 1", "18446744073709551616"] {
            assert_eq!(canonical_u64(text), None, "{text:?}");
        }
    }
}
