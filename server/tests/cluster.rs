//! Cluster mode end to end: a real `redis-server` on a free loopback port and several real
//! `ssecast serve --redis ...` nodes, over real sockets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{post, wait_until, Server, Sse, WAIT};

/// A `redis-server` of this test's own, without persistence; killed on drop.
struct Redis {
    child: Option<Child>,
    port: u16,
}

impl Redis {
    fn start() -> Redis {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Redis { child: None, port };
        redis.restart();
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts it (again) on the same port and waits until it answers PING.
    fn restart(&mut self) {
        let port = self.port.to_string();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start redis-server ({e}): these tests need Redis; \
                     scripts/test.sh installs it (apt-get install redis-server)"
                )
            });
        self.child = Some(child);
        let ready = wait_until(WAIT, || ping(self.port));
        assert!(ready, "redis-server did not answer PING on port {port}");
    }

    /// Kills it (SIGKILL) and waits for the exit.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(s.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
}

fn node(redis: &Redis, extra: &[&str]) -> Server {
    let url = redis.url();
    let mut args = vec!["--redis", url.as_str()];
    args.extend_from_slice(extra);
    let server = Server::start(&args);
    assert!(
        server.wait_metric("ssecast_redis_up", 1, WAIT),
        "node never connected to Redis"
    );
    server
}

/// Publishes `data` to `topic` on `server`; returns the id it answered.
fn publish(server: &Server, topic: &str, data: &str) -> String {
    server.publish_json(&serde_json::json!({ "data": data, "topic": topic }))
}

fn subscribe(server: &Server, topic: &str, last: Option<&str>) -> Sse {
    let target = format!("/events?topic={topic}");
    let headers: Vec<(&str, &str)> = last.map(|id| ("Last-Event-ID", id)).into_iter().collect();
    let sse = Sse::open(server.port, &target, &headers);
    assert_eq!(
        sse.status,
        200,
        "subscribe: {:?}",
        String::from_utf8_lossy(&sse.body)
    );
    sse
}

/// The (id, data) of the next `n` events.
fn take(sse: &mut Sse, n: usize) -> Vec<(String, String)> {
    sse.events(n)
        .into_iter()
        .map(|e| (e.last_event_id, e.data))
        .collect()
}

#[test]
fn a_publish_on_one_node_reaches_every_node_with_the_same_ids_in_order() {
    let redis = Redis::start();
    let nodes: Vec<Server> = (0..3).map(|_| node(&redis, &[])).collect();
    let mut subs: Vec<Sse> = nodes.iter().map(|n| subscribe(n, "news", None)).collect();
    // Publishes go to every node in turn; the stream orders them once for all.
    let mut published = Vec::new();
    for i in 0..30 {
        let data = format!("event {i}\nline two");
        let id = publish(&nodes[i % 3], "news", &data);
        published.push((id, data));
    }
    for (k, sub) in subs.iter_mut().enumerate() {
        assert_eq!(take(sub, 30), published, "node {k}");
    }
    // Ids are Redis stream ids, increasing.
    let ids: Vec<&str> = published.iter().map(|(id, _)| id.as_str()).collect();
    assert!(ids.iter().all(|id| id.contains('-')), "{ids:?}");
    // Another topic's events do not leak into "news".
    publish(&nodes[0], "other", "elsewhere");
    let last = publish(&nodes[1], "news", "after");
    for sub in &mut subs {
        assert_eq!(take(sub, 1), [(last.clone(), "after".to_owned())]);
    }
    // A publisher's id of the stream-id form could name another event: refused.
    let reply = post(
        nodes[0].port,
        "/publish",
        "application/json",
        br#"{"data":"x","id":"1-0","topic":"news"}"#,
        &[],
    );
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert!(reply.text().contains("stream id"), "{}", reply.text());
    assert_eq!(nodes[2].metric("ssecast_redis_bad_entries_total"), 0);
}

/// A publisher that retries (its first answer timed out, or it cannot tell) sends the same
/// `id` again, to any node: acknowledged each time, appended and delivered once.
#[test]
fn a_publish_retried_with_its_id_on_another_node_is_delivered_once() {
    let redis = Redis::start();
    let nodes: Vec<Server> = (0..3).map(|_| node(&redis, &[])).collect();
    let mut sub = subscribe(&nodes[2], "orders", None);
    let order = |n: &Server, data: &str| {
        let body = serde_json::json!({ "data": data, "topic": "orders", "id": "order-42" });
        let reply = post(
            n.port,
            "/publish",
            "application/json",
            body.to_string().as_bytes(),
            &[],
        );
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.text()
    };
    let first = order(&nodes[0], "placed");
    assert!(first.contains("order-42"), "{first}");
    // The same id again, on two other nodes, even with other data: the first event stands.
    assert_eq!(order(&nodes[1], "placed (retry)"), first);
    assert_eq!(order(&nodes[2], "placed (retry)"), first);
    let after = publish(&nodes[1], "orders", "shipped");
    assert_eq!(
        take(&mut sub, 2),
        [
            ("order-42".to_owned(), "placed".to_owned()),
            (after.clone(), "shipped".to_owned())
        ]
    );
    assert_eq!(nodes[0].metric("ssecast_redis_appended_total"), 1);
    assert_eq!(nodes[1].metric("ssecast_redis_duplicates_total"), 1);
    assert_eq!(nodes[2].metric("ssecast_redis_duplicates_total"), 1);
    assert_eq!(nodes[1].metric("ssecast_redis_appended_total"), 1);
    // The publisher's id is a position on every node: resuming after it on a node that
    // never followed the topic (seeded from the stream) gives exactly what came after.
    let mut resumed = subscribe(&nodes[0], "orders", Some("order-42"));
    assert_eq!(take(&mut resumed, 1), [(after, "shipped".to_owned())]);
    // A batch with the same id adds nothing either.
    let reply = post(
        nodes[0].port,
        "/publish",
        "application/x-ndjson",
        b"{\"data\":\"again\",\"topic\":\"orders\",\"id\":\"order-42\"}\n",
        &[],
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(nodes[0].metric("ssecast_redis_duplicates_total"), 1);
    for n in &nodes {
        assert_eq!(n.metric("ssecast_redis_bad_entries_total"), 0);
    }
}

#[test]
fn a_client_of_a_killed_node_resumes_on_another_node_without_loss_or_duplicate() {
    let redis = Redis::start();
    let a = node(&redis, &[]);
    let mut b = node(&redis, &[]);
    let c = node(&redis, &[]);
    // Node A has no subscriber of "feed" before the client comes back to it: its history is
    // seeded from the stream then. Node C follows "feed" all along.
    let mut on_b = subscribe(&b, "feed", None);
    let mut on_c = subscribe(&c, "feed", None);

    let publisher = {
        let port = c.port;
        std::thread::spawn(move || {
            let mut ids = Vec::new();
            for i in 0..120 {
                let body = serde_json::json!({ "data": format!("e{i}"), "topic": "feed" });
                let reply = post(
                    port,
                    "/publish",
                    "application/json",
                    body.to_string().as_bytes(),
                    &[],
                );
                assert_eq!(reply.status, 200, "{}", reply.text());
                let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
                ids.push(v["id"].as_str().unwrap().to_owned());
                std::thread::sleep(Duration::from_millis(5));
            }
            ids
        })
    };

    let mut seen = take(&mut on_b, 40);
    b.child.kill().unwrap();
    b.child.wait().unwrap();
    let last = seen.last().unwrap().0.clone();
    let mut resumed = subscribe(&a, "feed", Some(&last));
    let ids = publisher.join().unwrap();
    let rest = take(&mut resumed, ids.len() - seen.len());
    seen.extend(rest);
    let expected: Vec<(String, String)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.clone(), format!("e{i}")))
        .collect();
    assert_eq!(seen, expected);
    // Nothing more: no duplicate, and no "missed" marker either.
    assert!(resumed.try_event(Duration::from_millis(300)).is_none());

    // A second resume, on the node that followed the topic all along, from the middle.
    let middle = &expected[59].0;
    let mut again = subscribe(&c, "feed", Some(middle));
    assert_eq!(take(&mut again, 60), expected[60..].to_vec());
    assert!(again.try_event(Duration::from_millis(300)).is_none());
    assert_eq!(take(&mut on_c, 120), expected);
}

#[test]
fn without_redis_publishes_get_503_streams_stay_up_and_delivery_resumes_when_it_returns() {
    let mut redis = Redis::start();
    let a = node(&redis, &["--keepalive", "300ms"]);
    let b = node(&redis, &["--keepalive", "300ms"]);
    let mut sub = subscribe(&b, "t", None);
    let first = publish(&a, "t", "before");
    assert_eq!(take(&mut sub, 1), [(first.clone(), "before".to_owned())]);

    redis.stop();
    assert!(
        b.wait_metric("ssecast_redis_up", 0, WAIT),
        "link state not shown"
    );
    let body = br#"{"data":"during","topic":"t"}"#;
    let reply = post(a.port, "/publish", "application/json", body, &[]);
    assert_eq!(reply.status, 503, "{}", reply.text());
    assert!(reply.text().contains("redis"), "{}", reply.text());
    assert!(a.metric("ssecast_redis_publish_failures_total") >= 1);
    // The stream stays open: keep-alives keep coming.
    let deadline = Instant::now() + WAIT;
    let mut pings = 0;
    while Instant::now() < deadline && pings < 2 {
        if sub
            .try_comment(Duration::from_millis(500))
            .is_some_and(|c| c.trim() == "ping")
        {
            pings += 1;
        }
    }
    assert_eq!(pings, 2, "keep-alives while Redis is down");
    assert!(!sub.eof);

    redis.restart();
    assert!(
        b.wait_metric("ssecast_redis_up", 1, WAIT),
        "node did not reconnect"
    );
    let after = wait_for_publish(&a, "t", "after");
    let got = take(&mut sub, 1);
    assert_eq!(got, [(after, "after".to_owned())]);
    assert!(b.metric("ssecast_redis_connects_total") >= 2);
}

/// Publishes once Redis takes it (the node may need one refused attempt to reconnect).
fn wait_for_publish(server: &Server, topic: &str, data: &str) -> String {
    let body = serde_json::json!({ "data": data, "topic": topic }).to_string();
    let deadline = Instant::now() + WAIT;
    loop {
        let reply = post(
            server.port,
            "/publish",
            "application/json",
            body.as_bytes(),
            &[],
        );
        if reply.status == 200 {
            let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
            return v["id"].as_str().unwrap().to_owned();
        }
        assert_eq!(reply.status, 503, "{}", reply.text());
        assert!(
            Instant::now() < deadline,
            "publishes kept failing: {}",
            reply.text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sends one command to Redis in RESP and returns the raw reply.
fn redis_command(port: u16, args: &[&str]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn a_node_whose_link_broke_reads_on_from_its_last_id_without_loss() {
    let redis = Redis::start();
    let a = node(&redis, &[]);
    let b = node(&redis, &[]);
    let mut sub = subscribe(&b, "t", None);
    let mut expected = vec![(publish(&a, "t", "e0"), "e0".to_owned())];
    assert_eq!(take(&mut sub, 1), expected);
    let connects = b.metric("ssecast_redis_connects_total");
    // Every node's connections drop at once; Redis itself stays up.
    let killed = redis_command(
        redis.port,
        &["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"],
    );
    assert!(killed.starts_with(':'), "{killed}");
    for i in 1..=20 {
        let data = format!("e{i}");
        expected.push((wait_for_publish(&a, "t", &data), data));
    }
    assert_eq!(take(&mut sub, 20), expected[1..]);
    assert!(sub.try_event(Duration::from_millis(300)).is_none());
    assert!(b.metric("ssecast_redis_connects_total") > connects);
}

#[test]
fn a_new_topic_cannot_be_followed_while_redis_is_down() {
    let mut redis = Redis::start();
    let a = node(&redis, &[]);
    let _followed = subscribe(&a, "known", None);
    redis.stop();
    assert!(a.wait_metric("ssecast_redis_up", 0, WAIT));
    let refused = Sse::open(a.port, "/events?topic=unknown", &[]);
    assert_eq!(refused.status, 503);
    assert!(refused.header("Retry-After").is_some());
    // A topic the node follows already needs nothing from Redis to subscribe.
    let known = Sse::open(a.port, "/events?topic=known", &[]);
    assert_eq!(known.status, 200);
}

#[test]
fn a_resume_over_two_topics_on_a_node_that_followed_neither_keeps_the_stream_order() {
    let redis = Redis::start();
    let a = node(&redis, &[]);
    let b = node(&redis, &[]);
    let mut both = Sse::open(b.port, "/events?topic=x&topic=y", &[]);
    assert_eq!(both.status, 200);
    let mut expected = Vec::new();
    for i in 0..20 {
        let topic = if i % 3 == 0 { "x" } else { "y" };
        let data = format!("{topic}{i}");
        expected.push((publish(&b, topic, &data), data));
    }
    assert_eq!(take(&mut both, 20), expected);
    // Node A seeds both topics' history from their streams when the client comes back.
    let last = &expected[6].0;
    let mut resumed = Sse::open(
        a.port,
        "/events?topic=x&topic=y",
        &[("Last-Event-ID", last.as_str())],
    );
    assert_eq!(resumed.status, 200);
    assert_eq!(take(&mut resumed, 13), expected[7..]);
    assert!(resumed.try_event(Duration::from_millis(300)).is_none());
}
