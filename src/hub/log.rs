//! The retained events in `seq` order: a deque, because events nearly always arrive in order
//! and leave oldest first, with a side map for those that arrive behind the newest.
//!
//! `publish` always appends, and so does `publish_update_at` fed in log order; only a topic
//! filled later with older positions (a cluster node seeding a topic's history) inserts
//! behind the newest, and those go to `late`, a `BTreeMap`, instead of shifting the deque.
//! An event let go of from the middle (a bound of one of its topics) leaves a tombstone in
//! the deque, cleared from the front as the oldest go and compacted once tombstones could
//! outnumber the live entries: each costs O(1) amortized, and the deque holds at most about
//! twice the live entries.

use std::collections::{BTreeMap, VecDeque};

use super::history::Entry;

#[derive(Debug, Default)]
pub(super) struct Log {
    /// Ascending by `seq`; `None` is an event let go of. The front is never `None`.
    ordered: VecDeque<(u64, Option<Entry>)>,
    tombstones: usize,
    /// Events inserted behind the newest of `ordered`; no `seq` is in both.
    late: BTreeMap<u64, Entry>,
}

impl Log {
    /// Keeps `entry` as event `seq` (not retained already).
    pub(super) fn insert(&mut self, seq: u64, entry: Entry) {
        match self.ordered.back() {
            Some(&(last, _)) if seq <= last => {
                if let Ok(at) = self.position(seq) {
                    // A tombstone of that very position: reuse it.
                    if self.ordered[at].1.is_none() {
                        self.ordered[at].1 = Some(entry);
                        self.tombstones -= 1;
                        return;
                    }
                }
                self.late.insert(seq, entry);
            }
            _ => self.ordered.push_back((seq, Some(entry))),
        }
    }

    /// Takes event `seq` out, if retained.
    pub(super) fn remove(&mut self, seq: u64) -> Option<Entry> {
        if let Some(entry) = self.late.remove(&seq) {
            return Some(entry);
        }
        let at = self.position_from_front(seq).ok()?;
        let entry = self.ordered[at].1.take()?;
        if at == 0 {
            self.ordered.pop_front();
            while let Some((_, None)) = self.ordered.front() {
                self.ordered.pop_front();
                self.tombstones -= 1;
            }
        } else {
            self.tombstones += 1;
            if self.tombstones > self.ordered.len() / 2 + 32 {
                self.ordered.retain(|(_, e)| e.is_some());
                self.tombstones = 0;
            }
        }
        if self.ordered.is_empty() && self.ordered.capacity() > 64 {
            // Give the memory back once nothing is retained (a small buffer is kept, so a
            // hub without history does not allocate for every publish).
            self.ordered = VecDeque::new();
        }
        Some(entry)
    }

    pub(super) fn get(&self, seq: u64) -> Option<&Entry> {
        match self.position(seq) {
            Ok(at) => self.ordered[at].1.as_ref(),
            Err(_) => self.late.get(&seq),
        }
    }

    /// The oldest retained event's `seq`.
    pub(super) fn first(&self) -> Option<u64> {
        let ordered = self.ordered.front().map(|&(seq, _)| seq);
        let late = self.late.keys().next().copied();
        match (ordered, late) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Every retained event after position `after`, ascending.
    pub(super) fn after(&self, after: u64) -> impl Iterator<Item = (u64, &Entry)> {
        let start = match self.position(after) {
            Ok(at) => at + 1,
            Err(at) => at,
        };
        let ordered = self
            .ordered
            .range(start..)
            .filter_map(|(seq, e)| e.as_ref().map(|e| (*seq, e)));
        let late = self
            .late
            .range(after.saturating_add(1)..)
            .filter(move |_| after < u64::MAX)
            .map(|(&seq, e)| (seq, e));
        Merge {
            a: ordered.peekable(),
            b: late.peekable(),
        }
    }

    /// Where `seq` is (or would be) in `ordered`.
    fn position(&self, seq: u64) -> Result<usize, usize> {
        self.ordered.binary_search_by_key(&seq, |&(s, _)| s)
    }

    /// [`position`](Log::position), searching outwards from the front: what leaves is
    /// nearly always among the oldest, so this costs the log of its distance from the front,
    /// not of the whole history.
    fn position_from_front(&self, seq: u64) -> Result<usize, usize> {
        let len = self.ordered.len();
        let mut end = 1;
        while end < len && self.ordered[end - 1].0 < seq {
            end *= 2;
        }
        let start = end / 2;
        let end = end.min(len);
        let (front, back) = self.ordered.as_slices();
        let key = |&(s, _): &(u64, Option<Entry>)| s;
        // The window [start, end) may straddle the deque's two slices.
        if end <= front.len() {
            front[start..end]
                .binary_search_by_key(&seq, key)
                .map(|i| start + i)
                .map_err(|i| start + i)
        } else if start >= front.len() {
            let (s, e) = (start - front.len(), end - front.len());
            back[s..e]
                .binary_search_by_key(&seq, key)
                .map(|i| start + i)
                .map_err(|i| start + i)
        } else {
            self.position(seq)
        }
    }
}

/// Two ascending iterators of distinct `seq`s merged into one.
struct Merge<A: Iterator, B: Iterator> {
    a: std::iter::Peekable<A>,
    b: std::iter::Peekable<B>,
}

impl<'a, A, B> Iterator for Merge<A, B>
where
    A: Iterator<Item = (u64, &'a Entry)>,
    B: Iterator<Item = (u64, &'a Entry)>,
{
    type Item = (u64, &'a Entry);

    fn next(&mut self) -> Option<Self::Item> {
        match (self.a.peek(), self.b.peek()) {
            (Some(a), Some(b)) if b.0 < a.0 => self.b.next(),
            (Some(_), _) => self.a.next(),
            (None, _) => self.b.next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::encode::Frame;
    use crate::event::Event;
    use crate::hub::history::Topics;

    fn entry(seq: u64) -> Entry {
        Entry {
            frame: Frame::event(&Event::new(seq.to_string())),
            id: None,
            topics: Topics::One(0),
            private: false,
        }
    }

    proptest! {
        /// Whatever the order of inserts and removals, the log reads as a `BTreeMap` would.
        #[test]
        fn reads_as_a_sorted_map(ops in prop::collection::vec((any::<bool>(), 0..200u64), 1..400)) {
            let mut log = Log::default();
            let mut model: BTreeMap<u64, ()> = BTreeMap::new();
            for (insert, seq) in ops {
                if insert {
                    if model.insert(seq, ()).is_none() {
                        log.insert(seq, entry(seq));
                    }
                } else {
                    prop_assert_eq!(log.remove(seq).is_some(), model.remove(&seq).is_some());
                }
                prop_assert_eq!(log.first(), model.keys().next().copied());
                let all: Vec<u64> = log.after(0).map(|(s, _)| s).collect();
                let want: Vec<u64> = model.range(1..).map(|(s, _)| *s).collect();
                prop_assert_eq!(all, want);
                for p in [0, 50, 100, 199] {
                    let got: Vec<u64> = log.after(p).map(|(s, _)| s).collect();
                    let want: Vec<u64> = model.range(p + 1..).map(|(s, _)| *s).collect();
                    prop_assert_eq!(got, want);
                }
                for s in [0, seq, 100] {
                    prop_assert_eq!(log.get(s).is_some(), model.contains_key(&s));
                    if let Some(e) = log.get(s) {
                        let want = Frame::event(&Event::new(s.to_string()));
                        prop_assert_eq!(e.frame.as_bytes(), want.as_bytes());
                    }
                }
                prop_assert!(log.ordered.len() <= 2 * model.len() + 64);
            }
        }
    }
}
