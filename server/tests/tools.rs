//! The client tools of the binary: `decode`, `listen`, `publish`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;

use common::{bin, Server, Sse, WAIT};

/// A spawned tool, killed on drop; its stdout lines arrive on a channel.
struct Tool {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Tool {
    fn spawn(args: &[&str], stdin: Stdio) -> Tool {
        let mut child = Command::new(bin())
            .args(args)
            .env("SSECAST_LOG", "warn")
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn");
        let stdout: ChildStdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Tool { child, lines }
    }

    fn line(&self) -> String {
        self.lines
            .recv_timeout(WAIT)
            .expect("a line within the wait bound")
    }

    /// The lines left once the tool's stdout closed (waits for it, bounded).
    fn rest(&self) -> Vec<String> {
        let deadline = std::time::Instant::now() + WAIT;
        let mut rest = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => rest.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => return rest,
                Err(mpsc::RecvTimeoutError::Timeout) => panic!("stdout still open: {rest:?}"),
            }
        }
    }
}

impl Drop for Tool {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn decode_prints_each_event_as_its_bytes_arrive() {
    let mut tool = Tool::spawn(&["decode"], Stdio::piped());
    let mut stdin = tool.child.stdin.take().unwrap();
    // Each piece completes one event only together with the next one: the event's line must
    // appear before the rest of the input is written (not after EOF).
    let pieces: [(&[u8], Option<&str>); 6] = [
        (b"\xEF\xBB\xBFretry: 2500\r\nid: 1\r\ndata: first\r", None),
        (
            b"\n\r\n",
            Some(r#"{"type": "message", "data": "first", "last_event_id": "1"}"#),
        ),
        (b"event: up\ndata: a\nda", None),
        (
            b"ta: b\n\n: comment\n\n",
            Some(r#"{"type": "up", "data": "a\nb", "last_event_id": "1"}"#),
        ),
        (
            b"data:  \"quoted\" \xC3\xA9\r\rdata\n\n",
            Some(r#"{"type": "message", "data": " \"quoted\" é", "last_event_id": "1"}"#),
        ),
        (b"data: unterminated", None),
    ];
    for (bytes, expected) in pieces {
        stdin.write_all(bytes).unwrap();
        stdin.flush().unwrap();
        if let Some(expected) = expected {
            assert_eq!(tool.line(), expected);
        }
    }
    drop(stdin);
    // The CR CR above dispatched " \"quoted\" é"; the bare "data" line then started an event
    // with empty data that the blank line dispatched.
    assert_eq!(
        tool.line(),
        r#"{"type": "message", "data": "", "last_event_id": "1"}"#
    );
    assert_eq!(tool.line(), r#"{"retry": 2500}"#);
    let status = tool.child.wait().unwrap();
    assert!(status.success());
    assert_eq!(
        tool.rest(),
        Vec::<String>::new(),
        "nothing after the retry line"
    );
}

#[test]
fn decode_without_retry_prints_no_retry_line() {
    let mut tool = Tool::spawn(&["decode"], Stdio::piped());
    let mut stdin = tool.child.stdin.take().unwrap();
    stdin.write_all(b"data: x\n\nretry: abc\n\n").unwrap();
    drop(stdin);
    assert_eq!(
        tool.line(),
        r#"{"type": "message", "data": "x", "last_event_id": ""}"#
    );
    assert!(tool.child.wait().unwrap().success());
    assert_eq!(tool.rest(), Vec::<String>::new());
}

/// `ssecast decode ARGS` on `input`: its stdout lines, its stderr, whether it succeeded.
fn decode(args: &[&str], input: &[u8]) -> (Vec<String>, String, bool) {
    let mut child = Command::new(bin())
        .arg("decode")
        .args(args)
        .env("SSECAST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    // Written from a thread: the tool's output must be read meanwhile.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let lines = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    (
        lines,
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.success(),
    )
}

fn data_of(line: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    v["data"].as_str().unwrap().to_owned()
}

#[test]
fn decode_limits_are_flags() {
    // The default takes what browsers take: 1 MiB of data on one line, with its field name.
    let big = format!("data: {}\n\ndata: next\n\n", "x".repeat(1 << 20));
    let (lines, stderr, ok) = decode(&[], big.as_bytes());
    assert!(ok, "{stderr}");
    let data: Vec<usize> = lines.iter().map(|l| data_of(l).len()).collect();
    assert_eq!(data, [1 << 20, 4], "{stderr}");

    // A line of --max-line bytes (field name included) is taken, one more is skipped with
    // its event and a warning, and the rest is decoded.
    let input = b"data: 1234\n\ndata: 12345\n\ndata: ok\n\n";
    let (lines, stderr, ok) = decode(&["--max-line", "10"], input);
    assert!(ok);
    let data: Vec<String> = lines.iter().map(|l| data_of(l)).collect();
    assert_eq!(data, ["1234", "ok"]);
    assert!(
        stderr.contains("line longer than 10 bytes; skipped"),
        "{stderr}"
    );
    // The same with --max-event: data of 4 bytes is taken, 5 are not.
    let input = b"data: 12\ndata: 1\n\ndata: 12345\n\ndata: ok\n\n";
    let (lines, stderr, ok) = decode(&["--max-event", "4"], input);
    assert!(ok);
    let data: Vec<String> = lines.iter().map(|l| data_of(l)).collect();
    assert_eq!(data, ["12\n1", "ok"]);
    assert!(
        stderr.contains("event larger than 4 bytes; skipped"),
        "{stderr}"
    );
    // Nonsense is refused before anything is read.
    for bad in [["--max-line", "0"], ["--max-event", "many"]] {
        let (lines, stderr, ok) = decode(&bad, b"data: x\n\n");
        assert!(!ok && lines.is_empty(), "{bad:?}: {stderr}");
        assert!(stderr.contains(bad[0]), "{bad:?}: {stderr}");
    }
}

#[test]
fn listen_takes_the_same_limits() {
    let server = Server::start(&[]);
    let url = server.url("/events");
    let default = Tool::spawn(&["listen", "--json", &url], Stdio::null());
    let small = Tool::spawn(
        &[
            "listen",
            "--json",
            "--max-line",
            "64",
            "--max-event",
            "1000",
            &url,
        ],
        Stdio::null(),
    );
    assert!(server.wait_metric("ssecast_subscribers", 2, WAIT));
    // The largest publish the server takes (--max-body, 1 MiB): one data line of 1 MiB.
    let big = "y".repeat(1 << 20);
    let reply = common::post(server.port, "/publish", "text/plain", big.as_bytes(), &[]);
    assert_eq!(reply.status, 200, "{}", reply.text());
    server.publish(&"z".repeat(100));
    // Short lines, 1,019 bytes of data in all.
    let many = vec!["w".repeat(50); 20].join("\n");
    server.publish(&many);
    server.publish("last");
    assert_eq!(data_of(&default.line()), big);
    assert_eq!(data_of(&default.line()).len(), 100);
    assert_eq!(data_of(&default.line()), many);
    assert_eq!(data_of(&default.line()), "last");
    // Over --max-line (the first two) and --max-event (the third): skipped, and the
    // listener goes on.
    assert_eq!(data_of(&small.line()), "last");
}

#[test]
fn publish_tool_prints_the_id() {
    let server = Server::start(&[]);
    let mut sse = Sse::open(server.port, "/events?topic=news", &[]);
    assert!(server.wait_metric("ssecast_subscribers", 1, WAIT));
    let url = server.url("");
    let tool = Tool::spawn(
        &[
            "publish",
            &url,
            "extra, extra",
            "--event",
            "headline",
            "--topic",
            "news",
        ],
        Stdio::null(),
    );
    let id = tool.line();
    let e = sse.event();
    assert_eq!(
        (e.event_type.as_str(), e.data.as_str()),
        ("headline", "extra, extra")
    );
    assert_eq!(e.last_event_id, id);
    // A refused publish exits non-zero.
    let status = Command::new(bin())
        .args(["publish", &url, "x", "--event", "bad\nname"])
        .env("SSECAST_LOG", "off")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success());
}

#[test]
fn listen_reconnects_across_a_server_restart_with_last_event_id() {
    let server = Server::start(&["--retry", "100ms"]);
    let port = server.port;
    let url = server.url("/events");
    let listen = Tool::spawn(&["listen", "--json", &url], Stdio::null());
    assert!(server.wait_metric("ssecast_subscribers", 1, WAIT));
    let ids: Vec<String> = (1..=3)
        .map(|i| server.publish(&format!("before {i}")))
        .collect();
    for (i, id) in ids.iter().enumerate() {
        let expected = serde_json::json!({"type": "message", "data": format!("before {}", i + 1), "last_event_id": id});
        let got: serde_json::Value = serde_json::from_str(&listen.line()).unwrap();
        assert_eq!(got, expected);
    }
    drop(server);
    // The same port again; the listener retries every 100 ms meanwhile.
    let addr = format!("127.0.0.1:{port}");
    let server = Server::start_on(&addr, &["--retry", "100ms"]);
    assert!(server.wait_metric("ssecast_subscribers", 1, WAIT));
    // The new hub does not know id 3 (no shared history): the listener's Last-Event-ID gets
    // the documented "missed" marker, whose data is the id it sent.
    let marker: serde_json::Value = serde_json::from_str(&listen.line()).unwrap();
    assert_eq!(marker["type"], ssecast::MISSED_EVENT_TYPE);
    assert_eq!(marker["data"], ids[2].as_str());
    server.publish("after");
    let got: serde_json::Value = serde_json::from_str(&listen.line()).unwrap();
    assert_eq!(got["data"], "after");
}

#[test]
fn listen_prints_a_readable_form_by_default() {
    let server = Server::start(&[]);
    let listen = Tool::spawn(&["listen", &server.url("/events")], Stdio::null());
    assert!(server.wait_metric("ssecast_subscribers", 1, WAIT));
    let first = server.publish("one");
    assert_eq!(listen.line(), format!("message id={first}: one"));
    let second = server.publish("two\nlines");
    assert_eq!(listen.line(), format!("message id={second}: two"));
    assert_eq!(listen.line(), "  lines");
}

#[test]
fn help_documents_every_serve_flag_and_its_environment_variable() {
    let out = Command::new(bin())
        .args(["serve", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "addr",
        "tick",
        "keepalive",
        "retry",
        "queue",
        "overflow",
        "history",
        "history-bytes",
        "max-topics",
        "max-subscribers",
        "publish-token",
        "subscribe-token",
        "tls-cert",
        "tls-key",
        "cors-origin",
        "www",
        "max-body",
        "threads",
    ] {
        assert!(help.contains(&format!("--{flag} ")), "--{flag} in\n{help}");
        let env = format!("SSECAST_{}", flag.to_uppercase().replace('-', "_"));
        assert!(help.contains(&env), "{env} in\n{help}");
    }
    for policy in ["drop-newest", "drop-oldest", "disconnect"] {
        assert!(help.contains(policy), "{policy}");
    }
}

#[test]
fn environment_variables_set_the_flags() {
    let server = Server::start_with(
        "127.0.0.1:0",
        &[],
        &[
            ("SSECAST_TICK", "100ms"),
            ("SSECAST_CORS_ORIGIN", "http://a.example,http://b.example"),
        ],
    );
    let mut sse = Sse::open(server.port, "/events", &[("Origin", "http://b.example")]);
    assert_eq!(
        sse.header("Access-Control-Allow-Origin"),
        Some("http://b.example")
    );
    assert!(sse.event().data.starts_with("tick "));
    let out = Command::new(bin())
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("SSECAST_TICK", "soon")
        .env("SSECAST_LOG", "off")
        .output()
        .unwrap();
    assert!(!out.status.success(), "an invalid SSECAST_TICK is refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("soon"));
}
