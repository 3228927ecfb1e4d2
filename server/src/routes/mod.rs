//! Routing: every request, parsed once by [`crate::http`], goes to one endpoint family (one
//! file each), which answers a response or an event stream; CORS and `405`s are decided
//! here for all of them.

mod access;
mod events;
mod files;
mod mercure;
mod metrics;
mod publish;

use std::sync::Arc;

use crate::app::App;
use crate::http::{Method, Reply, Request, Response, Status};

pub(crate) use publish::{publish_fields, Refused};

/// Where the Mercure hub is.
const MERCURE: &str = "/.well-known/mercure";

/// Answers one request. Never fails: every error is a status with a one-line reason.
pub(crate) async fn handle(app: &Arc<App>, req: &Request<'_>) -> Reply {
    let origin = allowed_origin(app, req);
    let allowed = origin.is_some();
    let mut reply = match (req.path, req.method) {
        ("/events", Method::Get) => events::subscribe(app, req).await,
        ("/events", _) => other_method(req.method, "GET, OPTIONS", allowed),
        ("/publish", Method::Post) => publish::publish(app, req).await.into(),
        ("/publish", _) => other_method(req.method, "POST, OPTIONS", allowed),
        (MERCURE, Method::Get) => mercure::subscribe(app, req).await,
        (MERCURE, Method::Post) => mercure::publish(app, req).await.into(),
        (MERCURE, _) => other_method(req.method, "GET, POST, OPTIONS", allowed),
        ("/metrics", Method::Get | Method::Head) => metrics::metrics(app).into(),
        ("/healthz", Method::Get | Method::Head) => Response::text(Status::OK, "ok").into(),
        ("/metrics" | "/healthz", _) => other_method(req.method, "GET, HEAD, OPTIONS", allowed),
        #[cfg(debug_assertions)]
        ("/__test/panic", _) if std::env::var_os("SSECAST_TEST_FAULTS").is_some() => {
            // Debug builds only, for the test that a panic ends its own connection only.
            panic!("fault injected by a test at /__test/panic")
        }
        (path, Method::Get | Method::Head) => files::serve(&app.www, path).await.into(),
        (_, method) => other_method(method, "GET, HEAD, OPTIONS", allowed),
    };
    let headers = match &mut reply {
        Reply::Response(res) => &mut res.headers,
        Reply::Events(headers, _) => headers,
    };
    if !app.args.cors_origins.is_empty() {
        headers.push(("Vary", "Origin".into()));
    }
    if let Some(origin) = origin {
        // Credentials (a cookie for --subscribe-token) only for origins named one by one:
        // `*` would let every site read a signed-in user's streams.
        if app.args.cors_origins.contains(&origin) {
            headers.push(("Access-Control-Allow-Credentials", "true".into()));
        }
        headers.push(("Access-Control-Allow-Origin", origin.into()));
    }
    if let Reply::Response(res) = &reply {
        if res.status.is_client_error() {
            app.count_bad_request();
        }
    }
    reply
}

/// `OPTIONS` (a preflight, answered `204`), or `405` for any other method not served.
fn other_method(method: Method, allow: &'static str, allowed: bool) -> Reply {
    if method == Method::Options {
        return preflight(allow, allowed).into();
    }
    Response::text(Status::METHOD_NOT_ALLOWED, "method not allowed")
        .with_header("Allow", allow)
        .into()
}

/// The request's `Origin` when `--cors-origin` allows it.
fn allowed_origin(app: &App, req: &Request<'_>) -> Option<String> {
    let origin = req.header("Origin")?;
    app.args
        .cors_origins
        .iter()
        .any(|allowed| allowed == "*" || allowed == origin)
        .then(|| origin.to_owned())
}

fn preflight(allow: &'static str, allowed: bool) -> Response {
    let res = Response::new(Status::NO_CONTENT).with_header("Allow", allow);
    if !allowed {
        return res;
    }
    res.with_header("Access-Control-Allow-Methods", allow)
        .with_header(
            "Access-Control-Allow-Headers",
            "Authorization, Content-Type, Last-Event-ID, Cache-Control",
        )
        .with_header("Access-Control-Max-Age", "600")
}
