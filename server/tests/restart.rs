//! Zero-downtime restart (`SIGUSR2`: a new process takes the listening socket over), socket
//! activation (a socket from systemd's `LISTEN_FDS`), and `sd_notify`, over real sockets.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use common::{wait_until, WAIT};

/// `ssecast serve` started with piped stdout and stderr (both read into lines), and every
/// process that took it over, killed when dropped.
struct Restartable {
    child: Child,
    port: u16,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Restartable {
    fn start(args: &[&str], envs: &[(&str, &str)]) -> Restartable {
        let mut child = Command::new(common::bin())
            .args(["serve", "--addr", "127.0.0.1:0", "--tick", "0"])
            .args(args)
            .envs(envs.iter().copied())
            .env("SSECAST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = lines(child.stdout.take().unwrap());
        let stderr = lines(child.stderr.take().unwrap());
        assert!(wait_until(WAIT, || !stdout.lock().unwrap().is_empty()));
        let first = stdout.lock().unwrap()[0].clone();
        let port = first
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{first}"));
        Restartable {
            child,
            port,
            stdout,
            stderr,
        }
    }

    fn signal(&self, pid: u32, signal: &str) {
        let status = Command::new("kill")
            .args(["-s", signal, &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// The pid of the process `SIGUSR2` started, from the old one's log.
    fn successor(&self) -> u32 {
        let mut pid = None;
        assert!(wait_until(WAIT, || {
            pid = self.stderr.lock().unwrap().iter().find_map(|l| {
                l.split("started process ")
                    .nth(1)?
                    .split(' ')
                    .next()?
                    .parse()
                    .ok()
            });
            pid.is_some()
        }));
        pid.unwrap()
    }

    /// Waits (bounded) for the first process to exit; its status.
    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the old process did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn log(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }
}

impl Drop for Restartable {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Successors are not our children: kill them by the pids the log gave.
        for line in self.stderr.lock().unwrap().iter() {
            if let Some(pid) = line
                .split("started process ")
                .nth(1)
                .and_then(|r| r.split(' ').next())
            {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        }
    }
}

fn lines(pipe: impl std::io::Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let out = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&out);
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            eprintln!("{line}");
            sink.lock().unwrap().push(line);
        }
    });
    out
}

/// A client that connects and asks `/healthz` in a loop until stopped; every failure (a
/// refused connection, a reset, anything but `200 ok`) is kept.
struct Prober {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    errors: Arc<Mutex<Vec<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Prober {
    fn start(port: u16) -> Prober {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let (s, o, e) = (Arc::clone(&stop), Arc::clone(&ok), Arc::clone(&errors));
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let raw = std::panic::catch_unwind(|| common::get(port, "/healthz"));
                match raw {
                    Ok(reply) if reply.status == 200 && reply.text() == "ok\n" => {
                        o.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(reply) => e.lock().unwrap().push(format!("{reply:?}")),
                    Err(_) => e.lock().unwrap().push("no answer".into()),
                }
            }
        });
        Prober {
            stop,
            ok,
            errors,
            thread: Some(thread),
        }
    }

    /// Waits for `n` more successful probes (bounded), then stops; the failures seen.
    fn finish_after(mut self, n: usize) -> Vec<String> {
        let target = self.ok.load(Ordering::SeqCst) + n;
        assert!(wait_until(WAIT, || self.ok.load(Ordering::SeqCst) >= target));
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap();
        self.errors.lock().unwrap().clone()
    }
}

#[test]
fn sigusr2_hands_the_socket_over_without_refusing_a_connection() {
    let mut server = Restartable::start(&[], &[]);
    let mut sse = common::Sse::open(server.port, "/events?topic=r", &[]);
    let prober = Prober::start(server.port);
    assert!(wait_until(WAIT, || prober.ok.load(Ordering::SeqCst) > 20));
    let old = server.child.id();
    server.signal(old, "USR2");
    let new = server.successor();
    assert_ne!(new, old);
    // The old process stops once the new one listens, cleanly, and its stream ends.
    assert!(server.wait_exit().success(), "{}", server.log());
    assert!(sse.wait_eof(WAIT), "the old process's stream did not end");
    let errors = prober.finish_after(100);
    assert!(errors.is_empty(), "{errors:?}\n{}", server.log());
    // The new process serves the same port (and printed it, as every start does).
    let stdout = server.stdout.lock().unwrap().clone();
    assert_eq!(stdout.len(), 2, "{stdout:?}");
    assert_eq!(stdout[0], stdout[1]);
    assert!(server.log().contains(&format!("socket from process {old}")));
    let reply = common::get(server.port, "/metrics");
    assert_eq!(reply.status, 200);
    // A second restart works the same from the new process.
    server.signal(new, "USR2");
    let mut newer = None;
    assert!(wait_until(WAIT, || {
        newer = server
            .stderr
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| {
                l.split("started process ")
                    .nth(1)?
                    .split(' ')
                    .next()?
                    .parse::<u32>()
                    .ok()
            })
            .find(|&p| p != new);
        newer.is_some()
    }));
    assert!(wait_until(WAIT, || server
        .log()
        .contains(&format!("socket from process {new}"))));
    assert_eq!(common::get(server.port, "/healthz").status, 200);
}

#[test]
fn with_data_dir_a_resuming_subscriber_misses_nothing_across_the_handoff() {
    let dir = std::env::temp_dir().join(format!("ssecast-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut server = Restartable::start(&["--data-dir", dir.to_str().unwrap()], &[]);
    let port = server.port;
    // A subscriber that reconnects with its Last-Event-ID whenever its stream ends, there
    // before the first publish so that it must see every acknowledged event.
    let mut sse = common::Sse::open(port, "/events?topic=d", &[]);
    assert!(wait_until(WAIT, || common::get(port, "/metrics")
        .text()
        .contains("\nssecast_subscribers 1\n")));
    // A publisher that publishes throughout, one connection per publish, and keeps the ids
    // acknowledged (any failure is kept too).
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let failed = Arc::new(Mutex::new(Vec::<String>::new()));
    let publisher = {
        let (stop, acked, failed) = (Arc::clone(&stop), Arc::clone(&acked), Arc::clone(&failed));
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                let body = format!("e{i}");
                let reply = std::panic::catch_unwind(|| {
                    common::post(port, "/publish?topic=d", "text/plain", body.as_bytes(), &[])
                });
                match reply {
                    Ok(r) if r.status == 200 => {
                        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
                        acked
                            .lock()
                            .unwrap()
                            .push(v["id"].as_str().unwrap().to_owned());
                    }
                    Ok(r) => failed.lock().unwrap().push(format!("{r:?}")),
                    Err(_) => failed.lock().unwrap().push("no answer".into()),
                }
                i += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let mut seen: Vec<(String, String)> = Vec::new();
    assert!(wait_until(WAIT, || acked.lock().unwrap().len() > 20));
    let old = server.child.id();
    server.signal(old, "USR2");
    let _new = server.successor();
    let mut reconnects = 0;
    let done = |seen: &Vec<(String, String)>, acked: &Mutex<Vec<String>>| {
        let acked = acked.lock().unwrap();
        acked.len() > 40 && seen.iter().any(|(id, _)| Some(id) == acked.last())
    };
    let deadline = Instant::now() + WAIT * 3;
    let mut exited = false;
    while !(exited && reconnects > 0 && done(&seen, &acked)) {
        assert!(
            Instant::now() < deadline,
            "seen {} of {:?}",
            seen.len(),
            acked.lock().unwrap().len()
        );
        if !exited {
            exited = server.child.try_wait().unwrap().is_some();
        }
        match sse.try_event(Duration::from_millis(100)) {
            Some(e) => seen.push((e.last_event_id.clone(), e.event_type.clone())),
            None if sse.eof => {
                let last = seen.last().map(|(id, _)| id.clone()).unwrap_or_default();
                sse = common::Sse::open(port, "/events?topic=d", &[("Last-Event-ID", &last)]);
                assert_eq!(sse.status, 200);
                reconnects += 1;
            }
            None => {}
        }
    }
    stop.store(true, Ordering::SeqCst);
    publisher.join().unwrap();
    assert!(server.wait_exit().success());
    let failed = failed.lock().unwrap().clone();
    assert!(failed.is_empty(), "{failed:?}");
    // Every acknowledged event, once, in order, and nothing missed.
    let acked = acked.lock().unwrap().clone();
    let ids: Vec<&str> = seen.iter().map(|(id, _)| id.as_str()).collect();
    assert!(seen.iter().all(|(_, t)| t == "message"), "{seen:?}");
    let upto = ids.len().min(acked.len());
    assert_eq!(&ids[..upto], &acked[..upto]);
    assert!(
        server.log().contains("socket from process"),
        "{}",
        server.log()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A free loopback port (bound then released: the race with another process is harmless
/// here, where nothing else picks ports at random).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_socket_from_systemd_is_served() {
    // systemd's own tool: it listens, then starts the server with LISTEN_FDS and LISTEN_PID.
    let port = free_port();
    let mut child = Killed(
        Command::new("systemd-socket-activate")
            .args(["-l", &format!("127.0.0.1:{port}"), "-E", "SSECAST_LOG=info"])
            .arg(common::bin())
            // The address it would bind is taken: only the inherited socket can work.
            .args([
                "serve",
                "--addr",
                &format!("127.0.0.1:{port}"),
                "--tick",
                "0",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("systemd-socket-activate (Debian's systemd package)"),
    );
    let stdout = lines(child.0.stdout.take().unwrap());
    let stderr = lines(child.0.stderr.take().unwrap());
    // The first connection starts it; the socket listens from the moment the tool says so.
    assert!(wait_until(WAIT, || stderr
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("Listening on"))));
    let reply = common::get(port, "/healthz");
    assert_eq!(reply.status, 200);
    assert!(wait_until(WAIT, || !stdout.lock().unwrap().is_empty()));
    assert_eq!(
        stdout.lock().unwrap()[0],
        format!("listening on http://127.0.0.1:{port}")
    );
    assert!(wait_until(WAIT, || stderr
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("socket from systemd"))));
    let mut sse = common::Sse::open(port, "/events", &[]);
    assert_eq!(sse.status, 200);
    assert!(sse.try_comment(WAIT).is_some());
}

/// A child process killed (and reaped) when dropped, also when a test fails.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn systemd_hears_ready_and_the_new_main_pid() {
    let dir = std::env::temp_dir().join(format!("ssecast-notify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("notify");
    let _ = std::fs::remove_file(&path);
    let socket = UnixDatagram::bind(&path).unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();
    let server = Restartable::start(&[], &[("NOTIFY_SOCKET", path.to_str().unwrap())]);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok(n) = socket.recv(&mut buf) {
            if tx
                .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                .is_err()
            {
                break;
            }
        }
    });
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), "READY=1");
    server.signal(server.child.id(), "USR2");
    let new = server.successor();
    // The new process names itself the main pid before the old one stops, then is ready.
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), format!("MAINPID={new}"));
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), "READY=1");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_subscription_while_stopping_gets_a_stream_that_ends_not_a_503() {
    use std::io::{Read, Write};
    let mut server = Restartable::start(&[], &[]);
    // A kept-alive connection (as a browser keeps one), and a stream, open before the stop.
    let mut kept = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    kept.set_read_timeout(Some(WAIT)).unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = kept.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let mut sse = common::Sse::open(server.port, "/events", &[]);
    server.signal(server.child.id(), "TERM");
    // Once it accepts no more, it is stopping; the kept connection still gets answered.
    assert!(wait_until(WAIT, || std::net::TcpStream::connect((
        "127.0.0.1",
        server.port
    ))
    .is_err()));
    kept.write_all(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut raw = Vec::new();
    let _ = kept.read_to_end(&mut raw);
    let (status, headers, _) = common::parse_head(&raw).expect("an answer");
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    // EventSource reconnects after a 200 stream that ends; a 503 would be final for it.
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&raw));
    assert_eq!(header("Content-Type").as_deref(), Some("text/event-stream"));
    assert!(sse.wait_eof(WAIT));
    assert!(server.wait_exit().success());
}
