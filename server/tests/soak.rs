//! The soak test: tens of thousands of subscribers connect and leave (abruptly, cleanly, and
//! in the middle of an event) while events are published at a steady rate. Afterwards the
//! subscribers, the server's open file descriptors and its memory are back at their baseline,
//! the steady subscribers got every event in order, and the counters add up.
//!
//! `SSECAST_SOAK_CYCLES` sets the number of connect/disconnect cycles (default 20,000).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{fds, parse_head, rss_kib, Server, Sse, WAIT};

/// Subscribers that stay for the whole run and must receive everything.
const STEADY: usize = 4;
/// Subscribers opened, then closed, at once.
const BATCH: usize = 100;

/// One keep-alive connection that publishes to `topic` (pipelining-safe: one request, then
/// its whole response).
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

    fn publish(&mut self, topic: &str, data: &str) {
        let request = format!(
            "POST /publish?topic={topic} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{data}",
            data.len()
        );
        self.stream.write_all(request.as_bytes()).unwrap();
        let mut chunk = [0u8; 4096];
        loop {
            if let Some((status, headers, end)) = parse_head(&self.buf) {
                let len: usize = headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                    .map(|(_, v)| v.parse().unwrap())
                    .unwrap();
                if self.buf.len() >= end + len {
                    assert_eq!(status, 200, "{:?}", String::from_utf8_lossy(&self.buf));
                    self.buf.drain(..end + len);
                    return;
                }
            }
            let n = self.stream.read(&mut chunk).expect("a publish answer");
            assert!(n > 0, "the publish connection closed");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Opens `BATCH` subscribers and closes them in three ways.
fn churn(port: u16) {
    let request = b"GET /events?topic=soak HTTP/1.1\r\nHost: x\r\n\r\n";
    let streams: Vec<TcpStream> = (0..BATCH)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.write_all(request).unwrap();
            s
        })
        .collect();
    for (i, mut stream) in streams.into_iter().enumerate() {
        match i % 3 {
            // Abrupt: a reset, perhaps before the server has even read the request.
            0 => {
                socket2::SockRef::from(&stream)
                    .set_linger(Some(Duration::ZERO))
                    .unwrap();
            }
            // Clean: the head arrives, then the client ends the connection.
            1 => {
                read_head(&mut stream);
                let _ = stream.shutdown(Shutdown::Both);
            }
            // In the middle of an event: part of the stream read, the rest left unread.
            _ => {
                read_head(&mut stream);
                let mut seen = Vec::new();
                let mut part = [0u8; 700];
                // Bounded by the read timeout: events arrive every few milliseconds.
                while !seen.windows(6).any(|w| w == b"data: ") {
                    match stream.read(&mut part) {
                        Ok(n) if n > 0 => seen.extend_from_slice(&part[..n]),
                        _ => break,
                    }
                }
            }
        }
    }
}

fn read_head(stream: &mut TcpStream) {
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).expect("a response head");
        assert_eq!(n, 1, "closed before the head");
        raw.push(byte[0]);
    }
    assert!(
        raw.starts_with(b"HTTP/1.1 200 "),
        "{:?}",
        String::from_utf8_lossy(&raw)
    );
}

#[test]
fn subscribers_come_and_go_by_the_ten_thousand_and_everything_returns_to_its_baseline() {
    let cycles: usize = std::env::var("SSECAST_SOAK_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let batches = cycles.div_ceil(BATCH);
    let server = Server::start(&[
        "--queue",
        "4096",
        "--keepalive",
        "0",
        "--max-subscribers",
        "1000",
    ]);
    let port = server.port;
    let pid = server.child.id();
    let mut steady: Vec<Sse> = (0..STEADY)
        .map(|_| Sse::open(port, "/events?topic=soak", &[]))
        .collect();
    assert!(server.wait_metric("ssecast_subscribers", STEADY as u64, WAIT));
    let mut publisher = Publisher::new(port);
    // The steady subscribers read on their own threads.
    let stop = Arc::new(AtomicBool::new(false));
    let total = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = steady
        .drain(..)
        .map(|mut sse| {
            std::thread::spawn(move || {
                let mut got = Vec::new();
                // Bounded by the wait bound between events.
                while let Some(e) = sse.try_event(WAIT) {
                    let n: usize = e.data.split(' ').next().unwrap().parse().unwrap();
                    got.push(n);
                    if e.data.ends_with(" end") {
                        break;
                    }
                }
                (got, sse)
            })
        })
        .collect();
    // Events of about 2 KB every 2 ms, so that closes land in the middle of one.
    let publishing = {
        let (stop, total) = (Arc::clone(&stop), Arc::clone(&total));
        std::thread::spawn(move || {
            let payload = "x".repeat(2000);
            let start = Instant::now();
            while !stop.load(Ordering::SeqCst) && start.elapsed() < Duration::from_secs(300) {
                let n = total.load(Ordering::SeqCst);
                publisher.publish("soak", &format!("{n} {payload}"));
                total.store(n + 1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(2));
            }
            publisher
        })
    };
    // Warm up (threads, allocator arenas, buffers) before the baseline.
    for _ in 0..3 {
        churn(port);
    }
    assert!(server.wait_metric("ssecast_subscribers", STEADY as u64, WAIT));
    let fds_before = fds(pid);
    let rss_before = rss_kib(pid);
    let start = Instant::now();
    for _ in 0..batches {
        churn(port);
    }
    let churn_time = start.elapsed();
    stop.store(true, Ordering::SeqCst);
    let mut publisher = publishing.join().unwrap();
    let published = total.load(Ordering::SeqCst);
    publisher.publish("soak", &format!("{published} end"));
    let published = published + 1;
    let mut steady = Vec::new();
    for reader in readers {
        let (got, sse) = reader.join().unwrap();
        assert_eq!(
            got,
            (0..published).collect::<Vec<_>>(),
            "a steady subscriber lost or reordered events"
        );
        steady.push(sse);
    }
    eprintln!(
        "soak: {} cycles in {churn_time:?} while publishing {published} events",
        batches * BATCH
    );

    // Every subscriber that left is gone, and ended once.
    assert!(
        server.wait_metric("ssecast_subscribers", STEADY as u64, WAIT),
        "subscribers: {}",
        server.metric("ssecast_subscribers")
    );
    let subscribed = server.metric("ssecast_subscriptions_total");
    let ended: u64 = ["client_gone", "overflow", "stalled", "shutdown"]
        .iter()
        .map(|r| server.metric(&format!("ssecast_disconnected_total{{reason=\"{r}\"}}")))
        .sum();
    assert_eq!(ended, subscribed - STEADY as u64, "every stream ended once");
    // The clean and mid-event ones had surely subscribed; the abrupt ones perhaps.
    let churned = (batches * BATCH) as u64 + 3 * BATCH as u64;
    assert!(
        subscribed - STEADY as u64 >= churned * 2 / 3 && subscribed - STEADY as u64 <= churned,
        "{subscribed} subscriptions for {churned} cycles"
    );
    assert_eq!(server.metric("ssecast_published_total"), published as u64);
    assert_eq!(server.metric("ssecast_subscriptions_refused_total"), 0);

    // With only the steady subscribers left, every event is delivered to each or dropped.
    let delivered = server.metric("ssecast_delivered_total");
    let dropped = server.metric("ssecast_dropped_total");
    for k in 0..100 {
        publisher.publish("soak", &format!("after {k}"));
    }
    for sse in &mut steady {
        for k in 0..100 {
            assert_eq!(sse.event().data, format!("after {k}"));
        }
    }
    assert_eq!(
        server.metric("ssecast_delivered_total") + server.metric("ssecast_dropped_total"),
        delivered + dropped + 100 * STEADY as u64
    );

    // Back to the baseline: no socket kept, memory within a margin.
    assert!(
        common::wait_until(WAIT, || fds(pid) <= fds_before + 2),
        "fds {fds_before} -> {}",
        fds(pid)
    );
    let rss_after = rss_kib(pid);
    eprintln!(
        "soak: RSS {rss_before} KiB -> {rss_after} KiB, fds {fds_before} -> {}",
        fds(pid)
    );
    assert!(
        rss_after <= rss_before + 8 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
}
