//! Subscribing and unsubscribing: a subscriber's selectors and rights interned, its replay
//! queued, and everything released again when it goes.

use std::collections::VecDeque;
use std::fmt;

use super::selector::Matcher;
use super::{
    Grant, Hub, Member, Membership, Notify, Right, Rights, Route, Selector, Slot, Subscriber,
    SubscriberId,
};
use crate::event::{Event, EventId, Millis, Topic};
use crate::queue::Queue;

/// What a subscription with a `Last-Event-ID` got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Replay {
    /// No last event ID was given: the subscriber starts live.
    Live,
    /// Every event after the last event ID that the subscriber may see was still in the
    /// history and has been queued: no gap, no duplicate.
    Resumed {
        /// Events queued from the history.
        replayed: usize,
    },
    /// The last event ID is older than the history (or unknown): events may have been
    /// missed. The subscriber first receives an event of type [`MISSED_EVENT_TYPE`](crate::MISSED_EVENT_TYPE) whose
    /// data is the id it asked for, then all the visible history still kept after the
    /// position (all of it for an unknown id), then live events.
    Missed {
        /// Events queued from the history.
        replayed: usize,
    },
}
/// The result of [`Hub::subscribe`] and [`Hub::subscribe_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Subscribed {
    /// The new subscriber's handle.
    pub id: SubscriberId,
    /// What the `Last-Event-ID` got.
    pub replay: Replay,
    /// The id a Mercure hub reports in its `Last-Event-ID` response header; `None` stands
    /// for `earliest`. See [history and replay](Hub#history-and-replay).
    pub resumed_after: Option<EventId>,
}
/// Why [`Hub::subscribe`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubscribeError {
    /// [`HubConfig::max_subscribers`](crate::HubConfig::max_subscribers) are subscribed already.
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

impl Hub {
    /// Adds a subscriber to `topics`, exactly (the default topic when empty; duplicates count
    /// once), with no rights to private updates: [`subscribe_with`](Hub::subscribe_with)
    /// with [`SelectorKind::Exact`](crate::SelectorKind::Exact) selectors and [`Rights::None`].
    pub fn subscribe(
        &mut self,
        topics: &[Topic],
        last_event_id: Option<&str>,
        now: Millis,
    ) -> Result<Subscribed, SubscribeError> {
        let selectors: Vec<Selector> = if topics.is_empty() {
            vec![Selector::exact(Topic::default())]
        } else {
            topics.iter().cloned().map(Selector::exact).collect()
        };
        self.subscribe_with(&selectors, &Rights::None, last_event_id, now)
    }
    /// Adds a subscriber that receives the updates one of `selectors` matches (none: it
    /// receives nothing but keep-alives; a selector named twice counts once) and the private
    /// ones among them that `rights` allows. Its queue starts, when `last_event_id` is given,
    /// with the replay described in [history and replay](Hub#history-and-replay); the retry
    /// hint (if configured) comes with its first event.
    ///
    /// Refuses with [`SubscribeError::Full`] when [`HubConfig::max_subscribers`](crate::HubConfig::max_subscribers) are
    /// subscribed. The caller should bound the number of selectors and rights per
    /// subscription: each costs a little memory, and the replay can hold the history of each.
    pub fn subscribe_with(
        &mut self,
        selectors: &[Selector],
        rights: &Rights,
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

        // Intern everything first (nothing is forgotten during a subscribe), then register.
        let mut routes: Vec<Route> = selectors
            .iter()
            .map(|s| match s.matcher() {
                Matcher::All => Route::All,
                Matcher::Exact(topic) => Route::Topic(self.topic_or_create(topic)),
                Matcher::Pattern(p) => Route::Pattern(self.patterns.intern(p)),
            })
            .collect();
        routes.sort_unstable();
        routes.dedup();
        let grant = self.grant(rights);

        let (replay, marker, backlog, resumed_after) = match last_event_id {
            None => (Replay::Live, false, VecDeque::new(), None),
            Some(last) => {
                let mut resume = self.replay(&routes, grant.as_deref(), last);
                let replayed = resume.frames.len();
                self.stats.replayed += replayed as u64;
                let replay = if resume.missed {
                    // The requested id as data, when it can be echoed safely.
                    let data = if EventId::new(last).is_ok() { last } else { "" };
                    let event = Event::new(data).with_type(self.missed_type.clone());
                    resume.frames.push_front(self.encode(&event));
                    Replay::Missed { replayed }
                } else {
                    Replay::Resumed { replayed }
                };
                (replay, resume.missed, resume.frames, resume.resumed_after)
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
        let mut memberships = Vec::with_capacity(routes.len());
        for (k, &route) in routes.iter().enumerate() {
            let member = Member {
                sub: index,
                membership: k as u32,
            };
            let pos = match route {
                Route::Topic(t) => {
                    let Some(topic) = self.topics[t as usize].as_mut() else {
                        continue;
                    };
                    if topic.idle() {
                        self.idle_topics.remove(&(topic.last_published, t));
                    }
                    topic.subs.push(member);
                    topic.subs.len() - 1
                }
                Route::Pattern(p) => self.patterns.add_sub(p, member) as usize,
                Route::All => {
                    self.wildcard.push(member);
                    self.wildcard.len() - 1
                }
            };
            memberships.push(Membership {
                route,
                pos: pos as u32,
            });
        }
        let sub = Subscriber {
            live: Queue::new(self.config.queue_capacity, self.config.overflow),
            backlog,
            marker,
            routes: memberships,
            rights: grant,
            seen: 0,
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
        Ok(Subscribed {
            id,
            replay,
            resumed_after,
        })
    }
    /// Interns `rights`, taking a reference to each of its topics and patterns.
    fn grant(&mut self, rights: &Rights) -> Option<Box<Grant>> {
        let selectors = match rights {
            Rights::None => return None,
            Rights::All => return Some(Box::new(Grant::All)),
            Rights::Selectors(selectors) => selectors,
        };
        if selectors
            .iter()
            .any(|s| matches!(s.matcher(), Matcher::All))
        {
            return Some(Box::new(Grant::All));
        }
        let mut interned: Vec<Right> = selectors
            .iter()
            .filter_map(|s| match s.matcher() {
                Matcher::Exact(topic) => Some(Right::Topic(self.topic_or_create(topic))),
                Matcher::Pattern(p) => Some(Right::Pattern(self.patterns.intern(p))),
                // Handled above.
                Matcher::All => None,
            })
            .collect();
        interned.sort_unstable();
        interned.dedup();
        if interned.is_empty() {
            return None;
        }
        for &right in &interned {
            match right {
                Right::Topic(t) => {
                    if let Some(topic) = self.topics[t as usize].as_mut() {
                        if topic.idle() {
                            self.idle_topics.remove(&(topic.last_published, t));
                        }
                        topic.rights_refs += 1;
                    }
                }
                Right::Pattern(p) => self.patterns.add_right(p),
            }
        }
        Some(Box::new(Grant::Some(interned.into())))
    }
    /// Removes a subscriber and its queue. A stale id is ignored.
    pub fn unsubscribe(&mut self, id: SubscriberId) {
        if self.remove(id) {
            self.stats.unsubscribed += 1;
        }
    }
    /// Removes a live subscriber; false for a stale id.
    pub(super) fn remove(&mut self, id: SubscriberId) -> bool {
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
        for m in &sub.routes {
            let moved = match m.route {
                Route::Topic(t) => {
                    let Some(topic) = self.topics[t as usize].as_mut() else {
                        continue;
                    };
                    topic.subs.swap_remove(m.pos as usize);
                    topic.subs.get(m.pos as usize).copied()
                }
                Route::Pattern(p) => self.patterns.remove_sub(p, m.pos),
                Route::All => {
                    self.wildcard.swap_remove(m.pos as usize);
                    self.wildcard.get(m.pos as usize).copied()
                }
            };
            if let Some(moved) = moved {
                if let Some(other) = self.slots[moved.sub as usize].sub.as_mut() {
                    other.routes[moved.membership as usize].pos = m.pos;
                }
            }
            if let Route::Topic(t) = m.route {
                self.topic_released(t);
            }
        }
        if let Some(Grant::Some(rights)) = sub.rights.as_deref() {
            for &right in rights.iter() {
                match right {
                    Right::Topic(t) => {
                        if let Some(topic) = self.topics[t as usize].as_mut() {
                            topic.rights_refs -= 1;
                        }
                        self.topic_released(t);
                    }
                    Right::Pattern(p) => self.patterns.remove_right(p),
                }
            }
        }
        true
    }
}
