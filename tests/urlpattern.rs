//! URL Pattern matching as Mercure 1.0 (draft-08) does it: the spec's examples, relative
//! patterns and topics against the hub's URL, URL canonicalization, regexp groups (run, or
//! refused when the two engines would disagree), errors and limits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use ssecast::{BaseUrl, PatternError, TopicUrl, UrlPattern};

const HUB: &str = "https://example.com/.well-known/mercure";

fn hub() -> BaseUrl {
    BaseUrl::parse(HUB).unwrap()
}

#[track_caller]
fn check(pattern: &str, topic: &str, expected: bool) {
    let base = hub();
    let compiled = UrlPattern::parse(pattern, &base)
        .unwrap_or_else(|e| panic!("{pattern:?} does not parse: {e}"));
    assert_eq!(
        compiled.matches(topic),
        expected,
        "{pattern:?} against {topic:?}"
    );
    // The parsed-topic path says the same.
    let parsed = TopicUrl::parse(topic, &base);
    assert_eq!(
        parsed.is_some_and(|t| compiled.matches_url(&t)) || pattern == "*",
        expected,
        "{pattern:?} against the parsed {topic:?}"
    );
}

#[track_caller]
fn check_error(pattern: &str, expected: PatternError) {
    assert_eq!(
        UrlPattern::parse(pattern, &hub()).err(),
        Some(expected),
        "{pattern:?}"
    );
}

#[test]
fn spec_examples() {
    // "Subscription": `match_urlpattern=https://example.com/bar/:id`.
    check(
        "https://example.com/bar/:id",
        "https://example.com/bar/1",
        true,
    );
    check(
        "https://example.com/bar/:id",
        "https://example.com/bar/",
        false,
    );
    check(
        "https://example.com/bar/:id",
        "https://example.com/bar/1/2",
        false,
    );
    check(
        "https://example.com/bar/:id",
        "https://example.com/foo/1",
        false,
    );
    // "Authorization": routing with `https://example.com/books/:id`, rights on a namespace.
    check(
        "https://example.com/books/:id",
        "https://example.com/books/1",
        true,
    );
    check(
        "https://example.com/books/:id",
        "https://example.com/books/7",
        true,
    );
    check(
        "https://example.com/users/42/*",
        "https://example.com/users/42/books/1",
        true,
    );
    check(
        "https://example.com/users/42/*",
        "https://example.com/users/42/",
        true,
    );
    check(
        "https://example.com/users/42/*",
        "https://example.com/users/43/books/1",
        false,
    );
    check(
        "https://example.com/users/42/*",
        "https://example.com/users/42",
        false,
    );
    // "URL Pattern": a relative pattern for the hub's own subscription events.
    let events = "/.well-known/mercure/subscriptions/exact/:topic/:subscriber";
    check(
        events,
        "/.well-known/mercure/subscriptions/exact/https%3A%2F%2Fexample.com%2Fbooks%2F1/urn%3Auuid%3Abb3de268",
        true,
    );
    check(
        events,
        "https://example.com/.well-known/mercure/subscriptions/exact/a/b",
        true,
    );
    check(events, "/.well-known/mercure/subscriptions/exact/a", false);
    check(
        events,
        "/.well-known/mercure/subscriptions/urlpattern/a/b",
        false,
    );
    check(
        events,
        "https://other.example/.well-known/mercure/subscriptions/exact/a/b",
        false,
    );
    // "Subscriptions API": `https://example.com/:selector`.
    check(
        "https://example.com/:selector",
        "https://example.com/books",
        true,
    );
    check(
        "https://example.com/:selector",
        "https://example.com/books/1",
        false,
    );
    // The wildcard, whatever the topic.
    check("*", "https://example.com/books/1", true);
    check("*", "not a URL at all: \u{0}", true);
}

#[test]
fn the_briefs_examples() {
    check("/books/:id", "https://example.com/books/1", true);
    check("/books/:id", "/books/1", true);
    check(
        "https://example.com/books/:id{/reviews}?",
        "https://example.com/books/1",
        true,
    );
    check(
        "https://example.com/books/:id{/reviews}?",
        "https://example.com/books/1/reviews",
        true,
    );
    check(
        "https://example.com/books/:id{/reviews}?",
        "https://example.com/books/1/ratings",
        false,
    );
    check(
        "https://example.com/books/:id{/reviews}?",
        "https://example.com/books/1/",
        false,
    );
}

#[test]
fn relative_patterns_and_topics_resolve_against_the_hub() {
    // A relative pattern inherits the hub's protocol, host and port.
    check("/books/:id", "http://example.com/books/1", false);
    check("/books/:id", "https://example.com:8443/books/1", false);
    check("/books/:id", "https://other.example/books/1", false);
    // Leaving out search and hash lets them be anything (the standard's wildcard default).
    check("/books/:id", "https://example.com/books/1?page=2#top", true);
    check("/books/:id\\?", "https://example.com/books/1?page=2", false);
    check(
        "/books/:id\\?page=:n",
        "https://example.com/books/1?page=2",
        true,
    );
    // Relative references resolve like links on the hub's URL.
    check("/.well-known/books/:id", "books/1", true);
    check("/books/:id", "../books/1", true);
    check("/books/:id", "//example.com/books/1", true);
    // A pathname pattern without a leading `/` is relative to the hub's directory too.
    check("books/:id", "https://example.com/.well-known/books/1", true);
    // Absolute patterns are compiled alone: opaque paths work.
    check(
        "urn\\:uuid\\:*",
        "urn:uuid:bb3de268-05b0-4c65-b44e-8f9acefc29d6",
        true,
    );
    check("urn\\:uuid\\:*", "urn:isbn:0451450523", false);
    check("mailto\\:*@example.com", "mailto:alice@example.com", true);
    // A different hub URL, a different meaning.
    let other = BaseUrl::parse("https://hub.example:8443/").unwrap();
    let pattern = UrlPattern::parse("/books/:id", &other).unwrap();
    assert!(pattern.matches("https://hub.example:8443/books/1"));
    assert!(!pattern.matches("https://example.com/books/1"));
    assert!(pattern.matches("/books/1"));
    assert_ne!(pattern, UrlPattern::parse("/books/:id", &hub()).unwrap());
}

#[test]
fn topics_are_canonicalized_by_the_url_parser() {
    let books = "https://example.com/books/:id";
    check(books, "https://EXAMPLE.com/books/1", true); // hosts are case-insensitive
    check(books, "HTTPS://example.com/books/1", true);
    check(books, "https://example.com:443/books/1", true); // the default port
    check(books, "https://example.com/books/../books/1", true); // dot segments
    check(books, "https://example.com/Books/1", false); // paths are case-sensitive
    check(books, "https://example.com/books/%31", true); // `%31` is one segment, not `1`
    check(
        "https://example.com/books/1",
        "https://example.com/books/%31",
        false,
    );
    check(books, "https://user:pw@example.com/books/1", true); // user info left out: any
    check(
        "https://example.com/café/:id",
        "https://example.com/caf%C3%A9/1",
        true,
    );
    check(
        "https://example.com/café/:id",
        "https://example.com/café/1",
        true,
    );
    check(
        "https://bücher.example/:id",
        "https://xn--bcher-kva.example/1",
        true,
    );
    check(books, "https://example.com/books/a b", true); // the space is encoded first
                                                         // Not URLs, even against the hub's URL: they match nothing.
    check(books, "https://exa mple.com/books/1", false);
    check(books, "https://example.com:99999/books/1", false);
    check(books, "http://[::1/books/1", false);
}

#[test]
fn pattern_syntax() {
    check(
        "https://example.com/books/:id(\\d+)",
        "https://example.com/books/12",
        true,
    );
    check(
        "https://example.com/books/:id(\\d+)",
        "https://example.com/books/1a",
        false,
    );
    check(
        "https://example.com/books/:id([a-z]{2,3})",
        "https://example.com/books/abc",
        true,
    );
    check(
        "https://example.com/books/:id([a-z]{2,3})",
        "https://example.com/books/abcd",
        false,
    );
    check(
        "https://example.com/books/(a|b)",
        "https://example.com/books/b",
        true,
    );
    check(
        "https://example.com/books/(a|b)",
        "https://example.com/books/c",
        false,
    );
    check(
        "https://example.com/books/:id?",
        "https://example.com/books",
        true,
    );
    check(
        "https://example.com/books/:id+",
        "https://example.com/books/1/2/3",
        true,
    );
    check(
        "https://example.com/books/:id*",
        "https://example.com/books",
        true,
    );
    check(
        "https://example.com/books/*.json",
        "https://example.com/books/a/b.json",
        true,
    );
    check(
        "https://example.com/books/*.json",
        "https://example.com/books/a/b.xml",
        false,
    );
    check(
        "https://*.example.com/*",
        "https://api.example.com/books/1",
        true,
    );
    check(
        "https://*.example.com/*",
        "https://example.com/books/1",
        false,
    );
    check(
        "https://example.com/books{/:id}?",
        "https://example.com/books",
        true,
    );
    check(
        "https://example.com/books{/:id}?",
        "https://example.com/books/1",
        true,
    );
    check(
        "https://example.com/books{/:id}?",
        "https://example.com/books/",
        false,
    );
    check("http{s}?://example.com/*", "http://example.com/x", true);
    check("http{s}?://example.com/*", "ftp://example.com/x", false);
    check(
        "https://example.com/books/:id#:part",
        "https://example.com/books/1#intro",
        true,
    );
    check(
        "https://example.com/books/:id#:part",
        "https://example.com/books/1",
        false,
    );
    // No `ignoreCase`, ever.
    check(
        "https://example.com/Books/:id",
        "https://example.com/books/1",
        false,
    );
}

#[test]
fn regexp_groups_that_would_read_differently_are_refused() {
    for pattern in [
        "/x/(?i:a)",    // a group may not start with `?`
        "/x/((?i)a)",   // inline flags, here only
        "/x/(\\a)",     // `\a` is BEL here, an error in ECMAScript's Unicode mode
        "/x/(\\z)",     // an anchor here only
        "/x/(\\x{41})", // a brace hex escape here only
        "/x/(a{,2})",   // `{,n}` here only
        "/x/([[a])",    // nested class here, a literal `[` there
        "/x/([a&&b])",  // class intersection here only
        "/x/([a--b])",  // class difference
        "/x/([a~~b])",  // symmetric difference
        "/x/([^])",     // any character in ECMAScript
        "/x/(\\b{start})",
        "/x/(a])", // a lone `]`: an error in ECMAScript's Unicode mode
        "/x/(a})",
        "/x/(?=a)",    // a group may not start with `?`: a syntax error
        "/x/(a(?=b))", // look-ahead: ECMAScript only, not linear
        "/x/(a(?!b))",
        "/x/(a(?<=b))",
        "/x/(a\\1)", // a back-reference
        "/x/((?P<n>a))",
    ] {
        let error = UrlPattern::parse(pattern, &hub()).unwrap_err();
        assert!(
            matches!(error, PatternError::Regexp | PatternError::Syntax { .. }),
            "{pattern:?}: {error:?}"
        );
    }
    // What reads the same in both is run.
    for pattern in [
        "/x/(\\d+)",
        "/x/([\\w-]+)",
        "/x/(\\s*)",
        "/x/(a|b|c)",
        "/x/((?:ab)+)",
        "/x/([a-z0-9]{1,8}?)",
        "/x/(\\u0041)",
        "/x/(\\x41)",
        "/x/([\\-.])",
        "/x/(\\bword\\b)",
        "/x/(\\p{L}+)",
    ] {
        assert!(UrlPattern::parse(pattern, &hub()).is_ok(), "{pattern:?}");
    }
}

#[test]
fn errors() {
    check_error(
        "/books/{:id",
        PatternError::Syntax {
            reason: "a '{', '}', '(' or ')' out of place",
        },
    );
    check_error(
        "/books/:a/:a",
        PatternError::Syntax {
            reason: "a group name used twice",
        },
    );
    check_error(
        "/books/(",
        PatternError::Syntax {
            reason: "a malformed regexp group",
        },
    );
    check_error(
        "/books\\",
        PatternError::Syntax {
            reason: "a '\\' at the end",
        },
    );
    check_error("https://exa mple.com/x", PatternError::Url);
    check_error("https://example.com:99999/x", PatternError::Url);
    check_error("/x/(a(?=b))", PatternError::Regexp);
    let long = format!("/{}", "a".repeat(UrlPattern::MAX_LEN));
    check_error(
        &long,
        PatternError::TooLong {
            max: UrlPattern::MAX_LEN,
        },
    );
    assert!(UrlPattern::parse(&long[..UrlPattern::MAX_LEN], &hub()).is_ok());
    // A regexp group past the compiled size limit.
    check_error("/x/((?:\\p{L}{0,100}){0,100})", PatternError::Regexp);
    for base in [
        "",
        "/.well-known/mercure",
        "mailto:hub@example.com",
        "not a url",
    ] {
        assert_eq!(
            BaseUrl::parse(base).err(),
            Some(PatternError::BaseUrl),
            "{base:?}"
        );
    }
    for error in [
        PatternError::TooLong { max: 1 },
        PatternError::Syntax { reason: "x" },
        PatternError::Url,
        PatternError::Regexp,
        PatternError::BaseUrl,
    ] {
        let message = error.to_string();
        assert!(
            !message.is_empty() && !message.contains('\n'),
            "{message:?}"
        );
    }
}

#[test]
fn identity() {
    let a = UrlPattern::parse("/books/:id", &hub()).unwrap();
    assert_eq!(a.clone(), a);
    assert_eq!(a.as_str(), "/books/:id");
    assert_eq!(a.to_string(), "/books/:id");
    assert_eq!(a.base().as_str(), HUB);
    assert_eq!(format!("{a:?}"), "UrlPattern(\"/books/:id\")");
    assert_ne!(a, UrlPattern::parse("/books/:ref", &hub()).unwrap());
    assert_eq!(
        TopicUrl::parse("/a", &hub()).unwrap().as_str(),
        "https://example.com/a"
    );
}

/// A `]` before any `[` in a hostname once panicked inside the `urlpattern` crate (its bracket
/// depth went below zero: see the workspace's `Cargo.toml`); found by `anything_is_safe`.
#[test]
fn a_closing_bracket_before_an_opening_one_is_safe() {
    for pattern in [":$://]", "https://]:8080/a", "//]]]/x", "https://[::1]]/a"] {
        if let Ok(compiled) = UrlPattern::parse(pattern, &hub()) {
            let _ = compiled.matches("https://example.com/a");
            let _ = compiled.matches("");
        }
    }
}

proptest! {
    /// Patterns and topics from the hub's input never panic the process.
    #[test]
    fn anything_is_safe(
        pattern in "\\PC{0,30}|[/:a-z(){}*+?\\\\.#|\\[\\]^$-]{0,20}",
        topic in "\\PC{0,30}|[/:a-z?#%.]{0,20}",
    ) {
        if let Ok(compiled) = UrlPattern::parse(&pattern, &hub()) {
            let _ = compiled.matches(&topic);
        }
    }

    /// A literal path matches exactly its own URL (canonicalization aside).
    #[test]
    fn literal_paths_match_themselves(segments in prop::collection::vec("[a-z0-9_~-]{1,8}", 1..5)) {
        let path = format!("/{}", segments.join("/"));
        check(&path, &format!("https://example.com{path}"), true);
        check(&path, &format!("https://example.com{path}/x"), false);
        check(&format!("https://example.com{path}"), &path, true);
    }
}
