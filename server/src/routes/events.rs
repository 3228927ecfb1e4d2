//! `GET /events`: subscribe to topics, resuming after a `Last-Event-ID`.

use std::sync::Arc;

use ssecast::{Selector, Topic};

use super::access;
use crate::app::{self, App, SubscribeRefused};
use crate::http::{form, Reply, Request, Response, Status};

/// Most topics one subscription may select (then `400`).
pub(crate) const MAX_TOPICS: usize = 64;

/// What a subscription asks for, read from its query string and headers.
#[derive(Debug)]
struct Subscription {
    topics: Vec<Topic>,
    last_event_id: Option<String>,
}

impl Subscription {
    fn parse(req: &Request<'_>) -> Result<Subscription, Response> {
        let bad = |reason: String| Response::text(Status::BAD_REQUEST, reason);
        let mut topics = Vec::new();
        let mut query_last = None;
        for pair in form::pairs(req.query.as_bytes()) {
            let (name, value) = pair.map_err(|e| bad(e.to_string()))?;
            match &*name {
                "topic" => {
                    if topics.len() == MAX_TOPICS {
                        return Err(bad(format!("more than {MAX_TOPICS} topics")));
                    }
                    let topic =
                        Topic::new(&*value).map_err(|e| bad(format!("topic {:?} {e}", &*value)))?;
                    topics.push(topic);
                }
                "last_event_id" if query_last.is_none() => query_last = Some(value.into_owned()),
                _ => {}
            }
        }
        let last_event_id = req
            .header("Last-Event-ID")
            .map(str::to_owned)
            .or(query_last);
        Ok(Subscription {
            topics,
            last_event_id,
        })
    }
}

pub(super) async fn subscribe(app: &Arc<App>, req: &Request<'_>) -> Reply {
    let reader = match access::reader(app, req, None, None) {
        Ok(reader) => reader,
        Err(res) => return res.into(),
    };
    let sub = match Subscription::parse(req) {
        Ok(sub) => sub,
        Err(res) => return res.into(),
    };
    if app.is_shutting_down() {
        return stopping();
    }
    let selectors: Vec<Selector> = if sub.topics.is_empty() {
        vec![Selector::exact(Topic::default())]
    } else {
        sub.topics.into_iter().map(Selector::exact).collect()
    };
    let subscription = app::Subscription {
        selectors: &selectors,
        rights: &reader.rights,
        last_event_id: sub.last_event_id.as_deref(),
        expires_unix: reader.expires_unix,
    };
    match app.subscribe(subscription, req.conn.socket.clone()).await {
        Ok((subscribed, feed)) => {
            log::debug!(
                "{} subscribed as {:?} ({:?})",
                req.peer(),
                subscribed.id,
                subscribed.replay
            );
            Reply::Events(Vec::new(), feed)
        }
        Err(refusal) => refused(req, refusal),
    }
}

/// The answer to a refused subscription.
pub(super) fn refused(req: &Request<'_>, refused: SubscribeRefused) -> Reply {
    match refused {
        SubscribeRefused::NotInCluster => Response::text(Status::BAD_REQUEST, refused).into(),
        _ => {
            if let SubscribeRefused::Cluster(_) = refused {
                log::debug!("{}: {refused}", req.peer());
            }
            // Jittered, so refused clients do not all come back at the same moment.
            Response::text(Status::SERVICE_UNAVAILABLE, refused)
                .with_header("Retry-After", fastrand::u32(1..=5).to_string())
                .into()
        }
    }
}

/// The answer to a subscription while the server stops (or hands over to a new process on
/// `SIGUSR2`): a stream that ends at once. `EventSource` takes any status but `200
/// text/event-stream` as final, so a `503` here would end a browser's reconnection for good
/// (a reconnection can reach the old process on a kept-alive connection, or just before it
/// stops accepting); an empty stream makes it reconnect after its `retry:` time, to the
/// process that is still (or now) running.
pub(super) fn stopping() -> Reply {
    // A constant without CR or LF: cannot be refused.
    let body = ssecast::Comment::new("stopping: reconnect")
        .map(|c| ssecast::Frame::comment(&c).as_bytes().to_vec())
        .unwrap_or_default();
    Response::new(Status::OK)
        .with_header("Content-Type", "text/event-stream")
        .with_header("Cache-Control", "no-cache")
        .with_body(body)
        .into()
}
