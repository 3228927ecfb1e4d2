//! Test helpers: the load generator's binary, a real `ssecast serve` on an ephemeral loopback
//! port (killed on drop), and the numbers of a JSON report.
//!
//! The server is another package's binary, and `CARGO_BIN_EXE_*` names only this package's.
//! So the first test that needs it asks cargo to build it (`cargo build -p ssecast-server
//! --bin ssecast`, the profile of these tests, the same target directory) and takes the
//! executable's path from cargo's own JSON messages: never a stale binary from an earlier
//! build, never a guessed path. When nothing changed this is a no-op of a fraction of a
//! second. `SSECAST_BIN=path/to/ssecast` skips the build (a prebuilt server, e.g. a release
//! one).

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::Duration;

use serde_json::Value;

/// The generous upper bound of every wait in these tests.
pub const WAIT: Duration = Duration::from_secs(30);

/// The load generator.
pub fn bench_bin() -> &'static str {
    env!("CARGO_BIN_EXE_ssecast-bench")
}

/// Runs `ssecast-bench ARGS` to its end.
pub fn bench(args: &[&str]) -> Output {
    Command::new(bench_bin())
        .args(args)
        .output()
        .expect("run ssecast-bench")
}

/// The `ssecast` server binary: `$SSECAST_BIN`, or built by cargo once per test process.
pub fn server_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| match std::env::var_os("SSECAST_BIN") {
        Some(path) => PathBuf::from(path),
        None => build_server(),
    })
}

fn build_server() -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "-p",
        "ssecast-server",
        "--bin",
        "ssecast",
        "--message-format=json-render-diagnostics",
    ])
    .current_dir(env!("CARGO_MANIFEST_DIR"))
    .stderr(Stdio::inherit());
    // The profile these tests were built with: target/<dir>/deps/<test> ("debug" is dev).
    let exe = std::env::current_exe().expect("the test's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
        .unwrap_or("debug")
        .to_owned();
    match profile_dir.as_str() {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
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
}

/// A running `ssecast serve`; killed (and reaped) when dropped, also when a test fails.
pub struct Server {
    pub child: Child,
    pub port: u16,
}

impl Server {
    /// `ssecast serve --addr 127.0.0.1:0 --tick 0 <args>`.
    pub fn start(args: &[&str]) -> Server {
        let mut child = Command::new(server_bin())
            .args(["serve", "--addr", "127.0.0.1:0", "--tick", "0"])
            .args(args)
            .env("SSECAST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn ssecast serve");
        let port = listening_port(&mut child, "http://127.0.0.1:");
        Server { child, port }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The port of the child's first stdout line, `listening on <prefix>PORT`, within [`WAIT`].
pub fn listening_port(child: &mut Child, prefix: &str) -> u16 {
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(WAIT)
        .expect("the server printed its address");
    line.trim()
        .strip_prefix("listening on ")
        .and_then(|url| url.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .expect("a port")
}

/// The JSON line's numbers, by JSON pointer; the run must have succeeded.
pub fn figures(out: &Output) -> impl Fn(&str) -> f64 {
    let report = report(out);
    move |path| {
        report
            .pointer(path)
            .and_then(Value::as_f64)
            .unwrap_or_else(|| panic!("{path} in {report}"))
    }
}

/// The JSON line (the last line of stdout); the run must have succeeded.
pub fn report(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout.lines().last().expect("a JSON line").to_owned();
    serde_json::from_str(&line).expect("the last line is JSON")
}
