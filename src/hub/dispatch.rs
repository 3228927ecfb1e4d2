//! The interned patterns: every distinct selector that is neither exact nor `*`, compiled
//! once, shared by the subscribers that route by it or hold it as a right, and evaluated at
//! most once per update.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use std::collections::VecDeque;

use super::selector::{Pattern, PatternKey};
use super::{Grant, Member, Notify, Right, Slot, Stats, SubscriberId, TopicState};
use crate::encode::Frame;
use crate::event::{Millis, Topic};
use crate::queue::Pushed;
use crate::urlpattern::{BaseUrl, TopicUrl};

#[derive(Debug)]
pub(super) struct PatternState {
    pub(super) pattern: Pattern,
    key: PatternKey,
    /// Subscribers routed by it.
    pub(super) subs: Vec<Member>,
    /// Subscribers holding it as a right.
    rights_refs: u32,
    /// Where it sits in [`Patterns::routing`] while `subs` is not empty.
    routing_pos: u32,
    /// The dispatch epoch it was last evaluated for, and the answer: whether it matched one
    /// of that update's topics. A `Cell`, so that a rights check can evaluate it while the
    /// fan-out walks another pattern's subscribers.
    stamp: Cell<u64>,
    matched: Cell<bool>,
}

#[derive(Debug, Default)]
pub(super) struct Patterns {
    slots: Vec<Option<PatternState>>,
    free: Vec<u32>,
    index: HashMap<PatternKey, u32>,
    /// Patterns with routing subscribers: each is evaluated once per update.
    routing: Vec<u32>,
    /// The current update's topics parsed as URLs, for URL patterns: parsed once per update
    /// (and base), not once per pattern.
    urls: UrlCache,
}

#[derive(Debug, Default)]
struct UrlCache {
    epoch: Cell<u64>,
    base: RefCell<Option<BaseUrl>>,
    topics: RefCell<Vec<Option<TopicUrl>>>,
}

impl Patterns {
    /// The index of `pattern`, interned (with no users yet) if new. The caller adds a user
    /// before anything could drop it.
    pub(super) fn intern(&mut self, pattern: &Pattern) -> u32 {
        let key = pattern.key();
        if let Some(&p) = self.index.get(&key) {
            return p;
        }
        let state = PatternState {
            pattern: pattern.clone(),
            key: key.clone(),
            subs: Vec::new(),
            rights_refs: 0,
            routing_pos: 0,
            stamp: Cell::new(0),
            matched: Cell::new(false),
        };
        let p = match self.free.pop() {
            Some(p) => {
                self.slots[p as usize] = Some(state);
                p
            }
            None => {
                self.slots.push(Some(state));
                // Patterns are bounded by subscribers times their selectors and rights.
                (self.slots.len() - 1) as u32
            }
        };
        self.index.insert(key, p);
        p
    }

    pub(super) fn get(&self, p: u32) -> Option<&PatternState> {
        self.slots.get(p as usize).and_then(Option::as_ref)
    }

    /// Lists `member` as routed by pattern `p`; returns its position in the pattern's list.
    pub(super) fn add_sub(&mut self, p: u32, member: Member) -> u32 {
        let Some(state) = self.slots[p as usize].as_mut() else {
            return 0;
        };
        if state.subs.is_empty() {
            state.routing_pos = self.routing.len() as u32;
            self.routing.push(p);
        }
        state.subs.push(member);
        (state.subs.len() - 1) as u32
    }

    /// Removes the member at `pos` of pattern `p`'s list; returns the member moved into its
    /// place (whose membership the caller fixes), if any.
    pub(super) fn remove_sub(&mut self, p: u32, pos: u32) -> Option<Member> {
        let state = self.slots[p as usize].as_mut()?;
        let pos = pos as usize;
        state.subs.swap_remove(pos);
        let moved = state.subs.get(pos).copied();
        if state.subs.is_empty() {
            let at = state.routing_pos as usize;
            self.routing.swap_remove(at);
            if let Some(&other) = self.routing.get(at) {
                if let Some(o) = self.slots[other as usize].as_mut() {
                    o.routing_pos = at as u32;
                }
            }
            self.drop_if_unused(p);
        }
        moved
    }

    pub(super) fn add_right(&mut self, p: u32) {
        if let Some(state) = self.slots[p as usize].as_mut() {
            state.rights_refs += 1;
        }
    }

    pub(super) fn remove_right(&mut self, p: u32) {
        if let Some(state) = self.slots[p as usize].as_mut() {
            state.rights_refs -= 1;
            self.drop_if_unused(p);
        }
    }

    /// Forgets pattern `p` once no subscriber uses it (nor was ever added, after `intern`).
    pub(super) fn drop_if_unused(&mut self, p: u32) {
        let unused = self.slots[p as usize]
            .as_ref()
            .is_some_and(|s| s.subs.is_empty() && s.rights_refs == 0);
        if unused {
            if let Some(state) = self.slots[p as usize].take() {
                self.index.remove(&state.key);
                self.free.push(p);
            }
        }
    }

    /// The patterns with routing subscribers.
    pub(super) fn routing(&self) -> &[u32] {
        &self.routing
    }

    /// Whether pattern `p` matches one of `topics`, the topics of the update of dispatch
    /// epoch `epoch`: evaluated the first time it is asked for that epoch, remembered after.
    pub(super) fn matches_update(&self, p: u32, epoch: u64, topics: &[Topic]) -> bool {
        let Some(state) = self.get(p) else {
            return false;
        };
        if state.stamp.get() != epoch {
            let matched = match &state.pattern {
                Pattern::UrlPattern(pattern) => {
                    let urls = &self.urls;
                    let stale = urls.epoch.get() != epoch
                        || urls.base.borrow().as_ref() != Some(pattern.base());
                    if stale {
                        let parsed = topics
                            .iter()
                            .map(|t| TopicUrl::parse(t.as_str(), pattern.base()))
                            .collect();
                        *urls.topics.borrow_mut() = parsed;
                        *urls.base.borrow_mut() = Some(pattern.base().clone());
                        urls.epoch.set(epoch);
                    }
                    // A topic that is not a URL matches no URL pattern (`*` is never one
                    // here: `Selector::url_pattern` makes it `Matcher::All`).
                    urls.topics
                        .borrow()
                        .iter()
                        .flatten()
                        .any(|url| pattern.matches_url(url))
                }
                other => topics.iter().any(|t| other.matches(t)),
            };
            state.matched.set(matched);
            state.stamp.set(epoch);
        }
        state.matched.get()
    }

    /// How many patterns are interned (for tests of the reference counts).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.index.len()
    }
}

/// What a fan-out offers each subscriber it reaches.
pub(super) struct Offer<'a> {
    pub(super) frame: &'a Frame,
    pub(super) now: Millis,
    pub(super) epoch: u64,
    /// The update's topics if it is private (rights are checked), `None` if public.
    pub(super) private: Option<&'a [Topic]>,
    pub(super) topics: &'a [Option<TopicState>],
    pub(super) patterns: &'a Patterns,
}
/// The mutable side of a fan-out.
pub(super) struct Sink<'a> {
    pub(super) slots: &'a mut [Slot],
    pub(super) ready: &'a mut VecDeque<SubscriberId>,
    pub(super) overflowed: &'a mut Vec<u32>,
    pub(super) stats: &'a mut Stats,
}
impl Offer<'_> {
    /// Whether a subscriber with `grant` may read this update.
    fn allowed(&self, grant: Option<&Grant>, topics: &[Topic]) -> bool {
        match grant {
            None => false,
            Some(Grant::All) => true,
            Some(Grant::Some(rights)) => rights.iter().any(|right| match *right {
                Right::Topic(t) => self.topics[t as usize]
                    .as_ref()
                    .is_some_and(|topic| topic.stamp == self.epoch),
                Right::Pattern(p) => self.patterns.matches_update(p, self.epoch, topics),
            }),
        }
    }

    /// Queues the frame to every subscriber of `members` not offered this update already.
    /// The hot loop: per subscriber, a stamp check, one `Arc` clone and one queue push.
    pub(super) fn fan_out(&self, members: &[Member], sink: &mut Sink<'_>) {
        for member in members {
            let slot = &mut sink.slots[member.sub as usize];
            let Some(sub) = slot.sub.as_mut() else {
                continue;
            };
            if sub.seen == self.epoch {
                continue;
            }
            sub.seen = self.epoch;
            if let Some(topics) = self.private {
                if !self.allowed(sub.rights.as_deref(), topics) {
                    continue;
                }
            }
            match sub.live.push(self.frame.clone()) {
                Pushed::Queued => {
                    sub.last_queued = self.now;
                    if sub.notify == Notify::Idle {
                        sub.notify = Notify::Listed;
                        sink.ready.push_back(SubscriberId {
                            index: member.sub,
                            generation: slot.generation,
                        });
                    }
                }
                Pushed::DroppedOldest => {
                    sub.last_queued = self.now;
                    sink.stats.dropped += 1;
                }
                Pushed::DroppedNewest => sink.stats.dropped += 1,
                Pushed::Overflowed => sink.overflowed.push(member.sub),
            }
        }
    }
}
