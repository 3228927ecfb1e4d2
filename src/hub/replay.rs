//! Resuming after a `Last-Event-ID`: the position, whether anything visible was missed, and
//! the retained events a subscriber may see after it.

use std::collections::{HashMap, VecDeque};

use super::{canonical_u64, Grant, Hub, Right, Route, EARLIEST};
use crate::encode::Frame;
use crate::event::EventId;

/// Per-topic answers remembered during one replay, so a pattern is evaluated once per topic
/// rather than once per event.
#[derive(Default)]
struct TopicMemo(HashMap<u32, bool>);

impl TopicMemo {
    fn get(&mut self, t: u32, compute: impl FnOnce(u32) -> bool) -> bool {
        *self.0.entry(t).or_insert_with(|| compute(t))
    }
}

/// What a resume found (see [`Hub::replay`]).
pub(super) struct Resume {
    pub(super) missed: bool,
    pub(super) frames: VecDeque<Frame>,
    pub(super) resumed_after: Option<EventId>,
}

impl Hub {
    /// Finds where `last` resumes for a subscriber routed by `routes` with rights `grant`:
    /// whether events were missed, the retained events it may see after that position, in
    /// `seq` order, and the id to report.
    pub(super) fn replay(&self, routes: &[Route], grant: Option<&Grant>, last: &str) -> Resume {
        let first = self.config.first_seq.max(1);
        let number = canonical_u64(last);
        // `first_seq - 1` is "nothing of this hub seen yet"; anything older is another
        // instance's id.
        let (position, report) = if last == EARLIEST {
            (Some(0), false)
        } else if let Some(seq) = self.history.find_wire_id(last, number) {
            (Some(seq), true)
        } else {
            match number.filter(|&n| first - 1 <= n && n < self.next_seq) {
                Some(n) => (Some(n), n >= first),
                None => (None, false),
            }
        };
        let (after, missed) = match position {
            Some(p) => (p, self.missed_after(routes, p)),
            None => (0, true),
        };
        let resumed_after = if missed || !report {
            None
        } else {
            EventId::new(last).ok()
        };

        let exact_only = routes.iter().all(|r| matches!(r, Route::Topic(_)));
        let candidates: Vec<u64> = if exact_only {
            // Each exact topic's part is sorted already; merge them, and keep an event of
            // several of these topics once.
            let mut seqs: Vec<u64> = Vec::new();
            for route in routes {
                if let Route::Topic(t) = route {
                    if let Some(topic) = self.topics[*t as usize].as_ref() {
                        let s = &topic.history.seqs;
                        let start = s.partition_point(|&seq| seq <= after);
                        seqs.extend(s.range(start..));
                    }
                }
            }
            seqs.sort_unstable();
            seqs.dedup();
            seqs
        } else {
            self.history.after(after).map(|(seq, _)| seq).collect()
        };

        let mut routed = TopicMemo::default();
        let mut allowed = TopicMemo::default();
        let mut frames = VecDeque::new();
        for seq in candidates {
            let Some(entry) = self.history.get(seq) else {
                continue;
            };
            let topics = entry.topics.as_slice();
            if !exact_only
                && !topics
                    .iter()
                    .any(|&t| routed.get(t, |t| self.routes_match(routes, t)))
            {
                continue;
            }
            if entry.private
                && !topics
                    .iter()
                    .any(|&t| allowed.get(t, |t| self.grant_matches(grant, t)))
            {
                continue;
            }
            frames.push_back(entry.frame.clone());
        }
        Resume {
            missed,
            frames,
            resumed_after,
        }
    }
    /// Whether a subscriber routed by `routes` could have seen an event let go of after
    /// position `p` (conservatively for `*` and patterns: see the module docs).
    fn missed_after(&self, routes: &[Route], p: u64) -> bool {
        let mut patterns = false;
        for route in routes {
            match *route {
                Route::Topic(t) => {
                    let evicted = self.topics[t as usize]
                        .as_ref()
                        .map_or(self.forgotten_seq, |topic| topic.history.evicted_seq);
                    if evicted > p {
                        return true;
                    }
                }
                Route::All => {
                    if self.history.evicted_max() > p || self.forgotten_seq > p {
                        return true;
                    }
                }
                Route::Pattern(_) => patterns = true,
            }
        }
        if !patterns {
            return false;
        }
        if self.forgotten_seq > p {
            return true;
        }
        if self.history.evicted_max() <= p {
            return false;
        }
        self.topics.iter().flatten().any(|topic| {
            topic.history.evicted_seq > p
                && routes.iter().any(|route| match *route {
                    Route::Pattern(pat) => self
                        .patterns
                        .get(pat)
                        .is_some_and(|s| s.pattern.matches(&topic.name)),
                    _ => false,
                })
        })
    }
    /// Whether topic `t` is selected by one of `routes`.
    fn routes_match(&self, routes: &[Route], t: u32) -> bool {
        let Some(topic) = self.topics[t as usize].as_ref() else {
            return false;
        };
        routes.iter().any(|route| match *route {
            Route::All => true,
            Route::Topic(u) => u == t,
            Route::Pattern(p) => self
                .patterns
                .get(p)
                .is_some_and(|s| s.pattern.matches(&topic.name)),
        })
    }
    /// Whether `grant` lets its holder read a private event of topic `t`.
    fn grant_matches(&self, grant: Option<&Grant>, t: u32) -> bool {
        match grant {
            None => false,
            Some(Grant::All) => true,
            Some(Grant::Some(rights)) => {
                let Some(topic) = self.topics[t as usize].as_ref() else {
                    return false;
                };
                rights.iter().any(|right| match *right {
                    Right::Topic(u) => u == t,
                    Right::Pattern(p) => self
                        .patterns
                        .get(p)
                        .is_some_and(|s| s.pattern.matches(&topic.name)),
                })
            }
        }
    }
}
