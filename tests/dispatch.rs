//! Who receives an update: selectors (exact, `*`, draft-07 templates, draft-08 `match=` and
//! URL patterns) x the update's topics x private flags x rights, as tables of one-line cases
//! and as a property test against a naive model that checks every subscriber, every
//! selector and every topic, live and on replay from a random position.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use ssecast::{
    BaseUrl, Decoder, Event, EventId, Hub, HubConfig, Millis, PublishOutcome, Replay, Rights,
    Selector, SelectorKind, SubscriberId, Topic, Update, EARLIEST,
};

const HUB_URL: &str = "https://example.com/.well-known/mercure";

fn base() -> BaseUrl {
    BaseUrl::parse(HUB_URL).unwrap()
}

/// A selector written `kind:text`: `exact:` (native), `topic:` (draft-07), `match:`
/// (draft-08 exact), `url:` (draft-08 URL pattern).
fn sel(spec: &str) -> Selector {
    let (kind, text) = spec.split_once(':').unwrap();
    match kind {
        "exact" => Selector::new(text, SelectorKind::Exact).unwrap(),
        "topic" => Selector::new(text, SelectorKind::Topic).unwrap(),
        "match" => Selector::new(text, SelectorKind::Match).unwrap(),
        "url" => Selector::url_pattern(text, &base()).unwrap(),
        _ => panic!("unknown kind in {spec:?}"),
    }
}

fn topic(t: &str) -> Topic {
    Topic::new(t).unwrap()
}

/// Rights written as `none`, `all`, or selectors separated by spaces.
fn rights(spec: &str) -> Rights {
    match spec {
        "none" => Rights::None,
        "all" => Rights::All,
        list => Rights::Selectors(list.split(' ').map(sel).collect()),
    }
}

fn quiet() -> HubConfig {
    let mut config = HubConfig::default();
    config.retry = None;
    config.keepalive = None;
    config
}

/// Everything `id` has queued, as text.
fn drain(hub: &mut Hub, id: SubscriberId) -> Vec<String> {
    std::iter::from_fn(|| hub.pop_frame(id))
        .map(|f| String::from_utf8(f.as_bytes().to_vec()).unwrap())
        .collect()
}

/// One subscriber with `selectors` and `rights` (space-separated specs) and one update with
/// `topics` (space-separated, canonical first): is it delivered, live and on replay?
#[track_caller]
fn check(selectors: &str, rights_spec: &str, topics: &str, private: bool, expected: bool) {
    let selectors: Vec<Selector> = selectors.split(' ').map(sel).collect();
    let rights = rights(rights_spec);
    let mut topics = topics.split(' ').map(topic);
    let mut update = Update::new(topics.next().unwrap(), Event::new("x")).with_private(private);
    for t in topics {
        update = update.with_alternate(t);
    }
    let mut hub = Hub::new(quiet());
    let live = hub
        .subscribe_with(&selectors, &rights, None, Millis(0))
        .unwrap()
        .id;
    hub.publish_update(update, Millis(1));
    let got = drain(&mut hub, live);
    assert!(got.len() <= 1, "delivered twice: {got:?}");
    assert_eq!(
        !got.is_empty(),
        expected,
        "live: {selectors:?} / {rights_spec} / private {private}"
    );
    let resumed = hub
        .subscribe_with(&selectors, &rights, Some(EARLIEST), Millis(2))
        .unwrap();
    assert_eq!(
        resumed.replay,
        Replay::Resumed {
            replayed: usize::from(expected)
        },
        "replay: {selectors:?} / {rights_spec} / private {private}"
    );
    assert_eq!(drain(&mut hub, resumed.id), got);
}

const BOOK: &str = "https://example.com/books/1";
const BOOKS: &str = "https://example.com/books/{id}";
/// The alternate topic of the spec's example (draft-07, "Subscribers").
const FOO_BOOK: &str = "https://example.com/users/foo/?topic=https%3A%2F%2Fexample.com%2Fbooks%2F1";

#[test]
fn public_updates_follow_the_selectors() {
    let book = BOOK;
    // selectors                                   topics                      delivered
    check("topic:*", "none", book, false, true);
    check("exact:*", "none", book, false, false); // natively `*` is a name
    check("exact:*", "none", "*", false, true);
    check("match:*", "none", book, false, true);
    check("url:*", "none", book, false, true);
    check(&format!("exact:{book}"), "none", book, false, true);
    check(
        "exact:https://example.com/books/2",
        "none",
        book,
        false,
        false,
    );
    check(&format!("topic:{BOOKS}"), "none", book, false, true);
    check(&format!("topic:{BOOKS}"), "none", BOOKS, false, true); // a template matches itself
    check(
        &format!("topic:{BOOKS}"),
        "none",
        "https://example.com/books/1/x",
        false,
        false,
    );
    check(&format!("match:{BOOKS}"), "none", book, false, false); // never a template
    check(&format!("match:{BOOKS}"), "none", BOOKS, false, true);
    check(
        "topic:https://example.com/{id",
        "none",
        "https://example.com/{id",
        false,
        true,
    );
    check("url:/books/:id", "none", book, false, true);
    check("url:/books/:id", "none", "/books/1", false, true); // relative topic
    check(
        "url:/books/:id",
        "none",
        "https://example.com/books/1/x",
        false,
        false,
    );
    check(
        "url:https://example.com/books/:id",
        "none",
        book,
        false,
        true,
    );
    check(
        "url:https://other.example/books/:id",
        "none",
        book,
        false,
        false,
    );
    // Alternate topics route too, and an update matched twice comes once.
    check("exact:news", "none", &format!("{book} news"), false, true);
    check(
        &format!("exact:news topic:{BOOKS} topic:*"),
        "none",
        &format!("{book} news"),
        false,
        true,
    );
    check("exact:sport", "none", &format!("{book} news"), false, false);
}

#[test]
fn private_updates_need_a_right_on_one_of_their_topics() {
    let book = BOOK;
    let all = "topic:*";
    // Routing without rights: public only.
    check(all, "none", book, true, false);
    check(all, "all", book, true, true);
    check(all, "topic:*", book, true, true);
    check(all, &format!("topic:{book}"), book, true, true);
    check(all, "topic:https://example.com/books/2", book, true, false);
    check(all, &format!("topic:{BOOKS}"), book, true, true);
    check(all, &format!("match:{BOOKS}"), book, true, false);
    check(all, "url:/books/:id", book, true, true);
    check(all, "url:/users/:id", book, true, false);
    // Rights never widen routing: a right without a matching selector delivers nothing.
    check("exact:news", "all", book, true, false);
    check("exact:news", &format!("topic:{book}"), book, true, false);
    // A right on an alternate topic is enough, selected by the canonical one.
    check(
        &format!("topic:{BOOKS}"),
        "topic:news",
        &format!("{book} news"),
        true,
        true,
    );
    check(
        &format!("topic:{BOOKS}"),
        "topic:sport",
        &format!("{book} news"),
        true,
        false,
    );
    // Public updates ignore rights.
    check(all, "topic:sport", book, false, true);
}

/// Mercure draft-07, "Subscribers": a subscriber of `https://example.com/books/{id}` whose
/// token allows `https://example.com/users/foo/{?topic}` gets the private update of book 1
/// published with the alternate topic naming it under its user; other subscribers of the
/// books do not.
#[test]
fn the_spec_alternate_topic_rights_example() {
    let mut hub = Hub::new(quiet());
    let books = [sel(&format!("topic:{BOOKS}"))];
    let foo = rights("topic:https://example.com/users/foo/{?topic}");
    let bar = rights("topic:https://example.com/users/bar/{?topic}");
    let foo_id = hub
        .subscribe_with(&books, &foo, None, Millis(0))
        .unwrap()
        .id;
    let bar_id = hub
        .subscribe_with(&books, &bar, None, Millis(0))
        .unwrap()
        .id;
    let anonymous = hub
        .subscribe_with(&books, &Rights::None, None, Millis(0))
        .unwrap()
        .id;
    let update = Update::new(topic(BOOK), Event::new("for foo"))
        .with_alternate(topic(FOO_BOOK))
        .with_private(true);
    hub.publish_update(update, Millis(1));
    // A private update of book 2 with no alternate topic reaches none of them.
    hub.publish_update(
        Update::new(topic("https://example.com/books/2"), Event::new("nobody")).with_private(true),
        Millis(2),
    );
    hub.publish(&topic(BOOK), Event::new("public"), Millis(3));
    let public = "id: 3\ndata: public\n\n".to_owned();
    assert_eq!(
        drain(&mut hub, foo_id),
        ["id: 1\ndata: for foo\n\n".to_owned(), public.clone()]
    );
    assert_eq!(drain(&mut hub, bar_id), std::slice::from_ref(&public));
    assert_eq!(drain(&mut hub, anonymous), std::slice::from_ref(&public));
    // The same on replay: rights are re-checked.
    let again = hub
        .subscribe_with(&books, &foo, Some(EARLIEST), Millis(4))
        .unwrap();
    assert_eq!(again.replay, Replay::Resumed { replayed: 2 });
    let again = hub
        .subscribe_with(&books, &bar, Some(EARLIEST), Millis(4))
        .unwrap();
    assert_eq!(drain(&mut hub, again.id), [public]);
}

/// Mercure draft-08, "Subscribers": the same idea with a URL-pattern grant.
#[test]
fn the_draft_08_alternate_topic_example() {
    let books = "url:https://example.com/books/:id";
    let grant = "url:https://example.com/users/42/*";
    let alternate = "https://example.com/books/1 https://example.com/users/42/books/1";
    check(books, grant, alternate, true, true);
    check(books, grant, "https://example.com/books/1", true, false);
    // Exact grants of some books only.
    let some = "match:https://example.com/books/1 match:https://example.com/books/7";
    check(books, some, "https://example.com/books/1", true, true);
    check(books, some, "https://example.com/books/2", true, false);
}

#[test]
fn interned_patterns_are_shared_and_released() {
    // Many subscribers of one template: one evaluation per update however many there are,
    // and every one gets the update once.
    let mut hub = Hub::new(quiet());
    let books = [sel(&format!("topic:{BOOKS}")), sel("topic:*")];
    let ids: Vec<SubscriberId> = (0..100)
        .map(|_| {
            hub.subscribe_with(&books, &Rights::None, None, Millis(0))
                .unwrap()
                .id
        })
        .collect();
    hub.publish(&topic(BOOK), Event::new("x"), Millis(1));
    for &id in &ids {
        assert_eq!(drain(&mut hub, id), ["id: 1\ndata: x\n\n"]);
    }
    for &id in &ids[..99] {
        hub.unsubscribe(id);
    }
    hub.publish(&topic(BOOK), Event::new("y"), Millis(2));
    assert_eq!(drain(&mut hub, ids[99]), ["id: 2\ndata: y\n\n"]);
    assert_eq!(hub.stats().delivered, 101);
}

#[test]
fn an_update_is_one_event_however_many_topics_it_has() {
    let mut hub = Hub::new(quiet());
    let a = hub.subscribe(&[topic("a")], None, Millis(0)).unwrap().id;
    let ab = hub
        .subscribe(&[topic("a"), topic("b")], None, Millis(0))
        .unwrap()
        .id;
    let update = Update::new(topic("a"), Event::new("x"))
        .with_alternate(topic("b"))
        .with_alternate(topic("c"));
    let published = hub.publish_update(update, Millis(1));
    assert_eq!(published.outcome, PublishOutcome::Published);
    assert_eq!(drain(&mut hub, a), ["id: 1\ndata: x\n\n"]);
    assert_eq!(drain(&mut hub, ab), ["id: 1\ndata: x\n\n"]);
    let stats = hub.stats();
    assert_eq!((stats.published, stats.encoded), (1, 1));
    // Counted once in the history, found from each topic.
    assert_eq!(
        stats.history_bytes,
        ("id: 1\ndata: x\n\n".len() + HubConfig::EVENT_COST) as u64
    );
    assert_eq!(hub.retained_seqs(), [1]);
    for t in ["a", "b", "c"] {
        assert_eq!(hub.topic_last_seq(&topic(t)), Some(1));
        let s = hub.subscribe(&[topic(t)], Some("0"), Millis(2)).unwrap();
        assert_eq!(s.replay, Replay::Resumed { replayed: 1 }, "{t}");
    }
}

// ---------------------------------------------------------------- the model

/// Topics the property test publishes to: IRIs templates and patterns match in various ways,
/// plus a topic spelled like a template and the literal `*`.
const TOPICS: [&str; 8] = [
    "https://example.com/books/1",
    "https://example.com/books/2",
    "https://example.com/books/1/reviews",
    FOO_BOOK,
    "https://example.com/users/bar",
    "news",
    "*",
    BOOKS,
];

/// Selectors (and rights) the property test uses.
const SELECTORS: [&str; 14] = [
    "topic:*",
    "exact:*",
    "match:*",
    "topic:https://example.com/books/{id}",
    "topic:https://example.com/books/1",
    "topic:https://example.com/users/foo/{?topic}",
    "topic:https://example.com/{+rest}",
    "topic:https://example.com/users/{user}",
    "topic:https://example.com/{id",
    "exact:news",
    "match:https://example.com/books/{id}",
    "url:/books/:id",
    "url:https://example.com/users/*",
    "exact:https://example.com/books/2",
];

#[derive(Debug, Clone)]
enum RightsChoice {
    None,
    All,
    Some(Vec<usize>),
}

#[derive(Debug, Clone)]
enum LastChoice {
    Earliest,
    /// One of the ids publishes returned (index modulo how many).
    Returned(usize),
    Number(u64),
    Unknown,
}

#[derive(Debug, Clone)]
enum Op {
    Subscribe {
        selectors: Vec<usize>,
        rights: RightsChoice,
        last: Option<LastChoice>,
    },
    Unsubscribe {
        sub: usize,
    },
    Publish {
        topics: Vec<usize>,
        private: bool,
        custom: Option<u8>,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let rights = prop_oneof![
        Just(RightsChoice::None),
        Just(RightsChoice::All),
        prop::collection::vec(0..SELECTORS.len(), 1..3).prop_map(RightsChoice::Some),
    ];
    let last = prop::option::of(prop_oneof![
        Just(LastChoice::Earliest),
        (0..64usize).prop_map(LastChoice::Returned),
        (0..30u64).prop_map(LastChoice::Number),
        Just(LastChoice::Unknown),
    ]);
    prop_oneof![
        2 => (prop::collection::vec(0..SELECTORS.len(), 1..4), rights, last)
            .prop_map(|(selectors, rights, last)| Op::Subscribe { selectors, rights, last }),
        1 => (0..16usize).prop_map(|sub| Op::Unsubscribe { sub }),
        5 => (
            prop::collection::vec(0..TOPICS.len(), 1..4),
            any::<bool>(),
            prop::option::weighted(0.3, 0..4u8),
        )
            .prop_map(|(topics, private, custom)| Op::Publish { topics, private, custom }),
    ]
}

#[derive(Debug, Clone)]
struct ModelEvent {
    seq: u64,
    topics: Vec<Topic>,
    private: bool,
    wire: String,
    frame: String,
    retained: bool,
}

struct ModelSub {
    alive: bool,
    selectors: Vec<Selector>,
    rights: Rights,
    /// Frames it should have received and not yet been compared.
    expected: Vec<String>,
}

/// The naive model: every event ever published in a `Vec` with a `retained` flag kept by
/// re-applying the bounds naively, every subscriber checked against every selector and
/// every topic.
struct Model {
    config: HubConfig,
    events: Vec<ModelEvent>,
    subs: Vec<ModelSub>,
}

fn matches_any(selectors: &[Selector], topics: &[Topic]) -> bool {
    selectors
        .iter()
        .any(|s| topics.iter().any(|t| s.matches(t)))
}

fn may_read(rights: &Rights, topics: &[Topic]) -> bool {
    match rights {
        Rights::All => true,
        Rights::Selectors(list) => matches_any(list, topics),
        _ => false,
    }
}

impl Model {
    fn visible(selectors: &[Selector], rights: &Rights, e: &ModelEvent) -> bool {
        matches_any(selectors, &e.topics) && (!e.private || may_read(rights, &e.topics))
    }

    /// The bounds, naively: the topics of the newest event over their own bounds let their
    /// oldest go, then the hub its oldest while over the total. An event goes as a whole.
    fn enforce(&mut self, touched: &[Topic]) {
        for t in touched {
            loop {
                let mine: Vec<usize> = (0..self.events.len())
                    .filter(|&i| self.events[i].retained && self.events[i].topics.contains(t))
                    .collect();
                let bytes: usize = mine.iter().map(|&i| self.events[i].frame.len()).sum();
                if mine.len() <= self.config.history_events && bytes <= self.config.history_bytes {
                    break;
                }
                self.events[mine[0]].retained = false;
            }
        }
        loop {
            // The total charges each event its frame and its bookkeeping.
            let bytes: usize = self
                .events
                .iter()
                .filter(|e| e.retained)
                .map(|e| e.frame.len() + HubConfig::EVENT_COST)
                .sum();
            if bytes <= self.config.history_total_bytes {
                break;
            }
            let oldest = self.events.iter_mut().find(|e| e.retained).unwrap();
            oldest.retained = false;
        }
    }

    /// Returns the wire id and whether it was published.
    fn publish(
        &mut self,
        topics: Vec<Topic>,
        private: bool,
        custom: Option<String>,
    ) -> (String, bool) {
        if let Some(id) = &custom {
            if self.events.iter().any(|e| e.retained && &e.wire == id) {
                return (id.clone(), false);
            }
        }
        let seq = self.events.len() as u64 + 1;
        let wire = custom.unwrap_or_else(|| seq.to_string());
        let frame = format!("id: {wire}\ndata: d{seq}\n\n");
        let event = ModelEvent {
            seq,
            topics: topics.clone(),
            private,
            wire: wire.clone(),
            frame,
            retained: true,
        };
        for sub in self.subs.iter_mut().filter(|s| s.alive) {
            if Model::visible(&sub.selectors, &sub.rights, &event) {
                sub.expected.push(event.frame.clone());
            }
        }
        self.events.push(event);
        self.enforce(&topics);
        (wire, true)
    }

    /// The replay outcome, the frames queued, and the id to report.
    fn subscribe(
        &mut self,
        selectors: Vec<Selector>,
        rights: Rights,
        last: Option<&str>,
    ) -> (Replay, Option<String>) {
        let mut expected = Vec::new();
        let mut outcome = (Replay::Live, None);
        if let Some(last) = last {
            let next_seq = self.events.len() as u64 + 1;
            let number = last.parse::<u64>().ok().filter(|n| n.to_string() == last);
            let found = self
                .events
                .iter()
                .find(|e| e.retained && e.wire == last)
                .map(|e| e.seq);
            let (position, report) = if last == EARLIEST {
                (Some(0), false)
            } else if let Some(seq) = found {
                (Some(seq), true)
            } else {
                match number.filter(|&n| n < next_seq) {
                    Some(n) => (Some(n), n >= 1),
                    None => (None, false),
                }
            };
            let after = position.unwrap_or(0);
            // Missed: an event after the position, routed to this subscriber, was let go of
            // (rights aside), or the id is unknown.
            let missed = position.is_none()
                || self
                    .events
                    .iter()
                    .any(|e| !e.retained && e.seq > after && matches_any(&selectors, &e.topics));
            let frames: Vec<String> = self
                .events
                .iter()
                .filter(|e| e.retained && e.seq > after && Model::visible(&selectors, &rights, e))
                .map(|e| e.frame.clone())
                .collect();
            let replayed = frames.len();
            if missed {
                let data = if EventId::new(last).is_ok() { last } else { "" };
                expected.push(format!("event: ssecast.missed\ndata: {data}\n\n"));
            }
            expected.extend(frames);
            let replay = if missed {
                Replay::Missed { replayed }
            } else {
                Replay::Resumed { replayed }
            };
            let reported = (!missed && report).then(|| last.to_owned());
            outcome = (replay, reported);
        }
        self.subs.push(ModelSub {
            alive: true,
            selectors,
            rights,
            expected,
        });
        outcome
    }
}

fn config() -> impl Strategy<Value = HubConfig> {
    (0..6usize, 0..200usize, 0..1200usize).prop_map(|(events, bytes, total)| {
        let mut config = quiet();
        config.queue_capacity = 1_000;
        config.history_events = events;
        config.history_bytes = bytes;
        config.history_total_bytes = total;
        config
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever the selectors, rights, topics and bounds: what each subscriber receives, live
    /// and replayed (with its `Replay` and `resumed_after`), is what the naive model says,
    /// and no private update ever reaches a subscriber without a matching right.
    #[test]
    fn dispatch_matches_the_naive_model(config in config(), ops in prop::collection::vec(op(), 1..50)) {
        let mut hub = Hub::new(config.clone());
        let mut model = Model { config, events: Vec::new(), subs: Vec::new() };
        let mut ids: Vec<SubscriberId> = Vec::new();
        let mut returned: Vec<String> = Vec::new();
        for op in ops {
            match op {
                Op::Subscribe { selectors, rights, last } => {
                    let selectors: Vec<Selector> = selectors.iter().map(|&i| sel(SELECTORS[i])).collect();
                    let rights = match rights {
                        RightsChoice::None => Rights::None,
                        RightsChoice::All => Rights::All,
                        RightsChoice::Some(list) => {
                            Rights::Selectors(list.iter().map(|&i| sel(SELECTORS[i])).collect())
                        }
                    };
                    let last = last.map(|l| match l {
                        LastChoice::Earliest => EARLIEST.to_owned(),
                        LastChoice::Returned(i) if !returned.is_empty() => returned[i % returned.len()].clone(),
                        LastChoice::Returned(_) | LastChoice::Unknown => "unknown".to_owned(),
                        LastChoice::Number(n) => n.to_string(),
                    });
                    let got = hub.subscribe_with(&selectors, &rights, last.as_deref(), Millis(0)).unwrap();
                    let (replay, reported) = model.subscribe(selectors, rights, last.as_deref());
                    prop_assert_eq!(got.replay, replay);
                    prop_assert_eq!(got.resumed_after.map(|id| id.as_str().to_owned()), reported);
                    ids.push(got.id);
                }
                Op::Unsubscribe { sub } if !ids.is_empty() => {
                    let i = sub % ids.len();
                    hub.unsubscribe(ids[i]);
                    model.subs[i].alive = false;
                }
                Op::Unsubscribe { .. } => {}
                Op::Publish { topics, private, custom } => {
                    let topics: Vec<Topic> = topics.iter().map(|&t| topic(TOPICS[t])).collect();
                    let mut unique: Vec<Topic> = Vec::new();
                    for t in &topics {
                        if !unique.contains(t) {
                            unique.push(t.clone());
                        }
                    }
                    let custom = custom.map(|c| format!("urn:c{c}"));
                    let seq = model.events.len() + 1;
                    let mut event = Event::new(format!("d{seq}"));
                    if let Some(c) = &custom {
                        event = event.with_id(EventId::new(c.clone()).unwrap());
                    }
                    let mut update = Update::new(topics[0].clone(), event).with_private(private);
                    for t in &topics[1..] {
                        update = update.with_alternate(t.clone());
                    }
                    let got = hub.publish_update(update, Millis(0));
                    let (wire, published) = model.publish(unique, private, custom);
                    prop_assert_eq!(got.id.as_str(), wire.as_str());
                    prop_assert_eq!(got.outcome == PublishOutcome::Published, published);
                    returned.push(wire);
                }
            }
            // Every live subscriber's frames so far, compared with the model's.
            for (i, &id) in ids.iter().enumerate() {
                let got = drain(&mut hub, id);
                let sub = &mut model.subs[i];
                if !sub.alive {
                    prop_assert!(got.is_empty());
                    continue;
                }
                let want = std::mem::take(&mut sub.expected);
                prop_assert_eq!(&got, &want);
                // And, explicitly: a private event only with a right on one of its topics.
                let mut decoder = Decoder::new();
                for frame in &got {
                    decoder.feed(frame.as_bytes()).unwrap();
                }
                while let Some(e) = decoder.next_event() {
                    let Some(seq) = e.data.strip_prefix('d').and_then(|s| s.parse::<usize>().ok()) else {
                        continue;
                    };
                    let event = &model.events[seq - 1];
                    prop_assert!(!event.private || may_read(&sub.rights, &event.topics));
                }
            }
            // The history gauge is the sum of what is retained.
            let retained: Vec<u64> = model.events.iter().filter(|e| e.retained).map(|e| e.seq).collect();
            prop_assert_eq!(hub.retained_seqs(), retained);
            let bytes: usize = model.events.iter().filter(|e| e.retained).map(|e| e.frame.len() + HubConfig::EVENT_COST).sum();
            prop_assert_eq!(hub.stats().history_bytes, bytes as u64);
            let evicted = model.events.iter().filter(|e| !e.retained).count();
            prop_assert_eq!(hub.stats().history_evicted, evicted as u64);
        }
    }
}
