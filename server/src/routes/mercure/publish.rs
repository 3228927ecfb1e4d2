//! `POST /.well-known/mercure`: a Mercure draft-07 publish: an
//! `application/x-www-form-urlencoded` form of `topic` (repeated: the first canonical, the
//! rest alternates), `data`, `private`, `id`, `type` and `retry`; answered with the update's
//! id as `text/plain`.

use std::sync::Arc;

use ssecast::{Event, EventId, EventType, Millis, Topic, Update};

use super::super::access;
use super::super::publish::{check_cluster_id, Refused};
use crate::app::{App, PublishError};
use crate::http::{form, one_line, Request, Response, Status};
use crate::log::Log;

/// Topics one update may have, canonical and alternates together.
pub(crate) const MAX_UPDATE_TOPICS: usize = 64;

/// The fields of a publish form, validated.
#[derive(Debug)]
struct Form {
    topics: Vec<Topic>,
    data: String,
    private: bool,
    id: Option<EventId>,
    event_type: Option<EventType>,
    retry: Option<Millis>,
}

fn bad(reason: impl std::fmt::Display) -> Response {
    Response::text(Status::BAD_REQUEST, one_line(&reason.to_string()))
}

impl Form {
    fn parse(body: &[u8]) -> Result<Form, Response> {
        let mut form = Form {
            topics: Vec::new(),
            data: String::new(),
            private: false,
            id: None,
            event_type: None,
            retry: None,
        };
        let (mut data, mut id, mut event_type, mut retry) = (None, None, None, None);
        for pair in form::pairs(body) {
            let (name, value) = pair.map_err(bad)?;
            match &*name {
                "topic" => {
                    if form.topics.len() == MAX_UPDATE_TOPICS {
                        return Err(bad(format!(
                            "an update has {MAX_UPDATE_TOPICS} topics at most"
                        )));
                    }
                    let topic = Topic::new(&*value)
                        .map_err(|e| bad(format!("topic {:?}: {e}", &*value)))?;
                    if !form.topics.contains(&topic) {
                        form.topics.push(topic);
                    }
                }
                // The first of each field counts (the reference hub reads forms the same way).
                "data" if data.is_none() => data = Some(value.into_owned()),
                "private" => form.private = true,
                "id" if id.is_none() => id = Some(value.into_owned()),
                "type" if event_type.is_none() => event_type = Some(value.into_owned()),
                "retry" if retry.is_none() => retry = Some(value.into_owned()),
                _ => {}
            }
        }
        if form.topics.is_empty() {
            return Err(bad("at least one topic is required"));
        }
        form.data = data.unwrap_or_default();
        if let Some(id) = id {
            form.id = Some(check_id(&id)?);
        }
        if let Some(t) = event_type {
            form.event_type = Some(EventType::new(t).map_err(|e| bad(format!("type {e}")))?);
        }
        if let Some(r) = retry {
            if r.is_empty() || !r.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("retry must be a number of milliseconds"));
            }
            let ms = r.parse().map_err(|_| bad("retry is too large"))?;
            form.retry = Some(Millis(ms));
        }
        Ok(form)
    }

    fn into_update(self, id: EventId) -> Update {
        let mut event = Event::new(self.data).with_id(id);
        if let Some(t) = self.event_type {
            event = event.with_type(t);
        }
        if let Some(ms) = self.retry {
            event = event.with_retry(ms);
        }
        let mut topics = self.topics.into_iter();
        let canonical = topics.next().unwrap_or_default();
        topics
            .fold(Update::new(canonical, event), Update::with_alternate)
            .with_private(self.private)
    }
}

/// A publisher's `id`: not empty, not starting with `#` (draft-07 keeps those for the hub),
/// printable ASCII (it comes back in a `Last-Event-ID` header, where a browser could send
/// nothing else that this hub, or any proxy, would take).
fn check_id(id: &str) -> Result<EventId, Response> {
    if id.is_empty() {
        return Err(bad("id is empty"));
    }
    if id.starts_with('#') {
        return Err(bad("id must not start with #"));
    }
    if !id.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        return Err(bad("id must be printable ASCII"));
    }
    EventId::new(id).map_err(|e| bad(format!("id {e}")))
}

/// A fresh `urn:uuid:` (a random, version 4 UUID, RFC 9562), as the reference hub gives.
fn new_id() -> Result<EventId, Response> {
    let mut b = [0u8; 16];
    // The system's random source; it fails only on systems ring does not support.
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).is_err() {
        b = fastrand::u128(..).to_le_bytes();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let id = format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    );
    // Always valid: ASCII letters, digits, `:` and `-`.
    EventId::new(id).map_err(|e| Response::text(Status(500), format!("id {e}")))
}

pub(in crate::routes) async fn publish(app: &Arc<App>, req: &Request<'_>) -> Response {
    let writer = match access::writer(app, req) {
        Ok(writer) => writer,
        Err(res) => return res,
    };
    let form_type = req
        .header("Content-Type")
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|essence| {
            essence
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form_type {
        return Response::text(
            Status::UNSUPPORTED_MEDIA_TYPE,
            "use Content-Type application/x-www-form-urlencoded",
        );
    }
    let form = match Form::parse(req.body) {
        Ok(form) => form,
        Err(res) => return res,
    };
    if let Err(e) = writer.check(&form.topics) {
        return access::refusal(e);
    }
    let id = match form.id.clone().map_or_else(new_id, Ok) {
        Ok(id) => id,
        Err(res) => return res,
    };
    let update = form.into_update(id);
    if matches!(app.log, Log::Redis(_)) {
        if let Err(Refused(status, reason)) = check_cluster_id(update.event()) {
            return Response::text(status, reason);
        }
    }
    match app.publish(update).await {
        Ok(id) => Response::new(Status::OK)
            .with_header("Content-Type", "text/plain; charset=utf-8")
            .with_header("Cache-Control", "no-cache")
            .with_body(id.as_str().as_bytes().to_vec()),
        Err(e @ PublishError::Unsupported(_)) => Response::text(Status::NOT_IMPLEMENTED, e),
        Err(e) => Response::text(Status::SERVICE_UNAVAILABLE, e),
    }
}
