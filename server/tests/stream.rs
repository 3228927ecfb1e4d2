//! `GET /events` end to end over loopback TCP: headers, ticks, publish fan-out, topics,
//! Last-Event-ID replay, keep-alives.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Server, Sse, WAIT};
use ssecast::MISSED_EVENT_TYPE;

#[test]
fn stream_headers_and_first_bytes_arrive_at_once() {
    let server = Server::start(&["--retry", "1500ms"]);
    let mut sse = Sse::open(server.port, "/events", &[]);
    assert_eq!(sse.status, 200);
    assert_eq!(sse.header("Content-Type"), Some("text/event-stream"));
    assert_eq!(sse.header("Cache-Control"), Some("no-cache"));
    assert_eq!(sse.header("X-Accel-Buffering"), Some("no"));
    assert_eq!(sse.header("Transfer-Encoding"), Some("chunked"));
    assert_eq!(sse.header("Content-Encoding"), None);
    // Nothing is published (no ticker): a comment still comes at once.
    assert!(
        sse.try_comment(WAIT).is_some(),
        "a comment before any event"
    );
    // The retry hint comes in the same block as the first event (clients that drop a block
    // without data would lose it alone).
    assert_eq!(sse.decoder.retry(), None);
    assert!(server.wait_metric("ssecast_subscribers", 1, WAIT));
    let id = server.publish("first");
    assert_eq!(sse.event().data, "first");
    assert_eq!(sse.decoder.retry(), Some(ssecast::Millis(1500)));
    let block = format!("retry: 1500\nid: {id}\ndata: first\n\n");
    let body = String::from_utf8_lossy(&sse.body);
    assert!(body.contains(&block), "{body:?}");
}

#[test]
fn ticks_arrive_with_ids() {
    let server = Server::start(&["--tick", "100ms"]);
    let mut sse = Sse::open(server.port, "/events", &[]);
    let events = sse.events(3);
    let first: u64 = events[0]
        .data
        .strip_prefix("tick ")
        .unwrap()
        .parse()
        .unwrap();
    for (k, e) in events.iter().enumerate() {
        assert_eq!(e.event_type, "message");
        assert_eq!(e.data, format!("tick {}", first + k as u64));
        assert!(!e.last_event_id.is_empty(), "every event carries an id");
    }
    assert_ne!(events[0].last_event_id, events[1].last_event_id);
}

#[test]
fn a_publish_reaches_every_subscriber_in_order_with_ids() {
    let server = Server::start(&[]);
    let mut subs: Vec<Sse> = (0..3)
        .map(|_| Sse::open(server.port, "/events", &[]))
        .collect();
    assert!(server.wait_metric("ssecast_subscribers", 3, WAIT));
    let mut sent = Vec::new();
    for i in 0..20 {
        let (data, id) = match i % 3 {
            // Text body with an event type from the query.
            0 => {
                let data = format!("plain {i}");
                let reply = common::post(
                    server.port,
                    "/publish?event=note",
                    "text/plain",
                    data.as_bytes(),
                    &[],
                );
                assert_eq!(reply.status, 200, "{}", reply.text());
                let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
                (data, v["id"].as_str().unwrap().to_owned())
            }
            // Multi-line data, CRLF included: subscribers get it with LF.
            1 => {
                let id = server.publish(&format!("line one {i}\r\nline two\n\nline four"));
                (format!("line one {i}\nline two\n\nline four"), id)
            }
            _ => {
                let data = format!("json {i} \"quoted\" ünïcödé");
                (data.clone(), server.publish(&data))
            }
        };
        sent.push((data, id, if i % 3 == 0 { "note" } else { "message" }));
    }
    for sub in &mut subs {
        let got = sub.events(sent.len());
        for ((data, id, ty), e) in sent.iter().zip(&got) {
            assert_eq!(&e.data, data);
            assert_eq!(&e.last_event_id, id);
            assert_eq!(e.event_type, *ty);
        }
    }
}

#[test]
fn json_publish_sets_type_id_retry_and_topic() {
    let server = Server::start(&[]);
    let mut sse = Sse::open(server.port, "/events?topic=jobs", &[]);
    assert!(server.wait_metric("ssecast_subscribers", 1, WAIT));
    let id = server.publish_json(&serde_json::json!({
        "data": "done", "event": "job", "id": "job-7", "topic": "jobs", "retry": 4321
    }));
    assert_eq!(id, "job-7");
    let e = sse.event();
    assert_eq!(
        (
            e.event_type.as_str(),
            e.data.as_str(),
            e.last_event_id.as_str()
        ),
        ("job", "done", "job-7")
    );
    assert_eq!(sse.decoder.retry(), Some(ssecast::Millis(4321)));
}

#[test]
fn topics_are_isolated() {
    let server = Server::start(&[]);
    let mut a = Sse::open(server.port, "/events?topic=a", &[]);
    let mut b = Sse::open(server.port, "/events?topic=b", &[]);
    let mut ab = Sse::open(server.port, "/events?topic=a&topic=b", &[]);
    let mut default = Sse::open(server.port, "/events", &[]);
    assert!(server.wait_metric("ssecast_subscribers", 4, WAIT));
    for (topic, data) in [
        ("a", "to a"),
        ("b", "to b"),
        ("default", "to default"),
        ("a", "to a again"),
    ] {
        server.publish_json(&serde_json::json!({ "data": data, "topic": topic }));
    }
    // A text publish with ?topic= goes to that topic.
    let reply = common::post(
        server.port,
        "/publish?topic=b",
        "text/plain",
        b"to b again",
        &[],
    );
    assert_eq!(reply.status, 200);
    let data = |sse: &mut Sse, n: usize| {
        sse.events(n)
            .into_iter()
            .map(|e| e.data)
            .collect::<Vec<_>>()
    };
    assert_eq!(data(&mut a, 2), ["to a", "to a again"]);
    assert_eq!(data(&mut b, 2), ["to b", "to b again"]);
    assert_eq!(
        data(&mut ab, 4),
        ["to a", "to b", "to a again", "to b again"]
    );
    assert_eq!(data(&mut default, 1), ["to default"]);
    // Nothing else arrives: one more event on each topic is the next thing each one sees.
    server.publish_json(&serde_json::json!({ "data": "end", "topic": "a" }));
    server.publish_json(&serde_json::json!({ "data": "end", "topic": "b" }));
    server.publish("end");
    assert_eq!(data(&mut a, 1), ["end"]);
    assert_eq!(data(&mut b, 1), ["end"]);
    assert_eq!(data(&mut default, 1), ["end"]);
}

/// Subscribes, publishes 5 events and reads 2, leaves, publishes 3 more, then resumes from
/// the second (by header or query): it must get events 3 to 8, then live ones, once each.
fn resume(use_header: bool) {
    let server = Server::start(&[]);
    let mut first = Sse::open(server.port, "/events", &[]);
    assert!(server.wait_metric("ssecast_subscribers", 1, WAIT));
    let ids: Vec<String> = (1..=5).map(|i| server.publish(&format!("e{i}"))).collect();
    let seen = first.events(2);
    assert_eq!(seen[1].last_event_id, ids[1]);
    first.close();
    assert!(server.wait_metric("ssecast_subscribers", 0, WAIT));
    let later: Vec<String> = (6..=8).map(|i| server.publish(&format!("e{i}"))).collect();
    let last = seen[1].last_event_id.clone();
    let mut again = if use_header {
        Sse::open(server.port, "/events", &[("Last-Event-ID", &last)])
    } else {
        Sse::open(server.port, &format!("/events?last_event_id={last}"), &[])
    };
    let replayed = again.events(6);
    let expected: Vec<String> = (3..=8).map(|i| format!("e{i}")).collect();
    assert_eq!(
        replayed.iter().map(|e| e.data.clone()).collect::<Vec<_>>(),
        expected
    );
    let expected_ids: Vec<&String> = ids[2..].iter().chain(&later).collect();
    assert_eq!(
        replayed
            .iter()
            .map(|e| &e.last_event_id)
            .collect::<Vec<_>>(),
        expected_ids
    );
    server.publish("live");
    let live = again.event();
    assert_eq!(live.data, "live", "no duplicate after the replay");
    assert_eq!(server.metric("ssecast_replayed_total"), 6);
}

#[test]
fn resume_with_last_event_id_header_loses_and_duplicates_nothing() {
    resume(true);
}

#[test]
fn resume_with_last_event_id_query_loses_and_duplicates_nothing() {
    resume(false);
}

#[test]
fn resume_older_than_the_history_says_events_were_missed() {
    let server = Server::start(&["--history", "2"]);
    let ids: Vec<String> = (1..=5).map(|i| server.publish(&format!("e{i}"))).collect();
    let mut sse = Sse::open(server.port, "/events", &[("Last-Event-ID", &ids[0])]);
    let marker = sse.event();
    assert_eq!(marker.event_type, MISSED_EVENT_TYPE);
    assert_eq!(marker.data, ids[0]);
    let kept: Vec<String> = sse.events(2).into_iter().map(|e| e.data).collect();
    assert_eq!(kept, ["e4", "e5"]);
}

#[test]
fn keepalive_comment_arrives_when_idle() {
    let server = Server::start(&["--keepalive", "300ms"]);
    let mut sse = Sse::open(server.port, "/events", &[]);
    let mut comments = Vec::new();
    assert!(
        common::wait_until(WAIT, || {
            if let Some(c) = sse.try_comment(Duration::from_millis(100)) {
                comments.push(c);
            }
            comments.iter().any(|c| c.trim() == "ping")
        }),
        "a ping comment while idle; got {comments:?}"
    );
    assert!(server.metric("ssecast_keepalives_total") >= 1);
}
