#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Fan-out cost: one event published to N subscribers, then every queue drained as a pump
//! would (`poll_ready`, then `pop_frame` until `None`).
//!
//! `cargo bench --bench hub`. Criterion reports the time per subscriber as the time per
//! element ("thrpt" in elements/s; divide 1e9 by it for ns per subscriber).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput};
use ssecast::{Event, Hub, HubConfig, Millis, Topic};

fn hub_with(subscribers: usize) -> Hub {
    let mut hub = Hub::new(HubConfig {
        max_subscribers: subscribers,
        keepalive: None,
        retry: None,
        ..HubConfig::default()
    });
    for _ in 0..subscribers {
        hub.subscribe(&[], None, Millis(0)).unwrap();
    }
    hub
}

fn fan_out(c: &mut Criterion) {
    let mut group = c.benchmark_group("hub");
    let topic = Topic::default();
    let data = "{\"tick\":12345,\"at\":\"2026-01-01T00:00:00Z\"}";
    for subscribers in [1_000usize, 10_000] {
        let mut hub = hub_with(subscribers);
        let mut now = 0;
        group.throughput(Throughput::Elements(subscribers as u64));
        group.bench_function(BenchmarkId::new("publish_and_drain", subscribers), |b| {
            b.iter(|| {
                now += 1;
                hub.publish(&topic, Event::new(data), Millis(now));
                let mut bytes = 0;
                while let Some(id) = hub.poll_ready() {
                    while let Some(frame) = hub.pop_frame(id) {
                        bytes += frame.len();
                    }
                }
                black_box(bytes)
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

fn main() {
    let mut c = Criterion::default().configure_from_args();
    fan_out(&mut c);
    c.final_summary();
}
