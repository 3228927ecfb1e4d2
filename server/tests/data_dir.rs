//! `--data-dir`: the history survives `kill -9` and damage to the log; a restarted server
//! replays exactly what a reconnecting client missed, and ids continue; one process per
//! directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use common::{bin, get, Server, Sse, WAIT};
use ssecast::MISSED_EVENT_TYPE;

/// The keep-alive of every server here: a stream's first `: ping` marks the end of its
/// replay (the hub pings a subscriber only once everything queued for it has been written).
const KEEPALIVE: &str = "300ms";

/// A fresh directory under the system's temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "ssecast-test-{name}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }

    fn log(&self) -> PathBuf {
        self.0.join("history.log")
    }

    /// The names of the files in the directory, sorted.
    fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    fn damaged_copies(&self) -> Vec<String> {
        self.files()
            .into_iter()
            .filter(|f| f.starts_with("history.log.damaged-"))
            .collect()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `--data-dir dir --keepalive KEEPALIVE` and `extra`.
fn args<'a>(dir: &'a TempDir, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--data-dir", dir.path(), "--keepalive", KEEPALIVE];
    args.extend_from_slice(extra);
    args
}

fn kill_9(mut server: Server) {
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}

fn publish(server: &Server, topic: &str, data: &str) -> String {
    server.publish_json(&serde_json::json!({ "data": data, "topic": topic }))
}

type Ev = (String, String, String);

fn message(id: &str, data: &str) -> Ev {
    (id.to_owned(), "message".to_owned(), data.to_owned())
}

/// Opens `target` with `Last-Event-ID: last` and reads until the hub has nothing left for the
/// stream: through its first keep-alive. Returns the body up to and including that ping.
fn replay_bytes(server: &Server, target: &str, last: &str) -> Vec<u8> {
    let mut sse = Sse::open(server.port, target, &[("Last-Event-ID", last)]);
    assert_eq!(sse.status, 200, "{target} from {last}");
    until_ping(&mut sse)
}

fn until_ping(sse: &mut Sse) -> Vec<u8> {
    const PING: &[u8] = b"\n: ping\n\n";
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(at) = sse.body.windows(PING.len()).position(|w| w == PING) {
            return sse.body[..at + PING.len()].to_vec();
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero() && !sse.eof,
            "no keep-alive after the replay"
        );
        sse.read_some(left);
    }
}

/// The events (id, type, data) `topic` replays to a client resuming after `last`.
fn replay(server: &Server, topic: &str, last: &str) -> Vec<Ev> {
    let body = replay_bytes(server, &format!("/events?topic={topic}"), last);
    let mut decoder = ssecast::Decoder::new();
    decoder.feed(&body).unwrap();
    std::iter::from_fn(|| decoder.next_event())
        .map(|e| (e.last_event_id, e.event_type, e.data))
        .collect()
}

#[test]
fn after_kill_9_a_restarted_server_replays_exactly_what_was_missed_and_ids_continue() {
    let dir = TempDir::new("restart");
    let args = args(&dir, &[]);
    let server = Server::start(&args);
    let mut sub = Sse::open(server.port, "/events?topic=t", &[]);
    let mut sent = Vec::new();
    for i in 0..20 {
        let data = format!("e{i}\nsecond line");
        sent.push(message(&publish(&server, "t", &data), &data));
        publish(&server, "other", &format!("o{i}"));
    }
    let typed = server.publish_json(&serde_json::json!({
        "data": "typed", "topic": "t", "event": "note", "id": "custom-1"
    }));
    sent.push((typed, "note".to_owned(), "typed".to_owned()));
    let seen: Vec<_> = sub
        .events(10)
        .into_iter()
        .map(|e| (e.last_event_id, e.event_type, e.data))
        .collect();
    assert_eq!(seen, sent[..10]);
    kill_9(server);

    let server = Server::start(&args);
    assert_eq!(replay(&server, "t", &seen[9].0), sent[10..]);
    // Resuming from the publisher's own id works too.
    assert_eq!(replay(&server, "t", "custom-1"), []);
    // Ids continue: the next one is above every id before the restart.
    let mut live = Sse::open(
        server.port,
        "/events?topic=t",
        &[("Last-Event-ID", "custom-1")],
    );
    let next = publish(&server, "t", "after");
    let before: u64 = sent[19].0.parse().unwrap();
    assert!(
        next.parse::<u64>().unwrap() > before,
        "{next} after {before}"
    );
    let e = live.event();
    assert_eq!(
        (e.last_event_id, e.data),
        (next.clone(), "after".to_owned())
    );
    // An id this history never had is a miss, followed by everything kept.
    let got = replay(&server, "t", "12345");
    assert_eq!(got[0].1, MISSED_EVENT_TYPE);
    assert_eq!(got.len(), 1 + sent.len() + 1);

    // A second crash, after the restart, loses nothing either.
    kill_9(server);
    let server = Server::start(&args);
    let mut expected = sent[10..].to_vec();
    expected.push(message(&next, "after"));
    assert_eq!(replay(&server, "t", &seen[9].0), expected);
}

#[test]
fn the_log_is_compacted_to_the_history_it_keeps() {
    let dir = TempDir::new("compact");
    let args = args(&dir, &["--history", "5"]);
    let server = Server::start(&args);
    let data = "x".repeat(1024);
    let mut ids = Vec::new();
    for _ in 0..1300 {
        ids.push(publish(&server, "t", &data));
    }
    let len = std::fs::metadata(dir.log()).unwrap().len();
    // 1300 KiB were written: without compaction the log would hold all of it.
    assert!(len < 1 << 20, "log is {len} bytes");
    kill_9(server);

    let server = Server::start(&args);
    let got: Vec<String> = replay(&server, "t", &ids[1296])
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(got, ids[1297..]);
    let got = replay(&server, "t", &ids[10]);
    assert_eq!(got[0].1, MISSED_EVENT_TYPE);
    let kept: Vec<&str> = got[1..].iter().map(|e| e.0.as_str()).collect();
    assert_eq!(kept, ids[1295..]);
}

#[test]
fn a_torn_record_at_the_end_of_the_log_is_cut_off() {
    // What a crash in the middle of a write leaves: the start of a record without its end,
    // either of a record being appended, or of the last record itself.
    type Tear = fn(&[u8]) -> Vec<u8>;
    let cases: [(&str, Tear, usize); 2] = [
        (
            "a partial record appended",
            |whole| {
                let mut torn = whole.to_vec();
                torn.extend_from_slice(&whole[..whole.len() / 5 - 3]);
                torn
            },
            5,
        ),
        (
            "the last record cut short",
            |whole| whole[..whole.len() - 3].to_vec(),
            4,
        ),
    ];
    for (case, tear, kept) in cases {
        let dir = TempDir::new("torn");
        let args = args(&dir, &[]);
        let server = Server::start(&args);
        let ids: Vec<String> = (0..5)
            .map(|i| publish(&server, "t", &format!("e{i}")))
            .collect();
        kill_9(server);
        let whole = std::fs::read(dir.log()).unwrap();
        std::fs::write(dir.log(), tear(&whole)).unwrap();

        let (server, log) = Server::start_logged(&args);
        let got: Vec<String> = replay(&server, "t", &ids[1])
            .into_iter()
            .map(|e| e.2)
            .collect();
        let expected: Vec<String> = (2..kept).map(|i| format!("e{i}")).collect();
        assert_eq!(got, expected, "{case}");
        // Cut silently: a torn tail is not damage (nothing acknowledged was in it).
        assert_eq!(dir.damaged_copies(), Vec::<String>::new(), "{case}");
        // The log goes on after the last whole record.
        let next = publish(&server, "t", "next");
        kill_9(server);
        assert_eq!(log.all(), "", "{case}");
        let server = Server::start(&args);
        assert_eq!(
            replay(&server, "t", &ids[kept - 1]),
            [message(&next, "next")],
            "{case}"
        );
    }
}

#[test]
fn a_damaged_record_is_skipped_and_everything_after_it_restored() {
    // Where one byte is flipped in a record in the middle of the log: in its data (the
    // record's length is intact: the next one starts where it ends), in its length or its
    // first byte (where it ends is unknown: the next record is found by scanning).
    // Records are of equal size here: the 101st starts at 100 sizes.
    type Target = fn(usize) -> usize;
    let cases: [(&str, Target); 3] = [
        ("a byte of data", |size| 100 * size + size / 2),
        ("a length", |size| 100 * size + 4),
        ("the first byte of a record", |size| 100 * size),
    ];
    for (case, target) in cases {
        let dir = TempDir::new("damaged");
        let args = args(&dir, &[]);
        let server = Server::start(&args);
        let ids: Vec<String> = (0..200)
            .map(|i| publish(&server, "t", &format!("event {i:03}")))
            .collect();
        kill_9(server);
        let mut bytes = std::fs::read(dir.log()).unwrap();
        assert_eq!(bytes.len() % 200, 0, "records of one size");
        let at = target(bytes.len() / 200);
        bytes[at] ^= 0x20;
        std::fs::write(dir.log(), &bytes).unwrap();

        let (server, log) = Server::start_logged(&args);
        // The damaged log is kept aside, byte for byte, and a clean one replaces it.
        let aside = dir.damaged_copies();
        assert_eq!(aside.len(), 1, "{case}: {:?}", dir.files());
        assert_eq!(
            std::fs::read(dir.0.join(&aside[0])).unwrap(),
            bytes,
            "{case}"
        );
        let warning = log.wait_for("damaged record");
        let expected = format!(
            "skipped 1 damaged record ({} bytes at offset {}), {} bytes in all, and restored \
             the 199 others; the damaged log is kept as {}",
            bytes.len() / 200,
            100 * (bytes.len() / 200),
            bytes.len() / 200,
            dir.0.join(&aside[0]).display()
        );
        assert!(warning.contains(&expected), "{case}: {warning}");
        assert_eq!(warning.lines().count(), 1, "{case}: {warning}");
        // Resuming from before the damage: told that something is missing, then every
        // event but one, in order.
        let got = replay(&server, "t", &ids[0]);
        assert_eq!(got[0].1, MISSED_EVENT_TYPE, "{case}");
        let got: Vec<&str> = got[1..].iter().map(|e| e.0.as_str()).collect();
        let lost: Vec<&String> = ids[1..]
            .iter()
            .filter(|id| !got.contains(&id.as_str()))
            .collect();
        assert_eq!(lost.len(), 1, "{case}: lost {lost:?}");
        assert_eq!(got.len(), 198, "{case}");
        assert!(got.windows(2).all(|w| w[0] < w[1]), "{case}: {got:?}");
        // Resuming after the damage misses nothing.
        assert_eq!(
            replay(&server, "t", &ids[198]),
            [message(&ids[199], "event 199")]
        );

        // The clean log restores the same again, with no new damage.
        let next = publish(&server, "t", "next");
        kill_9(server);
        let (server, log) = Server::start_logged(&args);
        let again = replay(&server, "t", &ids[0]);
        assert_eq!(again.len(), 1 + 198 + 1, "{case}");
        assert_eq!(again.last().unwrap().0, next, "{case}");
        assert_eq!(dir.damaged_copies(), aside, "{case}");
        kill_9(server);
        assert_eq!(log.all(), "", "{case}");
    }
}

#[test]
fn a_second_server_on_the_same_directory_refuses_to_start() {
    let dir = TempDir::new("lock");
    // Temporaries of a compaction that a crash interrupted.
    for stale in ["history.log.tmp", "history.log.tmp.4242"] {
        std::fs::write(dir.0.join(stale), b"half a log").unwrap();
    }
    let first = Server::start(&args(&dir, &[]));
    let id = publish(&first, "t", "one");
    assert_eq!(dir.files(), ["history.log", "lock"]);

    let second = Command::new(bin())
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--tick",
            "0",
            "--data-dir",
            dir.path(),
        ])
        .env("SSECAST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = second.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(second.wait_with_output());
    });
    let output = match rx.recv_timeout(WAIT) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("the second server is still running after {WAIT:?}");
        }
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let expected = format!(
        "--data-dir {}: already in use by another ssecast process ({}/lock is locked)",
        dir.path(),
        dir.path()
    );
    assert!(stderr.contains(&expected), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    // The first goes on as if nothing happened.
    assert_eq!(get(first.port, "/healthz").status, 200);
    let two = publish(&first, "t", "two");
    assert_eq!(replay(&first, "t", &id), [message(&two, "two")]);
    drop(first);
    // The lock goes with the process: a new server may start.
    let third = Server::start(&args(&dir, &[]));
    assert_eq!(replay(&third, "t", &id), [message(&two, "two")]);
}

/// Long topic names: a record (which holds the topic) is far larger than its frame (which
/// does not), so a byte bound counted on records would keep fewer events than the hub.
fn long_topic(name: &str) -> String {
    format!("{name}-{}", "t".repeat(240))
}

#[test]
fn a_restart_restores_exactly_the_history_the_hub_held() {
    let dir = TempDir::new("retention");
    let args = args(
        &dir,
        &[
            "--history",
            "4",
            "--history-bytes",
            "400",
            "--max-topics",
            "5",
        ],
    );
    let server = Server::start(&args);
    let mut published: Vec<(String, Vec<String>)> = Vec::new();
    let mut publish_to = |server: &Server, topic: &str, n: usize, data: &str| {
        let ids = (0..n).map(|_| publish(server, topic, data)).collect();
        published.push((topic.to_owned(), ids));
    };
    let (a, b, r, c, d) = (
        long_topic("a"),
        long_topic("b"),
        long_topic("r"),
        long_topic("c"),
        "d".to_owned(),
    );
    publish_to(&server, &a, 6, "e");
    publish_to(&server, &b, 6, "e");
    publish_to(&server, "early", 1, "e");
    publish_to(&server, &r, 6, "e");
    // Enough to compact the log (1.2 MiB, none of it kept: each event is over
    // --history-bytes).
    publish_to(&server, "bulk", 24, &"x".repeat(50 << 10));
    // Two more topics: the two published to longest ago (a, b) are forgotten.
    publish_to(&server, &c, 6, "e");
    publish_to(&server, &d, 3, "e");
    let len = std::fs::metadata(dir.log()).unwrap().len();
    assert!(len < 1 << 20, "the log was not compacted: {len} bytes");

    // Each topic resumed from each of its ids, and from an unknown one; all topics at once.
    // Left out: the newest id a topic let go of, and the newest id of a forgotten topic.
    // Before the restart the hub knows these ids are its own and resumes after them; after
    // it, every id below the new instance's first one that is not in the history is unknown
    // (`HubConfig::first_seq`), so they get `ssecast.missed` first. A hub matter, not the
    // log's.
    let skip = |topic: &str, i: usize| {
        (topic == r || topic == c) && i == 1 || topic == b && i == 5 || topic == "bulk" && i == 23
    };
    let mut cases: Vec<(String, String)> = Vec::new();
    for (topic, ids) in &published {
        for (i, id) in ids.iter().enumerate() {
            if !skip(topic, i) {
                cases.push((format!("/events?topic={topic}"), id.clone()));
            }
        }
        cases.push((format!("/events?topic={topic}"), "unknown".to_owned()));
    }
    // (Not with bulk: whether the hub still knows that topic after a restart depends on
    // which of its events came after the last compaction.)
    let all = format!("/events?topic=early&topic={r}&topic={c}&topic={d}");
    cases.push((all.clone(), published[3].1[3].clone()));
    cases.push((all, "unknown".to_owned()));
    // From early's one event: r let events after it go before the compaction, which only
    // the eviction mark that the compaction wrote for r can tell after the restart.
    let early_and_r = format!("/events?topic=early&topic={r}");
    cases.push((early_and_r.clone(), published[2].1[0].clone()));

    let before = replays(&server, &cases);
    // What the hub held: r kept its 4 newest, c its 4, d all 3, the forgotten ones nothing.
    let count = |target: &str, last: &str| {
        let i = cases
            .iter()
            .position(|c| c.0 == target && c.1 == last)
            .unwrap();
        before[i].windows(3).filter(|w| *w == b"id:").count()
    };
    assert_eq!(count(&format!("/events?topic={r}"), "unknown"), 4);
    assert_eq!(count(&format!("/events?topic={c}"), "unknown"), 4);
    assert_eq!(count("/events?topic=d", "unknown"), 3);
    assert_eq!(count(&format!("/events?topic={a}"), "unknown"), 0);
    let i = cases.len() - 1;
    assert!(
        String::from_utf8_lossy(&before[i]).contains("ssecast.missed"),
        "{}",
        String::from_utf8_lossy(&before[i])
    );
    kill_9(server);

    let server = Server::start(&args);
    let after = replays(&server, &cases);
    for ((target, last), (before, after)) in cases.iter().zip(before.iter().zip(&after)) {
        assert_eq!(
            String::from_utf8_lossy(after),
            String::from_utf8_lossy(before),
            "{target} from {last}"
        );
    }
}

/// The replay of every case, read concurrently (each waits for a keep-alive).
fn replays(server: &Server, cases: &[(String, String)]) -> Vec<Vec<u8>> {
    let mut streams: Vec<Sse> = cases
        .iter()
        .map(|(target, last)| {
            let sse = Sse::open(server.port, target, &[("Last-Event-ID", last)]);
            assert_eq!(sse.status, 200, "{target} from {last}");
            sse
        })
        .collect();
    streams.iter_mut().map(until_ping).collect()
}
