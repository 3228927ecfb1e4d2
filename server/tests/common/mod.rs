//! Test helpers: a spawned `ssecast serve` on an ephemeral loopback port (killed on drop), a
//! blocking HTTP/1.1 client that speaks raw bytes, and an SSE reader built on the core's
//! decoder.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use ssecast::{Decoder, MessageEvent};

/// The generous upper bound of every wait in these tests.
pub const WAIT: Duration = Duration::from_secs(10);

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_ssecast")
}

/// A running server; killed (and reaped) when dropped, also when a test fails.
pub struct Server {
    pub child: Child,
    pub port: u16,
    /// Reads stdout after the first line; returns whatever else was printed.
    stdout: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl Server {
    /// `ssecast serve --addr 127.0.0.1:0 <args>`, with `--tick 0` unless `args` set one.
    pub fn start(args: &[&str]) -> Server {
        Server::start_on("127.0.0.1:0", args)
    }

    pub fn start_on(addr: &str, args: &[&str]) -> Server {
        Server::start_with(addr, args, &[])
    }

    /// Like [`Server::start_on`], with extra environment variables.
    pub fn start_with(addr: &str, args: &[&str], envs: &[(&str, &str)]) -> Server {
        Server::spawn(addr, args, envs, Stdio::inherit())
    }

    /// Like [`Server::start`], and what it writes to stderr (its log) is collected in the
    /// returned [`Log`] (and copied to this process's stderr).
    pub fn start_logged(args: &[&str]) -> (Server, Log) {
        let mut server = Server::spawn("127.0.0.1:0", args, &[], Stdio::piped());
        let log = Log::default();
        let stderr = server.child.stderr.take().expect("stderr");
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("{line}");
                let mut text = sink.text.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
            sink.closed.store(true, Ordering::SeqCst);
        });
        (server, log)
    }

    fn spawn(addr: &str, args: &[&str], envs: &[(&str, &str)], stderr: Stdio) -> Server {
        let mut child = Command::new(bin())
            .envs(envs.iter().copied())
            .args(["serve", "--addr", addr])
            .args(
                if args.contains(&"--tick") || envs.iter().any(|(k, _)| *k == "SSECAST_TICK") {
                    &[][..]
                } else {
                    &["--tick", "0"][..]
                },
            )
            .args(args)
            .env("SSECAST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn ssecast");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            // Anything more on stdout breaks the contract of exactly one line.
            lines.map_while(Result::ok).collect()
        });
        let mut server = Server {
            child,
            port: 0,
            stdout: Some(reader),
        };
        let line = rx
            .recv_timeout(WAIT)
            .expect("server printed its address")
            .expect("a line")
            .expect("utf-8");
        let port = line
            .strip_prefix("listening on http://127.0.0.1:")
            .or_else(|| line.strip_prefix("listening on https://127.0.0.1:"))
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        server.port = port.parse().expect("a port");
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Sends `signal` (`TERM`, `INT`) and waits (bounded) for the exit.
    pub fn signal_and_wait(&mut self, signal: &str, bound: Duration) -> Option<ExitStatus> {
        let status = Command::new("kill")
            .args(["-s", signal, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        let start = Instant::now();
        while start.elapsed() < bound {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    pub fn metrics(&self) -> String {
        let reply = get(self.port, "/metrics");
        assert_eq!(reply.status, 200);
        reply.text()
    }

    /// The value of one metric sample, e.g. `ssecast_subscribers` or
    /// `ssecast_disconnected_total{reason="overflow"}`.
    pub fn metric(&self, sample: &str) -> u64 {
        let text = self.metrics();
        text.lines()
            .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no sample {sample} in\n{text}"))
            .parse()
            .expect("a number")
    }

    /// Waits (bounded by `bound`) until `sample` equals `value`.
    pub fn wait_metric(&self, sample: &str, value: u64, bound: Duration) -> bool {
        wait_until(bound, || self.metric(sample) == value)
    }

    /// Publishes text to the default topic and returns the id.
    pub fn publish(&self, data: &str) -> String {
        self.publish_json(&serde_json::json!({ "data": data }))
    }

    pub fn publish_json(&self, body: &serde_json::Value) -> String {
        let reply = post(
            self.port,
            "/publish",
            "application/json",
            body.to_string().as_bytes(),
            &[],
        );
        assert_eq!(reply.status, 200, "publish: {}", reply.text());
        let v: serde_json::Value = serde_json::from_slice(&reply.body).expect("json answer");
        v["id"].as_str().expect("id").to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The child is gone, so its stdout is at end of file and the reader returns.
        let extra = self
            .stdout
            .take()
            .and_then(|r| r.join().ok())
            .unwrap_or_default();
        if !std::thread::panicking() {
            assert!(extra.is_empty(), "unexpected stdout lines: {extra:?}");
        }
    }
}

/// What a server started with [`Server::start_logged`] wrote to stderr.
#[derive(Debug, Clone, Default)]
pub struct Log {
    text: Arc<Mutex<String>>,
    closed: Arc<AtomicBool>,
}

impl Log {
    /// Waits (bounded) until the log holds `needle`, and returns it.
    pub fn wait_for(&self, needle: &str) -> String {
        let found = wait_until(WAIT, || self.text.lock().unwrap().contains(needle));
        let text = self.text.lock().unwrap().clone();
        assert!(found, "no {needle:?} in the log: {text}");
        text
    }

    /// Everything the server wrote, once it has exited (waits, bounded, for its stderr to
    /// close).
    pub fn all(&self) -> String {
        assert!(
            wait_until(WAIT, || self.closed.load(Ordering::SeqCst)),
            "stderr still open"
        );
        self.text.lock().unwrap().clone()
    }
}

pub fn wait_until(bound: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() > bound {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Status, headers, and where the body starts.
pub type Head = (u16, Vec<(String, String)>, usize);

/// Splits a response into status, headers and the bytes after the head.
pub fn parse_head(raw: &[u8]) -> Option<Head> {
    let end = find(raw, b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Some((status, headers, end))
}

/// Decodes a complete chunked body.
pub fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = find(raw, b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&raw[..line_end]).unwrap().trim(), 16)
            .expect("chunk size");
        raw = &raw[line_end + 2..];
        if size == 0 {
            break;
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
    out
}

/// Sends raw bytes, reads until the server closes (bounded), parses the response.
pub fn raw_request(port: u16, request: &[u8]) -> Reply {
    let raw = raw_exchange(port, request);
    let (status, headers, end) = parse_head(&raw)
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(&raw)));
    let mut reply = Reply {
        status,
        headers,
        body: raw[end..].to_vec(),
    };
    if reply.header("Transfer-Encoding") == Some("chunked") {
        reply.body = dechunk(&reply.body);
    }
    reply
}

/// Sends raw bytes and returns everything the server sent until it closed.
pub fn raw_exchange(port: u16, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.write_all(request).expect("send");
    let mut raw = Vec::new();
    // Reset by peer after a full answer still counts: keep what arrived.
    let _ = stream.read_to_end(&mut raw);
    raw
}

pub fn get(port: u16, path: &str) -> Reply {
    raw_request(
        port,
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

pub fn post(
    port: u16,
    path: &str,
    content_type: &str,
    body: &[u8],
    headers: &[(&str, &str)],
) -> Reply {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
        body.len()
    )
    .into_bytes();
    for (n, v) in headers {
        req.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    req.extend_from_slice(body);
    raw_request(port, &req)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    Size,
    Data(usize),
    DataEnd,
    Done,
}

/// An open event stream, read with the core's decoder.
pub struct Sse {
    pub stream: TcpStream,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// Every body byte received so far (de-chunked).
    pub body: Vec<u8>,
    raw: Vec<u8>,
    chunk: Chunk,
    pub decoder: Decoder,
    pub eof: bool,
}

impl Sse {
    /// Opens `GET target` with extra headers and reads the response head.
    pub fn open(port: u16, target: &str, headers: &[(&str, &str)]) -> Sse {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let mut req =
            format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n");
        for (n, v) in headers {
            req.push_str(&format!("{n}: {v}\r\n"));
        }
        req.push_str("\r\n");
        stream.write_all(req.as_bytes()).expect("send");
        let mut raw = Vec::new();
        let deadline = Instant::now() + WAIT;
        let (status, headers, end) = loop {
            if let Some(head) = parse_head(&raw) {
                break head;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no response head");
            stream.set_read_timeout(Some(left)).unwrap();
            let mut buf = [0u8; 4096];
            let n = stream.read(&mut buf).expect("read head");
            assert!(
                n > 0,
                "closed before the head: {:?}",
                String::from_utf8_lossy(&raw)
            );
            raw.extend_from_slice(&buf[..n]);
        };
        let chunked = headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v == "chunked");
        let mut sse = Sse {
            stream,
            status,
            headers,
            body: Vec::new(),
            raw: raw[end..].to_vec(),
            chunk: if chunked { Chunk::Size } else { Chunk::Done },
            decoder: Decoder::new().keep_comments(true),
            eof: false,
        };
        if !chunked {
            // A refusal with a Content-Length body: keep the bytes as they are.
            sse.body = std::mem::take(&mut sse.raw);
        }
        sse.process();
        sse
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// De-chunks what arrived and feeds it to the decoder.
    fn process(&mut self) {
        loop {
            match self.chunk {
                Chunk::Size => {
                    let Some(i) = find(&self.raw, b"\r\n") else {
                        return;
                    };
                    let size =
                        usize::from_str_radix(std::str::from_utf8(&self.raw[..i]).unwrap(), 16)
                            .expect("chunk size");
                    self.raw.drain(..i + 2);
                    self.chunk = if size == 0 {
                        Chunk::Done
                    } else {
                        Chunk::Data(size)
                    };
                    if size == 0 {
                        self.eof = true;
                    }
                }
                Chunk::Data(left) => {
                    if self.raw.is_empty() {
                        return;
                    }
                    let n = left.min(self.raw.len());
                    let bytes: Vec<u8> = self.raw.drain(..n).collect();
                    self.decoder.feed(&bytes).expect("decodable stream");
                    self.body.extend_from_slice(&bytes);
                    self.chunk = if n == left {
                        Chunk::DataEnd
                    } else {
                        Chunk::Data(left - n)
                    };
                }
                Chunk::DataEnd => {
                    if self.raw.len() < 2 {
                        return;
                    }
                    assert_eq!(&self.raw[..2], b"\r\n", "chunk end");
                    self.raw.drain(..2);
                    self.chunk = Chunk::Size;
                }
                Chunk::Done => return,
            }
        }
    }

    /// Reads once, waiting at most `bound`; false on timeout. Sets `eof` at the end.
    pub fn read_some(&mut self, bound: Duration) -> bool {
        if self.eof {
            return false;
        }
        self.stream
            .set_read_timeout(Some(bound.max(Duration::from_millis(1))))
            .unwrap();
        let mut buf = [0u8; 64 * 1024];
        match self.stream.read(&mut buf) {
            Ok(0) => {
                self.eof = true;
                true
            }
            Ok(n) => {
                if self.chunk == Chunk::Done {
                    // HTTP/1.0-style body delimited by the close.
                    self.decoder.feed(&buf[..n]).expect("decodable stream");
                    self.body.extend_from_slice(&buf[..n]);
                } else {
                    self.raw.extend_from_slice(&buf[..n]);
                    self.process();
                }
                true
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                false
            }
            Err(_) => {
                self.eof = true;
                true
            }
        }
    }

    /// The next event, waiting at most `bound`.
    pub fn try_event(&mut self, bound: Duration) -> Option<MessageEvent> {
        let deadline = Instant::now() + bound;
        loop {
            if let Some(e) = self.decoder.next_event() {
                return Some(e);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.eof {
                return None;
            }
            self.read_some(left);
        }
    }

    pub fn event(&mut self) -> MessageEvent {
        self.try_event(WAIT)
            .expect("an event within the wait bound")
    }

    pub fn events(&mut self, n: usize) -> Vec<MessageEvent> {
        (0..n).map(|_| self.event()).collect()
    }

    /// The next comment line (without the colon), waiting at most `bound`.
    pub fn try_comment(&mut self, bound: Duration) -> Option<String> {
        let deadline = Instant::now() + bound;
        loop {
            if let Some(c) = self.decoder.next_comment() {
                return Some(c);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.eof {
                return None;
            }
            self.read_some(left);
        }
    }

    /// Reads until the server ends the stream, waiting at most `bound`.
    pub fn wait_eof(&mut self, bound: Duration) -> bool {
        let deadline = Instant::now() + bound;
        while !self.eof {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.read_some(left);
        }
        true
    }

    /// Closes the connection from the client side.
    pub fn close(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

/// The resident memory of a process, in KiB (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Open file descriptors of a process.
pub fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}
