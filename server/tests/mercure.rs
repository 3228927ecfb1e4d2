//! The Mercure hub (draft-07) end to end over real sockets: `GET /.well-known/mercure`
//! subscribes with topic selectors, `POST` publishes forms, JWTs (HS256 here) authorize both.
//! Written from the spec text (`spec/mercure.md` of dunglas/mercure v0.24.2).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{post, Reply, Server, Sse, WAIT};
use serde_json::{json, Value};

const KEY: &str = "test-secret-of-the-hub";
const HUB: &str = "/.well-known/mercure";

fn token(claims: Value) -> String {
    signed(claims, KEY)
}

fn signed(claims: Value, key: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(key.as_bytes()),
    )
    .unwrap()
}

/// `GET /.well-known/mercure?query`, whatever the answer.
fn open(port: u16, query: &str, headers: &[(&str, &str)]) -> Sse {
    Sse::open(port, &format!("{HUB}?{query}"), headers)
}

fn publisher() -> String {
    token(json!({"mercure": {"publish": ["*"]}}))
}

fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut out = String::new();
    for (k, v) in pairs {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(&format!("{}={}", enc(k), enc(v)));
    }
    out.into_bytes()
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn publish_as(port: u16, bearer: &str, pairs: &[(&str, &str)]) -> Reply {
    let auth = format!("Bearer {bearer}");
    post(
        port,
        HUB,
        "application/x-www-form-urlencoded; charset=utf-8",
        &form(pairs),
        &[("Authorization", &auth)],
    )
}

fn publish(port: u16, pairs: &[(&str, &str)]) -> String {
    let reply = publish_as(port, &publisher(), pairs);
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(reply
        .header("Content-Type")
        .unwrap()
        .starts_with("text/plain"));
    reply.text()
}

fn subscribe(port: u16, selectors: &[&str], headers: &[(&str, &str)]) -> Sse {
    let query: Vec<String> = selectors
        .iter()
        .map(|s| format!("topic={}", enc(s)))
        .collect();
    let sse = open(port, &query.join("&"), headers);
    assert_eq!(sse.status, 200);
    sse
}

fn hub() -> Server {
    Server::start(&["--jwt-key", KEY, "--anonymous"])
}

#[test]
fn selectors_alternates_ids_and_the_answer() {
    let server = hub();
    let mut exact = subscribe(server.port, &["https://example.com/books/1"], &[]);
    let mut template = subscribe(server.port, &["https://example.com/books/{id}"], &[]);
    let mut any = subscribe(server.port, &["*"], &[]);
    let mut alternate = subscribe(server.port, &["/reviews/9", "/authors/{a}"], &[]);
    let mut other = subscribe(server.port, &["https://example.com/books/2"], &[]);

    // The hub makes an urn:uuid id, answers it as text/plain, and sends it as the event's id.
    let id = publish(
        server.port,
        &[
            ("topic", "https://example.com/books/1"),
            ("topic", "/reviews/9"),
            ("topic", "/authors/ann"),
            ("data", "line one\r\nline two\nline three"),
            ("type", "edit"),
            ("ignored", "x"),
        ],
    );
    assert!(id.starts_with("urn:uuid:") && id.len() == 45, "{id}");
    for sse in [&mut exact, &mut template, &mut any, &mut alternate] {
        let e = sse.event();
        assert_eq!(e.data, "line one\nline two\nline three");
        assert_eq!(e.event_type, "edit");
        assert_eq!(e.last_event_id, id);
    }
    // A publisher's own id is honoured. The subscriber matching two alternates got the first
    // update once: the next event it reads is this one.
    let own = publish(
        server.port,
        &[
            ("topic", "/reviews/9"),
            ("id", "review-9-v2"),
            ("data", "b"),
        ],
    );
    assert_eq!(own, "review-9-v2");
    assert_eq!(alternate.event().last_event_id, "review-9-v2");
    assert_eq!(any.event().last_event_id, "review-9-v2");
    // Nothing reached the selector that matches no topic of either update.
    publish(
        server.port,
        &[("topic", "https://example.com/books/2"), ("data", "c")],
    );
    assert_eq!(other.event().data, "c");
}

#[test]
fn private_updates_need_a_matching_subscribe_claim() {
    let server = hub();
    let mut anonymous = subscribe(server.port, &["/users/{u}"], &[]);
    let alice = token(json!({"mercure": {"subscribe": ["/users/alice"]}}));
    let cookie = format!("mercureAuthorization={alice}");
    let mut by_cookie = subscribe(server.port, &["/users/{u}"], &[("Cookie", &cookie)]);
    let bearer = format!("Bearer {alice}");
    let mut by_header = subscribe(
        server.port,
        &["/users/alice"],
        &[("Authorization", &bearer)],
    );

    publish(
        server.port,
        &[
            ("topic", "/users/alice"),
            ("data", "secret"),
            ("private", "on"),
        ],
    );
    publish(
        server.port,
        &[
            ("topic", "/users/bob"),
            ("data", "bob's"),
            ("private", "on"),
        ],
    );
    publish(
        server.port,
        &[("topic", "/users/alice"), ("data", "public")],
    );
    assert_eq!(anonymous.event().data, "public");
    assert_eq!(by_cookie.event().data, "secret");
    assert_eq!(by_cookie.event().data, "public");
    assert_eq!(by_header.event().data, "secret");

    // Replay checks the rights again: an anonymous resume from the start sees only public.
    let mut late = open(server.port, "topic=*&lastEventID=earliest", &[]);
    assert_eq!(late.status, 200);
    assert_eq!(late.event().data, "public");
}

#[test]
fn resume_with_last_event_id_and_the_response_header() {
    let server = hub();
    let first = publish(server.port, &[("topic", "/a"), ("data", "1")]);
    publish(server.port, &[("topic", "/b"), ("data", "2")]);
    publish(server.port, &[("topic", "/a"), ("data", "3")]);

    // The header wins over the query; replay is in publication order across selectors.
    let mut sse = open(
        server.port,
        "topic=/a&topic=/b&lastEventID=nonsense",
        &[("Last-Event-ID", &first)],
    );
    assert_eq!(sse.status, 200);
    assert_eq!(sse.header("Last-Event-ID"), Some(first.as_str()));
    assert_eq!(sse.event().data, "2");
    assert_eq!(sse.event().data, "3");

    let mut all = open(server.port, "topic=/a&lastEventID=earliest", &[]);
    assert_eq!(all.header("Last-Event-ID"), Some("earliest"));
    assert_eq!(all.event().data, "1");
    assert_eq!(all.event().data, "3");

    // An unknown id is never silence: the stream says events may have been missed.
    let mut unknown = open(server.port, "topic=/a&lastEventID=gone", &[]);
    assert_eq!(unknown.status, 200);
    assert_eq!(unknown.event().event_type, "ssecast.missed");
}

#[test]
fn refusals() {
    let server = Server::start(&["--jwt-key", KEY]);
    let port = server.port;
    // Without --anonymous, subscribing needs a valid token.
    assert_eq!(open(port, "topic=*", &[]).status, 401);
    let wrong = signed(json!({"mercure": {"subscribe": ["*"]}}), "another key");
    let refused = open(port, &format!("topic=*&authorization={wrong}"), &[]);
    assert_eq!(refused.status, 401);
    let ok = token(json!({"mercure": {"subscribe": []}}));
    let sse = open(port, &format!("topic=*&authorization={ok}"), &[]);
    assert_eq!(sse.status, 200);
    // Cache-Control: no-cache and private (two fields, one list: RFC 9110 section 5.3).
    assert!(sse
        .headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("cache-control") && v.contains("private")));
    // No selector, too many selectors: 400.
    assert_eq!(open(port, &format!("authorization={ok}"), &[]).status, 400);
    let many: Vec<String> = (0..65).map(|i| format!("topic=/t/{i}")).collect();
    let query = format!("authorization={ok}&{}", many.join("&"));
    assert_eq!(open(port, &query, &[]).status, 400);

    // Publishing: no token 401, a wrong one 401, a topic outside the claim 403 (nothing sent).
    let body = form(&[("topic", "/x"), ("data", "d")]);
    let anon = post(port, HUB, "application/x-www-form-urlencoded", &body, &[]);
    assert_eq!(anon.status, 401);
    assert!(publish_as(port, &wrong, &[("topic", "/x"), ("data", "d")]).status == 401);
    let narrow = token(json!({"mercure": {"publish": ["/books/{id}"]}}));
    assert_eq!(
        publish_as(port, &narrow, &[("topic", "/books/1"), ("data", "d")]).status,
        200
    );
    let forbidden = publish_as(
        port,
        &narrow,
        &[("topic", "/books/1"), ("topic", "/x"), ("data", "d")],
    );
    assert_eq!(forbidden.status, 403, "{}", forbidden.text());
    // Bad fields: 400 with a reason; a body that is not a form: 415.
    for bad in [
        vec![("data", "no topic")],
        vec![("topic", "/x"), ("id", "#frag")],
        vec![("topic", "/x"), ("id", "a\nb")],
        vec![("topic", "/x"), ("retry", "soon")],
    ] {
        let reply = publish_as(port, &publisher(), &bad);
        assert_eq!(reply.status, 400, "{bad:?}");
        assert!(
            !reply.text().trim().is_empty() && !reply.text().trim_end().contains('\n'),
            "{bad:?}"
        );
    }
    let auth = format!("Bearer {}", publisher());
    let json = post(
        port,
        HUB,
        "application/json",
        b"{}",
        &[("Authorization", &auth)],
    );
    assert_eq!(json.status, 415);
    // Tokens never appear in an error.
    assert!(!publish_as(port, &wrong, &[("topic", "/x")])
        .text()
        .contains(&wrong));
}

#[test]
fn a_stream_ends_when_its_token_expires() {
    let server = Server::start(&["--jwt-key", KEY]);
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 2;
    let short = token(json!({"exp": exp, "mercure": {"subscribe": ["*"]}}));
    let mut sse = open(server.port, &format!("topic=*&authorization={short}"), &[]);
    assert_eq!(sse.status, 200);
    assert!(
        sse.wait_eof(WAIT + Duration::from_secs(3)),
        "the stream outlived its token"
    );
    assert!(server.metrics().contains("token_expired"));
}
