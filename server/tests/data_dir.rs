//! `--data-dir`: the history survives `kill -9`; a restarted server replays exactly what a
//! reconnecting client missed, and ids continue.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Server, Sse};
use ssecast::MISSED_EVENT_TYPE;

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
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn kill_9(mut server: Server) {
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}

fn publish(server: &Server, topic: &str, data: &str) -> String {
    server.publish_json(&serde_json::json!({ "data": data, "topic": topic }))
}

fn resume(server: &Server, topic: &str, last: &str) -> Sse {
    let sse = Sse::open(
        server.port,
        &format!("/events?topic={topic}"),
        &[("Last-Event-ID", last)],
    );
    assert_eq!(sse.status, 200);
    sse
}

/// (id, type, data) of events until none comes for a while.
fn drain(sse: &mut Sse) -> Vec<(String, String, String)> {
    std::iter::from_fn(|| sse.try_event(Duration::from_millis(400)))
        .map(|e| (e.last_event_id, e.event_type, e.data))
        .collect()
}

fn message(id: &str, data: &str) -> (String, String, String) {
    (id.to_owned(), "message".to_owned(), data.to_owned())
}

#[test]
fn after_kill_9_a_restarted_server_replays_exactly_what_was_missed_and_ids_continue() {
    let dir = TempDir::new("restart");
    let args = ["--data-dir", dir.path()];
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
    let mut back = resume(&server, "t", &seen[9].0);
    assert_eq!(drain(&mut back), sent[10..]);
    // Resuming from the publisher's own id works too.
    let mut from_custom = resume(&server, "t", "custom-1");
    assert_eq!(drain(&mut from_custom), []);
    // Ids continue: the next one is above every id before the restart.
    let next = publish(&server, "t", "after");
    let before: u64 = sent[19].0.parse().unwrap();
    assert!(
        next.parse::<u64>().unwrap() > before,
        "{next} after {before}"
    );
    assert_eq!(drain(&mut back), [message(&next, "after")]);
    // An id this history never had is a miss, followed by everything kept.
    let mut unknown = resume(&server, "t", "12345");
    let got = drain(&mut unknown);
    assert_eq!(got[0].1, MISSED_EVENT_TYPE);
    assert_eq!(got.len(), 1 + sent.len() + 1);

    // A second crash, after the restart, loses nothing either.
    kill_9(server);
    let server = Server::start(&args);
    let mut again = resume(&server, "t", &seen[9].0);
    let mut expected = sent[10..].to_vec();
    expected.push(message(&next, "after"));
    assert_eq!(drain(&mut again), expected);
}

#[test]
fn the_log_is_compacted_to_the_history_it_keeps() {
    let dir = TempDir::new("compact");
    let args = ["--data-dir", dir.path(), "--history", "5"];
    let server = Server::start(&args);
    let data = "x".repeat(1024);
    let mut ids = Vec::new();
    for _ in 0..1300 {
        ids.push(publish(&server, "t", &data));
    }
    let log = Path::new(dir.path()).join("history.log");
    let len = std::fs::metadata(&log).unwrap().len();
    // 1300 KiB were written: without compaction the log would hold all of it.
    assert!(len < 1 << 20, "log is {len} bytes");
    kill_9(server);

    let server = Server::start(&args);
    let mut recent = resume(&server, "t", &ids[1296]);
    let got: Vec<String> = drain(&mut recent).into_iter().map(|e| e.0).collect();
    assert_eq!(got, ids[1297..]);
    let mut old = resume(&server, "t", &ids[10]);
    let got = drain(&mut old);
    assert_eq!(got[0].1, MISSED_EVENT_TYPE);
    let kept: Vec<&str> = got[1..].iter().map(|e| e.0.as_str()).collect();
    assert_eq!(kept, ids[1295..]);
}

#[test]
fn a_torn_record_at_the_end_of_the_log_is_cut_off() {
    let dir = TempDir::new("torn");
    let args = ["--data-dir", dir.path()];
    let server = Server::start(&args);
    let ids: Vec<String> = (0..5)
        .map(|i| publish(&server, "t", &format!("e{i}")))
        .collect();
    kill_9(server);
    // What a crash in the middle of a write leaves: a record's start, without its end.
    let log = Path::new(dir.path()).join("history.log");
    let whole = std::fs::read(&log).unwrap();
    let mut torn = whole.clone();
    torn.extend_from_slice(&whole[..whole.len() / 5 - 3]);
    std::fs::write(&log, &torn).unwrap();

    let server = Server::start(&args);
    let mut back = resume(&server, "t", &ids[1]);
    let got: Vec<String> = drain(&mut back).into_iter().map(|e| e.2).collect();
    assert_eq!(got, ["e2", "e3", "e4"]);
    // The log goes on after the last whole record.
    let next = publish(&server, "t", "e5");
    kill_9(server);
    let server = Server::start(&args);
    let mut again = resume(&server, "t", &ids[4]);
    assert_eq!(drain(&mut again), [message(&next, "e5")]);
}
