//! Other people's SSE clients honour ssecast's `retry:` hint: each subscribes to a real
//! `ssecast serve --retry 1500ms`, receives the first event, and reports the reconnection
//! delay it took from the stream, which must be 1500 ms.
//!
//! - `reqwest-eventsource` (Rust), through `src/main.rs`: the hint its retry policy was given
//!   and the delay it scheduled once the stream ended (the server is stopped to end it);
//! - `sseclient-py` (Python), through `sseclient_retry.py`: the `retry` of the first event.
//!
//! Both drop a block without data, so a hint sent alone (`retry: 1500\n\n`, as ssecast did
//! before issue 13) never reaches them: reqwest-eventsource then waits its default 300 ms and
//! sseclient-py reports no retry.
//!
//! The server is another package's binary: `$SSECAST_BIN`, or built by cargo on first use
//! (as `bench/tests/common` does), so these tests can also be run against an older build.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The generous upper bound of every wait here.
const WAIT: Duration = Duration::from_secs(30);

/// The repository's root (the workspace's).
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// The `ssecast` binary: `$SSECAST_BIN`, or built by cargo once per test process (the
/// profile of these tests, the same target directory; a no-op when nothing changed).
fn server_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(path) = std::env::var_os("SSECAST_BIN") {
            return PathBuf::from(path);
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-p", "ssecast-server", "--bin", "ssecast"])
            .arg("--message-format=json-render-diagnostics")
            .current_dir(root())
            .stderr(Stdio::inherit());
        let exe = std::env::current_exe().unwrap();
        let profile = exe
            .parent()
            .and_then(Path::parent)
            .and_then(Path::file_name);
        match profile.and_then(|p| p.to_str()) {
            Some("debug") | None => {}
            Some("release") => {
                cmd.arg("--release");
            }
            Some(other) => {
                cmd.args(["--profile", other]);
            }
        }
        let out = cmd.output().expect("run cargo build -p ssecast-server");
        assert!(out.status.success(), "cargo build -p ssecast-server failed");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "ssecast")
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .expect("cargo named the ssecast executable")
    })
}

/// A running `ssecast serve`; killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        let mut child = Command::new(server_bin())
            .args(["serve", "--addr", "127.0.0.1:0", "--tick", "0"])
            .args(args)
            .env("SSECAST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn ssecast serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("listening on http://127.0.0.1:")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .unwrap();
        Server { child, port }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// One request on its own connection; the answer's status and body.
    fn request(&self, head: &str, body: &[u8]) -> (u16, String) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body).unwrap();
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw);
        let text = String::from_utf8_lossy(&raw).into_owned();
        let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap();
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned());
        (status, body.unwrap_or_default())
    }

    fn publish(&self, topic: &str, data: &str) {
        let head = format!(
            "POST /publish?topic={topic} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
            data.len()
        );
        let (status, body) = self.request(&head, data.as_bytes());
        assert_eq!(status, 200, "publish: {body}");
    }

    fn subscribers(&self) -> u64 {
        let (status, body) = self.request(
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            b"",
        );
        assert_eq!(status, 200);
        body.lines()
            .find_map(|l| l.strip_prefix("ssecast_subscribers "))
            .and_then(|v| v.trim().parse().ok())
            .expect("ssecast_subscribers")
    }

    /// Stops the server as SIGTERM does: every stream ends cleanly.
    fn stop(&mut self) {
        let status = Command::new("kill")
            .args(["-s", "TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client process whose stdout lines arrive on a channel; killed when dropped.
struct Client {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Client {
    fn spawn(cmd: &mut Command) -> Client {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the client");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Client { child, lines }
    }

    /// The next line, within [`WAIT`].
    fn line(&self) -> String {
        self.lines
            .recv_timeout(WAIT)
            .expect("a line from the client within the wait bound")
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_until(mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < WAIT {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn reqwest_eventsource_reconnects_after_the_streams_retry() {
    let mut server = Server::start(&["--retry", "1500ms"]);
    let client = Client::spawn(
        Command::new(env!("CARGO_BIN_EXE_reqwest-eventsource-retry"))
            .arg(server.url("/events?topic=retry")),
    );
    assert_eq!(client.line(), "open");
    server.publish("retry", "first");
    let message = client.line();
    assert!(message.ends_with(" first"), "{message}");
    // Ending the stream makes the library schedule its reconnection.
    server.stop();
    let got = [client.line(), client.line()];
    assert_eq!(got, ["hint 1500", "reconnect-after 1500"]);
}

#[test]
fn sseclient_py_reads_the_streams_retry_with_the_first_event() {
    let installed = Command::new("bash")
        .args(["-c", ". scripts/lib.sh && ensure_sseclient_py"])
        .current_dir(root())
        .status()
        .expect("run bash");
    assert!(installed.success(), "sseclient-py could not be installed");
    let python = root().join("target/sse-clients-venv/bin/python");
    let server = Server::start(&["--retry", "1500ms"]);
    let client = Client::spawn(
        Command::new(python)
            .arg(root().join("clients/sseclient_retry.py"))
            .arg(server.url("/events?topic=retry")),
    );
    assert!(
        wait_until(|| server.subscribers() == 1),
        "the client never subscribed"
    );
    server.publish("retry", "first");
    let event: Value = serde_json::from_str(&client.line()).unwrap();
    assert_eq!(event["data"], "first");
    assert_eq!(event["retry"], 1500, "{event}");
}
