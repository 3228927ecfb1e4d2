//! One HTTP/2 stream, in a task of its own: its request (headers from h2, the body read
//! within `--max-body` and `--body-timeout`), the route, and the answer: a response as
//! HEADERS and DATA, or an event stream flushed a batch of queued frames at a time, within
//! flow control.

use std::future::poll_fn;
use std::io;
use std::sync::Arc;
use std::task::Poll;

use async_io::Timer;
use futures_lite::future::FutureExt as _;
use futures_lite::io::AsyncReadExt as _;
use h2::server::SendResponse;
use h2::{Reason, RecvStream, SendStream};
use http::header::{HeaderName, HeaderValue};
use ssecast::Frame;

use super::send::{send_all, Chunk, Stopped};
use super::ConnState;
use crate::app::{App, EndCause, Feed, Polled};
use crate::http::message::{Body, ConnInfo, Method, Reply, Request, Response, Status, Value};
use crate::http::Refusal;
use crate::routes;

/// Most frames taken from a subscriber's queue for one batch of DATA frames.
const MAX_FRAMES: usize = 64;
/// Bytes of a static file read per DATA frame batch.
const FILE_READ: usize = 16 * 1024;

/// Serves one stream: reads the request, routes it, sends the answer.
pub(super) async fn serve(
    app: Arc<App>,
    req: http::Request<RecvStream>,
    mut respond: SendResponse<Chunk>,
    info: Arc<ConnInfo>,
    conn: Arc<ConnState>,
) {
    // Reset before it was served (HEADERS then RST_STREAM): no work is done for it, and
    // the connection counts it against the peer (rapid reset).
    if futures_lite::future::poll_once(poll_fn(|cx| respond.poll_reset(cx)))
        .await
        .is_some()
    {
        conn.early_reset();
        return;
    }
    let head_only = req.method() == http::Method::HEAD;
    // Boxed: what the request needed (its headers, body, the route's state) is freed
    // before the answer, so an idle event stream's task holds the stream's own state only.
    let reply = Box::pin(route(&app, req, &info)).await;
    let served = match reply {
        Reply::Response(res) => respond_with(&app, &mut respond, res, head_only).await,
        Reply::Events(headers, feed) => events(&app, &mut respond, &headers, feed).await,
    };
    if let Err(e) = served {
        log::debug!("{}: HTTP/2 stream ended: {e}", info.peer);
    }
}

/// Reads the request and hands it to the routes.
async fn route(app: &Arc<App>, req: http::Request<RecvStream>, info: &ConnInfo) -> Reply {
    let (parts, mut body) = req.into_parts();
    let bytes = match read(app, &parts, &mut body).await {
        Ok(bytes) => bytes,
        Err(refusal) => return refused(app, info, refusal),
    };
    let path = match parts.uri.path() {
        "" => "/",
        path => path,
    };
    let query = parts.uri.query().unwrap_or("");
    match method(&parts) {
        Ok(method) => {
            let req = Request::http2(method, path, query, &parts.headers, &bytes, info);
            routes::handle(app, &req).await
        }
        Err(refusal) => refused(app, info, refusal),
    }
}

/// A refusal before any route saw the request, answered like HTTP/1.1's.
fn refused(app: &App, info: &ConnInfo, refusal: Refusal) -> Reply {
    log::debug!("{}: {} {}", info.peer, refusal.status, refusal.reason);
    app.count_bad_request();
    Response::text(refusal.status, &refusal.reason).into()
}

/// The request's method; methods are case-sensitive as in HTTP/1.1.
fn method(parts: &http::request::Parts) -> Result<Method, Refusal> {
    Method::parse(parts.method.as_str()).map_err(|case| {
        if case {
            Refusal::new(Status::BAD_REQUEST, "methods are case-sensitive")
        } else {
            Refusal::new(Status::NOT_IMPLEMENTED, "unknown method")
        }
    })
}

/// Checks the header values (ASCII, as HTTP/1.1 requires of them here) and reads the whole
/// body, within `--max-body` and with each read within `--body-timeout`; flow-control
/// capacity is given back as the body is read.
async fn read(
    app: &App,
    parts: &http::request::Parts,
    body: &mut RecvStream,
) -> Result<Vec<u8>, Refusal> {
    if parts.headers.values().any(|v| v.to_str().is_err()) {
        return Err(Refusal::new(
            Status::BAD_REQUEST,
            "header values must be visible ASCII",
        ));
    }
    let max = app.args.max_body;
    let too_large = || {
        Refusal::new(
            Status::PAYLOAD_TOO_LARGE,
            format!("the body is larger than {max} bytes (--max-body)"),
        )
    };
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max as u64) {
        return Err(too_large());
    }
    let mut out = Vec::new();
    if body.is_end_stream() {
        return Ok(out);
    }
    let timeout = app.args.body_timeout;
    loop {
        let data = async { Some(poll_fn(|cx| body.poll_data(cx)).await) }.or(async {
            Timer::after(timeout).await;
            None
        });
        match data.await {
            None => {
                return Err(Refusal::new(
                    Status::REQUEST_TIMEOUT,
                    format!(
                        "the body stopped arriving: no bytes within {} (--body-timeout)",
                        crate::config::show_duration(timeout)
                    ),
                ))
            }
            Some(None) => return Ok(out),
            Some(Some(Ok(bytes))) => {
                let _ = body.flow_control().release_capacity(bytes.len());
                if out.len() + bytes.len() > max {
                    return Err(too_large());
                }
                out.extend_from_slice(&bytes);
            }
            Some(Some(Err(_))) => return Err(Refusal::new(Status::BAD_REQUEST, "stream failed")),
        }
    }
}

/// The response head for h2: the status and the route's headers (names lower-cased; a
/// value with a CR or LF, or a connection-specific field, is dropped).
fn head(status: Status, headers: &[(&'static str, Value)]) -> http::Response<()> {
    let mut res = http::Response::new(());
    *res.status_mut() = http::StatusCode::from_u16(status.0).unwrap_or(http::StatusCode::OK);
    let map = res.headers_mut();
    for (name, value) in headers {
        if is_connection_specific(name) {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            map.append(name, value);
        }
    }
    res
}

fn is_connection_specific(name: &str) -> bool {
    [
        "connection",
        "keep-alive",
        "transfer-encoding",
        "upgrade",
        "proxy-connection",
    ]
    .iter()
    .any(|n| n.eq_ignore_ascii_case(name))
}

/// Sends a complete response: HEADERS, then the body as DATA within flow control.
async fn respond_with(
    app: &App,
    respond: &mut SendResponse<Chunk>,
    res: Response,
    head_only: bool,
) -> io::Result<()> {
    let mut head = head(res.status, &res.headers);
    let len = res.body.len();
    if !matches!(res.status.0, 100..=199 | 204 | 304) {
        head.headers_mut()
            .insert(http::header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    let empty = head_only || len == 0;
    let mut stream = respond
        .send_response(head, empty)
        .map_err(io::Error::other)?;
    if empty {
        return Ok(());
    }
    let timeout = app.write_timeout();
    let never = |_: &mut std::task::Context<'_>| Poll::Pending;
    match res.body {
        Body::Empty => {}
        Body::Bytes(bytes) => {
            let n = bytes.len();
            send_all(&mut stream, [Chunk::Bytes(bytes.into())], n, timeout, never).await?;
        }
        Body::File(file, len) => {
            let mut file = smol::Unblock::new(file).take(len);
            let mut left = usize::try_from(len).unwrap_or(usize::MAX);
            while left > 0 {
                let mut buf = vec![0u8; FILE_READ.min(left)];
                let n = file.read(&mut buf).await?;
                if n == 0 {
                    // The file shrank after it was opened: the body cannot be completed.
                    stream.send_reset(Reason::INTERNAL_ERROR);
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                buf.truncate(n);
                left -= n;
                send_all(&mut stream, [Chunk::Bytes(buf.into())], n, timeout, never).await?;
            }
        }
    }
    stream
        .send_data(Chunk::empty(), true)
        .map_err(io::Error::other)
}

/// Sends an event stream: the head, then every batch of frames the subscriber has queued
/// (up to [`MAX_FRAMES`]) as DATA frames within flow control, until the stream ends.
async fn events(
    app: &App,
    respond: &mut SendResponse<Chunk>,
    headers: &[(&'static str, Value)],
    mut feed: Feed,
) -> io::Result<()> {
    let mut stream = {
        let mut all: Vec<(&'static str, Value)> = vec![
            ("Content-Type", "text/event-stream".into()),
            ("Cache-Control", "no-cache".into()),
            ("X-Accel-Buffering", "no".into()),
        ];
        all.extend(headers.iter().cloned());
        respond
            .send_response(head(Status::OK, &all), false)
            .map_err(io::Error::other)?
    };
    let timeout = app.write_timeout();
    let mut frames: Vec<Frame> = Vec::new();
    loop {
        let next = poll_fn(|cx| match feed.poll_frames(cx, &mut frames, MAX_FRAMES) {
            Poll::Ready(polled) => Poll::Ready(polled),
            Poll::Pending => {
                if stream.poll_reset(cx).is_ready() {
                    feed.end(EndCause::ClientGone);
                    return Poll::Ready(Polled::Gone);
                }
                Poll::Pending
            }
        })
        .await;
        match next {
            Polled::Frames => {}
            Polled::Ended => return end(&mut stream),
            Polled::Gone => return Ok(()),
        }
        let total: usize = frames.iter().map(Frame::len).sum();
        let chunks = frames.drain(..).map(Chunk::frame);
        let sent = send_all(&mut stream, chunks, total, timeout, |cx| {
            feed.poll_ended(cx)
        })
        .await;
        match sent {
            Ok(()) => feed.wrote(total),
            Err(Stopped::Stalled) => {
                log::debug!("{feed:?}: no HTTP/2 window for {timeout:?}; closing");
                feed.end(EndCause::Stalled);
                stream.send_reset(Reason::CANCEL);
                return Err(Stopped::Stalled.into());
            }
            Err(Stopped::Interrupted) => {
                // Ended (an overflow, the shutdown) while the client was not reading: what
                // is buffered cannot go, so the stream is reset rather than ended.
                stream.send_reset(Reason::CANCEL);
                return Ok(());
            }
            Err(Stopped::Gone) => {
                feed.end(EndCause::ClientGone);
                return Ok(());
            }
        }
        // An idle stream keeps a small vector, not the largest burst's.
        frames.shrink_to(4);
    }
}

/// Ends the body (`END_STREAM`): the client's `EventSource` reconnects.
fn end(stream: &mut SendStream<Chunk>) -> io::Result<()> {
    stream
        .send_data(Chunk::empty(), true)
        .map_err(io::Error::other)
}
