//! Behaviour at the edges: gone clients, the subscriber limit, bad and slow requests,
//! HTTP/1.0, shutdown. Each bad request leaves a live stream untouched.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{raw_request, Server, Sse, WAIT};

#[test]
fn a_client_that_leaves_is_unsubscribed_within_a_second() {
    // No ticker, no keep-alive: nothing is ever written that could fail.
    let server = Server::start(&["--keepalive", "0"]);
    let sse = Sse::open(server.port, "/events", &[]);
    assert!(server.wait_metric("ssecast_subscribers", 1, WAIT));
    sse.close();
    // The requirement is "within one second"; the watch notices in milliseconds.
    assert!(server.wait_metric("ssecast_subscribers", 0, Duration::from_secs(1)));
    assert_eq!(
        server.metric("ssecast_disconnected_total{reason=\"client_gone\"}"),
        1
    );
}

#[test]
fn the_subscriber_limit_answers_503_with_a_jittered_retry_after() {
    let server = Server::start(&["--max-subscribers", "2"]);
    let mut subs = [
        Sse::open(server.port, "/events", &[]),
        Sse::open(server.port, "/events", &[]),
    ];
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let refused = Sse::open(server.port, "/events", &[]);
        assert_eq!(refused.status, 503);
        let retry: u32 = refused.header("Retry-After").unwrap().parse().unwrap();
        assert!((1..=5).contains(&retry), "Retry-After {retry}");
        seen.insert(retry);
    }
    assert!(seen.len() > 1, "jittered: {seen:?}");
    assert_eq!(server.metric("ssecast_subscriptions_refused_total"), 20);
    server.publish("still served");
    for sub in &mut subs {
        assert_eq!(sub.event().data, "still served");
    }
}

/// One bad request and the status it must get; the connection must close after it.
fn check_bad(port: u16, request: &[u8], status: u16) {
    let reply = raw_request(port, request);
    assert_eq!(
        reply.status,
        status,
        "{:?} -> {}",
        String::from_utf8_lossy(&request[..request.len().min(80)]),
        reply.text()
    );
    assert!(!reply.body.is_empty(), "a one-line reason");
}

#[test]
fn bad_requests_get_their_status_and_leave_streams_untouched() {
    let server = Server::start(&["--max-body", "1000"]);
    let mut sse = Sse::open(server.port, "/events", &[]);
    assert!(server.wait_metric("ssecast_subscribers", 1, WAIT));
    let port = server.port;
    let big_header = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(9000)
    );
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (b"GARBAGE\r\n\r\n".to_vec(), 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n".to_vec(), 400),
        (b"GET /healthz HTTP/1.1\r\n\r\n".to_vec(), 400),
        (b"GET /healthz HTTP/1.1\nHost: x\n\n".to_vec(), 400),
        ("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Name: caf\u{e9}\r\n\r\n".as_bytes().to_vec(), 400),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX: \xff\xfe\r\n\r\n".to_vec(), 400),
        (b"GET healthz HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), 400),
        (b"GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n".to_vec(), 400),
        (b"BREW /healthz HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), 501),
        (
            b"POST /publish HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc".to_vec(),
            400,
        ),
        (b"POST /publish HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n".to_vec(), 400),
        (b"POST /publish HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n".to_vec(), 413),
        (big_header.into_bytes(), 431),
    ];
    for (request, status) in &cases {
        check_bad(port, request, *status);
    }
    // Publish bodies the core or the parser refuses: nothing is published.
    let post = |ct: &str, body: &[u8]| common::post(port, "/publish", ct, body, &[]);
    let refused = [
        (post("text/plain", &[0xff, 0xfe, b'a']), 400),
        (post("application/json", b"{\"data\": "), 400),
        (
            post("application/json", b"{\"data\": \"x\", \"colour\": 1}"),
            400,
        ),
        (post("application/json", b"{\"event\": \"x\"}"), 400),
        (
            post(
                "application/json",
                b"{\"data\": \"x\", \"event\": \"a\\nb\"}",
            ),
            400,
        ),
        (
            post("application/json", b"{\"data\": \"x\", \"id\": \"a\\rb\"}"),
            400,
        ),
        (
            post(
                "application/json",
                b"{\"data\": \"x\", \"id\": \"a\\u0000b\"}",
            ),
            400,
        ),
        (
            post("application/json", b"{\"data\": \"x\", \"topic\": \"\"}"),
            400,
        ),
        (
            post("application/json", b"{\"data\": \"x\", \"id\": \"\"}"),
            400,
        ),
        (
            post(
                "application/json",
                "{\"data\": \"x\", \"id\": \"caf\u{e9}\"}".as_bytes(),
            ),
            400,
        ),
        (
            post(
                "application/json",
                b"{\"data\": \"x\", \"id\": \"a\\u0001\"}",
            ),
            400,
        ),
        (
            post("application/json", b"{\"data\": \"x\", \"retry\": -1}"),
            400,
        ),
        (post("application/x-www-form-urlencoded", b"data=x"), 415),
        (post("text/plain", &[b'a'; 1001]), 413),
        (
            common::post(port, "/publish?event=a%0Ab", "text/plain", b"x", &[]),
            400,
        ),
        (
            common::post(port, "/publish?topic=", "text/plain", b"x", &[]),
            400,
        ),
    ];
    for (k, (reply, status)) in refused.iter().enumerate() {
        assert_eq!(reply.status, *status, "case {k}: {}", reply.text());
        assert_eq!(
            reply.text().trim().lines().count(),
            1,
            "one-line reason: {:?}",
            reply.text()
        );
    }
    // A chunked body over the limit is cut at limit + 1 bytes and refused.
    let mut chunked = b"POST /publish HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..3 {
        chunked.extend_from_slice(format!("{:x}\r\n{}\r\n", 500, "b".repeat(500)).as_bytes());
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    check_bad(port, &chunked, 413);
    // An event stream request with a bad topic.
    let bad_topic = Sse::open(port, "/events?topic=", &[]);
    assert_eq!(bad_topic.status, 400);
    assert_eq!(
        server.metric("ssecast_published_total"),
        0,
        "nothing was published"
    );
    // The stream is still there and still receives.
    server.publish("unharmed");
    assert_eq!(sse.event().data, "unharmed");
    assert_eq!(server.metric("ssecast_subscribers"), 1);
}

#[test]
fn a_slow_request_head_gets_408_and_an_idle_connection_is_closed() {
    let server = Server::start(&[]);
    let mut sse = Sse::open(server.port, "/events", &[]);
    let mut slow = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let mut idle = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let start = Instant::now();
    for stream in [&mut slow, &mut idle] {
        stream.set_read_timeout(Some(WAIT)).unwrap();
    }
    let mut answer = Vec::new();
    let _ = slow.read_to_end(&mut answer);
    assert!(
        answer.starts_with(b"HTTP/1.1 408 "),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
    // The 5 s limit, not the 60 s default of async-h1 (and not before the limit either).
    assert!(
        start.elapsed() >= Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    let mut nothing = Vec::new();
    let _ = idle.read_to_end(&mut nothing);
    assert!(
        nothing.is_empty(),
        "an idle connection is closed without an answer"
    );
    server.publish("unharmed");
    assert_eq!(sse.event().data, "unharmed");
}

#[test]
fn http_1_0_requests_get_full_answers() {
    let server = Server::start(&[]);
    let reply = raw_request(server.port, b"GET /healthz HTTP/1.0\r\n\r\n");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "ok\n");
    assert_eq!(reply.header("Transfer-Encoding"), None);
    assert_eq!(reply.header("Content-Length"), Some("3"));
    // The absolute form, which proxies send, in both versions.
    for version in ["1.0", "1.1"] {
        let request = format!("GET http://127.0.0.1/healthz HTTP/{version}\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        assert_eq!(
            raw_request(server.port, request.as_bytes()).text(),
            "ok\n",
            "HTTP/{version}"
        );
    }
    // Publishing over HTTP/1.0 (with a body) and streaming over HTTP/1.0 (close-delimited).
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream.write_all(b"GET /events HTTP/1.0\r\n\r\n").unwrap();
    assert!(server.wait_metric("ssecast_subscribers", 1, WAIT));
    let reply = raw_request(
        server.port,
        b"POST /publish HTTP/1.0\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&raw).contains("data: hello\n\n") {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "{:?}", String::from_utf8_lossy(&raw));
        raw.extend_from_slice(&buf[..n]);
    }
    let (status, headers, _) = common::parse_head(&raw).unwrap();
    assert_eq!(status, 200);
    assert!(headers
        .iter()
        .all(|(n, _)| !n.eq_ignore_ascii_case("transfer-encoding")));
}

#[test]
fn sigterm_ends_every_stream_and_exits_0() {
    let mut server = Server::start(&["--tick", "50ms"]);
    let mut subs: Vec<Sse> = (0..3)
        .map(|_| Sse::open(server.port, "/events", &[]))
        .collect();
    for sub in &mut subs {
        sub.event();
    }
    let status = server.signal_and_wait("TERM", Duration::from_secs(2));
    assert_eq!(
        status.map(|s| s.code()),
        Some(Some(0)),
        "exit 0 within two seconds"
    );
    for sub in &mut subs {
        assert!(sub.wait_eof(WAIT));
        assert!(sub.body.ends_with(b"\n\n"), "ended between events");
    }
}

#[test]
fn sigterm_exits_0_in_time_even_with_a_subscriber_that_stopped_reading() {
    let mut server = Server::start(&["--queue", "4"]);
    let stalled = Sse::open(server.port, "/events", &[]);
    let mut reading = Sse::open(server.port, "/events", &[]);
    assert!(server.wait_metric("ssecast_subscribers", 2, WAIT));
    let big = "x".repeat(64 * 1024);
    // Enough to fill the stalled connection's socket buffers, so its response is stuck in a
    // write; the reading one keeps up.
    for _ in 0..200 {
        server.publish(&big);
        reading.event();
    }
    assert!(
        server.metric("ssecast_dropped_total") > 0,
        "the stalled stream is stuck"
    );
    let status = server.signal_and_wait("TERM", Duration::from_secs(2));
    assert_eq!(
        status.map(|s| s.code()),
        Some(Some(0)),
        "exit 0 within two seconds"
    );
    assert!(reading.wait_eof(WAIT));
    drop(stalled);
}

#[test]
fn sigint_exits_0_too() {
    let mut server = Server::start(&[]);
    let mut sse = Sse::open(server.port, "/events", &[]);
    assert!(server.wait_metric("ssecast_subscribers", 1, WAIT));
    let status = server.signal_and_wait("INT", Duration::from_secs(2));
    assert_eq!(status.map(|s| s.code()), Some(Some(0)));
    assert!(sse.wait_eof(WAIT));
}
