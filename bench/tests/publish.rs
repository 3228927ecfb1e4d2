//! `ssecast-bench publish` against a real `ssecast serve`: every acknowledged event reaches
//! every subscriber, exactly, with and without pipelining, text and JSON; refusals are counted
//! by status; targets off loopback are refused. Only counts that must hold exactly are
//! checked, never a rate.
//!
//! The NDJSON batch publish is checked against a stub in this file (`ndjson_stub`), for the
//! framing only (one JSON event a line, the ids of the answer counted), until the server
//! takes NDJSON: it is not a benchmark of anything.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{bench, report, Server};
use serde_json::Value;

/// A queue far deeper than what a short run can leave unsent to a subscriber: nothing may
/// drop, however slowly the machine runs the subscribers.
const SERVER: &[&str] = &["--queue", "1000000", "--overflow", "drop-newest"];

/// Runs `ssecast-bench publish` against `server` with `args`, and checks what must hold in
/// any valid run; returns the JSON line.
fn publish_valid(server: &Server, args: &[&str]) -> Value {
    let url = server.url("/publish");
    let pid = server.pid();
    let base = [
        "publish",
        "--url",
        &url,
        "--server-pid",
        &pid,
        "--warmup",
        "200ms",
        "--duration",
        "1s",
        "--drain",
        "30s",
        "--json",
    ];
    let out = bench(&[&base[..], args].concat());
    let r = report(&out);
    let n = |path: &str| {
        r.pointer(path)
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("{path} in {r}"))
    };
    assert_eq!(r["valid"], true, "{r}");
    assert_eq!(n("/requests/non_2xx"), 0, "{r}");
    assert_eq!(n("/requests/unanswered"), 0, "{r}");
    assert!(n("/acked") > 0, "{r}");
    // Every request answered 200, each for one event (text and JSON bodies).
    assert_eq!(n("/requests/by_status/200"), n("/requests/sent"), "{r}");
    assert_eq!(n("/acked"), n("/requests/sent"), "{r}");
    // The delivery check: acknowledged events x subscribers = deliveries, none missing, none
    // extra, and so for each subscriber.
    let subscribers = n("/subscribers");
    assert_eq!(n("/connected"), subscribers, "{r}");
    assert_eq!(n("/deliveries/subscribers"), subscribers, "{r}");
    assert_eq!(n("/deliveries/expected"), n("/acked") * subscribers, "{r}");
    assert_eq!(n("/deliveries/received"), n("/deliveries/expected"), "{r}");
    assert_eq!(n("/deliveries/shortfall"), 0, "{r}");
    assert_eq!(n("/deliveries/extra"), 0, "{r}");
    assert_eq!(n("/deliveries/min_per_subscriber"), n("/acked"), "{r}");
    assert_eq!(n("/deliveries/max_per_subscriber"), n("/acked"), "{r}");
    assert_eq!(n("/unparsed"), 0, "{r}");
    r
}

#[test]
fn every_acknowledged_text_event_reaches_every_subscriber() {
    let server = Server::start(SERVER);
    let r = publish_valid(
        &server,
        &[
            "--connections",
            "4",
            "--pipeline",
            "1",
            "--subscribers",
            "10",
        ],
    );
    assert_eq!(r["pipeline"], 1);
    assert_eq!(r["body"], "text");
    assert!(r["server"]["cpu_us_per_publish"].is_number(), "{r}");
}

#[test]
fn pipelined_json_events_reach_every_subscriber_of_their_topic() {
    let server = Server::start(SERVER);
    let r = publish_valid(
        &server,
        &[
            "--connections",
            "3",
            "--pipeline",
            "16",
            "--body",
            "json",
            "--topic",
            "bench",
            "--subscribers",
            "5",
        ],
    );
    assert_eq!(r["pipeline"], 16);
    assert_eq!(r["subscribe_url"], server.url("/events?topic=bench"));
    // 16 in flight on each connection at the end: all of them answered and counted.
    assert!(r["acked"].as_u64().unwrap() >= 48, "{r}");
}

#[test]
fn refusals_are_counted_by_status_and_invalidate_the_run() {
    // A token is required and the generator sends none: every POST is answered 401.
    let server = Server::start(&["--publish-token", "s3cret"]);
    let url = server.url("/publish");
    let out = bench(&[
        "publish",
        "--url",
        &url,
        "--connections",
        "2",
        "--pipeline",
        "4",
        "--subscribers",
        "2",
        "--warmup",
        "0s",
        "--duration",
        "300ms",
        "--json",
    ]);
    let r = report(&out);
    let sent = r["requests"]["sent"].as_u64().unwrap();
    assert!(sent > 0, "{r}");
    assert_eq!(
        r["requests"]["by_status"]["401"].as_u64(),
        Some(sent),
        "{r}"
    );
    assert_eq!(r["requests"]["non_2xx"].as_u64(), Some(sent), "{r}");
    assert_eq!(r["acked"], 0, "{r}");
    assert_eq!(r["deliveries"]["received"], 0, "{r}");
    assert_eq!(r["valid"], false, "{r}");
    let why = r["invalid_because"].to_string();
    assert!(why.contains("answers were not 2xx"), "{why}");
    assert!(
        r["requests"]["first_refusal"]
            .as_str()
            .unwrap()
            .starts_with("401"),
        "{r}"
    );
}

#[test]
fn refuses_targets_off_loopback_and_impossible_flags() {
    let ok = "http://127.0.0.1:9/publish";
    for (args, reason) in [
        (&["--url", "http://192.0.2.1:8080/publish"][..], "192.0.2.1"),
        (&["--url", "http://example.com:80/publish"], "example.com"),
        (&["--url", "https://127.0.0.1:1/publish"], "https://"),
        (
            &["--url", ok, "--subscribe-url", "http://10.0.0.1:80/events"],
            "10.0.0.1",
        ),
        (
            &["--url", ok, "--target-kind", "nchan", "--body", "json"],
            "use --body text",
        ),
        (&["--url", ok, "--batch", "5"], "--batch goes with"),
        (&["--url", ok, "--connections", "0"], "--connections"),
        (&["--url", ok, "--pipeline", "0"], "--pipeline"),
    ] {
        let out = bench(&[&["publish"][..], args].concat());
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(reason), "{args:?}: {stderr}");
    }
}

/// What the NDJSON stub saw: every event's data, in arrival order.
type Seen = Arc<Mutex<Vec<String>>>;

/// A stand-in for a server that takes NDJSON batches, for the framing only: it reads
/// keep-alive (and pipelined) POSTs, checks each is `application/x-ndjson` with one JSON
/// event (`data`, `topic`) a line, and answers each with `ids` of the given count per line
/// (one per event unless `ids_per_line` says otherwise).
fn ndjson_stub(ids_per_line: usize) -> (u16, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let record = record.clone();
            std::thread::spawn(move || serve_ndjson(stream, ids_per_line, &record));
        }
    });
    (port, seen)
}

fn serve_ndjson(mut stream: TcpStream, ids_per_line: usize, seen: &Seen) {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut input = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let mut next_id = 0u64;
    loop {
        // Every complete request in the input, in order.
        while let Some(head_end) = input.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8(input[..head_end].to_vec()).unwrap();
            let header = |name: &str| {
                head.lines()
                    .find_map(|l| {
                        let (n, v) = l.split_once(':')?;
                        n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
                    })
                    .unwrap_or_else(|| panic!("no {name} in {head:?}"))
            };
            assert!(head.starts_with("POST /publish HTTP/1.1\r\n"), "{head:?}");
            assert_eq!(header("content-type"), "application/x-ndjson");
            let length: usize = header("content-length").parse().unwrap();
            let start = head_end + 4;
            if input.len() < start + length {
                break;
            }
            let body = String::from_utf8(input[start..start + length].to_vec()).unwrap();
            input.drain(..start + length);
            assert!(body.ends_with('\n'), "{body:?}");
            let mut ids = Vec::new();
            for line in body.lines() {
                let event: Value = serde_json::from_str(line).unwrap();
                assert_eq!(event["topic"], "batch", "{line}");
                seen.lock()
                    .unwrap()
                    .push(event["data"].as_str().unwrap().to_owned());
                for _ in 0..ids_per_line {
                    next_id += 1;
                    ids.push(next_id.to_string());
                }
            }
            let answer = serde_json::json!({ "ids": ids }).to_string();
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}",
                answer.len()
            );
            if stream.write_all(reply.as_bytes()).is_err() {
                return;
            }
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => input.extend_from_slice(&buf[..n]),
        }
    }
}

fn publish_ndjson(port: u16) -> Value {
    let url = format!("http://127.0.0.1:{port}/publish");
    let out = bench(&[
        "publish",
        "--url",
        &url,
        "--body",
        "ndjson",
        "--batch",
        "5",
        "--topic",
        "batch",
        "--connections",
        "2",
        "--pipeline",
        "4",
        "--subscribers",
        "0",
        "--warmup",
        "0s",
        "--duration",
        "300ms",
        "--json",
    ]);
    report(&out)
}

#[test]
fn ndjson_batches_are_framed_one_event_a_line_against_a_stub() {
    let (port, seen) = ndjson_stub(1);
    let r = publish_ndjson(port);
    let sent = r["requests"]["sent"].as_u64().unwrap();
    assert!(sent > 0, "{r}");
    assert_eq!(
        r["requests"]["by_status"]["200"].as_u64(),
        Some(sent),
        "{r}"
    );
    assert_eq!(r["acked"].as_u64(), Some(sent * 5), "{r}");
    assert_eq!(r["requests"]["id_mismatches"], 0, "{r}");
    assert_eq!(r["valid"], true, "{r}");
    // Every event the stub read is `<seq> <µs>`, each seq once: 0, 1, ... acked - 1.
    let seen = seen.lock().unwrap();
    let seqs: BTreeSet<u64> = seen
        .iter()
        .map(|data| data.split(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(seqs.len(), seen.len(), "a sequence number twice");
    assert_eq!(seen.len() as u64, sent * 5);
    assert_eq!(seqs.last().copied(), Some(sent * 5 - 1));
}

#[test]
fn ndjson_answers_without_one_id_per_event_are_counted() {
    let (port, _) = ndjson_stub(2);
    let r = publish_ndjson(port);
    let sent = r["requests"]["sent"].as_u64().unwrap();
    assert_eq!(r["requests"]["id_mismatches"].as_u64(), Some(sent), "{r}");
    assert_eq!(r["valid"], false, "{r}");
}
