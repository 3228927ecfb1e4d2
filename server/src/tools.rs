//! The client tools: `decode` (stdin to JSON lines), `listen` (a reconnecting subscriber) and
//! `publish`. Every stream is parsed by the core's [`Decoder`], never by hand.

use std::io::{self, Read as _, Write};
use std::time::Duration;

use async_io::Timer;
use futures_lite::io::AsyncReadExt as _;
use ssecast::{Decoder, MessageEvent};

use crate::config::{DecodeArgs, ListenArgs, PublishArgs, Secret};
use crate::http::client::{self, Target};

/// The reconnection time before a stream sets one (the spec leaves it to the client).
const DEFAULT_RETRY_MS: u64 = 3_000;
/// The longest wait between reconnection attempts after repeated failures.
const MAX_BACKOFF_MS: u64 = 30_000;

fn other(reason: impl Into<String>) -> io::Error {
    io::Error::other(reason.into())
}

/// Writes `event` as one line: `{"type": "...", "data": "...", "last_event_id": "..."}`.
fn write_json(out: &mut impl Write, event: &MessageEvent) -> io::Result<()> {
    writeln!(
        out,
        "{{\"type\": {}, \"data\": {}, \"last_event_id\": {}}}",
        serde_json::Value::from(event.event_type.as_str()),
        serde_json::Value::from(event.data.as_str()),
        serde_json::Value::from(event.last_event_id.as_str()),
    )
}

/// Writes `event` for a person: `type id=ID: data`, further data lines indented.
fn write_readable(out: &mut impl Write, event: &MessageEvent) -> io::Result<()> {
    write!(out, "{}", event.event_type)?;
    if !event.last_event_id.is_empty() {
        write!(out, " id={}", event.last_event_id)?;
    }
    let mut lines = event.data.split('\n');
    writeln!(out, ": {}", lines.next().unwrap_or(""))?;
    for line in lines {
        writeln!(out, "  {line}")?;
    }
    Ok(())
}

/// `ssecast decode`: feeds stdin to the decoder (with `args`' limits) as bytes arrive and
/// prints one JSON line per dispatched event; at end of input, `{"retry": N}` if the stream
/// set a reconnection time.
pub fn decode_stdin(args: &DecodeArgs) -> io::Result<()> {
    let mut decoder = Decoder::with_limits(args.limits.limits());
    let mut input = io::stdin().lock();
    let mut out = io::stdout().lock();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if let Err(e) = decoder.feed(&buf[..n]) {
            log::warn!("{e}; skipped");
        }
        while let Some(event) = decoder.next_event() {
            write_json(&mut out, &event)?;
        }
        // Each event is visible as soon as its bytes arrived, not at the end of input.
        out.flush()?;
    }
    if let Some(retry) = decoder.retry() {
        writeln!(out, "{{\"retry\": {}}}", retry.0)?;
    }
    out.flush()
}

/// What one connection of `listen` came to.
enum Attempt {
    /// The stream was open and then ended; `events` were received.
    Ended { events: u64 },
    /// 204: the server asks the client to stop reconnecting.
    Stop,
    /// A status worth retrying (5xx), with the server's Retry-After in seconds.
    Unavailable(u16, Option<u64>),
}

/// `ssecast listen URL`: subscribes, prints events, and reconnects when the stream ends or
/// fails, sending the last event ID and waiting the stream's `retry:` time (longer, up to
/// 30 s, after consecutive failures).
pub fn listen(args: &ListenArgs) -> io::Result<()> {
    let target = Target::parse(&args.url, args.ca.as_deref())?;
    let token = args.token.as_ref().map(Secret::expose);
    smol::block_on(async {
        let mut decoder = Decoder::with_limits(args.limits.limits());
        let mut failures: u32 = 0;
        // Ends at a 204, a refusal, or --max-retries; otherwise runs until interrupted, one
        // attempt per reconnection delay.
        loop {
            let attempt = listen_once(&target, token, &mut decoder, args.json).await;
            decoder.reconnect();
            let mut wait_ms = decoder.retry().map_or(DEFAULT_RETRY_MS, |r| r.0);
            match attempt {
                Ok(Attempt::Stop) => {
                    log::info!("server answered 204 No Content: not reconnecting");
                    return Ok(());
                }
                Ok(Attempt::Ended { events }) => {
                    log::info!("stream ended after {events} events");
                    failures = if events > 0 { 0 } else { failures + 1 };
                }
                Ok(Attempt::Unavailable(status, retry_after)) => {
                    log::warn!("server answered {status}");
                    failures += 1;
                    if let Some(secs) = retry_after {
                        wait_ms = wait_ms.max(secs.saturating_mul(1000));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::InvalidData => return Err(e),
                Err(e) => {
                    log::warn!("connection failed: {e}");
                    failures += 1;
                }
            }
            if args.max_retries > 0 && failures >= args.max_retries {
                return Err(other(format!("giving up after {failures} failed attempts")));
            }
            if failures > 1 {
                let factor = 1u64 << (failures - 1).min(5);
                wait_ms = wait_ms
                    .saturating_mul(factor)
                    .min(MAX_BACKOFF_MS.max(wait_ms));
            }
            let last = decoder.last_event_id();
            log::info!("reconnecting in {wait_ms} ms (Last-Event-ID {last:?})");
            Timer::after(Duration::from_millis(wait_ms)).await;
        }
    })
}

async fn listen_once(
    target: &Target,
    token: Option<&str>,
    decoder: &mut Decoder,
    json: bool,
) -> io::Result<Attempt> {
    let mut url = target.url.clone();
    let mut headers = vec![
        ("Accept", "text/event-stream".to_owned()),
        ("Cache-Control", "no-cache".to_owned()),
    ];
    if let Some(token) = token {
        headers.push(("Authorization", bearer(token)?));
    }
    let last = decoder.last_event_id();
    if !last.is_empty() {
        // The decoder refuses ids with CR, LF or NUL, so the value is a valid header unless
        // it is not ASCII; such an id is sent as the query parameter instead.
        if last.is_ascii() {
            headers.push(("Last-Event-ID", last.to_owned()));
        } else {
            url.query_pairs_mut().append_pair("last_event_id", last);
        }
    }
    let mut res = client::send(target, &url, "GET", &headers, None).await?;
    match res.status() {
        200 => {}
        204 => return Ok(Attempt::Stop),
        status @ 500..=599 => {
            let retry_after = res
                .header("Retry-After")
                .and_then(|v| v.trim().parse().ok());
            return Ok(Attempt::Unavailable(status, retry_after));
        }
        status => {
            let reason = res.text().await.unwrap_or_default();
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{url}: {status} {}", reason.trim()),
            ));
        }
    }
    let content_type = res.header("Content-Type");
    if !content_type
        .as_deref()
        .is_some_and(|ct| ct.starts_with("text/event-stream"))
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{url}: not an event stream (Content-Type {content_type:?})"),
        ));
    }
    log::info!("connected to {url}");
    let mut body = res.body();
    let mut buf = vec![0u8; 64 * 1024];
    let mut events = 0;
    let mut out = io::stdout();
    // Ends at the end of the stream or on an error.
    loop {
        let n = match body.read(&mut buf).await {
            Ok(0) => return Ok(Attempt::Ended { events }),
            Ok(n) => n,
            Err(e) if events > 0 => {
                log::warn!("stream failed: {e}");
                return Ok(Attempt::Ended { events });
            }
            Err(e) => return Err(e),
        };
        if let Err(e) = decoder.feed(&buf[..n]) {
            log::warn!("{e}; skipped");
        }
        let mut lock = out.lock();
        while let Some(event) = decoder.next_event() {
            events += 1;
            if json {
                write_json(&mut lock, &event)?;
            } else {
                write_readable(&mut lock, &event)?;
            }
        }
        lock.flush()?;
        drop(lock);
        out.flush()?;
    }
}

/// An `Authorization` value; the error does not repeat the token.
fn bearer(token: &str) -> io::Result<String> {
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(other("the token must be visible ASCII"));
    }
    Ok(format!("Bearer {token}"))
}

/// `ssecast publish URL DATA`: posts one event and prints the id the server gave it.
pub fn publish(args: &PublishArgs) -> io::Result<()> {
    let target = Target::parse(&args.url, args.ca.as_deref())?;
    let mut url = target.url.clone();
    if url.path() == "/" || url.path().is_empty() {
        url.set_path("/publish");
    }
    let mut fields = serde_json::Map::new();
    fields.insert("data".into(), args.data.clone().into());
    if let Some(event) = &args.event {
        fields.insert("event".into(), event.clone().into());
    }
    if let Some(topic) = &args.topic {
        fields.insert("topic".into(), topic.clone().into());
    }
    let mut headers = vec![("Content-Type", "application/json".to_owned())];
    if let Some(token) = &args.token {
        headers.push(("Authorization", bearer(token.expose())?));
    }
    let body = serde_json::Value::Object(fields).to_string().into_bytes();
    smol::block_on(async {
        let mut res = client::send(&target, &url, "POST", &headers, Some(body)).await?;
        let text = res.text().await?;
        if res.status() != 200 {
            return Err(other(format!("{}: {}", res.status(), text.trim())));
        }
        let id = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("id").and_then(|id| id.as_str()).map(str::to_owned))
            .ok_or_else(|| other(format!("unexpected answer: {}", text.trim())))?;
        let mut out = io::stdout().lock();
        writeln!(out, "{id}")?;
        out.flush()
    })
}
