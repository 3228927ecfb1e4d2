//! The floor: a bare SSE fan-out with no HTTP library, no executor and no queue, to measure
//! what the kernel alone costs per delivery on this machine. One thread, a level-triggered
//! poller, and for each published event exactly one `write()` per subscriber.
//!
//! It speaks just enough HTTP/1.1 for `ssecast-bench`: `GET` anything subscribes (a chunked
//! `text/event-stream`), `POST` anything with a `Content-Length` publishes its body as the
//! data of one event (encoded by the core, like every SSE byte in this repository). A subscriber whose socket is full is disconnected (a floor has no
//! queues). Loopback only; it exits by itself after its lifetime.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use polling::{PollMode, Poller};
use ssecast::{Event, EventId};

/// The poller key of the listening socket (connections count from 1).
const LISTENER: usize = 0;
/// The longest request head or body accepted.
const MAX_REQUEST: usize = 64 * 1024;

const SSE_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n";

/// A connection: still reading a request, or subscribed.
struct Connection {
    stream: TcpStream,
    /// Bytes of requests not yet handled (unused once subscribed).
    input: Vec<u8>,
    subscribed: bool,
}

/// Serves on `addr` (loopback) until `lifetime` has passed, printing `listening on
/// http://IP:PORT` once bound.
pub(crate) fn serve(addr: SocketAddr, lifetime: Duration) -> io::Result<()> {
    if !addr.ip().is_loopback() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the floor server listens on loopback only",
        ));
    }
    let end = Instant::now() + lifetime;
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    println!("listening on http://{}", listener.local_addr()?);
    let poller = Poller::new()?;
    poller.add_with_mode(
        &listener,
        polling::Event::readable(LISTENER),
        PollMode::Level,
    )?;
    let mut connections: HashMap<usize, Connection> = HashMap::new();
    let mut subscribers: Vec<usize> = Vec::new();
    let mut next_key = LISTENER + 1;
    let mut seq = 0u64;
    let mut events = Vec::new();
    let mut scratch = vec![0u8; 64 * 1024];
    let mut body = Vec::new();
    let mut dropped = Vec::new();
    let mut frame = Vec::new();
    while Instant::now() < end {
        events.clear();
        let wait = end.saturating_duration_since(Instant::now());
        match poller.wait(&mut events, Some(wait.min(Duration::from_secs(1)))) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for ready in &events {
            if ready.key == LISTENER {
                // Accept what is waiting now; the level-triggered listener reports the rest.
                for _ in 0..64 {
                    let Ok((stream, _)) = listener.accept() else {
                        break;
                    };
                    stream.set_nonblocking(true)?;
                    stream.set_nodelay(true)?;
                    let key = next_key;
                    next_key += 1;
                    poller.add_with_mode(
                        &stream,
                        polling::Event::readable(key),
                        PollMode::Level,
                    )?;
                    connections.insert(
                        key,
                        Connection {
                            stream,
                            input: Vec::new(),
                            subscribed: false,
                        },
                    );
                }
                continue;
            }
            let Some(conn) = connections.get_mut(&ready.key) else {
                continue;
            };
            let n = match (&conn.stream).read(&mut scratch) {
                Ok(0) => 0,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(_) => 0,
            };
            if n == 0 || conn.subscribed || conn.input.len() + n > MAX_REQUEST {
                // Subscribers send nothing more; the end of a stream closes it.
                close(&poller, &mut connections, ready.key);
                continue;
            }
            conn.input.extend_from_slice(&scratch[..n]);
            let mut requests = Vec::new();
            while let Some(request) = take_request(&mut conn.input) {
                let subscribe = matches!(request, Request::Subscribe);
                requests.push(request);
                if subscribe {
                    break;
                }
            }
            for request in requests {
                match request {
                    Request::Subscribe => {
                        let Some(conn) = connections.get_mut(&ready.key) else {
                            break;
                        };
                        if (&conn.stream).write_all(SSE_HEAD).is_ok() {
                            conn.subscribed = true;
                            subscribers.push(ready.key);
                        }
                    }
                    Request::Publish(data) => {
                        seq += 1;
                        let mut event = Event::new(data);
                        if let Ok(id) = EventId::new(seq.to_string()) {
                            event = event.with_id(id);
                        }
                        // Encoded once by the core; only the chunk framing is added here.
                        body.clear();
                        ssecast::encode(&event, &mut body);
                        frame.clear();
                        frame.extend_from_slice(format!("{:X}\r\n", body.len()).as_bytes());
                        frame.extend_from_slice(&body);
                        frame.extend_from_slice(b"\r\n");
                        // The fan-out: one write per subscriber, nothing else.
                        subscribers.retain(|&key| {
                            let written = connections.get(&key).is_some_and(|sub| {
                                matches!((&sub.stream).write(&frame), Ok(n) if n == frame.len())
                            });
                            if !written {
                                dropped.push(key);
                            }
                            written
                        });
                        let json = format!("{{\"id\":\"{seq}\"}}");
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{json}",
                            json.len()
                        );
                        if let Some(conn) = connections.get(&ready.key) {
                            let _ = (&conn.stream).write_all(answer.as_bytes());
                        }
                    }
                }
            }
        }
        // Subscribers the fan-out could not write to (socket full or gone) are closed.
        for key in dropped.drain(..) {
            close(&poller, &mut connections, key);
        }
    }
    Ok(())
}

fn close(poller: &Poller, connections: &mut HashMap<usize, Connection>, key: usize) {
    if let Some(conn) = connections.remove(&key) {
        let _ = poller.delete(&conn.stream);
    }
}

enum Request {
    Subscribe,
    Publish(String),
}

/// Takes one complete request off the front of `input`.
fn take_request(input: &mut Vec<u8>) -> Option<Request> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    let head_len = match request.parse(input) {
        Ok(httparse::Status::Complete(len)) => len,
        _ => return None,
    };
    if request.method == Some("GET") {
        input.drain(..head_len);
        return Some(Request::Subscribe);
    }
    let length = request
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| {
            std::str::from_utf8(h.value)
                .ok()?
                .trim()
                .parse::<usize>()
                .ok()
        })
        .unwrap_or(0);
    if input.len() < head_len + length {
        return None;
    }
    let data = String::from_utf8_lossy(&input[head_len..head_len + length]).into_owned();
    input.drain(..head_len + length);
    Some(Request::Publish(data))
}
