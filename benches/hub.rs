#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Dispatch cost, with every queue drained as a pump would (`poll_ready`, then `pop_frame`
//! until `None`).
//!
//! `cargo bench --bench hub`. Groups:
//! - `hub/publish_and_drain/N`: one event to N subscribers of one topic. Criterion reports
//!   the time per subscriber as the time per element ("thrpt" in elements/s; divide 1e9 by
//!   it for ns per subscriber).
//! - `own_topic/publish_one/N`: N subscribers, each on its own topic `/users/{n}`; one event
//!   to one of them. The time per publish must not grow with N (dispatch does not scan
//!   subscribers): compare N = 10 and N = 10,000. `own_private/publish_one/N`: the same with
//!   private updates, each subscriber holding the right to its own topic.
//! - `template/publish_and_drain/N`: as `hub/`, but every subscriber selects by the URI
//!   template `https://example.com/books/{id}` (one interned pattern, evaluated once).
//! - `url_pattern/publish_and_drain/N`: the same with the draft-08 URL pattern `/books/:id`.
//! - `private/publish_and_drain/N`: as `hub/`, but the event is private and every subscriber
//!   holds the right `https://example.com/books/{id}` (one interned right, evaluated once;
//!   per subscriber a lookup of its answer).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput};
use ssecast::{
    BaseUrl, Event, Hub, HubConfig, Millis, Rights, Selector, SelectorKind, Topic, Update,
};

fn config(subscribers: usize) -> HubConfig {
    let mut config = HubConfig::default();
    config.max_subscribers = subscribers;
    config.keepalive = None;
    config.retry = None;
    config
}

fn hub_with(subscribers: usize) -> Hub {
    let mut hub = Hub::new(config(subscribers));
    for _ in 0..subscribers {
        hub.subscribe(&[], None, Millis(0)).unwrap();
    }
    hub
}

/// Takes every queued frame, as a pump would; returns the bytes taken.
fn drain(hub: &mut Hub) -> usize {
    let mut bytes = 0;
    while let Some(id) = hub.poll_ready() {
        while let Some(frame) = hub.pop_frame(id) {
            bytes += frame.len();
        }
    }
    bytes
}

const DATA: &str = "{\"tick\":12345,\"at\":\"2026-01-01T00:00:00Z\"}";

fn fan_out(c: &mut Criterion) {
    let mut group = c.benchmark_group("hub");
    let topic = Topic::default();
    for subscribers in [1_000usize, 10_000] {
        let mut hub = hub_with(subscribers);
        let mut now = 0;
        group.throughput(Throughput::Elements(subscribers as u64));
        group.bench_function(BenchmarkId::new("publish_and_drain", subscribers), |b| {
            b.iter(|| {
                now += 1;
                hub.publish(&topic, Event::new(DATA), Millis(now));
                black_box(drain(&mut hub))
            });
        });
        // Every subscriber got every event: nothing was dropped on the way.
        assert_eq!(hub.stats().dropped, 0);
        assert_eq!(
            hub.stats().delivered,
            hub.stats().published * subscribers as u64
        );
    }
    group.finish();
}

fn own_topic(c: &mut Criterion) {
    // With the default history, the 10,000 topics' histories grow to their bounds (hundreds
    // of MiB) while 10 topics' stay in cache; without history, dispatch alone is measured.
    for (name, history) in [("own_topic", true), ("own_topic_no_history", false)] {
        own_topic_with(c, name, history);
    }
}

fn own_topic_with(c: &mut Criterion, name: &str, history: bool) {
    let mut group = c.benchmark_group(name);
    for subscribers in [10usize, 10_000] {
        let topics: Vec<Topic> = (0..subscribers)
            .map(|n| Topic::new(format!("https://example.com/users/{n}")).unwrap())
            .collect();
        let mut config = config(subscribers);
        if !history {
            config.history_events = 0;
        }
        let mut hub = Hub::new(config);
        for topic in &topics {
            hub.subscribe(std::slice::from_ref(topic), None, Millis(0))
                .unwrap();
        }
        let mut now = 0;
        let mut next = 0;
        group.bench_function(BenchmarkId::new("publish_one", subscribers), |b| {
            b.iter(|| {
                now += 1;
                // A stride coprime with N visits every subscriber in turn.
                next = (next + 7_919) % subscribers;
                hub.publish(&topics[next], Event::new(DATA), Millis(now));
                black_box(drain(&mut hub))
            });
        });
        assert_eq!(hub.stats().delivered, hub.stats().published);
    }
    group.finish();
}

const BOOK: &str = "https://example.com/books/1";
const BOOKS: &str = "https://example.com/books/{id}";

/// N subscribers with these selectors and rights; then one update to them all, drained.
fn fan_out_with(
    c: &mut Criterion,
    group: &str,
    selectors: &[Selector],
    rights: &Rights,
    private: bool,
) {
    let mut group = c.benchmark_group(group);
    let topic = Topic::new(BOOK).unwrap();
    for subscribers in [1_000usize, 10_000] {
        let mut hub = Hub::new(config(subscribers));
        for _ in 0..subscribers {
            hub.subscribe_with(selectors, rights, None, Millis(0))
                .unwrap();
        }
        let mut now = 0;
        group.throughput(Throughput::Elements(subscribers as u64));
        group.bench_function(BenchmarkId::new("publish_and_drain", subscribers), |b| {
            b.iter(|| {
                now += 1;
                let update = Update::new(topic.clone(), Event::new(DATA)).with_private(private);
                hub.publish_update(update, Millis(now));
                black_box(drain(&mut hub))
            });
        });
        assert_eq!(hub.stats().dropped, 0);
        assert_eq!(
            hub.stats().delivered,
            hub.stats().published * subscribers as u64
        );
    }
    group.finish();
}

fn template(c: &mut Criterion) {
    let books = [Selector::new(BOOKS, SelectorKind::Topic).unwrap()];
    fan_out_with(c, "template", &books, &Rights::None, false);
}

fn url_pattern(c: &mut Criterion) {
    let hub = BaseUrl::parse("https://example.com/.well-known/mercure").unwrap();
    let books = [Selector::url_pattern("/books/:id", &hub).unwrap()];
    fan_out_with(c, "url_pattern", &books, &Rights::None, false);
}

fn private(c: &mut Criterion) {
    let book = [Selector::exact(Topic::new(BOOK).unwrap())];
    let rights = Rights::Selectors(vec![Selector::new(BOOKS, SelectorKind::Topic).unwrap()]);
    fan_out_with(c, "private", &book, &rights, true);
}

fn own_private(c: &mut Criterion) {
    let mut group = c.benchmark_group("own_private");
    for subscribers in [10usize, 10_000] {
        let topics: Vec<Topic> = (0..subscribers)
            .map(|n| Topic::new(format!("https://example.com/users/{n}")).unwrap())
            .collect();
        let mut hub = Hub::new(config(subscribers));
        for topic in &topics {
            let own = Selector::new(topic.as_str(), SelectorKind::Topic).unwrap();
            let rights = Rights::Selectors(vec![own.clone()]);
            hub.subscribe_with(&[own], &rights, None, Millis(0))
                .unwrap();
        }
        let mut now = 0;
        let mut next = 0;
        group.bench_function(BenchmarkId::new("publish_one", subscribers), |b| {
            b.iter(|| {
                now += 1;
                next = (next + 7_919) % subscribers;
                let update = Update::new(topics[next].clone(), Event::new(DATA)).with_private(true);
                hub.publish_update(update, Millis(now));
                black_box(drain(&mut hub))
            });
        });
        assert_eq!(hub.stats().delivered, hub.stats().published);
    }
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    fan_out(&mut c);
    own_topic(&mut c);
    own_private(&mut c);
    template(&mut c);
    url_pattern(&mut c);
    private(&mut c);
    c.final_summary();
}
