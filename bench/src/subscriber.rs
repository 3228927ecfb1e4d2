//! The subscribers, driven by one hand-written readiness loop on one thread: a non-blocking
//! connect from a chosen loopback source address, the GET request, the response head
//! checked, then the chunked framing undone in place and the payload fed to a core
//! [`Decoder`].
//!
//! Sockets are registered level-triggered, so a readable socket costs one `read` per round
//! and no re-arming call; all subscribers read into one shared 64 KiB buffer, so memory per
//! subscriber stays small (a decoder, a framing state, a socket). An optional pause between
//! rounds lets events accumulate in the sockets so each read takes several (fewer system
//! calls per event, at the price of up to that pause in latency).

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::time::{Duration, Instant};

use polling::{Event, PollMode, Poller};
use socket2::{Domain, Socket, Type};
use ssecast::Decoder;

use crate::chunked::Chunked;
use crate::response::header_value;
use crate::tally::Tally;
use crate::target::Target;

/// The read buffer every subscriber shares: large, so a subscriber with many events queued
/// takes them all in one read.
const SCRATCH: usize = 64 * 1024;

/// The longest response head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// What every subscriber connects to and sends.
#[derive(Debug)]
pub(crate) struct Plan {
    /// The server.
    pub(crate) target: SocketAddrV4,
    /// The whole GET request.
    pub(crate) request: Vec<u8>,
    /// Limit on connecting and reading the response head.
    pub(crate) connect_timeout: Duration,
    /// Source addresses 127.0.0.2 and up, this many.
    pub(crate) sources: u8,
    /// Pause between rounds of reads (zero: none).
    pub(crate) pause: Duration,
}

/// The GET request of a subscriber to `target`.
pub(crate) fn request(target: &Target) -> Vec<u8> {
    format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n",
        target.path, target.addr
    )
    .into_bytes()
}

/// Why a subscriber did not connect, or stopped.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The TCP connection failed.
    Connect(io::Error),
    /// No response head within the connect timeout.
    Timeout,
    /// The server answered something other than a `200` event stream.
    Refused(String),
    /// Reading or writing the socket failed.
    Io(io::Error),
    /// The server ended the stream.
    Closed,
    /// The body's framing was broken.
    Framing,
}

impl Failure {
    /// A short label to count failures by.
    pub(crate) fn label(&self) -> String {
        match self {
            Failure::Connect(e) => format!("connect: {e}"),
            Failure::Timeout => String::from("timed out connecting or waiting for the head"),
            Failure::Refused(status) => format!("refused: {status}"),
            Failure::Io(e) => format!("i/o: {e}"),
            Failure::Closed => String::from("closed by the server"),
            Failure::Framing => String::from("bad chunked framing"),
        }
    }
}

/// One subscriber's socket and where it stands.
#[derive(Debug)]
struct Subscriber {
    stream: TcpStream,
    stage: Stage,
}

// Nearly every subscriber spends its life in `Body`: boxing it would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Stage {
    /// Waiting for the connect to complete (writable), until the deadline.
    Connecting { deadline: Instant },
    /// Request sent; collecting the response head.
    Head { deadline: Instant, head: Vec<u8> },
    /// Reading the event stream.
    Body(Connection),
}

/// Every subscriber, by index (the poller key).
pub(crate) struct Subscribers {
    plan: Plan,
    poller: Poller,
    events: Vec<Event>,
    subscribers: Vec<Option<Subscriber>>,
    scratch: Vec<u8>,
    /// Subscribers started so far.
    started: usize,
    /// Next time to look for connect and head deadlines.
    next_sweep: Instant,
}

impl Subscribers {
    /// Room for `n` subscribers.
    pub(crate) fn new(plan: Plan, n: usize) -> io::Result<Subscribers> {
        let mut subscribers = Vec::with_capacity(n);
        subscribers.resize_with(n, || None);
        Ok(Subscribers {
            plan,
            poller: Poller::new()?,
            events: Vec::with_capacity(1024),
            subscribers,
            scratch: vec![0; SCRATCH],
            started: 0,
            next_sweep: Instant::now(),
        })
    }

    /// Subscribers started so far.
    pub(crate) fn started(&self) -> usize {
        self.started
    }

    /// Starts the next subscriber's connect.
    pub(crate) fn start_next(&mut self, tally: &mut Tally) {
        let index = self.started;
        if index >= self.subscribers.len() {
            return;
        }
        self.started += 1;
        let source = Ipv4Addr::new(
            127,
            0,
            0,
            2 + (index % usize::from(self.plan.sources)) as u8,
        );
        let started = start_connect(source, self.plan.target).and_then(|stream| {
            self.poller
                .add_with_mode(&stream, Event::writable(index), PollMode::Level)?;
            Ok(stream)
        });
        match started {
            Ok(stream) => {
                self.subscribers[index] = Some(Subscriber {
                    stream,
                    stage: Stage::Connecting {
                        deadline: Instant::now() + self.plan.connect_timeout,
                    },
                });
            }
            Err(e) => tally.failed(index, &Failure::Connect(e)),
        }
    }

    /// One round: waits up to `timeout` for readiness, serves every ready subscriber once,
    /// fails those past their connect deadline, then pauses if asked to.
    pub(crate) fn round(&mut self, timeout: Duration, tally: &mut Tally) -> io::Result<()> {
        self.events.clear();
        match self.poller.wait(&mut self.events, Some(timeout)) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        let round_start = Instant::now();
        for i in 0..self.events.len() {
            let index = self.events[i].key;
            if let Err(failure) = self.serve(index, tally) {
                self.close(index, failure, tally);
            }
        }
        if round_start >= self.next_sweep {
            self.sweep(round_start, tally);
            self.next_sweep = round_start + Duration::from_millis(100);
        }
        if !self.events.is_empty() && !self.plan.pause.is_zero() {
            std::thread::sleep(self.plan.pause);
        }
        Ok(())
    }

    /// Handles readiness of subscriber `index`.
    fn serve(&mut self, index: usize, tally: &mut Tally) -> Result<(), Failure> {
        let Some(sub) = self.subscribers.get_mut(index).and_then(Option::as_mut) else {
            return Ok(());
        };
        match &mut sub.stage {
            Stage::Connecting { deadline } => {
                if let Some(error) = sub.stream.take_error().map_err(Failure::Connect)? {
                    return Err(Failure::Connect(error));
                }
                // A few dozen bytes into an empty socket buffer: written whole or not at all.
                let n = (&sub.stream)
                    .write(&self.plan.request)
                    .map_err(Failure::Io)?;
                if n != self.plan.request.len() {
                    return Err(Failure::Io(io::ErrorKind::WriteZero.into()));
                }
                self.poller
                    .modify_with_mode(&sub.stream, Event::readable(index), PollMode::Level)
                    .map_err(Failure::Io)?;
                sub.stage = Stage::Head {
                    deadline: *deadline,
                    head: Vec::new(),
                };
                Ok(())
            }
            Stage::Head { head, .. } => {
                let n = read(&sub.stream, &mut self.scratch)?;
                head.extend_from_slice(&self.scratch[..n]);
                let Some((mut conn, head_len)) = parse_head(head)? else {
                    if head.len() > MAX_HEAD {
                        return Err(Failure::Refused(String::from("response head too long")));
                    }
                    return Ok(());
                };
                tally.connected(index, Instant::now());
                conn.index = index;
                let result = conn.take(&head[head_len..], tally);
                sub.stage = Stage::Body(conn);
                result
            }
            Stage::Body(conn) => {
                let n = read(&sub.stream, &mut self.scratch)?;
                conn.take(&self.scratch[..n], tally)
            }
        }
    }

    /// Fails subscribers still connecting past their deadline.
    fn sweep(&mut self, now: Instant, tally: &mut Tally) {
        for index in 0..self.started {
            let late = self.subscribers[index]
                .as_ref()
                .is_some_and(|sub| match &sub.stage {
                    Stage::Connecting { deadline } | Stage::Head { deadline, .. } => {
                        now >= *deadline
                    }
                    Stage::Body(_) => false,
                });
            if late {
                self.close(index, Failure::Timeout, tally);
            }
        }
    }

    fn close(&mut self, index: usize, failure: Failure, tally: &mut Tally) {
        let Some(sub) = self.subscribers[index].take() else {
            return;
        };
        // Closing the socket removes it from the poller anyway; this is only tidier.
        let _ = self.poller.delete(&sub.stream);
        match sub.stage {
            Stage::Body(_) => tally.ended(index, &failure),
            Stage::Connecting { .. } | Stage::Head { .. } => tally.failed(index, &failure),
        }
    }
}

/// The subscribers and their record, driven round by round.
pub(crate) struct Run<'a> {
    pub(crate) subs: &'a mut Subscribers,
    pub(crate) tally: &'a mut Tally,
}

impl Run<'_> {
    /// One round of reads, waiting no later than `deadline` (and at most 10 ms).
    pub(crate) fn round(&mut self, deadline: Instant) -> Result<(), String> {
        let wait = deadline
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(10));
        self.subs
            .round(wait, self.tally)
            .map_err(|e| format!("cannot poll: {e}"))
    }

    /// Starts `n` subscribers at `rate` per second and serves them until all are connected
    /// or failed, or `budget` has passed (each subscriber's own timeout bounds this phase).
    /// Returns the seconds from the first connect attempt to the last subscriber connected.
    pub(crate) fn connect_all(
        &mut self,
        n: usize,
        rate: f64,
        budget: Duration,
    ) -> Result<f64, String> {
        let connect_start = Instant::now();
        let due = |index: usize| connect_start + Duration::from_secs_f64(index as f64 / rate);
        let connect_deadline = connect_start + budget;
        loop {
            let now = Instant::now();
            while self.subs.started() < n && due(self.subs.started()) <= now {
                self.subs.start_next(self.tally);
            }
            if self.tally.settled() >= n || now >= connect_deadline {
                break;
            }
            let next = if self.subs.started() < n {
                due(self.subs.started())
            } else {
                connect_deadline
            };
            self.round(next)?;
        }
        Ok(self.tally.last_connected().map_or(0.0, |at| {
            at.saturating_duration_since(connect_start).as_secs_f64()
        }))
    }

    /// Rounds until `deadline` or until `done` says so.
    pub(crate) fn until(
        &mut self,
        deadline: Instant,
        mut done: impl FnMut(&Tally) -> bool,
    ) -> Result<(), String> {
        while Instant::now() < deadline && !done(self.tally) {
            self.round(deadline)?;
        }
        Ok(())
    }
}

/// One read into `buf`: the byte count, never zero (the end of the stream is a failure).
fn read(stream: &TcpStream, buf: &mut [u8]) -> Result<usize, Failure> {
    loop {
        return match (&*stream).read(buf) {
            Ok(0) => Err(Failure::Closed),
            Ok(n) => Ok(n),
            // Level-triggered readiness can be stale: the next round asks again.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => Err(Failure::Io(e)),
        };
    }
}

/// A non-blocking connect from `source` (port chosen by the kernel) to `target`.
fn start_connect(source: Ipv4Addr, target: SocketAddrV4) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.bind(&SocketAddrV4::new(source, 0).into())?;
    socket.set_nonblocking(true)?;
    // The request must leave at once, not wait for Nagle.
    socket.set_nodelay(true)?;
    match socket.connect(&target.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(socket.into())
}

/// Parses a complete response head: `None` while incomplete, an error unless it is a `200`
/// with a `text/event-stream` body.
fn parse_head(bytes: &[u8]) -> Result<Option<(Connection, usize)>, Failure> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(Failure::Refused(format!("bad response head: {e}"))),
    };
    let code = response.code.unwrap_or(0);
    if code != 200 {
        return Err(Failure::Refused(format!(
            "{code} {}",
            response.reason.unwrap_or("")
        )));
    }
    let header = |name: &str| header_value(response.headers, name);
    let content_type = header("content-type").unwrap_or_default();
    if !content_type.starts_with("text/event-stream") {
        return Err(Failure::Refused(format!(
            "200 with content type {content_type:?}"
        )));
    }
    let chunked = header("transfer-encoding").is_some_and(|te| te.contains("chunked"));
    Ok(Some((Connection::new(chunked), head_len)))
}

/// One subscriber's body state: framing and SSE decoding.
#[derive(Debug)]
struct Connection {
    index: usize,
    /// `None` for a body without chunked framing (read until close).
    chunked: Option<Chunked>,
    decoder: Decoder,
}

impl Connection {
    fn new(chunked: bool) -> Connection {
        Connection {
            index: 0,
            chunked: chunked.then(Chunked::default),
            decoder: Decoder::new(),
        }
    }

    /// Takes body bytes just read: decodes them and records every complete event, all
    /// stamped with one receive time.
    fn take(&mut self, bytes: &[u8], tally: &mut Tally) -> Result<(), Failure> {
        if bytes.is_empty() {
            return Ok(());
        }
        let now = tally.now_micros();
        tally.read();
        let decoder = &mut self.decoder;
        let mut limit_hit = false;
        match &mut self.chunked {
            Some(chunked) => {
                chunked
                    .feed(bytes, |payload| {
                        limit_hit |= decoder.feed(payload).is_err();
                    })
                    .map_err(|_| Failure::Framing)?;
            }
            None => limit_hit = decoder.feed(bytes).is_err(),
        }
        if limit_hit {
            tally.decode_error();
        }
        // Borrowed events: no allocation per event on the client's hot path.
        while let Some(event) = decoder.next_event_ref() {
            tally.event(self.index, event.data, now);
        }
        match &self.chunked {
            Some(chunked) if chunked.is_done() => Err(Failure::Closed),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n";
        let (conn, len) = parse_head(ok).unwrap().unwrap();
        assert!(conn.chunked.is_some());
        assert_eq!(&ok[len..], b"5\r\n");
        let raw = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n\r\n";
        assert!(parse_head(raw).unwrap().unwrap().0.chunked.is_none());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Type: text/ev")
            .unwrap()
            .is_none());
        let not_sse = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n";
        assert!(matches!(parse_head(not_sse), Err(Failure::Refused(_))));
        let full = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n\r\n";
        assert!(matches!(parse_head(full), Err(Failure::Refused(s)) if s.starts_with("503")));
    }
}
