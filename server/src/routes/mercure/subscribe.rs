//! `GET /.well-known/mercure`: a Mercure draft-07 subscription: `topic` selectors (`*`, a
//! topic, an RFC 6570 URI template), private updates for the token's `mercure.subscribe`,
//! a resume after `Last-Event-ID` (or `lastEventID`), the stream closed when the token
//! expires.

use std::sync::Arc;

use ssecast::{Selector, SelectorKind};

use super::super::access;
use super::super::events::{refused, stopping, MAX_TOPICS};
use crate::app::{App, Subscription};
use crate::auth::jwt::Draft;
use crate::http::{form, Reply, Request, Response, Status};

/// What the query string asks for.
#[derive(Debug, Default)]
struct Query {
    selectors: Vec<Selector>,
    last_event_id: Option<String>,
    authorization: Option<String>,
}

impl Query {
    fn parse(query: &str) -> Result<Query, Response> {
        let bad = |reason: String| Response::text(Status::BAD_REQUEST, reason);
        let mut out = Query::default();
        for pair in form::pairs(query.as_bytes()) {
            let (name, value) = pair.map_err(|e| bad(e.to_string()))?;
            match &*name {
                "topic" => {
                    if out.selectors.len() == MAX_TOPICS {
                        return Err(bad(format!("more than {MAX_TOPICS} topic selectors")));
                    }
                    let selector = Selector::new(&value, SelectorKind::Topic)
                        .map_err(|e| bad(format!("topic {:?}: {e}", &*value)))?;
                    out.selectors.push(selector);
                }
                "lastEventID" if out.last_event_id.is_none() => {
                    out.last_event_id = Some(value.into_owned());
                }
                "authorization" if out.authorization.is_none() => {
                    out.authorization = Some(value.into_owned());
                }
                "match" | "match_exact" | "match_urlpattern" | "last_event_id" => {
                    return Err(bad(format!(
                        "{name}= is Mercure draft-08 (1.0), which this hub does not serve yet: \
                         use topic= and lastEventID="
                    )));
                }
                _ => {}
            }
        }
        if out.selectors.is_empty() {
            return Err(bad(
                "at least one topic selector (topic=) is required".into()
            ));
        }
        Ok(out)
    }
}

pub(in crate::routes) async fn subscribe(app: &Arc<App>, req: &Request<'_>) -> Reply {
    let query = match Query::parse(req.query) {
        Ok(query) => query,
        Err(res) => return res.into(),
    };
    let reader = match access::reader(app, req, Some(Draft::V07), query.authorization.as_deref()) {
        Ok(reader) => reader,
        Err(res) => return res.into(),
    };
    if app.is_shutting_down() {
        return stopping();
    }
    // The header wins over the query parameter.
    let last_event_id = req
        .header("Last-Event-ID")
        .map(str::to_owned)
        .or(query.last_event_id);
    let subscription = Subscription {
        selectors: &query.selectors,
        rights: &reader.rights,
        last_event_id: last_event_id.as_deref(),
        expires_unix: reader.expires_unix,
    };
    match app.subscribe(subscription, req.conn.socket.clone()).await {
        Ok((subscribed, feed)) => {
            log::debug!(
                "{} subscribed to the Mercure hub as {:?} ({:?})",
                req.peer(),
                subscribed.id,
                subscribed.replay
            );
            let mut headers = Vec::new();
            if last_event_id.is_some() {
                // The id before the first event sent, or `earliest` (draft-07, section
                // "Reconciliation").
                let after = subscribed
                    .resumed_after
                    .as_ref()
                    .map_or(ssecast::EARLIEST, |id| id.as_str());
                headers.push(("Last-Event-ID", after.to_owned().into()));
            }
            if query.authorization.is_some() {
                // A token in the URL: no shared cache may keep the answer (draft-07).
                headers.push(("Cache-Control", "private".into()));
            }
            Reply::Events(headers, feed)
        }
        Err(refusal) => refused(req, refusal),
    }
}
