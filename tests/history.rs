//! The hub's one history: per-topic and hub-wide bounds, oldest-first eviction, `Missed`
//! after eviction, the `history_bytes` gauge, `retained_seqs`, idempotent ids, `earliest`,
//! `resumed_after`, and encoding once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ssecast::{
    Event, EventId, Hub, HubConfig, Millis, PublishAtError, PublishOutcome, Replay, Rights,
    Selector, SelectorKind, SubscriberId, Topic, Update, EARLIEST,
};

fn topic(t: &str) -> Topic {
    Topic::new(t).unwrap()
}

fn hub(f: impl FnOnce(&mut HubConfig)) -> Hub {
    let mut config = HubConfig::default();
    config.retry = None;
    config.keepalive = None;
    f(&mut config);
    Hub::new(config)
}

fn drain(hub: &mut Hub, id: SubscriberId) -> Vec<String> {
    std::iter::from_fn(|| hub.pop_frame(id))
        .map(|f| String::from_utf8(f.as_bytes().to_vec()).unwrap())
        .collect()
}

/// `id: N\ndata: eN\n\n`: 16 bytes for N below 10.
fn ev(n: u64) -> String {
    format!("id: {n}\ndata: e{n}\n\n")
}

fn publish(hub: &mut Hub, t: &str, n: u64) -> u64 {
    let published = hub.publish_update(
        Update::new(topic(t), Event::new(format!("e{n}"))),
        Millis(0),
    );
    published.seq
}

fn wildcard() -> Selector {
    Selector::new("*", SelectorKind::Topic).unwrap()
}

#[test]
fn the_total_bound_lets_the_oldest_of_the_whole_hub_go_first() {
    // Three 16-byte events fit (each also costs EVENT_COST); the fourth lets the oldest go,
    // whatever its topic.
    let cost = 16 + HubConfig::EVENT_COST as u64;
    let mut hub = hub(|c| c.history_total_bytes = 3 * (16 + HubConfig::EVENT_COST));
    publish(&mut hub, "a", 1);
    publish(&mut hub, "b", 2);
    publish(&mut hub, "a", 3);
    assert_eq!(hub.retained_seqs(), [1, 2, 3]);
    assert_eq!(hub.stats().history_bytes, 3 * cost);
    publish(&mut hub, "b", 4);
    assert_eq!(hub.retained_seqs(), [2, 3, 4]);
    publish(&mut hub, "c", 5);
    assert_eq!(hub.retained_seqs(), [3, 4, 5]);
    let stats = hub.stats();
    assert_eq!((stats.history_bytes, stats.history_evicted), (3 * cost, 2));

    // Topic a lost event 1: a resume of a before it is missed, after it is not.
    let s = hub.subscribe(&[topic("a")], Some("0"), Millis(0)).unwrap();
    assert_eq!(s.replay, Replay::Missed { replayed: 1 });
    assert_eq!(drain(&mut hub, s.id)[1..], [ev(3)]);
    let s = hub.subscribe(&[topic("a")], Some("1"), Millis(0)).unwrap();
    assert_eq!(s.replay, Replay::Resumed { replayed: 1 });
    // Topic c lost nothing.
    let s = hub.subscribe(&[topic("c")], Some("0"), Millis(0)).unwrap();
    assert_eq!(s.replay, Replay::Resumed { replayed: 1 });
    // `*` lost events 1 and 2.
    let all = [wildcard()];
    let s = hub
        .subscribe_with(&all, &Rights::None, Some("2"), Millis(0))
        .unwrap();
    assert_eq!(s.replay, Replay::Resumed { replayed: 3 });
    let s = hub
        .subscribe_with(&all, &Rights::None, Some("1"), Millis(0))
        .unwrap();
    assert_eq!(s.replay, Replay::Missed { replayed: 3 });
}

#[test]
fn per_topic_bounds_still_hold_beside_the_total() {
    let mut hub = hub(|c| {
        c.history_events = 2;
        c.history_total_bytes = 1 << 20;
    });
    for n in 1..=5 {
        publish(&mut hub, "busy", n);
    }
    publish(&mut hub, "quiet", 6);
    assert_eq!(hub.retained_seqs(), [4, 5, 6]);
    assert_eq!(
        hub.stats().history_bytes,
        3 * (16 + HubConfig::EVENT_COST as u64)
    );
    assert_eq!(hub.stats().history_evicted, 3);
}

#[test]
fn an_event_with_several_topics_is_counted_once_and_goes_as_a_whole() {
    // Topic b keeps one event: publishing b again lets the update of a and b go entirely,
    // so a's subscribers resuming before it are told they missed it.
    let mut hub = hub(|c| c.history_events = 1);
    let both = Update::new(topic("a"), Event::new("e1")).with_alternate(topic("b"));
    hub.publish_update(both, Millis(0));
    assert_eq!(hub.stats().history_bytes, 16 + HubConfig::EVENT_COST as u64);
    publish(&mut hub, "b", 2);
    assert_eq!(hub.retained_seqs(), [2]);
    let s = hub.subscribe(&[topic("a")], Some("0"), Millis(0)).unwrap();
    assert_eq!(s.replay, Replay::Missed { replayed: 0 });
    let s = hub.subscribe(&[topic("a")], Some("1"), Millis(0)).unwrap();
    assert_eq!(s.replay, Replay::Resumed { replayed: 0 });
}

#[test]
fn patterns_are_missed_only_for_topics_they_match() {
    let mut hub = hub(|c| c.history_events = 1);
    let books = [Selector::new("/books/{id}", SelectorKind::Topic).unwrap()];
    publish(&mut hub, "/books/1", 1);
    publish(&mut hub, "/users/1", 2);
    publish(&mut hub, "/users/1", 3); // lets 2 go: not a book
    let s = hub
        .subscribe_with(&books, &Rights::None, Some("0"), Millis(0))
        .unwrap();
    assert_eq!(s.replay, Replay::Resumed { replayed: 1 });
    publish(&mut hub, "/books/2", 4);
    publish(&mut hub, "/books/2", 5); // lets 4 go: a book
    let s = hub
        .subscribe_with(&books, &Rights::None, Some("3"), Millis(0))
        .unwrap();
    assert_eq!(s.replay, Replay::Missed { replayed: 1 });
    let s = hub
        .subscribe_with(&books, &Rights::None, Some("4"), Millis(0))
        .unwrap();
    assert_eq!(s.replay, Replay::Resumed { replayed: 1 });
}

#[test]
fn the_gauge_is_the_sum_of_retained_costs_through_every_kind_of_eviction() {
    let mut hub = hub(|c| {
        c.history_events = 3;
        c.history_bytes = 60;
        c.history_total_bytes = 200 + 6 * HubConfig::EVENT_COST;
        c.max_topics = 4;
    });
    let mut frames = std::collections::BTreeMap::new();
    for n in 1..=200u64 {
        let t = format!("t{}", n % 7);
        let data = "x".repeat((n % 13) as usize);
        let event = Event::new(data.clone());
        let seq = hub
            .publish_update(Update::new(topic(&t), event), Millis(0))
            .seq;
        let cost = format!("id: {seq}\ndata: {data}\n\n").len() + HubConfig::EVENT_COST;
        frames.insert(seq, cost as u64);
        let retained = hub.retained_seqs();
        let sum: u64 = retained.iter().map(|s| frames[s]).sum();
        assert_eq!(hub.stats().history_bytes, sum, "after {n}");
        assert!(sum <= 200 + 6 * HubConfig::EVENT_COST as u64);
        let evicted = hub.stats().history_evicted;
        assert_eq!(evicted + retained.len() as u64, n);
    }
}

#[test]
fn a_duplicate_id_is_acknowledged_and_not_delivered_again() {
    let mut hub = hub(|c| c.history_events = 2);
    let sub = hub.subscribe(&[topic("t")], None, Millis(0)).unwrap().id;
    let event = Event::new("x").with_id(EventId::new("job-1").unwrap());
    let first = hub.publish_update(Update::new(topic("t"), event.clone()), Millis(0));
    assert_eq!((first.id.as_str(), first.seq), ("job-1", 1));
    // A retry (even to another topic) is the same event.
    for t in ["t", "u"] {
        let again = hub.publish_update(Update::new(topic(t), event.clone()), Millis(0));
        assert_eq!(again.outcome, PublishOutcome::Duplicate);
        assert_eq!((again.id.as_str(), again.seq), ("job-1", 1));
    }
    // A publisher id equal to a retained hub-assigned id is a duplicate too.
    let hub_id = hub.publish(&topic("t"), Event::new("y"), Millis(0));
    assert_eq!(hub_id.as_str(), "2");
    let clash = Event::new("z").with_id(EventId::new("2").unwrap());
    let clash = hub.publish_update(Update::new(topic("t"), clash), Millis(0));
    assert_eq!((clash.outcome, clash.seq), (PublishOutcome::Duplicate, 2));
    assert_eq!(
        drain(&mut hub, sub),
        ["id: job-1\ndata: x\n\n", "id: 2\ndata: y\n\n"]
    );
    let stats = hub.stats();
    assert_eq!(
        (stats.published, stats.duplicates, stats.encoded),
        (2, 3, 2)
    );

    // Once the original has left the history, the id is new again.
    hub.publish(&topic("t"), Event::new("w"), Millis(0));
    assert_eq!(hub.retained_seqs(), [2, 3]);
    let later = hub.publish_update(Update::new(topic("t"), event), Millis(0));
    assert_eq!((later.outcome, later.seq), (PublishOutcome::Published, 4));
}

#[test]
fn hub_ids_skip_a_number_that_a_retained_publisher_id_took() {
    let mut hub = hub(|_| {});
    let taken = Event::new("a").with_id(EventId::new("2").unwrap());
    assert_eq!(
        hub.publish_update(Update::new(topic("t"), taken), Millis(0))
            .seq,
        1
    );
    // seq 2 would read "2", the id of the retained event 1: the hub skips to 3.
    let next = hub.publish(&topic("t"), Event::new("b"), Millis(0));
    assert_eq!(next.as_str(), "3");
    // So "2" names one event: resuming there replays event 3.
    let s = hub.subscribe(&[topic("t")], Some("2"), Millis(0)).unwrap();
    assert_eq!(s.replay, Replay::Resumed { replayed: 1 });
    assert_eq!(drain(&mut hub, s.id), ["id: 3\ndata: b\n\n"]);
}

#[test]
fn publish_at_is_idempotent_too_and_refuses_a_taken_position() {
    let mut hub = hub(|_| {});
    let event = |id: &str| Event::new("x").with_id(EventId::new(id).unwrap());
    let at = |hub: &mut Hub, t: &str, id: &str, seq: u64| {
        hub.publish_update_at(Update::new(topic(t), event(id)), seq, Millis(0))
    };
    assert_eq!(
        at(&mut hub, "a", "10-0", 10).unwrap().outcome,
        PublishOutcome::Published
    );
    assert_eq!(
        at(&mut hub, "a", "10-0", 10),
        Err(PublishAtError::NotAfter { last: 10 })
    );
    assert_eq!(
        at(&mut hub, "b", "x", 10),
        Err(PublishAtError::Taken { seq: 10 })
    );
    let dup = at(&mut hub, "b", "10-0", 11).unwrap();
    assert_eq!((dup.outcome, dup.seq), (PublishOutcome::Duplicate, 10));
    // Several topics: every one must be behind the position.
    let both = Update::new(topic("a"), event("12-0")).with_alternate(topic("c"));
    assert!(hub.publish_update_at(both, 12, Millis(0)).is_ok());
    let both = Update::new(topic("c"), event("11-5")).with_alternate(topic("d"));
    assert_eq!(
        hub.publish_update_at(both, 11, Millis(0)),
        Err(PublishAtError::NotAfter { last: 12 })
    );
    assert_eq!(hub.retained_seqs(), [10, 12]);
    // A private update restored as such.
    let private = Update::new(topic("p"), event("13-0")).with_private(true);
    hub.publish_update_at(private, 13, Millis(0)).unwrap();
    let all = [Selector::new("*", SelectorKind::Topic).unwrap()];
    let s = hub
        .subscribe_with(&all, &Rights::None, Some(EARLIEST), Millis(0))
        .unwrap();
    assert_eq!(s.replay, Replay::Resumed { replayed: 2 });
}

#[test]
fn earliest_replays_all_of_history_and_reports_earliest() {
    let mut hub = hub(|c| c.history_events = 2);
    for n in 1..=2 {
        publish(&mut hub, "t", n);
    }
    let s = hub
        .subscribe(&[topic("t")], Some(EARLIEST), Millis(0))
        .unwrap();
    assert_eq!(s.replay, Replay::Resumed { replayed: 2 });
    assert_eq!(s.resumed_after, None);
    assert_eq!(drain(&mut hub, s.id), [ev(1), ev(2)]);
    // Once something was let go of, `earliest` cannot promise it is all: missed.
    publish(&mut hub, "t", 3);
    let s = hub
        .subscribe(&[topic("t")], Some(EARLIEST), Millis(0))
        .unwrap();
    assert_eq!(s.replay, Replay::Missed { replayed: 2 });
    assert_eq!(s.resumed_after, None);
    assert_eq!(
        drain(&mut hub, s.id),
        [
            "event: ssecast.missed\ndata: earliest\n\n".to_owned(),
            ev(2),
            ev(3)
        ]
    );
    // On an empty hub, `earliest` is all there is.
    let mut empty = self::hub(|_| {});
    let s = empty
        .subscribe(&[topic("t")], Some(EARLIEST), Millis(0))
        .unwrap();
    assert_eq!(
        (s.replay, s.resumed_after),
        (Replay::Resumed { replayed: 0 }, None)
    );
}

#[test]
fn resumed_after_is_the_requested_id_only_when_nothing_was_missed() {
    let mut hub = hub(|c| c.history_events = 3);
    let custom = Event::new("c").with_id(EventId::new("urn:uuid:1").unwrap());
    hub.publish_update(Update::new(topic("t"), custom), Millis(0));
    publish(&mut hub, "t", 2);
    let id = |s: &ssecast::Subscribed| s.resumed_after.as_ref().map(|i| i.as_str().to_owned());
    // A retained event's id, publisher-chosen or the hub's.
    for last in ["urn:uuid:1", "2"] {
        let s = hub.subscribe(&[topic("t")], Some(last), Millis(0)).unwrap();
        assert!(matches!(s.replay, Replay::Resumed { .. }));
        assert_eq!(id(&s).as_deref(), Some(last));
    }
    // Before this hub's first event, unknown, or missed: `earliest`.
    for last in ["0", "nope", "99"] {
        let s = hub.subscribe(&[topic("t")], Some(last), Millis(0)).unwrap();
        assert_eq!(id(&s), None, "{last}");
    }
    for n in 3..=5 {
        publish(&mut hub, "t", n);
    }
    // Events 1 and 2 are gone: a resume after 1 missed 2; after 2, nothing.
    let s = hub.subscribe(&[topic("t")], Some("1"), Millis(0)).unwrap();
    assert_eq!((s.replay, id(&s)), (Replay::Missed { replayed: 3 }, None));
    let s = hub.subscribe(&[topic("t")], Some("2"), Millis(0)).unwrap();
    assert_eq!(
        (s.replay, id(&s)),
        (Replay::Resumed { replayed: 3 }, Some("2".into()))
    );
    // Without a Last-Event-ID, nothing to report.
    let s = hub.subscribe(&[topic("t")], None, Millis(0)).unwrap();
    assert_eq!((s.replay, s.resumed_after), (Replay::Live, None));
}

#[test]
fn a_publisher_id_resumes_across_topics_in_one_lookup() {
    // Ids are cursors into one hub-wide order: an id of another topic's event is a position.
    let mut hub = hub(|_| {});
    let other = Event::new("o").with_id(EventId::new("urn:other").unwrap());
    publish(&mut hub, "t", 1);
    hub.publish_update(Update::new(topic("u"), other), Millis(0));
    publish(&mut hub, "t", 3);
    let s = hub
        .subscribe(&[topic("t")], Some("urn:other"), Millis(0))
        .unwrap();
    assert_eq!(s.replay, Replay::Resumed { replayed: 1 });
    assert_eq!(drain(&mut hub, s.id), [ev(3)]);
}

#[test]
fn each_event_is_encoded_once_for_any_number_of_subscribers() {
    let mut hub = hub(|c| c.max_subscribers = 1_000);
    let selectors = [
        Selector::new("*", SelectorKind::Topic).unwrap(),
        Selector::new("/t/{n}", SelectorKind::Topic).unwrap(),
    ];
    let exact: Vec<SubscriberId> = (0..500)
        .map(|_| hub.subscribe(&[topic("/t/1")], None, Millis(0)).unwrap().id)
        .collect();
    let patterns: Vec<SubscriberId> = (0..500)
        .map(|_| {
            hub.subscribe_with(&selectors, &Rights::All, None, Millis(0))
                .unwrap()
                .id
        })
        .collect();
    for n in 1..=10 {
        let update =
            Update::new(topic("/t/1"), Event::new(format!("e{n}"))).with_alternate(topic("/t/2"));
        hub.publish_update(update, Millis(0));
    }
    for id in exact.into_iter().chain(patterns) {
        assert_eq!(drain(&mut hub, id).len(), 10);
    }
    let stats = hub.stats();
    assert_eq!(stats.published, 10);
    assert_eq!(stats.encoded, stats.published);
    assert_eq!(stats.delivered, 10 * 1_000);
}
