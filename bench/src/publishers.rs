//! The publishers of the publish mode: N keep-alive connections driven by one thread and one
//! level-triggered poller, each keeping K requests in flight (closed loop, as wrk does: a new
//! request goes out as each answer comes in) until the measuring window ends; then the
//! answers still owed are waited for, within the request timeout.
//!
//! Every event's data is `<seq> <send µs>[ padding]`, `seq` unique across all connections,
//! so the subscribers time it like the fan-out's events. Nothing is allocated per request:
//! requests are written into each connection's output buffer, answers parsed in place out of
//! its input buffer ([`response::parse`]).

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use polling::{Event, PollMode, Poller};
use serde_json::Value;

use crate::response;
use crate::tally::micros_since;
use crate::target::Target;

/// What a request's body holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum BodyKind {
    /// The event's data itself, `text/plain`.
    Text,
    /// `{"data": ..., "topic": ...}`, `application/json`.
    Json,
    /// `--batch` such JSON events, one a line, `application/x-ndjson`.
    Ndjson,
}

impl BodyKind {
    /// Its flag value.
    pub(crate) fn name(self) -> &'static str {
        match self {
            BodyKind::Text => "text",
            BodyKind::Json => "json",
            BodyKind::Ndjson => "ndjson",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            BodyKind::Text => "text/plain",
            BodyKind::Json => "application/json",
            BodyKind::Ndjson => "application/x-ndjson",
        }
    }
}

/// What the publishers send, and when.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Where to POST (path and query included).
    pub(crate) target: Target,
    pub(crate) body: BodyKind,
    /// Events per request: 1 unless NDJSON.
    pub(crate) batch: usize,
    /// The `topic` field of every JSON event (text bodies carry it in the query instead).
    pub(crate) topic: Option<String>,
    /// Bytes of padding added to each event's data.
    pub(crate) pad: usize,
    pub(crate) connections: usize,
    /// Requests in flight per connection.
    pub(crate) pipeline: usize,
    /// The instant the data's send times count from.
    pub(crate) base: Instant,
    /// Answers arriving in `[window_start, stop)` are the measured ones.
    pub(crate) window_start: Instant,
    /// No request is sent from then on.
    pub(crate) stop: Instant,
    /// Limit on connecting and on waiting for one answer.
    pub(crate) timeout: Duration,
}

/// What the publishers did.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// Requests written.
    pub(crate) requests: u64,
    /// Answers by status, the whole run.
    pub(crate) by_status: BTreeMap<u16, u64>,
    /// Events in requests answered 2xx, the whole run: what every subscriber must receive.
    pub(crate) acked: u64,
    /// Events acknowledged, and 2xx answers, that arrived in the window.
    pub(crate) acked_in_window: u64,
    pub(crate) ok_in_window: u64,
    /// Requests never answered (their connection failed, or the end came first): their
    /// events may or may not have been published.
    pub(crate) unanswered: u64,
    /// Connection failures by reason.
    pub(crate) errors: BTreeMap<String, u64>,
    /// Connections opened (more than `connections` means some were lost and reopened).
    pub(crate) connects: u64,
    /// 2xx NDJSON answers that did not list one id per event.
    pub(crate) id_mismatches: u64,
    /// The first non-2xx answer, status and body, to say why.
    pub(crate) first_refusal: Option<String>,
    /// Request-to-answer time in µs of answers that arrived in the window.
    pub(crate) latency: Histogram<u64>,
}

impl Outcome {
    fn new() -> Outcome {
        Outcome {
            requests: 0,
            by_status: BTreeMap::new(),
            acked: 0,
            acked_in_window: 0,
            ok_in_window: 0,
            unanswered: 0,
            errors: BTreeMap::new(),
            connects: 0,
            id_mismatches: 0,
            first_refusal: None,
            // 1 µs to 10 min at 3 significant digits; the bounds are constants that are valid.
            latency: Histogram::new_with_bounds(1, 600_000_000, 3)
                .unwrap_or_else(|_| unreachable!("constant histogram bounds are valid")),
        }
    }

    /// Answers that were not 2xx.
    pub(crate) fn non_2xx(&self) -> u64 {
        self.by_status
            .iter()
            .filter(|(status, _)| !(200..300).contains(*status))
            .map(|(_, n)| n)
            .sum()
    }

    fn error(&mut self, why: String) {
        *self.errors.entry(why).or_default() += 1;
    }
}

/// One request on the wire, waiting for its answer.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    sent: Instant,
    events: u64,
}

/// One publisher connection.
struct Conn {
    stream: TcpStream,
    /// Requests not yet written, from `written` on.
    out: Vec<u8>,
    written: usize,
    /// Answer bytes not yet parsed.
    input: Vec<u8>,
    in_flight: VecDeque<InFlight>,
    /// Registered for writability too (output is pending).
    writable: bool,
}

impl Conn {
    fn connect(target: &Target, timeout: Duration) -> io::Result<Conn> {
        let stream = TcpStream::connect_timeout(&target.addr.into(), timeout)?;
        stream.set_nodelay(true)?;
        stream.set_nonblocking(true)?;
        Ok(Conn {
            stream,
            out: Vec::with_capacity(4096),
            written: 0,
            input: Vec::with_capacity(4096),
            in_flight: VecDeque::new(),
            writable: false,
        })
    }

    /// Writes what the socket takes now.
    fn flush(&mut self) -> Result<(), String> {
        while self.written < self.out.len() {
            match (&self.stream).write(&self.out[self.written..]) {
                Ok(0) => return Err(String::from("write: connection closed")),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("write: {e}")),
            }
        }
        if self.written == self.out.len() {
            self.out.clear();
            self.written = 0;
        }
        Ok(())
    }
}

/// Builds requests: the fixed head, then each body.
struct Requests {
    head: String,
    body: Vec<u8>,
    kind: BodyKind,
    batch: usize,
    /// `,"topic":"..."` for JSON events, or empty.
    topic_field: String,
    padding: String,
    next_seq: u64,
}

impl Requests {
    fn new(plan: &Plan) -> Requests {
        let topic_field = match &plan.topic {
            Some(topic) => format!(",\"topic\":{}", Value::from(topic.as_str())),
            None => String::new(),
        };
        Requests {
            head: format!(
                "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: {}\r\nContent-Length: ",
                plan.target.path,
                plan.target.addr,
                plan.body.content_type()
            ),
            body: Vec::with_capacity(1024),
            kind: plan.body,
            batch: plan.batch.max(1),
            topic_field,
            padding: if plan.pad == 0 {
                String::new()
            } else {
                format!(" {}", "x".repeat(plan.pad))
            },
            next_seq: 0,
        }
    }

    /// Appends one request to `out`, stamped `send_us`; returns its number of events.
    fn write(&mut self, out: &mut Vec<u8>, send_us: u64) -> u64 {
        self.body.clear();
        let events = match self.kind {
            BodyKind::Text | BodyKind::Json => 1,
            BodyKind::Ndjson => self.batch,
        };
        for _ in 0..events {
            let seq = self.next_seq;
            self.next_seq += 1;
            let body = &mut self.body;
            // Writing into a Vec cannot fail.
            let _ = match self.kind {
                BodyKind::Text => write!(body, "{seq} {send_us}{}", self.padding),
                BodyKind::Json => write!(
                    body,
                    "{{\"data\":\"{seq} {send_us}{}\"{}}}",
                    self.padding, self.topic_field
                ),
                BodyKind::Ndjson => writeln!(
                    body,
                    "{{\"data\":\"{seq} {send_us}{}\"{}}}",
                    self.padding, self.topic_field
                ),
            };
        }
        out.extend_from_slice(self.head.as_bytes());
        let _ = write!(out, "{}\r\n\r\n", self.body.len());
        out.extend_from_slice(&self.body);
        events as u64
    }
}

/// Publishes as `plan` says, on the calling thread, until `plan.stop` and the last answers.
pub(crate) fn run(plan: &Plan) -> Outcome {
    let mut outcome = Outcome::new();
    let poller = match Poller::new() {
        Ok(poller) => poller,
        Err(e) => {
            outcome.error(format!("cannot poll: {e}"));
            return outcome;
        }
    };
    let n = plan.connections;
    let mut conns: Vec<Option<Conn>> = (0..n).map(|_| None).collect();
    let mut retry_at = vec![Instant::now(); n];
    let mut requests = Requests::new(plan);
    let mut events = Vec::with_capacity(n);
    let mut scratch = vec![0u8; 64 * 1024];
    let give_up = plan.stop + plan.timeout;
    loop {
        let now = Instant::now();
        let sending = now < plan.stop;
        for i in 0..n {
            if conns[i].is_none() && sending && now >= retry_at[i] {
                match Conn::connect(&plan.target, plan.timeout).and_then(|conn| {
                    poller.add_with_mode(&conn.stream, Event::readable(i), PollMode::Level)?;
                    Ok(conn)
                }) {
                    Ok(conn) => {
                        outcome.connects += 1;
                        conns[i] = Some(conn);
                    }
                    Err(e) => {
                        outcome.error(format!("connect: {e}"));
                        retry_at[i] = now + Duration::from_millis(100);
                    }
                }
            }
            let Some(conn) = conns[i].as_mut() else {
                continue;
            };
            if sending {
                let send_us = micros_since(plan.base, now);
                while conn.in_flight.len() < plan.pipeline {
                    let count = requests.write(&mut conn.out, send_us);
                    conn.in_flight.push_back(InFlight {
                        sent: now,
                        events: count,
                    });
                    outcome.requests += 1;
                }
            }
            let late = conn
                .in_flight
                .front()
                .is_some_and(|f| now.saturating_duration_since(f.sent) > plan.timeout);
            let result = if late {
                Err(String::from("no answer within the request timeout"))
            } else {
                conn.flush().and_then(|()| {
                    let pending = !conn.out.is_empty();
                    if pending != conn.writable {
                        let interest = Event {
                            key: i,
                            readable: true,
                            writable: pending,
                        };
                        poller
                            .modify_with_mode(&conn.stream, interest, PollMode::Level)
                            .map_err(|e| format!("cannot poll: {e}"))?;
                        conn.writable = pending;
                    }
                    Ok(())
                })
            };
            if let Err(why) = result {
                fail(&poller, &mut conns[i], why, &mut outcome);
                retry_at[i] = now + Duration::from_millis(10);
            }
        }
        let owed = conns.iter().flatten().any(|c| !c.in_flight.is_empty());
        if !sending && (!owed || now >= give_up) {
            break;
        }
        let wait = if sending {
            plan.stop.saturating_duration_since(now)
        } else {
            give_up.saturating_duration_since(now)
        };
        events.clear();
        match poller.wait(&mut events, Some(wait.min(Duration::from_millis(10)))) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                outcome.error(format!("cannot poll: {e}"));
                break;
            }
        }
        for ready in &events {
            let i = ready.key;
            let Some(conn) = conns.get_mut(i).and_then(Option::as_mut) else {
                continue;
            };
            if ready.readable {
                if let Err(why) = read_answers(conn, plan, &mut scratch, &mut outcome) {
                    fail(&poller, &mut conns[i], why, &mut outcome);
                    retry_at[i] = Instant::now() + Duration::from_millis(10);
                }
            }
            // Writable: the next pass flushes.
        }
    }
    for slot in &mut conns {
        if let Some(conn) = slot.take() {
            outcome.unanswered += conn.in_flight.len() as u64;
            let _ = poller.delete(&conn.stream);
        }
    }
    outcome
}

/// Drops a failed connection; its requests in flight go unanswered.
fn fail(poller: &Poller, slot: &mut Option<Conn>, why: String, outcome: &mut Outcome) {
    if let Some(conn) = slot.take() {
        outcome.unanswered += conn.in_flight.len() as u64;
        // Closing the socket removes it from the poller anyway; this is only tidier.
        let _ = poller.delete(&conn.stream);
    }
    outcome.error(why);
}

/// One read, and every answer it completes.
fn read_answers(
    conn: &mut Conn,
    plan: &Plan,
    scratch: &mut [u8],
    outcome: &mut Outcome,
) -> Result<(), String> {
    let n = loop {
        match (&conn.stream).read(scratch) {
            Ok(0) => return Err(String::from("closed by the server")),
            Ok(n) => break n,
            // Level-triggered readiness can be stale: the next round asks again.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read: {e}")),
        }
    };
    conn.input.extend_from_slice(&scratch[..n]);
    let now = Instant::now();
    let in_window = plan.window_start <= now && now < plan.stop;
    let mut pos = 0;
    while let Some(answer) = response::parse(&conn.input[pos..]).map_err(|e| e.to_string())? {
        let Some(request) = conn.in_flight.pop_front() else {
            return Err(String::from("an answer to no request"));
        };
        *outcome.by_status.entry(answer.status).or_default() += 1;
        let body = &conn.input[pos..pos + answer.len];
        if (200..300).contains(&answer.status) {
            outcome.acked += request.events;
            if plan.body == BodyKind::Ndjson
                && count_ids(&answer.body(body)) != Some(request.events as usize)
            {
                outcome.id_mismatches += 1;
            }
            if in_window {
                outcome.acked_in_window += request.events;
                outcome.ok_in_window += 1;
            }
        } else if outcome.first_refusal.is_none() {
            let text = String::from_utf8_lossy(&answer.body(body)).into_owned();
            outcome.first_refusal = Some(format!("{} {}", answer.status, text.trim()));
        }
        if in_window {
            outcome
                .latency
                .saturating_record(micros_since(request.sent, now).max(1));
        }
        pos += answer.len;
    }
    conn.input.drain(..pos);
    Ok(())
}

/// The ids a batch publish was answered with: a JSON array, an object with an `ids` array,
/// or one JSON object with an `id` a line (the server side is not settled yet; each shape
/// says how many). `None` if the body is none of these.
fn count_ids(body: &[u8]) -> Option<usize> {
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        return match value {
            Value::Array(ids) => Some(ids.len()),
            Value::Object(fields) => match fields.get("ids") {
                Some(ids) => ids.as_array().map(Vec::len),
                None => fields.get("id").map(|_| 1),
            },
            _ => None,
        };
    }
    let mut ids = 0;
    for line in body.split(|&b| b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        serde_json::from_slice::<Value>(line).ok()?.get("id")?;
        ids += 1;
    }
    Some(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(body: BodyKind, batch: usize, topic: Option<&str>, pad: usize) -> Plan {
        let now = Instant::now();
        Plan {
            target: Target::parse("http://127.0.0.1:1/publish?topic=t").unwrap(),
            body,
            batch,
            topic: topic.map(String::from),
            pad,
            connections: 1,
            pipeline: 1,
            base: now,
            window_start: now,
            stop: now,
            timeout: Duration::from_secs(1),
        }
    }

    /// The requests `plan` writes first, stamped 42 µs.
    fn check(plan: &Plan, count: usize, expected: &str) {
        let mut requests = Requests::new(plan);
        let mut out = Vec::new();
        for _ in 0..count {
            requests.write(&mut out, 42);
        }
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn bodies() {
        let head = |ct: &str, len: usize| {
            format!("POST /publish?topic=t HTTP/1.1\r\nHost: 127.0.0.1:1\r\nContent-Type: {ct}\r\nContent-Length: {len}\r\n\r\n")
        };
        let text = head("text/plain", 4);
        check(
            &plan(BodyKind::Text, 1, None, 0),
            2,
            &format!("{text}0 42{}1 42", head("text/plain", 4)),
        );
        check(
            &plan(BodyKind::Text, 1, None, 3),
            1,
            &format!("{}0 42 xxx", head("text/plain", 8)),
        );
        let json = r#"{"data":"0 42","topic":"a\"b"}"#;
        check(
            &plan(BodyKind::Json, 1, Some("a\"b"), 0),
            1,
            &format!("{}{json}", head("application/json", json.len())),
        );
        let ndjson = "{\"data\":\"0 42\"}\n{\"data\":\"1 42\"}\n{\"data\":\"2 42\"}\n";
        check(
            &plan(BodyKind::Ndjson, 3, None, 0),
            1,
            &format!("{}{ndjson}", head("application/x-ndjson", ndjson.len())),
        );
        // Every line is an event of the JSON form.
        for line in ndjson.lines() {
            let event: Value = serde_json::from_str(line).unwrap();
            assert!(event["data"].is_string());
        }
    }

    #[test]
    fn ids() {
        let check = |body: &str, expected: Option<usize>| {
            assert_eq!(count_ids(body.as_bytes()), expected, "{body:?}");
        };
        check(r#"{"ids":["1","2","3"]}"#, Some(3));
        check(r#"["1","2"]"#, Some(2));
        check("{\"id\":\"1\"}\n{\"id\":\"2\"}\n", Some(2));
        check(r#"{"id":"1"}"#, Some(1));
        check(r#"{"ids":"1"}"#, None);
        check(r#""1""#, None);
        check("{\"id\":\"1\"}\nnot json\n", None);
        check("", Some(0));
    }
}
