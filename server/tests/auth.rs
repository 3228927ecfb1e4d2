//! Authentication end to end: `--subscribe-token` on `GET /events` (a Bearer header or the
//! `ssecast_token` cookie), `--publish-token`, CORS with credentials for a cookie-carrying
//! EventSource, and tokens kept out of every log line and error message.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{post, raw_request, Server, Sse, WAIT};

const TOKEN: &str = "sub-T0ken_x";

/// `GET target` with extra headers, read to the end.
fn get_with(port: u16, target: &str, headers: &[(&str, &str)]) -> common::Reply {
    let mut req = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    raw_request(port, req.as_bytes())
}

#[test]
fn events_need_the_subscribe_token_as_bearer_or_cookie() {
    let server = Server::start(&["--subscribe-token", TOKEN]);
    let port = server.port;
    let cookie_ok = format!("theme=dark; ssecast_token={TOKEN}; lang=en");
    let bearer_ok = format!("Bearer {TOKEN}");
    let bearer_lower = format!("bearer {TOKEN}");
    let refused = [
        vec![],
        vec![("Authorization", "Bearer wrong")],
        vec![("Authorization", TOKEN)],
        vec![("Authorization", "Bearer sub-T0ken_")],
        vec![("Authorization", "Bearer sub-T0ken_xx")],
        vec![("Cookie", "ssecast_token=wrong")],
        vec![("Cookie", "other_token=sub-T0ken_x")],
        vec![("Cookie", "xssecast_token=sub-T0ken_x")],
    ];
    for headers in &refused {
        let reply = get_with(port, "/events", headers);
        assert_eq!(reply.status, 401, "{headers:?}");
        assert_eq!(
            reply.header("WWW-Authenticate"),
            Some("Bearer"),
            "{headers:?}"
        );
        assert_eq!(
            reply.text(),
            "a valid Authorization: Bearer token or ssecast_token cookie is required\n"
        );
    }
    assert_eq!(server.metric("ssecast_subscribers"), 0);
    let accepted = [
        vec![("Authorization", bearer_ok.as_str())],
        vec![("Authorization", bearer_lower.as_str())],
        vec![("Cookie", cookie_ok.as_str())],
        // A wrong header does not hide a right cookie.
        vec![
            ("Authorization", "Bearer wrong"),
            ("Cookie", cookie_ok.as_str()),
        ],
    ];
    let mut streams: Vec<Sse> = accepted
        .iter()
        .map(|headers| {
            let sse = Sse::open(port, "/events", headers);
            assert_eq!(sse.status, 200, "{headers:?}");
            sse
        })
        .collect();
    assert!(server.wait_metric("ssecast_subscribers", accepted.len() as u64, WAIT));
    // Publishing is not subscribing: a loopback publisher needs no token.
    server.publish("for subscribers");
    for sse in &mut streams {
        assert_eq!(sse.event().data, "for subscribers");
    }
    // The other routes stay open.
    assert_eq!(common::get(port, "/healthz").status, 200);
    assert_eq!(common::get(port, "/metrics").status, 200);
}

#[test]
fn the_publish_token_is_needed_from_loopback_too_and_is_not_a_subscribe_token() {
    let server = Server::start(&["--publish-token", "pub-1", "--subscribe-token", "sub-1"]);
    let port = server.port;
    let mut sse = Sse::open(port, "/events", &[("Authorization", "Bearer sub-1")]);
    assert_eq!(sse.status, 200);
    for auth in [None, Some("Bearer sub-1"), Some("Bearer pub-")] {
        let headers: Vec<_> = auth.map(|a| ("Authorization", a)).into_iter().collect();
        let reply = post(port, "/publish", "text/plain", b"no", &headers);
        assert_eq!(reply.status, 401, "{auth:?}");
    }
    let publisher_as_subscriber = Sse::open(port, "/events", &[("Authorization", "Bearer pub-1")]);
    assert_eq!(publisher_as_subscriber.status, 401);
    let reply = post(
        port,
        "/publish",
        "text/plain",
        b"yes",
        &[("Authorization", "Bearer pub-1")],
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(sse.event().data, "yes");
}

#[test]
fn a_cookie_event_source_from_a_named_origin_gets_credentialed_cors() {
    let origin = "https://app.example";
    let server = Server::start(&["--subscribe-token", TOKEN, "--cors-origin", origin]);
    let port = server.port;
    // The preflight a fetch with an Authorization header sends first.
    let preflight = raw_request(
        port,
        format!(
            "OPTIONS /events HTTP/1.1\r\nHost: x\r\nOrigin: {origin}\r\nAccess-Control-Request-Method: GET\r\nAccess-Control-Request-Headers: authorization\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    );
    assert_eq!(preflight.status, 204);
    assert_eq!(
        preflight.header("Access-Control-Allow-Origin"),
        Some(origin)
    );
    assert_eq!(
        preflight.header("Access-Control-Allow-Credentials"),
        Some("true")
    );
    assert!(preflight
        .header("Access-Control-Allow-Headers")
        .unwrap()
        .contains("Authorization"));
    // `new EventSource(url, { withCredentials: true })`: the cookie and the Origin.
    let cookie = format!("ssecast_token={TOKEN}");
    let sse = Sse::open(port, "/events", &[("Origin", origin), ("Cookie", &cookie)]);
    assert_eq!(sse.status, 200);
    assert_eq!(sse.header("Access-Control-Allow-Origin"), Some(origin));
    assert_eq!(sse.header("Access-Control-Allow-Credentials"), Some("true"));
    // A refusal is readable by the page too (so it can tell 401 from a network error).
    let refused = Sse::open(port, "/events", &[("Origin", origin)]);
    assert_eq!(refused.status, 401);
    assert_eq!(refused.header("Access-Control-Allow-Origin"), Some(origin));
    // Another origin gets nothing to read.
    let other = Sse::open(
        port,
        "/events",
        &[("Origin", "https://evil.example"), ("Cookie", &cookie)],
    );
    assert_eq!(other.header("Access-Control-Allow-Origin"), None);
    assert_eq!(other.header("Access-Control-Allow-Credentials"), None);
    drop(server);

    // `*` reflects any origin but never with credentials: any site could read a signed-in
    // user's streams otherwise.
    let server = Server::start(&["--cors-origin", "*"]);
    let sse = Sse::open(server.port, "/events", &[("Origin", origin)]);
    assert_eq!(sse.header("Access-Control-Allow-Origin"), Some(origin));
    assert_eq!(sse.header("Access-Control-Allow-Credentials"), None);
}

/// Runs `ssecast serve <args>` logging everything (trace) to a pipe; `during` gets the port
/// if it started. Returns whether it exited successfully (after a SIGTERM, or by itself when
/// refused) and its stderr.
fn run_logged(args: &[&str], during: impl FnOnce(u16)) -> (bool, String) {
    let mut child = Command::new(common::bin())
        .args(["serve", "--addr", "127.0.0.1:0", "--tick", "0"])
        .args(args)
        .env("SSECAST_LOG", "trace")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        let mut lines = std::io::BufReader::new(stdout).lines();
        let _ = tx.send(lines.next().and_then(Result::ok));
        lines.for_each(drop);
    });
    // The first line has the port; a refused start prints none.
    let line = rx.recv_timeout(WAIT).ok().flatten();
    if let Some(line) = line {
        let port = line.rsplit(':').next().unwrap().parse().unwrap();
        during(port);
        let _ = Command::new("kill")
            .args(["-s", "TERM", &child.id().to_string()])
            .status();
    }
    let deadline = Instant::now() + WAIT;
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let status = child.wait().unwrap();
    (status.success(), err_reader.join().unwrap())
}

#[test]
fn tokens_appear_in_no_log_line_or_error_message() {
    let (sub, publ) = ("subSECRETzz9", "pubSECRETqq7");
    let (ok, log) = run_logged(
        &["--subscribe-token", sub, "--publish-token", publ],
        |port| {
            // Right and wrong tokens, in every place they can travel.
            for headers in [
                vec![("Authorization", format!("Bearer {sub}"))],
                vec![("Cookie", format!("ssecast_token={sub}"))],
                vec![("Authorization", format!("Bearer {sub}x"))],
                vec![("Cookie", format!("ssecast_token={publ}"))],
            ] {
                let headers: Vec<_> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
                let sse = Sse::open(port, "/events", &headers);
                assert!(sse.status == 200 || sse.status == 401);
            }
            for auth in [format!("Bearer {publ}"), format!("Bearer {publ}x")] {
                post(
                    port,
                    "/publish",
                    "text/plain",
                    b"x",
                    &[("Authorization", &auth)],
                );
            }
        },
    );
    assert!(ok, "{log}");
    // The log is not empty (trace): the test would otherwise prove nothing.
    assert!(log.contains("subscribed as"), "{log}");
    assert!(!log.contains("SECRET"), "a token was logged:\n{log}");

    // A token refused at start is named by its flag, not repeated.
    let (ok, log) = run_logged(&["--subscribe-token", "has SECRET space"], |_| {
        panic!("started with a bad token")
    });
    assert!(!ok);
    assert!(log.contains("--subscribe-token"), "{log}");
    assert_eq!(log.lines().count(), 1, "{log}");
    assert!(!log.contains("SECRET"), "{log}");
    let (ok, log) = run_logged(&["--publish-token", ""], |_| panic!("started"));
    assert!(!ok);
    assert!(log.contains("--publish-token"), "{log}");
}

#[test]
fn a_static_token_and_a_jwt_key_for_one_role_refuse_to_start() {
    for (args, flag) in [
        (
            ["--jwt-key", "keySECRET1", "--publish-token", "tokSECRET2"],
            "--publish-token",
        ),
        (
            [
                "--subscriber-jwt-key",
                "keySECRET1",
                "--subscribe-token",
                "tokSECRET2",
            ],
            "--subscribe-token",
        ),
    ] {
        let (ok, log) = run_logged(&args, |_| panic!("started with {args:?}"));
        assert!(!ok);
        assert!(log.contains(flag) && log.contains("use one"), "{log}");
        assert_eq!(log.lines().count(), 1, "{log}");
        assert!(!log.contains("SECRET"), "{log}");
    }
    // One role each way is fine: static tokens for publishers, JWTs for subscribers.
    let (ok, log) = run_logged(
        &[
            "--subscriber-jwt-key",
            "keySECRET1",
            "--publish-token",
            "tokSECRET2",
        ],
        |_| {},
    );
    assert!(ok, "{log}");
}
