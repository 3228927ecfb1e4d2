#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Topic selectors: matches per second of a compiled URI template (draft-07) and URL pattern
//! (draft-08) against topics that match, that fail early and that fail late; what parsing a
//! topic as a URL costs; and compiling each kind (for sizing a cache of compiled selectors).
//!
//! `cargo bench --bench select`. Criterion reports "thrpt" in elements/s: matches (or
//! compilations) per second on one core.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput};
use ssecast::{BaseUrl, TopicUrl, UriTemplate, UrlPattern};

const HUB: &str = "https://example.com/.well-known/mercure";

/// A selector's name, its source, and topics to match it against, each with a name saying
/// whether it matches (`match...`) or not.
type Case = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

fn templates(c: &mut Criterion) {
    let mut group = c.benchmark_group("template");
    group.throughput(Throughput::Elements(1));
    let cases: &[Case] = &[
        (
            "id",
            "https://example.com/books/{id}",
            &[
                ("match", "https://example.com/books/123456"),
                ("miss_early", "https://example.com/authors/123456"),
                ("miss_late", "https://example.com/books/123456/reviews"),
            ],
        ),
        (
            "rest",
            "/users/{user}/{+rest}",
            &[
                ("match", "/users/alice/books/1/reviews?page=2"),
                ("miss_early", "/groups/alice/books/1"),
            ],
        ),
        (
            "query",
            "https://example.com/search{?q,lang,page,sort}",
            &[
                (
                    "match",
                    "https://example.com/search?q=rust&page=2&sort=date",
                ),
                (
                    "miss_late",
                    "https://example.com/search?q=rust&sort=date&page=2",
                ),
            ],
        ),
    ];
    for (name, template, topics) in cases {
        let compiled = UriTemplate::parse(template).unwrap();
        for (kind, topic) in *topics {
            assert_eq!(
                compiled.matches(topic),
                kind.starts_with("match"),
                "{template} {topic}"
            );
            group.bench_function(BenchmarkId::new(*name, kind), |b| {
                b.iter(|| compiled.matches(black_box(topic)))
            });
        }
        group.bench_function(BenchmarkId::new(*name, "compile"), |b| {
            b.iter(|| UriTemplate::parse(black_box(template)).unwrap())
        });
    }
    group.finish();
}

fn url_patterns(c: &mut Criterion) {
    let mut group = c.benchmark_group("urlpattern");
    group.throughput(Throughput::Elements(1));
    let hub = BaseUrl::parse(HUB).unwrap();
    let cases: &[Case] = &[
        (
            "id",
            "https://example.com/books/:id",
            &[
                ("match", "https://example.com/books/123456"),
                ("miss_early", "https://example.com/authors/123456"),
                ("miss_late", "https://example.com/books/123456/reviews"),
            ],
        ),
        (
            "optional",
            "/books/:id{/reviews}?",
            &[
                ("match", "https://example.com/books/123456/reviews"),
                ("miss_late", "https://example.com/books/123456/ratings"),
            ],
        ),
    ];
    for (name, pattern, topics) in cases {
        let compiled = UrlPattern::parse(pattern, &hub).unwrap();
        for (kind, topic) in *topics {
            let parsed = TopicUrl::parse(topic, &hub).unwrap();
            assert_eq!(
                compiled.matches_url(&parsed),
                kind.starts_with("match"),
                "{pattern} {topic}"
            );
            // The topic parsed once per update, then matched: the hub's loop.
            group.bench_function(BenchmarkId::new(*name, kind), |b| {
                b.iter(|| compiled.matches_url(black_box(&parsed)))
            });
        }
        let (_, topic) = topics[0];
        // Parsing included, as `matches(&str)` does.
        group.bench_function(BenchmarkId::new(*name, "match_with_parse"), |b| {
            b.iter(|| compiled.matches(black_box(topic)))
        });
        group.bench_function(BenchmarkId::new(*name, "compile"), |b| {
            b.iter(|| UrlPattern::parse(black_box(pattern), &hub).unwrap())
        });
    }
    group.bench_function("parse_topic", |b| {
        b.iter(|| TopicUrl::parse(black_box("https://example.com/books/123456"), &hub).unwrap())
    });
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    templates(&mut c);
    url_patterns(&mut c);
    c.final_summary();
}
