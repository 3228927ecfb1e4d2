//! The hub's history: every retained event once, in `seq` order, with each topic's part of
//! it, the bounds that let events go, and the index of publisher-chosen ids.
//!
//! An event is retained whole or not at all: when any bound lets it go (a bound of one of
//! its topics, the hub-wide bound, or one of its topics being forgotten), it leaves the
//! history and the part of every one of its topics, and each of them remembers its `seq` as
//! let go of.

use std::borrow::Borrow;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};

use super::log::Log;
use super::TopicState;
use crate::encode::{id_span, Frame};
use crate::event::Event;

/// One retained event.
#[derive(Debug)]
pub(super) struct Entry {
    pub(super) frame: Frame,
    /// Where the publisher's id is in `frame`, if it chose one; otherwise the wire id is
    /// `seq`.
    pub(super) id: Option<IdSpan>,
    pub(super) topics: Topics,
    pub(super) private: bool,
}

/// Where an event's id is in its frame (see [`id_span`]).
#[derive(Debug, Clone, Copy)]
pub(super) struct IdSpan {
    start: u32,
    len: u32,
}

impl IdSpan {
    /// The span of `event`'s id in its encoded frame.
    pub(super) fn of(event: &Event) -> Option<IdSpan> {
        let (start, len) = id_span(event)?;
        // Both are far below u32::MAX: an id is at most 1 KiB, an event type 256 B.
        Some(IdSpan {
            start: start as u32,
            len: len as u32,
        })
    }
}

/// A retained event's publisher-chosen id, read in place from its frame: the index of ids
/// costs no copy of them. Hashes and compares as the id's `str`, so it is found by one.
#[derive(Debug)]
struct IdKey {
    frame: Frame,
    span: IdSpan,
}

impl IdKey {
    fn as_str(&self) -> &str {
        span_str(&self.frame, self.span)
    }
}

/// The text of `span` in `frame`.
fn span_str(frame: &Frame, span: IdSpan) -> &str {
    let start = span.start as usize;
    let bytes = frame
        .as_bytes()
        .get(start..start + span.len as usize)
        .unwrap_or_default();
    // The bytes are a validated `EventId`, so UTF-8; anything else would be a bug in
    // `id_span`, and reads as an id no lookup can name.
    std::str::from_utf8(bytes).unwrap_or_default()
}

impl Borrow<str> for IdKey {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl Hash for IdKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl PartialEq for IdKey {
    fn eq(&self, other: &IdKey) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for IdKey {}

impl Entry {
    /// The publisher's id, if it chose one.
    pub(super) fn custom_id(&self) -> Option<&str> {
        self.id.map(|span| span_str(&self.frame, span))
    }
}

/// The topics of an event, as indices into the hub's topic table (an event is let go of
/// before any of its topics is forgotten, so they stay valid). One topic, the common case,
/// needs no allocation.
#[derive(Debug)]
pub(super) enum Topics {
    One(u32),
    Many(Box<[u32]>),
}

impl Topics {
    pub(super) fn from_slice(topics: &[u32]) -> Topics {
        match topics {
            [one] => Topics::One(*one),
            many => Topics::Many(many.into()),
        }
    }

    pub(super) fn as_slice(&self) -> &[u32] {
        match self {
            Topics::One(one) => std::slice::from_ref(one),
            Topics::Many(many) => many,
        }
    }
}

/// A topic's part of the history.
#[derive(Debug, Default)]
pub(super) struct TopicHistory {
    /// The `seq`s of its retained events, ascending.
    pub(super) seqs: VecDeque<u64>,
    /// Their encoded bytes.
    pub(super) bytes: usize,
    /// The `seq` of the newest of its events let go of (0: none), or a bound set from outside
    /// (`mark_evicted`, a forgotten incarnation of the topic).
    pub(super) evicted_seq: u64,
}

impl TopicHistory {
    fn add(&mut self, seq: u64, len: usize) {
        // Ascending already unless a caller mixed `publish` with higher `publish_at`
        // positions; then this inserts in place instead of breaking the order.
        if self.seqs.back().is_none_or(|&last| last < seq) {
            self.seqs.push_back(seq);
        } else {
            let at = self.seqs.partition_point(|&s| s < seq);
            self.seqs.insert(at, seq);
        }
        self.bytes += len;
    }

    fn remove(&mut self, seq: u64, len: usize) {
        // Most evictions take the oldest; one of an event with several topics may come from
        // the middle of another topic's part (at most `history_events / 2` moves).
        if self.seqs.front() == Some(&seq) {
            self.seqs.pop_front();
        } else if let Ok(at) = self.seqs.binary_search(&seq) {
            self.seqs.remove(at);
        }
        self.bytes -= len;
        self.evicted_seq = self.evicted_seq.max(seq);
        if self.seqs.is_empty() && self.seqs.capacity() > 8 {
            // Give the memory back: a topic whose events all went should cost little.
            self.seqs = VecDeque::new();
        }
    }
}

/// What one retained event costs the hub besides its frame, counted against
/// `HubConfig::history_total_bytes`: its index entry, the frame's allocation, each topic's
/// part and the publisher-id index (measured 95-170 B over a million events; see `Hub`'s
/// "Memory" docs). Counting it makes the bound one on memory, also for tiny events.
pub(crate) const EVENT_COST: usize = 160;

/// The limits [`History::enforce`] applies (from `HubConfig`).
#[derive(Debug, Clone, Copy)]
pub(super) struct Bounds {
    pub(super) topic_events: usize,
    pub(super) topic_bytes: usize,
    pub(super) total_bytes: usize,
}

#[derive(Debug, Default)]
pub(super) struct History {
    entries: Log,
    /// What the retained events cost: their encoded bytes, each event once, plus
    /// [`EVENT_COST`] each.
    bytes: usize,
    /// Publisher-chosen id to `seq`, for every retained event that has one. Ids are unique
    /// among retained events (a publish with a retained id is a duplicate).
    custom: HashMap<IdKey, u64>,
    /// The newest `seq` let go of anywhere, or marked so from outside (0: none).
    evicted_max: u64,
    /// Events let go of so far.
    evicted: u64,
}

impl History {
    /// Keeps `entry` as event `seq` (a `seq` not retained already), counted in each of its
    /// topics. [`enforce`](History::enforce) then applies the bounds.
    pub(super) fn insert(&mut self, seq: u64, entry: Entry, topics: &mut [Option<TopicState>]) {
        let len = entry.frame.len();
        for &t in entry.topics.as_slice() {
            if let Some(topic) = topics[t as usize].as_mut() {
                topic.history.add(seq, len);
            }
        }
        if let Some(span) = entry.id {
            let key = IdKey {
                frame: entry.frame.clone(),
                span,
            };
            self.custom.insert(key, seq);
        }
        self.bytes += len + EVENT_COST;
        self.entries.insert(seq, entry);
    }

    /// Lets events go until every bound holds: first those of `touched` topics over their
    /// own bounds (their oldest first), then the oldest of the whole hub while the total is
    /// over its bound.
    pub(super) fn enforce(
        &mut self,
        touched: &[u32],
        topics: &mut [Option<TopicState>],
        bounds: Bounds,
    ) {
        let over = |topic: &TopicState| {
            let h = &topic.history;
            h.seqs.len() > bounds.topic_events || h.bytes > bounds.topic_bytes
        };
        for &t in touched {
            while let Some(&oldest) = topics[t as usize]
                .as_ref()
                .filter(|topic| over(topic))
                .and_then(|topic| topic.history.seqs.front())
            {
                self.evict(oldest, topics);
            }
        }
        while self.bytes > bounds.total_bytes {
            let Some(oldest) = self.entries.first() else {
                break;
            };
            self.evict(oldest, topics);
        }
    }

    /// Lets event `seq` go, from the history and from each of its topics' parts.
    pub(super) fn evict(&mut self, seq: u64, topics: &mut [Option<TopicState>]) {
        let Some(entry) = self.entries.remove(seq) else {
            return;
        };
        let len = entry.frame.len();
        for &t in entry.topics.as_slice() {
            if let Some(topic) = topics[t as usize].as_mut() {
                topic.history.remove(seq, len);
            }
        }
        if let Some(id) = entry.custom_id() {
            self.custom.remove(id);
        }
        self.bytes -= len + EVENT_COST;
        self.evicted_max = self.evicted_max.max(seq);
        self.evicted += 1;
    }

    /// Records that events up to `seq` may be missing (`Hub::mark_evicted`).
    pub(super) fn mark_evicted(&mut self, seq: u64) {
        self.evicted_max = self.evicted_max.max(seq);
    }

    /// The retained event whose publisher-chosen id is `id`.
    pub(super) fn find_custom(&self, id: &str) -> Option<u64> {
        self.custom.get(id).copied()
    }

    /// Whether some retained event's publisher-chosen id is `id`.
    pub(super) fn has_custom(&self, id: &str) -> bool {
        !self.custom.is_empty() && self.custom.contains_key(id)
    }

    /// The retained event whose wire id is `id`, publisher-chosen (`custom`) or assigned by
    /// the hub (`number`, the canonical decimal value of `id`).
    pub(super) fn find_wire_id(&self, id: &str, number: Option<u64>) -> Option<u64> {
        self.find_custom(id).or_else(|| {
            let n = number?;
            self.entries.get(n).filter(|e| e.id.is_none()).map(|_| n)
        })
    }

    pub(super) fn contains(&self, seq: u64) -> bool {
        self.entries.get(seq).is_some()
    }

    pub(super) fn get(&self, seq: u64) -> Option<&Entry> {
        self.entries.get(seq)
    }

    /// Every retained event after position `after`, in `seq` order.
    pub(super) fn after(&self, after: u64) -> impl Iterator<Item = (u64, &Entry)> {
        self.entries.after(after)
    }

    pub(super) fn seqs(&self) -> Vec<u64> {
        self.entries.after(0).map(|(seq, _)| seq).collect()
    }

    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(super) fn evicted_max(&self) -> u64 {
        self.evicted_max
    }

    pub(super) fn evicted(&self) -> u64 {
        self.evicted
    }
}
