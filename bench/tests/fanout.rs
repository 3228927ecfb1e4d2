//! The fan-out mode of `ssecast-bench` against a real `ssecast serve` and against its own
//! floor server: every event reaches every subscriber and the JSON line says so; non-loopback
//! targets and impossible subscriber counts are refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};

use common::{bench, bench_bin, figures, listening_port, Server};

#[test]
fn every_event_reaches_every_subscriber() {
    // A queue far larger than what 3 s at 20 events/s can leave unsent: nothing may drop.
    let server = Server::start(&["--queue", "1024", "--overflow", "drop-newest"]);
    let pid = server.child.id().to_string();
    let out = bench(&[
        "--url",
        &server.url("/events"),
        "--subscribers",
        "50",
        "--rate",
        "20",
        "--warmup",
        "1s",
        "--duration",
        "2s",
        "--server-pid",
        &pid,
        "--json",
    ]);
    let n = figures(&out);
    assert_eq!(n("/connected"), 50.0);
    assert_eq!(n("/failed"), 0.0);
    assert_eq!(n("/measured_subscribers"), 50.0);
    let in_window = n("/published/in_window");
    // 2 s at 20 events/s, give or take the edges of the window.
    assert!((38.0..=41.0).contains(&in_window), "{in_window}");
    assert_eq!(n("/published/errors"), 0.0);
    assert_eq!(n("/delivered_of_window"), in_window * 50.0);
    assert_eq!(n("/drops"), 0.0);
    assert_eq!(n("/gaps"), 0.0);
    assert_eq!(n("/latency/count"), in_window * 50.0);
    assert!(n("/latency/p99_ms") < 1000.0);
    assert!(n("/deliveries_per_sec") > 800.0);
    assert!(n("/fairness") >= 0.9);
    // Every publish reached every subscriber: the server counted them too.
    assert!(n("/received") >= n("/published/ok") * 50.0 - 50.0);
    assert!(n("/server/rss_connected_kib") > 0.0);
}

#[test]
fn the_floor_server_delivers_every_event() {
    let mut floor = Command::new(bench_bin())
        .args(["--serve-floor", "127.0.0.1:0", "--floor-lifetime", "30s"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the floor server");
    let port = listening_port(&mut floor, "http://127.0.0.1:");
    let base = format!("http://127.0.0.1:{port}");
    let out = bench(&[
        "--url",
        &format!("{base}/events"),
        "--subscribers",
        "20",
        "--rate",
        "20",
        "--warmup",
        "500ms",
        "--duration",
        "1s",
        "--json",
    ]);
    floor.kill().unwrap();
    floor.wait().unwrap();
    let n = figures(&out);
    assert_eq!(n("/connected"), 20.0);
    let in_window = n("/published/in_window");
    assert!(in_window >= 18.0, "{in_window}");
    assert_eq!(n("/delivered_of_window"), in_window * 20.0);
    assert_eq!(n("/drops"), 0.0);
}

#[test]
fn refuses_targets_off_loopback() {
    for url in [
        "http://192.0.2.1:8080/events",
        "http://example.com:80/",
        "https://127.0.0.1:1/",
    ] {
        let out = bench(&["--url", url, "--subscribers", "1"]);
        assert!(!out.status.success(), "{url}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(url), "{url}");
    }
}

#[test]
fn fails_fast_when_nothing_listens() {
    // Bind then drop a listener: its port is (almost certainly) closed for a moment.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/events");
    let started = std::time::Instant::now();
    let out = bench(&["--url", &url, "--subscribers", "5", "--warmup", "10s"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no subscriber connected"), "{stderr}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn refuses_more_subscribers_than_open_files() {
    let out = bench(&[
        "--url",
        "http://127.0.0.1:9/events",
        "--subscribers",
        "100000000",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot hold 100000000 subscribers"),
        "{stderr}"
    );
}
