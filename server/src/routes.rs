//! Routing: the event stream, publishing, metrics, health, static files, CORS.

use std::fmt::{self, Display, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use async_io::Async;
use futures_lite::io::{AsyncReadExt as _, BufReader};
use http_types::{Body, Method, Request, Response, StatusCode};
use serde::Deserialize;
use ssecast::{Event, EventId, EventType, Millis, Topic};

use crate::app::{App, EndCause};
use crate::config::Secret;
use crate::stream::EventStream;

/// What the routes know about the connection a request came on.
#[derive(Debug, Clone)]
pub(crate) struct ConnInfo {
    pub(crate) peer: SocketAddr,
    /// The TCP socket under the connection (none for an in-memory one): shutting it down
    /// makes a write blocked on a subscriber that stopped reading fail.
    pub(crate) socket: Option<Arc<Async<TcpStream>>>,
}

/// Most topics one subscription may select.
const MAX_TOPICS: usize = 64;

/// Answers one request. Never fails: every error is a status with a one-line reason.
pub(crate) async fn handle(app: &Arc<App>, mut req: Request, conn: &ConnInfo) -> Response {
    let origin = allowed_origin(app, &req);
    let path = req.url().path().to_owned();
    let method = req.method();
    let mut res = match path.as_str() {
        "/events" => match method {
            Method::Get => events(app, &req, conn).await,
            Method::Options => preflight("GET, OPTIONS", origin.is_some()),
            _ => not_allowed("GET, OPTIONS"),
        },
        "/publish" => match method {
            Method::Post => publish(app, &mut req, conn).await,
            Method::Options => preflight("POST, OPTIONS", origin.is_some()),
            _ => not_allowed("POST, OPTIONS"),
        },
        "/metrics" => match method {
            Method::Get | Method::Head => metrics(app),
            Method::Options => preflight("GET, HEAD, OPTIONS", origin.is_some()),
            _ => not_allowed("GET, HEAD, OPTIONS"),
        },
        "/healthz" => match method {
            Method::Get | Method::Head => text(StatusCode::Ok, "ok"),
            Method::Options => preflight("GET, HEAD, OPTIONS", origin.is_some()),
            _ => not_allowed("GET, HEAD, OPTIONS"),
        },
        _ => match method {
            Method::Get | Method::Head => static_file(&app.args.www_dir(), &path).await,
            Method::Options => preflight("GET, HEAD, OPTIONS", origin.is_some()),
            _ => not_allowed("GET, HEAD, OPTIONS"),
        },
    };
    if !app.args.cors_origins.is_empty() {
        res.append_header("Vary", "Origin");
    }
    if let Some(origin) = origin {
        // Credentials (a cookie for --subscribe-token) only for origins named one by one:
        // `*` would let every site read a signed-in user's streams.
        if app.args.cors_origins.contains(&origin) {
            res.insert_header("Access-Control-Allow-Credentials", "true");
        }
        res.insert_header("Access-Control-Allow-Origin", origin);
    }
    if res.status().is_client_error() {
        app.counters.bad_requests.fetch_add(1, Ordering::Relaxed);
    }
    res
}

/// A plain-text response whose body is one line.
pub(crate) fn text(status: StatusCode, reason: impl Display) -> Response {
    let mut res = Response::new(status);
    res.set_body(format!("{}\n", one_line(&reason.to_string())));
    res.insert_header("Content-Type", "text/plain; charset=utf-8");
    res.insert_header("Cache-Control", "no-cache");
    res
}

fn not_allowed(allow: &str) -> Response {
    let mut res = text(StatusCode::MethodNotAllowed, "method not allowed");
    res.insert_header("Allow", allow);
    res
}

/// The request's `Origin` when `--cors-origin` allows it.
fn allowed_origin(app: &App, req: &Request) -> Option<String> {
    let origin = req.header("Origin")?.last().as_str();
    app.args
        .cors_origins
        .iter()
        .any(|allowed| allowed == "*" || allowed == origin)
        .then(|| origin.to_owned())
}

fn preflight(allow: &str, allowed: bool) -> Response {
    let mut res = Response::new(StatusCode::NoContent);
    res.insert_header("Allow", allow);
    if allowed {
        res.insert_header("Access-Control-Allow-Methods", allow);
        res.insert_header(
            "Access-Control-Allow-Headers",
            "Authorization, Content-Type, Last-Event-ID, Cache-Control",
        );
        res.insert_header("Access-Control-Max-Age", "600");
    }
    res
}

fn query_values<'a>(req: &'a Request, name: &'a str) -> impl Iterator<Item = String> + 'a {
    req.url()
        .query_pairs()
        .filter(move |(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

async fn events(app: &Arc<App>, req: &Request, conn: &ConnInfo) -> Response {
    if app.is_shutting_down() {
        return text(StatusCode::ServiceUnavailable, "shutting down");
    }
    if let Some(token) = &app.args.subscribe_token {
        if !subscriber_has(req, token) {
            let reason =
                format!("a valid Authorization: Bearer token or {TOKEN_COOKIE} cookie is required");
            let mut res = text(StatusCode::Unauthorized, reason);
            res.insert_header("WWW-Authenticate", "Bearer");
            return res;
        }
    }
    let mut topics = Vec::new();
    for name in query_values(req, "topic") {
        if topics.len() == MAX_TOPICS {
            return text(
                StatusCode::BadRequest,
                format!("more than {MAX_TOPICS} topics"),
            );
        }
        match Topic::new(name.as_str()) {
            Ok(topic) => topics.push(topic),
            Err(e) => return text(StatusCode::BadRequest, format!("topic {name:?} {e}")),
        }
    }
    let last_id = match req.header("Last-Event-ID") {
        Some(values) => Some(values.last().as_str().to_owned()),
        None => query_values(req, "last_event_id").next(),
    };
    // Cluster mode: the node follows these topics (their history seeded from Redis) before
    // the hub replays to this subscriber; the guard keeps them followed until it is in.
    let _preparing = match &app.cluster {
        Some(cluster) => match cluster.prepare(app, &topics, last_id.is_some()).await {
            Ok(guard) => Some(guard),
            Err(e) => {
                let mut res = text(StatusCode::ServiceUnavailable, e);
                res.insert_header("Retry-After", fastrand::u32(1..=5).to_string());
                return res;
            }
        },
        None => None,
    };
    let subscribed = match app.subscribe(&topics, last_id.as_deref(), conn.socket.clone()) {
        Ok(subscribed) => subscribed,
        // `SubscribeError` is non-exhaustive; the limit is its only reason so far.
        Err(e) => {
            app.counters.refused_full.fetch_add(1, Ordering::Relaxed);
            let mut res = text(StatusCode::ServiceUnavailable, e);
            // Jittered, so refused clients do not all come back at the same moment.
            res.insert_header("Retry-After", fastrand::u32(1..=5).to_string());
            return res;
        }
    };
    log::debug!(
        "{} subscribed as {:?} ({:?})",
        conn.peer,
        subscribed.id,
        subscribed.replay
    );
    let body = EventStream::new(Arc::clone(app), subscribed.id);
    let mut res = Response::new(StatusCode::Ok);
    // Not an http-types body: the connection writes the stream itself (`EventStream::serve`).
    res.ext_mut().insert(body);
    res.insert_header("Content-Type", "text/event-stream");
    res.insert_header("Cache-Control", "no-cache");
    res.insert_header("X-Accel-Buffering", "no");
    // The watch reads (and discards) what the client sends, so the connection cannot carry
    // another request after the stream.
    res.insert_header("Connection", "close");
    res
}

/// `POST /publish` with a JSON body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishJson {
    data: String,
    event: Option<String>,
    id: Option<String>,
    topic: Option<String>,
    retry: Option<u64>,
}

/// A refused publish: a status and a one-line reason.
pub(crate) struct Refused(pub(crate) StatusCode, pub(crate) String);

impl Refused {
    fn bad(reason: impl Display) -> Refused {
        Refused(StatusCode::BadRequest, one_line(&reason.to_string()))
    }
}

/// `reason` with its control characters escaped: parser errors quote the peer's input (an
/// unknown JSON field may hold a CR or LF), and a reason is one line.
fn one_line(reason: &str) -> String {
    let mut out = String::with_capacity(reason.len());
    for c in reason.chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

async fn publish(app: &Arc<App>, req: &mut Request, conn: &ConnInfo) -> Response {
    match try_publish(app, req, conn).await {
        Ok(id) => {
            let mut res = Response::new(StatusCode::Ok);
            res.set_body(serde_json::json!({ "id": id.as_str() }).to_string());
            res.insert_header("Content-Type", "application/json");
            res.insert_header("Cache-Control", "no-cache");
            res
        }
        Err(Refused(status, reason)) => {
            let mut res = text(status, reason);
            if status == StatusCode::Unauthorized {
                res.insert_header("WWW-Authenticate", "Bearer");
            }
            res
        }
    }
}

async fn try_publish(
    app: &Arc<App>,
    req: &mut Request,
    conn: &ConnInfo,
) -> Result<EventId, Refused> {
    authorize(
        app.args.publish_token.as_ref().map(Secret::expose),
        req.header("Authorization").map(|v| v.last().as_str()),
        conn.peer.ip(),
    )?;
    let json = match req.header("Content-Type").map(|v| v.last().as_str()) {
        None => false,
        Some(ct) => {
            let essence = ct.split(';').next().unwrap_or("").trim();
            if essence.eq_ignore_ascii_case("application/json") {
                true
            } else if essence.eq_ignore_ascii_case("text/plain") {
                false
            } else {
                return Err(Refused(
                    StatusCode::UnsupportedMediaType,
                    "use Content-Type text/plain or application/json".into(),
                ));
            }
        }
    };
    let limit = app.args.max_body;
    let announced = req.len();
    let mut body = Vec::new();
    req.take_body()
        .take(limit as u64 + 1)
        .read_to_end(&mut body)
        .await
        .map_err(|e| Refused::bad(format!("could not read the body: {e}")))?;
    if body.len() > limit {
        return Err(Refused(
            StatusCode::PayloadTooLarge,
            format!("body larger than {limit} bytes"),
        ));
    }
    // The client left mid-body: publishing the part that came would publish the wrong event.
    if announced.is_some_and(|n| body.len() < n) {
        return Err(Refused::bad("the body ended before its Content-Length"));
    }
    let query_topic = query_values(req, "topic").next();
    let query_event = query_values(req, "event").next();
    let (topic, event) = publish_fields(json, body, query_topic, query_event)?;
    if event.id().is_some() && app.cluster.is_some() {
        return Err(Refused::bad(
            "id cannot be set in cluster mode: Redis assigns every event its stream id",
        ));
    }
    match &app.cluster {
        // Acknowledged only once Redis has it; the node's reader delivers it locally.
        Some(cluster) => cluster
            .publish(&topic, &event)
            .await
            .map_err(|e| Refused(StatusCode::ServiceUnavailable, e.to_string())),
        // With --data-dir, answered once the event is on disk.
        None => app
            .publish_durable(&topic, event)
            .await
            .map_err(|e| Refused(StatusCode::ServiceUnavailable, e)),
    }
}

/// The topic and event a publish body (JSON or text) and its `topic` and `event` query
/// parameters describe, every field validated. Pure, so the fuzz target calls it directly.
pub(crate) fn publish_fields(
    json: bool,
    body: Vec<u8>,
    query_topic: Option<String>,
    query_event: Option<String>,
) -> Result<(Topic, Event), Refused> {
    let body = String::from_utf8(body).map_err(|_| Refused::bad("body is not valid UTF-8"))?;
    let fields = if json {
        let parsed: PublishJson =
            serde_json::from_str(&body).map_err(|e| Refused::bad(format!("invalid JSON: {e}")))?;
        PublishJson {
            topic: parsed.topic.or(query_topic),
            event: parsed.event.or(query_event),
            ..parsed
        }
    } else {
        PublishJson {
            data: body,
            event: query_event,
            id: None,
            topic: query_topic,
            retry: None,
        }
    };
    let topic = match fields.topic {
        Some(name) => Topic::new(name).map_err(|e| Refused::bad(format!("topic {e}")))?,
        None => Topic::default(),
    };
    let mut event = Event::new(fields.data);
    if let Some(t) = fields.event {
        event = event.with_type(EventType::new(t).map_err(|e| Refused::bad(format!("event {e}")))?);
    }
    if let Some(id) = fields.id {
        // An empty id would reset the subscribers' last event ID and break their resume.
        if id.is_empty() {
            return Err(Refused::bad("id is empty"));
        }
        // Clients send the id back in a Last-Event-ID header, where only visible ASCII and
        // spaces are safe; a browser would be refused on reconnect otherwise.
        if !id.bytes().all(|b| (b' '..=b'~').contains(&b)) {
            return Err(Refused::bad("id must be printable ASCII"));
        }
        event = event.with_id(EventId::new(id).map_err(|e| Refused::bad(format!("id {e}")))?);
    }
    if let Some(ms) = fields.retry {
        event = event.with_retry(Millis(ms));
    }
    Ok((topic, event))
}

/// Who may publish: with a token, whoever presents it; without one, loopback peers only.
fn authorize(
    token: Option<&str>,
    authorization: Option<&str>,
    peer: std::net::IpAddr,
) -> Result<(), Refused> {
    match token {
        Some(token) => match authorization.and_then(bearer) {
            Some(given) if constant_time_eq(given.as_bytes(), token.as_bytes()) => Ok(()),
            _ => Err(Refused(
                StatusCode::Unauthorized,
                "a valid Authorization: Bearer token is required".into(),
            )),
        },
        None if peer.to_canonical().is_loopback() => Ok(()),
        None => Err(Refused(
            StatusCode::Forbidden,
            "publishing without --publish-token is allowed from loopback only".into(),
        )),
    }
}

/// The cookie that carries `--subscribe-token` (a browser's EventSource sends no headers).
pub(crate) const TOKEN_COOKIE: &str = "ssecast_token";

/// Whether `req` carries `token` as a Bearer token or in the [`TOKEN_COOKIE`] cookie.
fn subscriber_has(req: &Request, token: &Secret) -> bool {
    let token = token.expose().as_bytes();
    let header = |name: &str| req.header(name).into_iter().flat_map(|v| v.iter());
    let bearers = header("Authorization").filter_map(|v| bearer(v.as_str()));
    let cookies = header("Cookie")
        .flat_map(|v| v.as_str().split(';'))
        .filter_map(|pair| pair.trim().strip_prefix(TOKEN_COOKIE)?.strip_prefix('='));
    // Every candidate is compared (no early exit), in the same time whatever it holds.
    bearers.chain(cookies).fold(false, |ok, given| {
        constant_time_eq(given.as_bytes(), token) | ok
    })
}

/// The token of an `Authorization: Bearer <token>` value.
fn bearer(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Compares SHA-256 digests without an early exit, so the time taken reveals neither how
/// much of the token a guess got right nor the token's length.
fn constant_time_eq(given: &[u8], token: &[u8]) -> bool {
    let digest = |b: &[u8]| ring::digest::digest(&ring::digest::SHA256, b);
    let (given, token) = (digest(given), digest(token));
    let diff = (given.as_ref().iter())
        .zip(token.as_ref())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    diff == 0
}

/// Prometheus text exposition of the hub's and the server's counters.
fn metrics(app: &App) -> Response {
    let s = app.stats();
    let c = &app.counters;
    let mut out = String::with_capacity(2048);
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
        let _ = writeln!(out, "# HELP ssecast_{name} {help}");
        let _ = writeln!(out, "# TYPE ssecast_{name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "ssecast_{name}{labels} {value}");
        }
    };
    metric(
        "subscribers",
        "gauge",
        "Subscribers connected now.",
        &[("", s.subscribers)],
    );
    metric(
        "connections_accepted_total",
        "counter",
        "TCP connections accepted.",
        &[("", c.accepted.load(Ordering::Relaxed))],
    );
    metric(
        "subscriptions_total",
        "counter",
        "Subscriptions accepted.",
        &[("", s.subscribed)],
    );
    metric(
        "subscriptions_refused_total",
        "counter",
        "Subscriptions refused at --max-subscribers.",
        &[("", s.refused)],
    );
    metric(
        "published_total",
        "counter",
        "Events published.",
        &[("", s.published)],
    );
    metric(
        "delivered_total",
        "counter",
        "Event frames handed to subscriber connections.",
        &[("", s.delivered)],
    );
    metric(
        "dropped_total",
        "counter",
        "Event frames dropped by the overflow policy.",
        &[("", s.dropped)],
    );
    let ended: Vec<(String, u64)> = EndCause::ALL
        .iter()
        .zip(&c.ended)
        .map(|(cause, n)| {
            (
                format!("{{reason=\"{}\"}}", cause.label()),
                n.load(Ordering::Relaxed),
            )
        })
        .collect();
    let ended: Vec<(&str, u64)> = ended.iter().map(|(l, n)| (l.as_str(), *n)).collect();
    metric(
        "disconnected_total",
        "counter",
        "Event streams ended, by reason.",
        &ended,
    );
    metric(
        "replayed_total",
        "counter",
        "Event frames replayed from history after a Last-Event-ID.",
        &[("", s.replayed)],
    );
    metric(
        "keepalives_total",
        "counter",
        "Keep-alive comments queued.",
        &[("", s.keepalives)],
    );
    metric(
        "bytes_written_total",
        "counter",
        "Bytes of event streams handed to connections.",
        &[("", c.bytes_written.load(Ordering::Relaxed))],
    );
    metric(
        "bad_requests_total",
        "counter",
        "Requests answered with a 4xx status.",
        &[("", c.bad_requests.load(Ordering::Relaxed))],
    );
    if let Some(cluster) = &app.cluster {
        crate::cluster::metrics(cluster, &mut metric);
    }
    let mut res = Response::new(StatusCode::Ok);
    res.set_body(out);
    res.insert_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    res.insert_header("Cache-Control", "no-cache");
    res
}

/// Why a static path was refused; every case is a 404 so nothing about the disk leaks.
#[derive(Debug)]
struct NotFound;

impl fmt::Display for NotFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not found")
    }
}

/// Maps a URL path to a file under `root`, refusing anything that could leave it.
fn resolve(root: &Path, url_path: &str) -> Result<PathBuf, NotFound> {
    let decoded = percent_encoding::percent_decode_str(url_path)
        .decode_utf8()
        .map_err(|_| NotFound)?;
    let mut path = root.to_path_buf();
    for segment in decoded.split('/').filter(|s| !s.is_empty()) {
        // Dot-files, parent and current directory, backslashes and NUL never name a file
        // under `root`; refuse them rather than normalise them.
        if segment.starts_with('.') || segment.contains(['\\', '\0']) {
            return Err(NotFound);
        }
        let mut components = Path::new(segment).components();
        match (components.next(), components.next()) {
            (Some(Component::Normal(part)), None) => path.push(part),
            _ => return Err(NotFound),
        }
    }
    if decoded.ends_with('/') || path == root {
        path.push("index.html");
    }
    Ok(path)
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "wasm" => "application/wasm",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "txt" | "md" => "text/plain; charset=utf-8",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

async fn static_file(root: &Path, url_path: &str) -> Response {
    let Ok(mut path) = resolve(root, url_path) else {
        return text(StatusCode::NotFound, NotFound);
    };
    let opened = smol::unblock(move || {
        let mut file = std::fs::File::open(&path)?;
        let mut meta = file.metadata()?;
        if meta.is_dir() {
            path.push("index.html");
            file = std::fs::File::open(&path)?;
            meta = file.metadata()?;
        }
        if !meta.is_file() {
            return Err(std::io::Error::from(std::io::ErrorKind::NotFound));
        }
        Ok((file, meta.len(), path))
    })
    .await;
    let Ok((file, len, path)) = opened else {
        return text(StatusCode::NotFound, NotFound);
    };
    let Ok(len) = usize::try_from(len) else {
        return text(StatusCode::NotFound, NotFound);
    };
    let mut res = Response::new(StatusCode::Ok);
    // Streamed from a blocking thread, never read whole into memory.
    res.set_body(Body::from_reader(
        BufReader::new(smol::Unblock::new(file)),
        Some(len),
    ));
    res.insert_header("Content-Type", content_type(&path));
    res.insert_header("Cache-Control", "no-cache");
    res.insert_header("X-Content-Type-Options", "nosniff");
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url_path: &str, expected: Option<&str>) {
        let got = resolve(Path::new("/w"), url_path).ok();
        assert_eq!(
            got.as_deref(),
            expected.map(Path::new),
            "resolve({url_path:?})"
        );
    }

    #[test]
    fn publishing_needs_the_token_or_a_loopback_peer() {
        let check = |token: Option<&str>, auth: Option<&str>, peer: &str, expected: Option<u16>| {
            let peer: std::net::IpAddr = peer.parse().unwrap();
            let got = authorize(token, auth, peer)
                .err()
                .map(|Refused(s, _)| u16::from(s));
            assert_eq!(got, expected, "{token:?} {auth:?} {peer}");
        };
        check(None, None, "127.0.0.1", None);
        check(None, None, "127.8.9.10", None);
        check(None, None, "::1", None);
        check(None, None, "::ffff:127.0.0.1", None);
        check(None, None, "10.0.0.7", Some(403));
        check(None, None, "::ffff:192.168.1.2", Some(403));
        check(None, None, "2001:db8::1", Some(403));
        check(None, Some("Bearer x"), "10.0.0.7", Some(403));
        check(Some("t0k"), Some("Bearer t0k"), "10.0.0.7", None);
        check(Some("t0k"), Some("Bearer t0k"), "127.0.0.1", None);
        check(Some("t0k"), None, "127.0.0.1", Some(401));
        check(Some("t0k"), Some("Bearer t0K"), "10.0.0.7", Some(401));
        check(Some("t0k"), Some("Bearer t0k0"), "10.0.0.7", Some(401));
        check(Some("t0k"), Some("Basic t0k"), "10.0.0.7", Some(401));
        check(Some("t0k"), Some("t0k"), "10.0.0.7", Some(401));
    }

    #[test]
    fn static_paths_stay_under_the_root() {
        check("/", Some("/w/index.html"));
        check("/app.js", Some("/w/app.js"));
        check("/pkg/x.wasm", Some("/w/pkg/x.wasm"));
        check("/pkg/", Some("/w/pkg/index.html"));
        check("//app.js", Some("/w/app.js"));
        check("/../etc/passwd", None);
        check("/pkg/../../etc/passwd", None);
        check("/%2e%2e/etc/passwd", None);
        check("/%2E%2E%2Fetc%2Fpasswd", None);
        check("/a/..%2f..%2fsecret", None);
        check("/..%5c..%5csecret", None);
        check("/.git/config", None);
        check("/a%00b", None);
        check("/%ff", None);
    }
}
