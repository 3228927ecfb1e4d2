//! Each overflow policy, with one subscriber that stops reading while two others keep
//! receiving every event, in order.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{wait_until, Server, Sse, WAIT};

/// Big events fill the stalled client's socket buffers quickly, so its queue overflows.
fn payload(i: usize) -> String {
    format!("{i} {}", "x".repeat(64 * 1024))
}

fn index(data: &str) -> Option<usize> {
    data.split(' ').next()?.parse().ok()
}

struct Run {
    server: Server,
    stalled: Sse,
    readers: Vec<Sse>,
    /// Events published before "end".
    published: usize,
}

/// Starts a server with `policy`, one stalled and two reading subscribers; publishes until
/// the policy has acted (bounded), then "end". Checks the readers got everything in order.
fn run(policy: &str, acted: &str) -> Run {
    run_with(&["--overflow", policy], acted)
}

fn run_with(flags: &[&str], acted: &str) -> Run {
    // Room for 32 frames: the stalled client overflows (it reads nothing), while the readers
    // never fall more than 16 behind (the publisher waits for them).
    let mut args = vec!["--queue", "32", "--keepalive", "0"];
    args.extend_from_slice(flags);
    let server = Server::start(&args);
    let stalled = Sse::open(server.port, "/events", &[]);
    let received: Vec<Arc<AtomicUsize>> = (0..2).map(|_| Arc::default()).collect();
    let readers: Vec<_> = received
        .iter()
        .map(|received| {
            let mut sse = Sse::open(server.port, "/events", &[]);
            let received = Arc::clone(received);
            std::thread::spawn(move || {
                let mut got = Vec::new();
                loop {
                    let e = sse.event();
                    if e.data == "end" {
                        return (got, sse);
                    }
                    got.push(index(&e.data).unwrap());
                    received.store(got.len(), Ordering::SeqCst);
                }
            })
        })
        .collect();
    assert!(server.wait_metric("ssecast_subscribers", 3, WAIT));
    let mut published = 0;
    // At most 20 batches of 3 MiB: far more than loopback socket buffers hold.
    for _ in 0..20 {
        for _ in 0..50 {
            // However slowly the machine runs the readers, they keep up: whatever the
            // policy does, it does to the stalled subscriber alone.
            let behind = |r: &Arc<AtomicUsize>| published - r.load(Ordering::SeqCst) <= 16;
            assert!(
                wait_until(WAIT, || received.iter().all(behind)),
                "the readers stopped reading"
            );
            server.publish(&payload(published));
            published += 1;
        }
        if server.metric(acted) > 0 {
            break;
        }
    }
    assert!(server.metric(acted) > 0, "{acted} after {published} events");
    server.publish("end");
    let readers = readers
        .into_iter()
        .map(|reader| {
            let (got, sse) = reader.join().expect("reader thread");
            assert_eq!(
                got,
                (0..published).collect::<Vec<_>>(),
                "a reading subscriber got everything in order"
            );
            sse
        })
        .collect();
    Run {
        server,
        stalled,
        readers,
        published,
    }
}

/// Reads what the stalled subscriber gets from now on, until `stop` says so (bounded).
fn drain(sse: &mut Sse, mut stop: impl FnMut(&str) -> bool) -> Vec<String> {
    let mut got = Vec::new();
    while let Some(e) = sse.try_event(WAIT) {
        // Only the index of a big payload, so a failure message stays readable.
        let label = match index(&e.data) {
            Some(i) => i.to_string(),
            None => e.data,
        };
        let done = stop(&label);
        got.push(label);
        if done {
            break;
        }
    }
    got
}

/// What the subscriber receives within `bound`.
fn drain_for(sse: &mut Sse, bound: Duration) -> Vec<String> {
    let mut got = Vec::new();
    while let Some(e) = sse.try_event(bound) {
        got.push(match index(&e.data) {
            Some(i) => i.to_string(),
            None => e.data,
        });
    }
    got
}

fn assert_increasing_with_a_gap(indices: &[usize], published: usize) {
    assert!(
        indices.windows(2).all(|w| w[0] < w[1]),
        "in order, no duplicate: {indices:?}"
    );
    assert!(indices.len() < published, "some events were dropped");
}

#[test]
fn drop_newest_keeps_the_oldest_and_the_stream_open() {
    let mut run = run("drop-newest", "ssecast_dropped_total");
    // The queue kept the oldest events and "end" was dropped. Once the client reads again,
    // its queue empties and later events arrive again: publish until one does (bounded).
    let mut got = Vec::new();
    let deadline = Instant::now() + WAIT;
    for k in 0.. {
        run.server.publish(&format!("after-{k}"));
        got.extend(drain_for(&mut run.stalled, Duration::from_millis(200)));
        if got.iter().any(|d| d.starts_with("after-")) || Instant::now() > deadline {
            break;
        }
    }
    assert!(
        got.iter().any(|d| d.starts_with("after-")),
        "the stream stayed open: {got:?}"
    );
    assert!(
        !got.iter().any(|d| d == "end"),
        "the newest event was dropped"
    );
    let indices: Vec<usize> = got.iter().filter_map(|d| index(d)).collect();
    assert_eq!(indices.first(), Some(&0), "the oldest events were kept");
    assert_increasing_with_a_gap(&indices, run.published);
    assert_eq!(run.server.metric("ssecast_subscribers"), 3);
}

#[test]
fn drop_oldest_keeps_the_newest_and_the_stream_open() {
    let mut run = run("drop-oldest", "ssecast_dropped_total");
    let got = drain(&mut run.stalled, |d| d == "end");
    assert_eq!(
        got.last().map(String::as_str),
        Some("end"),
        "the newest event was kept"
    );
    let indices: Vec<usize> = got.iter().filter_map(|d| index(d)).collect();
    assert_increasing_with_a_gap(&indices, run.published);
    assert_eq!(run.server.metric("ssecast_subscribers"), 3);
}

#[test]
fn disconnect_closes_the_stalled_stream_only() {
    let mut run = run(
        "disconnect",
        "ssecast_disconnected_total{reason=\"overflow\"}",
    );
    assert_eq!(run.server.metric("ssecast_dropped_total"), 0);
    // What was already in flight arrives, in order, and then the stream ends.
    let got = drain(&mut run.stalled, |_| false);
    assert!(run.stalled.eof, "the stalled stream was closed");
    let indices: Vec<usize> = got.iter().filter_map(|d| index(d)).collect();
    assert_eq!(indices, (0..indices.len()).collect::<Vec<_>>());
    assert!(run.server.wait_metric("ssecast_subscribers", 2, WAIT));
    // The others are still subscribed and still receive.
    assert_eq!(
        run.server
            .metric("ssecast_disconnected_total{reason=\"overflow\"}"),
        1
    );
    run.server.publish("still here");
    for reader in &mut run.readers {
        assert_eq!(reader.event().data, "still here");
    }
}

#[test]
fn a_stream_whose_writes_stall_past_the_write_timeout_is_closed() {
    let mut run = run_with(&["--write-timeout", "1s"], "ssecast_dropped_total");
    // The stalled client never reads, so its writes stay blocked: closed after about 1 s.
    assert!(run
        .server
        .wait_metric("ssecast_disconnected_total{reason=\"stalled\"}", 1, WAIT));
    assert!(run.server.wait_metric("ssecast_subscribers", 2, WAIT));
    drain(&mut run.stalled, |_| false);
    assert!(run.stalled.eof, "the stalled stream ended");
    // The readers, idle but reading, were not touched.
    run.server.publish("still here");
    for reader in &mut run.readers {
        assert_eq!(reader.event().data, "still here");
    }
    assert_eq!(
        run.server
            .metric("ssecast_disconnected_total{reason=\"stalled\"}"),
        1
    );
}
