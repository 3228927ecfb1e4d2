//! HTTP/2 end to end: real `curl --http2-prior-knowledge` and `curl --http2` over TLS, the h2
//! crate as a client (many streams on one connection, a stream whose client stops reading),
//! and hand-built frames for the floods (rapid reset, CONTINUATION) and the limits.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/h2.rs"]
mod h2client;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Server, WAIT};
use h2client::{Client, H2Sse, SelfSigned};
use ssecast::Decoder;

/// `curl` with `args`; its stdout. Debian's curl speaks HTTP/2 (nghttp2).
fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl");
    assert!(out.status.success(), "curl {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn curl_with_prior_knowledge_gets_every_route_over_http2() {
    let server = Server::start(&[]);
    let url = |path: &str| server.url(path);
    let h2 = [
        "--http2-prior-knowledge",
        "-w",
        "\n%{http_version} %{http_code}",
    ];
    let check = |extra: &[&str], path: &str, expected: &str| {
        let mut args = h2.to_vec();
        args.extend_from_slice(extra);
        let u = url(path);
        args.push(&u);
        let out = curl(&args);
        assert!(out.ends_with("\n2 200"), "{path}: {out}");
        assert!(out.contains(expected), "{path}: {out}");
    };
    check(&[], "/healthz", "ok");
    check(&[], "/", "<html");
    check(&["-I"], "/", "content-length:");
    // A subscriber over h2 (curl), an event published over h2 (curl).
    let mut sub = std::process::Command::new("curl")
        .args(["-sSN", "--http2-prior-knowledge", "--max-time", "20"])
        .arg(url("/events?topic=h2"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert!(server.wait_metric("ssecast_subscribers", 1, WAIT));
    check(
        &["-H", "Content-Type: text/plain", "--data-binary", "over h2"],
        "/publish?topic=h2",
        "\"id\"",
    );
    let mut stdout = sub.stdout.take().unwrap();
    let mut decoder = Decoder::new();
    let deadline = Instant::now() + WAIT;
    let event = loop {
        if let Some(e) = decoder.next_event() {
            break e;
        }
        assert!(Instant::now() < deadline, "no event");
        let mut buf = [0u8; 4096];
        let n = stdout.read(&mut buf).unwrap();
        assert!(n > 0, "curl's stream ended");
        decoder.feed(&buf[..n]).unwrap();
    };
    assert_eq!(event.data, "over h2");
    let _ = sub.kill();
    let _ = sub.wait();
    assert!(server.wait_metric("ssecast_subscribers", 0, WAIT));
    check(&[], "/metrics", "ssecast_published_total 1");
    // The same port still speaks HTTP/1.1.
    assert_eq!(common::get(server.port, "/healthz").status, 200);
}

#[test]
fn curl_negotiates_h2_over_tls_by_alpn() {
    let tls = SelfSigned::new("ssecast-h2tls");
    let (cert, key) = (&tls.cert, &tls.key);
    let server = Server::start(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    let url = format!("https://localhost:{}/healthz", server.port);
    let resolve = format!("localhost:{}:127.0.0.1", server.port);
    let base = ["--cacert", cert.to_str().unwrap(), "--resolve", &resolve];
    let out = curl(&[&base[..], &["--http2", "-w", " %{http_version}", &url]].concat());
    assert_eq!(out, "ok\n 2");
    let out = curl(&[&base[..], &["--http1.1", "-w", " %{http_version}", &url]].concat());
    assert_eq!(out, "ok\n 1.1");
}

async fn within<T>(bound: Duration, f: impl std::future::Future<Output = T>) -> Option<T> {
    futures_lite::future::or(async { Some(f.await) }, async {
        smol::Timer::after(bound).await;
        None
    })
    .await
}

#[test]
fn twenty_event_streams_share_one_connection() {
    let server = Server::start(&[]);
    smol::block_on(async {
        let client = Client::connect(server.port, 65_535).await;
        let mut streams = Vec::new();
        for _ in 0..20 {
            streams.push(H2Sse::open(&client, "/events?topic=many", true).await);
        }
        assert!(client.wait_metric("ssecast_subscribers", 20).await);
        // Everything, metrics included, went over the one connection.
        assert_eq!(client.metric("ssecast_connections_accepted_total").await, 1);
        for i in 0..3 {
            let (status, _) = client
                .text("POST", "/publish?topic=many", &format!("e{i}"))
                .await;
            assert_eq!(status, 200);
        }
        for sse in &mut streams {
            for i in 0..3 {
                let event = within(WAIT, sse.event()).await.flatten().expect("an event");
                assert_eq!(event.data, format!("e{i}"));
            }
        }
        drop(streams);
        assert!(client.wait_metric("ssecast_subscribers", 0).await);
    });
}

/// One stream's client stops reading (its 4 KiB window runs out) while another on the same
/// connection reads on: the stalled one is handled by `--overflow` (here `disconnect`) or
/// `--write-timeout`, and the other gets every event meanwhile.
fn a_stream_that_stops_reading(args: &[&str], reason: &str) {
    let server = Server::start(args);
    smol::block_on(async {
        let client = Client::connect(server.port, 4096).await;
        let stalled = H2Sse::open(&client, "/events?topic=flow", false).await;
        let mut reading = H2Sse::open(&client, "/events?topic=flow", true).await;
        assert!(client.wait_metric("ssecast_subscribers", 2).await);
        let data = "x".repeat(1000);
        for i in 0..60 {
            let (status, _) = client
                .text("POST", "/publish?topic=flow", &format!("{i} {data}"))
                .await;
            assert_eq!(status, 200);
            let event = within(WAIT, reading.event())
                .await
                .flatten()
                .expect("an event");
            assert!(event.data.starts_with(&format!("{i} ")), "{i}");
        }
        let sample = format!("ssecast_disconnected_total{{reason=\"{reason}\"}}");
        assert!(client.wait_metric(&sample, 1).await, "{sample}");
        assert!(client.wait_metric("ssecast_subscribers", 1).await);
        // The connection is still good for the stream that reads.
        let (status, _) = client.text("POST", "/publish?topic=flow", "after").await;
        assert_eq!(status, 200);
        let event = within(WAIT, reading.event())
            .await
            .flatten()
            .expect("an event");
        assert_eq!(event.data, "after");
        drop(stalled);
    });
}

#[test]
fn a_stalled_stream_overflows_without_stalling_the_connection() {
    a_stream_that_stops_reading(&["--queue", "4", "--overflow", "disconnect"], "overflow");
}

#[test]
fn a_stalled_stream_times_out_without_stalling_the_connection() {
    a_stream_that_stops_reading(
        &[
            "--queue",
            "4",
            "--overflow",
            "drop-newest",
            "--write-timeout",
            "1s",
        ],
        "stalled",
    );
}

// Hand-built frames (RFC 9113 4.1): for what no well-behaved client library sends.
const HEADERS: u8 = 1;
const RST_STREAM: u8 = 3;
const SETTINGS: u8 = 4;
const GOAWAY: u8 = 7;
const CONTINUATION: u8 = 9;
const END_STREAM: u8 = 1;
const END_HEADERS: u8 = 4;
const ENHANCE_YOUR_CALM: u32 = 0xb;
const REFUSED_STREAM: u32 = 0x7;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A header block (HPACK, no Huffman, no dynamic table): `GET path` and literal fields.
fn get_block(path: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    // :method GET (static 2), :scheme http (static 6).
    let mut block = vec![0x82, 0x86];
    // :path (static 4) and :authority (static 1), literal values without indexing.
    for (index, value) in [(0x04u8, path), (0x01, "127.0.0.1")] {
        block.push(index);
        block.push(value.len() as u8);
        block.extend_from_slice(value.as_bytes());
    }
    for (name, value) in extra {
        block.push(0x00);
        block.extend_from_slice(&hpack_len(name.len()));
        block.extend_from_slice(name.as_bytes());
        block.extend_from_slice(&hpack_len(value.len()));
        block.extend_from_slice(value.as_bytes());
    }
    block
}

/// An HPACK integer with a 7-bit prefix (H = 0).
fn hpack_len(mut n: usize) -> Vec<u8> {
    if n < 127 {
        return vec![n as u8];
    }
    let mut out = vec![127];
    n -= 127;
    while n >= 128 {
        out.push((n % 128 + 128) as u8);
        n /= 128;
    }
    out.push(n as u8);
    out
}

/// A raw connection: the preface and an empty SETTINGS sent.
fn raw(port: u16) -> TcpStream {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    tcp.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").unwrap();
    tcp.write_all(&frame(SETTINGS, 0, 0, &[])).unwrap();
    tcp
}

/// Frames read until the server closes (or `WAIT`): kind, flags, stream, payload.
fn frames_until_close(tcp: &mut TcpStream) -> Vec<(u8, u8, u32, Vec<u8>)> {
    let mut raw = Vec::new();
    let deadline = Instant::now() + WAIT;
    let mut buf = [0u8; 65536];
    while Instant::now() < deadline {
        match tcp.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    }
    parse_frames(&raw)
}

fn parse_frames(mut raw: &[u8]) -> Vec<(u8, u8, u32, Vec<u8>)> {
    let mut out = Vec::new();
    while raw.len() >= 9 {
        let len = (raw[0] as usize) << 16 | (raw[1] as usize) << 8 | raw[2] as usize;
        if raw.len() < 9 + len {
            break;
        }
        let stream = u32::from_be_bytes([raw[5], raw[6], raw[7], raw[8]]) & 0x7fff_ffff;
        out.push((raw[3], raw[4], stream, raw[9..9 + len].to_vec()));
        raw = &raw[9 + len..];
    }
    out
}

fn goaway_code(frames: &[(u8, u8, u32, Vec<u8>)]) -> Option<u32> {
    frames
        .iter()
        .filter(|f| f.0 == GOAWAY)
        .map(|f| u32::from_be_bytes([f.3[4], f.3[5], f.3[6], f.3[7]]))
        .next_back()
}

/// A subscriber over HTTP/1.1 that must keep receiving while a flood is refused.
fn still_flowing(server: &Server, sse: &mut common::Sse, data: &str) {
    let id = server.publish_json(&serde_json::json!({"data": data, "topic": "calm"}));
    let event = sse.event();
    assert_eq!(
        (event.data.as_str(), event.last_event_id.as_str()),
        (data, id.as_str())
    );
}

#[test]
fn rapid_reset_ends_the_connection_with_goaway_and_nothing_else() {
    let server = Server::start(&[]);
    let mut sse = common::Sse::open(server.port, "/events?topic=calm", &[]);
    assert!(server.wait_metric("ssecast_subscribers", 1, WAIT));
    let rss_before = common::rss_kib(server.child.id());
    let mut tcp = raw(server.port);
    // 5,000 streams, each opened and at once reset, in a few large writes.
    let block = get_block("/events?topic=flood", &[]);
    let mut burst = Vec::new();
    let mut sent = 0;
    for i in 0..5000u32 {
        let id = 2 * i + 1;
        burst.extend(frame(HEADERS, END_HEADERS | END_STREAM, id, &block));
        burst.extend(frame(RST_STREAM, 0, id, &8u32.to_be_bytes()));
        if burst.len() > 64 * 1024 {
            if tcp.write_all(&burst).is_err() {
                break;
            }
            sent = i;
            burst.clear();
        }
    }
    let _ = tcp.write_all(&burst);
    let frames = frames_until_close(&mut tcp);
    assert_eq!(
        goaway_code(&frames),
        Some(ENHANCE_YOUR_CALM),
        "sent {sent}: {frames:?}"
    );
    still_flowing(&server, &mut sse, "after the reset flood");
    assert!(server.wait_metric("ssecast_subscribers", 1, WAIT));
    let grown = common::rss_kib(server.child.id()).saturating_sub(rss_before);
    assert!(grown < 16 * 1024, "RSS grew by {grown} KiB");
}

#[test]
fn a_continuation_flood_ends_the_connection_with_goaway() {
    let server = Server::start(&[]);
    let mut sse = common::Sse::open(server.port, "/events?topic=calm", &[]);
    assert!(server.wait_metric("ssecast_subscribers", 1, WAIT));
    let rss_before = common::rss_kib(server.child.id());
    let mut tcp = raw(server.port);
    // A header block that never ends: HEADERS without END_HEADERS, then CONTINUATION
    // frames of small fields, up to 100,000 of them unless the server closes first.
    let mut out = frame(HEADERS, END_STREAM, 1, &get_block("/events", &[]));
    // One literal field without indexing: 0x00, name length, name, value length, value.
    let field = [&[0x00, 7][..], b"x-flood", &[1], b"y"].concat();
    for _ in 0..100_000 {
        out.extend(frame(CONTINUATION, 0, 1, &field));
        if out.len() > 64 * 1024 {
            if tcp.write_all(&out).is_err() {
                break;
            }
            out.clear();
        }
    }
    let frames = frames_until_close(&mut tcp);
    assert_eq!(goaway_code(&frames), Some(ENHANCE_YOUR_CALM), "{frames:?}");
    still_flowing(&server, &mut sse, "after the CONTINUATION flood");
    let grown = common::rss_kib(server.child.id()).saturating_sub(rss_before);
    assert!(grown < 16 * 1024, "RSS grew by {grown} KiB");
}

#[test]
fn limits_streams_per_connection_and_header_lists() {
    let server = Server::start(&["--h2-max-streams", "2"]);
    let mut tcp = raw(server.port);
    // The server's SETTINGS announce the limit (id 3, MAX_CONCURRENT_STREAMS).
    let mut head = [0u8; 9];
    tcp.read_exact(&mut head).unwrap();
    let mut payload =
        vec![0u8; (head[0] as usize) << 16 | (head[1] as usize) << 8 | head[2] as usize];
    tcp.read_exact(&mut payload).unwrap();
    assert_eq!(head[3], SETTINGS);
    let settings: Vec<(u16, u32)> = payload
        .chunks(6)
        .map(|s| {
            (
                u16::from_be_bytes([s[0], s[1]]),
                u32::from_be_bytes([s[2], s[3], s[4], s[5]]),
            )
        })
        .collect();
    assert!(settings.contains(&(3, 2)), "{settings:?}");
    assert!(settings.contains(&(6, 16 * 1024)), "{settings:?}");
    tcp.write_all(&frame(SETTINGS, 1, 0, &[])).unwrap();
    // Three event streams at once: the third is refused (the client may retry it).
    let block = get_block("/events", &[]);
    for id in [1, 3, 5] {
        tcp.write_all(&frame(HEADERS, END_HEADERS | END_STREAM, id, &block))
            .unwrap();
    }
    let mut raw_frames = Vec::new();
    let deadline = Instant::now() + WAIT;
    let mut buf = [0u8; 16384];
    let refused = loop {
        let frames = parse_frames(&raw_frames);
        if let Some(f) = frames.iter().find(|f| f.0 == RST_STREAM && f.2 == 5) {
            break u32::from_be_bytes([f.3[0], f.3[1], f.3[2], f.3[3]]);
        }
        assert!(Instant::now() < deadline, "{frames:?}");
        let n = tcp.read(&mut buf).unwrap();
        assert!(n > 0);
        raw_frames.extend_from_slice(&buf[..n]);
    };
    assert_eq!(refused, REFUSED_STREAM);
    assert!(server.wait_metric("ssecast_subscribers", 2, WAIT));
}

#[test]
fn oversized_header_lists_get_431() {
    let server = Server::start(&[]);
    smol::block_on(async {
        let client = Client::connect(server.port, 65_535).await;
        let mut req = http::Request::builder()
            .method("GET")
            .uri("http://127.0.0.1/healthz");
        for i in 0..200 {
            req = req.header(format!("x-big-{i}"), "v".repeat(100));
        }
        let req = req.body(()).unwrap();
        let mut send = client.send.clone().ready().await.unwrap();
        let (response, _) = send.send_request(req, true).unwrap();
        let res = within(WAIT, response).await.expect("an answer");
        match res {
            Ok(res) => assert_eq!(res.status(), 431),
            Err(e) => panic!("{e}"),
        }
        // The connection goes on.
        assert_eq!(
            client.text("GET", "/healthz", "").await,
            (200, "ok\n".to_owned())
        );
    });
}
