//! Publishing: updates, idempotent ids, caller-ordered positions, and the publish itself
//! (history, then fan-out).

use std::fmt;

use super::dispatch::{Offer, Sink};
use super::history::{Bounds, Entry, IdSpan, Topics};
use super::{canonical_u64, CloseReason, Hub, SubscriberId};
use crate::encode::Frame;
use crate::event::{Event, EventId, Millis, Topic};

/// Why [`Hub::publish_update_at`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublishAtError {
    /// The event has no id; a caller-ordered event must carry its own.
    NoId,
    /// One of the update's topics already has an event at or after that position.
    NotAfter {
        /// That topic's newest `seq`.
        last: u64,
    },
    /// Another retained event (of other topics) is at that position.
    Taken {
        /// The position.
        seq: u64,
    },
}
impl fmt::Display for PublishAtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublishAtError::NoId => f.write_str("the event has no id"),
            PublishAtError::NotAfter { last } => {
                write!(f, "the topic already has an event at {last}")
            }
            PublishAtError::Taken { seq } => write!(f, "another event is at {seq}"),
        }
    }
}
impl std::error::Error for PublishAtError {}
/// An update to publish: an [`Event`], its topics (the first canonical, the others
/// alternates; each counted once) and whether it is private.
///
/// ```
/// use ssecast::{Event, Topic, Update};
/// let topic = |t: &str| Topic::new(t).unwrap();
/// let update = Update::new(topic("https://example.com/books/1"), Event::new("{}"))
///     .with_alternate(topic("https://example.com/users/foo/?topic=https%3A%2F%2Fexample.com%2Fbooks%2F1"))
///     .with_alternate(topic("https://example.com/books/1")) // already there: ignored
///     .with_private(true);
/// assert_eq!(update.topics().len(), 2);
/// assert!(update.is_private());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    topics: Vec<Topic>,
    private: bool,
    event: Event,
}
impl Update {
    /// A public update of `topic`.
    pub fn new(topic: Topic, event: Event) -> Update {
        Update {
            topics: vec![topic],
            private: false,
            event,
        }
    }

    /// Adds an alternate topic (one it has already is ignored). The caller bounds how many:
    /// each costs an evaluation per distinct pattern when published.
    pub fn with_alternate(mut self, topic: Topic) -> Update {
        if !self.topics.contains(&topic) {
            self.topics.push(topic);
        }
        self
    }

    /// Marks the update private (or public).
    pub fn with_private(mut self, private: bool) -> Update {
        self.private = private;
        self
    }

    /// Its topics, the canonical one first.
    pub fn topics(&self) -> &[Topic] {
        &self.topics
    }

    /// Whether it is private.
    pub fn is_private(&self) -> bool {
        self.private
    }

    /// The event.
    pub fn event(&self) -> &Event {
        &self.event
    }
}
/// What [`Hub::publish_update`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublishOutcome {
    /// The update was published.
    Published,
    /// A retained event has the update's id: nothing was published, and [`Published`]
    /// describes that event.
    Duplicate,
}
/// The result of a publish: the event's wire id and position.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Published {
    /// The wire id (the id the publisher chose, or the hub's `seq` in decimal).
    pub id: EventId,
    /// The position in the hub's order (for a duplicate, the original's).
    pub seq: u64,
    /// Whether this publish published anything.
    pub outcome: PublishOutcome,
}

impl Hub {
    /// Publishes `event` to `topic`: [`publish_update`](Hub::publish_update) of a public
    /// update with that one topic. Returns the event's wire id (for a duplicate, the id of
    /// the retained event, which is the same id).
    pub fn publish(&mut self, topic: &Topic, event: Event, now: Millis) -> EventId {
        // The same as `publish_update`, without building an `Update` (its `Vec`).
        self.publish_event(std::slice::from_ref(topic), false, event, now)
            .id
    }

    /// Publishes `update`: assigns the next `seq` (and id, when the event has none), encodes
    /// it once, keeps it in the history and queues it to every subscriber that selects it
    /// (and may read it, if private) under the overflow policy. If its id is the id of a
    /// retained event, publishes nothing: [`PublishOutcome::Duplicate`].
    ///
    /// ```
    /// use ssecast::{Event, EventId, Hub, HubConfig, Millis, PublishOutcome, Topic, Update};
    ///
    /// let mut hub = Hub::new(HubConfig::default());
    /// let event = Event::new("x").with_id(EventId::new("order-7").unwrap());
    /// let update = Update::new(Topic::new("orders").unwrap(), event);
    /// let first = hub.publish_update(update.clone(), Millis(0));
    /// assert_eq!(first.outcome, PublishOutcome::Published);
    /// // The publisher retries: acknowledged again, published once.
    /// let again = hub.publish_update(update, Millis(1));
    /// assert_eq!((again.outcome, again.seq), (PublishOutcome::Duplicate, first.seq));
    /// assert_eq!(hub.stats().published, 1);
    /// ```
    pub fn publish_update(&mut self, update: Update, now: Millis) -> Published {
        let Update {
            topics,
            private,
            event,
        } = update;
        self.publish_event(&topics, private, event, now)
    }

    /// [`publish_update`](Hub::publish_update) of an update given by parts (`topics` not
    /// empty, each once).
    fn publish_event(
        &mut self,
        topics: &[Topic],
        private: bool,
        event: Event,
        now: Millis,
    ) -> Published {
        if let Some(id) = event.id() {
            if let Some(seq) = self
                .history
                .find_wire_id(id.as_str(), canonical_u64(id.as_str()))
            {
                self.stats.duplicates += 1;
                return Published {
                    id: id.clone(),
                    seq,
                    outcome: PublishOutcome::Duplicate,
                };
            }
            let id = id.clone();
            let seq = self.next_seq;
            self.next_seq += 1;
            let frame = self.encode(&event);
            let span = IdSpan::of(&event);
            self.publish_frame(topics, private, seq, id, span, frame, now)
        } else {
            // Never give out a number that is the publisher-chosen id of a retained event.
            let mut seq = self.next_seq;
            let mut id = EventId::from(seq);
            while self.history.has_custom(id.as_str()) {
                seq += 1;
                id = EventId::from(seq);
            }
            self.next_seq = seq + 1;
            let frame = self.encode(&event.with_id(id.clone()));
            self.publish_frame(topics, private, seq, id, None, frame, now)
        }
    }
    /// Publishes an event whose order was decided outside this hub: [`publish_update_at`]
    /// of a public update with one topic, returning its id.
    ///
    /// ```
    /// use ssecast::{Event, EventId, Hub, HubConfig, Millis, PublishAtError, Topic};
    ///
    /// let mut hub = Hub::new(HubConfig::default());
    /// let t = Topic::default();
    /// let event = |id: &str| Event::new("x").with_id(EventId::new(id).unwrap());
    /// assert!(hub.publish_at(&t, event("5-0"), 5_000_000, Millis(0)).is_ok());
    /// assert_eq!(
    ///     hub.publish_at(&t, event("5-0"), 5_000_000, Millis(1)),
    ///     Err(PublishAtError::NotAfter { last: 5_000_000 })
    /// );
    /// assert_eq!(hub.topic_last_seq(&t), Some(5_000_000));
    /// ```
    ///
    /// [`publish_update_at`]: Hub::publish_update_at
    pub fn publish_at(
        &mut self,
        topic: &Topic,
        event: Event,
        seq: u64,
        now: Millis,
    ) -> Result<EventId, PublishAtError> {
        self.publish_update_at(Update::new(topic.clone(), event), seq, now)
            .map(|published| published.id)
    }
    /// Publishes an update whose order was decided outside this hub (a log shared by several
    /// hubs, such as a Redis Stream, or the log of `--data-dir` being restored): like
    /// [`publish_update`](Hub::publish_update), but the position `seq` is the caller's, and
    /// the event must carry its id. `seq` must be above every `seq` published to each of the
    /// update's topics so far ([`topic_last_seq`](Hub::topic_last_seq)) and not the
    /// position of another retained event; otherwise nothing happens and the error says
    /// why, so delivering the same log entry twice is harmless. An id already retained is a
    /// [`PublishOutcome::Duplicate`]. Replay follows `seq`, so the caller's numbering must
    /// order events across topics too. The hub's own counter is left alone: a hub fed this
    /// way should not also assign ids with `publish`.
    pub fn publish_update_at(
        &mut self,
        update: Update,
        seq: u64,
        now: Millis,
    ) -> Result<Published, PublishAtError> {
        let Some(id) = update.event.id().cloned() else {
            return Err(PublishAtError::NoId);
        };
        if seq == 0 {
            // 0 is the position before every event.
            return Err(PublishAtError::NotAfter { last: 0 });
        }
        for topic in &update.topics {
            if let Some(last) = self.topic_last_seq(topic) {
                if seq <= last {
                    return Err(PublishAtError::NotAfter { last });
                }
            }
        }
        if self.history.contains(seq) {
            return Err(PublishAtError::Taken { seq });
        }
        if let Some(original) = self
            .history
            .find_wire_id(id.as_str(), canonical_u64(id.as_str()))
        {
            self.stats.duplicates += 1;
            return Ok(Published {
                id,
                seq: original,
                outcome: PublishOutcome::Duplicate,
            });
        }
        let frame = self.encode(&update.event);
        Ok(self.publish_frame(
            &update.topics,
            update.private,
            seq,
            id,
            IdSpan::of(&update.event),
            frame,
            now,
        ))
    }
    /// The `seq` of every retained event, ascending: what a store that keeps the history
    /// across restarts keeps when it compacts.
    pub fn retained_seqs(&self) -> Vec<u64> {
        self.history.seqs()
    }
    /// Records that events of `topic` up to `seq` may be missing from its history (it was
    /// filled from a log that had let them go): a resume from a position before `seq` is
    /// then [`Replay::Missed`](crate::Replay::Missed). Does nothing for a topic the hub does not know.
    pub fn mark_evicted(&mut self, topic: &Topic, seq: u64) {
        if let Some(&index) = self.topic_index.get(topic) {
            if let Some(state) = self.topics[index as usize].as_mut() {
                state.history.evicted_seq = state.history.evicted_seq.max(seq);
                self.history.mark_evicted(seq);
            }
        }
    }
    /// Keeps `frame` (event `seq`, wire id `id`) in the history and queues it to every
    /// subscriber that may see it.
    #[allow(clippy::too_many_arguments)]
    fn publish_frame(
        &mut self,
        topics: &[Topic],
        private: bool,
        seq: u64,
        id: EventId,
        custom: Option<IdSpan>,
        frame: Frame,
        now: Millis,
    ) -> Published {
        self.stats.published += 1;
        self.epoch += 1;
        let epoch = self.epoch;

        // The topics, created if new (forgetting idle ones beyond the limit, never one of
        // this update's), stamped with this epoch.
        let mut indices = std::mem::take(&mut self.scratch);
        indices.clear();
        for name in topics {
            let index = match self.topic_index.get(name) {
                Some(&index) => index,
                None => {
                    if self.topic_index.len() >= self.config.max_topics {
                        let victim = self
                            .idle_topics
                            .iter()
                            .map(|&(_, t)| t)
                            .find(|t| !indices.contains(t));
                        if let Some(victim) = victim {
                            self.forget_topic(victim);
                        }
                    }
                    self.topic_or_create(name)
                }
            };
            indices.push(index);
        }
        for &t in &indices {
            let Some(state) = self.topics[t as usize].as_mut() else {
                continue;
            };
            if state.idle() {
                self.idle_topics.remove(&(state.last_published, t));
                self.idle_topics.insert((seq.max(state.last_published), t));
            }
            state.last_published = state.last_published.max(seq);
            state.stamp = epoch;
        }

        // Keep it in the history, then let events go until every bound holds.
        let entry = Entry {
            frame: frame.clone(),
            id: custom,
            topics: Topics::from_slice(&indices),
            private,
        };
        self.history.insert(seq, entry, &mut self.topics);
        let bounds = Bounds {
            topic_events: self.config.history_events,
            topic_bytes: self.config.history_bytes,
            total_bytes: self.config.history_total_bytes,
        };
        self.history.enforce(&indices, &mut self.topics, bounds);

        // Fan out: exact topics, `*`, then each routing pattern evaluated once.
        let offer = Offer {
            frame: &frame,
            now,
            epoch,
            private: private.then_some(topics),
            topics: &self.topics,
            patterns: &self.patterns,
        };
        let mut sink = Sink {
            slots: &mut self.slots,
            ready: &mut self.ready,
            overflowed: &mut self.overflowed,
            stats: &mut self.stats,
        };
        for &t in &indices {
            if let Some(state) = self.topics[t as usize].as_ref() {
                offer.fan_out(&state.subs, &mut sink);
            }
        }
        offer.fan_out(&self.wildcard, &mut sink);
        for &p in self.patterns.routing() {
            if self.patterns.matches_update(p, epoch, topics) {
                if let Some(state) = self.patterns.get(p) {
                    offer.fan_out(&state.subs, &mut sink);
                }
            }
        }
        self.scratch = indices;
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
        Published {
            id,
            seq,
            outcome: PublishOutcome::Published,
        }
    }
}
