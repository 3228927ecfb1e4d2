//! The subscribers: one task each on a single-threaded executor, connecting from a chosen
//! loopback source address, checking the response head, then undoing the chunked framing in
//! place and feeding the payload to a core [`Decoder`].
//!
//! Memory per subscriber is kept small (a decoder, a framing state and a socket): all
//! subscribers read into one shared 64 KiB scratch buffer, borrowed only between awaits.

use std::cell::RefCell;
use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::rc::Rc;
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use futures_lite::{future, AsyncReadExt, AsyncWriteExt};
use socket2::{Domain, Socket, Type};
use ssecast::Decoder;

use super::chunked::Chunked;
use super::tally::Tally;

/// The read buffer every subscriber shares: large, so a subscriber with many events queued
/// takes them all in one read.
pub(crate) const SCRATCH: usize = 64 * 1024;

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
            Failure::Timeout => String::from("timed out waiting for the response head"),
            Failure::Refused(status) => format!("refused: {status}"),
            Failure::Io(e) => format!("i/o: {e}"),
            Failure::Closed => String::from("closed by the server"),
            Failure::Framing => String::from("bad chunked framing"),
        }
    }
}

/// The `index`-th subscriber: connects from `source`, then reads until the task is dropped or
/// the stream ends, recording into `tally`.
pub(crate) async fn run(
    index: usize,
    source: Ipv4Addr,
    plan: Rc<Plan>,
    tally: Rc<RefCell<Tally>>,
    scratch: Rc<RefCell<Vec<u8>>>,
) {
    let connected = future::or(async { connect(source, &plan).await.map(Some) }, async {
        Timer::after(plan.connect_timeout).await;
        Ok(None)
    })
    .await;
    let (stream, mut conn, leftover) = match connected {
        Ok(Some(ok)) => ok,
        Ok(None) => return tally.borrow_mut().failed(index, &Failure::Timeout),
        Err(failure) => return tally.borrow_mut().failed(index, &failure),
    };
    conn.index = index;
    tally.borrow_mut().connected(index, Instant::now());
    let taken = conn.take(&leftover, &mut tally.borrow_mut());
    drop(leftover);
    let result = match taken {
        Ok(()) => read_body(&stream, &mut conn, &tally, &scratch).await,
        Err(failure) => Err(failure),
    };
    if let Err(failure) = result {
        tally.borrow_mut().ended(index, &failure);
    }
}

/// Connects, sends the request and reads the response head. Returns the stream, the body
/// state and the body bytes that came with the head.
async fn connect(
    source: Ipv4Addr,
    plan: &Plan,
) -> Result<(Async<TcpStream>, Connection, Vec<u8>), Failure> {
    let stream = start_connect(source, plan.target).map_err(Failure::Connect)?;
    let stream = Async::new(stream).map_err(Failure::Connect)?;
    stream.writable().await.map_err(Failure::Connect)?;
    if let Some(error) = stream.get_ref().take_error().map_err(Failure::Connect)? {
        return Err(Failure::Connect(error));
    }
    (&stream)
        .write_all(&plan.request)
        .await
        .map_err(Failure::Io)?;
    let mut head = vec![0; 4096];
    let mut filled = 0;
    loop {
        if filled == head.len() {
            if head.len() >= MAX_HEAD {
                return Err(Failure::Refused(String::from("response head too long")));
            }
            head.resize(head.len() * 2, 0);
        }
        let n = (&stream)
            .read(&mut head[filled..])
            .await
            .map_err(Failure::Io)?;
        if n == 0 {
            return Err(Failure::Closed);
        }
        filled += n;
        if let Some((conn, head_len)) = parse_head(&head[..filled])? {
            head.truncate(filled);
            head.drain(..head_len);
            return Ok((stream, conn, head));
        }
    }
}

/// A non-blocking connect from `source` (port chosen by the kernel) to `target`.
fn start_connect(source: Ipv4Addr, target: SocketAddrV4) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.bind(&SocketAddrV4::new(source, 0).into())?;
    socket.set_nonblocking(true)?;
    // Many subscribers, few bytes each way: small writes must not wait for Nagle.
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
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).to_ascii_lowercase())
    };
    let content_type = header("content-type").unwrap_or_default();
    if !content_type.starts_with("text/event-stream") {
        return Err(Failure::Refused(format!(
            "200 with content type {content_type:?}"
        )));
    }
    let chunked = header("transfer-encoding").is_some_and(|te| te.contains("chunked"));
    Ok(Some((Connection::new(chunked), head_len)))
}

/// Reads the body until the stream ends or fails (or the task is dropped).
async fn read_body(
    stream: &Async<TcpStream>,
    conn: &mut Connection,
    tally: &RefCell<Tally>,
    scratch: &RefCell<Vec<u8>>,
) -> Result<(), Failure> {
    loop {
        stream.readable().await.map_err(Failure::Io)?;
        loop {
            let mut buf = scratch.borrow_mut();
            let n = match stream.get_ref().read(&mut buf) {
                Ok(0) => return Err(Failure::Closed),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Failure::Io(e)),
            };
            conn.take(&buf[..n], &mut tally.borrow_mut())?;
            // A short read emptied the socket: skip the read that would say WouldBlock.
            if n < buf.len() {
                break;
            }
        }
    }
}

/// One subscriber's body state: framing and SSE decoding.
#[derive(Debug)]
pub(crate) struct Connection {
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
        while let Some(event) = decoder.next_event() {
            tally.event(self.index, &event.data, now);
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
