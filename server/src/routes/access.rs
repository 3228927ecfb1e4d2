//! Who may subscribe and publish, one model for every route (`/events`, `/publish` and
//! `/.well-known/mercure`): a role with a JWT key configured (`--jwt-key`,
//! `--subscriber-jwt-key`, `--publisher-jwt-key`) is checked by its token's claims; a role
//! without one keeps the static policy (`--subscribe-token`, `--publish-token`, publishing
//! from loopback only).

use ssecast::{Rights, Selector, SelectorKind, Topic};

use crate::app::App;
use crate::auth::jwt::{Access, Claims, Draft, Presented, Role, SelectorKind as Spec, TokenError};
use crate::auth::{self, jwt::Source};
use crate::http::{Request, Response, Status};

/// What a subscriber may see.
#[derive(Debug, Default)]
pub(super) struct Reader {
    /// The private updates it may receive.
    pub(super) rights: Rights,
    /// When its stream ends (its token's `exp`, Unix seconds).
    pub(super) expires_unix: Option<u64>,
}

/// Who is publishing.
#[derive(Debug)]
pub(super) enum Writer {
    /// The static policy let it in: it may publish to every topic, privately or not.
    Trusted,
    /// A publisher token: it may publish to the topics its claims allow.
    Token(Claims),
}

impl Writer {
    /// Whether every one of `topics` may be published to (else why not: a `403`).
    pub(super) fn check(&self, topics: &[Topic]) -> Result<(), TokenError> {
        let Writer::Token(claims) = self else {
            return Ok(());
        };
        claims.check_publish(topics.iter().map(Topic::as_str), |spec, topic| {
            selector(spec).is_some_and(|s| Topic::new(topic).is_ok_and(|t| s.matches(&t)))
        })
    }
}

/// The seconds since the Unix epoch.
pub(super) fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What the request presents to the verifier. `query_token` is the `authorization` query
/// parameter (draft-07 routes only).
fn presented<'a>(
    req: &Request<'a>,
    draft: Option<Draft>,
    query_token: Option<&'a str>,
    cookies: &'a [&'a str],
) -> Presented<'a> {
    Presented {
        draft,
        authorization: req.header("Authorization"),
        query: query_token,
        cookies,
        origin: req.header("Origin"),
    }
}

/// A subscriber's rights, or the refusal to answer.
pub(super) fn reader(
    app: &App,
    req: &Request<'_>,
    draft: Option<Draft>,
    query_token: Option<&str>,
) -> Result<Reader, Response> {
    match &app.jwt {
        Some(jwt) if jwt.verifies(Role::Subscriber) => {
            let cookies: Vec<&str> = req.headers("Cookie").collect();
            let presented = presented(req, draft, query_token, &cookies);
            match jwt.authorize(Role::Subscriber, &presented, now_unix()) {
                Ok(None) => Ok(Reader::default()),
                Ok(Some(Access { claims, .. })) => Ok(Reader {
                    rights: rights(&claims),
                    expires_unix: claims.expires,
                }),
                Err(e) => Err(refusal(e)),
            }
        }
        _ => match &app.args.subscribe_token {
            Some(token)
                if !auth::subscriber_has(
                    req.headers("Authorization"),
                    req.headers("Cookie"),
                    token,
                ) =>
            {
                let reason = format!(
                    "a valid Authorization: Bearer token or {} cookie is required",
                    auth::TOKEN_COOKIE
                );
                Err(Response::text(Status::UNAUTHORIZED, reason)
                    .with_header("WWW-Authenticate", "Bearer"))
            }
            // The static token grants every private update.
            Some(_) => Ok(Reader {
                rights: Rights::All,
                expires_unix: None,
            }),
            None => Ok(Reader::default()),
        },
    }
}

/// Who is publishing, or the refusal to answer. A token from a cookie must come from a page
/// of an origin `--cors-origin` names (CSRF).
pub(super) fn writer(app: &App, req: &Request<'_>) -> Result<Writer, Response> {
    match &app.jwt {
        Some(jwt) if jwt.verifies(Role::Publisher) => {
            let cookies: Vec<&str> = req.headers("Cookie").collect();
            let presented = presented(req, None, None, &cookies);
            match jwt.authorize(Role::Publisher, &presented, now_unix()) {
                Ok(Some(Access { claims, source })) => {
                    if source == Source::Cookie && !same_site(app, req) {
                        return Err(Response::text(
                            Status::FORBIDDEN,
                            "a publish authorized by a cookie needs an Origin or Referer that \
                             --cors-origin names (CSRF protection)",
                        ));
                    }
                    Ok(Writer::Token(claims))
                }
                Ok(None) => Err(refusal(TokenError::missing(req.header("Origin"), &cookies))),
                Err(e) => Err(refusal(e)),
            }
        }
        _ => auth::authorize_publisher(
            app.args.publish_token.as_ref(),
            req.header("Authorization"),
            req.peer().ip(),
        )
        .map(|()| Writer::Trusted)
        .map_err(|e| {
            let res = Response::text(Status(e.status()), e);
            if e.status() == 401 {
                res.with_header("WWW-Authenticate", "Bearer")
            } else {
                res
            }
        }),
    }
}

/// Whether the request's `Origin` (else its `Referer`'s origin) is one `--cors-origin` names
/// one by one (`*` does not count: it would let any site publish with a user's cookie).
fn same_site(app: &App, req: &Request<'_>) -> bool {
    let origin = match req.header("Origin") {
        Some(origin) => origin.to_owned(),
        None => match req.header("Referer").and_then(|r| url::Url::parse(r).ok()) {
            Some(url) => url.origin().ascii_serialization(),
            None => return false,
        },
    };
    app.args.cors_origins.contains(&origin)
}

/// The answer to a refused token: its status, its one-line reason (never the token) and the
/// RFC 6750 challenge.
pub(super) fn refusal(e: TokenError) -> Response {
    Response::text(Status(e.status().code()), e)
        .with_header("WWW-Authenticate", e.www_authenticate(None))
}

/// The hub's rights for a token's subscribe selectors.
fn rights(claims: &Claims) -> Rights {
    let selectors: Vec<Selector> = claims.subscribe.iter().filter_map(selector).collect();
    // The hub reads an empty list as none, and one holding `*` as all.
    Rights::Selectors(selectors)
}

/// The hub's selector for a token's. URL patterns (draft-08) are not served yet: they match
/// nothing.
fn selector(spec: &crate::auth::jwt::SelectorSpec) -> Option<Selector> {
    match spec.kind() {
        Spec::Any => Some(Selector::all()),
        Spec::Template => Selector::new(spec.text(), SelectorKind::Topic).ok(),
        Spec::Exact => Selector::new(spec.text(), SelectorKind::Match).ok(),
        Spec::UrlPattern => None,
    }
}
