//! The server's memory is bounded by its flags, as the README's formula says: a publisher
//! that writes far more than `--history-total-bytes` (the case issue 13 measured at 505 MiB of
//! growth in 1.5 s) grows the process by about the bound, the oldest events of the whole hub
//! are let go of and counted, and a client resuming from before them is told it missed
//! events. And an event is encoded once, however many subscribers it reaches.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::{parse_head, Server, Sse, WAIT};

/// One keep-alive connection that publishes text events: one request, then its whole answer.
struct Publisher {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Publisher {
    fn new(port: u16) -> Publisher {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        Publisher {
            stream,
            buf: Vec::new(),
        }
    }

    /// Publishes `data` to `topic` and returns the event's id.
    fn publish(&mut self, topic: &str, data: &[u8]) -> String {
        let head = format!(
            "POST /publish?topic={topic} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
            data.len()
        );
        self.stream.write_all(head.as_bytes()).unwrap();
        self.stream.write_all(data).unwrap();
        let mut chunk = [0u8; 4096];
        loop {
            if let Some((status, headers, end)) = parse_head(&self.buf) {
                let len: usize = headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                    .map(|(_, v)| v.parse().unwrap())
                    .unwrap();
                if self.buf.len() >= end + len {
                    let body = String::from_utf8_lossy(&self.buf[end..end + len]).into_owned();
                    assert_eq!(status, 200, "{body}");
                    self.buf.drain(..end + len);
                    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                    return v["id"].as_str().unwrap().to_owned();
                }
            }
            let n = self.stream.read(&mut chunk).expect("an answer");
            assert!(n > 0, "the server closed a publisher's connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// `VmRSS` and `VmHWM` (the peak) of a process, in KiB.
fn rss_and_peak_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    };
    (field("VmRSS:"), field("VmHWM:"))
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

#[test]
fn history_total_bytes_bounds_the_memory_of_a_publisher_writing_far_more() {
    // The case: 2,000 topics x 4 events x 64 KiB = 500 MiB published, each topic far
    // below --history-bytes (4 MiB) and --history (1,000), so only the global bound lets
    // events go.
    const TOPICS: usize = 2_000;
    const PER_TOPIC: usize = 4;
    const DATA: u64 = 64 * KIB;
    const TOTAL: u64 = 8 * MIB;
    const PUBLISHERS: usize = 4;
    const THREADS: u64 = 2;
    let server = Server::start(&[
        "--history-total-bytes",
        &TOTAL.to_string(),
        "--threads",
        &THREADS.to_string(),
    ]);
    let pid = server.child.id();

    // Two events before the flood: a client that saw the first must later be told it
    // missed the second.
    let mut publisher = Publisher::new(server.port);
    let first = publisher.publish("resume-me", b"first");
    publisher.publish("resume-me", b"second");
    drop(publisher);
    // The baseline: the server with its threads, buffers and one publish done.
    let _ = server.metrics();
    let (baseline, _) = rss_and_peak_kib(pid);

    std::thread::scope(|s| {
        for p in 0..PUBLISHERS {
            let port = server.port;
            s.spawn(move || {
                let mut publisher = Publisher::new(port);
                let data = vec![b'x'; DATA as usize];
                for _ in 0..PER_TOPIC {
                    for t in (p..TOPICS).step_by(PUBLISHERS) {
                        publisher.publish(&format!("t{t}"), &data);
                    }
                }
            });
        }
    });
    let published = (TOPICS * PER_TOPIC) as u64 + 2;
    assert_eq!(server.metric("ssecast_published_total"), published);
    let (rss, peak) = rss_and_peak_kib(pid);

    // The README's formula ("Memory") for this run, in bytes:
    // - history: at most TOTAL, each event charged its frame and 160 B for its index (the
    //   measured 95-170 B and 8 B per topic fit in it);
    let history = TOTAL;
    // Every frame here is at least DATA, so the history keeps at most TOTAL / DATA events.
    let events = TOTAL / DATA + 1;
    // - topics: each ~200 B plus its name (short here), TOPICS + 1 of them;
    let topics = (TOPICS as u64 + 1) * (200 + 16);
    // - connections: each reading a request holds its head (8 KiB), 4 KiB of read slack and
    //   its body;
    let connections = PUBLISHERS as u64 * (12 * KIB + DATA);
    // - publishes being made, one per executor thread: the data (twice at most) and the
    //   frame (twice while it is encoded; here the data and 30-odd bytes of id and fields).
    let frame = DATA + 64;
    let publishes = THREADS * (2 * DATA + 2 * frame);
    let bound = history + topics + connections + publishes;
    // The allowance: the allocator's slack around freed frames (held by a thread's arena
    // until reused) and what the executor and the kernel interface grow once under load.
    let allowance = 16 * MIB;
    let grown = (peak.saturating_sub(baseline)) * KIB;
    eprintln!(
        "memory: baseline {baseline} KiB, peak {peak} KiB (grew {} KiB), now {rss} KiB; \
         formula {} KiB + allowance {} KiB; {} MiB published",
        grown / KIB,
        bound / KIB,
        allowance / KIB,
        published * DATA / MIB
    );
    assert!(
        grown <= bound + allowance,
        "RSS grew by {} KiB, over the formula's {} KiB + {} KiB",
        grown / KIB,
        bound / KIB,
        allowance / KIB
    );

    let kept = server.metric("ssecast_history_bytes");
    assert!(kept <= TOTAL, "history holds {kept} bytes, over {TOTAL}");
    assert!(
        kept > TOTAL - 2 * (DATA + 64 + ssecast::HubConfig::EVENT_COST as u64),
        "history holds only {kept} bytes"
    );
    // Every event but those the bound keeps was let go of, and counted.
    let evicted = server.metric("ssecast_history_evicted_total");
    assert!(
        evicted >= published - events && evicted < published,
        "{evicted} of {published} events evicted"
    );

    // A client resuming from the first event is told it missed events.
    let mut sse = Sse::open(
        server.port,
        "/events?topic=resume-me",
        &[("Last-Event-ID", &first)],
    );
    assert_eq!(sse.status, 200);
    let missed = sse.event();
    assert_eq!(missed.event_type, "ssecast.missed");
    assert_eq!(missed.data, first);
}

#[test]
fn an_event_is_encoded_once_whatever_the_subscribers() {
    const SUBSCRIBERS: usize = 200;
    const EVENTS: usize = 20;
    let server = Server::start(&["--queue", "64", "--max-subscribers", "1000"]);
    // Half on one topic, half on that topic and another: each event reaches every one of
    // them, some through two of their topics.
    let mut subs: Vec<Sse> = (0..SUBSCRIBERS)
        .map(|i| {
            let target = if i % 2 == 0 {
                "/events?topic=news"
            } else {
                "/events?topic=news&topic=sport"
            };
            Sse::open(server.port, target, &[])
        })
        .collect();
    assert!(server.wait_metric("ssecast_subscribers", SUBSCRIBERS as u64, WAIT));
    let mut publisher = Publisher::new(server.port);
    for i in 0..EVENTS {
        publisher.publish("news", format!("event {i}").as_bytes());
    }
    for sub in &mut subs {
        let got: Vec<String> = sub.events(EVENTS).into_iter().map(|e| e.data).collect();
        let expected: Vec<String> = (0..EVENTS).map(|i| format!("event {i}")).collect();
        assert_eq!(got, expected);
    }
    let delivered = (SUBSCRIBERS * EVENTS) as u64;
    assert!(server.wait_metric("ssecast_delivered_total", delivered, WAIT));
    assert_eq!(server.metric("ssecast_published_total"), EVENTS as u64);
    assert_eq!(server.metric("ssecast_encoded_total"), EVENTS as u64);

    // The counter counts what is encoded: a resume from an unknown id adds one frame, its
    // missed marker (encoded for that subscriber alone).
    let mut late = Sse::open(
        server.port,
        "/events?topic=news",
        &[("Last-Event-ID", "unknown")],
    );
    assert_eq!(late.event().event_type, "ssecast.missed");
    assert_eq!(server.metric("ssecast_encoded_total"), EVENTS as u64 + 1);
}

#[test]
fn a_chunked_bodys_framing_costs_no_memory() {
    // 8,192 one-byte chunks, each with a 4,000-byte extension (ignored, as RFC 9112 says):
    // 32 MiB on the wire for 8 KiB of data, within --max-body.
    const CHUNKS: usize = 8_192;
    let server = Server::start(&[]);
    let pid = server.child.id();
    let _ = server.metrics();
    let (baseline, _) = rss_and_peak_kib(pid);
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream
        .write_all(b"POST /publish?topic=chunks HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n")
        .unwrap();
    let mut chunk = b"1;".to_vec();
    chunk.extend(std::iter::repeat_n(b'e', 4_000));
    chunk.extend_from_slice(b"\r\nx\r\n");
    let block = chunk.repeat(256);
    for _ in 0..CHUNKS / 256 {
        stream.write_all(&block).unwrap();
    }
    stream.write_all(b"0\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while parse_head(&answer).is_none_or(|(_, _, end)| answer.len() < end + 2) {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "closed: {:?}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&buf[..n]);
    }
    let (status, _, _) = parse_head(&answer).unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    let (_, peak) = rss_and_peak_kib(pid);
    let grown = peak.saturating_sub(baseline) * KIB;
    eprintln!(
        "chunked: {} MiB of framing for {CHUNKS} bytes: RSS grew {} KiB",
        block.len() * (CHUNKS / 256) / MIB as usize,
        grown / KIB
    );
    assert!(grown <= 4 * MIB, "RSS grew by {} KiB", grown / KIB);
    let mut sse = Sse::open(
        server.port,
        "/events?topic=chunks",
        &[("Last-Event-ID", "earliest")],
    );
    // `earliest`: the whole history, which is this one event, whole.
    assert_eq!(sse.event().data, "x".repeat(CHUNKS));
}
