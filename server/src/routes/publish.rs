//! `POST /publish`: one event, as text (the body is the data) or JSON, or a batch of them as
//! NDJSON (one JSON event a line), acknowledged once published (on disk with `--data-dir`, in
//! Redis with `--redis`).

use std::borrow::Cow;
use std::fmt::Display;
use std::sync::Arc;

use serde::Deserialize;
use ssecast::{Event, EventId, EventType, Millis, Topic, Update};

use super::access::{self, Writer};
use crate::app::App;
use crate::auth::jwt::TokenError;
use crate::http::{form, one_line, Request, Response, Status};
use crate::log::Log;

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

/// Events in one NDJSON batch, at most.
const MAX_BATCH: usize = 1000;

/// What a publish body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Text,
    Json,
    Ndjson,
}

/// A refused publish: a status and a one-line reason.
#[derive(Debug)]
pub(crate) struct Refused(pub(crate) Status, pub(crate) String);

impl Refused {
    fn bad(reason: impl Display) -> Refused {
        Refused(Status::BAD_REQUEST, one_line(&reason.to_string()))
    }
}

pub(super) async fn publish(app: &Arc<App>, req: &Request<'_>) -> Response {
    let writer = match access::writer(app, req) {
        Ok(writer) => writer,
        Err(res) => return res,
    };
    let answer = match try_publish(app, req, &writer).await {
        Ok(Published::One(id)) => serde_json::json!({ "id": id.as_str() }),
        Ok(Published::Batch(ids)) => {
            let ids: Vec<&str> = ids.iter().map(EventId::as_str).collect();
            serde_json::json!({ "ids": ids })
        }
        Err(Refused(status, reason)) => {
            let res = Response::text(status, reason);
            if status == Status::UNAUTHORIZED {
                return res.with_header("WWW-Authenticate", "Bearer");
            }
            return res;
        }
    };
    Response::new(Status::OK)
        .with_header("Content-Type", "application/json")
        .with_header("Cache-Control", "no-cache")
        .with_body(answer.to_string().into_bytes())
}

/// What a publish acknowledged.
enum Published {
    One(EventId),
    Batch(Vec<EventId>),
}

async fn try_publish(
    app: &Arc<App>,
    req: &Request<'_>,
    writer: &Writer,
) -> Result<Published, Refused> {
    // Without a Content-Type, the body is taken as text.
    let format = match req.header("Content-Type") {
        None => Format::Text,
        Some(ct) => {
            let essence = ct.split(';').next().unwrap_or("").trim();
            if essence.eq_ignore_ascii_case("application/json") {
                Format::Json
            } else if essence.eq_ignore_ascii_case("text/plain") {
                Format::Text
            } else if essence.eq_ignore_ascii_case("application/x-ndjson") {
                Format::Ndjson
            } else {
                return Err(Refused(
                    Status::UNSUPPORTED_MEDIA_TYPE,
                    "use Content-Type text/plain, application/json or application/x-ndjson".into(),
                ));
            }
        }
    };
    let (mut query_topic, mut query_event) = (None, None);
    for pair in form::pairs(req.query.as_bytes()) {
        let (name, value) = pair.map_err(Refused::bad)?;
        match &*name {
            "topic" if query_topic.is_none() => query_topic = Some(value),
            "event" if query_event.is_none() => query_event = Some(value),
            _ => {}
        }
    }
    let redis = matches!(app.log, Log::Redis(_));
    let unavailable =
        |e: crate::app::PublishError| Refused(Status::SERVICE_UNAVAILABLE, e.to_string());
    if format == Format::Ndjson {
        let events = batch_fields(req.body, query_topic, query_event, redis)?;
        for (topic, _) in &events {
            writer
                .check(std::slice::from_ref(topic))
                .map_err(forbidden)?;
        }
        let updates = events.into_iter().map(|(t, e)| Update::new(t, e)).collect();
        let ids = app.publish_batch(updates).await.map_err(unavailable)?;
        return Ok(Published::Batch(ids));
    }
    let (topic, event) =
        publish_fields(format == Format::Json, req.body, query_topic, query_event)?;
    writer
        .check(std::slice::from_ref(&topic))
        .map_err(forbidden)?;
    if redis {
        check_cluster_id(&event)?;
    }
    let id = app
        .publish(Update::new(topic, event))
        .await
        .map_err(unavailable)?;
    Ok(Published::One(id))
}

/// A publisher token's refusal.
fn forbidden(e: TokenError) -> Refused {
    Refused(Status(e.status().code()), e.to_string())
}

/// In cluster mode an event without an id gets its Redis stream id, `<ms>-<n>`; a
/// publisher's id of that form could stand for another event, so it is refused.
pub(super) fn check_cluster_id(event: &Event) -> Result<(), Refused> {
    let stream_like = event.id().is_some_and(|id| {
        id.as_str()
            .split_once('-')
            .is_some_and(|(ms, n)| is_digits(ms) && is_digits(n))
    });
    if stream_like {
        return Err(Refused::bad(
            "an id of the form <digits>-<digits> is a Redis stream id: choose another in cluster mode",
        ));
    }
    Ok(())
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// The events of an NDJSON batch, every line validated (a refusal names the first bad
/// line, counting from 1), so that either all are published or none. Lines end in LF or
/// CRLF; blank lines are skipped.
fn batch_fields(
    body: &[u8],
    query_topic: Option<Cow<'_, str>>,
    query_event: Option<Cow<'_, str>>,
    redis: bool,
) -> Result<Vec<(Topic, Event)>, Refused> {
    let mut events = Vec::new();
    for (i, line) in body.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if events.len() == MAX_BATCH {
            return Err(Refused(
                Status::PAYLOAD_TOO_LARGE,
                format!("a batch holds {MAX_BATCH} events at most"),
            ));
        }
        let at_line =
            |Refused(status, reason)| Refused(status, format!("line {}: {reason}", i + 1));
        let (topic, event) = publish_fields(true, line, query_topic.clone(), query_event.clone())
            .map_err(at_line)?;
        if redis {
            check_cluster_id(&event).map_err(at_line)?;
        }
        events.push((topic, event));
    }
    if events.is_empty() {
        return Err(Refused::bad("the batch holds no event"));
    }
    Ok(events)
}

/// The topic and event a publish body (JSON or text) and its `topic` and `event` query
/// parameters describe, every field validated. Pure, so the fuzz target calls it directly.
pub(crate) fn publish_fields(
    json: bool,
    body: &[u8],
    query_topic: Option<Cow<'_, str>>,
    query_event: Option<Cow<'_, str>>,
) -> Result<(Topic, Event), Refused> {
    let body = std::str::from_utf8(body).map_err(|_| Refused::bad("body is not valid UTF-8"))?;
    let fields = if json {
        let parsed: PublishJson =
            serde_json::from_str(body).map_err(|e| Refused::bad(format!("invalid JSON: {e}")))?;
        PublishJson {
            topic: parsed.topic.or(query_topic.map(Cow::into_owned)),
            event: parsed.event.or(query_event.map(Cow::into_owned)),
            ..parsed
        }
    } else {
        PublishJson {
            data: body.to_owned(),
            event: query_event.map(Cow::into_owned),
            id: None,
            topic: query_topic.map(Cow::into_owned),
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
