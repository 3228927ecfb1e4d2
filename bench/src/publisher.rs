//! The publisher: a thread of its own posting `<seq> <send µs>` on one keep-alive connection
//! at a fixed rate, open loop. A POST that is slow to answer delays the next ones, so a
//! server whose publish call waits for its fan-out shows up as an achieved rate below the
//! target and as a schedule lag.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::response;
use crate::tally::micros_since;
use crate::target::Target;

/// What to publish, and when.
#[derive(Debug, Clone)]
pub(crate) struct Schedule {
    pub(crate) target: Target,
    /// Events per second.
    pub(crate) rate: f64,
    /// The instant the data's send times count from.
    pub(crate) base: Instant,
    /// The first event is due then.
    pub(crate) start: Instant,
    /// No event is sent from then on.
    pub(crate) stop: Instant,
    /// Events sent in `[window_start, stop)` are the measured ones.
    pub(crate) window_start: Instant,
    /// Bytes of padding added to each event's data.
    pub(crate) pad: usize,
    /// Limit on one POST's round trip.
    pub(crate) timeout: Duration,
}

/// What the publisher did.
#[derive(Debug)]
pub(crate) struct Published {
    /// POSTs answered with 2xx.
    pub(crate) ok: u64,
    /// POSTs that failed or got another status.
    pub(crate) errors: u64,
    /// The first error, for the summary.
    pub(crate) first_error: Option<String>,
    /// Successful POSTs sent in the measuring window.
    pub(crate) in_window: u64,
    /// Sequence number of the last successful POST.
    pub(crate) last_seq: Option<u64>,
    /// Largest delay of a POST behind its schedule.
    pub(crate) max_lag: Duration,
    /// POST round trips in µs.
    pub(crate) round_trip: Histogram<u64>,
}

/// Posts events as `schedule` says, on the calling thread, until `schedule.stop`.
pub(crate) fn run(schedule: &Schedule) -> Published {
    let mut published = Published {
        ok: 0,
        errors: 0,
        first_error: None,
        in_window: 0,
        last_seq: None,
        max_lag: Duration::ZERO,
        // 1 µs to 10 min at 3 significant digits; the bounds are constants that are valid.
        round_trip: Histogram::new_with_bounds(1, 600_000_000, 3)
            .unwrap_or_else(|_| unreachable!("constant histogram bounds are valid")),
    };
    let interval = Duration::from_secs_f64(1.0 / schedule.rate);
    let padding = "x".repeat(schedule.pad);
    let mut client: Option<Client> = None;
    let mut body = String::new();
    for seq in 0u64.. {
        let due = schedule.start + interval.mul_f64(seq as f64);
        if due >= schedule.stop {
            break;
        }
        let now = Instant::now();
        if now >= schedule.stop {
            break; // behind schedule: the events left would fall outside the window
        }
        if now < due {
            thread::sleep(due - now);
        } else {
            published.max_lag = published.max_lag.max(now - due);
        }
        let sent = Instant::now();
        if sent >= schedule.stop {
            break; // woke up past the window: this event would count for nobody
        }
        body.clear();
        body.push_str(&format!("{seq} {}", micros_since(schedule.base, sent)));
        if !padding.is_empty() {
            body.push(' ');
            body.push_str(&padding);
        }
        let result = match &mut client {
            Some(c) => c.post(&schedule.target, &body),
            None => Client::connect(&schedule.target, schedule.timeout).and_then(|mut c| {
                let result = c.post(&schedule.target, &body);
                client = Some(c);
                result
            }),
        };
        published
            .round_trip
            .saturating_record(micros_since(sent, Instant::now()).max(1));
        match result {
            Ok(status) if (200..300).contains(&status) => {
                published.ok += 1;
                published.last_seq = Some(seq);
                if sent >= schedule.window_start {
                    published.in_window += 1;
                }
            }
            Ok(status) => published.error(format!("POST answered {status}")),
            Err(e) => {
                published.error(format!("POST failed: {e}"));
                client = None;
            }
        }
    }
    published
}

impl Published {
    fn error(&mut self, what: String) {
        self.errors += 1;
        self.first_error.get_or_insert(what);
    }
}

/// A keep-alive HTTP/1.1 connection for POSTs.
struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    fn connect(target: &Target, timeout: Duration) -> io::Result<Client> {
        let stream = TcpStream::connect_timeout(&target.addr.into(), timeout)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        Ok(Client {
            stream,
            buf: Vec::with_capacity(4096),
        })
    }

    /// Posts `body` as `text/plain` and returns the status once the whole response is read.
    fn post(&mut self, target: &Target, body: &str) -> io::Result<u16> {
        let request = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
            target.path,
            target.addr,
            body.len()
        );
        self.stream.write_all(request.as_bytes())?;
        self.read_response()
    }

    /// Reads until one whole response has arrived (this client never pipelines, so nothing
    /// follows it) and returns its status.
    fn read_response(&mut self) -> io::Result<u16> {
        self.buf.clear();
        loop {
            self.read_more()?;
            // No length: the body runs to the close, so the caller reconnects for the next
            // POST.
            match response::parse(&self.buf).map_err(|e| bad(&e.to_string()))? {
                Some(response) => return Ok(response.status),
                None => continue,
            }
        }
    }

    fn read_more(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}
