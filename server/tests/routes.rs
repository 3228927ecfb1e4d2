//! Static files, methods, CORS, publish authorization, metrics and health.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use common::{get, post, raw_request, Server, Sse, WAIT};

/// A fresh static directory for one test (removed on drop).
struct Www(PathBuf);

impl Www {
    fn new(name: &str) -> Www {
        let dir = std::env::temp_dir().join(format!("ssecast-www-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("pkg")).unwrap();
        std::fs::write(dir.join("index.html"), "<!doctype html><title>t</title>").unwrap();
        std::fs::write(dir.join("app.js"), "export {};").unwrap();
        std::fs::write(dir.join("pkg/core_bg.wasm"), b"\0asm\x01\0\0\0").unwrap();
        std::fs::write(dir.join("style.css"), "body{}").unwrap();
        std::fs::write(dir.join(".secret"), "hidden").unwrap();
        Www(dir)
    }

    fn arg(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for Www {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn static_files_with_content_types_and_no_traversal() {
    let www = Www::new("static");
    let server = Server::start(&["--www", www.arg()]);
    let port = server.port;
    for (path, ct, body) in [
        (
            "/",
            "text/html; charset=utf-8",
            &b"<!doctype html><title>t</title>"[..],
        ),
        (
            "/index.html",
            "text/html; charset=utf-8",
            b"<!doctype html><title>t</title>",
        ),
        ("/app.js", "text/javascript; charset=utf-8", b"export {};"),
        ("/style.css", "text/css; charset=utf-8", b"body{}"),
        ("/pkg/core_bg.wasm", "application/wasm", b"\0asm\x01\0\0\0"),
    ] {
        let reply = get(port, path);
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(reply.header("Content-Type"), Some(ct), "{path}");
        assert_eq!(reply.body, body, "{path}");
    }
    for path in [
        "/missing.html",
        "/pkg/nothing.wasm",
        "/../Cargo.toml",
        "/pkg/../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/..%2f..%2fetc%2fpasswd",
        "/.secret",
        "/pkg/..%5c..%5cindex.html",
    ] {
        assert_eq!(get(port, path).status, 404, "{path}");
    }
    let head = raw_request(
        port,
        b"HEAD /app.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(head.status, 200);
    assert_eq!(head.header("Content-Length"), Some("10"));
    assert!(head.body.is_empty());
}

#[test]
fn a_wrong_method_gets_405_with_allow() {
    let www = Www::new("methods");
    let server = Server::start(&["--www", www.arg()]);
    for (method, path, allow) in [
        ("POST", "/", "GET, HEAD, OPTIONS"),
        ("DELETE", "/app.js", "GET, HEAD, OPTIONS"),
        ("POST", "/events", "GET, OPTIONS"),
        ("GET", "/publish", "POST, OPTIONS"),
        ("PUT", "/metrics", "GET, HEAD, OPTIONS"),
        ("POST", "/healthz", "GET, HEAD, OPTIONS"),
    ] {
        let reply = raw_request(
            server.port,
            format!("{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        assert_eq!(reply.status, 405, "{method} {path}");
        assert_eq!(reply.header("Allow"), Some(allow), "{method} {path}");
    }
}

#[test]
fn cors_reflects_allowed_origins_only() {
    let server = Server::start(&[
        "--cors-origin",
        "http://a.example",
        "--cors-origin",
        "http://b.example",
    ]);
    let port = server.port;
    let with_origin = |method: &str, path: &str, origin: &str| {
        raw_request(
            port,
            format!(
                "{method} {path} HTTP/1.1\r\nHost: x\r\nOrigin: {origin}\r\nAccess-Control-Request-Method: POST\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        )
    };
    let ok = with_origin("GET", "/healthz", "http://b.example");
    assert_eq!(
        ok.header("Access-Control-Allow-Origin"),
        Some("http://b.example")
    );
    assert_eq!(ok.header("Vary"), Some("Origin"));
    let other = with_origin("GET", "/healthz", "http://evil.example");
    assert_eq!(other.header("Access-Control-Allow-Origin"), None);
    assert_eq!(other.header("Vary"), Some("Origin"));
    let preflight = with_origin("OPTIONS", "/publish", "http://a.example");
    assert_eq!(preflight.status, 204);
    assert_eq!(
        preflight.header("Access-Control-Allow-Origin"),
        Some("http://a.example")
    );
    assert_eq!(
        preflight.header("Access-Control-Allow-Methods"),
        Some("POST, OPTIONS")
    );
    assert!(preflight
        .header("Access-Control-Allow-Headers")
        .unwrap()
        .contains("Last-Event-ID"));
    assert_eq!(preflight.header("Vary"), Some("Origin"));
    let sse = Sse::open(port, "/events", &[("Origin", "http://a.example")]);
    assert_eq!(
        sse.header("Access-Control-Allow-Origin"),
        Some("http://a.example")
    );
    drop(server);

    // None by default.
    let server = Server::start(&[]);
    let reply = raw_request(
        server.port,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nOrigin: http://a.example\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("Access-Control-Allow-Origin"), None);
    assert_eq!(reply.header("Vary"), None);
}

#[test]
fn a_publish_token_is_required_when_set() {
    let server = Server::start(&["--publish-token", "s3cret"]);
    let port = server.port;
    let mut sse = Sse::open(port, "/events", &[]);
    for headers in [
        vec![],
        vec![("Authorization", "Bearer wrong")],
        vec![("Authorization", "s3cret")],
    ] {
        let reply = post(port, "/publish", "text/plain", b"nope", &headers);
        assert_eq!(reply.status, 401, "{headers:?}");
        assert_eq!(reply.header("WWW-Authenticate"), Some("Bearer"));
    }
    let reply = post(
        port,
        "/publish",
        "text/plain",
        b"yes",
        &[("Authorization", "Bearer s3cret")],
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        sse.event().data,
        "yes",
        "only the authorized event was published"
    );
    assert_eq!(server.metric("ssecast_published_total"), 1);
}

#[test]
fn metrics_count_what_happened() {
    let server = Server::start(&[]);
    assert_eq!(get(server.port, "/healthz").status, 200);
    let mut a = Sse::open(server.port, "/events", &[]);
    let mut b = Sse::open(server.port, "/events", &[]);
    assert!(server.wait_metric("ssecast_subscribers", 2, WAIT));
    for i in 0..3 {
        server.publish(&format!("m{i}"));
    }
    a.events(3);
    b.events(3);
    let text = server.metrics();
    for line in [
        "# TYPE ssecast_subscribers gauge",
        "ssecast_subscribers 2",
        "ssecast_published_total 3",
        "ssecast_delivered_total 6",
        "ssecast_dropped_total 0",
        "ssecast_replayed_total 0",
        "ssecast_disconnected_total{reason=\"overflow\"} 0",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} in\n{text}");
    }
    assert!(server.metric("ssecast_connections_accepted_total") >= 6);
    assert!(server.metric("ssecast_bytes_written_total") > 0);
    let reply = get(server.port, "/metrics");
    assert!(reply
        .header("Content-Type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
}

#[test]
fn a_keep_alive_connection_serves_requests_one_after_another() {
    use std::io::{Read, Write};
    let server = Server::start(&[]);
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let body = b"{\"data\": \"via keep-alive\"}";
    let requests = [
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        [
            format!(
                "POST /publish HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
            body,
        ]
        .concat(),
        b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
    ];
    let mut answers = Vec::new();
    for request in &requests {
        stream.write_all(request).unwrap();
        // Read one complete response (they all have a Content-Length).
        let mut raw = Vec::new();
        let mut buf = [0u8; 8192];
        let (status, len, end) = loop {
            let n = stream.read(&mut buf).unwrap();
            assert!(n > 0, "the connection stayed open");
            raw.extend_from_slice(&buf[..n]);
            if let Some((status, headers, end)) = common::parse_head(&raw) {
                let len: usize = headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                    .map(|(_, v)| v.parse().unwrap())
                    .unwrap();
                if raw.len() >= end + len {
                    break (status, len, end);
                }
            }
        };
        answers.push((
            status,
            String::from_utf8_lossy(&raw[end..end + len]).into_owned(),
        ));
    }
    assert_eq!(answers[0], (200, "ok\n".to_owned()));
    assert_eq!(answers[1].0, 200);
    let published: serde_json::Value = serde_json::from_str(&answers[1].1).unwrap();
    assert!(
        published["id"].as_str().unwrap().parse::<u64>().is_ok(),
        "{published}"
    );
    assert_eq!(answers[2].0, 200);
    assert!(answers[2]
        .1
        .lines()
        .any(|l| l == "ssecast_published_total 1"));
    assert_eq!(
        server.metric("ssecast_connections_accepted_total"),
        2,
        "one connection, then this one"
    );
}
