//! Why a token is refused, and how: [`TokenError`], with the status and the RFC 6750
//! challenge of each refusal.

// Built for the Mercure routes, which the lead wires; until then not everything is called.
#![allow(dead_code)]

use std::fmt;

use super::jwt::{Alg, Draft, Role};

/// Why a token is refused. `Display` is the one-line reason a user sees in the 401/403/400
/// body; no variant holds any part of the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenError {
    /// No token, and the route needs one.
    Missing(MissingHint),
    /// `Authorization: Bearer` without exactly one token after it.
    BadPresentation,
    /// A draft-08 request, or a draft-08 token, in the URL.
    InUrl,
    /// Longer than [`MAX_TOKEN_BYTES`](super::jwt::MAX_TOKEN_BYTES).
    TooLarge,
    /// Not three base64url parts, or a header or claims that are not a JSON object.
    Malformed,
    /// `alg: none`.
    AlgNone,
    /// An `alg` that is not the one configured for this role's key.
    AlgNotAllowed { got: Option<Alg>, want: Alg },
    /// A `crit` header: an extension we cannot honour.
    Crit,
    /// The signature does not verify with the configured key.
    BadSignature,
    /// Past `exp`.
    Expired,
    /// Before `nbf`.
    NotYetValid,
    /// draft-08: `typ` is not `at+jwt`.
    WrongType,
    /// draft-08: a required claim is missing (`iss`, `aud`, `exp`).
    MissingClaim(&'static str),
    /// draft-08: `iss` is not `--jwt-issuer`.
    WrongIssuer,
    /// draft-08: `aud` does not name `--jwt-audience`.
    WrongAudience,
    /// A draft-08 token, but the hub has no `--jwt-issuer`/`--jwt-audience`.
    Draft08Off,
    /// No key is configured for this role.
    NoKey(Role),
    /// A claim of the wrong shape (the reason says which).
    BadClaim(&'static str),
    /// Both `mercure` and `authorization_details`.
    BothClaims,
    /// Neither rights claim, where rights are needed (publishing).
    NoRights,
    /// The token's draft is not the request's.
    DraftMismatch { token: Draft, request: Draft },
    /// A publisher token that allows publishing nowhere.
    NoPublishRights,
    /// A publisher token that does not allow one of the update's topics.
    TopicNotAllowed,
}

/// What a request without a token looked like, to say what to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MissingHint {
    /// Nothing that could hold one.
    Nothing,
    /// A cross-origin browser request (`Origin`) without any cookie: the cookie was withheld.
    CrossSiteNoCookie,
    /// Cookies, but not the token's.
    OtherCookies,
}

/// How a refusal is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// 400: the token's presentation or the request is malformed.
    BadRequest,
    /// 401: no valid token.
    Unauthorized,
    /// 403: a valid token that does not allow this.
    Forbidden,
}

impl Status {
    pub(crate) fn code(self) -> u16 {
        match self {
            Status::BadRequest => 400,
            Status::Unauthorized => 401,
            Status::Forbidden => 403,
        }
    }
}

impl TokenError {
    /// The refusal of a request that carried no token (see [`MissingHint`]).
    pub(crate) fn missing(origin: Option<&str>, cookies: &[&str]) -> TokenError {
        let any_cookie = cookies.iter().any(|c| !c.trim().is_empty());
        TokenError::Missing(match (origin.is_some(), any_cookie) {
            (true, false) => MissingHint::CrossSiteNoCookie,
            (_, true) => MissingHint::OtherCookies,
            (false, false) => MissingHint::Nothing,
        })
    }

    /// The status to answer.
    pub(crate) fn status(&self) -> Status {
        use TokenError::*;
        match self {
            BadPresentation | InUrl | DraftMismatch { .. } => Status::BadRequest,
            NoRights | NoPublishRights | TopicNotAllowed => Status::Forbidden,
            Missing(_)
            | TooLarge
            | Malformed
            | AlgNone
            | AlgNotAllowed { .. }
            | Crit
            | BadSignature
            | Expired
            | NotYetValid
            | WrongType
            | MissingClaim(_)
            | WrongIssuer
            | WrongAudience
            | Draft08Off
            | NoKey(_)
            | BadClaim(_)
            | BothClaims => Status::Unauthorized,
        }
    }

    /// The `WWW-Authenticate` value (RFC 6750 section 3) to send with the status: a bare
    /// `Bearer` challenge when no token came, else the error code. draft-08 requires it;
    /// draft-07 clients ignore it, and HTTP wants a challenge on every 401 anyway.
    /// `resource_metadata` is the URL of the hub's protected resource metadata (RFC 9728),
    /// which draft-08 says the challenge should carry.
    pub(crate) fn www_authenticate(&self, resource_metadata: Option<&str>) -> String {
        let error = match (self, self.status()) {
            (TokenError::Missing(_), _) => None,
            (_, Status::BadRequest) => Some("invalid_request"),
            (_, Status::Unauthorized) => Some("invalid_token"),
            (_, Status::Forbidden) => Some("insufficient_scope"),
        };
        let mut out = String::from("Bearer");
        let mut sep = " ";
        if let Some(url) = resource_metadata {
            // A quoted-string: the URL is ours, but keep it well-formed whatever it holds.
            let url: String = url.chars().filter(|c| !matches!(c, '"' | '\\')).collect();
            out.push_str(&format!("{sep}resource_metadata=\"{url}\""));
            sep = ", ";
        }
        if let Some(error) = error {
            out.push_str(&format!("{sep}error=\"{error}\""));
        }
        out
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use TokenError::*;
        match self {
            Missing(MissingHint::Nothing) => f.write_str(
                "a token is required: send it as Authorization: Bearer, or in the cookie",
            ),
            Missing(MissingHint::CrossSiteNoCookie) => f.write_str(
                "no token: this cross-origin request carried no cookie; check that the \
                 cookie's Domain covers the hub, that it is SameSite=None; Secure (or the hub \
                 same-site), that the EventSource has withCredentials: true, and that \
                 --cors-origin lists this page's origin",
            ),
            Missing(MissingHint::OtherCookies) => f.write_str(
                "no token: cookies came, but none with the token's name (--cookie-name, or \
                 __Secure-mercure_access_token for draft-08); check the cookie's name and Path",
            ),
            BadPresentation => {
                f.write_str("the Authorization header must be Bearer followed by one token")
            }
            InUrl => f.write_str(
                "draft-08 refuses tokens in the URL: send it as Authorization: Bearer, or in \
                 the __Secure-mercure_access_token cookie",
            ),
            TooLarge => f.write_str("the token is longer than 16 KiB"),
            Malformed => f.write_str(
                "the token is not a JWS: three base64url parts holding a JSON header and claims",
            ),
            AlgNone => f.write_str("unsigned tokens (alg none) are refused"),
            AlgNotAllowed {
                got: Some(got),
                want,
            } => {
                write!(
                    f,
                    "the token is signed with {got}, but this hub expects {want}"
                )
            }
            AlgNotAllowed { got: None, want } => {
                write!(
                    f,
                    "the token's algorithm is not supported; this hub expects {want}"
                )
            }
            Crit => f.write_str("the token has a crit header, and no extension is supported"),
            BadSignature => f.write_str("the token's signature does not verify"),
            Expired => f.write_str("the token has expired"),
            NotYetValid => f.write_str("the token is not valid yet (nbf)"),
            WrongType => f.write_str("a draft-08 access token must have the header typ at+jwt"),
            MissingClaim(name) => write!(f, "a draft-08 access token must have the claim {name}"),
            WrongIssuer => f.write_str("the token's issuer (iss) is not the one this hub trusts"),
            WrongAudience => f.write_str("the token's audience (aud) does not name this hub"),
            Draft08Off => f.write_str(
                "this hub accepts no draft-08 access tokens (it has no --jwt-issuer and \
                 --jwt-audience)",
            ),
            NoKey(Role::Publisher) => f.write_str("this hub verifies no publisher tokens"),
            NoKey(Role::Subscriber) => f.write_str("this hub verifies no subscriber tokens"),
            BadClaim(reason) => write!(f, "the token's claims are malformed: {reason}"),
            BothClaims => f.write_str(
                "the token has both a mercure claim (draft-07) and authorization_details \
                 (draft-08); use one",
            ),
            NoRights => f.write_str(
                "the token grants nothing: it has neither a mercure claim nor \
                 authorization_details",
            ),
            DraftMismatch { token, request } => write!(
                f,
                "the token is a {token} token but the request uses {request} parameters"
            ),
            NoPublishRights => f.write_str("the token allows publishing to no topic"),
            TopicNotAllowed => {
                f.write_str("the token does not allow publishing to every topic of the update")
            }
        }
    }
}

impl std::error::Error for TokenError {}
