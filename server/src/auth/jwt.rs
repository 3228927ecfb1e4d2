//! JWT authorization for every route, for Mercure draft-07 and draft-08 at once: where a
//! request's token is ([`JwtVerifier::find_token`]), whether it is valid
//! ([`JwtVerifier::verify`]), what it grants ([`Claims`]), and how a refusal is answered
//! ([`TokenError::status`], [`TokenError::www_authenticate`]). Routes call it with plain
//! strings and the current time; nothing here knows HTTP types or reads a clock.
//!
//! # What is supported
//! - Tokens: JWS compact serialization (three base64url parts), at most
//!   [`MAX_TOKEN_BYTES`]. Algorithms HS256, HS384, HS512, RS256, RS384, RS512, ES256, ES384
//!   and EdDSA (Ed25519); each role's key is bound to exactly one of them at startup (see
//!   [`keys`](super::keys) for the key formats), and a token naming any other `alg`, `none`
//!   included, is refused before its signature is checked. Verification always runs the
//!   configured algorithm, so the token can never choose how its key is used (no algorithm
//!   confusion). A `crit` header is refused: no extension is understood. Key material in the
//!   token (`jwk`, `jku`, `x5u`, `x5c`) and `kid` are ignored: there is one key per role.
//! - Time: `exp` and `nbf` are enforced when present, against the `now` the caller passes:
//!   refused from the `exp` second on (RFC 7519: now must be before it), and before `nbf`
//!   less [`LEEWAY_SECS`] of clock skew. `exp` is required in draft-08.
//! - draft-07: rights in the `mercure` claim: `publish` and `subscribe` arrays of topic
//!   selectors (`*`, a topic, an RFC 6570 template), `payload` any JSON. `iss` is not
//!   checked; `aud`, when the token has one and `--jwt-audience` is set, must name it.
//! - draft-08 (OAuth JWT access tokens, RFC 9068): header `typ` `at+jwt` or
//!   `application/at+jwt` (case-insensitive); `iss` equal to `--jwt-issuer` (the issuer every
//!   configured key is bound to); `aud` naming `--jwt-audience` (a string or an array);
//!   `exp`. Rights in `authorization_details` entries of type
//!   `https://mercure.rocks/authorization-detail`: `actions` `publish` / `subscribe` (others
//!   ignored), `topics` `[{match, match_type}]` with `exact` (the default) or `urlpattern`,
//!   `*` matching everything, and a `payload` object per subscribe detail.
//! - A token's draft is its rights claim: `mercure` is draft-07, `authorization_details`
//!   draft-08, both is refused; with neither it grants nothing (a publisher is refused) and is
//!   draft-08 if its `typ` says `at+jwt`.
//! - Sources, in the order each draft requires: draft-07 the `Authorization: Bearer` header,
//!   else the `authorization` query parameter, else the cookie (`--cookie-name`, default
//!   `mercureAuthorization`); draft-08 the header, else the cookie
//!   `__Secure-mercure_access_token`, and a token in the URL is refused. A header with the
//!   `Bearer` scheme wins even when its token is bad; one with another scheme (a proxy's
//!   `Basic`) is not a token and is passed over.
//! - Errors: [`TokenError`], one line each that never holds the token, with the status and
//!   the RFC 6750 challenge to answer.
//!
//! Not yet: several keys per role (rotation by `kid`), several issuers, keys fetched from an
//! authorization server's JWK Set, PS256/PS384/PS512, JWE.

// Built for the Mercure routes, which the lead wires; until then nothing calls it.
#![allow(dead_code)]

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::claims::{parse_details, parse_mercure, Rights};
// The whole API under one path, `auth::jwt::*`.
#[allow(unused_imports)]
pub(crate) use super::claims::{Claims, DetailPayload, Payload, SelectorKind, SelectorSpec};
#[allow(unused_imports)]
pub(crate) use super::error::{MissingHint, Status, TokenError};
use super::keys::{is_cookie_name, RoleKey, COOKIE_08};
#[allow(unused_imports)]
pub(crate) use super::keys::{Alg, JwtFlags, KeyError, KeyText};
use super::source::find_token;
#[allow(unused_imports)]
pub(crate) use super::source::{cookie, Found, Presented, Source};

/// Longest token accepted, in bytes (a cookie holds at most about 4 KiB anyway).
pub(crate) const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Clock skew tolerated on `nbf`, in seconds: a token minted on another machine whose clock
/// is a little ahead is not refused as not yet valid. `exp` has none: a token is refused from
/// its `exp` second on, the very moment its subscriber's stream is closed (`Claims::expires`),
/// so a reconnection can never get in with the token that just expired.
pub(crate) const LEEWAY_SECS: u64 = 5;

/// Which Mercure protocol a request or a token speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Draft {
    /// Mercure 0.x: `topic=` selectors, the `mercure` claim.
    V07,
    /// Mercure 1.0: `match*=` selectors, OAuth access tokens with `authorization_details`.
    V08,
}

impl fmt::Display for Draft {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Draft::V07 => "draft-07",
            Draft::V08 => "draft-08",
        })
    }
}

/// Who presents the token, which decides the key it is checked with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Publisher,
    Subscriber,
}

/// A request a token admitted.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Access {
    pub(crate) claims: Claims,
    pub(crate) source: Source,
}

/// The configured keys and checks: everything needed to verify a token.
pub(crate) struct JwtVerifier {
    publisher: Option<RoleKey>,
    subscriber: Option<RoleKey>,
    /// draft-08: the issuer the keys are bound to, and this hub's resource identifier.
    issuer: Option<String>,
    audience: Option<String>,
    anonymous: bool,
    cookie_name: String,
}

impl fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let alg = |k: &Option<RoleKey>| k.as_ref().map(|k| k.alg);
        f.debug_struct("JwtVerifier")
            .field("publisher", &alg(&self.publisher))
            .field("subscriber", &alg(&self.subscriber))
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("anonymous", &self.anonymous)
            .field("cookie_name", &self.cookie_name)
            .finish()
    }
}

impl JwtVerifier {
    /// The verifier the flags describe; `None` when they configure no key (JWT off).
    pub(crate) fn from_flags(flags: &JwtFlags) -> Result<Option<JwtVerifier>, KeyError> {
        if flags.jwt_issuer.is_some() != flags.jwt_audience.is_some() {
            return Err(KeyError::IssuerAudiencePair);
        }
        if !is_cookie_name(&flags.cookie_name) {
            return Err(KeyError::CookieName);
        }
        let publisher = RoleKey::for_role(flags, Role::Publisher)?;
        let subscriber = RoleKey::for_role(flags, Role::Subscriber)?;
        if publisher.is_none() && subscriber.is_none() {
            return Ok(None);
        }
        Ok(Some(JwtVerifier {
            publisher,
            subscriber,
            issuer: flags.jwt_issuer.clone(),
            audience: flags.jwt_audience.clone(),
            anonymous: flags.anonymous,
            cookie_name: flags.cookie_name.clone(),
        }))
    }

    /// The flag of the key that checks `role`'s tokens, if one does.
    pub(crate) fn key_flag(&self, role: Role) -> Option<&'static str> {
        match role {
            Role::Publisher => &self.publisher,
            Role::Subscriber => &self.subscriber,
        }
        .as_ref()
        .map(|k| k.flag)
    }

    /// Things worth a warning at startup (each names a flag, never a key).
    pub(crate) fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut seen = None;
        for key in [&self.publisher, &self.subscriber].into_iter().flatten() {
            if key.short_secret && seen != Some(key.flag) {
                out.push(format!(
                    "{}: an HMAC secret shorter than {}'s hash can be guessed offline from one \
                     token; use at least {} random bytes",
                    key.flag,
                    key.alg,
                    match key.alg {
                        Alg::Hs384 => 48,
                        Alg::Hs512 => 64,
                        _ => 32,
                    }
                ));
                seen = Some(key.flag);
            }
        }
        if self.subscriber.is_some() && self.issuer.is_none() {
            out.push(
                "no --jwt-issuer and --jwt-audience: draft-08 access tokens are refused".into(),
            );
        }
        out
    }

    /// Whether tokens of `role` are checked here (a key is configured for it). When not, the
    /// route keeps its other policy (static tokens, loopback publishing).
    pub(crate) fn verifies(&self, role: Role) -> bool {
        self.key(role).is_some()
    }

    /// Whether a request of `role` without a token is let in: subscribers with
    /// `--anonymous`, or when no subscriber key is configured (they see public updates only).
    pub(crate) fn admits_anonymous(&self, role: Role) -> bool {
        match role {
            Role::Publisher => false,
            Role::Subscriber => self.anonymous || self.subscriber.is_none(),
        }
    }

    /// The cookie a token is looked for in, for requests of `draft`.
    pub(crate) fn cookie_name(&self, draft: Draft) -> &str {
        match draft {
            Draft::V07 => &self.cookie_name,
            Draft::V08 => COOKIE_08,
        }
    }

    /// What routes call: finds the request's token, verifies it for `role`, and checks that
    /// it fits the request (its draft, and no draft-08 token from the URL). `Ok(None)`: no
    /// token, and the role is let in without one (public updates only).
    pub(crate) fn authorize(
        &self,
        role: Role,
        request: &Presented<'_>,
        now_unix: u64,
    ) -> Result<Option<Access>, TokenError> {
        let Some(found) = self.find_token(
            request.draft,
            request.authorization,
            request.query,
            request.cookies,
        )?
        else {
            if self.admits_anonymous(role) {
                return Ok(None);
            }
            return Err(TokenError::missing(request.origin, request.cookies));
        };
        let claims = self.verify(role, found.token, now_unix)?;
        if claims.draft == Draft::V08 && found.source == Source::Query {
            return Err(TokenError::InUrl);
        }
        if let Some(draft) = request.draft {
            if draft != claims.draft {
                return Err(TokenError::DraftMismatch {
                    token: claims.draft,
                    request: draft,
                });
            }
        }
        Ok(Some(Access {
            claims,
            source: found.source,
        }))
    }

    /// The token of a request, found in the order the draft requires (see the module docs).
    /// `draft` `None` (the parameters do not tell) looks everywhere draft-07 does, then in
    /// the draft-08 cookie; [`authorize`](Self::authorize) then refuses a draft-08 token that
    /// came from the URL. `cookies` are the `Cookie` header values.
    pub(crate) fn find_token<'a>(
        &self,
        draft: Option<Draft>,
        authorization: Option<&'a str>,
        query: Option<&'a str>,
        cookies: &[&'a str],
    ) -> Result<Option<Found<'a>>, TokenError> {
        let names: &[&str] = match draft {
            Some(Draft::V07) => &[&self.cookie_name],
            Some(Draft::V08) => &[COOKIE_08],
            None => &[&self.cookie_name, COOKIE_08],
        };
        find_token(draft, authorization, query, cookies, names)
    }

    /// Verifies `token` for `role` at `now_unix` (seconds) and reads what it grants.
    pub(crate) fn verify(
        &self,
        role: Role,
        token: &str,
        now_unix: u64,
    ) -> Result<Claims, TokenError> {
        let key = self.key(role).ok_or(TokenError::NoKey(role))?;
        let (header, claims) = verified_parts(key, token)?;

        let exp = numeric_date(&claims, "exp")?;
        let nbf = numeric_date(&claims, "nbf")?;
        check_times(exp, nbf, now_unix)?;
        let present = |name| claims.get(name).filter(|v| !v.is_null());
        let (mercure, details) = (present("mercure"), present("authorization_details"));
        let access_token = header.typ.as_deref().is_some_and(is_at_jwt);
        let draft = match (mercure, details) {
            (Some(_), Some(_)) => return Err(TokenError::BothClaims),
            (Some(_), None) => Draft::V07,
            (None, Some(_)) => Draft::V08,
            (None, None) if access_token => Draft::V08,
            (None, None) => Draft::V07,
        };
        match (draft, &self.audience) {
            (Draft::V08, _) => self.check_access_token(access_token, exp, &claims)?,
            // RFC 7519 section 4.1.3: a JWT whose `aud` does not name its reader is refused.
            // draft-07 hubs check no `aud`, so without --jwt-audience it stays unchecked.
            (Draft::V07, Some(audience)) => {
                if names_audience(&claims, audience)? == Some(false) {
                    return Err(TokenError::WrongAudience);
                }
            }
            (Draft::V07, None) => {}
        }
        let rights = match (mercure, details) {
            (Some(m), _) => parse_mercure(m)?,
            (_, Some(d)) => parse_details(d)?,
            (None, None) if role == Role::Publisher => return Err(TokenError::NoRights),
            (None, None) => Rights::none(),
        };
        let subject = match claims.get("sub") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(TokenError::BadClaim("sub is not a string")),
        };
        Ok(Claims {
            draft,
            publish: rights.publish,
            subscribe: rights.subscribe,
            payload: rights.payload,
            expires: exp,
            not_before: nbf,
            subject,
        })
    }

    /// [`verify`](Self::verify), remembering the last token in `cache`: a keep-alive client
    /// that presents the same token on every request (a publisher) pays for one signature
    /// check and one parse, and each later request compares the token and checks `exp` and
    /// `nbf` again. A cache belongs to one connection and one verifier.
    pub(crate) fn verify_cached<'c>(
        &self,
        cache: &'c mut TokenCache,
        role: Role,
        token: &str,
        now_unix: u64,
    ) -> Result<&'c Claims, TokenError> {
        let hit = matches!(&cache.0, Some((r, t, _)) if *r == role && **t == *token);
        if !hit {
            cache.0 = None;
            let claims = self.verify(role, token, now_unix)?;
            cache.0 = Some((role, token.into(), claims));
        }
        // (Matching on `&mut cache.0` once would need Polonius to return the hit's borrow.)
        let Some((_, _, claims)) = &cache.0 else {
            // Filled just above.
            return Err(TokenError::Malformed);
        };
        check_times(claims.expires, claims.not_before, now_unix)?;
        Ok(claims)
    }

    /// RFC 9068's checks on a draft-08 access token (the signature and times are checked).
    fn check_access_token(
        &self,
        access_token: bool,
        exp: Option<u64>,
        claims: &Map<String, Value>,
    ) -> Result<(), TokenError> {
        if !access_token {
            return Err(TokenError::WrongType);
        }
        if exp.is_none() {
            return Err(TokenError::MissingClaim("exp"));
        }
        let (Some(issuer), Some(audience)) = (&self.issuer, &self.audience) else {
            return Err(TokenError::Draft08Off);
        };
        // The configured keys belong to `issuer`: a token claiming another issuer is refused
        // even though one of them signed it.
        match claims.get("iss") {
            None | Some(Value::Null) => return Err(TokenError::MissingClaim("iss")),
            Some(Value::String(iss)) if iss == issuer => {}
            Some(_) => return Err(TokenError::WrongIssuer),
        }
        match names_audience(claims, audience)? {
            None => Err(TokenError::MissingClaim("aud")),
            Some(false) => Err(TokenError::WrongAudience),
            Some(true) => Ok(()),
        }
    }

    fn key(&self, role: Role) -> Option<&RoleKey> {
        match role {
            Role::Publisher => self.publisher.as_ref(),
            Role::Subscriber => self.subscriber.as_ref(),
        }
    }
}

/// The last token verified on a connection, and its claims (see
/// [`JwtVerifier::verify_cached`]).
#[derive(Debug, Default)]
pub(crate) struct TokenCache(Option<(Role, Box<str>, Claims)>);

/// Refuses a token at or past its `exp`, or before its `nbf` less the leeway.
fn check_times(exp: Option<u64>, nbf: Option<u64>, now_unix: u64) -> Result<(), TokenError> {
    if exp.is_some_and(|exp| now_unix >= exp) {
        return Err(TokenError::Expired);
    }
    if nbf.is_some_and(|nbf| now_unix.saturating_add(LEEWAY_SECS) < nbf) {
        return Err(TokenError::NotYetValid);
    }
    Ok(())
}

/// Whether `aud` (a string or an array of strings) names `audience`; `None` without `aud`.
fn names_audience(claims: &Map<String, Value>, audience: &str) -> Result<Option<bool>, TokenError> {
    let bad = TokenError::BadClaim("aud is not a string or strings");
    match claims.get("aud") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(aud)) => Ok(Some(aud == audience)),
        Some(Value::Array(auds)) => {
            if !auds.iter().all(Value::is_string) {
                return Err(bad);
            }
            Ok(Some(auds.iter().any(|a| a.as_str() == Some(audience))))
        }
        Some(_) => Err(bad),
    }
}

/// The header fields looked at. Unknown ones are ignored, as RFC 7515 allows.
struct Header {
    alg: String,
    typ: Option<String>,
    crit: bool,
}

impl Header {
    /// Reads a JOSE header: a JSON object (serde would also take an array for a struct)
    /// with a string `alg`.
    fn parse(part: &str) -> Result<Header, TokenError> {
        let mut header: Map<String, Value> = decode_json(part)?;
        let Some(Value::String(alg)) = header.remove("alg") else {
            return Err(TokenError::Malformed);
        };
        let typ = match header.remove("typ") {
            Some(Value::String(typ)) => Some(typ),
            None | Some(Value::Null) => None,
            Some(_) => return Err(TokenError::Malformed),
        };
        Ok(Header {
            alg,
            typ,
            crit: header.contains_key("crit"),
        })
    }
}

/// Splits a compact JWS, checks its `alg` against the key's and its signature, and decodes
/// the claims. Nothing of the payload is read before the signature is verified.
fn verified_parts(key: &RoleKey, token: &str) -> Result<(Header, Map<String, Value>), TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let base64url = |p: &str| {
        p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if header.is_empty()
        || payload.is_empty()
        || ![header, payload, signature].iter().all(|p| base64url(p))
    {
        return Err(TokenError::Malformed);
    }
    let header = Header::parse(header)?;
    if header.alg.eq_ignore_ascii_case("none") {
        return Err(TokenError::AlgNone);
    }
    match Alg::from_name(&header.alg) {
        Some(alg) if alg == key.alg => {}
        got => return Err(TokenError::AlgNotAllowed { got, want: key.alg }),
    }
    if header.crit {
        return Err(TokenError::Crit);
    }
    let signed = &token[..token.len() - signature.len() - 1];
    if signature.is_empty() || !key.verifies(signed.as_bytes(), signature) {
        return Err(TokenError::BadSignature);
    }
    let claims = decode_json(payload)?;
    Ok((header, claims))
}

/// A base64url part holding a JSON object.
fn decode_json<T: DeserializeOwned>(part: &str) -> Result<T, TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Malformed)?;
    // serde's messages quote the input: the reason stays ours.
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)
}

/// RFC 9068's `typ`: `at+jwt`, or `application/at+jwt`, case-insensitively.
fn is_at_jwt(typ: &str) -> bool {
    let typ = match typ.get(..12) {
        Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &typ[12..],
        _ => typ,
    };
    typ.eq_ignore_ascii_case("at+jwt")
}

/// A NumericDate claim (RFC 7519: seconds, possibly fractional) in whole seconds.
fn numeric_date(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<u64>, TokenError> {
    let reason = match name {
        "exp" => "exp is not a number of seconds",
        _ => "nbf is not a number of seconds",
    };
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match (n.as_u64(), n.as_f64()) {
            (Some(s), _) => Ok(Some(s)),
            // `as` saturates: a date past u64 seconds is never reached.
            (None, Some(f)) if f >= 0.0 => Ok(Some(f as u64)),
            _ => Err(TokenError::BadClaim(reason)),
        },
        Some(_) => Err(TokenError::BadClaim(reason)),
    }
}

#[cfg(test)]
#[path = "jwt_tests/mod.rs"]
mod tests;
