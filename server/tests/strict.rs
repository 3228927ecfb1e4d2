//! HTTP/1.1 as RFC 9110 and 9112 say, over a real socket, beside a live stream that must not
//! notice: the path is the path whatever `Host` holds, methods are case-sensitive, one
//! `Host`, chunk extensions ignored, no `100 Continue` after the final answer, a body that
//! stops arriving is cut at `--body-timeout`, topics that are not UTF-8 are refused, and a
//! panic in one connection's task ends that connection only.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{parse_head, raw_exchange, raw_request, Server, Sse, WAIT};

/// Every response in `raw`, as (status, body), bodies delimited by Content-Length.
fn statuses(raw: &[u8]) -> Vec<u16> {
    let mut out = Vec::new();
    let mut rest = raw;
    while let Some((status, headers, end)) = parse_head(rest) {
        let len: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map_or(0, |(_, v)| v.parse().unwrap());
        out.push(status);
        rest = &rest[(end + len).min(rest.len())..];
    }
    out
}

#[test]
fn requests_are_read_as_the_rfcs_say() {
    let server = Server::start(&[]);
    let mut live = Sse::open(server.port, "/events", &[]);
    assert!(server.wait_metric("ssecast_subscribers", 1, WAIT));
    let port = server.port;
    let publish = |head: &str, body: &str| {
        let request = format!("{head}\r\n{body}");
        raw_request(port, request.as_bytes())
    };
    // (what, request, status)
    let cases: Vec<(&str, String, u16)> = vec![
        ("an empty Host does not shift the path", "POST /static/publish HTTP/1.1\r\nHost:\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx".into(), 405),
        ("an empty Host, GET", "GET /x/healthz HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n".into(), 404),
        ("a lower-case method", "post /publish HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx".into(), 400),
        ("a mixed-case method", "Get /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into(), 400),
        ("two Host headers", "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n".into(), 400),
        ("a topic that is not UTF-8", "GET /events?topic=%ff HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into(), 400),
        ("a publish topic that is not UTF-8", "POST /publish?topic=%fe HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx".into(), 400),
    ];
    for (what, request, status) in &cases {
        let reply = raw_request(port, request.as_bytes());
        assert_eq!(reply.status, *status, "{what}: {}", reply.text());
        assert_eq!(reply.text().trim().lines().count(), 1, "{what}: one line");
    }
    assert_eq!(server.metric("ssecast_published_total"), 0);

    // Chunk extensions are ignored (RFC 9112 7.1.1): the data is what the chunks hold.
    let reply = publish(
        "POST /publish HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n",
        "2;ext=1\r\nhe\r\n3;a=\"b;c\";d\r\nllo\r\n0;last=yes\r\nX-Trailer: t\r\n\r\n",
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(live.event().data, "hello");

    // Without a Content-Type the body is text, as the README says.
    let reply = publish(
        "POST /publish HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\nConnection: close\r\n",
        "as text",
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(live.event().data, "as text");

    // Keep-alive after a chunked body: the next request on the connection is answered.
    let raw = raw_exchange(
        port,
        b"POST /publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(
        statuses(&raw),
        [200, 200],
        "{}",
        String::from_utf8_lossy(&raw)
    );
    assert_eq!(live.event().data, "abc");
}

#[test]
fn expect_100_continue_comes_before_the_body_or_not_at_all() {
    let server = Server::start(&[]);
    let mut live = Sse::open(server.port, "/events", &[]);
    assert!(server.wait_metric("ssecast_subscribers", 1, WAIT));
    let head = "POST /publish HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\n";
    // The body sent with the head, as curl does for small bodies after a wait: one final
    // answer and no 1xx after it.
    let raw = raw_exchange(server.port, format!("{head}first").as_bytes());
    let text = String::from_utf8_lossy(&raw).into_owned();
    let final_at = text.find("HTTP/1.1 200").expect(&text);
    assert!(!text[final_at..].contains("HTTP/1.1 100"), "{text:?}");
    assert_eq!(live.event().data, "first");
    // The client waits for the 100 before it sends the body.
    let mut conn = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    conn.set_read_timeout(Some(WAIT)).unwrap();
    conn.write_all(head.as_bytes()).unwrap();
    let mut buf = [0u8; 256];
    let n = conn.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"HTTP/1.1 100 Continue\r\n\r\n");
    conn.write_all(b"later").unwrap();
    let mut rest = Vec::new();
    let _ = conn.read_to_end(&mut rest);
    assert!(
        rest.starts_with(b"HTTP/1.1 200 "),
        "{:?}",
        String::from_utf8_lossy(&rest)
    );
    assert_eq!(live.event().data, "later");
}

#[test]
fn a_body_that_stops_arriving_gets_408_at_the_body_timeout() {
    let server = Server::start(&["--body-timeout", "1s"]);
    let mut live = Sse::open(server.port, "/events", &[]);
    assert!(server.wait_metric("ssecast_subscribers", 1, WAIT));
    let head = "POST /publish HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n";
    // Twenty publishers whose head arrived and whose body never comes, and one that trickles
    // a byte every 1.5 s (slower than the timeout between reads).
    let mut silent: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
            s.write_all(head.as_bytes()).unwrap();
            s.write_all(b"partial").unwrap();
            s.set_read_timeout(Some(WAIT)).unwrap();
            s
        })
        .collect();
    let mut trickle = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    trickle.write_all(head.as_bytes()).unwrap();
    trickle
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let start = Instant::now();
    let mut trickled = Vec::new();
    while start.elapsed() < WAIT {
        if trickle.write_all(b"x").is_err() {
            break;
        }
        match trickle.read(&mut [0u8; 4096]) {
            Ok(0) => break,
            Ok(n) => {
                trickled.push(n);
                break;
            }
            Err(_) => {}
        }
    }
    for (i, s) in silent.iter_mut().enumerate() {
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        assert!(
            answer.starts_with(b"HTTP/1.1 408 "),
            "connection {i}: {:?}",
            String::from_utf8_lossy(&answer)
        );
    }
    assert!(
        !trickled.is_empty(),
        "the trickling publisher got an answer"
    );
    assert_eq!(server.metric("ssecast_published_total"), 0);
    server.publish("unharmed");
    assert_eq!(live.event().data, "unharmed");
}

#[test]
fn a_panic_ends_its_own_connection_and_is_counted() {
    let server = Server::start_with("127.0.0.1:0", &[], &[("SSECAST_TEST_FAULTS", "1")]);
    let mut live = Sse::open(server.port, "/events", &[]);
    assert!(server.wait_metric("ssecast_subscribers", 1, WAIT));
    let raw = raw_exchange(
        server.port,
        b"GET /__test/panic HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(raw.is_empty(), "{:?}", String::from_utf8_lossy(&raw));
    assert!(server.wait_metric("ssecast_panics_total", 1, WAIT));
    server.publish("still here");
    assert_eq!(live.event().data, "still here");
    assert_eq!(server.metric("ssecast_subscribers"), 1);
}
