//! The broker as a state machine: subscribers, selectors, rights, ids, one replay history and
//! keep-alive deadlines, with time passed in. It performs no I/O; the caller pumps it. Both of
//! the server's protocols (native `/events` + `/publish`, and Mercure) drive this one hub:
//! one history, one order of ids.
//!
//! The rules (ids, selectors and rights, history and replay, queues, keep-alive, costs,
//! memory) are documented on [`Hub`], where users of the crate read them.

mod config;
mod dispatch;
mod history;
mod log;
mod publish;
mod replay;
mod selector;
mod subscribe;

use std::collections::{BTreeSet, HashMap, VecDeque};

use crate::encode::Frame;
use crate::event::{Comment, Event, EventType, Millis, Topic};
use crate::queue::Queue;

pub use config::{HubConfig, Stats};
use dispatch::Patterns;
use history::{History, TopicHistory};
pub use publish::{PublishAtError, PublishOutcome, Published, Update};
pub use selector::{Rights, Selector, SelectorError, SelectorKind};
pub use subscribe::{Replay, SubscribeError, Subscribed};

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

/// The event type of the event that tells a resuming client it missed events.
pub const MISSED_EVENT_TYPE: &str = "ssecast.missed";

/// The `Last-Event-ID` that asks for all of history (Mercure's reserved value).
pub const EARLIEST: &str = "earliest";

/// Why the hub wants a subscriber closed (see [`Hub::poll_close`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// Its queue overflowed under [`Overflow::Disconnect`](crate::Overflow::Disconnect).
    Overflow,
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

/// A list a subscriber is routed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Route {
    /// An exact topic's subscribers.
    Topic(u32),
    /// An interned pattern's subscribers.
    Pattern(u32),
    /// The subscribers of `*`.
    All,
}

/// One of a subscriber's routes, and where the subscriber sits in that route's list.
#[derive(Debug, Clone, Copy)]
struct Membership {
    route: Route,
    pos: u32,
}

/// One of a list's subscribers, and which of its memberships points back here, so that a
/// `swap_remove` can fix the moved subscriber in O(1).
#[derive(Debug, Clone, Copy)]
struct Member {
    sub: u32,
    membership: u32,
}

/// One rights selector of a subscriber, interned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Right {
    /// An exact topic (an index into the topic table, kept alive by the reference).
    Topic(u32),
    /// An interned pattern.
    Pattern(u32),
}

/// A subscriber's rights, interned.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Grant {
    All,
    Some(Box<[Right]>),
}

#[derive(Debug)]
struct Subscriber {
    live: Queue,
    /// The missed marker and replayed events, apart from `live` so that they never count
    /// against its capacity.
    backlog: VecDeque<Frame>,
    /// The front of `backlog` is the missed marker (not an event: not counted as delivered).
    marker: bool,
    routes: Vec<Membership>,
    /// `None`: public updates only. Boxed: most subscribers have none.
    rights: Option<Box<Grant>>,
    /// The dispatch epoch of the last update this subscriber was offered: an update that
    /// reaches it twice (several topics or selectors) is queued once.
    seen: u64,
    /// When a frame was last queued (or the subscription began): keep-alives count from it.
    last_queued: Millis,
    /// The retry hint goes out just before the first event frame.
    retry_pending: bool,
    /// Keep-alives live in a flag rather than in `live`, so they never cause an overflow.
    /// One is only queued when everything else is empty, so serving it before `live` keeps
    /// the order.
    ping_pending: bool,
    notify: Notify,
}

impl Subscriber {
    fn events_queued(&self) -> usize {
        self.backlog.len() + self.live.len()
    }

    fn queued(&self) -> usize {
        let events = self.events_queued();
        events + usize::from(self.ping_pending) + usize::from(self.retry_pending && events > 0)
    }
}

#[derive(Debug)]
struct Slot {
    generation: u32,
    sub: Option<Subscriber>,
}

#[derive(Debug)]
struct TopicState {
    name: Topic,
    /// Subscribers with an exact selector of this topic.
    subs: Vec<Member>,
    /// Subscribers holding it as an exact right.
    rights_refs: u32,
    history: TopicHistory,
    /// The `seq` of the newest event published here (0: none); orders topic eviction.
    last_published: u64,
    /// The dispatch epoch of the last update that had this topic.
    stamp: u64,
}

impl TopicState {
    /// Nobody holds it: it may be forgotten.
    fn idle(&self) -> bool {
        self.subs.is_empty() && self.rights_refs == 0
    }
}

/// Keep-alive timing, derived once from [`HubConfig::keepalive`].
#[derive(Debug, Clone, Copy)]
struct Keepalive {
    /// `keepalive - slack`: how long a subscriber may have had nothing queued before a ping.
    due_after: Millis,
    slack: Millis,
}

/// The broker state machine: see the sections below.
///
/// After every input (`subscribe`, `publish`, `unsubscribe`, `handle_timeout`) the caller
/// drains the outputs: [`Hub::poll_ready`] (subscribers with frames to write, each then
/// emptied with [`Hub::pop_frame`]), [`Hub::poll_close`] (subscribers to close), and
/// [`Hub::poll_timeout`] (when to call `handle_timeout` next).
///
/// # Updates and ids
/// An [`Update`] is an [`Event`] with one or more topics (the first canonical, the others
/// alternates) and a `private` flag. Every published update gets the next hub-wide sequence
/// number `seq`. Its wire id (the `id:` field, what [`Hub::publish_update`] returns) is the id
/// the publisher set, or else `seq` in decimal (skipping a number that is the publisher-chosen
/// id of a retained event). The event is encoded once; the same [`Frame`] is queued to every
/// subscriber and kept in the history, once however many topics it has.
///
/// Ids are idempotent: publishing an update whose id is the id of an event still retained
/// publishes nothing and answers [`PublishOutcome::Duplicate`] with the original `seq`, so a
/// publisher that retries is acknowledged once and its event delivered once. So no two
/// retained events share an id, and "a duplicate id resolves to the earliest" (Mercure
/// draft-08) holds trivially.
///
/// A hub fed from a log shared with other hubs (a cluster) or restored from disk uses
/// [`Hub::publish_update_at`] instead: the caller gives each update its `seq` (ordered as the
/// log is) and its id, so every hub fed from the same log gives the same event the same id
/// and replays the same way.
///
/// # Selectors and rights
/// A subscriber has one or more [`Selector`]s and its [`Rights`]. An update reaches it when
/// one of its selectors matches one of the update's topics, and, if the update is private,
/// one of its rights selectors also matches one of the update's topics (canonical or
/// alternate; not necessarily the same one). It receives each update once, however many of
/// its selectors and topics match, in publication order. Rights are checked here, on live
/// delivery and on replay alike.
///
/// Dispatch is indexed. Exact selectors go through a map from topic to its subscribers;
/// subscribers of `*` are in one list; every distinct other selector (and every distinct
/// rights selector) is interned once, reference-counted by the subscribers that use it,
/// compiled once, and evaluated at most once per update, against each of its topics. A
/// subscriber reached twice is skipped by a stamp (the dispatch number of the last update
/// it was offered), and its rights are looked up in the per-update answers of its interned
/// selectors (an exact right is a topic of the update when that topic's stamp is the
/// update's). So a publish costs the subscribers it reaches plus the distinct patterns,
/// never all subscribers.
///
/// # History and replay
/// The history holds every retained event once, in `seq` order. Three bounds let events go:
/// each topic keeps at most [`HubConfig::history_events`] events and
/// [`HubConfig::history_bytes`] encoded bytes (its oldest go first), and the whole hub at
/// most [`HubConfig::history_total_bytes`] (the oldest of the whole hub go first). An update
/// with several topics is one event, counted once against the total and once against each
/// of its topics; it is let go of as a whole as soon as any bound lets it go. Each topic
/// remembers the `seq` of the newest of its events let go of.
///
/// A subscription with a `Last-Event-ID` resumes after a position `p` found as follows:
///
/// 1. [`EARLIEST`] (Mercure's reserved value) is the position before every event: all of
///    history;
/// 2. if a retained event has exactly that wire id, `p` is its `seq` (a hash lookup for
///    publisher-chosen ids);
/// 3. otherwise, if the id is a decimal number `n` (canonical: no sign, no leading zero) from
///    `first_seq - 1` ([`HubConfig::first_seq`]) up to below the next `seq`, `p = n`: a
///    hub-assigned id whose event is no longer retained, or of a topic not selected;
/// 4. otherwise the id is unknown (for example from before a restart, or from the future).
///
/// Every retained event with `seq > p` that the subscriber may see (selectors, and rights
/// for a private one) is queued, in `seq` order, each once. The outcome is
/// [`Replay::Resumed`] when no event the subscriber could have seen was let go of after
/// `p`, else [`Replay::Missed`]; an unknown id is `Missed` with the whole visible history. A
/// `Missed` subscriber first receives an event of type [`MISSED_EVENT_TYPE`], with no id,
/// whose data is the id it asked for (empty if that is not a valid [`EventId`](crate::EventId)).
///
/// Whether something was let go of after `p` is exact per exact topic. For `*` it is
/// whether the hub let any event go after `p`; for a pattern, whether a known topic the
/// pattern matches let one go, or any topic was forgotten, after `p`. Rights are not looked
/// at here: an evicted private event the subscriber could not have read still makes it
/// `Missed`. So `Missed` may be said when nothing visible was lost, never `Resumed` when
/// something was.
///
/// [`Subscribed::resumed_after`] is what a Mercure hub puts in its `Last-Event-ID`
/// (draft-08: `Mercure-Last-Event-ID`) response header: the requested id when the replay is
/// `Resumed` after an event of this hub (nothing visible is missing between it and the first
/// event sent), and `None`, to be sent as `earliest`, otherwise (`earliest` asked, an unknown
/// id, a resume before this hub's first event, or `Missed`), so a client that compares it
/// with the id it sent learns whether it may have lost events.
///
/// Topics are bounded by [`HubConfig::max_topics`]: when a publish creates a topic beyond it,
/// the hub forgets the least recently published topic that nobody subscribes to by an exact
/// selector or holds as an exact right (such topics are never forgotten; if every topic is
/// one, the new topic is allowed, since subscribers are bounded too), with its events. A
/// resume to a topic the hub forgot, or to a topic it creates afterwards, cannot prove
/// nothing was missed: it is `Missed` when the id is older than the newest event of any
/// forgotten topic.
///
/// # Queues
/// A subscriber's frames come out of [`Hub::pop_frame`] in this order: the missed marker,
/// the replayed events, then live frames (events and keep-alives). The retry hint
/// ([`HubConfig::retry`]) is the line `retry: N`, queued as a frame of its own just before
/// the first *event* frame (marker, replayed or live), so that it goes out in the same SSE
/// block as that event: some clients drop a block without data, and a hint alone in one
/// would be lost on them. A keep-alive before the first event goes out alone. Replayed
/// events do not count against [`HubConfig::queue_capacity`]: a client that reconnects with
/// a long backlog keeps its whole live queue. Live events are queued under
/// [`HubConfig::overflow`]; under [`Overflow::Disconnect`](crate::Overflow::Disconnect) a subscriber whose queue is full
/// is removed (as [`Hub::unsubscribe`] would) and reported once by [`Hub::poll_close`].
/// Keep-alives never take a place in the live queue, so they never cause a drop or a
/// disconnect.
///
/// [`Hub::poll_ready`] is edge-triggered: a subscriber comes out once when frames are queued
/// for it, and again only after `pop_frame` has returned `None` for it. So drain each ready
/// subscriber until `None` (or until its socket would block, and come back to it later).
///
/// # Keep-alive
/// With [`HubConfig::keepalive`] `= Some(k)` and `slack = k / 4` (at least 1 ms), a
/// subscriber whose queue is empty and that has had nothing queued for `k - slack` gets a
/// `: ping` comment at the next sweep. `handle_timeout` sweeps when [`Hub::poll_timeout`] is
/// due, which is never later than the first time some subscriber is due, and never sooner
/// than `slack` after the previous sweep. So, when the caller calls `handle_timeout` at
/// `poll_timeout`, a subscriber that drains its queue receives something at least every `k`,
/// and a ping never comes more than `slack` before `k` has passed. A subscriber with frames
/// still queued at a sweep is not idle (its connection has bytes to write): it gets no ping
/// and is looked at again at the next sweep, at most `slack` later. There are no
/// per-subscriber timers: a sweep visits every subscriber, and sweeps are at least `slack`
/// apart, so keep-alives cost at most four visits per subscriber per `k`.
///
/// # Costs
/// A publish encodes once, inserts into the history (`O(log n)`), and, per subscriber it
/// reaches, clones a reference-counted frame into its queue (no allocation in the steady
/// state, no hashing); plus one evaluation per distinct pattern per topic of the update.
/// Each event let go of costs `O(log n)` and, for an event with several topics, a removal
/// from the middle of another topic's part (at most `history_events / 2` moves of a `u64`).
/// `unsubscribe` costs the number of selectors and rights of that subscriber. `poll_timeout`
/// is O(1). A resume costs `O(log n)` to find its position and then the retained events
/// after it (of its topics when all its selectors are exact, of the whole hub otherwise,
/// each checked against its selectors and rights); deciding `Missed` for a pattern may look
/// at every known topic. Publisher-chosen ids are found through a hash map.
///
/// # Memory
/// With `E` = [`HubConfig::history_events`], `B` = [`HubConfig::history_bytes`],
/// `T` = [`HubConfig::history_total_bytes`], and `K` topics (at most
/// [`HubConfig::max_topics`] plus those held by exact selectors and rights, which
/// [`HubConfig::max_subscribers`] bounds), the history takes at most `T`: each retained event
/// is charged its encoded frame (once, however many topics it has) plus
/// [`HubConfig::EVENT_COST`] (160 B) for its bookkeeping, which measures 95 B per event over a
/// million events (≈ 170 B with a publisher-chosen id; the index entry, the frame's allocation
/// header, the id index) and 8 B per topic of each event. So it holds at most
/// `N ≤ min(K × E, T / (14 + 160))` events (14 B: the smallest frame, `id: 1\ndata: \n\n`),
/// and each topic at most `B` bytes of frames. Topics cost `K × (≈ 200 B + the name, at most
/// Topic::MAX_LEN)` besides. Per subscriber, besides its queue
/// ([`HubConfig::queue_capacity`] frames) and a replay backlog while it drains: its slot (at
/// most 160 B), 12 B per selector and 8 B per right, and each distinct pattern once, whoever
/// uses it (a template's compiled matcher, and the lazy DFA cache `regex` grows as it is
/// used).
///
/// # Examples
///
/// ```
/// use ssecast::{Event, Hub, HubConfig, Millis, Replay, Topic};
///
/// let mut config = HubConfig::default();
/// config.retry = None;
/// let mut hub = Hub::new(config);
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
///
/// Mercure-style: selectors, alternate topics, private updates and rights.
///
/// ```
/// use ssecast::{Event, Hub, HubConfig, Millis, Rights, Selector, SelectorKind, Topic, Update};
///
/// let mut config = HubConfig::default();
/// config.retry = None;
/// let mut hub = Hub::new(config);
/// let sel = |s: &str| Selector::new(s, SelectorKind::Topic).unwrap();
/// let topic = |t: &str| Topic::new(t).unwrap();
/// let rights = Rights::Selectors(vec![sel("https://example.com/users/foo")]);
/// let foo = hub.subscribe_with(&[sel("*")], &rights, None, Millis(0)).unwrap().id;
/// let anonymous = hub.subscribe_with(&[sel("*")], &Rights::None, None, Millis(0)).unwrap().id;
///
/// let update = Update::new(topic("https://example.com/books/1"), Event::new("secret"))
///     .with_alternate(topic("https://example.com/users/foo"))
///     .with_private(true);
/// hub.publish_update(update, Millis(1));
/// assert_eq!(hub.pop_frame(foo).unwrap().as_bytes(), b"id: 1\ndata: secret\n\n");
/// assert_eq!(hub.pop_frame(anonymous), None);
/// ```
#[derive(Debug)]
pub struct Hub {
    config: HubConfig,
    slots: Vec<Slot>,
    free_slots: Vec<u32>,
    topics: Vec<Option<TopicState>>,
    free_topics: Vec<u32>,
    topic_index: HashMap<Topic, u32>,
    /// Idle topics (see [`TopicState::idle`]), oldest publish first: the eviction order.
    idle_topics: BTreeSet<(u64, u32)>,
    /// The newest `seq` of any topic forgotten: replays to unknown topics cannot prove that
    /// nothing older was missed.
    forgotten_seq: u64,
    next_seq: u64,
    /// Counts publishes, to stamp what each one touched.
    epoch: u64,
    history: History,
    patterns: Patterns,
    /// The subscribers of `*`.
    wildcard: Vec<Member>,
    ready: VecDeque<SubscriberId>,
    closed: VecDeque<(SubscriberId, CloseReason)>,
    /// Reused by `publish` to collect overflowed subscribers without allocating.
    overflowed: Vec<u32>,
    /// Reused by `publish` for the indices of an update's topics.
    scratch: Vec<u32>,
    /// The `retry: N` line (no blank line: the first event's frame follows it).
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
            retry_frame: config.retry.map(Frame::retry_line),
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
            epoch: 0,
            history: History::default(),
            patterns: Patterns::default(),
            wildcard: Vec::new(),
            ready: VecDeque::new(),
            closed: VecDeque::new(),
            overflowed: Vec::new(),
            scratch: Vec::new(),
            last_sweep: None,
            next_due: None,
            stats: Stats::default(),
        }
    }

    /// The configuration the hub was made with.
    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// The index of topic `name`, created (with no history) if the hub does not know it.
    fn topic_or_create(&mut self, name: &Topic) -> u32 {
        if let Some(&index) = self.topic_index.get(name) {
            return index;
        }
        let state = TopicState {
            name: name.clone(),
            subs: Vec::new(),
            rights_refs: 0,
            history: TopicHistory {
                // Events of a forgotten incarnation of this topic may have been missed.
                evicted_seq: self.forgotten_seq,
                ..TopicHistory::default()
            },
            last_published: 0,
            stamp: 0,
        };
        let index = match self.free_topics.pop() {
            Some(index) => {
                self.topics[index as usize] = Some(state);
                index
            }
            None => {
                self.topics.push(Some(state));
                // Topics are bounded by max_topics plus held topics, far below u32::MAX for
                // any hub that fits in memory.
                (self.topics.len() - 1) as u32
            }
        };
        self.topic_index.insert(name.clone(), index);
        index
    }

    /// Forgets topic `index` entirely, its events included, remembering how far its events
    /// went.
    fn forget_topic(&mut self, index: u32) {
        loop {
            let Some(topic) = self.topics[index as usize].as_ref() else {
                return;
            };
            let Some(&seq) = topic.history.seqs.front() else {
                break;
            };
            self.history.evict(seq, &mut self.topics);
        }
        if let Some(topic) = self.topics[index as usize].take() {
            self.forgotten_seq = self
                .forgotten_seq
                .max(topic.last_published)
                .max(topic.history.evicted_seq);
            self.idle_topics.remove(&(topic.last_published, index));
            self.topic_index.remove(&topic.name);
            self.free_topics.push(index);
        }
    }

    /// Called when topic `t` may have become idle: forgets it at once if that loses
    /// nothing, otherwise lists it for eviction.
    fn topic_released(&mut self, t: u32) {
        let Some(topic) = self.topics[t as usize].as_ref() else {
            return;
        };
        if !topic.idle() {
            return;
        }
        if topic.history.seqs.is_empty() && topic.history.evicted_seq <= self.forgotten_seq {
            // Nothing to replay and nothing to remember: drop it now.
            self.forget_topic(t);
        } else {
            self.idle_topics.insert((topic.last_published, t));
        }
    }

    /// Encodes an event frame, counted.
    fn encode(&mut self, event: &Event) -> Frame {
        self.stats.encoded += 1;
        Frame::event(event)
    }

    /// The `seq` of the newest event published to `topic`, if the hub knows the topic and
    /// something was published to it.
    pub fn topic_last_seq(&self, topic: &Topic) -> Option<u64> {
        let &index = self.topic_index.get(topic)?;
        let state = self.topics[index as usize].as_ref()?;
        (state.last_published > 0).then_some(state.last_published)
    }

    /// How many subscribers follow `topic` now by an exact selector.
    pub fn topic_subscribers(&self, topic: &Topic) -> usize {
        self.topic_index
            .get(topic)
            .and_then(|&index| self.topics[index as usize].as_ref())
            .map_or(0, |state| state.subs.len())
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
    /// subscribers. See [keep-alive](Hub#keep-alive) for the guarantee.
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
        let event_next = !sub.backlog.is_empty() || (!sub.ping_pending && !sub.live.is_empty());
        if sub.retry_pending && event_next {
            sub.retry_pending = false;
            return self.retry_frame.clone();
        }
        if let Some(frame) = sub.backlog.pop_front() {
            if sub.backlog.is_empty() {
                // Give the replay's memory back: an idle subscriber should cost little.
                sub.backlog = VecDeque::new();
            }
            if std::mem::take(&mut sub.marker) {
                return Some(frame);
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

    /// Frames queued for `id` now (0 for a stale id): missed marker, replay, keep-alive and
    /// live frames, and the retry hint when an event follows it.
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
        Stats {
            history_bytes: self.history.bytes() as u64,
            history_evicted: self.history.evicted(),
            ..self.stats
        }
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
    fn patterns_and_rights_topics_are_released_with_their_last_user() {
        let mut hub = Hub::new(HubConfig {
            retry: None,
            ..HubConfig::default()
        });
        let books = Selector::new("https://example.com/books/{id}", SelectorKind::Topic);
        let users = Selector::new("https://example.com/users/{u}", SelectorKind::Topic);
        let (books, users) = (books.unwrap(), users.unwrap());
        let own = Selector::new("https://example.com/users/7", SelectorKind::Topic).unwrap();
        let rights = Rights::Selectors(vec![users.clone(), own]);
        let ids: Vec<SubscriberId> = (0..10)
            .map(|_| {
                let selectors = [books.clone(), users.clone()];
                hub.subscribe_with(&selectors, &rights, None, Millis(0))
                    .unwrap()
                    .id
            })
            .collect();
        // Two distinct patterns, shared by everyone (users/{u} both routes and grants), and
        // the exact right's topic.
        assert_eq!(hub.patterns.len(), 2);
        assert_eq!(hub.patterns.routing().len(), 2);
        assert_eq!(hub.topic_index.len(), 1);
        for id in ids {
            hub.unsubscribe(id);
        }
        assert_eq!(hub.patterns.len(), 0);
        assert!(hub.patterns.routing().is_empty());
        assert!(hub.topic_index.is_empty());
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
