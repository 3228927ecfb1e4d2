//! The adversarial battery: hostile and malformed requests over real loopback sockets, each
//! run while a live subscriber receives a steady stream that must arrive whole and in order.
//! Every case must get its status (and a one-line reason) or a clean close, and the server's
//! memory must stay bounded. (`edges.rs` has the ordinary bad requests; this file has the
//! hostile ones.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{fds, parse_head, rss_kib, Server, Sse, WAIT};

/// A subscriber of topic `live` read by its own thread while another thread publishes
/// `0`, `1`, `2`, ... to it every few milliseconds.
struct Live {
    stop: Arc<AtomicBool>,
    published: Arc<AtomicUsize>,
    publisher: JoinHandle<()>,
    reader: JoinHandle<Vec<String>>,
}

impl Live {
    fn start(server: &Server) -> Live {
        let mut sse = Sse::open(server.port, "/events?topic=live", &[]);
        assert_eq!(sse.status, 200);
        let stop = Arc::new(AtomicBool::new(false));
        let published = Arc::new(AtomicUsize::new(0));
        let port = server.port;
        let publisher = {
            let (stop, published) = (Arc::clone(&stop), Arc::clone(&published));
            std::thread::spawn(move || {
                let start = Instant::now();
                // Bounded in time as well as by the stop flag.
                while !stop.load(Ordering::SeqCst) && start.elapsed() < Duration::from_secs(300) {
                    let n = published.load(Ordering::SeqCst);
                    let reply = common::post(
                        port,
                        "/publish?topic=live",
                        "text/plain",
                        n.to_string().as_bytes(),
                        &[],
                    );
                    assert_eq!(reply.status, 200, "live publish: {}", reply.text());
                    published.store(n + 1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        };
        let reader = {
            let (stop, published) = (Arc::clone(&stop), Arc::clone(&published));
            std::thread::spawn(move || {
                let mut got = Vec::new();
                let mut last_progress = Instant::now();
                loop {
                    if stop.load(Ordering::SeqCst) && got.len() >= published.load(Ordering::SeqCst)
                    {
                        return got;
                    }
                    // Bounded: no event for the wait bound ends the reading.
                    if last_progress.elapsed() > WAIT || sse.eof {
                        return got;
                    }
                    if let Some(e) = sse.try_event(Duration::from_millis(100)) {
                        got.push(e.data);
                        last_progress = Instant::now();
                    }
                }
            })
        };
        Live {
            stop,
            published,
            publisher,
            reader,
        }
    }

    /// Stops publishing and checks that every event arrived, in order.
    fn finish(self) {
        self.stop.store(true, Ordering::SeqCst);
        self.publisher.join().expect("the live publisher");
        let published = self.published.load(Ordering::SeqCst);
        let got = self.reader.join().expect("the live reader");
        let want: Vec<String> = (0..published).map(|n| n.to_string()).collect();
        assert!(published > 0, "the live stream published nothing");
        assert_eq!(got, want, "the live subscriber lost or reordered events");
    }
}

/// Writes `request` from a thread (so a server that answers before reading it all is still
/// heard), half-closes, and reads until the server closes. Returns what arrived, and whether
/// the server closed within the wait bound.
fn exchange(port: u16, request: Vec<u8>) -> (Vec<u8>, bool) {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sending = std::thread::spawn(move || {
        // The server may close before reading everything: that is allowed.
        if writer.write_all(&request).is_ok() {
            let _ = writer.shutdown(Shutdown::Write);
        }
    });
    let mut reader = stream;
    reader.set_read_timeout(Some(WAIT)).unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let closed = loop {
        match reader.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break false
            }
            // A reset after the answer still counts as closing.
            Err(_) => break true,
        }
    };
    let _ = reader.shutdown(Shutdown::Both);
    sending.join().unwrap();
    (raw, closed)
}

/// Splits responses that each carry a Content-Length into (status, body).
fn responses(mut raw: &[u8]) -> Vec<(u16, String)> {
    let mut out = Vec::new();
    while let Some((status, headers, end)) = parse_head(raw) {
        let len: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map_or(raw.len() - end, |(_, v)| v.parse().unwrap());
        let len = len.min(raw.len() - end);
        out.push((
            status,
            String::from_utf8_lossy(&raw[end..end + len]).into_owned(),
        ));
        raw = &raw[end + len..];
    }
    out
}

fn get(target: &[u8], extra: &[u8]) -> Vec<u8> {
    [
        b"GET ",
        target,
        b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n",
        extra,
        b"\r\n",
    ]
    .concat()
}

fn publish_chunked(chunks: &[u8]) -> Vec<u8> {
    [
        &b"POST /publish HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
        chunks,
    ]
    .concat()
}

fn keep_alive(request: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(request)
        .replace("Connection: close\r\n", "")
        .into_bytes()
}

#[test]
fn hostile_requests_get_their_status_and_the_live_stream_keeps_flowing() {
    let server = Server::start(&["--max-body", "4096", "--queue", "1024"]);
    let live = Live::start(&server);
    let rss_before = rss_kib(server.child.id());
    let mb = |n: usize| "a".repeat(n);
    let healthz = get(b"/healthz", b"");
    let text_publish = |body: &str| {
        format!(
            "POST /publish HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    };
    // (what, request, the statuses of the answers in order; the connection must then close)
    let cases: Vec<(&str, Vec<u8>, Vec<u16>)> = vec![
        // Sizes far past the 8 KiB head limit.
        ("request line of 300 KB", get(format!("/{}", mb(300_000)).as_bytes(), b""), vec![431]),
        (
            "300 KB of headers",
            get(b"/healthz", "X-Pad: 0123456789012345678901234567890123456789\r\n".repeat(6000).as_bytes()),
            vec![431],
        ),
        ("a Last-Event-ID of 1 MB", get(b"/events", format!("Last-Event-ID: {}\r\n", mb(1 << 20)).as_bytes()), vec![431]),
        ("a last_event_id parameter of 1 MB", get(format!("/events?last_event_id={}", mb(1 << 20)).as_bytes(), b""), vec![431]),
        ("1,000 topic parameters", get(format!("/events?{}", "topic=a&".repeat(1000)).as_bytes(), b""), vec![400]),
        ("5,000 topic parameters", get(format!("/events?{}", "topic=a&".repeat(5000)).as_bytes(), b""), vec![431]),
        // Framing that could smuggle a second request past a proxy (RFC 9112 6.3).
        (
            "Transfer-Encoding then Content-Length",
            b"POST /publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n".to_vec(),
            vec![400],
        ),
        (
            "Transfer-Encoding: chunked, identity",
            b"POST /publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n".to_vec(),
            vec![501],
        ),
        ("Content-Length: +3", b"POST /publish HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc".to_vec(), vec![400]),
        ("Content-Length: 3, 3", b"POST /publish HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc".to_vec(), vec![400]),
        ("Content-Length past u64", b"POST /publish HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n".to_vec(), vec![400]),
        (
            "two different Content-Lengths",
            b"POST /publish HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd".to_vec(),
            vec![400],
        ),
        (
            "Transfer-Encoding in HTTP/1.0",
            b"POST /publish HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(),
            vec![501],
        ),
        ("a body shorter than its Content-Length", b"POST /publish HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nabc".to_vec(), vec![400]),
        // Malformed chunked bodies.
        ("chunk size not hex", publish_chunked(b"zz\r\nabc\r\n0\r\n\r\n"), vec![400]),
        ("negative chunk size", publish_chunked(b"-3\r\nabc\r\n0\r\n\r\n"), vec![400]),
        ("chunk size past u64", publish_chunked(b"fffffffffffffffffffff\r\nabc\r\n0\r\n\r\n"), vec![400]),
        ("chunk without its CRLF", publish_chunked(b"3\r\nabcdef\r\n0\r\n\r\n"), vec![400]),
        ("a chunk announced as 1 GB, cut short", publish_chunked(b"40000000\r\nabc"), vec![400]),
        ("a chunk announced as 1 GB", publish_chunked(format!("40000000\r\n{}", mb(5000)).as_bytes()), vec![413]),
        ("no last chunk", publish_chunked(b"3\r\nabc\r\n"), vec![400]),
        // Bytes that are not UTF-8, or not allowed, in the head.
        ("non-UTF-8 path", get(b"/\xff\xfe", b""), vec![400]),
        ("non-UTF-8 topic", get(b"/events?topic=\xff", b""), vec![400]),
        ("non-UTF-8 Last-Event-ID", get(b"/events", b"Last-Event-ID: \xff\xfe\r\n"), vec![400]),
        ("NUL in the path", get(b"/health\0z", b""), vec![400]),
        ("NUL in a header", get(b"/healthz", b"X-A: a\0b\r\n"), vec![400]),
        ("CR inside a header value", get(b"/healthz", b"X-A: a\rb\r\n"), vec![400]),
        ("a folded header", get(b"/healthz", b"X-A: a\r\n b\r\n"), vec![400]),
        ("space before the colon", get(b"/healthz", b"Host : y\r\n"), vec![400]),
        ("non-UTF-8 JSON body", {
            let body = b"{\"data\": \"\xff\"}";
            [format!("POST /publish HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes(), body].concat()
        }, vec![400]),
        // Path traversal towards the repository's files (the root is `www/`).
        ("/../Cargo.toml", get(b"/../Cargo.toml", b""), vec![404]),
        ("/%2e%2e/Cargo.toml", get(b"/%2e%2e/Cargo.toml", b""), vec![404]),
        ("/..%2fCargo.toml", get(b"/..%2fCargo.toml", b""), vec![404]),
        ("/%2e%2e%2f%2e%2e%2fetc%2fpasswd", get(b"/%2e%2e%2f%2e%2e%2fetc%2fpasswd", b""), vec![404]),
        ("backslashes", get(b"/..\\..\\Cargo.toml", b""), vec![404]),
        ("absolute form with ..", get(b"http://x/../../Cargo.toml", b""), vec![404]),
        ("//etc/passwd", get(b"//etc/passwd", b""), vec![404]),
        ("/.git/config", get(b"/.git/config", b""), vec![404]),
        // Pipelined requests: every one answered, in order.
        ("two pipelined GETs", [keep_alive(&healthz), healthz.clone()].concat(), vec![200, 200]),
        (
            "a publish pipelined before a GET",
            [text_publish("pipelined"), healthz.clone()].concat(),
            vec![200, 200],
        ),
        (
            "a GET whose body nobody reads, then a GET",
            [b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 13\r\n\r\nGET /nothing/".to_vec(), healthz.clone()].concat(),
            vec![200, 200],
        ),
        (
            "a 404 then a bad request on one connection",
            [keep_alive(&get(b"/no-such-file", b"")), b"GARBAGE\r\n\r\n".to_vec()].concat(),
            vec![404, 400],
        ),
    ];
    let mut failures = Vec::new();
    for (what, request, want) in cases {
        let (raw, closed) = exchange(server.port, request);
        let got = responses(&raw);
        let statuses: Vec<u16> = got.iter().map(|(s, _)| *s).collect();
        if statuses != want || !closed {
            failures.push(format!(
                "{what}: got {statuses:?} (closed: {closed}), want {want:?}: {:?}",
                String::from_utf8_lossy(&raw[..raw.len().min(300)])
            ));
            continue;
        }
        for (status, body) in &got {
            if *status >= 400 && body.trim().lines().count() != 1 {
                failures.push(format!("{what}: not a one-line reason: {body:?}"));
            }
            if body.contains("[package]") || body.contains("root:") {
                failures.push(format!("{what}: a file outside the root was served"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    live.finish();
    assert!(
        server.wait_metric("ssecast_subscribers", 0, WAIT),
        "no refused request left a subscriber behind"
    );
    let rss_after = rss_kib(server.child.id());
    // Generous: the hostile requests came to tens of MB; none of them may be kept.
    assert!(
        rss_after < rss_before + 32 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
}

#[test]
fn trickled_heads_and_silent_connections_are_cut_at_the_header_timeout() {
    let server = Server::start(&["--queue", "1024"]);
    let pid = server.child.id();
    let fds_before = fds(pid);
    let live = Live::start(&server);
    // One byte every 200 ms: each read makes progress, but the head never completes in 5 s.
    let trickle = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let start = Instant::now();
    let mut writer = trickle.try_clone().unwrap();
    let trickling = std::thread::spawn(move || {
        let head = format!(
            "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: {}",
            "a".repeat(100)
        );
        for byte in head.bytes() {
            if writer.write_all(&[byte]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    // Connections that never send a byte.
    let silent: Vec<TcpStream> = (0..300)
        .map(|_| TcpStream::connect(("127.0.0.1", server.port)).unwrap())
        .collect();
    let mut answer = Vec::new();
    let mut reader = trickle;
    // The head takes about 28 s to trickle in: an answer well before that is the head's own limit.
    reader
        .set_read_timeout(Some(Duration::from_secs(25)))
        .unwrap();
    let _ = reader.read_to_end(&mut answer);
    let took = start.elapsed();
    assert!(
        answer.starts_with(b"HTTP/1.1 408 "),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
    // The limit is on the whole head, not on the gap between bytes (a limit on gaps would
    // never end it: a byte comes every 200 ms), and it is 5 s (not earlier; later only as
    // much as a loaded machine delays the timer).
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(20),
        "{took:?}"
    );
    drop(reader);
    trickling.join().unwrap();
    for mut stream in silent {
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut nothing = Vec::new();
        stream
            .read_to_end(&mut nothing)
            .expect("closed, not timed out");
        assert!(nothing.is_empty(), "closed without an answer");
    }
    live.finish();
    // Every socket of the hostile connections was released.
    assert!(
        common::wait_until(WAIT, || fds(pid) <= fds_before + 2),
        "fds {} -> {}",
        fds_before,
        fds(pid)
    );
}

#[test]
fn cr_lf_and_nul_in_every_publishable_field_inject_nothing() {
    let server = Server::start(&[]);
    let mut sse = Sse::open(server.port, "/events?topic=inj", &[]);
    assert!(server.wait_metric("ssecast_subscribers", 1, WAIT));
    let json = |v: serde_json::Value| {
        let mut v = v;
        if v.get("topic").is_none() {
            v["topic"] = "inj".into();
        }
        common::post(
            server.port,
            "/publish",
            "application/json",
            v.to_string().as_bytes(),
            &[],
        )
    };
    let text = |query: &str, body: &str| {
        common::post(
            server.port,
            &format!("/publish?topic=inj{query}"),
            "text/plain",
            body.as_bytes(),
            &[],
        )
    };
    let evil = "\r\nid: 666\r\nevent: evil\r\nretry: 1\r\n\r\ndata: injected";
    use serde_json::json;
    // (reply, what the subscriber must decode: Some((type, data)) or None for a refusal)
    let cases = vec![
        (
            json(json!({ "data": format!("a{evil}") })),
            Some((
                "message",
                "a\nid: 666\nevent: evil\nretry: 1\n\ndata: injected".to_owned(),
            )),
        ),
        (
            json(json!({ "data": "a\rb\nc\r\nd" })),
            Some(("message", "a\nb\nc\nd".to_owned())),
        ),
        (
            json(json!({ "data": "a\u{0}b" })),
            Some(("message", "a\u{0}b".to_owned())),
        ),
        (
            json(json!({ "data": "\n\n\n" })),
            Some(("message", "\n\n\n".to_owned())),
        ),
        (
            json(json!({ "data": "x", "event": format!("t{evil}") })),
            None,
        ),
        (json(json!({ "data": "x", "event": "t\r" })), None),
        (
            json(json!({ "data": "x", "event": "t\u{0}u" })),
            Some(("t\u{0}u", "x".to_owned())),
        ),
        (json(json!({ "data": "x", "id": format!("1{evil}") })), None),
        (json(json!({ "data": "x", "id": "1\u{0}" })), None),
        (json(json!({ "data": "x", "id": "1\n" })), None),
        (json(json!({ "data": "x", "retry": "1\n2" })), None),
        (json(json!({ "data": "x", "topic": "inj\r\nx" })), None),
        (json(json!({ "data": "x", "topic": "inj\u{0}" })), None),
        (
            text("", &format!("b{evil}")),
            Some((
                "message",
                "b\nid: 666\nevent: evil\nretry: 1\n\ndata: injected".to_owned(),
            )),
        ),
        (text("", "\r"), Some(("message", "\n".to_owned()))),
        (text("&event=a%0D%0Adata:%20evil", "x"), None),
        (text("&event=a%0Ab", "x"), None),
        (text("&event=a%00b", "x"), Some(("a\u{0}b", "x".to_owned()))),
        (
            common::post(
                server.port,
                "/publish?topic=inj%0Aevil",
                "text/plain",
                b"x",
                &[],
            ),
            None,
        ),
        (
            common::post(
                server.port,
                "/publish?topic=inj%00",
                "text/plain",
                b"x",
                &[],
            ),
            None,
        ),
    ];
    let mut want = Vec::new();
    for (k, (reply, expect)) in cases.into_iter().enumerate() {
        match expect {
            None => assert_eq!(reply.status, 400, "case {k}: {}", reply.text()),
            Some((event_type, data)) => {
                assert_eq!(reply.status, 200, "case {k}: {}", reply.text());
                let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
                let id = v["id"].as_str().unwrap().to_owned();
                want.push((event_type.to_owned(), data, id));
            }
        }
    }
    // Found by the publish fuzz target: parser errors quote the input, CR and LF included.
    let reply = json(json!({ "data": "x", "a\r\nid: 1\r\n": 1 }));
    assert_eq!(reply.status, 400);
    assert_eq!(reply.text().lines().count(), 1, "{:?}", reply.text());
    assert_eq!(text("", "end").status, 200);
    let mut got = Vec::new();
    loop {
        let e = sse.event();
        if e.data == "end" {
            break;
        }
        got.push((e.event_type, e.data, e.last_event_id));
    }
    // Exactly the accepted events, as published, each with the id it was given.
    assert_eq!(got, want);
    // The server's own hint, not the injected `retry: 1`.
    assert_eq!(sse.decoder.retry(), Some(ssecast::Millis(3000)));
}

#[test]
fn a_publish_burst_with_subscribers_that_stopped_reading() {
    const EVENTS: usize = 1500;
    const STALLED: usize = 20;
    // Events large enough to fill the stalled sockets' buffers, a queue that holds a fifth.
    let server = Server::start(&["--queue", "300", "--keepalive", "0", "--write-timeout", "0"]);
    let pid = server.child.id();
    let stalled: Vec<Sse> = (0..STALLED)
        .map(|_| Sse::open(server.port, "/events?topic=burst", &[]))
        .collect();
    let mut reader = Sse::open(server.port, "/events?topic=burst", &[]);
    assert!(server.wait_metric("ssecast_subscribers", STALLED as u64 + 1, WAIT));
    let rss_before = rss_kib(pid);
    let port = server.port;
    // The publisher stays at most a third of a queue ahead of the reader (whatever the
    // machine's speed), so the reader never overflows while the stalled ones do.
    let received = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let reader_has = std::sync::Arc::clone(&received);
    let publisher = std::thread::spawn(move || {
        let payload = "x".repeat(16 * 1024);
        for i in 0..EVENTS {
            assert!(
                common::wait_until(WAIT, || reader_has
                    .load(std::sync::atomic::Ordering::Relaxed)
                    + 100
                    > i),
                "the reader stopped receiving at {i}"
            );
            let reply = common::post(
                port,
                "/publish?topic=burst",
                "text/plain",
                format!("{i} {payload}").as_bytes(),
                &[],
            );
            assert_eq!(reply.status, 200);
        }
    });
    let got: Vec<usize> = (0..EVENTS)
        .map(|_| {
            let e = reader.event();
            received.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            e.data.split(' ').next().unwrap().parse().unwrap()
        })
        .collect();
    publisher.join().unwrap();
    assert_eq!(
        got,
        (0..EVENTS).collect::<Vec<_>>(),
        "the reader lost nothing"
    );
    // Every stalled subscriber got some (its socket buffers), queued some and dropped the
    // rest: frames never delivered or dropped are the ones still queued, at most a queue each.
    let delivered = server.metric("ssecast_delivered_total") as usize;
    let dropped = server.metric("ssecast_dropped_total") as usize;
    let sent = EVENTS * (STALLED + 1);
    assert!(dropped > 0, "the stalled subscribers dropped events");
    assert!(
        delivered + dropped <= sent && delivered + dropped + STALLED * 300 >= sent,
        "delivered {delivered} + dropped {dropped} vs {sent}"
    );
    // Their queues hold shared frames, not copies: a few MB at most.
    let rss_after = rss_kib(pid);
    assert!(
        rss_after < rss_before + 64 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
    for sse in stalled {
        sse.close();
    }
    assert!(server.wait_metric("ssecast_subscribers", 1, WAIT));
    server.publish_json(&serde_json::json!({"data": "after", "topic": "burst"}));
    assert_eq!(reader.event().data, "after");
}
