//! The hub, tested by simulation: a fake clock (plain `Millis` values) and a harness that,
//! after every input, drains `poll_ready` / `pop_frame` / `poll_close` into per-subscriber
//! logs of the exact frames received, the way a server's pump would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;
use ssecast::{
    CloseReason, Decoder, Event, EventId, Hub, HubConfig, Millis, Overflow, Replay, SubscribeError,
    Subscribed, SubscriberId, Topic,
};

/// The hub under test and everything its outputs produced.
struct Sim {
    hub: Hub,
    now: u64,
    /// Frames each subscriber received, with the time they were popped.
    logs: HashMap<SubscriberId, Vec<(u64, String)>>,
    closed: Vec<(SubscriberId, CloseReason)>,
    /// Subscribers whose socket is "blocked": the pump does not drain them.
    slow: HashSet<SubscriberId>,
    /// Subscribers returned by `poll_ready` and not yet drained to `None`.
    out: HashSet<SubscriberId>,
    /// Times `handle_timeout` was called because `poll_timeout` was due.
    sweeps: Vec<u64>,
}

impl Sim {
    fn new(config: HubConfig) -> Sim {
        Sim {
            hub: Hub::new(config),
            now: 0,
            logs: HashMap::new(),
            closed: Vec::new(),
            slow: HashSet::new(),
            out: HashSet::new(),
            sweeps: Vec::new(),
        }
    }

    /// Drains every output, as a pump does after every input.
    fn drain(&mut self) {
        while let Some(id) = self.hub.poll_ready() {
            // Edge-triggered: never returned twice before it was drained to `None`.
            assert!(
                self.out.insert(id),
                "{id:?} returned again before it was drained"
            );
            assert!(
                self.hub.queued(id) > 0,
                "{id:?} returned with nothing queued"
            );
            if !self.slow.contains(&id) {
                self.pop_all(id);
            }
        }
        while let Some(closed) = self.hub.poll_close() {
            assert!(!self.closed.contains(&closed), "{closed:?} reported twice");
            self.out.remove(&closed.0);
            self.closed.push(closed);
        }
    }

    fn pop_all(&mut self, id: SubscriberId) {
        while let Some(frame) = self.hub.pop_frame(id) {
            let text = String::from_utf8(frame.as_bytes().to_vec()).unwrap();
            self.logs.entry(id).or_default().push((self.now, text));
        }
        assert_eq!(self.hub.queued(id), 0);
        self.out.remove(&id);
    }

    fn subscribe(&mut self, topics: &[&str], last: Option<&str>) -> Subscribed {
        let topics: Vec<Topic> = topics.iter().map(|t| Topic::new(*t).unwrap()).collect();
        let subscribed = self.hub.subscribe(&topics, last, Millis(self.now)).unwrap();
        self.logs.entry(subscribed.id).or_default();
        self.drain();
        subscribed
    }

    fn sub(&mut self, topics: &[&str]) -> SubscriberId {
        self.subscribe(topics, None).id
    }

    fn publish_event(&mut self, topic: &str, event: Event) -> String {
        let id = self
            .hub
            .publish(&Topic::new(topic).unwrap(), event, Millis(self.now));
        self.drain();
        id.as_str().to_owned()
    }

    fn publish(&mut self, topic: &str, data: &str) -> String {
        self.publish_event(topic, Event::new(data))
    }

    fn unsubscribe(&mut self, id: SubscriberId) {
        self.hub.unsubscribe(id);
        self.out.remove(&id);
        self.drain();
    }

    /// A blocked socket unblocks: the pump writes everything queued.
    fn unblock(&mut self, id: SubscriberId) {
        self.slow.remove(&id);
        self.pop_all(id);
        self.drain();
    }

    /// Moves the clock to `t`, calling `handle_timeout` at every deadline on the way.
    fn advance_to(&mut self, t: u64) {
        while let Some(Millis(due)) = self.hub.poll_timeout() {
            if due > t {
                break;
            }
            self.now = self.now.max(due);
            self.hub.handle_timeout(Millis(self.now));
            self.sweeps.push(self.now);
            let next = self.hub.poll_timeout();
            assert!(
                next.is_none_or(|n| n.0 > self.now),
                "sweep made no progress"
            );
            self.drain();
        }
        self.now = t;
        // Early calls must be harmless.
        self.hub.handle_timeout(Millis(t));
        self.drain();
    }

    fn frames(&self, id: SubscriberId) -> Vec<&str> {
        self.logs[&id].iter().map(|(_, f)| f.as_str()).collect()
    }

    /// What a browser would see: the data of each event, decoded from the bytes received.
    fn decoded(&self, id: SubscriberId) -> Vec<(String, String)> {
        let mut decoder = Decoder::new();
        for (_, frame) in &self.logs[&id] {
            decoder.feed(frame.as_bytes()).unwrap();
        }
        std::iter::from_fn(|| decoder.next_event())
            .map(|e| (e.last_event_id, e.data))
            .collect()
    }
}

/// `config` changed by `f` (`HubConfig` is `#[non_exhaustive]`: no struct literals here).
fn with(mut config: HubConfig, f: impl FnOnce(&mut HubConfig)) -> HubConfig {
    f(&mut config);
    config
}

/// A hub with neither retry hints nor keep-alives, so logs hold only events.
fn quiet() -> HubConfig {
    with(HubConfig::default(), |c| {
        c.retry = None;
        c.keepalive = None;
    })
}

/// The frame of an event with id `id` and data `data`.
fn ev(id: &str, data: &str) -> String {
    format!("id: {id}\ndata: {data}\n\n")
}

fn missed(requested: &str) -> String {
    format!("event: ssecast.missed\ndata: {requested}\n\n")
}

const PING: &str = ": ping\n\n";

/// Events `1..=n` of the default topic with data `e1`, `e2`, ...
fn evs(range: std::ops::RangeInclusive<u64>) -> Vec<String> {
    range
        .map(|i| ev(&i.to_string(), &format!("e{i}")))
        .collect()
}

fn publish_n(sim: &mut Sim, topic: &str, n: u64) {
    for _ in 0..n {
        let next = sim.hub.stats().published + 1;
        sim.publish(topic, &format!("e{next}"));
    }
}

// ---------------------------------------------------------------- overflow policies

fn slow_and_fast(overflow: Overflow) -> (Sim, SubscriberId, SubscriberId) {
    let mut sim = Sim::new(with(quiet(), |c| {
        c.queue_capacity = 2;
        c.overflow = overflow;
    }));
    let fast = sim.sub(&[]);
    let slow = sim.sub(&[]);
    sim.slow.insert(slow);
    publish_n(&mut sim, "default", 5);
    (sim, fast, slow)
}

#[test]
fn drop_newest_keeps_what_the_slow_subscriber_had() {
    let (mut sim, fast, slow) = slow_and_fast(Overflow::DropNewest);
    assert_eq!(sim.frames(fast), evs(1..=5));
    sim.unblock(slow);
    assert_eq!(sim.frames(slow), evs(1..=2));
    let stats = sim.hub.stats();
    assert_eq!((stats.dropped, stats.delivered), (3, 7));
    // After catching up, the slow subscriber receives live events again.
    sim.publish("default", "e6");
    assert_eq!(sim.frames(slow).last().unwrap(), &ev("6", "e6"));
}

#[test]
fn drop_oldest_keeps_the_newest() {
    let (mut sim, fast, slow) = slow_and_fast(Overflow::DropOldest);
    assert_eq!(sim.frames(fast), evs(1..=5));
    sim.unblock(slow);
    assert_eq!(sim.frames(slow), evs(4..=5));
    let stats = sim.hub.stats();
    assert_eq!((stats.dropped, stats.delivered), (3, 7));
}

#[test]
fn disconnect_closes_the_slow_subscriber_once_and_it_resumes_without_a_gap() {
    let mut sim = Sim::new(with(quiet(), |c| {
        c.queue_capacity = 2;
        c.overflow = Overflow::Disconnect;
    }));
    let fast = sim.sub(&[]);
    let slow = sim.sub(&[]);
    sim.publish("default", "e1");
    sim.slow.insert(slow);
    publish_n(&mut sim, "default", 4);
    assert_eq!(sim.frames(fast), evs(1..=5));
    // Queue of 2 held e2, e3; e4 overflowed it.
    assert_eq!(sim.closed, vec![(slow, CloseReason::Overflow)]);
    assert_eq!(sim.frames(slow), evs(1..=1));
    assert_eq!(sim.hub.pop_frame(slow), None);
    assert_eq!(sim.hub.queued(slow), 0);
    let stats = sim.hub.stats();
    assert_eq!(stats.disconnected_overflow, 1);
    assert_eq!(stats.subscribers, 1);
    assert_eq!(stats.dropped, 0);
    assert_eq!(stats.unsubscribed, 0);

    // The client reconnects with the last id it got and misses nothing.
    let back = sim.subscribe(&[], Some("1"));
    assert_eq!(back.replay, Replay::Resumed { replayed: 4 });
    assert_eq!(sim.frames(back.id), evs(2..=5));
    // A later overflow of another subscriber does not report the first again.
    sim.publish("default", "e6");
    assert_eq!(sim.closed.len(), 1);
}

#[test]
fn stats_add_up_in_a_closed_scenario() {
    for overflow in [Overflow::DropNewest, Overflow::DropOldest] {
        let mut sim = Sim::new(with(quiet(), |c| {
            c.queue_capacity = 3;
            c.overflow = overflow;
        }));
        let subs: Vec<SubscriberId> = (0..4).map(|_| sim.sub(&[])).collect();
        sim.slow.insert(subs[1]);
        sim.slow.insert(subs[2]);
        for round in 0..20u64 {
            sim.publish("default", &format!("r{round}"));
            if round % 7 == 0 {
                sim.unblock(subs[2]);
                sim.slow.insert(subs[2]);
            }
        }
        for &id in &subs {
            sim.unblock(id);
        }
        let stats = sim.hub.stats();
        let received: usize = subs.iter().map(|id| sim.frames(*id).len()).sum();
        assert_eq!(stats.published, 20);
        assert_eq!(stats.delivered, received as u64);
        assert_eq!(
            stats.published * 4,
            stats.delivered + stats.dropped,
            "{overflow:?}"
        );
        assert!(stats.dropped > 0);
    }
}

// ---------------------------------------------------------------- keep-alive

/// Checks the keep-alive guarantee for one subscriber drained at once: every gap between
/// frames (and from subscribing to the first, and from the last to `end`) is at most `k`,
/// and every ping comes at least `k - slack` after the frame before it.
fn check_keepalive_gaps(sim: &Sim, id: SubscriberId, since: u64, end: u64, k: u64) {
    let slack = k / 4;
    let mut last = since;
    for (at, frame) in &sim.logs[&id] {
        assert!(at - last <= k, "gap {last}..{at} longer than {k}");
        if frame == PING {
            assert!(
                at - last >= k - slack,
                "ping at {at} too early after {last}"
            );
        }
        last = *at;
    }
    assert!(end - last <= k, "silent from {last} to {end}");
}

#[test]
fn keepalives_come_in_time_and_sweeps_are_spaced() {
    let k = 20_000;
    let mut sim = Sim::new(with(quiet(), |c| {
        c.keepalive = Some(Millis(k));
    }));
    let a = sim.sub(&["a"]);
    sim.advance_to(7_000);
    let b = sim.sub(&["b"]);
    sim.advance_to(13_000);
    let c = sim.sub(&["a", "b"]);
    for t in [21_000, 22_500, 40_000, 41_000, 70_000] {
        sim.advance_to(t);
        sim.publish("a", "x");
    }
    sim.advance_to(200_000);

    check_keepalive_gaps(&sim, a, 0, 200_000, k);
    check_keepalive_gaps(&sim, b, 7_000, 200_000, k);
    check_keepalive_gaps(&sim, c, 13_000, 200_000, k);
    for pair in sim.sweeps.windows(2) {
        assert!(pair[1] - pair[0] >= k / 4, "sweeps {pair:?} too close");
    }
    let pings = sim
        .logs
        .values()
        .flatten()
        .filter(|(_, f)| f == PING)
        .count();
    assert!(pings >= 3 * 6, "only {pings} pings in 200 s");
    assert_eq!(sim.hub.stats().keepalives, pings as u64);
    // Keep-alives are not events.
    assert_eq!(sim.hub.stats().delivered, 10);
}

#[test]
fn keepalive_is_exact_for_a_single_idle_subscriber() {
    let mut sim = Sim::new(with(quiet(), |c| {
        c.keepalive = Some(Millis(1_000));
    }));
    let id = sim.sub(&[]);
    assert_eq!(sim.hub.poll_timeout(), Some(Millis(750)));
    sim.advance_to(3_000);
    let times: Vec<u64> = sim.logs[&id].iter().map(|(t, _)| *t).collect();
    assert_eq!(times, vec![750, 1_500, 2_250, 3_000]);
    assert!(sim.frames(id).iter().all(|f| *f == PING));
}

#[test]
fn no_keepalive_while_events_flow() {
    let mut sim = Sim::new(with(quiet(), |c| {
        c.keepalive = Some(Millis(20_000));
    }));
    let id = sim.sub(&[]);
    for i in 1..=20 {
        sim.advance_to(i * 10_000);
        sim.publish("default", "tick");
    }
    assert_eq!(sim.frames(id).len(), 20);
    assert_eq!(sim.hub.stats().keepalives, 0);
}

#[test]
fn no_keepalive_while_frames_wait_to_be_written() {
    let mut sim = Sim::new(with(quiet(), |c| {
        c.keepalive = Some(Millis(1_000));
    }));
    let id = sim.sub(&[]);
    sim.slow.insert(id);
    sim.publish("default", "stuck");
    sim.advance_to(10_000);
    assert_eq!(sim.hub.stats().keepalives, 0);
    assert_eq!(sim.hub.queued(id), 1);
    // Once drained, the ping comes at the next sweep, at most a slack (250 ms) later.
    sim.unblock(id);
    sim.advance_to(10_250);
    assert_eq!(sim.frames(id), vec![ev("1", "stuck"), PING.to_owned()]);
}

#[test]
fn keepalive_does_not_take_a_queue_slot() {
    let mut sim = Sim::new(with(quiet(), |c| {
        c.keepalive = Some(Millis(1_000));
        c.queue_capacity = 1;
        c.overflow = Overflow::Disconnect;
    }));
    let id = sim.sub(&[]);
    sim.slow.insert(id);
    sim.advance_to(1_000);
    assert_eq!(sim.hub.queued(id), 1);
    sim.publish("default", "e1");
    assert!(sim.closed.is_empty());
    sim.unblock(id);
    assert_eq!(sim.frames(id), vec![PING.to_owned(), ev("1", "e1")]);
}

#[test]
fn no_keepalive_when_disabled_or_without_subscribers() {
    let mut sim = Sim::new(quiet());
    assert_eq!(sim.hub.poll_timeout(), None);
    let id = sim.sub(&[]);
    assert_eq!(sim.hub.poll_timeout(), None);
    sim.advance_to(10_000_000);
    assert!(sim.frames(id).is_empty());

    let mut sim = Sim::new(HubConfig::default());
    assert_eq!(sim.hub.poll_timeout(), None);
    let id = sim.sub(&[]);
    assert_eq!(sim.hub.poll_timeout(), Some(Millis(15_000)));
    sim.unsubscribe(id);
    assert_eq!(sim.hub.poll_timeout(), None);
}

// ---------------------------------------------------------------- replay

#[test]
fn retry_hint_comes_first_then_the_replay_then_live() {
    let mut sim = Sim::new(with(quiet(), |c| {
        c.retry = Some(Millis(3_000));
    }));
    publish_n(&mut sim, "default", 3);
    let s = sim.subscribe(&[], Some("1"));
    assert_eq!(s.replay, Replay::Resumed { replayed: 2 });
    sim.publish("default", "e4");
    let mut expected = vec!["retry: 3000\n".to_owned()];
    expected.extend(evs(2..=4));
    assert_eq!(sim.frames(s.id), expected);
    // Only events count as delivered.
    assert_eq!(sim.hub.stats().delivered, 3);
    assert_eq!(sim.hub.stats().replayed, 2);
}

/// The SSE blocks of `frames` (each ends at a blank line), as a client splits them.
fn blocks(frames: &[&str]) -> Vec<String> {
    let bytes: String = frames.concat();
    bytes.split_inclusive("\n\n").map(str::to_owned).collect()
}

#[test]
fn the_retry_hint_shares_a_block_with_the_first_event_and_never_goes_alone() {
    // Some clients drop a block without data: the hint must come with an event.
    let config = with(quiet(), |c| {
        c.retry = Some(Millis(3_000));
        c.keepalive = Some(Millis(1_000));
    });
    let mut sim = Sim::new(config.clone());
    let id = sim.sub(&[]);
    assert_eq!(sim.hub.queued(id), 0, "nothing to write before an event");
    // A keep-alive before the first event goes out alone, and the hint waits.
    sim.advance_to(1_000);
    assert_eq!(sim.frames(id), vec![PING]);
    sim.publish("default", "e1");
    sim.publish("default", "e2");
    assert_eq!(
        blocks(&sim.frames(id)),
        [
            PING,
            "retry: 3000\nid: 1\ndata: e1\n\n",
            "id: 2\ndata: e2\n\n"
        ]
    );

    // Before a missed marker, and before a replay.
    let mut sim = Sim::new(config);
    publish_n(&mut sim, "default", 2);
    let missed = sim.subscribe(&[], Some("nope"));
    let resumed = sim.subscribe(&[], Some("1"));
    assert_eq!(
        blocks(&sim.frames(missed.id))[0],
        "retry: 3000\nevent: ssecast.missed\ndata: nope\n\n"
    );
    assert_eq!(
        blocks(&sim.frames(resumed.id)),
        ["retry: 3000\nid: 2\ndata: e2\n\n"]
    );
    // A client decoding it gets the hint.
    let mut decoder = Decoder::new();
    for frame in sim.frames(resumed.id) {
        decoder.feed(frame.as_bytes()).unwrap();
    }
    assert_eq!(decoder.retry(), Some(Millis(3_000)));
}

#[test]
fn resume_by_hub_id_has_no_gap_and_no_duplicate() {
    let mut sim = Sim::new(quiet());
    let first = sim.sub(&[]);
    publish_n(&mut sim, "default", 5);
    // The client saw up to id 3 when it left; it reconnects with that id.
    sim.unsubscribe(first);
    let last = sim.decoded(first)[2].0.clone();
    assert_eq!(last, "3");
    publish_n(&mut sim, "default", 1);
    let s = sim.subscribe(&[], Some(&last));
    assert_eq!(s.replay, Replay::Resumed { replayed: 3 });
    sim.publish("default", "e7");
    assert_eq!(sim.frames(s.id), evs(4..=7));
    let data: Vec<String> = sim.decoded(s.id).into_iter().map(|(_, d)| d).collect();
    assert_eq!(data, ["e4", "e5", "e6", "e7"]);
}

#[test]
fn resume_by_publisher_id() {
    let mut sim = Sim::new(quiet());
    for (id, data) in [("a", "A"), ("b", "B"), ("c", "C")] {
        let event = Event::new(data).with_id(EventId::new(id).unwrap());
        assert_eq!(sim.publish_event("default", event), id);
    }
    // A hub-assigned id after publisher ids: seq 4.
    assert_eq!(sim.publish("default", "D"), "4");
    let s = sim.subscribe(&[], Some("b"));
    assert_eq!(s.replay, Replay::Resumed { replayed: 2 });
    assert_eq!(sim.frames(s.id), vec![ev("c", "C"), ev("4", "D")]);
}

/// Changed on purpose (issue 13 item 14): a retained id is not published again, so an id
/// never names two retained events. This test used to check that a reused id resumed after
/// its newest use.
#[test]
fn a_retained_publisher_id_is_published_once() {
    let mut sim = Sim::new(quiet());
    let a = sim.sub(&[]);
    for data in ["A", "B", "C"] {
        let id = if data == "B" { "x" } else { "same" };
        let returned = sim.publish_event(
            "default",
            Event::new(data).with_id(EventId::new(id).unwrap()),
        );
        assert_eq!(returned, id);
    }
    // "C" carried the id of the retained "A": acknowledged with that id, never delivered.
    assert_eq!(sim.frames(a), vec![ev("same", "A"), ev("x", "B")]);
    let stats = sim.hub.stats();
    assert_eq!((stats.published, stats.duplicates), (2, 1));
    let s = sim.subscribe(&[], Some("same"));
    assert_eq!(s.replay, Replay::Resumed { replayed: 1 });
    assert_eq!(sim.frames(s.id), vec![ev("x", "B")]);
}

#[test]
fn a_hub_id_of_another_topic_resumes_after_it() {
    let mut sim = Sim::new(quiet());
    sim.publish("a", "a1");
    sim.publish("b", "b2");
    sim.publish("a", "a3");
    // Id 2 belongs to topic b; on topic a it still marks a position.
    let s = sim.subscribe(&["a"], Some("2"));
    assert_eq!(s.replay, Replay::Resumed { replayed: 1 });
    assert_eq!(sim.frames(s.id), vec![ev("3", "a3")]);
}

#[test]
fn multi_topic_replay_and_live_are_merged_in_publish_order() {
    let mut sim = Sim::new(quiet());
    let live = sim.sub(&["x", "y", "x"]);
    for (topic, data) in [("x", "1"), ("y", "2"), ("z", "3"), ("y", "4"), ("x", "5")] {
        sim.publish(topic, data);
    }
    let expected = vec![ev("1", "1"), ev("2", "2"), ev("4", "4"), ev("5", "5")];
    assert_eq!(sim.frames(live), expected);
    let s = sim.subscribe(&["y", "x", "y"], Some("0"));
    assert_eq!(s.replay, Replay::Resumed { replayed: 4 });
    assert_eq!(sim.frames(s.id), expected);
    let s = sim.subscribe(&["y", "x"], Some("2"));
    assert_eq!(sim.frames(s.id), expected[2..]);
}

#[test]
fn missed_when_evicted_by_count() {
    let mut sim = Sim::new(with(quiet(), |c| {
        c.history_events = 3;
    }));
    publish_n(&mut sim, "default", 6);
    let s = sim.subscribe(&[], Some("1"));
    assert_eq!(s.replay, Replay::Missed { replayed: 3 });
    let mut expected = vec![missed("1")];
    expected.extend(evs(4..=6));
    assert_eq!(sim.frames(s.id), expected);
    // The marker has no id, so the client's last event ID moves on to the replay's.
    let decoded = sim.decoded(s.id);
    assert_eq!(decoded[0], (String::new(), "1".to_owned()));
    // Position 3 is the newest evicted: resuming there misses nothing.
    let s = sim.subscribe(&[], Some("3"));
    assert_eq!(s.replay, Replay::Resumed { replayed: 3 });
    // Markers are not counted as delivered.
    assert_eq!(sim.hub.stats().delivered, 6);
}

#[test]
fn missed_when_evicted_by_bytes() {
    // Each frame `id: N\ndata: eN\n\n` is 17 bytes: 40 bytes keep two.
    let mut sim = Sim::new(with(quiet(), |c| {
        c.history_bytes = 40;
    }));
    publish_n(&mut sim, "default", 5);
    let s = sim.subscribe(&[], Some("2"));
    assert_eq!(s.replay, Replay::Missed { replayed: 2 });
    let s2 = sim.subscribe(&[], Some("3"));
    assert_eq!(s2.replay, Replay::Resumed { replayed: 2 });
    assert_eq!(sim.frames(s2.id), evs(4..=5));
    // An event larger than the byte limit is not kept at all.
    sim.publish("default", &"x".repeat(100));
    let s3 = sim.subscribe(&[], Some("5"));
    assert_eq!(s3.replay, Replay::Missed { replayed: 0 });
}

#[test]
fn unknown_and_future_ids_are_missed_with_all_history() {
    let mut sim = Sim::new(quiet());
    publish_n(&mut sim, "default", 3);
    for (last, data) in [
        ("nope", "nope".to_owned()),
        ("99", "99".to_owned()),
        ("3", String::new()), // resumes: handled below
        ("+1", "+1".to_owned()),
        ("01", "01".to_owned()),
        ("", String::new()),
    ] {
        if last == "3" {
            continue;
        }
        let s = sim.subscribe(&[], Some(last));
        assert_eq!(s.replay, Replay::Missed { replayed: 3 }, "{last:?}");
        let mut expected = vec![missed(&data)];
        expected.extend(evs(1..=3));
        assert_eq!(sim.frames(s.id), expected, "{last:?}");
    }
    // An id too long to be an event id is not echoed.
    let long = "7".repeat(EventId::MAX_LEN + 1);
    let s = sim.subscribe(&[], Some(&long));
    assert_eq!(sim.frames(s.id)[0], missed(""));
    // Nor is one with a NUL.
    let s = sim.subscribe(&[], Some("a\0b"));
    assert_eq!(sim.frames(s.id)[0], missed(""));
}

#[test]
fn resuming_at_the_newest_id_replays_nothing() {
    let mut sim = Sim::new(quiet());
    publish_n(&mut sim, "default", 3);
    let s = sim.subscribe(&[], Some("3"));
    assert_eq!(s.replay, Replay::Resumed { replayed: 0 });
    assert!(sim.frames(s.id).is_empty());
    // "0" is the position before every event.
    let s = sim.subscribe(&["fresh"], Some("0"));
    assert_eq!(s.replay, Replay::Resumed { replayed: 0 });
}

#[test]
fn without_history_a_resume_is_missed_unless_nothing_came_after() {
    let mut sim = Sim::new(with(quiet(), |c| {
        c.history_events = 0;
    }));
    publish_n(&mut sim, "x", 2);
    sim.publish("y", "e3");
    assert_eq!(
        sim.subscribe(&["x"], Some("2")).replay,
        Replay::Resumed { replayed: 0 }
    );
    assert_eq!(
        sim.subscribe(&["x"], Some("1")).replay,
        Replay::Missed { replayed: 0 }
    );
    assert_eq!(
        sim.subscribe(&["x", "y"], Some("2")).replay,
        Replay::Missed { replayed: 0 }
    );
}

#[test]
fn history_is_per_topic() {
    let mut sim = Sim::new(with(quiet(), |c| {
        c.history_events = 2;
    }));
    sim.publish("quiet", "q1");
    publish_n(&mut sim, "busy", 10);
    let s = sim.subscribe(&["quiet"], Some("0"));
    assert_eq!(s.replay, Replay::Resumed { replayed: 1 });
    assert_eq!(sim.frames(s.id), vec![ev("1", "q1")]);
    let s = sim.subscribe(&["busy"], Some("0"));
    assert_eq!(s.replay, Replay::Missed { replayed: 2 });
    assert_eq!(sim.frames(s.id)[1..], evs(10..=11));
}

#[test]
fn replayed_events_do_not_count_against_the_live_queue() {
    let mut sim = Sim::new(with(quiet(), |c| {
        c.queue_capacity = 2;
    }));
    publish_n(&mut sim, "default", 8);
    // Blocked from the start: nothing is written until `unblock`.
    let s = sim.hub.subscribe(&[], Some("0"), Millis(0)).unwrap();
    assert_eq!(s.replay, Replay::Resumed { replayed: 8 });
    sim.logs.entry(s.id).or_default();
    sim.slow.insert(s.id);
    sim.drain();
    publish_n(&mut sim, "default", 2);
    assert_eq!(sim.hub.queued(s.id), 10);
    sim.unblock(s.id);
    assert_eq!(sim.frames(s.id), evs(1..=10));
    assert_eq!(sim.hub.stats().dropped, 0);
}

// ---------------------------------------------------------------- topics

#[test]
fn topics_beyond_the_limit_forget_the_least_recently_published_idle_one() {
    let mut sim = Sim::new(with(quiet(), |c| {
        c.max_topics = 3;
    }));
    sim.publish("a", "1");
    sim.publish("b", "2");
    sim.publish("c", "3");
    sim.publish("a", "4"); // a is now more recent than b
    let keep = sim.sub(&["b"]); // and b has a subscriber
    sim.publish("d", "5"); // forgets c: idle and least recently published
    assert_eq!(
        sim.subscribe(&["a"], Some("0")).replay,
        Replay::Resumed { replayed: 2 }
    );
    assert_eq!(
        sim.subscribe(&["b"], Some("0")).replay,
        Replay::Resumed { replayed: 1 }
    );
    assert_eq!(
        sim.subscribe(&["d"], Some("0")).replay,
        Replay::Missed { replayed: 1 }
    );
    let s = sim.subscribe(&["c"], Some("0"));
    assert_eq!(s.replay, Replay::Missed { replayed: 0 });
    // After the newest forgotten event, nothing can have been missed.
    assert_eq!(
        sim.subscribe(&["c"], Some("3")).replay,
        Replay::Resumed { replayed: 0 }
    );
    // The subscriber of b still receives.
    sim.publish("b", "6");
    assert_eq!(sim.frames(keep), vec![ev("6", "6")]);
}

#[test]
fn topics_with_subscribers_are_never_forgotten() {
    let mut sim = Sim::new(with(quiet(), |c| {
        c.max_topics = 1;
    }));
    let a = sim.sub(&["a"]);
    let b = sim.sub(&["b"]);
    for topic in ["a", "b", "a", "b"] {
        sim.publish(topic, topic);
    }
    assert_eq!(sim.frames(a), vec![ev("1", "a"), ev("3", "a")]);
    assert_eq!(sim.frames(b), vec![ev("2", "b"), ev("4", "b")]);
    assert_eq!(
        sim.subscribe(&["a", "b"], Some("0")).replay,
        Replay::Resumed { replayed: 4 }
    );
}

#[test]
fn many_topics_stay_bounded() {
    let mut sim = Sim::new(with(quiet(), |c| {
        c.max_topics = 10;
    }));
    for i in 0..1_000 {
        sim.publish(&format!("t{i}"), "x");
    }
    let kept = (0..1_000)
        .filter(|i| {
            let s = sim.subscribe(&[&format!("t{i}")], Some("0"));
            sim.unsubscribe(s.id);
            matches!(s.replay, Replay::Missed { replayed: 1 })
        })
        .count();
    // Only the newest topics still hold their event (subscribing above re-creates
    // forgotten ones without history, which are dropped again on unsubscribe).
    assert!(kept <= 10, "{kept} topics kept");
    assert!(kept >= 1);
}

// ---------------------------------------------------------------- handles and limits

#[test]
fn stale_ids_are_ignored_everywhere() {
    let mut sim = Sim::new(with(quiet(), |c| {
        c.retry = Some(Millis(1_000));
    }));
    // Unsubscribed before the pump saw it: never comes out of poll_ready.
    let gone = sim.hub.subscribe(&[], None, Millis(0)).unwrap().id;
    sim.hub.unsubscribe(gone);
    assert_eq!(sim.hub.poll_ready(), None);

    let old = sim.sub(&[]);
    sim.unsubscribe(old);
    let new = sim.sub(&[]);
    assert_ne!(old, new);
    assert_eq!(old.index(), new.index(), "the slot is reused");
    assert_eq!(sim.hub.pop_frame(old), None);
    assert_eq!(sim.hub.queued(old), 0);
    sim.unsubscribe(old); // no effect on `new`
    sim.publish("default", "e1");
    assert_eq!(
        sim.frames(new),
        vec!["retry: 1000\n".to_owned(), ev("1", "e1")]
    );
    let stats = sim.hub.stats();
    assert_eq!(
        (stats.subscribers, stats.unsubscribed, stats.subscribed),
        (1, 2, 3)
    );
}

#[test]
fn subscriber_limit_refuses_and_frees_up() {
    let mut sim = Sim::new(with(quiet(), |c| {
        c.max_subscribers = 2;
    }));
    let a = sim.sub(&[]);
    sim.sub(&["x"]);
    let err = sim.hub.subscribe(&[], None, Millis(0)).unwrap_err();
    assert_eq!(err, SubscribeError::Full { max: 2 });
    assert_eq!(err.to_string(), "subscriber limit of 2 reached");
    assert_eq!(sim.hub.stats().refused, 1);
    sim.unsubscribe(a);
    sim.sub(&[]);
    assert_eq!(sim.hub.stats().subscribers, 2);
}

#[test]
fn poll_ready_is_edge_triggered() {
    let mut hub = Hub::new(quiet());
    let t = Topic::default();
    let id = hub.subscribe(&[], None, Millis(0)).unwrap().id;
    assert_eq!(hub.poll_ready(), None, "nothing queued yet");
    hub.publish(&t, Event::new("1"), Millis(0));
    assert_eq!(hub.poll_ready(), Some(id));
    assert_eq!(hub.poll_ready(), None);
    hub.publish(&t, Event::new("2"), Millis(0));
    assert_eq!(hub.poll_ready(), None, "not drained yet");
    assert!(hub.pop_frame(id).is_some());
    assert!(hub.pop_frame(id).is_some());
    hub.publish(&t, Event::new("3"), Millis(0));
    assert_eq!(hub.poll_ready(), None, "pop_frame has not returned None");
    assert!(hub.pop_frame(id).is_some());
    assert_eq!(hub.pop_frame(id), None);
    assert_eq!(hub.poll_ready(), None);
    hub.publish(&t, Event::new("4"), Millis(0));
    assert_eq!(hub.poll_ready(), Some(id), "drained, then a new frame");

    // Drained before the pump polled: nothing to report, and re-armed.
    assert!(hub.pop_frame(id).is_some());
    assert_eq!(hub.pop_frame(id), None);
    hub.publish(&t, Event::new("5"), Millis(0));
    assert!(hub.pop_frame(id).is_some());
    assert_eq!(hub.pop_frame(id), None);
    assert_eq!(hub.poll_ready(), None);
    hub.publish(&t, Event::new("6"), Millis(0));
    assert_eq!(hub.poll_ready(), Some(id));
}

#[test]
fn publish_returns_the_wire_id_and_encodes_once() {
    let mut sim = Sim::new(quiet());
    let a = sim.sub(&[]);
    let b = sim.sub(&[]);
    let id = sim.publish_event(
        "default",
        Event::new("x").with_type(ssecast::EventType::new("t").unwrap()),
    );
    assert_eq!(id, "1");
    assert_eq!(sim.frames(a), vec!["event: t\nid: 1\ndata: x\n\n"]);
    assert_eq!(sim.frames(a), sim.frames(b));
    assert_eq!(sim.hub.config().max_topics, 10_000);
}

// ---------------------------------------------------------------- model test

/// A simple reference model: every published event in a `Vec`, each subscriber's queue as
/// explicit lists, the replay rules computed from scratch each time.
#[derive(Debug, Default)]
struct Model {
    config: HubConfig,
    /// (seq, topic, wire id, frame)
    published: Vec<(u64, u8, String, String)>,
    subs: Vec<ModelSub>,
    live_count: usize,
    delivered: u64,
    dropped: u64,
}

#[derive(Debug, Default)]
struct ModelSub {
    alive: bool,
    topics: Vec<u8>,
    /// The retry hint, still to go out just before the first event.
    retry: Option<String>,
    /// Marker and replay: never dropped.
    head: Vec<String>,
    live: Vec<String>,
}

impl ModelSub {
    fn queued(&self) -> usize {
        let events = self.head.len() + self.live.len();
        events + usize::from(self.retry.is_some() && events > 0)
    }
}

impl Model {
    fn retained(&self, topic: u8) -> (Vec<&(u64, u8, String, String)>, u64) {
        let all: Vec<_> = self.published.iter().filter(|e| e.1 == topic).collect();
        let mut keep = 0;
        let mut bytes = 0;
        for e in all.iter().rev() {
            if keep + 1 > self.config.history_events
                || bytes + e.3.len() > self.config.history_bytes
            {
                break;
            }
            keep += 1;
            bytes += e.3.len();
        }
        let split = all.len() - keep;
        let evicted = if split == 0 { 0 } else { all[split - 1].0 };
        (all[split..].to_vec(), evicted)
    }

    fn subscribe(&mut self, topics: &[u8], last: Option<&str>) -> Result<Replay, SubscribeError> {
        if self.live_count >= self.config.max_subscribers {
            return Err(SubscribeError::Full {
                max: self.config.max_subscribers,
            });
        }
        let mut topics = if topics.is_empty() {
            vec![0]
        } else {
            topics.to_vec()
        };
        topics.sort_unstable();
        topics.dedup();
        let mut head = Vec::new();
        let retry = self
            .config
            .retry
            .map(|retry| format!("retry: {}\n", retry.0));
        let mut replay = Replay::Live;
        if let Some(last) = last {
            let parts: Vec<_> = topics.iter().map(|&t| self.retained(t)).collect();
            // Wire ids are unique among retained events, whatever their topic.
            let exact = self.retained_id(last);
            let next_seq = self.published.len() as u64 + 1;
            let number = last
                .parse::<u64>()
                .ok()
                .filter(|n| n.to_string() == last && *n < next_seq);
            let (after, was_missed) = match exact.or(number) {
                Some(p) => (p, parts.iter().any(|(_, evicted)| *evicted > p)),
                None => (0, true),
            };
            let mut events: Vec<_> = parts
                .iter()
                .flat_map(|(events, _)| events.iter())
                .filter(|e| e.0 > after)
                .collect();
            events.sort_by_key(|e| e.0);
            if was_missed {
                let data = if EventId::new(last).is_ok() { last } else { "" };
                head.push(missed(data));
            }
            let replayed = events.len();
            head.extend(events.into_iter().map(|e| e.3.clone()));
            replay = if was_missed {
                Replay::Missed { replayed }
            } else {
                Replay::Resumed { replayed }
            };
        }
        self.subs.push(ModelSub {
            alive: true,
            topics,
            retry,
            head,
            live: Vec::new(),
        });
        self.live_count += 1;
        Ok(replay)
    }

    /// The `seq` of the retained event (of any topic) whose wire id is `id`.
    fn retained_id(&self, id: &str) -> Option<u64> {
        (0..3)
            .flat_map(|t| self.retained(t).0)
            .find(|e| e.2 == id)
            .map(|e| e.0)
    }

    /// Returns the subscribers the publish disconnected.
    fn publish(&mut self, topic: u8, custom: Option<String>) -> (String, Vec<usize>) {
        if let Some(id) = &custom {
            if self.retained_id(id).is_some() {
                // A duplicate of a retained event: nothing is published.
                return (id.clone(), Vec::new());
            }
        }
        let seq = self.published.len() as u64 + 1;
        let wire = custom.unwrap_or_else(|| seq.to_string());
        let frame = ev(&wire, &format!("d{seq}"));
        self.published
            .push((seq, topic, wire.clone(), frame.clone()));
        let mut closed = Vec::new();
        let capacity = self.config.queue_capacity.max(1);
        for (i, sub) in self.subs.iter_mut().enumerate() {
            if !sub.alive || !sub.topics.contains(&topic) {
                continue;
            }
            if sub.live.len() < capacity {
                sub.live.push(frame.clone());
                continue;
            }
            match self.config.overflow {
                Overflow::DropNewest => self.dropped += 1,
                Overflow::DropOldest => {
                    sub.live.remove(0);
                    sub.live.push(frame.clone());
                    self.dropped += 1;
                }
                Overflow::Disconnect => {
                    sub.alive = false;
                    self.live_count -= 1;
                    closed.push(i);
                }
            }
        }
        (wire, closed)
    }

    fn pop(&mut self, i: usize) -> Option<String> {
        let sub = &mut self.subs[i];
        if !sub.alive {
            return None;
        }
        if sub.queued() > sub.head.len() + sub.live.len() {
            return sub.retry.take();
        }
        if !sub.head.is_empty() {
            let frame = sub.head.remove(0);
            if frame.starts_with("id: ") {
                self.delivered += 1;
            }
            return Some(frame);
        }
        if sub.live.is_empty() {
            return None;
        }
        self.delivered += 1;
        Some(sub.live.remove(0))
    }
}

#[derive(Debug, Clone)]
enum Op {
    Subscribe { topics: Vec<u8>, last: Last },
    Publish { topic: u8, custom: Option<u8> },
    Pop { sub: usize, n: usize },
    Unsubscribe { sub: usize },
    Tick { ms: u64 },
}

#[derive(Debug, Clone)]
enum Last {
    None,
    /// One of the ids publish returned (index modulo how many).
    Returned(usize),
    Number(u64),
    Text(String),
}

fn op() -> impl Strategy<Value = Op> {
    let last = prop_oneof![
        Just(Last::None),
        (0..64usize).prop_map(Last::Returned),
        (0..40u64).prop_map(Last::Number),
        "[a-c0-9+]{0,3}".prop_map(Last::Text),
    ];
    prop_oneof![
        2 => (prop::collection::vec(0..3u8, 0..4), last)
            .prop_map(|(topics, last)| Op::Subscribe { topics, last }),
        4 => (0..3u8, prop::option::weighted(0.3, 0..4u8))
            .prop_map(|(topic, custom)| Op::Publish { topic, custom }),
        3 => (0..8usize, 1..6usize).prop_map(|(sub, n)| Op::Pop { sub, n }),
        1 => (0..8usize).prop_map(|sub| Op::Unsubscribe { sub }),
        1 => (0..100_000u64).prop_map(|ms| Op::Tick { ms }),
    ]
}

fn config() -> impl Strategy<Value = HubConfig> {
    (
        1..4usize,
        prop_oneof![
            Just(Overflow::DropNewest),
            Just(Overflow::DropOldest),
            Just(Overflow::Disconnect)
        ],
        0..5usize,
        0..80usize,
        prop::option::of(Just(Millis(500))),
        1..5usize,
    )
        .prop_map(
            |(queue_capacity, overflow, history_events, history_bytes, retry, max_subscribers)| {
                with(HubConfig::default(), |c| {
                    c.queue_capacity = queue_capacity;
                    c.overflow = overflow;
                    c.keepalive = None;
                    c.retry = retry;
                    c.history_events = history_events;
                    c.history_bytes = history_bytes;
                    c.max_subscribers = max_subscribers;
                    c.max_topics = 100;
                    c.first_seq = 1;
                })
            },
        )
}

const TOPICS: [&str; 3] = ["default", "t1", "t2"];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn hub_matches_the_reference_model(config in config(), ops in prop::collection::vec(op(), 1..60)) {
        let mut hub = Hub::new(config.clone());
        let mut model = Model { config, ..Model::default() };
        let mut ids: Vec<SubscriberId> = Vec::new();
        let mut returned: Vec<String> = Vec::new();
        let mut now = 0;
        for op in ops {
            match op {
                Op::Subscribe { topics, last } => {
                    let last = match last {
                        Last::None => None,
                        Last::Returned(i) if !returned.is_empty() => Some(returned[i % returned.len()].clone()),
                        Last::Returned(_) => None,
                        Last::Number(n) => Some(n.to_string()),
                        Last::Text(t) => Some(t),
                    };
                    let names: Vec<Topic> = topics
                        .iter()
                        .map(|&t| Topic::new(TOPICS[t as usize]).unwrap())
                        .collect();
                    let got = hub.subscribe(&names, last.as_deref(), Millis(now));
                    let want = model.subscribe(&topics, last.as_deref());
                    prop_assert_eq!(got.as_ref().map(|s| s.replay).map_err(|e| *e), want);
                    if let Ok(s) = &got {
                        ids.push(s.id);
                    }
                }
                Op::Publish { topic, custom } => {
                    let custom = custom.map(|c| format!("c{c}"));
                    let mut event = Event::new(format!("d{}", model.published.len() + 1));
                    if let Some(c) = &custom {
                        event = event.with_id(EventId::new(c.clone()).unwrap());
                    }
                    let got = hub.publish(&Topic::new(TOPICS[topic as usize]).unwrap(), event, Millis(now));
                    let (want, closed) = model.publish(topic, custom);
                    prop_assert_eq!(got.as_str(), want.as_str());
                    returned.push(want);
                    let mut got_closed = Vec::new();
                    while let Some((id, reason)) = hub.poll_close() {
                        prop_assert_eq!(reason, CloseReason::Overflow);
                        got_closed.push(ids.iter().position(|i| *i == id).unwrap());
                    }
                    got_closed.sort_unstable();
                    prop_assert_eq!(got_closed, closed);
                }
                Op::Pop { sub, n } if !ids.is_empty() => {
                    let i = sub % ids.len();
                    for _ in 0..n {
                        let got = hub.pop_frame(ids[i]).map(|f| String::from_utf8(f.as_bytes().to_vec()).unwrap());
                        prop_assert_eq!(got, model.pop(i));
                    }
                }
                Op::Unsubscribe { sub } if !ids.is_empty() => {
                    let i = sub % ids.len();
                    hub.unsubscribe(ids[i]);
                    if model.subs[i].alive {
                        model.subs[i].alive = false;
                        model.live_count -= 1;
                    }
                }
                Op::Pop { .. } | Op::Unsubscribe { .. } => {}
                Op::Tick { ms } => {
                    now += ms;
                    hub.handle_timeout(Millis(now));
                    prop_assert_eq!(hub.poll_timeout(), None);
                }
            }
            for (i, id) in ids.iter().enumerate() {
                let sub = &model.subs[i];
                let want = if sub.alive { sub.queued() } else { 0 };
                prop_assert_eq!(hub.queued(*id), want);
            }
            let stats = hub.stats();
            prop_assert_eq!(stats.subscribers, model.live_count as u64);
            prop_assert_eq!(stats.delivered, model.delivered);
            prop_assert_eq!(stats.dropped, model.dropped);
        }
        // Every readiness report is for a live subscriber with frames queued.
        while let Some(id) = hub.poll_ready() {
            prop_assert!(hub.queued(id) > 0);
        }
    }

    /// The keep-alive guarantee holds whatever the subscribe and publish times.
    #[test]
    fn keepalive_guarantee_holds(
        k in 4..5_000u64,
        steps in prop::collection::vec((0..3u8, 1..3_000u64), 1..40),
    ) {
        let mut sim = Sim::new(with(quiet(), |c| { c.keepalive = Some(Millis(k)); }));
        let mut subs = vec![(sim.sub(&["a"]), 0)];
        for (action, dt) in steps {
            let t = sim.now + dt;
            sim.advance_to(t);
            match action {
                0 => subs.push((sim.sub(&["a"]), t)),
                1 => { sim.publish("a", "x"); }
                _ => { sim.publish("b", "y"); }
            }
        }
        let end = sim.now + 3 * k;
        sim.advance_to(end);
        for (id, since) in subs {
            check_keepalive_gaps(&sim, id, since, end, k);
        }
        for pair in sim.sweeps.windows(2) {
            prop_assert!(pair[1] - pair[0] >= k / 4);
        }
    }
}

// ---------------------------------------------------------------- reconnecting clients

/// What a client does in [`resumed_means_nothing_was_missed`].
#[derive(Debug, Clone)]
enum ClientOp {
    Publish {
        topic: usize,
        custom_id: bool,
    },
    /// Client `client` connects (or reconnects with its last event id) to its topics.
    Connect {
        client: usize,
    },
    Disconnect {
        client: usize,
    },
}

#[derive(Debug, Default)]
struct Client {
    topics: Vec<usize>,
    id: Option<SubscriberId>,
    /// The first `seq` this client must see (it first connected just before it).
    since: u64,
    started: bool,
    /// The data of each event received, over every connection.
    data: Vec<String>,
    last_id: Option<String>,
}

fn client_op() -> impl Strategy<Value = ClientOp> {
    prop_oneof![
        4 => (0..5usize, any::<bool>())
            .prop_map(|(topic, custom_id)| ClientOp::Publish { topic, custom_id }),
        1 => (0..3usize).prop_map(|client| ClientOp::Connect { client }),
        1 => (0..3usize).prop_map(|client| ClientOp::Disconnect { client }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever the limits (history by count and bytes, topics forgotten), a client that
    /// reconnects with its last event id and is told `Resumed` has received every event of
    /// its topics since it first connected, once each, in order.
    #[test]
    fn resumed_means_nothing_was_missed(
        history_events in 0..5usize,
        history_bytes in 0..120usize,
        max_topics in 0..4usize,
        client_topics in prop::collection::vec(prop::collection::vec(0..5usize, 1..3), 3),
        ops in prop::collection::vec(client_op(), 1..80),
    ) {
        let topic = |i: usize| Topic::new(format!("t{i}")).unwrap();
        let mut hub = Hub::new(with(quiet(), |c| { c.history_events = history_events; c.history_bytes = history_bytes; c.max_topics = max_topics; c.queue_capacity = 1_000; }));
        let mut clients: Vec<Client> = client_topics
            .into_iter()
            .map(|topics| Client { topics, ..Client::default() })
            .collect();
        // (seq, topic) of every event published.
        let mut published: Vec<(u64, usize)> = Vec::new();
        let check = |client: &Client, published: &[(u64, usize)]| {
            let want: Vec<String> = published
                .iter()
                .filter(|(seq, t)| *seq >= client.since && client.topics.contains(t))
                .map(|(seq, _)| format!("d{seq}"))
                .collect();
            prop_assert_eq!(&client.data, &want);
            Ok(())
        };
        for op in ops {
            match op {
                ClientOp::Publish { topic: t, custom_id } => {
                    let seq = published.len() as u64 + 1;
                    let mut event = Event::new(format!("d{seq}"));
                    if custom_id {
                        event = event.with_id(EventId::new(format!("c{seq}")).unwrap());
                    }
                    hub.publish(&topic(t), event, Millis(0));
                    published.push((seq, t));
                }
                ClientOp::Connect { client } => {
                    let c = &mut clients[client];
                    if c.id.is_some() {
                        continue;
                    }
                    let topics: Vec<Topic> = c.topics.iter().map(|&t| topic(t)).collect();
                    let last = if c.started { c.last_id.clone() } else { None };
                    let s = hub.subscribe(&topics, last.as_deref(), Millis(0)).unwrap();
                    c.id = Some(s.id);
                    match s.replay {
                        Replay::Live => {
                            if !c.started || c.last_id.is_none() {
                                // First connection, or reconnecting before any event:
                                // the stream starts here.
                                c.started = true;
                                c.since = published.len() as u64 + 1;
                                c.data.clear();
                            }
                        }
                        Replay::Resumed { .. } => {}
                        Replay::Missed { .. } => {
                            // A gap, announced: the marker comes first. Start over.
                            let marker = hub.pop_frame(s.id).unwrap();
                            let requested = c.last_id.clone().unwrap_or_default();
                            prop_assert_eq!(
                                String::from_utf8(marker.as_bytes().to_vec()).unwrap(),
                                missed(&requested)
                            );
                            while hub.pop_frame(s.id).is_some() {}
                            c.since = published.len() as u64 + 1;
                            c.data.clear();
                        }
                        other => panic!("unexpected {other:?}"),
                    }
                }
                ClientOp::Disconnect { client } => {
                    if let Some(id) = clients[client].id.take() {
                        hub.unsubscribe(id);
                        check(&clients[client], &published)?;
                    }
                }
            }
            // The pump: every connected client reads everything queued.
            for c in clients.iter_mut() {
                let Some(id) = c.id else { continue };
                let mut decoder = Decoder::new();
                while let Some(frame) = hub.pop_frame(id) {
                    decoder.feed(frame.as_bytes()).unwrap();
                }
                while let Some(event) = decoder.next_event() {
                    prop_assert_eq!(event.event_type, "message");
                    c.data.push(event.data);
                    c.last_id = Some(event.last_event_id);
                }
            }
        }
        for c in &clients {
            if c.id.is_some() {
                check(c, &published)?;
            }
        }
        prop_assert_eq!(hub.stats().dropped, 0);
    }
}

#[test]
fn ids_of_an_earlier_instance_are_missed_not_resumed() {
    // A hub restarted with a higher `first_seq` has published 1000..=1002; a client of the
    // earlier instance saw 1001 there, which is a different event.
    let mut sim = Sim::new(with(quiet(), |c| {
        c.first_seq = 1000;
    }));
    publish_n(&mut sim, "default", 3);
    let s = sim.subscribe(&[], Some("5"));
    assert_eq!(s.replay, Replay::Missed { replayed: 3 });
    // `first_seq - 1` means "nothing of this hub yet": nothing was missed.
    let s = sim.subscribe(&[], Some("999"));
    assert_eq!(s.replay, Replay::Resumed { replayed: 3 });
    let s = sim.subscribe(&[], Some("1001"));
    assert_eq!(s.replay, Replay::Resumed { replayed: 1 });
    assert_eq!(sim.frames(s.id), vec![ev("1002", "e3")]);
}

// ---------------------------------------------------------------- caller-ordered events

impl Sim {
    /// Publishes data `data` at position `seq` with wire id `id`, as a cluster node's log
    /// reader would.
    fn publish_at(
        &mut self,
        topic: &str,
        id: &str,
        seq: u64,
    ) -> Result<String, ssecast::PublishAtError> {
        let event = Event::new(format!("d{id}")).with_id(EventId::new(id).unwrap());
        let result = self
            .hub
            .publish_at(&Topic::new(topic).unwrap(), event, seq, Millis(self.now));
        self.drain();
        result.map(|id| id.as_str().to_owned())
    }
}

fn at(id: &str) -> String {
    ev(id, &format!("d{id}"))
}

#[test]
fn publish_at_keeps_the_callers_ids_and_refuses_old_positions() {
    let mut sim = Sim::new(quiet());
    let a = sim.sub(&["t"]);
    assert_eq!(sim.publish_at("t", "10-0", 10_000_000), Ok("10-0".into()));
    assert_eq!(sim.publish_at("t", "10-1", 10_000_001), Ok("10-1".into()));
    // A second delivery of the same entry, or an older one, changes nothing.
    let again = sim.publish_at("t", "10-1", 10_000_001);
    assert_eq!(
        again,
        Err(ssecast::PublishAtError::NotAfter { last: 10_000_001 })
    );
    assert!(sim.publish_at("t", "9-0", 9_000_000).is_err());
    let no_id = sim
        .hub
        .publish_at(&Topic::new("t").unwrap(), Event::new("x"), 11, Millis(0));
    assert_eq!(no_id, Err(ssecast::PublishAtError::NoId));
    assert_eq!(sim.frames(a), [at("10-0"), at("10-1")]);
    assert_eq!(sim.hub.stats().published, 2);
    assert_eq!(
        sim.hub.topic_last_seq(&Topic::new("t").unwrap()),
        Some(10_000_001)
    );
    assert_eq!(sim.hub.topic_last_seq(&Topic::new("u").unwrap()), None);
    assert_eq!(sim.hub.topic_subscribers(&Topic::new("t").unwrap()), 1);
    assert_eq!(sim.hub.topic_subscribers(&Topic::new("u").unwrap()), 0);
}

#[test]
fn a_topic_filled_later_with_older_positions_replays_in_position_order() {
    // Topic "b" is filled from the log after "a" already had live events: replay across
    // both topics follows the caller's positions, not the order the hub was fed.
    let mut sim = Sim::new(quiet());
    sim.publish_at("a", "3-0", 3).unwrap();
    sim.publish_at("a", "5-0", 5).unwrap();
    sim.publish_at("b", "2-0", 2).unwrap();
    sim.publish_at("b", "4-0", 4).unwrap();
    sim.publish_at("b", "6-0", 6).unwrap();
    let resumed = sim.subscribe(&["a", "b"], Some("3-0"));
    assert_eq!(resumed.replay, Replay::Resumed { replayed: 3 });
    assert_eq!(sim.frames(resumed.id), [at("4-0"), at("5-0"), at("6-0")]);
}

#[test]
fn mark_evicted_makes_older_resumes_missed() {
    let mut sim = Sim::new(quiet());
    sim.publish_at("t", "7-0", 7).unwrap();
    sim.publish_at("t", "8-0", 8).unwrap();
    // The log had let go of what came before 7.
    sim.hub.mark_evicted(&Topic::new("t").unwrap(), 6);
    let old = sim.subscribe(&["t"], Some("5-0"));
    assert_eq!(old.replay, Replay::Missed { replayed: 2 });
    assert_eq!(sim.frames(old.id), [missed("5-0"), at("7-0"), at("8-0")]);
    let recent = sim.subscribe(&["t"], Some("7-0"));
    assert_eq!(recent.replay, Replay::Resumed { replayed: 1 });
    assert_eq!(sim.frames(recent.id), [at("8-0")]);
    // Unknown topics are left alone.
    sim.hub.mark_evicted(&Topic::new("nope").unwrap(), 100);
    assert_eq!(sim.hub.topic_last_seq(&Topic::new("nope").unwrap()), None);
}
